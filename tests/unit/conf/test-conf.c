/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

struct cfg {
	char *name;
	char *db;
	char *cert;
	uint64_t threads;
	uint64_t big;
	bool json_logs;
	uint16_t port;
	char *log_level;
};

static const struct conf_option opts[] = {
	{ NULL, "name", CONF_STRING, offsetof(struct cfg, name), 8 },
	{ "server", "port", CONF_PORT, offsetof(struct cfg, port), 0 },
	{ "server", "cert", CONF_PATH, offsetof(struct cfg, cert), 0 },
	{ "server", "threads", CONF_UINT, offsetof(struct cfg, threads), 64 },
	{ "db", "path", CONF_PATH, offsetof(struct cfg, db), 0 },
	{ "db", "big", CONF_UINT, offsetof(struct cfg, big), 0 },
	{ "log", "json", CONF_BOOL, offsetof(struct cfg, json_logs), 0 },
	{ "log", "level", CONF_STRING, offsetof(struct cfg, log_level), 0 },
	{ NULL, NULL, 0, 0, 0 },
};

static char tmpdir[] = "/tmp/kq-conf.XXXXXX";
static char path[sizeof(tmpdir) + 32];

static int setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(path, sizeof(path), "%s/test.ini", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	rmdir(tmpdir);
	return 0;
}

static void write_conf(const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static void defaults(struct cfg *c)
{
	*c = (struct cfg){
		.name = "dflt", .db = NULL, .cert = "/etc/kq/cert.pem", .threads = 4,
		.big = 1, .json_logs = false, .port = 8891, .log_level = NULL,
	};
}

static void test_load(void **state)
{
	struct cfg c;
	char want[256];

	write_conf("; a comment\n"
		   "# another\n"
		   "name = agent\n"
		   "\n"
		   "[server]\n"
		   "  port = 0   ; inline comment\n"
		   "\tthreads=16\r\n"
		   "cert = tls/server.pem\n"
		   "[db]\n"
		   "path = /var/lib/kq/db.sqlite\n"
		   "big = 18446744073709551615\n"
		   "[log]\n"
		   "json = Yes\n"
		   "level = debug");
	defaults(&c);
	assert_int_equal(conf_load(path, opts, &c), 0);
	assert_string_equal(c.name, "agent");
	assert_int_equal(c.port, 0);
	assert_true(c.threads == 16);
	snprintf(want, sizeof(want), "%s/tls/server.pem", tmpdir);
	assert_string_equal(c.cert, want);
	assert_string_equal(c.db, "/var/lib/kq/db.sqlite");
	assert_true(c.big == UINT64_MAX);
	assert_true(c.json_logs);
	assert_string_equal(c.log_level, "debug");
	conf_free(opts, &c);
	assert_null(c.name);
	assert_null(c.cert);
	conf_free(opts, &c);

	/* an empty file keeps the defaults, copied so conf_free works */
	write_conf("");
	defaults(&c);
	assert_int_equal(conf_load(path, opts, &c), 0);
	assert_string_equal(c.name, "dflt");
	assert_string_equal(c.cert, "/etc/kq/cert.pem");
	assert_null(c.db);
	assert_int_equal(c.port, 8891);
	conf_free(opts, &c);

	/* booleans */
	{
		static const char *const yes[] = { "true", "YES", "on", "1" };
		static const char *const no[] = { "false", "No", "OFF", "0" };
		char text[64];

		for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
			snprintf(text, sizeof(text), "[log]\njson=%s\n", yes[i]);
			write_conf(text);
			defaults(&c);
			assert_int_equal(conf_load(path, opts, &c), 0);
			assert_true(c.json_logs);
			conf_free(opts, &c);
			snprintf(text, sizeof(text), "[log]\njson=%s\n", no[i]);
			write_conf(text);
			defaults(&c);
			c.json_logs = true;
			assert_int_equal(conf_load(path, opts, &c), 0);
			assert_false(c.json_logs);
			conf_free(opts, &c);
		}
	}
}

