/*
 * prepare.c — the `prepare` pipeline (contract in prepare.h).
 *
 * The main thread reads lines in batches of BATCH_LINES; worker threads parse and tokenise the lines of a
 * batch (each worker with its own encoder); the main thread then takes the results in line order, so the
 * output is the same for any number of threads. Conversations are collected per split (tokens, loss mask,
 * start offsets) and turned into rows or a packed stream only when the input has been read to its end.
 */
#include "data/prepare.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/rng.h"
#include "data/bpe.h"
#include "data/hash.h"
#include "data/shard.h"
#include "data/tulu.h"

#if HAVE_JANSSON
#include <jansson.h>
#endif

#define BATCH_LINES 1024
#define FIRST_LINES_KEPT 10    /* line numbers listed per skip reason in stats.json */
#define HIST_BIN 64            /* tokens per bin of the length histogram */
#define MAX_THREADS 256

void ab_prepare_defaults(ab_prepare_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_len = 512;
    o->loss_on = AB_LOSS_ASSISTANT;
    o->val_fraction = 0.01;
    o->max_line = AB_JSONL_MAX_LINE;
}

#if HAVE_JANSSON

/* ------------------------------------------------------------------ one batch */

typedef struct {
    long lineno;
    int too_long;
    size_t off, len;            /* of the line in the batch text */
    ab_bad_reason reason;
    char detail[160];
    ab_ids tokens;              /* the whole conversation (truncated later) */
    ab_bytes mask;
} item;

typedef struct {
    char *text;
    size_t text_len, text_cap;
    item items[BATCH_LINES];
    size_t n;
    size_t next;                /* next item to process (shared by workers, under lock) */
    pthread_mutex_t lock;
    ab_loss_on loss_on;
    size_t max_line;
    ab_status status;           /* first worker failure (OOM, ...) */
    char error[512];
} batch;

typedef struct {
    batch *b;
    ab_bpe_encoder *enc;
    ab_template_scratch *scratch;
} worker;

static void process_item(worker *w, item *it) {
    it->tokens.n = 0;
    it->mask.n = 0;
    it->detail[0] = '\0';
    if (it->too_long) {
        it->reason = AB_BAD_LINE_TOO_LONG;
        snprintf(it->detail, sizeof it->detail, "line longer than %zu bytes", w->b->max_line);
        return;
    }
    ab_conversation conv;
    it->reason = ab_tulu_parse(w->b->text + it->off, it->len, &conv, it->detail, sizeof it->detail);
    if (it->reason != AB_BAD_NONE) return;
    ab_status st = ab_template_encode(w->enc, w->scratch, &conv, w->b->loss_on, &it->tokens, &it->mask);
    ab_conversation_free(&conv);
    if (st != AB_OK) {
        pthread_mutex_lock(&w->b->lock);
        if (w->b->status == AB_OK) {
            w->b->status = st;
            snprintf(w->b->error, sizeof w->b->error, "line %ld: %s", it->lineno, ab_error());
        }
        pthread_mutex_unlock(&w->b->lock);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->b->lock);
        size_t i = w->b->next++;
        pthread_mutex_unlock(&w->b->lock);
        if (i >= w->b->n) return NULL;
        process_item(w, &w->b->items[i]);
    }
}

static ab_status run_batch(batch *b, worker *workers, int n_workers) {
    b->next = 0;
    b->status = AB_OK;
    pthread_t tid[MAX_THREADS];
    int started = 0;
    for (int t = 1; t < n_workers; t++, started++)
        if (pthread_create(&tid[t], NULL, worker_main, &workers[t]) != 0) break;
    worker_main(&workers[0]);
    for (int t = 1; t <= started; t++) pthread_join(tid[t], NULL);
    if (b->status != AB_OK) return ab_fail(b->status, "%s", b->error);
    return AB_OK;
}

static ab_status batch_add_line(batch *b, const char *line, size_t len, long lineno, int too_long) {
    if (b->text_len + len > b->text_cap) {
        size_t cap = b->text_cap ? b->text_cap : 1 << 20;
        while (cap < b->text_len + len) cap *= 2;
        char *t = realloc(b->text, cap);
        if (!t) return ab_fail(AB_ERR_OOM, "line %ld: out of memory for the batch", lineno);
        b->text = t;
        b->text_cap = cap;
    }
    memcpy(b->text + b->text_len, line, len);
    item *it = &b->items[b->n++];
    it->lineno = lineno;
    it->too_long = too_long;
    it->off = b->text_len;
    it->len = len;
    b->text_len += len;
    return AB_OK;
}

