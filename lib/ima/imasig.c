/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IMA v2 file signatures (security.ima type 3, version 2) and the keyring
 * they are checked against, as the kernel's asymmetric_verify() does it.
 */
#include "ima/ima.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util/util.h"

#define KEYFILE_MAX (1u << 20)
#define SIG_HDR_SIZE 9 /* type, version, hash_algo, keyid[4], sig_size[2] */

/* security.ima xattr types (enum evm_ima_xattr_type) */
#define EVM_IMA_XATTR_DIGSIG 3

struct ima_key {
	EVP_PKEY *pkey;
	uint32_t keyid;     /* SHA-1 of the public key bits, last 4 bytes */
	bool has_skid;
	uint32_t skid;      /* a certificate's subjectKeyIdentifier, last 4 bytes */
};

struct ima_keyring {
	struct ima_key *keys;
	size_t n, cap;
};

static inline void X509_freep(X509 **p) { X509_free(*p); }
static inline void EVP_PKEY_freep(EVP_PKEY **p) { EVP_PKEY_free(*p); }
static inline void BIO_freep(BIO **p) { BIO_free(*p); }
static inline void X509_PUBKEY_freep(X509_PUBKEY **p) { X509_PUBKEY_free(*p); }
static inline void EVP_PKEY_CTX_freep(EVP_PKEY_CTX **p) { EVP_PKEY_CTX_free(*p); }

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int ima_keyring_new(struct ima_keyring **ret)
{
	struct ima_keyring *k = calloc(1, sizeof(*k));

	if (!k)
		return kq_err(-ENOMEM, "out of memory");
	*ret = k;
	return 0;
}

void ima_keyring_free(struct ima_keyring *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++)
		EVP_PKEY_free(k->keys[i].pkey);
	free(k->keys);
	free(k);
}

size_t ima_keyring_count(const struct ima_keyring *k)
{
	return k ? k->n : 0;
}

uint32_t ima_keyring_keyid(const struct ima_keyring *k, size_t i)
{
	return i < k->n ? k->keys[i].keyid : 0;
}

/* SHA-1 over the subjectPublicKey BIT STRING contents, as evmctl computes it. */
static int pkey_keyid(EVP_PKEY *pkey, uint32_t *ret)
{
	_cleanup_(X509_PUBKEY_freep) X509_PUBKEY *xpk = NULL;
	const unsigned char *pk;
	uint8_t md[20];
	int pklen;

	if (X509_PUBKEY_set(&xpk, pkey) != 1 ||
	    X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, xpk) != 1 || pklen <= 0) {
		ERR_clear_error();
		return kq_err(-EBADMSG, "cannot encode the public key");
	}
	if (kq_hash(KQ_ALG_SHA1, pk, (size_t)pklen, md) < 0)
		return -EIO;
	*ret = be32(md + 16);
	return 0;
}

/* Takes a reference on pkey when it is added. */
static int add_pkey(struct ima_keyring *k, EVP_PKEY *pkey, const ASN1_OCTET_STRING *skid)
{
	struct ima_key key = { 0 };
	int type = EVP_PKEY_get_base_id(pkey), r;

	if (type == EVP_PKEY_RSA) {
		if (EVP_PKEY_get_bits(pkey) < IMA_MIN_RSA_BITS)
			return kq_err(-ENOTSUP, "RSA key of %d bits is below the minimum of %d",
				      EVP_PKEY_get_bits(pkey), IMA_MIN_RSA_BITS);
	} else if (type == EVP_PKEY_EC) {
		char curve[64];

		if (EVP_PKEY_get_group_name(pkey, curve, sizeof(curve), NULL) != 1) {
			ERR_clear_error();
			return kq_err(-ENOTSUP, "EC key without a named curve");
		}
	} else
		return kq_err(-ENOTSUP, "key type %s is not supported (RSA or EC only)",
			      OBJ_nid2sn(type));
	if (k->n == IMA_MAX_KEYS)
		return kq_err(-E2BIG, "more than %u keys in the keyring", IMA_MAX_KEYS);
	if ((r = pkey_keyid(pkey, &key.keyid)) < 0)
		return r;
	if (skid && ASN1_STRING_length(skid) >= 4) {
		key.has_skid = true;
		key.skid = be32(ASN1_STRING_get0_data(skid) + ASN1_STRING_length(skid) - 4);
	}
	if (k->n == k->cap) {
		size_t ncap = k->cap ? 2 * k->cap : 4;
		struct ima_key *nk = reallocarray(k->keys, ncap, sizeof(*nk));

		if (!nk)
			return kq_err(-ENOMEM, "out of memory");
		k->keys = nk;
		k->cap = ncap;
	}
	if (EVP_PKEY_up_ref(pkey) != 1)
		return kq_err(-EIO, "EVP_PKEY_up_ref failed");
	key.pkey = pkey;
	k->keys[k->n++] = key;
	return 0;
}

