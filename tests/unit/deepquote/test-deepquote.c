/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host agent's deep quote without a TPM: reading and checking leaves,
 * refusing VMs that are not running, and batching requests into one tree and
 * one quote (a fake quote function records what it was asked to sign).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "deepquote-priv.h"
#include "testlib.h"

static const char uuid1[] = "7c9d9a4e-1111-4000-8000-000000000001";
static const char ek1[] = "000b0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
static const char att1[] = "aa000000000000000000000000000000000000000000000000000000000000ff";

static struct json_object *leaf_obj(const char *uuid, const char *ek, const char *att)
{
	struct json_object *o = json_object_new_object();

	if (uuid)
		json_object_object_add(o, "vm_uuid", json_object_new_string(uuid));
	if (ek)
		json_object_object_add(o, "ek_name", json_object_new_string(ek));
	if (att)
		json_object_object_add(o, "attest_sha256", json_object_new_string(att));
	return o;
}

static void sha256(const void *a, size_t al, const void *b, size_t bl, const void *c, size_t cl, uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	EVP_DigestUpdate(ctx, a, al);
	EVP_DigestUpdate(ctx, b, bl);
	EVP_DigestUpdate(ctx, c, cl);
	assert_int_equal(EVP_DigestFinal_ex(ctx, out, NULL), 1);
	EVP_MD_CTX_free(ctx);
}

/* ---- leaves ---- */

static void test_parse_leaves(void **state)
{
	struct json_object *arr = json_object_new_array();
	struct dq_leaf *l = NULL;
	size_t n = 0;
	char ek_short[] = "0b", ek_long[2 * 67 + 1], att_short[63];

	memset(ek_long, 'a', sizeof(ek_long) - 1);
	ek_long[sizeof(ek_long) - 1] = 0;
	memcpy(att_short, att1, 62);
	att_short[62] = 0;
	json_object_array_add(arr, leaf_obj("7C9D9A4E-1111-4000-8000-000000000001", ek1, att1)); /* 0: ok */
	json_object_array_add(arr, leaf_obj("not-a-uuid", ek1, att1));                           /* 1 */
	json_object_array_add(arr, leaf_obj(uuid1, ek_short, att1));                             /* 2: 1 byte */
	json_object_array_add(arr, leaf_obj(uuid1, ek_long, att1));                              /* 3: 67 bytes */
	json_object_array_add(arr, leaf_obj(uuid1, "0b0", att1));                                /* 4: odd */
	json_object_array_add(arr, leaf_obj(uuid1, ek1, att_short));                             /* 5: 31 bytes */
	json_object_array_add(arr, leaf_obj(uuid1, ek1, NULL));                                  /* 6: missing */
	json_object_array_add(arr, json_object_new_string("leaf"));                              /* 7: no object */
	{
		struct json_object *o = leaf_obj(uuid1, ek1, att1);                              /* 8: unknown */

		json_object_object_add(o, "extra", json_object_new_int(1));
		json_object_array_add(arr, o);
	}
	json_object_array_add(arr, leaf_obj(uuid1, "000b", att1));                               /* 9: ok, 2 bytes */
	assert_int_equal(dq_leaves_parse(arr, &l, &n), 0);
	assert_int_equal(n, 10);
	assert_int_equal(l[0].status, DQ_LEAF_OK);
	assert_string_equal(l[0].vm_uuid, uuid1);
	assert_int_equal(l[0].uuid[0], 0x7c);
	assert_int_equal(l[0].uuid[15], 0x01);
	assert_int_equal(l[0].ek_name_len, 34);
	assert_int_equal(l[0].attest_sha256[31], 0xff);
	for (size_t i = 1; i <= 8; i++) {
		assert_int_equal(l[i].status, DQ_LEAF_BAD);
		assert_non_null(l[i].reason);
		assert_string_equal(l[i].vm_uuid, "");
	}
	assert_non_null(strstr(l[1].reason, "vm_uuid"));
	assert_non_null(strstr(l[2].reason, "ek_name"));
	assert_non_null(strstr(l[3].reason, "ek_name"));
	assert_non_null(strstr(l[5].reason, "attest_sha256"));
	assert_non_null(strstr(l[6].reason, "attest_sha256"));
	assert_non_null(strstr(l[8].reason, "extra"));
	assert_int_equal(l[9].status, DQ_LEAF_OK);
	assert_int_equal(dq_leaves_ok(l, n), 2);
	dq_leaves_free(l, n);
	json_object_put(arr);

	/* not an array */
	arr = json_object_new_object();
	assert_int_equal(dq_leaves_parse(arr, &l, &n), -EINVAL);
	json_object_put(arr);
	/* empty: fine */
	arr = json_object_new_array();
	assert_int_equal(dq_leaves_parse(arr, &l, &n), 0);
	assert_int_equal(n, 0);
	dq_leaves_free(l, n);
	json_object_put(arr);
}

