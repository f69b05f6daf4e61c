/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KQ_REGISTRAR_API_H
#define KQ_REGISTRAR_API_H

#include "http/http.h"
#include "registrar.h"

/* The route table; handlers take the struct registrar as userdata. */
const struct http_route *registrar_routes(size_t *ret_n);

#endif
