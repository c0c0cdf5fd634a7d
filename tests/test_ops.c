/*
 * test_ops.c — the CPU backend's ops against finite differences and independent double-precision references.
 *
 * For an op y = f(x) and a random upstream gradient g, the scalar L = sum(g * y) has dL/dx = the op's
 * backward applied to g. Central differences of L in fp32 with step h = 1e-3 have a truncation error
 * O(h^2 |f'''|) ~ 1e-6 and a rounding error ~ eps32 * |L| / h ~ 6e-8 * 10 / 1e-3 = 6e-4 on these small
 * shapes, hence atol 2e-3 + rtol 1e-2. Backward outputs start from a non-zero prefill to check that they
 * accumulate (+=) as backend.h requires.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/rng.h"
#include "test_util.h"

#define H_FD 1e-3f
#define FD_ATOL 2e-3
#define FD_RTOL 1e-2
#define PREFILL 0.25f

static ab_backend be;
static ab_rng rng;

static float *randn(size_t n, float scale) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = scale * (float)ab_rng_normal(&rng);
    return x;
}

static float *filled(size_t n, float v) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = v;
    return x;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* analytic (got - PREFILL) vs numeric gradient of L(x) = sum(g * f(x)) over every element of x */
typedef double (*loss_fn)(void *ctx);
static void check_grad(const char *name, float *x, size_t n, const float *analytic_with_prefill, loss_fn L, void *ctx) {
    float *num = malloc(n * sizeof *num), *ana = malloc(n * sizeof *ana);
    for (size_t i = 0; i < n; i++) {
        float saved = x[i];
        x[i] = saved + H_FD;
        double lp = L(ctx);
        x[i] = saved - H_FD;
        double lm = L(ctx);
        x[i] = saved;
        num[i] = (float)((lp - lm) / (2.0 * H_FD));
        ana[i] = analytic_with_prefill[i] - PREFILL;
    }
    TEST_CLOSE_F32(name, ana, num, n, FD_ATOL, FD_RTOL);
    free(num);
    free(ana);
}

/* ------------------------------------------------------------------ layernorm */

typedef struct {
    int N, C;
    float *x, *w, *b, *g, *y, *mean, *rstd;
} ln_case;

static double ln_loss(void *p) {
    ln_case *c = p;
    be.ops->layernorm_forward(&be, c->y, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C);
    return dot(c->g, c->y, (size_t)c->N * c->C);
}

static void test_layernorm(void) {
    ln_case c = {.N = 5, .C = 12};
    size_t n = (size_t)c.N * c.C;
    c.x = randn(n, 1.0f);
    c.w = randn(c.C, 1.0f);
    c.b = randn(c.C, 1.0f);
    c.g = randn(n, 1.0f);
    c.y = malloc(n * sizeof(float));
    c.mean = malloc(c.N * sizeof(float));
    c.rstd = malloc(c.N * sizeof(float));
    /* forward against a double-precision reference */
    ln_loss(&c);
    double *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got);
    for (int i = 0; i < c.N; i++) {
        double m = 0, v = 0;
        for (int j = 0; j < c.C; j++) m += c.x[i * c.C + j];
        m /= c.C;
        for (int j = 0; j < c.C; j++) v += (c.x[i * c.C + j] - m) * (c.x[i * c.C + j] - m);
        v /= c.C;
        for (int j = 0; j < c.C; j++) {
            ref[i * c.C + j] = (c.x[i * c.C + j] - m) / sqrt(v + 1e-5) * c.w[j] + c.b[j];
            got[i * c.C + j] = c.y[i * c.C + j];
        }
    }
    TEST_CLOSE_F64("layernorm_forward[cpu,N=5,C=12] vs double", got, ref, n, 1e-5, 1e-5);
    float *dx = filled(n, PREFILL), *dw = filled(c.C, PREFILL), *db = filled(c.C, PREFILL);
    be.ops->layernorm_backward(&be, dx, dw, db, c.g, c.x, c.w, c.mean, c.rstd, c.N, c.C);
    check_grad("layernorm_backward[cpu] dx", c.x, n, dx, ln_loss, &c);
    check_grad("layernorm_backward[cpu] dweight", c.w, c.C, dw, ln_loss, &c);
    check_grad("layernorm_backward[cpu] dbias", c.b, c.C, db, ln_loss, &c);
    free(ref), free(got), free(dx), free(dw), free(db);
    free(c.x), free(c.w), free(c.b), free(c.g), free(c.y), free(c.mean), free(c.rstd);
}

