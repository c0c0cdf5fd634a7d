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
 * projection), y and dqkv in bf16 (2^-9 relative rounding each) while the reference keeps them in fp32; the
 * chunk products and the states are fp32 on both sides. NaN or inf anywhere fails.
 */
#include <math.h>

#include "backend/cuda/cuda_attn.h"
#include "test_attn_util.h"
#include "test_cuda_util.h"

static ab_backend cpu, cuda;

#define REL_TOL 2e-2
#define ELEM_FRAC 0.05

typedef struct {
    gbuf w, b, x, y, dy, dx, dw, db;
    ab_buffer saved, ws;
    ab_attn_ctx ctx;
    ab_attn_weights wt, dwt;
} dev_layer;

static void dev_alloc(ab_buffer *buf, size_t bytes, mem_category cat) {
    if (ab_alloc(&cuda, buf, bytes ? bytes : 1, cat) != AB_OK) {
        fprintf(stderr, "alloc: %s\n", ab_error());
        exit(1);
    }
}

/* The case's weights, input and output gradient on the device; dx0, dw0, db0 start the gradients. */
static void dev_layer_new(dev_layer *d, const att_case *c, const ab_attn_ops *ops, const float *dx0, const float *dw0,
                          const float *db0) {
    size_t n = att_n(c), nw = att_tn(&c->tens[0]), nb = att_tn(&c->tens[1]);
    d->w = g_new(nw, 2);
    d->b = g_new(nb, 2);
    d->x = g_new(n, 2);
    d->y = g_new(n, 2);
    d->dy = g_new(n, 2);
    d->dx = g_new(n, 2);
    d->dw = g_new(nw, 2);
    d->db = g_new(nb, 2);
    g_set(&d->w, c->w.t[0]);
    g_set(&d->b, c->w.t[1]);
    g_set(&d->x, c->x);
    g_set(&d->dy, c->dy);
    g_set(&d->dx, dx0);
    g_set(&d->dw, dw0);
    g_set(&d->db, db0);
    dev_alloc(&d->saved, ops->saved_bytes(&c->cfg, c->B, c->T), MEM_ATTENTION);
    dev_alloc(&d->ws, ops->workspace_bytes(&c->cfg, c->B, c->T), MEM_WORKSPACE);
    d->ctx = (ab_attn_ctx){.be = &cuda, .cfg = &c->cfg, .workspace = d->ws.ptr, .layer = 0};
    d->wt = (ab_attn_weights){.t = {d->w.ptr, d->b.ptr}};
    d->dwt = (ab_attn_weights){.t = {d->dw.ptr, d->db.ptr}};
}

static void dev_layer_free(dev_layer *d) {
    g_free(&d->w); g_free(&d->b); g_free(&d->x); g_free(&d->y); g_free(&d->dy); g_free(&d->dx); g_free(&d->dw);
    g_free(&d->db);
    ab_free(&cuda, &d->saved);
    ab_free(&cuda, &d->ws);
}

static void case_name(char *out, size_t size, const att_case *c, const char *what) {
    snprintf(out, size, "attn[linear,cuda,B=%d,T=%d,H=%d,Lc=%d].%s", c->B, c->T, c->cfg.H, c->cfg.hp.linear_chunk,
             what);
}

/* Decode positions first..T-1 one token at a time (after a prefill of `first` tokens when first > 0) into a
 * cache that starts as NaN; checks the prefill rows and the decoded rows against the reference y. */
