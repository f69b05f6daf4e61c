/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host agent's evidence endpoint (mTLS): POST /v1/quote with
 *   {"nonce": hex, "pcrs": {"sha256": [0, 1, ...], ...}, "ima_offset": N, "agent_id"?: id}
 * answers
 *   {"quote": {"message", "signature", "pcrs"}   (TPMS_ATTEST, TPMT_SIGNATURE,
 *                                                  tpm2-tools PCR file; base64)
 *    "ak_name": hex, "boot_id": "...",
 *    "uefi_log": base64 or null,
 *    "ima": {"offset": N, "entries": M, "format": "ascii"|"binary", "data": base64} or null}
 * The IMA part holds the list's entries from index N on, byte for byte, so a
 * verifier replays only what is new. The TPM is used by one request at a time.
 */
#include "host-agent.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <tss2/tss2_mu.h>

#include "ima/ima.h"
#include "json/json.h"
#include "log/log.h"
#include "tpm/tpm.h"
#include "util/util.h"

#define MOD "evidence"
#define LOG_MAX (128u << 20)

pthread_mutex_t host_tpm_lock = PTHREAD_MUTEX_INITIALIZER;

struct evidence_ctx {
	const struct host_agent_config *cfg;
	struct tpmdev *tpm;
	char id[37];
};

struct quote_req {
	struct json_bytes nonce;
	struct json_object *pcrs;
	uint64_t ima_offset;
	char *agent_id;
};

static int parse_selection(struct json_object *o, TPML_PCR_SELECTION *sel)
{
	memset(sel, 0, sizeof(*sel));
	if (!json_object_is_type(o, json_type_object))
		return kq_err(-EINVAL, "field 'pcrs': must be an object of bank: [PCR numbers]");
	json_object_object_foreach(o, bank, list) {
		uint16_t alg = kq_hash_from_name(bank);
		TPMS_PCR_SELECTION *s;

		if (!alg)
			return kq_err(-EINVAL, "field 'pcrs': unknown bank '%.16s'", bank);
		if (sel->count >= TPM_MAX_BANKS)
			return kq_err(-EINVAL, "field 'pcrs': too many banks");
		for (uint32_t i = 0; i < sel->count; i++)
			if (sel->pcrSelections[i].hash == alg)
				return kq_err(-EINVAL, "field 'pcrs': bank %s twice", bank);
		if (!json_object_is_type(list, json_type_array) || json_object_array_length(list) == 0 ||
		    json_object_array_length(list) > TPM_NUM_PCRS)
			return kq_err(-EINVAL, "field 'pcrs': %s must list 1 to 24 PCRs", bank);
		s = &sel->pcrSelections[sel->count++];
		s->hash = alg;
		s->sizeofSelect = 3;
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			struct json_object *v = json_object_array_get_idx(list, i);
			int64_t p;

			if (!json_object_is_type(v, json_type_int) || (p = json_object_get_int64(v)) < 0 ||
			    p >= TPM_NUM_PCRS)
				return kq_err(-EINVAL, "field 'pcrs': %s: PCR numbers are 0 to 23", bank);
			s->pcrSelect[p / 8] |= (uint8_t)(1u << (p % 8));
		}
	}
	if (sel->count == 0)
		return kq_err(-EINVAL, "field 'pcrs': no PCRs selected");
	return 0;
}

/* A readable log as base64, or NULL (logged) if the file is missing. */
static struct json_object *log_b64(const char *path, const char *what)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;

	if (!path || !path[0])
		return NULL;
	if (kq_read_file(path, LOG_MAX, &buf, &len) < 0) {
		log_warn(MOD, "%s: %s", what, kq_errmsg());
		return NULL;
	}
	return json_new_base64(buf, len);
}

static struct json_object *ima_slice(const char *path, uint64_t offset, int *ret_err)
{
	_cleanup_free_ uint8_t *buf = NULL;
	struct ima_reader *rd = NULL;
	const struct ima_entry *e;
	size_t len, start;
	uint64_t n = 0;
	struct json_object *o;
	bool binary;
	int r;

	*ret_err = 0;
	if (!path || !path[0])
		return NULL;
	if (kq_read_file(path, LOG_MAX, &buf, &len) < 0) {
		log_warn(MOD, "IMA list: %s", kq_errmsg());
		return NULL;
	}
	start = len;
	if ((r = ima_reader_new(buf, len, NULL, &rd)) < 0) {
		*ret_err = r;
		return NULL;
	}
	while ((r = ima_reader_next(rd, &e)) == 1) {
		if (n == offset)
			start = e->offset;
		n++;
	}
	/* the reader's own decision, so the answer never disagrees with how it parsed */
	binary = ima_reader_format(rd) == IMA_FORMAT_BINARY;
	ima_reader_free(rd);
	if (r < 0) {
		log_warn(MOD, "the IMA list does not parse at entry %llu: %s", (unsigned long long)n, kq_errmsg());
		*ret_err = r;
		return NULL;
	}
	if (offset > n) {
		*ret_err = kq_err(-ERANGE, "ima_offset %llu is beyond the list's %llu entries (a reboot?)",
				  (unsigned long long)offset, (unsigned long long)n);
		return NULL;
	}
	o = json_object_new_object();
	json_object_object_add(o, "offset", json_object_new_int64((int64_t)offset));
	json_object_object_add(o, "entries", json_object_new_int64((int64_t)(n - offset)));
	json_object_object_add(o, "format", json_object_new_string(binary ? "binary" : "ascii"));
	json_object_object_add(o, "data", json_new_base64(buf + start, len - start));
	return o;
}

