/*
 * attn_lsh.cu — lsh (VARIANTS.md 6, strictly causal LSH attention) on CUDA, the same math as the CPU reference
 * (src/attn/lsh.c), with the attention itself on the FlashAttention-2 kernels in sorted space
 * (flash_attn.cuh, flash_mask_sorted). Tensors: attn.c_attn.weight (C, 2C) and .bias (2C) give qk and v;
 * attn.lsh_rotations (H*n_h*D, n_b/2), fixed, R of head h and round r in rows (h*n_h + r)*D .. + D-1.
 *
 * Forward:
 *  1. qkv (B,T,2C) = x W + b (cuBLASLt).
 *  2. lsh_hash_kernel, a warp per 16 tokens of a (b, h): n = sqrt(|qk|^2 + 1e-12), k^ = qk / n in fp32, kv =
 *     [k^ | v] (bf16, the key and value rows of the attention), and per round b = argmax([k^ R ; -k^ R]) (first
 *     maximum) with k^ R on the tensor cores at fp32 accuracy (lsh_buckets_tile: k^ as three bf16 parts, R exact;
 *     D*n_b/2 multiply-adds per token, head and round against the attention's 2*W_l*D: 1/32 of it at T = 512, 1/2
 *     at T = 8192 with the defaults, n_b growing with T).
 *  3. lsh_sort_kernel, a block per (round, b, h): a bitonic sort of the unique keys bucket*T + t in shared memory
 *     (= the stable sort by (bucket, position)); rows[s] = position at sorted index s, row_lo[s] = max(its
 *     bucket's first index, s - W_l + 1): the query's candidates are the sorted keys row_lo[s] .. s.
 *  4. Per round, the flash forward in sorted space (tau = 1, self rule): O_r (B,T,C) and lse_r (B,H,T), both
 *     scattered back to positions.
 *  5. lsh_combine_kernel: L = logsumexp_r lse_r, o = sum_r exp(lse_r - L) O_r.
 * Backward: with w_r = exp(lse_r - L), dO_r = w_r dO and dlse_r = w_r dO.(O_r - o), the backward of round r is
 * the flash backward with L in place of lse_r and Delta = rowsum(dO * o) for every round (P_r w_r =
 * exp(S - L); w_r (dO.O_r) - dlse_r = w_r (dO.o)): flash_bwd_prepare once, the sorted-space flash backward per
 * round (dK^_r, dV_r per round, dQ summed over the rounds in one fp32 accumulator), then lsh_bwd_finish_kernel:
 * dqk = dQ + (dk^ - k^ (k^.dk^)) / n with dk^ = sum_r dK^_r, dv = sum_r dV_r, and the c_attn backward. No
 * gradient through the hashing or the sort; the rotations get none.
 * Inference: the cache holds [k^ | v] (B, max_T, 2C) bf16 and the n_h bucket ids per head and token, int16
 * (B, H, n_h, max_T padded to 8); prefill runs the forward and copies both; decode (lsh_decode_kernel, a block per
 * (b, h), its rounds side by side) hashes the new token with the forward's routine (a tile of one key), then for
 * each round gathers the last W_l positions of its bucket (a backwards scan over the ids, up to 8192 positions a
 * pass) and attends to them in fp32; the block combines the rounds. The position is read on the device
 * (cuda_decode_pos), so a recorded decode step replays at any.
 * Head size 64 only (the flash kernels); T <= 32768 (the sort's keys in shared memory); n_b <= 32768 (int16 ids).
 *
 * saved per layer:  qkv (B,T,2C) bf16 | kv (B,T,2C) bf16 | o (B,T,C) bf16 | L (B,H,T) fp32 | n (B,T,H) fp32 |
 *                   buckets, rows, row_lo (n_h,B,H,T) int32 each
 * workspace:        forward: O_r (n_h,B,T,C) bf16 | lse_r (n_h,B,H,T) fp32; backward: dqkv (B,T,2C) bf16 |
 *                   dq_accum (B,H,T,64) fp32 | Delta (B,H,T) fp32 | dkv_r (n_h,B,T,2C) bf16; prefill: the saved
 *                   tensors then the forward's; decode: the new token's qkv (B,2C) bf16
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_attn.cuh"
#include "backend/cuda/flash_attn.cuh"

#define LSH_NORM_EPS 1e-12f
#define LSH_MAX_T 32768       /* sort keys bucket*T + t (< 2T^2) in 32 bits and T of them in shared memory */
#define LSH_MAX_BUCKETS 32768 /* int16 ids in the cache */
#define LSH_MAX_HASHES 8      /* lsh_validate's bound: the combine keeps the rounds in registers */
#define LSH_DECODE_THREADS 128
#define LSH_HASH_WARPS 4 /* lsh_hash_kernel: 16 tokens a warp */

enum { W_ATTN, W_BIAS, W_ROT };

typedef struct {
    int B, T, C, H, nh, half, window; /* half = n_b / 2, window = W_l */
} lsh_shape;

static lsh_shape lsh_shape_of(const ab_attn_config *cfg, int B, int T) {
    lsh_shape s = {B, T, cfg->C, cfg->H, cfg->hp.lsh_hashes, cfg->hp.lsh_buckets / 2, 2 * cfg->hp.lsh_chunk};
    return s;
}

static ab_status lsh_check(const ab_attn_config *cfg, int T) {
    if (cfg->D != FLASH_HD)
        return ab_fail(AB_ERR_UNSUPPORTED,
                       "cuda lsh: head size %d is not supported (n_embd %d / n_head %d); the flash kernels are built for "
                       "head size %d only",
                       cfg->D, cfg->C, cfg->H, FLASH_HD);
    if (T > LSH_MAX_T)
        return ab_fail(AB_ERR_UNSUPPORTED, "cuda lsh: sequence length %d is over the %d the bucket sort supports", T,
                       LSH_MAX_T);
    if (cfg->hp.lsh_buckets > LSH_MAX_BUCKETS || cfg->hp.lsh_hashes > LSH_MAX_HASHES)
        return ab_fail(AB_ERR_UNSUPPORTED, "cuda lsh: --lsh-buckets %d / --lsh-hashes %d over the supported %d / %d",
                       cfg->hp.lsh_buckets, cfg->hp.lsh_hashes, LSH_MAX_BUCKETS, LSH_MAX_HASHES);
    return AB_OK;
}

/* ---------------------------------------------------------------- layouts */

