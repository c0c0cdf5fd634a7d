/*
 * test_cuda_attn_mla.c — the CUDA mla variant (src/backend/cuda/attn_mla.cu), taken from the variant table,
 * against its CPU reference (src/attn/mla.c) with the same bf16-rounded weights, inputs and output gradients:
 *  - forward y; backward dx and the gradient of every tensor (q_proj, kv_down, kv_norm gain, k_up, v_up)
 *    accumulated onto non-zero start values (the ops accumulate);
 *  - causality: new tokens after t0 leave rows <= t0 bit-identical and change the rows after t0;
 *  - absorbed inference: prefill of the first T/2 tokens then decode of every later position one token at a
 *    time, and decode of every position from an empty cache, against the CPU forward rows and against the
 *    CUDA (un-absorbed) forward rows (VARIANTS.md: mla decode (absorbed) == mla forward); the cache starts
 *    filled with NaN, so reading a slot that was never written (a later position, another sequence) fails;
 *  - cache size: d_c bf16 per token and sequence, nothing else; head sizes other than 64 refused with
 *    AB_ERR_UNSUPPORTED by every op.
 * Shapes cover T not a multiple of the 64-tile, B > 1, H in {2, 3, 4, 5, 12}, d_c in {40, 64, 128, 256, 320, 520} (1, 2 and
 * 4 latent chunks a lane), max_T = T + 3, 1024 (decode of positions 0..299 of a long cache) and 8192 at B = 4 (decode
 * blocks of 2, 3 and 4 heads, which the kernel takes from B * max_T >= 32768; one head a block below), T = 1100 and
 * 300 with splits of up to 220 and 19 positions (seven rounds a warp: the latents loaded a round ahead); and the
 * tensor-core decode (d_c = 256, H <= 16, B >= 4, max_T >= 2048): B = 4, 5, 9, H = 3, 12, 16, positions split over
 * blocks and over several clusters (most of their splits past the positions decoded), at B = 9 clusters of 14 (one
 * block an SM), at B = 72 clusters of one block; and the CUDA-core decode of long caches at B = 1, 2 (16 splits of
 * up to 19 positions).
 * A failing case names the shape (B, T, H, dc), the tensor and its worst element.
 *
 * Tolerance against the fp32 CPU reference: relative L2 error <= 2e-2 per tensor and every element within 5%
 * of the tensor's largest magnitude, because q, a, c, k, v are stored in bf16 and enter the flash core's
 * tensor-core products as bf16 (2^-8 relative each, through a softmax and two products), as do dq, dk, dv, da
 * and the outputs; the same bound as the other flash-based variants. NaN or inf anywhere fails.
 */
#include <math.h>

#include "backend/cuda/cuda_attn.h"
#include "test_cuda_attn_util.h"

static ab_backend cpu, cuda;

static void case_name(char *out, size_t size, const att_case *c, const char *what) {
    snprintf(out, size, "attn[mla,cuda,B=%d,T=%d,H=%d,dc=%d].%s", c->B, c->T, c->cfg.H, c->cfg.hp.mla_kv_rank, what);
}

/* The variant against its CPU reference: forward, backward, causality, prefill + decode. */
static void test_case(int B, int T, int H, int dc, int max_T) {
    char name[200];
    att_case c;
    tc_att_setup(&c, &cpu, VARIANT_MLA, B, T, H, (ab_attn_hparams){.mla_kv_rank = dc}, max_T, 5000 + 7 * T + H + dc);
    case_name(name, sizeof name, &c, "ops");
    const ab_attn_ops *ops = tc_cuda_variant_ops(VARIANT_MLA, name);
    if (!ops) {
        att_free(&c);
        return;
    }
    check_layer(&c, ops, case_name);
    att_free(&c);
}

