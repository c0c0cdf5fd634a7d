/*
 * attn_mla.cu — mla, multi-head latent attention (VARIANTS.md 8), on CUDA. Same tensors and math as the CPU
 * reference (src/attn/mla.c), Conv1D (in, out) layout, no biases, bf16:
 *   attn.q_proj.weight  (C, C)      q = x W_q
 *   attn.kv_down.weight (C, dc)     a = x W_dkv
 *   attn.kv_norm.weight (1, dc)     c = RMSNorm(a) * g, eps 1e-6, fp32 statistics (the latent decode caches)
 *   attn.k_up.weight    (dc, C)     k = c W_uk   (head h: columns h*D .. h*D+D-1)
 *   attn.v_up.weight    (dc, C)     v = c W_uv
 *
 * Training (un-absorbed): q, k and v are written by their GEMMs straight into one packed (B,T,3C) buffer,
 * the layout the flash kernels read with G = H (ab_cuda_flash_forward / backward, causal, tau = 1/sqrt(D)).
 * Backward: flash gives dq, dk, dv in the same packed layout; dlat = dk W_uk^T + dv W_uv^T accumulates in
 * fp32; the RMSNorm backward gives da and, per element, dlat * a * rstd, whose column sums (the gain
 * gradient) are one GEMM with a ones vector (cuda_bias_grad, fp32 accumulation, deterministic); dx
 * collects the W_dkv and W_q paths. The only training kernels here are the RMSNorm pair.
 *
 * Inference (absorbed): the cache holds only c_t, (max_T, B, dc) bf16, position-major like the other CUDA
 * caches. Prefill runs the training forward and copies c into the cache; decode computes q and a of the new
 * token (one launch for both, cuda_gemm_small_m_pair; at batch 1 chained after the block before as a pair step, the
 * variant's decode_input), then per (b, h): q~ = W_uk,h q_h (dc), scores tau q~ . c_j for j <= pos, softmax,
 * o_h = (sum_j p_j c_j) W_uv,h, in fp32, one kernel that also normalises a into c_pos and appends it, whose blocks
 * split the positions (flash-decoding) and, for long caches, serve up to four heads each, so a latent is read once
 * for them (mla_decode_kernel, mla_decode_pick); from batch 4 and caches of 2048 positions, and at any batch from
 * 8192, the same on the tensor cores in three kernels, the first of which normalises a (mla_decode_tc,
 * mla_decode_on_tc). Decode's kernels read pos on the device (cuda_decode_pos).
 * Head size 64 only (the flash kernels are built for it); any other fails with AB_ERR_UNSUPPORTED.
 *
 * saved per layer:  qkv (B,T,3C) bf16 | a (B,T,dc) bf16 | c (B,T,dc) bf16 | rstd (B,T) fp32 | O (B,T,C) bf16 |
 *                   L (B,H,T) fp32
 * workspace:        the largest of: backward dqkv (B,T,3C) bf16, then a region used first by flash's
 *                   dq_accum (B,H,T,64) fp32 | Delta (B,H,T) fp32 and afterwards by dlat (B,T,dc) fp32 |
 *                   da (B,T,dc) bf16 | dg terms (B,T,dc) bf16; prefill: the saved tensors; decode: q (B,C) bf16 |
 *                   a (B,dc) bf16 | tensor-core path: q~ (B,H,dc) bf16 | the clusters' softmax states
 *                   (B, MLA_TC_MAX_CLUSTERS, H, dc + 2) fp32
 */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_attn.cuh"
#include "backend/cuda/flash_attn.cuh"

#define MLA_RMS_EPS 1e-6f
#define MLA_ROWS_PER_BLOCK 8 /* RMSNorm kernels: one warp per row */
#define MLA_TC_MAX_CLUSTERS 8 /* the tensor-core decode's clusters of splits a sequence (mla_tc_kernel) */
#define MLA_DECODE_THREADS 256

enum { W_Q = 0, W_DKV, W_NORM, W_UK, W_UV };

static ab_status mla_check(const ab_attn_config *cfg) {
    if (cfg->D != FLASH_HD)
        return ab_fail(AB_ERR_UNSUPPORTED,
                       "cuda mla: head size %d is not supported (n_embd %d / n_head %d); the flash kernels are built "
                       "for head size %d only",
                       cfg->D, cfg->C, cfg->H, FLASH_HD);
    return AB_OK;
}

/* ---------------------------------------------------------------- layouts */

typedef struct {
    bf16 *qkv, *a, *c, *o;
    float *rstd, *lse;
} mla_saved;

static size_t bf16_bytes(size_t n) { return align256(n * sizeof(bf16)); }
static size_t f32_bytes(size_t n) { return align256(n * sizeof(float)); }

/* base + off, NULL when only the sizes are wanted */
static char *at(void *base, size_t off) { return base ? (char *)base + off : NULL; }

static mla_saved mla_views(const ab_attn_config *cfg, void *saved, int B, int T, size_t *total) {
    const size_t N = (size_t)B * T, C = cfg->C, dc = cfg->hp.mla_kv_rank;
    mla_saved v;
    size_t off = 0;
    v.qkv = (bf16 *)at(saved, off);   off += bf16_bytes(N * 3 * C);
    v.a = (bf16 *)at(saved, off);     off += bf16_bytes(N * dc);
    v.c = (bf16 *)at(saved, off);     off += bf16_bytes(N * dc);
    v.rstd = (float *)at(saved, off); off += f32_bytes(N);
    v.o = (bf16 *)at(saved, off);     off += bf16_bytes(N * C);
    v.lse = (float *)at(saved, off);  off += f32_bytes(N * cfg->H);
    if (total) *total = off;
    return v;
}

static size_t mla_saved_bytes(const ab_attn_config *cfg, int B, int T) {
    size_t total;
    mla_views(cfg, NULL, B, T, &total);
    return total;
}

typedef struct {
    bf16 *dqkv;
    float *dq_accum, *delta; /* flash backward scratch ... */
    float *dlat;             /* ... then the same memory for the latent gradients */
    bf16 *da, *dg_terms;
} mla_grads;

static mla_grads mla_grad_views(const ab_attn_config *cfg, void *ws, int B, int T, size_t *total) {
    const size_t N = (size_t)B * T, C = cfg->C, dc = cfg->hp.mla_kv_rank, head = bf16_bytes(N * 3 * C);
    const size_t flash_part = f32_bytes(N * cfg->H * FLASH_HD) + f32_bytes(N * cfg->H);
    const size_t latent_part = f32_bytes(N * dc) + 2 * bf16_bytes(N * dc);
    mla_grads g;
    g.dqkv = (bf16 *)at(ws, 0);
    g.dq_accum = (float *)at(ws, head);
    g.delta = (float *)at(ws, head + f32_bytes(N * cfg->H * FLASH_HD));
    g.dlat = (float *)at(ws, head);
    g.da = (bf16 *)at(ws, head + f32_bytes(N * dc));
    g.dg_terms = (bf16 *)at(ws, head + f32_bytes(N * dc) + bf16_bytes(N * dc));
    if (total) *total = head + (flash_part > latent_part ? flash_part : latent_part);
    return g;
}

typedef struct {
    bf16 *q1, *a1; /* (B,C), (B,dc) */
    bf16 *qt;      /* tensor-core path: q~ (B,H,dc) */
    float *part;   /* tensor-core path: the clusters' states (B, MLA_TC_MAX_CLUSTERS, H, dc + 2) */
} mla_decode_ws;

static mla_decode_ws mla_decode_views(const ab_attn_config *cfg, void *ws, int B, size_t *total) {
    const size_t C = cfg->C, dc = cfg->hp.mla_kv_rank;
    mla_decode_ws v;
    size_t off = 0;
    v.q1 = (bf16 *)at(ws, off);    off += bf16_bytes(B * C);
    v.a1 = (bf16 *)at(ws, off);    off += bf16_bytes(B * dc);
    v.qt = (bf16 *)at(ws, off);    off += bf16_bytes((size_t)B * cfg->H * dc);
    v.part = (float *)at(ws, off); off += f32_bytes((size_t)B * MLA_TC_MAX_CLUSTERS * cfg->H * (dc + 2));
    if (total) *total = off;
    return v;
}

static size_t mla_ws_bytes(const ab_attn_config *cfg, int B, int T) {
    size_t w, d;
    mla_grad_views(cfg, NULL, B, T, &w);
    mla_decode_views(cfg, NULL, B, &d);
    const size_t p = mla_saved_bytes(cfg, B, T);
    if (p > w) w = p;
    return w > d ? w : d;
}

/* ---------------------------------------------------------------- products on packed columns */

/* out (N,OC), row stride ld_out, = in (N,K) @ W (K,OC): q, k, v into their columns of the packed qkv */
static ab_status packed_forward(ab_backend *be, bf16 *out, int ld_out, const void *in, const void *W, int N, int K,
                                int OC) {
    cuda_gemm_args g;
    memset(&g, 0, sizeof g);
    g.M = N; g.N = OC; g.K = K; g.alpha = 1.0f; g.beta = 0.0f;
    g.A = (const bf16 *)in; g.lda = K;
    g.B = (const bf16 *)W; g.ldb = OC;
    g.C = out; g.ldc = ld_out;
    return cuda_gemm(be, &g);
}