static void check_decode(const att_case *c, const ab_attn_ops *ops, dev_layer *d, int first) {
    const int B = c->B, T = c->T, C = c->cfg.C;
    char name[200], what[64];
    size_t cache_bytes = ops->cache_bytes(&c->cfg, B, c->cfg.max_T);
    ab_buffer cache;
    dev_alloc(&cache, cache_bytes, MEM_ATTENTION);
    unsigned char *nan_fill = malloc(cache_bytes + 1);
    memset(nan_fill, 0xFF, cache_bytes); /* fp32 0xFFFFFFFF is a NaN */
    tc_check_status(cuda.ops->copy_to_device(&cuda, cache.ptr, nan_fill, cache_bytes), "cache fill");
    free(nan_fill);
    if (first > 0) {
        gbuf xp = g_new((size_t)B * first * C, 2), yp = g_new((size_t)B * first * C, 2);
        float *hx = malloc((size_t)B * first * C * sizeof(float)), *ref = malloc((size_t)B * first * C * sizeof(float));
        for (int b = 0; b < B; b++) {
            memcpy(hx + (size_t)b * first * C, c->x + (size_t)b * T * C, (size_t)first * C * sizeof(float));
            memcpy(ref + (size_t)b * first * C, c->y + (size_t)b * T * C, (size_t)first * C * sizeof(float));
        }
        g_set(&xp, hx);
        snprintf(what, sizeof what, "prefill(T=%d)", first);
        case_name(name, sizeof name, c, what);
        tc_check_status(ops->prefill(&d->ctx, &d->wt, cache.ptr, yp.ptr, xp.ptr, B, first), name);
        snprintf(what, sizeof what, "prefill(T=%d).y", first);
        case_name(name, sizeof name, c, what);
        tc_check_tensor(name, &yp, ref, REL_TOL, ELEM_FRAC, C, first);
        g_free(&xp); g_free(&yp);
        free(hx); free(ref);
    }
    /* decoded rows gathered as (B, T - first, C) and compared at once; t in the message counts from `first` */
    const int steps = T - first;
    float *got = malloc((size_t)B * steps * C * sizeof(float)), *ref = malloc((size_t)B * steps * C * sizeof(float));
    float *hx1 = malloc((size_t)B * C * sizeof(float));
    gbuf x1 = g_new((size_t)B * C, 2), y1 = g_new((size_t)B * C, 2);
    int status_ok = 1;
    for (int pos = first; pos < T && status_ok; pos++) {
        for (int b = 0; b < B; b++) {
            memcpy(hx1 + (size_t)b * C, c->x + ((size_t)b * T + pos) * C, (size_t)C * sizeof(float));
            memcpy(ref + ((size_t)b * steps + pos - first) * C, c->y + ((size_t)b * T + pos) * C,
                   (size_t)C * sizeof(float));
        }
        g_set(&x1, hx1);
        if (ops->decode(&d->ctx, &d->wt, cache.ptr, y1.ptr, x1.ptr, B, pos) != AB_OK) {
            snprintf(what, sizeof what, "decode(pos=%d)", pos);
            case_name(name, sizeof name, c, what);
            test_report(0, name, "%s", ab_error());
            status_ok = 0;
            break;
        }
        int guard_ok;
        float *row = g_get(&y1, &guard_ok);
        if (!guard_ok) {
            snprintf(what, sizeof what, "decode(pos=%d).y", pos);
            case_name(name, sizeof name, c, what);
            test_report(0, name, "guard bytes around the output were overwritten");
        }
        for (int b = 0; b < B; b++)
            memcpy(got + ((size_t)b * steps + pos - first) * C, row + (size_t)b * C, (size_t)C * sizeof(float));
        free(row);
    }
    if (status_ok) {
        gbuf all = g_new((size_t)B * steps * C, 2);
        g_set(&all, got); /* bf16 values: exact round trip */
        snprintf(what, sizeof what, "decode(pos=%d..%d, %s)", first, T - 1, first ? "after prefill" : "empty cache");
        case_name(name, sizeof name, c, what);
        tc_check_tensor(name, &all, ref, REL_TOL, ELEM_FRAC, C, steps);
        g_free(&all);
    }
    g_free(&x1); g_free(&y1);
    free(got); free(ref); free(hx1);
    ab_free(&cuda, &cache);
}

