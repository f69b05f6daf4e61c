/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/imapolicy: golden tests over the keylime vectors (runtime_policy_test,
 * ima-sig signatures, the ima-buf keyring entry), the DSSE-signed keylime
 * policy, a policy built from the real hpe IMA list, and hostile policies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ima/ima.h"
#include "imapolicy/imapolicy.h"
#include "json/json.h"
#include "testlib.h"
#include "util/util.h"

/* The DSSE public key of policy/keylime-runtime-policy-dsse.json (MANIFEST.md). */
static const char dsse_pub[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEXIgsNuIpHj5ogMLDd+u/lxsAyKjv\n"
	"toXL1efXBUQ/MbCHlqnhUnn4I31sp6zBFrSYQJ1Bzz5OHLf1UqsOgy0Cpw==\n"
	"-----END PUBLIC KEY-----\n";

static inline void json_object_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}

static int parse_str(const char *s, const struct imapolicy_load_opts *o, struct imapolicy **ret)
{
	return imapolicy_parse((const uint8_t *)s, strlen(s), o, ret);
}

static struct imapolicy *policy_ok(const char *s, const struct imapolicy_load_opts *o)
{
	struct imapolicy *p = NULL;
	int r = parse_str(s, o, &p);

	if (r < 0)
		fail_msg("policy parse failed: %d %s", r, kq_errmsg());
	return p;
}

static struct imapolicy *policy_obj(struct json_object *o, const struct imapolicy_load_opts *opts)
{
	return policy_ok(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), opts);
}

/* The lines of a vectors array as one ascii list. */
static struct ima_list *vec_list(struct json_object *v, const char *key)
{
	struct json_object *arr = json_object_object_get(v, key);
	struct ima_list *l = NULL;
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);

	assert_non_null(f);
	for (size_t i = 0; i < (json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 1); i++) {
		const char *line = json_object_get_string(
			json_object_is_type(arr, json_type_array) ? json_object_array_get_idx(arr, i) : arr);
		size_t n = strlen(line);

		fprintf(f, "%s%s", line, n && line[n - 1] == '\n' ? "" : "\n");
	}
	fclose(f);
	if (ima_list_parse((const uint8_t *)buf, blen, NULL, &l) < 0)
		fail_msg("%s: %s", key, kq_errmsg());
	free(buf);
	return l;
}

static void check(const struct imapolicy *p, const struct ima_entry *e, bool ok, const char *reason)
{
	struct imapolicy_verdict v;

	assert_int_equal(imapolicy_check_entry(p, e, &v), 0);
	if (v.ok != ok || strcmp(v.reason, reason) != 0)
		fail_msg("entry %llu: got %s/%s (%s), want %s/%s", (unsigned long long)e->index,
			 v.ok ? "ok" : "fail", v.reason, v.message, ok ? "ok" : "fail", reason);
}

static const char empty_policy[] = "{\"meta\":{\"version\":1}}";

/* ---- keylime vectors ---- */

static void test_vectors_measurements(void **state)
{
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	_cleanup_(ima_list_freep) struct ima_list *l = vec_list(v, "measurements_ima_sig_no_signature");
	_cleanup_(imapolicy_freep) struct imapolicy *p =
		policy_obj(json_object_object_get(v, "runtime_policy_test"), NULL);
	_cleanup_(imapolicy_freep) struct imapolicy *empty = policy_ok(empty_policy, NULL);

	assert_int_equal(l->n_entries, 3);
	assert_string_equal(l->entries[0].path, "boot_aggregate");
	assert_int_equal(imapolicy_n_paths(p), 6);
	assert_int_equal(imapolicy_log_hash_alg(p), KQ_ALG_SHA1);
	assert_false(imapolicy_was_signed(p));
	for (size_t i = 0; i < l->n_entries; i++) {
		check(p, &l->entries[i], true, "allowed");
		check(empty, &l->entries[i], false, "not_in_allowlist");
	}
}

