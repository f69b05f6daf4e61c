/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat add|update|delete|status|list: the agents of the verifier's REST API (docs/verifier.md). */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "crypto/crypto.h"

static const char usage_text[] =
	"usage: kumquat add ID --address HOST:PORT [--host HOST-ID] [--interval S] [--bank ALG]\n"
	"                   [--pcr-policy NAME] [--mb-policy NAME] [--ima-policy NAME] [--revocations none|host|all]\n"
	"       kumquat update ID [--address HOST:PORT] [--interval S] [--bank ALG] [--revocations none|host|all]\n"
	"                   [--pcr-policy NAME|--no-pcr-policy] [--mb-policy NAME|--no-mb-policy]\n"
	"                   [--ima-policy NAME|--no-ima-policy] [--stop|--resume]\n"
	"       kumquat delete ID\n"
	"       kumquat status ID [--json] [--history]\n"
	"       kumquat list [--json]\n"
	"ID is the host's UUID at the registrar, HOST:PORT its host agent ([ADDR]:PORT for\n"
	"IPv6), S the seconds between rounds (0-86400), ALG its PCR bank (sha256 unless\n"
	"given), NAME a policy from 'kumquat policy add'. A guest (enrolled as one at the\n"
	"registrar) is attested through its host's deep quote: add its host first; --host\n"
	"names it (the registrar's record says which host it is anyway). --revocations: the\n"
	"signed revocation notices the agent is sent when another fails (host: its host and\n"
	"the host's guests; all: every agent; none, the default).\n"
	"common options (or environment variables):\n"
	"  --url URL      the verifier, https://HOST:PORT             (KUMQUAT_VERIFIER_URL)\n"
	"  --ca FILE      CA of the verifier's certificate            (KUMQUAT_CA)\n"
	"  --cert FILE    client certificate from the deployment CA   (KUMQUAT_CERT)\n"
	"  --key FILE     its key                                      (KUMQUAT_KEY)\n"
	"Exit: 0 success, 1 the verifier refused or failed (reason on stderr), 2 usage;\n"
	"status exits 0 only when the agent is attesting.\n";

enum {
	O_ADDRESS = 0x100,
	O_INTERVAL,
	O_BANK,
	O_PCR, /* O_PCR + i and O_NO_PCR + i for policies[i] */
	O_MB,
	O_IMA,
	O_NO_PCR,
	O_NO_MB,
	O_NO_IMA,
	O_STOP,
	O_RESUME,
	O_JSON,
	O_HISTORY,
	O_HOST,
	O_REVOCATIONS,
};
#define BIT(o) (1u << ((o) - O_ADDRESS))
#define SETTINGS \
	(BIT(O_ADDRESS) | BIT(O_INTERVAL) | BIT(O_BANK) | BIT(O_PCR) | BIT(O_MB) | BIT(O_IMA) | BIT(O_REVOCATIONS))
#define CHANGES (SETTINGS | BIT(O_NO_PCR) | BIT(O_NO_MB) | BIT(O_NO_IMA) | BIT(O_STOP) | BIT(O_RESUME))

/* The agent's policies, in the order of O_PCR.. and O_NO_PCR.. */
static const struct {
	const char *field, *option;
} policies[] = {
	{ "pcr_policy", "pcr-policy" },
	{ "mb_policy", "mb-policy" },
	{ "ima_policy", "ima-policy" },
};

struct args {
	const char *verb;
	char id[37];
	unsigned given; /* BIT()s of the options given */
	const char *address, *bank, *revocations;
	char host[37];
	uint64_t interval;
	const char *policy[ARRAY_SIZE(policies)];
	bool json, history;
};

/* HOST:PORT (a DNS name or IPv4 address) or [IPv6]:PORT; port 1-65535. */
static bool address_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	uint64_t port;
	size_t n;

	if (!colon || kq_parse_uint(colon + 1, 65535, &port) < 0 || port == 0)
		return false;
	n = (size_t)(colon - s);
	if (s[0] == '[') {
		char a[INET6_ADDRSTRLEN];
		struct in6_addr in6;

		if (n < 3 || s[n - 1] != ']' || n - 2 >= sizeof(a))
			return false;
		memcpy(a, s + 1, n - 2);
		a[n - 2] = '\0';
		return inet_pton(AF_INET6, a, &in6) == 1;
	}
	if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

