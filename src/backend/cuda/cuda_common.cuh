/*
 * cuda_common.cuh — what every .cu file of the CUDA backend shares (C++ only, never included from C):
 * the backend-private state behind be->impl, error checking that turns CUDA / cuBLASLt failures into
 * ab_status with the library's message, bf16 helpers, accounted scratch buffers, and the cuBLASLt GEMM
 * entry point used by the op table and the attention variants.
 *
 * Dtypes: activations, parameters and gradients are bf16 ("act"); statistics, master weights, optimizer
 * state and every accumulation are fp32.
 */
#ifndef AB_CUDA_COMMON_CUH
#define AB_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "attn/variant.h"
#include "backend/backend.h"
}

typedef __nv_bfloat16 bf16;

/* A device buffer owned by the backend itself (cuBLASLt workspace, classifier chunk, ...), grown on
 * demand and accounted like every other allocation. */
typedef struct {
    ab_buffer buf;
} cuda_scratch;

/* be->impl */
typedef struct {
    cudaStream_t stream;         /* every kernel and copy of this backend */
    cudaStream_t side_stream;    /* token read-back of encoder_backward, independent of queued work */
    cudaEvent_t bucket_copied;   /* the pinned token buckets were uploaded (they may be rewritten) */
    cublasLtHandle_t lt;
    void *lt_workspace;          /* cuBLASLt workspace (accounted as MEM_WORKSPACE) */
    size_t lt_workspace_bytes;
    ab_buffer lt_workspace_buf;
    int sm_count;
    int pdl;                     /* programmatic dependent launch (cuda_launch_dependent: sm_90+, AB_CUDA_PDL) */
    int chain;                   /* one launch for a decode block's products (cuda_small_m_chain, AB_CUDA_CHAIN) */
    size_t smem_optin;           /* dynamic shared memory a block may opt in to */
    ab_buffer chain_barrier;     /* the grid barrier word of cuda_small_m_chain (zeroed, and so after every launch) */
    cuda_scratch reduce;         /* layernorm weight / bias gradient sums (2C fp32) */
    cuda_scratch partials;       /* sum_squares per-block partials (double) */
    cuda_scratch classifier;     /* logits chunk f32 + dlogits chunk bf16 */
    cuda_scratch encoder;        /* token buckets for encoder_backward */
    cuda_scratch ones;           /* bf16 ones for bias gradients as GEMMs */
    cuda_scratch decode_pos;     /* int32: the position cuda_decode_pos stages when ctx->pos_dev is NULL */
    int64_t *host_keys;          /* encoder_backward sort keys token*BT + row (BT) */
    int32_t *host_buckets;       /* pinned: encoder_backward buckets (3*BT + 2 int32) */
    size_t host_cap;             /* capacity of host_buckets, in int32 */
} cuda_impl;

static inline cuda_impl *cuda_of(ab_backend *be) { return (cuda_impl *)be->impl; }
static inline cudaStream_t cuda_stream(ab_backend *be) { return cuda_of(be)->stream; }

/* CUDA error -> AB_ERR_DEVICE (AB_ERR_OOM for allocation failures) naming the operation. */
ab_status cuda_status(cudaError_t e, const char *what);
/* The last launch error of `what` (kernels are asynchronous: this catches bad configurations only). */
ab_status cuda_check_launch(const char *what);

#define CUDA_TRY(call, what)                                                                       \
    do {                                                                                           \
        cudaError_t cuda_try_e_ = (call);                                                          \
        if (cuda_try_e_ != cudaSuccess) return cuda_status(cuda_try_e_, (what));                   \
    } while (0)

/* Make sure `s` holds at least `bytes` (grows by reallocating; contents are lost on growth). */
ab_status cuda_scratch_reserve(ab_backend *be, cuda_scratch *s, size_t bytes, mem_category cat, const char *what);
void cuda_scratch_release(ab_backend *be, cuda_scratch *s);

/* Blocks of `threads` covering n items. */
static inline unsigned cuda_blocks(size_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }

/* GELU folded into a GEMM's epilogue (tanh form, GPT-2's); aux is bf16 (M,N) with row stride ld_aux. */
typedef enum {
    GEMM_GELU_NONE = 0,
    GEMM_GELU_FORWARD,  /* aux = A@B (+ bias), C = gelu(aux) (beta must be 0) */
    GEMM_GELU_BACKWARD, /* C = gelu'(aux) * (A@B) (beta must be 0, no bias) */
} gemm_gelu;

/* ---- GEMM (cuBLASLt), row-major, bf16 operands, fp32 accumulation ----
 * C (M,N) = alpha * op(A) @ op(B) + beta * C, op(X) = X^T when trans_x; A is (M,K) after op, B (K,N).
 * `batch` strided products (stride_* in elements, 0 for shared operands). C is bf16 unless c_f32.
 * epilogue: bias (N) added to every row when bias != NULL (bf16); GELU as `gelu` says. */
