/*
 * train.h — training one variant end to end: data, optimizer schedule, epochs, validation, checkpoint,
 * inference benchmark, and every figure recorded through the results module (report/results.h).
 *
 * A variant that fails (invalid hyper-parameters, not implemented on the backend, out of memory, NaN
 * loss) is recorded as failed with the reason and the caller goes on with the next variant.
 */
#ifndef AB_TRAIN_H
#define AB_TRAIN_H

#include <jansson.h>

#include "backend/backend.h"
#include "core/config.h"
#include "prof/energy.h"
#include "prof/sampler.h"
#include "report/results.h"

typedef struct {
    ab_model_config model;
    ab_train_config train;
    const char *data_path;      /* prepared corpus directory or shard */
    const char *init_path;      /* --init: start from these weights (NULL: GPT-2 init from the seed) */
    const char *out_dir;        /* results directory; checkpoints under out_dir/checkpoints/ */
    ab_backend *be;
    ab_results *results;
    ab_energy_meter *energy;
    ab_sampler *sampler;        /* may be NULL */
    const ab_idle_power *idle;  /* may be NULL */
    double grid_gco2_per_kwh;
    int gen_tokens;             /* inference benchmark: tokens decoded per repeat; 0 = skip the benchmark */
    double state_interval_s;    /* write checkpoints/<variant>.state.safetensors after an epoch once this many
                                   seconds passed since the variant started or the last state (0: every epoch,
                                   < 0: never) */
    int resume;                 /* continue from that state file when it exists (run --resume) */
    int quiet, json_log, tty;   /* progress output */
} ab_train_ctx;

/* Trains variant v; returns AB_OK when it finished, else the failure (already recorded in run.json). */
ab_status ab_train_variant(ab_train_ctx *ctx, ab_variant_id v);

/* lr at optimizer step `step` (1-based) of `total`: constant, or linear warmup then cosine to min_lr_frac. */
float ab_lr_at(const ab_train_config *tc, long step, long total);

/* The resolved configuration as JSON (run.json "config"). */
json_t *ab_config_to_json(const ab_model_config *m, const ab_train_config *t, const char *preset, const char *device,
                          const char *data_path);

#endif
