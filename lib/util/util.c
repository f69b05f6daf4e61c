/* SPDX-License-Identifier: Apache-2.0 */
#include "util/util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define ERRMSG_MAX 512
static _Thread_local char errmsg[ERRMSG_MAX];

void kq_free_secret(void *p, size_t len)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

int kq_err(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return code;
}

int kq_err_ctx(int code, const char *fmt, ...)
{
	char prefix[ERRMSG_MAX], old[ERRMSG_MAX];
	va_list ap;

	memcpy(old, errmsg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* prefix then the old message, cut to fit (intended: messages are bounded) */
	{
		size_t pl = strnlen(prefix, sizeof(errmsg) - 1);
		size_t ol = strnlen(old, sizeof(errmsg) - 1 - pl);

		memcpy(errmsg, prefix, pl);
		memcpy(errmsg + pl, old, ol);
		errmsg[pl + ol] = '\0';
	}
	return code;
}

const char *kq_errmsg(void) { return errmsg; }
void kq_err_clear(void) { errmsg[0] = '\0'; }

static int short_read(const struct kq_cur *c, size_t n)
{
	return kq_err(-EBADMSG, "truncated: need %zu bytes at offset %zu, %zu left",
		      n, c->off, c->len - c->off);
}

int kq_cur_bytes(struct kq_cur *c, size_t n, const uint8_t **ret)
{
	if (n > c->len - c->off)
		return short_read(c, n);
	*ret = c->buf + c->off;
	c->off += n;
	return 0;
}

int kq_cur_copy(struct kq_cur *c, void *dst, size_t n)
{
	const uint8_t *p;
	int r = kq_cur_bytes(c, n, &p);

	if (r < 0)
		return r;
	if (n)
		memcpy(dst, p, n);
	return 0;
}

int kq_cur_skip(struct kq_cur *c, size_t n)
{
	const uint8_t *p;

	return kq_cur_bytes(c, n, &p);
}

int kq_cur_u8(struct kq_cur *c, uint8_t *ret)
{
	const uint8_t *p;
	int r = kq_cur_bytes(c, 1, &p);

	if (r < 0)
		return r;
	*ret = p[0];
	return 0;
}

#define CUR_INT(name, type, n, expr)                               \
	int name(struct kq_cur *c, type *ret)                      \
	{                                                          \
		const uint8_t *p;                                  \
		type v = 0;                                        \
		int r = kq_cur_bytes(c, n, &p);                    \
		if (r < 0)                                         \
			return r;                                  \
		for (size_t i = 0; i < n; i++)                     \
			v |= (type)p[i] << (8 * (expr));           \
		*ret = v;                                          \
		return 0;                                          \
	}

CUR_INT(kq_cur_u16le, uint16_t, 2, i)
CUR_INT(kq_cur_u16be, uint16_t, 2, (1 - i))
CUR_INT(kq_cur_u32le, uint32_t, 4, i)
CUR_INT(kq_cur_u32be, uint32_t, 4, (3 - i))
CUR_INT(kq_cur_u64le, uint64_t, 8, i)
CUR_INT(kq_cur_u64be, uint64_t, 8, (7 - i))

int kq_buf_reserve(uint8_t **buf, size_t *cap, size_t need, size_t max)
{
	size_t ncap = *cap ? *cap : 4096;
	uint8_t *nb;

	if (need <= *cap)
		return 0;
	while (ncap < need && ncap <= SIZE_MAX / 2)
		ncap *= 2;
	if (ncap < need || ncap > max)
		ncap = need > max ? need : max;
	nb = realloc(*buf, ncap);
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*cap = ncap;
	return 0;
}

void kq_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

char *kq_hex_dup(const uint8_t *in, size_t len)
{
	char *s;

	if (len > (SIZE_MAX - 1) / 2)
		return NULL;
	s = malloc(2 * len + 1);
	if (s)
		kq_hex_encode(in, len, s);
	return s;
}

int kq_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int kq_hex_decode(const char *hex, uint8_t *out, size_t outmax, size_t *ret_len)
{
	size_t n;

	if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X'))
		hex += 2;
	n = strlen(hex);
	if (n % 2)
		return kq_err(-EINVAL, "hex string has odd length %zu", n);
	if (n / 2 > outmax)
		return kq_err(-E2BIG, "hex string of %zu bytes exceeds the maximum of %zu", n / 2, outmax);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = kq_hex_digit((unsigned char)hex[2 * i]), lo = kq_hex_digit((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return kq_err(-EINVAL, "invalid hex digit at position %zu", 2 * i + (hi < 0 ? 0 : 1));
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*ret_len = n / 2;
	return 0;
}

int kq_read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, r = 0;

	if (max > SIZE_MAX / 2)
		max = SIZE_MAX / 2;
	if (strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return kq_err(-errno, "%s: %s", path, strerror(errno));

	for (;;) {
		ssize_t n;

		if (cap - len < 4096 + 1) {
			size_t ncap = cap ? cap * 2 : 65536;
			uint8_t *nb;

			if (ncap > max + 4096 + 1)
				ncap = max + 4096 + 1;
			if (ncap <= cap) {
				r = kq_err(-EFBIG, "%s: larger than the limit of %zu bytes", path, max);
				goto out;
			}
			nb = realloc(buf, ncap);
			if (!nb) {
				r = kq_err(-ENOMEM, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = kq_err(-errno, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			r = kq_err(-EFBIG, "%s: larger than the limit of %zu bytes", path, max);
			goto out;
		}
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf) {
			r = kq_err(-ENOMEM, "%s: out of memory", path);
			goto out;
		}
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
out:
	if (r < 0 && buf)
		OPENSSL_cleanse(buf, len); /* the file may have held a secret */
	if (fd != STDIN_FILENO)
		close(fd);
	return r;
}

int kq_mkdir_parents(const char *path)
{
	char dir[PATH_MAX];
	char *last, *p;
	size_t n = strlen(path);

	if (n >= sizeof(dir))
		return kq_err(-ENAMETOOLONG, "%s: path too long", path);
	memcpy(dir, path, n + 1);
	last = strrchr(dir, '/');
	if (!last || last == dir)
		return 0;
	*last = '\0';
	for (p = dir + 1;; p++) {
		p = strchr(p, '/');
		if (p)
			*p = '\0';
		if (mkdir(dir, p ? 0755 : 0700) < 0 && errno != EEXIST)
			return kq_err(-errno, "%s: %s", dir, strerror(errno));
		if (!p)
			return 0;
		*p = '/';
	}
}

int kq_write_file(const char *path, const void *data, size_t len)
{
	_cleanup_free_ char *tmp = NULL;
	const uint8_t *p = data;
	int fd, r = 0;

	if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0) {
		tmp = NULL;
		return kq_err(-ENOMEM, "out of memory");
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return kq_err(-errno, "%s: %s", path, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = kq_err(-errno, "%s: %s", path, strerror(errno));
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (r == 0 && fsync(fd) < 0)
		r = kq_err(-errno, "%s: %s", path, strerror(errno));
	if (close(fd) < 0 && r == 0)
		r = kq_err(-errno, "%s: %s", path, strerror(errno));
	if (r == 0 && rename(tmp, path) < 0)
		r = kq_err(-errno, "%s: %s", path, strerror(errno));
	if (r < 0)
		unlink(tmp);
	return r;
}

int kq_parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return kq_err(-EINVAL, "empty number");
	for (const char *p = s; *p; p++) {
		uint64_t d;

		if (*p < '0' || *p > '9')
			return kq_err(-EINVAL, "not a decimal number: '%s'", s);
		d = (uint64_t)(*p - '0');
		if (d > max || v > (max - d) / 10)
			return kq_err(-ERANGE, "number out of range (max %llu): '%s'",
				      (unsigned long long)max, s);
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

void kq_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || (n = strlen(path)) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract socket */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	close(fd);
}

bool kq_uuid_normalize(const char *s, char ret[37])
{
	if (strnlen(s, 37) != 36)
		return false;
	for (size_t i = 0; i < 36; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : kq_hex_digit((unsigned char)s[i]) < 0)
			return false;
	for (size_t i = 0; i <= 36; i++)
		ret[i] = s[i] >= 'A' && s[i] <= 'F' ? (char)(s[i] - 'A' + 'a') : s[i];
	return true;
}
