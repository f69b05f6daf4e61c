/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/x509: loading (PEM, DER, TPM NV quirks, hostile input), chains
 * (expired, wrong CA, intermediates, partial chains), TCG EK certificate
 * extensions, non-minimal serials, the deployment CA and its leaves, external
 * signers, files; golden: a real GCE vTPM AK certificate and chain, and a
 * swtpm EK certificate with its swtpm-localca chain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "testlib.h"
#include "tpm/tpm.h"
#include "x509/x509.h"

#define DAY 86400
static const char swtpm_ek_rsa_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIID9DCCAlygAwIBAgIBAjANBgkqhkiG9w0BAQsFADAYMRYwFAYDVQQDEw1zd3Rw\n"
	"bS1sb2NhbGNhMCAXDTI2MTEyMjA4NDI0OFoYDzk5OTkxMjMxMjM1OTU5WjASMRAw\n"
	"DgYDVQQDEwd1bmtub3duMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n"
	"4OmDzpJ4ldXHdzSTlnRv79JCN/Rv/ky975SG4FNa7dw3kjQKiEXYbmXMHuVawrfk\n"
	"ABLtYMMlHsfI3T/If/IYY+2GPxqnraKtaecbMvpbsvoTb8UXsabKIJf7mTw9aC9P\n"
	"gjOl6WeY18FRZzsBOuNcZbwfYYO5alVx7iwWDAtfIZX57y6WUC75jW29f6MkriJX\n"
	"l2XaMP+gPd3mN33brxfQtfZeQ7iqXqdNn7JgABitH7ibBpD6tIwHb3GDnTj1DTDC\n"
	"zyt03IIbD0lmhoHErZDq7AiKDnPob0obrnp1cUXiIrQKRc6Mz+KBCRBnSsNAHCQP\n"
	"oMS1tkHOZrcFSATKE9cLXwIDAQABo4HMMIHJMBAGA1UdJQQJMAcGBWeBBQgBMFIG\n"
	"A1UdEQEB/wRIMEakRDBCMRYwFAYFZ4EFAgEMC2lkOjAwMDAxMDE0MRAwDgYFZ4EF\n"
	"AgIMBXN3dHBtMRYwFAYFZ4EFAgMMC2lkOjIwMTkxMDIzMAwGA1UdEwEB/wQCMAAw\n"
	"IgYDVR0JBBswGTAXBgVngQUCEDEOMAwMAzIuMAIBAAICAKQwHwYDVR0jBBgwFoAU\n"
	"16mgv3rydfyJqpmZ7BMtYhNBi1IwDgYDVR0PAQH/BAQDAgUgMA0GCSqGSIb3DQEB\n"
	"CwUAA4IBgQAcTxH7tx1xCD3gAwhGlsh5LjV0XnVQGcelHud1oT2thvANwaMMco/P\n"
	"pPKi+zETjYL5/CPQSJDP2VJo/RkCz7EHfjZn5fwBNZid1alx4OLybmx6P6yb/lxS\n"
	"gZShmACe9BuoKN1fHqQuiRKKieVfWdUL+IW2c0n2zy7Xg8JXl1LOXG+FeLXw7ych\n"
	"s75bqZYUSlA6PZZdYnMUMhsIymTRZYhRmTM9VyFzG1JggALChfy0KtN5aEAxB9zr\n"
	"M9udTZ4Nx51v9RS2u0YoPwf944Kgp3Mg0l/x8LVdljNOfOioCzv+wrVcYeEMfChk\n"
	"/VNrxSGx2HbRsi3KRXnAYJKGFcGLw6PRTh3QJAGcRW6Sn7Dc8vqhMPyqZolKTSOb\n"
	"R/TTDSLbMwLBSw+uuXlmj+URkc/VnuXQjNx1zhLGVOhI/XtXhkhUgjIRL0ktqLfs\n"
	"6IUOtDaBqLgIiVzrzJ/Rnq17kgP0tPFYw5XBodQ1K5Ks/KMXEDc1fQUxNupDa2AP\n"
	"IdvigOU+hPc=\n"
	"-----END CERTIFICATE-----\n"
	;
static const char swtpm_localca_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIEKjCCApKgAwIBAgIUO33quIPYVbenfW+3gSn9nFZfApEwDQYJKoZIhvcNAQEL\n"
	"BQAwHzEdMBsGA1UEAxMUc3d0cG0tbG9jYWxjYS1yb290Y2EwIBcNMjYxMTIyMDg0\n"
	"MjQ4WhgPOTk5OTEyMzEyMzU5NTlaMBgxFjAUBgNVBAMTDXN3dHBtLWxvY2FsY2Ew\n"
	"ggGiMA0GCSqGSIb3DQEBAQUAA4IBjwAwggGKAoIBgQDUsLlrfftucKazMlAw7Qen\n"
	"ZmQn/dSjumnSNtifNkF/lNCJUBs98ap076SIPXihTQR43qo6/cQzIY2AHB4dbkpZ\n"
	"pinSRS5REpyRYxkJV6DlRkMXeECJJjWZAkwLWwIWgIjiwH6XAj1mgjhTwIWWtp7a\n"
	"AqS8849rC5SHAmrKg4Cr4IlUlQhNFwwnWhjivZP7DZIDV2GQB7AebhZ1XVX4ukwd\n"
	"wRvz4CRf5U05iTD+zhtdx57NmWFLxfSFoBaUOPY5igFU80IlWo5LVOXZbM1OaSEH\n"
	"b4Y7u2YcDdEhKHbzK2xD0utLKgHHfNCusK7DesKOTwETaOwTl5Qi3EKDS6+wNQ/a\n"
	"t2QGf6y/MgWk7PS6cEJxxHJgjC1c1xLAV03I7n25LnK542VHiAQiBw/JgWw/r0Us\n"
	"TVPyo4mvpbgjsQsXY4iSm6JYtyTwP6XnU7B704s0BxNXKHg5f6WLFzrgVyo46PJm\n"
	"P4X0IqQn0RXMIId+rpvolIv9qyI7/Mrc+apgapMNq2MCAwEAAaNjMGEwDwYDVR0T\n"
	"AQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAgQwHQYDVR0OBBYEFNepoL968nX8iaqZ\n"
	"mewTLWITQYtSMB8GA1UdIwQYMBaAFPgpn+E72LrwrLqh/inP0dyLYGBPMA0GCSqG\n"
	"SIb3DQEBCwUAA4IBgQBXCKMymE1t5D24D4X2x2EV0VN+kgO1rk/NJfQaVMW2ojni\n"
	"5aGwZptDHBwmuS19Lj4+8un0gh/NkWVKp/3VsCQmphDRS0m96/rDljN0GOsp/XGx\n"
	"aCsj/E39NiLn1d+MEqOQt8ahBN9Khv3AFCwRNvZqVj77/hbcFCd7O6RkFt8NrQZq\n"
	"DDvtwT2xjifgAFSUX2uDvAyHH8UUQ17EberJnJd4eRRlpaOw+5kOrNEWGYw70oRc\n"
	"NqLYUaD6yzq92a1kzkb9MF9MuaAggFo6FzTjQ0PaisFQGxJmtXsISUJsF4LdRah9\n"
	"tDhmiR4yXfX8G0b/DF/sRsiOGfoGryL2HHLYuOFLb3LNZ450PntKcg7T465S4cbc\n"
	"XhFy2Q04xeBPYdbIfJcXwwC9jkLXNFJjtF+YEDxk9IzpR4cSOkHUGpiizN6NH2FW\n"
	"Rz+IOzxqL/m7llwsEs/DXE49+60wxjiGnWJdS/iOB6DQrICfh/8x+6IaOZpLMby8\n"
	"k4OFAB2UAtMGbMrswSo=\n"
	"-----END CERTIFICATE-----\n"
	;