static size_t bt_bytes(const lsh_shape *s, int parts) { return align256((size_t)s->B * s->T * parts * s->C * sizeof(bf16)); }
static size_t bht_f32(const lsh_shape *s) { return align256((size_t)s->B * s->H * s->T * sizeof(float)); }
static size_t rbht_i32(const lsh_shape *s) { return align256((size_t)s->nh * s->B * s->H * s->T * sizeof(int)); }

typedef struct {
    bf16 *qkv, *kv, *o;
    float *lse, *nrm;
    int *bucket, *rows, *row_lo;
} lsh_saved;

static lsh_saved saved_views(const lsh_shape *s, void *base, size_t *total) {
    lsh_saved v;
    char *p = (char *)base;
    v.qkv = (bf16 *)p; p += bt_bytes(s, 2);
    v.kv = (bf16 *)p; p += bt_bytes(s, 2);
    v.o = (bf16 *)p; p += bt_bytes(s, 1);
    v.lse = (float *)p; p += bht_f32(s);
    v.nrm = (float *)p; p += bht_f32(s);
    v.bucket = (int *)p; p += rbht_i32(s);
    v.rows = (int *)p; p += rbht_i32(s);
    v.row_lo = (int *)p; p += rbht_i32(s);
    if (total) *total = (size_t)(p - (char *)base);
    return v;
}

typedef struct {
    bf16 *o_r;
    float *lse_r;
} lsh_fwd_tmp;

static lsh_fwd_tmp fwd_tmp_views(const lsh_shape *s, void *base, size_t *total) {
    char *p = (char *)base;
    lsh_fwd_tmp v = {(bf16 *)p, (float *)(p + s->nh * bt_bytes(s, 1))};
    if (total) *total = s->nh * (bt_bytes(s, 1) + bht_f32(s));
    return v;
}

typedef struct {
    bf16 *dqkv, *dkv_r;
    float *dq_accum, *delta;
} lsh_bwd_tmp;

static lsh_bwd_tmp bwd_tmp_views(const lsh_shape *s, void *base, size_t *total) {
    lsh_bwd_tmp v;
    char *p = (char *)base;
    v.dqkv = (bf16 *)p; p += bt_bytes(s, 2);
    v.dq_accum = (float *)p; p += bht_f32(s) * FLASH_HD;
    v.delta = (float *)p; p += bht_f32(s);
    v.dkv_r = (bf16 *)p; p += s->nh * bt_bytes(s, 2);
    if (total) *total = (size_t)(p - (char *)base);
    return v;
}

static size_t lsh_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    lsh_shape s = lsh_shape_of(cfg, B, T);
    size_t n;
    saved_views(&s, NULL, &n);
    return n;
}

static size_t lsh_ws_bytes(const ab_attn_config *cfg, int B, int T) {
    lsh_shape s = lsh_shape_of(cfg, B, T);
    size_t saved, fwd, bwd;
    saved_views(&s, NULL, &saved);
    fwd_tmp_views(&s, NULL, &fwd);
    bwd_tmp_views(&s, NULL, &bwd);
    size_t w = saved + fwd > bwd ? saved + fwd : bwd, d = align256((size_t)B * 2 * cfg->C * sizeof(bf16));
    return w > d ? w : d;
}

/* ---------------------------------------------------------------- hashing */

/* (v, i) := (u, j) when u is larger, or equal with the smaller index: the first maximum */
__device__ __forceinline__ void first_max(float &v, int &i, float u, int j) {
    if (u > v || (u == v && j < i)) v = u, i = j;
}

/* The buckets of 16 unit keys under R (D, half) bf16: for each key the argmax of [u R ; -u R], the first maximum,
 * a tie between the halves going to the positive one (it comes first). The keys are the first `rows` rows of u
 * (rows x D fp32, shared memory; the rows after them count as zero). u R runs on the tensor cores, one m16n8k16
 * product per 8 columns and 16 dimensions: each key is split into three bf16 parts (hi + mid + lo carries fp32's
 * 24 bits), R is exact in bf16, the sums are fp32, so the scores are the fp32 dot products up to their summation
 * order (the CPU's order differs by ~1e-7 either way). R's B fragments are read straight from global memory (two
 * rows' elements a register; the warps of a block share them through L1). The lane gets the buckets of keys lane/4
 * and lane/4 + 8 in bk. A row's result does not depend on the other rows, so the forward (16 keys a warp) and decode
 * (one) hash a token identically. first: the fragments of columns 0..7 (lsh_rot_fragments of n0 = 0), loaded by the
 * caller before (decode: before its programmatic-launch wait), or NULL. */
__device__ __forceinline__ void lsh_rot_fragments(uint32_t b[4][2], const bf16 *R, int half, int n0, int lane) {
    const int n = n0 + lane / 4, c = lane % 4;
    const unsigned short *Rb = reinterpret_cast<const unsigned short *>(R);
#pragma unroll
    for (int ks = 0; ks < 4; ks++) /* B (k = d, n = column) of k-step ks: rows 16 ks + 2c (+1), and 8 rows on */
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const size_t d = 16 * ks + 2 * c + 8 * e;
            b[ks][e] = n < half ? (uint32_t)__ldg(Rb + d * half + n) | (uint32_t)__ldg(Rb + (d + 1) * half + n) << 16 : 0u;
        }
}

