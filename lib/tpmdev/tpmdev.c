/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/tpmdev core: opening a TPM, errors, handles and sessions, the EK and its
 * certificate, PCRs and quotes. Keys below the EK and the SRK are in
 * tpmdev-keys.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "crypto/crypto.h"
#include "tpmdev/tpmdev-priv.h"
#include "util/util.h"

/* TCG EK Credential Profile: PolicySecret(TPM_RH_ENDORSEMENT), the EK's "policy A". */
static const uint8_t ek_policy_a[32] = {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
	0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

/* PCR selections are sent with 3 bytes (24 PCRs), the PC Client minimum. */
#define PCR_SELECT_BYTES 3

/* ---- errors and retries ---- */

bool tpmdev_rc_busy(TSS2_RC rc)
{
	return rc == TPM2_RC_RETRY || rc == TPM2_RC_YIELDED || rc == TPM2_RC_TESTING;
}

void tpmdev_backoff(unsigned attempt)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 50L * 1000 * 1000 * attempt };

	nanosleep(&ts, NULL);
}

static int tpm_errno(TSS2_RC rc)
{
	TSS2_RC code;

	if (tpmdev_rc_busy(rc))
		return -EAGAIN;
	if (rc & TPM2_RC_FMT1) {
		/* format one: error number in the low 6 bits, parameter/handle/session above */
		code = rc & (TPM2_RC_FMT1 | 0x3f);
		switch (code) {
		case TPM2_RC_HANDLE:
			return -ENOENT;
		case TPM2_RC_AUTH_FAIL:
		case TPM2_RC_BAD_AUTH:
		case TPM2_RC_POLICY_FAIL:
		case TPM2_RC_POLICY_CC:
		case TPM2_RC_EXPIRED:
		case TPM2_RC_TICKET:
			return -EACCES;
		case TPM2_RC_INTEGRITY:
			return -EBADMSG;
		case TPM2_RC_ATTRIBUTES:
		case TPM2_RC_TYPE:
		case TPM2_RC_KEY:
		case TPM2_RC_SCHEME:
		case TPM2_RC_HASH:
			return -EPERM;
		case TPM2_RC_CURVE:
		case TPM2_RC_KEY_SIZE:
		case TPM2_RC_SYMMETRIC:
		case TPM2_RC_MODE:
		case TPM2_RC_KDF:
			return -ENOTSUP;
		default:
			return -EINVAL;
		}
	}
	code = rc & 0xfff;
	switch (code) {
	case TPM2_RC_OBJECT_MEMORY:
	case TPM2_RC_SESSION_MEMORY:
	case TPM2_RC_MEMORY:
	case TPM2_RC_OBJECT_HANDLES:
	case TPM2_RC_SESSION_HANDLES:
	case TPM2_RC_NV_SPACE:
		return -ENOSPC;
	case TPM2_RC_NV_DEFINED:
		return -EEXIST;
	case TPM2_RC_LOCKOUT:
	case TPM2_RC_NV_LOCKED:
	case TPM2_RC_NV_AUTHORIZATION:
	case TPM2_RC_AUTH_MISSING:
	case TPM2_RC_AUTH_UNAVAILABLE:
	case TPM2_RC_POLICY:
	case TPM2_RC_DISABLED:
		return -EACCES;
	case TPM2_RC_NV_UNINITIALIZED:
		return -ENOENT;
	case TPM2_RC_NV_RATE:
	case TPM2_RC_NV_UNAVAILABLE:
		return -EAGAIN;
	case TPM2_RC_COMMAND_CODE:
		return -ENOTSUP;
	default:
		return -EIO;
	}
}

