/*
 * test_attn_equal.c — the equalities of VARIANTS.md, decode == forward, strict causality and determinism
 * of every variant's CPU reference.
 *
 *  - baseline == sdpa == flash; gqa with G = H == baseline; sliding_window with W >= T == baseline (same
 *    weights): outputs and every gradient, atol 2e-5 + rtol 1e-4 (fp32, different summation orders).
 *  - decode: prefill of the first T0 tokens, then one token at a time, equals the forward at every position
 *    (this is "mla absorbed decode == forward" and "linear recurrent decode == chunked forward"), same
 *    tolerance; from an empty cache (T0 = 0) and after a prefill.
 *  - causality: changing every token after position i leaves outputs at <= i unchanged, tolerance 0
 *    (masked work contributes exact zeros), forward and decode. lsh's forward is the exception: future
 *    tokens in lower buckets shift the sorted positions of a query and so the tile boundaries and the
 *    order of its (identical) candidate sum, so there it is checked within fp32 rounding (1e-6).
 *  - determinism: two runs from the same seed give bit-identical outputs and gradients.
 */
#include "test_attn_util.h"

#define EQ_ATOL 2e-5
#define EQ_RTOL 1e-4

static const ab_attn_hparams test_hp = {.gqa_kv_heads = 2, .window = 5, .lsh_hashes = 2, .lsh_chunk = 4,
                                        .lsh_buckets = 4, .linear_chunk = 16, .mla_kv_rank = 12};

/* other (same weights as ref) must match ref in y, dx and every gradient */
static void check_equal(ab_backend *be, ab_variant_id ref_id, ab_variant_id id, ab_attn_hparams hp, const char *label) {
    const int B = 2, T = 70, H = 4, D = 8;
    att_case ref, c;
    if (!att_setup(&ref, be, ref_id, B, T, H, D, hp, 0, 7) || !att_setup(&c, be, id, B, T, H, D, hp, 0, 7)) return;
    att_copy_weights(&c, &ref);
    att_forward_backward(&ref);
    att_forward_backward(&c);
    char name[256];
    snprintf(name, sizeof name, "equal[%s == %s,cpu,B=%d,T=%d,H=%d] y", label, ref.v->name, B, T, H);
    TEST_CLOSE_F32(name, c.y, ref.y, att_n(&c), EQ_ATOL, EQ_RTOL);
    snprintf(name, sizeof name, "equal[%s == %s,cpu,B=%d,T=%d,H=%d] dx", label, ref.v->name, B, T, H);
    TEST_CLOSE_F32(name, c.dx, ref.dx, att_n(&c), EQ_ATOL, EQ_RTOL);
    for (int i = 0; i < c.n_t; i++) {
        snprintf(name, sizeof name, "equal[%s == %s,cpu,B=%d,T=%d,H=%d] d%s", label, ref.v->name, B, T, H,
                 c.tens[i].name);
        TEST_CLOSE_F32(name, c.dw.t[i], ref.dw.t[i], att_tn(&c.tens[i]), EQ_ATOL, EQ_RTOL);
    }
    att_free(&ref);
    att_free(&c);
}

/* Prefill x[:, :T0] then decode positions T0..T-1; writes every output into y_dec (B,T,C). */
static void run_decode(att_case *c, const float *x, int T0, float *y_dec) {
    const int B = c->B, T = c->T, C = c->cfg.C;
    ab_buffer cache;
    if (ab_alloc(c->be, &cache, c->ops->cache_bytes(&c->cfg, B, c->cfg.max_T), MEM_ATTENTION) != AB_OK) exit(1);
    ab_attn_ctx ctx = att_ctx(c);
    float *xin = malloc(sizeof(float) * B * T * C), *yout = malloc(sizeof(float) * B * T * C);
    if (T0 > 0) {
        for (int b = 0; b < B; b++) memcpy(xin + (size_t)b * T0 * C, x + (size_t)b * T * C, sizeof(float) * T0 * C);
        if (c->ops->prefill(&ctx, &c->w, cache.ptr, yout, xin, B, T0) != AB_OK) {
            fprintf(stderr, "%s prefill: %s\n", c->name, ab_error());
            exit(1);
        }
        for (int b = 0; b < B; b++)
            memcpy(y_dec + (size_t)b * T * C, yout + (size_t)b * T0 * C, sizeof(float) * T0 * C);
    }
    for (int t = T0; t < T; t++) {
        for (int b = 0; b < B; b++) memcpy(xin + (size_t)b * C, x + ((size_t)b * T + t) * C, sizeof(float) * C);
        if (c->ops->decode(&ctx, &c->w, cache.ptr, yout, xin, B, t) != AB_OK) {
            fprintf(stderr, "%s decode: %s\n", c->name, ab_error());
            exit(1);
        }
        for (int b = 0; b < B; b++) memcpy(y_dec + ((size_t)b * T + t) * C, yout + (size_t)b * C, sizeof(float) * C);
    }
    free(xin);
    free(yout);
    ab_free(c->be, &cache);
}

static void check_decode(ab_backend *be, ab_variant_id id, int T0) {
    const int B = 2, T = 70, H = 4, D = 8; /* G = 2 < H; T crosses a tile; max_T > T */
    att_case c;
    if (!att_setup(&c, be, id, B, T, H, D, test_hp, 72, 11)) return;
    att_forward(&c, c.x, c.y);
    float *y_dec = calloc(att_n(&c), sizeof(float));
    run_decode(&c, c.x, T0, y_dec);
    char name[256];
    snprintf(name, sizeof name, "decode[%s,prefill=%d] == forward at every position", c.name, T0);
    TEST_CLOSE_F32(name, y_dec, c.y, att_n(&c), EQ_ATOL, EQ_RTOL);
    free(y_dec);
    att_free(&c);
}

