/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TPM2_MakeCredential in software (TPM 2.0 Part 1, "Credential Protection";
 * Part 4 CryptSecretEncrypt): a seed is protected to the EK (RSA-OAEP with the
 * label "IDENTITY", or ECDH + KDFe for ECC), then the credential is encrypted
 * under KDFa(seed, "STORAGE", name) and protected by an HMAC under
 * KDFa(seed, "INTEGRITY").
 */
#include "tpm/tpm.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include "util/util.h"

#define CREDFILE_MAGIC 0xBADCC0DEu
#define CREDFILE_VERSION 1u

static void pctx_freep(EVP_PKEY_CTX **p) { EVP_PKEY_CTX_free(*p); }
static void pkey_freep(EVP_PKEY **p) { EVP_PKEY_free(*p); }
static void cipher_ctx_freep(EVP_CIPHER_CTX **p) { EVP_CIPHER_CTX_free(*p); }

static void put_u32be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int tpm_kdfa(uint16_t alg, const uint8_t *key, size_t key_len, const char *label,
	     const uint8_t *ctx_u, size_t u_len, const uint8_t *ctx_v, size_t v_len,
	     uint32_t bits, uint8_t *out)
{
	const EVP_MD *md = kq_md(alg);
	size_t dlen = kq_hash_size(alg), want = (bits + 7) / 8, done = 0;
	size_t label_len = strlen(label) + 1; /* the label's NUL is part of the input */
	uint8_t block[KQ_MAX_DIGEST], cnt[4], lbits[4];
	int r = 0;

	if (!md)
		return kq_err(-ENOTSUP, "KDFa: unsupported hash 0x%04x", alg);
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0),
		OSSL_PARAM_construct_end(),
	};

	if (!mac)
		return kq_err(-EIO, "KDFa: no HMAC implementation");
	put_u32be(lbits, bits);
	for (uint32_t i = 1; done < want && r == 0; i++) {
		EVP_MAC_CTX *mctx = EVP_MAC_CTX_new(mac);
		size_t outl, take = want - done < dlen ? want - done : dlen;

		put_u32be(cnt, i);
		if (!mctx || !EVP_MAC_init(mctx, key, key_len, params) ||
		    !EVP_MAC_update(mctx, cnt, 4) ||
		    !EVP_MAC_update(mctx, (const uint8_t *)label, label_len) ||
		    (u_len && !EVP_MAC_update(mctx, ctx_u, u_len)) ||
		    (v_len && !EVP_MAC_update(mctx, ctx_v, v_len)) ||
		    !EVP_MAC_update(mctx, lbits, 4) ||
		    !EVP_MAC_final(mctx, block, &outl, sizeof(block))) {
			r = kq_err(-EIO, "KDFa: HMAC failed");
		} else {
			memcpy(out + done, block, take);
			done += take;
		}
		EVP_MAC_CTX_free(mctx);
	}
	EVP_MAC_free(mac);
	OPENSSL_cleanse(block, sizeof(block));
	return r;
}

int tpm_kdfe(uint16_t alg, const uint8_t *z, size_t z_len, const char *label,
	     const uint8_t *party_u, size_t u_len, const uint8_t *party_v, size_t v_len,
	     uint32_t bits, uint8_t *out)
{
	const EVP_MD *md = kq_md(alg);
	size_t dlen = kq_hash_size(alg), want = (bits + 7) / 8, done = 0;
	uint8_t block[KQ_MAX_DIGEST], cnt[4];
	int r = 0;

	if (!md)
		return kq_err(-ENOTSUP, "KDFe: unsupported hash 0x%04x", alg);
	for (uint32_t i = 1; done < want; i++) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		put_u32be(cnt, i);
		if (!ctx || EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
		    EVP_DigestUpdate(ctx, cnt, 4) != 1 || EVP_DigestUpdate(ctx, z, z_len) != 1 ||
		    EVP_DigestUpdate(ctx, label, strlen(label) + 1) != 1 ||
		    EVP_DigestUpdate(ctx, party_u, u_len) != 1 ||
		    EVP_DigestUpdate(ctx, party_v, v_len) != 1 ||
		    EVP_DigestFinal_ex(ctx, block, NULL) != 1)
			r = kq_err(-EIO, "KDFe: digest failed");
		EVP_MD_CTX_free(ctx);
		if (r < 0)
			break;
		memcpy(out + done, block, want - done < dlen ? want - done : dlen);
		done += want - done < dlen ? want - done : dlen;
	}
	OPENSSL_cleanse(block, sizeof(block));
	return r;
}

