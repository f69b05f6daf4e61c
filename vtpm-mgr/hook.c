/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kumquat-vtpm-mgr hook DOMAIN OPERATION SUBOP EXTRA: libvirt's qemu hook
 * (https://libvirt.org/hooks.html), installed as /etc/libvirt/hooks/qemu.d/kumquat.
 *
 * libvirt waits for the hook and a non-zero exit of prepare/begin, start/begin
 * or migrate/begin aborts the VM's start or migration; the hook must not call
 * back into libvirt either (it would deadlock). So this never talks to
 * libvirt, prints nothing on stdout (for migrate/begin and restore/begin
 * libvirt would take it as a replacement domain XML), and exits 0 whatever
 * happens — a bad XML, a map it cannot write, a host agent that is down or
 * hangs — after at most HOOK_DEADLINE seconds. Only a call that cannot come
 * from libvirt (missing arguments) exits 2. Everything goes to stderr, which
 * libvirt logs.
 */
#include "vtpm-mgr.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"

#define MOD "hook"
#define HOOK_DEADLINE 10 /* seconds: the SQLite busy timeout (5 s) and a short wait for the host agent */

static void deadline(int sig)
{
	static const char msg[] = "warn hook: deadline reached, the report waits for `run`\n";

	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(0);
}

struct hook_op {
	const char *op, *subop;
};

static enum vm_state next_state(enum vm_state cur, const void *ud)
{
	const struct hook_op *h = ud;

	return vm_state_after_hook(cur, h->op, h->subop);
}

int vtpm_hook(int argc, char **argv)
{
	struct vtpm_config cfg = {};
	struct vm_map *map = NULL;
	struct dom_info d = {};
	struct hook_op h;
	_cleanup_free_ uint8_t *xml = NULL;
	enum vm_state state;
	size_t len;
	int r;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs("usage: " VTPM_MGR " [--config FILE] hook DOMAIN OPERATION SUBOP EXTRA < domain.xml\n"
		      "libvirt's qemu hook: records the VM's state in the map and reports it to the host agent.\n"
		      "Never calls libvirt, prints nothing on stdout, exits 0 unless called with missing arguments.\n",
		      stdout);
		return VTPM_EXIT_OK;
	}
	if (argc < 4)
		return vtpm_fail(VTPM_EXIT_USAGE, "hook: expected DOMAIN OPERATION SUBOP [EXTRA] (libvirt's qemu hook)");
	signal(SIGALRM, deadline);
	alarm(HOOK_DEADLINE);
	signal(SIGPIPE, SIG_IGN);
	h = (struct hook_op){ .op = argv[2], .subop = argv[3] };

	/* libvirt writes the XML for every operation: read it even if the operation changes nothing */
	r = kq_read_file("-", DOMXML_MAX, &xml, &len);
	if (vtpm_config_load(vtpm_config_path, &cfg) < 0) {
		log_error(MOD, "config: %s", kq_errmsg());
		goto out;
	}
	if (r < 0) {
		log_error(MOD, "%.64s %.16s/%.16s: reading the domain XML: %s", argv[1], h.op, h.subop, kq_errmsg());
		goto out;
	}
	if (domxml_parse((const char *)xml, len, cfg.swtpm_dir, &d) < 0) {
		log_error(MOD, "%.64s %.16s/%.16s: %s", argv[1], h.op, h.subop, kq_errmsg());
		goto out;
	}
	if (strcmp(d.name, argv[1]) != 0) {
		log_error(MOD, "%.64s %.16s/%.16s: the domain XML names '%s', not this domain: ignored", argv[1], h.op,
			  h.subop, d.name);
		goto out;
	}
	if (vm_map_open(cfg.database, &map) < 0) {
		log_error(MOD, "map %s: %s", cfg.database, kq_errmsg());
		goto out;
	}
	r = vm_map_update(map,
			  &(struct vm_update){ .uuid = d.uuid, .name = d.name, .set_dir = true, .dir = d.vtpm_dir,
					       .next = next_state, .ud = &h },
			  &state);
	if (r < 0) {
		log_error(MOD, "VM %s (%s): %s", d.uuid, d.name, kq_errmsg());
		goto out;
	}
	if (r > 0)
		log_info(MOD, "VM %s (%s) is %s (%s/%s)", d.uuid, d.name, vm_state_name(state), h.op, h.subop);
	/* this change and any older one the host agent missed */
	(void)vm_report_pending(map, cfg.socket, &(bool){ false });
out:
	vm_map_close(map);
	dom_info_free(&d);
	vtpm_config_free(&cfg);
	return VTPM_EXIT_OK;
}
