/*
 * attn_linear.cu — causal linear attention (VARIANTS.md 4) on CUDA: the same tensors and the same function
 * as the CPU reference src/attn/linear.c. attn.c_attn.weight (C, 3C), attn.c_attn.bias (3C); phi(x) = elu(x)+1;
 * with V' = [V | 1] (D + 1 columns) numerator and denominator are one product, out'_i = sum_{j<=i}
 * (phi(q_i) . phi(k_j)) v'_j, o_i = out'_i[0..D) / (out'_i[D] + eps), eps = 1e-6, no tau.
 *
 * Chunked form (chunk Lc = --linear-chunk <= 64, one 64-row tile per chunk), per (batch, head):
 *     S'_c  = sum over chunks before c of phi(K_c')^T V'_c'    (D, D+1) fp32: [S | z], the state BEFORE chunk c
 *     out'_c = phi(Q_c) S'_c + (phi(Q_c) phi(K_c)^T (.) M_incl) V'_c
 * computed in three launches, all chunks in parallel: per-chunk increments phi(K_c)^T V'_c (chunk_state), an
 * exclusive fp32 prefix over the chunks (scan; its total is the state after the last token, which prefill
 * leaves in the cache), and the chunk outputs (chunk_forward). Backward, with dO' = [dO / den | -(dO . o) / den]
 * (dout_prime): the forward states again, the reverse states R_c = sum over later chunks of phi(Q)^T dO' (the
 * same two launches on phi(Q) and dO', scanned backwards), then per chunk (chunk_backward)
 *     dphi(Q) = (dO' V'^T (.) M) phi(K) + dO' S'^T
 *     dphi(K) = (dO' V'^T (.) M)^T phi(Q) + V' R^T
 *     dV      = (phi(Q) phi(K)^T (.) M)^T dO'[:, :D] + phi(K) R[:, :D]
 * through phi'(x) = 1 for x > 0 else exp(x) into dqkv, then the c_attn backward (cuda_matmul_backward).
 * The chunk products (64 x 64 x 64) run on fp32 CUDA cores from shared memory (each thread a 4 x 4 block of
 * a 64 x 64 tile): q, k, v are bf16 after the projection, everything after that is fp32 like the reference.
 *
 * Decode is the recurrent form on the cached S' = [S | z] per head: S' += phi(k) [v | 1]^T (the token sees
 * itself), o = phi(q)^T S' normalised. Position 0 starts a sequence (the cache's old contents are ignored); the
 * kernel reads the position on the device (cuda_decode_pos).
 * Cache (B, H, D, D+1) fp32 = B * H * (D*D + D) * 4 bytes, constant in T (max_T does not enter): the same
 * layout as the CPU reference.
 * Head size 64 and --linear-chunk <= 64 only; anything else fails with AB_ERR_UNSUPPORTED.
 *
 * saved per layer:  qkv (B,T,3C) bf16 | o (B,T,C) bf16 | rden (B,H,T) fp32 = 1 / (den + eps)
 * workspace:        the largest of: states (B,H,nc,D,D+1) fp32 (forward); dqkv (B,T,3C) bf16 | dO' (B,H,T,D+1)
 *                   fp32 | forward states | reverse states (backward); qkv | states (prefill); the new token's
 *                   qkv (decode). nc = ceil(T / Lc).
 */
#include <math.h>

#include "backend/cuda/cuda_attn.cuh"

#define LIN_D 64                             /* head size */
#define LIN_DV (LIN_D + 1)                   /* [v | 1] columns; also the row stride of every shared tile */
#define LIN_TILE 64                          /* rows of a chunk tile: the largest supported chunk */
#define LIN_TILE_FLOATS (LIN_TILE * LIN_DV)  /* one (64, 65) shared tile */
#define LIN_STATE_FLOATS (LIN_D * LIN_DV)    /* one state S' (D, D+1) */
#define LIN_THREADS 256                      /* 16 x 16 threads, 4 x 4 outputs each */
#define LIN_EPS 1e-6f

__device__ __forceinline__ float lin_phi(float x) { return x > 0.0f ? x + 1.0f : expf(x); }
__device__ __forceinline__ float lin_dphi(float x) { return x > 0.0f ? 1.0f : expf(x); }

