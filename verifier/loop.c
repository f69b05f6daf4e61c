/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attestation loop: one thread, one libcurl multi handle. Every round
 * and every webhook delivery is a transfer on it, so a slow or dead host
 * only holds its own connection. Connections (and TLS sessions) are kept in
 * the multi handle's cache and reused from round to round.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "json/json.h"
#include "log/log.h"
#include "merkle/merkle.h"
#include "tpm/tpm.h"
#include "verifier.h"

#define MOD "attest"
#define TICK_MS 1000
#define MAX_DELIVERIES 32
#define DELIVERY_TIMEOUT_MS 10000
/* evidence received and not yet judged is held for at most HELD_FACTOR × max_concurrent agents */
#define HELD_FACTOR 8

struct agent_rt {
	struct agent_row row;
	bool busy;               /* a worker is evaluating this agent's evidence */
	struct tpm_key ak;
	struct policy *pol[3];   /* pcr, mb, ima */
	char load_error[256];    /* why the AK or a policy could not be loaded, "" if fine */
	int64_t due_ms;
	int64_t started_ms;      /* when its last round began: the next is due an interval later */
	unsigned failures;       /* transport failures in a row */
	bool from_zero;          /* this round asks for the IMA list from entry 0 */
	struct transfer *xfer;   /* the round in flight, or NULL */
	struct hround *round;    /* the deep round this agent is part of (host or guest), or NULL */
	struct transfer *payload; /* V of a secure payload on its way to the agent, or NULL */
};

enum xfer_kind { XFER_ROUND, XFER_DELIVERY, XFER_GUEST, XFER_DEEP, XFER_PAYLOAD };

/*
 * A host's deep round (docs/deep-quote.md): every active guest's evidence
 * first, then one deep quote from the host over their leaves.
 */
struct gslot {
	struct agent_rt *g;
	struct transfer *x;      /* in flight */
	uint8_t *buf;            /* the guest's 200 answer, once it came */
	size_t len;
	struct json_object *ev;  /* buf parsed (for its leaf), handed on to the worker */
	uint8_t nonce[VERIFIER_NONCE_LEN];
	TPML_PCR_SELECTION asked;
	uint64_t ima_offset;
	bool leaf_ok;
	uint8_t leaf[MERKLE_HASH];
	uint8_t attest_sha256[32];
	long leaf_index;         /* in the deep-quote request, -1 if not sent */
};

struct hround {
	struct agent_rt *host;
	struct gslot *slots;
	size_t n, pending;
	struct transfer *deep;   /* the host's deep-quote request */
	uint8_t host_nonce[VERIFIER_NONCE_LEN];
	TPML_PCR_SELECTION host_asked;
	uint64_t host_ima_offset;
};

struct transfer {
	enum xfer_kind kind;
	CURL *easy;
	char *body;
	uint8_t *buf;
	size_t len, cap, max;
	bool too_big;
	/* a round; for guests and deep quotes also the deep round and slot */
	struct agent_rt *agent;
	struct hround *round;
	size_t slot;
	uint8_t nonce[VERIFIER_NONCE_LEN];
	TPML_PCR_SELECTION asked;
	uint64_t ima_offset;
	/* a payload's V */
	char payload_id[PAYLOAD_ID_MAX + 1];
	/* a delivery */
	int64_t event_seq;
	char *webhook;
	int64_t attempts;
};

/*
 * One evidence document to evaluate, with copies of everything the worker
 * needs, so that the agent may be reloaded or dropped meanwhile.
 */
struct job {
	struct job *next;
	char id[VERIFIER_ID_LEN + 1];
	int64_t gen;
	enum agent_state state_before;
	EVP_PKEY *ak;
	struct policy *pol[3];
	uint8_t *st_in;           /* the agent's replay state, packed (NULL: none) */
	size_t st_in_len;
	struct attest_state *st;  /* unpacked on the worker while it judges (6 KB: not kept while queued) */
	uint64_t ima_next;        /* the new state's IMA position, when it passed */
	bool from_zero;
	uint8_t nonce[VERIFIER_NONCE_LEN];
	TPML_PCR_SELECTION asked;
	uint64_t ima_offset;
	uint8_t *buf;
	size_t len;
	struct json_object *ev;  /* a guest's evidence, parsed when its leaf was made (or NULL) */
	/* the verdict, then what storing it gave */
	enum agent_state new_state;
	bool evaluated, pass, judged;
	struct json_object *reasons;
	uint8_t *st_blob;        /* the new replay state (attest_state_pack), when it passed */
	size_t st_len;
	enum { JOB_RECORDED, JOB_NEW_BOOT, JOB_RETRY, JOB_STALE } outcome;
	/* a deep round: this job is the host, guests[] are judged with it */
	struct job *guests;
	size_t n_guests;
	bool deep;
	/* a guest in a deep round */
	bool leaf_ok;
	uint8_t leaf[MERKLE_HASH];
	long leaf_index;
};

static void job_clear(struct job *j)
{
	EVP_PKEY_free(j->ak);
	for (unsigned i = 0; i < 3; i++)
		policy_unref(j->pol[i]);
	free(j->buf);
	json_object_put(j->ev);
	json_object_put(j->reasons);
	free(j->st_blob);
	free(j->st_in);
	free(j->st);
	for (size_t i = 0; i < j->n_guests; i++)
		job_clear(&j->guests[i]);
	free(j->guests);
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	job_clear(j);
	free(j);
}

struct loop {
	const struct verifier_config *cfg;
	struct db *db;
	struct policies *ps;
	struct notifier *nt;
	CURLM *multi;
	struct curl_slist *headers;
	pthread_t thread;
	bool started;
	atomic_bool stop;

	pthread_mutex_t lock;     /* guards changed */
	char **changed;
	size_t n_changed, cap_changed;
	bool reload_all;

	struct agent_rt **agents;
	size_t n_agents, cap_agents;
	size_t scan_start;        /* where start_rounds begins, for fairness */
	size_t *index;            /* id -> position in agents (find_agent) */
	size_t index_cap;
	bool index_dirty;
	size_t in_flight;
	size_t in_rounds;         /* guests of deep rounds under way: their evidence is held until the deep quote */

	struct transfer *deliveries[MAX_DELIVERIES];
	size_t n_deliveries;
	int64_t next_outbox_ms;
	atomic_bool outbox_kick;

	/* evaluation workers: jobs in, results out (both under jobs_lock) */
	pthread_t *workers;
	size_t n_workers;
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_cond;
	struct job *todo, *todo_tail, *done;
	size_t queued;            /* agents in jobs not yet collected: new rounds wait while it is high */
	bool workers_stop;
};

/* ---- agents in memory ---- */

static void agent_rt_free(struct agent_rt *a)
{
	if (!a)
		return;
	agent_row_clear(&a->row);
	tpm_key_clear(&a->ak);
	for (unsigned i = 0; i < 3; i++)
		policy_unref(a->pol[i]);
	free(a);
}

static uint64_t id_hash(const char *id)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 1099511628211ull;
	return h;
}

/*
 * The id -> position index over l->agents (open addressing, at most half
 * full), rebuilt after the array changed: lookups run for every verdict,
 * and a linear scan would cost O(agents) each with 10 000 guests.
 */
static void index_rebuild(struct loop *l)
{
	size_t cap = 64;

	while (cap < 2 * l->n_agents + 2)
		cap *= 2;
	if (cap != l->index_cap) {
		size_t *n = reallocarray(l->index, cap, sizeof(*n));

		if (!n) {
			l->index_cap = 0; /* find_agent falls back to a scan */
			return;
		}
		l->index = n;
		l->index_cap = cap;
	}
	for (size_t i = 0; i < cap; i++)
		l->index[i] = SIZE_MAX;
	for (size_t i = 0; i < l->n_agents; i++) {
		size_t k = id_hash(l->agents[i]->row.id) & (cap - 1);

		while (l->index[k] != SIZE_MAX)
			k = (k + 1) & (cap - 1);
		l->index[k] = i;
	}
	l->index_dirty = false;
}

/* An agent appended at position i: into the index while it stays at most half full, else rebuilt on next use. */
static void index_add(struct loop *l, size_t i)
{
	size_t k;

	if (l->index_dirty || !l->index_cap || 2 * l->n_agents + 2 > l->index_cap) {
		l->index_dirty = true;
		return;
	}
	for (k = id_hash(l->agents[i]->row.id) & (l->index_cap - 1); l->index[k] != SIZE_MAX; k = (k + 1) & (l->index_cap - 1))
		;
	l->index[k] = i;
}