static void test_vectors_signatures(void **state)
{
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	_cleanup_(ima_list_freep) struct ima_list *l = vec_list(v, "signatures_ima_sig");
	_cleanup_(ima_list_freep) struct ima_list *bad = vec_list(v, "bad_signature_line");
	const char *rsa = jstr(v, "rsa2048_pub_pem"), *ec = jstr(v, "secp256k1_pub_pem");
	const char *both_keys[] = { rsa, ec };
	struct imapolicy_load_opts o_rsa = { .ima_keys = both_keys, .n_ima_keys = 1 };
	struct imapolicy_load_opts o_both = { .ima_keys = both_keys, .n_ima_keys = 2 };
	_cleanup_(imapolicy_freep) struct imapolicy *none = policy_ok(empty_policy, NULL);
	_cleanup_(imapolicy_freep) struct imapolicy *p_rsa = policy_ok(empty_policy, &o_rsa);
	_cleanup_(imapolicy_freep) struct imapolicy *p_both = policy_ok(empty_policy, &o_both);
	_cleanup_(imapolicy_freep) struct imapolicy *allow_rsa =
		policy_obj(json_object_object_get(v, "runtime_policy_test"), &o_rsa);

	assert_int_equal(l->n_entries, 2);
	assert_int_equal(imapolicy_n_sig_keys(p_both), 2);
	/* no keys, no digests: both fail */
	check(none, &l->entries[0], false, "not_in_allowlist");
	check(none, &l->entries[1], false, "not_in_allowlist");
	/* rsa only: dd passes on its signature, zmore (secp256k1) does not */
	check(p_rsa, &l->entries[0], true, "signature_ok");
	check(p_rsa, &l->entries[1], false, "not_in_allowlist");
	/* both keys: both pass */
	check(p_both, &l->entries[0], true, "signature_ok");
	check(p_both, &l->entries[1], true, "signature_ok");
	/* unknown key falls back to the allowlist, as in Keylime */
	check(allow_rsa, &l->entries[1], true, "allowed");
	/* bad_signature_line (bad size field) is rejected: its template hash is the one
	 * of the original line, so it no longer matches */
	check(p_both, &bad->entries[0], false, "template_hash_mismatch");
	check(none, &bad->entries[0], false, "template_hash_mismatch");
	/* had the template hash been recomputed, the malformed signature is still
	 * refused when keys are configured, even though its digest is allowlisted */
	{
		_cleanup_(imapolicy_freep) struct imapolicy *a =
			policy_obj(json_object_object_get(v, "runtime_policy_test"), &o_both);
		struct ima_entry e = bad->entries[0];

		e.template_hash_ok = true;
		check(p_both, &e, false, "bad_signature");
		check(a, &e, false, "bad_signature");
	}
}

/* Keys carried by the policy itself ("verification-keys", Keylime's ImaKeyrings JSON). */
static void test_policy_verification_keys(void **state)
{
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	_cleanup_(ima_list_freep) struct ima_list *l = vec_list(v, "signatures_ima_sig");
	_cleanup_(json_object_putp) struct json_object *pol = json_object_new_object();
	_cleanup_(json_object_putp) struct json_object *kr = json_object_new_object();
	_cleanup_(imapolicy_freep) struct imapolicy *p = NULL;
	struct json_object *ima = json_object_new_object(), *keys = json_object_new_array(), *meta;

	json_object_array_add(keys, json_object_new_string(jstr(v, "rsa2048_pub_pem")));
	json_object_array_add(keys, json_object_new_string(jstr(v, "secp256k1_pub_pem")));
	json_object_object_add(ima, "keyids", json_object_new_array());
	json_object_object_add(ima, "pubkeys", keys);
	json_object_object_add(kr, "ima", ima);
	meta = json_object_new_object();
	json_object_object_add(meta, "version", json_object_new_int(1));
	json_object_object_add(pol, "meta", meta);
	json_object_object_add(pol, "verification-keys",
			       json_object_new_string(json_object_to_json_string_ext(kr, JSON_C_TO_STRING_PLAIN)));
	p = policy_obj(pol, NULL);
	assert_int_equal(imapolicy_n_sig_keys(p), 2);
	check(p, &l->entries[0], true, "signature_ok");
	check(p, &l->entries[1], true, "signature_ok");
}

