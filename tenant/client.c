/* SPDX-License-Identifier: Apache-2.0 */
#include "client.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

bool client_option(struct client *cl, int c, const char *arg)
{
	switch (c) {
	case 'u': cl->url = arg; return true;
	case 'a': cl->ca = arg; return true;
	case 'c': cl->cert = arg; return true;
	case 'k': cl->key = arg; return true;
	default: return false;
	}
}

static const char *env_or(const char *v, const char *env)
{
	return v ? v : getenv(env);
}

int client_ready(struct client *cl, const char *url_env, const char *what)
{
	cl->url = env_or(cl->url, url_env);
	cl->ca = env_or(cl->ca, "KUMQUAT_CA");
	cl->cert = env_or(cl->cert, "KUMQUAT_CERT");
	cl->key = env_or(cl->key, "KUMQUAT_KEY");
	if (!cl->url || !cl->ca || !cl->cert || !cl->key)
		return cli_fail(KQ_EXIT_USAGE, "%s: --url, --ca, --cert and --key (or KUMQUAT_* variables) are needed",
				what);
	cl->cc = (struct http_client_config){ .ca_file = cl->ca, .cert_file = cl->cert, .key_file = cl->key,
					      .timeout_ms = 15000, .max_response = 64u << 20 };
	return KQ_EXIT_OK;
}

int client_call(const struct client *cl, const char *method, struct json_object *body,
		struct json_object **ret, const char *fmt, ...)
{
	_cleanup_free_ char *path = NULL, *url = NULL;
	struct json_object *resp = NULL, *err = NULL;
	char msg[1024];
	long status = 0;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&path, fmt, ap);
	va_end(ap);
	if (r < 0 || asprintf(&url, "%s%s", cl->url, path) < 0) {
		path = url = NULL;
		return cli_fail(KQ_EXIT_USAGE, "out of memory");
	}
	if (http_request_json(&cl->cc, method, url, body, &status, &resp) < 0)
		return cli_fail_lib(KQ_EXIT_INVALID, cl->service);
	if (status < 200 || status > 299) {
		json_object_object_get_ex(resp, "error", &err);
		if (!json_object_object_get_ex(err, "message", NULL))
			snprintf(msg, sizeof(msg), "no reason given");
		else
			client_text(err, "message", msg, sizeof(msg));
		cli_fail(KQ_EXIT_INVALID, "%s answered %ld: %s", cl->service, status, msg);
		json_object_put(resp);
		return KQ_EXIT_INVALID;
	}
	*ret = resp;
	return KQ_EXIT_OK;
}

int client_next_option(struct client *cl, int argc, char **argv, const struct option *opts, int base,
		       unsigned allowed, const char *what, const char *usage, int *ret_exit)
{
	int c, li = 0;

	opterr = 0; /* one line of our own instead of getopt's */
	while ((c = getopt_long(argc, argv, "", opts, &li)) != -1) {
		if (client_option(cl, c, optarg))
			continue;
		if (c == 'h') {
			fputs(usage, stdout);
			*ret_exit = KQ_EXIT_OK;
			return -2;
		}
		if (c < base) {
			*ret_exit = cli_fail(KQ_EXIT_USAGE, "%s: unknown option, or an option without its value: %s "
					     "(see --help)", what, argv[optind - 1]);
			return -2;
		}
		if (c - base >= 32 || !(allowed & (1u << (c - base)))) {
			*ret_exit = cli_fail(KQ_EXIT_USAGE, "%s: --%s is not an option of %s (see --help)", what,
					     opts[li].name, what);
			return -2;
		}
		return c;
	}
	return -1;
}

int client_get_list(const struct client *cl, const char *path, const char *key, const char *what, bool json,
		    struct json_object **ret, struct json_object **ret_list)
{
	struct json_object *resp = NULL, *l;
	int rc = client_call(cl, "GET", NULL, &resp, "%s", path);

	*ret = NULL;
	if (rc != KQ_EXIT_OK)
		return rc;
	if (json) {
		cli_print_json(resp);
		return KQ_EXIT_OK;
	}
	if (!json_object_object_get_ex(resp, key, &l) || !json_object_is_type(l, json_type_array)) {
		json_object_put(resp);
		return cli_fail(KQ_EXIT_INVALID, "%s: the answer has no %s list", cl->service, what);
	}
	*ret = resp;
	*ret_list = l;
	return KQ_EXIT_OK;
}

const char *client_text(struct json_object *o, const char *k, char *buf, size_t n)
{
	struct json_object *v;
	const char *s = json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "";
	size_t i;

	if (!s[0])
		s = "-";

	for (i = 0; s[i] && i + 1 < n; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[i]) {
		/* cut: drop a UTF-8 sequence left incomplete at the end */
		size_t j = i;

		while (j > 0 && ((unsigned char)buf[j - 1] & 0xc0) == 0x80)
			j--;
		if (j > 0 && (unsigned char)buf[j - 1] >= 0xc0) {
			unsigned char lead = (unsigned char)buf[j - 1];
			size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

			if (i - (j - 1) < want)
				i = j - 1;
		}
	}
	buf[i] = '\0';
	return buf;
}

void client_time(struct json_object *o, const char *k, char *buf, size_t n)
{
	struct json_object *v;
	time_t t;
	struct tm tm;

	if (!json_object_object_get_ex(o, k, &v) || !v) {
		snprintf(buf, n, "-");
		return;
	}
	if (!json_object_is_type(v, json_type_int)) {
		client_text(o, k, buf, n);
		return;
	}
	t = (time_t)json_object_get_int64(v);
	if (!gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "?");
}

bool client_uuid(const char *s, char ret[static 37])
{
	return kq_uuid_normalize(s, ret);
}

bool client_policy_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}
