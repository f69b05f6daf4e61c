/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/ima: golden tests over the real lists in $KQ_TESTDATA/ima, the keylime
 * signature vectors, incremental replay, synthetic templates and hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto/crypto.h"
#include "ima/ima.h"
#include "testlib.h"
#include "util/util.h"

static const char *const lists[] = {
	"hpe-perf-ima-ng-sha256.txt",
	"rust-keylime-ima-ng-sha1.txt",
	"ibm-acs-ima-sig.bin",
	"charra-ima-ng-mixed-algs.bin",
};

/* ---- helpers ---- */

static inline void json_object_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}

static struct ima_list *parse_ok(const void *buf, size_t len, const struct ima_parse_opts *o)
{
	struct ima_list *l = NULL;
	int r = ima_list_parse(buf, len, o, &l);

	if (r < 0)
		fail_msg("parse failed: %d %s", r, kq_errmsg());
	return l;
}

static struct ima_list *load_list(const char *name)
{
	_cleanup_free_ char *rel = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;

	assert_true(asprintf(&rel, "ima/%s", name) > 0);
	buf = testdata_load(rel, &len);
	return parse_ok(buf, len, NULL);
}

static int parse_str(const char *s, struct ima_list **ret)
{
	return ima_list_parse((const uint8_t *)s, strlen(s), NULL, ret);
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
	kq_hex_encode(p, n, out);
}

static void assert_pcr(const struct ima_replay_state *st, unsigned pcr, uint16_t alg, const char *hex)
{
	const uint8_t *v = ima_replay_pcr(st, pcr, alg);
	char s[2 * KQ_MAX_DIGEST + 1];

	assert_non_null(v);
	hex_of(v, kq_hash_size(alg), s);
	assert_string_equal(s, hex);
}

/* A growable byte buffer for building synthetic lists. */
struct tbuf {
	uint8_t *p;
	size_t len, cap;
};

static void tb_put(struct tbuf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void tb_u32(struct tbuf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	tb_put(b, x, 4);
}

static void tb_str(struct tbuf *b, const char *s)
{
	tb_put(b, s, strlen(s));
}

static void tb_field(struct tbuf *b, const void *d, size_t n)
{
	tb_u32(b, (uint32_t)n);
	tb_put(b, d, n);
}

/* d-ng field data: "<algo>:\0" + digest */
static void tb_dng(struct tbuf *b, const char *algo, const uint8_t *d, size_t n)
{
	struct tbuf f = { 0 };

	tb_str(&f, algo);
	tb_put(&f, ":", 2);
	tb_put(&f, d, n);
	tb_field(b, f.p, f.len);
	free(f.p);
}

/* One binary entry with a correct sha1 template hash of data. */
static void tb_entry(struct tbuf *b, uint32_t pcr, const char *tmpl, const struct tbuf *data)
{
	uint8_t th[20];

	assert_int_equal(kq_hash(KQ_ALG_SHA1, data->p, data->len, th), 0);
	tb_u32(b, pcr);
	tb_put(b, th, 20);
	tb_u32(b, (uint32_t)strlen(tmpl));
	tb_str(b, tmpl);
	tb_u32(b, (uint32_t)data->len);
	tb_put(b, data->p, data->len);
}

static char *vec_line(struct json_object *vec, const char *key, size_t i)
{
	struct json_object *v = json_object_object_get(vec, key);

	if (json_object_is_type(v, json_type_array))
		v = json_object_array_get_idx(v, i);
	assert_non_null(v);
	return strdup(json_object_get_string(v));
}

/* ---- golden lists ---- */

static void check_list_against_expected(const char *name, struct json_object *exp)
{
	_cleanup_(ima_list_freep) struct ima_list *l = load_list(name);
	struct json_object *bad = json_object_object_get(exp, "entries_whose_template_hash_does_not_match_their_data");
	struct ima_replay_state st;
	size_t nbad = 0;

	assert_int_equal(l->n_entries, json_object_get_int(json_object_object_get(exp, "entries")));
	ima_replay_init(&st, IMA_BANKS_DEFAULT, 0);
	assert_int_equal(ima_replay_list(&st, l), 0);
	assert_int_equal(st.next_index, l->n_entries);
	assert_int_equal(st.pcrs_used, 1u << 10);
	assert_pcr(&st, 10, KQ_ALG_SHA1, json_object_get_string(json_object_object_get(exp, "pcr10_sha1")));
	assert_pcr(&st, 10, KQ_ALG_SHA256, json_object_get_string(json_object_object_get(exp, "pcr10_sha256")));
	for (size_t i = 0; i < l->n_entries; i++) {
		if (!ima_entry_is_bad(&l->entries[i]))
			continue;
		assert_true(nbad < json_object_array_length(bad));
		assert_int_equal(l->entries[i].index,
				 json_object_get_int(json_object_array_get_idx(bad, nbad)));
		nbad++;
	}
	assert_int_equal(nbad, json_object_array_length(bad));
	assert_int_equal(st.bad_entries, nbad);
	assert_int_equal(st.violations, 0);
}

static void test_golden_lists(void **state)
{
	_cleanup_(json_object_putp) struct json_object *exp = testdata_json("ima/expected-pcr10.json");

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		struct json_object *e = json_object_object_get(exp, lists[i]);

		assert_non_null(e);
		check_list_against_expected(lists[i], e);
	}
}

/* The streaming reader sees the same entries as the list parser. */
static void test_reader_matches_list(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		_cleanup_free_ char *rel = NULL;
		_cleanup_free_ uint8_t *buf = NULL;
		_cleanup_(ima_list_freep) struct ima_list *l = NULL;
		_cleanup_(ima_reader_freep) struct ima_reader *r = NULL;
		const struct ima_entry *e;
		size_t len, n = 0;
		int rc;

		assert_true(asprintf(&rel, "ima/%s", lists[i]) > 0);
		buf = testdata_load(rel, &len);
		l = parse_ok(buf, len, NULL);
		assert_int_equal(ima_reader_new(buf, len, NULL, &r), 0);
		while ((rc = ima_reader_next(r, &e)) > 0) {
			const struct ima_entry *le = &l->entries[n++];

			assert_int_equal(e->index, le->index);
			assert_int_equal(e->offset, le->offset);
			assert_int_equal(e->template_data_len, le->template_data_len);
			assert_memory_equal(e->template_data, le->template_data, e->template_data_len);
			assert_int_equal(e->template_hash_ok, le->template_hash_ok);
			assert_int_equal(e->digest_len, le->digest_len);
			assert_memory_equal(e->digest, le->digest, e->digest_len);
			assert_string_equal(e->path, le->path);
			assert_int_equal(e->sig_len, le->sig_len);
		}
		assert_int_equal(rc, 0);
		assert_int_equal(n, l->n_entries);
		assert_int_equal(ima_reader_format(r), strstr(lists[i], ".bin") ? IMA_FORMAT_BINARY : IMA_FORMAT_ASCII);
	}
}

/* Fields of the real lists: file digest algorithms and paths. */
static void test_fields(void **state)
{
	_cleanup_(ima_list_freep) struct ima_list *mixed = load_list("charra-ima-ng-mixed-algs.bin");
	_cleanup_(ima_list_freep) struct ima_list *sig = load_list("ibm-acs-ima-sig.bin");
	_cleanup_(ima_list_freep) struct ima_list *hpe = load_list("hpe-perf-ima-ng-sha256.txt");
	size_t seen[IMA_HASH__LAST] = { 0 }, nsig = 0;

	for (size_t i = 0; i < mixed->n_entries; i++) {
		const struct ima_entry *e = &mixed->entries[i];

		assert_int_equal(e->tmpl->id, IMA_TEMPLATE_IMA_NG);
		assert_int_equal(e->pcr, 10);
		assert_true(e->digest_algo < IMA_HASH__LAST);
		assert_int_equal(e->digest_len, ima_hash_algo_size(e->digest_algo));
		assert_non_null(e->path);
		assert_int_equal(strlen(e->path), e->path_len);
		assert_null(e->sig);
		seen[e->digest_algo]++;
	}
	assert_true(seen[IMA_HASH_SHA1] > 0);
	assert_true(seen[IMA_HASH_SHA256] > 0);
	assert_true(seen[IMA_HASH_SHA384] > 0);

	assert_string_equal(hpe->entries[0].template_name, "ima-ng");
	assert_string_equal(hpe->entries[0].path, "boot_aggregate");
	assert_int_equal(hpe->entries[0].digest_algo, IMA_HASH_SHA256);
	assert_int_equal(hpe->entries[0].template_hash_alg, KQ_ALG_SHA1);

	for (size_t i = 0; i < sig->n_entries; i++) {
		const struct ima_entry *e = &sig->entries[i];
		const uint8_t *d;
		size_t n;

		assert_int_equal(e->tmpl->id, IMA_TEMPLATE_IMA_SIG);
		assert_int_equal(ima_entry_field(e, IMA_FIELD_SIG, &d, &n), 0);
		assert_int_equal(n, e->sig_len);
		assert_int_equal(ima_entry_field(e, IMA_FIELD_BUF, &d, &n), -ENOENT);
		if (e->sig) {
			struct ima_sig_hdr h;

			assert_int_equal(ima_sig_parse(e->sig, e->sig_len, &h), 0);
			assert_int_equal(h.type, 3);
			assert_int_equal(h.version, 2);
			nsig++;
		}
	}
	assert_int_equal(nsig, 899);
	assert_string_equal(sig->entries[1079].path, "/usr/bin/xautt");
}