/* outputs at positions <= i of a (B,T,C) pair, compared within tol */
static void compare_prefix(const char *name, const float *got, const float *ref, int B, int T, int C, int i, double tol) {
    const size_t n = (size_t)(i + 1) * C;
    float *g = malloc(sizeof(float) * B * n), *r = malloc(sizeof(float) * B * n);
    for (int b = 0; b < B; b++) {
        memcpy(g + b * n, got + (size_t)b * T * C, sizeof(float) * n);
        memcpy(r + b * n, ref + (size_t)b * T * C, sizeof(float) * n);
    }
    TEST_CLOSE_F32(name, g, r, (size_t)B * n, tol, 0.0);
    free(g);
    free(r);
}

static void check_causal(ab_backend *be, ab_variant_id id) {
    const int B = 2, T = 70, H = 2, D = 8;
    att_case c;
    if (!att_setup(&c, be, id, B, T, H, D, test_hp, 0, 13)) return;
    const int C = c.cfg.C;
    const double tol = id == VARIANT_LSH ? 1e-6 : 0.0;
    float *y0 = malloc(sizeof(float) * att_n(&c)), *x1 = malloc(sizeof(float) * att_n(&c));
    float *y1 = malloc(sizeof(float) * att_n(&c)), *d0 = malloc(sizeof(float) * att_n(&c));
    float *d1 = malloc(sizeof(float) * att_n(&c));
    att_forward(&c, c.x, y0);
    run_decode(&c, c.x, 0, d0);
    ab_rng r;
    ab_rng_seed(&r, 99);
    const int positions[] = {0, 1, 30, 63, 64, 68};
    for (size_t k = 0; k < sizeof positions / sizeof positions[0]; k++) {
        const int i = positions[k];
        memcpy(x1, c.x, sizeof(float) * att_n(&c));
        for (int b = 0; b < B; b++)
            att_fill_normal(&r, x1 + ((size_t)b * T + i + 1) * C, (size_t)(T - i - 1) * C, 1.5, 0.0);
        att_forward(&c, x1, y1);
        char name[256];
        snprintf(name, sizeof name, "causal[%s] forward: tokens > %d changed, outputs <= %d", c.name, i, i);
        compare_prefix(name, y1, y0, B, T, C, i, tol);
        if (k % 2 == 0) { /* decode is costlier: every other position */
            run_decode(&c, x1, 0, d1);
            snprintf(name, sizeof name, "causal[%s] decode: tokens > %d changed, outputs <= %d", c.name, i, i);
            compare_prefix(name, d1, d0, B, T, C, i, 0.0);
        }
    }
    free(y0);
    free(x1);
    free(y1);
    free(d0);
    free(d1);
    att_free(&c);
}

static void check_determinism(ab_backend *be, ab_variant_id id) {
    const int B = 2, T = 70, H = 4, D = 8;
    att_case a, b;
    if (!att_setup(&a, be, id, B, T, H, D, test_hp, 0, 21) || !att_setup(&b, be, id, B, T, H, D, test_hp, 0, 21))
        return;
    att_forward_backward(&a);
    att_forward_backward(&b);
    att_forward_backward(&b); /* and a second run on the same buffers */
    int same = memcmp(a.y, b.y, sizeof(float) * att_n(&a)) == 0 && memcmp(a.dx, b.dx, sizeof(float) * att_n(&a)) == 0;
    for (int i = 0; i < a.n_t; i++)
        if (a.dw.t[i]) same &= memcmp(a.dw.t[i], b.dw.t[i], sizeof(float) * att_tn(&a.tens[i])) == 0;
    char name[256];
    snprintf(name, sizeof name, "determinism[%s] same seed: y, dx, dW bit-identical", a.name);
    TEST_TRUE(name, same, "runs differ");
    att_free(&a);
    att_free(&b);
}

int main(void) {
    ab_backend be;
    att_open_backend(&be);
    check_equal(&be, VARIANT_BASELINE, VARIANT_SDPA, test_hp, "sdpa");
    check_equal(&be, VARIANT_BASELINE, VARIANT_FLASH, test_hp, "flash");
    check_equal(&be, VARIANT_SDPA, VARIANT_FLASH, test_hp, "flash");
    ab_attn_hparams g_eq_h = test_hp;
    g_eq_h.gqa_kv_heads = 4; /* = H */
    check_equal(&be, VARIANT_BASELINE, VARIANT_GQA, g_eq_h, "gqa G=H");
    ab_attn_hparams w_eq_t = test_hp;
    w_eq_t.window = 70; /* = T */
    check_equal(&be, VARIANT_BASELINE, VARIANT_SLIDING_WINDOW, w_eq_t, "sliding_window W=T");
    w_eq_t.window = 1000;
    check_equal(&be, VARIANT_BASELINE, VARIANT_SLIDING_WINDOW, w_eq_t, "sliding_window W>T");
    for (int v = 0; v < VARIANT_COUNT; v++) {
        if (!ab_variants[v]->ops[BACKEND_CPU]) {
            printf("SKIP decode/causal/determinism[%s,cpu]: not implemented on cpu\n", ab_variants[v]->name);
            continue;
        }
        check_decode(&be, (ab_variant_id)v, 0);
        check_decode(&be, (ab_variant_id)v, 13);
        check_decode(&be, (ab_variant_id)v, 66);
        check_causal(&be, (ab_variant_id)v);
        check_determinism(&be, (ab_variant_id)v);
    }
    ab_backend_close(&be);
    return TEST_SUMMARY();
}
