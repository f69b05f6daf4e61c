/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/payload in software: a payload sealed to an RSA key opens with both
 * halves of its key for its agent only; archives of files and directories
 * come back byte for byte; every tampering is refused. (The TPM side,
 * U and V decrypted by the payload key, is in tests/unit/tpmdev.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "payload/payload.h"
#include "util/util.h"

static const char *ID = "5d8a2f0e-2b1c-4c3d-9e8f-0a1b2c3d4e5f";
static const char *OTHER = "6e9b3f1f-3c2d-4d4e-8f90-1b2c3d4e5f60";

static EVP_PKEY *key;

/* The RSA private decryption of what payload_rsa_encrypt made (as the TPM does it). */
static size_t rsa_decrypt(const char *label, const uint8_t *in, size_t len, uint8_t *out)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
	size_t llen = strlen(label) + 1, n = 512;
	uint8_t *lab = OPENSSL_malloc(llen);

	memcpy(lab, label, llen);
	assert_int_equal(EVP_PKEY_decrypt_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_CTX_set0_rsa_oaep_label(c, lab, (int)llen), 1);
	if (EVP_PKEY_decrypt(c, out, &n, in, len) != 1)
		n = 0;
	EVP_PKEY_CTX_free(c);
	return n;
}

static void test_seal_open(void **state)
{
	const char *msg = "luks passphrase: correct horse battery staple";
	struct payload_sealed s;
	uint8_t u[512], v[512], k[PAYLOAD_KEY_LEN], bad[PAYLOAD_KEY_LEN];
	uint8_t *out = NULL;
	size_t len;

	(void)state;
	assert_int_equal(payload_seal(key, ID, (const uint8_t *)msg, strlen(msg), &s), 0);
	assert_int_equal(rsa_decrypt(PAYLOAD_LABEL_U, s.enc_u, s.enc_u_len, u), PAYLOAD_KEY_LEN);
	assert_int_equal(rsa_decrypt(PAYLOAD_LABEL_V, s.enc_v, s.enc_v_len, v), PAYLOAD_KEY_LEN);
	/* the labels keep U and V apart */
	assert_int_equal(rsa_decrypt(PAYLOAD_LABEL_V, s.enc_u, s.enc_u_len, bad), 0);
	assert_int_equal(payload_combine(u, v, ID, s.auth_tag, k), 0);
	assert_int_equal(payload_open(k, ID, s.sealed, s.sealed_len, &out, &len), 0);
	assert_int_equal(len, strlen(msg));
	assert_memory_equal(out, msg, len);
	free(out);
	/* neither half alone is the key, nor does the plaintext show in what travels */
	assert_memory_not_equal(u, k, PAYLOAD_KEY_LEN);
	assert_memory_not_equal(v, k, PAYLOAD_KEY_LEN);
	assert_null(memmem(s.sealed, s.sealed_len, "correct horse", 13));

	/* the tag is over this agent: another agent's id, another V, a changed tag */
	assert_int_equal(payload_combine(u, v, OTHER, s.auth_tag, bad), -EKEYREJECTED);
	v[0] ^= 1;
	assert_int_equal(payload_combine(u, v, ID, s.auth_tag, bad), -EKEYREJECTED);
	v[0] ^= 1;
	s.auth_tag[5] ^= 1;
	assert_int_equal(payload_combine(u, v, ID, s.auth_tag, bad), -EKEYREJECTED);
	s.auth_tag[5] ^= 1;
	/* the payload is bound to the agent, and any changed byte is refused */
	assert_int_equal(payload_open(k, OTHER, s.sealed, s.sealed_len, &out, &len), -EBADMSG);
	for (size_t i = 0; i < s.sealed_len; i += 7) {
		s.sealed[i] ^= 0x40;
		assert_int_equal(payload_open(k, ID, s.sealed, s.sealed_len, &out, &len), -EBADMSG);
		s.sealed[i] ^= 0x40;
	}
	for (size_t cut = 0; cut < s.sealed_len; cut++)
		assert_int_equal(payload_open(k, ID, s.sealed, cut, &out, &len), -EBADMSG);
	payload_sealed_clear(&s);
}

static char tmp[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void write_in(const char *dir, const char *name, const void *d, size_t n, mode_t mode)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, d, n), (ssize_t)n);
	close(fd);
	chmod(p, mode);
}