/* hpe's sha256 PCR 10 is the one in the real quote taken with that list. */
static void test_hpe_matches_quote(void **state)
{
	_cleanup_(json_object_putp) struct json_object *q = testdata_json("quote/hpe-real-quote-with-logs.json");
	_cleanup_(ima_list_freep) struct ima_list *l = load_list("hpe-perf-ima-ng-sha256.txt");
	struct json_object *pcrs = json_object_object_get(json_object_object_get(q, "expected"), "pcrs_sha256");
	struct ima_replay_state st;

	assert_non_null(pcrs);
	ima_replay_init(&st, IMA_BANK_SHA256, 0);
	assert_int_equal(ima_replay_list(&st, l), 0);
	assert_pcr(&st, 10, KQ_ALG_SHA256, json_object_get_string(json_object_object_get(pcrs, "10")));
	assert_null(ima_replay_pcr(&st, 10, KQ_ALG_SHA1)); /* bank not replayed */
}

/*
 * ibm-acs entry 1079: the recorded SHA-1 template hash is what the kernel
 * extended, so replaying it reproduces the expected PCR; the hash of the
 * (altered) data does not.
 */
static void test_bad_entry_uses_recorded_hash(void **state)
{
	_cleanup_(json_object_putp) struct json_object *exp = testdata_json("ima/expected-pcr10.json");
	_cleanup_(ima_list_freep) struct ima_list *l = load_list("ibm-acs-ima-sig.bin");
	const char *want = json_object_get_string(json_object_object_get(
		json_object_object_get(exp, "ibm-acs-ima-sig.bin"), "pcr10_sha1"));
	uint8_t pcr[20] = { 0 }, d[20];
	char hex[41];

	assert_false(l->entries[1079].template_hash_ok);
	assert_false(l->entries[1079].violation);
	for (size_t i = 0; i < l->n_entries; i++) {
		assert_int_equal(ima_entry_template_digest(&l->entries[i], KQ_ALG_SHA1, d), 0);
		assert_int_equal(kq_extend(KQ_ALG_SHA1, pcr, d), 0);
	}
	hex_of(pcr, 20, hex);
	assert_string_not_equal(hex, want);

	memset(pcr, 0, sizeof(pcr));
	for (size_t i = 0; i < l->n_entries; i++) {
		assert_int_equal(ima_entry_bank_digest(&l->entries[i], KQ_ALG_SHA1, d), 0);
		assert_int_equal(kq_extend(KQ_ALG_SHA1, pcr, d), 0);
	}
	hex_of(pcr, 20, hex);
	assert_string_equal(hex, want);
}

/* ---- incremental replay ---- */

static void test_incremental(void **state)
{
	for (size_t li = 0; li < ARRAY_SIZE(lists); li++) {
		_cleanup_free_ char *rel = NULL;
		_cleanup_free_ uint8_t *buf = NULL;
		_cleanup_(ima_list_freep) struct ima_list *l = NULL;
		struct ima_replay_state full;
		size_t len, n, splits[7];

		assert_true(asprintf(&rel, "ima/%s", lists[li]) > 0);
		buf = testdata_load(rel, &len);
		l = parse_ok(buf, len, NULL);
		n = l->n_entries;
		ima_replay_init(&full, IMA_BANK_SHA1 | IMA_BANK_SHA256 | IMA_BANK_SHA384, 0);
		assert_int_equal(ima_replay_list(&full, l), 0);
		splits[0] = 0, splits[1] = 1, splits[2] = n / 3, splits[3] = n / 2;
		splits[4] = n - 2, splits[5] = n - 1, splits[6] = n;

		for (size_t si = 0; si < ARRAY_SIZE(splits); si++) {
			size_t k = splits[si];
			struct ima_replay_state a, b;
			struct ima_parse_opts o = { .first_index = k };
			_cleanup_(ima_list_freep) struct ima_list *tail = NULL;
			size_t cut = k < n ? l->entries[k].offset : len;

			/* a: entries [0,k) one by one, then the whole list again */
			ima_replay_init(&a, full.banks, 0);
			for (size_t i = 0; i < k; i++)
				assert_int_equal(ima_replay_entry(&a, &l->entries[i]), 0);
			assert_int_equal(a.next_index, k);
			assert_int_equal(ima_replay_list(&a, l), 0);
			assert_memory_equal(&a, &full, sizeof(full));

			/* b: only the new bytes, parsed separately from index k */
			ima_replay_init(&b, full.banks, 0);
			for (size_t i = 0; i < k; i++)
				assert_int_equal(ima_replay_entry(&b, &l->entries[i]), 0);
			tail = parse_ok(buf + cut, len - cut, &o);
			assert_int_equal(tail->n_entries, n - k);
			assert_int_equal(tail->first_index, k);
			assert_int_equal(ima_replay_list(&b, tail), 0);
			assert_memory_equal(&b, &full, sizeof(full));

			/* a gap: state at k-1 cannot take a list starting at k */
			if (k > 0 && k < n) {
				struct ima_replay_state c, saved;

				ima_replay_init(&c, full.banks, 0);
				for (size_t i = 0; i + 1 < k; i++)
					assert_int_equal(ima_replay_entry(&c, &l->entries[i]), 0);
				saved = c;
				assert_int_equal(ima_replay_list(&c, tail), -EINVAL);
				assert_memory_equal(&c, &saved, sizeof(c));
				assert_int_equal(ima_replay_entry(&c, &l->entries[k]), -EINVAL);
				assert_memory_equal(&c, &saved, sizeof(c));
			}
		}
	}
}

/* ---- the keylime vectors: replay and signatures ---- */

static void replay_lines(struct json_object *vec, const char *key, const char *want_sha1)
{
	struct json_object *arr = json_object_object_get(vec, key);
	struct tbuf b = { 0 };
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	struct ima_replay_state st;

	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		tb_str(&b, json_object_get_string(json_object_array_get_idx(arr, i)));
		tb_str(&b, "\n");
	}
	l = parse_ok(b.p, b.len, NULL);
	free(b.p);
	assert_int_equal(l->n_entries, json_object_array_length(arr));
	for (size_t i = 0; i < l->n_entries; i++)
		assert_true(l->entries[i].template_hash_ok);
	ima_replay_init(&st, 0, 0);
	assert_int_equal(ima_replay_list(&st, l), 0);
	assert_pcr(&st, 10, KQ_ALG_SHA1, want_sha1);
}

static void test_vectors_replay(void **state)
{
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	struct json_object *exp = json_object_object_get(v, "expected");

	replay_lines(v, "measurements_ima_sig_no_signature", json_object_get_string(
		json_object_object_get(exp, "measurements_ima_sig_no_signature_pcr10_sha1_from_zero")));
	replay_lines(v, "signatures_ima_sig", json_object_get_string(
		json_object_object_get(exp, "signatures_ima_sig_pcr10_sha1_from_zero")));
	replay_lines(v, "keyrings_ima_buf", json_object_get_string(
		json_object_object_get(exp, "keyrings_ima_buf_pcr10_sha1_from_zero")));
}

static struct ima_keyring *keyring_of(struct json_object *v, bool rsa, bool ec)
{
	struct ima_keyring *k = NULL;

	assert_int_equal(ima_keyring_new(&k), 0);
	if (rsa) {
		const char *pem = json_object_get_string(json_object_object_get(v, "rsa2048_pub_pem"));
		assert_int_equal(ima_keyring_add(k, (const uint8_t *)pem, strlen(pem)), 1);
	}
	if (ec) {
		const char *pem = json_object_get_string(json_object_object_get(v, "secp256k1_pub_pem"));
		assert_int_equal(ima_keyring_add(k, (const uint8_t *)pem, strlen(pem)), 1);
	}
	return k;
}

