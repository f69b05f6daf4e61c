/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event log throughput: parse (framing, decoding, digest checks) + replay of
 * the real logs in testdata/eventlog, looped for about two seconds, against
 * plain SHA-256 over the same bytes measured in the same run. The ratio is the
 * figure to watch: it does not depend on the machine.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "evlog/evlog.h"
#include "util/util.h"

#define MAX_LOGS 64
#define RUN_SECONDS 2.0

struct input {
	char name[256];
	uint8_t *buf;
	size_t len;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *testdata_dir(void)
{
	static char path[4096];
	const char *d = getenv("KQ_TESTDATA"), *src = getenv("KQ_SOURCE");

	if (d)
		return d;
	if (src) {
		snprintf(path, sizeof(path), "%s/../shared/testdata", src);
		return path;
	}
	return "../shared/testdata";
}

static int is_bin(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 4 && strcmp(e->d_name + n - 4, ".bin") == 0;
}

static size_t load_inputs(struct input *in, size_t max)
{
	char dir[4200];
	struct dirent **ents;
	size_t n = 0;
	int k;

	snprintf(dir, sizeof(dir), "%s/eventlog", testdata_dir());
	k = scandir(dir, &ents, is_bin, alphasort);
	if (k < 0) {
		fprintf(stderr, "bench-evlog: cannot list %s (set KQ_TESTDATA)\n", dir);
		exit(77);
	}
	for (int i = 0; i < k; i++) {
		char path[4500];

		if (n < max) {
			snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
			if (kq_read_file(path, EVLOG_MAX_LOG_SIZE, &in[n].buf, &in[n].len) < 0) {
				fprintf(stderr, "bench-evlog: %s\n", kq_errmsg());
				exit(1);
			}
			snprintf(in[n].name, sizeof(in[n].name), "%s", ents[i]->d_name);
			n++;
		}
		free(ents[i]);
	}
	free(ents);
	return n;
}

int main(void)
{
	static struct input in[MAX_LOGS];
	static struct evlog_replay rp;
	struct evlog *logs[MAX_LOGS];
	size_t n = load_inputs(in, MAX_LOGS), total = 0, events = 0, checked = 0, passes;
	double t0, el, full_mbs, replay_mbs, sha_mbs;
	uint8_t md[32];

	if (n == 0) {
		fprintf(stderr, "bench-evlog: no event logs found\n");
		return 77;
	}
	for (size_t i = 0; i < n; i++) {
		total += in[i].len;
		if (evlog_parse(in[i].buf, in[i].len, &logs[i]) < 0) {
			fprintf(stderr, "bench-evlog: %s: %s\n", in[i].name, kq_errmsg());
			return 1;
		}
		events += evlog_n_events(logs[i]);
		for (size_t e = 0; e < evlog_n_events(logs[i]); e++)
			checked += evlog_event(logs[i], e)->verify != EVLOG_VERIFY_NA;
	}
	printf("bench-evlog: %zu logs, %zu bytes, %zu events (%zu with digests checked against data)\n",
	       n, total, events, checked);

	/* parse + digest checks + decoding + replay, from the raw bytes each time */
	passes = 0;
	t0 = now();
	do {
		for (size_t i = 0; i < n; i++) {
			struct evlog *log = NULL;

			if (evlog_parse(in[i].buf, in[i].len, &log) < 0 || evlog_replay(log, &rp) < 0) {
				fprintf(stderr, "bench-evlog: %s: %s\n", in[i].name, kq_errmsg());
				return 1;
			}
			evlog_free(log);
		}
		passes++;
	} while ((el = now() - t0) < RUN_SECONDS);
	full_mbs = (double)total * (double)passes / el / 1e6;
	printf("parse+check+replay: %10.1f MB/s  (%.0f logs/s, %zu passes in %.2f s)\n", full_mbs,
	       (double)(n * passes) / el, passes, el);

	/* replay alone, over parsed logs */
	passes = 0;
	t0 = now();
	do {
		for (size_t i = 0; i < n; i++)
			if (evlog_replay(logs[i], &rp) < 0)
				return 1;
		passes++;
	} while ((el = now() - t0) < RUN_SECONDS);
	replay_mbs = (double)total * (double)passes / el / 1e6;
	printf("replay only:        %10.1f MB/s  (%.0f logs/s)\n", replay_mbs, (double)(n * passes) / el);

	/* baseline: SHA-256 over the same bytes */
	passes = 0;
	t0 = now();
	do {
		for (size_t i = 0; i < n; i++)
			if (kq_hash(KQ_ALG_SHA256, in[i].buf, in[i].len, md) < 0)
				return 1;
		passes++;
	} while ((el = now() - t0) < RUN_SECONDS);
	sha_mbs = (double)total * (double)passes / el / 1e6;
	printf("sha256 baseline:    %10.1f MB/s\n", sha_mbs);
	printf("ratio parse+check+replay / sha256: %.3f\n", full_mbs / sha_mbs);
	printf("ratio replay only / sha256:        %.3f\n", replay_mbs / sha_mbs);

	for (size_t i = 0; i < n; i++) {
		evlog_free(logs[i]);
		free(in[i].buf);
	}
	return 0;
}
