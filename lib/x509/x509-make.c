/* SPDX-License-Identifier: Apache-2.0 */
/* lib/x509: making certificates — the deployment CA, its leaves, external signers. */
#include "x509/x509.h"

#include <arpa/inet.h>
#include <limits.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "util/util.h"
#include "x509-priv.h"

static inline void X509_freep(X509 **p) { X509_free(*p); }
static inline void EVP_PKEY_freep(EVP_PKEY **p) { EVP_PKEY_free(*p); }
static inline void X509_NAME_freep(X509_NAME **p) { X509_NAME_free(*p); }
static inline void GENERAL_NAMES_freep(GENERAL_NAMES **p) { GENERAL_NAMES_free(*p); }
static inline void ECDSA_SIG_freep(ECDSA_SIG **p) { ECDSA_SIG_free(*p); }
static inline void BN_freep(BIGNUM **p) { BN_free(*p); }

/* Backdating notBefore absorbs clock skew between the CA's and a peer's clock. */
#define BACKDATE_SECONDS 300

int x509_keygen(enum x509_key_type type, EVP_PKEY **ret)
{
	EVP_PKEY *k;

	switch (type) {
	case X509_KEY_EC_P256:
		k = EVP_EC_gen("P-256");
		break;
	case X509_KEY_RSA3072:
		k = EVP_RSA_gen(3072);
		break;
	default:
		return kq_err(-EINVAL, "unknown key type %d", (int)type);
	}
	if (!k)
		return x509_ossl_err(-EIO, "key generation failed");
	*ret = k;
	return 0;
}

/* ---- names and fields ---- */

static int check_text(const char *what, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > X509_MAX_NAME_LEN)
		return kq_err(-EINVAL, "%s must have 1 to %d bytes", what, X509_MAX_NAME_LEN);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return kq_err(-EINVAL, "%s holds a control character", what);
	return 0;
}

static int make_name(const struct x509_name_spec *spec, X509_NAME **ret)
{
	_cleanup_(X509_NAME_freep) X509_NAME *n = X509_NAME_new();
	int r;

	if (!spec)
		return kq_err(-EINVAL, "no subject");
	r = check_text("commonName", spec->cn);
	if (r < 0)
		return r;
	if (spec->org && (r = check_text("organizationName", spec->org)) < 0)
		return r;
	if (!n)
		return x509_ossl_err(-ENOMEM, "out of memory");
	/* MBSTRING_UTF8 refuses invalid UTF-8 */
	if (spec->org && !X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
						     (const unsigned char *)spec->org, -1, -1, 0))
		return x509_ossl_err(-EINVAL, "organizationName");
	if (!X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8, (const unsigned char *)spec->cn, -1, -1, 0))
		return x509_ossl_err(-EINVAL, "commonName");
	*ret = TAKE_PTR(n);
	return 0;
}

/* A positive serial of 127 random bits (RFC 5280: at most 20 octets, positive). */
static int set_random_serial(X509 *x)
{
	_cleanup_(BN_freep) BIGNUM *bn = NULL;
	uint8_t b[16];

	do {
		if (RAND_bytes(b, sizeof(b)) != 1)
			return x509_ossl_err(-EIO, "no random serial");
		b[0] &= 0x7f;
		bn = BN_bin2bn(b, sizeof(b), bn);
		if (!bn)
			return x509_ossl_err(-ENOMEM, "out of memory");
	} while (BN_is_zero(bn));
	if (!BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		return x509_ossl_err(-ENOMEM, "cannot set the serial");
	return 0;
}

static int add_ext(X509 *x, int nid, void *value, int crit)
{
	if (X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_REPLACE) != 1)
		return x509_ossl_err(-EIO, OBJ_nid2sn(nid));
	return 0;
}

static int add_basic_constraints(X509 *x, bool ca)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	int r;

	if (!bc)
		return x509_ossl_err(-ENOMEM, "out of memory");
	bc->ca = ca ? 0xff : 0;
	if (ca) {
		bc->pathlen = ASN1_INTEGER_new();
		if (!bc->pathlen || !ASN1_INTEGER_set(bc->pathlen, 0)) {
			BASIC_CONSTRAINTS_free(bc);
			return x509_ossl_err(-ENOMEM, "out of memory");
		}
	}
	r = add_ext(x, NID_basic_constraints, bc, 1);
	BASIC_CONSTRAINTS_free(bc);
	return r;
}

