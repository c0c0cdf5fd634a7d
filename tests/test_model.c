/*
 * test_model.c — the whole GPT-2 on the CPU backend: gradients against finite differences for every
 * variant, loss at initialisation, overfitting one batch, determinism, checkpoint round trips and bad
 * checkpoints (a table of files the loader refuses or, with published GPT-2 names, accepts), training-state
 * files for --resume (a table: the step range, the variant, the sizes); the training benchmark's table (energies over short windows marked).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/fsutil.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "model/bench_train.h"
#include "model/checkpoint.h"
#include "model/gpt2.h"
#include "model/train.h"
#include "attn/attn_variants.h"
#include "test_util.h"

static ab_backend be;

/* A small model that every variant accepts: 2 layers, 2 heads of 8, vocabulary 61, 24 positions. */
static ab_model_config small_config(void) {
    ab_model_config c = {.n_layer = 2, .n_head = 2, .n_embd = 16, .vocab_size = 61, .max_seq = 24};
    c.attn.window = 3;       /* band narrower than T so sliding_window is not the baseline */
    c.attn.lsh_chunk = 4;    /* 2*Lc = 8 candidates, buckets from T */
    c.attn.linear_chunk = 4; /* T = 7 spans two chunks */
    c.attn.mla_kv_rank = 8;
    return c;
}

static void fill_batch(int32_t *tokens, int32_t *targets, int n, int V, uint64_t seed) {
    ab_rng r;
    ab_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) tokens[i] = (int32_t)ab_rng_below(&r, (uint32_t)V);
    for (int i = 0; i < n; i++) targets[i] = i % 5 == 4 ? -1 : (int32_t)ab_rng_below(&r, (uint32_t)V);
}

static double mean_loss(ab_gpt2 *m, const int32_t *tok, const int32_t *tgt, int B, int T, int counted) {
    double sum = 0.0;
    if (ab_gpt2_forward(m, tok, tgt, B, T, 0.0f, &sum) != AB_OK) return NAN;
    return sum / counted;
}

/* lsh's buckets of every layer after the last forward (NULL for other variants): a perturbation that
 * changes one crosses a discontinuity of the loss, where finite differences mean nothing. */
static int32_t *bucket_snapshot(ab_gpt2 *m, int B, int T) {
    if (m->variant->id != VARIANT_LSH) return NULL;
    size_t n = 0;
    ab_attn_lsh_saved_buckets(&m->attn_cfg, m->act.attn_saved[0].ptr, B, T, &n);
    int32_t *all = malloc(n * m->cfg.n_layer * sizeof *all);
    for (int l = 0; l < m->cfg.n_layer; l++)
        memcpy(all + n * l, ab_attn_lsh_saved_buckets(&m->attn_cfg, m->act.attn_saved[l].ptr, B, T, &n), n * sizeof *all);
    return all;
}

static int buckets_changed(ab_gpt2 *m, const int32_t *ref, int B, int T) {
    if (!ref) return 0;
    int32_t *now = bucket_snapshot(m, B, T);
    size_t n = 0;
    ab_attn_lsh_saved_buckets(&m->attn_cfg, m->act.attn_saved[0].ptr, B, T, &n);
    int changed = memcmp(now, ref, n * m->cfg.n_layer * sizeof *now) != 0;
    free(now);
    return changed;
}

/* Finite differences of the mean loss against the analytic gradient on a sample of every tensor's entries.
 * fp32 central differences with h = 1e-2 (2e-3 for lsh) on a loss of ~4: rounding ~ 6e-8 * 4 / 1e-2 = 2.4e-5, truncation
 * O(h^2) ~ 1e-4 relative for these smooth functions: atol 5e-4 + rtol 5e-2. lsh's hash is not
 * differentiable: an entry whose +h or -h forward changes any bucket is excluded; the exclusion is exact (the
 * buckets are compared), and at least 3/4 of the sampled entries must remain checked. */
