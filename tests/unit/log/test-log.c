/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "json/json.h"
#include "log/log.h"

/* stderr goes to a pipe while a test logs; capture_end() returns what came. */
static int saved_stderr = -1;
static pthread_t reader;

struct sink {
	int fd;
	char *buf;
	size_t len, cap;
};
static struct sink sink;

static void *read_all(void *arg)
{
	struct sink *k = arg;
	ssize_t n;

	for (;;) {
		if (k->cap - k->len < 4096 + 1) {
			k->cap = k->cap ? k->cap * 2 : 65536;
			k->buf = realloc(k->buf, k->cap);
			if (!k->buf)
				abort();
		}
		n = read(k->fd, k->buf + k->len, k->cap - k->len - 1);
		if (n <= 0)
			break;
		k->len += (size_t)n;
	}
	k->buf[k->len] = '\0';
	return NULL;
}

static void capture_begin(void)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	close(p[1]);
	sink = (struct sink){ .fd = p[0] };
	assert_int_equal(pthread_create(&reader, NULL, read_all, &sink), 0);
}

static char *capture_end(size_t *ret_len)
{
	/* the last write end goes: the reader sees EOF */
	assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(saved_stderr);
	pthread_join(reader, NULL);
	close(sink.fd);
	if (ret_len)
		*ret_len = sink.len;
	return sink.buf;
}

static void test_text(void **state)
{
	char *out;

	log_setup(LOG_INFO, false);
	capture_begin();
	log_error("registrar", "cannot open %s: %d", "db", 5);
	log_warn("http", "warned");
	log_info("verifier", "hello");
	log_debug("verifier", "not shown");
	out = capture_end(NULL);
	assert_string_equal(out, "error registrar: cannot open db: 5\n"
				 "warn http: warned\n"
				 "info verifier: hello\n");
	free(out);

	log_setup(LOG_DEBUG, false);
	assert_true(log_enabled(LOG_DEBUG));
	capture_begin();
	log_debug("x", "shown");
	out = capture_end(NULL);
	assert_string_equal(out, "debug x: shown\n");
	free(out);

	log_setup(LOG_ERROR, false);
	assert_false(log_enabled(LOG_WARN));
	capture_begin();
	log_warn("x", "dropped");
	log_msg(LOG_ERROR, NULL, "no module");
	out = capture_end(NULL);
	assert_string_equal(out, "error -: no module\n");
	free(out);
}

static void test_text_escaping(void **state)
{
	char *out;

	log_setup(LOG_INFO, false);
	capture_begin();
	/* a forged second line, a terminal escape, a C1 control, bad UTF-8, a backslash */
	log_info("http", "path %s", "/x\ninfo http: forged\r\t\x1b[2J\xc2\x9b\xff\xc0\xaf \\ caf\xc3\xa9 \x7f");
	log_info("mod\nule", "ok");
	out = capture_end(NULL);
	assert_string_equal(out,
			    "info http: path /x\\ninfo http: forged\\r\\t\\x1b[2J\\x9b\\xff\\xc0\\xaf \\\\ caf\xc3\xa9 \\x7f\n"
			    "info mod\\nule: ok\n");
	free(out);
}

static void test_json(void **state)
{
	struct json_object *o, *v;
	char *out, *nl;
	size_t len;

	log_setup(LOG_INFO, true);
	capture_begin();
	log_warn("http", "quote \" backslash \\ newline \n tab \t esc \x1b c1 \xc2\x85 bad \xff ok \xe2\x82\xac");
	log_info("mod\"x", "second");
	out = capture_end(&len);
	log_setup(LOG_INFO, false);

	nl = strchr(out, '\n');
	assert_non_null(nl);
	assert_int_equal(json_parse_body((uint8_t *)out, (size_t)(nl - out), 4096, 2, &o), 0);
	assert_true(json_object_object_get_ex(o, "time", &v));
	assert_int_equal(strlen(json_object_get_string(v)), strlen("2024-05-01T12:00:00.123Z"));
	assert_true(json_object_get_string(v)[23] == 'Z');
	assert_true(json_object_object_get_ex(o, "level", &v));
	assert_string_equal(json_object_get_string(v), "warn");
	assert_true(json_object_object_get_ex(o, "module", &v));
	assert_string_equal(json_object_get_string(v), "http");
	assert_true(json_object_object_get_ex(o, "msg", &v));
	assert_string_equal(json_object_get_string(v),
			    "quote \" backslash \\ newline \n tab \t esc \x1b c1 \xc2\x85 bad \\xff ok \xe2\x82\xac");
	json_object_put(o);
	/* the raw line itself holds no control characters */
	for (char *p = out; p < nl; p++)
		assert_true((unsigned char)*p >= 0x20);

	assert_int_equal(json_parse_body((uint8_t *)nl + 1, len - (size_t)(nl + 1 - out), 4096, 2, &o), 0);
	assert_true(json_object_object_get_ex(o, "module", &v));
	assert_string_equal(json_object_get_string(v), "mod\"x");
	json_object_put(o);
	free(out);
}

