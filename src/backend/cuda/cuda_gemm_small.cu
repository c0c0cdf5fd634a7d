/*
 * cuda_gemm_small.cu — the Conv1D forward products with few rows (decode: M = batch <= CUDA_SMALL_M), which
 * cuBLASLt's tile kernels run far below bandwidth: out (M,OC) = inp (M,K) @ W (K,OC) + bias (OC, may be NULL), with
 * the epilogues of the op table: plain, + residual (M,OC), GELU (pre (M,OC) = the sum, out = gelu(pre)); and, as the
 * launch's tail (small_m_tail), the decode step's KV append (out's key and value columns also into the cache slot of
 * the position the device holds). At one row, a chain of such products as one launch with grid-wide barriers between
 * them (cuda_small_m_chain, below the single product). Two products of one input may be one launch, or one step of a
 * chain (a pair: mla's q and latent, the second's columns after the first's). Also the decode step's next-token
 * logits x @ wte^T (cuda_logits_small_m, at the end), with ln_f folded in at one row.
 * Such a product is bound by reading W (K,OC) bf16 once, so the kernel streams it with coalesced 16-byte loads and
 * spreads it over enough blocks to keep every SM's loads in flight.
 *
 * Work layout. A block of SM_THREADS = 256 threads owns a tile of SM_TILE = 64 columns of W and a range of at most
 * SM_MAX_ROWS = 512 rows of K (split s: rows s*rows .. (s+1)*rows - 1): thread t loads the 8 columns 8*(t % 8) ..
 * 8*(t % 8) + 7 of the tile (16 bytes) in rows t/8, t/8 + 32, ... of the range, SM_UNROLL loads in flight per thread,
 * so one warp instruction reads four whole 128-byte row segments. The x rows of the range (M x rows, tiny) are in
 * shared memory as fp32; each thread accumulates MR x 8 fp32 sums (MR = M rounded up to a power of two, the rows
 * past M are zeros). Reduction in a fixed order: the 4 row slots of a warp by shuffles, the 8 warps in shared memory.
 * Grid (tiles, splits): K is split across blocks until there are about SM_BLOCKS_PER_SM blocks per SM (a 768-wide
 * output has only 12 tiles), at most SM_MAX_CLUSTER: a tile's splits are one thread-block cluster, each block stores
 * its (M, 64) sums into the cluster's first block's shared memory (distributed shared memory), which adds them in
 * split order and applies the epilogue: no partials through global memory, no counter;
 * deterministic, one launch, nothing allocated, nothing depending on the host beyond the shape (safe to record in a
 * CUDA graph).
 *
 * Programmatic dependent launch (ci->pdl: sm_90+, unless AB_CUDA_PDL=0). A decode step is a chain of short kernels,
 * each waiting for the one before. Every kernel of the chain (the products, the LayerNorms, the decode attention
 * kernels) is launched with programmatic stream serialization (cuda_launch_dependent) and releases its successor
 * early (pdl_release): the blocks of a product are scheduled while the kernel before it finishes, request their
 * first rows of W (constant) into registers, and then wait (pdl_wait) for x and the residual, so both the launch gap
 * and the first W latency are hidden. Measured on an H200, flash decode at batch 1: 0.466 -> 0.452 ms for the PDL of
 * the products; 0.447 -> 0.423 ms for the rest of the chain launched so (with the LayerNorm row held in registers),
 * then 0.405 ms with W requested before the wait. Sending the block's slice of W towards L2 before the wait
 * (prefetch.global.L2) instead made the step slower, 0.452 -> 0.478 ms (docs/PERF.md). The bias and the folded
 * LayerNorm's weight and bias are requested before the wait too, the residual right after it (with the kv_decode
 * and linear decode changes of the same commit, 0.318 -> 0.300 ms).
 */
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

#define SM_THREADS 256
#define SM_TILE 64                          /* columns of W per block */
#define SM_CHUNKS (SM_TILE / 8)             /* 16-byte chunks per tile row: threads per row */
#define SM_SLOTS (SM_THREADS / SM_CHUNKS)   /* rows read by one pass of the block: 32 */
#define SM_MAX_ROWS 512                     /* rows per block: x (MR x 512 fp32) and the warps' sums fit in 32 KB */
#define SM_UNROLL 4                         /* loads in flight per thread */
#define SM_BLOCKS_PER_SM 2
#define SM_MAX_CLUSTER 16                   /* splits of a tile: one thread-block cluster (Hopper: up to 16) */

/* A second product of the same input in the same launch (cuda_gemm_small_m_pair, a chain's pair step): the columns
 * past the first product's OC are out (M,OC) = in @ w (K,OC), plain, no bias */
typedef struct {
    bf16 *out;
    const bf16 *w;
    int OC;
} small_m_second;

typedef struct {
    bf16 *out, *pre;                     /* (M,OC); pre only for GELU */
    const bf16 *inp, *w, *bias, *residual; /* (M,K), (K,OC), (OC) or NULL, (M,OC) for RESIDUAL */
    const bf16 *ln_w, *ln_b;             /* (K): the product's input is LN(inp) with them; NULL: inp itself */
    small_m_tail tail;                   /* the cache append; zeros: none */
    small_m_second second;               /* w NULL: none */
    int M, K, OC, rows, splits;
    small_m_epilogue ep;
} small_m_params;

