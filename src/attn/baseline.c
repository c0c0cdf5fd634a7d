/*
 * baseline.c — GPT-2 attention, unfused (VARIANTS.md 1), CPU reference.
 *
 * The textbook / Hugging Face "eager" way, which is what this variant measures: every step is its own
 * pass over the whole (B, H, T, T) tensor, exactly as an eager framework runs one op after the other:
 *   1. preatt = Q K^T            full T x T product per head (the masked upper triangle is computed too)
 *   2. preatt *= tau             scale pass
 *   3. preatt[j > i] = -inf      mask pass
 *   4. att = softmax(preatt)     row softmax pass (upper triangle exactly 0)
 *   5. y = att V                 full T x T product per head
 * Both (B, H, T, T) tensors are kept for backward (saved), and backward materialises the (B, H, T, T)
 * gradient of att in the workspace. Decode uses the shared K/V cache.
 */
#include <string.h>

#include "attn/attn_variants.h"

/* saved: qkv (B,T,3C) | preatt (B,H,T,T) | att (B,H,T,T) */
typedef struct {
    float *qkv, *preatt, *att;
} baseline_saved;

static baseline_saved saved_layout(const ab_attn_config *cfg, void *saved, int B, int T, size_t *total) {
    const size_t n_qkv = attn_align(sizeof(float) * B * T * 3 * cfg->C);
    const size_t n_tt = attn_align(sizeof(float) * B * cfg->H * T * T);
    char *p = saved;
    if (total) *total = n_qkv + 2 * n_tt;
    return (baseline_saved){.qkv = (float *)p, .preatt = (float *)(p ? p + n_qkv : NULL),
                            .att = (float *)(p ? p + n_qkv + n_tt : NULL)};
}

static size_t baseline_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    size_t total;
    saved_layout(cfg, NULL, B, T, &total);
    return total;
}

static attn_mha_shape baseline_shape(const ab_attn_config *cfg) { return attn_shape(cfg, cfg->H, ATTN_CAUSAL); }

static size_t baseline_workspace_bytes(const ab_attn_config *cfg, int B, int T) {
    /* backward: dqkv (B,T,3C) and datt (B,H,T,T) */
    const size_t train = attn_align(sizeof(float) * B * T * 3 * cfg->C) + attn_align(sizeof(float) * B * cfg->H * T * T);
    attn_mha_shape s = baseline_shape(cfg);
    const size_t decode = attn_kv_decode_workspace_bytes(&s, B, cfg->max_T);
    return train > decode ? train : decode;
}

static ab_status baseline_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y,
                                  const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, D = cfg->D, ld = 3 * C;
    const size_t TT = (size_t)T * T, n_tt = (size_t)B * H * TT;
    const float tau = 1.0f / sqrtf((float)D);
    baseline_saved sv = saved_layout(cfg, saved, B, T, NULL);
    float *out = y; /* (B,T,C) */
    AB_TRY(ctx->be->ops->matmul_forward(ctx->be, sv.qkv, x, w->t[0], w->t[1], B * T, C, ld));
    const int blas_threads = attn_blas_serial_begin();
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)n_tt * D))
    for (int bh = 0; bh < B * H; bh++) { /* 1. Q K^T */
        const float *q = sv.qkv + (size_t)(bh / H) * T * ld + (bh % H) * D;
        attn_gemm(0, 1, T, T, D, 1.0f, q, ld, q + C, ld, 0.0f, sv.preatt + bh * TT, T);
    }
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)n_tt))
    for (size_t e = 0; e < n_tt; e++) sv.preatt[e] *= tau; /* 2. scale */
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)n_tt))
    for (size_t r = 0; r < (size_t)B * H * T; r++) { /* 3. causal mask */
        float *row = sv.preatt + r * T;
        for (int j = (int)(r % T) + 1; j < T; j++) row[j] = -INFINITY;
    }
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)n_tt))
    for (size_t r = 0; r < (size_t)B * H * T; r++) { /* 4. softmax over the full row (exp(-inf) = 0) */
        float *p = sv.att + r * T;
        memcpy(p, sv.preatt + r * T, sizeof(float) * T);
        attn_softmax_row(p, 0, T - 1, T);
    }
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)n_tt * D))
    for (int bh = 0; bh < B * H; bh++) { /* 5. att V */
        const int b = bh / H, h = bh % H;
        const float *v = sv.qkv + (size_t)b * T * ld + 2 * C + h * D;
        attn_gemm(0, 0, T, D, T, 1.0f, sv.att + bh * TT, T, v, ld, 0.0f, out + (size_t)b * T * C + h * D, C);
    }
    attn_blas_serial_end(blas_threads);
    return AB_OK;
}

