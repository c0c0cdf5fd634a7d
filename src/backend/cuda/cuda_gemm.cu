/*
 * cuda_gemm.cu — every matrix product of the CUDA backend goes through cuda_gemm(): cuBLASLt, bf16
 * operands, fp32 accumulation, optional bias epilogue, strided batches. Row-major callers are mapped to
 * cuBLASLt's column-major view by swapping the operands (C^T = op(B)^T op(A)^T). Algorithm choices are
 * cached per shape, transposition, alignment and epilogue, so the heuristic runs once per distinct GEMM.
 *
 * Also here: the matmul ops of the op table (Conv1D weights (in, out)), the bias gradient, the projection
 * that adds the residual as the GEMM's C input, and the MLP's c_fc -> GELU -> c_proj pair with the GELU folded into
 * the GEMM epilogues. The three forward ops send products of at most CUDA_SMALL_M rows (decode) to the
 * bandwidth-bound kernel of cuda_gemm_small.cu first and use cuBLASLt for the rest. And a decode step's LayerNorms
 * folded into the product after them (layernorm_matmul_forward, the variants' cuda_decode_projection): normalised
 * in that kernel's prologue where it takes the shape, else written out by layernorm_forward first.
 */
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

static ab_status lt_status(cublasStatus_t s, const char *what) {
    return ab_fail(s == CUBLAS_STATUS_ALLOC_FAILED ? AB_ERR_OOM : AB_ERR_DEVICE, "cuda: %s failed: cuBLASLt status %d",
                   what, (int)s);
}

