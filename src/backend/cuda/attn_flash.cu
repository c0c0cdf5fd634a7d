/*
 * attn_flash.cu — the flash variant on CUDA: c_attn projection (cuBLASLt), FlashAttention-2 forward and
 * backward (flash_attn.cuh) reading Q, K, V in place from the projection output, and the small kernels
 * around the backward (Delta = rowsum(dO * O), dQ from its fp32 accumulator). The core entry points take G
 * key/value heads and a window (ab_cuda_flash_*_gqa): gqa and sliding_window (attn_gqa_window.cu) run on them.
 *
 * saved per layer:  qkv (B,T,3C) bf16 | O (B,T,C) bf16 | L (B,H,T) fp32
 * workspace:        dqkv (B,T,3C) bf16 | dq_accum (B,H,T,64) fp32 | Delta (B,H,T) fp32
 *                   (prefill uses it for its saved tensors; decode for the new token's qkv and the split
 *                   softmax states: attn_decode_workspace_bytes)
 */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_attn.cuh"
#include "backend/cuda/flash_attn.cuh"

static size_t bt_bytes(const ab_attn_config *cfg, int B, int T, int parts) {
    return (size_t)B * T * parts * cfg->C * sizeof(bf16);
}
static size_t bht_f32(const ab_attn_config *cfg, int B, int T) { return (size_t)B * cfg->H * T * sizeof(float); }

static size_t flash_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    return align256(bt_bytes(cfg, B, T, 3)) + align256(bt_bytes(cfg, B, T, 1)) + align256(bht_f32(cfg, B, T));
}
static size_t flash_ws_bytes(const ab_attn_config *cfg, int B, int T) {
    size_t w = align256(bt_bytes(cfg, B, T, 3)) + align256(bht_f32(cfg, B, T) * FLASH_HD) + align256(bht_f32(cfg, B, T));
    size_t s = flash_saved_bytes(cfg, B, T), d = attn_decode_workspace_bytes(cfg, B);
    if (s > w) w = s;
    return w > d ? w : d;
}

typedef struct {
    bf16 *qkv, *o;
    float *lse;
} flash_saved;

static flash_saved flash_views(const ab_attn_config *cfg, void *saved, int B, int T) {
    flash_saved s;
    char *p = (char *)saved;
    s.qkv = (bf16 *)p;
    p += align256(bt_bytes(cfg, B, T, 3));
    s.o = (bf16 *)p;
    p += align256(bt_bytes(cfg, B, T, 1));
    s.lse = (float *)p;
    return s;
}

/* Q, K, V read in place from qkv (B,T,C+2*G*D) = [q (H heads) | k (G heads) | v (G heads)] (G = H: the
 * (B,T,3C) c_attn output); O, dO (B,T,C) */
static flash_params flash_make_params(const ab_attn_config *cfg, const bf16 *qkv, int B, int T, int G) {
    flash_params p;
    memset(&p, 0, sizeof p);
    int C = cfg->C, ld = C + 2 * G * cfg->D;
    p.q = qkv;
    p.k = qkv + C;
    p.v = qkv + C + G * cfg->D;
    p.q_sb = p.kv_sb = (long long)T * ld;
    p.q_st = p.kv_st = ld;
    p.q_sh = p.kv_sh = cfg->D;
    p.o_sb = (long long)T * C;
    p.o_st = C;
    p.o_sh = cfg->D;
    p.B = B;
    p.H = cfg->H;
    p.T = T;
    p.h_per_kv = cfg->H / G;
    p.window = T;
    p.tau = 1.0f / sqrtf((float)cfg->D);
    p.scale_log2 = p.tau * 1.4426950408889634f;
    return p;
}

static ab_status check_flash_shape(const ab_attn_config *cfg) {
    if (cfg->D != FLASH_HD)
        return ab_fail(AB_ERR_UNSUPPORTED, "cuda flash attention: head size %d (only %d is built)", cfg->D, FLASH_HD);
    return AB_OK;
}

