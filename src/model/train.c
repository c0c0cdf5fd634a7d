/*
 * train.c — one variant's training run: model set-up, epochs of AdamW steps over the loader, validation,
 * energy windows, checkpoint, inference benchmark, and the results records (run.json, CSVs).
 */
#include "model/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "data/loader.h"
#include "model/checkpoint.h"
#include "model/gpt2.h"
#include "model/infer.h"
#include "prof/flops.h"
#include "prof/memory.h"
#include "prof/timer.h"

float ab_lr_at(const ab_train_config *tc, long step, long total) {
    if (tc->constant_lr) return tc->lr;
    if (tc->lr_warmup > 0 && step <= tc->lr_warmup) return tc->lr * (float)step / (float)tc->lr_warmup;
    long decay_steps = total - tc->lr_warmup;
    double progress = decay_steps > 0 ? (double)(step - tc->lr_warmup) / (double)decay_steps : 1.0;
    if (progress > 1.0) progress = 1.0;
    double min_lr = tc->lr * tc->min_lr_frac;
    return (float)(min_lr + 0.5 * (1.0 + cos(M_PI * progress)) * (tc->lr - min_lr));
}

/* A float flag as the shortest decimal that reads back as the same float (0.001, not 0.0010000000474974513),
 * so run.json shows what a person typed and round-trips exactly. */
static double decimal(float x) {
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
        if ((float)strtod(buf, NULL) == x) break;
    }
    return strtod(buf, NULL);
}

/* train.deterministic is written only when set, so runs recorded before it existed still resume (--resume compares
 * the configurations) */
json_t *ab_config_to_json(const ab_model_config *m, const ab_train_config *t, const char *preset, const char *device,
                          const char *data_path) {
    json_t *c = json_pack("{s:s, s:s, s:s?, s:{s:i, s:i, s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i}, "
                          "s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:i, s:b, s:f, s:f, s:f, s:f, s:f, s:I}}",
                          "preset", preset, "device", device, "data", data_path,
                          "model", "n_layer", m->n_layer, "n_head", m->n_head, "n_embd", m->n_embd, "vocab_size", m->vocab_size,
                          "max_seq", m->max_seq,
                          "attn_overrides", "gqa_kv_heads", m->attn.gqa_kv_heads, "window", m->attn.window, "lsh_hashes",
                          m->attn.lsh_hashes, "lsh_chunk", m->attn.lsh_chunk, "lsh_buckets", m->attn.lsh_buckets, "linear_chunk",
                          m->attn.linear_chunk, "mla_kv_rank", m->attn.mla_kv_rank,
                          "train", "batch", t->batch, "seq", t->seq, "grad_accum", t->grad_accum, "epochs", t->epochs,
                          "steps_per_epoch", t->steps_per_epoch, "warmup_steps", t->warmup_steps, "eval_batches", t->eval_batches,
                          "lr", decimal(t->lr), "min_lr_frac", decimal(t->min_lr_frac), "lr_warmup", t->lr_warmup, "constant_lr",
                          t->constant_lr, "beta1", decimal(t->beta1), "beta2", decimal(t->beta2), "eps", decimal(t->eps),
                          "weight_decay", decimal(t->weight_decay), "grad_clip", decimal(t->grad_clip), "seed", (json_int_t)t->seed);
    if (c && t->deterministic) json_object_set_new(json_object_get(c, "train"), "deterministic", json_true());
    return c;
}

static json_t *hparams_json(const ab_attn_config *a) {
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "gqa_kv_heads", a->hp.gqa_kv_heads, "window", a->hp.window,
                     "lsh_hashes", a->hp.lsh_hashes, "lsh_chunk", a->hp.lsh_chunk, "lsh_buckets", a->hp.lsh_buckets,
                     "linear_chunk", a->hp.linear_chunk, "mla_kv_rank", a->hp.mla_kv_rank);
}

/* ------------------------------------------------------------------ progress output */

