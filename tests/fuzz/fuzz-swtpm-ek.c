/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The EK as swtpm_setup's cert tool passes it on to the host agent's local
 * socket (an RSA modulus in hex, or x=,y=,id= for ECC): host_vtpm_parse_ek on
 * the input as a string. A key it accepts must be a usable public key of the
 * stated kind: RSA 2048-4096 bits or a P-256 / P-384 point on its curve.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "fuzz.h"
#include "host-agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	EVP_PKEY *k = NULL;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (host_vtpm_parse_ek(s, &k) == 0) {
		int bits = EVP_PKEY_get_bits(k);

		if (EVP_PKEY_is_a(k, "RSA") ? (bits != 2048 && bits != 3072 && bits != 4096)
					    : !(EVP_PKEY_is_a(k, "EC") && (bits == 256 || bits == 384)))
			abort();
		EVP_PKEY_free(k);
	}
	free(s);
	ERR_clear_error();
	return 0;
}
