/*
 * flash_attn.cuh — the FlashAttention-2 kernel family (Dao, 2023) on the tensor cores (mma.sync
 * m16n8k16, bf16 operands, fp32 accumulation), head size 64. Forward: 64 queries x 64 keys per tile, 4
 * warps of 16 query rows. Backward: 16 keys per warp, FLASH_BWD_WARPS warps per key block, 64-query tiles.
 *
 * Parameterised for the variants built on it:
 *  - the mask is a template policy (which key blocks a query block visits, which blocks need per-element
 *    masking, and the predicate): flash_mask_causal, flash_mask_band (sliding window of W keys including
 *    the current one), flash_mask_sorted (lsh: attention in a sorted order of the tokens, below);
 *  - the head mapping is a parameter: query head h reads KV head h / h_per_kv (GQA; 1 = MHA); the backward
 *    sums dK, dV over the heads of a group in registers;
 *  - every tensor is addressed by (batch, token, head) strides, so Q/K/V can be read in place from the
 *    c_attn output (B,T,3C) and O written straight into (B,T,C).
 *
 * Forward: per (query block, head, batch) block, online softmax in registers; saves O and
 * L = m + log(l) (natural log, fp32, (B,H,T)); fully masked rows get O = 0 and L = +inf.
 * Backward: per (key block, KV head, batch) block, loops over the query blocks that see it: recompute
 * P = exp(tau S - L), dV += P^T dO, dP = dO V^T, dS = P (dP - Delta), dK += dS^T Q, and dQ += dS K through
 * fp32 atomics into dq_accum (B,H,T,64), scaled and converted afterwards. Delta = rowsum(dO * O). On a deterministic
 * backend (be->deterministic) dQ comes instead from a query-block kernel that sums the key blocks in order.
 *
 * Sorted space (flash_mask_sorted, lsh): the kernels run over a permutation of each (batch, head)'s tokens,
 * rows[s] = the position of sorted index s. Q, K, V, dO rows are gathered through it and O, L, dK, dV, dQ
 * scattered back, so every tensor stays in position order; the band of `window` keys is in sorted indices and
 * narrowed per query to row_lo[s] (its bucket's segment start); the diagonal logit is FLASH_SELF_LOGIT (a
 * constant: no gradient). Tiles are skipped by the band alone, so the work does not depend on the data.
 *
 * Shared-memory tiles are 64 x 64 bf16 with 16-byte chunks XOR-swizzled by row (chunk ^ (row & 7)), so
 * ldmatrix reads are free of bank conflicts.
 */
#ifndef AB_FLASH_ATTN_CUH
#define AB_FLASH_ATTN_CUH

#include "backend/cuda/cuda_common.cuh"

#define FLASH_HD 64     /* head size */
#define FLASH_BLOCK 64  /* query tile (both passes) and key tile (forward) */
#define FLASH_THREADS 128 /* forward */
#define FLASH_SELF_LOGIT AB_ATTN_SELF_LOGIT /* sorted space: the diagonal's logit (VARIANTS.md 6, self rule) */

typedef struct {
    const bf16 *q, *k, *v;            /* element (b,t,h,d) at ptr + b*sb + t*st + h*sh + d */
    long long q_sb, q_st, q_sh;
    long long kv_sb, kv_st, kv_sh;    /* shared by k and v (and dk, dv) */
    bf16 *o, *o2;                     /* forward output, same strides (o_*); o2 optional second copy */
    long long o_sb, o_st, o_sh;
    float *lse;                       /* (B,H,T) */
    const bf16 *dout;                 /* backward: strides o_* */
    bf16 *dk, *dv;                    /* strides kv_* */
    float *dq_accum;                  /* (B,H,T,64), zeroed */
    const float *delta;               /* (B,H,T) */
    int B, H, T, h_per_kv;
    int window;                       /* band mask: keys i-window+1 .. i */
    const int *rows;                  /* sorted space: position of sorted index s at rows[(b*H + h)*T + s] */
    const int *row_lo;                /* sorted space: first sorted key that query s sees, same indexing */
    float scale_log2;                 /* tau * log2(e) */
    float tau;
} flash_params;

/* ---- masks: key range of a query block, query range of a key block, tests for a tile of queries
 * [q0,q1) x keys [k0,k1) (full: no element masked; none: every element masked), the predicate ---- */
struct flash_mask_causal {
    static constexpr bool sorted = false;
    static __device__ __forceinline__ int kv_begin(const flash_params &p, int q0) { return 0; }
    static __device__ __forceinline__ int kv_end(const flash_params &p, int q1) { return q1 < p.T ? q1 : p.T; }
    static __device__ __forceinline__ int q_begin(const flash_params &p, int k0) { return k0; }
    static __device__ __forceinline__ int q_end(const flash_params &p, int k1) { return p.T; }
    static __device__ __forceinline__ bool full(const flash_params &p, int q0, int q1, int k0, int k1) {
        return k1 - 1 <= q0;
    }
    static __device__ __forceinline__ bool allowed(const flash_params &p, int i, int j, int lo) { return j <= i; }
    static __device__ __forceinline__ bool none(const flash_params &p, int q0, int q1, int k0, int k1) {
        return k0 > q1 - 1;
    }
};

