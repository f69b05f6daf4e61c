/* SPDX-License-Identifier: Apache-2.0 */
#include "tpm/tpm.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "util/util.h"

const char *tpm_sig_scheme_name(TPMI_ALG_SIG_SCHEME scheme)
{
	switch (scheme) {
	case TPM2_ALG_RSASSA: return "rsassa";
	case TPM2_ALG_RSAPSS: return "rsapss";
	case TPM2_ALG_ECDSA: return "ecdsa";
	case TPM2_ALG_ECDAA: return "ecdaa";
	case TPM2_ALG_SM2: return "sm2";
	case TPM2_ALG_ECSCHNORR: return "ecschnorr";
	case TPM2_ALG_HMAC: return "hmac";
	case TPM2_ALG_NULL: return "null";
	default: return "unknown";
	}
}

uint16_t tpm_sig_hash(const TPMT_SIGNATURE *sig)
{
	switch (sig->sigAlg) {
	case TPM2_ALG_RSASSA: return sig->signature.rsassa.hash;
	case TPM2_ALG_RSAPSS: return sig->signature.rsapss.hash;
	case TPM2_ALG_ECDSA: return sig->signature.ecdsa.hash;
	default: return 0;
	}
}

/* DER ECDSA-Sig-Value from the TPM's r and s. */
static int ecdsa_der(const TPMS_SIGNATURE_ECC *e, size_t field, uint8_t **ret, size_t *ret_len)
{
	ECDSA_SIG *es;
	BIGNUM *r, *s;
	unsigned char *der = NULL;
	int n;

	if (e->signatureR.size == 0 || e->signatureS.size == 0 ||
	    e->signatureR.size > field || e->signatureS.size > field)
		return kq_err(TPM_E_SIGNATURE, "ECDSA signature values do not fit the curve");
	es = ECDSA_SIG_new();
	r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
	s = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
	if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
		ECDSA_SIG_free(es);
		BN_free(r);
		BN_free(s);
		return kq_err(-ENOMEM, "out of memory");
	}
	n = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	if (n <= 0)
		return kq_err(-ENOMEM, "cannot encode the ECDSA signature");
	*ret = der;
	*ret_len = (size_t)n;
	return 0;
}

int tpm_signature_verify(EVP_PKEY *key, const TPMT_SIGNATURE *sig, const uint8_t *data, size_t len)
{
	uint16_t halg = tpm_sig_hash(sig);
	const EVP_MD *md = kq_md(halg);
	uint8_t digest[KQ_MAX_DIGEST];
	const uint8_t *s = NULL;
	size_t slen = 0;
	uint8_t *der = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int key_id = EVP_PKEY_get_base_id(key), r;

	if (!md)
		return kq_err(TPM_E_SIGNATURE, "unsupported signature scheme %s or hash 0x%04x",
			      tpm_sig_scheme_name(sig->sigAlg), halg);
	switch (sig->sigAlg) {
	case TPM2_ALG_RSASSA:
	case TPM2_ALG_RSAPSS:
		if (key_id != EVP_PKEY_RSA)
			return kq_err(TPM_E_SIGNATURE, "%s signature but the key is not RSA",
				      tpm_sig_scheme_name(sig->sigAlg));
		/* rsassa and rsapss share a layout */
		s = sig->signature.rsassa.sig.buffer;
		slen = sig->signature.rsassa.sig.size;
		if (slen != (size_t)EVP_PKEY_get_size(key))
			return kq_err(TPM_E_SIGNATURE, "RSA signature is %zu bytes, key needs %d",
				      slen, EVP_PKEY_get_size(key));
		break;
	case TPM2_ALG_ECDSA:
		if (key_id != EVP_PKEY_EC)
			return kq_err(TPM_E_SIGNATURE, "ecdsa signature but the key is not ECC");
		r = ecdsa_der(&sig->signature.ecdsa, ((size_t)EVP_PKEY_get_bits(key) + 7) / 8, &der, &slen);
		if (r < 0)
			return r;
		s = der;
		break;
	default:
		return kq_err(TPM_E_SIGNATURE, "unsupported signature scheme %s",
			      tpm_sig_scheme_name(sig->sigAlg));
	}

	r = kq_hash(halg, data, len, digest);
	if (r < 0)
		goto out;
	ctx = EVP_PKEY_CTX_new(key, NULL);
	if (!ctx || EVP_PKEY_verify_init(ctx) <= 0 || EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0) {
		r = kq_err(-ENOMEM, "cannot set up signature verification");
		goto out;
	}
	if (sig->sigAlg == TPM2_ALG_RSASSA) {
		if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0) {
			r = kq_err(-EIO, "cannot select PKCS#1 v1.5 padding");
			goto out;
		}
	} else if (sig->sigAlg == TPM2_ALG_RSAPSS) {
		/* TPMs use a salt of the digest size or the maximum; accept any */
		if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_AUTO) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) <= 0) {
			r = kq_err(-EIO, "cannot select PSS padding");
			goto out;
		}
	}
	if (EVP_PKEY_verify(ctx, s, slen, digest, EVP_MD_get_size(md)) != 1)
		r = kq_err(TPM_E_SIGNATURE, "the %s/%s signature does not verify with the key",
			   tpm_sig_scheme_name(sig->sigAlg), kq_hash_name(halg));
	else
		r = 0;
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	return r;
}