__device__ void lsh_buckets_tile(int bk[2], const float *u, int rows, const bf16 *R, int half, int lane,
                                 const uint32_t (*first)[2] = nullptr) {
    const int g = lane / 4, c = lane % 4;
    uint32_t a[3][4][4]; /* [hi, mid, lo][k-step][register] */
#pragma unroll
    for (int ks = 0; ks < 4; ks++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int row = g + 8 * (j & 1), col = 16 * ks + 2 * c + 8 * (j >> 1);
            float x[2], part[3][2];
#pragma unroll
            for (int e = 0; e < 2; e++) {
                x[e] = row < rows ? u[row * FLASH_HD + col + e] : 0.0f;
#pragma unroll
                for (int p = 0; p < 3; p++) {
                    part[p][e] = bf2f(f2bf(x[e]));
                    x[e] -= part[p][e];
                }
            }
#pragma unroll
            for (int p = 0; p < 3; p++) a[p][ks][j] = pack_bf16(part[p][0], part[p][1]);
        }
    float best_pos[2] = {-INFINITY, -INFINITY}, best_neg[2] = {-INFINITY, -INFINITY};
    int arg_pos[2] = {INT_MAX, INT_MAX}, arg_neg[2] = {INT_MAX, INT_MAX};
    for (int n0 = 0; n0 < half; n0 += 8) {
        uint32_t b[4][2];
        if (n0 == 0 && first) {
#pragma unroll
            for (int ks = 0; ks < 4; ks++) b[ks][0] = first[ks][0], b[ks][1] = first[ks][1];
        } else {
            lsh_rot_fragments(b, R, half, n0, lane);
        }
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int p = 2; p >= 0; p--) /* the small parts first */
#pragma unroll
            for (int ks = 0; ks < 4; ks++) mma_bf16(acc, a[p][ks], b[ks][0], b[ks][1]);
#pragma unroll
        for (int e = 0; e < 4; e++) { /* acc[e]: key g + 8 (e >> 1), column n0 + 2c + (e & 1) */
            const int col = n0 + 2 * c + (e & 1);
            if (col < half) {
                first_max(best_pos[e >> 1], arg_pos[e >> 1], acc[e], col);
                first_max(best_neg[e >> 1], arg_neg[e >> 1], -acc[e], col);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        for (int o = 1; o < 4; o <<= 1) { /* the quad's columns */
            first_max(best_pos[r], arg_pos[r], __shfl_xor_sync(0xffffffffu, best_pos[r], o),
                      __shfl_xor_sync(0xffffffffu, arg_pos[r], o));
            first_max(best_neg[r], arg_neg[r], __shfl_xor_sync(0xffffffffu, best_neg[r], o),
                      __shfl_xor_sync(0xffffffffu, arg_neg[r], o));
        }
        bk[r] = best_neg[r] > best_pos[r] ? half + arg_neg[r] : arg_pos[r];
    }
}

/* k^ = qk / n of the lane's two dimensions, n = sqrt(|qk|^2 + 1e-12) (the CPU's formula); returns n */
__device__ float lsh_normalise_warp(float q0, float q1, float *k0, float *k1) {
    const float n = sqrtf(warp_sum(q0 * q0 + q1 * q1) + LSH_NORM_EPS), inv = 1.0f / n;
    *k0 = q0 * inv;
    *k1 = q1 * inv;
    return n;
}

/* kv (B,T,2C) = [k^ | v], nrm (B,T,H), bucket (n_h,B,H,T). Grid (ceil(T / 64), H, B), LSH_HASH_WARPS warps; warp
 * w normalises the 16 tokens t = 64 blockIdx.x + 16 w .. of head h one after another (lsh_normalise_warp: the lane's
 * two dimensions) into its shared u (16 x D, tokens past T zero), then hashes them together per round. */
__global__ void __launch_bounds__(LSH_HASH_WARPS * 32) lsh_hash_kernel(bf16 *kv, float *nrm, int *bucket,
                                                                       const bf16 *qkv, const bf16 *rot, lsh_shape s) {
    __shared__ float u[LSH_HASH_WARPS][16 * FLASH_HD];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, h = blockIdx.y, b = blockIdx.z;
    const int t0 = blockIdx.x * 16 * LSH_HASH_WARPS + 16 * warp, rows = min(16, s.T - t0);
    float *uw = u[warp];
    for (int i = 0; i < rows; i++) {
        const size_t bt = (size_t)b * s.T + t0 + i, off = bt * 2 * s.C + h * FLASH_HD + 2 * lane;
        const __nv_bfloat162 q2 = *reinterpret_cast<const __nv_bfloat162 *>(qkv + off);
        float k0, k1;
        const float n = lsh_normalise_warp(bf2f(q2.x), bf2f(q2.y), &k0, &k1);
        *reinterpret_cast<__nv_bfloat162 *>(kv + off) = __floats2bfloat162_rn(k0, k1);
        *reinterpret_cast<__nv_bfloat162 *>(kv + off + s.C) =
            *reinterpret_cast<const __nv_bfloat162 *>(qkv + off + s.C); /* v */
        if (lane == 0) nrm[bt * s.H + h] = n;
        uw[i * FLASH_HD + 2 * lane] = k0;
        uw[i * FLASH_HD + 2 * lane + 1] = k1;
    }
    __syncwarp();
    if (rows <= 0) return; /* whole warps */
    for (int r = 0; r < s.nh; r++) {
        int bk[2];
        lsh_buckets_tile(bk, uw, rows, rot + (size_t)(h * s.nh + r) * FLASH_HD * s.half, s.half, lane);
        int *out = bucket + (((size_t)r * s.B + b) * s.H + h) * s.T + t0;
        if (lane % 4 == 0)
            for (int e = 0; e < 2; e++)
                if (lane / 4 + 8 * e < rows) out[lane / 4 + 8 * e] = bk[e];
    }
}

/* A block per (round, b, h) row of bucket (n_h,B,H,T): the keys bucket*T + t (unique, so any sort of them is the
 * stable sort by (bucket, position)) sorted bitonically in shared memory (P = T rounded up to a power of two,
 * padded with UINT_MAX); rows[s] = t of sorted index s; row_lo[s] = max(first index of its bucket, s - window + 1). */
__global__ void lsh_sort_kernel(int *rows, int *row_lo, const int *bucket, int T, int P, int window) {
    extern __shared__ unsigned key[];
    const size_t base = (size_t)blockIdx.x * T;
    for (int i = threadIdx.x; i < P; i += blockDim.x) key[i] = i < T ? (unsigned)bucket[base + i] * T + i : UINT_MAX;
    __syncthreads();
    for (int k = 2; k <= P; k <<= 1)
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = threadIdx.x; i < P; i += blockDim.x) {
                const int l = i ^ j;
                if (l > i) {
                    const unsigned a = key[i], c = key[l];
                    if ((a > c) == ((i & k) == 0)) key[i] = c, key[l] = a;
                }
            }
            __syncthreads();
        }
    for (int s = threadIdx.x; s < T; s += blockDim.x) {
        const unsigned bk = key[s] / T, first_key = bk * T;
        int lo = 0, hi = s; /* the first sorted index of bucket bk: lower bound of bk*T in key[0..s] */
        while (lo < hi) {
            const int mid = (lo + hi) >> 1;
            if (key[mid] < first_key) lo = mid + 1;
            else hi = mid;
        }
        rows[base + s] = (int)(key[s] - first_key);
        row_lo[base + s] = lo > s - window + 1 ? lo : s - window + 1;
    }
}

