/* SPDX-License-Identifier: Apache-2.0 */
/* The verifier's database: agents, policies, verdict history, the webhook outbox. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json/json.h"
#include "verifier.h"

static const char *const migrations[] = {
	"CREATE TABLE policies ("
	"  name TEXT PRIMARY KEY, kind TEXT NOT NULL, document BLOB NOT NULL,"
	"  summary TEXT NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE agents ("
	"  id TEXT PRIMARY KEY, address TEXT NOT NULL, ak BLOB NOT NULL,"
	"  interval INTEGER NOT NULL, bank TEXT NOT NULL,"
	"  pcr_policy TEXT REFERENCES policies(name),"
	"  mb_policy TEXT REFERENCES policies(name),"
	"  ima_policy TEXT REFERENCES policies(name),"
	"  state TEXT NOT NULL, state_since INTEGER NOT NULL, reasons TEXT NOT NULL DEFAULT '[]',"
	"  verdicts INTEGER NOT NULL DEFAULT 0, passes INTEGER NOT NULL DEFAULT 0,"
	"  last_verdict_time INTEGER, last_pass_time INTEGER, attest_state BLOB,"
	"  created INTEGER NOT NULL, generation INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE history ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
	"  time INTEGER NOT NULL, state TEXT NOT NULL, pass INTEGER, reasons TEXT NOT NULL);"
	"CREATE INDEX history_agent ON history(agent_id, seq);"
	"CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);"
	"CREATE TABLE deliveries ("
	"  event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,"
	"  webhook TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL,"
	"  PRIMARY KEY (event_seq, webhook));"
	"CREATE INDEX deliveries_due ON deliveries(next_try);",
	/* 2: guests, attested through their host's deep quote */
	"ALTER TABLE agents ADD COLUMN kind TEXT NOT NULL DEFAULT 'host';"
	"ALTER TABLE agents ADD COLUMN host_id TEXT;"
	"ALTER TABLE agents ADD COLUMN vm_uuid TEXT;"
	"ALTER TABLE agents ADD COLUMN ek_name BLOB;"
	"CREATE INDEX agents_host ON agents(host_id);",
	/* 3: secure payloads: V of the latest payload per agent (encrypted to the agent's TPM payload key) */
	"CREATE TABLE payloads (agent_id TEXT PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,"
	"  payload_id TEXT NOT NULL, enc_v BLOB NOT NULL, state TEXT NOT NULL, reason TEXT,"
	"  created INTEGER NOT NULL, updated INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);",
	/* 4: revocation notices an agent subscribes to: none, host (about its host and the host's guests), all */
	"ALTER TABLE agents ADD COLUMN revocations TEXT NOT NULL DEFAULT 'none';",
};

static const char *const state_names[] = {
	[AGENT_ATTESTING] = "attesting",
	[AGENT_FAILED] = "failed",
	[AGENT_UNREACHABLE] = "unreachable",
	[AGENT_STOPPED] = "stopped",
};

const char *agent_state_name(enum agent_state s)
{
	return (unsigned)s < ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

int agent_state_from_name(const char *s, enum agent_state *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(state_names); i++)
		if (s && strcmp(s, state_names[i]) == 0) {
			*ret = (enum agent_state)i;
			return 0;
		}
	return kq_err(-EINVAL, "unknown agent state '%s'", s ? s : "(null)");
}

void agent_row_clear(struct agent_row *r)
{
	free(r->ak);
	free(r->st);
	memset(r, 0, sizeof(*r));
}

int store_open(const char *path, struct db **ret)
{
	return db_open(path, migrations, ARRAY_SIZE(migrations), ret);
}

static void copy_col(char *dst, size_t n, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(dst, n, "%s", t ? (const char *)t : "");
}

struct load_ctx {
	const char *id;
	struct agent_row *row;
};

static int load_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct load_ctx *c = ud;
	struct agent_row *r = c->row;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	const void *blob;
	int n, rc;

	(void)db;
	rc = db_prepare(h, "SELECT id, address, ak, interval, bank, pcr_policy, mb_policy, ima_policy,"
			   " state, generation, attest_state, kind, host_id, vm_uuid, ek_name,"
			   " EXISTS (SELECT 1 FROM payloads p WHERE p.agent_id = agents.id AND p.state = 'pending')"
			   " FROM agents WHERE id = ?", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return kq_err(-ENOENT, "no agent %s", c->id);
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "load agent");
	copy_col(r->id, sizeof(r->id), s, 0);
	copy_col(r->address, sizeof(r->address), s, 1);
	n = sqlite3_column_bytes(s, 2);
	r->ak = malloc(n > 0 ? (size_t)n : 1);
	if (!r->ak)
		return kq_err(-ENOMEM, "out of memory");
	memcpy(r->ak, sqlite3_column_blob(s, 2), (size_t)n);
	r->ak_len = (size_t)n;
	r->interval = (uint32_t)sqlite3_column_int64(s, 3);
	{
		char bank[16];

		copy_col(bank, sizeof(bank), s, 4);
		r->bank = kq_hash_from_name(bank);
	}
	copy_col(r->pcr_policy, sizeof(r->pcr_policy), s, 5);
	copy_col(r->mb_policy, sizeof(r->mb_policy), s, 6);
	copy_col(r->ima_policy, sizeof(r->ima_policy), s, 7);
	if (agent_state_from_name((const char *)sqlite3_column_text(s, 8), &r->state) < 0)
		r->state = AGENT_FAILED;
	r->generation = sqlite3_column_int64(s, 9);
	blob = sqlite3_column_blob(s, 10);
	n = sqlite3_column_bytes(s, 10);
	if (blob && n > 0) {
		/* kept packed; a state that does not read is dropped (the next round starts afresh) */
		struct attest_state *st = malloc(sizeof(*st));

		if (!st)
			return kq_err(-ENOMEM, "out of memory");
		if (attest_state_unpack(blob, (size_t)n, st) == 0 &&
		    attest_state_pack(st, &r->st, &r->st_len) == 0) {
			r->have_state = true;
			r->ima_next = st->ima.next_index;
		}
		free(st);
	}
	r->payload_pending = sqlite3_column_int(s, 15) != 0;
	r->guest = sqlite3_column_text(s, 11) && strcmp((const char *)sqlite3_column_text(s, 11), "guest") == 0;
	if (r->guest) {
		char vm[40];
		size_t j = 0;

		copy_col(r->host_id, sizeof(r->host_id), s, 12);
		copy_col(vm, sizeof(vm), s, 13);
		/* the 16 bytes of the UUID, as the deep-quote leaf holds them */
		for (size_t i = 0; vm[i] && j < 32; i++) {
			int d = kq_hex_digit((unsigned char)vm[i]);

			if (vm[i] == '-')
				continue;
			if (d < 0)
				break;
			r->vm_uuid[j / 2] = (uint8_t)(j % 2 ? r->vm_uuid[j / 2] | d : d << 4);
			j++;
		}
		if (j != 32)
			return kq_err(-EBADMSG, "agent %s: stored VM UUID is damaged", r->id);
		n = sqlite3_column_bytes(s, 14);
		if (n < 2 || (size_t)n > sizeof(r->ek_name))
			return kq_err(-EBADMSG, "agent %s: stored EK name is damaged", r->id);
		memcpy(r->ek_name, sqlite3_column_blob(s, 14), (size_t)n);
		r->ek_name_len = (size_t)n;
	}
	return 0;
}

