/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/merkle: the deep quote's Merkle tree (docs/deep-quote.md, "The tree").
 * A host agent puts one leaf per guest quote (and one per batched request's
 * nonce) into an RFC 9162 tree, has its TPM quote the root, and hands each
 * guest its audit path; the verifier recomputes the root from a leaf and its
 * path.
 *
 * Hashes are SHA-256 with a one-byte domain prefix, so that no value can be
 * read as another kind:
 *   guest leaf   SHA-256(0x00 || VM-UUID[16] || EK-name || SHA-256(TPMS_ATTEST)[32])
 *   inner node   SHA-256(0x01 || left[32] || right[32])
 *   nonce leaf   SHA-256(0x02 || nonce)
 * The shape is RFC 9162 §2.1.1's: the left subtree of n leaves holds the
 * largest power of two below n; a tree of one leaf has that leaf as its root.
 *
 * Errors follow lib/util: negative errno-style codes with kq_errmsg() set.
 * -EINVAL for arguments out of range, -ENOMEM, -EIO if OpenSSL fails. All
 * functions are safe to call from several threads on different trees; a
 * built tree is read-only and may be shared between threads.
 */
#ifndef KQ_MERKLE_H
#define KQ_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH 32
#define MERKLE_MAX_LEAVES (1u << 20)
#define MERKLE_MAX_PROOF 64     /* hashes in a proof */
#define MERKLE_MAX_NONCE 64     /* bytes of a verifier's nonce */
#define MERKLE_MAX_EK_NAME (2 + 64) /* TPM name: hash algorithm id + digest */

/*
 * The leaf of a guest: SHA-256(0x00 || uuid[16] || ek_name || attest_sha256[32]).
 * ek_name is the TPM name of the guest's vTPM EK, 2..MERKLE_MAX_EK_NAME bytes
 * (its contents are not checked here: the verifier compares it with the
 * registrar's record). -EINVAL for a NULL argument or a name length out of range.
 */
int merkle_leaf(const uint8_t uuid[16], const uint8_t *ek_name, size_t ek_name_len,
		const uint8_t attest_sha256[32], uint8_t out[MERKLE_HASH]);

/*
 * The leaf that puts a request's nonce into a batched tree: SHA-256(0x02 ||
 * nonce). nonce is 1..MERKLE_MAX_NONCE bytes, else -EINVAL.
 */
int merkle_nonce_leaf(const uint8_t *nonce, size_t len, uint8_t out[MERKLE_HASH]);

struct merkle_tree;

/*
 * Builds the tree over n leaf hashes, 1..MERKLE_MAX_LEAVES (-EINVAL for 0,
 * -E2BIG above). The leaves are copied; every level is kept, so proofs cost
 * no hashing. n-1 inner hashes (65-byte messages, two SHA-256 compressions
 * each) and about 2n hashes of memory (64 MiB at the limit). Caller frees
 * *ret with merkle_free().
 */
int merkle_build(const uint8_t (*leaves)[MERKLE_HASH], size_t n, struct merkle_tree **ret);
/* NULL is fine. */
void merkle_free(struct merkle_tree *t);
static inline void merkle_freep(struct merkle_tree **t) { merkle_free(*t); }

/* Number of leaves (0 for NULL). */
size_t merkle_size(const struct merkle_tree *t);
/* The root hash (the leaf itself for a tree of one); t is a built tree. */
void merkle_root(const struct merkle_tree *t, uint8_t out[MERKLE_HASH]);

/*
 * The audit path of leaf i (RFC 9162 §2.1.3.1): sibling hashes from the leaf
 * upwards, written to path[0..*ret_len-1]; path has room for MERKLE_MAX_PROOF
 * hashes (a proof never exceeds 20, the depth at MERKLE_MAX_LEAVES). A tree
 * of one leaf has an empty path. -EINVAL if i >= n. O(log n), no hashing.
 */
int merkle_proof(const struct merkle_tree *t, size_t i, uint8_t path[][MERKLE_HASH], size_t *ret_len);

/*
 * Checks that leaf is leaf i of a tree of n leaves whose root is root, by
 * recomputing the root from leaf and the len hashes of path (RFC 9162
 * §2.1.3.2). All arguments may come from an attacker. Returns 0 if the
 * recomputed root equals root (compared in constant time), -EKEYREJECTED if
 * not, and -EINVAL for impossible arguments: i >= n, n == 0,
 * n > MERKLE_MAX_LEAVES, or len other than the path length that (i, n)
 * implies; path may be NULL only if len is 0.
 *
 * The root commits to the leaves, not to n: (i, n) only say on which side
 * each sibling lies, and for one i a larger n only adds right-hand siblings,
 * so a proof of leaf i of n also checks for every other n that gives leaf i
 * a path of the same length (leaf 0 of 3 and of 4), as with RFC 9162's own
 * check. Within one n, a proof holds for one index only. A caller that
 * needs the size bound must bind it itself.
 */
int merkle_verify(const uint8_t leaf[MERKLE_HASH], size_t i, size_t n,
		  const uint8_t path[][MERKLE_HASH], size_t len, const uint8_t root[MERKLE_HASH]);

/*
 * The host quote's qualifying data: SHA-256("kumquat-deepquote-v1" || nonce
 * || root). The nonce is 0..MERKLE_MAX_NONCE bytes; empty (NULL, 0) when a
 * batched tree carries the requests' nonces as nonce leaves. -EINVAL for a
 * longer nonce or NULL with a length.
 */
int merkle_qualifying_data(const uint8_t *nonce, size_t nonce_len, const uint8_t root[MERKLE_HASH],
			   uint8_t out[MERKLE_HASH]);

#endif
