/*
 * backend.h — the backend op table: every numerical operation the model and the optimizer need.
 *
 * A backend is a `static const ab_backend_ops` filled once (ggml style); the model code only ever calls
 * through it, never a backend function directly. An op the backend lacks is NULL and is reported as
 * "not implemented on <backend>" by the caller.
 *
 * Conventions (all ops):
 *  - Pointers are backend memory (host for cpu, device for cuda) unless the name ends in `_host`.
 *  - "act" tensors use the backend's activation dtype (`act_bytes`: 4 = fp32 on cpu, 2 = bf16 on cuda);
 *    parameters and their gradients use the same dtype; fp32 ("f32") tensors are named as such.
 *  - Row-major. Linear weights use Hugging Face GPT-2's Conv1D layout (in, out): out = inp @ W + b.
 *  - Backward ops ACCUMULATE (+=) into every gradient they write, activations and parameters alike, so
 *    the caller zeroes activation gradients once per backward pass and parameter gradients once per
 *    optimizer step (gradient accumulation is free).
 *  - Ops return AB_OK or a status with ab_fail() context; kernels are asynchronous on cuda until
 *    `synchronize` or a copy to the host.
 */
#ifndef AB_BACKEND_H
#define AB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/mem.h"
#include "core/status.h"

typedef enum { BACKEND_CPU = 0, BACKEND_CUDA, BACKEND_COUNT } ab_backend_id;

typedef struct ab_backend ab_backend;

/* Arguments of one AdamW update over a contiguous range of n parameters (PyTorch AdamW semantics:
 * decoupled weight decay p -= lr*wd*p, bias-corrected moments). `grad_scale` multiplies the gradient
 * first (global-norm clipping and loss scaling). */
typedef struct {
    float lr, beta1, beta2, eps, weight_decay, grad_scale;
    int step; /* 1-based, for the bias correction */
} ab_adamw_args;

/* A LayerNorm folded into the product that reads it (decode steps: layernorm_matmul_forward, ab_attn_ctx.ln): its
 * weight and bias (C), and where LN(x) (N,C) and its statistics (N each) go when the product cannot normalise its
 * rows itself. */
typedef struct {
    const void *w, *b;
    void *out;
    float *mean, *rstd;
} ab_layernorm_input;

/* A decode step's KV append: columns [koff, koff + KV) of a product's output row m, which holds position *pos
 * (backend memory), also into slot *pos % cap of cache (cap, N, KV). */
typedef struct {
    void *cache;
    const int32_t *pos;
    int koff, KV, cap;
} ab_kv_append;

/* A decode op's first product, which the backend may run ahead, chained after the block before
 * (ab_attn_ops.decode_input, block_tail_forward): out (N,OC) = LN(x) @ weight (K,OC) + bias, LN the block's ln_1,
 * with the KV append when append.cache is not NULL; with OC2 > 0 also out2 (N,OC2) = LN(x) @ weight2 (K,OC2), no
 * bias (mla's latent next to its q). */
typedef struct {
    void *out, *out2;
    const void *weight, *bias, *weight2;
    int K, OC, OC2;
    ab_kv_append append;
} ab_decode_input;

/* The rest of a GPT-2 block after its attention, at decode (block_tail_forward): res2 = residual + atty @ proj_w +
 * proj_b; pre = LN(res2) @ fc_w + fc_b (ln: ln_2, its out and statistics not written), act = gelu(pre); out = res2 +
 * act @ fcproj_w + fcproj_b. atty, residual, res2, out (N,C); pre, act (N,4C); the weights as the block's Conv1Ds.
 * next (may be NULL): the next block's first product, on LN(out) with next_ln (its ln_1), which the backend may
 * chain after these. last: this is the model's last block (the logits come next) and the backend may chain its three. */
typedef struct {
    void *res2, *pre, *act, *out;
    const void *atty, *residual;
    ab_layernorm_input ln;
    const void *proj_w, *proj_b, *fc_w, *fc_b, *fcproj_w, *fcproj_b;
    const ab_decode_input *next;
    ab_layernorm_input next_ln;
    int last;
} ab_block_tail;