/* The chunk of one block: grid (nc, H, B). */
typedef struct {
    int b, h, t0, L;
} lin_chunk;

__device__ __forceinline__ lin_chunk lin_chunk_of_block(int T, int Lc) {
    lin_chunk p;
    p.b = blockIdx.z;
    p.h = blockIdx.y;
    p.t0 = blockIdx.x * Lc;
    p.L = min(Lc, T - p.t0);
    return p;
}

/* acc[i][j] += sum_{k < K} A(r_i, k) B(k, c_j) over shared (64, 65) tiles, r_i = ty + 16 i, c_j = tx + 16 j;
 * A(r, k) = A[k][r] when TA (else A[r][k]), B(k, c) = B[c][k] when TB (else B[k][c]). The odd row stride keeps
 * the transposed reads free of bank conflicts. */
template <bool TA, bool TB>
__device__ __forceinline__ void lin_mm(float acc[4][4], const float *A, const float *Bm, int K) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    for (int k = 0; k < K; k++) {
        float av[4], bv[4];
#pragma unroll
        for (int i = 0; i < 4; i++) av[i] = TA ? A[k * LIN_DV + ty + 16 * i] : A[(ty + 16 * i) * LIN_DV + k];
#pragma unroll
        for (int j = 0; j < 4; j++) bv[j] = TB ? Bm[(tx + 16 * j) * LIN_DV + k] : Bm[k * LIN_DV + tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
}

__device__ __forceinline__ void lin_zero(float acc[4][4]) {
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
}

/* P (64, LIN_DV) = phi(Q) phi(K)^T of a chunk under the inclusive causal mask (column c <= row r, else 0), from
 * a = phi(Q) and bk = phi(K), both (64, LIN_DV) in shared memory. */
__device__ __forceinline__ void lin_masked_scores(float *P, const float *a, const float *bk) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4];
    lin_zero(acc);
    lin_mm<false, true>(acc, a, bk, LIN_D);
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int r = ty + 16 * i, c = tx + 16 * j;
            P[r * LIN_DV + c] = c <= r ? acc[i][j] : 0.0f;
        }
}

/* dst (64, 65) rows r < L = part (0 q, 1 k, 2 v) of head h at positions t0 + r of qkv (B,T,3C), phi applied
 * when `phi`; rows >= L zero (they then add nothing to any product). Column D is left alone. */
__device__ void lin_load_part(float *dst, const bf16 *qkv, const lin_chunk &p, int T, int C, int part, bool phi) {
    for (int i = threadIdx.x; i < LIN_TILE * LIN_D; i += blockDim.x) {
        const int r = i / LIN_D, d = i % LIN_D;
        float v = 0.0f;
        if (r < p.L) {
            v = bf2f(qkv[((size_t)p.b * T + p.t0 + r) * 3 * C + part * C + p.h * LIN_D + d]);
            if (phi) v = lin_phi(v);
        }
        dst[r * LIN_DV + d] = v;
    }
}

/* dst (64, 65) = `rows` rows of src (rows, 65) fp32, zero below */
__device__ void lin_load_rows(float *dst, const float *src, int rows) {
    for (int i = threadIdx.x; i < LIN_TILE_FLOATS; i += blockDim.x) dst[i] = i < rows * LIN_DV ? src[i] : 0.0f;
}

/* One chunk's state increment X^T Y' (D, D+1) into inc (B,H,nc,D,D+1):
 *   forward  (dop == NULL): X = phi(K_c), Y' = [V_c | 1]     (S' increments)
 *   backward:               X = phi(Q_c), Y' = dO'_c          (R increments; dop (B,H,T,D+1)) */
