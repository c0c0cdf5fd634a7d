/*
 * test_cuda_attn.c — the CUDA attention variants (baseline, sdpa, flash) against the CPU baseline
 * (fp32, src/attn/baseline.c) with the same bf16-rounded weights and inputs: forward y, backward dx, dW,
 * db (accumulated onto non-zero start values), causality (changing tokens after t0 leaves rows <= t0
 * bit-identical), prefill + one-token decode == forward at that position, and the flash core's band mask
 * against the CPU sliding_window variant.
 *
 * Tolerance: relative L2 error <= 2e-2 per tensor (bf16 Q/K/V/P operands carry 2^-8 relative rounding
 * each, through a softmax and two products), plus an element-wise bound of 5% of the tensor's largest
 * magnitude so a localised error (one wrong tile) cannot hide in the norm.
 */
#include <math.h>

#include "backend/cuda/cuda_attn.h"
#include "test_attn_util.h"
#include "test_cuda_util.h"

static ab_backend cpu, cuda;

/* relative L2 and element-wise (5% of the largest |ref|) check of a device buffer against ref */
static void check_rel(const char *name, const gbuf *g, const float *ref, double rel_tol) {
    tc_check_tensor(name, g, ref, rel_tol, 0.05, (int)g->n, 0);
}

typedef struct {
    gbuf w, b, x, y, dy, dx, dw, db;
    ab_buffer saved, ws;
} dev_layer;

static void dev_layer_new(dev_layer *d, const att_case *c, const ab_attn_ops *ops, const float *dx0, const float *dw0,
                          const float *db0) {
    int C = c->cfg.C;
    size_t n = att_n(c);
    d->w = g_new((size_t)C * 3 * C, 2);
    d->b = g_new((size_t)3 * C, 2);
    d->x = g_new(n, 2);
    d->y = g_new(n, 2);
    d->dy = g_new(n, 2);
    d->dx = g_new(n, 2);
    d->dw = g_new((size_t)C * 3 * C, 2);
    d->db = g_new((size_t)3 * C, 2);
    g_set(&d->w, c->w.t[0]);
    g_set(&d->b, c->w.t[1]);
    g_set(&d->x, c->x);
    g_set(&d->dy, c->dy);
    g_set(&d->dx, dx0);
    g_set(&d->dw, dw0);
    g_set(&d->db, db0);
    memset(&d->saved, 0, sizeof d->saved);
    memset(&d->ws, 0, sizeof d->ws);
    if (ops) {
        if (ab_alloc(&cuda, &d->saved, ops->saved_bytes(&c->cfg, c->B, c->T), MEM_ATTENTION) != AB_OK ||
            ab_alloc(&cuda, &d->ws, ops->workspace_bytes(&c->cfg, c->B, c->T), MEM_WORKSPACE) != AB_OK) {
            fprintf(stderr, "alloc: %s\n", ab_error());
            exit(1);
        }
    }
}

static void dev_layer_free(dev_layer *d) {
    g_free(&d->w); g_free(&d->b); g_free(&d->x); g_free(&d->y); g_free(&d->dy); g_free(&d->dx); g_free(&d->dw);
    g_free(&d->db);
    ab_free(&cuda, &d->saved);
    ab_free(&cuda, &d->ws);
}

/* the CPU baseline case with every input rounded to bf16; gradients zeroed */
static void setup_ref(att_case *c, ab_variant_id id, int B, int T, int H, ab_attn_hparams hp, int max_T, uint64_t seed) {
    if (!att_setup(c, &cpu, id, B, T, H, 64, hp, max_T, seed)) {
        fprintf(stderr, "variant %d has no CPU ops\n", (int)id);
        exit(1);
    }
    for (int i = 0; i < c->n_t; i++) tc_round_all((float *)c->w.t[i], att_tn(&c->tens[i]));
    tc_round_all(c->x, att_n(c));
    tc_round_all(c->dy, att_n(c));
}

