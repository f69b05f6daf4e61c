/* SPDX-License-Identifier: Apache-2.0 */
/* tpm2-tools PCR files: parse, and anything parsed writes back to the same values. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tpm/tpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;

	if (!quiet) {
		tpm_quiet_tss_log();
		quiet = true;
	}
	struct tpm_pcrs a, b;
	uint8_t *out = NULL;
	size_t len;

	if (tpm_pcrfile_parse(data, size, &a) < 0)
		return 0;
	if (tpm_pcrfile_write(&a, &out, &len) < 0)
		abort();
	if (tpm_pcrfile_parse(out, len, &b) < 0 || a.nbanks != b.nbanks)
		abort();
	for (size_t i = 0; i < a.nbanks; i++) {
		if (a.bank[i].alg != b.bank[i].alg || a.bank[i].mask != b.bank[i].mask)
			abort();
		for (unsigned p = 0; p < TPM_NUM_PCRS; p++)
			if ((a.bank[i].mask & (1u << p)) &&
			    memcmp(a.bank[i].value[p], b.bank[i].value[p], kq_hash_size(a.bank[i].alg)))
				abort();
	}
	free(out);
	return 0;
}
