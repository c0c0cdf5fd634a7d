/*
 * test_loader.c — batches from shards: shifted targets, -1 where no loss, T against the row length,
 * packed streams, deterministic per-epoch shuffles, seek, short and absent splits, incomplete corpora.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/status.h"
#include "data/loader.h"
#include "data/shard.h"
#include "test_util.h"

#define VOCAB 50257
#define PAD 50256

static char dir[256];

static const char *path_in(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* Fixed rows: row r holds tokens 1000*r + i for i < len_r, then PAD; loss on odd positions of the content. */
enum { L = 8, ROWS = 10 };
static const int row_content[ROWS] = {8, 5, 3, 8, 6, 2, 7, 8, 4, 5};

static void write_rows_corpus(const char *corpus_dir, int with_stats, int with_val) {
    uint16_t tok[L * ROWS];
    uint8_t mask[L * ROWS];
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < L; i++) {
            int content = i < row_content[r];
            tok[r * L + i] = content ? (uint16_t)(1000 * r + i) : PAD;
            mask[r * L + i] = (uint8_t)(content && i % 2 == 1);
        }
    ab_mkdir_p(corpus_dir);
    char p[600];
    snprintf(p, sizeof p, "%s/train.bin", corpus_dir);
    ab_shard_write(p, tok, L * ROWS, mask, L);
    if (with_val) {
        snprintf(p, sizeof p, "%s/val.bin", corpus_dir);
        ab_shard_write(p, tok, L * 3, mask, L);
    }
    if (with_stats) {
        snprintf(p, sizeof p, "%s/stats.json", corpus_dir);
        ab_write_file_atomic(p, "{}\n", 3);
    }
}

/* Checks one sequence of a fixed-row batch against the row it must come from; returns its row or -1. */
static int check_row_sequence(const int32_t *in, const int32_t *tg, int T, int *loss) {
    int r = in[0] / 1000;
    if (r < 0 || r >= ROWS) return -1;
    *loss = 0;
    for (int t = 0; t < T; t++) {
        int content = t < row_content[r];
        if (in[t] != (content ? 1000 * r + t : PAD)) return -1;
        int next = t + 1;
        int want = next < L && next < row_content[r] && next % 2 == 1 ? 1000 * r + next : -1;
        if (tg[t] != want) return -1;
        *loss += want >= 0;
    }
    return r;
}

static void test_fixed_rows(int T) {
    char name[96];
    ab_loader *l;
    ab_status st = ab_loader_open(&l, path_in("rows"), SPLIT_TRAIN, 3, T, VOCAB, 7);
    snprintf(name, sizeof name, "loader_rows_open[T=%d]", T);
    TEST_TRUE(name, st == AB_OK && ab_loader_rows(l) == ROWS && ab_loader_batches_per_epoch(l) == 3, "%s", ab_error());
    if (st != AB_OK) return;
    int32_t in[3 * L], tg[3 * L];
    int seen[ROWS] = {0}, ok = 1, loss_total_ok = 1;
    for (int b = 0; b < 3; b++) {
        int n_loss, loss_sum = 0;
        ab_loader_next(l, in, tg, &n_loss);
        for (int s = 0; s < 3; s++) {
            int loss;
            int r = check_row_sequence(in + s * T, tg + s * T, T, &loss);
            if (r < 0) ok = 0;
            else seen[r]++, loss_sum += loss;
        }
        loss_total_ok &= loss_sum == n_loss;
    }
    int once = 1;
    for (int r = 0; r < ROWS; r++) once &= seen[r] <= 1;
    snprintf(name, sizeof name, "loader_rows_shifted_targets_and_padding[T=%d]", T);
    TEST_TRUE(name, ok && loss_total_ok, "a sequence disagrees with its row (ok %d, loss count ok %d)", ok,
              loss_total_ok);
    snprintf(name, sizeof name, "loader_rows_each_row_once_per_epoch[T=%d]", T);
    TEST_TRUE(name, once, "a row repeated within an epoch");
    ab_loader_close(l);
}