static void expect_error(const char *text, int err, const char *msg)
{
	struct cfg c, before;
	char want[512];
	int r;

	write_conf(text);
	defaults(&c);
	before = c;
	r = conf_load(path, opts, &c);
	snprintf(want, sizeof(want), "%s%s", path, msg);
	if (r != err || strcmp(kq_errmsg(), want) != 0) {
		fprintf(stderr, "config:\n%s\nr=%d msg=%s\nwanted %d %s\n", text, r, kq_errmsg(), err, want);
		fail();
	}
	/* the target is as it was */
	assert_memory_equal(&c, &before, sizeof(c));
}

static void test_errors(void **state)
{
	struct cfg c;
	char longline[400];

	expect_error("[server]\nport = 1\n[bogus]\nx = 1\n", -EINVAL, ":3: unknown section [bogus]");
	expect_error("[bogus]\n", -EINVAL, ":1: unknown section [bogus]");
	expect_error("[server]\nport = 1\nbogus = 2\n", -EINVAL, ":3: unknown key 'bogus' in section [server]");
	expect_error("port = 1\n", -EINVAL, ":1: unknown key 'port'");
	expect_error("[server]\nport = 1\nport = 2\n", -EINVAL, ":3: 'port' given twice");
	expect_error("[server]\nport = 65536\n", -EINVAL, ":2: port: not a port number (0-65535)");
	expect_error("[server]\nport = -1\n", -EINVAL, ":2: port: not a port number (0-65535)");
	expect_error("[server]\nport = 80x\n", -EINVAL, ":2: port: not a port number (0-65535)");
	expect_error("[server]\nthreads = 65\n", -EINVAL, ":2: threads: number too large");
	expect_error("[server]\nthreads = \n", -EINVAL, ":2: threads: not a non-negative decimal number");
	expect_error("[server]\nthreads = 0x10\n", -EINVAL, ":2: threads: not a non-negative decimal number");
	expect_error("[db]\nbig = 18446744073709551616\n", -EINVAL, ":2: big: number too large");
	expect_error("[log]\njson = maybe\n", -EINVAL, ":2: json: not a boolean (true/false, yes/no, on/off, 1/0)");
	expect_error("name = 123456789\n", -EINVAL, ":1: name: longer than 8 bytes");
	expect_error("[db]\npath =\n", -EINVAL, ":2: path: empty path");
	expect_error("[server]\nport 80\n", -EINVAL, ":2: syntax error (expected [section] or key = value)");
	expect_error("[server\nport = 80\n", -EINVAL, ":1: syntax error (expected [section] or key = value)");
	/* the first error wins, whatever its kind */
	expect_error("[server]\nport 80\nbogus = 1\n", -EINVAL, ":2: syntax error (expected [section] or key = value)");
	expect_error("[server]\nbogus = 1\nport 80\n", -EINVAL, ":2: unknown key 'bogus' in section [server]");
	/* an indented line is a line of its own, not a continuation */
	expect_error("name = a\n  bogus = b\n", -EINVAL, ":2: unknown key 'bogus'");
	/* values set before the error are undone (strings freed: ASan checks) */
	expect_error("name = x\n[server]\ncert = a.pem\nport = 1\n[db]\npath=/x\n[log]\njson=2\n",
		     -EINVAL, ":8: json: not a boolean (true/false, yes/no, on/off, 1/0)");

	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "name = ", 7);
	longline[CONF_MAX_LINE + 1] = '\n';
	longline[CONF_MAX_LINE + 2] = '\0';
	expect_error(longline, -EINVAL, ":1: line longer than 196 bytes");
	longline[CONF_MAX_LINE] = '\n';
	longline[CONF_MAX_LINE + 1] = '\0';
	expect_error(longline, -EINVAL, ":1: name: longer than 8 bytes"); /* fits: read whole */

	/* NUL bytes */
	{
		FILE *f = fopen(path, "we");

		assert_non_null(f);
		fwrite("name = a\n[server]\0\n", 1, 19, f);
		fclose(f);
		defaults(&c);
		assert_int_equal(conf_load(path, opts, &c), -EINVAL);
		assert_non_null(strstr(kq_errmsg(), ":2: NUL byte"));
	}

	/* missing file */
	defaults(&c);
	assert_int_equal(conf_load("/nonexistent/kq.ini", opts, &c), -ENOENT);
	assert_string_equal(kq_errmsg(), "/nonexistent/kq.ini: No such file or directory");
	assert_string_equal(c.name, "dflt");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
