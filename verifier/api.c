/* SPDX-License-Identifier: Apache-2.0 */
/* The verifier's REST API (/v1, client certificates): agents and policies. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json/json.h"
#include "log/log.h"
#include "tpm/tpm.h"
#include "verifier.h"

#define MOD "api"
#define MAX_DOCUMENT (64u << 20)

bool verifier_valid_id(char *id)
{
	return kq_uuid_normalize(id, id);
}

bool verifier_valid_name(const char *name)
{
	size_t n = strlen(name);

	/* "." and ".." would be dot segments in a URL path: unreachable by name */
	if (n == 0 || n > VERIFIER_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return false;
	return true;
}

/* host:port or [v6]:port, host made of name/address characters, port 1-65535. */
static bool valid_address(const char *a)
{
	const char *colon = strrchr(a, ':');
	uint64_t port;
	size_t hl;

	if (!colon || strlen(a) > VERIFIER_ADDRESS_MAX || kq_parse_uint(colon + 1, 65535, &port) < 0 || port == 0)
		return false;
	hl = (size_t)(colon - a);
	if (hl == 0)
		return false;
	if (a[0] == '[') {
		if (hl < 3 || a[hl - 1] != ']')
			return false;
		for (size_t i = 1; i < hl - 1; i++)
			if (kq_hex_digit((unsigned char)a[i]) < 0 && a[i] != ':' && a[i] != '.')
				return false;
		return true;
	}
	for (size_t i = 0; i < hl; i++)
		if (!isalnum((unsigned char)a[i]) && a[i] != '.' && a[i] != '-')
			return false;
	return true;
}

static void ok_json(struct http_response *resp, unsigned status, struct json_object *o)
{
	resp->status = status;
	resp->body = o;
}

/* An error from the store or policies as an HTTP answer. */
static void fail(struct http_response *resp, int r)
{
	switch (r) {
	case -ENOENT:
		http_error(resp, 404, "not_found", "%s", kq_errmsg());
		break;
	case -EEXIST:
		http_error(resp, 409, "exists", "%s", kq_errmsg());
		break;
	case -EBUSY:
		http_error(resp, 409, strstr(kq_errmsg(), "guests") ? "has_guests" : "policy_in_use", "%s", kq_errmsg());
		break;
	case -EMEDIUMTYPE:
		http_error(resp, 409, "policy_kind", "%s", kq_errmsg());
		break;
	default:
		log_error(MOD, "%s", kq_errmsg());
		http_error(resp, 500, "internal", "internal error");
	}
}

static struct json_object *parse(const struct http_request *req, struct http_response *resp)
{
	struct json_object *o = NULL;

	if (json_parse_body(req->body, req->body_len, req->body_len + 1, 8, &o) < 0) {
		http_error(resp, 400, "bad_json", "%s", kq_errmsg());
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		http_error(resp, 400, "bad_request", "the body must be a JSON object");
		return NULL;
	}
	return o;
}

/* "/v1/agents/{id}[/rest]" -> id (validated, lowercased) and rest. */
static bool split(const char *path, const char *prefix, char *id, size_t id_size, const char **rest)
{
	const char *p = path + strlen(prefix), *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);

	if (n == 0 || n >= id_size)
		return false;
	memcpy(id, p, n);
	id[n] = '\0';
	*rest = slash ? slash : "";
	return true;
}

/* ---- agents ---- */

struct agent_body {
	char *id, *address, *bank, *host, *revocations;
	int64_t interval;
	struct json_object *pol[3];
	bool has_pol[3];
	bool stop, resume;
};

static const struct json_field agent_fields[] = {
	{ "id", JSON_STRING, false, VERIFIER_ID_LEN, offsetof(struct agent_body, id) },
	{ "host", JSON_STRING, false, VERIFIER_ID_LEN, offsetof(struct agent_body, host) },
	{ "address", JSON_STRING, false, VERIFIER_ADDRESS_MAX, offsetof(struct agent_body, address) },
	{ "bank", JSON_STRING, false, 16, offsetof(struct agent_body, bank) },
	{ "interval", JSON_INT64, false, 0, offsetof(struct agent_body, interval) },
	{ "stop", JSON_BOOL, false, 0, offsetof(struct agent_body, stop) },
	{ "resume", JSON_BOOL, false, 0, offsetof(struct agent_body, resume) },
	{ "revocations", JSON_STRING, false, 8, offsetof(struct agent_body, revocations) },
	{}
};

