/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verifier/attest on a real HPE server's evidence: quote, UEFI event log and
 * IMA list as the host agent would return them. It passes with and without
 * policies, and each kind of tampering is reported with its component, code
 * and index.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "attest.h"
#include "json/json.h"
#include "testlib.h"

#define HPE_QUOTE "quote/hpe-real-quote-with-logs.json"
#define HPE_UEFI "eventlog/hpe-perf-uefi.bin"
#define HPE_IMA "ima/hpe-perf-ima-ng-sha256.txt"
#define HPE_MB "policy/keylime-mb-refstate-hpe.json"
#define HPE_IMA_ENTRIES 780
#define BOOT_ID "3f1f6c1e-0000-4000-8000-000000000001"

static struct {
	struct tpm_key ak;
	uint8_t nonce[64];
	size_t nonce_len;
	char *msg, *sig, *pcrs; /* base64, as in the evidence */
	uint8_t *uefi, *ima;
	size_t uefi_len, ima_len;
	TPML_PCR_SELECTION asked;
} g;

static inline void putp(struct json_object **o) { json_object_put(*o); }

static TPML_PCR_SELECTION sel_sha256(uint32_t mask)
{
	TPML_PCR_SELECTION s = { .count = 1 };

	s.pcrSelections[0].hash = KQ_ALG_SHA256;
	s.pcrSelections[0].sizeofSelect = 3;
	for (unsigned b = 0; b < 3; b++)
		s.pcrSelections[0].pcrSelect[b] = (uint8_t)(mask >> (8 * b));
	return s;
}

static int setup(void **state)
{
	_cleanup_(putp) struct json_object *d = testdata_json(HPE_QUOTE);
	size_t ak_len;
	_cleanup_free_ uint8_t *akb = test_b64(jstr(d, "ak_tpm_b64"), &ak_len);

	assert_int_equal(tpm_key_load(akb, ak_len, &g.ak), 0);
	assert_int_equal(kq_hex_decode(jstr(d, "nonce_hex"), g.nonce, sizeof(g.nonce), &g.nonce_len), 0);
	g.msg = strdup(jstr(d, "message_b64"));
	g.sig = strdup(jstr(d, "signature_b64"));
	g.pcrs = strdup(jstr(d, "subject_data_b64"));
	assert_true(g.msg && g.sig && g.pcrs);
	g.uefi = testdata_load(HPE_UEFI, &g.uefi_len);
	g.ima = testdata_load(HPE_IMA, &g.ima_len);
	g.asked = sel_sha256(0x1ffff);
	return 0;
}

static int teardown(void **state)
{
	tpm_key_clear(&g.ak);
	free(g.msg);
	free(g.sig);
	free(g.pcrs);
	free(g.uefi);
	free(g.ima);
	return 0;
}

/* The evidence document the host agent would send; uefi/ima NULL: the golden ones. */
static struct json_object *evidence(const uint8_t *uefi, size_t uefi_len, const uint8_t *ima,
				    size_t ima_len, uint64_t offset)
{
	struct json_object *e = json_object_new_object(), *q = json_object_new_object();
	struct json_object *i = json_object_new_object();

	if (!uefi) {
		uefi = g.uefi;
		uefi_len = g.uefi_len;
	}
	if (!ima) {
		ima = g.ima;
		ima_len = g.ima_len;
	}
	json_object_object_add(q, "message", json_object_new_string(g.msg));
	json_object_object_add(q, "signature", json_object_new_string(g.sig));
	json_object_object_add(q, "pcrs", json_object_new_string(g.pcrs));
	json_object_object_add(e, "quote", q);
	json_object_object_add(e, "boot_id", json_object_new_string(BOOT_ID));
	json_object_object_add(e, "uefi_log", json_new_base64(uefi, uefi_len));
	json_object_object_add(i, "offset", json_object_new_uint64(offset));
	json_object_object_add(i, "entries", json_object_new_uint64(HPE_IMA_ENTRIES));
	json_object_object_add(i, "format", json_object_new_string("ascii"));
	json_object_object_add(i, "data", json_new_base64(ima, ima_len));
	json_object_object_add(e, "ima", i);
	return e;
}

