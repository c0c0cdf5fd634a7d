/*
 * bench.h — the attention-only benchmark: one attention layer of each variant, forward and backward time
 * and memory against the sequence length, on one backend (`attnbench bench --attn-only`).
 *
 * Memory comes from the backend allocator's accounting: the bytes a variant's forward keeps for backward
 * (allocated as MEM_ATTENTION) and its scratch (MEM_WORKSPACE), as the training loop allocates them.
 * Times are medians over `repeats` runs after one warm-up run (backend synchronised around each).
 */
#ifndef AB_ATTN_BENCH_H
#define AB_ATTN_BENCH_H

#include "attn/variant.h"

#define AB_ATTN_BENCH_MAX_SEQS 32

typedef struct {
    int B, H, C;                          /* batch, heads, embedding (D = C / H) */
    int seqs[AB_ATTN_BENCH_MAX_SEQS];     /* sequence lengths, in order */
    int n_seqs;
    ab_variant_id variants[VARIANT_COUNT];
    int n_variants;
    int repeats;                          /* timed runs per measurement (median) */
    ab_attn_hparams hp;                   /* 0 = default, resolved per T (lsh buckets follow T) */
    uint64_t seed;
} ab_attn_bench_opts;

typedef struct {
    ab_variant_id id;
    int T;
    int ok;                  /* 0: not measured, `reason` says why (not implemented, invalid for this T) */
    char reason[256];
    double fwd_ms, bwd_ms;   /* medians */
    size_t saved_bytes;      /* MEM_ATTENTION allocated for the forward's saved tensors */
    size_t workspace_bytes;  /* MEM_WORKSPACE allocated for the scratch */
    ab_attn_flops flops;     /* analytical, for this (B, T) */
} ab_attn_bench_row;

/* Fills rows[v * n_seqs + s] for every variant v and length s of o. Fails only on allocation or a
 * failing op; a variant that cannot run a length gets ok = 0 with the reason. */
ab_status ab_attn_bench_run(ab_backend *be, const ab_attn_bench_opts *o, ab_attn_bench_row *rows);

#endif
