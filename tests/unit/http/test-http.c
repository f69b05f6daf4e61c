/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/http over real HTTPS on 127.0.0.1: a fresh test PKI (gen-certs.sh), the
 * server on an ephemeral port, our client, and raw connections (plain TCP, or
 * TLS through curl's connect-only mode) that behave badly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "http/http.h"
#include "json/json.h"
#include "log/log.h"
#include "testlib.h"

#define MAX_BODY 4096
#define TIMEOUT_S 2

static char dir[] = "/tmp/kq-http.XXXXXX";
static struct http_server *srv;
static uint16_t port;

/* DIR/name; a ring of buffers so a few can be used at once */
static const char *P(const char *name)
{
	static char buf[8][PATH_MAX];
	static unsigned next;
	char *b = buf[next++ % 8];

	snprintf(b, PATH_MAX, "%s/%s", dir, name);
	return b;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- handlers ---- */

static void h_echo(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct json_object *in, *o;

	if (json_parse_body(req->body, req->body_len, MAX_BODY, 16, &in) < 0) {
		http_error(resp, 400, "bad_json", "%s", kq_errmsg());
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "echo", in);
	json_object_object_add(o, "verified", json_object_new_boolean(req->client_verified));
	if (req->client_subject)
		json_object_object_add(o, "subject", json_object_new_string(req->client_subject));
	json_object_object_add(o, "remote", json_object_new_string(req->remote_addr));
	resp->status = 200;
	resp->body = o;
}

static void h_hello(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "hello", json_object_new_string("world"));
	json_object_object_add(o, "path", json_object_new_string(req->path));
	if (req->query)
		json_object_object_add(o, "query", json_object_new_string(req->query));
	json_object_object_add(o, "userdata", json_object_new_string(ud));
	resp->status = 200;
	resp->body = o;
}

static void h_secure(const struct http_request *req, struct http_response *resp, void *ud)
{
	struct json_object *o = json_object_new_object();

	assert_true(req->client_verified);
	json_object_object_add(o, "subject", req->client_subject ?
				json_object_new_string(req->client_subject) : NULL);
	resp->status = 200;
	resp->body = o;
}

/* GET /v1/big?N: a body with an N-byte string */
static void h_big(const struct http_request *req, struct http_response *resp, void *ud)
{
	uint64_t n = 0;
	char *s;

	if (!req->query || kq_parse_uint(req->query, 1 << 24, &n) < 0) {
		http_error(resp, 400, "bad_query", "want a size");
		return;
	}
	s = malloc(n + 1);
	memset(s, 'x', n);
	s[n] = '\0';
	resp->body = json_object_new_object();
	json_object_object_add(resp->body, "data", json_object_new_string(s));
	free(s);
	resp->status = 200;
}

static void h_nostatus(const struct http_request *req, struct http_response *resp, void *ud)
{
	resp->body = json_object_new_object(); /* and no status: freed, 500 */
}

static void h_empty(const struct http_request *req, struct http_response *resp, void *ud)
{
	resp->status = 204;
}

static void h_slow(const struct http_request *req, struct http_response *resp, void *ud)
{
	usleep(1000 * 1000);
	resp->status = 200;
	resp->body = json_object_new_object();
}

static void h_error(const struct http_request *req, struct http_response *resp, void *ud)
{
	resp->body = json_object_new_object(); /* replaced by http_error */
	http_error(resp, 409, "conflict", "agent '%s' exists \xff\xfe", "a\"b");
}

static const struct http_route routes[] = {
	{ "POST", "/v1/echo", false, h_echo },
	{ "GET", "/v1/hello", false, h_hello },
	{ "PUT", "/v1/hello", false, h_hello },
	{ "GET", "/v1/agents/*", false, h_hello },
	{ "POST", "/v1/secure", true, h_echo },
	{ "GET", "/v1/secure", true, h_secure },
	{ "GET", "/v1/big", false, h_big },
	{ "GET", "/v1/nostatus", false, h_nostatus },
	{ "DELETE", "/v1/empty", false, h_empty },
	{ "GET", "/v1/slow", false, h_slow },
	{ "GET", "/v1/error", false, h_error },
};

static char userdata[] = "ud";

static struct http_server *start_server(const char *cert, const struct http_server_config *over)
{
	struct http_server_config cfg = {
		.bind_addr = "127.0.0.1", .port = 0,
		.cert_file = P(cert), .key_file = NULL, .client_ca_file = P("ca.pem"),
		.max_body = MAX_BODY, .threads = 4, .timeout_s = TIMEOUT_S,
	};
	char key[PATH_MAX];
	struct http_server *s;

	snprintf(key, sizeof(key), "%s/%.*s.key", dir, (int)(strlen(cert) - 4), cert);
	cfg.key_file = key;
	if (over) {
		cfg.max_connections = over->max_connections;
		cfg.max_per_ip = over->max_per_ip;
		cfg.threads = over->threads ? over->threads : cfg.threads;
	}
	if (http_server_start(&cfg, routes, ARRAY_SIZE(routes), userdata, &s) < 0) {
		fprintf(stderr, "server: %s\n", kq_errmsg());
		fail();
	}
	return s;
}

/* ---- client helpers ---- */

/* client: NULL (no certificate) or the base name of a cert/key pair */
static int request(uint16_t p, const char *client, const char *ca, const char *method,
		   const char *path, struct json_object *body, size_t max_response,
		   long *status, struct json_object **out)
{
	char cert[PATH_MAX], key[PATH_MAX], url[512];
	struct http_client_config cfg = {
		.ca_file = P(ca ? ca : "ca.pem"), .timeout_ms = 20000, .max_response = max_response,
	};

	if (client) {
		snprintf(cert, sizeof(cert), "%s/%s.pem", dir, client);
		snprintf(key, sizeof(key), "%s/%s.key", dir, client);
		cfg.cert_file = cert;
		cfg.key_file = key;
	}
	snprintf(url, sizeof(url), "https://127.0.0.1:%u%s", p, path);
	return http_request_json(&cfg, method, url, body, status, out);
}

static int req(const char *client, const char *method, const char *path,
	       struct json_object *body, long *status, struct json_object **out)
{
	return request(port, client, NULL, method, path, body, 0, status, out);
}

static const char *get_str(struct json_object *o, const char *k1, const char *k2)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k1, &v))
		return NULL;
	if (k2 && !json_object_object_get_ex(v, k2, &v))
		return NULL;
	return json_object_get_string(v);
}