static void dump(const struct attest_verdict *v)
{
	for (size_t i = 0; i < v->n_failures; i++)
		fprintf(stderr, "  %s %s %" PRId64 ": %s\n", v->failures[i].component, v->failures[i].code,
			v->failures[i].index, v->failures[i].message);
}

/* Evaluates and returns the verdict (heap: the structs are large). */
static struct attest_verdict *run(const struct attest_policy *pol, const uint8_t *nonce,
				  const TPML_PCR_SELECTION *asked, struct json_object *ev,
				  struct attest_state *st)
{
	struct attest_verdict *v = calloc(1, sizeof(*v));

	assert_non_null(v);
	assert_int_equal(attest_host(pol, g.ak.pkey, nonce ? nonce : g.nonce, g.nonce_len,
				     asked ? asked : &g.asked, ev, st, v), 0);
	return v;
}

static void expect_pass(const struct attest_policy *pol, struct json_object *ev, struct attest_state *st)
{
	_cleanup_free_ struct attest_verdict *v = run(pol, NULL, NULL, ev, st);

	if (!v->pass)
		dump(v);
	assert_true(v->pass);
	assert_int_equal(v->n_failures, 0);
}

static void expect_fail(const struct attest_policy *pol, const uint8_t *nonce,
			const TPML_PCR_SELECTION *asked, struct json_object *ev,
			struct attest_state *st, const char *component, const char *code, int64_t index)
{
	_cleanup_free_ struct attest_verdict *v = NULL;
	_cleanup_free_ struct attest_state *before = malloc(sizeof(*before));

	assert_non_null(before);
	*before = *st;
	v = run(pol, nonce, asked, ev, st);
	if (!attest_verdict_has(v, component, code, index)) {
		dump(v);
		fail_msg("expected %s %s %" PRId64, component, code, index);
	}
	assert_false(v->pass);
	/* a failed round leaves the state alone */
	assert_memory_equal(before, st, sizeof(*st));
}

static struct attest_state *new_state(void)
{
	struct attest_state *st = calloc(1, sizeof(*st));

	assert_non_null(st);
	return st;
}

static struct imapolicy *ima_policy(const char *drop_path)
{
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	_cleanup_(putp) struct json_object *pol = json_object_new_object();
	struct json_object *meta = json_object_new_object(), *dig = json_object_new_object();
	struct imapolicy *p = NULL;
	const char *s;

	assert_int_equal(ima_list_parse(g.ima, g.ima_len, NULL, &l), 0);
	json_object_object_add(meta, "version", json_object_new_int(1));
	json_object_object_add(pol, "meta", meta);
	json_object_object_add(pol, "digests", dig);
	json_object_object_add(pol, "excludes", json_object_new_array());
	for (size_t i = 0; i < l->n_entries; i++) {
		const struct ima_entry *e = &l->entries[i];
		struct json_object *arr = json_object_object_get(dig, e->path);
		char hex[2 * KQ_MAX_DIGEST + 1];

		if (drop_path && strcmp(drop_path, e->path) == 0)
			continue;
		if (!arr) {
			arr = json_object_new_array();
			json_object_object_add(dig, e->path, arr);
		}
		kq_hex_encode(e->digest, e->digest_len, hex);
		json_object_array_add(arr, json_object_new_string(hex));
	}
	s = json_object_to_json_string_ext(pol, JSON_C_TO_STRING_PLAIN);
	assert_int_equal(imapolicy_parse((const uint8_t *)s, strlen(s), NULL, &p), 0);
	return p;
}

static struct mbpolicy *mb_policy(void)
{
	size_t len;
	_cleanup_free_ uint8_t *buf = testdata_load(HPE_MB, &len);
	struct mbpolicy *p = NULL;

	assert_int_equal(mbpolicy_parse(buf, len, &p), 0);
	return p;
}

static void test_pass_no_policy(void **state)
{
	_cleanup_(putp) struct json_object *ev = evidence(NULL, 0, NULL, 0, 0);
	_cleanup_free_ struct attest_state *st = new_state();

	expect_pass(NULL, ev, st);
	assert_true(st->have_quote);
	assert_int_equal(st->clock, 6041444362u);
	assert_int_equal(st->reset_count, 43);
	assert_string_equal(st->boot_id, BOOT_ID);
	assert_int_equal(st->ima.next_index, HPE_IMA_ENTRIES);
}

