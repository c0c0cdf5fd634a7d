/*
 * attn_common.cu — the parts of attention every CUDA variant shares: the c_attn projection (through the
 * backend's cuBLASLt matmul) and a decode's input projections (cuda_decode_projection), head permutes, the decode
 * position in device memory (cuda_decode_pos), and the KV cache with its one-token decode kernel (flash-decoding: the
 * keys of a head split over several blocks, 16-byte loads, softmax states merged in a fixed order), which reads the
 * position on the device so that a recorded decode step replays at every position.
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

ab_status cuda_decode_projection(const ab_attn_ctx *ctx, void *out, const void *x, const void *w, const void *b,
                                 const small_m_tail *tail, int M, int K, int OC) {
    int small_m;
    AB_TRY(cuda_layernorm_product(ctx->be, ctx->ln, out, NULL, x, w, b, tail, M, K, OC, &small_m));
    if (small_m || !tail) return AB_OK;
    return kv_fill(ctx->be, (bf16 *)tail->cache, (const bf16 *)out, M, 1, 0, OC, tail->koff, tail->KV, tail->pos, tail->cap);
}

ab_status cuda_decode_input_run(const ab_attn_ctx *ctx, const ab_decode_input *in, const void *x, int B) {
    if (ctx->input_ready) return AB_OK;
    return cuda_decode_projection(ctx, in->out, x, in->weight, in->bias, in->append.cache ? &in->append : NULL, B, in->K,
                                  in->OC);
}

ab_status attn_kv_cache_fill(ab_backend *be, bf16 *cache, const bf16 *qkv, int B, int T, int C) {
    return kv_fill(be, cache, qkv, B, T, 0, 3 * C, C, 2 * C, NULL, T);
}

ab_status attn_kv_cache_fill_layout(ab_backend *be, const attn_kv_layout *L, bf16 *cache, const bf16 *qkv, int B,
                                    int T) {
    const int C = L->H * L->D, KV = 2 * L->G * L->D;
    return kv_fill(be, cache, qkv, B, T, T > L->cap ? T - L->cap : 0, C + KV, C, KV, NULL, L->cap);
}

/* Grid (B*H, splits), KVD_THREADS threads; q of head h (position pos = *pos_dev; row b
 * of qkv1 (B, H*D + 2*G*D)) against the cached keys lo..pos, lo = max(0, pos - seen + 1), of KV head g = h / (H/G)
 * (position j in slot j % cap of cache (cap, B, [K | V], G*D)). Split s takes the keys s*chunk .. (s+1)*chunk - 1 of
 * the n = pos - lo + 1 (chunk = ceil(n / splits)). A key is read by a group of gl lanes (gl = D/8 rounded up to a
 * power of two), each holding 8 of its D elements: one 16-byte load of k and one of v per lane (the group's first
 * KVD_EARLY keys requested before the programmatic-launch wait unless one is pos itself, then each next key before the
 * one before it is used), q (times tau) in registers, the score summed by shuffles within the group, then the key
 * folded into the group's running softmax state. The groups' states merge by shuffles within each warp, the warps'
 * in shared memory; with one split that is y, else the splits of (b, h) are one cluster (1, splits) whose blocks push
 * their states into the first block, which merges them in split order into y (b, h*D .. h*D + D - 1;
 * softmax_states_cluster_gather). fp32 throughout, y bf16.
 * Shared memory: the warps' states (KVD_THREADS/32) x (D + 2) | the block's state (D + 2) | merge weights | with
 * several splits the first block's inbox, splits x (D + 2). */
