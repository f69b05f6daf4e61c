/* SPDX-License-Identifier: Apache-2.0 */
/* Named policies: compiled once from the stored document, shared by reference. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "imapolicy/imapolicy.h"
#include "json/json.h"
#include "mbpolicy/mbpolicy.h"
#include "tpm/tpm.h"
#include "verifier.h"

#define PCR_POLICY_MAX (64u * 1024)

struct policy {
	atomic_int refs;
	enum policy_kind kind;
	char name[VERIFIER_NAME_MAX + 1];
	struct tpm_pcrs *pcrs;
	struct mbpolicy *mb;
	struct imapolicy *ima;
};

struct policies {
	struct db *db;
	struct imapolicy_load_opts ima_opts;
	const char *dsse_keys[1];
	pthread_mutex_t lock;
	struct policy **cache;
	size_t n, cap;
};

static const char *const kind_names[] = { [POLICY_PCR] = "pcr", [POLICY_MB] = "mb", [POLICY_IMA] = "ima" };

const char *policy_kind_name(enum policy_kind k)
{
	return (unsigned)k < ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

int policy_kind_from_name(const char *s, enum policy_kind *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++)
		if (s && strcmp(s, kind_names[i]) == 0) {
			*ret = (enum policy_kind)i;
			return 0;
		}
	return kq_err(-EINVAL, "kind must be pcr, mb or ima");
}

enum policy_kind policy_kind(const struct policy *p) { return p->kind; }
const struct tpm_pcrs *policy_pcrs(const struct policy *p) { return p->pcrs; }
const struct mbpolicy *policy_mb(const struct policy *p) { return p->mb; }
const struct imapolicy *policy_ima(const struct policy *p) { return p->ima; }

void policy_ref(struct policy *p)
{
	atomic_fetch_add(&p->refs, 1);
}

void policy_unref(struct policy *p)
{
	if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	free(p->pcrs);
	mbpolicy_free(p->mb);
	imapolicy_free(p->ima);
	free(p);
}

static inline void policy_unrefp(struct policy **p) { policy_unref(*p); }

/* {"sha256": {"0": "hex", ...}, ...}: exact values a quote must show. */
static int parse_pcrs(const uint8_t *doc, size_t len, struct tpm_pcrs **ret, char **ret_summary)
{
	_cleanup_free_ struct tpm_pcrs *p = calloc(1, sizeof(*p));
	struct json_object *o = NULL;
	char summary[256] = "";
	size_t used = 0;
	int r;

	if (!p)
		return kq_err(-ENOMEM, "out of memory");
	r = json_parse_body(doc, len, PCR_POLICY_MAX, 3, &o);
	if (r < 0)
		return kq_err_ctx(r == -E2BIG ? r : -EBADMSG, "PCR policy: ");
	if (!json_object_is_type(o, json_type_object) || json_object_object_length(o) == 0) {
		json_object_put(o);
		return kq_err(-EBADMSG, "PCR policy: must be an object of bank: {PCR: hex value}");
	}
	r = 0;
	json_object_object_foreach(o, bank, vals) {
		uint16_t alg = kq_hash_from_name(bank);
		struct tpm_pcr_bank *b;
		size_t n = alg ? kq_hash_size(alg) : 0;

		if (!alg || !json_object_is_type(vals, json_type_object) || json_object_object_length(vals) == 0) {
			r = kq_err(-EBADMSG, "PCR policy: '%.16s' is not a known bank with PCR values", bank);
			break;
		}
		if ((r = tpm_pcrs_add_bank(p, alg, &b)) < 0) {
			r = kq_err_ctx(-EBADMSG, "PCR policy: ");
			break;
		}
		json_object_object_foreach(vals, idx, val) {
			uint64_t pcr;
			size_t got;

			if (kq_parse_uint(idx, TPM_NUM_PCRS - 1, &pcr) < 0 || !json_object_is_type(val, json_type_string) ||
			    kq_hex_decode(json_object_get_string(val), b->value[pcr], n, &got) < 0 || got != n) {
				r = kq_err(-EBADMSG, "PCR policy: %s PCR '%.8s' needs a %zu-byte hex value (PCRs 0-23)",
					   bank, idx, n);
				break;
			}
			b->mask |= 1u << pcr;
		}
		if (r < 0)
			break;
		used += (size_t)snprintf(summary + used, sizeof(summary) - used, "%s%s: %d PCRs",
					 used ? ", " : "", bank, __builtin_popcount(b->mask));
		if (used >= sizeof(summary))
			used = sizeof(summary) - 1;
	}
	json_object_put(o);
	if (r < 0)
		return r;
	*ret_summary = strdup(summary);
	if (!*ret_summary)
		return kq_err(-ENOMEM, "out of memory");
	*ret = TAKE_PTR(p);
	return 0;
}

