/* SPDX-License-Identifier: Apache-2.0 */
/* lib/tpm on real evidence: an HPE server quote, tpm2-tools outputs, a GCE vTPM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <tss2/tss2_mu.h>

#include "testlib.h"
#include "tpm/tpm.h"

struct blobs {
	uint8_t *ak, *msg, *sig, *pcrs;
	size_t ak_len, msg_len, sig_len, pcrs_len;
	uint8_t nonce[64];
	size_t nonce_len;
};

static void blobs_free(struct blobs *b)
{
	free(b->ak);
	free(b->msg);
	free(b->sig);
	free(b->pcrs);
}

static void load_hpe(struct blobs *b)
{
	struct json_object *d = testdata_json("quote/hpe-real-quote-with-logs.json");

	b->ak = test_b64(jstr(d, "ak_tpm_b64"), &b->ak_len);
	b->msg = test_b64(jstr(d, "message_b64"), &b->msg_len);
	b->sig = test_b64(jstr(d, "signature_b64"), &b->sig_len);
	b->pcrs = test_b64(jstr(d, "subject_data_b64"), &b->pcrs_len);
	assert_int_equal(kq_hex_decode(jstr(d, "nonce_hex"), b->nonce, sizeof(b->nonce), &b->nonce_len), 0);
	json_object_put(d);
}

static int check(const struct blobs *b, const uint8_t *nonce, size_t nonce_len, bool with_pcrs,
		 TPMS_ATTEST *ret)
{
	struct tpm_key key;
	TPMT_SIGNATURE sig;
	struct tpm_pcrs pcrs;
	int r;

	r = tpm_key_load(b->ak, b->ak_len, &key);
	if (r < 0)
		return r;
	r = tpm_signature_unmarshal(b->sig, b->sig_len, &sig);
	if (r == 0 && with_pcrs)
		r = tpm_pcrfile_parse(b->pcrs, b->pcrs_len, &pcrs);
	if (r == 0)
		r = tpm_quote_verify(&(struct tpm_quote_check){
					     .attest = b->msg, .attest_len = b->msg_len, .sig = &sig,
					     .key = key.pkey, .nonce = nonce, .nonce_len = nonce_len,
					     .pcrs = with_pcrs ? &pcrs : NULL },
				     ret);
	tpm_key_clear(&key);
	return r;
}

static void test_hpe_real_quote(void **state)
{
	struct json_object *d = testdata_json("quote/hpe-real-quote-with-logs.json"), *exp, *pcrs_exp;
	struct blobs b = { 0 };
	struct tpm_pcrs pcrs;
	TPMS_ATTEST a;

	load_hpe(&b);
	assert_int_equal(check(&b, b.nonce, b.nonce_len, true, &a), 0);
	json_object_object_get_ex(d, "expected", &exp);
	assert_int_equal(a.clockInfo.clock, json_object_get_uint64(json_object_object_get(exp, "clock")));
	assert_int_equal(a.clockInfo.resetCount, 43);
	assert_int_equal(a.firmwareVersion, json_object_get_uint64(json_object_object_get(exp, "firmwareVersion")));

	/* the PCR file decodes to the expected values */
	assert_int_equal(tpm_pcrfile_parse(b.pcrs, b.pcrs_len, &pcrs), 0);
	assert_int_equal(pcrs.nbanks, 1);
	assert_int_equal(pcrs.bank[0].alg, KQ_ALG_SHA256);
	assert_int_equal(pcrs.bank[0].mask, 0x1ffff);
	json_object_object_get_ex(exp, "pcrs_sha256", &pcrs_exp);
	json_object_object_foreach(pcrs_exp, k, v) {
		char hex[65];
		kq_hex_encode(pcrs.bank[0].value[atoi_safe(k)], 32, hex);
		assert_string_equal(hex, json_object_get_string(v));
	}

	/* writing the PCR file back gives the same bytes tpm2-tools wrote */
	{
		_cleanup_free_ uint8_t *out = NULL;
		size_t len;
		assert_int_equal(tpm_pcrfile_write(&pcrs, &out, &len), 0);
		assert_int_equal(len, b.pcrs_len);
		assert_memory_equal(out, b.pcrs, len);
	}
	blobs_free(&b);
	json_object_put(d);
}

