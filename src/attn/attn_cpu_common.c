/*
 * attn_cpu_common.c — shared CPU attention machinery: counted per-head GEMM, row softmax, the tiled
 * (FlashAttention-2 style) core, multi-head attention with G key/value heads and a window on that core,
 * and the K/V cache used by every softmax variant that caches keys and values. See attn_cpu_common.h.
 */
#include "attn/attn_cpu_common.h"

#include <float.h>
#include <string.h>

#include "backend/cpu/cpu_gemm.h"

#if HAVE_OPENMP
#include <omp.h>
#endif
#if HAVE_OPENBLAS
#include <cblas.h>
#endif

/* ---------------------------------------------------------------- threads, products */

int attn_threads(void) {
#if HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int attn_thread_id(void) {
#if HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int attn_blas_serial_begin(void) {
#if HAVE_OPENBLAS
    const int previous = openblas_get_num_threads();
    if (previous != 1) openblas_set_num_threads(1);
    return previous;
#else
    return 1;
#endif
}

void attn_blas_serial_end(int previous) {
#if HAVE_OPENBLAS
    if (previous != 1) openblas_set_num_threads(previous);
#else
    (void)previous;
#endif
}

static uint64_t attn_macs;

void attn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    uint64_t macs = (uint64_t)M * (uint64_t)N * (uint64_t)K;
#pragma omp atomic
    attn_macs += macs;
    ab_cpu_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

uint64_t attn_mac_count(void) {
    uint64_t v;
#pragma omp atomic read
    v = attn_macs;
    return v;
}

void attn_mac_count_reset(void) {
#pragma omp atomic write
    attn_macs = 0;
}

/* ---------------------------------------------------------------- row softmax */

float attn_softmax_row(float *p, int lo, int i, int n) {
    float mx = -INFINITY;
    for (int j = lo; j <= i; j++) mx = p[j] > mx ? p[j] : mx;
    float sum = 0.0f;
    for (int j = lo; j <= i; j++) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < lo; j++) p[j] = 0.0f;
    for (int j = lo; j <= i; j++) p[j] *= inv;
    for (int j = i + 1; j < n; j++) p[j] = 0.0f;
    return mx + logf(sum);
}

void attn_softmax_row_backward(float *dp, const float *p, int lo, int i, int n, float scale) {
    float dot = 0.0f;
    for (int j = lo; j <= i; j++) dot += p[j] * dp[j];
    for (int j = 0; j < lo; j++) dp[j] = 0.0f;
    for (int j = lo; j <= i; j++) dp[j] = scale * p[j] * (dp[j] - dot);
    for (int j = i + 1; j < n; j++) dp[j] = 0.0f;
}

/* ---------------------------------------------------------------- the tiled core */

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* First key of the first tile a query block starting at i0 visits (tiles skipped by the window only). */
static inline int tile_first_key(int i0, int window) {
    int lo = imax(0, i0 - window + 1);
    return (lo / ATTN_TILE) * ATTN_TILE;
}

size_t attn_tiled_scratch_floats(int D) {
    /* S/P tile, dP tile, output accumulator, m, l, Di */
    return 2 * ATTN_TILE * ATTN_TILE + (size_t)ATTN_TILE * D + 3 * ATTN_TILE;
}

double attn_tiled_tile_elems(int T, int window) {
    double n = 0;
    for (int i0 = 0; i0 < T; i0 += ATTN_TILE) {
        int i1 = imin(T, i0 + ATTN_TILE);
        for (int j0 = tile_first_key(i0, window); j0 < i1; j0 += ATTN_TILE)
            n += (double)(i1 - i0) * imin(ATTN_TILE, T - j0);
    }
    return n;
}

double attn_band_pairs(int T, int window) {
    double n = 0;
    for (int i = 0; i < T; i++) n += imin(i + 1, window);
    return n;
}

/* In a score tile s (rows x cols, starting at query i0, key j0) apply the mask and the self rule to row r:
 * returns the kept key range [*jlo, *jhi] in tile columns (empty when *jlo > *jhi). */
static inline void tile_row_range(const attn_head *h, float *srow, int i, int j0, int cols, int *jlo, int *jhi) {
    int lo = attn_mask_lo(&h->mask, i);
    *jlo = imax(lo, j0) - j0;
    *jhi = imin(i, j0 + cols - 1) - j0;
    if (h->mask.self_logit && i >= j0 && i < j0 + cols) srow[i - j0] = AB_ATTN_SELF_LOGIT;
}

