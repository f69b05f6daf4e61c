/* SPDX-License-Identifier: Apache-2.0 */
#include "conf/conf.h"

#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

union saved {
	char *s;
	uint64_t u;
	bool b;
	uint16_t port;
};

struct ctx {
	const char *path;
	char *dir; /* absolute directory of the file, for relative paths */
	const struct conf_option *opts;
	void *target;
	size_t n;
	bool *seen;
	union saved *saved;

	/* the reader's position in the file */
	const char *buf;
	size_t len, off;
	unsigned line;

	/* the first error we found, with its line (0: none) */
	unsigned err_line;
	int err;
	char msg[256];
};

#define MEMBER(target, o, type) ((type *)(void *)((uint8_t *)(target) + (o)->offset))

static bool is_string(const struct conf_option *o)
{
	return o->type == CONF_STRING || o->type == CONF_PATH;
}

static const char *sect(const struct conf_option *o)
{
	return o->section ? o->section : "";
}

_printf_(3, 4) static void record(struct ctx *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c->err_line)
		return;
	c->err_line = c->line;
	c->err = err;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
}

static bool known_section(const struct ctx *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(sect(&c->opts[i]), name) == 0)
			return true;
	return false;
}

/*
 * inih's reader: hands over one line at a time (so the handler knows the line
 * number), without leading whitespace (so no line is a continuation of the
 * previous one), and stops at a line that is too long or holds a NUL rather
 * than letting inih split or cut it.
 */
static char *reader(char *str, int num, void *stream)
{
	struct ctx *c = stream;
	const char *p, *nl;
	size_t n;

	if (c->off >= c->len || c->err_line)
		return NULL;
	p = c->buf + c->off;
	nl = memchr(p, '\n', c->len - c->off);
	n = nl ? (size_t)(nl - p) + 1 : c->len - c->off;
	c->off += n;
	c->line++;

	if (memchr(p, '\0', n)) {
		record(c, -EINVAL, "NUL byte");
		return NULL;
	}
	if (n - (nl ? 1 : 0) > CONF_MAX_LINE || n + 1 > (size_t)num) {
		record(c, -EINVAL, "line longer than %d bytes", CONF_MAX_LINE);
		return NULL;
	}
	while (n > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	if (n > 0 && *p == '[') {
		const char *end = memchr(p, ']', n);

		if (end) {
			char name[CONF_MAX_LINE + 1];

			memcpy(name, p + 1, (size_t)(end - p - 1));
			name[end - p - 1] = '\0';
			if (!known_section(c, name)) {
				record(c, -EINVAL, "unknown section [%s]", name);
				return NULL;
			}
		}
	}
	memcpy(str, p, n);
	str[n] = '\0';
	return str;
}

static int parse_bool(const char *v, bool *ret)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int set_value(struct ctx *c, const struct conf_option *o, const char *value)
{
	uint64_t u;
	int r;

	switch (o->type) {
	case CONF_STRING: {
		char *s;

		if (o->max && strlen(value) > o->max) {
			record(c, -EINVAL, "%s: longer than %" PRIu64 " bytes", o->key, o->max);
			return -EINVAL;
		}
		s = strdup(value);
		if (!s) {
			record(c, -ENOMEM, "out of memory");
			return -ENOMEM;
		}
		*MEMBER(c->target, o, char *) = s;
		return 0;
	}
	case CONF_PATH: {
		char *s;

		if (!value[0]) {
			record(c, -EINVAL, "%s: empty path", o->key);
			return -EINVAL;
		}
		if (value[0] == '/')
			s = strdup(value);
		else if (asprintf(&s, "%s/%s", c->dir, value) < 0)
			s = NULL;
		if (!s) {
			record(c, -ENOMEM, "out of memory");
			return -ENOMEM;
		}
		if (strlen(s) >= PATH_MAX || (o->max && strlen(s) > o->max)) {
			free(s);
			record(c, -EINVAL, "%s: path too long", o->key);
			return -EINVAL;
		}
		*MEMBER(c->target, o, char *) = s;
		return 0;
	}
	case CONF_UINT:
		r = kq_parse_uint(value, o->max ? o->max : UINT64_MAX, &u);
		if (r < 0) {
			record(c, -EINVAL, "%s: %s", o->key,
			       r == -ERANGE ? "number too large" : "not a non-negative decimal number");
			return -EINVAL;
		}
		*MEMBER(c->target, o, uint64_t) = u;
		return 0;
	case CONF_PORT:
		r = kq_parse_uint(value, 65535, &u);
		if (r < 0) {
			record(c, -EINVAL, "%s: not a port number (0-65535)", o->key);
			return -EINVAL;
		}
		*MEMBER(c->target, o, uint16_t) = (uint16_t)u;
		return 0;
	case CONF_BOOL: {
		bool b;

		if (parse_bool(value, &b) < 0) {
			record(c, -EINVAL, "%s: not a boolean (true/false, yes/no, on/off, 1/0)", o->key);
			return -EINVAL;
		}
		*MEMBER(c->target, o, bool) = b;
		return 0;
	}
	}
	record(c, -EINVAL, "%s: unsupported option type", o->key);
	return -EINVAL;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct ctx *c = user;
	size_t i;

	if (c->err_line)
		return 0;
	for (i = 0; i < c->n; i++)
		if (strcmp(sect(&c->opts[i]), section) == 0 && strcmp(c->opts[i].key, name) == 0)
			break;
	if (i == c->n) {
		if (!known_section(c, section))
			record(c, -EINVAL, "unknown section [%s]", section);
		else if (section[0])
			record(c, -EINVAL, "unknown key '%s' in section [%s]", name, section);
		else
			record(c, -EINVAL, "unknown key '%s'", name);
		return 0;
	}
	if (c->seen[i]) {
		record(c, -EINVAL, "'%s' given twice", name);
		return 0;
	}
	if (set_value(c, &c->opts[i], value) < 0)
		return 0;
	c->seen[i] = true;
	return 1;
}

/* Puts back what the load changed. */
static void restore(struct ctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct conf_option *o = &c->opts[i];

		if (!c->seen[i])
			continue;
		switch (o->type) {
		case CONF_STRING:
		case CONF_PATH:
			free(*MEMBER(c->target, o, char *));
			*MEMBER(c->target, o, char *) = c->saved[i].s;
			break;
		case CONF_UINT:
			*MEMBER(c->target, o, uint64_t) = c->saved[i].u;
			break;
		case CONF_PORT:
			*MEMBER(c->target, o, uint16_t) = c->saved[i].port;
			break;
		case CONF_BOOL:
			*MEMBER(c->target, o, bool) = c->saved[i].b;
			break;
		}
	}
}

