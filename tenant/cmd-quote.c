/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

int cmd_quote(int argc, char **argv)
{
	return cli_fail(KQ_EXIT_USAGE, "quote: not built yet");
}

int cmd_makecredential(int argc, char **argv)
{
	return cli_fail(KQ_EXIT_USAGE, "makecredential: not built yet");
}