static struct agent_rt *find_agent(struct loop *l, const char *id, size_t *ret_idx)
{
	if (l->index_dirty || !l->index_cap)
		index_rebuild(l);
	if (l->index_cap) {
		for (size_t k = id_hash(id) & (l->index_cap - 1); l->index[k] != SIZE_MAX; k = (k + 1) & (l->index_cap - 1)) {
			size_t i = l->index[k];

			if (i < l->n_agents && strcmp(l->agents[i]->row.id, id) == 0) {
				if (ret_idx)
					*ret_idx = i;
				return l->agents[i];
			}
		}
		return NULL;
	}
	for (size_t i = 0; i < l->n_agents; i++)
		if (strcmp(l->agents[i]->row.id, id) == 0) {
			if (ret_idx)
				*ret_idx = i;
			return l->agents[i];
		}
	return NULL;
}

static void xfer_free(struct transfer *x)
{
	if (!x)
		return;
	if (x->easy)
		curl_easy_cleanup(x->easy);
	free(x->body);
	free(x->buf);
	free(x->webhook);
	free(x);
}

/* Drops a transfer in flight (a round or a payload's V). */
static void cancel_xfer(struct loop *l, struct transfer **x)
{
	if (!*x)
		return;
	curl_multi_remove_handle(l->multi, (*x)->easy);
	xfer_free(*x);
	*x = NULL;
	l->in_flight--;
}

static void cancel_round(struct loop *l, struct agent_rt *a)
{
	cancel_xfer(l, &a->xfer);
}

static void round_leave(struct loop *l, struct agent_rt *a);

static void cancel_payload(struct loop *l, struct agent_rt *a)
{
	cancel_xfer(l, &a->payload);
}

static void drop_agent(struct loop *l, size_t idx)
{
	struct agent_rt *a = l->agents[idx];

	cancel_round(l, a);
	cancel_payload(l, a);
	round_leave(l, a);
	agent_rt_free(a);
	l->agents[idx] = l->agents[--l->n_agents];
	l->index_dirty = true;
}

/* Loads (or reloads) one agent from the database; drops it if it is gone. */
static void reload_agent(struct loop *l, const char *id)
{
	struct agent_rt *a = calloc(1, sizeof(*a)), *old;
	const char *names[3];
	size_t idx;
	int r;

	if (!a) {
		log_error(MOD, "agent %s: out of memory", id);
		return;
	}
	old = find_agent(l, id, &idx);
	r = store_agent_load(l->db, id, &a->row);
	if (r < 0) {
		if (r != -ENOENT)
			log_error(MOD, "agent %s: %s", id, kq_errmsg());
		agent_rt_free(a);
		if (old)
			drop_agent(l, idx);
		return;
	}
	if (tpm_key_load(a->row.ak, a->row.ak_len, &a->ak) < 0)
		snprintf(a->load_error, sizeof(a->load_error), "the stored AK does not load: %s", kq_errmsg());
	names[0] = a->row.pcr_policy;
	names[1] = a->row.mb_policy;
	names[2] = a->row.ima_policy;
	for (unsigned i = 0; i < 3 && !a->load_error[0]; i++)
		if (names[i][0] && policies_get(l->ps, names[i], &a->pol[i]) < 0)
			snprintf(a->load_error, sizeof(a->load_error), "%s", kq_errmsg());

	if (old) {
		/* a round begun under the old settings must not report under the new ones */
		cancel_round(l, old);
		cancel_payload(l, old);
		round_leave(l, old);
		a->failures = old->row.state == a->row.state ? old->failures : 0;
		a->due_ms = old->row.generation == a->row.generation ? old->due_ms : verifier_mono_ms();
		agent_rt_free(old);
		l->agents[idx] = a;
	} else {
		if (l->n_agents == l->cap_agents) {
			size_t cap = l->cap_agents ? l->cap_agents * 2 : 64;
			struct agent_rt **n = reallocarray(l->agents, cap, sizeof(*n));

			if (!n) {
				log_error(MOD, "agent %s: out of memory", id);
				agent_rt_free(a);
				return;
			}
			l->agents = n;
			l->cap_agents = cap;
		}
		a->due_ms = verifier_mono_ms();
		l->agents[l->n_agents++] = a;
		index_add(l, l->n_agents - 1);
	}
}

void loop_changed(struct loop *l, const char *id)
{
	char *c = strdup(id);

	pthread_mutex_lock(&l->lock);
	if (c && l->n_changed == l->cap_changed) {
		size_t cap = l->cap_changed ? l->cap_changed * 2 : 16;
		char **n = reallocarray(l->changed, cap, sizeof(*n));

		if (n) {
			l->changed = n;
			l->cap_changed = cap;
		}
	}
	if (c && l->n_changed < l->cap_changed)
		l->changed[l->n_changed++] = c;
	else {
		free(c);
		l->reload_all = true;
	}
	pthread_mutex_unlock(&l->lock);
	curl_multi_wakeup(l->multi);
}

static void reload_all(struct loop *l)
{
	char **ids = NULL;
	size_t n = 0;

	if (store_agent_ids(l->db, &ids, &n) < 0) {
		log_error(MOD, "cannot list agents: %s", kq_errmsg());
		return;
	}
	/* drop agents that are gone, then (re)load every stored one */
	for (size_t i = l->n_agents; i-- > 0;) {
		bool found = false;

		for (size_t j = 0; j < n && !found; j++)
			found = strcmp(ids[j], l->agents[i]->row.id) == 0;
		if (!found)
			drop_agent(l, i);
	}
	for (size_t j = 0; j < n; j++) {
		reload_agent(l, ids[j]);
		free(ids[j]);
	}
	free(ids);
}

static void apply_changes(struct loop *l)
{
	char **ids;
	size_t n;
	bool all;

	pthread_mutex_lock(&l->lock);
	ids = l->changed;
	n = l->n_changed;
	all = l->reload_all;
	l->changed = NULL;
	l->n_changed = l->cap_changed = 0;
	l->reload_all = false;
	pthread_mutex_unlock(&l->lock);
	if (all)
		reload_all(l);
	for (size_t i = 0; i < n; i++) {
		if (!all)
			reload_agent(l, ids[i]);
		free(ids[i]);
	}
	free(ids);
}

/* ---- recording outcomes ---- */

static struct json_object *reason(const char *component, const char *code, int64_t index, const char *msg)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "component", json_object_new_string(component));
	json_object_object_add(o, "code", json_object_new_string(code));
	json_object_object_add(o, "index", json_object_new_int64(index));
	json_object_object_add(o, "message", json_object_new_string(msg));
	return o;
}

/* A state change, logged (once stored). */
static void log_change(struct loop *l, const char *id, enum agent_state old, enum agent_state state,
		       struct json_object *reasons)
{
	struct json_object *first = json_object_array_length(reasons) ? json_object_array_get_idx(reasons, 0) : NULL;
	struct json_object *m = NULL;

	if (first)
		json_object_object_get_ex(first, "message", &m);
	log_msg(state == AGENT_ATTESTING ? LOG_INFO : LOG_WARN, MOD, "agent %s: %s -> %s%s%s", id,
		agent_state_name(old), agent_state_name(state), m ? ": " : "", m ? json_object_get_string(m) : "");
	atomic_store(&l->outbox_kick, true);
}

/*
 * On a worker: the verdict of a job. reasons is taken; a passing verdict's
 * replay state (j->st) is packed to be stored and kept.
 */
/* On a worker: the job's replay state unpacked into j->st (zero if it has none or it does not read); false on ENOMEM. */
static bool job_state(struct job *j)
{
	if (!j->st && !(j->st = calloc(1, sizeof(*j->st))))
		return false;
	if (!j->st_in || attest_state_unpack(j->st_in, j->st_in_len, j->st) < 0)
		memset(j->st, 0, sizeof(*j->st));
	return true;
}

static void job_verdict(struct job *j, bool pass, struct json_object *reasons)
{
	j->judged = true;
	j->evaluated = true;
	j->pass = pass;
	j->new_state = pass ? AGENT_ATTESTING : AGENT_FAILED;
	json_object_put(j->reasons);
	j->reasons = reasons;
	free(j->st_blob);
	j->st_blob = NULL;
	if (pass && (!j->st || attest_state_pack(j->st, &j->st_blob, &j->st_len) < 0)) {
		/* not stored: the round is tried again */
		log_error(MOD, "agent %s: %s", j->id, j->st ? kq_errmsg() : "no replay state");
		j->judged = false;
	}
	if (pass && j->st)
		j->ima_next = j->st->ima.next_index;
	free(j->st);
	j->st = NULL;
}

/*
 * On a worker: stores the verdicts of jobs (a host and its guests) in one
 * transaction; each job's outcome says whether its agent took it.
 */