static void test_vectors_keyring(void **state)
{
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	_cleanup_(ima_list_freep) struct ima_list *l = vec_list(v, "keyrings_ima_buf");
	struct json_object *rp = json_object_object_get(v, "runtime_policy_test");
	_cleanup_(imapolicy_freep) struct imapolicy *p = policy_obj(rp, NULL);
	_cleanup_(imapolicy_freep) struct imapolicy *empty = policy_ok(empty_policy, NULL);
	const struct ima_entry *e;

	assert_int_equal(l->n_entries, 1);
	e = &l->entries[0];
	check(p, e, true, "keyring_ok");
	check(empty, e, false, "unknown_keyring");
	{
		_cleanup_(imapolicy_freep) struct imapolicy *q = policy_ok(
			"{\"meta\":{\"version\":1},\"keyrings\":{\".ima\":[\"sha256:"
			"a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5b\"]}}", NULL);
		check(q, e, false, "digest_mismatch");
	}
	{
		_cleanup_(imapolicy_freep) struct imapolicy *q = policy_ok(
			"{\"meta\":{\"version\":1},\"ima\":{\"ignored_keyrings\":[\".ima\"]}}", NULL);
		_cleanup_(imapolicy_freep) struct imapolicy *s = policy_ok(
			"{\"meta\":{\"version\":1},\"ima\":{\"ignored_keyrings\":[\"*\"]}}", NULL);
		check(q, e, true, "ignored_keyring");
		check(s, e, true, "ignored_keyring");
	}
	{
		/* an algorithm prefix must match the entry's */
		_cleanup_(imapolicy_freep) struct imapolicy *q = policy_ok(
			"{\"meta\":{\"version\":1},\"keyrings\":{\".ima\":[\"sm3-256:"
			"a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a\"]}}", NULL);
		check(q, e, false, "digest_mismatch");
	}
}

/* ---- DSSE ---- */

/* Flips one base64 character of field (in the envelope or its first signature) to
 * another valid one, changing one decoded byte. */
static char *tamper(const char *env_text, bool in_sig)
{
	_cleanup_(json_object_putp) struct json_object *o = json_tokener_parse(env_text);
	struct json_object *holder, *f;
	char *s, *out;
	size_t n;

	assert_non_null(o);
	holder = in_sig ? json_object_array_get_idx(json_object_object_get(o, "signatures"), 0) : o;
	f = json_object_object_get(holder, in_sig ? "sig" : "payload");
	s = strdup(json_object_get_string(f));
	n = strlen(s);
	s[n / 2] = s[n / 2] == 'A' ? 'B' : 'A';
	json_object_object_add(holder, in_sig ? "sig" : "payload", json_object_new_string(s));
	free(s);
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	assert_non_null(out);
	return out;
}

