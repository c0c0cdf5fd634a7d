/*
 * attn_cpu_common.h — what the CPU implementations of the attention variants share.
 *
 *  - attn_gemm: the one per-head matrix product (ab_cpu_sgemm, i.e. OpenBLAS), counting the multiply-adds
 *    it executes so the FLOPs tests can compare the analytical "hardware" formulas with what really ran.
 *  - The mask of a query row: keys j in [lo(i), i] with lo(i) = max(i - window + 1, seg_start(i)) — causal
 *    (window >= T), band (sliding_window), bucket segment in sorted space (lsh); optionally the diagonal
 *    logit replaced by a constant (lsh's self rule).
 *  - Row softmax forward/backward over such a row (baseline, sdpa).
 *  - The tiled FlashAttention-2 core (online softmax, saves O and L = m + log l, recomputes P in
 *    backward) that flash, gqa, sliding_window, mla and lsh run on, and its tile enumeration, which the
 *    hardware FLOPs formulas use.
 *  - The standard multi-head forward/backward/decode on that core with G key/value heads and a window
 *    (flash = G=H, window=T; gqa; sliding_window), and the K/V cache (full or rolling) of every
 *    softmax-attention variant that caches keys and values.
 *  - Per-thread scratch carving: OpenMP runs over (batch, head) and each thread owns a slice of the
 *    workspace, so workspace_bytes() depends on the thread count (attn_threads()).
 */
#ifndef AB_ATTN_CPU_COMMON_H
#define AB_ATTN_CPU_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "attn/variant.h"

/* Query and key block of the tiled core (rows x cols of one score tile). */
#define ATTN_TILE 64

/* ---------------------------------------------------------------- threads, scratch, products */

int attn_threads(void);
int attn_thread_id(void);
/* An OpenMP region pays for its fork/join above ~64K operations: every region over heads carries
 * `if (attn_parallel_worth(work))`, so decode steps and tiny shapes run on the calling thread (and do not
 * stall on busy cores). */
static inline int attn_parallel_worth(double work) { return work >= 65536.0; }

/* OpenBLAS (pthreads build) must not start its own threads under our OpenMP regions over heads: it
 * oversubscribes the cores and serialises concurrent calls (3x slower measured). Every region that calls
 * attn_gemm runs between attn_blas_serial_begin() and attn_blas_serial_end(previous); the projections
 * outside them keep the backend's threaded GEMM. */
int attn_blas_serial_begin(void);
void attn_blas_serial_end(int previous);

/* C (M,N) = alpha * op(A) op(B) + beta * C (row-major, BLAS leading dimensions); counts M*N*K MACs. */
void attn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);
/* Multiply-adds executed by attn_gemm since the last reset (all threads). */
uint64_t attn_mac_count(void);
void attn_mac_count_reset(void);

