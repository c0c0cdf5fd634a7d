/*
 * bench.c — the attention-only benchmark (see bench.h): per variant and sequence length, allocate one
 * layer's weights, input, saved tensors and workspace through the backend, time forward and backward.
 */
#include "attn/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "prof/timer.h"

/* Random weights for the variant's tensors (backend memory, MEM_PARAMS) and their gradients (MEM_GRADS). */
typedef struct {
    int n;
    ab_buffer w[AB_ATTN_MAX_TENSORS], dw[AB_ATTN_MAX_TENSORS];
    ab_attn_weights tw, tdw;
} bench_weights;

static ab_status weights_alloc(ab_backend *be, const ab_variant *v, const ab_attn_config *cfg, ab_rng *r,
                               bench_weights *bw) {
    ab_attn_tensor t[AB_ATTN_MAX_TENSORS];
    memset(bw, 0, sizeof *bw);
    bw->n = v->tensors(cfg, t);
    for (int i = 0; i < bw->n; i++) {
        const size_t n = (size_t)t[i].rows * t[i].cols;
        float *host = malloc(n * sizeof *host);
        if (!host) return ab_fail(AB_ERR_OOM, "bench: cannot allocate %zu floats", n);
        for (size_t k = 0; k < n; k++)
            host[k] = t[i].init == INIT_ONE ? 1.0f
                      : t[i].init == INIT_ZERO ? 0.0f
                      : (float)(ab_rng_normal(r) * (t[i].init == INIT_GAUSSIAN_FIXED ? 1.0 : 0.02));
        ab_status s = ab_alloc(be, &bw->w[i], n * be->ops->act_bytes, MEM_PARAMS);
        if (s == AB_OK) s = be->ops->upload_f32(be, bw->w[i].ptr, host, n);
        free(host);
        AB_TRY(s);
        bw->tw.t[i] = bw->w[i].ptr;
        if (t[i].init != INIT_GAUSSIAN_FIXED) {
            AB_TRY(ab_alloc(be, &bw->dw[i], n * be->ops->act_bytes, MEM_GRADS));
            bw->tdw.t[i] = bw->dw[i].ptr;
        }
    }
    return AB_OK;
}

static void weights_free(ab_backend *be, bench_weights *bw) {
    for (int i = 0; i < bw->n; i++) {
        ab_free(be, &bw->w[i]);
        ab_free(be, &bw->dw[i]);
    }
}

static double median_ms(double *t, int n) { return ab_quantile(t, (size_t)n, 0.5) * 1e3; }

/* One (variant, T) measurement into row. */
static ab_status bench_one(ab_backend *be, const ab_attn_bench_opts *o, const ab_variant *v, int T, int max_T,
                           ab_attn_bench_row *row) {
    const int B = o->B;
    ab_attn_config cfg = {.C = o->C, .H = o->H, .D = o->C / o->H, .max_T = max_T, .train_T = T, .hp = o->hp};
    ab_attn_resolve_hparams(&cfg);
    row->id = v->id;
    row->T = T;
    ab_status st;
    const ab_attn_ops *ops = ab_variant_ops(v, be->ops->id, &st);
    if (ops) st = v->validate(&cfg, T);
    if (st != AB_OK) {
        snprintf(row->reason, sizeof row->reason, "%s", ab_error());
        return AB_OK;
    }
    v->flops(&cfg, B, T, &row->flops);
    ab_rng r;
    ab_rng_derive(&r, o->seed, (uint64_t)v->id * 1000003u + (uint64_t)T);
    bench_weights bw = {0};
    ab_buffer x = {0}, y = {0}, dx = {0}, saved = {0}, ws = {0};
    const size_t n = (size_t)B * T * o->C, nb = n * be->ops->act_bytes;
    double *times = calloc(2 * (size_t)o->repeats, sizeof *times);
    float *host = malloc(n * sizeof *host);
    st = times && host ? weights_alloc(be, v, &cfg, &r, &bw) : ab_fail(AB_ERR_OOM, "bench: host buffers");
    if (st == AB_OK) {
        for (size_t k = 0; k < n; k++) host[k] = (float)ab_rng_normal(&r);
        st = ab_alloc(be, &x, nb, MEM_ACTIVATIONS);
        if (st == AB_OK) st = ab_alloc(be, &y, nb, MEM_ACTIVATIONS);
        if (st == AB_OK) st = ab_alloc(be, &dx, nb, MEM_ACTIVATIONS);
        if (st == AB_OK) st = be->ops->upload_f32(be, x.ptr, host, n);
        const size_t att0 = be->mem.current[MEM_ATTENTION], ws0 = be->mem.current[MEM_WORKSPACE];
        if (st == AB_OK) st = ab_alloc(be, &saved, ops->saved_bytes(&cfg, B, T), MEM_ATTENTION);
        if (st == AB_OK) st = ab_alloc(be, &ws, ops->workspace_bytes(&cfg, B, T), MEM_WORKSPACE);
        row->saved_bytes = be->mem.current[MEM_ATTENTION] - att0;
        row->workspace_bytes = be->mem.current[MEM_WORKSPACE] - ws0;
    }
    ab_attn_ctx ctx = {.be = be, .cfg = &cfg, .workspace = ws.ptr, .layer = 0};
    /* dy = y: any dense upstream gradient times the same */
    for (int rep = -1; st == AB_OK && rep < o->repeats; rep++) {
        double t0 = ab_now_s();
        st = ops->forward(&ctx, &bw.tw, saved.ptr, y.ptr, x.ptr, B, T);
        if (st == AB_OK) st = be->ops->synchronize(be);
        double t1 = ab_now_s();
        if (st == AB_OK) st = ops->backward(&ctx, &bw.tw, &bw.tdw, saved.ptr, dx.ptr, y.ptr, x.ptr, B, T);
        if (st == AB_OK) st = be->ops->synchronize(be);
        double t2 = ab_now_s();
        if (rep >= 0) {
            times[rep] = t1 - t0;
            times[o->repeats + rep] = t2 - t1;
        }
    }
    if (st == AB_OK) {
        row->fwd_ms = median_ms(times, o->repeats);
        row->bwd_ms = median_ms(times + o->repeats, o->repeats);
        row->ok = 1;
    }
    ab_free(be, &ws);
    ab_free(be, &saved);
    ab_free(be, &dx);
    ab_free(be, &y);
    ab_free(be, &x);
    weights_free(be, &bw);
    free(times);
    free(host);
    return st == AB_OK ? AB_OK : ab_fail_context(st, "bench %s T=%d: ", v->name, T);
}

ab_status ab_attn_bench_run(ab_backend *be, const ab_attn_bench_opts *o, ab_attn_bench_row *rows) {
    if (o->B < 1 || o->H < 1 || o->C < o->H || o->C % o->H != 0 || o->repeats < 1 || o->n_seqs < 1)
        return ab_fail(AB_ERR_USAGE, "bench: need batch >= 1, heads >= 1 dividing embd (got batch %d, heads %d, embd %d), "
                       "repeats >= 1 and at least one length", o->B, o->H, o->C);
    int max_T = 0;
    for (int s = 0; s < o->n_seqs; s++) max_T = o->seqs[s] > max_T ? o->seqs[s] : max_T;
    for (int v = 0; v < o->n_variants; v++)
        for (int s = 0; s < o->n_seqs; s++) {
            ab_attn_bench_row *row = &rows[v * o->n_seqs + s];
            memset(row, 0, sizeof *row);
            AB_TRY(bench_one(be, o, ab_variants[o->variants[v]], o->seqs[s], max_T, row));
        }
    return AB_OK;
}