/* 8 threads per (b, t, h) row, 8 dims each: L = logsumexp_r lse_r, o = y = sum_r exp(lse_r - L) O_r. */
__global__ void lsh_combine_kernel(bf16 *o, bf16 *y, float *lse, const bf16 *o_r, const float *lse_r, lsh_shape s) {
    const size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x, row = idx / 8; /* (b, t, h) */
    if (row >= (size_t)s.B * s.T * s.H) return;
    const int chunk = (int)(idx % 8), h = (int)(row % s.H);
    const size_t bt = row / s.H, bht = ((bt / s.T) * s.H + h) * s.T + bt % s.T, plane = (size_t)s.B * s.H * s.T;
    float l[LSH_MAX_HASHES], m = -INFINITY, sum = 0.0f, acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    for (int r = 0; r < s.nh; r++) m = fmaxf(m, l[r] = lse_r[r * plane + bht]);
    for (int r = 0; r < s.nh; r++) sum += expf(l[r] - m);
    const float L = m + logf(sum);
    const size_t off = bt * s.C + h * FLASH_HD + chunk * 8;
    for (int r = 0; r < s.nh; r++) {
        const float wr = expf(l[r] - L);
        const uint4 u = *reinterpret_cast<const uint4 *>(o_r + r * (size_t)s.B * s.T * s.C + off);
        const __nv_bfloat162 *v = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const float2 f = __bfloat1622float2(v[k]);
            acc[2 * k] += wr * f.x;
            acc[2 * k + 1] += wr * f.y;
        }
    }
    uint4 u;
    __nv_bfloat162 *v = reinterpret_cast<__nv_bfloat162 *>(&u);
#pragma unroll
    for (int k = 0; k < 4; k++) v[k] = __floats2bfloat162_rn(acc[2 * k], acc[2 * k + 1]);
    *reinterpret_cast<uint4 *>(o + off) = u;
    *reinterpret_cast<uint4 *>(y + off) = u;
    if (chunk == 0) lse[bht] = L;
}

/* A warp per (b, t, h): dqkv (B,T,2C) = [dQ + (dk^ - k^ (k^.dk^)) / n | sum_r dV_r], dQ from dq_accum (tau = 1),
 * dk^ = sum_r dK^_r of dkv_r (n_h,B,T,2C); k^ recomputed in fp32 from qk and n. */
__global__ void lsh_bwd_finish_kernel(bf16 *dqkv, const bf16 *qkv, const float *nrm, const float *dq_accum,
                                      const bf16 *dkv_r, lsh_shape s) {
    const int lane = threadIdx.x & 31;
    const size_t row = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5; /* (b, t, h) */
    if (row >= (size_t)s.B * s.T * s.H) return;
    const int h = (int)(row % s.H);
    const size_t bt = row / s.H, b = bt / s.T, t = bt % s.T;
    const size_t off = bt * 2 * s.C + h * FLASH_HD + 2 * lane, plane = (size_t)s.B * s.T * 2 * s.C;
    const float inv = 1.0f / nrm[row];
    const float2 q = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(qkv + off));
    const float k0 = q.x * inv, k1 = q.y * inv;
    float2 dk = make_float2(0.0f, 0.0f), dv = make_float2(0.0f, 0.0f);
    for (int r = 0; r < s.nh; r++) {
        const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(dkv_r + r * plane + off));
        const float2 c = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(dkv_r + r * plane + off + s.C));
        dk.x += a.x; dk.y += a.y;
        dv.x += c.x; dv.y += c.y;
    }
    const float dot = warp_sum(k0 * dk.x + k1 * dk.y);
    const float2 dq = *reinterpret_cast<const float2 *>(dq_accum + ((b * s.H + h) * s.T + t) * FLASH_HD + 2 * lane);
    *reinterpret_cast<__nv_bfloat162 *>(dqkv + off) =
        __floats2bfloat162_rn(dq.x + (dk.x - k0 * dot) * inv, dq.y + (dk.y - k1 * dot) * inv);
    *reinterpret_cast<__nv_bfloat162 *>(dqkv + off + s.C) = __floats2bfloat162_rn(dv.x, dv.y);
}

/* ---------------------------------------------------------------- forward, backward */

/* The sorted-space flash parameters of round r: Q from qkv, K and V from kv (both (B,T,2C)), O and dO (B,T,C). */
static flash_params round_params(const lsh_shape *s, const lsh_saved *sv, int r) {
    flash_params p;
    memset(&p, 0, sizeof p);
    const size_t plane = (size_t)s->B * s->H * s->T;
    p.q = sv->qkv;
    p.k = sv->kv;
    p.v = sv->kv + s->C;
    p.q_sb = p.kv_sb = (long long)s->T * 2 * s->C;
    p.q_st = p.kv_st = 2 * s->C;
    p.q_sh = p.kv_sh = FLASH_HD;
    p.o_sb = (long long)s->T * s->C;
    p.o_st = s->C;
    p.o_sh = FLASH_HD;
    p.B = s->B;
    p.H = s->H;
    p.T = s->T;
    p.h_per_kv = 1;
    p.window = s->window;
    p.rows = sv->rows + r * plane;
    p.row_lo = sv->row_lo + r * plane;
    p.tau = 1.0f; /* VARIANTS.md 6: no tau */
    p.scale_log2 = 1.4426950408889634f;
    return p;
}

static unsigned pow2_at_least(int n) {
    unsigned p = 1;
    while (p < (unsigned)n) p <<= 1;
    return p;
}

