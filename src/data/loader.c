/*
 * loader.c — B x T batches with shifted targets and loss masks from a prepared corpus or a single shard.
 *
 * Rows: a shard with fixed rows (no-pack mode, row_len L) gives one row per conversation: inputs are its
 * tokens 0..T-1 and targets its tokens 1..T, so T may be at most L (with T == L the last target lies beyond
 * the row and is -1; with T < L the tail of the row is unused). A packed stream (row_len 0) is cut into
 * rows of T+1 tokens with stride T, so every token after the first is a target exactly once.
 * A target is -1 when it carries no loss: mask 0 (padding, non-assistant tokens), or beyond the row's end.
 *
 * Order: each epoch e permutes the rows with a Fisher-Yates shuffle drawn from ab_rng_derive(seed, stream(e,
 * split)); batch b of epoch e is rows order[b*B .. b*B+B). A split with at least one row but fewer than B
 * rows gives one batch per epoch whose missing sequences have inputs 50256 and all targets -1.
 */
#include "data/loader.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fsutil.h"
#include "core/rng.h"
#include "data/shard.h"

#define FILL_TOKEN 50256 /* input id for the missing sequences of a short split (never a target) */

struct ab_loader {
    ab_shard shard;
    ab_split split;
    int B, T;
    uint64_t seed;
    size_t n_rows;
    size_t row_stride;      /* tokens between consecutive row starts */
    size_t row_tokens;      /* tokens a row may read (L for fixed rows, T+1 for packed) */
    uint32_t *order;        /* (n_rows) row indices of the current epoch */
    int epoch;
    size_t batch;           /* next batch within the epoch */
};

static int is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Shuffle stream for (epoch, split): distinct from the streams other modules derive from the same seed. */
static uint64_t shuffle_stream(int epoch, ab_split split) {
    return 0x53485546464c4500ULL ^ ((uint64_t)(uint32_t)epoch << 1) ^ (uint64_t)split;
}

/* Cuts the shard into rows for l->T: sets n_rows, row_stride, row_tokens. */
static ab_status rows_for_T(ab_loader *l, const char *shard_path) {
    const ab_shard *s = &l->shard;
    int T = l->T;
    if (s->row_len > 0) {
        if (T > s->row_len)
            return ab_fail(AB_ERR_USAGE, "%s: sequence length T=%d exceeds the row length %d of this corpus (prepare "
                                         "it with --max-len %d or more, or use --pack)", shard_path, T, s->row_len, T);
        l->n_rows = s->n_rows;
        l->row_stride = l->row_tokens = (size_t)s->row_len;
    } else {
        l->n_rows = s->n_tokens > (size_t)T ? (s->n_tokens - 1) / (size_t)T : 0;
        l->row_stride = (size_t)T;
        l->row_tokens = (size_t)T + 1;
    }
    if (l->n_rows == 0 && (s->n_tokens > 0 || l->split == SPLIT_TRAIN))
        return ab_fail(AB_ERR_USAGE, "%s: %zu tokens give no row of T+1=%d tokens", shard_path, s->n_tokens, T + 1);
    if (l->n_rows > UINT32_MAX) return ab_fail(AB_ERR_USAGE, "%s: more than 2^32 rows; split the corpus", shard_path);
    return AB_OK;
}

