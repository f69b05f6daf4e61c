/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-vtpm-mgr inspect: swtpm's state file header and TLVs (made up and
 * real, truncated at every length), the worker process (hangs, crashes,
 * short, long and trailing answers), the worker's message, and libtpms on a
 * state made by swtpm_setup at test time (EKs, certificates, corrupted
 * states, swapped certificates, --expect-cert, exit codes). The tests that
 * need swtpm_setup skip when it is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "inspect.h"
#include "vtpm-mgr.h"
#include "testlib.h"
#include "tpm/tpm.h"
#include "x509/x509.h"

/* ---- helpers ---- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* A few bytes that look like the start of a libtpms permanent state. */
static const uint8_t fake_blob[] = { 0x00, 0x03, 0xab, 0x36, 0x47, 0x23, 0x00, 0x03, 0x01, 0x02 };

/* swtpm header (version, min_version, hdrsize, flags) + TLVs; totlen filled in. */
struct file {
	uint8_t b[256];
	size_t n;
};
static void f_header(struct file *f, uint8_t version, uint8_t min_version, uint16_t hdrsize, uint16_t flags)
{
	f->b[0] = version;
	f->b[1] = min_version;
	put16(f->b + 2, hdrsize);
	put16(f->b + 4, flags);
	f->n = 10;
}
static void f_tlv(struct file *f, uint16_t tag, const void *data, uint32_t len)
{
	put16(f->b + f->n, tag);
	put32(f->b + f->n + 2, len);
	memcpy(f->b + f->n + 6, data, len);
	f->n += 6 + len;
}
static void f_close(struct file *f)
{
	put32(f->b + 6, (uint32_t)f->n);
}

static int blob(const struct file *f, const uint8_t **p, size_t *n)
{
	return inspect_swtpm_blob(f->b, f->n, p, n);
}

/* ---- swtpm's file ---- */

static void test_blob_ok(void **state)
{
	struct file f;
	const uint8_t *p;
	size_t n;

	/* swtpm today: header version 2, one TAG_DATA record */
	f_header(&f, 2, 1, 10, 0);
	f_tlv(&f, 1, fake_blob, sizeof(fake_blob));
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), 0);
	assert_ptr_equal(p, f.b + 16);
	assert_int_equal(n, sizeof(fake_blob));

	/* other records first; the first TAG_DATA counts */
	f_header(&f, 2, 1, 10, 0);
	f_tlv(&f, 9, "xyz", 3);
	f_tlv(&f, 1, fake_blob, sizeof(fake_blob));
	f_tlv(&f, 1, "no", 2);
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), 0);
	assert_ptr_equal(p, f.b + 25);

	/* header version 1: the blob follows the header */
	f_header(&f, 1, 1, 10, 0);
	memcpy(f.b + 10, fake_blob, sizeof(fake_blob));
	f.n += sizeof(fake_blob);
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), 0);
	assert_ptr_equal(p, f.b + 10);
	assert_int_equal(n, sizeof(fake_blob));

	/* swtpm before its header: the bare blob */
	assert_int_equal(inspect_swtpm_blob(fake_blob, sizeof(fake_blob), &p, &n), 0);
	assert_ptr_equal(p, fake_blob);
}

