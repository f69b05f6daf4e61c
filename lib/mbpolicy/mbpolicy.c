/* SPDX-License-Identifier: Apache-2.0 */
/* lib/mbpolicy: measured-boot reference-state policy (see mbpolicy.h, docs/mb-policy.md). */
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto/crypto.h"
#include "json/json.h"
#include "mbpolicy/mbpolicy.h"
#include "util/util.h"

enum { SB_ANY, SB_ON, SB_OFF };

/* One digest, or Keylime's {"sha256": ..., "sha1": ...} (all listed must match). */
struct digest {
	uint16_t alg;
	size_t len;
	uint8_t d[KQ_MAX_DIGEST];
};
#define MAX_ALGS 4
struct digest_set {
	size_t n;
	struct digest d[MAX_ALGS];
};

struct dlist {
	bool set; /* false: not checked */
	size_t n;
	struct digest_set *v;
};

struct sig {
	uint8_t owner[16];
	uint8_t *data;
	size_t len;
};

struct siglist {
	bool set; /* false: not checked */
	size_t n; /* at most MBPOLICY_MAX_ENTRIES */
	struct sig *v;
	/*
	 * v in sig_cmp() order, built by parse_siglist(), so that a variable is
	 * checked in one walk with a binary search per signature instead of a
	 * walk per policy entry. Messages still name entries by their index in v.
	 */
	const struct sig **sorted;
};

struct scrtm_bios {
	struct digest_set scrtm;
	size_t n_fw;
	struct digest_set *fw;
};

struct kl_kernel {
	struct digest_set shim, grub, kernel, vmlinuz, initrd;
	bool has_kernel, has_vmlinuz;
	regex_t cmdline;
	bool has_cmdline;
};

struct mbpolicy {
	bool keylime;
	int secure_boot;
	struct siglist pk, kek, db, dbx;
	struct dlist apps; /* kumquat form: boot_loaders + kernels */
	/* Keylime form */
	size_t n_scrtm;
	struct scrtm_bios *scrtm;
	struct dlist mokdig, mokxdig;
	size_t n_kernels;
	struct kl_kernel *kernels;
};

/* ---- freeing ---- */

static void siglist_free(struct siglist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].data);
	free(l->v);
	free(l->sorted);
}

void mbpolicy_free(struct mbpolicy *p)
{
	if (!p)
		return;
	siglist_free(&p->pk);
	siglist_free(&p->kek);
	siglist_free(&p->db);
	siglist_free(&p->dbx);
	free(p->apps.v);
	for (size_t i = 0; i < p->n_scrtm; i++)
		free(p->scrtm[i].fw);
	free(p->scrtm);
	free(p->mokdig.v);
	free(p->mokxdig.v);
	for (size_t i = 0; i < p->n_kernels; i++)
		if (p->kernels[i].has_cmdline)
			regfree(&p->kernels[i].cmdline);
	free(p->kernels);
	free(p);
}

static void json_putp(struct json_object **o)
{
	json_object_put(*o);
}

/* ---- parsing ---- */