/* The backward of packed_forward, for d (N,OC) with row stride ld (a part of the packed dqkv):
 * dinp (N,K) = beta * dinp + d @ W^T (fp32 when dinp_f32; skipped when NULL); dW (K,OC) += in^T @ d (when
 * not NULL). */
static ab_status packed_backward(ab_backend *be, void *dinp, int dinp_f32, float beta, void *dW, const bf16 *d, int ld,
                                 const void *in, const void *W, int N, int K, int OC) {
    cuda_gemm_args g;
    if (dinp) {
        memset(&g, 0, sizeof g);
        g.trans_b = 1; g.M = N; g.N = K; g.K = OC; g.alpha = 1.0f; g.beta = beta;
        g.A = d; g.lda = ld;
        g.B = (const bf16 *)W; g.ldb = OC;
        g.C = dinp; g.ldc = K; g.c_f32 = dinp_f32;
        AB_TRY(cuda_gemm(be, &g));
    }
    if (dW) {
        memset(&g, 0, sizeof g);
        g.trans_a = 1; g.M = K; g.N = OC; g.K = N; g.alpha = 1.0f; g.beta = 1.0f;
        g.A = (const bf16 *)in; g.lda = K;
        g.B = d; g.ldb = ld;
        g.C = dW; g.ldc = OC;
        AB_TRY(cuda_gemm(be, &g));
    }
    return AB_OK;
}

/* ---------------------------------------------------------------- RMSNorm with gain */

/* rstd = 1/sqrt(mean(a^2) + eps) of a row a (dc), summed by the calling warp (lane l: elements l, l + 32, ..., then
 * warp_sum); every lane gets it. With mla_rms_out, the one definition behind the RMSNorm kernel and mla's CUDA-core
 * decode, which normalises the new latent itself: both give c the same bits. */
__device__ __forceinline__ float mla_rms_rstd(const bf16 *a, int dc, int lane) {
    float ss = 0.0f;
    for (int i = lane; i < dc; i += 32) {
        const float v = bf2f(a[i]);
        ss += v * v;
    }
    return 1.0f / sqrtf(warp_sum(ss) / dc + MLA_RMS_EPS);
}
/* an element of c = g * a * rstd, from the gain's and a's elements */
__device__ __forceinline__ bf16 mla_rms_apply(float g, float a, float r) { return f2bf(g * a * r); }
/* element i of c */
__device__ __forceinline__ bf16 mla_rms_out(const bf16 *a, const bf16 *g, float r, int i) {
    return mla_rms_apply(bf2f(g[i]), bf2f(a[i]), r);
}

/* c (N,dc) = g * a * rstd, rstd (N) = 1/sqrt(mean(a^2) + eps) (fp32; not written when NULL). One warp per row. */
__global__ void mla_rmsnorm_forward_kernel(bf16 *c, float *rstd, const bf16 *a, const bf16 *g, int N, int dc) {
    pdl_release();
    pdl_wait(); /* launched dependent (cuda_launch_dependent): the product before this wrote a */
    const int row = blockIdx.x * MLA_ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return; /* whole warps */
    const bf16 *ar = a + (size_t)row * dc;
    const float r = mla_rms_rstd(ar, dc, lane);
    if (rstd && lane == 0) rstd[row] = r;
    for (int i = lane; i < dc; i += 32) c[(size_t)row * dc + i] = mla_rms_out(ar, g, r, i);
}

/* da (N,dc) = r g dlat - r^3 a mean(g dlat a); dg_terms (N,dc) = dlat a r, whose column sums are the gain
 * gradient (not written when NULL). One warp per row. */
__global__ void mla_rmsnorm_backward_kernel(bf16 *da, bf16 *dg_terms, const float *dlat, const bf16 *a,
                                            const float *rstd, const bf16 *g, int N, int dc) {
    const int row = blockIdx.x * MLA_ROWS_PER_BLOCK + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const size_t base = (size_t)row * dc;
    const float r = rstd[row];
    float dot = 0.0f;
    for (int i = lane; i < dc; i += 32) dot += bf2f(g[i]) * dlat[base + i] * bf2f(a[base + i]);
    dot = warp_sum(dot);
    const float coef = r * r * r * dot / dc;
    for (int i = lane; i < dc; i += 32) {
        const float dl = dlat[base + i], av = bf2f(a[base + i]);
        da[base + i] = f2bf(r * bf2f(g[i]) * dl - coef * av);
        if (dg_terms) dg_terms[base + i] = f2bf(dl * av * r);
    }
}

static ab_status rmsnorm_forward(ab_backend *be, bf16 *c, float *rstd, const bf16 *a, const void *g, int N, int dc) {
    return cuda_launch_dependent(be, "mla_rmsnorm_forward", mla_rmsnorm_forward_kernel,
                                 dim3(cuda_blocks((size_t)N, MLA_ROWS_PER_BLOCK)), dim3(MLA_ROWS_PER_BLOCK * 32), 0, c, rstd,
                                 a, (const bf16 *)g, N, dc);
}

/* ---------------------------------------------------------------- training */

/* q, a, c, k, v of x into sv, then the flash forward: O and L (saved) and y */
static ab_status mla_run_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const mla_saved *sv, void *y,
                                 const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    ab_backend *be = ctx->be;
    const int C = cfg->C, dc = cfg->hp.mla_kv_rank, N = B * T;
    AB_TRY(packed_forward(be, sv->qkv, 3 * C, x, w->t[W_Q], N, C, C));
    AB_TRY(cuda_matmul_forward(be, sv->a, x, w->t[W_DKV], NULL, N, C, dc));
    AB_TRY(rmsnorm_forward(be, sv->c, sv->rstd, sv->a, w->t[W_NORM], N, dc));
    AB_TRY(packed_forward(be, sv->qkv + C, 3 * C, sv->c, w->t[W_UK], N, dc, C));
    AB_TRY(packed_forward(be, sv->qkv + 2 * C, 3 * C, sv->c, w->t[W_UV], N, dc, C));
    return ab_cuda_flash_forward(be, sv->qkv, sv->o, y, sv->lse, B, T, cfg->H, 0);
}

static ab_status mla_forward(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *saved, void *y, const void *x,
                             int B, int T) {
    AB_TRY(mla_check(ctx->cfg));
    mla_saved sv = mla_views(ctx->cfg, saved, B, T, NULL);
    return mla_run_forward(ctx, w, &sv, y, x, B, T);
}

static ab_status mla_backward(const ab_attn_ctx *ctx, const ab_attn_weights *w, const ab_attn_weights *dw,
                              const void *saved, void *dx, const void *dy, const void *x, int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(mla_check(cfg));
    ab_backend *be = ctx->be;
    const int C = cfg->C, dc = cfg->hp.mla_kv_rank, N = B * T;
    mla_saved sv = mla_views(cfg, (void *)saved, B, T, NULL);
    mla_grads g = mla_grad_views(cfg, ctx->workspace, B, T, NULL);
    void *dWq = dw ? dw->t[W_Q] : NULL, *dWdkv = dw ? dw->t[W_DKV] : NULL, *dg = dw ? dw->t[W_NORM] : NULL;
    void *dWuk = dw ? dw->t[W_UK] : NULL, *dWuv = dw ? dw->t[W_UV] : NULL;
    AB_TRY(ab_cuda_flash_backward(be, sv.qkv, sv.o, sv.lse, dy, g.dqkv, g.dq_accum, g.delta, B, T, cfg->H, 0));
    /* q path: dx += dq W_q^T, dW_q += x^T dq */
    AB_TRY(packed_backward(be, dx, 0, 1.0f, dWq, g.dqkv, 3 * C, x, w->t[W_Q], N, C, C));
    /* k and v paths (dq_accum is dead): dlat = dk W_uk^T + dv W_uv^T, dW_uk += c^T dk, dW_uv += c^T dv */
    AB_TRY(packed_backward(be, g.dlat, 1, 0.0f, dWuk, g.dqkv + C, 3 * C, sv.c, w->t[W_UK], N, dc, C));
    AB_TRY(packed_backward(be, g.dlat, 1, 1.0f, dWuv, g.dqkv + 2 * C, 3 * C, sv.c, w->t[W_UV], N, dc, C));
    mla_rmsnorm_backward_kernel<<<cuda_blocks((size_t)N, MLA_ROWS_PER_BLOCK), MLA_ROWS_PER_BLOCK * 32, 0,
                                  cuda_stream(be)>>>(g.da, dg ? g.dg_terms : NULL, g.dlat, sv.a, sv.rstd,
                                                     (const bf16 *)w->t[W_NORM], N, dc);
    AB_TRY(cuda_check_launch("mla_rmsnorm_backward"));
    if (dg) AB_TRY(cuda_bias_grad(be, (bf16 *)dg, g.dg_terms, N, dc));
    /* W_dkv path: dx += da W_dkv^T, dW_dkv += x^T da */
    return cuda_matmul_backward(be, dx, dWdkv, NULL, g.da, x, w->t[W_DKV], N, C, dc);
}

/* ---------------------------------------------------------------- inference (absorbed) */

