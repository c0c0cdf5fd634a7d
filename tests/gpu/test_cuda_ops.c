/*
 * test_cuda_ops.c — every op of the CUDA backend against the CPU backend (fp32) on random inputs.
 *
 * Inputs are rounded to bf16 first so both backends compute on identical values; what remains is bf16
 * rounding of CUDA outputs (relative 2^-8 = 0.0039 per rounding) and fp32 summation order. Each tolerance
 * says why it is what it is. Outputs sit between guard bytes; backward ops start from non-zero gradients to
 * check that they accumulate. Shapes are odd on purpose (tails of the 8-wide vector paths, partial rows). The forward
 * products are also run at decode sizes (1 to 16 rows: the small-M kernel with its K split over blocks up to
 * CUDA_SMALL_M rows, cuBLASLt above and for the shapes the kernel leaves to it) on GPT-2's projection shapes, and the
 * decode-sized products run twice (the same bits expected); the logits at decode sizes; a decode step's chain of
 * dependent products and LayerNorms queued, and replayed from a CUDA graph, against one op at a time; and a decode
 * block's three products after its attention as one launch (block_tail_forward), against the CPU and, chained, against
 * itself run one launch at a time.
 */
#include <math.h>

#include "test_cuda_util.h"

static ab_backend cpu, cuda;
static ab_rng rng;

/* ------------------------------------------------------------------ memory and copies */

static void test_memory(void) {
    size_t n = 1001;
    float *x = tc_randn(&rng, n, 1.0, 0.0);
    gbuf g = g_new(n, 2);
    g_set(&g, x);
    /* exact: values are bf16 already, upload/download must not change them */
    g_check("upload_download_f32[n=1001]", &g, x, 0.0, 0.0);
    gbuf h = g_new(n, 2);
    tc_check_status(cuda.ops->copy(&cuda, h.ptr, g.ptr, n * 2), "copy");
    g_check("copy[n=1001]", &h, x, 0.0, 0.0);
    tc_check_status(cuda.ops->memzero(&cuda, h.ptr, n * 2), "memzero");
    float *z = calloc(n, sizeof *z);
    g_check("memzero[n=1001]", &h, z, 0.0, 0.0);
    size_t before = cuda.mem.current_total;
    ab_buffer b;
    ab_status s = cuda.ops->alloc(&cuda, &b, 12345, MEM_ACTIVATIONS);
    TEST_TRUE("alloc_accounting", s == AB_OK && cuda.mem.current_total == before + 12345 &&
                                      cuda.mem.current[MEM_ACTIVATIONS] >= 12345,
              "current_total %zu -> %zu", before, cuda.mem.current_total);
    cuda.ops->free(&cuda, &b);
    TEST_TRUE("free_accounting", cuda.mem.current_total == before && b.ptr == NULL, "current_total %zu", cuda.mem.current_total);
    /* out of memory: a clear AB_ERR_OOM naming the bytes and the category, nothing accounted (skipped
     * under compute-sanitizer with AB_TEST_NO_OOM=1, which reports the failing cudaMalloc as an API error) */
    if (getenv("AB_TEST_NO_OOM")) goto skip_oom;
    s = cuda.ops->alloc(&cuda, &b, (size_t)1 << 50, MEM_ATTENTION);
    TEST_TRUE("alloc_oom_message", s == AB_ERR_OOM && strstr(ab_error(), "attention") && strstr(ab_error(), "1125899906842624") &&
                                       cuda.mem.current_total == before,
              "status %d message '%s'", (int)s, ab_error());
skip_oom:
    g_free(&g);
    g_free(&h);
    free(x);
    free(z);
}

/* ------------------------------------------------------------------ encoder */

static void test_encoder(int B, int T, int C, int V) {
    char name[128];
    size_t BT = (size_t)B * T;
    float *wte = tc_randn(&rng, (size_t)V * C, 1.0, 0.0), *wpe = tc_randn(&rng, (size_t)T * C, 1.0, 0.0);
    int32_t *tok = malloc(BT * sizeof *tok);
    for (size_t i = 0; i < BT; i++) tok[i] = (int32_t)ab_rng_below(&rng, (uint32_t)V); /* V small: repeats */
    float *out = calloc(BT * C, sizeof(float));
    cpu.ops->encoder_forward(&cpu, out, tok, wte, wpe, NULL, B, T, C);
    gbuf gwte = g_new((size_t)V * C, 2), gwpe = g_new((size_t)T * C, 2), gtok = g_new(BT, 4), gout = g_new(BT * C, 2);
    g_set(&gwte, wte);
    g_set(&gwpe, wpe);
    g_set_i32(&gtok, tok);
    tc_check_status(cuda.ops->encoder_forward(&cuda, gout.ptr, gtok.ptr, gwte.ptr, gwpe.ptr, NULL, B, T, C), "encoder_forward");
    snprintf(name, sizeof name, "encoder_forward[B=%d,T=%d,C=%d]", B, T, C);
    g_check(name, &gout, out, 0.0, 1.0 / 256); /* one bf16 rounding of a sum of two bf16 values */
    if (T > 1) { /* T-1 positions from pos0 = 1, read on the device */
        const int32_t pos0 = 1;
        gbuf gpos = g_new(1, 4), gout1 = g_new((size_t)B * (T - 1) * C, 2);
        g_set_i32(&gpos, &pos0);
        cpu.ops->encoder_forward(&cpu, out, tok, wte, wpe, &pos0, B, T - 1, C);
        tc_check_status(cuda.ops->encoder_forward(&cuda, gout1.ptr, gtok.ptr, gwte.ptr, gwpe.ptr, gpos.ptr, B, T - 1, C),
                        "encoder_forward(pos0)");
        snprintf(name, sizeof name, "encoder_forward[B=%d,T=%d,C=%d,pos0=1]", B, T - 1, C);
        g_check(name, &gout1, out, 0.0, 1.0 / 256);
        g_free(&gpos); g_free(&gout1);
    }

    float *dout = tc_randn(&rng, BT * C, 1.0, 0.0);
    float *dwte = tc_randn(&rng, (size_t)V * C, 1.0, 0.0), *dwpe = tc_randn(&rng, (size_t)T * C, 1.0, 0.0);
    gbuf gdout = g_new(BT * C, 2);
    g_set(&gdout, dout);
    g_set(&gwte, dwte);
    g_set(&gwpe, dwpe);
    cpu.ops->encoder_backward(&cpu, dwte, dwpe, dout, tok, B, T, C);
    tc_check_status(cuda.ops->encoder_backward(&cuda, gwte.ptr, gwpe.ptr, gdout.ptr, gtok.ptr, B, T, C), "encoder_backward");
    /* fp32 sums of up to B*T/V + 1 terms, one bf16 rounding of a value of size ~sqrt(count) */
    snprintf(name, sizeof name, "encoder_backward.dwte[B=%d,T=%d,C=%d,V=%d]", B, T, C, V);
    g_check(name, &gwte, dwte, 0.02, 1.0 / 128);
    snprintf(name, sizeof name, "encoder_backward.dwpe[B=%d,T=%d,C=%d]", B, T, C);
    g_check(name, &gwpe, dwpe, 0.02, 1.0 / 128);
    g_free(&gwte); g_free(&gwpe); g_free(&gtok); g_free(&gout); g_free(&gdout);
    free(wte); free(wpe); free(tok); free(out); free(dout); free(dwte); free(dwpe);
}

/* ------------------------------------------------------------------ layernorm */