/* The variant against its CPU reference: forward, backward, causality, prefill + decode, decode alone. */
static void test_case(int B, int T, int H, int Lc) {
    char name[200];
    att_case c;
    if (!att_setup(&c, &cpu, VARIANT_LINEAR, B, T, H, 64, (ab_attn_hparams){.linear_chunk = Lc}, T + 3,
                   5000 + 7 * T + H + Lc)) {
        fprintf(stderr, "linear has no CPU ops\n");
        exit(1);
    }
    for (int i = 0; i < c.n_t; i++) tc_round_all((float *)c.w.t[i], att_tn(&c.tens[i]));
    tc_round_all(c.x, att_n(&c));
    tc_round_all(c.dy, att_n(&c));
    ab_status st;
    case_name(name, sizeof name, &c, "ops");
    const ab_attn_ops *ops = ab_variant_ops(ab_variants[VARIANT_LINEAR], BACKEND_CUDA, &st);
    if (!ops) {
        test_report(0, name, "%s", ab_error());
        att_free(&c);
        return;
    }
    const int C = c.cfg.C;
    const size_t n = att_n(&c), nw = att_tn(&c.tens[0]), nb = att_tn(&c.tens[1]);
    ab_rng r;
    ab_rng_seed(&r, 77 + T);
    float *dx0 = tc_randn(&r, n, 0.5, 0.0), *dw0 = tc_randn(&r, nw, 0.5, 0.0), *db0 = tc_randn(&r, nb, 0.5, 0.0);
    att_forward_backward(&c);
    for (size_t i = 0; i < n; i++) c.dx[i] += dx0[i];
    for (size_t i = 0; i < nw; i++) ((float *)c.dw.t[0])[i] += dw0[i];
    for (size_t i = 0; i < nb; i++) ((float *)c.dw.t[1])[i] += db0[i];

    dev_layer d;
    dev_layer_new(&d, &c, ops, dx0, dw0, db0);
    case_name(name, sizeof name, &c, "forward");
    tc_check_status(ops->forward(&d.ctx, &d.wt, d.saved.ptr, d.y.ptr, d.x.ptr, B, T), name);
    case_name(name, sizeof name, &c, "forward.y");
    tc_check_tensor(name, &d.y, c.y, REL_TOL, ELEM_FRAC, C, T);
    case_name(name, sizeof name, &c, "backward");
    tc_check_status(ops->backward(&d.ctx, &d.wt, &d.dwt, d.saved.ptr, d.dx.ptr, d.dy.ptr, d.x.ptr, B, T), name);
    case_name(name, sizeof name, &c, "backward.dx");
    tc_check_tensor(name, &d.dx, c.dx, REL_TOL, ELEM_FRAC, C, T);
    case_name(name, sizeof name, &c, "backward.dW(attn.c_attn.weight)");
    tc_check_tensor(name, &d.dw, c.dw.t[0], REL_TOL, ELEM_FRAC, c.tens[0].cols, 0);
    case_name(name, sizeof name, &c, "backward.db(attn.c_attn.bias)");
    tc_check_tensor(name, &d.db, c.dw.t[1], REL_TOL, ELEM_FRAC, c.tens[1].cols, 0);

    /* causality: t0 inside a chunk, so later tokens of its own chunk change too */
    const int t0 = T / 3;
    float *y1 = g_get(&d.y, NULL), *x2 = tc_copy(c.x, n);
    ab_rng_seed(&r, 99 + T);
    for (int b = 0; b < B; b++)
        for (int t = t0 + 1; t < T; t++)
            for (int k = 0; k < C; k++) x2[((size_t)b * T + t) * C + k] = tc_round_bf16((float)ab_rng_normal(&r));
    g_set(&d.x, x2);
    case_name(name, sizeof name, &c, "forward(causality)");
    tc_check_status(ops->forward(&d.ctx, &d.wt, d.saved.ptr, d.y.ptr, d.x.ptr, B, T), name);
    float *y2 = g_get(&d.y, NULL);
    int first_diff_t = -1, changed = T - 1 <= t0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int k = 0; k < C; k++) {
                size_t i = ((size_t)b * T + t) * C + k;
                if (t <= t0 && y1[i] != y2[i] && first_diff_t < 0) first_diff_t = t;
                if (t > t0 && y1[i] != y2[i]) changed = 1;
            }
    case_name(name, sizeof name, &c, "causal");
    TEST_TRUE(name, first_diff_t < 0 && changed, "tokens > %d changed: row %d <= %d changed: %s; rows > %d changed: %s",
              t0, first_diff_t, t0, first_diff_t >= 0 ? "yes" : "no", t0, changed ? "yes" : "no");
    g_set(&d.x, c.x);

    if (T / 2 > 0) check_decode(&c, ops, &d, T / 2);
    check_decode(&c, ops, &d, 0);

    dev_layer_free(&d);
    free(dx0); free(dw0); free(db0); free(y1); free(y2); free(x2);
    att_free(&c);
}

