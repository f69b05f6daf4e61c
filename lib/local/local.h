/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lib/local: one JSON request and one JSON answer over a local UNIX stream
 * socket, with the peer's credentials — how the vTPM manager and its cert
 * tool talk to the host agent on the same machine (docs/vtpm.md).
 *
 * A client connects, writes one JSON object, shuts down its writing side and
 * reads one JSON object until EOF. Both sides bound what they read
 * (LOCAL_MAX_MESSAGE) and time out (LOCAL_TIMEOUT_MS).
 *
 * Errors follow lib/util: negative errno-style codes with kq_errmsg() set.
 */
#ifndef KQ_LOCAL_H
#define KQ_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "util/util.h"

#define LOCAL_MAX_MESSAGE (64u * 1024)
#define LOCAL_TIMEOUT_MS 30000

/*
 * Sends req to the socket at path and returns the parsed answer in *ret
 * (caller drops it with json_object_put). An answer of the form
 * {"error": {"code", "message"}} is returned as -EPERM with "code: message"
 * as the error text (and *ret untouched). Errors: -ENOENT / -ECONNREFUSED
 * (nobody listens), -ETIMEDOUT, -E2BIG (answer too long), -EBADMSG (not
 * JSON), other errno values of the socket calls.
 */
int local_call(const char *path, struct json_object *req, struct json_object **ret);

/* ---- server ---- */

struct local_request {
	struct json_object *body; /* the request, a JSON object */
	uid_t uid;                /* the peer's credentials (SO_PEERCRED) */
	gid_t gid;
	pid_t pid;
};

/* Returns the answer (a new reference), never NULL. */
typedef struct json_object *(*local_handler_fn)(const struct local_request *req, void *userdata);

struct local_server;

/*
 * Listens on path (an existing socket file there is replaced), mode 0600,
 * and serves each connection on a thread of its own (at most
 * LOCAL_MAX_CLIENTS at once; more wait in the backlog). Requests that are
 * not a JSON object within the limits are answered with a bad_request error
 * without calling fn. Caller stops it with local_server_stop.
 */
#define LOCAL_MAX_CLIENTS 16
int local_server_start(const char *path, local_handler_fn fn, void *userdata, struct local_server **ret);
/* Stops listening, waits for running handlers, removes the socket file. NULL is fine. */
void local_server_stop(struct local_server *s);

/* {"error": {"code": code, "message": printf...}} */
struct json_object *local_error(const char *code, const char *fmt, ...) _printf_(2, 3);

#endif
