/*
 * fuzz_state.c — libFuzzer harness for the training-state loader of `run --resume` (model/checkpoint.c:
 * ab_checkpoint_load_state, the reader of what ab_checkpoint_save_state writes after an epoch).
 *
 * The input is served as a file (memfd, /proc/self/fd/N) and loaded, on the CPU backend, into three fixed models
 * built once, each with its training buffers allocated as `run` allocates them before resume_point loads the
 * state (ab_gpt2_alloc(B, T, training = 1): gradients and the AdamW moments m_buf / v_buf):
 *   - the tiny baseline of the seeds (FUZZ_TINY_MODEL, fuzz_models.h: 1 layer, 2 heads, n_embd 8, vocab 16, 8
 *     positions);
 *   - the same sizes as flash (another variant with the same parameter count: refused by the variant name);
 *   - a two-layer baseline (another size: refused by the element counts).
 * Invariants, for each model: a rejected file gives a non-zero status, a message naming the file, and leaves the
 * model's parameters, moments and step as they were. An accepted file has the "attnbench_state" metadata naming
 * the model's variant with integer epoch and optimizer_step (read here independently with jansson); the epoch
 * handed back and the model's optimizer_step are those integers, and the step is one AdamW can continue from
 * (0 <= step < INT_MAX: the next step increments it and divides by 1 - beta^step); its F32 tensors "params",
 * "adamw.m", "adamw.v" (read separately with ab_st_read) have the model's element counts and are now the
 * model's parameters and moments, bit for bit. Any failure is an abort(); ASan/UBSan/LeakSanitizer cover the
 * rest.
 */
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/safetensors.h"
#include "model/checkpoint.h"
#include "fuzz_models.h"

enum { N_FIXED = 3 };

static ab_backend be;
static ab_gpt2 fixed[N_FIXED];

static void fail(const char *what) {
    fprintf(stderr, "fuzz_state: %s (last message: %s)\n", what, ab_error());
    abort();
}

static void setup(void) {
    if (ab_backend_open(BACKEND_CPU, 0, &be) != AB_OK) fail("cpu backend");
    ab_model_config tiny = FUZZ_TINY_MODEL;
    ab_model_config two = tiny;
    two.n_layer = 2;
    const ab_model_config *cfgs[N_FIXED] = {&tiny, &tiny, &two};
    const ab_variant_id vars[N_FIXED] = {VARIANT_BASELINE, VARIANT_FLASH, VARIANT_BASELINE};
    for (int k = 0; k < N_FIXED; k++)
        if (ab_gpt2_create(&fixed[k], cfgs[k], vars[k], FUZZ_TINY_T, &be) != AB_OK || ab_gpt2_init_weights(&fixed[k], 7) != AB_OK ||
            ab_gpt2_alloc(&fixed[k], 1, FUZZ_TINY_T, 1) != AB_OK)
            fail("fixed models");
}

/* What a training state is, as far as the loader can see: parameters, both moments, the step. */
typedef struct {
    float *params, *m, *v;
    int step;
} snapshot;

static void take(ab_gpt2 *g, snapshot *s) {
    s->params = malloc(g->n_elements * sizeof(float));
    s->m = malloc(g->n_trainable * sizeof(float));
    s->v = malloc(g->n_trainable * sizeof(float));
    if (!s->params || !s->m || !s->v || ab_gpt2_get_params(g, s->params) != AB_OK ||
        be.ops->copy_to_host(&be, s->m, g->m_buf.ptr, g->n_trainable * sizeof(float)) != AB_OK ||
        be.ops->copy_to_host(&be, s->v, g->v_buf.ptr, g->n_trainable * sizeof(float)) != AB_OK)
        fail("reading the model's state");
    s->step = g->optimizer_step;
}

static void drop(snapshot *s) {
    free(s->params);
    free(s->m);
    free(s->v);
}

/* The F32 tensor `name` of f with n elements, or an abort: the loader accepted the file with it. */
static const float *file_floats(const ab_st_file *f, const char *name, size_t n) {
    const ab_st_tensor *t = ab_st_find(f, name);
    if (!t || t->dtype != ST_F32 || ab_st_numel(t) != n) fail("an accepted state lacks a tensor of the model's size");
    return (const float *)(f->data + t->begin);
}

static int same_bits(const float *a, const void *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

/* An accepted load: the metadata names this variant and gives the epoch and step; the model holds the file. */
static void check_accepted(ab_gpt2 *g, const ab_st_file *f, int epoch) {
    char *meta = ab_st_metadata(f, "attnbench_state");
    json_t *root = meta ? json_loads(meta, 0, NULL) : NULL;
    free(meta);
    const char *var = json_string_value(json_object_get(root, "variant"));
    json_t *e = json_object_get(root, "epoch"), *st = json_object_get(root, "optimizer_step");
    if (!var || strcmp(var, g->variant->name) != 0) fail("a state of another variant was accepted");
    if (!json_is_integer(e) || json_integer_value(e) != epoch) fail("the epoch handed back is not the metadata's");
    if (!json_is_integer(st) || json_integer_value(st) != g->optimizer_step) fail("the optimizer step is not the metadata's");
    if (g->optimizer_step < 0 || g->optimizer_step == INT_MAX) fail("an optimizer step AdamW cannot continue from was accepted");
    json_decref(root);
    snapshot now;
    take(g, &now);
    if (!same_bits(now.params, file_floats(f, "params", g->n_elements), g->n_elements)) fail("the parameters are not the file's");
    if (!same_bits(now.m, file_floats(f, "adamw.m", g->n_trainable), g->n_trainable)) fail("adamw.m is not the file's");
    if (!same_bits(now.v, file_floats(f, "adamw.v", g->n_trainable), g->n_trainable)) fail("adamw.v is not the file's");
    drop(&now);
}

static void check_untouched(ab_gpt2 *g, const snapshot *before) {
    snapshot now;
    take(g, &now);
    if (!same_bits(now.params, before->params, g->n_elements) || !same_bits(now.m, before->m, g->n_trainable) ||
        !same_bits(now.v, before->v, g->n_trainable) || now.step != before->step)
        fail("a refused state changed the model");
    drop(&now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!be.ops) setup();
    int fd = memfd_create("fuzz_state", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ab_st_file f;
    int readable = ab_st_read(path, &f) == AB_OK;
    ab_clear_error();

    for (int k = 0; k < N_FIXED; k++) {
        snapshot before;
        take(&fixed[k], &before);
        int epoch = -12345;
        ab_status s = ab_checkpoint_load_state(&fixed[k], path, &epoch);
        if (s == AB_OK) {
            if (!readable) fail("load_state accepted a file the safetensors reader refuses");
            check_accepted(&fixed[k], &f, epoch);
        } else {
            if (!strstr(ab_error(), path)) {
                fprintf(stderr, "fuzz_state: load_state refused the file without naming it: %s\n", ab_error());
                abort();
            }
            check_untouched(&fixed[k], &before);
        }
        drop(&before);
    }
    if (readable) ab_st_free(&f);
    close(fd);
    return 0;
}
