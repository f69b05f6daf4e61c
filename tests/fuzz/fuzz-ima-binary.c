/* SPDX-License-Identifier: Apache-2.0 */
/*
 * binary_runtime_measurements parser: little- and big-endian, sha1 and sha256
 * template hashes; replay and the per-entry accessors on whatever parses.
 */
#include <string.h>

#include "fuzz.h"
#include "ima/ima.h"

static volatile uint8_t sink;

static void exercise(const struct ima_entry *e)
{
	struct ima_sig_result res;
	struct ima_sig_hdr h;
	uint8_t d[KQ_MAX_DIGEST];
	const uint8_t *f;
	size_t n;

	for (int id = 0; id < IMA_FIELD__COUNT; id++)
		if (ima_entry_field(e, (enum ima_field_id)id, &f, &n) == 0)
			for (size_t i = 0; i < n; i++)
				sink ^= f[i]; /* every byte of the field is readable */
	/* no keys: only the header checks run */
	(void)ima_sig_verify(NULL, e, &res);
	if (e->sig && ima_sig_parse(e->sig, e->sig_len, &h) == 0 && h.sig + h.sig_len != e->sig + e->sig_len)
		__builtin_trap();
	if (ima_entry_bank_digest(e, KQ_ALG_SHA512, d) < 0)
		__builtin_trap();
	if (e->path && strlen(e->path) != e->path_len)
		__builtin_trap();
	if (e->digest && (e->digest < e->template_data ||
			  e->digest + e->digest_len > e->template_data + e->template_data_len))
		__builtin_trap();
}

static void run(const uint8_t *data, size_t size, bool be, uint16_t th_alg)
{
	struct ima_parse_opts o = { .format = IMA_FORMAT_BINARY, .big_endian = be,
				    .template_hash_alg = th_alg };
	struct ima_list *l = NULL;
	struct ima_replay_state st;

	if (ima_list_parse(data, size, &o, &l) < 0)
		return;
	ima_replay_init(&st, 0, 0);
	if (ima_replay_list(&st, l) < 0)
		__builtin_trap();
	for (size_t i = 0; i < l->n_entries; i++)
		exercise(&l->entries[i]);
	ima_list_free(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size, false, 0);
	run(data, size, true, 0);
	run(data, size, false, KQ_ALG_SHA256);
	return 0;
}
