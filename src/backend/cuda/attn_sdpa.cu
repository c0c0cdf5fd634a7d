/*
 * attn_sdpa.cu — the two O(T^2)-memory CUDA attention variants, on batched cuBLASLt GEMMs over the
 * head-major layout (B*H batches of (T,D)):
 *
 *  baseline  Hugging Face eager: S = Q K^T, S *= tau, causal mask (-inf), P = softmax(S), O = P V, each a
 *            separate pass; S and P (B,H,T,T) bf16 are both kept. Backward likewise: dP = dO V^T,
 *            softmax backward, mask backward, scale backward, then the GEMMs for dQ, dK, dV.
 *  sdpa      the best non-flash form: S = tau Q K^T in one GEMM (fp32 out, workspace), one fused
 *            mask + softmax kernel reading only the lower triangle and writing P (bf16, kept once, zeros
 *            above the diagonal), one fused softmax-backward kernel dS = tau P (dP - rowsum(P dP)).
 *
 * T x T buffers have rows padded to LDT = T rounded up to 8 (16-byte aligned rows for cuBLASLt).
 * saved (both): qkvh (3,B,H,T,D) bf16 | P (B,H,T,LDT) bf16 [| S (B,H,T,LDT) bf16 for baseline].
 */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_attn.cuh"

static size_t ldt_of(int T) { return ((size_t)T + 7) & ~(size_t)7; }
static size_t tt_elems(const ab_attn_config *cfg, int B, int T) { return (size_t)B * cfg->H * T * ldt_of(T); }
static size_t btc_bytes(const ab_attn_config *cfg, int B, int T) { return (size_t)B * T * cfg->C * sizeof(bf16); }

/* ------------------------------------------------------------------ kernels */

/* x (rows, ld) *= s over the first T columns (baseline: its own pass, as eager PyTorch) */
__global__ void scale_tt_kernel(bf16 *x, size_t rows, int T, size_t ld, float s) {
    size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (idx >= rows * T) return;
    size_t r = idx / T;
    int j = (int)(idx % T);
    bf16 *p = x + r * ld + j;
    *p = f2bf(bf2f(*p) * s);
}

/* x[bh][i][j] = value for j > i (causal mask / its backward) */
__global__ void causal_fill_kernel(bf16 *x, size_t rows, int T, size_t ld, float value) {
    size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (idx >= rows * T) return;
    size_t r = idx / T;
    int j = (int)(idx % T), i = (int)(r % T);
    if (j > i) x[r * ld + j] = f2bf(value);
}

