/* SPDX-License-Identifier: Apache-2.0 */
/* lib/x509: what a certificate says, as JSON, with the TCG attributes named. */
#include "x509/x509.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "util/util.h"
#include "x509-priv.h"

/* OIDs OpenSSL 3.0 has no name for, named as the TCG specifications do. */
static const struct {
	const char *oid, *name;
} tcg_oids[] = {
	{ "2.23.133.2.1", "tpmManufacturer" },
	{ "2.23.133.2.2", "tpmModel" },
	{ "2.23.133.2.3", "tpmVersion" },
	{ "2.23.133.2.16", "tpmSpecification" },
	{ "2.23.133.2.18", "tpmSecurityAssertions" },
	{ "2.23.133.8.1", "tcg-kp-EKCertificate" },
	{ "2.23.133.8.2", "tcg-kp-PlatformAttributeCertificate" },
	{ "2.23.133.8.3", "tcg-kp-AIKCertificate" },
	{ "2.5.29.9", "subjectDirectoryAttributes" },
};

static void obj_name(const ASN1_OBJECT *o, char *buf, size_t size)
{
	int nid;

	if (OBJ_obj2txt(buf, (int)size, o, 1) <= 0) {
		snprintf(buf, size, "?");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(tcg_oids); i++)
		if (strcmp(buf, tcg_oids[i].oid) == 0) {
			snprintf(buf, size, "%s", tcg_oids[i].name);
			return;
		}
	nid = OBJ_obj2nid(o);
	if (nid != NID_undef && OBJ_nid2sn(nid))
		snprintf(buf, size, "%s", OBJ_nid2sn(nid));
}

/* Writes s (n bytes) with separators and anything unprintable escaped. */
static void put_escaped(FILE *f, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else if (c == ',' || c == '+' || c == '=' || c == '\\')
			fprintf(f, "\\%c", c);
		else
			fputc(c, f);
	}
}

static void put_hex(FILE *f, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", s[i]);
}

/* "O=Example, CN=name": entries in encoding order, TCG attributes named. */
static void put_name(FILE *f, const X509_NAME *n)
{
	for (int i = 0; i < X509_NAME_entry_count(n); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
		unsigned char *utf8 = NULL;
		char oid[96];
		int len;

		obj_name(X509_NAME_ENTRY_get_object(e), oid, sizeof(oid));
		fprintf(f, "%s%s=", i ? ", " : "", oid);
		len = ASN1_STRING_to_UTF8(&utf8, v);
		if (len >= 0) {
			put_escaped(f, utf8, (size_t)len);
			OPENSSL_free(utf8);
		} else {
			ERR_clear_error();
			fputc('#', f);
			put_hex(f, ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v));
		}
	}
}

/* A string built by fn(f, arg) into a memory stream, as a JSON string. */
#define JSON_PRINTED(fn, arg)                                                  \
	({                                                                     \
		char *_s = NULL;                                               \
		size_t _n = 0;                                                 \
		struct json_object *_o = NULL;                                 \
		FILE *_f = open_memstream(&_s, &_n);                           \
		if (_f) {                                                      \
			fn(_f, arg);                                           \
			if (fclose(_f) == 0)                                   \
				_o = json_object_new_string_len(_s, (int)_n);  \
		}                                                              \
		free(_s);                                                      \
		_o;                                                            \
	})

static struct json_object *json_hex(const unsigned char *s, size_t n)
{
	_cleanup_free_ char *h = kq_hex_dup(s, n);

	return h ? json_object_new_string(h) : NULL;
}

