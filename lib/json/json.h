/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/json: reading JSON from the network, over json-c.
 *
 *  - json_parse_body(): a strict RFC 8259 parse of a whole request or response
 *    body, with size and depth limits and duplicate keys rejected;
 *  - json_dispatch(): table-driven extraction of an object's fields into a C
 *    struct (after systemd's json_dispatch), checking type, size and encoding
 *    of each field;
 *  - strict base64 and hex, and UTF-8 validation.
 *
 * Errors follow lib/util: negative errno-style codes with kq_errmsg() set.
 * Messages name the offending field or offset but never quote more than a
 * short, sanitised piece of the input.
 */
#ifndef KQ_JSON_H
#define KQ_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util/util.h"

/* Deepest nesting json_parse_body() accepts whatever max_depth says. */
#define JSON_MAX_DEPTH 256
/*
 * Most objects plus arrays in one document. json-c spends about 750 bytes on
 * an empty object, so "[{},{},...]" would otherwise turn a 1 MiB body into
 * 250 MB; this caps that at about 25 MB.
 */
#define JSON_MAX_CONTAINERS 32768

/*
 * Parses buf as exactly one JSON value (RFC 8259), optionally surrounded by
 * whitespace, and returns it in *ret (caller drops it with json_object_put).
 * Stricter than json-c alone: rejects trailing data, comments, single quotes,
 * control characters in strings, invalid UTF-8 (overlong forms, surrogates),
 * unpaired \u surrogates, "\u0000", numbers such as "1." or "01", integers
 * outside int64/uint64 (json-c would clamp them), duplicate keys in an object
 * (json-c would keep the last), and a top-level null.
 *
 * max_depth is the deepest nesting of objects and arrays (a top-level object
 * is depth 1; capped at JSON_MAX_DEPTH); at most JSON_MAX_CONTAINERS objects
 * and arrays in all.
 * Errors: -E2BIG if len > max_len; -EBADMSG if malformed, too deep, or
 * duplicate keys (message with the byte offset); -ENOMEM.
 */
int json_parse_body(const uint8_t *buf, size_t len, size_t max_len, size_t max_depth,
		    struct json_object **ret);

/*
 * As json_parse_body, with another cap on objects plus arrays than
 * JSON_MAX_CONTAINERS: for documents whose size is bounded by the caller
 * and that legitimately hold many (a deep quote with a proof per guest).
 */
int json_parse_body_containers(const uint8_t *buf, size_t len, size_t max_len, size_t max_depth,
			       size_t max_containers, struct json_object **ret);

/* ---- table-driven field extraction ---- */

enum json_field_type {
	JSON_STRING, /* char *: malloc'd, valid UTF-8, no NUL, <= max_len bytes */
	JSON_BASE64, /* struct json_bytes: standard base64 with padding, <= max_len decoded bytes */
	JSON_HEX,    /* struct json_bytes: hex digits (either case), <= max_len decoded bytes */
	JSON_INT64,  /* int64_t: a JSON integer (no fraction or exponent) */
	JSON_UINT64, /* uint64_t: a non-negative JSON integer */
	JSON_BOOL,   /* bool: true or false */
	JSON_OBJECT, /* struct json_object *: a new reference; <= max_len keys */
	JSON_ARRAY,  /* struct json_object *: a new reference; <= max_len elements */
};

/*
 * One field of a table; a table ends with an entry whose name is NULL.
 * max_len 0 means no limit of its own (the body limit still applies).
 */
struct json_field {
	const char *name;
	enum json_field_type type;
	bool required;
	size_t max_len;
	size_t offset; /* offsetof() the member in the target struct */
};

/* Decoded JSON_BASE64 / JSON_HEX; data is malloc'd (non-NULL even when len is 0). */
struct json_bytes {
	uint8_t *data;
	size_t len;
};

/*
 * Fills target from obj per fields. obj must be a JSON object. Keys not in the
 * table are an error unless allow_unknown. A null value counts as absent (an
 * error for a required field). Members for absent fields are left untouched,
 * so the target can hold defaults for scalar fields; pointer members must be
 * NULL before the call (they are overwritten, not freed).
 *
 * On success the caller owns what was set: free it with json_dispatch_free().
 * On error returns -EINVAL (or -ENOMEM) with a message naming the field
 * ("field 'ek_pub': not valid base64"), and everything this call set has been
 * freed and reset to NULL.
 */
int json_dispatch(struct json_object *obj, const struct json_field *fields, void *target,
		  bool allow_unknown);

/*
 * Frees the strings, byte buffers and object references of every field in the
 * table and resets them to NULL / 0. Safe on a zeroed target and twice in a row.
 */
void json_dispatch_free(const struct json_field *fields, void *target);

/* ---- encodings ---- */

/* Standard base64 with padding, NUL-terminated, malloc'd (caller frees). -ENOMEM, -E2BIG. */
int kq_base64_encode(const uint8_t *data, size_t len, char **ret);

/*
 * Decodes strict standard base64: the alphabet A-Z a-z 0-9 + /, length a
 * multiple of 4, '=' padding only at the end, unused bits zero (so each byte
 * string has exactly one accepted encoding), no whitespace. *ret is malloc'd
 * (non-NULL even for ""), caller frees. -EINVAL if malformed, -E2BIG if it
 * decodes to more than max bytes, -ENOMEM.
 */
int kq_base64_decode(const char *s, size_t max, uint8_t **ret, size_t *ret_len);

/* New JSON strings holding data as base64 / lowercase hex; NULL on ENOMEM. */
struct json_object *json_new_base64(const uint8_t *data, size_t len);
struct json_object *json_new_hex(const uint8_t *data, size_t len);

/*
 * Length (1-4) of the valid UTF-8 sequence at s (n bytes available), with its
 * code point in *ret_cp; 0 if s does not start with one (overlong forms,
 * surrogates and values above U+10FFFF are invalid). n must be > 0.
 */
size_t json_utf8_seq(const uint8_t *s, size_t n, uint32_t *ret_cp);

/* True if s[0..n) is entirely valid UTF-8 (NUL bytes count as valid). */
bool json_utf8_valid(const char *s, size_t n);

#endif
