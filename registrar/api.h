/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KQ_REGISTRAR_API_H
#define KQ_REGISTRAR_API_H

#include "http/http.h"
#include "registrar.h"

/* The route table; handlers take the struct registrar as userdata. */
const struct http_route *registrar_routes(size_t *ret_n);

/*
 * Reads an enrolment request body exactly as POST /v1/agents does: a strict
 * JSON parse (at most 64 KiB, nested at most 8 deep), then the fields id,
 * kind, ek_pub, ek_cert, ak_pub, contact with their types and size limits; no
 * other keys. Only the form is checked here: reg_enrol_begin() checks the
 * meaning. On success the caller owns *ret and frees it with
 * registrar_enrol_req_free(); on error *ret is untouched.
 * Errors: -E2BIG or -EBADMSG when the body is not JSON within the limits, and
 * -ENOMEM while parsing it (the API answers bad_json); -EINVAL when a field is
 * missing, unknown, of the wrong type or too long, or memory ran out while
 * reading one (bad_request). kq_errmsg() says which.
 */
int registrar_parse_enrol(const uint8_t *body, size_t len, struct reg_enrol_req *ret);

/* Frees what registrar_parse_enrol() set and zeroes it; NULL and a zeroed request are fine. */
void registrar_enrol_req_free(struct reg_enrol_req *req);

#endif