static void test_layernorm(int N, int C) {
    char name[128];
    float *x = tc_randn(&rng, (size_t)N * C, 2.0, 0.5), *w = tc_randn(&rng, C, 0.3, 1.0), *b = tc_randn(&rng, C, 0.3, 0.0);
    float *out = calloc((size_t)N * C, 4), *mean = calloc(N, 4), *rstd = calloc(N, 4);
    cpu.ops->layernorm_forward(&cpu, out, mean, rstd, x, w, b, N, C);
    gbuf gx = g_new((size_t)N * C, 2), gw = g_new(C, 2), gb = g_new(C, 2), go = g_new((size_t)N * C, 2);
    gbuf gm = g_new(N, 4), gr = g_new(N, 4);
    g_set(&gx, x); g_set(&gw, w); g_set(&gb, b);
    tc_check_status(cuda.ops->layernorm_forward(&cuda, go.ptr, gm.ptr, gr.ptr, gx.ptr, gw.ptr, gb.ptr, N, C), "layernorm_forward");
    snprintf(name, sizeof name, "layernorm_forward.out[N=%d,C=%d]", N, C);
    g_check(name, &go, out, 1e-2, 1.0 / 128); /* output rounded to bf16 (2^-8) on values ~ 3; fp32 statistics */
    snprintf(name, sizeof name, "layernorm_forward.mean[N=%d,C=%d]", N, C);
    g_check(name, &gm, mean, 1e-5, 1e-4); /* fp32 sums in another order, inputs identical */
    snprintf(name, sizeof name, "layernorm_forward.rstd[N=%d,C=%d]", N, C);
    g_check(name, &gr, rstd, 1e-5, 1e-4);

    float *dout = tc_randn(&rng, (size_t)N * C, 1.0, 0.0), *dinp = tc_randn(&rng, (size_t)N * C, 1.0, 0.0);
    float *dw = tc_randn(&rng, C, 1.0, 0.0), *db = tc_randn(&rng, C, 1.0, 0.0);
    gbuf gd = g_new((size_t)N * C, 2), gdi = g_new((size_t)N * C, 2), gdw = g_new(C, 2), gdb = g_new(C, 2);
    g_set(&gd, dout); g_set(&gdi, dinp); g_set(&gdw, dw); g_set(&gdb, db);
    cpu.ops->layernorm_backward(&cpu, dinp, dw, db, dout, x, w, mean, rstd, N, C);
    tc_check_status(cuda.ops->layernorm_backward(&cuda, gdi.ptr, gdw.ptr, gdb.ptr, gd.ptr, gx.ptr, gw.ptr, gm.ptr, gr.ptr, N, C),
                    "layernorm_backward");
    /* dinp: fp32 row reductions, bf16 output of O(1) values accumulated onto O(1) values */
    snprintf(name, sizeof name, "layernorm_backward.dinp[N=%d,C=%d]", N, C);
    g_check(name, &gdi, dinp, 2e-2, 1.0 / 128);
    /* dweight / dbias: fp32 sums over N rows (size ~ sqrt(N)), one bf16 rounding */
    snprintf(name, sizeof name, "layernorm_backward.dweight[N=%d,C=%d]", N, C);
    g_check(name, &gdw, dw, 2e-2, 1.0 / 128);
    snprintf(name, sizeof name, "layernorm_backward.dbias[N=%d,C=%d]", N, C);
    g_check(name, &gdb, db, 2e-2, 1.0 / 128);
    g_free(&gx); g_free(&gw); g_free(&gb); g_free(&go); g_free(&gm); g_free(&gr);
    g_free(&gd); g_free(&gdi); g_free(&gdw); g_free(&gdb);
    free(x); free(w); free(b); free(out); free(mean); free(rstd); free(dout); free(dinp); free(dw); free(db);
}

/* ------------------------------------------------------------------ matmul */

static void test_matmul(int N, int C, int OC, int with_bias) {
    char name[160];
    double ws = 1.0 / sqrt((double)C);
    float *x = tc_randn(&rng, (size_t)N * C, 1.0, 0.0), *w = tc_randn(&rng, (size_t)C * OC, ws, 0.0);
    float *b = with_bias ? tc_randn(&rng, OC, 0.5, 0.0) : NULL;
    float *out = calloc((size_t)N * OC, 4);
    cpu.ops->matmul_forward(&cpu, out, x, w, b, N, C, OC);
    gbuf gx = g_new((size_t)N * C, 2), gw = g_new((size_t)C * OC, 2), gb = g_new(OC, 2), go = g_new((size_t)N * OC, 2);
    g_set(&gx, x); g_set(&gw, w);
    if (b) g_set(&gb, b);
    tc_check_status(cuda.ops->matmul_forward(&cuda, go.ptr, gx.ptr, gw.ptr, b ? gb.ptr : NULL, N, C, OC), "matmul_forward");
    /* outputs O(1): fp32 accumulation on both sides, one bf16 rounding of the result */
    snprintf(name, sizeof name, "matmul_forward[N=%d,C=%d,OC=%d,bias=%d]", N, C, OC, with_bias);
    g_check(name, &go, out, 1e-2, 1.0 / 128);

    float *dout = tc_randn(&rng, (size_t)N * OC, 1.0, 0.0), *dinp = tc_randn(&rng, (size_t)N * C, 1.0, 0.0);
    float *dw = tc_randn(&rng, (size_t)C * OC, 1.0, 0.0), *db = tc_randn(&rng, OC, 1.0, 0.0);
    gbuf gd = g_new((size_t)N * OC, 2), gdi = g_new((size_t)N * C, 2), gdw = g_new((size_t)C * OC, 2), gdb = g_new(OC, 2);
    g_set(&gd, dout); g_set(&gdi, dinp); g_set(&gdw, dw); g_set(&gdb, db);
    cpu.ops->matmul_backward(&cpu, dinp, dw, with_bias ? db : NULL, dout, x, w, N, C, OC);
    tc_check_status(cuda.ops->matmul_backward(&cuda, gdi.ptr, gdw.ptr, with_bias ? gdb.ptr : NULL, gd.ptr, gx.ptr, gw.ptr, N,
                                              C, OC),
                    "matmul_backward");
    /* dinp O(1); dweight, dbias sums over N rows (size ~ sqrt(N)): fp32 accumulation, one bf16 rounding */
    snprintf(name, sizeof name, "matmul_backward.dinp[N=%d,C=%d,OC=%d]", N, C, OC);
    g_check(name, &gdi, dinp, 2e-2, 1.0 / 128);
    snprintf(name, sizeof name, "matmul_backward.dweight[N=%d,C=%d,OC=%d]", N, C, OC);
    g_check(name, &gdw, dw, 2e-2 * sqrt(N / 32.0 + 1), 1.0 / 128);
    snprintf(name, sizeof name, "matmul_backward.dbias[N=%d,C=%d,OC=%d,bias=%d]", N, C, OC, with_bias);
    g_check(name, &gdb, db, 2e-2 * sqrt(N / 32.0 + 1), 1.0 / 128);
    g_free(&gx); g_free(&gw); g_free(&gb); g_free(&go); g_free(&gd); g_free(&gdi); g_free(&gdw); g_free(&gdb);
    free(x); free(w); free(b); free(out); free(dout); free(dinp); free(dw); free(db);
}

/* ------------------------------------------------------------------ fused projection + residual */

static void test_matmul_residual(int N, int C, int OC, int with_bias) {
    char name[160];
    TEST_TRUE("matmul_residual_present", cuda.ops->matmul_residual_forward != NULL, "cuda lacks it");
    if (!cuda.ops->matmul_residual_forward) return;
    float *x = tc_randn(&rng, (size_t)N * C, 1.0, 0.0), *w = tc_randn(&rng, (size_t)C * OC, 1.0 / sqrt((double)C), 0.0);
    float *b = with_bias ? tc_randn(&rng, OC, 0.5, 0.0) : NULL, *res = tc_randn(&rng, (size_t)N * OC, 1.0, 0.0);
    float *out = calloc((size_t)N * OC, 4), *junk = tc_randn(&rng, (size_t)N * OC, 1.0, 0.0);
    cpu.ops->matmul_forward(&cpu, out, x, w, b, N, C, OC);
    cpu.ops->residual_forward(&cpu, out, out, res, (size_t)N * OC);
    gbuf gx = g_new((size_t)N * C, 2), gw = g_new((size_t)C * OC, 2), gb = g_new(OC, 2), gr = g_new((size_t)N * OC, 2);
    gbuf go = g_new((size_t)N * OC, 2);
    g_set(&gx, x); g_set(&gw, w); g_set(&gr, res); g_set(&go, junk); /* out is written: the junk must not show */
    if (b) g_set(&gb, b);
    tc_check_status(cuda.ops->matmul_residual_forward(&cuda, go.ptr, gx.ptr, gw.ptr, b ? gb.ptr : NULL, gr.ptr, N, C, OC),
                    "matmul_residual_forward");
    /* O(1) values: fp32 product + bias + residual, one bf16 rounding (the plain path rounds twice) */
    snprintf(name, sizeof name, "matmul_residual_forward[N=%d,C=%d,OC=%d,bias=%d]", N, C, OC, with_bias);
    g_check(name, &go, out, 1e-2, 1.0 / 128);
    g_check("matmul_residual_forward.residual_unchanged", &gr, res, 0.0, 0.0);
    g_free(&gx); g_free(&gw); g_free(&gb); g_free(&gr); g_free(&go);
    free(x); free(w); free(b); free(res); free(out); free(junk);
}

/* ------------------------------------------------------------------ fused MLP ops (GELU in the GEMM epilogues) */

/* c_fc + gelu forward (N,C) -> (N,H) and gelu' + c_proj backward (N,H) -> (N,C) against the CPU backend's
 * plain ops composed as the model composes them; H and C multiples of 8 (cuBLASLt's aux leading dimension). */
