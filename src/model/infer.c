/*
 * infer.c — inference latency (prefill, decode with the variant's cache) and sampling.
 */
#include "model/infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prof/timer.h"

#define PREFILL_REPEATS 5

static double median_ms(double *x, int n) { return ab_quantile(x, (size_t)n, 0.5); }

/* Deterministic pseudo-tokens: the benchmark measures time, not text. */
static void fill_tokens(int32_t *t, size_t n, int V) {
    for (size_t i = 0; i < n; i++) t[i] = (int32_t)((i * 2654435761u + 17) % (uint32_t)V);
}

static ab_status bench_batch(ab_gpt2 *m, int B, int T, int gen_tokens, int slot, ab_inference_result *out) {
    ab_backend *be = m->be;
    int prompt = gen_tokens > 0 && T / 2 + gen_tokens > T ? T - gen_tokens : T / 2;
    if (prompt < 1) prompt = 1;
    int32_t *tokens = malloc((size_t)B * T * sizeof *tokens);
    double *times = malloc((size_t)(gen_tokens > PREFILL_REPEATS ? gen_tokens : PREFILL_REPEATS) * sizeof *times);
    if (!tokens || !times) {
        free(tokens);
        free(times);
        return ab_fail(AB_ERR_OOM, "out of memory");
    }
    fill_tokens(tokens, (size_t)B * T, m->cfg.vocab_size);
    ab_status s = ab_gpt2_alloc_cache(m, B, T);
    if (s == AB_OK && slot == 0) out->cache_bytes_measured = (double)m->cache.bytes_per_layer * m->cfg.n_layer;
    /* prefill of T tokens: one untimed warm-up, then the median of repeats */
    for (int r = -1; r < PREFILL_REPEATS && s == AB_OK; r++) {
        double t0 = ab_now_s();
        s = ab_gpt2_prefill(m, tokens, B, T, NULL);
        if (s == AB_OK) s = be->ops->synchronize(be);
        if (r >= 0) times[r] = (ab_now_s() - t0) * 1e3;
    }
    if (s == AB_OK) out->prefill_ms[slot] = median_ms(times, PREFILL_REPEATS);
    /* decode gen_tokens tokens after a prompt */
    if (s == AB_OK && gen_tokens > 0) s = ab_gpt2_prefill(m, tokens, B, prompt, NULL);
    for (int i = 0; i < gen_tokens && s == AB_OK && prompt + i < T; i++) {
        double t0 = ab_now_s();
        s = ab_gpt2_decode(m, tokens + (size_t)i * B, B, prompt + i, NULL);
        if (s == AB_OK) s = be->ops->synchronize(be);
        times[i] = (ab_now_s() - t0) * 1e3;
    }
    int n = gen_tokens < T - prompt ? gen_tokens : T - prompt;
    if (s == AB_OK && n > 0) {
        out->decode_ms_p50[slot] = ab_quantile(times, (size_t)n, 0.50);
        out->decode_ms_p90[slot] = ab_quantile(times, (size_t)n, 0.90);
        out->decode_ms_p99[slot] = ab_quantile(times, (size_t)n, 0.99);
    }
    ab_gpt2_free_cache(m);
    free(tokens);
    free(times);
    return s;
}

ab_status ab_bench_inference(ab_gpt2 *m, int B, int T, int gen_tokens, ab_inference_result *out) {
    ab_inference_result_null(out, "not measured");
    out->available = 1;
    out->reason[0] = '\0';
    out->prompt_tokens = T;
    out->gen_tokens = gen_tokens;
    out->repeats = PREFILL_REPEATS;
    out->batch[0] = 1;
    out->batch[1] = B;
    out->cache_bytes_per_token_analytical =
        m->variant->cache_elems_per_token(&m->attn_cfg, T) * (double)m->be->ops->act_bytes * m->cfg.n_layer;
    const int batches[AB_INFER_BATCHES] = {1, B};
    for (int i = 0; i < AB_INFER_BATCHES; i++) {
        if (i > 0 && B == 1) {
            out->prefill_ms[i] = out->prefill_ms[0];
            out->decode_ms_p50[i] = out->decode_ms_p50[0];
            out->decode_ms_p90[i] = out->decode_ms_p90[0];
            out->decode_ms_p99[i] = out->decode_ms_p99[0];
            continue;
        }
        ab_status s = bench_batch(m, batches[i], T, gen_tokens, i, out);
        if (s != AB_OK) {
            ab_inference_result_null(out, ab_error());
            return s;
        }
    }
    return AB_OK;
}

int ab_sample_token(const float *logits, int V, float temperature, int top_k, ab_rng *rng) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (temperature <= 0.0f) return best;
    /* threshold = the k-th largest logit (all when top_k <= 0 or >= V) */
    float threshold = -INFINITY;
    if (top_k > 0 && top_k < V) {
        float *sorted = malloc((size_t)V * sizeof *sorted);
        if (!sorted) return best;
        memcpy(sorted, logits, (size_t)V * sizeof *sorted);
        /* partial selection: k passes of max extraction are O(kV); fine for the k used in practice */
        for (int k = 0; k < top_k; k++) {
            int arg = k;
            for (int v = k + 1; v < V; v++)
                if (sorted[v] > sorted[arg]) arg = v;
            float t = sorted[k];
            sorted[k] = sorted[arg];
            sorted[arg] = t;
        }
        threshold = sorted[top_k - 1];
        free(sorted);
    }
    double z = 0.0;
    for (int v = 0; v < V; v++)
        if (logits[v] >= threshold) z += exp((double)(logits[v] - logits[best]) / temperature);
    double u = ab_rng_uniform(rng) * z, acc = 0.0;
    for (int v = 0; v < V; v++) {
        if (logits[v] < threshold) continue;
        acc += exp((double)(logits[v] - logits[best]) / temperature);
        if (acc >= u) return v;
    }
    return best;
}
