/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The verifier's database and its event signing: agents and policies through
 * the API's functions, rounds recorded with history and outbox rows only on
 * changes, writes refused once an operator changed the agent (generation),
 * replay state surviving a reopen of the file, outbox retries and give-up,
 * PCR policy documents, and DSSE envelopes that verify with the public key
 * (and stop verifying when the payload changes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "json/json.h"
#include "testlib.h"
#include "verifier.h"

#define ID "e27a1aa7-c736-464d-9cc9-dbd8be15ebe3"

static int64_t fake_now = 1700000000;
int64_t verifier_now(void) { return fake_now; }
int64_t verifier_mono_ms(void) { return fake_now * 1000; }

static char dir[] = "/tmp/kq-store-XXXXXX";
static char dbpath[64], keypath[64];
static EVP_PKEY *notify_key;

static int setup(void **state)
{
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(dbpath, sizeof(dbpath), "%s/v.db", dir);
	snprintf(keypath, sizeof(keypath), "%s/notify.pem", dir);
	notify_key = EVP_EC_gen("P-256");
	assert_non_null(notify_key);
	f = fopen(keypath, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, notify_key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	EVP_PKEY_free(notify_key);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct verifier_config cfg(void)
{
	return (struct verifier_config){ .webhooks = (char *)"https://a.example/e, https://b.example/e",
					 .signing_key = keypath, .history_max = 3 };
}

static const char pcr_doc[] =
	"{\"sha256\": {\"0\": \"0000000000000000000000000000000000000000000000000000000000000000\","
	" \"7\": \"1111111111111111111111111111111111111111111111111111111111111111\"}}";

static void test_pcr_policy(void **state)
{
	struct verifier_config c = cfg();
	struct policies *ps;
	struct policy *p;
	char *summary = NULL;
	static const char *const bad[] = {
		"{}", "[]", "{\"sha256\": {}}", "{\"md5\": {\"0\": \"00\"}}", "{\"sha256\": {\"24\": \"00\"}}",
		"{\"sha256\": {\"0\": \"00\"}}", "{\"sha256\": {\"x\": \"00\"}}", "{\"sha256\": {\"0\": 5}}", "nope",
	};

	(void)state;
	assert_int_equal(policies_new(NULL, &c, &ps), 0);
	assert_int_equal(policy_compile(ps, POLICY_PCR, (const uint8_t *)pcr_doc, strlen(pcr_doc), &p, &summary), 0);
	assert_int_equal(policy_pcrs(p)->nbanks, 1);
	assert_int_equal(policy_pcrs(p)->bank[0].mask, 0x81);
	assert_int_equal(policy_pcrs(p)->bank[0].value[7][31], 0x11);
	assert_string_equal(summary, "sha256: 2 PCRs");
	free(summary);
	policy_unref(p);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		p = NULL;
		assert_true(policy_compile(ps, POLICY_PCR, (const uint8_t *)bad[i], strlen(bad[i]), &p, NULL) < 0);
		assert_null(p);
		assert_non_null(strstr(kq_errmsg(), "PCR policy: "));
	}
	policies_free(ps);
}

static struct json_object *reasons(const char *code)
{
	struct json_object *a = json_object_new_array(), *o;

	if (code) {
		o = json_object_new_object();
		json_object_object_add(o, "component", json_object_new_string("ima"));
		json_object_object_add(o, "code", json_object_new_string(code));
		json_object_array_add(a, o);
	}
	return a;
}

static size_t outbox_count(struct db *db)
{
	struct outbox_item *items;
	size_t n;

	assert_int_equal(store_outbox_due(db, fake_now + 1000000, 100, NULL, 0, &items, &n), 0);
	outbox_items_free(items, n);
	return n;
}

static void round_(struct db *db, struct notifier *nt, int64_t gen, enum agent_state s, bool pass, const char *code,
		   const struct attest_state *st, int want, bool want_changed)
{
	struct json_object *rs = reasons(code);
	_cleanup_free_ uint8_t *blob = NULL;
	size_t blen = 0;
	struct round_result res = { .state = s, .evaluated = true, .pass = pass, .reasons = rs, .history_max = 3 };
	bool changed = !want_changed;

	if (st) {
		assert_int_equal(attest_state_pack(st, &blob, &blen), 0);
		res.st = blob;
		res.st_len = blen;
	}
	assert_int_equal(store_round(db, nt, ID, gen, &res, &changed), want);
	if (want == 0)
		assert_int_equal(changed, want_changed);
	json_object_put(rs);
}

static void test_agents_rounds_outbox(void **state)
{
	struct verifier_config c = cfg();
	struct db *db;
	struct notifier *nt;
	struct agent_row row;
	struct agent_spec spec = { .address = "127.0.0.1:8892", .interval = 5, .bank = "sha256",
				   .ak = (const uint8_t *)"AK", .ak_len = 2 };
	struct attest_state st = { .have_quote = true, .clock = 99, .reset_count = 3 };
	struct json_object *o, *h;
	struct outbox_item *items;
	size_t n;
	bool dropped;

	(void)state;
	unlink(dbpath);
	assert_int_equal(store_open(dbpath, &db), 0);
	assert_int_equal(notifier_new(&c, &nt), 0);

	/* policies: named, typed, immutable */
	assert_int_equal(store_policy_insert(db, "p", "pcr", (const uint8_t *)pcr_doc, strlen(pcr_doc), "s"), 0);
	assert_int_equal(store_policy_insert(db, "p", "pcr", (const uint8_t *)"{}", 2, "s"), -EEXIST);
	spec.policy[1] = "p"; /* a pcr policy in the mb slot */
	assert_int_equal(store_agent_insert(db, ID, &spec), -EMEDIUMTYPE);
	spec.policy[1] = "nope";
	assert_int_equal(store_agent_insert(db, ID, &spec), -ENOENT);
	spec.policy[1] = NULL;
	spec.policy[0] = "p";
	assert_int_equal(store_agent_insert(db, ID, &spec), 0);
	assert_int_equal(store_agent_insert(db, ID, &spec), -EEXIST);
	assert_int_equal(store_policy_delete(db, "p"), -EBUSY);

	assert_int_equal(store_agent_load(db, ID, &row), 0);
	assert_int_equal(row.state, AGENT_ATTESTING);
	assert_false(row.have_state);
	assert_string_equal(row.pcr_policy, "p");
	assert_int_equal(row.bank, KQ_ALG_SHA256);
	assert_int_equal(row.generation, 0);
	agent_row_clear(&row);

	/* a pass stores the replay state; the same verdict again adds no history */
	round_(db, nt, 0, AGENT_ATTESTING, true, NULL, &st, 0, false);
	round_(db, nt, 0, AGENT_ATTESTING, true, NULL, &st, 0, false);
	assert_int_equal(outbox_count(db), 0);
	/* a failure changes state: one history row, one event and one revocation notice per webhook */
	round_(db, nt, 0, AGENT_FAILED, false, "not_in_allowlist", NULL, 0, true);
	assert_int_equal(outbox_count(db), 4);
	assert_int_equal(store_agent_json(db, ID, &o), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "state")), "failed");
	assert_int_equal(json_object_get_int(json_object_object_get(o, "verdicts")), 3);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "passes")), 2);
	json_object_put(o);

	/* an operator's change bumps the generation: a round begun before is refused */
	assert_int_equal(store_agent_patch(db, nt, ID, &(struct agent_spec){ .interval = -1, .resume = true }), 0);
	round_(db, nt, 0, AGENT_FAILED, false, "x", NULL, -ESTALE, false);
	assert_int_equal(outbox_count(db), 6); /* the resume was an event too (and no revocation) */
	round_(db, nt, 1, AGENT_ATTESTING, true, NULL, &st, 0, false);

	/* history: newest first, capped at history_max */
	for (int i = 0; i < 4; i++)
		round_(db, nt, 1, i % 2 ? AGENT_ATTESTING : AGENT_FAILED, i % 2, i % 2 ? NULL : "y", NULL, 0, true);
	assert_int_equal(store_history_json(db, ID, &h), 0);
	assert_int_equal(json_object_array_length(h), 3);
	assert_string_equal(json_object_get_string(json_object_object_get(json_object_array_get_idx(h, 0), "state")),
			    "attesting");
	json_object_put(h);

	/* the file keeps the replay state across a reopen */
	db_close(db);
	assert_int_equal(store_open(dbpath, &db), 0);
	assert_int_equal(store_agent_load(db, ID, &row), 0);
	assert_true(row.have_state);
	{
		struct attest_state back;

		assert_int_equal(attest_state_unpack(row.st, row.st_len, &back), 0);
		assert_int_equal(back.clock, 99);
		assert_int_equal(back.reset_count, 3);
	}
	assert_int_equal(row.generation, 1);
	agent_row_clear(&row);

	/* outbox: a delivered event goes, a failing one is retried later, then dropped */
	assert_int_equal(store_outbox_due(db, fake_now, 100, NULL, 0, &items, &n), 0);
	assert_true(n >= 2);
	assert_int_equal(store_outbox_done(db, items[0].event_seq, items[0].webhook, true, 0, 3, &dropped), 0);
	assert_false(dropped);
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_outbox_done(db, items[1].event_seq, items[1].webhook, false, fake_now + 60, 3,
						   &dropped), 0);
	assert_true(dropped);
	outbox_items_free(items, n);
	assert_int_equal(store_outbox_due(db, fake_now, 100, NULL, 0, &items, &n), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(items[i].attempts == 0);
	outbox_items_free(items, n);

	assert_int_equal(store_agent_delete(db, ID), 0);
	assert_int_equal(store_agent_delete(db, ID), -ENOENT);
	assert_int_equal(store_history_json(db, ID, &h), -ENOENT);
	assert_int_equal(store_policy_delete(db, "p"), 0);
	notifier_free(nt);
	db_close(db);
}