typedef struct {
    int trans_a, trans_b;
    int M, N, K;
    float alpha, beta;
    const bf16 *A; int lda; long long stride_a;
    const bf16 *B; int ldb; long long stride_b;
    void *C; int ldc; long long stride_c;
    const void *C_in;     /* beta's C when it is not the output (same layout as C); NULL: C itself */
    int c_f32;
    int batch;
    const bf16 *bias;
    gemm_gelu gelu;       /* batch 1 only */
    void *aux; int ld_aux;
} cuda_gemm_args;

ab_status cuda_gemm(ab_backend *be, const cuda_gemm_args *g);

/* dbias (OC) += column sums of dout (N, OC), fp32 accumulation (a GEMM with a ones vector). */
ab_status cuda_bias_grad(ab_backend *be, bf16 *dbias, const bf16 *dout, int N, int OC);

/* The backend's matmul ops, callable from the attention variants. */
ab_status cuda_matmul_forward(ab_backend *be, void *out, const void *inp, const void *weight, const void *bias,
                              int N, int C, int OC);
ab_status cuda_matmul_backward(ab_backend *be, void *dinp, void *dweight, void *dbias, const void *dout,
                               const void *inp, const void *weight, int N, int C, int OC);
ab_status cuda_matmul_residual_forward(ab_backend *be, void *out, const void *inp, const void *weight, const void *bias,
                                       const void *residual, int N, int C, int OC);
ab_status cuda_matmul_gelu_forward(ab_backend *be, void *out, void *pre, const void *inp, const void *weight,
                                   const void *bias, int N, int C, int OC);
ab_status cuda_layernorm_matmul_forward(ab_backend *be, const ab_layernorm_input *ln, void *out, void *pre, const void *x,
                                        const void *weight, const void *bias, int N, int C, int OC);
ab_status cuda_block_tail_forward(ab_backend *be, const ab_block_tail *t, int N, int C, int *done, int *next_done);
ab_status cuda_gelu_matmul_backward(ab_backend *be, void *dpre, void *dweight, void *dbias, const void *dout,
                                    const void *act, const void *pre, const void *weight, int N, int C, int OC);

/* ---- Conv1D forward products with few rows (decode), cuda_gemm_small.cu ----
 * out (M,OC) = in @ weight (K,OC) + bias (OC, may be NULL), then the epilogue: plain; + residual (M,OC); GELU (pre =
 * the sum, written, out = gelu(pre)). in = inp (M,K), or with ln (may be NULL; M = 1 only) LN(inp) with ln->w, ln->b,
 * computed in the prologue (ln->out is not written). tail (may be NULL): the decode step's KV append, below. Runs and
 * sets *done = 1 when the bandwidth-bound kernel takes the shape (M <= CUDA_SMALL_M, OC % 8 == 0, 16-byte aligned
 * weight); *done = 0 (nothing queued): use cuBLASLt. */
#define CUDA_SMALL_M 4 /* measured on an H200: M = 1 decode 0.88 -> 0.48 ms a token, but M = 16 1.01 -> 1.36 (cuBLASLt wins) */
typedef enum { SMALL_M_PLAIN = 0, SMALL_M_RESIDUAL, SMALL_M_GELU } small_m_epilogue;
typedef ab_kv_append small_m_tail; /* with any epilogue, when cache is not NULL (backend.h) */
ab_status cuda_gemm_small_m(ab_backend *be, small_m_epilogue ep, void *out, void *pre, const void *inp,
                            const ab_layernorm_input *ln, const void *weight, const void *bias, const void *residual,
                            const small_m_tail *tail, int M, int K, int OC, int *done);
/* Two products of one input in one launch (mla's q and latent at decode): out (M,OC) = in @ weight (K,OC) and out2
 * (M,OC2) = in @ weight2 (K,OC2), plain, no bias, in as above; OC a multiple of 64 (the second's blocks start at a
 * whole tile). *done as cuda_gemm_small_m's (both or neither queued). A chain's step may be such a pair too
 * (small_m_step: OC2 > 0; there OC a multiple of 8). */
ab_status cuda_gemm_small_m_pair(ab_backend *be, void *out, const void *weight, int OC, void *out2, const void *weight2,
                                 int OC2, const void *inp, const ab_layernorm_input *ln, int M, int K, int *done);
