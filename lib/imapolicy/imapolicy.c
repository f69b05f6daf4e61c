/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keylime runtime policies: parsing (plain or DSSE-signed) into hash tables,
 * and the per-entry verdict. Semantics follow Keylime's keylime/ima/ima.py
 * where it is safe to; docs/ima-policy.md lists where kumquat is stricter.
 */
#include "imapolicy/imapolicy.h"

#include <ctype.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "json/json.h"
#include "util/util.h"

#define DIGEST_ANY_ALGO 0xff /* a bare hex digest: matches any algorithm of its size */
#define DSSE_MAX_SIG 4096

struct pdig {
	uint8_t algo; /* IMA_HASH_* or DIGEST_ANY_ALGO */
	uint8_t len;
	uint8_t d[KQ_MAX_DIGEST];
};

struct pslot {
	uint64_t h;
	char *name; /* NULL: empty slot */
	size_t name_len;
	uint32_t first, count; /* into ptab.digs */
};

/* An open-addressing table path -> digests. */
struct ptab {
	struct pslot *slots;
	size_t cap; /* power of two, or 0 */
	size_t n;
	struct pdig *digs;
	size_t n_digs, cap_digs;
};

struct imapolicy {
	struct ptab digests, keyrings, imabuf;
	regex_t *excludes;
	size_t n_excludes;
	char **ignored_keyrings;
	size_t n_ignored;
	bool ignore_all_keyrings; /* "*" in ignored_keyrings */
	uint16_t log_hash_alg;
	struct ima_keyring *sig_keys;
	bool allow_violations;
	bool signed_;
};

static inline void json_object_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}
static inline void BIO_freep(BIO **p) { BIO_free(*p); }
static inline void EVP_MD_CTX_freep(EVP_MD_CTX **p) { EVP_MD_CTX_free(*p); }

/* ---- the path table ---- */

static uint64_t hash_name(const char *s, size_t n)
{
	/* FNV-1a: the keys are the policy's (trusted) paths, lookups are hostile
	 * but cannot change the table's layout */
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static void ptab_done(struct ptab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].name);
	free(t->slots);
	free(t->digs);
	*t = (struct ptab){ 0 };
}

static int ptab_init(struct ptab *t, size_t n_keys)
{
	size_t cap = 16;

	while (cap < n_keys * 2)
		cap *= 2;
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots)
		return kq_err(-ENOMEM, "out of memory");
	t->cap = cap;
	return 0;
}

static const struct pslot *ptab_find(const struct ptab *t, const char *name, size_t n)
{
	uint64_t h;

	if (t->cap == 0)
		return NULL;
	h = hash_name(name, n);
	for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		const struct pslot *s = &t->slots[i];

		if (!s->name)
			return NULL;
		if (s->h == h && s->name_len == n && memcmp(s->name, name, n) == 0)
			return s;
	}
}

static int ptab_add_digest(struct ptab *t, const struct pdig *d)
{
	if (t->n_digs >= IMAPOLICY_MAX_DIGESTS)
		return kq_err(-E2BIG, "more than %u digests", IMAPOLICY_MAX_DIGESTS);
	if (t->n_digs == t->cap_digs) {
		size_t nc = t->cap_digs ? t->cap_digs * 2 : 64;
		struct pdig *nd = reallocarray(t->digs, nc, sizeof(*nd));

		if (!nd)
			return kq_err(-ENOMEM, "out of memory");
		t->digs = nd;
		t->cap_digs = nc;
	}
	t->digs[t->n_digs++] = *d;
	return 0;
}

/* Adds a new name (the JSON parser already refused duplicate keys). The
 * table was sized for every key, so there is always a free slot. */
static int ptab_add_name(struct ptab *t, const char *name, size_t n, uint32_t first, uint32_t count)
{
	uint64_t h = hash_name(name, n);
	size_t i;

	for (i = h & (t->cap - 1); t->slots[i].name; i = (i + 1) & (t->cap - 1))
		;
	t->slots[i].name = strndup(name, n);
	if (!t->slots[i].name)
		return kq_err(-ENOMEM, "out of memory");
	t->slots[i].h = h;
	t->slots[i].name_len = n;
	t->slots[i].first = first;
	t->slots[i].count = count;
	t->n++;
	return 0;
}

/* ---- parsing ---- */

