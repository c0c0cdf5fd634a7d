/*
 * lsh.c — strictly causal LSH attention (Reformer, Kitaev et al., 2020; VARIANTS.md 6), CPU reference.
 *
 * Shared QK: c_attn (C, 2C) gives qk and v per head. Keys are the unit vectors k^_j = qk_j / n_j with
 * n_j = sqrt(|qk_j|^2 + 1e-12); queries stay unnormalised; logits qk_i . k^_j, no tau. Per round r
 * (n_h rounds): bucket b_i = argmax([u R ; -u R]) of u = k^_i with the fixed rotation R_{h,r} (D, n_b/2)
 * from attn.lsh_rotations (first maximum wins ties). A stable counting sort by (bucket, position) puts
 * each bucket's tokens in a contiguous segment, in position order, so a query's candidates (the most
 * recent W_l = 2*Lc same-bucket tokens, itself included) are the W_l sorted entries ending at it inside
 * its segment: a band attention in sorted space, run on the shared tiled core with
 * lo(s) = max(seg_start(s), s - W_l + 1) and the self rule (diagonal logit -1e5, no gradient). Key tiles
 * are skipped by the W_l band only, so the work does not depend on the data. Rounds combine by their
 * log-sum-exp: o = sum_r softmax_r(lse_r) o_r.
 * Backward: the same buckets (saved) and sort; per round the tiled backward with dlse_r = w_r (dO . (o_r - o)),
 * scattered back to positions; then through the key normalisation into qk. No gradient through argmax.
 * Decode: the cache keeps k^, v and the n_h bucket ids of every token; a new token is hashed and attends,
 * per round, to the last W_l same-bucket entries (a backwards scan over the cached bucket ids).
 * saved: qkv (B,T,2C) | buckets (B,H,n_h,T) int32 | O_r (B,H,n_h,T,D) | lse_r (B,H,n_h,T).
 */
#include <string.h>

#include "attn/attn_variants.h"

#define LSH_NORM_EPS 1e-12f

static int lsh_window(const ab_attn_config *cfg) { return 2 * cfg->hp.lsh_chunk; }

typedef struct {
    float *qkv;
    int32_t *buckets;
    float *o, *lse;
} lsh_saved;

static lsh_saved saved_layout(const ab_attn_config *cfg, void *saved, int B, int T, size_t *total) {
    const size_t BHR = (size_t)B * cfg->H * cfg->hp.lsh_hashes;
    const size_t n_qkv = attn_align(sizeof(float) * B * T * 2 * cfg->C), n_b = attn_align(sizeof(int32_t) * BHR * T);
    const size_t n_o = attn_align(sizeof(float) * BHR * T * cfg->D), n_l = attn_align(sizeof(float) * BHR * T);
    char *p = saved;
    if (total) *total = n_qkv + n_b + n_o + n_l;
    if (!p) return (lsh_saved){0};
    return (lsh_saved){(float *)p, (int32_t *)(p + n_qkv), (float *)(p + n_qkv + n_b), (float *)(p + n_qkv + n_b + n_o)};
}

static size_t lsh_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    size_t total;
    saved_layout(cfg, NULL, B, T, &total);
    return total;
}

const int32_t *ab_attn_lsh_saved_buckets(const ab_attn_config *cfg, const void *saved, int B, int T, size_t *n) {
    *n = (size_t)B * cfg->H * cfg->hp.lsh_hashes * T;
    return saved_layout(cfg, (void *)saved, B, T, NULL).buckets;
}

/* ---------------------------------------------------------------- hashing, sorting */

/* k^ = qk / n (D); returns n */
static float normalise(const float *qk, float *khat, int D) {
    float ss = LSH_NORM_EPS;
    for (int d = 0; d < D; d++) ss += qk[d] * qk[d];
    const float n = sqrtf(ss), inv = 1.0f / n;
    for (int d = 0; d < D; d++) khat[d] = qk[d] * inv;
    return n;
}

