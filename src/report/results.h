/*
 * results.h — the in-memory record of a run and its files in the results directory:
 *     run.json (schema_version AB_RESULTS_SCHEMA_VERSION; docs/FORMATS.md), epochs.csv, steps.csv,
 *     power.csv, inference.csv.
 * Every file is rewritten atomically (core/fsutil.h) at each epoch end, variant end and explicit flush,
 * so an interrupted run keeps every finished epoch and variant, and `run --resume DIR` reads it back
 * with ab_results_load() / ab_results_open(..., resume = 1).
 *
 * Life of a run (the training loop):
 *     ab_results_open(&r, dir, env, config, &opts);
 *     for each variant:
 *         ab_results_begin_variant(r, &begin);            // status "running" in run.json
 *         for each step: ab_results_step(r, &step);       // memory only
 *         for each epoch: ab_results_epoch(r, &epoch);    // + atomic rewrite of every file
 *         ab_results_end_variant(r, &end);                // status ok | failed + reason; rewrite
 *     ab_results_close(r);
 * Figures that are not available are NAN (or a cleared `available` flag) plus a reason string; they
 * are written as JSON null with a sibling "<key>_reason" (METRICS.md: never 0), and as empty CSV fields.
 * Not thread-safe: call from the training thread only (the sampler is read through its own lock).
 */
#ifndef AB_REPORT_RESULTS_H
#define AB_REPORT_RESULTS_H

#include <jansson.h>
#include <stddef.h>

#include "core/mem.h"
#include "core/status.h"
#include "prof/energy.h"
#include "prof/flops.h"
#include "prof/sampler.h"

#define AB_RESULTS_SCHEMA_VERSION 1

typedef struct {
    double grid_gco2_per_kwh;   /* --grid-gco2-per-kwh; <= 0: AB_DEFAULT_GRID_GCO2_PER_KWH */
    int warmup_steps;           /* steps 1..warmup_steps of a variant are excluded from step-time stats */
    ab_peak peak;               /* device peak for MFU (ab_peak_lookup or ab_peak_set) */
    ab_idle_power idle;         /* idle baseline (ab_energy_measure_idle); NAN + reasons when not measured */
    ab_sampler *sampler;        /* power.csv source and per-window power; NULL: power.csv has no rows */
    int resume;                 /* 1: dir/run.json exists and is continued (its config must match) */
} ab_results_opts;

typedef struct ab_results ab_results;

/* Creates DIR (mkdir -p) and writes an initial run.json. env and config are copied (the caller keeps
 * its references). With opts->resume, reads DIR/run.json and DIR/steps.csv first: finished variants and
 * epochs are kept, and AB_ERR_USAGE is returned when the stored config differs from `config`. */
ab_status ab_results_open(ab_results **out, const char *dir, json_t *env, json_t *config,
                          const ab_results_opts *opts);

typedef struct {
    const char *name;           /* "flash" */
    const char *title;          /* "FlashAttention-2" */
    const char *backend;        /* "cpu" | "cuda" */
    long long params_total;
    long long params_attention; /* the variant's own per-layer tensors x layers */
    json_t *hparams;            /* resolved variant hyper-parameters (copied); NULL: none */
    int resume_from_epoch;      /* resume: keep epochs < this and their steps; 0 or 1: start afresh */
} ab_variant_begin;

/* Starts (or, for a name already in run.json, restarts) a variant: status "running"; labels the sampler's
 * samples (name, "train"). Call ab_peak_rss_reset() (prof/memory.h) before allocating the variant. */
ab_status ab_results_begin_variant(ab_results *r, const ab_variant_begin *b);

typedef struct {
    long step;                  /* optimizer step within the variant, 1-based */
    int epoch;                  /* 1-based */
    double loss;                /* mean train loss of the step */
    double lr;
    double grad_norm;           /* global norm before clipping */
    double step_time_ms;        /* device events (CUDA) or monotonic clock (CPU) */
    long long tokens;           /* B*T*grad_accum */
    long long loss_tokens;      /* positions that carry loss */
} ab_step_record;

/* Records one step of the current variant (memory only, no I/O). */
ab_status ab_results_step(ab_results *r, const ab_step_record *s);