void attn_tiled_forward(const attn_head *h, float *o, int ldo, float *lse, float *scratch) {
    const int T = h->T, D = h->D;
    float *S = scratch;                                  /* (TILE, TILE) scores, then probabilities */
    float *acc = S + 2 * ATTN_TILE * ATTN_TILE;          /* (TILE, D) unnormalised output */
    float *m = acc + (size_t)ATTN_TILE * D;              /* (TILE) running max */
    float *l = m + ATTN_TILE;                            /* (TILE) running sum */
    for (int i0 = 0; i0 < T; i0 += ATTN_TILE) {
        const int rows = imin(ATTN_TILE, T - i0), i1 = i0 + rows;
        for (int r = 0; r < rows; r++) {
            m[r] = -INFINITY;
            l[r] = 0.0f;
        }
        memset(acc, 0, sizeof(float) * rows * D);
        for (int j0 = tile_first_key(i0, h->mask.window); j0 < i1; j0 += ATTN_TILE) {
            const int cols = imin(ATTN_TILE, T - j0);
            attn_gemm(0, 1, rows, cols, D, h->scale, h->q + (size_t)i0 * h->ldq, h->ldq, h->k + (size_t)j0 * h->ldk,
                      h->ldk, 0.0f, S, cols);
            for (int r = 0; r < rows; r++) {
                float *srow = S + (size_t)r * cols;
                int jlo, jhi;
                tile_row_range(h, srow, i0 + r, j0, cols, &jlo, &jhi);
                if (jlo > jhi) {
                    memset(srow, 0, sizeof(float) * cols);
                    continue;
                }
                float mx = m[r];
                for (int c = jlo; c <= jhi; c++) mx = srow[c] > mx ? srow[c] : mx;
                const float alpha = expf(m[r] - mx); /* 0 on the first visit (m = -inf) */
                float sum = 0.0f;
                for (int c = 0; c < cols; c++) {
                    float p = (c >= jlo && c <= jhi) ? expf(srow[c] - mx) : 0.0f;
                    srow[c] = p;
                    sum += p;
                }
                l[r] = l[r] * alpha + sum;
                m[r] = mx;
                float *arow = acc + (size_t)r * D;
                for (int d = 0; d < D; d++) arow[d] *= alpha;
            }
            attn_gemm(0, 0, rows, D, cols, 1.0f, S, cols, h->v + (size_t)j0 * h->ldv, h->ldv, 1.0f, acc, D);
        }
        for (int r = 0; r < rows; r++) {
            float *orow = o + (size_t)(i0 + r) * ldo;
            const float *arow = acc + (size_t)r * D;
            if (l[r] > 0.0f) { /* a row with no key at all (never for these masks) stays 0 with lse -inf */
                float inv = 1.0f / l[r];
                for (int d = 0; d < D; d++) orow[d] = arow[d] * inv;
                lse[i0 + r] = m[r] + logf(l[r]);
            } else {
                memset(orow, 0, sizeof(float) * D);
                lse[i0 + r] = -INFINITY;
            }
        }
    }
}

void attn_tiled_backward(const attn_head *h, const float *o, int ldo, const float *lse, const float *dout,
                         int lddo, const float *dlse, float *dq, int lddq, float *dk, int lddk, float *dv,
                         int lddv, float *scratch) {
    const int T = h->T, D = h->D;
    float *P = scratch;                                  /* (TILE, TILE) recomputed probabilities */
    float *dS = P + ATTN_TILE * ATTN_TILE;               /* (TILE, TILE) dP, then dS */
    float *Di = dS + ATTN_TILE * ATTN_TILE + (size_t)ATTN_TILE * D + 2 * ATTN_TILE; /* (TILE) */
    for (int i0 = 0; i0 < T; i0 += ATTN_TILE) {
        const int rows = imin(ATTN_TILE, T - i0), i1 = i0 + rows;
        for (int r = 0; r < rows; r++) {
            const float *dorow = dout + (size_t)(i0 + r) * lddo, *orow = o + (size_t)(i0 + r) * ldo;
            float s = 0.0f;
            for (int d = 0; d < D; d++) s += dorow[d] * orow[d];
            Di[r] = s - (dlse ? dlse[i0 + r] : 0.0f);
        }
        for (int j0 = tile_first_key(i0, h->mask.window); j0 < i1; j0 += ATTN_TILE) {
            const int cols = imin(ATTN_TILE, T - j0);
            attn_gemm(0, 1, rows, cols, D, h->scale, h->q + (size_t)i0 * h->ldq, h->ldq, h->k + (size_t)j0 * h->ldk,
                      h->ldk, 0.0f, P, cols);
            attn_gemm(0, 1, rows, cols, D, 1.0f, dout + (size_t)i0 * lddo, lddo, h->v + (size_t)j0 * h->ldv, h->ldv,
                      0.0f, dS, cols);
            for (int r = 0; r < rows; r++) {
                const int i = i0 + r;
                float *prow = P + (size_t)r * cols, *dsrow = dS + (size_t)r * cols;
                int jlo, jhi;
                tile_row_range(h, prow, i, j0, cols, &jlo, &jhi);
                const float L = lse[i];
                for (int c = 0; c < cols; c++) {
                    float p = (c >= jlo && c <= jhi && L > -INFINITY) ? expf(prow[c] - L) : 0.0f;
                    prow[c] = p;
                    dsrow[c] = p * (dsrow[c] - Di[r]);
                }
                if (h->mask.self_logit && i >= j0 && i < j0 + cols) dsrow[i - j0] = 0.0f; /* constant logit */
            }
            attn_gemm(1, 0, cols, D, rows, 1.0f, P, cols, dout + (size_t)i0 * lddo, lddo, 1.0f, dv + (size_t)j0 * lddv,
                      lddv);
            attn_gemm(0, 0, rows, D, cols, h->scale, dS, cols, h->k + (size_t)j0 * h->ldk, h->ldk, 1.0f,
                      dq + (size_t)i0 * lddq, lddq);
            attn_gemm(1, 0, cols, D, rows, h->scale, dS, cols, h->q + (size_t)i0 * h->ldq, h->ldq, 1.0f,
                      dk + (size_t)j0 * lddk, lddk);
        }
    }
}