/* "hex" or "algo:hex". */
static int parse_digest(const char *s, struct pdig *ret)
{
	const char *colon = strchr(s, ':');
	const char *hex = s;
	struct pdig d = { .algo = DIGEST_ANY_ALGO };
	size_t len;

	if (colon) {
		d.algo = (uint8_t)ima_hash_algo_from_name(s, (size_t)(colon - s));
		if (d.algo == (uint8_t)IMA_HASH_UNKNOWN)
			return kq_err(-EBADMSG, "unknown hash algorithm in digest");
		hex = colon + 1;
	}
	if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X'))
		return kq_err(-EBADMSG, "digest is not plain hex");
	if (kq_hex_decode(hex, d.d, sizeof(d.d), &len) < 0 || len == 0)
		return kq_err(-EBADMSG, "digest is not valid hex (at most %d bytes)", KQ_MAX_DIGEST);
	if (colon ? len != ima_hash_algo_size(d.algo)
		  : (len != 16 && len != 20 && len != 28 && len != 32 && len != 48 && len != 64))
		return kq_err(-EBADMSG, "digest of %zu bytes does not fit its algorithm", len);
	d.len = (uint8_t)len;
	*ret = d;
	return 0;
}

/* Shortened, printable copy of a hostile string for messages. */
static void safe_str(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 4 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (o + 4 >= outlen && n > o) {
		out[o++] = '.';
		out[o++] = '.';
		out[o++] = '.';
	}
	out[o] = '\0';
}

/* {name: [digest, ...], ...} into t. */
static int parse_map(struct json_object *obj, const char *field, struct ptab *t)
{
	size_t n;
	int r;

	if (!obj) {
		return ptab_init(t, 0);
	}
	if (!json_object_is_type(obj, json_type_object))
		return kq_err(-EBADMSG, "field '%s': not an object", field);
	n = (size_t)json_object_object_length(obj);
	if (n > IMAPOLICY_MAX_PATHS)
		return kq_err(-E2BIG, "field '%s': more than %u paths", field, IMAPOLICY_MAX_PATHS);
	r = ptab_init(t, n);
	if (r < 0)
		return r;
	json_object_object_foreach(obj, key, val) {
		size_t klen = strlen(key), cnt;
		uint32_t first = (uint32_t)t->n_digs;
		char sk[80];

		safe_str(key, klen, sk, sizeof(sk));
		if (klen == 0 || klen > IMA_MAX_PATH)
			return kq_err(-EBADMSG, "field '%s': path '%s': empty or too long", field, sk);
		if (!json_object_is_type(val, json_type_array))
			return kq_err(-EBADMSG, "field '%s': path '%s': not an array", field, sk);
		cnt = json_object_array_length(val);
		if (cnt > IMAPOLICY_MAX_PER_PATH)
			return kq_err(-E2BIG, "field '%s': path '%s': more than %d digests", field, sk,
				      IMAPOLICY_MAX_PER_PATH);
		for (size_t i = 0; i < cnt; i++) {
			struct json_object *d = json_object_array_get_idx(val, i);
			struct pdig pd;

			if (!json_object_is_type(d, json_type_string))
				return kq_err(-EBADMSG, "field '%s': path '%s': digest %zu is not a string",
					      field, sk, i);
			r = parse_digest(json_object_get_string(d), &pd);
			if (r < 0)
				return kq_err_ctx(r, "field '%s': path '%s': digest %zu: ", field, sk, i);
			r = ptab_add_digest(t, &pd);
			if (r < 0)
				return kq_err_ctx(r, "field '%s': ", field);
		}
		r = ptab_add_name(t, key, klen, first, (uint32_t)cnt);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Keylime's excludes are Python regexes. Refuse what POSIX (glibc) would
 * silently read otherwise: escapes such as \d (a plain 'd' for glibc), and
 * unbalanced parentheses, which would break out of the "^(...)" anchoring.
 */
static int check_regex(const char *re, size_t n)
{
	long depth = 0;

	for (size_t j = 0; j < n; j++) {
		if (re[j] == '\\') {
			if (++j == n)
				return kq_err(-EBADMSG, "trailing backslash");
			if (isalnum((unsigned char)re[j]) && !strchr("wWsSbB", re[j]))
				return kq_err(-EBADMSG, "escape \\%c has no POSIX extended regex equivalent", re[j]);
		} else if (re[j] == '[') {
			/* a bracket expression: ']' first (after '^') is literal */
			j++;
			if (j < n && re[j] == '^')
				j++;
			if (j < n && re[j] == ']')
				j++;
			while (j < n && re[j] != ']')
				j++;
			if (j == n)
				return kq_err(-EBADMSG, "unterminated bracket expression");
		} else if (re[j] == '(') {
			depth++;
		} else if (re[j] == ')') {
			if (--depth < 0)
				return kq_err(-EBADMSG, "unbalanced parenthesis");
		}
	}
	if (depth != 0)
		return kq_err(-EBADMSG, "unbalanced parenthesis");
	return 0;
}

static int parse_excludes(struct json_object *arr, struct imapolicy *p)
{
	size_t n;

	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return kq_err(-EBADMSG, "field 'excludes': not an array");
	n = json_object_array_length(arr);
	if (n > IMAPOLICY_MAX_EXCLUDES)
		return kq_err(-E2BIG, "field 'excludes': more than %d regexes", IMAPOLICY_MAX_EXCLUDES);
	if (n == 0)
		return 0;
	p->excludes = calloc(n, sizeof(*p->excludes));
	if (!p->excludes)
		return kq_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);
		char anchored[IMAPOLICY_MAX_REGEX + 8];
		const char *re;
		size_t rlen;
		int r;

		if (!json_object_is_type(v, json_type_string))
			return kq_err(-EBADMSG, "field 'excludes': entry %zu is not a string", i);
		re = json_object_get_string(v);
		rlen = strlen(re);
		if (rlen == 0)
			return kq_err(-EBADMSG, "field 'excludes': entry %zu is empty", i);
		if (rlen > IMAPOLICY_MAX_REGEX)
			return kq_err(-E2BIG, "field 'excludes': entry %zu is longer than %d bytes", i,
				      IMAPOLICY_MAX_REGEX);
		/* Keylime's excludes are Python regexes: refuse escapes that POSIX
		 * (glibc) would silently read as something else, e.g. \d as 'd' */
		r = check_regex(re, rlen);
		if (r < 0)
			return kq_err_ctx(r, "field 'excludes': entry %zu: invalid regex: ", i);
		/* Keylime applies re.match(): anchored at the start only */
		snprintf(anchored, sizeof(anchored), "^(%s)", re);
		r = regcomp(&p->excludes[i], anchored, REG_EXTENDED | REG_NOSUB);
		if (r != 0) {
			char eb[128];

			regerror(r, &p->excludes[i], eb, sizeof(eb));
			return kq_err(-EBADMSG, "field 'excludes': entry %zu is not a valid POSIX extended regex: %s",
				      i, eb);
		}
		p->n_excludes = i + 1;
	}
	return 0;
}

