/*
 * test_cuda_attn_lsh.c — the CUDA lsh variant (src/backend/cuda/attn_lsh.cu), taken from the variant table,
 * against its CPU reference (src/attn/lsh.c) with the same bf16-rounded rotations, inputs and output gradients:
 *  - forward y; backward dx, dW, db accumulated onto non-zero start values (the ops accumulate);
 *  - causality: new values after t0 leave rows <= t0 bit-identical and change the rows after t0;
 *  - prefill of the first T/2 tokens then decode of every later position one token at a time, and decode of every
 *    position from an empty cache, against the CPU forward rows and the CUDA forward rows (VARIANTS.md: every
 *    variant's decode of token t == its forward at position t); the cache starts filled with NaN;
 *  - decode at 8188 .. 8199 after a prefill, where the scan of the ids takes two passes, against the CPU forward;
 *  - cache size: [k^ | v] bf16 and n_h int16 bucket ids per head, per token (the ids' rows padded to 8 positions);
 *    head size 32 refused.
 *
 * Exact hashing: a bucket is an argmax, so a rounding difference between the two backends' qk near a tie
 * moves a token to another bucket and changes whole rows, which no tolerance describes. The c_attn weight is
 * therefore a signed selection that both backends compute exactly from bf16 inputs: qk of head h takes input
 * columns [0, C/2) in a permuted order with random signs, v takes columns [C/2, C), the bias is 0 (its gradient
 * is still checked). Both backends then hash the same qk (only the fp32 order of the key norm and the
 * projection differs: ~1e-7, far from any tie at these seeds). The causality check redraws only the value
 * columns [C/2, C) of the later tokens, so the buckets and the sorted order stay as they were and the earlier
 * rows must be bit-identical (a change of the later buckets may move tile boundaries, which changes bf16
 * roundings: VARIANTS.md's "within rounding"); the forward against the causal CPU reference covers the keys.
 * Shapes: T in {1, 63, 64, 65, 130, 257, 600, 1100}, B in {1, 2}, H in {2, 12}, chunk 256, 64, 16 and 5 (W_l = 512,
 * 128, 32, 10), n_h in {1, 2, 3}, buckets from T (2 .. 64). Tolerances: the other flash-based variants' (test_cuda_attn_util.h).
 */
#include <math.h>

#include "backend/cuda/cuda_attn.h"
#include "test_cuda_attn_util.h"

static ab_backend cpu, cuda;

static void case_name(char *out, size_t size, const att_case *c, const char *what) {
    snprintf(out, size, "attn[lsh,cuda,B=%d,T=%d,H=%d,Lc=%d,nh=%d,nb=%d].%s", c->B, c->T, c->cfg.H,
             c->cfg.hp.lsh_chunk, c->cfg.hp.lsh_hashes, c->cfg.hp.lsh_buckets, what);
}