struct flash_mask_band {
    static constexpr bool sorted = false;
    static __device__ __forceinline__ int kv_begin(const flash_params &p, int q0) {
        return q0 - p.window + 1 > 0 ? q0 - p.window + 1 : 0;
    }
    static __device__ __forceinline__ int kv_end(const flash_params &p, int q1) { return q1 < p.T ? q1 : p.T; }
    static __device__ __forceinline__ int q_begin(const flash_params &p, int k0) { return k0; }
    static __device__ __forceinline__ int q_end(const flash_params &p, int k1) {
        return k1 + p.window - 1 < p.T ? k1 + p.window - 1 : p.T;
    }
    static __device__ __forceinline__ bool full(const flash_params &p, int q0, int q1, int k0, int k1) {
        return k1 - 1 <= q0 && k0 > q1 - 1 - p.window;
    }
    static __device__ __forceinline__ bool allowed(const flash_params &p, int i, int j, int lo) {
        return j <= i && j > i - p.window;
    }
    static __device__ __forceinline__ bool none(const flash_params &p, int q0, int q1, int k0, int k1) {
        return k0 > q1 - 1 || k1 - 1 <= q0 - p.window;
    }
};

/* lsh: the band of p.window sorted keys (the band mask's block ranges and skipped tiles), narrowed per query to
 * [row_lo, i] (lo: row_lo of query i), which depends on the data: no tile is known to be unmasked */
struct flash_mask_sorted : flash_mask_band {
    static constexpr bool sorted = true;
    static __device__ __forceinline__ bool full(const flash_params &p, int q0, int q1, int k0, int k1) { return false; }
    static __device__ __forceinline__ bool allowed(const flash_params &p, int i, int j, int lo) { return j <= i && j >= lo; }
};