static void test_hpe_tampering(void **state)
{
	struct blobs b = { 0 };
	uint8_t wrong[20] = { 0 };

	load_hpe(&b);
	/* wrong nonce */
	assert_int_equal(check(&b, wrong, sizeof(wrong), true, NULL), TPM_E_NONCE);
	/* every byte of the message and of the signature matters */
	for (size_t i = 0; i < b.msg_len; i++) {
		b.msg[i] ^= 0x01;
		assert_int_not_equal(check(&b, b.nonce, b.nonce_len, true, NULL), 0);
		b.msg[i] ^= 0x01;
	}
	for (size_t i = 0; i < b.sig_len; i++) {
		b.sig[i] ^= 0x80;
		assert_int_not_equal(check(&b, b.nonce, b.nonce_len, true, NULL), 0);
		b.sig[i] ^= 0x80;
	}
	/* a changed PCR value (offset of the first digest in the file) */
	b.pcrs[132 + 4 + 4 + 2 * 66 + 2] ^= 1;
	assert_int_equal(check(&b, b.nonce, b.nonce_len, true, NULL), TPM_E_PCRS);
	b.pcrs[132 + 4 + 4 + 2 * 66 + 2] ^= 1;
	assert_int_equal(check(&b, b.nonce, b.nonce_len, true, NULL), 0);
	blobs_free(&b);
}

static void test_tpm2_tools_set(void **state)
{
	struct json_object *d = testdata_json("quote/tpm2-tools-quote-set.json");
	struct blobs b = { 0 };
	struct tpm_key key, ek;
	TPM2B_ID_OBJECT blob;
	TPM2B_ENCRYPTED_SECRET seed;
	_cleanup_free_ uint8_t *cred = NULL, *out = NULL, *ekb = NULL;
	size_t cred_len, out_len, ek_len;
	char name[2 * sizeof(TPMU_NAME) + 1];
	TPMS_ATTEST a;

	b.ak = test_b64(jstr(d, "ak_pub_tpm2b_b64"), &b.ak_len);
	b.msg = test_b64(jstr(d, "quote_out_b64"), &b.msg_len);
	b.sig = test_b64(jstr(d, "quotesig_out_b64"), &b.sig_len);
	b.pcrs = test_b64(jstr(d, "quotepcr_out_b64"), &b.pcrs_len);
	assert_int_equal(kq_hex_decode(json_object_get_string(json_object_object_get(
					       json_object_object_get(d, "expected"), "nonce_extraData_hex")),
				       b.nonce, sizeof(b.nonce), &b.nonce_len), 0);
	assert_int_equal(check(&b, b.nonce, b.nonce_len, true, &a), 0);

	/* the AK's TPM name */
	assert_int_equal(tpm_key_load(b.ak, b.ak_len, &key), 0);
	assert_true(key.has_public);
	kq_hex_encode(key.name.name, key.name.size, name);
	assert_string_equal(name, jstr(d, "ak_name_hex"));
	/* the PEM form of the AK verifies the same quote */
	{
		struct blobs p = b;
		p.ak = (uint8_t *)jstr(d, "akpub_pem");
		p.ak_len = strlen((char *)p.ak);
		assert_int_equal(check(&p, b.nonce, b.nonce_len, true, NULL), 0);
	}

	/* the MakeCredential file tpm2_makecredential wrote parses and re-serialises */
	cred = test_b64(jstr(d, "mkcred_out_b64"), &cred_len);
	assert_int_equal(tpm_credfile_parse(cred, cred_len, &blob, &seed), 0);
	assert_int_equal(blob.size, 2 + 45 - 2);
	assert_int_equal(seed.size, 256);
	assert_int_equal(tpm_credfile_write(&blob, &seed, &out, &out_len), 0);
	assert_int_equal(out_len, cred_len);
	assert_memory_equal(out, cred, cred_len);
	cred[0] ^= 1;
	assert_int_equal(tpm_credfile_parse(cred, cred_len, &blob, &seed), TPM_E_MALFORMED);
	cred[0] ^= 1;
	assert_int_equal(tpm_credfile_parse(cred, cred_len - 1, &blob, &seed), TPM_E_MALFORMED);

	/* our MakeCredential for that EK has the same shape */
	ekb = test_b64(jstr(d, "ek_pub_tpm2b_b64"), &ek_len);
	assert_int_equal(tpm_key_load(ekb, ek_len, &ek), 0);
	assert_int_equal(tpm_make_credential(&ek.pub, &key.name, (const uint8_t *)"12345678\n", 9, &blob, &seed), 0);
	assert_int_equal(blob.size, 2 + 32 + 2 + 9);
	assert_int_equal(seed.size, 256);
	/* a credential larger than the EK's nameAlg digest is refused */
	assert_int_equal(tpm_make_credential(&ek.pub, &key.name, (const uint8_t *)"0123456789abcdef0123456789abcdefX", 33, &blob, &seed), -EINVAL);
	tpm_key_clear(&key);
	tpm_key_clear(&ek);
	blobs_free(&b);
	json_object_put(d);
}

