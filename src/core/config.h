/*
 * config.h — model and training configuration, presets, and their resolution from flags.
 *
 * A preset fills every field; any flag overrides one field afterwards. The resolved configuration is
 * written into run.json and into checkpoint metadata (as JSON) so runs are reproducible.
 */
#ifndef AB_CONFIG_H
#define AB_CONFIG_H

#include <stdint.h>

#include "attn/variant.h"

typedef struct {
    int n_layer, n_head, n_embd;
    int vocab_size;     /* 50257 */
    int max_seq;        /* position table size (1024 for GPT-2) */
    ab_attn_hparams attn;
} ab_model_config;

typedef struct {
    int batch;              /* B, sequences per micro-batch */
    int seq;                /* T */
    int grad_accum;         /* micro-batches per optimizer step */
    int epochs;
    int steps_per_epoch;    /* optimizer steps per epoch; 0 = one pass over the training rows */
    int warmup_steps;       /* steps excluded from step-time statistics (METRICS.md) */
    int eval_batches;       /* validation micro-batches per epoch; 0 = the whole validation split */
    /* AdamW and schedule */
    float lr, min_lr_frac;  /* cosine decays lr to lr * min_lr_frac */
    int lr_warmup;          /* linear warmup steps */
    int constant_lr;        /* 1: constant lr (the seed study), no warmup, no decay */
    float beta1, beta2, eps, weight_decay, grad_clip;  /* grad_clip <= 0: off */
    uint64_t seed;
    int deterministic;      /* 1: the backend runs its deterministic kernels (be->deterministic) */
} ab_train_config;

typedef struct {
    const char *name;
    const char *description;
    ab_model_config model;
    ab_train_config train;
} ab_preset;

extern const ab_preset ab_presets[];
extern const int ab_preset_count;

const ab_preset *ab_preset_by_name(const char *name);   /* NULL if unknown */

/* The attention shape of a model trained at sequence length T, hyper-parameters resolved (VARIANTS.md). */
void ab_model_attn_config(const ab_model_config *cfg, int T, ab_attn_config *out);

#endif
