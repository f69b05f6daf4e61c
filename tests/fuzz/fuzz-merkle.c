/* SPDX-License-Identifier: Apache-2.0 */
/*
 * merkle_verify() on a claim an attacker shapes -- leaf, index, tree size,
 * path and root -- against a tree built from the input's own leaves.
 *
 * Input: m (1 + byte 0, the tree's leaf count), a flags byte, i and n as
 * 32-bit little-endian, the path length, a byte saying which path hash to
 * damage and how, then bytes that seed the tree's leaves and fill whatever the
 * flags do not take from the tree (leaf, root, path hashes). Missing bytes
 * are zeros, so every input is a claim.
 *
 * Checked, beyond not crashing: the result is 0, -EINVAL or -EKEYREJECTED;
 * -EINVAL exactly when (i, n, len) is impossible by the RFC's PATH; 0 only
 * when RFC 9162 §2.1.3.2 (tests/unit/merkle/merkle-ref.h) also accepts; the
 * tree's own proofs always accepted; and an acceptance against the tree's
 * root only for what is really in the tree -- with n = m the very leaf i and
 * its proof, with another n a node of the tree presented as a leaf.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/merkle/merkle-ref.h"
#include "fuzz.h"
#include "merkle/merkle.h"

#define MAX_TREE 256

enum {
	F_LEAF = 1 << 0,   /* the leaf is the tree's leaf i mod m */
	F_PATH = 1 << 1,   /* the path is the tree's proof of that leaf */
	F_ROOT = 1 << 2,   /* the root is the tree's */
	F_N = 1 << 3,      /* n = m */
	F_I = 1 << 4,      /* i is taken mod m */
	F_LEN = 1 << 5,    /* the path length is the real proof's */
	F_DAMAGE = 1 << 6, /* flip one bit of one path hash */
};

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take_u8(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static uint32_t take_u32(struct input *in)
{
	uint32_t v = 0;

	for (int k = 0; k < 4; k++)
		v |= (uint32_t)take_u8(in) << (8 * k);
	return v;
}

static void take_hash(struct input *in, uint8_t out[MERKLE_HASH])
{
	for (int k = 0; k < MERKLE_HASH; k++)
		out[k] = take_u8(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	size_t m = 1 + (size_t)take_u8(&in);
	uint8_t flags = take_u8(&in);
	size_t i = take_u32(&in), n = take_u32(&in), len = take_u8(&in);
	uint8_t damage = take_u8(&in), seed[4];
	static uint8_t leaves[MAX_TREE][MERKLE_HASH], nodes[2 * MAX_TREE][REF_HASH];
	uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH], root[MERKLE_HASH], tree_root[MERKLE_HASH];
	uint8_t leaf[MERKLE_HASH], (*path)[MERKLE_HASH] = NULL;
	struct merkle_tree *t = NULL;
	struct ref_nodes seen = { nodes, 0 };
	size_t proof_len = 0, ti;
	bool impossible, real;
	int r;

	/* the tree: nonce leaves, so that no leaf can be read as an inner node */
	for (int k = 0; k < 4; k++)
		seed[k] = take_u8(&in);
	for (size_t k = 0; k < m; k++) {
		uint8_t nonce[8] = { seed[0], seed[1], seed[2], seed[3], (uint8_t)k, (uint8_t)(k >> 8) };
		if (merkle_nonce_leaf(nonce, sizeof(nonce), leaves[k]) < 0)
			abort();
	}
	if (merkle_build((const uint8_t (*)[MERKLE_HASH])leaves, m, &t) < 0)
		abort();
	merkle_root(t, tree_root);
	ref_mth((const uint8_t (*)[REF_HASH])leaves, m, root, &seen);
	if (memcmp(root, tree_root, MERKLE_HASH) != 0)
		abort();

	/* the claim */
	if (flags & F_I)
		i %= m;
	if (flags & F_N)
		n = m;
	ti = i % m;
	if (merkle_proof(t, ti, proof, &proof_len) < 0)
		abort();
	if (flags & F_LEN)
		len = proof_len;
	if (flags & F_LEAF)
		memcpy(leaf, leaves[ti], MERKLE_HASH);
	else
		take_hash(&in, leaf);
	if (flags & F_ROOT)
		memcpy(root, tree_root, MERKLE_HASH);
	else
		take_hash(&in, root);
	/* exactly len hashes, so that a read past them is caught */
	path = malloc(len ? len * MERKLE_HASH : 1);
	if (!path)
		abort();
	for (size_t k = 0; k < len; k++) {
		if ((flags & F_PATH) && k < proof_len)
			memcpy(path[k], proof[k], MERKLE_HASH);
		else
			take_hash(&in, path[k]);
	}
	if ((flags & F_DAMAGE) && len)
		path[(damage >> 3) % len][damage % MERKLE_HASH] ^= (uint8_t)(1u << (damage & 7));

	r = merkle_verify(leaf, i, n, (const uint8_t (*)[MERKLE_HASH])path, len, root);

	if (r != 0 && r != -EINVAL && r != -EKEYREJECTED)
		abort();
	impossible = n == 0 || n > MERKLE_MAX_LEAVES || i >= n || len != ref_path_len(i, n);
	if ((r == -EINVAL) != impossible)
		abort();
	if (!impossible && (r == 0) != ref_verify(leaf, i, n, (const uint8_t (*)[REF_HASH])path, len, root))
		abort();

	real = i == ti && n == m && len == proof_len && memcmp(leaf, leaves[i], MERKLE_HASH) == 0 &&
	       memcmp(root, tree_root, MERKLE_HASH) == 0 && memcmp(path, proof, len * MERKLE_HASH) == 0;
	if (real && r != 0)
		abort();
	if (r == 0 && memcmp(root, tree_root, MERKLE_HASH) == 0) {
		if (n == m && !real)
			abort();
		if (n != m) {
			bool found = false;

			for (size_t k = 0; k < seen.n && !found; k++)
				found = memcmp(nodes[k], leaf, MERKLE_HASH) == 0;
			if (!found)
				abort();
		}
	}
	free(path);
	merkle_free(t);
	return 0;
}