int store_agent_load(struct db *db, const char *id, struct agent_row *ret)
{
	struct agent_row row = {};
	int r = db_tx(db, load_fn, &(struct load_ctx){ .id = id, .row = &row });

	if (r < 0) {
		agent_row_clear(&row);
		return r;
	}
	*ret = row;
	return 0;
}

struct ids_ctx {
	char **ids;
	size_t n;
};

static int ids_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct ids_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int rc;

	(void)db;
	rc = db_prepare(h, "SELECT id FROM agents ORDER BY id", &s);
	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (c->n == cap) {
			char **n = reallocarray(c->ids, cap ? cap * 2 : 64, sizeof(*n));

			if (!n)
				return kq_err(-ENOMEM, "out of memory");
			c->ids = n;
			cap = cap ? cap * 2 : 64;
		}
		c->ids[c->n] = strdup((const char *)sqlite3_column_text(s, 0));
		if (!c->ids[c->n])
			return kq_err(-ENOMEM, "out of memory");
		c->n++;
	}
	return rc == SQLITE_DONE ? 0 : db_err(h, rc, "list agents");
}

int store_agent_ids(struct db *db, char ***ret, size_t *ret_n)
{
	struct ids_ctx c = {};
	int r = db_tx(db, ids_fn, &c);

	if (r < 0) {
		for (size_t i = 0; i < c.n; i++)
			free(c.ids[i]);
		free(c.ids);
		return r;
	}
	*ret = c.ids;
	*ret_n = c.n;
	return 0;
}

/* ---- rounds ---- */

struct round_ctx {
	const char *id;
	int64_t gen;
	const struct round_result *res;
	struct notifier *nt;
	bool changed;
};

static int exec_sql(sqlite3 *h, const char *sql)
{
	return db_err(h, sqlite3_exec(h, sql, NULL, NULL, NULL), "sql");
}

/*
 * An event of the given payloadType: its row (which gives it its seq, added
 * to ev), the DSSE envelope signed by nt, and a delivery to every webhook and
 * to each target the query agents_sql selects (bound: ?1 seq, ?2 now, then
 * its own parameters ?3 and ?4 from p3, p4). An event nobody is to get is not
 * kept.
 */
static int queue_signed(sqlite3 *h, struct notifier *nt, const char *type, struct json_object *ev, int64_t now,
			const char *agents_sql, const char *p3, const char *p4)
{
	const char *const *hooks;
	size_t n_hooks;
	_cleanup_(db_stmt_freep) sqlite3_stmt *ins = NULL, *upd = NULL, *del = NULL, *subs = NULL;
	_cleanup_free_ char *body = NULL;
	int64_t seq;
	int n = 0, rc;

	hooks = notifier_webhooks(nt, &n_hooks);
	if ((rc = db_prepare(h, "INSERT INTO events (body) VALUES ('')", &ins)) < 0)
		return rc;
	if ((rc = sqlite3_step(ins)) != SQLITE_DONE)
		return db_err(h, rc, "queue event");
	seq = sqlite3_last_insert_rowid(h);
	json_object_object_add(ev, "seq", json_object_new_int64(seq));
	if ((rc = notifier_envelope_type(nt, type, ev, &body)) < 0)
		return rc;
	if ((rc = db_prepare(h, "UPDATE events SET body = ? WHERE seq = ?", &upd)) < 0)
		return rc;
	sqlite3_bind_text(upd, 1, body, -1, SQLITE_STATIC);
	sqlite3_bind_int64(upd, 2, seq);
	if ((rc = sqlite3_step(upd)) != SQLITE_DONE)
		return db_err(h, rc, "queue event");
	if ((rc = db_prepare(h, "INSERT INTO deliveries (event_seq, webhook, next_try) VALUES (?, ?, ?)", &del)) < 0)
		return rc;
	for (size_t i = 0; i < n_hooks; i++, n++) {
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, seq);
		sqlite3_bind_text(del, 2, hooks[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(del, 3, now);
		if ((rc = sqlite3_step(del)) != SQLITE_DONE)
			return db_err(h, rc, "queue delivery");
	}
	if (agents_sql) {
		if ((rc = db_prepare(h, agents_sql, &subs)) < 0)
			return rc;
		sqlite3_bind_int64(subs, 1, seq);
		sqlite3_bind_int64(subs, 2, now);
		sqlite3_bind_text(subs, 3, p3, -1, SQLITE_STATIC);
		sqlite3_bind_text(subs, 4, p4, -1, SQLITE_STATIC);
		if ((rc = sqlite3_step(subs)) != SQLITE_DONE)
			return db_err(h, rc, "queue delivery");
		n += sqlite3_changes(h);
	}
	if (n == 0) {
		/* nobody to tell: no event left waiting */
		char sql[64];

		snprintf(sql, sizeof(sql), "DELETE FROM events WHERE seq = %" PRId64, seq);
		return exec_sql(h, sql);
	}
	return 0;
}

static void add_time(struct json_object *ev, int64_t now)
{
	char when[32];
	struct tm tm;
	time_t t = (time_t)now;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(ev, "time", json_object_new_string(when));
	json_object_object_add(ev, "unix_time", json_object_new_int64(now));
}

/* Queues the state change as an event to every webhook. */
static int queue_event(sqlite3 *h, struct round_ctx *c, const char *old_state, int64_t now)
{
	size_t n_hooks;
	struct json_object *ev;
	int rc;

	notifier_webhooks(c->nt, &n_hooks);
	if (n_hooks == 0)
		return 0;
	ev = json_object_new_object();
	json_object_object_add(ev, "event", json_object_new_string("state_changed"));
	add_time(ev, now);
	json_object_object_add(ev, "agent_id", json_object_new_string(c->id));
	json_object_object_add(ev, "old_state", json_object_new_string(old_state));
	json_object_object_add(ev, "new_state", json_object_new_string(agent_state_name(c->res->state)));
	json_object_object_add(ev, "reasons", json_object_get(c->res->reasons));
	rc = queue_signed(h, c->nt, EVENT_PAYLOAD_TYPE, ev, now, NULL, NULL, NULL);
	json_object_put(ev);
	return rc;
}

static struct json_object *col_json(sqlite3_stmt *s, int col);

/*
 * An agent failed: a revocation notice, signed, to every webhook and to the
 * agents subscribed to it ("agent:ID" deliveries): those with revocations
 * "all", and those with "host" on the failed agent's host (the host itself
 * for a host). Not to the failed agent.
 */
static int queue_revocation(sqlite3 *h, struct round_ctx *c, int64_t now)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *a = NULL;
	struct json_object *ev;
	char scope[VERIFIER_ID_LEN + 1];
	int rc;

	rc = db_prepare(h, "SELECT kind, vm_uuid, host_id FROM agents WHERE id = ?", &a);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(a, 1, c->id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(a)) != SQLITE_ROW)
		return db_err(h, rc == SQLITE_DONE ? SQLITE_ERROR : rc, "revocation");
	copy_col(scope, sizeof(scope), a, 2);
	if (!scope[0])
		snprintf(scope, sizeof(scope), "%s", c->id);
	ev = json_object_new_object();
	json_object_object_add(ev, "event", json_object_new_string("revocation"));
	add_time(ev, now);
	json_object_object_add(ev, "agent_id", json_object_new_string(c->id));
	json_object_object_add(ev, "kind", col_json(a, 0));
	json_object_object_add(ev, "vm_uuid", col_json(a, 1));
	json_object_object_add(ev, "host_id", json_object_new_string(scope));
	json_object_object_add(ev, "reason", json_object_array_length(c->res->reasons) > 0 ?
						     json_object_get(json_object_array_get_idx(c->res->reasons, 0)) : NULL);
	json_object_object_add(ev, "reasons", json_object_get(c->res->reasons));
	rc = queue_signed(h, c->nt, REVOCATION_PAYLOAD_TYPE, ev, now,
			  "INSERT INTO deliveries (event_seq, webhook, next_try) SELECT ?1, 'agent:' || id, ?2 FROM agents"
			  " WHERE id != ?3 AND (revocations = 'all' OR (revocations = 'host' AND COALESCE(host_id, id) = ?4))",
			  c->id, scope);
	json_object_put(ev);
	return rc;
}

