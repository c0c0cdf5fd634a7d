/*
 * test_attn_util.h — one attention layer under test: config, random weights and input, forward,
 * backward and decode through the variant table on the CPU backend. Shared by tests/test_attn_*.c.
 *
 * Weights are drawn at a scale (std 0.8/sqrt(fan-in)) that gives O(1) logits, so softmaxes are neither
 * uniform nor one-hot and the checks exercise every path; biases and gains are perturbed from their
 * init (0, 1) so that their gradients are non-trivial.
 */
#ifndef AB_TEST_ATTN_UTIL_H
#define AB_TEST_ATTN_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/variant.h"
#include "backend/backend.h"
#include "core/rng.h"
#include "test_util.h"

typedef struct {
    ab_backend *be;
    const ab_variant *v;
    const ab_attn_ops *ops;
    ab_attn_config cfg;
    int B, T;
    int n_t;
    ab_attn_tensor tens[AB_ATTN_MAX_TENSORS];
    ab_attn_weights w, dw;  /* dw.t[i] NULL for fixed tensors */
    ab_buffer saved, ws;
    float *x, *y, *dy, *dx; /* (B,T,C) */
    char name[128];         /* "<variant>,cpu,B=..,T=..,H=.." */
} att_case;

static inline size_t att_n(const att_case *c) { return (size_t)c->B * c->T * c->cfg.C; }
static inline size_t att_tn(const ab_attn_tensor *t) { return (size_t)t->rows * t->cols; }

static inline void att_fill_normal(ab_rng *r, float *p, size_t n, double std, double mean) {
    for (size_t i = 0; i < n; i++) p[i] = (float)(mean + std * ab_rng_normal(r));
}

/* Sets up variant `id` with C = H * D, the given hyper-parameters (0 = default), max_T = train_T = T
 * unless max_T > 0. Returns 0 if the variant has no CPU ops. */
static inline int att_setup(att_case *c, ab_backend *be, ab_variant_id id, int B, int T, int H, int D,
                            ab_attn_hparams hp, int max_T, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->be = be;
    c->v = ab_variants[id];
    ab_status st;
    c->ops = ab_variant_ops(c->v, BACKEND_CPU, &st);
    if (!c->ops) return 0;
    c->B = B;
    c->T = T;
    c->cfg = (ab_attn_config){.C = H * D, .H = H, .D = D, .max_T = max_T > 0 ? max_T : T, .train_T = T, .hp = hp};
    ab_attn_resolve_hparams(&c->cfg);
    snprintf(c->name, sizeof c->name, "%s,cpu,B=%d,T=%d,H=%d", c->v->name, B, T, H);
    c->n_t = c->v->tensors(&c->cfg, c->tens);
    ab_rng r;
    ab_rng_seed(&r, seed);
    for (int i = 0; i < c->n_t; i++) {
        const ab_attn_tensor *t = &c->tens[i];
        float *p = malloc(att_tn(t) * sizeof *p);
        switch (t->init) {
        case INIT_NORMAL: att_fill_normal(&r, p, att_tn(t), 0.8 / sqrt((double)t->rows), 0.0); break;
        case INIT_ZERO: att_fill_normal(&r, p, att_tn(t), 0.1, 0.0); break;
        case INIT_ONE: att_fill_normal(&r, p, att_tn(t), 0.1, 1.0); break;
        case INIT_GAUSSIAN_FIXED: att_fill_normal(&r, p, att_tn(t), 1.0, 0.0); break;
        }
        c->w.t[i] = p;
        c->dw.t[i] = t->init == INIT_GAUSSIAN_FIXED ? NULL : calloc(att_tn(t), sizeof(float));
    }
    size_t n = att_n(c);
    c->x = malloc(n * sizeof(float));
    c->y = calloc(n, sizeof(float));
    c->dy = malloc(n * sizeof(float));
    c->dx = calloc(n, sizeof(float));
    att_fill_normal(&r, c->x, n, 1.0, 0.0);
    att_fill_normal(&r, c->dy, n, 1.0, 0.0);
    if (ab_alloc(be, &c->saved, c->ops->saved_bytes(&c->cfg, B, T), MEM_ATTENTION) != AB_OK ||
        ab_alloc(be, &c->ws, c->ops->workspace_bytes(&c->cfg, B, T), MEM_WORKSPACE) != AB_OK) {
        fprintf(stderr, "att_setup: %s\n", ab_error());
        exit(1);
    }
    return 1;
}

static inline ab_attn_ctx att_ctx(att_case *c) {
    return (ab_attn_ctx){.be = c->be, .cfg = &c->cfg, .workspace = c->ws.ptr, .layer = 0};
}

/* Forward of x into y (and saved); exits on a failing status (a test bug, not a case). */
static inline void att_forward(att_case *c, const float *x, float *y) {
    ab_attn_ctx ctx = att_ctx(c);
    ab_status s = c->ops->forward(&ctx, &c->w, c->saved.ptr, y, x, c->B, c->T);
    if (s != AB_OK) {
        fprintf(stderr, "%s forward: %s\n", c->name, ab_error());
        exit(1);
    }
}

/* Zeroes dx and dw, runs forward on c->x then backward of dy. */
static inline void att_forward_backward(att_case *c) {
    memset(c->dx, 0, att_n(c) * sizeof(float));
    for (int i = 0; i < c->n_t; i++)
        if (c->dw.t[i]) memset(c->dw.t[i], 0, att_tn(&c->tens[i]) * sizeof(float));
    att_forward(c, c->x, c->y);
    ab_attn_ctx ctx = att_ctx(c);
    ab_status s = c->ops->backward(&ctx, &c->w, &c->dw, c->saved.ptr, c->dx, c->dy, c->x, c->B, c->T);
    if (s != AB_OK) {
        fprintf(stderr, "%s backward: %s\n", c->name, ab_error());
        exit(1);
    }
}

/* Copies the weights of `src` into `dst` (same tensor shapes; the first `n` tensors). */
static inline void att_copy_weights(att_case *dst, const att_case *src) {
    for (int i = 0; i < dst->n_t && i < src->n_t; i++)
        memcpy(dst->w.t[i], src->w.t[i], att_tn(&dst->tens[i]) * sizeof(float));
    memcpy(dst->x, src->x, att_n(dst) * sizeof(float));
    memcpy(dst->dy, src->dy, att_n(dst) * sizeof(float));
}

static inline void att_free(att_case *c) {
    for (int i = 0; i < c->n_t; i++) {
        free(c->w.t[i]);
        free(c->dw.t[i]);
    }
    free(c->x);
    free(c->y);
    free(c->dy);
    free(c->dx);
    ab_free(c->be, &c->saved);
    ab_free(c->be, &c->ws);
}

static inline void att_open_backend(ab_backend *be) {
    if (ab_backend_open(BACKEND_CPU, 0, be) != AB_OK) {
        fprintf(stderr, "cannot open the cpu backend: %s\n", ab_error());
        exit(1);
    }
}

#endif