static void progress(const ab_train_ctx *c, const char *variant, int epoch, long step, long steps_per_epoch, double loss,
                     double tokens_per_s, double power_w, double eta_s, int final_line) {
    if (c->quiet) return;
    if (c->json_log) {
        if (!final_line && step % 10 != 0) return;
        printf("{\"variant\":\"%s\",\"epoch\":%d,\"step\":%ld,\"loss\":%.6f,\"tokens_per_s\":%.1f,\"power_w\":%s%.1f,\"eta_s\":%.1f}\n",
               variant, epoch, step, loss, tokens_per_s, isnan(power_w) ? "null" : "", isnan(power_w) ? 0.0 : power_w, eta_s);
        fflush(stdout);
        return;
    }
    char power[32] = "";
    if (!isnan(power_w)) snprintf(power, sizeof power, "  %.0f W", power_w);
    if (c->tty) {
        fprintf(stderr, "\r\033[K%-15s epoch %d  step %ld/%ld  loss %.4f  %.0f tok/s%s  ETA %.0fs%s", variant, epoch, step,
                steps_per_epoch, loss, tokens_per_s, power, eta_s, final_line ? "\n" : "");
    } else if (final_line) {
        fprintf(stderr, "%-15s epoch %d  steps %ld  loss %.4f  %.0f tok/s%s\n", variant, epoch, step, loss, tokens_per_s, power);
    }
}

/* ------------------------------------------------------------------ one variant */

typedef struct {
    ab_gpt2 model;
    ab_loader *train, *val;
    int32_t *inputs, *targets;   /* host (accum, B*T) */
    int *loss_tokens;            /* (accum) */
} run_state;

static void run_state_free(run_state *r) {
    ab_gpt2_destroy(&r->model);
    if (r->train) ab_loader_close(r->train);
    if (r->val) ab_loader_close(r->val);
    free(r->inputs);
    free(r->targets);
    free(r->loss_tokens);
}

static ab_status validation_loss(ab_train_ctx *c, run_state *r, double *loss_out, const char **reason) {
    const ab_train_config *tc = &c->train;
    size_t batches = r->val ? ab_loader_batches_per_epoch(r->val) : 0;
    if (batches == 0) {
        *loss_out = NAN;
        *reason = "no validation split";
        return AB_OK;
    }
    if (tc->eval_batches > 0 && (size_t)tc->eval_batches < batches) batches = (size_t)tc->eval_batches;
    ab_loader_start_epoch(r->val, 0); /* the same validation rows every epoch */
    double sum = 0.0;
    long long count = 0;
    for (size_t b = 0; b < batches; b++) {
        int n;
        AB_TRY(ab_loader_next(r->val, r->inputs, r->targets, &n));
        double s;
        AB_TRY(ab_gpt2_forward(&r->model, r->inputs, r->targets, tc->batch, tc->seq, 0.0f, &s));
        sum += s;
        count += n;
    }
    *loss_out = count ? sum / (double)count : NAN;
    *reason = count ? NULL : "validation split has no loss tokens";
    return AB_OK;
}

static ab_status setup(ab_train_ctx *c, run_state *r, ab_variant_id v) {
    const ab_train_config *tc = &c->train;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/checkpoints", c->out_dir);
    AB_TRY(ab_mkdir_p(dir));
    AB_TRY(ab_gpt2_create(&r->model, &c->model, v, tc->seq, c->be));
    if (c->init_path) AB_TRY(ab_checkpoint_load_into(&r->model, c->init_path));
    else AB_TRY(ab_gpt2_init_weights(&r->model, tc->seed));
    AB_TRY(ab_gpt2_alloc(&r->model, tc->batch, tc->seq, 1));
    AB_TRY(ab_loader_open(&r->train, c->data_path, SPLIT_TRAIN, tc->batch, tc->seq, c->model.vocab_size, tc->seed));
    if (ab_loader_batches_per_epoch(r->train) == 0)
        return ab_fail(AB_ERR_USAGE, "%s: the training split has no batch of %d x %d", c->data_path, tc->batch, tc->seq);
    AB_TRY(ab_loader_open(&r->val, c->data_path, SPLIT_VAL, tc->batch, tc->seq, c->model.vocab_size, tc->seed));
    size_t n = (size_t)tc->grad_accum * tc->batch * tc->seq;
    r->inputs = malloc(n * sizeof *r->inputs);
    r->targets = malloc(n * sizeof *r->targets);
    r->loss_tokens = malloc((size_t)tc->grad_accum * sizeof *r->loss_tokens);
    if (!r->inputs || !r->targets || !r->loss_tokens) return ab_fail(AB_ERR_OOM, "out of memory for batches");
    return AB_OK;
}

