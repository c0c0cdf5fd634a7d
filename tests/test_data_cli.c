/*
 * test_data_cli.c — the data subcommands as a user runs them ($AB_BIN): tokenize (TEXT, --jsonl, --decode,
 * --bench), prepare (success, no-op re-run, --on-error fail with FILE:LINE and exit 1, usage errors exit 2),
 * download (usage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "test_util.h"

static char dir[256];

/* Runs `$AB_BIN ARGS 2>&1`; returns the exit status, output in out. */
static int run(const char *args, char *out, size_t n) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", test_bin(), args);
    return test_run_cmd(cmd, out, n);
}

static void test_tokenize(void) {
    char out[4096], args[1024];
    int rc = run("tokenize 'Hello, world! <|endoftext|>'", out, sizeof out);
    TEST_TRUE("cli_tokenize_text", rc == 0 && strcmp(out, "[15496,11,995,0,1279,91,437,1659,5239,91,29]\n") == 0,
              "rc %d: %s", rc, out);
    rc = run("tokenize --decode '[15496, 11, 995, 0]'", out, sizeof out);
    TEST_TRUE("cli_tokenize_decode", rc == 0 && strcmp(out, "Hello, world!") == 0, "rc %d: %s", rc, out);
    rc = run("tokenize --decode 1,99999", out, sizeof out);
    TEST_TRUE("cli_tokenize_decode_bad_id", rc == 2 && strstr(out, "position 1"), "rc %d: %s", rc, out);
    char jsonl[400];
    snprintf(jsonl, sizeof jsonl, "%s/t.jsonl", dir);
    const char *lines = "{\"text\": \"hi\"}\n{\"text\": \"a\\u0000b\"}\n{\"ids\": 3}\n";
    ab_write_file_atomic(jsonl, lines, strlen(lines));
    snprintf(args, sizeof args, "tokenize --jsonl '%s'", jsonl);
    rc = run(args, out, sizeof out);
    char want_err[500];
    snprintf(want_err, sizeof want_err, "%s:3:", jsonl);
    TEST_TRUE("cli_tokenize_jsonl", rc == 1 && strstr(out, "{\"ids\":[5303]}\n{\"ids\":[64,188,65]}\n") &&
                                        strstr(out, want_err), "rc %d: %s", rc, out);
    rc = run("tokenize", out, sizeof out);
    TEST_TRUE("cli_tokenize_needs_a_mode", rc == 2, "rc %d: %s", rc, out);
    snprintf(args, sizeof args, "tokenize --bench data/sample/tulu_sample.jsonl --repeats 1 --threads 2");
    rc = run(args, out, sizeof out);
    TEST_TRUE("cli_tokenize_bench_json", rc == 0 && strstr(out, "\"mb_per_s\"") && strstr(out, "\"tokens_per_s\""),
              "rc %d: %s", rc, out);
}

static void test_prepare(void) {
    char out[4096], args[1200], input[400], corpus[400];
    snprintf(input, sizeof input, "%s/in.jsonl", dir);
    snprintf(corpus, sizeof corpus, "%s/corpus", dir);
    const char *good = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": "
                       "\"Hello!\"}]}\n";
    char text[1024];
    snprintf(text, sizeof text, "%s%s", good, good);
    ab_write_file_atomic(input, text, strlen(text));
    snprintf(args, sizeof args, "prepare --input '%s' --out '%s' --threads 2", input, corpus);
    int rc = run(args, out, sizeof out);
    TEST_TRUE("cli_prepare_ok", rc == 0 && strstr(out, "kept 2 of 2"), "rc %d: %s", rc, out);
    rc = run(args, out, sizeof out);
    TEST_TRUE("cli_prepare_rerun_up_to_date", rc == 0 && strstr(out, "up to date"), "rc %d: %s", rc, out);

    snprintf(text, sizeof text, "%s{\"messages\": [{\"role\": \"user\", \"content\": 7}]}\n", good);
    ab_write_file_atomic(input, text, strlen(text));
    snprintf(args, sizeof args, "prepare --input '%s' --out '%s/failed' --on-error fail", input, dir);
    rc = run(args, out, sizeof out);
    char want[500];
    snprintf(want, sizeof want, "%s:2: ", input);
    TEST_TRUE("cli_prepare_fail_exit_1_file_line", rc == 1 && strstr(out, want) && strstr(out, "non_string_content"),
              "rc %d: %s", rc, out);
    rc = run("prepare --input x.jsonl --out y --loss-on everything", out, sizeof out);
    TEST_TRUE("cli_prepare_bad_option_exit_2", rc == 2 && strstr(out, "--loss-on"), "rc %d: %s", rc, out);
    rc = run("prepare --out y", out, sizeof out);
    TEST_TRUE("cli_prepare_needs_input_exit_2", rc == 2 && strstr(out, "--input"), "rc %d: %s", rc, out);
}

static void test_download_usage(void) {
    char out[2048];
    int rc = run("download imagenet --out x", out, sizeof out);
    TEST_TRUE("cli_download_unknown_dataset_exit_2", rc == 2 && strstr(out, "tulu-v2"), "rc %d: %s", rc, out);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ab_test_data_cli_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_tokenize();
    test_prepare();
    test_download_usage();
    test_remove_dir(dir);
    return TEST_SUMMARY();
}