/* Only the latent: d_c bf16 per token and sequence for the whole context (1/6 of MHA's 2*C at the defaults). */
static void test_cache_sizes(void) {
    ab_attn_config cfg = {.C = 768, .H = 12, .D = 64, .max_T = 1024, .train_T = 1024};
    ab_attn_resolve_hparams(&cfg);
    const ab_attn_ops *ops = tc_cuda_variant_ops(VARIANT_MLA, "attn[mla,cuda].cache_bytes");
    if (!ops) return;
    const int B = 3;
    size_t got = ops->cache_bytes(&cfg, B, cfg.max_T), want = (size_t)B * 1024 * 256 * 2;
    TEST_TRUE("attn[mla,cuda,H=12,dc=256,max_T=1024].cache_bytes", cfg.hp.mla_kv_rank == 256 && got == want,
              "%zu bytes, want %zu (d_c = %d bf16 per token and sequence)", got, want, cfg.hp.mla_kv_rank);
}

/* Every op refuses head size 32 before touching any buffer. */
static void test_head_size_refused(void) {
    const char *name = "attn[mla,cuda,D=32].unsupported";
    const ab_attn_ops *ops = tc_cuda_variant_ops(VARIANT_MLA, name);
    if (ops) check_head_size_refused(name, ops);
}

int main(void) {
    if (!tc_open(&cpu, &cuda)) return TEST_SUMMARY();
    test_cache_sizes();
    test_head_size_refused();
    static const int cases[][5] = {/* B, T, H, dc, max_T (0: T + 3) */
                                   {2, 100, 2, 64, 0}, {1, 128, 2, 256, 0}, {2, 257, 12, 256, 0}, {3, 64, 3, 64, 0},
                                   {1, 9, 2, 256, 0},  {2, 130, 12, 64, 0}, {2, 77, 2, 40, 0},
                                   /* latents past 256 (2 and 4 chunks a lane) */
                                   {1, 70, 5, 64, 0},  {2, 50, 4, 320, 0}, {1, 40, 2, 520, 0},
                                   /* B * max_T >= 32768: decode blocks of several heads (4, 2 with 2 chunks a lane, 3) */
                                   {4, 40, 12, 128, 8192}, {4, 24, 2, 320, 8192}, {4, 24, 3, 64, 8192},
                                   /* the tensor-core decode: d_c = 256, H <= 16, B >= 4 and max_T >= 2048, or any
                                    * B from max_T >= 8192 */
                                   {4, 200, 12, 256, 8192}, {4, 60, 12, 256, 4096}, {4, 90, 3, 256, 4096},
                                   {5, 70, 16, 256, 4096}, {4, 150, 12, 256, 2048}, {9, 40, 12, 256, 2048},
                                   {1, 300, 12, 256, 8192},
                                   /* more sequences than half the SMs: one block a sequence (no cluster) */
                                   {72, 10, 3, 256, 2048},
                                   /* the CUDA-core decode of long caches at batch 1 and 2 */
                                   {1, 300, 12, 256, 4096}, {2, 200, 12, 256, 4096},
                                   /* GPT-2's heads and rank with a 1024-position cache: the decode splits the
                                    * positions over blocks sized for the whole cache, positions 0..299 use a few */
                                   {1, 300, 12, 256, 1024}, {2, 300, 4, 64, 1024},
                                   /* many rounds a warp (latents loaded a round ahead): 8 splits of up to 138
                                    * positions, 4 a round; 4 heads a block, 8 splits of up to 38 positions, 1 a
                                    * round */
                                   {1, 1100, 2, 256, 0}, {4, 300, 12, 128, 8192}};
    for (size_t i = 0; i < tc_case_count(sizeof cases / sizeof cases[0]); i++)
        test_case(cases[i][0], cases[i][1], cases[i][2], cases[i][3], cases[i][4] ? cases[i][4] : cases[i][1] + 3);
    ab_backend_close(&cuda);
    ab_backend_close(&cpu);
    return TEST_SUMMARY();
}
