/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTPS server over libmicrohttpd (built with GnuTLS on Debian and Fedora).
 *
 * Client certificates: with a client CA, libmicrohttpd loads it as the trust
 * list of its GnuTLS credentials and asks every client for a certificate
 * (GNUTLS_CERT_REQUEST, so a client without one can still connect). GnuTLS
 * does not judge what it receives; we verify the chain ourselves with
 * gnutls_certificate_verify_peers() (trust list, validity dates, signatures,
 * key purpose TLS client), once per connection, and cache the result.
 *
 * Every request goes through one state object (struct req), made when the
 * request line arrives (the URI log callback, which also hands us the raw
 * URI), filled as the body arrives, and freed when the request completes.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "json/json.h"
#include "log/log.h"

/* PEM files for the server: certificate chain, key, client CA bundle. */
#define PEM_MAX (1024u * 1024)
/* libmicrohttpd's per-connection buffer: request line, headers, body chunks. */
#define CONN_MEMORY (32u * 1024)
/* Longest message in an error body. */
#define ERRMSG_MAX 1024

struct http_server {
	struct MHD_Daemon *mhd;
	const struct http_route *routes;
	size_t n_routes;
	void *userdata;
	size_t max_body;
	unsigned timeout_s;
	bool client_auth;
	uint16_t port;
	char *cert;
	char *key;
	size_t key_len;
	char *ca;
	char start_error[512]; /* first libmicrohttpd message of the starting thread */
	pthread_t starter;
};

/* What we know about a connection's client certificate. */
struct conn_info {
	bool checked;
	bool presented;
	bool verified;
	char *subject;
};

struct req {
	char *path;  /* raw URI up to '?' */
	char *query; /* after '?', or NULL (points into the same allocation as path) */
	char remote[INET6_ADDRSTRLEN];
	struct timespec start;
	bool begun;
	bool responded;
	const struct http_route *route;
	uint8_t *body;
	size_t len, cap;
};

/* ---- responses ---- */

void http_error(struct http_response *resp, unsigned status, const char *code,
		const char *fmt, ...)
{
	char msg[ERRMSG_MAX];
	struct json_object *err, *o;
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* keep the body valid UTF-8 whatever the message quoted */
	n = strlen(msg);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = json_utf8_seq((const uint8_t *)msg + i, n - i, &cp);

		if (k == 0) {
			msg[i++] = '?';
			continue;
		}
		i += k;
	}

	json_object_put(resp->body);
	resp->body = NULL;
	resp->status = status;
	o = json_object_new_object();
	err = json_object_new_object();
	if (!o || !err || json_object_object_add(o, "error", err) < 0) {
		json_object_put(o);
		json_object_put(err);
		return; /* out of memory: the status alone goes out */
	}
	json_object_object_add(err, "code", json_object_new_string(code));
	json_object_object_add(err, "message", json_object_new_string(msg));
	resp->body = o;
}

static const char oom_body[] =
	"{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";

/* Queues status with body (which this consumes); allow: an Allow header or NULL. */
static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status,
			     struct json_object *body, const char *allow)
{
	struct MHD_Response *resp = NULL;
	bool has_body = body != NULL;
	enum MHD_Result r;

