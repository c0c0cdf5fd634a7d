/*
 * test_cuda_attn_util.h — the device side of one attention layer for the GPU tests of variants whose tensors
 * are GPT-2's c_attn pair (weight, bias): upload a CPU case (test_attn_util.h), and check prefill + decode
 * against the case's forward output. The tolerance is the one of every CUDA attention test against the fp32
 * CPU reference: relative L2 <= 2e-2 per tensor and every element within 5% of the tensor's largest magnitude,
 * because Q, K, V, P and dS enter the tensor-core products as bf16 (2^-8 relative each) and outputs are bf16.
 */
#ifndef AB_TEST_CUDA_ATTN_UTIL_H
#define AB_TEST_CUDA_ATTN_UTIL_H

#include "test_attn_util.h"
#include "test_cuda_util.h"

#define ATTN_REL_TOL 2e-2
#define ATTN_ELEM_FRAC 0.05

/* AB_TEST_CASES=N: the first N cases of each shape table only (for compute-sanitizer's racecheck, which runs
 * kernels far slower); unset, or N past the table: all n. */
static inline size_t tc_case_count(size_t n) {
    const char *v = getenv("AB_TEST_CASES");
    const long k = v ? atol(v) : -1;
    return k >= 0 && (size_t)k < n ? (size_t)k : n;
}

/* The CUDA ops of variant id from the variant table; NULL after a failing case `case_name` when it has none. */
static inline const ab_attn_ops *tc_cuda_variant_ops(ab_variant_id id, const char *case_name) {
    ab_status st;
    const ab_attn_ops *ops = ab_variant_ops(ab_variants[id], BACKEND_CUDA, &st);
    if (!ops) test_report(0, case_name, "%s", ab_error());
    return ops;
}

/* The CPU reference case of variant id (att_setup on `cpu`, head size 64) with its weights, input and output gradient
 * rounded to bf16, so both backends compute on identical values; gradients zeroed. Exits when the variant has no CPU
 * ops. */
static inline void tc_att_setup(att_case *c, ab_backend *cpu, ab_variant_id id, int B, int T, int H, ab_attn_hparams hp,
                                int max_T, uint64_t seed) {
    if (!att_setup(c, cpu, id, B, T, H, 64, hp, max_T, seed)) {
        fprintf(stderr, "variant %s has no CPU ops\n", ab_variants[id]->name);
        exit(1);
    }
    for (int i = 0; i < c->n_t; i++) tc_round_all((float *)c->w.t[i], att_tn(&c->tens[i]));
    tc_round_all(c->x, att_n(c));
    tc_round_all(c->dy, att_n(c));
}

/* "attn[<variant>,cuda,<shape>].<what>" for a case */
typedef void (*case_namer)(char *out, size_t size, const att_case *c, const char *what);

/* One layer on the device: the case's tensors and their gradients, input, output gradient, outputs, saved and
 * workspace. */
typedef struct {
    int n_t;
    gbuf w[AB_ATTN_MAX_TENSORS], dw[AB_ATTN_MAX_TENSORS];
    gbuf x, y, dy, dx;
    ab_buffer saved, ws;
    ab_attn_ctx ctx;
    ab_attn_weights wt, dwt;
} dev_layer;

static inline void dev_alloc(ab_buffer *buf, size_t bytes, mem_category cat) {
    if (ab_alloc(tc_cuda, buf, bytes ? bytes : 1, cat) != AB_OK) {
        fprintf(stderr, "alloc: %s\n", ab_error());
        exit(1);
    }
}

/* dx0, dw0[i]: start values of the accumulated gradients (dw0[i] NULL: a fixed tensor, zeros); ops NULL: no saved
 * tensors or workspace (a test calling the kernels itself) */