static void handle_quote(const struct http_request *req, struct http_response *resp, void *ud)
{
	static const struct json_field fields[] = {
		{ "nonce", JSON_HEX, true, 64, offsetof(struct quote_req, nonce) },
		{ "pcrs", JSON_OBJECT, true, 0, offsetof(struct quote_req, pcrs) },
		{ "ima_offset", JSON_UINT64, false, 0, offsetof(struct quote_req, ima_offset) },
		{ "agent_id", JSON_STRING, false, 64, offsetof(struct quote_req, agent_id) },
		{ 0 },
	};
	struct evidence_ctx *c = ud;
	struct quote_req qr = { 0 };
	struct json_object *body = NULL, *out = NULL, *q, *ima;
	TPML_PCR_SELECTION sel;
	_cleanup_free_ uint8_t *attest = NULL, *pcrfile = NULL;
	uint8_t sigbuf[sizeof(TPMT_SIGNATURE)];
	size_t attest_len = 0, pcr_len = 0, sig_len = 0;
	struct tpm_pcrs pcrs;
	TPMT_SIGNATURE sig;
	_cleanup_free_ uint8_t *boot = NULL;
	size_t boot_len = 0;
	int r, ima_err;

	if (json_parse_body(req->body, req->body_len, 16 * 1024, 4, &body) < 0) {
		http_error(resp, 400, "bad_json", "%s", kq_errmsg());
		return;
	}
	r = json_dispatch(body, fields, &qr, false);
	json_object_put(body);
	if (r < 0 || (r = parse_selection(qr.pcrs, &sel)) < 0) {
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		goto out;
	}
	if (qr.nonce.len == 0) {
		http_error(resp, 400, "bad_request", "field 'nonce': must not be empty");
		goto out;
	}
	/* a verifier with a stale address book must not attest one host as another */
	if (qr.agent_id && strcasecmp(qr.agent_id, c->id) != 0) {
		http_error(resp, 409, "wrong_agent", "this is agent %s, not the one asked for", c->id);
		goto out;
	}
	pthread_mutex_lock(&host_tpm_lock);
	r = tpmdev_quote(c->tpm, (TPM2_HANDLE)c->cfg->ak_handle, &sel, qr.nonce.data, qr.nonce.len, &attest,
			 &attest_len, &sig, &pcrs);
	pthread_mutex_unlock(&host_tpm_lock);
	if (r < 0) {
		log_error(MOD, "quote failed: %s", kq_errmsg());
		http_error(resp, r == -ENOENT || r == -EINVAL ? 400 : 500, r == -ENOENT || r == -EINVAL ? "bad_request"
			   : "tpm_error", "%s", r == -ENOENT || r == -EINVAL ? kq_errmsg() : "the TPM could not quote");
		goto out;
	}
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, sigbuf, sizeof(sigbuf), &sig_len) != TSS2_RC_SUCCESS ||
	    tpm_pcrfile_write(&pcrs, &pcrfile, &pcr_len) < 0) {
		http_error(resp, 500, "internal", "internal error");
		goto out;
	}
	ima = ima_slice(c->cfg->ima_log, qr.ima_offset, &ima_err);
	if (ima_err == -ERANGE) {
		http_error(resp, 409, "ima_offset_ahead", "%s", kq_errmsg());
		goto out;
	}
	out = json_object_new_object();
	q = json_object_new_object();
	json_object_object_add(q, "message", json_new_base64(attest, attest_len));
	json_object_object_add(q, "signature", json_new_base64(sigbuf, sig_len));
	json_object_object_add(q, "pcrs", json_new_base64(pcrfile, pcr_len));
	json_object_object_add(out, "quote", q);
	if (c->cfg->boot_id_path && kq_read_file(c->cfg->boot_id_path, 256, &boot, &boot_len) == 0) {
		while (boot_len && (boot[boot_len - 1] == '\n' || boot[boot_len - 1] == ' '))
			boot[--boot_len] = '\0';
		json_object_object_add(out, "boot_id", json_object_new_string((char *)boot));
	} else {
		json_object_object_add(out, "boot_id", NULL);
	}
	json_object_object_add(out, "uefi_log", log_b64(c->cfg->uefi_log, "UEFI event log"));
	json_object_object_add(out, "ima", ima);
	resp->status = 200;
	resp->body = TAKE_PTR(out);
out:
	json_dispatch_free(fields, &qr);
}

static const struct http_route routes[] = {
	{ "POST", "/v1/quote", true, handle_quote },
};

int host_agent_serve(const struct host_agent_config *cfg, struct tpmdev *tpm, const char *id,
		     struct http_server **ret)
{
	static struct evidence_ctx ctx;

	snprintf(ctx.id, sizeof(ctx.id), "%s", id);
	ctx.cfg = cfg;
	ctx.tpm = tpm;
	return http_server_start(&(struct http_server_config){
					 .bind_addr = cfg->listen, .port = cfg->port, .cert_file = cfg->cert,
					 .key_file = cfg->key, .client_ca_file = cfg->client_ca,
					 .max_body = 64 * 1024, .threads = 2 },
				 routes, ARRAY_SIZE(routes), &ctx, ret);
}