static int alg_from_name(const char *s, uint16_t *ret)
{
	static const struct { const char *n; uint16_t a; } t[] = {
		{ "sha1", KQ_ALG_SHA1 }, { "sha256", KQ_ALG_SHA256 },
		{ "sha384", KQ_ALG_SHA384 }, { "sha512", KQ_ALG_SHA512 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (strcmp(s, t[i].n) == 0) {
			*ret = t[i].a;
			return 0;
		}
	return -ENOENT;
}

static int parse_digest(const char *field, struct json_object *o, uint16_t alg, struct digest *ret)
{
	size_t n;
	int r;

	if (!json_object_is_type(o, json_type_string))
		return kq_err(-EINVAL, "%s: not a string", field);
	r = kq_hex_decode(json_object_get_string(o), ret->d, sizeof(ret->d), &n);
	if (r < 0 || n != kq_hash_size(alg))
		return kq_err(-EINVAL, "%s: not a %zu-byte hex digest", field, kq_hash_size(alg));
	ret->alg = alg;
	ret->len = n;
	return 0;
}

/* Keylime's digest: {"sha256": "0x..", ...}, at least one algorithm. */
static int parse_digest_set(const char *field, struct json_object *o, struct digest_set *ret)
{
	struct digest_set ds = { 0 };
	int r;

	if (!json_object_is_type(o, json_type_object))
		return kq_err(-EINVAL, "%s: not an object", field);
	json_object_object_foreach(o, key, val) {
		uint16_t alg;

		if (alg_from_name(key, &alg) < 0)
			return kq_err(-EINVAL, "%s: unknown hash algorithm", field);
		if (ds.n >= MAX_ALGS)
			return kq_err(-EINVAL, "%s: too many algorithms", field);
		r = parse_digest(field, val, alg, &ds.d[ds.n]);
		if (r < 0)
			return r;
		ds.n++;
	}
	if (ds.n == 0)
		return kq_err(-EINVAL, "%s: empty digest", field);
	*ret = ds;
	return 0;
}

static int check_array(const char *field, struct json_object *a)
{
	if (!json_object_is_type(a, json_type_array))
		return kq_err(-EINVAL, "field '%s': not an array", field);
	if (json_object_array_length(a) > MBPOLICY_MAX_ENTRIES)
		return kq_err(-E2BIG, "field '%s': more than %u entries", field, MBPOLICY_MAX_ENTRIES);
	return 0;
}

/* A list of digests: Keylime digest objects (keylime) or SHA-256 hex strings. Appends to l. */
static int parse_dlist(const char *field, struct json_object *a, bool keylime, struct dlist *l)
{
	size_t n;
	struct digest_set *v;
	int r;

	r = check_array(field, a);
	if (r < 0)
		return r;
	n = json_object_array_length(a);
	v = reallocarray(l->v, l->n + n + 1, sizeof(*v));
	if (!v)
		return kq_err(-ENOMEM, "out of memory");
	l->v = v;
	l->set = true;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		struct digest_set *ds = &l->v[l->n];
		char what[80];

		snprintf(what, sizeof(what), "field '%s' entry %zu", field, i);
		if (keylime)
			r = parse_digest_set(what, e, ds);
		else {
			*ds = (struct digest_set){ .n = 1 };
			r = parse_digest(what, e, KQ_ALG_SHA256, &ds->d[0]);
		}
		if (r < 0)
			return r;
		l->n++;
	}
	return 0;
}

/* Orders signatures by size, then owner, then data: equal means the same entry. */
static int sig_cmp(const uint8_t owner[16], const uint8_t *data, size_t len, const struct sig *b)
{
	int r;

	if (len != b->len)
		return len < b->len ? -1 : 1;
	r = memcmp(owner, b->owner, 16);
	if (r != 0 || len == 0)
		return r;
	return memcmp(data, b->data, len);
}

static int sig_ptr_cmp(const void *a, const void *b)
{
	const struct sig *x = *(const struct sig *const *)a;

	return sig_cmp(x->owner, x->data, x->len, *(const struct sig *const *)b);
}

/* [{"SignatureOwner": guid, "SignatureData": hex}, ...] */
static int parse_siglist(const char *field, struct json_object *a, struct siglist *l)
{
	size_t n;
	int r;

	r = check_array(field, a);
	if (r < 0)
		return r;
	n = json_object_array_length(a);
	l->v = calloc(n + 1, sizeof(*l->v));
	if (!l->v)
		return kq_err(-ENOMEM, "out of memory");
	l->set = true;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(a, i), *owner, *data;
		struct sig *s = &l->v[l->n];
		const char *hex;
		size_t hl;

		if (!json_object_is_type(e, json_type_object) || json_object_object_length(e) != 2 ||
		    !json_object_object_get_ex(e, "SignatureOwner", &owner) ||
		    !json_object_object_get_ex(e, "SignatureData", &data) ||
		    !json_object_is_type(owner, json_type_string) || !json_object_is_type(data, json_type_string))
			return kq_err(-EINVAL,
				      "field '%s' entry %zu: not {\"SignatureOwner\": string, \"SignatureData\": string}",
				      field, i);
		if (evlog_guid_from_string(json_object_get_string(owner), s->owner) < 0)
			return kq_err(-EINVAL, "field '%s' entry %zu: SignatureOwner is not a GUID", field, i);
		hex = json_object_get_string(data);
		hl = strlen(hex);
		if (hl > 2 * MBPOLICY_MAX_SIG_DATA + 2)
			return kq_err(-E2BIG, "field '%s' entry %zu: SignatureData over %u bytes", field, i,
				      MBPOLICY_MAX_SIG_DATA);
		s->data = malloc(hl / 2 + 1);
		if (!s->data)
			return kq_err(-ENOMEM, "out of memory");
		l->n++; /* owned from here on */
		r = kq_hex_decode(hex, s->data, hl / 2 + 1, &s->len);
		if (r < 0 || s->len == 0)
			return kq_err(-EINVAL, "field '%s' entry %zu: SignatureData is not hex", field, i);
	}
	l->sorted = calloc(n + 1, sizeof(*l->sorted));
	if (!l->sorted)
		return kq_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		l->sorted[i] = &l->v[i];
	qsort(l->sorted, n, sizeof(*l->sorted), sig_ptr_cmp);
	return 0;
}

