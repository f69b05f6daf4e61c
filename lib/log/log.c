/* SPDX-License-Identifier: Apache-2.0 */
#include "log/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "json/json.h"

static _Atomic int min_level = LOG_INFO;
static _Atomic bool json_lines = false;

static const char *const level_names[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warn",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

/* Room kept at the end of a line for the "..." marker and the closing "\"}\n". */
#define TAIL 8

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	bool cut;
};

void log_setup(enum log_level min, bool json)
{
	atomic_store(&min_level, (int)min);
	atomic_store(&json_lines, json);
}

bool log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&min_level);
}

const char *log_level_to_string(enum log_level level)
{
	if ((unsigned)level >= ARRAY_SIZE(level_names))
		return "?";
	return level_names[level];
}

int log_level_from_string(const char *s, enum log_level *ret)
{
	if (s) {
		for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
			if (strcasecmp(s, level_names[i]) == 0) {
				*ret = (enum log_level)i;
				return 0;
			}
		if (strcasecmp(s, "warning") == 0) {
			*ret = LOG_WARN;
			return 0;
		}
	}
	return kq_err(-EINVAL, "unknown log level (error, warn, info or debug)");
}

/* Appends n raw bytes, or nothing (and marks the line cut) if they do not fit. */
static bool put(struct line *l, const char *s, size_t n)
{
	if (l->cut || n > sizeof(l->buf) - TAIL - l->len) {
		l->cut = true;
		return false;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return true;
}

static void puts_raw(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* Appends the tail, which always fits: TAIL bytes were kept free. */
static void put_tail(struct line *l, const char *s)
{
	size_t n = strlen(s);

	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

/*
 * Appends s escaped. Each character is appended whole or not at all, so a cut
 * never leaves half an escape or half a UTF-8 sequence.
 */
static void put_escaped(struct line *l, const char *str, bool json)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t n = strlen(str);
	char esc[16];

	for (size_t i = 0; i < n && !l->cut;) {
		uint8_t c = s[i];
		uint32_t cp;
		size_t k;

		if (c >= 0x20 && c < 0x7f && c != '\\' && !(json && c == '"')) {
			put(l, (const char *)&s[i], 1);
			i++;
			continue;
		}
		if (c == '\\') {
			put(l, "\\\\", 2);
			i++;
			continue;
		}
		if (c == '"') {
			put(l, "\\\"", 2);
			i++;
			continue;
		}
		if (c == '\n' || c == '\t' || c == '\r') {
			put(l, c == '\n' ? "\\n" : c == '\t' ? "\\t" : "\\r", 2);
			i++;
			continue;
		}
		k = c >= 0x80 ? json_utf8_seq(s + i, n - i, &cp) : 0;
		if (k > 0 && cp >= 0xa0) {
			/* printable non-ASCII: keep it */
			put(l, (const char *)&s[i], k);
			i += k;
			continue;
		}
		if (k > 0) {
			/* a C1 control character (U+0080..U+009F) */
			snprintf(esc, sizeof(esc), json ? "\\u%04x" : "\\x%02x", (unsigned)cp);
			put(l, esc, strlen(esc));
			i += k;
			continue;
		}
		/* a control character, DEL, or a byte that is not valid UTF-8 */
		if (json && c < 0x80)
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		else
			snprintf(esc, sizeof(esc), json ? "\\\\x%02x" : "\\x%02x", c);
		put(l, esc, strlen(esc));
		i++;
	}
}

static void write_line(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
	int saved_errno = errno;
	char msg[LOG_LINE_MAX];
	struct line l = { .len = 0, .cut = false };
	bool json = atomic_load(&json_lines);
	va_list ap;
	int n;

	if (!log_enabled(level))
		return;
	if (!module)
		module = "-";

	errno = saved_errno; /* for %m */
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		snprintf(msg, sizeof(msg), "(unformattable message)");

	if (json) {
		struct timespec ts;
		struct tm tm;
		char tbuf[64];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = (int)strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(tbuf + n, sizeof(tbuf) - (size_t)n, ".%03ldZ", ts.tv_nsec / 1000000);

		puts_raw(&l, "{\"time\":\"");
		puts_raw(&l, tbuf);
		puts_raw(&l, "\",\"level\":\"");
		puts_raw(&l, log_level_to_string(level));
		puts_raw(&l, "\",\"module\":\"");
		put_escaped(&l, module, true);
		puts_raw(&l, "\",\"msg\":\"");
		put_escaped(&l, msg, true);
		put_tail(&l, l.cut ? "...\"}\n" : "\"}\n");
	} else {
		puts_raw(&l, log_level_to_string(level));
		puts_raw(&l, " ");
		put_escaped(&l, module, false);
		puts_raw(&l, ": ");
		put_escaped(&l, msg, false);
		put_tail(&l, l.cut ? "...\n" : "\n");
	}
	write_line(l.buf, l.len);
	errno = saved_errno;
}
