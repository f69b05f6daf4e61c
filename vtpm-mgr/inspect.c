/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-vtpm-mgr inspect: loads a vTPM's saved state with libtpms, in a
 * forked worker, and shows its EKs and the EK certificates in its NV. The
 * file formats are described in inspect.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "inspect.h"
#include "vtpm-mgr.h"
#include "json/json.h"
#include "tpm/tpm.h"
#include "util/util.h"
#include "x509/x509.h"

static inline void X509_freep(X509 **p) { X509_free(*p); }
static inline void EVP_PKEY_freep(EVP_PKEY **p) { EVP_PKEY_free(*p); }
static inline void json_putp(struct json_object **p) { json_object_put(*p); }

const struct inspect_slot inspect_slots[INSPECT_MAX_EKS] = {
	{ 0x81010001, 0x01c00002, "RSA 2048" },
	{ 0x81010002, 0x01c0000a, "ECC P-256" },
	{ 0x8101001c, 0x01c0001c, "RSA 3072" },
	{ 0x81010016, 0x01c00016, "ECC P-384" },
};

static const struct inspect_slot *slot_by_ek(uint32_t handle)
{
	for (size_t i = 0; i < ARRAY_SIZE(inspect_slots); i++)
		if (inspect_slots[i].ek_handle == handle)
			return &inspect_slots[i];
	return NULL;
}

static const struct inspect_slot *slot_by_nv(uint32_t nv_index)
{
	for (size_t i = 0; i < ARRAY_SIZE(inspect_slots); i++)
		if (inspect_slots[i].nv_index == nv_index)
			return &inspect_slots[i];
	return NULL;
}

/* Bytes from a file or a worker, made safe for one line on a terminal. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

/* ---- swtpm's state file ---- */

#define SWTPM_HDR_LEN 10u
#define SWTPM_HDR_VERSION 2u
#define SWTPM_FLAG_ENCRYPTED 0x01u
#define SWTPM_FLAG_MIGRATION_ENCRYPTED 0x02u
#define SWTPM_TAG_DATA 1u
#define SWTPM_TAG_ENCRYPTED_DATA 2u
#define LIBTPMS_PERSISTENT_ALL_MAGIC 0xab364723u

/* The libtpms PERSISTENT_ALL blob starts with a be16 version and this magic. */
static bool is_libtpms_blob(const uint8_t *p, size_t n)
{
	struct kq_cur c = kq_cur_init(p, n);
	uint16_t version;
	uint32_t magic;

	return kq_cur_u16be(&c, &version) == 0 && kq_cur_u32be(&c, &magic) == 0 &&
	       magic == LIBTPMS_PERSISTENT_ALL_MAGIC;
}

int inspect_swtpm_blob(const uint8_t *buf, size_t len, const uint8_t **ret, size_t *ret_len)
{
	struct kq_cur c = kq_cur_init(buf, len);
	const uint8_t *data = NULL, *p;
	size_t data_len = 0;
	uint8_t version, min_version;
	uint16_t hdrsize, flags;
	uint32_t totlen;

	if (len == 0)
		return kq_err(-EBADMSG, "the state file is empty");
	/* swtpm before its header wrote the bare blob; the two cannot be confused,
	 * as the blob's first bytes would be a header with min_version > 2. */
	if (is_libtpms_blob(buf, len)) {
		*ret = buf;
		*ret_len = len;
		return 0;
	}
	if (kq_cur_u8(&c, &version) < 0 || kq_cur_u8(&c, &min_version) < 0 ||
	    kq_cur_u16be(&c, &hdrsize) < 0 || kq_cur_u16be(&c, &flags) < 0 ||
	    kq_cur_u32be(&c, &totlen) < 0)
		return kq_err(-EBADMSG, "the state file is truncated (%zu bytes, no complete swtpm header)", len);
	/* first, as it is what sets a state file apart from other bytes */
	if (totlen != len)
		return kq_err(-EBADMSG,
			      "the state file is %zu bytes but its header says %u (truncated, or not an swtpm state)",
			      len, totlen);
	if (min_version > SWTPM_HDR_VERSION)
		return kq_err(-ENOTSUP, "the state file needs swtpm header version %u (this reads up to %u)",
			      min_version, SWTPM_HDR_VERSION);
	if (min_version == 0 || version < min_version)
		return kq_err(-EBADMSG, "not an swtpm state file (header version %u, minimum %u)", version,
			      min_version);
	if (hdrsize != SWTPM_HDR_LEN)
		return kq_err(-EBADMSG, "not an swtpm state file (header size %u)", hdrsize);
	if (flags & (SWTPM_FLAG_ENCRYPTED | SWTPM_FLAG_MIGRATION_ENCRYPTED))
		return kq_err(-ENOKEY, "the state is encrypted (swtpm --key); encrypted states are not supported");

	if (version == 1) {
		data = buf + c.off;
		data_len = kq_cur_left(&c);
	} else {
		/* every TLV must be whole, as swtpm's reader requires of those it passes */
		while (kq_cur_left(&c) > 0) {
			uint16_t tag;
			uint32_t n;

			if (kq_cur_u16be(&c, &tag) < 0 || kq_cur_u32be(&c, &n) < 0 ||
			    kq_cur_bytes(&c, n, &p) < 0)
				return kq_err(-EBADMSG, "the state file is truncated or corrupt (a record overruns it)");
			if (tag == SWTPM_TAG_ENCRYPTED_DATA)
				return kq_err(-ENOKEY, "the state is encrypted (swtpm --key); encrypted states are not supported");
			if (tag == SWTPM_TAG_DATA && !data) {
				data = p;
				data_len = n;
			}
		}
		if (!data)
			return kq_err(-EBADMSG, "the state file holds no TPM state (no data record)");
	}
	if (!is_libtpms_blob(data, data_len))
		return kq_err(-EBADMSG, "the state file does not hold a libtpms TPM 2.0 state");
	*ret = data;
	*ret_len = data_len;
	return 0;
}