/* One optimizer step over grad_accum micro-batches; *loss gets the mean loss per counted token. */
static ab_status train_step(ab_train_ctx *c, run_state *r, long step, long total_steps, ab_step_record *rec) {
    const ab_train_config *tc = &c->train;
    const size_t BT = (size_t)tc->batch * tc->seq;
    long long loss_tokens = 0;
    for (int k = 0; k < tc->grad_accum; k++) {
        AB_TRY(ab_loader_next(r->train, r->inputs + k * BT, r->targets + k * BT, &r->loss_tokens[k]));
        loss_tokens += r->loss_tokens[k];
    }
    double t0 = ab_now_s(), loss_sum = 0.0;
    AB_TRY(ab_gpt2_zero_grad(&r->model));
    float dloss = loss_tokens > 0 ? 1.0f / (float)loss_tokens : 0.0f;
    for (int k = 0; k < tc->grad_accum && loss_tokens > 0; k++) {
        double s;
        AB_TRY(ab_gpt2_forward(&r->model, r->inputs + k * BT, r->targets + k * BT, tc->batch, tc->seq, dloss, &s));
        AB_TRY(ab_gpt2_backward(&r->model));
        loss_sum += s;
    }
    double norm = 0.0;
    AB_TRY(ab_gpt2_grad_norm(&r->model, &norm));
    float lr = ab_lr_at(tc, step, total_steps);
    float scale = tc->grad_clip > 0.0f && norm > tc->grad_clip ? (float)(tc->grad_clip / norm) : 1.0f;
    double loss = loss_tokens > 0 ? loss_sum / (double)loss_tokens : NAN;
    if (loss_tokens > 0 && (!isfinite(loss) || !isfinite(norm)))
        return ab_fail(AB_ERR_NUMERIC, "step %ld: loss %g, gradient norm %g: training diverged (lower --lr or enable --grad-clip)",
                       step, loss, norm);
    if (loss_tokens > 0) AB_TRY(ab_gpt2_adamw(&r->model, lr, tc, scale));
    AB_TRY(c->be->ops->synchronize(c->be));
    *rec = (ab_step_record){.step = step, .loss = loss, .lr = lr, .grad_norm = norm,
                            .step_time_ms = (ab_now_s() - t0) * 1e3,
                            .tokens = (long long)tc->grad_accum * (long long)BT, .loss_tokens = loss_tokens};
    return AB_OK;
}

static double window_power(ab_train_ctx *c, double t0, double t1) {
    if (!c->sampler) return NAN;
    ab_power_window pw;
    ab_sampler_window(c->sampler, t0, t1, &pw);
    return pw.n ? pw.mean_power_w : NAN;
}

static void state_path(const ab_train_ctx *c, const ab_variant *var, char *out, size_t n) {
    snprintf(out, n, "%s/checkpoints/%s.state.safetensors", c->out_dir, var->name);
}

