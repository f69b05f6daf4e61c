/* SPDX-License-Identifier: Apache-2.0 */
/* Measured-boot reference states (Keylime's and kumquat's form). */
#include "fuzz.h"
#include "mbpolicy/mbpolicy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbpolicy *p = NULL;

	if (mbpolicy_parse(data, size, &p) == 0)
		mbpolicy_free(p);
	return 0;
}