static size_t mla_cache_bytes(const ab_attn_config *cfg, int B, int max_T) {
    return (size_t)max_T * B * cfg->hp.mla_kv_rank * sizeof(bf16);
}

static ab_status mla_prefill(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                             int B, int T) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(mla_check(cfg));
    if (T > cfg->max_T) return ab_fail(AB_ERR_USAGE, "cuda mla prefill: T = %d > max_T = %d", T, cfg->max_T);
    if (T <= 0) return AB_OK;
    const size_t dc = cfg->hp.mla_kv_rank;
    mla_saved sv = mla_views(cfg, ctx->workspace, B, T, NULL);
    AB_TRY(mla_run_forward(ctx, w, &sv, y, x, B, T));
    /* c (B,T,dc) -> cache (max_T, B, dc): positions 0..T-1 of sequence b */
    for (int b = 0; b < B; b++)
        CUDA_TRY(cudaMemcpy2DAsync((bf16 *)cache + b * dc, B * dc * sizeof(bf16), sv.c + (size_t)b * T * dc,
                                   dc * sizeof(bf16), dc * sizeof(bf16), (size_t)T, cudaMemcpyDeviceToDevice,
                                   cuda_stream(ctx->be)),
                 "mla prefill cache copy");
    return AB_OK;
}

/* Grid (B * H/HG, splits), MLA_DECODE_THREADS threads, head size FLASH_HD, dc % 8 == 0, dc <= 256 * RC. A block serves
 * the HG heads h0 .. h0 + HG - 1 of sequence b (the latents are shared by all heads, so each is read once per HG heads,
 * not once per head). q1 (B,C), cache (max_T, B, dc) holding positions 0..pos - 1, pos = *pos_dev < max_T, a1 (B,dc)
 * the new token's down-projection, W_uk, W_uv (dc, C), y (B,C); fp32 throughout. Launched programmatically dependent
 * at batch 1: what no kernel of the step writes is requested before the wait (the first passes of head h0's W_uk
 * slice, each warp's first NP latents, the thread's gain element; the heads' W_uv slices into L2), only q1
 * and a1 after it, together (head h0's q slice with a1's elements, so that step 1 does not wait for step 0's loads).
 *  0. the new latent c_pos = RMSNorm(a1_b) g (mla_rms_rstd, mla_rms_apply: the RMSNorm kernel's bits) into shared
 *     memory, as bf16: the block reads position pos from there, and the first block of b (heads h0 = 0, split 0)
 *     writes it to the cache's slot pos (no other block of the launch reads that slot);
 *  1. q~_h (dc) = tau W_uk,h q_h for each of the HG heads into shared memory: 8 lanes per row of W_uk's (dc, 64) slice
 *     (16-byte loads, q_h in registers), MLA_ROWS rows per pass, MLA_UNROLL loads in flight, sums by shuffles in the
 *     8 lanes;
 *  2. split s of the n = pos + 1 positions (chunk = ceil(n / splits)): a warp per position (NP at a time), each lane
 *     RC chunks of 8 latent values (16-byte loads, its slices of the HG q~ in registers), the HG scores by warp sums,
 *     the position folded into the warp's HG softmax states over the latent (o_h = sum_j e^(s_hj - m_h) c_j); the
 *     MLA_WARPS warps' states merge in shared memory, the HG heads side by side;
 *  3. o_h = cbar_h W_uv,h, cbar_h = sum_j p_hj c_j / sum_j p_hj: 8 lanes per row of the (dc, 64) slice, MLA_ROWS rows
 *     per pass, the MLA_ROWS row groups summed in shared memory in order (the slices asked into L2 before the wait).
 *     With one split from the block's state; with several (one cluster), each split
 *     projects its unnormalised state's o and pushes the projected state [m, l, o W_uv,h] into the cluster's first
 *     block, which merges them in split order (softmax_states_cluster_gather; the product is linear in o, so this is
 *     the merge's product): the splits' products run side by side, and nothing is read from memory after the merge.
 * Eight warps a block: a split's positions take half the rounds they took with four, and each warp's next round of
 * latents is requested before this one is folded. On an H200, batch 1, decode ms a token (docs/PERF.md, tenth
 * session): 8192 positions 0.478-0.489 (four warps) -> 0.431 (a round ahead) -> 0.376-0.378 (and eight warps); 512
 * positions 0.310-0.312 -> 0.300-0.303. Two or four heads a block at 8192 were slower (0.451, 0.640).
 * Shared memory: c_pos dc bf16 | q~ HG x dc | warp states MLA_WARPS x HG x (dc + 2) | block states HG x (dc + 2) |
 * merge weights HG x max(splits, MLA_WARPS) | row sums MLA_ROWS x 64 | projected states HG x (64 + 2) | with several
 * splits the inbox of the first block, splits x HG x (64 + 2). */
#define MLA_MAX_RANK 1024
#define MLA_WARPS (MLA_DECODE_THREADS / 32)
#define MLA_ROWS (MLA_DECODE_THREADS / 8)   /* rows of a (dc, 64) weight slice per pass */
#define MLA_UNROLL 8
#define MLA_MIN_KEYS 128                    /* positions per split at the longest context, at least */
#define MLA_MAX_SPLITS 8                    /* splits a group at most: a portable cluster */
#define MLA_STATE_REGS 4                    /* HG * RC at most: 8 * HG * RC fp32 of q~ and as many of o per lane */
/* W_uk passes requested before the wait at HG * RC = 1: all of them at dc <= 256 */
#define MLA_PRE_PASSES ((256 + MLA_ROWS * MLA_UNROLL - 1) / (MLA_ROWS * MLA_UNROLL))

/* rows r0 + i * MLA_ROWS (i < MLA_UNROLL) of W (dc, C), columns col .. col + 7, all loads in flight; zeros past dc */
__device__ __forceinline__ void mla_load_rows(uint4 u[MLA_UNROLL], const bf16 *W, int C, int col, int r0, int dc) {
#pragma unroll
    for (int i = 0; i < MLA_UNROLL; i++) {
        const int r = r0 + i * MLA_ROWS;
        u[i] = r < dc ? *reinterpret_cast<const uint4 *>(W + (size_t)r * C + col) : make_uint4(0u, 0u, 0u, 0u);
    }
}

/* (cbar W_uv,h)[threadIdx.x] for cbar (dc, shared memory), returned to threads 0..63 (0 to the others), by the
 * MLA_DECODE_THREADS threads of the block: 8 lanes per row of the (dc, 64) slice, MLA_ROWS rows per pass, MLA_UNROLL
 * loads in flight, the row groups summed in rows (MLA_ROWS x 64 fp32 of shared memory) in order. first: the
 * thread's first pass (mla_load_rows at rows threadIdx.x / 8), already requested, or NULL. Every thread calls it (it
 * synchronises). */
__device__ __forceinline__ float mla_up_project(const float *cbar, const bf16 *Wuv, int h, int C, int dc, float *rows,
                                                const uint4 *first = nullptr) {
    const int rg = threadIdx.x / 8, c8 = (threadIdx.x % 8) * 8, col = h * FLASH_HD + c8;
    float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    for (int r0 = rg; r0 < dc; r0 += MLA_ROWS * MLA_UNROLL) {
        uint4 u[MLA_UNROLL];
        if (first && r0 == rg)
#pragma unroll
            for (int i = 0; i < MLA_UNROLL; i++) u[i] = first[i];
        else
            mla_load_rows(u, Wuv, C, col, r0, dc);
#pragma unroll
        for (int i = 0; i < MLA_UNROLL; i++) {
            const int r = r0 + i * MLA_ROWS;
            float w[8];
            unpack8(w, u[i]);
            const float cr = r < dc ? cbar[r] : 0.0f;
#pragma unroll
            for (int e = 0; e < 8; e++) acc[e] += cr * w[e];
        }
    }
#pragma unroll
    for (int e = 0; e < 8; e++) rows[rg * FLASH_HD + c8 + e] = acc[e];
    __syncthreads();
    float v = 0.0f;
    if (threadIdx.x < FLASH_HD)
        for (int r = 0; r < MLA_ROWS; r++) v += rows[r * FLASH_HD + threadIdx.x];
    __syncthreads(); /* rows may be rewritten next */
    return v;
}

