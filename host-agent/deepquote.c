/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host agent's deep quote (docs/deep-quote.md): POST /v1/deep-quote takes
 * the verifier's leaves -- one per guest quote -- checks that each names a VM
 * running on this host, puts them into a Merkle tree and has the hardware TPM
 * quote its root. Requests arriving within [deep-quote] window_ms share one
 * tree and one TPM2_Quote, each request's nonce then being a leaf of its own.
 */
#include "host-agent.h"
#include "deepquote-priv.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "log/log.h"
#include "util/util.h"

#define MOD "deep-quote"
/* The largest body of DQ_MAX_LEAVES leaves with 66-byte names, and room for the rest. */
#define DQ_MAX_BODY (24u << 20)

/* ---- leaves ---- */

struct leaf_in {
	char *vm_uuid;
	struct json_bytes ek_name, attest_sha256;
};

static const struct json_field leaf_fields[] = {
	{ "vm_uuid", JSON_STRING, true, 36, offsetof(struct leaf_in, vm_uuid) },
	{ "ek_name", JSON_HEX, true, MERKLE_MAX_EK_NAME, offsetof(struct leaf_in, ek_name) },
	{ "attest_sha256", JSON_HEX, true, 32, offsetof(struct leaf_in, attest_sha256) },
	{ 0 },
};

/* "0011...-..." (normalised) -> 16 bytes */
static void uuid_bytes(const char s[37], uint8_t out[16])
{
	size_t k = 0;

	for (size_t i = 0; s[i] && k < 32; i++) {
		int d = kq_hex_digit((unsigned char)s[i]);

		if (d < 0)
			continue;
		if (k % 2 == 0)
			out[k / 2] = (uint8_t)(d << 4);
		else
			out[k / 2] |= (uint8_t)d;
		k++;
	}
}

static int leaf_read(struct json_object *o, struct dq_leaf *l)
{
	struct leaf_in in = { 0 };

	if (json_dispatch(o, leaf_fields, &in, false) < 0)
		goto bad;
	if (!kq_uuid_normalize(in.vm_uuid, l->vm_uuid)) {
		kq_err(-EINVAL, "field 'vm_uuid': not a UUID");
		goto bad;
	}
	if (in.ek_name.len < 2) {
		kq_err(-EINVAL, "field 'ek_name': a TPM name is 2 to %d bytes", MERKLE_MAX_EK_NAME);
		goto bad;
	}
	if (in.attest_sha256.len != 32) {
		kq_err(-EINVAL, "field 'attest_sha256': must be 32 bytes");
		goto bad;
	}
	uuid_bytes(l->vm_uuid, l->uuid);
	memcpy(l->ek_name, in.ek_name.data, in.ek_name.len);
	l->ek_name_len = in.ek_name.len;
	memcpy(l->attest_sha256, in.attest_sha256.data, 32);
	l->status = DQ_LEAF_OK;
	json_dispatch_free(leaf_fields, &in);
	return 0;
bad:
	json_dispatch_free(leaf_fields, &in);
	l->vm_uuid[0] = '\0';
	l->status = DQ_LEAF_BAD;
	l->reason = strdup(kq_errmsg());
	return l->reason ? 0 : kq_err(-ENOMEM, "out of memory");
}

void dq_leaves_free(struct dq_leaf *leaves, size_t n)
{
	if (!leaves)
		return;
	for (size_t i = 0; i < n; i++)
		free(leaves[i].reason);
	free(leaves);
}

