/*
 * download.c — `attnbench download` (placeholder until its issue lands; replaced by the real subcommand).
 */
#include <stdio.h>

#include "cli/cli.h"

int cmd_download(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "attnbench download: not available yet in this build\n");
    return 1;
}
