/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registrar's REST API (/v1, JSON over TLS):
 *   POST   /v1/agents                       enrolment begin      (server-auth TLS only)
 *   POST   /v1/agents/{id}/activate         activation proof     (server-auth TLS only)
 *   POST   /v1/agents/{id}/vtpm-ca/nonce    nonce for Certify    (server-auth TLS only)
 *   POST   /v1/agents/{id}/vtpm-ca          the certified key    (server-auth TLS only)
 *   POST   /v1/agents/{id}/payload-key/nonce  nonce for Certify  (server-auth TLS only)
 *   POST   /v1/agents/{id}/payload-key      the certified key    (server-auth TLS only)
 *   GET    /v1/agents                       list                 (client certificate)
 *   GET    /v1/agents/{id}                  show                 (client certificate)
 *   DELETE /v1/agents/{id}                  delete               (client certificate)
 * Enrolment needs no client certificate: the TPM challenge is the proof.
 */
#include "api.h"

#include <string.h>

#include <openssl/crypto.h>

#include "json/json.h"
#include "log/log.h"
#include "util/util.h"

#define MOD "registrar"

/* Every request body: at most 64 KiB, nested at most 8 deep. */
#define BODY_MAX (64 * 1024)
#define BODY_DEPTH 8

static unsigned status_of(int r)
{
	switch (r) {
	case -EINVAL:
	case -EBADMSG:
	case -E2BIG: return 400;
	case -EPERM:
	case -EACCES:
	case -EKEYREJECTED: return 403;
	case -ENOENT: return 404;
	case -EEXIST:
	case -EKEYREVOKED: return 409;
	case -EAGAIN: return 429;
	default: return 500;
	}
}

static void fail(struct http_response *resp, int r, const char *code)
{
	unsigned st = status_of(r);

	if (st == 500)
		http_error(resp, st, "internal", "internal error");
	else
		http_error(resp, st, strcmp(code, "internal") == 0 ? "bad_request" : code, "%s", kq_errmsg());
}