static ab_status train_epochs(ab_train_ctx *c, run_state *r, const ab_variant *var, int start_epoch) {
    const ab_train_config *tc = &c->train;
    long per_epoch = tc->steps_per_epoch > 0 ? tc->steps_per_epoch
                                             : (long)(ab_loader_batches_per_epoch(r->train) / (size_t)tc->grad_accum);
    if (per_epoch < 1) per_epoch = 1;
    long total = per_epoch * tc->epochs, step = per_epoch * (start_epoch - 1);
    double run_t0 = ab_now_s();
    long first_step = step;
    double last_state = run_t0;
    for (int epoch = start_epoch; epoch <= tc->epochs; epoch++) {
        ab_loader_seek(r->train, epoch - 1, 0);
        if (c->sampler) ab_sampler_set_label(c->sampler, var->name, "train");
        AB_TRY(c->be->ops->synchronize(c->be));
        ab_energy_reading e0, e1;
        ab_energy_read(c->energy, &e0);
        double t0 = ab_now_s(), loss_sum = 0.0;
        long long tokens = 0, loss_tokens = 0;
        for (long s = 1; s <= per_epoch; s++) {
            ab_step_record rec;
            AB_TRY(train_step(c, r, ++step, total, &rec));
            rec.epoch = epoch;
            AB_TRY(ab_results_step(c->results, &rec));
            if (!isnan(rec.loss)) loss_sum += rec.loss;
            tokens += rec.tokens;
            loss_tokens += rec.loss_tokens;
            double elapsed = ab_now_s() - run_t0, eta = elapsed / (double)(step - first_step) * (double)(total - step);
            double now = ab_now_s();
            progress(c, var->name, epoch, s, per_epoch, rec.loss, (double)rec.tokens / (rec.step_time_ms / 1e3),
                     window_power(c, now - 1.0, now), eta, 0);
        }
        AB_TRY(c->be->ops->synchronize(c->be));
        double t1 = ab_now_s();
        ab_energy_read(c->energy, &e1);
        ab_epoch_record er = {.epoch = epoch, .steps = per_epoch, .train_time_s = t1 - t0,
                              .train_loss = loss_sum / (double)per_epoch, .tokens = tokens, .loss_tokens = loss_tokens};
        ab_energy_window_of(c->energy, &e0, &e1, c->idle, (double)tokens, c->grid_gco2_per_kwh, &er.energy);
        if (c->sampler) {
            ab_power_window pw;
            ab_sampler_window(c->sampler, t0, t1, &pw);
            er.energy.mean_power_w = pw.n ? pw.mean_power_w : NAN;
            er.energy.max_power_w = pw.n ? pw.max_power_w : NAN;
        }
        if (c->sampler) ab_sampler_set_label(c->sampler, var->name, "eval");
        AB_TRY(validation_loss(c, r, &er.val_loss, &er.val_reason));
        progress(c, var->name, epoch, per_epoch, per_epoch, er.train_loss, (double)tokens / er.train_time_s, er.energy.mean_power_w,
                 0.0, 1);
        if (!c->quiet && !c->json_log && !isnan(er.val_loss)) fprintf(stderr, "%-15s epoch %d  val loss %.4f\n", var->name, epoch, er.val_loss);
        AB_TRY(ab_results_epoch(c->results, &er));
        if (c->state_interval_s >= 0 && ab_now_s() - last_state >= c->state_interval_s && epoch < tc->epochs) {
            char path[4096];
            state_path(c, var, path, sizeof path);
            AB_TRY(ab_checkpoint_save_state(&r->model, path, epoch));
            last_state = ab_now_s();
        }
    }
    return AB_OK;
}

/* With --resume and a state file of this variant: load it and return the epoch to continue with. */
static ab_status resume_point(ab_train_ctx *c, run_state *r, const ab_variant *var, int *start_epoch) {
    char path[4096];
    state_path(c, var, path, sizeof path);
    *start_epoch = 1;
    if (!c->resume || !ab_file_exists(path)) return AB_OK;
    int done = 0;
    AB_TRY(ab_checkpoint_load_state(&r->model, path, &done));
    if (done < 1 || done >= c->train.epochs)
        return ab_fail(AB_ERR_FORMAT, "%s: state after epoch %d does not fit a run of %d epochs", path, done, c->train.epochs);
    *start_epoch = done + 1;
    if (!c->quiet) fprintf(stderr, "%-15s resuming after epoch %d\n", var->name, done);
    return AB_OK;
}