/* ---- the worker process ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void kill_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Reads what the child writes until EOF or the deadline; -ETIMEDOUT, -EPROTO. */
static int read_message(int fd, uint64_t deadline, uint8_t **ret, size_t *ret_len)
{
	uint8_t hdr[4];
	size_t got = 0, need = sizeof(hdr), msg_len = 0;
	_cleanup_free_ uint8_t *msg = NULL;

	for (;;) {
		uint64_t now = now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint8_t extra;
		ssize_t n;
		int r;

		if (now >= deadline)
			return kq_err(-ETIMEDOUT, "the libtpms worker did not answer in time");
		r = poll(&pfd, 1, (int)(deadline - now > 1000000 ? 1000000 : deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kq_err(-errno, "poll: %m");
		if (r == 0)
			continue;
		if (got < need) {
			uint8_t *dst = msg ? msg + (got - sizeof(hdr)) : hdr + got;
			n = read(fd, dst, need - got);
		} else {
			n = read(fd, &extra, 1); /* only EOF may follow the message */
		}
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return kq_err(-errno, "reading from the libtpms worker: %m");
		if (n == 0) {
			if (got < need)
				return kq_err(-ENODATA, "the libtpms worker ended without a complete answer");
			break;
		}
		if (got >= need)
			return kq_err(-EPROTO, "the libtpms worker sent more than its answer");
		got += (size_t)n;
		if (!msg && got == sizeof(hdr)) {
			msg_len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
			if (msg_len > INSPECT_MAX_MSG)
				return kq_err(-EPROTO, "the libtpms worker's answer is too large (%zu bytes)", msg_len);
			msg = malloc(msg_len ? msg_len : 1);
			if (!msg)
				return kq_err(-ENOMEM, "out of memory");
			need += msg_len;
		}
	}
	*ret = TAKE_PTR(msg);
	*ret_len = msg_len;
	return 0;
}

int inspect_run_child(inspect_child_fn fn, void *arg, unsigned timeout_ms, uint8_t **ret,
		      size_t *ret_len)
{
	uint64_t deadline = now_ms() + timeout_ms;
	_cleanup_free_ uint8_t *msg = NULL;
	size_t msg_len = 0;
	int fds[2], r, status;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return kq_err(-errno, "pipe: %m");
	/* what is buffered would otherwise be written twice */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(fds[0]);
		close(fds[1]);
		return kq_err(r, "fork: %s", strerror(-r));
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		/* no worker outlives an inspect that was killed */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
			_exit(6);
		close(fds[0]);
		if (null < 0 || dup2(null, STDOUT_FILENO) < 0)
			_exit(3);
		close(null);
		fn(fds[1], arg);
		_exit(0);
	}
	close(fds[1]);
	r = read_message(fds[0], deadline, &msg, &msg_len);
	close(fds[0]);
	if (r < 0 && r != -ENODATA) {
		kill_reap(pid);
		return r;
	}
	/* the child closed the pipe: it has exited or is about to */
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			r = kq_err(-errno, "waitpid: %m");
			kill_reap(pid);
			return r;
		}
		if (now_ms() >= deadline) {
			kill_reap(pid);
			return kq_err(-ETIMEDOUT, "the libtpms worker did not exit in time");
		}
		nanosleep(&(struct timespec){ .tv_nsec = 5 * 1000000 }, NULL);
	}
	if (WIFSIGNALED(status))
		return kq_err(-EPROTO, "the libtpms worker was killed by signal %d (%s)", WTERMSIG(status),
			      strsignal(WTERMSIG(status)));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return kq_err(-EPROTO, "the libtpms worker failed (exit status %d)", WEXITSTATUS(status));
	if (r < 0)
		return -EPROTO; /* the message of the short answer stays */
	*ret = TAKE_PTR(msg);
	*ret_len = msg_len;
	return 0;
}

/* -- in the child -- */

/* The answer being built: be32 length, then records. */
struct msg {
	uint8_t *buf;
	size_t len;
	bool overflow;
};

static void msg_put(struct msg *m, uint8_t type, uint32_t handle, const void *data, size_t n)
{
	uint8_t *p;

	if (m->overflow || n > INSPECT_MAX_MSG || m->len - 4 + 9 + n > INSPECT_MAX_MSG) {
		m->overflow = true;
		return;
	}
	p = m->buf + m->len;
	p[0] = type;
	p[1] = (uint8_t)(handle >> 24);
	p[2] = (uint8_t)(handle >> 16);
	p[3] = (uint8_t)(handle >> 8);
	p[4] = (uint8_t)handle;
	p[5] = (uint8_t)(n >> 24);
	p[6] = (uint8_t)(n >> 16);
	p[7] = (uint8_t)(n >> 8);
	p[8] = (uint8_t)n;
	if (n)
		memcpy(p + 9, data, n);
	m->len += 9 + n;
}

static void msg_text(struct msg *m, uint8_t type, const char *fmt, ...) _printf_(3, 4);
static void msg_text(struct msg *m, uint8_t type, const char *fmt, ...)
{
	char s[INSPECT_MAX_NOTE_LEN];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	msg_put(m, type, 0, s, strnlen(s, sizeof(s)));
}

static void msg_send(struct msg *m, int fd)
{
	size_t body = m->len - 4, off = 0;

	m->buf[0] = (uint8_t)(body >> 24);
	m->buf[1] = (uint8_t)(body >> 16);
	m->buf[2] = (uint8_t)(body >> 8);
	m->buf[3] = (uint8_t)body;
	while (off < m->len) {
		ssize_t n = write(fd, m->buf + off, m->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(4);
		off += (size_t)n;
	}
}

/* A command being marshalled; writes past the end are counted, not made. */
struct cmd {
	uint8_t b[64];
	size_t n;
};

static void cmd_u8(struct cmd *c, uint8_t v)
{
	if (c->n < sizeof(c->b))
		c->b[c->n] = v;
	c->n++;
}
static void cmd_u16(struct cmd *c, uint16_t v)
{
	cmd_u8(c, (uint8_t)(v >> 8));
	cmd_u8(c, (uint8_t)v);
}
static void cmd_u32(struct cmd *c, uint32_t v)
{
	cmd_u16(c, (uint16_t)(v >> 16));
	cmd_u16(c, (uint16_t)v);
}
static void cmd_begin(struct cmd *c, uint16_t tag, uint32_t cc)
{
	c->n = 0;
	cmd_u16(c, tag);
	cmd_u32(c, 0); /* size, set by tpm_exec */
	cmd_u32(c, cc);
}
/* An empty password session: TPM_RS_PW, no nonce, no attributes, empty auth. */
static void cmd_pw_session(struct cmd *c)
{
	cmd_u32(c, 9);
	cmd_u32(c, TPM2_RS_PW);
	cmd_u16(c, 0);
	cmd_u8(c, 0);
	cmd_u16(c, 0);
}

struct tpm_io {
	unsigned char *rbuf;
	uint32_t rbufsize;
};

/*
 * Runs a command through libtpms; on success *ret_rc is the TPM's response
 * code and (*ret_p, *ret_n) what follows the response header.
 */
static int tpm_exec(struct tpm_io *t, struct cmd *c, uint32_t *ret_rc, const uint8_t **ret_p, size_t *ret_n)
{
	uint32_t rlen = 0, size, rc;
	size_t off = 0;
	TPM_RESULT res;
	TPM2_ST tag;

	if (c->n > sizeof(c->b))
		return kq_err(-EOVERFLOW, "command too long");
	c->b[2] = (uint8_t)(c->n >> 24);
	c->b[3] = (uint8_t)(c->n >> 16);
	c->b[4] = (uint8_t)(c->n >> 8);
	c->b[5] = (uint8_t)c->n;
	res = TPMLIB_Process(&t->rbuf, &rlen, &t->rbufsize, c->b, (uint32_t)c->n);
	if (res != TPM_SUCCESS)
		return kq_err(-EIO, "TPMLIB_Process failed (0x%x)", res);
	if (!t->rbuf || rlen > t->rbufsize)
		return kq_err(-EBADMSG, "libtpms returned an inconsistent response buffer");
	if (Tss2_MU_TPM2_ST_Unmarshal(t->rbuf, rlen, &off, &tag) != TSS2_RC_SUCCESS ||
	    Tss2_MU_UINT32_Unmarshal(t->rbuf, rlen, &off, &size) != TSS2_RC_SUCCESS ||
	    Tss2_MU_UINT32_Unmarshal(t->rbuf, rlen, &off, &rc) != TSS2_RC_SUCCESS || size != rlen)
		return kq_err(-EBADMSG, "malformed response header from libtpms");
	*ret_rc = rc;
	*ret_p = t->rbuf + off;
	*ret_n = rlen - off;
	return 0;
}

/* TPM_RC_HANDLE in format 1, whichever handle it names: the object or index does not exist. */
static bool rc_is_no_handle(uint32_t rc)
{
	return (rc & (TPM2_RC_FMT1 | 0x3fu)) == TPM2_RC_HANDLE;
}

static int tpm_startup(struct tpm_io *t)
{
	struct cmd c;
	const uint8_t *p;
	size_t n;
	uint32_t rc;
	int r;

	cmd_begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_Startup);
	cmd_u16(&c, TPM2_SU_CLEAR);
	r = tpm_exec(t, &c, &rc, &p, &n);
	if (r < 0)
		return r;
	if (rc != TPM2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE)
		return kq_err(-EIO, "TPM2_Startup failed: TPM rc 0x%x%s", rc,
			      rc == TPM2_RC_FAILURE ? " (libtpms is in failure mode: the state is corrupt?)" : "");
	return 0;
}

