/*
 * cuda_attn.cuh — pieces shared by the CUDA attention variants (C++ only): the c_attn projection and its
 * backward, head permutes between the token-major (B,T,[parts],H,D) and head-major ([parts],B,H,T,D)
 * layouts, and the KV cache (prefill copy, one-token decode) that baseline, sdpa and flash share, in a general
 * form (G key/value heads, rolling buffer, window) that gqa and sliding_window use.
 */
#ifndef AB_CUDA_ATTN_CUH
#define AB_CUDA_ATTN_CUH

#include <string.h>

#include "backend/cuda/cuda_attn.h"
#include "backend/cuda/cuda_common.cuh"

/* The decode position in device memory for a decode op's kernels: ctx->pos_dev when the caller provides it (the
 * model, whose recorded decode steps replay at every position), else `pos` staged by an asynchronous copy into a
 * backend-owned int32 (tests calling decode directly; not allowed while recording). Every CUDA decode op calls it
 * after validating pos and its configuration, and passes *pos_dev to its kernels, which read the position there;
 * nothing the op launches may depend on the host pos. */
ab_status cuda_decode_pos(const ab_attn_ctx *ctx, int pos, const int32_t **pos_dev);

/* qkv (B*T, 3C) = x (B*T, C) @ W (C, 3C) + b */
ab_status attn_qkv_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, bf16 *qkv, const void *x, int BT);
/* dx += dqkv @ W^T, dW += x^T dqkv, db += colsum(dqkv) */
ab_status attn_qkv_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                            const bf16 *dqkv, const void *x, void *dx, int BT);

/* A decode's input projection: out (M,OC) = in @ w (K,OC) + b (may be NULL), in = x (M,K) or, with ctx->ln (ln_1
 * folded into the decode), LN(x) (cuda_layernorm_product); tail (may be NULL): the KV append, in the small-M kernel's
 * epilogue, else after cuBLASLt's product. */
ab_status cuda_decode_projection(const ab_attn_ctx *ctx, void *out, const void *x, const void *w, const void *b,
                                 const small_m_tail *tail, int M, int K, int OC);

/* Decode's first product `in` (the variant's decode_input, with its KV append if any) on x, unless the block before
 * computed it already (ctx->input_ready: chained after it, block_tail_forward). */
ab_status cuda_decode_input_run(const ab_attn_ctx *ctx, const ab_decode_input *in, const void *x, int B);

/* A variant's decode_input (backend.h, ab_decode_input) as one plain product out (M,OC) = LN(x) @ weight (K,OC) + bias
 * (may be NULL); the caller adds what else it has (a KV append, mla's second product). */
static inline void decode_input_product(ab_decode_input *in, void *out, const void *weight, const void *bias, int K,
                                        int OC) {
    memset(in, 0, sizeof *in);
    in->out = out;
    in->weight = weight;
    in->bias = bias;
    in->K = K;
    in->OC = OC;
}

/* to_heads: src (B,T,parts,H,D) -> dst (parts,B,H,T,D); else the reverse. */
ab_status attn_permute(ab_backend *be, bf16 *dst, const bf16 *src, int B, int T, int parts, int H, int D, int to_heads);

/* KV cache: (max_T, B, 2, C) bf16 */
size_t attn_kv_cache_bytes(const ab_attn_config *cfg, int B, int max_T);
/* cache[t][b] = (k, v) of qkv (B,T,3C) for t < T */
ab_status attn_kv_cache_fill(ab_backend *be, bf16 *cache, const bf16 *qkv, int B, int T, int C);
/* One token per sequence at position pos: qkv1 (B,3C) in workspace, cache append, causal attention over
 * positions 0..pos in fp32, y (B,C); the kernels read pos from device memory (cuda_decode_pos). */
ab_status attn_kv_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x, int B,
                         int pos);
/* its first product (ab_attn_ops.decode_input): qkv1 = LN(x) @ c_attn + b with the append of k | v */
ab_status attn_kv_decode_input(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, int B, int pos,
                               ab_decode_input *in);

/* The general KV cache behind the above: (cap, B, [K | V], G*D) bf16 of the projection qkv (.., H*D + 2*G*D) =
 * [q (H heads) | k (G heads) | v (G heads)]; position t in slot t % cap (cap = max_T, or min(W, max_T) for a
 * rolling buffer); a query at position i sees keys [i - window + 1, i]; query head h reads KV head h / (H/G). */
