/*
 * attn_common.cu — the parts of attention every CUDA variant shares: the c_attn projection (through the
 * backend's cuBLASLt matmul), head permutes, the decode position in device memory (cuda_decode_pos), and the
 * KV cache with its one-token decode kernel, which reads the position on the device so that a recorded decode
 * step replays at every position.
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

attn_kv_layout attn_kv_layout_mha(const ab_attn_config *cfg) {
    attn_kv_layout L = {cfg->H, cfg->H, cfg->D, cfg->max_T, cfg->max_T};
    return L;
}

size_t attn_kv_layout_bytes(const attn_kv_layout *L, int B) { return (size_t)L->cap * B * 2 * L->G * L->D * sizeof(bf16); }

size_t attn_kv_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    return (size_t)max_T * B * 2 * cfg->C * sizeof(bf16);
}

ab_status cuda_decode_pos(const ab_attn_ctx *ctx, int pos, const int32_t **pos_dev) {
    if (ctx->pos_dev) {
        *pos_dev = ctx->pos_dev;
        return AB_OK;
    }
    cuda_impl *ci = cuda_of(ctx->be);
    AB_TRY(cuda_scratch_reserve(ctx->be, &ci->decode_pos, sizeof(int32_t), MEM_OTHER, "decode position"));
    /* from pageable memory, cudaMemcpyAsync has copied the value to a staging buffer when it returns */
    const int32_t host = pos;
    CUDA_TRY(cudaMemcpyAsync(ci->decode_pos.buf.ptr, &host, sizeof host, cudaMemcpyHostToDevice, ci->stream),
             "decode position upload");
    *pos_dev = (const int32_t *)ci->decode_pos.buf.ptr;
    return AB_OK;
}

/* Rows t in [first, T) of qkv (B,T,ld), which hold positions t0 + t (t0 = *pos0, or 0 when pos0 is NULL): columns
 * [koff, koff + KV) (k | v) into cache slot (t0 + t) % cap, cache (cap, B, KV); 8 elements per thread. */
__global__ void kv_cache_fill_kernel(bf16 *cache, const bf16 *qkv, int B, int T, int first, int ld, int koff, int KV,
                                     const int32_t *pos0, int cap) {
    const int n = T - first, t0 = pos0 ? *pos0 : 0;
    size_t idx = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) * 8; /* over (B, n, KV) */
    if (idx >= (size_t)B * n * KV) return;
    int c = (int)(idx % KV);
    size_t r = idx / KV;
    int t = first + (int)(r % n), b = (int)(r / n);
    *reinterpret_cast<uint4 *>(cache + ((size_t)((t0 + t) % cap) * B + b) * KV + c) =
        *reinterpret_cast<const uint4 *>(qkv + ((size_t)b * T + t) * ld + koff + c);
}

static ab_status kv_fill(ab_backend *be, bf16 *cache, const bf16 *qkv, int B, int T, int first, int ld, int koff, int KV,
                         const int32_t *pos0, int cap) {
    size_t n8 = (size_t)B * (T - first) * KV / 8;
    if (n8 == 0) return AB_OK;
    kv_cache_fill_kernel<<<cuda_blocks(n8, 256), 256, 0, cuda_stream(be)>>>(cache, qkv, B, T, first, ld, koff, KV, pos0,
                                                                             cap);
    return cuda_check_launch("kv_cache_fill");
}

ab_status attn_kv_cache_fill(ab_backend *be, bf16 *cache, const bf16 *qkv, int B, int T, int C) {
    return kv_fill(be, cache, qkv, B, T, 0, 3 * C, C, 2 * C, NULL, T);
}

ab_status attn_kv_cache_fill_layout(ab_backend *be, const attn_kv_layout *L, bf16 *cache, const bf16 *qkv, int B,
                                    int T) {
    const int C = L->H * L->D, KV = 2 * L->G * L->D;
    return kv_fill(be, cache, qkv, B, T, T > L->cap ? T - L->cap : 0, C + KV, C, KV, NULL, L->cap);
}

