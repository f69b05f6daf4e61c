/* SPDX-License-Identifier: Apache-2.0 */
#include "local.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "json/json.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sock_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (!path || !path[0] || strlen(path) >= sizeof(sa->sun_path))
		return kq_err(-EINVAL, "socket path '%.120s' is empty or too long", path ? path : "");
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left = deadline - now_ms();
	int r;

	if (left <= 0)
		return kq_err(-ETIMEDOUT, "local socket: timed out");
	do
		r = poll(&p, 1, (int)left);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return kq_err(-errno, "local socket: poll: %m");
	if (r == 0)
		return kq_err(-ETIMEDOUT, "local socket: timed out");
	return 0;
}

static int write_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len) {
		ssize_t n;
		int r = wait_fd(fd, POLLOUT, deadline);

		if (r < 0)
			return r;
		n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return kq_err(-errno, "local socket: write: %m");
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads until EOF, at most LOCAL_MAX_MESSAGE bytes, and parses one JSON object. */
static int read_json(int fd, int64_t deadline, struct json_object **ret)
{
	_cleanup_free_ uint8_t *buf = malloc(LOCAL_MAX_MESSAGE + 1);
	size_t len = 0;
	int r;

	if (!buf)
		return kq_err(-ENOMEM, "out of memory");
	for (;;) {
		ssize_t n;

		if ((r = wait_fd(fd, POLLIN, deadline)) < 0)
			return r;
		n = recv(fd, buf + len, LOCAL_MAX_MESSAGE + 1 - len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return kq_err(-errno, "local socket: read: %m");
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > LOCAL_MAX_MESSAGE)
			return kq_err(-E2BIG, "local socket: message over %u bytes", LOCAL_MAX_MESSAGE);
	}
	buf[len] = 0;
	r = json_parse_body(buf, len, LOCAL_MAX_MESSAGE, 16, ret);
	if (r < 0)
		return r == -ENOMEM ? r : kq_err_ctx(-EBADMSG, "local socket: ");
	if (!json_object_is_type(*ret, json_type_object)) {
		json_object_put(*ret);
		*ret = NULL;
		return kq_err(-EBADMSG, "local socket: the message is not a JSON object");
	}
	return 0;
}

int local_call(const char *path, struct json_object *req, struct json_object **ret)
{
	struct sockaddr_un sa;
	struct json_object *ans = NULL, *e, *c, *m;
	const char *text;
	int64_t deadline = now_ms() + LOCAL_TIMEOUT_MS;
	int fd, r;

	if ((r = sock_addr(path, &sa)) < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kq_err(-errno, "socket: %m");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = kq_err(-errno, "cannot connect to %s: %m", path);
		goto out;
	}
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (strlen(text) > LOCAL_MAX_MESSAGE) {
		r = kq_err(-E2BIG, "local socket: request over %u bytes", LOCAL_MAX_MESSAGE);
		goto out;
	}
	if ((r = write_all(fd, text, strlen(text), deadline)) < 0)
		goto out;
	shutdown(fd, SHUT_WR);
	if ((r = read_json(fd, deadline, &ans)) < 0)
		goto out;
	if (json_object_object_get_ex(ans, "error", &e) && json_object_is_type(e, json_type_object)) {
		const char *code = json_object_object_get_ex(e, "code", &c) ? json_object_get_string(c) : "error";
		const char *msg = json_object_object_get_ex(e, "message", &m) ? json_object_get_string(m) : "";

		r = kq_err(-EPERM, "%s: %s", code ? code : "error", msg ? msg : "");
		json_object_put(ans);
		goto out;
	}
	*ret = ans;
	r = 0;
out:
	close(fd);
	return r;
}

struct json_object *local_error(const char *code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object(), *e = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	return o;
}

/* ---- server ---- */

struct local_server {
	int fd;
	char *path;
	local_handler_fn fn;
	void *userdata;
	pthread_t thread;
	atomic_bool stop;
	int wake[2];
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned clients;
};

struct client {
	struct local_server *s;
	int fd;
};

static void *serve_client(void *ud)
{
	struct client *c = ud;
	struct local_server *s = c->s;
	struct local_request req = {};
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct json_object *ans;
	int64_t deadline = now_ms() + LOCAL_TIMEOUT_MS;
	int r;

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		ans = local_error("forbidden", "cannot read the peer's credentials");
	} else {
		req.uid = cred.uid;
		req.gid = cred.gid;
		req.pid = cred.pid;
		r = read_json(c->fd, deadline, &req.body);
		ans = r < 0 ? local_error("bad_request", "%s", kq_errmsg()) : s->fn(&req, s->userdata);
		json_object_put(req.body);
	}
	if (ans) {
		const char *text = json_object_to_json_string_ext(ans, JSON_C_TO_STRING_PLAIN);

		(void)write_all(c->fd, text, strlen(text), deadline);
		json_object_put(ans);
	}
	close(c->fd);
	free(c);
	pthread_mutex_lock(&s->lock);
	s->clients--;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void *accept_loop(void *ud)
{
	struct local_server *s = ud;

	while (!atomic_load(&s->stop)) {
		struct pollfd p[2] = { { .fd = s->fd, .events = POLLIN }, { .fd = s->wake[0], .events = POLLIN } };
		struct client *c;
		pthread_t t;
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (atomic_load(&s->stop))
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		pthread_mutex_lock(&s->lock);
		while (s->clients >= LOCAL_MAX_CLIENTS && !atomic_load(&s->stop))
			pthread_cond_wait(&s->idle, &s->lock);
		pthread_mutex_unlock(&s->lock);
		fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		pthread_mutex_lock(&s->lock);
		s->clients++;
		pthread_mutex_unlock(&s->lock);
		if (pthread_create(&t, NULL, serve_client, c) != 0) {
			close(fd);
			free(c);
			pthread_mutex_lock(&s->lock);
			s->clients--;
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

int local_server_start(const char *path, local_handler_fn fn, void *userdata, struct local_server **ret)
{
	struct local_server *s;
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int r;

	if ((r = sock_addr(path, &sa)) < 0)
		return r;
	/* replace a stale socket — never a live one, never another kind of file */
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode))
			return kq_err(-EEXIST, "%s exists and is not a socket", path);
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			return kq_err(-EADDRINUSE, "another process is serving %s", path);
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return kq_err(-ENOMEM, "out of memory");
	s->fn = fn;
	s->userdata = userdata;
	s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	s->path = strdup(path);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!s->path || s->fd < 0 || pipe2(s->wake, O_CLOEXEC) < 0) {
		r = kq_err(s->fd < 0 || !s->path ? -ENOMEM : -errno, "cannot create the socket %s: %m", path);
		goto fail;
	}
	old = umask(0177);
	r = bind(s->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(s->fd, 64) < 0) {
		r = kq_err(-errno, "cannot listen on %s: %m", path);
		goto fail;
	}
	if ((r = pthread_create(&s->thread, NULL, accept_loop, s)) != 0) {
		r = kq_err(-r, "cannot start the socket thread");
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	if (s->fd >= 0)
		close(s->fd);
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	free(s->path);
	free(s);
	return r;
}

void local_server_stop(struct local_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	(void)!write(s->wake[1], "x", 1);
	pthread_mutex_lock(&s->lock);
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_mutex_lock(&s->lock);
	while (s->clients)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	close(s->fd);
	close(s->wake[0]);
	close(s->wake[1]);
	unlink(s->path);
	free(s->path);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s);
}
