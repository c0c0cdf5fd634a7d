/*
 * linear.c — causal linear attention (Katharopoulos et al., 2020; VARIANTS.md 4), CPU reference.
 *
 * phi(x) = elu(x) + 1. With V' = [V | 1] (D + 1 columns) the numerator and the denominator are one
 * product: out'_i = sum_{j<=i} (phi(q_i) . phi(k_j)) v'_j, o_i = out'_i[0..D) / (out'_i[D] + eps).
 * Training uses the chunked form (chunk Lc = --linear-chunk): per chunk c with the state S' (D, D+1)
 * BEFORE the chunk,
 *     out'_c = phi(Q_c) S' + (phi(Q_c) phi(K_c)^T (.) M_incl) V'_c,   then S' += phi(K_c)^T V'_c,
 * so a token sees itself (inclusive mask) and never a later token of its chunk. Backward, with
 * dO' = [dO / den | -(dO . o) / den]: a forward sweep over chunks (intra-chunk terms, and dphi(Q) through
 * the state) and a reverse sweep with R = sum over later chunks of phi(q_i) dO'_i^T (dphi(K), dV through
 * the state). Decode is the recurrent form on the cached S' = [S | z] per head: H * (D*D + D) floats.
 * Everything accumulates in fp32; saved: qkv (B,T,3C) and out' (B,H,T,D+1).
 */
#include <string.h>

#include "attn/attn_variants.h"

#define LINEAR_EPS 1e-6f

static inline float phi(float x) { return x > 0.0f ? x + 1.0f : expf(x); }
static inline float dphi(float x) { return x > 0.0f ? 1.0f : expf(x); }

static size_t qkv_bytes(const ab_attn_config *cfg, int B, int T) {
    return attn_align(sizeof(float) * B * T * 3 * cfg->C);
}

static size_t linear_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    return qkv_bytes(cfg, B, T) + attn_align(sizeof(float) * B * cfg->H * T * (cfg->D + 1));
}

static int chunk_len(const ab_attn_config *cfg, int T) { return cfg->hp.linear_chunk < T ? cfg->hp.linear_chunk : T; }

/* per thread: a, b (T,D), V' (T,D+1), A (Lc,Lc), S' (D,D+1); backward adds dO' (T,D+1), da, db, dv (T,D),
 * dA (Lc,Lc), R (D,D+1) */
static size_t thread_floats(const ab_attn_config *cfg, int T) {
    const size_t D = cfg->D, Dv = D + 1, L = chunk_len(cfg, T);
    return attn_align(sizeof(float) * (T * (5 * D + 2 * Dv) + 2 * L * L + 2 * D * Dv)) / sizeof(float);
}

static size_t linear_workspace_bytes(const ab_attn_config *cfg, int B, int T) {
    const size_t train = qkv_bytes(cfg, B, T) + attn_threads() * sizeof(float) * thread_floats(cfg, T);
    const size_t decode = attn_align(sizeof(float) * B * 3 * cfg->C) +
                          attn_threads() * attn_align(sizeof(float) * (3 * cfg->D + 1));
    return train > decode ? train : decode;
}

/* The per-thread buffers of one (batch, head). */
typedef struct {
    float *a, *b;   /* (T,D) phi(q), phi(k) */
    float *vp;      /* (T,D+1) [v | 1] */
    float *A;       /* (Lc,Lc) */
    float *S;       /* (D,D+1) state */
    float *dop;     /* (T,D+1) dO' */
    float *da, *db, *dv; /* (T,D) */
    float *dA;      /* (Lc,Lc) */
    float *R;       /* (D,D+1) reverse state */
} lin_bufs;

static lin_bufs thread_bufs(const ab_attn_config *cfg, int T, float *base) {
    const size_t D = cfg->D, Dv = D + 1, L = chunk_len(cfg, T);
    lin_bufs u;
    u.a = base;
    u.b = u.a + T * D;
    u.vp = u.b + T * D;
    u.A = u.vp + T * Dv;
    u.S = u.A + L * L;
    u.dop = u.S + D * Dv;
    u.da = u.dop + T * Dv;
    u.db = u.da + T * D;
    u.dv = u.db + T * D;
    u.dA = u.dv + T * D;
    u.R = u.dA + L * L;
    return u;
}