static int tss_errno(TSS2_RC rc)
{
	TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;

	if (layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER)
		return tpm_errno(rc & ~TSS2_RC_LAYER_MASK);
	switch (rc & ~TSS2_RC_LAYER_MASK) {
	case TSS2_BASE_RC_MEMORY:
		return -ENOMEM;
	case TSS2_BASE_RC_NO_CONNECTION:
		return -ECONNREFUSED;
	case TSS2_BASE_RC_TRY_AGAIN:
		return -EAGAIN;
	case TSS2_BASE_RC_BAD_VALUE:
	case TSS2_BASE_RC_BAD_REFERENCE:
	case TSS2_BASE_RC_BAD_SIZE:
		return -EINVAL;
	case TSS2_BASE_RC_NOT_SUPPORTED:
	case TSS2_BASE_RC_NOT_IMPLEMENTED:
		return -ENOTSUP;
	case TSS2_BASE_RC_MALFORMED_RESPONSE:
	case TSS2_BASE_RC_INSUFFICIENT_RESPONSE:
	case TSS2_BASE_RC_RSP_AUTH_FAILED:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

int tpmdev_tss_err(TSS2_RC rc, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return kq_err(tss_errno(rc), "%s: %s (0x%x)", what, Tss2_RC_Decode(rc), rc);
}

/* ---- context ---- */

int tpmdev_open(const char *tcti, struct tpmdev **ret)
{
	struct tpmdev *t;
	TSS2_RC rc;
	int r;

	tpm_quiet_tss_log();
	if (!tcti)
		tcti = TPMDEV_DEFAULT_TCTI;
	t = calloc(1, sizeof(*t));
	if (!t)
		return kq_err(-ENOMEM, "out of memory");
	rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpmdev_tss_err(rc, "cannot open TPM TCTI \"%s\"", tcti);
		goto fail;
	}
	rc = Esys_Initialize(&t->esys, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpmdev_tss_err(rc, "cannot initialise ESYS over \"%s\"", tcti);
		goto fail;
	}
	/* a simulator may be unstarted; a started TPM answers TPM_RC_INITIALIZE */
	TPMDEV_CALL(rc, Esys_Startup(t->esys, TPM2_SU_CLEAR));
	if (rc != TSS2_RC_SUCCESS && (rc & ~TSS2_RC_LAYER_MASK) != TPM2_RC_INITIALIZE) {
		r = tpmdev_tss_err(rc, "TPM2_Startup over \"%s\"", tcti);
		goto fail;
	}
	*ret = t;
	return 0;
fail:
	tpmdev_close(t);
	return r;
}

void tpmdev_close(struct tpmdev *t)
{
	if (!t)
		return;
	if (t->esys)
		Esys_Finalize(&t->esys);
	if (t->tcti)
		Tss2_TctiLdr_Finalize(&t->tcti);
	free(t);
}

/* ---- handles and sessions ---- */

void tpmdev_flush(struct tpmdev *t, ESYS_TR *tr)
{
	if (*tr != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, *tr);
	*tr = ESYS_TR_NONE;
}

void tpmdev_tr_close(struct tpmdev *t, ESYS_TR *tr)
{
	if (*tr != ESYS_TR_NONE)
		(void)Esys_TR_Close(t->esys, tr);
	*tr = ESYS_TR_NONE;
}

int tpmdev_handle_exists(struct tpmdev *t, TPM2_HANDLE handle, bool *ret)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	TSS2_RC rc;

	TPMDEV_CALL(rc, Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
					   handle, 1, &more, &cap));
	if (rc != TSS2_RC_SUCCESS)
		return tpmdev_tss_err(rc, "TPM2_GetCapability(handles, 0x%08x)", handle);
	*ret = cap->capability == TPM2_CAP_HANDLES && cap->data.handles.count >= 1 &&
	       cap->data.handles.handle[0] == handle;
	Esys_Free(cap);
	return 0;
}

int tpmdev_load_persistent(struct tpmdev *t, TPM2_HANDLE handle, ESYS_TR *ret_tr, TPM2B_PUBLIC *ret_pub,
			   TPM2B_NAME *ret_name, TPM2B_NAME *ret_qn)
{
	TPM2B_PUBLIC *pub = NULL;
	TPM2B_NAME *name = NULL, *qn = NULL;
	ESYS_TR tr = ESYS_TR_NONE;
	bool exists;
	TSS2_RC rc;
	int r;

	r = tpmdev_handle_exists(t, handle, &exists);
	if (r < 0)
		return r;
	if (!exists)
		return kq_err(-ENOENT, "no key at persistent handle 0x%08x", handle);
	TPMDEV_CALL(rc, Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr));
	if (rc != TSS2_RC_SUCCESS)
		return tpmdev_tss_err(rc, "loading persistent handle 0x%08x", handle);
	if (ret_pub || ret_name || ret_qn) {
		TPMDEV_CALL(rc, Esys_ReadPublic(t->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, &name,
						&qn));
		if (rc != TSS2_RC_SUCCESS) {
			tpmdev_tr_close(t, &tr);
			return tpmdev_tss_err(rc, "TPM2_ReadPublic(0x%08x)", handle);
		}
		if (ret_pub)
			*ret_pub = *pub;
		if (ret_name)
			*ret_name = *name;
		if (ret_qn)
			*ret_qn = *qn;
		Esys_Free(pub);
		Esys_Free(name);
		Esys_Free(qn);
	}
	*ret_tr = tr;
	return 0;
}