static void test_dsse(void **state)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_free_ char *bad_payload = NULL, *bad_sig = NULL;
	_cleanup_(imapolicy_freep) struct imapolicy *p = NULL;
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	const char *keys[] = { dsse_pub };
	const char *wrong[] = { NULL };
	struct imapolicy_load_opts o = { .dsse_keys = keys, .n_dsse_keys = 1 };
	struct imapolicy_load_opts ow = { .dsse_keys = wrong, .n_dsse_keys = 1 };
	struct imapolicy *q = NULL;
	size_t len;

	buf = testdata_load("policy/keylime-runtime-policy-dsse.json", &len);
	assert_int_equal(imapolicy_parse(buf, len, &o, &p), 0);
	assert_true(imapolicy_was_signed(p));
	assert_int_equal(imapolicy_n_paths(p), 21);

	/* no key configured */
	assert_int_equal(imapolicy_parse(buf, len, NULL, &q), -EPERM);
	assert_non_null(strstr(kq_errmsg(), "no trusted key"));
	assert_int_equal(imapolicy_parse(buf, len, &(struct imapolicy_load_opts){ 0 }, &q), -EPERM);
	/* a key that did not sign it (secp256k1 from the IMA vectors) */
	wrong[0] = jstr(v, "secp256k1_pub_pem");
	assert_int_equal(imapolicy_parse(buf, len, &ow, &q), -EPERM);
	assert_non_null(strstr(kq_errmsg(), "no signature verifies"));
	/* not a key */
	wrong[0] = "not a pem";
	assert_int_equal(imapolicy_parse(buf, len, &ow, &q), -EINVAL);
	/* one byte changed in the payload or in the signature */
	bad_payload = tamper((const char *)buf, false);
	assert_int_equal(parse_str(bad_payload, &o, &q), -EPERM);
	bad_sig = tamper((const char *)buf, true);
	assert_int_equal(parse_str(bad_sig, &o, &q), -EPERM);
	assert_null(q);

	/* a plain policy when a signed one is required */
	{
		struct imapolicy_load_opts rs = { .dsse_keys = keys, .n_dsse_keys = 1, .require_signed = true };
		_cleanup_(imapolicy_freep) struct imapolicy *s = NULL;

		assert_int_equal(parse_str(empty_policy, &rs, &q), -EPERM);
		assert_int_equal(imapolicy_parse(buf, len, &rs, &s), 0);
	}
	/* envelope shape errors */
	assert_int_equal(parse_str("{\"payloadType\":\"text/plain\",\"payload\":\"e30=\",\"signatures\":[{\"sig\":\"AA==\"}]}",
				   &o, &q), -EBADMSG);
	assert_int_equal(parse_str("{\"payloadType\":\"application/vnd.keylime+json\",\"payload\":\"e30=\",\"signatures\":[]}",
				   &o, &q), -EPERM);
	assert_int_equal(parse_str("{\"payloadType\":\"application/vnd.keylime+json\",\"payload\":\"e30\",\"signatures\":[{\"sig\":\"AA==\"}]}",
				   &o, &q), -EBADMSG);
	assert_int_equal(parse_str("{\"payloadType\":\"application/vnd.keylime+json\",\"payload\":\"e30=\",\"signatures\":[{\"sig\":\"AA==\"}]}",
				   &o, &q), -EPERM);
}

/* ---- a policy built from the hpe list ---- */

static struct json_object *policy_from_list(const struct ima_list *l)
{
	struct json_object *pol = json_object_new_object(), *meta = json_object_new_object();
	struct json_object *dig = json_object_new_object();

	json_object_object_add(meta, "version", json_object_new_int(1));
	json_object_object_add(pol, "meta", meta);
	json_object_object_add(pol, "digests", dig);
	json_object_object_add(pol, "excludes", json_object_new_array());
	for (size_t i = 0; i < l->n_entries; i++) {
		const struct ima_entry *e = &l->entries[i];
		struct json_object *arr = json_object_object_get(dig, e->path);
		char hex[2 * KQ_MAX_DIGEST + 1];

		if (!arr) {
			arr = json_object_new_array();
			json_object_object_add(dig, e->path, arr);
		}
		kq_hex_encode(e->digest, e->digest_len, hex);
		json_object_array_add(arr, json_object_new_string(hex));
	}
	return pol;
}

/* Checks every entry: only index bad (if any) fails, with reason. */
static void check_all(const struct imapolicy *p, const struct ima_list *l, size_t bad, const char *reason)
{
	for (size_t i = 0; i < l->n_entries; i++) {
		struct imapolicy_verdict v;

		assert_int_equal(imapolicy_check_entry(p, &l->entries[i], &v), 0);
		if (i == bad) {
			char want[32];

			assert_false(v.ok);
			assert_string_equal(v.reason, reason);
			snprintf(want, sizeof(want), "entry %zu (", i);
			assert_non_null(strstr(v.message, want));
			assert_non_null(strstr(v.message, l->entries[i].path));
		} else if (!v.ok) {
			fail_msg("entry %zu failed: %s", i, v.message);
		}
	}
}

