/*
 * cuda_backend.cu — the CUDA op table (ab_cuda_backend): device memory with accounting, host <-> device
 * copies with bf16 conversion, and the GPT-2 ops other than GEMMs: encoder, LayerNorm, GELU, residual,
 * the fused classifier + cross-entropy, fused AdamW and the sum of squares for global-norm clipping.
 *
 * Everything runs on one non-blocking stream per backend; copies to the host synchronise it. Recorded steps are
 * CUDA graphs captured from that stream (graph_begin .. graph_end, replayed by graph_launch). bf16
 * activations and parameters, fp32 statistics / master weights / optimizer state / accumulation.
 * Element-wise kernels move 16 bytes (8 bf16) per thread where the pointers allow it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

#define LT_WORKSPACE_BYTES (32u << 20)   /* cuBLASLt workspace: 32 MiB, what Hopper kernels ask for */
#define CLASSIFIER_ROWS 4096             /* rows of bf16 logits per chunk: 4096 x 50304 x 2 B = 412 MB (+ 2 x 77 MB padded wte, dwte) */

/* ------------------------------------------------------------------ errors */

ab_status cuda_status(cudaError_t e, const char *what) {
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        return ab_fail(AB_ERR_OOM, "cuda: out of device memory in %s", what);
    }
    return ab_fail(AB_ERR_DEVICE, "cuda: %s failed: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

ab_status cuda_check_launch(const char *what) {
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? AB_OK : cuda_status(e, what);
}

/* ------------------------------------------------------------------ memory */

static ab_status cuda_alloc_op(ab_backend *be, ab_buffer *buf, size_t bytes, mem_category cat) {
    buf->ptr = NULL;
    buf->bytes = 0;
    void *p = NULL;
    size_t rounded = bytes ? bytes : 256;
    cudaError_t e = cudaMalloc(&p, rounded);
    if (e != cudaSuccess) {
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        if (e == cudaErrorMemoryAllocation)
            return ab_fail(AB_ERR_OOM, "cuda: out of device memory: %zu bytes (%.1f MiB) requested for %s, %.1f MiB free of "
                           "%.1f MiB (%.1f MiB already allocated by attnbench)",
                           bytes, bytes / 1048576.0, mem_category_name(cat), free_b / 1048576.0, total_b / 1048576.0,
                           be->mem.current_total / 1048576.0);
        return cuda_status(e, "cudaMalloc");
    }
    e = cudaMemsetAsync(p, 0, rounded, cuda_stream(be));
    if (e != cudaSuccess) {
        cudaFree(p);
        return cuda_status(e, "cudaMemsetAsync (zeroing a new allocation)");
    }
    buf->ptr = p;
    buf->bytes = bytes;
    buf->category = cat;
    mem_account_alloc(&be->mem, cat, bytes);
    return AB_OK;
}

static void cuda_free_op(ab_backend *be, ab_buffer *buf) {
    if (!buf || !buf->ptr) return;
    mem_account_free(&be->mem, buf->category, buf->bytes);
    cudaFree(buf->ptr);
    buf->ptr = NULL;
    buf->bytes = 0;
}

ab_status cuda_scratch_reserve(ab_backend *be, cuda_scratch *s, size_t bytes, mem_category cat, const char *what) {
    if (s->buf.ptr && s->buf.bytes >= bytes) return AB_OK;
    CUDA_TRY(cudaStreamSynchronize(cuda_stream(be)), what); /* the old buffer may still be in use */
    cuda_free_op(be, &s->buf);
    ab_status st = cuda_alloc_op(be, &s->buf, bytes, cat);
    if (st != AB_OK) return ab_fail_context(st, "%s: ", what);
    return AB_OK;
}

void cuda_scratch_release(ab_backend *be, cuda_scratch *s) { cuda_free_op(be, &s->buf); }

static ab_status cuda_memzero(ab_backend *be, void *ptr, size_t bytes) {
    CUDA_TRY(cudaMemsetAsync(ptr, 0, bytes, cuda_stream(be)), "memzero");
    return AB_OK;
}

static ab_status cuda_copy_to_device(ab_backend *be, void *dst, const void *src, size_t bytes) {
    CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda_stream(be)), "copy to device");
    CUDA_TRY(cudaStreamSynchronize(cuda_stream(be)), "copy to device");
    return AB_OK;
}

static ab_status cuda_copy_to_host(ab_backend *be, void *dst, const void *src, size_t bytes) {
    CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda_stream(be)), "copy to host");
    CUDA_TRY(cudaStreamSynchronize(cuda_stream(be)), "copy to host");
    return AB_OK;
}

static ab_status cuda_copy(ab_backend *be, void *dst, const void *src, size_t bytes) {
    CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_stream(be)), "device copy");
    return AB_OK;
}

/* fp32 -> bf16 bits, round to nearest even; NaN stays NaN */
static uint16_t host_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float host_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static ab_status cuda_upload_f32(ab_backend *be, void *dst, const float *src, size_t n) {
    uint16_t *tmp = (uint16_t *)malloc(n * 2 + 2);
    if (!tmp) return ab_fail(AB_ERR_OOM, "cuda upload: cannot allocate %zu host bytes", n * 2);
    for (size_t i = 0; i < n; i++) tmp[i] = host_f32_to_bf16(src[i]);
    ab_status st = cuda_copy_to_device(be, dst, tmp, n * 2);
    free(tmp);
    return st;
}

static ab_status cuda_download_f32(ab_backend *be, float *dst, const void *src, size_t n) {
    uint16_t *tmp = (uint16_t *)malloc(n * 2 + 2);
    if (!tmp) return ab_fail(AB_ERR_OOM, "cuda download: cannot allocate %zu host bytes", n * 2);
    ab_status st = cuda_copy_to_host(be, tmp, src, n * 2);
    if (st == AB_OK)
        for (size_t i = 0; i < n; i++) dst[i] = host_bf16_to_f32(tmp[i]);
    free(tmp);
    return st;
}

static ab_status cuda_synchronize(ab_backend *be) {
    CUDA_TRY(cudaStreamSynchronize(cuda_stream(be)), "synchronize");
    return AB_OK;
}

/* ------------------------------------------------------------------ recorded steps (CUDA graphs) */

static ab_status cuda_host_alloc(ab_backend *be, void **ptr_host, size_t bytes) {
    *ptr_host = NULL;
    CUDA_TRY(cudaMallocHost(ptr_host, bytes ? bytes : 1), "pinned host allocation");
    return AB_OK;
}

