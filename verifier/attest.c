/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "attest.h"
#include "evlog/evlog.h"
#include "json/json.h"
#include "util/util.h"

/* The evidence document, as json_dispatch fills it. */
struct evidence {
	struct json_object *quote;
	char *boot_id;
	struct json_bytes uefi_log;
	struct json_object *ima;
};

static const struct json_field evidence_fields[] = {
	{ "quote", JSON_OBJECT, true, 8, offsetof(struct evidence, quote) },
	{ "boot_id", JSON_STRING, true, ATTEST_MAX_BOOT_ID, offsetof(struct evidence, boot_id) },
	{ "uefi_log", JSON_BASE64, false, ATTEST_MAX_UEFI_LOG, offsetof(struct evidence, uefi_log) },
	{ "ima", JSON_OBJECT, false, 8, offsetof(struct evidence, ima) },
	{}
};

struct quote_json {
	struct json_bytes message, signature, pcrs;
};

static const struct json_field quote_fields[] = {
	{ "message", JSON_BASE64, true, TPM_MAX_BLOB, offsetof(struct quote_json, message) },
	{ "signature", JSON_BASE64, true, TPM_MAX_BLOB, offsetof(struct quote_json, signature) },
	{ "pcrs", JSON_BASE64, true, TPM_MAX_BLOB, offsetof(struct quote_json, pcrs) },
	{}
};

struct ima_json {
	uint64_t offset, entries;
	char *format;
	struct json_bytes data;
};

static const struct json_field ima_fields[] = {
	{ "offset", JSON_UINT64, true, 0, offsetof(struct ima_json, offset) },
	{ "entries", JSON_UINT64, false, 0, offsetof(struct ima_json, entries) },
	{ "format", JSON_STRING, false, 16, offsetof(struct ima_json, format) },
	{ "data", JSON_BASE64, true, ATTEST_MAX_IMA_DATA, offsetof(struct ima_json, data) },
	{}
};

/* Large working values, on the heap rather than a daemon thread's stack. */
struct work {
	struct evidence ev;
	struct quote_json q;
	struct ima_json ij;
	TPMS_ATTEST attest;
	TPMT_SIGNATURE sig;
	struct tpm_pcrs pcrs;
	struct evlog_replay replay;
	struct ima_replay_state ima;
	struct attest_verdict v;
};

static void work_free(struct work *w)
{
	if (!w)
		return;
	json_dispatch_free(evidence_fields, &w->ev);
	json_dispatch_free(quote_fields, &w->q);
	json_dispatch_free(ima_fields, &w->ij);
	free(w);
}

static inline void work_freep(struct work **w) { work_free(*w); }

_printf_(5, 6)
static void fail(struct attest_verdict *v, const char *component, const char *code, int64_t index,
		 const char *fmt, ...)
{
	struct attest_failure *f;
	va_list ap;

	v->pass = false;
	if (v->n_failures >= ATTEST_MAX_FAILURES) {
		v->truncated = true;
		return;
	}
	f = &v->failures[v->n_failures++];
	snprintf(f->component, sizeof(f->component), "%s", component);
	snprintf(f->code, sizeof(f->code), "%s", code);
	f->index = index;
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
}

bool attest_verdict_has(const struct attest_verdict *v, const char *component, const char *code,
			int64_t index)
{
	for (size_t i = 0; i < v->n_failures; i++) {
		const struct attest_failure *f = &v->failures[i];

		if (strcmp(f->component, component) == 0 && strcmp(f->code, code) == 0 &&
		    (index == -2 || f->index == index))
			return true;
	}
	return false;
}

/* PCR bit mask of a selection for one bank (merged if the bank is listed twice). */
static uint32_t sel_mask(const TPML_PCR_SELECTION *sel, uint16_t alg, bool *ret_found)
{
	uint32_t mask = 0;

	*ret_found = false;
	for (uint32_t i = 0; i < sel->count && i < TPM2_NUM_PCR_BANKS; i++) {
		const TPMS_PCR_SELECTION *s = &sel->pcrSelections[i];

		if (s->hash != alg)
			continue;
		*ret_found = true;
		for (unsigned b = 0; b < s->sizeofSelect && b < 4 && b < TPM2_PCR_SELECT_MAX; b++)
			mask |= (uint32_t)s->pcrSelect[b] << (8 * b);
	}
	return mask;
}