enum { KU_BIT_DIGITAL_SIGNATURE = 0, KU_BIT_KEY_ENCIPHERMENT = 2, KU_BIT_KEY_CERT_SIGN = 5, KU_BIT_CRL_SIGN = 6 };

static int add_key_usage(X509 *x, const int *bits, size_t n)
{
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	int r = 0;

	if (!ku)
		return x509_ossl_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n && r == 0; i++)
		if (!ASN1_BIT_STRING_set_bit(ku, bits[i], 1))
			r = x509_ossl_err(-ENOMEM, "out of memory");
	if (r == 0)
		r = add_ext(x, NID_key_usage, ku, 1);
	ASN1_BIT_STRING_free(ku);
	return r;
}

static int add_eku(X509 *x, enum x509_usage usage)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	int r = 0;

	if (!eku)
		return x509_ossl_err(-ENOMEM, "out of memory");
	if ((usage == X509_USAGE_SERVER || usage == X509_USAGE_BOTH) &&
	    !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)))
		r = -ENOMEM;
	if (r == 0 && (usage == X509_USAGE_CLIENT || usage == X509_USAGE_BOTH) &&
	    !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)))
		r = -ENOMEM;
	if (r < 0)
		r = kq_err(r, "out of memory");
	else
		r = add_ext(x, NID_ext_key_usage, eku, 0);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return r;
}

/*
 * RFC 1123 host name, optionally with one leading "*." wildcard label. The last
 * label must not be all digits (RFC 3696 2: no numeric top-level domain), so
 * a mistyped address such as "300.1.2.3" is refused rather than taken as DNS.
 */
static bool dns_name_ok(const char *s)
{
	size_t n = strlen(s), label = 0;
	bool digits = true;

	if (n == 0 || n > 253)
		return false;
	if (s[0] == '*' && s[1] == '.')
		s += 2;
	if (!*s)
		return false;
	for (const char *p = s; ; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-')
				return false;
			if (*p == '\0')
				return !digits;
			label = 0;
			digits = true;
			continue;
		}
		if (*p < '0' || *p > '9')
			digits = false;
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      (*p == '-' && label > 0)))
			return false;
		label++;
	}
}

static int add_san(GENERAL_NAMES *gens, const char *s)
{
	GENERAL_NAME *gn;
	ASN1_STRING *v;
	uint8_t ip[16];
	int type, ok;

	if (!s)
		return kq_err(-EINVAL, "empty subjectAltName");
	if (inet_pton(AF_INET, s, ip) == 1) {
		type = GEN_IPADD;
		v = ASN1_OCTET_STRING_new();
		ok = v && ASN1_OCTET_STRING_set(v, ip, 4);
	} else if (inet_pton(AF_INET6, s, ip) == 1) {
		type = GEN_IPADD;
		v = ASN1_OCTET_STRING_new();
		ok = v && ASN1_OCTET_STRING_set(v, ip, 16);
	} else if (dns_name_ok(s)) {
		type = GEN_DNS;
		v = ASN1_IA5STRING_new();
		ok = v && ASN1_STRING_set(v, s, -1);
	} else {
		return kq_err(-EINVAL, "subjectAltName '%.80s' is neither an IP address nor a DNS name", s);
	}
	gn = ok ? GENERAL_NAME_new() : NULL;
	if (!gn) {
		ASN1_STRING_free(v);
		return x509_ossl_err(-ENOMEM, "out of memory");
	}
	GENERAL_NAME_set0_value(gn, type, v);
	/* the same name twice is harmless but pointless: keep the first */
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++)
		if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(gens, i), gn) == 0) {
			GENERAL_NAME_free(gn);
			return 0;
		}
	if (!sk_GENERAL_NAME_push(gens, gn)) {
		GENERAL_NAME_free(gn);
		return kq_err(-ENOMEM, "out of memory");
	}
	return 0;
}