/* ------------------------------------------------------------------ collected splits */

typedef struct {
    uint16_t *tok;
    uint8_t *mask;
    size_t n, cap;
    size_t *starts;            /* (n_conv) offset of each conversation */
    size_t n_conv, conv_cap;
} split_buf;

static ab_status split_append(split_buf *s, const int32_t *tok, const uint8_t *mask, size_t n) {
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 16;
        while (cap < s->n + n) cap *= 2;
        uint16_t *t = realloc(s->tok, cap * sizeof *t);
        if (t) s->tok = t;
        uint8_t *m = realloc(s->mask, cap);
        if (m) s->mask = m;
        if (!t || !m) return ab_fail(AB_ERR_OOM, "prepare: out of memory for %zu tokens", cap);
        s->cap = cap;
    }
    if (s->n_conv == s->conv_cap) {
        size_t cap = s->conv_cap ? s->conv_cap * 2 : 1024;
        size_t *st = realloc(s->starts, cap * sizeof *st);
        if (!st) return ab_fail(AB_ERR_OOM, "prepare: out of memory");
        s->starts = st;
        s->conv_cap = cap;
    }
    s->starts[s->n_conv++] = s->n;
    for (size_t i = 0; i < n; i++) {
        s->tok[s->n + i] = (uint16_t)tok[i];
        s->mask[s->n + i] = mask[i];
    }
    s->n += n;
    return AB_OK;
}

static void split_free(split_buf *s) {
    free(s->tok);
    free(s->mask);
    free(s->starts);
    memset(s, 0, sizeof *s);
}

/* Token range of conversation i. */
static void conv_range(const split_buf *s, size_t i, size_t *start, size_t *n) {
    *start = s->starts[i];
    *n = (i + 1 < s->n_conv ? s->starts[i + 1] : s->n) - *start;
}

typedef struct {
    uint16_t *tok;
    uint8_t *mask;
    size_t n;
    size_t rows;
    uint64_t padding, loss;
} shard_data;

/* Rows of max_len (no-pack) or one stream with separators (pack). */
static ab_status build_shard(const split_buf *s, const ab_prepare_opts *o, shard_data *out) {
    memset(out, 0, sizeof *out);
    size_t total = o->pack ? s->n + s->n_conv : s->n_conv * (size_t)o->max_len;
    out->tok = malloc(total ? total * sizeof *out->tok : 2);
    out->mask = malloc(total ? total : 1);
    if (!out->tok || !out->mask) return ab_fail(AB_ERR_OOM, "prepare: out of memory for %zu tokens", total);
    size_t w = 0;
    for (size_t i = 0; i < s->n_conv; i++) {
        size_t start, n;
        conv_range(s, i, &start, &n);
        if (o->pack && i > 0 && !(w && out->tok[w - 1] == AB_BPE_EOT)) {
            out->tok[w] = AB_BPE_EOT; /* separator after a conversation that did not end with one */
            out->mask[w++] = o->loss_on == AB_LOSS_ALL;
        }
        memcpy(out->tok + w, s->tok + start, n * sizeof *out->tok);
        memcpy(out->mask + w, s->mask + start, n);
        w += n;
        if (!o->pack) {
            for (size_t k = n; k < (size_t)o->max_len; k++, w++) {
                out->tok[w] = AB_BPE_EOT;
                out->mask[w] = 0;
            }
            out->padding += (size_t)o->max_len - n;
        }
    }
    out->n = w;
    out->rows = o->pack ? 0 : s->n_conv;
    for (size_t i = 0; i < w; i++) out->loss += out->mask[i];
    return AB_OK;
}

/* ------------------------------------------------------------------ stats.json */

typedef struct {
    uint64_t read, kept, truncated, rows_without_loss;
    uint64_t skip_count[AB_BAD_COUNT];
    long first_lines[AB_BAD_COUNT][FIRST_LINES_KEPT];
    uint64_t *hist;            /* (n_bins + 1): lengths before truncation; the last bin counts > max_len */
    int n_bins;
    uint64_t content_tokens;   /* after truncation */
} counters;

static json_t *options_json(const ab_prepare_opts *o) {
    return json_pack("{s:i, s:b, s:s, s:f, s:I, s:I, s:s}", "max_len", o->max_len, "pack", o->pack, "loss_on",
                     o->loss_on == AB_LOSS_ALL ? "all" : "assistant", "val_fraction", o->val_fraction, "seed",
                     (json_int_t)o->seed, "limit", (json_int_t)o->limit, "on_error", o->fail_on_error ? "fail" : "skip");
}