static void store_jobs(struct loop *l, struct job **jobs, size_t n)
{
	_cleanup_free_ struct round_item *items = calloc(n ? n : 1, sizeof(*items));
	_cleanup_free_ size_t *which = calloc(n ? n : 1, sizeof(*which));
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		jobs[i]->outcome = JOB_RETRY;
	if (!items || !which) {
		log_error(MOD, "out of memory storing %zu verdicts", n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct job *j = jobs[i];

		if (!j->judged)
			continue;
		items[k] = (struct round_item){
			.id = j->id, .gen = j->gen,
			.res = { .state = j->new_state, .evaluated = j->evaluated, .pass = j->pass,
				 .reasons = j->reasons, .st = j->st_blob, .st_len = j->st_len,
				 .history_max = l->cfg->history_max },
		};
		which[k++] = i;
	}
	if (k && store_rounds(l->db, l->nt, items, k) < 0)
		log_error(MOD, "cannot record %zu verdicts: %s", k, kq_errmsg());
	for (size_t i = 0; i < k; i++) {
		struct job *j = jobs[which[i]];
		int r = items[i].ret;

		j->outcome = r == 0 ? JOB_RECORDED : r == -ESTALE || r == -ENOENT ? JOB_STALE : JOB_RETRY;
		if (r == 0 && items[i].changed)
			log_change(l, j->id, j->state_before, j->new_state, j->reasons);
	}
}

/* On the loop thread: stores an outcome without a verdict; the in-memory row follows only if the database took it. */
static void record(struct loop *l, struct agent_rt *a, enum agent_state state, bool evaluated, bool pass,
		   struct json_object *reasons)
{
	struct round_result res = {
		.state = state, .evaluated = evaluated, .pass = pass, .reasons = reasons,
		.history_max = l->cfg->history_max,
	};
	bool changed = false;
	int r = store_round(l->db, l->nt, a->row.id, a->row.generation, &res, &changed);

	if (r == -ESTALE || r == -ENOENT) {
		loop_changed(l, a->row.id);
		return;
	}
	if (r < 0) {
		log_error(MOD, "agent %s: cannot record the round: %s", a->row.id, kq_errmsg());
		return;
	}
	if (changed)
		log_change(l, a->row.id, a->row.state, state, reasons);
	a->row.state = state;
}

static void transport_failure(struct loop *l, struct agent_rt *a, const char *code, const char *fmt, ...)
	_printf_(4, 5);

static void transport_failure(struct loop *l, struct agent_rt *a, const char *code, const char *fmt, ...)
{
	char msg[512];
	int64_t cap_ms = (int64_t)(a->row.interval ? a->row.interval : 1) * 1000;
	int64_t backoff;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->failures++;
	backoff = (int64_t)1000 << (a->failures - 1 < 16 ? a->failures - 1 : 16);
	a->due_ms = verifier_mono_ms() + (backoff < cap_ms ? backoff : cap_ms);
	log_debug(MOD, "agent %s: attempt %u failed: %s", a->row.id, a->failures, msg);
	if (a->failures > l->cfg->retries || a->row.state == AGENT_UNREACHABLE) {
		struct json_object *rs = json_object_new_array();

		json_object_array_add(rs, reason("transport", code, -1, msg));
		record(l, a, AGENT_UNREACHABLE, false, false, rs);
		json_object_put(rs);
	}
}

/* ---- rounds ---- */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct transfer *x = ud;
	size_t n = size * nmemb;

	if (n > x->max - x->len) {
		x->too_big = true;
		return 0;
	}
	if (kq_buf_reserve(&x->buf, &x->cap, x->len + n + 1, x->max + 1) < 0)
		return 0;
	memcpy(x->buf + x->len, ptr, n);
	x->len += n;
	x->buf[x->len] = 0;
	return n;
}

static CURL *new_easy(struct loop *l, struct transfer *x, const char *url, const char *ca, long timeout_ms)
{
	CURL *e = curl_easy_init();

	if (!e)
		return NULL;
	if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HTTPHEADER, l->headers) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_CAINFO, ca) != CURLE_OK ||
	    (l->cfg->tls_cert && curl_easy_setopt(e, CURLOPT_SSLCERT, l->cfg->tls_cert) != CURLE_OK) ||
	    (l->cfg->tls_key && curl_easy_setopt(e, CURLOPT_SSLKEY, l->cfg->tls_key) != CURLE_OK) ||
	    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PRIVATE, x) != CURLE_OK ||
	    /* requests are small JSON bodies: the smallest upload buffer (not 64 KB per transfer in flight) */
	    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L) != CURLE_OK) {
		curl_easy_cleanup(e);
		return NULL;
	}
	return e;
}

static void add_pcr(TPML_PCR_SELECTION *sel, uint16_t alg, uint32_t mask)
{
	TPMS_PCR_SELECTION *s = NULL;

	for (uint32_t i = 0; i < sel->count; i++)
		if (sel->pcrSelections[i].hash == alg)
			s = &sel->pcrSelections[i];
	if (!s) {
		if (sel->count >= TPM_MAX_BANKS)
			return;
		s = &sel->pcrSelections[sel->count++];
		s->hash = alg;
		s->sizeofSelect = 3;
	}
	for (unsigned b = 0; b < 3; b++)
		s->pcrSelect[b] |= (uint8_t)(mask >> (8 * b));
}

/* PCRs 0-10 in the agent's bank, plus whatever the static policy names. */
static void selection(const struct agent_rt *a, TPML_PCR_SELECTION *sel)
{
	memset(sel, 0, sizeof(*sel));
	add_pcr(sel, a->row.bank, 0x7ffu);
	if (a->pol[0]) {
		const struct tpm_pcrs *p = policy_pcrs(a->pol[0]);

		for (size_t b = 0; b < p->nbanks; b++)
			add_pcr(sel, p->bank[b].alg, p->bank[b].mask);
	}
}

static struct json_object *selection_json(const TPML_PCR_SELECTION *sel)
{
	struct json_object *o = json_object_new_object();

	for (uint32_t i = 0; i < sel->count; i++) {
		struct json_object *arr = json_object_new_array();

		for (unsigned p = 0; p < TPM_NUM_PCRS; p++)
			if (sel->pcrSelections[i].pcrSelect[p / 8] & (1u << (p % 8)))
				json_object_array_add(arr, json_object_new_int((int)p));
		json_object_object_add(o, kq_hash_name(sel->pcrSelections[i].hash), arr);
	}
	return o;
}

static void start_round(struct loop *l, struct agent_rt *a)
{
	struct transfer *x = calloc(1, sizeof(*x));
	struct json_object *req;
	char url[VERIFIER_ADDRESS_MAX + 32];
	char hex[2 * VERIFIER_NONCE_LEN + 1];

	if (!x || RAND_bytes(x->nonce, sizeof(x->nonce)) != 1) {
		free(x);
		log_error(MOD, "agent %s: cannot start a round (no memory or randomness)", a->row.id);
		a->due_ms = verifier_mono_ms() + TICK_MS;
		return;
	}
	x->kind = XFER_ROUND;
	x->agent = a;
	x->max = l->cfg->max_evidence;
	selection(a, &x->asked);
	x->ima_offset = a->from_zero ? 0 : a->row.ima_next;
	kq_hex_encode(x->nonce, sizeof(x->nonce), hex);
	req = json_object_new_object();
	json_object_object_add(req, "nonce", json_object_new_string(hex));
	json_object_object_add(req, "pcrs", selection_json(&x->asked));
	json_object_object_add(req, "ima_offset", json_object_new_uint64(x->ima_offset));
	json_object_object_add(req, "agent_id", json_object_new_string(a->row.id));
	x->body = strdup(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
	json_object_put(req);
	snprintf(url, sizeof(url), "https://%s/v1/quote", a->row.address);
	if (!x->body || !(x->easy = new_easy(l, x, url, l->cfg->tls_ca, (long)l->cfg->timeout_ms)) ||
	    curl_multi_add_handle(l->multi, x->easy) != CURLM_OK) {
		xfer_free(x);
		log_error(MOD, "agent %s: cannot start a round", a->row.id);
		a->due_ms = verifier_mono_ms() + TICK_MS;
		return;
	}
	a->xfer = x;
	l->in_flight++;
}

static const char *curl_code(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
		return "timeout";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
		return "tls";
	case CURLE_WRITE_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		return "bad_response";
	default:
		return "connect";
	}
}

/* "code: message" of an agent's JSON error, or a placeholder. */
static void agent_error(struct json_object *body, char *code, size_t code_n, char *msg, size_t msg_n)
{
	struct json_object *e, *c, *m;

	snprintf(code, code_n, "?");
	snprintf(msg, msg_n, "no reason given");
	if (body && json_object_object_get_ex(body, "error", &e) && json_object_is_type(e, json_type_object)) {
		if (json_object_object_get_ex(e, "code", &c) && json_object_is_type(c, json_type_string))
			snprintf(code, code_n, "%s", json_object_get_string(c));
		if (json_object_object_get_ex(e, "message", &m) && json_object_is_type(m, json_type_string))
			snprintf(msg, msg_n, "%s", json_object_get_string(m));
	}
}

static struct json_object *verdict_reasons(const struct attest_verdict *v)
{
	struct json_object *rs = json_object_new_array();

