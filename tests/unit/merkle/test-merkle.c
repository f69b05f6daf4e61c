/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/merkle against known answers and against merkle-ref.h, the RFC 9162
 * definitions written out recursively: roots and proofs of every leaf of
 * every tree of 1-300 leaves and of 1000, 1023, 1024, 1025 and 10000 leaves;
 * forged proofs of every kind refused; the limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "merkle-ref.h"
#include "merkle/merkle.h"
#include "util/util.h"

static void hex(const char *s, uint8_t *out, size_t len)
{
	size_t n;

	assert_int_equal(kq_hex_decode(s, out, len, &n), 0);
	assert_int_equal(n, len);
}

#define assert_hash_equal(a, b) assert_memory_equal((a), (b), MERKLE_HASH)
/* hashes as the API takes them */
#define P(x) ((const uint8_t (*)[MERKLE_HASH])(x))

/*
 * Certificate Transparency's test vectors (RFC 6962 hashing, which RFC 9162
 * keeps): leaf hashes SHA-256(0x00 || data) of these eight inputs, and the
 * roots of the trees over the first 1..8 of them.
 */
static const char *ct_data[] = { "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
				 "606162636465666768696a6b6c6d6e6f" };
static const char *ct_roots[] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};
static const struct {
	size_t i, n, len;
	const char *path[3];
} ct_paths[] = {
	{ 0, 1, 0, { NULL } },
	{ 0, 8, 3, { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 5, 8, 3, { "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
		     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 3, 1, { "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
	{ 1, 5, 3, { "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
	{ 4, 5, 1, { "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 6, 7, 2, { "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
		     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 3, 4, 2, { "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
		     "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
};

static void ct_leaves(uint8_t leaves[8][MERKLE_HASH])
{
	for (size_t k = 0; k < 8; k++) {
		uint8_t d[16], z = 0x00;
		size_t n = 0;

		assert_int_equal(kq_hex_decode(ct_data[k], d, sizeof(d), &n), 0);
		ref_sha256(&z, 1, d, n, leaves[k]);
	}
}

static void test_known_roots(void **state)
{
	uint8_t leaves[8][MERKLE_HASH], want[MERKLE_HASH], got[MERKLE_HASH];

	ct_leaves(leaves);
	for (size_t n = 1; n <= 8; n++) {
		_cleanup_(merkle_freep) struct merkle_tree *t = NULL;

		assert_int_equal(merkle_build(P(leaves), n, &t), 0);
		assert_int_equal(merkle_size(t), n);
		merkle_root(t, got);
		hex(ct_roots[n - 1], want, sizeof(want));
		assert_hash_equal(got, want);
		/* and the reference agrees, so that it is worth trusting below */
		ref_mth((const uint8_t (*)[REF_HASH])leaves, n, got, NULL);
		assert_hash_equal(got, want);
	}
}

static void test_known_proofs(void **state)
{
	uint8_t leaves[8][MERKLE_HASH], root[MERKLE_HASH];
	uint8_t path[MERKLE_MAX_PROOF][MERKLE_HASH], want[MERKLE_HASH];
	size_t len;

	ct_leaves(leaves);
	for (size_t c = 0; c < ARRAY_SIZE(ct_paths); c++) {
		_cleanup_(merkle_freep) struct merkle_tree *t = NULL;

		assert_int_equal(merkle_build(P(leaves), ct_paths[c].n, &t), 0);
		assert_int_equal(merkle_proof(t, ct_paths[c].i, path, &len), 0);
		assert_int_equal(len, ct_paths[c].len);
		for (size_t k = 0; k < len; k++) {
			hex(ct_paths[c].path[k], want, sizeof(want));
			assert_hash_equal(path[k], want);
		}
		hex(ct_roots[ct_paths[c].n - 1], root, sizeof(root));
		assert_int_equal(merkle_verify(leaves[ct_paths[c].i], ct_paths[c].i, ct_paths[c].n,
					       P(path), len, root), 0);
	}
}

/* The hashes with their domain prefixes, computed by hand in Python's hashlib. */
static void test_known_leaves(void **state)
{
	uint8_t uuid[16], ek[34], ek_sha1[22], att[32], nonce[20], root[32], got[32], want[32];

	hex("00112233445566778899aabbccddeeff", uuid, sizeof(uuid));
	hex("000b5e930b1b2b6c65de47679df72b3a7316a54a84f4b0d1e2159f483657fba3be43", ek, sizeof(ek));
	hex("bcc7930764b9b7a8b9bbd0161b568e869466d0c4efaee8006a56f3e8e6d82b69", att, sizeof(att));
	hex("0004000102030405060708090a0b0c0d0e0f10111213", ek_sha1, sizeof(ek_sha1));

	assert_int_equal(merkle_leaf(uuid, ek, sizeof(ek), att, got), 0);
	hex("d4ac972f0babd1eb5974561de189ba3728c2dd48fe0be071c69230558021d70f", want, sizeof(want));
	assert_hash_equal(got, want);
	assert_int_equal(merkle_leaf(uuid, ek_sha1, sizeof(ek_sha1), att, got), 0);
	hex("bbd6a8e3bfaf1a01d99dfe07dffaa3455414bfa0ceb73f560632bf2b15d27d27", want, sizeof(want));
	assert_hash_equal(got, want);

	for (size_t k = 0; k < sizeof(nonce); k++)
		nonce[k] = (uint8_t)(k + 1);
	assert_int_equal(merkle_nonce_leaf(nonce, sizeof(nonce), got), 0);
	hex("9f8ba5f3c6fc99b641ffc37ca06f5420e770f9fa4bda9e8d78b783a15cd4505d", want, sizeof(want));
	assert_hash_equal(got, want);

	hex(ct_roots[7], root, sizeof(root));
	assert_int_equal(merkle_qualifying_data(nonce, sizeof(nonce), root, got), 0);
	hex("136dc9e27da84b4eb49727b61805b2495a8c6d92ec1ee803d72676b017adde71", want, sizeof(want));
	assert_hash_equal(got, want);
	assert_int_equal(merkle_qualifying_data(NULL, 0, root, got), 0);
	hex("4de1a5efd5f6a018b53054f1b1df408f21b0befffdf79afdf17e3e4c67c0b1b6", want, sizeof(want));
	assert_hash_equal(got, want);
	/* an empty nonce is the same whether or not a pointer comes with it */
	assert_int_equal(merkle_qualifying_data(nonce, 0, root, got), 0);
	assert_hash_equal(got, want);
}

/* Distinct leaf hashes for the big trees: SHA-256(0x00 || k as 4 bytes). */
static uint8_t (*make_leaves(size_t n))[MERKLE_HASH]
{
	uint8_t (*l)[MERKLE_HASH] = malloc(n * MERKLE_HASH);

	assert_non_null(l);
	for (size_t k = 0; k < n; k++) {
		uint8_t z = 0x00, idx[4] = { (uint8_t)k, (uint8_t)(k >> 8), (uint8_t)(k >> 16), (uint8_t)(k >> 24) };
		ref_sha256(&z, 1, idx, sizeof(idx), l[k]);
	}
	return l;
}

/*
 * Builds the tree of n leaves, checks its root against the reference and
 * every leaf's proof: equal to the reference's PATH where ref_every says
 * (PATH rehashes the subtrees, O(n) per leaf), and accepted by merkle_verify
 * and by the RFC's own check for every leaf.
 */
static void check_tree(const uint8_t (*leaves)[MERKLE_HASH], size_t n, size_t ref_every)
{
	_cleanup_(merkle_freep) struct merkle_tree *t = NULL;
	uint8_t root[MERKLE_HASH], want[MERKLE_HASH];
	uint8_t path[MERKLE_MAX_PROOF][MERKLE_HASH], ref[MERKLE_MAX_PROOF][MERKLE_HASH];
	size_t len, ref_len;

	assert_int_equal(merkle_build(leaves, n, &t), 0);
	assert_int_equal(merkle_size(t), n);
	merkle_root(t, root);
	ref_mth(leaves, n, want, NULL);
	assert_hash_equal(root, want);

	for (size_t i = 0; i < n; i++) {
		assert_int_equal(merkle_proof(t, i, path, &len), 0);
		assert_int_equal(len, ref_path_len(i, n));
		if (i % ref_every == 0 || i == n - 1) {
			ref_len = 0;
			ref_path(i, leaves, n, ref, &ref_len);
			assert_int_equal(len, ref_len);
			assert_memory_equal(path, ref, len * MERKLE_HASH);
		}
		assert_int_equal(merkle_verify(leaves[i], i, n, P(path), len, root), 0);
		assert_true(ref_verify(leaves[i], i, n, P(path), len, root));
	}
}

static void test_sizes_1_300(void **state)
{
	uint8_t (*leaves)[MERKLE_HASH] = make_leaves(300);

	for (size_t n = 1; n <= 300; n++)
		check_tree(P(leaves), n, 1);
	free(leaves);
}

static void test_sizes_large(void **state)
{
	static const size_t sizes[] = { 1000, 1023, 1024, 1025, 10000 };
	uint8_t (*leaves)[MERKLE_HASH] = make_leaves(10000);

	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++)
		check_tree(P(leaves), sizes[s], sizes[s] < 2000 ? 7 : 97);
	free(leaves);
}

/* The limit itself: 2^20 leaves, proofs of 20 hashes. */
static void test_max_leaves(void **state)
{
	_cleanup_(merkle_freep) struct merkle_tree *t = NULL;
	uint8_t (*leaves)[MERKLE_HASH] = malloc((size_t)MERKLE_MAX_LEAVES * MERKLE_HASH);
	uint8_t path[MERKLE_MAX_PROOF][MERKLE_HASH], root[MERKLE_HASH];
	static const size_t idx[] = { 0, 1, 12345, MERKLE_MAX_LEAVES / 2, MERKLE_MAX_LEAVES - 1 };
	size_t len;

	assert_non_null(leaves);
	for (size_t k = 0; k < MERKLE_MAX_LEAVES; k++) {
		memset(leaves[k], 0, MERKLE_HASH);
		memcpy(leaves[k], &k, sizeof(k));
	}
	assert_int_equal(merkle_build(P(leaves), MERKLE_MAX_LEAVES, &t), 0);
	merkle_root(t, root);
	for (size_t s = 0; s < ARRAY_SIZE(idx); s++) {
		assert_int_equal(merkle_proof(t, idx[s], path, &len), 0);
		assert_int_equal(len, 20);
		assert_int_equal(merkle_verify(leaves[idx[s]], idx[s], MERKLE_MAX_LEAVES,
					       P(path), len, root), 0);
	}
	free(leaves);
}

/* Accepts the proof of leaf i as it is, then refuses every forgery of it. */
static void check_forgeries(const struct merkle_tree *t, const uint8_t (*leaves)[MERKLE_HASH], size_t i,
			    unsigned *wrong_n_fits)
{
	size_t n = merkle_size(t), len, len2;
	uint8_t root[MERKLE_HASH], path[MERKLE_MAX_PROOF + 1][MERKLE_HASH], bad[MERKLE_MAX_PROOF + 1][MERKLE_HASH];
	uint8_t other[MERKLE_MAX_PROOF][MERKLE_HASH];
	merkle_root(t, root);
	assert_int_equal(merkle_proof(t, i, path, &len), 0);
	assert_int_equal(merkle_verify(leaves[i], i, n, P(path), len, root), 0);

	/* a flipped bit anywhere in the path, the leaf or the root */
	for (size_t k = 0; k < len; k++)
		for (unsigned bit = 0; bit < 8 * MERKLE_HASH; bit += 37) {
			memcpy(bad, path, len * MERKLE_HASH);
			bad[k][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_equal(merkle_verify(leaves[i], i, n, P(bad), len, root), -EKEYREJECTED);
		}
	{
		uint8_t l[MERKLE_HASH], r[MERKLE_HASH];

		memcpy(l, leaves[i], MERKLE_HASH);
		l[31] ^= 0x80;
		assert_int_equal(merkle_verify(l, i, n, P(path), len, root), -EKEYREJECTED);
		memcpy(r, root, MERKLE_HASH);
		r[0] ^= 1;
		assert_int_equal(merkle_verify(leaves[i], i, n, P(path), len, r), -EKEYREJECTED);
	}

	/* a wrong index or tree size: refused, as impossible when the length does not fit */
	for (size_t j = 0; j < n + 3; j++) {
		int want = ref_path_len(j, n) != len ? -EINVAL : -EKEYREJECTED;

		if (j == i)
			continue;
		assert_int_equal(merkle_verify(leaves[i], j, n, P(path), len, root), j >= n ? -EINVAL : want);
	}
	/*
	 * A wrong size: impossible where leaf i's path would have another
	 * length. Where it has the same length it checks, as it does with the
	 * RFC's own check: i and n only say on which side each sibling lies, and
	 * for one i a larger n only adds right-hand siblings, so equal lengths
	 * mean equal sides (leaf 0 of 3 and of 4). The root commits to the
	 * leaves, not to n.
	 */
	for (size_t m = 1; m < 2 * n + 3; m++) {
		bool fits = i < m && ref_path_len(i, m) == len;

		if (m == n)
			continue;
		assert_int_equal(merkle_verify(leaves[i], i, m, P(path), len, root), fits ? 0 : -EINVAL);
		assert_true(!fits || ref_verify(leaves[i], i, m, P(path), len, root));
		*wrong_n_fits += fits;
	}
	assert_int_equal(merkle_verify(leaves[i], i, 0, P(path), len, root), -EINVAL);

	/* truncated and extended paths */
	if (len > 0) {
		assert_int_equal(merkle_verify(leaves[i], i, n, P(path), len - 1, root), -EINVAL);
		assert_int_equal(merkle_verify(leaves[i], i, n, P(path) + 1, len - 1, root), -EINVAL);
	}
	memcpy(path[len], root, MERKLE_HASH);
	assert_int_equal(merkle_verify(leaves[i], i, n, P(path), len + 1, root), -EINVAL);

	/* another leaf's proof, for this leaf at either index, and that leaf at this index */
	for (size_t j = 0; j < n; j++) {
		if (j == i)
			continue;
		assert_int_equal(merkle_proof(t, j, other, &len2), 0);
		if (len2 == len) {
			assert_int_equal(merkle_verify(leaves[i], i, n, P(other), len, root), -EKEYREJECTED);
			assert_int_equal(merkle_verify(leaves[j], i, n, P(path), len, root), -EKEYREJECTED);
		}
		assert_int_equal(merkle_verify(leaves[i], j, n, P(other), len2, root), -EKEYREJECTED);
	}

	/* siblings swapped: two path elements, and the leaf with its first sibling */
	for (size_t a = 0; a + 1 < len; a++) {
		memcpy(bad, path, len * MERKLE_HASH);
		memcpy(bad[a], path[a + 1], MERKLE_HASH);
		memcpy(bad[a + 1], path[a], MERKLE_HASH);
		assert_int_equal(merkle_verify(leaves[i], i, n, P(bad), len, root), -EKEYREJECTED);
	}
	if (len > 0) {
		memcpy(bad, path, len * MERKLE_HASH);
		memcpy(bad[0], leaves[i], MERKLE_HASH);
		assert_int_equal(merkle_verify(path[0], i, n, P(bad), len, root), -EKEYREJECTED);
	}
}

static void test_forgeries(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 5, 7, 8, 13, 16, 33 };
	uint8_t (*leaves)[MERKLE_HASH] = make_leaves(64);
	unsigned fits = 0;

	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		_cleanup_(merkle_freep) struct merkle_tree *t = NULL;

		assert_int_equal(merkle_build(P(leaves), sizes[s], &t), 0);
		for (size_t i = 0; i < sizes[s]; i++)
			check_forgeries(t, P(leaves), i, &fits);
	}
	assert_true(fits > 0);
	free(leaves);
}

/*
 * Second preimage: in a tree of four leaves, the inner node N = H(0x01 ||
 * L0 || L1) is leaf 0 of a two-leaf tree with the same root. merkle_verify
 * works on leaf hashes and accepts it -- the defence is that a verifier
 * computes leaves itself with merkle_leaf() or merkle_nonce_leaf(), whose
 * 0x00 and 0x02 prefixes keep every leaf apart from every inner node: the
 * 64 bytes L0 || L1 hashed as a guest's leaf fields or as a nonce do not give N.
 */
static void test_second_preimage(void **state)
{
	_cleanup_(merkle_freep) struct merkle_tree *t = NULL;
	uint8_t (*leaves)[MERKLE_HASH] = make_leaves(4);
	uint8_t root[MERKLE_HASH], n01[MERKLE_HASH], n23[MERKLE_HASH], lr[64], forged[MERKLE_HASH];
	uint8_t path[1][MERKLE_HASH];

	assert_int_equal(merkle_build(P(leaves), 4, &t), 0);
	merkle_root(t, root);
	ref_node(leaves[0], leaves[1], n01);
	ref_node(leaves[2], leaves[3], n23);
	memcpy(path[0], n23, MERKLE_HASH);
	/* what the prefixes are there for */
	assert_int_equal(merkle_verify(n01, 0, 2, P(path), 1, root), 0);

	memcpy(lr, leaves[0], MERKLE_HASH);
	memcpy(lr + MERKLE_HASH, leaves[1], MERKLE_HASH);
	/* uuid = L0[0:16], ek_name = L0[16:32], attest = L1: the same 64 bytes */
	assert_int_equal(merkle_leaf(lr, lr + 16, 16, lr + 32, forged), 0);
	assert_memory_not_equal(forged, n01, MERKLE_HASH);
	assert_int_equal(merkle_verify(forged, 0, 2, P(path), 1, root), -EKEYREJECTED);
	assert_int_equal(merkle_nonce_leaf(lr, sizeof(lr), forged), 0);
	assert_memory_not_equal(forged, n01, MERKLE_HASH);
	assert_int_equal(merkle_verify(forged, 0, 2, P(path), 1, root), -EKEYREJECTED);
	/* and the root of the whole tree as a one-leaf tree */
	assert_int_equal(merkle_leaf(lr, lr + 16, 16, lr + 32, forged), 0);
	assert_int_equal(merkle_verify(forged, 0, 1, NULL, 0, root), -EKEYREJECTED);
	free(leaves);
}

static void test_limits(void **state)
{
	uint8_t leaves[2][MERKLE_HASH] = { { 1 }, { 2 } }, out[MERKLE_HASH], root[MERKLE_HASH] = { 0 };
	uint8_t path[MERKLE_MAX_PROOF + 1][MERKLE_HASH] = { { 0 } }, big[128] = { 0 };
	struct merkle_tree *t = NULL;
	size_t len = 12345;

	/* tree sizes: the leaves are not read when the count is refused */
	assert_int_equal(merkle_build(P(leaves), 0, &t), -EINVAL);
	assert_int_equal(merkle_build(P(leaves), MERKLE_MAX_LEAVES + 1, &t), -E2BIG);
	assert_non_null(strstr(kq_errmsg(), "at most"));
	assert_int_equal(merkle_build(P(leaves), SIZE_MAX, &t), -E2BIG);
	assert_int_equal(merkle_build(NULL, 1, &t), -EINVAL);
	assert_null(t);

	/* one leaf: root = the leaf, empty proof */
	assert_int_equal(merkle_build(P(leaves), 1, &t), 0);
	merkle_root(t, out);
	assert_hash_equal(out, leaves[0]);
	assert_int_equal(merkle_proof(t, 0, path, &len), 0);
	assert_int_equal(len, 0);
	len = 12345;
	assert_int_equal(merkle_proof(t, 1, path, &len), -EINVAL);
	assert_int_equal(merkle_proof(t, SIZE_MAX, path, &len), -EINVAL);
	assert_int_equal(len, 12345);
	assert_int_equal(merkle_verify(leaves[0], 0, 1, NULL, 0, leaves[0]), 0);
	assert_int_equal(merkle_verify(leaves[0], 0, 1, NULL, 1, leaves[0]), -EINVAL);
	merkle_free(t);
	merkle_free(NULL);
	assert_int_equal(merkle_size(NULL), 0);

	/* impossible (i, n, len) */
	assert_int_equal(merkle_verify(leaves[0], 0, 0, NULL, 0, root), -EINVAL);
	assert_int_equal(merkle_verify(leaves[0], 0, MERKLE_MAX_LEAVES + 1, P(path), 21, root), -EINVAL);
	assert_int_equal(merkle_verify(leaves[0], 0, SIZE_MAX, P(path), 64, root), -EINVAL);
	assert_int_equal(merkle_verify(leaves[0], 5, 5, P(path), 1, root), -EINVAL);
	assert_int_equal(merkle_verify(leaves[0], SIZE_MAX, 5, P(path), 1, root), -EINVAL);
	assert_int_equal(merkle_verify(leaves[0], 0, 5, P(path), MERKLE_MAX_PROOF + 1, root), -EINVAL);
	assert_int_equal(merkle_verify(leaves[0], 0, 5, P(path), SIZE_MAX, root), -EINVAL);
	assert_int_equal(merkle_verify(leaves[0], 0, 5, NULL, 3, root), -EINVAL);
	/* the largest tree: 20 hashes, not 21 */
	assert_int_equal(merkle_verify(leaves[0], 0, MERKLE_MAX_LEAVES, P(path), 21, root), -EINVAL);
	assert_int_equal(merkle_verify(leaves[0], 0, MERKLE_MAX_LEAVES, P(path), 20, root), -EKEYREJECTED);

	/* nonces: 1-64 bytes in a leaf, 0-64 in the qualifying data */
	assert_int_equal(merkle_nonce_leaf(big, 0, out), -EINVAL);
	assert_int_equal(merkle_nonce_leaf(big, 1, out), 0);
	assert_int_equal(merkle_nonce_leaf(big, MERKLE_MAX_NONCE, out), 0);
	assert_int_equal(merkle_nonce_leaf(big, MERKLE_MAX_NONCE + 1, out), -EINVAL);
	assert_int_equal(merkle_nonce_leaf(NULL, 1, out), -EINVAL);
	assert_int_equal(merkle_qualifying_data(big, MERKLE_MAX_NONCE, root, out), 0);
	assert_int_equal(merkle_qualifying_data(big, MERKLE_MAX_NONCE + 1, root, out), -EINVAL);
	assert_int_equal(merkle_qualifying_data(NULL, 1, root, out), -EINVAL);

	/* EK names: 2-66 bytes */
	assert_int_equal(merkle_leaf(big, big, 1, big, out), -EINVAL);
	assert_int_equal(merkle_leaf(big, big, 2, big, out), 0);
	assert_int_equal(merkle_leaf(big, big, MERKLE_MAX_EK_NAME, big, out), 0);
	assert_int_equal(merkle_leaf(big, big, MERKLE_MAX_EK_NAME + 1, big, out), -EINVAL);
	assert_int_equal(merkle_leaf(big, NULL, 34, big, out), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_roots),
		cmocka_unit_test(test_known_proofs),
		cmocka_unit_test(test_known_leaves),
		cmocka_unit_test(test_sizes_1_300),
		cmocka_unit_test(test_sizes_large),
		cmocka_unit_test(test_max_leaves),
		cmocka_unit_test(test_forgeries),
		cmocka_unit_test(test_second_preimage),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
