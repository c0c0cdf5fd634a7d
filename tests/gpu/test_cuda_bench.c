/*
 * test_cuda_bench.c — attention timings on the GPU at the ANCHORS.md shape (B=16, H=12, T=512, D=64,
 * causal, bf16): the FlashAttention-2 core alone (forward, backward, both; what PyTorch's SDPA anchors in
 * tools/anchors/anchors.py measure), and one whole attention layer (c_attn projection + attention,
 * forward + backward) of each CUDA variant. Its checks are sanity only (finite output; flash faster than
 * sdpa); the numbers go to docs/PERF.md.
 *
 * Timing: host clock around batches of REPS launches with a device synchronisation before and after
 * (GPU-bound: the launches run ahead of the GPU), median over BATCHES batches, inputs rotating over
 * NSETS copies (3 x 47 MB > the 50 MB L2). tools/anchors/anchors.py times PyTorch the same way.
 * Environment: AB_BENCH_B / AB_BENCH_T override the shape; AB_BENCH_PROFILE=1 only runs the core twice
 * (for ncu).
 */
#include <time.h>

#include "backend/cuda/cuda_attn.h"
#include "test_cuda_util.h"

#define NSETS 3
#define REPS 10
#define BATCHES 15

static ab_backend cpu, cuda;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef ab_status (*bench_fn)(void *arg, int set);

/* median ms per call of fn over BATCHES batches of REPS calls */
static double time_median(bench_fn fn, void *arg) {
    double t[BATCHES];
    for (int i = 0; i < 3; i++) fn(arg, i % NSETS); /* warm-up */
    cuda.ops->synchronize(&cuda);
    for (int b = 0; b < BATCHES; b++) {
        cuda.ops->synchronize(&cuda);
        double t0 = now_ms();
        for (int r = 0; r < REPS; r++)
            if (fn(arg, r % NSETS) != AB_OK) {
                printf("FAIL bench: %s\n", ab_error());
                exit(1);
            }
        cuda.ops->synchronize(&cuda);
        t[b] = (now_ms() - t0) / REPS;
    }
    qsort(t, BATCHES, sizeof t[0], cmp_double);
    return t[BATCHES / 2];
}

typedef struct {
    int B, T, H;
    gbuf qkv[NSETS], dout[NSETS], o, lse, dqkv, acc, delta;
} core_args;

static ab_status core_fwd(void *a_, int s) {
    core_args *a = a_;
    return ab_cuda_flash_forward(&cuda, a->qkv[s].ptr, a->o.ptr, NULL, a->lse.ptr, a->B, a->T, a->H, 0);
}
static ab_status core_bwd(void *a_, int s) {
    core_args *a = a_;
    return ab_cuda_flash_backward(&cuda, a->qkv[s].ptr, a->o.ptr, a->lse.ptr, a->dout[s].ptr, a->dqkv.ptr, a->acc.ptr,
                                  a->delta.ptr, a->B, a->T, a->H, 0);
}
static ab_status core_both(void *a_, int s) {
    AB_TRY(core_fwd(a_, s));
    return core_bwd(a_, s);
}

typedef struct {
    const ab_attn_ops *ops;
    ab_attn_config cfg;
    int B, T;
    gbuf x[NSETS], dy[NSETS], y, dx, w, b, dw, db;
    ab_buffer saved, ws;
} layer_args;

static ab_status layer_both(void *a_, int s) {
    layer_args *a = a_;
    ab_attn_ctx ctx = {.be = &cuda, .cfg = &a->cfg, .workspace = a->ws.ptr};
    ab_attn_weights w = {.t = {a->w.ptr, a->b.ptr}}, dw = {.t = {a->dw.ptr, a->db.ptr}};
    AB_TRY(a->ops->forward(&ctx, &w, a->saved.ptr, a->y.ptr, a->x[s].ptr, a->B, a->T));
    return a->ops->backward(&ctx, &w, &dw, a->saved.ptr, a->dx.ptr, a->dy[s].ptr, a->x[s].ptr, a->B, a->T);
}

static float *rand_uniform(ab_rng *r, size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(ab_rng_uniform(r) * 2.0 - 1.0) * scale;
    return p;
}