/* element (m, col) of the outputs from v, its sum with the bias and (SMALL_M_RESIDUAL) the residual added: the
 * kernels request those early (small_m_bias, small_m_residual), so that their latency is not at the end */
__device__ __forceinline__ void small_m_store(const small_m_params &p, int m, int col, float v) {
    const size_t i = (size_t)m * p.OC + col;
    if (p.ep == SMALL_M_GELU) {
        p.pre[i] = f2bf(v);
        v = gelu_tanh(v);
    }
    const bf16 o = f2bf(v);
    p.out[i] = o;
    const int kc = col - p.tail.koff;
    if (p.tail.cache && kc >= 0 && kc < p.tail.KV) {
        const int pos = *p.tail.pos;
        ((bf16 *)p.tail.cache)[((size_t)(pos % p.tail.cap) * p.M + m) * p.tail.KV + kc] = o;
    }
}

/* What small_m_store's v adds to the sum of element (m, col): the bias (constant: requested before the
 * programmatic-launch wait) and, after the wait, the residual, read from L2 (the chain kernel's residuals are written
 * by other blocks of the same launch). */
__device__ __forceinline__ float small_m_bias(const small_m_params &p, int col) { return p.bias ? bf2f(p.bias[col]) : 0.0f; }
__device__ __forceinline__ float small_m_residual(const small_m_params &p, int m, int col) {
    return p.ep == SMALL_M_RESIDUAL ? bf2f(__ldcg(p.residual + (size_t)m * p.OC + col)) : 0.0f;
}

/* u[j] = the thread's 16 bytes of W row k + j * SM_SLOTS of the block's range (zeros past nk or past OC) */
__device__ __forceinline__ void small_m_load_w(uint4 u[SM_UNROLL], const uint4 *wp, size_t row_stride, int k, int nk,
                                               bool on) {
#pragma unroll
    for (int j = 0; j < SM_UNROLL; j++) {
        const int kk = k + j * SM_SLOTS;
        u[j] = on && kk < nk ? __ldcs(wp + kk * row_stride) : make_uint4(0u, 0u, 0u, 0u); /* W is streamed once */
    }
}

/* LayerNorm statistics of one row of K columns, which every block of a folded product computes for itself (1.5 KB):
 * st[0] = mean, st[1] = rstd, fp32, two passes as layernorm_forward (the mean, then the squares about it), from thread
 * t's 16-byte chunk t of the row in v (`on`: t < K/8; K <= 8 * SM_THREADS, K % 8 == 0: cuda_gemm_small_m_takes); red
 * holds the warps' partial sums. Every thread of the block calls it (small_m_ln_row). */
__device__ void small_m_ln_stats(const float v[8], bool on, int K, float red[SM_THREADS / 32], float st[2]) {
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    for (int pass = 0; pass < 2; pass++) {
        float s = 0.0f;
        if (on)
#pragma unroll
            for (int e = 0; e < 8; e++) s += pass == 0 ? v[e] : (v[e] - st[0]) * (v[e] - st[0]);
        s = warp_sum(s);
        if (lane == 0) red[warp] = s;
        __syncthreads();
        if (tid == 0) {
            float t = 0.0f;
#pragma unroll
            for (int w = 0; w < SM_THREADS / 32; w++) t += red[w];
            st[pass] = pass == 0 ? t / K : rsqrtf(t / K + LN_EPS);
        }
        __syncthreads();
    }
}

/* thread t's 16-byte chunk t of the row into v, read from L2 (the chain kernel's rows are written by other blocks of
 * the same launch), then the row's statistics (small_m_ln_stats): the row is one memory round trip. Returns whether
 * the thread holds a chunk. Every thread of the block calls it. */
__device__ __forceinline__ bool small_m_ln_row(float v[8], const bf16 *row, int K, float red[SM_THREADS / 32],
                                               float st[2]) {
    const bool on = (int)threadIdx.x < K / 8;
    unpack8(v, on ? __ldcg(reinterpret_cast<const uint4 *>(row) + threadIdx.x) : make_uint4(0u, 0u, 0u, 0u));
    small_m_ln_stats(v, on, K, red, st);
    return on;
}

/* an element of LN(row) from v with the LayerNorm's weight w and bias b there: the bf16 value layernorm_forward would
 * have written, as fp32 */
__device__ __forceinline__ float small_m_ln_apply(float v, const float st[2], float w, float b) {
    return bf2f(f2bf((v - st[0]) * st[1] * w + b));
}