static void cuda_host_free(ab_backend *be, void *ptr_host) {
    if (ptr_host) cudaFreeHost(ptr_host);
}

static ab_status cuda_copy_to_device_async(ab_backend *be, void *dst, const void *src_host, size_t bytes) {
    CUDA_TRY(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, cuda_stream(be)), "asynchronous copy to device");
    return AB_OK;
}

/* Thread-local capture: a call of this thread that is illegal while capturing (a host synchronisation, a copy
 * from pageable memory) fails and invalidates the capture instead of being recorded wrongly; other threads
 * (the power sampler) are not affected. */
static ab_status cuda_graph_begin(ab_backend *be) {
    CUDA_TRY(cudaStreamBeginCapture(cuda_stream(be), cudaStreamCaptureModeThreadLocal), "CUDA graph capture (begin)");
    return AB_OK;
}

static ab_status cuda_graph_end(ab_backend *be, void **graph) {
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(cuda_stream(be), &g);
    if (!graph) { /* discard after a failed op: its message stands */
        if (g) cudaGraphDestroy(g);
        cudaGetLastError();
        return AB_OK;
    }
    *graph = NULL;
    CUDA_TRY(e, "CUDA graph capture (end)");
    cudaGraphExec_t exec = NULL;
    e = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    CUDA_TRY(e, "CUDA graph instantiation");
    *graph = exec;
    return AB_OK;
}

static ab_status cuda_graph_launch(ab_backend *be, void *graph) {
    CUDA_TRY(cudaGraphLaunch((cudaGraphExec_t)graph, cuda_stream(be)), "CUDA graph launch");
    return AB_OK;
}

static void cuda_graph_free(ab_backend *be, void *graph) {
    if (graph) cudaGraphExecDestroy((cudaGraphExec_t)graph);
}

/* ------------------------------------------------------------------ 8-wide bf16 access */

/* Loads x[i .. i+8) as floats (0 past n); 16-byte load when aligned and in bounds. */
__device__ __forceinline__ void load8(float out[8], const bf16 *x, size_t i, size_t n) {
    if (i + 8 <= n && (((uintptr_t)(x + i)) & 15) == 0) {
        const uint4 *p = reinterpret_cast<const uint4 *>(x + i);
        unpack8(out, *p);
    } else {
#pragma unroll
        for (int k = 0; k < 8; k++) out[k] = i + k < n ? bf2f(x[i + k]) : 0.0f;
    }
}

__device__ __forceinline__ void store8(bf16 *x, size_t i, size_t n, const float v[8]) {
    if (i + 8 <= n && (((uintptr_t)(x + i)) & 15) == 0) {
        uint4 u;
        bf16 *h = reinterpret_cast<bf16 *>(&u);
#pragma unroll
        for (int k = 0; k < 8; k++) h[k] = f2bf(v[k]);
        *reinterpret_cast<uint4 *>(x + i) = u;
    } else {
#pragma unroll
        for (int k = 0; k < 8; k++)
            if (i + k < n) x[i + k] = f2bf(v[k]);
    }
}

/* ------------------------------------------------------------------ encoder */

/* out (B,T,C) = wte[tokens] (V,C) + wpe[p0 + t] (maxT,C), p0 = *pos0 or 0; one thread per 8 channels. It releases
 * the kernel after it at once (cuda_common.cuh): a decode step's first product, launched dependent, requests its
 * weights while this runs. */
__global__ void encoder_forward_kernel(bf16 *out, const int32_t *tokens, const bf16 *wte, const bf16 *wpe,
                                       const int32_t *pos0, int BT, int T, int C) {
    pdl_release();
    size_t idx = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) * 8;
    if (idx >= (size_t)BT * C) return;
    int bt = (int)(idx / C), c = (int)(idx % C), p0 = pos0 ? *pos0 : 0;
    float a[8], b[8];
    load8(a, wte + (size_t)tokens[bt] * C, c, C);
    load8(b, wpe + (size_t)(p0 + bt % T) * C, c, C);
#pragma unroll
    for (int k = 0; k < 8; k++) a[k] += b[k];
    store8(out + (size_t)bt * C, c, C, a);
}

static ab_status cuda_encoder_forward(ab_backend *be, void *out, const int32_t *tokens, const void *wte,
                                      const void *wpe, const int32_t *pos0, int B, int T, int C) {
    if (C % 8) return ab_fail(AB_ERR_UNSUPPORTED, "cuda encoder: C = %d must be a multiple of 8", C);
    size_t n8 = (size_t)B * T * C / 8;
    encoder_forward_kernel<<<cuda_blocks(n8, 256), 256, 0, cuda_stream(be)>>>((bf16 *)out, tokens, (const bf16 *)wte,
                                                                                (const bf16 *)wpe, pos0, B * T, T, C);
    return cuda_check_launch("encoder_forward");
}

/* dwte[token] += sum of dout rows of that token: one block per distinct token, rows summed in fp32 in a
 * fixed order (deterministic). buckets (int32): [0] = nb, start[BT+1] at 1, token[BT] at BT+2, rows[BT]
 * at 2*BT+2; bucket b covers rows[start[b] .. start[b+1]). */
__global__ void encoder_backward_wte_kernel(bf16 *dwte, const bf16 *dout, const int32_t *buckets, int BT, int C) {
    const int32_t *start = buckets + 1, *token = buckets + BT + 2, *rows = buckets + 2 * BT + 2;
    int b = blockIdx.x;
    if (b >= buckets[0]) return;
    bf16 *dst = dwte + (size_t)token[b] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float s = 0.0f;
        for (int r = start[b]; r < start[b + 1]; r++) s += bf2f(dout[(size_t)rows[r] * C + c]);
        dst[c] = f2bf(bf2f(dst[c]) + s);
    }
}

/* dwpe[t] (T,C) += sum over b of dout[b, t] */
__global__ void encoder_backward_wpe_kernel(bf16 *dwpe, const bf16 *dout, int B, int T, int C) {
    size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (idx >= (size_t)T * C) return;
    float s = 0.0f;
    for (int b = 0; b < B; b++) s += bf2f(dout[(size_t)b * T * C + idx]);
    dwpe[idx] = f2bf(bf2f(dwpe[idx]) + s);
}