ab_status ab_loader_open(ab_loader **out, const char *path, ab_split split, int B, int T, int vocab_size,
                         uint64_t seed) {
    *out = NULL;
    if (B < 1 || T < 1) return ab_fail(AB_ERR_USAGE, "loader: batch size %d and sequence length %d must be >= 1", B, T);
    char shard_path[4096];
    int absent = 0;
    if (is_directory(path)) {
        char marker[4096];
        snprintf(marker, sizeof marker, "%s/stats.json", path);
        if (!ab_file_exists(marker))
            return ab_fail(AB_ERR_FORMAT, "%s: no stats.json: not a prepared corpus, or its prepare was interrupted "
                                          "(run attnbench prepare again)", path);
        if (snprintf(shard_path, sizeof shard_path, "%s/%s.bin", path, split == SPLIT_TRAIN ? "train" : "val") >=
            (int)sizeof shard_path)
            return ab_fail(AB_ERR_USAGE, "%s: path too long", path);
        absent = split == SPLIT_VAL && !ab_file_exists(shard_path);
    } else {
        snprintf(shard_path, sizeof shard_path, "%s", path);
        absent = split == SPLIT_VAL; /* a single shard is the training split only */
    }
    ab_loader *l = calloc(1, sizeof *l);
    if (!l) return ab_fail(AB_ERR_OOM, "loader: out of memory");
    l->split = split;
    l->B = B;
    l->T = T;
    l->seed = seed;
    ab_status st = absent ? AB_OK : ab_shard_read(shard_path, vocab_size, &l->shard);
    if (st == AB_OK) st = rows_for_T(l, shard_path);
    if (st == AB_OK) {
        l->order = malloc((l->n_rows ? l->n_rows : 1) * sizeof *l->order);
        if (!l->order) st = ab_fail(AB_ERR_OOM, "loader: out of memory for %zu rows", l->n_rows);
    }
    if (st != AB_OK) {
        ab_loader_close(l);
        return st;
    }
    ab_loader_start_epoch(l, 0);
    *out = l;
    return AB_OK;
}

size_t ab_loader_rows(const ab_loader *l) { return l->n_rows; }

size_t ab_loader_batches_per_epoch(const ab_loader *l) {
    if (l->n_rows == 0) return 0;
    size_t full = l->n_rows / (size_t)l->B;
    return full ? full : 1;
}

void ab_loader_start_epoch(ab_loader *l, int epoch) {
    l->epoch = epoch;
    l->batch = 0;
    for (size_t i = 0; i < l->n_rows; i++) l->order[i] = (uint32_t)i;
    ab_rng rng;
    ab_rng_derive(&rng, l->seed, shuffle_stream(epoch, l->split));
    for (size_t i = l->n_rows; i > 1; i--) {
        uint32_t j = ab_rng_below(&rng, (uint32_t)i);
        uint32_t tmp = l->order[i - 1];
        l->order[i - 1] = l->order[j];
        l->order[j] = tmp;
    }
}

/* One sequence: inputs (T) and targets (T) from row `row`; returns the number of loss-carrying targets. */
static int fill_sequence(const ab_loader *l, size_t row, int32_t *inputs, int32_t *targets) {
    const uint16_t *tok = l->shard.tokens + row * l->row_stride;
    const uint8_t *mask = l->shard.loss_mask ? l->shard.loss_mask + row * l->row_stride : NULL;
    int n_loss = 0;
    for (int t = 0; t < l->T; t++) {
        inputs[t] = tok[t];
        size_t next = (size_t)t + 1;
        int carries = next < l->row_tokens && (!mask || mask[next]);
        targets[t] = carries ? tok[next] : -1;
        n_loss += carries;
    }
    return n_loss;
}

ab_status ab_loader_next(ab_loader *l, int32_t *inputs, int32_t *targets, int *n_loss_tokens) {
    *n_loss_tokens = 0;
    if (l->n_rows == 0) return ab_fail(AB_ERR_USAGE, "loader: the %s split has no rows", l->split == SPLIT_TRAIN ? "train" : "val");
    if (l->batch >= ab_loader_batches_per_epoch(l)) ab_loader_start_epoch(l, l->epoch + 1);
    size_t first = l->batch * (size_t)l->B;
    for (int b = 0; b < l->B; b++) {
        int32_t *in = inputs + (size_t)b * l->T, *tg = targets + (size_t)b * l->T;
        if (first + (size_t)b < l->n_rows) {
            *n_loss_tokens += fill_sequence(l, l->order[first + (size_t)b], in, tg);
        } else {
            for (int t = 0; t < l->T; t++) {
                in[t] = FILL_TOKEN;
                tg[t] = -1;
            }
        }
    }
    l->batch++;
    return AB_OK;
}

void ab_loader_seek(ab_loader *l, int epoch, size_t batch) {
    ab_loader_start_epoch(l, epoch);
    l->batch = batch;
}

void ab_loader_close(ab_loader *l) {
    if (!l) return;
    ab_shard_free(&l->shard);
    free(l->order);
    free(l);
}