/* Before the backward: Delta[b,h,t] = sum_d dO[b,t,h,d] * O[b,t,h,d] and dq_accum (B,H,T,64) = 0.
 * 8 threads per (b,t,h) row, 16-byte loads of dO and O (token-major, coalesced), 8 floats zeroed each. */
__global__ void flash_bwd_prepare_kernel(float *delta, float *dq_accum, const bf16 *dout, const bf16 *o, int B, int T,
                                         int H) {
    size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; /* (b,t,h,chunk) */
    size_t row = idx / 8;
    int chunk = (int)(idx % 8);
    bool ok = row < (size_t)B * T * H;
    float s = 0.0f;
    int h = 0, t = 0, b = 0;
    if (ok) {
        uint4 ua = *reinterpret_cast<const uint4 *>(dout + row * FLASH_HD + chunk * 8);
        uint4 ub = *reinterpret_cast<const uint4 *>(o + row * FLASH_HD + chunk * 8);
        const __nv_bfloat162 *a = reinterpret_cast<const __nv_bfloat162 *>(&ua), *c = reinterpret_cast<const __nv_bfloat162 *>(&ub);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 x = __bfloat1622float2(a[k]), y = __bfloat1622float2(c[k]);
            s += x.x * y.x + x.y * y.y;
        }
        h = (int)(row % H);
        size_t bt = row / H;
        t = (int)(bt % T);
        b = (int)(bt / T);
        float4 *z = reinterpret_cast<float4 *>(dq_accum + (((size_t)b * H + h) * T + t) * FLASH_HD + chunk * 8);
        z[0] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        z[1] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    s = lane_group_sum(s, 8);
    if (ok && chunk == 0) delta[((size_t)b * H + h) * T + t] = s;
}

ab_status flash_bwd_prepare(ab_backend *be, float *delta, float *dq_accum, const void *dout, const void *o, int B, int T,
                            int H) {
    flash_bwd_prepare_kernel<<<cuda_blocks((size_t)B * T * H * 8, 256), 256, 0, cuda_stream(be)>>>(
        delta, dq_accum, (const bf16 *)dout, (const bf16 *)o, B, T, H);
    return cuda_check_launch("flash_bwd_prepare");
}

/* dq (in dqkv (B,T,ld), q part) = tau * dq_accum (B,H,T,64) */
__global__ void flash_dq_convert_kernel(bf16 *dqkv, const float *acc, int B, int T, int H, int ld, float tau) {
    size_t idx = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) * 4; /* over (B,H,T,64) */
    if (idx >= (size_t)B * H * T * FLASH_HD) return;
    int d = (int)(idx % FLASH_HD);
    size_t r = idx / FLASH_HD;
    int t = (int)(r % T);
    size_t bh = r / T;
    int h = (int)(bh % H), b = (int)(bh / H);
    float4 v = *reinterpret_cast<const float4 *>(acc + idx);
    __nv_bfloat162 *dst = reinterpret_cast<__nv_bfloat162 *>(dqkv + ((size_t)b * T + t) * ld + h * FLASH_HD + d);
    dst[0] = __floats2bfloat162_rn(v.x * tau, v.y * tau);
    dst[1] = __floats2bfloat162_rn(v.z * tau, v.w * tau);
}

extern "C" ab_status ab_cuda_flash_forward_gqa(ab_backend *be, const void *qkv, void *o, void *o2, float *lse, int B,
                                               int T, int H, int G, int window) {
    ab_attn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.H = H; cfg.D = FLASH_HD; cfg.C = H * FLASH_HD;
    flash_params p = flash_make_params(&cfg, (const bf16 *)qkv, B, T, G);
    p.o = (bf16 *)o;
    p.o2 = (bf16 *)o2;
    p.lse = lse;
    if (window > 0 && window < T) {
        p.window = window;
        return flash_launch_forward<flash_mask_band>(be, p);
    }
    return flash_launch_forward<flash_mask_causal>(be, p);
}