template <int HG, int RC>
__global__ void __launch_bounds__(MLA_DECODE_THREADS, 1) mla_decode_kernel(bf16 *y, const bf16 *q1, bf16 *cache,
                                                                         const bf16 *a1, const bf16 *gain,
                                                                         const bf16 *Wuk, const bf16 *Wuv, int B, int H,
                                                                         int dc, const int32_t *pos_dev, float tau) {
    extern __shared__ __align__(16) float sh[];
    pdl_release(); /* the output projection after this may be scheduled early (cuda_common.cuh) */
    if (gridDim.y > 1) cluster_gather_open();
    const int n = *pos_dev + 1, groups = H / HG, g = blockIdx.x, b = g / groups, h0 = (g % groups) * HG;
    const int split = blockIdx.y, nsplit = gridDim.y, C = H * FLASH_HD, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int rg = threadIdx.x / 8, c8 = (threadIdx.x % 8) * 8; /* weight-slice row group, column offset in a head */
    const int sw = dc + 2;                                      /* floats per softmax state */
    bf16 *cpos = reinterpret_cast<bf16 *>(sh); /* dc bf16: dc / 2 floats, a multiple of 4 */
    float *qt = sh + dc / 2, *wst = qt + HG * dc, *bst = wst + MLA_WARPS * HG * sw, *wsh = bst + HG * sw;
    float *rows = wsh + HG * (nsplit > MLA_WARPS ? nsplit : MLA_WARPS); /* MLA_ROWS x FLASH_HD */
    float *pst = rows + MLA_ROWS * FLASH_HD; /* HG x (64 + 2): the split's states projected by W_uv */
    float *inbox = pst + HG * (FLASH_HD + 2); /* nsplit x HG x (64 + 2), split 0's: the cluster's projected states */
    const int chunk = (n + nsplit - 1) / nsplit, j0 = split * chunk, j1 = min(n, j0 + chunk);
    const bf16 *cb = cache + (size_t)b * dc; /* c_j of sequence b: cb + j * slot */
    const size_t slot = (size_t)B * dc;
    /* NP positions a warp at a time (j, j + MLA_WARPS, ...: the order of one at a time, so the same sums), their loads
     * and score sums independent, so their latencies overlap; NP * HG * RC <= MLA_STATE_REGS keeps them in registers */
    constexpr int NP = HG * RC < MLA_STATE_REGS ? MLA_STATE_REGS / (HG * RC) : 1;
    /* The position is written before the step's first kernel and the latents of the positions before it by earlier
     * steps: the warp's first NP of them are requested before the wait (at 512-640 positions and 16 splits, the first
     * of its three rounds); c_pos (step 0) and q come after it. */
    uint4 cfirst[NP][RC];
#pragma unroll
    for (int q = 0; q < NP; q++)
#pragma unroll
        for (int i = 0; i < RC; i++) {
            const int jq = j0 + warp + q * MLA_WARPS, r = 8 * lane + 256 * i;
            cfirst[q][i] = r < dc && jq < j1 && jq != n - 1 ? *reinterpret_cast<const uint4 *>(cb + jq * slot + r)
                                                            : make_uint4(0u, 0u, 0u, 0u);
        }
    /* W_uk's slice is a constant: with one head and one latent chunk a lane (batch 1, GPT-2's dc = 256), head h0's
     * first MLA_PRE_PASSES passes (all of them at dc <= 256) are requested now, otherwise its first (registers: q~
     * and o grow with HG * RC). W_uv's requested here too was no faster at batch 1 and slower at 16 (255 registers;
     * docs/PERF.md); requested after step 1 into W_uk's registers (156 in all), 1-2 us faster at batch 1 and 95 us
     * slower at batch 16 (fifteenth session). */
    constexpr int PRE_UK = HG * RC == 1 ? MLA_PRE_PASSES : 1;
    uint4 wuk[PRE_UK][MLA_UNROLL];
#pragma unroll
    for (int p = 0; p < PRE_UK; p++) mla_load_rows(wuk[p], Wuk, C, h0 * FLASH_HD + c8, rg + p * MLA_ROWS * MLA_UNROLL, dc);
    /* and the heads' W_uv slices (dc rows of 128 bytes a head) are asked into L2 by split 0, without registers: every
     * split reads them in step 3 */
    if (split == 0)
        for (int i = threadIdx.x; i < HG * dc; i += MLA_DECODE_THREADS)
            prefetch_l2(Wuv + (size_t)(i % dc) * C + (h0 + i / dc) * FLASH_HD);
    const float g0 = threadIdx.x < dc ? bf2f(gain[threadIdx.x]) : 0.0f; /* the gain of the thread's first element */
    pdl_wait(); /* launched dependent: the products before this wrote q1 and a1 */
    /* head h0's slice of q, requested with a1's elements: step 1 does not wait for step 0's round trip */
    const uint4 q0 = *reinterpret_cast<const uint4 *>(q1 + (size_t)b * C + h0 * FLASH_HD + c8);
    /* 0. c_pos: each warp sums a1_b's squares itself (the same order in every warp and block) */
    {
        const bf16 *ab = a1 + (size_t)b * dc;
        const float r = mla_rms_rstd(ab, dc, lane);
        bf16 *slot = h0 == 0 && split == 0 ? cache + ((size_t)(n - 1) * B + b) * dc : nullptr;
        for (int i = threadIdx.x; i < dc; i += MLA_DECODE_THREADS) {
            cpos[i] = mla_rms_apply(i == (int)threadIdx.x ? g0 : bf2f(gain[i]), bf2f(ab[i]), r);
            if (slot) slot[i] = cpos[i];
        }
    }
    /* 1. q~_h = tau W_uk,h q_h (head h0's first passes from wuk); the passes' trip count is the same in every lane */
    for (int hg = 0; hg < HG; hg++) {
        const int col = (h0 + hg) * FLASH_HD + c8;
        float q[8];
        unpack8(q, hg == 0 ? q0 : *reinterpret_cast<const uint4 *>(q1 + (size_t)b * C + col));
        auto qt_pass = [&](int r0, const uint4 *u) {
#pragma unroll
            for (int i = 0; i < MLA_UNROLL; i++) {
                float w[8], dot = 0.0f;
                unpack8(w, u[i]);
#pragma unroll
                for (int e = 0; e < 8; e++) dot += w[e] * q[e];
                dot = lane_group_sum(dot, 8);
                const int r = r0 + i * MLA_ROWS;
                if (threadIdx.x % 8 == 0 && r < dc) qt[hg * dc + r] = tau * dot;
            }
        };
        int r0 = rg;
        if (hg == 0)
#pragma unroll
            for (int p = 0; p < PRE_UK; p++, r0 += MLA_ROWS * MLA_UNROLL)
                if (r0 - rg < dc) qt_pass(r0, wuk[p]);
        for (; r0 - rg < dc; r0 += MLA_ROWS * MLA_UNROLL) {
            uint4 u[MLA_UNROLL];
            mla_load_rows(u, Wuk, C, col, r0, dc);
            qt_pass(r0, u);
        }
    }
    __syncthreads();
    /* 2. this split's positions: a warp per position, lane chunks r = 8 * lane + 256 * i */
    float qr[HG][RC][8], o[HG][RC][8], m[HG], l[HG];
#pragma unroll
    for (int hg = 0; hg < HG; hg++) {
        m[hg] = -INFINITY;
        l[hg] = 0.0f;
#pragma unroll
        for (int i = 0; i < RC; i++)
#pragma unroll
            for (int e = 0; e < 8; e++) {
                const int r = 8 * lane + 256 * i + e;
                qr[hg][i][e] = r < dc ? qt[hg * dc + r] : 0.0f;
                o[hg][i][e] = 0.0f;
            }
    }
    /* a round: the NP positions j, j + MLA_WARPS, ... (their latents in c) folded into the HG states */
    auto fold_round = [&](int j, const float (&c)[NP][RC][8]) {
#pragma unroll
        for (int hg = 0; hg < HG; hg++) {
            float s[NP];
#pragma unroll
            for (int q = 0; q < NP; q++) {
                s[q] = 0.0f;
#pragma unroll
                for (int i = 0; i < RC; i++)
#pragma unroll
                    for (int e = 0; e < 8; e++) s[q] += qr[hg][i][e] * c[q][i][e];
            }
#pragma unroll
            for (int q = 0; q < NP; q++) s[q] = warp_sum(s[q]);
#pragma unroll
            for (int q = 0; q < NP; q++) {
                if (j + q * MLA_WARPS >= j1) break;
                float scale, p;
                softmax_state_step(&m[hg], &l[hg], s[q], &scale, &p);
#pragma unroll
                for (int i = 0; i < RC; i++)
#pragma unroll
                    for (int e = 0; e < 8; e++) o[hg][i][e] = o[hg][i][e] * scale + p * c[q][i][e];
            }
        }
    };
    /* the latents of the round starting at position j (zeros past the split; c_pos from shared memory, step 0) */
    auto load_round = [&](int j, uint4 (&u)[NP][RC]) {
#pragma unroll
        for (int q = 0; q < NP; q++) {
            const int jq = j + q * MLA_WARPS;
#pragma unroll
            for (int i = 0; i < RC; i++) {
                const int r = 8 * lane + 256 * i;
                const bf16 *cj = jq == n - 1 ? cpos : cb + jq * slot;
                u[q][i] = r < dc && jq < j1 ? *reinterpret_cast<const uint4 *>(cj + r) : make_uint4(0u, 0u, 0u, 0u);
            }
        }
    };
    /* the warp's first round from the latents requested before the wait (pos's from shared memory, step 0), the
     * others loaded one round ahead of the one folded, so that a round's loads wait behind the previous round's
     * arithmetic, not its latency; a loop whose first round picked between the two was slower at long chunks */
    const int round = MLA_WARPS * NP;
    uint4 ahead[NP][RC];
    if (j0 + warp < j1) {
        float c[NP][RC][8];
#pragma unroll
        for (int q = 0; q < NP; q++)
#pragma unroll
            for (int i = 0; i < RC; i++) {
                const int jq = j0 + warp + q * MLA_WARPS, r = 8 * lane + 256 * i;
                unpack8(c[q][i], jq != n - 1     ? cfirst[q][i]
                                 : r < dc         ? *reinterpret_cast<const uint4 *>(cpos + r)
                                                  : make_uint4(0u, 0u, 0u, 0u));
            }
        if (j0 + warp + round < j1) load_round(j0 + warp + round, ahead); /* cfirst's registers free by now */
        fold_round(j0 + warp, c);
    }
    for (int j = j0 + warp + round; j < j1; j += round) {
        float c[NP][RC][8];
#pragma unroll
        for (int q = 0; q < NP; q++)
#pragma unroll
            for (int i = 0; i < RC; i++) unpack8(c[q][i], ahead[q][i]);
        if (j + round < j1) load_round(j + round, ahead);
        fold_round(j, c);
    }
#pragma unroll
    for (int hg = 0; hg < HG; hg++) {
        float *mine = wst + (warp * HG + hg) * sw;
        if (lane == 0) {
            mine[0] = m[hg];
            mine[1] = l[hg];
        }
#pragma unroll
        for (int i = 0; i < RC; i++)
#pragma unroll
            for (int e = 0; e < 8; e++) {
                const int r = 8 * lane + 256 * i + e;
                if (r < dc) mine[2 + r] = o[hg][i][e];
            }
    }
    __syncthreads();
    softmax_states_merge(bst, wsh, wst, MLA_WARPS, HG * sw, HG, dc, nsplit == 1); /* warp w's at wst + w HG sw */
    __syncthreads();
    /* 3. o_h = cbar_h W_uv,h. With one split straight from the block's state; with several, each split projects its
     * unnormalised state, [m, l, o] -> [m, l, o W_uv,h] (the product is linear in o), and the cluster's first block
     * merges those 64-wide states in split order: the splits' products run side by side and the W_uv,h slice is no
     * longer read after the merge */
    constexpr int PW = FLASH_HD + 2; /* floats a projected state */
    for (int hg = 0; hg < HG; hg++) {
        const float v = mla_up_project(bst + hg * sw + 2, Wuv, h0 + hg, C, dc, rows);
        if (threadIdx.x < FLASH_HD) {
            if (nsplit == 1) y[(size_t)b * C + (h0 + hg) * FLASH_HD + threadIdx.x] = f2bf(v);
            else pst[hg * PW + 2 + threadIdx.x] = v;
        }
        if (nsplit > 1 && threadIdx.x < 2) pst[hg * PW + threadIdx.x] = bst[hg * sw + threadIdx.x];
    }
    if (nsplit == 1 || !softmax_states_cluster_gather(wst, wsh, pst, inbox, split, nsplit, FLASH_HD, HG)) return; /* wst free */
    for (int i = threadIdx.x; i < HG * FLASH_HD; i += MLA_DECODE_THREADS)
        y[(size_t)b * C + h0 * FLASH_HD + i] = f2bf(wst[i / FLASH_HD * PW + 2 + i % FLASH_HD]);
}

