/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/tpmdev: a real TPM 2.0, used through tpm2-tss ESYS over a TCTI chosen by
 * configuration ("device:/dev/tpmrm0" in production, "swtpm:" or "mssim:" in
 * tests). The agents use it for their keys (EK, AK, the host's vTPM-CA key),
 * for credential activation, quotes and certification; lib/tpm checks the
 * results in software.
 *
 * Keys are persistent: each function that returns a key first looks at its
 * persistent handle and reuses what is there (after checking it is the kind of
 * key asked for), and only creates and persists a key when the handle is empty,
 * so an agent that restarts keeps its identity. Handles:
 *
 *   0x81010001 / 0x81010002  EK, RSA-2048 / ECC P-256 (TCG default templates)
 *   0x81000001               SRK (TCG RSA-2048 storage template), parent of the CA key
 *   caller's handle          AK (kumquat default 0x81010010), CA key (default 0x81010020)
 *
 * Persisting uses owner authorisation and the EK policy uses endorsement
 * authorisation, both with the empty password (the state of a TPM after
 * clearing it and of every swtpm_setup TPM). Keys have empty auth values.
 *
 * Every session and transient object a call loads is flushed before it returns,
 * on every path, so the module works without a resource manager (a TPM holds
 * only about three transient objects). TPM_RC_RETRY, _YIELDED and _TESTING are
 * retried a few times with a short back-off.
 *
 * Errors follow lib/util: negative errno-style codes with kq_errmsg() set; TSS
 * and TPM failures carry Tss2_RC_Decode()'s text and the code. Main mappings:
 * -ENOENT nothing at a handle or NV index, -EEXIST a handle holds a key of
 * another kind, -EACCES authorisation or policy failed, -ENOSPC TPM memory or
 * persistent space exhausted, -EBADMSG integrity check failed (for example a
 * credential made for another key), -ECONNREFUSED / -EIO TCTI failures,
 * -EAGAIN the TPM stayed busy, -EINVAL bad arguments.
 *
 * A struct tpmdev is not thread-safe: one thread at a time per handle.
 */
#ifndef KQ_TPMDEV_H
#define KQ_TPMDEV_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "tpm/tpm.h"

#define TPMDEV_DEFAULT_TCTI "device:/dev/tpmrm0"

#define TPMDEV_EK_RSA_HANDLE   0x81010001u
#define TPMDEV_EK_ECC_HANDLE   0x81010002u
#define TPMDEV_SRK_HANDLE      0x81000001u
#define TPMDEV_AK_HANDLE       0x81010010u /* kumquat's default */
#define TPMDEV_CA_KEY_HANDLE   0x81010020u /* kumquat's default */
#define TPMDEV_PAYLOAD_KEY_HANDLE 0x81010030u /* kumquat's default */
#define TPMDEV_EK_CERT_RSA_NV  0x01c00002u
#define TPMDEV_EK_CERT_ECC_NV  0x01c0000au

/* Largest qualifying data (nonce) accepted for quotes and certification. */
#define TPMDEV_MAX_QUALIFYING 64

struct tpmdev;

enum tpmdev_key_alg {
	TPMDEV_RSA2048,
	TPMDEV_ECC_P256,
};

/*
 * Opens the TPM behind a TCTI configuration string ("device:/dev/tpmrm0",
 * "swtpm:host=127.0.0.1,port=2321", "mssim:host=...,port=..."; NULL means
 * TPMDEV_DEFAULT_TCTI) and sends TPM2_Startup(CLEAR), which a started TPM
 * ignores. Silences tpm2-tss's own logging (tpm_quiet_tss_log). Errors:
 * -ENOENT / -EIO when the TCTI cannot be loaded or reached. Close with
 * tpmdev_close.
 */
int tpmdev_open(const char *tcti, struct tpmdev **ret);
/* Closes the ESYS context and the TCTI. NULL is fine. */
void tpmdev_close(struct tpmdev *t);

/*
 * The endorsement key. If the TCG persistent handle (0x81010001 RSA,
 * 0x81010002 ECC) holds a key it is used, provided it is a restricted decrypt
 * key of the algorithm with policy A (PolicySecret(TPM_RH_ENDORSEMENT)), else
 * -EEXIST. If the handle is empty the key is created with the TCG default EK
 * template (EK Credential Profile L-1 / L-2) in the endorsement hierarchy and
 * persisted there. *ret_pub (optional) receives the public area.
 */
int tpmdev_ek(struct tpmdev *t, enum tpmdev_key_alg alg, TPM2B_PUBLIC *ret_pub);

/*
 * The EK certificate from its TCG NV index (0x01c00002 RSA, 0x01c0000a ECC),
 * read in chunks of the TPM's TPM_PT_NV_BUFFER_MAX. Returns the DER certificate
 * (padding after the DER SEQUENCE, which some vendors leave, is dropped);
 * caller frees *ret_der. -ENOENT if the index is not defined, -EBADMSG if its
 * content is not a DER SEQUENCE.
 */
int tpmdev_ek_cert(struct tpmdev *t, enum tpmdev_key_alg alg, uint8_t **ret_der, size_t *ret_len);

/*
 * The attestation key: a restricted signing key (RSA-2048 RSASSA-SHA256, or
 * ECDSA-SHA256 on P-256), fixedTPM|fixedParent|sensitiveDataOrigin|
 * userWithAuth|restricted|sign, child of the EK of the same algorithm (created
 * first if needed), persisted at persistent (an owner handle, 0x81000000-
 * 0x817fffff; kumquat uses TPMDEV_AK_HANDLE). If persistent already holds a
 * key, it is returned instead, provided it is an AK of that algorithm under
 * that EK (checked with its qualified name), else -EEXIST. ret_name optional.
 */
int tpmdev_ak(struct tpmdev *t, enum tpmdev_key_alg alg, TPM2_HANDLE persistent, TPM2B_PUBLIC *ret_pub,
	      TPM2B_NAME *ret_name);

/*
 * TPM2_ActivateCredential of blob/seed (from TPM2_MakeCredential for the key
 * at ak and the EK of ek_alg) with the EK under a PolicySecret(endorsement)
 * session. *ret_secret receives the credential; the caller wipes it
 * (OPENSSL_cleanse). -EBADMSG when the credential was made for another name
 * (integrity check), usually -EINVAL when the seed was made for another EK,
 * -ENOENT when ak is absent. The EK is created if absent, as by tpmdev_ek.
 */
int tpmdev_activate_credential(struct tpmdev *t, enum tpmdev_key_alg ek_alg, TPM2_HANDLE ak,
			       const TPM2B_ID_OBJECT *blob, const TPM2B_ENCRYPTED_SECRET *seed,
			       TPM2B_DIGEST *ret_secret);

/*
 * TPM2_Quote by the key at ak (its own scheme) over sel with nonce as
 * qualifying data (at most TPMDEV_MAX_QUALIFYING bytes). Returns the
 * marshalled TPMS_ATTEST exactly as signed (*ret_attest, caller frees), the
 * signature, and the values of the selected PCRs read right after the quote.
 * The values are checked against the quote's PCR digest and the whole sequence
 * is repeated (3 attempts) if a PCR changed in between, -EAGAIN after that.
 * (The PCR update counter is not enough for this: PC Client PCRs 16 and 21-23
 * do not advance it.) sel: at most TPM_MAX_BANKS distinct banks, PCRs 0-23.
 */
int tpmdev_quote(struct tpmdev *t, TPM2_HANDLE ak, const TPML_PCR_SELECTION *sel, const uint8_t *nonce,
		 size_t nonce_len, uint8_t **ret_attest, size_t *ret_attest_len, TPMT_SIGNATURE *ret_sig,
		 struct tpm_pcrs *ret_pcrs);

/*
 * The host's vTPM-CA signing key: RSA-2048 RSASSA-SHA256 or ECC P-256
 * ECDSA-SHA256, NOT restricted (it signs X.509 TBS digests),
 * fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|sign, child of the SRK
 * at TPMDEV_SRK_HANDLE (created from the TCG RSA-2048 SRK template in the owner
 * hierarchy and persisted if absent; an existing SRK of any algorithm is used
 * if it is a restricted decrypt key), persisted at persistent (owner range;
 * kumquat uses TPMDEV_CA_KEY_HANDLE). An existing key there is returned if it
 * is such a key of that algorithm under the SRK, else -EEXIST. ret_name optional.
 */
int tpmdev_ca_key(struct tpmdev *t, enum tpmdev_key_alg alg, TPM2_HANDLE persistent, TPM2B_PUBLIC *ret_pub,
		  TPM2B_NAME *ret_name);

/*
 * TPM2_Certify of the persistent object by the key at ak (its own scheme) with
 * qualifying data (at most TPMDEV_MAX_QUALIFYING bytes). Returns the marshalled
 * TPMS_ATTEST as signed (*ret_attest, caller frees) and the signature.
 */
/*
 * The payload key at persistent (owner range): an RSA-2048 decryption key
 * under the SRK (RSAES-OAEP with SHA-256 only, not for signing, never leaves
 * the TPM), created and persisted on first use. Certified by the AK
 * (tpmdev_certify) so a registrar can vouch that what is encrypted to it can
 * only be read inside this TPM.
 */
int tpmdev_payload_key(struct tpmdev *t, TPM2_HANDLE persistent, TPM2B_PUBLIC *ret_pub, TPM2B_NAME *ret_name);
/* RSAES-OAEP-SHA256 decryption with the key at persistent; label (may be NULL) as OpenSSL's, without the TPM's trailing zero. */
int tpmdev_rsa_decrypt(struct tpmdev *t, TPM2_HANDLE key, const char *label, const uint8_t *in, size_t len,
		       uint8_t *out, size_t cap, size_t *ret_len);
int tpmdev_certify(struct tpmdev *t, TPM2_HANDLE object, TPM2_HANDLE ak, const uint8_t *qualifying,
		   size_t qlen, uint8_t **ret_attest, size_t *ret_len, TPMT_SIGNATURE *ret_sig);

/*
 * TPM2_Sign of digest (dlen must be the size of hash_alg, which must be the
 * key's scheme hash, else -EINVAL) by the unrestricted key at key, with a NULL
 * hash-check ticket. Returns the signature as X.509 wants it (*ret_sig, caller
 * frees): for RSA the PKCS#1 v1.5 signature (modulus-sized), for ECC a DER
 * ECDSA-Sig-Value. A restricted key is refused by the TPM (-EACCES or -EIO).
 */
int tpmdev_sign_digest(struct tpmdev *t, TPM2_HANDLE key, uint16_t hash_alg, const uint8_t *digest, size_t dlen,
		       uint8_t **ret_sig, size_t *ret_len);

/* TPM2_PCR_Extend of PCR pcr (0-23) in bank alg with digest (the bank's digest size). */
int tpmdev_pcr_extend(struct tpmdev *t, unsigned pcr, uint16_t alg, const uint8_t *digest);

/*
 * Reads the PCRs of sel (limits as for tpmdev_quote) into *ret_pcrs, banks in
 * the order of sel, in as many TPM2_PCR_Read calls as the TPM needs (it returns
 * at most 8 values each), all under one PCR update counter (else retried, up
 * to 3 times, then -EAGAIN). -ENOENT if the TPM has no such bank.
 */
int tpmdev_pcr_read(struct tpmdev *t, const TPML_PCR_SELECTION *sel, struct tpm_pcrs *ret_pcrs);

/*
 * Removes the persistent object at handle (TPM2_EvictControl, owner auth), for
 * key rotation and tests. -ENOENT if the handle is empty.
 */
int tpmdev_evict(struct tpmdev *t, TPM2_HANDLE handle);

#endif
