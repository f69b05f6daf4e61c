/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Quote checks per second on one core against the raw OpenSSL signature check
 * of the same message with the same key, measured in the same run.
 *
 * A kumquat quote check = unmarshal TPMT_SIGNATURE and TPMS_ATTEST, magic/type,
 * signature over the attestation, nonce, PCR selection and PCR digest
 * recomputed from 17 PCR values. The baseline = EVP_DigestVerify of the same
 * TPMS_ATTEST bytes. The AK is parsed once, as a verifier keeps it.
 * RSA-2048 uses the real HPE quote from the test data; PSS and ECDSA sign the
 * same TPMS_ATTEST with software keys in byte-exact TPMT_SIGNATURE form.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "benchlib.h"
#include "testlib.h"
#include "tpm/tpm.h"

static volatile int sink;

static void die(const char *what)
{
	fprintf(stderr, "bench-quote: %s: %s\n", what, kq_errmsg());
	exit(1);
}

static int raw_verify(EVP_PKEY *key, TPMI_ALG_SIG_SCHEME scheme, const uint8_t *sig, size_t slen,
		      const uint8_t *msg, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok;

	EVP_DigestVerifyInit(ctx, &pctx, kq_md(KQ_ALG_SHA256), NULL, key);
	if (scheme == TPM2_ALG_RSAPSS) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO);
	}
	ok = EVP_DigestVerify(ctx, sig, slen, msg, len);
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* Signs msg with key into a marshalled TPMT_SIGNATURE; also returns the raw signature. */
static void make_sig(EVP_PKEY *key, TPMI_ALG_SIG_SCHEME scheme, const uint8_t *msg, size_t len,
		     uint8_t *tpm_sig, size_t *tpm_len, uint8_t *raw, size_t *raw_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	TPMT_SIGNATURE s = { .sigAlg = scheme };
	size_t off = 0;

	EVP_DigestSignInit(ctx, &pctx, kq_md(KQ_ALG_SHA256), NULL, key);
	if (scheme == TPM2_ALG_RSAPSS) {
		EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
		EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
	}
	*raw_len = 1024;
	if (EVP_DigestSign(ctx, raw, raw_len, msg, len) != 1)
		die("sign");
	EVP_MD_CTX_free(ctx);
	if (scheme == TPM2_ALG_ECDSA) {
		const unsigned char *p = raw;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)*raw_len);
		const BIGNUM *r, *sv;
		int field = (EVP_PKEY_get_bits(key) + 7) / 8;
		ECDSA_SIG_get0(es, &r, &sv);
		s.signature.ecdsa.hash = KQ_ALG_SHA256;
		s.signature.ecdsa.signatureR.size = (UINT16)BN_bn2binpad(r, s.signature.ecdsa.signatureR.buffer, field);
		s.signature.ecdsa.signatureS.size = (UINT16)BN_bn2binpad(sv, s.signature.ecdsa.signatureS.buffer, field);
		ECDSA_SIG_free(es);
	} else {
		s.signature.rsapss.hash = KQ_ALG_SHA256;
		s.signature.rsapss.sig.size = (UINT16)*raw_len;
		memcpy(s.signature.rsapss.sig.buffer, raw, *raw_len);
	}
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&s, tpm_sig, 1024, &off) != TSS2_RC_SUCCESS)
		die("marshal");
	*tpm_len = off;
}

