/*
 * test_cuda_attn_linear.c — the CUDA linear variant (src/backend/cuda/attn_linear.cu), taken from the variant
 * table, against its CPU reference (src/attn/linear.c) with the same bf16-rounded weights, inputs and output
 * gradients, at the same chunk length:
 *  - forward y; backward dx, dW, db accumulated onto non-zero start values (the ops accumulate);
 *  - causality: new tokens after t0 leave rows <= t0 bit-identical and change the rows after t0;
 *  - prefill of the first T/2 tokens then the recurrent decode of every later position one token at a time, and
 *    decode of every position from an empty cache (position 0 starts the state), against the forward rows
 *    (VARIANTS.md: linear decode (recurrent) == linear forward); the cache starts filled with NaN, so a state
 *    that prefill leaves unwritten, or a decode at position 0 that reads the old state, fails the case;
 *  - cache_bytes = B * H * (D*D + D) * 4 whatever max_T; head size 32 and --linear-chunk 128 refused with
 *    AB_ERR_UNSUPPORTED by every op before any buffer is touched.
 * Shapes: T in {1, 63, 64, 65, 70, 100, 130, 257} (partial last chunks, one chunk, many), B in {1, 2, 3}, H in
 * {2, 3, 12}, chunk 64, 32 and the odd 17 and 1. A failing case names the variant, shape, chunk, tensor and
 * worst element (b, t, column).
 *
 * Tolerance against the fp32 CPU reference: relative L2 error <= 2e-2 per tensor and every element within 5% of
 * the tensor's largest magnitude (the gqa/window tests' bound), because the GPU keeps q, k, v (after the
 * projection), y and dqkv in bf16 (2^-9 relative rounding each) and its chunk products take bf16 operands (phi(q),
 * phi(k), the masked scores, the states, dO': the flash kernels' rounding of P and dO) with fp32 sums, while the
 * reference keeps everything in fp32. NaN or inf anywhere fails.
 */
#include <math.h>

#include "backend/cuda/cuda_attn.h"
#include "test_cuda_attn_util.h"

static ab_backend cpu, cuda;

static void case_name(char *out, size_t size, const att_case *c, const char *what) {
    snprintf(out, size, "attn[linear,cuda,B=%d,T=%d,H=%d,Lc=%d].%s", c->B, c->T, c->cfg.H, c->cfg.hp.linear_chunk,
             what);
}

/* The variant against its CPU reference: forward, backward, causality, prefill + decode, decode alone. */
static void test_case(int B, int T, int H, int Lc) {
    char name[200];
    att_case c;
    tc_att_setup(&c, &cpu, VARIANT_LINEAR, B, T, H, (ab_attn_hparams){.linear_chunk = Lc}, T + 3, 5000 + 7 * T + H + Lc);
    case_name(name, sizeof name, &c, "ops");
    const ab_attn_ops *ops = tc_cuda_variant_ops(VARIANT_LINEAR, name);
    if (!ops) {
        att_free(&c);
        return;
    }
    check_layer(&c, ops, case_name);
    att_free(&c);
}

/* H * (D*D + D) fp32 per sequence, the same for any context length */
static void test_cache_bytes(void) {
    const char *name = "attn[linear,cuda,H=12].cache_bytes";
    const ab_attn_ops *ops = tc_cuda_variant_ops(VARIANT_LINEAR, name);
    if (!ops) return;
    ab_attn_config cfg = {.C = 768, .H = 12, .D = 64, .max_T = 1024, .train_T = 1024};
    ab_attn_resolve_hparams(&cfg);
    const int B = 3;
    size_t want = (size_t)B * 12 * (64 * 64 + 64) * 4, at_1024 = ops->cache_bytes(&cfg, B, 1024),
           at_64 = ops->cache_bytes(&cfg, B, 64), at_1 = ops->cache_bytes(&cfg, B, 1);
    TEST_TRUE(name, at_1024 == want && at_64 == want && at_1 == want,
              "%zu / %zu / %zu bytes at max_T 1024 / 64 / 1, want %zu (B * H * (D*D + D) fp32, constant in T)", at_1024,
              at_64, at_1, want);
}

/* Every op refuses head size 32 and a chunk longer than the 64-row tile, before touching any buffer. */
static void test_refused(void) {
    const ab_attn_ops *ops = tc_cuda_variant_ops(VARIANT_LINEAR, "attn[linear,cuda].unsupported");
    if (!ops) return;
    static const struct {
        int C, H, Lc;
        const char *needle, *name;
    } cases[2] = {{256, 8, 32, "head size 32", "attn[linear,cuda,D=32].unsupported"},
                  {256, 4, 128, "--linear-chunk 128", "attn[linear,cuda,Lc=128].unsupported"}};
    for (int k = 0; k < 2; k++)
        check_refused(cases[k].name, ops,
                      (ab_attn_config){.C = cases[k].C, .H = cases[k].H, .D = cases[k].C / cases[k].H, .max_T = 256,
                                       .train_T = 256, .hp = {.linear_chunk = cases[k].Lc}},
                      cases[k].needle);
}

int main(void) {
    if (!tc_open(&cpu, &cuda)) return TEST_SUMMARY();
    test_cache_bytes();
    test_refused();
    static const int cases[][4] = {/* B, T, H, Lc */
                                   {2, 1, 2, 64},   {1, 63, 2, 64},  {2, 64, 12, 64}, {3, 65, 2, 64},
                                   {2, 130, 12, 64}, {1, 257, 2, 64}, {2, 257, 12, 32}, {2, 130, 2, 32},
                                   {1, 65, 12, 32},  {2, 100, 3, 17}, {1, 70, 2, 1}};
    for (size_t i = 0; i < tc_case_count(sizeof cases / sizeof cases[0]); i++)
        test_case(cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
    ab_backend_close(&cuda);
    ab_backend_close(&cpu);
    return TEST_SUMMARY();
}
