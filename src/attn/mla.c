/*
 * mla.c — multi-head latent attention (DeepSeek-V2; VARIANTS.md 8), CPU reference.
 *
 * Tensors (per layer, Conv1D (in, out) layout, no biases):
 *   attn.q_proj.weight  (C, C)      q = x W_q
 *   attn.kv_down.weight (C, d_c)    a = x W_dkv
 *   attn.kv_norm.weight (1, d_c)    c = RMSNorm(a) * g, eps 1e-6 (the latent that decode caches)
 *   attn.k_up.weight    (d_c, C)    k = c W_uk   (head h: columns h*D .. h*D+D-1)
 *   attn.v_up.weight    (d_c, C)    v = c W_uv
 * Training is un-absorbed: q, k, v per head on the tiled core (causal, tau = 1/sqrt(D)); W_dkv gets its
 * gradient through both k and v and through the RMSNorm. Decode is absorbed: the cache holds only c_t
 * (d_c per token); q~_h = W_uk,h q_h (d_c), scores tau q~_h . c_j, o_h = (sum_j p_j c_j) W_uv,h.
 */
#include <string.h>

#include "attn/attn_variants.h"

#define MLA_RMS_EPS 1e-6f

enum { W_Q = 0, W_DKV, W_NORM, W_UK, W_UV };

/* saved: q (B,T,C) | a (B,T,dc) | rstd (B,T) | c (B,T,dc) | k (B,T,C) | v (B,T,C) | O (B,T,C) | L (B,H,T) */
typedef struct {
    float *q, *a, *rstd, *c, *k, *v, *o, *lse;
} mla_saved;

static mla_saved saved_layout(const ab_attn_config *cfg, void *saved, int B, int T, size_t *total) {
    const size_t N = (size_t)B * T, C = cfg->C, dc = cfg->hp.mla_kv_rank;
    const size_t sizes[8] = {N * C, N * dc, N, N * dc, N * C, N * C, N * C, N * cfg->H};
    float *ptr[8];
    size_t off = 0;
    for (int i = 0; i < 8; i++) {
        ptr[i] = saved ? (float *)((char *)saved + off) : NULL;
        off += attn_align(sizeof(float) * sizes[i]);
    }
    if (total) *total = off;
    return (mla_saved){ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5], ptr[6], ptr[7]};
}

static size_t mla_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    size_t total;
    saved_layout(cfg, NULL, B, T, &total);
    return total;
}

static attn_mha_shape mla_shape(const ab_attn_config *cfg) { return attn_shape(cfg, cfg->H, ATTN_CAUSAL); }

/* decode scratch: q (B,C), a/c (B,dc), and per thread q~ (dc), latent sum (dc), scores (max_T) */
static size_t decode_thread_floats(const ab_attn_config *cfg) {
    return attn_align(sizeof(float) * (2 * cfg->hp.mla_kv_rank + cfg->max_T)) / sizeof(float);
}

static size_t mla_workspace_bytes(const ab_attn_config *cfg, int B, int T) {
    /* backward: dq, dk, dv (B,T,C), dlatent and da (B,T,dc), tiled-core scratch per thread */
    const size_t N = (size_t)B * T;
    const size_t train = 3 * attn_align(sizeof(float) * N * cfg->C) + 2 * attn_align(sizeof(float) * N * cfg->hp.mla_kv_rank) +
                         attn_threads() * attn_align(sizeof(float) * attn_tiled_scratch_floats(cfg->D));
    const size_t decode = attn_align(sizeof(float) * B * cfg->C) + 2 * attn_align(sizeof(float) * B * cfg->hp.mla_kv_rank) +
                          attn_threads() * sizeof(float) * decode_thread_floats(cfg);
    return train > decode ? train : decode;
}

/* c (N,dc) = g * a * rstd, rstd = 1/sqrt(mean(a^2) + eps) (N) */
static void rmsnorm_forward(float *c, float *rstd, const float *a, const float *g, int N, int dc) {
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)N * dc))
    for (int n = 0; n < N; n++) {
        const float *ar = a + (size_t)n * dc;
        float ss = 0.0f;
        for (int i = 0; i < dc; i++) ss += ar[i] * ar[i];
        const float r = 1.0f / sqrtf(ss / dc + MLA_RMS_EPS);
        rstd[n] = r;
        for (int i = 0; i < dc; i++) c[(size_t)n * dc + i] = g[i] * ar[i] * r;
    }
}

/* da (N,dc) = r g dc - r^3 a mean(g dc a); dg (dc) += sum_n dc a r (accumulating) */
static void rmsnorm_backward(float *da, float *dg, const float *dcv, const float *a, const float *rstd, const float *g,
                             int N, int dc) {
    for (int n = 0; n < N; n++) { /* dg is shared: sequential, N * dc is small next to the products */
        const float *ar = a + (size_t)n * dc, *dr = dcv + (size_t)n * dc;
        const float r = rstd[n];
        float dot = 0.0f;
        for (int i = 0; i < dc; i++) {
            dot += g[i] * dr[i] * ar[i];
            if (dg) dg[i] += dr[i] * ar[i] * r;
        }
        const float coef = r * r * r * dot / dc;
        for (int i = 0; i < dc; i++) da[(size_t)n * dc + i] = r * g[i] * dr[i] - coef * ar[i];
    }
}