static void grad_check(ab_variant_id v) {
    ab_model_config cfg = small_config();
    const ab_variant *var = ab_variants[v];
    char name[128];
    snprintf(name, sizeof name, "model_grad[%s,cpu,L=2,H=2,B=2,T=7]", var->name);
    ab_gpt2 m;
    const int B = 2, T = 7, n = B * T;
    if (ab_gpt2_create(&m, &cfg, v, T, &be) != AB_OK) {
        test_report(0, name, "create: %s", ab_error());
        return;
    }
    int32_t tok[14], tgt[14];
    fill_batch(tok, tgt, n, cfg.vocab_size, 7);
    int counted = 0;
    for (int i = 0; i < n; i++) counted += tgt[i] >= 0;
    ab_status s = ab_gpt2_init_weights(&m, 3);
    if (s == AB_OK) s = ab_gpt2_alloc(&m, B, T, 1);
    if (s == AB_OK) s = ab_gpt2_zero_grad(&m);
    double sum;
    if (s == AB_OK) s = ab_gpt2_forward(&m, tok, tgt, B, T, 1.0f / counted, &sum);
    if (s == AB_OK) s = ab_gpt2_backward(&m);
    if (s != AB_OK) {
        test_report(0, name, "%s", ab_error());
        ab_gpt2_destroy(&m);
        return;
    }
    int32_t *buckets = bucket_snapshot(&m, B, T);
    float *params = malloc(m.n_elements * sizeof(float)), *grads = malloc(m.n_elements * sizeof(float));
    ab_gpt2_get_params(&m, params);
    ab_gpt2_get_grads(&m, grads);
    ab_rng r;
    ab_rng_seed(&r, 11);
    enum { PER_TENSOR = 3, MAX_CHECKS = 512 };
    float got[MAX_CHECKS], ref[MAX_CHECKS];
    int k = 0, excluded = 0, checked = 0;
    /* lsh normalises its keys, which makes the loss strongly curved at init: a smaller step keeps the
     * truncation error down (rounding 6e-8 * 4 / 2e-3 = 1.2e-4, still inside atol) */
    const float h = v == VARIANT_LSH ? 2e-3f : 1e-2f;
    for (int p = 0; p < m.n_params && k < MAX_CHECKS; p++) {
        const ab_param_info *pi = &m.params[p];
        if (!pi->trainable) continue;
        for (int j = 0; j < PER_TENSOR && k < MAX_CHECKS; j++) {
            size_t idx = pi->offset + ab_rng_below(&r, (uint32_t)pi->numel);
            float saved = params[idx];
            params[idx] = saved + h;
            ab_gpt2_set_params(&m, params);
            double lp = mean_loss(&m, tok, tgt, B, T, counted);
            int jump = buckets_changed(&m, buckets, B, T);
            params[idx] = saved - h;
            ab_gpt2_set_params(&m, params);
            double lm = mean_loss(&m, tok, tgt, B, T, counted);
            jump |= buckets_changed(&m, buckets, B, T);
            params[idx] = saved;
            checked++;
            double numeric = (lp - lm) / (2.0 * h);
            if (jump) {
                excluded++;
                continue;
            }
            got[k] = grads[idx];
            ref[k] = (float)numeric;
            k++;
        }
    }
    ab_gpt2_set_params(&m, params);
    test_cmp c = test_compare_f32(got, ref, (size_t)k, 5e-4, 5e-2);
    int excl_ok = excluded * 4 <= checked;
    test_report(c.ok && excl_ok && k > 0, name, "%s (%d/%d entries excluded as bucket switches)", c.why, excluded, checked);
    free(params);
    free(grads);
    free(buckets);
    ab_gpt2_destroy(&m);
}

static void test_init_loss(void) {
    const ab_preset *p = ab_preset_by_name("tiny");
    ab_gpt2 m;
    const int B = 2, T = 16, n = B * T;
    ab_status s = ab_gpt2_create(&m, &p->model, VARIANT_BASELINE, T, &be);
    if (s == AB_OK) s = ab_gpt2_init_weights(&m, 1);
    if (s == AB_OK) s = ab_gpt2_alloc(&m, B, T, 0);
    int32_t tok[32], tgt[32];
    fill_batch(tok, tgt, n, p->model.vocab_size, 5);
    int counted = 0;
    for (int i = 0; i < n; i++) counted += tgt[i] >= 0;
    double loss = s == AB_OK ? mean_loss(&m, tok, tgt, B, T, counted) : NAN;
    double expect = log((double)p->model.vocab_size);
    /* with N(0, 0.02) weights the logits are within ~0.1 of each other: loss = ln V to about 0.05 */
    TEST_TRUE("loss at init ~ ln(50257) [tiny,baseline]", s == AB_OK && fabs(loss - expect) < 0.05, "loss %.4f, ln V %.4f (%s)",
              loss, expect, s == AB_OK ? "" : ab_error());
    ab_gpt2_destroy(&m);
}

/* A few AdamW steps on one batch; returns the losses. */
static ab_status train_steps(ab_variant_id v, uint64_t seed, int steps, float lr, double *losses) {
    ab_model_config cfg = small_config();
    ab_train_config tc = ab_preset_by_name("tiny")->train;
    tc.lr = lr;
    tc.weight_decay = 0.0f;
    const int B = 2, T = 12, n = B * T;
    ab_gpt2 m;
    AB_TRY(ab_gpt2_create(&m, &cfg, v, T, &be));
    int32_t tok[24], tgt[24];
    fill_batch(tok, tgt, n, cfg.vocab_size, seed + 1);
    int counted = 0;
    for (int i = 0; i < n; i++) counted += tgt[i] >= 0;
    ab_status s = ab_gpt2_init_weights(&m, seed);
    if (s == AB_OK) s = ab_gpt2_alloc(&m, B, T, 1);
    for (int i = 0; i < steps && s == AB_OK; i++) {
        double sum = 0;
        s = ab_gpt2_zero_grad(&m);
        if (s == AB_OK) s = ab_gpt2_forward(&m, tok, tgt, B, T, 1.0f / counted, &sum);
        if (s == AB_OK) s = ab_gpt2_backward(&m);
        if (s == AB_OK) s = ab_gpt2_adamw(&m, lr, &tc, 1.0f);
        losses[i] = sum / counted;
    }
    ab_gpt2_destroy(&m);
    return s;
}

