/*
 * peak.h — measuring a device's dense matrix-product rate, for `--peak-tflops measured` (METRICS.md: MFU
 * against a measured GEMM peak instead of the table).
 */
#ifndef AB_PROF_PEAK_H
#define AB_PROF_PEAK_H

#include "backend/backend.h"
#include "prof/flops.h"

/* Times square matrix products through the backend's matmul_forward (bf16 on cuda: n = 8192, fp32 on the
 * CPU: n = 1024), best of several after a warm-up, and sets *out to 2 n^3 / time with the source named. */
ab_status ab_peak_measure(ab_backend *be, ab_peak *out);

#endif