int tpm_quote_verify(const struct tpm_quote_check *chk, TPMS_ATTEST *ret_attest)
{
	TPMS_ATTEST a;
	int r;

	r = tpm_attest_unmarshal(chk->attest, chk->attest_len, &a);
	if (r < 0)
		return r;
	if (a.magic != TPM2_GENERATED_VALUE)
		return kq_err(TPM_E_NOT_QUOTE, "magic 0x%08x is not TPM_GENERATED_VALUE", a.magic);
	if (a.type != TPM2_ST_ATTEST_QUOTE)
		return kq_err(TPM_E_NOT_QUOTE, "attestation type 0x%04x is not a quote", a.type);

	r = tpm_signature_verify(chk->key, chk->sig, chk->attest, chk->attest_len);
	if (r < 0)
		return r;

	if (chk->nonce &&
	    (a.extraData.size != chk->nonce_len ||
	     CRYPTO_memcmp(a.extraData.buffer, chk->nonce, chk->nonce_len) != 0))
		return kq_err(TPM_E_NONCE, "the quote's extraData is not the expected nonce");

	if (chk->pcrs) {
		const TPML_PCR_SELECTION *sel = &a.attested.quote.pcrSelect;
		const TPM2B_DIGEST *qd = &a.attested.quote.pcrDigest;
		uint8_t digest[KQ_MAX_DIGEST];
		size_t dlen;
		uint32_t matched = 0; /* bit i: claimed bank i is quoted */

		/*
		 * The claimed values must be for exactly the quoted selection: each
		 * quoted bank once, each claimed bank quoted once, same PCRs. A TPM
		 * accepts a selection naming a bank twice, so that must not let a
		 * claimed bank go unhashed.
		 */
		for (uint32_t i = 0; i < sel->count; i++) {
			const TPMS_PCR_SELECTION *s = &sel->pcrSelections[i];
			const struct tpm_pcr_bank *b = tpm_pcrs_bank(chk->pcrs, s->hash);
			const char *bank = kq_hash_name(s->hash) ? kq_hash_name(s->hash) : "unknown";
			uint32_t m = 0;

			for (unsigned k = 0; k < s->sizeofSelect && k < 4; k++)
				m |= (uint32_t)s->pcrSelect[k] << (8 * k);
			if (!m)
				continue;
			if (!b || b->mask != m)
				return kq_err(TPM_E_PCRS, "the PCR values are not for the quoted %s selection", bank);
			if (matched & (1u << (b - chk->pcrs->bank)))
				return kq_err(TPM_E_PCRS, "the quote selects the %s bank twice", bank);
			matched |= 1u << (b - chk->pcrs->bank);
		}
		if (!matched)
			return kq_err(TPM_E_PCRS, "the quote covers no PCRs");
		for (size_t i = 0; i < chk->pcrs->nbanks; i++)
			if (chk->pcrs->bank[i].mask && !(matched & (1u << i)))
				return kq_err(TPM_E_PCRS, "the PCR values include the %s bank, which the quote does not cover",
					      kq_hash_name(chk->pcrs->bank[i].alg));
		r = tpm_pcrs_digest(chk->pcrs, sel, tpm_sig_hash(chk->sig), digest, &dlen);
		if (r < 0)
			return r;
		if (qd->size != dlen || CRYPTO_memcmp(qd->buffer, digest, dlen) != 0)
			return kq_err(TPM_E_PCRS, "the PCR values do not match the quoted PCR digest");
	}

	if (chk->signer &&
	    (a.qualifiedSigner.size != chk->signer->size ||
	     CRYPTO_memcmp(a.qualifiedSigner.name, chk->signer->name, chk->signer->size) != 0))
		return kq_err(TPM_E_SIGNER, "the quote's qualifiedSigner is not the expected key");

	if (ret_attest)
		*ret_attest = a;
	return 0;
}
