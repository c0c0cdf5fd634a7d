/*
 * test_cuda_util.h — what the CUDA tests share: opening both backends, bf16 rounding on the host (so the
 * CPU reference and the GPU see identical inputs), and guarded device buffers: every output lives inside a
 * larger allocation whose margins hold a byte pattern that must survive the op (an out-of-bounds write
 * fails the case even when it lands in memory the process owns).
 */
#ifndef AB_TEST_CUDA_UTIL_H
#define AB_TEST_CUDA_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/rng.h"
#include "test_util.h"

#define GUARD_BYTES 256
#define GUARD_BYTE 0xA5

static inline uint16_t tc_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static inline float tc_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline float tc_round_bf16(float f) { return tc_bf16_to_f32(tc_f32_to_bf16(f)); }

/* n values N(mean, std) rounded to bf16 */
static inline float *tc_randn(ab_rng *r, size_t n, double std, double mean) {
    float *p = malloc((n + 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = tc_round_bf16((float)(mean + std * ab_rng_normal(r)));
    return p;
}

static inline float *tc_copy(const float *x, size_t n) {
    float *p = malloc((n + 1) * sizeof *p);
    memcpy(p, x, n * sizeof *p);
    return p;
}

/* A device buffer of n elements of es bytes (2 = bf16, 4 = f32 / int32) between two guard margins. */
typedef struct {
    ab_buffer buf;
    void *ptr; /* first element */
    size_t n, es;
} gbuf;

static ab_backend *tc_cuda;

static inline gbuf g_new(size_t n, size_t es) {
    gbuf g = {.n = n, .es = es};
    size_t bytes = n * es + 2 * GUARD_BYTES;
    if (ab_alloc(tc_cuda, &g.buf, bytes, MEM_OTHER) != AB_OK) {
        fprintf(stderr, "device allocation: %s\n", ab_error());
        exit(1);
    }
    unsigned char *h = malloc(bytes);
    memset(h, GUARD_BYTE, bytes);
    memset(h + GUARD_BYTES, 0, n * es);
    if (tc_cuda->ops->copy_to_device(tc_cuda, g.buf.ptr, h, bytes) != AB_OK) {
        fprintf(stderr, "copy: %s\n", ab_error());
        exit(1);
    }
    free(h);
    g.ptr = (unsigned char *)g.buf.ptr + GUARD_BYTES;
    return g;
}

/* f32 host values -> the buffer's dtype (bf16 or f32) */
static inline void g_set(gbuf *g, const float *x) {
    ab_status s;
    if (g->es == 2) {
        s = tc_cuda->ops->upload_f32(tc_cuda, g->ptr, x, g->n);
    } else {
        s = tc_cuda->ops->copy_to_device(tc_cuda, g->ptr, x, g->n * 4);
    }
    if (s != AB_OK) {
        fprintf(stderr, "upload: %s\n", ab_error());
        exit(1);
    }
}

static inline void g_set_i32(gbuf *g, const int32_t *x) {
    if (tc_cuda->ops->copy_to_device(tc_cuda, g->ptr, x, g->n * 4) != AB_OK) {
        fprintf(stderr, "upload: %s\n", ab_error());
        exit(1);
    }
}

/* Reads the values back as f32 (caller frees); *guard_ok = 0 if a margin byte changed. */
static inline float *g_get(const gbuf *g, int *guard_ok) {
    size_t bytes = g->n * g->es + 2 * GUARD_BYTES;
    unsigned char *h = malloc(bytes);
    if (tc_cuda->ops->copy_to_host(tc_cuda, h, g->buf.ptr, bytes) != AB_OK) {
        fprintf(stderr, "download: %s\n", ab_error());
        exit(1);
    }
    int ok = 1;
    for (size_t i = 0; i < GUARD_BYTES; i++)
        if (h[i] != GUARD_BYTE || h[GUARD_BYTES + g->n * g->es + i] != GUARD_BYTE) ok = 0;
    if (guard_ok) *guard_ok = ok;
    float *out = malloc((g->n + 1) * sizeof *out);
    for (size_t i = 0; i < g->n; i++) {
        if (g->es == 2) {
            uint16_t v;
            memcpy(&v, h + GUARD_BYTES + 2 * i, 2);
            out[i] = tc_bf16_to_f32(v);
        } else {
            memcpy(&out[i], h + GUARD_BYTES + 4 * i, 4);
        }
    }
    free(h);
    return out;
}

static inline void g_free(gbuf *g) { ab_free(tc_cuda, &g->buf); }

/* Compares a device buffer with a reference; one case "<name>" that also fails on a touched guard. */
static inline void g_check(const char *name, const gbuf *g, const float *ref, double atol, double rtol) {
    int guard_ok;
    float *got = g_get(g, &guard_ok);
    test_cmp c = test_compare_f32(got, ref, g->n, atol, rtol);
    if (!guard_ok)
        test_report(0, name, "guard bytes around the output were overwritten");
    else
        test_report(c.ok, name, "%s", c.why);
    free(got);
}

/* Rounds every element to the nearest bf16 (inputs the GPU and the CPU reference then share exactly). */
static inline void tc_round_all(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = tc_round_bf16(x[i]);
}

/* Relative L2 and element-wise check of a device buffer against ref. Rows of `row_len` values; T > 0: the
 * rows are (b, t) of a (B,T,row_len) activation, else rows of a weight matrix. */
static inline void tc_check_tensor(const char *name, const gbuf *g, const float *ref, double rel_tol, double elem_frac,
                         int row_len, int T) {
    int guard_ok;
    float *got = g_get(g, &guard_ok);
    double num = 0.0, den = 0.0, amax = 0.0;
    for (size_t i = 0; i < g->n; i++) {
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        if (fabs(ref[i]) > amax) amax = fabs(ref[i]);
    }
    test_cmp c = test_compare_f32(got, ref, g->n, elem_frac * amax, 0.0);
    double rel = sqrt(num / (den > 0 ? den : 1));
    size_t row = c.worst_index / row_len;
    int col = (int)(c.worst_index % row_len);
    char where[96];
    if (T > 0)
        snprintf(where, sizeof where, "(b=%zu, t=%zu, col %d)", row / T, row % T, col);
    else
        snprintf(where, sizeof where, "(row %zu, col %d)", row, col);
    if (!guard_ok)
        test_report(0, name, "guard bytes around the output were overwritten");
    else if (!c.ok)
        test_report(0, name, "%s %s; relative L2 error %.3g", c.why, where, rel);
    else
        test_report(rel <= rel_tol, name, "relative L2 error %.3g > %.3g (worst element %s: got %g ref %g)", rel,
                    rel_tol, where, c.worst_got, c.worst_ref);
    free(got);
}

static inline void tc_check_status(ab_status s, const char *what) {
    if (s != AB_OK) {
        printf("FAIL %s: %s\n", what, ab_error());
        test_failed_count++;
    }
}

/* Opens cpu into *cpu and cuda into *cuda; returns 0 (after a FAIL line) when there is no usable GPU. */
static inline int tc_open(ab_backend *cpu, ab_backend *cuda) {
    if (ab_backend_open(BACKEND_CPU, 0, cpu) != AB_OK) {
        printf("FAIL open cpu backend: %s\n", ab_error());
        return 0;
    }
    if (ab_backend_open(BACKEND_CUDA, 0, cuda) != AB_OK) {
        printf("FAIL open cuda backend: %s\n", ab_error());
        test_failed_count++;
        return 0;
    }
    tc_cuda = cuda;
    return 1;
}

#endif
