/* SPDX-License-Identifier: Apache-2.0 */
/* lib/x509: loading certificates and keys, trust stores, chain verification, files. */
#include "x509/x509.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "util/util.h"
#include "x509-priv.h"

static inline void X509_STORE_freep(X509_STORE **p) { X509_STORE_free(*p); }
static inline void X509_STORE_CTX_freep(X509_STORE_CTX **p) { X509_STORE_CTX_free(*p); }
static inline void BIO_freep(BIO **p) { BIO_free(*p); }
static inline void sk_X509_freep(STACK_OF(X509) **p) { sk_X509_pop_free(*p, X509_free); }
static inline void closedirp(DIR **p) { if (*p) closedir(*p); }

int x509_ossl_err(int code, const char *what)
{
	unsigned long e = ERR_get_error(); /* the first error is the innermost reason */
	const char *reason = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	if (!reason)
		return kq_err(code, "%s", what);
	return kq_err(code, "%s: %s", what, reason);
}

/* ---- the original to-be-signed bytes of a certificate whose serial was re-encoded ---- */

struct orig_tbs {
	size_t len;
	uint8_t der[];
};

static int orig_tbs_idx = -1;
static pthread_once_t orig_tbs_once = PTHREAD_ONCE_INIT;

static void orig_tbs_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	free(ptr);
}

static void orig_tbs_init(void)
{
	orig_tbs_idx = X509_get_ex_new_index(0, NULL, NULL, NULL, orig_tbs_free);
}

static int orig_tbs_index(void)
{
	pthread_once(&orig_tbs_once, orig_tbs_init);
	return orig_tbs_idx;
}

/* ---- DER ---- */

/*
 * Reads one DER TLV header at buf[*off], limited to len. On success *ret_hdr is
 * the header length and *ret_clen the content length, which fits in len.
 */
static int der_tlv(const uint8_t *buf, size_t len, size_t off, int *ret_tag, int *ret_class,
		   size_t *ret_hdr, size_t *ret_clen)
{
	const unsigned char *p = buf + off;
	long clen;
	int tag, xclass, r;

	if (off >= len || len - off > LONG_MAX)
		return -EBADMSG;
	r = ASN1_get_object(&p, &clen, &tag, &xclass, (long)(len - off));
	if (r & 0x80 || r == 0x21) { /* error, or indefinite length (not DER) */
		ERR_clear_error(); /* the caller reports it; keep OpenSSL's queue empty */
		return -EBADMSG;
	}
	*ret_tag = tag;
	*ret_class = xclass;
	*ret_hdr = (size_t)(p - (buf + off));
	*ret_clen = (size_t)clen;
	return 0;
}

static size_t der_len_size(size_t n)
{
	size_t s = 1;

	if (n < 0x80)
		return 1;
	for (; n; n >>= 8)
		s++;
	return s;
}

static uint8_t *der_put_hdr(uint8_t *p, uint8_t tag, size_t n)
{
	size_t s = der_len_size(n);

	*p++ = tag;
	if (s == 1) {
		*p++ = (uint8_t)n;
		return p;
	}
	*p++ = (uint8_t)(0x80 | (s - 1));
	for (size_t i = s - 1; i > 0; i--)
		*p++ = (uint8_t)(n >> (8 * (i - 1)));
	return p;
}


/*
 * Some vendors (STMicroelectronics intermediate and EK certificates) encode
 * the serial number with redundant leading zero bytes, which DER forbids and
 * OpenSSL >= 1.1 refuses ("illegal padding"). Rewrites cert (exactly len bytes,
 * one Certificate) with the serial minimal; *ret_tbs_off and *ret_tbs_len
 * locate the original TBS in cert. -EBADMSG if the serial is not of that form.
 */