static inline void dev_layer_new(dev_layer *d, const att_case *c, const ab_attn_ops *ops, const float *dx0,
                          float *const dw0[AB_ATTN_MAX_TENSORS]) {
    size_t n = att_n(c);
    memset(d, 0, sizeof *d);
    d->n_t = c->n_t;
    for (int i = 0; i < c->n_t; i++) {
        size_t nt = att_tn(&c->tens[i]);
        d->w[i] = g_new(nt, 2);
        d->dw[i] = g_new(nt, 2);
        g_set(&d->w[i], c->w.t[i]);
        if (dw0[i]) g_set(&d->dw[i], dw0[i]); /* fixed tensors (no gradient) stay zero */
        d->wt.t[i] = d->w[i].ptr;
        d->dwt.t[i] = d->dw[i].ptr;
    }
    d->x = g_new(n, 2);
    d->y = g_new(n, 2);
    d->dy = g_new(n, 2);
    d->dx = g_new(n, 2);
    g_set(&d->x, c->x);
    g_set(&d->dy, c->dy);
    g_set(&d->dx, dx0);
    if (ops) {
        dev_alloc(&d->saved, ops->saved_bytes(&c->cfg, c->B, c->T), MEM_ATTENTION);
        dev_alloc(&d->ws, ops->workspace_bytes(&c->cfg, c->B, c->T), MEM_WORKSPACE);
    }
    d->ctx = (ab_attn_ctx){.be = tc_cuda, .cfg = &c->cfg, .workspace = d->ws.ptr, .layer = 0};
}

static inline void dev_layer_free(dev_layer *d) {
    for (int i = 0; i < d->n_t; i++) {
        g_free(&d->w[i]);
        g_free(&d->dw[i]);
    }
    g_free(&d->x); g_free(&d->y); g_free(&d->dy); g_free(&d->dx);
    ab_free(tc_cuda, &d->saved);
    ab_free(tc_cuda, &d->ws);
}

/* Decode positions first..T-1 one token at a time (after a prefill of `first` tokens when first > 0) into a
 * cache that starts as NaN; checks the prefill rows and every decoded row against the CPU forward y and, when
 * gpu_y (B,T,C) is not NULL, against the CUDA forward output too (decode == forward on the same backend). */
static inline void check_decode(const att_case *c, const ab_attn_ops *ops, dev_layer *d, int first, const float *gpu_y,
                         case_namer case_name) {
    const int B = c->B, T = c->T, C = c->cfg.C;
    char name[200], what[96];
    size_t cache_bytes = ops->cache_bytes(&c->cfg, B, c->cfg.max_T);
    ab_buffer cache;
    dev_alloc(&cache, cache_bytes, MEM_ATTENTION);
    unsigned char *nan_fill = malloc(cache_bytes + 1);
    memset(nan_fill, 0xFF, cache_bytes); /* all-ones bytes are a NaN in bf16 and in fp32 */
    tc_check_status(tc_cuda->ops->copy_to_device(tc_cuda, cache.ptr, nan_fill, cache_bytes), "cache fill");
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
        tc_check_tensor(name, &yp, ref, ATTN_REL_TOL, ATTN_ELEM_FRAC, C, first);
        g_free(&xp); g_free(&yp);
        free(hx); free(ref);
    }
    /* decoded rows gathered as (B, T - first, C) and compared at once; t in the message counts from `first` */
    const int steps = T - first;
    float *got = malloc((size_t)B * steps * C * sizeof(float)), *ref = malloc((size_t)B * steps * C * sizeof(float));
    float *ref_gpu = malloc((size_t)B * steps * C * sizeof(float)), *hx1 = malloc((size_t)B * C * sizeof(float));
    gbuf x1 = g_new((size_t)B * C, 2), y1 = g_new((size_t)B * C, 2);
    int status_ok = 1;
    for (int pos = first; pos < T && status_ok; pos++) {
        for (int b = 0; b < B; b++) {
            const size_t src = ((size_t)b * T + pos) * C, dst = ((size_t)b * steps + pos - first) * C;
            memcpy(hx1 + (size_t)b * C, c->x + src, (size_t)C * sizeof(float));
            memcpy(ref + dst, c->y + src, (size_t)C * sizeof(float));
            if (gpu_y) memcpy(ref_gpu + dst, gpu_y + src, (size_t)C * sizeof(float));
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
        const char *how = first ? "after prefill" : "empty cache";
        snprintf(what, sizeof what, "decode(pos=%d..%d, %s).y_vs_cpu_forward", first, T - 1, how);
        case_name(name, sizeof name, c, what);
        tc_check_tensor(name, &all, ref, ATTN_REL_TOL, ATTN_ELEM_FRAC, C, steps);
        if (gpu_y) {
            snprintf(what, sizeof what, "decode(pos=%d..%d, %s).y_vs_cuda_forward", first, T - 1, how);
            case_name(name, sizeof name, c, what);
            tc_check_tensor(name, &all, ref_gpu, ATTN_REL_TOL, ATTN_ELEM_FRAC, C, steps);
        }
        g_free(&all);
    }
    g_free(&x1); g_free(&y1);
    free(got); free(ref); free(ref_gpu); free(hx1);
    ab_free(tc_cuda, &cache);
}

