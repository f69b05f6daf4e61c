/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The deep quote's parts that need no TPM, for host-agent/deepquote.c and its
 * unit tests: reading and checking the leaves of a request, and batching
 * requests that arrive close together into one tree and one quote.
 */
#ifndef KQ_HOST_DEEPQUOTE_PRIV_H
#define KQ_HOST_DEEPQUOTE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "evidence/evidence.h"
#include "merkle/merkle.h"

/* Leaves in one request (docs/deep-quote.md). */
#define DQ_MAX_LEAVES 65536u
/* Guest leaves in one batch: a request that would go over it starts a batch of its own. */
#define DQ_MAX_BATCH_LEAVES (4u * DQ_MAX_LEAVES)
/* Requests in one batch (the HTTP server has fewer threads anyway). */
#define DQ_MAX_BATCH_REQUESTS 64u
/* Longest window_ms accepted in the config. */
#define DQ_MAX_WINDOW_MS 5000u

enum dq_leaf_status {
	DQ_LEAF_OK,
	DQ_LEAF_BAD,         /* malformed: bad_leaf */
	DQ_LEAF_NOT_RUNNING, /* vm_not_running */
};

struct dq_leaf {
	enum dq_leaf_status status;
	char vm_uuid[37];                    /* lowercase; "" while malformed */
	uint8_t uuid[16];
	uint8_t ek_name[MERKLE_MAX_EK_NAME];
	size_t ek_name_len;
	uint8_t attest_sha256[32];
	uint8_t hash[MERKLE_HASH];           /* the Merkle leaf, once hashed */
	size_t index;                        /* in the batch's tree, once quoted */
	char *reason;                        /* BAD: why (malloc'd); NOT_RUNNING: the message */
};

/*
 * Reads the request's "leaves" (a JSON array) into *ret (*ret_n entries, in
 * request order; caller frees with dq_leaves_free). A malformed element does
 * not fail the request: it is kept as DQ_LEAF_BAD with its reason, so the
 * answer can refuse it in its place. -EINVAL when arr is not an array or has
 * more than DQ_MAX_LEAVES elements; -ENOMEM.
 */
int dq_leaves_parse(struct json_object *arr, struct dq_leaf **ret, size_t *ret_n);
void dq_leaves_free(struct dq_leaf *leaves, size_t n);

/*
 * Refuses (DQ_LEAF_NOT_RUNNING, with a message) every well-formed leaf whose
 * VM is not running here: states[i] is the VM map's state of leaves[i]
 * ("running", "stopped", ...; NULL: never reported). Only "running" and
 * "migrating_in" pass. states NULL: there is no VM map (the vTPM socket is
 * off), and every leaf is refused, saying so. -ENOMEM.
 */
int dq_leaves_check_states(struct dq_leaf *leaves, size_t n, const char *const *states);

/* Computes hash for every DQ_LEAF_OK leaf (merkle_leaf). -EIO if hashing fails. */
int dq_leaves_hash(struct dq_leaf *leaves, size_t n);

/* Number of DQ_LEAF_OK leaves. */
size_t dq_leaves_ok(const struct dq_leaf *leaves, size_t n);

/* ---- batching ---- */

/* One request's part in a batch. */
struct dq_req {
	TPML_PCR_SELECTION sel;
	uint8_t nonce[EVIDENCE_MAX_NONCE];
	size_t nonce_len;                    /* 1..EVIDENCE_MAX_NONCE */
	struct dq_leaf *leaves;              /* DQ_LEAF_OK ones go into the tree (index set) */
	size_t n_leaves;
	/* set by dq_submit */
	bool batched;                        /* shared the quote: its nonce is a leaf of the tree */
	size_t nonce_index;                  /* when batched */
};

/*
 * The quote a batch asks for: TPM2_Quote over sel with qualifying data qual,
 * as evidence_quote does. Called without the batcher's lock held.
 */
typedef int (*dq_quote_fn)(void *userdata, const TPML_PCR_SELECTION *sel, const uint8_t *qual, size_t qlen,
			   struct evidence_quote *ret);

/* One tree and one quote, shared by the requests in it. Read-only once dq_submit returns it. */
struct dq_batch {
	TPML_PCR_SELECTION sel;
	struct dq_req *reqs[DQ_MAX_BATCH_REQUESTS];
	size_t n_reqs;
	size_t n_leaves;                     /* guest leaves in the tree */
	struct timespec deadline;            /* CLOCK_MONOTONIC: the window closes */
	struct merkle_tree *tree;            /* NULL when the tree is empty */
	size_t tree_size;
	uint8_t root[MERKLE_HASH];
	struct evidence_quote quote;
	int err;                             /* < 0: the quote failed for every request */
	char errmsg[256];
	bool done;
	unsigned refs;
	pthread_cond_t cond;
};

struct dq_batcher {
	pthread_mutex_t mu;
	struct dq_batch *open;               /* taking requests; NULL when none */
	unsigned window_ms;                  /* 0: every request is quoted alone */
	size_t max_leaves;                   /* guest leaves per batch */
	dq_quote_fn quote;
	void *userdata;
	uint64_t quotes;                     /* made so far, for tests */
};

/* window_ms 0 disables batching; max_leaves 0 means DQ_MAX_BATCH_LEAVES. */
void dq_batcher_init(struct dq_batcher *b, unsigned window_ms, size_t max_leaves, dq_quote_fn fn, void *userdata);
void dq_batcher_destroy(struct dq_batcher *b);

/*
 * Puts req (leaves hashed) into the open batch with the same PCR selection
 * and room for its leaves, or opens one. The first request of a batch waits
 * window_ms, then for the TPM (evidence_tpm_lock) to be free -- the batch
 * takes requests until then -- builds the tree (its own leaves and, when the
 * batch holds more than one request, one nonce leaf per request ahead of its
 * leaves), has fn quote with merkle_qualifying_data (the nonce when alone,
 * empty when batched) and wakes the others. The tree of no leaves (a request
 * alone with none) has size 0 and root SHA-256(""), as in RFC 9162.
 * Sets req's batched/nonce_index and its leaves' indexes. *ret holds the
 * batch (quote or err/errmsg set), released with dq_batch_put. Logs one line
 * per quote. -ENOMEM.
 */
int dq_submit(struct dq_batcher *b, struct dq_req *req, struct dq_batch **ret);
void dq_batch_put(struct dq_batcher *b, struct dq_batch *batch);

#endif