static int der_fix_serial(const uint8_t *cert, size_t len, uint8_t **ret, size_t *ret_len,
			  size_t *ret_tbs_off, size_t *ret_tbs_len)
{
	size_t hdr, clen, tbs_off, tbs_end, tbs_hdr, tbs_clen, off, ser_hdr, ser_clen, strip = 0;
	size_t new_ser, new_tbs_c, new_cert_c, after_tbs;
	const uint8_t *ser;
	uint8_t *out, *p;
	int tag, cls;

	if (der_tlv(cert, len, 0, &tag, &cls, &hdr, &clen) < 0 || tag != V_ASN1_SEQUENCE ||
	    clen != len - hdr)
		return -EBADMSG;
	tbs_off = hdr;
	if (der_tlv(cert, len, tbs_off, &tag, &cls, &tbs_hdr, &tbs_clen) < 0 || tag != V_ASN1_SEQUENCE)
		return -EBADMSG;
	tbs_end = tbs_off + tbs_hdr + tbs_clen;
	off = tbs_off + tbs_hdr;
	if (der_tlv(cert, tbs_end, off, &tag, &cls, &hdr, &clen) < 0)
		return -EBADMSG;
	if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 0) { /* [0] EXPLICIT version */
		off += hdr + clen;
		if (der_tlv(cert, tbs_end, off, &tag, &cls, &hdr, &clen) < 0)
			return -EBADMSG;
	}
	if (cls != V_ASN1_UNIVERSAL || tag != V_ASN1_INTEGER || clen < 2)
		return -EBADMSG;
	ser_hdr = hdr;
	ser_clen = clen;
	ser = cert + off + ser_hdr;
	while (strip + 1 < ser_clen && ser[strip] == 0x00 && ser[strip + 1] < 0x80)
		strip++;
	if (strip == 0)
		return -EBADMSG;

	new_ser = ser_clen - strip;
	new_tbs_c = tbs_clen - (ser_hdr + ser_clen) + 1 + der_len_size(new_ser) + new_ser;
	after_tbs = len - tbs_end;
	new_cert_c = 1 + der_len_size(new_tbs_c) + new_tbs_c + after_tbs;
	out = malloc(1 + der_len_size(new_cert_c) + new_cert_c);
	if (!out)
		return kq_err(-ENOMEM, "out of memory");
	p = der_put_hdr(out, 0x30, new_cert_c);
	p = der_put_hdr(p, 0x30, new_tbs_c);
	memcpy(p, cert + tbs_off + tbs_hdr, off - (tbs_off + tbs_hdr)); /* version */
	p += off - (tbs_off + tbs_hdr);
	p = der_put_hdr(p, V_ASN1_INTEGER, new_ser);
	memcpy(p, ser + strip, new_ser);
	p += new_ser;
	memcpy(p, ser + ser_clen, tbs_end - (off + ser_hdr + ser_clen)); /* rest of the TBS */
	p += tbs_end - (off + ser_hdr + ser_clen);
	memcpy(p, cert + tbs_end, after_tbs); /* signatureAlgorithm, signatureValue */
	p += after_tbs;
	*ret = out;
	*ret_len = (size_t)(p - out);
	*ret_tbs_off = tbs_off;
	*ret_tbs_len = tbs_end - tbs_off;
	return 0;
}

static int d2i_exact(const uint8_t *der, size_t len, X509 **ret)
{
	const unsigned char *p = der;
	X509 *x;

	if (len > LONG_MAX)
		return -EBADMSG;
	x = d2i_X509(NULL, &p, (long)len);
	if (!x)
		return -EBADMSG; /* OpenSSL's error queue holds the reason */
	if ((size_t)(p - der) != len) {
		X509_free(x);
		ERR_clear_error();
		return kq_err(-EBADMSG, "trailing bytes inside the certificate encoding");
	}
	*ret = x;
	return 0;
}

/*
 * One DER certificate. nv: it came from a TPM NV index (a raw DER file), so
 * the TCG PC Client header and NV padding are allowed.
 */