static void test_T_too_large(void) {
    ab_loader *l;
    ab_status st = ab_loader_open(&l, path_in("rows"), SPLIT_TRAIN, 2, L + 1, VOCAB, 1);
    TEST_TRUE("loader_rejects_T_above_row_length", st == AB_ERR_USAGE && strstr(ab_error(), "T=9") &&
                                                       strstr(ab_error(), "row length 8"), "%s: %s",
              ab_status_name(st), ab_error());
}

/* Reads all rows of epoch `epoch` (in order) into order_out via their first input token. */
static void epoch_order(ab_loader *l, int epoch, int B, int T, int *order_out) {
    int32_t in[64 * 16], tg[64 * 16];
    int n_loss;
    ab_loader_start_epoch(l, epoch);
    size_t k = 0;
    for (size_t b = 0; b < ab_loader_batches_per_epoch(l); b++) {
        ab_loader_next(l, in, tg, &n_loss);
        for (int s = 0; s < B; s++) order_out[k++] = in[s * T];
    }
}

static void test_shuffle_determinism(void) {
    ab_loader *a, *b;
    ab_loader_open(&a, path_in("rows"), SPLIT_TRAIN, 2, 4, VOCAB, 42);
    ab_loader_open(&b, path_in("rows"), SPLIT_TRAIN, 2, 4, VOCAB, 42);
    int oa0[ROWS], ob0[ROWS], oa1[ROWS], oc[ROWS];
    epoch_order(a, 0, 2, 4, oa0);
    epoch_order(b, 0, 2, 4, ob0);
    epoch_order(a, 1, 2, 4, oa1);
    TEST_TRUE("loader_same_seed_same_order", memcmp(oa0, ob0, sizeof oa0) == 0, "orders differ");
    TEST_TRUE("loader_epochs_reshuffle", memcmp(oa0, oa1, sizeof oa0) != 0, "epoch 1 repeats epoch 0");
    ab_loader *c;
    ab_loader_open(&c, path_in("rows"), SPLIT_TRAIN, 2, 4, VOCAB, 43);
    epoch_order(c, 0, 2, 4, oc);
    TEST_TRUE("loader_seed_changes_order", memcmp(oa0, oc, sizeof oa0) != 0, "seed 43 gives seed 42's order");
    /* Seek to (1, 2) and compare with the third batch of epoch 1 read in sequence. */
    int32_t in[8], tg[8];
    int n;
    ab_loader_seek(b, 1, 2);
    ab_loader_next(b, in, tg, &n);
    TEST_TRUE("loader_seek_resumes", in[0] == oa1[4] && in[4] == oa1[5], "got rows %d %d want %d %d", in[0], in[4],
              oa1[4], oa1[5]);
    /* Running past the end of an epoch wraps into the next epoch's order. */
    ab_loader_seek(b, 0, ab_loader_batches_per_epoch(b));
    ab_loader_next(b, in, tg, &n);
    TEST_TRUE("loader_wraps_to_next_epoch", in[0] == oa1[0] && in[4] == oa1[1], "got %d %d want %d %d", in[0], in[4],
              oa1[0], oa1[1]);
    ab_loader_close(a);
    ab_loader_close(b);
    ab_loader_close(c);
}