/* ------------------------------------------------------------------ matmul */

typedef struct {
    int N, C, OC;
    float *x, *w, *b, *g, *y;
} mm_case;

static double mm_loss(void *p) {
    mm_case *c = p;
    be.ops->matmul_forward(&be, c->y, c->x, c->w, c->b, c->N, c->C, c->OC);
    return dot(c->g, c->y, (size_t)c->N * c->OC);
}

static void test_matmul(void) {
    mm_case c = {.N = 6, .C = 7, .OC = 5};
    c.x = randn((size_t)c.N * c.C, 1.0f);
    c.w = randn((size_t)c.C * c.OC, 1.0f);
    c.b = randn(c.OC, 1.0f);
    c.g = randn((size_t)c.N * c.OC, 1.0f);
    c.y = malloc((size_t)c.N * c.OC * sizeof(float));
    mm_loss(&c);
    double ref[6 * 5], got[6 * 5];
    for (int i = 0; i < c.N; i++)
        for (int o = 0; o < c.OC; o++) {
            double s = c.b[o];
            for (int k = 0; k < c.C; k++) s += (double)c.x[i * c.C + k] * c.w[k * c.OC + o]; /* Conv1D (in, out) */
            ref[i * c.OC + o] = s;
            got[i * c.OC + o] = c.y[i * c.OC + o];
        }
    TEST_CLOSE_F64("matmul_forward[cpu,N=6,C=7,OC=5] vs double", got, ref, 30, 1e-5, 1e-5);
    float *dx = filled((size_t)c.N * c.C, PREFILL), *dw = filled((size_t)c.C * c.OC, PREFILL), *db = filled(c.OC, PREFILL);
    be.ops->matmul_backward(&be, dx, dw, db, c.g, c.x, c.w, c.N, c.C, c.OC);
    check_grad("matmul_backward[cpu] dinp", c.x, (size_t)c.N * c.C, dx, mm_loss, &c);
    check_grad("matmul_backward[cpu] dweight", c.w, (size_t)c.C * c.OC, dw, mm_loss, &c);
    check_grad("matmul_backward[cpu] dbias", c.b, c.OC, db, mm_loss, &c);
    free(dx), free(dw), free(db), free(c.x), free(c.w), free(c.b), free(c.g), free(c.y);
}

/* ------------------------------------------------------------------ gelu */

typedef struct {
    size_t n;
    float *x, *g, *y;
} ew_case;

static double gelu_loss(void *p) {
    ew_case *c = p;
    be.ops->gelu_forward(&be, c->y, c->x, c->n);
    return dot(c->g, c->y, c->n);
}

static void test_gelu(void) {
    ew_case c = {.n = 33};
    c.x = randn(c.n, 2.0f);
    c.g = randn(c.n, 1.0f);
    c.y = malloc(c.n * sizeof(float));
    gelu_loss(&c);
    double ref[33], got[33];
    for (size_t i = 0; i < c.n; i++) {
        double x = c.x[i];
        ref[i] = 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
        got[i] = c.y[i];
    }
    TEST_CLOSE_F64("gelu_forward[cpu] vs double tanh form", got, ref, c.n, 1e-6, 1e-5);
    float *dx = filled(c.n, PREFILL);
    be.ops->gelu_backward(&be, dx, c.x, c.g, c.n);
    check_grad("gelu_backward[cpu]", c.x, c.n, dx, gelu_loss, &c);
    free(dx), free(c.x), free(c.g), free(c.y);
}

/* ------------------------------------------------------------------ encoder */