static void expect_status(const char *client, const char *method, const char *path,
			  long want, const char *code)
{
	struct json_object *o = NULL;
	long status = 0;
	int r = req(client, method, path, NULL, &status, &o);

	if (r < 0)
		fprintf(stderr, "%s %s: %s\n", method, path, kq_errmsg());
	assert_int_equal(r, 0);
	assert_int_equal(status, want);
	if (code) {
		assert_non_null(o);
		assert_string_equal(get_str(o, "error", "code"), code);
		assert_non_null(get_str(o, "error", "message"));
	}
	json_object_put(o);
}

/* ---- raw connections ---- */

static int tcp_connect(uint16_t p)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(p) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Reads until the peer closes or timeout_ms pass; returns bytes read, *closed. */
static size_t fd_read_until_close(int fd, char *buf, size_t cap, int timeout_ms, bool *closed)
{
	size_t len = 0;
	double end = now_s() + timeout_ms / 1000.0;

	*closed = false;
	while (now_s() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n <= 0) {
			*closed = true;
			break;
		}
		len += (size_t)n;
		if (len >= cap - 1)
			break;
	}
	buf[len] = '\0';
	return len;
}

/* A TLS connection made by curl (connect-only) that we then drive by hand. */
static CURL *tls_connect(uint16_t p, const char *client)
{
	CURL *h = curl_easy_init();
	char url[64], cert[PATH_MAX], key[PATH_MAX];
	CURLcode e;

	snprintf(url, sizeof(url), "https://127.0.0.1:%u/", p);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(h, CURLOPT_CAINFO, P("ca.pem"));
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (client) {
		snprintf(cert, sizeof(cert), "%s/%s.pem", dir, client);
		snprintf(key, sizeof(key), "%s/%s.key", dir, client);
		curl_easy_setopt(h, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, key);
	}
	e = curl_easy_perform(h);
	if (e != CURLE_OK)
		fprintf(stderr, "tls_connect: %s\n", curl_easy_strerror(e));
	assert_int_equal(e, CURLE_OK);
	return h;
}

static curl_socket_t tls_fd(CURL *h)
{
	curl_socket_t fd;

	assert_int_equal(curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &fd), CURLE_OK);
	return fd;
}

/* Sends everything; false if the connection broke. */
static bool tls_send(CURL *h, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		size_t sent = 0;
		CURLcode e = curl_easy_send(h, p, len, &sent);

		if (e == CURLE_AGAIN) {
			struct pollfd pfd = { .fd = tls_fd(h), .events = POLLOUT };

			poll(&pfd, 1, 100);
			continue;
		}
		if (e != CURLE_OK)
			return false;
		p += sent;
		len -= sent;
	}
	return true;
}

