/*
 * variant.h — the attention interface and the variant table (THE heart of attnbench).
 *
 * Each of the eight variants of ../shared/VARIANTS.md is one row of ab_variants[] (registry.c) and one
 * file in src/attn/. A row says what the variant is (names, hyper-parameter validation, its per-layer
 * parameter tensors, analytical FLOPs, cache size) and, per backend, how it runs (ab_attn_ops; NULL =
 * "not implemented on <backend>"). Every test, benchmark and report loops over the table.
 *
 * Data flow of one attention layer inside a GPT-2 block (model/gpt2.c):
 *     x = ln_1(residual)        (B,T,C)
 *     y = variant.forward(x)    (B,T,C)   <- everything variant-specific: projections, attention, heads merged
 *     residual += c_proj(y)               <- common to all variants, done by the model
 * so a variant owns its input projections (c_attn, q/kv projections, ...) but not c_proj.
 */
#ifndef AB_VARIANT_H
#define AB_VARIANT_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

typedef enum {
    VARIANT_BASELINE = 0,
    VARIANT_SDPA,
    VARIANT_GQA,
    VARIANT_LINEAR,
    VARIANT_SLIDING_WINDOW,
    VARIANT_LSH,
    VARIANT_FLASH,
    VARIANT_MLA,
    VARIANT_COUNT
} ab_variant_id;

/* Variant hyper-parameters (VARIANTS.md defaults; 0 = "use the default" before resolution). */
typedef struct {
    int gqa_kv_heads;   /* G; default H/3 if 3 | H else H/2 */
    int window;         /* W keys including the current token; default 128 */
    int lsh_hashes;     /* n_h rounds; default 2 */
    int lsh_chunk;      /* Lc; default 64; candidate window W_l = 2*Lc */
    int lsh_buckets;    /* n_b; default 2*T/Lc rounded to a power of two (T = the run's sequence length) */
    int linear_chunk;   /* Lc for chunked linear attention; default 64 */
    int mla_kv_rank;    /* d_c; default 4*D */
} ab_attn_hparams;

/* lsh's self rule (VARIANTS.md 6): the logit of a token with itself, a constant (no gradient), so a token
 * attends to itself only when it has no other candidate. Every backend uses this value. */
#define AB_ATTN_SELF_LOGIT (-1e5f)

/* Everything a variant needs to know about its shape. */
typedef struct {
    int C, H, D;        /* D = C / H */
    int max_T;          /* the model's position table size (block size) */
    int train_T;        /* sequence length the run trains at (lsh buckets are derived from it) */
    ab_attn_hparams hp; /* resolved: no zeros left */
} ab_attn_config;

/* How a parameter tensor is initialised (model/gpt2.c applies it with the run's rng). */
typedef enum {
    INIT_NORMAL = 0,    /* N(0, 0.02) */
    INIT_ZERO,
    INIT_ONE,
    INIT_GAUSSIAN_FIXED /* N(0, 1), never trained (lsh rotations): no gradient, no optimizer update */
} ab_init_kind;

#define AB_ATTN_MAX_TENSORS 8

/* One per-layer parameter tensor of a variant. `name` is relative to the block, as in Hugging Face's
 * GPT2LMHeadModel: "attn.c_attn.weight" becomes "transformer.h.{i}.attn.c_attn.weight" in checkpoints.
 * A 1-D tensor has rows = 1. */
typedef struct {
    const char *name;
    int rows, cols;
    ab_init_kind init;
    int weight_decay;   /* 1 for matrices (AdamW decay), 0 for biases, gains and fixed tensors */
} ab_attn_tensor;

/* Analytical FLOPs of the variant for one layer, batch B, length T (METRICS.md: a multiply-add is 2,
 * matrix products only). "model" counts what the math needs (causal: lower triangle incl. diagonal),
 * "hardware" what the implementation executes (masked work in partial tiles, recomputation).
 * Projections inside the variant (not c_proj) are included; proj_* breaks them out. */
typedef struct {
    double model_fwd, model_bwd;
    double hw_fwd, hw_bwd;
    double proj_fwd;        /* part of model_fwd spent in the variant's input projections */
    double full_tt_fwd;     /* the attention core counted as a full T x T (PyTorch FlopCounterMode style) */
    double other_ops_fwd;   /* exp, divisions, norms: not in the headline */
} ab_attn_flops;

