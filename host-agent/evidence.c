/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host agent's HTTPS endpoint (mTLS): POST /v1/quote, the evidence every
 * agent serves (lib/evidence), POST /v1/deep-quote (deepquote.c), and the
 * payload and revocation routes both agents serve (lib/evidence/services.h).
 */
#include "host-agent.h"

#include <stdio.h>
#include <string.h>

#include "util/util.h"

/*
 * Deep-quote requests wait in their handler for the batch window and the
 * TPM, and requests can share a quote only while they wait together: one
 * worker thread each.
 */
#define SERVER_THREADS 8
/* A deep quote of DQ_MAX_LEAVES leaves; /v1/quote keeps its own 64 KiB limit. */
#define SERVER_MAX_BODY (24u << 20)
_Static_assert(SERVER_MAX_BODY >= SERVICES_MAX_BODY, "the payload routes' bodies fit");

struct host_server {
	struct evidence_config ev; /* first: the services' routes take a host_server as their evidence_config */
	struct services svc;
	char id[37];
	struct host_deepquote *dq;
	struct http_server *http;
};

static void handle_quote(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct host_server *s = ud;

	evidence_handle_quote(req, resp, &s->ev);
}

static void handle_deep_quote(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct host_server *s = ud;

	host_deepquote_handle(req, resp, s->dq);
}

static const struct http_route routes[] = {
	{ "POST", "/v1/quote", true, handle_quote },
	{ "POST", "/v1/deep-quote", true, handle_deep_quote },
	SERVICES_ROUTES,
};

int host_agent_serve(const struct host_agent_config *cfg, struct tpmdev *tpm, const char *id,
		     struct host_vtpm *vtpm, struct host_server **ret)
{
	struct host_server *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return kq_err(-ENOMEM, "out of memory");
	snprintf(s->id, sizeof(s->id), "%s", id);
	s->ev = (struct evidence_config){
		.tpm = tpm, .ak_handle = (TPM2_HANDLE)cfg->ak_handle, .agent_id = s->id,
		.uefi_log = cfg->uefi_log, .ima_log = cfg->ima_log, .boot_id = cfg->boot_id_path,
	};
	if ((r = services_setup(&cfg->svc, s->id, (TPM2_HANDLE)cfg->payload_key_handle, cfg->state_dir, &s->svc,
				&s->ev)) < 0 ||
	    (r = host_deepquote_new(&s->ev, vtpm, (unsigned)cfg->dq_window_ms, &s->dq)) < 0)
		goto fail;
	r = http_server_start(&(struct http_server_config){
				      .bind_addr = cfg->listen, .port = cfg->port, .cert_file = cfg->cert,
				      .key_file = cfg->key, .client_ca_file = cfg->client_ca,
				      .max_body = SERVER_MAX_BODY, .threads = SERVER_THREADS },
			      routes, ARRAY_SIZE(routes), s, &s->http);
	if (r < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	host_agent_serve_stop(s);
	return r;
}

uint16_t host_agent_serve_port(const struct host_server *s)
{
	return http_server_port(s->http);
}

void host_agent_serve_stop(struct host_server *s)
{
	if (!s)
		return;
	http_server_stop(s->http);
	host_deepquote_free(s->dq);
	services_clear(&s->svc);
	free(s);
}