static struct json_object *json_time(const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (!t || !ASN1_TIME_to_tm(t, &tm)) {
		ERR_clear_error();
		return NULL;
	}
	if (strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return NULL;
	return json_object_new_string(buf);
}

static struct json_object *json_key_type(EVP_PKEY *k)
{
	char group[64], buf[96];
	int id;

	if (!k) {
		ERR_clear_error();
		return json_object_new_string("unknown");
	}
	id = EVP_PKEY_get_base_id(k);
	switch (id) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		snprintf(buf, sizeof(buf), "%s %d", id == EVP_PKEY_RSA ? "RSA" : "RSA-PSS", EVP_PKEY_get_bits(k));
		break;
	case EVP_PKEY_EC: {
		const char *nist = NULL;

		if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1)
			snprintf(group, sizeof(group), "unknown curve");
		else
			nist = EC_curve_nid2nist(OBJ_sn2nid(group));
		snprintf(buf, sizeof(buf), "EC %s", nist ? nist : group);
		break;
	}
	default:
		snprintf(buf, sizeof(buf), "%s", OBJ_nid2sn(id) ? OBJ_nid2sn(id) : "unknown");
	}
	ERR_clear_error();
	return json_object_new_string(buf);
}

static void put_serial(FILE *f, const ASN1_INTEGER *ai)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	if (hex)
		for (char *p = hex; *p; p++)
			fputc(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p, f);
	OPENSSL_free(hex);
	BN_free(bn);
}

static void put_general_name(FILE *f, const GENERAL_NAME *gn)
{
	int type;
	void *v = GENERAL_NAME_get0_value(gn, &type);
	char buf[INET6_ADDRSTRLEN], oid[96];

	switch (type) {
	case GEN_DNS:
	case GEN_EMAIL:
	case GEN_URI:
		fputs(type == GEN_DNS ? "DNS:" : type == GEN_EMAIL ? "email:" : "URI:", f);
		put_escaped(f, ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v));
		break;
	case GEN_IPADD: {
		int n = ASN1_STRING_length(v);
		const unsigned char *p = ASN1_STRING_get0_data(v);

		fputs("IP:", f);
		if ((n == 4 && inet_ntop(AF_INET, p, buf, sizeof(buf))) ||
		    (n == 16 && inet_ntop(AF_INET6, p, buf, sizeof(buf))))
			fputs(buf, f);
		else
			put_hex(f, p, (size_t)n);
		break;
	}
	case GEN_DIRNAME:
		fputs("DirName:", f);
		put_name(f, v);
		break;
	case GEN_RID:
		obj_name(v, oid, sizeof(oid));
		fprintf(f, "RID:%s", oid);
		break;
	case GEN_OTHERNAME: {
		ASN1_OBJECT *o = NULL;

		GENERAL_NAME_get0_otherName(gn, &o, NULL);
		obj_name(o, oid, sizeof(oid));
		fprintf(f, "othername:%s", oid);
		break;
	}
	default:
		fprintf(f, "type%d", type);
	}
}

/* The TCG TPM attributes of an EK certificate's directoryName SAN. */
static struct json_object *tpm_attrs(const X509_NAME *n)
{
	static const char *const keys[] = { "manufacturer", "model", "version" };
	struct json_object *o = NULL;

	for (int i = 0; i < X509_NAME_entry_count(n); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
		unsigned char *utf8 = NULL;
		char oid[96];
		int len;

		if (OBJ_obj2txt(oid, sizeof(oid), X509_NAME_ENTRY_get_object(e), 1) <= 0 ||
		    strncmp(oid, "2.23.133.2.", 11) != 0 || oid[11] < '1' || oid[11] > '3' || oid[12])
			continue;
		len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
		if (len < 0) {
			ERR_clear_error();
			continue;
		}
		if (!o)
			o = json_object_new_object();
		{
			/* escaped like every other text field: it goes to terminals too */
			char *esc = NULL;
			size_t esc_len = 0;
			FILE *f = open_memstream(&esc, &esc_len);

			if (f) {
				put_escaped(f, utf8, (size_t)len);
				if (fclose(f) == 0)
					json_object_object_add(o, keys[oid[11] - '1'],
							       json_object_new_string_len(esc, (int)esc_len));
			}
			free(esc);
		}
		OPENSSL_free(utf8);
	}
	return o;
}

static void describe_sans(X509 *x, struct json_object *o)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	struct json_object *a = json_object_new_array(), *tpm = NULL;

	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		int type;
		void *v = GENERAL_NAME_get0_value(gn, &type);

		json_object_array_add(a, JSON_PRINTED(put_general_name, gn));
		if (type == GEN_DIRNAME && !tpm)
			tpm = tpm_attrs(v);
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	json_object_object_add(o, "sans", a);
	if (tpm)
		json_object_object_add(o, "tpm", tpm);
}