template <int MR>
__global__ void __launch_bounds__(SM_THREADS) small_m_kernel(small_m_params first) {
    __shared__ float sh[MR * SM_MAX_ROWS]; /* x [m][k - k0] (row stride nk), then the warps' sums [warp][m][SM_TILE] */
    /* the block's product: the first, or past its tiles the second (plain: no bias, no append) */
    const int tiles0 = first.OC / SM_TILE;
    const bool in_second = first.second.w && (int)blockIdx.x >= tiles0;
    small_m_params p = first;
    if (in_second) {
        p.out = first.second.out;
        p.w = first.second.w;
        p.OC = first.second.OC;
        p.bias = NULL;
        p.tail.cache = NULL;
    }
    const int tile = in_second ? blockIdx.x - tiles0 : blockIdx.x, split = blockIdx.y, tid = threadIdx.x;
    const int chunk = tid % SM_CHUNKS, slot = tid / SM_CHUNKS, lane = tid % 32, warp = tid / 32;
    const int k0 = split * p.rows, nk = min(p.rows, p.K - k0), col = tile * SM_TILE + chunk * 8;
    /* Launched programmatically, this runs while the kernel before it finishes: let the next kernel's blocks be
     * scheduled too; request the thread's first SM_UNROLL rows of W (constant: allowed before the wait), so that their
     * latency overlaps the wait and the staging of x (each pass then requests the next rows before it uses the ones
     * it holds); then wait for x and the residual, which earlier kernels write. */
    pdl_release();
    if (gridDim.y > 1) cluster_gather_open();
    const bool on = col < p.OC;
    const uint4 *wp = reinterpret_cast<const uint4 *>(p.w + (size_t)k0 * p.OC + col);
    const size_t row_stride = (size_t)p.OC / 8; /* in uint4 */
    uint4 u[SM_UNROLL];
    small_m_load_w(u, wp, row_stride, slot, nk, on);
    /* the other constants: the bias of the thread's epilogue element (tid < M x SM_TILE: one at most) and the folded
     * LayerNorm's weight and bias at the thread's staging elements k0 + tid + j * SM_THREADS */
    const int em = tid / SM_TILE, ecol = tile * SM_TILE + tid % SM_TILE;
    const bool eon = tid < p.M * SM_TILE && ecol < p.OC;
    float add = eon ? small_m_bias(p, ecol) : 0.0f;
    const bool folds_ln = MR == 1 && p.ln_w;
    float lnw[SM_MAX_ROWS / SM_THREADS], lnb[SM_MAX_ROWS / SM_THREADS];
#pragma unroll
    for (int j = 0; j < SM_MAX_ROWS / SM_THREADS; j++) {
        const int k = tid + j * SM_THREADS;
        lnw[j] = folds_ln && k < nk ? bf2f(p.ln_w[k0 + k]) : 0.0f;
        lnb[j] = folds_ln && k < nk ? bf2f(p.ln_b[k0 + k]) : 0.0f;
    }
    pdl_wait();
    if (eon) add += small_m_residual(p, em, ecol);
    __shared__ float ln_red[SM_THREADS / 32], ln_st[2]; /* a folded LayerNorm (one row): partial sums; mean, rstd */
    if (folds_ln) {
        float v[8];
        small_m_ln_row(v, p.inp, p.K, ln_red, ln_st);
    }
#pragma unroll
    for (int j = 0; j < SM_MAX_ROWS / SM_THREADS * MR; j++) { /* i = tid + j * SM_THREADS < MR * nk */
        const int i = tid + j * SM_THREADS, m = i / nk, k = i % nk;
        if (i >= MR * nk) break;
        float v = m < p.M ? bf2f(p.inp[(size_t)m * p.K + k0 + k]) : 0.0f;
        if constexpr (MR == 1) /* k = tid + j * SM_THREADS */
            if (folds_ln) v = small_m_ln_apply(v, ln_st, lnw[j], lnb[j]);
        sh[i] = v;
    }
    __syncthreads();
    float acc[MR][8];
#pragma unroll
    for (int m = 0; m < MR; m++)
#pragma unroll
        for (int e = 0; e < 8; e++) acc[m][e] = 0.0f;
    for (int k = slot; on && k < nk; k += SM_SLOTS * SM_UNROLL) {
        uint4 cur[SM_UNROLL];
#pragma unroll
        for (int j = 0; j < SM_UNROLL; j++) cur[j] = u[j];
        small_m_load_w(u, wp, row_stride, k + SM_SLOTS * SM_UNROLL, nk, on);
#pragma unroll
        for (int j = 0; j < SM_UNROLL; j++) {
            const int kk = k + j * SM_SLOTS;
            if (kk >= nk) break;
            float wv[8];
            unpack8(wv, cur[j]);
#pragma unroll
            for (int m = 0; m < MR; m++) {
                const float xv = sh[m * nk + kk];
#pragma unroll
                for (int e = 0; e < 8; e++) acc[m][e] = fmaf(xv, wv[e], acc[m][e]);
            }
        }
    }
    __syncthreads(); /* x is read: sh holds the warps' sums from here */
#pragma unroll
    for (int m = 0; m < MR; m++)
#pragma unroll
        for (int e = 0; e < 8; e++) { /* lanes l, l^8, l^16, l^24 hold the same columns */
            float v = acc[m][e];
            v += __shfl_xor_sync(0xffffffffu, v, 8);
            v += __shfl_xor_sync(0xffffffffu, v, 16);
            acc[m][e] = v;
        }
    if (lane < SM_CHUNKS)
#pragma unroll
        for (int m = 0; m < MR; m++)
#pragma unroll
            for (int e = 0; e < 8; e++) sh[(warp * MR + m) * SM_TILE + chunk * 8 + e] = acc[m][e];
    __syncthreads();
    static_assert(CUDA_SMALL_M * SM_TILE <= SM_THREADS, "an epilogue element per thread");
    float v = 0.0f; /* element (em, ecol): i = tid */
    if (eon)
#pragma unroll
        for (int w = 0; w < SM_THREADS / 32; w++) v += sh[(w * MR + em) * SM_TILE + tid % SM_TILE];
    if (p.splits == 1) {
        if (eon) small_m_store(p, em, ecol, v + add);
        return;
    }
    /* the tile's splits are one cluster (1, splits), rank = split: each block's sums go to slot `split` of the
     * first block's inbox, which adds them in split order (the cluster gather of cuda_common.cuh) */
    __shared__ float inbox[SM_MAX_CLUSTER * MR * SM_TILE];
    cluster_gather_begin();
    if (eon) cluster_shared(inbox, 0)[split * MR * SM_TILE + tid] = v;
    cluster_gather_end();
    if (split != 0 || !eon) return;
    cluster_gather_collect();
    v = 0.0f;
    for (int s = 0; s < p.splits; s++) v += inbox[s * MR * SM_TILE + tid];
    small_m_store(p, em, ecol, v + add);
}

