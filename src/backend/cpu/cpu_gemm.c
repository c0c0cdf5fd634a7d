/*
 * cpu_gemm.c — fp32 GEMM: OpenBLAS cblas_sgemm, or a blocked OpenMP fallback when built without it.
 */
#include "backend/cpu/cpu_gemm.h"

#include <stdio.h>

#if HAVE_OPENBLAS
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ab_cpu_gemm_select_kernels(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || strcmp(openblas_get_corename(), "Prescott") != 0) return;
    __builtin_cpu_init();
    const char *core = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")
                           ? "SkylakeX"
                       : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "Haswell"
                                                                                         : NULL;
    if (!core || setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
    execv("/proc/self/exe", argv); /* on failure: carry on with the fallback kernels */
    unsetenv("OPENBLAS_CORETYPE");
}

void ab_cpu_gemm_describe(char *out, int out_size) {
    snprintf(out, (size_t)out_size, "%s (kernels %s)", openblas_get_config(), openblas_get_corename());
}

void ab_cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}
#else
void ab_cpu_gemm_select_kernels(char **argv) { (void)argv; }

void ab_cpu_gemm_describe(char *out, int out_size) {
    snprintf(out, (size_t)out_size, "built-in OpenMP loops (built without OpenBLAS)");
}

void ab_cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        for (int k = 0; k < K; k++) {
            float a = alpha * (trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
            if (a == 0.0f) continue;
            if (trans_b)
                for (int j = 0; j < N; j++) c[j] += a * B[(size_t)j * ldb + k];
            else
                for (int j = 0; j < N; j++) c[j] += a * B[(size_t)k * ldb + j];
        }
    }
}
#endif