/* One round, inside a transaction. -ESTALE / -ENOENT before anything is written. */

static int one_round(struct db *db, sqlite3 *h, struct round_ctx *c)
{
	const struct round_result *res = c->res;
	_cleanup_(db_stmt_resetp) sqlite3_stmt *s = NULL, *u = NULL, *hist = NULL, *trim = NULL;
	const char *reasons = json_object_to_json_string_ext(res->reasons, JSON_C_TO_STRING_PLAIN);
	const char *new_state = agent_state_name(res->state);
	char old_state[16];
	int64_t now = verifier_now();
	bool state_changed, reasons_changed;
	const unsigned char *old_reasons;
	int rc;

	rc = db_cached(db, "SELECT generation, state, reasons FROM agents WHERE id = ?", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return kq_err(-ENOENT, "agent %s is gone", c->id);
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "round");
	if (sqlite3_column_int64(s, 0) != c->gen)
		return kq_err(-ESTALE, "agent %s changed during the round", c->id);
	copy_col(old_state, sizeof(old_state), s, 1);
	old_reasons = sqlite3_column_text(s, 2);
	state_changed = strcmp(old_state, new_state) != 0;
	reasons_changed = strcmp(old_reasons ? (const char *)old_reasons : "[]", reasons) != 0;
	sqlite3_reset(s);

	rc = db_cached(db, "UPDATE agents SET state = ?1, reasons = ?2,"
			   " state_since = CASE WHEN state = ?1 THEN state_since ELSE ?3 END,"
			   " verdicts = verdicts + ?4, passes = passes + ?5,"
			   " last_verdict_time = CASE WHEN ?4 THEN ?3 ELSE last_verdict_time END,"
			   " last_pass_time = CASE WHEN ?5 THEN ?3 ELSE last_pass_time END,"
			   " attest_state = COALESCE(?6, attest_state) WHERE id = ?7", &u);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(u, 1, new_state, -1, SQLITE_STATIC);
	sqlite3_bind_text(u, 2, reasons, -1, SQLITE_STATIC);
	sqlite3_bind_int64(u, 3, now);
	sqlite3_bind_int(u, 4, res->evaluated);
	sqlite3_bind_int(u, 5, res->evaluated && res->pass);
	if (res->st)
		sqlite3_bind_blob(u, 6, res->st, (int)res->st_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(u, 6);
	sqlite3_bind_text(u, 7, c->id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(u)) != SQLITE_DONE)
		return db_err(h, rc, "round");

	if (state_changed || reasons_changed) {
		rc = db_cached(db, "INSERT INTO history (agent_id, time, state, pass, reasons) VALUES (?, ?, ?, ?, ?)",
			       &hist);
		if (rc < 0)
			return rc;
		sqlite3_bind_text(hist, 1, c->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(hist, 2, now);
		sqlite3_bind_text(hist, 3, new_state, -1, SQLITE_STATIC);
		if (res->evaluated)
			sqlite3_bind_int(hist, 4, res->pass);
		else
			sqlite3_bind_null(hist, 4);
		sqlite3_bind_text(hist, 5, reasons, -1, SQLITE_STATIC);
		if ((rc = sqlite3_step(hist)) != SQLITE_DONE)
			return db_err(h, rc, "history");
		rc = db_cached(db, "DELETE FROM history WHERE agent_id = ?1 AND seq <= "
				   "(SELECT seq FROM history WHERE agent_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
			       &trim);
		if (rc < 0)
			return rc;
		sqlite3_bind_text(trim, 1, c->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(trim, 2, (int64_t)(res->history_max ? res->history_max : 1));
		if ((rc = sqlite3_step(trim)) != SQLITE_DONE)
			return db_err(h, rc, "history");
	}
	if (state_changed) {
		rc = queue_event(h, c, old_state, now);
		if (rc >= 0 && res->state == AGENT_FAILED)
			rc = queue_revocation(h, c, now);
		if (rc < 0)
			return rc;
	}
	c->changed = state_changed;
	return 0;
}

static int round_fn(struct db *db, sqlite3 *h, void *ud)
{
	return one_round(db, h, ud);
}

int store_round(struct db *db, struct notifier *nt, const char *id, int64_t gen,
		const struct round_result *res, bool *ret_changed)
{
	struct round_ctx c = { .id = id, .gen = gen, .res = res, .nt = nt };
	int r = db_tx(db, round_fn, &c);

	if (r >= 0 && ret_changed)
		*ret_changed = c.changed;
	return r;
}

struct rounds_ctx {
	struct notifier *nt;
	struct round_item *items;
	size_t n;
};

static int rounds_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct rounds_ctx *c = ud;

	for (size_t i = 0; i < c->n; i++) {
		struct round_item *it = &c->items[i];
		struct round_ctx rc = { .id = it->id, .gen = it->gen, .res = &it->res, .nt = c->nt };
		int r = one_round(db, h, &rc);

		if (r < 0 && r != -ESTALE && r != -ENOENT)
			return r;
		it->ret = r < 0 ? r : 0;
		it->changed = r == 0 && rc.changed;
	}
	return 0;
}

int store_rounds(struct db *db, struct notifier *nt, struct round_item *items, size_t n)
{
	struct rounds_ctx c = { .nt = nt, .items = items, .n = n };
	int r;

	if (n == 0)
		return 0;
	r = db_tx(db, rounds_fn, &c);
	if (r < 0)
		for (size_t i = 0; i < n; i++) {
			items[i].ret = r;
			items[i].changed = false;
		}
	return r;
}

/* ---- outbox ---- */

struct due_ctx {
	int64_t now;
	size_t max;
	const int64_t *skip;
	size_t n_skip;
	struct outbox_item *items;
	size_t n;
};

static int due_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct due_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int rc;

	(void)db;
	rc = db_prepare(h, "SELECT d.event_seq, d.webhook, e.body, d.attempts FROM deliveries d"
			   " JOIN events e ON e.seq = d.event_seq WHERE d.next_try <= ?"
			   " ORDER BY d.event_seq LIMIT ?", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(s, 1, c->now);
	sqlite3_bind_int64(s, 2, (int64_t)(c->max + c->n_skip));
	c->items = calloc(c->max ? c->max : 1, sizeof(*c->items));
	if (!c->items)
		return kq_err(-ENOMEM, "out of memory");
	while (c->n < c->max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct outbox_item *it = &c->items[c->n];
		int64_t seq = sqlite3_column_int64(s, 0);
		bool skip = false;

		for (size_t i = 0; i < c->n_skip; i++)
			skip |= c->skip[i] == seq;
		if (skip)
			continue;
		it->event_seq = seq;
		it->webhook = strdup((const char *)sqlite3_column_text(s, 1));
		it->body = strdup((const char *)sqlite3_column_text(s, 2));
		it->attempts = sqlite3_column_int64(s, 3);
		c->n++;
		if (!it->webhook || !it->body)
			return kq_err(-ENOMEM, "out of memory");
	}
	return rc == SQLITE_DONE || rc == SQLITE_ROW || c->n == c->max ? 0 : db_err(h, rc, "outbox");
}

void outbox_items_free(struct outbox_item *items, size_t n)
{
	for (size_t i = 0; i < n && items; i++) {
		free(items[i].webhook);
		free(items[i].body);
	}
	free(items);
}

int store_outbox_due(struct db *db, int64_t now, size_t max, const int64_t *skip, size_t n_skip,
		     struct outbox_item **ret, size_t *ret_n)
{
	struct due_ctx c = { .now = now, .max = max, .skip = skip, .n_skip = n_skip };
	int r = db_tx(db, due_fn, &c);

	if (r < 0) {
		outbox_items_free(c.items, c.n);
		return r;
	}
	*ret = c.items;
	*ret_n = c.n;
	return 0;
}

struct done_ctx {
	int64_t seq;
	const char *webhook;
	bool ok;
	int64_t next_try;
	uint64_t max_attempts;
	bool dropped;
};

static int done_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct done_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int rc;

	(void)db;
	if (c->ok) {
		rc = db_prepare(h, "DELETE FROM deliveries WHERE event_seq = ? AND webhook = ?", &s);
	} else {
		rc = db_prepare(h, "UPDATE deliveries SET attempts = attempts + 1, next_try = ?3"
				   " WHERE event_seq = ?1 AND webhook = ?2", &s);
		if (rc >= 0)
			sqlite3_bind_int64(s, 3, c->next_try);
	}
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(s, 1, c->seq);
	sqlite3_bind_text(s, 2, c->webhook, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) != SQLITE_DONE)
		return db_err(h, rc, "outbox");
	sqlite3_finalize(TAKE_PTR(s));
	if (!c->ok) {
		rc = db_prepare(h, "DELETE FROM deliveries WHERE event_seq = ? AND webhook = ? AND attempts >= ?", &s);
		if (rc < 0)
			return rc;
		sqlite3_bind_int64(s, 1, c->seq);
		sqlite3_bind_text(s, 2, c->webhook, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (int64_t)c->max_attempts);
		if ((rc = sqlite3_step(s)) != SQLITE_DONE)
			return db_err(h, rc, "outbox");
		c->dropped = sqlite3_changes(h) > 0;
	}
	/* an event delivered everywhere (or given up on) is done */
	return exec_sql(h, "DELETE FROM events WHERE body != '' AND"
			   " seq NOT IN (SELECT event_seq FROM deliveries)");
}