static int load_der(const uint8_t *buf, size_t len, bool nv, X509 **ret)
{
	_cleanup_free_ uint8_t *fixed = NULL;
	size_t hdr, clen, certlen, fixed_len = 0, tbs_off = 0, tbs_len = 0;
	struct orig_tbs *orig;
	X509 *x = NULL;
	int tag, cls, r;

	if (len == 0)
		return kq_err(-EBADMSG, "empty certificate");
	/*
	 * TCG PC Client Platform TPM Profile: a certificate stored in NV may be
	 * prefixed with tag 0x1001 (TCG_TAG_PCCLIENT_STORED_CERT), certType 0
	 * (full certificate) and a big-endian 16-bit length.
	 */
	if (nv && len > 5 && buf[0] == 0x10 && buf[1] == 0x01 && buf[2] == 0x00) {
		size_t n = (size_t)buf[3] << 8 | buf[4];

		if (n > len - 5)
			return kq_err(-EBADMSG, "TCG NV certificate header claims %zu bytes, %zu present", n, len - 5);
		buf += 5;
		len = n;
	}
	if (der_tlv(buf, len, 0, &tag, &cls, &hdr, &clen) < 0 || tag != V_ASN1_SEQUENCE ||
	    cls != V_ASN1_UNIVERSAL)
		return kq_err(-EBADMSG, "not a DER certificate (no SEQUENCE at the start, or truncated)");
	certlen = hdr + clen;
	if (certlen < len) {
		/* NV indices are often larger than the certificate in them, filled
		 * with 0x00 or 0xff; anything else after the certificate is an error */
		const uint8_t *t = buf + certlen;
		size_t n = len - certlen;
		bool pad = nv && (t[0] == 0x00 || t[0] == 0xff);

		for (size_t i = 1; pad && i < n; i++)
			pad = t[i] == t[0];
		if (!pad)
			return kq_err(-EBADMSG, "%zu bytes after the certificate", n);
	}

	r = d2i_exact(buf, certlen, &x);
	if (r == 0) {
		*ret = x;
		return 0;
	}
	if (der_fix_serial(buf, certlen, &fixed, &fixed_len, &tbs_off, &tbs_len) < 0)
		return x509_ossl_err(-EBADMSG, "malformed certificate");
	ERR_clear_error();
	r = d2i_exact(fixed, fixed_len, &x);
	if (r < 0)
		return x509_ossl_err(-EBADMSG, "malformed certificate");
	orig = malloc(sizeof(*orig) + tbs_len);
	if (!orig) {
		X509_free(x);
		return kq_err(-ENOMEM, "out of memory");
	}
	orig->len = tbs_len;
	memcpy(orig->der, buf + tbs_off, tbs_len);
	if (orig_tbs_index() < 0 || !X509_set_ex_data(x, orig_tbs_index(), orig)) {
		free(orig);
		X509_free(x);
		return x509_ossl_err(-ENOMEM, "cannot attach the original serial");
	}
	*ret = x;
	return 0;
}

static void ossl_secure_freep(void *p) { OPENSSL_secure_free(*(void **)p); }
#define _cleanup_secure_ _cleanup_(ossl_secure_freep)

static int load_pem(const uint8_t *buf, size_t len, bool first_only, STACK_OF(X509) *out)
{
	_cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(buf, (int)len);
	size_t blocks = 0;
	int r;

	if (!bio)
		return x509_ossl_err(-ENOMEM, "out of memory");
	for (;;) {
		/* secure heap flag: blocks may be private keys, freed wiped */
		_cleanup_secure_ char *name = NULL, *header = NULL;
		_cleanup_secure_ unsigned char *data = NULL;
		long dlen = 0;
		X509 *x = NULL;

		ERR_clear_error();
		if (!PEM_read_bio_ex(bio, &name, &header, &data, &dlen, PEM_FLAG_SECURE | PEM_FLAG_EAY_COMPATIBLE)) {
			unsigned long e = ERR_peek_last_error();

			if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break;
			}
			return x509_ossl_err(-EBADMSG, blocks ? "malformed PEM after the last good block"
							      : "malformed PEM");
		}
		blocks++;
		if (strcmp(name, "CERTIFICATE") != 0 && strcmp(name, "X509 CERTIFICATE") != 0)
			continue;
		if (sk_X509_num(out) >= (int)X509_MAX_CERTS)
			return kq_err(-E2BIG, "more than %u certificates", X509_MAX_CERTS);
		r = load_der(data, (size_t)dlen, false, &x);
		if (r < 0)
			return kq_err_ctx(r, "PEM certificate %d: ", sk_X509_num(out) + 1);
		if (!sk_X509_push(out, x)) {
			X509_free(x);
			return kq_err(-ENOMEM, "out of memory");
		}
		if (first_only)
			break;
	}
	if (sk_X509_num(out) == 0)
		return kq_err(-ENODATA, blocks ? "no CERTIFICATE block among the PEM blocks" : "no PEM block and not DER");
	return 0;
}

