/*
 * prepare.c — `attnbench prepare`: Tulu JSONL to token shards (src/data/prepare.h does the work).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "data/prepare.h"

static ab_status parse_loss_on(const char *v, void *user) {
    ab_loss_on *dest = user;
    if (strcmp(v, "assistant") == 0) *dest = AB_LOSS_ASSISTANT;
    else if (strcmp(v, "all") == 0) *dest = AB_LOSS_ALL;
    else return ab_fail(AB_ERR_USAGE, "prepare: --loss-on %s: expected assistant or all", v);
    return AB_OK;
}

static ab_status parse_on_error(const char *v, void *user) {
    int *fail = user;
    if (strcmp(v, "skip") == 0) *fail = 0;
    else if (strcmp(v, "fail") == 0) *fail = 1;
    else return ab_fail(AB_ERR_USAGE, "prepare: --on-error %s: expected skip or fail", v);
    return AB_OK;
}

static ab_status parse_fraction(const char *v, void *user) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end) return ab_fail(AB_ERR_USAGE, "prepare: --val-fraction %s: expected a number", v);
    *(double *)user = x;
    return AB_OK;
}

/* A one-line progress bar on stderr, redrawn in place (only when stderr is a terminal). */
static void show_progress(uint64_t done, uint64_t total, void *user) {
    (void)user;
    double f = total ? (double)done / (double)total : 1.0;
    if (f > 1) f = 1;
    int width = 40, filled = (int)(f * width);
    fprintf(stderr, "\rprepare [%.*s%*s] %5.1f%% %.1f/%.1f MB", filled, "########################################",
            width - filled, "", 100 * f, (double)done / 1e6, (double)total / 1e6);
    fflush(stderr);
}

int cmd_prepare(int argc, char **argv) {
    ab_prepare_opts o;
    ab_prepare_defaults(&o);
    int no_pack = 0;
    ab_opt opts[] = {
        {"input", OPT_STRING, &o.input, "FILE", "Tulu-format conversations, .jsonl or .jsonl.gz (required)"},
        {"out", OPT_STRING, &o.out_dir, "DIR", "corpus directory to write (required)"},
        {"max-len", OPT_INT, &o.max_len, "N", "tokens per conversation; longer ones are truncated (512)"},
        {"pack", OPT_FLAG, &o.pack, NULL, "concatenate conversations, separated by <|endoftext|>, into one stream"},
        {"no-pack", OPT_FLAG, &no_pack, NULL, "one conversation per row, padded to --max-len (the default)"},
        {"loss-on", OPT_CALLBACK, &o.loss_on, "WHAT", "assistant (the default: assistant tokens and their end-of-text) or all",
         parse_loss_on},
        {"val-fraction", OPT_CALLBACK, &o.val_fraction, "F", "share of conversations for validation, drawn with --seed (0.01)",
         parse_fraction},
        {"seed", OPT_U64, &o.seed, "N", "seed of the validation split (0)"},
        {"threads", OPT_INT, &o.threads, "N", "tokenising threads (0 = one per CPU, the default)"},
        {"on-error", OPT_CALLBACK, &o.fail_on_error, "MODE",
         "skip (the default: count bad lines in stats.json) or fail (stop at the first)", parse_on_error},
        {"limit", OPT_U64, &o.limit, "N", "read at most N conversations (0 = all)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    ab_cmd_spec spec = {
        "prepare", "",
        "Turn Tulu-format JSONL conversations into GPT-2 token shards with loss masks: DIR/train.bin, "
        "DIR/val.bin\n(llm.c format, each with a .rows sidecar) and DIR/stats.json.",
        "Re-running with the same input and options does nothing. Bad lines are counted per reason in "
        "stats.json\n(--on-error skip) or stop the run with FILE:LINE: reason (--on-error fail), writing nothing.\n"
        "Formats: docs/FORMATS.md.",
        opts};
    int first, help;
    ab_status s = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (s != AB_OK) return ab_cli_fail("prepare", s);
    if (help) return 0;
    if (first < argc) return ab_cli_fail("prepare", ab_fail(AB_ERR_USAGE, "unexpected argument '%s'", argv[first]));
    if (o.pack && no_pack) return ab_cli_fail("prepare", ab_fail(AB_ERR_USAGE, "--pack and --no-pack exclude each other"));
    int tty = isatty(STDERR_FILENO);
    if (tty) o.progress = show_progress;
    ab_prepare_result r;
    s = ab_prepare(&o, &r);
    if (tty && o.progress && !r.up_to_date) fprintf(stderr, "\n");
    if (s != AB_OK) return ab_cli_fail("prepare", s);
    if (r.up_to_date) {
        printf("%s: up to date (same input and options)\n", o.out_dir);
        return 0;
    }
    printf("%s: kept %llu of %llu conversations (%llu skipped); train %llu tokens, val %llu tokens; see %s/stats.json\n",
           o.out_dir, (unsigned long long)r.kept, (unsigned long long)r.read, (unsigned long long)r.skipped,
           (unsigned long long)r.train_tokens, (unsigned long long)r.val_tokens, o.out_dir);
    return 0;
}