int store_outbox_done(struct db *db, int64_t seq, const char *webhook, bool ok, int64_t next_try,
		      uint64_t max_attempts, bool *ret_dropped)
{
	struct done_ctx c = { .seq = seq, .webhook = webhook, .ok = ok, .next_try = next_try,
			      .max_attempts = max_attempts };
	int r = db_tx(db, done_fn, &c);

	if (r >= 0 && ret_dropped)
		*ret_dropped = c.dropped;
	return r;
}

/* ---- agents, for the API ---- */

static const char *const policy_cols[3] = { "pcr_policy", "mb_policy", "ima_policy" };
static const char *const policy_kinds[3] = { "pcr", "mb", "ima" };

/* A named policy must exist and be of the kind its slot takes. */
static int check_policy(sqlite3 *h, const char *name, unsigned slot)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int rc;

	if (!name || !name[0])
		return 0;
	rc = db_prepare(h, "SELECT kind FROM policies WHERE name = ?", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return kq_err(-ENOENT, "no policy named '%s'", name);
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "policy");
	if (strcmp((const char *)sqlite3_column_text(s, 0), policy_kinds[slot]) != 0)
		return kq_err(-EMEDIUMTYPE, "policy '%s' is a %s policy, not %s", name,
			      (const char *)sqlite3_column_text(s, 0), policy_kinds[slot]);
	return 0;
}