/* ---- PTX wrappers ---- */
/* (smem_addr, cp_async16 and the cp.async groups: cuda_common.cuh) */
__device__ __forceinline__ void ldsm_x4(uint32_t r[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
/* c (16x8 fp32) += a (16x16 bf16, row) * b (16x8 bf16, col) */
__device__ __forceinline__ void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* element offset of (row, 16-byte chunk) in a swizzled tile of rows of COLS bf16 (chunk ^ (row & 7): the 8 rows an
 * ldmatrix reads at one chunk fall in 8 different bank groups); sw: the 64 x 64 tiles */
template <int COLS>
__device__ __forceinline__ int sw_cols(int row, int chunk) { return row * COLS + ((chunk ^ (row & 7)) << 3); }
__device__ __forceinline__ int sw(int row, int chunk) { return sw_cols<FLASH_HD>(row, chunk); }

/* rows [0, ROWS) of a tile from global (row stride in elements) by THREADS threads; rows >= rows_valid are
 * zero-filled. GATHER: tile row r is global row rows[r] (sorted space), else row r. */
template <int ROWS = FLASH_BLOCK, int THREADS = FLASH_THREADS, bool GATHER = false>
__device__ __forceinline__ void load_tile_async(bf16 *s, const bf16 *g, long long row_stride, int rows_valid, int tid,
                                                const int *rows = nullptr) {
#pragma unroll
    for (int k = 0; k < ROWS * 8 / THREADS; k++) {
        int id = tid + THREADS * k, r = id >> 3, ch = id & 7;
        bool ok = r < rows_valid;
        long long row = GATHER ? (ok ? rows[r] : 0) : r;
        cp_async16(smem_addr(s + sw(r, ch)), ok ? g + row * row_stride + ch * 8 : g, ok);
    }
}

/* tile rows r0 .. r0 + ROWS - 1 of a (batch, head)'s tensor at g (row stride in elements; rows past T zero), by
 * THREADS threads: in sorted space through the permutation `rows` of that (batch, head), else rows r0 .. in order */
template <class Mask, int ROWS, int THREADS>
__device__ __forceinline__ void load_rows_async(bf16 *dst, const bf16 *g, long long stride, int r0, int T, int tid,
                                                const int *rows) {
    if constexpr (Mask::sorted)
        load_tile_async<ROWS, THREADS, true>(dst, g, stride, T - r0, tid, rows + r0);
    else
        load_tile_async<ROWS, THREADS>(dst, g + r0 * stride, stride, T - r0, tid);
}

/* A fragments (16 rows from row0, k = 64) of a [row][k] tile: af[ks] for k-step ks */
__device__ __forceinline__ void load_a_frags(uint32_t af[4][4], const bf16 *s, int row0, int lane) {
#pragma unroll
    for (int ks = 0; ks < 4; ks++) ldsm_x4(af[ks], smem_addr(s + sw(row0 + (lane & 15), 2 * ks + (lane >> 4))));
}

/* B fragments of n-tile nt (8 rows of an [n][k] tile), k = 64: bf[2ks], bf[2ks+1] */
__device__ __forceinline__ void load_b_frags_nk(uint32_t bf[8], const bf16 *s, int nt, int lane) {
    ldsm_x4(bf, smem_addr(s + sw(nt * 8 + (lane & 7), lane >> 3)));
    ldsm_x4(bf + 4, smem_addr(s + sw(nt * 8 + (lane & 7), 4 + (lane >> 3))));
}

/* B fragments from a [k][n] tile for k-step ks and n-tiles 2pp, 2pp+1: {b0,b1} of 2pp, {b0,b1} of 2pp+1 */
__device__ __forceinline__ void load_b_frags_kn(uint32_t bf[4], const bf16 *s, int ks, int pp, int lane) {
    ldsm_x4_t(bf, smem_addr(s + sw(16 * ks + ((lane >> 3) & 1) * 8 + (lane & 7), 2 * pp + (lane >> 4))));
}

/* c (16 x 64 per warp, 8 n-tiles) += A B: A = a (16 x 64) held as the accumulators of an earlier product, rounded to
 * bf16 as the A fragments; B = a [k][n] 64 x 64 tile in shared memory read through ldmatrix.trans. The forward's
 * O += P V and the dQ kernel's dQ += dS K. */
__device__ __forceinline__ void mma_acc_a_kn(float c[8][4], const float a[8][4], const bf16 *tile, int lane) {
#pragma unroll
    for (int ks = 0; ks < 4; ks++) {
        uint32_t af[4] = {pack_bf16(a[2 * ks][0], a[2 * ks][1]), pack_bf16(a[2 * ks][2], a[2 * ks][3]),
                          pack_bf16(a[2 * ks + 1][0], a[2 * ks + 1][1]), pack_bf16(a[2 * ks + 1][2], a[2 * ks + 1][3])};
#pragma unroll
        for (int pp = 0; pp < 4; pp++) {
            uint32_t bf[4];
            load_b_frags_kn(bf, tile, ks, pp, lane);
            mma_bf16(c[2 * pp], af, bf[0], bf[1]);
            mma_bf16(c[2 * pp + 1], af, bf[2], bf[3]);
        }
    }
}

/* ------------------------------------------------------------------ query-block kernels */

/* What the two query-major kernels (the forward, and the deterministic dQ) share: the block's query block (the
 * last first: the causal ones have the most keys), head and batch, the key blocks it visits, tile loads through the
 * sorted permutation in sorted space, and the double-buffered stream of K, V tiles over those key blocks. */
template <class Mask>
struct flash_qblock {
    const flash_params &p;
    int tid, warp, lane, h, b, hk, q0, q1, kb_begin, kb_end;
    const int *rows; /* sorted space: sorted index -> position of this (batch, head) */
    const bf16 *kg, *vg;
    __device__ __forceinline__ explicit flash_qblock(const flash_params &pp) : p(pp) {
        tid = threadIdx.x; warp = tid >> 5; lane = tid & 31;
        h = blockIdx.y; b = blockIdx.z; hk = h / p.h_per_kv;
        q0 = (gridDim.x - 1 - blockIdx.x) * FLASH_BLOCK; q1 = q0 + FLASH_BLOCK;
        rows = Mask::sorted ? p.rows + ((size_t)b * p.H + h) * p.T : nullptr;
        kg = p.k + b * p.kv_sb + hk * p.kv_sh; vg = p.v + b * p.kv_sb + hk * p.kv_sh;
        kb_begin = Mask::kv_begin(p, q0) / FLASH_BLOCK;
        kb_end = (Mask::kv_end(p, q1) + FLASH_BLOCK - 1) / FLASH_BLOCK;
    }
    /* tile rows r0 .. r0 + 63 of a (batch, head)'s tensor at g (asynchronous) */
    __device__ __forceinline__ void load_rows(bf16 *dst, const bf16 *g, long long stride, int r0) const {
        load_rows_async<Mask, FLASH_BLOCK, FLASH_THREADS>(dst, g, stride, r0, p.T, tid, rows);
    }
    /* the first key block's K, V into buffer 0 (committed with the caller's first loads) */
    __device__ __forceinline__ void load_first_kv(bf16 *sK, bf16 *sV) const {
        if (kb_begin < kb_end) {
            load_rows(sK, kg, p.kv_st, kb_begin * FLASH_BLOCK);
            load_rows(sV, vg, p.kv_st, kb_begin * FLASH_BLOCK);
        }
    }
    /* at the top of key block kb's iteration: its tiles (buffer (kb - kb_begin) & 1) are in shared memory once this
     * returns, and the next block's are on their way into the other buffer */
    __device__ __forceinline__ void next_kv(int kb, bf16 (*sK)[FLASH_BLOCK * FLASH_HD], bf16 (*sV)[FLASH_BLOCK * FLASH_HD]) const {
        const int cur = (kb - kb_begin) & 1;
        if (kb > kb_begin) {
            cp_async_wait_all();
            __syncthreads();
        }
        if (kb + 1 < kb_end) {
            load_rows(sK[cur ^ 1], kg, p.kv_st, (kb + 1) * FLASH_BLOCK);
            load_rows(sV[cur ^ 1], vg, p.kv_st, (kb + 1) * FLASH_BLOCK);
            cp_async_commit();
        }
    }
};

/* ------------------------------------------------------------------ forward */

#ifndef FLASH_FWD_MIN_BLOCKS
#define FLASH_FWD_MIN_BLOCKS 4 /* blocks per SM the forward is compiled for: 128 registers, no spills */
#endif

template <class Mask>
__global__ void __launch_bounds__(FLASH_THREADS, FLASH_FWD_MIN_BLOCKS) flash_forward_kernel(const flash_params p) {
    __shared__ __align__(128) bf16 sQ[FLASH_BLOCK * FLASH_HD];
    __shared__ __align__(128) bf16 sK[2][FLASH_BLOCK * FLASH_HD];
    __shared__ __align__(128) bf16 sV[2][FLASH_BLOCK * FLASH_HD];
    const flash_qblock<Mask> qb(p);
    const int warp = qb.warp, lane = qb.lane, h = qb.h, b = qb.b, T = p.T, q0 = qb.q0, q1 = qb.q1;
    const int *rows = qb.rows;
    qb.load_rows(sQ, p.q + b * p.q_sb + h * p.q_sh, p.q_st, q0);
    qb.load_first_kv(sK[0], sV[0]);
    int lo[2] = {0, 0}; /* sorted space: the first key of this thread's rows (lane/4, lane/4 + 8 of the warp's) */
    if constexpr (Mask::sorted) {
        const int *rlo = p.row_lo + ((size_t)b * p.H + h) * T, i0 = q0 + warp * 16 + (lane >> 2);
        lo[0] = i0 < T ? rlo[i0] : 0;
        lo[1] = i0 + 8 < T ? rlo[i0 + 8] : 0;
    }
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();
    uint32_t qf[4][4];
    load_a_frags(qf, sQ, warp * 16, lane);

    float o[8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int nt = 0; nt < 8; nt++) o[nt][0] = o[nt][1] = o[nt][2] = o[nt][3] = 0.0f;
    const float sl2 = p.scale_log2;

    for (int kb = qb.kb_begin; kb < qb.kb_end; kb++) {
        const int cur = (kb - qb.kb_begin) & 1, k0 = kb * FLASH_BLOCK;
        qb.next_kv(kb, sK, sV);
        /* S (16 x 64 per warp) = Q K^T */
        float s[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
            uint32_t kf[8];
            load_b_frags_nk(kf, sK[cur], nt, lane);
#pragma unroll
            for (int ks = 0; ks < 4; ks++) mma_bf16(s[nt], qf[ks], kf[2 * ks], kf[2 * ks + 1]);
        }
        if (!Mask::full(p, q0, q1, k0, k0 + FLASH_BLOCK)) {
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int i = q0 + warp * 16 + (lane >> 2) + (e >> 1) * 8, j = k0 + nt * 8 + (lane & 3) * 2 + (e & 1);
                    if (!Mask::allowed(p, i, j, lo[e >> 1])) s[nt][e] = -INFINITY;
                    else if (Mask::sorted && i == j) s[nt][e] = FLASH_SELF_LOGIT;
                }
        }
        /* online softmax, rows r = lane/4 and lane/4 + 8 of the warp's 16 */
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float mx = m[r];
#pragma unroll
            for (int nt = 0; nt < 8; nt++) mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]) * sl2);
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float base = mx == -INFINITY ? 0.0f : mx, corr = exp2f(m[r] - base);
            m[r] = mx;
            l[r] *= corr;
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
                o[nt][2 * r] *= corr;
                o[nt][2 * r + 1] *= corr;
                float p0 = exp2f(fmaf(s[nt][2 * r], sl2, -base)), p1 = exp2f(fmaf(s[nt][2 * r + 1], sl2, -base));
                s[nt][2 * r] = p0;
                s[nt][2 * r + 1] = p1;
                l[r] += p0 + p1;
            }
        }
        mma_acc_a_kn(o, s, sV[cur], lane); /* O += P V: P from the S accumulators */
    }

    /* normalise, stage O in shared memory (each warp its own 16 rows of sQ), store 16-byte chunks */
    __syncthreads(); /* orders the Q-fragment ldmatrix reads before the staging writes (racecheck) */
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
    const float inv0 = l[0] > 0.0f ? 1.0f / l[0] : 0.0f, inv1 = l[1] > 0.0f ? 1.0f / l[1] : 0.0f;
    const int rl = warp * 16 + (lane >> 2);
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
        *reinterpret_cast<uint32_t *>(sQ + sw(rl, nt) + (lane & 3) * 2) = pack_bf16(o[nt][0] * inv0, o[nt][1] * inv0);
        *reinterpret_cast<uint32_t *>(sQ + sw(rl + 8, nt) + (lane & 3) * 2) = pack_bf16(o[nt][2] * inv1, o[nt][3] * inv1);
    }
    if ((lane & 3) == 0) {
        float *lse = p.lse + ((size_t)b * p.H + h) * T;
        const int i0 = q0 + rl, i1 = i0 + 8;
        if (i0 < T) lse[Mask::sorted ? rows[i0] : i0] = l[0] > 0.0f ? m[0] * 0.69314718f + logf(l[0]) : INFINITY;
        if (i1 < T) lse[Mask::sorted ? rows[i1] : i1] = l[1] > 0.0f ? m[1] * 0.69314718f + logf(l[1]) : INFINITY;
    }
    __syncwarp();
    bf16 *og = p.o + b * p.o_sb + h * p.o_sh;
    bf16 *og2 = p.o2 ? p.o2 + b * p.o_sb + h * p.o_sh : NULL;