/*
 * Keylime's kernel_cmdline is a Python regex, fullmatched against
 * "kernel_cmdline: " + pattern. POSIX EREs agree with Python for plain
 * literals, escaped punctuation, classes, groups, alternation and
 * repetition; Python-only syntax (\d, \s, (?...), lazy quantifiers) is refused
 * rather than silently meaning something else.
 */
static int compile_cmdline(const char *field, const char *pat, regex_t *ret)
{
	_cleanup_free_ char *full = NULL;
	size_t n = strlen(pat);

	if (n > MBPOLICY_MAX_REGEX)
		return kq_err(-E2BIG, "%s: pattern over %u bytes", field, MBPOLICY_MAX_REGEX);
	for (size_t i = 0; i < n; i++) {
		char c = pat[i], d = pat[i + 1];

		if (c == '\\') {
			if (d == '\0' || (d >= '0' && d <= '9') || (d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z'))
				return kq_err(-EINVAL, "%s: unsupported escape at offset %zu", field, i);
			i++;
		} else if ((c == '(' && d == '?') || ((c == '*' || c == '+' || c == '?' || c == '}') && d == '?'))
			return kq_err(-EINVAL, "%s: unsupported Python regex syntax at offset %zu", field, i);
	}
	if (asprintf(&full, "^(kernel_cmdline: (%s))$", pat) < 0)
		return kq_err(-ENOMEM, "out of memory");
	if (regcomp(ret, full, REG_EXTENDED | REG_NOSUB) != 0)
		return kq_err(-EINVAL, "%s: not a valid regular expression", field);
	return 0;
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return v;
}

static int parse_keylime_kernel(struct json_object *o, size_t i, bool sb, struct kl_kernel *k)
{
	static const char *const names[] = { "shim_authcode_sha256", "grub_authcode_sha256",
					      "kernel_authcode_sha256", "vmlinuz_plain_sha256",
					      "initrd_plain_sha256" };
	struct digest_set *dst[] = { &k->shim, &k->grub, &k->kernel, &k->vmlinuz, &k->initrd };
	struct json_object *v;
	char what[96];
	int r;

	if (!json_object_is_type(o, json_type_object))
		return kq_err(-EINVAL, "field 'kernels' entry %zu: not an object", i);
	for (size_t j = 0; j < ARRAY_SIZE(names); j++) {
		bool need = !((j == 2 && !sb) || (j == 3 && sb));

		snprintf(what, sizeof(what), "field 'kernels' entry %zu: %s", i, names[j]);
		v = get(o, names[j]);
		if (!v) {
			if (need)
				return kq_err(-EINVAL, "%s: missing", what);
			continue;
		}
		if (!need)
			continue; /* Keylime ignores it in this mode too */
		*dst[j] = (struct digest_set){ .n = 1 };
		r = parse_digest(what, v, KQ_ALG_SHA256, &dst[j]->d[0]);
		if (r < 0)
			return r;
	}
	k->has_kernel = sb;
	k->has_vmlinuz = !sb;
	snprintf(what, sizeof(what), "field 'kernels' entry %zu: kernel_cmdline", i);
	v = get(o, "kernel_cmdline");
	if (!v || !json_object_is_type(v, json_type_string))
		return kq_err(-EINVAL, "%s: missing or not a string", what);
	r = compile_cmdline(what, json_object_get_string(v), &k->cmdline);
	if (r < 0)
		return r;
	k->has_cmdline = true;
	return 0;
}

static int parse_keylime(struct json_object *o, struct mbpolicy *p)
{
	static const char *const req[] = { "pk", "kek", "db", "dbx", "mokdig", "mokxdig", "kernels",
					    "scrtm_and_bios" };
	struct siglist *lists[] = { &p->pk, &p->kek, &p->db, &p->dbx };
	struct json_object *v;
	bool sb = true;
	size_t n;
	int r;

	p->keylime = true;
	v = get(o, "has_secureboot");
	if (v) {
		if (!json_object_is_type(v, json_type_boolean))
			return kq_err(-EINVAL, "field 'has_secureboot': not a boolean");
		sb = json_object_get_boolean(v);
	}
	p->secure_boot = sb ? SB_ON : SB_OFF;
	for (size_t i = 0; i < ARRAY_SIZE(req); i++)
		if (!get(o, req[i]))
			return kq_err(-EINVAL, "field '%s': missing", req[i]);

	for (size_t i = 0; i < 4; i++) {
		v = get(o, req[i]);
		r = parse_siglist(req[i], v, lists[i]);
		if (r < 0)
			return r;
		/* Keylime: without Secure Boot an empty list accepts anything. */
		if (!sb && lists[i]->n == 0)
			lists[i]->set = false;
	}
	r = parse_dlist("mokdig", get(o, "mokdig"), true, &p->mokdig);
	if (r < 0)
		return r;
	r = parse_dlist("mokxdig", get(o, "mokxdig"), true, &p->mokxdig);
	if (r < 0)
		return r;

	v = get(o, "scrtm_and_bios");
	r = check_array("scrtm_and_bios", v);
	if (r < 0)
		return r;
	n = json_object_array_length(v);
	p->scrtm = calloc(n + 1, sizeof(*p->scrtm));
	if (!p->scrtm)
		return kq_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i), *s, *fw;
		struct scrtm_bios *sbi = &p->scrtm[i];
		char what[80];

		snprintf(what, sizeof(what), "field 'scrtm_and_bios' entry %zu", i);
		if (!json_object_is_type(e, json_type_object) || !(s = get(e, "scrtm")) ||
		    !(fw = get(e, "platform_firmware")))
			return kq_err(-EINVAL, "%s: not {\"scrtm\": ..., \"platform_firmware\": [...]}", what);
		p->n_scrtm++;
		r = parse_digest_set(what, s, &sbi->scrtm);
		if (r < 0)
			return r;
		r = check_array("scrtm_and_bios.platform_firmware", fw);
		if (r < 0)
			return r;
		sbi->fw = calloc(json_object_array_length(fw) + 1, sizeof(*sbi->fw));
		if (!sbi->fw)
			return kq_err(-ENOMEM, "out of memory");
		for (size_t j = 0; j < json_object_array_length(fw); j++) {
			r = parse_digest_set(what, json_object_array_get_idx(fw, j), &sbi->fw[j]);
			if (r < 0)
				return r;
			sbi->n_fw++;
		}
	}

	v = get(o, "kernels");
	r = check_array("kernels", v);
	if (r < 0)
		return r;
	n = json_object_array_length(v);
	p->kernels = calloc(n + 1, sizeof(*p->kernels));
	if (!p->kernels)
		return kq_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		p->n_kernels++;
		r = parse_keylime_kernel(json_object_array_get_idx(v, i), i, sb, &p->kernels[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_kumquat(struct json_object *o, struct mbpolicy *p)
{
	static const char *const lists[] = { "pk", "kek", "db", "dbx" };
	struct siglist *dst[] = { &p->pk, &p->kek, &p->db, &p->dbx };
	struct json_object *v;
	int r;

	json_object_object_foreach(o, key, val) {
		static const char *const known[] = { "secure_boot", "pk", "kek", "db", "dbx",
						      "boot_loaders", "kernels" };
		bool ok = false;

		(void)val;
		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			ok |= strcmp(key, known[i]) == 0;
		if (!ok)
			return kq_err(-EINVAL, "unknown field (not a Keylime reference state either)");
	}
	p->secure_boot = SB_ANY;
	v = get(o, "secure_boot");
	if (v) {
		if (!json_object_is_type(v, json_type_boolean))
			return kq_err(-EINVAL, "field 'secure_boot': not a boolean or null");
		p->secure_boot = json_object_get_boolean(v) ? SB_ON : SB_OFF;
	}
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		v = get(o, lists[i]);
		if (v && (r = parse_siglist(lists[i], v, dst[i])) < 0)
			return r;
	}
	v = get(o, "boot_loaders");
	if (v && (r = parse_dlist("boot_loaders", v, false, &p->apps)) < 0)
		return r;
	v = get(o, "kernels");
	if (v && (r = parse_dlist("kernels", v, false, &p->apps)) < 0)
		return r;
	return 0;
}

int mbpolicy_parse(const uint8_t *json, size_t len, struct mbpolicy **ret)
{
	_cleanup_(json_putp) struct json_object *o = NULL;
	struct mbpolicy *p;
	int r;

	if (len > MBPOLICY_MAX_SIZE)
		return kq_err(-E2BIG, "measured-boot policy over %u bytes", MBPOLICY_MAX_SIZE);
	r = json_parse_body(json, len, MBPOLICY_MAX_SIZE, 8, &o);
	if (r < 0)
		return kq_err_ctx(r, "measured-boot policy: ");
	if (!json_object_is_type(o, json_type_object))
		return kq_err(-EINVAL, "measured-boot policy: not a JSON object");
	p = calloc(1, sizeof(*p));
	if (!p)
		return kq_err(-ENOMEM, "out of memory");
	if (json_object_object_get_ex(o, "scrtm_and_bios", NULL))
		r = parse_keylime(o, p);
	else
		r = parse_kumquat(o, p);
	if (r < 0) {
		mbpolicy_free(p);
		return kq_err_ctx(r, "measured-boot policy: ");
	}
	*ret = p;
	return 0;
}

/* ---- results ---- */

void mbpolicy_result_free(struct mbpolicy_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_failures; i++)
		free(r->failures[i].message);
	free(r->failures);
	*r = (struct mbpolicy_result){ 0 };
}

bool mbpolicy_result_has(const struct mbpolicy_result *r, const char *reason, size_t event)
{
	for (size_t i = 0; i < r->n_failures; i++)
		if (strcmp(r->failures[i].reason, reason) == 0 &&
		    (event == MBPOLICY_NO_EVENT || r->failures[i].event == event))
			return true;
	return false;
}

struct ctx {
	const struct evlog *log;
	struct mbpolicy_result *res;
	const char *prefix; /* "kernels[1]: " while trying an alternative, else "" */
	int err;
};

_printf_(4, 5) static void fail(struct ctx *c, const char *reason, size_t event, const char *fmt, ...)
{
	struct mbpolicy_failure *f;
	char *msg = NULL, *full = NULL;
	va_list ap;
	int n;

	if (c->err < 0)
		return;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0 || asprintf(&full, "%s%s", c->prefix, msg) < 0) {
		free(msg);
		c->err = -ENOMEM;
		return;
	}
	free(msg);
	f = reallocarray(c->res->failures, c->res->n_failures + 1, sizeof(*f));
	if (!f) {
		free(full);
		c->err = -ENOMEM;
		return;
	}
	c->res->failures = f;
	f[c->res->n_failures++] = (struct mbpolicy_failure){ .reason = reason, .event = event, .message = full };
}