static void test_pass_policies(void **state)
{
	_cleanup_(putp) struct json_object *ev = evidence(NULL, 0, NULL, 0, 0);
	_cleanup_free_ struct attest_state *st = new_state();
	_cleanup_(imapolicy_freep) struct imapolicy *ip = ima_policy(NULL);
	_cleanup_(mbpolicy_freep) struct mbpolicy *mp = mb_policy();
	struct attest_policy pol = { .mb = mp, .ima = ip };

	expect_pass(&pol, ev, st);
	assert_int_equal(st->ima.next_index, HPE_IMA_ENTRIES);
}

static void test_wrong_nonce(void **state)
{
	_cleanup_(putp) struct json_object *ev = evidence(NULL, 0, NULL, 0, 0);
	_cleanup_free_ struct attest_state *st = new_state();
	uint8_t nonce[64];

	memcpy(nonce, g.nonce, g.nonce_len);
	nonce[0] ^= 1;
	expect_fail(NULL, nonce, NULL, ev, st, "quote", "nonce", -1);
}

static void test_malformed(void **state)
{
	_cleanup_(putp) struct json_object *ev = evidence(NULL, 0, NULL, 0, 0);
	_cleanup_free_ struct attest_state *st = new_state();

	json_object_object_add(json_object_object_get(ev, "quote"), "pcrs",
			       json_object_new_string("not base64!"));
	expect_fail(NULL, NULL, NULL, ev, st, "quote", "malformed", -1);
}

static void test_eventlog_flipped(void **state)
{
	_cleanup_(evlog_freep) struct evlog *log = NULL;
	_cleanup_free_ uint8_t *buf = malloc(g.uefi_len);
	_cleanup_(putp) struct json_object *ev = NULL;
	_cleanup_free_ struct attest_state *st = new_state();
	const struct evlog_event *e = NULL;

	assert_non_null(buf);
	memcpy(buf, g.uefi, g.uefi_len);
	assert_int_equal(evlog_parse(g.uefi, g.uefi_len, &log), 0);
	assert_int_equal(evlog_bank_alg(log, 0), KQ_ALG_SHA256);
	for (size_t i = 1; i < evlog_n_events(log); i++) {
		e = evlog_event(log, i);
		if (e->extends && e->pcr == 4)
			break;
	}
	assert_true(e && e->pcr == 4);
	/* TCG_PCR_EVENT2: PCRIndex, EventType, digest count, then the first bank's alg and digest */
	buf[e->offset + 4 + 4 + 4 + 2] ^= 0x01;
	ev = evidence(buf, g.uefi_len, NULL, 0, 0);
	expect_fail(NULL, NULL, NULL, ev, st, "eventlog", "replay_mismatch", 4);
}

/* The ascii list with entry k's file digest changed in its first hex digit. */
static uint8_t *ima_changed(size_t k)
{
	uint8_t *buf = malloc(g.ima_len + 1);
	char *line, *d;

	assert_non_null(buf);
	memcpy(buf, g.ima, g.ima_len);
	buf[g.ima_len] = 0;
	line = (char *)buf;
	for (size_t i = 0; i < k; i++) {
		line = strchr(line, '\n');
		assert_non_null(line);
		line++;
	}
	d = strstr(line, "sha256:");
	assert_non_null(d);
	d += strlen("sha256:");
	*d = *d == '0' ? '1' : '0';
	return buf;
}

static void test_ima_tampered(void **state)
{
	_cleanup_free_ uint8_t *buf = ima_changed(100);
	_cleanup_(putp) struct json_object *ev = evidence(NULL, 0, buf, g.ima_len, 0);
	_cleanup_free_ struct attest_state *st = new_state();

	expect_fail(NULL, NULL, NULL, ev, st, "ima", "template_hash_mismatch", 100);
	expect_fail(NULL, NULL, NULL, ev, st, "ima", "pcr10_mismatch", 10);
}

