/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The deep quote's Merkle tree on one core, against raw SHA-256 compressions
 * per second measured in the same run (EVP over a 16 KiB buffer: 257
 * compressions a call, no per-call overhead to speak of).
 *
 * An inner node hashes 65 bytes, which SHA-256 pads to two blocks, so a tree
 * of n leaves costs at least 2(n-1) compressions and a proof of length h
 * 2h to check. Each figure is given as what it costs in compressions and as
 * the ratio of that minimum to it (1.000 = nothing spent besides SHA-256).
 * Each figure is measured three times, each right after the baseline, and
 * the best pair is kept, so that a busy machine disturbs the ratios less.
 */
#include <string.h>

#include <openssl/evp.h>

#include "benchlib.h"
#include "crypto/crypto.h"
#include "merkle/merkle.h"
#include "util/util.h"

#define BIG 16384

static volatile int sink;

static void die(const char *what)
{
	fprintf(stderr, "bench-merkle: %s: %s\n", what, kq_errmsg());
	exit(1);
}

/* SHA-256 on a context already set up for it, as lib/merkle hashes its nodes. */
static void sha256_ctx(EVP_MD_CTX *ctx, const uint8_t *p, size_t len, uint8_t *out)
{
	if (EVP_DigestInit_ex2(ctx, NULL, NULL) != 1 || EVP_DigestUpdate(ctx, p, len) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		die("sha256");
}

static EVP_MD_CTX *base_ctx;
static uint8_t big[BIG];

static void compress_op(void *arg)
{
	uint8_t out[MERKLE_HASH];

	sha256_ctx(base_ctx, big, sizeof(big), out);
	sink += out[0];
}

/* An inner node's hash as lib/merkle makes it: one 65-byte message, reused context. */
static void node_op(void *arg)
{
	static uint8_t msg[1 + 2 * MERKLE_HASH] = { 0x01 };
	uint8_t out[MERKLE_HASH];

	sha256_ctx(base_ctx, msg, sizeof(msg), out);
	msg[1] = out[0];
	sink += out[0];
}

struct build_arg {
	const uint8_t (*leaves)[MERKLE_HASH];
	size_t n;
	bool proofs;
};

static void build_op(void *arg)
{
	const struct build_arg *a = arg;
	struct merkle_tree *t;
	uint8_t path[MERKLE_MAX_PROOF][MERKLE_HASH];
	size_t len;

	if (merkle_build(a->leaves, a->n, &t) < 0)
		die("build");
	for (size_t i = 0; a->proofs && i < a->n; i++) {
		if (merkle_proof(t, i, path, &len) < 0)
			die("proof");
		sink += path[0][0];
	}
	merkle_free(t);
}

struct verify_arg {
	const uint8_t (*leaves)[MERKLE_HASH];
	size_t n, next;
	const uint8_t (*paths)[MERKLE_MAX_PROOF][MERKLE_HASH];
	const size_t *lens;
	const uint8_t *root;
};

/* Every leaf in turn, so that the figure is the mean over the tree. */
static void verify_op(void *arg)
{
	struct verify_arg *a = arg;
	size_t i = a->next;

	if (merkle_verify(a->leaves[i], i, a->n, a->paths[i], a->lens[i], a->root) < 0)
		die("verify");
	a->next = i + 1 == a->n ? 0 : i + 1;
}

/*
 * Runs op for a while right after the baseline, three times; returns the
 * rate of the best run in *ret_rate and its cost in compressions (baseline
 * rate / op rate) in *ret_cost.
 */
static void measure(void (*op)(void *), void *arg, int batch, double *ret_rate, double *ret_cost)
{
	*ret_cost = 0;
	for (int k = 0; k < 3; k++) {
		double base, rate;

		BENCH_RATE(&base, 20, compress_op(NULL));
		base *= BIG / 64 + 1; /* the padding takes one more block */
		BENCH_RATE(&rate, batch, op(arg));
		if (*ret_cost == 0 || base / rate < *ret_cost) {
			*ret_cost = base / rate;
			*ret_rate = rate;
		}
	}
}

int main(void)
{
	static const size_t sizes[] = { 1, 10, 100, 1000, 10000 };
	const size_t nmax = 10000;
	uint8_t (*leaves)[MERKLE_HASH] = malloc(nmax * MERKLE_HASH);
	double compress, node, node_cost;

	base_ctx = EVP_MD_CTX_new();
	if (!leaves || !base_ctx || EVP_DigestInit_ex2(base_ctx, kq_md(KQ_ALG_SHA256), NULL) != 1)
		die("setup");
	for (size_t k = 0; k < nmax; k++) {
		uint8_t nonce[4] = { (uint8_t)k, (uint8_t)(k >> 8), (uint8_t)(k >> 16), 1 };
		if (merkle_nonce_leaf(nonce, sizeof(nonce), leaves[k]) < 0)
			die("leaf");
	}

	measure(node_op, NULL, 1000, &node, &node_cost);
	compress = node * node_cost;
	printf("# Merkle tree, one core (best of 3 x %s s per figure, each after its baseline)\n",
	       getenv("KQ_BENCH_SECONDS") ? getenv("KQ_BENCH_SECONDS") : "1.5");
	printf("# baseline: %.0f SHA-256 compressions/s (16 KiB messages)\n", compress);
	printf("# one 65-byte SHA-256 (an inner node) through EVP on a reused context: %.0f/s = %.2f "
	       "compressions, the floor for a node (ratio %.3f)\n", node, node_cost, 2 / node_cost);
	printf("%6s %12s %12s %8s %14s %12s %8s\n", "leaves", "build/s", "compr/build", "ratio",
	       "build+proofs/s", "compr", "ratio");
	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		size_t n = sizes[s];
		double build, build_cost, all, all_cost, min = 2.0 * (double)(n - 1);
		int batch = n >= 1000 ? 1 : n >= 100 ? 20 : 200;
		struct build_arg b = { (const uint8_t (*)[MERKLE_HASH])leaves, n, false };

		measure(build_op, &b, batch, &build, &build_cost);
		b.proofs = true;
		measure(build_op, &b, batch, &all, &all_cost);
		if (n == 1)
			printf("%6zu %12.0f %12.2f %8s %14.0f %12.2f %8s\n", n, build, build_cost, "-", all,
			       all_cost, "-");
		else
			printf("%6zu %12.0f %12.0f %8.3f %14.0f %12.0f %8.3f\n", n, build, build_cost,
			       min / build_cost, all, all_cost, min / all_cost);
	}

	printf("\n%6s %8s %12s %12s %8s\n", "leaves", "path", "verify/s", "compr/verify", "ratio");
	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		size_t n = sizes[s], total = 0;
		struct merkle_tree *t;
		uint8_t (*paths)[MERKLE_MAX_PROOF][MERKLE_HASH] = malloc(n * sizeof(*paths));
		size_t *lens = malloc(n * sizeof(*lens));
		uint8_t root[MERKLE_HASH];
		double rate, cost, avg;

		if (!paths || !lens || merkle_build((const uint8_t (*)[MERKLE_HASH])leaves, n, &t) < 0)
			die("build");
		merkle_root(t, root);
		for (size_t k = 0; k < n; k++) {
			if (merkle_proof(t, k, paths[k], &lens[k]) < 0)
				die("proof");
			total += lens[k];
		}
		avg = (double)total / (double)n;
		measure(verify_op, &(struct verify_arg){ (const uint8_t (*)[MERKLE_HASH])leaves, n, 0,
			(const uint8_t (*)[MERKLE_MAX_PROOF][MERKLE_HASH])paths, lens, root }, 1000, &rate, &cost);
		if (n == 1)
			printf("%6zu %8.2f %12.0f %12.2f %8s\n", n, avg, rate, cost, "-");
		else
			printf("%6zu %8.2f %12.0f %12.2f %8.3f\n", n, avg, rate, cost, 2 * avg / cost);
		merkle_free(t);
		free(paths);
		free(lens);
	}
	EVP_MD_CTX_free(base_ctx);
	free(leaves);
	return 0;
}