/* argmax of [p ; -p] over the 2*half entries, first maximum */
static int32_t bucket_of(const float *p, int half) {
    int32_t best = 0;
    float bv = p[0];
    for (int i = 1; i < half; i++)
        if (p[i] > bv) bv = p[i], best = i;
    for (int i = 0; i < half; i++)
        if (-p[i] > bv) bv = -p[i], best = half + i;
    return best;
}

/* rotation R_{h,r} (D, n_b/2) inside attn.lsh_rotations */
static const float *rotation(const ab_attn_config *cfg, const float *rot, int h, int r) {
    return rot + (size_t)(h * cfg->hp.lsh_hashes + r) * cfg->D * (cfg->hp.lsh_buckets / 2);
}

/* Stable counting sort of positions by bucket: perm[s] = position at sorted index s, seg[s] = first
 * sorted index of its bucket. start (n_b + 1) is scratch. */
static void sort_by_bucket(const int32_t *bucket, int T, int nb, int *start, int *perm, int *seg) {
    memset(start, 0, sizeof(int) * (nb + 1));
    for (int t = 0; t < T; t++) start[bucket[t] + 1]++;
    for (int b = 0; b < nb; b++) start[b + 1] += start[b];
    for (int t = 0; t < T; t++) {
        const int s = start[bucket[t]]++;
        perm[s] = t;
    }
    for (int s = 0; s < T; s++) seg[s] = s > 0 && bucket[perm[s]] == bucket[perm[s - 1]] ? seg[s - 1] : s;
}

/* ---------------------------------------------------------------- per-thread buffers */

enum { TD_KHAT, TD_QS, TD_KS, TD_VS, TD_OS, TD_DOS, TD_DQS, TD_DKS, TD_DVS, TD_DQK, TD_DKHAT, TD_DV, TD_O, TD_COUNT };

typedef struct {
    float *td[TD_COUNT]; /* (T,D) each */
    float *nrm, *lse_s, *dlse_s; /* (T) */
    float *wts;          /* (n_h,T) round weights */
    float *proj;         /* (T, n_b/2) */
    int *perm, *seg;     /* (T) */
    int *start;          /* (n_b + 1) */
    float *tiled;        /* attn_tiled_scratch_floats(D) */
} lsh_bufs;

static size_t thread_bytes(const ab_attn_config *cfg, int T) {
    const size_t D = cfg->D, nh = cfg->hp.lsh_hashes, half = cfg->hp.lsh_buckets / 2;
    return attn_align(sizeof(float) * (TD_COUNT * T * D + (3 + nh) * T + T * half + attn_tiled_scratch_floats(cfg->D)) +
                      sizeof(int) * (2 * T + cfg->hp.lsh_buckets + 1));
}

static lsh_bufs thread_bufs(const ab_attn_config *cfg, int T, char *base) {
    const size_t D = cfg->D, nh = cfg->hp.lsh_hashes, half = cfg->hp.lsh_buckets / 2;
    lsh_bufs u;
    float *f = (float *)base;
    for (int i = 0; i < TD_COUNT; i++, f += T * D) u.td[i] = f;
    u.nrm = f;
    u.lse_s = f + T;
    u.dlse_s = f + 2 * T;
    u.wts = f + 3 * T;
    u.proj = u.wts + nh * T;
    u.tiled = u.proj + T * half;
    int *ip = (int *)(u.tiled + attn_tiled_scratch_floats(cfg->D));
    u.perm = ip;
    u.seg = ip + T;
    u.start = ip + 2 * T;
    return u;
}

static size_t decode_thread_bytes(const ab_attn_config *cfg) {
    const size_t D = cfg->D, nh = cfg->hp.lsh_hashes, Wl = lsh_window(cfg);
    /* khat (D), proj (n_b/2), scores (W_l), o_r (n_h, D), lse_r and weights (n_h); candidates (W_l) */
    return attn_align(sizeof(float) * (D + cfg->hp.lsh_buckets / 2 + Wl + nh * D + 2 * nh) + sizeof(int) * Wl);
}

