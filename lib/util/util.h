/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/util: small helpers every module uses — scope cleanup, the library's
 * error convention, bounds-checked cursor reads, hex and bounded file reads.
 *
 * Error convention for all of lib/: functions return 0 (or a non-negative
 * count) on success and a negative errno-style code on failure, having set a
 * thread-local message with kq_err() that the caller can show with kq_errmsg().
 * Library code never prints.
 */
#ifndef KQ_UTIL_H
#define KQ_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(kq_freep)
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Hand ownership of a pointer on: returns it and clears the variable. */
#define TAKE_PTR(p) ({ __typeof__(p) _p_ = (p); (p) = NULL; _p_; })

static inline void kq_freep(void *p) { free(*(void **)p); }

/* Wipes and frees a heap buffer holding a secret. NULL is fine. */
void kq_free_secret(void *p, size_t len);

/* ---- errors ---- */

/* Sets the thread-local error message and returns code (a negative errno). */
int kq_err(int code, const char *fmt, ...) _printf_(2, 3);
/* Prefixes the current message with context ("entry 3: ...") and returns code. */
int kq_err_ctx(int code, const char *fmt, ...) _printf_(2, 3);
/* The last message set in this thread, "" if none. Valid until the next kq_err. */
const char *kq_errmsg(void);
void kq_err_clear(void);

/* ---- bounds-checked reads over an untrusted buffer ---- */

/*
 * A cursor never reads past buf+len; every read either succeeds and advances
 * off, or fails with -EBADMSG (message set) and leaves off unchanged.
 */
struct kq_cur {
	const uint8_t *buf;
	size_t len;
	size_t off;
};

static inline struct kq_cur kq_cur_init(const void *buf, size_t len)
{
	return (struct kq_cur){ .buf = buf, .len = len, .off = 0 };
}
static inline size_t kq_cur_left(const struct kq_cur *c) { return c->len - c->off; }

int kq_cur_u8(struct kq_cur *c, uint8_t *ret);
int kq_cur_u16le(struct kq_cur *c, uint16_t *ret);
int kq_cur_u16be(struct kq_cur *c, uint16_t *ret);
int kq_cur_u32le(struct kq_cur *c, uint32_t *ret);
int kq_cur_u32be(struct kq_cur *c, uint32_t *ret);
int kq_cur_u64le(struct kq_cur *c, uint64_t *ret);
int kq_cur_u64be(struct kq_cur *c, uint64_t *ret);
/* Points *ret into the buffer (no copy) at the next n bytes. */
int kq_cur_bytes(struct kq_cur *c, size_t n, const uint8_t **ret);
int kq_cur_copy(struct kq_cur *c, void *dst, size_t n);
int kq_cur_skip(struct kq_cur *c, size_t n);

/* ---- growing buffers ---- */

/*
 * Makes room in *buf (capacity *cap) for need bytes, doubling from 4096 and
 * never past max (the caller has checked need <= max). -ENOMEM on failure,
 * *buf and *cap unchanged then.
 */
int kq_buf_reserve(uint8_t **buf, size_t *cap, size_t need, size_t max);

/* ---- hex ---- */

/* The value of one hex digit (either case), -1 if c is not one. */
int kq_hex_digit(int c);
/* Writes 2*len lowercase hex digits and a NUL to out (size 2*len+1). */
void kq_hex_encode(const uint8_t *in, size_t len, char *out);
/* Returns a malloc'd hex string (caller frees) or NULL on ENOMEM. */
char *kq_hex_dup(const uint8_t *in, size_t len);
/*
 * Decodes hex (upper or lower case, an optional "0x" prefix) into out, at most
 * outmax bytes. -EINVAL on odd length or a non-hex digit, -E2BIG if too long.
 */
int kq_hex_decode(const char *hex, uint8_t *out, size_t outmax, size_t *ret_len);

/* ---- files ---- */

/*
 * Reads a whole file ("-" is stdin) into a malloc'd buffer with a NUL after the
 * data (not counted in *ret_len). Fails with -EFBIG above max bytes. Caller frees.
 */
int kq_read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len);
/* Writes len bytes to path (created 0600 if new, truncated), atomically via rename. */
int kq_write_file(const char *path, const void *data, size_t len);
/*
 * Makes the directories above a file's path that are missing: the file's own
 * directory 0700, those above it 0755 (so that other services can reach their
 * own directories beside it). Existing ones are left as they are.
 */
int kq_mkdir_parents(const char *path);

/* Sends a state line ("READY=1") to systemd when run as a notify service; no-op otherwise. */
void kq_sd_notify(const char *state);

/*
 * True if s is a UUID (8-4-4-4-12 hex digits, either case); ret then holds
 * its lowercase spelling, the one form ids are stored and compared in. ret
 * may be s itself.
 */
bool kq_uuid_normalize(const char *s, char ret[37]);

/* Parses a decimal unsigned integer of the whole string, no sign, <= max. */
int kq_parse_uint(const char *s, uint64_t max, uint64_t *ret);

#endif