/* a = phi(q), b = phi(k), vp = [v | 1] for the T rows of head h of one sequence of qkv (ld 3C) */
static void load_head(const ab_attn_config *cfg, const float *qkv, int T, int h, lin_bufs *u) {
    const int C = cfg->C, D = cfg->D, ld = 3 * C;
    for (int t = 0; t < T; t++) {
        const float *q = qkv + (size_t)t * ld + h * D;
        for (int d = 0; d < D; d++) {
            u->a[(size_t)t * D + d] = phi(q[d]);
            u->b[(size_t)t * D + d] = phi(q[C + d]);
            u->vp[(size_t)t * (D + 1) + d] = q[2 * C + d];
        }
        u->vp[(size_t)t * (D + 1) + D] = 1.0f;
    }
}

/* zero the strict upper triangle of an (L,L) chunk matrix: keep j <= i */
static void mask_incl(float *A, int L) {
    for (int i = 0; i < L; i++) memset(A + (size_t)i * L + i + 1, 0, sizeof(float) * (L - i - 1));
}

/* out' (T,D+1) of one head, chunked; the state after the last chunk is only formed when state_out != NULL */
static void chunked_forward(const lin_bufs *u, int T, int D, int Lc, float *out, float *state_out) {
    const int Dv = D + 1;
    memset(u->S, 0, sizeof(float) * D * Dv);
    for (int c0 = 0; c0 < T; c0 += Lc) {
        const int L = T - c0 < Lc ? T - c0 : Lc, last = c0 + Lc >= T;
        const float *ac = u->a + (size_t)c0 * D, *bc = u->b + (size_t)c0 * D, *vc = u->vp + (size_t)c0 * Dv;
        float *oc = out + (size_t)c0 * Dv;
        if (c0 > 0)
            attn_gemm(0, 0, L, Dv, D, 1.0f, ac, D, u->S, Dv, 0.0f, oc, Dv);
        else
            memset(oc, 0, sizeof(float) * L * Dv);
        attn_gemm(0, 1, L, L, D, 1.0f, ac, D, bc, D, 0.0f, u->A, L);
        mask_incl(u->A, L);
        attn_gemm(0, 0, L, Dv, L, 1.0f, u->A, L, vc, Dv, 1.0f, oc, Dv);
        if (!last || state_out) attn_gemm(1, 0, D, Dv, L, 1.0f, bc, D, vc, Dv, 1.0f, u->S, Dv);
    }
    if (state_out) memcpy(state_out, u->S, sizeof(float) * D * Dv);
}

static ab_status forward_impl(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y, const void *x,
                              int B, int T, float *state_out) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, D = cfg->D, Dv = D + 1;
    float *qkv = saved;                                                 /* (B,T,3C) */
    float *outp = (float *)((char *)saved + qkv_bytes(cfg, B, T));     /* (B,H,T,D+1) */
    float *scratch = (float *)((char *)ctx->workspace + qkv_bytes(cfg, B, T));
    float *out = y;                                                     /* (B,T,C) */
    AB_TRY(ctx->be->ops->matmul_forward(ctx->be, qkv, x, w->t[0], w->t[1], B * T, C, 3 * C));
    const int blas_threads = attn_blas_serial_begin();
#pragma omp parallel for schedule(dynamic, 1) if (attn_parallel_worth((double)B * H * T * cfg->hp.linear_chunk * D))
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        lin_bufs u = thread_bufs(cfg, T, scratch + thread_floats(cfg, T) * attn_thread_id());
        float *ob = outp + (size_t)bh * T * Dv;
        load_head(cfg, qkv + (size_t)b * T * 3 * C, T, h, &u);
        chunked_forward(&u, T, D, cfg->hp.linear_chunk, ob, state_out ? state_out + (size_t)bh * D * Dv : NULL);
        for (int t = 0; t < T; t++) {
            const float inv = 1.0f / (ob[(size_t)t * Dv + D] + LINEAR_EPS);
            for (int d = 0; d < D; d++) out[((size_t)b * T + t) * C + h * D + d] = ob[(size_t)t * Dv + d] * inv;
        }
    }
    attn_blas_serial_end(blas_threads);
    return AB_OK;
}