static int load(const uint8_t *buf, size_t len, bool first_only, STACK_OF(X509) **ret)
{
	_cleanup_(sk_X509_freep) STACK_OF(X509) *sk = sk_X509_new_null();
	int r;

	if (!sk)
		return kq_err(-ENOMEM, "out of memory");
	if (!buf && len)
		return kq_err(-EINVAL, "no buffer");
	if (len > X509_MAX_INPUT)
		return kq_err(-EFBIG, "certificate input of %zu bytes exceeds the limit of %u", len, X509_MAX_INPUT);
	if (len == 0)
		return kq_err(-EBADMSG, "empty certificate input");
	/* DER starts with a SEQUENCE (or the TCG NV header); PEM with text */
	if (buf[0] == 0x30 || (len > 2 && buf[0] == 0x10 && buf[1] == 0x01 && buf[2] == 0x00)) {
		X509 *x;

		r = load_der(buf, len, true, &x);
		if (r < 0)
			return r;
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			return kq_err(-ENOMEM, "out of memory");
		}
	} else {
		r = load_pem(buf, len, first_only, sk);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(sk);
	return 0;
}

int x509_load_many(const uint8_t *buf, size_t len, STACK_OF(X509) **ret)
{
	return load(buf, len, false, ret);
}

int x509_load(const uint8_t *buf, size_t len, X509 **ret)
{
	_cleanup_(sk_X509_freep) STACK_OF(X509) *sk = NULL;
	int r = load(buf, len, true, &sk);

	if (r < 0)
		return r;
	*ret = sk_X509_shift(sk);
	return 0;
}

int x509_read(const char *path, X509 **ret)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	int r;

	r = kq_read_file(path, X509_MAX_INPUT, &buf, &len);
	if (r < 0)
		return r;
	r = x509_load(buf, len, ret);
	if (r < 0)
		return kq_err_ctx(r, "%s: ", path);
	return 0;
}

/* Never prompt on a terminal for a passphrase: an encrypted key just fails. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

int x509_read_key(const char *path, EVP_PKEY **ret)
{
	uint8_t *buf = NULL;
	size_t len;
	EVP_PKEY *k;
	BIO *bio;
	int r;

	r = kq_read_file(path, X509_MAX_INPUT, &buf, &len);
	if (r < 0)
		return r;
	bio = BIO_new_mem_buf(buf, (int)len);
	k = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
	BIO_free(bio);
	kq_free_secret(buf, len);
	if (!k)
		return x509_ossl_err(-EBADMSG, path);
	*ret = k;
	return 0;
}

/* ---- trust stores ---- */

static bool cert_file_name(const char *n)
{
	const char *dot = strrchr(n, '.');

	if (!dot || dot == n || n[0] == '.')
		return false;
	return strcasecmp(dot, ".pem") == 0 || strcasecmp(dot, ".crt") == 0 || strcasecmp(dot, ".der") == 0;
}

