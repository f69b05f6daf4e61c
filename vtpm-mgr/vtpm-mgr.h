/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-vtpm-mgr: the libvirt side of a hypervisor (docs/vtpm.md). It keeps
 * the map VM UUID <-> name <-> vTPM state location <-> state in SQLite, fed by
 * libvirt's lifecycle events (`run`) and by libvirt's qemu hook (`hook`), and
 * reports every change to the host agent over its local socket.
 *
 * The pieces, one file each: config.c (the INI file), state.c (what each
 * libvirt event or hook call does to a VM's state), map.c (the SQLite map),
 * domxml.c (domain XML: reading it as untrusted input, adding a TPM),
 * report.c (the host agent), run.c, hook.c, cmds.c (list, enable),
 * install.c (install, uninstall); certtool.c and inspect.c are the cert-tool
 * and inspect subcommands.
 *
 * Errors follow lib/util: negative errno-style codes with kq_errmsg() set.
 */
#ifndef KQ_VTPM_MGR_H
#define KQ_VTPM_MGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util/util.h"

#define VTPM_MGR "kumquat-vtpm-mgr"
#define VTPM_DEFAULT_CONFIG "/etc/kumquat/vtpm-mgr.conf"

enum {
	VTPM_EXIT_OK = 0,
	VTPM_EXIT_FAIL = 1,  /* the command failed; reason on stderr */
	VTPM_EXIT_USAGE = 2, /* bad arguments or unreadable input */
};

/* ---- configuration (config.c) ---- */

struct vtpm_config {
	char *uri;               /* [libvirt] uri */
	char *database;          /* [vtpm-mgr] database: the map */
	char *swtpm_dir;         /* [vtpm-mgr] swtpm_dir: libvirt's swtpm storage dir */
	uint64_t retry_interval; /* [vtpm-mgr] retry_interval: seconds between re-sends in `run` */
	char *socket;            /* [host-agent] socket */
	char *log_level;         /* [log] level */
	bool log_json;           /* [log] json */
};

/* The --config given before the command, NULL if none (cert-tool and inspect read it here). */
extern const char *vtpm_config_path;

/*
 * Loads path into *cfg, defaults first. NULL means VTPM_DEFAULT_CONFIG, which
 * may be missing (all defaults then) since libvirt runs the hook without
 * arguments of ours; a path given explicitly must exist. Sets up lib/log from
 * [log]. Caller frees with vtpm_config_free (which is also safe after a failure).
 */
int vtpm_config_load(const char *path, struct vtpm_config *cfg);
void vtpm_config_free(struct vtpm_config *cfg);

/* ---- VM states (state.c) ---- */

enum vm_state {
	VM_NONE = 0, /* no row: the map has never seen the VM */
	VM_DEFINED,
	VM_RUNNING,
	VM_STOPPED,
	VM_UNDEFINED,
	VM_MIGRATING_IN,
	VM_MIGRATED_OUT,
};

/* The docs/vtpm.md spelling ("defined", ... "migrated_out"); "none" for VM_NONE. */
const char *vm_state_name(enum vm_state s);
/* -EINVAL if name is not one of the six states. */
int vm_state_from_name(const char *name, enum vm_state *ret);

/*
 * The state after a libvirt lifecycle event (VIR_DOMAIN_EVENT_*, detail) for
 * a VM in state cur. persistent: 1 if the domain is persistent, 0 if it is
 * transient (or already gone: a transient domain vanishes when it stops), -1
 * unknown. Returns cur when the event says nothing about the vTPM's state
 * (SHUTDOWN, SUSPENDED, ...; VM_NONE stays VM_NONE then).
 */
enum vm_state vm_state_after_event(enum vm_state cur, int event, int detail, int persistent);

/*
 * The state after libvirt's qemu hook ran with operation op and sub-operation
 * subop (https://libvirt.org/hooks.html) for a VM in state cur; cur when the
 * call says nothing about it.
 */
enum vm_state vm_state_after_hook(enum vm_state cur, const char *op, const char *subop);

/*
 * The state found when `run` lists a domain (at start and after a
 * reconnect): active, and whether it is paused (an incoming migration waits
 * paused). Keeps stopped and migrated_out for an inactive domain.
 */
enum vm_state vm_state_after_listing(enum vm_state cur, bool active, bool paused);

/* ---- the map (map.c) ---- */

#define VM_NAME_MAX 255  /* what the host agent accepts (libvirt keeps NAME.xml, so names are short) */
#define VM_PATH_MAX 4096

/* True if s is a VM name we record: 1..VM_NAME_MAX bytes, no control character, no '/'. */
bool vm_name_valid(const char *s);
/* True if s is an absolute path of at most VM_PATH_MAX bytes without control characters. */
bool vm_path_valid(const char *s);

struct vm_map;

struct vm_row {
	char uuid[37];
	char *name;
	enum vm_state state;
	char *vtpm_dir; /* NULL: no emulated TPM (or not known) */
	uint8_t *ek_pub, *ek_cert;
	size_t ek_pub_len, ek_cert_len;
	int64_t updated; /* seconds since the epoch */
	int64_t gen;     /* bumped on every change */
	bool reported;   /* the host agent acknowledged this generation */
};

void vm_row_clear(struct vm_row *r);
void vm_rows_free(struct vm_row *rows, size_t n);

/*
 * Opens (creating) the map at path (":memory:" for tests); a missing last
 * directory of path is made, mode 0700. Caller closes with vm_map_close.
 */
int vm_map_open(const char *path, struct vm_map **ret);
void vm_map_close(struct vm_map *m);

/*
 * One change to a VM: in a single transaction the row of uuid (lowercase) is
 * read, next(current state, ud) gives the new state, and name (NULL: keep)
 * and, if set_dir, the state location dir (NULL clears it) are written. A
 * row that actually changes gets a new generation and is marked unreported.
 * A new row needs a name; next returning VM_NONE writes nothing.
 * Returns 1 if the row changed, 0 if not; *ret_state (may be NULL) is the
 * state afterwards.
 */
struct vm_update {
	const char *uuid;
	const char *name;
	bool set_dir;
	const char *dir;
	enum vm_state (*next)(enum vm_state cur, const void *ud);
	const void *ud;
};
int vm_map_update(struct vm_map *m, const struct vm_update *u, enum vm_state *ret_state);

/* The row of uuid; -ENOENT if there is none. Caller clears it with vm_row_clear. */
int vm_map_get(struct vm_map *m, const char *uuid, struct vm_row *ret);

/*
 * All rows (only the unreported ones if unreported_only), ordered by
 * update time; at most VM_MAP_MAX_ROWS (-E2BIG beyond). Caller frees with
 * vm_rows_free.
 */
#define VM_MAP_MAX_ROWS 100000
int vm_map_list(struct vm_map *m, bool unreported_only, struct vm_row **ret, size_t *ret_n);

/* Marks uuid reported if it is still at generation gen (a newer change stays pending). */
int vm_map_mark_reported(struct vm_map *m, const char *uuid, int64_t gen);

/*
 * Stores a vTPM's EK (TPM2B_PUBLIC as the TPM gives it) and EK certificate
 * (DER), either may be NULL to keep what is stored. -ENOENT if uuid has no row.
 */
int vm_map_set_ek(struct vm_map *m, const char *uuid, const uint8_t *ek_pub, size_t ek_pub_len,
		  const uint8_t *ek_cert, size_t ek_cert_len);

/* {"uuid", "name", "state", "vtpm_dir", "reported", "updated", "ek_pub"?, "ek_cert"?} (base64), NULL on ENOMEM. */
struct json_object *vm_row_to_json(const struct vm_row *r);

/* ---- domain XML (domxml.c) ---- */

/* Largest domain XML read from libvirt, a file or the hook's stdin. */
#define DOMXML_MAX (4u << 20)
/* Most elements in one domain XML (real ones have a few hundred). */
#define DOMXML_MAX_ELEMENTS 65536

struct dom_info {
	char uuid[37]; /* lowercase */
	char *name;
	bool has_tpm;  /* any <tpm> device */
	/*
	 * The emulated TPM's state location: <backend type='emulator'>'s
	 * <source path=...> if given, else libvirt's default
	 * swtpm_dir/UUID/tpm2 (tpm1.2 for a TPM 1.2). NULL without an emulator.
	 */
	char *vtpm_dir;
	char tpm_version[4]; /* "2.0" or "1.2" with an emulator, "" otherwise */
};

/*
 * Reads a libvirt domain XML (at most DOMXML_MAX bytes) as untrusted input:
 * no DTD or entity is accepted, nothing is fetched, at most
 * DOMXML_MAX_ELEMENTS elements; the root must be <domain> with exactly one
 * valid <uuid> and one valid <name> (vm_name_valid), and a state location
 * must be vm_path_valid. swtpm_dir NULL is libvirt's default,
 * /var/lib/libvirt/swtpm. -EBADMSG (with the reason) otherwise, -EFBIG if too
 * long. Caller frees with dom_info_free.
 */
int domxml_parse(const char *xml, size_t len, const char *swtpm_dir, struct dom_info *ret);
void dom_info_free(struct dom_info *d);

/*
 * Adds <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
 * (model tpm-tis on aarch64, tpm-spapr on ppc64) under <devices>, which is
 * created if missing. Returns 1 with the new document in *ret (malloc'd,
 * NUL-terminated, re-indented like libvirt's own output), or 0 if the domain
 * has a TPM already (then *ret is untouched). Errors as domxml_parse.
 */
int domxml_add_tpm(const char *xml, size_t len, char **ret, size_t *ret_len);

/* ---- reporting to the host agent (report.c) ---- */

/* {"op": "vm", "vm_uuid", "name", "state", "vtpm_dir"?}, NULL on ENOMEM. */
struct json_object *vm_report_request(const struct vm_row *r);

/*
 * Sends each unreported row to the host agent at socket and marks those it
 * acknowledges. Stops at the first row the host agent cannot be reached for
 * (the rest waits for the next try). Logs what it does; *unreachable says
 * whether the host agent could not be reached last time (then that is logged
 * at debug level only) and is updated. Returns the number of rows still
 * unreported, or a negative code if the map could not be read.
 */
int vm_report_pending(struct vm_map *m, const char *socket, bool *unreachable);

/* ---- subcommands ---- */

/* run [--script FILE]: follow libvirt's events until SIGTERM (run.c). */
int vtpm_run(int argc, char **argv);
/* hook DOMAIN OPERATION SUBOP EXTRA, domain XML on stdin (hook.c). */
int vtpm_hook(int argc, char **argv);
/* list [--json] (cmds.c). */
int vtpm_list(int argc, char **argv);
/* enable (VM | --xml FILE) [--output FILE] (cmds.c). */
int vtpm_enable(int argc, char **argv);
/* install / uninstall [--swtpm-setup-conf PATH] [--hooks-dir DIR] ... (install.c). */
int vtpm_install(int argc, char **argv);
int vtpm_uninstall(int argc, char **argv);
/* cert-tool ARGS: swtpm_setup's create_certs_tool (certtool.c). */
int vtpm_cert_tool(int argc, char **argv);
/* inspect VM: a vTPM's EK and EK certificate from its saved state (inspect.c). */
int vtpm_inspect(int argc, char **argv);

/* "kumquat-vtpm-mgr: <msg>" on one line on stderr (control characters as ?); returns code. */
int vtpm_fail(int code, const char *fmt, ...) _printf_(2, 3);

#endif