static int add_sig_keys_json(struct imapolicy *p, struct json_object *o, unsigned depth)
{
	struct json_object *pk;
	int r;

	if (!json_object_is_type(o, json_type_object))
		return kq_err(-EBADMSG, "field 'verification-keys': not a JSON object");
	if (json_object_object_get_ex(o, "pubkeys", &pk)) {
		if (!json_object_is_type(pk, json_type_array))
			return kq_err(-EBADMSG, "field 'verification-keys': 'pubkeys' is not an array");
		for (size_t i = 0; i < json_object_array_length(pk); i++) {
			struct json_object *k = json_object_array_get_idx(pk, i);

			if (!json_object_is_type(k, json_type_string))
				return kq_err(-EBADMSG, "field 'verification-keys': key %zu is not a string", i);
			r = ima_keyring_add(p->sig_keys, (const uint8_t *)json_object_get_string(k),
					    (size_t)json_object_get_string_len(k));
			if (r < 0)
				return kq_err_ctx(r, "field 'verification-keys': key %zu: ", i);
		}
		return 0;
	}
	if (depth > 0)
		return kq_err(-EBADMSG, "field 'verification-keys': keyring without 'pubkeys'");
	/* {keyring name: {"pubkeys": [...], ...}, ...} as Keylime's ImaKeyrings writes it */
	json_object_object_foreach(o, name, kr) {
		(void)name;
		r = add_sig_keys_json(p, kr, depth + 1);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_verification_keys(struct json_object *v, struct imapolicy *p)
{
	_cleanup_(json_object_putp) struct json_object *o = NULL;
	const char *s;
	size_t n;
	int r;

	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return kq_err(-EBADMSG, "field 'verification-keys': not a string");
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0)
		return 0;
	r = json_parse_body((const uint8_t *)s, n, 1u << 20, 4, &o);
	if (r < 0)
		return kq_err_ctx(r, "field 'verification-keys': ");
	return add_sig_keys_json(p, o, 0);
}

static int parse_ima_section(struct json_object *ima, struct imapolicy *p)
{
	struct json_object *v;

	p->log_hash_alg = KQ_ALG_SHA1;
	if (!ima)
		return 0;
	if (!json_object_is_type(ima, json_type_object))
		return kq_err(-EBADMSG, "field 'ima': not an object");
	json_object_object_foreach(ima, key, val) {
		if (strcmp(key, "ignored_keyrings") != 0 && strcmp(key, "log_hash_alg") != 0 &&
		    strcmp(key, "dm_policy") != 0) {
			char sk[64];
			safe_str(key, strlen(key), sk, sizeof(sk));
			return kq_err(-EBADMSG, "field 'ima': unknown key '%s'", sk);
		}
		(void)val;
	}
	if (json_object_object_get_ex(ima, "log_hash_alg", &v) && v) {
		if (!json_object_is_type(v, json_type_string))
			return kq_err(-EBADMSG, "field 'ima.log_hash_alg': not a string");
		p->log_hash_alg = kq_hash_from_name(json_object_get_string(v));
		if (!p->log_hash_alg)
			return kq_err(-EBADMSG, "field 'ima.log_hash_alg': unknown hash algorithm");
	}
	if (json_object_object_get_ex(ima, "dm_policy", &v) && v)
		return kq_err(-ENOTSUP, "field 'ima.dm_policy': device-mapper policies are not supported");
	if (json_object_object_get_ex(ima, "ignored_keyrings", &v) && v) {
		size_t n;

		if (!json_object_is_type(v, json_type_array))
			return kq_err(-EBADMSG, "field 'ima.ignored_keyrings': not an array");
		n = json_object_array_length(v);
		if (n > IMAPOLICY_MAX_EXCLUDES)
			return kq_err(-E2BIG, "field 'ima.ignored_keyrings': too many entries");
		p->ignored_keyrings = calloc(n ? n : 1, sizeof(char *));
		if (!p->ignored_keyrings)
			return kq_err(-ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			struct json_object *k = json_object_array_get_idx(v, i);

			if (!json_object_is_type(k, json_type_string))
				return kq_err(-EBADMSG, "field 'ima.ignored_keyrings': entry %zu is not a string", i);
			if (strcmp(json_object_get_string(k), "*") == 0)
				p->ignore_all_keyrings = true;
			p->ignored_keyrings[i] = strdup(json_object_get_string(k));
			if (!p->ignored_keyrings[i])
				return kq_err(-ENOMEM, "out of memory");
			p->n_ignored = i + 1;
		}
	}
	return 0;
}

static const char *const top_fields[] = {
	"meta", "release", "digests", "excludes", "keyrings", "ima", "ima-buf", "verification-keys",
};

static int parse_plain(struct json_object *root, const struct imapolicy_load_opts *opts,
		       struct imapolicy *p)
{
	struct json_object *meta, *ver, *v;
	int r;

	if (!json_object_is_type(root, json_type_object))
		return kq_err(-EBADMSG, "policy is not a JSON object");
	json_object_object_foreach(root, key, val) {
		bool known = false;

		for (size_t i = 0; i < ARRAY_SIZE(top_fields); i++)
			known = known || strcmp(key, top_fields[i]) == 0;
		if (!known) {
			char sk[64];
			safe_str(key, strlen(key), sk, sizeof(sk));
			return kq_err(-EBADMSG, "unknown policy field '%s'", sk);
		}
		(void)val;
	}
	if (!json_object_object_get_ex(root, "meta", &meta) || !json_object_is_type(meta, json_type_object))
		return kq_err(-EBADMSG, "field 'meta': missing or not an object");
	if (!json_object_object_get_ex(meta, "version", &ver) || !json_object_is_type(ver, json_type_int))
		return kq_err(-EBADMSG, "field 'meta.version': missing or not an integer");
	if (json_object_get_int64(ver) != 1)
		return kq_err(-ENOTSUP, "field 'meta.version': only version 1 is supported");

	r = parse_map(json_object_object_get(root, "digests"), "digests", &p->digests);
	if (r < 0)
		return r;
	r = parse_map(json_object_object_get(root, "keyrings"), "keyrings", &p->keyrings);
	if (r < 0)
		return r;
	r = parse_map(json_object_object_get(root, "ima-buf"), "ima-buf", &p->imabuf);
	if (r < 0)
		return r;
	if (p->digests.n + p->keyrings.n + p->imabuf.n > IMAPOLICY_MAX_PATHS)
		return kq_err(-E2BIG, "more than %u paths in all", IMAPOLICY_MAX_PATHS);
	r = parse_excludes(json_object_object_get(root, "excludes"), p);
	if (r < 0)
		return r;
	r = parse_ima_section(json_object_object_get(root, "ima"), p);
	if (r < 0)
		return r;
	if (json_object_object_get_ex(root, "release", &v) && v && !json_object_is_type(v, json_type_int))
		return kq_err(-EBADMSG, "field 'release': not an integer");

	r = ima_keyring_new(&p->sig_keys);
	if (r < 0)
		return r;
	r = parse_verification_keys(json_object_object_get(root, "verification-keys"), p);
	if (r < 0)
		return r;
	for (size_t i = 0; opts && i < opts->n_ima_keys; i++) {
		if (!opts->ima_keys[i])
			return kq_err(-EINVAL, "IMA key %zu is NULL", i);
		r = ima_keyring_add(p->sig_keys, (const uint8_t *)opts->ima_keys[i], strlen(opts->ima_keys[i]));
		if (r < 0)
			return kq_err_ctx(-EINVAL, "IMA key %zu: ", i);
	}
	return 0;
}

/* ---- DSSE ---- */

static int load_pem_pubkey(const char *pem, EVP_PKEY **ret)
{
	_cleanup_(BIO_freep) BIO *bio = NULL;
	EVP_PKEY *k;

	bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		return kq_err(-ENOMEM, "out of memory");
	k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!k)
		return kq_err(-EINVAL, "not a PEM public key");
	if (EVP_PKEY_base_id(k) == EVP_PKEY_RSA && EVP_PKEY_get_bits(k) < IMA_MIN_RSA_BITS) {
		EVP_PKEY_free(k);
		return kq_err(-EINVAL, "RSA key below %d bits", IMA_MIN_RSA_BITS);
	}
	if (EVP_PKEY_base_id(k) != EVP_PKEY_RSA && EVP_PKEY_base_id(k) != EVP_PKEY_EC) {
		EVP_PKEY_free(k);
		return kq_err(-EINVAL, "key type is not RSA or EC");
	}
	*ret = k;
	return 0;
}