	for (size_t i = 0; i < v->n_failures; i++) {
		const struct attest_failure *f = &v->failures[i];

		json_object_array_add(rs, reason(f->component, f->code, f->index, f->message));
	}
	if (v->truncated)
		json_object_array_add(rs, reason("verdict", "more_failures", -1, "more failures were found than recorded"));
	return rs;
}

/* On a worker: parses and judges the evidence, and stores the verdict. */
static void run_job(struct loop *l, struct job *j)
{
	struct attest_policy pol = {
		.static_pcrs = j->pol[0] ? policy_pcrs(j->pol[0]) : NULL,
		.mb = j->pol[1] ? policy_mb(j->pol[1]) : NULL,
		.ima = j->pol[2] ? policy_ima(j->pol[2]) : NULL,
	};
	_cleanup_free_ struct attest_verdict *v = malloc(sizeof(*v));
	struct json_object *ev = NULL, *rs, *bid;
	int r;

	j->outcome = JOB_RETRY;
	if (!v) {
		log_error(MOD, "agent %s: out of memory", j->id);
		return;
	}
	if (json_parse_body(j->buf, j->len, l->cfg->max_evidence, 8, &ev) < 0) {
		rs = json_object_new_array();
		json_object_array_add(rs, reason("quote", "malformed", -1, "the evidence is not a JSON document"));
		job_verdict(j, false, rs);
		store_jobs(l, &j, 1);
		return;
	}
	/* a new boot restarts the IMA list: ask for all of it before judging (the quote still decides) */
	if (!job_state(j)) {
		json_object_put(ev);
		return;
	}
	if (!j->from_zero && j->ima_offset > 0 && j->st->have_quote &&
	    json_object_object_get_ex(ev, "boot_id", &bid) && json_object_is_type(bid, json_type_string) &&
	    strcmp(json_object_get_string(bid), j->st->boot_id) != 0) {
		log_info(MOD, "agent %s: new boot, asking for the IMA list from its start", j->id);
		j->outcome = JOB_NEW_BOOT;
		json_object_put(ev);
		return;
	}
	r = attest_host(&pol, j->ak, j->nonce, sizeof(j->nonce), &j->asked, ev, j->st, v);
	json_object_put(ev);
	if (r < 0) {
		log_error(MOD, "agent %s: evaluation failed: %s", j->id, kq_errmsg());
		return;
	}
	job_verdict(j, v->pass, verdict_reasons(v));
	store_jobs(l, &j, 1);
}

/* {"error": {"code", "message"}} of a refused leaf, as a guest's reason. */
static struct json_object *leaf_refusal(struct json_object *entry)
{
	struct json_object *e, *c, *m;
	const char *code = "leaf_refused", *msg = "the host refused this guest's leaf";

	if (json_object_object_get_ex(entry, "error", &e)) {
		if (json_object_object_get_ex(e, "code", &c) && json_object_is_type(c, json_type_string))
			code = json_object_get_string(c);
		if (json_object_object_get_ex(e, "message", &m) && json_object_is_type(m, json_type_string))
			msg = json_object_get_string(m);
	}
	return reason("host", code, -1, msg);
}

/* Reads a proof (array of hex hashes) into path; false if malformed. */
static bool read_proof(struct json_object *arr, uint8_t path[][MERKLE_HASH], size_t *ret_len)
{
	size_t n;

	if (!json_object_is_type(arr, json_type_array) || (n = json_object_array_length(arr)) > MERKLE_MAX_PROOF)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct json_object *h = json_object_array_get_idx(arr, i);
		size_t got;

		if (!json_object_is_type(h, json_type_string) ||
		    kq_hex_decode(json_object_get_string(h), path[i], MERKLE_HASH, &got) < 0 || got != MERKLE_HASH)
			return false;
	}
	*ret_len = n;
	return true;
}

/* Judges one guest of a deep round whose host passed (job_verdict; stored with its host's). */
static void judge_guest(struct loop *l, struct job *g, struct json_object *leaves, uint64_t tree_size,
			const uint8_t root[MERKLE_HASH])
{
	struct attest_policy pol = {
		.static_pcrs = g->pol[0] ? policy_pcrs(g->pol[0]) : NULL,
		.mb = g->pol[1] ? policy_mb(g->pol[1]) : NULL,
		.ima = g->pol[2] ? policy_ima(g->pol[2]) : NULL,
	};
	struct attest_verdict *v = NULL;
	struct json_object *rs = json_object_new_array(), *entry, *idx, *proof;
	uint8_t path[MERKLE_MAX_PROOF][MERKLE_HASH];
	size_t plen = 0;
	int r;

	if (!g->leaf_ok || g->leaf_index < 0 || !leaves ||
	    (size_t)g->leaf_index >= json_object_array_length(leaves)) {
		json_object_array_add(rs, reason("quote", "malformed", -1, "the guest's evidence holds no usable quote"));
		goto failed;
	}
	entry = json_object_array_get_idx(leaves, (size_t)g->leaf_index);
	if (!json_object_object_get_ex(entry, "index", &idx) || !json_object_is_type(idx, json_type_int) ||
	    !json_object_object_get_ex(entry, "proof", &proof)) {
		json_object_array_add(rs, leaf_refusal(entry));
		goto failed;
	}
	if (!read_proof(proof, path, &plen) || json_object_get_int64(idx) < 0 ||
	    merkle_verify(g->leaf, (size_t)json_object_get_int64(idx), (size_t)tree_size, path, plen, root) != 0) {
		json_object_array_add(rs, reason("deep_quote", "bad_proof", -1,
						 "the guest's quote is not in the tree the host's TPM signed"));
		goto failed;
	}
	/* parsed once, on the loop thread, to make its leaf */
	if (!g->ev && json_parse_body(g->buf, g->len, l->cfg->max_evidence, 8, &g->ev) < 0) {
		json_object_array_add(rs, reason("quote", "malformed", -1, "the evidence is not a JSON document"));
		goto failed;
	}
	v = malloc(sizeof(*v));
	if (!v || !job_state(g)) {
		free(v);
		json_object_put(rs);
		return; /* not judged: tried again */
	}
	r = attest_host(&pol, g->ak, g->nonce, sizeof(g->nonce), &g->asked, g->ev, g->st, v);
	json_object_put(rs);
	if (r == 0)
		job_verdict(g, v->pass, verdict_reasons(v));
	free(v);
	return;
failed:
	job_verdict(g, false, rs);
}

/* On a worker: the host's deep quote, then each guest under it. */
static void run_deep_job(struct loop *l, struct job *j)
{
	struct attest_policy pol = {
		.static_pcrs = j->pol[0] ? policy_pcrs(j->pol[0]) : NULL,
		.mb = j->pol[1] ? policy_mb(j->pol[1]) : NULL,
		.ima = j->pol[2] ? policy_ima(j->pol[2]) : NULL,
	};
	_cleanup_free_ struct attest_verdict *v = malloc(sizeof(*v));
	struct json_object *ev = NULL, *rs = NULL, *o, *leaves = NULL;
	uint8_t root[MERKLE_HASH], qd[MERKLE_HASH];
	uint64_t tree_size = 0;
	char host_reason[300] = "";
	bool host_pass = false, shape_ok = false;
	int r;

	j->outcome = JOB_RETRY;
	for (size_t i = 0; i < j->n_guests; i++)
		j->guests[i].outcome = JOB_RETRY;
	if (!v)
		return;
	/* an answer holds an object and a proof array per leaf */
	if (json_parse_body_containers(j->buf, j->len, l->cfg->max_evidence, 8, 2 * 65536 + 64, &ev) == 0 &&
	    json_object_object_get_ex(ev, "root", &o) && json_object_is_type(o, json_type_string)) {
		size_t got;

		shape_ok = kq_hex_decode(json_object_get_string(o), root, sizeof(root), &got) == 0 && got == sizeof(root) &&
			   json_object_object_get_ex(ev, "tree_size", &o) && json_object_is_type(o, json_type_int) &&
			   (tree_size = (uint64_t)json_object_get_int64(o)) <= MERKLE_MAX_LEAVES &&
			   json_object_object_get_ex(ev, "leaves", &leaves) && json_object_is_type(leaves, json_type_array);
	}
	if (shape_ok) {
		struct json_object *nl, *idx, *proof;

		/* the nonce: in the qualifying data, or (batched quotes) as a leaf of the tree */
		if (json_object_object_get_ex(ev, "nonce_leaf", &nl) && nl) {
			uint8_t leaf[MERKLE_HASH], path[MERKLE_MAX_PROOF][MERKLE_HASH];
			size_t plen;

			shape_ok = json_object_object_get_ex(nl, "index", &idx) && json_object_is_type(idx, json_type_int) &&
				   json_object_get_int64(idx) >= 0 && json_object_object_get_ex(nl, "proof", &proof) &&
				   read_proof(proof, path, &plen) && merkle_nonce_leaf(j->nonce, sizeof(j->nonce), leaf) == 0 &&
				   merkle_verify(leaf, (size_t)json_object_get_int64(idx), (size_t)tree_size, path, plen,
						 root) == 0 &&
				   merkle_qualifying_data(NULL, 0, root, qd) == 0;
		} else {
			shape_ok = merkle_qualifying_data(j->nonce, sizeof(j->nonce), root, qd) == 0;
		}
	}
	if (!shape_ok) {
		rs = json_object_new_array();
		json_object_array_add(rs, reason("deep_quote", "malformed", -1,
						 "the deep quote's tree, root or nonce proof is missing or wrong"));
	} else {
		r = job_state(j) ? attest_host(&pol, j->ak, qd, sizeof(qd), &j->asked, ev, j->st, v) : -ENOMEM;
		if (r < 0) {
			json_object_put(ev);
			return;
		}
		rs = verdict_reasons(v);
		host_pass = v->pass;
	}
	if (!host_pass && json_object_array_length(rs) > 0) {
		struct json_object *first = json_object_array_get_idx(rs, 0), *c, *m;

		if (json_object_object_get_ex(first, "component", &c) && json_object_object_get_ex(first, "code", &m))
			snprintf(host_reason, sizeof(host_reason), "%s/%s", json_object_get_string(c), json_object_get_string(m));
	}
	job_verdict(j, host_pass, rs);

	for (size_t i = 0; i < j->n_guests; i++) {
		struct job *g = &j->guests[i];

		if (!host_pass) {
			/* a guest is trusted only while its host is */
			struct json_object *grs = json_object_new_array();
			char msg[400];

			snprintf(msg, sizeof(msg), "host %s failed attestation (%s)", j->id, host_reason);
			json_object_array_add(grs, reason("host", "host_failed", -1, msg));
			job_verdict(g, false, grs);
			continue;
		}
		judge_guest(l, g, leaves, tree_size, root);
	}
	json_object_put(ev);

	/* the host and its guests in one transaction */
	{
		_cleanup_free_ struct job **all = calloc(j->n_guests + 1, sizeof(*all));

		if (!all) {
			log_error(MOD, "agent %s: out of memory", j->id);
			return;
		}
		all[0] = j;
		for (size_t i = 0; i < j->n_guests; i++)
			all[i + 1] = &j->guests[i];
		store_jobs(l, all, j->n_guests + 1);
	}
}