/* Every op of a CUDA variant refuses the configuration cfg (hyper-parameters resolved here) before touching any
 * buffer, with a message containing `needle`. */
static inline void check_refused(const char *name, const ab_attn_ops *ops, ab_attn_config cfg, const char *needle) {
    ab_attn_resolve_hparams(&cfg);
    ab_attn_ctx ctx = {.be = tc_cuda, .cfg = &cfg, .workspace = NULL, .layer = 0};
    ab_attn_weights w = {.t = {NULL}};
    ab_status st[4] = {ops->forward(&ctx, &w, NULL, NULL, NULL, 1, 8),
                       ops->backward(&ctx, &w, &w, NULL, NULL, NULL, NULL, 1, 8),
                       ops->prefill(&ctx, &w, NULL, NULL, NULL, 1, 8), ops->decode(&ctx, &w, NULL, NULL, NULL, 1, 0)};
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= st[i] == AB_ERR_UNSUPPORTED;
    const char *msg = ab_error();
    TEST_TRUE(name, ok && strstr(msg, needle), "statuses %d %d %d %d (want AB_ERR_UNSUPPORTED = %d), last message '%s'",
              st[0], st[1], st[2], st[3], AB_ERR_UNSUPPORTED, msg);
}

/* The kernels are built for head size 64: a head size of 32 is refused. */
static inline void check_head_size_refused(const char *name, const ab_attn_ops *ops) {
    check_refused(name, ops, (ab_attn_config){.C = 256, .H = 8, .D = 32, .max_T = 64, .train_T = 64}, "head size 32");
}

/* After a backward (`what` names it in the case names): dx and the gradient of every tensor that has one (fixed
 * tensors, dw.t[i] == NULL, have none) against the reference. */
static inline void check_grads(const att_case *c, const dev_layer *d, case_namer case_name, const char *what) {
    char name[200], label[96];
    snprintf(label, sizeof label, "%s.dx", what);
    case_name(name, sizeof name, c, label);
    tc_check_tensor(name, &d->dx, c->dx, ATTN_REL_TOL, ATTN_ELEM_FRAC, c->cfg.C, c->T);
    for (int i = 0; i < c->n_t; i++) {
        if (!c->dw.t[i]) continue;
        snprintf(label, sizeof label, "%s.dW(%s)", what, c->tens[i].name);
        case_name(name, sizeof name, c, label);
        tc_check_tensor(name, &d->dw[i], c->dw.t[i], ATTN_REL_TOL, ATTN_ELEM_FRAC, c->tens[i].cols, 0);
    }
}

/* The deterministic backward (be->deterministic: the flash family's dQ summed in order, without atomics; the other
 * variants are deterministic anyway): from the same start values and saved forward as the backward just checked, its
 * gradients against the reference, then a second run must give the same bits. */
static inline void check_backward_deterministic(const att_case *c, const ab_attn_ops *ops, dev_layer *d,
                                                case_namer case_name, const float *dx0,
                                                float *const dw0[AB_ATTN_MAX_TENSORS]) {
    char name[200], what[96];
    const int B = c->B, T = c->T;
    float *first[AB_ATTN_MAX_TENSORS + 1] = {NULL}; /* dx, then the dW */
    tc_cuda->deterministic = 1;
    for (int run = 0; run < 2; run++) {
        g_set(&d->dx, dx0);
        for (int i = 0; i < c->n_t; i++)
            if (dw0[i]) g_set(&d->dw[i], dw0[i]);
        case_name(name, sizeof name, c, "backward(deterministic)");
        tc_check_status(ops->backward(&d->ctx, &d->wt, &d->dwt, d->saved.ptr, d->dx.ptr, d->dy.ptr, d->x.ptr, B, T), name);
        if (run == 0) check_grads(c, d, case_name, "backward(deterministic)");
        for (int i = -1; i < c->n_t; i++) { /* the first run's bits, and the second's against them */
            if (i >= 0 && !c->dw.t[i]) continue;
            const gbuf *g = i < 0 ? &d->dx : &d->dw[i];
            if (run == 0) {
                first[i + 1] = g_get(g, NULL);
                continue;
            }
            if (i < 0) snprintf(what, sizeof what, "backward(deterministic, again).dx");
            else snprintf(what, sizeof what, "backward(deterministic, again).dW(%s)", c->tens[i].name);
            case_name(name, sizeof name, c, what);
            g_check(name, g, first[i + 1], 0.0, 0.0);
        }
    }
    tc_cuda->deterministic = 0;
    for (int i = 0; i <= c->n_t; i++) free(first[i]);
}

