/* SPDX-License-Identifier: Apache-2.0 */
/* lib/evlog internals shared by its source files (and visible to its tests). */
#ifndef KQ_EVLOG_PRIV_H
#define KQ_EVLOG_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evlog/evlog.h"

/*
 * Bump allocator for everything decoded from one log: freed all at once with
 * the log. Allocations are zeroed and aligned for any type.
 */
struct arena_chunk;
struct arena {
	struct arena_chunk *head;
};

void *arena_alloc(struct arena *a, size_t n);
void *arena_memdup(struct arena *a, const void *p, size_t n);
void arena_free(struct arena *a);

/* Growable text with a hard cap (EVLOG_MAX_TEXT). A failed append sticks. */
struct strbuf {
	char *s;
	size_t len, cap;
	int err; /* 0, -E2BIG or -ENOMEM: the first failure */
};

void sb_add(struct strbuf *sb, const char *s, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_hex(struct strbuf *sb, const uint8_t *p, size_t n);
void sb_guid(struct strbuf *sb, const uint8_t guid[16]);
/*
 * Appends UTF-16LE code units (n_units of them, stopping early at a NUL) as
 * UTF-8; unpaired surrogates become U+FFFD.
 */
void sb_utf16(struct strbuf *sb, const uint8_t *p, size_t n_units);
/* Appends bytes as UTF-8, invalid sequences (and NULs) replaced by U+FFFD. */
void sb_utf8(struct strbuf *sb, const uint8_t *p, size_t n);
void sb_reset(struct strbuf *sb);
void sb_done(struct strbuf *sb);

/* Device path decoding into a strbuf; file (optional) receives file-path nodes. */
int devpath_decode(const uint8_t *buf, size_t len, struct strbuf *text, struct strbuf *file);

/* Fills ev->dec from ev->type and ev->data. Only fails with -ENOMEM. */
int evlog_decode_event(struct arena *a, struct evlog_event *ev);

#endif
