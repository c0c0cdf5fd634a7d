/*
 * main.c — attnbench entry point: the subcommand table.
 *
 * Each subcommand lives in src/cli/<name>.c and parses its own options (cli.h); this file only
 * dispatches, prints the top-level help and the version.
 */
#include <stdio.h>
#include <string.h>

#include "backend/cpu/cpu_gemm.h"
#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"run", cmd_run, "train GPT-2 with one or more attention variants and measure them"},
    {"eval", cmd_eval, "loss (and logits) of a checkpoint on token sequences"},
    {"generate", cmd_generate, "sample text from a checkpoint"},
    {"prepare", cmd_prepare, "turn Tulu-format JSONL conversations into token shards"},
    {"tokenize", cmd_tokenize, "GPT-2 BPE: text to ids and back"},
    {"download", cmd_download, "fetch the Tulu-v2 SFT mixture as JSONL"},
    {"bench", cmd_bench, "benchmarks: training step, attention kernels, tokenizer"},
    {"report", cmd_report, "plots, report.md and report.html from a results directory"},
    {"flops", cmd_flops, "analytical FLOPs per step for each variant"},
    {"list", cmd_list, "the attention variants and the backends implementing each"},
    {"info", cmd_info, "build features, CPU, GPUs, NVML and RAPL access"},
};

static void print_help(void) {
    printf("attnbench %s — train GPT-2 with eight attention variants and measure what each costs\n\n"
           "usage: attnbench <command> [options]    (attnbench <command> --help for its options)\n\ncommands:\n",
           AB_VERSION);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        printf("  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    printf("\nexit codes: 0 success, 1 runtime error (I/O, bad data, device, numerical), 2 usage error\n");
}

int main(int argc, char **argv) {
    ab_cpu_gemm_select_kernels(argv);
    if (argc < 2) {
        print_help();
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        print_help();
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("attnbench %s (%s)\n", AB_VERSION, AB_GIT_COMMIT);
        return 0;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(cmd, subcommands[i].name)) return subcommands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "attnbench: unknown command '%s' (attnbench --help lists them)\n", cmd);
    return 2;
}