static ab_status linear_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y,
                                const void *x, int B, int T) {
    return forward_impl(ctx, w, saved, y, x, B, T, NULL);
}

/* da, db, dv (T,D) of one head from dO' (already in u->dop) */
static void chunked_backward(const lin_bufs *u, int T, int D, int Lc) {
    const int Dv = D + 1;
    memset(u->da, 0, sizeof(float) * T * D * 3); /* da, db, dv are contiguous */
    memset(u->S, 0, sizeof(float) * D * Dv);
    for (int c0 = 0; c0 < T; c0 += Lc) { /* forward sweep: intra-chunk terms, dphi(Q) through the state */
        const int L = T - c0 < Lc ? T - c0 : Lc, last = c0 + Lc >= T;
        const float *ac = u->a + (size_t)c0 * D, *bc = u->b + (size_t)c0 * D, *vc = u->vp + (size_t)c0 * Dv;
        const float *gc = u->dop + (size_t)c0 * Dv;
        float *dac = u->da + (size_t)c0 * D, *dbc = u->db + (size_t)c0 * D, *dvc = u->dv + (size_t)c0 * D;
        attn_gemm(0, 1, L, L, Dv, 1.0f, gc, Dv, vc, Dv, 0.0f, u->dA, L);
        mask_incl(u->dA, L);
        attn_gemm(0, 0, L, D, L, 1.0f, u->dA, L, bc, D, 1.0f, dac, D);
        attn_gemm(1, 0, L, D, L, 1.0f, u->dA, L, ac, D, 1.0f, dbc, D);
        attn_gemm(0, 1, L, L, D, 1.0f, ac, D, bc, D, 0.0f, u->A, L);
        mask_incl(u->A, L);
        attn_gemm(1, 0, L, D, L, 1.0f, u->A, L, gc, Dv, 1.0f, dvc, D);
        if (c0 > 0) attn_gemm(0, 1, L, D, Dv, 1.0f, gc, Dv, u->S, Dv, 1.0f, dac, D);
        if (!last) attn_gemm(1, 0, D, Dv, L, 1.0f, bc, D, vc, Dv, 1.0f, u->S, Dv);
    }
    memset(u->R, 0, sizeof(float) * D * Dv);
    const int n_chunks = (T + Lc - 1) / Lc;
    for (int c = n_chunks - 1; c >= 0; c--) { /* reverse sweep: dphi(K), dV through later queries */
        const int c0 = c * Lc, L = T - c0 < Lc ? T - c0 : Lc, last = c == n_chunks - 1;
        const float *ac = u->a + (size_t)c0 * D, *bc = u->b + (size_t)c0 * D, *vc = u->vp + (size_t)c0 * Dv;
        if (!last) {
            attn_gemm(0, 1, L, D, Dv, 1.0f, vc, Dv, u->R, Dv, 1.0f, u->db + (size_t)c0 * D, D);
            attn_gemm(0, 0, L, D, D, 1.0f, bc, D, u->R, Dv, 1.0f, u->dv + (size_t)c0 * D, D);
        }
        if (c0 > 0) attn_gemm(1, 0, D, Dv, L, 1.0f, ac, D, u->dop + (size_t)c0 * Dv, Dv, 1.0f, u->R, Dv);
    }
}

static ab_status linear_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                                 const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, D = cfg->D, Dv = D + 1, ld = 3 * C;
    const float *qkv = saved;                                                       /* (B,T,3C) */
    const float *outp = (const float *)((const char *)saved + qkv_bytes(cfg, B, T)); /* (B,H,T,D+1) */
    const float *dout = dy;                                                         /* (B,T,C) */
    float *dqkv = ctx->workspace;                                                   /* (B,T,3C) */
    float *scratch = (float *)((char *)ctx->workspace + qkv_bytes(cfg, B, T));
    const int blas_threads = attn_blas_serial_begin();
