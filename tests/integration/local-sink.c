/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in host agent for integration tests, on lib/local's server:
 *   local-sink SOCKET FILE
 * appends every request (one JSON object per line) to FILE and answers
 * {"ok": true}. Prints "listening on SOCKET" and serves until SIGTERM.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "local/local.h"
#include "util/util.h"

static int out_fd = -1;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static struct json_object *handle(const struct local_request *req, void *ud)
{
	const char *text = json_object_to_json_string_ext(req->body, JSON_C_TO_STRING_PLAIN);
	struct json_object *ans;
	size_t len = strlen(text);
	bool ok;

	(void)ud;
	pthread_mutex_lock(&out_lock);
	ok = write(out_fd, text, len) == (ssize_t)len && write(out_fd, "\n", 1) == 1;
	pthread_mutex_unlock(&out_lock);
	if (!ok)
		return local_error("internal", "cannot record the request");
	ans = json_object_new_object();
	json_object_object_add(ans, "ok", json_object_new_boolean(true));
	return ans;
}

int main(int argc, char **argv)
{
	struct local_server *srv = NULL;
	sigset_t set;
	int sig;

	if (argc != 3) {
		fputs("usage: local-sink SOCKET FILE\n", stderr);
		return 2;
	}
	out_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (out_fd < 0) {
		fprintf(stderr, "local-sink: %s: %m\n", argv[2]);
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (local_server_start(argv[1], handle, NULL, &srv) < 0) {
		fprintf(stderr, "local-sink: %s\n", kq_errmsg());
		return 1;
	}
	printf("listening on %s\n", argv[1]);
	fflush(stdout);
	while (sigwait(&set, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
		;
	local_server_stop(srv);
	close(out_fd);
	return 0;
}
