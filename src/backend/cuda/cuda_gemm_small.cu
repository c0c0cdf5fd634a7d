/*
 * cuda_gemm_small.cu — the Conv1D forward products with few rows (decode: M = batch <= CUDA_SMALL_M), which
 * cuBLASLt's tile kernels run far below bandwidth: out (M,OC) = inp (M,K) @ W (K,OC) + bias (OC, may be NULL), with
 * the epilogues of the op table: plain, + residual (M,OC), GELU (pre (M,OC) = the sum, out = gelu(pre)); and, as the
 * launch's tail (small_m_tail), the decode step's KV append (out's key and value columns also into the cache slot of
 * the position the device holds).
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
 * output has only 12 tiles); each split block then writes its (M, 64) partial sums to the GEMM workspace (the
 * cuBLASLt workspace: one stream, so the two never overlap) and the last block of the tile to finish (split_arrive)
 * adds the splits in split order and applies the epilogue: deterministic, one launch, nothing allocated, nothing
 * depending on the host beyond the shape (safe to record in a CUDA graph).
 *
 * Programmatic dependent launch (ci->pdl: sm_90+, unless AB_CUDA_PDL=0). A decode step is a chain of short kernels,
 * each waiting for the one before. The products are launched with programmatic stream serialization and the kernels
 * before them (the decode attention kernels, the products themselves) release their successor early (pdl_release):
 * the blocks of a product are scheduled while the kernel before it finishes and wait there (pdl_wait) for x and the
 * residual, so the launch gap is hidden (measured on an H200: 0.466 -> 0.452 ms a flash decode step at batch 1).
 * Sending the block's slice of W towards L2 before the wait (prefetch.global.L2) made the step slower, 0.452 -> 0.478
 * ms (docs/PERF.md), and is not done.
 */
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

#define SM_THREADS 256
#define SM_TILE 64                          /* columns of W per block */
#define SM_CHUNKS (SM_TILE / 8)             /* 16-byte chunks per tile row: threads per row */
#define SM_SLOTS (SM_THREADS / SM_CHUNKS)   /* rows read by one pass of the block: 32 */
#define SM_MAX_ROWS 512                     /* rows per block: x (MR x 512 fp32) and the warps' sums fit in 32 KB */
#define SM_UNROLL 4                         /* loads in flight per thread */
#define SM_BLOCKS_PER_SM 2

typedef struct {
    bf16 *out, *pre;                     /* (M,OC); pre only for GELU */
    const bf16 *inp, *w, *bias, *residual; /* (M,K), (K,OC), (OC) or NULL, (M,OC) for RESIDUAL */
    small_m_tail tail;                   /* the cache append; zeros: none */
    float *part;                         /* (tiles, splits, M, SM_TILE) fp32 partial sums when splits > 1 */
    unsigned *counters;                  /* (tiles) split counters when splits > 1 */
    int M, K, OC, rows, splits;
    small_m_epilogue ep;
} small_m_params;