static size_t lsh_workspace_bytes(const ab_attn_config *cfg, int B, int T) {
    /* backward: dqkv (B,T,2C) and the per-thread buffers */
    const size_t train = attn_align(sizeof(float) * B * T * 2 * cfg->C) + attn_threads() * thread_bytes(cfg, T);
    const size_t decode = attn_align(sizeof(float) * B * 2 * cfg->C) + attn_threads() * decode_thread_bytes(cfg);
    return train > decode ? train : decode;
}

/* The sorted-space head of one round (Qs, Ks, Vs gathered). */
static attn_head sorted_head(const ab_attn_config *cfg, const lsh_bufs *u, int T) {
    const int D = cfg->D;
    return (attn_head){.T = T, .D = D, .q = u->td[TD_QS], .ldq = D, .k = u->td[TD_KS], .ldk = D, .v = u->td[TD_VS],
                       .ldv = D, .scale = 1.0f, .mask = {.window = lsh_window(cfg), .seg_start = u->seg, .self_logit = 1}};
}

/* Loads khat, norms; hashes round r of head h (bucket ids into `bucket` if hash) and sorts; gathers Qs, Ks, Vs. */
static void prepare_round(const ab_attn_config *cfg, const float *qkv_b, const float *rot, int T, int h, int r,
                          int32_t *bucket, int hash, lsh_bufs *u) {
    const int C = cfg->C, D = cfg->D, half = cfg->hp.lsh_buckets / 2, ld = 2 * C;
    if (hash) {
        attn_gemm(0, 0, T, half, D, 1.0f, u->td[TD_KHAT], D, rotation(cfg, rot, h, r), half, 0.0f, u->proj, half);
        for (int t = 0; t < T; t++) bucket[t] = bucket_of(u->proj + (size_t)t * half, half);
    }
    sort_by_bucket(bucket, T, cfg->hp.lsh_buckets, u->start, u->perm, u->seg);
    for (int s = 0; s < T; s++) {
        const int t = u->perm[s];
        const float *row = qkv_b + (size_t)t * ld + h * D;
        memcpy(u->td[TD_QS] + (size_t)s * D, row, sizeof(float) * D);
        memcpy(u->td[TD_KS] + (size_t)s * D, u->td[TD_KHAT] + (size_t)t * D, sizeof(float) * D);
        memcpy(u->td[TD_VS] + (size_t)s * D, row + C, sizeof(float) * D);
    }
}

static void load_keys(const ab_attn_config *cfg, const float *qkv_b, int T, int h, lsh_bufs *u) {
    const int D = cfg->D, ld = 2 * cfg->C;
    for (int t = 0; t < T; t++)
        u->nrm[t] = normalise(qkv_b + (size_t)t * ld + h * D, u->td[TD_KHAT] + (size_t)t * D, D);
}

/* round weights w_r(t) = softmax_r(lse_r(t)) into u->wts and the combined output o (T,D, ldo) */
static void combine_rounds(int nh, int T, int D, const float *o_r, const float *lse_r, float *wts, float *o, int ldo) {
    for (int t = 0; t < T; t++) {
        float m = -INFINITY, sum = 0.0f;
        for (int r = 0; r < nh; r++) m = lse_r[(size_t)r * T + t] > m ? lse_r[(size_t)r * T + t] : m;
        for (int r = 0; r < nh; r++) sum += wts[(size_t)r * T + t] = expf(lse_r[(size_t)r * T + t] - m);
        float *orow = o + (size_t)t * ldo;
        memset(orow, 0, sizeof(float) * D);
        for (int r = 0; r < nh; r++) {
            const float w = wts[(size_t)r * T + t] /= sum;
            const float *src = o_r + ((size_t)r * T + t) * D;
            for (int d = 0; d < D; d++) orow[d] += w * src[d];
        }
    }
}