	if (has_body) {
		size_t len;
		const char *s = json_object_to_json_string_length(
			body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
		char *copy = s ? strndup(s, len) : NULL;

		if (copy) {
			resp = MHD_create_response_from_buffer_with_free_callback(len, copy, free);
			if (!resp)
				free(copy);
		}
		json_object_put(body);
		if (!resp) {
			status = 500;
			resp = MHD_create_response_from_buffer(sizeof(oom_body) - 1, (void *)oom_body,
							       MHD_RESPMEM_PERSISTENT);
		}
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	if (!resp)
		return MHD_NO;
	if (has_body &&
	    (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES ||
	     MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    (allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

_printf_(6, 7) static enum MHD_Result queue_error(struct req *rq, struct MHD_Connection *conn,
						  unsigned status, const char *allow,
						  const char *code, const char *fmt, ...)
{
	struct http_response resp = { 0, NULL };
	char msg[ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_error(&resp, status, code, "%s", msg);
	rq->responded = true;
	log_debug("http", "%s %s: %u %s", rq->remote, rq->path ? rq->path : "-", status, code);
	return queue(conn, status, resp.body, allow);
}

/* ---- client certificates ---- */

static void conn_info_free(struct conn_info *ci)
{
	if (!ci)
		return;
	free(ci->subject);
	free(ci);
}

/* The certificate's one CN, if it is printable ASCII; NULL otherwise. */
static char *cert_cn(const gnutls_datum_t *der)
{
	gnutls_x509_crt_t crt;
	char cn[256];
	size_t sz = sizeof(cn), sz2 = 0;
	char *ret = NULL;

	if (gnutls_x509_crt_init(&crt) < 0)
		return NULL;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0)
		goto out;
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &sz) < 0)
		goto out;
	/* two CNs: which one names the client is anybody's guess */
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, NULL, &sz2) !=
	    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		goto out;
	if (sz == 0 || sz >= sizeof(cn) || strlen(cn) != sz)
		goto out;
	for (size_t i = 0; i < sz; i++)
		if (cn[i] < 0x20 || cn[i] > 0x7e)
			goto out;
	ret = strdup(cn);
out:
	gnutls_x509_crt_deinit(crt);
	return ret;
}

static void check_client_cert(struct MHD_Connection *conn, struct conn_info *ci)
{
	const union MHD_ConnectionInfo *info;
	gnutls_typed_vdata_st purpose = {
		.type = GNUTLS_DT_KEY_PURPOSE_OID,
		.data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
	};
	const gnutls_datum_t *certs;
	gnutls_session_t session;
	unsigned n = 0, status = 0;

	ci->checked = true;
	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!info || !info->tls_session)
		return;
	session = (gnutls_session_t)info->tls_session;
	if (gnutls_certificate_type_get(session) != GNUTLS_CRT_X509)
		return;
	certs = gnutls_certificate_get_peers(session, &n);
	if (!certs || n == 0)
		return;
	ci->presented = true;
	if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0 || status != 0) {
		log_debug("http", "client certificate rejected (GnuTLS status 0x%x)", status);
		return;
	}
	ci->verified = true;
	ci->subject = cert_cn(&certs[0]);
}

/* ---- libmicrohttpd callbacks ---- */

static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = calloc(1, sizeof(struct conn_info)); /* NULL: checked per request */
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		conn_info_free(*socket_context);
		*socket_context = NULL;
	}
}

static double elapsed_s(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Called with the request line: the raw URI, before libmicrohttpd decodes it. */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info;
	struct req *rq = calloc(1, sizeof(*rq));
	char *q;

	if (!rq)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &rq->start);
	snprintf(rq->remote, sizeof(rq->remote), "?");
	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (info && info->client_addr) {
		const struct sockaddr *sa = info->client_addr;
		socklen_t salen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							     : sizeof(struct sockaddr_in);

		if (getnameinfo(sa, salen, rq->remote, sizeof(rq->remote), NULL, 0, NI_NUMERICHOST) != 0)
			snprintf(rq->remote, sizeof(rq->remote), "?");
	}
	rq->path = strdup(uri ? uri : "");
	if (!rq->path) {
		free(rq);
		return NULL;
	}
	q = strchr(rq->path, '?');
	if (q) {
		*q = '\0';
		rq->query = q + 1;
	}
	return rq;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	if (!rq)
		return;
	free(rq->path);
	free(rq->body);
	free(rq);
	*con_cls = NULL;
}

_printf_(2, 0) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *srv = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	if (pthread_equal(pthread_self(), srv->starter) && !srv->start_error[0])
		snprintf(srv->start_error, sizeof(srv->start_error), "%s", msg);
	log_debug("http", "libmicrohttpd: %s", msg);
}

static bool path_matches(const char *pattern, const char *path)
{
	size_t n = strlen(pattern);

	if (n >= 2 && pattern[n - 2] == '/' && pattern[n - 1] == '*')
		return strncmp(pattern, path, n - 1) == 0 && path[n - 1] != '\0';
	return strcmp(pattern, path) == 0;
}

static bool uri_ok(const char *s)
{
	if (s[0] != '/')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static struct conn_info *conn_info_get(struct MHD_Connection *conn, struct conn_info *tmp)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_info *ci = info ? info->socket_context : NULL;

	if (!ci)
		ci = tmp; /* no cache: check for this request only */
	if (!ci->checked)
		check_client_cert(conn, ci);
	return ci;
}