#pragma omp parallel for schedule(dynamic, 1) if (attn_parallel_worth((double)B * H * T * cfg->hp.linear_chunk * D))
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        lin_bufs u = thread_bufs(cfg, T, scratch + thread_floats(cfg, T) * attn_thread_id());
        const float *ob = outp + (size_t)bh * T * Dv, *qb = qkv + (size_t)b * T * ld;
        load_head(cfg, qb, T, h, &u);
        for (int t = 0; t < T; t++) { /* dO' from o = num / den */
            const float *dot_ = dout + ((size_t)b * T + t) * C + h * D, *o = ob + (size_t)t * Dv;
            const float inv = 1.0f / (o[D] + LINEAR_EPS);
            float s = 0.0f;
            for (int d = 0; d < D; d++) {
                u.dop[(size_t)t * Dv + d] = dot_[d] * inv;
                s += dot_[d] * o[d] * inv;
            }
            u.dop[(size_t)t * Dv + D] = -s * inv;
        }
        chunked_backward(&u, T, D, cfg->hp.linear_chunk);
        for (int t = 0; t < T; t++) { /* through phi into dqkv (columns of head h: disjoint per thread) */
            const float *q = qb + (size_t)t * ld + h * D;
            float *dq = dqkv + ((size_t)b * T + t) * ld + h * D;
            for (int d = 0; d < D; d++) {
                dq[d] = u.da[(size_t)t * D + d] * dphi(q[d]);
                dq[C + d] = u.db[(size_t)t * D + d] * dphi(q[C + d]);
                dq[2 * C + d] = u.dv[(size_t)t * D + d];
            }
        }
    }
    attn_blas_serial_end(blas_threads);
    return ctx->be->ops->matmul_backward(ctx->be, dx, dw->t[0], dw->t[1], dqkv, x, w->t[0], B * T, C, ld);
}

static size_t linear_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    return sizeof(float) * (size_t)B * cfg->H * cfg->D * (cfg->D + 1);
}

static ab_status linear_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                                const void *x, int B, int T) {
    if (T <= 0) return AB_OK;
    ab_buffer saved;
    AB_TRY(ab_alloc(ctx->be, &saved, linear_saved_bytes(ctx->cfg, B, T), MEM_ATTENTION));
    ab_status st = forward_impl(ctx, w, saved.ptr, y, x, B, T, cache);
    ab_free(ctx->be, &saved);
    return st;
}

static ab_status linear_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                               int B, int pos) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, D = cfg->D, Dv = D + 1;
    float *qkv = ctx->workspace; /* (B,3C) */
    float *scratch = (float *)((char *)ctx->workspace + attn_align(sizeof(float) * B * 3 * C));
    float *state = cache;        /* (B,H,D,D+1) */
    float *out = y;              /* (B,C) */
    AB_TRY(ctx->be->ops->matmul_forward(ctx->be, qkv, x, w->t[0], w->t[1], B, C, 3 * C));
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)B * H * D * D))
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        float *a = scratch + attn_align(sizeof(float) * (3 * D + 1)) / sizeof(float) * attn_thread_id();
        float *bk = a + D, *o = bk + D; /* (D), (D), (D+1) */
        const float *q = qkv + (size_t)b * 3 * C + h * D, *v = q + 2 * C;
        float *S = state + (size_t)bh * D * Dv;
        for (int d = 0; d < D; d++) {
            a[d] = phi(q[d]);
            bk[d] = phi(q[C + d]);
        }
        for (int i = 0; i < D; i++) { /* S' += phi(k) [v | 1]^T: inclusive, the token sees itself */
            for (int e = 0; e < D; e++) S[(size_t)i * Dv + e] += bk[i] * v[e];
            S[(size_t)i * Dv + D] += bk[i];
        }
        for (int e = 0; e < Dv; e++) {
            float s = 0.0f;
            for (int i = 0; i < D; i++) s += a[i] * S[(size_t)i * Dv + e];
            o[e] = s;
        }
        const float inv = 1.0f / (o[D] + LINEAR_EPS);
        for (int d = 0; d < D; d++) out[(size_t)b * C + h * D + d] = o[d] * inv;
    }
    return AB_OK;
}

