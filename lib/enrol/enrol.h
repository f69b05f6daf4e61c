/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/enrol: an agent's side of the registrar's enrolment (docs/registrar.md),
 * shared by the host agent and the guest agent: the EK (and its certificate
 * from NV) and the AK from the TPM, POST /v1/agents, TPM2_ActivateCredential
 * of the registrar's challenge, and the proof; then keys in the TPM certified
 * by the AK over the registrar's nonces: every agent's payload key, and the
 * host's vTPM-CA key (host-agent/enrol.c).
 *
 * Errors follow lib/util: negative errno-style codes with kq_errmsg() set; a
 * refusal by the registrar is -EPERM (403) or -ENOENT (404) with its reason.
 */
#ifndef KQ_ENROL_H
#define KQ_ENROL_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "tpmdev/tpmdev.h"

struct enrol_config {
	const char *registrar_url; /* https://host:port */
	const char *registrar_ca;  /* CA of the registrar's TLS certificate */
	unsigned timeout_ms;       /* per request; 0 = lib/http's default */
	const char *id;            /* the agent's id, a lowercase UUID */
	const char *kind;          /* "host" or "guest" */
	const char *contact;       /* optional: where the verifier reaches the agent */
	const char *vm_uuid;       /* guests: the VM the agent runs in; NULL for hosts */
	enum tpmdev_key_alg alg;   /* EK and AK algorithm */
	TPM2_HANDLE ak_handle;     /* persistent handle of the AK */
};

struct enrol_result {
	TPM2B_NAME ak_name;
	bool ek_cert;              /* an EK certificate was found in NV and sent */
};

/* Enrols the TPM behind tpm as cfg says; the AK is created and persisted if absent. */
int enrol_agent(const struct enrol_config *cfg, struct tpmdev *tpm, struct enrol_result *ret);

/*
 * Has the AK at cfg->ak_handle certify the key at key_handle, whose public
 * area is key_pub, over a fresh nonce of the registrar's, and submits it:
 * POST /v1/agents/{id}{path}/nonce, TPM2_Certify, then POST
 * /v1/agents/{id}{path} with {pub_field, attest, signature} (base64). path is
 * "/vtpm-ca" (pub_field "ca_pub") or "/payload-key" ("key_pub"). Needs the
 * agent enrolled with that AK. Errors as enrol_post's, lib/tpmdev's, or
 * -EBADMSG for a nonce that is not 32 bytes.
 */
int enrol_certify_key(const struct enrol_config *cfg, struct tpmdev *tpm, TPM2_HANDLE key_handle,
		      const TPM2B_PUBLIC *key_pub, const char *path, const char *pub_field);

/*
 * The payload key at key_handle (tpmdev_payload_key: created and persisted
 * if absent), certified by the AK and recorded by the registrar with
 * enrol_certify_key. *ret_name (optional) is its name, set on success.
 */
int enrol_payload_key(const struct enrol_config *cfg, struct tpmdev *tpm, TPM2_HANDLE key_handle,
		      TPM2B_NAME *ret_name);

/*
 * POSTs body to the registrar at cfg->registrar_url + path. On a non-2xx
 * answer the error body's message is the error (-EPERM for 403, -ENOENT for
 * 404, -EPROTO otherwise). *ret is the answer (caller drops it).
 */
int enrol_post(const struct enrol_config *cfg, const char *path, struct json_object *body, struct json_object **ret);

/*
 * The agents' [tpm] key = s: a persistent handle in the owner range
 * (0x81000000-0x817fffff), 8 hex digits with an optional 0x ("0x81010010").
 * -EINVAL otherwise, kq_errmsg() naming key and s.
 */
int enrol_parse_handle(const char *key, const char *s, uint64_t *ret);

/* Reads state_dir/id, or makes a random (v4) UUID and stores it there (0600). */
int enrol_agent_id(const char *state_dir, char ret[37]);

/* Adds data as a base64 string member; -ENOMEM. */
int enrol_add_b64(struct json_object *o, const char *key, const void *data, size_t len);
/* Reads a base64 member of the registrar's answer, at most max bytes decoded. */
int enrol_get_b64(struct json_object *o, const char *key, size_t max, uint8_t **ret, size_t *ret_len);
/* Marshals a TPM2B_PUBLIC. */
int enrol_marshal_public(const TPM2B_PUBLIC *p, uint8_t *buf, size_t cap, size_t *ret_len);

#endif