static enum ima_sig_status verify_line(const char *line, const struct ima_keyring *k,
				       struct ima_sig_result *res)
{
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;

	assert_int_equal(parse_str(line, &l), 0);
	assert_int_equal(l->n_entries, 1);
	return ima_sig_verify(k, &l->entries[0], res);
}

static void test_vectors_sigs(void **state)
{
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	_cleanup_(ima_keyring_freep) struct ima_keyring *both = keyring_of(v, true, true);
	_cleanup_(ima_keyring_freep) struct ima_keyring *rsa = keyring_of(v, true, false);
	_cleanup_(ima_keyring_freep) struct ima_keyring *ec = keyring_of(v, false, true);
	_cleanup_(ima_keyring_freep) struct ima_keyring *none = keyring_of(v, false, false);
	_cleanup_free_ char *dd = vec_line(v, "signatures_ima_sig", 0);
	_cleanup_free_ char *zmore = vec_line(v, "signatures_ima_sig", 1);
	_cleanup_free_ char *bad = vec_line(v, "bad_signature_line", 0);
	_cleanup_free_ char *nosig = vec_line(v, "measurements_ima_sig_no_signature", 1);
	struct ima_sig_result res;

	/* key ids as evmctl computes them */
	assert_int_equal(ima_keyring_count(both), 2);
	assert_int_equal(ima_keyring_keyid(rsa, 0), 0xf3452d23);
	assert_int_equal(ima_keyring_keyid(ec, 0), 0x531f4025);

	assert_int_equal(verify_line(dd, both, &res), IMA_SIG_VALID);
	assert_true(res.has_keyid);
	assert_int_equal(res.keyid, 0xf3452d23);
	assert_int_equal(verify_line(zmore, both, &res), IMA_SIG_VALID);
	assert_int_equal(res.keyid, 0x531f4025);
	assert_int_equal(verify_line(dd, rsa, &res), IMA_SIG_VALID);
	assert_int_equal(verify_line(zmore, ec, &res), IMA_SIG_VALID);

	/* keys missing */
	assert_int_equal(verify_line(dd, none, &res), IMA_SIG_UNKNOWN_KEY);
	assert_int_equal(verify_line(dd, NULL, &res), IMA_SIG_UNKNOWN_KEY);
	assert_int_equal(verify_line(zmore, none, &res), IMA_SIG_UNKNOWN_KEY);
	assert_int_equal(verify_line(zmore, rsa, &res), IMA_SIG_UNKNOWN_KEY);
	assert_int_equal(verify_line(dd, ec, &res), IMA_SIG_UNKNOWN_KEY);
	assert_non_null(res.reason);

	/* the size field of bad_signature_line is wrong: invalid whatever the keys */
	assert_int_equal(verify_line(bad, both, &res), IMA_SIG_INVALID);
	assert_non_null(strstr(res.reason, "malformed"));
	assert_int_equal(verify_line(bad, none, &res), IMA_SIG_INVALID);

	/* no signature */
	assert_int_equal(verify_line(nosig, both, &res), IMA_SIG_NONE);
	assert_string_equal(ima_sig_status_name(IMA_SIG_NONE), "no-signature");

	/* a different file digest under the same signature does not verify */
	{
		char *p = strstr(dd, "sha256:") + 7;
		*p = *p == '0' ? '1' : '0';
		assert_int_equal(verify_line(dd, both, &res), IMA_SIG_INVALID);
		assert_string_equal(res.reason, "signature does not verify");
	}
	/* ... nor the zmore ECDSA signature with a flipped signature byte */
	{
		size_t n = strlen(zmore);
		zmore[n - 3] = zmore[n - 3] == 'a' ? 'b' : 'a';
		assert_int_equal(verify_line(zmore, both, &res), IMA_SIG_INVALID);
	}
}

/* The sig header's hash algorithm must be the file digest's. */
static void test_sig_algo_mismatch(void **state)
{
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	_cleanup_(ima_keyring_freep) struct ima_keyring *k = keyring_of(v, true, true);
	_cleanup_free_ char *dd = vec_line(v, "signatures_ima_sig", 0);
	struct ima_sig_result res;
	char *p;

	/* the sig says hash_algo 4 (sha256); claim 6 (sha512) instead */
	p = strstr(dd, " 030204");
	assert_non_null(p);
	p[6] = '6';
	assert_int_equal(verify_line(dd, k, &res), IMA_SIG_INVALID);
	assert_non_null(strstr(res.reason, "hash algorithm"));
	/* version 3 */
	p[6] = '4';
	p[4] = '3';
	assert_int_equal(verify_line(dd, k, &res), IMA_SIG_INVALID);
	assert_non_null(strstr(res.reason, "version"));
	/* type 6 (fs-verity) */
	p[4] = '2';
	p[2] = '6';
	assert_int_equal(verify_line(dd, k, &res), IMA_SIG_INVALID);
	assert_non_null(strstr(res.reason, "type"));
}

static void test_vectors_ima_buf(void **state)
{
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	_cleanup_(ima_keyring_freep) struct ima_keyring *k = NULL;
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	_cleanup_free_ char *line = vec_line(v, "keyrings_ima_buf", 0);
	const struct ima_entry *e;
	uint8_t d[32];

	assert_int_equal(parse_str(line, &l), 0);
	e = &l->entries[0];
	assert_int_equal(e->tmpl->id, IMA_TEMPLATE_IMA_BUF);
	assert_string_equal(e->template_name, "ima-buf");
	assert_string_equal(e->path, ".ima");
	assert_true(e->template_hash_ok);
	assert_non_null(e->buf);
	assert_null(e->sig);
	/* a keyring measurement: the digest is the hash of the buffer (a DER cert) */
	assert_int_equal(e->digest_algo, IMA_HASH_SHA256);
	assert_int_equal(kq_hash(KQ_ALG_SHA256, e->buf, e->buf_len, d), 0);
	assert_memory_equal(d, e->digest, 32);
	/* and that cert loads into a keyring */
	assert_int_equal(ima_keyring_new(&k), 0);
	assert_int_equal(ima_keyring_add(k, e->buf, e->buf_len), 1);
	assert_int_equal(ima_keyring_count(k), 1);
	/* the same certificate as PEM, twice in one buffer */
	{
		const unsigned char *p = e->buf;
		X509 *x = d2i_X509(NULL, &p, (long)e->buf_len);
		BIO *bio = BIO_new(BIO_s_mem());
		char *pem;
		long n;

		assert_non_null(x);
		assert_non_null(bio);
		assert_int_equal(PEM_write_bio_X509(bio, x), 1);
		assert_int_equal(PEM_write_bio_X509(bio, x), 1);
		n = BIO_get_mem_data(bio, &pem);
		assert_int_equal(ima_keyring_add(k, (const uint8_t *)pem, (size_t)n), 2);
		assert_int_equal(ima_keyring_count(k), 3);
		assert_int_equal(ima_keyring_keyid(k, 1), ima_keyring_keyid(k, 0));
		BIO_free(bio);
		X509_free(x);
	}
}

