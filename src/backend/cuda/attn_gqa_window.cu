/*
 * attn_gqa_window.cu — gqa (VARIANTS.md 3) and sliding_window (VARIANTS.md 5) on CUDA: the flash variant's
 * FlashAttention-2 kernels (flash_attn.cuh, through ab_cuda_flash_forward_gqa / ab_cuda_flash_backward_gqa)
 * with G key/value heads, resp. the band mask, and the general KV cache of attn_common.cu. No kernel of
 * its own. Same tensors and math as the CPU reference (src/attn/gqa.c, src/attn/sliding_window.c):
 *
 *  gqa             attn.c_attn.weight (C, C + 2*G*D), attn.c_attn.bias (C + 2*G*D): qkv = [q (H heads) |
 *                  k (G heads) | v (G heads)]; query head h reads KV head h / (H/G) (contiguous groups). The
 *                  backward kernel runs one block per (key block, KV head, batch) and loops over the heads
 *                  of the group, so dK, dV are summed in registers (deterministic). Cache (max_T, B, [K|V],
 *                  G*D): 2*G*D elements per token.
 *  sliding_window  c_attn (C, 3C) as baseline; query i sees keys max(0, i-W+1) .. i. The forward visits only
 *                  the key tiles that meet the band, the backward only the query tiles that see a key block
 *                  (O(T*W) work); W >= T runs the causal kernel, i.e. exactly flash. Cache: a rolling buffer
 *                  of min(W, max_T) slots, position t in slot t % W (the CPU's semantics): at most 2*H*D*W
 *                  elements per layer and sequence, whatever the length.
 * Head size 64 only (the kernels are built for it); any other fails with AB_ERR_UNSUPPORTED.
 *
 * saved per layer:  qkv (B,T,Wq) bf16 | O (B,T,C) bf16 | L (B,H,T) fp32                  (Wq = C + 2*G*D)
 * workspace:        the largest of dqkv (B,T,Wq) bf16 | dq_accum (B,H,T,64) fp32 | Delta (B,H,T) fp32
 *                   (backward), the saved tensors (prefill), the new token's qkv and the split softmax states
 *                   (decode: attn_decode_workspace_bytes)
 */
#include <math.h>

#include "backend/cuda/cuda_attn.cuh"
#include "backend/cuda/flash_attn.cuh"

/* What tells the two variants apart. */
typedef struct {
    const char *name;
    int G;      /* key/value heads */
    int window; /* keys per query including itself; 0: causal */
} gw_shape;

static gw_shape gqa_shape(const ab_attn_config *cfg) {
    gw_shape s = {"gqa", cfg->hp.gqa_kv_heads, 0};
    return s;
}
static gw_shape window_shape(const ab_attn_config *cfg) {
    gw_shape s = {"sliding_window", cfg->H, cfg->hp.window};
    return s;
}

static int qkv_cols(const ab_attn_config *cfg, const gw_shape *s) { return cfg->C + 2 * s->G * cfg->D; }

static ab_status gw_check(const ab_attn_config *cfg, const gw_shape *s) {
    if (cfg->D != FLASH_HD)
        return ab_fail(AB_ERR_UNSUPPORTED,
                       "cuda %s: head size %d is not supported (n_embd %d / n_head %d); the flash kernels are built "
                       "for head size %d only",
                       s->name, cfg->D, cfg->C, cfg->H, FLASH_HD);
    if (s->G < 1 || cfg->H % s->G)
        return ab_fail(AB_ERR_USAGE, "cuda %s: %d key/value heads must divide n_head %d", s->name, s->G, cfg->H);
    return AB_OK;
}

typedef struct {
    bf16 *qkv, *o;
    float *lse;
} gw_saved;

static size_t qkv_bytes(const ab_attn_config *cfg, const gw_shape *s, int B, int T) {
    return align256((size_t)B * T * qkv_cols(cfg, s) * sizeof(bf16));
}
static size_t bht_f32(const ab_attn_config *cfg, int B, int T) { return (size_t)B * cfg->H * T * sizeof(float); }

static size_t gw_saved_bytes(const ab_attn_config *cfg, const gw_shape *s, int B, int T) {
    return qkv_bytes(cfg, s, B, T) + align256((size_t)B * T * cfg->C * sizeof(bf16)) + align256(bht_f32(cfg, B, T));
}