/* ---------------------------------------------------------------- forward, backward */

static ab_status lsh_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y, const void *x,
                             int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, D = cfg->D, nh = cfg->hp.lsh_hashes;
    lsh_saved sv = saved_layout(cfg, saved, B, T, NULL);
    char *scratch = (char *)ctx->workspace + attn_align(sizeof(float) * B * T * 2 * C);
    float *out = y; /* (B,T,C) */
    AB_TRY(ctx->be->ops->matmul_forward(ctx->be, sv.qkv, x, w->t[0], w->t[1], B * T, C, 2 * C));
    const int blas_threads = attn_blas_serial_begin();
    const double work = (double)B * H * nh * T * 2 * cfg->hp.lsh_chunk * D;
#pragma omp parallel for schedule(dynamic, 1) if (attn_parallel_worth(work))
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        lsh_bufs u = thread_bufs(cfg, T, scratch + thread_bytes(cfg, T) * attn_thread_id());
        const float *qkv_b = sv.qkv + (size_t)b * T * 2 * C;
        float *o_r = sv.o + (size_t)bh * nh * T * D, *lse_r = sv.lse + (size_t)bh * nh * T;
        load_keys(cfg, qkv_b, T, h, &u);
        for (int r = 0; r < nh; r++) {
            prepare_round(cfg, qkv_b, w->t[2], T, h, r, sv.buckets + ((size_t)bh * nh + r) * T, 1, &u);
            attn_head hd = sorted_head(cfg, &u, T);
            attn_tiled_forward(&hd, u.td[TD_OS], D, u.lse_s, u.tiled);
            for (int s = 0; s < T; s++) {
                const int t = u.perm[s];
                memcpy(o_r + ((size_t)r * T + t) * D, u.td[TD_OS] + (size_t)s * D, sizeof(float) * D);
                lse_r[(size_t)r * T + t] = u.lse_s[s];
            }
        }
        combine_rounds(nh, T, D, o_r, lse_r, u.wts, out + (size_t)b * T * C + h * D, C);
    }
    attn_blas_serial_end(blas_threads);
    return AB_OK;
}

static ab_status lsh_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                              const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, D = cfg->D, nh = cfg->hp.lsh_hashes, ld = 2 * C;
    lsh_saved sv = saved_layout(cfg, (void *)saved, B, T, NULL);
    const float *dout = dy;       /* (B,T,C) */
    float *dqkv = ctx->workspace; /* (B,T,2C) */
    char *scratch = (char *)ctx->workspace + attn_align(sizeof(float) * B * T * ld);
    const int blas_threads = attn_blas_serial_begin();
    const double work = (double)B * H * nh * T * 2 * cfg->hp.lsh_chunk * D;
