/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-host-agent: owns a hypervisor's hardware TPM. This part enrols the
 * host with the registrar (EK + EK certificate, AK, ActivateCredential) and
 * has the TPM certify the host's vTPM-CA key.
 */
#ifndef KQ_HOST_AGENT_H
#define KQ_HOST_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "http/http.h"
#include "tpmdev/tpmdev.h"

struct host_agent_config {
	char *id;           /* UUID; empty: generated once and kept in state_dir/id */
	char *state_dir;
	char *tcti;
	char *ek_alg;       /* "rsa" (default) or "ecc" */
	uint64_t ak_handle, ca_key_handle;
	char *ak_handle_s, *ca_key_handle_s; /* as configured: hex, e.g. 0x81010010 */
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
	/* local socket for the vTPM manager and swtpm_setup's cert tool; off when empty */
	char *vtpm_socket;
	char *vtpm_socket_uids; /* uids besides root allowed on it, "107, 108" */
};

/* The TPM serves one command sequence at a time: every user of it takes this lock. */
extern pthread_mutex_t host_tpm_lock;

/* Result of an enrolment, for logs and the state file. */
struct host_enrolment {
	char id[37];
	TPM2B_NAME ak_name, ca_name;
	bool ek_cert;
};

/*
 * Signs cert (all fields set) with the vTPM-CA key at handle key, whose public
 * key is ca_pub, through TPM2_Sign; the result is verified with ca_pub.
 */
int host_ca_sign(struct tpmdev *tpm, TPM2_HANDLE key, EVP_PKEY *ca_pub, X509 *cert);

/* Checks id is a UUID and lowercases it in place; -EINVAL otherwise. */
int host_agent_valid_id(char *id);

/*
 * Serves POST /v1/quote (client certificate required) on cfg's listen/port:
 * a quote by the AK over the verifier's nonce and PCR selection, the UEFI
 * event log and the IMA entries from an index on. A request naming another
 * agent_id than id gets 409 wrong_agent. Caller stops the server.
 */
int host_agent_serve(const struct host_agent_config *cfg, struct tpmdev *tpm, const char *id,
		     struct http_server **ret);

struct host_vtpm;

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
 * A public key from swtpm_setup's --ek: the RSA modulus in hex (2048, 3072
 * or 4096 bits; e = 65537) or "x=HEX,y=HEX,id=secp256r1|secp384r1" (a point
 * on the curve). -EINVAL with the reason. Caller frees with EVP_PKEY_free.
 */
int host_vtpm_parse_ek(const char *ek, EVP_PKEY **ret);

/* Reads state_dir/id, or makes a random UUID and stores it (0600). */
int host_agent_id(const char *state_dir, char ret[37]);

/* Enrols with the registrar and submits the certified vTPM-CA key. */
int host_agent_enrol(const struct host_agent_config *cfg, struct tpmdev *tpm, struct host_enrolment *ret);

#endif