static int cmp_int64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static ab_status cuda_encoder_backward(ab_backend *be, void *dwte, void *dwpe, const void *dout, const int32_t *tokens,
                                       int B, int T, int C) {
    cuda_impl *ci = cuda_of(be);
    int BT = B * T;
    size_t need = (size_t)3 * BT + 2;
    if (ci->host_cap < need) {
        CUDA_TRY(cudaEventSynchronize(ci->bucket_copied), "encoder_backward");
        if (ci->host_buckets) cudaFreeHost(ci->host_buckets);
        free(ci->host_keys);
        ci->host_buckets = NULL;
        ci->host_cap = 0;
        ci->host_keys = (int64_t *)malloc((size_t)BT * sizeof(int64_t));
        if (!ci->host_keys) return ab_fail(AB_ERR_OOM, "cuda encoder_backward: host buffer of %d tokens", BT);
        CUDA_TRY(cudaMallocHost((void **)&ci->host_buckets, need * sizeof(int32_t)), "encoder_backward pinned buffer");
        ci->host_cap = need;
    }
    AB_TRY(cuda_scratch_reserve(be, &ci->encoder, need * sizeof(int32_t), MEM_WORKSPACE, "encoder_backward buckets"));
    /* The tokens were uploaded before the forward pass: read them on the side stream so that this copy does
     * not wait for the backward work queued on the main stream, and bucket them while the GPU runs it. */
    int32_t *hb = ci->host_buckets;
    CUDA_TRY(cudaEventSynchronize(ci->bucket_copied), "encoder_backward"); /* last call's upload of hb is done */
    CUDA_TRY(cudaMemcpyAsync(hb + 2 * BT + 2, tokens, (size_t)BT * sizeof(int32_t), cudaMemcpyDeviceToHost,
                             ci->side_stream), "encoder_backward token copy");
    CUDA_TRY(cudaStreamSynchronize(ci->side_stream), "encoder_backward token copy");
    int64_t *keys = ci->host_keys;
    for (int i = 0; i < BT; i++) keys[i] = (int64_t)hb[2 * BT + 2 + i] * BT + i;
    qsort(keys, (size_t)BT, sizeof *keys, cmp_int64);
    int32_t *start = hb + 1, *token = hb + BT + 2, *rows = hb + 2 * BT + 2;
    int nb = 0;
    for (int i = 0; i < BT; i++) {
        int32_t t = (int32_t)(keys[i] / BT);
        rows[i] = (int32_t)(keys[i] % BT);
        if (i == 0 || t != token[nb - 1]) {
            token[nb] = t;
            start[nb++] = i;
        }
    }
    start[nb] = BT;
    hb[0] = nb;
    CUDA_TRY(cudaMemcpyAsync(ci->encoder.buf.ptr, hb, need * sizeof(int32_t), cudaMemcpyHostToDevice, ci->stream),
             "encoder_backward bucket upload");
    CUDA_TRY(cudaEventRecord(ci->bucket_copied, ci->stream), "encoder_backward");
    if (nb > 0)
        encoder_backward_wte_kernel<<<nb, 256, 0, ci->stream>>>((bf16 *)dwte, (const bf16 *)dout,
                                                                (const int32_t *)ci->encoder.buf.ptr, BT, C);
    AB_TRY(cuda_check_launch("encoder_backward_wte"));
    encoder_backward_wpe_kernel<<<cuda_blocks((size_t)T * C, 256), 256, 0, ci->stream>>>((bf16 *)dwpe,
                                                                                           (const bf16 *)dout, B, T, C);
    return cuda_check_launch("encoder_backward_wpe");
}

/* ------------------------------------------------------------------ layernorm */

/* out (N,C) = (inp - mean) * rstd * w + b; one warp per row, statistics in fp32 (C % 8 == 0, rows 16-byte aligned).
 * Lane l holds the 16-byte chunks l + 32*k (k < CHUNKS, C <= 256*CHUNKS) of the row, of the weight and of the bias
 * in registers, all requested at once: a decode step's row costs one memory round trip, not one per pass. The sums
 * run in column order within the lane, then across the warp (two passes over the registers: the mean, then the
 * squares about it). Launched programmatically dependent (cuda_launch_dependent): in a decode step it is scheduled
 * while the product before it finishes. */
template <int CHUNKS>
__global__ void layernorm_forward_kernel(bf16 *out, float *mean, float *rstd, const bf16 *inp, const bf16 *w,
                                         const bf16 *b, int N, int C) {
    pdl_release();
    pdl_wait();
    const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32, n8 = C / 8;
    if (row >= N) return;
    const uint4 *x = reinterpret_cast<const uint4 *>(inp + (size_t)row * C);
    uint4 ux[CHUNKS], uw[CHUNKS], ub[CHUNKS];
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        const int i = lane + 32 * k;
        if (i < n8) {
            ux[k] = x[i];
            uw[k] = reinterpret_cast<const uint4 *>(w)[i];
            ub[k] = reinterpret_cast<const uint4 *>(b)[i];
        }
    }
    float s = 0.0f, v[8];
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        if (lane + 32 * k >= n8) break;
        unpack8(v, ux[k]);
#pragma unroll
        for (int e = 0; e < 8; e++) s += v[e];
    }
    const float m = warp_sum(s) / C;
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        if (lane + 32 * k >= n8) break;
        unpack8(v, ux[k]);
#pragma unroll
        for (int e = 0; e < 8; e++) ss += (v[e] - m) * (v[e] - m);
    }
    const float r = rsqrtf(warp_sum(ss) / C + LN_EPS);
    uint4 *o = reinterpret_cast<uint4 *>(out + (size_t)row * C);
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        if (lane + 32 * k >= n8) break;
        float wv[8], bv[8];
        unpack8(v, ux[k]);
        unpack8(wv, uw[k]);
        unpack8(bv, ub[k]);
        uint4 u;
        bf16 *h = reinterpret_cast<bf16 *>(&u);
#pragma unroll
        for (int e = 0; e < 8; e++) h[e] = f2bf((v[e] - m) * r * wv[e] + bv[e]);
        o[lane + 32 * k] = u;
    }
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

/* what both LayerNorm kernels are built for: C a multiple of 8, at most 2048 (8 chunks a lane); `aligned`, the OR of
 * the tensors' addresses, 16-byte aligned */