/* The grid of a product: tiles of SM_TILE columns, K split in `splits` ranges of `rows` rows (a multiple of a pass):
 * as few splits as the shared memory allows, more until the grid fills the GPU. False when the kernel does not take
 * the shape. */
static bool small_m_plan(const cuda_impl *ci, int M, int K, int OC, const void *weight, const void *inp, int folds_ln,
                         int *tiles, int *splits, int *rows) {
    if (M < 1 || M > CUDA_SMALL_M || K < 1 || OC < 8 || OC % 8 || ((uintptr_t)weight & 15)) return false;
    /* A LayerNorm is folded into one row only: with 4 rows (batch 4 x 8192 positions) the step was 0.07 ms slower than
     * with the LayerNorms as kernels of their own, at 1 row 0.01-0.02 ms faster (docs/PERF.md). small_m_ln_row
     * reads a 16-byte chunk of the row per thread. */
    if (folds_ln && (M != 1 || K % 8 || K > 8 * SM_THREADS || ((uintptr_t)inp & 15))) return false;
    *tiles = ceil_div(OC, SM_TILE);
    int s = ceil_div(K, SM_MAX_ROWS), fill = ceil_div(SM_BLOCKS_PER_SM * ci->sm_count, *tiles);
    if (s > SM_MAX_CLUSTER || *tiles > 65535) return false; /* a tile's splits are one cluster */
    if (fill > s) s = fill < SM_MAX_CLUSTER ? fill : SM_MAX_CLUSTER;
    *rows = ceil_div(ceil_div(K, s), SM_SLOTS) * SM_SLOTS;
    *splits = ceil_div(K, *rows);
    return true;
}

bool cuda_gemm_small_m_takes(ab_backend *be, int M, int K, int OC, const void *weight, const void *inp, int folds_ln) {
    int tiles, splits, rows;
    return small_m_plan(cuda_of(be), M, K, OC, weight, inp, folds_ln, &tiles, &splits, &rows);
}

/* Plans p's grid (splits, rows) for all of its columns (a pair's two products together) and launches it; *done = 0
 * where the kernel does not take the shape */
static ab_status small_m_launch(ab_backend *be, small_m_params *p, int *done) {
    int tiles;
    if (!small_m_plan(cuda_of(be), p->M, p->K, p->OC + p->second.OC, p->w, p->inp, p->ln_w != NULL, &tiles, &p->splits,
                      &p->rows))
        return AB_OK;
    /* programmatic dependent launch where the backend has it (see the prologue of small_m_kernel), a tile's splits one
     * cluster */
    void (*kernel)(small_m_params) = p->M == 1 ? small_m_kernel<1> : p->M == 2 ? small_m_kernel<2> : small_m_kernel<4>; /* M = 3, 4 */
    AB_TRY(cuda_launch(be, "small-M matmul", kernel, dim3((unsigned)tiles, (unsigned)p->splits), dim3(1, (unsigned)p->splits),
                       dim3(SM_THREADS), 0, 1, *p));
    *done = 1;
    return AB_OK;
}

/* the fields every product has (the small-M launches and the chain's steps) */
static small_m_params small_m_product(void *out, const void *inp, const ab_layernorm_input *ln, const void *weight, int M,
                                      int K, int OC) {
    small_m_params p;
    memset(&p, 0, sizeof p);
    p.out = (bf16 *)out;
    p.inp = (const bf16 *)inp; p.w = (const bf16 *)weight;
    p.ln_w = ln ? (const bf16 *)ln->w : NULL; p.ln_b = ln ? (const bf16 *)ln->b : NULL;
    p.M = M; p.K = K; p.OC = OC;
    return p;
}

ab_status cuda_gemm_small_m(ab_backend *be, small_m_epilogue ep, void *out, void *pre, const void *inp,
                            const ab_layernorm_input *ln, const void *weight, const void *bias, const void *residual,
                            const small_m_tail *tail, int M, int K, int OC, int *done) {
    *done = 0;
    small_m_params p = small_m_product(out, inp, ln, weight, M, K, OC);
    p.pre = (bf16 *)pre; p.bias = (const bf16 *)bias; p.residual = (const bf16 *)residual;
    if (tail) p.tail = *tail;
    p.ep = ep;
    return small_m_launch(be, &p, done);
}

