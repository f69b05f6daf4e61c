/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/tpmdev keys below a primary: the AK (under the EK), the vTPM-CA key
 * (under the SRK), credential activation, certification and signing.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>

#include <tss2/tss2_esys.h>

#include "crypto/crypto.h"
#include "tpmdev/tpmdev-priv.h"
#include "util/util.h"

static bool owner_persistent(TPM2_HANDLE h)
{
	/* owner-authorised persistent range (0x81800000 and up is the platform's) */
	return h >= 0x81000000u && h <= 0x817fffffu;
}

/* Parent of a key: a primary whose use needs either the EK policy or nothing. */
struct parent {
	ESYS_TR tr;
	TPM2B_NAME qn;
	bool ek; /* needs the PolicySecret(endorsement) session */
	const char *what;
};

/* The session that authorises use of the parent: a fresh EK policy session or the empty password. */
static int parent_session(struct tpmdev *t, const struct parent *p, ESYS_TR *ret)
{
	if (!p->ek) {
		*ret = ESYS_TR_PASSWORD;
		return 0;
	}
	return tpmdev_ek_session(t, ret);
}

static void parent_session_done(struct tpmdev *t, const struct parent *p, ESYS_TR *s)
{
	if (p->ek)
		tpmdev_flush(t, s);
	*s = ESYS_TR_NONE;
}

/* What a child key is for. */
enum key_use { USE_SIGN, USE_SIGN_RESTRICTED, USE_DECRYPT };

/* Payload key: RSA-2048 decryption only, RSAES-OAEP with SHA-256 enforced by the TPM. */
static void decrypt_template(TPM2B_PUBLIC *ret)
{
	TPMT_PUBLIC *p = &ret->publicArea;

	memset(ret, 0, sizeof(*ret));
	p->type = TPM2_ALG_RSA;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
			      TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_DECRYPT;
	p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
	p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_OAEP;
	p->parameters.rsaDetail.scheme.details.oaep.hashAlg = TPM2_ALG_SHA256;
	p->parameters.rsaDetail.keyBits = 2048;
	p->parameters.rsaDetail.exponent = 0;
}

static bool decrypt_key_matches(const TPMT_PUBLIC *p)
{
	const TPMA_OBJECT checked = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
				    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_SIGN_ENCRYPT |
				    TPMA_OBJECT_RESTRICTED;
	const TPMA_OBJECT want = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
				 TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_DECRYPT;

	return (p->objectAttributes & checked) == want && p->type == TPM2_ALG_RSA &&
	       p->parameters.rsaDetail.keyBits == 2048 && p->parameters.rsaDetail.scheme.scheme == TPM2_ALG_OAEP &&
	       p->parameters.rsaDetail.scheme.details.oaep.hashAlg == TPM2_ALG_SHA256;
}

/* Signing key template: RSA-2048 RSASSA-SHA256 or ECC P-256 ECDSA-SHA256. */
static void sign_template(enum tpmdev_key_alg alg, bool restricted, TPM2B_PUBLIC *ret)
{
	TPMT_PUBLIC *p = &ret->publicArea;

	memset(ret, 0, sizeof(*ret));
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
			      TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT;
	if (restricted)
		p->objectAttributes |= TPMA_OBJECT_RESTRICTED;
	if (alg == TPMDEV_RSA2048) {
		p->type = TPM2_ALG_RSA;
		p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
		p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
		p->parameters.rsaDetail.keyBits = 2048;
		p->parameters.rsaDetail.exponent = 0;
	} else {
		p->type = TPM2_ALG_ECC;
		p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
		p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
		p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
		p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	}
}

/*
 * Whether an existing key is what sign_template would make: the same type,
 * size, scheme and the attributes that matter (fixedTPM, fixedParent,
 * sensitiveDataOrigin, sign, restricted as asked, no decrypt).
 */
static bool sign_key_matches(enum tpmdev_key_alg alg, bool restricted, const TPMT_PUBLIC *p)
{
	const TPMA_OBJECT must = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
				 TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT;
	const TPMA_OBJECT checked = must | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	TPMA_OBJECT want = must | (restricted ? TPMA_OBJECT_RESTRICTED : 0);

	if ((p->objectAttributes & checked) != want)
		return false;
	if (alg == TPMDEV_RSA2048)
		return p->type == TPM2_ALG_RSA && p->parameters.rsaDetail.keyBits == 2048 &&
		       p->parameters.rsaDetail.scheme.scheme == TPM2_ALG_RSASSA &&
		       p->parameters.rsaDetail.scheme.details.rsassa.hashAlg == TPM2_ALG_SHA256;
	return p->type == TPM2_ALG_ECC && p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 &&
	       p->parameters.eccDetail.scheme.scheme == TPM2_ALG_ECDSA &&
	       p->parameters.eccDetail.scheme.details.ecdsa.hashAlg == TPM2_ALG_SHA256;
}