int tpmdev_ek_session(struct tpmdev *t, ESYS_TR *ret_session)
{
	const TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
	ESYS_TR s = ESYS_TR_NONE;
	TSS2_RC rc;

	TPMDEV_CALL(rc, Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
					      ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &s));
	if (rc != TSS2_RC_SUCCESS)
		return tpmdev_tss_err(rc, "TPM2_StartAuthSession(policy)");
	/* kept open after use so that every path flushes it the same way */
	rc = Esys_TRSess_SetAttributes(t->esys, s, TPMA_SESSION_CONTINUESESSION, TPMA_SESSION_CONTINUESESSION);
	if (rc == TSS2_RC_SUCCESS)
		TPMDEV_CALL(rc, Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, s, ESYS_TR_PASSWORD, ESYS_TR_NONE,
						  ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL));
	if (rc != TSS2_RC_SUCCESS) {
		tpmdev_flush(t, &s);
		return tpmdev_tss_err(rc, "TPM2_PolicySecret(endorsement) for the EK policy");
	}
	*ret_session = s;
	return 0;
}

/* ---- EK ---- */

static TPM2_HANDLE ek_handle(enum tpmdev_key_alg alg)
{
	return alg == TPMDEV_ECC_P256 ? TPMDEV_EK_ECC_HANDLE : TPMDEV_EK_RSA_HANDLE;
}

static const char *alg_name(enum tpmdev_key_alg alg)
{
	return alg == TPMDEV_ECC_P256 ? "ECC P-256" : "RSA-2048";
}

static bool alg_valid(enum tpmdev_key_alg alg)
{
	return alg == TPMDEV_RSA2048 || alg == TPMDEV_ECC_P256;
}

/* EK Credential Profile templates L-1 (RSA-2048) and L-2 (ECC P-256): unique is zero-filled. */
static void ek_template(enum tpmdev_key_alg alg, TPM2B_PUBLIC *ret)
{
	TPMT_PUBLIC *p = &ret->publicArea;

	memset(ret, 0, sizeof(*ret));
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
			      TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	p->authPolicy.size = sizeof(ek_policy_a);
	memcpy(p->authPolicy.buffer, ek_policy_a, sizeof(ek_policy_a));
	if (alg == TPMDEV_RSA2048) {
		p->type = TPM2_ALG_RSA;
		p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
		p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
		p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
		p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
		p->parameters.rsaDetail.keyBits = 2048;
		p->parameters.rsaDetail.exponent = 0;
		p->unique.rsa.size = 256;
	} else {
		p->type = TPM2_ALG_ECC;
		p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
		p->parameters.eccDetail.symmetric.keyBits.aes = 128;
		p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
		p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
		p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
		p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
		p->unique.ecc.x.size = 32;
		p->unique.ecc.y.size = 32;
	}
}

/* The kind of key the rest of the module can use as this EK: policy A, restricted decrypt, right size. */
static int ek_check(enum tpmdev_key_alg alg, const TPMT_PUBLIC *p)
{
	const TPMA_OBJECT use = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_SIGN_ENCRYPT;
	bool ok = p->nameAlg == TPM2_ALG_SHA256 &&
		  (p->objectAttributes & use) == (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT) &&
		  p->authPolicy.size == sizeof(ek_policy_a) &&
		  memcmp(p->authPolicy.buffer, ek_policy_a, sizeof(ek_policy_a)) == 0;

	if (alg == TPMDEV_RSA2048)
		ok = ok && p->type == TPM2_ALG_RSA && p->parameters.rsaDetail.keyBits == 2048;
	else
		ok = ok && p->type == TPM2_ALG_ECC && p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256;
	if (!ok)
		return kq_err(-EEXIST, "persistent handle 0x%08x holds a key that is not a %s EK with policy A",
			      ek_handle(alg), alg_name(alg));
	return 0;
}