extern "C" ab_status ab_cuda_flash_backward_gqa(ab_backend *be, const void *qkv, const void *o, const float *lse,
                                                const void *dout, void *dqkv, float *dq_accum, float *delta, int B,
                                                int T, int H, int G, int window) {
    ab_attn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.H = H; cfg.D = FLASH_HD; cfg.C = H * FLASH_HD;
    cudaStream_t st = cuda_stream(be);
    size_t rows = (size_t)B * T * H;
    AB_TRY(flash_bwd_prepare(be, delta, dq_accum, dout, o, B, T, H));
    flash_params p = flash_make_params(&cfg, (const bf16 *)qkv, B, T, G);
    p.lse = (float *)lse;
    p.dout = (const bf16 *)dout;
    p.dk = (bf16 *)dqkv + cfg.C;
    p.dv = (bf16 *)dqkv + cfg.C + G * FLASH_HD;
    p.dq_accum = dq_accum;
    p.delta = delta;
    if (window > 0 && window < T) {
        p.window = window;
        AB_TRY(flash_launch_backward<flash_mask_band>(be, p));
    } else {
        AB_TRY(flash_launch_backward<flash_mask_causal>(be, p));
    }
    flash_dq_convert_kernel<<<cuda_blocks(rows * FLASH_HD / 4, 256), 256, 0, st>>>((bf16 *)dqkv, dq_accum, B, T, H,
                                                                                   (int)p.q_st, p.tau);
    return cuda_check_launch("flash_dq_convert");
}

extern "C" ab_status ab_cuda_flash_forward(ab_backend *be, const void *qkv, void *o, void *o2, float *lse, int B, int T,
                                           int H, int window) {
    return ab_cuda_flash_forward_gqa(be, qkv, o, o2, lse, B, T, H, H, window);
}

extern "C" ab_status ab_cuda_flash_backward(ab_backend *be, const void *qkv, const void *o, const float *lse,
                                            const void *dout, void *dqkv, float *dq_accum, float *delta, int B, int T,
                                            int H, int window) {
    return ab_cuda_flash_backward_gqa(be, qkv, o, lse, dout, dqkv, dq_accum, delta, B, T, H, H, window);
}

static ab_status flash_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y, const void *x,
                               int B, int T) {
    AB_TRY(check_flash_shape(ctx->cfg));
    flash_saved sv = flash_views(ctx->cfg, saved, B, T);
    AB_TRY(attn_qkv_forward(ctx, w, sv.qkv, x, B * T));
    return ab_cuda_flash_forward(ctx->be, sv.qkv, sv.o, y, sv.lse, B, T, ctx->cfg->H, 0);
}

static ab_status flash_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                                const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(check_flash_shape(cfg));
    flash_saved sv = flash_views(cfg, (void *)saved, B, T);
    char *p = (char *)ctx->workspace;
    bf16 *dqkv = (bf16 *)p;
    p += align256(bt_bytes(cfg, B, T, 3));
    float *dq_accum = (float *)p;
    p += align256(bht_f32(cfg, B, T) * FLASH_HD);
    float *delta = (float *)p;
    AB_TRY(ab_cuda_flash_backward(ctx->be, sv.qkv, sv.o, sv.lse, dy, dqkv, dq_accum, delta, B, T, cfg->H, 0));
    return attn_qkv_backward(ctx, w, dw, dqkv, x, dx, B * T);
}

static ab_status flash_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                               int B, int T) {
    AB_TRY(check_flash_shape(ctx->cfg));
    if (T > ctx->cfg->max_T) return ab_fail(AB_ERR_USAGE, "cuda prefill: T = %d > max_T = %d", T, ctx->cfg->max_T);
    flash_saved sv = flash_views(ctx->cfg, ctx->workspace, B, T);
    AB_TRY(attn_qkv_forward(ctx, w, sv.qkv, x, B * T));
    AB_TRY(ab_cuda_flash_forward(ctx->be, sv.qkv, sv.o, y, sv.lse, B, T, ctx->cfg->H, 0));
    return attn_kv_cache_fill(ctx->be, (bf16 *)cache, sv.qkv, B, T, ctx->cfg->C);
}

extern "C" const ab_attn_ops ab_cuda_attn_flash = {
    flash_saved_bytes, flash_ws_bytes, flash_forward, flash_backward, attn_kv_cache_bytes, flash_prefill, attn_kv_decode,
    attn_kv_decode_input,
};