/*
 * Returns the key at persistent if it is the key asked for under parent, else
 * creates it under parent and persists it there.
 */
static int child_key(struct tpmdev *t, const struct parent *parent, enum tpmdev_key_alg alg, enum key_use use,
		     TPM2_HANDLE persistent, const char *what, TPM2B_PUBLIC *ret_pub, TPM2B_NAME *ret_name)
{
	bool restricted = use == USE_SIGN_RESTRICTED;
	const TPM2B_SENSITIVE_CREATE sens = { 0 };
	const TPM2B_DATA outside = { 0 };
	const TPML_PCR_SELECTION no_pcrs = { 0 };
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC *pub = NULL, tmpl, cur;
	TPM2B_NAME name, qn, want_qn;
	ESYS_TR s = ESYS_TR_NONE, obj = ESYS_TR_NONE, pers = ESYS_TR_NONE, tr = ESYS_TR_NONE;
	TSS2_RC rc;
	int r;

	r = tpmdev_load_persistent(t, persistent, &tr, &cur, &name, &qn);
	if (r == 0) {
		tpmdev_tr_close(t, &tr);
		if (use == USE_DECRYPT ? !decrypt_key_matches(&cur.publicArea)
				       : !sign_key_matches(alg, restricted, &cur.publicArea))
			return kq_err(-EEXIST, "persistent handle 0x%08x holds a key that is not a %s %s", persistent,
				      alg == TPMDEV_ECC_P256 && use != USE_DECRYPT ? "ECC P-256" : "RSA-2048", what);
		/* the TPM's qualified name shows the key's parent */
		r = tpm_qualified_name(&parent->qn, &name, &want_qn);
		if (r < 0)
			return r;
		if (want_qn.size != qn.size || memcmp(want_qn.name, qn.name, qn.size) != 0)
			return kq_err(-EEXIST, "persistent handle 0x%08x holds a %s that is not a child of the %s",
				      persistent, what, parent->what);
		*ret_pub = cur;
		if (ret_name)
			*ret_name = name;
		return 0;
	}
	if (r != -ENOENT)
		return r;

	if (use == USE_DECRYPT)
		decrypt_template(&tmpl);
	else
		sign_template(alg, restricted, &tmpl);
	r = parent_session(t, parent, &s);
	if (r < 0)
		return r;
	TPMDEV_CALL(rc, Esys_Create(t->esys, parent->tr, s, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside,
				    &no_pcrs, &priv, &pub, NULL, NULL, NULL));
	parent_session_done(t, parent, &s);
	if (rc != TSS2_RC_SUCCESS)
		return tpmdev_tss_err(rc, "TPM2_Create(%s under the %s)", what, parent->what);
	r = parent_session(t, parent, &s);
	if (r < 0)
		goto out;
	TPMDEV_CALL(rc, Esys_Load(t->esys, parent->tr, s, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, &obj));
	parent_session_done(t, parent, &s);
	if (rc != TSS2_RC_SUCCESS) {
		r = tpmdev_tss_err(rc, "TPM2_Load(%s under the %s)", what, parent->what);
		goto out;
	}
	TPMDEV_CALL(rc, Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE,
					  ESYS_TR_NONE, persistent, &pers));
	if (rc != TSS2_RC_SUCCESS) {
		r = tpmdev_tss_err(rc, "TPM2_EvictControl(%s to 0x%08x)", what, persistent);
		goto out;
	}
	tpmdev_tr_close(t, &pers);
	tpmdev_flush(t, &obj);
	r = tpmdev_load_persistent(t, persistent, &tr, &cur, &name, NULL);
	tpmdev_tr_close(t, &tr);
	if (r < 0)
		goto out;
	*ret_pub = cur;
	if (ret_name)
		*ret_name = name;
out:
	tpmdev_tr_close(t, &pers);
	tpmdev_flush(t, &obj);
	Esys_Free(priv);
	Esys_Free(pub);
	return r;
}

