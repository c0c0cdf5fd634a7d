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
 * The chunk products (64 x 64 x 64) run on the tensor cores as the flash kernels' do (m16n8k16, bf16 operands from
 * swizzled 64 x 64 shared tiles or from the registers of an earlier product, fp32 accumulators; 4 warps a chunk,
 * 16 rows each): q, k, v are bf16 after the projection; phi(q), phi(k), the states, dO' and the masked scores are
 * rounded to bf16 where they enter a product; the sums, the denominators, the states' column D and the scans
 * across chunks stay fp32.
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
#include <string.h>

#include "backend/cuda/cuda_attn.cuh"
#include "backend/cuda/flash_attn.cuh"

#define LIN_D 64                          /* head size */
#define LIN_DV (LIN_D + 1)                /* [v | 1] columns: the row of a state S' and of dO' */
#define LIN_TILE 64                       /* rows of a chunk tile: the largest supported chunk */
#define LIN_STATE_FLOATS (LIN_D * LIN_DV) /* one state S' (D, D+1) */
#define LIN_WARPS 4                       /* a chunk kernel's warps: 16 tile rows each */
#define LIN_THREADS (32 * LIN_WARPS)
#define LIN_EPS 1e-6f
static_assert(LIN_D == FLASH_HD && LIN_TILE == 16 * LIN_WARPS, "a chunk tile is one of flash_attn.cuh's 64 x 64 tiles");

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

/* dst (a 64 x 64 bf16 tile, swizzled as flash_attn.cuh's) = rows r < L of part `part` (0 q, 1 k, 2 v) of head h at
 * positions t0 + r of qkv (B,T,3C), phi applied (then rounded to bf16) when `phi`; rows >= L zero, so that they add
 * nothing to any product. */
__device__ void lin_stage_part(bf16 *dst, const bf16 *qkv, const lin_chunk &p, int T, int C, int part, bool phi) {
    for (int i = threadIdx.x; i < LIN_TILE * 8; i += LIN_THREADS) {
        const int r = i / 8, ch = i % 8;
        uint4 u = make_uint4(0u, 0u, 0u, 0u);
        if (r < p.L) {
            u = *reinterpret_cast<const uint4 *>(qkv + ((size_t)p.b * T + p.t0 + r) * 3 * C + part * C + p.h * LIN_D +
                                                 ch * 8);
            if (phi) {
                float f[8];
                unpack8(f, u);
                u = make_uint4(pack_bf16(lin_phi(f[0]), lin_phi(f[1])), pack_bf16(lin_phi(f[2]), lin_phi(f[3])),
                               pack_bf16(lin_phi(f[4]), lin_phi(f[5])), pack_bf16(lin_phi(f[6]), lin_phi(f[7])));
            }
        }
        *reinterpret_cast<uint4 *>(dst + sw(r, ch)) = u;
    }
}

/* dst (64 x 64 bf16 tile) = columns 0..D-1 of the rows r < rows of src (rows, D+1) fp32 (a state, or dO'), rounded to
 * bf16; last (64 floats) = their column D, in fp32; zero below `rows`. */
__device__ void lin_stage_f32(bf16 *dst, float *last, const float *src, int rows) {
    for (int i = threadIdx.x; i < LIN_TILE * 8; i += LIN_THREADS) {
        const int r = i / 8, ch = i % 8;
        uint4 u = make_uint4(0u, 0u, 0u, 0u);
        if (r < rows) {
            const float *s = src + (size_t)r * LIN_DV + ch * 8;
            u = make_uint4(pack_bf16(s[0], s[1]), pack_bf16(s[2], s[3]), pack_bf16(s[4], s[5]), pack_bf16(s[6], s[7]));
        }
        *reinterpret_cast<uint4 *>(dst + sw(r, ch)) = u;
    }
    for (int r = threadIdx.x; r < LIN_TILE; r += LIN_THREADS)
        last[r] = r < rows ? src[(size_t)r * LIN_DV + LIN_D] : 0.0f;
}

/* A fragments (rows m0 .. m0 + 15 of the transpose, k = 64) of a [k][m] tile through ldmatrix.trans: af[ks] for
 * k-step ks (load_a_frags reads a [m][k] tile) */
__device__ __forceinline__ void lin_a_frags_km(uint32_t af[4][4], const bf16 *s, int m0, int lane) {
#pragma unroll
    for (int ks = 0; ks < 4; ks++)
        ldsm_x4_t(af[ks], smem_addr(s + sw(16 * ks + (lane & 7) + ((lane >> 4) << 3), m0 / 8 + ((lane >> 3) & 1))));
}