struct agent_ctx {
	const char *id;
	const struct agent_spec *spec;
	struct notifier *nt;
};

static void bind_opt_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v && v[0])
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

static int insert_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct agent_ctx *c = ud;
	const struct agent_spec *a = c->spec;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int64_t now = verifier_now();
	int rc;

	(void)db;
	for (unsigned i = 0; i < 3; i++)
		if ((rc = check_policy(h, a->policy[i], i)) < 0)
			return rc;
	if (a->host_id) {
		_cleanup_(db_stmt_freep) sqlite3_stmt *hs = NULL;

		rc = db_prepare(h, "SELECT kind FROM agents WHERE id = ?", &hs);
		if (rc < 0)
			return rc;
		sqlite3_bind_text(hs, 1, a->host_id, -1, SQLITE_STATIC);
		rc = sqlite3_step(hs);
		if (rc == SQLITE_DONE)
			return kq_err(-ENOENT, "host %s is not added to this verifier (add it first)", a->host_id);
		if (rc != SQLITE_ROW)
			return db_err(h, rc, "host lookup");
		if (strcmp((const char *)sqlite3_column_text(hs, 0), "host") != 0)
			return kq_err(-EMEDIUMTYPE, "%s is not a host", a->host_id);
	}
	rc = db_prepare(h, "INSERT INTO agents (id, address, ak, interval, bank, pcr_policy, mb_policy,"
			   " ima_policy, state, state_since, created, kind, host_id, vm_uuid, ek_name, revocations)"
			   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'attesting', ?, ?, ?, ?, ?, ?, ?)",
			&s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, a->address, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, a->ak, (int)a->ak_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, a->interval);
	sqlite3_bind_text(s, 5, a->bank, -1, SQLITE_STATIC);
	for (unsigned i = 0; i < 3; i++)
		bind_opt_text(s, 6 + (int)i, a->policy[i]);
	sqlite3_bind_int64(s, 9, now);
	sqlite3_bind_int64(s, 10, now);
	sqlite3_bind_text(s, 11, a->host_id ? "guest" : "host", -1, SQLITE_STATIC);
	bind_opt_text(s, 12, a->host_id);
	bind_opt_text(s, 13, a->vm_uuid);
	if (a->ek_name)
		sqlite3_bind_blob(s, 14, a->ek_name, (int)a->ek_name_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 14);
	sqlite3_bind_text(s, 15, a->revocations ? a->revocations : "none", -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT)
		return kq_err(-EEXIST, "agent %s is already added", c->id);
	return rc == SQLITE_DONE ? 0 : db_err(h, rc, "add agent");
}

int store_agent_insert(struct db *db, const char *id, const struct agent_spec *spec)
{
	return db_tx(db, insert_fn, &(struct agent_ctx){ .id = id, .spec = spec });
}

static int set_text(sqlite3 *h, const char *id, const char *col, const char *val)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	char sql[96];
	int rc;

	snprintf(sql, sizeof(sql), "UPDATE agents SET %s = ? WHERE id = ?", col);
	rc = db_prepare(h, sql, &s);
	if (rc < 0)
		return rc;
	bind_opt_text(s, 1, val);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	return rc == SQLITE_DONE ? 0 : db_err(h, rc, "update agent");
}

static int patch_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct agent_ctx *c = ud;
	const struct agent_spec *a = c->spec;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL, *u = NULL;
	char state[16];
	int rc;

	rc = db_prepare(h, "SELECT state, generation FROM agents WHERE id = ?", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return kq_err(-ENOENT, "no agent %s", c->id);
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "update agent");
	copy_col(state, sizeof(state), s, 0);

	for (unsigned i = 0; i < 3; i++) {
		if (!a->policy[i])
			continue;
		if ((rc = check_policy(h, a->policy[i], i)) < 0 ||
		    (rc = set_text(h, c->id, policy_cols[i], a->policy[i])) < 0)
			return rc;
	}
	if (a->address && (rc = set_text(h, c->id, "address", a->address)) < 0)
		return rc;
	if (a->bank && (rc = set_text(h, c->id, "bank", a->bank)) < 0)
		return rc;
	if (a->revocations && (rc = set_text(h, c->id, "revocations", a->revocations)) < 0)
		return rc;
	rc = db_prepare(h, "UPDATE agents SET generation = generation + 1,"
			   " interval = CASE WHEN ?1 >= 0 THEN ?1 ELSE interval END WHERE id = ?2", &u);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(u, 1, a->interval);
	sqlite3_bind_text(u, 2, c->id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(u)) != SQLITE_DONE)
		return db_err(h, rc, "update agent");

	if (a->stop || a->resume) {
		enum agent_state to = a->stop ? AGENT_STOPPED : AGENT_ATTESTING;
		struct json_object *none = json_object_new_array();
		struct round_ctx rc2 = {
			.id = c->id, .gen = sqlite3_column_int64(s, 1) + 1, .nt = c->nt,
			.res = &(struct round_result){ .state = to, .reasons = none, .history_max = 1000000 },
		};

		if (strcmp(state, agent_state_name(to)) == 0) {
			json_object_put(none);
			return 0;
		}
		rc = round_fn(db, h, &rc2);
		json_object_put(none);
		return rc;
	}
	return 0;
}

int store_agent_patch(struct db *db, struct notifier *nt, const char *id, const struct agent_spec *spec)
{
	return db_tx(db, patch_fn, &(struct agent_ctx){ .id = id, .spec = spec, .nt = nt });
}

