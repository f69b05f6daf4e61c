/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvirt domain XML as the vTPM manager reads it from the hook's stdin, a
 * file or libvirt (untrusted: a domain's XML carries tenant-chosen names):
 * domxml_parse, and domxml_add_tpm on whatever parses. What a parse hands on
 * must hold its promises — a lowercase UUID, a name, a state path only with
 * an emulator — and adding a TPM must give a document that parses again and
 * has one.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vtpm-mgr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dom_info d = {}, again = {};
	char *out = NULL;
	size_t out_len = 0;

	if (domxml_parse((const char *)data, size, NULL, &d) < 0)
		return 0;
	if (strlen(d.uuid) != 36 || !d.name || (d.vtpm_dir && !d.tpm_version[0]))
		abort();
	for (size_t i = 0; i < 36; i++)
		if (d.uuid[i] >= 'A' && d.uuid[i] <= 'F')
			abort();
	if (domxml_add_tpm((const char *)data, size, &out, &out_len) == 1) {
		if (domxml_parse(out, out_len, NULL, &again) < 0 || !again.has_tpm || strcmp(again.uuid, d.uuid) != 0)
			abort();
		dom_info_free(&again);
		free(out);
	}
	dom_info_free(&d);
	return 0;
}
