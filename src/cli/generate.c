/*
 * generate.c — `attnbench generate` (placeholder until its issue lands; replaced by the real subcommand).
 */
#include <stdio.h>

#include "cli/cli.h"

int cmd_generate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "attnbench generate: not available yet in this build\n");
    return 1;
}