/* The instantiations: heads per block HG (a divisor of H) and 256-value latent chunks per lane RC (dc <= 256 RC), with
 * HG * RC <= MLA_STATE_REGS so q~ and o stay in registers. A block serving HG heads reads each latent once for them but
 * runs the per-head steps 1 and 3 one head after the other, so several heads a block pay only when the caches are
 * long: from B * max_T >= MLA_SHARED_LATENT_TOKENS, then the most heads per block that divide H, else one. Measured on
 * an H200 (GPT-2 124M, decode ms a token, one head a block against four): B = 1, max_T = 1024: 0.565 / 0.789;
 * B = 16, 1024: 0.866 / 1.061; B = 1, 8192: 0.920 / 1.200; B = 4, 8192: 1.766 / 1.578 (docs/PERF.md). The
 * tensor-core path below takes d_c = 256, H <= 16 from B >= 4 and max_T >= 2048, and from max_T >= 8192 at any
 * batch (mla_decode_on_tc), so several heads a block remain for the other ranks, head counts and batches. */
#define MLA_SHARED_LATENT_TOKENS 32768
typedef void (*mla_decode_fn)(bf16 *, const bf16 *, bf16 *, const bf16 *, const bf16 *, const bf16 *, const bf16 *,
                              int, int, int, const int32_t *, float);
static mla_decode_fn mla_decode_pick(int H, int dc, int B, int max_T, int *hg) {
    const int chunks = dc <= 256 ? 0 : dc <= 512 ? 1 : 2, rc = 1 << chunks; /* row: RC = 1, 2, 4 */
    *hg = 1;
    for (int k = MLA_STATE_REGS / rc; k > 1 && (long)B * max_T >= MLA_SHARED_LATENT_TOKENS; k--)
        if (H % k == 0) {
            *hg = k;
            break;
        }
    static const mla_decode_fn table[3][MLA_STATE_REGS] = {
        {mla_decode_kernel<1, 1>, mla_decode_kernel<2, 1>, mla_decode_kernel<3, 1>, mla_decode_kernel<4, 1>},
        {mla_decode_kernel<1, 2>, mla_decode_kernel<2, 2>, NULL, NULL}, /* HG * RC <= MLA_STATE_REGS */
        {mla_decode_kernel<1, 4>, NULL, NULL, NULL},
    };
    return table[chunks][*hg - 1];
}

/* mla_decode_kernel's shared memory (see above). hg * dc <= 1024 (MLA_STATE_REGS chunks of 256) and splits <=
 * KVD_MAX_SPLITS: at most ~52 KB, over the 48 KB a launch gets without an attribute from 4 heads a block (or 2 with 2
 * chunks a lane, or 4 chunks) */
static size_t mla_decode_shmem(int dc, int hg, int splits) {
    return (size_t)(dc / 2 + hg * dc + (MLA_WARPS + 1) * hg * (dc + 2) + hg * (splits > MLA_WARPS ? splits : MLA_WARPS) +
                    MLA_ROWS * FLASH_HD + (splits > 1 ? splits + 1 : 1) * hg * (FLASH_HD + 2)) * sizeof(float);
}

/* kernel's dynamic shared memory raised to bytes where that is over the default 48 KB: once a kernel and size,
 * outside any recording (the first call is a direct one or a recording's first). For the decode kernels of
 * mla_decode_pick's table and mla_tc_kernel. */
static ab_status mla_decode_allow_smem(const void *kernel, size_t bytes) {
    static struct {
        const void *kernel;
        size_t bytes;
    } allowed[3 * MLA_STATE_REGS + 1]; /* at most one entry a kernel */
    if (bytes <= 48 * 1024) return AB_OK;
    int i = 0;
    while (allowed[i].kernel && allowed[i].kernel != kernel) i++;
    if (allowed[i].bytes >= bytes) return AB_OK;
    CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes), "mla decode shared memory");
    allowed[i].kernel = kernel;
    allowed[i].bytes = bytes;
    return AB_OK;
}

/* ---- long contexts: the absorbed decode on the tensor cores ----
 * Absorbed, decode is attention with the H heads as the query rows (padded to 16) against one matrix c of the
 * positions' latents, which is both key and value: S = Q~ C^T, O = P C. From B >= MLA_TC_MIN_BATCH and max_T >=
 * MLA_TC_MIN_CONTEXT, and at any batch from max_T >= MLA_TC_LONG_CONTEXT (H <= 16, dc = MLA_TC_DC; mla_decode_on_tc)
 * it runs as three kernels, each launched programmatically dependent
 * on the one before: mla_qt_kernel (q~ = tau W_uk,h q_h, bf16, and the new latent's RMSNorm into the cache),
 * mla_tc_kernel (the positions of a sequence over up to MLA_TC_MAX_CLUSTERS clusters of up to 16 splits, one wave of
 * blocks, each latent read once for all heads; m16n8k16 products, online softmax per head row as in the flash
 * kernels; the warps' and a cluster's splits' states merged in order, one state a cluster and head into part) and
 * mla_uv_kernel (the clusters' states merged in order into cbar_h, then y_h = cbar_h W_uv,h). The CUDA-core kernel
 * above re-reads each latent once a head. On an H200 (twelfth session; decode ms a token, CUDA-core / this path):
 * B = 4, max_T = 8192: 0.740-0.757 / 0.637-0.642; B = 4, 2048: 0.622 / 0.586; but B = 1, 8192: 0.375 / 0.448-0.450;
 * B = 1, 2048: 0.305 / 0.421 (three kernels' latency where there was one); from 1024 positions B = 1: 0.289 /
 * 0.412, B = 16: 0.642 / 1.063 (two waves of blocks then). Earlier, as one cluster of at most 16 blocks a sequence
 * launched normally (4 warps a block): B = 2, 8192: 0.74 / 0.80; B = 16, 512: 0.72 / 1.13 (docs/PERF.md). With the
 * cluster's merge spread over its blocks (thirteenth session): B = 4, 8192: 0.635 / 0.554-0.574, 2048: 0.571 /
 * 0.496-0.518; B = 1, 8192: 0.366-0.380 / 0.353-0.362, 4096: 0.325 / 0.351, 2048: 0.290 / 0.343-0.346. */
#define MLA_TC_DC 256
#define MLA_TC_WARPS 8
#define MLA_TC_POS 16        /* positions per tile: one k block of P C */
#define MLA_TC_MIN_KEYS 64   /* positions per split at the longest context, at least */
#define MLA_TC_MIN_BATCH 4
#define MLA_TC_MIN_CONTEXT 2048
#define MLA_TC_LONG_CONTEXT 8192

