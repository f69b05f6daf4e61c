/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-registrar: which attestation key belongs to which TPM.
 *
 * Enrolment is two requests. begin: the agent sends its id, kind, EK public
 * area (+ EK certificate) and AK public area; the registrar checks the EK
 * certificate matches the EK and chains to a trusted vendor CA, checks the AK
 * is a restricted signing key that never leaves its TPM, and answers with a
 * MakeCredential challenge for (EK, AK name). activate: the agent proves it
 * could open the challenge (HMAC-SHA256 over its id keyed with the secret);
 * only then is the agent stored as active. A refused request stores nothing
 * (a wrong proof only drops the pending challenge).
 *
 * Hosts then submit a vTPM-CA key: a signing key inside the hardware TPM,
 * certified by the active AK (TPM2_Certify) over a fresh single-use nonce.
 * Every agent (host or guest) submits a payload key the same way: an
 * RSA-OAEP-SHA256 decryption key inside its TPM, so what is encrypted to it
 * can only be read there.
 *
 * Everything here is callable without HTTP (tests, benchmarks); api.c maps it
 * onto the REST API. Functions return 0 or a negative errno with kq_errmsg()
 * set and *code set to a machine-readable reason for the API's error body.
 */
#ifndef KQ_REGISTRAR_H
#define KQ_REGISTRAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <openssl/x509.h>

#include "db/db.h"
#include "json/json.h"

struct registrar_config {
	char *listen;
	uint16_t port;
	char *cert, *key;  /* TLS server certificate and key (PEM) */
	char *client_ca;   /* CA for admin client certificates (PEM) */
	char *database;
	char *ek_ca_dir;   /* trusted TPM vendor CAs: *.pem, *.crt, *.der */
	bool require_ek_cert;
	uint64_t challenge_ttl; /* seconds a challenge or nonce stays valid */
	uint64_t max_body;
	char *log_level;
	bool log_json;
};

struct registrar {
	struct registrar_config cfg;
	struct db *db;
	X509_STORE *ek_store; /* NULL when no ek_ca_dir: every EK certificate is refused */
};

#define REG_ID_MAX 36 /* a UUID in its canonical lowercase text form */
#define REG_HANDLE_LEN 16 /* names one pending challenge: only its requester knows it */
#define REG_MAX_PENDING_PER_ID 4 /* pending challenges (and nonces of each purpose) per agent id */
#define REG_MAX_PENDING 10000 /* pending challenges in all */

struct reg_enrol_req {
	char *id;
	char *kind;      /* "host" or "guest" */
	struct json_bytes ek_pub, ek_cert, ak_pub;
	char *contact;   /* how the verifier reaches the agent, e.g. https://10.0.0.5:8892 */
	char *vm_uuid;   /* guests: the VM they run in, as their vTPM EK certificate names it */
};

/*
 * Marks an agent revoked: it cannot enrol again, and a revoked host's vTPM-CA
 * no longer vouches for new guests. -ENOENT if unknown.
 */
int reg_revoke(struct registrar *rg, const char *id);

/* Opens the database (migrating it) and the EK trust store. */
int registrar_open(const struct registrar_config *cfg, struct registrar **ret);
void registrar_close(struct registrar *rg);

/*
 * Validates an enrolment and returns the challenge as a tpm2-tools credential
 * file (caller frees) and the handle that names it: several challenges may be
 * pending for an id (a few, bounded), so a stranger's request cannot replace
 * or consume the agent's own. -EAGAIN when too many are pending.
 */
int reg_enrol_begin(struct registrar *rg, const struct reg_enrol_req *req, uint8_t **ret_cred,
		    size_t *ret_len, uint8_t ret_handle[REG_HANDLE_LEN], const char **code);
/*
 * Checks the activation proof for the challenge named by handle (used up
 * either way); on success the agent is active (new, or with a new AK — which
 * also forgets the vTPM-CA and payload keys certified by the old one).
 */
int reg_enrol_activate(struct registrar *rg, const char *id, const uint8_t handle[REG_HANDLE_LEN],
		       const uint8_t *proof, size_t len, const char **code);
/*
 * A fresh single-use nonce for the host's vTPM-CA certification (valid for
 * challenge_ttl; at most REG_MAX_PENDING_PER_ID pending per agent, then
 * -EAGAIN too_many_pending). -ENOENT not_found, -EPERM not_a_host or revoked.
 */
int reg_ca_nonce(struct registrar *rg, const char *id, uint8_t ret_nonce[32], const char **code);
/*
 * Verifies TPM2_Certify of the vTPM-CA key by the host's active AK over the
 * nonce, and records it. A refusal after the nonce was found still uses it
 * up: -EPERM with stale_nonce, bad_ca_key, bad_certification (or -EINVAL
 * bad_request for an unreadable key or signature).
 */
int reg_ca_submit(struct registrar *rg, const char *id, const uint8_t *ca_pub, size_t ca_len,
		  const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
		  const char **code);
/* As reg_ca_nonce, for the payload key of any agent, host or guest. */
int reg_payload_nonce(struct registrar *rg, const char *id, uint8_t ret_nonce[32], const char **code);
/*
 * As reg_ca_submit, for the payload key: RSA of 2048 bits or more, fixedTPM,
 * fixedParent, sensitiveDataOrigin, decrypt, neither sign nor restricted,
 * scheme RSAES-OAEP with SHA-256 and no symmetric scheme; else -EPERM
 * bad_payload_key.
 */
int reg_payload_submit(struct registrar *rg, const char *id, const uint8_t *key_pub, size_t key_len,
		       const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
		       const char **code);

/* Admin: JSON views of one agent or all; delete. -ENOENT if unknown. */
int reg_agent_json(struct registrar *rg, const char *id, struct json_object **ret);
int reg_list_json(struct registrar *rg, struct json_object **ret);
int reg_delete(struct registrar *rg, const char *id);

/* Whether s is a UUID in canonical lowercase form (8-4-4-4-12 hex). Callers lowercase input first. */
bool reg_valid_id(const char *s);

#endif