/* Makes a primary key in hierarchy from tmpl and persists it at handle (owner auth). */
static int create_persistent_primary(struct tpmdev *t, ESYS_TR hierarchy, const TPM2B_PUBLIC *tmpl,
				     TPM2_HANDLE handle, const char *what)
{
	const TPM2B_SENSITIVE_CREATE sens = { 0 };
	const TPM2B_DATA outside = { 0 };
	const TPML_PCR_SELECTION no_pcrs = { 0 };
	ESYS_TR obj = ESYS_TR_NONE, pers = ESYS_TR_NONE;
	TSS2_RC rc;
	int r = 0;

	TPMDEV_CALL(rc, Esys_CreatePrimary(t->esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
					   tmpl, &outside, &no_pcrs, &obj, NULL, NULL, NULL, NULL));
	if (rc != TSS2_RC_SUCCESS)
		return tpmdev_tss_err(rc, "TPM2_CreatePrimary(%s)", what);
	TPMDEV_CALL(rc, Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE,
					  ESYS_TR_NONE, handle, &pers));
	if (rc != TSS2_RC_SUCCESS)
		r = tpmdev_tss_err(rc, "TPM2_EvictControl(%s to 0x%08x)", what, handle);
	tpmdev_tr_close(t, &pers);
	tpmdev_flush(t, &obj);
	return r;
}

int tpmdev_ek_load(struct tpmdev *t, enum tpmdev_key_alg alg, ESYS_TR *ret_tr, TPM2B_PUBLIC *ret_pub,
		   TPM2B_NAME *ret_qn)
{
	TPM2_HANDLE h = ek_handle(alg);
	TPM2B_PUBLIC pub;
	ESYS_TR tr = ESYS_TR_NONE;
	int r;

	if (!alg_valid(alg))
		return kq_err(-EINVAL, "unknown key algorithm %d", (int)alg);
	r = tpmdev_load_persistent(t, h, &tr, &pub, NULL, ret_qn);
	if (r == -ENOENT) {
		TPM2B_PUBLIC tmpl;

		ek_template(alg, &tmpl);
		r = create_persistent_primary(t, ESYS_TR_RH_ENDORSEMENT, &tmpl, h, "EK");
		if (r < 0)
			return r;
		r = tpmdev_load_persistent(t, h, &tr, &pub, NULL, ret_qn);
	}
	if (r < 0)
		return r;
	r = ek_check(alg, &pub.publicArea);
	if (r < 0) {
		tpmdev_tr_close(t, &tr);
		return r;
	}
	if (ret_pub)
		*ret_pub = pub;
	*ret_tr = tr;
	return 0;
}

int tpmdev_ek(struct tpmdev *t, enum tpmdev_key_alg alg, TPM2B_PUBLIC *ret_pub)
{
	ESYS_TR tr = ESYS_TR_NONE;
	int r;

	r = tpmdev_ek_load(t, alg, &tr, ret_pub, NULL);
	tpmdev_tr_close(t, &tr);
	return r;
}

/* ---- EK certificate ---- */

static int nv_buffer_max(struct tpmdev *t, uint32_t *ret)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	uint32_t v = 512; /* what every TPM can do, if it does not say */
	TSS2_RC rc;

	if (t->nv_buffer_max) {
		*ret = t->nv_buffer_max;
		return 0;
	}
	TPMDEV_CALL(rc, Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
					   TPM2_CAP_TPM_PROPERTIES, TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap));
	if (rc != TSS2_RC_SUCCESS)
		return tpmdev_tss_err(rc, "TPM2_GetCapability(TPM_PT_NV_BUFFER_MAX)");
	if (cap->capability == TPM2_CAP_TPM_PROPERTIES && cap->data.tpmProperties.count >= 1 &&
	    cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX &&
	    cap->data.tpmProperties.tpmProperty[0].value > 0)
		v = cap->data.tpmProperties.tpmProperty[0].value;
	Esys_Free(cap);
	if (v > TPM2_MAX_NV_BUFFER_SIZE)
		v = TPM2_MAX_NV_BUFFER_SIZE;
	t->nv_buffer_max = v;
	*ret = v;
	return 0;
}

/* Length of the DER SEQUENCE at the start of buf (definite length), -EBADMSG if there is none. */
static int der_seq_len(const uint8_t *buf, size_t len, size_t *ret)
{
	size_t hdr = 2, body = 0;

	if (len < 2 || buf[0] != 0x30)
		return kq_err(-EBADMSG, "EK certificate in NV is not a DER SEQUENCE");
	if (buf[1] < 0x80) {
		body = buf[1];
	} else {
		unsigned n = buf[1] & 0x7f;

		if (n == 0 || n > 3 || len < 2 + (size_t)n)
			return kq_err(-EBADMSG, "EK certificate in NV has a bad DER length");
		for (unsigned i = 0; i < n; i++)
			body = body << 8 | buf[2 + i];
		hdr += n;
	}
	if (body > len - hdr)
		return kq_err(-EBADMSG, "EK certificate in NV is truncated (%zu bytes, DER says %zu)", len,
			      hdr + body);
	*ret = hdr + body;
	return 0;
}