static void hash_hex(uint64_t h, char out[17]) { snprintf(out, 17, "%016" PRIx64, h); }

/* Does DIR/stats.json record this input hash and these options, with both shards present? */
static int already_prepared(const ab_prepare_opts *o, uint64_t input_hash) {
    char path[4200];
    snprintf(path, sizeof path, "%s/stats.json", o->out_dir);
    json_t *stats = json_load_file(path, 0, NULL);
    if (!stats) return 0;
    char hex[17];
    hash_hex(input_hash, hex);
    json_t *opts = options_json(o);
    const char *recorded = json_string_value(json_object_get(json_object_get(stats, "input"), "hash"));
    int same = recorded && strcmp(recorded, hex) == 0 && json_equal(opts, json_object_get(stats, "options"));
    json_decref(opts);
    json_decref(stats);
    for (int s = 0; s < 2 && same; s++) {
        snprintf(path, sizeof path, "%s/%s.bin", o->out_dir, s ? "val" : "train");
        same = ab_file_exists(path);
    }
    return same;
}

static ab_status write_stats(const ab_prepare_opts *o, uint64_t input_hash, uint64_t input_bytes, const counters *c,
                             const split_buf *train, const split_buf *val, const shard_data *sh, int missing_newline) {
    char hex[17];
    hash_hex(input_hash, hex);
    json_t *skipped = json_object();
    uint64_t n_skipped = 0;
    for (int r = 1; r < AB_BAD_COUNT; r++) {
        if (!c->skip_count[r]) continue;
        n_skipped += c->skip_count[r];
        json_t *lines = json_array();
        for (uint64_t k = 0; k < c->skip_count[r] && k < FIRST_LINES_KEPT; k++)
            json_array_append_new(lines, json_integer(c->first_lines[r][k]));
        json_object_set_new(skipped, ab_bad_reason_name((ab_bad_reason)r),
                            json_pack("{s:I, s:o}", "count", (json_int_t)c->skip_count[r], "first_lines", lines));
    }
    json_t *hist = json_array();
    for (int b = 0; b <= c->n_bins; b++) json_array_append_new(hist, json_integer((json_int_t)c->hist[b]));
    uint64_t row_tokens = sh[0].n + sh[1].n;
    json_t *root = json_pack(
        "{s:s, s:i, s:{s:s, s:I, s:s, s:b}, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o,"
        " s:{s:I, s:I, s:I, s:I, s:I}, s:{s:i, s:I, s:I}, s:f, s:f, s:{s:i, s:s, s:o}}",
        "format", "attnbench-corpus", "version", 1,
        "input", "path", o->input, "bytes", (json_int_t)input_bytes, "hash", hex, "missing_final_newline", missing_newline,
        "options", options_json(o),
        "conversations", "read", (json_int_t)c->read, "kept", (json_int_t)c->kept, "skipped", (json_int_t)n_skipped,
        "train", (json_int_t)train->n_conv, "val", (json_int_t)val->n_conv, "truncated", (json_int_t)c->truncated,
        "without_loss", (json_int_t)c->rows_without_loss,
        "skipped", skipped,
        "tokens", "train", (json_int_t)sh[0].n, "val", (json_int_t)sh[1].n, "content", (json_int_t)c->content_tokens,
        "padding", (json_int_t)(sh[0].padding + sh[1].padding), "loss", (json_int_t)(sh[0].loss + sh[1].loss),
        "rows", "row_len", o->pack ? 0 : o->max_len, "train", (json_int_t)sh[0].rows, "val", (json_int_t)sh[1].rows,
        "truncated_fraction", c->kept ? (double)c->truncated / (double)c->kept : 0.0,
        "padded_fraction", row_tokens ? (double)(sh[0].padding + sh[1].padding) / (double)row_tokens : 0.0,
        "length_histogram", "bin_width", HIST_BIN, "last_bin", "conversations longer than max_len (before truncation)",
        "counts", hist);
    if (!root) return ab_fail(AB_ERR_INTERNAL, "prepare: cannot build stats.json");
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!text) return ab_fail(AB_ERR_OOM, "prepare: out of memory for stats.json");
    char path[4200];
    snprintf(path, sizeof path, "%s/stats.json", o->out_dir);
    size_t n = strlen(text);
    text[n] = '\n'; /* replaces the NUL: write n + 1 bytes ending in a newline */
    ab_status st = ab_write_file_atomic(path, text, n + 1);
    free(text);
    return st;
}

/* ------------------------------------------------------------------ the pipeline */

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