__global__ void __launch_bounds__(LIN_THREADS) lin_chunk_state_kernel(float *inc, const bf16 *qkv, const float *dop,
                                                                      int T, int H, int Lc, int nc) {
    __shared__ float X[LIN_TILE_FLOATS], Y[LIN_TILE_FLOATS];
    const lin_chunk p = lin_chunk_of_block(T, Lc);
    const int C = H * LIN_D, bh = p.b * H + p.h;
    if (dop) {
        lin_load_part(X, qkv, p, T, C, 0, true);
        lin_load_rows(Y, dop + ((size_t)bh * T + p.t0) * LIN_DV, p.L);
    } else {
        lin_load_part(X, qkv, p, T, C, 1, true);
        lin_load_part(Y, qkv, p, T, C, 2, false);
        for (int r = threadIdx.x; r < LIN_TILE; r += blockDim.x) Y[r * LIN_DV + LIN_D] = r < p.L ? 1.0f : 0.0f;
    }
    __syncthreads();
    float *out = inc + ((size_t)bh * nc + blockIdx.x) * LIN_STATE_FLOATS;
    float acc[4][4];
    lin_zero(acc);
    lin_mm<true, false>(acc, X, Y, p.L);
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) out[(ty + 16 * i) * LIN_DV + tx + 16 * j] = acc[i][j];
    if (threadIdx.x < LIN_D) { /* column D */
        const int d = threadIdx.x;
        float s = 0.0f;
        for (int r = 0; r < p.L; r++) s = fmaf(X[r * LIN_DV + d], Y[r * LIN_DV + LIN_D], s);
        out[d * LIN_DV + LIN_D] = s;
    }
}

/* In place over the chunks of each (b, h): inc[c] <- sum of inc[c'] for c' < c (forward) or c' > c (reverse),
 * in fp32; total (B,H,D,D+1), when not NULL, gets the sum of all chunks. One thread per state element. */
__global__ void lin_scan_kernel(float *inc, float *total, int BH, int nc, int reverse) {
    const size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (idx >= (size_t)BH * LIN_STATE_FLOATS) return;
    const size_t bh = idx / LIN_STATE_FLOATS, e = idx % LIN_STATE_FLOATS;
    float run = 0.0f;
    for (int s = 0; s < nc; s++) {
        float *q = inc + (bh * nc + (reverse ? nc - 1 - s : s)) * LIN_STATE_FLOATS + e;
        const float v = *q;
        *q = run;
        run += v;
    }
    if (total) total[idx] = run;
}

/* Outputs of one chunk from the state before it, states (B,H,nc,D,D+1): y (B,T,C) and, when o != NULL, its copy
 * o (B,T,C) and rden (B,H,T) = 1 / (den + eps) for the backward. */
#define LIN_FWD_SMEM (5 * LIN_TILE_FLOATS * sizeof(float) + LIN_TILE * sizeof(float))
__global__ void __launch_bounds__(LIN_THREADS) lin_chunk_forward_kernel(bf16 *y, bf16 *o, float *rden, const bf16 *qkv,
                                                                        const float *states, int T, int H, int Lc,
                                                                        int nc) {
    extern __shared__ float sh[];
    float *a = sh, *bk = a + LIN_TILE_FLOATS, *v = bk + LIN_TILE_FLOATS, *S = v + LIN_TILE_FLOATS;
    float *P = S + LIN_TILE_FLOATS, *rd = P + LIN_TILE_FLOATS; /* rd (64): 1 / (den + eps) per row */
    const lin_chunk p = lin_chunk_of_block(T, Lc);
    const int C = H * LIN_D, bh = p.b * H + p.h, tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    lin_load_part(a, qkv, p, T, C, 0, true);
    lin_load_part(bk, qkv, p, T, C, 1, true);
    lin_load_part(v, qkv, p, T, C, 2, false);
    lin_load_rows(S, states + ((size_t)bh * nc + blockIdx.x) * LIN_STATE_FLOATS, LIN_D);
    __syncthreads();
    lin_masked_scores(P, a, bk); /* A = phi(Q) phi(K)^T, inclusive mask */
    __syncthreads();
    float acc[4][4];
    lin_zero(acc);
    lin_mm<false, false>(acc, a, S, LIN_D); /* phi(Q) S */
    lin_mm<false, false>(acc, P, v, p.L);   /* + A V */
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int r = warp; r < LIN_TILE; r += LIN_THREADS / 32) { /* den = phi(Q) z + rowsum(A) */
        float s = 0.0f;
        for (int k = lane; k < LIN_D; k += 32) s += a[r * LIN_DV + k] * S[k * LIN_DV + LIN_D] + P[r * LIN_DV + k];
        s = warp_sum(s);
        if (lane == 0) rd[r] = 1.0f / (s + LIN_EPS);
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int r = ty + 16 * i;
        if (r >= p.L) continue;
        const size_t row = ((size_t)p.b * T + p.t0 + r) * C + p.h * LIN_D;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const bf16 out = f2bf(acc[i][j] * rd[r]);
            y[row + tx + 16 * j] = out;
            if (o) o[row + tx + 16 * j] = out;
        }
        if (o && tx == 0) rden[(size_t)bh * T + p.t0 + r] = rd[r];
    }
}

