/*
 * test_prepare.c — `prepare` end to end through its API: every bad-input case of the issue with its line
 * number and reason (skip) or FILE:LINE and nothing written (fail); missing final newline, empty and missing
 * files; idempotent re-runs; an interrupted write leaves no corpus that looks complete; .jsonl.gz; output
 * independent of --threads; pack / no-pack / --loss-on all / --limit / the validation split; the built-in
 * sample's cache directory.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/status.h"
#include "data/bpe.h"
#include "data/loader.h"
#include "data/prepare.h"
#include "data/sample.h"
#include "data/shard.h"
#include "test_util.h"

#if HAVE_ZLIB
#include <zlib.h>
#endif

static char dir[256];

static const char *path_in(const char *name) {
    static char p[4][400];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static const char *GOOD = "{\"dataset\": \"t\", \"id\": \"g\", \"messages\": [{\"role\": \"user\", \"content\": \"What is 2+2?\"}, "
                          "{\"role\": \"assistant\", \"content\": \"4\"}]}";

static void write_text(const char *path, const char *text) { ab_write_file_atomic(path, text, strlen(text)); }

static ab_status run_prepare(const char *input, const char *out, int fail, ab_prepare_result *r) {
    ab_prepare_opts o;
    ab_prepare_defaults(&o);
    o.input = input;
    o.out_dir = out;
    o.fail_on_error = fail;
    o.threads = 2;
    return ab_prepare(&o, r);
}

/* The bad lines of the issue, each with the reason it must be reported under. */
typedef struct {
    const char *name;
    const char *line; /* NULL: the 100 MB line, written separately */
    const char *reason;
} bad_case;

static const bad_case BAD[] = {
    {"not_json", "{\"messages\": [oops", "not_json"},
    {"not_object", "[\"a\", \"b\"]", "not_an_object"},
    {"no_messages", "{\"id\": \"x\", \"conversation\": []}", "no_messages"},
    {"unknown_role", "{\"messages\": [{\"role\": \"narrator\", \"content\": \"Once\"}]}", "unknown_role"},
    {"non_string_content", "{\"messages\": [{\"role\": \"user\", \"content\": [\"a\"]}]}", "non_string_content"},
    {"invalid_utf8", "{\"messages\": [{\"role\": \"user\", \"content\": \"caf\xC3\"}]}", "invalid_utf8"},
    {"empty_conversation", "{\"messages\": []}", "empty_conversation"},
    {"line_100MB", NULL, "line_too_long"},
};
#define N_BAD (sizeof BAD / sizeof BAD[0])

/* GOOD on line 1, the bad line on line 2, GOOD on line 3. */
static void write_case_file(const char *path, const bad_case *c) {
    FILE *f = fopen(path, "wb");
    fprintf(f, "%s\n", GOOD);
    if (c->line) {
        fprintf(f, "%s\n", c->line);
    } else {
        static char chunk[1 << 20];
        memset(chunk, 'a', sizeof chunk);
        fputs("{\"messages\": [{\"role\": \"user\", \"content\": \"", f);
        for (int i = 0; i < 100; i++) fwrite(chunk, 1, sizeof chunk, f);
        fputs("\"}]}\n", f);
    }
    fprintf(f, "%s\n", GOOD);
    fclose(f);
}

static json_t *load_stats(const char *corpus) {
    char p[4200];
    snprintf(p, sizeof p, "%s/stats.json", corpus);
    return json_load_file(p, 0, NULL);
}

