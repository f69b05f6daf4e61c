/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSON bodies: the strict parse, then what follows from it — what json-c
 * writes back parses again to an equal document, and json_dispatch over any
 * object sets and frees its fields cleanly. The input as a string is also fed
 * to the strict base64 decoder, whose output must encode back to the input.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json/json.h"

struct all {
	char *s;
	struct json_bytes b64, hex;
	int64_t i;
	uint64_t u;
	bool b;
	struct json_object *o, *a;
};

/* Field names the corpus uses, so dispatch gets past the unknown-key check. */
static const struct json_field fields[] = {
	{ "agent_id", JSON_STRING, false, 64, offsetof(struct all, s) },
	{ "ek_pub", JSON_BASE64, false, 4096, offsetof(struct all, b64) },
	{ "digest", JSON_HEX, false, 64, offsetof(struct all, hex) },
	{ "delta", JSON_INT64, false, 0, offsetof(struct all, i) },
	{ "ima_offset", JSON_UINT64, false, 0, offsetof(struct all, u) },
	{ "verified", JSON_BOOL, false, 0, offsetof(struct all, b) },
	{ "pcrs", JSON_OBJECT, false, 8, offsetof(struct all, o) },
	{ "leaves", JSON_ARRAY, false, 8, offsetof(struct all, a) },
	{ NULL, 0, false, 0, 0 },
};

static void check_dispatch(struct json_object *o)
{
	for (int allow = 0; allow < 2; allow++) {
		struct all t;

		memset(&t, 0, sizeof(t));
		if (json_dispatch(o, fields, &t, allow) < 0) {
			/* a failed dispatch leaves nothing behind */
			if (t.s || t.b64.data || t.hex.data || t.o || t.a)
				abort();
			continue;
		}
		if (t.s && !json_utf8_valid(t.s, strlen(t.s)))
			abort();
		json_dispatch_free(fields, &t);
	}
}

static void check_base64(const uint8_t *data, size_t size)
{
	char *s, *again;
	uint8_t *dec;
	size_t len;

	if (size > 4096 || memchr(data, '\0', size))
		return;
	s = strndup((const char *)data, size);
	if (!s)
		abort();
	if (kq_base64_decode(s, SIZE_MAX, &dec, &len) == 0) {
		if (kq_base64_encode(dec, len, &again) < 0 || strcmp(again, s) != 0)
			abort();
		free(again);
		free(dec);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o, *o2;
	const char *text;
	size_t len;

	check_base64(data, size);
	if (json_parse_body(data, size, 1u << 20, 32, &o) < 0)
		return 0;
	text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
						 JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!text || json_parse_body((const uint8_t *)text, len, 4u << 20, 32, &o2) < 0)
		abort();
	if (!json_object_equal(o, o2))
		abort();
	if (json_object_is_type(o, json_type_object))
		check_dispatch(o);
	json_object_put(o2);
	json_object_put(o);
	return 0;
}