static int delete_fn(struct db *db, sqlite3 *h, void *ud)
{
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int rc;

	(void)db;
	{
		_cleanup_(db_stmt_freep) sqlite3_stmt *g = NULL;

		rc = db_prepare(h, "SELECT id FROM agents WHERE host_id = ? LIMIT 1", &g);
		if (rc < 0)
			return rc;
		sqlite3_bind_text(g, 1, ud, -1, SQLITE_STATIC);
		if (sqlite3_step(g) == SQLITE_ROW)
			return kq_err(-EBUSY, "host %s still has guests here (%s, ...): delete them first", (const char *)ud,
				      (const char *)sqlite3_column_text(g, 0));
	}
	rc = db_prepare(h, "DELETE FROM agents WHERE id = ?", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, ud, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) != SQLITE_DONE)
		return db_err(h, rc, "delete agent");
	return sqlite3_changes(h) ? 0 : kq_err(-ENOENT, "no agent %s", (const char *)ud);
}

int store_agent_delete(struct db *db, const char *id)
{
	return db_tx(db, delete_fn, (void *)id);
}

static struct json_object *col_json(sqlite3_stmt *s, int col)
{
	switch (sqlite3_column_type(s, col)) {
	case SQLITE_NULL:
		return NULL;
	case SQLITE_INTEGER:
		return json_object_new_int64(sqlite3_column_int64(s, col));
	default:
		return json_object_new_string((const char *)sqlite3_column_text(s, col));
	}
}

/* Stored JSON text (reasons) back into JSON; our own writes, parsed strictly anyway. */
static struct json_object *reasons_json(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	struct json_object *o = NULL;

	if (!t || json_parse_body(t, strlen((const char *)t), 1u << 20, 8, &o) < 0)
		return json_object_new_array();
	return o;
}

#define AGENT_COLS "id, address, interval, bank, pcr_policy, mb_policy, ima_policy, state, state_since," \
		   " reasons, verdicts, passes, last_verdict_time, last_pass_time, created, attest_state, kind, host_id, vm_uuid," \
		   " revocations"

static struct json_object *agent_obj(sqlite3_stmt *s, bool full)
{
	static const char *const names[] = { "id", "address", "interval", "bank", "pcr_policy", "mb_policy",
					     "ima_policy", "state", "state_since" };
	struct json_object *o = json_object_new_object();

	for (int i = 0; i < (int)ARRAY_SIZE(names); i++)
		json_object_object_add(o, names[i], col_json(s, i));
	json_object_object_add(o, "reasons", reasons_json(s, 9));
	json_object_object_add(o, "verdicts", col_json(s, 10));
	json_object_object_add(o, "passes", col_json(s, 11));
	json_object_object_add(o, "last_verdict_time", col_json(s, 12));
	json_object_object_add(o, "last_pass_time", col_json(s, 13));
	json_object_object_add(o, "kind", col_json(s, 16));
	json_object_object_add(o, "host_id", col_json(s, 17));
	json_object_object_add(o, "vm_uuid", col_json(s, 18));
	json_object_object_add(o, "revocations", col_json(s, 19));
	if (full) {
		const void *blob = sqlite3_column_blob(s, 15);
		size_t n = (size_t)sqlite3_column_bytes(s, 15);
		_cleanup_free_ struct attest_state *st = malloc(sizeof(*st));

		json_object_object_add(o, "created", col_json(s, 14));
		if (st && blob && attest_state_unpack(blob, n, st) == 0) {
			json_object_object_add(o, "ima_offset", json_object_new_uint64(st->ima.next_index));
			json_object_object_add(o, "boot_id", json_object_new_string(st->boot_id));
			json_object_object_add(o, "reset_count", json_object_new_int64(st->reset_count));
		} else {
			json_object_object_add(o, "ima_offset", json_object_new_int64(0));
			json_object_object_add(o, "boot_id", NULL);
		}
	}
	return o;
}

struct json_ctx {
	const char *key;
	bool flag;
	struct json_object *out;
};

static int agent_json_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct json_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int rc;

	(void)db;
	rc = db_prepare(h, "SELECT " AGENT_COLS " FROM agents WHERE id = ?", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return kq_err(-ENOENT, "no agent %s", c->key);
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "agent");
	c->out = agent_obj(s, true);
	return 0;
}

int store_agent_json(struct db *db, const char *id, struct json_object **ret)
{
	struct json_ctx c = { .key = id };
	int r = db_tx(db, agent_json_fn, &c);

	if (r >= 0)
		*ret = c.out;
	return r;
}

static int agents_json_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct json_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int rc;

	(void)db;
	rc = db_prepare(h, "SELECT " AGENT_COLS " FROM agents ORDER BY id", &s);
	if (rc < 0)
		return rc;
	c->out = json_object_new_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_object_array_add(c->out, agent_obj(s, false));
	if (rc != SQLITE_DONE) {
		json_object_put(TAKE_PTR(c->out));
		return db_err(h, rc, "agents");
	}
	return 0;
}

int store_agents_json(struct db *db, struct json_object **ret)
{
	struct json_ctx c = {};
	int r = db_tx(db, agents_json_fn, &c);

	if (r >= 0)
		*ret = c.out;
	return r;
}

static int history_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct json_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL, *e = NULL;
	int rc;

	(void)db;
	rc = db_prepare(h, "SELECT 1 FROM agents WHERE id = ?", &e);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(e, 1, c->key, -1, SQLITE_STATIC);
	if (sqlite3_step(e) != SQLITE_ROW)
		return kq_err(-ENOENT, "no agent %s", c->key);
	rc = db_prepare(h, "SELECT time, state, pass, reasons FROM history WHERE agent_id = ? ORDER BY seq DESC", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->key, -1, SQLITE_STATIC);
	c->out = json_object_new_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "time", col_json(s, 0));
		json_object_object_add(o, "state", col_json(s, 1));
		json_object_object_add(o, "pass", sqlite3_column_type(s, 2) == SQLITE_NULL ? NULL :
					  json_object_new_boolean(sqlite3_column_int(s, 2)));
		json_object_object_add(o, "reasons", reasons_json(s, 3));
		json_object_array_add(c->out, o);
	}
	if (rc != SQLITE_DONE) {
		json_object_put(TAKE_PTR(c->out));
		return db_err(h, rc, "history");
	}
	return 0;
}

int store_history_json(struct db *db, const char *id, struct json_object **ret)
{
	struct json_ctx c = { .key = id };
	int r = db_tx(db, history_fn, &c);

	if (r >= 0)
		*ret = c.out;
	return r;
}

/* ---- policies, for the API ---- */

struct policy_ctx {
	const char *name, *kind, *summary;
	const uint8_t *doc;
	size_t len;
	char *ret_kind;
	uint8_t *ret_doc;
	size_t ret_len;
};

