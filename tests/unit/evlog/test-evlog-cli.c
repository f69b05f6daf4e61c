/* SPDX-License-Identifier: Apache-2.0 */
/* `kumquat eventlog`: exit codes, JSON shape and one-line errors, run as a real process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "util/util.h"

struct run {
	int status;
	char *out, *err;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static void drain(int fd, char **buf, size_t *len, size_t *cap, bool *open_)
{
	ssize_t n;

	if (*cap - *len < 4097) {
		*cap = *cap ? *cap * 2 : 65536;
		*buf = realloc(*buf, *cap);
		assert_non_null(*buf);
	}
	n = read(fd, *buf + *len, *cap - *len - 1);
	if (n <= 0)
		*open_ = false;
	else
		*len += (size_t)n;
	(*buf)[*len] = '\0';
}

/* Runs kumquat with args (NULL-terminated), capturing stdout and stderr. */
static struct run run_kumquat(const char *arg0, ...)
{
	const char *exe = getenv("KUMQUAT");
	const char *argv[16] = { "kumquat", arg0 };
	int po[2], pe[2];
	struct run r = { 0 };
	size_t n = 2, lo = 0, co = 0, le = 0, ce = 0;
	bool oo = true, oe = true;
	va_list ap;
	pid_t pid;

	if (!exe) {
		fprintf(stderr, "SKIP: KUMQUAT not set (run through meson test)\n");
		exit(KQ_TEST_SKIP);
	}
	va_start(ap, arg0);
	while (n < ARRAY_SIZE(argv) - 1 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	assert_int_equal(pipe2(po, O_CLOEXEC), 0);
	assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(po[1], STDOUT_FILENO);
		dup2(pe[1], STDERR_FILENO);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while (oo || oe) {
		struct pollfd fds[2] = { { po[0], oo ? POLLIN : 0, 0 }, { pe[0], oe ? POLLIN : 0, 0 } };

		assert_true(poll(fds, 2, 30000) > 0);
		if (fds[0].revents)
			drain(po[0], &r.out, &lo, &co, &oo);
		if (fds[1].revents)
			drain(pe[0], &r.err, &le, &ce, &oe);
	}
	close(po[0]);
	close(pe[0]);
	assert_int_equal(waitpid(pid, &r.status, 0), pid);
	assert_true(WIFEXITED(r.status));
	r.status = WEXITSTATUS(r.status);
	return r;
}

static void test_replay_json(void **state)
{
	_cleanup_free_ char *gdc = testdata_path("eventlog/gdc-baremetal-host.bin");
	_cleanup_free_ char *hpe = testdata_path("eventlog/hpe-perf-uefi.bin");
	struct json_object *o, *pcrs, *bank, *mm, *m, *v;
	struct run r;

	r = run_kumquat("eventlog", "replay", gdc, "--json", NULL);
	assert_int_equal(r.status, 0);
	o = json_tokener_parse(r.out);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "pcrs", &pcrs));
	assert_true(json_object_object_get_ex(pcrs, "sha256", &bank));
	assert_true(json_object_object_get_ex(bank, "14", &v));
	assert_false(json_object_object_get_ex(bank, "10", &v));
	assert_true(json_object_object_get_ex(o, "events", &v));
	assert_int_equal(json_object_get_int(v), 159);
	assert_true(json_object_object_get_ex(o, "mismatched_events", &mm));
	assert_int_equal(json_object_array_length(mm), 1);
	m = json_object_array_get_idx(mm, 0);
	assert_true(json_object_object_get_ex(m, "index", &v));
	assert_int_equal(json_object_get_int(v), 3);
	assert_true(json_object_object_get_ex(m, "pcr", &v));
	assert_int_equal(json_object_get_int(v), 0);
	assert_true(json_object_object_get_ex(m, "type", &v));
	assert_string_equal(json_object_get_string(v), "EV_S_CRTM_VERSION");
	assert_true(json_object_object_get_ex(m, "banks", &v));
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)), "sha256");
	json_object_put(o);
	run_free(&r);

	/* --strict: the same mismatch makes the evidence invalid, with one line on stderr */
	r = run_kumquat("eventlog", "replay", "--strict", gdc, NULL);
	assert_int_equal(r.status, 1);
	assert_true(strncmp(r.err, "kumquat: ", 9) == 0);
	assert_non_null(strstr(r.err, "EV_S_CRTM_VERSION"));
	/* one line */
	assert_non_null(strchr(r.err, '\n'));
	assert_int_equal(strchr(r.err, '\n') - r.err, strlen(r.err) - 1);
	run_free(&r);

	r = run_kumquat("eventlog", "replay", hpe, "--strict", "--json", NULL);
	assert_int_equal(r.status, 0);
	o = json_tokener_parse(r.out);
	assert_true(json_object_object_get_ex(o, "pcrs", &pcrs));
	assert_true(json_object_object_get_ex(pcrs, "sha384", &bank));
	assert_true(json_object_object_get_ex(bank, "0", &v));
	assert_string_equal(json_object_get_string(v), "0effed737a88e5538eea32d1f95859f8cad8184c1412f6cb053d616a769be2524404d9664bc65299c1c4bf9d17b5abc6");
	json_object_put(o);
	run_free(&r);

	r = run_kumquat("eventlog", "replay", hpe, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "2ddcc62896c1bddd24a2b381ed091c988a2f01a2a95b04b6c3d404ddb9b5d7f9"));
	assert_non_null(strstr(r.out, "mismatched events: 0"));
	run_free(&r);
}