static void test_blob_bad(void **state)
{
	struct file f;
	const uint8_t *p = NULL;
	size_t n = 0;

	assert_int_equal(inspect_swtpm_blob((const uint8_t *)"", 0, &p, &n), -EBADMSG);
	assert_non_null(strstr(kq_errmsg(), "empty"));
	assert_int_equal(inspect_swtpm_blob((const uint8_t *)"\x02\x01\x00\x0a\x00", 5, &p, &n), -EBADMSG);
	assert_non_null(strstr(kq_errmsg(), "truncated"));

	/* file shorter or longer than the header says */
	f_header(&f, 2, 1, 10, 0);
	f_tlv(&f, 1, fake_blob, sizeof(fake_blob));
	f_close(&f);
	f.n--;
	assert_int_equal(blob(&f, &p, &n), -EBADMSG);
	assert_non_null(strstr(kq_errmsg(), "header says"));
	f.n += 2;
	assert_int_equal(blob(&f, &p, &n), -EBADMSG);

	/* a future format */
	f_header(&f, 3, 3, 10, 0);
	f_tlv(&f, 1, fake_blob, sizeof(fake_blob));
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -ENOTSUP);
	/* nonsense versions and header sizes */
	f_header(&f, 2, 0, 10, 0);
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -EBADMSG);
	f_header(&f, 1, 2, 10, 0);
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -EBADMSG);
	f_header(&f, 2, 1, 12, 0);
	f_tlv(&f, 1, fake_blob, sizeof(fake_blob));
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -EBADMSG);

	/* encrypted: by the flag, or by an encrypted-data record */
	f_header(&f, 2, 1, 10, 0x01 | 0x08);
	f_tlv(&f, 2, "ciphertext", 10);
	f_tlv(&f, 3, "hmac", 4);
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -ENOKEY);
	assert_non_null(strstr(kq_errmsg(), "encrypted"));
	f_header(&f, 2, 1, 10, 0x02);
	f_tlv(&f, 5, "x", 1);
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -ENOKEY);
	f_header(&f, 2, 1, 10, 0);
	f_tlv(&f, 2, "ciphertext", 10);
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -ENOKEY);

	/* a record overrunning the file, a partial record header */
	f_header(&f, 2, 1, 10, 0);
	f_tlv(&f, 1, fake_blob, sizeof(fake_blob));
	put32(f.b + 12, sizeof(fake_blob) + 1);
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -EBADMSG);
	put32(f.b + 12, 0xffffffffu);
	assert_int_equal(blob(&f, &p, &n), -EBADMSG);
	f_header(&f, 2, 1, 10, 0);
	f_tlv(&f, 1, fake_blob, sizeof(fake_blob));
	f.n += 3; /* 3 bytes of a next record */
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -EBADMSG);

	/* no data record; a data record that is not libtpms' */
	f_header(&f, 2, 1, 10, 0);
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -EBADMSG);
	assert_non_null(strstr(kq_errmsg(), "no data"));
	f_header(&f, 2, 1, 10, 0);
	f_tlv(&f, 1, "\x00\x03\xab\x36\x47\x24", 6);
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -EBADMSG);
	assert_non_null(strstr(kq_errmsg(), "libtpms"));
	f_header(&f, 2, 1, 10, 0);
	f_tlv(&f, 1, "", 0);
	f_close(&f);
	assert_int_equal(blob(&f, &p, &n), -EBADMSG);
	/* out-parameters untouched on failure */
	assert_null(p);
	assert_int_equal(n, 0);
}

/* ---- the worker process ---- */

static void child_hang(int wfd, void *arg)
{
	for (;;)
		pause();
}
static void child_crash(int wfd, void *arg)
{
	abort();
}
static void child_exit3(int wfd, void *arg)
{
	_exit(3);
}
static void child_write(int wfd, void *arg)
{
	const struct inspect_blob *b = arg;

	if (write(wfd, b->data, b->len) != (ssize_t)b->len)
		_exit(9);
}
static void child_write_hang(int wfd, void *arg)
{
	child_write(wfd, arg);
	child_hang(wfd, arg);
}
static void child_write_close_hang(int wfd, void *arg)
{
	child_write(wfd, arg);
	close(wfd);
	child_hang(wfd, arg);
}

static uint64_t ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int run(inspect_child_fn fn, const void *data, size_t len, uint8_t **msg, size_t *msg_len)
{
	struct inspect_blob b = { data, len };

	*msg = NULL;
	return inspect_run_child(fn, &b, 400, msg, msg_len);
}