static const char swtpm_rootca_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIEEDCCAnigAwIBAgIUQDuC0Fva9ZN+Dg4rDbZxSLtwjWswDQYJKoZIhvcNAQEL\n"
	"BQAwHzEdMBsGA1UEAxMUc3d0cG0tbG9jYWxjYS1yb290Y2EwIBcNMjYxMTIyMDg0\n"
	"MjQ4WhgPOTk5OTEyMzEyMzU5NTlaMB8xHTAbBgNVBAMTFHN3dHBtLWxvY2FsY2Et\n"
	"cm9vdGNhMIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEAxJNbmCJWN5su\n"
	"LvHvg5vLc2zNNf2hQgcJtQLszZQSVPgTdidB8OnkFQBCLj7E6Fohad8fzFyW7LWV\n"
	"JtnT1muNLZ62gyTjL8F2cIR9DYfc9DsCgumZpa+2JMeZnjQcZvxH//W9ZJJtOulm\n"
	"OkoGnFXtNHzMzjIw8OwoU7+GPnaTrQkQ5u2iBu7etk868/QAceYJpccfO6s471Mt\n"
	"uP2kbca5MX8aG64yQ1rloLx87NDcNoNcxkxXQK8DnEbLU6d+bAPnnvqAjoyfUxSD\n"
	"0w6Oa8c8frCOtXbFH4OjNG/PC6gzPArr7xtR9skEldUX9pPneq3enaboWv2pF2Kf\n"
	"VnqBvYwCJDr/7Yl3+7WKIP1sMuWTNxh+tsPjblNiAwfBBczHdOP+Ox74aP0FWSRe\n"
	"F2Dp4mSA9ZG3lAXDhBcKqVphyL/qLbYWt0DttMOl0Y8dYkV4H7HUbk15i+MRmVnK\n"
	"5l3gLXNN+2hTDNE7z98tdiCN1x0El2ch4u70oiu70ZbESL6JIy73AgMBAAGjQjBA\n"
	"MA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgIEMB0GA1UdDgQWBBT4KZ/h\n"
	"O9i68Ky6of4pz9Hci2BgTzANBgkqhkiG9w0BAQsFAAOCAYEAEv5PFnaXrDzFTyVM\n"
	"BgEhF+eSeVDn25I2cK1gfwz36GtOPOksfTWf6BA7f8JgkO+vyBm0z74hHqIINKGU\n"
	"Wtt8VSoK6ZO76BdL3AR1mZySWon8AN3CZe5mLi95TPMZ955mLZYtOSMLnUgqG3Cp\n"
	"gCCo56XFFfNQ43h+g0lzNkMkEqUGjMcOfA5/cuNyfKx1d9Ai5vljAkF935zaOJ7F\n"
	"4jsrz7vOzd6vfe174HhTmX8hOxyEiekZ1YsIsktAL1MFofI/J3x+6k6lEuY1rF15\n"
	"QqP9/6a9Z6noOFMQt9g+XiTpjtOVj8qe6FT7YbW7GtDN9stKq+25o1pFoVxxDkyZ\n"
	"p2NxuXseiahUX6QEVdhY0/Ez57s0mRLYA+K1QRQTNQ/8c58WNzGoYozwWkMXLj6b\n"
	"1UpVKFmxWAlLdW+3VVB2S2cwH66wF3cOSGQs1Pxi83OjiUQLywM9x3u/n9BylhOC\n"
	"/SQAM2EOUlmlinG6Tl+Iexebu9+V58tGdOxCdlOJMAPzNBPW\n"
	"-----END CERTIFICATE-----\n"
	;

/* The swtpm certificates above: valid from 2026-11-22T08:42:48Z to 9999. */
#define SWTPM_AT ((time_t)1795400000)

/* ---- helpers ---- */

static X509 *pem_cert(const char *pem)
{
	X509 *x = NULL;

	assert_int_equal(x509_load((const uint8_t *)pem, strlen(pem), &x), 0);
	return x;
}

static X509_STORE *store_of(X509 *a, X509 *b)
{
	X509_STORE *s = X509_STORE_new();

	assert_non_null(s);
	assert_int_equal(X509_STORE_add_cert(s, a), 1);
	if (b)
		assert_int_equal(X509_STORE_add_cert(s, b), 1);
	return s;
}

static STACK_OF(X509) *stack_of(X509 *a)
{
	STACK_OF(X509) *sk = sk_X509_new_null();

	assert_non_null(sk);
	assert_true(X509_up_ref(a));
	assert_true(sk_X509_push(sk, a) > 0);
	return sk;
}

static void free_stack(STACK_OF(X509) *sk) { sk_X509_pop_free(sk, X509_free); }

static uint8_t *der_of(X509 *x, size_t *ret_len)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	uint8_t *copy;

	assert_true(n > 0);
	copy = malloc((size_t)n);
	assert_non_null(copy);
	memcpy(copy, der, (size_t)n);
	OPENSSL_free(der);
	*ret_len = (size_t)n;
	return copy;
}

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	assert_non_null(b);
	assert_int_equal(PEM_write_bio_X509(b, x), 1);
	n = BIO_get_mem_data(b, &p);
	s = strndup(p, (size_t)n);
	BIO_free(b);
	assert_non_null(s);
	return s;
}

static void add_conf_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* An extension with raw DER contents. */
static void add_raw_ext(X509 *x, const char *oid, bool crit, const uint8_t *der, size_t len)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;

	assert_non_null(o);
	assert_non_null(os);
	assert_int_equal(ASN1_OCTET_STRING_set(os, der, (int)len), 1);
	e = X509_EXTENSION_create_by_OBJ(NULL, o, crit, os);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(o);
}

/*
 * An unsigned certificate for key, issued by issuer (NULL: self-issued),
 * subject CN cn (NULL: empty subject), valid from now+nb to now+na seconds.
 */
static X509 *draft(X509 *issuer, EVP_PKEY *key, const char *cn, bool ca, long nb, long na)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(x);
	assert_non_null(name);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234567), 1);
	if (cn)
		assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
							    (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), nb));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), na));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509_NAME_free(name);
	add_conf_ext(x, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_conf_ext(x, issuer, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,keyEncipherment");
	add_conf_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (issuer)
		add_conf_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	return x;
}

static void sign_x(X509 *x, EVP_PKEY *issuer_key)
{
	assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
}

/* A root CA without a path length limit (a deployment CA has pathlen 0). */
static X509 *make_root(const char *cn, EVP_PKEY **ret_key)
{
	X509 *x;

	assert_int_equal(x509_keygen(X509_KEY_EC_P256, ret_key), 0);
	x = draft(NULL, *ret_key, cn, true, -60, 3650L * DAY);
	sign_x(x, *ret_key);
	return x;
}

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = NULL;

	assert_int_equal(x509_keygen(X509_KEY_EC_P256, &k), 0);
	return k;
}

static void expect_err(int r, int code, const char *needle)
{
	if (r != code)
		fail_msg("expected %d, got %d (%s)", code, r, kq_errmsg());
	if (needle && !strstr(kq_errmsg(), needle))
		fail_msg("message '%s' lacks '%s'", kq_errmsg(), needle);
	assert_true(kq_errmsg()[0] != '\0');
}

/* growable byte buffer for hand-made DER */
struct buf {
	uint8_t b[8192];
	size_t n;
};

static void put(struct buf *o, const void *p, size_t n)
{
	assert_true(n <= sizeof(o->b) - o->n);
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

static void put_tlv(struct buf *o, uint8_t tag, const uint8_t *v, size_t n)
{
	uint8_t h[4] = { tag };
	size_t hl;

	if (n < 0x80) {
		h[1] = (uint8_t)n;
		hl = 2;
	} else if (n < 0x100) {
		h[1] = 0x81;
		h[2] = (uint8_t)n;
		hl = 3;
	} else {
		assert_true(n < 0x10000);
		h[1] = 0x82;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		hl = 4;
	}
	put(o, h, hl);
	put(o, v, n);
}

/* header length of the TLV at p */
static size_t tlv_hdr(const uint8_t *p)
{
	return (p[1] & 0x80) ? 2 + (p[1] & 0x7f) : 2;
}

static size_t tlv_len(const uint8_t *p)
{
	size_t n = 0;

	if (!(p[1] & 0x80))
		return p[1];
	for (int i = 0; i < (p[1] & 0x7f); i++)
		n = n << 8 | p[2 + i];
	return n;
}

/*
 * The DER of x re-made with a redundant 0x00 before its serial number and
 * signed again by issuer_key over that TBS, as STMicroelectronics certificates
 * come. tamper: flip a bit of the signature.
 */
static void padded_serial_der(X509 *x, EVP_PKEY *issuer_key, bool tamper, struct buf *out)
{
	unsigned char *tbs = NULL, *alg = NULL;
	int tbs_len = i2d_re_X509_tbs(x, &tbs), alg_len = i2d_X509_ALGOR(X509_get0_tbs_sigalg(x), &alg);
	struct buf content = { .n = 0 }, newtbs = { .n = 0 }, cert = { .n = 0 }, bits = { .n = 0 };
	const uint8_t *p, *end, *ser;
	uint8_t sig[1024], zero = 0;
	size_t siglen = sizeof(sig), sl;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	assert_true(tbs_len > 0 && alg_len > 0);
	p = tbs + tlv_hdr(tbs);
	end = tbs + tbs_len;
	assert_int_equal(p[0], 0xa0); /* [0] version */
	put(&content, p, tlv_hdr(p) + tlv_len(p));
	p += tlv_hdr(p) + tlv_len(p);
	assert_int_equal(p[0], 0x02);
	ser = p + tlv_hdr(p);
	sl = tlv_len(p);
	{
		uint8_t v[64];
		assert_true(sl < sizeof(v));
		v[0] = 0;
		memcpy(v + 1, ser, sl);
		put_tlv(&content, 0x02, v, sl + 1);
	}
	p = ser + sl;
	put(&content, p, (size_t)(end - p));
	put_tlv(&newtbs, 0x30, content.b, content.n);

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, issuer_key), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, newtbs.b, newtbs.n), 1);
	EVP_MD_CTX_free(md);
	if (tamper)
		sig[siglen / 2] ^= 0x01;
	put(&bits, &zero, 1);
	put(&bits, sig, siglen);

	put(&cert, newtbs.b, newtbs.n);
	put(&cert, alg, (size_t)alg_len);
	put_tlv(&cert, 0x03, bits.b, bits.n);
	out->n = 0;
	put_tlv(out, 0x30, cert.b, cert.n);
	OPENSSL_free(tbs);
	OPENSSL_free(alg);
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/kq-x509-test.XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *p;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		assert_true(asprintf(&p, "%s/%s", dir, de->d_name) > 0);
		unlink(p);
		free(p);
	}
	closedir(d);
	rmdir(dir);
}