/* W (C, 2C) = the signed selection of the header, bias 0 */
static void exact_projection(att_case *c, ab_rng *r) {
    const int C = c->cfg.C, half = C / 2;
    float *w = c->w.t[0], *bias = c->w.t[1];
    memset(w, 0, sizeof(float) * C * 2 * C);
    memset(bias, 0, sizeof(float) * 2 * C);
    int *perm = malloc(sizeof(int) * half);
    for (int h = 0; h < c->cfg.H; h++) {
        for (int i = 0; i < half; i++) perm[i] = i;
        for (int i = half - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)ab_rng_below(r, (uint32_t)(i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int d = 0; d < c->cfg.D; d++) {
            const int col = h * c->cfg.D + d;
            const float sign = ab_rng_below(r, 2) ? 1.0f : -1.0f;
            w[(size_t)perm[d % half] * 2 * C + col] = sign;                        /* qk */
            w[(size_t)(half + col % half) * 2 * C + C + col] = ab_rng_below(r, 2) ? 1.0f : -1.0f; /* v */
        }
    }
    free(perm);
}

static void test_case(int B, int T, int H, int Lc, int nh) {
    char name[200];
    att_case c;
    tc_att_setup(&c, &cpu, VARIANT_LSH, B, T, H, (ab_attn_hparams){.lsh_chunk = Lc, .lsh_hashes = nh}, T + 3,
                 6000 + 7 * T + H + Lc + nh);
    ab_rng r;
    ab_rng_seed(&r, 31 + T + H);
    exact_projection(&c, &r); /* entries 0 and +-1: exact in bf16 */
    case_name(name, sizeof name, &c, "ops");
    const ab_attn_ops *ops = tc_cuda_variant_ops(VARIANT_LSH, name);
    if (ops) check_layer_from(&c, ops, case_name, c.cfg.C / 2);
    att_free(&c);
}

/* Decode at long contexts, where the scan of the ids takes more than one pass a thread: 8200 positions, 256 buckets
 * (a bucket holds ~32 of its W_l = 128), so every position before is scanned; the first pass covers 8192 (8 groups
 * of 8 a thread), positions 8192.. need a second. A prefill of 8188 tokens, then decode of 8188 .. 8199 against the
 * CPU forward (the forward alone: the whole layer's check at this length would take the CPU minutes). */
static void test_long_decode(void) {
    char name[200];
    att_case c;
    const int T = 8200;
    tc_att_setup(&c, &cpu, VARIANT_LSH, 1, T, 2, (ab_attn_hparams){.lsh_chunk = 64, .lsh_hashes = 2}, T + 3, 6917);
    ab_rng r;
    ab_rng_seed(&r, 8231);
    exact_projection(&c, &r);
    case_name(name, sizeof name, &c, "decode_long");
    const ab_attn_ops *ops = tc_cuda_variant_ops(VARIANT_LSH, name);
    if (ops) {
        att_forward(&c, c.x, c.y);
        float *zeros = calloc(att_n(&c), sizeof(float)), *dw0[AB_ATTN_MAX_TENSORS] = {0};
        dev_layer d;
        dev_layer_new(&d, &c, ops, zeros, dw0);
        check_decode(&c, ops, &d, T - 12, NULL, case_name);
        dev_layer_free(&d);
        free(zeros);
    }
    att_free(&c);
}

/* [k^ | v] bf16 (2C) and n_h int16 ids per head, per token and sequence: the analytical 2C + H n_h elements; the ids'
 * rows padded to 8 positions (the decode reads 8 as one 16-byte load), so a max_T off the multiple adds them */
static void test_cache_bytes(void) {
    const char *name = "attn[lsh,cuda,H=12,nh=2,max_T=1024].cache_bytes";
    const ab_attn_ops *ops = tc_cuda_variant_ops(VARIANT_LSH, name);
    if (!ops) return;
    ab_attn_config cfg = {.C = 768, .H = 12, .D = 64, .max_T = 1024, .train_T = 512};
    ab_attn_resolve_hparams(&cfg);
    const int B = 3;
    const double per_token = ab_variants[VARIANT_LSH]->cache_elems_per_token(&cfg, 1024) * 2; /* bf16 elements */
    size_t got = ops->cache_bytes(&cfg, B, 1024), want = (size_t)(B * 1024 * per_token);
    TEST_TRUE(name, got == want && want == (size_t)B * 1024 * (2 * 768 + 12 * 2) * 2,
              "%zu bytes, want %zu ((2C + H n_h) 2-byte elements per token and sequence)", got, want);
    got = ops->cache_bytes(&cfg, B, 1100); /* [k^ | v] of 1100 positions (a multiple of 256 bytes), ids of 1104 */
    want = (size_t)B * 1100 * 2 * 768 * 2 + (size_t)B * 12 * 2 * 1104 * 2;
    TEST_TRUE("attn[lsh,cuda,H=12,nh=2,max_T=1100].cache_bytes", got == want,
              "%zu bytes, want %zu (the ids' rows padded to 1104 positions)", got, want);
}

int main(void) {
    if (!tc_open(&cpu, &cuda)) return TEST_SUMMARY();
    test_cache_bytes();
    test_long_decode();
    const ab_attn_ops *ops = tc_cuda_variant_ops(VARIANT_LSH, "attn[lsh,cuda,D=32].unsupported");
    if (ops) check_head_size_refused("attn[lsh,cuda,D=32].unsupported", ops);
    static const int cases[][5] = {/* B, T, H, Lc, n_h */
                                   {1, 1, 2, 64, 2},  {2, 63, 2, 16, 2}, {1, 64, 12, 16, 1}, {2, 65, 2, 5, 3},
                                   {2, 130, 12, 64, 2}, {1, 257, 2, 16, 2}, {2, 257, 2, 64, 3}, {1, 130, 2, 5, 1},
                                   {1, 1100, 2, 64, 2},  /* > 1024: several keys a thread in the sort, two decode scans */
                                   {1, 600, 2, 256, 2}}; /* W_l = 512, 4 buckets: > 128 candidates, values past the early 8 a group */
    for (size_t i = 0; i < tc_case_count(sizeof cases / sizeof cases[0]); i++)
        test_case(cases[i][0], cases[i][1], cases[i][2], cases[i][3], cases[i][4]);
    ab_backend_close(&cuda);
    ab_backend_close(&cpu);
    return TEST_SUMMARY();
}