typedef struct {
    int H, G, D, cap, window;
} attn_kv_layout;
attn_kv_layout attn_kv_layout_mha(const ab_attn_config *cfg); /* baseline, sdpa, flash: G = H, cap = window = max_T */
size_t attn_kv_layout_bytes(const attn_kv_layout *L, int B);
/* positions max(0, T - cap) .. T-1 of qkv (B, T, H*D + 2*G*D) into their slots */
ab_status attn_kv_cache_fill_layout(ab_backend *be, const attn_kv_layout *L, bf16 *cache, const bf16 *qkv, int B,
                                    int T);
/* attn_kv_decode on that cache: qkv1 (B, H*D + 2*G*D) in workspace, the keys pos - min(window, cap) + 1 .. pos;
 * the position read on the device (cuda_decode_pos), slot pos % cap computed there */
ab_status attn_kv_decode_layout(const ab_attn_ctx *ctx, const attn_kv_layout *L, const ab_attn_weights *w, void *cache,
                                void *y, const void *x, int B, int pos);
/* its first product as *in, after the checks of the decode: qkv1 = LN(x) @ c_attn + b (B, H*D + 2*G*D) into the
 * workspace with the append of k | v to slot pos % cap (the position read on the device); computes nothing */
ab_status attn_kv_decode_input_layout(const ab_attn_ctx *ctx, const attn_kv_layout *L, const ab_attn_weights *w,
                                      void *cache, int B, int pos, ab_decode_input *in);
/* qkv1 (B, 3C) bf16 */
size_t attn_decode_workspace_bytes(const ab_attn_config *cfg, int B);

/* ---- flash-decoding: one query against many keys, split over blocks ----
 * A set of keys j with scores s_j and values v_j (n wide) is summarised by its softmax state [m, l, o[n]] (fp32, n + 2
 * floats): m = max s_j, l = sum_j e^(s_j - m), o = sum_j e^(s_j - m) v_j; the empty set is m = -inf, l = 0, o = 0.
 * A decode kernel folds its keys into such states one key at a time (per group of lanes), merges the groups' states
 * in shared memory, and, when a (b, h) is split over several blocks (one thread-block cluster), the blocks' states
 * from the cluster's distributed shared memory: every merge runs in a fixed order, so the result does not depend on
 * scheduling. */
#define KVD_MAX_SPLITS 16 /* blocks per (b, h) at most: one cluster (Hopper's largest, non-portable) */

/* One key of score s into the running (m, l): returns in *scale the factor for the old o and in *p the new key's
 * weight (o = o * scale + p * v). */
__device__ __forceinline__ void softmax_state_step(float *m, float *l, float s, float *scale, float *p) {
    const float mn = fmaxf(*m, s);
    *scale = __expf(*m - mn); /* 0 while the state is empty (m = -inf) */
    *p = __expf(s - mn);
    *l = *l * *scale + *p;
    *m = mn;
}

/* a key of score s and value v (the lane's 8 elements of it) folded into the running state (m, l, o) */
__device__ __forceinline__ void softmax_state_fold(float *m, float *l, float o[8], float s, const float v[8]) {
    float scale, p;
    softmax_state_step(m, l, s, &scale, &p);
#pragma unroll
    for (int e = 0; e < 8; e++) o[e] = o[e] * scale + p * v[e];
}

/* The running softmax states of a warp's 32/gl lane groups (gl lanes a group, a power of two; m and l the same in
 * every lane of a group, o the lane's 8 elements) merged by shuffles, the groups pairwise in a butterfly: afterwards
 * every group holds the warp's state. Every lane of the warp calls it. */
__device__ __forceinline__ void softmax_state_warp_merge(float *m, float *l, float o[8], int gl) {
    for (int off = gl; off < 32; off <<= 1) {
        const float mo = __shfl_xor_sync(0xffffffffu, *m, off), lo = __shfl_xor_sync(0xffffffffu, *l, off);
        const float mn = fmaxf(*m, mo);
        const float a = *m == -INFINITY ? 0.0f : __expf(*m - mn), b = mo == -INFINITY ? 0.0f : __expf(mo - mn);
        *l = *l * a + lo * b;
#pragma unroll
        for (int e = 0; e < 8; e++) o[e] = o[e] * a + __shfl_xor_sync(0xffffffffu, o[e], off) * b;
        *m = mn;
    }
}

