/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agents' evidence endpoint (see evidence.h): request parsing, the quote
 * under the TPM lock, the logs and the IMA slice from an offset on.
 */
#include "evidence/evidence.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <tss2/tss2_mu.h>

#include "ima/ima.h"
#include "log/log.h"
#include "tpm/tpm.h"
#include "util/util.h"

#define MOD "evidence"

pthread_mutex_t evidence_tpm_lock = PTHREAD_MUTEX_INITIALIZER;

struct common_req {
	struct json_bytes nonce;
	struct json_object *pcrs;
	uint64_t ima_offset;
	char *agent_id;
};

static const struct json_field common_fields[] = {
	{ "nonce", JSON_HEX, true, EVIDENCE_MAX_NONCE, offsetof(struct common_req, nonce) },
	{ "pcrs", JSON_OBJECT, true, 0, offsetof(struct common_req, pcrs) },
	{ "ima_offset", JSON_UINT64, false, 0, offsetof(struct common_req, ima_offset) },
	{ "agent_id", JSON_STRING, false, 64, offsetof(struct common_req, agent_id) },
	{ 0 },
};

int evidence_parse_selection(struct json_object *o, TPML_PCR_SELECTION *sel)
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

static bool in_table(const struct json_field *t, const char *name)
{
	for (; t && t->name; t++)
		if (strcmp(t->name, name) == 0)
			return true;
	return false;
}

/* json_dispatch over two tables: keys in neither are refused, as json_dispatch would. */
static int dispatch2(struct json_object *body, struct common_req *c, const struct json_field *extra, void *extra_target)
{
	int r;

	if (!json_object_is_type(body, json_type_object))
		return kq_err(-EINVAL, "expected a JSON object");
	json_object_object_foreach(body, key, val) {
		(void)val;
		if (!in_table(common_fields, key) && !in_table(extra, key))
			return kq_err(-EINVAL, "unknown field '%.40s'", key);
	}
	if ((r = json_dispatch(body, common_fields, c, true)) < 0)
		return r;
	if (extra && (r = json_dispatch(body, extra, extra_target, true)) < 0) {
		json_dispatch_free(common_fields, c);
		return r;
	}
	return 0;
}

int evidence_request_read(const struct evidence_config *cfg, const struct http_request *req, size_t max_len,
			  size_t max_depth, const struct json_field *extra, void *extra_target,
			  struct evidence_request *ret, struct http_response *resp)
{
	struct common_req c = { 0 };
	struct json_object *body = NULL;
	TPML_PCR_SELECTION sel;
	int r;

	/* a deep quote's leaves are one object each: its request may hold up to 65 536 */
	if ((r = json_parse_body_containers(req->body, req->body_len, max_len, max_depth,
					    extra ? 65536 + 64 : JSON_MAX_CONTAINERS, &body)) < 0) {
		http_error(resp, 400, "bad_json", "%s", kq_errmsg());
		return r;
	}
	r = dispatch2(body, &c, extra, extra_target);
	json_object_put(body);
	if (r < 0) {
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		return r;
	}
	if ((r = evidence_parse_selection(c.pcrs, &sel)) < 0) {
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		goto fail;
	}
	if (c.nonce.len == 0) {
		r = -EINVAL;
		http_error(resp, 400, "bad_request", "field 'nonce': must not be empty");
		goto fail;
	}
	/* a verifier with a stale address book must not attest one agent as another */
	if (c.agent_id && strcasecmp(c.agent_id, cfg->agent_id) != 0) {
		r = -EADDRNOTAVAIL;
		http_error(resp, 409, "wrong_agent", "this is agent %s, not the one asked for", cfg->agent_id);
		goto fail;
	}
	memcpy(ret->nonce, c.nonce.data, c.nonce.len);
	ret->nonce_len = c.nonce.len;
	ret->sel = sel;
	ret->ima_offset = c.ima_offset;
	json_dispatch_free(common_fields, &c);
	return 0;
fail:
	json_dispatch_free(common_fields, &c);
	if (extra)
		json_dispatch_free(extra, extra_target);
	return r;
}

void evidence_quote_clear(struct evidence_quote *q)
{
	if (!q)
		return;
	free(q->attest);
	free(q->pcrs);
	memset(q, 0, sizeof(*q));
}