static bool sel_covers(const TPML_PCR_SELECTION *a, const TPML_PCR_SELECTION *b)
{
	for (uint32_t i = 0; i < a->count && i < TPM2_NUM_PCR_BANKS; i++) {
		uint16_t alg = a->pcrSelections[i].hash;
		bool fa, fb;

		if (sel_mask(a, alg, &fa) != sel_mask(b, alg, &fb) || !fb)
			return false;
	}
	return true;
}

/* Same banks with the same PCRs; empty bank selections count as present. */
static bool sel_equal(const TPML_PCR_SELECTION *a, const TPML_PCR_SELECTION *b)
{
	return a->count <= TPM2_NUM_PCR_BANKS && b->count <= TPM2_NUM_PCR_BANKS &&
	       sel_covers(a, b) && sel_covers(b, a);
}

static const char *quote_code(int r)
{
	switch (r) {
	case TPM_E_SIGNATURE:
	case TPM_E_SIGNER:
		return "signature";
	case TPM_E_NONCE:
		return "nonce";
	case TPM_E_PCRS:
		return "pcr_digest";
	default:
		return "malformed";
	}
}

/* Steps 1-2. false: the quote cannot be trusted and evaluation stops. */
static bool check_quote(struct work *w, EVP_PKEY *ak, const uint8_t *nonce, size_t nonce_len,
			const TPML_PCR_SELECTION *asked, struct json_object *evidence)
{
	struct attest_verdict *v = &w->v;
	int r;

	if (!json_object_is_type(evidence, json_type_object) ||
	    json_dispatch(evidence, evidence_fields, &w->ev, true) < 0) {
		fail(v, "quote", "malformed", -1, "evidence: %s",
		     json_object_is_type(evidence, json_type_object) ? kq_errmsg() : "not a JSON object");
		return false;
	}
	if (json_dispatch(w->ev.quote, quote_fields, &w->q, false) < 0) {
		fail(v, "quote", "malformed", -1, "quote: %s", kq_errmsg());
		return false;
	}
	if (w->ev.ima && json_dispatch(w->ev.ima, ima_fields, &w->ij, false) < 0) {
		fail(v, "quote", "malformed", -1, "ima: %s", kq_errmsg());
		return false;
	}
	if (w->ij.format && strcmp(w->ij.format, "binary") != 0 && strcmp(w->ij.format, "ascii") != 0) {
		fail(v, "quote", "malformed", -1, "ima: format must be \"binary\" or \"ascii\"");
		return false;
	}
	if (tpm_signature_unmarshal(w->q.signature.data, w->q.signature.len, &w->sig) < 0) {
		fail(v, "quote", "malformed", -1, "quote signature: %s", kq_errmsg());
		return false;
	}
	if (tpm_pcrfile_parse(w->q.pcrs.data, w->q.pcrs.len, &w->pcrs) < 0) {
		fail(v, "quote", "malformed", -1, "quote PCR file: %s", kq_errmsg());
		return false;
	}
	r = tpm_quote_verify(&(struct tpm_quote_check){
				     .attest = w->q.message.data, .attest_len = w->q.message.len,
				     .sig = &w->sig, .key = ak, .nonce = nonce, .nonce_len = nonce_len,
				     .pcrs = &w->pcrs },
			     &w->attest);
	if (r < 0) {
		fail(v, "quote", quote_code(r), -1, "quote: %s", kq_errmsg());
		return false;
	}
	if (!sel_equal(&w->attest.attested.quote.pcrSelect, asked))
		fail(v, "quote", "selection", -1, "the quoted PCR selection is not the one asked for");
	return true;
}

/* Step 3; returns whether this quote starts a new boot for the IMA replay. */
static bool check_clock(struct work *w, const struct attest_state *st)
{
	const TPMS_CLOCK_INFO *ci = &w->attest.clockInfo;

	if (!st->have_quote)
		return true;
	if (strcmp(st->boot_id, w->ev.boot_id) != 0) {
		/* a reboot resets the TPM; a new boot_id without one would reset IMA for free */
		if (ci->resetCount == st->reset_count)
			fail(&w->v, "clock", "boot_without_reset", -1,
			     "the host reports a new boot but the TPM's resetCount is still %" PRIu32,
			     st->reset_count);
		return true;
	}
	if (ci->resetCount != st->reset_count)
		fail(&w->v, "clock", "reset", -1,
		     "TPM resetCount changed from %" PRIu32 " to %" PRIu32 " within boot %s",
		     st->reset_count, (uint32_t)ci->resetCount, st->boot_id);
	if (ci->clock <= st->clock)
		fail(&w->v, "clock", "clock_went_back", -1,
		     "TPM clock %" PRIu64 " is not after the last accepted %" PRIu64,
		     (uint64_t)ci->clock, st->clock);
	return false;
}