static int add_sans(X509 *x, const char *const *sans, size_t n)
{
	_cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
	int r;

	if (n == 0)
		return 0;
	if (n > X509_MAX_SANS)
		return kq_err(-E2BIG, "more than %d subjectAltNames", X509_MAX_SANS);
	gens = sk_GENERAL_NAME_new_null();
	if (!gens)
		return x509_ossl_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if ((r = add_san(gens, sans[i])) < 0)
			return r;
	return add_ext(x, NID_subject_alt_name, gens, 0);
}

/* RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
static int key_id(X509 *x, ASN1_OCTET_STRING **ret)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n;
	ASN1_OCTET_STRING *os;

	if (!X509_pubkey_digest(x, EVP_sha1(), md, &n))
		return x509_ossl_err(-EIO, "subject key identifier");
	os = ASN1_OCTET_STRING_new();
	if (!os || !ASN1_OCTET_STRING_set(os, md, (int)n)) {
		ASN1_OCTET_STRING_free(os);
		return x509_ossl_err(-ENOMEM, "out of memory");
	}
	*ret = os;
	return 0;
}

/*
 * subjectKeyIdentifier of x, and authorityKeyIdentifier: the issuer's SKI, or
 * x's own when issuer is NULL (self-signed).
 */
static int add_key_ids(X509 *x, X509 *issuer)
{
	ASN1_OCTET_STRING *ski = NULL;
	AUTHORITY_KEYID *akid = NULL;
	int r;

	r = key_id(x, &ski);
	if (r < 0)
		return r;
	r = add_ext(x, NID_subject_key_identifier, ski, 0);
	if (r < 0)
		goto out;
	akid = AUTHORITY_KEYID_new();
	if (!akid) {
		r = x509_ossl_err(-ENOMEM, "out of memory");
		goto out;
	}
	if (issuer) {
		const ASN1_OCTET_STRING *iski = X509_get0_subject_key_id(issuer);

		if (!iski) {
			r = kq_err(-EINVAL, "the issuer has no subject key identifier");
			goto out;
		}
		akid->keyid = ASN1_OCTET_STRING_dup(iski);
	} else {
		akid->keyid = ASN1_OCTET_STRING_dup(ski);
	}
	if (!akid->keyid) {
		r = x509_ossl_err(-ENOMEM, "out of memory");
		goto out;
	}
	r = add_ext(x, NID_authority_key_identifier, akid, 0);
out:
	AUTHORITY_KEYID_free(akid);
	ASN1_OCTET_STRING_free(ski);
	return r;
}

/* version 3, serial, names, validity, public key: everything but extensions */
static int new_cert(const X509_NAME *subject, const X509_NAME *issuer, EVP_PKEY *key, unsigned days,
		    X509 **ret)
{
	_cleanup_(X509_freep) X509 *x = X509_new();
	int r;

	if (days < 1 || days > X509_MAX_DAYS)
		return kq_err(-EINVAL, "validity must be 1 to %u days", X509_MAX_DAYS);
	if (!x)
		return x509_ossl_err(-ENOMEM, "out of memory");
	if (!X509_set_version(x, X509_VERSION_3))
		return x509_ossl_err(-EIO, "version");
	r = set_random_serial(x);
	if (r < 0)
		return r;
	if (!X509_set_subject_name(x, subject) || !X509_set_issuer_name(x, issuer) ||
	    !X509_set_pubkey(x, key) || !X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECONDS) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL))
		return x509_ossl_err(-EIO, "cannot fill in the certificate");
	*ret = TAKE_PTR(x);
	return 0;
}

static int sign(X509 *x, EVP_PKEY *key)
{
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		return x509_ossl_err(-EIO, "signing failed");
	return 0;
}

/* ---- the CA ---- */