/* UUIDs are stored lowercase; any spelling a client sends names the same agent. */
static void lower(char *s)
{
	for (; s && *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static struct json_object *parse(const struct http_request *req, struct http_response *resp)
{
	struct json_object *o = NULL;

	if (json_parse_body(req->body, req->body_len, BODY_MAX, BODY_DEPTH, &o) < 0) {
		http_error(resp, 400, "bad_json", "%s", kq_errmsg());
		return NULL;
	}
	return o;
}

static void ok_json(struct http_response *resp, unsigned status, struct json_object *o)
{
	resp->status = status;
	resp->body = o;
}

static const struct json_field enrol_fields[] = {
	{ "id", JSON_STRING, true, REG_ID_MAX, offsetof(struct reg_enrol_req, id) },
	{ "kind", JSON_STRING, true, 8, offsetof(struct reg_enrol_req, kind) },
	{ "ek_pub", JSON_BASE64, true, 1024, offsetof(struct reg_enrol_req, ek_pub) },
	{ "ek_cert", JSON_BASE64, false, 8192, offsetof(struct reg_enrol_req, ek_cert) },
	{ "ak_pub", JSON_BASE64, true, 1024, offsetof(struct reg_enrol_req, ak_pub) },
	{ "contact", JSON_STRING, false, 512, offsetof(struct reg_enrol_req, contact) },
	{ "vm_uuid", JSON_STRING, false, 36, offsetof(struct reg_enrol_req, vm_uuid) },
	{ 0 },
};

int registrar_parse_enrol(const uint8_t *body, size_t len, struct reg_enrol_req *ret)
{
	struct reg_enrol_req er = { 0 };
	struct json_object *o = NULL;
	int r;

	r = json_parse_body(body, len, BODY_MAX, BODY_DEPTH, &o);
	if (r < 0)
		return r;
	r = json_dispatch(o, enrol_fields, &er, false);
	json_object_put(o);
	if (r < 0)
		return -EINVAL; /* kq_errmsg() names the field, or says out of memory */
	*ret = er;
	return 0;
}

void registrar_enrol_req_free(struct reg_enrol_req *req)
{
	if (req)
		json_dispatch_free(enrol_fields, req);
}

static void handle_enrol(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct registrar *rg = ud;
	struct reg_enrol_req er = { 0 };
	struct json_object *out;
	_cleanup_free_ uint8_t *cred = NULL;
	_cleanup_free_ char *b64 = NULL;
	const char *code = "bad_request";
	uint8_t handle[REG_HANDLE_LEN];
	size_t len;
	int r;

	r = registrar_parse_enrol(req->body, req->body_len, &er);
	if (r < 0) {
		/* the same answers as parse() and json_dispatch() give the other handlers */
		if (r == -EINVAL)
			http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		else
			http_error(resp, 400, "bad_json", "%s", kq_errmsg());
		return;
	}
	lower(er.id);
	r = reg_enrol_begin(rg, &er, &cred, &len, handle, &code);
	if (r < 0) {
		log_info(MOD, "enrolment of %s refused (%s): %s", er.id, code, kq_errmsg());
		fail(resp, r, code);
	} else if (kq_base64_encode(cred, len, &b64) < 0) {
		http_error(resp, 500, "internal", "internal error");
	} else {
		out = json_object_new_object();
		json_object_object_add(out, "id", json_object_new_string(er.id));
		json_object_object_add(out, "credential", json_object_new_string(b64));
		json_object_object_add(out, "handle", json_new_hex(handle, sizeof(handle)));
		json_object_object_add(out, "activate", json_object_new_string("POST /v1/agents/{id}/activate"));
		log_info(MOD, "enrolment of %s %s begun", er.kind, er.id);
		ok_json(resp, 200, out);
	}
	registrar_enrol_req_free(&er);
}

struct proof_req {
	struct json_bytes handle, proof;
};

static void handle_activate(const struct http_request *req, struct http_response *resp, struct registrar *rg,
			    const char *id)
{
	static const struct json_field fields[] = {
		{ "handle", JSON_HEX, true, REG_HANDLE_LEN, offsetof(struct proof_req, handle) },
		{ "proof", JSON_BASE64, true, 64, offsetof(struct proof_req, proof) },
		{ 0 },
	};
	struct proof_req pr = { 0 };
	struct json_object *body = parse(req, resp), *out;
	const char *code;
	int r;

	if (!body)
		return;
	r = json_dispatch(body, fields, &pr, false);
	json_object_put(body);
	if (r < 0) {
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		return;
	}
	if (pr.handle.len != REG_HANDLE_LEN) {
		http_error(resp, 400, "bad_request", "field 'handle': must be %d bytes of hex", REG_HANDLE_LEN);
		json_dispatch_free(fields, &pr);
		return;
	}
	r = reg_enrol_activate(rg, id, pr.handle.data, pr.proof.data, pr.proof.len, &code);
	if (r < 0) {
		log_warn(MOD, "activation of %s refused (%s): %s", id, code, kq_errmsg());
		fail(resp, r, code);
	} else {
		out = json_object_new_object();
		json_object_object_add(out, "id", json_object_new_string(id));
		json_object_object_add(out, "state", json_object_new_string("active"));
		log_info(MOD, "agent %s is active", id);
		ok_json(resp, 200, out);
	}
	json_dispatch_free(fields, &pr);
}

/*
 * Keys an agent has its AK certify: POST {path}/nonce, then POST {path} with
 * the key's public area (in field fields[0]), the attestation and signature.
 */
struct certified_route {
	const char *path;               /* under /v1/agents/{id} */
	const struct json_field *fields;
	const char *answer;             /* the answer's "...": "recorded" member */
	const char *what;               /* for logs */
	int (*nonce)(struct registrar *rg, const char *id, uint8_t ret_nonce[32], const char **code);
	int (*submit)(struct registrar *rg, const char *id, const uint8_t *pub, size_t pub_len,
		      const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
		      const char **code);
};

struct certified_req {
	struct json_bytes pub, attest, signature;
};

#define CERTIFIED_FIELDS(pub_field) { \
	{ pub_field, JSON_BASE64, true, 1024, offsetof(struct certified_req, pub) }, \
	{ "attest", JSON_BASE64, true, 2048, offsetof(struct certified_req, attest) }, \
	{ "signature", JSON_BASE64, true, 1024, offsetof(struct certified_req, signature) }, \
	{ 0 }, \
}
static const struct json_field ca_fields[] = CERTIFIED_FIELDS("ca_pub");
static const struct json_field payload_fields[] = CERTIFIED_FIELDS("key_pub");

static const struct certified_route certified_routes[] = {
	{ "/vtpm-ca", ca_fields, "vtpm_ca", "vTPM CA", reg_ca_nonce, reg_ca_submit },
	{ "/payload-key", payload_fields, "payload_key", "payload key", reg_payload_nonce, reg_payload_submit },
};

static void handle_nonce(struct http_response *resp, struct registrar *rg, const char *id,
			 const struct certified_route *cr)
{
	uint8_t nonce[32];
	_cleanup_free_ char *b64 = NULL;
	const char *code;
	struct json_object *out;
	int r = cr->nonce(rg, id, nonce, &code);

	if (r < 0) {
		fail(resp, r, code);
		return;
	}
	if (kq_base64_encode(nonce, sizeof(nonce), &b64) < 0) {
		http_error(resp, 500, "internal", "internal error");
		return;
	}
	out = json_object_new_object();
	json_object_object_add(out, "nonce", json_object_new_string(b64));
	json_object_object_add(out, "expires_in", json_object_new_int64((int64_t)rg->cfg.challenge_ttl));
	ok_json(resp, 200, out);
}

static void handle_certified(const struct http_request *req, struct http_response *resp, struct registrar *rg,
			     const char *id, const struct certified_route *cr)
{
	struct certified_req cq = { 0 };
	struct json_object *body = parse(req, resp), *out;
	const char *code;
	int r;

	if (!body)
		return;
	r = json_dispatch(body, cr->fields, &cq, false);
	json_object_put(body);
	if (r < 0) {
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		return;
	}
	r = cr->submit(rg, id, cq.pub.data, cq.pub.len, cq.attest.data, cq.attest.len, cq.signature.data,
		       cq.signature.len, &code);
	if (r < 0) {
		log_warn(MOD, "%s of %s refused (%s): %s", cr->what, id, code, kq_errmsg());
		fail(resp, r, code);
	} else {
		out = json_object_new_object();
		json_object_object_add(out, "id", json_object_new_string(id));
		json_object_object_add(out, cr->answer, json_object_new_string("recorded"));
		log_info(MOD, "%s of %s recorded", cr->what, id);
		ok_json(resp, 200, out);
	}
	json_dispatch_free(cr->fields, &cq);
}

/* Splits "/v1/agents/{id}[/rest]" into id (copied, bounded) and rest. */
static int split_path(const char *path, char id[REG_ID_MAX + 1], const char **rest)
{
	static const char prefix[] = "/v1/agents/";
	const char *p, *slash;
	size_t n;

	if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
		return -EINVAL;
	p = path + sizeof(prefix) - 1;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n == 0 || n > REG_ID_MAX)
		return -EINVAL;
	memcpy(id, p, n);
	id[n] = '\0';
	lower(id);
	*rest = slash ? slash : "";
	return reg_valid_id(id) ? 0 : -EINVAL;
}