static void *worker(void *ud)
{
	struct loop *l = ud;

	pthread_mutex_lock(&l->jobs_lock);
	for (;;) {
		struct job *j;

		while (!l->todo && !l->workers_stop)
			pthread_cond_wait(&l->jobs_cond, &l->jobs_lock);
		if (l->workers_stop)
			break;
		j = l->todo;
		l->todo = j->next;
		if (!l->todo)
			l->todo_tail = NULL;
		pthread_mutex_unlock(&l->jobs_lock);

		if (j->deep)
			run_deep_job(l, j);
		else
			run_job(l, j);

		pthread_mutex_lock(&l->jobs_lock);
		j->next = l->done;
		l->done = j;
		pthread_mutex_unlock(&l->jobs_lock);
		curl_multi_wakeup(l->multi);
		pthread_mutex_lock(&l->jobs_lock);
	}
	pthread_mutex_unlock(&l->jobs_lock);
	return NULL;
}

/* Copies what a worker needs of agent a into j; false on ENOMEM. */
static bool job_fill(struct job *j, struct agent_rt *a, const uint8_t *nonce, const TPML_PCR_SELECTION *asked,
		     uint64_t ima_offset, uint8_t *buf, size_t len)
{
	if (EVP_PKEY_up_ref(a->ak.pkey) != 1)
		return false;
	snprintf(j->id, sizeof(j->id), "%s", a->row.id);
	j->gen = a->row.generation;
	j->state_before = a->row.state;
	j->ak = a->ak.pkey;
	for (unsigned i = 0; i < 3; i++) {
		j->pol[i] = a->pol[i];
		if (j->pol[i])
			policy_ref(j->pol[i]);
	}
	/* packed, as kept: a stored state that does not read counts as none (the worker starts afresh) */
	if (a->row.have_state && a->row.st) {
		if (!(j->st_in = malloc(a->row.st_len)))
			return false;
		memcpy(j->st_in, a->row.st, a->row.st_len);
		j->st_in_len = a->row.st_len;
	}
	j->from_zero = a->from_zero;
	memcpy(j->nonce, nonce, sizeof(j->nonce));
	j->asked = *asked;
	j->ima_offset = ima_offset;
	j->buf = buf;
	j->len = len;
	return true;
}

static void push_job(struct loop *l, struct job *j)
{
	pthread_mutex_lock(&l->jobs_lock);
	if (l->todo_tail)
		l->todo_tail->next = j;
	else
		l->todo = j;
	l->todo_tail = j;
	l->queued += 1 + j->n_guests;
	pthread_cond_signal(&l->jobs_cond);
	pthread_mutex_unlock(&l->jobs_lock);
}

/* Hands a 200 answer to the workers; the agent is busy until the result is back. */
static void queue_job(struct loop *l, struct agent_rt *a, struct transfer *x)
{
	struct job *j = calloc(1, sizeof(*j));
	uint8_t *buf = x->buf ? TAKE_PTR(x->buf) : calloc(1, 1);

	if (!j || !buf || !job_fill(j, a, x->nonce, &x->asked, x->ima_offset, buf, x->len)) {
		free(j);
		free(buf);
		log_error(MOD, "agent %s: out of memory", a->row.id);
		a->due_ms = verifier_mono_ms() + TICK_MS;
		return;
	}
	a->busy = true;
	push_job(l, j);
}

/* Sends the agent its pending payload's V: POST https://ADDRESS/v1/payload/v. */
static void start_payload(struct loop *l, struct agent_rt *a)
{
	struct transfer *x = calloc(1, sizeof(*x));
	_cleanup_free_ uint8_t *enc_v = NULL;
	struct json_object *req;
	char url[VERIFIER_ADDRESS_MAX + 32];
	size_t len;
	int r;

	if (!x)
		return;
	r = store_payload_pending(l->db, a->row.id, x->payload_id, &enc_v, &len);
	if (r < 0) {
		if (r != -ENOENT)
			log_error(MOD, "agent %s: cannot read its payload: %s", a->row.id, kq_errmsg());
		a->row.payload_pending = r != -ENOENT;
		free(x);
		return;
	}
	x->kind = XFER_PAYLOAD;
	x->agent = a;
	x->max = 64 * 1024;
	req = json_object_new_object();
	json_object_object_add(req, "payload_id", json_object_new_string(x->payload_id));
	json_object_object_add(req, "enc_v", json_new_base64(enc_v, len));
	x->body = strdup(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
	json_object_put(req);
	snprintf(url, sizeof(url), "https://%s/v1/payload/v", a->row.address);
	if (!x->body || !(x->easy = new_easy(l, x, url, l->cfg->tls_ca, (long)l->cfg->timeout_ms)) ||
	    curl_multi_add_handle(l->multi, x->easy) != CURLM_OK) {
		xfer_free(x);
		return;
	}
	a->payload = x;
	l->in_flight++;
	log_info(MOD, "agent %s passed: sending it the verifier's half of payload %s", a->row.id, x->payload_id);
}

/* The agent's answer to a payload's V: delivered, refused with its reason (kept), or tried again on the next pass. */
static void finish_payload(struct loop *l, struct transfer *x, CURLcode cc)
{
	struct agent_rt *a = x->agent;
	struct json_object *body = NULL, *rs;
	char code[64], msg[512];
	long status = 0;
	int r;

	a->payload = NULL;
	l->in_flight--;
	if (cc != CURLE_OK) {
		log_warn(MOD, "agent %s: payload %s not delivered (%s); again with its next passing verdict", a->row.id,
			 x->payload_id, curl_easy_strerror(cc));
		return;
	}
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200) {
		r = store_payload_result(l->db, a->row.id, x->payload_id, "delivered", NULL);
		a->row.payload_pending = false;
		if (r == 0)
			log_info(MOD, "agent %s: payload %s delivered", a->row.id, x->payload_id);
		return;
	}
	if (json_parse_body(x->buf ? x->buf : (const uint8_t *)"", x->len, x->max, 8, &body) < 0)
		body = NULL;
	agent_error(body, code, sizeof(code), msg, sizeof(msg));
	json_object_put(body);
	if (status >= 500 || status == 404) {
		log_warn(MOD, "agent %s: payload %s not delivered (%ld %s: %s); again with its next passing verdict",
			 a->row.id, x->payload_id, status, code, msg);
		return;
	}
	/* the agent refused it: the tenant must look (and send another) */
	rs = json_object_new_array();
	json_object_array_add(rs, reason("payload", code, -1, msg));
	r = store_payload_result(l->db, a->row.id, x->payload_id, "refused", rs);
	json_object_put(rs);
	a->row.payload_pending = false;
	if (r == 0)
		log_warn(MOD, "agent %s refused payload %s: %s: %s", a->row.id, x->payload_id, code, msg);
}