int x509_ca_cert_new(const struct x509_name_spec *subject, unsigned days, EVP_PKEY *key, X509 **ret_cert)
{
	static const int ku[] = { KU_BIT_KEY_CERT_SIGN, KU_BIT_CRL_SIGN };
	_cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
	_cleanup_(X509_freep) X509 *x = NULL;
	int r;

	if (!key)
		return kq_err(-EINVAL, "no key");
	if ((r = make_name(subject, &name)) < 0 || (r = new_cert(name, name, key, days, &x)) < 0)
		return r;
	if ((r = add_basic_constraints(x, true)) < 0 || (r = add_key_usage(x, ku, ARRAY_SIZE(ku))) < 0 ||
	    (r = add_key_ids(x, NULL)) < 0)
		return r;
	*ret_cert = TAKE_PTR(x);
	return 0;
}

int x509_make_ca_with_key(const struct x509_name_spec *subject, unsigned days, EVP_PKEY *key, X509 **ret_cert)
{
	_cleanup_(X509_freep) X509 *x = NULL;
	int r;

	if ((r = x509_ca_cert_new(subject, days, key, &x)) < 0 || (r = sign(x, key)) < 0)
		return r;
	*ret_cert = TAKE_PTR(x);
	return 0;
}

/* ---- vTPM certificates (TCG EK Credential Profile) ---- */

#define TCG_OID_MANUFACTURER "2.23.133.2.1"
#define TCG_OID_MODEL "2.23.133.2.2"
#define TCG_OID_VERSION "2.23.133.2.3"
#define TCG_OID_PLATFORM_MANUFACTURER "2.23.133.2.4"
#define TCG_OID_PLATFORM_MODEL "2.23.133.2.5"
#define TCG_OID_PLATFORM_VERSION "2.23.133.2.6"
#define TCG_OID_TPM_SPECIFICATION "2.23.133.2.16"
#define TCG_OID_EK_CERTIFICATE "2.23.133.8.1"
#define TCG_OID_PLATFORM_CERTIFICATE "2.23.133.8.2"
#define URN_UUID "urn:uuid:"
#define URN_HOST "urn:kumquat:host:"

static int add_name_entry(X509_NAME *n, const char *oid, const char *value)
{
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	int ok;

	if (!o)
		return x509_ossl_err(-ENOMEM, "out of memory");
	ok = X509_NAME_add_entry_by_OBJ(n, o, MBSTRING_UTF8, (const unsigned char *)value, -1, -1, 0);
	ASN1_OBJECT_free(o);
	return ok ? 0 : x509_ossl_err(-EINVAL, "TPM attribute");
}

static int add_uri(GENERAL_NAMES *gens, const char *prefix, const char *id)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	char uri[80];

	snprintf(uri, sizeof(uri), "%s%s", prefix, id);
	if (!g || !s || !ASN1_STRING_set(s, uri, -1)) {
		GENERAL_NAME_free(g);
		ASN1_IA5STRING_free(s);
		return x509_ossl_err(-ENOMEM, "out of memory");
	}
	GENERAL_NAME_set0_value(g, GEN_URI, s);
	if (!sk_GENERAL_NAME_push(gens, g)) {
		GENERAL_NAME_free(g);
		return x509_ossl_err(-ENOMEM, "out of memory");
	}
	return 0;
}