static void test_mlp_fused(int N, int C, int H) {
    char name[160];
    TEST_TRUE("fused_ops_present", cuda.ops->matmul_gelu_forward && cuda.ops->gelu_matmul_backward, "cuda lacks them");
    if (!cuda.ops->matmul_gelu_forward || !cuda.ops->gelu_matmul_backward) return;
    float *x = tc_randn(&rng, (size_t)N * C, 1.0, 0.0), *w = tc_randn(&rng, (size_t)C * H, 1.0 / sqrt((double)C), 0.0);
    float *b = tc_randn(&rng, H, 0.5, 0.0);
    float *pre = calloc((size_t)N * H, 4), *act = calloc((size_t)N * H, 4);
    cpu.ops->matmul_forward(&cpu, pre, x, w, b, N, C, H);
    cpu.ops->gelu_forward(&cpu, act, pre, (size_t)N * H);
    gbuf gx = g_new((size_t)N * C, 2), gw = g_new((size_t)C * H, 2), gb = g_new(H, 2);
    gbuf gpre = g_new((size_t)N * H, 2), gact = g_new((size_t)N * H, 2);
    g_set(&gx, x); g_set(&gw, w); g_set(&gb, b);
    tc_check_status(cuda.ops->matmul_gelu_forward(&cuda, gact.ptr, gpre.ptr, gx.ptr, gw.ptr, gb.ptr, N, C, H),
                    "matmul_gelu_forward");
    /* pre as matmul_forward (fp32 accumulation, one bf16 rounding); gelu of the fp32 pre-activation, one
     * bf16 rounding (the plain path rounds pre first: within the same 2^-8) */
    snprintf(name, sizeof name, "matmul_gelu_forward.pre[N=%d,C=%d,H=%d]", N, C, H);
    g_check(name, &gpre, pre, 1e-2, 1.0 / 128);
    snprintf(name, sizeof name, "matmul_gelu_forward.out[N=%d,C=%d,H=%d]", N, C, H);
    g_check(name, &gact, act, 1e-2, 1.0 / 128);

    /* backward of out = act @ w2 (H,C) + b2 from identical bf16 pre / act on both sides */
    for (size_t i = 0; i < (size_t)N * H; i++) act[i] = tc_round_bf16(act[i]), pre[i] = tc_round_bf16(pre[i]);
    cpu.ops->gelu_forward(&cpu, act, pre, (size_t)N * H);
    for (size_t i = 0; i < (size_t)N * H; i++) act[i] = tc_round_bf16(act[i]);
    float *w2 = tc_randn(&rng, (size_t)H * C, 1.0 / sqrt((double)H), 0.0), *dout = tc_randn(&rng, (size_t)N * C, 1.0, 0.0);
    float *dw = tc_randn(&rng, (size_t)H * C, 1.0, 0.0), *db = tc_randn(&rng, C, 1.0, 0.0);
    float *dact = calloc((size_t)N * H, 4), *dpre = calloc((size_t)N * H, 4), *junk = tc_randn(&rng, (size_t)N * H, 1.0, 0.0);
    gbuf gw2 = g_new((size_t)H * C, 2), gd = g_new((size_t)N * C, 2), gdw = g_new((size_t)H * C, 2), gdb = g_new(C, 2);
    gbuf gdpre = g_new((size_t)N * H, 2);
    g_set(&gpre, pre); g_set(&gact, act); g_set(&gw2, w2); g_set(&gd, dout); g_set(&gdw, dw); g_set(&gdb, db);
    g_set(&gdpre, junk); /* dpre is written, not accumulated: whatever was there must not show */
    cpu.ops->matmul_backward(&cpu, dact, dw, db, dout, act, w2, N, H, C);
    cpu.ops->gelu_backward(&cpu, dpre, pre, dact, (size_t)N * H);
    tc_check_status(cuda.ops->gelu_matmul_backward(&cuda, gdpre.ptr, gdw.ptr, gdb.ptr, gd.ptr, gact.ptr, gpre.ptr, gw2.ptr,
                                                   N, H, C),
                    "gelu_matmul_backward");
    /* dpre O(1): fp32 dout @ W^T times gelu'(pre) in fp32, one bf16 rounding */
    snprintf(name, sizeof name, "gelu_matmul_backward.dpre[N=%d,H=%d,C=%d]", N, H, C);
    g_check(name, &gdpre, dpre, 1e-2, 1.0 / 128);
    /* dweight, dbias: as matmul_backward (sums over N rows, one bf16 rounding onto random start values) */
    snprintf(name, sizeof name, "gelu_matmul_backward.dweight[N=%d,H=%d,C=%d]", N, H, C);
    g_check(name, &gdw, dw, 2e-2 * sqrt(N / 32.0 + 1), 1.0 / 128);
    snprintf(name, sizeof name, "gelu_matmul_backward.dbias[N=%d,H=%d,C=%d]", N, H, C);
    g_check(name, &gdb, db, 2e-2 * sqrt(N / 32.0 + 1), 1.0 / 128);
    g_free(&gx); g_free(&gw); g_free(&gb); g_free(&gpre); g_free(&gact);
    g_free(&gw2); g_free(&gd); g_free(&gdw); g_free(&gdb); g_free(&gdpre);
    free(x); free(w); free(b); free(pre); free(act); free(w2); free(dout); free(dw); free(db); free(dact); free(dpre);
    free(junk);
}

/* ------------------------------------------------------------------ LayerNorm folded into the product after it */

/* layernorm_matmul_forward (a decode step's ln_2 + c_fc + GELU, or with pre NULL its ln_1 + c_attn) against the CPU's
 * layernorm_forward, the bf16 rounding of its output (what cuda's LayerNorm writes and the product reads) and
 * matmul_forward (+ gelu). With one row the small-M kernel normalises it itself (its statistics summed in another
 * order: a few LN outputs may round to the neighbouring bf16); with more, LN(x) is written to ln->out first, which is
 * checked too. The residual stream is large on purpose (offset 3, scale 4): a one-pass variance would lose it. */
static void test_layernorm_matmul(int N, int C, int OC, int gelu) {
    char name[160];
    float *x = tc_randn(&rng, (size_t)N * C, 4.0, 3.0), *lw = tc_randn(&rng, C, 0.5, 1.0), *lb = tc_randn(&rng, C, 0.2, 0.0);
    float *w = tc_randn(&rng, (size_t)C * OC, 1.0 / sqrt((double)C), 0.0), *b = tc_randn(&rng, OC, 0.5, 0.0);
    float *ln = calloc((size_t)N * C, 4), *stats = calloc((size_t)2 * N, 4), *pre = calloc((size_t)N * OC, 4);
    float *out = calloc((size_t)N * OC, 4);
    cpu.ops->layernorm_forward(&cpu, ln, stats, stats + N, x, lw, lb, N, C);
    for (size_t i = 0; i < (size_t)N * C; i++) ln[i] = tc_round_bf16(ln[i]);
    cpu.ops->matmul_forward(&cpu, pre, ln, w, b, N, C, OC);
    if (gelu) cpu.ops->gelu_forward(&cpu, out, pre, (size_t)N * OC);
    else memcpy(out, pre, (size_t)N * OC * 4);
    gbuf gx = g_new((size_t)N * C, 2), glw = g_new(C, 2), glb = g_new(C, 2), gw = g_new((size_t)C * OC, 2), gb = g_new(OC, 2);
    gbuf gln = g_new((size_t)N * C, 2), gst = g_new((size_t)2 * N, 4), gpre = g_new((size_t)N * OC, 2);
    gbuf gout = g_new((size_t)N * OC, 2);
    g_set(&gx, x); g_set(&glw, lw); g_set(&glb, lb); g_set(&gw, w); g_set(&gb, b);
    const ab_layernorm_input lni = {glw.ptr, glb.ptr, gln.ptr, gst.ptr, (float *)gst.ptr + N};
    tc_check_status(cuda.ops->layernorm_matmul_forward(&cuda, &lni, gout.ptr, gelu ? gpre.ptr : NULL, gx.ptr, gw.ptr, gb.ptr,
                                                       N, C, OC), "layernorm_matmul_forward");
    /* as matmul_forward's checks: fp32 accumulation, one bf16 rounding (a flipped LN rounding adds ~2^-8 |w| per
     * element, far inside) */
    snprintf(name, sizeof name, "layernorm_matmul_forward%s.out[N=%d,C=%d,OC=%d]", gelu ? "+gelu" : "", N, C, OC);
    g_check(name, &gout, out, 1e-2, 1.0 / 128);
    if (gelu) {
        snprintf(name, sizeof name, "layernorm_matmul_forward+gelu.pre[N=%d,C=%d,OC=%d]", N, C, OC);
        g_check(name, &gpre, pre, 1e-2, 1.0 / 128);
    }
    if (N > 1) { /* written out first */
        snprintf(name, sizeof name, "layernorm_matmul_forward.ln_out[N=%d,C=%d]", N, C);
        g_check(name, &gln, ln, 1e-2, 1.0 / 128);
    }
    g_free(&gx); g_free(&glw); g_free(&glb); g_free(&gw); g_free(&gb); g_free(&gln); g_free(&gst); g_free(&gpre);
    g_free(&gout);
    free(x); free(lw); free(lb); free(w); free(b); free(ln); free(stats); free(pre); free(out);
}

/* ------------------------------------------------------------------ decode-sized products */

/* Products of at most CUDA_SMALL_M (4) rows (decode) run the bandwidth-bound kernel of cuda_gemm_small.cu, which
 * splits K over blocks and adds the splits in a fixed order: two runs give bit-identical outputs. */