#define ID2 "22222222-2222-4222-8222-222222222222"

static int write_v1_blob(struct db *db, sqlite3 *h, void *ud)
{
	const struct attest_state *st = ud;
	uint8_t blob[8 + sizeof(*st)];
	uint32_t hdr[2] = { 0x4b515331u, sizeof(*st) };
	sqlite3_stmt *s = NULL;
	int rc;

	(void)db;
	memcpy(blob, hdr, 8);
	memcpy(blob + 8, st, sizeof(*st));
	assert_int_equal(sqlite3_prepare_v2(h, "UPDATE agents SET attest_state = ? WHERE id = ?", -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_blob(s, 1, blob, (int)sizeof(blob), SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, ID2, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* A deep round's verdicts in one transaction: each item on its own generation; states as packed blobs and as the old form. */
static void test_rounds_batch(void **state)
{
	struct verifier_config c = cfg();
	struct db *db;
	struct notifier *nt;
	struct agent_spec spec = { .address = "127.0.0.1:8892", .interval = 5, .bank = "sha256",
				   .ak = (const uint8_t *)"AK", .ak_len = 2 };
	_cleanup_free_ struct attest_state *st = calloc(1, sizeof(*st)), *back = calloc(1, sizeof(*back));
	_cleanup_free_ uint8_t *blob = NULL;
	struct json_object *ok = reasons(NULL), *bad = reasons("host_failed"), *o;
	struct round_item items[3];
	struct agent_row row;
	size_t blen;

	(void)state;
	unlink(dbpath);
	assert_int_equal(store_open(dbpath, &db), 0);
	assert_int_equal(notifier_new(&c, &nt), 0);
	assert_int_equal(store_agent_insert(db, ID, &spec), 0);
	assert_int_equal(store_agent_insert(db, ID2, &spec), 0);

	st->have_quote = true;
	st->clock = 1234;
	snprintf(st->boot_id, sizeof(st->boot_id), "boot-1");
	ima_replay_init(&st->ima, 0, 0);
	st->ima.next_index = 7;
	memset(st->ima.pcr[10][1], 0xab, 32);
	assert_int_equal(attest_state_pack(st, &blob, &blen), 0);
	assert_true(blen < 300); /* not the struct's 6 KB */

	items[0] = (struct round_item){ .id = ID, .gen = 0,
					.res = { .state = AGENT_ATTESTING, .evaluated = true, .pass = true, .reasons = ok,
						 .st = blob, .st_len = blen, .history_max = 3 } };
	items[1] = (struct round_item){ .id = ID2, .gen = 5, /* changed meanwhile */
					.res = { .state = AGENT_FAILED, .evaluated = true, .reasons = bad, .history_max = 3 } };
	items[2] = (struct round_item){ .id = "33333333-3333-4333-8333-333333333333", .gen = 0, /* gone */
					.res = { .state = AGENT_FAILED, .evaluated = true, .reasons = bad, .history_max = 3 } };
	assert_int_equal(store_rounds(db, nt, items, 3), 0);
	assert_int_equal(items[0].ret, 0);
	assert_int_equal(items[1].ret, -ESTALE);
	assert_int_equal(items[2].ret, -ENOENT);
	assert_int_equal(store_agent_json(db, ID2, &o), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "state")), "attesting");
	json_object_put(o);

	/* the packed state reads back whole */
	assert_int_equal(store_agent_load(db, ID, &row), 0);
	assert_true(row.have_state);
	assert_int_equal(row.ima_next, 7);
	assert_int_equal(attest_state_unpack(row.st, row.st_len, back), 0);
	assert_memory_equal(st, back, sizeof(*st));
	agent_row_clear(&row);
	assert_int_equal(store_agent_json(db, ID, &o), 0);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "ima_offset")), 7);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "boot_id")), "boot-1");
	json_object_put(o);

	/* a state stored by an earlier version (the struct behind "KQS1") is read too */
	assert_int_equal(db_tx(db, write_v1_blob, st), 0);
	assert_int_equal(store_agent_load(db, ID2, &row), 0);
	assert_true(row.have_state);
	assert_int_equal(row.ima_next, 7);
	assert_int_equal(attest_state_unpack(row.st, row.st_len, back), 0);
	assert_memory_equal(st, back, sizeof(*st));
	agent_row_clear(&row);

	/* damaged blobs are refused, never read past their end */
	for (size_t cut = 0; cut < blen; cut++)
		assert_int_equal(attest_state_unpack(blob, cut, back), -EBADMSG);
	blob[4] = 2; /* have_quote is 0 or 1 */
	assert_int_equal(attest_state_unpack(blob, blen, back), -EBADMSG);

	json_object_put(ok);
	json_object_put(bad);
	notifier_free(nt);
	db_close(db);
}