static void test_bad_lines(void) {
    for (size_t i = 0; i < N_BAD; i++) {
        char input[400], out_skip[420], out_fail[420], name[96];
        snprintf(input, sizeof input, "%s", path_in(BAD[i].name));
        snprintf(out_skip, sizeof out_skip, "%s.skip", input);
        snprintf(out_fail, sizeof out_fail, "%s.fail", input);
        write_case_file(input, &BAD[i]);

        ab_prepare_result r;
        ab_status st = run_prepare(input, out_skip, 0, &r);
        json_t *stats = load_stats(out_skip);
        json_t *entry = json_object_get(json_object_get(stats, "skipped"), BAD[i].reason);
        json_t *lines = json_object_get(entry, "first_lines");
        snprintf(name, sizeof name, "prepare_skip_counts_line[%s]", BAD[i].name);
        TEST_TRUE(name, st == AB_OK && r.kept == 2 && r.skipped == 1 &&
                            json_integer_value(json_object_get(entry, "count")) == 1 && json_array_size(lines) == 1 &&
                            json_integer_value(json_array_get(lines, 0)) == 2,
                  "status %s (%s), kept %llu skipped %llu, stats entry %s", ab_status_name(st), ab_error(),
                  (unsigned long long)r.kept, (unsigned long long)r.skipped, entry ? "present" : "missing");
        json_decref(stats);

        st = run_prepare(input, out_fail, 1, &r);
        char want[1100];
        snprintf(want, sizeof want, "%s:2: ", input);
        snprintf(name, sizeof name, "prepare_fail_names_file_line[%s]", BAD[i].name);
        TEST_TRUE(name, st == AB_ERR_FORMAT && ab_exit_code(st) == 1 && strstr(ab_error(), want) &&
                            strstr(ab_error(), BAD[i].reason),
                  "status %s, message '%s'", ab_status_name(st), ab_error());
        snprintf(name, sizeof name, "prepare_fail_writes_nothing[%s]", BAD[i].name);
        TEST_TRUE(name, !ab_file_exists(out_fail), "%s exists after a failed run", out_fail);
        unlink(input); /* the 100 MB file */
    }
}

static void test_file_edge_cases(void) {
    ab_prepare_result r;
    const char *input = path_in("no_newline.jsonl"), *out = path_in("no_newline.out");
    char text[2048];
    snprintf(text, sizeof text, "%s\n%s", GOOD, GOOD); /* no final newline */
    write_text(input, text);
    ab_status st = run_prepare(input, out, 1, &r);
    json_t *stats = load_stats(out);
    TEST_TRUE("prepare_missing_final_newline_reads_last_line",
              st == AB_OK && r.kept == 2 &&
                  json_is_true(json_object_get(json_object_get(stats, "input"), "missing_final_newline")),
              "status %s (%s), kept %llu", ab_status_name(st), ab_error(), (unsigned long long)r.kept);
    json_decref(stats);

    input = path_in("empty.jsonl");
    out = path_in("empty.out");
    write_text(input, "");
    for (int fail = 0; fail < 2; fail++) {
        st = run_prepare(input, out, fail, &r);
        TEST_TRUE(fail ? "prepare_empty_file_fail_mode" : "prepare_empty_file_skip_mode",
                  st == AB_ERR_FORMAT && strstr(ab_error(), "empty") && !ab_file_exists(out), "status %s: %s",
                  ab_status_name(st), ab_error());
    }
    st = run_prepare(path_in("does-not-exist.jsonl"), path_in("missing.out"), 0, &r);
    TEST_TRUE("prepare_missing_file", st == AB_ERR_IO && strstr(ab_error(), "does-not-exist.jsonl") &&
                                          !ab_file_exists(path_in("missing.out")), "status %s: %s",
              ab_status_name(st), ab_error());
    input = path_in("all_bad.jsonl");
    write_text(input, "x\ny\n");
    st = run_prepare(input, path_in("all_bad.out"), 0, &r);
    TEST_TRUE("prepare_all_lines_skipped_is_an_error", st == AB_ERR_FORMAT && !ab_file_exists(path_in("all_bad.out")),
              "status %s", ab_status_name(st));
}

/* A corpus of the built-in sample's text, used by the tests below. */
static const char *sample_input(void) {
    static char p[400];
    if (!p[0]) {
        snprintf(p, sizeof p, "%s", path_in("sample.jsonl"));
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "head -n 120 data/sample/tulu_sample.jsonl > '%s'", p);
        if (system(cmd) != 0) printf("# cannot copy the sample (run from the repository root)\n");
    }
    return p;
}