static void write_str(const char *dir, const char *name, const void *data, size_t len)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	assert_int_equal(kq_write_file(p, data, len), 0);
	free(p);
}

/* ---- the deployment CA and its leaves ---- */

static void test_make_ca(void **state)
{
	EVP_PKEY *key = NULL;
	X509 *ca = NULL;
	struct json_object *d = NULL;
	X509_STORE *store;
	int days;

	assert_int_equal(x509_make_ca(&(struct x509_name_spec){ .cn = "test CA", .org = "kumquat tests" }, 30, &key, &ca), 0);
	assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_bits(key), 256);
	assert_int_equal(X509_check_private_key(ca, key), 1);
	assert_int_equal(X509_check_ca(ca), 1);
	assert_int_equal(X509_get_pathlen(ca), 0);
	assert_int_equal(X509_get_version(ca), X509_VERSION_3);
	assert_int_equal(X509_check_issued(ca, ca), X509_V_OK);
	assert_true(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
	assert_non_null(X509_get0_subject_key_id(ca));
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(ca), X509_get0_authority_key_id(ca)), 0);
	assert_int_equal(X509_verify(ca, key), 1);
	assert_int_equal(ASN1_TIME_diff(&days, NULL, X509_get0_notBefore(ca), X509_get0_notAfter(ca)), 1);
	assert_int_equal(days, 30); /* plus the 5 minutes of backdating */

	assert_int_equal(x509_describe(ca, &d), 0);
	assert_string_equal(jstr(d, "subject"), "O=kumquat tests, CN=test CA");
	assert_string_equal(jstr(d, "issuer"), "O=kumquat tests, CN=test CA");
	assert_string_equal(jstr(d, "key_type"), "EC P-256");
	assert_true(json_object_get_boolean(json_object_object_get(d, "is_ca")));
	assert_true(json_object_get_boolean(json_object_object_get(d, "self_issued")));
	json_object_put(d);

	/* a CA verifies as its own chain */
	store = store_of(ca, NULL);
	assert_int_equal(x509_verify_chain(ca, NULL, store, 0), 0);
	X509_STORE_free(store);

	/* bad parameters */
	expect_err(x509_make_ca(&(struct x509_name_spec){ .cn = "" }, 30, &key, &ca), -EINVAL, "commonName");
	expect_err(x509_make_ca(&(struct x509_name_spec){ .cn = "a\nb" }, 30, &key, &ca), -EINVAL, "control");
	expect_err(x509_make_ca(&(struct x509_name_spec){ .cn = "\xff\xfe" }, 30, &key, &ca), -EINVAL, "commonName");
	expect_err(x509_make_ca(&(struct x509_name_spec){ .cn = "x", .org = "" }, 30, &key, &ca), -EINVAL, "organizationName");
	{
		char longname[X509_MAX_NAME_LEN + 2];
		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		expect_err(x509_make_ca(&(struct x509_name_spec){ .cn = longname }, 30, &key, &ca), -EINVAL, NULL);
	}
	expect_err(x509_make_ca(&(struct x509_name_spec){ .cn = "x" }, 0, &key, &ca), -EINVAL, "days");
	expect_err(x509_make_ca(&(struct x509_name_spec){ .cn = "x" }, X509_MAX_DAYS + 1, &key, &ca), -EINVAL, "days");
	expect_err(x509_make_ca(NULL, 30, &key, &ca), -EINVAL, NULL);
	/* the outputs were left alone on failure */
	assert_int_equal(X509_check_private_key(ca, key), 1);
	EVP_PKEY_free(key);
	X509_free(ca);
}

static bool has_san(X509 *x, int type, const void *val, size_t len)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool found = false;

	for (int i = 0; i < sk_GENERAL_NAME_num(g) && !found; i++) {
		int t;
		ASN1_STRING *s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(g, i), &t);
		found = t == type && (size_t)ASN1_STRING_length(s) == len && memcmp(ASN1_STRING_get0_data(s), val, len) == 0;
	}
	GENERAL_NAMES_free(g);
	return found;
}

static int san_count(X509 *x)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int n = sk_GENERAL_NAME_num(g);

	GENERAL_NAMES_free(g);
	return n < 0 ? 0 : n;
}

static void test_issue(void **state)
{
	static const char *const sans[] = { "localhost", "127.0.0.1", "::1", "reg.example.com", "*.nodes.example", "10.1.2.3", "localhost" };
	static const uint8_t v4[] = { 127, 0, 0, 1 }, v4b[] = { 10, 1, 2, 3 };
	static const uint8_t v6[16] = { [15] = 1 };
	EVP_PKEY *ca_key = NULL, *key = NULL, *key2 = NULL;
	X509 *ca = NULL, *x = NULL, *x2 = NULL;
	X509_STORE *store;
	const ASN1_INTEGER *sn;
	BIGNUM *bn;

	assert_int_equal(x509_make_ca(&(struct x509_name_spec){ .cn = "CA" }, 3650, &ca_key, &ca), 0);
	store = store_of(ca, NULL);

	/* server: SANs (deduplicated), EKU, key usage, not a CA, key ids */
	assert_int_equal(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "registrar" }, sans, ARRAY_SIZE(sans),
				    X509_USAGE_SERVER, 397, &key, &x), 0);
	assert_int_equal(X509_check_private_key(x, key), 1);
	assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
	assert_int_equal(X509_verify(x, ca_key), 1);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(X509_check_issued(ca, x), X509_V_OK);
	assert_int_equal(san_count(x), 6);
	assert_true(has_san(x, GEN_DNS, "localhost", 9));
	assert_true(has_san(x, GEN_DNS, "reg.example.com", 15));
	assert_true(has_san(x, GEN_DNS, "*.nodes.example", 15));
	assert_true(has_san(x, GEN_IPADD, v4, 4));
	assert_true(has_san(x, GEN_IPADD, v4b, 4));
	assert_true(has_san(x, GEN_IPADD, v6, 16));
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 0);
	assert_int_equal(X509_check_host(x, "reg.example.com", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "a.nodes.example", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(ca)), 0);
	assert_non_null(X509_get0_subject_key_id(x));
	sn = X509_get0_serialNumber(x);
	bn = ASN1_INTEGER_to_BN(sn, NULL);
	assert_false(BN_is_negative(bn));
	assert_true(BN_num_bits(bn) <= 127 && BN_num_bits(bn) > 64);
	BN_free(bn);
	assert_int_equal(x509_verify_chain(x, NULL, store, 0), 0);

	/* client: only clientAuth, no default SANs; serials differ */
	assert_int_equal(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "tenant" }, NULL, 0,
				    X509_USAGE_CLIENT, 30, &key2, &x2), 0);
	assert_int_equal(X509_get_extended_key_usage(x2), XKU_SSL_CLIENT);
	assert_int_equal(san_count(x2), 0);
	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(x2)), 0);
	assert_int_equal(x509_verify_chain(x2, NULL, store, 0), 0);
	X509_free(x2);
	EVP_PKEY_free(key2);

	/* both */
	assert_int_equal(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "agent" }, sans, 1,
				    X509_USAGE_BOTH, 30, &key2, &x2), 0);
	assert_int_equal(X509_get_extended_key_usage(x2), XKU_SSL_SERVER | XKU_SSL_CLIENT);
	X509_free(x2);
	EVP_PKEY_free(key2);

	/* a leaf never outlives its CA */
	{
		EVP_PKEY *sk = NULL, *lk = NULL;
		X509 *sc = NULL, *lc = NULL;
		assert_int_equal(x509_make_ca(&(struct x509_name_spec){ .cn = "short" }, 10, &sk, &sc), 0);
		assert_int_equal(x509_issue(sk, sc, &(struct x509_name_spec){ .cn = "l" }, NULL, 0, X509_USAGE_CLIENT, 365, &lk, &lc), 0);
		assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(lc), X509_get0_notAfter(sc)), 0);
		X509_free(sc);
		X509_free(lc);
		EVP_PKEY_free(sk);
		EVP_PKEY_free(lk);
	}

	/* refusals; outputs untouched */
	key2 = NULL;
	x2 = NULL;
	{
		static const char *const bad[] = { "a b", "-x.example", "x-.example", "x..example", "", "a_b.example",
						   "1.2.3.4.5:80", "300.1.2.3", "host.123", "*", "*.", "a.*.example", "ex\xc3\xa4mple.org" };
		for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
			expect_err(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "x" }, &bad[i], 1,
					      X509_USAGE_SERVER, 30, &key2, &x2), -EINVAL, NULL);
	}
	{
		char longlabel[80], longname[300];
		memset(longlabel, 'a', sizeof(longlabel) - 1);
		longlabel[sizeof(longlabel) - 1] = '\0';
		const char *p = longlabel;
		expect_err(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "x" }, &p, 1, X509_USAGE_SERVER, 30, &key2, &x2), -EINVAL, NULL);
		for (size_t i = 0; i < sizeof(longname) - 1; i++)
			longname[i] = i % 2 ? '.' : 'a';
		longname[sizeof(longname) - 1] = '\0';
		p = longname;
		expect_err(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "x" }, &p, 1, X509_USAGE_SERVER, 30, &key2, &x2), -EINVAL, NULL);
	}
	{
		const char *many[X509_MAX_SANS + 1];
		for (size_t i = 0; i < ARRAY_SIZE(many); i++)
			many[i] = "localhost";
		expect_err(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "x" }, many, ARRAY_SIZE(many),
				      X509_USAGE_SERVER, 30, &key2, &x2), -E2BIG, NULL);
	}
	expect_err(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "x" }, NULL, 0, X509_USAGE_SERVER, 0, &key2, &x2), -EINVAL, "days");
	expect_err(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "x" }, NULL, 0, (enum x509_usage)7, 30, &key2, &x2), -EINVAL, NULL);
	/* the CA key must be the CA's, the CA a CA */
	expect_err(x509_issue(key, ca, &(struct x509_name_spec){ .cn = "x" }, NULL, 0, X509_USAGE_SERVER, 30, &key2, &x2), -EINVAL, "CA key");
	expect_err(x509_issue(key, x, &(struct x509_name_spec){ .cn = "x" }, NULL, 0, X509_USAGE_SERVER, 30, &key2, &x2), -EINVAL, "not a CA");
	assert_null(key2);
	assert_null(x2);

	X509_STORE_free(store);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
}

