/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTPS client over libcurl.
 *
 * A request is a struct call: call_setup() makes a configured easy handle,
 * call_finish() turns curl's result and the collected body into our result.
 * http_request_json() runs one with curl_easy_perform(); a curl-multi variant
 * (many requests in flight) adds the same handles to a multi handle and calls
 * call_finish() for each as it completes.
 */
#include "http/http.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "json/json.h"
#include "kq-config.h"

/* Nesting accepted in a response body. */
#define RESPONSE_MAX_DEPTH 64

struct call {
	CURL *curl;
	struct curl_slist *headers;
	char *req_body;
	const char *method;
	const char *url;
	uint8_t *resp;
	size_t resp_len, resp_cap, resp_max;
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct call *c = userdata;
	size_t n = size * nmemb; /* size is 1 */

	if (n > c->resp_max - c->resp_len) {
		c->too_big = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	if (kq_buf_reserve(&c->resp, &c->resp_cap, c->resp_len + n + 1, c->resp_max + 1) < 0)
		return 0;
	memcpy(c->resp + c->resp_len, data, n);
	c->resp_len += n;
	return n;
}

static void call_clear(struct call *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->headers);
	free(c->req_body);
	free(c->resp);
	*c = (struct call){ .curl = NULL };
}

static bool method_ok(const char *m)
{
	size_t n = m ? strlen(m) : 0;

	if (n == 0 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return false;
	return true;
}

static int add_header(struct call *c, const char *h)
{
	struct curl_slist *l = curl_slist_append(c->headers, h);

	if (!l)
		return kq_err(-ENOMEM, "out of memory");
	c->headers = l;
	return 0;
}

/* Sets up c (zeroed by the caller) for one request; call_clear() in any case. */
static int call_setup(struct call *c, const struct http_client_config *cfg, const char *method,
		      const char *url, struct json_object *body)
{
	CURL *h;
	CURLcode e = CURLE_OK;
	int r;

	if (!cfg || !cfg->ca_file)
		return kq_err(-EINVAL, "HTTP client: no CA file given");
	if (!!cfg->cert_file != !!cfg->key_file)
		return kq_err(-EINVAL, "HTTP client: a client certificate needs its key and vice versa");
	if (!method_ok(method))
		return kq_err(-EINVAL, "HTTP client: bad method");
	if (!url || strncasecmp(url, "https://", 8) != 0)
		return kq_err(-EINVAL, "HTTP client: %s: only https:// URLs", url ? url : "(null)");

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return kq_err(-EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));

	c->method = method;
	c->url = url;
	c->resp_max = cfg->max_response ? cfg->max_response : HTTP_DEFAULT_MAX_RESPONSE;
	if (c->resp_max > SIZE_MAX / 4)
		c->resp_max = SIZE_MAX / 4;
	c->curl = h = curl_easy_init();
	if (!h)
		return kq_err(-ENOMEM, "libcurl: cannot make a handle");

	if (body) {
		const char *s = json_object_to_json_string_ext(
			body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

		c->req_body = s ? strdup(s) : NULL;
		if (!c->req_body)
			return kq_err(-ENOMEM, "out of memory");
	}
	if ((r = add_header(c, "Accept: application/json")) < 0 ||
	    (body && (r = add_header(c, "Content-Type: application/json")) < 0) ||
	    (r = add_header(c, "Expect:")) < 0) /* no 100-continue round trip */
		return r;

#define SET(opt, val)                                           \
	do {                                                    \
		if (e == CURLE_OK)                              \
			e = curl_easy_setopt(h, opt, val);      \
	} while (0)

	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
#else
	SET(CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
	SET(CURLOPT_REDIR_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROXY, ""); /* ignore *_proxy in the environment */
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_USERAGENT, "kumquat/" KQ_VERSION);

	SET(CURLOPT_CAINFO, cfg->ca_file);
	SET(CURLOPT_CAPATH, NULL); /* only ca_file, not the system's CAs */
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (cfg->cert_file) {
		SET(CURLOPT_SSLCERT, cfg->cert_file);
		SET(CURLOPT_SSLCERTTYPE, "PEM");
		SET(CURLOPT_SSLKEY, cfg->key_file);
		SET(CURLOPT_SSLKEYTYPE, "PEM");
	}

	SET(CURLOPT_TIMEOUT_MS,
	    (long)(cfg->timeout_ms ? cfg->timeout_ms : HTTP_DEFAULT_CLIENT_TIMEOUT_MS));
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->resp_max);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_HTTPHEADER, c->headers);

	if (c->req_body) {
		SET(CURLOPT_POSTFIELDS, c->req_body);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->req_body));
		if (strcmp(method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, method);
	}
#undef SET
	if (e != CURLE_OK)
		return kq_err(e == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL, "%s %s: libcurl: %s",
			      method, url, curl_easy_strerror(e));
	return 0;
}

static int curl_errno(CURLcode e)
{
	switch (e) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_PEER_FAILED_VERIFICATION: /* also CURLE_SSL_CACERT */
		return -EKEYREJECTED;
	case CURLE_SSL_CONNECT_ERROR:
		return -ECONNABORTED;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_FILESIZE_EXCEEDED:
		return -E2BIG;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* Turns a finished transfer into the result of http_request_json(). */
static int call_finish(struct call *c, CURLcode e, long *ret_status, struct json_object **ret_body)
{
	struct json_object *o = NULL;
	long status = 0;
	int r;

	if (e == CURLE_FILESIZE_EXCEEDED || (e == CURLE_WRITE_ERROR && c->too_big))
		return kq_err(-E2BIG, "%s %s: response over the limit of %zu bytes", c->method,
			      c->url, c->resp_max);
	if (e == CURLE_WRITE_ERROR)
		return kq_err(-ENOMEM, "%s %s: out of memory", c->method, c->url);
	if (e != CURLE_OK)
		return kq_err(curl_errno(e), "%s %s: %s%s%s", c->method, c->url,
			      curl_easy_strerror(e), c->errbuf[0] ? ": " : "", c->errbuf);

	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (c->resp_len > 0) {
		r = json_parse_body(c->resp, c->resp_len, c->resp_max, RESPONSE_MAX_DEPTH, &o);
		if (r < 0)
			return kq_err_ctx(-EBADMSG, "%s %s: HTTP %ld, response is not JSON: ",
					  c->method, c->url, status);
	}
	*ret_status = status;
	*ret_body = o;
	return 0;
}

int http_request_json(const struct http_client_config *cfg, const char *method, const char *url,
		      struct json_object *body, long *ret_status, struct json_object **ret_body)
{
	struct call c = { .curl = NULL };
	int r;

	r = call_setup(&c, cfg, method, url, body);
	if (r >= 0)
		r = call_finish(&c, curl_easy_perform(c.curl), ret_status, ret_body);
	call_clear(&c);
	return r;
}
