/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/tpmdev internals, shared by its .c files and seen by its tests (which
 * inspect the TPM's loaded handles through the ESYS context).
 */
#ifndef KQ_TPMDEV_PRIV_H
#define KQ_TPMDEV_PRIV_H

#include <stdbool.h>

#include <tss2/tss2_esys.h>

#include "tpmdev/tpmdev.h"
#include "util/util.h"

struct tpmdev {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	uint32_t nv_buffer_max; /* TPM_PT_NV_BUFFER_MAX, 0 until asked */
};

/* Attempts for a command the TPM answers with RETRY, YIELDED or TESTING. */
#define TPMDEV_ATTEMPTS 5

bool tpmdev_rc_busy(TSS2_RC rc);
void tpmdev_backoff(unsigned attempt);

/* Runs an ESYS call into rc, again (with back-off) while the TPM is busy. */
#define TPMDEV_CALL(rc, call)                                                  \
	do {                                                                   \
		for (unsigned _att = 1;; _att++) {                             \
			(rc) = (call);                                         \
			if (!tpmdev_rc_busy(rc) || _att >= TPMDEV_ATTEMPTS)    \
				break;                                         \
			tpmdev_backoff(_att);                                  \
		}                                                              \
	} while (0)

/* Maps rc to a negative errno and sets the message "<what>: <decoded> (0x<rc>)". */
int tpmdev_tss_err(TSS2_RC rc, const char *fmt, ...) _printf_(2, 3);

/* Flushes a transient object or session, and forgets a persistent one; sets *tr to ESYS_TR_NONE. */
void tpmdev_flush(struct tpmdev *t, ESYS_TR *tr);
void tpmdev_tr_close(struct tpmdev *t, ESYS_TR *tr);

/* Whether a handle (persistent object, NV index, ...) exists in the TPM. */
int tpmdev_handle_exists(struct tpmdev *t, TPM2_HANDLE handle, bool *ret);

/*
 * ESYS_TR for the persistent object at handle, with its public area, name and
 * qualified name (each optional). -ENOENT if the handle is empty. Release with
 * tpmdev_tr_close.
 */
int tpmdev_load_persistent(struct tpmdev *t, TPM2_HANDLE handle, ESYS_TR *ret_tr, TPM2B_PUBLIC *ret_pub,
			   TPM2B_NAME *ret_name, TPM2B_NAME *ret_qn);

/* A policy session satisfying the EK's policy A: PolicySecret(TPM_RH_ENDORSEMENT). Flush when done. */
int tpmdev_ek_session(struct tpmdev *t, ESYS_TR *ret_session);

/* The EK of alg, loaded (created and persisted first if absent). Release with tpmdev_tr_close. */
int tpmdev_ek_load(struct tpmdev *t, enum tpmdev_key_alg alg, ESYS_TR *ret_tr, TPM2B_PUBLIC *ret_pub,
		   TPM2B_NAME *ret_qn);

/* Test hook: the ESYS context. */
static inline ESYS_CONTEXT *tpmdev_esys(struct tpmdev *t) { return t->esys; }

#endif