/* TPM_PT_NV_BUFFER_MAX, or 512 if the TPM does not say (every TPM 2.0 reads that much). */
static uint16_t tpm_nv_buffer_max(struct tpm_io *t)
{
	TPMS_CAPABILITY_DATA cap = { 0 };
	struct cmd c;
	const uint8_t *p;
	size_t n, off = 0;
	uint32_t rc;
	uint8_t more;

	cmd_begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_GetCapability);
	cmd_u32(&c, TPM2_CAP_TPM_PROPERTIES);
	cmd_u32(&c, TPM2_PT_NV_BUFFER_MAX);
	cmd_u32(&c, 1);
	if (tpm_exec(t, &c, &rc, &p, &n) < 0 || rc != TPM2_RC_SUCCESS ||
	    Tss2_MU_BYTE_Unmarshal(p, n, &off, &more) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPMS_CAPABILITY_DATA_Unmarshal(p, n, &off, &cap) != TSS2_RC_SUCCESS ||
	    cap.capability != TPM2_CAP_TPM_PROPERTIES || cap.data.tpmProperties.count < 1 ||
	    cap.data.tpmProperties.tpmProperty[0].property != TPM2_PT_NV_BUFFER_MAX ||
	    cap.data.tpmProperties.tpmProperty[0].value < 64)
		return 512;
	if (cap.data.tpmProperties.tpmProperty[0].value > TPM2_MAX_NV_BUFFER_SIZE)
		return TPM2_MAX_NV_BUFFER_SIZE;
	return (uint16_t)cap.data.tpmProperties.tpmProperty[0].value;
}

/* The EK's public area, as the TPM marshalled it; absent handles are skipped. */
static int read_ek(struct tpm_io *t, struct msg *m, const struct inspect_slot *s)
{
	TPM2B_PUBLIC pub = { 0 };
	TPM2B_NAME name = { 0 }, qn = { 0 };
	struct cmd c;
	const uint8_t *p;
	size_t n, off = 0, pub_end;
	uint32_t rc;
	int r;

	cmd_begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_ReadPublic);
	cmd_u32(&c, s->ek_handle);
	r = tpm_exec(t, &c, &rc, &p, &n);
	if (r < 0)
		return r;
	if (rc_is_no_handle(rc))
		return 0;
	if (rc != TPM2_RC_SUCCESS) {
		msg_text(m, INSPECT_REC_NOTE, "EK 0x%08x: TPM2_ReadPublic failed: TPM rc 0x%x", s->ek_handle, rc);
		return 0;
	}
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(p, n, &off, &pub) != TSS2_RC_SUCCESS) {
		msg_text(m, INSPECT_REC_NOTE, "EK 0x%08x: malformed TPM2_ReadPublic response", s->ek_handle);
		return 0;
	}
	pub_end = off;
	if (Tss2_MU_TPM2B_NAME_Unmarshal(p, n, &off, &name) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_NAME_Unmarshal(p, n, &off, &qn) != TSS2_RC_SUCCESS || off != n) {
		msg_text(m, INSPECT_REC_NOTE, "EK 0x%08x: malformed TPM2_ReadPublic response", s->ek_handle);
		return 0;
	}
	msg_put(m, INSPECT_REC_EK, s->ek_handle, p, pub_end);
	return 0;
}

/* One NV_Read of want bytes at offset into out. */
static int nv_read_chunk(struct tpm_io *t, uint32_t auth, uint32_t index, uint16_t offset, uint16_t want,
			 uint8_t *out, uint32_t *ret_rc)
{
	TPM2B_MAX_NV_BUFFER data = { 0 };
	TPMS_AUTH_RESPONSE ar = { 0 };
	struct cmd c;
	const uint8_t *p;
	size_t n, off = 0;
	uint32_t param_size;
	int r;

	cmd_begin(&c, TPM2_ST_SESSIONS, TPM2_CC_NV_Read);
	cmd_u32(&c, auth);
	cmd_u32(&c, index);
	cmd_pw_session(&c);
	cmd_u16(&c, want);
	cmd_u16(&c, offset);
	r = tpm_exec(t, &c, ret_rc, &p, &n);
	if (r < 0 || *ret_rc != TPM2_RC_SUCCESS)
		return r;
	if (Tss2_MU_UINT32_Unmarshal(p, n, &off, &param_size) != TSS2_RC_SUCCESS ||
	    param_size > n - off)
		return kq_err(-EBADMSG, "malformed TPM2_NV_Read response");
	if (Tss2_MU_TPM2B_MAX_NV_BUFFER_Unmarshal(p, off + param_size, &off, &data) != TSS2_RC_SUCCESS ||
	    off != 4 + (size_t)param_size || data.size != want ||
	    Tss2_MU_TPMS_AUTH_RESPONSE_Unmarshal(p, n, &off, &ar) != TSS2_RC_SUCCESS || off != n)
		return kq_err(-EBADMSG, "malformed TPM2_NV_Read response");
	memcpy(out, data.buffer, want);
	return 0;
}