#pragma unroll
    for (int k = 0; k < 4; k++) { /* the warp's 16 rows x 8 chunks, 32 lanes */
        int r = warp * 16 + k * 4 + (lane >> 3), ch = lane & 7;
        if (q0 + r < T) {
            const long long row = Mask::sorted ? rows[q0 + r] : q0 + r;
            uint4 v = *reinterpret_cast<const uint4 *>(sQ + sw(r, ch));
            *reinterpret_cast<uint4 *>(og + row * p.o_st + ch * 8) = v;
            if (og2) *reinterpret_cast<uint4 *>(og2 + row * p.o_st + ch * 8) = v;
        }
    }
}

/* ------------------------------------------------------------------ backward */

/* Key block of the backward: 16 keys per warp. WARPS = 4 (64 keys, 2 blocks per SM) or 8 (128 keys, 1
 * block per SM: Q/dO tiles and dQ atomics shared by twice the keys). 8 passes the same tests but measured
 * slower on an H200 at B16 H12 T512 (backward 0.177 ms against 0.167), so 4 is built. */
#ifndef FLASH_BWD_WARPS
#define FLASH_BWD_WARPS 4
#endif
#define FLASH_BWD_KEYS (16 * FLASH_BWD_WARPS)
#define FLASH_BWD_SMEM ((3 * FLASH_BWD_KEYS * FLASH_HD + 4 * FLASH_BLOCK * FLASH_HD) * 2 + 8 * FLASH_BLOCK * 4)

