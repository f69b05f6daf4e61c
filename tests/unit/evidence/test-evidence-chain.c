/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The three evidence modules together, as a verifier uses them: a real HPE
 * server's quote verifies, its PCRs 0-9 and 14 equal the replay of its UEFI
 * event log and its PCR 10 the replay of its IMA list; a changed log no longer
 * explains the quote.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "evlog/evlog.h"
#include "ima/ima.h"
#include "testlib.h"
#include "tpm/tpm.h"

static struct tpm_pcrs quoted;

static int setup(void **state)
{
	struct json_object *d = testdata_json("quote/hpe-real-quote-with-logs.json");
	size_t ak_len, msg_len, sig_len, pcr_len, nonce_len;
	_cleanup_free_ uint8_t *akb = test_b64(jstr(d, "ak_tpm_b64"), &ak_len);
	_cleanup_free_ uint8_t *msg = test_b64(jstr(d, "message_b64"), &msg_len);
	_cleanup_free_ uint8_t *sigb = test_b64(jstr(d, "signature_b64"), &sig_len);
	_cleanup_free_ uint8_t *pcrb = test_b64(jstr(d, "subject_data_b64"), &pcr_len);
	uint8_t nonce[64];
	struct tpm_key ak;
	TPMT_SIGNATURE sig;

	assert_int_equal(kq_hex_decode(jstr(d, "nonce_hex"), nonce, sizeof(nonce), &nonce_len), 0);
	assert_int_equal(tpm_key_load(akb, ak_len, &ak), 0);
	assert_int_equal(tpm_signature_unmarshal(sigb, sig_len, &sig), 0);
	assert_int_equal(tpm_pcrfile_parse(pcrb, pcr_len, &quoted), 0);
	assert_int_equal(tpm_quote_verify(&(struct tpm_quote_check){
				     .attest = msg, .attest_len = msg_len, .sig = &sig, .key = ak.pkey,
				     .nonce = nonce, .nonce_len = nonce_len, .pcrs = &quoted }, NULL), 0);
	tpm_key_clear(&ak);
	json_object_put(d);
	return 0;
}

static void compare_evlog(const uint8_t *buf, size_t len, bool expect_match)
{
	static const unsigned pcrs[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14 };
	const struct tpm_pcr_bank *qb = tpm_pcrs_bank(&quoted, KQ_ALG_SHA256);
	struct evlog *log = NULL;
	struct evlog_replay *rep = malloc(sizeof(*rep));
	const struct evlog_pcr_bank *rb;
	bool all = true;

	assert_non_null(rep);
	assert_int_equal(evlog_parse(buf, len, &log), 0);
	assert_int_equal(evlog_replay(log, rep), 0);
	rb = evlog_replay_bank(rep, KQ_ALG_SHA256);
	assert_non_null(rb);
	for (size_t i = 0; i < ARRAY_SIZE(pcrs); i++)
		all &= memcmp(rb->pcrs[pcrs[i]], qb->value[pcrs[i]], 32) == 0;
	assert_true(all == expect_match);
	evlog_free(log);
	free(rep);
}

static void test_eventlog_explains_quote(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *buf = testdata_load("eventlog/hpe-perf-uefi.bin", &len);

	compare_evlog(buf, len, true);
	/* one byte of one logged digest changed: the log no longer explains the quote */
	{
		struct evlog *log = NULL;
		const struct evlog_event *ev;
		const uint8_t *d, *at;

		assert_int_equal(evlog_parse(buf, len, &log), 0);
		ev = evlog_event(log, evlog_n_events(log) / 2);
		d = evlog_event_digest(log, ev, KQ_ALG_SHA256);
		assert_non_null(d);
		at = memmem(buf, len, d, 32);
		assert_non_null(at);
		evlog_free(log);
		buf[at - buf] ^= 0x01;
		compare_evlog(buf, len, false);
	}
}

static void test_ima_explains_pcr10(void **state)
{
	size_t len;
	uint8_t *buf = testdata_load("ima/hpe-perf-ima-ng-sha256.txt", &len);
	const struct tpm_pcr_bank *qb = tpm_pcrs_bank(&quoted, KQ_ALG_SHA256);
	struct ima_list *l = NULL;
	struct ima_replay_state *st = malloc(sizeof(*st));

	assert_non_null(st);
	assert_int_equal(ima_list_parse(buf, len, NULL, &l), 0);
	ima_replay_init(st, IMA_BANK_SHA1 | IMA_BANK_SHA256, 0);
	assert_int_equal(ima_replay_list(st, l), 0);
	assert_int_equal(st->bad_entries, 0);
	assert_memory_equal(ima_replay_pcr(st, 10, KQ_ALG_SHA256), qb->value[10], 32);
	ima_list_free(l);

	/* a file digest changed in the list: its template hash no longer matches */
	{
		size_t pos = len / 2;

		while (pos + 8 < len && memcmp(buf + pos, "sha256:", 7) != 0)
			pos++;
		assert_true(pos + 8 < len);
		pos += 7;
		buf[pos] = buf[pos] == 'a' ? 'b' : 'a';
		assert_int_equal(ima_list_parse(buf, len, NULL, &l), 0);
		ima_replay_init(st, IMA_BANK_SHA1 | IMA_BANK_SHA256, 0);
		assert_int_equal(ima_replay_list(st, l), 0);
		assert_int_equal(st->bad_entries, 1);
		/* the sha256 bank is computed from the data, so it no longer matches the quote */
		assert_memory_not_equal(ima_replay_pcr(st, 10, KQ_ALG_SHA256), qb->value[10], 32);
		ima_list_free(l);
	}
	free(st);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eventlog_explains_quote),
		cmocka_unit_test(test_ima_explains_pcr10),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