/* ---------------------------------------------------------------- multi-head attention on the core */

/* Query head h of sequence b, with its key/value head g = h / (H/G), as one head of the tiled core. */
static attn_head mha_head(const attn_mha_shape *s, int T, int b, int h, const float *q, int ldq, const float *k, int ldk,
                          const float *v, int ldv) {
    const int D = s->D, g = h / (s->H / s->G);
    return (attn_head){.T = T, .D = D, .scale = 1.0f / sqrtf((float)D),
                       .q = q + (size_t)b * T * ldq + h * D, .ldq = ldq,
                       .k = k + (size_t)b * T * ldk + g * D, .ldk = ldk,
                       .v = v + (size_t)b * T * ldv + g * D, .ldv = ldv,
                       .mask = {.window = s->window}};
}

void attn_mha_core_forward(const attn_mha_shape *s, int B, int T, const float *q, int ldq, const float *k,
                           int ldk, const float *v, int ldv, float *o, float *lse, float *scratch) {
    const int H = s->H, G = s->G, D = s->D, C = s->C, per_group = H / G;
    const size_t per_thread = attn_tiled_scratch_floats(D);
    const int blas_threads = attn_blas_serial_begin();
#pragma omp parallel for schedule(dynamic, 1) if (attn_parallel_worth((double)B * H * T * T * D))
    for (int bg = 0; bg < B * G; bg++) {
        const int b = bg / G, g = bg % G;
        float *sc = scratch + per_thread * attn_thread_id();
        for (int h = g * per_group; h < (g + 1) * per_group; h++) {
            attn_head hd = mha_head(s, T, b, h, q, ldq, k, ldk, v, ldv);
            attn_tiled_forward(&hd, o + (size_t)b * T * C + h * D, C, lse + ((size_t)b * H + h) * T, sc);
        }
    }
    attn_blas_serial_end(blas_threads);
}

void attn_mha_core_backward(const attn_mha_shape *s, int B, int T, const float *q, int ldq, const float *k,
                            int ldk, const float *v, int ldv, const float *o, const float *lse,
                            const float *dout, float *dq, float *dk, float *dv, float *scratch) {
    const int H = s->H, G = s->G, D = s->D, C = s->C, per_group = H / G;
    const size_t per_thread = attn_tiled_scratch_floats(D);
    /* one thread per (batch, kv head): the heads of a group accumulate into the same dK, dV */
    const int blas_threads = attn_blas_serial_begin();
#pragma omp parallel for schedule(dynamic, 1) if (attn_parallel_worth((double)B * H * T * T * D))
    for (int bg = 0; bg < B * G; bg++) {
        const int b = bg / G, g = bg % G;
        float *sc = scratch + per_thread * attn_thread_id();
        for (int h = g * per_group; h < (g + 1) * per_group; h++) {
            attn_head hd = mha_head(s, T, b, h, q, ldq, k, ldk, v, ldv);
            const size_t ob = (size_t)b * T * C + h * D;
            attn_tiled_backward(&hd, o + ob, C, lse + ((size_t)b * H + h) * T, dout + ob, C, NULL,
                                dq + (size_t)b * T * ldq + h * D, ldq, dk + (size_t)b * T * ldk + g * D, ldk,
                                dv + (size_t)b * T * ldv + g * D, ldv, sc);
        }
    }
    attn_blas_serial_end(blas_threads);
}

