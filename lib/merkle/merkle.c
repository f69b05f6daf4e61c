/* SPDX-License-Identifier: Apache-2.0 */
#include "merkle/merkle.h"

#include <assert.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/crypto.h"
#include "util/util.h"

#define PREFIX_LEAF 0x00
#define PREFIX_NODE 0x01
#define PREFIX_NONCE 0x02

static const char qd_label[] = "kumquat-deepquote-v1";

/* Levels of a tree at MERKLE_MAX_LEAVES: the leaves, then one per halving. */
#define MAX_LEVELS 21
static_assert(MERKLE_MAX_LEAVES == 1u << (MAX_LEVELS - 1), "MAX_LEVELS follows MERKLE_MAX_LEAVES");
static_assert(MAX_LEVELS - 1 <= MERKLE_MAX_PROOF, "a proof fits in MERKLE_MAX_PROOF");

/*
 * Level k holds width[k] = ceil(n / 2^k) nodes. Node j of level k+1 is the
 * hash of nodes 2j and 2j+1 of level k; when level k has an odd width its
 * last node has no partner and is carried up unchanged as the last node of
 * level k+1. This is RFC 9162's tree read bottom-up: node j of level k is the
 * hash of leaves [j*2^k, min((j+1)*2^k, n)) -- a perfect subtree, except the
 * last node of a level, which is the RFC tree of what is left of the leaves --
 * and an unpaired node at level k is exactly a right subtree smaller than
 * 2^k, which RFC 9162 joins only higher up.
 */
struct merkle_tree {
	size_t n;
	unsigned levels;                /* the last level has one node, the root */
	size_t off[MAX_LEVELS];         /* first node of each level in nodes[] */
	size_t width[MAX_LEVELS];
	uint8_t nodes[][MERKLE_HASH];
};

static const EVP_MD *sha256(void)
{
	return kq_md(KQ_ALG_SHA256);
}

struct part {
	const void *p;
	size_t len;
};

/* A context set up for SHA-256. Caller frees with EVP_MD_CTX_free(). */
static int sha256_ctx_new(EVP_MD_CTX **ret)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = sha256();

	if (!ctx)
		return kq_err(-ENOMEM, "out of memory");
	if (!md || EVP_DigestInit_ex2(ctx, md, NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return kq_err(-EIO, "SHA-256 unavailable");
	}
	*ret = ctx;
	return 0;
}