/* What a worker concluded for one agent, applied if it is still at that generation. */
static void apply_job(struct loop *l, struct job *j)
{
	struct agent_rt *a = find_agent(l, j->id, NULL);
	int64_t now = verifier_mono_ms();

	if (!a || !a->busy || a->row.generation != j->gen)
		return;
	a->busy = false;
	switch (j->outcome) {
	case JOB_NEW_BOOT:
		a->from_zero = true;
		a->due_ms = now;
		break;
	case JOB_RECORDED:
		a->row.state = j->new_state;
		if (j->pass && j->st_blob) {
			free(a->row.st);
			a->row.st = TAKE_PTR(j->st_blob);
			a->row.st_len = j->st_len;
			a->row.ima_next = j->ima_next;
			a->row.have_state = true;
		}
		a->from_zero = false;
		a->failures = 0;
		/* a secure payload's V goes out with a passing verdict (a guest's passes only with its host's) */
		if (j->pass && a->row.payload_pending && !a->payload)
			start_payload(l, a);
		/* every interval from start to start, however long the round took (at once if longer) */
		a->due_ms = a->started_ms + (int64_t)a->row.interval * 1000;
		if (a->due_ms < now)
			a->due_ms = now;
		break;
	case JOB_STALE:
		loop_changed(l, j->id);
		break;
	case JOB_RETRY:
		a->due_ms = now + TICK_MS;
		break;
	}
}

/* On the loop thread: what the workers concluded, applied to agents still at that generation. */
static void collect_jobs(struct loop *l)
{
	struct job *done, *j;

	pthread_mutex_lock(&l->jobs_lock);
	done = l->done;
	l->done = NULL;
	for (j = done; j; j = j->next)
		l->queued -= 1 + j->n_guests;
	pthread_mutex_unlock(&l->jobs_lock);
	while ((j = done)) {
		done = j->next;
		apply_job(l, j);
		for (size_t i = 0; i < j->n_guests; i++)
			apply_job(l, &j->guests[i]);
		job_free(j);
	}
}

static void finish_round(struct loop *l, struct transfer *x, CURLcode cc)
{
	struct agent_rt *a = x->agent;
	struct json_object *body = NULL;
	char code[64], msg[512];
	long status = 0;

	a->xfer = NULL;
	l->in_flight--;
	if (cc != CURLE_OK) {
		transport_failure(l, a, x->too_big ? "bad_response" : curl_code(cc), "%s%s",
				  x->too_big ? "evidence over the size limit; " : "", curl_easy_strerror(cc));
		return;
	}
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200) {
		queue_job(l, a, x);
		return;
	}
	if (json_parse_body(x->buf ? x->buf : (const uint8_t *)"", x->len, l->cfg->max_evidence, 8, &body) < 0)
		body = NULL;
	agent_error(body, code, sizeof(code), msg, sizeof(msg));
	json_object_put(body);
	if (status == 409 && strcmp(code, "ima_offset_ahead") == 0 && !a->from_zero) {
		/* the list is shorter than our position: a reboot; ask from its start now */
		a->from_zero = true;
		a->due_ms = verifier_mono_ms();
		return;
	}
	transport_failure(l, a, "agent_error", "the host agent answered %ld %s: %s", status, code, msg);
}

/* ---- deep rounds: guests judged together with their host ---- */

static void round_free(struct loop *l, struct hround *hr)
{
	if (!hr)
		return;
	for (size_t i = 0; i < hr->n; i++) {
		struct gslot *s = &hr->slots[i];

		if (s->x) {
			curl_multi_remove_handle(l->multi, s->x->easy);
			xfer_free(s->x);
			l->in_flight--;
		}
		free(s->buf);
		json_object_put(s->ev);
		if (s->g && s->g->round == hr)
			s->g->round = NULL;
	}
	if (hr->deep) {
		curl_multi_remove_handle(l->multi, hr->deep->easy);
		xfer_free(hr->deep);
		l->in_flight--;
	}
	if (hr->host && hr->host->round == hr)
		hr->host->round = NULL;
	l->in_rounds -= hr->n;
	free(hr->slots);
	free(hr);
}

/* The request body of an evidence round: nonce, PCRs, IMA offset, agent id. */
static struct json_object *evidence_request(struct agent_rt *a, const uint8_t *nonce, const TPML_PCR_SELECTION *asked,
					    uint64_t ima_offset)
{
	struct json_object *req = json_object_new_object();
	char hex[2 * VERIFIER_NONCE_LEN + 1];

	kq_hex_encode(nonce, VERIFIER_NONCE_LEN, hex);
	json_object_object_add(req, "nonce", json_object_new_string(hex));
	json_object_object_add(req, "pcrs", selection_json(asked));
	json_object_object_add(req, "ima_offset", json_object_new_uint64(ima_offset));
	json_object_object_add(req, "agent_id", json_object_new_string(a->row.id));
	return req;
}