/* whether a pair's second product (OC2 > 0) may follow the first: its width a multiple of 8, its W given and 16-byte
 * aligned */
static bool small_m_second_ok(int OC2, const void *weight2) {
    return weight2 && OC2 % 8 == 0 && !((uintptr_t)weight2 & 15);
}

ab_status cuda_gemm_small_m_pair(ab_backend *be, void *out, const void *weight, int OC, void *out2, const void *weight2,
                                 int OC2, const void *inp, const ab_layernorm_input *ln, int M, int K, int *done) {
    *done = 0;
    if (OC % SM_TILE || OC2 < 1 || !small_m_second_ok(OC2, weight2)) return AB_OK;
    small_m_params p = small_m_product(out, inp, ln, weight, M, K, OC);
    p.second.out = (bf16 *)out2; p.second.w = (const bf16 *)weight2; p.second.OC = OC2;
    return small_m_launch(be, &p, done);
}

/* ---- one launch for a chain of dependent single-row products (cuda_small_m_chain) ----
 * At batch 1 a decode step is a chain of kernels, each a few microseconds of latency (launch, the wait for the whole
 * grid before it, the first loads of W) around about a microsecond of bandwidth. A block's attn.c_proj, ln_2 + c_fc +
 * GELU and mlp.c_proj (and the next block's c_attn, where its variant has it as its first product) are one launch
 * here: grid-wide barriers between the steps instead of kernel boundaries, and every step's constants requested
 * ahead, so that a step after a barrier finds them in shared memory and only waits for its input row.
 *
 * Work layout. Step i's output columns are chunks of 8 (16 bytes of a W row); block b owns chunks b*U_i .. b*U_i +
 * U_i - 1 over all K_i rows (U_i a power of two, the fewest that keep the blocks at most one per SM), so no step's sums
 * cross blocks: one block adds each output in a fixed order, deterministic. Every step's constants, the block's slices
 * of W and of the bias and the folded LayerNorm's weight and bias, are copied into shared memory (cp.async, one commit
 * group per step) before the programmatic-launch wait (they read only parameters), while the kernel before this one
 * finishes: 175 KB a block for GPT-2 124M's four steps. (Copying each step's one step ahead instead made a flash
 * decode step at batch 1 0.260 -> 0.324 ms on an H200: presumably a step's 4.7 MB of W were not in by its start.)
 * Step i: request the residual of the thread's epilogue element, stage the input row as fp32 in shared memory (from
 * L2: another block wrote it; the LayerNorm folded as in small_m_kernel), wait for the step's group, thread t takes
 * chunk t % U_i and rows t / U_i + j * (CH_THREADS / U_i), the lanes of a chunk are added by shuffles and the warps in
 * order, and the epilogue is small_m_store's. Then the barrier.
 *
 * The barrier (chain_grid_sync) needs every block resident at once: the grid is at most one block per SM and the
 * host checks that the occupancy allows it. Blocks of this kernel never wait for a later kernel, and the kernels
 * before it end without waiting for it, so the ones still to be scheduled get their SMs. */
#define CH_THREADS SM_THREADS /* small_m_ln_row's block */
#define CH_MAX_UNITS 8        /* chunks of a step per block */

typedef struct {
    small_m_params s[CUDA_CHAIN_MAX_STEPS]; /* M = 1, splits = 1 */
    int units[CUDA_CHAIN_MAX_STEPS];        /* U_i */
    /* step i's constants in dynamic shared memory, in uint4: the block's slice of W_i (U_i x K_i), of its bias (U_i),
     * the LayerNorm's weight then bias (2 x K_i / 8) */
    int woff[CUDA_CHAIN_MAX_STEPS], boff[CUDA_CHAIN_MAX_STEPS], lnoff[CUDA_CHAIN_MAX_STEPS];
    int roff;                               /* the warps' sums (8 warps x U x 8 floats), in uint4 */
    int n;
    unsigned *bar;
} chain_params;

/* Every block of the grid meets here; what any block wrote before is visible to all after (read it from L2). One
 * word *bar: block 0 adds 2^31 - (blocks - 1), every other block 1, so its top bit flips when the last block arrives
 * and its low bits come back to what they were: nothing to reset, and a replayed graph finds the word as it was. The
 * add is a release at GPU scope (the block's writes, ordered before it by the __syncthreads), the polls acquires. */
__device__ __forceinline__ void chain_grid_sync(unsigned *bar) {
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned add = blockIdx.x == 0 ? 0x80000000u - (gridDim.x - 1) : 1u;
        unsigned old, now;
        asm volatile("atom.release.gpu.global.add.u32 %0, [%1], %2;" : "=r"(old) : "l"(bar), "r"(add) : "memory");
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(now) : "l"(bar) : "memory");
        } while (((old ^ now) & 0x80000000u) == 0);
    }
    __syncthreads();
}