static int pol_insert_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct policy_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int rc;

	(void)db;
	rc = db_prepare(h, "INSERT INTO policies (name, kind, document, summary, created) VALUES (?, ?, ?, ?, ?)", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, c->kind, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(s, 3, c->doc, c->len, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, c->summary, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, verifier_now());
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT)
		return kq_err(-EEXIST, "a policy named '%s' exists (policies are immutable: add it under a new name)",
			      c->name);
	return rc == SQLITE_DONE ? 0 : db_err(h, rc, "add policy");
}

int store_policy_insert(struct db *db, const char *name, const char *kind, const uint8_t *doc,
			size_t len, const char *summary)
{
	return db_tx(db, pol_insert_fn,
		     &(struct policy_ctx){ .name = name, .kind = kind, .doc = doc, .len = len, .summary = summary });
}

static int pol_load_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct policy_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int rc, n;

	(void)db;
	rc = db_prepare(h, "SELECT kind, document FROM policies WHERE name = ?", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		return kq_err(-ENOENT, "no policy named '%s'", c->name);
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "policy");
	n = sqlite3_column_bytes(s, 1);
	c->ret_kind = strdup((const char *)sqlite3_column_text(s, 0));
	c->ret_doc = malloc((size_t)n + 1);
	if (!c->ret_kind || !c->ret_doc)
		return kq_err(-ENOMEM, "out of memory");
	memcpy(c->ret_doc, sqlite3_column_blob(s, 1), (size_t)n);
	c->ret_doc[n] = 0;
	c->ret_len = (size_t)n;
	return 0;
}

int store_policy_load(struct db *db, const char *name, char **ret_kind, uint8_t **ret_doc, size_t *ret_len)
{
	struct policy_ctx c = { .name = name };
	int r = db_tx(db, pol_load_fn, &c);

	if (r < 0) {
		free(c.ret_kind);
		free(c.ret_doc);
		return r;
	}
	*ret_kind = c.ret_kind;
	*ret_doc = c.ret_doc;
	*ret_len = c.ret_len;
	return 0;
}

static struct json_object *policy_obj(sqlite3_stmt *s, bool with_doc)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", col_json(s, 0));
	json_object_object_add(o, "kind", col_json(s, 1));
	json_object_object_add(o, "created", col_json(s, 2));
	json_object_object_add(o, "summary", col_json(s, 3));
	if (with_doc)
		json_object_object_add(o, "document", json_new_base64(sqlite3_column_blob(s, 4),
								      (size_t)sqlite3_column_bytes(s, 4)));
	return o;
}

static int pol_json_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct json_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int rc;

	(void)db;
	if (c->key) {
		rc = db_prepare(h, "SELECT name, kind, created, summary, document FROM policies WHERE name = ?", &s);
		if (rc < 0)
			return rc;
		sqlite3_bind_text(s, 1, c->key, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE)
			return kq_err(-ENOENT, "no policy named '%s'", c->key);
		if (rc != SQLITE_ROW)
			return db_err(h, rc, "policy");
		c->out = policy_obj(s, c->flag);
		return 0;
	}
	rc = db_prepare(h, "SELECT name, kind, created, summary FROM policies ORDER BY name", &s);
	if (rc < 0)
		return rc;
	c->out = json_object_new_array();
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_object_array_add(c->out, policy_obj(s, false));
	if (rc != SQLITE_DONE) {
		json_object_put(TAKE_PTR(c->out));
		return db_err(h, rc, "policies");
	}
	return 0;
}

int store_policy_json(struct db *db, const char *name, bool with_document, struct json_object **ret)
{
	struct json_ctx c = { .key = name, .flag = with_document };
	int r = db_tx(db, pol_json_fn, &c);

	if (r >= 0)
		*ret = c.out;
	return r;
}

int store_policies_json(struct db *db, struct json_object **ret)
{
	struct json_ctx c = {};
	int r = db_tx(db, pol_json_fn, &c);

	if (r >= 0)
		*ret = c.out;
	return r;
}

static int pol_delete_fn(struct db *db, sqlite3 *h, void *ud)
{
	const char *name = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *u = NULL, *s = NULL;
	int rc;

	(void)db;
	rc = db_prepare(h, "SELECT id FROM agents WHERE pcr_policy = ?1 OR mb_policy = ?1 OR ima_policy = ?1 LIMIT 1",
			&u);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(u, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(u) == SQLITE_ROW)
		return kq_err(-EBUSY, "policy '%s' is in use by agent %s", name, (const char *)sqlite3_column_text(u, 0));
	rc = db_prepare(h, "DELETE FROM policies WHERE name = ?", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) != SQLITE_DONE)
		return db_err(h, rc, "delete policy");
	return sqlite3_changes(h) ? 0 : kq_err(-ENOENT, "no policy named '%s'", name);
}

int store_policy_delete(struct db *db, const char *name)
{
	return db_tx(db, pol_delete_fn, (void *)name);
}

/* ---- payloads ---- */

struct payload_ctx {
	const char *id, *payload_id, *state, *reason;
	const uint8_t *enc_v;
	size_t enc_v_len;
	char *ret_payload_id;
	uint8_t *ret_enc_v;
	size_t ret_len;
	struct json_object *out;
	bool updated;
};

static int payload_put_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct payload_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int64_t now = verifier_now();
	int rc;

	(void)db;
	rc = db_prepare(h, "SELECT 1 FROM agents WHERE id = ?", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) == SQLITE_DONE)
		return kq_err(-ENOENT, "no agent %s", c->id);
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "payload");
	sqlite3_finalize(TAKE_PTR(s));
	rc = db_prepare(h, "INSERT OR REPLACE INTO payloads (agent_id, payload_id, enc_v, state, reason, created, updated,"
			   " attempts) VALUES (?, ?, ?, 'pending', NULL, ?, ?, 0)", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, c->payload_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, c->enc_v, (int)c->enc_v_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now);
	sqlite3_bind_int64(s, 5, now);
	return db_err(h, sqlite3_step(s), "payload");
}

int store_payload_put(struct db *db, const char *id, const char *payload_id, const uint8_t *enc_v, size_t len)
{
	return db_tx(db, payload_put_fn, &(struct payload_ctx){ .id = id, .payload_id = payload_id, .enc_v = enc_v,
								.enc_v_len = len });
}