/* Stores option c of a, checking its value. */
static int take(struct args *a, int c, const char *arg)
{
	uint16_t alg;

	switch (c) {
	case O_ADDRESS:
		if (!address_ok(arg))
			return cli_fail(KQ_EXIT_USAGE, "%s: --address '%s' is not HOST:PORT ([ADDR]:PORT for IPv6, port 1-65535)",
					a->verb, arg);
		a->address = arg;
		break;
	case O_INTERVAL:
		if (kq_parse_uint(arg, 86400, &a->interval) < 0)
			return cli_fail(KQ_EXIT_USAGE, "%s: --interval must be 0-86400 seconds, not '%s'", a->verb, arg);
		break;
	case O_BANK:
		alg = kq_hash_from_name(arg);
		if (!alg || alg == KQ_ALG_SM3_256) /* the verifier attests SHA banks only */
			return cli_fail(KQ_EXIT_USAGE, "%s: --bank must be sha1, sha256, sha384 or sha512, not '%s'",
					a->verb, arg);
		a->bank = kq_hash_name(alg);
		break;
	case O_PCR:
	case O_MB:
	case O_IMA:
		if (!client_policy_name_ok(arg))
			return cli_fail(KQ_EXIT_USAGE, "%s: '%s' is not a policy name (1-64 of A-Z a-z 0-9 . _ -)", a->verb, arg);
		a->policy[c - O_PCR] = arg;
		break;
	case O_REVOCATIONS:
		if (strcmp(arg, "none") != 0 && strcmp(arg, "host") != 0 && strcmp(arg, "all") != 0)
			return cli_fail(KQ_EXIT_USAGE, "%s: --revocations must be none, host or all, not '%s'", a->verb, arg);
		a->revocations = arg;
		break;
	case O_JSON: a->json = true; break;
	case O_HISTORY: a->history = true; break;
	case O_HOST:
		if (!client_uuid(arg, a->host))
			return cli_fail(KQ_EXIT_USAGE, "%s: --host '%s' is not a host ID (a UUID)", a->verb, arg);
		break;
	default: break; /* O_NO_*, O_STOP, O_RESUME: only recorded in given */
	}
	a->given |= BIT(c);
	return KQ_EXIT_OK;
}

/* The POST (with the id) or PATCH body: exactly the settings given. */
static int agent_body(const struct args *a, bool with_id, struct json_object **ret)
{
	struct json_object *o = json_object_new_object();
	int r = o ? 0 : -ENOMEM;

	if (r == 0 && with_id)
		r = cli_json_add(o, "id", json_object_new_string(a->id));
	if (r == 0 && a->host[0])
		r = cli_json_add(o, "host", json_object_new_string(a->host));
	if (r == 0 && a->address)
		r = cli_json_add(o, "address", json_object_new_string(a->address));
	if (r == 0 && (a->given & BIT(O_INTERVAL)))
		r = cli_json_add(o, "interval", json_object_new_int64((int64_t)a->interval));
	if (r == 0 && a->bank)
		r = cli_json_add(o, "bank", json_object_new_string(a->bank));
	if (r == 0 && a->revocations)
		r = cli_json_add(o, "revocations", json_object_new_string(a->revocations));
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(policies); i++) {
		if (a->policy[i])
			r = cli_json_add(o, policies[i].field, json_object_new_string(a->policy[i]));
		else if ((a->given & BIT(O_NO_PCR + (int)i)) && json_object_object_add(o, policies[i].field, NULL) < 0)
			r = -ENOMEM;
	}
	if (r == 0 && (a->given & BIT(O_STOP)))
		r = cli_json_add(o, "stop", json_object_new_boolean(1));
	if (r == 0 && (a->given & BIT(O_RESUME)))
		r = cli_json_add(o, "resume", json_object_new_boolean(1));
	if (r < 0) {
		json_object_put(o);
		return cli_fail(KQ_EXIT_USAGE, "out of memory");
	}
	*ret = o;
	return KQ_EXIT_OK;
}

static int run_add(const struct client *cl, const struct args *a)
{
	struct json_object *body = NULL, *resp = NULL;
	int rc;

	if ((rc = agent_body(a, true, &body)) != KQ_EXIT_OK)
		return rc;
	rc = client_call(cl, "POST", body, &resp, "/v1/agents");
	json_object_put(body);
	if (rc == KQ_EXIT_OK)
		printf("added %s\n", a->id);
	json_object_put(resp);
	return rc;
}

