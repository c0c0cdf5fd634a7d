/*
 * flash.c — FlashAttention-2 (VARIANTS.md 7), CPU reference.
 *
 * Same math as baseline, on the tiled core of attn_cpu_common.c: per (batch, head) and query block of
 * ATTN_TILE rows, key blocks up to the diagonal with the online-softmax update (running max m, sum l,
 * output accumulator of ATTN_TILE x D), normalised once; only O and L = m + log l are saved, never a
 * T x T tensor (O(T) memory). Backward recomputes P tile by tile from L: Di = rowsum(dO * O), then dV, dP,
 * dS = P (dP - Di), dQ, dK. Blocks above the diagonal are skipped, only diagonal blocks are masked.
 */
#include "attn/attn_variants.h"

static attn_mha_shape flash_shape(const ab_attn_config *cfg) { return attn_shape(cfg, cfg->H, ATTN_CAUSAL); }

static size_t flash_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    attn_mha_shape s = flash_shape(cfg);
    return attn_mha_tiled_saved_bytes(&s, B, T);
}

static size_t flash_workspace_bytes(const ab_attn_config *cfg, int B, int T) {
    attn_mha_shape s = flash_shape(cfg);
    const size_t train = attn_mha_tiled_workspace_bytes(&s, B, T);
    const size_t decode = attn_kv_decode_workspace_bytes(&s, B, cfg->max_T);
    return train > decode ? train : decode;
}

static ab_status flash_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y,
                               const void *x, int B, int T) {
    attn_mha_shape s = flash_shape(ctx->cfg);
    return attn_mha_tiled_forward(ctx, &s, w, saved, y, x, B, T);
}

static ab_status flash_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                                const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    attn_mha_shape s = flash_shape(ctx->cfg);
    return attn_mha_tiled_backward(ctx, &s, w, dw, saved, dx, dy, x, B, T);
}

static size_t flash_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    attn_mha_shape s = flash_shape(cfg);
    return attn_kv_cache_bytes(&s, B, max_T);
}

static ab_status flash_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                               const void *x, int B, int T) {
    attn_mha_shape s = flash_shape(ctx->cfg);
    return attn_kv_prefill(ctx, &s, flash_forward, flash_saved_bytes(ctx->cfg, B, T), w, cache, y, x, B, T);
}

static ab_status flash_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                               const void *x, int B, int pos) {
    attn_mha_shape s = flash_shape(ctx->cfg);
    return attn_kv_decode(ctx, &s, w, cache, y, x, B, pos);
}

const ab_attn_ops ab_cpu_attn_flash = {
    .saved_bytes = flash_saved_bytes,
    .workspace_bytes = flash_workspace_bytes,
    .forward = flash_forward,
    .backward = flash_backward,
    .cache_bytes = flash_cache_bytes,
    .prefill = flash_prefill,
    .decode = flash_decode,
};

/* ---------------------------------------------------------------- definition */

ab_status ab_attn_flash_validate(const ab_attn_config *cfg, int T) { return attn_validate_common(cfg, T); }

int ab_attn_flash_tensors(const ab_attn_config *cfg, ab_attn_tensor out[AB_ATTN_MAX_TENSORS]) {
    return attn_tensors_c_attn(cfg, 3 * cfg->C, out);
}

void ab_attn_flash_flops(const ab_attn_config *cfg, int B, int T, ab_attn_flops *f) {
    attn_flops_tiled(f, B, T, cfg->H, cfg->D, ATTN_CAUSAL, 3.0 * cfg->C * cfg->C);
}

double ab_attn_flash_cache_elems(const ab_attn_config *cfg, int T) { return 2.0 * cfg->C; }
