/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-verifier: the pieces of the daemon and how they share state.
 *
 *  - store (store.c): the SQLite database, the one source of truth for
 *    agents, policies, verdict history and the notification outbox;
 *  - policies (policy.c): named policies compiled once and shared;
 *  - loop (loop.c): one thread running every attestation round and webhook
 *    delivery on a non-blocking libcurl multi handle;
 *  - api (api.c): the REST handlers on lib/http's worker threads. They change
 *    the database, then tell the loop which agent changed (loop_changed).
 *
 * The loop keeps a cache of each agent's row; every write it makes is
 * conditional on the row's generation, which each API change increments, so
 * an operator's stop, resume or delete is never undone by a round that was
 * already running.
 */
#ifndef KQ_VERIFIER_H
#define KQ_VERIFIER_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "attest.h"
#include "db/db.h"
#include "http/http.h"
#include "revocation/revocation.h"

#define VERIFIER_ID_LEN 36            /* lowercase UUID */
#define VERIFIER_NAME_MAX 64          /* policy names */
#define VERIFIER_ADDRESS_MAX 261      /* "[v6]:port" or "host:port" */
#define VERIFIER_MAX_INTERVAL 86400
#define VERIFIER_MAX_EVIDENCE (200u << 20) /* highest [attest] max_evidence */
#define VERIFIER_NONCE_LEN 32

struct verifier_config {
	char *listen;
	uint64_t port;
	char *cert, *key, *client_ca;
	uint64_t max_body;
	char *tls_ca, *tls_cert, *tls_key;  /* [client]: towards registrar, agents, webhooks */
	char *registrar_url;
	char *database;
	uint64_t history_max;
	uint64_t interval, timeout_ms, retries, max_concurrent, max_evidence, workers;
	char *dsse_key;
	bool require_signed_ima, allow_ima_violations;
	char *webhooks;                     /* comma-separated */
	char *notify_ca;                    /* overrides [client] ca for webhooks */
	char *signing_key;
	uint64_t max_attempts;
	char *log_level;
	bool log_json;
};

/* ---- store ---- */

enum agent_state { AGENT_ATTESTING, AGENT_FAILED, AGENT_UNREACHABLE, AGENT_STOPPED };

const char *agent_state_name(enum agent_state s);
int agent_state_from_name(const char *s, enum agent_state *ret);

/* An agent's row as the loop needs it. */
struct agent_row {
	char id[VERIFIER_ID_LEN + 1];
	char address[VERIFIER_ADDRESS_MAX + 1];
	uint8_t *ak;                  /* TPM2B_PUBLIC / key bytes as the registrar gave them */
	size_t ak_len;
	uint32_t interval;
	uint16_t bank;
	char pcr_policy[VERIFIER_NAME_MAX + 1], mb_policy[VERIFIER_NAME_MAX + 1],
		ima_policy[VERIFIER_NAME_MAX + 1]; /* "" = none */
	enum agent_state state;
	int64_t generation;
	bool have_state;
	uint8_t *st;                  /* the replay state, attest_state_pack's form (NULL: none) */
	size_t st_len;
	uint64_t ima_next;            /* its IMA position (0 without a state) */
	bool payload_pending;         /* a secure payload's V waits for a passing verdict */
	/* guests: attested through their host's deep quote */
	bool guest;
	char host_id[VERIFIER_ID_LEN + 1];
	uint8_t vm_uuid[16];
	uint8_t ek_name[68];          /* TPM name of the guest's vTPM EK */
	size_t ek_name_len;
};

void agent_row_clear(struct agent_row *r);

int store_open(const char *path, struct db **ret);
/* Loads one agent; -ENOENT if absent. */
int store_agent_load(struct db *db, const char *id, struct agent_row *ret);
/* Every agent id, malloc'd array of malloc'd strings (caller frees both). */
int store_agent_ids(struct db *db, char ***ret, size_t *ret_n);

/* What one round concluded, for store_round(). */
struct round_result {
	enum agent_state state;
	bool evaluated;                    /* a verdict was reached (else: transport failure) */
	bool pass;
	struct json_object *reasons;       /* array, borrowed */
	const uint8_t *st;                 /* new replay state to store (attest_state_pack), or NULL */
	size_t st_len;
	uint64_t history_max;
};

