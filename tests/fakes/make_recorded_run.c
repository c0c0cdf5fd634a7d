/*
 * make_recorded_run.c — writes tests/data/recorded_run/: a small run directory for the report tests,
 * produced through the real results API (src/report/results.h) with the fake NVML (power timeline,
 * energy counter) standing in for a GPU. The numbers are synthetic but shaped like a GPT-2 124M run on
 * an H100 (B16 x T512, 2 epochs x 12 steps); the FLOPs are the real analytical ones. Rebuild with:
 *   make BUILD=build-prof && cc -shared -fPIC -o /tmp/fakenvml.so tests/fakes/fake_nvml.c &&
 *   cc -std=c11 -D_GNU_SOURCE -Isrc -Itests -o /tmp/mkrun tests/fakes/make_recorded_run.c \
 *      $(grep -v src/main.o build-prof/libattnbench.objs) -Wl,-Bstatic -ljansson -lpcre2-8 -Wl,-Bdynamic \
 *      -lopenblas -lz -lm -ldl -lpthread -fopenmp &&
 *   AB_NVML_LIB=/tmp/fakenvml.so /tmp/mkrun tests/data/recorded_run
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attn/variant.h"
#include "core/config.h"
#include "prof/flops.h"
#include "prof/sampler.h"
#include "prof/timer.h"
#include "report/env.h"
#include "report/results.h"

/* per variant: step time (ms), power (W), peak attention workspace (MiB), loss offset, decode b1 (ms) */
static const struct {
    const char *name;
    double step_ms, power_w, attn_mib, loss_off, decode_ms, cache_per_token;
} shape[] = {
    {"baseline", 74.0, 560, 4600, 0.00, 14.0, 36864},       {"sdpa", 56.6, 570, 1540, 0.00, 9.0, 36864},
    {"gqa", 21.0, 640, 110, 0.03, 0.9, 12288},              {"linear", 35.0, 600, 300, 0.35, 0.6, 1198080 / 512.0},
    {"sliding_window", 20.0, 630, 90, 0.06, 0.8, 36864},    {"lsh", 45.0, 520, 800, 0.25, 1.6, 37056},
    {"flash", 21.6, 655, 96, 0.00, 0.8, 36864},             {"mla", 24.0, 640, 120, 0.02, 0.85, 6144},
};

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(getenv("AB_NVML_LIB"), RTLD_NOW);
    void (*set_energy)(unsigned long long) = NULL, (*set_power)(unsigned) = NULL;
    if (lib) {
        *(void **)(&set_energy) = dlsym(lib, "fake_nvml_set_energy");
        *(void **)(&set_power) = dlsym(lib, "fake_nvml_set_power");
    }
    if (!set_energy || !set_power) {
        fprintf(stderr, "set AB_NVML_LIB to the fake NVML library\n");
        return 1;
    }
    const ab_preset *p = ab_preset_by_name("gpt2");
    const int B = 16, T = 512, steps_per_epoch = 12, epochs = 2;
    ab_energy_meter m;
    ab_energy_opts eo = {.gpu_index = 0, .powercap_root = "/nonexistent"};
    ab_energy_open(&m, &eo);
    ab_sampler *smp;
    if (ab_sampler_start(&smp, &m, 50) != AB_OK) return 1;
    json_t *env;
    char *fake_argv[] = {"attnbench", "run", "--preset", "gpt2", "--variants", "all", "--epochs", "2", "--steps-per-epoch", "12"};
    ab_env_collect(&m, 10, fake_argv, &env);
    json_t *cfg = json_pack("{s:s,s:{s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i,s:i,s:f},s:s}", "preset", "gpt2", "model", "n_layer", 12,
                            "n_head", 12, "n_embd", 768, "vocab_size", 50257, "train", "batch", B, "seq", T, "epochs", epochs,
                            "steps_per_epoch", steps_per_epoch, "lr", 6e-4, "note",
                            "synthetic recorded run for the report tests (tests/fakes/make_recorded_run.c)");
    ab_results_opts ro = {.grid_gco2_per_kwh = 400, .warmup_steps = 2, .sampler = smp};
    ab_peak_lookup(m.gpu.name, &ro.peak);
    set_power(70000);
    ab_sampler_set_label(smp, "", "idle");
    ab_energy_reading a, b;
    ab_energy_read(&m, &a);
    sleep_s(0.3);
    set_energy(1000 + 350000); /* 70 W x 5 s, reported over a nominal 5 s window */
    ab_energy_read(&m, &b);
    b.t_s = a.t_s + 5.0;
    ab_energy_window iw;
    ab_energy_window_of(&m, &a, &b, NULL, 0, 400, &iw);
    ro.idle.seconds = 5;
    ro.idle.gpu_w = iw.gpu_j / 5;
    ro.idle.cpu_w = NAN;
    snprintf(ro.idle.cpu_reason, sizeof ro.idle.cpu_reason, "%s", m.cpu_reason);
    ab_results *r;
    if (ab_results_open(&r, argv[1], env, cfg, &ro) != AB_OK) {
        fprintf(stderr, "%s\n", ab_error());
        return 1;
    }
    unsigned long long energy = 351000;
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++) {
        const ab_variant *v = ab_variant_by_name(shape[i].name);
        ab_attn_config acfg = {.C = 768, .H = 12, .D = 64, .max_T = 1024, .train_T = T, .hp = p->model.attn};
        ab_attn_resolve_hparams(&acfg);
        ab_attn_tensor tens[AB_ATTN_MAX_TENSORS];
        int nt = v->tensors(&acfg, tens);
        long long attn_params = 0;
        for (int k = 0; k < nt; k++) attn_params += (long long)tens[k].rows * tens[k].cols;
        attn_params *= 12;
        long long total = 124475904LL - 12LL * (768 * 2304 + 2304) + attn_params;
        ab_variant_begin vb = {.name = v->name, .title = v->title, .backend = "cuda", .params_total = total,
                               .params_attention = attn_params};
        ab_results_begin_variant(r, &vb);
        ab_sampler_set_label(smp, v->name, "train");
        long step = 0;
        for (int e = 1; e <= epochs; e++) {
            ab_energy_read(&m, &a);
            double t_epoch = 0;
            for (int k = 0; k < steps_per_epoch; k++) {
                step++;
                double ms = shape[i].step_ms * (step <= 2 ? 3.0 - step * 0.8 : 1.0 + 0.03 * sin(step * 1.7));
                t_epoch += ms * 1e-3;
                double loss = 10.9 * exp(-0.06 * step) + 3.2 + shape[i].loss_off + 0.05 * sin(step * 2.3);
                ab_step_record s = {.step = step, .epoch = e, .loss = loss, .lr = 6e-4, .grad_norm = 1.0 + 0.2 * cos(step),
                                    .step_time_ms = ms, .tokens = B * T, .loss_tokens = B * T * 6 / 10};
                ab_results_step(r, &s);
                set_power((unsigned)((shape[i].power_w + 25 * sin(step * 0.9)) * 1000));
                sleep_s(0.012);
            }
            energy += (unsigned long long)(shape[i].power_w * t_epoch * 1000);
            set_energy(energy);
            ab_energy_read(&m, &b);
            double real = b.t_s - a.t_s;
            ab_epoch_record er = {.epoch = e, .steps = steps_per_epoch, .train_time_s = t_epoch,
                                  .train_loss = 10.9 * exp(-0.06 * (e * 12 - 6)) + 3.2 + shape[i].loss_off,
                                  .val_loss = 10.9 * exp(-0.06 * (e * 12)) + 3.3 + shape[i].loss_off,
                                  .tokens = (long long)steps_per_epoch * B * T, .loss_tokens = (long long)steps_per_epoch * B * T * 6 / 10};
            ab_energy_window_of(&m, &a, &b, &ro.idle, (double)er.tokens, 400, &er.energy);
            /* the sampler saw the real (short) window; report power over it, energies over the nominal time */
            ab_power_window pw;
            ab_sampler_window(smp, a.t_s, b.t_s, &pw);
            er.energy.mean_power_w = pw.mean_power_w;
            er.energy.max_power_w = pw.max_power_w;
            er.energy.seconds = t_epoch;
            er.energy.gpu_above_idle_j = er.energy.gpu_j - ro.idle.gpu_w * t_epoch;
            er.energy.reliable = 0;
            snprintf(er.energy.reliable_reason, sizeof er.energy.reliable_reason,
                     "synthetic test data: %.3f s real window", real);
            ab_results_epoch(r, &er);
        }
        ab_sampler_set_label(smp, v->name, "inference");
        set_power(300000);
        sleep_s(0.05);
        ab_variant_end ve = {.ok = 1, .peak_rss_bytes = 2200u << 20, .peak_device_bytes = NAN, .checkpoint_bytes = total * 4 + 20000};
        snprintf(ve.peak_device_reason, sizeof ve.peak_device_reason, "(sampler)");
        ve.peak_device_bytes = NAN;
        size_t MiB = 1 << 20;
        mem_account_alloc(&ve.mem, MEM_PARAMS, (size_t)total * 2);
        mem_account_alloc(&ve.mem, MEM_MASTER, (size_t)total * 4);
        mem_account_alloc(&ve.mem, MEM_GRADS, (size_t)total * 2);
        mem_account_alloc(&ve.mem, MEM_OPTIMIZER, (size_t)total * 8);
        mem_account_alloc(&ve.mem, MEM_ACTIVATIONS, 2900 * MiB);
        mem_account_alloc(&ve.mem, MEM_ATTENTION, (size_t)(shape[i].attn_mib * (double)MiB));
        mem_account_alloc(&ve.mem, MEM_WORKSPACE, 256 * MiB);
        mem_account_alloc(&ve.mem, MEM_OTHER, 40 * MiB);
        ve.flops_available = ab_flops_per_step(&p->model, v, &acfg, B, T, 1, &ve.flops) == AB_OK;
        ab_inference_result_null(&ve.inference, "");
        ve.inference.available = 1;
        ve.inference.prompt_tokens = T;
        ve.inference.gen_tokens = 128;
        ve.inference.repeats = 5;
        ve.inference.batch[0] = 1;
        ve.inference.batch[1] = B;
        for (int k = 0; k < 2; k++) {
            double f = k ? 3.5 : 1.0;
            ve.inference.prefill_ms[k] = shape[i].step_ms / 3.0 * (k ? B : 1) / 4.0 + 1.0;
            ve.inference.decode_ms_p50[k] = shape[i].decode_ms * f;
            ve.inference.decode_ms_p90[k] = shape[i].decode_ms * f * 1.08;
            ve.inference.decode_ms_p99[k] = shape[i].decode_ms * f * 1.25;
        }
        ve.inference.cache_bytes_per_token_analytical = shape[i].cache_per_token;
        ve.inference.cache_bytes_measured = shape[i].cache_per_token * 1024;
        ab_results_end_variant(r, &ve);
    }
    ab_sampler_stop(smp);
    ab_results_close(r);
    ab_sampler_free(smp);
    ab_energy_close(&m);
    json_decref(env);
    json_decref(cfg);
    return 0;
}
