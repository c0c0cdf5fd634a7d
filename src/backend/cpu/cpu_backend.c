/*
 * cpu_backend.c — the CPU reference backend: fp32 everywhere, OpenMP over rows, GEMMs through
 * ab_cpu_sgemm (OpenBLAS). Every op follows the conventions of backend.h (row-major, Conv1D (in, out)
 * weights, backward ops accumulate into gradients). This is the reference the CUDA backend is tested against,
 * so clarity wins over the last few percent of speed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_gemm.h"

#define LN_EPS 1e-5f
#define CLASSIFIER_ROWS 256 /* rows of logits materialised at once: 256 x V fp32 = 51 MB at V = 50257 */

/* ------------------------------------------------------------------ memory */

static ab_status cpu_alloc(ab_backend *be, ab_buffer *buf, size_t bytes, mem_category cat) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    buf->ptr = NULL;
    buf->bytes = 0;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) return ab_fail(AB_ERR_OOM, "cpu: cannot allocate %zu bytes (%s)", bytes, mem_category_name(cat));
    memset(p, 0, rounded);
    buf->ptr = p;
    buf->bytes = bytes;
    buf->category = cat;
    mem_account_alloc(&be->mem, cat, bytes);
    return AB_OK;
}

static void cpu_free(ab_backend *be, ab_buffer *buf) {
    if (!buf || !buf->ptr) return;
    mem_account_free(&be->mem, buf->category, buf->bytes);
    free(buf->ptr);
    buf->ptr = NULL;
    buf->bytes = 0;
}

static ab_status cpu_memzero(ab_backend *be, void *ptr, size_t bytes) {
    memset(ptr, 0, bytes);
    return AB_OK;
}

static ab_status cpu_copy(ab_backend *be, void *dst, const void *src, size_t bytes) {
    memmove(dst, src, bytes);
    return AB_OK;
}

static ab_status cpu_upload_f32(ab_backend *be, void *dst, const float *src, size_t n) {
    memmove(dst, src, n * sizeof(float));
    return AB_OK;
}

static ab_status cpu_download_f32(ab_backend *be, float *dst, const void *src, size_t n) {
    memmove(dst, src, n * sizeof(float));
    return AB_OK;
}

static ab_status cpu_synchronize(ab_backend *be) { return AB_OK; }

/* ------------------------------------------------------------------ encoder */

static ab_status cpu_encoder_forward(ab_backend *be, void *out_, const int32_t *tokens, const void *wte_,
                                     const void *wpe_, const int32_t *pos0, int B, int T, int C) {
    float *out = out_;               /* (B,T,C) */
    const float *wte = wte_;         /* (V,C) */
    const float *wpe = wpe_;         /* (maxT,C) */
    const int p0 = pos0 ? *pos0 : 0;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const float *te = wte + (size_t)tokens[bt] * C, *pe = wpe + (size_t)(p0 + bt % T) * C;
        float *o = out + (size_t)bt * C;
        for (int c = 0; c < C; c++) o[c] = te[c] + pe[c];
    }
    return AB_OK;
}

static ab_status cpu_encoder_backward(ab_backend *be, void *dwte_, void *dwpe_, const void *dout_,
                                      const int32_t *tokens, int B, int T, int C) {
    float *dwte = dwte_, *dwpe = dwpe_;
    const float *dout = dout_; /* (B,T,C) */
    /* serial over rows: several positions may share a token id */
    for (int bt = 0; bt < B * T; bt++) {
        const float *d = dout + (size_t)bt * C;
        float *te = dwte + (size_t)tokens[bt] * C, *pe = dwpe + (size_t)(bt % T) * C;
        for (int c = 0; c < C; c++) {
            te[c] += d[c];
            pe[c] += d[c];
        }
    }
    return AB_OK;
}

/* ------------------------------------------------------------------ layernorm */

static ab_status cpu_layernorm_forward(ab_backend *be, void *out_, float *mean, float *rstd, const void *inp_,
                                       const void *weight_, const void *bias_, int N, int C) {
    float *out = out_;
    const float *inp = inp_, *w = weight_, *b = bias_;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= C;
        float s = (float)(1.0 / sqrt(v + LN_EPS));
        float *o = out + (size_t)i * C;
        for (int c = 0; c < C; c++) o[c] = ((x[c] - (float)m) * s) * w[c] + b[c];
        mean[i] = (float)m;
        rstd[i] = s;
    }
    return AB_OK;
}

