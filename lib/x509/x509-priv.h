/* SPDX-License-Identifier: Apache-2.0 */
/* lib/x509 internals shared by its files (and visible to its tests). */
#ifndef KQ_X509_PRIV_H
#define KQ_X509_PRIV_H

#include "x509/x509.h"

/* kq_err(code, "what: <OpenSSL's first queued reason>"), clearing the queue. */
int x509_ossl_err(int code, const char *what);

#endif
