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

/* OpenBLAS 0.3.21 (Debian 12) does not recognise recent Xeon models and falls back to its generic SSE3
 * ("Prescott") kernels, 2-3x slower than the AVX-512 or AVX2 ones the CPU can run. OpenBLAS reads
 * OPENBLAS_CORETYPE once, when it is loaded, so the fix is to set it and start the program again: called
 * first thing in main(); returns when nothing needs changing (the variable is already set by the user, the
 * kernels are not the fallback, or the CPU has neither AVX-512 nor AVX2 + FMA), else execs argv again. */
void ab_cpu_gemm_select_kernels(char **argv);

/* What runs the CPU GEMMs, for the environment block: "OpenBLAS 0.3.21 ... (kernels SkylakeX)". */
void ab_cpu_gemm_describe(char *out, int out_size);

#endif
