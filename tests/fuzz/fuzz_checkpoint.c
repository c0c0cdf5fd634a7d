/*
 * fuzz_checkpoint.c — libFuzzer harness for the checkpoint loader above the safetensors container
 * (model/checkpoint.c: `eval --checkpoint`, `generate --checkpoint`, `run --init`).
 *
 * The input is served as a file (memfd, /proc/self/fd/N) to the three entry points, on the CPU backend:
 *   - ab_checkpoint_read_config: the config from the "attnbench" metadata (JSON in a JSON string: variant name,
 *     model sizes, attention hyper-parameters, train_T), or, without it, inferred from the shapes of a published
 *     GPT-2 file (Hugging Face names, with or without the "transformer." prefix);
 *   - ab_checkpoint_open (eval, generate): that config, a model built from it, the tensors loaded into it, whatever
 *     size the config asks for (the tensors are checked before anything is allocated, so a large config in a small
 *     file is refused at once); the model struct is filled with garbage first, as the CLI hands it over
 *     uninitialised;
 *   - ab_checkpoint_load_into (run --init) into two fixed models built once, of the seeds' sizes (fuzz_models.h):
 *     a tiny baseline and a one-layer GPT-2 with n_embd 64 (the published-weights seed).
 * Invariants: a rejected file gives a non-zero status and a message naming the file. An accepted config agrees
 * with the metadata read here independently (every integer exactly, so no silent truncation; the variant by
 * name; absent hyper-parameters 0) or, without metadata, with the shapes of wte/wpe and the ln_1 tensors. An
 * accepted model has that config, and each of its parameters is the file's tensor of that name (same numel,
 * converted bit for bit as ab_st_to_f32 does it, finite wherever the file's value is finite). Any failure is an
 * abort(); ASan/UBSan/LeakSanitizer cover the rest.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/safetensors.h"
#include "model/checkpoint.h"
#include "fuzz_models.h"

static ab_backend be;
static ab_gpt2 fixed[2];

static void fail(const char *what) {
    fprintf(stderr, "fuzz_checkpoint: %s (last message: %s)\n", what, ab_error());
    abort();
}

static void setup(void) {
    if (ab_backend_open(BACKEND_CPU, 0, &be) != AB_OK) fail("cpu backend");
    ab_model_config tiny = FUZZ_TINY_MODEL;
    ab_model_config gpt2 = FUZZ_PUBLISHED_MODEL;
    if (ab_gpt2_create(&fixed[0], &tiny, VARIANT_BASELINE, FUZZ_TINY_T, &be) != AB_OK ||
        ab_gpt2_create(&fixed[1], &gpt2, VARIANT_BASELINE, FUZZ_PUBLISHED_T, &be) != AB_OK)
        fail("fixed models");
}

/* The file's tensor for a model parameter: the name, or a published GPT-2 file's name without "transformer.". */
static const ab_st_tensor *file_tensor(const ab_st_file *f, const char *name) {
    const ab_st_tensor *t = ab_st_find(f, name);
    if (!t && !strncmp(name, "transformer.", 12)) t = ab_st_find(f, name + 12);
    return t;
}

static int finite_in_file(const ab_st_file *f, const ab_st_tensor *t, size_t i) {
    const unsigned char *s = f->data + t->begin;
    switch (t->dtype) {
    case ST_F32: {
        uint32_t b = (uint32_t)s[4 * i] | (uint32_t)s[4 * i + 1] << 8 | (uint32_t)s[4 * i + 2] << 16 | (uint32_t)s[4 * i + 3] << 24;
        return (b & 0x7f800000u) != 0x7f800000u;
    }
    case ST_BF16: return (s[2 * i + 1] & 0x7f) != 0x7f || (s[2 * i] & 0x80) == 0;
    case ST_F16: return (s[2 * i + 1] & 0x7c) != 0x7c;
    default: return 0;
    }
}

/* Every parameter of m is the file's tensor of that name. */
static void check_params(ab_gpt2 *m, const ab_st_file *f) {
    float *host = malloc(m->n_elements * sizeof *host);
    if (!host || ab_gpt2_get_params(m, host) != AB_OK) fail("get_params");
    for (int i = 0; i < m->n_params; i++) {
        const ab_param_info *p = &m->params[i];
        const ab_st_tensor *t = file_tensor(f, p->name);
        if (!t || ab_st_numel(t) != p->numel) fail("an accepted model has a parameter the file does not have");
        float *want = malloc(p->numel * sizeof *want);
        if (!want || ab_st_to_f32(f, t, want) != AB_OK) fail("an accepted tensor does not convert");
        if (memcmp(want, host + p->offset, p->numel * sizeof *want) != 0) fail("a parameter differs from the file");
        for (size_t j = 0; j < p->numel; j++)
            if (finite_in_file(f, t, j) && !isfinite(host[p->offset + j])) fail("a finite value became non-finite");
        free(want);
    }
    free(host);
}

/* -1: absent, else the value; aborts on a present value the loader should have refused (the config was accepted). */
static long long meta_int(json_t *obj, const char *key, int required) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required) fail("accepted metadata lacks a required key");
        return -1;
    }
    if (!json_is_integer(v)) fail("accepted metadata has a non-integer value");
    return json_integer_value(v);
}

