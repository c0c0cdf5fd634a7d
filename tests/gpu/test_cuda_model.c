/*
 * test_cuda_model.c — the whole tiny GPT-2 on CUDA against the CPU backend, per CUDA attention variant:
 * same bf16-rounded parameters and tokens; loss, every parameter gradient after one backward, and the
 * logits of prefill + one decoded token.
 *
 * Tolerances: the CUDA model keeps activations and gradients in bf16 (2^-8 relative per rounding) through
 * 2 layers, so the loss must agree within 5e-3 relative, each gradient tensor within 5e-2 relative L2
 * error (tensors whose reference norm is ~0 are compared in absolute terms), logits within 3e-2 relative L2.
 */
#include <math.h>

#include "model/gpt2.h"
#include "test_cuda_util.h"

static ab_backend cpu, cuda;

static double rel_l2(const float *got, const float *ref, size_t n, double *ref_norm) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        if (!isfinite(got[i])) return INFINITY;
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    if (ref_norm) *ref_norm = sqrt(den);
    return sqrt(num / (den > 0 ? den : 1e-30));
}

static void test_model(ab_variant_id vid, ab_attn_hparams hp) {
    const char *vn = ab_variants[vid]->name;
    char name[160];
    ab_model_config cfg = {.n_layer = 2, .n_head = 2, .n_embd = 128, .vocab_size = 515, .max_seq = 64, .attn = hp};
    const int B = 2, T = 50, n = B * T;
    ab_gpt2 mc, mg;
    if (ab_gpt2_create(&mc, &cfg, vid, T, &cpu) != AB_OK) {
        printf("FAIL model[%s]: cpu create: %s\n", vn, ab_error());
        test_failed_count++;
        return;
    }
    if (ab_gpt2_create(&mg, &cfg, vid, T, &cuda) != AB_OK) {
        printf("FAIL model[%s,cuda]: create: %s\n", vn, ab_error());
        test_failed_count++;
        ab_gpt2_destroy(&mc);
        return;
    }
    ab_status s = ab_gpt2_init_weights(&mc, 42);
    float *p = malloc(mc.n_elements * sizeof(float));
    if (s == AB_OK) s = ab_gpt2_get_params(&mc, p);
    for (size_t i = 0; i < mc.n_elements; i++) p[i] = tc_round_bf16(p[i]);
    if (s == AB_OK) s = ab_gpt2_set_params(&mc, p);
    if (s == AB_OK) s = ab_gpt2_set_params(&mg, p);
    if (s == AB_OK) s = ab_gpt2_alloc(&mc, B, T, 1);
    if (s == AB_OK) s = ab_gpt2_alloc(&mg, B, T, 1);
    if (s == AB_OK) s = ab_gpt2_zero_grad(&mc);
    if (s == AB_OK) s = ab_gpt2_zero_grad(&mg);
    int32_t tok[100], tgt[100];
    ab_rng r;
    ab_rng_seed(&r, 9);
    int counted = 0;
    for (int i = 0; i < n; i++) {
        tok[i] = (int32_t)ab_rng_below(&r, (uint32_t)cfg.vocab_size);
        tgt[i] = i % 7 == 3 ? -1 : (int32_t)ab_rng_below(&r, (uint32_t)cfg.vocab_size);
        counted += tgt[i] >= 0;
    }
    double lc = 0.0, lg = 0.0;
    if (s == AB_OK) s = ab_gpt2_forward(&mc, tok, tgt, B, T, 1.0f / counted, &lc);
    if (s == AB_OK) s = ab_gpt2_forward(&mg, tok, tgt, B, T, 1.0f / counted, &lg);
    if (s == AB_OK) s = ab_gpt2_backward(&mc);
    if (s == AB_OK) s = ab_gpt2_backward(&mg);
    if (s != AB_OK) {
        printf("FAIL model[%s,cuda]: %s\n", vn, ab_error());
        test_failed_count++;
        goto done;
    }
    snprintf(name, sizeof name, "model[%s,cuda,L=2,H=2,C=128,B=2,T=50].loss", vn);
    TEST_TRUE(name, fabs(lg - lc) <= 5e-3 * fabs(lc) && isfinite(lg), "cuda %.6f cpu %.6f", lg / counted, lc / counted);
    {
        float *gc = malloc(mc.n_elements * sizeof(float)), *gg = malloc(mc.n_elements * sizeof(float));
        ab_gpt2_get_grads(&mc, gc);
        ab_gpt2_get_grads(&mg, gg);
        double worst = 0.0;
        const char *worst_name = "";
        for (int i = 0; i < mc.n_params; i++) {
            const ab_param_info *pi = &mc.params[i];
            if (!pi->trainable) continue;
            double rn, e = rel_l2(gg + pi->offset, gc + pi->offset, pi->numel, &rn);
            if (rn < 1e-6) { /* ~0 reference: the CUDA gradient must be ~0 too */
                double a = 0.0;
                for (size_t k = 0; k < pi->numel; k++) a += (double)gg[pi->offset + k] * gg[pi->offset + k];
                e = sqrt(a) <= 1e-4 ? 0.0 : INFINITY;
            }
            if (!(e <= worst)) {
                worst = e;
                worst_name = pi->name;
            }
        }
        snprintf(name, sizeof name, "model[%s,cuda,L=2,H=2,C=128,B=2,T=50].grads", vn);
        TEST_TRUE(name, worst <= 5e-2, "worst tensor %s: relative L2 error %.3g", worst_name, worst);
        free(gc);
        free(gg);
    }
    {
        /* prefill of T-1 tokens, then decode token T-1: logits of the last position, CUDA vs CPU */
        size_t V = (size_t)cfg.vocab_size;
        float *c1 = malloc(B * V * sizeof(float)), *g1 = malloc(B * V * sizeof(float));
        int32_t ptok[98], dtok[2];
        for (int b = 0; b < B; b++) {
            memcpy(ptok + b * (T - 1), tok + b * T, (size_t)(T - 1) * sizeof(int32_t));
            dtok[b] = tok[b * T + T - 1];
        }
        s = ab_gpt2_alloc_cache(&mc, B, T);
        if (s == AB_OK) s = ab_gpt2_alloc_cache(&mg, B, T);
        if (s == AB_OK) s = ab_gpt2_prefill(&mc, ptok, B, T - 1, c1);
        if (s == AB_OK) s = ab_gpt2_prefill(&mg, ptok, B, T - 1, g1);
        snprintf(name, sizeof name, "model[%s,cuda,B=2,T=49].prefill_logits", vn);
        double e = s == AB_OK ? rel_l2(g1, c1, B * V, NULL) : INFINITY;
        TEST_TRUE(name, s == AB_OK && e <= 3e-2, "%s relative L2 error %.3g", s == AB_OK ? "" : ab_error(), e);
        if (s == AB_OK) s = ab_gpt2_decode(&mc, dtok, B, T - 1, c1);
        if (s == AB_OK) s = ab_gpt2_decode(&mg, dtok, B, T - 1, g1);
        snprintf(name, sizeof name, "model[%s,cuda,B=2,pos=49].decode_logits", vn);
        e = s == AB_OK ? rel_l2(g1, c1, B * V, NULL) : INFINITY;
        TEST_TRUE(name, s == AB_OK && e <= 3e-2, "%s relative L2 error %.3g", s == AB_OK ? "" : ab_error(), e);
        free(c1);
        free(g1);
    }
done:
    free(p);
    ab_gpt2_destroy(&mc);
    ab_gpt2_destroy(&mg);
}

int main(void) {
    if (!tc_open(&cpu, &cuda)) return TEST_SUMMARY();
    test_model(VARIANT_BASELINE, (ab_attn_hparams){0});
    test_model(VARIANT_SDPA, (ab_attn_hparams){0});
    test_model(VARIANT_FLASH, (ab_attn_hparams){0});
    test_model(VARIANT_GQA, (ab_attn_hparams){0});                /* H = 2: G = 1 */
    test_model(VARIANT_SLIDING_WINDOW, (ab_attn_hparams){.window = 16}); /* band inside T = 50, cache of 16 */
    ab_backend_close(&cuda);
    ab_backend_close(&cpu);
    return TEST_SUMMARY();
}