static bool verify_one(EVP_PKEY *k, const uint8_t *msg, size_t mlen, const uint8_t *sig, size_t slen,
		       int rsa_padding)
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;

	if (!ctx || EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, k) != 1)
		return false;
	if (rsa_padding && EVP_PKEY_CTX_set_rsa_padding(pctx, rsa_padding) != 1)
		return false;
	return EVP_DigestVerify(ctx, sig, slen, msg, mlen) == 1;
}

/* DSSE v1 pre-authentication encoding: "DSSEv1 <len> <type> <len> <body>". */
static int dsse_pae(const char *type, const uint8_t *body, size_t blen, uint8_t **ret, size_t *ret_len)
{
	char hdr[128];
	int h = snprintf(hdr, sizeof(hdr), "DSSEv1 %zu %s %zu ", strlen(type), type, blen);
	uint8_t *buf;

	if (h < 0 || (size_t)h >= sizeof(hdr))
		return kq_err(-EBADMSG, "DSSE payloadType too long");
	buf = malloc((size_t)h + blen + 1);
	if (!buf)
		return kq_err(-ENOMEM, "out of memory");
	memcpy(buf, hdr, (size_t)h);
	if (blen)
		memcpy(buf + h, body, blen);
	*ret = buf;
	*ret_len = (size_t)h + blen;
	return 0;
}