/* dO' (B,H,T,D+1) = [dy * rden | -(dy . o) * rden] per row; one warp per (b, h, t) */
__global__ void lin_dout_prime_kernel(float *dop, const bf16 *dy, const bf16 *o, const float *rden, int B, int T,
                                      int H) {
    const size_t row = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; /* (b, h, t) */
    const int lane = threadIdx.x % 32;
    if (row >= (size_t)B * H * T) return;
    const int t = (int)(row % T), h = (int)(row / T % H), b = (int)(row / T / H), C = H * LIN_D;
    const size_t in = ((size_t)b * T + t) * C + h * LIN_D;
    const float r = rden[row];
    float s = 0.0f;
    for (int e = lane; e < LIN_D; e += 32) {
        const float g = bf2f(dy[in + e]);
        s += g * bf2f(o[in + e]);
        dop[row * LIN_DV + e] = g * r;
    }
    s = warp_sum(s);
    if (lane == 0) dop[row * LIN_DV + LIN_D] = -s * r;
}

/* dqkv (B,T,3C) of one chunk: every element of the chunk's rows in head h's q, k and v columns is written.
 * S_states: the forward state before the chunk, R_states: the reverse state after it (both (B,H,nc,D,D+1)). */
#define LIN_BWD_SMEM (6 * LIN_TILE_FLOATS * sizeof(float))
__global__ void __launch_bounds__(LIN_THREADS) lin_chunk_backward_kernel(bf16 *dqkv, const bf16 *qkv, const float *dop,
                                                                         const float *S_states, const float *R_states,
                                                                         int T, int H, int Lc, int nc) {
    extern __shared__ float sh[];
    float *a = sh, *bk = a + LIN_TILE_FLOATS, *v = bk + LIN_TILE_FLOATS, *G = v + LIN_TILE_FLOATS;
    float *P = G + LIN_TILE_FLOATS, *M = P + LIN_TILE_FLOATS; /* G = dO' (64, D+1); M = S', then R */
    const lin_chunk p = lin_chunk_of_block(T, Lc);
    const int C = H * LIN_D, bh = p.b * H + p.h, tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const size_t state = ((size_t)bh * nc + blockIdx.x) * LIN_STATE_FLOATS;
    lin_load_part(a, qkv, p, T, C, 0, true);
    lin_load_part(bk, qkv, p, T, C, 1, true);
    lin_load_part(v, qkv, p, T, C, 2, false);
    lin_load_rows(G, dop + ((size_t)bh * T + p.t0) * LIN_DV, p.L);
    lin_load_rows(M, S_states + state, LIN_D);
    __syncthreads();
    float acc[4][4];
    lin_zero(acc);
    lin_mm<false, true>(acc, G, v, LIN_D); /* dA = dO' V'^T (the ones column adds dO'[:, D]), masked */
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int r = ty + 16 * i, c = tx + 16 * j;
            P[r * LIN_DV + c] = c <= r && c < p.L ? acc[i][j] + G[r * LIN_DV + LIN_D] : 0.0f;
        }
    __syncthreads();
    /* dphi(Q) = dA phi(K) + dO' S'^T -> dq */
    lin_zero(acc);
    lin_mm<false, false>(acc, P, bk, p.L);
    lin_mm<false, true>(acc, G, M, LIN_DV);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int r = ty + 16 * i;
        if (r >= p.L) continue;
        const size_t row = ((size_t)p.b * T + p.t0 + r) * 3 * C + p.h * LIN_D;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const size_t k = row + tx + 16 * j;
            dqkv[k] = f2bf(acc[i][j] * lin_dphi(bf2f(qkv[k])));
        }
    }
    __syncthreads(); /* M (S') read by every thread */
    lin_load_rows(M, R_states + state, LIN_D);
    __syncthreads();
    /* dphi(K) = dA^T phi(Q) + V' R^T -> dk */
    lin_zero(acc);
    lin_mm<true, false>(acc, P, a, p.L);
    lin_mm<false, true>(acc, v, M, LIN_D);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int r = ty + 16 * i;
        if (r >= p.L) continue;
        const size_t row = ((size_t)p.b * T + p.t0 + r) * 3 * C + C + p.h * LIN_D;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int d = tx + 16 * j;
            dqkv[row + d] = f2bf((acc[i][j] + M[d * LIN_DV + LIN_D]) * lin_dphi(bf2f(qkv[row + d])));
        }
    }
    __syncthreads(); /* P (dA) read by every thread */
    lin_masked_scores(P, a, bk); /* A = phi(Q) phi(K)^T, masked */
    __syncthreads();
    /* dV = A^T dO'[:, :D] + phi(K) R[:, :D] -> dv */
    lin_zero(acc);
    lin_mm<true, false>(acc, P, G, p.L);
    lin_mm<false, false>(acc, bk, M, LIN_D);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int r = ty + 16 * i;
        if (r >= p.L) continue;
        const size_t row = ((size_t)p.b * T + p.t0 + r) * 3 * C + 2 * C + p.h * LIN_D;
