/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/tpmdev against a real swtpm, manufactured by swtpm_setup with an EK
 * certificate from a swtpm-localca CA that lives in the test's temp dir. Every
 * result is checked in software with lib/tpm and OpenSSL.
 *
 * Needs swtpm and swtpm_setup (swtpm-tools); exits 77 when they are missing.
 * Touches nothing outside its temp dir: swtpm_setup gets --config, and the
 * swtpm-localca configuration it names keeps the CA in the temp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>

#include "testlib.h"
#include "crypto/crypto.h"
#include "tpm/tpm.h"
#include "tpmdev/tpmdev-priv.h"
#include "tpmdev/tpmdev.h"
#include "payload/payload.h"

#define AK_RSA 0x81010010u
#define AK_ECC 0x81010011u
#define CA_RSA 0x81010020u
#define CA_ECC 0x81010021u
#define PAYLOAD_KEY 0x81010030u
#define FAKE_AK 0x81010030u
#define REPEAT 20

static struct {
	char *localca; /* swtpm_localca's path */
	char dir[256];
	char tcti[64];
	pid_t swtpm;
} env = { .swtpm = -1 };

#define OK(x)                                                                            \
	do {                                                                             \
		int _r = (x);                                                            \
		if (_r < 0)                                                              \
			fail_msg("%s: %d (%s)", #x, _r, kq_errmsg());                    \
	} while (0)

/* ---- the swtpm ---- */

/* The full path of prog in $PATH, NULL if absent. Caller frees. */
static char *in_path(const char *prog)
{
	const char *path = getenv("PATH");

	if (!path || !*path)
		path = "/usr/bin:/bin";
	for (const char *d = path; *d;) {
		const char *end = strchrnul(d, ':');
		char *p = NULL;

		if (asprintf(&p, "%.*s/%s", (int)(end - d), d, prog) < 0)
			abort();
		if (end > d && access(p, X_OK) == 0)
			return p;
		free(p);
		d = *end ? end + 1 : end;
	}
	return NULL;
}

static void write_text(const char *name, const char *fmt, ...) _printf_(2, 3);
static void write_text(const char *name, const char *fmt, ...)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0 || asprintf(&path, "%s/%s", env.dir, name) < 0)
		abort();
	if (kq_write_file(path, text, (size_t)n) < 0) {
		fprintf(stderr, "cannot write %s: %s\n", path, kq_errmsg());
		exit(1);
	}
}