static const char *const pol_keys[3] = { "pcr_policy", "mb_policy", "ima_policy" };

/* Reads and checks an agent body into spec; 400 answered on error. */
static bool agent_spec(struct http_response *resp, struct json_object *o, struct agent_body *b,
		       struct agent_spec *spec, bool add)
{
	bool ok = false;

	/* policy fields may be null (= remove): taken out before the table sees them */
	for (unsigned i = 0; i < 3; i++) {
		struct json_object *v;

		if (!json_object_object_get_ex(o, pol_keys[i], &v))
			continue;
		if (v && (!json_object_is_type(v, json_type_string) ||
			  !verifier_valid_name(json_object_get_string(v)))) {
			http_error(resp, 400, "bad_request", "field '%s': a policy name (1-64 of A-Z a-z 0-9 . _ -) or null",
				   pol_keys[i]);
			goto out;
		}
		b->has_pol[i] = true;
		spec->policy[i] = v ? json_object_get_string(v) : "";
	}
	b->interval = INT64_MIN; /* absent */
	{
		struct json_object *copy = json_object_new_object();

		json_object_object_foreach(o, k, v) {
			bool is_pol = false;

			for (unsigned i = 0; i < 3; i++)
				is_pol |= strcmp(k, pol_keys[i]) == 0;
			if (!is_pol)
				json_object_object_add(copy, k, json_object_get(v));
		}
		if (json_dispatch(copy, agent_fields, b, false) < 0) {
			json_object_put(copy);
			http_error(resp, 400, "bad_request", "%s", kq_errmsg());
			goto out;
		}
		json_object_put(copy);
	}
	if (add && (!b->id || !b->address)) {
		http_error(resp, 400, "bad_request", "fields 'id' and 'address' are required");
		goto out;
	}
	if (!add && (b->id || b->host)) {
		http_error(resp, 400, "bad_request", "an agent's id and host cannot change");
		goto out;
	}
	if (b->host && !verifier_valid_id(b->host)) {
		http_error(resp, 400, "bad_request", "field 'host': not a UUID");
		goto out;
	}
	if (b->address && !valid_address(b->address)) {
		http_error(resp, 400, "bad_request", "field 'address': expected HOST:PORT or [IPv6]:PORT");
		goto out;
	}
	if (b->interval != INT64_MIN && (b->interval < 0 || b->interval > VERIFIER_MAX_INTERVAL)) {
		http_error(resp, 400, "bad_request", "field 'interval': seconds, 0 to %d", VERIFIER_MAX_INTERVAL);
		goto out;
	}
	if (b->bank) {
		uint16_t alg = kq_hash_from_name(b->bank);

		if (!alg || alg == KQ_ALG_SM3_256) {
			http_error(resp, 400, "bad_request", "field 'bank': sha1, sha256, sha384 or sha512");
			goto out;
		}
	}
	if (b->stop && b->resume) {
		http_error(resp, 400, "bad_request", "'stop' and 'resume' together");
		goto out;
	}
	if (b->revocations && strcmp(b->revocations, "none") != 0 && strcmp(b->revocations, "host") != 0 &&
	    strcmp(b->revocations, "all") != 0) {
		http_error(resp, 400, "bad_request", "field 'revocations': none, host or all");
		goto out;
	}
	spec->revocations = b->revocations;
	spec->address = b->address;
	spec->interval = b->interval == INT64_MIN ? -1 : b->interval;
	spec->bank = b->bank;
	spec->stop = b->stop;
	spec->resume = b->resume;
	ok = true;
out:
	return ok;
}

/* What the registrar says of an agent. */
struct reg_record {
	uint8_t *ak;
	size_t ak_len;
	bool guest;
	char host_id[VERIFIER_ID_LEN + 1], vm_uuid[VERIFIER_ID_LEN + 1];
	uint8_t ek_name[68];
	size_t ek_name_len;
};

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
											     : NULL;
}