ab_status ab_train_variant(ab_train_ctx *c, ab_variant_id v) {
    const ab_variant *var = ab_variants[v];
    const ab_train_config *tc = &c->train;
    run_state r;
    memset(&r, 0, sizeof r);
    mem_account_reset_peak(&c->be->mem);
    ab_peak_rss_reset();
    ab_status s = setup(c, &r, v);
    int start_epoch = 1;
    if (s == AB_OK) s = resume_point(c, &r, var, &start_epoch);

    ab_variant_begin begin = {.name = var->name, .title = var->title, .backend = c->be->ops->name};
    ab_attn_config acfg;
    ab_model_attn_config(&c->model, tc->seq, &acfg);
    begin.hparams = hparams_json(&acfg);
    begin.resume_from_epoch = start_epoch;
    if (r.model.params) {
        begin.params_total = (long long)r.model.n_elements;
        begin.params_attention = (long long)r.model.n_attention;
    }
    ab_status rs = ab_results_begin_variant(c->results, &begin);
    json_decref(begin.hparams);
    if (rs != AB_OK) {
        run_state_free(&r);
        return rs;
    }
    if (s == AB_OK) s = train_epochs(c, &r, var, start_epoch);

    ab_variant_end end;
    memset(&end, 0, sizeof end);
    end.checkpoint_bytes = -1;
    end.peak_device_bytes = NAN;
    snprintf(end.peak_device_reason, sizeof end.peak_device_reason, "%s",
             c->be->ops->id == BACKEND_CPU ? "cpu backend: no device memory" : "not measured");
    ab_inference_result_null(&end.inference, "training did not finish");
    if (s == AB_OK) {
        char path[4096];
        snprintf(path, sizeof path, "%s/checkpoints/%s.safetensors", c->out_dir, var->name);
        s = ab_checkpoint_save(&r.model, path);
        char state[4096];
        state_path(c, var, state, sizeof state);
        if (s == AB_OK) unlink(state); /* the final checkpoint supersedes it */
        FILE *f = s == AB_OK ? fopen(path, "rb") : NULL;
        if (f) {
            fseek(f, 0, SEEK_END);
            end.checkpoint_bytes = ftell(f);
            fclose(f);
        }
    }
    end.mem = c->be->mem; /* training peaks, before the inference benchmark re-allocates */
    end.peak_rss_bytes = ab_peak_rss_bytes();
    end.flops_available = ab_flops_per_step(&c->model, var, &acfg, tc->batch, tc->seq, tc->grad_accum, &end.flops) == AB_OK;
    if (!end.flops_available) snprintf(end.flops_reason, sizeof end.flops_reason, "%s", ab_error());
    ab_energy_window infer_energy;
    if (s == AB_OK && c->gen_tokens > 0) {
        if (c->sampler) ab_sampler_set_label(c->sampler, var->name, "inference");
        ab_energy_reading e0, e1;
        ab_energy_read(c->energy, &e0);
        ab_status is = ab_bench_inference(&r.model, tc->batch, tc->seq, c->gen_tokens, &end.inference);
        ab_energy_read(c->energy, &e1);
        ab_energy_window_of(c->energy, &e0, &e1, c->idle, 0.0, c->grid_gco2_per_kwh, &infer_energy);
        end.inference_energy = &infer_energy;
        if (is != AB_OK) ab_inference_result_null(&end.inference, ab_error());
    } else if (s == AB_OK) {
        ab_inference_result_null(&end.inference, "inference benchmark skipped (--gen-tokens 0)");
    }
    end.ok = s == AB_OK;
    char reason[2048];
    if (s == AB_ERR_OOM)
        snprintf(reason, sizeof reason, "%s (variant %s at batch %d x %d tokens: try a smaller --batch with --grad-accum to keep the "
                 "tokens per step)", ab_error(), var->name, tc->batch, tc->seq);
    else snprintf(reason, sizeof reason, "%s", ab_error());
    end.failure_reason = end.ok ? NULL : reason;
    rs = ab_results_end_variant(c->results, &end);
    run_state_free(&r);
    if (c->sampler) ab_sampler_set_label(c->sampler, "", "idle");
    if (s != AB_OK) {
        ab_fail(s, "%s", reason);
        return s;
    }
    return rs;
}
