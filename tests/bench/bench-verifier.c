/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Verifier throughput: attestations per second and CPU per attestation for a
 * fleet of N simulated hosts (N = 10 and 100), against RSA-2048 signature
 * verifications per second on one core measured in the same run.
 *
 * Real daemons on 127.0.0.1, in a temp dir: a deployment CA and TLS
 * certificates from `kumquat ca`; kumquat-registrar trusting fleet-sim's TPM
 * vendor CA; fleet-sim (N host agents in one process: software RSA-2048 AKs,
 * real PCRs, UEFI event log and IMA list, one IMA entry more every 5 quotes —
 * see fleet-sim.c), which enrols its hosts with the registrar; and a fresh
 * kumquat-verifier per N. Over the verifier's REST API: three policies — a
 * `pcr` policy (sha256 PCRs 0-9), the measured-boot reference state
 * testdata/policy/keylime-mb-refstate-hpe.json and a runtime policy allowing
 * every entry of the IMA list (fleet-sim keygen writes both) — and the N
 * agents with interval 0 (back-to-back rounds). Once every agent is attesting
 * with a passing verdict, a warm-up, then a window of 4 x KQ_BENCH_SECONDS
 * (default 1.5): attestations = the sum of the agents' "verdicts" counters
 * (GET /v1/agents), CPU = utime + stime from /proc/PID/stat of the verifier,
 * and of fleet-sim separately. Every verdict in the window must pass.
 *
 * Baseline: RSA-2048 PKCS#1 v1.5 SHA-256 verifications per second, one core
 * (EVP_DigestVerify of a TPMS_ATTEST-sized message, the key parsed once), as
 * bench-quote measures it. The ratio printed is the verifier's CPU per
 * attestation in units of one such verification.
 *
 * Keys take long to make (two RSA-2048 keys per host): with KQ_FLEET_KEYS
 * set (meson sets it to a folder in the build dir) they are kept there and
 * reused by the next run. A smoke run (KQ_BENCH_SECONDS < 0.5) uses 3 and 10
 * hosts. `bench-verifier --hosts 10,100,1000` chooses other fleet sizes.
 * `--guests G [--guest-interval S]`: each host also has G guests (fleet-sim
 * --guests), added with their host over the REST API without policies; hosts
 * and guests get interval S (default 0). Also reported: guest verdicts per
 * second, the verifier's CPU per guest verdict (all of its CPU over the guest
 * verdicts), its VmHWM and VmRSS, and ECDSA P-256 verifies/s as a second
 * baseline (the guests' AKs are P-256). See docs/benchmarks.md.
 * Every process started is stopped and the temp dir removed on exit, also on
 * failure, SIGINT and SIGTERM; the daemons also get SIGKILL if this process
 * dies (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "benchlib.h"
#include "http/http.h"
#include "json/json.h"
#include "log/log.h"
#include "testlib.h"
#include "tpm/tpm.h"

#define MAX_CHILDREN 8
#define MAX_RUNS 8
#define MAX_FLEET 10000
#define MAX_GUESTS 1000         /* per host */
#define SLICES 3
#define READY_TIMEOUT 180.0    /* seconds for a daemon to start (fleet-sim enrols first) */
#define ATTEST_TIMEOUT 120.0   /* seconds for every agent's first passing verdict */
#define MB_POLICY "policy/keylime-mb-refstate-hpe.json"

struct child {
	pid_t pid;
	char name[32];
	char log[4096];
	int status;            /* once exited */
	bool exited;
};

static char dir[] = "/tmp/kq-bench-verifier-XXXXXX";
static bool have_dir;
static struct child children[MAX_CHILDREN];
static size_t n_children;
static struct child *registrar; /* children[0], for all runs */
static volatile sig_atomic_t got_signal;
static struct http_client_config admin;
static char ids[MAX_FLEET][37];
static size_t n_ids;
static volatile int sink;
static const char *const policy_kinds[3] = { "pcr", "mb", "ima" };
static const char *const policy_names[3] = { "fleet-pcr", "hpe-mb", "hpe-ima" };
static bool use_policy[3] = { true, true, true };
static size_t guests_per_host;  /* --guests */
static unsigned guest_interval; /* --guest-interval: the interval of hosts with guests, and of the guests */

/* ---- processes and cleanup ---- */

static void reap(struct child *c, bool block)
{
	int st;
	pid_t r;

	if (c->exited || c->pid <= 0)
		return;
	do
		r = waitpid(c->pid, &st, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == c->pid || (r < 0 && errno == ECHILD)) {
		c->exited = true;
		c->status = r == c->pid ? st : 0;
	}
}

/* SIGTERM, up to 5 s to exit, then SIGKILL. */
static void stop_child(struct child *c)
{
	reap(c, false);
	if (c->exited)
		return;
	kill(c->pid, SIGTERM);
	for (int i = 0; i < 500 && !c->exited; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		reap(c, false);
	}
	if (!c->exited) {
		kill(c->pid, SIGKILL);
		reap(c, true);
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(void)
{
	for (size_t i = n_children; i-- > 0;)
		stop_child(&children[i]);
	if (have_dir)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void on_signal(int sig)
{
	got_signal = sig;
}

/* The last lines of a file on stderr. */
static void tail(const char *path, size_t max_lines)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len, start, lines = 0;

	if (kq_read_file(path, 64u << 20, &buf, &len) < 0)
		return;
	start = len;
	while (start > 0 && lines <= max_lines)
		if (buf[--start] == '\n')
			lines++;
	fprintf(stderr, "---- %s (last lines)\n%s", path, (char *)buf + start + (start > 0));
}

static _Noreturn void die(const char *fmt, ...) _printf_(1, 2);
static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench-verifier: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	for (size_t i = 0; i < n_children; i++)
		tail(children[i].log, 15);
	exit(1);
}

/* snprintf that dies rather than cut a path or a config file short. */
static void fmt(char *out, size_t size, const char *f, ...) _printf_(3, 4);
static void fmt(char *out, size_t size, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(out, size, f, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		die("path or text too long: %.64s...", out);
}

static void check_signal(void)
{
	if (got_signal)
		die("signal %d", (int)got_signal);
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		check_signal();
	check_signal();
}

static void check_alive(struct child *c)
{
	reap(c, false);
	if (c->exited)
		die("%s exited (status 0x%x)", c->name, c->status);
}

/* Starts argv with its output in dir/name.log; dies with the parent. */
static struct child *spawn(const char *name, char *const argv[])
{
	struct child *c;
	pid_t parent = getpid(), pid;

	if (n_children == MAX_CHILDREN)
		die("too many processes");
	c = &children[n_children];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	fmt(c->log, sizeof(c->log), "%s/%s.log", dir, name);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int out = open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || in < 0 || out < 0 || dup2(in, STDIN_FILENO) < 0 ||
		    dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	c->pid = pid;
	n_children++;
	return c;
}

/* Runs argv to completion with its output in dir/name.log; dies unless it exits 0. */
static void run(const char *name, char *const argv[])
{
	struct child *c = spawn(name, argv);

	reap(c, true);
	if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0)
		die("%s failed (status 0x%x)", name, c->status);
	n_children--;
}

/* Waits for a line holding needle in c's log; returns the port of its "listening on https://A:P" line. */
static unsigned wait_log(struct child *c, const char *needle, double timeout)
{
	double t0 = bench_now();

	for (;;) {
		_cleanup_free_ uint8_t *buf = NULL;
		size_t len;
		const char *l;
		uint64_t port;

		if (kq_read_file(c->log, 64u << 20, &buf, &len) == 0 && strstr((char *)buf, needle) &&
		    (l = strstr((char *)buf, "listening on https://"))) {
			const char *colon = strchr(l + 21, ':');
			char digits[8] = { 0 };
			size_t n = 0;

			while (colon && n < 6 && colon[1 + n] >= '0' && colon[1 + n] <= '9')
				n++;
			if (colon && n)
				memcpy(digits, colon + 1, n);
			if (kq_parse_uint(digits, 65535, &port) < 0 || port == 0)
				die("%s: no port in its log", c->name);
			return (unsigned)port;
		}
		check_alive(c);
		if (bench_now() - t0 > timeout)
			die("%s not ready after %.0f s", c->name, timeout);
		sleep_s(0.05);
	}
}

/* utime + stime of a process, seconds. */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		die("%s: cannot read", path);
	buf[n] = '\0';
	/* after "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		die("%s: unexpected format", path);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the verifier's REST API ---- */

static long api(unsigned port, const char *method, const char *path, struct json_object *body,
		struct json_object **ret)
{
	char url[512];
	struct json_object *out = NULL;
	long status = 0;

	fmt(url, sizeof(url), "https://127.0.0.1:%u%s", port, path);
	if (http_request_json(&admin, method, url, body, &status, &out) < 0)
		die("%s %s: %s", method, url, kq_errmsg());
	if (ret)
		*ret = out;
	else
		json_object_put(out);
	return status;
}

static void add_policy(unsigned port, const char *name, const char *kind, const char *file)
{
	_cleanup_free_ uint8_t *doc = NULL;
	struct json_object *body = json_object_new_object(), *out = NULL;
	size_t len;
	long st;

	if (kq_read_file(file, 64u << 20, &doc, &len) < 0)
		die("%s: %s", file, kq_errmsg());
	json_object_object_add(body, "name", json_object_new_string(name));
	json_object_object_add(body, "kind", json_object_new_string(kind));
	json_object_object_add(body, "document", json_new_base64(doc, len));
	st = api(port, "POST", "/v1/policies", body, &out);
	json_object_put(body);
	if (st != 201)
		die("POST /v1/policies %s: HTTP %ld %s", name, st, out ? json_object_to_json_string(out) : "");
	json_object_put(out);
}

struct counts {
	double t, cpu_verifier, cpu_fleet, cpu_registrar;
	int64_t verdicts, passes, g_verdicts, g_passes; /* all agents; guests alone */
	size_t attesting, failed, other, n, g_attesting;
	char first_bad[37];
};

/* Sums the agents' counters (one GET /v1/agents). */
/* The fleet's counters from GET /v1/summary (not the whole list: its JSON for 10 000 agents is tens of MB). */
static int64_t sub_int(struct json_object *o, const char *a, const char *b)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, a, &x) || (b && !json_object_object_get_ex(x, b, &x)) || !x)
		return 0;
	return json_object_get_int64(x);
}

