/*
 * timer.c — monotonic and wall clocks, UTC formatting, quantiles of latency samples.
 */
#include "prof/timer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double ab_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double ab_wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ab_utc_iso8601(double wall_s, char *out, size_t out_size) {
    time_t t = (time_t)wall_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, out_size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile of an already sorted array. */
static double sorted_quantile(const double *s, size_t n, double q) {
    if (n == 0) return NAN;
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    double frac = pos - (double)lo;
    return s[lo] + frac * (s[hi] - s[lo]);
}

double ab_quantile(const double *x, size_t n, double q) {
    if (n == 0) return NAN;
    double *s = malloc(n * sizeof *s);
    if (!s) return NAN;
    memcpy(s, x, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double r = sorted_quantile(s, n, q);
    free(s);
    return r;
}

void ab_latency_stats_of(const double *x, size_t n, ab_latency_stats *out) {
    out->n = n;
    out->median = out->p10 = out->p90 = out->p99 = out->mean = out->min = out->max = NAN;
    if (n == 0) return;
    double *s = malloc(n * sizeof *s);
    if (!s) return;
    memcpy(s, x, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += s[i];
    out->mean = sum / (double)n;
    out->min = s[0];
    out->max = s[n - 1];
    out->median = sorted_quantile(s, n, 0.5);
    out->p10 = sorted_quantile(s, n, 0.1);
    out->p90 = sorted_quantile(s, n, 0.9);
    out->p99 = sorted_quantile(s, n, 0.99);
    free(s);
}
