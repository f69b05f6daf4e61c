/* SPDX-License-Identifier: Apache-2.0 */
#include "revocation/revocation.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dsse/dsse.h"
#include "evidence/evidence.h"
#include "json/json.h"
#include "log/log.h"
#include "util/util.h"

#define MOD "revocation"
#define SEQ_FILE "revocation-seq"
#define MAX_ACTIONS 64

static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;

int revocation_load_key(const char *path, EVP_PKEY **ret)
{
	_cleanup_free_ uint8_t *pem = NULL;
	size_t len;
	EVP_PKEY *k = NULL;
	BIO *bio;
	int r = kq_read_file(path, 64 * 1024, &pem, &len);

	if (r < 0)
		return r;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio)
		k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!k && bio) {
		X509 *x;

		BIO_reset(bio);
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (x) {
			k = X509_get_pubkey(x);
			X509_free(x);
		}
	}
	BIO_free(bio);
	if (!k)
		return kq_err(-EINVAL, "%s: not a PEM public key or certificate", path);
	*ret = k;
	return 0;
}

static int64_t read_seq(const char *dir)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	uint64_t v;

	if (asprintf(&path, "%s/%s", dir, SEQ_FILE) < 0 || kq_read_file(path, 64, &buf, &len) < 0)
		return 0;
	buf[len < 63 ? len : 63] = '\0';
	buf[strcspn((char *)buf, "\n")] = '\0';
	return kq_parse_uint((char *)buf, INT64_MAX, &v) == 0 ? (int64_t)v : 0;
}