#pragma omp parallel for schedule(dynamic, 1) if (attn_parallel_worth(work))
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        lsh_bufs u = thread_bufs(cfg, T, scratch + thread_bytes(cfg, T) * attn_thread_id());
        const float *qkv_b = sv.qkv + (size_t)b * T * ld, *dob = dout + (size_t)b * T * C + h * D;
        const float *o_r = sv.o + (size_t)bh * nh * T * D, *lse_r = sv.lse + (size_t)bh * nh * T;
        float *o = u.td[TD_O], *dqk = u.td[TD_DQK], *dkhat = u.td[TD_DKHAT], *dv = u.td[TD_DV];
        load_keys(cfg, qkv_b, T, h, &u);
        combine_rounds(nh, T, D, o_r, lse_r, u.wts, o, D);
        memset(dqk, 0, sizeof(float) * T * D * 3); /* dqk, dkhat, dv are contiguous */
        for (int r = 0; r < nh; r++) {
            prepare_round(cfg, qkv_b, w->t[2], T, h, r, sv.buckets + ((size_t)bh * nh + r) * T, 0, &u);
            for (int s = 0; s < T; s++) { /* sorted O_r, lse_r, dO_r = w dO, dlse_r = w dO . (o_r - o) */
                const int t = u.perm[s];
                const float wt = u.wts[(size_t)r * T + t], *src = o_r + ((size_t)r * T + t) * D;
                const float *dot_ = dob + (size_t)t * C, *ot = o + (size_t)t * D;
                float acc = 0.0f;
                for (int d = 0; d < D; d++) {
                    u.td[TD_OS][(size_t)s * D + d] = src[d];
                    u.td[TD_DOS][(size_t)s * D + d] = wt * dot_[d];
                    acc += dot_[d] * (src[d] - ot[d]);
                }
                u.lse_s[s] = lse_r[(size_t)r * T + t];
                u.dlse_s[s] = wt * acc;
            }
            memset(u.td[TD_DQS], 0, sizeof(float) * T * D * 3); /* dQs, dKs, dVs are contiguous */
            attn_head hd = sorted_head(cfg, &u, T);
            attn_tiled_backward(&hd, u.td[TD_OS], D, u.lse_s, u.td[TD_DOS], D, u.dlse_s, u.td[TD_DQS], D,
                                u.td[TD_DKS], D, u.td[TD_DVS], D, u.tiled);
            for (int s = 0; s < T; s++) {
                const size_t t = (size_t)u.perm[s] * D, si = (size_t)s * D;
                for (int d = 0; d < D; d++) {
                    dqk[t + d] += u.td[TD_DQS][si + d];
                    dkhat[t + d] += u.td[TD_DKS][si + d];
                    dv[t + d] += u.td[TD_DVS][si + d];
                }
            }
        }
        for (int t = 0; t < T; t++) { /* through k^ = qk / n, into dqkv (columns of head h) */
            const float *kh = u.td[TD_KHAT] + (size_t)t * D, *gk = dkhat + (size_t)t * D;
            float dot = 0.0f;
            for (int d = 0; d < D; d++) dot += kh[d] * gk[d];
            const float inv = 1.0f / u.nrm[t];
            float *dst = dqkv + ((size_t)b * T + t) * ld + h * D;
            for (int d = 0; d < D; d++) {
                dst[d] = dqk[(size_t)t * D + d] + (gk[d] - kh[d] * dot) * inv;
                dst[C + d] = dv[(size_t)t * D + d];
            }
        }
    }
    attn_blas_serial_end(blas_threads);
    return ctx->be->ops->matmul_backward(ctx->be, dx, dw->t[0], dw->t[1], dqkv, x, w->t[0], B * T, C, ld);
}

/* ---------------------------------------------------------------- cache: k^, v (B,max_T,2C) | buckets (B,max_T,H,n_h) */

static size_t kv_bytes(const ab_attn_config *cfg, int B, int max_T) {
    return attn_align(sizeof(float) * (size_t)B * max_T * 2 * cfg->C);
}

static size_t lsh_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    return kv_bytes(cfg, B, max_T) + sizeof(int32_t) * (size_t)B * max_T * cfg->H * cfg->hp.lsh_hashes;
}

static ab_status lsh_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                             int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, D = cfg->D, nh = cfg->hp.lsh_hashes, max_T = cfg->max_T;
    if (T <= 0) return AB_OK;
    ab_buffer saved;
    AB_TRY(ab_alloc(ctx->be, &saved, lsh_saved_bytes(cfg, B, T), MEM_ATTENTION));
    ab_status st = lsh_forward(ctx, w, saved.ptr, y, x, B, T);
    if (st == AB_OK) {
        lsh_saved sv = saved_layout(cfg, saved.ptr, B, T, NULL);
        float *kv = cache;
        int32_t *bk = (int32_t *)((char *)cache + kv_bytes(cfg, B, max_T));
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const float *row = sv.qkv + ((size_t)b * T + t) * 2 * C;
                float *dst = kv + ((size_t)b * max_T + t) * 2 * C;
                for (int h = 0; h < H; h++) {
                    normalise(row + h * D, dst + h * D, D);
                    for (int r = 0; r < nh; r++)
                        bk[(((size_t)b * max_T + t) * H + h) * nh + r] = sv.buckets[(((size_t)b * H + h) * nh + r) * T + t];
                }
                memcpy(dst + C, row + C, sizeof(float) * C);
            }
    }
    ab_free(ctx->be, &saved);
    return st;
}