static void test_variant(const char *vname, const ab_attn_ops *ops, int B, int T, int H) {
    char name[160];
    ab_attn_hparams hp = {0};
    att_case c;
    setup_ref(&c, VARIANT_BASELINE, B, T, H, hp, T + 3, 1000 + T);
    int C = c.cfg.C;
    size_t n = att_n(&c);
    ab_rng r;
    ab_rng_seed(&r, 77 + T);
    float *dx0 = tc_randn(&r, n, 0.5, 0.0), *dw0 = tc_randn(&r, (size_t)C * 3 * C, 0.5, 0.0),
          *db0 = tc_randn(&r, (size_t)3 * C, 0.5, 0.0);
    att_forward_backward(&c);
    for (size_t i = 0; i < n; i++) c.dx[i] += dx0[i];
    for (size_t i = 0; i < (size_t)C * 3 * C; i++) ((float *)c.dw.t[0])[i] += dw0[i];
    for (int i = 0; i < 3 * C; i++) ((float *)c.dw.t[1])[i] += db0[i];

    dev_layer d;
    dev_layer_new(&d, &c, ops, dx0, dw0, db0);
    ab_attn_ctx ctx = {.be = &cuda, .cfg = &c.cfg, .workspace = d.ws.ptr, .layer = 0};
    ab_attn_weights w = {.t = {d.w.ptr, d.b.ptr}}, dw = {.t = {d.dw.ptr, d.db.ptr}};
    tc_check_status(ops->forward(&ctx, &w, d.saved.ptr, d.y.ptr, d.x.ptr, B, T), vname);
    snprintf(name, sizeof name, "attn[%s,cuda,B=%d,T=%d,H=%d].forward.y", vname, B, T, H);
    check_rel(name, &d.y, c.y, 2e-2);
    tc_check_status(ops->backward(&ctx, &w, &dw, d.saved.ptr, d.dx.ptr, d.dy.ptr, d.x.ptr, B, T), vname);
    snprintf(name, sizeof name, "attn[%s,cuda,B=%d,T=%d,H=%d].backward.dx", vname, B, T, H);
    check_rel(name, &d.dx, c.dx, 2e-2);
    snprintf(name, sizeof name, "attn[%s,cuda,B=%d,T=%d,H=%d].backward.dW", vname, B, T, H);
    check_rel(name, &d.dw, c.dw.t[0], 2e-2);
    snprintf(name, sizeof name, "attn[%s,cuda,B=%d,T=%d,H=%d].backward.db", vname, B, T, H);
    check_rel(name, &d.db, c.dw.t[1], 2e-2);

    /* the deterministic backward (cuda.deterministic: flash's dQ summed in order): against the reference, and the
     * same bits on a second run from the same start values */
    float *first[3] = {NULL};
    gbuf *grads[3] = {&d.dx, &d.dw, &d.db};
    const float *refs[3] = {c.dx, c.dw.t[0], c.dw.t[1]}, *starts[3] = {dx0, dw0, db0};
    static const char *const gname[3] = {"dx", "dW", "db"};
    cuda.deterministic = 1;
    for (int run = 0; run < 2; run++) {
        for (int g = 0; g < 3; g++) g_set(grads[g], starts[g]);
        tc_check_status(ops->backward(&ctx, &w, &dw, d.saved.ptr, d.dx.ptr, d.dy.ptr, d.x.ptr, B, T), vname);
        for (int g = 0; g < 3; g++) {
            snprintf(name, sizeof name, "attn[%s,cuda,B=%d,T=%d,H=%d].backward(deterministic%s).%s", vname, B, T, H,
                     run ? ", again" : "", gname[g]);
            if (run == 0) {
                check_rel(name, grads[g], refs[g], 2e-2);
                first[g] = g_get(grads[g], NULL);
            } else {
                g_check(name, grads[g], first[g], 0.0, 0.0);
            }
        }
    }
    cuda.deterministic = 0;
    for (int g = 0; g < 3; g++) free(first[g]);

    /* causality: new values for every position > t0 leave rows <= t0 of y bit-identical */
    int t0 = T / 3;
    float *y1 = g_get(&d.y, NULL), *x2 = tc_copy(c.x, n);
    ab_rng_seed(&r, 99);
    for (int b = 0; b < B; b++)
        for (int t = t0 + 1; t < T; t++)
            for (int k = 0; k < C; k++) x2[((size_t)b * T + t) * C + k] = tc_round_bf16((float)ab_rng_normal(&r));
    g_set(&d.x, x2);
    tc_check_status(ops->forward(&ctx, &w, d.saved.ptr, d.y.ptr, d.x.ptr, B, T), vname);
    float *y2 = g_get(&d.y, NULL);
    int same = 1, changed = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int k = 0; k < C; k++) {
                size_t i = ((size_t)b * T + t) * C + k;
                if (t <= t0 && y1[i] != y2[i]) same = 0;
                if (t > t0 && y1[i] != y2[i]) changed = 1;
            }
    snprintf(name, sizeof name, "attn[%s,cuda,B=%d,T=%d,H=%d].causal", vname, B, T, H);
    TEST_TRUE(name, same && changed, "rows <= %d changed: %d, rows > %d changed: %d", t0, !same, t0, changed);
    g_set(&d.x, c.x);

    /* prefill of T-1 tokens, decode of token T-1 == forward row T-1 (CPU reference) */
    ab_buffer cache;
    if (ab_alloc(&cuda, &cache, ops->cache_bytes(&c.cfg, B, c.cfg.max_T), MEM_ATTENTION) != AB_OK) {
        fprintf(stderr, "alloc: %s\n", ab_error());
        exit(1);
    }
    gbuf xp = g_new((size_t)B * (T - 1) * C, 2), yp = g_new((size_t)B * (T - 1) * C, 2);
    gbuf x1 = g_new((size_t)B * C, 2), y1d = g_new((size_t)B * C, 2);
    float *hx = malloc((size_t)B * (T - 1) * C * sizeof(float)), *hx1 = malloc((size_t)B * C * sizeof(float));
    float *ref1 = malloc((size_t)B * C * sizeof(float)), *refp = malloc((size_t)B * (T - 1) * C * sizeof(float));
    for (int b = 0; b < B; b++) {
        memcpy(hx + (size_t)b * (T - 1) * C, c.x + (size_t)b * T * C, (size_t)(T - 1) * C * sizeof(float));
        memcpy(refp + (size_t)b * (T - 1) * C, c.y + (size_t)b * T * C, (size_t)(T - 1) * C * sizeof(float));
        memcpy(hx1 + (size_t)b * C, c.x + ((size_t)b * T + T - 1) * C, (size_t)C * sizeof(float));
        memcpy(ref1 + (size_t)b * C, c.y + ((size_t)b * T + T - 1) * C, (size_t)C * sizeof(float));
    }
    g_set(&xp, hx);
    g_set(&x1, hx1);
    tc_check_status(ops->prefill(&ctx, &w, cache.ptr, yp.ptr, xp.ptr, B, T - 1), vname);
    snprintf(name, sizeof name, "attn[%s,cuda,B=%d,T=%d,H=%d].prefill", vname, B, T - 1, H);
    check_rel(name, &yp, refp, 2e-2);
    tc_check_status(ops->decode(&ctx, &w, cache.ptr, y1d.ptr, x1.ptr, B, T - 1), vname);
    snprintf(name, sizeof name, "attn[%s,cuda,B=%d,pos=%d,H=%d].decode", vname, B, T - 1, H);
    check_rel(name, &y1d, ref1, 2e-2);
    ab_free(&cuda, &cache);
    g_free(&xp); g_free(&yp); g_free(&x1); g_free(&y1d);
    free(hx); free(hx1); free(ref1); free(refp);

    dev_layer_free(&d);
    free(dx0); free(dw0); free(db0); free(y1); free(y2); free(x2);
    att_free(&c);
}