const ab_attn_ops ab_cpu_attn_linear = {
    .saved_bytes = linear_saved_bytes,
    .workspace_bytes = linear_workspace_bytes,
    .forward = linear_forward,
    .backward = linear_backward,
    .cache_bytes = linear_cache_bytes,
    .prefill = linear_prefill,
    .decode = linear_decode,
};

/* ---------------------------------------------------------------- definition */

ab_status ab_attn_linear_validate(const ab_attn_config *cfg, int T) {
    AB_TRY(attn_validate_common(cfg, T));
    if (cfg->hp.linear_chunk < 1)
        return ab_fail(AB_ERR_USAGE, "--linear-chunk %d must be >= 1 (default 64; any length works, the last chunk "
                       "may be shorter)", cfg->hp.linear_chunk);
    return AB_OK;
}

int ab_attn_linear_tensors(const ab_attn_config *cfg, ab_attn_tensor out[AB_ATTN_MAX_TENSORS]) {
    return attn_tensors_c_attn(cfg, 3 * cfg->C, out);
}

/* Multiply-adds per (batch, head) of the chunked form, forward: model (lower triangles incl. diagonal)
 * and hardware (full chunk products), each with the inter-chunk products phi(Q_c) S' (chunks after the
 * first) and state updates S' += phi(K_c)^T V'_c (chunks before the last); V' = [V | 1] has D + 1 columns
 * (numerator and denominator together). Backward hardware: see linear_backward. */
static void linear_macs(const ab_attn_config *cfg, int T, double *model_fwd, double *hw_fwd, double *hw_bwd) {
    const double D = cfg->D, Dv = D + 1;
    const int Lc = cfg->hp.linear_chunk;
    *model_fwd = *hw_fwd = *hw_bwd = 0;
    for (int c0 = 0; c0 < T; c0 += Lc) {
        const double L = T - c0 < Lc ? T - c0 : Lc;
        const int first = c0 == 0, last = c0 + Lc >= T;
        const double inter = first ? 0 : L * Dv * D, state = last ? 0 : L * D * Dv;
        *model_fwd += L * (L + 1) / 2 * (D + Dv) + inter + state;
        *hw_fwd += L * L * (D + Dv) + inter + state;
        /* dA, da, db, A again, dV intra; da inter, state; db, dV inter; R */
        *hw_bwd += L * L * (Dv + 4 * D) + inter + state + (last ? 0 : L * D * Dv + L * D * D) +
                   (first ? 0 : L * D * Dv);
    }
}

void ab_attn_linear_flops(const ab_attn_config *cfg, int B, int T, ab_attn_flops *f) {
    const double BH = (double)B * cfg->H, proj = attn_mm_flops((double)B * T, 3.0 * cfg->C, cfg->C);
    double model, hw_f, hw_b;
    linear_macs(cfg, T, &model, &hw_f, &hw_b);
    f->proj_fwd = proj;
    f->model_fwd = proj + 2 * BH * model;
    f->model_bwd = 2 * f->model_fwd;
    f->hw_fwd = proj + 2 * BH * hw_f;
    f->hw_bwd = 2 * proj + 2 * BH * hw_b;
    f->full_tt_fwd = BH * attn_mm_flops((double)T * T, 2.0 * cfg->D + 1, 1); /* quadratic form, T x T */
    f->other_ops_fwd = 3.0 * B * T * cfg->C; /* elu on q and k, the division */
}

double ab_attn_linear_cache_elems(const ab_attn_config *cfg, int T) {
    return (double)cfg->H * ((double)cfg->D * cfg->D + cfg->D) / T;
}
