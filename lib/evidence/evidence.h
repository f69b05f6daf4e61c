/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/evidence: the evidence endpoint both agents serve over mutual TLS
 * (docs/host-agent.md, docs/guest-agent.md): POST /v1/quote with
 *   {"nonce": hex, "pcrs": {"sha256": [0, 1, ...], ...}, "ima_offset": N, "agent_id"?: id}
 * answers
 *   {"quote": {"message", "signature", "pcrs"}   (TPMS_ATTEST, TPMT_SIGNATURE,
 *                                                  tpm2-tools PCR file; base64)
 *    "boot_id": "...", "uefi_log": base64 or null,
 *    "ima": {"offset": N, "entries": M, "format": "ascii"|"binary", "data": base64} or null}
 *
 * The pieces are public so that the host agent's deep quote (host-agent/
 * deepquote.c) reads the same request fields, quotes the same way and
 * answers with the same evidence. The TPM serves one command sequence at a
 * time: every user of an agent's TPM in that process takes evidence_tpm_lock.
 *
 * Errors follow lib/util (negative errno codes, kq_errmsg()); the handlers
 * log what they answer with a 5xx, and missing logs as warnings.
 */
#ifndef KQ_EVIDENCE_H
#define KQ_EVIDENCE_H

#include <pthread.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "http/http.h"
#include "json/json.h"
#include "tpmdev/tpmdev.h"

/* Longest nonce a request may carry (bytes). */
#define EVIDENCE_MAX_NONCE 64
/* Largest POST /v1/quote body: 413 above it, as when it was the server's own limit. */
#define EVIDENCE_MAX_BODY (64u * 1024)
/* Largest log (UEFI event log, IMA list) read for an answer. */
#define EVIDENCE_MAX_LOG (128u << 20)

/* Held around every use of the agent's TPM (quotes, signatures, key loads). */
extern pthread_mutex_t evidence_tpm_lock;

struct payload_agent;
struct revocation_agent;

/* What an agent serves. Pointers must stay valid while it serves. */
struct evidence_config {
	struct tpmdev *tpm;         /* used under evidence_tpm_lock */
	TPM2_HANDLE ak_handle;      /* the enrolled AK */
	const char *agent_id;       /* lowercase UUID; requests naming another get 409 wrong_agent */
	const char *uefi_log;       /* NULL or "": answered as null; unreadable: null and a warning */
	const char *ima_log;        /* likewise */
	const char *boot_id;        /* a file holding the boot id (trailing blanks dropped); NULL: null */
	const struct payload_agent *payload; /* lib/payload's routes; NULL: they answer 404 */
	const struct revocation_agent *revocation; /* lib/revocation's route; NULL: 404 */
};

/* The fields every evidence request carries, checked. */
struct evidence_request {
	uint8_t nonce[EVIDENCE_MAX_NONCE];
	size_t nonce_len;           /* 1..EVIDENCE_MAX_NONCE */
	TPML_PCR_SELECTION sel;     /* 1..TPM_MAX_BANKS distinct known banks, PCRs 0-23 */
	uint64_t ima_offset;        /* 0 when absent */
};

/*
 * Reads an evidence request from req's body: at most max_len bytes of JSON,
 * nesting at most max_depth, with nonce, pcrs, ima_offset and agent_id, plus
 * the fields of extra (a json_dispatch table filled into extra_target; NULL
 * for none). Keys in neither table are refused. On failure the error answer
 * is already in resp: 400 bad_json / bad_request with the reason, 409
 * wrong_agent when agent_id is not cfg->agent_id; extra's fields have been
 * freed. On success the caller frees extra's fields (json_dispatch_free).
 */
int evidence_request_read(const struct evidence_config *cfg, const struct http_request *req, size_t max_len,
			  size_t max_depth, const struct json_field *extra, void *extra_target,
			  struct evidence_request *ret, struct http_response *resp);

/*
 * Parses {"sha256": [0, 1, ...], ...} into a PCR selection. -EINVAL with
 * the reason: not an object, an unknown or repeated bank, no PCRs or more
 * than 24 in a bank, a PCR outside 0-23, more than TPM_MAX_BANKS banks.
 */
int evidence_parse_selection(struct json_object *o, TPML_PCR_SELECTION *ret);

/* A quote as the endpoint returns it, marshalled. */
struct evidence_quote {
	uint8_t *attest;            /* TPMS_ATTEST as signed */
	size_t attest_len;
	uint8_t sig[sizeof(TPMT_SIGNATURE)]; /* marshalled TPMT_SIGNATURE */
	size_t sig_len;
	uint8_t *pcrs;              /* tpm2-tools PCR file of the quoted PCRs */
	size_t pcrs_len;
};

/*
 * TPM2_Quote by the AK over sel with qualifying data qual (at most
 * TPMDEV_MAX_QUALIFYING bytes), and the PCR values it covers, under
 * evidence_tpm_lock. Errors: -EINVAL / -ENOENT the request cannot be quoted
 * (a bank the TPM does not have), anything else a TPM failure (as from
 * tpmdev_quote); evidence_quote_error() turns them into the answer. Caller
 * frees with evidence_quote_clear.
 */
int evidence_quote(const struct evidence_config *cfg, const TPML_PCR_SELECTION *sel, const uint8_t *qual,
		   size_t qlen, struct evidence_quote *ret);
/* Frees what evidence_quote allocated and zeroes q. Safe on a zeroed q and twice. */
void evidence_quote_clear(struct evidence_quote *q);

/* Sets resp for a failed evidence_quote (r): 400 bad_request or 500 tpm_error. */
void evidence_quote_error(struct http_response *resp, int r);

/*
 * The answer to an evidence request: {"quote": {...}, "boot_id", "uefi_log",
 * "ima"} with the IMA list's entries from ima_offset on (read now, after the
 * quote). Caller drops *ret. Errors: -ERANGE when ima_offset is past the
 * list's end (answer 409 ima_offset_ahead, see evidence_answer_error),
 * -ENOMEM. A log that cannot be read or parsed is answered as null.
 */
int evidence_answer(const struct evidence_config *cfg, const struct evidence_quote *q, uint64_t ima_offset,
		    struct json_object **ret);

/* Sets resp for a failed evidence_answer (r): 409 ima_offset_ahead or 500 internal. */
void evidence_answer_error(struct http_response *resp, int r);

/*
 * The whole POST /v1/quote handler; userdata is a struct evidence_config.
 * For http_server_start's route table, or called from an agent's own handler.
 */
void evidence_handle_quote(const struct http_request *req, struct http_response *resp, void *userdata);

#endif
