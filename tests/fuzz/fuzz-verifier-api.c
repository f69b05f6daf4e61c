/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The verifier's REST handlers on hostile requests: the first input byte
 * picks a route (POST/PATCH agents, POST policies with any kind, GET/DELETE
 * by a path taken from the input), the rest is the body. The handlers run
 * against a real in-memory SQLite store; every answer must be a status in
 * 200-599 with a JSON body, and a refusal must be a 4xx with an error code.
 * Adding an agent stops at the registrar (none is configured: 502), so
 * agent bodies are parsed and checked in full without network access.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "verifier.h"

static struct verifier v;
static struct verifier_config cfg = { .interval = 10, .history_max = 10, .max_concurrent = 1 };

static void setup(void)
{
	if (v.db)
		return;
	v.cfg = &cfg;
	if (store_open(":memory:", &v.db) < 0 || policies_new(v.db, &cfg, &v.policies) < 0 ||
	    notifier_new(&cfg, &v.notifier) < 0 || loop_new(&cfg, v.db, v.policies, v.notifier, &v.loop) < 0)
		abort();
}

int64_t verifier_now(void) { return 1700000000; }
int64_t verifier_mono_ms(void) { return 0; }

static const struct {
	const char *method, *path;
	bool path_from_input;
} reqs[] = {
	{ "POST", "/v1/agents", false },
	{ "PATCH", "/v1/agents/", true },
	{ "POST", "/v1/policies", false },
	{ "GET", "/v1/agents/", true },
	{ "DELETE", "/v1/policies/", true },
	{ "GET", "/v1/policies/", true },
	{ "DELETE", "/v1/agents/", true },
	{ "GET", "/v1/agents", false },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct http_route *routes;
	size_t n_routes, pick, plen = 0;
	char path[256];
	struct http_request req = { .client_verified = true, .client_subject = "fuzz", .remote_addr = "127.0.0.1" };
	struct http_response resp = {};
	uint8_t *body;

	if (size < 1)
		return 0;
	setup();
	pick = data[0] % ARRAY_SIZE(reqs);
	data++, size--;
	snprintf(path, sizeof(path), "%s", reqs[pick].path);
	if (reqs[pick].path_from_input) {
		/* up to the first newline: the path's tail; printable ASCII as lib/http guarantees */
		size_t base = strlen(path);

		while (plen < size && data[plen] != '\n' && base + plen < sizeof(path) - 1) {
			path[base + plen] = (data[plen] > 0x20 && data[plen] < 0x7f) ? (char)data[plen] : '_';
			plen++;
		}
		path[base + plen] = '\0';
		if (plen < size)
			plen++;
		data += plen, size -= plen;
	}
	body = malloc(size + 1);
	if (!body)
		return 0;
	memcpy(body, data, size);
	body[size] = 0;
	req.method = reqs[pick].method;
	req.path = path;
	req.body = size ? body : NULL;
	req.body_len = size;

	routes = verifier_routes(&n_routes);
	for (size_t i = 0; i < n_routes; i++) {
		const char *rp = routes[i].path;
		size_t rl = strlen(rp);
		bool match = rp[rl - 1] == '*' ? strncmp(path, rp, rl - 1) == 0 && path[rl - 1] : strcmp(path, rp) == 0;

		if (strcmp(routes[i].method, req.method) != 0 || !match)
			continue;
		routes[i].fn(&req, &resp, &v);
		if (resp.status < 200 || resp.status > 599 || !resp.body)
			abort();
		if (resp.status >= 400) {
			struct json_object *e, *c;

			if (!json_object_object_get_ex(resp.body, "error", &e) ||
			    !json_object_object_get_ex(e, "code", &c) || !json_object_is_type(c, json_type_string))
				abort();
		}
		json_object_put(resp.body);
		break;
	}
	free(body);
	return 0;
}