/* Payloads: V kept per agent (pending, then delivered or refused), the row follows, deleted with its agent. */
static void test_payloads(void **state)
{
	struct db *db;
	struct agent_spec spec = { .address = "127.0.0.1:8892", .interval = 5, .bank = "sha256",
				   .ak = (const uint8_t *)"AK", .ak_len = 2 };
	const char *p1 = "0123456789abcdef0123456789abcdef", *p2 = "fedcba9876543210fedcba9876543210";
	uint8_t v1[256], *got = NULL;
	char pid[PAYLOAD_ID_MAX + 1];
	struct json_object *o, *rs;
	struct agent_row row;
	size_t len;

	(void)state;
	memset(v1, 0x5a, sizeof(v1));
	unlink(dbpath);
	assert_int_equal(store_open(dbpath, &db), 0);
	assert_int_equal(store_payload_put(db, ID, p1, v1, sizeof(v1)), -ENOENT); /* no such agent */
	assert_int_equal(store_agent_insert(db, ID, &spec), 0);
	assert_int_equal(store_payload_json(db, ID, &o), -ENOENT);
	assert_int_equal(store_payload_pending(db, ID, pid, &got, &len), -ENOENT);
	assert_int_equal(store_agent_load(db, ID, &row), 0);
	assert_false(row.payload_pending);
	agent_row_clear(&row);

	assert_int_equal(store_payload_put(db, ID, p1, v1, sizeof(v1)), 0);
	assert_int_equal(store_agent_load(db, ID, &row), 0);
	assert_true(row.payload_pending);
	agent_row_clear(&row);
	assert_int_equal(store_payload_pending(db, ID, pid, &got, &len), 0);
	assert_string_equal(pid, p1);
	assert_int_equal(len, sizeof(v1));
	assert_memory_equal(got, v1, len);
	free(got);
	/* a newer payload replaces it; an answer about the old one changes nothing */
	assert_int_equal(store_payload_put(db, ID, p2, v1, 128), 0);
	assert_int_equal(store_payload_result(db, ID, p1, "delivered", NULL), -ESTALE);
	rs = json_object_new_array();
	json_object_array_add(rs, json_object_new_string("u_undecryptable"));
	assert_int_equal(store_payload_result(db, ID, p2, "refused", rs), 0);
	json_object_put(rs);
	assert_int_equal(store_payload_result(db, ID, p2, "delivered", NULL), -ESTALE); /* no longer pending */
	assert_int_equal(store_payload_json(db, ID, &o), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "state")), "refused");
	assert_string_equal(json_object_get_string(json_object_object_get(o, "payload_id")), p2);
	assert_int_equal(json_object_array_length(json_object_object_get(o, "reason")), 1);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "attempts")), 1);
	json_object_put(o);
	assert_int_equal(store_payload_pending(db, ID, pid, &got, &len), -ENOENT);
	assert_int_equal(store_agent_load(db, ID, &row), 0);
	assert_false(row.payload_pending);
	agent_row_clear(&row);
	/* gone with its agent */
	assert_int_equal(store_agent_delete(db, ID), 0);
	assert_int_equal(store_payload_json(db, ID, &o), -ENOENT);
	db_close(db);
}