int dq_leaves_parse(struct json_object *arr, struct dq_leaf **ret, size_t *ret_n)
{
	struct dq_leaf *leaves;
	size_t n;
	int r;

	if (!json_object_is_type(arr, json_type_array))
		return kq_err(-EINVAL, "field 'leaves': must be an array");
	n = json_object_array_length(arr);
	if (n > DQ_MAX_LEAVES)
		return kq_err(-EINVAL, "field 'leaves': at most %u leaves per request", DQ_MAX_LEAVES);
	leaves = calloc(n ? n : 1, sizeof(*leaves));
	if (!leaves)
		return kq_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if ((r = leaf_read(json_object_array_get_idx(arr, i), &leaves[i])) < 0) {
			dq_leaves_free(leaves, n);
			return r;
		}
	}
	*ret = leaves;
	*ret_n = n;
	return 0;
}

int dq_leaves_check_states(struct dq_leaf *leaves, size_t n, const char *const *states)
{
	for (size_t i = 0; i < n; i++) {
		struct dq_leaf *l = &leaves[i];
		const char *st;
		int k;

		if (l->status != DQ_LEAF_OK)
			continue;
		if (!states) {
			k = asprintf(&l->reason, "VM %s: the vTPM socket is off ([vtpm] socket), so this host agent "
				     "knows of no VM running here", l->vm_uuid);
		} else {
			st = states[i];
			if (st && (strcmp(st, "running") == 0 || strcmp(st, "migrating_in") == 0))
				continue;
			if (st)
				k = asprintf(&l->reason, "VM %s is %s on this host", l->vm_uuid, st);
			else
				k = asprintf(&l->reason, "VM %s was never reported on this host", l->vm_uuid);
		}
		if (k < 0) {
			l->reason = NULL;
			return kq_err(-ENOMEM, "out of memory");
		}
		l->status = DQ_LEAF_NOT_RUNNING;
	}
	return 0;
}

int dq_leaves_hash(struct dq_leaf *leaves, size_t n)
{
	int r;

	for (size_t i = 0; i < n; i++)
		if (leaves[i].status == DQ_LEAF_OK &&
		    (r = merkle_leaf(leaves[i].uuid, leaves[i].ek_name, leaves[i].ek_name_len, leaves[i].attest_sha256,
				     leaves[i].hash)) < 0)
			return r;
	return 0;
}

size_t dq_leaves_ok(const struct dq_leaf *leaves, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += leaves[i].status == DQ_LEAF_OK;
	return k;
}

/* ---- batching ---- */

void dq_batcher_init(struct dq_batcher *b, unsigned window_ms, size_t max_leaves, dq_quote_fn fn, void *userdata)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->mu, NULL);
	b->window_ms = window_ms;
	b->max_leaves = max_leaves ? max_leaves : DQ_MAX_BATCH_LEAVES;
	b->quote = fn;
	b->userdata = userdata;
}

void dq_batcher_destroy(struct dq_batcher *b)
{
	pthread_mutex_destroy(&b->mu);
}

static void batch_free(struct dq_batch *batch)
{
	merkle_free(batch->tree);
	evidence_quote_clear(&batch->quote);
	pthread_cond_destroy(&batch->cond);
	free(batch);
}

void dq_batch_put(struct dq_batcher *b, struct dq_batch *batch)
{
	bool last;

	if (!batch)
		return;
	pthread_mutex_lock(&b->mu);
	last = --batch->refs == 0;
	pthread_mutex_unlock(&b->mu);
	if (last)
		batch_free(batch);
}

static bool same_selection(const TPML_PCR_SELECTION *a, const TPML_PCR_SELECTION *b)
{
	if (a->count != b->count)
		return false;
	for (uint32_t i = 0; i < a->count; i++)
		if (a->pcrSelections[i].hash != b->pcrSelections[i].hash ||
		    a->pcrSelections[i].sizeofSelect != b->pcrSelections[i].sizeofSelect ||
		    memcmp(a->pcrSelections[i].pcrSelect, b->pcrSelections[i].pcrSelect,
			   sizeof(a->pcrSelections[i].pcrSelect)) != 0)
			return false;
	return true;
}

