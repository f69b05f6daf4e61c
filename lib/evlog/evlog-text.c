/* SPDX-License-Identifier: Apache-2.0 */
/* lib/evlog: the arena, bounded text building, UTF-16/UTF-8 and GUIDs. */
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "evlog/evlog-priv.h"
#include "util/util.h"

/* ---- arena ---- */

#define ARENA_CHUNK (64u << 10)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
};

void *arena_alloc(struct arena *a, size_t n)
{
	const size_t align = alignof(max_align_t);
	struct arena_chunk *c = a->head;
	size_t need;
	void *p;

	if (n == 0)
		n = 1;
	if (n > SIZE_MAX / 2)
		return NULL;
	need = (n + align - 1) & ~(align - 1);
	if (!c || c->cap - c->used < need) {
		size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		/* a big one-off allocation goes behind the current chunk, so
		 * the current chunk's free space is not wasted */
		if (a->head && need > ARENA_CHUNK) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	p = c->data + c->used;
	c->used += need;
	memset(p, 0, n);
	return p;
}

void *arena_memdup(struct arena *a, const void *src, size_t n)
{
	void *p = arena_alloc(a, n);

	if (p && n)
		memcpy(p, src, n);
	return p;
}

void arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_chunk *c = a->head;

		a->head = c->next;
		free(c);
	}
}

/* ---- strbuf ---- */

void sb_add(struct strbuf *sb, const char *s, size_t n)
{
	if (sb->err)
		return;
	if (n > EVLOG_MAX_TEXT || sb->len + n > EVLOG_MAX_TEXT) {
		sb->err = -E2BIG;
		return;
	}
	if (sb->cap - sb->len < n + 1) {
		size_t cap = sb->cap ? sb->cap : 64;
		char *ns;

		while (cap - sb->len < n + 1)
			cap *= 2;
		ns = realloc(sb->s, cap);
		if (!ns) {
			sb->err = -ENOMEM;
			return;
		}
		sb->s = ns;
		sb->cap = cap;
	}
	if (n)
		memcpy(sb->s + sb->len, s, n);
	sb->len += n;
	sb->s[sb->len] = '\0';
}

void sb_puts(struct strbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	/* callers only format numbers and short fixed strings */
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		if (!sb->err)
			sb->err = -E2BIG;
		return;
	}
	sb_add(sb, tmp, (size_t)n);
}

void sb_hex(struct strbuf *sb, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[128];

	while (n > 0) {
		size_t k = n > sizeof(tmp) / 2 ? sizeof(tmp) / 2 : n;

		for (size_t i = 0; i < k; i++) {
			tmp[2 * i] = digits[p[i] >> 4];
			tmp[2 * i + 1] = digits[p[i] & 0xf];
		}
		sb_add(sb, tmp, 2 * k);
		p += k;
		n -= k;
	}
}

void sb_guid(struct strbuf *sb, const uint8_t guid[16])
{
	char s[EVLOG_GUID_STRLEN];

	evlog_guid_to_string(guid, s);
	sb_add(sb, s, EVLOG_GUID_STRLEN - 1);
}

static void sb_codepoint(struct strbuf *sb, uint32_t cp)
{
	char o[4];

	if (cp < 0x80) {
		o[0] = (char)cp;
		sb_add(sb, o, 1);
	} else if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		sb_add(sb, o, 2);
	} else if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		sb_add(sb, o, 3);
	} else {
		o[0] = (char)(0xf0 | (cp >> 18));
		o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[3] = (char)(0x80 | (cp & 0x3f));
		sb_add(sb, o, 4);
	}
}

#define REPLACEMENT 0xfffdu

void sb_utf16(struct strbuf *sb, const uint8_t *p, size_t n_units)
{
	for (size_t i = 0; i < n_units; i++) {
		uint32_t u = (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8;

		if (u == 0)
			break;
		if (u >= 0xd800 && u <= 0xdbff) {
			uint32_t lo = 0;

			if (i + 1 < n_units)
				lo = (uint32_t)p[2 * i + 2] | (uint32_t)p[2 * i + 3] << 8;
			if (lo >= 0xdc00 && lo <= 0xdfff) {
				sb_codepoint(sb, 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00));
				i++;
			} else {
				sb_codepoint(sb, REPLACEMENT);
			}
		} else if (u >= 0xdc00 && u <= 0xdfff) {
			sb_codepoint(sb, REPLACEMENT);
		} else {
			sb_codepoint(sb, u);
		}
	}
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
	uint32_t cp;
	size_t k;

	if (p[0] < 0x80)
		return p[0] ? 1 : 0;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		k = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		k = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		k = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* overlong, surrogate or out of range */
	if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k;
}

void sb_utf8(struct strbuf *sb, const uint8_t *p, size_t n)
{
	size_t i = 0, run = 0;

	while (i < n) {
		size_t k = utf8_seq(p + i, n - i);

		if (k) {
			i += k;
			run += k;
			continue;
		}
		sb_add(sb, (const char *)p + i - run, run);
		run = 0;
		sb_codepoint(sb, REPLACEMENT);
		i++;
	}
	sb_add(sb, (const char *)p + i - run, run);
}