static int files_equal(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (ab_read_file(a, &x, &nx) != AB_OK) return 0;
    if (ab_read_file(b, &y, &ny) != AB_OK) {
        free(x);
        return 0;
    }
    int same = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

static long mtime_ns(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec : -1;
}

static void test_idempotent_and_atomic(void) {
    const char *out = path_in("idem.out");
    ab_prepare_result r;
    ab_status st = run_prepare(sample_input(), out, 0, &r);
    char train[1024], stats[1024];
    snprintf(train, sizeof train, "%s/train.bin", out);
    snprintf(stats, sizeof stats, "%s/stats.json", out);
    long t_train = mtime_ns(train), t_stats = mtime_ns(stats);
    ab_status st2 = run_prepare(sample_input(), out, 0, &r);
    TEST_TRUE("prepare_rerun_is_noop", st == AB_OK && st2 == AB_OK && r.up_to_date && mtime_ns(train) == t_train &&
                                           mtime_ns(stats) == t_stats, "up_to_date %d", r.up_to_date);
    /* Other options: prepared again. Make val.bin a directory so that the write fails half-way: the
     * corpus must then not look complete (no stats.json, the loader refuses it). */
    char val[1024];
    snprintf(val, sizeof val, "%s/val.bin", out);
    unlink(val);
    mkdir(val, 0755);
    ab_prepare_opts o;
    ab_prepare_defaults(&o);
    o.input = sample_input();
    o.out_dir = out;
    o.max_len = 256;
    st = ab_prepare(&o, &r);
    ab_loader *l;
    ab_status lst = ab_loader_open(&l, out, SPLIT_TRAIN, 2, 64, AB_BPE_VOCAB, 1);
    TEST_TRUE("prepare_interrupted_write_leaves_incomplete_corpus",
              st != AB_OK && !ab_file_exists(stats) && lst == AB_ERR_FORMAT, "prepare %s, stats.json %s, loader %s",
              ab_status_name(st), ab_file_exists(stats) ? "present" : "absent", ab_status_name(lst));
    rmdir(val);
    st = ab_prepare(&o, &r);
    TEST_TRUE("prepare_recovers_after_interruption", st == AB_OK && !r.up_to_date && ab_file_exists(stats), "%s",
              ab_error());
}

static void test_threads_and_gzip(void) {
    ab_prepare_opts o;
    ab_prepare_defaults(&o);
    o.input = sample_input();
    ab_prepare_result r;
    const char *outs[3] = {path_in("t1.out"), path_in("t3.out"), path_in("gz.out")};
    o.threads = 1;
    o.out_dir = outs[0];
    ab_status s1 = ab_prepare(&o, &r);
    o.threads = 3;
    o.out_dir = outs[1];
    ab_status s3 = ab_prepare(&o, &r);
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/train.bin", outs[0]);
    snprintf(b, sizeof b, "%s/train.bin", outs[1]);
    TEST_TRUE("prepare_same_output_any_threads", s1 == AB_OK && s3 == AB_OK && files_equal(a, b), "%s", ab_error());
#if HAVE_ZLIB
    char gz[420];
    snprintf(gz, sizeof gz, "%s.gz", sample_input());
    char *text;
    size_t n;
    ab_read_file(sample_input(), &text, &n);
    gzFile g = gzopen(gz, "wb");
    gzwrite(g, text, (unsigned)n);
    gzclose(g);
    free(text);
    o.input = gz;
    o.out_dir = outs[2];
    ab_status sg = ab_prepare(&o, &r);
    snprintf(b, sizeof b, "%s/train.bin", outs[2]);
    TEST_TRUE("prepare_reads_gzip", sg == AB_OK && files_equal(a, b), "%s", ab_error());
#endif
}

static void test_modes(void) {
    ab_prepare_opts o;
    ab_prepare_defaults(&o);
    o.input = sample_input();
    ab_prepare_result r;
    ab_shard s;
    char p[1024];

    /* no-pack: rows of max_len, padding never carries loss, every row holds one conversation. */
    o.out_dir = path_in("nopack.out");
    o.max_len = 128;
    o.val_fraction = 0;
    ab_status st = ab_prepare(&o, &r);
    snprintf(p, sizeof p, "%s/train.bin", o.out_dir);
    int ok = st == AB_OK && ab_shard_read(p, AB_BPE_VOCAB, &s) == AB_OK;
    int rows_ok = ok && s.row_len == 128 && s.n_rows == r.kept && s.loss_mask;
    for (size_t row = 0; rows_ok && row < s.n_rows; row++) {
        const uint16_t *t = s.tokens + row * 128;
        const uint8_t *m = s.loss_mask + row * 128;
        size_t len = 128;
        while (len > 0 && t[len - 1] == AB_BPE_EOT && !m[len - 1]) len--; /* trailing padding */
        for (size_t k = len; k < 128; k++) rows_ok &= t[k] == AB_BPE_EOT && !m[k];
        rows_ok &= t[0] == 27; /* "<" of a role header */
    }
    TEST_TRUE("prepare_nopack_rows_padding_without_loss", rows_ok, "%s", ab_error());
    json_t *stats = load_stats(o.out_dir);
    double trunc = json_real_value(json_object_get(stats, "truncated_fraction"));
    TEST_TRUE("prepare_truncation_counted", trunc > 0.05 && trunc < 1, "truncated fraction %g at max-len 128", trunc);
    json_decref(stats);
    if (ok) ab_shard_free(&s);

    /* pack: one stream, separators between conversations, loss-on all counts every token. */
    o.out_dir = path_in("pack.out");
    o.pack = 1;
    o.loss_on = AB_LOSS_ALL;
    st = ab_prepare(&o, &r);
    snprintf(p, sizeof p, "%s/train.bin", o.out_dir);
    ok = st == AB_OK && ab_shard_read(p, AB_BPE_VOCAB, &s) == AB_OK;
    size_t loss = 0, headers_after_eot = 0;
    for (size_t i = 0; ok && i < s.n_tokens; i++) {
        loss += s.loss_mask[i];
        headers_after_eot += i > 0 && s.tokens[i - 1] == AB_BPE_EOT && s.tokens[i] == 27;
    }
    TEST_TRUE("prepare_pack_stream_all_loss", ok && s.row_len == 0 && loss == s.n_tokens &&
                                                  headers_after_eot == r.kept - 1,
              "row_len %d, loss %zu of %zu, conversation starts %zu of %llu", ok ? s.row_len : -1, loss,
              ok ? s.n_tokens : 0, headers_after_eot, (unsigned long long)r.kept);
    if (ok) ab_shard_free(&s);

    /* --limit and the validation split: seeded, every kept conversation in exactly one split. */
    ab_prepare_defaults(&o);
    o.input = sample_input();
    o.out_dir = path_in("limit.out");
    o.limit = 50;
    o.val_fraction = 0.2;
    o.seed = 7;
    st = ab_prepare(&o, &r);
    stats = load_stats(o.out_dir);
    json_t *conv = json_object_get(stats, "conversations");
    json_int_t n_train = json_integer_value(json_object_get(conv, "train")),
               n_val = json_integer_value(json_object_get(conv, "val"));
    TEST_TRUE("prepare_limit_and_val_split", st == AB_OK && r.read == 50 && n_train + n_val == 50 && n_val >= 3 &&
                                                 n_val <= 20, "read %llu, train %lld, val %lld",
              (unsigned long long)r.read, (long long)n_train, (long long)n_val);
    json_decref(stats);
    o.out_dir = path_in("limit2.out");
    st = ab_prepare(&o, &r);
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/val.bin", path_in("limit.out"));
    snprintf(b, sizeof b, "%s/val.bin", o.out_dir);
    TEST_TRUE("prepare_val_split_deterministic", st == AB_OK && files_equal(a, b), "val.bin differs between runs");
}

static void test_sample_corpus(void) {
    setenv("XDG_CACHE_HOME", path_in("cache"), 1);
    char corpus[4096];
    ab_status st = ab_sample_corpus_dir(corpus, sizeof corpus);
    ab_loader *l = NULL;
    ab_status lst = st == AB_OK ? ab_loader_open(&l, corpus, SPLIT_TRAIN, 4, 512, AB_BPE_VOCAB, 1) : st;
    TEST_TRUE("sample_corpus_prepared", st == AB_OK && lst == AB_OK && strstr(corpus, path_in("cache")) &&
                                            ab_loader_rows(l) >= 250, "%s", ab_error());
    ab_loader *v = NULL;
    ab_status vst = st == AB_OK ? ab_loader_open(&v, corpus, SPLIT_VAL, 4, 512, AB_BPE_VOCAB, 1) : st;
    TEST_TRUE("sample_corpus_has_val", vst == AB_OK && ab_loader_rows(v) >= 1, "%s", ab_error());
    ab_loader_close(l);
    ab_loader_close(v);
    char stats[4200];
    snprintf(stats, sizeof stats, "%s/stats.json", corpus);
    long t = mtime_ns(stats);
    char again[4096];
    st = ab_sample_corpus_dir(again, sizeof again);
    TEST_TRUE("sample_corpus_reused", st == AB_OK && strcmp(again, corpus) == 0 && mtime_ns(stats) == t,
              "prepared again or moved");
    json_t *s = load_stats(corpus);
    double trunc = json_real_value(json_object_get(s, "truncated_fraction"));
    TEST_TRUE("sample_has_conversations_over_512_tokens", trunc > 0, "truncated fraction %g", trunc);
    json_decref(s);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ab_test_prepare_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_bad_lines();
    test_file_edge_cases();
    test_idempotent_and_atomic();
    test_threads_and_gzip();
    test_modes();
    test_sample_corpus();
    test_remove_dir(dir);
    return TEST_SUMMARY();
}
