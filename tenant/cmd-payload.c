/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat payload send AGENT FILE|DIR | status AGENT: secure payloads
 * (docs/payloads.md). send seals the payload to the agent's TPM payload key
 * as the registrar certified it, gives U and the sealed payload to the agent
 * and V to the verifier, which hands V on only while the agent attests.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cli.h"
#include "client.h"
#include "json/json.h"
#include "payload/payload.h"
#include "tpm/tpm.h"

static const char usage_text[] =
	"usage: kumquat payload send AGENT FILE|DIR [--agent-url URL]\n"
	"       kumquat payload status AGENT [--json]\n"
	"send: seals FILE (or the regular files of DIR) to the agent's TPM payload key (certified by its AK at\n"
	"the registrar): K = U xor V; U and the payload (AES-256-GCM) go to the agent now, V to the verifier,\n"
	"which sends it once the agent's verdict passes (for a guest: guest and host). The agent then writes\n"
	"the files to its [payload] dir (tmpfs) and runs its [payload] script.\n"
	"status: where the agent's latest payload stands (exit 0 once delivered).\n"
	"options (or environment variables):\n"
	"  --url URL          verifier, e.g. https://127.0.0.1:8881      (KUMQUAT_VERIFIER_URL)\n"
	"  --registrar URL    registrar, for the agent's payload key      (KUMQUAT_REGISTRAR_URL)\n"
	"  --agent-url URL    the agent (default: https:// and its address at the verifier)\n"
	"  --ca FILE, --cert FILE, --key FILE   as for the other commands (KUMQUAT_CA, KUMQUAT_CERT, KUMQUAT_KEY)\n"
	"Exit: 0 success, 1 refused or failed (reason on stderr), 2 usage.\n";

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
											     : NULL;
}

/* The agent's payload key from the registrar: certified, and the public part it names. */
static int payload_key(const struct client *reg, const char *id, EVP_PKEY **ret)
{
	struct json_object *rec = NULL;
	_cleanup_free_ uint8_t *pub = NULL;
	uint8_t name[sizeof(TPMU_NAME)];
	const char *b64, *hex;
	size_t len, nlen;
	TPM2B_PUBLIC p;
	TPM2B_NAME computed;
	const TPMA_OBJECT must = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
				 TPMA_OBJECT_DECRYPT;
	int rc = client_call(reg, "GET", NULL, &rec, "/v1/agents/%s", id);

	if (rc != KQ_EXIT_OK)
		return rc;
	b64 = jstr(rec, "payload_key_pub");
	hex = jstr(rec, "payload_key_name");
	if (!b64 || !hex) {
		json_object_put(rec);
		return cli_fail(KQ_EXIT_INVALID, "payload: agent %s has no payload key certified at the registrar", id);
	}
	if (kq_base64_decode(b64, 4096, &pub, &len) < 0 || tpm_public_unmarshal(pub, len, &p) < 0 ||
	    kq_hex_decode(hex, name, sizeof(name), &nlen) < 0 || tpm_public_name(&p.publicArea, &computed) < 0 ||
	    computed.size != nlen || memcmp(computed.name, name, nlen) != 0) {
		json_object_put(rec);
		return cli_fail(KQ_EXIT_INVALID, "payload: the registrar's payload key of %s does not match its name", id);
	}
	json_object_put(rec);
	if (p.publicArea.type != TPM2_ALG_RSA || (p.publicArea.objectAttributes & must) != must ||
	    (p.publicArea.objectAttributes & (TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_RESTRICTED)) ||
	    tpm_public_to_pkey(&p.publicArea, ret) < 0)
		return cli_fail(KQ_EXIT_INVALID, "payload: the payload key of %s is not a TPM-bound decryption key", id);
	return KQ_EXIT_OK;
}

