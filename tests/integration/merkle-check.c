/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For the integration tests: checks a deep quote's Merkle proof with
 * lib/merkle, as a verifier would.
 *
 *   merkle-check leaf VM-UUID EK-NAME-HEX ATTEST-SHA256-HEX INDEX SIZE ROOT-HEX [PROOF-HEX...]
 *   merkle-check nonce NONCE-HEX INDEX SIZE ROOT-HEX [PROOF-HEX...]
 *
 * Exit 0 if the leaf recomputes the root, 1 if not, 2 on bad arguments.
 */
#include <stdio.h>
#include <string.h>

#include "merkle/merkle.h"
#include "util/util.h"

static int hex(const char *s, uint8_t *out, size_t max, size_t want, size_t *ret_len)
{
	size_t n;

	if (kq_hex_decode(s, out, max, &n) < 0 || (want && n != want)) {
		fprintf(stderr, "merkle-check: bad hex '%.80s'\n", s);
		return -1;
	}
	if (ret_len)
		*ret_len = n;
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t leaf[MERKLE_HASH], root[MERKLE_HASH], path[MERKLE_MAX_PROOF][MERKLE_HASH];
	uint64_t index, size;
	size_t len;
	int a, r;

	if (argc >= 3 && strcmp(argv[1], "leaf") == 0 && argc >= 8) {
		uint8_t uuid[16], ek[MERKLE_MAX_EK_NAME], att[32];
		char u[33];
		size_t k = 0, ek_len;

		for (const char *p = argv[2]; *p && k < 32; p++)
			if (*p != '-')
				u[k++] = *p;
		u[k] = 0;
		if (hex(u, uuid, 16, 16, NULL) < 0 || hex(argv[3], ek, sizeof(ek), 0, &ek_len) < 0 ||
		    hex(argv[4], att, 32, 32, NULL) < 0)
			return 2;
		if (merkle_leaf(uuid, ek, ek_len, att, leaf) < 0) {
			fprintf(stderr, "merkle-check: %s\n", kq_errmsg());
			return 2;
		}
		a = 5;
	} else if (argc >= 6 && strcmp(argv[1], "nonce") == 0) {
		uint8_t nonce[MERKLE_MAX_NONCE];
		size_t nl;

		if (hex(argv[2], nonce, sizeof(nonce), 0, &nl) < 0 || merkle_nonce_leaf(nonce, nl, leaf) < 0)
			return 2;
		a = 3;
	} else {
		fputs("usage: merkle-check leaf VM-UUID EK-NAME ATTEST-SHA256 INDEX SIZE ROOT [PROOF...]\n"
		      "       merkle-check nonce NONCE INDEX SIZE ROOT [PROOF...]\n", stderr);
		return 2;
	}
	if (kq_parse_uint(argv[a], UINT32_MAX, &index) < 0 || kq_parse_uint(argv[a + 1], UINT32_MAX, &size) < 0 ||
	    hex(argv[a + 2], root, sizeof(root), MERKLE_HASH, NULL) < 0)
		return 2;
	len = (size_t)(argc - a - 3);
	if (len > MERKLE_MAX_PROOF)
		return 2;
	for (size_t i = 0; i < len; i++)
		if (hex(argv[a + 3 + (int)i], path[i], MERKLE_HASH, MERKLE_HASH, NULL) < 0)
			return 2;
	r = merkle_verify(leaf, (size_t)index, (size_t)size, (const uint8_t(*)[MERKLE_HASH])path, len, root);
	if (r < 0) {
		fprintf(stderr, "merkle-check: %s\n", kq_errmsg());
		return 1;
	}
	return 0;
}