/* DER of SubjectDirectoryAttributes holding TPMSpecification {family, level, revision}. */
static int tpm_spec_ext(X509 *x, const char *family, unsigned level, unsigned revision)
{
	/* 2.23.133.2.16 */
	static const uint8_t oid[] = { 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x10 };
	uint8_t spec[64], der[96];
	size_t fl = strlen(family), sl = 0, dl = 0;
	ASN1_OCTET_STRING *os = NULL;
	ASN1_OBJECT *obj = NULL;
	X509_EXTENSION *ext = NULL;
	int r = 0;

	if (fl == 0 || fl > 8 || level > 127 || revision > 0x7fff)
		return kq_err(-EINVAL, "TPM specification family/level/revision out of range");
	/* TPMSpecification ::= SEQUENCE { family UTF8String, level INTEGER, revision INTEGER } */
	spec[sl++] = 0x30;
	spec[sl++] = 0; /* length, below */
	spec[sl++] = 0x0c;
	spec[sl++] = (uint8_t)fl;
	memcpy(spec + sl, family, fl);
	sl += fl;
	spec[sl++] = 0x02;
	spec[sl++] = 0x01;
	spec[sl++] = (uint8_t)level;
	spec[sl++] = 0x02;
	if (revision > 0x7f) {
		spec[sl++] = 0x02;
		spec[sl++] = (uint8_t)(revision >> 8);
	} else {
		spec[sl++] = 0x01;
	}
	spec[sl++] = (uint8_t)revision;
	spec[1] = (uint8_t)(sl - 2);
	/* SEQUENCE OF Attribute { type OID, values SET OF { spec } } */
	der[dl++] = 0x30;
	der[dl++] = (uint8_t)(2 + sizeof(oid) + 2 + sl);
	der[dl++] = 0x30;
	der[dl++] = (uint8_t)(sizeof(oid) + 2 + sl);
	memcpy(der + dl, oid, sizeof(oid));
	dl += sizeof(oid);
	der[dl++] = 0x31;
	der[dl++] = (uint8_t)sl;
	memcpy(der + dl, spec, sl);
	dl += sl;

	os = ASN1_OCTET_STRING_new();
	obj = OBJ_nid2obj(NID_subject_directory_attributes);
	if (!os || !obj || !ASN1_OCTET_STRING_set(os, der, (int)dl) ||
	    !(ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) || !X509_add_ext(x, ext, -1))
		r = x509_ossl_err(-ENOMEM, "subjectDirectoryAttributes");
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	return r;
}

static int add_eku_oid(X509 *x, const char *oid)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
	int r;

	if (!eku || !o || !sk_ASN1_OBJECT_push(eku, o)) {
		ASN1_OBJECT_free(o);
		sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
		return x509_ossl_err(-ENOMEM, "out of memory");
	}
	r = add_ext(x, NID_ext_key_usage, eku, 0);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return r;
}

static bool attr_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > X509_MAX_NAME_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

int x509_tpm_cert_new(const struct x509_tpm_cert_spec *spec, EVP_PKEY *key, X509 *issuer, X509 **ret)
{
	_cleanup_(X509_NAME_freep) X509_NAME *subject = X509_NAME_new(), *dir = X509_NAME_new();
	_cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	_cleanup_(X509_freep) X509 *x = NULL;
	GENERAL_NAME *g;
	char vm[37], host[37];
	int ku[1];
	int r;

	if (!spec || !key || !issuer)
		return kq_err(-EINVAL, "x509_tpm_cert_new: missing argument");
	if (!attr_ok(spec->manufacturer) || !attr_ok(spec->model) || !attr_ok(spec->version))
		return kq_err(-EINVAL, "the %s manufacturer, model and version must be 1-%d printable characters",
			      spec->platform ? "platform" : "TPM", X509_MAX_NAME_LEN);
	if (!spec->vm_uuid || !kq_uuid_normalize(spec->vm_uuid, vm) || !spec->host_id ||
	    !kq_uuid_normalize(spec->host_id, host))
		return kq_err(-EINVAL, "the VM UUID and host id must be UUIDs");
	if (!subject || !dir || !gens)
		return x509_ossl_err(-ENOMEM, "out of memory");
	if ((r = new_cert(subject, X509_get_subject_name(issuer), key, 1, &x)) < 0)
		return r;
	if (!ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "99991231235959Z"))
		return x509_ossl_err(-EIO, "notAfter");

	if ((r = add_name_entry(dir, spec->platform ? TCG_OID_PLATFORM_MANUFACTURER : TCG_OID_MANUFACTURER,
				spec->manufacturer)) < 0 ||
	    (r = add_name_entry(dir, spec->platform ? TCG_OID_PLATFORM_MODEL : TCG_OID_MODEL, spec->model)) < 0 ||
	    (r = add_name_entry(dir, spec->platform ? TCG_OID_PLATFORM_VERSION : TCG_OID_VERSION,
				spec->version)) < 0)
		return r;
	g = GENERAL_NAME_new();
	if (!g)
		return x509_ossl_err(-ENOMEM, "out of memory");
	GENERAL_NAME_set0_value(g, GEN_DIRNAME, TAKE_PTR(dir));
	if (!sk_GENERAL_NAME_push(gens, g)) {
		GENERAL_NAME_free(g);
		return x509_ossl_err(-ENOMEM, "out of memory");
	}
	if ((r = add_uri(gens, URN_UUID, vm)) < 0 || (r = add_uri(gens, URN_HOST, host)) < 0)
		return r;
	/* the subject is empty, so the SAN carries the identity: critical (RFC 5280 4.2.1.6) */
	if ((r = add_ext(x, NID_subject_alt_name, gens, 1)) < 0 || (r = add_basic_constraints(x, false)) < 0)
		return r;
	ku[0] = EVP_PKEY_is_a(key, "RSA") ? KU_BIT_KEY_ENCIPHERMENT : 4 /* keyAgreement */;
	if ((r = add_key_usage(x, ku, 1)) < 0 ||
	    (r = add_eku_oid(x, spec->platform ? TCG_OID_PLATFORM_CERTIFICATE : TCG_OID_EK_CERTIFICATE)) < 0 ||
	    (!spec->platform && (r = tpm_spec_ext(x, spec->spec_family ? spec->spec_family : "2.0", spec->spec_level,
					      spec->spec_revision)) < 0) ||
	    (r = add_key_ids(x, issuer)) < 0)
		return r;
	*ret = TAKE_PTR(x);
	return 0;
}