/* The tree and the quote of a closed batch: only its leader runs this, the others wait. */
static void batch_run(struct dq_batcher *b, struct dq_batch *batch)
{
	bool batched = batch->n_reqs > 1;
	size_t n = batch->n_leaves + (batched ? batch->n_reqs : 0), k = 0;
	_cleanup_free_ uint8_t(*hashes)[MERKLE_HASH] = NULL;
	uint8_t qd[MERKLE_HASH];
	int r;

	if (n > 0 && !(hashes = calloc(n, MERKLE_HASH))) {
		r = kq_err(-ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < batch->n_reqs; i++) {
		struct dq_req *q = batch->reqs[i];

		q->batched = batched;
		if (batched) {
			if ((r = merkle_nonce_leaf(q->nonce, q->nonce_len, hashes[k])) < 0)
				goto fail;
			q->nonce_index = k++;
		}
		for (size_t j = 0; j < q->n_leaves; j++) {
			if (q->leaves[j].status != DQ_LEAF_OK)
				continue;
			memcpy(hashes[k], q->leaves[j].hash, MERKLE_HASH);
			q->leaves[j].index = k++;
		}
	}
	if (n == 0) {
		/* RFC 9162: the hash of an empty list is the hash of the empty string */
		if (!EVP_Digest("", 0, batch->root, NULL, EVP_sha256(), NULL)) {
			r = kq_err(-EIO, "SHA-256 failed");
			goto fail;
		}
	} else {
		if ((r = merkle_build((const uint8_t(*)[MERKLE_HASH])hashes, n, &batch->tree)) < 0)
			goto fail;
		merkle_root(batch->tree, batch->root);
	}
	batch->tree_size = n;
	r = batched ? merkle_qualifying_data(NULL, 0, batch->root, qd)
		    : merkle_qualifying_data(batch->reqs[0]->nonce, batch->reqs[0]->nonce_len, batch->root, qd);
	if (r < 0)
		goto fail;
	r = b->quote(b->userdata, &batch->sel, qd, sizeof(qd), &batch->quote);
	if (r < 0) {
		log_error(MOD, "quote for %zu request%s failed: %s", batch->n_reqs, batch->n_reqs == 1 ? "" : "s",
			  kq_errmsg());
		goto fail;
	}
	log_info(MOD, "1 TPM quote for %zu request%s, %zu leaves (tree of %zu)", batch->n_reqs,
		 batch->n_reqs == 1 ? "" : "s", batch->n_leaves, n);
	return;
fail:
	batch->err = r;
	snprintf(batch->errmsg, sizeof(batch->errmsg), "%s", kq_errmsg());
}

static void sleep_until(const struct timespec *t)
{
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) == EINTR)
		;
}

int dq_submit(struct dq_batcher *b, struct dq_req *req, struct dq_batch **ret)
{
	size_t n_ok = dq_leaves_ok(req->leaves, req->n_leaves);
	struct dq_batch *batch;
	bool leader = false;

	req->batched = false;
	req->nonce_index = 0;
	pthread_mutex_lock(&b->mu);
	batch = b->window_ms ? b->open : NULL;
	if (!batch || !same_selection(&batch->sel, &req->sel) || batch->n_reqs == DQ_MAX_BATCH_REQUESTS ||
	    batch->n_leaves + n_ok > b->max_leaves) {
		batch = calloc(1, sizeof(*batch));
		if (!batch) {
			pthread_mutex_unlock(&b->mu);
			return kq_err(-ENOMEM, "out of memory");
		}
		pthread_cond_init(&batch->cond, NULL);
		batch->sel = req->sel;
		clock_gettime(CLOCK_MONOTONIC, &batch->deadline);
		batch->deadline.tv_sec += b->window_ms / 1000;
		batch->deadline.tv_nsec += (long)(b->window_ms % 1000) * 1000000L;
		if (batch->deadline.tv_nsec >= 1000000000L) {
			batch->deadline.tv_sec++;
			batch->deadline.tv_nsec -= 1000000000L;
		}
		/* a request that did not fit replaces the open batch: that one keeps its leader */
		if (b->window_ms)
			b->open = batch;
		leader = true;
	}
	batch->reqs[batch->n_reqs++] = req;
	batch->n_leaves += n_ok;
	batch->refs++;
	pthread_mutex_unlock(&b->mu);

	if (leader) {
		if (b->window_ms)
			sleep_until(&batch->deadline);
		/* while the TPM is busy with an earlier quote, this batch keeps taking requests */
		pthread_mutex_lock(&evidence_tpm_lock);
		pthread_mutex_unlock(&evidence_tpm_lock);
		pthread_mutex_lock(&b->mu);
		if (b->open == batch)
			b->open = NULL;
		pthread_mutex_unlock(&b->mu);
		batch_run(b, batch);
		pthread_mutex_lock(&b->mu);
		b->quotes += batch->err == 0;
		batch->done = true;
		pthread_cond_broadcast(&batch->cond);
		pthread_mutex_unlock(&b->mu);
	} else {
		pthread_mutex_lock(&b->mu);
		while (!batch->done)
			pthread_cond_wait(&batch->cond, &b->mu);
		pthread_mutex_unlock(&b->mu);
	}
	*ret = batch;
	return 0;
}