static void test_keyring_errors(void **state)
{
	_cleanup_(ima_keyring_freep) struct ima_keyring *k = NULL;
	static const char junk[] = "-----BEGIN PUBLIC KEY-----\nnot base64!!\n-----END PUBLIC KEY-----\n";
	static const char priv[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
	static const uint8_t der[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
	/* an RSA-1024 public key: below the minimum */
	static const char rsa1024[] =
		"-----BEGIN PUBLIC KEY-----\n"
		"MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDXXlaR1Y/tB2xCD+0i0kdyojKw\n"
		"HKlE3O2XqQD7dC8wIdbqKL9M6KBOmp/VywPf9ZZIMWCgk4dHtuS8cxRrQ71HrPLQ\n"
		"GuqScLvWojjyjjAGIs2otVcRpLBxtYHAedPTZRKnJPAyqXmLCoumcLrGfdRe0fhD\n"
		"0l3tyJ+jXVcFZvS/2QIDAQAB\n"
		"-----END PUBLIC KEY-----\n";

	assert_int_equal(ima_keyring_new(&k), 0);
	assert_int_equal(ima_keyring_add(k, (const uint8_t *)junk, strlen(junk)), -EBADMSG);
	assert_int_equal(ima_keyring_add(k, (const uint8_t *)priv, strlen(priv)), -EBADMSG);
	assert_non_null(strstr(kq_errmsg(), "not a public key"));
	assert_int_equal(ima_keyring_add(k, der, sizeof(der)), -EBADMSG);
	assert_int_equal(ima_keyring_add(k, der, 0), -EBADMSG);
	assert_int_equal(ima_keyring_add(k, (const uint8_t *)rsa1024, strlen(rsa1024)), -ENOTSUP);
	assert_non_null(strstr(kq_errmsg(), "1024"));
	assert_int_equal(ima_keyring_add_file(k, "/nonexistent/key.pem"), -ENOENT);
	assert_int_equal(ima_keyring_count(k), 0);
}

/* ---- synthetic templates ---- */

/* ascii and binary forms of the same list parse to the same template data. */
static void test_ascii_binary_equivalence(void **state)
{
	static const char *const bins[] = { "charra-ima-ng-mixed-algs.bin", "ibm-acs-ima-sig.bin" };

	for (size_t bi = 0; bi < ARRAY_SIZE(bins); bi++) {
		_cleanup_(ima_list_freep) struct ima_list *bin = load_list(bins[bi]);
		_cleanup_(ima_list_freep) struct ima_list *asc = NULL;
		struct ima_replay_state sb, sa;
		struct tbuf t = { 0 };

		for (size_t i = 0; i < bin->n_entries; i++) {
			const struct ima_entry *e = &bin->entries[i];
			char *hex = kq_hex_dup(e->template_hash, 20);
			char *dh = kq_hex_dup(e->digest, e->digest_len);
			char *sh = kq_hex_dup(e->sig ? e->sig : (const uint8_t *)"", e->sig_len);
			char *line;

			assert_true(asprintf(&line, "%2u %s %s %s:%s %s%s%s\n", e->pcr, hex, e->template_name,
					     ima_hash_algo_name(e->digest_algo), dh, e->path,
					     e->tmpl->id == IMA_TEMPLATE_IMA_SIG ? " " : "",
					     e->tmpl->id == IMA_TEMPLATE_IMA_SIG ? sh : "") > 0);
			tb_str(&t, line);
			free(line);
			free(hex);
			free(dh);
			free(sh);
		}
		asc = parse_ok(t.p, t.len, NULL);
		free(t.p);
		assert_int_equal(asc->format, IMA_FORMAT_ASCII);
		assert_int_equal(asc->n_entries, bin->n_entries);
		for (size_t i = 0; i < bin->n_entries; i++) {
			assert_int_equal(asc->entries[i].template_data_len, bin->entries[i].template_data_len);
			assert_memory_equal(asc->entries[i].template_data, bin->entries[i].template_data,
					    bin->entries[i].template_data_len);
			assert_int_equal(asc->entries[i].template_hash_ok, bin->entries[i].template_hash_ok);
		}
		ima_replay_init(&sb, 0, 0);
		ima_replay_init(&sa, 0, 0);
		assert_int_equal(ima_replay_list(&sb, bin), 0);
		assert_int_equal(ima_replay_list(&sa, asc), 0);
		assert_memory_equal(&sa, &sb, sizeof(sa));
	}
}

/* The legacy 'ima' template: d + name zero-padded to 256 bytes, no lengths. */
static void test_ima_template(void **state)
{
	static const char name[] = "/usr/bin/hello world";
	uint8_t d[20], th[20], hashed[20 + 256] = { 0 };
	char dhex[41], thhex[41];
	_cleanup_free_ char *line = NULL;
	_cleanup_(ima_list_freep) struct ima_list *la = NULL, *lb = NULL;
	struct tbuf b = { 0 };
	struct ima_replay_state sa, sb;
	const uint8_t *f;
	size_t n;

	assert_int_equal(kq_hash(KQ_ALG_SHA1, "hello", 5, d), 0);
	memcpy(hashed, d, 20);
	memcpy(hashed + 20, name, strlen(name));
	assert_int_equal(kq_hash(KQ_ALG_SHA1, hashed, sizeof(hashed), th), 0);
	hex_of(d, 20, dhex);
	hex_of(th, 20, thhex);

	/* ascii: the name has a space (kernels before 4.13 kept them) */
	assert_true(asprintf(&line, "10 %s ima %s %s\n", thhex, dhex, name) > 0);
	assert_int_equal(parse_str(line, &la), 0);
	assert_int_equal(la->entries[0].tmpl->id, IMA_TEMPLATE_IMA);
	assert_true(la->entries[0].template_hash_ok);
	assert_string_equal(la->entries[0].path, name);
	assert_int_equal(la->entries[0].digest_algo, IMA_HASH_SHA1);
	assert_memory_equal(la->entries[0].digest, d, 20);
	assert_int_equal(ima_entry_field(&la->entries[0], IMA_FIELD_N, &f, &n), 0);
	assert_int_equal(n, strlen(name) + 1);

	/* binary: pcr, hash, "ima", d without length, name as u32 + chars */
	tb_u32(&b, 10);
	tb_put(&b, th, 20);
	tb_u32(&b, 3);
	tb_str(&b, "ima");
	tb_put(&b, d, 20);
	tb_u32(&b, (uint32_t)strlen(name));
	tb_str(&b, name);
	lb = parse_ok(b.p, b.len, NULL);
	assert_true(lb->entries[0].template_hash_ok);
	assert_string_equal(lb->entries[0].path, name);
	ima_replay_init(&sa, 0, 0);
	ima_replay_init(&sb, 0, 0);
	assert_int_equal(ima_replay_list(&sa, la), 0);
	assert_int_equal(ima_replay_list(&sb, lb), 0);
	assert_memory_equal(&sa, &sb, sizeof(sa));
	{
		/* sha256 bank: sha256 of the same padded data */
		uint8_t pcr[32] = { 0 }, h[32];
		assert_int_equal(kq_hash(KQ_ALG_SHA256, hashed, sizeof(hashed), h), 0);
		assert_int_equal(kq_extend(KQ_ALG_SHA256, pcr, h), 0);
		assert_memory_equal(ima_replay_pcr(&sa, 10, KQ_ALG_SHA256), pcr, 32);
	}

	/* a name over 255 bytes cannot be an 'ima' template name */
	b.len = 0;
	tb_u32(&b, 10);
	tb_put(&b, th, 20);
	tb_u32(&b, 3);
	tb_str(&b, "ima");
	tb_put(&b, d, 20);
	tb_u32(&b, 256);
	for (int i = 0; i < 256; i++)
		tb_str(&b, "x");
	ima_list_free(lb);
	lb = NULL;
	assert_int_equal(ima_list_parse(b.p, b.len, NULL, &lb), -E2BIG);
	free(b.p);
}

/* A violation: zero template hash, 0xff..ff extended in every bank. */
static void test_violation(void **state)
{
	static const char line[] =
		"10 0000000000000000000000000000000000000000 ima-ng "
		"sha256:0000000000000000000000000000000000000000 /var/log/messages\n";
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	struct ima_replay_state st;
	uint8_t p1[20] = { 0 }, f1[20], p2[32] = { 0 }, f2[32];

	assert_int_equal(parse_str(line, &l), 0);
	assert_true(l->entries[0].violation);
	assert_false(l->entries[0].template_hash_ok);
	assert_false(ima_entry_is_bad(&l->entries[0]));
	assert_int_equal(l->entries[0].digest_len, 20); /* kernel writes 20 zero bytes */
	ima_replay_init(&st, 0, 0);
	assert_int_equal(ima_replay_list(&st, l), 0);
	assert_int_equal(st.violations, 1);
	assert_int_equal(st.bad_entries, 0);
	memset(f1, 0xff, sizeof(f1));
	memset(f2, 0xff, sizeof(f2));
	assert_int_equal(kq_extend(KQ_ALG_SHA1, p1, f1), 0);
	assert_int_equal(kq_extend(KQ_ALG_SHA256, p2, f2), 0);
	assert_memory_equal(ima_replay_pcr(&st, 10, KQ_ALG_SHA1), p1, 20);
	assert_memory_equal(ima_replay_pcr(&st, 10, KQ_ALG_SHA256), p2, 32);
}

/* Entries for other PCRs are replayed into those PCRs. */
static void test_other_pcr(void **state)
{
	struct tbuf b = { 0 }, d = { 0 };
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	struct ima_replay_state st;
	uint8_t dig[32] = { 1 };

	tb_dng(&d, "sha256", dig, 32);
	tb_field(&d, "/a", 3);
	tb_entry(&b, 10, "ima-ng", &d);
	tb_entry(&b, 11, "ima-ng", &d);
	l = parse_ok(b.p, b.len, NULL);
	ima_replay_init(&st, 0, 0);
	assert_int_equal(ima_replay_list(&st, l), 0);
	assert_int_equal(st.pcrs_used, (1u << 10) | (1u << 11));
	assert_memory_equal(ima_replay_pcr(&st, 10, KQ_ALG_SHA1), ima_replay_pcr(&st, 11, KQ_ALG_SHA1), 20);
	free(b.p);
	free(d.p);
}

/* Custom formats, ngv2, evm-sig, modsig: binary and ascii agree. */
static void test_other_templates(void **state)
{
	struct tbuf b = { 0 }, d = { 0 };
	_cleanup_(ima_list_freep) struct ima_list *l = NULL, *a = NULL;
	uint8_t dig[32], uid[4] = { 0xe8, 0x03, 0, 0 }, mode[2] = { 0xed, 0x81 };
	char thhex[41], dhex[65], *line = NULL;
	struct tbuf t = { 0 };
	const uint8_t *f;
	size_t n;

	memset(dig, 0xab, sizeof(dig));
	hex_of(dig, 32, dhex);

	/* ima-sigv2 with a verity digest */
	{
		struct tbuf v = { 0 };
		tb_str(&v, "verity:sha256:");
		tb_put(&v, "", 1);
		tb_put(&v, dig, 32);
		tb_field(&d, v.p, v.len);
		free(v.p);
	}
	tb_field(&d, "/v", 3);
	tb_field(&d, NULL, 0);
	tb_entry(&b, 10, "ima-sigv2", &d);
	hex_of(b.p + 4, 20, thhex);
	assert_true(asprintf(&line, "10 %s ima-sigv2 verity:sha256:%s /v \n", thhex, dhex) > 0);
	tb_str(&t, line);
	free(line);

	/* a custom format with uid and mode */
	d.len = 0;
	tb_dng(&d, "sha256", dig, 32);
	tb_field(&d, "/c", 3);
	tb_field(&d, uid, 4);
	tb_field(&d, mode, 2);
	{
		size_t at = b.len;
		tb_entry(&b, 10, "d-ng|n-ng|iuid|imode", &d);
		hex_of(b.p + at + 4, 20, thhex);
	}
	assert_true(asprintf(&line, "10 %s d-ng|n-ng|iuid|imode sha256:%s /c 1000 33261\n", thhex, dhex) > 0);
	tb_str(&t, line);
	free(line);

	/* ima-modsig without an appended signature: two empty fields */
	d.len = 0;
	tb_dng(&d, "sha256", dig, 32);
	tb_field(&d, "/m", 3);
	tb_field(&d, NULL, 0);
	tb_field(&d, NULL, 0);
	tb_field(&d, NULL, 0);
	{
		size_t at = b.len;
		tb_entry(&b, 10, "ima-modsig", &d);
		hex_of(b.p + at + 4, 20, thhex);
	}
	assert_true(asprintf(&line, "10 %s ima-modsig sha256:%s /m   \n", thhex, dhex) > 0);
	tb_str(&t, line);
	free(line);

	l = parse_ok(b.p, b.len, NULL);
	a = parse_ok(t.p, t.len, NULL);
	assert_int_equal(l->n_entries, 3);
	assert_int_equal(a->n_entries, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_true(l->entries[i].template_hash_ok);
		assert_true(a->entries[i].template_hash_ok);
		assert_int_equal(a->entries[i].template_data_len, l->entries[i].template_data_len);
		assert_memory_equal(a->entries[i].template_data, l->entries[i].template_data,
				    l->entries[i].template_data_len);
	}
	assert_int_equal(l->entries[0].tmpl->id, IMA_TEMPLATE_IMA_SIGV2);
	assert_int_equal(l->entries[0].digest_type, IMA_DIGEST_VERITY);
	assert_int_equal(l->entries[0].digest_algo, IMA_HASH_SHA256);
	assert_null(l->entries[0].sig);
	assert_int_equal(l->entries[1].tmpl->id, IMA_TEMPLATE_CUSTOM);
	assert_int_equal(l->entries[1].tmpl->n_fields, 4);
	assert_int_equal(ima_entry_field(&l->entries[1], IMA_FIELD_IUID, &f, &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(f, uid, 4);
	assert_int_equal(l->entries[2].tmpl->id, IMA_TEMPLATE_IMA_MODSIG);
	assert_int_equal(ima_entry_field(&l->entries[2], IMA_FIELD_MODSIG, &f, &n), 0);
	assert_int_equal(n, 0);
	assert_null(f);
	free(b.p);
	free(d.p);
	free(t.p);
}

/* An unknown template in a binary list: kept, hash-checked, replayed, not interpreted. */
static void test_unknown_template_binary(void **state)
{
	struct tbuf b = { 0 }, d = { 0 };
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	struct ima_replay_state st;
	const uint8_t *f;
	size_t n;

	tb_field(&d, "whatever", 8);
	tb_entry(&b, 10, "future-template", &d);
	l = parse_ok(b.p, b.len, NULL);
	assert_int_equal(l->entries[0].tmpl->id, IMA_TEMPLATE_UNKNOWN);
	assert_true(l->entries[0].template_hash_ok);
	assert_null(l->entries[0].path);
	assert_null(l->entries[0].digest);
	assert_int_equal(ima_entry_field(&l->entries[0], IMA_FIELD_N_NG, &f, &n), -ENOENT);
	ima_replay_init(&st, 0, 0);
	assert_int_equal(ima_replay_list(&st, l), 0);
	/* the ascii form of the same entry cannot be rebuilt: an error */
	{
		_cleanup_(ima_list_freep) struct ima_list *a = NULL;
		_cleanup_free_ char *line = NULL;
		char th[41];

		hex_of(b.p + 4, 20, th);
		assert_true(asprintf(&line, "10 %s future-template whatever\n", th) > 0);
		assert_int_equal(parse_str(line, &a), -EBADMSG);
		assert_non_null(strstr(kq_errmsg(), "unknown template"));
		assert_non_null(strstr(kq_errmsg(), "entry 0 (line 1)"));
	}
	free(b.p);
	free(d.p);
}

/* ---- hostile input ---- */

static void expect_bin_err(const struct tbuf *b, int err, const char *msg)
{
	struct ima_list *l = NULL;
	int r = ima_list_parse(b->p, b->len, NULL, &l);

	if (r != err)
		fail_msg("expected %d, got %d (%s)", err, r, kq_errmsg());
	assert_null(l);
	if (msg && !strstr(kq_errmsg(), msg))
		fail_msg("message '%s' lacks '%s'", kq_errmsg(), msg);
}

static void test_hostile_binary(void **state)
{
	_cleanup_free_ uint8_t *buf = NULL;
	struct tbuf b = { 0 }, d = { 0 };
	uint8_t th[20] = { 1 }, dig[32] = { 2 };
	size_t len, first;

	/* every truncation of the first two entries: an error or fewer entries */
	buf = testdata_load("ima/charra-ima-ng-mixed-algs.bin", &len);
	{
		_cleanup_(ima_list_freep) struct ima_list *l = parse_ok(buf, len, NULL);
		first = l->entries[2].offset;
		for (size_t cut = 0; cut < first; cut++) {
			struct ima_list *t = NULL;
			int r = ima_list_parse(buf, cut, NULL, &t);

			if (cut == 0 || cut == l->entries[1].offset) {
				assert_int_equal(r, 0);
				assert_int_equal(t->n_entries, cut ? 1 : 0);
				ima_list_free(t);
			} else {
				assert_int_equal(r, -EBADMSG);
				assert_null(t);
				assert_non_null(strstr(kq_errmsg(), cut < l->entries[1].offset ? "entry 0 (offset 0)" : "entry 1"));
			}
		}
	}

	/* a name length of 0xffffffff */
	tb_u32(&b, 10);
	tb_put(&b, th, 20);
	tb_u32(&b, 0xffffffff);
	tb_str(&b, "ima-ng");
	expect_bin_err(&b, -E2BIG, "template name length 4294967295");

	/* a template-data length larger than the file, and one over the limit */
	b.len = 0;
	tb_u32(&b, 10);
	tb_put(&b, th, 20);
	tb_u32(&b, 6);
	tb_str(&b, "ima-ng");
	tb_u32(&b, 1000);
	tb_str(&b, "short");
	expect_bin_err(&b, -EBADMSG, "overruns the list");
	b.len -= 9;
	tb_u32(&b, 0xffffffff);
	expect_bin_err(&b, -E2BIG, "template data of 4294967295 bytes");

	/* PCR out of range */
	b.len = 0;
	d.len = 0;
	tb_dng(&d, "sha256", dig, 32);
	tb_field(&d, "/x", 3);
	tb_entry(&b, 99, "ima-ng", &d);
	expect_bin_err(&b, -EBADMSG, "PCR index 99");

	/* a field length overrunning the template data */
	b.len = 0;
	d.len = 0;
	tb_dng(&d, "sha256", dig, 32);
	tb_u32(&d, 500);
	tb_str(&d, "/x");
	tb_entry(&b, 10, "ima-ng", &d);
	expect_bin_err(&b, -EBADMSG, "overruns the template data");

	/* too few and too many fields */
	b.len = 0;
	d.len = 0;
	tb_dng(&d, "sha256", dig, 32);
	tb_entry(&b, 10, "ima-ng", &d);
	expect_bin_err(&b, -EBADMSG, "ends before field 1");
	b.len = 0;
	tb_field(&d, "/x", 3);
	tb_field(&d, "", 0);
	tb_entry(&b, 10, "ima-ng", &d);
	expect_bin_err(&b, -EBADMSG, "after the last field");

	/* n-ng without its NUL, and with one inside */
	b.len = 0;
	d.len = 0;
	tb_dng(&d, "sha256", dig, 32);
	tb_field(&d, "/x", 2);
	tb_entry(&b, 10, "ima-ng", &d);
	expect_bin_err(&b, -EBADMSG, "not NUL-terminated");
	b.len = 0;
	d.len = 0;
	tb_dng(&d, "sha256", dig, 32);
	tb_field(&d, "/x\0y", 5);
	tb_entry(&b, 10, "ima-ng", &d);
	expect_bin_err(&b, -EBADMSG, "NUL byte inside");

	/* a d-ng digest of the wrong size, and without its prefix */
	b.len = 0;
	d.len = 0;
	tb_dng(&d, "sha256", dig, 31);
	tb_field(&d, "/x", 3);
	tb_entry(&b, 10, "ima-ng", &d);
	expect_bin_err(&b, -EBADMSG, "sha256 digest of 31 bytes");
	b.len = 0;
	d.len = 0;
	tb_field(&d, dig, 32);
	tb_field(&d, "/x", 3);
	tb_entry(&b, 10, "ima-ng", &d);
	expect_bin_err(&b, -EBADMSG, "prefix");

	/* a template name with a control character; a zero-length one */
	b.len = 0;
	d.len = 0;
	tb_dng(&d, "sha256", dig, 32);
	tb_field(&d, "/x", 3);
	tb_entry(&b, 10, "ima\n-ng", &d);
	expect_bin_err(&b, -EBADMSG, "invalid template name");
	b.len = 0;
	tb_u32(&b, 10);
	tb_put(&b, th, 20);
	tb_u32(&b, 0);
	expect_bin_err(&b, -EBADMSG, "template name length 0");

	/* more than IMA_MAX_TEMPLATES distinct names */
	b.len = 0;
	d.len = 0;
	tb_field(&d, "x", 1);
	for (int i = 0; i <= IMA_MAX_TEMPLATES; i++) {
		char name[16];
		snprintf(name, sizeof(name), "t%d", i);
		tb_entry(&b, 10, name, &d);
	}
	expect_bin_err(&b, -E2BIG, "distinct template names");

	/* entry count limit */
	{
		struct ima_parse_opts o = { .max_entries = 10 };
		struct ima_list *l = NULL;

		assert_int_equal(ima_list_parse(buf, len, &o, &l), -E2BIG);
		assert_non_null(strstr(kq_errmsg(), "more than 10 entries"));
	}
	/* list size limit (checked before any byte is read) */
	{
		struct ima_list *l = NULL;
		assert_int_equal(ima_list_parse(buf, (size_t)IMA_MAX_LIST_SIZE + 1, NULL, &l), -E2BIG);
	}
	/* bad options */
	{
		struct ima_parse_opts o = { .template_hash_alg = 0x1234 };
		struct ima_list *l = NULL;
		assert_int_equal(ima_list_parse(buf, len, &o, &l), -ENOTSUP);
	}
	/* a sha256 template hash option on a sha1 list misparses: an error, not a crash */
	{
		struct ima_parse_opts o = { .template_hash_alg = KQ_ALG_SHA256 };
		struct ima_list *l = NULL;
		assert_true(ima_list_parse(buf, len, &o, &l) < 0);
	}
	free(b.p);
	free(d.p);
}

static void expect_ascii_err(const char *s, int err, const char *msg)
{
	struct ima_list *l = NULL;
	int r = parse_str(s, &l);

	ima_list_free(l);
	if (r != err)
		fail_msg("'%.60s': expected %d, got %d (%s)", s, err, r, kq_errmsg());
	if (msg && !strstr(kq_errmsg(), msg))
		fail_msg("message '%s' lacks '%s'", kq_errmsg(), msg);
}

#define TH "1d8d532d463c9f8c205d0df7787669a85f93e260"
#define D1 "0000000000000000000000000000000000000000"

static void test_hostile_ascii(void **state)
{
	_cleanup_free_ char *longline = NULL;

	expect_ascii_err("10\n", -EBADMSG, "PCR");
	expect_ascii_err("10 " TH "\n", -EBADMSG, "no template name");
	expect_ascii_err("10 " TH " ima-ng\n", -EBADMSG, "needs 2 fields");
	expect_ascii_err("10 " TH " ima-ng sha1:" D1 "\n", -EBADMSG, "needs 2 fields");
	expect_ascii_err("10 " TH " ima-sig sha1:" D1 "\n", -EBADMSG, "needs 3 fields");
	expect_ascii_err("10 zz8d532d463c9f8c205d0df7787669a85f93e260 ima-ng sha1:" D1 " /x\n", -EBADMSG,
			 "invalid hex digit");
	expect_ascii_err("10 " TH " ima-ng sha1:00zz000000000000000000000000000000000000 /x\n", -EBADMSG,
			 "invalid hex digit");
	expect_ascii_err("10 " TH " ima-ng sha1:000 /x\n", -EBADMSG, "odd number");
	expect_ascii_err("10 " TH " ima-ng sha1" D1 " /x\n", -EBADMSG, "prefix");
	expect_ascii_err("10 " TH " ima-ng sha256:" D1 "00 /x\n", -EBADMSG, "sha256 digest of 21 bytes");
	/* the 20-byte zero digest of a violation, without the violation */
	expect_ascii_err("10 " TH " ima-ng sha256:" D1 " /x\n", -EBADMSG, "outside a violation");
	expect_ascii_err("10 " TH " ima-sig sha1:" D1 " /x 03zz\n", -EBADMSG, "sig: invalid hex");
	expect_ascii_err("10 " TH " foo sha1:" D1 " /x\n", -EBADMSG, "unknown template 'foo'");
	expect_ascii_err("10 " TH " ima-ng sha1:" D1 " /x\n\n", -EBADMSG, "line 2): empty line");
	expect_ascii_err("24 " TH " ima-ng sha1:" D1 " /x\n", -EBADMSG, "PCR index 24");
	expect_ascii_err("1000 " TH " ima-ng sha1:" D1 " /x\n", -EBADMSG, "PCR");
	expect_ascii_err("10 " TH "00 ima-ng sha1:" D1 " /x\n", -EBADMSG, "42 hex digits");
	expect_ascii_err("10 " TH " ima-ng sha1:" D1 " /x\n"
			 "10 " TH "0000000000000000000000000000000000000000000000 ima-ng sha1:" D1 " /x\n",
			 -EBADMSG, "entry 1 (line 2)");
	expect_ascii_err("10 " TH " ima-ng :" D1 " /x\n", -EBADMSG, "empty algorithm");
	expect_ascii_err("10 " TH " ima-ng SHA1:" D1 " /x\n", -EBADMSG, "invalid character");
	expect_ascii_err("10 " TH " ima-ng sha1:" D1 " /x\n" "10 " TH " ima-buf sha1:" D1 " /x 0\n",
			 -EBADMSG, "entry 1 (line 2): buf: odd");
	expect_ascii_err("10 " TH " d-ng|n-ng|imode sha1:" D1 " /x 70000\n", -EBADMSG, "imode field");
	expect_ascii_err("10 " TH " ima " D1 "00 /x\n", -EBADMSG, "d field of 42");
	expect_ascii_err("10 " TH " ima-ng sha1:" D1 " /x", 0, NULL); /* no final newline: fine */

	/* a NUL byte inside a line */
	{
		static const char nul[] = "10 " TH " ima-ng sha1:" D1 " /x\0y\n";
		struct ima_list *l = NULL;
		assert_int_equal(ima_list_parse((const uint8_t *)nul, sizeof(nul) - 1, NULL, &l), -EBADMSG);
		assert_non_null(strstr(kq_errmsg(), "NUL byte"));
	}
	/* an overlong line */
	{
		static const char pfx_buf[] = "10 " TH " ima-buf sha1:" D1 " /x ";
		static const char pfx_ng[] = "10 " TH " ima-ng sha1:" D1 " /";
		size_t n = sizeof(pfx_buf) - 1;

		longline = malloc(IMA_MAX_LINE + 64);
		assert_non_null(longline);
		memset(longline, 'a', IMA_MAX_LINE + 63);
		memcpy(longline, pfx_buf, n);
		longline[IMA_MAX_LINE + 63] = '\0';
		expect_ascii_err(longline, -E2BIG, "line longer");
		/* a hex field over IMA_MAX_FIELD, in a line under the limit */
		longline[n + 2 * IMA_MAX_FIELD + 2] = '\0';
		expect_ascii_err(longline, -E2BIG, "buf field exceeds");
		/* a path over IMA_MAX_PATH */
		n = sizeof(pfx_ng) - 1;
		memset(longline, 'p', IMA_MAX_LINE + 63);
		memcpy(longline, pfx_ng, n);
		longline[n + IMA_MAX_PATH] = '\0'; /* "/" + IMA_MAX_PATH chars */
		expect_ascii_err(longline, -E2BIG, "n-ng field");
		longline[n + IMA_MAX_PATH - 1] = '\0'; /* exactly at the limit: fine */
		expect_ascii_err(longline, 0, NULL);
	}
}

/* Spaces in a path (pre-4.13 kernels) and the "%2d" PCR format. */
static void test_ascii_layout(void **state)
{
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	_cleanup_free_ char *dd = vec_line(v, "signatures_ima_sig", 0);
	_cleanup_(ima_list_freep) struct ima_list *l = NULL, *l2 = NULL;
	struct tbuf b = { 0 }, d = { 0 };
	uint8_t dig[20] = { 7 };
	char th[41], dh[41], *line;

	/* replace "/usr/bin/dd" by "/usr/bin/d d x": the sig is still split off the end */
	{
		char *p = strstr(dd, "/usr/bin/dd "), *nl = NULL;

		assert_non_null(p);
		assert_true(asprintf(&nl, "%.*s/usr/bin/d d x%s", (int)(p - dd), dd,
				     p + strlen("/usr/bin/dd")) > 0);
		assert_int_equal(parse_str(nl, &l), 0);
		assert_string_equal(l->entries[0].path, "/usr/bin/d d x");
		assert_non_null(l->entries[0].sig);
		assert_false(l->entries[0].template_hash_ok); /* the data changed */
		free(nl);
	}

	/* PCR 9 printed as " 9" */
	tb_dng(&d, "sha1", dig, 20);
	tb_field(&d, "/p", 3);
	tb_entry(&b, 9, "ima-ng", &d);
	hex_of(b.p + 4, 20, th);
	hex_of(dig, 20, dh);
	assert_true(asprintf(&line, " 9 %s ima-ng sha1:%s /p\n", th, dh) > 0);
	assert_int_equal(parse_str(line, &l2), 0);
	assert_int_equal(l2->entries[0].pcr, 9);
	assert_true(l2->entries[0].template_hash_ok);
	free(line);
	free(b.p);
	free(d.p);
}

/* Per-bank ascii lists (ascii_runtime_measurements_sha256) carry sha256 template hashes. */
static void test_sha256_template_hash(void **state)
{
	_cleanup_(ima_list_freep) struct ima_list *bin = load_list("charra-ima-ng-mixed-algs.bin");
	_cleanup_(ima_list_freep) struct ima_list *asc = NULL;
	struct ima_replay_state sa, sb;
	struct tbuf t = { 0 }, b = { 0 };

	for (size_t i = 0; i < bin->n_entries; i++) {
		const struct ima_entry *e = &bin->entries[i];
		uint8_t h[32];
		char hex[65], *dh = kq_hex_dup(e->digest, e->digest_len), *line;

		assert_int_equal(ima_entry_template_digest(e, KQ_ALG_SHA256, h), 0);
		hex_of(h, 32, hex);
		assert_true(asprintf(&line, "10 %s ima-ng %s:%s %s\n", hex, ima_hash_algo_name(e->digest_algo),
				     dh, e->path) > 0);
		tb_str(&t, line);
		free(line);
		free(dh);
		/* and the binary_runtime_measurements_sha256 form */
		tb_u32(&b, 10);
		tb_put(&b, h, 32);
		tb_u32(&b, 6);
		tb_str(&b, "ima-ng");
		tb_u32(&b, (uint32_t)e->template_data_len);
		tb_put(&b, e->template_data, e->template_data_len);
	}
	asc = parse_ok(t.p, t.len, NULL);
	assert_int_equal(asc->entries[0].template_hash_alg, KQ_ALG_SHA256);
	ima_replay_init(&sa, 0, 0);
	ima_replay_init(&sb, 0, 0);
	assert_int_equal(ima_replay_list(&sa, asc), 0);
	assert_int_equal(ima_replay_list(&sb, bin), 0);
	assert_memory_equal(&sa, &sb, sizeof(sa));
	assert_int_equal(sa.bad_entries, 0);
	{
		struct ima_parse_opts o = { .template_hash_alg = KQ_ALG_SHA256 };
		_cleanup_(ima_list_freep) struct ima_list *b256 = parse_ok(b.p, b.len, &o);
		struct ima_replay_state sc;

		ima_replay_init(&sc, 0, 0);
		assert_int_equal(ima_replay_list(&sc, b256), 0);
		assert_memory_equal(&sc, &sb, sizeof(sc));
	}
	free(t.p);
	free(b.p);
}

/* Big-endian binary lists (no ima_canonical_fmt on a big-endian machine). */
static void test_big_endian(void **state)
{
	uint8_t dig[32] = { 3 }, th[20];
	struct tbuf d = { 0 }, b = { 0 };
	static const uint8_t be10[4] = { 0, 0, 0, 10 }, be6[4] = { 0, 0, 0, 6 };
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	struct ima_parse_opts o = { .big_endian = true, .format = IMA_FORMAT_BINARY };
	uint8_t len[4];

	/* field lengths in the template data are big-endian too */
	{
		static const uint8_t l1[4] = { 0, 0, 0, 40 }, l2[4] = { 0, 0, 0, 3 };
		tb_put(&d, l1, 4);
		tb_put(&d, "sha256:", 8);
		tb_put(&d, dig, 32);
		tb_put(&d, l2, 4);
		tb_put(&d, "/b", 3);
	}
	assert_int_equal(kq_hash(KQ_ALG_SHA1, d.p, d.len, th), 0);
	tb_put(&b, be10, 4);
	tb_put(&b, th, 20);
	tb_put(&b, be6, 4);
	tb_str(&b, "ima-ng");
	len[0] = 0, len[1] = 0, len[2] = (uint8_t)(d.len >> 8), len[3] = (uint8_t)d.len;
	tb_put(&b, len, 4);
	tb_put(&b, d.p, d.len);
	l = parse_ok(b.p, b.len, &o);
	assert_int_equal(l->entries[0].pcr, 10);
	assert_true(l->entries[0].template_hash_ok);
	assert_string_equal(l->entries[0].path, "/b");
	free(b.p);
	free(d.p);
}

static void test_empty_and_api(void **state)
{
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	struct ima_replay_state st;

	assert_int_equal(ima_list_parse((const uint8_t *)"", 0, NULL, &l), 0);
	assert_int_equal(l->n_entries, 0);
	ima_replay_init(&st, 0, 0);
	assert_int_equal(st.banks, IMA_BANKS_DEFAULT);
	assert_int_equal(ima_replay_list(&st, l), 0);
	assert_int_equal(st.next_index, 0);
	assert_null(ima_replay_pcr(&st, 10, KQ_ALG_SHA384));
	assert_null(ima_replay_pcr(&st, 24, KQ_ALG_SHA1));
	assert_int_equal(ima_hash_algo_from_name("sha3-256", 8), IMA_HASH_SHA3_256);
	assert_int_equal(ima_hash_algo_from_name("sm3-256", 7), IMA_HASH_SM3_256);
	assert_int_equal(ima_hash_algo_from_name("sha", 3), IMA_HASH_UNKNOWN);
	assert_int_equal(ima_hash_algo_size(IMA_HASH_SHA384), 48);
	assert_int_equal(ima_hash_algo_to_tpm(IMA_HASH_SHA256), KQ_ALG_SHA256);
	assert_null(ima_hash_algo_name(IMA_HASH_UNKNOWN));
	assert_string_equal(ima_field_name(IMA_FIELD_D_NG), "d-ng");
	assert_int_equal(ima_bank_from_alg(KQ_ALG_SHA512), IMA_BANK_SHA512);
	{
		struct ima_sig_hdr h;
		static const uint8_t s[] = { 3, 2, 4, 1, 2, 3, 4, 0, 1, 0xaa };
		assert_int_equal(ima_sig_parse(s, sizeof(s), &h), 0);
		assert_int_equal(h.keyid, 0x01020304);
		assert_int_equal(h.sig_len, 1);
		assert_int_equal(ima_sig_parse(s, sizeof(s) - 1, &h), -EBADMSG);
		assert_int_equal(ima_sig_parse(s, 5, &h), -EBADMSG);
	}
}

/* ---- the CLI ---- */

static int run(const char *cmd, char **out)
{
	FILE *f = popen(cmd, "r");
	struct tbuf b = { 0 };
	char chunk[4096];
	size_t n;
	int st;

	assert_non_null(f);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		tb_put(&b, chunk, n);
	tb_put(&b, "", 1);
	st = pclose(f);
	if (out)
		*out = (char *)b.p;
	else
		free(b.p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void **state)
{
	const char *kq = getenv("KUMQUAT"), *td = getenv("KQ_TESTDATA");
	_cleanup_(json_object_putp) struct json_object *exp = testdata_json("ima/expected-pcr10.json");
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	char dir[] = "/tmp/kq-ima-test-XXXXXX", *cmd, *out;

	if (!kq)
		skip();
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
		struct json_object *e = json_object_object_get(exp, lists[i]), *j, *bad;
		int rc;

		assert_true(asprintf(&cmd, "'%s' ima replay '%s/ima/%s' --json 2>/dev/null", kq, td, lists[i]) > 0);
		rc = run(cmd, &out);
		free(cmd);
		bad = json_object_object_get(e, "entries_whose_template_hash_does_not_match_their_data");
		assert_int_equal(rc, json_object_array_length(bad) ? 1 : 0);
		j = json_tokener_parse(out);
		assert_non_null(j);
		assert_int_equal(json_object_get_int(json_object_object_get(j, "entries")),
				 json_object_get_int(json_object_object_get(e, "entries")));
		assert_string_equal(json_object_get_string(json_object_object_get(json_object_object_get(j, "pcr10"), "sha1")),
				    json_object_get_string(json_object_object_get(e, "pcr10_sha1")));
		assert_string_equal(json_object_get_string(json_object_object_get(json_object_object_get(j, "pcr10"), "sha256")),
				    json_object_get_string(json_object_object_get(e, "pcr10_sha256")));
		assert_true(json_object_equal(json_object_object_get(j, "bad_entries"), bad));
		json_object_put(j);
		free(out);
	}
	/* the reason names the bad entry */
	assert_true(asprintf(&cmd, "'%s' ima replay '%s/ima/ibm-acs-ima-sig.bin' 2>&1 >/dev/null", kq, td) > 0);
	assert_int_equal(run(cmd, &out), 1);
	assert_non_null(strstr(out, "kumquat: entry 1079"));
	free(out);
	free(cmd);

	/* usage and unreadable input */
	assert_true(asprintf(&cmd, "'%s' ima replay /nonexistent 2>/dev/null", kq) > 0);
	assert_int_equal(run(cmd, NULL), 2);
	free(cmd);
	assert_true(asprintf(&cmd, "'%s' ima replay 2>/dev/null", kq) > 0);
	assert_int_equal(run(cmd, NULL), 2);
	free(cmd);
	assert_true(asprintf(&cmd, "'%s' ima frobnicate 2>/dev/null", kq) > 0);
	assert_int_equal(run(cmd, NULL), 2);
	free(cmd);
	assert_true(asprintf(&cmd, "'%s' ima replay --help", kq) > 0);
	assert_int_equal(run(cmd, NULL), 0);
	free(cmd);
	assert_true(asprintf(&cmd, "'%s' ima verify-sigs --help", kq) > 0);
	assert_int_equal(run(cmd, NULL), 0);
	free(cmd);

	/* verify-sigs over the vectors, keys in files */
	assert_non_null(mkdtemp(dir));
	{
		char *p;
		struct json_object *sigs = json_object_object_get(v, "signatures_ima_sig");
		struct tbuf b = { 0 };

		for (size_t i = 0; i < 2; i++) {
			tb_str(&b, json_object_get_string(json_object_array_get_idx(sigs, i)));
			tb_str(&b, "\n");
		}
		assert_true(asprintf(&p, "%s/sigs.txt", dir) > 0);
		assert_int_equal(kq_write_file(p, b.p, b.len), 0);
		free(p);
		free(b.p);
		assert_true(asprintf(&p, "%s/bad.txt", dir) > 0);
		assert_int_equal(kq_write_file(p, json_object_get_string(json_object_object_get(v, "bad_signature_line")),
					       strlen(json_object_get_string(json_object_object_get(v, "bad_signature_line")))), 0);
		free(p);
		assert_true(asprintf(&p, "%s/rsa.pem", dir) > 0);
		assert_int_equal(kq_write_file(p, json_object_get_string(json_object_object_get(v, "rsa2048_pub_pem")),
					       strlen(json_object_get_string(json_object_object_get(v, "rsa2048_pub_pem")))), 0);
		free(p);
		assert_true(asprintf(&p, "%s/ec.pem", dir) > 0);
		assert_int_equal(kq_write_file(p, json_object_get_string(json_object_object_get(v, "secp256k1_pub_pem")),
					       strlen(json_object_get_string(json_object_object_get(v, "secp256k1_pub_pem")))), 0);
		free(p);
	}
	assert_true(asprintf(&cmd, "'%s' ima verify-sigs %s/sigs.txt --key %s/rsa.pem --key %s/ec.pem --json",
			     kq, dir, dir, dir) > 0);
	assert_int_equal(run(cmd, &out), 0);
	{
		struct json_object *j = json_tokener_parse(out), *s;

		assert_non_null(j);
		s = json_object_object_get(j, "signatures");
		assert_int_equal(json_object_array_length(s), 2);
		for (size_t i = 0; i < 2; i++)
			assert_string_equal(json_object_get_string(json_object_object_get(
				json_object_array_get_idx(s, i), "status")), "valid");
		json_object_put(j);
	}
	free(out);
	free(cmd);
	assert_true(asprintf(&cmd, "'%s' ima verify-sigs %s/sigs.txt --key %s/rsa.pem 2>/dev/null", kq, dir, dir) > 0);
	assert_int_equal(run(cmd, NULL), 1); /* zmore: unknown key */
	free(cmd);
	assert_true(asprintf(&cmd, "'%s' ima verify-sigs %s/bad.txt --key %s/rsa.pem --key %s/ec.pem 2>/dev/null",
			     kq, dir, dir, dir) > 0);
	assert_int_equal(run(cmd, NULL), 1);
	free(cmd);
	assert_true(asprintf(&cmd, "'%s' ima verify-sigs %s/sigs.txt 2>/dev/null", kq, dir) > 0);
	assert_int_equal(run(cmd, NULL), 2); /* no key */
	free(cmd);
	assert_true(asprintf(&cmd, "'%s' ima verify-sigs %s/sigs.txt --key %s/sigs.txt 2>/dev/null", kq, dir, dir) > 0);
	assert_int_equal(run(cmd, NULL), 2); /* not a key */
	free(cmd);
	assert_true(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_lists),
		cmocka_unit_test(test_reader_matches_list),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_hpe_matches_quote),
		cmocka_unit_test(test_bad_entry_uses_recorded_hash),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_vectors_replay),
		cmocka_unit_test(test_vectors_sigs),
		cmocka_unit_test(test_sig_algo_mismatch),
		cmocka_unit_test(test_vectors_ima_buf),
		cmocka_unit_test(test_keyring_errors),
		cmocka_unit_test(test_ascii_binary_equivalence),
		cmocka_unit_test(test_ima_template),
		cmocka_unit_test(test_violation),
		cmocka_unit_test(test_other_pcr),
		cmocka_unit_test(test_other_templates),
		cmocka_unit_test(test_unknown_template_binary),
		cmocka_unit_test(test_hostile_binary),
		cmocka_unit_test(test_hostile_ascii),
		cmocka_unit_test(test_ascii_layout),
		cmocka_unit_test(test_sha256_template_hash),
		cmocka_unit_test(test_big_endian),
		cmocka_unit_test(test_empty_and_api),
		cmocka_unit_test(test_cli),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