template <class Mask, int WARPS, bool DQ>
__global__ void __launch_bounds__(WARPS * 32, WARPS == 4 ? 2 : 1) flash_backward_kernel(const flash_params p) {
    constexpr int KB = 16 * WARPS, THREADS = 32 * WARPS, DQ_NT = 32 / WARPS; /* dQ n-tiles (of 8 d) per warp */
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *sK = reinterpret_cast<bf16 *>(smem), *sV = sK + KB * FLASH_HD;
    bf16 *sQ = sV + KB * FLASH_HD;                   /* [2][64 queries][64] */
    bf16 *sdO = sQ + 2 * FLASH_BLOCK * FLASH_HD;     /* [2][64 queries][64] */
    bf16 *sdS = sdO + 2 * FLASH_BLOCK * FLASH_HD;    /* dS^T [KB keys][64 queries] */
    float *sL = reinterpret_cast<float *>(sdS + KB * FLASH_HD); /* [2][64], L * log2(e) */
    float *sD = sL + 2 * FLASH_BLOCK;                            /* [2][64], Delta */
    int *sRow = reinterpret_cast<int *>(sD + 2 * FLASH_BLOCK);   /* sorted space: [2][64] query positions */
    int *sLo = sRow + 2 * FLASH_BLOCK;                           /* sorted space: [2][64] first key per query */
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int kblk = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
    const int T = p.T, H = p.H, k0 = kblk * KB, k1 = k0 + KB, kw0 = k0 + warp * 16;
    /* sorted space (h_per_kv = 1): sorted index -> position of this (batch, head) */
    const int *rows = Mask::sorted ? p.rows + ((size_t)b * H + hk) * T : nullptr;
    const int *rlo = Mask::sorted ? p.row_lo + ((size_t)b * H + hk) * T : nullptr;
    const bf16 *kg = p.k + b * p.kv_sb + hk * p.kv_sh, *vg = p.v + b * p.kv_sb + hk * p.kv_sh;
    const int qb_begin = Mask::q_begin(p, k0) / FLASH_BLOCK;
    const int qb_end = (Mask::q_end(p, k1 < T ? k1 : T) + FLASH_BLOCK - 1) / FLASH_BLOCK;
    const int nq = qb_end > qb_begin ? qb_end - qb_begin : 0, total = nq * p.h_per_kv;
    const float sl2 = p.scale_log2;

    /* loads of iteration it (head h = hk*h_per_kv + it/nq, query block qb_begin + it%nq) into buffer buf */
    auto issue_loads = [&](int it, int buf) {
        int h = hk * p.h_per_kv + it / nq, q0 = (qb_begin + it % nq) * FLASH_BLOCK;
        load_rows_async<Mask, FLASH_BLOCK, THREADS>(sQ + buf * FLASH_BLOCK * FLASH_HD, p.q + b * p.q_sb + h * p.q_sh, p.q_st,
                                                    q0, T, tid, rows);
        load_rows_async<Mask, FLASH_BLOCK, THREADS>(sdO + buf * FLASH_BLOCK * FLASH_HD, p.dout + b * p.o_sb + h * p.o_sh,
                                                    p.o_st, q0, T, tid, rows);
        if (tid < FLASH_BLOCK) {
            const int i = q0 + tid;
            const bool ok = i < T;
            const int pos = Mask::sorted && ok ? rows[i] : i;
            const size_t row = ((size_t)b * H + h) * T + pos;
            sL[buf * FLASH_BLOCK + tid] = ok ? p.lse[row] * 1.44269504f : INFINITY;
            sD[buf * FLASH_BLOCK + tid] = ok ? p.delta[row] : 0.0f;
            if constexpr (Mask::sorted) {
                sRow[buf * FLASH_BLOCK + tid] = pos;
                sLo[buf * FLASH_BLOCK + tid] = ok ? rlo[i] : 0;
            }
        }
    };

    load_rows_async<Mask, KB, THREADS>(sK, kg, p.kv_st, k0, T, tid, rows);
    load_rows_async<Mask, KB, THREADS>(sV, vg, p.kv_st, k0, T, tid, rows);
    if (total > 0) issue_loads(0, 0);
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();
    uint32_t kf[4][4], vf[4][4];
    load_a_frags(kf, sK, warp * 16, lane);
    load_a_frags(vf, sV, warp * 16, lane);

    float dk[8][4], dv[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) dk[nt][e] = dv[nt][e] = 0.0f;

    for (int it = 0; it < total; it++) {
        const int cur = it & 1, h = hk * p.h_per_kv + it / nq, q0 = (qb_begin + it % nq) * FLASH_BLOCK;
        const bf16 *cQ = sQ + cur * FLASH_BLOCK * FLASH_HD, *cdO = sdO + cur * FLASH_BLOCK * FLASH_HD;
        const float *cL = sL + cur * FLASH_BLOCK, *cD = sD + cur * FLASH_BLOCK;
        const int *cRow = sRow + cur * FLASH_BLOCK, *cLo = sLo + cur * FLASH_BLOCK;
        if (it > 0) {
            cp_async_wait_all();
            __syncthreads();
        }
        if (it + 1 < total) {
            issue_loads(it + 1, cur ^ 1);
            cp_async_commit();
        }
        /* this warp's 16 keys x 64 queries: S^T = K Q^T, dP^T = V dO^T; P^T, dS^T = P^T (dP^T - Delta) */
        float s[8][4], dp[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[nt][e] = dp[nt][e] = 0.0f;
        if (!Mask::none(p, q0, q0 + FLASH_BLOCK, kw0, kw0 + 16)) { /* warp-uniform: skip fully masked tiles */
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
                uint32_t bf[8];
                load_b_frags_nk(bf, cQ, nt, lane);
#pragma unroll
                for (int ks = 0; ks < 4; ks++) mma_bf16(s[nt], kf[ks], bf[2 * ks], bf[2 * ks + 1]);
                load_b_frags_nk(bf, cdO, nt, lane);
#pragma unroll
                for (int ks = 0; ks < 4; ks++) mma_bf16(dp[nt], vf[ks], bf[2 * ks], bf[2 * ks + 1]);
            }
            const bool full = Mask::full(p, q0, q0 + FLASH_BLOCK, kw0, kw0 + 16) && q0 + FLASH_BLOCK <= T;
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int jl = warp * 16 + (lane >> 2) + (e >> 1) * 8, il = nt * 8 + (lane & 3) * 2 + (e & 1);
                    const bool self = Mask::sorted && q0 + il == k0 + jl; /* constant logit: no dS */
                    float pv = exp2f(fmaf(self ? FLASH_SELF_LOGIT : s[nt][e], sl2, -cL[il]));
                    if (!full && (!Mask::allowed(p, q0 + il, k0 + jl, Mask::sorted ? cLo[il] : 0) || q0 + il >= T))
                        pv = 0.0f;
                    s[nt][e] = pv;
                    dp[nt][e] = self ? 0.0f : pv * (dp[nt][e] - cD[il]);
                }
            /* dV += P^T dO, dK += dS^T Q (k = queries) */
#pragma unroll
            for (int ks = 0; ks < 4; ks++) {
                uint32_t ap[4] = {pack_bf16(s[2 * ks][0], s[2 * ks][1]), pack_bf16(s[2 * ks][2], s[2 * ks][3]),
                                  pack_bf16(s[2 * ks + 1][0], s[2 * ks + 1][1]),
                                  pack_bf16(s[2 * ks + 1][2], s[2 * ks + 1][3])};
                uint32_t ad[4] = {pack_bf16(dp[2 * ks][0], dp[2 * ks][1]), pack_bf16(dp[2 * ks][2], dp[2 * ks][3]),
                                  pack_bf16(dp[2 * ks + 1][0], dp[2 * ks + 1][1]),
                                  pack_bf16(dp[2 * ks + 1][2], dp[2 * ks + 1][3])};
#pragma unroll
                for (int pp = 0; pp < 4; pp++) {
                    uint32_t bf[4];
                    load_b_frags_kn(bf, cdO, ks, pp, lane);
                    mma_bf16(dv[2 * pp], ap, bf[0], bf[1]);
                    mma_bf16(dv[2 * pp + 1], ap, bf[2], bf[3]);
                    load_b_frags_kn(bf, cQ, ks, pp, lane);
                    mma_bf16(dk[2 * pp], ad, bf[0], bf[1]);
                    mma_bf16(dk[2 * pp + 1], ad, bf[2], bf[3]);
                }
            }
        }
        if constexpr (!DQ) continue; /* dQ by flash_dq_kernel */
        /* dS^T to shared memory (zeros for a skipped tile), then dQ = dS K over all KB keys:
         * warp w takes queries 16*(w%4) .. +15 and d n-tiles [(w/4)*DQ_NT, +DQ_NT) */
        const int jl = warp * 16 + (lane >> 2);
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            *reinterpret_cast<uint32_t *>(sdS + sw(jl, nt) + (lane & 3) * 2) = pack_bf16(dp[nt][0], dp[nt][1]);
            *reinterpret_cast<uint32_t *>(sdS + sw(jl + 8, nt) + (lane & 3) * 2) = pack_bf16(dp[nt][2], dp[nt][3]);
        }
        __syncthreads();
        const int qg = warp & 3, nt0 = (warp >> 2) * DQ_NT;
        float dq[DQ_NT][4];