/* Fetches the agent's AK (and for guests, their VM, host and EK name) from the registrar. Answers on error. */
static bool fetch_agent(struct verifier *v, struct http_response *resp, const char *id, struct reg_record *ret)
{
	_cleanup_free_ char *url = NULL;
	struct json_object *body = NULL, *e, *m;
	struct tpm_key key = {};
	const char *kind, *ak, *s;
	long status = 0;
	bool ok = false;
	int r;

	if (!v->cfg->registrar_url) {
		http_error(resp, 502, "registrar", "no [registrar] url is configured");
		return false;
	}
	if (asprintf(&url, "%s/v1/agents/%s", v->cfg->registrar_url, id) < 0) {
		http_error(resp, 500, "internal", "out of memory");
		return false;
	}
	r = http_request_json(&v->registrar_client, "GET", url, NULL, &status, &body);
	if (r < 0) {
		http_error(resp, 502, "registrar", "the registrar cannot be reached: %s", kq_errmsg());
		return false;
	}
	if (status == 404) {
		http_error(resp, 404, "not_found", "agent %s is not enrolled at the registrar", id);
		goto out;
	}
	if (status != 200 || !body) {
		const char *msg = body && json_object_object_get_ex(body, "error", &e) &&
					  json_object_object_get_ex(e, "message", &m) ? json_object_get_string(m) : "no reason";

		http_error(resp, 502, "registrar", "the registrar answered %ld: %s", status, msg);
		goto out;
	}
	kind = jstr(body, "kind");
	if (!kind || (strcmp(kind, "host") != 0 && strcmp(kind, "guest") != 0)) {
		http_error(resp, 502, "registrar", "the registrar's answer has no valid kind");
		goto out;
	}
	if ((s = jstr(body, "state")) && strcmp(s, "active") != 0) {
		http_error(resp, 409, "revoked", "agent %s is %s at the registrar", id, s);
		goto out;
	}
	ret->guest = strcmp(kind, "guest") == 0;
	if (ret->guest) {
		const char *vm = jstr(body, "vm_uuid"), *host = jstr(body, "host_id"), *name = jstr(body, "ek_name");

		if (!vm || !host || !name || strlen(vm) != 36 || strlen(host) != 36 ||
		    kq_hex_decode(name, ret->ek_name, sizeof(ret->ek_name), &ret->ek_name_len) < 0 || ret->ek_name_len < 2) {
			http_error(resp, 502, "registrar", "the registrar's record of guest %s lacks its VM, host or EK name", id);
			goto out;
		}
		memcpy(ret->vm_uuid, vm, 37);
		memcpy(ret->host_id, host, 37);
		if (!verifier_valid_id(ret->vm_uuid) || !verifier_valid_id(ret->host_id)) {
			http_error(resp, 502, "registrar", "the registrar's record of guest %s is malformed", id);
			goto out;
		}
	}
	if (!(ak = jstr(body, "ak_pub")) || kq_base64_decode(ak, TPM_MAX_BLOB, &ret->ak, &ret->ak_len) < 0) {
		http_error(resp, 502, "registrar", "the registrar's answer has no valid ak_pub");
		goto out;
	}
	if (tpm_key_load(ret->ak, ret->ak_len, &key) < 0) {
		http_error(resp, 502, "registrar", "the registrar's AK does not load: %s", kq_errmsg());
		free(TAKE_PTR(ret->ak));
		goto out;
	}
	tpm_key_clear(&key);
	ok = true;
out:
	json_object_put(body);
	return ok;
}