static void test_leaf_bound(void **state)
{
	struct json_object *arr = json_object_new_array(), *o = leaf_obj(uuid1, ek1, att1);
	struct dq_leaf *l = NULL;
	size_t n = 0;

	for (size_t i = 0; i < DQ_MAX_LEAVES; i++)
		json_object_array_add(arr, json_object_get(o));
	assert_int_equal(dq_leaves_parse(arr, &l, &n), 0);
	assert_int_equal(n, DQ_MAX_LEAVES);
	assert_int_equal(dq_leaves_ok(l, n), DQ_MAX_LEAVES);
	dq_leaves_free(l, n);
	json_object_array_add(arr, json_object_get(o));
	assert_int_equal(dq_leaves_parse(arr, &l, &n), -EINVAL);
	assert_non_null(strstr(kq_errmsg(), "65536"));
	json_object_put(o);
	json_object_put(arr);
}

static struct dq_leaf *some_leaves(size_t n)
{
	struct json_object *arr = json_object_new_array();
	struct dq_leaf *l = NULL;
	size_t got;

	for (size_t i = 0; i < n; i++) {
		char u[37], a[65];

		snprintf(u, sizeof(u), "7c9d9a4e-1111-4000-8000-%012zx", i + 1);
		snprintf(a, sizeof(a), "%064zx", i * 7919 + 1);
		json_object_array_add(arr, leaf_obj(u, ek1, a));
	}
	assert_int_equal(dq_leaves_parse(arr, &l, &got), 0);
	assert_int_equal(got, n);
	json_object_put(arr);
	return l;
}

static void test_states(void **state)
{
	struct dq_leaf *l = some_leaves(6);
	const char *states[6] = { "running", "migrating_in", "stopped", NULL, "defined", "running" };

	l[5].status = DQ_LEAF_BAD; /* a malformed leaf stays malformed */
	l[5].reason = strdup("bad");
	assert_int_equal(dq_leaves_check_states(l, 6, states), 0);
	assert_int_equal(l[0].status, DQ_LEAF_OK);
	assert_int_equal(l[1].status, DQ_LEAF_OK);
	assert_int_equal(l[2].status, DQ_LEAF_NOT_RUNNING);
	assert_non_null(strstr(l[2].reason, "is stopped on this host"));
	assert_non_null(strstr(l[2].reason, l[2].vm_uuid));
	assert_int_equal(l[3].status, DQ_LEAF_NOT_RUNNING);
	assert_non_null(strstr(l[3].reason, "never reported"));
	assert_int_equal(l[4].status, DQ_LEAF_NOT_RUNNING);
	assert_int_equal(l[5].status, DQ_LEAF_BAD);
	assert_string_equal(l[5].reason, "bad");
	dq_leaves_free(l, 6);

	/* no VM map at all: every leaf refused, saying why */
	l = some_leaves(2);
	assert_int_equal(dq_leaves_check_states(l, 2, NULL), 0);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(l[i].status, DQ_LEAF_NOT_RUNNING);
		assert_non_null(strstr(l[i].reason, "vTPM socket is off"));
	}
	dq_leaves_free(l, 2);
}