static size_t tls_read_until_close(CURL *h, char *buf, size_t cap, int timeout_ms, bool *closed)
{
	size_t len = 0;
	double end = now_s() + timeout_ms / 1000.0;

	*closed = false;
	while (now_s() < end && len < cap - 1) {
		size_t n = 0;
		CURLcode e = curl_easy_recv(h, buf + len, cap - len - 1, &n);

		if (e == CURLE_AGAIN) {
			struct pollfd pfd = { .fd = tls_fd(h), .events = POLLIN };

			poll(&pfd, 1, 50);
			continue;
		}
		if (e != CURLE_OK || n == 0) {
			*closed = true;
			break;
		}
		len += n;
	}
	buf[len] = '\0';
	return len;
}

/* ---- tests ---- */

static void test_round_trip(void **state)
{
	static const char in[] = "{\"a\":[1,\"x\",{\"b\":true}],\"c\":\"caf\xc3\xa9\"}";
	struct json_object *body, *o = NULL, *v;
	long status = 0;

	assert_int_equal(json_parse_body((const uint8_t *)in, strlen(in), 1000, 8, &body), 0);
	assert_int_equal(req(NULL, "POST", "/v1/echo", body, &status, &o), 0);
	assert_int_equal(status, 200);
	assert_true(json_object_object_get_ex(o, "echo", &v));
	assert_true(json_object_equal(v, body));
	assert_true(json_object_object_get_ex(o, "verified", &v));
	assert_false(json_object_get_boolean(v));
	assert_null(get_str(o, "subject", NULL));
	assert_string_equal(get_str(o, "remote", NULL), "127.0.0.1");
	json_object_put(o);

	/* with a client certificate the handler sees who it is, on any route */
	assert_int_equal(req("client", "POST", "/v1/echo", body, &status, &o), 0);
	assert_int_equal(status, 200);
	assert_true(json_object_object_get_ex(o, "verified", &v));
	assert_true(json_object_get_boolean(v));
	assert_string_equal(get_str(o, "subject", NULL), "agent-1");
	json_object_put(o);
	json_object_put(body);

	assert_int_equal(req(NULL, "GET", "/v1/hello?x=1&y=%41", NULL, &status, &o), 0);
	assert_int_equal(status, 200);
	assert_string_equal(get_str(o, "hello", NULL), "world");
	assert_string_equal(get_str(o, "query", NULL), "x=1&y=%41");
	assert_string_equal(get_str(o, "userdata", NULL), "ud");
	json_object_put(o);

	/* prefix routes; paths stay raw */
	assert_int_equal(req(NULL, "GET", "/v1/agents/a%2Fb/c", NULL, &status, &o), 0);
	assert_int_equal(status, 200);
	assert_string_equal(get_str(o, "path", NULL), "/v1/agents/a%2Fb/c");
	json_object_put(o);

	/* an empty response body */
	assert_int_equal(req(NULL, "DELETE", "/v1/empty", NULL, &status, &o), 0);
	assert_int_equal(status, 204);
	assert_null(o);

	/* http_error: replaces a body, and keeps it valid UTF-8 */
	assert_int_equal(req(NULL, "GET", "/v1/error", NULL, &status, &o), 0);
	assert_int_equal(status, 409);
	assert_string_equal(get_str(o, "error", "code"), "conflict");
	assert_string_equal(get_str(o, "error", "message"), "agent 'a\"b' exists ??");
	json_object_put(o);
}

static void test_errors(void **state)
{
	struct json_object *o = NULL;
	long status;

	expect_status(NULL, "GET", "/v1/nothing", 404, "not_found");
	expect_status(NULL, "GET", "/", 404, "not_found");
	expect_status(NULL, "GET", "/v1/agents/", 404, "not_found");
	expect_status(NULL, "GET", "/v1/agents", 404, "not_found");
	expect_status(NULL, "GET", "/v1/hello/", 404, "not_found");
	expect_status(NULL, "DELETE", "/v1/hello", 405, "method_not_allowed");
	expect_status(NULL, "POST", "/v1/agents/x", 405, "method_not_allowed");
	expect_status(NULL, "GET", "/v1/nostatus", 500, "internal_error");

	/* a body the handler cannot parse: its own 400 */
	{
		struct json_object *s = json_object_new_string("just a string");

		assert_int_equal(req(NULL, "POST", "/v1/echo", s, &status, &o), 0);
		json_object_put(s);
		assert_int_equal(status, 200); /* a string is JSON */
		json_object_put(o);
	}
}