/* GCE vTPM: three quotes over the same PCRs in sha1, sha256 and sha384. */
static void test_gce_three_banks(void **state)
{
	struct json_object *d = testdata_json("quote/gce-cos85-vtpm-attestation.json"), *quotes;
	_cleanup_free_ uint8_t *akb = NULL;
	uint8_t nonce[8];
	size_t ak_len, nonce_len;
	struct tpm_key key;
	int seen = 0;

	akb = test_hex(jstr(d, "ak_pub_tpmt_public_hex"), &ak_len);
	assert_int_equal(tpm_key_load(akb, ak_len, &key), 0);
	assert_int_equal(kq_hex_decode(jstr(d, "nonce_hex"), nonce, sizeof(nonce), &nonce_len), 0);
	json_object_object_get_ex(d, "quotes", &quotes);
	for (size_t i = 0; i < json_object_array_length(quotes); i++) {
		struct json_object *q = json_object_array_get_idx(quotes, i), *pv;
		_cleanup_free_ uint8_t *msg = NULL, *sigb = NULL;
		size_t msg_len, sig_len;
		uint16_t alg = kq_hash_from_name(jstr(q, "hash"));
		struct tpm_pcrs pcrs = { 0 };
		struct tpm_pcr_bank *bank;
		TPMT_SIGNATURE sig;
		TPMS_ATTEST a;
		struct tpm_quote_check chk;

		msg = test_hex(jstr(q, "quoted_tpms_attest_hex"), &msg_len);
		sigb = test_hex(jstr(q, "signature_tpmt_signature_hex"), &sig_len);
		assert_int_equal(tpm_signature_unmarshal(sigb, sig_len, &sig), 0);
		assert_int_equal(tpm_pcrs_add_bank(&pcrs, alg, &bank), 0);
		json_object_object_get_ex(q, "pcrs", &pv);
		json_object_object_foreach(pv, k, v) {
			size_t n;
			unsigned idx = (unsigned)atoi_safe(k);
			assert_int_equal(kq_hex_decode(json_object_get_string(v), bank->value[idx], 64, &n), 0);
			assert_int_equal(n, kq_hash_size(alg));
			bank->mask |= 1u << idx;
		}
		chk = (struct tpm_quote_check){ .attest = msg, .attest_len = msg_len, .sig = &sig,
						.key = key.pkey, .nonce = nonce, .nonce_len = nonce_len,
						.pcrs = &pcrs };
		assert_int_equal(tpm_quote_verify(&chk, &a), 0);
		assert_int_equal(a.attested.quote.pcrSelect.pcrSelections[0].hash, alg);
		/* one changed PCR of the bank is caught */
		bank->value[10][0] ^= 1;
		assert_int_equal(tpm_quote_verify(&chk, NULL), TPM_E_PCRS);
		bank->value[10][0] ^= 1;
		/* a PCR missing from the claimed values is caught */
		bank->mask &= ~(1u << 23);
		assert_int_equal(tpm_quote_verify(&chk, NULL), TPM_E_PCRS);
		seen |= alg == KQ_ALG_SHA1 ? 1 : alg == KQ_ALG_SHA256 ? 2 : alg == KQ_ALG_SHA384 ? 4 : 0;
	}
	assert_int_equal(seen, 7);
	tpm_key_clear(&key);
	json_object_put(d);
}

