/* SPDX-License-Identifier: Apache-2.0 */
#include "tpm/tpm.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "util/util.h"

static void bn_freep(BIGNUM **p) { BN_free(*p); }
static void bld_freep(OSSL_PARAM_BLD **p) { OSSL_PARAM_BLD_free(*p); }
static void params_freep(OSSL_PARAM **p) { OSSL_PARAM_free(*p); }
static void pctx_freep(EVP_PKEY_CTX **p) { EVP_PKEY_CTX_free(*p); }
static void bio_freep(BIO **p) { BIO_free(*p); }

void tpm_quiet_tss_log(void)
{
	setenv("TSS2_LOG", "all+NONE", 0);
}

static int mu_fail(const char *what, TSS2_RC rc)
{
	return kq_err(TPM_E_MALFORMED, "%s is malformed (tss2-mu 0x%x)", what, rc);
}

#define UNMARSHAL_EXACT(fn, what)                                                         \
	do {                                                                              \
		size_t off = 0;                                                           \
		TSS2_RC rc;                                                               \
		if (len > TPM_MAX_BLOB)                                                   \
			return kq_err(TPM_E_MALFORMED, "%s: %zu bytes is over the limit", \
				      what, len);                                         \
		memset(ret, 0, sizeof(*ret));                                             \
		rc = fn(buf, len, &off, ret);                                             \
		if (rc != TSS2_RC_SUCCESS)                                                \
			return mu_fail(what, rc);                                         \
		if (off != len)                                                           \
			return kq_err(TPM_E_MALFORMED, "%s: %zu trailing bytes", what,    \
				      len - off);                                         \
	} while (0)

int tpm_attest_unmarshal(const uint8_t *buf, size_t len, TPMS_ATTEST *ret)
{
	UNMARSHAL_EXACT(Tss2_MU_TPMS_ATTEST_Unmarshal, "TPMS_ATTEST");
	return 0;
}

int tpm_signature_unmarshal(const uint8_t *buf, size_t len, TPMT_SIGNATURE *ret)
{
	UNMARSHAL_EXACT(Tss2_MU_TPMT_SIGNATURE_Unmarshal, "TPMT_SIGNATURE");
	return 0;
}

int tpm_tpmt_public_unmarshal(const uint8_t *buf, size_t len, TPMT_PUBLIC *ret)
{
	UNMARSHAL_EXACT(Tss2_MU_TPMT_PUBLIC_Unmarshal, "TPMT_PUBLIC");
	return 0;
}

int tpm_public_unmarshal(const uint8_t *buf, size_t len, TPM2B_PUBLIC *ret)
{
	UNMARSHAL_EXACT(Tss2_MU_TPM2B_PUBLIC_Unmarshal, "TPM2B_PUBLIC");
	/* the size field must describe exactly the public area that follows */
	if (len < 2 || (size_t)(buf[0] << 8 | buf[1]) != len - 2)
		return kq_err(TPM_E_MALFORMED, "TPM2B_PUBLIC: size field does not match its content");
	return 0;
}

static const char *curve_name(TPMI_ECC_CURVE curve, size_t *ret_bytes)
{
	switch (curve) {
	case TPM2_ECC_NIST_P256: *ret_bytes = 32; return "prime256v1";
	case TPM2_ECC_NIST_P384: *ret_bytes = 48; return "secp384r1";
	case TPM2_ECC_NIST_P521: *ret_bytes = 66; return "secp521r1";
	default: return NULL;
	}
}

static int pkey_fromdata(const char *type, OSSL_PARAM *params, EVP_PKEY **ret)
{
	_cleanup_(pctx_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		ERR_clear_error();
		return kq_err(TPM_E_MALFORMED, "the %s public key is not valid", type);
	}
	*ret = pkey;
	return 0;
}

static int rsa_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **ret)
{
	const TPM2B_PUBLIC_KEY_RSA *n = &pub->unique.rsa;
	uint32_t exp = pub->parameters.rsaDetail.exponent ? pub->parameters.rsaDetail.exponent : 65537;
	uint16_t bits = pub->parameters.rsaDetail.keyBits;
	_cleanup_(bn_freep) BIGNUM *bn_n = NULL, *bn_e = NULL;
	_cleanup_(bld_freep) OSSL_PARAM_BLD *bld = NULL;
	_cleanup_(params_freep) OSSL_PARAM *params = NULL;

	if (bits < 2048 || bits > 4096 || bits % 8)
		return kq_err(-ENOTSUP, "unsupported RSA key size %u (2048 to 4096 bits)", bits);
	if (n->size != bits / 8 || !(n->buffer[0] & 0x80))
		return kq_err(TPM_E_MALFORMED, "RSA modulus is not %u bits", bits);
	if (exp < 3 || !(exp & 1))
		return kq_err(TPM_E_MALFORMED, "RSA exponent %u is not valid", exp);
	bn_n = BN_bin2bn(n->buffer, n->size, NULL);
	bn_e = BN_new();
	bld = OSSL_PARAM_BLD_new();
	if (!bn_n || !bn_e || !bld || !BN_set_word(bn_e, exp) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)))
		return kq_err(-ENOMEM, "out of memory building an RSA key");
	return pkey_fromdata("RSA", params, ret);
}