static void count(unsigned port, struct counts *c)
{
	struct json_object *out = NULL, *kinds = NULL, *first;
	long st = api(port, "GET", "/v1/summary", NULL, &out);

	memset(c, 0, sizeof(*c));
	if (st != 200 || !json_object_object_get_ex(out, "kinds", &kinds))
		die("GET /v1/summary: HTTP %ld %s", st, out ? json_object_to_json_string(out) : "");
	c->n = (size_t)sub_int(out, "agents", NULL);
	c->attesting = (size_t)sub_int(out, "clean", NULL);
	c->failed = (size_t)sub_int(out, "states", "failed");
	c->other = c->n - c->attesting - c->failed;
	c->verdicts = sub_int(kinds, "host", "verdicts") + sub_int(kinds, "guest", "verdicts");
	c->passes = sub_int(kinds, "host", "passes") + sub_int(kinds, "guest", "passes");
	c->g_verdicts = sub_int(kinds, "guest", "verdicts");
	c->g_passes = sub_int(kinds, "guest", "passes");
	c->g_attesting = (size_t)sub_int(kinds, "guest", "clean");
	if (json_object_object_get_ex(out, "first_not_clean", &first) && first)
		snprintf(c->first_bad, sizeof(c->first_bad), "%s", json_object_get_string(first));
	json_object_put(out);
}

