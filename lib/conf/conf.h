/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/conf: the daemons' INI configuration files (read with libinih), loaded
 * into a struct from a table of options, in the style of lib/json.
 *
 *   [server]
 *   port = 8891          ; inline comments start with ';', whole-line with ';' or '#'
 *   cert = tls/server.pem
 *
 * Strict: an unknown section or key, a key given twice, a line inih cannot
 * parse, or a bad value is an error naming the file and line. Indented lines
 * are ordinary lines (inih's multi-line continuation is not used). Limits:
 * CONF_MAX_SIZE bytes per file, CONF_MAX_LINE bytes per line.
 *
 * Errors follow lib/util: negative errno-style codes with kq_errmsg() set.
 */
#ifndef KQ_CONF_H
#define KQ_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define CONF_MAX_SIZE (1024u * 1024)
#define CONF_MAX_LINE 196 /* inih's line buffer is 200 bytes with CR LF NUL */

enum conf_type {
	CONF_STRING, /* char *: any text (max: longest length, 0 = no limit) */
	CONF_PATH,   /* char *: a non-empty path; relative paths are taken from the
	              * config file's directory, so they do not depend on the cwd */
	CONF_UINT,   /* uint64_t: decimal, <= max (0 = no limit) */
	CONF_BOOL,   /* bool: true/false, yes/no, on/off, 1/0 (any case) */
	CONF_PORT,   /* uint16_t: 0-65535 (0: the daemon picks a free port) */
};

/*
 * One option; a table ends with an entry whose key is NULL. section NULL or ""
 * is the part of the file before any [section] header. Names are
 * case-sensitive.
 */
struct conf_option {
	const char *section;
	const char *key;
	enum conf_type type;
	size_t offset; /* offsetof() the member in the target struct */
	uint64_t max;
};

/*
 * Loads path into target. Defaults are whatever target holds before the call;
 * string members may point to string literals then.
 *
 * On success every non-NULL CONF_STRING / CONF_PATH member is malloc'd (given
 * values, and copies of defaults): free them with conf_free().
 * On failure target is as it was before the call. Errors: -ENOENT (or another
 * errno) if the file cannot be read, "path: No such file or directory";
 * -EINVAL for an unknown section or key, a repeated key, a syntax error or a
 * bad value, "path:line: ..."; -EFBIG above CONF_MAX_SIZE; -ENOMEM.
 */
int conf_load(const char *path, const struct conf_option *opts, void *target);

/* Frees the CONF_STRING / CONF_PATH members and sets them to NULL. */
void conf_free(const struct conf_option *opts, void *target);

#endif