/* step i's constants into shared memory as one commit group */
__device__ __forceinline__ void chain_copy_step(const chain_params &p, uint4 *dsh, int i) {
    const small_m_params &s = p.s[i];
    const int U = p.units[i], nch = s.OC / 8, nch2 = s.second.OC / 8, c0 = blockIdx.x * U, tid = threadIdx.x;
    const uint4 *w = reinterpret_cast<const uint4 *>(s.w), *w2 = reinterpret_cast<const uint4 *>(s.second.w);
    for (int j = tid; j < U * s.K; j += CH_THREADS) {
        const int k = j / U, c = c0 + j % U; /* chunk c: the first product's, or past them the pair's second */
        if (c < nch) cp_async16(smem_addr(dsh + p.woff[i] + j), w + (size_t)k * nch + c, true);
        else if (c < nch + nch2) cp_async16(smem_addr(dsh + p.woff[i] + j), w2 + (size_t)k * nch2 + (c - nch), true);
    }
    if (s.bias && tid < U && c0 + tid < nch)
        cp_async16(smem_addr(dsh + p.boff[i] + tid), reinterpret_cast<const uint4 *>(s.bias) + c0 + tid, true);
    if (s.ln_w)
        for (int j = tid; j < s.K / 4; j += CH_THREADS) {
            const int k8 = s.K / 8;
            cp_async16(smem_addr(dsh + p.lnoff[i] + j), reinterpret_cast<const uint4 *>(j < k8 ? s.ln_w : s.ln_b) + j % k8, true);
        }
    cp_async_commit();
}

/* waits for the commit groups of steps 0..i (of n: at most n - 1 - i younger ones still in flight) */
__device__ __forceinline__ void chain_wait_step(int i, int n) {
    switch (n - 1 - i) {
    case 0: cp_async_wait<0>(); break;
    case 1: cp_async_wait<1>(); break;
    case 2: cp_async_wait<2>(); break;
    default: cp_async_wait<3>(); break;
    }
}

__global__ void __launch_bounds__(CH_THREADS) small_m_chain_kernel(const __grid_constant__ chain_params p) {
    extern __shared__ uint4 dsh[]; /* x (max K fp32) | the steps' constants | the warps' sums */
    float *x = reinterpret_cast<float *>(dsh), *red = reinterpret_cast<float *>(dsh + p.roff);
    __shared__ float ln_red[CH_THREADS / 32], ln_st[2];
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    pdl_release();
    for (int i = 0; i < p.n; i++) chain_copy_step(p, dsh, i); /* parameters only: before the wait */
    pdl_wait();
    for (int i = 0; i < p.n; i++) {
        if (i > 0) chain_grid_sync(p.bar);
        const small_m_params &s = p.s[i];
        const int U = p.units[i], nch = (s.OC + s.second.OC) / 8; /* a pair's second product after the first */
        if ((int)blockIdx.x * U >= nch) continue; /* no columns of this step (uniform over the block) */
        const int ecol = (blockIdx.x * U + tid / 8) * 8 + tid % 8; /* the thread's epilogue element, tid < 8U */
        const bool eon = tid < U * 8 && ecol < nch * 8;
        const float res = eon ? small_m_residual(s, 0, ecol) : 0.0f;
        const uint4 *in = reinterpret_cast<const uint4 *>(s.inp);
        if (s.ln_w) { /* K <= 8 * CH_THREADS: a chunk per thread at most; the group holds the LayerNorm's constants */
            float v[8];
            const bool on = small_m_ln_row(v, s.inp, s.K, ln_red, ln_st);
            chain_wait_step(i, p.n);
            __syncthreads();
            if (on) {
                float w[8], b[8];
                unpack8(w, dsh[p.lnoff[i] + tid]);
                unpack8(b, dsh[p.lnoff[i] + s.K / 8 + tid]);
#pragma unroll
                for (int e = 0; e < 8; e++) x[8 * tid + e] = small_m_ln_apply(v[e], ln_st, w[e], b[e]);
            }
        } else {
            for (int c = tid; c < s.K / 8; c += CH_THREADS) {
                float v[8];
                unpack8(v, __ldcg(in + c));
#pragma unroll
                for (int e = 0; e < 8; e++) x[8 * c + e] = v[e];
            }
            chain_wait_step(i, p.n);
        }
        __syncthreads();
        const int c = tid % U, slots = CH_THREADS / U;
        const bool on = (int)blockIdx.x * U + c < nch;
        const uint4 *ws = dsh + p.woff[i];
        float acc[8];
#pragma unroll
        for (int e = 0; e < 8; e++) acc[e] = 0.0f;
        for (int k = tid / U; on && k < s.K; k += slots) {
            float wv[8];
            unpack8(wv, ws[k * U + c]);
            const float xv = x[k];
#pragma unroll
            for (int e = 0; e < 8; e++) acc[e] = fmaf(xv, wv[e], acc[e]);
        }
        for (int off = U; off < 32; off <<= 1) /* lanes l, l + U, l + 2U, ... hold chunk l % U */
#pragma unroll
            for (int e = 0; e < 8; e++) acc[e] += __shfl_xor_sync(0xffffffffu, acc[e], off);
        if (lane < U)
#pragma unroll
            for (int e = 0; e < 8; e++) red[(warp * U + lane) * 8 + e] = acc[e];
        __syncthreads();
        if (eon) {
            float v = 0.0f;
#pragma unroll
            for (int w = 0; w < CH_THREADS / 32; w++) v += red[(w * U + tid / 8) * 8 + tid % 8];
            if (ecol >= s.OC) { /* the pair's second product: plain */
                s.second.out[ecol - s.OC] = f2bf(v);
            } else {
                const float bias = s.bias ? bf2f(reinterpret_cast<const bf16 *>(dsh + p.boff[i])[tid]) : 0.0f;
                small_m_store(s, 0, ecol, v + bias + res);
            }
        }
    }
}