/* Step 4. */
static void check_static(struct work *w, const struct tpm_pcrs *want)
{
	for (size_t b = 0; b < want->nbanks; b++) {
		const struct tpm_pcr_bank *wb = &want->bank[b];
		const struct tpm_pcr_bank *qb = tpm_pcrs_bank(&w->pcrs, wb->alg);
		size_t n = kq_hash_size(wb->alg);

		for (unsigned p = 0; p < TPM_NUM_PCRS; p++) {
			if (!(wb->mask & (1u << p)))
				continue;
			if (!qb || !(qb->mask & (1u << p)))
				fail(&w->v, "pcr", "not_quoted", p, "PCR %u (%s) has a required value but was not quoted",
				     p, kq_hash_name(wb->alg));
			else if (CRYPTO_memcmp(qb->value[p], wb->value[p], n) != 0)
				fail(&w->v, "pcr", "pcr_mismatch", p, "PCR %u (%s) differs from the policy's value",
				     p, kq_hash_name(wb->alg));
		}
	}
}

/* Step 5. Negative only for an internal error. */
static int check_eventlog(struct work *w, const struct attest_policy *pol)
{
	static const uint8_t zero[KQ_MAX_DIGEST];
	_cleanup_(evlog_freep) struct evlog *log = NULL;
	struct mbpolicy_result res = {};
	uint32_t mb_pcrs = pol->mb_pcrs ? pol->mb_pcrs : ATTEST_MB_PCRS_DEFAULT;
	uint32_t quoted_any = 0;
	bool replay_ok = true;
	int r;

	for (size_t b = 0; b < w->pcrs.nbanks; b++)
		quoted_any |= w->pcrs.bank[b].mask;

	if (!w->ev.uefi_log.data) {
		/* Without a policy, nothing would be learnt from the log but its consistency. */
		if (pol->mb)
			fail(&w->v, "eventlog", "missing", -1, "the evidence has no UEFI event log");
		return 0;
	}
	if (pol->mb && (mb_pcrs & ~quoted_any & ((1u << TPM_NUM_PCRS) - 1))) {
		fail(&w->v, "eventlog", "pcr_not_quoted", -1,
		     "the measured-boot policy needs PCRs 0x%" PRIx32 " quoted, the quote has 0x%" PRIx32,
		     mb_pcrs, quoted_any);
		replay_ok = false;
	}
	r = evlog_parse(w->ev.uefi_log.data, w->ev.uefi_log.len, &log);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		fail(&w->v, "eventlog", "malformed", -1, "UEFI event log: %s", kq_errmsg());
		return 0;
	}
	r = evlog_replay(log, &w->replay);
	if (r < 0)
		return r;

	for (size_t b = 0; b < w->pcrs.nbanks; b++) {
		const struct tpm_pcr_bank *qb = &w->pcrs.bank[b];
		const struct evlog_pcr_bank *rb;
		uint32_t check = qb->mask & mb_pcrs;
		size_t n = kq_hash_size(qb->alg);

		if (!check)
			continue;
		rb = evlog_replay_bank(&w->replay, qb->alg);
		if (!rb) {
			fail(&w->v, "eventlog", "missing_bank", -1, "the UEFI event log has no %s bank",
			     kq_hash_name(qb->alg));
			replay_ok = false;
			continue;
		}
		for (unsigned p = 0; p < TPM_NUM_PCRS; p++) {
			const uint8_t *want;

			if (!(check & (1u << p)))
				continue;
			want = (rb->touched & (1u << p)) ? rb->pcrs[p] : zero;
			if (CRYPTO_memcmp(want, qb->value[p], n) != 0) {
				fail(&w->v, "eventlog", "replay_mismatch", p,
				     "PCR %u (%s): the UEFI event log replays to another value than quoted",
				     p, kq_hash_name(qb->alg));
				replay_ok = false;
			}
		}
	}

	/* Policy decisions on a log that does not explain the quote would rest on fiction. */
	if (!pol->mb || !replay_ok)
		return 0;
	r = mbpolicy_check(pol->mb, log, &res);
	if (r < 0)
		return r;
	for (size_t i = 0; i < res.n_failures; i++) {
		const struct mbpolicy_failure *f = &res.failures[i];

		fail(&w->v, "mb", f->reason, f->event == MBPOLICY_NO_EVENT ? -1 : (int64_t)f->event, "%s",
		     f->message ? f->message : f->reason);
	}
	mbpolicy_result_free(&res);
	return 0;
}