static int dsse_open(struct json_object *env, const struct imapolicy_load_opts *opts,
		     uint8_t **ret_payload, size_t *ret_len)
{
	struct json_object *pt, *pl, *sigs;
	_cleanup_free_ uint8_t *payload = NULL;
	_cleanup_free_ uint8_t *pae = NULL;
	size_t plen, pae_len = 0, nsig;
	EVP_PKEY *keys[IMAPOLICY_MAX_KEYS] = { 0 };
	size_t nkeys = 0;
	bool ok = false;
	int r;

	json_object_object_foreach(env, key, val) {
		(void)val;
		if (strcmp(key, "payloadType") && strcmp(key, "payload") && strcmp(key, "signatures"))
			return kq_err(-EBADMSG, "DSSE envelope: unknown field");
	}
	if (!json_object_object_get_ex(env, "payloadType", &pt) || !json_object_is_type(pt, json_type_string))
		return kq_err(-EBADMSG, "DSSE envelope: 'payloadType' missing or not a string");
	if (strcmp(json_object_get_string(pt), IMAPOLICY_DSSE_PAYLOAD_TYPE) != 0)
		return kq_err(-EBADMSG, "DSSE envelope: payloadType is not %s", IMAPOLICY_DSSE_PAYLOAD_TYPE);
	if (!json_object_object_get_ex(env, "payload", &pl) || !json_object_is_type(pl, json_type_string))
		return kq_err(-EBADMSG, "DSSE envelope: 'payload' missing or not a string");
	if (!json_object_object_get_ex(env, "signatures", &sigs) || !json_object_is_type(sigs, json_type_array))
		return kq_err(-EBADMSG, "DSSE envelope: 'signatures' missing or not an array");
	nsig = json_object_array_length(sigs);
	if (nsig == 0)
		return kq_err(-EPERM, "DSSE envelope: no signatures");
	if (nsig > IMAPOLICY_MAX_KEYS)
		return kq_err(-E2BIG, "DSSE envelope: more than %d signatures", IMAPOLICY_MAX_KEYS);
	r = kq_base64_decode(json_object_get_string(pl), IMAPOLICY_MAX_SIZE, &payload, &plen);
	if (r < 0)
		return kq_err_ctx(r == -E2BIG ? r : -EBADMSG, "DSSE envelope: payload: ");

	if (!opts || opts->n_dsse_keys == 0)
		return kq_err(-EPERM, "DSSE envelope: no trusted key configured to verify it");
	if (opts->n_dsse_keys > IMAPOLICY_MAX_KEYS)
		return kq_err(-EINVAL, "more than %d DSSE keys", IMAPOLICY_MAX_KEYS);

	r = dsse_pae(IMAPOLICY_DSSE_PAYLOAD_TYPE, payload, plen, &pae, &pae_len);
	if (r < 0)
		return r;
	for (; nkeys < opts->n_dsse_keys; nkeys++) {
		r = opts->dsse_keys[nkeys] ? load_pem_pubkey(opts->dsse_keys[nkeys], &keys[nkeys])
					   : kq_err(-EINVAL, "NULL");
		if (r < 0) {
			r = kq_err_ctx(-EINVAL, "DSSE key %zu: ", nkeys);
			goto out;
		}
	}
	for (size_t i = 0; i < nsig && !ok; i++) {
		struct json_object *s = json_object_array_get_idx(sigs, i), *sv;
		_cleanup_free_ uint8_t *sig = NULL;
		size_t slen;

		if (!json_object_is_type(s, json_type_object) || !json_object_object_get_ex(s, "sig", &sv) ||
		    !json_object_is_type(sv, json_type_string)) {
			r = kq_err(-EBADMSG, "DSSE envelope: signature %zu has no 'sig' string", i);
			goto out;
		}
		if (kq_base64_decode(json_object_get_string(sv), DSSE_MAX_SIG, &sig, &slen) < 0) {
			r = kq_err(-EBADMSG, "DSSE envelope: signature %zu is not valid base64", i);
			goto out;
		}
		/* the keyid is only a hint: every trusted key is tried */
		for (size_t k = 0; k < nkeys && !ok; k++) {
			if (EVP_PKEY_base_id(keys[k]) == EVP_PKEY_RSA)
				ok = verify_one(keys[k], pae, pae_len, sig, slen, RSA_PKCS1_PADDING) ||
				     verify_one(keys[k], pae, pae_len, sig, slen, RSA_PKCS1_PSS_PADDING);
			else
				ok = verify_one(keys[k], pae, pae_len, sig, slen, 0);
		}
	}
	if (!ok) {
		r = kq_err(-EPERM, "DSSE envelope: no signature verifies with a trusted key");
		goto out;
	}
	*ret_payload = TAKE_PTR(payload);
	*ret_len = plen;
	r = 0;
out:
	for (size_t k = 0; k < nkeys; k++)
		EVP_PKEY_free(keys[k]);
	return r;
}

