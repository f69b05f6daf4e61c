/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat registrar list|show ID|delete ID|revoke ID: the registrar's admin API. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client.h"

static const char usage_text[] =
	"usage: kumquat registrar list [--json]\n"
	"       kumquat registrar show ID [--json]\n"
	"       kumquat registrar delete ID\n"
	"       kumquat registrar revoke ID     (a revoked host vouches for no new guest; it cannot enrol again)\n"
	"common options (or environment variables):\n"
	"  --url URL      registrar, e.g. https://127.0.0.1:8891   (KUMQUAT_REGISTRAR_URL)\n"
	"  --ca FILE      CA of the registrar's certificate        (KUMQUAT_CA)\n"
	"  --cert FILE    client certificate from the deployment CA (KUMQUAT_CERT)\n"
	"  --key FILE     its key                                   (KUMQUAT_KEY)\n"
	"Exit: 0 success, 1 the registrar refused or failed (reason on stderr), 2 usage.\n";

static const char *str(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "-";
}

int cmd_registrar(int argc, char **argv)
{
	static const struct option opts[] = {
		CLIENT_OPTIONS,
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct client cl = { .service = "registrar" };
	const char *sub, *id = NULL;
	struct json_object *resp = NULL;
	bool json = false;
	int c, rc;

	if (argc < 2)
		return cli_fail(KQ_EXIT_USAGE, "registrar: expected list, show, delete or revoke (see --help)");
	sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fputs(usage_text, stdout);
		return KQ_EXIT_OK;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (client_option(&cl, c, optarg))
			continue;
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(usage_text, stdout); return KQ_EXIT_OK;
		default: return cli_fail(KQ_EXIT_USAGE, "registrar: bad option (see --help)");
		}
	}
	if (strcmp(sub, "list") == 0) {
		if (optind != argc)
			return cli_fail(KQ_EXIT_USAGE, "registrar list takes no arguments");
	} else if (strcmp(sub, "show") == 0 || strcmp(sub, "delete") == 0 || strcmp(sub, "revoke") == 0) {
		if (optind != argc - 1)
			return cli_fail(KQ_EXIT_USAGE, "registrar %s needs one agent ID", sub);
		id = argv[optind];
		for (const char *p = id; *p; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') || *p == '-'))
				return cli_fail(KQ_EXIT_USAGE, "registrar %s: '%s' is not an agent ID", sub, id);
	} else {
		return cli_fail(KQ_EXIT_USAGE, "registrar: unknown subcommand '%s' (list, show, delete, revoke)", sub);
	}
	rc = client_ready(&cl, "KUMQUAT_REGISTRAR_URL", "registrar");
	if (rc != KQ_EXIT_OK)
		return rc;
	if (strcmp(sub, "list") == 0) {
		struct json_object *agents;

		rc = client_get_list(&cl, "/v1/agents", "agents", "agent", json, &resp, &agents);
		if (rc != KQ_EXIT_OK || !resp)
			return rc;
		printf("%-36s  %-5s  %-8s  %-7s  %-20s  %s\n", "ID", "KIND", "EK CERT", "VTPM CA", "ACTIVATED", "CONTACT");
		for (size_t i = 0; i < json_object_array_length(agents); i++) {
			struct json_object *a = json_object_array_get_idx(agents, i), *v;
			char t[32];

			client_time(a, "activated", t, sizeof(t));
			printf("%-36s  %-5s  %-8s  %-7s  %-20s  %s\n", str(a, "id"), str(a, "kind"),
			       json_object_object_get_ex(a, "ek_cert", &v) && json_object_get_boolean(v) ? "yes" : "no",
			       json_object_object_get_ex(a, "vtpm_ca_name", &v) && v ? "yes" : "-", t, str(a, "contact"));
		}
		json_object_put(resp);
		return KQ_EXIT_OK;
	}
	if (strcmp(sub, "revoke") == 0) {
		struct json_object *empty = json_object_new_object();

		rc = client_call(&cl, "POST", empty, &resp, "/v1/agents/%s/revoke", id);
		json_object_put(empty);
		if (rc != KQ_EXIT_OK)
			return rc;
		json_object_put(resp);
		if (!json)
			printf("revoked %s\n", id);
		return KQ_EXIT_OK;
	}
	rc = client_call(&cl, strcmp(sub, "delete") == 0 ? "DELETE" : "GET", NULL, &resp, "/v1/agents/%s", id);
	if (rc != KQ_EXIT_OK)
		return rc;
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
		static const char *keys[] = { "id", "kind", "state", "ek_name", "ak_name", "vtpm_ca_name",
					      "payload_key_name", "contact", "vm_uuid", "host_id", "enrolments",
					      "ak_changes" };
		char t[32];
		struct json_object *v;

		for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
			printf("%-16s %s\n", keys[i], str(resp, keys[i]));
		printf("%-16s %s\n", "ek_cert",
		       json_object_object_get_ex(resp, "ek_cert", &v) && json_object_get_boolean(v) ? "yes" : "no");
		client_time(resp, "created", t, sizeof(t));
		printf("%-16s %s\n", "created", t);
		client_time(resp, "activated", t, sizeof(t));
		printf("%-16s %s\n", "activated", t);
		client_time(resp, "vtpm_ca_at", t, sizeof(t));
		printf("%-16s %s\n", "vtpm_ca_at", t);
		client_time(resp, "payload_key_at", t, sizeof(t));
		printf("%-16s %s\n", "payload_key_at", t);
	}
	json_object_put(resp);
	return KQ_EXIT_OK;
}
