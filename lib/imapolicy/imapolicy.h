/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/imapolicy: the IMA runtime policy a verifier evaluates IMA entries
 * against — Keylime's runtime policy JSON (meta.version 1), plain or wrapped
 * in a signed DSSE envelope. See docs/ima-policy.md for the format, the
 * decisions (violations, boot_aggregate, exclude anchoring) and the limits.
 *
 * A loaded policy is immutable: imapolicy_check_entry() is reentrant and one
 * policy may be shared by any number of threads. Lookups are hash-table
 * based (O(1) per entry). Errors follow lib/util (negative errno-style code,
 * kq_errmsg() set); library code never prints.
 */
#ifndef KQ_IMAPOLICY_H
#define KQ_IMAPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ima/ima.h"

/* ---- limits (over a limit: -E2BIG with a message) ---- */

#define IMAPOLICY_MAX_SIZE       (64u << 20) /* bytes of a policy or DSSE envelope */
#define IMAPOLICY_MAX_PATHS      (1u << 20)  /* paths in "digests" (+ "keyrings", "ima-buf") */
#define IMAPOLICY_MAX_DIGESTS    (4u << 20)  /* digests in all, over all paths */
#define IMAPOLICY_MAX_PER_PATH   1024        /* digests allowed for one path */
#define IMAPOLICY_MAX_EXCLUDES   1024        /* regular expressions in "excludes" */
#define IMAPOLICY_MAX_REGEX      1024        /* bytes of one exclude regex */
#define IMAPOLICY_MAX_KEYS       64          /* DSSE keys in opts; DSSE signatures */
#define IMAPOLICY_MAX_DEPTH      16          /* JSON nesting */

#define IMAPOLICY_DSSE_PAYLOAD_TYPE "application/vnd.keylime+json"

struct imapolicy_load_opts {
	/*
	 * PEM public keys ("PUBLIC KEY") trusted to sign DSSE-wrapped
	 * policies: ECDSA (any named curve, SHA-256, DER signatures) or RSA
	 * (>= 2048 bits, SHA-256, PKCS#1 v1.5 or PSS). An envelope is accepted
	 * only if one of its signatures verifies with one of these keys; with
	 * none configured every envelope is refused.
	 */
	const char *const *dsse_keys;
	size_t n_dsse_keys;
	/* Refuse a plain (unsigned) policy: only a verified envelope loads. */
	bool require_signed;
	/*
	 * Extra PEM keys/certificates for IMA file signatures (ima-sig),
	 * added to those of the policy's "verification-keys".
	 */
	const char *const *ima_keys;
	size_t n_ima_keys;
	/*
	 * Accept violation entries (all-zero template hash: ToMToU or
	 * open-writers). Default false: a violation fails the check.
	 */
	bool allow_violations;
};

struct imapolicy;

/*
 * Parses a Keylime runtime policy (or a DSSE envelope holding one) from
 * json[0..len). opts may be NULL (no DSSE keys: envelopes are refused; plain
 * policies accepted). On success *ret is a new policy the caller frees with
 * imapolicy_free(). Errors: -E2BIG over a limit, -EBADMSG malformed JSON or
 * wrong types/values (message names the field), -EPERM an envelope whose
 * signature does not verify / no trusted key / unsigned when require_signed,
 * -EINVAL bad options (a DSSE key that is not a PEM public key), -ENOMEM.
 */
int imapolicy_parse(const uint8_t *json, size_t len, const struct imapolicy_load_opts *opts,
		    struct imapolicy **ret);

void imapolicy_free(struct imapolicy *p);
static inline void imapolicy_freep(struct imapolicy **p) { imapolicy_free(*p); }

/* Counts, for callers and tests. */
size_t imapolicy_n_paths(const struct imapolicy *p);    /* paths in "digests" */
size_t imapolicy_n_excludes(const struct imapolicy *p);
size_t imapolicy_n_sig_keys(const struct imapolicy *p); /* IMA file-signature keys */
bool imapolicy_was_signed(const struct imapolicy *p);   /* loaded from a verified envelope */
/* KQ_ALG_* of "ima.log_hash_alg" (the template hash algorithm of the list). */
uint16_t imapolicy_log_hash_alg(const struct imapolicy *p);

#define IMAPOLICY_MSG_MAX 512

struct imapolicy_verdict {
	bool ok;
	/*
	 * Static reason code:
	 *  ok:   "allowed" (digest in allowlist), "excluded" (path matches an
	 *        exclude), "signature_ok" (ima-sig verified), "keyring_ok",
	 *        "ignored_keyring", "violation_ignored" (allow_violations);
	 *  fail: "not_in_allowlist", "digest_mismatch" (path allowed with other
	 *        digests), "bad_signature" (malformed or wrong IMA signature),
	 *        "unknown_keyring", "template_hash_mismatch", "violation",
	 *        "wrong_pcr" (not PCR 10), "unsupported_template".
	 */
	const char *reason;
	/* Human message naming the entry index and path (sanitised). */
	char message[IMAPOLICY_MSG_MAX];
};

/*
 * Evaluates one parsed entry (its template hash already checked by lib/ima).
 * Fills *ret and returns 0 whatever the verdict; negative only for a bad
 * argument (-EINVAL). Never modifies the policy.
 */
int imapolicy_check_entry(const struct imapolicy *p, const struct ima_entry *e,
			  struct imapolicy_verdict *ret);

#endif