/* saved: qkv (B,T,Wqkv) | O (B,T,C) | L (B,H,T) */
typedef struct {
    float *qkv, *o, *lse;
} mha_saved;

static mha_saved mha_saved_layout(const attn_mha_shape *s, void *saved, int B, int T, size_t *total) {
    size_t n_qkv = attn_align(sizeof(float) * B * T * attn_mha_qkv_cols(s));
    size_t n_o = attn_align(sizeof(float) * B * T * s->C);
    size_t n_l = attn_align(sizeof(float) * B * s->H * T);
    char *p = saved;
    if (total) *total = n_qkv + n_o + n_l;
    return (mha_saved){.qkv = (float *)p, .o = (float *)(p ? p + n_qkv : NULL),
                       .lse = (float *)(p ? p + n_qkv + n_o : NULL)};
}

size_t attn_mha_tiled_saved_bytes(const attn_mha_shape *s, int B, int T) {
    size_t total;
    mha_saved_layout(s, NULL, B, T, &total);
    return total;
}

size_t attn_mha_tiled_workspace_bytes(const attn_mha_shape *s, int B, int T) {
    return attn_align(sizeof(float) * B * T * attn_mha_qkv_cols(s)) +
           (size_t)attn_threads() * attn_align(sizeof(float) * attn_tiled_scratch_floats(s->D));
}

ab_status attn_mha_tiled_forward(const ab_attn_ctx *ctx, const attn_mha_shape *s, const ab_attn_weights *w,
                                 void *saved, void *y, const void *x, int B, int T) {
    const int Wq = attn_mha_qkv_cols(s);
    mha_saved sv = mha_saved_layout(s, saved, B, T, NULL);
    AB_TRY(ctx->be->ops->matmul_forward(ctx->be, sv.qkv, x, w->t[0], w->t[1], B * T, s->C, Wq));
    float *scratch = (float *)((char *)ctx->workspace + attn_align(sizeof(float) * B * T * Wq));
    attn_mha_core_forward(s, B, T, sv.qkv, Wq, sv.qkv + s->C, Wq, sv.qkv + s->C + s->G * s->D, Wq, sv.o, sv.lse,
                          scratch);
    memcpy(y, sv.o, sizeof(float) * B * T * s->C);
    return AB_OK;
}

ab_status attn_mha_tiled_backward(const ab_attn_ctx *ctx, const attn_mha_shape *s, const ab_attn_weights *w,
                                  const ab_attn_weights *dw, const void *saved, void *dx, const void *dy,
                                  const void *x, int B, int T) {
    const int Wq = attn_mha_qkv_cols(s), GD = s->G * s->D;
    mha_saved sv = mha_saved_layout(s, (void *)saved, B, T, NULL);
    float *dqkv = ctx->workspace; /* (B,T,Wqkv) */
    float *scratch = (float *)((char *)ctx->workspace + attn_align(sizeof(float) * B * T * Wq));
    memset(dqkv, 0, sizeof(float) * B * T * Wq);
    attn_mha_core_backward(s, B, T, sv.qkv, Wq, sv.qkv + s->C, Wq, sv.qkv + s->C + GD, Wq, sv.o, sv.lse, dy, dqkv,
                           dqkv + s->C, dqkv + s->C + GD, scratch);
    return ctx->be->ops->matmul_backward(ctx->be, dx, dw->t[0], dw->t[1], dqkv, x, w->t[0], B * T, s->C, Wq);
}

/* ---------------------------------------------------------------- K/V cache and decode */

/* slots per sequence: the whole context, or the window for a rolling buffer */
static int attn_kv_cap(const attn_mha_shape *s, int max_T) { return imin(s->window, max_T); }

size_t attn_kv_cache_bytes(const attn_mha_shape *s, int B, int max_T) {
    return sizeof(float) * (size_t)B * attn_kv_cap(s, max_T) * 2 * s->G * s->D;
}

size_t attn_kv_decode_workspace_bytes(const attn_mha_shape *s, int B, int max_T) {
    return attn_align(sizeof(float) * B * attn_mha_qkv_cols(s)) +
           (size_t)attn_threads() * attn_align(sizeof(float) * attn_kv_cap(s, max_T));
}