struct notifier;

/*
 * Records a round for the agent at generation gen: the new state, reasons,
 * counters, replay state; a history row when state or reasons changed; and,
 * when the state changed, an event for every webhook of nt in the outbox,
 * all in one transaction. -ESTALE if the row changed meanwhile (nothing
 * written), -ENOENT if it is gone.
 */
int store_round(struct db *db, struct notifier *nt, const char *id, int64_t gen,
		const struct round_result *res, bool *ret_changed);

/* One round of a batch for store_rounds; ret and changed are its outcome. */
struct round_item {
	const char *id;
	int64_t gen;
	struct round_result res;
	int ret;                           /* 0, -ESTALE, -ENOENT, or the batch's error */
	bool changed;
};

/*
 * Records several rounds in one transaction (a host's deep round and its
 * guests): as store_round for each item, an item at another generation or
 * gone is skipped with its own -ESTALE / -ENOENT. Any other error rolls the
 * whole batch back and is returned, and set as every item's ret.
 */
int store_rounds(struct db *db, struct notifier *nt, struct round_item *items, size_t n);

/* What an operator asks for in POST / PATCH /v1/agents (NULL / -1: unchanged). */
struct agent_spec {
	const char *address;
	int64_t interval;              /* -1: unchanged */
	const char *bank;
	const char *policy[3];         /* pcr, mb, ima: NULL unchanged, "" removes */
	bool stop, resume;
	const char *revocations;       /* revocation notices the agent gets: "none", "host", "all"; NULL unchanged */
	const uint8_t *ak;             /* add only */
	size_t ak_len;
	/* add only, guests: their host (an agent of kind host here), VM and vTPM EK name */
	const char *host_id;
	const char *vm_uuid;
	const uint8_t *ek_name;
	size_t ek_name_len;
};

/* Inserts a new agent (state attesting). -EEXIST, -ENOENT (a named policy is missing), -EMEDIUMTYPE (wrong kind). */
int store_agent_insert(struct db *db, const char *id, const struct agent_spec *spec);
/* As store_agent_delete, but -EBUSY while guests name the agent as their host. */
/* Applies a change, bumps the generation; state changes are recorded and notified. -ENOENT, -EMEDIUMTYPE. */
int store_agent_patch(struct db *db, struct notifier *nt, const char *id, const struct agent_spec *spec);
int store_agent_delete(struct db *db, const char *id);
/* JSON views for the API; new references. */
int store_agent_json(struct db *db, const char *id, struct json_object **ret);
int store_agents_json(struct db *db, struct json_object **ret);
int store_history_json(struct db *db, const char *id, struct json_object **ret);
/*
 * Counts for a fleet without listing it: {agents, clean, first_not_clean,
 * states: {STATE: n}, kinds: {host|guest: {agents, verdicts, passes, clean}}};
 * clean = attesting with at least one verdict, every one passed.
 */
int store_summary_json(struct db *db, struct json_object **ret);

int store_policy_insert(struct db *db, const char *name, const char *kind, const uint8_t *doc,
			size_t len, const char *summary);
/* The stored document (malloc'd) and kind. -ENOENT. */
int store_policy_load(struct db *db, const char *name, char **ret_kind, uint8_t **ret_doc, size_t *ret_len);
int store_policy_json(struct db *db, const char *name, bool with_document, struct json_object **ret);
int store_policies_json(struct db *db, struct json_object **ret);
/* -ENOENT, -EBUSY while an agent names it (message names one). */
int store_policy_delete(struct db *db, const char *name);

/* ---- secure payloads (docs/payloads.md) ---- */

#define PAYLOAD_ID_MAX 32

/* Stores V (encrypted to the agent's payload key) as the agent's pending payload, replacing any. -ENOENT. */
int store_payload_put(struct db *db, const char *id, const char *payload_id, const uint8_t *enc_v, size_t len);
/* {agent_id, payload_id, state, reason, created, updated, attempts}; -ENOENT if none. */
int store_payload_json(struct db *db, const char *id, struct json_object **ret);
/* The pending payload's id and V (malloc'd); -ENOENT if none is pending. */
int store_payload_pending(struct db *db, const char *id, char payload_id[PAYLOAD_ID_MAX + 1], uint8_t **ret_enc_v,
			  size_t *ret_len);