#pragma unroll
        for (int j = 0; j < 4; j++) dqkv[row + tx + 16 * j] = f2bf(acc[i][j]);
    }
}

/* One token per (b, h) block: S' = (fresh ? 0 : S') + phi(k) [v | 1]^T in the cache (B,H,D,D+1), fresh when the
 * position *pos_dev is 0, then y = (phi(q)^T S')[0..D) / ((phi(q)^T S')[D] + eps); qkv1 (B,3C). Thread e owns
 * column e of S'. */
__global__ void lin_decode_kernel(bf16 *y, float *cache, const bf16 *qkv1, int H, const int32_t *pos_dev) {
    __shared__ float a[LIN_D], kk[LIN_D], vv[LIN_DV], out[LIN_DV];
    pdl_release(); /* the output projection after this may be scheduled early (cuda_common.cuh) */
    pdl_wait();    /* launched dependent: the product before this wrote its input */
    const int bh = blockIdx.x, b = bh / H, h = bh % H, C = H * LIN_D, fresh = *pos_dev == 0;
    const bf16 *q = qkv1 + (size_t)b * 3 * C + h * LIN_D;
    for (int d = threadIdx.x; d < LIN_D; d += blockDim.x) {
        a[d] = lin_phi(bf2f(q[d]));
        kk[d] = lin_phi(bf2f(q[C + d]));
        vv[d] = bf2f(q[2 * C + d]);
    }
    if (threadIdx.x == 0) vv[LIN_D] = 1.0f;
    __syncthreads();
    const int e = threadIdx.x;
    if (e < LIN_DV) {
        float *S = cache + (size_t)bh * LIN_STATE_FLOATS;
        float s = 0.0f;
        for (int d = 0; d < LIN_D; d++) {
            const float u = (fresh ? 0.0f : S[d * LIN_DV + e]) + kk[d] * vv[e];
            S[d * LIN_DV + e] = u;
            s += a[d] * u;
        }
        out[e] = s;
    }
    __syncthreads();
    if (e < LIN_D) y[(size_t)b * C + h * LIN_D + e] = f2bf(out[e] / (out[LIN_D] + LIN_EPS));
}

/* ---------------------------------------------------------------- host side */

static ab_status lin_check(const ab_attn_config *cfg) {
    if (cfg->D != LIN_D)
        return ab_fail(AB_ERR_UNSUPPORTED,
                       "cuda linear: head size %d is not supported (n_embd %d / n_head %d); the chunk kernels are "
                       "built for head size %d only",
                       cfg->D, cfg->C, cfg->H, LIN_D);
    if (cfg->hp.linear_chunk < 1 || cfg->hp.linear_chunk > LIN_TILE)
        return ab_fail(AB_ERR_UNSUPPORTED,
                       "cuda linear: --linear-chunk %d is not supported; the chunk kernels hold one chunk in a "
                       "%d-row tile (1..%d)",
                       cfg->hp.linear_chunk, LIN_TILE, LIN_TILE);
    return AB_OK;
}