/* whether mla_decode runs on the tensor cores (on the shape only, never the position) */
static bool mla_decode_on_tc(const ab_attn_config *cfg, int B) {
    const bool by_size = (B >= MLA_TC_MIN_BATCH && cfg->max_T >= MLA_TC_MIN_CONTEXT) || cfg->max_T >= MLA_TC_LONG_CONTEXT;
    return by_size && cfg->H <= 16 && cfg->hp.mla_kv_rank == MLA_TC_DC;
}

/* q~ (B,H,MLA_TC_DC) bf16 = tau W_uk,h q_h: grid B*H, MLA_TC_DC threads, thread r row r's 64 weights (requested
 * before the programmatic-launch wait: a constant) against q_h in shared memory. The block of head 0 of sequence b
 * also writes the new latent c_pos = RMSNorm(a1_b) g into the cache's slot pos = *pos_dev (mla_rms_rstd,
 * mla_rms_out: the RMSNorm kernel's bits), which mla_tc_kernel reads after its wait. */
__global__ void __launch_bounds__(MLA_TC_DC) mla_qt_kernel(bf16 *qt, bf16 *cache, const bf16 *q1, const bf16 *a1,
                                                           const bf16 *gain, const bf16 *Wuk, int B, int H,
                                                           const int32_t *pos_dev, float tau) {
    constexpr int DC = MLA_TC_DC;
    __shared__ float q[FLASH_HD];
    pdl_release(); /* the next kernel may be scheduled early (cuda_common.cuh) */
    const int bh = blockIdx.x, b = bh / H, h = bh % H, C = H * FLASH_HD, r = threadIdx.x;
    const uint4 *w = reinterpret_cast<const uint4 *>(Wuk + (size_t)r * C + h * FLASH_HD);
    uint4 u[FLASH_HD / 8]; /* row r's weights, 8 x 16 bytes in flight */
#pragma unroll
    for (int i = 0; i < FLASH_HD / 8; i++) u[i] = w[i];
    pdl_wait(); /* the product before this wrote q1 and a1 */
    if (h == 0) {
        const bf16 *ab = a1 + (size_t)b * DC;
        const float rstd = mla_rms_rstd(ab, DC, r % 32);
        cache[((size_t)*pos_dev * B + b) * DC + r] = mla_rms_out(ab, gain, rstd, r);
    }
    if (r < FLASH_HD) q[r] = bf2f(q1[(size_t)b * C + h * FLASH_HD + r]);
    __syncthreads();
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < FLASH_HD / 8; i++) {
        float wv[8];
        unpack8(wv, u[i]);
#pragma unroll
        for (int e = 0; e < 8; e++) sum += wv[e] * q[i * 8 + e];
    }
    qt[(size_t)bh * DC + r] = f2bf(tau * sum);
}

/* y (B,C) = cbar_h W_uv,h: grid B*H, MLA_DECODE_THREADS threads. cbar_h is the merge, in cluster order, of the
 * clusters' states of (b, h) in part (B, MLA_TC_MAX_CLUSTERS, H, dc + 2), normalised; the block's first pass of
 * W_uv,h is requested before the programmatic-launch wait (mla_up_project). Shared memory: the merged state (dc + 2)
 * | merge weights (clusters) | rows MLA_ROWS x 64. */
__global__ void __launch_bounds__(MLA_DECODE_THREADS) mla_uv_kernel(bf16 *y, const float *part, const bf16 *Wuv, int H,
                                                                     int dc, int clusters) {
    extern __shared__ float sh[];
    pdl_release();
    const int bh = blockIdx.x, b = bh / H, h = bh % H, C = H * FLASH_HD, sw = dc + 2;
    uint4 first[MLA_UNROLL];
    mla_load_rows(first, Wuv, C, h * FLASH_HD + (threadIdx.x % 8) * 8, threadIdx.x / 8, dc);
    pdl_wait(); /* mla_tc_kernel wrote part */
    float *st = sh, *w = st + sw, *rows = w + clusters;
    const float *mine = part + ((size_t)b * MLA_TC_MAX_CLUSTERS * H + h) * sw; /* cluster k's at mine + k H sw */
    softmax_states_merge(st, w, mine, clusters, H * sw, 1, dc, true);
    __syncthreads();
    const float v = mla_up_project(st + 2, Wuv, h, C, dc, rows, first);
    if (threadIdx.x < FLASH_HD) y[(size_t)b * C + h * FLASH_HD + threadIdx.x] = f2bf(v);
}

/* element offset of (row, 16-byte chunk) in a swizzled tile of rows of MLA_TC_DC bf16 (flash_attn.cuh's swizzle) */
__device__ __forceinline__ int mla_tc_sw(int row, int chunk) { return sw_cols<MLA_TC_DC>(row, chunk); }

/* part (B, MLA_TC_MAX_CLUSTERS, H, dc + 2) fp32: grid (B, clusters x csplit), clusters (1, csplit), MLA_TC_WARPS
 * warps. Split s (blockIdx.y) takes the positions s*chunk .. of the n = pos + 1 (chunk = ceil(n / splits), splits =
 * gridDim.y); warp w the tiles of MLA_TC_POS positions w, w + MLA_TC_WARPS, ... of them, staged by cp.async into the
 * warp's two tile buffers (the next one loads while this one is used). The warp's first tile is requested before the
 * programmatic-launch wait, but for position pos (mla_qt_kernel writes it) and Q~ (16 x dc, rows past H zeros), which
 * come after it. Per tile: S (16 x 16) = Q~ C^T (A fragments by ldmatrix, ldmatrix of the position-major tile),
 * positions past the split masked; the online softmax of each head row (rows g and g + 8 of the thread, quad
 * shuffles); O (16 x dc, 32 accumulator tiles) += P C (P from S's registers as bf16 A fragments, C by
 * ldmatrix.trans). The warps' states merge in shared memory, the heads side by side, then the cluster's splits, in
 * split order, not normalised, head h by the block of rank h % csplit, which every block pushes its state of h to
 * (the cluster gather of cuda_common.cuh), into part (b, cluster) (m, l, o), which mla_uv_kernel merges. A split
 * past the positions keeps the empty state (m = -inf, l = 0, o = 0), which the merges weigh 0; split 0 always holds
 * position 0.
 * Shared memory: Q~ 16 x dc bf16 | the warps' tiles MLA_TC_WARPS x 2 x 16 x dc bf16, later the warps' states
 * MLA_TC_WARPS x H x (dc + 2) fp32 | the block's states H x (dc + 2) | merge weights | with csplit > 1 the inbox,
 * ceil(H / csplit) x csplit x (dc + 2) fp32: the cluster's states of the heads the block merges, slot (h / csplit) *
 * csplit + rank for head h from rank rank. */
