/* SPDX-License-Identifier: Apache-2.0 */
/* The host's enrolment: lib/enrol's steps, then the vTPM-CA and payload keys certified by the AK. */
#include "host-agent.h"

#include <stdio.h>
#include <string.h>

#include "enrol/enrol.h"
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
	    (r = enrol_certify_key(&ec, tpm, (TPM2_HANDLE)cfg->ca_key_handle, &ca, "/vtpm-ca", "ca_pub")) < 0)
		return kq_err_ctx(r, "vTPM-CA key: ");
	log_info(MOD, "vTPM CA key of host %s recorded by the registrar", e.id);

	/* 4. the payload key, the same way */
	if ((r = enrol_payload_key(&ec, tpm, (TPM2_HANDLE)cfg->payload_key_handle, &e.payload_name)) < 0)
		return kq_err_ctx(r, "payload key: ");
	*ret = e;
	return 0;
}
