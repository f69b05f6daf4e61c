/* SPDX-License-Identifier: Apache-2.0 */
/* `inspect-cli inspect ARGS`: vtpm_inspect() on its own, for tests. */
#include <stdio.h>
#include <string.h>

#include "inspect.h"
#include "tpm/tpm.h"

int main(int argc, char **argv)
{
	tpm_quiet_tss_log();
	if (argc < 2 || strcmp(argv[1], "inspect") != 0) {
		fputs("usage: inspect-cli inspect ...\n", stderr);
		return 2;
	}
	return vtpm_inspect(argc - 1, argv + 1);
}