static ab_status run_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const lsh_saved *sv, void *tmp_base,
                             void *y, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    ab_backend *be = ctx->be;
    cudaStream_t st = cuda_stream(be);
    const lsh_shape s = lsh_shape_of(cfg, B, T);
    AB_TRY(cuda_matmul_forward(be, sv->qkv, x, w->t[W_ATTN], w->t[W_BIAS], B * T, cfg->C, 2 * cfg->C));
    const dim3 hash_grid((unsigned)((T + 16 * LSH_HASH_WARPS - 1) / (16 * LSH_HASH_WARPS)), (unsigned)cfg->H,
                         (unsigned)B);
    lsh_hash_kernel<<<hash_grid, LSH_HASH_WARPS * 32, 0, st>>>(sv->kv, sv->nrm, sv->bucket, sv->qkv,
                                                               (const bf16 *)w->t[W_ROT], s);
    AB_TRY(cuda_check_launch("lsh_hash"));
    const unsigned P = pow2_at_least(T), threads = P < 1024 ? (P < 32 ? 32 : P) : 1024;
    const size_t smem = P * sizeof(unsigned);
    if (smem > 48 * 1024) /* the default limit covers T <= 12288: no attribute call per layer and step below */
        CUDA_TRY(cudaFuncSetAttribute(lsh_sort_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                 "lsh sort shared memory");
    lsh_sort_kernel<<<s.nh * B * cfg->H, threads, smem, st>>>(sv->rows, sv->row_lo, sv->bucket, T, (int)P, s.window);
    AB_TRY(cuda_check_launch("lsh_sort"));
    lsh_fwd_tmp tmp = fwd_tmp_views(&s, tmp_base, NULL);
    for (int r = 0; r < s.nh; r++) {
        flash_params p = round_params(&s, sv, r);
        p.o = tmp.o_r + (size_t)r * B * T * cfg->C;
        p.lse = tmp.lse_r + (size_t)r * B * cfg->H * T;
        AB_TRY(flash_launch_forward<flash_mask_sorted>(be, p));
    }
    const size_t rows = (size_t)B * T * cfg->H;
    lsh_combine_kernel<<<cuda_blocks(rows * 8, 256), 256, 0, st>>>(sv->o, (bf16 *)y, sv->lse, tmp.o_r, tmp.lse_r, s);
    return cuda_check_launch("lsh_combine");
}

static ab_status lsh_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y, const void *x,
                             int B, int T) {
    AB_TRY(lsh_check(ctx->cfg, T));
    lsh_shape s = lsh_shape_of(ctx->cfg, B, T);
    lsh_saved sv = saved_views(&s, saved, NULL);
    return run_forward(ctx, w, &sv, ctx->workspace, y, x, B, T);
}

static ab_status lsh_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                              const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(lsh_check(cfg, T));
    ab_backend *be = ctx->be;
    const lsh_shape s = lsh_shape_of(cfg, B, T);
    lsh_saved sv = saved_views(&s, (void *)saved, NULL);
    lsh_bwd_tmp tmp = bwd_tmp_views(&s, ctx->workspace, NULL);
    AB_TRY(flash_bwd_prepare(be, tmp.delta, tmp.dq_accum, dy, sv.o, B, T, cfg->H));
    for (int r = 0; r < s.nh; r++) {
        flash_params p = round_params(&s, &sv, r);
        p.lse = sv.lse;
        p.delta = tmp.delta;
        p.dout = (const bf16 *)dy;
        p.dk = tmp.dkv_r + (size_t)r * B * T * 2 * cfg->C;
        p.dv = p.dk + cfg->C;
        p.dq_accum = tmp.dq_accum;
        AB_TRY(flash_launch_backward<flash_mask_sorted>(be, p));
    }
    const size_t rows = (size_t)B * T * cfg->H;
    lsh_bwd_finish_kernel<<<cuda_blocks(rows * 32, 256), 256, 0, cuda_stream(be)>>>(tmp.dqkv, sv.qkv, sv.nrm,
                                                                                     tmp.dq_accum, tmp.dkv_r, s);
    AB_TRY(cuda_check_launch("lsh_bwd_finish"));
    return cuda_matmul_backward(be, dx, dw ? dw->t[W_ATTN] : NULL, dw ? dw->t[W_BIAS] : NULL, tmp.dqkv, x, w->t[W_ATTN],
                                B * T, cfg->C, 2 * cfg->C);
}

/* ---------------------------------------------------------------- cache: kv (B, max_T, 2C) bf16 | ids (B,H,n_h,S) int16,
 * S = max_T padded to 8 positions (the decode reads 8 ids as one 16-byte load) */

static size_t cache_kv_bytes(const ab_attn_config *cfg, int B, int max_T) {
    return align256((size_t)B * max_T * 2 * cfg->C * sizeof(bf16));
}

__host__ __device__ static inline size_t lsh_ids_stride(int max_T) { return ((size_t)max_T + 7) & ~(size_t)7; }

static size_t lsh_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    return cache_kv_bytes(cfg, B, max_T) + (size_t)B * cfg->H * cfg->hp.lsh_hashes * lsh_ids_stride(max_T) * sizeof(int16_t);
}

/* positions t < T: kv rows (B,T,2C) into the cache's (B, max_T, 2C), 8 elements a thread, and the ids */
__global__ void lsh_cache_fill_kernel(bf16 *ckv, int16_t *ids, const bf16 *kv, const int *bucket, lsh_shape s,
                                      int max_T) {
    const size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x, per_row = (size_t)2 * s.C / 8;
    if (idx < (size_t)s.B * s.T * per_row) {
        const size_t bt = idx / per_row, c = idx % per_row * 8, b = bt / s.T, t = bt % s.T;
        *reinterpret_cast<uint4 *>(ckv + (b * max_T + t) * 2 * s.C + c) =
            *reinterpret_cast<const uint4 *>(kv + bt * 2 * s.C + c);
    }
    if (idx < (size_t)s.nh * s.B * s.H * s.T) { /* bucket (n_h,B,H,T) -> ids (B,H,n_h,S) */
        const size_t t = idx % s.T, rbh = idx / s.T, h = rbh % s.H, b = rbh / s.H % s.B, r = rbh / s.H / s.B;
        ids[((b * s.H + h) * s.nh + r) * lsh_ids_stride(max_T) + t] = (int16_t)bucket[idx];
    }
}

static ab_status lsh_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                             int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(lsh_check(cfg, T));
    if (T > cfg->max_T) return ab_fail(AB_ERR_USAGE, "cuda lsh prefill: T = %d > max_T = %d", T, cfg->max_T);
    if (T <= 0) return AB_OK;
    lsh_shape s = lsh_shape_of(cfg, B, T);
    size_t saved_bytes;
    lsh_saved sv = saved_views(&s, ctx->workspace, &saved_bytes);
    AB_TRY(run_forward(ctx, w, &sv, (char *)ctx->workspace + saved_bytes, y, x, B, T));
    const size_t kv8 = (size_t)B * T * 2 * cfg->C / 8, ids = (size_t)s.nh * B * cfg->H * T;
    lsh_cache_fill_kernel<<<cuda_blocks(kv8 > ids ? kv8 : ids, 256), 256, 0, cuda_stream(ctx->be)>>>(
        (bf16 *)cache, (int16_t *)((char *)cache + cache_kv_bytes(cfg, B, cfg->max_T)), sv.kv, sv.bucket, s, cfg->max_T);
    return cuda_check_launch("lsh_cache_fill");
}