static void test_overfit_and_determinism(void) {
    enum { STEPS = 150 };
    double a[STEPS], b[STEPS];
    ab_status s = train_steps(VARIANT_BASELINE, 9, STEPS, 1e-2f, a);
    TEST_TRUE("overfits one batch [baseline,cpu]: loss < 0.05 after 150 steps", s == AB_OK && a[STEPS - 1] < 0.05,
              "first %.4f last %.4f (%s)", a[0], a[STEPS - 1], s == AB_OK ? "" : ab_error());
    s = train_steps(VARIANT_BASELINE, 9, 10, 1e-2f, b);
    int same = s == AB_OK;
    for (int i = 0; i < 10 && same; i++) same = a[i] == b[i];
    TEST_TRUE("same seed, same loss sequence (bitwise) [baseline,cpu]", same, "first difference in 10 steps");
    s = train_steps(VARIANT_BASELINE, 10, 2, 1e-2f, b);
    TEST_TRUE("another seed, another loss", s == AB_OK && a[0] != b[0], "seed 9 and 10 gave %.6f and %.6f", a[0], b[0]);
}

/* dir (a mkdtemp template) made, or 0 with a failure reported as `what` */
static int make_temp_dir(char *dir, const char *what) {
    if (mkdtemp(dir)) return 1;
    test_report(0, what, "mkdtemp %s: %s", dir, strerror(errno));
    return 0;
}

static void test_checkpoint(void) {
    char dir[] = "/tmp/ab_test_ckpt_XXXXXX", path[256];
    if (!make_temp_dir(dir, "checkpoint temp dir")) return;
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    ab_model_config cfg = small_config();
    for (int v = 0; v < VARIANT_COUNT; v++) {
        char name[128];
        snprintf(name, sizeof name, "checkpoint save -> load -> identical logits [%s,cpu]", ab_variants[v]->name);
        ab_gpt2 a, b;
        const int T = 9;
        int32_t tok[9] = {1, 5, 9, 2, 60, 33, 4, 4, 0};
        ab_status s = ab_gpt2_create(&a, &cfg, (ab_variant_id)v, T, &be);
        if (s != AB_OK) {
            test_report(0, name, "create: %s", ab_error());
            continue;
        }
        float *la = malloc(T * 61 * sizeof(float)), *lb = malloc(T * 61 * sizeof(float));
        s = ab_gpt2_init_weights(&a, 77);
        if (s == AB_OK) s = ab_gpt2_logits(&a, tok, 1, T, la);
        if (s == AB_OK) s = ab_checkpoint_save(&a, path);
        if (s == AB_OK) s = ab_checkpoint_open(path, &be, &b);
        if (s == AB_OK) {
            s = ab_gpt2_logits(&b, tok, 1, T, lb);
            int same_variant = b.variant == a.variant && b.attn_cfg.hp.window == a.attn_cfg.hp.window;
            ab_gpt2_destroy(&b);
            if (s == AB_OK && !same_variant) s = ab_fail(AB_ERR_FORMAT, "variant or hyper-parameters not restored");
        }
        test_report(s == AB_OK && memcmp(la, lb, T * 61 * sizeof(float)) == 0, name, "%s",
                    s == AB_OK ? "logits differ" : ab_error());
        free(la);
        free(lb);
        ab_gpt2_destroy(&a);
    }
    /* truncated and foreign files: clear format errors */
    char *buf;
    size_t n;
    ab_read_file(path, &buf, &n);
    char bad[256];
    snprintf(bad, sizeof bad, "%s/truncated.safetensors", dir);
    ab_write_file_atomic(bad, buf, n / 2);
    ab_gpt2 m;
    ab_status s = ab_checkpoint_open(bad, &be, &m);
    TEST_TRUE("truncated checkpoint: format error", s == AB_ERR_FORMAT && strstr(ab_error(), "truncated.safetensors"), "status %d: %s",
              s, ab_error());
    const char foreign[] = "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}        ";
    snprintf(bad, sizeof bad, "%s/foreign.safetensors", dir);
    ab_write_file_atomic(bad, foreign, sizeof foreign - 1);
    s = ab_checkpoint_open(bad, &be, &m);
    TEST_TRUE("foreign checkpoint: format error", s == AB_ERR_FORMAT, "status %d: %s", s, ab_error());
    snprintf(bad, sizeof bad, "%s/missing.safetensors", dir);
    s = ab_checkpoint_open(bad, &be, &m);
    TEST_TRUE("missing checkpoint: io error", s == AB_ERR_IO, "status %d: %s", s, ab_error());
    free(buf);
    test_remove_dir(dir);
}