static ab_status lsh_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                            int B, int pos) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, D = cfg->D, nh = cfg->hp.lsh_hashes, max_T = cfg->max_T;
    const int half = cfg->hp.lsh_buckets / 2, Wl = lsh_window(cfg);
    if (pos < 0 || pos >= max_T)
        return ab_fail(AB_ERR_USAGE, "decode position %d outside the context [0, %d)", pos, max_T);
    float *qkv = ctx->workspace; /* (B,2C) */
    char *scratch = (char *)ctx->workspace + attn_align(sizeof(float) * B * 2 * C);
    float *kv = cache;
    int32_t *bk = (int32_t *)((char *)cache + kv_bytes(cfg, B, max_T));
    float *out = y; /* (B,C) */
    AB_TRY(ctx->be->ops->matmul_forward(ctx->be, qkv, x, w->t[0], w->t[1], B, C, 2 * C));
    const int blas_threads = attn_blas_serial_begin();
#pragma omp parallel for schedule(static) if (attn_parallel_worth((double)B * H * nh * Wl * D))
    for (int bh = 0; bh < B * H; bh++) {
        const int b = bh / H, h = bh % H;
        float *khat = (float *)(scratch + decode_thread_bytes(cfg) * attn_thread_id());
        float *proj = khat + D, *sc = proj + half, *o_r = sc + Wl, *lse = o_r + nh * D;
        float *wts = lse + nh;
        int *cand = (int *)(wts + nh);
        const float *qk = qkv + (size_t)b * 2 * C + h * D;
        float *rec = kv + ((size_t)b * max_T + pos) * 2 * C;
        normalise(qk, rec + h * D, D);
        memcpy(rec + C + h * D, qk + C, sizeof(float) * D);
        memcpy(khat, rec + h * D, sizeof(float) * D);
        for (int r = 0; r < nh; r++) {
            attn_gemm(0, 0, 1, half, D, 1.0f, khat, D, rotation(cfg, w->t[2], h, r), half, 0.0f, proj, half);
            const int32_t me = bucket_of(proj, half);
            bk[(((size_t)b * max_T + pos) * H + h) * nh + r] = me;
            int n = 0; /* the last W_l same-bucket positions, newest first */
            for (int j = pos; j >= 0 && n < Wl; j--)
                if (bk[(((size_t)b * max_T + j) * H + h) * nh + r] == me) cand[n++] = j;
            for (int c = 0; c < n; c++) {
                const float *kj = kv + ((size_t)b * max_T + cand[c]) * 2 * C + h * D;
                float dot = 0.0f;
                for (int d = 0; d < D; d++) dot += qk[d] * kj[d];
                sc[c] = cand[c] == pos ? AB_ATTN_SELF_LOGIT : dot;
            }
            lse[r] = attn_softmax_row(sc, 0, n - 1, n);
            float *orr = o_r + (size_t)r * D;
            memset(orr, 0, sizeof(float) * D);
            for (int c = 0; c < n; c++) {
                const float *vj = kv + ((size_t)b * max_T + cand[c]) * 2 * C + C + h * D;
                for (int d = 0; d < D; d++) orr[d] += sc[c] * vj[d];
            }
        }
        combine_rounds(nh, 1, D, o_r, lse, wts, out + (size_t)b * C + h * D, C);
    }
    attn_blas_serial_end(blas_threads);
    return AB_OK;
}

const ab_attn_ops ab_cpu_attn_lsh = {
    .saved_bytes = lsh_saved_bytes,
    .workspace_bytes = lsh_workspace_bytes,
    .forward = lsh_forward,
    .backward = lsh_backward,
    .cache_bytes = lsh_cache_bytes,
    .prefill = lsh_prefill,
    .decode = lsh_decode,
};