static void handle_add(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct verifier *v = ud;
	struct agent_body b = {};
	struct agent_spec spec = {};
	struct json_object *o = parse(req, resp), *out;
	_cleanup_free_ uint8_t *ak = NULL;
	struct reg_record rec = {};
	int r;

	if (!o)
		return;
	if (!agent_spec(resp, o, &b, &spec, true))
		goto out;
	if (!verifier_valid_id(b.id)) {
		http_error(resp, 400, "bad_request", "field 'id': not a UUID");
		goto out;
	}
	if (spec.stop || spec.resume) {
		http_error(resp, 400, "bad_request", "'stop' and 'resume' are for PATCH");
		goto out;
	}
	if (spec.interval < 0)
		spec.interval = (int64_t)v->cfg->interval;
	if (!spec.bank)
		spec.bank = "sha256";
	/* a missing or wrong policy is refused before asking the registrar */
	for (unsigned i = 0; i < 3; i++) {
		struct policy *p = NULL;

		if (!spec.policy[i] || !spec.policy[i][0])
			continue;
		r = policies_get(v->policies, spec.policy[i], &p);
		if (r < 0) {
			fail(resp, r);
			goto out;
		}
		policy_unref(p);
	}
	if (!fetch_agent(v, resp, b.id, &rec))
		goto out;
	ak = rec.ak;
	spec.ak = rec.ak;
	spec.ak_len = rec.ak_len;
	if (rec.guest) {
		/* a guest is attested through its host: the one whose vTPM-CA certified its vTPM */
		if (b.host && strcmp(b.host, rec.host_id) != 0) {
			http_error(resp, 409, "wrong_host", "guest %s's vTPM belongs to host %s, not %s", b.id, rec.host_id,
				   b.host);
			goto out;
		}
		spec.host_id = rec.host_id;
		spec.vm_uuid = rec.vm_uuid;
		spec.ek_name = rec.ek_name;
		spec.ek_name_len = rec.ek_name_len;
	} else if (b.host) {
		http_error(resp, 400, "bad_request", "field 'host': %s is a host itself", b.id);
		goto out;
	}
	r = store_agent_insert(v->db, b.id, &spec);
	if (r < 0) {
		fail(resp, r);
		goto out;
	}
	loop_changed(v->loop, b.id);
	log_info(MOD, "agent %s (%s) added by %s", b.id, spec.address, req->client_subject ? req->client_subject : "?");
	if (store_agent_json(v->db, b.id, &out) < 0)
		fail(resp, -EIO);
	else
		ok_json(resp, 201, out);
out:
	json_dispatch_free(agent_fields, &b);
	json_object_put(o);
}

static void handle_summary(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct verifier *v = ud;
	struct json_object *out;
	int r = store_summary_json(v->db, &out);

	(void)req;
	if (r < 0)
		fail(resp, r);
	else
		ok_json(resp, 200, out);
}

static void handle_list(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct verifier *v = ud;
	struct json_object *l, *out;
	int r = store_agents_json(v->db, &l);

	(void)req;
	if (r < 0) {
		fail(resp, r);
		return;
	}
	out = json_object_new_object();
	json_object_object_add(out, "agents", l);
	ok_json(resp, 200, out);
}

/* ---- secure payloads ---- */

struct payload_body {
	char *payload_id;
	struct json_bytes enc_v;
};

static const struct json_field payload_fields[] = {
	{ "payload_id", JSON_STRING, true, PAYLOAD_ID_MAX, offsetof(struct payload_body, payload_id) },
	{ "enc_v", JSON_BASE64, true, 512, offsetof(struct payload_body, enc_v) },
	{}
};

/*
 * POST /v1/agents/{id}/payload {payload_id, enc_v}: V of a payload, encrypted
 * to the agent's payload key by the tenant, sent to the agent with the next
 * passing verdict. GET: where it stands.
 */
static void handle_payload(struct verifier *v, const char *id, const struct http_request *req,
			   struct http_response *resp)
{
	struct payload_body b = {};
	struct json_object *o, *out = NULL;
	int r;

	if (strcmp(req->method, "GET") == 0) {
		r = store_payload_json(v->db, id, &out);
		if (r < 0)
			fail(resp, r);
		else
			ok_json(resp, 200, out);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		http_error(resp, 405, "method_not_allowed", "GET or POST");
		return;
	}
	if (!(o = parse(req, resp)))
		return;
	r = json_dispatch(o, payload_fields, &b, false);
	json_object_put(o);
	if (r < 0) {
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		goto out;
	}
	if (strlen(b.payload_id) != PAYLOAD_ID_MAX || strspn(b.payload_id, "0123456789abcdef") != PAYLOAD_ID_MAX ||
	    b.enc_v.len < 128) {
		http_error(resp, 400, "bad_request", "payload_id is 32 lowercase hex digits, enc_v an RSA ciphertext");
		goto out;
	}
	r = store_payload_put(v->db, id, b.payload_id, b.enc_v.data, b.enc_v.len);
	if (r < 0) {
		fail(resp, r);
		goto out;
	}
	loop_changed(v->loop, id);
	log_info(MOD, "agent %s: payload %s waits for a passing verdict (from %s)", id, b.payload_id,
		 req->client_subject ? req->client_subject : "?");
	r = store_payload_json(v->db, id, &out);
	if (r < 0)
		fail(resp, r);
	else
		ok_json(resp, 202, out);
out:
	json_dispatch_free(payload_fields, &b);
}