/* The first quoted bank with PCR 10, or NULL. */
static const struct tpm_pcr_bank *ima_quote_bank(const struct tpm_pcrs *pcrs)
{
	for (size_t b = 0; b < pcrs->nbanks; b++)
		if (pcrs->bank[b].mask & (1u << IMA_PCR))
			return &pcrs->bank[b];
	return NULL;
}

/*
 * Whether PCR 10 and every other PCR the replay has extended so far equal the
 * quoted values (PCR 10 always: a list with no entries must meet a zero PCR).
 */
static bool ima_matches(const struct ima_replay_state *st, const struct tpm_pcr_bank *qb)
{
	size_t n = kq_hash_size(qb->alg);

	for (unsigned p = 0; p < IMA_NUM_PCRS; p++) {
		const uint8_t *val;

		if (!((st->pcrs_used | (1u << IMA_PCR)) & (1u << p)))
			continue;
		val = ima_replay_pcr(st, p, qb->alg);
		if (!(qb->mask & (1u << p)) || !val || CRYPTO_memcmp(val, qb->value[p], n) != 0)
			return false;
	}
	return true;
}

/* Step 6. Negative only for an internal error. */
static int check_ima(struct work *w, const struct attest_policy *pol, const struct attest_state *st,
		     bool new_boot)
{
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	const struct tpm_pcr_bank *qb = ima_quote_bank(&w->pcrs);
	struct ima_parse_opts opts = {};
	uint64_t expect;
	size_t n, i, consumed;
	bool matched;
	int r;

	if (!w->ev.ima) {
		if (pol->ima)
			fail(&w->v, "ima", "missing", -1, "the evidence has no IMA list");
		return 0;
	}
	if (new_boot)
		ima_replay_init(&w->ima, IMA_BANKS_DEFAULT | (qb ? ima_bank_from_alg(qb->alg) : 0), 0);
	else
		w->ima = st->ima;
	expect = w->ima.next_index;
	if (w->ij.offset != expect) {
		fail(&w->v, "ima", "offset_mismatch", (int64_t)w->ij.offset,
		     "the IMA list starts at entry %" PRIu64 ", the verifier expected %" PRIu64,
		     w->ij.offset, expect);
		return 0;
	}
	if (!qb) {
		fail(&w->v, "ima", "pcr_not_quoted", IMA_PCR, "PCR %d was not quoted", IMA_PCR);
		return 0;
	}
	if (!(w->ima.banks & ima_bank_from_alg(qb->alg))) {
		fail(&w->v, "ima", "bank_unavailable", IMA_PCR,
		     "the stored IMA replay has no %s bank; PCR 10 must be quoted in the same bank every round",
		     kq_hash_name(qb->alg));
		return 0;
	}

	opts.format = !w->ij.format ? IMA_FORMAT_AUTO :
		      strcmp(w->ij.format, "ascii") == 0 ? IMA_FORMAT_ASCII : IMA_FORMAT_BINARY;
	opts.first_index = w->ij.offset;
	r = ima_list_parse(w->ij.data.data, w->ij.data.len, &opts, &l);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		fail(&w->v, "ima", "malformed", -1, "IMA list: %s", kq_errmsg());
		return 0;
	}

	/*
	 * The host reads its list after quoting, so the list may run past the
	 * quote: the quote covers the shortest prefix whose replay equals every
	 * PCR the list extends (a hash chain matches at one point only). Entries
	 * after it are left for the next round.
	 */
	matched = ima_matches(&w->ima, qb);
	for (i = 0; i < l->n_entries && !matched; i++) {
		if (l->entries[i].index < expect)
			continue;
		r = ima_replay_entry(&w->ima, &l->entries[i]);
		if (r == -ENOMEM || r == -EIO)
			return r;
		if (r < 0) {
			fail(&w->v, "ima", "malformed", (int64_t)l->entries[i].index, "IMA replay: %s", kq_errmsg());
			return 0;
		}
		matched = ima_matches(&w->ima, qb);
	}
	consumed = i;

	if (!matched) {
		/* Every PCR the list has ever extended must be quoted and equal. */
		n = kq_hash_size(qb->alg);
		for (unsigned p = 0; p < IMA_NUM_PCRS; p++) {
			const uint8_t *val;

			if (!((w->ima.pcrs_used | (1u << IMA_PCR)) & (1u << p)))
				continue;
			val = ima_replay_pcr(&w->ima, p, qb->alg);
			if (!(qb->mask & (1u << p)))
				fail(&w->v, "ima", "pcr_not_quoted", p,
				     "the IMA list extends PCR %u, which was not quoted in %s", p,
				     kq_hash_name(qb->alg));
			else if (!val || CRYPTO_memcmp(val, qb->value[p], n) != 0)
				fail(&w->v, "ima", p == IMA_PCR ? "pcr10_mismatch" : "replay_mismatch", p,
				     "PCR %u (%s): no prefix of the IMA list replays to the quoted value", p,
				     kq_hash_name(qb->alg));
		}
	}

	for (i = 0; i < consumed; i++) {
		const struct ima_entry *e = &l->entries[i];
		struct imapolicy_verdict iv;

		if (e->index < expect)
			continue;
		if (ima_entry_is_bad(e)) {
			fail(&w->v, "ima", "template_hash_mismatch", (int64_t)e->index,
			     "IMA entry %" PRIu64 ": the template hash does not match its data", e->index);
			continue;
		}
		if (!pol->ima)
			continue;
		r = imapolicy_check_entry(pol->ima, e, &iv);
		if (r < 0)
			return r;
		if (!iv.ok)
			fail(&w->v, "ima", iv.reason, (int64_t)e->index, "%s", iv.message);
	}
	return 0;
}