static struct transfer *new_xfer(struct loop *l, enum xfer_kind kind, struct agent_rt *a, struct json_object *req,
				 const char *path)
{
	struct transfer *x = calloc(1, sizeof(*x));
	char url[VERIFIER_ADDRESS_MAX + 32];

	if (!x)
		return NULL;
	x->kind = kind;
	x->agent = a;
	x->max = l->cfg->max_evidence;
	x->body = strdup(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
	snprintf(url, sizeof(url), "https://%s%s", a->row.address, path);
	if (!x->body || !(x->easy = new_easy(l, x, url, l->cfg->tls_ca, (long)l->cfg->timeout_ms)) ||
	    curl_multi_add_handle(l->multi, x->easy) != CURLM_OK) {
		xfer_free(x);
		return NULL;
	}
	l->in_flight++;
	return x;
}

static bool guest_active(const struct agent_rt *g)
{
	return !g->xfer && !g->busy && !g->round && !g->load_error[0] &&
	       (g->row.state == AGENT_ATTESTING || g->row.state == AGENT_UNREACHABLE);
}

/* Starts a host's deep round with its active guests; false if it has none (a plain round then). */
static bool start_deep_round(struct loop *l, struct agent_rt *host)
{
	struct hround *hr;
	size_t n = 0;

	for (size_t i = 0; i < l->n_agents; i++) {
		struct agent_rt *g = l->agents[i];

		if (g->row.guest && strcmp(g->row.host_id, host->row.id) == 0 && guest_active(g))
			n++;
	}
	if (n == 0)
		return false;
	hr = calloc(1, sizeof(*hr));
	if (!hr || !(hr->slots = calloc(n, sizeof(*hr->slots)))) {
		free(hr);
		return false;
	}
	hr->host = host;
	host->round = hr;
	for (size_t i = 0; i < l->n_agents && hr->n < n; i++) {
		struct agent_rt *g = l->agents[i];
		struct gslot *slot;
		struct json_object *req;

		if (!g->row.guest || strcmp(g->row.host_id, host->row.id) != 0 || !guest_active(g))
			continue;
		slot = &hr->slots[hr->n];
		slot->g = g;
		slot->leaf_index = -1;
		if (RAND_bytes(slot->nonce, sizeof(slot->nonce)) != 1)
			continue;
		selection(g, &slot->asked);
		slot->ima_offset = g->from_zero ? 0 : g->row.ima_next;
		req = evidence_request(g, slot->nonce, &slot->asked, slot->ima_offset);
		slot->x = new_xfer(l, XFER_GUEST, g, req, "/v1/quote");
		json_object_put(req);
		if (!slot->x)
			continue;
		slot->x->round = hr;
		slot->x->slot = hr->n;
		g->round = hr;
		hr->n++;
		hr->pending++;
	}
	l->in_rounds += hr->n;
	if (hr->pending == 0) {
		round_free(l, hr);
		return false;
	}
	return true;
}

/* The leaf of a guest's answer: its quote's TPMS_ATTEST, hashed, with the VM and EK name. */
static bool guest_leaf(struct loop *l, struct gslot *s)
{
	struct json_object *ev = NULL, *q, *m;
	_cleanup_free_ uint8_t *msg = NULL;
	size_t len;
	bool ok = false;

	if (json_parse_body(s->buf, s->len, l->cfg->max_evidence, 8, &ev) < 0)
		return false;
	if (json_object_object_get_ex(ev, "quote", &q) && json_object_object_get_ex(q, "message", &m) &&
	    json_object_is_type(m, json_type_string) &&
	    kq_base64_decode(json_object_get_string(m), TPM_MAX_BLOB, &msg, &len) == 0 &&
	    kq_hash(KQ_ALG_SHA256, msg, len, s->attest_sha256) == 0 &&
	    merkle_leaf(s->g->row.vm_uuid, s->g->row.ek_name, s->g->row.ek_name_len, s->attest_sha256, s->leaf) == 0)
		ok = true;
	/* the worker judges the same document: the raw answer is not kept beside it */
	json_object_put(s->ev);
	s->ev = ev;
	free(s->buf);
	s->buf = NULL;
	s->len = 0;
	return ok;
}

/* All guests answered (or failed): one deep-quote request to the host over their leaves. */
static void send_deep(struct loop *l, struct hround *hr)
{
	struct agent_rt *host = hr->host;
	struct json_object *req, *leaves = json_object_new_array();
	size_t sent = 0;

	for (size_t i = 0; i < hr->n; i++) {
		struct gslot *s = &hr->slots[i];
		struct json_object *lf;
		char uuid[37], name[2 * sizeof(s->g->row.ek_name) + 1], dig[65];

		if (!s->buf || !(s->leaf_ok = guest_leaf(l, s)))
			continue;
		kq_hex_encode(s->g->row.vm_uuid, 16, uuid); /* 32 hex digits, re-dashed below */
		snprintf(dig, sizeof(dig), "%.8s-%.4s-%.4s-%.4s-%.12s", uuid, uuid + 8, uuid + 12, uuid + 16, uuid + 20);
		lf = json_object_new_object();
		json_object_object_add(lf, "vm_uuid", json_object_new_string(dig));
		kq_hex_encode(s->g->row.ek_name, s->g->row.ek_name_len, name);
		json_object_object_add(lf, "ek_name", json_object_new_string(name));
		/* the host recomputes the leaf from these */
		kq_hex_encode(s->attest_sha256, sizeof(s->attest_sha256), dig);
		json_object_object_add(lf, "attest_sha256", json_object_new_string(dig));
		json_object_array_add(leaves, lf);
		s->leaf_index = (long)sent++;
	}
	if (RAND_bytes(hr->host_nonce, sizeof(hr->host_nonce)) != 1) {
		json_object_put(leaves);
		round_free(l, hr);
		host->due_ms = verifier_mono_ms() + TICK_MS;
		return;
	}
	selection(host, &hr->host_asked);
	hr->host_ima_offset = host->from_zero ? 0 : host->row.ima_next;
	req = evidence_request(host, hr->host_nonce, &hr->host_asked, hr->host_ima_offset);
	json_object_object_add(req, "leaves", leaves);
	hr->deep = new_xfer(l, XFER_DEEP, host, req, "/v1/deep-quote");
	json_object_put(req);
	if (!hr->deep) {
		round_free(l, hr);
		host->due_ms = verifier_mono_ms() + TICK_MS;
		return;
	}
	hr->deep->round = hr;
}

/*
 * An agent of a deep round is reloaded or dropped: a host ends its round; a
 * guest only leaves it, so the other guests' evidence and the host's deep
 * quote in flight are not lost.
 */
static void round_leave(struct loop *l, struct agent_rt *a)
{
	struct hround *hr = a->round;

	if (!hr)
		return;
	if (hr->host == a) {
		round_free(l, hr);
		return;
	}
	for (size_t i = 0; i < hr->n; i++) {
		struct gslot *s = &hr->slots[i];

		if (s->g != a)
			continue;
		if (s->x) {
			curl_multi_remove_handle(l->multi, s->x->easy);
			xfer_free(s->x);
			s->x = NULL;
			l->in_flight--;
			hr->pending--;
		}
		free(s->buf);
		s->buf = NULL;
		json_object_put(s->ev);
		s->ev = NULL;
		s->g = NULL;
	}
	a->round = NULL;
	/* it was the last answer the round waited for */
	if (hr->pending == 0 && !hr->deep)
		send_deep(l, hr);
}

static void finish_guest(struct loop *l, struct transfer *x, CURLcode cc)
{
	struct hround *hr = x->round;
	struct gslot *s = &hr->slots[x->slot];
	struct agent_rt *g = s->g;
	long status = 0;

	s->x = NULL;
	l->in_flight--;
	hr->pending--;
	if (cc != CURLE_OK) {
		transport_failure(l, g, x->too_big ? "bad_response" : curl_code(cc), "%s%s",
				  x->too_big ? "evidence over the size limit; " : "", curl_easy_strerror(cc));
	} else {
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200) {
			s->buf = x->buf ? TAKE_PTR(x->buf) : calloc(1, 1);
			s->len = x->len;
		} else {
			struct json_object *body = NULL;
			char code[64], msg[512];

			if (json_parse_body(x->buf ? x->buf : (const uint8_t *)"", x->len, l->cfg->max_evidence, 8, &body) < 0)
				body = NULL;
			agent_error(body, code, sizeof(code), msg, sizeof(msg));
			json_object_put(body);
			if (status == 409 && strcmp(code, "ima_offset_ahead") == 0)
				g->from_zero = true;
			else
				transport_failure(l, g, "agent_error", "the guest agent answered %ld %s: %s", status, code, msg);
		}
	}
	if (hr->pending == 0)
		send_deep(l, hr);
}

/* Marks each guest of a round that had evidence unreachable: without its host's quote it cannot be judged. */
static void guests_without_host(struct loop *l, struct hround *hr, const char *why)
{
	for (size_t i = 0; i < hr->n; i++) {
		struct gslot *s = &hr->slots[i];
		struct json_object *rs;

		if (!s->buf && !s->ev)
			continue;
		rs = json_object_new_array();
		json_object_array_add(rs, reason("host", "host_unreachable", -1, why));
		record(l, s->g, AGENT_UNREACHABLE, false, false, rs);
		json_object_put(rs);
	}
}

static void finish_deep(struct loop *l, struct transfer *x, CURLcode cc)
{
	struct hround *hr = x->round;
	struct agent_rt *host = hr->host;
	struct job *j;
	long status = 0;
	size_t k = 0;

	hr->deep = NULL;
	l->in_flight--;
	if (cc != CURLE_OK) {
		transport_failure(l, host, x->too_big ? "bad_response" : curl_code(cc), "%s%s",
				  x->too_big ? "evidence over the size limit; " : "", curl_easy_strerror(cc));
		guests_without_host(l, hr, "the host's deep quote could not be had");
		round_free(l, hr);
		return;
	}
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		struct json_object *body = NULL;
		char code[64], msg[512];

		if (json_parse_body(x->buf ? x->buf : (const uint8_t *)"", x->len, l->cfg->max_evidence, 8, &body) < 0)
			body = NULL;
		agent_error(body, code, sizeof(code), msg, sizeof(msg));
		json_object_put(body);
		if (status == 409 && strcmp(code, "ima_offset_ahead") == 0 && !host->from_zero) {
			host->from_zero = true;
			host->due_ms = verifier_mono_ms();
		} else {
			transport_failure(l, host, "agent_error", "the host agent answered %ld %s: %s", status, code, msg);
			guests_without_host(l, hr, "the host agent refused the deep quote");
		}
		round_free(l, hr);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (j)
		j->guests = calloc(hr->n, sizeof(*j->guests));
	if (!j || !j->guests || !job_fill(j, host, hr->host_nonce, &hr->host_asked, hr->host_ima_offset,
					  x->buf ? TAKE_PTR(x->buf) : calloc(1, 1), x->len)) {
		job_free(j);
		round_free(l, hr);
		host->due_ms = verifier_mono_ms() + TICK_MS;
		return;
	}
	j->deep = true;
	for (size_t i = 0; i < hr->n; i++) {
		struct gslot *s = &hr->slots[i];
		struct job *gj = &j->guests[k];

		if ((!s->buf && !s->ev) || !job_fill(gj, s->g, s->nonce, &s->asked, s->ima_offset, s->buf, s->len))
			continue;
		s->buf = NULL;
		gj->ev = TAKE_PTR(s->ev);
		gj->leaf_ok = s->leaf_ok;
		memcpy(gj->leaf, s->leaf, sizeof(gj->leaf));
		gj->leaf_index = s->leaf_index;
		s->g->busy = true;
		k++;
	}
	j->n_guests = k;
	host->busy = true;
	round_free(l, hr);
	push_job(l, j);
}

/*
 * Starts the rounds that are due, at most max_concurrent in flight. The scan
 * starts where the last one stopped, so when the limit is reached every due
 * agent gets its turn: a block of dead hosts holding slots until they time
 * out cannot starve the ones after them.
 */