/* element (m, col) of the outputs from its fp32 sum v */
__device__ __forceinline__ void small_m_store(const small_m_params &p, int m, int col, float v) {
    const size_t i = (size_t)m * p.OC + col;
    if (p.bias) v += bf2f(p.bias[col]);
    if (p.ep == SMALL_M_RESIDUAL) v += bf2f(p.residual[i]);
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

template <int MR>
__global__ void __launch_bounds__(SM_THREADS) small_m_kernel(small_m_params p) {
    __shared__ float sh[MR * SM_MAX_ROWS]; /* x [m][k - k0] (row stride nk), then the warps' sums [warp][m][SM_TILE] */
    const int tile = blockIdx.x, split = blockIdx.y, tid = threadIdx.x;
    const int chunk = tid % SM_CHUNKS, slot = tid / SM_CHUNKS, lane = tid % 32, warp = tid / 32;
    const int k0 = split * p.rows, nk = min(p.rows, p.K - k0), col = tile * SM_TILE + chunk * 8;
    /* Launched programmatically, this runs while the kernel before it finishes: let the next kernel's blocks be
     * scheduled too, then wait for x and the residual, which earlier kernels write. */
    pdl_release();
    pdl_wait();
    for (int i = tid; i < MR * nk; i += SM_THREADS) {
        const int m = i / nk, k = i % nk;
        sh[i] = m < p.M ? bf2f(p.inp[(size_t)m * p.K + k0 + k]) : 0.0f;
    }
    __syncthreads();
    float acc[MR][8];
#pragma unroll
    for (int m = 0; m < MR; m++)
#pragma unroll
        for (int e = 0; e < 8; e++) acc[m][e] = 0.0f;
    if (col < p.OC) {
        const uint4 *wp = reinterpret_cast<const uint4 *>(p.w + (size_t)k0 * p.OC + col);
        const size_t row_stride = (size_t)p.OC / 8; /* in uint4 */
        for (int k = slot; k < nk; k += SM_SLOTS * SM_UNROLL) {
            uint4 u[SM_UNROLL];
#pragma unroll
            for (int j = 0; j < SM_UNROLL; j++) {
                const int kk = k + j * SM_SLOTS;
                u[j] = kk < nk ? __ldcs(wp + kk * row_stride) : make_uint4(0u, 0u, 0u, 0u); /* W is streamed once */
            }
#pragma unroll
            for (int j = 0; j < SM_UNROLL; j++) {
                const int kk = k + j * SM_SLOTS;
                if (kk >= nk) break;
                float wv[8];
                unpack8(wv, u[j]);
#pragma unroll
                for (int m = 0; m < MR; m++) {
                    const float xv = sh[m * nk + kk];
#pragma unroll
                    for (int e = 0; e < 8; e++) acc[m][e] = fmaf(xv, wv[e], acc[m][e]);
                }
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
    const int ncols = min(SM_TILE, p.OC - tile * SM_TILE);
    for (int i = tid; i < p.M * SM_TILE; i += SM_THREADS) {
        const int m = i / SM_TILE, c = i % SM_TILE;
        if (c >= ncols) continue;
        float v = 0.0f;
#pragma unroll
        for (int w = 0; w < SM_THREADS / 32; w++) v += sh[(w * MR + m) * SM_TILE + c];
        if (p.splits == 1)
            small_m_store(p, m, tile * SM_TILE + c, v);
        else
            p.part[(((size_t)tile * p.splits + split) * p.M + m) * SM_TILE + c] = v;
    }
    if (p.splits > 1) {
        if (!split_arrive(p.counters + tile, (unsigned)p.splits)) return;
        for (int i = tid; i < p.M * SM_TILE; i += SM_THREADS) { /* the last block of the tile: splits in order */
            const int m = i / SM_TILE, c = i % SM_TILE;
            if (c >= ncols) continue;
            const float *src = p.part + ((size_t)tile * p.splits * p.M + m) * SM_TILE + c;
            float v = 0.0f;
            for (int s = 0; s < p.splits; s++) v += __ldcg(src + (size_t)s * p.M * SM_TILE);
            small_m_store(p, m, tile * SM_TILE + c, v);
        }
    }
}

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

ab_status cuda_gemm_small_m(ab_backend *be, small_m_epilogue ep, void *out, void *pre, const void *inp, const void *weight,
                            const void *bias, const void *residual, const small_m_tail *tail, int M, int K, int OC,
                            int *done) {
    cuda_impl *ci = cuda_of(be);
    *done = 0;
    if (M < 1 || M > CUDA_SMALL_M || K < 1 || OC < 8 || OC % 8 || ((uintptr_t)weight & 15)) return AB_OK;
    small_m_params p;
    p.out = (bf16 *)out; p.pre = (bf16 *)pre;
    p.inp = (const bf16 *)inp; p.w = (const bf16 *)weight; p.bias = (const bf16 *)bias; p.residual = (const bf16 *)residual;
    if (tail) p.tail = *tail;
    else memset(&p.tail, 0, sizeof p.tail);
    p.M = M; p.K = K; p.OC = OC; p.ep = ep;
    const int tiles = ceil_div(OC, SM_TILE);
    /* as few splits as the shared memory allows, more until the grid fills the GPU; rows a multiple of a pass */
    int splits = ceil_div(K, SM_MAX_ROWS), fill = ceil_div(SM_BLOCKS_PER_SM * ci->sm_count, tiles);
    if (fill > splits) splits = fill;
    p.rows = ceil_div(ceil_div(K, splits), SM_SLOTS) * SM_SLOTS;
    p.splits = ceil_div(K, p.rows);
    p.part = (float *)ci->lt_workspace;
    p.counters = NULL;
    if (p.splits > 1) {
        const size_t part_bytes = (size_t)tiles * p.splits * M * SM_TILE * sizeof(float);
        if (tiles > CUDA_SPLIT_COUNTERS || part_bytes > ci->lt_workspace_bytes || p.splits > 65535) return AB_OK;
        AB_TRY(cuda_split_counters(be, tiles, &p.counters));
    }
    /* programmatic dependent launch where the backend has it (ci->pdl): see the prologue of small_m_kernel */
    cudaLaunchAttribute pdl;
    pdl.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    pdl.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t lc = {};
    lc.gridDim = dim3((unsigned)tiles, (unsigned)p.splits);
    lc.blockDim = dim3(SM_THREADS);
    lc.stream = ci->stream;
    lc.attrs = &pdl;
    lc.numAttrs = ci->pdl ? 1 : 0;
    CUDA_TRY(M == 1   ? cudaLaunchKernelEx(&lc, small_m_kernel<1>, p)
             : M == 2 ? cudaLaunchKernelEx(&lc, small_m_kernel<2>, p)
                      : cudaLaunchKernelEx(&lc, small_m_kernel<4>, p), /* M = 3, 4 */
             "small-M matmul");
    *done = 1;
    return AB_OK;
}
