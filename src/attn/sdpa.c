/*
 * sdpa.c — scaled dot-product attention with a fused softmax (VARIANTS.md 2), CPU reference.
 *
 * Same math as baseline; the best non-flash implementation. Per (batch, head), queries go in row blocks
 * of ATTN_TILE: for block [i0, i1) only keys [0, i1) are computed (the upper triangle beyond the block's
 * diagonal is skipped), tau is folded into the Q K^T product (GEMM alpha), mask + softmax are one fused
 * row pass, and P is the only (B, H, T, T) tensor kept (entries beyond a block's diagonal are never
 * written or read). Backward needs only a (ATTN_TILE, T) dP buffer per thread: dP, the fused
 * softmax-backward (scale folded in), dV, dQ, dK per row block. Still O(T^2) memory through P.
 */
#include <string.h>

#include "attn/attn_variants.h"

/* saved: qkv (B,T,3C) | P (B,H,T,T) */
static size_t qkv_bytes(const ab_attn_config *cfg, int B, int T) {
    return attn_align(sizeof(float) * B * T * 3 * cfg->C);
}

static size_t sdpa_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    return qkv_bytes(cfg, B, T) + attn_align(sizeof(float) * B * cfg->H * T * T);
}

static attn_mha_shape sdpa_shape(const ab_attn_config *cfg) { return attn_shape(cfg, cfg->H, ATTN_CAUSAL); }

static size_t sdpa_workspace_bytes(const ab_attn_config *cfg, int B, int T) {
    /* backward: dqkv (B,T,3C) and one (ATTN_TILE, T) dP block per thread */
    const size_t train = qkv_bytes(cfg, B, T) + attn_threads() * attn_align(sizeof(float) * ATTN_TILE * T);
    attn_mha_shape s = sdpa_shape(cfg);
    const size_t decode = attn_kv_decode_workspace_bytes(&s, B, cfg->max_T);
    return train > decode ? train : decode;
}

static ab_status sdpa_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y,
                              const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, D = cfg->D, ld = 3 * C;
    const float tau = 1.0f / sqrtf((float)D);
    float *qkv = saved;                                            /* (B,T,3C) */
    float *P = (float *)((char *)saved + qkv_bytes(cfg, B, T));    /* (B,H,T,T) */
    float *out = y;                                                /* (B,T,C) */
    AB_TRY(ctx->be->ops->matmul_forward(ctx->be, qkv, x, w->t[0], w->t[1], B * T, C, ld));
    const int blas_threads = attn_blas_serial_begin();
#pragma omp parallel for schedule(dynamic, 1) if (attn_parallel_worth((double)B * H * T * T * D))
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        const float *q = qkv + (size_t)b * T * ld + h * D, *k = q + C, *v = q + 2 * C;
        float *Pbh = P + (size_t)bh * T * T, *o = out + (size_t)b * T * C + h * D;
        for (int i0 = 0; i0 < T; i0 += ATTN_TILE) {
            const int rows = T - i0 < ATTN_TILE ? T - i0 : ATTN_TILE, i1 = i0 + rows;
            float *Pblk = Pbh + (size_t)i0 * T;
            attn_gemm(0, 1, rows, i1, D, tau, q + (size_t)i0 * ld, ld, k, ld, 0.0f, Pblk, T);
            for (int r = 0; r < rows; r++) attn_softmax_row(Pblk + (size_t)r * T, 0, i0 + r, i1);
            attn_gemm(0, 0, rows, D, i1, 1.0f, Pblk, T, v, ld, 0.0f, o + (size_t)i0 * C, C);
        }
    }
    attn_blas_serial_end(blas_threads);
    return AB_OK;
}

static ab_status sdpa_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                               const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, D = cfg->D, ld = 3 * C;
    const float tau = 1.0f / sqrtf((float)D);
    const float *qkv = saved;                                                  /* (B,T,3C) */
    const float *P = (const float *)((const char *)saved + qkv_bytes(cfg, B, T)); /* (B,H,T,T) */
    const float *dout = dy;                                                    /* (B,T,C) */
    float *dqkv = ctx->workspace;                                              /* (B,T,3C) */
    float *dP_all = (float *)((char *)ctx->workspace + qkv_bytes(cfg, B, T));  /* threads x (ATTN_TILE, T) */
    const size_t dP_stride = attn_align(sizeof(float) * ATTN_TILE * T) / sizeof(float);
    memset(dqkv, 0, sizeof(float) * B * T * ld);
    const int blas_threads = attn_blas_serial_begin();
