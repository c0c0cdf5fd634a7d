/*
 * config_opts.c — preset selection and the override options shared by `run` and `bench`.
 */
#include "cli/config_opts.h"

#include <stdlib.h>

#include "prof/peak.h"


#include <stdio.h>
#include <string.h>

ab_status ab_config_preset_from_argv(int argc, char **argv, const char *fallback, ab_preset *p, const char **name) {
    const char *want = fallback;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) want = argv[i + 1];
        else if (strncmp(argv[i], "--preset=", 9) == 0) want = argv[i] + 9;
    }
    const ab_preset *found = ab_preset_by_name(want);
    if (!found) {
        char names[256] = "";
        for (int i = 0; i < ab_preset_count; i++) {
            strncat(names, ab_presets[i].name, sizeof names - strlen(names) - 1);
            if (i + 1 < ab_preset_count) strncat(names, ", ", sizeof names - strlen(names) - 1);
        }
        return ab_fail(AB_ERR_USAGE, "unknown preset '%s' (valid: %s)", want, names);
    }
    *p = *found;
    *name = found->name;
    return AB_OK;
}

void ab_config_opts_fill(ab_opt *o, ab_preset *p, const char **preset_name) {
    ab_model_config *m = &p->model;
    ab_train_config *t = &p->train;
    const ab_opt table[] = {
        {"preset", OPT_STRING, preset_name, "NAME", "tiny | gpt2 | gpt2-medium | gpt2-large | gpt2-xl | seed (default tiny)"},
        {"layers", OPT_INT, &m->n_layer, "L", "transformer blocks"},
        {"heads", OPT_INT, &m->n_head, "H", "attention heads"},
        {"embd", OPT_INT, &m->n_embd, "C", "embedding width (C = H x head size)"},
        {"max-seq", OPT_INT, &m->max_seq, "N", "position table size"},
        {"batch", OPT_INT, &t->batch, "B", "sequences per micro-batch"},
        {"seq", OPT_INT, &t->seq, "T", "sequence length"},
        {"grad-accum", OPT_INT, &t->grad_accum, "K", "micro-batches per optimizer step"},
        {"epochs", OPT_INT, &t->epochs, "N", "epochs"},
        {"steps-per-epoch", OPT_INT, &t->steps_per_epoch, "N", "optimizer steps per epoch (0: one pass over the data)"},
        {"warmup-steps", OPT_INT, &t->warmup_steps, "N", "steps excluded from step-time statistics (default 5)"},
        {"eval-batches", OPT_INT, &t->eval_batches, "N", "validation batches per epoch (0: the whole split)"},
        {"lr", OPT_FLOAT, &t->lr, "X", "peak learning rate"},
        {"min-lr-frac", OPT_FLOAT, &t->min_lr_frac, "X", "cosine decays to lr x this (default 0.1)"},
        {"lr-warmup", OPT_INT, &t->lr_warmup, "N", "linear warmup steps of the learning rate"},
        {"constant-lr", OPT_FLAG, &t->constant_lr, NULL, "constant learning rate (no warmup, no decay)"},
        {"beta1", OPT_FLOAT, &t->beta1, "X", "AdamW beta1"},
        {"beta2", OPT_FLOAT, &t->beta2, "X", "AdamW beta2"},
        {"adam-eps", OPT_FLOAT, &t->eps, "X", "AdamW epsilon"},
        {"weight-decay", OPT_FLOAT, &t->weight_decay, "X", "AdamW decoupled weight decay (matrices only)"},
        {"grad-clip", OPT_FLOAT, &t->grad_clip, "X", "clip the global gradient norm (0: off)"},
        {"seed", OPT_U64, &t->seed, "S", "seed of initialisation, shuffles and lsh rotations"},
        {"deterministic", OPT_FLAG, &t->deterministic, NULL,
         "bit-for-bit repeatable training on cuda: the flash family's dQ summed in order, no atomics (slower backward)"},
        {"gqa-kv-heads", OPT_INT, &m->attn.gqa_kv_heads, "G", "gqa: key/value heads (default H/3 or H/2)"},
        {"window", OPT_INT, &m->attn.window, "W", "sliding_window: keys per query incl. itself (default 128)"},
        {"lsh-hashes", OPT_INT, &m->attn.lsh_hashes, "N", "lsh: hash rounds (default 2)"},
        {"lsh-chunk", OPT_INT, &m->attn.lsh_chunk, "N", "lsh: chunk length Lc; candidates 2 x Lc (default 64)"},
        {"lsh-buckets", OPT_INT, &m->attn.lsh_buckets, "N", "lsh: buckets (default 2T/Lc rounded to a power of two)"},
        {"linear-chunk", OPT_INT, &m->attn.linear_chunk, "N", "linear: chunk length (default 64)"},
        {"mla-kv-rank", OPT_INT, &m->attn.mla_kv_rank, "N", "mla: latent rank d_c (default 4 x head size)"},
        {"vocab", OPT_INT, &m->vocab_size, "V", "vocabulary size (default 50257, GPT-2)"},
    };
    _Static_assert(sizeof table / sizeof table[0] == AB_CONFIG_OPT_COUNT, "AB_CONFIG_OPT_COUNT must match the table");
    memcpy(o, table, sizeof table);
}