int tpmdev_ek_cert(struct tpmdev *t, enum tpmdev_key_alg alg, uint8_t **ret_der, size_t *ret_len)
{
	TPM2_HANDLE idx = alg == TPMDEV_ECC_P256 ? TPMDEV_EK_CERT_ECC_NV : TPMDEV_EK_CERT_RSA_NV;
	TPM2B_NV_PUBLIC *nvpub = NULL;
	ESYS_TR nv = ESYS_TR_NONE, auth;
	_cleanup_free_ uint8_t *buf = NULL;
	uint32_t chunk = 0;
	uint16_t size;
	TPMA_NV attrs;
	bool exists;
	size_t der_len = 0;
	TSS2_RC rc;
	int r;

	if (!alg_valid(alg))
		return kq_err(-EINVAL, "unknown key algorithm %d", (int)alg);
	r = tpmdev_handle_exists(t, idx, &exists);
	if (r < 0)
		return r;
	if (!exists)
		return kq_err(-ENOENT, "no %s EK certificate: NV index 0x%08x is not defined", alg_name(alg), idx);
	r = nv_buffer_max(t, &chunk);
	if (r < 0)
		return r;
	TPMDEV_CALL(rc, Esys_TR_FromTPMPublic(t->esys, idx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv));
	if (rc != TSS2_RC_SUCCESS)
		return tpmdev_tss_err(rc, "loading NV index 0x%08x", idx);
	TPMDEV_CALL(rc, Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nvpub, NULL));
	if (rc != TSS2_RC_SUCCESS) {
		r = tpmdev_tss_err(rc, "TPM2_NV_ReadPublic(0x%08x)", idx);
		goto out;
	}
	size = nvpub->nvPublic.dataSize;
	attrs = nvpub->nvPublic.attributes;
	Esys_Free(nvpub);
	if (!(attrs & TPMA_NV_WRITTEN) || size == 0) {
		r = kq_err(-ENOENT, "no %s EK certificate: NV index 0x%08x is empty", alg_name(alg), idx);
		goto out;
	}
	if (attrs & TPMA_NV_AUTHREAD)
		auth = nv;
	else if (attrs & TPMA_NV_OWNERREAD)
		auth = ESYS_TR_RH_OWNER;
	else {
		r = kq_err(-EACCES, "NV index 0x%08x can be read neither with its auth nor by the owner", idx);
		goto out;
	}
	buf = malloc(size);
	if (!buf) {
		r = kq_err(-ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t off = 0; off < size;) {
		uint16_t n = (uint16_t)(size - off < chunk ? size - off : chunk);
		TPM2B_MAX_NV_BUFFER *data = NULL;

		TPMDEV_CALL(rc, Esys_NV_Read(t->esys, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
					     (uint16_t)off, &data));
		if (rc != TSS2_RC_SUCCESS) {
			r = tpmdev_tss_err(rc, "TPM2_NV_Read(0x%08x, %u bytes at %u)", idx, n, off);
			goto out;
		}
		if (data->size != n) {
			Esys_Free(data);
			r = kq_err(-EBADMSG, "TPM2_NV_Read(0x%08x) returned %u bytes, asked for %u", idx,
				   data->size, n);
			goto out;
		}
		memcpy(buf + off, data->buffer, n);
		Esys_Free(data);
		off += n;
	}
	r = der_seq_len(buf, size, &der_len);
	if (r < 0)
		goto out;
	*ret_der = TAKE_PTR(buf);
	*ret_len = der_len;
out:
	tpmdev_tr_close(t, &nv);
	return r;
}

/* ---- PCRs ---- */

static uint32_t sel_mask(const TPMS_PCR_SELECTION *s)
{
	uint32_t m = 0;

	for (unsigned i = 0; i < s->sizeofSelect && i < 4; i++)
		m |= (uint32_t)s->pcrSelect[i] << (8 * i);
	return m;
}

/*
 * Checks a caller's selection and rewrites it with 3-byte masks, dropping empty
 * banks: at most TPM_MAX_BANKS distinct supported banks, PCRs 0-23, not empty.
 */
