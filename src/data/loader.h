/*
 * loader.h — batches of B x T for training and evaluation, with loss masks, from a prepared corpus.
 *
 * A corpus is a directory written by `attnbench prepare` (train.bin, val.bin and their sidecars,
 * stats.json), or a single shard file (used as the training split; validation is then empty).
 * Targets are inputs shifted by one; a target that carries no loss (padding, non-assistant tokens
 * under --loss-on assistant, beyond a row's end) is -1. Order: a seeded shuffle of the rows (packed
 * streams are cut into rows of T+1 tokens first), reshuffled each epoch, deterministic given the seed.
 */
#ifndef AB_LOADER_H
#define AB_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct ab_loader ab_loader;

typedef enum { SPLIT_TRAIN = 0, SPLIT_VAL } ab_split;

/* AB_ERR_IO / AB_ERR_FORMAT with the path; AB_ERR_USAGE if the split has no row for this T. An absent
 * validation split is not an error: ab_loader_rows() is then 0. */
ab_status ab_loader_open(ab_loader **out, const char *path, ab_split split, int B, int T, int vocab_size,
                         uint64_t seed);
/* Rows available (each gives one sequence of the batch). */
size_t ab_loader_rows(const ab_loader *l);
/* Full batches in one pass over the rows. */
size_t ab_loader_batches_per_epoch(const ab_loader *l);
/* Start epoch `epoch` (0-based): reshuffle with (seed, epoch) and rewind. */
void ab_loader_start_epoch(ab_loader *l, int epoch);
/* Next batch: inputs (B*T) and targets (B*T) int32 host arrays; *n_loss_tokens counts targets >= 0.
 * Wraps into the next epoch's order when a pass ends. */
ab_status ab_loader_next(ab_loader *l, int32_t *inputs, int32_t *targets, int *n_loss_tokens);
/* Position for resuming: (epoch, batch index within the epoch). */
void ab_loader_seek(ab_loader *l, int epoch, size_t batch);
void ab_loader_close(ab_loader *l);

#endif
