/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agents' side of secure payloads (docs/payloads.md): routes for
 * lib/http, served with lib/evidence's (their userdata is the agent's
 * struct evidence_config, whose payload member points here).
 *
 *   POST /v1/payload/u  {payload_id, enc_u, auth_tag, sealed}  -> 202; kept
 *        in state_dir (all of it encrypted) until V comes
 *   POST /v1/payload/v  {payload_id, enc_v}  -> 200 {status: "delivered",
 *        files, script_status} once U and V decrypt in the TPM, their xor
 *        matches the auth tag and the payload opens; its files are then in
 *        out_dir/PAYLOAD_ID (tmpfs, 0700) and the script has run. Refusals:
 *        409 unknown_payload / already_delivered, 400 u_undecryptable,
 *        v_undecryptable, auth_tag_mismatch, payload_corrupt.
 */
#ifndef KQ_PAYLOAD_AGENT_H
#define KQ_PAYLOAD_AGENT_H

#include <tss2/tss2_tpm2_types.h>

#include "http/http.h"
#include "payload/payload.h"

/* Largest POST /v1/payload/u body (base64 of the largest sealed payload, and the rest). */
#define PAYLOAD_AGENT_MAX_BODY (PAYLOAD_MAX / 3 * 4 + 8192)

struct payload_agent {
	const char *agent_id;
	TPM2_HANDLE key_handle;   /* the certified payload key */
	const char *state_dir;    /* where the encrypted U part waits */
	const char *out_dir;      /* on tmpfs; payloads are written to out_dir/PAYLOAD_ID */
	const char *script;       /* run in that directory after delivery, or NULL */
};

void payload_handle_u(const struct http_request *req, struct http_response *resp, void *ud);
void payload_handle_v(const struct http_request *req, struct http_response *resp, void *ud);

#endif