int evidence_quote(const struct evidence_config *cfg, const TPML_PCR_SELECTION *sel, const uint8_t *qual,
		   size_t qlen, struct evidence_quote *ret)
{
	struct evidence_quote q = { 0 };
	_cleanup_free_ struct tpm_pcrs *pcrs = malloc(sizeof(*pcrs));
	TPMT_SIGNATURE sig;
	int r;

	if (!pcrs)
		return kq_err(-ENOMEM, "out of memory");
	pthread_mutex_lock(&evidence_tpm_lock);
	r = tpmdev_quote(cfg->tpm, cfg->ak_handle, sel, qual, qlen, &q.attest, &q.attest_len, &sig, pcrs);
	pthread_mutex_unlock(&evidence_tpm_lock);
	if (r < 0)
		return r;
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, q.sig, sizeof(q.sig), &q.sig_len) != TSS2_RC_SUCCESS) {
		evidence_quote_clear(&q);
		return kq_err(-EIO, "cannot marshal the quote's signature");
	}
	if ((r = tpm_pcrfile_write(pcrs, &q.pcrs, &q.pcrs_len)) < 0) {
		evidence_quote_clear(&q);
		return r;
	}
	*ret = q;
	return 0;
}

void evidence_quote_error(struct http_response *resp, int r)
{
	/* -ENOENT / -EINVAL: what was asked cannot be quoted (a bank the TPM does not have) */
	if (r == -ENOENT || r == -EINVAL)
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
	else
		http_error(resp, 500, "tpm_error", "the TPM could not quote");
}

/* A readable log as base64, or NULL (logged) if the file is missing. */
static struct json_object *log_b64(const char *path, const char *what)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;

	if (!path || !path[0])
		return NULL;
	if (kq_read_file(path, EVIDENCE_MAX_LOG, &buf, &len) < 0) {
		log_warn(MOD, "%s: %s", what, kq_errmsg());
		return NULL;
	}
	return json_new_base64(buf, len);
}

/* The IMA list's entries from offset on; NULL (with *ret_err 0) when there is no list to serve. */
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
	if (kq_read_file(path, EVIDENCE_MAX_LOG, &buf, &len) < 0) {
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

int evidence_answer(const struct evidence_config *cfg, const struct evidence_quote *qt, uint64_t ima_offset,
		    struct json_object **ret)
{
	struct json_object *out, *q, *ima;
	_cleanup_free_ uint8_t *boot = NULL;
	size_t boot_len = 0;
	int ima_err;

	ima = ima_slice(cfg->ima_log, ima_offset, &ima_err);
	if (ima_err == -ERANGE)
		return ima_err;
	out = json_object_new_object();
	q = json_object_new_object();
	if (!out || !q) {
		json_object_put(out);
		json_object_put(q);
		json_object_put(ima);
		return kq_err(-ENOMEM, "out of memory");
	}
	json_object_object_add(q, "message", json_new_base64(qt->attest, qt->attest_len));
	json_object_object_add(q, "signature", json_new_base64(qt->sig, qt->sig_len));
	json_object_object_add(q, "pcrs", json_new_base64(qt->pcrs, qt->pcrs_len));
	json_object_object_add(out, "quote", q);
	if (cfg->boot_id && cfg->boot_id[0] && kq_read_file(cfg->boot_id, 256, &boot, &boot_len) == 0) {
		while (boot_len && (boot[boot_len - 1] == '\n' || boot[boot_len - 1] == ' '))
			boot[--boot_len] = '\0';
		json_object_object_add(out, "boot_id", json_object_new_string((char *)boot));
	} else {
		json_object_object_add(out, "boot_id", NULL);
	}
	json_object_object_add(out, "uefi_log", log_b64(cfg->uefi_log, "UEFI event log"));
	json_object_object_add(out, "ima", ima);
	*ret = out;
	return 0;
}

void evidence_answer_error(struct http_response *resp, int r)
{
	if (r == -ERANGE)
		http_error(resp, 409, "ima_offset_ahead", "%s", kq_errmsg());
	else
		http_error(resp, 500, "internal", "internal error");
}

void evidence_handle_quote(const struct http_request *req, struct http_response *resp, void *userdata)
{
	const struct evidence_config *cfg = userdata;
	struct evidence_request er;
	struct evidence_quote q = { 0 };
	struct json_object *out = NULL;
	int r;

	if (req->body_len > EVIDENCE_MAX_BODY) {
		http_error(resp, 413, "body_too_large", "request body over the limit of %u bytes", EVIDENCE_MAX_BODY);
		return;
	}
	if (evidence_request_read(cfg, req, 16 * 1024, 4, NULL, NULL, &er, resp) < 0)
		return;
	if ((r = evidence_quote(cfg, &er.sel, er.nonce, er.nonce_len, &q)) < 0) {
		log_error(MOD, "quote failed: %s", kq_errmsg());
		evidence_quote_error(resp, r);
		return;
	}
	if ((r = evidence_answer(cfg, &q, er.ima_offset, &out)) < 0) {
		evidence_answer_error(resp, r);
		goto out;
	}
	resp->status = 200;
	resp->body = TAKE_PTR(out);
out:
	evidence_quote_clear(&q);
}