static void test_body_limit(void **state)
{
	struct json_object *body, *o = NULL;
	char *big = malloc(MAX_BODY + 1);
	long status = 0;
	int r;

	/* just under the limit: fine ("{"a":"..."}" is the string plus 8 bytes) */
	memset(big, 'x', MAX_BODY);
	big[MAX_BODY - 8] = '\0';
	body = json_object_new_object();
	json_object_object_add(body, "a", json_object_new_string(big));
	assert_int_equal(req(NULL, "POST", "/v1/echo", body, &status, &o), 0);
	assert_int_equal(status, 200);
	json_object_put(o);
	json_object_put(body);

	/* one byte over: 413 before the body is read (or the connection is cut) */
	big[MAX_BODY - 7] = '\0';
	big[MAX_BODY - 8] = 'x';
	body = json_object_new_object();
	json_object_object_add(body, "a", json_object_new_string(big));
	r = req(NULL, "POST", "/v1/echo", body, &status, &o);
	if (r == 0) {
		assert_int_equal(status, 413);
		assert_string_equal(get_str(o, "error", "code"), "body_too_large");
		json_object_put(o);
	} else {
		assert_int_equal(r, -ECONNRESET);
	}
	json_object_put(body);
	free(big);
}

static void test_body_limit_raw(void **state)
{
	char buf[4096];
	bool closed;
	CURL *h;
	size_t n;

	/* a huge Content-Length and no body: answered at once, nothing buffered */
	h = tls_connect(port, NULL);
	snprintf(buf, sizeof(buf), "POST /v1/echo HTTP/1.1\r\nHost: localhost\r\n"
		 "Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n");
	assert_true(tls_send(h, buf, strlen(buf)));
	n = tls_read_until_close(h, buf, sizeof(buf), 5000, &closed);
	assert_true(n > 0);
	assert_memory_equal(buf, "HTTP/1.1 413", 12);
	assert_non_null(strstr(buf, "body_too_large"));
	assert_non_null(strstr(buf, "Content-Type: application/json"));
	curl_easy_cleanup(h);

	/*
	 * A body left unread after an early answer must never be taken for the
	 * next request on the connection (request smuggling).
	 */
	{
		static const char inner[] = "GET /v1/hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
		static const char *const early[] = { "/v1/echo", "/v1/secure", "/v1/nothing" };

		for (size_t i = 0; i < ARRAY_SIZE(early); i++) {
			size_t clen = i == 0 ? MAX_BODY + 1 : sizeof(inner) - 1;
			char body[MAX_BODY + 1];

			memset(body, ' ', sizeof(body));
			memcpy(body, inner, sizeof(inner) - 1);
			h = tls_connect(port, NULL);
			snprintf(buf, sizeof(buf), "POST %s HTTP/1.1\r\nHost: localhost\r\n"
				 "Content-Length: %zu\r\n\r\n", early[i], clen);
			assert_true(tls_send(h, buf, strlen(buf)));
			tls_send(h, body, clen);
			n = tls_read_until_close(h, buf, sizeof(buf), 5000, &closed);
			assert_true(n > 0);
			assert_memory_equal(buf, "HTTP/1.1 4", 10);
			assert_null(strstr(buf, "world"));
			assert_null(strstr(buf + 1, "HTTP/1.1"));
			curl_easy_cleanup(h);
		}
	}

	/* chunked past the limit: cut off */
	h = tls_connect(port, NULL);
	snprintf(buf, sizeof(buf), "POST /v1/echo HTTP/1.1\r\nHost: localhost\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n");
	assert_true(tls_send(h, buf, strlen(buf)));
	memset(buf, 'a', sizeof(buf));
	for (int i = 0; i < 4; i++) {
		if (!tls_send(h, "800\r\n", 5) || !tls_send(h, buf, 0x800) || !tls_send(h, "\r\n", 2))
			break;
	}
	tls_send(h, "0\r\n\r\n", 5);
	n = tls_read_until_close(h, buf, sizeof(buf), 5000, &closed);
	assert_true(closed);
	assert_null(strstr(buf, "HTTP/1.1 200"));
	curl_easy_cleanup(h);

	/* a bad Content-Length */
	h = tls_connect(port, NULL);
	snprintf(buf, sizeof(buf), "POST /v1/echo HTTP/1.1\r\nHost: localhost\r\n"
		 "Content-Length: -1\r\n\r\n");
	assert_true(tls_send(h, buf, strlen(buf)));
	n = tls_read_until_close(h, buf, sizeof(buf), 5000, &closed);
	assert_true(n > 0);
	assert_memory_equal(buf, "HTTP/1.1 400", 12);
	curl_easy_cleanup(h);

	expect_status(NULL, "GET", "/v1/hello", 200, NULL);
}

