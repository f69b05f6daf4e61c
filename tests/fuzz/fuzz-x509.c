/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificates as TPMs, vendors and operators hand them out (PEM or DER, NV
 * header and padding quirks, re-encoded serials): x509_load_many() and
 * x509_load() on the input, then x509_describe() of every certificate loaded,
 * serialised so that every string it built is walked, and the vTPM identity
 * URIs the registrar reads (x509_vtpm_identity).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "fuzz.h"
#include "x509/x509.h"

static volatile size_t sink;

static void describe(X509 *c)
{
	struct json_object *o = NULL;
	size_t len = 0;
	char vm[37], host[37];

	/* the registrar reads a guest's VM and host from these URIs */
	if (x509_vtpm_identity(c, vm, host) == 0 && (strlen(vm) != 36 || strlen(host) != 36))
		abort();

	if (x509_describe(c, &o) < 0)
		return;
	if (!json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len))
		abort();
	sink += len;
	json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *sk = NULL;
	X509 *first = NULL;

	if (x509_load(data, size, &first) == 0)
		describe(first);
	if (x509_load_many(data, size, &sk) == 0) {
		/* whatever loads in full loads its first certificate alone, the same one */
		if (!first || sk_X509_num(sk) < 1 || X509_cmp(first, sk_X509_value(sk, 0)) != 0)
			abort();
		for (int i = 0; i < sk_X509_num(sk); i++)
			describe(sk_X509_value(sk, i));
		sk_X509_pop_free(sk, X509_free);
	}
	X509_free(first);
	/*
	 * Refusals leave OpenSSL errors queued (with strdup'd file and function
	 * names) until the next call clears them; clear them here so that each
	 * input frees what it allocates and libFuzzer's leak check (run whenever
	 * mallocs and frees of one input differ) does not slow every run.
	 */
	ERR_clear_error();
	return 0;
}
