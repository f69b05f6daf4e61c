/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A reference for lib/merkle, written straight from RFC 9162 §2.1 and sharing
 * no code with it: MTH and PATH by their recursive definitions (§2.1.1,
 * §2.1.3.1) and the audit path check step by step as §2.1.3.2 spells it.
 * Slow on purpose (PATH rehashes whole subtrees); used by the unit test and
 * the fuzz target.
 */
#ifndef KQ_MERKLE_REF_H
#define KQ_MERKLE_REF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define REF_HASH 32

static inline void ref_sha256(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[REF_HASH])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, a, alen) != 1 || EVP_DigestUpdate(ctx, b, blen) != 1 ||
	    EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
}

/* SHA-256(0x01 || l || r) */
static inline void ref_node(const uint8_t l[REF_HASH], const uint8_t r[REF_HASH], uint8_t out[REF_HASH])
{
	uint8_t m[1 + 2 * REF_HASH];

	m[0] = 0x01;
	memcpy(m + 1, l, REF_HASH);
	memcpy(m + 1 + REF_HASH, r, REF_HASH);
	ref_sha256(m, sizeof(m), "", 0, out);
}

/* The largest power of two smaller than n (n > 1). */
static inline size_t ref_split(size_t n)
{
	size_t k = 1;

	while (k < n - k)
		k <<= 1;
	return k;
}

/* Every node MTH computes, for the fuzz target's "is this a node of the tree" check. */
struct ref_nodes {
	uint8_t (*v)[REF_HASH];
	size_t n;
};

/* MTH(D[0:n]) over leaf hashes; records each node (leaves included) in seen if given. */
static inline void ref_mth(const uint8_t (*d)[REF_HASH], size_t n, uint8_t out[REF_HASH],
			   struct ref_nodes *seen)
{
	if (n == 1) {
		memcpy(out, d[0], REF_HASH);
	} else {
		size_t k = ref_split(n);
		uint8_t l[REF_HASH], r[REF_HASH];

		ref_mth(d, k, l, seen);
		ref_mth(d + k, n - k, r, seen);
		ref_node(l, r, out);
	}
	if (seen)
		memcpy(seen->v[seen->n++], out, REF_HASH);
}

/* PATH(m, D[0:n]), appended to path at *len. */
static inline void ref_path(size_t m, const uint8_t (*d)[REF_HASH], size_t n, uint8_t (*path)[REF_HASH],
			    size_t *len)
{
	size_t k;

	if (n == 1)
		return;
	k = ref_split(n);
	if (m < k) {
		ref_path(m, d, k, path, len);
		ref_mth(d + k, n - k, path[(*len)++], NULL);
	} else {
		ref_path(m - k, d + k, n - k, path, len);
		ref_mth(d, k, path[(*len)++], NULL);
	}
}

/* The number of hashes in PATH(m, D[0:n]), without hashing. */
static inline size_t ref_path_len(size_t m, size_t n)
{
	size_t k;

	if (n <= 1)
		return 0;
	k = ref_split(n);
	return 1 + (m < k ? ref_path_len(m, k) : ref_path_len(m - k, n - k));
}

/* RFC 9162 §2.1.3.2, step by step: true if the path leads leaf to root. */
static inline bool ref_verify(const uint8_t leaf[REF_HASH], size_t leaf_index, size_t tree_size,
			      const uint8_t (*path)[REF_HASH], size_t len, const uint8_t root[REF_HASH])
{
	size_t fn, sn;
	uint8_t r[REF_HASH];

	if (leaf_index >= tree_size)
		return false;
	fn = leaf_index;
	sn = tree_size - 1;
	memcpy(r, leaf, REF_HASH);
	for (size_t k = 0; k < len; k++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			ref_node(path[k], r, r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			ref_node(r, path[k], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, REF_HASH) == 0;
}

#endif