static int payload_get_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct payload_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int rc;

	(void)db;
	rc = db_prepare(h, "SELECT payload_id, state, reason, created, updated, attempts, enc_v FROM payloads"
			   " WHERE agent_id = ?", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) == SQLITE_DONE)
		return kq_err(-ENOENT, "no payload for agent %s", c->id);
	if (rc != SQLITE_ROW)
		return db_err(h, rc, "payload");
	if (c->ret_payload_id) {
		/* the pending one, for delivery */
		if (strcmp((const char *)sqlite3_column_text(s, 1), "pending") != 0)
			return kq_err(-ENOENT, "no pending payload for agent %s", c->id);
		snprintf(c->ret_payload_id, PAYLOAD_ID_MAX + 1, "%s", (const char *)sqlite3_column_text(s, 0));
		c->ret_len = (size_t)sqlite3_column_bytes(s, 6);
		c->ret_enc_v = malloc(c->ret_len ? c->ret_len : 1);
		if (!c->ret_enc_v)
			return kq_err(-ENOMEM, "out of memory");
		memcpy(c->ret_enc_v, sqlite3_column_blob(s, 6), c->ret_len);
		return 0;
	}
	c->out = json_object_new_object();
	json_object_object_add(c->out, "agent_id", json_object_new_string(c->id));
	json_object_object_add(c->out, "payload_id", col_json(s, 0));
	json_object_object_add(c->out, "state", col_json(s, 1));
	json_object_object_add(c->out, "reason", reasons_json(s, 2));
	json_object_object_add(c->out, "created", col_json(s, 3));
	json_object_object_add(c->out, "updated", col_json(s, 4));
	json_object_object_add(c->out, "attempts", col_json(s, 5));
	return 0;
}

int store_payload_json(struct db *db, const char *id, struct json_object **ret)
{
	struct payload_ctx c = { .id = id };
	int r = db_tx(db, payload_get_fn, &c);

	if (r < 0)
		return r;
	*ret = c.out;
	return 0;
}

int store_payload_pending(struct db *db, const char *id, char payload_id[PAYLOAD_ID_MAX + 1], uint8_t **ret_enc_v,
			  size_t *ret_len)
{
	struct payload_ctx c = { .id = id, .ret_payload_id = payload_id };
	int r = db_tx(db, payload_get_fn, &c);

	if (r < 0) {
		free(c.ret_enc_v);
		return r;
	}
	*ret_enc_v = c.ret_enc_v;
	*ret_len = c.ret_len;
	return 0;
}

static int payload_result_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct payload_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL;
	int rc;

	(void)db;
	rc = db_prepare(h, "UPDATE payloads SET state = ?, reason = ?, updated = ?, attempts = attempts + 1"
			   " WHERE agent_id = ? AND payload_id = ? AND state = 'pending'", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(s, 1, c->state, -1, SQLITE_STATIC);
	if (c->reason)
		sqlite3_bind_text(s, 2, c->reason, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	sqlite3_bind_int64(s, 3, verifier_now());
	sqlite3_bind_text(s, 4, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, c->payload_id, -1, SQLITE_STATIC);
	rc = db_err(h, sqlite3_step(s), "payload");
	c->updated = rc == 0 && sqlite3_changes(h) > 0;
	return rc;
}

int store_payload_result(struct db *db, const char *id, const char *payload_id, const char *state,
			 struct json_object *reasons)
{
	struct payload_ctx c = { .id = id, .payload_id = payload_id, .state = state,
				 .reason = reasons ? json_object_to_json_string_ext(reasons, JSON_C_TO_STRING_PLAIN) : NULL };
	int r = db_tx(db, payload_result_fn, &c);

	return r < 0 ? r : c.updated ? 0 : -ESTALE;
}

/* ---- summary ---- */

static int summary_fn(struct db *db, sqlite3 *h, void *ud)
{
	struct json_ctx *c = ud;
	_cleanup_(db_stmt_freep) sqlite3_stmt *s = NULL, *f = NULL;
	struct json_object *states = json_object_new_object(), *kinds = json_object_new_object();
	int64_t total = 0, clean = 0;
	int rc;

	(void)db;
	c->out = json_object_new_object();
	json_object_object_add(c->out, "states", states);
	json_object_object_add(c->out, "kinds", kinds);
	rc = db_prepare(h, "SELECT kind, state, count(*), total(verdicts), total(passes),"
			   " total(state = 'attesting' AND verdicts > 0 AND passes = verdicts) FROM agents GROUP BY kind, state",
			&s);
	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(s, 0), *state = (const char *)sqlite3_column_text(s, 1);
		struct json_object *k, *v;
		int64_t n = sqlite3_column_int64(s, 2);

		if (!kind || !state)
			continue;
		if (!json_object_object_get_ex(kinds, kind, &k)) {
			k = json_object_new_object();
			json_object_object_add(kinds, kind, k);
		}
		/* per kind: agents, verdicts, passes, clean (attesting with every verdict passed) */
		static const char *const keys[] = { "agents", "verdicts", "passes", "clean" };
		for (int i = 0; i < 4; i++) {
			int64_t add = i == 0 ? n : (int64_t)sqlite3_column_double(s, 2 + i);

			json_object_object_get_ex(k, keys[i], &v);
			json_object_object_add(k, keys[i], json_object_new_int64((v ? json_object_get_int64(v) : 0) + add));
		}
		json_object_object_get_ex(states, state, &v);
		json_object_object_add(states, state, json_object_new_int64((v ? json_object_get_int64(v) : 0) + n));
		total += n;
		clean += (int64_t)sqlite3_column_double(s, 5);
	}
	if (rc != SQLITE_DONE)
		return db_err(h, rc, "summary");
	json_object_object_add(c->out, "agents", json_object_new_int64(total));
	json_object_object_add(c->out, "clean", json_object_new_int64(clean));
	rc = db_prepare(h, "SELECT id FROM agents WHERE NOT (state = 'attesting' AND verdicts > 0 AND passes = verdicts)"
			   " ORDER BY id LIMIT 1", &f);
	if (rc < 0)
		return rc;
	rc = sqlite3_step(f);
	json_object_object_add(c->out, "first_not_clean", rc == SQLITE_ROW ? col_json(f, 0) : NULL);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_err(h, rc, "summary");
}

int store_summary_json(struct db *db, struct json_object **ret)
{
	struct json_ctx c = { 0 };
	int r = db_tx(db, summary_fn, &c);

	if (r < 0) {
		json_object_put(c.out);
		return r;
	}
	*ret = c.out;
	return 0;
}