/* The decode's barrier of team `team` (its LSH_DECODE_THREADS threads, one round of lsh_decode_kernel): named barrier
 * 1 + team, barrier 0 being the block's __syncthreads */
__device__ __forceinline__ void lsh_team_sync(int team) {
    asm volatile("bar.sync %0, %1;" ::"r"(1 + team), "n"(LSH_DECODE_THREADS) : "memory");
}

/* Exclusive prefix sum of v over a team's LSH_DECODE_THREADS threads (thread order, tid the thread's index in the
 * team); *total = the sum */
__device__ int team_exclusive_sum(int v, int tid, int team, int *scratch, int *total) {
    const int lane = tid & 31, warp = tid >> 5;
    int incl = v;
    for (int o = 1; o < 32; o <<= 1) {
        const int u = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += u;
    }
    if (lane == 31) scratch[warp] = incl;
    lsh_team_sync(team);
    int before = 0, all = 0;
    for (int k = 0; k < LSH_DECODE_THREADS / 32; k++) {
        if (k < warp) before += scratch[k];
        all += scratch[k];
    }
    lsh_team_sync(team);
    *total = all;
    return before + incl - v;
}

/* The decode's scan of a round's ids (lsh_decode_kernel): the positions are taken in groups of 8 aligned ones, a
 * group one 16-byte load (the ids' rows padded to 8 positions: lsh_ids_stride); a pass takes the groups top,
 * top - 1, ... down, `per` consecutive ones a thread (thread t: top - t*per - i, i < per), as many a thread as cover
 * the positions left, at most LSH_SCAN_GROUPS (8192 positions a pass at 128 threads), so that the whole history of
 * 8192 positions is one round trip where a pass of 1024 took eight. Bit o = 8 i + (7 - e) of a thread's match is
 * position 8 (top - t*per - i) + e: in bit order the positions fall, and in thread order too, so the candidates come
 * out newest first, as the scan from pos down found them. */
#define LSH_SCAN_GROUPS 8
static_assert(LSH_SCAN_GROUPS * 8 <= 64, "a thread's matches are one 64-bit mask");

__device__ __forceinline__ int lsh_scan_per_thread(int top) {
    const int per = (top + LSH_DECODE_THREADS) / LSH_DECODE_THREADS; /* ceil((top + 1) / threads) */
    return per < LSH_SCAN_GROUPS ? per : LSH_SCAN_GROUPS;
}

__device__ __forceinline__ void lsh_scan_load(uint4 *ids8, const int16_t *id, int top, int per, int tid) {
#pragma unroll
    for (int i = 0; i < LSH_SCAN_GROUPS; i++) {
        const int g = top - tid * per - i;
        ids8[i] = i < per && g >= 0 ? *reinterpret_cast<const uint4 *>(id + 8 * (size_t)g) : make_uint4(0u, 0u, 0u, 0u);
    }
}

/* bit o: position lsh_scan_position(top, per, o) <= pos is a candidate: pos itself (whose id may not be written yet,
 * and whose group's later ids are stale), or an earlier one of bucket me */
__device__ __forceinline__ uint64_t lsh_scan_match(const uint4 *ids8, int top, int per, int pos, int me, int tid) {
    uint64_t match = 0;
#pragma unroll
    for (int i = 0; i < LSH_SCAN_GROUPS; i++) {
        const int g = top - tid * per - i;
        if (i >= per || g < 0) continue;
        const int16_t *v = reinterpret_cast<const int16_t *>(&ids8[i]);
#pragma unroll
        for (int e = 0; e < 8; e++) {
            const int j = 8 * g + e;
            if (j == pos || (j < pos && v[e] == me)) match |= 1ull << (8 * i + 7 - e);
        }
    }
    return match;
}

__device__ __forceinline__ int lsh_scan_position(int top, int per, int o, int tid) {
    return 8 * (top - tid * per - o / 8) + 7 - o % 8;
}

/* A block per (b, h), its rounds run by teams of LSH_DECODE_THREADS threads, LSH_TEAMS of them side by side (team t:
 * rounds t, t + LSH_TEAMS, ...; each team's own barrier, lsh_team_sync). For a round, the token at pos = *pos_dev
 * (qkv1 (B,2C)) is normalised and hashed by the team (round 0 appends [k^ | v] to the cache, each round its bucket
 * id); the round's candidates are the last `window` positions j <= pos with its bucket (a scan from pos down, newest
 * first, 8192 positions a pass), scored in fp32 (the diagonal gets the self logit) and folded into softmax states
 * over their values (pos's value from the team's own copy, as the cache's may still be being written).
 * The position is written before the step's first kernel and the ids of the positions before it by earlier steps, so
 * the scan's first pass's ids are requested before the programmatic-launch wait, with the first 8 columns of the
 * round's rotations (only qkv1 comes after it). The candidates are folded as kv_decode folds its keys: a group of 8
 * lanes a candidate (lane l: dimensions 8l .. 8l + 7 of its key and value, 16-byte loads; the score by shuffles in
 * the group), group g taking candidates g, g + LSH_GROUPS, ..., the first LSH_EARLY of them (all up to W_l = 128)
 * requested at once, each group an online softmax state; the warp's groups merge by shuffles
 * (softmax_state_warp_merge). The rounds combine by their log-sum-exp (o = sum_r e^(lse_r) o_r / sum_r e^(lse_r)),
 * which is the merge of their unnormalised states: after the block's barrier the n_h x LSH_WARPS warps' states
 * merge in round and warp order into y (B,C). Against a block a round, the rounds one cluster merged through
 * distributed shared memory (H200, decode ms a token, batch 1 / B, thirteenth session): 1024 positions 0.261 /
 * 0.515 -> 0.245 / 0.524 (B = 16), 2048 0.330 / 0.469 -> 0.273 / 0.444, 8192 0.615 / 0.736 -> 0.399 / 0.566 (B = 4).
 * Held to 128 registers (80 bytes spilled), so that two blocks fit an SM: at 186, one block an SM, batch 1 at 1024
 * was 0.260-0.261 and batch 16 0.588-0.592 (192 blocks in two waves); docs/PERF.md.
 * shared: the warps' states n_h x LSH_WARPS x (64 + 2) | for each team: q (64) | khat (64) | v of pos (64) |
 * candidates (window) | bucket (1) | scan scratch (LSH_WARPS) */
