/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/payload's parsers on any bytes: the payload archive (payload_archive_check,
 * what an agent reads before it writes a file) and a sealed payload
 * (payload_open with a fixed key). Checked, beyond not crashing: the archive
 * check answers 0 or -EBADMSG, and a count within the limits when it
 * accepts; opening a sealed payload never succeeds for bytes that were not
 * sealed with the key (AES-GCM's tag).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "payload/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t k[PAYLOAD_KEY_LEN] = { 1, 2, 3 };
	uint8_t *out = NULL;
	size_t n = 0, len;
	int r = payload_archive_check(data, size, &n);

	if (r != 0 && r != -EBADMSG)
		abort();
	if (r == 0 && (n == 0 || n > PAYLOAD_MAX_FILES))
		abort();
	r = payload_open(k, "5d8a2f0e-2b1c-4c3d-9e8f-0a1b2c3d4e5f", data, size, &out, &len);
	if (r != -EBADMSG)
		abort();
	return 0;
}
