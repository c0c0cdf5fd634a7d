/*
 * test_cuda_attn_gqa_window.c — the CUDA gqa and sliding_window variants (src/backend/cuda/attn_gqa_window.cu),
 * taken from the variant table, against their CPU references (src/attn/gqa.c, sliding_window.c) with the same
 * bf16-rounded weights, inputs and output gradients:
 *  - forward y; backward dx, dW, db accumulated onto non-zero start values (the ops accumulate);
 *  - causality: new tokens after t0 leave rows <= t0 bit-identical and change the rows after t0;
 *  - prefill of the first T/2 tokens then decode of every later position one token at a time, and decode of
 *    every position from an empty cache, against the forward rows (the window's rolling cache wraps several
 *    times); the cache starts filled with NaN, so reading a slot that was never written fails the case;
 *  - the equalities of VARIANTS.md: gqa with G = H and sliding_window with W >= T against the CUDA flash
 *    variant (y bit-identical: the same kernel runs; gradients within the order noise of flash's fp32 dQ
 *    atomics) and against the CPU baseline;
 *  - dK, dV of a group summed deterministically (two backward runs give bit-identical k, v gradients);
 *  - cache sizes (gqa 2*G*D per token; the window min(W, max_T) slots: at most 2*H*D*W per sequence), head
 *    sizes other than 64 refused with AB_ERR_UNSUPPORTED by every op;
 * The O(T*W) cost of the band (tiles outside it skipped) is a benchmark, not a test:
 * `attnbench bench --attn-only --device cuda --variants flash,sliding_window` (docs/PERF.md).
 * Shapes cover T not a multiple of the 64-tile, B > 1 (B = 5: decode past the small-M products, whose epilogue
 * appends k | v to the cache, on cuBLASLt and the separate append), G in {1, 2, H/3 (H = 12 -> 4), H}, W in {1, 37, 64,
 * 100, 128, 200, T, > T}, caches of T + 3, 1024 and 2048 positions (decode of positions 0..299). A failing case
 * names the variant, shape, tensor and worst element.
 *
 * Tolerance against the fp32 CPU reference: relative L2 error <= 2e-2 per tensor and every element within 5%
 * of the tensor's largest magnitude, because Q, K, V, P and dS enter the tensor-core products as bf16 (2^-8
 * relative rounding each, through a softmax and two products) and the outputs are stored in bf16. NaN or inf
 * anywhere fails.
 */
#include <math.h>

#include "backend/cuda/cuda_attn.h"
#include "test_cuda_attn_util.h"

static ab_backend cpu, cuda;

static void case_name(char *out, size_t size, const att_case *c, const char *what) {
    if (c->v->id == VARIANT_GQA)
        snprintf(out, size, "attn[gqa,cuda,B=%d,T=%d,H=%d,G=%d].%s", c->B, c->T, c->cfg.H, c->cfg.hp.gqa_kv_heads, what);
    else
        snprintf(out, size, "attn[sliding_window,cuda,B=%d,T=%d,H=%d,W=%d].%s", c->B, c->T, c->cfg.H, c->cfg.hp.window,
                 what);
}

/* The variant against its CPU reference: forward, backward, causality, prefill + decode; a cache of max_T positions
 * (0: T + 3). */
static void test_case(ab_variant_id id, int B, int T, int H, int G, int W, int max_T) {
    char name[200];
    ab_attn_hparams hp = {.gqa_kv_heads = G, .window = W};
    att_case c;
    tc_att_setup(&c, &cpu, id, B, T, H, hp, max_T ? max_T : T + 3, 3000 + 7 * T + H + G + W);
    case_name(name, sizeof name, &c, "ops");
    const ab_attn_ops *ops = tc_cuda_variant_ops(id, name);
    if (!ops) {
        att_free(&c);
        return;
    }
    check_layer(&c, ops, case_name);
    att_free(&c);
}

/* gqa with G = H, sliding_window with W >= T: the CUDA flash variant (y bit-identical, gradients within dQ's
 * atomic-order noise) and the CPU baseline (the usual tolerance), same weights. */