/* Quotes we make ourselves: RSASSA, RSAPSS and ECDSA over every hash. */
static void sign_attest(EVP_PKEY *pkey, TPMI_ALG_SIG_SCHEME scheme, uint16_t halg,
			const uint8_t *msg, size_t len, TPMT_SIGNATURE *sig)
{
	uint8_t digest[64], sbuf[1024];
	size_t slen = sizeof(sbuf);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);

	assert_int_equal(kq_hash(halg, msg, len, digest), 0);
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, kq_md(halg)), 1);
	if (scheme == TPM2_ALG_RSAPSS) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST), 1);
	}
	assert_int_equal(EVP_PKEY_sign(ctx, sbuf, &slen, digest, kq_hash_size(halg)), 1);
	EVP_PKEY_CTX_free(ctx);
	memset(sig, 0, sizeof(*sig));
	sig->sigAlg = scheme;
	if (scheme == TPM2_ALG_ECDSA) {
		const unsigned char *p = sbuf;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
		const BIGNUM *r, *s;
		assert_non_null(es);
		ECDSA_SIG_get0(es, &r, &s);
		sig->signature.ecdsa.hash = halg;
		sig->signature.ecdsa.signatureR.size = (UINT16)BN_bn2bin(r, sig->signature.ecdsa.signatureR.buffer);
		sig->signature.ecdsa.signatureS.size = (UINT16)BN_bn2bin(s, sig->signature.ecdsa.signatureS.buffer);
		ECDSA_SIG_free(es);
	} else {
		sig->signature.rsassa.hash = halg;
		sig->signature.rsassa.sig.size = (UINT16)slen;
		memcpy(sig->signature.rsassa.sig.buffer, sbuf, slen);
	}
}

static void test_schemes(void **state)
{
	static const uint16_t hashes[] = { KQ_ALG_SHA1, KQ_ALG_SHA256, KQ_ALG_SHA384, KQ_ALG_SHA512 };
	EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("prime256v1"), *ec2 = EVP_EC_gen("prime256v1");
	struct blobs b = { 0 };

	load_hpe(&b);
	for (size_t h = 0; h < ARRAY_SIZE(hashes); h++) {
		static const TPMI_ALG_SIG_SCHEME schemes[] = { TPM2_ALG_RSASSA, TPM2_ALG_RSAPSS, TPM2_ALG_ECDSA };
		for (size_t s = 0; s < ARRAY_SIZE(schemes); s++) {
			EVP_PKEY *k = schemes[s] == TPM2_ALG_ECDSA ? ec : rsa;
			TPMT_SIGNATURE sig;

			sign_attest(k, schemes[s], hashes[h], b.msg, b.msg_len, &sig);
			assert_int_equal(tpm_signature_verify(k, &sig, b.msg, b.msg_len), 0);
			/* PCR digest uses the signature's hash: only sha256 matches this quote */
			{
				struct tpm_pcrs pcrs;
				int r;
				assert_int_equal(tpm_pcrfile_parse(b.pcrs, b.pcrs_len, &pcrs), 0);
				r = tpm_quote_verify(&(struct tpm_quote_check){ .attest = b.msg, .attest_len = b.msg_len,
					.sig = &sig, .key = k, .pcrs = &pcrs }, NULL);
				assert_int_equal(r, hashes[h] == KQ_ALG_SHA256 ? 0 : TPM_E_PCRS);
			}
			/* wrong key, wrong key type, tampered message */
			assert_int_equal(tpm_signature_verify(schemes[s] == TPM2_ALG_ECDSA ? ec2 : ec, &sig, b.msg, b.msg_len),
					 TPM_E_SIGNATURE);
			b.msg[b.msg_len - 1] ^= 1;
			assert_int_equal(tpm_signature_verify(k, &sig, b.msg, b.msg_len), TPM_E_SIGNATURE);
			b.msg[b.msg_len - 1] ^= 1;
			/* the signature's hash id is bound: claiming another hash fails */
			sig.signature.rsassa.hash = hashes[(h + 1) % ARRAY_SIZE(hashes)];
			if (schemes[s] == TPM2_ALG_ECDSA)
				sig.signature.ecdsa.hash = sig.signature.rsassa.hash;
			assert_int_equal(tpm_signature_verify(k, &sig, b.msg, b.msg_len), TPM_E_SIGNATURE);
		}
	}
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ec2);
	blobs_free(&b);
}