/* Checkpoint files the loader must refuse with a format error naming the file and what was expected, or accept
 * (published GPT-2 names). Each case writes a model's tensors (names with or without "transformer.", optionally
 * one dtype patched to I32) and an "attnbench" metadata string (NULL: none), then opens it (eval / generate:
 * into a model struct filled with garbage, as the CLI hands it over) or loads it into a model of the same sizes
 * (run --init). Found by tests/fuzz/fuzz_checkpoint.c and by reading the loader. */
static void test_checkpoint_files(void) {
    static const char *const good_meta =
        "{\"format_version\":1,\"variant\":\"baseline\",\"model\":{\"n_layer\":1,\"n_head\":2,\"n_embd\":8,\"vocab_size\":16,"
        "\"max_seq\":8},\"attn\":{},\"train_T\":8}";
    static const struct {
        const char *name;
        int gpt2_size;     /* 1: n_embd 64, one head (the size inferred from a published file), else the tiny model */
        int prefix;        /* tensor names with "transformer." */
        int i32;           /* the first tensor's dtype patched from F32 to I32 */
        const char *meta;  /* "attnbench" metadata, NULL: none */
        int load_into;     /* 1: ab_checkpoint_load_into a model of the same sizes (run --init), 0: ab_checkpoint_open */
        ab_status want;
        const char *text;  /* in the message, besides the file name */
        int unbuilt;       /* 1: refused before the model's parameters are allocated (their peak does not move) */
    } cases[] = {
        {"checkpoint file: the writer's metadata opens", 0, 1, 0, good_meta, 0, AB_OK, ""},
        {"checkpoint file: published GPT-2 names (no transformer. prefix) open", 1, 0, 0, NULL, 0, AB_OK, ""},
        {"checkpoint file: published GPT-2 names load for run --init", 1, 0, 0, NULL, 1, AB_OK, ""},
        {"checkpoint file: n_layer 2^32 + 1 is refused, not read as 1", 0, 1, 0,
         "{\"variant\":\"baseline\",\"model\":{\"n_layer\":4294967297,\"n_head\":2,\"n_embd\":8,\"vocab_size\":16,\"max_seq\":8},"
         "\"attn\":{},\"train_T\":8}", 0, AB_ERR_FORMAT, "model.n_layer is out of range"},
        {"checkpoint file: a hyper-parameter that is not an integer is refused", 0, 1, 0,
         "{\"variant\":\"baseline\",\"model\":{\"n_layer\":1,\"n_head\":2,\"n_embd\":8,\"vocab_size\":16,\"max_seq\":8},"
         "\"attn\":{\"window\":\"5\"},\"train_T\":8}", 0, AB_ERR_FORMAT, "attn.window"},
        {"checkpoint file: an unknown variant is refused (uninitialised model struct)", 0, 1, 0,
         "{\"variant\":\"nope\",\"model\":{},\"attn\":{},\"train_T\":8}", 0, AB_ERR_FORMAT, "unknown variant \"nope\""},
        {"checkpoint file: metadata that is not JSON is refused", 0, 1, 0, "{\"variant\":", 0, AB_ERR_FORMAT, "not a JSON object"},
        {"checkpoint file: n_layer 0 is a format error naming the file", 0, 1, 0,
         "{\"variant\":\"baseline\",\"model\":{\"n_layer\":0,\"n_head\":2,\"n_embd\":8,\"vocab_size\":16,\"max_seq\":8},"
         "\"attn\":{},\"train_T\":8}", 0, AB_ERR_FORMAT, "cannot be built: model sizes must be positive"},
        {"checkpoint file: an I32 tensor is refused naming the file", 0, 1, 1, good_meta, 0, AB_ERR_FORMAT, "I32 cannot be read"},
        {"checkpoint file: an I32 tensor is refused naming the file (run --init)", 0, 1, 1, NULL, 1, AB_ERR_FORMAT, "I32 cannot be read"},
        {"checkpoint file: metadata asking for a larger model than the file holds is refused before it is built", 0, 1, 0,
         "{\"variant\":\"baseline\",\"model\":{\"n_layer\":4,\"n_head\":16,\"n_embd\":1024,\"vocab_size\":16,\"max_seq\":8},"
         "\"attn\":{},\"train_T\":8}", 0, AB_ERR_FORMAT, "the model expects (16, 1024)", 1},
        {"checkpoint file: n_layer over the supported 1024 is refused", 0, 1, 0,
         "{\"variant\":\"baseline\",\"model\":{\"n_layer\":1000000,\"n_head\":2,\"n_embd\":8,\"vocab_size\":16,\"max_seq\":8},"
         "\"attn\":{},\"train_T\":8}", 0, AB_ERR_FORMAT, "over the supported", 1},
    };
    char dir[] = "/tmp/ab_test_ckfiles_XXXXXX", path[256];
    if (!make_temp_dir(dir, "checkpoint files temp dir")) return;
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ab_model_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 8, .vocab_size = 16, .max_seq = 8};
        if (cases[c].gpt2_size) cfg = (ab_model_config){.n_layer = 1, .n_head = 1, .n_embd = 64, .vocab_size = 8, .max_seq = 4};
        ab_gpt2 src, dst;
        ab_status s = ab_gpt2_create(&src, &cfg, VARIANT_BASELINE, cfg.max_seq, &be);
        if (s == AB_OK) s = ab_gpt2_init_weights(&src, 3);
        float *host = s == AB_OK ? malloc(src.n_elements * sizeof *host) : NULL, *back = NULL;
        ab_st_write_tensor *ts = s == AB_OK ? calloc((size_t)src.n_params, sizeof *ts) : NULL;
        if (s == AB_OK) s = ab_gpt2_get_params(&src, host);
        for (int i = 0; s == AB_OK && i < src.n_params; i++) {
            const ab_param_info *p = &src.params[i];
            ts[i] = (ab_st_write_tensor){cases[c].prefix ? p->name : p->name + strlen("transformer."), p->rows == 1 ? 1 : 2,
                                         {p->rows == 1 ? p->cols : p->rows, p->cols}, host + p->offset};
        }
        const char *meta[] = {"format", "pt", "attnbench", cases[c].meta};
        if (s == AB_OK) s = ab_st_write(path, ts, src.n_params, meta, cases[c].meta ? 2 : 1);
        if (s == AB_OK && cases[c].i32) {
            char *bytes;
            size_t n;
            s = ab_read_file(path, &bytes, &n);
            char *dt = s == AB_OK ? strstr(bytes + 8, "\"F32\"") : NULL;
            if (dt) {
                memcpy(dt + 1, "I32", 3);
                s = ab_write_file_atomic(path, bytes, n);
            }
            if (s == AB_OK) free(bytes);
        }
        if (s != AB_OK) {
            test_report(0, cases[c].name, "writing the file: %s", ab_error());
        } else {
            memset(&dst, 0xa5, sizeof dst);
            const size_t params_peak = be.mem.peak[MEM_PARAMS];
            if (cases[c].load_into) {
                s = ab_gpt2_create(&dst, &cfg, VARIANT_BASELINE, cfg.max_seq, &be);
                if (s == AB_OK) s = ab_checkpoint_load_into(&dst, path);
            } else {
                s = ab_checkpoint_open(path, &be, &dst);
            }
            int same = 0;
            if (s == AB_OK) {
                back = malloc(src.n_elements * sizeof *back);
                same = dst.n_elements == src.n_elements && ab_gpt2_get_params(&dst, back) == AB_OK &&
                       memcmp(&dst.cfg, &cfg, sizeof cfg) == 0 && memcmp(back, host, src.n_elements * sizeof *back) == 0;
            }
            if (cases[c].want == AB_OK)
                test_report(s == AB_OK && same, cases[c].name, "%s", s == AB_OK ? "config or parameters differ" : ab_error());
            else
                test_report(s == cases[c].want && strstr(ab_error(), path) && strstr(ab_error(), cases[c].text) &&
                                (!cases[c].unbuilt || be.mem.peak[MEM_PARAMS] == params_peak),
                            cases[c].name, "status %s, want %s with \"%s\": %s; parameter peak %zu -> %zu bytes",
                            ab_status_name(s), ab_status_name(cases[c].want), cases[c].text,
                            s == AB_OK ? "(accepted)" : ab_error(), params_peak, be.mem.peak[MEM_PARAMS]);
            if (s == AB_OK || cases[c].load_into) ab_gpt2_destroy(&dst);
        }
        free(back);
        free(ts);
        free(host);
        ab_gpt2_destroy(&src);
    }
    test_remove_dir(dir);
}

