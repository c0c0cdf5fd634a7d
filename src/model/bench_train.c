/*
 * bench_train.c — steady-state training steps on random tokens, timed after a device synchronisation per
 * step, with energy from the NVML counter across the timed steps (METRICS.md) and MFU from the analytical
 * FLOPs (prof/flops.c).
 */
#include "model/bench_train.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/rng.h"
#include "model/gpt2.h"
#include "prof/timer.h"

static void fail(ab_bench_train_result *r, const char *what) {
    r->ok = 0;
    snprintf(r->reason, sizeof r->reason, "%s: %s", what, ab_error());
}

void ab_bench_train(const ab_bench_train_args *a, ab_variant_id v, ab_bench_train_result *r) {
    memset(r, 0, sizeof *r);
    r->variant = v;
    r->energy_per_step_j = r->mean_power_w = r->achieved_tflops = r->mfu = r->final_loss = NAN;
    const ab_train_config *tc = &a->train;
    const int B = tc->batch, T = tc->seq, K = tc->grad_accum;
    const size_t BT = (size_t)B * T;
    ab_backend *be = a->be;
    mem_account_reset_peak(&be->mem);
    ab_gpt2 m;
    if (ab_gpt2_create(&m, &a->model, v, T, be) != AB_OK) return fail(r, "set-up");
    int32_t *tok = malloc(BT * sizeof *tok), *tgt = malloc(BT * sizeof *tgt);
    double *times = malloc((size_t)(a->timed_steps > 0 ? a->timed_steps : 1) * sizeof *times);
    ab_status s = tok && tgt && times ? AB_OK : ab_fail(AB_ERR_OOM, "out of memory");
    if (s == AB_OK) s = ab_gpt2_init_weights(&m, tc->seed);
    if (s == AB_OK) s = ab_gpt2_alloc(&m, B, T, 1);
    ab_rng rng;
    ab_rng_seed(&rng, tc->seed);
    for (size_t i = 0; i < BT && s == AB_OK; i++) tok[i] = (int32_t)ab_rng_below(&rng, (uint32_t)a->model.vocab_size);
    for (size_t i = 0; i < BT && s == AB_OK; i++) tgt[i] = i + 1 < BT ? tok[i + 1] : tok[0];
    ab_energy_reading e0 = {0}, e1 = {0};
    double t_begin = 0.0;
    for (int step = 0; step < a->warmup_steps + a->timed_steps && s == AB_OK; step++) {
        if (step == a->warmup_steps) {
            s = be->ops->synchronize(be);
            ab_energy_read(a->energy, &e0);
            t_begin = ab_now_s();
        }
        double t0 = ab_now_s(), loss_sum = 0.0;
        s = ab_gpt2_zero_grad(&m);
        for (int k = 0; k < K && s == AB_OK; k++) {
            s = ab_gpt2_forward(&m, tok, tgt, B, T, 1.0f / (float)(BT * K), k + 1 == K ? &loss_sum : NULL);
            if (s == AB_OK) s = ab_gpt2_backward(&m);
        }
        double norm = 0.0;
        if (s == AB_OK) s = ab_gpt2_grad_norm(&m, &norm);
        float scale = tc->grad_clip > 0 && norm > tc->grad_clip ? (float)(tc->grad_clip / norm) : 1.0f;
        if (s == AB_OK) s = ab_gpt2_adamw(&m, tc->lr, tc, scale);
        if (s == AB_OK) s = be->ops->synchronize(be);
        if (step >= a->warmup_steps) times[step - a->warmup_steps] = (ab_now_s() - t0) * 1e3;
        r->final_loss = loss_sum / (double)BT;
    }
    if (s != AB_OK) {
        fail(r, "training step");
    } else {
        ab_energy_read(a->energy, &e1);
        double seconds = ab_now_s() - t_begin;
        r->ok = 1;
        r->steps = a->timed_steps;
        ab_latency_stats st;
        ab_latency_stats_of(times, (size_t)a->timed_steps, &st);
        r->step_ms_median = st.median;
        r->step_ms_p10 = st.p10;
        r->step_ms_p90 = st.p90;
        r->tokens_per_s = (double)BT * K / (st.median / 1e3);
        r->peak_allocated_bytes = (double)be->mem.peak_total;
        ab_energy_window w;
        ab_energy_window_of(a->energy, &e0, &e1, NULL, (double)BT * K * a->timed_steps, 0.0, &w);
        r->energy_per_step_j = w.gpu_j / a->timed_steps;
        r->mean_power_w = w.gpu_j / seconds;
        snprintf(r->energy_reason, sizeof r->energy_reason, "%s", isnan(w.gpu_j) ? w.gpu_reason : w.reliable ? "" : w.reliable_reason);
        ab_flops_step f;
        ab_mfu mfu;
        if (ab_flops_per_step(&a->model, ab_variants[v], &m.attn_cfg, B, T, K, &f) == AB_OK) {
            ab_mfu_of(&f, st.median / 1e3, a->peak, &mfu);
            r->achieved_tflops = mfu.achieved_tflops;
            r->mfu = mfu.mfu;
            snprintf(r->mfu_reason, sizeof r->mfu_reason, "%s", mfu.reason);
        }
    }
    free(tok);
    free(tgt);
    free(times);
    ab_gpt2_destroy(&m);
}