int x509_vtpm_identity(X509 *cert, char ret_vm[37], char ret_host[37])
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	bool have_vm = false, have_host = false, twice = false;
	char vm[37], host[37];

	if (!gens)
		return kq_err(-ENOENT, "the certificate has no subjectAltName");
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const char *s;
		int n;

		if (g->type != GEN_URI)
			continue;
		s = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		n = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		if (n == (int)strlen(URN_UUID) + 36 && strncmp(s, URN_UUID, strlen(URN_UUID)) == 0) {
			char tmp[37];

			memcpy(tmp, s + strlen(URN_UUID), 36);
			tmp[36] = 0;
			twice |= have_vm;
			have_vm = kq_uuid_normalize(tmp, vm);
		} else if (n == (int)strlen(URN_HOST) + 36 && strncmp(s, URN_HOST, strlen(URN_HOST)) == 0) {
			char tmp[37];

			memcpy(tmp, s + strlen(URN_HOST), 36);
			tmp[36] = 0;
			twice |= have_host;
			have_host = kq_uuid_normalize(tmp, host);
		}
	}
	GENERAL_NAMES_free(gens);
	if (twice)
		return kq_err(-EBADMSG, "the certificate names more than one VM or host");
	if (!have_vm || !have_host)
		return kq_err(-ENOENT, "the certificate does not name a VM (urn:uuid:) and a host (urn:kumquat:host:)");
	memcpy(ret_vm, vm, 37);
	memcpy(ret_host, host, 37);
	return 0;
}

int x509_make_ca(const struct x509_name_spec *subject, unsigned days, EVP_PKEY **ret_key, X509 **ret_cert)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	int r;

	if ((r = x509_keygen(X509_KEY_EC_P256, &key)) < 0 || (r = x509_make_ca_with_key(subject, days, key, ret_cert)) < 0)
		return r;
	*ret_key = TAKE_PTR(key);
	return 0;
}

/* ---- leaves ---- */