static void test_packed_stream(void) {
    enum { N = 41, T = 8 };
    uint16_t tok[N];
    uint8_t mask[N];
    for (int i = 0; i < N; i++) {
        tok[i] = (uint16_t)(i + 1);
        mask[i] = (uint8_t)(i % 5 != 0);
    }
    ab_shard_write(path_in("packed.bin"), tok, N, mask, 0);
    ab_loader *l;
    ab_status st = ab_loader_open(&l, path_in("packed.bin"), SPLIT_TRAIN, 1, T, VOCAB, 3);
    TEST_TRUE("loader_packed_rows", st == AB_OK && ab_loader_rows(l) == (N - 1) / T, "%s rows %zu", ab_error(),
              st == AB_OK ? ab_loader_rows(l) : 0);
    if (st != AB_OK) return;
    int target_seen[N] = {0}, ok = 1;
    int32_t in[T], tg[T];
    for (size_t b = 0; b < ab_loader_rows(l); b++) {
        int n;
        ab_loader_next(l, in, tg, &n);
        int start = in[0] - 1; /* token value i+1 sits at position i */
        if (start % T != 0) ok = 0;
        for (int t = 0; t < T; t++) {
            int pos = start + t + 1;
            if (in[t] != start + t + 1) ok = 0;
            if (tg[t] != (mask[pos] ? pos + 1 : -1)) ok = 0;
            target_seen[pos]++;
        }
    }
    int once = 1;
    for (int i = 1; i < 1 + (N - 1) / T * T; i++) once &= target_seen[i] == 1;
    TEST_TRUE("loader_packed_stride_T_targets_once", ok && once, "ok %d once %d", ok, once);
    ab_loader *v;
    st = ab_loader_open(&v, path_in("packed.bin"), SPLIT_VAL, 1, T, VOCAB, 3);
    TEST_TRUE("loader_single_shard_has_no_val", st == AB_OK && ab_loader_rows(v) == 0 && ab_loader_batches_per_epoch(v) == 0,
              "%s", ab_error());
    if (st == AB_OK) ab_loader_close(v);
    ab_loader_close(l);
    st = ab_loader_open(&l, path_in("packed.bin"), SPLIT_TRAIN, 1, N, VOCAB, 3);
    TEST_TRUE("loader_packed_rejects_too_short", st == AB_ERR_USAGE, "%s", ab_status_name(st));
}

static void test_short_and_absent_val(void) {
    ab_loader *v;
    ab_status st = ab_loader_open(&v, path_in("rows"), SPLIT_VAL, 4, L, VOCAB, 5);
    TEST_TRUE("loader_short_val_one_batch", st == AB_OK && ab_loader_rows(v) == 3 && ab_loader_batches_per_epoch(v) == 1,
              "%s", ab_error());
    if (st == AB_OK) {
        int32_t in[4 * L], tg[4 * L];
        int n, fill_ok = 1;
        ab_loader_next(v, in, tg, &n);
        for (int t = 0; t < L; t++) fill_ok &= tg[3 * L + t] == -1 && in[3 * L + t] == PAD;
        TEST_TRUE("loader_short_val_fill_has_no_loss", fill_ok, "the missing sequence carries loss");
        ab_loader_close(v);
    }
    st = ab_loader_open(&v, path_in("noval"), SPLIT_VAL, 4, L, VOCAB, 5);
    TEST_TRUE("loader_absent_val_is_empty", st == AB_OK && ab_loader_rows(v) == 0, "%s", ab_error());
    if (st == AB_OK) ab_loader_close(v);
    st = ab_loader_open(&v, path_in("incomplete"), SPLIT_TRAIN, 4, L, VOCAB, 5);
    TEST_TRUE("loader_rejects_incomplete_corpus", st == AB_ERR_FORMAT && strstr(ab_error(), "stats.json"), "%s",
              ab_error());
    st = ab_loader_open(&v, path_in("nothing-here"), SPLIT_TRAIN, 4, L, VOCAB, 5);
    TEST_TRUE("loader_missing_path_is_io", st == AB_ERR_IO, "%s", ab_status_name(st));
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ab_test_loader_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    write_rows_corpus(path_in("rows"), 1, 1);
    write_rows_corpus(path_in("noval"), 1, 0);
    write_rows_corpus(path_in("incomplete"), 0, 1);
    test_fixed_rows(L);
    test_fixed_rows(5);
    test_T_too_large();
    test_shuffle_determinism();
    test_packed_stream();
    test_short_and_absent_val();
    test_remove_dir(dir);
    return TEST_SUMMARY();
}
