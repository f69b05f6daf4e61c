/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat-vtpm-mgr: global options, then one subcommand. */
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>

#include "kq-config.h"
#include "vtpm-mgr.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "run", vtpm_run, "follow libvirt's domain events, keep the VM map, report to the host agent" },
	{ "hook", vtpm_hook, "libvirt's qemu hook: DOMAIN OPERATION SUBOP EXTRA, domain XML on stdin" },
	{ "list", vtpm_list, "print the VM map (--json)" },
	{ "enable", vtpm_enable, "add a TPM 2.0 emulator to a domain (VM, or --xml FILE)" },
	{ "install", vtpm_install, "set up swtpm_setup's cert tool and libvirt's qemu hook" },
	{ "uninstall", vtpm_uninstall, "undo install" },
	{ "cert-tool", vtpm_cert_tool, "swtpm_setup's create_certs_tool (called by swtpm_setup)" },
	{ "inspect", vtpm_inspect, "inspect VM: a vTPM's EK and EK certificate from its saved state" },
};

static void usage(FILE *f)
{
	fputs("usage: " VTPM_MGR " [--config FILE] COMMAND [ARGS...]\n\ncommands:\n", f);
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
	fputs("\n  --config FILE  INI configuration (default " VTPM_DEFAULT_CONFIG ", which may be missing)\n"
	      "exit status: 0 success, 1 failure (reason on stderr), 2 usage or unreadable input\n"
	      "run '" VTPM_MGR " COMMAND --help' for a command's options\n", f);
}

int main(int argc, char **argv)
{
	int i;

	/*
	 * The global options by hand: each command runs getopt over its own
	 * arguments and so finds it in its initial state.
	 */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) {
			if (++i == argc)
				return vtpm_fail(VTPM_EXIT_USAGE, "--config needs a FILE");
			vtpm_config_path = argv[i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			vtpm_config_path = argv[i] + 9;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return VTPM_EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf(VTPM_MGR " %s\n", KQ_VERSION);
			return VTPM_EXIT_OK;
		} else {
			usage(stderr);
			return VTPM_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return VTPM_EXIT_USAGE;
	}
	xmlInitParser();
	for (size_t k = 0; k < ARRAY_SIZE(cmds); k++)
		if (strcmp(argv[i], cmds[k].name) == 0)
			return cmds[k].run(argc - i, argv + i);
	return vtpm_fail(VTPM_EXIT_USAGE, "unknown command '%s' (try " VTPM_MGR " --help)", argv[i]);
}