int x509_issue_for_key(EVP_PKEY *ca_key, X509 *ca_cert, const struct x509_name_spec *subject,
		       const char *const *sans, size_t n_sans, enum x509_usage usage, unsigned days,
		       EVP_PKEY *key, X509 **ret_cert)
{
	static const int ku_ec[] = { KU_BIT_DIGITAL_SIGNATURE };
	static const int ku_rsa[] = { KU_BIT_DIGITAL_SIGNATURE, KU_BIT_KEY_ENCIPHERMENT };
	_cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
	_cleanup_(X509_freep) X509 *x = NULL;
	bool rsa;
	int r;

	if (!ca_key || !ca_cert || !key)
		return kq_err(-EINVAL, "no CA or no key");
	if (usage != X509_USAGE_SERVER && usage != X509_USAGE_CLIENT && usage != X509_USAGE_BOTH)
		return kq_err(-EINVAL, "unknown usage %d", (int)usage);
	if (!X509_check_ca(ca_cert))
		return kq_err(-EINVAL, "the issuer certificate is not a CA");
	if (X509_check_private_key(ca_cert, ca_key) != 1) {
		ERR_clear_error();
		return kq_err(-EINVAL, "the CA key does not belong to the CA certificate");
	}
	if (n_sans && !sans)
		return kq_err(-EINVAL, "no SAN list");
	rsa = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
	if ((r = make_name(subject, &name)) < 0 ||
	    (r = new_cert(name, X509_get_subject_name(ca_cert), key, days, &x)) < 0)
		return r;
	/* a leaf outliving its CA would be unusable for the rest of its life */
	if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca_cert)) > 0 &&
	    !X509_set1_notAfter(x, X509_get0_notAfter(ca_cert)))
		return x509_ossl_err(-EIO, "validity");
	if ((r = add_basic_constraints(x, false)) < 0 ||
	    (r = add_key_usage(x, rsa ? ku_rsa : ku_ec, rsa ? ARRAY_SIZE(ku_rsa) : ARRAY_SIZE(ku_ec))) < 0 ||
	    (r = add_eku(x, usage)) < 0 || (r = add_sans(x, sans, n_sans)) < 0 ||
	    (r = add_key_ids(x, ca_cert)) < 0 || (r = sign(x, ca_key)) < 0)
		return r;
	*ret_cert = TAKE_PTR(x);
	return 0;
}

int x509_issue(EVP_PKEY *ca_key, X509 *ca_cert, const struct x509_name_spec *subject,
	       const char *const *sans, size_t n_sans, enum x509_usage usage, unsigned days,
	       EVP_PKEY **ret_key, X509 **ret_cert)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	int r;

	if (!ca_key)
		return kq_err(-EINVAL, "no CA key");
	r = x509_keygen(EVP_PKEY_get_base_id(ca_key) == EVP_PKEY_RSA ? X509_KEY_RSA3072 : X509_KEY_EC_P256, &key);
	if (r < 0)
		return r;
	r = x509_issue_for_key(ca_key, ca_cert, subject, sans, n_sans, usage, days, key, ret_cert);
	if (r < 0)
		return r;
	*ret_key = TAKE_PTR(key);
	return 0;
}

/* ---- external signers ---- */

/*
 * An ECDSA signature from the callback as DER: canonical DER is taken as is,
 * r || s of twice the order size is encoded. *ret is malloc'd.
 */
static int ecdsa_to_der(EVP_PKEY *pub, const uint8_t *sig, size_t len, uint8_t **ret, size_t *ret_len)
{
	_cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = NULL;
	const unsigned char *p = sig;
	size_t n = ((size_t)EVP_PKEY_get_bits(pub) + 7) / 8;
	unsigned char *der = NULL;
	int dlen;

	if (len <= LONG_MAX && (es = d2i_ECDSA_SIG(NULL, &p, (long)len)) && p == sig + len) {
		dlen = i2d_ECDSA_SIG(es, &der);
		if (dlen > 0 && (size_t)dlen == len && memcmp(der, sig, len) == 0)
			goto out;
		OPENSSL_free(der);
		der = NULL;
	}
	ECDSA_SIG_free(es);
	es = NULL;
	ERR_clear_error();
	if (n == 0 || len != 2 * n)
		return kq_err(-EBADMSG, "ECDSA signature of %zu bytes is neither DER nor r||s of %zu bytes", len, 2 * n);
	{
		BIGNUM *r = BN_bin2bn(sig, (int)n, NULL), *s = BN_bin2bn(sig + n, (int)n, NULL);

		es = ECDSA_SIG_new();
		if (!r || !s || !es || !ECDSA_SIG_set0(es, r, s)) {
			BN_free(r);
			BN_free(s);
			return x509_ossl_err(-ENOMEM, "out of memory");
		}
	}
	dlen = i2d_ECDSA_SIG(es, &der);
	if (dlen <= 0)
		return x509_ossl_err(-EIO, "cannot encode the ECDSA signature");
out:
	*ret = malloc((size_t)dlen);
	if (!*ret) {
		OPENSSL_free(der);
		return kq_err(-ENOMEM, "out of memory");
	}
	memcpy(*ret, der, (size_t)dlen);
	OPENSSL_free(der);
	*ret_len = (size_t)dlen;
	return 0;
}