static int lin_chunks(const ab_attn_config *cfg, int T) {
    return (T + cfg->hp.linear_chunk - 1) / cfg->hp.linear_chunk;
}

static size_t qkv_bytes(const ab_attn_config *cfg, int B, int T) {
    return align256((size_t)B * T * 3 * cfg->C * sizeof(bf16));
}
static size_t o_bytes(const ab_attn_config *cfg, int B, int T) {
    return align256((size_t)B * T * cfg->C * sizeof(bf16));
}
static size_t rden_bytes(const ab_attn_config *cfg, int B, int T) {
    return align256((size_t)B * cfg->H * T * sizeof(float));
}
static size_t states_bytes(const ab_attn_config *cfg, int B, int T) {
    return align256((size_t)B * cfg->H * lin_chunks(cfg, T) * cfg->D * (cfg->D + 1) * sizeof(float));
}
static size_t dop_bytes(const ab_attn_config *cfg, int B, int T) {
    return align256((size_t)B * cfg->H * T * (cfg->D + 1) * sizeof(float));
}

static size_t linear_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    return qkv_bytes(cfg, B, T) + o_bytes(cfg, B, T) + rden_bytes(cfg, B, T);
}

static size_t linear_ws_bytes(const ab_attn_config *cfg, int B, int T) {
    size_t w = qkv_bytes(cfg, B, T) + dop_bytes(cfg, B, T) + 2 * states_bytes(cfg, B, T); /* backward */
    size_t p = qkv_bytes(cfg, B, T) + states_bytes(cfg, B, T), d = attn_decode_workspace_bytes(cfg, B);
    if (p > w) w = p;
    return w > d ? w : d;
}

typedef struct {
    bf16 *qkv, *o;
    float *rden;
} lin_saved;

static lin_saved lin_views(const ab_attn_config *cfg, void *saved, int B, int T) {
    lin_saved v;
    char *p = (char *)saved;
    v.qkv = (bf16 *)p;
    p += qkv_bytes(cfg, B, T);
    v.o = (bf16 *)p;
    p += o_bytes(cfg, B, T);
    v.rden = (float *)p;
    return v;
}

/* The states before every chunk into `states` (B,H,nc,D,D+1): increments of phi(K)^T V' (dop == NULL) or
 * phi(Q)^T dO', then the exclusive scan (reverse for the latter); total (B,H,D,D+1) optional. */
static ab_status lin_states(ab_backend *be, const ab_attn_config *cfg, float *states, float *total, const bf16 *qkv,
                            const float *dop, int B, int T) {
    const int H = cfg->H, Lc = cfg->hp.linear_chunk, nc = lin_chunks(cfg, T);
    cudaStream_t st = cuda_stream(be);
    lin_chunk_state_kernel<<<dim3(nc, H, B), LIN_THREADS, 0, st>>>(states, qkv, dop, T, H, Lc, nc);
    AB_TRY(cuda_check_launch("linear chunk_state"));
    const size_t n = (size_t)B * H * LIN_STATE_FLOATS;
    lin_scan_kernel<<<cuda_blocks(n, 256), 256, 0, st>>>(states, total, B * H, nc, dop != NULL);
    return cuda_check_launch("linear scan");
}

/* qkv = x W + b, the states, y (and o, rden when not NULL); the state after the last token into total when not
 * NULL (prefill). */
static ab_status lin_run_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, bf16 *qkv, bf16 *o, float *rden,
                                 float *states, float *total, void *y, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    const int C = cfg->C, H = cfg->H, Lc = cfg->hp.linear_chunk, nc = lin_chunks(cfg, T);
    AB_TRY(cuda_matmul_forward(ctx->be, qkv, x, w->t[0], w->t[1], B * T, C, 3 * C));
    AB_TRY(lin_states(ctx->be, cfg, states, total, qkv, NULL, B, T));
    CUDA_TRY(cudaFuncSetAttribute(lin_chunk_forward_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)LIN_FWD_SMEM),
             "linear chunk_forward shared memory");
    lin_chunk_forward_kernel<<<dim3(nc, H, B), LIN_THREADS, LIN_FWD_SMEM, cuda_stream(ctx->be)>>>(
        (bf16 *)y, o, rden, qkv, states, T, H, Lc, nc);
    return cuda_check_launch("linear chunk_forward");
}