static ab_status layernorm_shape(const char *op, int C, uintptr_t aligned) {
    if (C > 2048 || C % 8)
        return ab_fail(AB_ERR_UNSUPPORTED, "cuda %s: C = %d (a multiple of 8, at most 2048, is built)", op, C);
    if (aligned & 15) return ab_fail(AB_ERR_UNSUPPORTED, "cuda %s: tensors must be 16-byte aligned", op);
    return AB_OK;
}

static ab_status cuda_layernorm_forward(ab_backend *be, void *out, float *mean, float *rstd, const void *inp,
                                        const void *weight, const void *bias, int N, int C) {
    AB_TRY(layernorm_shape("layernorm_forward", C, (uintptr_t)out | (uintptr_t)inp | (uintptr_t)weight | (uintptr_t)bias));
    const dim3 grid(cuda_blocks((size_t)N, 8)), block(256);
    bf16 *o = (bf16 *)out;
    const bf16 *x = (const bf16 *)inp, *w = (const bf16 *)weight, *b = (const bf16 *)bias;
    void (*kernel)(bf16 *, float *, float *, const bf16 *, const bf16 *, const bf16 *, int, int) =
        C <= 768 ? layernorm_forward_kernel<3> : C <= 1024 ? layernorm_forward_kernel<4> : layernorm_forward_kernel<8>;
    return cuda_launch_dependent(be, "layernorm_forward", kernel, grid, block, 0, o, mean, rstd, x, w, b, N, C);
}

/* dinp (N,C) += LN backward, stage 1 of 2. One warp per row, grid-stride; lane l owns columns l*8 + 256*k
 * (k < CHUNKS, C <= 256*CHUNKS, C % 8 == 0), so its slice of the weight stays in registers and the
 * weight / bias gradients accumulate in registers across the warp's rows. A row's dout, inp and dinp are
 * loaded once (16-byte loads, all in flight together) and kept packed until dinp is written back. The
 * block's warps are summed in shared memory (sh: warps x C fp32) in a fixed order, and the block writes
 * its partial sums to part[blockIdx.x] (2C fp32: dweight, dbias): no atomics, deterministic. */
#define LNB_WARPS 8
#define LNB_BLOCKS_PER_SM(chunks) ((chunks) <= 3 ? 2 : 1) /* what the registers allow (C <= 768: 2) */
template <int CHUNKS>
__global__ void __launch_bounds__(LNB_WARPS * 32, LNB_BLOCKS_PER_SM(CHUNKS))
    layernorm_backward_kernel(bf16 *dinp, float *part, const bf16 *dout, const bf16 *inp, const bf16 *w,
                              const float *mean, const float *rstd, int N, int C) {
    extern __shared__ float sh[];
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    uint4 uw[CHUNKS]; /* the lane's weight slice, bf16 */
    float gw[CHUNKS][8], gb[CHUNKS][8];
#pragma unroll
    for (int k = 0; k < CHUNKS; k++) {
        if ((lane + 32 * k) * 8 < C) uw[k] = reinterpret_cast<const uint4 *>(w)[lane + 32 * k];
#pragma unroll
        for (int e = 0; e < 8; e++) gw[k][e] = gb[k][e] = 0.0f;
    }
    for (int row = blockIdx.x * LNB_WARPS + warp; row < N; row += gridDim.x * LNB_WARPS) {
        const uint4 *dy = reinterpret_cast<const uint4 *>(dout + (size_t)row * C);
        const uint4 *x = reinterpret_cast<const uint4 *>(inp + (size_t)row * C);
        uint4 *dx = reinterpret_cast<uint4 *>(dinp + (size_t)row * C);
        uint4 udy[CHUNKS], ux[CHUNKS], udx[CHUNKS];
#pragma unroll
        for (int k = 0; k < CHUNKS; k++) {
            int v = lane + 32 * k; /* 8-element vector index in the row */
            if (v * 8 < C) {
                udy[k] = dy[v];
                ux[k] = x[v];
                udx[k] = dx[v];
            }
        }
        float m = mean[row], r = rstd[row], sd = 0.0f, sdx = 0.0f;
#pragma unroll
        for (int k = 0; k < CHUNKS; k++) {
            if ((lane + 32 * k) * 8 >= C) break;
            const bf16 *hdy = reinterpret_cast<const bf16 *>(&udy[k]), *hx = reinterpret_cast<const bf16 *>(&ux[k]);
            const bf16 *hw = reinterpret_cast<const bf16 *>(&uw[k]);
#pragma unroll
            for (int e = 0; e < 8; e++) {
                float d = bf2f(hdy[e]), xhat = (bf2f(hx[e]) - m) * r, dxhat = d * bf2f(hw[e]);
                sd += dxhat;
                sdx += dxhat * xhat;
                gw[k][e] += d * xhat;
                gb[k][e] += d;
            }
        }
        sd = warp_sum(sd) / C;
        sdx = warp_sum(sdx) / C;
#pragma unroll
        for (int k = 0; k < CHUNKS; k++) {
            int v = lane + 32 * k;
            if (v * 8 >= C) break;
            const bf16 *hdy = reinterpret_cast<const bf16 *>(&udy[k]), *hx = reinterpret_cast<const bf16 *>(&ux[k]);
            const bf16 *hw = reinterpret_cast<const bf16 *>(&uw[k]);
            bf16 *hdx = reinterpret_cast<bf16 *>(&udx[k]);
#pragma unroll
            for (int e = 0; e < 8; e++)
                hdx[e] = f2bf(bf2f(hdx[e]) + r * (bf2f(hdy[e]) * bf2f(hw[e]) - sd - (bf2f(hx[e]) - m) * r * sdx));
            dx[v] = udx[k];
        }
    }
    /* block sums: dweight through sh, then dbias through sh */
    for (int pass = 0; pass < 2; pass++) {
#pragma unroll
        for (int k = 0; k < CHUNKS; k++)
#pragma unroll
            for (int e = 0; e < 8; e++) {
                int c = lane * 8 + 256 * k + e;
                if (c < C) sh[warp * C + c] = pass ? gb[k][e] : gw[k][e];
            }
        __syncthreads();
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float t = 0.0f;
            for (int i = 0; i < LNB_WARPS; i++) t += sh[i * C + c];
            part[(size_t)blockIdx.x * 2 * C + pass * C + c] = t;
        }
        __syncthreads();
    }
}

/* Stage 2: dweight[c] += sum over blocks of part[b][c], dbias[c] += sum of part[b][C + c]. A block
 * covers 32 of the 2C columns with 16 groups of rows; each thread sums its group's rows in block order
 * and the groups are added in order (deterministic). */
