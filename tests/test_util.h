/*
 * test_util.h — the one comparator and the reporting conventions of every test binary.
 *
 * A test binary runs cases; each case prints "ok <name>" or "FAIL <name>: <why>", and main() ends with
 * TEST_SUMMARY(), which prints "# passed N failed M" (read by tools/run-tests.sh) and returns non-zero on
 * any failure. Comparisons fail on NaN and inf in either array (a NaN never passes), and report the worst
 * element: |got - ref| <= atol + rtol * |ref| must hold everywhere.
 */
#ifndef AB_TEST_UTIL_H
#define AB_TEST_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int test_passed_count, test_failed_count;

static inline void test_report(int ok, const char *name, const char *fmt, ...) {
    if (ok) {
        test_passed_count++;
        printf("ok %s\n", name);
        return;
    }
    test_failed_count++;
    printf("FAIL %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* Compare n doubles-or-floats through an accessor; returns 1 if all close. On failure writes why. */
typedef struct {
    int ok;
    size_t worst_index;
    double worst_got, worst_ref, worst_excess; /* excess = |got-ref| - (atol + rtol|ref|) */
    double max_abs_err;
    char why[256];
} test_cmp;

static inline test_cmp test_compare_f64(const double *got, const double *ref, size_t n, double atol,
                                        double rtol) {
    test_cmp c = {.ok = 1, .worst_excess = -INFINITY};
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        if (!isfinite(g) || !isfinite(r)) {
            c.ok = 0;
            c.worst_index = i;
            c.worst_got = g;
            c.worst_ref = r;
            snprintf(c.why, sizeof c.why, "non-finite value at [%zu]: got %g ref %g", i, g, r);
            return c;
        }
        double err = fabs(g - r), excess = err - (atol + rtol * fabs(r));
        if (err > c.max_abs_err) c.max_abs_err = err;
        if (excess > c.worst_excess) {
            c.worst_excess = excess;
            c.worst_index = i;
            c.worst_got = g;
            c.worst_ref = r;
        }
    }
    if (n > 0 && c.worst_excess > 0) {
        c.ok = 0;
        snprintf(c.why, sizeof c.why, "worst [%zu]: got %.8g ref %.8g (|err| %.3g > atol %.2g + rtol %.2g*|ref|)",
                 c.worst_index, c.worst_got, c.worst_ref, fabs(c.worst_got - c.worst_ref), atol, rtol);
    }
    return c;
}

static inline test_cmp test_compare_f32(const float *got, const float *ref, size_t n, double atol, double rtol) {
    double *g = calloc(n + 1, sizeof *g), *r = calloc(n + 1, sizeof *r); /* zeroed: gcc flags a constant-propagated n = 0 otherwise */
    for (size_t i = 0; i < n; i++) {
        g[i] = got[i];
        r[i] = ref[i];
    }
    test_cmp c = test_compare_f64(g, r, n, atol, rtol);
    free(g);
    free(r);
    return c;
}

/* Report a named comparison as one case. */
#define TEST_CLOSE_F32(name, got, ref, n, atol, rtol)                                              \
    do {                                                                                           \
        test_cmp tc_ = test_compare_f32((got), (ref), (n), (atol), (rtol));                        \
        test_report(tc_.ok, (name), "%s", tc_.why);                                                \
    } while (0)
#define TEST_CLOSE_F64(name, got, ref, n, atol, rtol)                                              \
    do {                                                                                           \
        test_cmp tc_ = test_compare_f64((got), (ref), (n), (atol), (rtol));                        \
        test_report(tc_.ok, (name), "%s", tc_.why);                                                \
    } while (0)

#define TEST_TRUE(name, cond, ...) test_report(!!(cond), (name), __VA_ARGS__)

#define TEST_SUMMARY()                                                                             \
    (printf("# passed %d failed %d\n", test_passed_count, test_failed_count),                      \
     test_failed_count ? 1 : 0)

/* Run a shell command, capture its exit status and the first bytes of its combined output. */
static inline int test_run_cmd(const char *cmd, char *out, size_t out_size) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = out ? fread(out, 1, out_size - 1, p) : 0;
    if (out) out[n] = '\0';
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Removes a test's temporary directory tree (rm -rf), saying so when it cannot. */
static inline void test_remove_dir(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("# could not remove %s\n", dir);
}

/* The attnbench binary under test (tools/run-tests.sh sets AB_BIN). */
static inline const char *test_bin(void) {
    const char *b = getenv("AB_BIN");
    return b ? b : "./attnbench";
}

#endif