static int write_seq(const char *dir, int64_t seq)
{
	_cleanup_free_ char *path = NULL;
	char text[32];
	int n = snprintf(text, sizeof(text), "%" PRId64 "\n", seq);

	if (asprintf(&path, "%s/%s", dir, SEQ_FILE) < 0)
		return -ENOMEM;
	return kq_write_file(path, text, (size_t)n);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one action with the notice on stdin; its exit status, or -1. */
static int run_action(const char *path, const char *notice, const char *agent_id)
{
	int in[2];
	pid_t pid;
	int status = 0;
	size_t len = strlen(notice), off = 0;

	if (pipe2(in, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		setenv("KUMQUAT_REVOKED_AGENT", agent_id, 1);
		alarm(REVOCATION_ACTION_TIMEOUT_S);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	signal(SIGPIPE, SIG_IGN);
	while (off < len) {
		ssize_t w = write(in[1], notice + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(in[1]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs every executable regular file of dir (names not starting with '.'), in name order. */
static void run_actions(const char *dir, const char *notice, const char *agent_id, size_t *ret_n, size_t *ret_failed)
{
	char *names[MAX_ACTIONS];
	size_t n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	*ret_n = *ret_failed = 0;
	if (!d) {
		log_warn(MOD, "actions directory %s: %s", dir, strerror(errno));
		return;
	}
	while ((e = readdir(d)) && n < MAX_ACTIONS) {
		struct stat st;

		if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR) || (st.st_mode & (S_IWGRP | S_IWOTH)))
			continue;
		if ((names[n] = strdup(e->d_name)))
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *path = NULL;
		int rc = asprintf(&path, "%s/%s", dir, names[i]) < 0 ? -1 : run_action(path, notice, agent_id);

		if (rc != 0) {
			log_warn(MOD, "action %s for the revocation of %s: %s %d", names[i], agent_id,
				 rc < 0 ? "did not run or was killed," : "exited", rc);
			(*ret_failed)++;
		} else {
			log_info(MOD, "action %s ran for the revocation of %s", names[i], agent_id);
		}
		free(names[i]);
	}
	*ret_n = n;
}

void revocation_handle(const struct http_request *req, struct http_response *resp, void *ud)
{
	const struct evidence_config *ev = ud;
	const struct revocation_agent *ra = ev->revocation;
	_cleanup_free_ uint8_t *payload = NULL;
	struct json_object *notice = NULL, *o;
	const char *agent_id = "?", *event = NULL;
	int64_t seq = 0, when = 0, last, now = (int64_t)time(NULL);
	size_t plen, n_actions = 0, n_failed = 0;
	int r;

	if (!ra) {
		http_error(resp, 404, "not_found", "this agent takes no revocation notices ([revocation] verifier_key is not set)");
		return;
	}
	if (req->body_len > DSSE_MAX_ENVELOPE) {
		http_error(resp, 413, "body_too_large", "a notice is at most %u bytes", DSSE_MAX_ENVELOPE);
		return;
	}
	r = dsse_verify(ra->verifier_key, REVOCATION_PAYLOAD_TYPE, req->body ? req->body : (const uint8_t *)"",
			req->body_len, &payload, &plen);
	if (r == -EKEYREJECTED) {
		log_warn(MOD, "notice from %s ignored: its signature does not verify with the verifier's key",
			 req->remote_addr ? req->remote_addr : "?");
		http_error(resp, 403, "bad_signature", "the notice's signature does not verify with the verifier's key");
		return;
	}
	if (r < 0 || json_parse_body(payload, plen, DSSE_MAX_ENVELOPE, 8, &notice) < 0) {
		log_warn(MOD, "notice from %s ignored: not a revocation notice", req->remote_addr ? req->remote_addr : "?");
		http_error(resp, 400, "bad_request", "not a revocation notice");
		return;
	}
	if (json_object_object_get_ex(notice, "event", &o) && json_object_is_type(o, json_type_string))
		event = json_object_get_string(o);
	if (json_object_object_get_ex(notice, "agent_id", &o) && json_object_is_type(o, json_type_string))
		agent_id = json_object_get_string(o);
	if (json_object_object_get_ex(notice, "seq", &o) && json_object_is_type(o, json_type_int))
		seq = json_object_get_int64(o);
	if (json_object_object_get_ex(notice, "unix_time", &o) && json_object_is_type(o, json_type_int))
		when = json_object_get_int64(o);
	if (!event || strcmp(event, "revocation") != 0 || seq <= 0 || when <= 0) {
		log_warn(MOD, "signed notice ignored: no event, seq or time");
		http_error(resp, 400, "bad_request", "a revocation notice needs event, seq and unix_time");
		goto out;
	}
	pthread_mutex_lock(&seq_lock);
	last = read_seq(ra->state_dir);
	if (seq <= last) {
		pthread_mutex_unlock(&seq_lock);
		log_warn(MOD, "notice %" PRId64 " (revocation of %s) ignored: replayed (last taken %" PRId64 ")", seq,
			 agent_id, last);
		http_error(resp, 409, "replayed", "notice %" PRId64 " is not newer than %" PRId64, seq, last);
		goto out;
	}
	if (when < now - ra->max_age || when > now + 300) {
		pthread_mutex_unlock(&seq_lock);
		log_warn(MOD, "notice %" PRId64 " (revocation of %s) ignored: made %" PRId64 " s ago", seq, agent_id,
			 now - when);
		http_error(resp, 409, "stale", "the notice is older than %" PRId64 " s", ra->max_age);
		goto out;
	}
	r = write_seq(ra->state_dir, seq);
	pthread_mutex_unlock(&seq_lock);
	if (r < 0) {
		log_error(MOD, "cannot record notice %" PRId64 ": %s", seq, kq_errmsg());
		http_error(resp, 500, "internal", "cannot record the notice");
		goto out;
	}
	log_warn(MOD, "agent %s revoked by the verifier (notice %" PRId64 ")", agent_id, seq);
	if (ra->actions_dir)
		run_actions(ra->actions_dir, json_object_to_json_string_ext(notice, JSON_C_TO_STRING_PLAIN), agent_id,
			    &n_actions, &n_failed);
	resp->status = 200;
	resp->body = json_object_new_object();
	json_object_object_add(resp->body, "accepted", json_object_new_boolean(1));
	json_object_object_add(resp->body, "actions", json_object_new_int64((int64_t)n_actions));
	json_object_object_add(resp->body, "failed", json_object_new_int64((int64_t)n_failed));
out:
	json_object_put(notice);
}