#pragma unroll
        for (int nt = 0; nt < DQ_NT; nt++) dq[nt][0] = dq[nt][1] = dq[nt][2] = dq[nt][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < WARPS; ks++) {
            uint32_t a[4];
            const int mi = lane >> 3;
            ldsm_x4_t(a, smem_addr(sdS + sw(16 * ks + (mi >> 1) * 8 + (lane & 7), 2 * qg + (mi & 1))));
#pragma unroll
            for (int pp = 0; pp < DQ_NT / 2; pp++) {
                uint32_t bf[4];
                load_b_frags_kn(bf, sK, ks, nt0 / 2 + pp, lane);
                mma_bf16(dq[2 * pp], a, bf[0], bf[1]);
                mma_bf16(dq[2 * pp + 1], a, bf[2], bf[3]);
            }
        }
        float *dqa = p.dq_accum + ((size_t)b * H + h) * T * FLASH_HD;
        const int ql = qg * 16 + (lane >> 2);
        const size_t r0 = (size_t)(Mask::sorted ? cRow[ql] : q0 + ql) * FLASH_HD;
        const size_t r1 = (size_t)(Mask::sorted ? cRow[ql + 8] : q0 + ql + 8) * FLASH_HD;
#pragma unroll
        for (int nt = 0; nt < DQ_NT; nt++) { /* vector reductions (sm_90): two adjacent columns per instruction */
            int d = (nt0 + nt) * 8 + (lane & 3) * 2;
            if (q0 + ql < T) atomicAdd(reinterpret_cast<float2 *>(dqa + r0 + d), make_float2(dq[nt][0], dq[nt][1]));
            if (q0 + ql + 8 < T) atomicAdd(reinterpret_cast<float2 *>(dqa + r1 + d), make_float2(dq[nt][2], dq[nt][3]));
        }
    }

    /* dK = tau dS^T Q, dV: this warp's 16 keys (write, not accumulate: dk, dv are scratch) */
    bf16 *dkg = p.dk + b * p.kv_sb + hk * p.kv_sh, *dvg = p.dv + b * p.kv_sb + hk * p.kv_sh;
    const int rl = lane >> 2, j0 = kw0 + rl, j1 = j0 + 8;
    const long long r0 = j0 < T ? (Mask::sorted ? rows[j0] : j0) * p.kv_st : 0;
    const long long r1 = j1 < T ? (Mask::sorted ? rows[j1] : j1) * p.kv_st : 0;
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
        int d = nt * 8 + (lane & 3) * 2;
        if (j0 < T) {
            *reinterpret_cast<uint32_t *>(dkg + r0 + d) = pack_bf16(dk[nt][0] * p.tau, dk[nt][1] * p.tau);
            *reinterpret_cast<uint32_t *>(dvg + r0 + d) = pack_bf16(dv[nt][0], dv[nt][1]);
        }
        if (j1 < T) {
            *reinterpret_cast<uint32_t *>(dkg + r1 + d) = pack_bf16(dk[nt][2] * p.tau, dk[nt][3] * p.tau);
            *reinterpret_cast<uint32_t *>(dvg + r1 + d) = pack_bf16(dv[nt][2], dv[nt][3]);
        }
    }
}