/*
 * What it serves, for tests/docs/api-routes.py: it checks these lines against
 * the sub-paths and methods compared below and against docs/api/verifier.yaml.
 * @route GET /v1/agents/{id}
 * @route PATCH /v1/agents/{id}
 * @route DELETE /v1/agents/{id}
 * @route GET /v1/agents/{id}/history
 * @route GET /v1/agents/{id}/payload
 * @route POST /v1/agents/{id}/payload
 */
static void handle_agent(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct verifier *v = ud;
	char id[VERIFIER_ID_LEN + 2];
	const char *rest;
	struct json_object *out = NULL;
	int r;

	if (!split(req->path, "/v1/agents/", id, sizeof(id), &rest) || !verifier_valid_id(id)) {
		http_error(resp, 404, "not_found", "no such resource (agent ids are UUIDs)");
		return;
	}
	if (strcmp(rest, "/history") == 0 && strcmp(req->method, "GET") == 0) {
		struct json_object *h;

		r = store_history_json(v->db, id, &h);
		if (r < 0) {
			fail(resp, r);
			return;
		}
		out = json_object_new_object();
		json_object_object_add(out, "id", json_object_new_string(id));
		json_object_object_add(out, "history", h);
		ok_json(resp, 200, out);
		return;
	}
	if (strcmp(rest, "/payload") == 0) {
		handle_payload(v, id, req, resp);
		return;
	}
	if (rest[0] || strcmp(req->method, "POST") == 0) {
		http_error(resp, 404, "not_found", "no such resource");
		return;
	}
	if (strcmp(req->method, "DELETE") == 0) {
		r = store_agent_delete(v->db, id);
		if (r < 0) {
			fail(resp, r);
			return;
		}
		loop_changed(v->loop, id);
		log_info(MOD, "agent %s deleted by %s", id, req->client_subject ? req->client_subject : "?");
		out = json_object_new_object();
		json_object_object_add(out, "id", json_object_new_string(id));
		json_object_object_add(out, "deleted", json_object_new_boolean(true));
		ok_json(resp, 200, out);
		return;
	}
	if (strcmp(req->method, "PATCH") == 0) {
		struct agent_body b = {};
		struct agent_spec spec = {};
		struct json_object *o = parse(req, resp);

		if (!o)
			return;
		if (agent_spec(resp, o, &b, &spec, false)) {
			r = store_agent_patch(v->db, v->notifier, id, &spec);
			if (r < 0) {
				fail(resp, r);
			} else {
				loop_changed(v->loop, id);
				log_info(MOD, "agent %s updated by %s%s", id,
					 req->client_subject ? req->client_subject : "?",
					 spec.stop ? " (stopped)" : spec.resume ? " (resumed)" : "");
				out = NULL;
			}
		}
		json_dispatch_free(agent_fields, &b);
		json_object_put(o);
		if (resp->status)
			return;
	}
	r = store_agent_json(v->db, id, &out);
	if (r < 0) {
		fail(resp, r);
		return;
	}
	ok_json(resp, 200, out);
}

/* ---- policies ---- */

struct policy_body {
	char *name, *kind;
	struct json_bytes document;
};

static const struct json_field policy_fields[] = {
	{ "name", JSON_STRING, true, VERIFIER_NAME_MAX, offsetof(struct policy_body, name) },
	{ "kind", JSON_STRING, true, 8, offsetof(struct policy_body, kind) },
	{ "document", JSON_BASE64, true, MAX_DOCUMENT, offsetof(struct policy_body, document) },
	{}
};