/* The first call for a request: headers are in, the body is not. */
static enum MHD_Result begin(struct http_server *srv, struct req *rq, struct MHD_Connection *conn,
			     const char *method)
{
	const struct http_route *route = NULL;
	bool path_found = false;
	const char *cl;

	if (!uri_ok(rq->path))
		return queue_error(rq, conn, 400, NULL, "bad_request", "malformed request target");
	if (rq->query) {
		for (const char *s = rq->query; *s; s++)
			if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
				return queue_error(rq, conn, 400, NULL, "bad_request",
						   "malformed request target");
	}

	for (size_t i = 0; i < srv->n_routes; i++) {
		if (!path_matches(srv->routes[i].path, rq->path))
			continue;
		path_found = true;
		if (strcmp(srv->routes[i].method, method) == 0) {
			route = &srv->routes[i];
			break;
		}
	}
	if (!route && !path_found)
		return queue_error(rq, conn, 404, NULL, "not_found", "no such resource");
	if (!route) {
		char allow[256] = "";
		size_t n = 0;

		for (size_t i = 0; i < srv->n_routes; i++) {
			const char *m = srv->routes[i].method;

			if (!path_matches(srv->routes[i].path, rq->path))
				continue;
			if (n + strlen(m) + 3 > sizeof(allow))
				break;
			n += (size_t)snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "", m);
		}
		return queue_error(rq, conn, 405, allow, "method_not_allowed",
				   "method not allowed here");
	}
	rq->route = route;

	if (route->need_client_cert) {
		struct conn_info tmp = { 0 };
		struct conn_info *ci = srv->client_auth ? conn_info_get(conn, &tmp) : &tmp;
		bool presented = ci->presented, verified = ci->verified;

		if (ci == &tmp)
			free(tmp.subject);
		if (!presented)
			return queue_error(rq, conn, 401, NULL, "client_cert_required",
					   "this resource needs a client certificate");
		if (!verified)
			return queue_error(rq, conn, 403, NULL, "client_cert_rejected",
					   "the client certificate is not trusted");
	}

	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		uint64_t v;

		if (kq_parse_uint(cl, UINT64_MAX, &v) < 0)
			return queue_error(rq, conn, 400, NULL, "bad_request", "bad Content-Length");
		if (v > srv->max_body)
			return queue_error(rq, conn, 413, NULL, "body_too_large",
					   "request body over the limit of %zu bytes", srv->max_body);
	}
	return MHD_YES;
}

static enum MHD_Result body_chunk(struct http_server *srv, struct req *rq, const char *data,
				  size_t n)
{
	if (n > srv->max_body - rq->len) {
		/* only without Content-Length (chunked): too late for a 413, so hang up */
		log_debug("http", "%s %s: chunked body over the limit, closing", rq->remote, rq->path);
		return MHD_NO;
	}
	if (kq_buf_reserve(&rq->body, &rq->cap, rq->len + n + 1, srv->max_body + 1) < 0)
		return MHD_NO;
	memcpy(rq->body + rq->len, data, n);
	rq->len += n;
	rq->body[rq->len] = '\0';
	return MHD_YES;
}

static enum MHD_Result dispatch(struct http_server *srv, struct req *rq,
				struct MHD_Connection *conn, const char *method)
{
	struct conn_info tmp = { 0 };
	struct conn_info *ci = srv->client_auth ? conn_info_get(conn, &tmp) : &tmp;
	struct http_request request = {
		.method = method,
		.path = rq->path,
		.query = rq->query,
		.body = rq->len ? rq->body : NULL,
		.body_len = rq->len,
		.client_verified = ci->verified,
		.client_subject = ci->verified ? ci->subject : NULL,
		.remote_addr = rq->remote,
	};
	struct http_response resp = { 0, NULL };
	enum MHD_Result r;

	rq->route->fn(&request, &resp, srv->userdata);
	if (resp.status < 200 || resp.status > 599)
		http_error(&resp, 500, "internal_error", "the handler gave no valid status");
	rq->responded = true;
	log_debug("http", "%s %s %s: %u", rq->remote, method, rq->path, resp.status);
	r = queue(conn, resp.status, resp.body, NULL);
	free(tmp.subject);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct req *rq = *con_cls;

	if (!rq)
		return MHD_NO; /* out of memory in uri_log */
	if (rq->responded) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* the whole request, not just each read, must fit in the timeout */
	if (elapsed_s(&rq->start) > srv->timeout_s) {
		log_debug("http", "%s %s: request not complete after %u s, closing", rq->remote,
			  rq->path, srv->timeout_s);
		return MHD_NO;
	}
	if (!rq->begun) {
		rq->begun = true;
		return begin(srv, rq, conn, method);
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		return body_chunk(srv, rq, upload_data, n);
	}
	return dispatch(srv, rq, conn, method);
}

/* ---- start and stop ---- */