static int run_update(const struct client *cl, const struct args *a)
{
	struct json_object *body = NULL, *resp = NULL;
	char state[32];
	int rc;

	if ((rc = agent_body(a, false, &body)) != KQ_EXIT_OK)
		return rc;
	rc = client_call(cl, "PATCH", body, &resp, "/v1/agents/%s", a->id);
	json_object_put(body);
	if (rc == KQ_EXIT_OK)
		printf("updated %s (state %s)\n", a->id, client_text(resp, "state", state, sizeof(state)));
	json_object_put(resp);
	return rc;
}

static int run_delete(const struct client *cl, const struct args *a)
{
	struct json_object *resp = NULL;
	int rc = client_call(cl, "DELETE", NULL, &resp, "/v1/agents/%s", a->id);

	if (rc == KQ_EXIT_OK)
		printf("deleted %s\n", a->id);
	json_object_put(resp);
	return rc;
}

/* "component/code" of the first of o's reasons, "-" if none. */
static const char *first_reason(struct json_object *o, char *buf, size_t n)
{
	struct json_object *rs, *r;
	char comp[32], code[64];

	if (!json_object_object_get_ex(o, "reasons", &rs) || !json_object_is_type(rs, json_type_array) ||
	    !(r = json_object_array_get_idx(rs, 0)))
		return "-";
	snprintf(buf, n, "%s/%s", client_text(r, "component", comp, sizeof(comp)),
		 client_text(r, "code", code, sizeof(code)));
	return buf;
}

/* One line per reason of o: "<indent>reason: component/code index N: message". */
static void print_reasons(struct json_object *o, const char *indent)
{
	struct json_object *rs, *ix;

	if (!json_object_object_get_ex(o, "reasons", &rs) || !json_object_is_type(rs, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(rs); i++) {
		struct json_object *r = json_object_array_get_idx(rs, i);
		char comp[32], code[64], msg[1024];

		printf("%sreason: %s/%s", indent, client_text(r, "component", comp, sizeof(comp)),
		       client_text(r, "code", code, sizeof(code)));
		if (json_object_object_get_ex(r, "index", &ix) && json_object_is_type(ix, json_type_int) &&
		    json_object_get_int64(ix) >= 0)
			printf(" index %lld", (long long)json_object_get_int64(ix));
		printf(": %s\n", client_text(r, "message", msg, sizeof(msg)));
	}
}

static void print_agent(struct json_object *o)
{
	static const struct {
		const char *key;
		bool time;
	} fields[] = {
		{ "id", false }, { "kind", false }, { "host_id", false }, { "vm_uuid", false },
		{ "state", false }, { "state_since", true }, { "address", false },
		{ "interval", false }, { "bank", false }, { "pcr_policy", false }, { "mb_policy", false },
		{ "ima_policy", false }, { "verdicts", false }, { "passes", false },
		{ "last_verdict_time", true }, { "ima_offset", false }, { "boot_id", false },
	};

	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		char v[256];

		if (fields[i].time)
			client_time(o, fields[i].key, v, sizeof(v));
		else
			client_text(o, fields[i].key, v, sizeof(v));
		printf("%s:%*s %s\n", fields[i].key, (int)(17 - strlen(fields[i].key)), "", v);
	}
	print_reasons(o, "  ");
}