/*
 * Counters and CPU times at one instant. The counters take a GET: at the start
 * of a window it is made before the CPU times are read, at the end after, so
 * its own cost stays outside the window.
 */
static void sample(unsigned port, const struct child *verifier, const struct child *fleet, bool start,
		   struct counts *c)
{
	double t, cv, cf, cr;

	if (start)
		count(port, c);
	t = bench_now();
	cv = proc_cpu(verifier->pid);
	cf = proc_cpu(fleet->pid);
	cr = proc_cpu(registrar->pid);
	if (!start)
		count(port, c);
	c->t = t;
	c->cpu_verifier = cv;
	c->cpu_fleet = cf;
	c->cpu_registrar = cr;
}

static _Noreturn void agent_problem(unsigned port, const char *id, const char *what)
{
	struct json_object *out = NULL;
	char path[128];

	snprintf(path, sizeof(path), "/v1/agents/%s", id);
	api(port, "GET", path, NULL, &out);
	die("%s: agent %s: %s", what, id,
	    out ? json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) : "?");
}

/* ---- one fleet size ---- */

struct paths {
	const char *kumquat, *fleet_sim, *registrar, *verifier, *keys;
	char tls[4096];
	unsigned registrar_port;
};

struct result {
	size_t hosts;
	double secs, rate, cpu_v, cpu_f, cpu_r; /* attestations/s; CPU seconds per attestation */
	int64_t n;
	/* with --guests: guest verdicts in the window, per second, verifier and fleet-sim CPU per guest verdict */
	int64_t g_n;
	double g_rate, g_cpu_v, g_cpu_f, ready_s;
	long hwm_kb, rss_kb;    /* the verifier's VmHWM and VmRSS at the end of the window */
};

/* VmHWM (peak) and VmRSS of a process, kB. */
static void proc_mem(pid_t pid, long *hwm, long *rss)
{
	char path[64], line[256];
	FILE *f;

	*hwm = *rss = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", hwm) != 1)
			sscanf(line, "VmRSS: %ld kB", rss);
	fclose(f);
}

static void tls_file(char *out, size_t size, const struct paths *p, const char *name)
{
	fmt(out, size, "%s/%s", p->tls, name);
}

static void write_file(const char *path, const char *text)
{
	if (kq_write_file(path, text, strlen(text)) < 0)
		die("%s: %s", path, kq_errmsg());
}

#define ADDERS 4

/* One of the clients adding guests: lines first, first + step, ... ("GUEST-ID HOST-ID"). */
struct adder {
	pthread_t thread;
	unsigned port;
	const char *address;
	char **lines;
	size_t n, first, step, added;
};