/* RSA EK: a random seed, OAEP-encrypted with the label "IDENTITY\0". */
static int seed_rsa(EVP_PKEY *ek, uint16_t name_alg, uint8_t *seed, size_t seed_len,
		    TPM2B_ENCRYPTED_SECRET *ret)
{
	_cleanup_(pctx_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(ek, NULL);
	static const char label[] = "IDENTITY";
	unsigned char *lbl;
	size_t outlen = sizeof(ret->secret);

	if (RAND_priv_bytes(seed, (int)seed_len) != 1)
		return kq_err(-EIO, "no random bytes");
	lbl = OPENSSL_memdup(label, sizeof(label));
	if (!ctx || !lbl || EVP_PKEY_encrypt_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, kq_md(name_alg)) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, kq_md(name_alg)) <= 0 ||
	    EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, lbl, sizeof(label)) <= 0) {
		OPENSSL_free(lbl);
		ERR_clear_error();
		return kq_err(-EIO, "cannot set up RSA-OAEP for the EK");
	}
	if (EVP_PKEY_encrypt(ctx, ret->secret, &outlen, seed, seed_len) <= 0) {
		ERR_clear_error();
		return kq_err(-EIO, "RSA-OAEP encryption to the EK failed");
	}
	ret->size = (UINT16)outlen;
	return 0;
}

static int ec_point_xy(EVP_PKEY *pkey, size_t field, uint8_t *x, uint8_t *y)
{
	uint8_t buf[1 + 2 * 66];
	size_t len = 0;

	if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof(buf),
					    &len) != 1 ||
	    len != 1 + 2 * field || buf[0] != 0x04) {
		ERR_clear_error();
		return kq_err(-EIO, "cannot read an EC point");
	}
	memcpy(x, buf + 1, field);
	memcpy(y, buf + 1 + field, field);
	return 0;
}

/* ECC EK: ephemeral ECDH; seed = KDFe(Z, "IDENTITY", ephemeral.x, ek.x). */
static int seed_ecc(EVP_PKEY *ek, const TPMT_PUBLIC *ekpub, uint16_t name_alg, uint8_t *seed,
		    size_t seed_len, TPM2B_ENCRYPTED_SECRET *ret)
{
	_cleanup_(pkey_freep) EVP_PKEY *eph = NULL;
	_cleanup_(pctx_freep) EVP_PKEY_CTX *kctx = NULL, *dctx = NULL;
	uint8_t ex[66], ey[66], z[66];
	size_t field = ((size_t)EVP_PKEY_get_bits(ek) + 7) / 8, zlen = sizeof(z), off = 0;
	TPMS_ECC_POINT pt = { 0 };
	char group[64];
	TSS2_RC rc;
	int r;

	if (field > 66 || EVP_PKEY_get_utf8_string_param(ek, OSSL_PKEY_PARAM_GROUP_NAME, group,
							  sizeof(group), NULL) != 1)
		return kq_err(-ENOTSUP, "unsupported EK curve");
	kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!kctx || EVP_PKEY_keygen_init(kctx) <= 0 ||
	    EVP_PKEY_CTX_set_group_name(kctx, group) <= 0 || EVP_PKEY_keygen(kctx, &eph) <= 0) {
		ERR_clear_error();
		return kq_err(-EIO, "cannot make an ephemeral EC key");
	}
	dctx = EVP_PKEY_CTX_new(eph, NULL);
	if (!dctx || EVP_PKEY_derive_init(dctx) <= 0 || EVP_PKEY_derive_set_peer(dctx, ek) <= 0 ||
	    EVP_PKEY_derive(dctx, z, &zlen) <= 0) {
		ERR_clear_error();
		return kq_err(-EIO, "ECDH with the EK failed");
	}
	if ((r = ec_point_xy(eph, field, ex, ey)) < 0)
		goto out;
	/* the TPM uses the EK's x exactly as its public area holds it */
	r = tpm_kdfe(name_alg, z, zlen, "IDENTITY", ex, field, ekpub->unique.ecc.x.buffer,
		     ekpub->unique.ecc.x.size, (uint32_t)(seed_len * 8), seed);
	if (r < 0)
		goto out;
	pt.x.size = (UINT16)field;
	memcpy(pt.x.buffer, ex, field);
	pt.y.size = (UINT16)field;
	memcpy(pt.y.buffer, ey, field);
	rc = Tss2_MU_TPMS_ECC_POINT_Marshal(&pt, ret->secret, sizeof(ret->secret), &off);
	if (rc != TSS2_RC_SUCCESS) {
		r = kq_err(-EIO, "cannot marshal the ephemeral point");
		goto out;
	}
	ret->size = (UINT16)off;