int x509_store_from_dir(const char *dir, X509_STORE **ret)
{
	_cleanup_(closedirp) DIR *d = opendir(dir);
	_cleanup_(X509_STORE_freep) X509_STORE *store = NULL;
	struct dirent *de;
	int count = 0;

	if (!d)
		return kq_err(-errno, "%s: %s", dir, strerror(errno));
	store = X509_STORE_new();
	if (!store)
		return x509_ossl_err(-ENOMEM, "out of memory");
	while ((errno = 0, de = readdir(d))) {
		_cleanup_(sk_X509_freep) STACK_OF(X509) *sk = NULL;
		_cleanup_free_ char *path = NULL;
		uint8_t *buf = NULL;
		struct stat st;
		size_t len;
		int r;

		if (!cert_file_name(de->d_name))
			continue;
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
			path = NULL;
			return kq_err(-ENOMEM, "out of memory");
		}
		if (stat(path, &st) < 0)
			return kq_err(-errno, "%s: %s", path, strerror(errno));
		if (!S_ISREG(st.st_mode))
			continue;
		r = kq_read_file(path, X509_MAX_INPUT, &buf, &len);
		if (r < 0)
			return r;
		r = x509_load_many(buf, len, &sk);
		kq_free_secret(buf, len); /* the directory may hold keys too */
		if (r == -ENODATA)
			continue;
		if (r < 0)
			return kq_err_ctx(r, "%s: ", path);
		for (int i = 0; i < sk_X509_num(sk); i++) {
			X509 *x = sk_X509_value(sk, i);

			if (!X509_check_ca(x))
				continue;
			if (count >= (int)X509_MAX_STORE_CERTS)
				return kq_err(-E2BIG, "%s: more than %u CA certificates", dir, X509_MAX_STORE_CERTS);
			if (!X509_STORE_add_cert(store, x))
				return x509_ossl_err(-ENOMEM, path);
			count++;
		}
	}
	if (errno)
		return kq_err(-errno, "%s: %s", dir, strerror(errno));
	if (count == 0)
		return kq_err(-ENOENT, "%s: no CA certificate in any *.pem, *.crt or *.der file", dir);
	*ret = TAKE_PTR(store);
	return count;
}

/* ---- chain verification ---- */

/*
 * Critical extensions OpenSSL 3.0 does not process but the TCG EK credential
 * profile puts into EK certificates. Their content does not change whether
 * the chain is valid: subjectDirectoryAttributes carries the TPM
 * specification version and security assertions, which the registrar reads
 * (and judges) itself.
 */
static const char *const tcg_critical_ok[] = {
	"2.5.29.9", /* subjectDirectoryAttributes */
};

static bool tcg_known(const ASN1_OBJECT *obj)
{
	char oid[128];

	if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(tcg_critical_ok); i++)
		if (strcmp(oid, tcg_critical_ok[i]) == 0)
			return true;
	return false;
}

/* Every critical extension of x is processed by OpenSSL or in tcg_critical_ok. */
static bool critical_all_known(X509 *x)
{
	for (int i = 0; i < X509_get_ext_count(x); i++) {
		X509_EXTENSION *ext = X509_get_ext(x, i);

		if (!X509_EXTENSION_get_critical(ext) || X509_supported_extension(ext))
			continue;
		if (!tcg_known(X509_EXTENSION_get_object(ext)))
			return false;
	}
	return true;
}

/* The signature of x (whose serial x509_load re-encoded) over its original TBS. */
static bool orig_signature_ok(X509 *x, X509 *issuer)
{
	const struct orig_tbs *orig = orig_tbs_index() < 0 ? NULL : X509_get_ex_data(x, orig_tbs_index());
	const ASN1_BIT_STRING *sig;
	const X509_ALGOR *alg;
	EVP_PKEY *pkey = issuer ? X509_get0_pubkey(issuer) : NULL;
	ASN1_TYPE *any;
	ASN1_STRING *seq;
	bool ok = false;

	if (!orig || !pkey || orig->len > INT_MAX)
		return false;
	X509_get0_signature(&sig, &alg, x);
	if (X509_ALGOR_cmp(alg, X509_get0_tbs_sigalg(x)) != 0)
		return false;
	/* an ANY holding a SEQUENCE encodes as exactly these bytes */
	any = ASN1_TYPE_new();
	seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
	if (any && seq && ASN1_STRING_set(seq, orig->der, (int)orig->len)) {
		ASN1_TYPE_set(any, V_ASN1_SEQUENCE, seq);
		seq = NULL;
		ok = ASN1_item_verify(ASN1_ITEM_rptr(ASN1_ANY), alg, sig, any, pkey) == 1;
	}
	ASN1_STRING_free(seq);
	ASN1_TYPE_free(any);
	ERR_clear_error();
	return ok;
}

