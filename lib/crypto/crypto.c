/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto/crypto.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

static const struct {
	uint16_t alg;
	const char *name;
	const char *ossl;
	size_t size;
} algs[] = {
	{ KQ_ALG_SHA1, "sha1", "SHA1", 20 },
	{ KQ_ALG_SHA256, "sha256", "SHA2-256", 32 },
	{ KQ_ALG_SHA384, "sha384", "SHA2-384", 48 },
	{ KQ_ALG_SHA512, "sha512", "SHA2-512", 64 },
	{ KQ_ALG_SM3_256, "sm3_256", "SM3", 32 },
};

static EVP_MD *mds[ARRAY_SIZE(algs)];
static pthread_once_t mds_once = PTHREAD_ONCE_INIT;

static void fetch_mds(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
		mds[i] = EVP_MD_fetch(NULL, algs[i].ossl, NULL);
}

static int index_of(uint16_t alg)
{
	for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
		if (algs[i].alg == alg)
			return (int)i;
	return -1;
}

const EVP_MD *kq_md(uint16_t alg)
{
	int i = index_of(alg);

	if (i < 0)
		return NULL;
	pthread_once(&mds_once, fetch_mds);
	return mds[i];
}

size_t kq_hash_size(uint16_t alg)
{
	int i = index_of(alg);

	return i < 0 ? 0 : algs[i].size;
}

const char *kq_hash_name(uint16_t alg)
{
	int i = index_of(alg);

	return i < 0 ? NULL : algs[i].name;
}

uint16_t kq_hash_from_name(const char *name)
{
	static const struct { const char *n; uint16_t alg; } aliases[] = {
		{ "sha-1", KQ_ALG_SHA1 }, { "sha-256", KQ_ALG_SHA256 },
		{ "sha-384", KQ_ALG_SHA384 }, { "sha-512", KQ_ALG_SHA512 },
		{ "sm3", KQ_ALG_SM3_256 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(algs); i++)
		if (strcasecmp(name, algs[i].name) == 0)
			return algs[i].alg;
	for (size_t i = 0; i < ARRAY_SIZE(aliases); i++)
		if (strcasecmp(name, aliases[i].n) == 0)
			return aliases[i].alg;
	return 0;
}

int kq_hash(uint16_t alg, const void *data, size_t len, uint8_t *out)
{
	const EVP_MD *md = kq_md(alg);

	if (!md)
		return kq_err(-ENOTSUP, "unsupported hash algorithm 0x%04x", alg);
	if (EVP_Digest(data, len, out, NULL, md, NULL) != 1)
		return kq_err(-EIO, "%s digest failed", kq_hash_name(alg));
	return 0;
}

int kq_extend(uint16_t alg, uint8_t *pcr, const uint8_t *digest)
{
	uint8_t buf[2 * KQ_MAX_DIGEST];
	size_t n = kq_hash_size(alg);

	if (!n)
		return kq_err(-ENOTSUP, "unsupported hash algorithm 0x%04x", alg);
	memcpy(buf, pcr, n);
	memcpy(buf + n, digest, n);
	return kq_hash(alg, buf, 2 * n, pcr);
}