#define KVD_EARLY 4     /* keys of a group requested before the programmatic-launch wait */
#define KVD_THREADS 256
__global__ void __launch_bounds__(KVD_THREADS) kv_decode_kernel(bf16 *y, const bf16 *qkv1, const bf16 *cache, int B, int H,
                                                                int G, int D, int gl, int seen, const int32_t *pos_dev,
                                                                int cap, float tau) {
    extern __shared__ float sh[];
    pdl_release(); /* the output projection after this may be scheduled early (cuda_common.cuh) */
    if (gridDim.y > 1) cluster_gather_open();
    /* The position is written before the step's first kernel, the cached keys and values of the positions before it
     * by earlier steps: both may be read before the wait; only q and the key and value of pos itself (the product
     * before this appends them) come after it. */
    const int pos = *pos_dev, lo = pos - seen + 1 > 0 ? pos - seen + 1 : 0, n = pos - lo + 1;
    const int bh = blockIdx.x, b = bh / H, h = bh % H, split = blockIdx.y, nsplit = gridDim.y;
    const int C = H * D, GD = G * D, ngroups = KVD_THREADS / gl, per_warp = 32 / gl, nwarps = KVD_THREADS / 32;
    const int grp = threadIdx.x / gl, d0 = (threadIdx.x % gl) * 8, warp = threadIdx.x / 32;
    const int chunk = (n + nsplit - 1) / nsplit, j0 = split * chunk, j1 = min(n, j0 + chunk);
    const bool lane_on = d0 < D; /* lanes past D (D not a power-of-two multiple of 8) only join the shuffles */
    float *wst = sh, *bst = wst + nwarps * (D + 2), *wsh = bst + D + 2;
    float *inbox = wsh + (nwarps > nsplit ? nwarps : nsplit); /* nsplit x (D + 2), split 0's */
    const bf16 *kb = cache + (size_t)b * 2 * GD + (h / (H / G)) * D + d0; /* key of slot t: kb + t * slot_stride */
    const size_t slot_stride = (size_t)B * 2 * GD;
    /* the group's key and value at key index j (zeros past j1) */
    auto key_at = [&](int j, uint4 *ku, uint4 *vu) {
        const bool on = lane_on && j < j1;
        const bf16 *kp = kb + (size_t)((lo + j) % cap) * slot_stride;
        *ku = on ? *reinterpret_cast<const uint4 *>(kp) : make_uint4(0u, 0u, 0u, 0u);
        *vu = on ? *reinterpret_cast<const uint4 *>(kp + GD) : make_uint4(0u, 0u, 0u, 0u);
    };
    /* a warp's groups take consecutive keys (the group's: jg, jg + ngroups, ...); the loop bounds are the warp's, so
     * every lane reaches the shuffles. The group's first KVD_EARLY keys are requested before the wait (the key of pos
     * itself after it): at GPT-2's 512 positions and 16 splits a group has only 2-3 keys, which then arrive while
     * the kernel before this one finishes. */
    const int jw0 = j0 + warp * per_warp, jg = jw0 + grp % per_warp;
    uint4 ke[KVD_EARLY], ve[KVD_EARLY];
#pragma unroll
    for (int t = 0; t < KVD_EARLY; t++)
        if (lo + jg + t * ngroups != pos) key_at(jg + t * ngroups, &ke[t], &ve[t]);
    pdl_wait(); /* launched dependent: the product before this wrote q and the key and value of pos */
#pragma unroll
    for (int t = 0; t < KVD_EARLY; t++)
        if (lo + jg + t * ngroups == pos) key_at(jg + t * ngroups, &ke[t], &ve[t]);
    float q[8], o[8], m = -INFINITY, l = 0.0f;
    unpack8(q, lane_on ? *reinterpret_cast<const uint4 *>(qkv1 + (size_t)b * (C + 2 * GD) + h * D + d0)
                       : make_uint4(0u, 0u, 0u, 0u));
#pragma unroll
    for (int e = 0; e < 8; e++) {
        q[e] *= tau;
        o[e] = 0.0f;
    }
    /* key j (its k and v in ku, vu) folded into the group's running softmax state; all lanes take the shuffles */
    auto fold_key = [&](int j, uint4 ku, uint4 vu) {
        float k[8], v[8], s = 0.0f;
        unpack8(k, ku);
        unpack8(v, vu);
#pragma unroll
        for (int e = 0; e < 8; e++) s += q[e] * k[e];
        s = lane_group_sum(s, gl);
        if (j < j1) softmax_state_fold(&m, &l, o, s, v);
    };
#pragma unroll
    for (int t = 0; t < KVD_EARLY; t++)
        if (jw0 + t * ngroups < j1) fold_key(jg + t * ngroups, ke[t], ve[t]);
    /* longer contexts: the rest, the group's next key requested before this one is folded */
    int jw = jw0 + KVD_EARLY * ngroups;
    uint4 ku, vu;
    if (jw < j1) key_at(jw + grp % per_warp, &ku, &vu);
    for (; jw < j1; jw += ngroups) {
        const int j = jw + grp % per_warp;
        uint4 kn, vn;
        key_at(j + ngroups, &kn, &vn);
        fold_key(j, ku, vu);
        ku = kn;
        vu = vn;
    }
    softmax_state_warp_store(wst + warp * (D + 2), m, l, o, gl, lane_on);
    __syncthreads();
    softmax_states_merge(bst, wsh, wst, nwarps, D + 2, 1, D, nsplit == 1);
    __syncthreads();
    const float *out = bst; /* y's state: the block's, or with several splits the cluster's merge into wst */
    if (nsplit > 1) {
        if (!softmax_states_cluster_gather(wst, wsh, bst, inbox, split, nsplit, D)) return; /* wst: free by now */
        out = wst;
    }
    bf16 *yh = y + (size_t)b * C + h * D;
    for (int d = threadIdx.x; d < D; d += KVD_THREADS) yh[d] = f2bf(out[2 + d]);
}

int attn_decode_splits(ab_backend *be, int BH, int seen, int min_keys) {
    int s = (2 * cuda_of(be)->sm_count + BH - 1) / BH, by_keys = (seen + min_keys - 1) / min_keys;
    if (s > by_keys) s = by_keys;
    if (s > KVD_MAX_SPLITS) s = KVD_MAX_SPLITS;
    return s < 1 ? 1 : s;
}

