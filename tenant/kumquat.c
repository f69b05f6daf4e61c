/* SPDX-License-Identifier: Apache-2.0 */
/* kumquat: the operator's CLI. This file only dispatches to subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kq-config.h"
#include "tpm/tpm.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "quote", cmd_quote, "quote check: verify a TPM 2.0 quote offline" },
	{ "eventlog", cmd_eventlog, "eventlog replay|show: replay or decode a UEFI event log" },
	{ "ima", cmd_ima, "ima replay|verify-sigs: replay an IMA list, check file signatures" },
	{ "makecredential", cmd_makecredential, "make a TPM2_ActivateCredential challenge in software" },
	{ "registrar", cmd_registrar, "registrar list|show|delete|revoke: enrolled hosts and guests" },
	{ "ca", cmd_ca, "ca init|issue|show|verify: a deployment CA, TLS certificates, EK cert checks" },
	{ "add", cmd_add, "add ID --address HOST:PORT: have the verifier attest a host" },
	{ "update", cmd_update, "update ID: change a host's address, interval, policies; --stop, --resume" },
	{ "delete", cmd_delete, "delete ID: stop attesting a host and forget it" },
	{ "status", cmd_status, "status ID: a host's attestation state and reasons (exit 0 if attesting)" },
	{ "list", cmd_list, "list: the hosts the verifier attests" },
	{ "policy", cmd_policy, "policy add|show|list|delete: the verifier's PCR, measured-boot, IMA policies" },
	{ "payload", cmd_payload, "payload send|status: a secret released to an agent only while it attests" },
};

static void usage(FILE *f)
{
	fputs("usage: kumquat COMMAND [ARGS...]\n\ncommands:\n", f);
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		fprintf(f, "  %-15s %s\n", cmds[i].name, cmds[i].help);
	fputs("\nexit status: 0 valid/success, 1 evidence invalid, 2 usage or unreadable input\n"
	      "run 'kumquat COMMAND --help' for a command's options\n", f);
}

int main(int argc, char **argv)
{
	tpm_quiet_tss_log();
	if (argc < 2) {
		usage(stderr);
		return KQ_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return KQ_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("kumquat %s\n", KQ_VERSION);
		return KQ_EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].run(argc - 1, argv + 1);
	return cli_fail(KQ_EXIT_USAGE, "unknown command '%s' (try 'kumquat --help')", argv[1]);
}
