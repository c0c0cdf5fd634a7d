/*
 * cpu_gemm.h — the one fp32 GEMM of the CPU backend (OpenBLAS when built with it, else OpenMP loops).
 *
 * Row-major: C (M,N) = alpha * op(A) @ op(B) + beta * C, op(X) = X or X^T, with leading dimensions as in
 * BLAS. The CPU attention variants use it for their per-head products.
 */
#ifndef AB_CPU_GEMM_H
#define AB_CPU_GEMM_H

void ab_cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);

#endif
