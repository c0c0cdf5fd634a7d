/*
 * download.c — `attnbench download tulu-v2 --out FILE`: the Tulu-v2 SFT mixture as JSONL (src/data/download.h).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "data/download.h"

static void show_progress(uint64_t rows, uint64_t total, void *user) {
    (void)user;
    if (total) fprintf(stderr, "\rdownload: %llu / %llu rows (%.1f%%)", (unsigned long long)rows,
                       (unsigned long long)total, 100.0 * (double)rows / (double)total);
    else fprintf(stderr, "\rdownload: %llu rows", (unsigned long long)rows);
    fflush(stderr);
}

int cmd_download(int argc, char **argv) {
    ab_download_opts o;
    ab_download_defaults(&o);
    ab_opt opts[] = {
        {"out", OPT_STRING, &o.out, "FILE", "the JSONL file to write (required)"},
        {"limit", OPT_U64, &o.limit, "N", "fetch at most N rows (0 = all, the default)"},
        {"endpoint", OPT_STRING, &o.endpoint, "URL", "dataset-viewer API (https://datasets-server.huggingface.co)"},
        {"retries", OPT_INT, &o.max_retries, "N", "retries per request, with exponential backoff (8)"},
        {"retry-delay-ms", OPT_INT, &o.retry_base_ms, "MS", "first backoff delay, doubled per retry (1000)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    ab_cmd_spec spec = {
        "download", "tulu-v2",
        "Fetch allenai/tulu-v2-sft-mixture (train split) from the Hugging Face dataset-viewer rows API as Tulu JSONL.",
        "Pages of 100 rows go to FILE.part; an interrupted download resumes when run again, and FILE appears when\n"
        "the last row is in. Needs libcurl.so.4 at run time (loaded, not linked). Rows the API truncated are left\n"
        "out and counted. Without network access, convert the dataset's Parquet files instead (README).",
        opts};
    int first, help;
    ab_status s = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (s != AB_OK) return ab_cli_fail("download", s);
    if (help) return 0;
    if (first + 1 != argc || strcmp(argv[first], "tulu-v2") != 0)
        return ab_cli_fail("download", ab_fail(AB_ERR_USAGE, "expected the dataset name tulu-v2 (the only one supported)"));
    int tty = isatty(STDERR_FILENO);
    if (tty) o.progress = show_progress;
    ab_download_result r;
    s = ab_download_rows(&o, &r);
    if (tty && !r.already_complete) fprintf(stderr, "\n");
    if (s != AB_OK) return ab_cli_fail("download", s);
    if (r.already_complete) {
        printf("%s exists: nothing to do (delete it to download again)\n", o.out);
        return 0;
    }
    printf("%s: %llu rows, %llu retried requests", o.out, (unsigned long long)r.rows, (unsigned long long)r.retries);
    if (r.resumed_from) printf(", resumed after row %llu", (unsigned long long)r.resumed_from);
    printf("\n");
    if (r.skipped_truncated)
        fprintf(stderr, "attnbench download: warning: %llu rows were truncated by the API and left out; the dataset's "
                        "Parquet files have them complete\n", (unsigned long long)r.skipped_truncated);
    return 0;
}