out:
	OPENSSL_cleanse(z, sizeof(z));
	return r;
}

int tpm_make_credential(const TPMT_PUBLIC *ek, const TPM2B_NAME *name, const uint8_t *secret,
			size_t secret_len, TPM2B_ID_OBJECT *ret_blob, TPM2B_ENCRYPTED_SECRET *ret_seed)
{
	const TPMT_SYM_DEF_OBJECT *sym;
	uint16_t name_alg = ek->nameAlg;
	size_t dlen = kq_hash_size(name_alg);
	_cleanup_(pkey_freep) EVP_PKEY *pkey = NULL;
	_cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *cctx = NULL;
	uint8_t seed[KQ_MAX_DIGEST], symkey[32], hmackey[KQ_MAX_DIGEST], iv[16] = { 0 };
	uint8_t plain[2 + KQ_MAX_DIGEST], enc[2 + KQ_MAX_DIGEST], hmac[EVP_MAX_MD_SIZE];
	TPM2B_ENCRYPTED_SECRET es = { 0 };
	TPM2B_ID_OBJECT blob = { 0 };
	const EVP_CIPHER *cipher;
	unsigned int hlen = 0;
	int outl, fin, r;

	if (!dlen)
		return kq_err(-ENOTSUP, "EK nameAlg 0x%04x is not supported", name_alg);
	if (secret_len == 0 || secret_len > dlen)
		return kq_err(-EINVAL, "the credential must be 1 to %zu bytes, not %zu", dlen, secret_len);
	if (name->size < 2 || name->size > sizeof(name->name))
		return kq_err(-EINVAL, "the object name is empty or too long");
	sym = ek->type == TPM2_ALG_RSA ? &ek->parameters.rsaDetail.symmetric
				       : &ek->parameters.eccDetail.symmetric;
	if (ek->type != TPM2_ALG_RSA && ek->type != TPM2_ALG_ECC)
		return kq_err(-ENOTSUP, "EK type 0x%04x is not supported", ek->type);
	if (sym->algorithm != TPM2_ALG_AES || sym->mode.aes != TPM2_ALG_CFB)
		return kq_err(-ENOTSUP, "the EK's symmetric scheme is not AES-CFB");
	switch (sym->keyBits.aes) {
	case 128: cipher = EVP_aes_128_cfb128(); break;
	case 192: cipher = EVP_aes_192_cfb128(); break;
	case 256: cipher = EVP_aes_256_cfb128(); break;
	default: return kq_err(-ENOTSUP, "AES key size %u is not supported", sym->keyBits.aes);
	}

	r = tpm_public_to_pkey(ek, &pkey);
	if (r < 0)
		return r;
	if (ek->type == TPM2_ALG_RSA)
		r = seed_rsa(pkey, name_alg, seed, dlen, &es);
	else
		r = seed_ecc(pkey, ek, name_alg, seed, dlen, &es);
	if (r < 0)
		goto out;

	r = tpm_kdfa(name_alg, seed, dlen, "STORAGE", name->name, name->size, NULL, 0,
		     sym->keyBits.aes, symkey);
	if (r < 0)
		goto out;
	r = tpm_kdfa(name_alg, seed, dlen, "INTEGRITY", NULL, 0, NULL, 0, (uint32_t)(dlen * 8), hmackey);
	if (r < 0)
		goto out;

	/* encIdentity = CFB(symKey, IV 0, marshalled TPM2B_DIGEST credential) */
	plain[0] = (uint8_t)(secret_len >> 8);
	plain[1] = (uint8_t)secret_len;
	memcpy(plain + 2, secret, secret_len);
	cctx = EVP_CIPHER_CTX_new();
	if (!cctx || EVP_EncryptInit_ex(cctx, cipher, NULL, symkey, iv) != 1 ||
	    EVP_EncryptUpdate(cctx, enc, &outl, plain, (int)(2 + secret_len)) != 1 ||
	    EVP_EncryptFinal_ex(cctx, enc + outl, &fin) != 1) {
		r = kq_err(-EIO, "AES-CFB encryption failed");
		goto out;
	}
	outl += fin;

	/* outerHMAC = HMAC(HMACkey, encIdentity || name) */
	{
		uint8_t msg[sizeof(enc) + sizeof(name->name)];
		memcpy(msg, enc, (size_t)outl);
		memcpy(msg + outl, name->name, name->size);
		if (!HMAC(kq_md(name_alg), hmackey, (int)dlen, msg, (size_t)outl + name->size, hmac, &hlen)) {
			r = kq_err(-EIO, "HMAC failed");
			goto out;
		}
	}

	/* TPM2B_ID_OBJECT.credential = TPM2B_DIGEST(outerHMAC) || encIdentity */
	blob.credential[0] = (uint8_t)(hlen >> 8);
	blob.credential[1] = (uint8_t)hlen;
	memcpy(blob.credential + 2, hmac, hlen);
	memcpy(blob.credential + 2 + hlen, enc, (size_t)outl);
	blob.size = (UINT16)(2 + hlen + (unsigned)outl);

	*ret_blob = blob;
	*ret_seed = es;
	r = 0;
out:
	OPENSSL_cleanse(seed, sizeof(seed));
	OPENSSL_cleanse(symkey, sizeof(symkey));
	OPENSSL_cleanse(hmackey, sizeof(hmackey));
	OPENSSL_cleanse(plain, sizeof(plain));
	return r;
}