/* A failing agent's revocation notice goes to the webhooks and to the agents subscribed to its scope. */
static void test_revocations(void **state)
{
	struct verifier_config c = cfg();
	struct db *db;
	struct notifier *nt;
	const char *H1 = "10000000-0000-4000-8000-000000000001", *H2 = "20000000-0000-4000-8000-000000000002",
		   *G1 = "10000000-0000-4000-8000-0000000000a1", *G2 = "10000000-0000-4000-8000-0000000000a2",
		   *G3 = "20000000-0000-4000-8000-0000000000b1";
	struct agent_spec host = { .address = "127.0.0.1:1", .interval = 5, .bank = "sha256",
				   .ak = (const uint8_t *)"AK", .ak_len = 2 };
	struct agent_spec guest = host;
	struct json_object *rs = reasons("pcr10_mismatch");
	struct round_result res = { .state = AGENT_FAILED, .evaluated = true, .reasons = rs, .history_max = 3 };
	struct outbox_item *items;
	size_t n, hooks = 0, to_g2 = 0, to_h1 = 0, to_g3 = 0, to_h2 = 0, to_g1 = 0;
	bool changed;

	(void)state;
	unlink(dbpath);
	assert_int_equal(store_open(dbpath, &db), 0);
	assert_int_equal(notifier_new(&c, &nt), 0);
	host.revocations = "host";
	assert_int_equal(store_agent_insert(db, H1, &host), 0);
	host.revocations = "all";
	assert_int_equal(store_agent_insert(db, H2, &host), 0);
	guest.host_id = H1;
	guest.vm_uuid = "a1a1a1a1-0000-4000-8000-000000000001";
	guest.ek_name = (const uint8_t *)"\x00\x0b" "0123456789012345678901234567890123";
	guest.ek_name_len = 34;
	guest.revocations = "none";
	assert_int_equal(store_agent_insert(db, G1, &guest), 0);
	guest.revocations = "host";
	assert_int_equal(store_agent_insert(db, G2, &guest), 0);
	guest.host_id = H2;
	assert_int_equal(store_agent_insert(db, G3, &guest), 0); /* "host", but on the other host */

	assert_int_equal(store_round(db, nt, G1, 0, &res, &changed), 0);
	assert_true(changed);
	assert_int_equal(store_outbox_due(db, fake_now + 1000000, 100, NULL, 0, &items, &n), 0);
	for (size_t i = 0; i < n; i++) {
		const char *w = items[i].webhook;

		if (strncmp(w, "agent:", 6) != 0) {
			hooks++;
			continue;
		}
		assert_non_null(strstr(items[i].body, "application/vnd.kumquat.revocation+json"));
		to_g1 += strcmp(w + 6, G1) == 0;
		to_g2 += strcmp(w + 6, G2) == 0;
		to_h1 += strcmp(w + 6, H1) == 0;
		to_g3 += strcmp(w + 6, G3) == 0;
		to_h2 += strcmp(w + 6, H2) == 0;
	}
	outbox_items_free(items, n);
	assert_int_equal(hooks, 4);           /* 2 webhooks: the state change and the notice */
	assert_int_equal(to_g1, 0);           /* not the failed agent itself */
	assert_int_equal(to_g2, 1);           /* "host" on the same host */
	assert_int_equal(to_h1, 1);           /* the host itself, "host" */
	assert_int_equal(to_h2, 1);           /* "all" */
	assert_int_equal(to_g3, 0);           /* "host" elsewhere */
	json_object_put(rs);
	notifier_free(nt);
	db_close(db);
}

