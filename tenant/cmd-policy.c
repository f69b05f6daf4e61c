/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat policy add|show|list|delete: the policies of the verifier's REST API (docs/verifier.md). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "json/json.h"

static const char usage_text[] =
	"usage: kumquat policy add NAME --kind pcr|mb|ima --file FILE\n"
	"       kumquat policy show NAME [--json] [--document FILE]\n"
	"       kumquat policy list [--json]\n"
	"       kumquat policy delete NAME\n"
	"NAME is 1-64 of A-Z a-z 0-9 . _ -; policies are immutable: add a new one and\n"
	"point the agents at it with 'kumquat update'. FILE '-' is stdin (add) or\n"
	"stdout (show --document, which then prints nothing else).\n"
	"common options (or environment variables):\n"
	"  --url URL      the verifier, https://HOST:PORT             (KUMQUAT_VERIFIER_URL)\n"
	"  --ca FILE      CA of the verifier's certificate            (KUMQUAT_CA)\n"
	"  --cert FILE    client certificate from the deployment CA   (KUMQUAT_CERT)\n"
	"  --key FILE     its key                                      (KUMQUAT_KEY)\n"
	"Exit: 0 success, 1 the verifier refused or failed (reason on stderr), 2 usage.\n";

enum { O_KIND = 0x100, O_FILE, O_JSON, O_DOCUMENT };
#define BIT(o) (1u << ((o) - O_KIND))

struct args {
	const char *name, *kind, *file, *document;
	bool json;
};

static int run_add(const struct client *cl, const struct args *a)
{
	_cleanup_free_ uint8_t *doc = NULL;
	_cleanup_free_ char *b64 = NULL;
	struct json_object *body, *resp = NULL;
	size_t len;
	int rc;

	if (cli_read(a->file, &doc, &len) < 0)
		return KQ_EXIT_USAGE;
	if (kq_base64_encode(doc, len, &b64) < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "policy add");
	body = json_object_new_object();
	if (!body || cli_json_add(body, "name", json_object_new_string(a->name)) < 0 ||
	    cli_json_add(body, "kind", json_object_new_string(a->kind)) < 0 ||
	    cli_json_add(body, "document", json_object_new_string(b64)) < 0) {
		json_object_put(body);
		return cli_fail(KQ_EXIT_USAGE, "out of memory");
	}
	rc = client_call(cl, "POST", body, &resp, "/v1/policies");
	json_object_put(body);
	if (rc == KQ_EXIT_OK)
		printf("added policy %s (%s, %zu bytes)\n", a->name, a->kind, len);
	json_object_put(resp);
	return rc;
}

/* Writes the answer's decoded "document" to path ("-": stdout). */
static int write_document(struct json_object *resp, const char *path)
{
	_cleanup_free_ uint8_t *doc = NULL;
	struct json_object *v;
	size_t len;

	if (!json_object_object_get_ex(resp, "document", &v) || !json_object_is_type(v, json_type_string))
		return cli_fail(KQ_EXIT_INVALID, "verifier: the answer has no document");
	if (kq_base64_decode(json_object_get_string(v), KQ_CLI_MAX_FILE, &doc, &len) < 0)
		return cli_fail_lib(KQ_EXIT_INVALID, "verifier: the document");
	if (strcmp(path, "-") == 0) {
		if (fwrite(doc, 1, len, stdout) != len || fflush(stdout) != 0)
			return cli_fail(KQ_EXIT_USAGE, "cannot write the document to stdout");
		return KQ_EXIT_OK;
	}
	if (kq_write_file(path, doc, len) < 0)
		return cli_fail_lib(KQ_EXIT_USAGE, "cannot write the document");
	return KQ_EXIT_OK;
}

static int run_show(const struct client *cl, const struct args *a)
{
	static const char *const keys[] = { "name", "kind", "created", "summary" };
	struct json_object *resp = NULL, *v;
	int rc = client_call(cl, "GET", NULL, &resp, "/v1/policies/%s", a->name);

	if (rc == KQ_EXIT_OK && a->document)
		rc = write_document(resp, a->document);
	if (rc != KQ_EXIT_OK || (a->document && strcmp(a->document, "-") == 0)) {
		json_object_put(resp);
		return rc;
	}
	if (a->json) {
		cli_print_json(resp);
		return KQ_EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		char s[1024];

		if (strcmp(keys[i], "created") == 0)
			client_time(resp, keys[i], s, sizeof(s));
		else
			client_text(resp, keys[i], s, sizeof(s));
		printf("%s:%*s %s\n", keys[i], (int)(9 - strlen(keys[i])), "", s);
	}
	if (json_object_object_get_ex(resp, "document", &v) && json_object_is_type(v, json_type_string)) {
		/* its size from the base64 alone; --document FILE decodes and checks it */
		const char *b = json_object_get_string(v);
		size_t n = strlen(b);

		printf("document:  %zu bytes%s\n", n / 4 * 3 - (n >= 1 && b[n - 1] == '=') - (n >= 2 && b[n - 2] == '='),
		       a->document ? "" : " (--document FILE writes it out)");
	}
	json_object_put(resp);
	return KQ_EXIT_OK;
}