static void *add_guests(void *ud)
{
	struct adder *a = ud;

	for (size_t i = a->first; i < a->n; i += a->step) {
		struct json_object *body, *out = NULL;
		char *sp = strchr(a->lines[i], ' ');
		long st;

		if (!sp)
			die("bad guest line %s", a->lines[i]);
		*sp = '\0';
		body = json_object_new_object();
		json_object_object_add(body, "id", json_object_new_string(a->lines[i]));
		json_object_object_add(body, "address", json_object_new_string(a->address));
		json_object_object_add(body, "host", json_object_new_string(sp + 1));
		json_object_object_add(body, "interval", json_object_new_int((int)guest_interval));
		st = api(a->port, "POST", "/v1/agents", body, &out);
		json_object_put(body);
		if (st != 201)
			die("POST /v1/agents guest %s: HTTP %ld %s", a->lines[i], st,
			    out ? json_object_to_json_string(out) : "");
		json_object_put(out);
		a->added++;
	}
	return NULL;
}

static struct result run_fleet(const struct paths *p, size_t hosts, double window)
{
	char hosts_s[16], address[32], url[128], cert[4096], key[4096], ca[4096], vcert[4096], vkey[4096];
	char conf[4096], text[8192], file[4096], name[32], guests_s[16], gids[4096];
	size_t total = hosts + hosts * guests_per_host;
	struct child *fleet, *verifier;
	unsigned fport, vport;
	struct counts c0, c1;
	struct result res = { .hosts = hosts };
	double t0;

	/* the fleet: its hosts enrol with the registrar before it says ready */
	fmt(hosts_s, sizeof(hosts_s), "%zu", hosts);
	fmt(url, sizeof(url), "https://127.0.0.1:%u", p->registrar_port);
	tls_file(cert, sizeof(cert), p, "fleet.pem");
	tls_file(key, sizeof(key), p, "fleet-key.pem");
	tls_file(ca, sizeof(ca), p, "ca.pem");
	snprintf(name, sizeof(name), "fleet-sim-%zu", hosts);
	fmt(guests_s, sizeof(guests_s), "%zu", guests_per_host);
	fmt(gids, sizeof(gids), "%s/guests-%zu", dir, hosts);
	fleet = spawn(name, (char *const[]){ (char *)p->fleet_sim, "serve", "--dir", (char *)p->keys, "--hosts", hosts_s,
					     "--cert", cert, "--key", key, "--client-ca", ca, "--registrar", url,
					     "--registrar-ca", ca, "--guests", guests_s, "--guest-ids", gids, NULL });
	t0 = bench_now();
	/* enrolment: a few ms per guest, and a vTPM-CA key to make per host the first time */
	fport = wait_log(fleet, "ready:", READY_TIMEOUT + (double)total * 0.02 + (guests_per_host ? hosts * 0.5 : 0));
	res.ready_s = bench_now() - t0;

	/* a fresh verifier */
	tls_file(vcert, sizeof(vcert), p, "verifier.pem");
	tls_file(vkey, sizeof(vkey), p, "verifier-key.pem");
	fmt(conf, sizeof(conf), "%s/verifier-%zu.conf", dir, hosts);
	fmt(text, sizeof(text),
		 "[server]\nlisten = 127.0.0.1\nport = 0\ncert = %s\nkey = %s\nclient_ca = %s\n"
		 "[client]\nca = %s\ncert = %s\nkey = %s\n"
		 "[registrar]\nurl = https://127.0.0.1:%u\n"
		 "[verifier]\ndatabase = %s/verifier-%zu.db\n"
		 "[attest]\ninterval = 0\n"
		 "[log]\nlevel = info\n",
		 vcert, vkey, ca, ca, vcert, vkey, p->registrar_port, dir, hosts);
	write_file(conf, text);
	snprintf(name, sizeof(name), "verifier-%zu", hosts);
	verifier = spawn(name, (char *const[]){ (char *)p->verifier, "--config", conf, NULL });
	vport = wait_log(verifier, "listening on", READY_TIMEOUT);

	for (unsigned i = 0; i < 3; i++) {
		_cleanup_free_ char *mb = testdata_path(MB_POLICY);

		if (!use_policy[i])
			continue;
		if (i == 1)
			fmt(file, sizeof(file), "%s", mb);
		else
			fmt(file, sizeof(file), "%s/%s-policy.json", p->keys, policy_kinds[i]);
		add_policy(vport, policy_names[i], policy_kinds[i], file);
	}