#define LNB_GROUPS 16
__global__ void layernorm_param_grad_kernel(bf16 *dw, bf16 *db, const float *part, int nblocks, int C) {
    __shared__ float red[LNB_GROUPS][33];
    int lane = threadIdx.x % 32, grp = threadIdx.x / 32, col = blockIdx.x * 32 + lane;
    float t = 0.0f;
    if (col < 2 * C) {
#pragma unroll 4
        for (int b = grp; b < nblocks; b += LNB_GROUPS) t += part[(size_t)b * 2 * C + col];
    }
    red[grp][lane] = t;
    __syncthreads();
    if (grp != 0 || col >= 2 * C) return;
    for (int i = 1; i < LNB_GROUPS; i++) t += red[i][lane];
    bf16 *dst = col < C ? dw + col : db + (col - C);
    *dst = f2bf(bf2f(*dst) + t);
}

static ab_status cuda_layernorm_backward(ab_backend *be, void *dinp, void *dweight, void *dbias, const void *dout,
                                         const void *inp, const void *weight, const float *mean, const float *rstd,
                                         int N, int C) {
    cuda_impl *ci = cuda_of(be);
    AB_TRY(layernorm_shape("layernorm_backward", C, (uintptr_t)dinp | (uintptr_t)dout | (uintptr_t)inp | (uintptr_t)weight));
    int blocks = ci->sm_count * (C <= 768 ? LNB_BLOCKS_PER_SM(3) : LNB_BLOCKS_PER_SM(4));
    if (blocks > (N + LNB_WARPS - 1) / LNB_WARPS) blocks = (N + LNB_WARPS - 1) / LNB_WARPS;
    if (blocks < 1) blocks = 1;
    AB_TRY(cuda_scratch_reserve(be, &ci->reduce, (size_t)blocks * 2 * C * sizeof(float), MEM_WORKSPACE,
                                "layernorm_backward"));
    float *part = (float *)ci->reduce.buf.ptr;
    size_t sh_bytes = (size_t)LNB_WARPS * C * sizeof(float);
    bf16 *dx = (bf16 *)dinp;
    const bf16 *dy = (const bf16 *)dout, *x = (const bf16 *)inp, *w = (const bf16 *)weight;
    if (C <= 768) {
        layernorm_backward_kernel<3><<<blocks, LNB_WARPS * 32, sh_bytes, ci->stream>>>(dx, part, dy, x, w, mean, rstd, N, C);
    } else if (C <= 1024) {
        layernorm_backward_kernel<4><<<blocks, LNB_WARPS * 32, sh_bytes, ci->stream>>>(dx, part, dy, x, w, mean, rstd, N, C);
    } else { /* up to 64 KB of shared memory: above the default 48 KB */
        CUDA_TRY(cudaFuncSetAttribute(layernorm_backward_kernel<8>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh_bytes),
                 "layernorm_backward shared memory");
        layernorm_backward_kernel<8><<<blocks, LNB_WARPS * 32, sh_bytes, ci->stream>>>(dx, part, dy, x, w, mean, rstd, N, C);
    }
    AB_TRY(cuda_check_launch("layernorm_backward"));
    layernorm_param_grad_kernel<<<cuda_blocks((size_t)2 * C, 32), LNB_GROUPS * 32, 0, ci->stream>>>(
        (bf16 *)dweight, (bf16 *)dbias, part, blocks, C);
    return cuda_check_launch("layernorm_param_grad");
}

/* ------------------------------------------------------------------ gelu, residual, accumulate */

__global__ void gelu_forward_kernel(bf16 *out, const bf16 *inp, size_t n) {
    size_t i = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) * 8;
    if (i >= n) return;
    float x[8];
    load8(x, inp, i, n);
#pragma unroll
    for (int k = 0; k < 8; k++) x[k] = gelu_tanh(x[k]);
    store8(out, i, n, x);
}

__global__ void gelu_backward_kernel(bf16 *dinp, const bf16 *inp, const bf16 *dout, size_t n) {
    size_t i = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) * 8;
    if (i >= n) return;
    float x[8], d[8], g[8];
    load8(x, inp, i, n);
    load8(d, dout, i, n);
    load8(g, dinp, i, n);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        float t = tanhf(GELU_SCALE * (x[k] + 0.044715f * x[k] * x[k] * x[k]));
        float grad = 0.5f * (1.0f + t) + 0.5f * x[k] * (1.0f - t * t) * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x[k] * x[k]);
        g[k] += grad * d[k];
    }
    store8(dinp, i, n, g);
}

/* out = a + b; out may alias a */
__global__ void add_kernel(bf16 *out, const bf16 *a, const bf16 *b, size_t n) {
    size_t i = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) * 8;
    if (i >= n) return;
    float x[8], y[8];
    load8(x, a, i, n);
    load8(y, b, i, n);
#pragma unroll
    for (int k = 0; k < 8; k++) x[k] += y[k];
    store8(out, i, n, x);
}

static ab_status cuda_gelu_forward(ab_backend *be, void *out, const void *inp, size_t n) {
    gelu_forward_kernel<<<cuda_blocks((n + 7) / 8, 256), 256, 0, cuda_stream(be)>>>((bf16 *)out, (const bf16 *)inp, n);
    return cuda_check_launch("gelu_forward");
}

static ab_status cuda_gelu_backward(ab_backend *be, void *dinp, const void *inp, const void *dout, size_t n) {
    gelu_backward_kernel<<<cuda_blocks((n + 7) / 8, 256), 256, 0, cuda_stream(be)>>>((bf16 *)dinp, (const bf16 *)inp,
                                                                                       (const bf16 *)dout, n);
    return cuda_check_launch("gelu_backward");
}

static ab_status cuda_residual_forward(ab_backend *be, void *out, const void *a, const void *b, size_t n) {
    add_kernel<<<cuda_blocks((n + 7) / 8, 256), 256, 0, cuda_stream(be)>>>((bf16 *)out, (const bf16 *)a,
                                                                             (const bf16 *)b, n);
    return cuda_check_launch("residual_forward");
}

static ab_status cuda_accumulate(ab_backend *be, void *dst, const void *src, size_t n) {
    add_kernel<<<cuda_blocks((n + 7) / 8, 256), 256, 0, cuda_stream(be)>>>((bf16 *)dst, (const bf16 *)dst,
                                                                             (const bf16 *)src, n);
    return cuda_check_launch("accumulate");
}