static void test_hpe(void **state)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_(ima_list_freep) struct ima_list *l = NULL;
	_cleanup_(json_object_putp) struct json_object *pol = NULL;
	struct json_object *dig, *arr;
	const size_t k = 100;
	const char *path;
	size_t len;

	buf = testdata_load("ima/hpe-perf-ima-ng-sha256.txt", &len);
	assert_int_equal(ima_list_parse(buf, len, NULL, &l), 0);
	assert_int_equal(l->n_entries, 780);
	pol = policy_from_list(l);
	dig = json_object_object_get(pol, "digests");
	path = l->entries[k].path;
	arr = json_object_object_get(dig, path);
	assert_int_equal(json_object_array_length(arr), 1);

	{
		_cleanup_(imapolicy_freep) struct imapolicy *p = policy_obj(pol, NULL);
		assert_int_equal(imapolicy_n_paths(p), json_object_object_length(dig));
		check_all(p, l, SIZE_MAX, NULL);
		/* boot_aggregate is an ordinary path of "digests" */
		check(p, &l->entries[0], true, "allowed");
	}
	/* one digest changed: exactly that entry fails */
	{
		_cleanup_free_ char *h = strdup(json_object_get_string(json_object_array_get_idx(arr, 0)));
		_cleanup_(imapolicy_freep) struct imapolicy *p = NULL;

		h[0] = h[0] == '0' ? '1' : '0';
		json_object_array_put_idx(arr, 0, json_object_new_string(h));
		p = policy_obj(pol, NULL);
		check_all(p, l, k, "digest_mismatch");
	}
	/* the path removed */
	{
		_cleanup_(imapolicy_freep) struct imapolicy *p = NULL;
		_cleanup_free_ char *saved = strdup(path);

		json_object_object_del(dig, path);
		p = policy_obj(pol, NULL);
		check_all(p, l, k, "not_in_allowlist");
		/* an exclude (anchored at the start, as Keylime's re.match) lets it pass */
		{
			_cleanup_(imapolicy_freep) struct imapolicy *x = NULL, *y = NULL, *z = NULL;
			struct json_object *ex = json_object_object_get(pol, "excludes");
			const char *slash = strrchr(saved, '/');
			char re[256];

			assert_non_null(slash);
			snprintf(re, sizeof(re), "%.*s", (int)(slash - saved), saved);
			json_object_array_add(ex, json_object_new_string(re));
			x = policy_obj(pol, NULL);
			assert_int_equal(imapolicy_n_excludes(x), 1);
			check_all(x, l, SIZE_MAX, NULL);
			check(x, &l->entries[k], true, "excluded");
			/* not anchored at the end: a prefix is enough; but the start is anchored */
			json_object_array_put_idx(ex, 0, json_object_new_string(slash + 1));
			y = policy_obj(pol, NULL);
			check_all(y, l, k, "not_in_allowlist");
			json_object_array_put_idx(ex, 0, json_object_new_string(".*/[^/]+\\.ko\\.zst$|/nonexistent"));
			z = policy_obj(pol, NULL);
			check(z, &l->entries[1], true, "excluded");
		}
	}
}

/* ---- violations, template hash, pcr ---- */

static void test_entry_states(void **state)
{
	_cleanup_(json_object_putp) struct json_object *v = testdata_json("ima/ima-sig-vectors.json");
	_cleanup_(ima_list_freep) struct ima_list *l = vec_list(v, "measurements_ima_sig_no_signature");
	_cleanup_(imapolicy_freep) struct imapolicy *p =
		policy_obj(json_object_object_get(v, "runtime_policy_test"), NULL);
	_cleanup_(imapolicy_freep) struct imapolicy *pv = NULL;
	struct imapolicy_load_opts ov = { .allow_violations = true };
	struct ima_entry e = l->entries[1];
	struct imapolicy_verdict vd;

	pv = policy_obj(json_object_object_get(v, "runtime_policy_test"), &ov);
	e.template_hash_ok = false;
	check(p, &e, false, "template_hash_mismatch");
	e.violation = true;
	check(p, &e, false, "violation");
	check(pv, &e, true, "violation_ignored");
	e = l->entries[1];
	e.pcr = 11;
	check(p, &e, false, "wrong_pcr");
	assert_int_equal(imapolicy_check_entry(NULL, &e, &vd), -EINVAL);
	assert_int_equal(imapolicy_check_entry(p, NULL, &vd), -EINVAL);
}