static void test_request_target(void **state)
{
	static const char *const bad[] = {
		"GET http://localhost/v1/hello HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET /v1/hello?\x01 HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"GET /v1/\xc3\xa9 HTTP/1.1\r\nHost: localhost\r\n\r\n",
	};
	char buf[4096];
	bool closed;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CURL *h = tls_connect(port, NULL);
		size_t n;

		assert_true(tls_send(h, bad[i], strlen(bad[i])));
		n = tls_read_until_close(h, buf, sizeof(buf), 3000, &closed);
		/* refused by us (400 JSON) or by libmicrohttpd (400), never routed */
		if (n > 0 && strncmp(buf, "HTTP/1.1 400", 12) != 0) {
			fprintf(stderr, "request %zu: %s\n", i, buf);
			fail();
		}
		curl_easy_cleanup(h);
	}
	/* headers larger than the connection's buffer */
	{
		CURL *h = tls_connect(port, NULL);
		size_t big = 48 * 1024, n;
		char *hdr = malloc(big + 64);

		snprintf(hdr, big + 64, "GET /v1/hello HTTP/1.1\r\nHost: localhost\r\nX-Big: ");
		n = strlen(hdr);
		memset(hdr + n, 'a', big);
		memcpy(hdr + n + big, "\r\n\r\n", 4);
		tls_send(h, hdr, n + big + 4);
		n = tls_read_until_close(h, buf, sizeof(buf), 5000, &closed);
		assert_true(closed);
		if (n > 0 && strncmp(buf, "HTTP/1.1 4", 10) != 0) {
			fprintf(stderr, "big headers: %s\n", buf);
			fail();
		}
		free(hdr);
		curl_easy_cleanup(h);
	}
	expect_status(NULL, "GET", "/v1/hello", 200, NULL);
}

static void test_client_cert_route(void **state)
{
	struct json_object *o = NULL;
	long status = 0;

	expect_status(NULL, "GET", "/v1/secure", 401, "client_cert_required");
	expect_status("other-client", "GET", "/v1/secure", 403, "client_cert_rejected");
	expect_status("server-only", "GET", "/v1/secure", 403, "client_cert_rejected");
	assert_int_equal(req("client", "GET", "/v1/secure", NULL, &status, &o), 0);
	assert_int_equal(status, 200);
	assert_string_equal(get_str(o, "subject", NULL), "agent-1");
	json_object_put(o);

	/* an untrusted certificate is not "verified" on open routes either */
	{
		struct json_object *b = json_object_new_object(), *v;

		assert_int_equal(req("other-client", "POST", "/v1/echo", b, &status, &o), 0);
		json_object_put(b);
		assert_int_equal(status, 200);
		assert_true(json_object_object_get_ex(o, "verified", &v));
		assert_false(json_object_get_boolean(v));
		assert_null(get_str(o, "subject", NULL));
		json_object_put(o);
	}

	/* the 401 comes before the body is read */
	{
		struct json_object *b = json_object_new_object();

		assert_int_equal(req(NULL, "POST", "/v1/secure", b, &status, &o), 0);
		assert_int_equal(status, 401);
		json_object_put(o);
		json_object_put(b);
	}
}

/* Several requests on one connection: the certificate check is cached per connection. */
static void test_keep_alive(void **state)
{
	static const char two[] = "GET /v1/secure HTTP/1.1\r\nHost: localhost\r\n\r\n"
				  "GET /v1/secure HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
	char buf[8192], *second;
	bool closed;
	CURL *h;

	h = tls_connect(port, "client");
	assert_true(tls_send(h, two, strlen(two)));
	tls_read_until_close(h, buf, sizeof(buf), 5000, &closed);
	assert_true(closed);
	assert_memory_equal(buf, "HTTP/1.1 200", 12);
	second = strstr(buf + 1, "HTTP/1.1 ");
	assert_non_null(second);
	assert_memory_equal(second, "HTTP/1.1 200", 12);
	assert_non_null(strstr(second, "\"subject\":\"agent-1\""));
	curl_easy_cleanup(h);

	h = tls_connect(port, "other-client");
	assert_true(tls_send(h, two, strlen(two)));
	tls_read_until_close(h, buf, sizeof(buf), 5000, &closed);
	/* refused before the request was read to its end: the connection goes too */
	assert_true(closed);
	assert_memory_equal(buf, "HTTP/1.1 403", 12);
	second = strstr(buf + 1, "HTTP/1.1 ");
	assert_true(!second || strncmp(second, "HTTP/1.1 403", 12) == 0);
	curl_easy_cleanup(h);
}