static void test_small_m_deterministic(int M, int C, int OC) {
    char name[160];
    float *x = tc_randn(&rng, (size_t)M * C, 1.0, 0.0), *w = tc_randn(&rng, (size_t)C * OC, 1.0 / sqrt((double)C), 0.0);
    float *b = tc_randn(&rng, OC, 0.5, 0.0);
    gbuf gx = g_new((size_t)M * C, 2), gw = g_new((size_t)C * OC, 2), gb = g_new(OC, 2), go = g_new((size_t)M * OC, 2);
    g_set(&gx, x); g_set(&gw, w); g_set(&gb, b);
    tc_check_status(cuda.ops->matmul_forward(&cuda, go.ptr, gx.ptr, gw.ptr, gb.ptr, M, C, OC), "matmul_forward");
    float *first = g_get(&go, NULL);
    tc_check_status(cuda.ops->matmul_forward(&cuda, go.ptr, gx.ptr, gw.ptr, gb.ptr, M, C, OC), "matmul_forward");
    snprintf(name, sizeof name, "matmul_forward.deterministic[N=%d,C=%d,OC=%d]", M, C, OC);
    g_check(name, &go, first, 0.0, 0.0);
    g_free(&gx); g_free(&gw); g_free(&gb); g_free(&go);
    free(x); free(w); free(b); free(first);
}

/* A decode step's chain of dependent products, as the model queues them (L blocks of attn.c_proj, ln_2, c_fc + gelu,
 * mlp.c_proj, the next ln_1), each reading what the one before wrote: queued back to back, and recorded as a CUDA
 * graph and replayed, it must give the same bits as the same ops run one at a time with the host waiting for each.
 * With programmatic dependent launch (AB_CUDA_PDL) a product starts before its input is written and waits for it
 * in the kernel: a product that read its input before the wait would show here as a difference. */
typedef struct {
    gbuf la, lb, ma, ra, rb, g, pre; /* ln_1 / ln_2 (M,C), LN statistics (2M), residuals (M,C), gelu and pre (M,4C) */
} chain_bufs;

static void chain_step(const chain_bufs *c, gbuf *const w[3], gbuf *const bias[3], const gbuf *lnw, int M, int C, int sync) {
    /* attn.c_proj: ra = rb + la @ W0, lb = LN(ra); c_fc: g = gelu(lb @ W1); mlp.c_proj: rb = ra + g @ W2, la = LN(rb) */
    float *stats = (float *)c->ma.ptr;
    tc_check_status(cuda.ops->matmul_residual_forward(&cuda, c->ra.ptr, c->la.ptr, w[0]->ptr, bias[0]->ptr, c->rb.ptr, M, C, C),
                    "chain attn.c_proj");
    tc_check_status(cuda.ops->layernorm_forward(&cuda, c->lb.ptr, stats, stats + M, c->ra.ptr, lnw->ptr, bias[0]->ptr, M, C),
                    "chain ln_2");
    if (sync) free(g_get(&c->lb, NULL));
    tc_check_status(cuda.ops->matmul_gelu_forward(&cuda, c->g.ptr, c->pre.ptr, c->lb.ptr, w[1]->ptr, bias[1]->ptr, M, C, 4 * C),
                    "chain c_fc");
    if (sync) free(g_get(&c->g, NULL));
    tc_check_status(cuda.ops->matmul_residual_forward(&cuda, c->rb.ptr, c->g.ptr, w[2]->ptr, bias[2]->ptr, c->ra.ptr, M, 4 * C,
                                                      C), "chain mlp.c_proj");
    tc_check_status(cuda.ops->layernorm_forward(&cuda, c->la.ptr, stats, stats + M, c->rb.ptr, lnw->ptr, bias[0]->ptr, M, C),
                    "chain ln_1");
    if (sync) free(g_get(&c->la, NULL));
}

static void test_small_m_chain(int M, int L) {
    const int C = 768;
    static const int wk[3] = {1, 1, 4}, wn[3] = {1, 4, 1}; /* W0 (C,C), W1 (C,4C), W2 (4C,C) */
    gbuf gw[3], gbias[3], *w[3], *bias[3];
    for (int i = 0; i < 3; i++) {
        float *h = tc_randn(&rng, (size_t)wk[i] * C * wn[i] * C, 1.0 / sqrt((double)wk[i] * C), 0.0);
        float *hb = tc_randn(&rng, (size_t)wn[i] * C, 0.1, 0.0);
        gw[i] = g_new((size_t)wk[i] * C * wn[i] * C, 2); gbias[i] = g_new((size_t)wn[i] * C, 2);
        g_set(&gw[i], h); g_set(&gbias[i], hb);
        w[i] = &gw[i]; bias[i] = &gbias[i];
        free(h); free(hb);
    }
    float *hlw = tc_randn(&rng, C, 0.2, 1.0), *la0 = tc_randn(&rng, (size_t)M * C, 1.0, 0.0);
    float *rb0 = tc_randn(&rng, (size_t)M * C, 1.0, 0.0);
    gbuf lnw = g_new(C, 2);
    g_set(&lnw, hlw);
    chain_bufs c = {g_new((size_t)M * C, 2), g_new((size_t)M * C, 2), g_new(2 * (size_t)M, 4), g_new((size_t)M * C, 2),
                    g_new((size_t)M * C, 2), g_new((size_t)M * 4 * C, 2), g_new((size_t)M * 4 * C, 2)};
    /* the reference: one op at a time */
    g_set(&c.la, la0); g_set(&c.rb, rb0);
    for (int l = 0; l < L; l++) chain_step(&c, w, bias, &lnw, M, C, 1);
    float *ref_la = g_get(&c.la, NULL), *ref_rb = g_get(&c.rb, NULL);
    char name[128];
    /* queued back to back */
    g_set(&c.la, la0); g_set(&c.rb, rb0);
    for (int l = 0; l < L; l++) chain_step(&c, w, bias, &lnw, M, C, 0);
    snprintf(name, sizeof name, "small_m_chain.queued.ln[M=%d,L=%d]", M, L);
    g_check(name, &c.la, ref_la, 0.0, 0.0);
    snprintf(name, sizeof name, "small_m_chain.queued.residual[M=%d,L=%d]", M, L);
    g_check(name, &c.rb, ref_rb, 0.0, 0.0);
    /* recorded once, replayed from the same start */
    if (cuda.ops->graph_begin) {
        void *graph = NULL;
        tc_check_status(cuda.ops->graph_begin(&cuda), "graph_begin");
        for (int l = 0; l < L; l++) chain_step(&c, w, bias, &lnw, M, C, 0);
        tc_check_status(cuda.ops->graph_end(&cuda, &graph), "recording the chain");
        g_set(&c.la, la0); g_set(&c.rb, rb0);
        if (graph) tc_check_status(cuda.ops->graph_launch(&cuda, graph), "graph_launch");
        snprintf(name, sizeof name, "small_m_chain.replayed.ln[M=%d,L=%d]", M, L);
        g_check(name, &c.la, ref_la, 0.0, 0.0);
        snprintf(name, sizeof name, "small_m_chain.replayed.residual[M=%d,L=%d]", M, L);
        g_check(name, &c.rb, ref_rb, 0.0, 0.0);
        cuda.ops->graph_free(&cuda, graph);
    }
    g_free(&c.la); g_free(&c.lb); g_free(&c.ma); g_free(&c.ra); g_free(&c.rb); g_free(&c.g); g_free(&c.pre);
    for (int i = 0; i < 3; i++) { g_free(&gw[i]); g_free(&gbias[i]); }
    g_free(&lnw);
    free(hlw); free(la0); free(rb0); free(ref_la); free(ref_rb);
}

/* Every forward product at decode sizes: M in {1, 2, 3, 4} rows (the small-M kernel's instantiations), 5 and 16
 * (cuBLASLt), on GPT-2's projection shapes and small odd ones (a partial 64-column tile, K shorter than one split),
 * with the three epilogues; then the shapes the kernel leaves to cuBLASLt (an output width not a multiple of 8). */
static void test_small_m(void) {
    static const int rows[] = {1, 2, 3, 4, 5, 16};
    static const int shapes[][2] = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}, {64, 40}, {200, 72}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t j = 0; j < sizeof shapes / sizeof shapes[0]; j++) {
            test_matmul(rows[i], shapes[j][0], shapes[j][1], 1);
            test_matmul_residual(rows[i], shapes[j][0], shapes[j][1], 1);
            test_mlp_fused(rows[i], shapes[j][0], shapes[j][1]);
        }
    test_matmul(5, 200, 72, 0);
    test_matmul_residual(1, 768, 768, 0);
    test_matmul(3, 64, 45, 1);
    test_matmul_residual(2, 96, 37, 1);
    test_small_m_deterministic(4, 3072, 768);
    test_small_m_deterministic(1, 768, 2304);
    test_small_m_chain(1, 12);
    test_small_m_chain(4, 3);
    static const int ln_rows[] = {1, 2, 3, 4, 5, 16};
    for (size_t i = 0; i < sizeof ln_rows / sizeof ln_rows[0]; i++) {
        test_layernorm_matmul(ln_rows[i], 768, 3072, 1); /* ln_2 + c_fc + GELU */
        test_layernorm_matmul(ln_rows[i], 768, 2304, 0); /* ln_1 + c_attn */
    }
    test_layernorm_matmul(1, 1600, 4800, 0); /* gpt2-xl: K split over more blocks, each normalising its own range */
    test_layernorm_matmul(1, 72, 40, 1);
}

