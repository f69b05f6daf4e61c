/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/crypto: hash algorithms by TPM algorithm id and by name, over OpenSSL 3.
 * The EVP_MD objects are fetched once per process and never freed.
 */
#ifndef KQ_CRYPTO_H
#define KQ_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* TPM_ALG_ID values of the hashes kumquat supports. */
#define KQ_ALG_SHA1   0x0004
#define KQ_ALG_SHA256 0x000B
#define KQ_ALG_SHA384 0x000C
#define KQ_ALG_SHA512 0x000D
#define KQ_ALG_SM3_256 0x0012

#define KQ_MAX_DIGEST 64

/* The digest for a TPM hash id, or NULL if unsupported. Shared; do not free. */
const EVP_MD *kq_md(uint16_t alg);
/* Digest size in bytes for a TPM hash id, 0 if unsupported. */
size_t kq_hash_size(uint16_t alg);
/* "sha1", "sha256", ... or NULL. */
const char *kq_hash_name(uint16_t alg);
/* TPM hash id from a name ("sha256", "SHA-256", "sha256" case-insensitive), 0 if unknown. */
uint16_t kq_hash_from_name(const char *name);

/* out receives kq_hash_size(alg) bytes. -ENOTSUP for an unknown alg, -EIO on failure. */
int kq_hash(uint16_t alg, const void *data, size_t len, uint8_t *out);

/* TPM PCR extend: pcr = H(pcr || digest), both kq_hash_size(alg) bytes. */
int kq_extend(uint16_t alg, uint8_t *pcr, const uint8_t *digest);

#endif