static void test_equal_flash(ab_variant_id id, int B, int T, int H, int W) {
    char name[200];
    ab_attn_hparams hp = {.gqa_kv_heads = H, .window = W};
    att_case c, base;
    tc_att_setup(&c, &cpu, id, B, T, H, hp, T, 8000 + T + W);
    tc_att_setup(&base, &cpu, VARIANT_BASELINE, B, T, H, (ab_attn_hparams){0}, T, 1);
    att_copy_weights(&base, &c);
    att_forward_backward(&base);
    case_name(name, sizeof name, &c, "ops");
    const ab_attn_ops *ops = tc_cuda_variant_ops(id, name);
    const ab_attn_ops *flash = tc_cuda_variant_ops(VARIANT_FLASH, "attn[flash,cuda].ops");
    if (!ops || !flash) {
        att_free(&c);
        att_free(&base);
        return;
    }
    const int C = c.cfg.C;
    const size_t n = att_n(&c), nw = att_tn(&c.tens[0]), nb = att_tn(&c.tens[1]);
    float *zx = calloc(n, 4), *zw = calloc(nw, 4), *zb = calloc(nb, 4);
    dev_layer d, f;
    float *const zeros[AB_ATTN_MAX_TENSORS] = {zw, zb};
    dev_layer_new(&d, &c, ops, zx, zeros);
    dev_layer_new(&f, &c, flash, zx, zeros);
    case_name(name, sizeof name, &c, "equal_flash.run");
    tc_check_status(ops->forward(&d.ctx, &d.wt, d.saved.ptr, d.y.ptr, d.x.ptr, B, T), name);
    tc_check_status(ops->backward(&d.ctx, &d.wt, &d.dwt, d.saved.ptr, d.dx.ptr, d.dy.ptr, d.x.ptr, B, T), name);
    tc_check_status(flash->forward(&f.ctx, &f.wt, f.saved.ptr, f.y.ptr, f.x.ptr, B, T), name);
    tc_check_status(flash->backward(&f.ctx, &f.wt, &f.dwt, f.saved.ptr, f.dx.ptr, f.dy.ptr, f.x.ptr, B, T), name);
    float *yf = g_get(&f.y, NULL), *dxf = g_get(&f.dx, NULL), *dwf = g_get(&f.dw[0], NULL), *dbf = g_get(&f.dw[1], NULL);
    case_name(name, sizeof name, &c, "equal_flash.y(bit-identical)");
    tc_check_tensor(name, &d.y, yf, 0.0, 0.0, C, T);
    case_name(name, sizeof name, &c, "equal_flash.dx");
    tc_check_tensor(name, &d.dx, dxf, 2e-3, 0.01, C, T);
    case_name(name, sizeof name, &c, "equal_flash.dW");
    tc_check_tensor(name, &d.dw[0], dwf, 2e-3, 0.01, c.tens[0].cols, 0);
    case_name(name, sizeof name, &c, "equal_flash.db");
    tc_check_tensor(name, &d.dw[1], dbf, 2e-3, 0.01, c.tens[1].cols, 0);
    case_name(name, sizeof name, &c, "equal_baseline_cpu.y");
    tc_check_tensor(name, &d.y, base.y, ATTN_REL_TOL, ATTN_ELEM_FRAC, C, T);
    case_name(name, sizeof name, &c, "equal_baseline_cpu.dx");
    tc_check_tensor(name, &d.dx, base.dx, ATTN_REL_TOL, ATTN_ELEM_FRAC, C, T);
    case_name(name, sizeof name, &c, "equal_baseline_cpu.dW");
    tc_check_tensor(name, &d.dw[0], base.dw.t[0], ATTN_REL_TOL, ATTN_ELEM_FRAC, c.tens[0].cols, 0);
    free(yf); free(dxf); free(dwf); free(dbf); free(zx); free(zw); free(zb);
    dev_layer_free(&d);
    dev_layer_free(&f);
    att_free(&c);
    att_free(&base);
}

/* The group sums of dK, dV happen in the backward kernel's registers: two runs give identical k, v gradients
 * (dQ goes through fp32 atomics and is not compared). */