/* P row = softmax(S row) over all T columns (masked entries are -inf): one warp per row, fp32 */
__global__ void softmax_rows_kernel(bf16 *P, const bf16 *S, size_t rows, int T, size_t ld) {
    size_t r = blockIdx.x * (size_t)(blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    const bf16 *s = S + r * ld;
    float m = -INFINITY;
    for (int j = lane; j < T; j += 32) m = fmaxf(m, bf2f(s[j]));
    m = warp_max(m);
    float sum = 0.0f;
    for (int j = lane; j < T; j += 32) sum += __expf(bf2f(s[j]) - m);
    sum = warp_sum(sum);
    float inv = 1.0f / sum;
    bf16 *p = P + r * ld;
    for (int j = lane; j < T; j += 32) p[j] = f2bf(__expf(bf2f(s[j]) - m) * inv);
}

/* dS = P * (dP - rowsum(P * dP)) over all T columns, in place over dP: one warp per row */
__global__ void softmax_backward_rows_kernel(bf16 *dP, const bf16 *P, size_t rows, int T, size_t ld) {
    size_t r = blockIdx.x * (size_t)(blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    const bf16 *p = P + r * ld;
    bf16 *d = dP + r * ld;
    float dot = 0.0f;
    for (int j = lane; j < T; j += 32) dot += bf2f(p[j]) * bf2f(d[j]);
    dot = warp_sum(dot);
    for (int j = lane; j < T; j += 32) d[j] = f2bf(bf2f(p[j]) * (bf2f(d[j]) - dot));
}

/* sdpa: P (bf16) = causal softmax of S (fp32, already scaled by tau); reads j <= i only, writes 0 above the
 * diagonal. One warp per row. */
__global__ void causal_softmax_kernel(bf16 *P, const float *S, size_t rows, int T, size_t ld) {
    size_t r = blockIdx.x * (size_t)(blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    int i = (int)(r % T), n = i + 1;
    const float *s = S + r * ld;
    float m = -INFINITY, sum = 0.0f;
    for (int j = lane; j < n; j += 32) {
        float x = s[j];
        if (x > m) {
            sum = sum * __expf(m - x) + 1.0f;
            m = x;
        } else {
            sum += __expf(x - m);
        }
    }
    float wm = warp_max(m);
    sum = warp_sum(m == -INFINITY ? 0.0f : sum * __expf(m - wm));
    float inv = 1.0f / sum;
    bf16 *p = P + r * ld;
    for (int j = lane; j < T; j += 32) p[j] = j < n ? f2bf(__expf(s[j] - wm) * inv) : f2bf(0.0f);
}

/* sdpa: dS (bf16) = tau * P * (dP - rowsum(P dP)) for j <= i, 0 above; dP fp32. One warp per row. */
__global__ void causal_softmax_backward_kernel(bf16 *dS, const bf16 *P, const float *dP, size_t rows, int T, size_t ld,
                                               float tau) {
    size_t r = blockIdx.x * (size_t)(blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    int n = (int)(r % T) + 1;
    const bf16 *p = P + r * ld;
    const float *dp = dP + r * ld;
    float dot = 0.0f;
    for (int j = lane; j < n; j += 32) dot += bf2f(p[j]) * dp[j];
    dot = warp_sum(dot);
    bf16 *d = dS + r * ld;
    for (int j = lane; j < T; j += 32) d[j] = j < n ? f2bf(tau * bf2f(p[j]) * (dp[j] - dot)) : f2bf(0.0f);
}

/* ------------------------------------------------------------------ batched head GEMMs */

/* C[bh] = alpha * op(A[bh]) @ op(B[bh]) + beta * C[bh], B*H batches, row-major */
static ab_status head_gemm(ab_backend *be, int batch, int ta, int tb, int M, int N, int K, float alpha,
                           const bf16 *A, int lda, long long sa, const bf16 *Bm, int ldb, long long sb, float beta,
                           void *C, int ldc, long long sc, int c_f32) {
    cuda_gemm_args g;
    memset(&g, 0, sizeof g);
    g.trans_a = ta; g.trans_b = tb; g.M = M; g.N = N; g.K = K; g.alpha = alpha; g.beta = beta;
    g.A = A; g.lda = lda; g.stride_a = sa;
    g.B = Bm; g.ldb = ldb; g.stride_b = sb;
    g.C = C; g.ldc = ldc; g.stride_c = sc; g.c_f32 = c_f32;
    g.batch = batch;
    return cuda_gemm(be, &g);
}

/* ------------------------------------------------------------------ sizes */

static size_t baseline_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    return align256(3 * btc_bytes(cfg, B, T)) + 2 * align256(tt_elems(cfg, B, T) * sizeof(bf16));
}
static size_t sdpa_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    return align256(3 * btc_bytes(cfg, B, T)) + align256(tt_elems(cfg, B, T) * sizeof(bf16));
}
/* training scratch: qkv / dqkv (B,T,3C) | o or dO (B,H,T,D) | dqkvh (3,B,H,T,D) | T x T (fp32 for sdpa,
 * bf16 for baseline) [| dS bf16 for sdpa] */
static size_t train_ws(const ab_attn_config *cfg, int B, int T, int sdpa) {
    size_t tt = tt_elems(cfg, B, T);
    return align256(3 * btc_bytes(cfg, B, T)) + align256(btc_bytes(cfg, B, T)) + align256(3 * btc_bytes(cfg, B, T)) +
           align256(tt * (sdpa ? sizeof(float) : sizeof(bf16))) + (sdpa ? align256(tt * sizeof(bf16)) : 0);
}
/* prefill runs the training forward with `saved` carved from the workspace too */
static size_t baseline_ws_bytes(const ab_attn_config *cfg, int B, int T) {
    size_t w = train_ws(cfg, B, T, 0) + baseline_saved_bytes(cfg, B, T), d = attn_decode_workspace_bytes(cfg, B);
    return w > d ? w : d;
}
static size_t sdpa_ws_bytes(const ab_attn_config *cfg, int B, int T) {
    size_t w = train_ws(cfg, B, T, 1) + sdpa_saved_bytes(cfg, B, T), d = attn_decode_workspace_bytes(cfg, B);
    return w > d ? w : d;
}

/* ------------------------------------------------------------------ forward / backward */

typedef struct {
    bf16 *qkvh, *P, *S; /* saved */
} tt_saved;

static tt_saved saved_views(const ab_attn_config *cfg, void *saved, int B, int T, int baseline) {
    tt_saved s;
    char *p = (char *)saved;
    s.qkvh = (bf16 *)p;
    p += align256(3 * btc_bytes(cfg, B, T));
    s.P = (bf16 *)p;
    p += align256(tt_elems(cfg, B, T) * sizeof(bf16));
    s.S = baseline ? (bf16 *)p : NULL;
    return s;
}

/* y (B,T,C) = attention(x); ws is the training scratch (train_ws bytes). */
static ab_status tt_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *ws, void *y,
                            const void *x, int B, int T, int baseline) {
    const ab_attn_config *cfg = ctx->cfg;
    ab_backend *be = ctx->be;
    int H = cfg->H, D = cfg->D, BH = B * H;
    size_t ldt = ldt_of(T), rows = (size_t)BH * T;
    long long sq = (long long)T * D, stt = (long long)T * ldt;
    float tau = 1.0f / sqrtf((float)D);
    tt_saved sv = saved_views(cfg, saved, B, T, baseline);
    char *p = (char *)ws;
    bf16 *qkv = (bf16 *)p;
    p += align256(3 * btc_bytes(cfg, B, T));
    bf16 *oh = (bf16 *)p;
    p += align256(btc_bytes(cfg, B, T)) + align256(3 * btc_bytes(cfg, B, T));
    void *tt = p;
    const bf16 *Q = sv.qkvh, *K = sv.qkvh + (size_t)BH * sq, *V = sv.qkvh + 2 * (size_t)BH * sq;

    AB_TRY(attn_qkv_forward(ctx, w, qkv, x, B * T));
    AB_TRY(attn_permute(be, sv.qkvh, qkv, B, T, 3, H, D, 1));
    if (baseline) {
        AB_TRY(head_gemm(be, BH, 0, 1, T, T, D, 1.0f, Q, D, sq, K, D, sq, 0.0f, sv.S, (int)ldt, stt, 0)); /* S = Q K^T */
        scale_tt_kernel<<<cuda_blocks(rows * T, 256), 256, 0, cuda_stream(be)>>>(sv.S, rows, T, ldt, tau);
        AB_TRY(cuda_check_launch("scale"));
        causal_fill_kernel<<<cuda_blocks(rows * T, 256), 256, 0, cuda_stream(be)>>>(sv.S, rows, T, ldt, -INFINITY);
        AB_TRY(cuda_check_launch("causal_mask"));
        softmax_rows_kernel<<<cuda_blocks(rows, 8), 256, 0, cuda_stream(be)>>>(sv.P, sv.S, rows, T, ldt);
        AB_TRY(cuda_check_launch("softmax"));
    } else {
        float *S = (float *)tt; /* S = tau Q K^T, fp32 */
        AB_TRY(head_gemm(be, BH, 0, 1, T, T, D, tau, Q, D, sq, K, D, sq, 0.0f, S, (int)ldt, stt, 1));
        causal_softmax_kernel<<<cuda_blocks(rows, 8), 256, 0, cuda_stream(be)>>>(sv.P, S, rows, T, ldt);
        AB_TRY(cuda_check_launch("causal_softmax"));
    }
    AB_TRY(head_gemm(be, BH, 0, 0, T, D, T, 1.0f, sv.P, (int)ldt, stt, V, D, sq, 0.0f, oh, D, sq, 0)); /* O = P V */
    return attn_permute(be, (bf16 *)y, oh, B, T, 1, H, D, 0);
}

static ab_status tt_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                             const void *saved, void *dx, const void *dy, const void *x, int B, int T, int baseline) {
    const ab_attn_config *cfg = ctx->cfg;
    ab_backend *be = ctx->be;
    int H = cfg->H, D = cfg->D, BH = B * H;
    size_t ldt = ldt_of(T), rows = (size_t)BH * T;
    long long sq = (long long)T * D, stt = (long long)T * ldt;
    float tau = 1.0f / sqrtf((float)D);
    tt_saved sv = saved_views(cfg, (void *)saved, B, T, baseline);
    char *p = (char *)ctx->workspace;
    bf16 *dqkv = (bf16 *)p;
    p += align256(3 * btc_bytes(cfg, B, T));
    bf16 *dOh = (bf16 *)p;
    p += align256(btc_bytes(cfg, B, T));
    bf16 *dqkvh = (bf16 *)p;
    p += align256(3 * btc_bytes(cfg, B, T));
    void *tt = p;
    const bf16 *Q = sv.qkvh, *K = sv.qkvh + (size_t)BH * sq, *V = sv.qkvh + 2 * (size_t)BH * sq;
    bf16 *dQ = dqkvh, *dK = dqkvh + (size_t)BH * sq, *dV = dqkvh + 2 * (size_t)BH * sq;

    AB_TRY(attn_permute(be, dOh, (const bf16 *)dy, B, T, 1, H, D, 1));
    /* dV = P^T dO */
    AB_TRY(head_gemm(be, BH, 1, 0, T, D, T, 1.0f, sv.P, (int)ldt, stt, dOh, D, sq, 0.0f, dV, D, sq, 0));
    bf16 *dS;
    if (baseline) {
        dS = (bf16 *)tt; /* dP = dO V^T, then softmax, mask and scale backward in place, one pass each */
        AB_TRY(head_gemm(be, BH, 0, 1, T, T, D, 1.0f, dOh, D, sq, V, D, sq, 0.0f, dS, (int)ldt, stt, 0));
        softmax_backward_rows_kernel<<<cuda_blocks(rows, 8), 256, 0, cuda_stream(be)>>>(dS, sv.P, rows, T, ldt);
        AB_TRY(cuda_check_launch("softmax_backward"));
        causal_fill_kernel<<<cuda_blocks(rows * T, 256), 256, 0, cuda_stream(be)>>>(dS, rows, T, ldt, 0.0f);
        AB_TRY(cuda_check_launch("causal_mask_backward"));
        scale_tt_kernel<<<cuda_blocks(rows * T, 256), 256, 0, cuda_stream(be)>>>(dS, rows, T, ldt, tau);
        AB_TRY(cuda_check_launch("scale_backward"));
    } else {
        float *dP = (float *)tt;
        dS = (bf16 *)((char *)tt + align256(tt_elems(cfg, B, T) * sizeof(float)));
        AB_TRY(head_gemm(be, BH, 0, 1, T, T, D, 1.0f, dOh, D, sq, V, D, sq, 0.0f, dP, (int)ldt, stt, 1));
        causal_softmax_backward_kernel<<<cuda_blocks(rows, 8), 256, 0, cuda_stream(be)>>>(dS, sv.P, dP, rows, T, ldt, tau);
        AB_TRY(cuda_check_launch("causal_softmax_backward"));
    }
    /* dQ = dS K, dK = dS^T Q */
    AB_TRY(head_gemm(be, BH, 0, 0, T, D, T, 1.0f, dS, (int)ldt, stt, K, D, sq, 0.0f, dQ, D, sq, 0));
    AB_TRY(head_gemm(be, BH, 1, 0, T, D, T, 1.0f, dS, (int)ldt, stt, Q, D, sq, 0.0f, dK, D, sq, 0));
    AB_TRY(attn_permute(be, dqkv, dqkvh, B, T, 3, H, D, 0));
    return attn_qkv_backward(ctx, w, dw, dqkv, x, dx, B * T);
}

