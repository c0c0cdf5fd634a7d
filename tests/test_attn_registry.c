/*
 * test_attn_registry.c — the variant table: names, titles, --variants parsing, hyper-parameter defaults
 * and validation messages, tensor layouts, cache sizes, backend slots, and the memory character of the
 * three same-math variants (baseline keeps T x T scores and probabilities, sdpa only P, flash O(T)).
 */
#include <string.h>

#include "test_attn_util.h"

static ab_attn_config gpt2_small(int T) {
    ab_attn_config c = {.C = 768, .H = 12, .D = 64, .max_T = 1024, .train_T = T};
    ab_attn_resolve_hparams(&c);
    return c;
}

static void check_usage(const char *name, ab_status s, const char *must_contain) {
    const char *msg = ab_error();
    TEST_TRUE(name, s == AB_ERR_USAGE && strstr(msg, must_contain), "status %s, message '%s' (expected '%s' in it)",
              ab_status_name(s), msg, must_contain);
}

int main(void) {
    static const char *const names[VARIANT_COUNT] = {"baseline", "sdpa", "gqa", "linear",
                                                     "sliding_window", "lsh", "flash", "mla"};
    static const char *const titles[VARIANT_COUNT] = {
        "Baseline Self-Attention (GPT-2)", "Scaled Dot-Product Attention", "Grouped Query Attention",
        "Linear Attention", "Sliding Window Attention", "LSH Attention", "FlashAttention v2",
        "Multi-Head Latent Attention"};
    for (int i = 0; i < VARIANT_COUNT; i++) {
        const ab_variant *v = ab_variants[i];
        char name[128];
        snprintf(name, sizeof name, "table[%s] id, name, title, lookup", names[i]);
        TEST_TRUE(name, v->id == (ab_variant_id)i && !strcmp(v->name, names[i]) && !strcmp(v->title, titles[i]) &&
                      ab_variant_by_name(names[i]) == v,
                  "row %d is '%s' / '%s'", i, v->name, v->title);
        ab_status st;
        snprintf(name, sizeof name, "table[%s] implemented on cpu", names[i]);
        TEST_TRUE(name, ab_variant_ops(v, BACKEND_CPU, &st) != NULL && st == AB_OK, "%s", ab_error());
        if (!v->ops[BACKEND_CUDA]) {
            snprintf(name, sizeof name, "table[%s] NULL cuda slot reads as not implemented", names[i]);
            const ab_attn_ops *o = ab_variant_ops(v, BACKEND_CUDA, &st);
            TEST_TRUE(name, !o && st == AB_ERR_UNSUPPORTED && strstr(ab_error(), names[i]) && strstr(ab_error(), "cuda"),
                      "status %s message '%s'", ab_status_name(st), ab_error());
        }
    }
    TEST_TRUE("table unknown name -> NULL", ab_variant_by_name("mha") == NULL && ab_variant_by_name(NULL) == NULL, "found");

    /* --variants */
    ab_variant_id ids[VARIANT_COUNT];
    int n;
    ab_status s = ab_variant_parse_list("all", ids, &n);
    int in_order = s == AB_OK && n == VARIANT_COUNT;
    for (int i = 0; in_order && i < n; i++) in_order = ids[i] == (ab_variant_id)i;
    TEST_TRUE("parse[all] = the table in order", in_order, "status %s n %d", ab_status_name(s), n);
    s = ab_variant_parse_list("flash,baseline,lsh", ids, &n);
    TEST_TRUE("parse[flash,baseline,lsh]", s == AB_OK && n == 3 && ids[0] == VARIANT_FLASH && ids[1] == VARIANT_BASELINE &&
                                               ids[2] == VARIANT_LSH, "status %s n %d", ab_status_name(s), n);
    check_usage("parse[baseline,mha] names the bad entry and the valid ones", ab_variant_parse_list("baseline,mha", ids, &n),
                "'mha'");
    check_usage("parse[baseline,mha] lists valid names", ab_variant_parse_list("baseline,mha", ids, &n), "sliding_window");
    check_usage("parse[baseline,baseline] duplicate", ab_variant_parse_list("baseline,baseline", ids, &n), "twice");
    check_usage("parse[baseline,] empty entry", ab_variant_parse_list("baseline,", ids, &n), "bad entry");
    check_usage("parse[] empty", ab_variant_parse_list("", ids, &n), "all");

    /* defaults (VARIANTS.md) */
    ab_attn_config g = gpt2_small(512);
    TEST_TRUE("defaults[GPT-2 small,T=512] G=4 W=128 n_h=2 Lc=64 n_b=16 linear 64 d_c=256",
              g.hp.gqa_kv_heads == 4 && g.hp.window == 128 && g.hp.lsh_hashes == 2 && g.hp.lsh_chunk == 64 &&
                  g.hp.lsh_buckets == 16 && g.hp.linear_chunk == 64 && g.hp.mla_kv_rank == 256,
              "G %d W %d nh %d Lc %d nb %d lin %d dc %d", g.hp.gqa_kv_heads, g.hp.window, g.hp.lsh_hashes, g.hp.lsh_chunk,
              g.hp.lsh_buckets, g.hp.linear_chunk, g.hp.mla_kv_rank);
    ab_attn_config t4 = {.C = 128, .H = 4, .D = 32, .max_T = 128, .train_T = 128};
    ab_attn_resolve_hparams(&t4);
    TEST_TRUE("defaults[H=4,D=32,T=128] G=H/2=2, n_b=4, d_c=128",
              t4.hp.gqa_kv_heads == 2 && t4.hp.lsh_buckets == 4 && t4.hp.mla_kv_rank == 128, "G %d nb %d dc %d",
              t4.hp.gqa_kv_heads, t4.hp.lsh_buckets, t4.hp.mla_kv_rank);
    ab_attn_config h1 = {.C = 64, .H = 1, .D = 64, .max_T = 100, .train_T = 100};
    ab_attn_resolve_hparams(&h1);
    TEST_TRUE("defaults[H=1,T=100] G=1, n_b=nearest power of two to 3.1 = 4", h1.hp.gqa_kv_heads == 1 && h1.hp.lsh_buckets == 4,
              "G %d nb %d", h1.hp.gqa_kv_heads, h1.hp.lsh_buckets);
    ab_attn_config big = gpt2_small(1024);
    TEST_TRUE("defaults[T=1024] n_b=32", big.hp.lsh_buckets == 32, "nb %d", big.hp.lsh_buckets);

    /* validation */
    for (int i = 0; i < VARIANT_COUNT; i++) {
        char name[128];
        snprintf(name, sizeof name, "validate[%s,GPT-2 small,T=512] defaults accepted", names[i]);
        s = ab_variants[i]->validate(&g, 512);
        TEST_TRUE(name, s == AB_OK, "%s", ab_error());
        snprintf(name, sizeof name, "validate[%s] T > block size refused", names[i]);
        check_usage(name, ab_variants[i]->validate(&g, 2048), "block size 1024");
    }
    ab_attn_config bad = g;
    bad.hp.gqa_kv_heads = 5;
    check_usage("validate[gqa,G=5,H=12] lists the divisors", ab_variants[VARIANT_GQA]->validate(&bad, 512), "1, 2, 3, 4, 6, 12");
    bad = g;
    bad.hp.window = -3;
    check_usage("validate[sliding_window,W=-3]", ab_variants[VARIANT_SLIDING_WINDOW]->validate(&bad, 512), ">= 1");
    bad = g;
    bad.hp.lsh_buckets = 12;
    check_usage("validate[lsh,n_b=12] not a power of two", ab_variants[VARIANT_LSH]->validate(&bad, 512), "power of two");
    bad = g;
    bad.hp.lsh_chunk = 600;
    check_usage("validate[lsh,Lc=600,T=512] chunk longer than T", ab_variants[VARIANT_LSH]->validate(&bad, 512), "between 1 and");
    bad = g;
    bad.hp.lsh_hashes = 0;
    check_usage("validate[lsh,n_h=0]", ab_variants[VARIANT_LSH]->validate(&bad, 512), "--lsh-hashes");
    bad = g;
    bad.hp.linear_chunk = 0;
    check_usage("validate[linear,Lc=0]", ab_variants[VARIANT_LINEAR]->validate(&bad, 512), "--linear-chunk");
    bad = g;
    bad.hp.mla_kv_rank = 0;
    check_usage("validate[mla,d_c=0]", ab_variants[VARIANT_MLA]->validate(&bad, 512), "--mla-kv-rank");

    /* tensors */
    ab_attn_tensor t[AB_ATTN_MAX_TENSORS];
    n = ab_variants[VARIANT_BASELINE]->tensors(&g, t);
    TEST_TRUE("tensors[baseline] c_attn (768, 2304) + bias (1, 2304), HF names",
              n == 2 && !strcmp(t[0].name, "attn.c_attn.weight") && t[0].rows == 768 && t[0].cols == 2304 &&
                  !strcmp(t[1].name, "attn.c_attn.bias") && t[1].rows == 1 && t[1].cols == 2304 && t[0].weight_decay &&
                  !t[1].weight_decay,
              "n %d", n);
    n = ab_variants[VARIANT_GQA]->tensors(&g, t);
    TEST_TRUE("tensors[gqa,G=4] c_attn (768, 768 + 2*4*64)", n == 2 && t[0].cols == 768 + 512, "cols %d", t[0].cols);
    n = ab_variants[VARIANT_LSH]->tensors(&g, t);
    TEST_TRUE("tensors[lsh] shared qk + v (768, 1536), fixed rotations (H n_h D, n_b/2)",
              n == 3 && t[0].cols == 1536 && t[2].rows == 12 * 2 * 64 && t[2].cols == 8 &&
                  t[2].init == INIT_GAUSSIAN_FIXED && !t[2].weight_decay,
              "n %d", n);
    n = ab_variants[VARIANT_MLA]->tensors(&g, t);
    TEST_TRUE("tensors[mla] W_q (C,C), W_dkv (C,d_c), gain (1,d_c) init 1, W_uk, W_uv (d_c,C)",
              n == 5 && t[0].cols == 768 && t[1].cols == 256 && t[2].init == INIT_ONE && !t[2].weight_decay &&
                  t[3].rows == 256 && t[4].cols == 768,
              "n %d", n);

    /* cache sizes (VARIANTS.md, GPT-2 small) */
    TEST_TRUE("cache[baseline] 2HD = 1536", ab_variants[VARIANT_BASELINE]->cache_elems_per_token(&g, 512) == 1536, "");
    TEST_TRUE("cache[gqa,G=4] 512", ab_variants[VARIANT_GQA]->cache_elems_per_token(&g, 512) == 512, "");
    TEST_TRUE("cache[linear] H(D^2+D) = 49920 for the whole context",
              ab_variants[VARIANT_LINEAR]->cache_elems_per_token(&g, 1) == 49920, "");
    TEST_TRUE("cache[sliding_window,W=128,T=1024] 2HD W / T",
              ab_variants[VARIANT_SLIDING_WINDOW]->cache_elems_per_token(&g, 1024) == 1536.0 * 128 / 1024, "");
    TEST_TRUE("cache[mla] d_c = 256", ab_variants[VARIANT_MLA]->cache_elems_per_token(&g, 512) == 256, "");
    TEST_TRUE("cache[lsh] 2HD + H n_h", ab_variants[VARIANT_LSH]->cache_elems_per_token(&g, 512) == 1536 + 24, "");

    /* memory character of the same-math variants: B=1, H=2, C=64 */
    ab_attn_config m = {.C = 64, .H = 2, .D = 32, .max_T = 1024, .train_T = 512};
    ab_attn_resolve_hparams(&m);
    const ab_attn_ops *ob = ab_variants[VARIANT_BASELINE]->ops[BACKEND_CPU], *os = ab_variants[VARIANT_SDPA]->ops[BACKEND_CPU],
                      *of = ab_variants[VARIANT_FLASH]->ops[BACKEND_CPU];
    const size_t sb = ob->saved_bytes(&m, 1, 512), ss = os->saved_bytes(&m, 1, 512), sf = of->saved_bytes(&m, 1, 512);
    TEST_TRUE("memory[baseline > sdpa > flash saved, T=512]", sb > ss && ss > sf, "baseline %zu sdpa %zu flash %zu", sb, ss, sf);
    TEST_TRUE("memory[baseline saves 2 x B H T^2 fp32, sdpa 1 x]",
              sb - ss == sizeof(float) * 2 * 512 * 512, "difference %zu", sb - ss);
    const size_t sf2 = of->saved_bytes(&m, 1, 1024), sb2 = ob->saved_bytes(&m, 1, 1024);
    TEST_TRUE("memory[flash saved is O(T): T 512 -> 1024 doubles it]", sf2 <= 2 * sf + 256, "%zu -> %zu", sf, sf2);
    TEST_TRUE("memory[baseline saved is O(T^2): T 512 -> 1024 > 3x]", sb2 > 3 * sb, "%zu -> %zu", sb, sb2);
    const size_t wb = ob->workspace_bytes(&m, 1, 1024), ws = os->workspace_bytes(&m, 1, 1024),
                 wf = of->workspace_bytes(&m, 1, 1024);
    TEST_TRUE("memory[workspace: baseline (B,H,T,T) dP > sdpa (tile,T) per thread > flash tiles]", wb > ws && ws > wf,
              "baseline %zu sdpa %zu flash %zu", wb, ws, wf);
    return TEST_SUMMARY();
}