static void test_hostile(void **state)
{
	struct blobs b = { 0 };
	TPMS_ATTEST a;
	TPMT_SIGNATURE s;
	TPM2B_PUBLIC p;
	struct tpm_pcrs pcrs;
	struct tpm_key k;

	load_hpe(&b);
	for (size_t n = 0; n < b.msg_len; n++)
		assert_int_equal(tpm_attest_unmarshal(b.msg, n, &a), TPM_E_MALFORMED);
	for (size_t n = 0; n < b.sig_len; n++)
		assert_int_equal(tpm_signature_unmarshal(b.sig, n, &s), TPM_E_MALFORMED);
	for (size_t n = 0; n < b.ak_len; n++)
		assert_int_not_equal(tpm_public_unmarshal(b.ak, n, &p), 0);
	for (size_t n = 0; n < b.pcrs_len; n++)
		assert_int_equal(tpm_pcrfile_parse(b.pcrs, n, &pcrs), TPM_E_MALFORMED);
	/* trailing bytes */
	{
		uint8_t *m = malloc(b.msg_len + 1);
		memcpy(m, b.msg, b.msg_len);
		m[b.msg_len] = 0;
		assert_int_equal(tpm_attest_unmarshal(m, b.msg_len + 1, &a), TPM_E_MALFORMED);
		free(m);
	}
	/* a PCR file claiming 0xffffffff digest lists or banks */
	b.pcrs[132] = b.pcrs[133] = b.pcrs[134] = b.pcrs[135] = 0xff;
	assert_int_equal(tpm_pcrfile_parse(b.pcrs, b.pcrs_len, &pcrs), TPM_E_MALFORMED);
	b.pcrs[0] = 0xff;
	assert_int_equal(tpm_pcrfile_parse(b.pcrs, b.pcrs_len, &pcrs), TPM_E_MALFORMED);
	/* garbage keys */
	assert_int_equal(tpm_key_load((const uint8_t *)"-----BEGIN PUBLIC KEY-----\nAAAA\n", 32, &k), TPM_E_MALFORMED);
	assert_int_equal(tpm_key_load((const uint8_t *)"\x00\x01\x02", 3, &k), TPM_E_MALFORMED);
	/* an RSA TPMT_PUBLIC whose modulus size disagrees with keyBits */
	assert_int_equal(tpm_public_unmarshal(b.ak, b.ak_len, &p), 0);
	p.publicArea.unique.rsa.size = 128;
	{
		EVP_PKEY *pk = NULL;
		assert_int_equal(tpm_public_to_pkey(&p.publicArea, &pk), TPM_E_MALFORMED);
	}
	blobs_free(&b);
}

/* Re-signs the HPE attestation after edit() changed it; returns the new bytes. */
static uint8_t *resign(EVP_PKEY *key, const struct blobs *b, void (*edit)(TPMS_ATTEST *, const struct tpm_pcrs *),
		       const struct tpm_pcrs *pcrs, size_t *ret_len, TPMT_SIGNATURE *sig)
{
	TPMS_ATTEST a;
	uint8_t *out = malloc(sizeof(TPMS_ATTEST) + 64);
	size_t off = 0;

	assert_int_equal(tpm_attest_unmarshal(b->msg, b->msg_len, &a), 0);
	edit(&a, pcrs);
	assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&a, out, sizeof(TPMS_ATTEST) + 64, &off), 0);
	sign_attest(key, TPM2_ALG_RSASSA, KQ_ALG_SHA256, out, off, sig);
	*ret_len = off;
	return out;
}

/* the selection names sha256 twice; the digest covers the sha256 values twice */
static void edit_dup_bank(TPMS_ATTEST *a, const struct tpm_pcrs *pcrs)
{
	TPML_PCR_SELECTION *sel = &a->attested.quote.pcrSelect;
	size_t n;

	sel->count = 2;
	sel->pcrSelections[1] = sel->pcrSelections[0];
	assert_int_equal(tpm_pcrs_digest(pcrs, sel, KQ_ALG_SHA256, a->attested.quote.pcrDigest.buffer, &n), 0);
	a->attested.quote.pcrDigest.size = (UINT16)n;
}

