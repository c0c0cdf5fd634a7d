/*
 * cuda_attn.h — the CUDA implementations of the attention variants (C view), for the variant table
 * (src/attn/registry.c references them weakly) and the GPU tests.
 *
 * Shared by all three: x (B,T,C) is ln_1's output, y (B,T,C) the merged heads before c_proj; per-layer
 * tensors "attn.c_attn.weight" (C,3C) in w->t[0] and "attn.c_attn.bias" (3C) in w->t[1], bf16.
 * KV cache (all three): (max_T, B, [K | V], C) bf16, position-major, so its layout does not depend on max_T.
 * gqa and sliding_window (attn_gqa_window.cu) are the same with c_attn (C, C+2*G*D) and a (max_T, B, [K|V], G*D)
 * cache, resp. the band mask and a rolling cache of min(W, max_T) slots (position t in slot t % W).
 */
#ifndef AB_CUDA_ATTN_H
#define AB_CUDA_ATTN_H

#ifdef __cplusplus
extern "C" {
#endif

#include "attn/variant.h"

extern const ab_attn_ops ab_cuda_attn_baseline; /* unfused, (B,H,T,T) scores and probabilities kept */
extern const ab_attn_ops ab_cuda_attn_sdpa;     /* tau folded into QK^T, fused mask+softmax, P kept in bf16 */
extern const ab_attn_ops ab_cuda_attn_flash;    /* FlashAttention-2 forward and backward (mma.sync, bf16) */
extern const ab_attn_ops ab_cuda_attn_gqa;      /* flash with G key/value heads; KV cache 2*G*D per token */
extern const ab_attn_ops ab_cuda_attn_sliding_window; /* flash with the band mask; rolling KV cache of W slots */
extern const ab_attn_ops ab_cuda_attn_lsh;      /* flash kernels in bucket-sorted order per round; [k^|v] + ids cache */

/* The FlashAttention-2 core alone (tests, the attention-only benchmark, the variants built on it).
 * qkv (B,T,3C) with C = 64*H; o (B,T,C) (o2: optional second copy); lse (B,H,T) fp32.
 * window <= 0 or >= T: causal; else a band of `window` keys including the current one.
 * Backward writes dqkv (B,T,3C) (all three parts); dq_accum (B,H,T,64) and delta (B,H,T) fp32 are scratch. */
ab_status ab_cuda_flash_forward(ab_backend *be, const void *qkv, void *o, void *o2, float *lse, int B, int T, int H,
                                int window);
ab_status ab_cuda_flash_backward(ab_backend *be, const void *qkv, const void *o, const float *lse, const void *dout,
                                 void *dqkv, float *dq_accum, float *delta, int B, int T, int H, int window);
/* The same with G key/value heads (G divides H; G = H is the above): qkv (B,T,C+2*G*64) = [q (H heads) |
 * k (G heads) | v (G heads)], query head h reads KV head h / (H/G); dqkv has that layout too, its k and v
 * parts summed over the heads of each group (in registers: deterministic). */
ab_status ab_cuda_flash_forward_gqa(ab_backend *be, const void *qkv, void *o, void *o2, float *lse, int B, int T,
                                    int H, int G, int window);
ab_status ab_cuda_flash_backward_gqa(ab_backend *be, const void *qkv, const void *o, const float *lse, const void *dout,
                                     void *dqkv, float *dq_accum, float *delta, int B, int T, int H, int G, int window);

#ifdef __cplusplus
}
#endif

#endif
