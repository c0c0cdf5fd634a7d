/*
 * gpt2.h — GPT-2 with a pluggable attention variant, on any backend.
 *
 * The model owns its parameters (one contiguous buffer in the backend's dtype; fp32 master copy when
 * that dtype is not fp32), gradients, AdamW state and activations, all allocated through the backend's
 * accounting allocator. It calls the backend only through the op table and the attention variant only
 * through its ab_attn_ops, so the same code runs on every backend and every variant.
 *
 * Parameter layout: tensors whose AdamW update decays (matrices) first, then the other trainable ones
 * (biases, LayerNorm gains), then fixed ones (lsh rotations), so the optimizer is two contiguous calls.
 * Names follow Hugging Face GPT2LMHeadModel ("transformer.h.3.attn.c_attn.weight", Conv1D (in, out)).
 */
#ifndef AB_GPT2_H
#define AB_GPT2_H

#include <stddef.h>
#include <stdint.h>

#include "attn/variant.h"
#include "backend/backend.h"
#include "core/config.h"

#define AB_PARAM_NAME_MAX 96
/* The largest sizes a model may have (GPT-2 XL: 48 layers, 1600, 1024 positions), so that no size in the parameter
 * table can overflow: a checkpoint's metadata is read from a file */
#define AB_GPT2_MAX_LAYERS 1024
#define AB_GPT2_MAX_EMBD 65536
#define AB_GPT2_MAX_SEQ (1 << 20)

typedef struct {
    char name[AB_PARAM_NAME_MAX];
    size_t offset;        /* in elements from the start of the parameter buffer */
    size_t numel;
    int rows, cols;       /* 1-D tensors: rows = 1 */
    ab_init_kind init;
    float init_std;       /* for INIT_NORMAL: 0.02, or 0.02/sqrt(2L) for residual projections */
    int decay;            /* AdamW weight decay applies */
    int trainable;
    int layer;            /* -1 for embeddings and ln_f */
    int attn_index;       /* index into the variant's tensor list, -1 for common tensors */
} ab_param_info;

typedef struct {
    /* per layer, act dtype unless noted */
    ab_buffer ln1, ln1_stats;     /* (L,B,T,C), f32 (L,2,B,T): mean then rstd */
    ab_buffer atty;               /* (L,B,T,C) variant output before c_proj */
    ab_buffer residual2;          /* (L,B,T,C) */
    ab_buffer ln2, ln2_stats;     /* (L,B,T,C), f32 (L,2,B,T) */
    ab_buffer fch, fch_gelu;      /* (L,B,T,4C) */
    ab_buffer residual3;          /* (L,B,T,C) */
    ab_buffer encoded;            /* (B,T,C) */
    ab_buffer lnf, lnf_stats;     /* (B,T,C), f32 (2,B,T) */
    ab_buffer losses;             /* f32 (B,T) */
    ab_buffer tokens, targets;    /* int32 (B,T) */
    ab_buffer *attn_saved;        /* L buffers of the variant's saved_bytes */
    ab_buffer attn_workspace;
    /* gradients of activations, reused across layers */
    ab_buffer d_residual, d_ln, d_atty, d_fch, d_fch_gelu; /* (B,T,C) x3, (B,T,4C) x2; d_fch_gelu only without a
                                                            * fused gelu_matmul_backward */
    int B, T, training;
} ab_activations;

/* Inference state: one variant cache per layer, the last-position logits, and what a decode step reads: the step
 * buffer [pos | tokens (B)] uploaded from its host staging at the start of every step, and, where the backend
 * records steps (be->graphs), the recorded decode step, replayed at every position. */
typedef struct {
    ab_buffer *layers;            /* L buffers of the variant's cache_bytes(B, model max_seq) (MEM_ATTENTION) */
    ab_buffer logits;             /* f32 (B,V) */
    ab_buffer step;               /* int32 (1 + B) in backend memory: the decode position, then the tokens */
    int32_t *step_host;           /* (1 + B) staging of the step: pinned (host_alloc) where the backend has it, else
                                   * malloc */
    void *graph;                  /* the recorded decode step (graph_* ops), NULL until the first recorded decode */
    int B, max_T;
    size_t bytes_per_layer;
} ab_infer_cache;

typedef struct {
    ab_model_config cfg;
    const ab_variant *variant;
    const ab_attn_ops *attn;      /* the variant's ops on this backend */
    ab_attn_config attn_cfg;
    ab_backend *be;

    ab_param_info *params;        /* n_params tensors */
    int n_params;
    size_t n_elements;            /* all parameters */
    size_t n_decay, n_trainable;  /* [0,n_decay) decays, [0,n_trainable) trains, the rest is fixed */
    size_t n_attention;           /* elements in attention tensors incl. c_proj (params.attention) */
    int n_attn_tensors;

    ab_buffer params_buf;         /* (n_elements) act dtype */
    ab_buffer master_buf;         /* (n_elements) f32, only when act dtype is not f32 */
    ab_buffer grads_buf;          /* (n_elements) act dtype; allocated by ab_gpt2_alloc_training */
    ab_buffer m_buf, v_buf;       /* (n_trainable) f32 AdamW moments */
    int optimizer_step;           /* steps taken (AdamW bias correction) */

    ab_activations act;
    ab_infer_cache cache;
} ab_gpt2;