	fmt(address, sizeof(address), "127.0.0.1:%u", fport);
	for (size_t i = 0; i < hosts; i++) {
		struct json_object *body = json_object_new_object(), *out = NULL;
		long st;

		json_object_object_add(body, "id", json_object_new_string(ids[i]));
		json_object_object_add(body, "address", json_object_new_string(address));
		json_object_object_add(body, "interval", json_object_new_int(guests_per_host ? (int)guest_interval : 0));
		for (unsigned k = 0; k < 3; k++) {
			char field[16];

			fmt(field, sizeof(field), "%s_policy", policy_kinds[k]);
			if (use_policy[k])
				json_object_object_add(body, field, json_object_new_string(policy_names[k]));
		}
		st = api(vport, "POST", "/v1/agents", body, &out);
		json_object_put(body);
		if (st != 201)
			die("POST /v1/agents %s: HTTP %ld %s", ids[i], st, out ? json_object_to_json_string(out) : "");
		json_object_put(out);
	}

	/* the guests, with their hosts (POST /v1/agents with "host"), no policies of their own */
	if (guests_per_host) {
		_cleanup_free_ uint8_t *buf = NULL;
		struct adder add[ADDERS];
		char **lines = NULL;
		size_t len, n_lines = 0, cap = 0, added = 0;
		char *line, *save = NULL;

		t0 = bench_now();
		if (kq_read_file(gids, 64u << 20, &buf, &len) < 0)
			die("%s: %s", gids, kq_errmsg());
		for (line = strtok_r((char *)buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			if (n_lines == cap && !(lines = reallocarray(lines, cap = cap ? 2 * cap : 1024, sizeof(*lines))))
				die("out of memory");
			lines[n_lines++] = line;
		}
		/* several clients at once, as a control plane adding a fleet would */
		for (size_t t = 0; t < ADDERS; t++) {
			add[t] = (struct adder){ .port = vport, .address = address, .lines = lines, .n = n_lines,
						 .first = t, .step = ADDERS };
			if (pthread_create(&add[t].thread, NULL, add_guests, &add[t]) != 0)
				die("pthread_create");
		}
		for (size_t t = 0; t < ADDERS; t++) {
			pthread_join(add[t].thread, NULL);
			added += add[t].added;
		}
		free(lines);
		if (added != total - hosts)
			die("%s: %zu guests, %zu expected", gids, added, total - hosts);
		printf("  %zu hosts: %zu guests added in %.1f s (fleet-sim ready after %.1f s)\n", hosts, added,
		       bench_now() - t0, res.ready_s);
	}

	/* every agent attesting, with a passing verdict */
	t0 = bench_now();
	for (;;) {
		count(vport, &c0);
		if (c0.failed)
			agent_problem(vport, c0.first_bad, "failed before the measurement");
		if (c0.n == total && c0.attesting == total)
			break;
		check_alive(fleet);
		check_alive(verifier);
		if (bench_now() - t0 > ATTEST_TIMEOUT + (double)total * 0.01)
			agent_problem(vport, c0.first_bad, "not attesting in time");
		sleep_s(0.1);
	}
	printf("  %zu hosts, %zu guests: all attesting %.1f s after being added\n", hosts, total - hosts,
	       bench_now() - t0);
	fflush(stdout);
	sleep_s(window / 4 < 2 ? window / 4 : 2);

	sample(vport, verifier, fleet, true, &c0);
	sleep_s(window);
	check_alive(fleet);
	check_alive(verifier);
	sample(vport, verifier, fleet, false, &c1);
	proc_mem(verifier->pid, &res.hwm_kb, &res.rss_kb);
	if (c1.failed || c1.attesting != total)
		agent_problem(vport, c1.first_bad, "stopped attesting during the measurement");
	if (c1.passes - c0.passes != c1.verdicts - c0.verdicts)
		die("%lld of %lld verdicts in the window failed", (long long)((c1.verdicts - c0.verdicts) -
									  (c1.passes - c0.passes)),
		    (long long)(c1.verdicts - c0.verdicts));
	res.n = c1.verdicts - c0.verdicts;
	if (res.n <= 0)
		die("no attestation in %.1f s", window);
	res.secs = c1.t - c0.t;
	res.rate = (double)res.n / res.secs;
	res.cpu_v = (c1.cpu_verifier - c0.cpu_verifier) / (double)res.n;
	res.cpu_f = (c1.cpu_fleet - c0.cpu_fleet) / (double)res.n;
	res.cpu_r = (c1.cpu_registrar - c0.cpu_registrar) / (double)res.n;
	res.g_n = c1.g_verdicts - c0.g_verdicts;
	if (guests_per_host) {
		if (res.g_n <= 0)
			die("no guest attestation in %.1f s", window);
		res.g_rate = (double)res.g_n / res.secs;
		res.g_cpu_v = (c1.cpu_verifier - c0.cpu_verifier) / (double)res.g_n;
		res.g_cpu_f = (c1.cpu_fleet - c0.cpu_fleet) / (double)res.g_n;
	}

	stop_child(verifier);
	stop_child(fleet);
	if (!WIFEXITED(verifier->status) || WEXITSTATUS(verifier->status) != 0)
		die("the verifier did not stop cleanly on SIGTERM (status 0x%x)", verifier->status);
	if (!WIFEXITED(fleet->status) || WEXITSTATUS(fleet->status) != 0)
		die("fleet-sim did not stop cleanly on SIGTERM (status 0x%x)", fleet->status);
	n_children -= 2;
	return res;
}

/* ---- baseline ---- */

/* RSA-2048 PKCS#1 v1.5 SHA-256 verifications per second, one core, best of SLICES. */
static double rsa_verify_rate(void)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t msg[145], sig[256];
	size_t slen = sizeof(sig);
	double best = 0;