static void edit_empty_sel(TPMS_ATTEST *a, const struct tpm_pcrs *pcrs)
{
	size_t n;

	a->attested.quote.pcrSelect.count = 0;
	assert_int_equal(tpm_pcrs_digest(pcrs, &a->attested.quote.pcrSelect, KQ_ALG_SHA256,
					 a->attested.quote.pcrDigest.buffer, &n), 0);
	a->attested.quote.pcrDigest.size = (UINT16)n;
}

static void test_selection_tricks(void **state)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	struct blobs b = { 0 };
	struct tpm_pcrs pcrs, claimed;
	struct tpm_pcr_bank *extra;
	TPMT_SIGNATURE sig;
	_cleanup_free_ uint8_t *msg = NULL, *msg2 = NULL;
	size_t len, len2;

	load_hpe(&b);
	assert_int_equal(tpm_pcrfile_parse(b.pcrs, b.pcrs_len, &pcrs), 0);
	msg = resign(key, &b, edit_dup_bank, &pcrs, &len, &sig);
	/* values for an unquoted sha1 bank ride along with the duplicated sha256 selection */
	claimed = pcrs;
	assert_int_equal(tpm_pcrs_add_bank(&claimed, KQ_ALG_SHA1, &extra), 0);
	extra->mask = 1;
	memset(extra->value[0], 0xde, 20);
	assert_int_equal(tpm_quote_verify(&(struct tpm_quote_check){ .attest = msg, .attest_len = len,
		.sig = &sig, .key = key, .pcrs = &claimed }, NULL), TPM_E_PCRS);
	assert_non_null(strstr(kq_errmsg(), "twice"));
	/* a duplicated selection is refused even with exactly the quoted values */
	assert_int_equal(tpm_quote_verify(&(struct tpm_quote_check){ .attest = msg, .attest_len = len,
		.sig = &sig, .key = key, .pcrs = &pcrs }, NULL), TPM_E_PCRS);

	/* an empty selection does not "match" PCR values */
	msg2 = resign(key, &b, edit_empty_sel, &pcrs, &len2, &sig);
	assert_int_equal(tpm_quote_verify(&(struct tpm_quote_check){ .attest = msg2, .attest_len = len2,
		.sig = &sig, .key = key, .pcrs = &pcrs }, NULL), TPM_E_PCRS);
	assert_int_equal(tpm_quote_verify(&(struct tpm_quote_check){ .attest = msg2, .attest_len = len2,
		.sig = &sig, .key = key }, NULL), 0);
	EVP_PKEY_free(key);
	blobs_free(&b);
}

static void test_key_policy(void **state)
{
	struct blobs b = { 0 };
	struct tpm_key k;
	TPM2B_PUBLIC p;
	EVP_PKEY *weak;
	unsigned char *der = NULL;
	int n;

	/* RSA e = 1 as DER SubjectPublicKeyInfo: refused */
	{
		OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
		BIGNUM *nn = BN_new(), *e = BN_new();
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
		OSSL_PARAM *params;

		BN_set_bit(nn, 2047);
		BN_set_bit(nn, 0);
		BN_set_word(e, 1);
		OSSL_PARAM_BLD_push_BN(bld, "n", nn);
		OSSL_PARAM_BLD_push_BN(bld, "e", e);
		params = OSSL_PARAM_BLD_to_param(bld);
		weak = NULL;
		assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
		assert_int_equal(EVP_PKEY_fromdata(ctx, &weak, EVP_PKEY_PUBLIC_KEY, params), 1);
		n = i2d_PUBKEY(weak, &der);
		assert_true(n > 0);
		assert_int_equal(tpm_key_load(der, (size_t)n, &k), TPM_E_MALFORMED);
		OPENSSL_free(der);
		der = NULL;
		EVP_PKEY_free(weak);
		OSSL_PARAM_free(params);
		OSSL_PARAM_BLD_free(bld);
		EVP_PKEY_CTX_free(ctx);
		BN_free(nn);
		BN_free(e);
	}
	/* RSA-1024 and a non-NIST curve: refused */
	weak = EVP_RSA_gen(1024);
	n = i2d_PUBKEY(weak, &der);
	assert_int_equal(tpm_key_load(der, (size_t)n, &k), -ENOTSUP);
	OPENSSL_free(der);
	der = NULL;
	EVP_PKEY_free(weak);
	weak = EVP_EC_gen("secp256k1");
	n = i2d_PUBKEY(weak, &der);
	assert_int_equal(tpm_key_load(der, (size_t)n, &k), -ENOTSUP);
	OPENSSL_free(der);
	EVP_PKEY_free(weak);

	/* a TPM RSA modulus whose top bit is clear is not a 2048-bit key */
	load_hpe(&b);
	assert_int_equal(tpm_public_unmarshal(b.ak, b.ak_len, &p), 0);
	p.publicArea.unique.rsa.buffer[0] = 0x01;
	{
		EVP_PKEY *pk = NULL;
		assert_int_equal(tpm_public_to_pkey(&p.publicArea, &pk), TPM_E_MALFORMED);
	}
	/* the real AK is a restricted signing key; the EK (decrypt) is not an AK */
	assert_int_equal(tpm_public_unmarshal(b.ak, b.ak_len, &p), 0);
	assert_int_equal(tpm_public_check_ak(&p.publicArea), 0);
	p.publicArea.objectAttributes &= ~TPMA_OBJECT_RESTRICTED;
	assert_int_equal(tpm_public_check_ak(&p.publicArea), -EPERM);
	p.publicArea.objectAttributes |= TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	assert_int_equal(tpm_public_check_ak(&p.publicArea), -EPERM);
	p.publicArea.objectAttributes &= ~(TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM);
	assert_int_equal(tpm_public_check_ak(&p.publicArea), -EPERM);
	blobs_free(&b);
}