/* Copies positions [0, T) of qkv (B,T,Wqkv) into the cache (the last cap of them when rolling). */
static void attn_kv_fill(const attn_mha_shape *s, float *cache, int cap, const float *qkv, int B, int T) {
    const int Wq = attn_mha_qkv_cols(s), KV = 2 * s->G * s->D;
    for (int b = 0; b < B; b++)
        for (int pos = imax(0, T - cap); pos < T; pos++)
            memcpy(cache + ((size_t)b * cap + pos % cap) * KV, qkv + ((size_t)b * T + pos) * Wq + s->C,
                   sizeof(float) * KV);
}

ab_status attn_kv_decode(const ab_attn_ctx *ctx, const attn_mha_shape *s, const ab_attn_weights *w,
                         void *cache, void *y, const void *x, int B, int pos) {
    const int H = s->H, G = s->G, D = s->D, C = s->C, Wq = attn_mha_qkv_cols(s), KV = 2 * G * D;
    const int cap = attn_kv_cap(s, ctx->cfg->max_T);
    if (pos < 0 || pos >= ctx->cfg->max_T)
        return ab_fail(AB_ERR_USAGE, "decode position %d outside the context [0, %d)", pos, ctx->cfg->max_T);
    float *qkv = ctx->workspace; /* (B, Wqkv) */
    float *scores = (float *)((char *)ctx->workspace + attn_align(sizeof(float) * B * Wq));
    float *kvc = cache;          /* (B, cap, 2*G*D) */
    AB_TRY(ctx->be->ops->matmul_forward(ctx->be, qkv, x, w->t[0], w->t[1], B, C, Wq));
    for (int b = 0; b < B; b++)
        memcpy(kvc + ((size_t)b * cap + pos % cap) * KV, qkv + (size_t)b * Wq + C, sizeof(float) * KV);
    const int lo = imax(0, pos - imin(s->window, cap) + 1), n = pos - lo + 1;
    const float tau = 1.0f / sqrtf((float)D);
    float *out = y; /* (B, C) */
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)B * H * n * D))
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H, g = h / (H / G);
        float *sc = scores + attn_align(sizeof(float) * cap) / sizeof(float) * attn_thread_id();
        const float *qh = qkv + (size_t)b * Wq + h * D;
        for (int j = 0; j < n; j++) {
            const float *kj = kvc + ((size_t)b * cap + (lo + j) % cap) * KV + g * D;
            float dot = 0.0f;
            for (int d = 0; d < D; d++) dot += qh[d] * kj[d];
            sc[j] = tau * dot;
        }
        attn_softmax_row(sc, 0, n - 1, n);
        float *oh = out + (size_t)b * C + h * D;
        memset(oh, 0, sizeof(float) * D);
        for (int j = 0; j < n; j++) {
            const float *vj = kvc + ((size_t)b * cap + (lo + j) % cap) * KV + G * D + g * D;
            for (int d = 0; d < D; d++) oh[d] += sc[j] * vj[d];
        }
    }
    return AB_OK;
}

ab_status attn_kv_prefill(const ab_attn_ctx *ctx, const attn_mha_shape *s, attn_forward_fn forward,
                          size_t saved_bytes, const ab_attn_weights *w, void *cache, void *y, const void *x,
                          int B, int T) {
    if (T <= 0) return AB_OK;
    ab_buffer saved;
    AB_TRY(ab_alloc(ctx->be, &saved, saved_bytes, MEM_ATTENTION));
    ab_status st = forward(ctx, w, saved.ptr, y, x, B, T);
    if (st == AB_OK) attn_kv_fill(s, cache, attn_kv_cap(s, ctx->cfg->max_T), saved.ptr, B, T);
    ab_free(ctx->be, &saved);
    return st;
}

/* ---------------------------------------------------------------- FLOPs helpers */

void attn_flops_tiled(ab_attn_flops *f, int B, int T, int H, int D, int window, double proj_macs_per_token) {
    const double BH = (double)B * H, pairs = attn_band_pairs(T, window), tiles = attn_tiled_tile_elems(T, window);
    const double proj = 2.0 * B * T * proj_macs_per_token;
    f->proj_fwd = proj;
    f->model_fwd = proj + BH * attn_mm_flops(pairs, 2 * D, 1);
    f->model_bwd = 2.0 * f->model_fwd;
    f->hw_fwd = proj + BH * attn_mm_flops(tiles, 2 * D, 1);
    f->hw_bwd = 2.0 * proj + BH * attn_mm_flops(tiles, 5 * D, 1);
    f->full_tt_fwd = BH * attn_mm_flops((double)T * T, 2 * D, 1);
    f->other_ops_fwd = BH * pairs; /* one exp per kept score */
}