#pragma omp parallel for schedule(dynamic, 1) if (attn_parallel_worth((double)B * H * T * T * D))
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        const float *q = qkv + (size_t)b * T * ld + h * D, *k = q + C, *v = q + 2 * C;
        const float *Pbh = P + (size_t)bh * T * T, *dob = dout + (size_t)b * T * C + h * D;
        float *dq = dqkv + (size_t)b * T * ld + h * D, *dk = dq + C, *dv = dq + 2 * C;
        float *dP = dP_all + dP_stride * attn_thread_id();
        for (int i0 = 0; i0 < T; i0 += ATTN_TILE) {
            const int rows = T - i0 < ATTN_TILE ? T - i0 : ATTN_TILE, i1 = i0 + rows;
            const float *Pblk = Pbh + (size_t)i0 * T, *doblk = dob + (size_t)i0 * C;
            attn_gemm(0, 1, rows, i1, D, 1.0f, doblk, C, v, ld, 0.0f, dP, T);
            for (int r = 0; r < rows; r++)
                attn_softmax_row_backward(dP + (size_t)r * T, Pblk + (size_t)r * T, 0, i0 + r, i1, tau);
            attn_gemm(1, 0, i1, D, rows, 1.0f, Pblk, T, doblk, C, 1.0f, dv, ld);
            attn_gemm(0, 0, rows, D, i1, 1.0f, dP, T, k, ld, 1.0f, dq + (size_t)i0 * ld, ld);
            attn_gemm(1, 0, i1, D, rows, 1.0f, dP, T, q + (size_t)i0 * ld, ld, 1.0f, dk, ld);
        }
    }
    attn_blas_serial_end(blas_threads);
    return ctx->be->ops->matmul_backward(ctx->be, dx, dw->t[0], dw->t[1], dqkv, x, w->t[0], B * T, C, ld);
}

static size_t sdpa_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    attn_mha_shape s = sdpa_shape(cfg);
    return attn_kv_cache_bytes(&s, B, max_T);
}

static ab_status sdpa_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                              const void *x, int B, int T) {
    attn_mha_shape s = sdpa_shape(ctx->cfg);
    return attn_kv_prefill(ctx, &s, sdpa_forward, sdpa_saved_bytes(ctx->cfg, B, T), w, cache, y, x, B, T);
}

static ab_status sdpa_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                             int B, int pos) {
    attn_mha_shape s = sdpa_shape(ctx->cfg);
    return attn_kv_decode(ctx, &s, w, cache, y, x, B, pos);
}

const ab_attn_ops ab_cpu_attn_sdpa = {
    .saved_bytes = sdpa_saved_bytes,
    .workspace_bytes = sdpa_workspace_bytes,
    .forward = sdpa_forward,
    .backward = sdpa_backward,
    .cache_bytes = sdpa_cache_bytes,
    .prefill = sdpa_prefill,
    .decode = sdpa_decode,
};

/* ---------------------------------------------------------------- definition */

ab_status ab_attn_sdpa_validate(const ab_attn_config *cfg, int T) { return attn_validate_common(cfg, T); }

int ab_attn_sdpa_tensors(const ab_attn_config *cfg, ab_attn_tensor out[AB_ATTN_MAX_TENSORS]) {
    return attn_tensors_c_attn(cfg, 3 * cfg->C, out);
}

void ab_attn_sdpa_flops(const ab_attn_config *cfg, int B, int T, ab_attn_flops *f) {
    const int H = cfg->H, D = cfg->D;
    attn_flops_tiled(f, B, T, H, D, ATTN_CAUSAL, 3.0 * cfg->C * cfg->C);
    /* executed: row block [i0, i1) x keys [0, i1): as many score elements as the causal tiles;
     * 2 products forward, 4 backward (dP, dV, dQ, dK; P is not recomputed) */
    const double elems = (double)B * H * attn_tiled_tile_elems(T, ATTN_CAUSAL);
    f->hw_fwd = f->proj_fwd + attn_mm_flops(elems, 2 * D, 1);
    f->hw_bwd = 2 * f->proj_fwd + attn_mm_flops(elems, 4 * D, 1);
}

double ab_attn_sdpa_cache_elems(const ab_attn_config *cfg, int T) { return 2.0 * cfg->C; }