static void test_pcrfile_write_refuses(void **state)
{
	struct tpm_pcrs pcrs = { .nbanks = 1 };
	uint8_t *out = NULL;
	size_t len;

	pcrs.bank[0].alg = KQ_ALG_SHA256;
	pcrs.bank[0].mask = (1u << 24) | 1;
	assert_int_equal(tpm_pcrfile_write(&pcrs, &out, &len), -EINVAL);
	pcrs.bank[0].mask = 1;
	pcrs.bank[0].alg = 0x1234;
	assert_int_equal(tpm_pcrfile_write(&pcrs, &out, &len), -EINVAL);
	assert_null(out);
}

static void test_kdfa_vector(void **state)
{
	/* KDFa(SHA-256) is SP 800-108 counter mode HMAC; cross-checked with OpenSSL's KBKDF */
	uint8_t key[32], mine[40], ref[40];
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
	EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
	const char label[] = "STORAGE", ctx[] = "context-u";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, "HMAC", 0),
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key, sizeof(key)),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)label, strlen(label)),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)ctx, strlen(ctx)),
		OSSL_PARAM_construct_end(),
	};

	RAND_bytes(key, sizeof(key));
	assert_int_equal(EVP_KDF_derive(kctx, ref, sizeof(ref), params), 1);
	assert_int_equal(tpm_kdfa(KQ_ALG_SHA256, key, sizeof(key), label, (const uint8_t *)ctx, strlen(ctx),
				  NULL, 0, sizeof(mine) * 8, mine), 0);
	assert_memory_equal(mine, ref, sizeof(ref));
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
}

static void test_names(void **state)
{
	/* qualified name of a key directly under the endorsement hierarchy */
	TPM2B_NAME h, name = { .size = 34 }, qn;
	uint8_t buf[4 + 34], want[32];

	tpm_hierarchy_qn(TPM2_RH_ENDORSEMENT, &h);
	name.name[0] = 0x00;
	name.name[1] = 0x0b;
	memset(name.name + 2, 0xab, 32);
	assert_int_equal(tpm_qualified_name(&h, &name, &qn), 0);
	memcpy(buf, "\x40\x00\x00\x0b", 4);
	memcpy(buf + 4, name.name, 34);
	assert_int_equal(kq_hash(KQ_ALG_SHA256, buf, sizeof(buf), want), 0);
	assert_int_equal(qn.size, 34);
	assert_memory_equal(qn.name + 2, want, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hpe_real_quote),
		cmocka_unit_test(test_hpe_tampering),
		cmocka_unit_test(test_tpm2_tools_set),
		cmocka_unit_test(test_gce_three_banks),
		cmocka_unit_test(test_schemes),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_kdfa_vector),
		cmocka_unit_test(test_selection_tricks),
		cmocka_unit_test(test_key_policy),
		cmocka_unit_test(test_pcrfile_write_refuses),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