typedef struct ab_backend_ops {
    const char *name;      /* "cpu", "cuda" */
    ab_backend_id id;
    size_t act_bytes;      /* bytes per activation / parameter element */

    /* ---- lifetime: set up be->impl (handles, streams) for be->device_index; release it ---- */
    ab_status (*init)(ab_backend *be);   /* AB_ERR_DEVICE when no usable device */
    void (*shutdown)(ab_backend *be);

    /* ---- memory (every allocation is accounted in be->mem) ---- */
    ab_status (*alloc)(ab_backend *be, ab_buffer *buf, size_t bytes, mem_category cat); /* zeroed */
    void (*free)(ab_backend *be, ab_buffer *buf);                                       /* NULL-safe */
    ab_status (*memzero)(ab_backend *be, void *ptr, size_t bytes);
    ab_status (*copy_to_device)(ab_backend *be, void *dst, const void *src_host, size_t bytes);
    ab_status (*copy_to_host)(ab_backend *be, void *dst_host, const void *src, size_t bytes);
    ab_status (*copy)(ab_backend *be, void *dst, const void *src, size_t bytes);
    /* fp32 host <-> act-dtype backend memory, n elements (conversion on the way) */
    ab_status (*upload_f32)(ab_backend *be, void *dst_act, const float *src_host, size_t n);
    ab_status (*download_f32)(ab_backend *be, float *dst_host, const void *src_act, size_t n);
    ab_status (*synchronize)(ab_backend *be);

    /* ---- GPT-2 ops ---- */
    /* out (B,T,C) = wte[tokens] + wpe[p0 + t], with p0 = *pos0 (int32 in backend memory, read when the op runs,
     * so a replayed recording uses the value current then) or p0 = 0 when pos0 is NULL */
    ab_status (*encoder_forward)(ab_backend *be, void *out, const int32_t *tokens, const void *wte,
                                 const void *wpe, const int32_t *pos0, int B, int T, int C);
    ab_status (*encoder_backward)(ab_backend *be, void *dwte, void *dwpe, const void *dout,
                                  const int32_t *tokens, int B, int T, int C);
    /* out (N,C), mean/rstd f32 (N); eps 1e-5 */
    ab_status (*layernorm_forward)(ab_backend *be, void *out, float *mean, float *rstd, const void *inp,
                                   const void *weight, const void *bias, int N, int C);
    ab_status (*layernorm_backward)(ab_backend *be, void *dinp, void *dweight, void *dbias,
                                    const void *dout, const void *inp, const void *weight,
                                    const float *mean, const float *rstd, int N, int C);
    /* out (N,OC) = inp (N,C) @ weight (C,OC) + bias (OC, may be NULL) */
    ab_status (*matmul_forward)(ab_backend *be, void *out, const void *inp, const void *weight,
                                const void *bias, int N, int C, int OC);
    /* dinp (N,C) += dout @ W^T; dweight (C,OC) += inp^T @ dout; dbias (OC) += colsum(dout).
     * Any of dinp / dweight / dbias may be NULL (not needed). */
    ab_status (*matmul_backward)(ab_backend *be, void *dinp, void *dweight, void *dbias,
                                 const void *dout, const void *inp, const void *weight, int N, int C,
                                 int OC);
    /* GELU, tanh form: out (n) = gelu(inp); dinp += gelu'(inp) * dout */
    ab_status (*gelu_forward)(ab_backend *be, void *out, const void *inp, size_t n);
    ab_status (*gelu_backward)(ab_backend *be, void *dinp, const void *inp, const void *dout, size_t n);
    /* out = a + b (n); out may alias a */
    ab_status (*residual_forward)(ab_backend *be, void *out, const void *a, const void *b, size_t n);
    /* dst += src (n): gradient of a fork in the graph */
    ab_status (*accumulate)(ab_backend *be, void *dst, const void *src, size_t n);
    /* Tied LM head + softmax cross-entropy, never materialising (N,V) fp32 logits at once.
     * losses f32 (N): -log softmax(x @ wte^T)[target], 0 where targets[i] < 0 (ignored).
     * If dx != NULL also backward: with dlogits = (softmax - onehot) * dloss for counted rows,
     * dx (N,C) += dlogits @ wte and dwte (V,C) += dlogits^T @ x. */
    ab_status (*classifier)(ab_backend *be, float *losses, void *dx, void *dwte, const void *x,
                            const void *wte, const int32_t *targets, int N, int C, int V, float dloss);
    /* logits f32 (N,V) = x (N,C) @ wte^T: for eval --logits-out and generate */
    ab_status (*logits)(ab_backend *be, float *logits, const void *x, const void *wte, int N, int C, int V);

    /* ---- optimizer ---- */
    /* params (n, act) updated from grads (act); master (f32) is the source of truth when act is not
     * f32 (NULL on cpu, where params are f32); m, v f32 (n). */
    ab_status (*adamw)(ab_backend *be, void *params, float *master, const void *grads, float *m, float *v,
                       size_t n, const ab_adamw_args *args);
    /* *out_host = sum of squares of x (n, act), accumulated in double */
    ab_status (*sum_squares)(ab_backend *be, double *out_host, const void *x, size_t n);

    /* ---- optional fused ops: NULL = the model composes the plain ops above ---- */
    /* matmul_forward + residual_forward in one: out (N,OC) = residual (N,OC) + inp (N,C) @ weight (C,OC) + bias
     * (OC, may be NULL); out aliases neither inp nor residual */
    ab_status (*matmul_residual_forward)(ab_backend *be, void *out, const void *inp, const void *weight,
                                         const void *bias, const void *residual, int N, int C, int OC);
    /* matmul_forward + gelu_forward in one: pre (N,OC) = inp (N,C) @ weight (C,OC) + bias (OC, may be NULL),
     * out (N,OC) = gelu(pre) */
    ab_status (*matmul_gelu_forward)(ab_backend *be, void *out, void *pre, const void *inp, const void *weight,
                                     const void *bias, int N, int C, int OC);
    /* layernorm_forward folded into the product after it, for decode steps (few rows): out (N,OC) = LN(x (N,C)) @
     * weight (C,OC) + bias (OC, may be NULL), or with pre (not NULL) pre = that and out = gelu(pre). The rows are
     * normalised on the fly where the backend can, else LN(x) is written to ln->out (with ln->mean, ln->rstd) as
     * layernorm_forward would and the product reads it there. A backend with this op also has every attention
     * variant's decode honour ab_attn_ctx.ln (ln_1 folded into the variant's projections). */
    ab_status (*layernorm_matmul_forward)(ab_backend *be, const ab_layernorm_input *ln, void *out, void *pre,
                                          const void *x, const void *weight, const void *bias, int N, int C, int OC);
    /* Backward of out = gelu(pre) @ weight + bias, with act = gelu(pre) (N,C) and pre as matmul_gelu_forward
     * left them: dpre (N,C) = gelu'(pre) * (dout (N,OC) @ W^T) is WRITTEN, not accumulated (the exception to
     * the rule above: d(act) never exists, so there is nothing to add to); dweight (C,OC) += act^T @ dout and
     * dbias (OC, may be NULL) += colsum(dout) accumulate as usual. */
    ab_status (*gelu_matmul_backward)(ab_backend *be, void *dpre, void *dweight, void *dbias, const void *dout,
                                      const void *act, const void *pre, const void *weight, int N, int C, int OC);
    /* layernorm_forward folded into the logits after it, for decode steps: logits (N,V) f32 = LN(x (N,C)) @ wte^T, the
     * rows normalised on the fly where the backend can, else LN(x) written to ln->out (with ln->mean, ln->rstd) first,
     * as layernorm_matmul_forward does. */
    ab_status (*layernorm_logits)(ab_backend *be, const ab_layernorm_input *ln, float *logits, const void *x,
                                  const void *wte, int N, int C, int V);
    /* A decode block's three products after its attention in one go where the backend can (ab_block_tail): *done = 1
     * when queued, 0 when nothing was queued (the shape is not one it takes) and the model composes
     * matmul_residual_forward, layernorm_matmul_forward and matmul_residual_forward itself; *next_done = 1 when t->next
     * was queued with them (the next block's decode op then skips that product: ab_attn_ctx.input_ready), else 0. */
    ab_status (*block_tail_forward)(ab_backend *be, const ab_block_tail *t, int N, int C, int *done, int *next_done);

    /* ---- optional recorded steps (CUDA graphs): NULL on cpu, where the model runs every step directly ----
     * The ops queued between graph_begin and graph_end are recorded, not run; graph_launch replays them with
     * the arguments they had when recorded, at a fraction of the launch cost. So whatever changes from one
     * replay to the next must be in memory the recorded ops read when they run: backend memory (the decode
     * position: ab_attn_ctx.pos_dev, encoder_forward's pos0) or pinned host memory read by a recorded
     * copy_to_device_async. be->graphs says whether the model should record its decode steps: set at init,
     * off on cuda when the environment variable AB_CUDA_GRAPHS is 0 (ab_backend_switch_env). A backend has
     * these seven ops together or none of them. */
    /* *ptr_host = page-locked host memory of `bytes` (not accounted in be->mem); host_free is NULL-safe */
    ab_status (*host_alloc)(ab_backend *be, void **ptr_host, size_t bytes);
    void (*host_free)(ab_backend *be, void *ptr_host);
    /* dst (backend memory) = src_host (bytes of host_alloc memory), queued on the backend's stream without
     * waiting: src_host is read when the copy runs (recorded: at every replay), so the caller leaves it alone
     * until then (synchronize) */
    ab_status (*copy_to_device_async)(ab_backend *be, void *dst, const void *src_host, size_t bytes);
    /* Record the ops this thread queues from now on instead of running them, until graph_end. An op that
     * waits for the device (a copy to the host, synchronize, growing a scratch buffer) fails while recording. */
    ab_status (*graph_begin)(ab_backend *be);
    /* Ends the recording begun by graph_begin: *graph = the replayable step; graph NULL discards it (after an
     * op failed while recording). */
    ab_status (*graph_end)(ab_backend *be, void **graph);
    /* Queues one replay of `graph` (asynchronous, like the ops it holds). */
    ab_status (*graph_launch)(ab_backend *be, void *graph);
    void (*graph_free)(ab_backend *be, void *graph); /* NULL-safe */
} ab_backend_ops;

