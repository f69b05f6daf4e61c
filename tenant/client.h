/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For the commands that talk to a kumquat service's REST API (registrar,
 * verifier): the common options --url, --ca, --cert and --key (or the
 * environment), one JSON request with the service's refusal shown on one
 * line, and fields of its answers made fit for a terminal.
 */
#ifndef KQ_TENANT_CLIENT_H
#define KQ_TENANT_CLIENT_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "http/http.h"

/* getopt_long entries of the common options; client_option() takes their codes. */
#define CLIENT_OPTIONS                                    \
	{ "url", required_argument, NULL, 'u' },          \
	{ "ca", required_argument, NULL, 'a' },           \
	{ "cert", required_argument, NULL, 'c' },         \
	{ "key", required_argument, NULL, 'k' }

/* Where the service is. The strings point into argv or the environment. */
struct client {
	const char *service; /* "registrar", "verifier": names it in messages */
	const char *url, *ca, *cert, *key;
	struct http_client_config cc; /* set by client_ready() */
};

/* Stores a common option if getopt_long's code c is one; false otherwise. */
bool client_option(struct client *cl, int c, const char *arg);

/*
 * Fills what the options left unset from url_env, KUMQUAT_CA, KUMQUAT_CERT
 * and KUMQUAT_KEY. Returns KQ_EXIT_OK, or prints "<what>: --url, ... are
 * needed" and returns KQ_EXIT_USAGE if any is still missing.
 */
int client_ready(struct client *cl, const char *url_env, const char *what);

/*
 * Sends method to the service's URL followed by the path made from fmt (the
 * caller has checked that what goes into it is URL-safe), with body as JSON
 * unless NULL (the caller keeps its reference). On a 2xx answer returns
 * KQ_EXIT_OK with *ret the answer (NULL if it was empty; caller drops it).
 * Otherwise prints one line — the transport error, or the HTTP status and the
 * service's {"error":{"message"}} — and returns KQ_EXIT_INVALID.
 */
int client_call(const struct client *cl, const char *method, struct json_object *body,
		struct json_object **ret, const char *fmt, ...) _printf_(5, 6);

/*
 * The next option of the caller's own for command what ("add", "policy show"),
 * like getopt_long over opts from optind (set it first): stores the common
 * options in cl and goes on; --help (code 'h') prints usage. The caller's
 * codes are base and above, and only those whose bit (1 << (code - base)) is in
 * allowed are taken. Returns the code (optarg set), -1 after the last option,
 * or -2 when the command is to end with *ret_exit (0 after --help, 2 after a
 * bad option, with one line printed).
 */
int client_next_option(struct client *cl, int argc, char **argv, const struct option *opts, int base,
		       unsigned allowed, const char *what, const char *usage, int *ret_exit);

/*
 * GET path, whose answer holds an array under key (what names its elements
 * in messages: "agent"). With json, prints the answer and leaves *ret NULL;
 * otherwise *ret is the answer (caller drops it) and *ret_list the array in
 * it. Returns KQ_EXIT_OK or, with one line printed, KQ_EXIT_INVALID.
 */
int client_get_list(const struct client *cl, const char *path, const char *key, const char *what, bool json,
		    struct json_object **ret, struct json_object **ret_list);

/*
 * Field k of object o as text for a terminal, in buf (n > 0 bytes): "-" if
 * absent, null or "", other JSON as its text, control characters as '?', cut
 * to fit. Returns buf.
 */
const char *client_text(struct json_object *o, const char *k, char *buf, size_t n);

/*
 * Time field k of o in buf: seconds since the epoch as "YYYY-MM-DD HH:MM:SSZ",
 * a string as client_text() shows it, "-" if absent or null.
 */
void client_time(struct json_object *o, const char *k, char *buf, size_t n);

/*
 * Whether s is a UUID (8-4-4-4-12 hex digits, either case); if so, ret gets
 * it in lowercase, the one spelling the registrar and verifier store.
 */
bool client_uuid(const char *s, char ret[static 37]);

/*
 * Whether s is a policy name: 1-64 of A-Z a-z 0-9 . _ - ("." and ".." are
 * refused too: in a URL path they are dot segments, which libcurl removes).
 */
bool client_policy_name_ok(const char *s);

#endif
