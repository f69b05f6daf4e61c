/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

#include <stdio.h>

int cli_fail(int code, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0) {
		msg = NULL;
		fputs("kumquat: out of memory\n", stderr);
		return code;
	}
	/* one line whatever the message quotes (arguments, a server's words) */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	fprintf(stderr, "kumquat: %s\n", msg);
	return code;
}

int cli_fail_lib(int code, const char *what)
{
	return cli_fail(code, "%s: %s", what, kq_errmsg());
}

void cli_print_json(struct json_object *obj)
{
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
}

int cli_json_add(struct json_object *o, const char *k, struct json_object *v)
{
	if (!v || json_object_object_add(o, k, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

struct json_object *cli_json_hex(const uint8_t *buf, size_t len)
{
	_cleanup_free_ char *s = kq_hex_dup(buf, len);

	return s ? json_object_new_string(s) : NULL;
}

int cli_read(const char *path, uint8_t **ret, size_t *ret_len)
{
	int r = kq_read_file(path, KQ_CLI_MAX_FILE, ret, ret_len);

	if (r < 0)
		cli_fail(KQ_EXIT_USAGE, "cannot read %s", kq_errmsg());
	return r;
}
