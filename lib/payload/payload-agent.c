/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agents' payload endpoints (docs/payloads.md): POST /v1/payload/u from
 * the tenant (the sealed payload and U), POST /v1/payload/v from the
 * verifier (V, sent only while this agent attests). Both over mutual TLS,
 * served by the host and the guest agent with their evidence endpoint.
 */
#include "payload/payload-agent.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "evidence/evidence.h"
#include "json/json.h"
#include "log/log.h"
#include "util/util.h"

#define MOD "payload"
#define U_FILE "payload-u.json"
#define SCRIPT_TIMEOUT_S 60

struct u_body {
	char *payload_id;
	struct json_bytes enc_u, auth_tag, sealed;
};

static const struct json_field u_fields[] = {
	{ "payload_id", JSON_STRING, true, PAYLOAD_ID_LEN, offsetof(struct u_body, payload_id) },
	{ "enc_u", JSON_BASE64, true, 512, offsetof(struct u_body, enc_u) },
	{ "auth_tag", JSON_BASE64, true, PAYLOAD_TAG_LEN, offsetof(struct u_body, auth_tag) },
	{ "sealed", JSON_BASE64, true, PAYLOAD_MAX + 64, offsetof(struct u_body, sealed) },
	{ 0 },
};

struct v_body {
	char *payload_id;
	struct json_bytes enc_v;
};

static const struct json_field v_fields[] = {
	{ "payload_id", JSON_STRING, true, PAYLOAD_ID_LEN, offsetof(struct v_body, payload_id) },
	{ "enc_v", JSON_BASE64, true, 512, offsetof(struct v_body, enc_v) },
	{ 0 },
};