/* POST /v1/agents/{id}/revoke: an admin call, so a client certificate is checked here. */
static void handle_revoke(const struct http_request *req, struct http_response *resp, void *ud, const char *id)
{
	struct json_object *o;
	int r;

	if (!req->client_verified) {
		http_error(resp, 401, "client_cert_required", "revoking needs an admin client certificate");
		return;
	}
	r = reg_revoke(ud, id);
	if (r < 0) {
		fail(resp, r, r == -ENOENT ? "not_found" : "internal");
		return;
	}
	log_info(MOD, "agent %s revoked by %s", id, req->client_subject ? req->client_subject : "?");
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "revoked", json_object_new_boolean(true));
	ok_json(resp, 200, o);
}

/*
 * What it serves, for tests/docs/api-routes.py: it checks these lines against
 * the sub-paths compared below and against docs/api/registrar.yaml.
 * @route POST /v1/agents/{id}/activate
 * @route POST /v1/agents/{id}/vtpm-ca/nonce
 * @route POST /v1/agents/{id}/vtpm-ca
 * @route POST /v1/agents/{id}/payload-key/nonce
 * @route POST /v1/agents/{id}/payload-key
 * @route POST /v1/agents/{id}/revoke client-cert
 */
static void handle_agent_post(const struct http_request *req, struct http_response *resp, void *ud)
{
	char id[REG_ID_MAX + 1];
	const char *rest;

	if (split_path(req->path, id, &rest) < 0) {
		http_error(resp, 404, "not_found", "no such resource");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(certified_routes); i++) {
		const struct certified_route *cr = &certified_routes[i];
		size_t n = strlen(cr->path);

		if (strncmp(rest, cr->path, n) != 0)
			continue;
		if (rest[n] == '\0') {
			handle_certified(req, resp, ud, id, cr);
			return;
		}
		if (strcmp(rest + n, "/nonce") == 0) {
			handle_nonce(resp, ud, id, cr);
			return;
		}
	}
	if (strcmp(rest, "/activate") == 0)
		handle_activate(req, resp, ud, id);
	else if (strcmp(rest, "/revoke") == 0)
		handle_revoke(req, resp, ud, id);
	else
		http_error(resp, 404, "not_found", "no such resource");
}