/* ------------------------------------------------------------------ a decode block's products in one launch */

typedef struct {
    int C;
    gbuf w[3], b[3], lnw, lnb;    /* attn.c_proj (C,C), c_fc (C,4C), mlp.c_proj (4C,C); ln_2 (C) */
    gbuf atty, res[2], res2, pre, act; /* res[0], res[1]: residual in and out, swapped from block to block */
    float *hw[3], *hb[3], *hlnw, *hlnb;
    /* the next block's first product: qkv (3C) = LN(out; ln_1) @ wa (C,3C) + ba, k | v appended to slot *pos % cap of
     * cache (cap, 1, 2C) */
    gbuf wa, ba, ln1w, ln1b, qkv, cache, pos;
    float *hwa, *hba, *hln1w, *hln1b;
    /* or that product as a pair (mla's q and latent): pq (C) = LN(out) @ wq (C,C), pkv (2C) = LN(out) @ wkv (C,2C),
     * wq | wkv the columns of wa, no bias */
    gbuf wq, wkv, pq, pkv;
} tail_case;

#define TAIL_CAP 3
#define TAIL_POS 4 /* slot 1 */

/* tail_run's next product: none, c_attn with the append, the pair; or none as the model's last block */
enum { TAIL_ALONE, TAIL_NEXT, TAIL_NEXT_PAIR, TAIL_LAST };

static ab_status tail_run(tail_case *t, int N, int from, int with_next, int *done, int *next_done) {
    const int C = t->C;
    const ab_decode_input next = {.out = t->qkv.ptr, .weight = t->wa.ptr, .bias = t->ba.ptr, .K = C, .OC = 3 * C,
                                  .append = {t->cache.ptr, t->pos.ptr, C, 2 * C, TAIL_CAP}};
    const ab_decode_input pair = {.out = t->pq.ptr, .out2 = t->pkv.ptr, .weight = t->wq.ptr, .weight2 = t->wkv.ptr, .K = C,
                                  .OC = C, .OC2 = 2 * C};
    const ab_block_tail bt = {t->res2.ptr, t->pre.ptr, t->act.ptr, t->res[1 - from].ptr, t->atty.ptr, t->res[from].ptr,
                              {t->lnw.ptr, t->lnb.ptr, NULL, NULL, NULL},
                              t->w[0].ptr, t->b[0].ptr, t->w[1].ptr, t->b[1].ptr, t->w[2].ptr, t->b[2].ptr,
                              with_next == TAIL_NEXT ? &next : with_next == TAIL_NEXT_PAIR ? &pair : NULL,
                              {t->ln1w.ptr, t->ln1b.ptr, NULL, NULL, NULL}, with_next == TAIL_LAST};
    return cuda.ops->block_tail_forward(&cuda, &bt, N, C, done, next_done);
}

/* The CPU's block tail on one row, rounded to bf16 where the GPU writes (res2, LN(res2) as the folded LayerNorm
 * rounds it, pre, act, out) */
static void tail_ref(const tail_case *t, const float *atty, const float *residual, float *res2, float *pre, float *act,
                     float *out) {
    const int C = t->C;
    float *ln = calloc((size_t)C, 4), st[2], *mlp = calloc((size_t)C, 4);
    cpu.ops->matmul_forward(&cpu, res2, atty, t->hw[0], t->hb[0], 1, C, C);
    for (int i = 0; i < C; i++) res2[i] = tc_round_bf16(res2[i] + residual[i]);
    cpu.ops->layernorm_forward(&cpu, ln, st, st + 1, res2, t->hlnw, t->hlnb, 1, C);
    tc_round_all(ln, (size_t)C);
    cpu.ops->matmul_forward(&cpu, pre, ln, t->hw[1], t->hb[1], 1, C, 4 * C);
    cpu.ops->gelu_forward(&cpu, act, pre, (size_t)4 * C);
    tc_round_all(pre, (size_t)4 * C);
    tc_round_all(act, (size_t)4 * C);
    cpu.ops->matmul_forward(&cpu, mlp, act, t->hw[2], t->hb[2], 1, 4 * C, C);
    for (int i = 0; i < C; i++) out[i] = tc_round_bf16(mlp[i] + res2[i]);
    free(ln);
    free(mlp);
}

/* LN(x; w, b) (one row of C) rounded to bf16 @ wa + ba (bias: ba or NULL), as the CPU computes the next block's first
 * product */
static void tail_next_ref(const tail_case *t, const float *x, const float *bias, float *qkv) {
    const int C = t->C;
    float *ln = calloc((size_t)C, 4), st[2];
    cpu.ops->layernorm_forward(&cpu, ln, st, st + 1, x, t->hln1w, t->hln1b, 1, C);
    tc_round_all(ln, (size_t)C);
    cpu.ops->matmul_forward(&cpu, qkv, ln, t->hwa, bias, 1, C, 3 * C);
    tc_round_all(qkv, (size_t)3 * C);
    free(ln);
}

/* The model's last block (no next product): its three products chained too where the kernel takes them (must_take),
 * out against the CPU's (res3); nothing queued for the next block. The block's output goes to res[1]. */
static void tail_last_check(tail_case *t, const float *res3, int must_take) {
    char name[160];
    int done = 0, next_done = 1;
    tc_check_status(tail_run(t, 1, 0, TAIL_LAST, &done, &next_done), "block_tail_forward (last block)");
    snprintf(name, sizeof name, "block_tail_forward.last_taken[C=%d]", t->C);
    if (must_take) TEST_TRUE(name, done == 1, "done = %d: the chained kernel refused the shape", done);
    snprintf(name, sizeof name, "block_tail_forward.last_no_next[C=%d]", t->C);
    TEST_TRUE(name, next_done == 0, "next_done = %d without a next product", next_done);
    if (!done) return;
    snprintf(name, sizeof name, "block_tail_forward.last_out[C=%d]", t->C);
    g_check(name, &t->res[1], res3, 1e-2, 1.0 / 128);
}

/* block_tail_forward at one row with the next block's first product (c_attn with ln_1 and the KV append into a small
 * cache, checked slot by slot: only the position's slot written), one chained launch where cuda_small_m_chain takes
 * the shape, against the CPU, and with that product as a pair (mla's q and latent); without it, between blocks, left
 * to the model, and as the model's last block (tail_last_check) chained alone; the same launch again (the same bits);
 * then a chain of L blocks, each block's output the next one's residual, queued back to back and twice replayed from
 * one CUDA graph, against the same blocks run one at a time with the host waiting for each: the chained kernel's grid
 * barrier must be back where it was after every launch, and a launch that read its input before the launch before it
 * had written it would show. More than one row is left to the model (done = 0, nothing written). must_take: the
 * shape fits the chained kernel on any Hopper GPU. */