int imapolicy_parse(const uint8_t *json, size_t len, const struct imapolicy_load_opts *opts,
		    struct imapolicy **ret)
{
	_cleanup_(json_object_putp) struct json_object *root = NULL;
	_cleanup_(json_object_putp) struct json_object *inner = NULL;
	_cleanup_free_ uint8_t *payload = NULL;
	struct imapolicy *p = NULL;
	struct json_object *doc;
	bool is_dsse;
	int r;

	if (!json || !ret)
		return kq_err(-EINVAL, "NULL argument");
	if (len > IMAPOLICY_MAX_SIZE)
		return kq_err(-E2BIG, "policy of %zu bytes is over the limit of %u", len, IMAPOLICY_MAX_SIZE);
	r = json_parse_body(json, len, IMAPOLICY_MAX_SIZE, IMAPOLICY_MAX_DEPTH, &root);
	if (r < 0)
		return kq_err_ctx(r, "policy: ");
	if (!json_object_is_type(root, json_type_object))
		return kq_err(-EBADMSG, "policy is not a JSON object");

	is_dsse = json_object_object_get_ex(root, "payloadType", NULL) ||
		  json_object_object_get_ex(root, "signatures", NULL);
	doc = root;
	if (is_dsse) {
		size_t plen;

		r = dsse_open(root, opts, &payload, &plen);
		if (r < 0)
			return r;
		r = json_parse_body(payload, plen, IMAPOLICY_MAX_SIZE, IMAPOLICY_MAX_DEPTH, &inner);
		if (r < 0)
			return kq_err_ctx(r, "DSSE payload: ");
		doc = inner;
	} else if (opts && opts->require_signed) {
		return kq_err(-EPERM, "policy is not signed (a DSSE envelope is required)");
	}

