/* SPDX-License-Identifier: Apache-2.0 */
#include "json/json.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/*
 * json-c is lenient where the network must not be: it accepts 'single quoted'
 * keys, raw control characters in strings, overlong UTF-8 and lone surrogates,
 * "1.", and it clamps out-of-range integers and keeps the last of duplicate
 * keys. So a body is first checked by the strict validator below, which also
 * counts the members of every object; json-c then builds the tree, and an
 * object with fewer members than counted had a duplicate key.
 */

/* ---- UTF-8 ---- */

size_t json_utf8_seq(const uint8_t *s, size_t n, uint32_t *ret_cp)
{
	uint8_t c = s[0];
	uint32_t cp;
	size_t len;

	if (c < 0x80) {
		*ret_cp = c;
		return 1;
	}
	if (c < 0xc2) /* a continuation byte, or an overlong 2-byte form */
		return 0;
	if (c < 0xe0) {
		len = 2;
		cp = c & 0x1f;
	} else if (c < 0xf0) {
		len = 3;
		cp = c & 0x0f;
	} else if (c < 0xf5) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		return 0;
	if (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
		return 0;
	*ret_cp = cp;
	return len;
}

bool json_utf8_valid(const char *str, size_t n)
{
	const uint8_t *s = (const uint8_t *)str;
	uint32_t cp;

	for (size_t i = 0; i < n;) {
		size_t k;

		if (s[i] < 0x80) {
			i++;
			continue;
		}
		k = json_utf8_seq(s + i, n - i, &cp);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* ---- strict validation ---- */

struct objinfo {
	size_t off;   /* of the '{' */
	size_t pairs; /* members as written */
};

struct jp {
	const uint8_t *buf;
	size_t len, off;
	size_t max_depth;
	size_t containers, max_containers;
	struct objinfo *objs;
	size_t nobjs, capobjs;
};

static int jp_fail(const struct jp *p, const char *what)
{
	return kq_err(-EBADMSG, "JSON: %s at offset %zu", what, p->off);
}

static void jp_ws(struct jp *p)
{
	while (p->off < p->len) {
		uint8_t c = p->buf[p->off];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->off++;
	}
}

static int jp_hex4(struct jp *p, uint32_t *ret)
{
	uint32_t v = 0;

	if (p->len - p->off < 4)
		return jp_fail(p, "truncated \\u escape");
	for (size_t i = 0; i < 4; i++) {
		uint8_t c = p->buf[p->off + i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return jp_fail(p, "bad \\u escape");
	}
	p->off += 4;
	*ret = v;
	return 0;
}

/* At the opening quote. */
static int jp_string(struct jp *p)
{
	p->off++;
	for (;;) {
		uint8_t c;
		uint32_t cp;
		size_t k;
		int r;

		if (p->off >= p->len)
			return jp_fail(p, "unterminated string");
		c = p->buf[p->off];
		if (c == '"') {
			p->off++;
			return 0;
		}
		if (c < 0x20)
			return jp_fail(p, "control character in string");
		if (c >= 0x80) {
			k = json_utf8_seq(p->buf + p->off, p->len - p->off, &cp);
			if (k == 0)
				return jp_fail(p, "invalid UTF-8");
			p->off += k;
			continue;
		}
		if (c != '\\') {
			p->off++;
			continue;
		}
		if (p->len - p->off < 2)
			return jp_fail(p, "unterminated string");
		c = p->buf[p->off + 1];
		if (c != '\0' && strchr("\"\\/bfnrt", c)) {
			p->off += 2;
			continue;
		}
		if (c != 'u')
			return jp_fail(p, "bad escape");
		p->off += 2;
		r = jp_hex4(p, &cp);
		if (r < 0)
			return r;
		if (cp == 0)
			return jp_fail(p, "\\u0000 is not accepted");
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return jp_fail(p, "unpaired low surrogate");
		if (cp >= 0xd800 && cp <= 0xdbff) {
			uint32_t lo;

			if (p->len - p->off < 2 || p->buf[p->off] != '\\' || p->buf[p->off + 1] != 'u')
				return jp_fail(p, "unpaired high surrogate");
			p->off += 2;
			r = jp_hex4(p, &lo);
			if (r < 0)
				return r;
			if (lo < 0xdc00 || lo > 0xdfff)
				return jp_fail(p, "unpaired high surrogate");
		}
	}
}

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static int jp_number(struct jp *p)
{
	size_t start = p->off;
	bool neg = false, integer = true;
	uint64_t v = 0;
	bool overflow = false;

	if (p->buf[p->off] == '-') {
		neg = true;
		p->off++;
	}
	if (p->off >= p->len || !is_digit(p->buf[p->off]))
		return jp_fail(p, "bad number");
	if (p->buf[p->off] == '0') {
		p->off++;
		if (p->off < p->len && is_digit(p->buf[p->off]))
			return jp_fail(p, "leading zero in number");
	} else {
		while (p->off < p->len && is_digit(p->buf[p->off])) {
			unsigned d = p->buf[p->off] - '0';

			if (v > (UINT64_MAX - d) / 10)
				overflow = true;
			else
				v = v * 10 + d;
			p->off++;
		}
	}
	if (p->off < p->len && p->buf[p->off] == '.') {
		integer = false;
		p->off++;
		if (p->off >= p->len || !is_digit(p->buf[p->off]))
			return jp_fail(p, "bad fraction");
		while (p->off < p->len && is_digit(p->buf[p->off]))
			p->off++;
	}
	if (p->off < p->len && (p->buf[p->off] == 'e' || p->buf[p->off] == 'E')) {
		integer = false;
		p->off++;
		if (p->off < p->len && (p->buf[p->off] == '+' || p->buf[p->off] == '-'))
			p->off++;
		if (p->off >= p->len || !is_digit(p->buf[p->off]))
			return jp_fail(p, "bad exponent");
		while (p->off < p->len && is_digit(p->buf[p->off]))
			p->off++;
	}
	if (integer && (overflow || (neg && v > (uint64_t)INT64_MAX + 1))) {
		p->off = start;
		return jp_fail(p, "integer out of range");
	}
	return 0;
}

static int jp_literal(struct jp *p, const char *lit)
{
	size_t n = strlen(lit);

	if (p->len - p->off < n || memcmp(p->buf + p->off, lit, n) != 0)
		return jp_fail(p, "unexpected character");
	p->off += n;
	return 0;
}

static int jp_container(struct jp *p, size_t *ret_obj)
{
	if (++p->containers > p->max_containers)
		return jp_fail(p, "too many objects and arrays");
	if (!ret_obj)
		return 0;
	if (p->nobjs == p->capobjs) {
		size_t ncap = p->capobjs ? p->capobjs * 2 : 16;
		struct objinfo *n = reallocarray(p->objs, ncap, sizeof(*n));

		if (!n)
			return kq_err(-ENOMEM, "out of memory");
		p->objs = n;
		p->capobjs = ncap;
	}
	p->objs[p->nobjs] = (struct objinfo){ .off = p->off, .pairs = 0 };
	*ret_obj = p->nobjs++;
	return 0;
}

/*
 * Recursion is bounded by max_depth (at most JSON_MAX_DEPTH frames of a few
 * dozen bytes each).
 */
static int jp_value(struct jp *p, size_t depth)
{
	size_t obj = 0;
	int r;

	jp_ws(p);
	if (p->off >= p->len)
		return jp_fail(p, "unexpected end of input");

	switch (p->buf[p->off]) {
	case '{':
		if (depth >= p->max_depth)
			return jp_fail(p, "nesting too deep");
		r = jp_container(p, &obj);
		if (r < 0)
			return r;
		p->off++;
		jp_ws(p);
		if (p->off < p->len && p->buf[p->off] == '}') {
			p->off++;
			return 0;
		}
		for (;;) {
			jp_ws(p);
			if (p->off >= p->len || p->buf[p->off] != '"')
				return jp_fail(p, "expected a key");
			r = jp_string(p);
			if (r < 0)
				return r;
			jp_ws(p);
			if (p->off >= p->len || p->buf[p->off] != ':')
				return jp_fail(p, "expected ':'");
			p->off++;
			p->objs[obj].pairs++;
			r = jp_value(p, depth + 1);
			if (r < 0)
				return r;
			jp_ws(p);
			if (p->off < p->len && p->buf[p->off] == ',') {
				p->off++;
				continue;
			}
			if (p->off < p->len && p->buf[p->off] == '}') {
				p->off++;
				return 0;
			}
			return jp_fail(p, "expected ',' or '}'");
		}
	case '[':
		if (depth >= p->max_depth)
			return jp_fail(p, "nesting too deep");
		r = jp_container(p, NULL);
		if (r < 0)
			return r;
		p->off++;
		jp_ws(p);
		if (p->off < p->len && p->buf[p->off] == ']') {
			p->off++;
			return 0;
		}
		for (;;) {
			r = jp_value(p, depth + 1);
			if (r < 0)
				return r;
			jp_ws(p);
			if (p->off < p->len && p->buf[p->off] == ',') {
				p->off++;
				continue;
			}
			if (p->off < p->len && p->buf[p->off] == ']') {
				p->off++;
				return 0;
			}
			return jp_fail(p, "expected ',' or ']'");
		}
	case '"':
		return jp_string(p);
	case 't':
		return jp_literal(p, "true");
	case 'f':
		return jp_literal(p, "false");
	case 'n':
		return jp_literal(p, "null");
	default:
		if (p->buf[p->off] == '-' || is_digit(p->buf[p->off]))
			return jp_number(p);
		return jp_fail(p, "unexpected character");
	}
}

/* Walks the tree in document order, comparing member counts with the text's. */
static int check_members(struct json_object *o, const struct jp *p, size_t *idx)
{
	switch (json_object_get_type(o)) {
	case json_type_object: {
		size_t i = (*idx)++;

		if (i >= p->nobjs)
			return kq_err(-EBADMSG, "JSON: internal mismatch");
		if ((size_t)json_object_object_length(o) != p->objs[i].pairs)
			return kq_err(-EBADMSG, "JSON: duplicate key in the object at offset %zu",
				      p->objs[i].off);
		json_object_object_foreach(o, key, val) {
			int r;

			(void)key;
			r = check_members(val, p, idx);
			if (r < 0)
				return r;
		}
		return 0;
	}
	case json_type_array: {
		size_t n = json_object_array_length(o);

		for (size_t i = 0; i < n; i++) {
			int r = check_members(json_object_array_get_idx(o, i), p, idx);

			if (r < 0)
				return r;
		}
		return 0;
	}
	default:
		return 0;
	}
}

int json_parse_body(const uint8_t *buf, size_t len, size_t max_len, size_t max_depth,
		    struct json_object **ret)
{
	return json_parse_body_containers(buf, len, max_len, max_depth, JSON_MAX_CONTAINERS, ret);
}

int json_parse_body_containers(const uint8_t *buf, size_t len, size_t max_len, size_t max_depth,
			       size_t max_containers, struct json_object **ret)
{
	struct jp p = { .buf = buf, .len = len, .max_containers = max_containers };
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL;
	enum json_tokener_error e;
	size_t idx = 0;
	int r;

	if (len > max_len)
		return kq_err(-E2BIG, "JSON body of %zu bytes exceeds the limit of %zu", len, max_len);
	if (len > INT_MAX - 1)
		return kq_err(-E2BIG, "JSON body of %zu bytes is too large", len);
	if (len == 0 || !buf)
		return kq_err(-EBADMSG, "JSON: empty body");
	p.max_depth = max_depth < JSON_MAX_DEPTH ? max_depth : JSON_MAX_DEPTH;

	r = jp_value(&p, 0);
	if (r < 0)
		goto out;
	jp_ws(&p);
	if (p.off != p.len) {
		r = jp_fail(&p, "trailing data");
		goto out;
	}

	/* json-c's depth counts one more level than ours; ours has been enforced */
	tok = json_tokener_new_ex(JSON_MAX_DEPTH + 2);
	if (!tok) {
		r = kq_err(-ENOMEM, "out of memory");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, (const char *)buf, (int)len);
	e = json_tokener_get_error(tok);
	if (e == json_tokener_continue) {
		/* a bare number or literal: json-c waits for a delimiter */
		o = json_tokener_parse_ex(tok, " ", 1);
		e = json_tokener_get_error(tok);
	}
	if (e != json_tokener_success) {
		json_object_put(o);
		o = NULL;
		r = kq_err(-EBADMSG, "JSON: %s", json_tokener_error_desc(e));
		goto out;
	}
	if (!o) {
		r = kq_err(-EBADMSG, "JSON: the body is null");
		goto out;
	}
	r = check_members(o, &p, &idx);
	if (r < 0)
		goto out;
	*ret = TAKE_PTR(o);
out:
	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	free(p.objs);
	return r;
}

/* ---- base64 and hex ---- */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int kq_base64_encode(const uint8_t *data, size_t len, char **ret)
{
	size_t olen, j = 0;
	char *out;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return kq_err(-E2BIG, "base64: input too large");
	olen = (len + 2) / 3 * 4;
	out = malloc(olen + 1);
	if (!out)
		return kq_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (uint32_t)data[i + 1] << 8;
		if (left > 2)
			v |= data[i + 2];
		out[j++] = b64chars[v >> 18 & 0x3f];
		out[j++] = b64chars[v >> 12 & 0x3f];
		out[j++] = left > 1 ? b64chars[v >> 6 & 0x3f] : '=';
		out[j++] = left > 2 ? b64chars[v & 0x3f] : '=';
	}
	out[j] = '\0';
	*ret = out;
	return 0;
}

/*
 * One more than the value of each byte as a base64 digit, 0 for bytes that
 * are not one: after subtracting 1 (as uint32_t) an invalid byte has bit 7
 * set, a digit never does.
 */
static const uint8_t b64val_table[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
	['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
	['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
	['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
	['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
	['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
	['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
	['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

/* The value of base64 digit c (0-63), or a number with bit 7 set if c is not one. */
static inline uint32_t b64v(uint8_t c)
{
	return (uint32_t)b64val_table[c] - 1;
}

static int b64_bad_char(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b64v(s[i]) & 0x80)
			return kq_err(-EINVAL, "base64: invalid character at offset %zu", i);
	return kq_err(-EINVAL, "base64: invalid character");
}

int kq_base64_decode(const char *str, size_t max, uint8_t **ret, size_t *ret_len)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t n = strlen(str), pad = 0, olen, full, j = 0;
	uint8_t *out, tail[4] = { 'A', 'A', 'A', 'A' };
	uint32_t bad = 0;

	if (n % 4)
		return kq_err(-EINVAL, "base64: length %zu is not a multiple of 4", n);
	if (n >= 1 && s[n - 1] == '=')
		pad = (n >= 2 && s[n - 2] == '=') ? 2 : 1;
	olen = n / 4 * 3 - pad;
	if (olen > max)
		return kq_err(-E2BIG, "base64: %zu bytes exceed the limit of %zu", olen, max);
	out = malloc(olen ? olen : 1);
	if (!out)
		return kq_err(-ENOMEM, "out of memory");

	/* every quad but a padded last one; invalid digits are collected in bad (bit 7) */
	full = pad ? n - 4 : n;
	for (size_t i = 0; i < full; i += 4) {
		uint32_t a = b64v(s[i]), b = b64v(s[i + 1]), c = b64v(s[i + 2]), d = b64v(s[i + 3]);
		uint32_t v = a << 18 | b << 12 | c << 6 | d;

		bad |= a | b | c | d;
		out[j++] = (uint8_t)(v >> 16);
		out[j++] = (uint8_t)(v >> 8);
		out[j++] = (uint8_t)v;
	}
	if (pad) {
		uint32_t v;

		memcpy(tail, s + n - 4, 4 - pad);
		bad |= b64v(tail[0]) | b64v(tail[1]) | b64v(tail[2]);
		v = (b64v(tail[0]) & 0x3f) << 18 | (b64v(tail[1]) & 0x3f) << 12 | (b64v(tail[2]) & 0x3f) << 6 |
		    (b64v(tail[3]) & 0x3f);
		/* the bits the padding leaves unused must be zero */
		if (!(bad & 0x80) && ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff)))) {
			free(out);
			return kq_err(-EINVAL, "base64: non-canonical padding");
		}
		out[j++] = (uint8_t)(v >> 16);
		if (pad == 1)
			out[j++] = (uint8_t)(v >> 8);
	}
	if (bad & 0x80) {
		free(out);
		return b64_bad_char(s, n - pad);
	}
	*ret = out;
	*ret_len = olen;
	return 0;
}

/* Strict hex: an even number of hex digits, nothing else. */
static int hex_decode(const char *str, size_t n, size_t max, uint8_t **ret, size_t *ret_len)
{
	const uint8_t *s = (const uint8_t *)str;
	uint8_t *out;

	if (n % 2)
		return kq_err(-EINVAL, "hex: odd length %zu", n);
	if (n / 2 > max)
		return kq_err(-E2BIG, "hex: %zu bytes exceed the limit of %zu", n / 2, max);
	for (size_t i = 0; i < n; i++)
		if (kq_hex_digit(s[i]) < 0)
			return kq_err(-EINVAL, "hex: invalid character at offset %zu", i);
	out = malloc(n ? n / 2 : 1);
	if (!out)
		return kq_err(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n / 2; i++)
		out[i] = (uint8_t)(kq_hex_digit(s[2 * i]) << 4 | kq_hex_digit(s[2 * i + 1]));
	*ret = out;
	*ret_len = n / 2;
	return 0;
}

struct json_object *json_new_base64(const uint8_t *data, size_t len)
{
	_cleanup_free_ char *s = NULL;

	if (kq_base64_encode(data, len, &s) < 0)
		return NULL;
	return json_object_new_string(s);
}

struct json_object *json_new_hex(const uint8_t *data, size_t len)
{
	_cleanup_free_ char *s = kq_hex_dup(data, len);

	if (!s)
		return NULL;
	return json_object_new_string(s);
}

/* ---- dispatch ---- */

#define MEMBER(target, f, type) ((type *)(void *)((uint8_t *)(target) + (f)->offset))

static void field_free(const struct json_field *f, void *target)
{
	switch (f->type) {
	case JSON_STRING: {
		char **p = MEMBER(target, f, char *);

		free(*p);
		*p = NULL;
		break;
	}
	case JSON_BASE64:
	case JSON_HEX: {
		struct json_bytes *b = MEMBER(target, f, struct json_bytes);

		free(b->data);
		*b = (struct json_bytes){ NULL, 0 };
		break;
	}
	case JSON_OBJECT:
	case JSON_ARRAY: {
		struct json_object **p = MEMBER(target, f, struct json_object *);

		json_object_put(*p);
		*p = NULL;
		break;
	}
	default:
		break;
	}
}

void json_dispatch_free(const struct json_field *fields, void *target)
{
	for (const struct json_field *f = fields; f->name; f++)
		field_free(f, target);
}

/* A short printable rendering of an untrusted key for error messages. */
static void safe_name(const char *s, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; s[i] && i + 4 < outlen; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

static const char *type_desc(enum json_field_type t)
{
	switch (t) {
	case JSON_STRING:
		return "a string";
	case JSON_BASE64:
		return "a base64 string";
	case JSON_HEX:
		return "a hex string";
	case JSON_INT64:
		return "an integer";
	case JSON_UINT64:
		return "a non-negative integer";
	case JSON_BOOL:
		return "true or false";
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	}
	return "?";
}

static int field_set(const struct json_field *f, struct json_object *v, void *target)
{
	size_t max = f->max_len ? f->max_len : SIZE_MAX;
	enum json_type t = json_object_get_type(v);
	const char *s;
	size_t len;
	int r;

	switch (f->type) {
	case JSON_STRING:
	case JSON_BASE64:
	case JSON_HEX:
		if (t != json_type_string)
			break;
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		if (memchr(s, '\0', len))
			return kq_err(-EINVAL, "field '%s': contains a NUL character", f->name);
		if (f->type == JSON_STRING) {
			char *copy;

			if (len > max)
				return kq_err(-EINVAL, "field '%s': longer than %zu bytes", f->name, max);
			if (!json_utf8_valid(s, len))
				return kq_err(-EINVAL, "field '%s': not valid UTF-8", f->name);
			copy = strndup(s, len);
			if (!copy)
				return kq_err(-ENOMEM, "out of memory");
			*MEMBER(target, f, char *) = copy;
			return 0;
		} else {
			struct json_bytes *b = MEMBER(target, f, struct json_bytes);
			uint8_t *data = NULL;

			if (f->type == JSON_BASE64)
				r = kq_base64_decode(s, max, &data, &len);
			else
				r = hex_decode(s, len, max, &data, &len);
			if (r == -E2BIG)
				return kq_err(-EINVAL, "field '%s': longer than %zu bytes", f->name, max);
			if (r == -ENOMEM)
				return r;
			if (r < 0) {
				char why[128];

				snprintf(why, sizeof(why), "%s", kq_errmsg());
				return kq_err(-EINVAL, "field '%s': not valid %s (%s)", f->name,
					      f->type == JSON_BASE64 ? "base64" : "hex", why);
			}
			*b = (struct json_bytes){ data, len };
			return 0;
		}
	case JSON_INT64: {
		int64_t i;

		if (t != json_type_int)
			break;
		i = json_object_get_int64(v);
		if (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
			return kq_err(-EINVAL, "field '%s': out of range", f->name);
		*MEMBER(target, f, int64_t) = i;
		return 0;
	}
	case JSON_UINT64:
		if (t != json_type_int)
			break;
		if (json_object_get_int64(v) < 0)
			return kq_err(-EINVAL, "field '%s': must not be negative", f->name);
		*MEMBER(target, f, uint64_t) = json_object_get_uint64(v);
		return 0;
	case JSON_BOOL:
		if (t != json_type_boolean)
			break;
		*MEMBER(target, f, bool) = json_object_get_boolean(v);
		return 0;
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (t != (f->type == JSON_OBJECT ? json_type_object : json_type_array))
			break;
		len = f->type == JSON_OBJECT ? (size_t)json_object_object_length(v)
					     : json_object_array_length(v);
		if (len > max)
			return kq_err(-EINVAL, "field '%s': more than %zu %s", f->name, max,
				      f->type == JSON_OBJECT ? "members" : "elements");
		*MEMBER(target, f, struct json_object *) = json_object_get(v);
		return 0;
	}
	return kq_err(-EINVAL, "field '%s': must be %s", f->name, type_desc(f->type));
}

static struct json_object *field_value(struct json_object *obj, const struct json_field *f)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, f->name, &v))
		return NULL;
	return v; /* NULL for a JSON null too */
}

int json_dispatch(struct json_object *obj, const struct json_field *fields, void *target,
		  bool allow_unknown)
{
	const struct json_field *f;
	int r = 0;

	if (!json_object_is_type(obj, json_type_object))
		return kq_err(-EINVAL, "expected a JSON object");

	if (!allow_unknown) {
		json_object_object_foreach(obj, key, val) {
			(void)val;
			for (f = fields; f->name; f++)
				if (strcmp(f->name, key) == 0)
					break;
			if (!f->name) {
				char name[48];

				safe_name(key, name, sizeof(name));
				return kq_err(-EINVAL, "unknown field '%s'", name);
			}
		}
	}

	for (f = fields; f->name; f++) {
		struct json_object *v = field_value(obj, f);

		if (!v) {
			if (f->required) {
				r = kq_err(-EINVAL, "field '%s': missing", f->name);
				break;
			}
			continue;
		}
		r = field_set(f, v, target);
		if (r < 0)
			break;
	}
	if (r < 0) {
		/* free what this call set: the fields before f that were present */
		for (const struct json_field *g = fields; g != f; g++)
			if (field_value(obj, g))
				field_free(g, target);
	}
	return r;
}