/* DSSE: sig over "DSSEv1 <len(type)> <type> <len(payload)> <payload>" */
static bool verify_env(const char *env_text, EVP_PKEY *pub, bool tamper)
{
	struct json_object *env = NULL, *sigs, *s;
	uint8_t *payload, *sig;
	size_t plen, slen;
	char *pae = NULL;
	int n;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	assert_int_equal(json_parse_body((const uint8_t *)env_text, strlen(env_text), 1 << 20, 8, &env), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(env, "payloadType")),
			    "application/vnd.kumquat.event+json");
	assert_int_equal(kq_base64_decode(json_object_get_string(json_object_object_get(env, "payload")), 1 << 20,
					  &payload, &plen), 0);
	sigs = json_object_object_get(env, "signatures");
	assert_int_equal(json_object_array_length(sigs), 1);
	s = json_object_array_get_idx(sigs, 0);
	assert_int_equal(kq_base64_decode(json_object_get_string(json_object_object_get(s, "sig")), 1024, &sig, &slen),
			 0);
	if (tamper)
		payload[plen / 2] ^= 1;
	n = asprintf(&pae, "DSSEv1 34 application/vnd.kumquat.event+json %zu %.*s", plen, (int)plen, payload);
	assert_true(n > 0);
	ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
	     EVP_DigestVerify(ctx, sig, slen, (uint8_t *)pae, (size_t)n) == 1;
	EVP_MD_CTX_free(ctx);
	free(pae);
	free(payload);
	free(sig);
	json_object_put(env);
	return ok;
}