static void test_server_without_client_ca(void **state)
{
	struct http_server_config cfg = {
		.cert_file = P("server.pem"), .key_file = P("server.key"),
	};
	struct json_object *o = NULL;
	struct http_server *s;
	long status;

	assert_int_equal(http_server_start(&cfg, routes, ARRAY_SIZE(routes), userdata, &s), 0);
	assert_int_equal(request(http_server_port(s), "client", NULL, "GET", "/v1/secure", NULL, 0,
				 &status, &o), 0);
	assert_int_equal(status, 401);
	json_object_put(o);
	http_server_stop(s);
}

static void test_client_errors(void **state)
{
	struct http_client_config cfg = { .ca_file = P("ca.pem") };
	struct json_object *o = NULL;
	struct http_server *s;
	long status;
	char url[128];
	int r;

	/* server certificate from a CA we do not trust */
	r = request(port, NULL, "other-ca.pem", "GET", "/v1/hello", NULL, 0, &status, &o);
	assert_int_equal(r, -EKEYREJECTED);
	assert_non_null(strstr(kq_errmsg(), "GET https://127.0.0.1:"));

	/* trusted CA, but the certificate names another host */
	s = start_server("wrong-host.pem", NULL);
	r = request(http_server_port(s), NULL, NULL, "GET", "/v1/hello", NULL, 0, &status, &o);
	assert_int_equal(r, -EKEYREJECTED);
	http_server_stop(s);

	/* the name matches when asked for by DNS name (localhost resolves to 127.0.0.1) */
	snprintf(url, sizeof(url), "https://localhost:%u/v1/hello", port);
	r = http_request_json(&cfg, "GET", url, NULL, &status, &o);
	if (r == 0) {
		assert_int_equal(status, 200);
		json_object_put(o);
	} else {
		assert_int_equal(r, -ECONNREFUSED); /* localhost is ::1 first here */
	}

	/* response over the limit */
	r = request(port, NULL, NULL, "GET", "/v1/big?5000", NULL, 1000, &status, &o);
	assert_int_equal(r, -E2BIG);
	r = request(port, NULL, NULL, "GET", "/v1/big?5000", NULL, 6000, &status, &o);
	assert_int_equal(r, 0);
	json_object_put(o);

	/* nobody listening */
	s = start_server("server.pem", NULL);
	{
		uint16_t p = http_server_port(s);

		http_server_stop(s);
		r = request(p, NULL, NULL, "GET", "/v1/hello", NULL, 0, &status, &o);
		assert_int_equal(r, -ECONNREFUSED);
	}

	/* timeout */
	cfg.timeout_ms = 300;
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/v1/slow", port);
	r = http_request_json(&cfg, "GET", url, NULL, &status, &o);
	assert_int_equal(r, -ETIMEDOUT);
	cfg.timeout_ms = 0;

	/* bad arguments */
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/hello", port);
	assert_int_equal(http_request_json(&cfg, "GET", url, NULL, &status, &o), -EINVAL);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/v1/hello", port);
	assert_int_equal(http_request_json(&cfg, "get", url, NULL, &status, &o), -EINVAL);
	assert_int_equal(http_request_json(&cfg, "GET", NULL, NULL, &status, &o), -EINVAL);
	cfg.ca_file = NULL;
	assert_int_equal(http_request_json(&cfg, "GET", url, NULL, &status, &o), -EINVAL);
	cfg.ca_file = P("nonexistent.pem");
	r = http_request_json(&cfg, "GET", url, NULL, &status, &o);
	assert_true(r == -EINVAL || r == -EKEYREJECTED);
	cfg.ca_file = P("ca.pem");
	cfg.cert_file = P("client.pem");
	assert_int_equal(http_request_json(&cfg, "GET", url, NULL, &status, &o), -EINVAL);
}

/* A server that answers every request with text, not JSON. */
static enum MHD_Result text_handler(void *cls, struct MHD_Connection *conn, const char *url,
				    const char *method, const char *version, const char *data,
				    size_t *data_size, void **con_cls)
{
	static const char text[] = "<html>not json</html>";
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result r = MHD_queue_response(conn, 200, resp);

	MHD_destroy_response(resp);
	return r;
}