/* A live backend instance. */
struct ab_backend {
    const ab_backend_ops *ops;
    mem_accounting mem;
    int device_index;      /* --gpu N on cuda */
    void *impl;            /* backend-private state (cuBLASLt handle, streams, ...) */
    int graphs;            /* 1: the model records its decode steps and replays them (the graph_* ops); set by
                            * init, 0 without graph ops or with AB_CUDA_GRAPHS=0; a test may clear it between
                            * steps to compare with direct execution */
    int deterministic;     /* 1: every result repeats bit for bit, run after run: sums that atomics would do in a
                            * varying order (the CUDA flash backward's dQ) are done in a fixed order, at some cost in
                            * time. Set by the caller after opening (run and bench: --deterministic, recorded in the
                            * run's configuration); the cpu backend is deterministic either way */
};

/* The op tables compiled into this binary: ab_backend_table[id] is NULL when not built. */
extern const ab_backend_ops *const ab_backend_table[BACKEND_COUNT];

const char *ab_backend_name(ab_backend_id id);
/* "cpu" / "cuda" -> id; AB_ERR_USAGE for anything else */
ab_status ab_backend_parse(const char *name, ab_backend_id *out);
/* Create / destroy a backend instance. AB_ERR_UNSUPPORTED if not built in, AB_ERR_DEVICE if no device. */
ab_status ab_backend_open(ab_backend_id id, int device_index, ab_backend *be);
void ab_backend_close(ab_backend *be);
/* A backend switch of the environment, on unless set to "0" (for comparison and debugging): AB_CUDA_GRAPHS (decode
 * steps recorded as CUDA graphs), AB_CUDA_PDL (programmatic dependent launch of the decode products), AB_CUDA_CHAIN
 * (block_tail_forward's one launch). Read by the cuda backend's init and by `attnbench info`. */
int ab_backend_switch_env(const char *name);

/* Convenience: allocate through be->ops->alloc with accounting. */
static inline ab_status ab_alloc(ab_backend *be, ab_buffer *buf, size_t bytes, mem_category cat) {
    return be->ops->alloc(be, buf, bytes, cat);
}
static inline void ab_free(ab_backend *be, ab_buffer *buf) { be->ops->free(be, buf); }

#endif