static void describe_usage(X509 *x, struct json_object *o)
{
	static const char *const ku_names[] = {
		"digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
		"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly",
	};
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, NULL, NULL);
	struct json_object *a = json_object_new_array();
	char name[96];

	for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
		obj_name(sk_ASN1_OBJECT_value(eku, i), name, sizeof(name));
		json_object_array_add(a, json_object_new_string(name));
	}
	json_object_object_add(o, "eku", a);
	a = json_object_new_array();
	for (size_t i = 0; ku && i < ARRAY_SIZE(ku_names); i++)
		if (ASN1_BIT_STRING_get_bit(ku, (int)i))
			json_object_array_add(a, json_object_new_string(ku_names[i]));
	json_object_object_add(o, "key_usage", a);
	EXTENDED_KEY_USAGE_free(eku);
	ASN1_BIT_STRING_free(ku);
	ERR_clear_error();
}

int x509_describe(X509 *x, struct json_object **ret)
{
	struct json_object *o, *crit;
	const ASN1_OCTET_STRING *id;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char name[96];
	long pathlen;

	if (!x)
		return kq_err(-EINVAL, "no certificate");
	o = json_object_new_object();
	if (!o)
		return kq_err(-ENOMEM, "out of memory");
	json_object_object_add(o, "version", json_object_new_int64(X509_get_version(x) + 1));
	json_object_object_add(o, "subject", JSON_PRINTED(put_name, X509_get_subject_name(x)));
	json_object_object_add(o, "issuer", JSON_PRINTED(put_name, X509_get_issuer_name(x)));
	json_object_object_add(o, "serial", JSON_PRINTED(put_serial, X509_get0_serialNumber(x)));
	json_object_object_add(o, "not_before", json_time(X509_get0_notBefore(x)));
	json_object_object_add(o, "not_after", json_time(X509_get0_notAfter(x)));
	json_object_object_add(o, "key_type", json_key_type(X509_get0_pubkey(x)));
	json_object_object_add(o, "is_ca", json_object_new_boolean(X509_get_extension_flags(x) & EXFLAG_CA));
	pathlen = X509_get_pathlen(x);
	if (pathlen >= 0)
		json_object_object_add(o, "path_len", json_object_new_int64(pathlen));
	json_object_object_add(o, "self_issued", json_object_new_boolean(X509_check_issued(x, x) == X509_V_OK));
	describe_sans(x, o);
	describe_usage(x, o);
	crit = json_object_new_array();
	for (int i = 0; i < X509_get_ext_count(x); i++) {
		X509_EXTENSION *ext = X509_get_ext(x, i);

		if (!X509_EXTENSION_get_critical(ext))
			continue;
		obj_name(X509_EXTENSION_get_object(ext), name, sizeof(name));
		json_object_array_add(crit, json_object_new_string(name));
	}
	json_object_object_add(o, "critical", crit);
	if ((id = X509_get0_subject_key_id(x)))
		json_object_object_add(o, "subject_key_id", json_hex(ASN1_STRING_get0_data(id), (size_t)ASN1_STRING_length(id)));
	if ((id = X509_get0_authority_key_id(x)))
		json_object_object_add(o, "authority_key_id", json_hex(ASN1_STRING_get0_data(id), (size_t)ASN1_STRING_length(id)));
	if (X509_digest(x, EVP_sha256(), md, &mdlen))
		json_object_object_add(o, "sha256_fingerprint", json_hex(md, mdlen));
	{
		const ASN1_OBJECT *alg = NULL;
		int nid = X509_get_signature_nid(x);

		X509_ALGOR_get0(&alg, NULL, NULL, X509_get0_tbs_sigalg(x));
		if (nid != NID_undef && OBJ_nid2ln(nid))
			snprintf(name, sizeof(name), "%s", OBJ_nid2ln(nid));
		else
			obj_name(alg, name, sizeof(name));
		json_object_object_add(o, "signature_algorithm", json_object_new_string(name));
	}
	ERR_clear_error();
	*ret = o;
	return 0;
}