int tpmdev_ak(struct tpmdev *t, enum tpmdev_key_alg alg, TPM2_HANDLE persistent, TPM2B_PUBLIC *ret_pub,
	      TPM2B_NAME *ret_name)
{
	struct parent ek = { .tr = ESYS_TR_NONE, .ek = true, .what = "EK" };
	int r;

	if (alg != TPMDEV_RSA2048 && alg != TPMDEV_ECC_P256)
		return kq_err(-EINVAL, "unknown key algorithm %d", (int)alg);
	if (!owner_persistent(persistent))
		return kq_err(-EINVAL, "AK handle 0x%08x is not in the owner's persistent range", persistent);
	r = tpmdev_ek_load(t, alg, &ek.tr, NULL, &ek.qn);
	if (r < 0)
		return r;
	r = child_key(t, &ek, alg, USE_SIGN_RESTRICTED, persistent, "AK", ret_pub, ret_name);
	tpmdev_tr_close(t, &ek.tr);
	return r;
}

/* TCG Provisioning Guidance SRK template, RSA-2048: like the EK's, with userWithAuth and noDA, no policy. */
static void srk_template(TPM2B_PUBLIC *ret)
{
	TPMT_PUBLIC *p = &ret->publicArea;

	memset(ret, 0, sizeof(*ret));
	p->type = TPM2_ALG_RSA;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
			      TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
			      TPMA_OBJECT_DECRYPT;
	p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
	p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	p->parameters.rsaDetail.keyBits = 2048;
	p->unique.rsa.size = 256;
}

static int srk_load(struct tpmdev *t, struct parent *ret)
{
	const TPMA_OBJECT use = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_SIGN_ENCRYPT;
	TPM2B_PUBLIC pub;
	ESYS_TR tr = ESYS_TR_NONE;
	int r;

	r = tpmdev_load_persistent(t, TPMDEV_SRK_HANDLE, &tr, &pub, NULL, &ret->qn);
	if (r == -ENOENT) {
		const TPM2B_SENSITIVE_CREATE sens = { 0 };
		const TPM2B_DATA outside = { 0 };
		const TPML_PCR_SELECTION no_pcrs = { 0 };
		ESYS_TR obj = ESYS_TR_NONE, pers = ESYS_TR_NONE;
		TPM2B_PUBLIC tmpl;
		TSS2_RC rc;

		srk_template(&tmpl);
		TPMDEV_CALL(rc, Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
						   ESYS_TR_NONE, &sens, &tmpl, &outside, &no_pcrs, &obj, NULL, NULL,
						   NULL, NULL));
		if (rc != TSS2_RC_SUCCESS)
			return tpmdev_tss_err(rc, "TPM2_CreatePrimary(SRK)");
		TPMDEV_CALL(rc, Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE,
						  ESYS_TR_NONE, TPMDEV_SRK_HANDLE, &pers));
		tpmdev_tr_close(t, &pers);
		tpmdev_flush(t, &obj);
		if (rc != TSS2_RC_SUCCESS)
			return tpmdev_tss_err(rc, "TPM2_EvictControl(SRK to 0x%08x)", TPMDEV_SRK_HANDLE);
		r = tpmdev_load_persistent(t, TPMDEV_SRK_HANDLE, &tr, &pub, NULL, &ret->qn);
	}
	if (r < 0)
		return r;
	if ((pub.publicArea.objectAttributes & use) != (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT) ||
	    !(pub.publicArea.objectAttributes & TPMA_OBJECT_USERWITHAUTH)) {
		tpmdev_tr_close(t, &tr);
		return kq_err(-EEXIST, "persistent handle 0x%08x holds a key that is not a storage key usable with "
				       "its auth value", TPMDEV_SRK_HANDLE);
	}
	ret->tr = tr;
	ret->ek = false;
	ret->what = "SRK";
	return 0;
}

int tpmdev_ca_key(struct tpmdev *t, enum tpmdev_key_alg alg, TPM2_HANDLE persistent, TPM2B_PUBLIC *ret_pub,
		  TPM2B_NAME *ret_name)
{
	struct parent srk = { .tr = ESYS_TR_NONE };
	int r;

	if (alg != TPMDEV_RSA2048 && alg != TPMDEV_ECC_P256)
		return kq_err(-EINVAL, "unknown key algorithm %d", (int)alg);
	if (!owner_persistent(persistent))
		return kq_err(-EINVAL, "CA key handle 0x%08x is not in the owner's persistent range", persistent);
	r = srk_load(t, &srk);
	if (r < 0)
		return r;
	r = child_key(t, &srk, alg, USE_SIGN, persistent, "CA key", ret_pub, ret_name);
	tpmdev_tr_close(t, &srk.tr);
	return r;
}