/* ------------------------------------------------------------------ classifier */

/* One block per row of a bf16 logits chunk (row stride ld >= V, ld % 8 == 0, rows 16-byte aligned):
 * loss = logsumexp - logit[target] (0 when the target is < 0). The target's logit is recomputed in fp32
 * from x and wte (a C-long dot product, the GEMM's own fp32 accumulation before rounding), so only the
 * logsumexp sees the bf16 rounding of the logits (|error| <= 2^-8 max|logit|, and the softmax averages the
 * roundings). With backward, the row is overwritten in place by dlogits = (softmax - onehot) * dloss, 0 for
 * ignored rows and for the padding columns V..ld. Two passes over the row: the second reads it from L2. */
#define CE_THREADS 512
__global__ void __launch_bounds__(CE_THREADS) cross_entropy_kernel(float *losses, bf16 *lg, const bf16 *x,
                                                                   const bf16 *wte, const int32_t *targets, int V,
                                                                   size_t ld, int C, float dloss, int backward) {
    __shared__ float red[CE_THREADS / 32], tlogit;
    int row = blockIdx.x, target = targets[row];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    uint4 *l = reinterpret_cast<uint4 *>(lg + (size_t)row * ld);
    int n8 = (int)(ld / 8);
    if (warp == 0) { /* exact fp32 logit of the target */
        float d = 0.0f;
        if (target >= 0)
            for (int c = lane * 8; c < C; c += 256) {
                float a[8], b[8];
                load8(a, x + (size_t)row * C, c, C);
                load8(b, wte + (size_t)target * C, c, C);
#pragma unroll
                for (int k = 0; k < 8; k++) d += a[k] * b[k];
            }
        d = warp_sum(d);
        if (lane == 0) tlogit = d;
    }
    float m = -INFINITY, s = 0.0f; /* running max and sum of exp(x - m) */
    for (int i = threadIdx.x; i < n8; i += CE_THREADS) {
        uint4 u = l[i];
        const bf16 *h = reinterpret_cast<const bf16 *>(&u);
        float v[8], vm = -INFINITY;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            v[k] = i * 8 + k < V ? bf2f(h[k]) : -INFINITY;
            vm = fmaxf(vm, v[k]);
        }
        float nm = fmaxf(m, vm), t = 0.0f;
#pragma unroll
        for (int k = 0; k < 8; k++) t += __expf(v[k] - nm);
        s = (m == -INFINITY ? 0.0f : s * __expf(m - nm)) + t;
        m = nm;
    }
    float wm = warp_max(m);
    s = warp_sum(m == -INFINITY ? 0.0f : s * __expf(m - wm));
    if (lane == 0) red[warp] = wm;
    __syncthreads();
    float bm = -INFINITY;
    for (int i = 0; i < CE_THREADS / 32; i++) bm = fmaxf(bm, red[i]);
    __syncthreads();
    if (lane == 0) red[warp] = s * __expf(wm - bm);
    __syncthreads();
    float total = 0.0f;
    for (int i = 0; i < CE_THREADS / 32; i++) total += red[i];
    float lse = bm + logf(total);
    if (threadIdx.x == 0) losses[row] = target >= 0 ? lse - tlogit : 0.0f;
    if (!backward) return;
    for (int i = threadIdx.x; i < n8; i += CE_THREADS) {
        uint4 u = l[i];
        bf16 *h = reinterpret_cast<bf16 *>(&u);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            int v = i * 8 + k;
            float g = target >= 0 && v < V ? (__expf(bf2f(h[k]) - lse) - (v == target ? 1.0f : 0.0f)) * dloss : 0.0f;
            h[k] = f2bf(g);
        }
        l[i] = u;
    }
}

static ab_status cuda_classifier(ab_backend *be, float *losses, void *dx, void *dwte, const void *x, const void *wte,
                                 const int32_t *targets, int N, int C, int V, float dloss) {
    cuda_impl *ci = cuda_of(be);
    if (C % 8) return ab_fail(AB_ERR_UNSUPPORTED, "cuda classifier: C = %d must be a multiple of 8", C);
    int R = N < CLASSIFIER_ROWS ? N : CLASSIFIER_ROWS;
    /* The vocabulary padded to a multiple of 64 (50257 -> 50304): with an odd V, cuBLASLt can only pick
     * align-1 kernels for the products whose contiguous dimension is V, which made them ~7x slower.
     * wte is copied once per call into a zero-padded (ld, C) buffer; padded logits are ignored and padded
     * dlogits are 0, so the products over ld equal those over V. Likewise dwte accumulates in a padded
     * (ld, C) copy (with M = V, cuBLASLt chose a slow sm80 kernel for dlogits^T @ x: 0.85 ms for 4096 rows)
     * that is copied back at the end. */
    size_t ld = ((size_t)V + 63) / 64 * 64, pad_bytes = ld * (size_t)C * sizeof(bf16);
    size_t lg_bytes = (size_t)R * ld * sizeof(bf16);
    size_t need = lg_bytes + pad_bytes * (dx ? 2 : 1);
    AB_TRY(cuda_scratch_reserve(be, &ci->classifier, need, MEM_WORKSPACE, "classifier logits chunk"));
    bf16 *lg = (bf16 *)ci->classifier.buf.ptr;                       /* (R, ld): logits, then dlogits */
    bf16 *wpad = (bf16 *)((char *)ci->classifier.buf.ptr + lg_bytes); /* (ld, C) */
    bf16 *dwpad = dx ? wpad + ld * C : NULL;                          /* (ld, C) */
    const size_t v_bytes = (size_t)V * C * sizeof(bf16);
    CUDA_TRY(cudaMemcpyAsync(wpad, wte, v_bytes, cudaMemcpyDeviceToDevice, ci->stream), "classifier");
    CUDA_TRY(cudaMemsetAsync((char *)wpad + v_bytes, 0, pad_bytes - v_bytes, ci->stream), "classifier");
    if (dx) {
        CUDA_TRY(cudaMemcpyAsync(dwpad, dwte, v_bytes, cudaMemcpyDeviceToDevice, ci->stream), "classifier");
        CUDA_TRY(cudaMemsetAsync((char *)dwpad + v_bytes, 0, pad_bytes - v_bytes, ci->stream), "classifier");
    }
    const bf16 *xb = (const bf16 *)x;
    for (int r0 = 0; r0 < N; r0 += R) {
        int rows = N - r0 < R ? N - r0 : R;
        cuda_gemm_args g;
        memset(&g, 0, sizeof g); /* lg (rows,ld) bf16 = x[r0:] (rows,C) @ wpad^T (C,ld) */
        g.trans_b = 1; g.M = rows; g.N = (int)ld; g.K = C; g.alpha = 1.0f; g.beta = 0.0f;
        g.A = xb + (size_t)r0 * C; g.lda = C;
        g.B = wpad; g.ldb = C;
        g.C = lg; g.ldc = (int)ld;
        AB_TRY(cuda_gemm(be, &g));
        cross_entropy_kernel<<<rows, CE_THREADS, 0, ci->stream>>>(losses + r0, lg, xb + (size_t)r0 * C, wpad,
                                                                   targets + r0, V, ld, C, dloss, dx != NULL);
        AB_TRY(cuda_check_launch("cross_entropy"));
        if (!dx) continue;
        memset(&g, 0, sizeof g); /* dx[r0:] (rows,C) += lg (rows,ld) @ wpad (ld,C) */
        g.M = rows; g.N = C; g.K = (int)ld; g.alpha = 1.0f; g.beta = 1.0f;
        g.A = lg; g.lda = (int)ld;
        g.B = wpad; g.ldb = C;
        g.C = (bf16 *)dx + (size_t)r0 * C; g.ldc = C;
        AB_TRY(cuda_gemm(be, &g));
        memset(&g, 0, sizeof g); /* dwpad (ld,C) += lg^T (ld,rows) @ x[r0:] (rows,C) */
        g.trans_a = 1; g.M = (int)ld; g.N = C; g.K = rows; g.alpha = 1.0f; g.beta = 1.0f;
        g.A = lg; g.lda = (int)ld;
        g.B = xb + (size_t)r0 * C; g.ldb = C;
        g.C = dwpad; g.ldc = C;
        AB_TRY(cuda_gemm(be, &g));
    }
    if (dx) CUDA_TRY(cudaMemcpyAsync(dwte, dwpad, v_bytes, cudaMemcpyDeviceToDevice, ci->stream), "classifier");
    return AB_OK;
}

