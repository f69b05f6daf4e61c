/* SPDX-License-Identifier: Apache-2.0 */
/* TPMS_ATTEST, TPMT_SIGNATURE, TPM2B_PUBLIC/TPMT_PUBLIC, key files, credential files. */
#include "fuzz.h"
#include "tpm/tpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;

	if (!quiet) {
		tpm_quiet_tss_log();
		quiet = true;
	}
	TPMS_ATTEST a;
	TPMT_SIGNATURE s;
	TPM2B_PUBLIC p;
	TPM2B_ID_OBJECT blob;
	TPM2B_ENCRYPTED_SECRET seed;
	struct tpm_key key;

	(void)tpm_attest_unmarshal(data, size, &a);
	(void)tpm_signature_unmarshal(data, size, &s);
	(void)tpm_credfile_parse(data, size, &blob, &seed);
	if (tpm_public_unmarshal(data, size, &p) == 0) {
		TPM2B_NAME n;
		(void)tpm_public_name(&p.publicArea, &n);
	}
	if (tpm_key_load(data, size, &key) == 0) {
		/* a parsed key must survive use with arbitrary signatures */
		if (size >= 2)
			(void)tpm_signature_verify(key.pkey, &s, data, size / 2);
		tpm_key_clear(&key);
	}
	return 0;
}
