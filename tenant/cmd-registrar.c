/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat registrar list|show ID|delete ID: the registrar's admin API. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "http/http.h"

static const char usage_text[] =
	"usage: kumquat registrar list [--json]\n"
	"       kumquat registrar show ID [--json]\n"
	"       kumquat registrar delete ID\n"
	"common options (or environment variables):\n"
	"  --url URL      registrar, e.g. https://127.0.0.1:8891   (KUMQUAT_REGISTRAR_URL)\n"
	"  --ca FILE      CA of the registrar's certificate        (KUMQUAT_CA)\n"
	"  --cert FILE    client certificate from the deployment CA (KUMQUAT_CERT)\n"
	"  --key FILE     its key                                   (KUMQUAT_KEY)\n"
	"Exit: 0 success, 1 the registrar refused or failed (reason on stderr), 2 usage.\n";

static const char *env_or(const char *v, const char *env)
{
	return v ? v : getenv(env);
}

static int call(const struct http_client_config *cc, const char *method, const char *base, const char *path,
		struct json_object **ret)
{
	_cleanup_free_ char *url = NULL;
	struct json_object *resp = NULL, *err, *m;
	long status = 0;
	int r;

	if (asprintf(&url, "%s%s", base, path) < 0)
		return cli_fail(KQ_EXIT_USAGE, "out of memory");
	r = http_request_json(cc, method, url, NULL, &status, &resp);
	if (r < 0)
		return cli_fail_lib(KQ_EXIT_INVALID, "registrar");
	if (status < 200 || status > 299) {
		const char *msg = resp && json_object_object_get_ex(resp, "error", &err) &&
					  json_object_object_get_ex(err, "message", &m)
					  ? json_object_get_string(m) : "no reason given";
		cli_fail(KQ_EXIT_INVALID, "registrar answered %ld: %s", status, msg);
		json_object_put(resp);
		return KQ_EXIT_INVALID;
	}
	*ret = resp;
	return KQ_EXIT_OK;
}

static const char *str(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "-";
}

static void when(struct json_object *o, const char *k, char *buf, size_t n)
{
	struct json_object *v;
	time_t t;
	struct tm tm;

	if (!json_object_object_get_ex(o, k, &v) || !v) {
		snprintf(buf, n, "-");
		return;
	}
	t = (time_t)json_object_get_int64(v);
	if (!gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(buf, n, "?");
}

int cmd_registrar(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "ca", required_argument, NULL, 'a' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *url = NULL, *ca = NULL, *cert = NULL, *key = NULL, *sub, *id = NULL;
	struct json_object *resp = NULL;
	bool json = false;
	int c, rc;

	if (argc < 2)
		return cli_fail(KQ_EXIT_USAGE, "registrar: expected list, show or delete (see --help)");
	sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fputs(usage_text, stdout);
		return KQ_EXIT_OK;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': url = optarg; break;
		case 'a': ca = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(usage_text, stdout); return KQ_EXIT_OK;
		default: return cli_fail(KQ_EXIT_USAGE, "registrar: bad option (see --help)");
		}
	}
	if (strcmp(sub, "list") == 0) {
		if (optind != argc)
			return cli_fail(KQ_EXIT_USAGE, "registrar list takes no arguments");
	} else if (strcmp(sub, "show") == 0 || strcmp(sub, "delete") == 0) {
		if (optind != argc - 1)
			return cli_fail(KQ_EXIT_USAGE, "registrar %s needs one agent ID", sub);
		id = argv[optind];
		for (const char *p = id; *p; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') || *p == '-'))
				return cli_fail(KQ_EXIT_USAGE, "registrar %s: '%s' is not an agent ID", sub, id);
	} else {
		return cli_fail(KQ_EXIT_USAGE, "registrar: unknown subcommand '%s' (list, show, delete)", sub);
	}
	url = env_or(url, "KUMQUAT_REGISTRAR_URL");
	ca = env_or(ca, "KUMQUAT_CA");
	cert = env_or(cert, "KUMQUAT_CERT");
	key = env_or(key, "KUMQUAT_KEY");
	if (!url || !ca || !cert || !key)
		return cli_fail(KQ_EXIT_USAGE, "registrar: --url, --ca, --cert and --key (or KUMQUAT_* variables) are needed");

	struct http_client_config cc = { .ca_file = ca, .cert_file = cert, .key_file = key,
					 .timeout_ms = 15000, .max_response = 64u << 20 };
	if (strcmp(sub, "list") == 0) {
		struct json_object *agents;

		rc = call(&cc, "GET", url, "/v1/agents", &resp);
		if (rc != KQ_EXIT_OK)
			return rc;
		if (json) {
			cli_print_json(resp);
			return KQ_EXIT_OK;
		}
		if (!json_object_object_get_ex(resp, "agents", &agents) || !json_object_is_type(agents, json_type_array)) {
			json_object_put(resp);
			return cli_fail(KQ_EXIT_INVALID, "registrar: the answer has no agent list");
		}
		printf("%-36s  %-5s  %-8s  %-7s  %-20s  %s\n", "ID", "KIND", "EK CERT", "VTPM CA", "ACTIVATED", "CONTACT");
		for (size_t i = 0; i < json_object_array_length(agents); i++) {
			struct json_object *a = json_object_array_get_idx(agents, i), *v;
			char t[32];

			when(a, "activated", t, sizeof(t));
			printf("%-36s  %-5s  %-8s  %-7s  %-20s  %s\n", str(a, "id"), str(a, "kind"),
			       json_object_object_get_ex(a, "ek_cert", &v) && json_object_get_boolean(v) ? "yes" : "no",
			       json_object_object_get_ex(a, "vtpm_ca_name", &v) && v ? "yes" : "-", t, str(a, "contact"));
		}
		json_object_put(resp);
		return KQ_EXIT_OK;
	}
	{
		_cleanup_free_ char *path = NULL;

		if (asprintf(&path, "/v1/agents/%s", id) < 0)
			return cli_fail(KQ_EXIT_USAGE, "out of memory");
		rc = call(&cc, strcmp(sub, "delete") == 0 ? "DELETE" : "GET", url, path, &resp);
		if (rc != KQ_EXIT_OK)
			return rc;
	}
	if (strcmp(sub, "delete") == 0) {
		json_object_put(resp);
		if (!json)
			printf("deleted %s\n", id);
		return KQ_EXIT_OK;
	}
	if (json) {
		cli_print_json(resp);
		return KQ_EXIT_OK;
	}
	{
		static const char *keys[] = { "id", "kind", "state", "ek_name", "ak_name", "vtpm_ca_name", "contact",
					      "enrolments", "ak_changes" };
		char t[32];
		struct json_object *v;

		for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
			printf("%-13s %s\n", keys[i], str(resp, keys[i]));
		printf("%-13s %s\n", "ek_cert",
		       json_object_object_get_ex(resp, "ek_cert", &v) && json_object_get_boolean(v) ? "yes" : "no");
		when(resp, "created", t, sizeof(t));
		printf("%-13s %s\n", "created", t);
		when(resp, "activated", t, sizeof(t));
		printf("%-13s %s\n", "activated", t);
		when(resp, "vtpm_ca_at", t, sizeof(t));
		printf("%-13s %s\n", "vtpm_ca_at", t);
	}
	json_object_put(resp);
	return KQ_EXIT_OK;
}
