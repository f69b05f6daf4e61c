/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ascii_runtime_measurements parser: parse, check and replay whatever comes,
 * then exercise every per-entry accessor and the signature check.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ima/ima.h"

/* The keylime test keys (RSA-2048 f3452d23, secp256k1 531f4025). */
static const char keys_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1cD7bW5tX5qIVgWskS5t\n"
	"zY+XpqWzcW6HFq5npj8dHFIWsAJJCUdoSU631hkyY8HP/RfXDPq/J4IeKvx35EVX\n"
	"j49t1Z1FTJBgUlEbkKvqm0rY6jo7PnJ6BsDRrauXtiEXVKNXcWXDk8ES+9v9Cz26\n"
	"BJYAr+5Xgm2aEyAbj8GhicxUZfsjDm8eJ7ZnQKuhF7jejG5dYAYxnBVu99bQJHI5\n"
	"Fsu3dAjGbys9v7ToNbonS+1bJXdHyEE0swhxBOPvvV6vx5CzRNw1Sou3rT19T4j8\n"
	"wpsFOyYXVcbbRVBAmBE2Qy2UHvojFqaJN/A9lztllyER1S5heGG6CxK3GoR6pkOX\n"
	"AQIDAQAB\n"
	"-----END PUBLIC KEY-----\n"
	"-----BEGIN PUBLIC KEY-----\n"
	"MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEnNH3Y/xOTwRRd8D6hpodRLnVx71qDTLv\n"
	"JHouno7nU7JSzcXWN1PxK+HQEh1V7sMdwBER4KFKE635JTv6C+BRBg==\n"
	"-----END PUBLIC KEY-----\n";

static const struct ima_keyring *keyring(void)
{
	static struct ima_keyring *k;

	if (!k && (ima_keyring_new(&k) < 0 ||
		   ima_keyring_add(k, (const uint8_t *)keys_pem, sizeof(keys_pem) - 1) != 2))
		__builtin_trap();
	return k;
}

static volatile uint8_t sink;

static void exercise(const struct ima_entry *e)
{
	struct ima_sig_result res;
	uint8_t d[KQ_MAX_DIGEST];
	const uint8_t *f;
	size_t n;

	for (int id = 0; id < IMA_FIELD__COUNT; id++)
		if (ima_entry_field(e, (enum ima_field_id)id, &f, &n) == 0)
			for (size_t i = 0; i < n; i++)
				sink ^= f[i]; /* every byte of the field is readable */
	if (ima_sig_verify(keyring(), e, &res) == IMA_SIG_VALID && !res.has_keyid)
		__builtin_trap();
	(void)ima_entry_template_digest(e, KQ_ALG_SHA384, d);
	if (e->path && strlen(e->path) != e->path_len)
		__builtin_trap();
	if (e->buf) {
		/* a keyring measurement carries a DER certificate: hostile too */
		struct ima_keyring *k = NULL;

		if (ima_keyring_new(&k) == 0)
			(void)ima_keyring_add(k, e->buf, e->buf_len);
		ima_keyring_free(k);
	}
}

static void put(uint8_t **p, const void *d, size_t n)
{
	memcpy(*p, d, n);
	*p += n;
}

static void put32(uint8_t **p, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	put(p, b, 4);
}

/*
 * Differential check: the same entries written as a binary list must parse
 * to the same template data, flags and replay.
 */
static void check_binary_twin(const struct ima_list *l, const struct ima_replay_state *want)
{
	struct ima_parse_opts o = { .format = IMA_FORMAT_BINARY };
	struct ima_replay_state st;
	struct ima_list *b = NULL;
	uint8_t *buf, *p;
	size_t cap = 0;

	if (!l->n_entries)
		return;
	o.template_hash_alg = l->entries[0].template_hash_alg;
	for (size_t i = 0; i < l->n_entries; i++)
		cap += 4 + KQ_MAX_DIGEST + 4 + IMA_MAX_TEMPLATE_NAME + 8 + l->entries[i].template_data_len;
	p = buf = malloc(cap);
	if (!buf)
		return;
	for (size_t i = 0; i < l->n_entries; i++) {
		const struct ima_entry *e = &l->entries[i];

		put32(&p, e->pcr);
		put(&p, e->template_hash, kq_hash_size(e->template_hash_alg));
		put32(&p, (uint32_t)strlen(e->template_name));
		put(&p, e->template_name, strlen(e->template_name));
		if (e->tmpl->id == IMA_TEMPLATE_IMA) {
			put(&p, e->template_data, 20);
			put32(&p, (uint32_t)e->path_len);
			put(&p, e->path, e->path_len);
		} else {
			put32(&p, (uint32_t)e->template_data_len);
			put(&p, e->template_data, e->template_data_len);
		}
	}
	if (ima_list_parse(buf, (size_t)(p - buf), &o, &b) < 0 || b->n_entries != l->n_entries)
		__builtin_trap();
	for (size_t i = 0; i < l->n_entries; i++) {
		const struct ima_entry *x = &l->entries[i], *y = &b->entries[i];

		if (x->template_data_len != y->template_data_len ||
		    memcmp(x->template_data, y->template_data, x->template_data_len) != 0 ||
		    x->template_hash_ok != y->template_hash_ok || x->violation != y->violation ||
		    x->digest_len != y->digest_len || x->sig_len != y->sig_len || x->buf_len != y->buf_len)
			__builtin_trap();
	}
	ima_replay_init(&st, want->banks, 0);
	if (ima_replay_list(&st, b) < 0 || memcmp(&st, want, sizeof(st)) != 0)
		__builtin_trap();
	ima_list_free(b);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ima_parse_opts o = { .format = IMA_FORMAT_ASCII };
	struct ima_list *l = NULL;
	struct ima_reader *r = NULL;
	const struct ima_entry *e;
	struct ima_replay_state st;

	if (ima_list_parse(data, size, &o, &l) == 0) {
		ima_replay_init(&st, IMA_BANK_SHA1 | IMA_BANK_SHA256 | IMA_BANK_SHA384 | IMA_BANK_SHA512, 0);
		if (ima_replay_list(&st, l) < 0)
			__builtin_trap();
		for (size_t i = 0; i < l->n_entries; i++)
			exercise(&l->entries[i]);
		check_binary_twin(l, &st);
		ima_list_free(l);
	}
	/* the streaming reader, with the auto-detection */
	if (ima_reader_new(data, size, NULL, &r) == 0) {
		ima_replay_init(&st, 0, 0);
		while (ima_reader_next(r, &e) > 0)
			if (ima_replay_entry(&st, e) < 0)
				__builtin_trap();
		ima_reader_free(r);
	}
	return 0;
}
