/*
 * prepare.c — `attnbench prepare` (placeholder until its issue lands; replaced by the real subcommand).
 */
#include <stdio.h>

#include "cli/cli.h"

int cmd_prepare(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "attnbench prepare: not available yet in this build\n");
    return 1;
}