static void start_rounds(struct loop *l, int64_t now, int64_t *next_ms)
{
	size_t n = l->n_agents, queued;

	/*
	 * Back-pressure: evidence held — by guests of deep rounds waiting for
	 * their host's deep quote, and in jobs waiting for the workers — is
	 * memory, so no new round starts while it is for more than HELD_FACTOR ×
	 * max_concurrent agents (each finished round or job wakes the loop).
	 * Rounds started then would only wait longer.
	 */
	pthread_mutex_lock(&l->jobs_lock);
	queued = l->queued;
	pthread_mutex_unlock(&l->jobs_lock);
	if (queued + l->in_rounds >= HELD_FACTOR * l->cfg->max_concurrent)
		return;

	for (size_t k = 0; k < n; k++) {
		size_t i = (l->scan_start + k) % n;
		struct agent_rt *a = l->agents[i];

		if (a->row.guest || a->xfer || a->busy || a->round ||
		    (a->row.state != AGENT_ATTESTING && a->row.state != AGENT_UNREACHABLE))
			continue;
		if (a->load_error[0]) {
			struct json_object *rs = json_object_new_array();

			json_object_array_add(rs, reason("policy", "unavailable", -1, a->load_error));
			record(l, a, AGENT_FAILED, false, false, rs);
			json_object_put(rs);
			continue;
		}
		if (a->due_ms > now) {
			if (a->due_ms < *next_ms)
				*next_ms = a->due_ms;
			continue;
		}
		if (l->in_flight >= l->cfg->max_concurrent || queued + l->in_rounds >= HELD_FACTOR * l->cfg->max_concurrent) {
			/* resume here next time */
			l->scan_start = i;
			*next_ms = now;
			return;
		}
		a->started_ms = now;
		if (!start_deep_round(l, a))
			start_round(l, a);
	}
	l->scan_start = n ? (l->scan_start + 1) % n : 0;
}

/* ---- webhook deliveries ---- */

static void start_deliveries(struct loop *l, int64_t now_ms)
{
	struct outbox_item *items = NULL;
	int64_t skip[MAX_DELIVERIES];
	size_t n = 0, room = MAX_DELIVERIES - l->n_deliveries;

	if (now_ms < l->next_outbox_ms || room == 0)
		return;
	l->next_outbox_ms = now_ms + TICK_MS;
	for (size_t i = 0; i < l->n_deliveries; i++)
		skip[i] = l->deliveries[i]->event_seq;
	if (store_outbox_due(l->db, verifier_now(), room, skip, l->n_deliveries, &items, &n) < 0) {
		log_error("notify", "cannot read the outbox: %s", kq_errmsg());
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct transfer *x = calloc(1, sizeof(*x));

		if (!x)
			break;
		x->kind = XFER_DELIVERY;
		x->max = 64 * 1024;
		x->event_seq = items[i].event_seq;
		x->attempts = items[i].attempts;
		x->webhook = TAKE_PTR(items[i].webhook);
		x->body = TAKE_PTR(items[i].body);
		if (strncmp(x->webhook, "agent:", 6) == 0) {
			/* a revocation notice to a subscribed agent, at its address now */
			struct agent_rt *a = find_agent(l, x->webhook + 6, NULL);
			char url[VERIFIER_ADDRESS_MAX + 32];
			bool dropped = false;

			if (!a) {
				store_outbox_done(l->db, x->event_seq, x->webhook, true, 0, l->cfg->max_attempts, &dropped);
				xfer_free(x);
				continue;
			}
			snprintf(url, sizeof(url), "https://%s/v1/revocation", a->row.address);
			x->easy = new_easy(l, x, url, l->cfg->tls_ca, DELIVERY_TIMEOUT_MS);
		} else {
			x->easy = new_easy(l, x, x->webhook, l->cfg->notify_ca ? l->cfg->notify_ca : l->cfg->tls_ca,
					   DELIVERY_TIMEOUT_MS);
		}
		if (!x->easy ||
		    curl_multi_add_handle(l->multi, x->easy) != CURLM_OK) {
			xfer_free(x);
			continue;
		}
		l->deliveries[l->n_deliveries++] = x;
	}
	outbox_items_free(items, n);
}

static void finish_delivery(struct loop *l, struct transfer *x, CURLcode cc)
{
	long status = 0;
	bool ok, dropped = false;
	int64_t delay;

	for (size_t i = 0; i < l->n_deliveries; i++)
		if (l->deliveries[i] == x) {
			l->deliveries[i] = l->deliveries[--l->n_deliveries];
			break;
		}
	if (cc == CURLE_OK)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	ok = cc == CURLE_OK && status >= 200 && status < 300;
	delay = (int64_t)1 << (x->attempts < 8 ? x->attempts : 8);
	if (store_outbox_done(l->db, x->event_seq, x->webhook, ok, verifier_now() + delay, l->cfg->max_attempts,
			      &dropped) < 0)
		log_error("notify", "cannot update the outbox: %s", kq_errmsg());
	if (!ok)
		log_warn("notify", "event %" PRId64 " to %s: %s%s", x->event_seq, x->webhook,
			 cc != CURLE_OK ? curl_easy_strerror(cc) : "answered with a non-2xx status",
			 dropped ? "; given up after [notify] max_attempts" : "; will retry");
	else
		l->next_outbox_ms = 0; /* more may be waiting */
}

/* ---- the thread ---- */

static void *run(void *ud)
{
	struct loop *l = ud;

	reload_all(l);
	log_info(MOD, "attesting %zu agents", l->n_agents);
	while (!atomic_load(&l->stop)) {
		int64_t now = verifier_mono_ms(), next = now + TICK_MS;
		struct CURLMsg *m;
		int running, left;

		apply_changes(l);
		collect_jobs(l);
		if (atomic_exchange(&l->outbox_kick, false))
			l->next_outbox_ms = 0;
		start_rounds(l, now, &next);
		start_deliveries(l, now);
		curl_multi_perform(l->multi, &running);
		while ((m = curl_multi_info_read(l->multi, &left))) {
			struct transfer *x = NULL;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			curl_multi_remove_handle(l->multi, m->easy_handle);
			if (!x)
				continue;
			if (x->kind == XFER_ROUND)
				finish_round(l, x, m->data.result);
			else if (x->kind == XFER_GUEST)
				finish_guest(l, x, m->data.result);
			else if (x->kind == XFER_DEEP)
				finish_deep(l, x, m->data.result);
			else if (x->kind == XFER_PAYLOAD)
				finish_payload(l, x, m->data.result);
			else
				finish_delivery(l, x, m->data.result);
			xfer_free(x);
			next = now; /* finished rounds may have made agents due */
		}
		now = verifier_mono_ms();
		if (next > now)
			curl_multi_poll(l->multi, NULL, 0, (int)(next - now), NULL);
	}
	return NULL;
}

int loop_new(const struct verifier_config *cfg, struct db *db, struct policies *ps, struct notifier *nt,
	     struct loop **ret)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return kq_err(-ENOMEM, "out of memory");
	l->cfg = cfg;
	l->db = db;
	l->ps = ps;
	l->nt = nt;
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->jobs_lock, NULL);
	pthread_cond_init(&l->jobs_cond, NULL);
	l->multi = curl_multi_init();
	l->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (!l->multi || !l->headers) {
		loop_free(l);
		return kq_err(-ENOMEM, "cannot set up libcurl");
	}
	curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, 10000L);
	curl_multi_setopt(l->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)cfg->max_concurrent + MAX_DELIVERIES);
	*ret = l;
	return 0;
}

int loop_start(struct loop *l)
{
	size_t n = l->cfg->workers ? l->cfg->workers : 1;
	int r;

	l->workers = calloc(n, sizeof(*l->workers));
	if (!l->workers)
		return kq_err(-ENOMEM, "out of memory");
	for (; l->n_workers < n; l->n_workers++) {
		r = pthread_create(&l->workers[l->n_workers], NULL, worker, l);
		if (r != 0)
			return kq_err(-r, "cannot start an evaluation thread");
	}
	r = pthread_create(&l->thread, NULL, run, l);
	if (r != 0)
		return kq_err(-r, "cannot start the attestation thread");
	l->started = true;
	return 0;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	if (l->started) {
		atomic_store(&l->stop, true);
		curl_multi_wakeup(l->multi);
		pthread_join(l->thread, NULL);
	}
	pthread_mutex_lock(&l->jobs_lock);
	l->workers_stop = true;
	pthread_cond_broadcast(&l->jobs_cond);
	pthread_mutex_unlock(&l->jobs_lock);
	for (size_t i = 0; i < l->n_workers; i++)
		pthread_join(l->workers[i], NULL);
	free(l->workers);
	while (l->todo) {
		struct job *j = l->todo;

		l->todo = j->next;
		job_free(j);
	}
	while (l->done) {
		struct job *j = l->done;

		l->done = j->next;
		job_free(j);
	}
	while (l->n_agents)
		drop_agent(l, l->n_agents - 1);
	free(l->agents);
	free(l->index);
	for (size_t i = 0; i < l->n_deliveries; i++) {
		curl_multi_remove_handle(l->multi, l->deliveries[i]->easy);
		xfer_free(l->deliveries[i]);
	}
	for (size_t i = 0; i < l->n_changed; i++)
		free(l->changed[i]);
	free(l->changed);
	if (l->multi)
		curl_multi_cleanup(l->multi);
	curl_slist_free_all(l->headers);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->jobs_lock);
	pthread_cond_destroy(&l->jobs_cond);
	free(l);
}