/* One launch for a chain of dependent single-row products (decode at batch 1: a block's attn.c_proj, ln_2 + c_fc + GELU
 * and mlp.c_proj), step i reading what the steps before wrote: step i is out = in @ w (K,OC) + bias with its epilogue
 * (as cuda_gemm_small_m, M = 1), in = inp (1,K) or LN(inp) with ln (K <= 2048; ln->out not written), tail (may be
 * NULL) the KV append. *done = 1 when queued; 0 (nothing queued) when the chain kernel does not take the steps: more
 * than CUDA_CHAIN_MAX_STEPS, a shape or alignment the small-M kernel would refuse, the blocks' slices of W beyond
 * shared memory, or AB_CUDA_CHAIN=0. */
#define CUDA_CHAIN_MAX_STEPS 4
typedef struct {
    small_m_epilogue ep;
    void *out, *pre;
    const void *inp, *weight, *bias, *residual;
    const ab_layernorm_input *ln;
    const small_m_tail *tail;
    void *out2;             /* the second product of a pair (OC2 > 0; plain, no bias): out2 = in @ weight2 (K,OC2) */
    const void *weight2;
    int K, OC, OC2;
} small_m_step;
ab_status cuda_small_m_chain(ab_backend *be, const small_m_step *steps, int n, int *done);
/* whether cuda_gemm_small_m takes the shape (folds_ln: with a LayerNorm folded in, which also needs M = 1,
 * K % 8 == 0, K <= 2048 and a 16-byte aligned inp) */
bool cuda_gemm_small_m_takes(ab_backend *be, int M, int K, int OC, const void *weight, const void *inp, int folds_ln);

/* Decode products with a LayerNorm folded in (cuda_gemm.cu, on the kernel above).
 * The input of a decode product x (N,C) @ weight (C,OC) that reads LN(x) (ln; NULL: x itself): *in = x and *fold = ln
 * where the small-M kernel takes the shape and so normalises the rows itself; else LN(x) is written to ln->out
 * (layernorm_forward), *in = ln->out and *fold = NULL. */
ab_status cuda_layernorm_input(ab_backend *be, const ab_layernorm_input *ln, const void *x, const void *weight, int N,
                               int C, int OC, const void **in, const ab_layernorm_input **fold);
/* A decode product: out (N,OC) = in @ weight + bias, with pre (not NULL) pre = that and out = gelu(pre); in = x or LN(x)
 * (ln, cuda_layernorm_input); tail (may be NULL): the KV append, which only the small-M kernel does: *small_m says
 * whether it ran (else cuBLASLt did the product and the caller owes the append). */
ab_status cuda_layernorm_product(ab_backend *be, const ab_layernorm_input *ln, void *out, void *pre, const void *x,
                                 const void *weight, const void *bias, const small_m_tail *tail, int N, int C, int OC,
                                 int *small_m);

/* logits (N,V) fp32 = x (N,C) @ wte^T (wte (V,C)), or with ln (may be NULL; N = 1 only) LN(x) with ln->w, ln->b
 * (ln->out not written), for N <= LOGITS_SMALL_M, C % 8 == 0, C <= 1024, 16-byte aligned: *done = 1 when queued, else
 * 0 (nothing queued: use cuBLASLt) */
#define LOGITS_SMALL_M 16 /* decode at batch 16: cuBLASLt's fp32 (16, 50257) product took ~0.1 ms of a 0.63 ms step */
ab_status cuda_logits_small_m(ab_backend *be, float *logits, const void *x, const ab_layernorm_input *ln, const void *wte,
                              int N, int C, int V, int *done);

/* ---- device helpers ---- */
__device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
/* the sum of v over the gl lanes (a power of two) of the thread's aligned lane group, in every lane of it; every
 * lane of the warp calls it */