/* c (a warp's 16 x 64, 8 n-tiles) += A B over k = 64: A the fragments af; B a 64 x 64 tile held [n][k] (NK: plain
 * ldmatrix) or [k][n] (ldmatrix.trans). */
template <bool NK>
__device__ __forceinline__ void lin_mma(float c[8][4], const uint32_t af[4][4], const bf16 *tile, int lane) {
    if constexpr (NK) {
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            uint32_t bf[8];
            load_b_frags_nk(bf, tile, nt, lane);
#pragma unroll
            for (int ks = 0; ks < 4; ks++) mma_bf16(c[nt], af[ks], bf[2 * ks], bf[2 * ks + 1]);
        }
    } else {
#pragma unroll
        for (int ks = 0; ks < 4; ks++)
#pragma unroll
            for (int pp = 0; pp < 4; pp++) {
                uint32_t bf[4];
                load_b_frags_kn(bf, tile, ks, pp, lane);
                mma_bf16(c[2 * pp], af[ks], bf[0], bf[1]);
                mma_bf16(c[2 * pp + 1], af[ks], bf[2], bf[3]);
            }
    }
}

/* The accumulator element (nt, e) of a warp's 16 x 64 tile at rows r0 ..: its tile row and column */
__device__ __forceinline__ int lin_row(int r0, int lane, int e) { return r0 + lane / 4 + 8 * (e >> 1); }
__device__ __forceinline__ int lin_col(int lane, int nt, int e) { return nt * 8 + 2 * (lane % 4) + (e & 1); }

/* c(r, col) = f(r, col, c(r, col)) over a warp's 16 x 64 tile at rows r0 .. */
template <typename F>
__device__ __forceinline__ void lin_apply(float c[8][4], int r0, int lane, F f) {
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) c[nt][e] = f(lin_row(r0, lane, e), lin_col(lane, nt, e), c[nt][e]);
}

/* The rows r < L of a warp's 16 x 64 tile c at rows r0 .. to dst (row r at dst + r * stride, 64 columns), bf16 */
__device__ __forceinline__ void lin_store(bf16 *dst, size_t stride, const float c[8][4], int r0, int L, int lane) {
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        const int r = lin_row(r0, lane, 2 * hr);
        if (r >= L) continue;
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
            *reinterpret_cast<uint32_t *>(dst + r * stride + lin_col(lane, nt, 0)) =
                pack_bf16(c[nt][2 * hr], c[nt][2 * hr + 1]);
    }
}

/* One chunk's state increment X^T Y' (D, D+1) into inc (B,H,nc,D,D+1):
 *   forward  (dop == NULL): X = phi(K_c), Y' = [V_c | 1]     (S' increments)
 *   backward:               X = phi(Q_c), Y' = dO'_c          (R increments; dop (B,H,T,D+1))
 * Warp w the state rows d = 16w ..: A = X^T through ldmatrix.trans, B = Y'[:, :D]; column D in fp32 from the bf16 X. */