#define LT_TRY(call, what)                                                                         \
    do {                                                                                           \
        cublasStatus_t lt_try_s_ = (call);                                                         \
        if (lt_try_s_ != CUBLAS_STATUS_SUCCESS) {                                                  \
            st = lt_status(lt_try_s_, (what));                                                     \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* One cached algorithm: the key is every argument that changes the heuristic's answer. */
typedef struct {
    int trans_a, trans_b, M, N, K, lda, ldb, ldc, batch, c_f32, has_bias, beta_zero, gelu, ld_aux;
    long long stride_a, stride_b, stride_c;
    unsigned align_a, align_b, align_c, align_aux;
    cublasLtMatmulAlgo_t algo;
    int used;
} gemm_algo_entry;

#define GEMM_CACHE_SIZE 128
static gemm_algo_entry gemm_cache[GEMM_CACHE_SIZE];
static int gemm_cache_next;

/* The largest power of two (<= 256) dividing the address and every batch stride, in bytes. */
static unsigned byte_alignment(const void *p, long long stride_elems) {
    uintptr_t a = (uintptr_t)p | 256u;
    if (stride_elems) a |= (uintptr_t)(stride_elems * 2);
    return (unsigned)(a & (~a + 1));
}

ab_status cuda_gemm(ab_backend *be, const cuda_gemm_args *g) {
    cuda_impl *ci = cuda_of(be);
    ab_status st = AB_OK;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    /* column-major view: D' (N,M) = op(B') op(A'), with A' = B (memory of B), B' = A */
    cublasOperation_t ta = g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, tb = g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    uint64_t a_rows = g->trans_b ? g->K : g->N, a_cols = g->trans_b ? g->N : g->K;
    uint64_t b_rows = g->trans_a ? g->M : g->K, b_cols = g->trans_a ? g->K : g->M;
    cudaDataType_t ctype = g->c_f32 ? CUDA_R_32F : CUDA_R_16BF;
    int batch = g->batch > 0 ? g->batch : 1;
    gemm_algo_entry key;
    memset(&key, 0, sizeof key);
    key.trans_a = g->trans_a; key.trans_b = g->trans_b; key.M = g->M; key.N = g->N; key.K = g->K;
    key.lda = g->lda; key.ldb = g->ldb; key.ldc = g->ldc; key.batch = batch; key.c_f32 = g->c_f32;
    key.has_bias = g->bias != NULL; key.beta_zero = g->beta == 0.0f;
    key.gelu = g->gelu; key.ld_aux = g->gelu ? g->ld_aux : 0;
    key.align_aux = g->gelu ? byte_alignment(g->aux, 0) : 0;
    key.stride_a = batch > 1 ? g->stride_a : 0; key.stride_b = batch > 1 ? g->stride_b : 0;
    key.stride_c = batch > 1 ? g->stride_c : 0;
    key.align_a = byte_alignment(g->A, key.stride_a);
    key.align_b = byte_alignment(g->B, key.stride_b);
    key.align_c = byte_alignment(g->C, key.stride_c * (g->c_f32 ? 2 : 1));
    if (g->C_in) { /* C and D share one alignment preference: the smaller */
        unsigned a_in = byte_alignment(g->C_in, key.stride_c * (g->c_f32 ? 2 : 1));
        if (a_in < key.align_c) key.align_c = a_in;
    }

    LT_TRY(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul descriptor");
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "transa");
    LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "transb");
    if ((g->gelu && (batch > 1 || g->beta != 0.0f || g->c_f32)) || (g->gelu == GEMM_GELU_BACKWARD && g->bias)) {
        st = ab_fail(AB_ERR_INTERNAL, "cuda gemm: GELU epilogue needs batch 1, beta 0, bf16 C and (backward) no bias");
        goto done;
    }
    if (g->bias || g->gelu) {
        cublasLtEpilogue_t ep = g->gelu == GEMM_GELU_FORWARD  ? (g->bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX)
                                : g->gelu == GEMM_GELU_BACKWARD ? CUBLASLT_EPILOGUE_DGELU
                                                                : CUBLASLT_EPILOGUE_BIAS;
        LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep), "epilogue");
    }
    if (g->bias) {
        cudaDataType_t bt = CUDA_R_16BF;
        LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g->bias, sizeof g->bias),
               "bias pointer");
        LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt), "bias type");
    }
    if (g->gelu) { /* aux has C's shape: (N, M) column-major with leading dimension ld_aux */
        int64_t ld_aux = g->ld_aux;
        LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g->aux, sizeof g->aux),
               "GELU aux pointer");
        LT_TRY(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld_aux, sizeof ld_aux), "GELU aux ld");
    }
    LT_TRY(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, a_rows, a_cols, g->ldb), "layout A");
    LT_TRY(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, b_rows, b_cols, g->lda), "layout B");
    LT_TRY(cublasLtMatrixLayoutCreate(&lc, ctype, (uint64_t)g->N, (uint64_t)g->M, g->ldc), "layout C");
    if (batch > 1) {
        LT_TRY(cublasLtMatrixLayoutSetAttribute(la, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch), "batch");
        LT_TRY(cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch), "batch");
        LT_TRY(cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch), "batch");
        int64_t sa = g->stride_b, sb = g->stride_a, sc = g->stride_c;
        LT_TRY(cublasLtMatrixLayoutSetAttribute(la, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sa, sizeof sa), "stride");
        LT_TRY(cublasLtMatrixLayoutSetAttribute(lb, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sb, sizeof sb), "stride");
        LT_TRY(cublasLtMatrixLayoutSetAttribute(lc, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sc, sizeof sc), "stride");
    }

    {
        const cublasLtMatmulAlgo_t *algo = NULL;
        for (int i = 0; i < GEMM_CACHE_SIZE && !algo; i++) {
            gemm_algo_entry *e = &gemm_cache[i];
            if (e->used && e->trans_a == key.trans_a && e->trans_b == key.trans_b && e->M == key.M && e->N == key.N &&
                e->K == key.K && e->lda == key.lda && e->ldb == key.ldb && e->ldc == key.ldc && e->batch == key.batch &&
                e->c_f32 == key.c_f32 && e->has_bias == key.has_bias && e->beta_zero == key.beta_zero &&
                e->gelu == key.gelu && e->ld_aux == key.ld_aux && e->align_aux == key.align_aux &&
                e->stride_a == key.stride_a && e->stride_b == key.stride_b && e->stride_c == key.stride_c &&
                e->align_a == key.align_a && e->align_b == key.align_b && e->align_c == key.align_c)
                algo = &e->algo;
        }
        if (!algo) {
            cublasLtMatmulHeuristicResult_t res;
            int found = 0;
            uint32_t aa = key.align_b, ab = key.align_a, ac = key.align_c; /* A' is B's memory, B' is A's */
            LT_TRY(cublasLtMatmulPreferenceCreate(&pref), "preference");
            LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                        &ci->lt_workspace_bytes, sizeof ci->lt_workspace_bytes),
                   "workspace preference");
            LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa, sizeof aa), "align");
            LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab, sizeof ab), "align");
            LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ac, sizeof ac), "align");
            LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ac, sizeof ac), "align");
            LT_TRY(cublasLtMatmulAlgoGetHeuristic(ci->lt, op, la, lb, lc, lc, pref, 1, &res, &found), "heuristic");
            if (found == 0) {
                st = ab_fail(AB_ERR_DEVICE, "cuda: cuBLASLt has no algorithm for GEMM M=%d N=%d K=%d trans=%d%d batch=%d",
                             g->M, g->N, g->K, g->trans_a, g->trans_b, batch);
                goto done;
            }
            gemm_algo_entry *e = &gemm_cache[gemm_cache_next];
            gemm_cache_next = (gemm_cache_next + 1) % GEMM_CACHE_SIZE;
            *e = key;
            e->algo = res.algo;
            e->used = 1;
            algo = &e->algo;
        }
        LT_TRY(cublasLtMatmul(ci->lt, op, &g->alpha, g->B, la, g->A, lb, &g->beta, g->C_in ? g->C_in : g->C, lc, g->C, lc, algo,
                              ci->lt_workspace, ci->lt_workspace_bytes, ci->stream),
               "matmul");
    }
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    return st;
}

