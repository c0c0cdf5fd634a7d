/*
 * registry.c — THE table of attention variants, name lookup, --variants parsing, hyper-parameter defaults.
 *
 * Each row is assembled from its variant file (attn_variants.h). The CUDA slot is a weak reference to the
 * CUDA engineer's ab_cuda_attn_<name>: its address is NULL when that object is not linked, and
 * ab_variant_ops() reports NULL in any slot as "not implemented on <backend>".
 */
#include <string.h>

#include "attn/attn_variants.h"

#if HAVE_CUDA
extern const ab_attn_ops ab_cuda_attn_baseline __attribute__((weak));
extern const ab_attn_ops ab_cuda_attn_sdpa __attribute__((weak));
extern const ab_attn_ops ab_cuda_attn_gqa __attribute__((weak));
extern const ab_attn_ops ab_cuda_attn_linear __attribute__((weak));
extern const ab_attn_ops ab_cuda_attn_sliding_window __attribute__((weak));
extern const ab_attn_ops ab_cuda_attn_lsh __attribute__((weak));
extern const ab_attn_ops ab_cuda_attn_flash __attribute__((weak));
extern const ab_attn_ops ab_cuda_attn_mla __attribute__((weak));
#define CUDA_OPS(name) (&ab_cuda_attn_##name)
#else
#define CUDA_OPS(name) NULL
#endif

#define VARIANT_ROW(ID, NAME, TITLE, CPU)                                                             \
    static const ab_variant row_##NAME = {                                                         \
        .id = ID,                                                                                  \
        .name = #NAME,                                                                             \
        .title = TITLE,                                                                            \
        .validate = ab_attn_##NAME##_validate,                                                     \
        .tensors = ab_attn_##NAME##_tensors,                                                       \
        .flops = ab_attn_##NAME##_flops,                                                           \
        .cache_elems_per_token = ab_attn_##NAME##_cache_elems,                                     \
        .ops = {[BACKEND_CPU] = CPU, [BACKEND_CUDA] = CUDA_OPS(NAME)},                           \
    };

VARIANT_ROW(VARIANT_BASELINE, baseline, "Baseline Self-Attention (GPT-2)", &ab_cpu_attn_baseline)
VARIANT_ROW(VARIANT_SDPA, sdpa, "Scaled Dot-Product Attention", &ab_cpu_attn_sdpa)
VARIANT_ROW(VARIANT_GQA, gqa, "Grouped Query Attention", &ab_cpu_attn_gqa)
VARIANT_ROW(VARIANT_LINEAR, linear, "Linear Attention", &ab_cpu_attn_linear)
VARIANT_ROW(VARIANT_SLIDING_WINDOW, sliding_window, "Sliding Window Attention", &ab_cpu_attn_sliding_window)
VARIANT_ROW(VARIANT_LSH, lsh, "LSH Attention", &ab_cpu_attn_lsh)
VARIANT_ROW(VARIANT_FLASH, flash, "FlashAttention v2", &ab_cpu_attn_flash)
VARIANT_ROW(VARIANT_MLA, mla, "Multi-Head Latent Attention", &ab_cpu_attn_mla)

/* In ab_variant_id order (test_attn_registry checks row i has id i). The list is counted on its own, since
 * the array's declared size in variant.h would hide a missing row. */
#define VARIANT_ROWS &row_baseline, &row_sdpa, &row_gqa, &row_linear, &row_sliding_window, &row_lsh, &row_flash, &row_mla
_Static_assert(sizeof((const ab_variant *const[]){VARIANT_ROWS}) / sizeof(const ab_variant *) == VARIANT_COUNT,
               "ab_variants[] must have one row per ab_variant_id");
const ab_variant *const ab_variants[VARIANT_COUNT] = {VARIANT_ROWS};

const ab_variant *ab_variant_by_name(const char *name) {
    for (int i = 0; i < VARIANT_COUNT; i++)
        if (name && strcmp(ab_variants[i]->name, name) == 0) return ab_variants[i];
    return NULL;
}

/* "baseline, sdpa, ..." for messages */
static const char *variant_names(void) {
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < VARIANT_COUNT; i++) {
            strcat(buf, ab_variants[i]->name);
            strcat(buf, ", ");
        }
    return buf;
}