static json_t *num(double x) { return isnan(x) ? json_null() : json_real(x); }

void ab_bench_train_print(FILE *out, const ab_bench_train_args *a, const ab_bench_train_result *r, int n) {
    fprintf(out, "training step, %s, L%d H%d C%d, B%d x T%d x accum %d, %d warm-up + %d timed steps, random tokens%s\n",
            a->be->ops->name, a->model.n_layer, a->model.n_head, a->model.n_embd, a->train.batch, a->train.seq,
            a->train.grad_accum, a->warmup_steps, a->timed_steps, a->be->deterministic ? ", deterministic" : "");
    fprintf(out, "%-16s %10s %10s %12s %12s %10s %9s %7s\n", "variant", "step ms", "p90 ms", "tokens/s", "peak alloc", "J/step",
            "TFLOP/s", "MFU");
    int short_windows = 0; /* energies over a window too short to trust (METRICS.md): marked with '*' */
    for (int i = 0; i < n; i++) {
        const ab_bench_train_result *x = &r[i];
        const char *name = ab_variants[x->variant]->name;
        if (!x->ok) {
            fprintf(out, "%-16s failed: %s\n", name, x->reason);
            continue;
        }
        char energy[32], mfu[32];
        const int unreliable = !isnan(x->energy_per_step_j) && x->energy_reason[0];
        short_windows += unreliable;
        snprintf(energy, sizeof energy, isnan(x->energy_per_step_j) ? "n/a" : unreliable ? "%.2f*" : "%.2f",
                 x->energy_per_step_j);
        snprintf(mfu, sizeof mfu, isnan(x->mfu) ? "n/a" : "%.1f%%", 100.0 * x->mfu);
        fprintf(out, "%-16s %10.2f %10.2f %12.0f %10.2f GB %10s %9.1f %7s\n", name, x->step_ms_median, x->step_ms_p90, x->tokens_per_s,
                x->peak_allocated_bytes / 1e9, energy, x->achieved_tflops, mfu);
    }
    if (short_windows)
        fprintf(out, "* energy over the timed steps of a window under %.0f s: unreliable (the counter updates every "
                     "20-100 ms); more --steps give a longer window\n", AB_ENERGY_MIN_RELIABLE_S);
}

ab_status ab_bench_train_write_json(const char *path, const ab_bench_train_args *a, const ab_bench_train_result *r, int n) {
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const ab_bench_train_result *x = &r[i];
        json_array_append_new(arr, json_pack("{s:s, s:b, s:s?, s:o, s:o, s:o, s:o, s:o, s:o, s:s?, s:o, s:o, s:o}",
                                             "variant", ab_variants[x->variant]->name, "ok", x->ok, "reason", x->ok ? NULL : x->reason,
                                             "step_ms_median", num(x->step_ms_median), "step_ms_p10", num(x->step_ms_p10),
                                             "step_ms_p90", num(x->step_ms_p90), "tokens_per_s", num(x->tokens_per_s),
                                             "peak_allocated_bytes", num(x->peak_allocated_bytes), "energy_per_step_j",
                                             num(x->energy_per_step_j), "energy_reason", *x->energy_reason ? x->energy_reason : NULL,
                                             "achieved_tflops", num(x->achieved_tflops), "mfu", num(x->mfu), "final_loss",
                                             num(x->final_loss)));
    }
    json_t *root = json_pack("{s:s, s:{s:i, s:i, s:i}, s:{s:i, s:i, s:i}, s:i, s:i, s:b, s:o}", "device", a->be->ops->name,
                             "model", "n_layer", a->model.n_layer, "n_head", a->model.n_head, "n_embd", a->model.n_embd, "shape",
                             "batch", a->train.batch, "seq", a->train.seq, "grad_accum", a->train.grad_accum, "warmup_steps",
                             a->warmup_steps, "timed_steps", a->timed_steps, "deterministic", a->be->deterministic, "results", arr);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    ab_status s = text ? ab_write_file_atomic(path, text, strlen(text)) : ab_fail(AB_ERR_OOM, "out of memory");
    free(text);
    return s;
}