__global__ void fill_ones_kernel(bf16 *x, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) x[i] = f2bf(1.0f);
}

/* dbias (1,OC) += ones (1,N) @ dout (N,OC): a GEMM with M = 1 reads dout once, accumulates in fp32. */
ab_status cuda_bias_grad(ab_backend *be, bf16 *dbias, const bf16 *dout, int N, int OC) {
    cuda_impl *ci = cuda_of(be);
    size_t need = (size_t)N * sizeof(bf16);
    if (ci->ones.buf.bytes < need) {
        AB_TRY(cuda_scratch_reserve(be, &ci->ones, need, MEM_WORKSPACE, "bias-gradient ones vector"));
        fill_ones_kernel<<<cuda_blocks((size_t)N, 256), 256, 0, ci->stream>>>((bf16 *)ci->ones.buf.ptr, (size_t)N);
        AB_TRY(cuda_check_launch("fill_ones"));
    }
    cuda_gemm_args g;
    memset(&g, 0, sizeof g);
    g.M = 1; g.N = OC; g.K = N; g.alpha = 1.0f; g.beta = 1.0f;
    g.A = (const bf16 *)ci->ones.buf.ptr; g.lda = N;
    g.B = dout; g.ldb = OC;
    g.C = dbias; g.ldc = OC;
    return cuda_gemm(be, &g);
}

/* The arguments of a Conv1D layer's forward product: out (N,OC) = inp (N,C) @ weight (C,OC) + bias (OC). */
static cuda_gemm_args linear_forward_args(void *out, const void *inp, const void *weight, const void *bias, int N, int C,
                                          int OC) {
    cuda_gemm_args g;
    memset(&g, 0, sizeof g);
    g.M = N; g.N = OC; g.K = C; g.alpha = 1.0f; g.beta = 0.0f;
    g.A = (const bf16 *)inp; g.lda = C;
    g.B = (const bf16 *)weight; g.ldb = OC;
    g.C = out; g.ldc = OC;
    g.bias = (const bf16 *)bias;
    return g;
}

ab_status cuda_matmul_forward(ab_backend *be, void *out, const void *inp, const void *weight, const void *bias,
                              int N, int C, int OC) {
    int done;
    AB_TRY(cuda_gemm_small_m(be, SMALL_M_PLAIN, out, NULL, inp, NULL, weight, bias, NULL, NULL, N, C, OC, &done));
    if (done) return AB_OK;
    cuda_gemm_args g = linear_forward_args(out, inp, weight, bias, N, C, OC);
    return cuda_gemm(be, &g);
}

