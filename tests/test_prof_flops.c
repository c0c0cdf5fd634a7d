/*
 * test_prof_flops.c — the whole-model FLOPs against brute-force operation counts on tiny shapes (the
 * non-attention part: c_proj, MLP, LM head, forward and backward), the assembly with a variant's
 * per-layer numbers (layers, grad_accum, attention share, full T x T), the peak table and MFU, and the
 * quantiles used for step-time statistics.
 */
#include <math.h>

#include "prof/flops.h"
#include "prof/timer.h"
#include "test_util.h"

/* Multiply-adds of out (N,OC) = inp (N,C) @ W (C,OC), counted by running the loop nest. */
static double count_matmul_fwd(int N, int C, int OC) {
    double macs = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++) macs += 1;
    return 2 * macs;
}

/* Backward of the same: dinp (N,C) += dout @ W^T and dW (C,OC) += inp^T @ dout, loop nests counted. */
static double count_matmul_bwd(int N, int C, int OC) {
    double macs = 0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int o = 0; o < OC; o++) macs += 1; /* dinp */
    for (int c = 0; c < C; c++)
        for (int o = 0; o < OC; o++)
            for (int n = 0; n < N; n++) macs += 1; /* dW */
    return 2 * macs;
}

/* The non-attention matrix products of GPT-2 for N tokens, layer by layer, as the model runs them. */
static void count_rest(int L, int C, int V, int N, double *fwd, double *bwd) {
    *fwd = *bwd = 0;
    for (int l = 0; l < L; l++) {
        *fwd += count_matmul_fwd(N, C, C) + count_matmul_fwd(N, C, 4 * C) + count_matmul_fwd(N, 4 * C, C);
        *bwd += count_matmul_bwd(N, C, C) + count_matmul_bwd(N, C, 4 * C) + count_matmul_bwd(N, 4 * C, C);
    }
    *fwd += count_matmul_fwd(N, C, V); /* tied LM head: x @ wte^T */
    *bwd += count_matmul_bwd(N, C, V);
}

/* A variant with known per-layer numbers. */
static void fake_flops(const ab_attn_config *cfg, int B, int T, ab_attn_flops *f) {
    f->model_fwd = 1000.0 * B * T;
    f->model_bwd = 2000.0 * B * T;
    f->hw_fwd = 1500.0 * B * T;
    f->hw_bwd = 3500.0 * B * T;
    f->proj_fwd = 400.0 * B * T;
    f->full_tt_fwd = 900.0 * B * T;
    f->other_ops_fwd = 10.0 * B * T;
}

static const ab_variant fake_variant = {.name = "fake", .title = "Fake", .flops = fake_flops};

static void test_rest_brute_force(void) {
    const int shapes[][4] = {{1, 8, 11, 3}, {2, 16, 37, 5}, {3, 12, 50, 7}}; /* L, C, V, N */
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int L = shapes[i][0], C = shapes[i][1], V = shapes[i][2], N = shapes[i][3];
        double fwd, bwd;
        count_rest(L, C, V, N, &fwd, &bwd);
        double got[2] = {ab_flops_rest_fwd(L, C, V, N), 0}, ref[2] = {fwd, bwd};
        ab_model_config m = {.n_layer = L, .n_head = 2, .n_embd = C, .vocab_size = V, .max_seq = 64};
        ab_attn_config acfg = {.C = C, .H = 2, .D = C / 2};
        ab_flops_step f;
        ab_flops_per_step(&m, &fake_variant, &acfg, 1, N, 1, &f);
        got[1] = f.rest_bwd;
        char name[64];
        snprintf(name, sizeof name, "rest_brute_force[L=%d,C=%d,V=%d,N=%d]", L, C, V, N);
        TEST_CLOSE_F64(name, got, ref, 2, 0, 0);
    }
}

static void test_assembly(void) {
    const int L = 3, C = 16, V = 29, B = 2, T = 5, K = 4;
    ab_model_config m = {.n_layer = L, .n_head = 2, .n_embd = C, .vocab_size = V, .max_seq = 64};
    ab_attn_config acfg = {.C = C, .H = 2, .D = 8, .max_T = 64, .train_T = T};
    ab_flops_step f;
    ab_status st = ab_flops_per_step(&m, &fake_variant, &acfg, B, T, K, &f);
    TEST_TRUE("assembly_ok", st == AB_OK, "%s", ab_error());
    double rest_fwd, rest_bwd;
    count_rest(L, C, V, B * T, &rest_fwd, &rest_bwd);
    rest_fwd *= K;
    rest_bwd *= K;
    const double bt = (double)B * T;
    double attn_f = L * 1000.0 * bt * K, attn_b = L * 2000.0 * bt * K;
    double got[] = {f.model_fwd, f.model_bwd, f.hw_fwd, f.hw_bwd, f.model_per_step, f.hardware_per_step, f.attention_share,
                    f.full_tt_per_step, f.attn_proj_fwd, f.tokens_per_step};
    double ref[] = {rest_fwd + attn_f,
                    rest_bwd + attn_b,
                    rest_fwd + L * 1500.0 * bt * K,
                    rest_bwd + L * 3500.0 * bt * K,
                    rest_fwd + rest_bwd + attn_f + attn_b,
                    rest_fwd + rest_bwd + L * 5000.0 * bt * K,
                    (attn_f + attn_b) / (rest_fwd + rest_bwd + attn_f + attn_b),
                    3.0 * (rest_fwd + L * (400.0 + 900.0) * bt * K),
                    L * 400.0 * bt * K,
                    bt * K};
    TEST_CLOSE_F64("assembly[L=3,B=2,T=5,accum=4]", got, ref, sizeof ref / sizeof ref[0], 0, 1e-15);
    TEST_TRUE("assembly_other_ops_positive", f.other_ops_fwd > L * 10.0 * bt * K, "other %g", f.other_ops_fwd);

    TEST_TRUE("reject_zero_batch", ab_flops_per_step(&m, &fake_variant, &acfg, 0, T, 1, &f) == AB_ERR_USAGE, "accepted B=0");
    ab_variant none = {.name = "none"};
    TEST_TRUE("reject_no_formula", ab_flops_per_step(&m, &none, &acfg, B, T, 1, &f) == AB_ERR_USAGE, "accepted no flops()");
}