static int ecc_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **ret)
{
	const TPMS_ECC_POINT *pt = &pub->unique.ecc;
	uint8_t point[1 + 2 * 66];
	size_t sz;
	const char *group = curve_name(pub->parameters.eccDetail.curveID, &sz);
	_cleanup_(bld_freep) OSSL_PARAM_BLD *bld = NULL;
	_cleanup_(params_freep) OSSL_PARAM *params = NULL;

	if (!group)
		return kq_err(-ENOTSUP, "unsupported ECC curve 0x%04x", pub->parameters.eccDetail.curveID);
	if (pt->x.size > sz || pt->y.size > sz || pt->x.size == 0 || pt->y.size == 0)
		return kq_err(TPM_E_MALFORMED, "ECC point coordinates do not fit the curve");
	/* uncompressed point, coordinates left-padded to the field size */
	memset(point, 0, sizeof(point));
	point[0] = 0x04;
	memcpy(point + 1 + sz - pt->x.size, pt->x.buffer, pt->x.size);
	memcpy(point + 1 + 2 * sz - pt->y.size, pt->y.buffer, pt->y.size);
	bld = OSSL_PARAM_BLD_new();
	if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * sz) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)))
		return kq_err(-ENOMEM, "out of memory building an ECC key");
	return pkey_fromdata("EC", params, ret);
}

int tpm_public_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **ret)
{
	switch (pub->type) {
	case TPM2_ALG_RSA:
		return rsa_pkey(pub, ret);
	case TPM2_ALG_ECC:
		return ecc_pkey(pub, ret);
	default:
		return kq_err(-ENOTSUP, "unsupported key type 0x%04x", pub->type);
	}
}

int tpm_public_name(const TPMT_PUBLIC *pub, TPM2B_NAME *ret)
{
	uint8_t buf[sizeof(TPMT_PUBLIC)];
	size_t off = 0, dlen = kq_hash_size(pub->nameAlg);
	TSS2_RC rc;
	int r;

	if (!dlen)
		return kq_err(-ENOTSUP, "unsupported name algorithm 0x%04x", pub->nameAlg);
	rc = Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof(buf), &off);
	if (rc != TSS2_RC_SUCCESS)
		return mu_fail("TPMT_PUBLIC", rc);
	ret->size = (UINT16)(2 + dlen);
	ret->name[0] = (uint8_t)(pub->nameAlg >> 8);
	ret->name[1] = (uint8_t)pub->nameAlg;
	r = kq_hash(pub->nameAlg, buf, off, ret->name + 2);
	return r;
}

int tpm_public_check_ak(const TPMT_PUBLIC *pub)
{
	const TPMA_OBJECT need = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
				 TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_RESTRICTED |
				 TPMA_OBJECT_SIGN_ENCRYPT;
	TPMA_OBJECT a = pub->objectAttributes;

	if (pub->type != TPM2_ALG_RSA && pub->type != TPM2_ALG_ECC)
		return kq_err(-EPERM, "the key is neither RSA nor ECC");
	if ((a & need) != need) {
		return kq_err(-EPERM, "the key is not a restricted signing key that never leaves its TPM "
			      "(needs fixedTPM, fixedParent, sensitiveDataOrigin, restricted, sign; has 0x%08x)",
			      a);
	}
	if (a & TPMA_OBJECT_DECRYPT)
		return kq_err(-EPERM, "the key can also decrypt; an attestation key must only sign");
	if (!kq_hash_size(pub->nameAlg))
		return kq_err(-EPERM, "the key's name algorithm 0x%04x is not supported", pub->nameAlg);
	return 0;
}

void tpm_hierarchy_qn(TPM2_HANDLE h, TPM2B_NAME *ret)
{
	ret->size = 4;
	ret->name[0] = (uint8_t)(h >> 24);
	ret->name[1] = (uint8_t)(h >> 16);
	ret->name[2] = (uint8_t)(h >> 8);
	ret->name[3] = (uint8_t)h;
}

