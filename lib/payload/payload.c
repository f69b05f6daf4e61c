/* SPDX-License-Identifier: Apache-2.0 */
#include "payload/payload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "util/util.h"

#define ARCHIVE_MAGIC "KQA1"
#define SEALED_MAGIC "KQP1"
#define AAD_PREFIX "kumquat-payload-v1"
#define IV_LEN 12
#define GCM_TAG_LEN 16

/* ---- archive ---- */

static bool name_ok(const char *n, size_t len)
{
	if (len == 0 || len > PAYLOAD_NAME_MAX || n[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

struct abuf {
	uint8_t *p;
	size_t len, cap;
};

static int put(struct abuf *b, const void *d, size_t n)
{
	if (b->len + n > PAYLOAD_MAX)
		return kq_err(-E2BIG, "the payload is larger than %u MB", PAYLOAD_MAX >> 20);
	if (kq_buf_reserve(&b->p, &b->cap, b->len + n, PAYLOAD_MAX) < 0)
		return kq_err(-ENOMEM, "out of memory");
	memcpy(b->p + b->len, d, n);
	b->len += n;
	return 0;
}

static int put_le(struct abuf *b, uint64_t v, size_t n)
{
	uint8_t x[8];

	for (size_t i = 0; i < n; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	return put(b, x, n);
}

static int add_file(struct abuf *b, int dirfd, const char *name)
{
	_cleanup_free_ uint8_t *data = NULL;
	struct stat st;
	size_t len = 0;
	int fd, r;

	if (!name_ok(name, strlen(name)))
		return kq_err(-EINVAL, "%s: payload file names are letters, digits, '.', '_' and '-', not starting with '.'",
			      name);
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return kq_err(-errno, "%s: %s", name, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return kq_err(-EINVAL, "%s: not a regular file (directories are not nested)", name);
	}
	if ((uint64_t)st.st_size > PAYLOAD_MAX) {
		close(fd);
		return kq_err(-E2BIG, "%s: larger than %u MB", name, PAYLOAD_MAX >> 20);
	}
	data = malloc((size_t)st.st_size + 1);
	if (!data) {
		close(fd);
		return kq_err(-ENOMEM, "out of memory");
	}
	while (len < (size_t)st.st_size) {
		ssize_t got = read(fd, data + len, (size_t)st.st_size - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			r = got < 0 ? -errno : -EIO;
			OPENSSL_cleanse(data, len);
			close(fd);
			return kq_err(r, "%s: %s", name, got < 0 ? strerror(-r) : "changed while read");
		}
		len += (size_t)got;
	}
	close(fd);
	if ((r = put_le(b, strlen(name), 2)) >= 0 && (r = put(b, name, strlen(name))) >= 0 &&
	    (r = put_le(b, st.st_mode & 0700, 4)) >= 0 && (r = put_le(b, len, 8)) >= 0)
		r = put(b, data, len);
	OPENSSL_cleanse(data, len);
	return r < 0 ? r : 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int payload_archive(const char *path, uint8_t **ret, size_t *ret_len)
{
	struct abuf b = { 0 };
	struct stat st;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r, dfd = -1;

	if (lstat(path, &st) < 0)
		return kq_err(-errno, "%s: %s", path, strerror(errno));
	if ((r = put(&b, ARCHIVE_MAGIC, 4)) < 0)
		goto out;
	if (S_ISREG(st.st_mode)) {
		_cleanup_free_ char *copy = strdup(path);
		const char *base, *dir;

		if (!copy) {
			r = kq_err(-ENOMEM, "out of memory");
			goto out;
		}
		base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
		dir = base == copy ? "." : (copy[base - copy - 1] = '\0', copy[0] ? copy : "/");
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0) {
			r = kq_err(-errno, "%s: %s", dir, strerror(errno));
			goto out;
		}
		if ((r = put_le(&b, 1, 4)) < 0 || (r = add_file(&b, dfd, base)) < 0)
			goto out;
	} else if (S_ISDIR(st.st_mode)) {
		DIR *d;
		struct dirent *e;

		dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (dfd < 0 || !(d = fdopendir(dup(dfd)))) {
			r = kq_err(-errno, "%s: %s", path, strerror(errno));
			goto out;
		}
		while ((e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			if (n == PAYLOAD_MAX_FILES) {
				closedir(d);
				r = kq_err(-E2BIG, "%s: more than %d files", path, PAYLOAD_MAX_FILES);
				goto out;
			}
			if (n == cap) {
				char **nn = reallocarray(names, cap = cap ? 2 * cap : 16, sizeof(*nn));

				if (!nn) {
					closedir(d);
					r = kq_err(-ENOMEM, "out of memory");
					goto out;
				}
				names = nn;
			}
			if (!(names[n] = strdup(e->d_name))) {
				closedir(d);
				r = kq_err(-ENOMEM, "out of memory");
				goto out;
			}
			n++;
		}
		closedir(d);
		if (n == 0) {
			r = kq_err(-EINVAL, "%s: an empty directory", path);
			goto out;
		}
		qsort(names, n, sizeof(*names), cmp_names);
		if ((r = put_le(&b, n, 4)) < 0)
			goto out;
		for (size_t i = 0; i < n; i++)
			if ((r = add_file(&b, dfd, names[i])) < 0)
				goto out;
	} else {
		r = kq_err(-EINVAL, "%s: not a regular file or directory", path);
		goto out;
	}
	*ret = TAKE_PTR(b.p);
	*ret_len = b.len;
	r = 0;
out:
	if (b.p) {
		OPENSSL_cleanse(b.p, b.len);
		free(b.p);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (dfd >= 0)
		close(dfd);
	return r;
}

struct entry {
	const char *name;
	size_t name_len;
	uint32_t mode;
	const uint8_t *data;
	uint64_t size;
};

/* Reads entry i; -EBADMSG if malformed. */
static int next_entry(struct kq_cur *c, struct entry *e)
{
	uint16_t nl;
	const uint8_t *name;

	if (kq_cur_u16le(c, &nl) < 0 || kq_cur_bytes(c, nl, &name) < 0 || !name_ok((const char *)name, nl) ||
	    kq_cur_u32le(c, &e->mode) < 0 || (e->mode & ~0700u) != 0 || kq_cur_u64le(c, &e->size) < 0 ||
	    e->size > kq_cur_left(c) || kq_cur_bytes(c, (size_t)e->size, &e->data) < 0)
		return kq_err(-EBADMSG, "the payload archive is malformed");
	e->name = (const char *)name;
	e->name_len = nl;
	return 0;
}

int payload_archive_check(const uint8_t *a, size_t len, size_t *ret_files)
{
	struct kq_cur c = kq_cur_init(a, len);
	const uint8_t *magic;
	uint32_t n;
	struct entry e;

	if (kq_cur_bytes(&c, 4, &magic) < 0 || memcmp(magic, ARCHIVE_MAGIC, 4) != 0 || kq_cur_u32le(&c, &n) < 0 ||
	    n == 0 || n > PAYLOAD_MAX_FILES)
		return kq_err(-EBADMSG, "not a payload archive");
	for (uint32_t i = 0; i < n; i++)
		if (next_entry(&c, &e) < 0)
			return -EBADMSG;
	if (kq_cur_left(&c) != 0)
		return kq_err(-EBADMSG, "the payload archive has trailing bytes");
	*ret_files = n;
	return 0;
}

int payload_extract(const uint8_t *a, size_t len, int dirfd, size_t *ret_files)
{
	struct kq_cur c;
	size_t n;
	struct entry e;
	int r;

	/* the whole archive is checked before anything is written */
	r = payload_archive_check(a, len, &n);
	if (r < 0)
		return r;
	/* names are unique: a second file of one name fails on O_EXCL */
	c = kq_cur_init(a, len);
	kq_cur_skip(&c, 8);
	for (size_t i = 0; i < n; i++) {
		char name[PAYLOAD_NAME_MAX + 1];
		int fd;
		size_t off = 0;

		next_entry(&c, &e);
		memcpy(name, e.name, e.name_len);
		name[e.name_len] = '\0';
		fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, e.mode);
		if (fd < 0)
			return kq_err(-errno, "%s: %s", name, errno == EEXIST ? "named twice in the payload" : strerror(errno));
		while (off < e.size) {
			ssize_t w = write(fd, e.data + off, (size_t)(e.size - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				int err = errno ? errno : EIO;

				close(fd);
				return kq_err(-err, "%s: %s", name, strerror(err));
			}
			off += (size_t)w;
		}
		if (fchmod(fd, e.mode) < 0 || close(fd) < 0)
			return kq_err(-errno, "%s: %s", name, strerror(errno));
	}
	*ret_files = n;
	return 0;
}

/* ---- sealing ---- */

void payload_sealed_clear(struct payload_sealed *s)
{
	free(s->sealed);
	OPENSSL_cleanse(s, sizeof(*s));
}

static int auth_tag(const uint8_t k[PAYLOAD_KEY_LEN], const char *agent_id, uint8_t tag[PAYLOAD_TAG_LEN])
{
	unsigned int n = 0;

	if (!HMAC(EVP_sha256(), k, PAYLOAD_KEY_LEN, (const uint8_t *)agent_id, strlen(agent_id), tag, &n) ||
	    n != PAYLOAD_TAG_LEN)
		return kq_err(-EIO, "HMAC failed");
	return 0;
}

/* AAD: the prefix, a zero, the agent id. */
static int gcm(bool enc, const uint8_t k[PAYLOAD_KEY_LEN], const uint8_t iv[IV_LEN], const char *agent_id,
	       const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[GCM_TAG_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	ok = c && (enc ? EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL)
		       : EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL)) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, IV_LEN, NULL) == 1 &&
	     EVP_CipherInit_ex(c, NULL, NULL, k, iv, enc) == 1 &&
	     EVP_CipherUpdate(c, NULL, &n, (const uint8_t *)AAD_PREFIX, sizeof(AAD_PREFIX)) == 1 &&
	     EVP_CipherUpdate(c, NULL, &n, (const uint8_t *)agent_id, (int)strlen(agent_id)) == 1;
	for (size_t off = 0; ok && off < len;) {
		int chunk = len - off > (1u << 30) ? 1 << 30 : (int)(len - off);

		ok = EVP_CipherUpdate(c, out + off, &n, in + off, chunk) == 1;
		off += (size_t)chunk;
	}
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(c, out + len, &n) == 1;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -EBADMSG;
}

int payload_rsa_encrypt(EVP_PKEY *key, const char *label, const uint8_t *in, size_t len, uint8_t *out,
			size_t cap, size_t *ret_len)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
	size_t llen = strlen(label) + 1, n = cap;
	uint8_t *lab = OPENSSL_malloc(llen);
	int ok;

	if (lab)
		memcpy(lab, label, llen);
	ok = c && lab && EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA && EVP_PKEY_encrypt_init(c) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
	     EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) == 1 && EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) == 1 &&
	     EVP_PKEY_CTX_set0_rsa_oaep_label(c, lab, (int)llen) == 1;
	if (ok)
		lab = NULL; /* the context owns it */
	ok = ok && EVP_PKEY_encrypt(c, out, &n, in, len) == 1;
	OPENSSL_free(lab);
	EVP_PKEY_CTX_free(c);
	if (!ok)
		return kq_err(-EIO, "RSA-OAEP encryption to the payload key failed");
	*ret_len = n;
	return 0;
}

int payload_seal(EVP_PKEY *payload_key, const char *agent_id, const uint8_t *plain, size_t len,
		 struct payload_sealed *ret)
{
	struct payload_sealed s = { 0 };
	uint8_t k[PAYLOAD_KEY_LEN], u[PAYLOAD_KEY_LEN], v[PAYLOAD_KEY_LEN], *p;
	int r;

	if (len > PAYLOAD_MAX)
		return kq_err(-E2BIG, "the payload is larger than %u MB", PAYLOAD_MAX >> 20);
	s.sealed_len = 4 + IV_LEN + len + GCM_TAG_LEN;
	p = s.sealed = malloc(s.sealed_len);
	if (!p)
		return kq_err(-ENOMEM, "out of memory");
	memcpy(p, SEALED_MAGIC, 4);
	if (RAND_bytes(k, sizeof(k)) != 1 || RAND_bytes(u, sizeof(u)) != 1 || RAND_bytes(p + 4, IV_LEN) != 1) {
		r = kq_err(-EIO, "no randomness");
		goto out;
	}
	for (size_t i = 0; i < PAYLOAD_KEY_LEN; i++)
		v[i] = k[i] ^ u[i];
	if (gcm(true, k, p + 4, agent_id, plain, len, p + 4 + IV_LEN, p + 4 + IV_LEN + len) < 0) {
		r = kq_err(-EIO, "AES-256-GCM encryption failed");
		goto out;
	}
	if ((r = auth_tag(k, agent_id, s.auth_tag)) < 0 ||
	    (r = payload_rsa_encrypt(payload_key, PAYLOAD_LABEL_U, u, sizeof(u), s.enc_u, sizeof(s.enc_u),
				     &s.enc_u_len)) < 0 ||
	    (r = payload_rsa_encrypt(payload_key, PAYLOAD_LABEL_V, v, sizeof(v), s.enc_v, sizeof(s.enc_v),
				     &s.enc_v_len)) < 0)
		goto out;
	*ret = s;
	s.sealed = NULL;
	r = 0;
out:
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(u, sizeof(u));
	OPENSSL_cleanse(v, sizeof(v));
	payload_sealed_clear(&s);
	return r;
}

int payload_combine(const uint8_t u[PAYLOAD_KEY_LEN], const uint8_t v[PAYLOAD_KEY_LEN], const char *agent_id,
		    const uint8_t tag[PAYLOAD_TAG_LEN], uint8_t k[PAYLOAD_KEY_LEN])
{
	uint8_t want[PAYLOAD_TAG_LEN];
	int r;

	for (size_t i = 0; i < PAYLOAD_KEY_LEN; i++)
		k[i] = u[i] ^ v[i];
	r = auth_tag(k, agent_id, want);
	if (r < 0)
		return r;
	if (CRYPTO_memcmp(want, tag, PAYLOAD_TAG_LEN) != 0) {
		OPENSSL_cleanse(k, PAYLOAD_KEY_LEN);
		return kq_err(-EKEYREJECTED, "U and V do not make the key the auth tag names for this agent");
	}
	return 0;
}

int payload_open(const uint8_t k[PAYLOAD_KEY_LEN], const char *agent_id, const uint8_t *sealed, size_t len,
		 uint8_t **ret, size_t *ret_len)
{
	size_t n;
	uint8_t *out, tag[GCM_TAG_LEN];

	if (len < 4 + IV_LEN + GCM_TAG_LEN || memcmp(sealed, SEALED_MAGIC, 4) != 0 ||
	    len - (4 + IV_LEN + GCM_TAG_LEN) > PAYLOAD_MAX)
		return kq_err(-EBADMSG, "not a sealed payload");
	n = len - (4 + IV_LEN + GCM_TAG_LEN);
	out = malloc(n + 1);
	if (!out)
		return kq_err(-ENOMEM, "out of memory");
	memcpy(tag, sealed + 4 + IV_LEN + n, GCM_TAG_LEN);
	if (gcm(false, k, sealed + 4, agent_id, sealed + 4 + IV_LEN, n, out, tag) < 0) {
		OPENSSL_cleanse(out, n);
		free(out);
		return kq_err(-EBADMSG, "the sealed payload does not open with this key for this agent (changed or "
					"another's)");
	}
	*ret = out;
	*ret_len = n;
	return 0;
}