#define LSH_TEAMS 2 /* with __launch_bounds__(.., 2): 128 registers (80 bytes spilled), two blocks an SM */
#define LSH_WARPS (LSH_DECODE_THREADS / 32)
#define LSH_GROUPS (LSH_DECODE_THREADS / 8)
#define LSH_EARLY 8 /* candidates a group requests at once: W_l = 128 over 16 groups */
#define LSH_LATER 4 /* longer windows (--lsh-chunk > 64): the rest, 4 candidates a group in flight */
#define LSH_STATE (FLASH_HD + 2) /* floats a softmax state */

/* 4-byte words of a team's shared memory (lsh_decode_kernel) */
__host__ __device__ static inline int lsh_team_words(int window) { return 3 * FLASH_HD + window + 1 + LSH_WARPS; }

__global__ void __launch_bounds__(LSH_TEAMS * LSH_DECODE_THREADS, 2)
    lsh_decode_kernel(bf16 *y, bf16 *ckv, int16_t *ids, const bf16 *qkv1, const bf16 *rot, const int32_t *pos_dev,
                      lsh_shape s, int max_T) {
    extern __shared__ float sh[];
    pdl_release(); /* the output projection after this may be scheduled early (cuda_common.cuh) */
    const int teams = blockDim.x / LSH_DECODE_THREADS, team = threadIdx.x / LSH_DECODE_THREADS;
    const int tid = threadIdx.x % LSH_DECODE_THREADS, lane = tid & 31, warp = tid >> 5;
    const int b = blockIdx.x / s.H, h = blockIdx.x % s.H, pos = *pos_dev, C = s.C, W = s.window;
    float *wst = sh, *q = wst + s.nh * LSH_WARPS * LSH_STATE + team * lsh_team_words(W);
    float *khat = q + FLASH_HD, *vpos = khat + FLASH_HD;
    int *cand = (int *)(vpos + FLASH_HD), *bk = cand + W, *scratch = bk + 1;
    bf16 *kv_b = ckv + (size_t)b * max_T * 2 * C;
    const int g = tid / 8, d8 = (tid % 8) * 8;
    const bf16 *kb = kv_b + h * FLASH_HD + d8; /* key of position j: kb + j * 2C, its value C further */
    for (int r = team; r < s.nh; r += teams) { /* the team's rounds */
        int16_t *id = ids + (((size_t)b * s.H + h) * s.nh + r) * lsh_ids_stride(max_T); /* the round's ids */
        /* the scan's first pass requested now: its ids (of positions < pos) were written by earlier steps */
        uint4 ids8[LSH_SCAN_GROUPS];
        int top = pos >> 3, per = lsh_scan_per_thread(top);
        lsh_scan_load(ids8, id, top, per, tid);
        const bf16 *rot_r = rot + (size_t)(h * s.nh + r) * FLASH_HD * s.half; /* the round's R (a constant) */
        uint32_t rot0[4][2];
        if (tid < 32) lsh_rot_fragments(rot0, rot_r, s.half, 0, lane);
        if (r == team) pdl_wait(); /* launched dependent: the product before this wrote qkv1 */
        if (tid < 32) { /* the team's warp 0: normalise, append [k^ | v] (round 0), hash the round */
            const size_t off = (size_t)b * 2 * C + h * FLASH_HD + 2 * lane;
            const float2 q2 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(qkv1 + off));
            const __nv_bfloat162 v2 = *reinterpret_cast<const __nv_bfloat162 *>(qkv1 + off + C);
            float k0, k1;
            lsh_normalise_warp(q2.x, q2.y, &k0, &k1);
            q[2 * lane] = q2.x;
            q[2 * lane + 1] = q2.y;
            const float2 vf = __bfloat1622float2(v2);
            vpos[2 * lane] = vf.x;
            vpos[2 * lane + 1] = vf.y;
            if (r == 0) {
                bf16 *rec = kv_b + (size_t)pos * 2 * C + h * FLASH_HD + 2 * lane;
                *reinterpret_cast<__nv_bfloat162 *>(rec) = __floats2bfloat162_rn(k0, k1);
                *reinterpret_cast<__nv_bfloat162 *>(rec + C) = v2;
            }
            khat[2 * lane] = k0;
            khat[2 * lane + 1] = k1;
            __syncwarp();
            int me[2]; /* the forward's hashing, on a tile of one key */
            lsh_buckets_tile(me, khat, 1, rot_r, s.half, lane, rot0);
            if (lane == 0) {
                bk[0] = me[0];
                id[pos] = (int16_t)me[0];
            }
        }
        lsh_team_sync(team);
        const int me = bk[0];
        int found = 0;
        for (;;) {
            const uint64_t match = lsh_scan_match(ids8, top, per, pos, me, tid);
            int total;
            int at = found + team_exclusive_sum(__popcll(match), tid, team, scratch, &total);
            for (uint64_t m = match; m; m &= m - 1) { /* the thread's candidates, newest first */
                const int o = __ffsll((long long)m) - 1;
                if (at < W) cand[at] = lsh_scan_position(top, per, o, tid);
                at++;
            }
            found += total; /* uniform: every thread of the team saw the same total */
            top -= LSH_DECODE_THREADS * per;
            if (top < 0 || found >= W) break;
            per = lsh_scan_per_thread(top);
            lsh_scan_load(ids8, id, top, per, tid);
        }
        const int n = found < W ? found : W;
        lsh_team_sync(team);
        auto load = [&](int c, uint4 *ku, uint4 *vu) { /* candidate c's key and value (zeros past n and for pos) */
            const bool on = c < n && cand[c] != pos;
            const bf16 *kp = kb + (size_t)(on ? cand[c] : 0) * 2 * C;
            *ku = on ? *reinterpret_cast<const uint4 *>(kp) : make_uint4(0u, 0u, 0u, 0u);
            *vu = on ? *reinterpret_cast<const uint4 *>(kp + C) : make_uint4(0u, 0u, 0u, 0u);
        };
        float qr[8], o[8], m = -INFINITY, l = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            qr[e] = q[d8 + e];
            o[e] = 0.0f;
        }
        /* the group sum, the fold, the warp's store and the rounds' merge below are written out, not the helpers
         * kv_decode uses (lane_group_sum, softmax_state_fold, softmax_state_warp_store, softmax_states_merge): with
         * them this kernel, held to 128 registers, spilled 100 bytes where it spills 80 and decoded 3-18 us a token
         * slower at batch 1 on an H200 (8192 positions 0.397-0.402 -> 0.407-0.421 ms; docs/PERF.md, fourteenth
         * session) */
        auto fold = [&](int c, uint4 ku, uint4 vu) { /* candidate c into the group's state; every lane shuffles */
            float k[8], v[8], sc = 0.0f;
            unpack8(k, ku);
            unpack8(v, vu);
#pragma unroll
            for (int e = 0; e < 8; e++) sc += qr[e] * k[e];
            sc += __shfl_xor_sync(0xffffffffu, sc, 1);
            sc += __shfl_xor_sync(0xffffffffu, sc, 2);
            sc += __shfl_xor_sync(0xffffffffu, sc, 4);
            if (c >= n) return;
            if (cand[c] == pos) { /* the diagonal: the self logit, and the new token's value as the cache rounds it */
                sc = FLASH_SELF_LOGIT;
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] = vpos[d8 + e];
            }
            float scale, p;
            softmax_state_step(&m, &l, sc, &scale, &p);