static void test_block_tail(int C, int L, int must_take) {
    char name[160];
    TEST_TRUE("block_tail_forward_present", cuda.ops->block_tail_forward != NULL, "cuda lacks it");
    if (!cuda.ops->block_tail_forward) return;
    static const int wk[3] = {1, 1, 4}, wn[3] = {1, 4, 1};
    tail_case t = {.C = C};
    for (int i = 0; i < 3; i++) {
        const size_t n = (size_t)wk[i] * C * wn[i] * C;
        t.hw[i] = tc_randn(&rng, n, 1.0 / sqrt((double)wk[i] * C), 0.0);
        t.hb[i] = tc_randn(&rng, (size_t)wn[i] * C, 0.3, 0.0);
        t.w[i] = g_new(n, 2); t.b[i] = g_new((size_t)wn[i] * C, 2);
        g_set(&t.w[i], t.hw[i]); g_set(&t.b[i], t.hb[i]);
    }
    t.hlnw = tc_randn(&rng, C, 0.5, 1.0); t.hlnb = tc_randn(&rng, C, 0.2, 0.0);
    t.lnw = g_new(C, 2); t.lnb = g_new(C, 2);
    g_set(&t.lnw, t.hlnw); g_set(&t.lnb, t.hlnb);
    t.hwa = tc_randn(&rng, (size_t)C * 3 * C, 1.0 / sqrt((double)C), 0.0); t.hba = tc_randn(&rng, (size_t)3 * C, 0.3, 0.0);
    t.hln1w = tc_randn(&rng, C, 0.5, 1.0); t.hln1b = tc_randn(&rng, C, 0.2, 0.0);
    t.wa = g_new((size_t)C * 3 * C, 2); t.ba = g_new((size_t)3 * C, 2); t.ln1w = g_new(C, 2); t.ln1b = g_new(C, 2);
    g_set(&t.wa, t.hwa); g_set(&t.ba, t.hba); g_set(&t.ln1w, t.hln1w); g_set(&t.ln1b, t.hln1b);
    { /* wa's first C columns and the other 2C as the pair's weights */
        float *hq = malloc((size_t)C * C * 4), *hkv = malloc((size_t)C * 2 * C * 4);
        for (int k = 0; k < C; k++) {
            memcpy(hq + (size_t)k * C, t.hwa + (size_t)k * 3 * C, (size_t)C * 4);
            memcpy(hkv + (size_t)k * 2 * C, t.hwa + (size_t)k * 3 * C + C, (size_t)2 * C * 4);
        }
        t.wq = g_new((size_t)C * C, 2); t.wkv = g_new((size_t)C * 2 * C, 2);
        g_set(&t.wq, hq); g_set(&t.wkv, hkv);
        free(hq); free(hkv);
    }
    t.pq = g_new(C, 2); t.pkv = g_new((size_t)2 * C, 2);
    t.qkv = g_new((size_t)3 * C, 2); t.cache = g_new((size_t)TAIL_CAP * 2 * C, 2); t.pos = g_new(1, 4);
    const int32_t pos = TAIL_POS;
    g_set_i32(&t.pos, &pos);
    float *atty = tc_randn(&rng, C, 1.0, 0.0), *res0 = tc_randn(&rng, C, 4.0, 3.0); /* a large residual stream */
    t.atty = g_new(C, 2); t.res[0] = g_new(C, 2); t.res[1] = g_new(C, 2);
    t.res2 = g_new(C, 2); t.pre = g_new((size_t)4 * C, 2); t.act = g_new((size_t)4 * C, 2);
    g_set(&t.atty, atty); g_set(&t.res[0], res0);
    float *zeros = calloc((size_t)TAIL_CAP * 2 * C + 4 * C, 4);
    float *res2 = calloc((size_t)C, 4), *pre = calloc((size_t)4 * C, 4), *act = calloc((size_t)4 * C, 4);
    float *res3 = calloc((size_t)C, 4), *qkv = calloc((size_t)3 * C, 4), *cache = calloc((size_t)TAIL_CAP * 2 * C, 4);
    float *first = NULL, *ref = NULL;
    /* more than one row: not taken, nothing written (the outputs are still the zeros g_new left) */
    int done = 1, next_done = 1;
    tc_check_status(tail_run(&t, 2, 0, TAIL_NEXT, &done, &next_done), "block_tail_forward (2 rows)");
    snprintf(name, sizeof name, "block_tail_forward.two_rows_not_taken[C=%d]", C);
    TEST_TRUE(name, done == 0 && next_done == 0, "done = %d, next_done = %d", done, next_done);
    snprintf(name, sizeof name, "block_tail_forward.two_rows_untouched[C=%d]", C);
    g_check(name, &t.act, zeros, 0.0, 0.0);
    /* the three products without the next one: left to the model too (slower chained, cuda_block_tail_forward) */
    tc_check_status(tail_run(&t, 1, 0, TAIL_ALONE, &done, &next_done), "block_tail_forward (no next product)");
    snprintf(name, sizeof name, "block_tail_forward.without_next_not_taken[C=%d]", C);
    TEST_TRUE(name, done == 0 && next_done == 0, "done = %d, next_done = %d", done, next_done);
    snprintf(name, sizeof name, "block_tail_forward.without_next_untouched[C=%d]", C);
    g_check(name, &t.act, zeros, 0.0, 0.0);
    tail_ref(&t, atty, res0, res2, pre, act, res3);
    tc_check_status(tail_run(&t, 1, 0, TAIL_NEXT, &done, &next_done), "block_tail_forward");
    snprintf(name, sizeof name, "block_tail_forward.taken[C=%d]", C);
    if (must_take) TEST_TRUE(name, done == 1 && next_done == 1, "done = %d, next_done = %d: the chained kernel refused "
                             "the shape", done, next_done);
    snprintf(name, sizeof name, "block_tail_forward.next_with_tail[C=%d]", C);
    TEST_TRUE(name, next_done == done, "done = %d, next_done = %d", done, next_done);
    if (!done) { /* the model composes the products itself: nothing was written */
        snprintf(name, sizeof name, "block_tail_forward.not_taken_untouched[C=%d]", C);
        g_check(name, &t.res[1], zeros, 0.0, 0.0);
        tail_last_check(&t, res3, 0);
        goto out;
    }
    /* as matmul_residual_forward's and layernorm_matmul_forward's checks: fp32 sums, one bf16 rounding each */
    snprintf(name, sizeof name, "block_tail_forward.res2[C=%d]", C);
    g_check(name, &t.res2, res2, 1e-2, 1.0 / 128);
    snprintf(name, sizeof name, "block_tail_forward.pre[C=%d]", C);
    g_check(name, &t.pre, pre, 1e-2, 1.0 / 128);
    snprintf(name, sizeof name, "block_tail_forward.act[C=%d]", C);
    g_check(name, &t.act, act, 1e-2, 1.0 / 128);
    snprintf(name, sizeof name, "block_tail_forward.out[C=%d]", C);
    g_check(name, &t.res[1], res3, 1e-2, 1.0 / 128);
    { /* the next product on the GPU's own out, so that a flipped rounding of out does not show */
        float *out = g_get(&t.res[1], NULL);
        tail_next_ref(&t, out, t.hba, qkv);
        for (int c = 0; c < 2 * C; c++) cache[(size_t)(TAIL_POS % TAIL_CAP) * 2 * C + c] = qkv[C + c];
        snprintf(name, sizeof name, "block_tail_forward.next_qkv[C=%d]", C);
        g_check(name, &t.qkv, qkv, 1e-2, 1.0 / 128);
        snprintf(name, sizeof name, "block_tail_forward.next_kv_append[C=%d]", C);
        g_check(name, &t.cache, cache, 1e-2, 1.0 / 128);
        free(out);
    }
    { /* the next product as a pair: the same block, its two outputs against the columns of one product */
        tc_check_status(tail_run(&t, 1, 0, TAIL_NEXT_PAIR, &done, &next_done), "block_tail_forward (pair)");
        snprintf(name, sizeof name, "block_tail_forward.pair_taken[C=%d]", C);
        TEST_TRUE(name, done == 1 && next_done == 1, "done = %d, next_done = %d", done, next_done);
        float *out = g_get(&t.res[1], NULL);
        tail_next_ref(&t, out, NULL, qkv);
        snprintf(name, sizeof name, "block_tail_forward.pair_first[C=%d]", C);
        g_check(name, &t.pq, qkv, 1e-2, 1.0 / 128);
        snprintf(name, sizeof name, "block_tail_forward.pair_second[C=%d]", C);
        g_check(name, &t.pkv, qkv + C, 1e-2, 1.0 / 128);
        free(out);
    }
    tail_last_check(&t, res3, must_take);
    first = g_get(&t.res[1], NULL);
    tc_check_status(tail_run(&t, 1, 0, TAIL_NEXT, &done, &next_done), "block_tail_forward");
    snprintf(name, sizeof name, "block_tail_forward.deterministic[C=%d]", C);
    g_check(name, &t.res[1], first, 0.0, 0.0);
    /* L blocks, one at a time */
    for (int l = 0; l < L; l++) {
        tc_check_status(tail_run(&t, 1, l % 2, TAIL_NEXT, &done, &next_done), "block_tail_forward (one at a time)");
        free(g_get(&t.res[1 - l % 2], NULL));
    }
    ref = g_get(&t.res[L % 2], NULL);
    g_set(&t.res[0], res0);
    for (int l = 0; l < L; l++) tc_check_status(tail_run(&t, 1, l % 2, TAIL_NEXT, &done, &next_done), "block_tail_forward (queued)");
    snprintf(name, sizeof name, "block_tail_forward.queued[C=%d,L=%d]", C, L);
    g_check(name, &t.res[L % 2], ref, 0.0, 0.0);
    if (cuda.ops->graph_begin) {
        void *graph = NULL;
        tc_check_status(cuda.ops->graph_begin(&cuda), "graph_begin");
        for (int l = 0; l < L; l++) tail_run(&t, 1, l % 2, TAIL_NEXT, &done, &next_done);
        tc_check_status(cuda.ops->graph_end(&cuda, &graph), "recording the block tails");
        for (int r = 0; r < 2 && graph; r++) {
            g_set(&t.res[0], res0);
            tc_check_status(cuda.ops->graph_launch(&cuda, graph), "graph_launch");
            snprintf(name, sizeof name, "block_tail_forward.replay%d[C=%d,L=%d]", r + 1, C, L);
            g_check(name, &t.res[L % 2], ref, 0.0, 0.0);
        }
        cuda.ops->graph_free(&cuda, graph);
    }
out:
    for (int i = 0; i < 3; i++) { g_free(&t.w[i]); g_free(&t.b[i]); free(t.hw[i]); free(t.hb[i]); }
    g_free(&t.lnw); g_free(&t.lnb); g_free(&t.atty); g_free(&t.res[0]); g_free(&t.res[1]);
    g_free(&t.res2); g_free(&t.pre); g_free(&t.act);
    g_free(&t.wa); g_free(&t.ba); g_free(&t.ln1w); g_free(&t.ln1b); g_free(&t.qkv); g_free(&t.cache); g_free(&t.pos);
    g_free(&t.wq); g_free(&t.wkv); g_free(&t.pq); g_free(&t.pkv);
    free(t.hlnw); free(t.hlnb); free(t.hwa); free(t.hba); free(t.hln1w); free(t.hln1b);
    free(atty); free(res0); free(zeros); free(res2); free(pre); free(act); free(res3); free(qkv); free(cache);
    free(first); free(ref);
}

