/* SPDX-License-Identifier: Apache-2.0 */
/* Keylime runtime policies (plain and DSSE-wrapped), as the verifier loads them. */
#include "fuzz.h"
#include "imapolicy/imapolicy.h"

/* the public key of the DSSE test policy in the test data */
static const char dsse_key[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEXIgsNuIpHj5ogMLDd+u/lxsAyKjv\n"
	"toXL1efXBUQ/MbCHlqnhUnn4I31sp6zBFrSYQJ1Bzz5OHLf1UqsOgy0Cpw==\n"
	"-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *keys[] = { dsse_key };
	struct imapolicy_load_opts opts = { .dsse_keys = keys, .n_dsse_keys = 1 };
	struct imapolicy *p = NULL;

	if (imapolicy_parse(data, size, &opts, &p) == 0)
		imapolicy_free(p);
	return 0;
}