/* The flash core with a band mask (what sliding_window will run) against the CPU sliding_window. */
static void test_flash_band(int B, int T, int H, int W) {
    char name[160];
    ab_attn_hparams hp = {.window = W};
    att_case c;
    setup_ref(&c, VARIANT_SLIDING_WINDOW, B, T, H, hp, T, 5000 + W);
    att_forward_backward(&c);
    int C = c.cfg.C;
    size_t n = att_n(&c);
    float *zero_x = calloc(n, 4), *zero_w = calloc((size_t)C * 3 * C, 4), *zero_b = calloc((size_t)3 * C, 4);
    dev_layer d;
    dev_layer_new(&d, &c, NULL, zero_x, zero_w, zero_b);
    gbuf qkv = g_new(n * 3, 2), o = g_new(n, 2), lse = g_new((size_t)B * H * T, 4), dqkv = g_new(n * 3, 2);
    gbuf acc = g_new((size_t)B * H * T * 64, 4), delta = g_new((size_t)B * H * T, 4);
    tc_check_status(cuda.ops->matmul_forward(&cuda, qkv.ptr, d.x.ptr, d.w.ptr, d.b.ptr, B * T, C, 3 * C), "qkv");
    tc_check_status(ab_cuda_flash_forward(&cuda, qkv.ptr, o.ptr, d.y.ptr, lse.ptr, B, T, H, W), "flash band forward");
    snprintf(name, sizeof name, "attn[flash_band,cuda,B=%d,T=%d,H=%d,W=%d].forward.y", B, T, H, W);
    check_rel(name, &d.y, c.y, 2e-2);
    tc_check_status(ab_cuda_flash_backward(&cuda, qkv.ptr, o.ptr, lse.ptr, d.dy.ptr, dqkv.ptr, acc.ptr, delta.ptr, B, T, H, W),
                    "flash band backward");
    tc_check_status(cuda.ops->matmul_backward(&cuda, d.dx.ptr, d.dw.ptr, d.db.ptr, dqkv.ptr, d.x.ptr, d.w.ptr, B * T, C, 3 * C),
                    "qkv backward");
    snprintf(name, sizeof name, "attn[flash_band,cuda,B=%d,T=%d,H=%d,W=%d].backward.dx", B, T, H, W);
    check_rel(name, &d.dx, c.dx, 2e-2);
    snprintf(name, sizeof name, "attn[flash_band,cuda,B=%d,T=%d,H=%d,W=%d].backward.dW", B, T, H, W);
    check_rel(name, &d.dw, c.dw.t[0], 2e-2);
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