int tpm_qualified_name(const TPM2B_NAME *parent_qn, const TPM2B_NAME *name, TPM2B_NAME *ret)
{
	uint8_t buf[2 * sizeof(((TPM2B_NAME *)0)->name)];
	uint16_t alg;
	size_t dlen;

	if (name->size < 2 || name->size > sizeof(name->name) || parent_qn->size > sizeof(parent_qn->name))
		return kq_err(-EINVAL, "object or parent name has a bad size");
	alg = (uint16_t)(name->name[0] << 8 | name->name[1]);
	dlen = kq_hash_size(alg);
	if (!dlen || name->size != 2 + dlen)
		return kq_err(-EINVAL, "object name has an unknown algorithm or wrong size");
	memcpy(buf, parent_qn->name, parent_qn->size);
	memcpy(buf + parent_qn->size, name->name, name->size);
	ret->size = (UINT16)(2 + dlen);
	ret->name[0] = name->name[0];
	ret->name[1] = name->name[1];
	return kq_hash(alg, buf, (size_t)parent_qn->size + name->size, ret->name + 2);
}

/*
 * The same key policy whatever the input format: RSA 2048-4096 bits with an odd
 * public exponent >= 3 (e = 1 would make any "signature" verify), EC keys on
 * the NIST curves a TPM uses.
 */
static int pkey_check(EVP_PKEY *pkey)
{
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA: {
		_cleanup_(bn_freep) BIGNUM *e = NULL;
		int bits = EVP_PKEY_get_bits(pkey);

		if (bits < 2048 || bits > 4096)
			return kq_err(-ENOTSUP, "unsupported RSA key size %d (2048 to 4096 bits)", bits);
		if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1 || !BN_is_odd(e) ||
		    BN_num_bits(e) < 2 || BN_num_bits(e) > 32) {
			ERR_clear_error();
			return kq_err(TPM_E_MALFORMED, "RSA public exponent is not acceptable");
		}
		return 0;
	}
	case EVP_PKEY_EC: {
		char group[64];

		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
						   NULL) != 1 ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0 &&
		     strcmp(group, "secp521r1") != 0)) {
			ERR_clear_error();
			return kq_err(-ENOTSUP, "unsupported EC curve (P-256, P-384 and P-521 are)");
		}
		return 0;
	}
	default:
		return kq_err(-ENOTSUP, "unsupported key type (RSA and EC are)");
	}
}

void tpm_key_clear(struct tpm_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	memset(key, 0, sizeof(*key));
}

int tpm_key_load(const uint8_t *buf, size_t len, struct tpm_key *ret)
{
	struct tpm_key k = { 0 };
	TPM2B_PUBLIC pub2b;
	int r;

	if (len > TPM_MAX_BLOB)
		return kq_err(TPM_E_MALFORMED, "key file of %zu bytes is over the limit", len);
	if (len >= 10 && memcmp(buf, "-----BEGIN", 10) == 0) {
		_cleanup_(bio_freep) BIO *bio = BIO_new_mem_buf(buf, (int)len);
		if (!bio)
			return kq_err(-ENOMEM, "out of memory");
		k.pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		if (!k.pkey) {
			ERR_clear_error();
			return kq_err(TPM_E_MALFORMED, "PEM file holds no public key");
		}
	} else if (tpm_public_unmarshal(buf, len, &pub2b) == 0) {
		k.pub = pub2b.publicArea;
		k.has_public = true;
	} else if (tpm_tpmt_public_unmarshal(buf, len, &k.pub) == 0) {
		k.has_public = true;
	} else {
		const unsigned char *p = buf;
		k.pkey = d2i_PUBKEY(NULL, &p, (long)len);
		if (!k.pkey || p != buf + len) {
			EVP_PKEY_free(k.pkey);
			ERR_clear_error();
			return kq_err(TPM_E_MALFORMED,
				      "not a TPM2B_PUBLIC, TPMT_PUBLIC, PEM or DER public key");
		}
	}
	if (k.has_public) {
		r = tpm_public_to_pkey(&k.pub, &k.pkey);
		if (r < 0)
			return r;
		r = tpm_public_name(&k.pub, &k.name);
		if (r < 0) {
			EVP_PKEY_free(k.pkey);
			return r;
		}
	}
	r = pkey_check(k.pkey);
	if (r < 0) {
		EVP_PKEY_free(k.pkey);
		return r;
	}
	*ret = k;
	return 0;
}
