/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "util/util.h"

static void test_cursor(void **state)
{
	static const uint8_t b[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	struct kq_cur c = kq_cur_init(b, sizeof(b));
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	assert_int_equal(kq_cur_u16be(&c, &u16), 0);
	assert_int_equal(u16, 0x0102);
	assert_int_equal(kq_cur_u32le(&c, &u32), 0);
	assert_int_equal(u32, 0x06050403);
	/* 3 bytes left: a u64 read fails and leaves the offset alone */
	assert_int_equal(kq_cur_u64be(&c, &u64), -EBADMSG);
	assert_int_equal(c.off, 6);
	assert_non_null(strstr(kq_errmsg(), "truncated"));
	assert_int_equal(kq_cur_skip(&c, SIZE_MAX), -EBADMSG);
	assert_int_equal(kq_cur_skip(&c, 3), 0);
	assert_int_equal(kq_cur_left(&c), 0);
}

static void test_hex(void **state)
{
	uint8_t out[4];
	size_t n;
	char s[9];

	assert_int_equal(kq_hex_decode("0xDEADbeef", out, sizeof(out), &n), 0);
	assert_int_equal(n, 4);
	kq_hex_encode(out, n, s);
	assert_string_equal(s, "deadbeef");
	assert_int_equal(kq_hex_decode("abc", out, sizeof(out), &n), -EINVAL);
	assert_int_equal(kq_hex_decode("zz", out, sizeof(out), &n), -EINVAL);
	assert_int_equal(kq_hex_decode("0011223344", out, sizeof(out), &n), -E2BIG);
}

static void test_uint(void **state)
{
	uint64_t v;

	assert_int_equal(kq_parse_uint("1234", 10000, &v), 0);
	assert_int_equal(v, 1234);
	assert_int_equal(kq_parse_uint("10001", 10000, &v), -ERANGE);
	assert_int_equal(kq_parse_uint("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	assert_int_equal(kq_parse_uint("-1", 10, &v), -EINVAL);
	assert_int_equal(kq_parse_uint("", 10, &v), -EINVAL);
	/* a maximum below 9 */
	assert_int_equal(kq_parse_uint("7", 5, &v), -ERANGE);
	assert_int_equal(kq_parse_uint("19", 5, &v), -ERANGE);
	assert_int_equal(kq_parse_uint("9", 0, &v), -ERANGE);
	assert_int_equal(kq_parse_uint("5", 5, &v), 0);
	assert_int_equal(kq_parse_uint("0", 0, &v), 0);
}

static void test_extend(void **state)
{
	/* PCR extend of zero with zero, sha256: a well-known constant */
	uint8_t pcr[32] = { 0 }, d[32] = { 0 };
	char s[65];

	assert_int_equal(kq_extend(KQ_ALG_SHA256, pcr, d), 0);
	kq_hex_encode(pcr, 32, s);
	assert_string_equal(s, "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b");
	assert_int_equal(kq_hash_from_name("SHA-384"), KQ_ALG_SHA384);
	assert_int_equal(kq_hash_size(0x1234), 0);
	assert_int_equal(kq_hash(0x1234, "", 0, pcr), -ENOTSUP);
}

static void test_uuid(void **state)
{
	char out[37];
	static const char *const bad[] = {
		"", "e27a1aa7-c736-464d-9cc9-dbd8be15ebe", "e27a1aa7-c736-464d-9cc9-dbd8be15ebe3a",
		"e27a1aa7xc736-464d-9cc9-dbd8be15ebe3", "g27a1aa7-c736-464d-9cc9-dbd8be15ebe3",
		"e27a1aa7-c736-464d-9cc9-dbd8be15ebe ", "e27a1aa7-c736-464d-9cc9--bd8be15ebe3",
	};

	(void)state;
	assert_true(kq_uuid_normalize("E27A1AA7-C736-464D-9CC9-DBD8BE15EBE3", out));
	assert_string_equal(out, "e27a1aa7-c736-464d-9cc9-dbd8be15ebe3");
	snprintf(out, sizeof(out), "%s", "E27A1AA7-c736-464d-9cc9-dbd8be15ebe3");
	assert_true(kq_uuid_normalize(out, out));
	assert_string_equal(out, "e27a1aa7-c736-464d-9cc9-dbd8be15ebe3");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_false(kq_uuid_normalize(bad[i], out));
}

/* the directories above a file: its own 0700, those above 0755; existing ones kept */
static void test_mkdir_parents(void **state)
{
	char dir[] = "/tmp/kq-mkdir.XXXXXX", path[128], sub[128];
	struct stat st;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a/b/file.db", dir);
	assert_int_equal(kq_mkdir_parents(path), 0);
	snprintf(sub, sizeof(sub), "%s/a", dir);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(kq_mkdir_parents(path), 0);
	assert_int_equal(kq_mkdir_parents("file.db"), 0);
	assert_int_equal(kq_mkdir_parents("/file.db"), 0);
	/* a file where a directory should be */
	snprintf(sub, sizeof(sub), "%s/a/b/x", dir);
	assert_non_null(f = fopen(sub, "w"));
	fclose(f);
	snprintf(path, sizeof(path), "%s/a/b/x/y/file.db", dir);
	assert_true(kq_mkdir_parents(path) < 0);
	unlink(sub);
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/a", dir);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cursor),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_extend),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_mkdir_parents),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