int tpmdev_payload_key(struct tpmdev *t, TPM2_HANDLE persistent, TPM2B_PUBLIC *ret_pub, TPM2B_NAME *ret_name)
{
	struct parent srk = { .tr = ESYS_TR_NONE };
	int r;

	if (!owner_persistent(persistent))
		return kq_err(-EINVAL, "payload key handle 0x%08x is not in the owner's persistent range", persistent);
	r = srk_load(t, &srk);
	if (r < 0)
		return r;
	r = child_key(t, &srk, TPMDEV_RSA2048, USE_DECRYPT, persistent, "payload key", ret_pub, ret_name);
	tpmdev_tr_close(t, &srk.tr);
	return r;
}

int tpmdev_rsa_decrypt(struct tpmdev *t, TPM2_HANDLE key, const char *label, const uint8_t *in, size_t len,
		       uint8_t *out, size_t cap, size_t *ret_len)
{
	const TPMT_RSA_DECRYPT scheme = { .scheme = TPM2_ALG_OAEP, .details.oaep.hashAlg = TPM2_ALG_SHA256 };
	TPM2B_PUBLIC_KEY_RSA ct = { 0 };
	TPM2B_PUBLIC_KEY_RSA *pt = NULL;
	TPM2B_DATA lab = { 0 };
	ESYS_TR tr = ESYS_TR_NONE;
	size_t llen = label ? strlen(label) + 1 : 0; /* the TPM's label includes its terminating zero */
	TSS2_RC rc;
	int r;

	if (len == 0 || len > sizeof(ct.buffer) || llen > sizeof(lab.buffer))
		return kq_err(-EINVAL, "ciphertext of %zu bytes or label too long", len);
	ct.size = (uint16_t)len;
	memcpy(ct.buffer, in, len);
	lab.size = (uint16_t)llen;
	if (llen)
		memcpy(lab.buffer, label, llen);
	r = tpmdev_load_persistent(t, key, &tr, NULL, NULL, NULL);
	if (r < 0)
		return r;
	TPMDEV_CALL(rc, Esys_RSA_Decrypt(t->esys, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &ct, &scheme,
					 &lab, &pt));
	tpmdev_tr_close(t, &tr);
	if (rc != TSS2_RC_SUCCESS)
		return tpmdev_tss_err(rc, "TPM2_RSA_Decrypt(0x%08x)", key);
	if (pt->size > cap) {
		r = kq_err(-E2BIG, "TPM2_RSA_Decrypt returned %u bytes, %zu expected at most", pt->size, cap);
	} else {
		memcpy(out, pt->buffer, pt->size);
		*ret_len = pt->size;
		r = 0;
	}
	OPENSSL_cleanse(pt, sizeof(*pt));
	Esys_Free(pt);
	return r;
}

int tpmdev_activate_credential(struct tpmdev *t, enum tpmdev_key_alg ek_alg, TPM2_HANDLE ak,
			       const TPM2B_ID_OBJECT *blob, const TPM2B_ENCRYPTED_SECRET *seed,
			       TPM2B_DIGEST *ret_secret)
{
	ESYS_TR ek = ESYS_TR_NONE, key = ESYS_TR_NONE, s = ESYS_TR_NONE;
	TPM2B_DIGEST *cred = NULL;
	TSS2_RC rc;
	int r;

	if (!blob || !seed || blob->size > sizeof(blob->credential) || seed->size > sizeof(seed->secret))
		return kq_err(-EINVAL, "bad credential blob or seed");
	r = tpmdev_ek_load(t, ek_alg, &ek, NULL, NULL);
	if (r < 0)
		return r;
	r = tpmdev_load_persistent(t, ak, &key, NULL, NULL, NULL);
	if (r < 0)
		goto out;
	r = tpmdev_ek_session(t, &s);
	if (r < 0)
		goto out;
	/* the activated key needs its admin role (its auth value), the EK its policy */
	TPMDEV_CALL(rc, Esys_ActivateCredential(t->esys, key, ek, ESYS_TR_PASSWORD, s, ESYS_TR_NONE, blob, seed,
						&cred));
	if (rc != TSS2_RC_SUCCESS) {
		r = tpmdev_tss_err(rc, "TPM2_ActivateCredential(0x%08x with the EK)", ak);
		goto out;
	}
	if (cred->size > sizeof(cred->buffer)) {
		r = kq_err(-EBADMSG, "TPM2_ActivateCredential returned %u bytes", cred->size);
		goto out;
	}
	*ret_secret = *cred;
out:
	if (cred) {
		OPENSSL_cleanse(cred, sizeof(*cred));
		Esys_Free(cred);
	}
	tpmdev_flush(t, &s);
	tpmdev_tr_close(t, &key);
	tpmdev_tr_close(t, &ek);
	return r;
}

