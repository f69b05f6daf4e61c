/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "json/json.h"

static int parse(const char *s, struct json_object **ret)
{
	return json_parse_body((const uint8_t *)s, strlen(s), 1 << 20, 8, ret);
}

static void expect_bad(const char *s, const char *msg_part)
{
	struct json_object *o = NULL;
	int r = parse(s, &o);

	if (r != -EBADMSG || (msg_part && !strstr(kq_errmsg(), msg_part))) {
		fprintf(stderr, "input %s: r=%d msg=%s (wanted %s)\n", s, r, kq_errmsg(),
			msg_part ? msg_part : "-");
		fail();
	}
	assert_null(o);
}

static void expect_good(const char *s)
{
	struct json_object *o = NULL;
	int r = parse(s, &o);

	if (r != 0) {
		fprintf(stderr, "input %s: %s\n", s, kq_errmsg());
		fail();
	}
	assert_non_null(o);
	json_object_put(o);
}

static void test_parse_good(void **state)
{
	struct json_object *o, *v;

	expect_good("{}");
	expect_good("[]");
	expect_good(" {\"a\" : [1, -2, 3.5, 1e10, -0, 0.5E-3, true, false, null, \"x\"]}\r\n\t ");
	expect_good("123");
	expect_good("\"str\"");
	expect_good("true");
	expect_good("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\"");
	expect_good("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	expect_good("[18446744073709551615, -9223372036854775808]");
	/* depth 8 is allowed, 9 is not */
	expect_good("[[[[[[[[1]]]]]]]]");
	expect_bad("[[[[[[[[[1]]]]]]]]]", "nesting too deep");
	expect_good("{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{}}}}}}}}");
	expect_bad("{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{}}}}}}}}}", "nesting");

	assert_int_equal(parse("{\"big\": 18446744073709551615, \"neg\": -9223372036854775808}", &o), 0);
	assert_true(json_object_object_get_ex(o, "big", &v));
	assert_true(json_object_get_uint64(v) == UINT64_MAX);
	assert_true(json_object_object_get_ex(o, "neg", &v));
	assert_true(json_object_get_int64(v) == INT64_MIN);
	json_object_put(o);
}

static void test_parse_bad(void **state)
{
	struct json_object *o = NULL;

	expect_bad("", "empty");
	expect_bad("   ", "end of input");
	expect_bad("null", "null");
	expect_bad("{\"a\":1} x", "trailing");
	expect_bad("{\"a\":1}{}", "trailing");
	expect_bad("{\"a\":1,}", NULL);
	expect_bad("[1,]", NULL);
	expect_bad("[1 2]", NULL);
	expect_bad("{'a':1}", NULL);
	expect_bad("{a:1}", NULL);
	expect_bad("/*c*/{}", NULL);
	expect_bad("{}//c", "trailing");
	expect_bad("NaN", NULL);
	expect_bad("Infinity", NULL);
	expect_bad("-Infinity", NULL);
	expect_bad("01", "leading zero");
	expect_bad("+1", NULL);
	expect_bad("1.", "fraction");
	expect_bad(".5", NULL);
	expect_bad("1e", "exponent");
	expect_bad("0x10", "trailing");
	expect_bad("tru", NULL);
	expect_bad("nulls", "trailing");
	expect_bad("\"abc", "unterminated");
	expect_bad("\"a\tb\"", "control character");
	expect_bad("\"a\nb\"", "control character");
	expect_bad("\"\\x41\"", "bad escape");
	expect_bad("\"\\u00G0\"", "bad \\u escape");
	expect_bad("\"\\u12\"", NULL);
	expect_bad("\"\\u0000\"", "\\u0000");
	expect_bad("{\"a\\u0000b\":1}", "\\u0000");
	expect_bad("\"\\ud800\"", "unpaired high");
	expect_bad("\"\\ud800\\u0041\"", "unpaired high");
	expect_bad("\"\\udc00\"", "unpaired low");
	expect_bad("\"\xc0\xaf\"", "UTF-8");         /* overlong '/' */
	expect_bad("\"\xe0\x80\xaf\"", "UTF-8");     /* overlong, 3 bytes */
	expect_bad("\"\xed\xa0\x80\"", "UTF-8");     /* encoded surrogate */
	expect_bad("\"\xf4\x90\x80\x80\"", "UTF-8"); /* above U+10FFFF */
	expect_bad("\"\xff\"", "UTF-8");
	expect_bad("\"\xc3\"", "UTF-8");             /* truncated sequence */
	expect_bad("\xef\xbb\xbf{}", NULL);          /* a BOM */
	expect_bad("18446744073709551616", "out of range");
	expect_bad("-9223372036854775809", "out of range");
	expect_bad("[99999999999999999999999]", "out of range");

	/* a NUL byte anywhere */
	assert_int_equal(json_parse_body((const uint8_t *)"{}\0", 3, 100, 8, &o), -EBADMSG);
	assert_int_equal(json_parse_body((const uint8_t *)"\"a\0b\"", 5, 100, 8, &o), -EBADMSG);
	/* limits */
	assert_int_equal(json_parse_body((const uint8_t *)"[1, 2, 3]", 9, 8, 8, &o), -E2BIG);
	assert_int_equal(json_parse_body((const uint8_t *)"[1, 2, 3]", 9, 9, 8, &o), 0);
	json_object_put(o);
	o = NULL;
	assert_int_equal(json_parse_body(NULL, 0, 8, 8, &o), -EBADMSG);
	assert_int_equal(json_parse_body((const uint8_t *)"1", 1, 8, 0, &o), 0);
	json_object_put(o);
	o = NULL;
	assert_int_equal(json_parse_body((const uint8_t *)"[]", 2, 8, 0, &o), -EBADMSG);
	assert_null(o);
}

static void test_parse_duplicates(void **state)
{
	expect_bad("{\"a\":1,\"a\":2}", "duplicate key in the object at offset 0");
	expect_bad("{\"a\":1,\"\\u0061\":2}", "duplicate");
	expect_bad("{\"x\":[{}, {\"b\":1}], \"y\":{\"c\":{\"d\":1,\"d\":1}}}", "offset 29");
	expect_bad("[{\"a\":{\"k\":1,\"k\":{\"z\":1}}}]", "duplicate");
	/* the dropped duplicate held objects: still found */
	expect_bad("{\"a\":{\"p\":{},\"q\":{}},\"a\":{}}", "duplicate");
	expect_good("{\"a\":1,\"A\":2,\"b\":{\"a\":1},\"c\":[{\"a\":1},{\"a\":1}]}");
}

static char *many_arrays(size_t n, size_t *ret_len)
{
	char *s = malloc(n * 3 + 2);
	size_t len = 0;

	assert_non_null(s);
	s[len++] = '[';
	for (size_t i = 0; i < n; i++) {
		memcpy(s + len, "[],", 3);
		len += 3;
	}
	s[len - 1] = ']';
	*ret_len = len;
	return s;
}

static void test_parse_containers(void **state)
{
	struct json_object *o = NULL;
	size_t len;
	char *s;

	/* the outer array and JSON_MAX_CONTAINERS - 1 inner ones */
	s = many_arrays(JSON_MAX_CONTAINERS - 1, &len);
	assert_int_equal(json_parse_body((uint8_t *)s, len, 1 << 20, 8, &o), 0);
	json_object_put(o);
	o = NULL;
	free(s);
	/* one more: refused before json-c builds anything */
	s = many_arrays(JSON_MAX_CONTAINERS, &len);
	assert_int_equal(json_parse_body((uint8_t *)s, len, 1 << 20, 8, &o), -EBADMSG);
	assert_non_null(strstr(kq_errmsg(), "too many"));
	assert_null(o);
	free(s);
}

struct target {
	char *name;
	struct json_bytes key;
	struct json_bytes digest;
	int64_t delta;
	uint64_t count;
	bool flag;
	struct json_object *meta;
	struct json_object *list;
};

static const struct json_field fields[] = {
	{ "name", JSON_STRING, true, 16, offsetof(struct target, name) },
	{ "key", JSON_BASE64, false, 8, offsetof(struct target, key) },
	{ "digest", JSON_HEX, false, 4, offsetof(struct target, digest) },
	{ "delta", JSON_INT64, false, 0, offsetof(struct target, delta) },
	{ "count", JSON_UINT64, false, 0, offsetof(struct target, count) },
	{ "flag", JSON_BOOL, false, 0, offsetof(struct target, flag) },
	{ "meta", JSON_OBJECT, false, 2, offsetof(struct target, meta) },
	{ "list", JSON_ARRAY, false, 3, offsetof(struct target, list) },
	{ NULL, 0, false, 0, 0 },
};

static int dispatch(const char *s, struct target *t, bool allow_unknown)
{
	struct json_object *o;
	int r;

	memset(t, 0, sizeof(*t));
	t->delta = 77; /* a default */
	if (parse(s, &o) < 0) {
		fprintf(stderr, "%s: %s\n", s, kq_errmsg());
		fail();
	}
	r = json_dispatch(o, fields, t, allow_unknown);
	json_object_put(o);
	return r;
}

static void assert_zeroed(const struct target *t)
{
	assert_null(t->name);
	assert_null(t->key.data);
	assert_null(t->digest.data);
	assert_null(t->meta);
	assert_null(t->list);
}

static void expect_dispatch_error(const char *s, const char *msg)
{
	struct target t;
	int r = dispatch(s, &t, false);

	if (r != -EINVAL || !strstr(kq_errmsg(), msg)) {
		fprintf(stderr, "input %s: r=%d msg=%s (wanted %s)\n", s, r, kq_errmsg(), msg);
		fail();
	}
	assert_zeroed(&t);
}

static void test_dispatch_all_types(void **state)
{
	struct target t;

	assert_int_equal(dispatch("{\"name\":\"agent-\xc3\xa9\",\"key\":\"AAECAwQ=\",\"digest\":\"DEADbeef\","
				  "\"delta\":-5,\"count\":18446744073709551615,\"flag\":true,"
				  "\"meta\":{\"a\":1},\"list\":[1,2,3]}", &t, false), 0);
	assert_string_equal(t.name, "agent-\xc3\xa9");
	assert_int_equal(t.key.len, 5);
	assert_memory_equal(t.key.data, "\0\1\2\3\4", 5);
	assert_int_equal(t.digest.len, 4);
	assert_memory_equal(t.digest.data, "\xde\xad\xbe\xef", 4);
	assert_true(t.delta == -5);
	assert_true(t.count == UINT64_MAX);
	assert_true(t.flag);
	assert_int_equal(json_object_object_length(t.meta), 1);
	assert_int_equal(json_object_array_length(t.list), 3);
	json_dispatch_free(fields, &t);
	assert_zeroed(&t);
	json_dispatch_free(fields, &t); /* twice is fine */

	/* optional fields absent or null: untouched */
	assert_int_equal(dispatch("{\"name\":\"\",\"key\":null,\"delta\":null}", &t, false), 0);
	assert_string_equal(t.name, "");
	assert_null(t.key.data);
	assert_true(t.delta == 77);
	json_dispatch_free(fields, &t);

	/* empty byte strings are present, with a non-NULL buffer */
	assert_int_equal(dispatch("{\"name\":\"n\",\"key\":\"\",\"digest\":\"\"}", &t, false), 0);
	assert_non_null(t.key.data);
	assert_int_equal(t.key.len, 0);
	assert_non_null(t.digest.data);
	json_dispatch_free(fields, &t);

	/* limits are inclusive */
	assert_int_equal(dispatch("{\"name\":\"0123456789abcdef\",\"key\":\"AAAAAAAAAAA=\","
				  "\"meta\":{\"a\":1,\"b\":2}}", &t, false), 0);
	assert_int_equal(t.key.len, 8);
	json_dispatch_free(fields, &t);

	/* unknown fields when allowed */
	assert_int_equal(dispatch("{\"name\":\"n\",\"other\":[1]}", &t, true), 0);
	json_dispatch_free(fields, &t);

	/* the result keeps its own reference */
	{
		struct json_object *o;

		assert_int_equal(parse("{\"name\":\"n\",\"meta\":{\"x\":[1]}}", &o), 0);
		memset(&t, 0, sizeof(t));
		assert_int_equal(json_dispatch(o, fields, &t, false), 0);
		json_object_put(o);
		assert_int_equal(json_object_object_length(t.meta), 1);
		json_dispatch_free(fields, &t);
	}
	json_dispatch_free(fields, &(struct target){ 0 });
}

static void test_dispatch_errors(void **state)
{
	struct target t;

	expect_dispatch_error("{}", "field 'name': missing");
	expect_dispatch_error("{\"name\":null}", "field 'name': missing");
	expect_dispatch_error("{\"name\":\"n\",\"bogus\":1}", "unknown field 'bogus'");
	expect_dispatch_error("{\"name\":1}", "field 'name': must be a string");
	expect_dispatch_error("{\"name\":\"0123456789abcdefg\"}", "field 'name': longer than 16");
	expect_dispatch_error("{\"name\":\"a\\u00e9\\ud83d\\ude00\",\"bogus\":1}", "unknown");
	/* everything set before the error is freed */
	expect_dispatch_error("{\"name\":\"n\",\"key\":\"AA==\",\"digest\":\"00\",\"meta\":{},"
			      "\"list\":{}}", "field 'list': must be an array");
	expect_dispatch_error("{\"name\":\"n\",\"key\":\"AA=\"}", "field 'key': not valid base64");
	expect_dispatch_error("{\"name\":\"n\",\"key\":\"AB==\"}", "not valid base64");
	expect_dispatch_error("{\"name\":\"n\",\"key\":\"AA==\\n\"}", "not valid base64");
	expect_dispatch_error("{\"name\":\"n\",\"key\":\" AA=\"}", "not valid base64");
	expect_dispatch_error("{\"name\":\"n\",\"key\":\"AA-_\"}", "not valid base64");
	expect_dispatch_error("{\"name\":\"n\",\"key\":\"AAAAAAAAAAAA\"}", "field 'key': longer than 8");
	expect_dispatch_error("{\"name\":\"n\",\"key\":5}", "field 'key': must be a base64 string");
	expect_dispatch_error("{\"name\":\"n\",\"digest\":\"abc\"}", "field 'digest': not valid hex");
	expect_dispatch_error("{\"name\":\"n\",\"digest\":\"0x12\"}", "not valid hex");
	expect_dispatch_error("{\"name\":\"n\",\"digest\":\"12 3\"}", "not valid hex");
	expect_dispatch_error("{\"name\":\"n\",\"digest\":\"0011223344\"}", "longer than 4");
	expect_dispatch_error("{\"name\":\"n\",\"delta\":1.0}", "field 'delta': must be an integer");
	expect_dispatch_error("{\"name\":\"n\",\"delta\":\"1\"}", "must be an integer");
	expect_dispatch_error("{\"name\":\"n\",\"delta\":9223372036854775808}", "field 'delta': out of range");
	expect_dispatch_error("{\"name\":\"n\",\"count\":-1}", "field 'count': must not be negative");
	expect_dispatch_error("{\"name\":\"n\",\"count\":1e3}", "must be a non-negative integer");
	expect_dispatch_error("{\"name\":\"n\",\"flag\":1}", "field 'flag': must be true or false");
	expect_dispatch_error("{\"name\":\"n\",\"flag\":\"true\"}", "must be true or false");
	expect_dispatch_error("{\"name\":\"n\",\"meta\":[]}", "field 'meta': must be an object");
	expect_dispatch_error("{\"name\":\"n\",\"meta\":{\"a\":1,\"b\":2,\"c\":3}}", "more than 2 members");
	expect_dispatch_error("{\"name\":\"n\",\"list\":[1,2,3,4]}", "more than 3 elements");

	/* an unknown key is quoted only in a short, printable form */
	expect_dispatch_error("{\"name\":\"n\",\"\\u001b[31mred\":1}", "unknown field '?[31mred'");
	expect_dispatch_error("{\"name\":\"n\",\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}",
			      "aaa...'");

	/* not an object */
	{
		struct json_object *a = json_object_new_array();

		memset(&t, 0, sizeof(t));
		assert_int_equal(json_dispatch(a, fields, &t, false), -EINVAL);
		assert_int_equal(json_dispatch(NULL, fields, &t, false), -EINVAL);
		json_object_put(a);
	}

	/* strings built in code (not parsed) are still checked */
	{
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string_len("a\0b", 3));
		memset(&t, 0, sizeof(t));
		assert_int_equal(json_dispatch(o, fields, &t, false), -EINVAL);
		assert_non_null(strstr(kq_errmsg(), "NUL"));
		json_object_object_add(o, "name", json_object_new_string("\xc0\xaf"));
		assert_int_equal(json_dispatch(o, fields, &t, false), -EINVAL);
		assert_non_null(strstr(kq_errmsg(), "UTF-8"));
		json_object_object_add(o, "name", json_object_new_string("ok"));
		json_object_object_add(o, "key", json_object_new_string_len("AA==\0AAA", 8));
		assert_int_equal(json_dispatch(o, fields, &t, false), -EINVAL);
		assert_zeroed(&t);
		json_object_put(o);
	}
}