static int run_list(const struct client *cl, const struct args *a)
{
	struct json_object *resp, *l;
	int rc = client_get_list(cl, "/v1/policies", "policies", "policy", a->json, &resp, &l);

	if (rc != KQ_EXIT_OK || !resp)
		return rc;
	printf("%-24s  %-4s  %-20s  %s\n", "NAME", "KIND", "CREATED", "SUMMARY");
	for (size_t i = 0; i < json_object_array_length(l); i++) {
		struct json_object *o = json_object_array_get_idx(l, i);
		char name[72], kind[16], t[32], summary[256];

		client_time(o, "created", t, sizeof(t));
		printf("%-24s  %-4s  %-20s  %s\n", client_text(o, "name", name, sizeof(name)),
		       client_text(o, "kind", kind, sizeof(kind)), t, client_text(o, "summary", summary, sizeof(summary)));
	}
	json_object_put(resp);
	return KQ_EXIT_OK;
}

static int run_delete(const struct client *cl, const struct args *a)
{
	struct json_object *resp = NULL;
	int rc = client_call(cl, "DELETE", NULL, &resp, "/v1/policies/%s", a->name);

	if (rc == KQ_EXIT_OK)
		printf("deleted policy %s\n", a->name);
	json_object_put(resp);
	return rc;
}

static const struct sub {
	const char *name;
	bool takes_name;
	unsigned opts; /* BIT()s of the options it takes besides the common ones */
	int (*run)(const struct client *cl, const struct args *a);
} subs[] = {
	{ "add", true, BIT(O_KIND) | BIT(O_FILE), run_add },
	{ "show", true, BIT(O_JSON) | BIT(O_DOCUMENT), run_show },
	{ "list", false, BIT(O_JSON), run_list },
	{ "delete", true, 0, run_delete },
};

int cmd_policy(int argc, char **argv)
{
	static const struct option opts[] = {
		CLIENT_OPTIONS,
		{ "kind", required_argument, NULL, O_KIND },
		{ "file", required_argument, NULL, O_FILE },
		{ "json", no_argument, NULL, O_JSON },
		{ "document", required_argument, NULL, O_DOCUMENT },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct client cl = { .service = "verifier" };
	const struct sub *s = NULL;
	struct args a = { 0 };
	_cleanup_free_ char *what = NULL;
	int c, rc;

	if (argc < 2)
		return cli_fail(KQ_EXIT_USAGE, "policy: expected add, show, list or delete (see --help)");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_text, stdout);
		return KQ_EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			s = &subs[i];
	if (!s)
		return cli_fail(KQ_EXIT_USAGE, "policy: unknown subcommand '%s' (add, show, list, delete)", argv[1]);
	if (asprintf(&what, "policy %s", s->name) < 0) {
		what = NULL;
		return cli_fail(KQ_EXIT_USAGE, "out of memory");
	}
	optind = 2;
	while ((c = client_next_option(&cl, argc, argv, opts, O_KIND, s->opts, what, usage_text, &rc)) >= 0) {
		switch (c) {
		case O_KIND: a.kind = optarg; break;
		case O_FILE: a.file = optarg; break;
		case O_JSON: a.json = true; break;
		case O_DOCUMENT: a.document = optarg; break;
		default: break;
		}
	}
	if (c == -2)
		return rc;
	if (!s->takes_name && optind != argc)
		return cli_fail(KQ_EXIT_USAGE, "policy %s takes no arguments", s->name);
	if (s->takes_name) {
		if (optind != argc - 1)
			return cli_fail(KQ_EXIT_USAGE, "policy %s needs one policy NAME", s->name);
		a.name = argv[optind];
		if (!client_policy_name_ok(a.name))
			return cli_fail(KQ_EXIT_USAGE, "policy %s: '%s' is not a policy name (1-64 of A-Z a-z 0-9 . _ -)",
					s->name, a.name);
	}
	if (s->run == run_add) {
		if (!a.kind || !a.file)
			return cli_fail(KQ_EXIT_USAGE, "policy add: --kind and --file are needed");
		if (strcmp(a.kind, "pcr") != 0 && strcmp(a.kind, "mb") != 0 && strcmp(a.kind, "ima") != 0)
			return cli_fail(KQ_EXIT_USAGE, "policy add: --kind must be pcr, mb or ima, not '%s'", a.kind);
	}
	if ((rc = client_ready(&cl, "KUMQUAT_VERIFIER_URL", "policy")) != KQ_EXIT_OK)
		return rc;
	return s->run(&cl, &a);
}