static size_t gw_ws_bytes(const ab_attn_config *cfg, const gw_shape *s, int B, int T) {
    size_t w = qkv_bytes(cfg, s, B, T) + align256(bht_f32(cfg, B, T) * FLASH_HD) + align256(bht_f32(cfg, B, T));
    size_t p = gw_saved_bytes(cfg, s, B, T), d = attn_decode_workspace_bytes(cfg, B); /* B*3C >= B*Wq */
    if (p > w) w = p;
    return w > d ? w : d;
}

static gw_saved gw_views(const ab_attn_config *cfg, const gw_shape *s, void *saved, int B, int T) {
    gw_saved v;
    char *p = (char *)saved;
    v.qkv = (bf16 *)p;
    p += qkv_bytes(cfg, s, B, T);
    v.o = (bf16 *)p;
    p += align256((size_t)B * T * cfg->C * sizeof(bf16));
    v.lse = (float *)p;
    return v;
}

/* qkv = x W + b into sv, then O (saved) and y */
static ab_status gw_run_forward(const ab_attn_ctx *ctx, const gw_shape *s, const ab_attn_weights *w, const gw_saved *sv,
                                void *y, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(cuda_matmul_forward(ctx->be, sv->qkv, x, w->t[0], w->t[1], B * T, cfg->C, qkv_cols(cfg, s)));
    return ab_cuda_flash_forward_gqa(ctx->be, sv->qkv, sv->o, y, sv->lse, B, T, cfg->H, s->G, s->window);
}

static ab_status gw_forward(const ab_attn_ctx *ctx, const gw_shape *s, const ab_attn_weights *w, void *saved, void *y,
                            const void *x, int B, int T) {
    AB_TRY(gw_check(ctx->cfg, s));
    gw_saved sv = gw_views(ctx->cfg, s, saved, B, T);
    return gw_run_forward(ctx, s, w, &sv, y, x, B, T);
}

static ab_status gw_backward(const ab_attn_ctx *ctx, const gw_shape *s, const ab_attn_weights *w,
                             const ab_attn_weights *dw, const void *saved, void *dx, const void *dy, const void *x,
                             int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(gw_check(cfg, s));
    gw_saved sv = gw_views(cfg, s, (void *)saved, B, T);
    char *p = (char *)ctx->workspace;
    bf16 *dqkv = (bf16 *)p; /* every element written by the backward: dq by the convert, dk, dv per key */
    p += qkv_bytes(cfg, s, B, T);
    float *dq_accum = (float *)p;
    p += align256(bht_f32(cfg, B, T) * FLASH_HD);
    float *delta = (float *)p;
    AB_TRY(ab_cuda_flash_backward_gqa(ctx->be, sv.qkv, sv.o, sv.lse, dy, dqkv, dq_accum, delta, B, T, cfg->H, s->G,
                                      s->window));
    return cuda_matmul_backward(ctx->be, dx, dw ? dw->t[0] : NULL, dw ? dw->t[1] : NULL, dqkv, x, w->t[0], B * T,
                                cfg->C, qkv_cols(cfg, s));
}

/* cap = min(W, max_T) slots for the band (rolling), max_T for causal attention */
static attn_kv_layout gw_layout(const ab_attn_config *cfg, const gw_shape *s, int max_T) {
    int cap = s->window > 0 && s->window < max_T ? s->window : max_T;
    attn_kv_layout L = {cfg->H, s->G, cfg->D, cap, cap};
    return L;
}

static size_t gw_cache_bytes(const ab_attn_config *cfg, const gw_shape *s, int B, int max_T) {
    attn_kv_layout L = gw_layout(cfg, s, max_T);
    return attn_kv_layout_bytes(&L, B);
}

static ab_status gw_prefill(const ab_attn_ctx *ctx, const gw_shape *s, const ab_attn_weights *w, void *cache, void *y,
                            const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(gw_check(cfg, s));
    if (T > cfg->max_T) return ab_fail(AB_ERR_USAGE, "cuda %s prefill: T = %d > max_T = %d", s->name, T, cfg->max_T);
    if (T <= 0) return AB_OK;
    gw_saved sv = gw_views(cfg, s, ctx->workspace, B, T);
    AB_TRY(gw_run_forward(ctx, s, w, &sv, y, x, B, T));
    attn_kv_layout L = gw_layout(cfg, s, cfg->max_T);
    return attn_kv_cache_fill_layout(ctx->be, &L, (bf16 *)cache, sv.qkv, B, T);
}

