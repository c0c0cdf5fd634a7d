/*
 * infer.h — the inference benchmark of a trained model and token sampling for `generate`.
 */
#ifndef AB_INFER_H
#define AB_INFER_H

#include "core/rng.h"
#include "model/gpt2.h"
#include "report/results.h"

/* Prefill of T tokens at batch 1 and batch B (median of repeats) and decode latency per token
 * (p50/p90/p99 over gen_tokens tokens after a prompt of T/2 tokens), with the variant's cache;
 * analytical and measured cache sizes. Leaves the model without caches. */
ab_status ab_bench_inference(ab_gpt2 *m, int B, int T, int gen_tokens, ab_inference_result *out);

/* Sample one token id from logits (V) with temperature (<= 0: greedy) and top-k (<= 0: all). */
int ab_sample_token(const float *logits, int V, float temperature, int top_k, ab_rng *rng);

#endif