/* ------------------------------------------------------------------ element-wise */

static void test_elementwise(size_t n) {
    char name[128];
    float *x = tc_randn(&rng, n, 2.0, 0.0), *y = tc_randn(&rng, n, 1.0, 0.0), *d = tc_randn(&rng, n, 1.0, 0.0);
    float *out = calloc(n, 4), *acc = tc_randn(&rng, n, 1.0, 0.0);
    gbuf gx = g_new(n, 2), gy = g_new(n, 2), gd = g_new(n, 2), go = g_new(n, 2), ga = g_new(n, 2);
    g_set(&gx, x); g_set(&gy, y); g_set(&gd, d); g_set(&ga, acc);

    cpu.ops->gelu_forward(&cpu, out, x, n);
    tc_check_status(cuda.ops->gelu_forward(&cuda, go.ptr, gx.ptr, n), "gelu_forward");
    snprintf(name, sizeof name, "gelu_forward[n=%zu]", n);
    g_check(name, &go, out, 1e-3, 1.0 / 128); /* one bf16 rounding; tanhf differs by ulps */

    cpu.ops->gelu_backward(&cpu, acc, x, d, n);
    tc_check_status(cuda.ops->gelu_backward(&cuda, ga.ptr, gx.ptr, gd.ptr, n), "gelu_backward");
    snprintf(name, sizeof name, "gelu_backward[n=%zu]", n);
    g_check(name, &ga, acc, 1e-2, 1.0 / 128); /* accumulate onto O(1) values, one bf16 rounding */

    cpu.ops->residual_forward(&cpu, out, x, y, n);
    tc_check_status(cuda.ops->residual_forward(&cuda, go.ptr, gx.ptr, gy.ptr, n), "residual_forward");
    snprintf(name, sizeof name, "residual_forward[n=%zu]", n);
    g_check(name, &go, out, 0.0, 1.0 / 256); /* exact sum of two bf16, rounded once */

    tc_check_status(cuda.ops->residual_forward(&cuda, gx.ptr, gx.ptr, gy.ptr, n), "residual_forward in place");
    snprintf(name, sizeof name, "residual_forward.in_place[n=%zu]", n);
    g_check(name, &gx, out, 0.0, 1.0 / 256);

    g_set(&gx, x);
    cpu.ops->accumulate(&cpu, y, x, n);
    tc_check_status(cuda.ops->accumulate(&cuda, gy.ptr, gx.ptr, n), "accumulate");
    snprintf(name, sizeof name, "accumulate[n=%zu]", n);
    g_check(name, &gy, y, 0.0, 1.0 / 256);
    g_free(&gx); g_free(&gy); g_free(&gd); g_free(&go); g_free(&ga);
    free(x); free(y); free(d); free(out); free(acc);
}

/* ------------------------------------------------------------------ classifier */

/* Losses against the CPU's. The target's logit is exact (fp32), the logsumexp runs on logits rounded to
 * bf16 (2^-8 relative each): its error is a softmax-weighted mean of those roundings, so row i may differ
 * by 2^-8 max_v |logit[i,v]| on top of float-level differences (2e-4 + 1e-4 relative). NaN fails. */
static void check_losses(const char *name, const gbuf *gl, const float *ref, const float *x, const float *wte, int N,
                         int C, int V) {
    float *logits = calloc((size_t)N * V, 4);
    cpu.ops->logits(&cpu, logits, x, wte, N, C, V);
    int guard_ok, bad = -1;
    float *got = g_get(gl, &guard_ok);
    for (int i = 0; i < N && bad < 0; i++) {
        float mx = 0.0f;
        for (int v = 0; v < V; v++) mx = fmaxf(mx, fabsf(logits[(size_t)i * V + v]));
        double tol = 2e-4 + 1e-4 * fabs(ref[i]) + ldexp(mx, -8);
        if (!(fabs((double)got[i] - ref[i]) <= tol)) bad = i;
    }
    if (!guard_ok)
        test_report(0, name, "guard bytes around the output were overwritten");
    else
        test_report(bad < 0, name, "row %d: %.6g, reference %.6g", bad, bad < 0 ? 0.0 : got[bad], bad < 0 ? 0.0 : ref[bad]);
    free(got);
    free(logits);
}

/* forward only (evaluation): losses, no gradients */
static void test_classifier(int N, int C, int V) {
    char name[160];
    float *x = tc_randn(&rng, (size_t)N * C, 1.0, 0.0), *wte = tc_randn(&rng, (size_t)V * C, 2.0 / sqrt((double)C), 0.0);
    int32_t *tg = malloc((size_t)N * sizeof *tg);
    for (int i = 0; i < N; i++) tg[i] = ab_rng_below(&rng, 5) == 0 ? -1 : (int32_t)ab_rng_below(&rng, (uint32_t)V);
    float *losses = calloc(N, 4);
    cpu.ops->classifier(&cpu, losses, NULL, NULL, x, wte, tg, N, C, V, 1.0f);
    gbuf gx = g_new((size_t)N * C, 2), gw = g_new((size_t)V * C, 2), gt = g_new(N, 4), gl = g_new(N, 4);
    g_set(&gx, x); g_set(&gw, wte); g_set_i32(&gt, tg);
    tc_check_status(cuda.ops->classifier(&cuda, gl.ptr, NULL, NULL, gx.ptr, gw.ptr, gt.ptr, N, C, V, 1.0f), "classifier");
    snprintf(name, sizeof name, "classifier.losses[N=%d,C=%d,V=%d]", N, C, V);
    check_losses(name, &gl, losses, x, wte, N, C, V);
    g_free(&gx); g_free(&gw); g_free(&gt); g_free(&gl);
    free(x); free(wte); free(tg); free(losses);
}

/* backward: both sides start from the same bf16 gradient values, which must be accumulated onto */
static void test_classifier_backward(int N, int C, int V) {
    char name[160];
    float *x = tc_randn(&rng, (size_t)N * C, 1.0, 0.0), *wte = tc_randn(&rng, (size_t)V * C, 2.0 / sqrt((double)C), 0.0);
    int32_t *tg = malloc((size_t)N * sizeof *tg);
    int counted = 0;
    for (int i = 0; i < N; i++) {
        tg[i] = ab_rng_below(&rng, 5) == 0 ? -1 : (int32_t)ab_rng_below(&rng, (uint32_t)V);
        counted += tg[i] >= 0;
    }
    float dloss = 1.0f / (counted ? counted : 1);
    /* start values of size comparable to the gradients (dloss * O(1)) */
    float *dx = tc_randn(&rng, (size_t)N * C, dloss, 0.0), *dwte = tc_randn(&rng, (size_t)V * C, dloss, 0.0);
    float *losses = calloc(N, 4);
    gbuf gx = g_new((size_t)N * C, 2), gw = g_new((size_t)V * C, 2), gt = g_new(N, 4), gl = g_new(N, 4);
    gbuf gdx = g_new((size_t)N * C, 2), gdw = g_new((size_t)V * C, 2);
    g_set(&gx, x); g_set(&gw, wte); g_set_i32(&gt, tg); g_set(&gdx, dx); g_set(&gdw, dwte);
    cpu.ops->classifier(&cpu, losses, dx, dwte, x, wte, tg, N, C, V, dloss);
    tc_check_status(cuda.ops->classifier(&cuda, gl.ptr, gdx.ptr, gdw.ptr, gx.ptr, gw.ptr, gt.ptr, N, C, V, dloss),
                    "classifier backward");
    snprintf(name, sizeof name, "classifier_backward.losses[N=%d,C=%d,V=%d]", N, C, V);
    check_losses(name, &gl, losses, x, wte, N, C, V);
    /* dlogits (softmax of bf16 logits, 2^-8 |logit| relative) are rounded to bf16 (2^-8 relative) before the
     * two GEMMs; outputs rounded to bf16 */
    snprintf(name, sizeof name, "classifier_backward.dx[N=%d,C=%d,V=%d]", N, C, V);
    g_check(name, &gdx, dx, 0.02 * dloss, 1.0 / 64);
    snprintf(name, sizeof name, "classifier_backward.dwte[N=%d,C=%d,V=%d]", N, C, V);
    g_check(name, &gdw, dwte, 0.02 * dloss * sqrt(N / 64.0 + 1), 1.0 / 64);
    g_free(&gx); g_free(&gw); g_free(&gt); g_free(&gl); g_free(&gdx); g_free(&gdw);
    free(x); free(wte); free(tg); free(losses); free(dx); free(dwte);
}