ab_status cuda_small_m_chain(ab_backend *be, const small_m_step *steps, int n, int *done) {
    cuda_impl *ci = cuda_of(be);
    *done = 0;
    if (!ci->chain || n < 1 || n > CUDA_CHAIN_MAX_STEPS) return AB_OK;
    chain_params p;
    memset(&p, 0, sizeof p);
    int grid = 1, xmax = 0, maxu = 1;
    size_t off = 0; /* uint4, after x */
    for (int i = 0; i < n; i++) {
        const small_m_step *st = &steps[i];
        const uintptr_t consts = (uintptr_t)st->bias | (st->ln ? (uintptr_t)st->ln->w | (uintptr_t)st->ln->b : 0);
        const int OC2 = st->OC2; /* a pair (OC2 > 0): both products' columns, the second's after */
        if (!cuda_gemm_small_m_takes(be, 1, st->K, st->OC + OC2, st->weight, st->inp, st->ln != NULL) || st->K % 8 ||
            st->OC % 8 || (OC2 > 0 && (!small_m_second_ok(OC2, st->weight2) || st->ep != SMALL_M_PLAIN || st->tail)) ||
            (((uintptr_t)st->inp | consts) & 15))
            return AB_OK;
        const int nch = (st->OC + OC2) / 8;
        int U = 1;
        while (U < CH_MAX_UNITS && ceil_div(nch, U) > ci->sm_count) U *= 2;
        if (ceil_div(nch, U) > ci->sm_count) return AB_OK;
        if (ceil_div(nch, U) > grid) grid = ceil_div(nch, U);
        if (st->K > xmax) xmax = st->K;
        if (U > maxu) maxu = U;
        small_m_params *s = &p.s[i];
        *s = small_m_product(st->out, st->inp, st->ln, st->weight, 1, st->K, st->OC);
        s->pre = (bf16 *)st->pre; s->bias = (const bf16 *)st->bias; s->residual = (const bf16 *)st->residual;
        if (st->tail) s->tail = *st->tail;
        if (OC2 > 0) {
            s->second.out = (bf16 *)st->out2; s->second.w = (const bf16 *)st->weight2; s->second.OC = OC2;
        }
        s->rows = st->K; s->splits = 1; s->ep = st->ep;
        p.units[i] = U;
        p.woff[i] = (int)off;
        off += (size_t)U * st->K;
        p.boff[i] = (int)off;
        off += U;
        p.lnoff[i] = (int)off;
        if (st->ln) off += st->K / 4;
    }
    const int xq = ceil_div(xmax, 4); /* x in uint4 */
    for (int i = 0; i < n; i++) {
        p.woff[i] += xq;
        p.boff[i] += xq;
        p.lnoff[i] += xq;
    }
    p.roff = xq + (int)off;
    p.n = n;
    p.bar = (unsigned *)ci->chain_barrier.ptr;
    const size_t shmem = ((size_t)p.roff + (size_t)(CH_THREADS / 32) * maxu * 2) * sizeof(uint4);
    if (shmem > ci->smem_optin) return AB_OK;
    CUDA_TRY(cudaFuncSetAttribute(small_m_chain_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shmem),
             "small-M chain: shared memory");
    int per_sm = 0;
    CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, small_m_chain_kernel, CH_THREADS, shmem),
             "small-M chain: occupancy");
    if (per_sm < 1 || grid > per_sm * ci->sm_count) return AB_OK; /* the barrier needs every block resident */
    AB_TRY(cuda_launch_dependent(be, "small-M chain", small_m_chain_kernel, dim3((unsigned)grid), dim3(CH_THREADS), shmem,
                                 p));
    *done = 1;
    return AB_OK;
}

/* logits (N,V) fp32 = x (N,C) @ wte^T, wte (V,C), for N <= LOGITS_SMALL_M rows (a decode step's next-token logits).
 * Bound by reading wte once (77 MB for GPT-2), which cuBLASLt's kernels for V = 50257 fp32 columns read far below
 * bandwidth. The x rows are staged in shared memory (bf16, as given; rows past N are zeros). A warp takes a
 * vocabulary row at a time (grid-stride), lane l its 16-byte chunks l + 32*j (j < LG_CHUNKS: C <= 1024) against the
 * same columns of every x row (16-byte shared loads, consecutive across the lanes). The next row is requested before
 * the current one is summed; the lanes' sums are added by shuffles in a fixed order. wte is constant, so a warp's
 * first row is requested before the wait for x (cuda_common.cuh). With ln_w (one row: ln_f folded in), every block
 * normalises the row itself as the small-M products do (small_m_ln_row; the LayerNorm's weight and bias requested
 * before the wait) and stages LN(x) rounded to bf16, what layernorm_forward would have written. */
#define LG_WARPS 8
#define LG_CHUNKS 4
#define LG_BLOCKS_PER_SM 4
static_assert(LG_WARPS * 32 == SM_THREADS, "small_m_ln_row's block");