static void test_ima_not_allowed(void **state)
{
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	_cleanup_(imapolicy_freep) struct imapolicy *ip = NULL;
	_cleanup_(putp) struct json_object *ev = evidence(NULL, 0, NULL, 0, 0);
	_cleanup_free_ struct attest_state *st = new_state();
	_cleanup_free_ struct attest_verdict *v = NULL;
	const size_t k = 100;
	size_t n = 0;

	assert_int_equal(ima_list_parse(g.ima, g.ima_len, NULL, &l), 0);
	ip = ima_policy(l->entries[k].path);
	{
		struct attest_policy pol = { .ima = ip };

		expect_fail(&pol, NULL, NULL, ev, st, "ima", "not_in_allowlist", k);
		v = run(&pol, NULL, NULL, ev, st);
	}
	/* only the entries with that path fail */
	for (size_t i = 0; i < l->n_entries; i++)
		n += strcmp(l->entries[i].path, l->entries[k].path) == 0;
	assert_int_equal(v->n_failures, n < ATTEST_MAX_FAILURES ? n : ATTEST_MAX_FAILURES);
}

static void test_static_pcr(void **state)
{
	_cleanup_(putp) struct json_object *ev = evidence(NULL, 0, NULL, 0, 0);
	_cleanup_free_ struct attest_state *st = new_state();
	_cleanup_free_ struct tpm_pcrs *want = calloc(1, sizeof(*want));
	struct tpm_pcr_bank *b;

	assert_non_null(want);
	assert_int_equal(tpm_pcrs_add_bank(want, KQ_ALG_SHA256, &b), 0);
	b->mask = 1u << 7;
	assert_int_equal(kq_hex_decode("89841f5a9ab230d94ce59592b15bd839b595e7f18c04a6278ab6dc355712cc5a",
				       b->value[7], KQ_MAX_DIGEST, &(size_t){ 0 }), 0);
	{
		struct attest_policy pol = { .static_pcrs = want };

		expect_pass(&pol, ev, st);
	}
	memset(st, 0, sizeof(*st));
	b->value[7][31] ^= 1;
	{
		struct attest_policy pol = { .static_pcrs = want };

		expect_fail(&pol, NULL, NULL, ev, st, "pcr", "pcr_mismatch", 7);
	}
}

static void test_replayed_quote(void **state)
{
	_cleanup_(putp) struct json_object *ev = evidence(NULL, 0, NULL, 0, 0);
	_cleanup_free_ struct attest_state *st = new_state();

	expect_pass(NULL, ev, st);
	/* the same quote again: its clock is not newer than the accepted one */
	expect_fail(NULL, NULL, NULL, ev, st, "clock", "clock_went_back", -1);
	/* and the list no longer starts where the verifier stands */
	expect_fail(NULL, NULL, NULL, ev, st, "ima", "offset_mismatch", 0);
	/* a resetCount change within one boot */
	st->clock = 1;
	st->reset_count = 42;
	expect_fail(NULL, NULL, NULL, ev, st, "clock", "reset", -1);
}

static void test_new_boot(void **state)
{
	_cleanup_(putp) struct json_object *ev = evidence(NULL, 0, NULL, 0, 0);
	_cleanup_free_ struct attest_state *st = new_state();

	expect_pass(NULL, ev, st);
	/* another boot_id without a TPM reset would restart IMA for free */
	snprintf(st->boot_id, sizeof(st->boot_id), "another-boot");
	expect_fail(NULL, NULL, NULL, ev, st, "clock", "boot_without_reset", -1);
	/* with one: the clock is not compared and the IMA replay restarts at 0 */
	st->reset_count = 42;
	expect_pass(NULL, ev, st);
	assert_string_equal(st->boot_id, BOOT_ID);
	assert_int_equal(st->ima.next_index, HPE_IMA_ENTRIES);
}

/*
 * The host reads its IMA list after quoting: entries past the quote are not
 * consumed (the state stops where the quote's PCR 10 is met) and are asked
 * for again next round. An empty list must meet the quote too.
 */