/* The latent path shared by forward and prefill: q, a, c, k, v of x (N rows). */
static ab_status mla_project(const ab_attn_ctx *ctx, const ab_attn_weights *w, const mla_saved *sv, const void *x,
                             int N) {
    ab_backend *be = ctx->be;
    const int C = ctx->cfg->C, dc = ctx->cfg->hp.mla_kv_rank;
    AB_TRY(be->ops->matmul_forward(be, sv->q, x, w->t[W_Q], NULL, N, C, C));
    AB_TRY(be->ops->matmul_forward(be, sv->a, x, w->t[W_DKV], NULL, N, C, dc));
    rmsnorm_forward(sv->c, sv->rstd, sv->a, w->t[W_NORM], N, dc);
    AB_TRY(be->ops->matmul_forward(be, sv->k, sv->c, w->t[W_UK], NULL, N, dc, C));
    return be->ops->matmul_forward(be, sv->v, sv->c, w->t[W_UV], NULL, N, dc, C);
}

static ab_status mla_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y, const void *x,
                             int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C;
    mla_saved sv = saved_layout(cfg, saved, B, T, NULL);
    attn_mha_shape s = mla_shape(cfg);
    AB_TRY(mla_project(ctx, w, &sv, x, B * T));
    attn_mha_core_forward(&s, B, T, sv.q, C, sv.k, C, sv.v, C, sv.o, sv.lse, ctx->workspace);
    memcpy(y, sv.o, sizeof(float) * B * T * C);
    return AB_OK;
}

static ab_status mla_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                              const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    ab_backend *be = ctx->be;
    const int C = cfg->C, dc = cfg->hp.mla_kv_rank, N = B * T;
    mla_saved sv = saved_layout(cfg, (void *)saved, B, T, NULL);
    attn_mha_shape s = mla_shape(cfg);
    char *ws = ctx->workspace;
    const size_t nC = attn_align(sizeof(float) * N * C), nL = attn_align(sizeof(float) * N * dc);
    float *dq = (float *)ws, *dk = (float *)(ws + nC), *dv = (float *)(ws + 2 * nC); /* (B,T,C) each */
    float *dlat = (float *)(ws + 3 * nC);                                             /* (B,T,dc) */
    float *da = (float *)(ws + 3 * nC + nL);                                          /* (B,T,dc) */
    float *scratch = (float *)(ws + 3 * nC + 2 * nL);
    memset(ws, 0, 3 * nC + nL);
    attn_mha_core_backward(&s, B, T, sv.q, C, sv.k, C, sv.v, C, sv.o, sv.lse, dy, dq, dk, dv, scratch);
    AB_TRY(be->ops->matmul_backward(be, dlat, dw->t[W_UK], NULL, dk, sv.c, w->t[W_UK], N, dc, C));
    AB_TRY(be->ops->matmul_backward(be, dlat, dw->t[W_UV], NULL, dv, sv.c, w->t[W_UV], N, dc, C));
    rmsnorm_backward(da, dw->t[W_NORM], dlat, sv.a, sv.rstd, w->t[W_NORM], N, dc);
    AB_TRY(be->ops->matmul_backward(be, dx, dw->t[W_DKV], NULL, da, x, w->t[W_DKV], N, C, dc));
    return be->ops->matmul_backward(be, dx, dw->t[W_Q], NULL, dq, x, w->t[W_Q], N, C, C);
}

static size_t mla_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    return sizeof(float) * (size_t)B * max_T * cfg->hp.mla_kv_rank;
}

static ab_status mla_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                             int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    const int dc = cfg->hp.mla_kv_rank;
    if (T <= 0) return AB_OK;
    ab_buffer saved;
    AB_TRY(ab_alloc(ctx->be, &saved, mla_saved_bytes(cfg, B, T), MEM_ATTENTION));
    ab_status st = mla_forward(ctx, w, saved.ptr, y, x, B, T);
    if (st == AB_OK) {
        mla_saved sv = saved_layout(cfg, saved.ptr, B, T, NULL);
        for (int b = 0; b < B; b++)
            memcpy((float *)cache + (size_t)b * cfg->max_T * dc, sv.c + (size_t)b * T * dc, sizeof(float) * T * dc);
    }
    ab_free(ctx->be, &saved);
    return st;
}