static void test_base64(void **state)
{
	static const char *const vec[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	static const char *const bad[] = {
		"Zg=", "Zg", "Zh==", "Zm9=", "Zg==Zg==", "Zm9v\n", " Zm9v", "Zm-v", "Zm_v",
		"====", "Z===", "Zm=v", "Zm9vY===", "Zm9v=", "\xc3\xa9Zm9",
	};
	uint8_t buf[256], *dec;
	size_t len;
	char *enc;

	for (size_t i = 0; i < ARRAY_SIZE(vec); i++) {
		assert_int_equal(kq_base64_encode((const uint8_t *)vec[i][0], strlen(vec[i][0]), &enc), 0);
		assert_string_equal(enc, vec[i][1]);
		free(enc);
		assert_int_equal(kq_base64_decode(vec[i][1], SIZE_MAX, &dec, &len), 0);
		assert_int_equal(len, strlen(vec[i][0]));
		assert_non_null(dec);
		assert_memory_equal(dec, vec[i][0], len);
		free(dec);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (kq_base64_decode(bad[i], SIZE_MAX, &dec, &len) != -EINVAL) {
			fprintf(stderr, "accepted %s\n", bad[i]);
			fail();
		}
	}
	assert_int_equal(kq_base64_decode("Zm9vYmFy", 5, &dec, &len), -E2BIG);
	assert_int_equal(kq_base64_decode("Zm9vYmFy", 6, &dec, &len), 0);
	free(dec);

	/* every byte value and length round-trips */
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof(buf); n++) {
		assert_int_equal(kq_base64_encode(buf, n, &enc), 0);
		assert_int_equal(strlen(enc), (n + 2) / 3 * 4);
		assert_int_equal(kq_base64_decode(enc, n, &dec, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(dec, buf, n);
		free(dec);
		free(enc);
	}

	{
		struct json_object *s = json_new_base64((const uint8_t *)"foo", 3);
		struct json_object *h = json_new_hex((const uint8_t *)"\x01\xab", 2);

		assert_string_equal(json_object_get_string(s), "Zm9v");
		assert_string_equal(json_object_get_string(h), "01ab");
		json_object_put(s);
		json_object_put(h);
	}
}

static void test_utf8(void **state)
{
	uint32_t cp;

	assert_true(json_utf8_valid("", 0));
	assert_true(json_utf8_valid("abc\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", 16));
	assert_false(json_utf8_valid("\x80", 1));
	assert_false(json_utf8_valid("\xc1\xbf", 2));
	assert_false(json_utf8_valid("\xe0\x9f\xbf", 3));
	assert_false(json_utf8_valid("\xed\xbf\xbf", 3));
	assert_false(json_utf8_valid("\xf0\x8f\xbf\xbf", 4));
	assert_false(json_utf8_valid("\xf5\x80\x80\x80", 4));
	assert_false(json_utf8_valid("\xe2\x82", 2));
	assert_false(json_utf8_valid("\xe2\x82\x41", 3));
	assert_int_equal(json_utf8_seq((const uint8_t *)"\xe2\x82\xac", 3, &cp), 3);
	assert_int_equal(cp, 0x20ac);
	assert_int_equal(json_utf8_seq((const uint8_t *)"\xc2\x85", 2, &cp), 2);
	assert_int_equal(cp, 0x85);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_duplicates),
		cmocka_unit_test(test_parse_containers),
		cmocka_unit_test(test_dispatch_all_types),
		cmocka_unit_test(test_dispatch_errors),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