int attest_host(const struct attest_policy *pol, EVP_PKEY *ak, const uint8_t *nonce,
		size_t nonce_len, const TPML_PCR_SELECTION *asked, struct json_object *evidence,
		struct attest_state *state, struct attest_verdict *ret)
{
	static const struct attest_policy none = {};
	_cleanup_(work_freep) struct work *w = NULL;
	bool new_boot;
	int r;

	if (!ak || !nonce || nonce_len == 0 || !asked || !evidence || !state || !ret)
		return kq_err(-EINVAL, "attest_host: missing argument");
	if (!pol)
		pol = &none;
	w = calloc(1, sizeof(*w));
	if (!w)
		return kq_err(-ENOMEM, "out of memory");
	w->v.pass = true;

	if (!check_quote(w, ak, nonce, nonce_len, asked, evidence))
		goto done;
	new_boot = check_clock(w, state);
	if (pol->static_pcrs)
		check_static(w, pol->static_pcrs);
	r = check_eventlog(w, pol);
	if (r < 0)
		return r;
	r = check_ima(w, pol, state, new_boot);
	if (r < 0)
		return r;

	if (w->v.pass) {
		state->have_quote = true;
		state->clock = w->attest.clockInfo.clock;
		state->reset_count = w->attest.clockInfo.resetCount;
		state->restart_count = w->attest.clockInfo.restartCount;
		snprintf(state->boot_id, sizeof(state->boot_id), "%s", w->ev.boot_id);
		if (w->ev.ima)
			state->ima = w->ima;
		else if (new_boot)
			ima_replay_init(&state->ima, 0, 0);
	}
done:
	*ret = w->v;
	return 0;
}

/* ---- the compact form of attest_state ---- */

#define PACK_MAGIC "KQS2"
#define PACK_V1_MAGIC 0x4b515331u /* "KQS1": the whole struct as this build laid it out */

struct pack_v1_header {
	uint32_t magic;
	uint32_t size;
};

static void put_u32(uint8_t **p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		*(*p)++ = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t **p, uint64_t v)
{
	for (unsigned i = 0; i < 8; i++)
		*(*p)++ = (uint8_t)(v >> (8 * i));
}

static bool digest_zero(const uint8_t *d)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < KQ_MAX_DIGEST; i++)
		acc |= d[i];
	return acc == 0;
}