static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
	X509 *x = X509_STORE_CTX_get_current_cert(ctx);

	if (ok || !x)
		return ok;
	switch (X509_STORE_CTX_get_error(ctx)) {
	case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
		return critical_all_known(x);
	case X509_V_ERR_CERT_SIGNATURE_FAILURE: {
		STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
		int depth = X509_STORE_CTX_get_error_depth(ctx);
		X509 *issuer = depth + 1 < sk_X509_num(chain) ? sk_X509_value(chain, depth + 1) : x;

		return orig_signature_ok(x, issuer);
	}
	default:
		return 0;
	}
}

static void name_oneline(const X509_NAME *n, char *buf, size_t size)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long len;

	buf[0] = '\0';
	if (!b)
		return;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(b, &p);
		if (len > 0)
			snprintf(buf, size, "%.*s", (int)len, p);
	}
	BIO_free(b);
	if (!buf[0])
		snprintf(buf, size, "(empty subject)");
}

int x509_verify_chain(X509 *cert, STACK_OF(X509) *intermediates, X509_STORE *store, time_t at)
{
	_cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *param;
	char subject[256];
	X509 *bad;
	int err, depth;

	if (!cert || !store)
		return kq_err(-EINVAL, "no certificate or trust store");
	ctx = X509_STORE_CTX_new();
	if (!ctx || !X509_STORE_CTX_init(ctx, store, cert, intermediates))
		return x509_ossl_err(-ENOMEM, "cannot set up verification");
	if (!X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY))
		return x509_ossl_err(-EINVAL, "cannot set the purpose");
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
	if (at != 0)
		X509_VERIFY_PARAM_set_time(param, at);
	X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
	if (X509_verify_cert(ctx) == 1) {
		ERR_clear_error();
		return 0;
	}
	err = X509_STORE_CTX_get_error(ctx);
	depth = X509_STORE_CTX_get_error_depth(ctx);
	bad = X509_STORE_CTX_get_current_cert(ctx);
	if (!bad)
		bad = cert;
	name_oneline(X509_get_subject_name(bad), subject, sizeof(subject));
	ERR_clear_error();
	if (err == X509_V_OK) /* failed without a verification error: an internal one */
		return kq_err(-EKEYREJECTED, "certificate chain not verified (internal error)");
	return kq_err(-EKEYREJECTED, "%s (certificate at depth %d: %s)", X509_verify_cert_error_string(err),
		      depth, subject);
}

int x509_matches_pkey(X509 *cert, EVP_PKEY *pkey)
{
	EVP_PKEY *ck = cert ? X509_get0_pubkey(cert) : NULL;

	if (!ck || !pkey) {
		ERR_clear_error();
		return kq_err(-EINVAL, "certificate without a readable public key");
	}
	if (EVP_PKEY_eq(ck, pkey) != 1) {
		ERR_clear_error();
		return kq_err(-EKEYREJECTED, "the certificate is for another key");
	}
	return 0;
}

/* ---- files ---- */

static int write_bio(const char *path, BIO *b, mode_t mode)
{
	char *p;
	long len = BIO_get_mem_data(b, &p);
	int r;

	if (len <= 0)
		return kq_err(-EIO, "%s: nothing to write", path);
	r = kq_write_file(path, p, (size_t)len); /* created 0600 */
	if (r < 0)
		return r;
	if (mode != 0600 && chmod(path, mode) < 0)
		return kq_err(-errno, "%s: %s", path, strerror(errno));
	return 0;
}

int x509_write_pem(const char *path, X509 *cert)
{
	_cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_mem());

	if (!b || !PEM_write_bio_X509(b, cert))
		return x509_ossl_err(-EIO, "cannot encode the certificate");
	return write_bio(path, b, 0644);
}

int x509_write_key_pem(const char *path, EVP_PKEY *key)
{
	/* a secure-memory BIO wipes its buffers when they grow and when freed */
	_cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_secmem());

	if (!b || !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
		return x509_ossl_err(-EIO, "cannot encode the private key");
	return write_bio(path, b, 0600);
}