int tpm_ek_default_public(EVP_PKEY *pkey, TPMT_PUBLIC *ret)
{
	/* TCG EK Credential Profile, templates L-1 (RSA 2048) and L-2 (ECC NIST P-256) */
	static const uint8_t policy_a[32] = {
		0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
		0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
	};
	TPMT_PUBLIC p = { 0 };
	int id = EVP_PKEY_get_base_id(pkey);

	p.nameAlg = TPM2_ALG_SHA256;
	p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
			     TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
			     TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	p.authPolicy.size = sizeof(policy_a);
	memcpy(p.authPolicy.buffer, policy_a, sizeof(policy_a));
	if (id == EVP_PKEY_RSA) {
		BIGNUM *n = NULL, *e = NULL;
		int bytes;

		p.type = TPM2_ALG_RSA;
		p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
		p.parameters.rsaDetail.symmetric.keyBits.aes = 128;
		p.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
		p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
		p.parameters.rsaDetail.keyBits = (UINT16)EVP_PKEY_get_bits(pkey);
		/* RSA-3072/4096 EKs use the high-range templates (SHA-384, AES-256) */
		if (EVP_PKEY_get_bits(pkey) != 2048)
			return kq_err(-ENOTSUP, "only RSA-2048 EKs can be given without their TPM2B_PUBLIC");
		if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
		    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1 ||
		    (bytes = BN_num_bytes(n)) > (int)sizeof(p.unique.rsa.buffer) ||
		    !BN_is_word(e, 65537)) {
			BN_free(n);
			BN_free(e);
			ERR_clear_error();
			return kq_err(-ENOTSUP, "the EK is not an RSA key of the default template");
		}
		p.unique.rsa.size = (UINT16)BN_bn2binpad(n, p.unique.rsa.buffer, bytes);
		BN_free(n);
		BN_free(e);
	} else if (id == EVP_PKEY_EC) {
		size_t field = ((size_t)EVP_PKEY_get_bits(pkey) + 7) / 8;
		char group[64];
		int r;

		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
						   NULL) != 1 ||
		    strcmp(group, "prime256v1") != 0)
			return kq_err(-ENOTSUP, "the EK is not a P-256 key of the default template");
		p.type = TPM2_ALG_ECC;
		p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
		p.parameters.eccDetail.symmetric.keyBits.aes = 128;
		p.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
		p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
		p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
		p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
		r = ec_point_xy(pkey, field, p.unique.ecc.x.buffer, p.unique.ecc.y.buffer);
		if (r < 0)
			return r;
		p.unique.ecc.x.size = p.unique.ecc.y.size = (UINT16)field;
	} else {
		return kq_err(-ENOTSUP, "the EK is neither RSA nor ECC");
	}
	*ret = p;
	return 0;
}