	p = calloc(1, sizeof(*p));
	if (!p)
		return kq_err(-ENOMEM, "out of memory");
	r = parse_plain(doc, opts, p);
	if (r < 0) {
		imapolicy_free(p);
		return r;
	}
	p->signed_ = is_dsse;
	p->allow_violations = opts && opts->allow_violations;
	*ret = p;
	return 0;
}

void imapolicy_free(struct imapolicy *p)
{
	if (!p)
		return;
	ptab_done(&p->digests);
	ptab_done(&p->keyrings);
	ptab_done(&p->imabuf);
	for (size_t i = 0; i < p->n_excludes; i++)
		regfree(&p->excludes[i]);
	free(p->excludes);
	for (size_t i = 0; i < p->n_ignored; i++)
		free(p->ignored_keyrings[i]);
	free(p->ignored_keyrings);
	ima_keyring_free(p->sig_keys);
	free(p);
}

size_t imapolicy_n_paths(const struct imapolicy *p) { return p->digests.n; }
size_t imapolicy_n_excludes(const struct imapolicy *p) { return p->n_excludes; }
size_t imapolicy_n_sig_keys(const struct imapolicy *p) { return ima_keyring_count(p->sig_keys); }
bool imapolicy_was_signed(const struct imapolicy *p) { return p->signed_; }
uint16_t imapolicy_log_hash_alg(const struct imapolicy *p) { return p->log_hash_alg; }

/* ---- evaluation ---- */

static int verdict(struct imapolicy_verdict *v, const struct ima_entry *e, bool ok, const char *reason,
		   const char *fmt, ...) _printf_(5, 6);

static int verdict(struct imapolicy_verdict *v, const struct ima_entry *e, bool ok, const char *reason,
		   const char *fmt, ...)
{
	char path[200], what[256];
	va_list ap;

	safe_str(e->path ? e->path : "", e->path ? e->path_len : 0, path, sizeof(path));
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	v->ok = ok;
	v->reason = reason;
	snprintf(v->message, sizeof(v->message), "entry %llu (%s): %s", (unsigned long long)e->index,
		 e->path ? path : "no path", what);
	return 0;
}

static bool is_excluded(const struct imapolicy *p, const char *path)
{
	for (size_t i = 0; i < p->n_excludes; i++)
		if (regexec(&p->excludes[i], path, 0, NULL, 0) == 0)
			return true;
	return false;
}