static void test_issue_rsa(void **state)
{
	EVP_PKEY *ca_key = NULL, *key = NULL;
	X509 *ca = NULL, *x = NULL;
	X509_STORE *store;
	struct json_object *d = NULL;

	assert_int_equal(x509_keygen(X509_KEY_RSA3072, &ca_key), 0);
	assert_int_equal(EVP_PKEY_get_bits(ca_key), 3072);
	assert_int_equal(x509_make_ca_with_key(&(struct x509_name_spec){ .cn = "RSA CA" }, 100, ca_key, &ca), 0);
	assert_int_equal(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "verifier" }, NULL, 0,
				    X509_USAGE_SERVER, 30, &key, &x), 0);
	/* leaves follow the CA's key type */
	assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_RSA);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	assert_int_equal(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
	store = store_of(ca, NULL);
	assert_int_equal(x509_verify_chain(x, NULL, store, 0), 0);
	assert_int_equal(x509_describe(x, &d), 0);
	assert_string_equal(jstr(d, "key_type"), "RSA 3072");
	assert_string_equal(jstr(d, "signature_algorithm"), "sha256WithRSAEncryption");
	json_object_put(d);
	X509_STORE_free(store);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
}

/* ---- chains ---- */

static void test_verify_chain(void **state)
{
	EVP_PKEY *ca_key = NULL, *other_key = NULL, *key = NULL;
	X509 *ca = NULL, *other = NULL, *x = NULL;
	X509_STORE *store, *wrong;
	time_t now = time(NULL);

	assert_int_equal(x509_make_ca(&(struct x509_name_spec){ .cn = "CA" }, 3650, &ca_key, &ca), 0);
	assert_int_equal(x509_make_ca(&(struct x509_name_spec){ .cn = "CA" }, 3650, &other_key, &other), 0);
	assert_int_equal(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "leaf" }, NULL, 0,
				    X509_USAGE_CLIENT, 10, &key, &x), 0);
	store = store_of(ca, NULL);
	wrong = store_of(other, NULL);

	assert_int_equal(x509_verify_chain(x, NULL, store, 0), 0);
	assert_int_equal(x509_verify_chain(x, NULL, store, now + 9 * DAY), 0);
	expect_err(x509_verify_chain(x, NULL, store, now + 11 * DAY), -EKEYREJECTED, "expired");
	expect_err(x509_verify_chain(x, NULL, store, now - DAY), -EKEYREJECTED, "not yet valid");
	/* another CA of the same name: the signature does not verify */
	expect_err(x509_verify_chain(x, NULL, wrong, 0), -EKEYREJECTED, "depth 0");
	/* whatever is in the store is trusted as it is (partial chains) */
	{
		X509_STORE *self = store_of(x, NULL);
		assert_int_equal(x509_verify_chain(x, NULL, self, 0), 0);
		X509_STORE_free(self);
	}
	expect_err(x509_verify_chain(NULL, NULL, store, 0), -EINVAL, NULL);
	expect_err(x509_verify_chain(x, NULL, NULL, 0), -EINVAL, NULL);

	X509_STORE_free(store);
	X509_STORE_free(wrong);
	X509_free(x);
	X509_free(ca);
	X509_free(other);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
}

static void test_intermediate(void **state)
{
	EVP_PKEY *root_key = NULL, *inter_key = ec_key(), *leaf_key = ec_key();
	X509 *root = make_root("root", &root_key), *inter, *leaf, *expired_inter;
	X509_STORE *roots, *inters;
	STACK_OF(X509) *chain, *expired_chain;

	inter = draft(root, inter_key, "intermediate", true, -60, 365 * DAY);
	sign_x(inter, root_key);
	expired_inter = draft(root, inter_key, "intermediate", true, -10 * DAY, -DAY);
	sign_x(expired_inter, root_key);
	leaf = draft(inter, leaf_key, "leaf", false, -60, 30 * DAY);
	sign_x(leaf, inter_key);

	roots = store_of(root, NULL);
	chain = stack_of(inter);
	expired_chain = stack_of(expired_inter);
	expect_err(x509_verify_chain(leaf, NULL, roots, 0), -EKEYREJECTED, "local issuer");
	assert_int_equal(x509_verify_chain(leaf, chain, roots, 0), 0);
	expect_err(x509_verify_chain(leaf, expired_chain, roots, 0), -EKEYREJECTED, "depth 1");
	/* an intermediate in the store is an anchor of its own (partial chain) */
	inters = store_of(inter, NULL);
	assert_int_equal(x509_verify_chain(leaf, NULL, inters, 0), 0);
	/* an intermediate with the CA flag off cannot issue */
	{
		X509 *notca = draft(root, inter_key, "intermediate", false, -60, 365 * DAY);
		STACK_OF(X509) *bad;
		sign_x(notca, root_key);
		bad = stack_of(notca);
		expect_err(x509_verify_chain(leaf, bad, roots, 0), -EKEYREJECTED, "CA");
		free_stack(bad);
		X509_free(notca);
	}
	/* a deployment CA (pathlen 0) issues leaves only, not intermediates */
	{
		EVP_PKEY *dk = NULL;
		X509 *dca = NULL, *sub = draft(NULL, inter_key, "intermediate", true, -60, 365 * DAY);
		X509_STORE *ds;
		STACK_OF(X509) *dchain;

		assert_int_equal(x509_make_ca(&(struct x509_name_spec){ .cn = "deployment" }, 30, &dk, &dca), 0);
		X509_free(sub);
		sub = draft(dca, inter_key, "intermediate", true, -60, 365 * DAY);
		sign_x(sub, dk);
		ds = store_of(dca, NULL);
		dchain = stack_of(sub);
		expect_err(x509_verify_chain(leaf, dchain, ds, 0), -EKEYREJECTED, "path length");
		free_stack(dchain);
		X509_STORE_free(ds);
		X509_free(sub);
		X509_free(dca);
		EVP_PKEY_free(dk);
	}
	free_stack(chain);
	free_stack(expired_chain);
	X509_STORE_free(roots);
	X509_STORE_free(inters);
	X509_free(root);
	X509_free(inter);
	X509_free(expired_inter);
	X509_free(leaf);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(inter_key);
	EVP_PKEY_free(leaf_key);
}

/* subjectDirectoryAttributes as swtpm writes it: tpmSpecification "2.0", level 0, revision 164 */
static const uint8_t tcg_sda[] = {
	0x30, 0x19, 0x30, 0x17, 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x10, 0x31, 0x0e, 0x30,
	0x0c, 0x0c, 0x03, 0x32, 0x2e, 0x30, 0x02, 0x01, 0x00, 0x02, 0x02, 0x00, 0xa4,
};

/* An EK certificate as the TCG EK credential profile shapes it. */
static X509 *ek_like(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *ek, bool sda_critical, const char *unknown_critical)
{
	X509 *x = draft(ca, ek, NULL, false, -60, 0);
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	X509_NAME *dn = X509_NAME_new();
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();

	/* no expiry: GeneralizedTime 99991231235959Z */
	assert_int_equal(ASN1_TIME_set_string(X509_getm_notAfter(x), "99991231235959Z"), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(dn, "2.23.133.2.1", MBSTRING_UTF8, (const unsigned char *)"id:49465800", -1, -1, 0), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(dn, "2.23.133.2.2", MBSTRING_UTF8, (const unsigned char *)"SLB9670", -1, -1, 0), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(dn, "2.23.133.2.3", MBSTRING_UTF8, (const unsigned char *)"id:000D0004", -1, -1, 0), 1);
	GENERAL_NAME_set0_value(gn, GEN_DIRNAME, dn);
	assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
	/* empty subject: the SAN is critical (RFC 5280 4.2.1.6) */
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 1, X509V3_ADD_DEFAULT), 1);
	GENERAL_NAMES_free(gens);
	assert_true(sk_ASN1_OBJECT_push(eku, OBJ_txt2obj("2.23.133.8.1", 1)) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT), 1);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	add_raw_ext(x, "2.5.29.9", sda_critical, tcg_sda, sizeof(tcg_sda));
	if (unknown_critical) {
		static const uint8_t null[] = { 0x05, 0x00 };
		add_raw_ext(x, unknown_critical, true, null, sizeof(null));
	}
	sign_x(x, ca_key);
	return x;
}

