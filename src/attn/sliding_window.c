/*
 * sliding_window.c — causal sliding-window attention (VARIANTS.md 5), CPU reference.
 *
 * Keys max(0, i - W + 1) <= j <= i: W keys including the current token (Hugging Face convention). Runs
 * on the tiled core with a band mask: key tiles entirely before the band are skipped, so the cost is
 * O(T*W) (T * (W + ATTN_TILE) at most) instead of O(T^2). Decode keeps a rolling buffer of the last
 * min(W, max_T) keys and values (slot pos % W): 2*H*D*W per layer at most, whatever the length.
 */
#include "attn/attn_variants.h"

static attn_mha_shape sliding_window_shape(const ab_attn_config *cfg) {
    return attn_shape(cfg, cfg->H, cfg->hp.window);
}

static size_t sliding_window_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    attn_mha_shape s = sliding_window_shape(cfg);
    return attn_mha_tiled_saved_bytes(&s, B, T);
}

static size_t sliding_window_workspace_bytes(const ab_attn_config *cfg, int B, int T) {
    attn_mha_shape s = sliding_window_shape(cfg);
    const size_t train = attn_mha_tiled_workspace_bytes(&s, B, T);
    const size_t decode = attn_kv_decode_workspace_bytes(&s, B, cfg->max_T);
    return train > decode ? train : decode;
}

static ab_status sliding_window_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y,
                                        const void *x, int B, int T) {
    attn_mha_shape s = sliding_window_shape(ctx->cfg);
    return attn_mha_tiled_forward(ctx, &s, w, saved, y, x, B, T);
}

static ab_status sliding_window_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                                         const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    attn_mha_shape s = sliding_window_shape(ctx->cfg);
    return attn_mha_tiled_backward(ctx, &s, w, dw, saved, dx, dy, x, B, T);
}

static size_t sliding_window_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    attn_mha_shape s = sliding_window_shape(cfg);
    return attn_kv_cache_bytes(&s, B, max_T);
}

static ab_status sliding_window_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                                        const void *x, int B, int T) {
    attn_mha_shape s = sliding_window_shape(ctx->cfg);
    return attn_kv_prefill(ctx, &s, sliding_window_forward, sliding_window_saved_bytes(ctx->cfg, B, T), w, cache, y, x, B, T);
}

static ab_status sliding_window_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                                        const void *x, int B, int pos) {
    attn_mha_shape s = sliding_window_shape(ctx->cfg);
    return attn_kv_decode(ctx, &s, w, cache, y, x, B, pos);
}

const ab_attn_ops ab_cpu_attn_sliding_window = {
    .saved_bytes = sliding_window_saved_bytes,
    .workspace_bytes = sliding_window_workspace_bytes,
    .forward = sliding_window_forward,
    .backward = sliding_window_backward,
    .cache_bytes = sliding_window_cache_bytes,
    .prefill = sliding_window_prefill,
    .decode = sliding_window_decode,
};

/* ---------------------------------------------------------------- definition */

ab_status ab_attn_sliding_window_validate(const ab_attn_config *cfg, int T) {
    AB_TRY(attn_validate_common(cfg, T));
    if (cfg->hp.window < 1)
        return ab_fail(AB_ERR_USAGE, "--window %d: the window counts keys including the current token, so it must "
                       "be >= 1 (1 = each token sees only itself; >= %d = full causal attention)", cfg->hp.window, T);
    return AB_OK;
}

int ab_attn_sliding_window_tensors(const ab_attn_config *cfg, ab_attn_tensor out[AB_ATTN_MAX_TENSORS]) {
    return attn_tensors_c_attn(cfg, 3 * cfg->C, out);
}

void ab_attn_sliding_window_flops(const ab_attn_config *cfg, int B, int T, ab_attn_flops *f) {
    attn_flops_tiled(f, B, T, cfg->H, cfg->D, cfg->hp.window, 3.0 * cfg->C * cfg->C);
}

double ab_attn_sliding_window_cache_elems(const ab_attn_config *cfg, int T) {
    const int kept = cfg->hp.window < T ? cfg->hp.window : T;
    return 2.0 * cfg->C * kept / T;
}