#pragma unroll
            for (int e = 0; e < 8; e++) o[e] = o[e] * scale + p * v[e];
        };
        { /* the group's first LSH_EARLY candidates, all requested before the first is folded */
            uint4 ke[LSH_EARLY], ve[LSH_EARLY];
#pragma unroll
            for (int i = 0; i < LSH_EARLY; i++) load(g + i * LSH_GROUPS, &ke[i], &ve[i]);
#pragma unroll
            for (int i = 0; i < LSH_EARLY; i++)
                if (i * LSH_GROUPS < n) fold(g + i * LSH_GROUPS, ke[i], ve[i]);
        }
        for (int c0 = LSH_EARLY * LSH_GROUPS; c0 < n; c0 += LSH_LATER * LSH_GROUPS) {
            uint4 ku[LSH_LATER], vu[LSH_LATER];
#pragma unroll
            for (int i = 0; i < LSH_LATER; i++) load(c0 + g + i * LSH_GROUPS, &ku[i], &vu[i]);
#pragma unroll
            for (int i = 0; i < LSH_LATER; i++)
                if (c0 + i * LSH_GROUPS < n) fold(c0 + g + i * LSH_GROUPS, ku[i], vu[i]);
        }
        softmax_state_warp_merge(&m, &l, o, 8);
        float *mine = wst + (r * LSH_WARPS + warp) * LSH_STATE;
        if (lane < 8) { /* the warp's first group */
            if (lane == 0) {
                mine[0] = m;
                mine[1] = l;
            }
#pragma unroll
            for (int e = 0; e < 8; e++) mine[2 + d8 + e] = o[e];
        }
        lsh_team_sync(team); /* the team's q, candidates and bucket are written again for its next round */
    }
    __syncthreads(); /* every round's states are in */
    if (threadIdx.x < FLASH_HD) { /* the rounds' warps' states merged in round and warp order */
        const int d = threadIdx.x, states = s.nh * LSH_WARPS;
        float M = -INFINITY, L = 0.0f, acc = 0.0f;
        for (int k = 0; k < states; k++) M = fmaxf(M, wst[k * LSH_STATE]);
        for (int k = 0; k < states; k++) {
            const float *st = wst + k * LSH_STATE;
            const float a = st[0] == -INFINITY ? 0.0f : __expf(st[0] - M);
            L += a * st[1];
            acc += a * st[2 + d];
        }
        y[(size_t)b * C + h * FLASH_HD + d] = f2bf(acc / L);
    }
}

/* the decode's teams a block: its rounds side by side, up to LSH_TEAMS */
static int decode_teams(const lsh_shape *s) { return s->nh < LSH_TEAMS ? s->nh : LSH_TEAMS; }

static size_t decode_smem(const lsh_shape *s) {
    return ((size_t)s->nh * LSH_WARPS * LSH_STATE + (size_t)decode_teams(s) * lsh_team_words(s->window)) * sizeof(float);
}

/* decode's checks, then its first product: qkv1 (B, 2C) = LN(x) @ c_attn + b into the workspace. At batch 1 it is
 * chained after the block before (block_tail_forward): with the eighth session's decode kernel (a block a round)
 * that was faster on an H200, 0.309 -> 0.265 ms a token at 512 positions, though 0.610 -> 0.626 at 8192 (docs/PERF.md;
 * with the one before it, a block a head of serial rounds, it had been slower, 0.341 -> 0.349) */
static ab_status lsh_decode_input(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, int B, int pos,
                                  ab_decode_input *in) {
    (void)cache;
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(lsh_check(cfg, 1));
    if (pos < 0 || pos >= cfg->max_T)
        return ab_fail(AB_ERR_USAGE, "cuda lsh decode: position %d outside 0..%d", pos, cfg->max_T - 1);
    lsh_shape s = lsh_shape_of(cfg, B, 1);
    const size_t smem = decode_smem(&s);
    if (smem > 48 * 1024)
        return ab_fail(AB_ERR_UNSUPPORTED, "cuda lsh decode: a window of %d keys needs %zu bytes of shared memory",
                       s.window, smem);
    decode_input_product(in, ctx->workspace, w->t[W_ATTN], w->t[W_BIAS], cfg->C, 2 * cfg->C);
    return AB_OK;
}

static ab_status lsh_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                            int B, int pos) {
    const ab_attn_config *cfg = ctx->cfg;
    ab_decode_input in;
    AB_TRY(lsh_decode_input(ctx, w, cache, B, pos, &in));
    lsh_shape s = lsh_shape_of(cfg, B, 1);
    const int32_t *pos_dev;
    AB_TRY(cuda_decode_pos(ctx, pos, &pos_dev));
    AB_TRY(cuda_decode_input_run(ctx, &in, x, B));
    /* a block per (b, h), its rounds side by side; programmatically dependent */
    return cuda_launch(ctx->be, "lsh_decode", lsh_decode_kernel, dim3((unsigned)(B * cfg->H)), dim3(1, 1, 1),
                       dim3((unsigned)(decode_teams(&s) * LSH_DECODE_THREADS)), decode_smem(&s), 1, (bf16 *)y, (bf16 *)cache,
                       (int16_t *)((char *)cache + cache_kv_bytes(cfg, B, cfg->max_T)), (const bf16 *)in.out,
                       (const bf16 *)w->t[W_ROT], pos_dev, s, cfg->max_T);
}

extern "C" const ab_attn_ops ab_cuda_attn_lsh = {
    lsh_saved_bytes, lsh_ws_bytes, lsh_forward, lsh_backward, lsh_cache_bytes, lsh_prefill, lsh_decode, lsh_decode_input,
};