static void test_ek_profile(void **state)
{
	EVP_PKEY *ca_key = NULL, *ek = NULL;
	X509 *ca = NULL, *x;
	X509_STORE *store;
	struct json_object *d = NULL, *tpm;

	assert_int_equal(x509_keygen(X509_KEY_RSA3072, &ek), 0);
	assert_int_equal(x509_make_ca(&(struct x509_name_spec){ .cn = "vendor EK CA" }, X509_MAX_DAYS, &ca_key, &ca), 0);
	store = store_of(ca, NULL);

	/* empty subject, critical SAN with the TPM attributes, subjectDirectoryAttributes, 9999 */
	x = ek_like(ca, ca_key, ek, false, NULL);
	assert_int_equal(x509_verify_chain(x, NULL, store, 0), 0);
	assert_int_equal(x509_verify_chain(x, NULL, store, time(NULL) + 50 * 365 * (time_t)DAY), 0);
	assert_int_equal(x509_matches_pkey(x, ek), 0);
	assert_int_equal(x509_describe(x, &d), 0);
	assert_string_equal(jstr(d, "subject"), "");
	assert_string_equal(jstr(d, "not_after"), "9999-12-31T23:59:59Z");
	assert_true(json_object_object_get_ex(d, "tpm", &tpm));
	assert_string_equal(jstr(tpm, "manufacturer"), "id:49465800");
	assert_string_equal(jstr(tpm, "model"), "SLB9670");
	assert_string_equal(jstr(tpm, "version"), "id:000D0004");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(json_object_object_get(d, "eku"), 0)),
			    "tcg-kp-EKCertificate");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(json_object_object_get(d, "sans"), 0)),
			    "DirName:tpmManufacturer=id:49465800, tpmModel=SLB9670, tpmVersion=id:000D0004");
	json_object_put(d);
	X509_free(x);

	/* subjectDirectoryAttributes marked critical: OpenSSL does not process it, the TCG profile defines it */
	x = ek_like(ca, ca_key, ek, true, NULL);
	assert_int_equal(x509_verify_chain(x, NULL, store, 0), 0);
	X509_free(x);

	/* any other unknown critical extension still fails the chain */
	x = ek_like(ca, ca_key, ek, true, "1.3.6.1.4.1.55555.1");
	expect_err(x509_verify_chain(x, NULL, store, 0), -EKEYREJECTED, "unhandled critical extension");
	X509_free(x);
	x = ek_like(ca, ca_key, ek, false, "2.23.133.99.1");
	expect_err(x509_verify_chain(x, NULL, store, 0), -EKEYREJECTED, "unhandled critical extension");
	X509_free(x);

	X509_STORE_free(store);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(ek);
}

static void test_matches_pkey(void **state)
{
	EVP_PKEY *ca_key = NULL, *key = NULL, *other = ec_key(), *pub;
	X509 *ca = NULL, *x = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	int n;

	assert_int_equal(x509_make_ca(&(struct x509_name_spec){ .cn = "CA" }, 30, &ca_key, &ca), 0);
	assert_int_equal(x509_issue(ca_key, ca, &(struct x509_name_spec){ .cn = "x" }, NULL, 0, X509_USAGE_CLIENT, 30, &key, &x), 0);
	assert_int_equal(x509_matches_pkey(x, key), 0);
	/* the public half alone matches too */
	n = i2d_PUBKEY(key, &der);
	assert_true(n > 0);
	p = der;
	pub = d2i_PUBKEY(NULL, &p, n);
	assert_non_null(pub);
	assert_int_equal(x509_matches_pkey(x, pub), 0);
	expect_err(x509_matches_pkey(x, other), -EKEYREJECTED, "another key");
	expect_err(x509_matches_pkey(x, ca_key), -EKEYREJECTED, NULL);
	expect_err(x509_matches_pkey(NULL, key), -EINVAL, NULL);
	expect_err(x509_matches_pkey(x, NULL), -EINVAL, NULL);
	OPENSSL_free(der);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(other);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	X509_free(x);
	X509_free(ca);
}

/* A hostile certificate cannot put control characters into what is shown. */
static void test_describe_hostile(void **state)
{
	EVP_PKEY *k = ec_key();
	X509 *x = draft(NULL, k, "evil\x1b[2J, O=forged", false, -60, DAY);
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *dns = GENERAL_NAME_new(), *dir = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	X509_NAME *dn = X509_NAME_new();
	struct json_object *d = NULL;
	const char *js;

	assert_int_equal(ASN1_STRING_set(ia5, "a\x07" "b.example", -1), 1);
	GENERAL_NAME_set0_value(dns, GEN_DNS, ia5);
	assert_int_equal(X509_NAME_add_entry_by_txt(dn, "2.23.133.2.2", MBSTRING_UTF8, (const unsigned char *)"m\x1b]0;x\x07", -1, -1, 0), 1);
	GENERAL_NAME_set0_value(dir, GEN_DIRNAME, dn);
	assert_true(sk_GENERAL_NAME_push(gens, dns) > 0);
	assert_true(sk_GENERAL_NAME_push(gens, dir) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
	GENERAL_NAMES_free(gens);
	sign_x(x, k);

	assert_int_equal(x509_describe(x, &d), 0);
	assert_string_equal(jstr(d, "subject"), "CN=evil\\x1b[2J\\, O\\=forged");
	js = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN);
	assert_null(strchr(js, 0x1b));
	assert_null(strchr(js, 0x07));
	assert_string_equal(json_object_get_string(json_object_array_get_idx(json_object_object_get(d, "sans"), 0)),
			    "DNS:a\\x07b.example");
	assert_string_equal(jstr(json_object_object_get(d, "tpm"), "model"), "m\\x1b]0;x\\x07");
	json_object_put(d);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* ---- external signers ---- */

enum sig_mode { SIG_DER, SIG_RAW, SIG_FAIL, SIG_SHORT, SIG_NONE };

struct signer {
	EVP_PKEY *key;
	enum sig_mode mode;
	int calls;
};

/* A stand-in for a TPM-resident key: signs the digest it is given. */
static int soft_sign(void *userdata, uint16_t hash_alg, const uint8_t *digest, size_t dlen,
		     uint8_t **ret_sig, size_t *ret_len)
{
	struct signer *s = userdata;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(s->key, NULL);
	uint8_t *sig;
	size_t len = 0;

	s->calls++;
	assert_int_equal(hash_alg, KQ_ALG_SHA256);
	assert_int_equal(dlen, 32);
	if (s->mode == SIG_FAIL) {
		EVP_PKEY_CTX_free(c);
		return kq_err(-EIO, "the TPM said no");
	}
	if (s->mode == SIG_NONE) {
		EVP_PKEY_CTX_free(c);
		return 0;
	}
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_sign_init(c), 1);
	if (EVP_PKEY_get_base_id(s->key) == EVP_PKEY_RSA)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_sign(c, NULL, &len, digest, dlen), 1);
	sig = malloc(len);
	assert_non_null(sig);
	assert_int_equal(EVP_PKEY_sign(c, sig, &len, digest, dlen), 1);
	EVP_PKEY_CTX_free(c);
	if (s->mode == SIG_RAW) {
		/* r || s, 32 bytes each, as TPMS_SIGNATURE_ECDSA holds them */
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
		const BIGNUM *r, *ss;
		assert_non_null(es);
		ECDSA_SIG_get0(es, &r, &ss);
		len = 64;
		assert_int_equal(BN_bn2binpad(r, sig, 32), 32);
		assert_int_equal(BN_bn2binpad(ss, sig + 32, 32), 32);
		ECDSA_SIG_free(es);
	}
	if (s->mode == SIG_SHORT)
		len--;
	*ret_sig = sig;
	*ret_len = len;
	return 0;
}