static int add_cert_der(struct ima_keyring *k, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	_cleanup_(X509_freep) X509 *x = d2i_X509(NULL, &p, (long)len);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;

	if (!x || p != der + len) {
		ERR_clear_error();
		return kq_err(-EBADMSG, "malformed X.509 certificate");
	}
	pkey = X509_get_pubkey(x);
	if (!pkey) {
		ERR_clear_error();
		return kq_err(-ENOTSUP, "certificate with an unsupported public key");
	}
	return add_pkey(k, pkey, X509_get0_subject_key_id(x));
}

static int add_spki_der(struct ima_keyring *k, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)len);

	if (!pkey || p != der + len) {
		ERR_clear_error();
		return kq_err(-EBADMSG, "malformed SubjectPublicKeyInfo");
	}
	return add_pkey(k, pkey, NULL);
}

static int add_rsa_pkcs1_der(struct ima_keyring *k, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);

	if (!pkey || p != der + len) {
		ERR_clear_error();
		return kq_err(-EBADMSG, "malformed RSA public key");
	}
	return add_pkey(k, pkey, NULL);
}

static int add_pem(struct ima_keyring *k, const uint8_t *buf, size_t len)
{
	_cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(buf, (int)len);
	int added = 0, r = 0;

	if (!bio)
		return kq_err(-ENOMEM, "out of memory");
	for (unsigned blk = 1; r == 0; blk++) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		long dlen = 0;

		if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
			unsigned long e = ERR_peek_last_error();

			ERR_clear_error();
			if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
				break; /* no more blocks */
			r = kq_err(-EBADMSG, "malformed PEM block %u", blk);
			break;
		}
		if (strcmp(name, "PUBLIC KEY") == 0)
			r = add_spki_der(k, data, (size_t)dlen);
		else if (strcmp(name, "RSA PUBLIC KEY") == 0)
			r = add_rsa_pkcs1_der(k, data, (size_t)dlen);
		else if (strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "X509 CERTIFICATE") == 0)
			r = add_cert_der(k, data, (size_t)dlen);
		else
			r = kq_err(-EBADMSG, "PEM block %u (%s) is not a public key or certificate",
				   blk, name);
		if (r == 0)
			added++;
		else
			kq_err_ctx(r, "PEM block %u: ", blk);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
	}
	if (r < 0)
		return r;
	if (added == 0)
		return kq_err(-EBADMSG, "no public key or certificate found");
	return added;
}

int ima_keyring_add(struct ima_keyring *k, const uint8_t *buf, size_t len)
{
	int r;

	if (len == 0)
		return kq_err(-EBADMSG, "empty key");
	if (len > KEYFILE_MAX)
		return kq_err(-E2BIG, "key data of %zu bytes exceeds the limit of %u", len, KEYFILE_MAX);
	if (memmem(buf, len, "-----BEGIN ", 11))
		return add_pem(k, buf, len);
	/* DER: a certificate, else a SubjectPublicKeyInfo */
	r = add_cert_der(k, buf, len);
	if (r == -EBADMSG)
		r = add_spki_der(k, buf, len);
	if (r == -EBADMSG)
		return kq_err(-EBADMSG, "neither PEM nor a DER certificate or public key");
	return r < 0 ? r : 1;
}

int ima_keyring_add_file(struct ima_keyring *k, const char *path)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	int r = kq_read_file(path, KEYFILE_MAX, &buf, &len);

	if (r < 0)
		return r;
	r = ima_keyring_add(k, buf, len);
	if (r < 0)
		kq_err_ctx(r, "%s: ", path);
	return r;
}

/* ---- signatures ---- */

int ima_sig_parse(const uint8_t *buf, size_t len, struct ima_sig_hdr *ret)
{
	struct kq_cur c = kq_cur_init(buf, len);
	struct ima_sig_hdr h = { 0 };
	uint16_t size;

	if (kq_cur_u8(&c, &h.type) < 0 || kq_cur_u8(&c, &h.version) < 0 ||
	    kq_cur_u8(&c, &h.hash_algo) < 0 || kq_cur_u32be(&c, &h.keyid) < 0 ||
	    kq_cur_u16be(&c, &size) < 0)
		return kq_err(-EBADMSG, "signature of %zu bytes is shorter than its header", len);
	/* asymmetric_verify(): siglen - header must equal sig_size, and be > 0 */
	if (size == 0 || kq_cur_left(&c) != size)
		return kq_err(-EBADMSG, "signature size field says %u bytes, %zu follow", size,
			      kq_cur_left(&c));
	h.sig = buf + c.off;
	h.sig_len = size;
	*ret = h;
	return 0;
}