__global__ void __launch_bounds__(MLA_TC_WARPS * 32) mla_tc_kernel(float *part, const bf16 *qt, const bf16 *cache, int B,
                                                                    int H, const int32_t *pos_dev, int csplit) {
    constexpr int DC = MLA_TC_DC, NCH = DC / 8, SW = DC + 2, TILE = MLA_TC_POS * DC;
    extern __shared__ __align__(16) unsigned char mla_tc_smem[];
    pdl_release(); /* the up-projection after this may be scheduled early (cuda_common.cuh) */
    if (csplit > 1) cluster_gather_open();
    bf16 *sQ = reinterpret_cast<bf16 *>(mla_tc_smem), *sC = sQ + 16 * DC;
    const int n = *pos_dev + 1, b = blockIdx.x, split = blockIdx.y, nsplit = gridDim.y;
    const int rank = split % csplit, cl = split / csplit; /* the block's rank in its cluster, the cluster */
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, g = lane / 4, c = lane % 4;
    const size_t wstates = (size_t)MLA_TC_WARPS * H * SW * sizeof(float);
    const size_t tiles = (size_t)MLA_TC_WARPS * 2 * TILE * sizeof(bf16);
    float *wst = reinterpret_cast<float *>(sC), *bst = reinterpret_cast<float *>(reinterpret_cast<unsigned char *>(sC) +
                                                                                   (wstates > tiles ? wstates : tiles));
    float *wsh = bst + H * SW, *inbox = wsh + H * (KVD_MAX_SPLITS > MLA_TC_WARPS ? KVD_MAX_SPLITS : MLA_TC_WARPS);
    const int chunk = (n + nsplit - 1) / nsplit, j0 = split * chunk, j1 = min(n, j0 + chunk);
    const bf16 *cb = cache + (size_t)b * DC; /* c_j of sequence b: cb + j * slot */
    const size_t slot = (size_t)B * DC;
    bf16 *const buf0 = sC + (size_t)warp * 2 * TILE; /* the warp's two tile buffers: buf0, buf0 + TILE */
    /* positions jt .. jt + 15 (zeros past j1); `early`: before the wait, so not position pos, left for after it */
    auto stage = [&](bf16 *dst, int jt, bool early) {
        for (int i = lane; i < MLA_TC_POS * NCH; i += 32) {
            const int row = i / NCH, ch = i % NCH, j = jt + row;
            if (early && j == n - 1 && j < j1) continue;
            cp_async16(smem_addr(dst + mla_tc_sw(row, ch)), cb + (size_t)(j < j1 ? j : j0) * slot + ch * 8, j < j1);
        }
    };
    const int step = MLA_TC_POS * MLA_TC_WARPS;
    int jt = j0 + warp * MLA_TC_POS;
    if (jt < j1) stage(buf0, jt, true);
    pdl_wait(); /* mla_qt_kernel wrote Q~ and position pos */
    if (n - 1 >= jt && n - 1 < jt + MLA_TC_POS && n - 1 < j1)
        for (int ch = lane; ch < NCH; ch += 32)
            cp_async16(smem_addr(buf0 + mla_tc_sw(n - 1 - jt, ch)), cb + (size_t)(n - 1) * slot + ch * 8, true);
    for (int i = tid; i < 16 * NCH; i += blockDim.x) { /* Q~ rows 0..H-1 of b, zeros below */
        const int row = i / NCH, ch = i % NCH;
        const bf16 *src = qt + ((size_t)b * H + (row < H ? row : 0)) * DC + ch * 8;
        cp_async16(smem_addr(sQ + mla_tc_sw(row, ch)), src, row < H);
    }
    cp_async_commit();
    cp_async_wait_all(); /* this thread's part of Q~ and of its first tile are in */
    __syncthreads();     /* every thread's: the warps read all of Q~ */
    float o[DC / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int t = 0; t < DC / 8; t++) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
    for (int it = 0; jt < j1; jt += step, it ^= 1) {
        if (jt + step < j1) stage(buf0 + (it ^ 1) * TILE, jt + step, false);
        cp_async_commit();
        asm volatile("cp.async.wait_group 1;\n" ::); /* this tile is in (the lane's copies) */
        __syncwarp();                                  /* and the other lanes' */
        const bf16 *tC = buf0 + it * TILE;
        /* S = Q~ C^T */
        float s[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
        for (int ks = 0; ks < DC / 16; ks++) {
            uint32_t a[4], bk[4];
            ldsm_x4(a, smem_addr(sQ + mla_tc_sw((lane & 7) + ((lane >> 3) & 1) * 8, 2 * ks + (lane >> 4))));
            ldsm_x4(bk, smem_addr(tC + mla_tc_sw((lane & 7) + (lane >> 4) * 8, 2 * ks + ((lane >> 3) & 1))));
            mma_bf16(s[0], a, bk[0], bk[1]);
            mma_bf16(s[1], a, bk[2], bk[3]);
        }
        /* the online softmax of rows g (s[.][0..1]) and g + 8 (s[.][2..3]) */
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                if (jt + nt * 8 + 2 * c + (e & 1) >= j1) s[nt][e] = -INFINITY;
        float scale[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float mx = fmaxf(fmaxf(s[0][2 * r], s[0][2 * r + 1]), fmaxf(s[1][2 * r], s[1][2 * r + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float mn = fmaxf(m[r], mx); /* finite: a tile holds at least one position of the split */
            scale[r] = __expf(m[r] - mn);
            m[r] = mn;
            float sum = 0.0f;
#pragma unroll
            for (int nt = 0; nt < 2; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    s[nt][2 * r + e] = __expf(s[nt][2 * r + e] - mn);
                    sum += s[nt][2 * r + e];
                }
            l[r] = l[r] * scale[r] + sum;
        }
#pragma unroll
        for (int t = 0; t < DC / 8; t++) {
            o[t][0] *= scale[0]; o[t][1] *= scale[0];
            o[t][2] *= scale[1]; o[t][3] *= scale[1];
        }
        /* O += P C */
        const uint32_t pa[4] = {pack_bf16(s[0][0], s[0][1]), pack_bf16(s[0][2], s[0][3]), pack_bf16(s[1][0], s[1][1]),
                                pack_bf16(s[1][2], s[1][3])};
#pragma unroll
        for (int dt = 0; dt < DC / 16; dt++) {
            uint32_t bv[4];
            ldsm_x4_t(bv, smem_addr(tC + mla_tc_sw((lane & 7) + ((lane >> 3) & 1) * 8, 2 * dt + (lane >> 4))));
            mma_bf16(o[2 * dt], pa, bv[0], bv[1]);
            mma_bf16(o[2 * dt + 1], pa, bv[2], bv[3]);
        }
        __syncwarp(); /* this buffer is staged again two tiles on */
    }
    cp_async_wait_all();
    __syncthreads(); /* the tile buffers become the warps' states */
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        const int h = g + 8 * r;
        if (h >= H) continue;
        float *mine = wst + ((size_t)warp * H + h) * SW;
        if (c == 0) {
            mine[0] = m[r];
            mine[1] = l[r];
        }
#pragma unroll
        for (int t = 0; t < DC / 8; t++) {
            mine[2 + t * 8 + 2 * c] = o[t][2 * r];
            mine[2 + t * 8 + 2 * c + 1] = o[t][2 * r + 1];
        }
    }
    __syncthreads();
    /* the warps that had tiles (the others' states are empty, weighed 0): at batch 1 a split may fill half of them */
    const int busy = min(MLA_TC_WARPS, (chunk + MLA_TC_POS - 1) / MLA_TC_POS);
    softmax_states_merge(bst, wsh, wst, busy, H * SW, H, DC, false); /* warp w's at wst + w H SW */
    __syncthreads();
    float *out = part + ((size_t)b * MLA_TC_MAX_CLUSTERS + cl) * H * SW;
    if (csplit == 1) {
        for (int i = tid; i < H * SW; i += blockDim.x) out[i] = bst[i];
        return;
    }
    /* the cluster's splits merged head by head, head h by the block of rank h % csplit, in split order, straight
     * into part: each block merges a head's states where the first block merged all H */
    cluster_gather_begin();
    for (int i = tid; i < H * SW; i += blockDim.x) {
        const int h = i / SW;
        cluster_shared(inbox, h % csplit)[((h / csplit) * csplit + rank) * SW + i % SW] = bst[i];
    }
    cluster_gather_end();
    if (rank >= H) return; /* no head to merge */
    cluster_gather_collect();
    for (int h = rank; h < H; h += csplit) {
        softmax_states_merge(out + h * SW, wsh, inbox + (h / csplit) * csplit * SW, csplit, SW, 1, DC, false);
        __syncthreads(); /* wsh is written again for the next head */
    }
}

/* mla_tc_kernel's dynamic shared memory for H heads */
static size_t mla_tc_smem_bytes(int H) {
    const size_t q = (size_t)16 * MLA_TC_DC * sizeof(bf16);
    const size_t tiles = (size_t)MLA_TC_WARPS * 2 * MLA_TC_POS * MLA_TC_DC * sizeof(bf16);
    const size_t wstates = (size_t)MLA_TC_WARPS * H * (MLA_TC_DC + 2) * sizeof(float);
    const size_t inbox = (size_t)(H + KVD_MAX_SPLITS - 1) * (MLA_TC_DC + 2) * sizeof(float); /* any csplit */
    return q + (tiles > wstates ? tiles : wstates) + (size_t)H * (MLA_TC_DC + 2) * sizeof(float) +
           (size_t)H * (KVD_MAX_SPLITS > MLA_TC_WARPS ? KVD_MAX_SPLITS : MLA_TC_WARPS) * sizeof(float) + inbox;
}

/* The tensor-core path's grid for B sequences and up to max_T positions: csplit splits a cluster (up to 16, each
 * keeping at least MLA_TC_MIN_KEYS positions at the longest context, and no more than one block an SM over the B
 * sequences: the kernel's shared memory allows one) and *clusters clusters a sequence, as many as are resident at
 * once over the B sequences (one wave), at most MLA_TC_MAX_CLUSTERS and keeping MLA_TC_MIN_KEYS positions a split.
 * On the shape only, never the position. */
static ab_status mla_tc_grid(ab_backend *be, int B, int H, int max_T, int *csplit, int *clusters) {
    const size_t smem = mla_tc_smem_bytes(H);
    const int wave = cuda_of(be)->sm_count / B;
    *csplit = attn_decode_splits(be, B, max_T, MLA_TC_MIN_KEYS);
    if (*csplit > wave) *csplit = wave > 1 ? wave : 1;
    AB_TRY(mla_decode_allow_smem((const void *)mla_tc_kernel, smem));
    if (*csplit > 8)
        CUDA_TRY(cudaFuncSetAttribute(mla_tc_kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1), "mla_tc clusters");
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = 1;
    attr.val.clusterDim.z = 1;
    cudaLaunchConfig_t lc = {};
    lc.blockDim = dim3(MLA_TC_WARPS * 32);
    lc.dynamicSmemBytes = smem;
    lc.attrs = &attr;
    lc.numAttrs = 1;
    int resident = 0;
    for (;;) { /* halved where no cluster of csplit blocks, one an SM, fits a GPC (fewer SMs a GPC than the H200's) */
        attr.val.clusterDim.y = (unsigned)*csplit;
        lc.gridDim = dim3((unsigned)B, (unsigned)*csplit);
        CUDA_TRY(cudaOccupancyMaxActiveClusters(&resident, mla_tc_kernel, &lc), "mla_tc cluster occupancy");
        if (resident > 0 || *csplit == 1) break;
        *csplit /= 2;
    }
    int k = resident / B, by_keys = max_T / (*csplit * MLA_TC_MIN_KEYS);
    if (k > by_keys) k = by_keys;
    if (k > MLA_TC_MAX_CLUSTERS) k = MLA_TC_MAX_CLUSTERS;
    *clusters = k < 1 ? 1 : k;
    return AB_OK;
}

/* the tensor-core path of mla_decode from the two projections' outputs on (see above): three kernels, each
 * programmatically dependent on the one before */
static ab_status mla_decode_tc(const ab_attn_ctx *ctx, const ab_attn_weights *w, const mla_decode_ws *v, void *cache,
                               void *y, int B, const int32_t *pos_dev) {
    const ab_attn_config *cfg = ctx->cfg;
    ab_backend *be = ctx->be;
    const int H = cfg->H, dc = cfg->hp.mla_kv_rank;
    int csplit = 1, clusters = 1;
    AB_TRY(mla_tc_grid(be, B, H, cfg->max_T, &csplit, &clusters));
    AB_TRY(cuda_launch(be, "mla q~", mla_qt_kernel, dim3((unsigned)(B * H)), dim3(1, 1, 1), dim3(MLA_TC_DC), 0, 1, v->qt,
                       (bf16 *)cache, (const bf16 *)v->q1, (const bf16 *)v->a1, (const bf16 *)w->t[W_NORM],
                       (const bf16 *)w->t[W_UK], B, H, pos_dev, 1.0f / sqrtf((float)cfg->D)));
    AB_TRY(cuda_launch(be, "mla_tc", mla_tc_kernel, dim3((unsigned)B, (unsigned)(clusters * csplit)),
                       dim3(1, (unsigned)csplit), dim3(MLA_TC_WARPS * 32), mla_tc_smem_bytes(H), 1, v->part,
                       (const bf16 *)v->qt, (const bf16 *)cache, B, H, pos_dev, csplit));
    const size_t uv_smem = (size_t)(dc + 2 + clusters + MLA_ROWS * FLASH_HD) * sizeof(float);
    return cuda_launch(be, "mla up-projection", mla_uv_kernel, dim3((unsigned)(B * H)), dim3(1, 1, 1),
                       dim3(MLA_DECODE_THREADS), uv_smem, 1, (bf16 *)y, (const float *)v->part,
                       (const bf16 *)w->t[W_UV], H, dc, clusters);
}

/* decode's checks, then its first products as one pair (backend.h, ab_decode_input): q1 (B,C) = LN(x) @ W_q and a1
 * (B,dc) = LN(x) @ W_dkv into the workspace. Chained after the block before at batch 1 the pair is worth 5 us a token
 * on an H200 (0.343-0.344 -> 0.338-0.339 ms; as two chain steps it was slower, 0.380 -> 0.385; docs/PERF.md). */
static ab_status mla_decode_input(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, int B, int pos,
                                  ab_decode_input *in) {
    const ab_attn_config *cfg = ctx->cfg;
    AB_TRY(mla_check(cfg));
    const int dc = cfg->hp.mla_kv_rank;
    if (pos < 0 || pos >= cfg->max_T)
        return ab_fail(AB_ERR_USAGE, "cuda mla decode: position %d outside 0..%d", pos, cfg->max_T - 1);
    if (dc % 8 || dc > MLA_MAX_RANK)
        return ab_fail(AB_ERR_UNSUPPORTED, "cuda mla decode: kv rank %d (needs a multiple of 8, at most %d)", dc,
                       MLA_MAX_RANK);
    if (((uintptr_t)cache | (uintptr_t)ctx->workspace | (uintptr_t)w->t[W_UK] | (uintptr_t)w->t[W_UV]) & 15)
        return ab_fail(AB_ERR_UNSUPPORTED, "cuda mla decode: the cache, workspace and up-projections must be 16-byte aligned");
    const mla_decode_ws v = mla_decode_views(cfg, ctx->workspace, B, NULL);
    decode_input_product(in, v.q1, w->t[W_Q], NULL, cfg->C, cfg->C);
    in->out2 = v.a1;
    in->weight2 = w->t[W_DKV];
    in->OC2 = dc;
    return AB_OK;
}

static ab_status mla_decode(const ab_attn_ctx *ctx, const ab_attn_weights *w, void *cache, void *y, const void *x,
                            int B, int pos) {
    const ab_attn_config *cfg = ctx->cfg;
    ab_backend *be = ctx->be;
    ab_decode_input in;
    AB_TRY(mla_decode_input(ctx, w, cache, B, pos, &in));
    const int C = cfg->C, dc = cfg->hp.mla_kv_rank;
    const int32_t *pos_dev = NULL;
    AB_TRY(cuda_decode_pos(ctx, pos, &pos_dev));
    mla_decode_ws v = mla_decode_views(cfg, ctx->workspace, B, NULL);
    if (!ctx->input_ready) {
        /* both projections read ln_1's output: written out once where the products cannot normalise x themselves */
        ab_attn_ctx pc = *ctx;
        const void *inp;
        AB_TRY(cuda_layernorm_input(be, ctx->ln, x, w->t[W_Q], B, C, C, &inp, &pc.ln));
        int paired; /* one launch for both where the small-M kernel takes them: a kernel less a layer */
        AB_TRY(cuda_gemm_small_m_pair(be, in.out, in.weight, C, in.out2, in.weight2, dc, inp, pc.ln, B, C, &paired));
        if (!paired) {
            AB_TRY(cuda_decode_projection(&pc, in.out, inp, in.weight, NULL, NULL, B, C, C));
            AB_TRY(cuda_decode_projection(&pc, in.out2, inp, in.weight2, NULL, NULL, B, C, dc));
        }
    }
    if (mla_decode_on_tc(cfg, B)) return mla_decode_tc(ctx, w, &v, cache, y, B, pos_dev);
    int hg;
    const mla_decode_fn kernel = mla_decode_pick(cfg->H, dc, B, cfg->max_T, &hg);
    const int groups = B * cfg->H / hg;
    /* splits sized for the longest context, not for pos (the kernel reads pos), at least MLA_MIN_KEYS positions each:
     * at GPT-2's 1024 positions 4 splits where there were 16 (at least 16 positions each), batch 1 0.302-0.303 ->
     * 0.281-0.287 ms a token, at 2048 8 splits, 0.317 -> 0.304 (H200, docs/PERF.md, eleventh session; from 4096 16
     * either way); with each split's state projected by W_uv before the merge (thirteenth session) at least 128
     * positions and at most MLA_MAX_SPLITS, so 8 at 1024, 0.278-0.280 -> 0.268-0.272 (16 there: 0.308; at 2048 16
     * against 8: 0.321 against 0.290); and no more than one wave of blocks holds: a second wave doubles the rounds of
     * the warps in it, where fewer splits add them to every warp (batch 16, 512 positions, H200: two splits in two
     * waves 0.711-0.713 ms a token, one split in one 0.633-0.634). With the splits' states pushed into the first
     * block (softmax_states_cluster_gather) 16 splits of at least 64 positions at 1024 were still slower than 8,
     * 0.302-0.303 against 0.259-0.260 ms at batch 1 (fifteenth session) */
    int splits = attn_decode_splits(be, groups, cfg->max_T, MLA_MIN_KEYS), per_sm;
    if (splits > MLA_MAX_SPLITS) splits = MLA_MAX_SPLITS;
    size_t shmem = mla_decode_shmem(dc, hg, splits);
    AB_TRY(mla_decode_allow_smem((const void *)kernel, shmem)); /* fewer splits take no more */
    CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, MLA_DECODE_THREADS, shmem),
             "mla decode occupancy");
    while (splits > 1 && groups * splits > per_sm * cuda_of(be)->sm_count) splits--;
    shmem = mla_decode_shmem(dc, hg, splits);
    /* the RMSNorm of the new latent inside (step 0), one kernel less a layer; a group's splits are one cluster. At
     * batch 1 programmatically dependent, W_uk's slice and the first latents requested before the wait: 0.339 ->
     * 0.310 ms a token at 512 positions on an H200 (launched dependent without the early requests it had been
     * slower, 0.50 -> 0.55). Beyond batch 1 launched normally: dependent there was measured only with a kernel whose
     * loop chose between the early latents and loads, slower at batch 16 (0.69 -> 0.80 ms; docs/PERF.md) */
    return cuda_launch(be, "mla_decode", kernel, dim3((unsigned)groups, (unsigned)splits), dim3(1, (unsigned)splits),
                       dim3(MLA_DECODE_THREADS), shmem, B == 1, (bf16 *)y, (const bf16 *)v.q1, (bf16 *)cache,
                       (const bf16 *)v.a1, (const bf16 *)w->t[W_NORM], (const bf16 *)w->t[W_UK],
                       (const bf16 *)w->t[W_UV], B, cfg->H, dc, pos_dev, 1.0f / sqrtf((float)cfg->D));
}

extern "C" const ab_attn_ops ab_cuda_attn_mla = {
    mla_saved_bytes, mla_ws_bytes, mla_forward, mla_backward, mla_cache_bytes, mla_prefill, mla_decode, mla_decode_input,
};
