/*
 * peak.c — the measured GEMM peak: the fastest of a few timed n x n x n products on the backend.
 */
#include "prof/peak.h"

#include <stdio.h>

#include "prof/timer.h"

#define PEAK_REPEATS 5

ab_status ab_peak_measure(ab_backend *be, ab_peak *out) {
    const int n = be->ops->act_bytes == sizeof(float) ? 1024 : 8192;
    const size_t bytes = (size_t)n * n * be->ops->act_bytes;
    ab_buffer a, b, c;
    AB_TRY(ab_alloc(be, &a, bytes, MEM_WORKSPACE));
    ab_status s = ab_alloc(be, &b, bytes, MEM_WORKSPACE);
    if (s == AB_OK) s = ab_alloc(be, &c, bytes, MEM_WORKSPACE);
    double best = 0.0;
    for (int r = -1; r < PEAK_REPEATS && s == AB_OK; r++) { /* r = -1: warm-up (library heuristics, clocks) */
        s = be->ops->synchronize(be);
        double t0 = ab_now_s();
        if (s == AB_OK) s = be->ops->matmul_forward(be, c.ptr, a.ptr, b.ptr, NULL, n, n, n);
        if (s == AB_OK) s = be->ops->synchronize(be);
        double dt = ab_now_s() - t0;
        if (r >= 0 && dt > 0 && (best == 0.0 || dt < best)) best = dt;
    }
    ab_free(be, &c);
    ab_free(be, &b);
    ab_free(be, &a);
    AB_TRY(s);
    char source[128];
    snprintf(source, sizeof source, "measured: %s %dx%dx%d %s GEMM, best of %d", be->ops->name, n, n, n,
             be->ops->act_bytes == sizeof(float) ? "fp32" : "bf16", PEAK_REPEATS);
    ab_peak_set(out, 2.0 * n * (double)n * n / best / 1e12, source);
    return AB_OK;
}