static int sel_normalise(const TPML_PCR_SELECTION *in, TPML_PCR_SELECTION *out)
{
	memset(out, 0, sizeof(*out));
	if (!in || in->count > TPM2_NUM_PCR_BANKS)
		return kq_err(-EINVAL, "PCR selection of %u banks", in ? in->count : 0);
	for (uint32_t i = 0; i < in->count; i++) {
		const TPMS_PCR_SELECTION *s = &in->pcrSelections[i];
		uint32_t m;

		if (s->sizeofSelect > 4 || (s->sizeofSelect == 4 && s->pcrSelect[3]))
			return kq_err(-EINVAL, "PCR selection beyond PCR %d", TPM_NUM_PCRS - 1);
		m = sel_mask(s);
		if (!m)
			continue;
		if (!kq_hash_size(s->hash))
			return kq_err(-EINVAL, "PCR bank 0x%04x is not supported", s->hash);
		for (uint32_t j = 0; j < out->count; j++)
			if (out->pcrSelections[j].hash == s->hash)
				return kq_err(-EINVAL, "PCR selection names the %s bank twice", kq_hash_name(s->hash));
		if (out->count >= TPM_MAX_BANKS)
			return kq_err(-EINVAL, "PCR selection of more than %d banks", TPM_MAX_BANKS);
		out->pcrSelections[out->count].hash = s->hash;
		out->pcrSelections[out->count].sizeofSelect = PCR_SELECT_BYTES;
		for (unsigned k = 0; k < PCR_SELECT_BYTES; k++)
			out->pcrSelections[out->count].pcrSelect[k] = (uint8_t)(m >> (8 * k));
		out->count++;
	}
	if (!out->count)
		return kq_err(-EINVAL, "empty PCR selection");
	return 0;
}

static bool sel_empty(const TPML_PCR_SELECTION *sel)
{
	for (uint32_t i = 0; i < sel->count; i++)
		if (sel_mask(&sel->pcrSelections[i]))
			return false;
	return true;
}

/* Files the values of one TPM2_PCR_Read answer; clears what was read from left. */
static int pcr_take(const TPML_PCR_SELECTION *got, const TPML_DIGEST *vals, TPML_PCR_SELECTION *left,
		    struct tpm_pcrs *pcrs, bool *ret_progress)
{
	uint32_t vi = 0;
	bool progress = false;

	if (got->count > TPM2_NUM_PCR_BANKS)
		return kq_err(-EBADMSG, "TPM2_PCR_Read returned %u banks", got->count);
	for (uint32_t i = 0; i < got->count; i++) {
		const TPMS_PCR_SELECTION *g = &got->pcrSelections[i];
		TPMS_PCR_SELECTION *l = NULL;
		struct tpm_pcr_bank *b;
		size_t hsize = kq_hash_size(g->hash);
		uint32_t m = 0;
		int r;

		for (uint32_t j = 0; j < left->count; j++)
			if (left->pcrSelections[j].hash == g->hash)
				l = &left->pcrSelections[j];
		if (g->sizeofSelect > sizeof(g->pcrSelect))
			return kq_err(-EBADMSG, "TPM2_PCR_Read returned a selection of %u bytes", g->sizeofSelect);
		for (unsigned k = 0; k < g->sizeofSelect; k++)
			if (g->pcrSelect[k] && k >= PCR_SELECT_BYTES)
				return kq_err(-EBADMSG, "TPM2_PCR_Read returned PCRs beyond 23");
		m = sel_mask(g);
		if (!m)
			continue;
		if (!l || (m & ~sel_mask(l)))
			return kq_err(-EBADMSG, "TPM2_PCR_Read returned PCRs that were not asked for");
		r = tpm_pcrs_add_bank(pcrs, g->hash, &b);
		if (r < 0)
			return r;
		for (unsigned p = 0; p < TPM_NUM_PCRS; p++) {
			if (!(m & (1u << p)))
				continue;
			if (vi >= vals->count || vi >= ARRAY_SIZE(vals->digests) || vals->digests[vi].size != hsize)
				return kq_err(-EBADMSG, "TPM2_PCR_Read returned too few or mis-sized values");
			memcpy(b->value[p], vals->digests[vi].buffer, hsize);
			b->mask |= 1u << p;
			l->pcrSelect[p / 8] &= (uint8_t)~(1u << (p % 8));
			vi++;
			progress = true;
		}
	}
	if (vi != vals->count)
		return kq_err(-EBADMSG, "TPM2_PCR_Read returned %u values for %u PCRs", vals->count, vi);
	*ret_progress = progress;
	return 0;
}