static void test_envelope(void **state)
{
	struct verifier_config c = cfg();
	struct notifier *nt;
	struct json_object *ev = json_object_new_object();
	char *env = NULL;
	size_t n;

	(void)state;
	assert_int_equal(notifier_new(&c, &nt), 0);
	assert_int_equal(notifier_webhooks(nt, &n)[1][8], 'b');
	assert_int_equal(n, 2);
	json_object_object_add(ev, "event", json_object_new_string("state_changed"));
	json_object_object_add(ev, "agent_id", json_object_new_string(ID));
	assert_int_equal(notifier_envelope(nt, ev, &env), 0);
	assert_true(verify_env(env, notify_key, false));
	assert_false(verify_env(env, notify_key, true));
	free(env);
	json_object_put(ev);
	notifier_free(nt);

	/* webhooks without a key, a plain-http hook, a bad key: refused at start */
	c.signing_key = NULL;
	assert_int_equal(notifier_new(&c, &nt), -EINVAL);
	c = cfg();
	c.webhooks = (char *)"http://a.example/e";
	assert_int_equal(notifier_new(&c, &nt), -EINVAL);
	c = cfg();
	c.signing_key = dbpath;
	assert_true(notifier_new(&c, &nt) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pcr_policy),
		cmocka_unit_test(test_agents_rounds_outbox),
		cmocka_unit_test(test_rounds_batch),
		cmocka_unit_test(test_payloads),
		cmocka_unit_test(test_revocations),
		cmocka_unit_test(test_envelope),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
