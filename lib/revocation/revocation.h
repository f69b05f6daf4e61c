/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/revocation: the agents' side of revocation notices (docs/revocation.md).
 * When an agent fails, the verifier signs a notice (a DSSE envelope of
 * payloadType REVOCATION_PAYLOAD_TYPE, lib/dsse) and POSTs it to
 * /v1/revocation of every agent subscribed to that scope. An agent takes it
 * only if it verifies with the verifier's key it was configured with, is
 * newer than the last it took (seq, kept in state_dir) and recent; then it
 * runs every executable of its actions directory with the notice on stdin.
 * Refusals are logged and answered 400 / 403 bad_signature / 409 replayed or
 * stale.
 */
#ifndef KQ_REVOCATION_H
#define KQ_REVOCATION_H

#include <stdint.h>

#include <openssl/evp.h>

#include "http/http.h"

#define REVOCATION_PAYLOAD_TYPE "application/vnd.kumquat.revocation+json"
#define REVOCATION_MAX_AGE_DEFAULT 3600
#define REVOCATION_ACTION_TIMEOUT_S 30

struct revocation_agent {
	EVP_PKEY *verifier_key;     /* [revocation] verifier_key */
	const char *state_dir;      /* last accepted seq: state_dir/revocation-seq */
	const char *actions_dir;    /* NULL: notices are checked and logged only */
	int64_t max_age;            /* seconds a notice stays good */
};

/* The verifier's public key from a PEM file (public key or certificate). */
int revocation_load_key(const char *path, EVP_PKEY **ret);

/* POST /v1/revocation; userdata is the agent's struct evidence_config (its revocation member). */
void revocation_handle(const struct http_request *req, struct http_response *resp, void *ud);

#endif
