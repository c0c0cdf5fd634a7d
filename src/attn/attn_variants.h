/*
 * attn_variants.h — what each variant file (src/attn/<name>.c) exports to the table in registry.c, and the
 * small pieces every variant definition shares (common validation, the c_attn tensor pair, shapes).
 *
 * A variant file defines ab_attn_<name>_{validate,tensors,flops,cache_elems} and, when its CPU reference is
 * implemented, `const ab_attn_ops ab_cpu_attn_<name>`. registry.c assembles the ab_variant rows from them
 * and adds the CUDA slot (a weak reference to ab_cuda_attn_<name>).
 */
#ifndef AB_ATTN_VARIANTS_H
#define AB_ATTN_VARIANTS_H

#include "attn/attn_cpu_common.h"
#include "attn/variant.h"

/* "no window": every key j <= i (any T <= max_T is far below it) */
#define ATTN_CAUSAL (1 << 28)

#define AB_ATTN_DECLARE_VARIANT(name)                                                              \
    ab_status ab_attn_##name##_validate(const ab_attn_config *cfg, int T);                         \
    int ab_attn_##name##_tensors(const ab_attn_config *cfg, ab_attn_tensor out[AB_ATTN_MAX_TENSORS]); \
    void ab_attn_##name##_flops(const ab_attn_config *cfg, int B, int T, ab_attn_flops *out);     \
    double ab_attn_##name##_cache_elems(const ab_attn_config *cfg, int T);                         \
    extern const ab_attn_ops ab_cpu_attn_##name;

AB_ATTN_DECLARE_VARIANT(baseline)
AB_ATTN_DECLARE_VARIANT(sdpa)
AB_ATTN_DECLARE_VARIANT(gqa)
AB_ATTN_DECLARE_VARIANT(linear)
AB_ATTN_DECLARE_VARIANT(sliding_window)
AB_ATTN_DECLARE_VARIANT(lsh)
AB_ATTN_DECLARE_VARIANT(flash)
AB_ATTN_DECLARE_VARIANT(mla)

/* The buckets lsh's forward chose, (B,H,n_h,T) int32 inside its saved tensors (n = element count): the
 * tests use them to tell a bucket change from a gradient error. */
const int32_t *ab_attn_lsh_saved_buckets(const ab_attn_config *cfg, const void *saved, int B, int T, size_t *n);

/* Checks shared by every variant: 1 <= T <= max_T, C = H * D. */
ab_status attn_validate_common(const ab_attn_config *cfg, int T);

/* The (q | k | v) input projection "attn.c_attn.{weight,bias}" with `cols` outputs: fills out[0..1]. */
int attn_tensors_c_attn(const ab_attn_config *cfg, int cols, ab_attn_tensor *out);

/* Multi-head shape with G key/value heads and a window (ATTN_CAUSAL: none). */
static inline attn_mha_shape attn_shape(const ab_attn_config *cfg, int G, int window) {
    return (attn_mha_shape){.H = cfg->H, .G = G, .D = cfg->D, .C = cfg->C, .window = window};
}

#endif