/* ---- evaluation ---- */

static bool ds_match(const struct evlog *log, const struct evlog_event *ev, const struct digest_set *ds)
{
	for (size_t i = 0; i < ds->n; i++) {
		const uint8_t *d = evlog_event_digest(log, ev, ds->d[i].alg);

		if (!d || CRYPTO_memcmp(d, ds->d[i].d, ds->d[i].len) != 0)
			return false;
	}
	return ds->n > 0;
}

static bool dlist_has(const struct evlog *log, const struct evlog_event *ev, const struct dlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (ds_match(log, ev, &l->v[i]))
			return true;
	return false;
}

static void sha256_hex(const struct evlog *log, const struct evlog_event *ev, char out[65])
{
	const uint8_t *d = evlog_event_digest(log, ev, KQ_ALG_SHA256);

	if (d)
		kq_hex_encode(d, 32, out);
	else
		snprintf(out, 65, "(no sha256 digest)");
}

/* An event the TPM extended and whose content evlog could not bind to its digest. */
static bool unverified(const struct evlog_event *ev)
{
	return ev->verify != EVLOG_VERIFY_OK;
}

enum var_id { VAR_NONE, VAR_SECUREBOOT, VAR_PK, VAR_KEK, VAR_DB, VAR_DBX };

static enum var_id var_of(const struct evlog_efi_variable *v)
{
	if (memcmp(v->guid, EVLOG_GUID_EFI_GLOBAL_VARIABLE, 16) == 0) {
		if (strcmp(v->name, "SecureBoot") == 0)
			return VAR_SECUREBOOT;
		if (strcmp(v->name, "PK") == 0)
			return VAR_PK;
		if (strcmp(v->name, "KEK") == 0)
			return VAR_KEK;
	} else if (memcmp(v->guid, EVLOG_GUID_IMAGE_SECURITY_DATABASE, 16) == 0) {
		if (strcmp(v->name, "db") == 0)
			return VAR_DB;
		if (strcmp(v->name, "dbx") == 0)
			return VAR_DBX;
	}
	return VAR_NONE;
}

