/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/x509: the X.509 work of the registrar and the CLI, over OpenSSL 3.
 *
 *  - loading certificates (PEM or DER) as TPMs and vendors hand them out,
 *    quirks included: the TCG PC Client NV header, NV padding after the DER,
 *    and serial numbers with redundant leading zero bytes (STMicroelectronics);
 *  - trust stores from a directory of CA certificates and chain verification
 *    that accepts the TCG EK certificate profile and nothing else unusual;
 *  - a deployment CA: the CA itself and TLS leaf certificates for each
 *    component, written as PEM files;
 *  - issuance with an external signer (a TPM-resident key) through a callback.
 *
 * Errors follow lib/util: negative errno-style codes with kq_errmsg() set;
 * OpenSSL's reason is part of the message. Out-parameters (ret_*) are set only
 * on success. Everything read is treated as hostile.
 */
#ifndef KQ_X509_H
#define KQ_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/crypto.h"

/* Largest certificate file accepted, and most certificates in one file. */
#define X509_MAX_INPUT (1u << 20)
#define X509_MAX_CERTS 32
/* Most CA certificates x509_store_from_dir takes from one directory. */
#define X509_MAX_STORE_CERTS 4096
/* Most SANs in an issued certificate; longest CN/O (RFC 5280 ub-common-name). */
#define X509_MAX_SANS 64
#define X509_MAX_NAME_LEN 64
/* Longest validity an issued certificate may be given, in days. */
#define X509_MAX_DAYS 36500u

/* ---- loading ---- */

/*
 * Loads the first certificate of buf: PEM (one or more CERTIFICATE blocks;
 * other blocks such as keys are skipped) or DER. DER may carry the TCG PC
 * Client NV header (10 01 00 + 16-bit length) and NV padding after the
 * certificate (bytes all 0x00 or all 0xff); other trailing bytes are an error.
 * A serial number with redundant leading zero bytes, which OpenSSL refuses, is
 * re-encoded minimally; the original to-be-signed bytes are kept with the
 * certificate so that x509_verify_chain checks the signature over what the
 * issuer signed. Caller frees with X509_free.
 * Errors: -EFBIG above X509_MAX_INPUT, -E2BIG above X509_MAX_CERTS,
 * -ENODATA for PEM without a certificate, -EBADMSG for anything malformed.
 */
int x509_load(const uint8_t *buf, size_t len, X509 **ret);
/* Every certificate of buf, in order, as x509_load. Caller frees with
 * sk_X509_pop_free(sk, X509_free). */
int x509_load_many(const uint8_t *buf, size_t len, STACK_OF(X509) **ret);
/* Reads a file (at most X509_MAX_INPUT bytes) and loads its first certificate. */
int x509_read(const char *path, X509 **ret);
/* Reads a PEM private key file (unencrypted PKCS#8 or traditional); the file's
 * bytes are wiped after parsing. Caller frees with EVP_PKEY_free. */
int x509_read_key(const char *path, EVP_PKEY **ret);

/* ---- trust ---- */

/*
 * A trust store from every *.pem, *.crt and *.der file (any case) in dir,
 * e.g. the TPM vendors' CAs for EK certificates, or a kumquat CA directory.
 * Only CA certificates (X509_check_ca: basicConstraints CA:TRUE, or a v1
 * self-signed root) become trust anchors: leaf certificates next to them are skipped, and so
 * are PEM files holding no certificate (private keys). A listed file that does
 * not parse is an error naming it. Returns the number of CA certificates
 * added (> 0); -ENOENT when there is none. Caller frees with X509_STORE_free.
 */
int x509_store_from_dir(const char *dir, X509_STORE **ret);

/*
 * Verifies that cert chains to a CA in store through optional intermediates,
 * at the current time or, when at != 0, at that time. Any purpose is accepted
 * (EK certificates carry only the TCG EK EKU, TLS certificates theirs).
 *  - Every certificate in the store is a trust anchor, also an intermediate
 *    (X509_V_FLAG_PARTIAL_CHAIN): operators often have only the vendor's
 *    intermediate CA, and x509_store_from_dir admits only CA certificates.
 *  - A critical extension OpenSSL does not process is accepted only if it is
 *    in the TCG EK profile's set: subjectDirectoryAttributes (2.5.29.9, the
 *    TPM specification and security assertions). Any other unknown critical
 *    extension still fails the chain, as RFC 5280 requires.
 *  - A certificate whose serial was re-encoded by x509_load has its
 *    signature checked over the original to-be-signed bytes.
 * Returns 0, or -EKEYREJECTED with OpenSSL's reason and the depth and subject
 * of the failing certificate in the message; -EINVAL for NULL arguments.
 */