	RAND_bytes(msg, sizeof(msg));
	if (!key || !md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &slen, msg, sizeof(msg)) != 1)
		die("baseline key");
	EVP_MD_CTX_free(md);
	for (int s = 0; s < SLICES; s++) {
		double rate;

		BENCH_RATE(&rate, 50, {
			EVP_MD_CTX *c = EVP_MD_CTX_new();
			EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, key);
			sink += EVP_DigestVerify(c, sig, slen, msg, sizeof(msg));
			EVP_MD_CTX_free(c);
		});
		if (rate > best)
			best = rate;
	}
	EVP_PKEY_free(key);
	return best;
}

/* ECDSA P-256 SHA-256 verifications per second, one core, best of SLICES (the guests' AKs are P-256). */
static double ecdsa_verify_rate(void)
{
	EVP_PKEY *key = EVP_EC_gen("prime256v1");
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t msg[145], sig[128];
	size_t slen = sizeof(sig);
	double best = 0;

	RAND_bytes(msg, sizeof(msg));
	if (!key || !md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &slen, msg, sizeof(msg)) != 1)
		die("baseline key");
	EVP_MD_CTX_free(md);
	for (int s = 0; s < SLICES; s++) {
		double rate;

		BENCH_RATE(&rate, 50, {
			EVP_MD_CTX *c = EVP_MD_CTX_new();
			EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, key);
			sink += EVP_DigestVerify(c, sig, slen, msg, sizeof(msg));
			EVP_MD_CTX_free(c);
		});
		if (rate > best)
			best = rate;
	}
	EVP_PKEY_free(key);
	return best;
}

/* ---- main ---- */

/* Calls fn on each sep-separated piece of s (s is modified). */
static void split(char *s, char sep, void (*fn)(const char *piece, void *ud), void *ud)
{
	while (s) {
		char *next = strchr(s, sep);

		if (next)
			*next++ = '\0';
		if (*s)
			fn(s, ud);
		s = next;
	}
}

struct sizes {
	size_t v[MAX_RUNS], n;
};

static void add_size(const char *piece, void *ud)
{
	struct sizes *sz = ud;
	uint64_t v;

	if (sz->n == MAX_RUNS || kq_parse_uint(piece, MAX_FLEET, &v) < 0 || v == 0) {
		fprintf(stderr, "bench-verifier: --hosts: up to %d sizes from 1 to %d, comma-separated\n", MAX_RUNS,
			MAX_FLEET);
		exit(2);
	}
	sz->v[sz->n++] = (size_t)v;
}

static void add_policy_kind(const char *piece, void *ud)
{
	bool *use = ud;

	for (unsigned i = 0; i < 3; i++)
		if (strcmp(piece, policy_kinds[i]) == 0) {
			use[i] = true;
			return;
		}
	if (strcmp(piece, "none") != 0) {
		fprintf(stderr, "bench-verifier: --policies: pcr, mb, ima or none, comma-separated\n");
		exit(2);
	}
}

static void add_id(const char *piece, void *ud)
{
	(void)ud;
	if (strlen(piece) == 36 && n_ids < MAX_FLEET)
		memcpy(ids[n_ids++], piece, 37);
}

static void read_ids(const char *keys, size_t need)
{
	_cleanup_free_ uint8_t *buf = NULL;
	char path[4096];
	size_t len;

	fmt(path, sizeof(path), "%s/ids", keys);
	if (kq_read_file(path, 1u << 20, &buf, &len) < 0)
		die("%s: %s", path, kq_errmsg());
	n_ids = 0;
	split((char *)buf, '\n', add_id, NULL);
	if (n_ids < need)
		die("%s: %zu ids, %zu needed", path, n_ids, need);
}

