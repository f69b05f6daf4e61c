/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/dsse: DSSE v1 envelopes (github.com/secure-systems-lab/dsse), as the
 * verifier signs its events and revocation notices:
 *   {"payloadType": T, "payload": base64(P), "signatures": [{"keyid", "sig": base64}]}
 * with the signature over PAE(T, P) = "DSSEv1" SP len(T) SP T SP len(P) SP P:
 * ECDSA P-256 with SHA-256 (DER) or RSA PKCS#1 v1.5 with SHA-256.
 */
#ifndef KQ_DSSE_H
#define KQ_DSSE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* Largest envelope dsse_verify reads. */
#define DSSE_MAX_ENVELOPE (1u << 20)

/* The PAE of a payload, malloc'd. */
uint8_t *dsse_pae(const char *type, const uint8_t *payload, size_t len, size_t *ret_len);
/* The envelope as JSON text (malloc'd); key NULL: no signature. keyid: hex SHA-256 of the public key's DER. */
int dsse_sign(EVP_PKEY *key, const char *keyid, const char *type, const uint8_t *payload, size_t len, char **ret);
/* The hex SHA-256 of a key's SubjectPublicKeyInfo (DSSE keyid). */
int dsse_keyid(EVP_PKEY *key, char ret[65]);
/*
 * Checks an envelope of payloadType type against pub: -EBADMSG if it is not
 * one (or of another type), -EKEYREJECTED if no signature verifies with pub.
 * On success *ret is the payload (malloc'd, NUL-terminated).
 */
int dsse_verify(EVP_PKEY *pub, const char *type, const uint8_t *env, size_t len, uint8_t **ret, size_t *ret_len);

#endif