ab_status cuda_matmul_backward(ab_backend *be, void *dinp, void *dweight, void *dbias, const void *dout,
                               const void *inp, const void *weight, int N, int C, int OC) {
    cuda_gemm_args g;
    if (dinp) { /* dinp (N,C) += dout (N,OC) @ W^T (OC,C) */
        memset(&g, 0, sizeof g);
        g.trans_b = 1; g.M = N; g.N = C; g.K = OC; g.alpha = 1.0f; g.beta = 1.0f;
        g.A = (const bf16 *)dout; g.lda = OC;
        g.B = (const bf16 *)weight; g.ldb = OC;
        g.C = dinp; g.ldc = C;
        AB_TRY(cuda_gemm(be, &g));
    }
    if (dweight) { /* dW (C,OC) += inp^T (C,N) @ dout (N,OC) */
        memset(&g, 0, sizeof g);
        g.trans_a = 1; g.M = C; g.N = OC; g.K = N; g.alpha = 1.0f; g.beta = 1.0f;
        g.A = (const bf16 *)inp; g.lda = C;
        g.B = (const bf16 *)dout; g.ldb = OC;
        g.C = dweight; g.ldc = OC;
        AB_TRY(cuda_gemm(be, &g));
    }
    if (dbias) AB_TRY(cuda_bias_grad(be, (bf16 *)dbias, (const bf16 *)dout, N, OC));
    return AB_OK;
}

ab_status cuda_matmul_residual_forward(ab_backend *be, void *out, const void *inp, const void *weight, const void *bias,
                                       const void *residual, int N, int C, int OC) {
    /* out (N,OC) = residual (N,OC) + inp (N,C) @ weight (C,OC) + bias (OC): residual read as C with beta 1 */
    int done;
    AB_TRY(cuda_gemm_small_m(be, SMALL_M_RESIDUAL, out, NULL, inp, NULL, weight, bias, residual, NULL, N, C, OC, &done));
    if (done) return AB_OK;
    cuda_gemm_args g = linear_forward_args(out, inp, weight, bias, N, C, OC);
    g.beta = 1.0f;
    g.C_in = residual;
    return cuda_gemm(be, &g);
}

ab_status cuda_matmul_gelu_forward(ab_backend *be, void *out, void *pre, const void *inp, const void *weight,
                                   const void *bias, int N, int C, int OC) {
    /* pre (N,OC) = inp (N,C) @ weight (C,OC) + bias (OC); out = gelu(pre): one GEMM, both written by the epilogue */
    int done;
    AB_TRY(cuda_gemm_small_m(be, SMALL_M_GELU, out, pre, inp, NULL, weight, bias, NULL, NULL, N, C, OC, &done));
    if (done) return AB_OK;
    cuda_gemm_args g = linear_forward_args(out, inp, weight, bias, N, C, OC);
    g.gelu = GEMM_GELU_FORWARD; g.aux = pre; g.ld_aux = OC;
    return cuda_gemm(be, &g);
}

ab_status cuda_layernorm_input(ab_backend *be, const ab_layernorm_input *ln, const void *x, const void *weight, int N,
                               int C, int OC, const void **in, const ab_layernorm_input **fold) {
    *in = x;
    *fold = ln;
    if (!ln || cuda_gemm_small_m_takes(be, N, C, OC, weight, x, 1)) return AB_OK;
    AB_TRY(be->ops->layernorm_forward(be, ln->out, ln->mean, ln->rstd, x, ln->w, ln->b, N, C));
    *in = ln->out;
    *fold = NULL;
    return AB_OK;
}

