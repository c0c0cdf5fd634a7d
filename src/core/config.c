/*
 * config.c — the preset table (tiny for CPUs and CI, the four GPT-2 sizes, and the Python study's "seed").
 */
#include "core/config.h"

#include <string.h>

#define GPT2_VOCAB 50257

/* Training defaults shared by every preset except seed: AdamW (0.9, 0.95), wd 0.1, warmup + cosine to 10%,
 * clip 1.0 (the foundation issue). */
#define TRAIN_DEFAULTS(B, T, EPOCHS, STEPS, LR)                                                    \
    {.batch = (B), .seq = (T), .grad_accum = 1, .epochs = (EPOCHS), .steps_per_epoch = (STEPS),      \
     .warmup_steps = 5, .eval_batches = 0, .lr = (LR), .min_lr_frac = 0.1f, .lr_warmup = 10,        \
     .constant_lr = 0, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f,           \
     .grad_clip = 1.0f, .seed = 1337}

#define GPT2_MODEL(L, H, C) {.n_layer = (L), .n_head = (H), .n_embd = (C), .vocab_size = GPT2_VOCAB, .max_seq = 1024}

const ab_preset ab_presets[] = {
    /* head size 64, GPT-2's, which the CUDA attention kernels are built for: the default study runs on either */
    {"tiny", "L4 H2 C128, T128: for CPUs and CI",
     {.n_layer = 4, .n_head = 2, .n_embd = 128, .vocab_size = GPT2_VOCAB, .max_seq = 128},
     TRAIN_DEFAULTS(4, 128, 2, 20, 1e-3f)},
    {"gpt2", "GPT-2 124M: L12 H12 C768", GPT2_MODEL(12, 12, 768), TRAIN_DEFAULTS(16, 512, 1, 100, 6e-4f)},
    {"gpt2-medium", "GPT-2 350M: L24 H16 C1024", GPT2_MODEL(24, 16, 1024), TRAIN_DEFAULTS(8, 512, 1, 100, 3e-4f)},
    {"gpt2-large", "GPT-2 774M: L36 H20 C1280", GPT2_MODEL(36, 20, 1280), TRAIN_DEFAULTS(4, 512, 1, 100, 2.5e-4f)},
    {"gpt2-xl", "GPT-2 1558M: L48 H25 C1600", GPT2_MODEL(48, 25, 1600), TRAIN_DEFAULTS(2, 512, 1, 100, 2e-4f)},
    {"seed", "the Python study: gpt2, B16 T512, 20 epochs x 400 steps, AdamW constant lr 5e-5 (PyTorch defaults)",
     GPT2_MODEL(12, 12, 768),
     {.batch = 16, .seq = 512, .grad_accum = 1, .epochs = 20, .steps_per_epoch = 400, .warmup_steps = 5,
      .eval_batches = 0, .lr = 5e-5f, .min_lr_frac = 1.0f, .lr_warmup = 0, .constant_lr = 1,
      .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f, .grad_clip = 0.0f, .seed = 42}},
};
const int ab_preset_count = (int)(sizeof ab_presets / sizeof ab_presets[0]);

const ab_preset *ab_preset_by_name(const char *name) {
    for (int i = 0; i < ab_preset_count; i++)
        if (strcmp(ab_presets[i].name, name) == 0) return &ab_presets[i];
    return NULL;
}

void ab_model_attn_config(const ab_model_config *cfg, int T, ab_attn_config *out) {
    memset(out, 0, sizeof *out);
    out->C = cfg->n_embd;
    out->H = cfg->n_head;
    out->D = cfg->n_head > 0 ? cfg->n_embd / cfg->n_head : 0;
    out->max_T = cfg->max_seq;
    out->train_T = T;
    out->hp = cfg->attn;
    ab_attn_resolve_hparams(out);
}