int x509_sign_with(X509 *cert, EVP_PKEY *issuer_pub, x509_sign_cb cb, void *userdata)
{
	_cleanup_free_ uint8_t *sig = NULL, *der = NULL;
	const ASN1_BIT_STRING *csig;
	const X509_ALGOR *calg;
	X509_ALGOR *tbs_alg;
	ASN1_BIT_STRING *bits;
	unsigned char *tbs = NULL;
	uint8_t digest[32];
	size_t sig_len = 0, der_len = 0;
	int id, nid, ptype, tbs_len, r;

	if (!cert || !issuer_pub || !cb)
		return kq_err(-EINVAL, "no certificate, issuer key or signer");
	id = EVP_PKEY_get_base_id(issuer_pub);
	if (id == EVP_PKEY_RSA) {
		nid = NID_sha256WithRSAEncryption;
		ptype = V_ASN1_NULL;   /* RFC 4055: parameters NULL */
	} else if (id == EVP_PKEY_EC) {
		nid = NID_ecdsa_with_SHA256;
		ptype = V_ASN1_UNDEF;  /* RFC 5758: parameters absent */
	} else {
		return kq_err(-ENOTSUP, "external signing with a %s key", OBJ_nid2sn(id));
	}

	/*
	 * OpenSSL 3.0 has no setters for the two AlgorithmIdentifiers and the
	 * signature of an X509; writing through the pointers it hands out is the
	 * way every external-signer implementation (IBM TSS, ssh-agent CAs) does it.
	 */
	X509_get0_signature(&csig, &calg, cert);
	tbs_alg = (X509_ALGOR *)X509_get0_tbs_sigalg(cert);
	if (!X509_ALGOR_set0(tbs_alg, OBJ_nid2obj(nid), ptype, NULL) ||
	    !X509_ALGOR_set0((X509_ALGOR *)calg, OBJ_nid2obj(nid), ptype, NULL))
		return x509_ossl_err(-EIO, "cannot set the signature algorithm");
	tbs_len = i2d_re_X509_tbs(cert, &tbs);
	if (tbs_len <= 0)
		return x509_ossl_err(-EINVAL, "cannot encode the certificate to be signed");
	r = kq_hash(KQ_ALG_SHA256, tbs, (size_t)tbs_len, digest);
	OPENSSL_free(tbs);
	if (r < 0)
		return r;

	r = cb(userdata, KQ_ALG_SHA256, digest, sizeof(digest), &sig, &sig_len);
	if (r < 0)
		return r;
	if (!sig || sig_len == 0 || sig_len > 4096)
		return kq_err(-EBADMSG, "the signer returned no usable signature");
	if (id == EVP_PKEY_EC) {
		r = ecdsa_to_der(issuer_pub, sig, sig_len, &der, &der_len);
		if (r < 0)
			return r;
	} else {
		if (sig_len != (size_t)EVP_PKEY_get_size(issuer_pub))
			return kq_err(-EBADMSG, "RSA signature of %zu bytes for a %d-byte modulus", sig_len,
				      EVP_PKEY_get_size(issuer_pub));
		der = TAKE_PTR(sig);
		der_len = sig_len;
	}

	bits = (ASN1_BIT_STRING *)csig;
	if (!ASN1_BIT_STRING_set(bits, der, (int)der_len))
		return x509_ossl_err(-ENOMEM, "out of memory");
	/* no unused bits in the last octet (as ASN1_item_sign_ctx sets it) */
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;

	if (X509_verify(cert, issuer_pub) != 1) {
		ERR_clear_error();
		return kq_err(-EKEYREJECTED, "the signer's signature does not verify with the issuer key");
	}
	return 0;
}
