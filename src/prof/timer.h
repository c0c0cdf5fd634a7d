/*
 * timer.h — monotonic wall-clock timing, UTC timestamps and order statistics of latency samples.
 *
 * Everything that times host-side work (CPU steps, epochs, the idle baseline, the sampler) uses
 * ab_now_s(): CLOCK_MONOTONIC in seconds, unaffected by NTP steps. Device-side step times (CUDA events)
 * are measured by the backend and handed to the results module in milliseconds like CPU ones.
 */
#ifndef AB_PROF_TIMER_H
#define AB_PROF_TIMER_H

#include <stddef.h>

/* Seconds on CLOCK_MONOTONIC (arbitrary origin; only differences mean something). */
double ab_now_s(void);

/* Seconds since the Unix epoch (CLOCK_REALTIME): for timestamps written into results. */
double ab_wall_s(void);

/* "2026-11-28T05:29:06Z" (UTC, second resolution) for a CLOCK_REALTIME time in seconds. */
void ab_utc_iso8601(double wall_s, char *out, size_t out_size);

/* The q-quantile (0 <= q <= 1) of x[0..n) by linear interpolation between order statistics
 * (numpy's default "linear" method). Sorts a copy; NAN when n == 0 or on allocation failure. */
double ab_quantile(const double *x, size_t n, double q);

/* Order statistics of one set of latency samples, in the samples' unit. All NAN when n == 0. */
typedef struct {
    size_t n;
    double median, p10, p90, p99, mean, min, max;
} ab_latency_stats;

void ab_latency_stats_of(const double *x, size_t n, ab_latency_stats *out);

#endif