/* The first position in l->sorted holding this signature, or l->n if the policy lacks it. */
static size_t sig_find(const struct siglist *l, const uint8_t owner[16], const uint8_t *data, size_t len)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sig_cmp(owner, data, len, l->sorted[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < l->n && sig_cmp(owner, data, len, l->sorted[lo]) == 0)
		return lo;
	return l->n;
}

/*
 * PK/KEK/db: every signature in the variable must be allowed. dbx: every
 * required one present. Either way the variable (hostile, up to the log's
 * size) is walked once, each signature looked up in l->sorted.
 */
static void check_siglist(struct ctx *c, const struct evlog_event *ev, const char *name, const char *reason,
			  const struct siglist *l, bool superset)
{
	const struct evlog_efi_variable *v = &ev->dec.var;
	struct evlog_siglist_iter it;
	struct evlog_efi_signature s;
	char g[EVLOG_GUID_STRLEN];
	size_t k = 0;
	int r = 0;

	if (superset) {
		/* found[i]: policy entry i is in the variable; l->n <= MBPOLICY_MAX_ENTRIES (check_array) */
		uint64_t found[(MBPOLICY_MAX_ENTRIES + 63) / 64] = { 0 };
		size_t n_found = 0;

		if (l->n == 0)
			return;
		/* Stopping once all are found means malformed data after them goes unreported, as before. */
		evlog_siglist_init(&it, v->data, v->data_len);
		while (n_found < l->n && (r = evlog_siglist_next(&it, &s)) > 0) {
			size_t j = sig_find(l, s.owner, s.data, s.data_len), i;

			/* a policy entry listed twice is found by one signature; each run is marked once */
			for (; j < l->n && sig_cmp(s.owner, s.data, s.data_len, l->sorted[j]) == 0; j++) {
				i = (size_t)(l->sorted[j] - l->v);
				if (found[i / 64] & (UINT64_C(1) << (i % 64)))
					break;
				found[i / 64] |= UINT64_C(1) << (i % 64);
				n_found++;
			}
		}
		if (n_found == l->n)
			return;
		/*
		 * In policy order. If the walk ended on bad sizes, a missing entry
		 * may be in the part that could not be read: the first one is
		 * reported as malformed lists and nothing after it.
		 */
		for (size_t i = 0; i < l->n; i++) {
			if (found[i / 64] & (UINT64_C(1) << (i % 64)))
				continue;
			if (r < 0) {
				fail(c, reason, ev->index, "%s: malformed signature lists", name);
				return;
			}
			evlog_guid_to_string(l->v[i].owner, g);
			fail(c, reason, ev->index, "%s lacks required entry %zu (owner %s, %zu bytes)", name, i, g,
			     l->v[i].len);
		}
		return;
	}
	evlog_siglist_init(&it, v->data, v->data_len);
	while ((r = evlog_siglist_next(&it, &s)) > 0) {
		if (sig_find(l, s.owner, s.data, s.data_len) == l->n) {
			evlog_guid_to_string(s.owner, g);
			fail(c, reason, ev->index, "%s entry %zu (owner %s, %zu bytes) is not allowed", name, k, g,
			     s.data_len);
		}
		k++;
	}
	if (r < 0)
		fail(c, reason, ev->index, "%s: malformed signature lists", name);
}

