/*
 * attn_common.cu — the parts of attention every CUDA variant shares: the c_attn projection (through the
 * backend's cuBLASLt matmul), head permutes, and the KV cache with its one-token decode kernel.
 */
#include <string.h>

#include "backend/cuda/cuda_attn.cuh"

ab_status attn_qkv_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, bf16 *qkv, const void *x, int BT) {
    int C = ctx->cfg->C;
    return cuda_matmul_forward(ctx->be, qkv, x, w->t[0], w->t[1], BT, C, 3 * C);
}

ab_status attn_qkv_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                            const bf16 *dqkv, const void *x, void *dx, int BT) {
    int C = ctx->cfg->C;
    return cuda_matmul_backward(ctx->be, dx, dw ? dw->t[0] : NULL, dw ? dw->t[1] : NULL, dqkv, x, w->t[0], BT, C,
                                3 * C);
}

/* 8 elements of D per thread. tok: (B,T,parts,H,D); head: (parts,B,H,T,D). */
__global__ void permute_heads_kernel(bf16 *dst, const bf16 *src, int B, int T, int parts, int H, int D, int to_heads) {
    size_t idx = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) * 8;
    size_t n = (size_t)B * T * parts * H * D;
    if (idx >= n) return;
    int d = (int)(idx % D);
    size_t r = idx / D;
    int h = (int)(r % H); r /= H;
    int p = (int)(r % parts); r /= parts;
    int t = (int)(r % T);
    int b = (int)(r / T);
    size_t head = ((((size_t)p * B + b) * H + h) * T + t) * D + d;
    if (to_heads)
        *reinterpret_cast<uint4 *>(dst + head) = *reinterpret_cast<const uint4 *>(src + idx);
    else
        *reinterpret_cast<uint4 *>(dst + idx) = *reinterpret_cast<const uint4 *>(src + head);
}

ab_status attn_permute(ab_backend *be, bf16 *dst, const bf16 *src, int B, int T, int parts, int H, int D, int to_heads) {
    if (D % 8) return ab_fail(AB_ERR_UNSUPPORTED, "cuda attention: head size %d must be a multiple of 8", D);
    size_t n8 = (size_t)B * T * parts * H * D / 8;
    permute_heads_kernel<<<cuda_blocks(n8, 256), 256, 0, cuda_stream(be)>>>(dst, src, B, T, parts, H, D, to_heads);
    return cuda_check_launch("permute_heads");
}

size_t attn_kv_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    return (size_t)max_T * B * 2 * cfg->C * sizeof(bf16);
}

/* cache[t][b][0:C] = k, cache[t][b][C:2C] = v, from qkv (B,T,3C); 8 elements per thread */
__global__ void kv_cache_fill_kernel(bf16 *cache, const bf16 *qkv, int B, int T, int C, int t0) {
    size_t idx = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) * 8; /* over (B,T,2C) */
    if (idx >= (size_t)B * T * 2 * C) return;
    int c = (int)(idx % (2 * C));
    size_t bt = idx / (2 * C);
    int t = (int)(bt % T), b = (int)(bt / T);
    *reinterpret_cast<uint4 *>(cache + (((size_t)(t0 + t) * B + b) * 2 * C + c)) =
        *reinterpret_cast<const uint4 *>(qkv + bt * 3 * C + C + c);
}

ab_status attn_kv_cache_fill(ab_backend *be, bf16 *cache, const bf16 *qkv, int B, int T, int C) {
    size_t n8 = (size_t)B * T * 2 * C / 8;
    kv_cache_fill_kernel<<<cuda_blocks(n8, 256), 256, 0, cuda_stream(be)>>>(cache, qkv, B, T, C, 0);
    return cuda_check_launch("kv_cache_fill");
}

/* One block per (b, h): scores of q (pos) against cached keys 0..pos in shared memory (fp32), softmax,
 * then o = sum_j p_j v_j; 128 threads, D <= 128. */
__global__ void kv_decode_kernel(bf16 *y, const bf16 *qkv1, const bf16 *cache, int B, int H, int D, int pos,
                                 float tau) {
    extern __shared__ float sh[]; /* q[D], p[pos+1], red[32], part[2][D] */
    int b = blockIdx.x / H, h = blockIdx.x % H, C = H * D, n = pos + 1;
    float *q = sh, *p = sh + D, *red = p + n, *part = red + 32;
    for (int d = threadIdx.x; d < D; d += blockDim.x) q[d] = bf2f(qkv1[(size_t)b * 3 * C + h * D + d]) * tau;
    __syncthreads();
    float m = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const bf16 *k = cache + ((size_t)j * B + b) * 2 * C + h * D;
        float s = 0.0f;
        for (int d = 0; d < D; d++) s += q[d] * bf2f(k[d]);
        p[j] = s;
        m = fmaxf(m, s);
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
    m = warp_max(m);
    if (lane == 0) red[warp] = m;
    __syncthreads();
    m = -INFINITY;
    for (int i = 0; i < nw; i++) m = fmaxf(m, red[i]);
    __syncthreads();
    float s = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float e = __expf(p[j] - m);
        p[j] = e;
        s += e;
    }
    s = warp_sum(s);
    if (lane == 0) red[warp] = s;
    __syncthreads();
    float total = 0.0f;
    for (int i = 0; i < nw; i++) total += red[i];
    /* threads split into two halves over j, each thread one d */
    int half = threadIdx.x / 64, d = threadIdx.x % 64;
    for (int dd = d; dd < D; dd += 64) {
        float o = 0.0f;
        for (int j = half; j < n; j += 2) o += p[j] * bf2f(cache[((size_t)j * B + b) * 2 * C + C + h * D + dd]);
        part[half * D + dd] = o;
    }
    __syncthreads();
    for (int dd = threadIdx.x; dd < D; dd += blockDim.x)
        y[(size_t)b * C + h * D + dd] = f2bf((part[dd] + part[D + dd]) / total);
}

size_t attn_decode_workspace_bytes(const ab_attn_config *cfg, int B) { return align256((size_t)B * 3 * cfg->C * 2); }

ab_status attn_kv_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x, int B,
                         int pos) {
    const ab_attn_config *cfg = ctx->cfg;
    int C = cfg->C, H = cfg->H, D = cfg->D;
    if (pos < 0 || pos >= cfg->max_T)
        return ab_fail(AB_ERR_USAGE, "cuda decode: position %d outside 0..%d", pos, cfg->max_T - 1);
    if (D > 128 || D % 8) return ab_fail(AB_ERR_UNSUPPORTED, "cuda decode: head size %d (needs <= 128, multiple of 8)", D);
    bf16 *qkv1 = (bf16 *)ctx->workspace;
    AB_TRY(attn_qkv_forward(ctx, w, qkv1, x, B));
    kv_cache_fill_kernel<<<cuda_blocks((size_t)B * 2 * C / 8, 256), 256, 0, cuda_stream(ctx->be)>>>(
        (bf16 *)cache, qkv1, B, 1, C, pos);
    AB_TRY(cuda_check_launch("kv_cache_append"));
    size_t shmem = (size_t)(D + pos + 1 + 32 + 2 * D) * sizeof(float);
    if (shmem > 48 * 1024)
        return ab_fail(AB_ERR_UNSUPPORTED, "cuda decode: position %d needs %zu bytes of shared memory", pos, shmem);
    kv_decode_kernel<<<B * H, 128, shmem, cuda_stream(ctx->be)>>>((bf16 *)y, qkv1, (const bf16 *)cache, B, H, D, pos,
                                                                   1.0f / sqrtf((float)D));
    return cuda_check_launch("kv_decode");
}
