/*
 * bench_train.h — the training-step benchmark: steady-state step time, tokens/s, peak memory, energy per
 * step and MFU of each variant on random tokens at a given shape (ANCHORS.md's protocol).
 */
#ifndef AB_BENCH_TRAIN_H
#define AB_BENCH_TRAIN_H

#include <stdio.h>

#include "attn/variant.h"
#include "backend/backend.h"
#include "core/config.h"
#include "prof/energy.h"
#include "prof/flops.h"

typedef struct {
    ab_variant_id variant;
    int ok;
    char reason[512];
    int steps;                  /* timed steps */
    double step_ms_median, step_ms_p10, step_ms_p90;
    double tokens_per_s;        /* B*T*accum / median step time */
    double peak_allocated_bytes;
    double energy_per_step_j;   /* NVML counter over the timed steps / steps; NAN + reason */
    char energy_reason[256];
    double mean_power_w;
    double achieved_tflops, mfu;
    char mfu_reason[256];
    double final_loss;          /* sanity: finite, below ln V after the steps */
} ab_bench_train_result;

typedef struct {
    ab_model_config model;
    ab_train_config train;      /* batch, seq, grad_accum, lr, ... */
    int warmup_steps, timed_steps;
    ab_backend *be;
    ab_energy_meter *energy;    /* may have no sources */
    const ab_peak *peak;
} ab_bench_train_args;

/* Benchmarks one variant; a failure (unsupported, OOM) is reported in r, not returned. */
void ab_bench_train(const ab_bench_train_args *a, ab_variant_id v, ab_bench_train_result *r);
/* Prints the results as a table (and JSON when json != NULL). */
void ab_bench_train_print(FILE *out, const ab_bench_train_args *a, const ab_bench_train_result *r, int n);
ab_status ab_bench_train_write_json(const char *path, const ab_bench_train_args *a, const ab_bench_train_result *r, int n);

#endif