static void test_archive(void **state)
{
	char src[128], dst[128], p[256];
	uint8_t bin[3000], *a = NULL, *back = NULL;
	size_t len, n, blen;
	int dfd;

	(void)state;
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (uint8_t)(i * 7);
	snprintf(src, sizeof(src), "%s/src", tmp);
	snprintf(dst, sizeof(dst), "%s/dst", tmp);
	assert_int_equal(mkdir(src, 0700), 0);
	assert_int_equal(mkdir(dst, 0700), 0);
	write_in(src, "luks.key", bin, sizeof(bin), 0600);
	write_in(src, "unlock.sh", "#!/bin/sh\n", 10, 0700);
	write_in(src, "empty", "", 0, 0644);

	assert_int_equal(payload_archive(src, &a, &len), 0);
	assert_int_equal(payload_archive_check(a, len, &n), 0);
	assert_int_equal(n, 3);
	dfd = open(dst, O_RDONLY | O_DIRECTORY);
	assert_int_equal(payload_extract(a, len, dfd, &n), 0);
	assert_int_equal(n, 3);
	snprintf(p, sizeof(p), "%s/luks.key", dst);
	assert_int_equal(kq_read_file(p, 1 << 20, &back, &blen), 0);
	assert_int_equal(blen, sizeof(bin));
	assert_memory_equal(back, bin, blen);
	free(back);
	{
		struct stat st;

		assert_int_equal(fstatat(dfd, "unlock.sh", &st, 0), 0);
		assert_int_equal(st.st_mode & 0777, 0700);
		assert_int_equal(fstatat(dfd, "empty", &st, 0), 0);
		assert_int_equal(st.st_mode & 0777, 0600); /* group and other bits are dropped */
		assert_int_equal(st.st_size, 0);
	}
	/* a second extraction into the same place does not overwrite */
	assert_int_equal(payload_extract(a, len, dfd, &n), -EEXIST);
	close(dfd);
	free(a);

	/* one file */
	snprintf(p, sizeof(p), "%s/luks.key", src);
	assert_int_equal(payload_archive(p, &a, &len), 0);
	assert_int_equal(payload_archive_check(a, len, &n), 0);
	assert_int_equal(n, 1);
	free(a);

	/* what cannot be archived: a symlink, a nested directory, a hidden or odd name */
	snprintf(p, sizeof(p), "%s/link", src);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	assert_true(payload_archive(src, &a, &len) < 0);
	unlink(p);
	snprintf(p, sizeof(p), "%s/sub", src);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_true(payload_archive(src, &a, &len) < 0);
	rmdir(p);
	write_in(src, ".hidden", "x", 1, 0600);
	assert_int_equal(payload_archive(src, &a, &len), -EINVAL);
	snprintf(p, sizeof(p), "%s/.hidden", src);
	unlink(p);
}

/* Hand-made archives: names that escape, modes, sizes, counts. */
static size_t mk(uint8_t *b, uint32_t count, const char *name, uint32_t mode, uint64_t size, const char *data)
{
	size_t o = 0, nl = strlen(name);

	memcpy(b, "KQA1", 4);
	o = 4;
	for (int i = 0; i < 4; i++)
		b[o++] = (uint8_t)(count >> (8 * i));
	b[o++] = (uint8_t)nl;
	b[o++] = (uint8_t)(nl >> 8);
	memcpy(b + o, name, nl);
	o += nl;
	for (int i = 0; i < 4; i++)
		b[o++] = (uint8_t)(mode >> (8 * i));
	for (int i = 0; i < 8; i++)
		b[o++] = (uint8_t)(size >> (8 * i));
	memcpy(b + o, data, strlen(data));
	return o + strlen(data);
}

static void test_archive_hostile(void **state)
{
	uint8_t b[512];
	size_t n, len;

	(void)state;
	len = mk(b, 1, "ok.txt", 0600, 2, "hi");
	assert_int_equal(payload_archive_check(b, len, &n), 0);
	assert_int_equal(payload_archive_check(b, len - 1, &n), -EBADMSG);     /* truncated */
	assert_int_equal(payload_archive_check(b, len + 0, &n), 0);
	len = mk(b, 1, "../etc/passwd", 0600, 2, "hi");
	assert_int_equal(payload_archive_check(b, len, &n), -EBADMSG);
	len = mk(b, 1, "a/b", 0600, 2, "hi");
	assert_int_equal(payload_archive_check(b, len, &n), -EBADMSG);
	len = mk(b, 1, ".profile", 0600, 2, "hi");
	assert_int_equal(payload_archive_check(b, len, &n), -EBADMSG);
	len = mk(b, 1, "", 0600, 2, "hi");
	assert_int_equal(payload_archive_check(b, len, &n), -EBADMSG);
	len = mk(b, 1, "suid", 04700, 2, "hi");
	assert_int_equal(payload_archive_check(b, len, &n), -EBADMSG);
	len = mk(b, 1, "big", 0600, UINT64_MAX, "hi");
	assert_int_equal(payload_archive_check(b, len, &n), -EBADMSG);
	len = mk(b, 2, "one", 0600, 2, "hi");                                    /* says 2, holds 1 */
	assert_int_equal(payload_archive_check(b, len, &n), -EBADMSG);
	len = mk(b, 0, "one", 0600, 2, "hi");
	assert_int_equal(payload_archive_check(b, len, &n), -EBADMSG);
	len = mk(b, 1, "one", 0600, 1, "hi");                                    /* trailing byte */
	assert_int_equal(payload_archive_check(b, len, &n), -EBADMSG);
	assert_int_equal(payload_archive_check((const uint8_t *)"KQA2", 4, &n), -EBADMSG);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/kq-payload-XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	key = EVP_RSA_gen(2048);
	return key ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	nftw(tmp, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_open),
		cmocka_unit_test(test_archive),
		cmocka_unit_test(test_archive_hostile),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