ab_status cuda_layernorm_product(ab_backend *be, const ab_layernorm_input *ln, void *out, void *pre, const void *x,
                                 const void *weight, const void *bias, const small_m_tail *tail, int N, int C, int OC,
                                 int *small_m) {
    const void *in;
    const ab_layernorm_input *fold;
    AB_TRY(cuda_layernorm_input(be, ln, x, weight, N, C, OC, &in, &fold));
    AB_TRY(cuda_gemm_small_m(be, pre ? SMALL_M_GELU : SMALL_M_PLAIN, out, pre, in, fold, weight, bias, NULL, tail, N, C, OC,
                             small_m));
    if (*small_m) return AB_OK;
    if (fold) return ab_fail(AB_ERR_INTERNAL, "cuda: the small-M kernel refused a shape it takes");
    return pre ? cuda_matmul_gelu_forward(be, out, pre, in, weight, bias, N, C, OC)
               : cuda_matmul_forward(be, out, in, weight, bias, N, C, OC);
}

ab_status cuda_layernorm_matmul_forward(ab_backend *be, const ab_layernorm_input *ln, void *out, void *pre, const void *x,
                                        const void *weight, const void *bias, int N, int C, int OC) {
    int small_m;
    return cuda_layernorm_product(be, ln, out, pre, x, weight, bias, NULL, N, C, OC, &small_m);
}

/* One row, with the next block's first product (a pair for mla): the four as one chained launch
 * (cuda_small_m_chain); the last block's three (t->last, which the model sets for the variants whose blocks chain),
 * the logits after them. Between blocks without the next product (a variant without decode_input) the three alone
 * were slower chained than as three kernels (H200, batch-1 decode: linear 0.270 -> 0.292 ms, lsh 0.385 -> 0.433, mla
 * 0.382 -> 0.393), so they are not; the last block's (H200, eighth session): gqa 0.259 -> 0.254, sliding_window 0.246
 * -> 0.243, flash 0.264 -> 0.263, and for lsh while its other blocks were not chained 0.341 -> 0.348 (docs/PERF.md). */
ab_status cuda_block_tail_forward(ab_backend *be, const ab_block_tail *t, int N, int C, int *done, int *next_done) {
    *done = *next_done = 0;
    const ab_decode_input *nx = t->next;
    if (N != 1 || (nx ? nx->K != C : !t->last)) return AB_OK;
    small_m_step steps[4] = {
        {SMALL_M_RESIDUAL, t->res2, NULL, t->atty, t->proj_w, t->proj_b, t->residual, NULL, NULL, NULL, NULL, C, C, 0},
        {SMALL_M_GELU, t->act, t->pre, t->res2, t->fc_w, t->fc_b, NULL, &t->ln, NULL, NULL, NULL, C, 4 * C, 0},
        {SMALL_M_RESIDUAL, t->out, NULL, t->act, t->fcproj_w, t->fcproj_b, t->res2, NULL, NULL, NULL, NULL, 4 * C, C, 0},
    };
    if (nx) {
        const small_m_step next = {SMALL_M_PLAIN, nx->out, NULL, t->out, nx->weight, nx->bias, NULL, &t->next_ln,
                                   nx->append.cache ? &nx->append : NULL, nx->out2, nx->weight2, nx->K, nx->OC, nx->OC2};
        steps[3] = next;
    }
    AB_TRY(cuda_small_m_chain(be, steps, nx ? 4 : 3, done));
    *next_done = nx ? *done : 0;
    return AB_OK;
}

ab_status cuda_gelu_matmul_backward(ab_backend *be, void *dpre, void *dweight, void *dbias, const void *dout,
                                    const void *act, const void *pre, const void *weight, int N, int C, int OC) {
    cuda_gemm_args g; /* dpre (N,C) = gelu'(pre) * (dout (N,OC) @ W^T (OC,C)): written, the GELU in the epilogue */
    memset(&g, 0, sizeof g);
    g.trans_b = 1; g.M = N; g.N = C; g.K = OC; g.alpha = 1.0f; g.beta = 0.0f;
    g.A = (const bf16 *)dout; g.lda = OC;
    g.B = (const bf16 *)weight; g.ldb = OC;
    g.C = dpre; g.ldc = C;
    g.gelu = GEMM_GELU_BACKWARD; g.aux = (void *)pre; g.ld_aux = C;
    AB_TRY(cuda_gemm(be, &g));
    /* dW (C,OC) += act^T @ dout, dbias (OC) += colsum(dout): as matmul_backward */
    return cuda_matmul_backward(be, NULL, dweight, dbias, dout, act, weight, N, C, OC);
}