/* Per-call context handed to a variant's ops. */
typedef struct {
    ab_backend *be;
    const ab_attn_config *cfg;
    void *workspace;        /* scratch of workspace_bytes(), shared by all layers, not preserved */
    int layer;
    /* decode only: backend memory holding the decode position (int32), equal to decode's `pos` when the step
     * runs. A decode op that may be recorded into a replayed step (backend.h, graph_begin) reads the position
     * from here inside its kernels, never from `pos`, which it uses only for validation: a replay runs the
     * recorded launches with the arguments of the first step. NULL (tests calling decode directly): the op
     * stages `pos` itself (cuda: cuda_decode_pos). The cpu ops read `pos`. */
    const int32_t *pos_dev;
    /* decode only, NULL otherwise: the model folds ln_1 into the decode (backend.h, layernorm_matmul_forward; only
     * on a backend with that op, whose variants all honour this). x is then the block's residual and the input of
     * the attention is LN(x) with ln->w, ln->b: the variant's projections normalise x on the fly, or write LN(x)
     * to ln->out first where they cannot. */
    const ab_layernorm_input *ln;
    /* decode only: the op's first product (decode_input) has been computed already, chained after the block before
     * (backend.h, block_tail_forward): the op starts after it. Only ever set for a variant with decode_input. */
    int input_ready;
} ab_attn_ctx;

/* The tensors of one layer, in the order the variant's tensor list gives (act dtype). */
typedef struct {
    void *t[AB_ATTN_MAX_TENSORS];
} ab_attn_weights;

/* How a variant runs on one backend. Sizes are in bytes. */
typedef struct {
    /* What forward keeps for backward, per layer (category MEM_ATTENTION), and the shared scratch. */
    size_t (*saved_bytes)(const ab_attn_config *cfg, int B, int T);
    size_t (*workspace_bytes)(const ab_attn_config *cfg, int B, int T);
    /* y (B,T,C) = attention(x (B,T,C)); fills `saved` (may be NULL when saved_bytes is 0). */
    ab_status (*forward)(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y,
                         const void *x, int B, int T);
    /* dx (B,T,C) += ..., dw->t[i] += ... (NULL for tensors without gradient), from dy (B,T,C). */
    ab_status (*backward)(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                          const void *saved, void *dx, const void *dy, const void *x, int B, int T);

    /* Inference. A cache holds what decode needs about positions < pos for B sequences; the model always
     * sizes it for the whole context, cache_bytes(cfg, B, cfg->max_T). */
    size_t (*cache_bytes)(const ab_attn_config *cfg, int B, int max_T);
    /* Forward of x (B,T,C) into y without saving for backward, leaving the cache ready for pos = T. */
    ab_status (*prefill)(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                         const void *x, int B, int T);
    /* One new token per sequence at position pos: x (B,1,C) -> y (B,1,C), cache updated. The position is also
     * in ctx->pos_dev (see ab_attn_ctx); nothing the op launches may depend on pos otherwise. */
    ab_status (*decode)(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                        const void *x, int B, int pos);
    /* Optional (NULL: none): decode's first product as *in (backend.h, ab_decode_input), for a backend that may run
     * it ahead, chained after the block before; decode with ctx->input_ready then starts after it. It computes
     * nothing. */
    ab_status (*decode_input)(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, int B, int pos,
                              ab_decode_input *in);
} ab_attn_ops;

typedef struct {
    ab_variant_id id;
    const char *name;   /* command-line name: "baseline", "sliding_window", ... */
    const char *title;  /* display name: "Baseline Self-Attention (GPT-2)", ... */
    /* AB_OK or AB_ERR_USAGE with a message saying what would be valid. hp is already resolved. */
    ab_status (*validate)(const ab_attn_config *cfg, int T);
    /* Fills out[] with the per-layer tensors; returns their count (<= AB_ATTN_MAX_TENSORS). */
    int (*tensors)(const ab_attn_config *cfg, ab_attn_tensor out[AB_ATTN_MAX_TENSORS]);
    void (*flops)(const ab_attn_config *cfg, int B, int T, ab_attn_flops *out);
    /* Inference cache per layer, in elements, per token of a context of T tokens (VARIANTS.md "Cache"):
     * total cache elements for T tokens divided by T, so constant-size caches (linear) and bounded ones
     * (sliding window) shrink per token as T grows. */
    double (*cache_elems_per_token)(const ab_attn_config *cfg, int T);
    const ab_attn_ops *ops[BACKEND_COUNT]; /* NULL: not implemented on that backend */
} ab_variant;

/* THE table, indexed by ab_variant_id (registry.c). */
extern const ab_variant *const ab_variants[VARIANT_COUNT];

const ab_variant *ab_variant_by_name(const char *name);   /* NULL if unknown */
/* Parse "all" or a comma list into ids (in table order for "all"); AB_ERR_USAGE naming the bad entry. */
ab_status ab_variant_parse_list(const char *list, ab_variant_id *out, int *n_out);
/* Fill the zeros of hp with the defaults of VARIANTS.md for this shape. */
void ab_attn_resolve_hparams(ab_attn_config *cfg);
/* The ops of variant v on backend b, or NULL with an AB_ERR_UNSUPPORTED message
 * "variant X is not implemented on <backend>". */
const ab_attn_ops *ab_variant_ops(const ab_variant *v, ab_backend_id b, ab_status *st);

#endif
