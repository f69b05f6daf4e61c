/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/http: JSON over HTTPS.
 *
 * Server (libmicrohttpd with GnuTLS): TLS only, optional client certificates
 * verified against a CA, routes from a table, request bodies buffered up to a
 * limit, JSON responses. See docs/http.md for TLS setup, limits and the error
 * format.
 *
 * Client (libcurl): one JSON request, the server's certificate and host name
 * verified against a given CA, an optional client certificate, bounded
 * response size and time.
 *
 * Errors follow lib/util: negative errno-style codes with kq_errmsg() set.
 */
#ifndef KQ_HTTP_H
#define KQ_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util/util.h"

/* ---- server ---- */

#define HTTP_DEFAULT_MAX_BODY (1024u * 1024)
#define HTTP_DEFAULT_THREADS 4
#define HTTP_DEFAULT_TIMEOUT_S 30
#define HTTP_DEFAULT_MAX_CONNECTIONS 256

struct http_server_config {
	const char *bind_addr;      /* numeric IPv4 or IPv6 address; NULL = 127.0.0.1 */
	uint16_t port;              /* 0 = pick a free one (see http_server_port) */
	const char *cert_file;      /* PEM certificate (chain), required: TLS only */
	const char *key_file;       /* PEM private key, required */
	const char *client_ca_file; /* PEM CA(s) client certs must chain to; NULL = no client auth */
	size_t max_body;            /* request body limit; 0 = HTTP_DEFAULT_MAX_BODY */
	unsigned threads;           /* worker threads; 0 = HTTP_DEFAULT_THREADS */
	unsigned timeout_s;         /* idle timeout and whole-request deadline; 0 = 30 s */
	unsigned max_connections;   /* open connections; 0 = HTTP_DEFAULT_MAX_CONNECTIONS */
	unsigned max_per_ip;        /* open connections per client address; 0 = no limit */
};

/* What a handler sees. All pointers are valid only during the handler call. */
struct http_request {
	const char *method;         /* "GET", "POST", ... */
	const char *path;           /* raw request path, not percent-decoded; printable ASCII */
	const char *query;          /* raw query string after '?', or NULL */
	const uint8_t *body;        /* body_len bytes followed by a NUL; NULL if empty */
	size_t body_len;            /* <= max_body */
	bool client_verified;       /* a client certificate chained to client_ca_file */
	const char *client_subject; /* CN of that certificate (printable ASCII), or NULL */
	const char *remote_addr;    /* numeric client address */
};

struct http_response {
	unsigned status;         /* 100-599; left 0, the client gets a 500 */
	struct json_object *body; /* owned by the server after the handler returns; NULL = empty */
};

/*
 * Handlers run on the server's worker threads, several at once (up to
 * `threads`): whatever userdata points to must be safe for that. A handler
 * blocks the other connections of its thread while it runs, so it should not
 * wait on the network for long. The request body is untrusted: parse it with
 * json_parse_body() and json_dispatch().
 */
typedef void (*http_handler_fn)(const struct http_request *req, struct http_response *resp,
				void *userdata);

/*
 * path is exact ("/v1/quote") or ends in a slash and an asterisk to match
 * everything below a prefix ("/v1/agents/" followed by '*' matches
 * "/v1/agents/x" and "/v1/agents/x/y", not "/v1/agents/" or "/v1/agents").
 * The first route matching method and path
 * wins. A request whose path matches but whose method does not gets 405.
 */
struct http_route {
	const char *method;
	const char *path;
	bool need_client_cert; /* 401 without a client cert, 403 with one that does not verify */
	http_handler_fn fn;
};

struct http_server;

/*
 * Starts listening and serving on background threads. routes (and the strings
 * they point to) and userdata must stay valid until http_server_stop(); the
 * files are read during the call. Errors: -EINVAL for a bad config, file
 * errors as from kq_read_file, -EADDRINUSE and other errors of the listening
 * socket, -ENOTSUP if libmicrohttpd was built without TLS.
 */
int http_server_start(const struct http_server_config *cfg, const struct http_route *routes,
		      size_t n_routes, void *userdata, struct http_server **ret);

/* The port the server listens on (the one it picked if cfg->port was 0). */
uint16_t http_server_port(const struct http_server *s);

/* Stops accepting, waits for running handlers, closes everything. NULL is fine. */
void http_server_stop(struct http_server *s);

/*
 * Sets resp to status with body {"error":{"code":code,"message":msg}}, dropping
 * any body set before. msg may hold strings from the request: bytes that are
 * not valid UTF-8 are replaced, and it is cut at 1 KiB.
 */
void http_error(struct http_response *resp, unsigned status, const char *code,
		const char *fmt, ...) _printf_(4, 5);

/* ---- client ---- */

#define HTTP_DEFAULT_CLIENT_TIMEOUT_MS 30000
#define HTTP_DEFAULT_MAX_RESPONSE (1024u * 1024)

struct http_client_config {
	const char *ca_file;   /* PEM CA for the server's certificate, required (no system CAs) */
	const char *cert_file; /* client certificate (PEM), optional */
	const char *key_file;  /* its private key (PEM); required with cert_file */
	unsigned timeout_ms;   /* whole request; 0 = HTTP_DEFAULT_CLIENT_TIMEOUT_MS */
	size_t max_response;   /* response body limit; 0 = HTTP_DEFAULT_MAX_RESPONSE */
};

/*
 * Sends method to url (https:// only; no redirects, no proxy) with body
 * serialised as JSON (NULL: no body), and waits for the answer. The server's
 * certificate must chain to ca_file and name the URL's host (DNS or IP SAN).
 *
 * On success *ret_status is the HTTP status, whatever it is, and *ret_body
 * the parsed response body (json_parse_body rules), or NULL if it was empty;
 * the caller drops it with json_object_put. Thread-safe: each call uses its
 * own connection.
 *
 * Errors: -EINVAL (bad config, method or URL; unreadable cert/key/CA file),
 * -ECONNREFUSED, -EHOSTUNREACH (cannot resolve or reach), -ETIMEDOUT,
 * -EKEYREJECTED (the server's certificate does not verify or does not match
 * the host), -ECONNABORTED (TLS handshake failed, e.g. our client cert was
 * refused), -ECONNRESET, -E2BIG (response over max_response), -EBADMSG
 * (response is not JSON), -ENOMEM, -EIO (anything else). The message names
 * the method and URL.
 */
int http_request_json(const struct http_client_config *cfg, const char *method, const char *url,
		      struct json_object *body, long *ret_status, struct json_object **ret_body);

#endif