/* ------------------------------------------------------------------ deterministic dQ */

/* dQ without atomics (be->deterministic): per (query block, head, batch) block, the forward's tiling and loop over the
 * key blocks the query block sees (K, V double-buffered), recomputing per 64 x 64 tile S = Q K^T, P = exp(tau S - L),
 * dP = dO V^T, dS = P (dP - Delta) (0 on lsh's constant diagonal), and dQ += dS K in registers; then dq_accum += dQ
 * with plain loads and stores: each element has one thread in a launch, so the sum over key blocks has a fixed order
 * and lsh's rounds add in launch order. The key-block kernel (DQ = false) then leaves dQ out. Costs the recomputed
 * S and dP (two of the five tile products) and saves the atomics. */
#define FLASH_DQ_MIN_BLOCKS 2 /* q, dO fragments, dQ, S and dP accumulators: more registers than the forward */

template <class Mask>
__global__ void __launch_bounds__(FLASH_THREADS, FLASH_DQ_MIN_BLOCKS) flash_dq_kernel(const flash_params p) {
    __shared__ __align__(128) bf16 sQ[FLASH_BLOCK * FLASH_HD];
    __shared__ __align__(128) bf16 sdO[FLASH_BLOCK * FLASH_HD];
    __shared__ __align__(128) bf16 sK[2][FLASH_BLOCK * FLASH_HD];
    __shared__ __align__(128) bf16 sV[2][FLASH_BLOCK * FLASH_HD];
    const flash_qblock<Mask> qb(p);
    const int warp = qb.warp, lane = qb.lane, h = qb.h, b = qb.b, T = p.T, H = p.H, q0 = qb.q0, q1 = qb.q1;
    qb.load_rows(sQ, p.q + b * p.q_sb + h * p.q_sh, p.q_st, q0);
    qb.load_rows(sdO, p.dout + b * p.o_sb + h * p.o_sh, p.o_st, q0);
    qb.load_first_kv(sK[0], sV[0]);
    /* this thread's rows i0 = q0 + 16 warp + lane/4 and i0 + 8: their positions, L (log2 units; +inf past T, so P = 0
     * there), Delta and, in sorted space, first key */
    const int i0 = q0 + warp * 16 + (lane >> 2);
    int pos[2], lo[2] = {0, 0};
    float Lr[2], Dr[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int i = i0 + 8 * r;
        const bool ok = i < T;
        pos[r] = Mask::sorted && ok ? qb.rows[i] : i;
        const size_t row = ((size_t)b * H + h) * T + pos[r];
        Lr[r] = ok ? p.lse[row] * 1.44269504f : INFINITY;
        Dr[r] = ok ? p.delta[row] : 0.0f;
        if constexpr (Mask::sorted) lo[r] = ok ? p.row_lo[((size_t)b * H + h) * T + i] : 0;
    }
    cp_async_commit();
    cp_async_wait_all();
    __syncthreads();
    uint32_t qf[4][4], df[4][4];
    load_a_frags(qf, sQ, warp * 16, lane);
    load_a_frags(df, sdO, warp * 16, lane);

    float dq[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; nt++) dq[nt][0] = dq[nt][1] = dq[nt][2] = dq[nt][3] = 0.0f;
    const float sl2 = p.scale_log2;

    for (int kb = qb.kb_begin; kb < qb.kb_end; kb++) {
        const int cur = (kb - qb.kb_begin) & 1, k0 = kb * FLASH_BLOCK;
        qb.next_kv(kb, sK, sV);
        /* S = Q K^T and dP = dO V^T (16 x 64 per warp) */
        float s[8][4], dp[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
            dp[nt][0] = dp[nt][1] = dp[nt][2] = dp[nt][3] = 0.0f;
            uint32_t bf[8];
            load_b_frags_nk(bf, sK[cur], nt, lane);
#pragma unroll
            for (int ks = 0; ks < 4; ks++) mma_bf16(s[nt], qf[ks], bf[2 * ks], bf[2 * ks + 1]);
            load_b_frags_nk(bf, sV[cur], nt, lane);
#pragma unroll
            for (int ks = 0; ks < 4; ks++) mma_bf16(dp[nt], df[ks], bf[2 * ks], bf[2 * ks + 1]);
        }
        /* dS = P (dP - Delta) into s */
        const bool full = Mask::full(p, q0, q1, k0, k0 + FLASH_BLOCK);
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int r = e >> 1, i = i0 + 8 * r, j = k0 + nt * 8 + (lane & 3) * 2 + (e & 1);
                const bool self = Mask::sorted && i == j; /* constant logit: no dS */
                float pv = exp2f(fmaf(self ? FLASH_SELF_LOGIT : s[nt][e], sl2, -Lr[r]));
                if (!full && !Mask::allowed(p, i, j, lo[r])) pv = 0.0f;
                s[nt][e] = self ? 0.0f : pv * (dp[nt][e] - Dr[r]);
            }
        mma_acc_a_kn(dq, s, sK[cur], lane); /* dQ += dS K: dS from the accumulators, as the forward's P */
    }

    float *dqa = p.dq_accum + ((size_t)b * H + h) * T * FLASH_HD;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        if (i0 + 8 * r >= T) continue;
        float *row = dqa + (size_t)pos[r] * FLASH_HD + (lane & 3) * 2;
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            float2 *d = reinterpret_cast<float2 *>(row + nt * 8), v = *d;
            v.x += dq[nt][2 * r];
            v.y += dq[nt][2 * r + 1];
            *d = v;
        }
    }
}