static ab_status linear_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y, const void *x,
                                int B, int T) {
    AB_TRY(lin_check(ctx->cfg));
    lin_saved sv = lin_views(ctx->cfg, saved, B, T);
    return lin_run_forward(ctx, w, sv.qkv, sv.o, sv.rden, (float *)ctx->workspace, NULL, y, x, B, T);
}

static ab_status linear_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                                 const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(lin_check(cfg));
    const int C = cfg->C, H = cfg->H, Lc = cfg->hp.linear_chunk, nc = lin_chunks(cfg, T);
    lin_saved sv = lin_views(cfg, (void *)saved, B, T);
    char *p = (char *)ctx->workspace;
    bf16 *dqkv = (bf16 *)p; /* every element written by chunk_backward */
    p += qkv_bytes(cfg, B, T);
    float *dop = (float *)p;
    p += dop_bytes(cfg, B, T);
    float *S_states = (float *)p;
    p += states_bytes(cfg, B, T);
    float *R_states = (float *)p;
    cudaStream_t st = cuda_stream(ctx->be);
    const size_t rows = (size_t)B * H * T;
    lin_dout_prime_kernel<<<cuda_blocks(rows * 32, 256), 256, 0, st>>>(dop, (const bf16 *)dy, sv.o, sv.rden, B, T, H);
    AB_TRY(cuda_check_launch("linear dout_prime"));
    AB_TRY(lin_states(ctx->be, cfg, S_states, NULL, sv.qkv, NULL, B, T));
    AB_TRY(lin_states(ctx->be, cfg, R_states, NULL, sv.qkv, dop, B, T));
    CUDA_TRY(cudaFuncSetAttribute(lin_chunk_backward_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)LIN_BWD_SMEM),
             "linear chunk_backward shared memory");
    lin_chunk_backward_kernel<<<dim3(nc, H, B), LIN_THREADS, LIN_BWD_SMEM, st>>>(dqkv, sv.qkv, dop, S_states, R_states,
                                                                                 T, H, Lc, nc);
    AB_TRY(cuda_check_launch("linear chunk_backward"));
    return cuda_matmul_backward(ctx->be, dx, dw ? dw->t[0] : NULL, dw ? dw->t[1] : NULL, dqkv, x, w->t[0], B * T, C,
                                3 * C);
}

/* B * H * (D*D + D) fp32: constant in the context length, max_T does not enter */
static size_t linear_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    return (size_t)B * cfg->H * ((size_t)cfg->D * cfg->D + cfg->D) * sizeof(float);
}

static ab_status linear_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                                int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(lin_check(cfg));
    if (T > cfg->max_T) return ab_fail(AB_ERR_USAGE, "cuda linear prefill: T = %d > max_T = %d", T, cfg->max_T);
    if (T <= 0) return AB_OK;
    bf16 *qkv = (bf16 *)ctx->workspace;
    float *states = (float *)((char *)ctx->workspace + qkv_bytes(cfg, B, T));
    return lin_run_forward(ctx, w, qkv, NULL, NULL, states, (float *)cache, y, x, B, T);
}

static ab_status linear_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                               int B, int pos) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(lin_check(cfg));
    if (pos < 0 || pos >= cfg->max_T)
        return ab_fail(AB_ERR_USAGE, "cuda linear decode: position %d outside 0..%d", pos, cfg->max_T - 1);
    const int32_t *pos_dev = NULL;
    AB_TRY(cuda_decode_pos(ctx, pos, &pos_dev));
    bf16 *qkv1 = (bf16 *)ctx->workspace; /* (B,3C) */
    AB_TRY(cuda_decode_projection(ctx, qkv1, x, w->t[0], w->t[1], NULL, B, cfg->C, 3 * cfg->C));
    return cuda_launch_dependent(ctx->be, "linear decode", lin_decode_kernel, dim3((unsigned)(B * cfg->H)), dim3(96), 0,
                                 (bf16 *)y, (float *)cache, (const bf16 *)qkv1, cfg->H, pos_dev);
}

extern "C" const ab_attn_ops ab_cuda_attn_linear = {
    linear_saved_bytes, linear_ws_bytes, linear_forward, linear_backward, linear_cache_bytes, linear_prefill,
    linear_decode,
};