static void check_sign_with(EVP_PKEY *ca_key, enum sig_mode mode)
{
	X509 *ca = NULL, *x, *back = NULL;
	EVP_PKEY *ek = ec_key();
	struct signer s = { .key = ca_key, .mode = mode };
	X509_STORE *store;
	uint8_t *der;
	size_t len;

	assert_int_equal(x509_make_ca_with_key(&(struct x509_name_spec){ .cn = "host vTPM-CA" }, 30, ca_key, &ca), 0);
	store = store_of(ca, NULL);
	x = draft(ca, ek, NULL, false, -60, 10 * DAY);
	assert_int_equal(x509_sign_with(x, ca_key, soft_sign, &s), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(X509_get_signature_nid(x), EVP_PKEY_get_base_id(ca_key) == EVP_PKEY_RSA ?
			 NID_sha256WithRSAEncryption : NID_ecdsa_with_SHA256);
	assert_int_equal(X509_verify(x, ca_key), 1);
	assert_int_equal(x509_verify_chain(x, NULL, store, 0), 0);
	/* and once more after a round trip through DER */
	der = der_of(x, &len);
	assert_int_equal(x509_load(der, len, &back), 0);
	assert_int_equal(X509_verify(back, ca_key), 1);
	assert_int_equal(x509_verify_chain(back, NULL, store, 0), 0);
	free(der);
	X509_free(back);
	X509_free(x);
	X509_STORE_free(store);
	X509_free(ca);
	EVP_PKEY_free(ek);
}

static void test_sign_with(void **state)
{
	EVP_PKEY *ec = ec_key(), *rsa = NULL, *other = ec_key(), *ek = ec_key();
	X509 *x;
	struct signer s;

	check_sign_with(ec, SIG_DER);
	check_sign_with(ec, SIG_RAW);
	assert_int_equal(x509_keygen(X509_KEY_RSA3072, &rsa), 0);
	check_sign_with(rsa, SIG_DER);

	/* a signer using another key than the issuer's: caught before returning */
	s = (struct signer){ .key = other, .mode = SIG_DER };
	x = draft(NULL, ek, "x", false, 0, DAY);
	expect_err(x509_sign_with(x, ec, soft_sign, &s), -EKEYREJECTED, "does not verify");
	X509_free(x);
	/* the signer's error is passed on */
	s = (struct signer){ .key = ec, .mode = SIG_FAIL };
	x = draft(NULL, ek, "x", false, 0, DAY);
	expect_err(x509_sign_with(x, ec, soft_sign, &s), -EIO, "the TPM said no");
	X509_free(x);
	/* no signature, a signature of the wrong size */
	s = (struct signer){ .key = ec, .mode = SIG_NONE };
	x = draft(NULL, ek, "x", false, 0, DAY);
	expect_err(x509_sign_with(x, ec, soft_sign, &s), -EBADMSG, NULL);
	X509_free(x);
	s = (struct signer){ .key = rsa, .mode = SIG_SHORT };
	x = draft(NULL, ek, "x", false, 0, DAY);
	expect_err(x509_sign_with(x, rsa, soft_sign, &s), -EBADMSG, "modulus");
	X509_free(x);
	s = (struct signer){ .key = ec, .mode = SIG_SHORT };
	x = draft(NULL, ek, "x", false, 0, DAY);
	expect_err(x509_sign_with(x, ec, soft_sign, &s), -EBADMSG, NULL);
	X509_free(x);
	/* an issuer key of another type */
	{
		EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		assert_non_null(ed);
		x = draft(NULL, ek, "x", false, 0, DAY);
		expect_err(x509_sign_with(x, ed, soft_sign, &s), -ENOTSUP, NULL);
		X509_free(x);
		EVP_PKEY_free(ed);
	}
	expect_err(x509_sign_with(NULL, ec, soft_sign, &s), -EINVAL, NULL);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(other);
	EVP_PKEY_free(ek);
}

/* ---- loading ---- */

struct fixture {
	EVP_PKEY *ca_key, *key;
	X509 *ca, *leaf;
	uint8_t *der;
	size_t der_len;
	char *pem;
};

static void fixture_make(struct fixture *f)
{
	assert_int_equal(x509_make_ca(&(struct x509_name_spec){ .cn = "CA" }, 30, &f->ca_key, &f->ca), 0);
	assert_int_equal(x509_issue(f->ca_key, f->ca, &(struct x509_name_spec){ .cn = "leaf" }, NULL, 0,
				    X509_USAGE_CLIENT, 30, &f->key, &f->leaf), 0);
	f->der = der_of(f->leaf, &f->der_len);
	f->pem = pem_of(f->leaf);
}

static void fixture_free(struct fixture *f)
{
	EVP_PKEY_free(f->ca_key);
	EVP_PKEY_free(f->key);
	X509_free(f->ca);
	X509_free(f->leaf);
	free(f->der);
	free(f->pem);
}

static void expect_same(const uint8_t *buf, size_t len, X509 *want)
{
	X509 *x = NULL;
	int r = x509_load(buf, len, &x);

	if (r < 0)
		fail_msg("x509_load: %s", kq_errmsg());
	assert_int_equal(X509_cmp(x, want), 0);
	X509_free(x);
}

static void expect_load_err(const void *buf, size_t len, int code, const char *needle)
{
	X509 *x = NULL;
	STACK_OF(X509) *sk = NULL;

	expect_err(x509_load(buf, len, &x), code, needle);
	assert_null(x);
	expect_err(x509_load_many(buf, len, &sk), code, needle);
	assert_null(sk);
}

static void test_load(void **state)
{
	struct fixture f = { 0 };
	uint8_t *b;
	char *ca_pem, *multi;
	STACK_OF(X509) *sk = NULL;

	fixture_make(&f);
	expect_same(f.der, f.der_len, f.leaf);
	expect_same((uint8_t *)f.pem, strlen(f.pem), f.leaf);

	/* PEM: several certificates, other blocks and text skipped */
	ca_pem = pem_of(f.ca);
	assert_true(asprintf(&multi, "leaf follows\n%s-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n%s"
				     "trailing words\n", f.pem, ca_pem) > 0);
	assert_int_equal(x509_load_many((uint8_t *)multi, strlen(multi), &sk), 0);
	assert_int_equal(sk_X509_num(sk), 2);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 0), f.leaf), 0);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 1), f.ca), 0);
	free_stack(sk);
	expect_same((uint8_t *)multi, strlen(multi), f.leaf); /* the first one */
	free(multi);

	/* DER from TPM NV: TCG PC Client header, padding */
	b = calloc(1, f.der_len + 300);
	assert_non_null(b);
	b[0] = 0x10; b[1] = 0x01; b[2] = 0x00;
	b[3] = (uint8_t)(f.der_len >> 8); b[4] = (uint8_t)f.der_len;
	memcpy(b + 5, f.der, f.der_len);
	expect_same(b, f.der_len + 5, f.leaf);
	expect_same(b, f.der_len + 300, f.leaf);              /* header + zero padding */
	expect_load_err(b, f.der_len + 4, -EBADMSG, "header"); /* header claims more than is there */
	memcpy(b, f.der, f.der_len);
	memset(b + f.der_len, 0xff, 300);
	expect_same(b, f.der_len + 300, f.leaf);              /* 0xff padding */
	b[f.der_len + 299] = 0x00;
	expect_load_err(b, f.der_len + 300, -EBADMSG, "after the certificate"); /* mixed: not padding */
	memset(b + f.der_len, 0x30, 4);
	expect_load_err(b, f.der_len + 4, -EBADMSG, "after the certificate");
	free(b);

	/* every truncation of the DER and of the PEM fails cleanly */
	for (size_t n = 0; n < f.der_len; n++)
		expect_load_err(f.der, n, -EBADMSG, NULL);
	for (size_t n = 0; n < strlen(f.pem) - 2; n += 7) {
		X509 *x = NULL;
		int r = x509_load((uint8_t *)f.pem, n, &x);
		assert_true(r == -EBADMSG || r == -ENODATA);
		assert_null(x);
	}
	/* garbage: text, random bytes, a flipped byte in the middle */
	expect_load_err("hello world\n", 12, -ENODATA, NULL);
	{
		uint8_t rnd[2048];
		for (int i = 0; i < 64; i++) {
			X509 *x = NULL;
			int r;
			assert_int_equal(RAND_bytes(rnd, sizeof(rnd)), 1);
			if (i % 2)
				rnd[0] = 0x30;
			r = x509_load(rnd, sizeof(rnd), &x);
			assert_true(r == -EBADMSG || r == -ENODATA);
			assert_true(kq_errmsg()[0] != '\0');
			assert_null(x);
		}
	}
	{
		char *bad = strdup(f.pem);
		bad[40] = '*'; /* not base64 */
		expect_load_err(bad, strlen(bad), -EBADMSG, "PEM");
		free(bad);
	}
	expect_load_err("", 0, -EBADMSG, "empty");
	/* a PEM file with a key and no certificate */
	{
		static const char key_only[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
		expect_load_err(key_only, strlen(key_only), -ENODATA, "no CERTIFICATE");
	}

	/* limits: 1 MiB, 32 certificates */
	b = calloc(1, X509_MAX_INPUT + 1);
	assert_non_null(b);
	memcpy(b, f.der, f.der_len);
	expect_load_err(b, X509_MAX_INPUT + 1, -EFBIG, "limit");
	free(b);
	{
		size_t pl = strlen(f.pem);
		char *many = malloc(pl * (X509_MAX_CERTS + 1) + 1);
		assert_non_null(many);
		for (size_t i = 0; i < X509_MAX_CERTS; i++)
			memcpy(many + i * pl, f.pem, pl);
		many[pl * X509_MAX_CERTS] = '\0';
		assert_int_equal(x509_load_many((uint8_t *)many, strlen(many), &sk), 0);
		assert_int_equal(sk_X509_num(sk), X509_MAX_CERTS);
		free_stack(sk);
		memcpy(many + X509_MAX_CERTS * pl, f.pem, pl + 1);
		{
			STACK_OF(X509) *none = NULL;
			expect_err(x509_load_many((uint8_t *)many, strlen(many), &none), -E2BIG, NULL);
			assert_null(none);
		}
		free(many);
	}
	free(ca_pem);
	fixture_free(&f);
}