static double layer_time(const char *name, const ab_attn_ops *ops, int B, int T, int H, ab_rng *r) {
    layer_args a = {.ops = ops, .B = B, .T = T};
    a.cfg = (ab_attn_config){.C = H * 64, .H = H, .D = 64, .max_T = T, .train_T = T};
    int C = a.cfg.C;
    size_t n = (size_t)B * T * C;
    for (int s = 0; s < NSETS; s++) {
        float *x = rand_uniform(r, n, 1.7f);
        a.x[s] = g_new(n, 2);
        a.dy[s] = g_new(n, 2);
        g_set(&a.x[s], x);
        g_set(&a.dy[s], x);
        free(x);
    }
    float *w = rand_uniform(r, (size_t)C * 3 * C, 0.05f);
    a.w = g_new((size_t)C * 3 * C, 2);
    a.dw = g_new((size_t)C * 3 * C, 2);
    a.b = g_new((size_t)3 * C, 2);
    a.db = g_new((size_t)3 * C, 2);
    a.y = g_new(n, 2);
    a.dx = g_new(n, 2);
    g_set(&a.w, w);
    free(w);
    double ms = -1.0;
    if (ab_alloc(&cuda, &a.saved, ops->saved_bytes(&a.cfg, B, T), MEM_ATTENTION) == AB_OK &&
        ab_alloc(&cuda, &a.ws, ops->workspace_bytes(&a.cfg, B, T), MEM_WORKSPACE) == AB_OK) {
        ms = time_median(layer_both, &a);
        printf("bench layer %-8s B=%d T=%d H=%d: forward+backward %.3f ms (saved %.1f MB/layer, workspace %.1f MB)\n",
               name, B, T, H, ms, a.saved.bytes / 1e6, a.ws.bytes / 1e6);
    } else {
        printf("bench layer %-8s: %s\n", name, ab_error());
    }
    ab_free(&cuda, &a.saved);
    ab_free(&cuda, &a.ws);
    for (int s = 0; s < NSETS; s++) {
        g_free(&a.x[s]);
        g_free(&a.dy[s]);
    }
    g_free(&a.w); g_free(&a.dw); g_free(&a.b); g_free(&a.db); g_free(&a.y); g_free(&a.dx);
    return ms;
}

int main(void) {
    if (!tc_open(&cpu, &cuda)) return TEST_SUMMARY();
    int B = getenv("AB_BENCH_B") ? atoi(getenv("AB_BENCH_B")) : 16, T = getenv("AB_BENCH_T") ? atoi(getenv("AB_BENCH_T")) : 512;
    int H = 12, C = H * 64;
    ab_rng r;
    ab_rng_seed(&r, 5);
    core_args a = {.B = B, .T = T, .H = H};
    size_t n = (size_t)B * T * C, bht = (size_t)B * H * T;
    for (int s = 0; s < NSETS; s++) {
        float *q = rand_uniform(&r, 3 * n, 1.7f), *d = rand_uniform(&r, n, 1.7f);
        a.qkv[s] = g_new(3 * n, 2);
        a.dout[s] = g_new(n, 2);
        g_set(&a.qkv[s], q);
        g_set(&a.dout[s], d);
        free(q);
        free(d);
    }
    a.o = g_new(n, 2);
    a.lse = g_new(bht, 4);
    a.dqkv = g_new(3 * n, 2);
    a.acc = g_new(bht * 64, 4);
    a.delta = g_new(bht, 4);
    if (getenv("AB_BENCH_PROFILE")) { /* two plain runs for a profiler (ncu): no timing loops, no layers */
        for (int i = 0; i < 2; i++) core_both(&a, i);
        cuda.ops->synchronize(&cuda);
        TEST_TRUE("bench.profile_run", 1, "");
        ab_backend_close(&cuda);
        return TEST_SUMMARY();
    }
    double fwd = time_median(core_fwd, &a);
    core_fwd(&a, 0);
    double bwd = time_median(core_bwd, &a);
    double both = time_median(core_both, &a);
    /* causal model FLOPs: QK^T and PV over the lower triangle (fwd), 2.5x that for backward */
    double tri = (double)T * (T + 1) / 2, f_fwd = 4.0 * B * H * tri * 64, f_all = 3.5 * f_fwd;
    printf("bench flash core B=%d H=%d T=%d D=64 causal: forward %.3f ms (%.0f TFLOP/s), backward %.3f ms, "
           "forward+backward %.3f ms (%.0f TFLOP/s causal; %.0f TFLOP/s counting the full T x T)\n",
           B, H, T, fwd, f_fwd / fwd / 1e9, bwd, both, f_all / both / 1e9, f_all * T * T / tri / both / 1e9);
    float *o = g_get(&a.o, NULL), *dq = g_get(&a.dqkv, NULL);
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(o[i]) && isfinite(dq[i]);
    TEST_TRUE("bench.flash_core_finite", finite, "non-finite output or gradient");
    free(o);
    free(dq);
    for (int s = 0; s < NSETS; s++) {
        g_free(&a.qkv[s]);
        g_free(&a.dout[s]);
    }
    g_free(&a.o); g_free(&a.lse); g_free(&a.dqkv); g_free(&a.acc); g_free(&a.delta);

    double t_flash = layer_time("flash", &ab_cuda_attn_flash, B, T, H, &r);
    double t_sdpa = layer_time("sdpa", &ab_cuda_attn_sdpa, B, T, H, &r);
    double t_base = layer_time("baseline", &ab_cuda_attn_baseline, B, T, H, &r);
    TEST_TRUE("bench.flash_faster_than_sdpa", t_flash > 0 && t_sdpa > 0 && t_flash < t_sdpa, "flash %.3f ms, sdpa %.3f ms",
              t_flash, t_sdpa);
    TEST_TRUE("bench.baseline_ran", t_base > 0, "baseline layer failed");
    printf("bench peak allocated %.1f MB\n", cuda.mem.peak_total / 1e6);
    ab_backend_close(&cuda);
    ab_backend_close(&cpu);
    return TEST_SUMMARY();
}
