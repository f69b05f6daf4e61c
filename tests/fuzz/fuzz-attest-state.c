/* SPDX-License-Identifier: Apache-2.0 */
/*
 * attest_state_unpack() on any bytes: the verifier's stored replay state of
 * an agent (verifier/attest.h). Checked, beyond not crashing: the result is 0
 * or -EBADMSG, and a state that reads packs again into bytes that read back
 * to the same state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attest.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct attest_state *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	uint8_t *packed = NULL;
	size_t len;
	int r;

	if (!a || !b)
		abort();
	r = attest_state_unpack(data, size, a);
	if (r != 0 && r != -EBADMSG)
		abort();
	if (r == 0) {
		if (attest_state_pack(a, &packed, &len) != 0 || attest_state_unpack(packed, len, b) != 0)
			abort();
		if (a->have_quote != b->have_quote || a->clock != b->clock || a->reset_count != b->reset_count ||
		    a->restart_count != b->restart_count || strcmp(a->boot_id, b->boot_id) != 0 ||
		    a->ima.next_index != b->ima.next_index || a->ima.banks != b->ima.banks ||
		    a->ima.pcrs_used != b->ima.pcrs_used ||
		    memcmp(a->ima.pcr, b->ima.pcr, sizeof(a->ima.pcr)) != 0)
			abort();
		free(packed);
	}
	free(a);
	free(b);
	return 0;
}