static void handle_policy_add(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct verifier *v = ud;
	struct policy_body b = {};
	struct json_object *o = parse(req, resp), *out;
	struct policy *p = NULL;
	_cleanup_free_ char *summary = NULL;
	enum policy_kind kind;
	int r;

	if (!o)
		return;
	if (json_dispatch(o, policy_fields, &b, false) < 0) {
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		goto out;
	}
	if (!verifier_valid_name(b.name)) {
		http_error(resp, 400, "bad_request", "field 'name': 1-64 characters of A-Z a-z 0-9 . _ -");
		goto out;
	}
	if (policy_kind_from_name(b.kind, &kind) < 0) {
		http_error(resp, 400, "bad_request", "field 'kind': pcr, mb or ima");
		goto out;
	}
	r = policy_compile(v->policies, kind, b.document.data, b.document.len, &p, &summary);
	if (r == -ENOMEM) {
		fail(resp, r);
		goto out;
	}
	if (r < 0) {
		http_error(resp, 400, "bad_policy", "%s", kq_errmsg());
		goto out;
	}
	policy_unref(p);
	r = store_policy_insert(v->db, b.name, b.kind, b.document.data, b.document.len, summary);
	if (r < 0) {
		fail(resp, r);
		goto out;
	}
	log_info(MOD, "policy %s (%s) added by %s", b.name, b.kind, req->client_subject ? req->client_subject : "?");
	if (store_policy_json(v->db, b.name, false, &out) < 0)
		fail(resp, -EIO);
	else
		ok_json(resp, 201, out);
out:
	json_dispatch_free(policy_fields, &b);
	json_object_put(o);
}

static void handle_policy_list(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct verifier *v = ud;
	struct json_object *l, *out;
	int r = store_policies_json(v->db, &l);

	(void)req;
	if (r < 0) {
		fail(resp, r);
		return;
	}
	out = json_object_new_object();
	json_object_object_add(out, "policies", l);
	ok_json(resp, 200, out);
}

/*
 * For tests/docs/api-routes.py (checked against docs/api/verifier.yaml):
 * @route GET /v1/policies/{name}
 * @route DELETE /v1/policies/{name}
 */
static void handle_policy(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct verifier *v = ud;
	char name[VERIFIER_NAME_MAX + 2];
	const char *rest;
	struct json_object *out;
	int r;

	if (!split(req->path, "/v1/policies/", name, sizeof(name), &rest) || rest[0] || !verifier_valid_name(name)) {
		http_error(resp, 404, "not_found", "no such resource");
		return;
	}
	if (strcmp(req->method, "DELETE") == 0) {
		r = store_policy_delete(v->db, name);
		if (r < 0) {
			fail(resp, r);
			return;
		}
		policies_forget(v->policies, name);
		log_info(MOD, "policy %s deleted by %s", name, req->client_subject ? req->client_subject : "?");
		out = json_object_new_object();
		json_object_object_add(out, "name", json_object_new_string(name));
		json_object_object_add(out, "deleted", json_object_new_boolean(true));
		ok_json(resp, 200, out);
		return;
	}
	r = store_policy_json(v->db, name, true, &out);
	if (r < 0) {
		fail(resp, r);
		return;
	}
	ok_json(resp, 200, out);
}

static const struct http_route routes[] = {
	{ "POST", "/v1/agents", true, handle_add },
	{ "GET", "/v1/agents", true, handle_list },
	{ "GET", "/v1/summary", true, handle_summary },
	{ "GET", "/v1/agents/*", true, handle_agent },
	{ "POST", "/v1/agents/*", true, handle_agent },
	{ "PATCH", "/v1/agents/*", true, handle_agent },
	{ "DELETE", "/v1/agents/*", true, handle_agent },
	{ "POST", "/v1/policies", true, handle_policy_add },
	{ "GET", "/v1/policies", true, handle_policy_list },
	{ "GET", "/v1/policies/*", true, handle_policy },
	{ "DELETE", "/v1/policies/*", true, handle_policy },
};

const struct http_route *verifier_routes(size_t *ret_n)
{
	*ret_n = ARRAY_SIZE(routes);
	return routes;
}