ab_status ab_variant_parse_list(const char *list, ab_variant_id *out, int *n_out) {
    *n_out = 0;
    if (!list || !*list) return ab_fail(AB_ERR_USAGE, "empty variant list: give 'all' or a comma list of %sor all",
                                        variant_names());
    if (strcmp(list, "all") == 0) {
        for (int i = 0; i < VARIANT_COUNT; i++) out[i] = (ab_variant_id)i;
        *n_out = VARIANT_COUNT;
        return AB_OK;
    }
    int n = 0;
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[64];
        if (len == 0 || len >= sizeof name)
            return ab_fail(AB_ERR_USAGE, "bad entry '%.*s' in variant list '%s': expected one of %sor all", (int)len,
                           p, list, variant_names());
        memcpy(name, p, len);
        name[len] = '\0';
        const ab_variant *v = ab_variant_by_name(name);
        if (!v)
            return ab_fail(AB_ERR_USAGE, "unknown variant '%s' in '%s': expected one of %sor all", name, list,
                           variant_names());
        for (int i = 0; i < n; i++)
            if (out[i] == v->id) return ab_fail(AB_ERR_USAGE, "variant '%s' is listed twice in '%s'", name, list);
        out[n++] = v->id;
        if (!comma) break;
        p = comma + 1;
    }
    *n_out = n;
    return AB_OK;
}

/* Nearest power of two (in log scale) to x, at least 2. */
static int nearest_pow2(double x) {
    int p = 2;
    while (2.0 * p <= x) p *= 2;
    if (x * x > 2.0 * p * p) p *= 2;
    return p;
}

void ab_attn_resolve_hparams(ab_attn_config *cfg) {
    ab_attn_hparams *hp = &cfg->hp;
    const int H = cfg->H;
    if (hp->gqa_kv_heads == 0) hp->gqa_kv_heads = H % 3 == 0 ? H / 3 : (H >= 2 ? H / 2 : 1);
    if (hp->window == 0) hp->window = 128;
    if (hp->lsh_hashes == 0) hp->lsh_hashes = 2;
    if (hp->lsh_chunk == 0) hp->lsh_chunk = 64;
    if (hp->lsh_buckets == 0 && hp->lsh_chunk > 0) hp->lsh_buckets = nearest_pow2(2.0 * cfg->train_T / hp->lsh_chunk);
    if (hp->linear_chunk == 0) hp->linear_chunk = 64;
    if (hp->mla_kv_rank == 0) hp->mla_kv_rank = 4 * cfg->D;
}

const ab_attn_ops *ab_variant_ops(const ab_variant *v, ab_backend_id b, ab_status *st) {
    const ab_attn_ops *ops = (b >= 0 && b < BACKEND_COUNT) ? v->ops[b] : NULL;
    ab_status s = ops ? AB_OK
                      : ab_fail(AB_ERR_UNSUPPORTED, "variant %s is not implemented on %s", v->name, ab_backend_name(b));
    if (st) *st = s;
    return ops;
}

/* ---------------------------------------------------------------- shared by the variant files */

ab_status attn_validate_common(const ab_attn_config *cfg, int T) {
    if (cfg->H < 1 || cfg->D < 1 || cfg->C != cfg->H * cfg->D)
        return ab_fail(AB_ERR_USAGE, "n_embd %d must be n_head (%d) x head size (%d)", cfg->C, cfg->H, cfg->D);
    if (T < 1 || T > cfg->max_T)
        return ab_fail(AB_ERR_USAGE, "sequence length %d must be between 1 and the block size %d", T, cfg->max_T);
    return AB_OK;
}

int attn_tensors_c_attn(const ab_attn_config *cfg, int cols, ab_attn_tensor *out) {
    out[0] = (ab_attn_tensor){.name = "attn.c_attn.weight", .rows = cfg->C, .cols = cols, .init = INIT_NORMAL,
                              .weight_decay = 1};
    out[1] = (ab_attn_tensor){.name = "attn.c_attn.bias", .rows = 1, .cols = cols, .init = INIT_ZERO,
                              .weight_decay = 0};
    return 2;
}