/* ------------------------------------------------------------------ op tables */

static ab_status check_shape(const ab_attn_config *cfg) {
    if (cfg->D % 8) return ab_fail(AB_ERR_UNSUPPORTED, "cuda attention: head size %d must be a multiple of 8", cfg->D);
    return AB_OK;
}

static ab_status baseline_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y,
                                  const void *x, int B, int T) {
    AB_TRY(check_shape(ctx->cfg));
    return tt_forward(ctx, w, saved, ctx->workspace, y, x, B, T, 1);
}
static ab_status sdpa_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y, const void *x,
                              int B, int T) {
    AB_TRY(check_shape(ctx->cfg));
    return tt_forward(ctx, w, saved, ctx->workspace, y, x, B, T, 0);
}
static ab_status baseline_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                                   const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    return tt_backward(ctx, w, dw, saved, dx, dy, x, B, T, 1);
}
static ab_status sdpa_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                               const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    return tt_backward(ctx, w, dw, saved, dx, dy, x, B, T, 0);
}

/* prefill: forward with saved + scratch carved from the workspace, then K, V (still in the qkv scratch at
 * the start of the training workspace) copied into the cache */
static ab_status tt_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                            int B, int T, int baseline) {
    AB_TRY(check_shape(ctx->cfg));
    if (T > ctx->cfg->max_T) return ab_fail(AB_ERR_USAGE, "cuda prefill: T = %d > max_T = %d", T, ctx->cfg->max_T);
    char *ws = (char *)ctx->workspace;
    void *saved = ws + train_ws(ctx->cfg, B, T, !baseline);
    AB_TRY(tt_forward(ctx, w, saved, ws, y, x, B, T, baseline));
    return attn_kv_cache_fill(ctx->be, (bf16 *)cache, (const bf16 *)ws, B, T, ctx->cfg->C);
}
static ab_status baseline_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                                  const void *x, int B, int T) {
    return tt_prefill(ctx, w, cache, y, x, B, T, 1);
}
static ab_status sdpa_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                              int B, int T) {
    return tt_prefill(ctx, w, cache, y, x, B, T, 0);
}

extern "C" const ab_attn_ops ab_cuda_attn_baseline = {
    baseline_saved_bytes, baseline_ws_bytes, baseline_forward, baseline_backward,
    attn_kv_cache_bytes,  baseline_prefill,  attn_kv_decode,       attn_kv_decode_input,
};

extern "C" const ab_attn_ops ab_cuda_attn_sdpa = {
    sdpa_saved_bytes, sdpa_ws_bytes, sdpa_forward, sdpa_backward, attn_kv_cache_bytes, sdpa_prefill, attn_kv_decode,
    attn_kv_decode_input,
};