static void test_dkdv_deterministic(int B, int T, int H, int G) {
    char name[200];
    const int C = H * 64, ld = C + 2 * G * 64;
    const size_t rows = (size_t)B * T;
    ab_rng r;
    ab_rng_seed(&r, 4242);
    float *hq = tc_randn(&r, rows * ld, 1.0, 0.0), *hdo = tc_randn(&r, rows * C, 1.0, 0.0);
    gbuf qkv = g_new(rows * ld, 2), o = g_new(rows * C, 2), dout = g_new(rows * C, 2), lse = g_new((size_t)B * H * T, 4);
    gbuf dqkv = g_new(rows * ld, 2), acc = g_new((size_t)B * H * T * 64, 4), delta = g_new((size_t)B * H * T, 4);
    g_set(&qkv, hq);
    g_set(&dout, hdo);
    snprintf(name, sizeof name, "flash_gqa[B=%d,T=%d,H=%d,G=%d].dkdv_deterministic", B, T, H, G);
    tc_check_status(ab_cuda_flash_forward_gqa(&cuda, qkv.ptr, o.ptr, NULL, lse.ptr, B, T, H, G, 0), name);
    tc_check_status(ab_cuda_flash_backward_gqa(&cuda, qkv.ptr, o.ptr, lse.ptr, dout.ptr, dqkv.ptr, acc.ptr, delta.ptr,
                                               B, T, H, G, 0), name);
    float *g1 = g_get(&dqkv, NULL);
    tc_check_status(ab_cuda_flash_backward_gqa(&cuda, qkv.ptr, o.ptr, lse.ptr, dout.ptr, dqkv.ptr, acc.ptr, delta.ptr,
                                               B, T, H, G, 0), name);
    float *g2 = g_get(&dqkv, NULL);
    size_t bad = 0, first_bad = 0, nonzero = 0;
    for (size_t row = 0; row < rows; row++)
        for (int k = C; k < ld; k++) {
            size_t i = row * ld + k;
            if (g1[i] != 0.0f) nonzero++;
            if (memcmp(&g1[i], &g2[i], sizeof(float)) != 0 && bad++ == 0) first_bad = i;
        }
    TEST_TRUE(name, bad == 0 && nonzero > 0, "%zu k/v gradient elements differ between two runs (first: row %zu col %zu), "
              "%zu nonzero", bad, first_bad / ld, first_bad % ld, nonzero);
    free(hq); free(hdo); free(g1); free(g2);
    g_free(&qkv); g_free(&o); g_free(&dout); g_free(&lse); g_free(&dqkv); g_free(&acc); g_free(&delta);
}

static void test_cache_sizes(void) {
    ab_attn_config cfg = {.C = 768, .H = 12, .D = 64, .max_T = 1024, .train_T = 1024,
                          .hp = {.gqa_kv_heads = 4, .window = 128}};
    ab_attn_resolve_hparams(&cfg);
    const ab_attn_ops *gqa = tc_cuda_variant_ops(VARIANT_GQA, "attn[gqa,cuda].cache_bytes");
    const ab_attn_ops *win = tc_cuda_variant_ops(VARIANT_SLIDING_WINDOW, "attn[sliding_window,cuda].cache_bytes");
    if (!gqa || !win) return;
    const int B = 3;
    size_t g = gqa->cache_bytes(&cfg, B, cfg.max_T), want_g = (size_t)B * 1024 * 2 * 4 * 64 * 2;
    TEST_TRUE("attn[gqa,cuda,H=12,G=4,max_T=1024].cache_bytes", g == want_g,
              "%zu bytes, want %zu (2*G*D = 512 bf16 per token and sequence)", g, want_g);
    size_t w = win->cache_bytes(&cfg, B, cfg.max_T), want_w = (size_t)B * 128 * 2 * 768 * 2;
    TEST_TRUE("attn[sliding_window,cuda,H=12,W=128,max_T=1024].cache_bytes", w == want_w && w / B / 2 <= 2 * 768 * 128,
              "%zu bytes, want %zu (W slots of 2*H*D bf16 per sequence)", w, want_w);
    cfg.hp.window = 5000;
    w = win->cache_bytes(&cfg, B, cfg.max_T);
    want_w = (size_t)B * 1024 * 2 * 768 * 2;
    TEST_TRUE("attn[sliding_window,cuda,H=12,W=5000,max_T=1024].cache_bytes", w == want_w,
              "%zu bytes, want %zu (min(W, max_T) slots)", w, want_w);
}