/* ---- hostile policies ---- */

static void expect_err(const char *s, int err, const char *msg)
{
	struct imapolicy *p = NULL;
	int r = parse_str(s, NULL, &p);

	if (r != err)
		fail_msg("'%.80s': got %d (%s), want %d", s, r, kq_errmsg(), err);
	assert_null(p);
	if (msg && !strstr(kq_errmsg(), msg))
		fail_msg("'%.80s': message '%s' lacks '%s'", s, kq_errmsg(), msg);
}

static void test_hostile(void **state)
{
	char *big;
	size_t n;

	expect_err("", -EBADMSG, NULL);
	expect_err("{", -EBADMSG, NULL);
	expect_err("[]", -EBADMSG, "not a JSON object");
	expect_err("{\"meta\":{\"version\":1}} x", -EBADMSG, NULL);
	expect_err("{\"meta\":{\"version\":1},\"meta\":{\"version\":1}}", -EBADMSG, NULL);
	expect_err("{}", -EBADMSG, "meta");
	expect_err("{\"meta\":{\"version\":\"1\"}}", -EBADMSG, "meta.version");
	expect_err("{\"meta\":{\"version\":2}}", -ENOTSUP, "version");
	expect_err("{\"meta\":{\"version\":1},\"bogus\":1}", -EBADMSG, "bogus");
	expect_err("{\"meta\":{\"version\":1},\"digests\":[]}", -EBADMSG, "digests");
	expect_err("{\"meta\":{\"version\":1},\"digests\":{\"/a\":\"00\"}}", -EBADMSG, "not an array");
	expect_err("{\"meta\":{\"version\":1},\"digests\":{\"/a\":[1]}}", -EBADMSG, "not a string");
	expect_err("{\"meta\":{\"version\":1},\"digests\":{\"/a\":[\"zz\"]}}", -EBADMSG, "hex");
	expect_err("{\"meta\":{\"version\":1},\"digests\":{\"/a\":[\"0011\"]}}", -EBADMSG, "bytes");
	expect_err("{\"meta\":{\"version\":1},\"digests\":{\"/a\":[\"sha256:00112233445566778899aabbccddeeff00112233\"]}}",
		   -EBADMSG, "bytes");
	expect_err("{\"meta\":{\"version\":1},\"digests\":{\"/a\":[\"foo:00112233445566778899aabbccddeeff00112233\"]}}",
		   -EBADMSG, "algorithm");
	expect_err("{\"meta\":{\"version\":1},\"digests\":{\"\":[]}}", -EBADMSG, "empty");
	expect_err("{\"meta\":{\"version\":1},\"excludes\":\"x\"}", -EBADMSG, "excludes");
	expect_err("{\"meta\":{\"version\":1},\"excludes\":[3]}", -EBADMSG, "excludes");
	expect_err("{\"meta\":{\"version\":1},\"excludes\":[\"(unclosed\"]}", -EBADMSG, "regex");
	expect_err("{\"meta\":{\"version\":1},\"excludes\":[\"a[\"]}", -EBADMSG, "regex");
	expect_err("{\"meta\":{\"version\":1},\"excludes\":[\"\"]}", -EBADMSG, "empty");
	/* Python-only syntax is refused, not misread */
	expect_err("{\"meta\":{\"version\":1},\"excludes\":[\"/tmp/\\\\d+\"]}", -EBADMSG, "escape");
	expect_err("{\"meta\":{\"version\":1},\"excludes\":[\"(?:/tmp)\"]}", -EBADMSG, "regex");
	/* no way out of the start anchoring */
	expect_err("{\"meta\":{\"version\":1},\"excludes\":[\"x)|(.*\"]}", -EBADMSG, "parenthesis");
	expect_err("{\"meta\":{\"version\":1},\"excludes\":[\"(x\"]}", -EBADMSG, "parenthesis");
	expect_err("{\"meta\":{\"version\":1},\"excludes\":[\"[x\"]}", -EBADMSG, "bracket");
	expect_err("{\"meta\":{\"version\":1},\"excludes\":[\"x\\\\\"]}", -EBADMSG, "backslash");
	expect_err("{\"meta\":{\"version\":1},\"excludes\":[\"(?i)/tmp\"]}", -EBADMSG, "regex");
	{
		_cleanup_(imapolicy_freep) struct imapolicy *p = policy_ok(
			"{\"meta\":{\"version\":1},\"excludes\":[\"/tmp/\\\\w+\\\\.log\", \"\\\\\\\\x\", "
			"\"/a[])(]b\", \"(/x|/y)\\\\)\"]}", NULL);
		assert_int_equal(imapolicy_n_excludes(p), 4);
	}
	expect_err("{\"meta\":{\"version\":1},\"ima\":{\"log_hash_alg\":\"md17\"}}", -EBADMSG, "log_hash_alg");
	expect_err("{\"meta\":{\"version\":1},\"ima\":{\"ignored_keyrings\":\".ima\"}}", -EBADMSG, "ignored_keyrings");
	expect_err("{\"meta\":{\"version\":1},\"ima\":{\"dm_policy\":{}}}", -ENOTSUP, "dm_policy");
	expect_err("{\"meta\":{\"version\":1},\"ima\":{\"x\":1}}", -EBADMSG, "unknown key");
	expect_err("{\"meta\":{\"version\":1},\"verification-keys\":1}", -EBADMSG, "verification-keys");
	expect_err("{\"meta\":{\"version\":1},\"verification-keys\":\"{\"}", -EBADMSG, "verification-keys");
	expect_err("{\"meta\":{\"version\":1},\"verification-keys\":\"{\\\"pubkeys\\\":[\\\"junk\\\"]}\"}", -EBADMSG,
		   "verification-keys");
	expect_err("{\"meta\":{\"version\":1},\"release\":\"x\"}", -EBADMSG, "release");

	/* a huge regex */
	n = IMAPOLICY_MAX_REGEX + 1;
	big = malloc(n + 128);
	assert_non_null(big);
	memcpy(big, "{\"meta\":{\"version\":1},\"excludes\":[\"", 35);
	memset(big + 35, 'a', n);
	memcpy(big + 35 + n, "\"]}", 4);
	expect_err(big, -E2BIG, "longer than");
	free(big);

	/* over the size limit (not read: refused on the length alone) */
	{
		struct imapolicy *p = NULL;
		assert_int_equal(imapolicy_parse((const uint8_t *)"{}", (size_t)IMAPOLICY_MAX_SIZE + 1, NULL, &p), -E2BIG);
		assert_int_equal(imapolicy_parse(NULL, 0, NULL, &p), -EINVAL);
	}
	/* too deep */
	{
		char deep[200] = "{\"meta\":{\"version\":1},\"digests\":";
		size_t o = strlen(deep);
		for (int i = 0; i < 40; i++)
			deep[o++] = '[';
		deep[o] = '\0';
		expect_err(deep, -EBADMSG, NULL);
	}
	imapolicy_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_measurements),
		cmocka_unit_test(test_vectors_signatures),
		cmocka_unit_test(test_policy_verification_keys),
		cmocka_unit_test(test_vectors_keyring),
		cmocka_unit_test(test_dsse),
		cmocka_unit_test(test_hpe),
		cmocka_unit_test(test_entry_states),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