static int read_pem(const char *what, const char *path, char **ret, size_t *ret_len)
{
	uint8_t *buf;
	size_t len;
	int r;

	if (!path)
		return kq_err(-EINVAL, "no %s file given", what);
	r = kq_read_file(path, PEM_MAX, &buf, &len);
	if (r < 0)
		return kq_err_ctx(r, "%s: ", what);
	if (memchr(buf, '\0', len)) {
		kq_free_secret(buf, len);
		return kq_err(-EINVAL, "%s: %s: not a PEM file", what, path);
	}
	*ret = (char *)buf;
	if (ret_len)
		*ret_len = len;
	return 0;
}

static void server_free(struct http_server *s)
{
	if (!s)
		return;
	free(s->cert);
	kq_free_secret(s->key, s->key_len);
	free(s->ca);
	free(s);
}

int http_server_start(const struct http_server_config *cfg, const struct http_route *routes,
		      size_t n_routes, void *userdata, struct http_server **ret)
{
	struct http_server *s;
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	struct MHD_OptionItem extra[2];
	const union MHD_DaemonInfo *info;
	unsigned flags, threads, max_conn;
	char portstr[8];
	int r;

	if (!cfg || (!routes && n_routes))
		return kq_err(-EINVAL, "no server configuration");
	for (size_t i = 0; i < n_routes; i++)
		if (!routes[i].method || !routes[i].path || routes[i].path[0] != '/' || !routes[i].fn)
			return kq_err(-EINVAL, "route %zu: needs a method, a path starting with '/' and a handler", i);
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return kq_err(-ENOTSUP, "libmicrohttpd was built without TLS");

	s = calloc(1, sizeof(*s));
	if (!s)
		return kq_err(-ENOMEM, "out of memory");
	s->routes = routes;
	s->n_routes = n_routes;
	s->userdata = userdata;
	s->max_body = cfg->max_body ? cfg->max_body : HTTP_DEFAULT_MAX_BODY;
	s->timeout_s = cfg->timeout_s ? cfg->timeout_s : HTTP_DEFAULT_TIMEOUT_S;
	threads = cfg->threads ? cfg->threads : HTTP_DEFAULT_THREADS;
	max_conn = cfg->max_connections ? cfg->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
	if (max_conn < threads)
		max_conn = threads; /* libmicrohttpd shares the limit among its threads */

	r = read_pem("certificate", cfg->cert_file, &s->cert, NULL);
	if (r < 0)
		goto fail;
	r = read_pem("key", cfg->key_file, &s->key, &s->key_len);
	if (r < 0)
		goto fail;
	if (cfg->client_ca_file) {
		r = read_pem("client CA", cfg->client_ca_file, &s->ca, NULL);
		if (r < 0)
			goto fail;
		s->client_auth = true;
	}

	snprintf(portstr, sizeof(portstr), "%u", (unsigned)cfg->port);
	r = getaddrinfo(cfg->bind_addr ? cfg->bind_addr : "127.0.0.1", portstr, &hints, &ai);
	if (r != 0 || !ai) {
		r = kq_err(-EINVAL, "bind address '%s': not a numeric IP address",
			   cfg->bind_addr ? cfg->bind_addr : "");
		ai = NULL;
		goto fail;
	}

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_TLS | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	extra[0] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	extra[1] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	if (s->ca)
		extra[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, s->ca };

	s->starter = pthread_self();
	errno = 0;
	s->mhd = MHD_start_daemon(
		flags, cfg->port, NULL, NULL, on_request, s,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first, or some messages go to stderr */
		MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_HTTPS_MEM_CERT, s->cert,
		MHD_OPTION_HTTPS_MEM_KEY, s->key,
		MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_CONNECTION_TIMEOUT, s->timeout_s,
		MHD_OPTION_CONNECTION_LIMIT, max_conn,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_per_ip,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
		MHD_OPTION_STRICT_FOR_CLIENT, 1,
		MHD_OPTION_URI_LOG_CALLBACK, uri_log, s,
		MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s,
		MHD_OPTION_ARRAY, extra,
		MHD_OPTION_END);
	if (!s->mhd) {
		int e = errno == EADDRINUSE || errno == EACCES || errno == EADDRNOTAVAIL ? errno : EINVAL;

		r = kq_err(-e, "cannot start the HTTPS server on %s port %u: %s",
			   cfg->bind_addr ? cfg->bind_addr : "127.0.0.1", (unsigned)cfg->port,
			   s->start_error[0] ? s->start_error : "libmicrohttpd gave no reason");
		goto fail;
	}
	freeaddrinfo(ai);

	info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : cfg->port;
	*ret = s;
	return 0;
fail:
	if (ai)
		freeaddrinfo(ai);
	server_free(s);
	return r;
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->port;
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	server_free(s);
}