static void test_client_not_json(void **state)
{
	uint8_t *cert, *key;
	size_t len;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	struct json_object *o = NULL;
	long status;
	int r;

	assert_int_equal(kq_read_file(P("server.pem"), 1 << 20, &cert, &len), 0);
	assert_int_equal(kq_read_file(P("server.key"), 1 << 20, &key, &len), 0);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL,
			     text_handler, NULL, MHD_OPTION_HTTPS_MEM_CERT, cert,
			     MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
	assert_non_null(d);
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	r = request(info->port, NULL, NULL, "GET", "/", NULL, 0, &status, &o);
	assert_int_equal(r, -EBADMSG);
	assert_non_null(strstr(kq_errmsg(), "not JSON"));
	MHD_stop_daemon(d);
	free(cert);
	free(key);
}

static void test_plain_http_and_garbage(void **state)
{
	char buf[4096];
	bool closed;
	int fd;

	/* plain HTTP to the TLS port */
	fd = tcp_connect(port);
	snprintf(buf, sizeof(buf), "GET /v1/hello HTTP/1.1\r\nHost: localhost\r\n\r\n");
	assert_true(send(fd, buf, strlen(buf), MSG_NOSIGNAL) > 0);
	fd_read_until_close(fd, buf, sizeof(buf), 5000, &closed);
	assert_true(closed);
	assert_null(strstr(buf, "world"));
	close(fd);

	/* random bytes, a truncated ClientHello, and a client that just leaves */
	fd = tcp_connect(port);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 131 + 7);
	send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
	fd_read_until_close(fd, buf, sizeof(buf), 5000, &closed);
	close(fd);

	fd = tcp_connect(port);
	send(fd, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, MSG_NOSIGNAL);
	close(fd);

	fd = tcp_connect(port);
	close(fd);

	expect_status(NULL, "GET", "/v1/hello", 200, NULL);
}

static void test_slowloris(void **state)
{
	char buf[1024];
	bool closed;
	double t0;
	CURL *h;
	int fd;

	/* headers that never end: closed after the idle timeout */
	h = tls_connect(port, NULL);
	snprintf(buf, sizeof(buf), "GET /v1/hello HTTP/1.1\r\nHost: localhost\r\n");
	assert_true(tls_send(h, buf, strlen(buf)));
	t0 = now_s();
	tls_read_until_close(h, buf, sizeof(buf), (TIMEOUT_S + 5) * 1000, &closed);
	assert_true(closed);
	assert_true(now_s() - t0 < TIMEOUT_S + 4);
	curl_easy_cleanup(h);

	/* no TLS handshake at all */
	fd = tcp_connect(port);
	t0 = now_s();
	fd_read_until_close(fd, buf, sizeof(buf), (TIMEOUT_S + 5) * 1000, &closed);
	assert_true(closed);
	assert_true(now_s() - t0 < TIMEOUT_S + 4);
	close(fd);

	/* a body dribbled a byte at a time, never idle for long: the request deadline */
	h = tls_connect(port, NULL);
	snprintf(buf, sizeof(buf), "POST /v1/echo HTTP/1.1\r\nHost: localhost\r\n"
		 "Content-Length: 1000\r\n\r\n");
	assert_true(tls_send(h, buf, strlen(buf)));
	t0 = now_s();
	closed = false;
	while (!closed && now_s() - t0 < TIMEOUT_S + 6) {
		size_t n = 0;
		CURLcode e;

		if (!tls_send(h, " ", 1))
			break;
		usleep(300 * 1000);
		e = curl_easy_recv(h, buf, sizeof(buf), &n);
		closed = e != CURLE_AGAIN && (e != CURLE_OK || n == 0);
	}
	assert_true(now_s() - t0 < TIMEOUT_S + 4);
	curl_easy_cleanup(h);

	expect_status(NULL, "GET", "/v1/hello", 200, NULL);
}

static void test_connection_limit(void **state)
{
	struct http_server_config over = { .max_connections = 4, .threads = 2 };
	struct http_server *s = start_server("server.pem", &over);
	uint16_t p = http_server_port(s);
	struct json_object *o = NULL;
	int fds[32];
	long status;

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		fds[i] = tcp_connect(p); /* the kernel accepts; the server drops the excess */
	usleep(200 * 1000);
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close(fds[i]);
	usleep(200 * 1000);
	assert_int_equal(request(p, NULL, NULL, "GET", "/v1/hello", NULL, 0, &status, &o), 0);
	assert_int_equal(status, 200);
	json_object_put(o);
	http_server_stop(s);

	/* per-address limit */
	over = (struct http_server_config){ .max_per_ip = 2 };
	s = start_server("server.pem", &over);
	p = http_server_port(s);
	fds[0] = tcp_connect(p);
	fds[1] = tcp_connect(p);
	usleep(200 * 1000);
	/* a third connection from 127.0.0.1 is closed at once */
	{
		char buf[16];
		bool closed;
		int fd = tcp_connect(p);

		fd_read_until_close(fd, buf, sizeof(buf), 3000, &closed);
		assert_true(closed);
		close(fd);
	}
	close(fds[0]);
	close(fds[1]);
	usleep(200 * 1000);
	assert_int_equal(request(p, NULL, NULL, "GET", "/v1/hello", NULL, 0, &status, &o), 0);
	json_object_put(o);
	http_server_stop(s);
}