static ab_status cuda_logits(ab_backend *be, float *logits, const void *x, const void *wte, int N, int C, int V) {
    int done;
    AB_TRY(cuda_logits_small_m(be, logits, x, NULL, wte, N, C, V, &done)); /* a decode step's rows */
    if (done) return AB_OK;
    cuda_gemm_args g; /* logits (N,V) f32 = x (N,C) @ wte^T */
    memset(&g, 0, sizeof g);
    g.trans_b = 1; g.M = N; g.N = V; g.K = C; g.alpha = 1.0f; g.beta = 0.0f;
    g.A = (const bf16 *)x; g.lda = C;
    g.B = (const bf16 *)wte; g.ldb = C;
    g.C = logits; g.ldc = V; g.c_f32 = 1;
    return cuda_gemm(be, &g);
}

/* At one row the logits kernel normalises the row itself (every block for itself, as the small-M products do) */
static ab_status cuda_layernorm_logits(ab_backend *be, const ab_layernorm_input *ln, float *logits, const void *x,
                                       const void *wte, int N, int C, int V) {
    int done = 0;
    if (N == 1) AB_TRY(cuda_logits_small_m(be, logits, x, ln, wte, N, C, V, &done));
    if (done) return AB_OK;
    AB_TRY(cuda_layernorm_forward(be, ln->out, ln->mean, ln->rstd, x, ln->w, ln->b, N, C));
    return cuda_logits(be, logits, ln->out, wte, N, C, V);
}

/* ------------------------------------------------------------------ optimizer */

/* AdamW (PyTorch semantics) on fp32 master weights; the bf16 compute copy is rewritten from them. */
__global__ void adamw_kernel(bf16 *params, float *master, const bf16 *grads, float *m, float *v, size_t n, float lr,
                             float beta1, float beta2, float eps, float wd, float grad_scale, float bc1, float bc2) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = bf2f(grads[i]) * grad_scale, p = master[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * g, vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    p -= lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p);
    master[i] = p;
    params[i] = f2bf(p);
}

static ab_status cuda_adamw(ab_backend *be, void *params, float *master, const void *grads, float *m, float *v,
                            size_t n, const ab_adamw_args *a) {
    if (!master) return ab_fail(AB_ERR_INTERNAL, "cuda adamw: fp32 master weights are required (params are bf16)");
    float bc1 = 1.0f - powf(a->beta1, (float)a->step), bc2 = 1.0f - powf(a->beta2, (float)a->step);
    adamw_kernel<<<cuda_blocks(n, 256), 256, 0, cuda_stream(be)>>>((bf16 *)params, master, (const bf16 *)grads, m, v, n,
                                                                     a->lr, a->beta1, a->beta2, a->eps, a->weight_decay,
                                                                     a->grad_scale, bc1, bc2);
    return cuda_check_launch("adamw");
}

/* partial[block] = sum of x^2 over a grid-stride slice (fp32 per thread, double across the block) */
__global__ void sum_squares_kernel(double *partial, const bf16 *x, size_t n) {
    __shared__ double red[32];
    float s = 0.0f;
    for (size_t i = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) * 8; i < n; i += (size_t)gridDim.x * blockDim.x * 8) {
        float v[8];
        load8(v, x, i, n);
#pragma unroll
        for (int k = 0; k < 8; k++) s += v[k] * v[k];
    }
    s = warp_sum(s);
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int i = 0; i < (int)blockDim.x / 32; i++) t += red[i];
        partial[blockIdx.x] = t;
    }
}

static ab_status cuda_sum_squares(ab_backend *be, double *out, const void *x, size_t n) {
    cuda_impl *ci = cuda_of(be);
    int blocks = ci->sm_count * 4 < 4096 ? ci->sm_count * 4 : 4096;
    size_t want = cuda_blocks((n + 7) / 8, 256);
    if ((size_t)blocks > want) blocks = want ? (int)want : 1;
    AB_TRY(cuda_scratch_reserve(be, &ci->partials, (size_t)4096 * sizeof(double), MEM_WORKSPACE, "sum_squares"));
    sum_squares_kernel<<<blocks, 256, 0, ci->stream>>>((double *)ci->partials.buf.ptr, (const bf16 *)x, n);
    AB_TRY(cuda_check_launch("sum_squares"));
    double host[4096];
    AB_TRY(cuda_copy_to_host(be, host, ci->partials.buf.ptr, (size_t)blocks * sizeof(double)));
    double s = 0.0;
    for (int i = 0; i < blocks; i++) s += host[i];
    *out = s;
    return AB_OK;
}