static void save(struct ctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct conf_option *o = &c->opts[i];

		switch (o->type) {
		case CONF_STRING:
		case CONF_PATH:
			c->saved[i].s = *MEMBER(c->target, o, char *);
			break;
		case CONF_UINT:
			c->saved[i].u = *MEMBER(c->target, o, uint64_t);
			break;
		case CONF_PORT:
			c->saved[i].port = *MEMBER(c->target, o, uint16_t);
			break;
		case CONF_BOOL:
			c->saved[i].b = *MEMBER(c->target, o, bool);
			break;
		}
	}
}

static int file_dir(const char *path, char **ret)
{
	_cleanup_free_ char *copy = strdup(path);
	char *dir;

	if (!copy)
		return kq_err(-ENOMEM, "out of memory");
	dir = realpath(dirname(copy), NULL);
	if (!dir)
		return kq_err(-errno, "%s: %s", path, strerror(errno));
	*ret = dir;
	return 0;
}

int conf_load(const char *path, const struct conf_option *opts, void *target)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_free_ char *dir = NULL;
	_cleanup_free_ bool *seen = NULL;
	_cleanup_free_ union saved *saved = NULL;
	struct ctx c;
	size_t len, n = 0;
	int r;

	r = kq_read_file(path, CONF_MAX_SIZE, &buf, &len);
	if (r < 0)
		return r;
	r = file_dir(path, &dir);
	if (r < 0)
		return r;
	while (opts[n].key)
		n++;
	seen = calloc(n ? n : 1, sizeof(*seen));
	saved = calloc(n ? n : 1, sizeof(*saved));
	if (!seen || !saved)
		return kq_err(-ENOMEM, "out of memory");

	c = (struct ctx){
		.path = path, .dir = dir, .opts = opts, .target = target, .n = n,
		.seen = seen, .saved = saved, .buf = (const char *)buf, .len = len,
	};
	save(&c);

	r = ini_parse_stream(reader, &c, handler, &c);
	if (r == -2) {
		restore(&c);
		return kq_err(-ENOMEM, "%s: out of memory", path);
	}
	if (r > 0 && (!c.err_line || (unsigned)r < c.err_line)) {
		restore(&c);
		return kq_err(-EINVAL, "%s:%d: syntax error (expected [section] or key = value)", path, r);
	}
	if (c.err_line) {
		restore(&c);
		return kq_err(c.err, "%s:%u: %s", path, c.err_line, c.msg);
	}
	if (r != 0) {
		restore(&c);
		return kq_err(-EINVAL, "%s: cannot be parsed", path);
	}

	/* from now on every string member is ours: copy the defaults */
	for (size_t i = 0; i < n; i++) {
		char **p = MEMBER(target, &opts[i], char *);

		if (!is_string(&opts[i]) || c.seen[i] || !*p)
			continue;
		*p = strdup(*p);
		if (!*p) {
			for (size_t k = 0; k < i; k++)
				if (is_string(&opts[k]) && !c.seen[k])
					free(*MEMBER(target, &opts[k], char *));
			/* restore the defaults we replaced */
			for (size_t k = 0; k <= i; k++)
				if (is_string(&opts[k]) && !c.seen[k])
					*MEMBER(target, &opts[k], char *) = saved[k].s;
			restore(&c);
			return kq_err(-ENOMEM, "out of memory");
		}
	}
	return 0;
}

void conf_free(const struct conf_option *opts, void *target)
{
	for (const struct conf_option *o = opts; o->key; o++) {
		if (!is_string(o))
			continue;
		free(*MEMBER(target, o, char *));
		*MEMBER(target, o, char *) = NULL;
	}
}