static ab_status cpu_layernorm_backward(ab_backend *be, void *dinp_, void *dweight_, void *dbias_,
                                        const void *dout_, const void *inp_, const void *weight_,
                                        const float *mean, const float *rstd, int N, int C) {
    float *dinp = dinp_, *dw = dweight_, *db = dbias_;
    const float *dout = dout_, *inp = inp_, *w = weight_;
    /* dinp rows are independent; dweight/dbias are reduced over rows serially for determinism */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const float *dy = dout + (size_t)i * C, *x = inp + (size_t)i * C;
        float m = mean[i], s = rstd[i];
        double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s, dxhat = dy[c] * w[c];
            sum_dxhat += dxhat;
            sum_dxhat_xhat += dxhat * xhat;
        }
        float mean_dxhat = (float)(sum_dxhat / C), mean_dxhat_xhat = (float)(sum_dxhat_xhat / C);
        float *dx = dinp + (size_t)i * C;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s, dxhat = dy[c] * w[c];
            dx[c] += s * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
        }
    }
    for (int i = 0; i < N; i++) {
        const float *dy = dout + (size_t)i * C, *x = inp + (size_t)i * C;
        float m = mean[i], s = rstd[i];
        for (int c = 0; c < C; c++) {
            dw[c] += dy[c] * (x[c] - m) * s;
            db[c] += dy[c];
        }
    }
    return AB_OK;
}

/* ------------------------------------------------------------------ matmul */

static ab_status cpu_matmul_forward(ab_backend *be, void *out_, const void *inp_, const void *weight_,
                                    const void *bias_, int N, int C, int OC) {
    float *out = out_;                         /* (N,OC) */
    const float *inp = inp_, *w = weight_;     /* (N,C), (C,OC) */
    const float *bias = bias_;                 /* (OC) or NULL */
    ab_cpu_sgemm(0, 0, N, OC, C, 1.0f, inp, C, w, OC, 0.0f, out, OC);
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < N; i++) {
            float *o = out + (size_t)i * OC;
            for (int j = 0; j < OC; j++) o[j] += bias[j];
        }
    }
    return AB_OK;
}

static ab_status cpu_matmul_backward(ab_backend *be, void *dinp_, void *dweight_, void *dbias_, const void *dout_,
                                     const void *inp_, const void *weight_, int N, int C, int OC) {
    float *dinp = dinp_, *dw = dweight_, *db = dbias_;
    const float *dout = dout_, *inp = inp_, *w = weight_;
    if (dinp) ab_cpu_sgemm(0, 1, N, C, OC, 1.0f, dout, OC, w, OC, 1.0f, dinp, C);  /* dinp += dout @ W^T */
    if (dw) ab_cpu_sgemm(1, 0, C, OC, N, 1.0f, inp, C, dout, OC, 1.0f, dw, OC);    /* dW += inp^T @ dout */
    if (db) {
#pragma omp parallel for schedule(static)
        for (int j = 0; j < OC; j++) {
            float s = 0.0f;
            for (int i = 0; i < N; i++) s += dout[(size_t)i * OC + j];
            db[j] += s;
        }
    }
    return AB_OK;
}

/* ------------------------------------------------------------------ gelu, residual */

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */

static ab_status cpu_gelu_forward(ab_backend *be, void *out_, const void *inp_, size_t n) {
    float *out = out_;
    const float *x = inp_;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float u = GELU_SCALE * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
        out[i] = 0.5f * x[i] * (1.0f + tanhf(u));
    }
    return AB_OK;
}

static ab_status cpu_gelu_backward(ab_backend *be, void *dinp_, const void *inp_, const void *dout_, size_t n) {
    float *dinp = dinp_;
    const float *x = inp_, *dout = dout_;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float u = GELU_SCALE * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
        float t = tanhf(u), sech2 = 1.0f - t * t;
        float grad = 0.5f * (1.0f + t) + 0.5f * x[i] * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x[i] * x[i]);
        dinp[i] += grad * dout[i];
    }
    return AB_OK;
}

static ab_status cpu_residual_forward(ab_backend *be, void *out_, const void *a_, const void *b_, size_t n) {
    float *out = out_;
    const float *a = a_, *b = b_;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
    return AB_OK;
}

static ab_status cpu_accumulate(ab_backend *be, void *dst_, const void *src_, size_t n) {
    float *dst = dst_;
    const float *src = src_;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
    return AB_OK;
}

/* ------------------------------------------------------------------ classifier */

