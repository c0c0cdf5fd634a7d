/*
 * tokenize.c — `attnbench tokenize`: GPT-2 BPE from the command line, and the tokenizer benchmark.
 *
 *   attnbench tokenize TEXT                 ids of TEXT as a JSON array
 *   attnbench tokenize --jsonl FILE         lines {"text": ...} -> lines {"ids": [...]} on stdout, in order
 *   attnbench tokenize --decode IDS         "15496, 995" or "[15496, 995]" -> the text's bytes on stdout
 *   attnbench tokenize --bench FILE         throughput on FILE's text as JSON (MB/s with MB = 10^6 bytes)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/fsutil.h"
#include "data/bpe.h"
#include "data/tulu.h"

#if HAVE_JANSSON
#include <jansson.h>
#endif

static ab_status print_ids(const ab_ids *ids, const char *prefix, const char *suffix) {
    fputs(prefix, stdout);
    for (size_t i = 0; i < ids->n; i++) printf(i ? ",%d" : "%d", ids->ids[i]);
    fputs(suffix, stdout);
    return ferror(stdout) ? ab_fail(AB_ERR_IO, "stdout: write error") : AB_OK;
}

static ab_status tokenize_text(const char *text) {
    ab_bpe_encoder *e;
    AB_TRY(ab_bpe_encoder_new(&e));
    ab_ids ids = {0};
    ab_status st = ab_bpe_encode(e, text, strlen(text), &ids);
    if (st == AB_OK) st = print_ids(&ids, "[", "]\n");
    ab_ids_free(&ids);
    ab_bpe_encoder_free(e);
    return st;
}

#if HAVE_JANSSON
static ab_status tokenize_jsonl(const char *path) {
    ab_bpe_encoder *e;
    AB_TRY(ab_bpe_encoder_new(&e));
    ab_jsonl_reader *r;
    ab_status st = ab_jsonl_open(&r, path, AB_JSONL_MAX_LINE);
    ab_ids ids = {0};
    while (st == AB_OK) {
        const char *line;
        size_t len;
        long lineno;
        int too_long;
        st = ab_jsonl_next(r, &line, &len, &lineno, &too_long);
        if (st != AB_OK || !line) break;
        if (too_long) {
            st = ab_fail(AB_ERR_FORMAT, "%s:%ld: line longer than %u bytes", path, lineno, AB_JSONL_MAX_LINE);
            break;
        }
        json_error_t err;
        json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &err);
        json_t *text = json_object_get(o, "text");
        if (!json_is_string(text)) {
            st = ab_fail(AB_ERR_FORMAT, "%s:%ld: expected an object {\"text\": \"...\"}%s%s", path, lineno, o ? "" : ": ",
                         o ? "" : err.text);
            json_decref(o);
            break;
        }
        ids.n = 0;
        st = ab_bpe_encode(e, json_string_value(text), json_string_length(text), &ids);
        json_decref(o);
        if (st == AB_OK) st = print_ids(&ids, "{\"ids\":[", "]}\n");
    }
    ab_ids_free(&ids);
    ab_jsonl_close(r);
    ab_bpe_encoder_free(e);
    return st;
}
#else
static ab_status tokenize_jsonl(const char *path) {
    return ab_fail(AB_ERR_UNSUPPORTED, "%s: this build has no jansson to read JSON", path);
}
#endif

static ab_status decode_ids(const char *list) {
    ab_ids ids = {0};
    const char *p = list;
    ab_status st = AB_OK;
    while (st == AB_OK && *p) {
        if (strchr("[], \t\n", *p)) {
            p++;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno)
            st = ab_fail(AB_ERR_USAGE, "--decode: expected integers separated by commas at offset %ld of '%s'",
                         (long)(p - list), list);
        else st = ab_ids_push(&ids, v < INT32_MIN || v > INT32_MAX ? -1 : (int32_t)v);
        p = end;
    }
    char *text = NULL;
    size_t len = 0;
    if (st == AB_OK) st = ab_bpe_decode(ids.ids, ids.n, &text, &len);
    if (st == AB_OK && fwrite(text, 1, len, stdout) != len) st = ab_fail(AB_ERR_IO, "stdout: write error");
    free(text);
    ab_ids_free(&ids);
    return st;
}

/* ------------------------------------------------------------------ benchmark */

typedef struct {
    const char *text;
    size_t len;
    size_t n_tokens;
    ab_status status;
    char error[256];
} bench_part;

static void *bench_worker(void *arg) {
    bench_part *p = arg;
    ab_bpe_encoder *e;
    ab_ids ids = {0};
    p->status = ab_bpe_encoder_new(&e);
    if (p->status == AB_OK) p->status = ab_bpe_encode(e, p->text, p->len, &ids);
    if (p->status != AB_OK) snprintf(p->error, sizeof p->error, "%s", ab_error());
    p->n_tokens = ids.n;
    ab_ids_free(&ids);
    ab_bpe_encoder_free(e);
    return NULL;
}