/* logits (N,V) fp32 = x @ wte^T: cuBLASLt, or at decode sizes (N <= 16, C <= 1024) the kernel that streams wte */
static void test_logits(int N, int C, int V) {
    char name[160];
    float *x = tc_randn(&rng, (size_t)N * C, 1.0, 0.0), *wte = tc_randn(&rng, (size_t)V * C, 2.0 / sqrt((double)C), 0.0);
    float *logits = calloc((size_t)N * V, 4);
    cpu.ops->logits(&cpu, logits, x, wte, N, C, V);
    gbuf gx = g_new((size_t)N * C, 2), gw = g_new((size_t)V * C, 2), glo = g_new((size_t)N * V, 4);
    g_set(&gx, x); g_set(&gw, wte);
    tc_check_status(cuda.ops->logits(&cuda, glo.ptr, gx.ptr, gw.ptr, N, C, V), "logits");
    snprintf(name, sizeof name, "logits[N=%d,C=%d,V=%d]", N, C, V);
    g_check(name, &glo, logits, 1e-4, 1e-4); /* fp32 output of identical bf16 inputs, fp32 accumulation */
    g_free(&gx); g_free(&gw); g_free(&glo);
    free(x); free(wte); free(logits);
}

/* layernorm_logits (a decode step's ln_f + logits) against the CPU's layernorm_forward, the bf16 rounding of its output
 * and logits: at one row the logits kernel normalises the row itself (a few LN outputs may round to the neighbouring
 * bf16, |wte| 2^-8 each), with more rows LN(x) is written to ln->out first, checked too. */
static void test_layernorm_logits(int N, int C, int V) {
    char name[160];
    float *x = tc_randn(&rng, (size_t)N * C, 4.0, 3.0), *lw = tc_randn(&rng, C, 0.5, 1.0), *lb = tc_randn(&rng, C, 0.2, 0.0);
    float *wte = tc_randn(&rng, (size_t)V * C, 2.0 / sqrt((double)C), 0.0);
    float *ln = calloc((size_t)N * C, 4), *stats = calloc((size_t)2 * N, 4), *logits = calloc((size_t)N * V, 4);
    cpu.ops->layernorm_forward(&cpu, ln, stats, stats + N, x, lw, lb, N, C);
    tc_round_all(ln, (size_t)N * C);
    cpu.ops->logits(&cpu, logits, ln, wte, N, C, V);
    gbuf gx = g_new((size_t)N * C, 2), glw = g_new(C, 2), glb = g_new(C, 2), gw = g_new((size_t)V * C, 2);
    gbuf gln = g_new((size_t)N * C, 2), gst = g_new((size_t)2 * N, 4), glo = g_new((size_t)N * V, 4);
    g_set(&gx, x); g_set(&glw, lw); g_set(&glb, lb); g_set(&gw, wte);
    TEST_TRUE("layernorm_logits_present", cuda.ops->layernorm_logits != NULL, "cuda lacks it");
    if (!cuda.ops->layernorm_logits) goto out;
    const ab_layernorm_input lni = {glw.ptr, glb.ptr, gln.ptr, gst.ptr, (float *)gst.ptr + N};
    tc_check_status(cuda.ops->layernorm_logits(&cuda, &lni, glo.ptr, gx.ptr, gw.ptr, N, C, V), "layernorm_logits");
    snprintf(name, sizeof name, "layernorm_logits[N=%d,C=%d,V=%d]", N, C, V);
    g_check(name, &glo, logits, 5e-3, 1e-3); /* fp32 sums; a flipped LN rounding moves a logit by ~3e-4 */
    if (N > 1) {
        snprintf(name, sizeof name, "layernorm_logits.ln_out[N=%d,C=%d]", N, C);
        g_check(name, &gln, ln, 1e-2, 1.0 / 128);
    }
out:
    g_free(&gx); g_free(&glw); g_free(&glb); g_free(&gw); g_free(&gln); g_free(&gst); g_free(&glo);
    free(x); free(lw); free(lb); free(wte); free(ln); free(stats); free(logits);
}

/* ------------------------------------------------------------------ optimizer */

static void test_adamw(size_t n) {
    char name[128];
    float *master = tc_randn(&rng, n, 1.0, 0.0), *m = calloc(n, 4), *v = calloc(n, 4);
    gbuf gp = g_new(n, 2), gmaster = g_new(n, 4), gg = g_new(n, 2), gm = g_new(n, 4), gv = g_new(n, 4);
    g_set(&gp, master);
    g_set(&gmaster, master);
    float *p = tc_copy(master, n);
    ab_adamw_args a = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .grad_scale = 0.5f};
    for (int step = 1; step <= 3; step++) {
        float *g = tc_randn(&rng, n, 1.0, 0.0);
        g_set(&gg, g);
        a.step = step;
        cpu.ops->adamw(&cpu, p, NULL, g, m, v, n, &a);
        tc_check_status(cuda.ops->adamw(&cuda, gp.ptr, gmaster.ptr, gg.ptr, gm.ptr, gv.ptr, n, &a), "adamw");
        free(g);
    }
    /* fp32 state on both sides: identical formulas, float rounding only */
    snprintf(name, sizeof name, "adamw.master[n=%zu]", n);
    g_check(name, &gmaster, p, 1e-6, 1e-5);
    snprintf(name, sizeof name, "adamw.m[n=%zu]", n);
    g_check(name, &gm, m, 1e-6, 1e-5);
    snprintf(name, sizeof name, "adamw.v[n=%zu]", n);
    g_check(name, &gv, v, 1e-6, 1e-5);
    snprintf(name, sizeof name, "adamw.params_bf16[n=%zu]", n);
    g_check(name, &gp, p, 1e-6, 1.0 / 256); /* the bf16 copy is the master rounded once */
    TEST_TRUE("adamw.requires_master", cuda.ops->adamw(&cuda, gp.ptr, NULL, gg.ptr, gm.ptr, gv.ptr, n, &a) != AB_OK,
              "accepted a NULL master");
    g_free(&gp); g_free(&gmaster); g_free(&gg); g_free(&gm); g_free(&gv);
    free(master); free(m); free(v); free(p);
}

static void test_sum_squares(size_t n) {
    char name[128];
    float *x = tc_randn(&rng, n, 1.0, 0.0);
    gbuf g = g_new(n, 2);
    g_set(&g, x);
    double ref = 0.0, got = -1.0;
    cpu.ops->sum_squares(&cpu, &ref, x, n);
    tc_check_status(cuda.ops->sum_squares(&cuda, &got, g.ptr, n), "sum_squares");
    snprintf(name, sizeof name, "sum_squares[n=%zu]", n);
    /* fp32 partial sums of ~1000 terms per thread, double across threads */
    TEST_CLOSE_F64(name, &got, &ref, 1, 0.0, 1e-5);
    g_free(&g);
    free(x);
}

int main(void) {
    ab_rng_seed(&rng, 20261128);
    if (!tc_open(&cpu, &cuda)) return TEST_SUMMARY();
    test_memory();
    test_encoder(3, 17, 64, 50);
    test_encoder(4, 64, 768, 1000);
    test_layernorm(37, 768);
    test_layernorm(5, 72);
    test_layernorm(1000, 1024);
    test_layernorm(1, 768);   /* a decode row */
    test_layernorm(3, 1600);  /* gpt2-xl's width: the 8-chunk kernel */
    test_layernorm(9, 2048);  /* the widest built */
    test_matmul(37, 64, 200, 1);
    test_matmul(128, 768, 2304, 1);
    test_matmul(61, 96, 40, 0);
    test_matmul(512, 768, 3072, 1);
    test_matmul_residual(37, 64, 200, 1);
    test_matmul_residual(512, 3072, 768, 1);
    test_matmul_residual(61, 96, 40, 0);
    test_mlp_fused(37, 64, 200);
    test_mlp_fused(512, 768, 3072);
    test_small_m();
    test_block_tail(768, 12, 1); /* GPT-2 124M */
    test_block_tail(64, 5, 1);   /* idle blocks in the narrow steps, a LayerNorm of 8 chunks */
    test_block_tail(72, 4, 1);   /* chunks that do not fill a block's 2 or 4 */
    test_block_tail(1024, 2, 0); /* gpt2-medium ... gpt2-xl: the slices exceed shared memory, the products one by one */
    test_block_tail(1600, 2, 0);
    test_elementwise(1003);
    test_elementwise(1 << 16);
    test_classifier(37, 64, 1000);
    test_classifier_backward(37, 64, 1000);
    test_classifier_backward(4100, 64, 301); /* more rows than one chunk (4096) */
    test_classifier_backward(64, 768, 50257);
    test_logits(64, 768, 50257);
    test_logits(1, 768, 50257); /* decode sizes: the small-M kernel (N <= 16, C <= 1024) */
    test_logits(3, 1024, 1001);
    test_logits(4, 72, 37);
    test_logits(16, 768, 50257);
    test_logits(7, 1024, 333);
    test_logits(17, 768, 50257); /* cuBLASLt again: above 16 rows, and above C = 1024 */
    test_logits(2, 1280, 999);
    test_layernorm_logits(1, 768, 50257); /* a decode step's ln_f + logits, folded */
    test_layernorm_logits(1, 72, 37);
    test_layernorm_logits(3, 768, 1001);  /* LN(x) written first */
    test_layernorm_logits(1, 1280, 999);  /* wider than the kernel: written first, then cuBLASLt */
    test_adamw(1001);
    test_adamw(1 << 18);
    test_sum_squares(100003);
    test_sum_squares(7);
    ab_backend_close(&cuda);
    ab_backend_close(&cpu);
    return TEST_SUMMARY();
}
