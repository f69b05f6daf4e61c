/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/log: the daemons' log lines on stderr.
 *
 * One line per message, written with a single write(2) so that lines from
 * concurrent threads never interleave (lines are at most LOG_LINE_MAX bytes;
 * longer messages are cut and end in "..."):
 *
 *   text:  <level> <module>: <message>
 *   JSON:  {"time":"2024-05-01T12:00:00.123Z","level":"info","module":"http","msg":"..."}
 *
 * Messages often carry strings from the network, so the module and message are
 * escaped: in text mode control characters, DEL, C1 controls and bytes that
 * are not valid UTF-8 are written as \n, \t, \r or \xNN, and a backslash as
 * "\\", so a message can never start a new line or drive a terminal; in JSON
 * mode they are JSON-escaped the same way (invalid bytes as the text "\xNN").
 *
 * This is the only part of lib/ that prints; library functions return errors
 * (lib/util) and the daemons log them here once. errno is preserved, and "%m"
 * works in formats.
 *
 * Note: the level names clash with <syslog.h>'s LOG_INFO and LOG_DEBUG macros;
 * a file including this header must not include <syslog.h>.
 */
#ifndef KQ_LOG_H
#define KQ_LOG_H

#include <stdbool.h>

#include "util/util.h"

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

/* Longest line written, newline included (PIPE_BUF: atomic on a pipe too). */
#define LOG_LINE_MAX 4096

/*
 * Messages above min are dropped; json selects the JSON line format. May be
 * called again at any time (for instance after reading the config); the
 * default is LOG_INFO, text.
 */
void log_setup(enum log_level min, bool json);

/* Writes one line at level for module ("http", "registrar", ...). Thread-safe. */
void log_msg(enum log_level level, const char *module, const char *fmt, ...) _printf_(3, 4);

/* True if a message at level would be written (to skip costly formatting). */
bool log_enabled(enum log_level level);

#define log_error(module, ...) log_msg(LOG_ERROR, module, __VA_ARGS__)
#define log_warn(module, ...) log_msg(LOG_WARN, module, __VA_ARGS__)
#define log_info(module, ...) log_msg(LOG_INFO, module, __VA_ARGS__)
#define log_debug(module, ...) log_msg(LOG_DEBUG, module, __VA_ARGS__)

/*
 * Parses "error", "warn" (or "warning"), "info", "debug", any case.
 * -EINVAL with a message otherwise.
 */
int log_level_from_string(const char *s, enum log_level *ret);

/* "error", "warn", "info", "debug"; "?" for anything else. */
const char *log_level_to_string(enum log_level level);

#endif