void sb_reset(struct strbuf *sb)
{
	sb->len = 0;
	sb->err = 0;
	if (sb->s)
		sb->s[0] = '\0';
}

void sb_done(struct strbuf *sb)
{
	free(sb->s);
	*sb = (struct strbuf){ 0 };
}

/* ---- GUIDs ---- */

const uint8_t EVLOG_GUID_EFI_GLOBAL_VARIABLE[16] = {
	0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c
};
const uint8_t EVLOG_GUID_IMAGE_SECURITY_DATABASE[16] = {
	0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f
};
const uint8_t EVLOG_GUID_CERT_X509[16] = {
	0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72
};
const uint8_t EVLOG_GUID_CERT_SHA256[16] = {
	0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40, 0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28
};

void evlog_guid_to_string(const uint8_t g[16], char out[EVLOG_GUID_STRLEN])
{
	uint8_t b[16] = {
		g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6],
		g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15],
	};
	char hex[33];
	size_t o = 0;

	kq_hex_encode(b, 16, hex);
	for (size_t i = 0; i < 32; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20)
			out[o++] = '-';
		out[o++] = hex[i];
	}
	out[o] = '\0';
}

int evlog_guid_from_string(const char *s, uint8_t ret[16])
{
	char hex[33];
	uint8_t b[16];
	size_t n = 0, len;

	if (strlen(s) != EVLOG_GUID_STRLEN - 1)
		return kq_err(-EINVAL, "not a GUID: '%s'", s);
	for (size_t i = 0; s[i]; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return kq_err(-EINVAL, "not a GUID: '%s'", s);
			continue;
		}
		hex[n++] = s[i];
	}
	hex[n] = '\0';
	if (kq_hex_decode(hex, b, sizeof(b), &len) < 0 || len != 16)
		return kq_err(-EINVAL, "not a GUID: '%s'", s);
	ret[0] = b[3], ret[1] = b[2], ret[2] = b[1], ret[3] = b[0];
	ret[4] = b[5], ret[5] = b[4], ret[6] = b[7], ret[7] = b[6];
	memcpy(ret + 8, b + 8, 8);
	return 0;
}

static const struct {
	const char *guid;
	const char *name;
} known_guids[] = {
	{ "8be4df61-93ca-11d2-aa0d-00e098032b8c", "EFI_GLOBAL_VARIABLE" },
	{ "d719b2cb-3d3a-4596-a3bc-dad00e67656f", "EFI_IMAGE_SECURITY_DATABASE" },
	{ "a5c059a1-94e4-4aa7-87b5-ab155c2bf072", "EFI_CERT_X509" },
	{ "c1c41626-504c-4092-aca9-41f936934328", "EFI_CERT_SHA256" },
	{ "3c5766e8-269c-4e34-aa14-ed776e85b3b6", "EFI_CERT_RSA2048" },
	{ "826ca512-cf10-4ac9-b187-be01496631bd", "EFI_CERT_SHA1" },
	{ "0b6e5233-a65c-44c9-9407-d9ab83bfc8bd", "EFI_CERT_SHA224" },
	{ "ff3e5307-9fd0-48c9-85f1-8ad56c701e01", "EFI_CERT_SHA384" },
	{ "093e0fae-a6c4-4f50-9f1b-d41e2b89c19a", "EFI_CERT_SHA512" },
	{ "3bd2a492-96c0-4079-b420-fcf98ef103ed", "EFI_CERT_X509_SHA256" },
	{ "7076876e-80c2-4ee6-aad2-28b349a6865b", "EFI_CERT_X509_SHA384" },
	{ "446dbf63-2502-4cda-bcfa-2465d2b0fe9d", "EFI_CERT_X509_SHA512" },
	{ "4aafd29d-68df-49ee-8aa9-347d375665a7", "EFI_CERT_TYPE_PKCS7" },
	{ "605dab50-e046-4300-abb6-3dd810dd8b23", "SHIM_LOCK" },
	{ "eb9d2d31-2d88-11d3-9a16-0090273fc14d", "EFI_SMBIOS_TABLE" },
	{ "f2fd1544-9794-4a2c-992e-e5bbcf20e394", "EFI_SMBIOS3_TABLE" },
	{ "8868e871-e4f1-11d3-bc22-0080c73c8881", "EFI_ACPI_20_TABLE" },
	{ "eb9d2d30-2d88-11d3-9a16-0090273fc14d", "EFI_ACPI_TABLE" },
	{ "77fa9abd-0359-4d32-bd60-28f4e78f784b", "MICROSOFT_VENDOR" },
};

const char *evlog_guid_name(const uint8_t guid[16])
{
	char s[EVLOG_GUID_STRLEN];

	evlog_guid_to_string(guid, s);
	for (size_t i = 0; i < ARRAY_SIZE(known_guids); i++)
		if (strcmp(s, known_guids[i].guid) == 0)
			return known_guids[i].name;
	return NULL;
}
