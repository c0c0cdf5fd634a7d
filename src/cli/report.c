/*
 * report.c — `attnbench report` (placeholder until its issue lands; replaced by the real subcommand).
 */
#include <stdio.h>

#include "cli/cli.h"

int cmd_report(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "attnbench report: not available yet in this build\n");
    return 1;
}
