/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/payload: secure payloads (docs/payloads.md). A tenant seals a file or
 * a directory for one agent; the agent opens it only with both halves of the
 * key:
 *
 *   K = U xor V (32 random bytes each), auth_tag = HMAC-SHA256(K, agent id),
 *   sealed = "KQP1" || iv(12) || AES-256-GCM_K(archive; AAD "kumquat-payload-v1" || 0 || agent id) || tag(16),
 *   enc_u = RSAES-OAEP-SHA256(payload key, U, label "kumquat-payload-u"),
 *   enc_v = RSAES-OAEP-SHA256(payload key, V, label "kumquat-payload-v").
 *
 * The payload key is the agent's TPM-resident decryption key, certified by
 * its AK at the registrar (lib/tpmdev tpmdev_payload_key): U and V can only
 * be read inside that TPM. U goes to the agent with the sealed payload, V to
 * the verifier, which hands it on only while the agent attests. The labels
 * keep U and V from being swapped for one another.
 *
 * The archive is kumquat's own flat format: "KQA1", a count, then per file a
 * name (letters, digits, '.', '_', '-'; not starting with '.'), mode bits
 * 0700 at most, size and bytes. Directories are not nested.
 */
#ifndef KQ_PAYLOAD_H
#define KQ_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define PAYLOAD_KEY_LEN 32
#define PAYLOAD_TAG_LEN 32
#define PAYLOAD_ID_LEN 32                 /* hex digits of a payload id */
#define PAYLOAD_MAX (8u << 20)            /* archive bytes */
#define PAYLOAD_MAX_FILES 1024
#define PAYLOAD_NAME_MAX 255
#define PAYLOAD_LABEL_U "kumquat-payload-u"
#define PAYLOAD_LABEL_V "kumquat-payload-v"

/* Archives the regular file at path, or the regular files of the directory at path (symlinks refused). */
int payload_archive(const char *path, uint8_t **ret, size_t *ret_len);
/* Checks an archive's form: -EBADMSG, or 0 with its number of files. */
int payload_archive_check(const uint8_t *a, size_t len, size_t *ret_files);
/*
 * Checks an archive and writes its files into the directory dirfd (new
 * files only, O_EXCL|O_NOFOLLOW, mode as archived & 0700). -EBADMSG for a
 * malformed archive (nothing written), -errno if a file cannot be written.
 */
int payload_extract(const uint8_t *a, size_t len, int dirfd, size_t *ret_files);

struct payload_sealed {
	uint8_t *sealed;
	size_t sealed_len;
	uint8_t enc_u[512], enc_v[512];
	size_t enc_u_len, enc_v_len;
	uint8_t auth_tag[PAYLOAD_TAG_LEN];
};

void payload_sealed_clear(struct payload_sealed *s);

/* The tenant's side: seals plain for agent_id with the agent's payload key (RSA public). */
int payload_seal(EVP_PKEY *payload_key, const char *agent_id, const uint8_t *plain, size_t len,
		 struct payload_sealed *ret);
/* RSAES-OAEP-SHA256 encryption with a label (the TPM's form: the label's trailing zero included). */
int payload_rsa_encrypt(EVP_PKEY *key, const char *label, const uint8_t *in, size_t len, uint8_t *out,
			size_t cap, size_t *ret_len);

/*
 * The agent's side. K = U xor V, checked against the auth tag over agent_id
 * (-EKEYREJECTED if it does not match: U and V are not halves of one key
 * for this agent). k is wiped by the caller.
 */
int payload_combine(const uint8_t u[PAYLOAD_KEY_LEN], const uint8_t v[PAYLOAD_KEY_LEN], const char *agent_id,
		    const uint8_t tag[PAYLOAD_TAG_LEN], uint8_t k[PAYLOAD_KEY_LEN]);
/* Opens a sealed payload with K; -EBADMSG if it was changed, is another agent's or is not one. */
int payload_open(const uint8_t k[PAYLOAD_KEY_LEN], const char *agent_id, const uint8_t *sealed, size_t len,
		 uint8_t **ret, size_t *ret_len);

#endif