int policy_compile(struct policies *ps, enum policy_kind kind, const uint8_t *doc, size_t len,
		   struct policy **ret, char **ret_summary)
{
	_cleanup_(policy_unrefp) struct policy *p = calloc(1, sizeof(*p));
	_cleanup_free_ char *summary = NULL;
	int r;

	if (!p)
		return kq_err(-ENOMEM, "out of memory");
	atomic_init(&p->refs, 1);
	p->kind = kind;
	switch (kind) {
	case POLICY_PCR:
		r = parse_pcrs(doc, len, &p->pcrs, &summary);
		break;
	case POLICY_MB:
		r = mbpolicy_parse(doc, len, &p->mb);
		if (r >= 0 && asprintf(&summary, "measured-boot reference state, %zu bytes", len) < 0)
			r = kq_err(-ENOMEM, "out of memory");
		break;
	case POLICY_IMA:
		r = imapolicy_parse(doc, len, &ps->ima_opts, &p->ima);
		if (r >= 0 && asprintf(&summary, "IMA runtime policy%s: %zu paths, %zu excludes, %zu signing keys",
				       imapolicy_was_signed(p->ima) ? " (signed)" : "", imapolicy_n_paths(p->ima),
				       imapolicy_n_excludes(p->ima), imapolicy_n_sig_keys(p->ima)) < 0)
			r = kq_err(-ENOMEM, "out of memory");
		break;
	default:
		return kq_err(-EINVAL, "unknown policy kind");
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(p);
	if (ret_summary)
		*ret_summary = TAKE_PTR(summary);
	return 0;
}

int policies_new(struct db *db, const struct verifier_config *cfg, struct policies **ret)
{
	struct policies *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return kq_err(-ENOMEM, "out of memory");
	ps->db = db;
	if (cfg->dsse_key) {
		ps->dsse_keys[0] = cfg->dsse_key;
		ps->ima_opts.dsse_keys = ps->dsse_keys;
		ps->ima_opts.n_dsse_keys = 1;
	}
	ps->ima_opts.require_signed = cfg->require_signed_ima;
	ps->ima_opts.allow_violations = cfg->allow_ima_violations;
	pthread_mutex_init(&ps->lock, NULL);
	*ret = ps;
	return 0;
}

void policies_free(struct policies *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++)
		policy_unref(ps->cache[i]);
	free(ps->cache);
	pthread_mutex_destroy(&ps->lock);
	free(ps);
}

int policies_get(struct policies *ps, const char *name, struct policy **ret)
{
	_cleanup_free_ char *kind_s = NULL;
	_cleanup_free_ uint8_t *doc = NULL;
	struct policy *p = NULL;
	enum policy_kind kind;
	size_t len;
	int r;

	pthread_mutex_lock(&ps->lock);
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(ps->cache[i]->name, name) == 0) {
			p = ps->cache[i];
			atomic_fetch_add(&p->refs, 1);
			break;
		}
	pthread_mutex_unlock(&ps->lock);
	if (p) {
		*ret = p;
		return 0;
	}

	/* compiled outside the lock: a big IMA policy takes a while */
	r = store_policy_load(ps->db, name, &kind_s, &doc, &len);
	if (r < 0)
		return r;
	if ((r = policy_kind_from_name(kind_s, &kind)) < 0 || (r = policy_compile(ps, kind, doc, len, &p, NULL)) < 0)
		return kq_err_ctx(r, "policy '%s': ", name);
	snprintf(p->name, sizeof(p->name), "%s", name);

	pthread_mutex_lock(&ps->lock);
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(ps->cache[i]->name, name) == 0) {
			/* compiled twice at once: keep the first */
			policy_unref(p);
			p = ps->cache[i];
			atomic_fetch_add(&p->refs, 1);
			pthread_mutex_unlock(&ps->lock);
			*ret = p;
			return 0;
		}
	if (ps->n == ps->cap) {
		struct policy **n = reallocarray(ps->cache, ps->cap ? ps->cap * 2 : 16, sizeof(*n));

		if (!n) {
			pthread_mutex_unlock(&ps->lock);
			*ret = p; /* usable, just not cached */
			return 0;
		}
		ps->cache = n;
		ps->cap = ps->cap ? ps->cap * 2 : 16;
	}
	atomic_fetch_add(&p->refs, 1);
	ps->cache[ps->n++] = p;
	pthread_mutex_unlock(&ps->lock);
	*ret = p;
	return 0;
}

void policies_forget(struct policies *ps, const char *name)
{
	pthread_mutex_lock(&ps->lock);
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(ps->cache[i]->name, name) == 0) {
			policy_unref(ps->cache[i]);
			ps->cache[i] = ps->cache[--ps->n];
			break;
		}
	pthread_mutex_unlock(&ps->lock);
}
