/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for unit tests: locating and loading the golden evidence. */
#ifndef KQ_TESTLIB_H
#define KQ_TESTLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <openssl/evp.h>

#include "util/util.h"

/* Exit code meson reads as "skipped". */
#define KQ_TEST_SKIP 77

/* Path under $KQ_TESTDATA; exits 77 with the reason if it is missing. Caller frees. */
static inline char *testdata_path(const char *rel)
{
	const char *dir = getenv("KQ_TESTDATA");
	char *p;

	if (!dir) {
		fprintf(stderr, "SKIP: KQ_TESTDATA not set (run through meson test)\n");
		exit(KQ_TEST_SKIP);
	}
	if (asprintf(&p, "%s/%s", dir, rel) < 0)
		abort();
	return p;
}

/* Loads a file under $KQ_TESTDATA or aborts the test. Caller frees. */
static inline uint8_t *testdata_load(const char *rel, size_t *ret_len)
{
	_cleanup_free_ char *p = testdata_path(rel);
	uint8_t *buf;

	if (kq_read_file(p, 256u << 20, &buf, ret_len) < 0) {
		fprintf(stderr, "cannot load %s: %s\n", p, kq_errmsg());
		exit(1);
	}
	return buf;
}

static inline struct json_object *testdata_json(const char *rel)
{
	_cleanup_free_ char *p = testdata_path(rel);
	struct json_object *o = json_object_from_file(p);

	if (!o) {
		fprintf(stderr, "cannot parse %s\n", p);
		exit(1);
	}
	return o;
}

/* Decodes standard base64 (no newlines). Caller frees; aborts on bad input. */
static inline uint8_t *test_b64(const char *s, size_t *ret_len)
{
	size_t n = strlen(s);
	uint8_t *out = malloc(n / 4 * 3 + 3);
	int len;

	if (!out)
		abort();
	len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (len < 0) {
		fprintf(stderr, "bad base64\n");
		abort();
	}
	if (n >= 1 && s[n - 1] == '=')
		len--;
	if (n >= 2 && s[n - 2] == '=')
		len--;
	*ret_len = (size_t)len;
	return out;
}

/* Decodes hex or aborts. Caller frees. */
static inline uint8_t *test_hex(const char *s, size_t *ret_len)
{
	size_t n = strlen(s) / 2 + 1;
	uint8_t *out = malloc(n);

	if (!out || kq_hex_decode(s, out, n, ret_len) < 0) {
		fprintf(stderr, "bad hex: %s\n", s);
		abort();
	}
	return out;
}

/* Small decimal from a test file's JSON key; aborts if not a number. */
static inline int atoi_safe(const char *s)
{
	uint64_t v;

	if (kq_parse_uint(s, 1u << 30, &v) < 0)
		abort();
	return (int)v;
}

static inline const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v)) {
		fprintf(stderr, "missing key %s\n", key);
		abort();
	}
	return json_object_get_string(v);
}

#endif