/* SHA-256 over the concatenation of parts, for the one-off hashes. */
static int hash_parts(const struct part *parts, size_t n, uint8_t out[MERKLE_HASH])
{
	EVP_MD_CTX *ctx = NULL;
	int r = sha256_ctx_new(&ctx);

	for (size_t k = 0; r == 0 && k < n; k++)
		if (EVP_DigestUpdate(ctx, parts[k].p, parts[k].len) != 1)
			r = kq_err(-EIO, "SHA-256 failed");
	if (r == 0 && EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		r = kq_err(-EIO, "SHA-256 failed");
	EVP_MD_CTX_free(ctx);
	return r;
}

/*
 * An inner node: msg is 0x01 || left || right, one 65-byte message (two
 * compressions) in one update, on a context from sha256_ctx_new() reused for
 * every node. Initialising with type NULL keeps the digest it has and spares
 * OpenSSL 3.0 a look-up of an ENGINE, under a global lock, for every node.
 * Both together bring EVP's overhead down to about a third of a compression
 * a node, from about one.
 */
static int hash_node(EVP_MD_CTX *ctx, const uint8_t msg[1 + 2 * MERKLE_HASH], uint8_t out[MERKLE_HASH])
{
	if (EVP_DigestInit_ex2(ctx, NULL, NULL) != 1 ||
	    EVP_DigestUpdate(ctx, msg, 1 + 2 * MERKLE_HASH) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		return kq_err(-EIO, "SHA-256 failed");
	return 0;
}

int merkle_leaf(const uint8_t uuid[16], const uint8_t *ek_name, size_t ek_name_len,
		const uint8_t attest_sha256[32], uint8_t out[MERKLE_HASH])
{
	static const uint8_t leaf = PREFIX_LEAF;

	if (!uuid || !ek_name || !attest_sha256 || !out)
		return kq_err(-EINVAL, "merkle leaf: missing argument");
	if (ek_name_len < 2 || ek_name_len > MERKLE_MAX_EK_NAME)
		return kq_err(-EINVAL, "merkle leaf: EK name of %zu bytes (2-%u)", ek_name_len,
			      MERKLE_MAX_EK_NAME);
	return hash_parts((const struct part[]){
		{ &leaf, 1 }, { uuid, 16 }, { ek_name, ek_name_len }, { attest_sha256, 32 } }, 4, out);
}

int merkle_nonce_leaf(const uint8_t *nonce, size_t len, uint8_t out[MERKLE_HASH])
{
	static const uint8_t prefix = PREFIX_NONCE;

	if (!nonce || !out)
		return kq_err(-EINVAL, "merkle nonce leaf: missing argument");
	if (len < 1 || len > MERKLE_MAX_NONCE)
		return kq_err(-EINVAL, "merkle nonce leaf: nonce of %zu bytes (1-%u)", len, MERKLE_MAX_NONCE);
	return hash_parts((const struct part[]){ { &prefix, 1 }, { nonce, len } }, 2, out);
}

int merkle_qualifying_data(const uint8_t *nonce, size_t nonce_len, const uint8_t root[MERKLE_HASH],
			   uint8_t out[MERKLE_HASH])
{
	if (!root || !out || (!nonce && nonce_len))
		return kq_err(-EINVAL, "qualifying data: missing argument");
	if (nonce_len > MERKLE_MAX_NONCE)
		return kq_err(-EINVAL, "qualifying data: nonce of %zu bytes (0-%u)", nonce_len,
			      MERKLE_MAX_NONCE);
	return hash_parts((const struct part[]){
		{ qd_label, sizeof(qd_label) - 1 }, { nonce ? (const void *)nonce : "", nonce_len },
		{ root, MERKLE_HASH } }, 3, out);
}

int merkle_build(const uint8_t (*leaves)[MERKLE_HASH], size_t n, struct merkle_tree **ret)
{
	struct merkle_tree *t;
	EVP_MD_CTX *ctx = NULL;
	uint8_t msg[1 + 2 * MERKLE_HASH];
	size_t width[MAX_LEVELS], off[MAX_LEVELS], total = 0;
	unsigned levels = 0;
	int r = 0;

	if (!leaves || !ret || n == 0)
		return kq_err(-EINVAL, "merkle tree: no leaves");
	if (n > MERKLE_MAX_LEAVES)
		return kq_err(-E2BIG, "merkle tree: %zu leaves, at most %u", n, MERKLE_MAX_LEAVES);

	/* sizes first: below 2n + 21 nodes, no overflow at the limit */
	for (size_t w = n;; w = (w + 1) / 2) {
		width[levels] = w;
		off[levels] = total;
		total += w;
		levels++;
		if (w == 1)
			break;
	}

	t = malloc(sizeof(*t) + total * MERKLE_HASH);
	if (!t)
		return kq_err(-ENOMEM, "merkle tree of %zu leaves: out of memory", n);
	t->n = n;
	t->levels = levels;
	memcpy(t->width, width, sizeof(width[0]) * levels);
	memcpy(t->off, off, sizeof(off[0]) * levels);
	memcpy(t->nodes, leaves, n * MERKLE_HASH);

	r = sha256_ctx_new(&ctx);
	if (r < 0)
		goto out;
	msg[0] = PREFIX_NODE;
	for (unsigned k = 0; k + 1 < levels; k++) {
		const uint8_t (*below)[MERKLE_HASH] = t->nodes + off[k];
		uint8_t (*above)[MERKLE_HASH] = t->nodes + off[k + 1];
		size_t w = width[k];

		for (size_t j = 0; j + 1 < w; j += 2) {
			memcpy(msg + 1, below[j], 2 * MERKLE_HASH); /* the pair is side by side */
			r = hash_node(ctx, msg, above[j / 2]);
			if (r < 0)
				goto out;
		}
		if (w % 2)
			memcpy(above[w / 2], below[w - 1], MERKLE_HASH);
	}
out:
	EVP_MD_CTX_free(ctx);
	if (r < 0) {
		free(t);
		return r;
	}
	*ret = t;
	return 0;
}

void merkle_free(struct merkle_tree *t)
{
	free(t);
}

size_t merkle_size(const struct merkle_tree *t)
{
	return t ? t->n : 0;
}

void merkle_root(const struct merkle_tree *t, uint8_t out[MERKLE_HASH])
{
	memcpy(out, t->nodes[t->off[t->levels - 1]], MERKLE_HASH);
}

int merkle_proof(const struct merkle_tree *t, size_t i, uint8_t path[][MERKLE_HASH], size_t *ret_len)
{
	size_t len = 0;

	if (!t || !path || !ret_len)
		return kq_err(-EINVAL, "merkle proof: missing argument");
	if (i >= t->n)
		return kq_err(-EINVAL, "merkle proof: leaf %zu of a tree of %zu", i, t->n);
	/* a node without a sibling on its level is carried up: nothing to add */
	for (unsigned k = 0; k + 1 < t->levels; k++, i /= 2)
		if ((i ^ 1) < t->width[k])
			memcpy(path[len++], t->nodes[t->off[k] + (i ^ 1)], MERKLE_HASH);
	*ret_len = len;
	return 0;
}

/* The length of leaf i's audit path in a tree of n leaves (i < n). */
static size_t path_len(size_t i, size_t n)
{
	size_t len = 0;

	for (; n > 1; i /= 2, n = (n + 1) / 2)
		if ((i ^ 1) < n)
			len++;
	return len;
}

int merkle_verify(const uint8_t leaf[MERKLE_HASH], size_t i, size_t n,
		  const uint8_t path[][MERKLE_HASH], size_t len, const uint8_t root[MERKLE_HASH])
{
	uint8_t msg[1 + 2 * MERKLE_HASH], r[MERKLE_HASH];
	EVP_MD_CTX *ctx = NULL;
	size_t want;
	int ret = 0;

	if (!leaf || !root || (!path && len))
		return kq_err(-EINVAL, "merkle proof: missing argument");
	if (n == 0 || n > MERKLE_MAX_LEAVES)
		return kq_err(-EINVAL, "merkle proof: tree of %zu leaves (1-%u)", n, MERKLE_MAX_LEAVES);
	if (i >= n)
		return kq_err(-EINVAL, "merkle proof: leaf %zu of a tree of %zu", i, n);
	want = path_len(i, n);
	if (len != want)
		return kq_err(-EINVAL, "merkle proof: %zu hashes for leaf %zu of %zu, expected %zu",
			      len, i, n, want);

	memcpy(r, leaf, MERKLE_HASH);
	if (len) {
		ret = sha256_ctx_new(&ctx);
		if (ret < 0)
			return ret;
		msg[0] = PREFIX_NODE;
		/* merkle_proof()'s walk: the sibling is on the left when j is odd */
		for (size_t j = i, w = n, k = 0; w > 1 && ret == 0; j /= 2, w = (w + 1) / 2) {
			if ((j ^ 1) >= w)
				continue;
			memcpy(msg + 1 + (j % 2 ? 0 : MERKLE_HASH), path[k++], MERKLE_HASH);
			memcpy(msg + 1 + (j % 2 ? MERKLE_HASH : 0), r, MERKLE_HASH);
			ret = hash_node(ctx, msg, r);
		}
		EVP_MD_CTX_free(ctx);
		if (ret < 0)
			return ret;
	}
	if (CRYPTO_memcmp(r, root, MERKLE_HASH) != 0)
		return kq_err(-EKEYREJECTED, "merkle proof: leaf %zu of %zu does not lead to the root", i, n);
	return 0;
}