template <int MR>
__global__ void __launch_bounds__(LG_WARPS * 32) logits_small_m_kernel(float *logits, const bf16 *x, const bf16 *ln_w,
                                                                       const bf16 *ln_b, const bf16 *wte, int N, int C,
                                                                       int V) {
    extern __shared__ uint4 xs[]; /* (MR, C/8) */
    __shared__ float ln_red[SM_THREADS / 32], ln_st[2];
    const int tid = threadIdx.x, lane = tid % 32, n8 = C / 8, stride = gridDim.x * LG_WARPS;
    int v = blockIdx.x * LG_WARPS + tid / 32;
    pdl_release();
    uint4 u[LG_CHUNKS];
#pragma unroll
    for (int j = 0; j < LG_CHUNKS; j++)
        u[j] = v < V && lane + 32 * j < n8 ? __ldcs(reinterpret_cast<const uint4 *>(wte + (size_t)v * C) + lane + 32 * j)
                                           : make_uint4(0u, 0u, 0u, 0u);
    const bool folds_ln = MR == 1 && ln_w, on_ln = folds_ln && tid < n8;
    const uint4 lw = on_ln ? reinterpret_cast<const uint4 *>(ln_w)[tid] : make_uint4(0u, 0u, 0u, 0u);
    const uint4 lb = on_ln ? reinterpret_cast<const uint4 *>(ln_b)[tid] : make_uint4(0u, 0u, 0u, 0u);
    pdl_wait();
    if (folds_ln) { /* C <= 8 * SM_THREADS: a chunk per thread at most */
        float xv[8], w[8], b[8];
        small_m_ln_row(xv, x, C, ln_red, ln_st);
        unpack8(w, lw);
        unpack8(b, lb);
        if (on_ln) {
            bf16 o[8];
#pragma unroll
            for (int e = 0; e < 8; e++) o[e] = f2bf(small_m_ln_apply(xv[e], ln_st, w[e], b[e]));
            xs[tid] = *reinterpret_cast<const uint4 *>(o);
        }
    } else {
        for (int i = tid; i < MR * n8; i += LG_WARPS * 32)
            xs[i] = i < N * n8 ? reinterpret_cast<const uint4 *>(x)[i] : make_uint4(0u, 0u, 0u, 0u);
    }
    __syncthreads();
    for (; v < V; v += stride) {
        const int next = v + stride;
        float acc[MR];
#pragma unroll
        for (int m = 0; m < MR; m++) acc[m] = 0.0f;
#pragma unroll
        for (int j = 0; j < LG_CHUNKS; j++) {
            if (lane + 32 * j >= n8) break;
            float w[8], xv[8];
            unpack8(w, u[j]);
            u[j] = next < V ? __ldcs(reinterpret_cast<const uint4 *>(wte + (size_t)next * C) + lane + 32 * j)
                            : make_uint4(0u, 0u, 0u, 0u); /* the next row, requested before this one is summed */
#pragma unroll
            for (int m = 0; m < MR; m++) {
                unpack8(xv, xs[m * n8 + lane + 32 * j]);
#pragma unroll
                for (int e = 0; e < 8; e++) acc[m] = fmaf(xv[e], w[e], acc[m]);
            }
        }
#pragma unroll
        for (int m = 0; m < MR; m++) {
            const float t = warp_sum(acc[m]);
            if (lane == 0 && m < N) logits[(size_t)m * V + v] = t;
        }
    }
}

ab_status cuda_logits_small_m(ab_backend *be, float *logits, const void *x, const ab_layernorm_input *ln, const void *wte,
                              int N, int C, int V, int *done) {
    cuda_impl *ci = cuda_of(be);
    *done = 0;
    const uintptr_t lnp = ln ? (uintptr_t)ln->w | (uintptr_t)ln->b : 0;
    if (N < 1 || N > LOGITS_SMALL_M || C % 8 || C > 32 * 8 * LG_CHUNKS || (((uintptr_t)wte | (uintptr_t)x | lnp) & 15) ||
        (ln && N != 1))
        return AB_OK;
    int blocks = LG_BLOCKS_PER_SM * ci->sm_count;
    if (blocks > (V + LG_WARPS - 1) / LG_WARPS) blocks = (V + LG_WARPS - 1) / LG_WARPS;
    const int mr = N == 1 ? 1 : N == 2 ? 2 : N <= 4 ? 4 : N <= 8 ? 8 : 16;
    void (*kernel)(float *, const bf16 *, const bf16 *, const bf16 *, const bf16 *, int, int, int) =
        mr == 1 ? logits_small_m_kernel<1>
        : mr == 2 ? logits_small_m_kernel<2>
        : mr == 4 ? logits_small_m_kernel<4>
        : mr == 8 ? logits_small_m_kernel<8>
                  : logits_small_m_kernel<16>;
    const size_t shmem = (size_t)mr * C * sizeof(bf16); /* <= 16 x 1024 bf16: 32 KB */
    AB_TRY(cuda_launch_dependent(be, "logits (small M)", kernel, dim3((unsigned)blocks), dim3(LG_WARPS * 32), shmem, logits,
                                 (const bf16 *)x, ln ? (const bf16 *)ln->w : NULL, ln ? (const bf16 *)ln->b : NULL,
                                 (const bf16 *)wte, N, C, V));
    *done = 1;
    return AB_OK;
}