/* ---- the endpoint ---- */

struct host_deepquote {
	const struct evidence_config *ev;
	struct host_vtpm *vtpm;
	struct dq_batcher batcher;
};

static int quote_fn(void *userdata, const TPML_PCR_SELECTION *sel, const uint8_t *qual, size_t qlen,
		    struct evidence_quote *ret)
{
	struct host_deepquote *dq = userdata;

	return evidence_quote(dq->ev, sel, qual, qlen, ret);
}

int host_deepquote_new(const struct evidence_config *ev, struct host_vtpm *vtpm, unsigned window_ms,
		       struct host_deepquote **ret)
{
	struct host_deepquote *dq = calloc(1, sizeof(*dq));

	if (!dq)
		return kq_err(-ENOMEM, "out of memory");
	dq->ev = ev;
	dq->vtpm = vtpm;
	dq_batcher_init(&dq->batcher, window_ms, 0, quote_fn, dq);
	*ret = dq;
	return 0;
}

void host_deepquote_free(struct host_deepquote *dq)
{
	if (!dq)
		return;
	dq_batcher_destroy(&dq->batcher);
	free(dq);
}

static struct json_object *proof_json(const struct merkle_tree *t, size_t index)
{
	uint8_t path[MERKLE_MAX_PROOF][MERKLE_HASH];
	struct json_object *o = json_object_new_object(), *p = json_object_new_array();
	size_t len = 0;

	if (!o || !p || merkle_proof(t, index, path, &len) < 0) {
		json_object_put(o);
		json_object_put(p);
		return NULL;
	}
	for (size_t i = 0; i < len; i++)
		json_object_array_add(p, json_new_hex(path[i], MERKLE_HASH));
	json_object_object_add(o, "index", json_object_new_int64((int64_t)index));
	json_object_object_add(o, "proof", p);
	return o;
}

static struct json_object *leaf_error(const char *code, const char *msg)
{
	struct json_object *o = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg ? msg : ""));
	json_object_object_add(o, "error", e);
	return o;
}