static void test_encoder(void) {
    enum { B = 2, T = 3, C = 4, V = 5 };
    int32_t tokens[B * T] = {1, 4, 1, 0, 1, 3}; /* repeated ids: their gradients must add up */
    float *wte = randn(V * C, 1.0f), *wpe = randn((T + 2) * C, 1.0f), out[B * T * C], ref[B * T * C];
    be.ops->encoder_forward(&be, out, tokens, wte, wpe, NULL, B, T, C);
    for (int bt = 0; bt < B * T; bt++)
        for (int c = 0; c < C; c++) ref[bt * C + c] = wte[tokens[bt] * C + c] + wpe[(bt % T) * C + c];
    TEST_CLOSE_F32("encoder_forward[cpu,B=2,T=3]", out, ref, B * T * C, 0, 0);
    const int32_t pos0 = 2; /* positions 2..T+1, read from backend memory */
    be.ops->encoder_forward(&be, out, tokens, wte, wpe, &pos0, B, T, C);
    for (int bt = 0; bt < B * T; bt++)
        for (int c = 0; c < C; c++) ref[bt * C + c] = wte[tokens[bt] * C + c] + wpe[(pos0 + bt % T) * C + c];
    TEST_CLOSE_F32("encoder_forward[cpu,B=2,T=3,pos0=2]", out, ref, B * T * C, 0, 0);
    float *g = randn(B * T * C, 1.0f), *dwte = filled(V * C, PREFILL), *dwpe = filled(T * C, PREFILL);
    be.ops->encoder_backward(&be, dwte, dwpe, g, tokens, B, T, C);
    float ewte[V * C], ewpe[T * C];
    for (int i = 0; i < V * C; i++) ewte[i] = PREFILL;
    for (int i = 0; i < T * C; i++) ewpe[i] = PREFILL;
    for (int bt = 0; bt < B * T; bt++)
        for (int c = 0; c < C; c++) {
            ewte[tokens[bt] * C + c] += g[bt * C + c];
            ewpe[(bt % T) * C + c] += g[bt * C + c];
        }
    TEST_CLOSE_F32("encoder_backward[cpu] dwte (repeated ids add)", dwte, ewte, V * C, 1e-6, 1e-6);
    TEST_CLOSE_F32("encoder_backward[cpu] dwpe", dwpe, ewpe, T * C, 1e-6, 1e-6);
    free(wte), free(wpe), free(g), free(dwte), free(dwpe);
}

/* ------------------------------------------------------------------ classifier */

typedef struct {
    int N, C, V;
    float *x, *wte, *losses;
    int32_t *targets;
    float dloss;
} cls_case;

static double cls_loss(void *p) {
    cls_case *c = p;
    be.ops->classifier(&be, c->losses, NULL, NULL, c->x, c->wte, c->targets, c->N, c->C, c->V, 0.0f);
    double s = 0;
    for (int i = 0; i < c->N; i++) s += c->losses[i];
    return s * c->dloss;
}

static void test_classifier(void) {
    cls_case c = {.N = 300, .C = 6, .V = 11}; /* N > 256 rows: crosses the op's row chunking */
    c.x = randn((size_t)c.N * c.C, 1.0f);
    c.wte = randn((size_t)c.V * c.C, 1.0f);
    c.losses = malloc((size_t)c.N * sizeof(float));
    c.targets = malloc((size_t)c.N * sizeof(int32_t));
    int counted = 0;
    for (int i = 0; i < c.N; i++) {
        c.targets[i] = i % 7 == 3 ? -1 : (int32_t)ab_rng_below(&rng, (uint32_t)c.V);
        counted += c.targets[i] >= 0;
    }
    c.dloss = 1.0f / (float)counted;
    cls_loss(&c);
    double ref[300], got[300];
    for (int i = 0; i < c.N; i++) {
        double logits[11], mx = -INFINITY, z = 0;
        for (int v = 0; v < c.V; v++) {
            logits[v] = 0;
            for (int k = 0; k < c.C; k++) logits[v] += (double)c.x[i * c.C + k] * c.wte[v * c.C + k];
            mx = logits[v] > mx ? logits[v] : mx;
        }
        for (int v = 0; v < c.V; v++) z += exp(logits[v] - mx);
        ref[i] = c.targets[i] < 0 ? 0.0 : mx + log(z) - logits[c.targets[i]];
        got[i] = c.losses[i];
    }
    TEST_CLOSE_F64("classifier[cpu,N=300,V=11] losses vs double (ignored rows 0)", got, ref, c.N, 1e-5, 1e-5);
    float *dx = filled((size_t)c.N * c.C, PREFILL), *dwte = filled((size_t)c.V * c.C, PREFILL);
    be.ops->classifier(&be, c.losses, dx, dwte, c.x, c.wte, c.targets, c.N, c.C, c.V, c.dloss);
    check_grad("classifier[cpu] dx", c.x, (size_t)c.N * c.C, dx, cls_loss, &c);
    check_grad("classifier[cpu] dwte", c.wte, (size_t)c.V * c.C, dwte, cls_loss, &c);
    free(dx), free(dwte), free(c.x), free(c.wte), free(c.losses), free(c.targets);
}

