/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Software-held TPM keys for tests and benchmarks only: public areas for
 * software keys shaped like an EK, an AK or a vTPM-CA key, the inverse of
 * MakeCredential for a software RSA EK, and attestations signed in software.
 * The product never uses these: real agents use a TPM through lib/tpmdev.
 */
#ifndef KQ_TESTTPM_H
#define KQ_TESTTPM_H

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

#include "tpm/tpm.h"

static inline void test_rsa_public(EVP_PKEY *key, TPMA_OBJECT attrs, TPMT_PUBLIC *p, bool ek)
{
	BIGNUM *n = NULL;

	memset(p, 0, sizeof(*p));
	if (ek) {
		tpm_ek_default_public(key, p);
		return;
	}
	p->type = TPM2_ALG_RSA;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = attrs;
	p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
	p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
	p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
	p->parameters.rsaDetail.keyBits = 2048;
	EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n);
	p->unique.rsa.size = (UINT16)BN_bn2binpad(n, p->unique.rsa.buffer, 256);
	BN_free(n);
}

#define TEST_AK_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
		       TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)
#define TEST_CA_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
		       TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT)

static inline size_t test_marshal_public(const TPMT_PUBLIC *p, uint8_t *buf, size_t cap)
{
	TPM2B_PUBLIC b = { .publicArea = *p };
	size_t off = 0;

	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&b, buf, cap, &off) != TSS2_RC_SUCCESS)
		abort();
	return off;
}

/* TPM2_ActivateCredential in software for an RSA EK whose private key we hold. */
static inline int test_activate(EVP_PKEY *ek_priv, const TPMT_PUBLIC *ek, const TPM2B_NAME *name,
				const uint8_t *credfile, size_t len, uint8_t *secret, size_t *secret_len)
{
	TPM2B_ID_OBJECT blob;
	TPM2B_ENCRYPTED_SECRET es;
	uint8_t seed[512], symkey[16], hmackey[32], hmac[32], plain[2 + 64], msg[512];
	size_t seedlen = sizeof(seed);
	unsigned int hl;
	EVP_PKEY_CTX *ctx;
	EVP_CIPHER_CTX *c;
	int outl, hsize, r = -1;
	const uint8_t *enc;
	size_t enc_len;

	if (tpm_credfile_parse(credfile, len, &blob, &es) < 0)
		return -1;
	ctx = EVP_PKEY_CTX_new(ek_priv, NULL);
	EVP_PKEY_decrypt_init(ctx);
	EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING);
	EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256());
	EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256());
	EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, OPENSSL_memdup("IDENTITY", 9), 9);
	if (EVP_PKEY_decrypt(ctx, seed, &seedlen, es.secret, es.size) <= 0) {
		EVP_PKEY_CTX_free(ctx);
		return -1;
	}
	EVP_PKEY_CTX_free(ctx);
	tpm_kdfa(ek->nameAlg, seed, seedlen, "STORAGE", name->name, name->size, NULL, 0, 128, symkey);
	tpm_kdfa(ek->nameAlg, seed, seedlen, "INTEGRITY", NULL, 0, NULL, 0, 256, hmackey);
	hsize = blob.credential[0] << 8 | blob.credential[1];
	if (hsize != 32 || blob.size < 2 + 32 + 2)
		return -1;
	enc = blob.credential + 2 + 32;
	enc_len = blob.size - 2 - 32;
	memcpy(msg, enc, enc_len);
	memcpy(msg + enc_len, name->name, name->size);
	HMAC(EVP_sha256(), hmackey, 32, msg, enc_len + name->size, hmac, &hl);
	if (CRYPTO_memcmp(hmac, blob.credential + 2, 32) != 0)
		return -1;
	c = EVP_CIPHER_CTX_new();
	uint8_t iv[16] = { 0 };
	EVP_DecryptInit_ex(c, EVP_aes_128_cfb128(), NULL, symkey, iv);
	EVP_DecryptUpdate(c, plain, &outl, enc, (int)enc_len);
	EVP_CIPHER_CTX_free(c);
	if (outl >= 2 && (size_t)(plain[0] << 8 | plain[1]) == (size_t)outl - 2) {
		*secret_len = (size_t)outl - 2;
		memcpy(secret, plain + 2, *secret_len);
		r = 0;
	}
	return r;
}

/* A TPMS_ATTEST of the given type over extraData, marshalled, with an RSASSA-SHA256 signature by key. */
static inline size_t test_sign_attest(EVP_PKEY *key, TPMS_ATTEST *a, uint8_t *out, size_t cap,
				      uint8_t *sig_out, size_t sig_cap, size_t *sig_len)
{
	size_t off = 0, slen = 512, soff = 0;
	uint8_t raw[512];
	TPMT_SIGNATURE s = { .sigAlg = TPM2_ALG_RSASSA };
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (Tss2_MU_TPMS_ATTEST_Marshal(a, out, cap, &off) != TSS2_RC_SUCCESS)
		abort();
	EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key);
	EVP_DigestSign(md, raw, &slen, out, off);
	EVP_MD_CTX_free(md);
	s.signature.rsassa.hash = TPM2_ALG_SHA256;
	s.signature.rsassa.sig.size = (UINT16)slen;
	memcpy(s.signature.rsassa.sig.buffer, raw, slen);
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&s, sig_out, sig_cap, &soff) != TSS2_RC_SUCCESS)
		abort();
	*sig_len = soff;
	return off;
}

/*
 * A certificate for subject_key signed by issuer_key: a self-signed CA when
 * issuer is NULL, else a leaf from issuer (an EK certificate in the tests).
 */
static inline X509 *test_make_cert(EVP_PKEY *subject_key, EVP_PKEY *issuer_key, X509 *issuer, const char *cn)
{
	X509 *c = X509_new();
	X509_NAME *n = X509_NAME_new();
	uint8_t serial[8];
	BIGNUM *bn;

	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	X509_set_version(c, 2);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 3600L * 24 * 365);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(c, n);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n);
	X509_set_pubkey(c, subject_key);
	if (!issuer) {
		X509V3_CTX ctx;
		X509_EXTENSION *ext;

		X509V3_set_ctx(&ctx, c, c, NULL, NULL, 0);
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
		X509_add_ext(c, ext, -1);
		X509_EXTENSION_free(ext);
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
		X509_add_ext(c, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(c, issuer_key, EVP_sha256()) <= 0)
		abort();
	X509_NAME_free(n);
	return c;
}

#endif