/* Serial numbers with a redundant leading zero byte (STMicroelectronics). */
static void test_padded_serial(void **state)
{
	EVP_PKEY *root_key = NULL, *inter_key = ec_key(), *leaf_key = ec_key();
	X509 *root = make_root("STM-like root", &root_key), *inter, *leaf, *pinter = NULL, *pleaf = NULL, *x = NULL;
	X509_STORE *roots, *both;
	STACK_OF(X509) *chain;
	struct buf d;
	const unsigned char *p;
	char *pem;

	inter = draft(root, inter_key, "STM-like intermediate", true, -60, 365 * DAY);
	sign_x(inter, root_key);
	leaf = draft(inter, leaf_key, NULL, false, -60, 30 * DAY);
	sign_x(leaf, inter_key);
	roots = store_of(root, NULL);

	/* OpenSSL alone refuses it */
	padded_serial_der(leaf, inter_key, false, &d);
	p = d.b;
	assert_null(d2i_X509(NULL, &p, (long)d.n));
	ERR_clear_error();
	/* x509_load re-encodes the serial; the signature is checked over what was signed */
	assert_int_equal(x509_load(d.b, d.n, &pleaf), 0);
	assert_int_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(pleaf), X509_get0_serialNumber(leaf)), 0);
	chain = stack_of(inter);
	assert_int_equal(x509_verify_chain(pleaf, chain, roots, 0), 0);
	free_stack(chain);
	/* the same as PEM */
	{
		BIO *bio = BIO_new(BIO_s_mem());
		long n;
		char *mp;
		assert_true(PEM_write_bio(bio, "CERTIFICATE", "", d.b, (long)d.n) > 0);
		n = BIO_get_mem_data(bio, &mp);
		pem = strndup(mp, (size_t)n);
		BIO_free(bio);
	}
	assert_int_equal(x509_load((uint8_t *)pem, strlen(pem), &x), 0);
	chain = stack_of(inter);
	assert_int_equal(x509_verify_chain(x, chain, roots, 0), 0);
	free_stack(chain);
	X509_free(x);
	free(pem);

	/* the intermediate padded as well, as an untrusted intermediate and in the store */
	padded_serial_der(inter, root_key, false, &d);
	assert_int_equal(x509_load(d.b, d.n, &pinter), 0);
	chain = stack_of(pinter);
	assert_int_equal(x509_verify_chain(pleaf, chain, roots, 0), 0);
	assert_int_equal(x509_verify_chain(leaf, chain, roots, 0), 0);
	free_stack(chain);
	both = store_of(root, pinter);
	assert_int_equal(x509_verify_chain(pleaf, NULL, both, 0), 0);
	X509_STORE_free(both);

	/* a wrong signature over the padded encoding is still wrong */
	X509_free(pleaf);
	pleaf = NULL;
	padded_serial_der(leaf, inter_key, true, &d);
	assert_int_equal(x509_load(d.b, d.n, &pleaf), 0);
	chain = stack_of(inter);
	expect_err(x509_verify_chain(pleaf, chain, roots, 0), -EKEYREJECTED, "signature");
	free_stack(chain);
	X509_free(pleaf);
	pleaf = NULL;
	/* signed by another key */
	padded_serial_der(leaf, root_key, false, &d);
	assert_int_equal(x509_load(d.b, d.n, &pleaf), 0);
	chain = stack_of(inter);
	expect_err(x509_verify_chain(pleaf, chain, roots, 0), -EKEYREJECTED, "signature");
	free_stack(chain);

	X509_STORE_free(roots);
	X509_free(pleaf);
	X509_free(pinter);
	X509_free(root);
	X509_free(inter);
	X509_free(leaf);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(inter_key);
	EVP_PKEY_free(leaf_key);
}

/* ---- trust stores and files ---- */

static void test_store_from_dir(void **state)
{
	struct fixture f = { 0 };
	char *dir = tmpdir(), *empty = tmpdir(), *p;
	char *ca_pem;
	X509_STORE *store = NULL;

	fixture_make(&f);
	ca_pem = pem_of(f.ca);
	/* a kumquat CA directory: the CA, a leaf, keys, other files */
	write_str(dir, "ca.pem", ca_pem, strlen(ca_pem));
	write_str(dir, "leaf.PEM", f.pem, strlen(f.pem));
	write_str(dir, "leaf.der", f.der, f.der_len);
	assert_true(asprintf(&p, "%s/ca-key.pem", dir) > 0);
	assert_int_equal(x509_write_key_pem(p, f.ca_key), 0);
	free(p);
	write_str(dir, "README", "not a cert", 10);
	write_str(dir, ".hidden.pem", "garbage", 7);
	assert_int_equal(x509_store_from_dir(dir, &store), 1); /* only the CA */
	assert_int_equal(x509_verify_chain(f.leaf, NULL, store, 0), 0);
	X509_STORE_free(store);
	store = NULL;
	/* the swtpm-localca chain as a directory */
	write_str(dir, "swtpm-root.crt", swtpm_rootca_pem, strlen(swtpm_rootca_pem));
	write_str(dir, "swtpm-localca.pem", swtpm_localca_pem, strlen(swtpm_localca_pem));
	assert_int_equal(x509_store_from_dir(dir, &store), 3);
	X509_STORE_free(store);
	store = NULL;
	/* a listed file that does not parse is an error naming it */
	write_str(dir, "broken.crt", "\x30\x82\x01", 3);
	expect_err(x509_store_from_dir(dir, &store), -EBADMSG, "broken.crt");
	assert_null(store);
	expect_err(x509_store_from_dir(empty, &store), -ENOENT, "no CA certificate");
	expect_err(x509_store_from_dir("/nonexistent/kq", &store), -ENOENT, NULL);
	assert_null(store);

	free(ca_pem);
	rm_rf(dir);
	rm_rf(empty);
	free(dir);
	free(empty);
	fixture_free(&f);
}