typedef struct {
    int epoch;                  /* 1-based */
    long steps;
    double train_time_s;        /* first batch .. synchronisation after the last optimizer step */
    double train_loss;          /* mean over the epoch's steps */
    double val_loss;            /* NAN + val_reason when there is no validation split */
    const char *val_reason;
    long long tokens, loss_tokens;
    ab_energy_window energy;    /* ab_energy_window_of over the epoch (mean/max power filled or null) */
} ab_epoch_record;

/* Records a finished epoch of the current variant and rewrites every file. */
ab_status ab_results_epoch(ab_results *r, const ab_epoch_record *e);

#define AB_INFER_BATCHES 2      /* [0] = batch 1, [1] = the run's batch B */

typedef struct {
    int available;              /* 0: not run (reason) */
    char reason[AB_REASON_LEN];
    int prompt_tokens;          /* T of the prefill */
    int gen_tokens;             /* decoded tokens per repeat (--gen-tokens) */
    int repeats;                /* prefill repeats behind each median */
    int batch[AB_INFER_BATCHES];
    double prefill_ms[AB_INFER_BATCHES];     /* median; NAN = not measured */
    double decode_ms_p50[AB_INFER_BATCHES];  /* per generated token */
    double decode_ms_p90[AB_INFER_BATCHES];
    double decode_ms_p99[AB_INFER_BATCHES];
    double cache_bytes_per_token_analytical; /* all layers, at the run's activation dtype, context T */
    double cache_bytes_measured;             /* bytes allocated for the cache at batch 1, context max_seq; NAN */
} ab_inference_result;

/* Marks every figure not measured, with one reason. */
void ab_inference_result_null(ab_inference_result *ir, const char *reason);

typedef struct {
    int ok;                     /* 1: status "ok"; 0: "failed" */
    const char *failure_reason; /* when !ok: ab_error() of what failed */
    mem_accounting mem;         /* the backend's accounting (peaks since the variant began) */
    size_t peak_rss_bytes;      /* ab_peak_rss_bytes(); 0: read here with ab_peak_rss_bytes() */
    double peak_device_bytes;   /* cudaMemGetInfo device-wide peak; NAN: the sampler's NVML maximum over the
                                 * variant, else null + peak_device_reason */
    char peak_device_reason[AB_REASON_LEN];
    int flops_available;
    ab_flops_step flops;        /* ab_flops_per_step */
    char flops_reason[AB_REASON_LEN];
    ab_inference_result inference;
    const ab_energy_window *inference_energy;  /* energy of the inference benchmark; NULL: not measured */
    long long checkpoint_bytes; /* size of the saved safetensors file; < 0: none saved */
} ab_variant_end;

/* Finishes the current variant: step-time statistics, tokens/s, MFU and the energy total are derived
 * here from the recorded steps and epochs; rewrites every file. */
ab_status ab_results_end_variant(ab_results *r, const ab_variant_end *e);

/* Rewrites every file now (e.g. on SIGINT). */
ab_status ab_results_flush(ab_results *r);
/* Flushes and frees; NULL-safe. Returns the flush status. */
ab_status ab_results_close(ab_results *r);

/* ---- reading back (resume, report) ---- */

typedef struct {
    char name[64];
    char status[16];            /* "ok" | "failed" | "running" */
    int epochs_done;            /* highest epoch recorded */
    long steps_done;            /* steps recorded in steps.csv for it */
} ab_results_variant_state;

#define AB_RESULTS_MAX_VARIANTS 64

typedef struct {
    int n_variants;
    ab_results_variant_state v[AB_RESULTS_MAX_VARIANTS];
    json_t *run;                /* the whole parsed run.json (owned) */
} ab_results_state;

/* Reads DIR/run.json (and counts steps.csv rows). AB_ERR_IO when missing, AB_ERR_FORMAT naming the
 * file, line and key when malformed or of another schema_version. */
ab_status ab_results_load(const char *dir, ab_results_state *out);
void ab_results_state_free(ab_results_state *s);
/* The state of variant `name`, or NULL. */
const ab_results_variant_state *ab_results_find(const ab_results_state *s, const char *name);

#endif