/* the decode workspace's first part: qkv1 (B, 3C) bf16, room for any G */
static size_t qkv1_bytes(const ab_attn_config *cfg, int B) { return align256((size_t)B * 3 * cfg->C * sizeof(bf16)); }

size_t attn_decode_workspace_bytes(const ab_attn_config *cfg, int B) { return qkv1_bytes(cfg, B); }

ab_status attn_kv_decode_input_layout(const ab_attn_ctx *ctx, const attn_kv_layout *L, const ab_attn_weights *w,
                                      void *cache, int B, int pos, ab_decode_input *in) {
    const ab_attn_config *cfg = ctx->cfg;
    const int D = L->D, C = L->H * D, KV = 2 * L->G * D;
    if (pos < 0 || pos >= cfg->max_T)
        return ab_fail(AB_ERR_USAGE, "cuda decode: position %d outside 0..%d", pos, cfg->max_T - 1);
    if (D > 128 || D % 8) return ab_fail(AB_ERR_UNSUPPORTED, "cuda decode: head size %d (needs <= 128, multiple of 8)", D);
    if (((uintptr_t)cache | (uintptr_t)ctx->workspace) & 15)
        return ab_fail(AB_ERR_UNSUPPORTED, "cuda decode: the cache and the workspace must be 16-byte aligned");
    decode_input_product(in, ctx->workspace, w->t[0], w->t[1], C, C + KV);
    in->append.cache = cache; in->append.koff = C; in->append.KV = KV; in->append.cap = L->cap;
    return cuda_decode_pos(ctx, pos, &in->append.pos);
}

ab_status attn_kv_decode_layout(const ab_attn_ctx *ctx, const attn_kv_layout *L, const ab_attn_weights *w, void *cache,
                                void *y, const void *x, int B, int pos) {
    const int H = L->H, G = L->G, D = L->D;
    ab_decode_input in;
    AB_TRY(attn_kv_decode_input_layout(ctx, L, w, cache, B, pos, &in));
    AB_TRY(cuda_decode_input_run(ctx, &in, x, B));
    /* keys seen by one query: the splits are sized for the longest context, not for pos (the kernel reads pos) */
    const int seen = L->window < L->cap ? L->window : L->cap;
    int gl = 1;
    while (gl * 8 < D) gl *= 2;
    /* 256 threads a block (32 lane groups at D = 64), where they were 128: on an H200 (docs/PERF.md, eleventh
     * session; ms a token, batch 1 / batch B) baseline 0.361 / 0.762 -> 0.309-0.313 / 0.647-0.650 at 8192 positions
     * (B = 4), 0.268 / 0.507 -> 0.260 / 0.481 at 2048, batch 16 at 1024 0.572-0.578 -> 0.557-0.566; gqa at batch B
     * 0.736-0.741 -> 0.606-0.614 at 8192, 0.496 -> 0.470 at 2048. gqa at batch 1 was slower so (0.262 -> 0.284 at
     * 2048) while the block merged its 32 groups' states in shared memory; with the warps' merged by shuffles first
     * (twelfth session) 0.337 -> 0.293 at 8192, 0.264 -> 0.254 at 2048, 0.247 -> 0.244 at 1024 */
    const int ngroups = KVD_THREADS / gl, nwarps = KVD_THREADS / 32;
    /* a split of at least as many keys as its groups request before the wait (KVD_EARLY each: none of those
     * requests idle, fewer splits to merge): at D = 64 128 keys, so 8 splits a head at 1024 keys, 1 at
     * sliding_window's 128, 16 from 2048.
     * Against 32 keys a split (128 threads; docs/PERF.md, tenth session): sliding_window at batch 1 0.238-0.239 ->
     * 0.233-0.235 ms a token at 512 positions, 0.244 -> 0.232 at 4096 (batch 4 there 0.459 -> 0.426); the others as
     * before within 2 us */
    const int splits = attn_decode_splits(ctx->be, B * H, seen, KVD_EARLY * ngroups);
    const size_t shmem =
        (size_t)((nwarps + 1) * (D + 2) + (nwarps > splits ? nwarps : splits) + (splits > 1 ? splits * (D + 2) : 0)) *
        sizeof(float);
    return cuda_launch(ctx->be, "kv_decode", kv_decode_kernel, dim3((unsigned)(B * H), (unsigned)splits),
                       dim3(1, (unsigned)splits), dim3(KVD_THREADS),
                       shmem, 1, (bf16 *)y, (const bf16 *)in.out, (const bf16 *)cache, B, H, G, D, gl, seen,
                       in.append.pos, L->cap, 1.0f / sqrtf((float)D));
}

ab_status attn_kv_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x, int B,
                         int pos) {
    attn_kv_layout L = attn_kv_layout_mha(ctx->cfg);
    return attn_kv_decode_layout(ctx, &L, w, cache, y, x, B, pos);
}

ab_status attn_kv_decode_input(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, int B, int pos,
                               ab_decode_input *in) {
    attn_kv_layout L = attn_kv_layout_mha(ctx->cfg);
    return attn_kv_decode_input_layout(ctx, &L, w, cache, B, pos, in);
}