/* Every op of both variants refuses head size 32 before touching any buffer. */
static void test_head_size_refused(void) {
    const ab_variant_id ids[2] = {VARIANT_GQA, VARIANT_SLIDING_WINDOW};
    for (int v = 0; v < 2; v++) {
        char name[160];
        snprintf(name, sizeof name, "attn[%s,cuda,D=32].unsupported", ab_variants[ids[v]]->name);
        const ab_attn_ops *ops = tc_cuda_variant_ops(ids[v], name);
        if (ops) check_head_size_refused(name, ops);
    }
}

/* AB_TEST_VARIANT=gqa|sliding_window runs that variant's cases only. */
static int wanted(ab_variant_id id) {
    const char *only = getenv("AB_TEST_VARIANT");
    return !only || strcmp(only, ab_variants[id]->name) == 0;
}

int main(void) {
    if (!tc_open(&cpu, &cuda)) return TEST_SUMMARY();
    test_cache_sizes();
    test_head_size_refused();
    /* max_T 1024 or 2048 (0: T + 3): the decode splits a head's keys over blocks sized for the whole cache, so
     * positions 0..299 of a 1024-slot cache use a few of them, of a 2048-slot one on a 132-SM card 16 blocks a head
     * at batch 1 (a cluster of 16 merged in its first block), 11 at batch 2 (G = H: the layout baseline, sdpa and
     * flash decode with) */
    static const int gqa_cases[][5] = {/* B, T, H, G, max_T */
                                       {2, 100, 2, 1, 0}, {1, 128, 4, 2, 0}, {2, 257, 12, 4, 0}, {3, 64, 6, 2, 0},
                                       {1, 9, 2, 1, 0},   {2, 130, 12, 1, 0}, {1, 70, 3, 3, 0},  {1, 300, 12, 12, 1024},
                                       {2, 300, 12, 4, 1024}, {1, 300, 12, 4, 2048}, {2, 300, 12, 12, 2048},
                                       {5, 40, 4, 2, 0}}; /* B = 5: past the small-M append */
    for (size_t i = 0; i < tc_case_count(sizeof gqa_cases / sizeof gqa_cases[0]) && wanted(VARIANT_GQA); i++)
        test_case(VARIANT_GQA, gqa_cases[i][0], gqa_cases[i][1], gqa_cases[i][2], gqa_cases[i][3], 0, gqa_cases[i][4]);
    static const int window_cases[][5] = {/* B, T, H, W, max_T */
                                          {2, 200, 2, 1, 0},    {2, 200, 2, 64, 0}, {1, 257, 3, 100, 0},
                                          {2, 130, 2, 37, 0},   {1, 300, 12, 128, 0}, {3, 64, 1, 64, 0},
                                          {1, 100, 2, 100, 0},  {1, 100, 2, 300, 0}, {2, 9, 2, 4, 0},
                                          {1, 300, 4, 200, 1024}, {5, 70, 2, 16, 0}};
    for (size_t i = 0; i < tc_case_count(sizeof window_cases / sizeof window_cases[0]) && wanted(VARIANT_SLIDING_WINDOW);
         i++)
        test_case(VARIANT_SLIDING_WINDOW, window_cases[i][0], window_cases[i][1], window_cases[i][2], 0,
                  window_cases[i][3], window_cases[i][4]);
    if (wanted(VARIANT_GQA)) {
        test_equal_flash(VARIANT_GQA, 2, 100, 2, 0);
        test_equal_flash(VARIANT_GQA, 1, 257, 12, 0);
        test_dkdv_deterministic(2, 200, 12, 4);
        test_dkdv_deterministic(1, 130, 4, 1);
    }
    if (wanted(VARIANT_SLIDING_WINDOW)) {
        test_equal_flash(VARIANT_SLIDING_WINDOW, 2, 100, 2, 100);
        test_equal_flash(VARIANT_SLIDING_WINDOW, 1, 257, 3, 1000);
        test_equal_flash(VARIANT_SLIDING_WINDOW, 3, 64, 1, 64);
    }
    ab_backend_close(&cuda);
    ab_backend_close(&cpu);
    return TEST_SUMMARY();
}
