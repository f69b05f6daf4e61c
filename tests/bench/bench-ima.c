/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IMA replay throughput: parse + template-hash check + sha1 and sha256 replay
 * of the testdata lists, looped for ~2 s, against plain SHA-256 over the same
 * bytes in the same run. Prints MB/s for both, their ratio, and entries/s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "ima/ima.h"
#include "util/util.h"

#define RUN_SECONDS 2.0

static const char *const names[] = {
	"hpe-perf-ima-ng-sha256.txt",
	"rust-keylime-ima-ng-sha1.txt",
	"ibm-acs-ima-sig.bin",
	"charra-ima-ng-mixed-algs.bin",
};

struct input {
	const char *name;
	uint8_t *buf;
	size_t len;
	size_t entries;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *testdata_dir(void)
{
	static const char *const fallbacks[] = { "../shared/testdata", "../../shared/testdata",
						 "../../../shared/testdata" };
	const char *d = getenv("KQ_TESTDATA");

	if (d)
		return d;
	for (size_t i = 0; i < ARRAY_SIZE(fallbacks); i++) {
		char p[256];
		FILE *f;

		snprintf(p, sizeof(p), "%s/ima/expected-pcr10.json", fallbacks[i]);
		f = fopen(p, "re");
		if (f) {
			fclose(f);
			return fallbacks[i];
		}
	}
	return NULL;
}

/* One pass of the work the verifier does per list; returns entries. */
static size_t ima_pass(const struct input *in)
{
	struct ima_list *l = NULL;
	struct ima_replay_state st;
	size_t n;

	if (ima_list_parse(in->buf, in->len, NULL, &l) < 0) {
		fprintf(stderr, "%s: %s\n", in->name, kq_errmsg());
		exit(1);
	}
	ima_replay_init(&st, IMA_BANK_SHA1 | IMA_BANK_SHA256, 0);
	if (ima_replay_list(&st, l) < 0) {
		fprintf(stderr, "%s: %s\n", in->name, kq_errmsg());
		exit(1);
	}
	n = l->n_entries;
	ima_list_free(l);
	return n;
}

/* The same through the streaming reader (no list kept). */
static size_t reader_pass(const struct input *in)
{
	struct ima_reader *r = NULL;
	struct ima_replay_state st;
	const struct ima_entry *e;
	size_t n = 0;
	int rc;

	if (ima_reader_new(in->buf, in->len, NULL, &r) < 0)
		exit(1);
	ima_replay_init(&st, IMA_BANK_SHA1 | IMA_BANK_SHA256, 0);
	while ((rc = ima_reader_next(r, &e)) > 0) {
		if (ima_replay_entry(&st, e) < 0)
			exit(1);
		n++;
	}
	ima_reader_free(r);
	if (rc < 0)
		exit(1);
	return n;
}

static size_t sha256_pass(const struct input *in)
{
	uint8_t d[32];

	if (kq_hash(KQ_ALG_SHA256, in->buf, in->len, d) < 0)
		exit(1);
	return (size_t)d[0]; /* keeps the call */
}

struct result {
	double mbps, entries_per_s;
};

static struct result measure(const struct input *in, size_t n_in, size_t (*pass)(const struct input *),
			     double seconds)
{
	double start = now(), t;
	size_t bytes = 0, entries = 0, rounds = 0;

	do {
		for (size_t i = 0; i < n_in; i++) {
			size_t e = pass(&in[i]);

			bytes += in[i].len;
			entries += pass == sha256_pass ? in[i].entries : e;
		}
		rounds++;
		t = now() - start;
	} while (t < seconds || rounds < 3);
	return (struct result){ bytes / t / 1e6, entries / t };
}

int main(void)
{
	const char *dir = testdata_dir();
	struct input in[ARRAY_SIZE(names)];
	struct result base, ima, rdr;
	size_t total = 0, entries = 0;

	if (!dir) {
		fprintf(stderr, "SKIP: testdata not found (set KQ_TESTDATA)\n");
		return 77;
	}
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char p[512];

		snprintf(p, sizeof(p), "%s/ima/%s", dir, names[i]);
		in[i].name = names[i];
		if (kq_read_file(p, IMA_MAX_LIST_SIZE, &in[i].buf, &in[i].len) < 0) {
			fprintf(stderr, "%s\n", kq_errmsg());
			return 1;
		}
		in[i].entries = ima_pass(&in[i]);
		total += in[i].len;
		entries += in[i].entries;
	}
	printf("input: %zu lists, %zu bytes, %zu entries; totals over ~%.0f s, per list ~0.5 s\n",
	       ARRAY_SIZE(names), total, entries, RUN_SECONDS);

	base = measure(in, ARRAY_SIZE(in), sha256_pass, RUN_SECONDS);
	ima = measure(in, ARRAY_SIZE(in), ima_pass, RUN_SECONDS);
	rdr = measure(in, ARRAY_SIZE(in), reader_pass, RUN_SECONDS);

	printf("sha256 over the list bytes (baseline): %9.1f MB/s\n", base.mbps);
	printf("ima parse+check+replay sha1,sha256:    %9.1f MB/s  %10.0f entries/s  ratio %.3f\n",
	       ima.mbps, ima.entries_per_s, ima.mbps / base.mbps);
	printf("  same, streaming reader:              %9.1f MB/s  %10.0f entries/s  ratio %.3f\n",
	       rdr.mbps, rdr.entries_per_s, rdr.mbps / base.mbps);
	for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
		struct result b = measure(&in[i], 1, sha256_pass, 0.5), r = measure(&in[i], 1, ima_pass, 0.5);

		printf("  %-30s %7zu B %5zu entries: %8.1f MB/s  %10.0f entries/s  ratio %.3f\n",
		       in[i].name, in[i].len, in[i].entries, r.mbps, r.entries_per_s, r.mbps / b.mbps);
		free(in[i].buf);
	}
	return 0;
}