static void test_show_json(void **state)
{
	_cleanup_free_ char *sb = testdata_path("eventlog/keylime-secureboot.bin");
	struct json_object *o, *events, *v;
	bool secureboot = false, file_path = false;
	struct run r;

	r = run_kumquat("eventlog", "show", sb, "--json", NULL);
	assert_int_equal(r.status, 0);
	o = json_tokener_parse(r.out);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "events", &events));
	assert_int_equal(json_object_array_length(events), 99);
	for (size_t i = 0; i < json_object_array_length(events); i++) {
		struct json_object *e = json_object_array_get_idx(events, i), *dec, *t, *ver, *name;

		assert_true(json_object_object_get_ex(e, "type", &t));
		assert_true(json_object_object_get_ex(e, "digest_verified", &ver));
		assert_true(json_object_object_get_ex(e, "decoded", &dec));
		if (strcmp(json_object_get_string(t), "EV_EFI_VARIABLE_DRIVER_CONFIG") == 0 &&
		    json_object_object_get_ex(dec, "name", &name) &&
		    strcmp(json_object_get_string(name), "SecureBoot") == 0) {
			assert_true(json_object_get_boolean(ver));
			assert_true(json_object_object_get_ex(dec, "data", &v));
			assert_string_equal(json_object_get_string(v), "01");
			secureboot = true;
		}
		if (strcmp(json_object_get_string(t), "EV_EFI_BOOT_SERVICES_APPLICATION") == 0) {
			assert_null(ver); /* not checkable: JSON null */
			if (json_object_object_get_ex(dec, "file_path", &v))
				file_path = true;
		}
	}
	assert_true(secureboot && file_path);
	json_object_put(o);
	run_free(&r);

	r = run_kumquat("eventlog", "show", sb, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "variable: SecureBoot"));
	run_free(&r);
}

static void test_exit_codes(void **state)
{
	_cleanup_free_ char *manifest = testdata_path("MANIFEST.md");
	_cleanup_free_ char *sb = testdata_path("eventlog/keylime-secureboot.bin");
	struct run r;

	r = run_kumquat("eventlog", "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "usage: kumquat eventlog replay"));
	run_free(&r);
	r = run_kumquat("eventlog", "show", "--help", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	/* a file that is not an event log: evidence invalid */
	r = run_kumquat("eventlog", "replay", manifest, NULL);
	assert_int_equal(r.status, 1);
	assert_true(strncmp(r.err, "kumquat: ", 9) == 0);
	assert_non_null(strstr(r.err, "not a valid event log"));
	run_free(&r);
	/* usage errors and unreadable input */
	r = run_kumquat("eventlog", "replay", "/nonexistent/log.bin", NULL);
	assert_int_equal(r.status, 2);
	run_free(&r);
	r = run_kumquat("eventlog", "replay", NULL);
	assert_int_equal(r.status, 2);
	run_free(&r);
	r = run_kumquat("eventlog", "show", sb, "--strict", NULL);
	assert_int_equal(r.status, 2);
	run_free(&r);
	r = run_kumquat("eventlog", "replay", sb, sb, NULL);
	assert_int_equal(r.status, 2);
	run_free(&r);
	r = run_kumquat("eventlog", "verify", sb, NULL);
	assert_int_equal(r.status, 2);
	run_free(&r);
	r = run_kumquat("eventlog", NULL);
	assert_int_equal(r.status, 2);
	run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_json),
		cmocka_unit_test(test_show_json),
		cmocka_unit_test(test_exit_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