static void test_files(void **state)
{
	struct fixture f = { 0 };
	char *dir = tmpdir(), *cp, *kp;
	struct stat st;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;

	fixture_make(&f);
	assert_true(asprintf(&cp, "%s/leaf.pem", dir) > 0);
	assert_true(asprintf(&kp, "%s/leaf-key.pem", dir) > 0);
	assert_int_equal(x509_write_pem(cp, f.leaf), 0);
	assert_int_equal(x509_write_key_pem(kp, f.key), 0);
	assert_int_equal(stat(cp, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(stat(kp, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(x509_read(cp, &x), 0);
	assert_int_equal(X509_cmp(x, f.leaf), 0);
	assert_int_equal(x509_read_key(kp, &k), 0);
	assert_int_equal(x509_matches_pkey(x, k), 0);
	assert_int_equal(X509_check_private_key(x, k), 1);
	X509_free(x);
	EVP_PKEY_free(k);
	x = NULL;
	k = NULL;
	/* overwriting is atomic and keeps the modes */
	assert_int_equal(x509_write_pem(cp, f.ca), 0);
	assert_int_equal(x509_write_key_pem(kp, f.ca_key), 0);
	assert_int_equal(stat(kp, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(x509_read(cp, &x), 0);
	assert_int_equal(X509_cmp(x, f.ca), 0);
	/* reading the wrong thing */
	expect_err(x509_read_key(cp, &k), -EBADMSG, NULL);
	X509_free(x);
	x = NULL;
	expect_err(x509_read(kp, &x), -ENODATA, "leaf-key.pem");
	expect_err(x509_read("/nonexistent/x.pem", &x), -ENOENT, NULL);
	assert_null(x);
	assert_null(k);
	/* an encrypted key fails instead of prompting for a passphrase */
	{
		BIO *b = BIO_new(BIO_s_mem());
		char *mp;
		long n;
		assert_int_equal(PEM_write_bio_PKCS8PrivateKey(b, f.key, EVP_aes_256_cbc(), "pw", 2, NULL, NULL), 1);
		n = BIO_get_mem_data(b, &mp);
		assert_int_equal(kq_write_file(kp, mp, (size_t)n), 0);
		BIO_free(b);
		expect_err(x509_read_key(kp, &k), -EBADMSG, NULL);
	}
	free(cp);
	free(kp);
	rm_rf(dir);
	free(dir);
	fixture_free(&f);
}

/* ---- real certificates ---- */

/* A Google Cloud vTPM AK certificate: empty subject, critical SAN with the TPM attributes. */
static void test_gce_golden(void **state)
{
	struct json_object *j = testdata_json("quote/gce-cos85-vtpm-attestation.json"), *d = NULL, *tpm;
	size_t chain_len, der_len, pub_len;
	uint8_t *chain_pem = testdata_load("quote/gce-ek-ak-ca-chain.pem", &chain_len);
	uint8_t *der = test_hex(jstr(j, "ak_cert_der_hex"), &der_len);
	uint8_t *pub = test_hex(jstr(j, "ak_pub_tpmt_public_hex"), &pub_len);
	STACK_OF(X509) *chain = NULL, *inter;
	X509_STORE *roots, *inters;
	X509 *ak = NULL;
	TPMT_PUBLIC tp;
	EVP_PKEY *ak_pub = NULL, *other = ec_key();

	assert_int_equal(x509_load(der, der_len, &ak), 0);
	assert_int_equal(x509_load_many(chain_pem, chain_len, &chain), 0);
	assert_int_equal(sk_X509_num(chain), 2);
	roots = store_of(sk_X509_value(chain, 1), NULL);
	inter = stack_of(sk_X509_value(chain, 0));
	assert_int_equal(x509_verify_chain(ak, inter, roots, 0), 0);
	assert_int_equal(x509_verify_chain(ak, inter, roots, 1640995200 /* 2022-01-01 */), 0);
	expect_err(x509_verify_chain(ak, inter, roots, 1609459200 /* 2021-01-01 */), -EKEYREJECTED, "not yet valid");
	expect_err(x509_verify_chain(ak, NULL, roots, 0), -EKEYREJECTED, "local issuer");
	inters = store_of(sk_X509_value(chain, 0), NULL);
	assert_int_equal(x509_verify_chain(ak, NULL, inters, 0), 0);
	/* the certificate is for the AK of the attestation */
	assert_int_equal(tpm_tpmt_public_unmarshal(pub, pub_len, &tp), 0);
	assert_int_equal(tpm_public_to_pkey(&tp, &ak_pub), 0);
	assert_int_equal(x509_matches_pkey(ak, ak_pub), 0);
	expect_err(x509_matches_pkey(ak, other), -EKEYREJECTED, NULL);
	/* and says which TPM it is */
	assert_int_equal(x509_describe(ak, &d), 0);
	assert_string_equal(jstr(d, "subject"), "");
	assert_true(json_object_object_get_ex(d, "tpm", &tpm));
	assert_string_equal(jstr(tpm, "manufacturer"), "id:474F4F47");
	assert_string_equal(jstr(tpm, "model"), "vTPM");
	assert_string_equal(jstr(d, "key_type"), "RSA 2048");
	assert_string_equal(jstr(d, "serial"), "015c189200bf3dcc5ee8d6700145145df04177");
	assert_string_equal(jstr(d, "not_before"), "2021-08-31T23:11:05Z");
	json_object_put(d);

	EVP_PKEY_free(ak_pub);
	EVP_PKEY_free(other);
	X509_STORE_free(roots);
	X509_STORE_free(inters);
	free_stack(inter);
	free_stack(chain);
	X509_free(ak);
	free(der);
	free(pub);
	free(chain_pem);
	json_object_put(j);
}

/* An EK certificate made by swtpm_setup/swtpm_localca, with its two-level chain. */
static void test_swtpm_golden(void **state)
{
	X509 *ek = pem_cert(swtpm_ek_rsa_pem), *localca = pem_cert(swtpm_localca_pem), *root = pem_cert(swtpm_rootca_pem);
	X509_STORE *roots = store_of(root, NULL), *mine;
	STACK_OF(X509) *inter = stack_of(localca);
	EVP_PKEY *ca_key = NULL;
	X509 *ca = NULL;
	struct json_object *d = NULL;
	uint8_t *der;
	size_t len;

	assert_int_equal(x509_verify_chain(ek, inter, roots, SWTPM_AT), 0);
	assert_int_equal(x509_verify_chain(ek, inter, roots, (time_t)253402300000 - 1000), 0); /* 9999-12-31 */
	expect_err(x509_verify_chain(ek, inter, roots, (time_t)1700000000), -EKEYREJECTED, "not yet valid");
	expect_err(x509_verify_chain(ek, NULL, roots, SWTPM_AT), -EKEYREJECTED, NULL);
	/* against a deployment CA: refused */
	assert_int_equal(x509_make_ca(&(struct x509_name_spec){ .cn = "swtpm-localca" }, 30, &ca_key, &ca), 0);
	mine = store_of(ca, NULL);
	expect_err(x509_verify_chain(ek, inter, mine, SWTPM_AT), -EKEYREJECTED, NULL);
	expect_err(x509_verify_chain(ek, NULL, mine, SWTPM_AT), -EKEYREJECTED, NULL);
	/* as read from NV: DER */
	der = der_of(ek, &len);
	assert_int_equal(len, 1016);
	expect_same(der, len, ek);
	free(der);

	assert_int_equal(x509_describe(ek, &d), 0);
	assert_string_equal(jstr(d, "subject"), "CN=unknown");
	assert_string_equal(jstr(d, "issuer"), "CN=swtpm-localca");
	assert_string_equal(jstr(d, "not_after"), "9999-12-31T23:59:59Z");
	assert_string_equal(jstr(json_object_object_get(d, "tpm"), "model"), "swtpm");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(json_object_object_get(d, "key_usage"), 0)),
			    "keyEncipherment");
	json_object_put(d);

	X509_STORE_free(roots);
	X509_STORE_free(mine);
	free_stack(inter);
	X509_free(ek);
	X509_free(localca);
	X509_free(root);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
}

/*
 * vTPM certificates: the TCG EK profile fields, the VM and host URIs read
 * back, a CA certificate for an external key, signed with x509_sign_with's
 * path replaced by a software signature; refusals of bad fields.
 */
static void test_vtpm_certs(void **state)
{
	static const char vm[] = "7C9D9A4E-1111-4000-8000-000000000001", host[] = "e27a1aa7-c736-464d-9cc9-dbd8be15ebe3";
	struct x509_tpm_cert_spec spec = {
		.manufacturer = "id:00001014", .model = "swtpm", .version = "id:20191023", .spec_family = "2.0",
		.spec_level = 0, .spec_revision = 164, .vm_uuid = vm, .host_id = host,
	};
	EVP_PKEY *ca_key = NULL, *ek = EVP_RSA_gen(2048), *ecc_ek = EVP_EC_gen("P-384");
	X509 *ca = NULL, *c = NULL;
	X509_STORE *store = X509_STORE_new();
	struct json_object *d = NULL;
	char got_vm[37], got_host[37];
	const ASN1_TIME *na;
	struct tm tm;
	int crit = -1;
	GENERAL_NAMES *gens;

	(void)state;
	assert_int_equal(x509_keygen(X509_KEY_EC_P256, &ca_key), 0);
	assert_int_equal(x509_ca_cert_new(&(struct x509_name_spec){ .cn = "kumquat vTPM CA", .org = "host x" }, 36500,
					  ca_key, &ca), 0);
	/* unsigned until someone signs it */
	assert_true(X509_verify(ca, ca_key) <= 0);
	assert_true(X509_sign(ca, ca_key, EVP_sha256()) > 0);
	assert_true(X509_check_ca(ca) > 0);

	assert_int_equal(x509_tpm_cert_new(&spec, ek, ca, &c), 0);
	assert_true(X509_sign(c, ca_key, EVP_sha256()) > 0);
	/* the profile: empty subject, critical SAN, CA:FALSE, EK EKU, until 9999 */
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(c)), 0);
	gens = X509_get_ext_d2i(c, NID_subject_alt_name, &crit, NULL);
	assert_non_null(gens);
	assert_int_equal(crit, 1);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 3);
	GENERAL_NAMES_free(gens);
	assert_int_equal(X509_check_ca(c), 0);
	na = X509_get0_notAfter(c);
	assert_int_equal(ASN1_TIME_to_tm(na, &tm), 1);
	assert_int_equal(tm.tm_year + 1900, 9999);
	assert_int_equal(x509_describe(c, &d), 0);
	assert_non_null(strstr(json_object_to_json_string(d), "tcg-kp-EKCertificate"));
	assert_non_null(strstr(json_object_to_json_string(d), "id:00001014"));
	json_object_put(d);
	/* it chains to the CA certificate, as openssl verify sees it */
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	assert_int_equal(x509_verify_chain(c, NULL, store, 0), 0);
	/* the identities read back, lowercase */
	assert_int_equal(x509_vtpm_identity(c, got_vm, got_host), 0);
	assert_string_equal(got_vm, "7c9d9a4e-1111-4000-8000-000000000001");
	assert_string_equal(got_host, host);
	X509_free(c);

	/* ECC EKs get keyAgreement; a platform certificate carries the platform fields */
	spec.platform = true;
	assert_int_equal(x509_tpm_cert_new(&spec, ecc_ek, ca, &c), 0);
	X509_free(c);
	spec.platform = false;

	/* refusals */
	spec.vm_uuid = "not-a-uuid";
	assert_int_equal(x509_tpm_cert_new(&spec, ek, ca, &c), -EINVAL);
	spec.vm_uuid = vm;
	spec.model = "";
	assert_int_equal(x509_tpm_cert_new(&spec, ek, ca, &c), -EINVAL);
	spec.model = "bad\nmodel";
	assert_int_equal(x509_tpm_cert_new(&spec, ek, ca, &c), -EINVAL);
	spec.model = "swtpm";
	spec.spec_family = "2.0.0.0.0.0.0.0";
	assert_int_equal(x509_tpm_cert_new(&spec, ek, ca, &c), -EINVAL);
	/* a certificate without the URIs names no VM */
	assert_int_equal(x509_vtpm_identity(ca, got_vm, got_host), -ENOENT);

	X509_STORE_free(store);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(ek);
	EVP_PKEY_free(ecc_ek);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_make_ca),
		cmocka_unit_test(test_issue),
		cmocka_unit_test(test_issue_rsa),
		cmocka_unit_test(test_verify_chain),
		cmocka_unit_test(test_intermediate),
		cmocka_unit_test(test_ek_profile),
		cmocka_unit_test(test_matches_pkey),
		cmocka_unit_test(test_describe_hostile),
		cmocka_unit_test(test_sign_with),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_padded_serial),
		cmocka_unit_test(test_store_from_dir),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_gce_golden),
		cmocka_unit_test(test_swtpm_golden),
		cmocka_unit_test(test_vtpm_certs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