/* ---------------------------------------------------------------- definition */

ab_status ab_attn_lsh_validate(const ab_attn_config *cfg, int T) {
    AB_TRY(attn_validate_common(cfg, T));
    const ab_attn_hparams *hp = &cfg->hp;
    if (hp->lsh_hashes < 1 || hp->lsh_hashes > 8)
        return ab_fail(AB_ERR_USAGE, "--lsh-hashes %d must be between 1 and 8 (default 2)", hp->lsh_hashes);
    if (hp->lsh_chunk < 1 || hp->lsh_chunk > T)
        return ab_fail(AB_ERR_USAGE, "--lsh-chunk %d must be between 1 and the sequence length %d (default 64; "
                       "a query attends to at most 2 x chunk same-bucket keys)", hp->lsh_chunk, T);
    if (hp->lsh_buckets < 2 || (hp->lsh_buckets & (hp->lsh_buckets - 1)) != 0)
        return ab_fail(AB_ERR_USAGE, "--lsh-buckets %d must be a power of two >= 2 (default: 2 x T / chunk rounded to "
                       "a power of two, e.g. 16 at T = 512 with chunk 64)", hp->lsh_buckets);
    if (hp->lsh_buckets > 2 * T)
        return ab_fail(AB_ERR_USAGE, "--lsh-buckets %d is more than 2 x the sequence length %d: use at most %d",
                       hp->lsh_buckets, T, 2 * T);
    return AB_OK;
}

int ab_attn_lsh_tensors(const ab_attn_config *cfg, ab_attn_tensor out[AB_ATTN_MAX_TENSORS]) {
    int n = attn_tensors_c_attn(cfg, 2 * cfg->C, out);
    /* R_{h,r} (D, n_b/2) for head h, round r: rows (h * n_h + r) * D .. + D - 1 */
    out[n++] = (ab_attn_tensor){.name = "attn.lsh_rotations", .rows = cfg->H * cfg->hp.lsh_hashes * cfg->D,
                                .cols = cfg->hp.lsh_buckets / 2, .init = INIT_GAUSSIAN_FIXED, .weight_decay = 0};
    return n;
}

void ab_attn_lsh_flops(const ab_attn_config *cfg, int B, int T, ab_attn_flops *f) {
    const double BH = (double)B * cfg->H, D = cfg->D, nh = cfg->hp.lsh_hashes;
    const int Wl = lsh_window(cfg);
    const double proj = attn_mm_flops((double)B * T, 2.0 * cfg->C, cfg->C);
    const double hash = BH * nh * attn_mm_flops(T, cfg->hp.lsh_buckets / 2, D); /* u R per round, no backward */
    /* model: at most W_l candidates per query per round (the bound, reached when buckets are full) */
    const double core = BH * nh * attn_mm_flops(attn_band_pairs(T, Wl), 2 * D, 1);
    const double tiles = BH * nh * attn_tiled_tile_elems(T, Wl); /* sorted space, tiles skipped by W_l */
    f->proj_fwd = proj;
    f->model_fwd = proj + hash + core;
    f->model_bwd = 2 * (proj + core);
    f->hw_fwd = proj + hash + attn_mm_flops(tiles, 2 * D, 1);
    f->hw_bwd = 2 * proj + attn_mm_flops(tiles, 5 * D, 1);
    f->full_tt_fwd = BH * nh * attn_mm_flops((double)T * (Wl < T ? Wl : T), 2 * D, 1);
    f->other_ops_fwd = BH * nh * attn_band_pairs(T, Wl) + (double)B * T * cfg->C; /* exps, key norms */
}

double ab_attn_lsh_cache_elems(const ab_attn_config *cfg, int T) {
    return 2.0 * cfg->C + (double)cfg->H * cfg->hp.lsh_hashes;
}

