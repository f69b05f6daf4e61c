/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs a fuzz target without libFuzzer, as an ordinary test: every file named
 * on the command line (or inside a named folder) is fed whole, then as a series
 * of truncations, then with deterministic byte mutations. Under ASan/UBSan this
 * catches out-of-bounds reads, overflows and leaks in the parser.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "util/util.h"

#define FUZZ_MAX_INPUT (64u << 20)

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void run_one(const uint8_t *buf, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	size_t step;

	if (!copy)
		abort();
	/* whole input, in an exactly sized heap buffer so ASan sees overreads */
	memcpy(copy, buf, len);
	LLVMFuzzerTestOneInput(copy, len);
	/* truncations */
	step = len / 48 + 1;
	for (size_t n = 0; n < len; n += step) {
		uint8_t *t = malloc(n ? n : 1);
		if (!t)
			abort();
		memcpy(t, buf, n);
		LLVMFuzzerTestOneInput(t, n);
		free(t);
	}
	/* mutations: a few random bytes changed, sometimes to extreme values */
	for (int i = 0; i < 64 && len; i++) {
		memcpy(copy, buf, len);
		for (int k = 0; k < 1 + (int)(next_rand() % 4); k++) {
			size_t pos = next_rand() % len;
			switch (next_rand() % 4) {
			case 0: copy[pos] = 0xff; break;
			case 1: copy[pos] = 0x00; break;
			case 2: copy[pos] ^= (uint8_t)(1u << (next_rand() % 8)); break;
			default: copy[pos] = (uint8_t)next_rand(); break;
			}
		}
		LLVMFuzzerTestOneInput(copy, len);
	}
	free(copy);
}

static int run_path(const char *path, unsigned *count)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "%s: not found\n", path);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		struct dirent **ents;
		int n = scandir(path, &ents, NULL, alphasort), r = 0;

		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			if (ents[i]->d_name[0] != '.' && r == 0) {
				char *p;
				if (asprintf(&p, "%s/%s", path, ents[i]->d_name) < 0)
					abort();
				r = run_path(p, count);
				free(p);
			}
			free(ents[i]);
		}
		free(ents);
		return r;
	}
	{
		_cleanup_free_ uint8_t *buf = NULL;
		size_t len;

		if (kq_read_file(path, FUZZ_MAX_INPUT, &buf, &len) < 0) {
			fprintf(stderr, "%s\n", kq_errmsg());
			return -1;
		}
		run_one(buf, len);
		(*count)++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned count = 0;

	/* the empty input and a few degenerate ones always run */
	static const uint8_t zeros[64], ones[64] = { [0 ... 63] = 0xff };
	run_one(zeros, 0);
	run_one(zeros, sizeof(zeros));
	run_one(ones, sizeof(ones));

	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &count) < 0)
			return 1;
	if (count == 0) {
		fprintf(stderr, "no corpus files found\n");
		return 1;
	}
	printf("%u corpus files, each with truncations and mutations: no crash\n", count);
	return 0;
}