/* Training states for run --resume (ab_checkpoint_load_state) into the tiny baseline with its optimizer state
 * allocated as `run` does: each case is the "attnbench_state" metadata and the element count of "params" (0: the
 * model's), the status expected and a text the message must hold besides the file name. An accepted state must
 * be the file's parameters, moments, epoch and step exactly; a refused one leaves the model's step as it was.
 * Found while writing tests/fuzz/fuzz_state.c (its invariant, on hand-made states; 300 s of fuzzing did not reach
 * it): a negative or INT_MAX optimizer_step was accepted (AdamW then divides by 1 - beta^0, or overflows the step). */
static void test_state_files(void) {
    static const struct {
        const char *name, *meta;
        size_t params; /* 0: the model's n_elements */
        ab_status want;
        const char *text;
    } cases[] = {
        {"state file: one without a model configuration (written before it was recorded) loads",
         "{\"variant\":\"baseline\",\"epoch\":2,\"optimizer_step\":7}", 0, AB_OK, ""},
        {"state file: a model configuration that is not an object is refused",
         "{\"variant\":\"baseline\",\"epoch\":2,\"optimizer_step\":7,\"model\":5}", 0, AB_ERR_FORMAT,
         "another model configuration"},
        {"state file: optimizer_step 0 loads", "{\"variant\":\"baseline\",\"epoch\":1,\"optimizer_step\":0}", 0, AB_OK, ""},
        {"state file: a negative optimizer_step is refused", "{\"variant\":\"baseline\",\"epoch\":1,\"optimizer_step\":-1}", 0,
         AB_ERR_FORMAT, "optimizer_step -1 is out of range"},
        {"state file: optimizer_step INT_MAX (overflows at the next step) is refused",
         "{\"variant\":\"baseline\",\"epoch\":1,\"optimizer_step\":2147483647}", 0, AB_ERR_FORMAT,
         "optimizer_step 2147483647 is out of range"},
        {"state file: another variant is refused", "{\"variant\":\"flash\",\"epoch\":1,\"optimizer_step\":3}", 0, AB_ERR_FORMAT,
         "not a training state of variant baseline"},
        {"state file: an epoch that is not an integer is refused", "{\"variant\":\"baseline\",\"epoch\":\"1\",\"optimizer_step\":3}", 0,
         AB_ERR_FORMAT, "integer epoch"},
        {"state file: params of another size are refused", "{\"variant\":\"baseline\",\"epoch\":1,\"optimizer_step\":3}", 1,
         AB_ERR_FORMAT, "does not match the model's sizes"},
    };
    char dir[] = "/tmp/ab_test_states_XXXXXX", path[256];
    if (!make_temp_dir(dir, "state files temp dir")) return;
    snprintf(path, sizeof path, "%s/s.safetensors", dir);
    ab_model_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 8, .vocab_size = 16, .max_seq = 8};
    ab_gpt2 m;
    ab_status s = ab_gpt2_create(&m, &cfg, VARIANT_BASELINE, 8, &be);
    if (s == AB_OK) s = ab_gpt2_alloc(&m, 1, 8, 1);
    if (s != AB_OK) {
        test_report(0, "state files: the model", "%s", ab_error());
        test_remove_dir(dir);
        return;
    }
    size_t n = m.n_elements, nt = m.n_trainable;
    float *want = malloc((n + 2 * nt) * sizeof *want), *got = malloc((n + 2 * nt) * sizeof *got);
    for (size_t i = 0; i < n + 2 * nt; i++) want[i] = (float)((i * 37) % 101) / 64.0f - 0.5f;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ab_st_write_tensor ts[3] = {{"params", 1, {(int64_t)(cases[c].params ? cases[c].params : n)}, want},
                                    {"adamw.m", 1, {(int64_t)nt}, want + n},
                                    {"adamw.v", 1, {(int64_t)nt}, want + n + nt}};
        const char *meta[] = {"attnbench_state", cases[c].meta};
        m.optimizer_step = 99;
        int epoch = -1;
        s = ab_st_write(path, ts, 3, meta, 1);
        if (s != AB_OK) {
            test_report(0, cases[c].name, "writing the file: %s", ab_error());
            continue;
        }
        s = ab_checkpoint_load_state(&m, path, &epoch);
        if (cases[c].want == AB_OK) {
            json_t *root = json_loads(cases[c].meta, 0, NULL);
            int same = s == AB_OK && ab_gpt2_get_params(&m, got) == AB_OK &&
                       be.ops->copy_to_host(&be, got + n, m.m_buf.ptr, nt * sizeof(float)) == AB_OK &&
                       be.ops->copy_to_host(&be, got + n + nt, m.v_buf.ptr, nt * sizeof(float)) == AB_OK &&
                       memcmp(got, want, (n + 2 * nt) * sizeof *got) == 0 &&
                       epoch == json_integer_value(json_object_get(root, "epoch")) &&
                       m.optimizer_step == json_integer_value(json_object_get(root, "optimizer_step"));
            json_decref(root);
            test_report(same, cases[c].name, "%s", s == AB_OK ? "parameters, moments, epoch or step differ" : ab_error());
        } else {
            test_report(s == cases[c].want && strstr(ab_error(), path) && strstr(ab_error(), cases[c].text) &&
                            m.optimizer_step == 99,
                        cases[c].name, "status %s, want %s with \"%s\": %s; step %d", ab_status_name(s),
                        ab_status_name(cases[c].want), cases[c].text, s == AB_OK ? "(accepted)" : ab_error(), m.optimizer_step);
        }
    }
    /* The writer's own files: the same model's state loads; a model of the same element counts and another shape
     * (n_head 4 where the run has 2) is refused. */
    ab_model_config cfg4 = cfg;
    cfg4.n_head = 4;
    ab_gpt2 m4;
    s = ab_gpt2_create(&m4, &cfg4, VARIANT_BASELINE, 8, &be);
    if (s == AB_OK) s = ab_gpt2_alloc(&m4, 1, 8, 1);
    if (s == AB_OK) {
        m.optimizer_step = 5;
        int epoch = -1;
        s = ab_checkpoint_save_state(&m, path, 3);
        if (s == AB_OK) s = ab_checkpoint_load_state(&m, path, &epoch);
        test_report(s == AB_OK && epoch == 3 && m.optimizer_step == 5, "state file: the writer's own state loads", "%s",
                    s == AB_OK ? "epoch or step differ" : ab_error());
        s = ab_checkpoint_save_state(&m4, path, 3);
        if (s == AB_OK) {
            test_report(m4.n_elements == n && m4.n_trainable == nt, "state file: n_head 4 has the same element counts",
                        "%zu, %zu against %zu, %zu", m4.n_elements, m4.n_trainable, n, nt);
            s = ab_checkpoint_load_state(&m, path, &epoch);
            test_report(s == AB_ERR_FORMAT && strstr(ab_error(), "another model configuration") && strstr(ab_error(), path),
                        "state file: another model of the same element counts is refused", "status %s: %s",
                        ab_status_name(s), s == AB_OK ? "(accepted)" : ab_error());
        } else {
            test_report(0, "state file: writing n_head 4's state", "%s", ab_error());
        }
        ab_gpt2_destroy(&m4);
    } else {
        test_report(0, "state files: the n_head 4 model", "%s", ab_error());
    }
    free(want);
    free(got);
    ab_gpt2_destroy(&m);
    test_remove_dir(dir);
}