/* ------------------------------------------------------------------ lifetime */

static void cuda_shutdown(ab_backend *be) {
    cuda_impl *ci = cuda_of(be);
    if (!ci) return;
    if (ci->stream) cudaStreamSynchronize(ci->stream);
    cuda_scratch_release(be, &ci->reduce);
    cuda_scratch_release(be, &ci->partials);
    cuda_scratch_release(be, &ci->classifier);
    cuda_scratch_release(be, &ci->encoder);
    cuda_scratch_release(be, &ci->ones);
    cuda_scratch_release(be, &ci->decode_pos);
    cuda_free_op(be, &ci->lt_workspace_buf);
    cuda_free_op(be, &ci->chain_barrier);
    if (ci->host_buckets) cudaFreeHost(ci->host_buckets);
    free(ci->host_keys);
    if (ci->bucket_copied) cudaEventDestroy(ci->bucket_copied);
    if (ci->lt) cublasLtDestroy(ci->lt);
    if (ci->side_stream) cudaStreamDestroy(ci->side_stream);
    if (ci->stream) cudaStreamDestroy(ci->stream);
    free(ci);
    be->impl = NULL;
}

static ab_status cuda_init(ab_backend *be) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        return ab_fail(AB_ERR_DEVICE, "cuda: no usable GPU (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    if (be->device_index < 0 || be->device_index >= count)
        return ab_fail(AB_ERR_USAGE, "--gpu %d: this machine has %d GPU%s (0..%d)", be->device_index, count,
                       count == 1 ? "" : "s", count - 1);
    CUDA_TRY(cudaSetDevice(be->device_index), "cudaSetDevice");
    cuda_impl *ci = (cuda_impl *)calloc(1, sizeof *ci);
    if (!ci) return ab_fail(AB_ERR_OOM, "cuda: cannot allocate backend state");
    be->impl = ci;
    ab_status st = AB_OK;
    cudaDeviceProp prop;
    cublasStatus_t ls;
    if ((e = cudaGetDeviceProperties(&prop, be->device_index)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&ci->stream, cudaStreamNonBlocking)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&ci->side_stream, cudaStreamNonBlocking)) != cudaSuccess ||
        (e = cudaEventCreateWithFlags(&ci->bucket_copied, cudaEventDisableTiming)) != cudaSuccess) {
        st = cuda_status(e, "backend init");
        goto fail;
    }
    ci->sm_count = prop.multiProcessorCount;
    if ((ls = cublasLtCreate(&ci->lt)) != CUBLAS_STATUS_SUCCESS) {
        st = ab_fail(AB_ERR_DEVICE, "cuda: cublasLtCreate failed (status %d)", (int)ls);
        goto fail;
    }
    if ((st = cuda_alloc_op(be, &ci->lt_workspace_buf, LT_WORKSPACE_BYTES, MEM_WORKSPACE)) != AB_OK) goto fail;
    ci->lt_workspace = ci->lt_workspace_buf.ptr;
    ci->lt_workspace_bytes = LT_WORKSPACE_BYTES;
    be->graphs = ab_backend_switch_env("AB_CUDA_GRAPHS");
    ci->pdl = prop.major >= 9 && ab_backend_switch_env("AB_CUDA_PDL");
    ci->chain = ab_backend_switch_env("AB_CUDA_CHAIN");
    ci->smem_optin = prop.sharedMemPerBlockOptin;
    if ((st = cuda_alloc_op(be, &ci->chain_barrier, 256, MEM_WORKSPACE)) != AB_OK) goto fail;
    return AB_OK;
fail:
    cuda_shutdown(be);
    return st;
}

extern "C" const ab_backend_ops ab_cuda_backend = {
    /* .name = */ "cuda",
    /* .id = */ BACKEND_CUDA,
    /* .act_bytes = */ 2,
    /* .init = */ cuda_init,
    /* .shutdown = */ cuda_shutdown,
    /* .alloc = */ cuda_alloc_op,
    /* .free = */ cuda_free_op,
    /* .memzero = */ cuda_memzero,
    /* .copy_to_device = */ cuda_copy_to_device,
    /* .copy_to_host = */ cuda_copy_to_host,
    /* .copy = */ cuda_copy,
    /* .upload_f32 = */ cuda_upload_f32,
    /* .download_f32 = */ cuda_download_f32,
    /* .synchronize = */ cuda_synchronize,
    /* .encoder_forward = */ cuda_encoder_forward,
    /* .encoder_backward = */ cuda_encoder_backward,
    /* .layernorm_forward = */ cuda_layernorm_forward,
    /* .layernorm_backward = */ cuda_layernorm_backward,
    /* .matmul_forward = */ cuda_matmul_forward,
    /* .matmul_backward = */ cuda_matmul_backward,
    /* .gelu_forward = */ cuda_gelu_forward,
    /* .gelu_backward = */ cuda_gelu_backward,
    /* .residual_forward = */ cuda_residual_forward,
    /* .accumulate = */ cuda_accumulate,
    /* .classifier = */ cuda_classifier,
    /* .logits = */ cuda_logits,
    /* .adamw = */ cuda_adamw,
    /* .sum_squares = */ cuda_sum_squares,
    /* .matmul_residual_forward = */ cuda_matmul_residual_forward,
    /* .matmul_gelu_forward = */ cuda_matmul_gelu_forward,
    /* .layernorm_matmul_forward = */ cuda_layernorm_matmul_forward,
    /* .gelu_matmul_backward = */ cuda_gelu_matmul_backward,
    /* .layernorm_logits = */ cuda_layernorm_logits,
    /* .block_tail_forward = */ cuda_block_tail_forward,
    /* .host_alloc = */ cuda_host_alloc,
    /* .host_free = */ cuda_host_free,
    /* .copy_to_device_async = */ cuda_copy_to_device_async,
    /* .graph_begin = */ cuda_graph_begin,
    /* .graph_end = */ cuda_graph_end,
    /* .graph_launch = */ cuda_graph_launch,
    /* .graph_free = */ cuda_graph_free,
};
