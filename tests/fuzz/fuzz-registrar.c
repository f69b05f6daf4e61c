/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registrar's enrolment request: the body of POST /v1/agents read through
 * registrar_parse_enrol() (the API's JSON limits and its field table), then
 * the id lowercased and checked as handle_enrol does. What a successful read
 * hands on must hold what the table promises: required fields present,
 * strings within their limits and valid UTF-8, decoded bytes within theirs.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fuzz.h"

static volatile uint8_t sink;

static void check_string(const char *s, size_t max, bool required)
{
	size_t n;

	if (!s) {
		if (required)
			abort();
		return;
	}
	n = strlen(s);
	if (n > max || !json_utf8_valid(s, n))
		abort();
}

static void check_bytes(const struct json_bytes *b, size_t max, bool required)
{
	if (!b->data) {
		if (required || b->len)
			abort();
		return;
	}
	if (b->len > max)
		abort();
	/* every decoded byte is readable (ASan checks the buffer's extent) */
	for (size_t i = 0; i < b->len; i++)
		sink ^= b->data[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reg_enrol_req req, untouched;

	memset(&req, 0x5a, sizeof(req));
	untouched = req;
	if (registrar_parse_enrol(data, size, &req) < 0) {
		/* refused: nothing was handed out */
		if (memcmp(&req, &untouched, sizeof(req)) != 0)
			abort();
		return 0;
	}
	check_string(req.id, REG_ID_MAX, true);
	check_string(req.kind, 8, true);
	check_string(req.contact, 512, false);
	check_bytes(&req.ek_pub, 1024, true);
	check_bytes(&req.ek_cert, 8192, false);
	check_bytes(&req.ak_pub, 1024, true);
	/* as handle_enrol: any spelling of a UUID names the agent, stored lowercase */
	for (char *c = req.id; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	if (reg_valid_id(req.id) && strlen(req.id) != REG_ID_MAX)
		abort();
	registrar_enrol_req_free(&req);
	if (req.id || req.kind || req.contact || req.ek_pub.data || req.ek_cert.data || req.ak_pub.data)
		abort();
	return 0;
}
