/* SPDX-License-Identifier: Apache-2.0 */
/* The host's enrolment: lib/enrol's steps, then the vTPM-CA key certified by the AK. */
#include "host-agent.h"

#include <stdio.h>
#include <string.h>

#include <tss2/tss2_mu.h>

#include "enrol/enrol.h"
#include "json/json.h"
#include "log/log.h"
#include "tpm/tpm.h"
#include "util/util.h"

#define MOD "enrol"

int host_agent_valid_id(char *id)
{
	if (!kq_uuid_normalize(id, id))
		return kq_err(-EINVAL, "the agent id '%.40s' is not a UUID", id);
	return 0;
}

int host_agent_id(const char *state_dir, char ret[37])
{
	return enrol_agent_id(state_dir, ret);
}

int host_agent_enrol(const struct host_agent_config *cfg, struct tpmdev *tpm, struct host_enrolment *ret)
{
	enum tpmdev_key_alg alg = cfg->ek_alg && strcmp(cfg->ek_alg, "ecc") == 0 ? TPMDEV_ECC_P256 : TPMDEV_RSA2048;
	struct host_enrolment e = { 0 };
	struct enrol_config ec = {
		.registrar_url = cfg->registrar_url, .registrar_ca = cfg->registrar_ca,
		.timeout_ms = (unsigned)cfg->timeout_ms, .id = e.id, .kind = "host", .contact = cfg->contact,
		.alg = alg, .ak_handle = (TPM2_HANDLE)cfg->ak_handle,
	};
	struct enrol_result er;
	TPM2B_PUBLIC ca;
	uint8_t ca_buf[sizeof(TPM2B_PUBLIC)], sig_buf[sizeof(TPMT_SIGNATURE)];
	size_t ca_len = 0, sig_len = 0, nonce_len = 0, attest_len = 0;
	_cleanup_free_ uint8_t *nonce = NULL, *attest = NULL;
	_cleanup_free_ char *path = NULL;
	struct json_object *req = NULL, *resp = NULL;
	TPMT_SIGNATURE sig;
	int r;

	if (cfg->id && cfg->id[0]) {
		if (strlen(cfg->id) != 36)
			return kq_err(-EINVAL, "[agent] id '%.40s' is not a UUID", cfg->id);
		memcpy(e.id, cfg->id, 37);
		if ((r = host_agent_valid_id(e.id)) < 0)
			return r;
	} else if ((r = host_agent_id(cfg->state_dir, e.id)) < 0) {
		return r;
	}

	/* 1-2. EK, AK, MakeCredential/ActivateCredential */
	if ((r = enrol_agent(&ec, tpm, &er)) < 0)
		return r;
	e.ak_name = er.ak_name;
	e.ek_cert = er.ek_cert;

	/* 3. the vTPM-CA key, certified by the AK over the registrar's nonce */
	if ((r = tpmdev_ca_key(tpm, alg, (TPM2_HANDLE)cfg->ca_key_handle, &ca, &e.ca_name)) < 0 ||
	    (r = enrol_marshal_public(&ca, ca_buf, sizeof(ca_buf), &ca_len)) < 0)
		goto out;
	if (asprintf(&path, "/v1/agents/%s/vtpm-ca/nonce", e.id) < 0) {
		path = NULL;
		r = kq_err(-ENOMEM, "out of memory");
		goto out;
	}
	req = json_object_new_object();
	if ((r = enrol_post(&ec, path, req, &resp)) < 0 || (r = enrol_get_b64(resp, "nonce", 64, &nonce, &nonce_len)) < 0)
		goto out;
	if (nonce_len != 32) {
		r = kq_err(-EBADMSG, "the registrar's nonce is %zu bytes, not 32", nonce_len);
		goto out;
	}
	json_object_put(resp);
	resp = NULL;
	json_object_put(req);
	req = NULL;
	r = tpmdev_certify(tpm, (TPM2_HANDLE)cfg->ca_key_handle, (TPM2_HANDLE)cfg->ak_handle, nonce, nonce_len,
			   &attest, &attest_len, &sig);
	if (r < 0)
		goto out;
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, sig_buf, sizeof(sig_buf), &sig_len) != TSS2_RC_SUCCESS) {
		r = kq_err(-EINVAL, "cannot marshal the signature");
		goto out;
	}
	free(path);
	if (asprintf(&path, "/v1/agents/%s/vtpm-ca", e.id) < 0) {
		path = NULL;
		r = kq_err(-ENOMEM, "out of memory");
		goto out;
	}
	req = json_object_new_object();
	if ((r = enrol_add_b64(req, "ca_pub", ca_buf, ca_len)) < 0 ||
	    (r = enrol_add_b64(req, "attest", attest, attest_len)) < 0 ||
	    (r = enrol_add_b64(req, "signature", sig_buf, sig_len)) < 0 || (r = enrol_post(&ec, path, req, &resp)) < 0)
		goto out;
	log_info(MOD, "vTPM CA key of host %s recorded by the registrar", e.id);
	*ret = e;
	r = 0;
out:
	json_object_put(req);
	json_object_put(resp);
	return r;
}
