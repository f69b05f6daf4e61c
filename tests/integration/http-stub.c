/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in HTTPS peer for integration tests, on lib/http's server:
 *   http-stub --cert C --key K [--client-ca CA] --serve FILE
 *       answers every POST with FILE (JSON), status 200: a host agent that
 *       replays recorded evidence;
 *   http-stub --cert C --key K [--client-ca CA] --record DIR
 *       writes every POST body to DIR/NNNNNN.json and answers {}: a webhook.
 * Prints "listening on https://127.0.0.1:PORT" and serves until SIGTERM.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "http/http.h"
#include "json/json.h"
#include "util/util.h"

static struct json_object *answer;
static const char *record_dir;
static atomic_uint seq;

static void handle(const struct http_request *req, struct http_response *resp, void *ud)
{
	(void)ud;
	if (answer) {
		resp->status = 200;
		resp->body = json_object_get(answer);
		return;
	}
	{
		char path[4096];
		struct json_object *o = NULL;

		snprintf(path, sizeof(path), "%s/%06u.json", record_dir, atomic_fetch_add(&seq, 1));
		if (kq_write_file(path, req->body ? req->body : (const uint8_t *)"", req->body_len) < 0) {
			http_error(resp, 500, "internal", "%s", kq_errmsg());
			return;
		}
		if (json_parse_body(req->body, req->body_len, req->body_len + 1, 64, &o) < 0) {
			http_error(resp, 400, "bad_json", "%s", kq_errmsg());
			return;
		}
		json_object_put(o);
		resp->status = 200;
		resp->body = json_object_new_object();
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cert", required_argument, NULL, 'c' }, { "key", required_argument, NULL, 'k' },
		{ "client-ca", required_argument, NULL, 'a' }, { "serve", required_argument, NULL, 's' },
		{ "record", required_argument, NULL, 'r' }, { 0 },
	};
	static const struct http_route routes[] = { { "POST", "/*", false, handle } };
	struct http_server_config cfg = { .bind_addr = "127.0.0.1", .max_body = 64u << 20 };
	const char *serve = NULL;
	struct http_server *srv = NULL;
	sigset_t set;
	int c, sig;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cfg.cert_file = optarg; break;
		case 'k': cfg.key_file = optarg; break;
		case 'a': cfg.client_ca_file = optarg; break;
		case 's': serve = optarg; break;
		case 'r': record_dir = optarg; break;
		default: return 2;
		}
	}
	if (!cfg.cert_file || !cfg.key_file || !serve == !record_dir) {
		fputs("usage: http-stub --cert C --key K [--client-ca CA] (--serve FILE | --record DIR)\n", stderr);
		return 2;
	}
	if (serve) {
		_cleanup_free_ uint8_t *buf = NULL;
		size_t len;

		if (kq_read_file(serve, 256u << 20, &buf, &len) < 0 ||
		    json_parse_body(buf, len, len + 1, 64, &answer) < 0) {
			fprintf(stderr, "http-stub: %s: %s\n", serve, kq_errmsg());
			return 1;
		}
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (http_server_start(&cfg, routes, ARRAY_SIZE(routes), NULL, &srv) < 0) {
		fprintf(stderr, "http-stub: %s\n", kq_errmsg());
		return 1;
	}
	printf("listening on https://127.0.0.1:%u\n", http_server_port(srv));
	fflush(stdout);
	while (sigwait(&set, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
		;
	http_server_stop(srv);
	json_object_put(answer);
	return 0;
}