/* The answer to one request of a quoted batch. */
static int answer(struct host_deepquote *dq, const struct dq_batch *batch, const struct dq_req *req,
		  uint64_t ima_offset, struct http_response *resp)
{
	struct json_object *out = NULL, *leaves;
	int r;

	if ((r = evidence_answer(dq->ev, &batch->quote, ima_offset, &out)) < 0) {
		evidence_answer_error(resp, r);
		return r;
	}
	json_object_object_add(out, "tree_size", json_object_new_int64((int64_t)batch->tree_size));
	json_object_object_add(out, "root", json_new_hex(batch->root, MERKLE_HASH));
	leaves = json_object_new_array_ext((int)(req->n_leaves ? req->n_leaves : 1));
	json_object_object_add(out, "leaves", leaves);
	for (size_t i = 0; i < req->n_leaves; i++) {
		const struct dq_leaf *l = &req->leaves[i];
		struct json_object *a;

		if (l->status == DQ_LEAF_OK)
			a = proof_json(batch->tree, l->index);
		else
			a = leaf_error(l->status == DQ_LEAF_BAD ? "bad_leaf" : "vm_not_running", l->reason);
		if (!a || json_object_array_add(leaves, a) < 0) {
			json_object_put(a);
			json_object_put(out);
			http_error(resp, 500, "internal", "internal error");
			return -ENOMEM;
		}
	}
	if (req->batched) {
		struct json_object *nl = proof_json(batch->tree, req->nonce_index);

		if (!nl) {
			json_object_put(out);
			http_error(resp, 500, "internal", "internal error");
			return -ENOMEM;
		}
		json_object_object_add(out, "nonce_leaf", nl);
	}
	resp->status = 200;
	resp->body = out;
	return 0;
}

struct dq_body {
	struct json_object *leaves;
};

static const struct json_field dq_fields[] = {
	{ "leaves", JSON_ARRAY, true, DQ_MAX_LEAVES, offsetof(struct dq_body, leaves) },
	{ 0 },
};

void host_deepquote_handle(const struct http_request *req, struct http_response *resp, struct host_deepquote *dq)
{
	struct dq_body body = { 0 };
	struct evidence_request er;
	struct dq_req q = { 0 };
	struct dq_leaf *leaves = NULL;
	_cleanup_free_ const char **uuids = NULL, **states = NULL;
	struct dq_batch *batch = NULL;
	size_t n = 0;
	int r;

	if (evidence_request_read(dq->ev, req, DQ_MAX_BODY, 4, dq_fields, &body, &er, resp) < 0)
		return;
	r = dq_leaves_parse(body.leaves, &leaves, &n);
	json_dispatch_free(dq_fields, &body);
	if (r < 0) {
		if (r == -ENOMEM)
			http_error(resp, 500, "internal", "out of memory");
		else
			http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		return;
	}
	/* vouch only for VMs the vTPM manager reported as running here */
	if (dq->vtpm) {
		if (!(uuids = calloc(n ? n : 1, sizeof(*uuids))) || !(states = calloc(n ? n : 1, sizeof(*states)))) {
			http_error(resp, 500, "internal", "out of memory");
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			uuids[i] = leaves[i].status == DQ_LEAF_OK ? leaves[i].vm_uuid : NULL;
		if (host_vtpm_vm_states(dq->vtpm, uuids, n, states) < 0) {
			log_error(MOD, "reading the VM map: %s", kq_errmsg());
			http_error(resp, 500, "internal", "cannot read the VM map");
			goto out;
		}
	}
	if (dq_leaves_check_states(leaves, n, dq->vtpm ? states : NULL) < 0 || dq_leaves_hash(leaves, n) < 0) {
		http_error(resp, 500, "internal", "internal error");
		goto out;
	}
	q.sel = er.sel;
	memcpy(q.nonce, er.nonce, er.nonce_len);
	q.nonce_len = er.nonce_len;
	q.leaves = leaves;
	q.n_leaves = n;
	if (dq_submit(&dq->batcher, &q, &batch) < 0) {
		http_error(resp, 500, "internal", "out of memory");
		goto out;
	}
	if (batch->err < 0) {
		kq_err(batch->err, "%s", batch->errmsg);
		evidence_quote_error(resp, batch->err);
		goto out;
	}
	(void)answer(dq, batch, &q, er.ima_offset, resp);
out:
	dq_batch_put(&dq->batcher, batch);
	dq_leaves_free(leaves, n);
}