/* Validation membership of the conversation on line `lineno`. */
static int goes_to_val(const ab_prepare_opts *o, long lineno) {
    ab_rng r;
    ab_rng_derive(&r, o->seed, 0x76616c73706c6974ULL ^ (uint64_t)lineno); /* "valsplit" */
    return ab_rng_uniform(&r) < o->val_fraction;
}

static ab_status check_opts(const ab_prepare_opts *o) {
    if (!o->input || !o->out_dir) return ab_fail(AB_ERR_USAGE, "prepare: --input FILE and --out DIR are required");
    if (o->max_len < 2 || o->max_len > 1 << 20)
        return ab_fail(AB_ERR_USAGE, "prepare: --max-len %d: expected 2 .. 1048576 tokens", o->max_len);
    if (!(o->val_fraction >= 0 && o->val_fraction < 1))
        return ab_fail(AB_ERR_USAGE, "prepare: --val-fraction %g: expected 0 <= f < 1", o->val_fraction);
    if (o->threads < 0 || o->threads > MAX_THREADS)
        return ab_fail(AB_ERR_USAGE, "prepare: --threads %d: expected 0 (all CPUs) .. %d", o->threads, MAX_THREADS);
    return AB_OK;
}

/* Takes the results of one batch in line order into the splits and counters. */
static ab_status absorb_batch(const ab_prepare_opts *o, batch *b, counters *c, split_buf *train, split_buf *val) {
    for (size_t i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->reason != AB_BAD_NONE) {
            if (o->fail_on_error)
                return ab_fail(AB_ERR_FORMAT, "%s:%ld: %s [%s]", o->input, it->lineno, it->detail,
                               ab_bad_reason_name(it->reason));
            if (c->skip_count[it->reason] < FIRST_LINES_KEPT) c->first_lines[it->reason][c->skip_count[it->reason]] = it->lineno;
            c->skip_count[it->reason]++;
            continue;
        }
        size_t n = it->tokens.n;
        c->kept++;
        c->hist[n > (size_t)o->max_len ? (size_t)c->n_bins : (n ? (n - 1) / HIST_BIN : 0)]++;
        if (n > (size_t)o->max_len) {
            c->truncated++;
            n = (size_t)o->max_len;
        }
        c->content_tokens += n;
        int any_loss = 0;
        for (size_t k = 1; k < n && !any_loss; k++) any_loss = it->mask.v[k]; /* token 0 is never a target */
        c->rows_without_loss += !any_loss;
        AB_TRY(split_append(goes_to_val(o, it->lineno) ? val : train, it->tokens.ids, it->mask.v, n));
    }
    return AB_OK;
}

/* Leaves at least one conversation in validation when the fraction asks for one and two exist. */
static ab_status ensure_val(const ab_prepare_opts *o, split_buf *train, split_buf *val) {
    if (o->val_fraction <= 0 || val->n_conv > 0 || train->n_conv < 2) return AB_OK;
    size_t start, n;
    conv_range(train, train->n_conv - 1, &start, &n);
    int32_t *tok = malloc((n ? n : 1) * sizeof *tok);
    if (!tok) return ab_fail(AB_ERR_OOM, "prepare: out of memory");
    for (size_t k = 0; k < n; k++) tok[k] = train->tok[start + k];
    ab_status st = split_append(val, tok, train->mask + start, n);
    free(tok);
    train->n = start;
    train->n_conv--;
    return st;
}

static ab_status write_outputs(const ab_prepare_opts *o, uint64_t input_hash, uint64_t input_bytes, const counters *c,
                               const split_buf *train, const split_buf *val, int missing_newline,
                               ab_prepare_result *result) {
    shard_data sh[2] = {{0}, {0}};
    ab_status st = build_shard(train, o, &sh[0]);
    if (st == AB_OK) st = build_shard(val, o, &sh[1]);
    char path[4200];
    if (st == AB_OK) st = ab_mkdir_p(o->out_dir);
    if (st == AB_OK) { /* the directory is incomplete from here until stats.json is written again */
        snprintf(path, sizeof path, "%s/stats.json", o->out_dir);
        unlink(path);
    }
    int row_len = o->pack ? 0 : o->max_len;
    for (int s = 0; s < 2 && st == AB_OK; s++) {
        snprintf(path, sizeof path, "%s/%s.bin", o->out_dir, s ? "val" : "train");
        st = ab_shard_write(path, sh[s].tok, sh[s].n, sh[s].mask, row_len);
    }
    if (st == AB_OK) st = write_stats(o, input_hash, input_bytes, c, train, val, sh, missing_newline);
    result->train_tokens = sh[0].n;
    result->val_tokens = sh[1].n;
    for (int s = 0; s < 2; s++) {
        free(sh[s].tok);
        free(sh[s].mask);
    }
    return st;
}