/* The EK certificate in its NV index; absent indices are skipped, problems noted. */
static int read_cert(struct tpm_io *t, struct msg *m, const struct inspect_slot *s, uint16_t chunk)
{
	TPM2B_NV_PUBLIC nvp = { 0 };
	TPM2B_NAME name = { 0 };
	struct cmd c;
	const uint8_t *p;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t n, off = 0;
	uint32_t rc, attrs, auth;
	uint16_t size;
	int r;

	cmd_begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_NV_ReadPublic);
	cmd_u32(&c, s->nv_index);
	r = tpm_exec(t, &c, &rc, &p, &n);
	if (r < 0)
		return r;
	if (rc_is_no_handle(rc))
		return 0;
	if (rc != TPM2_RC_SUCCESS) {
		msg_text(m, INSPECT_REC_NOTE, "NV 0x%08x: TPM2_NV_ReadPublic failed: TPM rc 0x%x", s->nv_index, rc);
		return 0;
	}
	if (Tss2_MU_TPM2B_NV_PUBLIC_Unmarshal(p, n, &off, &nvp) != TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_NAME_Unmarshal(p, n, &off, &name) != TSS2_RC_SUCCESS || off != n ||
	    nvp.nvPublic.nvIndex != s->nv_index) {
		msg_text(m, INSPECT_REC_NOTE, "NV 0x%08x: malformed TPM2_NV_ReadPublic response", s->nv_index);
		return 0;
	}
	attrs = nvp.nvPublic.attributes;
	size = nvp.nvPublic.dataSize;
	if ((attrs & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT != TPM2_NT_ORDINARY) {
		msg_text(m, INSPECT_REC_NOTE, "NV 0x%08x: not an ordinary index (attributes 0x%08x)", s->nv_index, attrs);
		return 0;
	}
	if (!(attrs & TPMA_NV_WRITTEN)) {
		msg_text(m, INSPECT_REC_NOTE, "NV 0x%08x: defined but never written", s->nv_index);
		return 0;
	}
	if (size == 0 || size > INSPECT_MAX_NV) {
		msg_text(m, INSPECT_REC_NOTE, "NV 0x%08x: size %u is outside 1..%u", s->nv_index, size, INSPECT_MAX_NV);
		return 0;
	}
	/* Platform authorization is empty after TPM2_Startup(CLEAR), whatever the
	 * guest did; the index's own or the owner's empty auth come next. */
	if (attrs & TPMA_NV_PPREAD)
		auth = TPM2_RH_PLATFORM;
	else if (attrs & TPMA_NV_AUTHREAD)
		auth = s->nv_index;
	else if (attrs & TPMA_NV_OWNERREAD)
		auth = TPM2_RH_OWNER;
	else {
		msg_text(m, INSPECT_REC_NOTE, "NV 0x%08x: readable only with a policy (attributes 0x%08x)",
			 s->nv_index, attrs);
		return 0;
	}
	buf = malloc(size);
	if (!buf)
		return kq_err(-ENOMEM, "out of memory");
	for (uint16_t done = 0; done < size;) {
		uint16_t want = (uint16_t)(size - done < chunk ? size - done : chunk);

		r = nv_read_chunk(t, auth, s->nv_index, done, want, buf + done, &rc);
		if (r < 0) {
			msg_text(m, INSPECT_REC_NOTE, "NV 0x%08x: %s", s->nv_index, kq_errmsg());
			return 0;
		}
		if (rc != TPM2_RC_SUCCESS) {
			msg_text(m, INSPECT_REC_NOTE, "NV 0x%08x: TPM2_NV_Read at %u failed: TPM rc 0x%x",
				 s->nv_index, done, rc);
			return 0;
		}
		done = (uint16_t)(done + want);
	}
	msg_put(m, INSPECT_REC_CERT, s->nv_index, buf, size);
	return 0;
}

/* libtpms' error lines go to a memory file, to be part of our error message. */
static int child_log_fd = -1;

/* What libtpms logged, on one line: "a; b" (at most size - 1 bytes). */
static void child_log(char *out, size_t size)
{
	static const char prefix[] = "libtpms/tpm2: ";
	char buf[512];
	ssize_t n = child_log_fd >= 0 ? pread(child_log_fd, buf, sizeof(buf) - 1, 0) : -1;
	size_t o = 0;

	out[0] = '\0';
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *line = buf, *end; *line && o + 1 < size; line = end) {
		end = strchrnul(line, '\n');
		if (strncmp(line, prefix, sizeof(prefix) - 1) == 0)
			line += sizeof(prefix) - 1;
		if (end > line) {
			int w = snprintf(out + o, size - o, "%s%.*s", o ? "; " : "", (int)(end - line), line);

			if (w < 0)
				break;
			o += (size_t)w < size - o ? (size_t)w : size - o - 1;
		}
		if (*end)
			end++;
	}
}

/* libtpms reads its permanent state from here, and its writes go nowhere. */
static const uint8_t *child_blob;
static size_t child_blob_len;