int tpmdev_certify(struct tpmdev *t, TPM2_HANDLE object, TPM2_HANDLE ak, const uint8_t *qualifying,
		   size_t qlen, uint8_t **ret_attest, size_t *ret_len, TPMT_SIGNATURE *ret_sig)
{
	const TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	ESYS_TR obj = ESYS_TR_NONE, key = ESYS_TR_NONE;
	TPM2B_ATTEST *info = NULL;
	TPMT_SIGNATURE *sig = NULL;
	TPM2B_DATA qd = { 0 };
	uint8_t *buf;
	TSS2_RC rc;
	int r;

	if (qlen > TPMDEV_MAX_QUALIFYING || (qlen && !qualifying))
		return kq_err(-EINVAL, "qualifying data of %zu bytes (max %d)", qlen, TPMDEV_MAX_QUALIFYING);
	qd.size = (UINT16)qlen;
	if (qlen)
		memcpy(qd.buffer, qualifying, qlen);
	r = tpmdev_load_persistent(t, object, &obj, NULL, NULL, NULL);
	if (r < 0)
		return r;
	r = tpmdev_load_persistent(t, ak, &key, NULL, NULL, NULL);
	if (r < 0)
		goto out;
	TPMDEV_CALL(rc, Esys_Certify(t->esys, obj, key, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE, &qd,
				     &scheme, &info, &sig));
	if (rc != TSS2_RC_SUCCESS) {
		r = tpmdev_tss_err(rc, "TPM2_Certify(0x%08x by 0x%08x)", object, ak);
		goto out;
	}
	if (info->size == 0 || info->size > sizeof(info->attestationData)) {
		r = kq_err(-EBADMSG, "TPM2_Certify returned an attestation of %u bytes", info->size);
		goto out;
	}
	buf = malloc(info->size);
	if (!buf) {
		r = kq_err(-ENOMEM, "out of memory");
		goto out;
	}
	memcpy(buf, info->attestationData, info->size);
	*ret_attest = buf;
	*ret_len = info->size;
	*ret_sig = *sig;
out:
	Esys_Free(info);
	Esys_Free(sig);
	tpmdev_tr_close(t, &key);
	tpmdev_tr_close(t, &obj);
	return r;
}

/* r || s of a TPM ECDSA signature as a DER ECDSA-Sig-Value. */
static int ecdsa_to_der(const TPMS_SIGNATURE_ECC *e, uint8_t **ret, size_t *ret_len)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *br = NULL, *bs = NULL;
	uint8_t *der = NULL, *p;
	int n, r = 0;

	if (e->signatureR.size == 0 || e->signatureR.size > sizeof(e->signatureR.buffer) ||
	    e->signatureS.size == 0 || e->signatureS.size > sizeof(e->signatureS.buffer)) {
		r = kq_err(-EBADMSG, "TPM2_Sign returned a malformed ECDSA signature");
		goto out;
	}
	if (!es || !(br = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL)) ||
	    !(bs = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL)) || !ECDSA_SIG_set0(es, br, bs)) {
		r = kq_err(-ENOMEM, "out of memory");
		goto out;
	}
	br = bs = NULL; /* owned by es now */
	n = i2d_ECDSA_SIG(es, NULL);
	if (n <= 0 || !(der = malloc((size_t)n))) {
		r = kq_err(-ENOMEM, "out of memory");
		goto out;
	}
	p = der;
	if (i2d_ECDSA_SIG(es, &p) != n) {
		r = kq_err(-EIO, "cannot encode the ECDSA signature");
		goto out;
	}
	*ret = TAKE_PTR(der);
	*ret_len = (size_t)n;