static int send_payload(struct client *ver, struct client *reg, const char *agent_url, const char *id,
			const char *path)
{
	_cleanup_free_ uint8_t *plain = NULL;
	_cleanup_free_ char *url = NULL;
	struct client agent = *ver;
	struct json_object *rec = NULL, *body, *resp = NULL;
	struct payload_sealed s = { 0 };
	EVP_PKEY *key = NULL;
	uint8_t raw[PAYLOAD_ID_LEN / 2];
	char pid[PAYLOAD_ID_LEN + 1];
	size_t len = 0;
	int rc;

	if (!agent_url) {
		const char *address;

		rc = client_call(ver, "GET", NULL, &rec, "/v1/agents/%s", id);
		if (rc != KQ_EXIT_OK)
			return rc;
		address = jstr(rec, "address");
		if (!address || asprintf(&url, "https://%s", address) < 0) {
			json_object_put(rec);
			return cli_fail(KQ_EXIT_INVALID, "payload: the verifier has no address for %s", id);
		}
		json_object_put(rec);
		agent_url = url;
	}
	agent.service = "agent";
	agent.url = agent_url;
	if ((rc = payload_key(reg, id, &key)) != KQ_EXIT_OK)
		return rc;
	if (payload_archive(path, &plain, &len) < 0) {
		EVP_PKEY_free(key);
		return cli_fail_lib(KQ_EXIT_USAGE, "payload");
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1 || payload_seal(key, id, plain, len, &s) < 0) {
		EVP_PKEY_free(key);
		OPENSSL_cleanse(plain, len);
		return cli_fail_lib(KQ_EXIT_INVALID, "payload: sealing failed");
	}
	OPENSSL_cleanse(plain, len);
	EVP_PKEY_free(key);
	kq_hex_encode(raw, sizeof(raw), pid);

	/* U and the sealed payload to the agent */
	body = json_object_new_object();
	json_object_object_add(body, "payload_id", json_object_new_string(pid));
	json_object_object_add(body, "enc_u", json_new_base64(s.enc_u, s.enc_u_len));
	json_object_object_add(body, "auth_tag", json_new_base64(s.auth_tag, PAYLOAD_TAG_LEN));
	json_object_object_add(body, "sealed", json_new_base64(s.sealed, s.sealed_len));
	rc = client_call(&agent, "POST", body, &resp, "/v1/payload/u");
	json_object_put(body);
	json_object_put(resp);
	if (rc != KQ_EXIT_OK) {
		payload_sealed_clear(&s);
		return rc;
	}
	/* V to the verifier */
	body = json_object_new_object();
	json_object_object_add(body, "payload_id", json_object_new_string(pid));
	json_object_object_add(body, "enc_v", json_new_base64(s.enc_v, s.enc_v_len));
	payload_sealed_clear(&s);
	rc = client_call(ver, "POST", body, &resp, "/v1/agents/%s/payload", id);
	json_object_put(body);
	json_object_put(resp);
	if (rc != KQ_EXIT_OK)
		return rc;
	printf("payload %s sent to %s: the agent holds U, the verifier holds V until the agent's verdict passes\n", pid,
	       id);
	return KQ_EXIT_OK;
}

int cmd_payload(int argc, char **argv)
{
	static const struct option opts[] = {
		CLIENT_OPTIONS,
		{ "registrar", required_argument, NULL, 'r' },
		{ "agent-url", required_argument, NULL, 'A' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct client ver = { .service = "verifier" }, reg = { .service = "registrar" };
	const char *sub, *agent_url = NULL;
	char id[37];
	bool json = false;
	int c, rc;

	if (argc < 2)
		return cli_fail(KQ_EXIT_USAGE, "payload: expected send or status (see --help)");
	sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fputs(usage_text, stdout);
		return KQ_EXIT_OK;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (client_option(&ver, c, optarg))
			continue;
		switch (c) {
		case 'r': reg.url = optarg; break;
		case 'A': agent_url = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(usage_text, stdout); return KQ_EXIT_OK;
		default: return cli_fail(KQ_EXIT_USAGE, "payload: bad option (see --help)");
		}
	}
	if (optind >= argc || !client_uuid(argv[optind], id))
		return cli_fail(KQ_EXIT_USAGE, "payload %s: expected an agent id (a UUID)", sub);
	reg.ca = ver.ca;
	reg.cert = ver.cert;
	reg.key = ver.key;
	if ((rc = client_ready(&ver, "KUMQUAT_VERIFIER_URL", "payload")) != KQ_EXIT_OK)
		return rc;
	if (strcmp(sub, "send") == 0) {
		if (optind + 2 != argc)
			return cli_fail(KQ_EXIT_USAGE, "payload send: expected AGENT FILE|DIR");
		if ((rc = client_ready(&reg, "KUMQUAT_REGISTRAR_URL", "payload send (registrar)")) != KQ_EXIT_OK)
			return rc;
		return send_payload(&ver, &reg, agent_url, id, argv[optind + 1]);
	}
	if (strcmp(sub, "status") == 0) {
		struct json_object *resp = NULL, *rs, *first, *m;
		const char *state;

		if (optind + 1 != argc)
			return cli_fail(KQ_EXIT_USAGE, "payload status: expected AGENT");
		rc = client_call(&ver, "GET", NULL, &resp, "/v1/agents/%s/payload", id);
		if (rc != KQ_EXIT_OK)
			return rc;
		state = jstr(resp, "state");
		rc = state && strcmp(state, "delivered") == 0 ? KQ_EXIT_OK : KQ_EXIT_INVALID;
		if (json) {
			cli_print_json(resp);
			return rc;
		}
		printf("payload %s: %s", jstr(resp, "payload_id") ? jstr(resp, "payload_id") : "?", state ? state : "?");
		if (json_object_object_get_ex(resp, "reason", &rs) && json_object_is_type(rs, json_type_array) &&
		    (first = json_object_array_get_idx(rs, 0)) && json_object_object_get_ex(first, "message", &m))
			printf(" (%s: %s)", jstr(first, "code") ? jstr(first, "code") : "?", json_object_get_string(m));
		printf("\n");
		json_object_put(resp);
		return rc;
	}
	return cli_fail(KQ_EXIT_USAGE, "payload: unknown subcommand '%s' (send or status)", sub);
}