static ab_status mla_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                            int B, int pos) {
    const ab_attn_config *cfg = ctx->cfg;
    ab_backend *be = ctx->be;
    const int C = cfg->C, H = cfg->H, D = cfg->D, dc = cfg->hp.mla_kv_rank, max_T = cfg->max_T;
    if (pos < 0 || pos >= max_T)
        return ab_fail(AB_ERR_USAGE, "decode position %d outside the context [0, %d)", pos, max_T);
    char *ws = ctx->workspace;
    const size_t nq = attn_align(sizeof(float) * B * C), nl = attn_align(sizeof(float) * B * dc);
    float *q = (float *)ws;                       /* (B,C) */
    float *a = (float *)(ws + nq);                /* (B,dc) */
    float *rstd = (float *)(ws + nq + nl);        /* (B) */
    float *thread_scratch = (float *)(ws + nq + 2 * nl);
    float *lat = cache;                           /* (B,max_T,dc) */
    const float *Wuk = w->t[W_UK], *Wuv = w->t[W_UV]; /* (dc, C) */
    AB_TRY(be->ops->matmul_forward(be, q, x, w->t[W_Q], NULL, B, C, C));
    AB_TRY(be->ops->matmul_forward(be, a, x, w->t[W_DKV], NULL, B, C, dc));
    for (int b = 0; b < B; b++)
        rmsnorm_forward(lat + ((size_t)b * max_T + pos) * dc, rstd + b, a + (size_t)b * dc, w->t[W_NORM], 1, dc);
    const float tau = 1.0f / sqrtf((float)D);
    float *out = y; /* (B,C) */
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)B * H * (pos + 1) * dc))
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        float *qt = thread_scratch + decode_thread_floats(cfg) * attn_thread_id(); /* (dc) q~_h */
        float *cbar = qt + dc;                                                   /* (dc) sum_j p_j c_j */
        float *sc = cbar + dc;                                                   /* (pos + 1) */
        const float *qh = q + (size_t)b * C + h * D, *cb = lat + (size_t)b * max_T * dc;
        for (int r = 0; r < dc; r++) {
            float s = 0.0f;
            for (int d = 0; d < D; d++) s += Wuk[(size_t)r * C + h * D + d] * qh[d];
            qt[r] = s;
        }
        for (int j = 0; j <= pos; j++) {
            float s = 0.0f;
            for (int r = 0; r < dc; r++) s += qt[r] * cb[(size_t)j * dc + r];
            sc[j] = tau * s;
        }
        attn_softmax_row(sc, 0, pos, pos + 1);
        memset(cbar, 0, sizeof(float) * dc);
        for (int j = 0; j <= pos; j++)
            for (int r = 0; r < dc; r++) cbar[r] += sc[j] * cb[(size_t)j * dc + r];
        float *oh = out + (size_t)b * C + h * D;
        for (int d = 0; d < D; d++) {
            float s = 0.0f;
            for (int r = 0; r < dc; r++) s += cbar[r] * Wuv[(size_t)r * C + h * D + d];
            oh[d] = s;
        }
    }
    return AB_OK;
}

const ab_attn_ops ab_cpu_attn_mla = {
    .saved_bytes = mla_saved_bytes,
    .workspace_bytes = mla_workspace_bytes,
    .forward = mla_forward,
    .backward = mla_backward,
    .cache_bytes = mla_cache_bytes,
    .prefill = mla_prefill,
    .decode = mla_decode,
};

/* ---------------------------------------------------------------- definition */

ab_status ab_attn_mla_validate(const ab_attn_config *cfg, int T) {
    AB_TRY(attn_validate_common(cfg, T));
    if (cfg->hp.mla_kv_rank < 1)
        return ab_fail(AB_ERR_USAGE, "--mla-kv-rank %d must be >= 1 (default 4 x head size = %d; below n_embd %d "
                       "for a cache smaller than multi-head attention's)", cfg->hp.mla_kv_rank, 4 * cfg->D, cfg->C);
    return AB_OK;
}

int ab_attn_mla_tensors(const ab_attn_config *cfg, ab_attn_tensor out[AB_ATTN_MAX_TENSORS]) {
    const int C = cfg->C, dc = cfg->hp.mla_kv_rank;
    out[W_Q] = (ab_attn_tensor){"attn.q_proj.weight", C, C, INIT_NORMAL, 1};
    out[W_DKV] = (ab_attn_tensor){"attn.kv_down.weight", C, dc, INIT_NORMAL, 1};
    out[W_NORM] = (ab_attn_tensor){"attn.kv_norm.weight", 1, dc, INIT_ONE, 0};
    out[W_UK] = (ab_attn_tensor){"attn.k_up.weight", dc, C, INIT_NORMAL, 1};
    out[W_UV] = (ab_attn_tensor){"attn.v_up.weight", dc, C, INIT_NORMAL, 1};
    return 5;
}

void ab_attn_mla_flops(const ab_attn_config *cfg, int B, int T, ab_attn_flops *f) {
    const double C = cfg->C, dc = cfg->hp.mla_kv_rank;
    attn_flops_tiled(f, B, T, cfg->H, cfg->D, ATTN_CAUSAL, C * C + C * dc + 2 * dc * C);
    f->other_ops_fwd += (double)B * T * dc; /* RMSNorm */
}

double ab_attn_mla_cache_elems(const ab_attn_config *cfg, int T) { return cfg->hp.mla_kv_rank; }