/* One block per (b, h): scores of q (position pos = *pos_dev; row b of qkv1 (B, H*D + 2*G*D)) against the cached
 * keys lo..pos, lo = max(0, pos - seen + 1), of KV head g = h / (H/G) (position j in slot j % cap of cache (cap, B,
 * [K | V], G*D)) in shared memory (fp32), softmax, then o = sum_j p_j v_j; 128 threads, D <= 128. */
__global__ void kv_decode_kernel(bf16 *y, const bf16 *qkv1, const bf16 *cache, int B, int H, int G, int D, int seen,
                                 const int32_t *pos_dev, int cap, float tau) {
    extern __shared__ float sh[]; /* q[D], p[seen], red[32], part[2][D] */
    const int pos = *pos_dev, lo = pos - seen + 1 > 0 ? pos - seen + 1 : 0, n = pos - lo + 1;
    int b = blockIdx.x / H, h = blockIdx.x % H, C = H * D, GD = G * D;
    const bf16 *kb = cache + (size_t)b * 2 * GD + (h / (H / G)) * D; /* key of slot s: kb + s * B * 2 * GD */
    const size_t slot_stride = (size_t)B * 2 * GD;
    float *q = sh, *p = sh + D, *red = p + seen, *part = red + 32;
    for (int d = threadIdx.x; d < D; d += blockDim.x) q[d] = bf2f(qkv1[(size_t)b * (C + 2 * GD) + h * D + d]) * tau;
    __syncthreads();
    float m = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const bf16 *k = kb + ((lo + j) % cap) * slot_stride;
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
        for (int j = half; j < n; j += 2) o += p[j] * bf2f(kb[((lo + j) % cap) * slot_stride + GD + dd]);
        part[half * D + dd] = o;
    }
    __syncthreads();
    for (int dd = threadIdx.x; dd < D; dd += blockDim.x)
        y[(size_t)b * C + h * D + dd] = f2bf((part[dd] + part[D + dd]) / total);
}

size_t attn_decode_workspace_bytes(const ab_attn_config *cfg, int B) { return align256((size_t)B * 3 * cfg->C * 2); }

ab_status attn_kv_decode_layout(const ab_attn_ctx *ctx, const attn_kv_layout *L, const ab_attn_weights *w, void *cache,
                                void *y, const void *x, int B, int pos) {
    const ab_attn_config *cfg = ctx->cfg;
    const int H = L->H, G = L->G, D = L->D, C = H * D, KV = 2 * G * D;
    if (pos < 0 || pos >= cfg->max_T)
        return ab_fail(AB_ERR_USAGE, "cuda decode: position %d outside 0..%d", pos, cfg->max_T - 1);
    if (D > 128 || D % 8) return ab_fail(AB_ERR_UNSUPPORTED, "cuda decode: head size %d (needs <= 128, multiple of 8)", D);
    /* keys seen by one query: sized for the longest context, not for pos (the kernel reads pos) */
    const int seen = L->window < L->cap ? L->window : L->cap;
    const size_t shmem = (size_t)(D + seen + 32 + 2 * D) * sizeof(float);
    if (shmem > 48 * 1024)
        return ab_fail(AB_ERR_UNSUPPORTED, "cuda decode: attending over %d keys needs %zu bytes of shared memory (at most "
                       "48 KiB)", seen, shmem);
    const int32_t *pos_dev = NULL;
    AB_TRY(cuda_decode_pos(ctx, pos, &pos_dev));
    bf16 *qkv1 = (bf16 *)ctx->workspace; /* (B, C + 2*G*D) */
    AB_TRY(cuda_matmul_forward(ctx->be, qkv1, x, w->t[0], w->t[1], B, C, C + KV));
    AB_TRY(kv_fill(ctx->be, (bf16 *)cache, qkv1, B, 1, 0, C + KV, C, KV, pos_dev, L->cap));
    kv_decode_kernel<<<B * H, 128, shmem, cuda_stream(ctx->be)>>>((bf16 *)y, qkv1, (const bf16 *)cache, B, H, G, D,
                                                                   seen, pos_dev, L->cap, 1.0f / sqrtf((float)D));
    return cuda_check_launch("kv_decode");
}

ab_status attn_kv_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x, int B,
                         int pos) {
    attn_kv_layout L = attn_kv_layout_mha(ctx->cfg);
    return attn_kv_decode_layout(ctx, &L, w, cache, y, x, B, pos);
}
