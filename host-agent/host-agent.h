/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-host-agent: owns a hypervisor's hardware TPM. This part enrols the
 * host with the registrar (EK + EK certificate, AK, ActivateCredential) and
 * has the TPM certify the host's vTPM-CA key and payload key.
 */
#ifndef KQ_HOST_AGENT_H
#define KQ_HOST_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "evidence/evidence.h"
#include "evidence/services.h"
#include "http/http.h"
#include "tpmdev/tpmdev.h"

struct host_agent_config {
	char *id;           /* UUID; empty: generated once and kept in state_dir/id */
	char *state_dir;
	char *tcti;
	char *ek_alg;       /* "rsa" (default) or "ecc" */
	uint64_t ak_handle, ca_key_handle, payload_key_handle;
	char *ak_handle_s, *ca_key_handle_s, *payload_key_handle_s; /* as configured: hex, e.g. 0x81010010 */
	char *contact;      /* URL the verifier uses to reach this agent */
	char *registrar_url;
	char *registrar_ca; /* CA of the registrar's TLS certificate */
	uint64_t timeout_ms;
	char *log_level;
	bool log_json;
	/* evidence endpoint (mTLS); off when cert is unset */
	char *listen;
	uint16_t port;
	char *cert, *key, *client_ca;
	char *uefi_log, *ima_log, *boot_id_path;
	struct services_config svc; /* [payload], [revocation] */
	uint64_t dq_window_ms; /* [deep-quote] window_ms: requests this close share one quote; 0: none do */
	/* local socket for the vTPM manager and swtpm_setup's cert tool; off when empty */
	char *vtpm_socket;
	char *vtpm_socket_uids; /* uids besides root allowed on it, "107, 108" */
};

/* The TPM serves one command sequence at a time: every user of it takes evidence_tpm_lock. */

/* Result of an enrolment, for logs and the state file. */
struct host_enrolment {
	char id[37];
	TPM2B_NAME ak_name, ca_name, payload_name;
	bool ek_cert;
};

/*
 * Signs cert (all fields set) with the vTPM-CA key at handle key, whose public
 * key is ca_pub, through TPM2_Sign; the result is verified with ca_pub.
 */
int host_ca_sign(struct tpmdev *tpm, TPM2_HANDLE key, EVP_PKEY *ca_pub, X509 *cert);

/* Checks id is a UUID and lowercases it in place; -EINVAL otherwise. */
int host_agent_valid_id(char *id);

struct host_vtpm;
struct host_server;

/*
 * Serves, with a client certificate required, on cfg's listen/port:
 * POST /v1/quote (lib/evidence: a quote by the AK over the verifier's nonce
 * and PCR selection, the UEFI event log and the IMA entries from an index
 * on; a request naming another agent_id than id gets 409 wrong_agent) and
 * POST /v1/deep-quote (docs/deep-quote.md), which vouches only for VMs that
 * vtpm's map has running here (vtpm NULL: the socket is off, and every leaf
 * is refused). cfg, tpm and vtpm must outlive the server. Caller stops it
 * with host_agent_serve_stop.
 */
int host_agent_serve(const struct host_agent_config *cfg, struct tpmdev *tpm, const char *id,
		     struct host_vtpm *vtpm, struct host_server **ret);
uint16_t host_agent_serve_port(const struct host_server *s);
/* Stops serving (waits for running requests) and frees s. NULL is fine. */
void host_agent_serve_stop(struct host_server *s);

/* The deep-quote endpoint (deepquote.c); ev and vtpm (may be NULL) must outlive it. */
struct host_deepquote;
int host_deepquote_new(const struct evidence_config *ev, struct host_vtpm *vtpm, unsigned window_ms,
		       struct host_deepquote **ret);
void host_deepquote_free(struct host_deepquote *dq);
void host_deepquote_handle(const struct http_request *req, struct http_response *resp, struct host_deepquote *dq);

/*
 * Serves the local socket of docs/vtpm.md on cfg->vtpm_socket: VM reports
 * from the vTPM manager (kept in state_dir/vms.db) and vTPM EK / platform
 * certificates signed by the vTPM-CA key, whose certificate is made on the
 * first start (state_dir/vtpm-ca.pem). Needs the host enrolled (the CA key
 * exists). Caller stops it with host_vtpm_stop.
 */
int host_vtpm_start(const struct host_agent_config *cfg, struct tpmdev *tpm, const char *host_id,
		    struct host_vtpm **ret);
void host_vtpm_stop(struct host_vtpm *v);

/*
 * The state of each VM in the map, read in one transaction: ret_states[i]
 * is "defined", "running", "stopped", "undefined", "migrating_in" or
 * "migrated_out" (static strings) as the vTPM manager last reported
 * uuids[i] (lowercase UUIDs), NULL if it never did or uuids[i] is NULL.
 * Errors from lib/db.
 */
int host_vtpm_vm_states(struct host_vtpm *v, const char *const *uuids, size_t n, const char **ret_states);

/*
 * A public key from swtpm_setup's --ek: the RSA modulus in hex (2048, 3072
 * or 4096 bits; e = 65537) or "x=HEX,y=HEX,id=secp256r1|secp384r1" (a point
 * on the curve). -EINVAL with the reason. Caller frees with EVP_PKEY_free.
 */
int host_vtpm_parse_ek(const char *ek, EVP_PKEY **ret);

/* Reads state_dir/id, or makes a random UUID and stores it (0600). */
int host_agent_id(const char *state_dir, char ret[37]);

/* Enrols with the registrar and submits the certified vTPM-CA key, then the payload key. */
int host_agent_enrol(const struct host_agent_config *cfg, struct tpmdev *tpm, struct host_enrolment *ret);

#endif