static void test_hash(void **state)
{
	struct dq_leaf *l = some_leaves(2);
	uint8_t zero = 0, want[32];

	l[1].status = DQ_LEAF_NOT_RUNNING;
	assert_int_equal(dq_leaves_hash(l, 2), 0);
	{
		uint8_t buf[16 + 34];

		memcpy(buf, l[0].uuid, 16);
		memcpy(buf + 16, l[0].ek_name, 34);
		sha256(&zero, 1, buf, sizeof(buf), l[0].attest_sha256, 32, want);
	}
	assert_memory_equal(l[0].hash, want, 32);
	dq_leaves_free(l, 2);
}

/* ---- batching ---- */

struct fake {
	pthread_mutex_t mu;
	unsigned calls;
	uint8_t qual[8][32];
	int fail;
};

static int fake_quote(void *ud, const TPML_PCR_SELECTION *sel, const uint8_t *qual, size_t qlen,
		      struct evidence_quote *ret)
{
	struct fake *f = ud;

	/* on a batch leader's thread: cmocka's asserts may not be used here */
	if (qlen != 32)
		abort();
	pthread_mutex_lock(&f->mu);
	if (f->calls < 8)
		memcpy(f->qual[f->calls], qual, 32);
	f->calls++;
	pthread_mutex_unlock(&f->mu);
	if (f->fail)
		return kq_err(-EIO, "the fake TPM is on fire");
	memset(ret, 0, sizeof(*ret));
	ret->attest = malloc(32);
	if (!ret->attest)
		abort();
	memcpy(ret->attest, qual, 32);
	ret->attest_len = 32;
	return 0;
}

struct job {
	struct dq_batcher *b;
	struct dq_req req;
	struct dq_batch *batch;
	unsigned delay_ms;
	pthread_barrier_t *start;
};

static void *run_job(void *p)
{
	struct job *j = p;

	if (j->start)
		pthread_barrier_wait(j->start);
	if (j->delay_ms)
		usleep(j->delay_ms * 1000u);
	if (dq_submit(j->b, &j->req, &j->batch) < 0)
		abort();
	return NULL;
}

static void sel_init(TPML_PCR_SELECTION *sel, unsigned pcr)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	sel->pcrSelections[0].pcrSelect[pcr / 8] = (uint8_t)(1u << (pcr % 8));
}

static void job_init(struct job *j, struct dq_batcher *b, size_t n_leaves, uint8_t nonce_byte)
{
	memset(j, 0, sizeof(*j));
	j->b = b;
	sel_init(&j->req.sel, 10);
	memset(j->req.nonce, nonce_byte, 20);
	j->req.nonce_len = 20;
	j->req.leaves = some_leaves(n_leaves);
	j->req.n_leaves = n_leaves;
	assert_int_equal(dq_leaves_hash(j->req.leaves, n_leaves), 0);
}

/* Every leaf of the request (and its nonce leaf when batched) proves to the batch's root. */
static void check_proofs(struct job *j)
{
	const struct dq_batch *bt = j->batch;
	uint8_t path[MERKLE_MAX_PROOF][MERKLE_HASH];
	size_t len;

	for (size_t i = 0; i < j->req.n_leaves; i++) {
		const struct dq_leaf *l = &j->req.leaves[i];

		if (l->status != DQ_LEAF_OK)
			continue;
		assert_int_equal(merkle_proof(bt->tree, l->index, path, &len), 0);
		assert_int_equal(merkle_verify(l->hash, l->index, bt->tree_size, (const uint8_t(*)[32])path, len,
					       bt->root), 0);
	}
	if (j->req.batched) {
		uint8_t nl[32];

		assert_int_equal(merkle_nonce_leaf(j->req.nonce, j->req.nonce_len, nl), 0);
		assert_int_equal(merkle_proof(bt->tree, j->req.nonce_index, path, &len), 0);
		assert_int_equal(merkle_verify(nl, j->req.nonce_index, bt->tree_size, (const uint8_t(*)[32])path, len,
					       bt->root), 0);
	}
}

static void job_done(struct job *j)
{
	dq_batch_put(j->b, j->batch);
	dq_leaves_free(j->req.leaves, j->req.n_leaves);
}

