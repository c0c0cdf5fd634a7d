/*
 * list.c — `attnbench list` (placeholder until its issue lands; replaced by the real subcommand).
 */
#include <stdio.h>

#include "cli/cli.h"

int cmd_list(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "attnbench list: not available yet in this build\n");
    return 1;
}