__global__ void __launch_bounds__(LIN_THREADS) lin_chunk_state_kernel(float *inc, const bf16 *qkv, const float *dop,
                                                                      int T, int H, int Lc, int nc) {
    __shared__ __align__(16) bf16 sX[LIN_TILE * LIN_D], sY[LIN_TILE * LIN_D];
    __shared__ float ylast[LIN_TILE]; /* Y'[:, D] */
    const lin_chunk p = lin_chunk_of_block(T, Lc);
    const int C = H * LIN_D, bh = p.b * H + p.h, lane = threadIdx.x % 32, d0 = 16 * (threadIdx.x / 32);
    if (dop) {
        lin_stage_part(sX, qkv, p, T, C, 0, true);
        lin_stage_f32(sY, ylast, dop + ((size_t)bh * T + p.t0) * LIN_DV, p.L);
    } else {
        lin_stage_part(sX, qkv, p, T, C, 1, true);
        lin_stage_part(sY, qkv, p, T, C, 2, false);
        for (int r = threadIdx.x; r < LIN_TILE; r += LIN_THREADS) ylast[r] = r < p.L ? 1.0f : 0.0f;
    }
    __syncthreads();
    uint32_t ax[4][4];
    lin_a_frags_km(ax, sX, d0, lane);
    float acc[8][4] = {};
    lin_mma<false>(acc, ax, sY, lane);
    float *out = inc + ((size_t)bh * nc + blockIdx.x) * LIN_STATE_FLOATS;
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) out[lin_row(d0, lane, e) * LIN_DV + lin_col(lane, nt, e)] = acc[nt][e];
    if (threadIdx.x < LIN_D) { /* column D */
        const int d = threadIdx.x;
        float s = 0.0f;
        for (int r = 0; r < p.L; r++) s = fmaf(bf2f(sX[sw(r, d / 8) + d % 8]), ylast[r], s);
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
 * o (B,T,C) and rden (B,H,T) = 1 / (den + eps) for the backward. Warp w the chunk rows 16w ..:
 *   A (16 x 64) = phi(Q_w) phi(K)^T, masked to key <= row;  den = rowsum(A) (fp32) + phi(Q_w) z;
 *   out (16 x 64) = A V + phi(Q_w) S  (A rounded to bf16 as the A operand, like the flash kernels' P). */
__global__ void __launch_bounds__(LIN_THREADS) lin_chunk_forward_kernel(bf16 *y, bf16 *o, float *rden, const bf16 *qkv,
                                                                        const float *states, int T, int H, int Lc,
                                                                        int nc) {
    __shared__ __align__(16) bf16 sQ[LIN_TILE * LIN_D], sK[LIN_TILE * LIN_D], sV[LIN_TILE * LIN_D], sS[LIN_D * LIN_D];
    __shared__ float z[LIN_D]; /* S'[:, D] */
    const lin_chunk p = lin_chunk_of_block(T, Lc);
    const int C = H * LIN_D, bh = p.b * H + p.h, lane = threadIdx.x % 32, r0 = 16 * (threadIdx.x / 32);
    lin_stage_part(sQ, qkv, p, T, C, 0, true);
    lin_stage_part(sK, qkv, p, T, C, 1, true);
    lin_stage_part(sV, qkv, p, T, C, 2, false);
    lin_stage_f32(sS, z, states + ((size_t)bh * nc + blockIdx.x) * LIN_STATE_FLOATS, LIN_D);
    __syncthreads();
    uint32_t aq[4][4];
    load_a_frags(aq, sQ, r0, lane);
    float a[8][4] = {}, out[8][4] = {};
    lin_mma<true>(a, aq, sK, lane); /* phi(K) [key][d]: [n][k] */
    lin_apply(a, r0, lane, [](int r, int c, float v) { return c <= r ? v : 0.0f; });
    float rd[2]; /* 1 / (den + eps) of rows lin_row(r0, lane, 0) and + 8, summed over the lane's quad */
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        const int r = lin_row(r0, lane, 2 * hr);
        float s = 0.0f;
#pragma unroll
        for (int nt = 0; nt < 8; nt++) s += a[nt][2 * hr] + a[nt][2 * hr + 1];
        for (int d = 16 * (lane % 4); d < 16 * (lane % 4) + 16; d++) s += bf2f(sQ[sw(r, d / 8) + d % 8]) * z[d];
        s = lane_group_sum(s, 4);
        rd[hr] = 1.0f / (s + LIN_EPS);
    }
    mma_acc_a_kn(out, a, sV, lane);   /* A V: V [key][e] is [k][n] */
    lin_mma<false>(out, aq, sS, lane); /* phi(Q) S: S [d][e] is [k][n] */
    lin_apply(out, r0, lane, [&](int r, int c, float v) { return v * rd[(r - r0) / 8]; });
    const size_t row0 = ((size_t)p.b * T + p.t0) * C + p.h * LIN_D;
    lin_store(y + row0, C, out, r0, p.L, lane);
    if (!o) return;
    lin_store(o + row0, C, out, r0, p.L, lane);
    if (lane % 4 == 0)
        for (int hr = 0; hr < 2; hr++) {
            const int r = lin_row(r0, lane, 2 * hr);
            if (r < p.L) rden[(size_t)bh * T + p.t0 + r] = rd[hr];
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
 * S_states: the forward state before the chunk, R_states: the reverse state after it (both (B,H,nc,D,D+1)).
 * Warp w first serves the chunk's query rows 16w .. (dq), then its key rows 16w .. (dk, dv), so every product has
 * the warp's rows as its A rows and no tile is transposed through shared memory:
 *   dA     = dO' V'^T masked to key <= query < L              dq = phi'(q) (dA phi(K) + dO' S'^T)
 *   dA^T   = V' dO'^T, the same mask                          dk = phi'(k) (dA^T phi(Q) + V' R^T)
 *   A^T    = phi(K) phi(Q)^T, masked                          dv = A^T dO'[:, :D] + phi(K) R[:, :D]
 * with V' = [V | 1]: the ones column adds dO'[:, D] to dA, dO'[:, D] z^T to dO' S'^T and R[:, D] to V' R^T. */
__global__ void __launch_bounds__(LIN_THREADS) lin_chunk_backward_kernel(bf16 *dqkv, const bf16 *qkv, const float *dop,
                                                                         const float *S_states, const float *R_states,
                                                                         int T, int H, int Lc, int nc) {
    /* phi(Q), phi(K), V, dO'[:, :D], then S'[:, :D] and later R[:, :D] */
    __shared__ __align__(16) bf16 sQ[LIN_TILE * LIN_D], sK[LIN_TILE * LIN_D], sV[LIN_TILE * LIN_D],
        sG[LIN_TILE * LIN_D], sM[LIN_D * LIN_D];
    __shared__ float gl[LIN_TILE], ml[LIN_D]; /* dO'[:, D]; S'[:, D], later R[:, D] */
    const lin_chunk p = lin_chunk_of_block(T, Lc);
    const int C = H * LIN_D, bh = p.b * H + p.h, lane = threadIdx.x % 32, r0 = 16 * (threadIdx.x / 32), L = p.L;
    const size_t state = ((size_t)bh * nc + blockIdx.x) * LIN_STATE_FLOATS, ld = 3 * (size_t)C;
    const size_t row0 = ((size_t)p.b * T + p.t0) * ld + p.h * LIN_D; /* head h's q of the chunk's first row */
    lin_stage_part(sQ, qkv, p, T, C, 0, true);
    lin_stage_part(sK, qkv, p, T, C, 1, true);
    lin_stage_part(sV, qkv, p, T, C, 2, false);
    lin_stage_f32(sG, gl, dop + ((size_t)bh * T + p.t0) * LIN_DV, L);
    lin_stage_f32(sM, ml, S_states + state, LIN_D);
    __syncthreads();
    { /* query rows r0 ..: dq */
        uint32_t ag[4][4];
        load_a_frags(ag, sG, r0, lane);
        float da[8][4] = {}, dq[8][4] = {};
        lin_mma<true>(da, ag, sV, lane); /* V [key][e]: [n][k] */
        lin_apply(da, r0, lane, [&](int r, int c, float v) { return c <= r && c < L ? v + gl[r] : 0.0f; });
        mma_acc_a_kn(dq, da, sK, lane);  /* phi(K) [key][d]: [k][n] */
        lin_mma<true>(dq, ag, sM, lane); /* S' [d][e]: [n][k] */
        const bf16 *q = qkv + row0;
        lin_apply(dq, r0, lane, [&](int r, int c, float v) { /* rows >= L are not stored (nor read: past T) */
            return r < L ? (v + gl[r] * ml[c]) * lin_dphi(bf2f(q[r * ld + c])) : 0.0f;
        });
        lin_store(dqkv + row0, ld, dq, r0, L, lane);
    }
    __syncthreads(); /* S' read by every warp */
    lin_stage_f32(sM, ml, R_states + state, LIN_D);
    __syncthreads();
    { /* key rows r0 ..: dk */
        uint32_t av[4][4];
        load_a_frags(av, sV, r0, lane);
        float dat[8][4] = {}, dk[8][4] = {};
        lin_mma<true>(dat, av, sG, lane); /* dO' [query][e]: [n][k] */
        lin_apply(dat, r0, lane, [&](int r, int c, float v) { return r <= c && r < L ? v + gl[c] : 0.0f; });
        mma_acc_a_kn(dk, dat, sQ, lane);  /* phi(Q) [query][d]: [k][n] */
        lin_mma<true>(dk, av, sM, lane); /* R [d][e]: [n][k] */
        const bf16 *k = qkv + row0 + C;
        lin_apply(dk, r0, lane,
                  [&](int r, int c, float v) { return r < L ? (v + ml[c]) * lin_dphi(bf2f(k[r * ld + c])) : 0.0f; });
        lin_store(dqkv + row0 + C, ld, dk, r0, L, lane);
    }
    { /* key rows r0 ..: dv */
        uint32_t ak[4][4];
        load_a_frags(ak, sK, r0, lane);
        float at[8][4] = {}, dv[8][4] = {};
        lin_mma<true>(at, ak, sQ, lane); /* phi(Q) [query][d]: [n][k] */
        lin_apply(at, r0, lane, [](int r, int c, float v) { return r <= c ? v : 0.0f; });
        mma_acc_a_kn(dv, at, sG, lane);   /* dO' [query][e]: [k][n] */
        lin_mma<false>(dv, ak, sM, lane); /* R [d][e]: [k][n] */
        lin_store(dqkv + row0 + 2 * C, ld, dv, r0, L, lane);
    }
}

/* One token per (b, h) block: S' = (fresh ? 0 : S') + phi(k) [v | 1]^T in the cache (B,H,D,D+1), fresh when the
 * position *pos_dev is 0, then y = (phi(q)^T S')[0..D) / ((phi(q)^T S')[D] + eps); qkv1 (B,3C). Thread e owns
 * column e of S'. */
__global__ void lin_decode_kernel(bf16 *y, float *cache, const bf16 *qkv1, int H, const int32_t *pos_dev) {
    __shared__ float a[LIN_D], kk[LIN_D], vv[LIN_DV], out[LIN_DV];
    pdl_release(); /* the output projection after this may be scheduled early (cuda_common.cuh) */
    /* the position (written before the step's first kernel) and the state (by the step before) may be read before
     * the wait: column e of S' into registers */
    const int bh = blockIdx.x, b = bh / H, h = bh % H, C = H * LIN_D, fresh = *pos_dev == 0, e = threadIdx.x;
    float *S = cache + (size_t)bh * LIN_STATE_FLOATS;
    float sc[LIN_D];
#pragma unroll
    for (int d = 0; d < LIN_D; d++) sc[d] = fresh || e >= LIN_DV ? 0.0f : S[d * LIN_DV + e];
    pdl_wait(); /* launched dependent: the product before this wrote its input */
    const bf16 *q = qkv1 + (size_t)b * 3 * C + h * LIN_D;
    for (int d = threadIdx.x; d < LIN_D; d += blockDim.x) {
        a[d] = lin_phi(bf2f(q[d]));
        kk[d] = lin_phi(bf2f(q[C + d]));
        vv[d] = bf2f(q[2 * C + d]);
    }
    if (threadIdx.x == 0) vv[LIN_D] = 1.0f;
    __syncthreads();
    if (e < LIN_DV) {
        float s = 0.0f;
#pragma unroll
        for (int d = 0; d < LIN_D; d++) {
            const float u = sc[d] + kk[d] * vv[e];
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
    lin_chunk_forward_kernel<<<dim3(nc, H, B), LIN_THREADS, 0, cuda_stream(ctx->be)>>>(
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
    lin_chunk_backward_kernel<<<dim3(nc, H, B), LIN_THREADS, 0, st>>>(dqkv, sv.qkv, dop, S_states, R_states, T, H, Lc,
                                                                      nc);
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

/* decode's checks, then its first product: qkv1 (B,3C) = LN(x) @ c_attn + b into the workspace */
static ab_status linear_decode_input(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, int B, int pos,
                                     ab_decode_input *in) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(lin_check(cfg));
    if (pos < 0 || pos >= cfg->max_T)
        return ab_fail(AB_ERR_USAGE, "cuda linear decode: position %d outside 0..%d", pos, cfg->max_T - 1);
    decode_input_product(in, ctx->workspace, w->t[0], w->t[1], cfg->C, 3 * cfg->C);
    return AB_OK;
}

static ab_status linear_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                               int B, int pos) {
    const ab_attn_config *cfg = ctx->cfg;
    ab_decode_input in;
    AB_TRY(linear_decode_input(ctx, w, cache, B, pos, &in));
    const int32_t *pos_dev = NULL;
    AB_TRY(cuda_decode_pos(ctx, pos, &pos_dev));
    AB_TRY(cuda_decode_input_run(ctx, &in, x, B));
    return cuda_launch_dependent(ctx->be, "linear decode", lin_decode_kernel, dim3((unsigned)(B * cfg->H)), dim3(96), 0,
                                 (bf16 *)y, (float *)cache, (const bf16 *)in.out, cfg->H, pos_dev);
}

extern "C" const ab_attn_ops ab_cuda_attn_linear = {
    linear_saved_bytes, linear_ws_bytes, linear_forward, linear_backward, linear_cache_bytes, linear_prefill,
    linear_decode,      linear_decode_input,
};