static void check_pcr7(struct ctx *c, const struct mbpolicy *p)
{
	static const char *const names[] = { "", "SecureBoot", "PK", "KEK", "db", "dbx" };
	static const char *const reasons[] = { "", "", MBPOLICY_PK_MISMATCH, MBPOLICY_KEK_MISMATCH,
					       MBPOLICY_DB_MISMATCH, MBPOLICY_DBX_MISMATCH };
	const struct siglist *lists[] = { NULL, NULL, &p->pk, &p->kek, &p->db, &p->dbx };
	size_t seen[6] = { 0 };
	int sb = -1; /* -1 not measured, 0 off, 1 on; the last trusted measurement wins */
	size_t sb_event = MBPOLICY_NO_EVENT;
	bool relevant = p->secure_boot != SB_ANY || p->pk.set || p->kek.set || p->db.set || p->dbx.set;

	if (!relevant)
		return;
	for (size_t i = 0; i < evlog_n_events(c->log); i++) {
		const struct evlog_event *ev = evlog_event(c->log, i);
		enum var_id id;

		if (!ev->extends || ev->pcr != 7)
			continue;
		if (unverified(ev)) {
			const char *tn = evlog_event_type_name(ev->type);

			fail(c, MBPOLICY_UNVERIFIED_EVENT, i,
			     "PCR 7 event (%s) %s; its content cannot be trusted", tn ? tn : "unknown type",
			     ev->verify == EVLOG_VERIFY_MISMATCH ? "has a digest that does not match its data"
								 : "has a digest that is not a hash of its data");
			continue;
		}
		if (ev->dec.kind != EVLOG_KIND_EFI_VARIABLE)
			continue;
		id = var_of(&ev->dec.var);
		if (id == VAR_NONE)
			continue;
		if (ev->type != EVLOG_EV_EFI_VARIABLE_DRIVER_CONFIG || ev->form != EVLOG_FORM_FULL) {
			/* db legitimately appears as the authority that verified an image */
			if (!(id == VAR_DB && ev->type == EVLOG_EV_EFI_VARIABLE_AUTHORITY))
				fail(c, MBPOLICY_UNEXPECTED_EVENT, i, "%s measured in an unexpected event type",
				     names[id]);
			continue;
		}
		seen[id]++;
		if (id == VAR_SECUREBOOT) {
			sb = ev->dec.var.data_len == 1 && ev->dec.var.data[0] == 1;
			sb_event = i;
			continue;
		}
		if (lists[id]->set)
			check_siglist(c, ev, names[id], reasons[id], lists[id], id == VAR_DBX);
	}
	for (int id = VAR_PK; id <= VAR_DBX; id++)
		if (lists[id]->set && seen[id] == 0)
			fail(c, reasons[id], MBPOLICY_NO_EVENT, "%s was not measured by a verified event",
			     names[id]);
	if (p->secure_boot == SB_ON && sb != 1)
		fail(c, MBPOLICY_SECURE_BOOT_OFF, sb_event,
		     sb < 0 ? "SecureBoot was not measured by a verified event" : "SecureBoot is disabled");
	if (p->secure_boot == SB_OFF && sb == 1)
		fail(c, MBPOLICY_SECURE_BOOT_ON, sb_event, "SecureBoot is enabled; the policy expects it off");
}