/* ------------------------------------------------------------------ adamw, sum of squares, residual */

static void test_adamw(void) {
    enum { N = 9, STEPS = 3 };
    float *p = randn(N, 1.0f), *m = filled(N, 0), *v = filled(N, 0), *g = randn(N, 1.0f);
    double rp[N], rm[N] = {0}, rv[N] = {0};
    for (int i = 0; i < N; i++) rp[i] = p[i];
    ab_adamw_args a = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .grad_scale = 0.5f};
    for (int t = 1; t <= STEPS; t++) {
        a.step = t;
        be.ops->adamw(&be, p, NULL, g, m, v, N, &a);
        /* PyTorch AdamW: decoupled decay, then the bias-corrected update */
        for (int i = 0; i < N; i++) {
            double gi = 0.5 * g[i];
            rp[i] *= 1.0 - 0.01 * 0.1;
            rm[i] = 0.9 * rm[i] + 0.1 * gi;
            rv[i] = 0.95 * rv[i] + 0.05 * gi * gi;
            double mh = rm[i] / (1 - pow(0.9, t)), vh = rv[i] / (1 - pow(0.95, t));
            rp[i] -= 0.01 * mh / (sqrt(vh) + 1e-8);
        }
    }
    double got[N];
    for (int i = 0; i < N; i++) got[i] = p[i];
    TEST_CLOSE_F64("adamw[cpu] 3 steps vs PyTorch formula in double", got, rp, N, 1e-6, 1e-5);
    double sq = 0, ref = 0;
    be.ops->sum_squares(&be, &sq, g, N);
    for (int i = 0; i < N; i++) ref += (double)g[i] * g[i];
    TEST_CLOSE_F64("sum_squares[cpu]", &sq, &ref, 1, 1e-9, 1e-9);
    float nan_in[3] = {1.0f, NAN, 2.0f};
    be.ops->sum_squares(&be, &sq, nan_in, 3);
    TEST_TRUE("sum_squares[cpu] propagates NaN", isnan(sq), "got %g", sq);
    free(p), free(m), free(v), free(g);
}

static void test_accounting(void) {
    ab_buffer a, b;
    size_t before = be.mem.current_total;
    be.ops->alloc(&be, &a, 1000, MEM_PARAMS);
    be.ops->alloc(&be, &b, 500, MEM_ACTIVATIONS);
    int zeroed = 1;
    for (int i = 0; i < 1000; i++) zeroed &= ((unsigned char *)a.ptr)[i] == 0;
    TEST_TRUE("alloc[cpu] zeroes memory", zeroed, "non-zero byte");
    TEST_TRUE("alloc[cpu] accounts by category", be.mem.current[MEM_PARAMS] >= 1000 && be.mem.current[MEM_ACTIVATIONS] >= 500 &&
                                                      be.mem.current_total == before + 1500,
              "params %zu activations %zu total %zu", be.mem.current[MEM_PARAMS], be.mem.current[MEM_ACTIVATIONS], be.mem.current_total);
    be.ops->free(&be, &b);
    TEST_TRUE("free[cpu] keeps the high-water mark", be.mem.current_total == before + 1000 && be.mem.peak_total >= before + 1500,
              "current %zu peak %zu", be.mem.current_total, be.mem.peak_total);
    be.ops->free(&be, &a);
}

int main(void) {
    ab_rng_seed(&rng, 42);
    if (ab_backend_open(BACKEND_CPU, 0, &be) != AB_OK) {
        printf("FAIL open cpu backend: %s\n# passed 0 failed 1\n", ab_error());
        return 1;
    }
    test_layernorm();
    test_matmul();
    test_gelu();
    test_encoder();
    test_classifier();
    test_adamw();
    test_accounting();
    ab_backend_close(&be);
    return TEST_SUMMARY();
}