static ab_status baseline_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                                   const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, D = cfg->D, ld = 3 * C;
    const size_t TT = (size_t)T * T, n_tt = (size_t)B * H * TT;
    const float tau = 1.0f / sqrtf((float)D);
    baseline_saved sv = saved_layout(cfg, (void *)saved, B, T, NULL);
    const float *dout = dy;                                   /* (B,T,C) */
    float *dqkv = ctx->workspace;                             /* (B,T,3C) */
    float *datt = (float *)((char *)ctx->workspace + attn_align(sizeof(float) * B * T * ld)); /* (B,H,T,T) */
    memset(dqkv, 0, sizeof(float) * B * T * ld);
    const int blas_threads = attn_blas_serial_begin();
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)n_tt * D))
    for (int bh = 0; bh < B * H; bh++) { /* datt = dO V^T; dV = att^T dO */
        const int b = bh / H, h = bh % H;
        const float *v = sv.qkv + (size_t)b * T * ld + 2 * C + h * D, *dob = dout + (size_t)b * T * C + h * D;
        attn_gemm(0, 1, T, T, D, 1.0f, dob, C, v, ld, 0.0f, datt + bh * TT, T);
        attn_gemm(1, 0, T, D, T, 1.0f, sv.att + bh * TT, T, dob, C, 1.0f, dqkv + (size_t)b * T * ld + 2 * C + h * D,
                  ld);
    }
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)n_tt))
    for (size_t r = 0; r < (size_t)B * H * T; r++) /* softmax backward (P = 0 above the diagonal) */
        attn_softmax_row_backward(datt + r * T, sv.att + r * T, 0, T - 1, T, 1.0f);
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)n_tt))
    for (size_t e = 0; e < n_tt; e++) datt[e] *= tau; /* scale backward */
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)n_tt * D))
    for (int bh = 0; bh < B * H; bh++) { /* dQ = dS K; dK = dS^T Q */
        const int b = bh / H, h = bh % H;
        const float *q = sv.qkv + (size_t)b * T * ld + h * D;
        float *dq = dqkv + (size_t)b * T * ld + h * D;
        attn_gemm(0, 0, T, D, T, 1.0f, datt + bh * TT, T, q + C, ld, 1.0f, dq, ld);
        attn_gemm(1, 0, T, D, T, 1.0f, datt + bh * TT, T, q, ld, 1.0f, dq + C, ld);
    }
    attn_blas_serial_end(blas_threads);
    return ctx->be->ops->matmul_backward(ctx->be, dx, dw->t[0], dw->t[1], dqkv, x, w->t[0], B * T, C, ld);
}

static size_t baseline_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    attn_mha_shape s = baseline_shape(cfg);
    return attn_kv_cache_bytes(&s, B, max_T);
}

static ab_status baseline_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                                  const void *x, int B, int T) {
    attn_mha_shape s = baseline_shape(ctx->cfg);
    return attn_kv_prefill(ctx, &s, baseline_forward, baseline_saved_bytes(ctx->cfg, B, T), w, cache, y, x, B, T);
}

static ab_status baseline_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                                 const void *x, int B, int pos) {
    attn_mha_shape s = baseline_shape(ctx->cfg);
    return attn_kv_decode(ctx, &s, w, cache, y, x, B, pos);
}

const ab_attn_ops ab_cpu_attn_baseline = {
    .saved_bytes = baseline_saved_bytes,
    .workspace_bytes = baseline_workspace_bytes,
    .forward = baseline_forward,
    .backward = baseline_backward,
    .cache_bytes = baseline_cache_bytes,
    .prefill = baseline_prefill,
    .decode = baseline_decode,
};

/* ---------------------------------------------------------------- definition */

ab_status ab_attn_baseline_validate(const ab_attn_config *cfg, int T) { return attn_validate_common(cfg, T); }

int ab_attn_baseline_tensors(const ab_attn_config *cfg, ab_attn_tensor out[AB_ATTN_MAX_TENSORS]) {
    return attn_tensors_c_attn(cfg, 3 * cfg->C, out);
}

void ab_attn_baseline_flops(const ab_attn_config *cfg, int B, int T, ab_attn_flops *f) {
    const int H = cfg->H, D = cfg->D;
    attn_flops_tiled(f, B, T, H, D, ATTN_CAUSAL, 3.0 * cfg->C * cfg->C);
    /* executed: full T x T products, 2 forward (Q K^T, att V) and 4 backward (datt, dV, dQ, dK) */
    const double full = (double)B * H * attn_mm_flops(T, T, D);
    f->hw_fwd = f->proj_fwd + 2 * full;
    f->hw_bwd = 2 * f->proj_fwd + 4 * full;
}

double ab_attn_baseline_cache_elems(const ab_attn_config *cfg, int T) { return 2.0 * cfg->C; }