static void expect_eq(long long meta, int got, const char *what) {
    if (meta != (long long)got) {
        fprintf(stderr, "fuzz_checkpoint: %s: metadata %lld, config %d\n", what, meta, got);
        abort();
    }
}

static void check_config(const ab_st_file *f, const ab_model_config *c, ab_variant_id v, int train_T) {
    char *meta = ab_st_metadata(f, "attnbench");
    if (!meta) {
        const ab_st_tensor *wte = file_tensor(f, "transformer.wte.weight"), *wpe = file_tensor(f, "transformer.wpe.weight");
        if (!wte || !wpe || wte->ndim != 2 || wpe->ndim != 2) fail("a config without metadata and without wte/wpe");
        expect_eq(wte->shape[0], c->vocab_size, "vocab_size (wte rows)");
        expect_eq(wte->shape[1], c->n_embd, "n_embd (wte cols)");
        expect_eq(wpe->shape[0], c->max_seq, "max_seq (wpe rows)");
        expect_eq(c->n_embd / 64, c->n_head, "n_head (n_embd / 64)");
        expect_eq(c->max_seq, train_T, "train_T (max_seq)");
        if (v != VARIANT_BASELINE) fail("a file without metadata is not read as baseline");
        char name[64];
        for (int l = 0; l <= c->n_layer && l < 1 << 20; l++) {
            snprintf(name, sizeof name, "transformer.h.%d.ln_1.weight", l);
            if (!file_tensor(f, name) != (l == c->n_layer)) fail("n_layer is not the count of ln_1 tensors");
        }
        return;
    }
    json_t *root = json_loads(meta, 0, NULL), *model = json_object_get(root, "model"), *attn = json_object_get(root, "attn");
    free(meta);
    const char *var = json_string_value(json_object_get(root, "variant"));
    if (!root || !model || !attn || !var || strcmp(var, ab_variants[v]->name) != 0) fail("accepted metadata names another variant");
    expect_eq(meta_int(model, "n_layer", 1), c->n_layer, "n_layer");
    expect_eq(meta_int(model, "n_head", 1), c->n_head, "n_head");
    expect_eq(meta_int(model, "n_embd", 1), c->n_embd, "n_embd");
    expect_eq(meta_int(model, "vocab_size", 1), c->vocab_size, "vocab_size");
    expect_eq(meta_int(model, "max_seq", 1), c->max_seq, "max_seq");
    expect_eq(meta_int(root, "train_T", 1), train_T, "train_T");
    static const char *const hp_keys[] = {"gqa_kv_heads", "window", "lsh_hashes", "lsh_chunk", "lsh_buckets", "linear_chunk",
                                          "mla_kv_rank"};
    const int hp[] = {c->attn.gqa_kv_heads, c->attn.window, c->attn.lsh_hashes, c->attn.lsh_chunk, c->attn.lsh_buckets,
                      c->attn.linear_chunk, c->attn.mla_kv_rank};
    for (int k = 0; k < 7; k++) {
        long long x = meta_int(attn, hp_keys[k], 0);
        expect_eq(x < 0 && !json_object_get(attn, hp_keys[k]) ? 0 : x, hp[k], hp_keys[k]);
    }
    json_decref(root);
}

static void expect_named(ab_status s, const char *path, const char *what) {
    if (s == AB_OK) return;
    if (!strstr(ab_error(), path)) {
        fprintf(stderr, "fuzz_checkpoint: %s refused the file without naming it: %s\n", what, ab_error());
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!be.ops) setup();
    int fd = memfd_create("fuzz_checkpoint", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ab_st_file f;
    int readable = ab_st_read(path, &f) == AB_OK;

    ab_model_config cfg;
    ab_variant_id v = VARIANT_COUNT;
    int train_T = 0;
    ab_status s = ab_checkpoint_read_config(path, &cfg, &v, &train_T);
    expect_named(s, path, "read_config");
    if (s == AB_OK) {
        if (!readable) fail("read_config accepted a file the safetensors reader refuses");
        if ((unsigned)v >= VARIANT_COUNT) fail("read_config gave no variant");
        check_config(&f, &cfg, v, train_T);
    }
    {
        ab_gpt2 m;
        memset(&m, 0xa5, sizeof m); /* eval and generate hand over an uninitialised model */
        ab_status so = ab_checkpoint_open(path, &be, &m);
        expect_named(so, path, "open");
        if (so == AB_OK) {
            if (s != AB_OK) fail("open accepted a file whose config read_config refuses");
            if (memcmp(&m.cfg, &cfg, sizeof cfg) != 0 || m.variant != ab_variants[v] || m.attn_cfg.train_T != train_T)
                fail("the opened model's config is not the file's");
            check_params(&m, &f);
            ab_gpt2_destroy(&m);
        }
    }
    for (int k = 0; k < 2; k++) {
        ab_status sl = ab_checkpoint_load_into(&fixed[k], path);
        expect_named(sl, path, "load_into");
        if (sl == AB_OK) check_params(&fixed[k], &f);
    }
    if (readable) ab_st_free(&f);
    close(fd);
    return 0;
}