out:
	free(der);
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

int tpmdev_sign_digest(struct tpmdev *t, TPM2_HANDLE key, uint16_t hash_alg, const uint8_t *digest, size_t dlen,
		       uint8_t **ret_sig, size_t *ret_len)
{
	const TPMT_TK_HASHCHECK no_ticket = { .tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL };
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPMT_SIGNATURE *sig = NULL;
	TPM2B_DIGEST d = { 0 };
	TPM2B_PUBLIC pub;
	ESYS_TR tr = ESYS_TR_NONE;
	TPMI_ALG_SIG_SCHEME key_scheme;
	uint16_t key_hash;
	TSS2_RC rc;
	int r;

	if (!kq_hash_size(hash_alg) || dlen != kq_hash_size(hash_alg) || dlen > sizeof(d.buffer))
		return kq_err(-EINVAL, "digest of %zu bytes for hash 0x%04x", dlen, hash_alg);
	r = tpmdev_load_persistent(t, key, &tr, &pub, NULL, NULL);
	if (r < 0)
		return r;
	switch (pub.publicArea.type) {
	case TPM2_ALG_RSA:
		key_scheme = pub.publicArea.parameters.rsaDetail.scheme.scheme;
		key_hash = pub.publicArea.parameters.rsaDetail.scheme.details.anySig.hashAlg;
		if (key_scheme == TPM2_ALG_NULL) {
			scheme.scheme = TPM2_ALG_RSASSA;
			key_hash = hash_alg;
		} else if (key_scheme != TPM2_ALG_RSASSA) {
			r = kq_err(-EINVAL, "key 0x%08x signs with %s, not rsassa", key, tpm_sig_scheme_name(key_scheme));
			goto out;
		}
		break;
	case TPM2_ALG_ECC:
		key_scheme = pub.publicArea.parameters.eccDetail.scheme.scheme;
		key_hash = pub.publicArea.parameters.eccDetail.scheme.details.anySig.hashAlg;
		if (key_scheme == TPM2_ALG_NULL) {
			scheme.scheme = TPM2_ALG_ECDSA;
			key_hash = hash_alg;
		} else if (key_scheme != TPM2_ALG_ECDSA) {
			r = kq_err(-EINVAL, "key 0x%08x signs with %s, not ecdsa", key, tpm_sig_scheme_name(key_scheme));
			goto out;
		}
		break;
	default:
		r = kq_err(-EINVAL, "key 0x%08x is not an RSA or ECC key", key);
		goto out;
	}
	if (key_hash != hash_alg) {
		r = kq_err(-EINVAL, "key 0x%08x signs %s digests, not %s", key,
			   kq_hash_name(key_hash) ? kq_hash_name(key_hash) : "unknown", kq_hash_name(hash_alg));
		goto out;
	}
	if (scheme.scheme != TPM2_ALG_NULL)
		scheme.details.any.hashAlg = hash_alg;
	d.size = (UINT16)dlen;
	memcpy(d.buffer, digest, dlen);
	TPMDEV_CALL(rc, Esys_Sign(t->esys, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d, &scheme, &no_ticket,
				  &sig));
	if (rc != TSS2_RC_SUCCESS) {
		r = tpmdev_tss_err(rc, "TPM2_Sign(0x%08x)", key);
		goto out;
	}
	if (sig->sigAlg == TPM2_ALG_RSASSA) {
		const TPM2B_PUBLIC_KEY_RSA *s = &sig->signature.rsassa.sig;
		uint8_t *buf;

		if (s->size == 0 || s->size > sizeof(s->buffer)) {
			r = kq_err(-EBADMSG, "TPM2_Sign returned an RSA signature of %u bytes", s->size);
			goto out;
		}
		buf = malloc(s->size);
		if (!buf) {
			r = kq_err(-ENOMEM, "out of memory");
			goto out;
		}
		memcpy(buf, s->buffer, s->size);
		*ret_sig = buf;
		*ret_len = s->size;
	} else if (sig->sigAlg == TPM2_ALG_ECDSA) {
		r = ecdsa_to_der(&sig->signature.ecdsa, ret_sig, ret_len);
	} else {
		r = kq_err(-EBADMSG, "TPM2_Sign returned a %s signature", tpm_sig_scheme_name(sig->sigAlg));
	}
out:
	Esys_Free(sig);
	tpmdev_tr_close(t, &tr);
	return r;
}