static void handle_list(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct json_object *l, *out;
	int r = reg_list_json(ud, &l);

	if (r < 0) {
		fail(resp, r, "internal");
		return;
	}
	out = json_object_new_object();
	json_object_object_add(out, "agents", l);
	ok_json(resp, 200, out);
}

/*
 * For tests/docs/api-routes.py (checked against docs/api/registrar.yaml):
 * @route GET /v1/agents/{id}
 * @route DELETE /v1/agents/{id}
 */
static void handle_agent_admin(const struct http_request *req, struct http_response *resp, void *ud)
{
	char id[REG_ID_MAX + 1];
	const char *rest;
	struct json_object *o;
	int r;

	if (split_path(req->path, id, &rest) < 0 || rest[0]) {
		http_error(resp, 404, "not_found", "no such resource");
		return;
	}
	if (strcmp(req->method, "DELETE") == 0) {
		r = reg_delete(ud, id);
		if (r < 0) {
			fail(resp, r, r == -ENOENT ? "not_found" : r == -EKEYREVOKED ? "revoked" : "internal");
			return;
		}
		log_info(MOD, "agent %s deleted by %s", id, req->client_subject ? req->client_subject : "?");
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(id));
		json_object_object_add(o, "deleted", json_object_new_boolean(true));
		ok_json(resp, 200, o);
		return;
	}
	r = reg_agent_json(ud, id, &o);
	if (r < 0) {
		fail(resp, r, r == -ENOENT ? "not_found" : "internal");
		return;
	}
	ok_json(resp, 200, o);
}

static const struct http_route routes[] = {
	{ "POST", "/v1/agents", false, handle_enrol },
	{ "POST", "/v1/agents/*", false, handle_agent_post },
	{ "GET", "/v1/agents", true, handle_list },
	{ "GET", "/v1/agents/*", true, handle_agent_admin },
	{ "DELETE", "/v1/agents/*", true, handle_agent_admin },
};

const struct http_route *registrar_routes(size_t *ret_n)
{
	*ret_n = ARRAY_SIZE(routes);
	return routes;
}