/* The allowlist step shared by every template (Keylime's _validate_ima_ng). */
static int check_digest(const struct imapolicy *p, const struct ptab *t, const char *table,
			const struct ima_entry *e, struct imapolicy_verdict *v)
{
	const struct pslot *s;

	if (is_excluded(p, e->path))
		return verdict(v, e, true, "excluded", "path matches an exclude");
	s = ptab_find(t, e->path, e->path_len);
	if (!s)
		return verdict(v, e, false, "not_in_allowlist", "path not in the policy's %s", table);
	for (uint32_t i = 0; i < s->count; i++) {
		const struct pdig *d = &t->digs[s->first + i];

		if (d->len == e->digest_len && (d->algo == DIGEST_ANY_ALGO || d->algo == e->digest_algo) &&
		    CRYPTO_memcmp(d->d, e->digest, d->len) == 0)
			return verdict(v, e, true, "allowed", "digest in the policy's %s", table);
	}
	return verdict(v, e, false, "digest_mismatch", "%s digest not among the %u allowed for this path",
		       ima_hash_algo_name(e->digest_algo) ? ima_hash_algo_name(e->digest_algo) : "unknown",
		       s->count);
}

static bool buf_is_key(const uint8_t *buf, size_t len)
{
	const unsigned char *q = buf;
	X509 *x;
	EVP_PKEY *k;

	if (len > LONG_MAX)
		return false;
	x = d2i_X509(NULL, &q, (long)len);
	if (x) {
		X509_free(x);
		return true;
	}
	q = buf;
	k = d2i_PUBKEY(NULL, &q, (long)len);
	if (k) {
		EVP_PKEY_free(k);
		return true;
	}
	return false;
}

static bool keyring_ignored(const struct imapolicy *p, const char *name)
{
	if (p->ignore_all_keyrings)
		return true;
	for (size_t i = 0; i < p->n_ignored; i++)
		if (strcmp(p->ignored_keyrings[i], name) == 0)
			return true;
	return false;
}

static int check_buf(const struct imapolicy *p, const struct ima_entry *e, struct imapolicy_verdict *v)
{
	if (e->buf && buf_is_key(e->buf, e->buf_len)) {
		if (keyring_ignored(p, e->path))
			return verdict(v, e, true, "ignored_keyring", "key on an ignored keyring");
		if (!ptab_find(&p->keyrings, e->path, e->path_len) && !is_excluded(p, e->path))
			return verdict(v, e, false, "unknown_keyring", "key on a keyring the policy does not list");
		check_digest(p, &p->keyrings, "keyrings", e, v);
		if (v->ok && strcmp(v->reason, "allowed") == 0)
			v->reason = "keyring_ok";
		return 0;
	}
	return check_digest(p, &p->imabuf, "ima-buf", e, v);
}

int imapolicy_check_entry(const struct imapolicy *p, const struct ima_entry *e,
			  struct imapolicy_verdict *ret)
{
	struct ima_sig_result sr;

	if (!p || !e || !ret)
		return kq_err(-EINVAL, "NULL argument");

	if (ima_entry_is_bad(e))
		return verdict(ret, e, false, "template_hash_mismatch",
			       "template hash does not match the template data");
	if (e->violation) {
		if (p->allow_violations)
			return verdict(ret, e, true, "violation_ignored", "violation (ToMToU/open-writers) accepted by configuration");
		return verdict(ret, e, false, "violation",
			       "violation (ToMToU/open-writers): the file was measured while open for write");
	}
	if (e->pcr != IMA_PCR)
		return verdict(ret, e, false, "wrong_pcr", "extends PCR %u, not %d", e->pcr, IMA_PCR);
	if (!e->path || !e->digest || e->digest_len == 0)
		return verdict(ret, e, false, "unsupported_template", "template '%.64s' has no path or digest",
			       e->template_name ? e->template_name : "?");

	if (e->tmpl && e->tmpl->id == IMA_TEMPLATE_IMA_BUF)
		return check_buf(p, e, ret);

	if (e->sig && ima_keyring_count(p->sig_keys) > 0 && !is_excluded(p, e->path)) {
		switch (ima_sig_verify(p->sig_keys, e, &sr)) {
		case IMA_SIG_VALID:
			return verdict(ret, e, true, "signature_ok", "IMA signature verifies (key id %08x)",
				       sr.keyid);
		case IMA_SIG_INVALID:
			return verdict(ret, e, false, "bad_signature", "IMA signature: %s",
				       sr.reason ? sr.reason : "invalid");
		case IMA_SIG_UNKNOWN_KEY:
		case IMA_SIG_NONE:
			break; /* as Keylime: fall back to the allowlist */
		}
	}
	return check_digest(p, &p->digests, "digests", e, ret);
}