int attest_state_pack(const struct attest_state *st, uint8_t **ret, size_t *ret_len)
{
	const struct ima_replay_state *ima = &st->ima;
	size_t blen = strnlen(st->boot_id, ATTEST_MAX_BOOT_ID), n_digests = 0, len;
	uint32_t mask[IMA_NUM_BANKS] = { 0 };
	uint8_t *buf, *p;

	for (unsigned b = 0; b < IMA_NUM_BANKS; b++)
		for (unsigned i = 0; i < IMA_NUM_PCRS; i++)
			if (!digest_zero(ima->pcr[i][b])) {
				mask[b] |= 1u << i;
				n_digests++;
			}
	len = 4 + 1 + 8 + 4 + 4 + 1 + blen + 8 + 4 + 4 + 8 + 8 + 8 + 4 * IMA_NUM_BANKS + n_digests * KQ_MAX_DIGEST;
	p = buf = malloc(len);
	if (!buf)
		return kq_err(-ENOMEM, "out of memory");
	memcpy(p, PACK_MAGIC, 4);
	p += 4;
	*p++ = st->have_quote ? 1 : 0;
	put_u64(&p, st->clock);
	put_u32(&p, st->reset_count);
	put_u32(&p, st->restart_count);
	*p++ = (uint8_t)blen;
	memcpy(p, st->boot_id, blen);
	p += blen;
	put_u64(&p, ima->next_index);
	put_u32(&p, ima->banks);
	put_u32(&p, ima->pcrs_used);
	put_u64(&p, ima->violations);
	put_u64(&p, ima->bad_entries);
	put_u64(&p, ima->first_bad);
	for (unsigned b = 0; b < IMA_NUM_BANKS; b++)
		put_u32(&p, mask[b]);
	for (unsigned b = 0; b < IMA_NUM_BANKS; b++)
		for (unsigned i = 0; i < IMA_NUM_PCRS; i++)
			if (mask[b] & (1u << i)) {
				memcpy(p, ima->pcr[i][b], KQ_MAX_DIGEST);
				p += KQ_MAX_DIGEST;
			}
	*ret = buf;
	*ret_len = len;
	return 0;
}

int attest_state_unpack(const uint8_t *buf, size_t len, struct attest_state *ret)
{
	struct attest_state st = { 0 };
	struct kq_cur c = kq_cur_init(buf, len);
	uint32_t mask[IMA_NUM_BANKS];
	uint8_t have, blen;
	int r = 0;

	if (!buf)
		return kq_err(-EBADMSG, "no replay state");
	if (len == sizeof(struct pack_v1_header) + sizeof(st)) {
		struct pack_v1_header h;

		memcpy(&h, buf, sizeof(h));
		if (h.magic == PACK_V1_MAGIC && h.size == sizeof(st)) {
			memcpy(&st, buf + sizeof(h), sizeof(st));
			st.boot_id[ATTEST_MAX_BOOT_ID] = '\0';
			*ret = st;
			return 0;
		}
	}
	if (len < 4 || memcmp(buf, PACK_MAGIC, 4) != 0)
		return kq_err(-EBADMSG, "the replay state is of an unknown format");
	kq_cur_skip(&c, 4);
	if ((r = kq_cur_u8(&c, &have)) < 0 || have > 1 || (r = kq_cur_u64le(&c, &st.clock)) < 0 ||
	    (r = kq_cur_u32le(&c, &st.reset_count)) < 0 || (r = kq_cur_u32le(&c, &st.restart_count)) < 0 ||
	    (r = kq_cur_u8(&c, &blen)) < 0 || blen > ATTEST_MAX_BOOT_ID || (r = kq_cur_copy(&c, st.boot_id, blen)) < 0 ||
	    (r = kq_cur_u64le(&c, &st.ima.next_index)) < 0 || (r = kq_cur_u32le(&c, &st.ima.banks)) < 0 ||
	    (r = kq_cur_u32le(&c, &st.ima.pcrs_used)) < 0 || (r = kq_cur_u64le(&c, &st.ima.violations)) < 0 ||
	    (r = kq_cur_u64le(&c, &st.ima.bad_entries)) < 0 || (r = kq_cur_u64le(&c, &st.ima.first_bad)) < 0)
		return kq_err(-EBADMSG, "the replay state is truncated or malformed");
	st.have_quote = have;
	for (unsigned b = 0; b < IMA_NUM_BANKS; b++)
		if (kq_cur_u32le(&c, &mask[b]) < 0 || (IMA_NUM_PCRS < 32 && (mask[b] >> IMA_NUM_PCRS) != 0))
			return kq_err(-EBADMSG, "the replay state is truncated or malformed");
	for (unsigned b = 0; b < IMA_NUM_BANKS; b++)
		for (unsigned i = 0; i < IMA_NUM_PCRS; i++)
			if ((mask[b] & (1u << i)) && kq_cur_copy(&c, st.ima.pcr[i][b], KQ_MAX_DIGEST) < 0)
				return kq_err(-EBADMSG, "the replay state is truncated");
	if (kq_cur_left(&c) != 0)
		return kq_err(-EBADMSG, "the replay state has trailing bytes");
	*ret = st;
	return 0;
}