/* One attempt: -EAGAIN (no message) if the update counter moved between reads. */
static int pcr_read_once(struct tpmdev *t, const TPML_PCR_SELECTION *sel, struct tpm_pcrs *ret)
{
	TPML_PCR_SELECTION left = *sel;
	struct tpm_pcrs pcrs = { 0 };
	uint32_t counter0 = 0;
	int r;

	/* banks in the order of the selection, even if the TPM answers in another */
	for (uint32_t i = 0; i < sel->count; i++) {
		struct tpm_pcr_bank *b;

		r = tpm_pcrs_add_bank(&pcrs, sel->pcrSelections[i].hash, &b);
		if (r < 0)
			return r;
	}
	for (unsigned round = 0; !sel_empty(&left); round++) {
		TPML_PCR_SELECTION *got = NULL;
		TPML_DIGEST *vals = NULL;
		uint32_t counter;
		bool progress = false;
		TSS2_RC rc;

		TPMDEV_CALL(rc, Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &left, &counter,
					      &got, &vals));
		if (rc != TSS2_RC_SUCCESS)
			return tpmdev_tss_err(rc, "TPM2_PCR_Read");
		if (round > 0 && counter != counter0) {
			Esys_Free(got);
			Esys_Free(vals);
			return -EAGAIN;
		}
		counter0 = counter;
		r = pcr_take(got, vals, &left, &pcrs, &progress);
		Esys_Free(got);
		Esys_Free(vals);
		if (r < 0)
			return r;
		if (!progress) {
			for (uint32_t i = 0; i < left.count; i++)
				if (sel_mask(&left.pcrSelections[i]))
					return kq_err(-ENOENT, "the TPM has no values for the %s PCR bank",
						      kq_hash_name(left.pcrSelections[i].hash));
		}
	}
	*ret = pcrs;
	return 0;
}

static int pcr_read_norm(struct tpmdev *t, const TPML_PCR_SELECTION *sel, struct tpm_pcrs *ret)
{
	int r = -EAGAIN;

	for (unsigned attempt = 0; attempt < 3 && r == -EAGAIN; attempt++)
		r = pcr_read_once(t, sel, ret);
	if (r == -EAGAIN)
		return kq_err(-EAGAIN, "PCR values kept changing while being read");
	return r;
}

int tpmdev_pcr_read(struct tpmdev *t, const TPML_PCR_SELECTION *sel, struct tpm_pcrs *ret_pcrs)
{
	TPML_PCR_SELECTION norm;
	int r;

	r = sel_normalise(sel, &norm);
	if (r < 0)
		return r;
	return pcr_read_norm(t, &norm, ret_pcrs);
}

int tpmdev_pcr_extend(struct tpmdev *t, unsigned pcr, uint16_t alg, const uint8_t *digest)
{
	TPML_DIGEST_VALUES v = { .count = 1 };
	size_t hsize = kq_hash_size(alg);
	TSS2_RC rc;

	if (pcr >= TPM_NUM_PCRS)
		return kq_err(-EINVAL, "PCR %u does not exist", pcr);
	if (!hsize || hsize > sizeof(v.digests[0].digest))
		return kq_err(-EINVAL, "PCR bank 0x%04x is not supported", alg);
	v.digests[0].hashAlg = alg;
	memcpy(&v.digests[0].digest, digest, hsize);
	TPMDEV_CALL(rc, Esys_PCR_Extend(t->esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
					&v));
	if (rc != TSS2_RC_SUCCESS)
		return tpmdev_tss_err(rc, "TPM2_PCR_Extend(PCR %u, %s)", pcr, kq_hash_name(alg));
	return 0;
}

/* ---- quote ---- */

static int copy_attest(const TPM2B_ATTEST *a, uint8_t **ret, size_t *ret_len)
{
	uint8_t *buf;

	if (a->size == 0 || a->size > sizeof(a->attestationData))
		return kq_err(-EBADMSG, "the TPM returned an attestation of %u bytes", a->size);
	buf = malloc(a->size);
	if (!buf)
		return kq_err(-ENOMEM, "out of memory");
	memcpy(buf, a->attestationData, a->size);
	*ret = buf;
	*ret_len = a->size;
	return 0;
}