/* kumquat form: every PCR 4 image (any event whose content evlog could not verify) is allowed. */
static void check_apps(struct ctx *c, const struct mbpolicy *p)
{
	if (!p->apps.set)
		return;
	for (size_t i = 0; i < evlog_n_events(c->log); i++) {
		const struct evlog_event *ev = evlog_event(c->log, i);
		char hex[65];

		if (!ev->extends || ev->pcr != 4 || !unverified(ev))
			continue;
		if (!evlog_event_digest(c->log, ev, KQ_ALG_SHA256)) {
			fail(c, MBPOLICY_NO_DIGEST, i, "PCR 4 event has no sha256 digest");
			continue;
		}
		if (dlist_has(c->log, ev, &p->apps))
			continue;
		sha256_hex(c->log, ev, hex);
		fail(c, MBPOLICY_BOOT_APP_NOT_ALLOWED, i, "boot application %s (%s) is not allowed", hex,
		     ev->dec.kind == EVLOG_KIND_IMAGE_LOAD && ev->dec.image.file_path ? ev->dec.image.file_path
										 : "no file path");
	}
}

static const char *ev_string(const struct evlog_event *ev)
{
	return ev->dec.kind == EVLOG_KIND_STRING ? ev->dec.string : NULL;
}

static void check_scrtm(struct ctx *c, const struct mbpolicy *p)
{
	for (size_t a = 0; a < p->n_scrtm; a++) {
		const struct scrtm_bios *sb = &p->scrtm[a];
		size_t n_s = 0, n_fw = 0;
		bool ok = true;

		for (size_t i = 0; i < evlog_n_events(c->log) && ok; i++) {
			const struct evlog_event *ev = evlog_event(c->log, i);

			if (!ev->extends || ev->pcr != 0)
				continue;
			if (ev->type == EVLOG_EV_S_CRTM_VERSION)
				ok = n_s++ == 0 && ds_match(c->log, ev, &sb->scrtm);
			else if (ev->type == EVLOG_EV_EFI_PLATFORM_FIRMWARE_BLOB ||
				 ev->type == EVLOG_EV_EFI_PLATFORM_FIRMWARE_BLOB2) {
				ok = n_fw < sb->n_fw && ds_match(c->log, ev, &sb->fw[n_fw]);
				n_fw++;
			}
		}
		if (ok && n_s == 1 && n_fw == sb->n_fw)
			return;
	}
	fail(c, MBPOLICY_SCRTM_BIOS_MISMATCH, MBPOLICY_NO_EVENT,
	     "the S-CRTM version and platform firmware digests match no scrtm_and_bios entry");
}

static void check_mok(struct ctx *c, const struct mbpolicy *p)
{
	for (size_t i = 0; i < evlog_n_events(c->log); i++) {
		const struct evlog_event *ev = evlog_event(c->log, i);
		const char *s = ev_string(ev);

		if (!ev->extends || ev->pcr != 14)
			continue;
		if (ev->type == EVLOG_EV_IPL && s && strcmp(s, "MokList") == 0) {
			if (!dlist_has(c->log, ev, &p->mokdig))
				fail(c, MBPOLICY_MOK_MISMATCH, i, "MokList digest is not in mokdig");
		} else if (ev->type == EVLOG_EV_IPL && s && strcmp(s, "MokListX") == 0) {
			if (!dlist_has(c->log, ev, &p->mokxdig))
				fail(c, MBPOLICY_MOK_MISMATCH, i, "MokListX digest is not in mokxdig");
		} else if (!(ev->type == EVLOG_EV_IPL && s && strcmp(s, "MokListTrusted") == 0))
			fail(c, MBPOLICY_MOK_MISMATCH, i, "unexpected PCR 14 event");
	}
}

