/*
 * gqa.c — grouped-query attention (VARIANTS.md 3), CPU reference.
 *
 * H query heads, G key/value heads (G divides H); query head h reads kv head g = h / (H/G) (contiguous
 * groups). c_attn is (C, C + 2*G*D): [q (H heads) | k (G heads) | v (G heads)], so G = H is exactly the
 * baseline layout. Runs on the tiled core (attn_mha_core_*), which gives one thread per (batch, kv head)
 * in backward so that dK_g, dV_g sum over the heads of group g without races. Cache: 2*G*D per token.
 */
#include <stdio.h>
#include <string.h>

#include "attn/attn_variants.h"

static attn_mha_shape gqa_shape(const ab_attn_config *cfg) {
    return attn_shape(cfg, cfg->hp.gqa_kv_heads, ATTN_CAUSAL);
}

static size_t gqa_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    attn_mha_shape s = gqa_shape(cfg);
    return attn_mha_tiled_saved_bytes(&s, B, T);
}

static size_t gqa_workspace_bytes(const ab_attn_config *cfg, int B, int T) {
    attn_mha_shape s = gqa_shape(cfg);
    const size_t train = attn_mha_tiled_workspace_bytes(&s, B, T);
    const size_t decode = attn_kv_decode_workspace_bytes(&s, B, cfg->max_T);
    return train > decode ? train : decode;
}

static ab_status gqa_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y,
                             const void *x, int B, int T) {
    attn_mha_shape s = gqa_shape(ctx->cfg);
    return attn_mha_tiled_forward(ctx, &s, w, saved, y, x, B, T);
}

static ab_status gqa_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                              const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    attn_mha_shape s = gqa_shape(ctx->cfg);
    return attn_mha_tiled_backward(ctx, &s, w, dw, saved, dx, dy, x, B, T);
}

static size_t gqa_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    attn_mha_shape s = gqa_shape(cfg);
    return attn_kv_cache_bytes(&s, B, max_T);
}

static ab_status gqa_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                             const void *x, int B, int T) {
    attn_mha_shape s = gqa_shape(ctx->cfg);
    return attn_kv_prefill(ctx, &s, gqa_forward, gqa_saved_bytes(ctx->cfg, B, T), w, cache, y, x, B, T);
}

static ab_status gqa_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y,
                             const void *x, int B, int pos) {
    attn_mha_shape s = gqa_shape(ctx->cfg);
    return attn_kv_decode(ctx, &s, w, cache, y, x, B, pos);
}

const ab_attn_ops ab_cpu_attn_gqa = {
    .saved_bytes = gqa_saved_bytes,
    .workspace_bytes = gqa_workspace_bytes,
    .forward = gqa_forward,
    .backward = gqa_backward,
    .cache_bytes = gqa_cache_bytes,
    .prefill = gqa_prefill,
    .decode = gqa_decode,
};

/* ---------------------------------------------------------------- definition */

ab_status ab_attn_gqa_validate(const ab_attn_config *cfg, int T) {
    AB_TRY(attn_validate_common(cfg, T));
    const int H = cfg->H, G = cfg->hp.gqa_kv_heads;
    if (G < 1 || G > H || H % G != 0) {
        char valid[256] = "";
        for (int g = 1; g <= H && strlen(valid) < sizeof valid - 16; g++)
            if (H % g == 0) snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%d", valid[0] ? ", " : "", g);
        return ab_fail(AB_ERR_USAGE, "--gqa-kv-heads %d must divide n_head %d: valid values are %s", G, H, valid);
    }
    return AB_OK;
}

int ab_attn_gqa_tensors(const ab_attn_config *cfg, ab_attn_tensor out[AB_ATTN_MAX_TENSORS]) {
    return attn_tensors_c_attn(cfg, cfg->C + 2 * cfg->hp.gqa_kv_heads * cfg->D, out);
}

void ab_attn_gqa_flops(const ab_attn_config *cfg, int B, int T, ab_attn_flops *f) {
    const double cols = cfg->C + 2.0 * cfg->hp.gqa_kv_heads * cfg->D;
    attn_flops_tiled(f, B, T, cfg->H, cfg->D, ATTN_CAUSAL, cfg->C * cols);
}

double ab_attn_gqa_cache_elems(const ab_attn_config *cfg, int T) { return 2.0 * cfg->hp.gqa_kv_heads * cfg->D; }