/* Forward, backward (onto non-zero gradient start values) and the deterministic backward, strict causality and
 * prefill + decode of one case against its CPU reference (c holds the reference after att_forward_backward is run here); every tensor with a
 * gradient is checked (fixed ones, dw.t[i] == NULL, are not). The causality check redraws input columns
 * first_col .. C-1 of the tokens after T/3 (0: the whole tokens). Decode is checked against the CPU forward and
 * the CUDA forward. */
static inline void check_layer_from(att_case *c, const ab_attn_ops *ops, case_namer case_name, int first_col) {
    char name[200];
    const int B = c->B, T = c->T;
    const int C = c->cfg.C;
    const size_t n = att_n(c);
    ab_rng r;
    ab_rng_seed(&r, 77 + T);
    float *dx0 = tc_randn(&r, n, 0.5, 0.0), *dw0[AB_ATTN_MAX_TENSORS] = {0};
    for (int i = 0; i < c->n_t; i++)
        if (c->dw.t[i]) dw0[i] = tc_randn(&r, att_tn(&c->tens[i]), 0.5, 0.0);
    att_forward_backward(c);
    for (size_t i = 0; i < n; i++) c->dx[i] += dx0[i];
    for (int t = 0; t < c->n_t; t++)
        for (size_t i = 0; dw0[t] && i < att_tn(&c->tens[t]); i++) ((float *)c->dw.t[t])[i] += dw0[t][i];

    dev_layer d;
    dev_layer_new(&d, c, ops, dx0, dw0);
    case_name(name, sizeof name, c, "forward");
    tc_check_status(ops->forward(&d.ctx, &d.wt, d.saved.ptr, d.y.ptr, d.x.ptr, B, T), name);
    case_name(name, sizeof name, c, "forward.y");
    tc_check_tensor(name, &d.y, c->y, ATTN_REL_TOL, ATTN_ELEM_FRAC, C, T);
    case_name(name, sizeof name, c, "backward");
    tc_check_status(ops->backward(&d.ctx, &d.wt, &d.dwt, d.saved.ptr, d.dx.ptr, d.dy.ptr, d.x.ptr, B, T), name);
    check_grads(c, &d, case_name, "backward");
    check_backward_deterministic(c, ops, &d, case_name, dx0, dw0);

    /* causality: tokens after t0 change; rows <= t0 must not */
    const int t0 = T / 3;
    float *y1 = g_get(&d.y, NULL), *x2 = tc_copy(c->x, n);
    ab_rng_seed(&r, 99 + T);
    for (int b = 0; b < B; b++)
        for (int t = t0 + 1; t < T; t++)
            for (int k = first_col; k < C; k++) x2[((size_t)b * T + t) * C + k] = tc_round_bf16((float)ab_rng_normal(&r));
    g_set(&d.x, x2);
    case_name(name, sizeof name, c, "forward(causality)");
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
    case_name(name, sizeof name, c, "causal");
    TEST_TRUE(name, first_diff_t < 0 && changed, "tokens > %d changed: row %d <= %d changed: %s; rows > %d changed: %s",
              t0, first_diff_t, t0, first_diff_t >= 0 ? "yes" : "no", t0, changed ? "yes" : "no");
    g_set(&d.x, c->x);

    if (T / 2 > 0) check_decode(c, ops, &d, T / 2, y1, case_name);
    check_decode(c, ops, &d, 0, y1, case_name);

    dev_layer_free(&d);
    for (int i = 0; i < c->n_t; i++) free(dw0[i]);
    free(dx0); free(y1); free(y2); free(x2);
}

static inline void check_layer(att_case *c, const ab_attn_ops *ops, case_namer case_name) {
    check_layer_from(c, ops, case_name, 0);
}

#endif