ab_status ab_prepare(const ab_prepare_opts *o, ab_prepare_result *result) {
    memset(result, 0, sizeof *result);
    AB_TRY(check_opts(o));
    uint64_t input_hash, input_bytes;
    AB_TRY(ab_hash_file(o->input, &input_hash, &input_bytes));
    if (already_prepared(o, input_hash)) {
        result->up_to_date = 1;
        return AB_OK;
    }
    AB_TRY(ab_bpe_load());
    int n_workers = o->threads ? o->threads : online_cpus();
    worker workers[MAX_THREADS];
    memset(workers, 0, sizeof workers);
    batch *b = calloc(1, sizeof *b);
    counters c = {0};
    c.n_bins = (o->max_len + HIST_BIN - 1) / HIST_BIN;
    c.hist = calloc((size_t)c.n_bins + 1, sizeof *c.hist);
    split_buf train = {0}, val = {0};
    ab_jsonl_reader *reader = NULL;
    ab_status st = b && c.hist ? AB_OK : ab_fail(AB_ERR_OOM, "prepare: out of memory");
    if (st == AB_OK) {
        pthread_mutex_init(&b->lock, NULL);
        b->loss_on = o->loss_on;
        b->max_line = o->max_line;
    }
    for (int t = 0; t < n_workers && st == AB_OK; t++) {
        workers[t].b = b;
        workers[t].scratch = ab_template_scratch_new();
        st = ab_bpe_encoder_new(&workers[t].enc);
        if (st == AB_OK && !workers[t].scratch) st = ab_fail(AB_ERR_OOM, "prepare: out of memory");
    }
    if (st == AB_OK) st = ab_jsonl_open(&reader, o->input, o->max_line);
    int done = 0;
    while (st == AB_OK && !done) {
        b->n = 0;
        b->text_len = 0;
        while (b->n < BATCH_LINES && (!o->limit || c.read < o->limit)) {
            const char *line;
            size_t len, start, n;
            long lineno;
            int too_long;
            st = ab_jsonl_next(reader, &line, &len, &lineno, &too_long);
            if (st != AB_OK || !line) break;
            ab_py_strip(line, len, &start, &n);
            if (!too_long && n == 0) continue; /* blank line */
            c.read++;
            st = batch_add_line(b, line, len, lineno, too_long);
            if (st != AB_OK) break;
        }
        done = b->n < BATCH_LINES;
        if (st == AB_OK && b->n) st = run_batch(b, workers, n_workers);
        if (st == AB_OK) st = absorb_batch(o, b, &c, &train, &val);
        if (st == AB_OK && o->progress) {
            uint64_t at, total;
            ab_jsonl_progress(reader, &at, &total);
            o->progress(at, total, o->progress_user);
        }
    }
    int missing_newline = reader && ab_jsonl_missing_final_newline(reader);
    if (st == AB_OK && c.kept == 0)
        st = ab_fail(AB_ERR_FORMAT, "%s: no conversations to prepare (%s)", o->input,
                     c.read ? "every line was skipped; see --on-error fail for the first reason" : "the file is empty");
    if (st == AB_OK) st = ensure_val(o, &train, &val);
    if (st == AB_OK) st = write_outputs(o, input_hash, input_bytes, &c, &train, &val, missing_newline, result);
    result->read = c.read;
    result->kept = c.kept;
    result->skipped = c.read - c.kept;
    ab_jsonl_close(reader);
    for (int t = 0; t < n_workers; t++) {
        ab_bpe_encoder_free(workers[t].enc);
        ab_template_scratch_free(workers[t].scratch);
    }
    if (b) {
        for (size_t i = 0; i < BATCH_LINES; i++) {
            ab_ids_free(&b->items[i].tokens);
            ab_bytes_free(&b->items[i].mask);
        }
        free(b->text);
        pthread_mutex_destroy(&b->lock);
        free(b);
    }
    free(c.hist);
    split_free(&train);
    split_free(&val);
    return st;
}

#else

ab_status ab_prepare(const ab_prepare_opts *o, ab_prepare_result *result) {
    memset(result, 0, sizeof *result);
    return ab_fail(AB_ERR_UNSUPPORTED, "prepare: this build has no jansson (install libjansson-dev and rebuild)");
}

#endif