/* Whether pcrs are the values the quote attests (its PCR digest over its selection). */
static int quote_matches(const TPM2B_ATTEST *quoted, const TPMT_SIGNATURE *sig, const struct tpm_pcrs *pcrs,
			 bool *ret)
{
	TPMS_ATTEST a;
	uint8_t digest[KQ_MAX_DIGEST];
	size_t dlen;
	int r;

	r = tpm_attest_unmarshal(quoted->attestationData, quoted->size, &a);
	if (r < 0)
		return r;
	if (a.magic != TPM2_GENERATED_VALUE || a.type != TPM2_ST_ATTEST_QUOTE)
		return kq_err(-EBADMSG, "TPM2_Quote returned something that is not a quote");
	r = tpm_pcrs_digest(pcrs, &a.attested.quote.pcrSelect, tpm_sig_hash(sig), digest, &dlen);
	if (r < 0)
		return r;
	*ret = a.attested.quote.pcrDigest.size == dlen &&
	       CRYPTO_memcmp(a.attested.quote.pcrDigest.buffer, digest, dlen) == 0;
	return 0;
}

int tpmdev_quote(struct tpmdev *t, TPM2_HANDLE ak, const TPML_PCR_SELECTION *sel, const uint8_t *nonce,
		 size_t nonce_len, uint8_t **ret_attest, size_t *ret_attest_len, TPMT_SIGNATURE *ret_sig,
		 struct tpm_pcrs *ret_pcrs)
{
	const TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPM2B_DATA qd = { 0 };
	TPML_PCR_SELECTION norm;
	ESYS_TR tr = ESYS_TR_NONE;
	int r;

	if (nonce_len > TPMDEV_MAX_QUALIFYING || (nonce_len && !nonce))
		return kq_err(-EINVAL, "quote nonce of %zu bytes (max %d)", nonce_len, TPMDEV_MAX_QUALIFYING);
	r = sel_normalise(sel, &norm);
	if (r < 0)
		return r;
	qd.size = (UINT16)nonce_len;
	if (nonce_len)
		memcpy(qd.buffer, nonce, nonce_len);
	r = tpmdev_load_persistent(t, ak, &tr, NULL, NULL, NULL);
	if (r < 0)
		return r;
	r = -EAGAIN;
	for (unsigned attempt = 0; attempt < 3 && r == -EAGAIN; attempt++) {
		TPM2B_ATTEST *quoted = NULL;
		TPMT_SIGNATURE *sig = NULL;
		struct tpm_pcrs pcrs;
		bool match = false;
		TSS2_RC rc;

		TPMDEV_CALL(rc, Esys_Quote(t->esys, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qd, &scheme,
					   &norm, &quoted, &sig));
		if (rc != TSS2_RC_SUCCESS) {
			r = tpmdev_tss_err(rc, "TPM2_Quote(0x%08x)", ak);
			break;
		}
		r = pcr_read_norm(t, &norm, &pcrs);
		if (r == 0)
			r = quote_matches(quoted, sig, &pcrs, &match);
		if (r == 0 && !match)
			r = -EAGAIN;
		if (r == 0)
			r = copy_attest(quoted, ret_attest, ret_attest_len);
		if (r == 0) {
			*ret_sig = *sig;
			*ret_pcrs = pcrs;
		}
		Esys_Free(quoted);
		Esys_Free(sig);
	}
	if (r == -EAGAIN)
		r = kq_err(-EAGAIN, "PCRs kept changing between the quote and reading them");
	tpmdev_tr_close(t, &tr);
	return r;
}

/* ---- persistent objects ---- */

int tpmdev_evict(struct tpmdev *t, TPM2_HANDLE handle)
{
	ESYS_TR tr = ESYS_TR_NONE, gone = ESYS_TR_NONE;
	TSS2_RC rc;
	int r;

	if ((handle & 0xff000000u) != 0x81000000u) /* TPM2_HR_PERSISTENT shifts a signed int */
		return kq_err(-EINVAL, "0x%08x is not a persistent handle", handle);
	r = tpmdev_load_persistent(t, handle, &tr, NULL, NULL, NULL);
	if (r < 0)
		return r;
	TPMDEV_CALL(rc, Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
					  ESYS_TR_NONE, handle, &gone));
	if (rc != TSS2_RC_SUCCESS)
		r = tpmdev_tss_err(rc, "TPM2_EvictControl(remove 0x%08x)", handle);
	tpmdev_tr_close(t, &gone);
	/* ESYS keeps the record of an evicted object; an already-closed one is harmless */
	tpmdev_tr_close(t, &tr);
	return r;
}