static void run_jobs(struct job *jobs, size_t n)
{
	pthread_t th[8];
	pthread_barrier_t start;

	assert_true(n <= 8);
	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (size_t i = 0; i < n; i++) {
		jobs[i].start = &start;
		assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
	}
	for (size_t i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
}

static void test_no_batching(void **state)
{
	struct fake f = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct dq_batcher b;
	struct job jobs[3];

	dq_batcher_init(&b, 0, 0, fake_quote, &f);
	for (size_t i = 0; i < 3; i++)
		job_init(&jobs[i], &b, i + 1, (uint8_t)(0x10 + i));
	run_jobs(jobs, 3);
	assert_int_equal(f.calls, 3);
	assert_int_equal(b.quotes, 3);
	for (size_t i = 0; i < 3; i++) {
		const struct dq_batch *bt = jobs[i].batch;
		uint8_t qd[32];

		assert_int_equal(bt->err, 0);
		assert_int_equal(bt->n_reqs, 1);
		assert_false(jobs[i].req.batched);
		assert_int_equal(bt->tree_size, i + 1);
		/* alone: the nonce is in the qualifying data, not in the tree */
		assert_int_equal(merkle_qualifying_data(jobs[i].req.nonce, 20, bt->root, qd), 0);
		assert_memory_equal(bt->quote.attest, qd, 32);
		check_proofs(&jobs[i]);
	}
	/* a tree of one leaf has that leaf as root */
	assert_memory_equal(jobs[0].batch->root, jobs[0].req.leaves[0].hash, 32);
	for (size_t i = 0; i < 3; i++)
		job_done(&jobs[i]);
	dq_batcher_destroy(&b);
}

static void test_batching(void **state)
{
	struct fake f = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct dq_batcher b;
	struct job jobs[4];
	uint8_t qd[32];

	dq_batcher_init(&b, 300, 0, fake_quote, &f);
	for (size_t i = 0; i < 4; i++)
		job_init(&jobs[i], &b, 3, (uint8_t)(0x20 + i));
	jobs[1].req.leaves[1].status = DQ_LEAF_NOT_RUNNING; /* refused leaves stay out of the tree */
	jobs[1].req.leaves[1].reason = strdup("stopped");
	for (size_t i = 0; i < 4; i++)
		jobs[i].delay_ms = (unsigned)i * 20;
	run_jobs(jobs, 4);
	assert_int_equal(f.calls, 1);
	assert_int_equal(b.quotes, 1);
	for (size_t i = 0; i < 4; i++) {
		assert_ptr_equal(jobs[i].batch, jobs[0].batch);
		assert_true(jobs[i].req.batched);
		check_proofs(&jobs[i]);
	}
	assert_int_equal(jobs[0].batch->n_reqs, 4);
	assert_int_equal(jobs[0].batch->n_leaves, 11);
	assert_int_equal(jobs[0].batch->tree_size, 15);
	/* batched: the nonces are leaves and the qualifying data has none */
	assert_int_equal(merkle_qualifying_data(NULL, 0, jobs[0].batch->root, qd), 0);
	assert_memory_equal(f.qual[0], qd, 32);
	for (size_t i = 0; i < 4; i++)
		job_done(&jobs[i]);
	dq_batcher_destroy(&b);
}

static void test_batch_splits(void **state)
{
	struct fake f = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct dq_batcher b;
	struct job jobs[4];

	/* room for 5 guest leaves per batch; and two PCR selections */
	dq_batcher_init(&b, 300, 5, fake_quote, &f);
	for (size_t i = 0; i < 4; i++)
		job_init(&jobs[i], &b, 3, (uint8_t)(0x30 + i));
	sel_init(&jobs[3].req.sel, 7);
	jobs[0].delay_ms = 0;
	jobs[1].delay_ms = 50;  /* does not fit beside jobs[0]: a batch of its own */
	jobs[2].delay_ms = 100; /* nor beside jobs[1] */
	jobs[3].delay_ms = 50;  /* another selection: another quote */
	run_jobs(jobs, 4);
	assert_int_equal(f.calls, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(jobs[i].batch->n_reqs, 1);
		assert_false(jobs[i].req.batched);
		check_proofs(&jobs[i]);
		job_done(&jobs[i]);
	}
	dq_batcher_destroy(&b);

	/* two small requests do fit */
	f.calls = 0;
	dq_batcher_init(&b, 300, 5, fake_quote, &f);
	job_init(&jobs[0], &b, 2, 0x40);
	job_init(&jobs[1], &b, 3, 0x41);
	jobs[1].delay_ms = 30;
	run_jobs(jobs, 2);
	assert_int_equal(f.calls, 1);
	assert_int_equal(jobs[0].batch->n_leaves, 5);
	for (size_t i = 0; i < 2; i++) {
		check_proofs(&jobs[i]);
		job_done(&jobs[i]);
	}
	dq_batcher_destroy(&b);
}

/* While the TPM is busy, the open batch keeps taking requests past its window. */
static void test_busy_tpm_extends_batch(void **state)
{
	struct fake f = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct dq_batcher b;
	struct job jobs[2];
	pthread_t th[2];

	dq_batcher_init(&b, 10, 0, fake_quote, &f);
	job_init(&jobs[0], &b, 1, 0x50);
	job_init(&jobs[1], &b, 1, 0x51);
	pthread_mutex_lock(&evidence_tpm_lock);
	assert_int_equal(pthread_create(&th[0], NULL, run_job, &jobs[0]), 0);
	usleep(150 * 1000);
	assert_int_equal(pthread_create(&th[1], NULL, run_job, &jobs[1]), 0);
	usleep(100 * 1000);
	assert_int_equal(f.calls, 0);
	pthread_mutex_unlock(&evidence_tpm_lock);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	assert_int_equal(f.calls, 1);
	assert_ptr_equal(jobs[0].batch, jobs[1].batch);
	for (size_t i = 0; i < 2; i++) {
		check_proofs(&jobs[i]);
		job_done(&jobs[i]);
	}
	dq_batcher_destroy(&b);
}

static void test_empty_and_failure(void **state)
{
	struct fake f = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct dq_batcher b;
	struct job jobs[2];
	uint8_t empty[32], qd[32];

	/* alone and without leaves: the empty tree's root, SHA-256("") */
	dq_batcher_init(&b, 0, 0, fake_quote, &f);
	job_init(&jobs[0], &b, 0, 0x60);
	run_jobs(jobs, 1);
	assert_int_equal(jobs[0].batch->tree_size, 0);
	assert_null(jobs[0].batch->tree);
	sha256("", 0, "", 0, "", 0, empty);
	assert_memory_equal(jobs[0].batch->root, empty, 32);
	assert_int_equal(merkle_qualifying_data(jobs[0].req.nonce, 20, empty, qd), 0);
	assert_memory_equal(f.qual[0], qd, 32);
	job_done(&jobs[0]);
	dq_batcher_destroy(&b);

	/* a failed quote fails every request of the batch, with the reason */
	f.fail = 1;
	dq_batcher_init(&b, 200, 0, fake_quote, &f);
	job_init(&jobs[0], &b, 0, 0x61);
	job_init(&jobs[1], &b, 2, 0x62);
	jobs[1].delay_ms = 30;
	run_jobs(jobs, 2);
	assert_ptr_equal(jobs[0].batch, jobs[1].batch);
	assert_int_equal(jobs[0].batch->err, -EIO);
	assert_non_null(strstr(jobs[0].batch->errmsg, "on fire"));
	assert_int_equal(b.quotes, 0);
	for (size_t i = 0; i < 2; i++)
		job_done(&jobs[i]);
	dq_batcher_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_leaves),
		cmocka_unit_test(test_leaf_bound),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_no_batching),
		cmocka_unit_test(test_batching),
		cmocka_unit_test(test_batch_splits),
		cmocka_unit_test(test_busy_tpm_extends_batch),
		cmocka_unit_test(test_empty_and_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