static void test_child(void **state)
{
	uint8_t *msg = NULL;
	size_t len = 0;
	uint64_t t0;
	static const uint8_t ok[] = { 0, 0, 0, 3, 'a', 'b', 'c' };
	static const uint8_t empty[] = { 0, 0, 0, 0 };
	static const uint8_t extra[] = { 0, 0, 0, 1, 'a', 'b' };
	static const uint8_t shrt[] = { 0, 0, 0, 9, 'a', 'b' };
	static const uint8_t huge[] = { 0, 0x10, 0, 0 };

	assert_int_equal(run(child_write, ok, sizeof(ok), &msg, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(msg, "abc", 3);
	free(msg);
	assert_int_equal(run(child_write, empty, sizeof(empty), &msg, &len), 0);
	assert_int_equal(len, 0);
	free(msg);

	t0 = ms();
	assert_int_equal(run(child_hang, NULL, 0, &msg, &len), -ETIMEDOUT);
	assert_true(ms() - t0 < 5000);
	assert_int_equal(run(child_write_hang, ok, sizeof(ok), &msg, &len), -ETIMEDOUT);
	assert_int_equal(run(child_write_close_hang, ok, sizeof(ok), &msg, &len), -ETIMEDOUT);
	assert_non_null(strstr(kq_errmsg(), "did not exit"));

	assert_int_equal(run(child_crash, NULL, 0, &msg, &len), -EPROTO);
	assert_non_null(strstr(kq_errmsg(), "signal"));
	assert_int_equal(run(child_exit3, NULL, 0, &msg, &len), -EPROTO);
	assert_non_null(strstr(kq_errmsg(), "exit status 3"));
	assert_int_equal(run(child_write, extra, sizeof(extra), &msg, &len), -EPROTO);
	assert_non_null(strstr(kq_errmsg(), "more than"));
	assert_int_equal(run(child_write, shrt, sizeof(shrt), &msg, &len), -EPROTO);
	assert_non_null(strstr(kq_errmsg(), "without a complete answer"));
	assert_int_equal(run(child_write, huge, sizeof(huge), &msg, &len), -EPROTO);
	assert_non_null(strstr(kq_errmsg(), "too large"));
	assert_null(msg);

	/* no zombie left behind */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* ---- the worker's message ---- */

struct m {
	uint8_t b[4096];
	size_t n;
};
static void m_rec(struct m *m, uint8_t type, uint32_t handle, const void *d, uint32_t len)
{
	m->b[m->n] = type;
	put32(m->b + m->n + 1, handle);
	put32(m->b + m->n + 5, len);
	memcpy(m->b + m->n + 9, d, len);
	m->n += 9 + len;
}

static void test_msg(void **state)
{
	struct inspect_result r;
	struct m m = { .n = 0 };
	uint8_t der[3] = { 0x30, 0x01, 0x00 };

	assert_int_equal(inspect_msg_parse(m.b, 0, &r), 0);
	assert_int_equal(r.n_eks + r.n_certs + r.n_notes, 0);

	m_rec(&m, INSPECT_REC_CERT, 0x01c00002, der, 3);
	m_rec(&m, INSPECT_REC_NOTE, 0, "EK 0x81010016: bad\n\x1b[2J", 23);
	assert_int_equal(inspect_msg_parse(m.b, m.n, &r), 0);
	assert_int_equal(r.n_certs, 1);
	assert_int_equal(r.certs[0].nv_index, 0x01c00002);
	assert_int_equal(r.certs[0].len, 3);
	assert_int_equal(r.n_notes, 1);
	assert_string_equal(r.notes[0], "EK 0x81010016: bad??[2J");
	inspect_result_clear(&r);

	/* truncated anywhere */
	for (size_t i = 1; i < m.n; i++)
		if (i != 12) /* the end of the first record */
			assert_int_equal(inspect_msg_parse(m.b, i, &r), -EBADMSG);

	/* the same index twice, an index or EK handle not asked for, a bad public area */
	m.n = 0;
	m_rec(&m, INSPECT_REC_CERT, 0x01c00002, der, 3);
	m_rec(&m, INSPECT_REC_CERT, 0x01c00002, der, 3);
	assert_int_equal(inspect_msg_parse(m.b, m.n, &r), -EBADMSG);
	m.n = 0;
	m_rec(&m, INSPECT_REC_CERT, 0x01c00003, der, 3);
	assert_int_equal(inspect_msg_parse(m.b, m.n, &r), -EBADMSG);
	m.n = 0;
	m_rec(&m, INSPECT_REC_CERT, 0x01c00002, der, 0);
	assert_int_equal(inspect_msg_parse(m.b, m.n, &r), -EBADMSG);
	m.n = 0;
	m_rec(&m, INSPECT_REC_EK, 0x81000001, der, 3);
	assert_int_equal(inspect_msg_parse(m.b, m.n, &r), -EBADMSG);
	m.n = 0;
	m_rec(&m, INSPECT_REC_EK, 0x81010001, der, 3);
	assert_true(inspect_msg_parse(m.b, m.n, &r) < 0);
	m.n = 0;
	m_rec(&m, 9, 0, der, 3);
	assert_int_equal(inspect_msg_parse(m.b, m.n, &r), -EBADMSG);

	/* too many notes */
	m.n = 0;
	for (int i = 0; i <= INSPECT_MAX_NOTES; i++)
		m_rec(&m, INSPECT_REC_NOTE, 0, "n", 1);
	assert_int_equal(inspect_msg_parse(m.b, m.n, &r), -EBADMSG);

	/* the worker's error, made printable; what came before is dropped */
	m.n = 0;
	m_rec(&m, INSPECT_REC_CERT, 0x01c00002, der, 3);
	m_rec(&m, INSPECT_REC_ERROR, 0, "libtpms says\x00no\n", 16);
	assert_int_equal(inspect_msg_parse(m.b, m.n, &r), -EPROTO);
	assert_string_equal(kq_errmsg(), "libtpms says?no?");
}

/* ---- libtpms on a state made by swtpm_setup ---- */

struct fixture {
	char dir[64];
	char state[128];  /* the state directory */
	char file[160];   /* its tpm2-00.permall */
	uint8_t *buf;     /* the file */
	size_t len;
	const uint8_t *blob; /* libtpms' part of it */
	size_t blob_len;
};
static struct fixture fx;
static bool have_state;

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int run_quiet(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* swtpm_setup with an EK certificate from a local CA, as tests/integration/lib.sh does. */
static int setup_state(void **state)
{
	char p[256], conf[512], setup[256];

	if (access("/usr/bin/swtpm_setup", X_OK) != 0 || access("/usr/bin/swtpm_localca", X_OK) != 0)
		return 0;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/kq-inspect.XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.state, sizeof(fx.state), "%s/state", fx.dir);
	snprintf(p, sizeof(p), "%s/localca", fx.dir);
	if (mkdir(fx.state, 0700) < 0 || mkdir(p, 0700) < 0)
		return -1;
	snprintf(conf, sizeof(conf),
		 "statedir = %s/localca\nsigningkey = %s/localca/signkey.pem\n"
		 "issuercert = %s/localca/issuercert.pem\ncertserial = %s/localca/certserial\n",
		 fx.dir, fx.dir, fx.dir, fx.dir);
	snprintf(p, sizeof(p), "%s/localca.conf", fx.dir);
	if (write_text(p, conf) < 0)
		return -1;
	snprintf(conf, sizeof(conf),
		 "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = %s/localca.conf\n"
		 "create_certs_tool_options = /etc/swtpm-localca.options\n",
		 fx.dir);
	snprintf(setup, sizeof(setup), "%s/setup.conf", fx.dir);
	if (write_text(setup, conf) < 0)
		return -1;
	{
		char *argv[] = { "swtpm_setup", "--tpm2", "--tpmstate", fx.state, "--create-ek-cert",
				 "--lock-nvram", "--config", setup, "--overwrite", NULL };
		if (run_quiet(argv) != 0) {
			fprintf(stderr, "swtpm_setup failed\n");
			return -1;
		}
	}
	snprintf(fx.file, sizeof(fx.file), "%s/%s", fx.state, INSPECT_STATE_FILE);
	if (kq_read_file(fx.file, INSPECT_MAX_STATE, &fx.buf, &fx.len) < 0 ||
	    inspect_swtpm_blob(fx.buf, fx.len, &fx.blob, &fx.blob_len) < 0)
		return -1;
	have_state = true;
	return 0;
}

static int teardown_state(void **state)
{
	if (fx.dir[0]) {
		char *argv[] = { "rm", "-rf", fx.dir, NULL };
		run_quiet(argv);
	}
	free(fx.buf);
	return 0;
}

#define NEED_STATE()                                                                 \
	do {                                                                         \
		if (!have_state) {                                                   \
			print_message("swtpm_setup / swtpm_localca not installed\n"); \
			skip();                                                      \
		}                                                                    \
	} while (0)

static int inspect_bytes(const uint8_t *b, size_t n, struct inspect_result *r)
{
	struct inspect_blob blob = { b, n };
	_cleanup_free_ uint8_t *msg = NULL;
	size_t len;
	int e;

	e = inspect_run_child(inspect_child_libtpms, &blob, INSPECT_TIMEOUT_MS, &msg, &len);
	if (e < 0)
		return e;
	return inspect_msg_parse(msg, len, r);
}

/* The certificate swtpm_localca wrote into NV for the EK in slot i, and the EK. */
static void test_libtpms(void **state)
{
	struct inspect_result r;
	struct json_object *rep, *a, *o, *v;
	bool ok;
	_cleanup_free_ uint8_t *after = NULL;
	size_t after_len, n_files = 0;
	DIR *d;

	NEED_STATE();
	assert_int_equal(inspect_bytes(fx.blob, fx.blob_len, &r), 0);
	/* swtpm_setup makes an RSA 2048 and an ECC P-384 EK, each with a certificate */
	assert_int_equal(r.n_eks, 2);
	assert_int_equal(r.eks[0].handle, 0x81010001);
	assert_int_equal(r.eks[0].pub.type, TPM2_ALG_RSA);
	assert_int_equal(r.eks[0].pub.parameters.rsaDetail.keyBits, 2048);
	assert_int_equal(r.eks[1].handle, 0x81010016);
	assert_int_equal(r.eks[1].pub.type, TPM2_ALG_ECC);
	assert_int_equal(r.eks[1].pub.parameters.eccDetail.curveID, TPM2_ECC_NIST_P384);
	assert_int_equal(r.n_certs, 2);
	assert_int_equal(r.certs[0].nv_index, 0x01c00002);
	assert_int_equal(r.certs[1].nv_index, 0x01c00016);
	assert_int_equal(r.n_notes, 0);

	assert_int_equal(inspect_report(fx.state, &r, &rep, &ok), 0);
	assert_true(ok);
	assert_true(json_object_object_get_ex(rep, "eks", &a));
	assert_int_equal(json_object_array_length(a), 2);
	o = json_object_array_get_idx(a, 0);
	assert_string_equal(jstr(o, "handle"), "0x81010001");
	assert_string_equal(jstr(o, "alg"), "rsa");
	assert_true(json_object_object_get_ex(o, "public", &v) && json_object_object_get_ex(v, "rsa", &v));
	assert_int_equal(strlen(jstr(v, "n")), 512);
	assert_string_equal(jstr(v, "e"), "65537");
	assert_int_equal(strlen(jstr(o, "name")), 68);
	o = json_object_array_get_idx(a, 1);
	assert_true(json_object_object_get_ex(o, "public", &v) && json_object_object_get_ex(v, "ecc", &v));
	assert_string_equal(jstr(v, "curve"), "secp384r1");
	assert_int_equal(strlen(jstr(v, "x")), 96);
	assert_true(json_object_object_get_ex(rep, "ek_certs", &a));
	assert_int_equal(json_object_array_length(a), 2);
	for (size_t i = 0; i < 2; i++) {
		o = json_object_array_get_idx(a, i);
		assert_true(json_object_object_get_ex(o, "matches_ek", &v) && json_object_get_boolean(v));
		assert_string_equal(jstr(o, "issuer"), "CN=swtpm-localca");
		assert_null(strstr(json_object_to_json_string(o), "\"error\""));
	}
	json_object_put(rep);
	inspect_result_clear(&r);

	/* the state is left as it was, and nothing was added beside it */
	assert_int_equal(kq_read_file(fx.file, INSPECT_MAX_STATE, &after, &after_len), 0);
	assert_int_equal(after_len, fx.len);
	assert_memory_equal(after, fx.buf, fx.len);
	d = opendir(fx.state);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		n_files += e->d_name[0] != '.';
	closedir(d);
	assert_int_equal(n_files, 1);
}

/* Certificates in the wrong slots, and --expect-cert. */
static void test_mismatch(void **state)
{
	struct inspect_result r;
	struct json_object *rep, *a, *v;
	EVP_PKEY *key = NULL;
	X509 *rsa_cert, *other = NULL;
	struct x509_name_spec name = { .cn = "not an EK" };
	uint32_t nv = 0;
	uint8_t *tmp;
	size_t tmp_len;
	bool ok;

	NEED_STATE();
	assert_int_equal(inspect_bytes(fx.blob, fx.blob_len, &r), 0);
	assert_int_equal(x509_load(r.certs[0].data, r.certs[0].len, &rsa_cert), 0);

	assert_int_equal(inspect_check_expected(&r, rsa_cert, &nv), 0);
	assert_int_equal(nv, 0x01c00002);
	assert_int_equal(x509_make_ca(&name, 1, &key, &other), 0);
	assert_int_equal(inspect_check_expected(&r, other, &nv), -ENOENT);

	/* swap the certificates: each is now beside the other EK */
	tmp = r.certs[0].data;
	tmp_len = r.certs[0].len;
	r.certs[0].data = r.certs[1].data;
	r.certs[0].len = r.certs[1].len;
	r.certs[1].data = tmp;
	r.certs[1].len = tmp_len;
	assert_int_equal(inspect_report(fx.state, &r, &rep, &ok), 0);
	assert_false(ok);
	assert_true(json_object_object_get_ex(rep, "ek_certs", &a));
	for (size_t i = 0; i < 2; i++) {
		struct json_object *o = json_object_array_get_idx(a, i);

		assert_true(json_object_object_get_ex(o, "matches_ek", &v));
		assert_false(json_object_get_boolean(v));
		assert_non_null(strstr(jstr(o, "error"), "not for EK"));
	}
	json_object_put(rep);
	assert_int_equal(inspect_check_expected(&r, rsa_cert, &nv), -EKEYREJECTED);

	/* a certificate without its EK; NV contents that are no certificate */
	r.n_eks = 0;
	assert_int_equal(inspect_report(fx.state, &r, &rep, &ok), 0);
	assert_false(ok);
	assert_non_null(strstr(json_object_to_json_string(rep), "there is no EK at 0x81010016"));
	json_object_put(rep);
	memset(r.certs[0].data, 0xff, r.certs[0].len);
	assert_int_equal(inspect_report(fx.state, &r, &rep, &ok), 0);
	assert_false(ok);
	assert_non_null(strstr(json_object_to_json_string(rep), "not an X.509 certificate"));
	json_object_put(rep);

	X509_free(rsa_cert);
	X509_free(other);
	EVP_PKEY_free(key);
	inspect_result_clear(&r);
}

/* libtpms on damaged states: an error or a state it accepts, never a crash of ours. */
static void test_corrupt(void **state)
{
	struct inspect_result r;
	_cleanup_free_ uint8_t *b = NULL;
	size_t n = fx.blob_len;
	int e, refused = 0;

	NEED_STATE();
	b = malloc(n);
	assert_non_null(b);

	/* truncated libtpms blobs */
	for (size_t cut = 6; cut < n; cut += n / 7) {
		e = inspect_bytes(fx.blob, cut, &r);
		assert_int_equal(e, -EPROTO);
		assert_non_null(strstr(kq_errmsg(), "cannot load the state"));
	}
	/* flipped bytes: libtpms checks some parts (magics, sizes), not all */
	srand(7);
	for (int i = 0; i < 24; i++) {
		size_t off = 6 + (size_t)rand() % (n - 6);

		memcpy(b, fx.blob, n);
		b[off] ^= 0xff;
		e = inspect_bytes(b, n, &r);
		if (e == 0)
			inspect_result_clear(&r);
		else {
			assert_int_equal(e, -EPROTO);
			refused++;
		}
	}
	print_message("libtpms refused %d of 24 corrupted states\n", refused);
}

/* The subcommand, with stdout kept out of the test's output. */
static int cli(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5)
{
	char *argv[7] = { "inspect", (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL };
	int argc = 1, saved, null, code;

	while (argc < 6 && argv[argc])
		argc++;
	fflush(stdout);
	saved = dup(1);
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	dup2(null, 1);
	code = vtpm_inspect(argc, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(null);
	return code;
}

static void write_file(const char *path, const void *data, size_t len)
{
	assert_int_equal(kq_write_file(path, data, len), 0);
}

static void test_cli(void **state)
{
	char p[512], d[256], cert[512];
	struct file f;
	struct inspect_result r;
	X509 *x;

	/* usage */
	assert_int_equal(cli(NULL, NULL, NULL, NULL, NULL), 2);
	assert_int_equal(cli("a", "b", NULL, NULL, NULL), 2);
	assert_int_equal(cli("--bogus", "x", NULL, NULL, NULL), 2);
	assert_int_equal(cli("/nonexistent", NULL, NULL, NULL, NULL), 2);
	assert_int_equal(cli("/nonexistent", "--state-dir", "/tmp", NULL, NULL), 2);
	assert_int_equal(cli("--help", NULL, NULL, NULL, NULL), 0);
	/* a VM without a vTPM state under libvirt's directory */
	assert_int_equal(cli("00000000-0000-4000-8000-00000000dead", NULL, NULL, NULL, NULL), 2);

	NEED_STATE();
	assert_int_equal(cli(fx.state, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(cli(fx.file, "--json", NULL, NULL, NULL), 0);
	assert_int_equal(cli("00000000-0000-4000-8000-00000000dead", "--state-dir", fx.state, NULL, NULL), 0);

	/* a VM UUID under the config's [vtpm-mgr] swtpm_dir; a config that is missing */
	snprintf(d, sizeof(d), "%s/vms/00000000-0000-4000-8000-00000000beef", fx.dir);
	snprintf(p, sizeof(p), "%s/vms", fx.dir);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(p, sizeof(p), "%s/tpm2", d);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/tpm2/%s", d, INSPECT_STATE_FILE);
	write_file(p, fx.buf, fx.len);
	snprintf(cert, sizeof(cert), "[vtpm-mgr]\nswtpm_dir = %s/vms\n", fx.dir);
	snprintf(p, sizeof(p), "%s/vtpm-mgr.conf", fx.dir);
	write_file(p, cert, strlen(cert));
	vtpm_config_path = p;
	assert_int_equal(cli("00000000-0000-4000-8000-00000000BEEF", NULL, NULL, NULL, NULL), 0);
	vtpm_config_path = "/nonexistent/vtpm-mgr.conf";
	assert_int_equal(cli("00000000-0000-4000-8000-00000000beef", NULL, NULL, NULL, NULL), 2);
	vtpm_config_path = NULL;

	/* --expect-cert: the certificate in NV (PEM), another one */
	assert_int_equal(inspect_bytes(fx.blob, fx.blob_len, &r), 0);
	assert_int_equal(x509_load(r.certs[1].data, r.certs[1].len, &x), 0);
	snprintf(cert, sizeof(cert), "%s/ek.pem", fx.dir);
	assert_int_equal(x509_write_pem(cert, x), 0);
	X509_free(x);
	inspect_result_clear(&r);
	assert_int_equal(cli(fx.state, "--expect-cert", cert, NULL, NULL), 0);
	snprintf(p, sizeof(p), "%s/localca/issuercert.pem", fx.dir);
	assert_int_equal(cli(fx.state, "--expect-cert", p, "--json", NULL), 1);
	assert_int_equal(cli(fx.state, "--expect-cert", "/nonexistent", NULL, NULL), 2);

	/* broken state files: empty, truncated, corrupt, encrypted; a TPM 1.2 directory */
	snprintf(d, sizeof(d), "%s/bad", fx.dir);
	mkdir(d, 0700);
	snprintf(p, sizeof(p), "%s/%s", d, INSPECT_STATE_FILE);
	write_file(p, "", 0);
	assert_int_equal(cli(d, NULL, NULL, NULL, NULL), 1);
	write_file(p, fx.buf, fx.len / 2);
	assert_int_equal(cli(d, NULL, NULL, NULL, NULL), 1);
	write_file(p, fx.buf, 9);
	assert_int_equal(cli(d, NULL, NULL, NULL, NULL), 1);
	{
		/* a whole header and record, a truncated libtpms state inside */
		size_t n = 16 + fx.blob_len / 2;
		_cleanup_free_ uint8_t *b = malloc(n);

		assert_non_null(b);
		memcpy(b, fx.buf, n);
		put32(b + 6, (uint32_t)n);
		put32(b + 12, (uint32_t)(n - 16));
		write_file(p, b, n);
		assert_int_equal(cli(d, "--json", NULL, NULL, NULL), 1);
	}
	f_header(&f, 2, 1, 10, 0x01);
	f_tlv(&f, 2, "ciphertext", 10);
	f_close(&f);
	write_file(p, f.b, f.n);
	assert_int_equal(cli(d, NULL, NULL, NULL, NULL), 2);
	unlink(p);
	snprintf(p, sizeof(p), "%s/tpm-00.permall", d);
	write_file(p, "x", 1);
	assert_int_equal(cli(d, NULL, NULL, NULL, NULL), 2);
}

/* Truncating the real file at every length is refused by the header check. */
static void test_real_truncations(void **state)
{
	const uint8_t *p;
	size_t n;

	NEED_STATE();
	for (size_t i = 0; i < fx.len; i++)
		assert_int_equal(inspect_swtpm_blob(fx.buf, i, &p, &n), -EBADMSG);
	assert_int_equal(inspect_swtpm_blob(fx.buf, fx.len, &p, &n), 0);
	assert_int_equal(fx.buf[0], 2); /* swtpm 0.7 writes header version 2 */
	assert_int_equal(p - fx.buf, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blob_ok),
		cmocka_unit_test(test_blob_bad),
		cmocka_unit_test(test_child),
		cmocka_unit_test(test_msg),
		cmocka_unit_test(test_real_truncations),
		cmocka_unit_test(test_libtpms),
		cmocka_unit_test(test_mismatch),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_cli),
	};

	int r;

	tpm_quiet_tss_log();
	r = cmocka_run_group_tests(tests, setup_state, teardown_state);
	/* half a test is not a pass: the libtpms half needs swtpm_setup */
	if (r == 0 && !have_state) {
		fprintf(stderr, "SKIP: swtpm_setup / swtpm_localca not installed; libtpms tests not run\n");
		return KQ_TEST_SKIP;
	}
	return r;
}
