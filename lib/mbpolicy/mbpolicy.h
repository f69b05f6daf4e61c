/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/mbpolicy: the measured-boot reference-state policy the verifier
 * evaluates on a host's UEFI event log (docs/mb-policy.md).
 *
 * Two input forms are accepted by mbpolicy_parse():
 *  - Keylime's measured-boot reference state ("scrtm_and_bios", "pk", "kek",
 *    "db", "dbx", "mokdig", "mokxdig", "kernels", "has_secureboot"), evaluated
 *    as Keylime's "example" policy does, with the differences listed in
 *    docs/mb-policy.md;
 *  - kumquat's own form ("secure_boot", "pk", "kek", "db", "dbx",
 *    "boot_loaders", "kernels").
 *
 * mbpolicy_check() must only be called on a log whose replay has already been
 * compared with the quoted PCRs: it does not replay. It trusts decoded event
 * content only where evlog verified the digest against the data
 * (EVLOG_VERIFY_OK with the whole event data hashed); image digests are
 * compared as reference values.
 *
 * Errors follow lib/util (negative errno, message in kq_errmsg()). Nothing
 * here prints. A parsed policy is read-only and may be shared between threads.
 */
#ifndef KQ_MBPOLICY_H
#define KQ_MBPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evlog/evlog.h"

/* ---- limits: going over one makes mbpolicy_parse() fail with -E2BIG ---- */
#define MBPOLICY_MAX_SIZE (8u << 20)     /* the whole JSON document, bytes */
#define MBPOLICY_MAX_ENTRIES 8192u       /* entries of one list (dbx, boot_loaders, ...) */
#define MBPOLICY_MAX_SIG_DATA (64u << 10) /* one SignatureData, bytes */
#define MBPOLICY_MAX_REGEX 4096u         /* one kernel_cmdline pattern, bytes */

/* Reason codes (the strings are static). */
#define MBPOLICY_SECURE_BOOT_OFF "secure_boot_off"
#define MBPOLICY_SECURE_BOOT_ON "secure_boot_on"           /* policy requires it off */
#define MBPOLICY_PK_MISMATCH "pk_mismatch"
#define MBPOLICY_KEK_MISMATCH "kek_mismatch"
#define MBPOLICY_DB_MISMATCH "db_mismatch"
#define MBPOLICY_DBX_MISMATCH "dbx_mismatch"               /* dbx lacks required entries */
#define MBPOLICY_BOOT_APP_NOT_ALLOWED "boot_app_not_allowed"
#define MBPOLICY_UNVERIFIED_EVENT "unverified_event"
#define MBPOLICY_UNEXPECTED_EVENT "unexpected_event"       /* a config variable where none belongs */
#define MBPOLICY_SCRTM_BIOS_MISMATCH "scrtm_bios_mismatch"
#define MBPOLICY_MOK_MISMATCH "mok_mismatch"
#define MBPOLICY_KERNEL_MISMATCH "kernel_mismatch"         /* initrd, vmlinuz or kernel_cmdline */
#define MBPOLICY_NO_DIGEST "no_digest"                     /* the log lacks a bank the policy needs */

/* The event index of a failure that is not about one event. */
#define MBPOLICY_NO_EVENT SIZE_MAX

struct mbpolicy_failure {
	const char *reason;  /* one of MBPOLICY_* above (static) */
	size_t event;        /* evlog event index, or MBPOLICY_NO_EVENT */
	char *message;       /* UTF-8, for people */
};

struct mbpolicy_result {
	bool ok;             /* true iff n_failures == 0 */
	size_t n_failures;
	struct mbpolicy_failure *failures;
};

struct mbpolicy;

/*
 * Parses a policy in either form (see the top of this file). json/len is not
 * kept. On success *ret is a new policy the caller frees with mbpolicy_free().
 * Errors: -E2BIG over a limit above; -EBADMSG if not (strict) JSON; -EINVAL
 * for a wrong type, a missing required field, an unknown field (kumquat form),
 * bad hex or GUID, a digest of the wrong size, or a kernel_cmdline regex that
 * does not compile or uses Python syntax POSIX EREs do not share; -ENOMEM.
 * The message names the field.
 */
int mbpolicy_parse(const uint8_t *json, size_t len, struct mbpolicy **ret);

/* NULL is fine. */
void mbpolicy_free(struct mbpolicy *p);
static inline void mbpolicy_freep(struct mbpolicy **p)
{
	mbpolicy_free(*p);
}

/*
 * Evaluates p on log. On success returns 0 and fills *ret (ok, or the list of
 * failures in log order per check); free it with mbpolicy_result_free().
 * A policy violation is not an error. Errors: -ENOMEM (nothing to free).
 */
int mbpolicy_check(const struct mbpolicy *p, const struct evlog *log, struct mbpolicy_result *ret);

/* Frees the failures and zeroes *r. NULL and a zeroed result are fine. */
void mbpolicy_result_free(struct mbpolicy_result *r);

/* True if some failure has this reason (and, unless event is MBPOLICY_NO_EVENT, this event). */
bool mbpolicy_result_has(const struct mbpolicy_result *r, const char *reason, size_t event);

#endif