/* Validates the config and variant hyper-parameters for train_T, builds the parameter table and allocates
 * the parameters (zeroed): ab_gpt2_plan, then ab_gpt2_alloc_params. AB_ERR_USAGE for invalid combinations
 * (sizes up to AB_GPT2_MAX_LAYERS layers, AB_GPT2_MAX_EMBD embedding, AB_GPT2_MAX_SEQ positions),
 * AB_ERR_UNSUPPORTED when the variant has no ops on this backend. */
ab_status ab_gpt2_create(ab_gpt2 *m, const ab_model_config *cfg, ab_variant_id variant, int train_T,
                         ab_backend *be);
/* The first half of ab_gpt2_create: the checks and the parameter table (m->params, m->n_elements), nothing
 * allocated on the backend, so that a caller can check what it will load against the table first (a checkpoint
 * whose metadata asks for more than its file holds). Then ab_gpt2_alloc_params, or ab_gpt2_destroy. */
ab_status ab_gpt2_plan(ab_gpt2 *m, const ab_model_config *cfg, ab_variant_id variant, int train_T, ab_backend *be);
ab_status ab_gpt2_alloc_params(ab_gpt2 *m);
void ab_gpt2_destroy(ab_gpt2 *m);

/* GPT-2 initialisation from the seed (deterministic, independent of threads). */
ab_status ab_gpt2_init_weights(ab_gpt2 *m, uint64_t seed);

/* Allocate activations for (B,T); training = 1 also keeps what backward needs and allocates gradients and
 * optimizer state. Re-allocates when called with another shape. */
ab_status ab_gpt2_alloc(ab_gpt2 *m, int B, int T, int training);

/* Forward on host tokens (B*T). targets (B*T, -1 = no loss) may be NULL for a forward without loss.
 * With training activations and dloss > 0 (1 / loss tokens of the whole optimizer step), the classifier
 * also writes d(lnf) and accumulates dwte so ab_gpt2_backward can follow; dloss = 0 only evaluates. *loss_sum_out (if not NULL) gets the sum of
 * per-token losses over counted targets. */
ab_status ab_gpt2_forward(ab_gpt2 *m, const int32_t *tokens, const int32_t *targets, int B, int T, float dloss,
                          double *loss_sum_out);
/* Per-position losses (B*T floats) of the last forward, copied to the host. */
ab_status ab_gpt2_losses(ab_gpt2 *m, float *losses_host);
/* Backward of the last training forward: accumulates into the parameter gradients. */
ab_status ab_gpt2_backward(ab_gpt2 *m);
ab_status ab_gpt2_zero_grad(ab_gpt2 *m);
/* Global L2 norm of the gradients of trainable parameters. */
ab_status ab_gpt2_grad_norm(ab_gpt2 *m, double *norm_out);
/* One AdamW step over all trainable parameters (decay only on the decay range). */
ab_status ab_gpt2_adamw(ab_gpt2 *m, float lr, const ab_train_config *tc, float grad_scale);

/* Logits f32 (B,T,V) on the host for host tokens (B,T): eval --logits-out, tests. */
ab_status ab_gpt2_logits(ab_gpt2 *m, const int32_t *tokens, int B, int T, float *logits_host);
/* Logits f32 (B,T,V) on the host of the last ab_gpt2_forward (no second forward pass). */
ab_status ab_gpt2_logits_of_last_forward(ab_gpt2 *m, float *logits_host);

/* Inference with the variant's cache. ab_gpt2_alloc_cache sizes the caches for B sequences of the whole
 * context (max_seq) and the activations for prompts of up to max_T tokens; decode stops at max_T. prefill runs tokens (B,T) from
 * position 0; decode appends one token per sequence (tokens (B)) at position pos. Both return the
 * logits of the last position, f32 (B,V) on the host (NULL: not needed).
 * Where the backend records steps (be->graphs: CUDA graphs unless AB_CUDA_GRAPHS=0), the first decode of a cache
 * records the step (token and position upload, every block, ln_f, the logits on the device) and every decode, the
 * first included, replays it; the logits are copied to the host after the replay when asked for. A step that cannot
 * be recorded fails with the backend's error; there is no silent fallback. */
ab_status ab_gpt2_alloc_cache(ab_gpt2 *m, int B, int max_T);
ab_status ab_gpt2_prefill(ab_gpt2 *m, const int32_t *tokens, int B, int T, float *logits_host);
ab_status ab_gpt2_decode(ab_gpt2 *m, const int32_t *tokens, int B, int pos, float *logits_host);
void ab_gpt2_free_cache(ab_gpt2 *m);

/* Parameters as host fp32 (master weights): for checkpoints and tests. */
ab_status ab_gpt2_get_params(ab_gpt2 *m, float *host);
ab_status ab_gpt2_set_params(ab_gpt2 *m, const float *host);
/* Gradients of all parameters as host fp32. */
ab_status ab_gpt2_get_grads(ab_gpt2 *m, float *host);
const ab_param_info *ab_gpt2_find_param(const ab_gpt2 *m, const char *name);

#endif