static void test_ima_past_quote(void **state)
{
	_cleanup_free_ struct attest_state *st = new_state();
	_cleanup_free_ uint8_t *longer = malloc(g.ima_len * 2);
	_cleanup_(putp) struct json_object *ev = NULL, *empty = NULL, *nothing_new = NULL;
	const uint8_t *nl = memchr(g.ima, '\n', g.ima_len);
	size_t first_line = (size_t)(nl - g.ima) + 1;

	/* the list's first two entries again after its end: a valid, longer list */
	assert_non_null(longer);
	memcpy(longer, g.ima, g.ima_len);
	memcpy(longer + g.ima_len, g.ima, first_line * 2);
	ev = evidence(NULL, 0, longer, g.ima_len + first_line * 2, 0);

	/* a new boot with an empty list cannot explain the quoted PCR 10 */
	empty = evidence(NULL, 0, (const uint8_t *)"", 0, 0);
	expect_fail(NULL, NULL, NULL, empty, st, "ima", "pcr10_mismatch", 10);

	expect_pass(NULL, ev, st);
	assert_int_equal(st->ima.next_index, HPE_IMA_ENTRIES);

	/* next round: nothing new was quoted, the list is asked for from 780 on */
	st->clock = 1;
	nothing_new = evidence(NULL, 0, (const uint8_t *)"", 0, HPE_IMA_ENTRIES);
	expect_pass(NULL, nothing_new, st);
	assert_int_equal(st->ima.next_index, HPE_IMA_ENTRIES);
}

static void test_selection(void **state)
{
	_cleanup_(putp) struct json_object *ev = evidence(NULL, 0, NULL, 0, 0);
	_cleanup_free_ struct attest_state *st = new_state();
	TPML_PCR_SELECTION asked = sel_sha256(0xffff);

	expect_fail(NULL, NULL, &asked, ev, st, "quote", "selection", -1);
	asked = sel_sha256(0x1ffff);
	asked.pcrSelections[0].hash = KQ_ALG_SHA1;
	expect_fail(NULL, NULL, &asked, ev, st, "quote", "selection", -1);
}

/*
 * Incremental rounds: the real quote's PCR 10 covers all 780 entries, so a
 * first round with entries 0..399 alone cannot pass (pcr10_mismatch, state
 * untouched). The state arithmetic is checked instead: a state that already
 * replayed 0..399 (built as the verifier would have) accepts the rest from
 * offset 400 and ends at 780, and refuses a list that does not start there.
 */
static void test_incremental(void **state)
{
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	_cleanup_free_ struct attest_state *st = new_state();
	_cleanup_(putp) struct json_object *full = evidence(NULL, 0, NULL, 0, 0);
	_cleanup_(putp) struct json_object *first = NULL, *rest = NULL;
	const uint8_t *cut;
	size_t cut_off;

	assert_int_equal(ima_list_parse(g.ima, g.ima_len, NULL, &l), 0);
	cut = g.ima;
	for (size_t i = 0; i < 400; i++) {
		cut = memchr(cut, '\n', g.ima_len - (size_t)(cut - g.ima));
		assert_non_null(cut);
		cut++;
	}
	cut_off = (size_t)(cut - g.ima);

	first = evidence(NULL, 0, g.ima, cut_off, 0);
	expect_fail(NULL, NULL, NULL, first, st, "ima", "pcr10_mismatch", 10);

	/* a previous round of this boot accepted entries 0..399 at an earlier clock */
	st->have_quote = true;
	st->clock = 1000;
	st->reset_count = 43;
	snprintf(st->boot_id, sizeof(st->boot_id), "%s", BOOT_ID);
	ima_replay_init(&st->ima, 0, 0);
	for (size_t i = 0; i < 400; i++)
		assert_int_equal(ima_replay_entry(&st->ima, &l->entries[i]), 0);

	expect_fail(NULL, NULL, NULL, full, st, "ima", "offset_mismatch", 0);
	rest = evidence(NULL, 0, cut, g.ima_len - cut_off, 400);
	expect_pass(NULL, rest, st);
	assert_int_equal(st->ima.next_index, HPE_IMA_ENTRIES);
	assert_int_equal(st->clock, 6041444362u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_no_policy),
		cmocka_unit_test(test_pass_policies),
		cmocka_unit_test(test_wrong_nonce),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_eventlog_flipped),
		cmocka_unit_test(test_ima_tampered),
		cmocka_unit_test(test_ima_not_allowed),
		cmocka_unit_test(test_static_pcr),
		cmocka_unit_test(test_replayed_quote),
		cmocka_unit_test(test_new_boot),
		cmocka_unit_test(test_ima_past_quote),
		cmocka_unit_test(test_selection),
		cmocka_unit_test(test_incremental),
	};

	tpm_quiet_tss_log();
	return cmocka_run_group_tests(tests, setup, teardown);
}