static ab_status cpu_classifier(ab_backend *be, float *losses, void *dx_, void *dwte_, const void *x_,
                                const void *wte_, const int32_t *targets, int N, int C, int V, float dloss) {
    const float *x = x_, *wte = wte_;   /* (N,C), (V,C) */
    float *dx = dx_, *dwte = dwte_;     /* (N,C), (V,C) or NULL */
    float *logits = malloc((size_t)CLASSIFIER_ROWS * V * sizeof(float));
    if (!logits) return ab_fail(AB_ERR_OOM, "cpu classifier: cannot allocate %d x %d logits", CLASSIFIER_ROWS, V);
    for (int r0 = 0; r0 < N; r0 += CLASSIFIER_ROWS) {
        int rows = N - r0 < CLASSIFIER_ROWS ? N - r0 : CLASSIFIER_ROWS;
        /* logits (rows,V) = x[r0:r0+rows] @ wte^T */
        ab_cpu_sgemm(0, 1, rows, V, C, 1.0f, x + (size_t)r0 * C, C, wte, C, 0.0f, logits, V);
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) {
            float *l = logits + (size_t)r * V;
            int target = targets[r0 + r];
            float mx = -INFINITY;
            for (int v = 0; v < V; v++) mx = l[v] > mx ? l[v] : mx;
            float target_logit = target >= 0 ? l[target] : 0.0f;
            double sum = 0.0;
            for (int v = 0; v < V; v++) { /* l becomes exp(l - max): one exp per logit */
                l[v] = expf(l[v] - mx);
                sum += l[v];
            }
            float log_z = mx + (float)log(sum);
            losses[r0 + r] = target >= 0 ? log_z - target_logit : 0.0f;
            if (!dx) continue;
            /* in place: l becomes dlogits = (softmax - onehot) * dloss, or 0 for ignored rows */
            if (target < 0) {
                memset(l, 0, (size_t)V * sizeof(float));
                continue;
            }
            float scale = (float)(dloss / sum);
            for (int v = 0; v < V; v++) l[v] *= scale;
            l[target] -= dloss;
        }
        if (!dx) continue;
        ab_cpu_sgemm(0, 0, rows, C, V, 1.0f, logits, V, wte, C, 1.0f, dx + (size_t)r0 * C, C);   /* dx += dl @ wte */
        ab_cpu_sgemm(1, 0, V, C, rows, 1.0f, logits, V, x + (size_t)r0 * C, C, 1.0f, dwte, C);   /* dwte += dl^T @ x */
    }
    free(logits);
    return AB_OK;
}

static ab_status cpu_logits(ab_backend *be, float *logits, const void *x, const void *wte, int N, int C, int V) {
    ab_cpu_sgemm(0, 1, N, V, C, 1.0f, x, C, wte, C, 0.0f, logits, V);
    return AB_OK;
}

/* ------------------------------------------------------------------ optimizer */

static ab_status cpu_adamw(ab_backend *be, void *params_, float *master, const void *grads_, float *m, float *v,
                           size_t n, const ab_adamw_args *a) {
    float *p = params_;
    const float *g = grads_;
    float bc1 = 1.0f - powf(a->beta1, (float)a->step), bc2 = 1.0f - powf(a->beta2, (float)a->step);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float grad = g[i] * a->grad_scale;
        m[i] = a->beta1 * m[i] + (1.0f - a->beta1) * grad;
        v[i] = a->beta2 * v[i] + (1.0f - a->beta2) * grad * grad;
        float mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= a->lr * (mhat / (sqrtf(vhat) + a->eps) + a->weight_decay * p[i]);
    }
    return AB_OK;
}

static ab_status cpu_sum_squares(ab_backend *be, double *out, const void *x_, size_t n) {
    const float *x = x_;
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    *out = s;
    return AB_OK;
}

const ab_backend_ops ab_cpu_backend = {
    .name = "cpu",
    .id = BACKEND_CPU,
    .act_bytes = sizeof(float),
    .init = NULL,
    .shutdown = NULL,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .memzero = cpu_memzero,
    .copy_to_device = cpu_copy,
    .copy_to_host = cpu_copy,
    .copy = cpu_copy,
    .upload_f32 = cpu_upload_f32,
    .download_f32 = cpu_download_f32,
    .synchronize = cpu_synchronize,
    .encoder_forward = cpu_encoder_forward,
    .encoder_backward = cpu_encoder_backward,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .matmul_forward = cpu_matmul_forward,
    .matmul_backward = cpu_matmul_backward,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .residual_forward = cpu_residual_forward,
    .accumulate = cpu_accumulate,
    .classifier = cpu_classifier,
    .logits = cpu_logits,
    .adamw = cpu_adamw,
    .sum_squares = cpu_sum_squares,
    .matmul_residual_forward = NULL, /* the model composes the plain ops */
    .matmul_gelu_forward = NULL,
    .layernorm_matmul_forward = NULL,
    .gelu_matmul_backward = NULL,
    .layernorm_logits = NULL,
    .block_tail_forward = NULL,
    .host_alloc = NULL, /* no recorded steps: every decode step runs directly */
    .host_free = NULL,
    .copy_to_device_async = NULL,
    .graph_begin = NULL,
    .graph_end = NULL,
    .graph_launch = NULL,
    .graph_free = NULL,
};
