/*
 * prepare.h — Tulu JSONL to a prepared corpus directory: train.bin, val.bin (+ .rows sidecars), stats.json.
 *
 * Conversations go through the chat template (template.h) and are truncated to max_len tokens. No-pack
 * (default): one conversation per row of max_len tokens, padded with 50256 that carries no loss. Pack: the
 * conversations concatenated into one stream, an end-of-text token between two conversations unless the
 * first already ends with one. The validation split takes each conversation with probability val_fraction,
 * drawn from (seed, line number), so the split does not depend on --threads or --limit; when the draw leaves
 * it empty and there are two or more conversations, the last one goes to validation.
 *
 * Bad lines (tulu.h reasons): skip mode counts each (stats.json: count and first line numbers per reason);
 * fail mode stops at the first with "FILE:LINE: reason" and writes nothing. Output is written only after the
 * whole input was read: the shards atomically, stats.json last (a directory without it is incomplete). When
 * stats.json records the same input hash and options, prepare does nothing.
 */
#ifndef AB_PREPARE_H
#define AB_PREPARE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "data/template.h"

typedef struct {
    const char *input;         /* .jsonl or .jsonl.gz */
    const char *out_dir;
    int max_len;               /* tokens per conversation (row length in no-pack mode); 512 */
    int pack;                  /* 0 = one padded row per conversation */
    ab_loss_on loss_on;
    double val_fraction;       /* 0.01 */
    uint64_t seed;             /* of the validation split */
    int threads;               /* 0 = one per online CPU */
    int fail_on_error;         /* 0 = skip bad lines */
    uint64_t limit;            /* read at most this many conversations (non-blank lines); 0 = all */
    size_t max_line;           /* longest accepted line in bytes; AB_JSONL_MAX_LINE */
    void (*progress)(uint64_t done, uint64_t total, void *user); /* input bytes; may be NULL */
    void *progress_user;
} ab_prepare_opts;

typedef struct {
    int up_to_date;            /* nothing was done: DIR already holds this input prepared with these options */
    uint64_t read, kept, skipped;
    uint64_t train_tokens, val_tokens;
} ab_prepare_result;

void ab_prepare_defaults(ab_prepare_opts *o);
ab_status ab_prepare(const ab_prepare_opts *o, ab_prepare_result *result);

#endif