/* softmax_state_warp_merge, then the warp's state [m, l, o] written to dst (n + 2 floats) by its first group, lane
 * l its elements 8l .. 8l + 7 (none where !on: lanes past n) */
__device__ __forceinline__ void softmax_state_warp_store(float *dst, float m, float l, float o[8], int gl, bool on) {
    softmax_state_warp_merge(&m, &l, o, gl);
    const int lane = threadIdx.x % 32;
    if (lane >= gl) return;
    if (lane == 0) {
        dst[0] = m;
        dst[1] = l;
    }
    if (on)
#pragma unroll
        for (int e = 0; e < 8; e++) dst[2 + 8 * lane + e] = o[e];
}

/* out (`states` states of width n, one after the other, shared memory) = for each state s, the merge of its `count`
 * copies, copy k at st + k * stride + s * (n + 2) (this block's shared memory, or global memory), in order
 * 0..count-1, with o divided by l when `normalize`. The states are merged side by side and nothing runs serially in
 * one thread: a thread per (state, copy) finds the state's m and the copy's weight, then a thread per element sums
 * l and o over the copies. out is none of the copies. w: states x count floats of shared scratch. Every thread of
 * the block calls it (it synchronises); out is complete after the caller's next __syncthreads. */
__device__ __forceinline__ void softmax_states_merge(float *out, float *w, const float *st, int count, int stride,
                                                     int states, int n, bool normalize) {
    const int row = n + 2;
    auto copy = [=](int k) { return st + (size_t)k * stride; };
    for (int t = threadIdx.x; t < states * count; t += blockDim.x) {
        const int s = t / count, k = t % count;
        float M = -INFINITY;
        for (int j = 0; j < count; j++) M = fmaxf(M, copy(j)[s * row]);
        const float mk = copy(k)[s * row];
        w[t] = mk == -INFINITY ? 0.0f : __expf(mk - M);
        if (k == 0) out[s * row] = M;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < states * n; i += blockDim.x) {
        const int s = i / n, e = 2 + i % n;
        const float *ws = w + s * count;
        float l = 0.0f, o = 0.0f;
        for (int k = 0; k < count; k++) {
            const float *c = copy(k) + s * row;
            l += ws[k] * c[1];
            o += ws[k] * c[e];
        }
        out[s * row + e] = normalize ? o * (1.0f / l) : o;
        if (e == 2) out[s * row + 1] = l;
    }
}

/* The tail of a decode kernel whose group (a (b, h), or mla's (b, heads)) runs over nsplit > 1 blocks, launched as one
 * cluster (1, nsplit) per group, so that this block is split `split` = its rank (the cluster gather of
 * cuda_common.cuh; the kernel called cluster_gather_open at its start): every block pushes its `states` states st
 * (n + 2 floats each, one after the other, shared memory) into slot `split` of the first block's inbox (nsplit x
 * states x (n + 2) floats) and, but for the first, returns false (done). The first block merges the slots in split
 * order, the same sums in the same order as from the others' shared memory, into out (states x (n + 2) floats),
 * normalised, and returns true. w: states x nsplit floats of shared scratch. Every thread of the block calls it,
 * after its last write of st. */
__device__ __forceinline__ bool softmax_states_cluster_gather(float *out, float *w, const float *st, float *inbox, int split,
                                                              int nsplit, int n, int states = 1) {
    const int size = states * (n + 2);
    __syncthreads(); /* st is complete */
    cluster_gather_begin();
    float *slot = cluster_shared(inbox, 0) + (size_t)split * size;
    for (int i = threadIdx.x; i < size; i += blockDim.x) slot[i] = st[i];
    cluster_gather_end();
    if (split != 0) return false;
    cluster_gather_collect();
    softmax_states_merge(out, w, inbox, nsplit, size, states, n, true);
    __syncthreads();
    return true;
}

/* Blocks per (b, h) for a decode over at most `seen` keys: about two blocks per SM over the B*H heads, each split
 * keeping at least min_keys keys at the longest context, at most KVD_MAX_SPLITS. Host only: it depends on the shape,
 * never on the position (the kernels divide the keys seen at *pos_dev among the splits). */
int attn_decode_splits(ab_backend *be, int BH, int seen, int min_keys);

static inline size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

#endif