/* ------------------------------------------------------------------ launches */

/* grid (query blocks, H, B) */
template <class Mask>
static inline ab_status flash_launch_forward(ab_backend *be, const flash_params &p) {
    dim3 grid((p.T + FLASH_BLOCK - 1) / FLASH_BLOCK, p.H, p.B);
    flash_forward_kernel<Mask><<<grid, FLASH_THREADS, 0, cuda_stream(be)>>>(p);
    return cuda_check_launch("flash_forward");
}

/* grid (key blocks, KV heads, B); dk, dv written, dq added to dq_accum: by the same kernel through atomics, or, when
 * the backend is deterministic, by flash_dq_kernel on grid (query blocks, H, B) */
template <class Mask, bool DQ>
static inline ab_status flash_launch_kv_backward(ab_backend *be, const flash_params &p) {
    CUDA_TRY(cudaFuncSetAttribute(flash_backward_kernel<Mask, FLASH_BWD_WARPS, DQ>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, FLASH_BWD_SMEM),
             "flash backward shared memory");
    dim3 grid((p.T + FLASH_BWD_KEYS - 1) / FLASH_BWD_KEYS, p.H / p.h_per_kv, p.B);
    flash_backward_kernel<Mask, FLASH_BWD_WARPS, DQ><<<grid, FLASH_BWD_WARPS * 32, FLASH_BWD_SMEM, cuda_stream(be)>>>(p);
    return cuda_check_launch("flash_backward");
}

template <class Mask>
static inline ab_status flash_launch_backward(ab_backend *be, const flash_params &p) {
    if (!be->deterministic) return flash_launch_kv_backward<Mask, true>(be, p);
    AB_TRY((flash_launch_kv_backward<Mask, false>(be, p)));
    dim3 grid((p.T + FLASH_BLOCK - 1) / FLASH_BLOCK, p.H, p.B);
    flash_dq_kernel<Mask><<<grid, FLASH_THREADS, 0, cuda_stream(be)>>>(p);
    return cuda_check_launch("flash_dq");
}

/* Before a backward: delta (B,H,T) = rowsum(dO * O) over the 64 columns of each head (dout, o (B,T,H*64) bf16),
 * dq_accum (B,H,T,64) = 0. (attn_flash.cu) */
ab_status flash_bwd_prepare(ab_backend *be, float *delta, float *dq_accum, const void *dout, const void *o, int B, int T,
                            int H);

#endif