static TPM_RESULT cb_nvram_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_load(unsigned char **data, uint32_t *length, uint32_t tpm_number, const char *name)
{
	*data = NULL;
	*length = 0;
	/* no volatile state or savestate: libtpms starts as after a power cycle */
	if (tpm_number != 0 || strcmp(name, TPM_PERMANENT_ALL_NAME) != 0)
		return TPM_RETRY;
	*data = malloc(child_blob_len); /* libtpms frees it */
	if (!*data)
		return TPM_FAIL;
	memcpy(*data, child_blob, child_blob_len);
	*length = (uint32_t)child_blob_len;
	return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_store(const unsigned char *data, uint32_t length, uint32_t tpm_number,
				 const char *name)
{
	return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_delete(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
	return TPM_SUCCESS;
}

void inspect_child_libtpms(int wfd, void *arg)
{
	const struct inspect_blob *blob = arg;
	struct libtpms_callbacks cbs = {
		.sizeOfStruct = sizeof(cbs),
		.tpm_nvram_init = cb_nvram_init,
		.tpm_nvram_loaddata = cb_nvram_load,
		.tpm_nvram_storedata = cb_nvram_store,
		.tpm_nvram_deletename = cb_nvram_delete,
	};
	struct tpm_io t = { 0 };
	struct msg m = { .len = 4 };
	TPM_RESULT res;
	uint16_t chunk;
	int r = 0;

	m.buf = malloc(4 + INSPECT_MAX_MSG);
	if (!m.buf)
		_exit(5);
	child_blob = blob->data;
	child_blob_len = blob->len;
	if (blob->len > UINT32_MAX) {
		msg_text(&m, INSPECT_REC_ERROR, "the state is too large");
		goto out;
	}
	child_log_fd = memfd_create("libtpms-log", MFD_CLOEXEC);
	if (child_log_fd >= 0)
		TPMLIB_SetDebugFD(child_log_fd);
	res = TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
	if (res == TPM_SUCCESS)
		res = TPMLIB_RegisterCallbacks(&cbs);
	if (res != TPM_SUCCESS) {
		msg_text(&m, INSPECT_REC_ERROR, "libtpms setup failed (0x%x)", res);
		goto out;
	}
	res = TPMLIB_MainInit();
	if (res != TPM_SUCCESS) {
		char log[300];

		child_log(log, sizeof(log));
		msg_text(&m, INSPECT_REC_ERROR,
			 "libtpms %u.%u.%u cannot load the state (0x%x; corrupt, or from a newer libtpms)%s%s",
			 TPMLIB_GetVersion() >> 16, (TPMLIB_GetVersion() >> 8) & 0xff, TPMLIB_GetVersion() & 0xff,
			 res, log[0] ? ": " : "", log);
		goto out;
	}
	r = tpm_startup(&t);
	if (r < 0)
		goto fail;
	chunk = tpm_nv_buffer_max(&t);
	for (size_t i = 0; i < ARRAY_SIZE(inspect_slots) && r == 0; i++) {
		r = read_ek(&t, &m, &inspect_slots[i]);
		if (r == 0)
			r = read_cert(&t, &m, &inspect_slots[i], chunk);
	}
fail:
	if (r < 0) {
		char log[300];

		child_log(log, sizeof(log));
		m.len = 4; /* the error alone */
		m.overflow = false;
		msg_text(&m, INSPECT_REC_ERROR, "%s%s%s", kq_errmsg(), log[0] ? "; libtpms: " : "", log);
	}
out:
	if (m.overflow) {
		m.len = 4;
		m.overflow = false;
		msg_text(&m, INSPECT_REC_ERROR, "the answer is too large");
	}
	msg_send(&m, wfd);
	_exit(0);
}

/* ---- in the parent: the child's answer ---- */

void inspect_result_clear(struct inspect_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_certs; i++)
		free(r->certs[i].data);
	for (size_t i = 0; i < r->n_notes; i++)
		free(r->notes[i]);
	memset(r, 0, sizeof(*r));
}

static char *text_dup(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0')
			s[i] = '?';
	sanitize(s);
	return s;
}

int inspect_msg_parse(const uint8_t *buf, size_t len, struct inspect_result *ret)
{
	struct inspect_result res = { 0 };
	struct kq_cur c = kq_cur_init(buf, len);
	int r = 0;

	while (kq_cur_left(&c) > 0) {
		const struct inspect_slot *slot;
		const uint8_t *d;
		uint32_t handle, n;
		uint8_t type;

		if (kq_cur_u8(&c, &type) < 0 || kq_cur_u32be(&c, &handle) < 0 || kq_cur_u32be(&c, &n) < 0 ||
		    kq_cur_bytes(&c, n, &d) < 0) {
			r = kq_err(-EBADMSG, "the libtpms worker's answer is truncated");
			goto out;
		}
		switch (type) {
		case INSPECT_REC_EK: {
			TPM2B_PUBLIC pub = { 0 };

			slot = slot_by_ek(handle);
			if (!slot || res.n_eks == INSPECT_MAX_EKS) {
				r = kq_err(-EBADMSG, "the libtpms worker sent an unexpected EK 0x%08x", handle);
				goto out;
			}
			for (size_t i = 0; i < res.n_eks; i++)
				if (res.eks[i].handle == handle) {
					r = kq_err(-EBADMSG, "the libtpms worker sent EK 0x%08x twice", handle);
					goto out;
				}
			r = tpm_public_unmarshal(d, n, &pub);
			if (r < 0) {
				r = kq_err_ctx(r, "EK 0x%08x", handle);
				goto out;
			}
			res.eks[res.n_eks].handle = handle;
			res.eks[res.n_eks].pub = pub.publicArea;
			res.n_eks++;
			break;
		}
		case INSPECT_REC_CERT:
			slot = slot_by_nv(handle);
			if (!slot || res.n_certs == INSPECT_MAX_CERTS || n == 0 || n > INSPECT_MAX_NV) {
				r = kq_err(-EBADMSG, "the libtpms worker sent an unexpected NV index 0x%08x", handle);
				goto out;
			}
			for (size_t i = 0; i < res.n_certs; i++)
				if (res.certs[i].nv_index == handle) {
					r = kq_err(-EBADMSG, "the libtpms worker sent NV 0x%08x twice", handle);
					goto out;
				}
			res.certs[res.n_certs].data = malloc(n);
			if (!res.certs[res.n_certs].data) {
				r = kq_err(-ENOMEM, "out of memory");
				goto out;
			}
			memcpy(res.certs[res.n_certs].data, d, n);
			res.certs[res.n_certs].len = n;
			res.certs[res.n_certs].nv_index = handle;
			res.n_certs++;
			break;
		case INSPECT_REC_NOTE:
			if (n > INSPECT_MAX_NOTE_LEN || res.n_notes == INSPECT_MAX_NOTES) {
				r = kq_err(-EBADMSG, "the libtpms worker sent too many or too long notes");
				goto out;
			}
			res.notes[res.n_notes] = text_dup(d, n);
			if (!res.notes[res.n_notes]) {
				r = kq_err(-ENOMEM, "out of memory");
				goto out;
			}
			res.n_notes++;
			break;
		case INSPECT_REC_ERROR: {
			_cleanup_free_ char *s = text_dup(d, n > INSPECT_MAX_NOTE_LEN ? INSPECT_MAX_NOTE_LEN : n);

			r = kq_err(-EPROTO, "%s", s ? s : "the libtpms worker failed");
			goto out;
		}
		default:
			r = kq_err(-EBADMSG, "the libtpms worker sent a record of unknown type %u", type);
			goto out;
		}
	}
	*ret = res;
	return 0;
out:
	inspect_result_clear(&res);
	return r;
}

/* ---- the report ---- */

/* The DER certificate in an NV index's contents: after the TCG NV header, if
 * any, the outer SEQUENCE; NV padding left behind. */
static int nv_der(const uint8_t *data, size_t len, const uint8_t **ret, size_t *ret_len)
{
	const unsigned char *start = data, *p;
	long body;
	int tag, cls, inf;

	if (len >= 5 && data[0] == 0x10 && data[1] == 0x01 && data[2] == 0x00) {
		start += 5;
		len -= 5;
	}
	if (len > LONG_MAX)
		return -EBADMSG;
	p = start;
	inf = ASN1_get_object(&p, &body, &tag, &cls, (long)len);
	if ((inf & 0x80) || !(inf & V_ASN1_CONSTRUCTED) || (inf & 1) ||
	    tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL) {
		ERR_clear_error();
		return -EBADMSG;
	}
	*ret = start;
	*ret_len = (size_t)(p - start) + (size_t)body;
	return 0;
}

static const char *curve_name(uint16_t curve)
{
	switch (curve) {
	case TPM2_ECC_NIST_P256:
		return "secp256r1";
	case TPM2_ECC_NIST_P384:
		return "secp384r1";
	case TPM2_ECC_NIST_P521:
		return "secp521r1";
	default:
		return NULL;
	}
}

static struct json_object *json_handle(uint32_t h)
{
	char s[16];

	snprintf(s, sizeof(s), "0x%08x", h);
	return json_object_new_string(s);
}

/* json_object_object_add that owns v and reports a NULL v (ENOMEM). */
static int add(struct json_object *o, const char *k, struct json_object *v)
{
	if (!v || json_object_object_add(o, k, v) < 0) {
		json_object_put(v);
		return kq_err(-ENOMEM, "out of memory");
	}
	return 0;
}

static int ek_json(const TPMT_PUBLIC *pub, uint32_t handle, struct json_object **ret)
{
	_cleanup_(json_putp) struct json_object *o = json_object_new_object();
	_cleanup_(json_putp) struct json_object *kp = json_object_new_object();
	struct json_object *inner = json_object_new_object();
	TPM2B_NAME name;
	char alg[16];
	int r;

	if (!o || !kp || !inner) {
		json_object_put(inner);
		return kq_err(-ENOMEM, "out of memory");
	}
	if (add(o, "handle", json_handle(handle)) < 0)
		goto nomem;
	if (pub->type == TPM2_ALG_RSA) {
		const TPM2B_PUBLIC_KEY_RSA *n = &pub->unique.rsa;
		uint32_t e = pub->parameters.rsaDetail.exponent ? pub->parameters.rsaDetail.exponent : 65537;

		if (add(o, "alg", json_object_new_string("rsa")) < 0 ||
		    add(o, "bits", json_object_new_int(pub->parameters.rsaDetail.keyBits)) < 0 ||
		    add(inner, "n", json_new_hex(n->buffer, n->size)) < 0 ||
		    add(inner, "e", json_object_new_int64(e)) < 0 || add(kp, "rsa", TAKE_PTR(inner)) < 0)
			goto nomem;
	} else if (pub->type == TPM2_ALG_ECC) {
		const char *curve = curve_name(pub->parameters.eccDetail.curveID);
		char cid[16];
		const TPMS_ECC_POINT *pt = &pub->unique.ecc;

		snprintf(cid, sizeof(cid), "0x%04x", pub->parameters.eccDetail.curveID);
		if (add(o, "alg", json_object_new_string("ecc")) < 0 ||
		    add(inner, "curve", json_object_new_string(curve ? curve : cid)) < 0 ||
		    add(inner, "x", json_new_hex(pt->x.buffer, pt->x.size)) < 0 ||
		    add(inner, "y", json_new_hex(pt->y.buffer, pt->y.size)) < 0 ||
		    add(kp, "ecc", TAKE_PTR(inner)) < 0)
			goto nomem;
	} else {
		json_object_put(TAKE_PTR(inner));
		snprintf(alg, sizeof(alg), "0x%04x", pub->type);
		if (add(o, "alg", json_object_new_string(alg)) < 0)
			goto nomem;
	}
	if (add(o, "public", TAKE_PTR(kp)) < 0)
		goto nomem;
	r = tpm_public_name(pub, &name);
	if (r == 0 && add(o, "name", json_new_hex(name.name, name.size)) < 0)
		goto nomem;
	*ret = TAKE_PTR(o);
	return 0;
nomem:
	json_object_put(inner);
	return kq_err(-ENOMEM, "out of memory");
}

static const TPMT_PUBLIC *find_ek(const struct inspect_result *r, uint32_t handle)
{
	for (size_t i = 0; i < r->n_eks; i++)
		if (r->eks[i].handle == handle)
			return &r->eks[i].pub;
	return NULL;
}

/* Whether cert is for the EK of its NV index's slot: 0, -ENOENT (no EK there), -EKEYREJECTED. */
static int cert_matches_ek(const struct inspect_result *r, uint32_t nv_index, X509 *cert)
{
	const struct inspect_slot *slot = slot_by_nv(nv_index);
	const TPMT_PUBLIC *pub = slot ? find_ek(r, slot->ek_handle) : NULL;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
	int e;

	if (!pub)
		return kq_err(-ENOENT, "there is no EK at 0x%08x", slot ? slot->ek_handle : 0);
	e = tpm_public_to_pkey(pub, &pkey);
	if (e < 0)
		return kq_err_ctx(-EKEYREJECTED, "EK 0x%08x", slot->ek_handle);
	e = x509_matches_pkey(cert, pkey);
	if (e < 0)
		return kq_err(-EKEYREJECTED, "the certificate is not for EK 0x%08x", slot->ek_handle);
	return 0;
}

static int cert_json(const struct inspect_result *r, size_t i, struct json_object **ret, bool *ret_ok)
{
	const uint8_t *data = r->certs[i].data, *der;
	size_t len = r->certs[i].len, der_len;
	uint32_t nv_index = r->certs[i].nv_index;
	const struct inspect_slot *slot = slot_by_nv(nv_index);
	_cleanup_(json_putp) struct json_object *o = json_object_new_object();
	_cleanup_(json_putp) struct json_object *desc = NULL;
	_cleanup_(X509_freep) X509 *cert = NULL;
	struct json_object *v;
	int e;

	if (!o || add(o, "nv_index", json_handle(nv_index)) < 0 ||
	    add(o, "ek_handle", json_handle(slot ? slot->ek_handle : 0)) < 0)
		return kq_err(-ENOMEM, "out of memory");
	*ret_ok = false;
	if (nv_der(data, len, &der, &der_len) < 0 || x509_load(data, len, &cert) < 0) {
		if (add(o, "der_b64", json_new_base64(data, len)) < 0 ||
		    add(o, "matches_ek", json_object_new_boolean(0)) < 0 ||
		    add(o, "error", json_object_new_string("not an X.509 certificate")) < 0)
			return kq_err(-ENOMEM, "out of memory");
		*ret = TAKE_PTR(o);
		return 0;
	}
	if (add(o, "der_b64", json_new_base64(der, der_len)) < 0)
		return kq_err(-ENOMEM, "out of memory");
	if (x509_describe(cert, &desc) == 0) {
		static const char *const keys[][2] = {
			{ "subject", "subject" }, { "issuer", "issuer" }, { "sha256", "sha256_fingerprint" },
		};
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
			if (json_object_object_get_ex(desc, keys[k][1], &v) &&
			    add(o, keys[k][0], json_object_get(v)) < 0)
				return kq_err(-ENOMEM, "out of memory");
	}
	e = cert_matches_ek(r, nv_index, cert);
	if (add(o, "matches_ek", json_object_new_boolean(e == 0)) < 0)
		return kq_err(-ENOMEM, "out of memory");
	if (e < 0 && add(o, "error", json_object_new_string(kq_errmsg())) < 0)
		return kq_err(-ENOMEM, "out of memory");
	*ret_ok = e == 0;
	*ret = TAKE_PTR(o);
	return 0;
}

int inspect_report(const char *state_dir, const struct inspect_result *r, struct json_object **ret,
		   bool *ret_ok)
{
	_cleanup_(json_putp) struct json_object *o = json_object_new_object();
	struct json_object *eks, *certs;
	bool ok = r->n_notes == 0;
	int e;

	if (!o || add(o, "state_dir", json_object_new_string(state_dir)) < 0 ||
	    add(o, "eks", json_object_new_array()) < 0 || add(o, "ek_certs", json_object_new_array()) < 0)
		return kq_err(-ENOMEM, "out of memory");
	json_object_object_get_ex(o, "eks", &eks);
	json_object_object_get_ex(o, "ek_certs", &certs);
	for (size_t i = 0; i < r->n_eks; i++) {
		struct json_object *ek = NULL;

		e = ek_json(&r->eks[i].pub, r->eks[i].handle, &ek);
		if (e < 0)
			return e;
		if (json_object_array_add(eks, ek) < 0) {
			json_object_put(ek);
			return kq_err(-ENOMEM, "out of memory");
		}
	}
	for (size_t i = 0; i < r->n_certs; i++) {
		struct json_object *c = NULL;
		bool c_ok;

		e = cert_json(r, i, &c, &c_ok);
		if (e < 0)
			return e;
		if (json_object_array_add(certs, c) < 0) {
			json_object_put(c);
			return kq_err(-ENOMEM, "out of memory");
		}
		ok = ok && c_ok;
	}
	if (r->n_notes) {
		struct json_object *notes = json_object_new_array();

		if (add(o, "notes", notes) < 0)
			return kq_err(-ENOMEM, "out of memory");
		for (size_t i = 0; i < r->n_notes; i++) {
			struct json_object *s = json_object_new_string(r->notes[i]);

			if (!s || json_object_array_add(notes, s) < 0) {
				json_object_put(s);
				return kq_err(-ENOMEM, "out of memory");
			}
		}
	}
	*ret = TAKE_PTR(o);
	*ret_ok = ok;
	return 0;
}

int inspect_check_expected(const struct inspect_result *r, X509 *expected, uint32_t *ret_nv_index)
{
	for (size_t i = 0; i < r->n_certs; i++) {
		_cleanup_(X509_freep) X509 *cert = NULL;
		int e;

		if (x509_load(r->certs[i].data, r->certs[i].len, &cert) < 0 || X509_cmp(cert, expected) != 0)
			continue;
		e = cert_matches_ek(r, r->certs[i].nv_index, cert);
		if (e < 0) {
			char why[256];

			snprintf(why, sizeof(why), "%s", kq_errmsg());
			return kq_err(-EKEYREJECTED, "the expected certificate is in NV 0x%08x, but %s",
				      r->certs[i].nv_index, why);
		}
		*ret_nv_index = r->certs[i].nv_index;
		return 0;
	}
	return kq_err(-ENOENT, "the expected certificate is not in the vTPM's NV");
}

/* ---- the subcommand ---- */

static const char usage[] =
	"usage: kumquat-vtpm-mgr inspect VM-UUID|DIR|FILE [--json] [--state-dir DIR]\n"
	"                                [--expect-cert FILE]\n"
	"\n"
	"Loads a vTPM's saved state (swtpm's " INSPECT_STATE_FILE ") with libtpms in a\n"
	"separate process, without changing it, and shows the vTPM's EKs (persistent\n"
	"handles 0x81010001 RSA 2048, 0x81010002 ECC P-256, 0x8101001c RSA 3072,\n"
	"0x81010016 ECC P-384) and the EK certificates in its NV (0x01c00002, 0x01c0000a,\n"
	"0x01c0001c, 0x01c00016), each checked against its EK.\n"
	"  VM-UUID            the state of a libvirt domain: SWTPM_DIR/UUID/tpm2, SWTPM_DIR\n"
	"                     being [vtpm-mgr] swtpm_dir (" INSPECT_LIBVIRT_DIR ")\n"
	"  DIR, FILE          a state directory (swtpm --tpmstate dir=DIR), or the state file\n"
	"  --state-dir DIR    the state directory, for a VM whose state is elsewhere\n"
	"  --expect-cert FILE fail unless this certificate (PEM or DER) is in NV, for the EK\n"
	"  --json             one JSON object\n"
	"Encrypted states (swtpm --key) are not supported.\n"
	"Exit: 0 ok, 1 a certificate that is not for its EK, an unexpected certificate\n"
	"or an invalid state, 2 usage error or unreadable state.\n";

static int fail(int code, const char *fmt, ...) _printf_(2, 3);
static int fail(int code, const char *fmt, ...)
{
	char s[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	sanitize(s);
	fprintf(stderr, "kumquat-vtpm-mgr inspect: %s\n", s);
	return code;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

/* One "  key: value" line; values come from certificates, so they are made safe. */
static void put_line(const char *indent, const char *key, const char *value)
{
	_cleanup_free_ char *s = strdup(value ? value : "");

	if (!s)
		return;
	sanitize(s);
	printf("%s%s: %s\n", indent, key, s);
}

static void print_text(struct json_object *rep)
{
	struct json_object *a, *v;

	put_line("", "vTPM state", jstr(rep, "state_dir"));
	json_object_object_get_ex(rep, "eks", &a);
	if (json_object_array_length(a) == 0)
		printf("no EK\n");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *ek = json_object_array_get_idx(a, i), *pub, *k;

		printf("EK %s: %s", jstr(ek, "handle"), jstr(ek, "alg"));
		json_object_object_get_ex(ek, "public", &pub);
		if (json_object_object_get_ex(pub, "rsa", &k)) {
			json_object_object_get_ex(ek, "bits", &v);
			printf(" %d, exponent %s\n", json_object_get_int(v), jstr(k, "e"));
			put_line("  ", "name", jstr(ek, "name"));
			put_line("  ", "modulus", jstr(k, "n"));
		} else if (json_object_object_get_ex(pub, "ecc", &k)) {
			printf(" %s\n", jstr(k, "curve"));
			put_line("  ", "name", jstr(ek, "name"));
			put_line("  ", "x", jstr(k, "x"));
			put_line("  ", "y", jstr(k, "y"));
		} else {
			printf("\n");
		}
	}
	json_object_object_get_ex(rep, "ek_certs", &a);
	if (json_object_array_length(a) == 0)
		printf("no EK certificate\n");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *c = json_object_array_get_idx(a, i);
		bool match;

		json_object_object_get_ex(c, "matches_ek", &v);
		match = json_object_get_boolean(v);
		printf("EK certificate %s (EK %s): %s\n", jstr(c, "nv_index"), jstr(c, "ek_handle"),
		       match ? "matches the EK" : "DOES NOT match the EK");
		if (jstr(c, "error"))
			put_line("  ", "error", jstr(c, "error"));
		if (jstr(c, "subject")) {
			put_line("  ", "subject", jstr(c, "subject"));
			put_line("  ", "issuer", jstr(c, "issuer"));
			put_line("  ", "sha256", jstr(c, "sha256"));
		}
	}
	if (json_object_object_get_ex(rep, "notes", &a))
		for (size_t i = 0; i < json_object_array_length(a); i++)
			put_line("", "warning", json_object_get_string(json_object_array_get_idx(a, i)));
}

/* The state file for what the user named (*ret_in_dir: found in a state
 * directory); returns 0 or an exit code, having said why. */
static int state_file(const char *path, char **ret, bool *ret_in_dir)
{
	struct stat st;
	char *f;

	if (stat(path, &st) < 0)
		return fail(2, "%s: %s", path, strerror(errno));
	if (S_ISREG(st.st_mode)) {
		f = strdup(path);
	} else if (S_ISDIR(st.st_mode)) {
		if (asprintf(&f, "%s/%s", path, INSPECT_STATE_FILE) < 0)
			f = NULL;
	} else {
		return fail(2, "%s: not a directory or a file", path);
	}
	if (!f)
		return fail(2, "out of memory");
	if (S_ISDIR(st.st_mode) && faccessat(AT_FDCWD, f, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
		_cleanup_free_ char *tpm12 = NULL;
		bool v12 = asprintf(&tpm12, "%s/tpm-00.permall", path) >= 0 && access(tpm12, F_OK) == 0;

		free(f);
		return fail(2, "%s: no %s%s", path, INSPECT_STATE_FILE,
			    v12 ? " (this is a TPM 1.2 state; only TPM 2.0 is supported)" : "");
	}
	*ret = f;
	*ret_in_dir = S_ISDIR(st.st_mode);
	return 0;
}

/*
 * Reads the state file, at most INSPECT_MAX_STATE bytes. A state directory
 * belongs to the user swtpm runs as, not to whoever runs inspect: there the
 * file must be a regular file itself (a link is not followed, and a FIFO or
 * device cannot stall or feed the read). Returns 0 or an exit code.
 */
static int read_state(const char *path, bool in_dir, uint8_t **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (in_dir ? O_NOFOLLOW : 0));
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, cap;
	struct stat st;
	int code = 0;

	if (fd < 0)
		return fail(2, "%s: %s", path, errno == ELOOP ? "a symbolic link, not followed" : strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		code = fail(2, "%s: not a regular file", path);
		goto out;
	}
	if ((uintmax_t)st.st_size > INSPECT_MAX_STATE) {
		code = fail(1, "%s: %jd bytes is too large for a TPM state", path, (intmax_t)st.st_size);
		goto out;
	}
	cap = (size_t)st.st_size + 1; /* the extra byte catches a file that grows */
	buf = malloc(cap);
	if (!buf) {
		code = fail(2, "out of memory");
		goto out;
	}
	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			code = fail(2, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == cap) {
		code = fail(2, "%s: changed while it was read", path);
		goto out;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = len;
out:
	close(fd);
	return code;
}

int vtpm_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "expect-cert", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *state_dir = NULL, *expect_path = NULL, *what = NULL;
	_cleanup_free_ char *dir_buf = NULL, *file = NULL;
	_cleanup_free_ uint8_t *buf = NULL, *msg = NULL;
	_cleanup_(json_putp) struct json_object *rep = NULL;
	_cleanup_(X509_freep) X509 *expected = NULL;
	_cleanup_(inspect_result_clear) struct inspect_result res = { 0 };
	struct inspect_blob blob;
	size_t len = 0, msg_len = 0;
	char uuid[37];
	uint32_t nv_index = 0;
	bool json = false, have_uuid = false, in_dir = false, ok;
	int c, r, code;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 's':
			state_dir = optarg;
			break;
		case 'e':
			expect_path = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc)
		what = argv[optind++];
	if (optind < argc || (!what && !state_dir)) {
		fputs(usage, stderr);
		return 2;
	}
	if (what)
		have_uuid = kq_uuid_normalize(what, uuid);
	if (state_dir) {
		if (what && !have_uuid)
			return fail(2, "--state-dir goes with a VM UUID, not with %s", what);
	} else if (have_uuid) {
		/* where libvirt keeps vTPM states: [vtpm-mgr] swtpm_dir of the config */
		struct vtpm_config cfg;

		if (vtpm_config_load(vtpm_config_path, &cfg) < 0)
			return fail(2, "%s", kq_errmsg());
		r = asprintf(&dir_buf, "%s/%s/tpm2", cfg.swtpm_dir ? cfg.swtpm_dir : INSPECT_LIBVIRT_DIR, uuid);
		vtpm_config_free(&cfg);
		if (r < 0)
			return fail(2, "out of memory");
		state_dir = dir_buf;
	} else {
		state_dir = what;
	}

	if (expect_path && x509_read(expect_path, &expected) < 0)
		return fail(2, "--expect-cert: %s", kq_errmsg());
	r = state_file(state_dir, &file, &in_dir);
	if (r != 0)
		return r;
	r = read_state(file, in_dir, &buf, &len);
	if (r != 0)
		return r;
	r = inspect_swtpm_blob(buf, len, &blob.data, &blob.len);
	if (r < 0)
		return fail(r == -EBADMSG ? 1 : 2, "%s: %s", file, kq_errmsg());
	r = inspect_run_child(inspect_child_libtpms, &blob, INSPECT_TIMEOUT_MS, &msg, &msg_len);
	if (r < 0)
		return fail(r == -ENOMEM || r == -EMFILE || r == -ENFILE || r == -EAGAIN ? 2 : 1, "%s: %s", file,
			    kq_errmsg());
	r = inspect_msg_parse(msg, msg_len, &res);
	if (r < 0)
		return fail(1, "%s: %s", file, kq_errmsg());
	r = inspect_report(state_dir, &res, &rep, &ok);
	if (r < 0)
		return fail(2, "%s", kq_errmsg());
	code = ok ? 0 : 1;
	if (have_uuid && add(rep, "vm_uuid", json_object_new_string(uuid)) < 0)
		return fail(2, "out of memory");
	if (expected) {
		struct json_object *x = json_object_new_object();

		r = inspect_check_expected(&res, expected, &nv_index);
		/* x belongs to rep once added */
		if (add(rep, "expected_cert", x) < 0 || add(x, "found", json_object_new_boolean(r != -ENOENT)) < 0 ||
		    add(x, "matches_ek", json_object_new_boolean(r == 0)) < 0 ||
		    (r == 0 && add(x, "nv_index", json_handle(nv_index)) < 0))
			return fail(2, "out of memory");
		if (r < 0)
			code = 1;
	}
	if (json)
		puts(json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		print_text(rep);
	if (expected) {
		if (r == 0 && !json)
			printf("expected certificate: in NV 0x%08x, for its EK\n", nv_index);
		else if (r < 0)
			fail(1, "%s", kq_errmsg());
	}
	if (code == 1 && !(expected && r < 0))
		fail(1, "%s: an EK certificate in NV is not for its EK, or parts of the state could not be read",
		     state_dir);
	return code;
}