/* One Keylime kernels[] alternative: PCR 4 images, PCR 9 kernel/initrd, PCR 8 command line. */
static void check_kernel(struct ctx *c, const struct kl_kernel *k)
{
	const struct digest_set *want[4] = { &k->shim, &k->grub, &k->kernel, &k->kernel };
	size_t n_want_min = k->has_kernel ? 3 : 2, n_want_max = k->has_kernel ? 4 : 2;
	size_t n_app = 0, n_initrd = 0, n_vmlinuz = 0, n_cmd = 0;
	char hex[65];

	for (size_t i = 0; i < evlog_n_events(c->log); i++) {
		const struct evlog_event *ev = evlog_event(c->log, i);
		const char *s = ev_string(ev);

		if (!ev->extends)
			continue;
		if (ev->pcr == 4 && unverified(ev)) {
			if (n_app >= n_want_max || !ds_match(c->log, ev, want[n_app])) {
				sha256_hex(c->log, ev, hex);
				fail(c, MBPOLICY_BOOT_APP_NOT_ALLOWED, i,
				     "boot application %zu (%s) is not the expected %s", n_app, hex,
				     n_app == 0 ? "shim" : n_app == 1 ? "grub" : "kernel");
			}
			n_app++;
		} else if (ev->pcr == 9 && ev->type == EVLOG_EV_IPL && s) {
			if (strstr(s, "/initrd") || strstr(s, "/initramfs")) {
				if (n_initrd++ != 0 || !ds_match(c->log, ev, &k->initrd))
					fail(c, MBPOLICY_KERNEL_MISMATCH, i, "initrd %s does not match", s);
			} else if (strstr(s, "/vmlinuz") && !strstr(s, "/grub") && !strstr(s, "/loader/entries")) {
				if ((n_vmlinuz++ != 0 || !ds_match(c->log, ev, &k->vmlinuz)) && k->has_vmlinuz)
					fail(c, MBPOLICY_KERNEL_MISMATCH, i, "kernel %s does not match", s);
			}
		} else if (ev->pcr == 8) {
			if (unverified(ev)) {
				fail(c, MBPOLICY_UNVERIFIED_EVENT, i, "PCR 8 event with a digest that does not match its data");
				continue;
			}
			if (ev->type != EVLOG_EV_IPL || !s || strncmp(s, "kernel_cmdline: ", 16) != 0)
				continue;
			if (n_cmd++ != 0 || strchr(s, '\n') || regexec(&k->cmdline, s, 0, NULL, 0) != 0)
				fail(c, MBPOLICY_KERNEL_MISMATCH, i, "kernel command line does not match");
		}
	}
	if (n_app < n_want_min)
		fail(c, MBPOLICY_BOOT_APP_NOT_ALLOWED, MBPOLICY_NO_EVENT,
		     "%zu boot applications measured, expected %zu", n_app, n_want_min);
	if (n_initrd == 0)
		fail(c, MBPOLICY_KERNEL_MISMATCH, MBPOLICY_NO_EVENT, "no initrd measured");
	if (k->has_vmlinuz && n_vmlinuz == 0)
		fail(c, MBPOLICY_KERNEL_MISMATCH, MBPOLICY_NO_EVENT, "no kernel measured in PCR 9");
	if (n_cmd == 0)
		fail(c, MBPOLICY_KERNEL_MISMATCH, MBPOLICY_NO_EVENT, "no kernel command line measured");
}

/* The first kernels[] alternative that passes; otherwise the failures of the closest one. */
static void check_kernels(struct ctx *c, const struct mbpolicy *p)
{
	struct mbpolicy_result best = { 0 };
	bool have_best = false;
	char prefix[40];

	for (size_t a = 0; a < p->n_kernels && c->err >= 0; a++) {
		struct mbpolicy_result tmp = { 0 };
		struct ctx sub = { .log = c->log, .res = &tmp, .prefix = prefix };

		snprintf(prefix, sizeof(prefix), "kernels[%zu]: ", a);
		check_kernel(&sub, &p->kernels[a]);
		if (sub.err < 0) {
			c->err = sub.err;
			mbpolicy_result_free(&tmp);
			break;
		}
		if (tmp.n_failures == 0) {
			mbpolicy_result_free(&best);
			return;
		}
		if (!have_best || tmp.n_failures < best.n_failures) {
			mbpolicy_result_free(&best);
			best = tmp;
			have_best = true;
		} else
			mbpolicy_result_free(&tmp);
	}
	if (p->n_kernels == 0)
		fail(c, MBPOLICY_KERNEL_MISMATCH, MBPOLICY_NO_EVENT, "the policy allows no kernel");
	for (size_t i = 0; i < best.n_failures; i++)
		fail(c, best.failures[i].reason, best.failures[i].event, "%s", best.failures[i].message);
	mbpolicy_result_free(&best);
}

int mbpolicy_check(const struct mbpolicy *p, const struct evlog *log, struct mbpolicy_result *ret)
{
	struct mbpolicy_result res = { 0 };
	struct ctx c = { .log = log, .res = &res, .prefix = "" };

	check_pcr7(&c, p);
	if (p->keylime) {
		check_scrtm(&c, p);
		check_mok(&c, p);
		check_kernels(&c, p);
	} else
		check_apps(&c, p);
	if (c.err < 0) {
		mbpolicy_result_free(&res);
		return kq_err(c.err, "out of memory");
	}
	res.ok = res.n_failures == 0;
	*ret = res;
	return 0;
}