int main(int argc, char **argv)
{
	const char *build = getenv("KQ_BUILD"), *cached = getenv("KQ_FLEET_KEYS");
	char reg_path[4096], ver_path[4096], keys[4096], conf[4096], text[8192];
	struct sizes sz = { 0 };
	size_t max_hosts = 0;
	struct result res[MAX_RUNS];
	struct paths p = { .kumquat = getenv("KUMQUAT"), .fleet_sim = getenv("KQ_FLEET_SIM") };
	double secs = bench_seconds(), window = 4 * secs, rsa, ecdsa = 0, t0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct sigaction sa = { .sa_handler = on_signal };
	static const struct option longopts[] = {
		{ "hosts", required_argument, NULL, 'n' },
		{ "policies", required_argument, NULL, 'p' },
		{ "guests", required_argument, NULL, 'g' },
		{ "guest-interval", required_argument, NULL, 'i' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		_cleanup_free_ char *arg = optarg ? strdup(optarg) : NULL;

		if (c == 'n' && arg) {
			sz.n = 0;
			split(arg, ',', add_size, &sz);
		} else if (c == 'p' && arg) {
			memset(use_policy, 0, sizeof(use_policy));
			split(arg, ',', add_policy_kind, use_policy);
		} else if ((c == 'g' || c == 'i') && arg) {
			uint64_t v;

			if (kq_parse_uint(arg, c == 'g' ? MAX_GUESTS : 3600, &v) < 0) {
				fprintf(stderr, "bench-verifier: --%s: a number up to %d\n",
					c == 'g' ? "guests" : "guest-interval", c == 'g' ? MAX_GUESTS : 3600);
				return 2;
			}
			if (c == 'g')
				guests_per_host = (size_t)v;
			else
				guest_interval = (unsigned)v;
		} else {
			fprintf(stderr, "usage: bench-verifier [--hosts N[,N...]] [--policies pcr,mb,ima]"
					" [--guests G [--guest-interval S]]   (run through meson test --benchmark)\n");
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "bench-verifier: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (sz.n == 0) {
		sz.v[sz.n++] = secs < 0.5 ? 3 : 10;
		sz.v[sz.n++] = secs < 0.5 ? 10 : 100;
	}
	for (size_t i = 0; i < sz.n; i++)
		max_hosts = sz.v[i] > max_hosts ? sz.v[i] : max_hosts;
	if (!build || !p.kumquat || !p.fleet_sim) {
		printf("SKIP: KQ_BUILD, KUMQUAT or KQ_FLEET_SIM not set (run through meson test --benchmark)\n");
		return KQ_TEST_SKIP;
	}
	free(testdata_path(MB_POLICY)); /* exits 77 without the test data */
	fmt(reg_path, sizeof(reg_path), "%s/registrar/kumquat-registrar", build);
	fmt(ver_path, sizeof(ver_path), "%s/verifier/kumquat-verifier", build);
	if (access(ver_path, X_OK) != 0 || access(reg_path, X_OK) != 0) {
		printf("SKIP: %s or %s not built\n", ver_path, reg_path);
		return KQ_TEST_SKIP;
	}
	p.registrar = reg_path;
	p.verifier = ver_path;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	have_dir = true;
	atexit(cleanup);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	tpm_quiet_tss_log();
	log_setup(LOG_WARN, false);

	/* a round of every guest takes guest_interval: measure several */
	if (guests_per_host && window < 5.0 * guest_interval)
		window = 5.0 * guest_interval;
	printf("# verifier: N simulated hosts (fleet-sim), interval 0, policies:%s%s%s%s;"
	       " %.2g s window per N, %ld CPUs shared by verifier, fleet-sim and registrar\n",
	       use_policy[0] ? " pcr" : "", use_policy[1] ? " mb" : "", use_policy[2] ? " ima" : "",
	       use_policy[0] || use_policy[1] || use_policy[2] ? "" : " none", window, cpus);
	fflush(stdout);
	rsa = rsa_verify_rate();
	if (guests_per_host)
		ecdsa = ecdsa_verify_rate();

	/* TLS for everyone, from one deployment CA */
	fmt(p.tls, sizeof(p.tls), "%s/tls", dir);
	run("ca-init", (char *const[]){ (char *)p.kumquat, "ca", "init", "--dir", p.tls, NULL });
	run("ca-issue", (char *const[]){ (char *)p.kumquat, "ca", "issue", "--dir", p.tls, "--name", "registrar",
					 "--server", NULL });
	run("ca-issue", (char *const[]){ (char *)p.kumquat, "ca", "issue", "--dir", p.tls, "--name", "fleet",
					 "--server", NULL });
	run("ca-issue", (char *const[]){ (char *)p.kumquat, "ca", "issue", "--dir", p.tls, "--name", "verifier",
					 "--both", NULL });
	run("ca-issue", (char *const[]){ (char *)p.kumquat, "ca", "issue", "--dir", p.tls, "--name", "admin",
					 "--client", NULL });
	{
		static char ca[4096], cert[4096], key[4096];

		tls_file(ca, sizeof(ca), &p, "ca.pem");
		tls_file(cert, sizeof(cert), &p, "admin.pem");
		tls_file(key, sizeof(key), &p, "admin-key.pem");
		admin = (struct http_client_config){ .ca_file = ca, .cert_file = cert, .key_file = key,
						     .timeout_ms = 60000, .max_response = 64u << 20 };
	}

	/* the hosts' keys, the vendor CA, the policies (kept across runs when KQ_FLEET_KEYS is set) */
	if (cached && cached[0])
		fmt(keys, sizeof(keys), "%s", cached);
	else
		fmt(keys, sizeof(keys), "%s/fleet", dir);
	p.keys = keys;
	{
		char n_s[16];

		t0 = bench_now();
		fmt(n_s, sizeof(n_s), "%zu", max_hosts);
		run("fleet-keygen", (char *const[]){ (char *)p.fleet_sim, "keygen", "--dir", keys, "--hosts", n_s, NULL });
		printf("# keys for %zu hosts ready in %.1f s (%s)\n", max_hosts, bench_now() - t0,
		       cached && cached[0] ? keys : "temp dir");
	}
	read_ids(keys, max_hosts);

	/* one registrar for all runs */
	fmt(conf, sizeof(conf), "%s/registrar.conf", dir);
	fmt(text, sizeof(text),
		 "[server]\nlisten = 127.0.0.1\nport = 0\ncert = %s/registrar.pem\nkey = %s/registrar-key.pem\n"
		 "client_ca = %s/ca.pem\n[registrar]\ndatabase = %s/registrar.db\nek_ca_dir = %s/ek-ca\n",
		 p.tls, p.tls, p.tls, dir, keys);
	write_file(conf, text);
	registrar = spawn("registrar", (char *const[]){ reg_path, "--config", conf, NULL });
	p.registrar_port = wait_log(registrar, "listening on", READY_TIMEOUT);

	for (size_t i = 0; i < sz.n; i++)
		res[i] = run_fleet(&p, sz.v[i], window);

	printf("\nbaseline: RSA-2048 PKCS#1 v1.5 SHA-256 verify, one core: %.0f/s (%.1f us each)\n\n", rsa,
	       1e6 / rsa);
	printf("%6s %9s %9s %12s %13s %14s %14s %12s\n", "hosts", "attest/s", "n", "verifier ms", "attest/s per",
	       "verifier CPU /", "per core /", "fleet-sim ms");
	printf("%6s %9s %9s %12s %13s %14s %14s %12s\n", "", "", "", "CPU/attest", "verifier core",
	       "RSA verify", "RSA verify/s", "CPU/attest");
	for (size_t i = 0; i < sz.n; i++) {
		const struct result *r = &res[i];

		printf("%6zu %9.1f %9lld %12.3f %13.1f %14.1f %14.5f %12.3f\n", r->hosts, r->rate, (long long)r->n,
		       r->cpu_v * 1e3, 1 / r->cpu_v, r->cpu_v * rsa, (1 / r->cpu_v) / rsa, r->cpu_f * 1e3);
	}
	printf("\n(verifier CPU / RSA verify: the verifier's CPU per attestation in RSA-2048 verifications;"
	       " the registrar used %.3f ms per attestation in the window)\n",
	       res[sz.n - 1].cpu_r * 1e3);
	if (guests_per_host) {
		printf("\nguests: %zu per host (ECC P-256 vTPM EK and AK), no guest policies, hosts' and guests' "
		       "interval %u s; baseline ECDSA P-256 SHA-256 verify, one core: %.0f/s\n",
		       guests_per_host, guest_interval, ecdsa);
		printf("%6s %7s %10s %9s %12s %12s %12s %12s %10s %10s %12s\n", "hosts", "guests", "guest/s", "n",
		       "verifier ms", "guest/s per", "per core /", "per core /", "verifier", "verifier", "fleet-sim ms");
		printf("%6s %7s %10s %9s %12s %12s %12s %12s %10s %10s %12s\n", "", "", "", "", "CPU/guest",
		       "verif. core", "RSA verify/s", "ECDSA vfy/s", "VmHWM MB", "VmRSS MB", "CPU/guest");
		for (size_t i = 0; i < sz.n; i++) {
			const struct result *r = &res[i];

			printf("%6zu %7zu %10.1f %9lld %12.3f %12.1f %12.5f %12.5f %10.1f %10.1f %12.3f\n", r->hosts,
			       r->hosts * guests_per_host, r->g_rate, (long long)r->g_n, r->g_cpu_v * 1e3,
			       1 / r->g_cpu_v, (1 / r->g_cpu_v) / rsa, (1 / r->g_cpu_v) / ecdsa,
			       (double)r->hwm_kb / 1024, (double)r->rss_kb / 1024, r->g_cpu_f * 1e3);
		}
		printf("(verifier CPU per guest verdict includes its share of the host's deep round; the table above"
		       " counts hosts' and guests' verdicts together)\n");
	}
	return 0;
}