/* The agent's answer: state "delivered" or "refused" (reasons: array or NULL). -ESTALE if not pending any more. */
int store_payload_result(struct db *db, const char *id, const char *payload_id, const char *state,
			 struct json_object *reasons);

/* Outbox rows due for delivery. */
struct outbox_item {
	int64_t event_seq;
	char *webhook;
	char *body;          /* the signed envelope */
	int64_t attempts;
};
int store_outbox_due(struct db *db, int64_t now, size_t max, const int64_t *skip, size_t n_skip,
		     struct outbox_item **ret, size_t *ret_n);
void outbox_items_free(struct outbox_item *items, size_t n);
/* Delivered: drop it. Failed: count it and retry later, or drop after max_attempts. */
int store_outbox_done(struct db *db, int64_t seq, const char *webhook, bool ok, int64_t next_try,
		      uint64_t max_attempts, bool *ret_dropped);

/* ---- policies ---- */


enum policy_kind { POLICY_PCR, POLICY_MB, POLICY_IMA };

struct policy;   /* compiled, immutable, shared */
struct policies; /* the cache */

int policies_new(struct db *db, const struct verifier_config *cfg, struct policies **ret);
void policies_free(struct policies *ps);
/*
 * Compiles a document of a kind (to check it, and for the summary shown to
 * users). On success *ret is a new reference (policy_unref) and *ret_summary
 * a malloc'd description. -EBADMSG / -EPERM / -E2BIG with the parser's reason.
 */
int policy_compile(struct policies *ps, enum policy_kind kind, const uint8_t *doc, size_t len,
		   struct policy **ret, char **ret_summary);
/* The named policy, compiled once; a new reference. -ENOENT if absent. */
int policies_get(struct policies *ps, const char *name, struct policy **ret);
/* Drops a cached policy after it was deleted from the database. */
void policies_forget(struct policies *ps, const char *name);
void policy_ref(struct policy *p);
void policy_unref(struct policy *p);
enum policy_kind policy_kind(const struct policy *p);
const char *policy_kind_name(enum policy_kind k);
int policy_kind_from_name(const char *s, enum policy_kind *ret);
/* The compiled form for attest_policy. */
const struct tpm_pcrs *policy_pcrs(const struct policy *p);
const struct mbpolicy *policy_mb(const struct policy *p);
const struct imapolicy *policy_ima(const struct policy *p);

/* ---- notifications ---- */

struct notifier;

/* Loads the signing key (NULL path: events go out unsigned, with a warning). */
int notifier_new(const struct verifier_config *cfg, struct notifier **ret);
void notifier_free(struct notifier *n);
const char *const *notifier_webhooks(const struct notifier *n, size_t *ret_n);
/*
 * The DSSE envelope of an event, as JSON text (malloc'd). Thread-safe.
 */
int notifier_envelope(struct notifier *n, struct json_object *event, char **ret);
#define EVENT_PAYLOAD_TYPE "application/vnd.kumquat.event+json"
/* The same with another payloadType (revocation notices). */
int notifier_envelope_type(struct notifier *n, const char *type, struct json_object *event, char **ret);

/* ---- loop ---- */

struct loop;

int loop_new(const struct verifier_config *cfg, struct db *db, struct policies *ps,
	     struct notifier *nt, struct loop **ret);
/* Runs the loop on its own thread, and [attest] workers evaluation threads. */
int loop_start(struct loop *l);
/* Asks the thread to stop and waits for it; frees everything. NULL is fine. */
void loop_free(struct loop *l);
/* An agent was added, changed or deleted: the loop reloads it. Thread-safe. */
void loop_changed(struct loop *l, const char *id);

/* ---- the daemon ---- */

struct verifier {
	const struct verifier_config *cfg;
	struct db *db;
	struct policies *policies;
	struct notifier *notifier;
	struct loop *loop;
	struct http_client_config registrar_client;
};

const struct http_route *verifier_routes(size_t *ret_n);

/* Wall-clock time in seconds and monotonic milliseconds. */
int64_t verifier_now(void);
int64_t verifier_mono_ms(void);

/* True for a lowercase UUID (36 characters); lowercases uppercase ones in place. */
bool verifier_valid_id(char *id);
bool verifier_valid_name(const char *name);

#endif
