/* SPDX-License-Identifier: Apache-2.0 */
#include "enrol.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <tss2/tss2_mu.h>

#include "http/http.h"
#include "json/json.h"
#include "log/log.h"
#include "tpm/tpm.h"
#include "util/util.h"

int enrol_agent_id(const char *state_dir, char ret[37])
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	uint8_t u[16];
	char id[37];
	int r;

	if (asprintf(&path, "%s/id", state_dir) < 0) {
		path = NULL;
		return kq_err(-ENOMEM, "out of memory");
	}
	r = kq_read_file(path, 64, &buf, &len);
	if (r == 0) {
		while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
			len--;
		if (len != 36)
			return kq_err(-EINVAL, "%s does not hold a UUID", path);
		memcpy(id, buf, 36);
		id[36] = '\0';
		if (!kq_uuid_normalize(id, id))
			return kq_err(-EINVAL, "%s does not hold a UUID", path);
		memcpy(ret, id, 37);
		return 0;
	}
	if (r != -ENOENT)
		return r;
	if (RAND_bytes(u, sizeof(u)) != 1)
		return kq_err(-EIO, "no random bytes");
	u[6] = (u[6] & 0x0f) | 0x40; /* version 4 */
	u[8] = (u[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	snprintf(id, sizeof(id), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return kq_err(-errno, "%s: %s", state_dir, strerror(errno));
	r = kq_write_file(path, id, 36);
	if (r < 0)
		return r;
	memcpy(ret, id, 37);
	return 0;
}

int enrol_parse_handle(const char *key, const char *s, uint64_t *ret)
{
	uint8_t b[4];
	size_t n;

	if (kq_hex_decode(s, b, sizeof(b), &n) < 0 || n != 4 || b[0] != 0x81 || b[1] > 0x7f)
		return kq_err(-EINVAL, "[tpm] %s = %.20s is not a persistent handle 0x81000000-0x817fffff", key, s);
	*ret = (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 | b[3];
	return 0;
}

int enrol_add_b64(struct json_object *o, const char *key, const void *data, size_t len)
{
	_cleanup_free_ char *s = NULL;
	int r = kq_base64_encode(data, len, &s);

	if (r < 0)
		return r;
	json_object_object_add(o, key, json_object_new_string(s));
	return 0;
}

int enrol_marshal_public(const TPM2B_PUBLIC *p, uint8_t *buf, size_t cap, size_t *ret_len)
{
	size_t off = 0;

	if (Tss2_MU_TPM2B_PUBLIC_Marshal(p, buf, cap, &off) != TSS2_RC_SUCCESS)
		return kq_err(-EINVAL, "cannot marshal a public area");
	*ret_len = off;
	return 0;
}

int enrol_post(const struct enrol_config *cfg, const char *path, struct json_object *body, struct json_object **ret)
{
	struct http_client_config cc = { .ca_file = cfg->registrar_ca, .timeout_ms = cfg->timeout_ms,
					 .max_response = 1u << 20 };
	_cleanup_free_ char *url = NULL;
	struct json_object *resp = NULL, *err, *msg, *code;
	long status = 0;
	int r;

	if (asprintf(&url, "%s%s", cfg->registrar_url, path) < 0) {
		url = NULL;
		return kq_err(-ENOMEM, "out of memory");
	}
	r = http_request_json(&cc, "POST", url, body, &status, &resp);
	if (r < 0)
		return kq_err_ctx(r, "registrar %s: ", cfg->registrar_url);
	if (status < 200 || status > 299) {
		r = kq_err(status == 403 ? -EPERM : status == 404 ? -ENOENT : -EPROTO,
			   "registrar answered %ld: %s (%s)", status,
			   resp && json_object_object_get_ex(resp, "error", &err) &&
				   json_object_object_get_ex(err, "message", &msg)
				   ? json_object_get_string(msg) : "no reason given",
			   resp && json_object_object_get_ex(resp, "error", &err) &&
				   json_object_object_get_ex(err, "code", &code)
				   ? json_object_get_string(code) : "?");
		json_object_put(resp);
		return r;
	}
	*ret = resp;
	return 0;
}

int enrol_get_b64(struct json_object *o, const char *key, size_t max, uint8_t **ret, size_t *ret_len)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return kq_err(-EBADMSG, "the registrar's answer has no '%s'", key);
	return kq_base64_decode(json_object_get_string(v), max, ret, ret_len);
}

int enrol_agent(const struct enrol_config *cfg, struct tpmdev *tpm, struct enrol_result *ret)
{
	struct enrol_result e = { 0 };
	TPM2B_PUBLIC ek, ak;
	uint8_t ek_buf[sizeof(TPM2B_PUBLIC)], ak_buf[sizeof(TPM2B_PUBLIC)], proof[32];
	size_t ek_len = 0, ak_len = 0, cert_len = 0, cred_len = 0, handle_len = 0;
	_cleanup_free_ uint8_t *cert = NULL, *cred = NULL, *handle = NULL;
	_cleanup_free_ char *path = NULL;
	struct json_object *req = NULL, *resp = NULL, *v;
	TPM2B_ID_OBJECT blob;
	TPM2B_ENCRYPTED_SECRET seed;
	TPM2B_DIGEST secret = { 0 };
	int r;

	if (!cfg->id || !cfg->kind || !cfg->registrar_url || !cfg->registrar_ca)
		return kq_err(-EINVAL, "enrol_agent: id, kind and the registrar are required");

	/* keys: the EK and AK persist in the TPM, so a restart reuses them */
	if ((r = tpmdev_ek(tpm, cfg->alg, &ek)) < 0 ||
	    (r = enrol_marshal_public(&ek, ek_buf, sizeof(ek_buf), &ek_len)) < 0)
		return r;
	r = tpmdev_ek_cert(tpm, cfg->alg, &cert, &cert_len);
	if (r < 0 && r != -ENOENT)
		return r;
	e.ek_cert = r == 0;
	if (!e.ek_cert)
		log_warn("enrol", "the TPM holds no EK certificate; the registrar may refuse it");
	if ((r = tpmdev_ak(tpm, cfg->alg, cfg->ak_handle, &ak, &e.ak_name)) < 0 ||
	    (r = enrol_marshal_public(&ak, ak_buf, sizeof(ak_buf), &ak_len)) < 0)
		return r;

	/* 1. begin: the registrar answers with a MakeCredential challenge */
	req = json_object_new_object();
	json_object_object_add(req, "id", json_object_new_string(cfg->id));
	json_object_object_add(req, "kind", json_object_new_string(cfg->kind));
	if ((r = enrol_add_b64(req, "ek_pub", ek_buf, ek_len)) < 0 ||
	    (r = enrol_add_b64(req, "ak_pub", ak_buf, ak_len)) < 0 ||
	    (e.ek_cert && (r = enrol_add_b64(req, "ek_cert", cert, cert_len)) < 0))
		goto out;
	if (cfg->contact && cfg->contact[0])
		json_object_object_add(req, "contact", json_object_new_string(cfg->contact));
	if (cfg->vm_uuid)
		json_object_object_add(req, "vm_uuid", json_object_new_string(cfg->vm_uuid));
	if ((r = enrol_post(cfg, "/v1/agents", req, &resp)) < 0)
		goto out;
	if ((r = enrol_get_b64(resp, "credential", 4096, &cred, &cred_len)) < 0 ||
	    (r = tpm_credfile_parse(cred, cred_len, &blob, &seed)) < 0)
		goto out;
	if (!json_object_object_get_ex(resp, "handle", &v) || !json_object_is_type(v, json_type_string) ||
	    !(handle = malloc(32)) || kq_hex_decode(json_object_get_string(v), handle, 32, &handle_len) < 0 ||
	    handle_len != 16) {
		r = kq_err(-EBADMSG, "the registrar's answer has no valid 'handle'");
		goto out;
	}
	json_object_put(resp);
	resp = NULL;
	json_object_put(req);
	req = NULL;

	/* 2. activate: only this TPM can open it, and only for this AK */
	r = tpmdev_activate_credential(tpm, cfg->alg, cfg->ak_handle, &blob, &seed, &secret);
	if (r < 0)
		goto out;
	r = tpm_activation_proof(secret.buffer, secret.size, cfg->id, proof);
	OPENSSL_cleanse(&secret, sizeof(secret));
	if (r < 0)
		goto out;
	{
		_cleanup_free_ char *hex = kq_hex_dup(handle, handle_len);

		if (!hex) {
			r = kq_err(-ENOMEM, "out of memory");
			goto out;
		}
		req = json_object_new_object();
		json_object_object_add(req, "handle", json_object_new_string(hex));
	}
	if (asprintf(&path, "/v1/agents/%s/activate", cfg->id) < 0) {
		path = NULL;
		r = kq_err(-ENOMEM, "out of memory");
		goto out;
	}
	r = enrol_add_b64(req, "proof", proof, sizeof(proof));
	OPENSSL_cleanse(proof, sizeof(proof));
	if (r < 0 || (r = enrol_post(cfg, path, req, &resp)) < 0)
		goto out;
	log_info("enrol", "%s %s is active at the registrar", cfg->kind, cfg->id);
	*ret = e;
	r = 0;
out:
	json_object_put(req);
	json_object_put(resp);
	return r;
}

int enrol_certify_key(const struct enrol_config *cfg, struct tpmdev *tpm, TPM2_HANDLE key_handle,
		      const TPM2B_PUBLIC *key_pub, const char *path, const char *pub_field)
{
	uint8_t pub_buf[sizeof(TPM2B_PUBLIC)], sig_buf[sizeof(TPMT_SIGNATURE)];
	size_t pub_len = 0, sig_len = 0, nonce_len = 0, attest_len = 0;
	_cleanup_free_ uint8_t *nonce = NULL, *attest = NULL;
	_cleanup_free_ char *url_path = NULL;
	struct json_object *req = NULL, *resp = NULL;
	TPMT_SIGNATURE sig;
	int r;

	if (!cfg->id || !path || !pub_field)
		return kq_err(-EINVAL, "enrol_certify_key: id, path and field are required");
	if ((r = enrol_marshal_public(key_pub, pub_buf, sizeof(pub_buf), &pub_len)) < 0)
		return r;

	/* a fresh nonce, so the certification cannot be replayed */
	if (asprintf(&url_path, "/v1/agents/%s%s/nonce", cfg->id, path) < 0) {
		url_path = NULL;
		return kq_err(-ENOMEM, "out of memory");
	}
	req = json_object_new_object();
	if ((r = enrol_post(cfg, url_path, req, &resp)) < 0 ||
	    (r = enrol_get_b64(resp, "nonce", 64, &nonce, &nonce_len)) < 0)
		goto out;
	if (nonce_len != 32) {
		r = kq_err(-EBADMSG, "the registrar's nonce is %zu bytes, not 32", nonce_len);
		goto out;
	}
	json_object_put(resp);
	resp = NULL;
	json_object_put(req);
	req = NULL;

	/* TPM2_Certify by the AK over it, then the key, the attestation and the signature */
	r = tpmdev_certify(tpm, key_handle, cfg->ak_handle, nonce, nonce_len, &attest, &attest_len, &sig);
	if (r < 0)
		goto out;
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, sig_buf, sizeof(sig_buf), &sig_len) != TSS2_RC_SUCCESS) {
		r = kq_err(-EINVAL, "cannot marshal the signature");
		goto out;
	}
	url_path[strlen(url_path) - strlen("/nonce")] = '\0';
	req = json_object_new_object();
	if ((r = enrol_add_b64(req, pub_field, pub_buf, pub_len)) < 0 ||
	    (r = enrol_add_b64(req, "attest", attest, attest_len)) < 0 ||
	    (r = enrol_add_b64(req, "signature", sig_buf, sig_len)) < 0 ||
	    (r = enrol_post(cfg, url_path, req, &resp)) < 0)
		goto out;
	r = 0;
out:
	json_object_put(req);
	json_object_put(resp);
	return r;
}

int enrol_payload_key(const struct enrol_config *cfg, struct tpmdev *tpm, TPM2_HANDLE key_handle, TPM2B_NAME *ret_name)
{
	TPM2B_PUBLIC pub;
	TPM2B_NAME name;
	int r;

	if ((r = tpmdev_payload_key(tpm, key_handle, &pub, &name)) < 0 ||
	    (r = enrol_certify_key(cfg, tpm, key_handle, &pub, "/payload-key", "key_pub")) < 0)
		return r;
	if (ret_name)
		*ret_name = name;
	return 0;
}