static bool id_ok(const char *id)
{
	if (strlen(id) != PAYLOAD_ID_LEN)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* Parses a body into a dispatch table; answers and returns false on error. */
static bool read_body(const struct http_request *req, struct http_response *resp, size_t max,
		      const struct json_field *fields, void *target)
{
	struct json_object *o = NULL;
	int r;

	if (req->body_len > max) {
		http_error(resp, 413, "body_too_large", "request body over the limit of %zu bytes", max);
		return false;
	}
	r = json_parse_body(req->body ? req->body : (const uint8_t *)"", req->body_len, max, 4, &o);
	if (r < 0) {
		http_error(resp, 400, "bad_json", "%s", kq_errmsg());
		return false;
	}
	r = json_dispatch(o, fields, target, false);
	json_object_put(o);
	if (r < 0) {
		http_error(resp, 400, "bad_request", "%s", kq_errmsg());
		json_dispatch_free(fields, target);
		return false;
	}
	return true;
}

static const struct payload_agent *agent_of(void *ud, struct http_response *resp)
{
	const struct evidence_config *ev = ud;

	if (!ev->payload) {
		http_error(resp, 404, "not_found", "this agent takes no payloads ([payload] dir is not set)");
		return NULL;
	}
	return ev->payload;
}

void payload_handle_u(const struct http_request *req, struct http_response *resp, void *ud)
{
	const struct payload_agent *pa = agent_of(ud, resp);
	struct u_body b = { 0 };
	struct json_object *o;
	_cleanup_free_ char *path = NULL;
	const char *text;
	int r;

	if (!pa || !read_body(req, resp, PAYLOAD_AGENT_MAX_BODY, u_fields, &b))
		return;
	if (!id_ok(b.payload_id) || b.auth_tag.len != PAYLOAD_TAG_LEN || b.enc_u.len == 0) {
		http_error(resp, 400, "bad_request", "payload_id must be %d lowercase hex digits, auth_tag %d bytes",
			   PAYLOAD_ID_LEN, PAYLOAD_TAG_LEN);
		goto out;
	}
	/* kept as received: every part is encrypted (U to the TPM's payload key, the payload under K) */
	o = json_object_new_object();
	json_object_object_add(o, "payload_id", json_object_new_string(b.payload_id));
	json_object_object_add(o, "received", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(o, "enc_u", json_new_base64(b.enc_u.data, b.enc_u.len));
	json_object_object_add(o, "auth_tag", json_new_base64(b.auth_tag.data, b.auth_tag.len));
	json_object_object_add(o, "sealed", json_new_base64(b.sealed.data, b.sealed.len));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	r = asprintf(&path, "%s/%s", pa->state_dir, U_FILE) < 0 ? -ENOMEM : kq_write_file(path, text, strlen(text));
	json_object_put(o);
	if (r < 0) {
		log_error(MOD, "cannot keep payload %s: %s", b.payload_id, kq_errmsg());
		http_error(resp, 500, "internal", "cannot keep the payload");
		goto out;
	}
	log_info(MOD, "payload %s received (%zu bytes sealed) from %s; waiting for the verifier's half of its key",
		 b.payload_id, b.sealed.len, req->client_subject ? req->client_subject : "?");
	resp->status = 202;
	resp->body = json_object_new_object();
	json_object_object_add(resp->body, "payload_id", json_object_new_string(b.payload_id));
	json_object_object_add(resp->body, "status", json_object_new_string("waiting_for_v"));
out:
	json_dispatch_free(u_fields, &b);
}

/* The stored U part, if it is for payload_id. */
static int load_u(const struct payload_agent *pa, const char *payload_id, struct u_body *ret)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	struct json_object *o = NULL;
	size_t len;
	int r;

	if (asprintf(&path, "%s/%s", pa->state_dir, U_FILE) < 0)
		return -ENOMEM;
	r = kq_read_file(path, 2 * PAYLOAD_AGENT_MAX_BODY, &buf, &len);
	if (r < 0)
		return r == -ENOENT ? kq_err(-ENOENT, "no payload was received") : r;
	r = json_parse_body(buf, len, 2 * PAYLOAD_AGENT_MAX_BODY, 4, &o);
	if (r < 0)
		return r;
	json_object_object_del(o, "received");
	r = json_dispatch(o, u_fields, ret, false);
	json_object_put(o);
	if (r < 0)
		return kq_err_ctx(r, "%s: ", path);
	if (strcmp(ret->payload_id, payload_id) != 0) {
		json_dispatch_free(u_fields, ret);
		return kq_err(-ENOENT, "the payload received is another one");
	}
	return 0;
}

/* [payload] dir must be a directory on tmpfs (or ramfs): decrypted files never reach a disk. */
static int out_dir_check(const char *dir)
{
	struct statfs fs;
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kq_err(-errno, "%s: %s", dir, strerror(errno));
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return kq_err(-ENOTDIR, "%s: not a directory", dir);
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return kq_err(-EPERM, "%s: must be ours and mode 0700", dir);
	if (statfs(dir, &fs) < 0)
		return kq_err(-errno, "%s: %s", dir, strerror(errno));
	if (fs.f_type != TMPFS_MAGIC && fs.f_type != RAMFS_MAGIC)
		return kq_err(-EXDEV, "%s: not on tmpfs; decrypted payloads are only written to memory", dir);
	return 0;
}

/* Runs the payload script in dir; its exit status, -1 if it could not run or was killed. */
static int run_script(const char *script, const char *dir, const char *payload_id)
{
	pid_t pid = fork();
	int status = 0;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null >= 0)
			dup2(null, 0);
		if (chdir(dir) < 0)
			_exit(126);
		setenv("KUMQUAT_PAYLOAD_DIR", dir, 1);
		setenv("KUMQUAT_PAYLOAD_ID", payload_id, 1);
		alarm(SCRIPT_TIMEOUT_S);
		execl(script, script, dir, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void refuse(struct http_response *resp, unsigned status, const char *payload_id, const char *code,
		   const char *msg)
{
	log_warn(MOD, "payload %s refused: %s (%s)", payload_id, code, msg);
	http_error(resp, status, code, "%s", msg);
}

void payload_handle_v(const struct http_request *req, struct http_response *resp, void *ud)
{
	const struct evidence_config *ev = ud;
	const struct payload_agent *pa = agent_of(ud, resp);
	struct v_body b = { 0 };
	struct u_body u = { 0 };
	uint8_t uk[64], vk[64], k[PAYLOAD_KEY_LEN];
	size_t ulen = 0, vlen = 0, plen = 0, files = 0;
	uint8_t *plain = NULL;
	_cleanup_free_ char *dir = NULL;
	int r, dfd = -1, script = -2;

	if (!pa || !read_body(req, resp, 4096, v_fields, &b))
		return;
	if (!id_ok(b.payload_id)) {
		http_error(resp, 400, "bad_request", "payload_id must be %d lowercase hex digits", PAYLOAD_ID_LEN);
		goto out;
	}
	r = load_u(pa, b.payload_id, &u);
	if (r < 0) {
		refuse(resp, 409, b.payload_id, "unknown_payload", kq_errmsg());
		goto out;
	}
	pthread_mutex_lock(&evidence_tpm_lock);
	r = tpmdev_rsa_decrypt(ev->tpm, pa->key_handle, PAYLOAD_LABEL_U, u.enc_u.data, u.enc_u.len, uk, sizeof(uk),
			       &ulen);
	if (r == 0)
		r = tpmdev_rsa_decrypt(ev->tpm, pa->key_handle, PAYLOAD_LABEL_V, b.enc_v.data, b.enc_v.len, vk,
				       sizeof(vk), &vlen) < 0 ? -2 : 0;
	pthread_mutex_unlock(&evidence_tpm_lock);
	if (r == -2 || (r == 0 && vlen != PAYLOAD_KEY_LEN)) {
		refuse(resp, 400, b.payload_id, "v_undecryptable",
		       "V does not decrypt with this agent's payload key (it is for another agent or was changed)");
		goto out;
	}
	if (r < 0 || ulen != PAYLOAD_KEY_LEN) {
		refuse(resp, 400, b.payload_id, "u_undecryptable",
		       "U does not decrypt with this agent's payload key (it is for another agent or was changed)");
		goto out;
	}
	if (payload_combine(uk, vk, pa->agent_id, u.auth_tag.data, k) < 0) {
		refuse(resp, 400, b.payload_id, "auth_tag_mismatch",
		       "U xor V is not the key the auth tag names for this agent");
		goto out;
	}
	r = payload_open(k, pa->agent_id, u.sealed.data, u.sealed.len, &plain, &plen);
	OPENSSL_cleanse(k, sizeof(k));
	if (r < 0) {
		refuse(resp, 400, b.payload_id, "payload_corrupt", kq_errmsg());
		goto out;
	}
	if ((r = out_dir_check(pa->out_dir)) < 0) {
		log_error(MOD, "payload %s: %s", b.payload_id, kq_errmsg());
		http_error(resp, 500, "no_private_dir", "%s", kq_errmsg());
		goto out;
	}
	if (asprintf(&dir, "%s/%s", pa->out_dir, b.payload_id) < 0 || mkdir(dir, 0700) < 0 ||
	    (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		r = -errno;
		refuse(resp, r == -EEXIST ? 409 : 500, b.payload_id, r == -EEXIST ? "already_delivered" : "internal",
		       r == -EEXIST ? "this payload was delivered before" : strerror(-r));
		goto out;
	}
	r = payload_extract(plain, plen, dfd, &files);
	if (r < 0) {
		refuse(resp, r == -EBADMSG ? 400 : 500, b.payload_id, r == -EBADMSG ? "payload_corrupt" : "write_failed",
		       kq_errmsg());
		goto out;
	}
	if (pa->script && pa->script[0])
		script = run_script(pa->script, dir, b.payload_id);
	/* the U part is spent */
	{
		_cleanup_free_ char *path = NULL;

		if (asprintf(&path, "%s/%s", pa->state_dir, U_FILE) >= 0)
			unlink(path);
	}
	if (script == -2)
		log_info(MOD, "payload %s delivered: %zu file(s) in %s", b.payload_id, files, dir);
	else
		log_info(MOD, "payload %s delivered: %zu file(s) in %s, script %s exited %d", b.payload_id, files, dir,
			 pa->script, script);
	resp->status = 200;
	resp->body = json_object_new_object();
	json_object_object_add(resp->body, "payload_id", json_object_new_string(b.payload_id));
	json_object_object_add(resp->body, "status", json_object_new_string("delivered"));
	json_object_object_add(resp->body, "files", json_object_new_int64((int64_t)files));
	json_object_object_add(resp->body, "script_status", script == -2 ? NULL : json_object_new_int(script));
out:
	if (dfd >= 0)
		close(dfd);
	if (plain) {
		OPENSSL_cleanse(plain, plen);
		free(plain);
	}
	OPENSSL_cleanse(uk, sizeof(uk));
	OPENSSL_cleanse(vk, sizeof(vk));
	json_dispatch_free(v_fields, &b);
	json_dispatch_free(u_fields, &u);
}
