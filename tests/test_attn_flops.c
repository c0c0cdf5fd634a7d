/*
 * test_attn_flops.c — the analytical FLOPs of every variant against what runs and what the math needs.
 *
 *  - hardware: every per-head product of the CPU code goes through attn_gemm, which counts the
 *    multiply-adds it executes; input projections go through the backend (2 * N * in * out each, the
 *    backward twice that). hw_fwd and hw_bwd must equal 2 x the counted multiply-adds plus the
 *    projections, exactly, on tiny shapes (T = 1, T not a multiple of the tile or chunk, T > a tile).
 *  - model: an independent enumeration of the (query, key) pairs the mask keeps (causal, band, lsh's
 *    W_l bound), or for linear of the chunk products' lower triangles and state products, must equal
 *    model_fwd - proj_fwd; model_bwd = 2 x model_fwd (lsh: hashing has no backward); proj_fwd from the
 *    tensor list. Plus sanity: hardware >= model for the attention core, full T x T >= model.
 */
#include "attn/attn_variants.h"
#include "test_attn_util.h"

static const ab_attn_hparams test_hp = {.gqa_kv_heads = 2, .window = 5, .lsh_hashes = 2, .lsh_chunk = 4,
                                        .lsh_buckets = 4, .linear_chunk = 16, .mla_kv_rank = 12};

/* sum_i #{j : max(0, i - W + 1) <= j <= i} by enumeration */
static double enum_band_pairs(int T, int W) {
    double n = 0;
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) n += (i - j < W);
    return n;
}

/* multiply-adds the math of the attention core needs, per (batch, head), forward */
static double enum_model_core(const ab_attn_config *cfg, ab_variant_id id, int T) {
    const double D = cfg->D;
    switch (id) {
    case VARIANT_SLIDING_WINDOW: return enum_band_pairs(T, cfg->hp.window) * 2 * D;
    case VARIANT_LSH:
        return cfg->hp.lsh_hashes * (enum_band_pairs(T, 2 * cfg->hp.lsh_chunk) * 2 * D +
                                     (double)T * D * (cfg->hp.lsh_buckets / 2)); /* + hashing */
    case VARIANT_LINEAR: {
        double n = 0;
        const int Lc = cfg->hp.linear_chunk;
        for (int c0 = 0; c0 < T; c0 += Lc) {
            const int c1 = c0 + Lc < T ? c0 + Lc : T, L = c1 - c0;
            for (int i = c0; i < c1; i++)
                for (int j = c0; j <= i; j++) n += D + (D + 1); /* phi(q).phi(k), then times [v | 1] */
            if (c0 > 0) n += L * D * (D + 1);                 /* phi(Q_c) S' */
            if (c1 < T) n += L * D * (D + 1);                 /* S' += phi(K_c)^T V'_c */
        }
        return n;
    }
    default: return enum_band_pairs(T, T) * 2 * D;
    }
}

static void flops_case(ab_backend *be, ab_variant_id id, int B, int T, int H, int D) {
    att_case c;
    if (!att_setup(&c, be, id, B, T, H, D, test_hp, 0, 5)) return;
    ab_attn_flops f;
    c.v->flops(&c.cfg, B, T, &f);
    double proj_macs = 0; /* per token */
    for (int i = 0; i < c.n_t; i++)
        if (c.tens[i].weight_decay) proj_macs += (double)c.tens[i].rows * c.tens[i].cols;
    const double proj = 2.0 * B * T * proj_macs;

    attn_mac_count_reset();
    att_forward(&c, c.x, c.y);
    const double fwd_macs = (double)attn_mac_count();
    ab_attn_ctx ctx = att_ctx(&c);
    attn_mac_count_reset();
    c.ops->backward(&ctx, &c.w, &c.dw, c.saved.ptr, c.dx, c.dy, c.x, B, T);
    const double bwd_macs = (double)attn_mac_count();

    char name[256];
    snprintf(name, sizeof name, "flops[%s] proj_fwd == 2 N sum(in x out) = %.0f", c.name, proj);
    TEST_TRUE(name, f.proj_fwd == proj, "proj_fwd %.0f", f.proj_fwd);
    snprintf(name, sizeof name, "flops[%s] hw_fwd == counted %.0f MACs x 2 + proj", c.name, fwd_macs);
    TEST_TRUE(name, f.hw_fwd == 2 * fwd_macs + proj, "hw_fwd %.0f, counted %.0f", f.hw_fwd, 2 * fwd_macs + proj);
    snprintf(name, sizeof name, "flops[%s] hw_bwd == counted %.0f MACs x 2 + 2 proj", c.name, bwd_macs);
    TEST_TRUE(name, f.hw_bwd == 2 * bwd_macs + 2 * proj, "hw_bwd %.0f, counted %.0f", f.hw_bwd,
              2 * bwd_macs + 2 * proj);
    const double model_core = 2.0 * B * H * enum_model_core(&c.cfg, id, T);
    snprintf(name, sizeof name, "flops[%s] model_fwd == enumerated pairs %.0f + proj", c.name, model_core);
    TEST_TRUE(name, f.model_fwd == model_core + proj, "model_fwd %.0f", f.model_fwd);
    const double hash = id == VARIANT_LSH ? 2.0 * B * H * c.cfg.hp.lsh_hashes * T * D * (c.cfg.hp.lsh_buckets / 2) : 0;
    snprintf(name, sizeof name, "flops[%s] model_bwd == 2 x model_fwd (without hashing)", c.name);
    TEST_TRUE(name, f.model_bwd == 2 * (f.model_fwd - hash), "model_bwd %.0f", f.model_bwd);
    snprintf(name, sizeof name, "flops[%s] hw >= model, full T x T >= model core", c.name);
    TEST_TRUE(name, f.hw_fwd >= f.model_fwd && f.full_tt_fwd >= model_core - hash && f.other_ops_fwd > 0,
              "hw %.0f model %.0f full %.0f", f.hw_fwd, f.model_fwd, f.full_tt_fwd);
    att_free(&c);
}

int main(void) {
    ab_backend be;
    att_open_backend(&be);
    const struct { int B, T, H, D; } shapes[] = {{1, 1, 2, 8}, {2, 37, 4, 8}, {1, 70, 2, 8}, {1, 130, 2, 4}};
    for (int v = 0; v < VARIANT_COUNT; v++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            flops_case(&be, (ab_variant_id)v, shapes[s].B, shapes[s].T, shapes[s].H, shapes[s].D);
    /* GPT-2 small, T = 1024: the headline numbers people compare (baseline attention core, causal halving) */
    ab_attn_config g = {.C = 768, .H = 12, .D = 64, .max_T = 1024, .train_T = 1024};
    ab_attn_resolve_hparams(&g);
    ab_attn_flops f;
    ab_variants[VARIANT_BASELINE]->flops(&g, 1, 1024, &f);
    const double core_full = 4.0 * 12 * 1024.0 * 1024 * 64, core_causal = 4.0 * 12 * (1024.0 * 1025 / 2) * 64;
    TEST_TRUE("flops[baseline,GPT-2 small,T=1024] full T x T core 4 H T^2 D, model 4 H T(T+1)/2 D",
              f.full_tt_fwd == core_full && f.model_fwd - f.proj_fwd == core_causal, "full %.0f model core %.0f",
              f.full_tt_fwd, f.model_fwd - f.proj_fwd);
    ab_backend_close(&be);
    return TEST_SUMMARY();
}
