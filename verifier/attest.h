/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verifier/attest: the verifier's evaluation of one round of a host's
 * evidence (the JSON the host agent's POST /v1/quote returns, see
 * docs/host-agent.md) against the AK, the nonce and PCR selection the
 * verifier asked for, the host's policies and what was learnt in earlier
 * rounds. No I/O: the daemon fetches, this decides.
 *
 * Checks, in order (a bad quote stops the evaluation, every other failure is
 * recorded and the evaluation goes on so the verdict can give several reasons):
 *  1. shape of the evidence and its base64 ("quote" "malformed");
 *  2. the quote: signature with ak, nonce, the PCR file against the quoted
 *     digest ("quote" "signature" / "nonce" / "pcr_digest" / "malformed");
 *     the quoted selection must be exactly the one asked ("quote" "selection");
 *  3. clock: within one boot (same boot_id) resetCount must not change and the
 *     TPM clock must advance ("clock" "reset" / "clock_went_back"); a new
 *     boot_id needs a new resetCount ("clock" "boot_without_reset");
 *  4. static PCR values ("pcr" "pcr_mismatch" / "not_quoted", index = PCR);
 *  5. the UEFI event log: its replay must explain every quoted PCR of
 *     mb_pcrs (a PCR the log does not touch must be zero) ("eventlog"
 *     "replay_mismatch", index = PCR; "malformed", "missing", "missing_bank",
 *     "pcr_not_quoted"), then the measured-boot policy ("mb", mbpolicy
 *     reason, index = event) — only on a log whose replay matched;
 *  6. IMA: the list must start where the last accepted round stopped (0 after
 *     a new boot: "ima" "offset_mismatch"); it is replayed on top of the
 *     stored state up to the first entry after which PCR 10 and every PCR
 *     it extends equal the quoted ones (the list may run past the quote;
 *     the rest waits for the next round); with no such point: "pcr10_mismatch"
 *     for PCR 10, "replay_mismatch" for others, "pcr_not_quoted"; entries
 *     so replayed whose template hash is wrong fail ("template_hash_mismatch",
 *     index = entry); each goes through the IMA policy ("ima", verdict
 *     reason, index = entry).
 */
#ifndef KQ_VERIFIER_ATTEST_H
#define KQ_VERIFIER_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include "ima/ima.h"
#include "imapolicy/imapolicy.h"
#include "mbpolicy/mbpolicy.h"
#include "tpm/tpm.h"

/* Limits on what one evidence document may carry (decoded bytes). */
#define ATTEST_MAX_BOOT_ID 63
#define ATTEST_MAX_UEFI_LOG (16u << 20)
#define ATTEST_MAX_IMA_DATA (128u << 20)

/* PCRs the UEFI event log must explain when attest_policy.mb_pcrs is 0. */
#define ATTEST_MB_PCRS_DEFAULT 0x3ffu

/*
 * What the verifier keeps per host between rounds: plain data, no pointers,
 * so it can be stored as is. Zero it for a host never seen (have_quote false).
 */
struct attest_state {
	bool have_quote;              /* a quote has been accepted before */
	uint64_t clock;               /* TPMS_CLOCK_INFO of the last accepted quote */
	uint32_t reset_count, restart_count;
	char boot_id[ATTEST_MAX_BOOT_ID + 1];
	struct ima_replay_state ima;  /* running PCR values, next entry index */
};

/*
 * The compact, portable form of a state (little-endian fields; only the IMA
 * PCR values that are not zero), as the verifier keeps it per agent and
 * stores it: a few hundred bytes instead of the struct's 6 KB. unpack also
 * reads the form earlier versions stored (the struct's bytes behind a
 * "KQS1" header, when laid out as in this build). -EBADMSG for anything else.
 */
int attest_state_pack(const struct attest_state *st, uint8_t **ret, size_t *ret_len);
int attest_state_unpack(const uint8_t *buf, size_t len, struct attest_state *ret);

struct attest_policy {
	const struct tpm_pcrs *static_pcrs; /* NULL: none; values that must match */
	const struct mbpolicy *mb;          /* NULL: none (the log must still explain mb_pcrs) */
	const struct imapolicy *ima;        /* NULL: none (the list is still replayed) */
	uint32_t mb_pcrs;                   /* PCRs the event log must explain; 0: ATTEST_MB_PCRS_DEFAULT */
};

#define ATTEST_MAX_FAILURES 16

struct attest_failure {
	char component[16]; /* quote, clock, pcr, eventlog, mb, ima */
	char code[40];
	int64_t index;      /* PCR, event or entry; -1 if none */
	char message[256];  /* for people; input quoted only sanitised by the libraries */
};

struct attest_verdict {
	bool pass;
	size_t n_failures;  /* failures recorded, at most ATTEST_MAX_FAILURES */
	bool truncated;     /* more failures were found than recorded */
	struct attest_failure failures[ATTEST_MAX_FAILURES];
};

/*
 * Evaluates one evidence document. ak is the host's AK, nonce what was sent,
 * asked the PCR selection that was asked for. pol may be NULL (no policies).
 * state is read, and replaced by the new clock, boot_id and IMA replay state
 * only when the verdict passes.
 *
 * Returns 0 with *ret filled whatever the verdict; a negative errno only when
 * the evaluation itself could not be done (-EINVAL bad arguments, -ENOMEM,
 * -EIO hashing), with kq_errmsg() set, *ret and *state untouched.
 */
int attest_host(const struct attest_policy *pol, EVP_PKEY *ak, const uint8_t *nonce,
		size_t nonce_len, const TPML_PCR_SELECTION *asked, struct json_object *evidence,
		struct attest_state *state, struct attest_verdict *ret);

/* True if the verdict holds a failure with this component and code (and index, unless -2). */
bool attest_verdict_has(const struct attest_verdict *v, const char *component, const char *code,
			int64_t index);

#endif
