/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

int cmd_eventlog(int argc, char **argv)
{
	return cli_fail(KQ_EXIT_USAGE, "eventlog: not built yet");
}