/* Cut text into n parts at piece boundaries: after a '\n' followed by a non-space byte. */
static int split_parts(const char *text, size_t len, int n, bench_part *parts) {
    size_t start = 0;
    int k = 0;
    for (; k < n - 1 && start < len; k++) {
        size_t cut = start + (len - start) / (size_t)(n - k);
        if (cut == start) cut++;
        while (cut < len && !(text[cut - 1] == '\n' && !strchr(" \t\r\n\v\f", text[cut]))) cut++;
        parts[k] = (bench_part){text + start, cut - start, 0, AB_OK, ""};
        start = cut;
    }
    parts[k++] = (bench_part){text + start, len - start, 0, AB_OK, ""};
    return k;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ab_status bench(const char *path, int threads, int repeats) {
    if (threads < 1 || threads > 256) return ab_fail(AB_ERR_USAGE, "--threads %d: expected 1 .. 256", threads);
    if (repeats < 1) return ab_fail(AB_ERR_USAGE, "--repeats %d: expected >= 1", repeats);
    char *text;
    size_t len;
    AB_TRY(ab_read_file(path, &text, &len));
    ab_status st = ab_bpe_load(); /* table loading is not part of the measurement */
    bench_part parts[256];
    double best = 0;
    size_t n_tokens = 0;
    for (int rep = 0; rep < repeats && st == AB_OK; rep++) {
        int n = split_parts(text, len, threads, parts);
        pthread_t tid[256];
        double t0 = now_seconds();
        for (int k = 1; k < n; k++) pthread_create(&tid[k], NULL, bench_worker, &parts[k]);
        bench_worker(&parts[0]);
        for (int k = 1; k < n; k++) pthread_join(tid[k], NULL);
        double dt = now_seconds() - t0;
        n_tokens = 0;
        for (int k = 0; k < n && st == AB_OK; k++) {
            if (parts[k].status != AB_OK) st = ab_fail(parts[k].status, "%s", parts[k].error);
            n_tokens += parts[k].n_tokens;
        }
        if (rep == 0 || dt < best) best = dt;
    }
    if (st == AB_OK)
        printf("{\"tokenizer\": \"attnbench\", \"file\": \"%s\", \"bytes\": %zu, \"tokens\": %zu, \"threads\": %d, "
               "\"repeats\": %d, \"seconds\": %.6f, \"mb_per_s\": %.2f, \"tokens_per_s\": %.0f}\n",
               path, len, n_tokens, threads, repeats, best, (double)len / 1e6 / best, (double)n_tokens / best);
    free(text);
    return st;
}

int cmd_tokenize(int argc, char **argv) {
    const char *jsonl = NULL, *decode = NULL, *bench_file = NULL;
    int threads = 1, repeats = 3;
    ab_opt opts[] = {
        {"jsonl", OPT_STRING, &jsonl, "FILE", "read lines {\"text\": ...}, write lines {\"ids\": [...]} in order"},
        {"decode", OPT_STRING, &decode, "IDS", "ids (\"15496,995\" or \"[15496, 995]\") to text"},
        {"bench", OPT_STRING, &bench_file, "FILE", "throughput on FILE as JSON: MB/s (10^6 bytes) and tokens/s"},
        {"threads", OPT_INT, &threads, "N", "threads for --bench, each encoding one part of the file (1)"},
        {"repeats", OPT_INT, &repeats, "N", "--bench: passes, each with fresh encoders; the fastest counts (3)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    ab_cmd_spec spec = {
        "tokenize", "[TEXT]",
        "GPT-2 byte-level BPE: TEXT to ids as a JSON array, or one of the modes below.",
        "<|endoftext|> inside text is ordinary text (never id 50256). Invalid UTF-8 is replaced by U+FFFD.",
        opts};
    int first, help;
    ab_status s = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (s != AB_OK) return ab_cli_fail("tokenize", s);
    if (help) return 0;
    int modes = (jsonl != NULL) + (decode != NULL) + (bench_file != NULL) + (first < argc);
    if (modes != 1 || first + 1 < argc)
        return ab_cli_fail("tokenize", ab_fail(AB_ERR_USAGE, "give one of TEXT, --jsonl FILE, --decode IDS, --bench FILE "
                                                             "(see attnbench tokenize --help)"));
    if (jsonl) s = tokenize_jsonl(jsonl);
    else if (decode) s = decode_ids(decode);
    else if (bench_file) s = bench(bench_file, threads, repeats);
    else s = tokenize_text(argv[first]);
    if (s != AB_OK) return ab_cli_fail("tokenize", s);
    return 0;
}