ab_status ab_config_validate_train(const ab_train_config *t) {
    if (t->batch < 1) return ab_fail(AB_ERR_USAGE, "--batch must be at least 1 (got %d)", t->batch);
    if (t->seq < 1) return ab_fail(AB_ERR_USAGE, "--seq must be at least 1 (got %d)", t->seq);
    if (t->grad_accum < 1) return ab_fail(AB_ERR_USAGE, "--grad-accum must be at least 1 (got %d)", t->grad_accum);
    if (t->epochs < 1) return ab_fail(AB_ERR_USAGE, "--epochs must be at least 1 (got %d)", t->epochs);
    if (t->steps_per_epoch < 0) return ab_fail(AB_ERR_USAGE, "--steps-per-epoch must be >= 0 (got %d)", t->steps_per_epoch);
    if (!(t->lr > 0.0f)) return ab_fail(AB_ERR_USAGE, "--lr must be positive (got %g)", (double)t->lr);
    if (!(t->beta1 >= 0.0f && t->beta1 < 1.0f) || !(t->beta2 >= 0.0f && t->beta2 < 1.0f))
        return ab_fail(AB_ERR_USAGE, "--beta1 and --beta2 must be in [0, 1) (got %g, %g)", (double)t->beta1, (double)t->beta2);
    if (!(t->eps > 0.0f)) return ab_fail(AB_ERR_USAGE, "--adam-eps must be positive");
    if (!(t->weight_decay >= 0.0f)) return ab_fail(AB_ERR_USAGE, "--weight-decay must be >= 0");
    if (!(t->min_lr_frac >= 0.0f && t->min_lr_frac <= 1.0f)) return ab_fail(AB_ERR_USAGE, "--min-lr-frac must be in [0, 1]");
    if (t->lr_warmup < 0 || t->warmup_steps < 0 || t->eval_batches < 0)
        return ab_fail(AB_ERR_USAGE, "--lr-warmup, --warmup-steps and --eval-batches must be >= 0");
    return AB_OK;
}

ab_status ab_config_resolve_peak(const char *peak_arg, ab_backend *be, const char *device_name, ab_peak *peak) {
    if (!peak_arg) {
        ab_peak_lookup(device_name, peak);
        return AB_OK;
    }
    if (strcmp(peak_arg, "measured") == 0) return ab_peak_measure(be, peak);
    char *end;
    double v = strtod(peak_arg, &end);
    if (*end || !(v > 0)) return ab_fail(AB_ERR_USAGE, "--peak-tflops: expected a positive number, got '%s'", peak_arg);
    ab_peak_set(peak, v, "given with --peak-tflops");
    return AB_OK;
}