/* GPT-2 124M at B16 T512 with an attention-free variant: the rest alone must match 6.07 TFLOP/step
 * (6 x 123.5M non-position parameters x 8192 tokens minus the embeddings' missing matmul). */
static void test_gpt2_scale(void) {
    double rest = ab_flops_rest_fwd(12, 768, 50257, 16.0 * 512) * 3;
    double ref = 6.0 * (12.0 * (768.0 * 768 + 8.0 * 768 * 768) + 768.0 * 50257) * 16 * 512;
    TEST_CLOSE_F64("gpt2_rest_per_step", &rest, &ref, 1, 0, 1e-12);
}

/* acfg == NULL derives the attention config from the model, as the explicit one. */
static void test_derived_config(void) {
    const ab_variant *v = ab_variant_by_name("gqa");
    ab_model_config m = {.n_layer = 2, .n_head = 6, .n_embd = 48, .vocab_size = 97, .max_seq = 64};
    ab_attn_config acfg;
    ab_model_attn_config(&m, 32, &acfg);
    ab_flops_step a, b;
    ab_status s1 = ab_flops_per_step(&m, v, &acfg, 2, 32, 1, &a), s2 = ab_flops_per_step(&m, v, NULL, 2, 32, 1, &b);
    TEST_TRUE("derived_attn_config", v && s1 == AB_OK && s2 == AB_OK && acfg.D == 8 && acfg.hp.gqa_kv_heads > 0 &&
                                         a.model_per_step == b.model_per_step && a.hardware_per_step == b.hardware_per_step,
              "v %p s %d %d D %d G %d", (const void *)v, s1, s2, acfg.D, acfg.hp.gqa_kv_heads);
}

static void test_peak_and_mfu(void) {
    ab_peak p;
    ab_peak_lookup("NVIDIA H100 80GB HBM3", &p);
    TEST_TRUE("peak_h100_sxm", p.available && p.tflops == 989.0, "%d %g", p.available, p.tflops);
    ab_peak_lookup("NVIDIA H100 PCIe", &p);
    TEST_TRUE("peak_h100_pcie", p.available && p.tflops == 756.0, "%g", p.tflops);
    ab_peak_lookup("NVIDIA H200", &p);
    TEST_TRUE("peak_h200", p.available && p.tflops == 989.0, "%g", p.tflops);
    ab_peak_lookup("NVIDIA A100-SXM4-80GB", &p);
    TEST_TRUE("peak_a100", p.available && p.tflops == 312.0, "%g", p.tflops);
    ab_peak_lookup("NVIDIA L40", &p);
    TEST_TRUE("peak_l40_not_l4", p.available && p.tflops == 181.0, "%g", p.tflops);
    ab_peak_lookup("Mystery GPU 9000", &p);
    TEST_TRUE("peak_unknown_null_reason", !p.available && isnan(p.tflops) && strstr(p.reason, "Mystery GPU 9000"), "'%s'", p.reason);
    ab_peak_lookup(NULL, &p);
    TEST_TRUE("peak_cpu_null_reason", !p.available && p.reason[0], "no reason");

    ab_flops_step f = {.model_per_step = 6.0e12};
    ab_peak_set(&p, 800.0, "measured");
    ab_mfu mfu;
    ab_mfu_of(&f, 0.015, &p, &mfu);
    double got[2] = {mfu.achieved_tflops, mfu.mfu}, ref[2] = {400.0, 0.5};
    TEST_CLOSE_F64("mfu_measured_peak", got, ref, 2, 0, 1e-12);
    ab_peak_lookup("Mystery", &p);
    ab_mfu_of(&f, 0.015, &p, &mfu);
    TEST_TRUE("mfu_unknown_peak_null", isnan(mfu.mfu) && fabs(mfu.achieved_tflops - 400) < 1e-9 && mfu.reason[0], "mfu %g", mfu.mfu);
    ab_mfu_of(&f, NAN, &p, &mfu);
    TEST_TRUE("mfu_no_step_time_null", isnan(mfu.achieved_tflops) && isnan(mfu.mfu), "achieved %g", mfu.achieved_tflops);
}

static void test_quantiles(void) {
    double x[] = {5, 1, 4, 2, 3};
    ab_latency_stats s;
    ab_latency_stats_of(x, 5, &s);
    double got[] = {s.median, s.p10, s.p90, s.mean, s.min, s.max, ab_quantile(x, 5, 0.25)};
    double ref[] = {3, 1.4, 4.6, 3, 1, 5, 2};
    TEST_CLOSE_F64("quantiles_linear", got, ref, 7, 0, 1e-12);
    ab_latency_stats_of(x, 0, &s);
    TEST_TRUE("quantiles_empty_nan", isnan(s.median) && isnan(ab_quantile(x, 0, 0.5)), "median %g", s.median);
}

int main(void) {
    test_rest_brute_force();
    test_assembly();
    test_gpt2_scale();
    test_derived_config();
    test_peak_and_mfu();
    test_quantiles();
    return TEST_SUMMARY();
}