/* Starts argv with stdout and stderr to log; the child dies with the test. */
static pid_t spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid < 0)
		abort();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void print_file(const char *path)
{
	uint8_t *buf;
	size_t len;

	if (kq_read_file(path, 1u << 20, &buf, &len) == 0) {
		fprintf(stderr, "--- %s\n%s\n---\n", path, (char *)buf);
		free(buf);
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* swtpm_setup --create-ek-cert with the CA in the temp dir. */
static int manufacture(void)
{
	_cleanup_free_ char *state = NULL, *conf = NULL, *log = NULL;
	int status;
	pid_t pid;

	if (asprintf(&state, "%s/state", env.dir) < 0 || asprintf(&conf, "%s/swtpm_setup.conf", env.dir) < 0 ||
	    asprintf(&log, "%s/swtpm_setup.log", env.dir) < 0)
		abort();
	if (mkdir(state, 0700) < 0)
		return -errno;
	write_text("swtpm-localca.conf",
		   "statedir = %1$s/ca\n"
		   "signingkey = %1$s/ca/signkey.pem\n"
		   "issuercert = %1$s/ca/issuercert.pem\n"
		   "certserial = %1$s/ca/certserial\n",
		   env.dir);
	write_text("swtpm-localca.options",
		   "--platform-manufacturer kumquat\n--platform-version 2.1\n--platform-model test\n");
	write_text("swtpm_setup.conf",
		   "create_certs_tool = %2$s\n"
		   "create_certs_tool_config = %1$s/swtpm-localca.conf\n"
		   "create_certs_tool_options = %1$s/swtpm-localca.options\n"
		   "active_pcr_banks = sha1,sha256\n",
		   env.dir, env.localca);
	pid = spawn((char *const[]){ "swtpm_setup", "--tpm2", "--tpmstate", state, "--create-ek-cert",
				     "--create-platform-cert", "--lock-nvram", "--config", conf, NULL },
		    log);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		print_file(log);
		return -EIO;
	}
	return 0;
}

/* Whether nothing listens on 127.0.0.1:port now (swtpm could still lose a race for it). */
static bool port_free(unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	bool ok;

	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static bool alive(pid_t pid)
{
	int status;

	return waitpid(pid, &status, WNOHANG) == 0;
}

static int start_swtpm(void)
{
	_cleanup_free_ char *state = NULL, *log = NULL;

	if (asprintf(&state, "dir=%s/state", env.dir) < 0 || asprintf(&log, "%s/swtpm.log", env.dir) < 0)
		abort();
	for (int attempt = 0; attempt < 10; attempt++) {
		char server[96], ctrl[96];
		uint16_t rnd;
		unsigned port;
		pid_t pid;

		if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
			abort();
		port = 20000 + (rnd % 20000) * 2;
		if (!port_free(port) || !port_free(port + 1))
			continue;
		snprintf(server, sizeof(server), "type=tcp,port=%u,bindaddr=127.0.0.1", port);
		snprintf(ctrl, sizeof(ctrl), "type=tcp,port=%u,bindaddr=127.0.0.1", port + 1);
		pid = spawn((char *const[]){ "swtpm", "socket", "--tpm2", "--server", server, "--ctrl", ctrl,
					     "--tpmstate", state, "--flags", "not-need-init,startup-clear", NULL },
			    log);
		snprintf(env.tcti, sizeof(env.tcti), "swtpm:host=127.0.0.1,port=%u", port);
		/*
		 * If the port was taken after all, swtpm exits at once; only a
		 * connection made while our swtpm is alive before and after is to it.
		 */
		for (int i = 0; i < 50; i++) {
			struct tpmdev *t = NULL;

			sleep_ms(100);
			if (!alive(pid)) {
				pid = -1;
				break;
			}
			if (tpmdev_open(env.tcti, &t) == 0) {
				tpmdev_close(t);
				if (!alive(pid)) {
					pid = -1;
					break;
				}
				env.swtpm = pid;
				return 0;
			}
		}
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	print_file(log);
	return -EIO;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(env.dir, sizeof(env.dir), "%s/kq-tpmdev.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(env.dir)) {
		fprintf(stderr, "mkdtemp: %m\n");
		return -1;
	}
	if (manufacture() < 0) {
		fprintf(stderr, "swtpm_setup failed\n");
		return -1;
	}
	if (start_swtpm() < 0) {
		fprintf(stderr, "could not start swtpm\n");
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	if (env.swtpm > 0) {
		kill(env.swtpm, SIGTERM);
		waitpid(env.swtpm, NULL, 0);
		env.swtpm = -1;
	}
	if (env.dir[0] && !getenv("KQ_KEEP_TMP"))
		nftw(env.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ---- helpers ---- */

static struct tpmdev *open_tpm(void)
{
	struct tpmdev *t = NULL;

	OK(tpmdev_open(env.tcti, &t));
	return t;
}

/* Handles of one type the TPM holds (transient objects, sessions). */
static unsigned count_handles(struct tpmdev *t, TPM2_HANDLE first)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	unsigned n;

	assert_int_equal(Esys_GetCapability(tpmdev_esys(t), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
					    TPM2_CAP_HANDLES, first, TPM2_MAX_CAP_HANDLES, &more, &cap),
			 TSS2_RC_SUCCESS);
	n = cap->data.handles.count;
	Esys_Free(cap);
	return n;
}

/* tpm2-tss's TPM2_TRANSIENT_FIRST etc. shift a signed int: spelled out here */
#define TRANSIENT_FIRST      0x80000000u
#define LOADED_SESSION_FIRST 0x02000000u
#define ACTIVE_SESSION_FIRST 0x03000000u

static void assert_nothing_loaded(struct tpmdev *t)
{
	assert_int_equal(count_handles(t, TRANSIENT_FIRST), 0);
	assert_int_equal(count_handles(t, LOADED_SESSION_FIRST), 0);
	assert_int_equal(count_handles(t, ACTIVE_SESSION_FIRST), 0);
}

static void assert_public_equal(const TPMT_PUBLIC *a, const TPMT_PUBLIC *b)
{
	uint8_t ba[sizeof(TPMT_PUBLIC)], bb[sizeof(TPMT_PUBLIC)];
	size_t la = 0, lb = 0;

	assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(a, ba, sizeof(ba), &la), TSS2_RC_SUCCESS);
	assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(b, bb, sizeof(bb), &lb), TSS2_RC_SUCCESS);
	assert_int_equal(la, lb);
	assert_memory_equal(ba, bb, la);
}

static void assert_name_equal(const TPM2B_NAME *a, const TPM2B_NAME *b)
{
	assert_int_equal(a->size, b->size);
	assert_memory_equal(a->name, b->name, a->size);
}

static EVP_PKEY *pkey_of(const TPM2B_PUBLIC *pub)
{
	EVP_PKEY *k = NULL;

	OK(tpm_public_to_pkey(&pub->publicArea, &k));
	return k;
}

static X509 *load_pem_cert(const char *rel)
{
	_cleanup_free_ char *path = NULL;
	X509 *x;
	FILE *f;

	if (asprintf(&path, "%s/%s", env.dir, rel) < 0)
		abort();
	f = fopen(path, "re");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static void sel_add(TPML_PCR_SELECTION *sel, uint16_t alg, uint32_t mask)
{
	TPMS_PCR_SELECTION *s = &sel->pcrSelections[sel->count++];

	s->hash = alg;
	s->sizeofSelect = 3;
	for (int i = 0; i < 3; i++)
		s->pcrSelect[i] = (uint8_t)(mask >> (8 * i));
}

static void random_bytes(void *buf, size_t len)
{
	assert_int_equal(RAND_bytes(buf, (int)len), 1);
}

/* ---- EK ---- */

static void test_ek_rsa(void **state)
{
	struct tpmdev *t = open_tpm();
	TPM2B_PUBLIC ek, again;
	TPMT_PUBLIC from_cert;
	_cleanup_free_ uint8_t *der = NULL;
	const uint8_t *p;
	size_t len;
	X509 *cert, *issuer, *root;

	OK(tpmdev_ek(t, TPMDEV_RSA2048, &ek));
	OK(tpmdev_ek_cert(t, TPMDEV_RSA2048, &der, &len));
	p = der;
	cert = d2i_X509(NULL, &p, (long)len);
	assert_non_null(cert);
	assert_ptr_equal(p, der + len);

	/* the certificate is the localca's, made for this EK */
	issuer = load_pem_cert("ca/issuercert.pem");
	root = load_pem_cert("ca/swtpm-localca-rootca-cert.pem");
	assert_int_equal(X509_check_issued(issuer, cert), X509_V_OK);
	assert_int_equal(X509_verify(cert, X509_get0_pubkey(issuer)), 1);
	assert_int_equal(X509_verify(issuer, X509_get0_pubkey(root)), 1);
	OK(tpm_ek_default_public(X509_get0_pubkey(cert), &from_cert));
	assert_public_equal(&ek.publicArea, &from_cert);

	/* the certificate fits one NV read on swtpm: read it again in small chunks */
	{
		_cleanup_free_ uint8_t *der2 = NULL;
		size_t len2;

		assert_true(t->nv_buffer_max >= 512);
		t->nv_buffer_max = 100;
		OK(tpmdev_ek_cert(t, TPMDEV_RSA2048, &der2, &len2));
		assert_int_equal(len2, len);
		assert_memory_equal(der2, der, len);
	}

	/* swtpm_setup's EK is the TCG default one: recreating it from our template gives the same key */
	OK(tpmdev_evict(t, TPMDEV_EK_RSA_HANDLE));
	assert_int_equal(tpmdev_evict(t, TPMDEV_EK_RSA_HANDLE), -ENOENT);
	OK(tpmdev_ek(t, TPMDEV_RSA2048, &again));
	assert_public_equal(&again.publicArea, &ek.publicArea);
	assert_nothing_loaded(t);
	tpmdev_close(t);

	/* persisted */
	t = open_tpm();
	memset(&again, 0, sizeof(again));
	OK(tpmdev_ek(t, TPMDEV_RSA2048, &again));
	assert_public_equal(&again.publicArea, &ek.publicArea);
	tpmdev_close(t);

	X509_free(cert);
	X509_free(issuer);
	X509_free(root);
}

static void test_ek_ecc(void **state)
{
	struct tpmdev *t = open_tpm();
	TPM2B_PUBLIC ek, again;
	TPMT_PUBLIC tmpl;
	EVP_PKEY *k;
	uint8_t *der = NULL;
	size_t len;
	bool exists;

	/* swtpm_setup made only the RSA EK and its certificate */
	assert_int_equal(tpmdev_ek_cert(t, TPMDEV_ECC_P256, &der, &len), -ENOENT);
	assert_null(der);
	OK(tpmdev_handle_exists(t, TPMDEV_EK_ECC_HANDLE, &exists));
	assert_false(exists);

	OK(tpmdev_ek(t, TPMDEV_ECC_P256, &ek));
	OK(tpmdev_handle_exists(t, TPMDEV_EK_ECC_HANDLE, &exists));
	assert_true(exists);
	k = pkey_of(&ek);
	OK(tpm_ek_default_public(k, &tmpl));
	assert_public_equal(&ek.publicArea, &tmpl);
	EVP_PKEY_free(k);

	/* a primary key: the same seed and template give the same key */
	OK(tpmdev_evict(t, TPMDEV_EK_ECC_HANDLE));
	OK(tpmdev_ek(t, TPMDEV_ECC_P256, &again));
	assert_public_equal(&again.publicArea, &ek.publicArea);
	assert_nothing_loaded(t);
	tpmdev_close(t);
}

/* ---- AK ---- */

static void check_ak(enum tpmdev_key_alg alg, TPM2_HANDLE h)
{
	struct tpmdev *t = open_tpm();
	TPM2B_PUBLIC ak, again;
	TPM2B_NAME name, name2, computed;

	OK(tpmdev_ak(t, alg, h, &ak, &name));
	OK(tpm_public_check_ak(&ak.publicArea));
	assert_int_equal(ak.publicArea.type, alg == TPMDEV_RSA2048 ? TPM2_ALG_RSA : TPM2_ALG_ECC);
	assert_false(ak.publicArea.objectAttributes & TPMA_OBJECT_DECRYPT);
	assert_true(ak.publicArea.objectAttributes & TPMA_OBJECT_USERWITHAUTH);
	OK(tpm_public_name(&ak.publicArea, &computed));
	assert_name_equal(&computed, &name);
	assert_nothing_loaded(t);
	tpmdev_close(t);

	/* a fresh context finds the persisted key rather than making another */
	t = open_tpm();
	OK(tpmdev_ak(t, alg, h, &again, &name2));
	assert_name_equal(&name2, &name);
	assert_public_equal(&again.publicArea, &ak.publicArea);
	tpmdev_close(t);
}

/* A primary key in the owner hierarchy with the AK's template, persisted at h. */
static void persist_fake_ak(struct tpmdev *t, TPM2_HANDLE h)
{
	const TPM2B_SENSITIVE_CREATE sens = { 0 };
	const TPM2B_DATA outside = { 0 };
	const TPML_PCR_SELECTION no_pcrs = { 0 };
	TPM2B_PUBLIC tmpl = { 0 };
	TPMT_PUBLIC *p = &tmpl.publicArea;
	ESYS_TR obj = ESYS_TR_NONE, pers = ESYS_TR_NONE;

	p->type = TPM2_ALG_RSA;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
			      TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
	p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
	p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
	p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
	p->parameters.rsaDetail.keyBits = 2048;
	assert_int_equal(Esys_CreatePrimary(tpmdev_esys(t), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
					    ESYS_TR_NONE, &sens, &tmpl, &outside, &no_pcrs, &obj, NULL, NULL, NULL,
					    NULL),
			 TSS2_RC_SUCCESS);
	assert_int_equal(Esys_EvictControl(tpmdev_esys(t), ESYS_TR_RH_OWNER, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE,
					   ESYS_TR_NONE, h, &pers),
			 TSS2_RC_SUCCESS);
	assert_int_equal(Esys_FlushContext(tpmdev_esys(t), obj), TSS2_RC_SUCCESS);
	assert_int_equal(Esys_TR_Close(tpmdev_esys(t), &pers), TSS2_RC_SUCCESS);
}

static void test_ak(void **state)
{
	struct tpmdev *t;
	TPM2B_PUBLIC pub;

	check_ak(TPMDEV_RSA2048, AK_RSA);
	check_ak(TPMDEV_ECC_P256, AK_ECC);

	t = open_tpm();
	/* a handle holding another kind of key is not taken over */
	assert_int_equal(tpmdev_ak(t, TPMDEV_ECC_P256, AK_RSA, &pub, NULL), -EEXIST);
	assert_int_equal(tpmdev_ca_key(t, TPMDEV_RSA2048, AK_RSA, &pub, NULL), -EEXIST);
	/* a key that looks like an AK but is not under the EK is refused */
	persist_fake_ak(t, FAKE_AK);
	assert_int_equal(tpmdev_ak(t, TPMDEV_RSA2048, FAKE_AK, &pub, NULL), -EEXIST);
	assert_non_null(strstr(kq_errmsg(), "not a child of the EK"));
	OK(tpmdev_evict(t, FAKE_AK));
	/* platform range, not a persistent handle */
	assert_int_equal(tpmdev_ak(t, TPMDEV_RSA2048, 0x81800000u, &pub, NULL), -EINVAL);
	assert_int_equal(tpmdev_ak(t, TPMDEV_RSA2048, 0x80000000u, &pub, NULL), -EINVAL);
	assert_nothing_loaded(t);
	tpmdev_close(t);
}

/* ---- credentials ---- */

static void check_activate(struct tpmdev *t, enum tpmdev_key_alg ek_alg, TPM2_HANDLE ak_handle,
			   enum tpmdev_key_alg ak_alg)
{
	TPM2B_PUBLIC ek, ak;
	TPM2B_NAME name, other;
	TPM2B_ID_OBJECT blob;
	TPM2B_ENCRYPTED_SECRET seed;
	TPM2B_DIGEST got;
	uint8_t secret[32];

	OK(tpmdev_ek(t, ek_alg, &ek));
	OK(tpmdev_ak(t, ak_alg, ak_handle, &ak, &name));
	random_bytes(secret, sizeof(secret));
	OK(tpm_make_credential(&ek.publicArea, &name, secret, sizeof(secret), &blob, &seed));
	OK(tpmdev_activate_credential(t, ek_alg, ak_handle, &blob, &seed, &got));
	assert_int_equal(got.size, sizeof(secret));
	assert_memory_equal(got.buffer, secret, sizeof(secret));

	/* a credential for another name does not activate */
	other = name;
	other.name[other.size - 1] ^= 1;
	OK(tpm_make_credential(&ek.publicArea, &other, secret, sizeof(secret), &blob, &seed));
	assert_int_equal(tpmdev_activate_credential(t, ek_alg, ak_handle, &blob, &seed, &got), -EBADMSG);
	assert_non_null(strstr(kq_errmsg(), "TPM2_ActivateCredential"));
	assert_nothing_loaded(t);
}

static void test_activate(void **state)
{
	struct tpmdev *t = open_tpm();
	TPM2B_PUBLIC ek_ecc, ak;
	TPM2B_NAME name;
	TPM2B_ID_OBJECT blob;
	TPM2B_ENCRYPTED_SECRET seed;
	TPM2B_DIGEST got;
	uint8_t secret[16] = "kumquat-secret!";

	check_activate(t, TPMDEV_RSA2048, AK_RSA, TPMDEV_RSA2048);
	check_activate(t, TPMDEV_ECC_P256, AK_ECC, TPMDEV_ECC_P256);
	/* any loaded key can be activated with any EK */
	check_activate(t, TPMDEV_RSA2048, AK_ECC, TPMDEV_ECC_P256);

	/* a credential for the ECC EK does not open with the RSA EK */
	OK(tpmdev_ek(t, TPMDEV_ECC_P256, &ek_ecc));
	OK(tpmdev_ak(t, TPMDEV_RSA2048, AK_RSA, &ak, &name));
	OK(tpm_make_credential(&ek_ecc.publicArea, &name, secret, sizeof(secret), &blob, &seed));
	assert_true(tpmdev_activate_credential(t, TPMDEV_RSA2048, AK_RSA, &blob, &seed, &got) < 0);
	OK(tpmdev_activate_credential(t, TPMDEV_ECC_P256, AK_RSA, &blob, &seed, &got));
	assert_memory_equal(got.buffer, secret, sizeof(secret));
	/* nothing at the handle */
	assert_int_equal(tpmdev_activate_credential(t, TPMDEV_RSA2048, 0x81010099u, &blob, &seed, &got), -ENOENT);
	assert_nothing_loaded(t);
	tpmdev_close(t);
}

/* ---- quotes and PCRs ---- */

static void quote_and_verify(struct tpmdev *t, TPM2_HANDLE ak_handle, enum tpmdev_key_alg alg,
			     const TPML_PCR_SELECTION *sel, struct tpm_pcrs *ret_pcrs)
{
	TPM2B_PUBLIC ak;
	TPMT_SIGNATURE sig;
	TPMS_ATTEST a;
	_cleanup_free_ uint8_t *attest = NULL;
	uint8_t nonce[32], wrong[32];
	size_t len;
	EVP_PKEY *k;

	OK(tpmdev_ak(t, alg, ak_handle, &ak, NULL));
	k = pkey_of(&ak);
	random_bytes(nonce, sizeof(nonce));
	OK(tpmdev_quote(t, ak_handle, sel, nonce, sizeof(nonce), &attest, &len, &sig, ret_pcrs));
	OK(tpm_quote_verify(&(struct tpm_quote_check){ .attest = attest, .attest_len = len, .sig = &sig,
						       .key = k, .nonce = nonce, .nonce_len = sizeof(nonce),
						       .pcrs = ret_pcrs },
			    &a));
	assert_int_equal(a.type, TPM2_ST_ATTEST_QUOTE);
	assert_int_equal(sig.sigAlg, alg == TPMDEV_RSA2048 ? TPM2_ALG_RSASSA : TPM2_ALG_ECDSA);
	memcpy(wrong, nonce, sizeof(wrong));
	wrong[0] ^= 0x80;
	assert_int_equal(tpm_quote_verify(&(struct tpm_quote_check){ .attest = attest, .attest_len = len,
								     .sig = &sig, .key = k, .nonce = wrong,
								     .nonce_len = sizeof(wrong) },
					  NULL),
			 TPM_E_NONCE);
	EVP_PKEY_free(k);
}

static void test_quote(void **state)
{
	struct tpmdev *t = open_tpm();
	TPML_PCR_SELECTION sel = { 0 }, bad = { 0 };
	struct tpm_pcrs before, after, read;
	const struct tpm_pcr_bank *b1, *b2;
	uint8_t digest[32], expect[32];

	/* 24 + 9 PCRs: more than one TPM2_PCR_Read answer */
	sel_add(&sel, TPM2_ALG_SHA256, 0xffffff);
	sel_add(&sel, TPM2_ALG_SHA1, 0x0100ff);
	quote_and_verify(t, AK_RSA, TPMDEV_RSA2048, &sel, &before);
	assert_int_equal(before.nbanks, 2);
	assert_int_equal(before.bank[0].alg, TPM2_ALG_SHA256);
	assert_int_equal(before.bank[0].mask, 0xffffff);
	assert_int_equal(before.bank[1].mask, 0x0100ff);

	random_bytes(digest, sizeof(digest));
	b1 = tpm_pcrs_bank(&before, TPM2_ALG_SHA256);
	memcpy(expect, b1->value[16], 32);
	OK(kq_extend(KQ_ALG_SHA256, expect, digest));
	OK(tpmdev_pcr_extend(t, 16, TPM2_ALG_SHA256, digest));

	quote_and_verify(t, AK_ECC, TPMDEV_ECC_P256, &sel, &after);
	b2 = tpm_pcrs_bank(&after, TPM2_ALG_SHA256);
	assert_memory_equal(b2->value[16], expect, 32);
	assert_memory_not_equal(b2->value[16], b1->value[16], 32);
	assert_memory_equal(b2->value[0], b1->value[0], 32);
	/* the SHA-1 bank was not extended */
	assert_memory_equal(tpm_pcrs_bank(&after, TPM2_ALG_SHA1)->value[16],
			    tpm_pcrs_bank(&before, TPM2_ALG_SHA1)->value[16], 20);

	OK(tpmdev_pcr_read(t, &sel, &read));
	assert_memory_equal(tpm_pcrs_bank(&read, TPM2_ALG_SHA256)->value[16], expect, 32);

	/* bad selections and arguments */
	sel_add(&bad, TPM2_ALG_SHA384, 0x1);
	assert_int_equal(tpmdev_pcr_read(t, &bad, &read), -ENOENT); /* bank not allocated */
	memset(&bad, 0, sizeof(bad));
	sel_add(&bad, TPM2_ALG_SHA256, 0x1);
	bad.pcrSelections[0].sizeofSelect = 4;
	bad.pcrSelections[0].pcrSelect[3] = 1; /* PCR 24 */
	assert_int_equal(tpmdev_pcr_read(t, &bad, &read), -EINVAL);
	memset(&bad, 0, sizeof(bad));
	sel_add(&bad, TPM2_ALG_SHA256, 0x1);
	sel_add(&bad, TPM2_ALG_SHA256, 0x2);
	assert_int_equal(tpmdev_pcr_read(t, &bad, &read), -EINVAL); /* bank twice */
	memset(&bad, 0, sizeof(bad));
	assert_int_equal(tpmdev_pcr_read(t, &bad, &read), -EINVAL); /* empty */
	assert_int_equal(tpmdev_pcr_extend(t, 24, TPM2_ALG_SHA256, digest), -EINVAL);
	{
		uint8_t big[TPMDEV_MAX_QUALIFYING + 1] = { 0 }, *att = NULL;
		TPMT_SIGNATURE sig;
		size_t len;

		assert_int_equal(tpmdev_quote(t, AK_RSA, &sel, big, sizeof(big), &att, &len, &sig, &read), -EINVAL);
		assert_int_equal(tpmdev_quote(t, 0x81010099u, &sel, big, 8, &att, &len, &sig, &read), -ENOENT);
		assert_null(att);
	}
	assert_nothing_loaded(t);
	tpmdev_close(t);
}

/* ---- the vTPM-CA key ---- */

static void check_ca_key(enum tpmdev_key_alg alg, TPM2_HANDLE h, TPM2_HANDLE ak_handle)
{
	struct tpmdev *t = open_tpm();
	TPM2B_PUBLIC ca, ak, again;
	TPM2B_NAME name, name2, computed;
	TPMT_SIGNATURE sig;
	TPMS_ATTEST a;
	_cleanup_free_ uint8_t *attest = NULL, *der_sig = NULL;
	uint8_t qual[40], digest[32];
	const char *tbs = "a certificate's TBSCertificate";
	size_t len, sig_len;
	EVP_PKEY *ca_key, *ak_key;
	EVP_PKEY_CTX *vctx;
	const TPMA_OBJECT must = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
				 TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT;

	OK(tpmdev_ca_key(t, alg, h, &ca, &name));
	assert_int_equal(ca.publicArea.objectAttributes & must, must);
	assert_false(ca.publicArea.objectAttributes & TPMA_OBJECT_RESTRICTED);
	assert_false(ca.publicArea.objectAttributes & TPMA_OBJECT_DECRYPT);
	assert_int_equal(tpm_public_check_ak(&ca.publicArea), -EPERM); /* not restricted: no AK */
	OK(tpm_public_name(&ca.publicArea, &computed));
	assert_name_equal(&computed, &name);

	/* the AK certifies it */
	OK(tpmdev_ak(t, alg, ak_handle, &ak, NULL));
	random_bytes(qual, sizeof(qual));
	OK(tpmdev_certify(t, h, ak_handle, qual, sizeof(qual), &attest, &len, &sig));
	ak_key = pkey_of(&ak);
	OK(tpm_signature_verify(ak_key, &sig, attest, len));
	OK(tpm_attest_unmarshal(attest, len, &a));
	assert_int_equal(a.magic, TPM2_GENERATED_VALUE);
	assert_int_equal(a.type, TPM2_ST_ATTEST_CERTIFY);
	assert_name_equal(&a.attested.certify.name, &name);
	assert_int_equal(a.extraData.size, sizeof(qual));
	assert_memory_equal(a.extraData.buffer, qual, sizeof(qual));
	attest[len / 2] ^= 1;
	assert_int_equal(tpm_signature_verify(ak_key, &sig, attest, len), TPM_E_SIGNATURE);

	/* it signs arbitrary digests, verifiable with OpenSSL as X.509 signatures are */
	OK(kq_hash(KQ_ALG_SHA256, tbs, strlen(tbs), digest));
	OK(tpmdev_sign_digest(t, h, TPM2_ALG_SHA256, digest, sizeof(digest), &der_sig, &sig_len));
	ca_key = pkey_of(&ca);
	vctx = EVP_PKEY_CTX_new(ca_key, NULL);
	assert_non_null(vctx);
	assert_int_equal(EVP_PKEY_verify_init(vctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(vctx, EVP_sha256()), 1);
	if (alg == TPMDEV_RSA2048) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(vctx, RSA_PKCS1_PADDING), 1);
		assert_int_equal(sig_len, 256);
	}
	assert_int_equal(EVP_PKEY_verify(vctx, der_sig, sig_len, digest, sizeof(digest)), 1);
	digest[0] ^= 1;
	assert_int_not_equal(EVP_PKEY_verify(vctx, der_sig, sig_len, digest, sizeof(digest)), 1);
	EVP_PKEY_CTX_free(vctx);

	/* the restricted AK must not sign a digest it has no ticket for; wrong sizes and hashes */
	{
		uint8_t *s = NULL;
		size_t sl;

		assert_true(tpmdev_sign_digest(t, ak_handle, TPM2_ALG_SHA256, digest, 32, &s, &sl) < 0);
		assert_int_equal(tpmdev_sign_digest(t, h, TPM2_ALG_SHA256, digest, 31, &s, &sl), -EINVAL);
		assert_int_equal(tpmdev_sign_digest(t, h, TPM2_ALG_SHA1, digest, 20, &s, &sl), -EINVAL);
		assert_null(s);
	}
	assert_nothing_loaded(t);
	tpmdev_close(t);

	/* persisted */
	t = open_tpm();
	OK(tpmdev_ca_key(t, alg, h, &again, &name2));
	assert_name_equal(&name2, &name);
	assert_public_equal(&again.publicArea, &ca.publicArea);
	tpmdev_close(t);

	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(ak_key);
}

static void test_ca_key(void **state)
{
	struct tpmdev *t;
	TPM2B_PUBLIC pub;

	check_ca_key(TPMDEV_RSA2048, CA_RSA, AK_RSA);
	check_ca_key(TPMDEV_ECC_P256, CA_ECC, AK_ECC);

	t = open_tpm();
	/* the AK is no CA key, nor a CA key an AK */
	assert_int_equal(tpmdev_ca_key(t, TPMDEV_RSA2048, AK_RSA, &pub, NULL), -EEXIST);
	assert_int_equal(tpmdev_ak(t, TPMDEV_RSA2048, CA_RSA, &pub, NULL), -EEXIST);
	assert_nothing_loaded(t);
	tpmdev_close(t);
}

/* The payload key: decryption only, certified by the AK; a payload sealed to it opens only through this TPM. */
static void test_payload_key(void **state)
{
	struct tpmdev *t = open_tpm();
	TPM2B_PUBLIC pub, ak, again;
	TPM2B_NAME name, name2, computed;
	TPMT_SIGNATURE sig;
	TPMS_ATTEST a;
	_cleanup_free_ uint8_t *attest = NULL, *plain = NULL;
	struct payload_sealed sl;
	uint8_t u[64], v[64], k[PAYLOAD_KEY_LEN], qual[32], *s = NULL;
	size_t len, ulen, vlen, plen, sig_len;
	const char *id = "5d8a2f0e-2b1c-4c3d-9e8f-0a1b2c3d4e5f", *msg = "the LUKS passphrase";
	EVP_PKEY *key, *ak_key;

	OK(tpmdev_payload_key(t, PAYLOAD_KEY, &pub, &name));
	assert_true(pub.publicArea.objectAttributes & TPMA_OBJECT_DECRYPT);
	assert_false(pub.publicArea.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT);
	assert_false(pub.publicArea.objectAttributes & TPMA_OBJECT_RESTRICTED);
	assert_true(pub.publicArea.objectAttributes & TPMA_OBJECT_FIXEDTPM);
	assert_int_equal(pub.publicArea.parameters.rsaDetail.scheme.scheme, TPM2_ALG_OAEP);
	OK(tpm_public_name(&pub.publicArea, &computed));
	assert_name_equal(&computed, &name);

	/* certified by the AK */
	OK(tpmdev_ak(t, TPMDEV_RSA2048, AK_RSA, &ak, NULL));
	random_bytes(qual, sizeof(qual));
	OK(tpmdev_certify(t, PAYLOAD_KEY, AK_RSA, qual, sizeof(qual), &attest, &len, &sig));
	ak_key = pkey_of(&ak);
	OK(tpm_signature_verify(ak_key, &sig, attest, len));
	OK(tpm_attest_unmarshal(attest, len, &a));
	assert_int_equal(a.type, TPM2_ST_ATTEST_CERTIFY);
	assert_name_equal(&a.attested.certify.name, &name);

	/* sealed in software to its public part, opened with U and V decrypted in the TPM */
	key = pkey_of(&pub);
	OK(payload_seal(key, id, (const uint8_t *)msg, strlen(msg), &sl));
	OK(tpmdev_rsa_decrypt(t, PAYLOAD_KEY, PAYLOAD_LABEL_U, sl.enc_u, sl.enc_u_len, u, sizeof(u), &ulen));
	OK(tpmdev_rsa_decrypt(t, PAYLOAD_KEY, PAYLOAD_LABEL_V, sl.enc_v, sl.enc_v_len, v, sizeof(v), &vlen));
	assert_int_equal(ulen, PAYLOAD_KEY_LEN);
	assert_int_equal(vlen, PAYLOAD_KEY_LEN);
	OK(payload_combine(u, v, id, sl.auth_tag, k));
	OK(payload_open(k, id, sl.sealed, sl.sealed_len, &plain, &plen));
	assert_int_equal(plen, strlen(msg));
	assert_memory_equal(plain, msg, plen);
	/* U under V's label (a swap), a changed U: the TPM refuses */
	assert_true(tpmdev_rsa_decrypt(t, PAYLOAD_KEY, PAYLOAD_LABEL_V, sl.enc_u, sl.enc_u_len, u, sizeof(u), &ulen) < 0);
	sl.enc_u[10] ^= 1;
	assert_true(tpmdev_rsa_decrypt(t, PAYLOAD_KEY, PAYLOAD_LABEL_U, sl.enc_u, sl.enc_u_len, u, sizeof(u), &ulen) < 0);
	/* it signs nothing */
	assert_true(tpmdev_sign_digest(t, PAYLOAD_KEY, TPM2_ALG_SHA256, qual, 32, &s, &sig_len) < 0);
	assert_null(s);
	/* no other key passes for it, nor it for another */
	assert_int_equal(tpmdev_ca_key(t, TPMDEV_RSA2048, PAYLOAD_KEY, &again, NULL), -EEXIST);
	assert_int_equal(tpmdev_payload_key(t, AK_RSA, &again, NULL), -EEXIST);
	assert_nothing_loaded(t);
	tpmdev_close(t);

	/* persisted */
	t = open_tpm();
	OK(tpmdev_payload_key(t, PAYLOAD_KEY, &again, &name2));
	assert_name_equal(&name2, &name);
	tpmdev_close(t);
	payload_sealed_clear(&sl);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ak_key);
}

/* ---- no leaks of TPM objects or sessions ---- */

static void test_repeat(void **state)
{
	struct tpmdev *t = open_tpm();
	TPML_PCR_SELECTION sel = { 0 };
	TPM2B_PUBLIC ek, ak, ca;
	TPM2B_NAME ak_name, ca_name;
	uint8_t secret[32], nonce[20], digest[32];

	sel_add(&sel, TPM2_ALG_SHA256, 0x01ffff);
	random_bytes(secret, sizeof(secret));
	random_bytes(nonce, sizeof(nonce));
	random_bytes(digest, sizeof(digest));

	for (int i = 0; i < REPEAT; i++) {
		OK(tpmdev_ek(t, TPMDEV_RSA2048, &ek));
		OK(tpmdev_ek(t, TPMDEV_ECC_P256, &ek));
	}
	assert_nothing_loaded(t);
	for (int i = 0; i < REPEAT; i++) {
		_cleanup_free_ uint8_t *der = NULL;
		size_t len;

		OK(tpmdev_ek_cert(t, TPMDEV_RSA2048, &der, &len));
	}
	assert_nothing_loaded(t);
	for (int i = 0; i < REPEAT; i++)
		OK(tpmdev_ak(t, TPMDEV_RSA2048, AK_RSA, &ak, &ak_name));
	assert_nothing_loaded(t);
	OK(tpmdev_ek(t, TPMDEV_RSA2048, &ek));
	for (int i = 0; i < REPEAT; i++) {
		TPM2B_ID_OBJECT blob;
		TPM2B_ENCRYPTED_SECRET seed;
		TPM2B_DIGEST got;

		OK(tpm_make_credential(&ek.publicArea, &ak_name, secret, sizeof(secret), &blob, &seed));
		OK(tpmdev_activate_credential(t, TPMDEV_RSA2048, AK_RSA, &blob, &seed, &got));
		assert_memory_equal(got.buffer, secret, sizeof(secret));
		/* failures must clean up too */
		blob.credential[blob.size - 1] ^= 1;
		assert_true(tpmdev_activate_credential(t, TPMDEV_RSA2048, AK_RSA, &blob, &seed, &got) < 0);
	}
	assert_nothing_loaded(t);
	for (int i = 0; i < REPEAT; i++) {
		_cleanup_free_ uint8_t *attest = NULL;
		TPMT_SIGNATURE sig;
		struct tpm_pcrs pcrs;
		size_t len;

		OK(tpmdev_pcr_extend(t, 16, TPM2_ALG_SHA256, digest));
		OK(tpmdev_quote(t, AK_RSA, &sel, nonce, sizeof(nonce), &attest, &len, &sig, &pcrs));
		OK(tpmdev_pcr_read(t, &sel, &pcrs));
	}
	assert_nothing_loaded(t);
	for (int i = 0; i < REPEAT; i++) {
		_cleanup_free_ uint8_t *attest = NULL, *s = NULL;
		TPMT_SIGNATURE sig;
		size_t len, sl;

		OK(tpmdev_ca_key(t, TPMDEV_ECC_P256, CA_ECC, &ca, &ca_name));
		OK(tpmdev_certify(t, CA_ECC, AK_RSA, nonce, sizeof(nonce), &attest, &len, &sig));
		OK(tpmdev_sign_digest(t, CA_ECC, TPM2_ALG_SHA256, digest, sizeof(digest), &s, &sl));
	}
	assert_nothing_loaded(t);
	tpmdev_close(t);

	/* reopening after close */
	for (int i = 0; i < REPEAT; i++) {
		t = open_tpm();
		OK(tpmdev_ak(t, TPMDEV_RSA2048, AK_RSA, &ak, &ca_name));
		assert_name_equal(&ca_name, &ak_name);
		tpmdev_close(t);
	}
}

/* ---- errors ---- */

static void test_errors(void **state)
{
	struct tpmdev *t = NULL;

	tpmdev_close(NULL);
	/* nothing listens on port 1 */
	assert_true(tpmdev_open("swtpm:host=127.0.0.1,port=1", &t) < 0);
	assert_null(t);
	assert_non_null(strstr(kq_errmsg(), "swtpm:host=127.0.0.1,port=1"));
	assert_true(tpmdev_open("no-such-tcti", &t) < 0);
	assert_null(t);

	t = open_tpm();
	assert_int_equal(tpmdev_evict(t, 0x81010099u), -ENOENT);
	assert_int_equal(tpmdev_evict(t, 0x01c00002u), -EINVAL);
	assert_int_equal(tpmdev_ek(t, (enum tpmdev_key_alg)7, NULL), -EINVAL);
	assert_nothing_loaded(t);
	tpmdev_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ek_rsa),  cmocka_unit_test(test_ek_ecc), cmocka_unit_test(test_ak),
		cmocka_unit_test(test_activate), cmocka_unit_test(test_quote), cmocka_unit_test(test_ca_key),
		cmocka_unit_test(test_payload_key),
		cmocka_unit_test(test_repeat),  cmocka_unit_test(test_errors),
	};

	const char *progs[] = { "swtpm", "swtpm_setup", "swtpm_localca" };
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		_cleanup_free_ char *p = in_path(progs[i]);

		if (!p) {
			printf("SKIP: %s is not installed (Debian packages swtpm, swtpm-tools)\n", progs[i]);
			return KQ_TEST_SKIP;
		}
	}
	env.localca = in_path("swtpm_localca");
	tpm_quiet_tss_log();
	r = cmocka_run_group_tests(tests, group_setup, group_teardown);
	free(env.localca);
	return r;
}
