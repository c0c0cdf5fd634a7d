/*
 * test_attn_grad.c — finite-difference gradient checks of every variant's CPU backward, w.r.t. the input
 * x and every trainable tensor, at shapes with T = 1, T not a multiple of any tile or chunk, B > 1, H > 1.
 *
 * Loss = sum(y * R) for a fixed random R (so dL/dy = R), accumulated in double. fp32 central differences
 * with step h = 1e-2 on O(1) inputs: the fp32 forward noise in the loss (~1e-6 absolute) contributes
 * ~1e-4 to the difference quotient and the O(h^2) truncation ~1e-4, both well below atol 3e-3 + rtol 2e-2,
 * while a wrong term in a backward shows up at the size of the gradient itself (O(0.1..1)).
 * lsh: an element whose perturbation changes any bucket is skipped (the loss is piecewise, no gradient
 * flows through the argmax); the case fails if more than half of the elements had to be skipped.
 */
#include "attn/attn_variants.h"
#include "test_attn_util.h"

#define FD_STEP 1e-2
#define FD_ATOL 3e-3
#define FD_RTOL 2e-2
#define FD_SAMPLES 48 /* elements checked per tensor (all of them if fewer) */

static double loss_of(att_case *c, float *ybuf) {
    att_forward(c, c->x, ybuf);
    double s = 0;
    for (size_t i = 0; i < att_n(c); i++) s += (double)ybuf[i] * c->dy[i];
    return s;
}

/* Snapshot of whatever makes the loss piecewise (lsh buckets); NULL for smooth variants. */
static int32_t *bucket_snapshot(att_case *c) {
    if (c->v->id != VARIANT_LSH) return NULL;
    size_t n;
    const int32_t *b = ab_attn_lsh_saved_buckets(&c->cfg, c->saved.ptr, c->B, c->T, &n);
    int32_t *copy = malloc(n * sizeof *copy);
    memcpy(copy, b, n * sizeof *copy);
    return copy;
}

static int buckets_changed(att_case *c, const int32_t *ref) {
    if (!ref) return 0;
    size_t n;
    const int32_t *b = ab_attn_lsh_saved_buckets(&c->cfg, c->saved.ptr, c->B, c->T, &n);
    return memcmp(b, ref, n * sizeof *b) != 0;
}

/* Checks the gradient `grad` of parameter array p (n elements) against central differences. */
static void check_param(att_case *c, const char *what, float *p, const float *grad, size_t n, ab_rng *r,
                        const int32_t *buckets) {
    const int m = n < FD_SAMPLES ? (int)n : FD_SAMPLES;
    double *got = malloc(m * sizeof *got), *ref = malloc(m * sizeof *ref);
    float *ybuf = malloc(att_n(c) * sizeof *ybuf);
    int used = 0, skipped = 0;
    double gnorm = 0;
    for (int k = 0; k < m; k++) {
        size_t e = n <= FD_SAMPLES ? (size_t)k : ab_rng_below(r, (uint32_t)n);
        const float orig = p[e];
        p[e] = (float)(orig + FD_STEP);
        double lp = loss_of(c, ybuf);
        int flipped = buckets_changed(c, buckets);
        p[e] = (float)(orig - FD_STEP);
        double lm = loss_of(c, ybuf);
        flipped |= buckets_changed(c, buckets);
        p[e] = orig;
        if (flipped) {
            skipped++;
            continue;
        }
        got[used] = grad[e];
        ref[used] = (lp - lm) / (2 * FD_STEP);
        gnorm += ref[used] * ref[used];
        used++;
    }
    char name[256];
    snprintf(name, sizeof name, "grad[%s] d%s (%d checked, %d skipped, |g| %.3g)", c->name, what, used, skipped,
             sqrt(gnorm));
    if (skipped > m / 2)
        test_report(0, name, "too many elements change an lsh bucket under the step");
    else
        TEST_CLOSE_F64(name, got, ref, (size_t)used, FD_ATOL, FD_RTOL);
    free(got);
    free(ref);
    free(ybuf);
}

static void grad_case(ab_backend *be, ab_variant_id id, int B, int T, int H, int D, ab_attn_hparams hp) {
    att_case c;
    if (!att_setup(&c, be, id, B, T, H, D, hp, 0, 1000 + id * 17 + T)) return;
    att_forward_backward(&c);
    int32_t *buckets = bucket_snapshot(&c);
    ab_rng r;
    ab_rng_seed(&r, 42 + T);
    check_param(&c, "x", c.x, c.dx, att_n(&c), &r, buckets);
    for (int i = 0; i < c.n_t; i++) {
        if (!c.dw.t[i]) continue; /* fixed (lsh rotations): no gradient by definition */
        check_param(&c, c.tens[i].name, c.w.t[i], c.dw.t[i], att_tn(&c.tens[i]), &r, buckets);
    }
    free(buckets);
    att_free(&c);
}

int main(void) {
    ab_backend be;
    att_open_backend(&be);
    /* small chunk/window/bucket settings so that T = 37 and 70 span several chunks, bands and tiles */
    const ab_attn_hparams hp = {.gqa_kv_heads = 2, .window = 5, .lsh_hashes = 2, .lsh_chunk = 4, .lsh_buckets = 4,
                                .linear_chunk = 16, .mla_kv_rank = 12};
    const struct { int B, T, H, D; } shapes[] = {{1, 1, 2, 8}, {2, 37, 4, 8}, {1, 70, 2, 8}};
    for (int v = 0; v < VARIANT_COUNT; v++) {
        if (!ab_variants[v]->ops[BACKEND_CPU]) {
            printf("SKIP grad[%s,cpu]: not implemented on cpu\n", ab_variants[v]->name);
            continue;
        }
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            grad_case(&be, (ab_variant_id)v, shapes[s].B, shapes[s].T, shapes[s].H, shapes[s].D, hp);
    }
    ab_backend_close(&be);
    return TEST_SUMMARY();
}
