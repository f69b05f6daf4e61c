/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the kumquat subcommands: exit codes, one-line errors, JSON output. */
#ifndef KQ_CLI_H
#define KQ_CLI_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

enum {
	KQ_EXIT_OK = 0,      /* evidence valid / command succeeded */
	KQ_EXIT_INVALID = 1, /* evidence invalid; reason on stderr */
	KQ_EXIT_USAGE = 2,   /* usage error or unreadable input */
};

/* Largest evidence file any offline command reads (64 MiB). */
#define KQ_CLI_MAX_FILE (64u << 20)

/* Prints "kumquat: <msg>" on one line to stderr (control characters as ?) and returns code. */
int cli_fail(int code, const char *fmt, ...) _printf_(2, 3);
/* cli_fail with the library's last error message appended after ": ". */
int cli_fail_lib(int code, const char *what);
/* Prints obj pretty to stdout and drops the reference. */
void cli_print_json(struct json_object *obj);
/* Adds k: v to object o; -ENOMEM if v is NULL or the add fails (v is dropped then). */
int cli_json_add(struct json_object *o, const char *k, struct json_object *v);
/* json string from bytes as lowercase hex. */
struct json_object *cli_json_hex(const uint8_t *buf, size_t len);

/* Reads a file for a command; on failure prints the reason and returns -errno. */
int cli_read(const char *path, uint8_t **ret, size_t *ret_len);

int cmd_quote(int argc, char **argv);
int cmd_eventlog(int argc, char **argv);
int cmd_ima(int argc, char **argv);
int cmd_makecredential(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_registrar(int argc, char **argv);
/* The verifier's agents (cmd-verifier.c) and policies (cmd-policy.c). */
int cmd_add(int argc, char **argv);
int cmd_update(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_policy(int argc, char **argv);
/* Secure payloads (cmd-payload.c). */
int cmd_payload(int argc, char **argv);

#endif