static ab_status gw_decode(const ab_attn_ctx *ctx, const gw_shape *s, const ab_attn_weights *w, void *cache, void *y,
                           const void *x, int B, int pos) {
    AB_TRY(gw_check(ctx->cfg, s));
    attn_kv_layout L = gw_layout(ctx->cfg, s, ctx->cfg->max_T);
    return attn_kv_decode_layout(ctx, &L, w, cache, y, x, B, pos);
}
static ab_status gw_decode_input(const ab_attn_ctx *ctx, const gw_shape *s, const ab_attn_weights *w, void *cache,
                                 int B, int pos, ab_decode_input *in) {
    AB_TRY(gw_check(ctx->cfg, s));
    attn_kv_layout L = gw_layout(ctx->cfg, s, ctx->cfg->max_T);
    return attn_kv_decode_input_layout(ctx, &L, w, cache, B, pos, in);
}

/* ---------------------------------------------------------------- gqa */

static size_t gqa_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    gw_shape s = gqa_shape(cfg);
    return gw_saved_bytes(cfg, &s, B, T);
}
static size_t gqa_ws_bytes(const ab_attn_config *cfg, int B, int T) {
    gw_shape s = gqa_shape(cfg);
    return gw_ws_bytes(cfg, &s, B, T);
}
static ab_status gqa_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y, const void *x,
                             int B, int T) {
    gw_shape s = gqa_shape(ctx->cfg);
    return gw_forward(ctx, &s, w, saved, y, x, B, T);
}
static ab_status gqa_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                              const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    gw_shape s = gqa_shape(ctx->cfg);
    return gw_backward(ctx, &s, w, dw, saved, dx, dy, x, B, T);
}
static size_t gqa_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    gw_shape s = gqa_shape(cfg);
    return gw_cache_bytes(cfg, &s, B, max_T);
}
static ab_status gqa_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                             int B, int T) {
    gw_shape s = gqa_shape(ctx->cfg);
    return gw_prefill(ctx, &s, w, cache, y, x, B, T);
}
static ab_status gqa_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                            int B, int pos) {
    gw_shape s = gqa_shape(ctx->cfg);
    return gw_decode(ctx, &s, w, cache, y, x, B, pos);
}

static ab_status gqa_decode_input(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, int B, int pos,
                                  ab_decode_input *in) {
    gw_shape s = gqa_shape(ctx->cfg);
    return gw_decode_input(ctx, &s, w, cache, B, pos, in);
}

extern "C" const ab_attn_ops ab_cuda_attn_gqa = {
    gqa_saved_bytes, gqa_ws_bytes, gqa_forward, gqa_backward, gqa_cache_bytes, gqa_prefill, gqa_decode, gqa_decode_input,
};

/* ---------------------------------------------------------------- sliding_window */

static size_t window_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    gw_shape s = window_shape(cfg);
    return gw_saved_bytes(cfg, &s, B, T);
}
static size_t window_ws_bytes(const ab_attn_config *cfg, int B, int T) {
    gw_shape s = window_shape(cfg);
    return gw_ws_bytes(cfg, &s, B, T);
}
static ab_status window_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y, const void *x,
                                int B, int T) {
    gw_shape s = window_shape(ctx->cfg);
    return gw_forward(ctx, &s, w, saved, y, x, B, T);
}
static ab_status window_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                                 const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    gw_shape s = window_shape(ctx->cfg);
    return gw_backward(ctx, &s, w, dw, saved, dx, dy, x, B, T);
}
static size_t window_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    gw_shape s = window_shape(cfg);
    return gw_cache_bytes(cfg, &s, B, max_T);
}
static ab_status window_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                                int B, int T) {
    gw_shape s = window_shape(ctx->cfg);
    return gw_prefill(ctx, &s, w, cache, y, x, B, T);
}
static ab_status window_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                               int B, int pos) {
    gw_shape s = window_shape(ctx->cfg);
    return gw_decode(ctx, &s, w, cache, y, x, B, pos);
}

static ab_status window_decode_input(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, int B, int pos,
                                     ab_decode_input *in) {
    gw_shape s = window_shape(ctx->cfg);
    return gw_decode_input(ctx, &s, w, cache, B, pos, in);
}

extern "C" const ab_attn_ops ab_cuda_attn_sliding_window = {
    window_saved_bytes, window_ws_bytes, window_forward, window_backward, window_cache_bytes, window_prefill,
    window_decode,      window_decode_input,
};