/* Safetensors headers the reader must refuse (or accept): each case is a header, the data bytes after it,
 * the status expected and a text the message must hold. An accepted file's byte ranges must be exactly the
 * shape's size. */
static void test_safetensors_headers(void) {
    static const struct {
        const char *name, *header;
        size_t data_bytes;
        ab_status want;
        const char *message;
    } cases[] = {
        {"safetensors: a small F32 tensor", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, AB_OK, NULL},
        {"safetensors: an empty tensor of huge dimensions", /* 2^40 x 2^40 x 0 = 0 elements */
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776,0],\"data_offsets\":[0,0]}}", 0, AB_OK, NULL},
        /* 2^40 x 2^23 BF16 elements are 2^64 bytes: the product wraps to 0 in 64 bits and matched [0, 0) */
        {"safetensors: BF16 shape of 2^64 bytes refused",
         "{\"a\":{\"dtype\":\"BF16\",\"shape\":[1099511627776,8388608],\"data_offsets\":[0,0]}}", 0, AB_ERR_FORMAT,
         "tensor 'a'"},
        /* (2^62 + 4) F32 elements are 2^64 + 16 bytes: wrapped, they matched 16 bytes of data */
        {"safetensors: F32 shape wrapping to 16 bytes refused",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1099510579201,4194308],\"data_offsets\":[0,16]}}", 16, AB_ERR_FORMAT,
         "tensor 'w'"},
    };
    char dir[] = "/tmp/ab_test_st_XXXXXX", path[256];
    if (!make_temp_dir(dir, "safetensors temp dir")) return;
    snprintf(path, sizeof path, "%s/h.safetensors", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t h = strlen(cases[i].header), n = 8 + h + cases[i].data_bytes;
        unsigned char *buf = calloc(n, 1);
        for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)h >> (8 * b));
        memcpy(buf + 8, cases[i].header, h);
        ab_write_file_atomic(path, buf, n);
        free(buf);
        ab_st_file f;
        ab_status s = ab_st_read(path, &f);
        int ok = s == cases[i].want && (!cases[i].message || strstr(ab_error(), cases[i].message));
        for (int t = 0; s == AB_OK && t < f.n_tensors; t++)
            ok &= f.tensors[t].end - f.tensors[t].begin == ab_st_numel(&f.tensors[t]) * ab_st_dtype_size(f.tensors[t].dtype);
        test_report(ok, cases[i].name, "status %s: %s", ab_status_name(s), s == AB_OK ? "accepted" : ab_error());
        if (s == AB_OK) ab_st_free(&f);
    }
    test_remove_dir(dir);
}