static void test_truncation(void **state)
{
	char *big = malloc(10000), *out;
	struct json_object *o;
	size_t len;

	assert_non_null(big);
	memset(big, 'a', 9999);
	big[9999] = '\0';
	big[5000] = '\n';

	log_setup(LOG_INFO, false);
	capture_begin();
	log_info("m", "%s", big);
	out = capture_end(&len);
	assert_true(len <= LOG_LINE_MAX);
	assert_int_equal(strchr(out, '\n') - out, (long)len - 1);
	assert_memory_equal(out + len - 4, "...\n", 4);
	free(out);

	/* escapes are never cut in half: a message made only of escapes */
	memset(big, '\x01', 9999);
	log_setup(LOG_INFO, true);
	capture_begin();
	log_info("m", "%s", big);
	out = capture_end(&len);
	assert_true(len <= LOG_LINE_MAX);
	assert_int_equal(json_parse_body((uint8_t *)out, len, LOG_LINE_MAX, 2, &o), 0);
	json_object_put(o);
	free(out);
	log_setup(LOG_INFO, false);
	free(big);
}

static void test_errno_kept(void **state)
{
	char *out;

	log_setup(LOG_INFO, false);
	capture_begin();
	errno = ENOENT;
	log_info("m", "open: %m");
	assert_int_equal(errno, ENOENT);
	errno = EACCES;
	log_debug("m", "dropped");
	assert_int_equal(errno, EACCES);
	out = capture_end(NULL);
	assert_string_equal(out, "info m: open: No such file or directory\n");
	free(out);
}

static void *log_thread(void *arg)
{
	char msg[600];

	memset(msg, 'a' + (int)(intptr_t)arg, sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	for (int i = 0; i < 200; i++)
		log_info("t", "%s", msg);
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t th[4];
	char *out, *line;
	size_t len, lines = 0;

	log_setup(LOG_INFO, false);
	capture_begin();
	for (intptr_t i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, log_thread, (void *)i), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	out = capture_end(&len);
	/* every line is whole: one letter repeated, never two threads mixed */
	for (line = out; *line; lines++) {
		char *nl = strchr(line, '\n');
		char c;

		assert_non_null(nl);
		assert_int_equal(nl - line, 8 + 599);
		assert_memory_equal(line, "info t: ", 8);
		c = line[8];
		for (char *p = line + 8; p < nl; p++)
			assert_int_equal(*p, c);
		line = nl + 1;
	}
	assert_int_equal(lines, 800);
	free(out);
}

static void test_levels(void **state)
{
	enum log_level l;

	assert_int_equal(log_level_from_string("error", &l), 0);
	assert_int_equal(l, LOG_ERROR);
	assert_int_equal(log_level_from_string("WARN", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_from_string("warning", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_from_string("Info", &l), 0);
	assert_int_equal(l, LOG_INFO);
	assert_int_equal(log_level_from_string("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_from_string("verbose", &l), -EINVAL);
	assert_int_equal(log_level_from_string("", &l), -EINVAL);
	assert_int_equal(log_level_from_string(NULL, &l), -EINVAL);
	assert_string_equal(log_level_to_string(LOG_DEBUG), "debug");
	assert_string_equal(log_level_to_string((enum log_level)42), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_text_escaping),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_errno_kept),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_levels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