struct worker {
	int id;
	int ok;
};

static void *worker(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 20; i++) {
		struct json_object *body = json_object_new_object(), *o = NULL, *v;
		long status = 0;

		json_object_object_add(body, "worker", json_object_new_int(w->id));
		json_object_object_add(body, "i", json_object_new_int(i));
		if (req(i % 2 ? "client" : NULL, "POST", i % 3 ? "/v1/echo" : "/v1/secure", body,
			&status, &o) == 0 && (status == 200 || (status == 401 && i % 2 == 0)) &&
		    (status != 200 || (json_object_object_get_ex(o, "echo", &v) &&
				       json_object_equal(v, body))))
			w->ok++;
		json_object_put(o);
		json_object_put(body);
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	pthread_t th[8];
	struct worker w[8];

	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ok, 20);
	}
}

static void test_start_errors(void **state)
{
	struct http_server_config cfg = {
		.cert_file = P("server.pem"), .key_file = P("server.key"), .port = port,
	};
	struct http_server *s;

	/* the port is taken */
	assert_int_equal(http_server_start(&cfg, routes, ARRAY_SIZE(routes), NULL, &s), -EADDRINUSE);
	assert_non_null(strstr(kq_errmsg(), "cannot start"));
	cfg.port = 0;
	cfg.bind_addr = "localhost";
	assert_int_equal(http_server_start(&cfg, routes, ARRAY_SIZE(routes), NULL, &s), -EINVAL);
	cfg.bind_addr = NULL;
	cfg.cert_file = NULL;
	assert_int_equal(http_server_start(&cfg, routes, ARRAY_SIZE(routes), NULL, &s), -EINVAL);
	cfg.cert_file = P("nonexistent.pem");
	assert_int_equal(http_server_start(&cfg, routes, ARRAY_SIZE(routes), NULL, &s), -ENOENT);
	/* a key that does not match the certificate */
	cfg.cert_file = P("server.pem");
	cfg.key_file = P("client.key");
	assert_true(http_server_start(&cfg, routes, ARRAY_SIZE(routes), NULL, &s) < 0);
	assert_non_null(strstr(kq_errmsg(), "certificate"));
	cfg.key_file = P("server.key");
	{
		struct http_route bad = { "GET", "no-slash", false, h_hello };

		assert_int_equal(http_server_start(&cfg, &bad, 1, NULL, &s), -EINVAL);
	}
	/* IPv6 loopback, if there is one */
	cfg.bind_addr = "::1";
	if (http_server_start(&cfg, routes, ARRAY_SIZE(routes), NULL, &s) == 0) {
		assert_true(http_server_port(s) > 0);
		http_server_stop(s);
	}
	http_server_stop(NULL);
}

static int group_setup(void **state)
{
	const char *src = getenv("KQ_SOURCE");
	char cmd[PATH_MAX * 2];

	if (!mkdtemp(dir))
		return -1;
	snprintf(cmd, sizeof(cmd), "sh '%s/tests/unit/http/gen-certs.sh' '%s'", src, dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "gen-certs.sh failed\n");
		return -1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (getenv("KQ_TEST_DEBUG"))
		log_setup(LOG_DEBUG, false); /* the server's request and error log */
	srv = start_server("server.pem", NULL);
	port = http_server_port(srv);
	return port ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	http_server_stop(srv);
	curl_global_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_body_limit_raw),
		cmocka_unit_test(test_request_target),
		cmocka_unit_test(test_client_cert_route),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_server_without_client_ca),
		cmocka_unit_test(test_client_errors),
		cmocka_unit_test(test_client_not_json),
		cmocka_unit_test(test_plain_http_and_garbage),
		cmocka_unit_test(test_slowloris),
		cmocka_unit_test(test_connection_limit),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_start_errors),
	};

	if (!getenv("KQ_SOURCE")) {
		fprintf(stderr, "SKIP: KQ_SOURCE not set (run through meson test)\n");
		return KQ_TEST_SKIP;
	}
	if (system("command -v openssl >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIP: the openssl command is not installed\n");
		return KQ_TEST_SKIP;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