static void test_schedule(void) {
    ab_train_config tc = ab_preset_by_name("tiny")->train;
    tc.lr = 1.0f;
    tc.lr_warmup = 10;
    tc.min_lr_frac = 0.1f;
    float w1 = ab_lr_at(&tc, 1, 110), w10 = ab_lr_at(&tc, 10, 110), mid = ab_lr_at(&tc, 60, 110), end = ab_lr_at(&tc, 110, 110);
    TEST_TRUE("lr: linear warmup, cosine to 10%", fabsf(w1 - 0.1f) < 1e-6f && fabsf(w10 - 1.0f) < 1e-6f && fabsf(mid - 0.55f) < 1e-5f &&
                                                     fabsf(end - 0.1f) < 1e-6f,
              "got %g %g %g %g", w1, w10, mid, end);
    tc.constant_lr = 1;
    TEST_TRUE("lr: constant", ab_lr_at(&tc, 1, 100) == 1.0f && ab_lr_at(&tc, 100, 100) == 1.0f, "not constant");
}

static void test_bad_config(void) {
    ab_model_config cfg = small_config();
    ab_gpt2 m;
    ab_status s = ab_gpt2_create(&m, &cfg, VARIANT_BASELINE, cfg.max_seq + 1, &be);
    TEST_TRUE("T larger than the position table: usage error", s == AB_ERR_USAGE && strstr(ab_error(), "position"), "status %d: %s",
              s, ab_error());
    cfg.n_embd = 15;
    s = ab_gpt2_create(&m, &cfg, VARIANT_BASELINE, 4, &be);
    TEST_TRUE("embd not a multiple of heads: usage error", s == AB_ERR_USAGE, "status %d: %s", s, ab_error());
}