static void print_history(struct json_object *hist)
{
	struct json_object *l, *pass;

	puts("history:");
	if (!json_object_object_get_ex(hist, "history", &l) || !json_object_is_type(l, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(l); i++) {
		struct json_object *h = json_object_array_get_idx(l, i);
		char t[32], state[32];

		client_time(h, "time", t, sizeof(t));
		printf("  %-20s  %-11s  %s\n", t, client_text(h, "state", state, sizeof(state)),
		       json_object_object_get_ex(h, "pass", &pass) && json_object_get_boolean(pass) ? "pass" : "fail");
		print_reasons(h, "    ");
	}
}

static void print_row(struct json_object *o, const char *indent)
{
	char id[64], state[32], addr[270], t[32], n[24], reason[100], col[80];

	client_time(o, "last_verdict_time", t, sizeof(t));
	snprintf(col, sizeof(col), "%s%s", indent, client_text(o, "id", id, sizeof(id)));
	printf("%-38s  %-11s  %-21s  %-20s  %8s  %s\n", col, client_text(o, "state", state, sizeof(state)),
	       client_text(o, "address", addr, sizeof(addr)), t, client_text(o, "verdicts", n, sizeof(n)),
	       first_reason(o, reason, sizeof(reason)));
}

static int run_status(const struct client *cl, const struct args *a)
{
	struct json_object *agent = NULL, *hist = NULL, *l;
	char state[32];
	int rc;

	rc = client_call(cl, "GET", NULL, &agent, "/v1/agents/%s", a->id);
	if (rc == KQ_EXIT_OK && a->history)
		rc = client_call(cl, "GET", NULL, &hist, "/v1/agents/%s/history", a->id);
	if (rc != KQ_EXIT_OK || !json_object_is_type(agent, json_type_object)) {
		json_object_put(agent);
		json_object_put(hist);
		return rc != KQ_EXIT_OK ? rc : cli_fail(KQ_EXIT_INVALID, "verifier: the answer is not an agent");
	}
	client_text(agent, "state", state, sizeof(state));
	/* a host: its guests with their verdicts, under it */
	{
		char kind[16];
		struct json_object *resp = NULL, *all, *guests;

		client_text(agent, "kind", kind, sizeof(kind));
		if (strcmp(kind, "host") == 0 && client_call(cl, "GET", NULL, &resp, "/v1/agents") == KQ_EXIT_OK &&
		    json_object_object_get_ex(resp, "agents", &all) && json_object_is_type(all, json_type_array)) {
			guests = json_object_new_array();
			for (size_t i = 0; i < json_object_array_length(all); i++) {
				struct json_object *g = json_object_array_get_idx(all, i);
				char hid[64];

				if (strcmp(client_text(g, "host_id", hid, sizeof(hid)), a->id) == 0)
					json_object_array_add(guests, json_object_get(g));
			}
			if (cli_json_add(agent, "guests", guests) < 0)
				json_object_put(guests);
		}
		json_object_put(resp);
	}
	if (a->json) {
		/* one document: the agent, with the history's list added as "history" */
		if (json_object_object_get_ex(hist, "history", &l) &&
		    cli_json_add(agent, "history", json_object_get(l)) < 0) {
			json_object_put(agent);
			json_object_put(hist);
			return cli_fail(KQ_EXIT_USAGE, "out of memory");
		}
		cli_print_json(agent);
	} else {
		struct json_object *guests;

		print_agent(agent);
		if (json_object_object_get_ex(agent, "guests", &guests) && json_object_array_length(guests) > 0) {
			puts("guests:");
			for (size_t i = 0; i < json_object_array_length(guests); i++)
				print_row(json_object_array_get_idx(guests, i), "  ");
		}
		if (hist)
			print_history(hist);
		json_object_put(agent);
	}
	json_object_put(hist);
	fflush(stdout); /* the reason line after what it sums up, even through a pipe */
	if (strcmp(state, "attesting") != 0)
		return cli_fail(KQ_EXIT_INVALID, "agent %s is %s, not attesting", a->id, state);
	return KQ_EXIT_OK;
}

static int run_list(const struct client *cl, const struct args *a)
{
	struct json_object *resp, *agents;
	int rc = client_get_list(cl, "/v1/agents", "agents", "agent", a->json, &resp, &agents);

	if (rc != KQ_EXIT_OK || !resp)
		return rc;
	printf("%-38s  %-11s  %-21s  %-20s  %8s  %s\n", "ID", "STATE", "ADDRESS", "LAST VERDICT", "VERDICTS", "REASON");
	/* hosts, each followed by its guests */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < json_object_array_length(agents); i++) {
			struct json_object *o = json_object_array_get_idx(agents, i);
			char kind[16], hid[64];

			client_text(o, "kind", kind, sizeof(kind));
			if ((pass == 0) != (strcmp(kind, "guest") != 0))
				continue;
			if (pass == 1) {
				/* guests whose host is in the list were printed under it */
				bool shown = false;

				client_text(o, "host_id", hid, sizeof(hid));
				for (size_t k = 0; k < json_object_array_length(agents) && !shown; k++) {
					char other[64];

					shown = strcmp(client_text(json_object_array_get_idx(agents, k), "id", other,
								   sizeof(other)), hid) == 0;
				}
				if (shown)
					continue;
			}
			print_row(o, "");
			if (pass == 0) {
				char id[64];

				client_text(o, "id", id, sizeof(id));
				for (size_t k = 0; k < json_object_array_length(agents); k++) {
					struct json_object *g = json_object_array_get_idx(agents, k);

					if (strcmp(client_text(g, "host_id", hid, sizeof(hid)), id) == 0)
						print_row(g, "  ");
				}
			}
		}
	json_object_put(resp);
	return KQ_EXIT_OK;
}

