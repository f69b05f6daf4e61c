/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/tpm: TPM 2.0 wire formats and the checks a verifier makes on them.
 *
 *  - unmarshalling of TPMS_ATTEST, TPMT_SIGNATURE, TPM2B_PUBLIC / TPMT_PUBLIC
 *    (tpm2-tss MU), always requiring the whole buffer to be consumed;
 *  - public keys: EVP_PKEY from a TPMT_PUBLIC (RSA, ECC NIST curves), TPM names
 *    and qualified names, loading a key file in any format tpm2-tools writes;
 *  - quote verification with OpenSSL 3 (RSASSA, RSAPSS, ECDSA; SHA-1/256/384/512);
 *  - the tpm2-tools PCR file ("serialized" output of `tpm2_quote -o`, also
 *    Keylime's PCR blob): read and write;
 *  - software TPM2_MakeCredential for RSA and ECC EKs, and the tpm2-tools
 *    credential file format that `tpm2_activatecredential` reads.
 *
 * Errors follow lib/util: negative errno-style codes with kq_errmsg() set.
 * Nothing here talks to a TPM; everything treats its input as hostile.
 */
#ifndef KQ_TPM_H
#define KQ_TPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include "crypto/crypto.h"

/* ---- quote verification failure codes (all negative) ---- */
#define TPM_E_MALFORMED  (-EBADMSG)      /* structure cannot be parsed, trailing bytes */
#define TPM_E_NOT_QUOTE  (-EPROTO)       /* magic is not TPM_GENERATED or type is not a quote */
#define TPM_E_SIGNATURE  (-EKEYREJECTED) /* signature does not verify with the given key */
#define TPM_E_NONCE      (-ESTALE)       /* extraData differs from the expected nonce */
#define TPM_E_PCRS       (-EBADE)        /* PCR values/selection do not produce the quoted digest */
#define TPM_E_SIGNER     (-EACCES)       /* qualifiedSigner differs from the expected one */

/* Largest key, attestation, signature or PCR file accepted from a file. */
#define TPM_MAX_BLOB (64u * 1024)

/*
 * tpm2-tss logs malformed input to stderr by itself; programs call this once at
 * start so that hostile input cannot fill their logs (TSS2_LOG=all+NONE unless
 * the user set TSS2_LOG). kumquat reports the errors itself.
 */
void tpm_quiet_tss_log(void);

/* ---- unmarshalling (exact: trailing bytes are an error) ---- */

int tpm_attest_unmarshal(const uint8_t *buf, size_t len, TPMS_ATTEST *ret);
int tpm_signature_unmarshal(const uint8_t *buf, size_t len, TPMT_SIGNATURE *ret);
/* Accepts a TPM2B_PUBLIC whose size field matches its content. */
int tpm_public_unmarshal(const uint8_t *buf, size_t len, TPM2B_PUBLIC *ret);
/* Accepts a bare TPMT_PUBLIC. */
int tpm_tpmt_public_unmarshal(const uint8_t *buf, size_t len, TPMT_PUBLIC *ret);

/* ---- keys and names ---- */

/*
 * EVP_PKEY for an RSA (2048-4096 bits) or ECC (NIST P-256/384/521) TPMT_PUBLIC.
 * Caller frees with EVP_PKEY_free. -ENOTSUP for other types and curves.
 */
int tpm_public_to_pkey(const TPMT_PUBLIC *pub, EVP_PKEY **ret);

/*
 * Checks that a public area is what an attestation key must be: RSA or ECC,
 * fixedTPM, fixedParent, sensitiveDataOrigin, restricted, sign and not decrypt.
 * MakeCredential alone does not prove this (a key loaded from outside can be
 * activated too). -EPERM with the reason otherwise.
 */
int tpm_public_check_ak(const TPMT_PUBLIC *pub);

/* TPM name: nameAlg (2 bytes BE) || H_nameAlg(marshalled TPMT_PUBLIC). */
int tpm_public_name(const TPMT_PUBLIC *pub, TPM2B_NAME *ret);

/*
 * Qualified name of an object: nameAlg || H(parent_qn || name), where the
 * qualified name of a hierarchy is its 4-byte handle. alg is the object's nameAlg.
 */
int tpm_qualified_name(const TPM2B_NAME *parent_qn, const TPM2B_NAME *name, TPM2B_NAME *ret);
/* The qualified name of a hierarchy (TPM2_RH_OWNER, _ENDORSEMENT, ...) as TPM2B_NAME. */
void tpm_hierarchy_qn(TPM2_HANDLE hierarchy, TPM2B_NAME *ret);

/* A public key as loaded from a file: always a pkey, a TPM public area when known. */
struct tpm_key {
	EVP_PKEY *pkey;
	bool has_public;
	TPMT_PUBLIC pub; /* valid if has_public */
	TPM2B_NAME name; /* valid if has_public */
};

/*
 * Loads a key from what tpm2-tools and OpenSSL write: TPM2B_PUBLIC ("tss"),
 * a bare TPMT_PUBLIC, PEM or DER SubjectPublicKeyInfo. Whatever the format the
 * key must be RSA 2048-4096 bits with an odd exponent >= 3, or EC on P-256,
 * P-384 or P-521 (-ENOTSUP / TPM_E_MALFORMED otherwise). Free with tpm_key_clear.
 */
int tpm_key_load(const uint8_t *buf, size_t len, struct tpm_key *ret);
void tpm_key_clear(struct tpm_key *key);

/* ---- PCR values ---- */

#define TPM_MAX_BANKS 8
#define TPM_NUM_PCRS 24

struct tpm_pcr_bank {
	uint16_t alg;  /* TPM hash id */
	uint32_t mask; /* bit i set: PCR i present */
	uint8_t value[TPM_NUM_PCRS][KQ_MAX_DIGEST];
};

/* A set of PCR values, banks kept in the order they were selected. */
struct tpm_pcrs {
	size_t nbanks;
	struct tpm_pcr_bank bank[TPM_MAX_BANKS];
};

/* Finds the bank for alg, NULL if absent. */
const struct tpm_pcr_bank *tpm_pcrs_bank(const struct tpm_pcrs *pcrs, uint16_t alg);
/* Adds (or finds) a bank; -E2BIG when TPM_MAX_BANKS are in use, -ENOTSUP for unknown algs. */
int tpm_pcrs_add_bank(struct tpm_pcrs *pcrs, uint16_t alg, struct tpm_pcr_bank **ret);

/*
 * Parses a tpm2-tools "serialized" PCR file: a host-endian (little-endian)
 * TPML_PCR_SELECTION (132 bytes), a u32 count and count TPML_DIGEST structures
 * (532 bytes each); digests fill the selection in order. Limits: 16 selections,
 * 64 digest lists, digests sized for their bank.
 */
int tpm_pcrfile_parse(const uint8_t *buf, size_t len, struct tpm_pcrs *ret);
/* Writes that format. *ret is malloc'd, caller frees. */
int tpm_pcrfile_write(const struct tpm_pcrs *pcrs, uint8_t **ret, size_t *ret_len);

/*
 * Quote PCR digest: H_alg over the values in the order of sel (banks as
 * listed, PCRs ascending). -EBADE if pcrs lacks a selected value.
 */
int tpm_pcrs_digest(const struct tpm_pcrs *pcrs, const TPML_PCR_SELECTION *sel, uint16_t alg,
		    uint8_t *out, size_t *ret_len);

/* ---- quotes ---- */

struct tpm_quote_check {
	const uint8_t *attest;          /* marshalled TPMS_ATTEST, exactly as signed */
	size_t attest_len;
	const TPMT_SIGNATURE *sig;
	EVP_PKEY *key;                  /* the AK's public key */
	const uint8_t *nonce;           /* expected extraData; NULL: not checked */
	size_t nonce_len;
	const struct tpm_pcrs *pcrs;    /* values claimed for the quoted PCRs; NULL: not checked */
	const TPM2B_NAME *signer;       /* expected qualifiedSigner; NULL: not checked */
};

/*
 * Verifies a quote: structure, magic and type, signature over the attestation
 * with the scheme and hash in sig (which must suit the key type), nonce ==
 * extraData, the PCR selection of pcrs equal to the quoted one and the PCR
 * digest recomputed with the signature's hash, the signer. Checks run in that
 * order and the first failure is returned as a TPM_E_* code with a message.
 * On success *ret_attest (optional) receives the decoded attestation.
 */
int tpm_quote_verify(const struct tpm_quote_check *chk, TPMS_ATTEST *ret_attest);

/* Signature check alone: sig over H(data) with key. TPM_E_SIGNATURE on mismatch. */
int tpm_signature_verify(EVP_PKEY *key, const TPMT_SIGNATURE *sig, const uint8_t *data, size_t len);

/* Name of a signature scheme ("rsassa", "rsapss", "ecdsa", ...) and its hash alg. */
const char *tpm_sig_scheme_name(TPMI_ALG_SIG_SCHEME scheme);
uint16_t tpm_sig_hash(const TPMT_SIGNATURE *sig);

/* ---- credentials (TPM2_MakeCredential in software) ---- */

/*
 * Makes the credential blob and encrypted seed that TPM2_ActivateCredential
 * with the EK (ek) and the object named name will turn back into secret.
 * The EK's nameAlg and symmetric definition are used (AES-CFB); secret may be
 * at most the nameAlg digest size. RSA EKs: OAEP seed; ECC EKs: ECDH + KDFe.
 */
int tpm_make_credential(const TPMT_PUBLIC *ek, const TPM2B_NAME *name, const uint8_t *secret,
			size_t secret_len, TPM2B_ID_OBJECT *ret_blob, TPM2B_ENCRYPTED_SECRET *ret_seed);

/* The public area of the TCG default EK template (L-1 RSA-2048 or L-2 ECC P-256) for a key. */
int tpm_ek_default_public(EVP_PKEY *pkey, TPMT_PUBLIC *ret);

/*
 * tpm2-tools credential file: BE u32 0xBADCC0DE, BE u32 1, TPM2B_ID_OBJECT,
 * TPM2B_ENCRYPTED_SECRET. write: *ret is malloc'd, caller frees.
 */
int tpm_credfile_write(const TPM2B_ID_OBJECT *blob, const TPM2B_ENCRYPTED_SECRET *seed,
		       uint8_t **ret, size_t *ret_len);
int tpm_credfile_parse(const uint8_t *buf, size_t len, TPM2B_ID_OBJECT *ret_blob,
		       TPM2B_ENCRYPTED_SECRET *ret_seed);

/*
 * kumquat's enrolment proof: after TPM2_ActivateCredential an agent shows it
 * recovered the secret with HMAC-SHA256(key = secret, message = its id).
 */
int tpm_activation_proof(const uint8_t *secret, size_t secret_len, const char *id, uint8_t out[32]);

/* KDFa (SP 800-108 counter mode with HMAC) as the TPM defines it; label without NUL. */
int tpm_kdfa(uint16_t alg, const uint8_t *key, size_t key_len, const char *label,
	     const uint8_t *ctx_u, size_t u_len, const uint8_t *ctx_v, size_t v_len,
	     uint32_t bits, uint8_t *out);
/* KDFe (SP 800-56A concatenation KDF) as the TPM defines it; label without NUL. */
int tpm_kdfe(uint16_t alg, const uint8_t *z, size_t z_len, const char *label,
	     const uint8_t *party_u, size_t u_len, const uint8_t *party_v, size_t v_len,
	     uint32_t bits, uint8_t *out);

#endif