int main(void)
{
	struct json_object *d = testdata_json("quote/hpe-real-quote-with-logs.json");
	size_t ak_len, msg_len, sig_len, pcr_len, nonce_len;
	uint8_t *akb = test_b64(jstr(d, "ak_tpm_b64"), &ak_len);
	uint8_t *msg = test_b64(jstr(d, "message_b64"), &msg_len);
	uint8_t *hpe_sig = test_b64(jstr(d, "signature_b64"), &sig_len);
	uint8_t *pcrfile = test_b64(jstr(d, "subject_data_b64"), &pcr_len);
	uint8_t nonce[64];
	struct tpm_key ak;
	struct tpm_pcrs pcrs;

	if (kq_hex_decode(jstr(d, "nonce_hex"), nonce, sizeof(nonce), &nonce_len) < 0 ||
	    tpm_key_load(akb, ak_len, &ak) < 0 || tpm_pcrfile_parse(pcrfile, pcr_len, &pcrs) < 0)
		die("test data");

	printf("# quote checks per second, one core (%s s per figure)\n", getenv("KQ_BENCH_SECONDS") ? getenv("KQ_BENCH_SECONDS") : "1.5");
	printf("%-22s %14s %14s %8s %16s %8s\n", "key", "openssl/s", "quote-check/s", "ratio",
	       "+pcr-file/s", "ratio");

	struct {
		const char *name;
		TPMI_ALG_SIG_SCHEME scheme;
		EVP_PKEY *key;
	} cases[] = {
		{ "rsa2048-rsassa (real)", TPM2_ALG_RSASSA, ak.pkey },
		{ "rsa2048-rsapss", TPM2_ALG_RSAPSS, NULL },
		{ "ecc-p256-ecdsa", TPM2_ALG_ECDSA, NULL },
		{ "ecc-p384-ecdsa", TPM2_ALG_ECDSA, NULL },
	};
	cases[1].key = EVP_RSA_gen(2048);
	cases[2].key = EVP_EC_gen("prime256v1");
	cases[3].key = EVP_EC_gen("secp384r1");

	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		uint8_t tsig[1024], raw[1024];
		size_t tlen, rlen;
		double base, mine, mine_file;

		if (c == 0) {
			memcpy(tsig, hpe_sig, sig_len);
			tlen = sig_len;
			memcpy(raw, hpe_sig + 6, sig_len - 6);
			rlen = sig_len - 6;
		} else {
			make_sig(cases[c].key, cases[c].scheme, msg, msg_len, tsig, &tlen, raw, &rlen);
		}
		if (raw_verify(cases[c].key, cases[c].scheme, raw, rlen, msg, msg_len) != 1)
			die("baseline verify failed");

		BENCH_RATE(&base, 50, sink += raw_verify(cases[c].key, cases[c].scheme, raw, rlen, msg, msg_len));
		BENCH_RATE(&mine, 50, {
			TPMT_SIGNATURE s;
			int r = tpm_signature_unmarshal(tsig, tlen, &s);
			if (r == 0)
				r = tpm_quote_verify(&(struct tpm_quote_check){
					.attest = msg, .attest_len = msg_len, .sig = &s, .key = cases[c].key,
					.nonce = nonce, .nonce_len = nonce_len, .pcrs = &pcrs }, NULL);
			if (r < 0)
				die("quote check");
			sink += r;
		});
		BENCH_RATE(&mine_file, 50, {
			TPMT_SIGNATURE s;
			struct tpm_pcrs p;
			int r = tpm_signature_unmarshal(tsig, tlen, &s);
			if (r == 0)
				r = tpm_pcrfile_parse(pcrfile, pcr_len, &p);
			if (r == 0)
				r = tpm_quote_verify(&(struct tpm_quote_check){
					.attest = msg, .attest_len = msg_len, .sig = &s, .key = cases[c].key,
					.nonce = nonce, .nonce_len = nonce_len, .pcrs = &p }, NULL);
			if (r < 0)
				die("quote check");
			sink += r;
		});
		printf("%-22s %14.0f %14.0f %8.3f %16.0f %8.3f\n", cases[c].name, base, mine, mine / base,
		       mine_file, mine_file / base);
	}
	for (size_t c = 1; c < ARRAY_SIZE(cases); c++)
		EVP_PKEY_free(cases[c].key);
	tpm_key_clear(&ak);
	free(akb);
	free(msg);
	free(hpe_sig);
	free(pcrfile);
	json_object_put(d);
	return 0;
}