int x509_verify_chain(X509 *cert, STACK_OF(X509) *intermediates, X509_STORE *store, time_t at);

/*
 * Whether the certificate's public key equals pkey (EVP_PKEY_eq): returns 0
 * when it does, -EKEYREJECTED when it does not, -EINVAL when the certificate's
 * key cannot be read. (One error convention: 'r < 0' is always a refusal.)
 */
int x509_matches_pkey(X509 *cert, EVP_PKEY *pkey);

/* ---- a deployment CA ---- */

struct x509_name_spec {
	const char *cn;  /* commonName, required, 1..X509_MAX_NAME_LEN bytes UTF-8 */
	const char *org; /* organizationName, optional (NULL) */
};

enum x509_key_type {
	X509_KEY_EC_P256 = 0, /* the default */
	X509_KEY_RSA3072,
};

/* A fresh private key. Caller frees with EVP_PKEY_free. */
int x509_keygen(enum x509_key_type type, EVP_PKEY **ret);

/*
 * A self-signed CA for a deployment: ECDSA P-256 key, SHA-256 signature,
 * basicConstraints critical CA:TRUE pathlen:0 (it issues only leaves),
 * keyUsage critical keyCertSign+cRLSign, SKI and AKI, a random positive
 * serial of 127 bits (16 bytes),
 * valid from 5 minutes ago (clock skew) for days (1..X509_MAX_DAYS) days.
 * Caller frees both with EVP_PKEY_free / X509_free.
 */
int x509_make_ca(const struct x509_name_spec *subject, unsigned days, EVP_PKEY **ret_key, X509 **ret_cert);
/*
 * The same CA certificate, unsigned, for a key held elsewhere (the vTPM-CA
 * key in a TPM): sign it with x509_sign_with. Caller frees it.
 */
int x509_ca_cert_new(const struct x509_name_spec *subject, unsigned days, EVP_PKEY *key, X509 **ret_cert);
/* The same over a key the caller made (x509_keygen(X509_KEY_RSA3072) for RSA). */
int x509_make_ca_with_key(const struct x509_name_spec *subject, unsigned days, EVP_PKEY *key, X509 **ret_cert);

enum x509_usage { X509_USAGE_SERVER, X509_USAGE_CLIENT, X509_USAGE_BOTH };

/*
 * A leaf certificate signed by ca_key/ca_cert (which must match, and be a CA)
 * for a fresh key of the CA's key type: SANs from sans (DNS names, or IPv4 /
 * IPv6 addresses such as "127.0.0.1", "::1"; at most X509_MAX_SANS), EKU
 * serverAuth / clientAuth / both per usage, keyUsage critical
 * digitalSignature (+keyEncipherment for RSA), basicConstraints critical
 * CA:FALSE, random 127-bit serial, SKI and AKI (the CA's SKI), SHA-256
 * signature, days (1..X509_MAX_DAYS) of validity but never past the CA's
 * notAfter. DNS names are RFC 1123 host names (a leading "*." allowed) whose
 * last label is not all digits; duplicates are dropped. -EINVAL for a bad
 * name, SAN or CA, -E2BIG for too many SANs. Caller frees both results.
 */
int x509_issue(EVP_PKEY *ca_key, X509 *ca_cert, const struct x509_name_spec *subject,
	       const char *const *sans, size_t n_sans, enum x509_usage usage, unsigned days,
	       EVP_PKEY **ret_key, X509 **ret_cert);
/* The same for an existing key (only its public part is used). */
int x509_issue_for_key(EVP_PKEY *ca_key, X509 *ca_cert, const struct x509_name_spec *subject,
		       const char *const *sans, size_t n_sans, enum x509_usage usage, unsigned days,
		       EVP_PKEY *key, X509 **ret_cert);

