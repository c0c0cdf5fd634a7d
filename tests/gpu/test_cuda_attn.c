/*
 * test_cuda_attn.c — the CUDA attention variants (baseline, sdpa, flash) against the CPU baseline
 * (fp32, src/attn/baseline.c) with the same bf16-rounded weights and inputs, through the layer checks of
 * test_cuda_attn_util.h: forward y, backward dx, dW, db (accumulated onto non-zero start values) and the
 * deterministic backward, causality (changing tokens after t0 leaves rows <= t0 bit-identical), prefill + decode of
 * every later position, and decode from an empty cache, == forward at each position; and the flash core's band
 * mask against the CPU sliding_window variant.
 *
 * Tolerance: relative L2 error <= 2e-2 per tensor (bf16 Q/K/V/P operands carry 2^-8 relative rounding
 * each, through a softmax and two products), plus an element-wise bound of 5% of the tensor's largest
 * magnitude so a localised error (one wrong tile) cannot hide in the norm (ATTN_REL_TOL, ATTN_ELEM_FRAC).
 */
#include <math.h>

#include "backend/cuda/cuda_attn.h"
#include "test_cuda_attn_util.h"

static ab_backend cpu, cuda;

static const char *checked; /* the CUDA variant test_variant checks against the CPU baseline, for the case names */

static void case_name(char *out, size_t size, const att_case *c, const char *what) {
    snprintf(out, size, "attn[%s,cuda,B=%d,T=%d,H=%d].%s", checked, c->B, c->T, c->cfg.H, what);
}

/* baseline, sdpa and flash compute the same function: each against the CPU baseline */
static void test_variant(const char *vname, const ab_attn_ops *ops, int B, int T, int H) {
    att_case c;
    tc_att_setup(&c, &cpu, VARIANT_BASELINE, B, T, H, (ab_attn_hparams){0}, T + 3, 1000 + T);
    checked = vname;
    check_layer(&c, ops, case_name);
    att_free(&c);
}

/* The flash core with a band mask (what sliding_window runs) against the CPU sliding_window. */
static void test_flash_band(int B, int T, int H, int W) {
    char name[160];
    att_case c;
    tc_att_setup(&c, &cpu, VARIANT_SLIDING_WINDOW, B, T, H, (ab_attn_hparams){.window = W}, T, 5000 + W);
    att_forward_backward(&c);
    const int C = c.cfg.C;
    const size_t n = att_n(&c);
    float *zero_x = calloc(n, 4), *zero_w = calloc((size_t)C * 3 * C, 4), *zero_b = calloc((size_t)3 * C, 4);
    float *const zero_dw[AB_ATTN_MAX_TENSORS] = {zero_w, zero_b};
    dev_layer d;
    dev_layer_new(&d, &c, NULL, zero_x, zero_dw);
    gbuf qkv = g_new(n * 3, 2), o = g_new(n, 2), lse = g_new((size_t)B * H * T, 4), dqkv = g_new(n * 3, 2);
    gbuf acc = g_new((size_t)B * H * T * 64, 4), delta = g_new((size_t)B * H * T, 4);
    tc_check_status(cuda.ops->matmul_forward(&cuda, qkv.ptr, d.x.ptr, d.w[0].ptr, d.w[1].ptr, B * T, C, 3 * C), "qkv");
    tc_check_status(ab_cuda_flash_forward(&cuda, qkv.ptr, o.ptr, d.y.ptr, lse.ptr, B, T, H, W), "flash band forward");
    snprintf(name, sizeof name, "attn[flash_band,cuda,B=%d,T=%d,H=%d,W=%d].forward.y", B, T, H, W);
    tc_check_tensor(name, &d.y, c.y, ATTN_REL_TOL, ATTN_ELEM_FRAC, C, T);
    tc_check_status(ab_cuda_flash_backward(&cuda, qkv.ptr, o.ptr, lse.ptr, d.dy.ptr, dqkv.ptr, acc.ptr, delta.ptr, B, T, H, W),
                    "flash band backward");
    tc_check_status(cuda.ops->matmul_backward(&cuda, d.dx.ptr, d.dw[0].ptr, d.dw[1].ptr, dqkv.ptr, d.x.ptr, d.w[0].ptr, B * T,
                                              C, 3 * C),
                    "qkv backward");
    snprintf(name, sizeof name, "attn[flash_band,cuda,B=%d,T=%d,H=%d,W=%d].backward.dx", B, T, H, W);
    tc_check_tensor(name, &d.dx, c.dx, ATTN_REL_TOL, ATTN_ELEM_FRAC, C, T);
    snprintf(name, sizeof name, "attn[flash_band,cuda,B=%d,T=%d,H=%d,W=%d].backward.dW", B, T, H, W);
    tc_check_tensor(name, &d.dw[0], c.dw.t[0], ATTN_REL_TOL, ATTN_ELEM_FRAC, c.tens[0].cols, 0);
    g_free(&qkv); g_free(&o); g_free(&lse); g_free(&dqkv); g_free(&acc); g_free(&delta);
    dev_layer_free(&d);
    free(zero_x); free(zero_w); free(zero_b);
    att_free(&c);
}

int main(void) {
    if (!tc_open(&cpu, &cuda)) return TEST_SUMMARY();
    static const struct {
        const char *name;
        const ab_attn_ops *ops;
    } variants[] = {{"baseline", &ab_cuda_attn_baseline}, {"sdpa", &ab_cuda_attn_sdpa}, {"flash", &ab_cuda_attn_flash}};
    static const int shapes[][3] = {{2, 100, 2}, {1, 128, 3}, {3, 64, 1}, {2, 257, 2}, {1, 9, 2}, {1, 300, 12}};
    const char *only = getenv("AB_TEST_VARIANT"); /* e.g. under compute-sanitizer racecheck: one variant */
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0] && (!only || strcmp(only, variants[v].name) == 0); s++)
            test_variant(variants[v].name, variants[v].ops, shapes[s][0], shapes[s][1], shapes[s][2]);
    test_flash_band(2, 200, 2, 37);
    test_flash_band(1, 130, 1, 64);
    test_flash_band(1, 100, 2, 100);
    ab_backend_close(&cuda);
    ab_backend_close(&cpu);
    return TEST_SUMMARY();
}