static const ab_attn_ops *linear_cuda_ops(const char *case_name_) {
    ab_status st;
    const ab_attn_ops *ops = ab_variant_ops(ab_variants[VARIANT_LINEAR], BACKEND_CUDA, &st);
    if (!ops) test_report(0, case_name_, "%s", ab_error());
    return ops;
}

/* H * (D*D + D) fp32 per sequence, the same for any context length */
static void test_cache_bytes(void) {
    const char *name = "attn[linear,cuda,H=12].cache_bytes";
    const ab_attn_ops *ops = linear_cuda_ops(name);
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
    const ab_attn_ops *ops = linear_cuda_ops("attn[linear,cuda].unsupported");
    if (!ops) return;
    static const struct {
        int C, H, Lc;
        const char *needle, *name;
    } cases[2] = {{256, 8, 32, "head size 32", "attn[linear,cuda,D=32].unsupported"},
                  {256, 4, 128, "--linear-chunk 128", "attn[linear,cuda,Lc=128].unsupported"}};
    for (int k = 0; k < 2; k++) {
        ab_attn_config cfg = {.C = cases[k].C, .H = cases[k].H, .D = cases[k].C / cases[k].H, .max_T = 256,
                              .train_T = 256, .hp = {.linear_chunk = cases[k].Lc}};
        ab_attn_resolve_hparams(&cfg);
        ab_attn_ctx ctx = {.be = &cuda, .cfg = &cfg, .workspace = NULL, .layer = 0};
        ab_attn_weights w = {.t = {NULL, NULL}};
        ab_status st[4] = {ops->forward(&ctx, &w, NULL, NULL, NULL, 1, 8),
                           ops->backward(&ctx, &w, &w, NULL, NULL, NULL, NULL, 1, 8),
                           ops->prefill(&ctx, &w, NULL, NULL, NULL, 1, 8),
                           ops->decode(&ctx, &w, NULL, NULL, NULL, 1, 0)};
        int ok = 1;
        for (int i = 0; i < 4; i++) ok &= st[i] == AB_ERR_UNSUPPORTED;
        const char *msg = ab_error();
        TEST_TRUE(cases[k].name, ok && strstr(msg, cases[k].needle),
                  "statuses %d %d %d %d (want AB_ERR_UNSUPPORTED = %d), last message '%s'", st[0], st[1], st[2], st[3],
                  AB_ERR_UNSUPPORTED, msg);
    }
}

int main(void) {
    if (!tc_open(&cpu, &cuda)) return TEST_SUMMARY();
    test_cache_bytes();
    test_refused();
    static const int cases[][4] = {/* B, T, H, Lc */
                                   {2, 1, 2, 64},   {1, 63, 2, 64},  {2, 64, 12, 64}, {3, 65, 2, 64},
                                   {2, 130, 12, 64}, {1, 257, 2, 64}, {2, 257, 12, 32}, {2, 130, 2, 32},
                                   {1, 65, 12, 32},  {2, 100, 3, 17}, {1, 70, 2, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_case(cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
    ab_backend_close(&cuda);
    ab_backend_close(&cpu);
    return TEST_SUMMARY();
}