/* ---- issuance with an external signer ---- */

/*
 * Signs digest (dlen bytes of hash hash_alg, always KQ_ALG_SHA256 today) and
 * returns the signature in a malloc'd buffer the caller (x509_sign_with) frees:
 * RSA: the PKCS#1 v1.5 signature, exactly the modulus size; ECDSA: a DER
 * ECDSA-Sig-Value, or r || s each padded to the curve order size (what a TPM's
 * TPMS_SIGNATURE_ECDSA holds). Returns 0 or a negative errno with kq_err set.
 */
typedef int (*x509_sign_cb)(void *userdata, uint16_t hash_alg, const uint8_t *digest, size_t dlen,
			    uint8_t **ret_sig, size_t *ret_len);

/*
 * Signs cert, whose fields are all set, through cb: sets both signature
 * algorithm fields (sha256WithRSAEncryption or ecdsa-with-SHA256, per the type
 * of issuer_pub), hashes the DER to-be-signed part with SHA-256, calls cb,
 * installs the signature, and verifies the result with issuer_pub before
 * returning. Call it before anything else reads cert's cached properties.
 * -ENOTSUP for an issuer key that is neither RSA nor EC; -EKEYREJECTED when
 * the signature does not verify (cert is then left unusable); cb's error as is.
 */
int x509_sign_with(X509 *cert, EVP_PKEY *issuer_pub, x509_sign_cb cb, void *userdata);

/* ---- files ---- */

/* Writes cert as PEM, atomically (temp file + rename), mode 0644. */
int x509_write_pem(const char *path, X509 *cert);
/* Writes key as unencrypted PKCS#8 PEM, atomically, mode 0600; buffers wiped. */
int x509_write_key_pem(const char *path, EVP_PKEY *key);

/* ---- description ---- */

/*
 * A JSON description of cert: version, subject, issuer, serial (hex), not_before,
 * not_after (ISO 8601 UTC), key_type ("EC P-256", "RSA 2048"), is_ca, path_len,
 * self_issued, sans ("DNS:..", "IP:..", "DirName:.." with the TCG attribute
 * names), tpm (manufacturer/model/version from a TCG SAN directoryName, if
 * any), eku, key_usage, critical (names of the critical extensions),
 * subject_key_id, authority_key_id, sha256_fingerprint, signature_algorithm.
 * Caller drops the reference with json_object_put.
 */
int x509_describe(X509 *cert, struct json_object **ret);

/* ---- vTPM certificates ---- */

struct x509_tpm_cert_spec {
	bool platform;           /* a platform certificate instead of an EK certificate */
	const char *manufacturer, *model, *version; /* of the TPM (EK) or the platform */
	const char *spec_family; /* TPM specification (EK only): "2.0", level, revision */
	unsigned spec_level, spec_revision;
	const char *vm_uuid;     /* the VM the vTPM belongs to */
	const char *host_id;     /* the host whose vTPM-CA issues it */
};

/*
 * An unsigned EK (or platform) certificate for key, issued by issuer, in the
 * TCG EK Credential Profile form described in docs/vtpm.md: empty subject,
 * critical subjectAltName with the TPM (or platform) manufacturer, model and
 * version in a directoryName and the URIs urn:uuid:VM and
 * urn:kumquat:host:HOST, validity until 9999-12-31, keyUsage keyEncipherment
 * (RSA) or keyAgreement (EC), the TCG EK (or platform) certificate EKU, the
 * TPM specification in subjectDirectoryAttributes (EK), AKI from issuer's
 * SKI. Sign it with x509_sign_with. -EINVAL for bad fields (attributes 1-64
 * printable characters, UUIDs). Caller frees it.
 */
int x509_tpm_cert_new(const struct x509_tpm_cert_spec *spec, EVP_PKEY *key, X509 *issuer, X509 **ret);

/*
 * The VM UUID and host id a vTPM certificate names (its urn:uuid: and
 * urn:kumquat:host: URIs), lowercase. -ENOENT if either is missing, -EBADMSG
 * if either appears twice.
 */
int x509_vtpm_identity(X509 *cert, char ret_vm[37], char ret_host[37]);

#endif