__device__ __forceinline__ float lane_group_sum(float v, int gl) {
    for (int o = 1; o < gl; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#define LN_EPS 1e-5f /* LayerNorm's epsilon (GPT-2's), for layernorm_forward and the products that fold it */

/* GELU, tanh form (GPT-2's) */
#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */
__device__ __forceinline__ float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
}

/* 8 bf16 (16 bytes, aligned) as floats */
__device__ __forceinline__ void unpack8(float out[8], uint4 u) {
    const bf16 *h = reinterpret_cast<const bf16 *>(&u);
#pragma unroll
    for (int k = 0; k < 8; k++) out[k] = bf2f(h[k]);
}

/* ---- asynchronous copies into shared memory (cp.async, sm_80+) ----
 * cp_async16 copies 16 bytes global -> shared (zeros when !pred), bypassing L1; the copies a thread issued since its
 * last commit form a group; cp_async_wait<N> returns when at most the N most recent groups of the thread are still in
 * flight (a __syncthreads after it makes every thread's copies visible to the block). */
__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, bool pred) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(pred ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
__device__ __forceinline__ void cp_async_wait_all() { cp_async_wait<0>(); }

/* ---- programmatic dependent launch (compute capability 9.0+) ----
 * A kernel launched with the programmatic-serialization attribute (cuda_launch_dependent when ci->pdl) may be scheduled
 * while the kernel before it in the stream still runs, once every block of that one has called pdl_release() or
 * ended. Before pdl_wait() it may only do work that reads nothing an earlier kernel wrote (this kernel's weights);
 * pdl_wait() returns when the kernels before it have finished and their writes are visible. Every block of such a
 * kernel calls pdl_wait() before it ends, so its own end still implies theirs, and the order carries through a
 * chain of them. pdl_release() is a hint with no effect on correctness: it lets the next kernel start early when that
 * one is launched so, and does nothing otherwise. Both compile to nothing below sm_90 and cost nothing in a kernel
 * launched normally. */
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* ---- partial results gathered across a thread-block cluster ----
 * Each block stores its parts into the shared memory of the blocks that combine them (an inbox at the same offset in
 * every block, used for nothing else) and goes on; a block that combines waits for the stores and reads its own
 * shared memory. Two phases of the cluster barrier: the opening one, arrived at at the kernel's start
 * (cluster_gather_open) and waited for before the first store (cluster_gather_begin: a block's shared memory may be
 * written only once it has started), and the closing one, arrived at after the stores (cluster_gather_end, a
 * release) and waited for only by the blocks that combine (cluster_gather_collect, an acquire); the others may end
 * at once (an ended block's threads count as arrived). Where a combining block instead read the others' shared
 * memory, each read was a remote round trip after a barrier, and a second barrier kept every block resident until
 * the reads were done (docs/PERF.md, fifteenth session). Every thread of every block of the cluster calls each of
 * open, begin and end once, in that order; collect after end, or not at all. */
__device__ __forceinline__ void cluster_gather_open() { __cluster_barrier_arrive_relaxed(); }
__device__ __forceinline__ void cluster_gather_begin() { __cluster_barrier_wait(); }
__device__ __forceinline__ void cluster_gather_end() { __cluster_barrier_arrive(); }
__device__ __forceinline__ void cluster_gather_collect() { __cluster_barrier_wait(); }
/* p (this block's shared memory) at the same offset in the block of cluster rank `rank` */
__device__ __forceinline__ float *cluster_shared(float *p, int rank) {
    return static_cast<float *>(__cluster_map_shared_rank(p, (unsigned)rank));
}

/* asks for the 128-byte line at p to be brought into L2, and goes on: no register waits for it */
__device__ __forceinline__ void prefetch_l2(const void *p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

/* Launch kernel<<<grid, block, shmem>>>(args) on the backend's stream in thread-block clusters of `cluster` blocks
 * (1 x 1 x 1: none; above 8 blocks, a non-portable size, which Hopper has up to 16) and, when `dependent` and the
 * backend has it (ci->pdl), programmatically dependent on the kernel before it. Such a kernel keeps the contract
 * above: every block calls pdl_wait() before it reads what an earlier kernel wrote, and before it ends. */
template <typename... Params, typename... Args>
static ab_status cuda_launch(ab_backend *be, const char *what, void (*kernel)(Params...), dim3 grid, dim3 cluster,
                             dim3 block, size_t shmem, int dependent, Args... args) {
    cuda_impl *ci = cuda_of(be);
    cudaLaunchAttribute attrs[2];
    unsigned n = 0;
    if (dependent && ci->pdl) {
        attrs[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attrs[n++].val.programmaticStreamSerializationAllowed = 1;
    }
    const unsigned blocks = cluster.x * cluster.y * cluster.z;
    if (blocks > 1) {
        if (blocks > 8)
            CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1), what);
        attrs[n].id = cudaLaunchAttributeClusterDimension;
        attrs[n].val.clusterDim.x = cluster.x;
        attrs[n].val.clusterDim.y = cluster.y;
        attrs[n++].val.clusterDim.z = cluster.z;
    }
    cudaLaunchConfig_t lc = {};
    lc.gridDim = grid;
    lc.blockDim = block;
    lc.dynamicSmemBytes = shmem;
    lc.stream = ci->stream;
    lc.attrs = attrs;
    lc.numAttrs = n;
    CUDA_TRY(cudaLaunchKernelEx(&lc, kernel, args...), what);
    return AB_OK;
}
/* cuda_launch without clusters, programmatically dependent */
template <typename... Params, typename... Args>
static ab_status cuda_launch_dependent(ab_backend *be, const char *what, void (*kernel)(Params...), dim3 grid, dim3 block,
                                       size_t shmem, Args... args) {
    return cuda_launch(be, what, kernel, grid, dim3(1, 1, 1), block, shmem, 1, args...);
}

#endif