/* Bytes rounded up to a multiple of 64 (every sub-buffer carved from a workspace stays aligned). */
static inline size_t attn_align(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* ---------------------------------------------------------------- masks */

typedef struct {
    int window;             /* keys i - window + 1 .. i (>= T: plain causal) */
    const int *seg_start;   /* NULL, or per query the first key of its segment (lsh, sorted space) */
    int self_logit;         /* 1: the diagonal logit is AB_ATTN_SELF_LOGIT, a constant without gradient */
} attn_mask;

static inline int attn_mask_lo(const attn_mask *m, int i) {
    int lo = i - m->window + 1;
    if (lo < 0) lo = 0;
    if (m->seg_start && m->seg_start[i] > lo) lo = m->seg_start[i];
    return lo;
}

/* ---------------------------------------------------------------- row softmax (baseline, sdpa, decode) */

/* p[lo..i] = softmax(p[lo..i]) in place, p[j] = 0 elsewhere in [0, n); returns the log-sum-exp. */
float attn_softmax_row(float *p, int lo, int i, int n);
/* dp[j] = scale * p[j] * (dp[j] - sum_k p[k] dp[k]) over [lo, i], 0 elsewhere in [0, n) (in place). */
void attn_softmax_row_backward(float *dp, const float *p, int lo, int i, int n, float scale);

/* ---------------------------------------------------------------- the tiled core */

/* One head of attention: T queries against T keys (row pointers with leading dimensions). */
typedef struct {
    int T, D;               /* rows; head size of q, k and v */
    const float *q; int ldq;
    const float *k; int ldk;
    const float *v; int ldv;
    float scale;            /* logits are scale * q . k (tau, or 1 for lsh) */
    attn_mask mask;
} attn_head;

/* Per-thread scratch of the tiled core, in floats (independent of T: O(tile) memory). */
size_t attn_tiled_scratch_floats(int D);
/* o (T,D, ldo) = softmax(mask(scale Q K^T)) V; lse (T) = m + log l per row (fp32). */
void attn_tiled_forward(const attn_head *h, float *o, int ldo, float *lse, float *scratch);
/* Accumulates dq, dk, dv (T,D, leading dims ldq/ldk/ldv of the head's q/k/v layout given) from do.
 * dlse (T, may be NULL): gradient arriving at lse (lsh's round weights). */
void attn_tiled_backward(const attn_head *h, const float *o, int ldo, const float *lse, const float *dout,
                         int lddo, const float *dlse, float *dq, int lddq, float *dk, int lddk, float *dv,
                         int lddv, float *scratch);
/* Score elements the tiled core computes for one head (the sum of rows x cols over visited tiles). Per
 * element the forward does 2*D multiply-adds (S, P V) and the backward 5*D (S again, dP, dV, dQ, dK).
 * Tiles are skipped only by the window (never by segment), so this depends on T and window alone. */
double attn_tiled_tile_elems(int T, int window);
/* Score elements (i, j) the mask keeps with no segments: sum_i min(i + 1, window). */
double attn_band_pairs(int T, int window);

/* ---------------------------------------------------------------- multi-head attention on the core */

/* Shape of a standard (q | k | v) projection with G key/value heads: qkv (B,T,C + 2*G*D). */
typedef struct {
    int H, G, D, C;
    int window;             /* keys per query including itself (>= T: causal) */
} attn_mha_shape;

static inline int attn_mha_qkv_cols(const attn_mha_shape *s) { return s->C + 2 * s->G * s->D; }

/* Saved by attn_mha_tiled_forward: qkv (B,T,Wqkv), O (B,T,C), L (B,H,T) f32. */
size_t attn_mha_tiled_saved_bytes(const attn_mha_shape *s, int B, int T);
size_t attn_mha_tiled_workspace_bytes(const attn_mha_shape *s, int B, int T);
ab_status attn_mha_tiled_forward(const ab_attn_ctx *ctx, const attn_mha_shape *s, const ab_attn_weights *w,
                                 void *saved, void *y, const void *x, int B, int T);
ab_status attn_mha_tiled_backward(const ab_attn_ctx *ctx, const attn_mha_shape *s, const ab_attn_weights *w,
                                  const ab_attn_weights *dw, const void *saved, void *dx, const void *dy,
                                  const void *x, int B, int T);
/* The core of attn_mha_tiled over all heads: o (B,T,C) and lse (B,H,T) from q (ldq), k, v (ldk, ldv: the
 * row strides, q head h at column h*D, kv head g = h / (H/G) at column g*D). Shared with mla. */
void attn_mha_core_forward(const attn_mha_shape *s, int B, int T, const float *q, int ldq, const float *k,
                           int ldk, const float *v, int ldv, float *o, float *lse, float *scratch);
void attn_mha_core_backward(const attn_mha_shape *s, int B, int T, const float *q, int ldq, const float *k,
                            int ldk, const float *v, int ldv, const float *o, const float *lse,
                            const float *dout, float *dq, float *dk, float *dv, float *scratch);

/* ---------------------------------------------------------------- K/V cache and decode */

/* Cache of B sequences, cap slots each (cap = max_T, or the window for a rolling buffer); slot
 * pos % cap holds k (G*D) then v (G*D) of position pos. */
size_t attn_kv_cache_bytes(const attn_mha_shape *s, int B, int max_T);
/* Scratch of one decode step: the token's qkv (B, Wqkv) and per-thread scores (cap). */
size_t attn_kv_decode_workspace_bytes(const attn_mha_shape *s, int B, int max_T);
/* Decode of one token per sequence at position pos through the (q|k|v) projection w->t[0], w->t[1]. */
ab_status attn_kv_decode(const ab_attn_ctx *ctx, const attn_mha_shape *s, const ab_attn_weights *w,
                         void *cache, void *y, const void *x, int B, int pos);
/* Prefill through a variant's forward: allocate its saved tensors (MEM_ATTENTION, accounted) for the
 * duration, run forward, fill the cache from the saved qkv (at offset 0 of saved), free. */
typedef ab_status (*attn_forward_fn)(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y,
                                     const void *x, int B, int T);
ab_status attn_kv_prefill(const ab_attn_ctx *ctx, const attn_mha_shape *s, attn_forward_fn forward,
                          size_t saved_bytes, const ab_attn_weights *w, void *cache, void *y, const void *x,
                          int B, int T);

/* ---------------------------------------------------------------- FLOPs helpers */

/* A (M, K) x (K, N) product in FLOPs (2 per multiply-add). */
static inline double attn_mm_flops(double M, double N, double K) { return 2.0 * M * N * K; }

/* Fills model/hardware/full FLOPs of a variant made of input projections of `proj_macs_per_token`
 * multiply-adds per token and a softmax core over heads H with head size D counted by band pairs
 * (model) and tiles (hardware). */
void attn_flops_tiled(ab_attn_flops *f, int B, int T, int H, int D, int window, double proj_macs_per_token);

#endif