/* The training benchmark's table marks an energy measured over too short a window (the result carries the reason)
 * with '*' and explains it under the table; a reliable one and a missing one (n/a) are not marked. */
static void test_bench_train_table(void) {
    ab_bench_train_args a;
    memset(&a, 0, sizeof a);
    a.be = &be;
    a.warmup_steps = 5;
    a.timed_steps = 20;
    ab_bench_train_result r[3];
    memset(r, 0, sizeof r);
    const ab_variant_id ids[3] = {VARIANT_BASELINE, VARIANT_FLASH, VARIANT_GQA};
    const double joules[3] = {10.5, 15.68, NAN};
    static const char *const reasons[3] = {"", "window of 0.300 s is shorter than 1.0 s", "no energy source"};
    for (int i = 0; i < 3; i++) {
        r[i].variant = ids[i];
        r[i].ok = 1;
        r[i].energy_per_step_j = joules[i];
        snprintf(r[i].energy_reason, sizeof r[i].energy_reason, "%s", reasons[i]);
        r[i].mfu = NAN;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    TEST_TRUE("bench table: an in-memory stream", f != NULL, "open_memstream failed");
    if (!f) return;
    ab_bench_train_print(f, &a, r, 3);
    fclose(f);
    const char *flash = strstr(text, "\nflash "), *gqa = strstr(text, "\ngqa ");
    TEST_TRUE("bench table: a reliable energy unmarked", strstr(text, " 10.50 ") != NULL, "%s", text);
    TEST_TRUE("bench table: a short window's energy marked", flash && strstr(flash, " 15.68* "), "%s", text);
    TEST_TRUE("bench table: a missing energy n/a, unmarked", gqa && strstr(gqa, " n/a ") && !strstr(gqa, "n/a*"), "%s", text);
    TEST_TRUE("bench table: the mark explained", strstr(text, "* energy over the timed steps of a window under 1 s"), "%s", text);
    r[1].energy_reason[0] = '\0';
    free(text);
    text = NULL;
    f = open_memstream(&text, &len);
    TEST_TRUE("bench table: an in-memory stream again", f != NULL, "open_memstream failed");
    if (!f) return;
    ab_bench_train_print(f, &a, r, 3);
    fclose(f);
    TEST_TRUE("bench table: no mark, no note when every window is long", !strchr(text, '*'), "%s", text);
    free(text);
}

int main(void) {
    if (ab_backend_open(BACKEND_CPU, 0, &be) != AB_OK) {
        printf("FAIL cpu backend\n# passed 0 failed 1\n");
        return 1;
    }
    for (int v = 0; v < VARIANT_COUNT; v++) {
        if (!ab_variants[v]->ops[BACKEND_CPU]) {
            test_report(0, ab_variants[v]->name, "no CPU implementation");
            continue;
        }
        grad_check((ab_variant_id)v);
    }
    test_init_loss();
    test_overfit_and_determinism();
    test_checkpoint();
    test_checkpoint_files();
    test_state_files();
    test_safetensors_headers();
    test_schedule();
    test_bad_config();
    test_bench_train_table();
    ab_backend_close(&be);
    return TEST_SUMMARY();
}