const char *ima_sig_status_name(enum ima_sig_status s)
{
	switch (s) {
	case IMA_SIG_NONE: return "no-signature";
	case IMA_SIG_VALID: return "valid";
	case IMA_SIG_INVALID: return "invalid";
	case IMA_SIG_UNKNOWN_KEY: return "unknown-key";
	}
	return "?";
}

/* OpenSSL names of the kernel hashes a signature may use. */
static const char *ossl_hash_name(unsigned algo)
{
	switch (algo) {
	case IMA_HASH_SHA1: return "SHA1";
	case IMA_HASH_SHA224: return "SHA2-224";
	case IMA_HASH_SHA256: return "SHA2-256";
	case IMA_HASH_SHA384: return "SHA2-384";
	case IMA_HASH_SHA512: return "SHA2-512";
	case IMA_HASH_SM3_256: return "SM3";
	case IMA_HASH_SHA3_256: return "SHA3-256";
	case IMA_HASH_SHA3_384: return "SHA3-384";
	case IMA_HASH_SHA3_512: return "SHA3-512";
	default: return NULL;
	}
}

static bool verify_one(EVP_PKEY *pkey, const EVP_MD *md, const uint8_t *digest, size_t dlen,
		       const uint8_t *sig, size_t slen)
{
	_cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	bool ok;

	ok = pctx && EVP_PKEY_verify_init(pctx) == 1 &&
	     (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA ||
	      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1) &&
	     EVP_PKEY_CTX_set_signature_md(pctx, md) == 1 &&
	     EVP_PKEY_verify(pctx, sig, slen, digest, dlen) == 1;
	ERR_clear_error();
	return ok;
}

static enum ima_sig_status result(struct ima_sig_result *ret, enum ima_sig_status s, const char *why)
{
	ret->status = s;
	ret->reason = why;
	return s;
}

enum ima_sig_status ima_sig_verify(const struct ima_keyring *kr, const struct ima_entry *e,
				   struct ima_sig_result *ret)
{
	struct ima_sig_hdr h;
	const char *mdname;
	EVP_MD *md;
	bool found = false, ok = false;

	memset(ret, 0, sizeof(*ret));
	if (!e->sig || e->sig_len == 0)
		return result(ret, IMA_SIG_NONE, NULL);
	if (e->sig_len >= SIG_HDR_SIZE) {
		ret->has_keyid = true;
		ret->keyid = be32(e->sig + 3);
	}
	if (ima_sig_parse(e->sig, e->sig_len, &h) < 0)
		return result(ret, IMA_SIG_INVALID, "malformed signature: header size field does not match");
	if (h.type != EVM_IMA_XATTR_DIGSIG)
		return result(ret, IMA_SIG_INVALID, "unsupported signature type (only IMA digital signatures, type 3)");
	if (h.version != 2)
		return result(ret, IMA_SIG_INVALID, "unsupported signature version (only v2)");
	if (h.hash_algo >= IMA_HASH__LAST)
		return result(ret, IMA_SIG_INVALID, "unknown hash algorithm in the signature");
	if (!e->digest || e->digest_type != IMA_DIGEST_FILE)
		return result(ret, IMA_SIG_INVALID, "the entry has no file digest to check");
	if (e->digest_algo != h.hash_algo)
		return result(ret, IMA_SIG_INVALID, "the signature's hash algorithm is not the file digest's");
	if (e->digest_len != ima_hash_algo_size(h.hash_algo))
		return result(ret, IMA_SIG_INVALID, "file digest has the wrong size");
	mdname = ossl_hash_name(h.hash_algo);
	if (!mdname)
		return result(ret, IMA_SIG_INVALID, "hash algorithm not accepted for signatures");

	for (size_t i = 0; kr && i < kr->n; i++)
		if (kr->keys[i].keyid == h.keyid || (kr->keys[i].has_skid && kr->keys[i].skid == h.keyid))
			found = true;
	if (!found)
		return result(ret, IMA_SIG_UNKNOWN_KEY, "no key in the keyring has this key id");

	md = EVP_MD_fetch(NULL, mdname, NULL);
	if (!md) {
		ERR_clear_error();
		return result(ret, IMA_SIG_INVALID, "hash algorithm not available");
	}
	for (size_t i = 0; i < kr->n && !ok; i++)
		if (kr->keys[i].keyid == h.keyid || (kr->keys[i].has_skid && kr->keys[i].skid == h.keyid))
			ok = verify_one(kr->keys[i].pkey, md, e->digest, e->digest_len, h.sig, h.sig_len);
	EVP_MD_free(md);
	if (!ok)
		return result(ret, IMA_SIG_INVALID, "signature does not verify");
	return result(ret, IMA_SIG_VALID, NULL);
}