int tpm_credfile_write(const TPM2B_ID_OBJECT *blob, const TPM2B_ENCRYPTED_SECRET *seed,
		       uint8_t **ret, size_t *ret_len)
{
	size_t cap = 8 + sizeof(*blob) + sizeof(*seed), off = 8;
	_cleanup_free_ uint8_t *out = malloc(cap);

	if (!out)
		return kq_err(-ENOMEM, "out of memory");
	put_u32be(out, CREDFILE_MAGIC);
	put_u32be(out + 4, CREDFILE_VERSION);
	if (Tss2_MU_TPM2B_ID_OBJECT_Marshal(blob, out, cap, &off) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(seed, out, cap, &off) != TSS2_RC_SUCCESS)
		return kq_err(-EINVAL, "cannot marshal the credential");
	*ret = TAKE_PTR(out);
	*ret_len = off;
	return 0;
}

int tpm_credfile_parse(const uint8_t *buf, size_t len, TPM2B_ID_OBJECT *ret_blob,
		       TPM2B_ENCRYPTED_SECRET *ret_seed)
{
	struct kq_cur c = kq_cur_init(buf, len);
	TPM2B_ID_OBJECT blob = { 0 };
	TPM2B_ENCRYPTED_SECRET seed = { 0 };
	uint32_t magic, version;
	size_t off;
	int r;

	if ((r = kq_cur_u32be(&c, &magic)) < 0 || (r = kq_cur_u32be(&c, &version)) < 0)
		return kq_err_ctx(TPM_E_MALFORMED, "credential file: ");
	if (magic != CREDFILE_MAGIC || version != CREDFILE_VERSION)
		return kq_err(TPM_E_MALFORMED, "not a tpm2-tools credential file (magic 0x%08x, version %u)",
			      magic, version);
	off = c.off;
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(buf, len, &off, &blob) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(buf, len, &off, &seed) != TSS2_RC_SUCCESS)
		return kq_err(TPM_E_MALFORMED, "credential file: malformed blob or secret");
	if (off != len)
		return kq_err(TPM_E_MALFORMED, "credential file: %zu trailing bytes", len - off);
	*ret_blob = blob;
	*ret_seed = seed;
	return 0;
}

int tpm_activation_proof(const uint8_t *secret, size_t secret_len, const char *id, uint8_t out[32])
{
	unsigned int n = 0;

	if (!HMAC(kq_md(KQ_ALG_SHA256), secret, (int)secret_len, (const uint8_t *)id, strlen(id), out, &n) ||
	    n != 32)
		return kq_err(-EIO, "HMAC failed");
	return 0;
}