static const struct verb {
	const char *name;
	bool takes_id;
	unsigned opts; /* BIT()s of the options it takes besides the common ones */
	int (*run)(const struct client *cl, const struct args *a);
} verbs[] = {
	{ "add", true, SETTINGS | BIT(O_HOST), run_add },
	{ "update", true, CHANGES, run_update },
	{ "delete", true, 0, run_delete },
	{ "status", true, BIT(O_JSON) | BIT(O_HISTORY), run_status },
	{ "list", false, BIT(O_JSON), run_list },
};

static int run_verb(const struct verb *v, int argc, char **argv)
{
	static const struct option opts[] = {
		CLIENT_OPTIONS,
		{ "address", required_argument, NULL, O_ADDRESS },
		{ "interval", required_argument, NULL, O_INTERVAL },
		{ "bank", required_argument, NULL, O_BANK },
		{ "pcr-policy", required_argument, NULL, O_PCR },
		{ "mb-policy", required_argument, NULL, O_MB },
		{ "ima-policy", required_argument, NULL, O_IMA },
		{ "no-pcr-policy", no_argument, NULL, O_NO_PCR },
		{ "no-mb-policy", no_argument, NULL, O_NO_MB },
		{ "no-ima-policy", no_argument, NULL, O_NO_IMA },
		{ "stop", no_argument, NULL, O_STOP },
		{ "resume", no_argument, NULL, O_RESUME },
		{ "json", no_argument, NULL, O_JSON },
		{ "history", no_argument, NULL, O_HISTORY },
		{ "host", required_argument, NULL, O_HOST },
		{ "revocations", required_argument, NULL, O_REVOCATIONS },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct client cl = { .service = "verifier" };
	struct args a = { .verb = v->name };
	int c, rc;

	optind = 1;
	while ((c = client_next_option(&cl, argc, argv, opts, O_ADDRESS, v->opts, v->name, usage_text, &rc)) >= 0)
		if ((rc = take(&a, c, optarg)) != KQ_EXIT_OK)
			return rc;
	if (c == -2)
		return rc;
	if (!v->takes_id && optind != argc)
		return cli_fail(KQ_EXIT_USAGE, "%s takes no arguments", v->name);
	if (v->takes_id) {
		if (optind != argc - 1)
			return cli_fail(KQ_EXIT_USAGE, "%s needs one agent ID", v->name);
		if (!client_uuid(argv[optind], a.id))
			return cli_fail(KQ_EXIT_USAGE, "%s: '%s' is not an agent ID (a UUID)", v->name, argv[optind]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(policies); i++)
		if (a.policy[i] && (a.given & BIT(O_NO_PCR + (int)i)))
			return cli_fail(KQ_EXIT_USAGE, "%s: --%s and --no-%s contradict each other", v->name,
					policies[i].option, policies[i].option);
	if ((a.given & BIT(O_STOP)) && (a.given & BIT(O_RESUME)))
		return cli_fail(KQ_EXIT_USAGE, "%s: --stop and --resume contradict each other", v->name);
	if (v->run == run_add && !a.address)
		return cli_fail(KQ_EXIT_USAGE, "add: --address HOST:PORT is needed");
	if (v->run == run_update && !(a.given & CHANGES))
		return cli_fail(KQ_EXIT_USAGE, "update: nothing to change (see --help)");
	if ((rc = client_ready(&cl, "KUMQUAT_VERIFIER_URL", v->name)) != KQ_EXIT_OK)
		return rc;
	return v->run(&cl, &a);
}

int cmd_add(int argc, char **argv)
{
	return run_verb(&verbs[0], argc, argv);
}

int cmd_update(int argc, char **argv)
{
	return run_verb(&verbs[1], argc, argv);
}

int cmd_delete(int argc, char **argv)
{
	return run_verb(&verbs[2], argc, argv);
}

int cmd_status(int argc, char **argv)
{
	return run_verb(&verbs[3], argc, argv);
}

int cmd_list(int argc, char **argv)
{
	return run_verb(&verbs[4], argc, argv);
}
