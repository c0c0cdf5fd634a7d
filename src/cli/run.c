/*
 * run.c — `attnbench run`: train GPT-2 with each requested attention variant and measure it.
 *
 * Sets up the backend, the energy meter (NVML, RAPL), the idle baseline, the power sampler and the
 * results directory, then trains the variants one after the other (model/train.c). A variant that fails
 * is recorded as failed and the others still run; `--resume DIR` skips the variants DIR already finished.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/config_opts.h"
#include "core/fsutil.h"
#include "data/sample.h"
#include "model/train.h"
#include "prof/flops.h"
#include "prof/timer.h"
#include "report/env.h"

typedef struct {
    const char *device, *variants, *data, *out, *resume, *init, *peak;
    int gpu, quiet, json_log, gen_tokens;
    float power_hz, idle_s, grid, state_interval_s, stop_after_s;
} run_opts;

static void default_out_dir(char *out, size_t n, const char *device, const char *preset) {
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
    snprintf(out, n, "results/%s_%s_%s", stamp, device, preset);
}

int cmd_run(int argc, char **argv) {
    ab_preset p;
    const char *preset_name;
    ab_status s = ab_config_preset_from_argv(argc, argv, "tiny", &p, &preset_name);
    if (s != AB_OK) return ab_cli_fail("run", s);
    run_opts o = {.device = "auto", .variants = "all", .gen_tokens = 128, .state_interval_s = 60.0f, .power_hz = 20.0f, .idle_s = 5.0f, .grid = 400.0f};
    ab_opt opts[AB_CONFIG_OPT_COUNT + 20];
    ab_config_opts_fill(opts, &p, &preset_name);
    const ab_opt own[] = {
        {"device", OPT_STRING, &o.device, "cpu|cuda", "backend (default: cuda when a GPU is present, else cpu)"},
        {"gpu", OPT_INT, &o.gpu, "N", "GPU index (default 0)"},
        {"variants", OPT_STRING, &o.variants, "LIST", "comma-separated variant names, or all (default all)"},
        {"data", OPT_STRING, &o.data, "PATH", "prepared corpus directory or shard (default: the built-in sample)"},
        {"out", OPT_STRING, &o.out, "DIR", "results directory (default results/<UTC time>_<device>_<preset>)"},
        {"resume", OPT_STRING, &o.resume, "DIR", "continue an interrupted run in DIR (same configuration)"},
        {"init", OPT_STRING, &o.init, "FILE", "start from these safetensors weights (e.g. published GPT-2)"},
        {"gen-tokens", OPT_INT, &o.gen_tokens, "N", "inference benchmark: decoded tokens (default 128; 0 skips it)"},
        {"state-interval-s", OPT_FLOAT, &o.state_interval_s, "S",
         "training state for --resume after an epoch once S seconds passed since the last (default 60; 0: every epoch; -1: never)"},
        {"stop-after", OPT_FLOAT, &o.stop_after_s, "S",
         "start no further variant once S seconds have passed (0: no limit); --resume DIR runs the rest"},
        {"power-hz", OPT_FLOAT, &o.power_hz, "HZ", "power sampling rate (default 20)"},
        {"idle-s", OPT_FLOAT, &o.idle_s, "S", "idle power baseline before the first variant (default 5; 0 skips)"},
        {"grid-gco2-per-kwh", OPT_FLOAT, &o.grid, "X", "grid carbon intensity for CO2e (default 400)"},
        {"peak-tflops", OPT_STRING, &o.peak, "X", "device peak for MFU: TFLOP/s, or measured (a timed GEMM); default: the table"},
        {"quiet", OPT_FLAG, &o.quiet, NULL, "no progress output"},
        {"json-log", OPT_FLAG, &o.json_log, NULL, "progress as JSON lines on stdout"},
        {NULL, 0, NULL, NULL, NULL},
    };
    memcpy(opts + AB_CONFIG_OPT_COUNT, own, sizeof own);
    ab_cmd_spec spec = {"run", "", "Train GPT-2 with attention variants and measure each (METRICS.md).",
                        "Every preset field can be overridden by its flag. Results: DIR/run.json, epochs.csv, steps.csv,\n"
                        "power.csv, inference.csv and DIR/checkpoints/<variant>.safetensors; `attnbench report DIR` draws them.",
                        opts};
    int first, help;
    s = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (s != AB_OK) return ab_cli_fail("run", s);
    if (help) return 0;
    if (first < argc) {
        fprintf(stderr, "attnbench run: unexpected argument '%s'\n", argv[first]);
        return 2;
    }
    ab_variant_id ids[VARIANT_COUNT * 4];
    int n_ids = 0;
    if ((s = ab_variant_parse_list(o.variants, ids, &n_ids)) != AB_OK || (s = ab_config_validate_train(&p.train)) != AB_OK)
        return ab_cli_fail("run", s);
    if (o.gen_tokens < 0 || !(o.power_hz > 0) || o.idle_s < 0 || o.stop_after_s < 0) {
        fprintf(stderr, "attnbench run: --gen-tokens, --idle-s and --stop-after must be >= 0 and --power-hz > 0\n");
        return 2;
    }
    if (p.train.seq > p.model.max_seq) {
        fprintf(stderr, "attnbench run: --seq %d is larger than the position table (%d); raise --max-seq or lower --seq\n",
                p.train.seq, p.model.max_seq);
        return 2;
    }

    ab_backend be;
    if ((s = ab_cli_open_backend(o.device, o.gpu, &be)) != AB_OK) return ab_cli_fail("run", s);
    be.deterministic = p.train.deterministic;
    char sample_dir[4096];
    const char *data = o.data;
    if (!data) {
        if ((s = ab_sample_corpus_dir(sample_dir, sizeof sample_dir)) != AB_OK) {
            ab_backend_close(&be);
            return ab_cli_fail("run", s);
        }
        data = sample_dir;
    }
    char out_dir[4096];
    if (o.resume) snprintf(out_dir, sizeof out_dir, "%s", o.resume);
    else if (o.out) snprintf(out_dir, sizeof out_dir, "%s", o.out);
    else default_out_dir(out_dir, sizeof out_dir, be.ops->name, preset_name);

    char existing[4200];
    snprintf(existing, sizeof existing, "%s/run.json", out_dir);
    if (!o.resume && ab_file_exists(existing)) {
        ab_backend_close(&be);
        fprintf(stderr, "attnbench run: %s already holds a run; continue it with --resume %s or choose another --out\n", out_dir,
                out_dir);
        return 2;
    }
    ab_energy_meter em;
    ab_energy_opts eo = {.gpu_index = be.ops->id == BACKEND_CUDA ? o.gpu : -1};
    ab_energy_open(&em, &eo);
    ab_idle_power idle;
    memset(&idle, 0, sizeof idle);
    idle.gpu_w = idle.cpu_w = NAN;
    snprintf(idle.gpu_reason, sizeof idle.gpu_reason, "idle baseline skipped (--idle-s 0)");
    snprintf(idle.cpu_reason, sizeof idle.cpu_reason, "idle baseline skipped (--idle-s 0)");
    if (o.idle_s > 0 && (em.gpu_ok || em.cpu_ok)) ab_energy_measure_idle(&em, o.idle_s, &idle);
    ab_sampler *sampler = NULL;
    if (ab_sampler_start(&sampler, &em, o.power_hz) != AB_OK) sampler = NULL;

    json_t *env = NULL, *config = ab_config_to_json(&p.model, &p.train, preset_name, be.ops->name, o.data ? o.data : "built-in sample");
    ab_results *results = NULL;
    ab_results_opts ro = {.grid_gco2_per_kwh = o.grid, .warmup_steps = p.train.warmup_steps, .idle = idle, .sampler = sampler,
                          .resume = o.resume != NULL};
    s = ab_env_collect(&em, argc, argv, &env);
    if (s == AB_OK) s = ab_config_resolve_peak(o.peak, &be, em.nvml ? em.gpu.name : NULL, &ro.peak);
    if (s == AB_OK) s = ab_results_open(&results, out_dir, env, config, &ro);
    json_decref(env);
    json_decref(config);
    int failed = 0, ran = 0, left = 0; /* left: variants not started because of --stop-after */
    const double started = ab_now_s();
    if (s == AB_OK) {
        ab_results_state done = {0};
        if (o.resume && ab_results_load(out_dir, &done) != AB_OK) ab_clear_error();
        ab_train_ctx ctx = {.model = p.model, .train = p.train, .data_path = data, .init_path = o.init, .out_dir = out_dir,
                            .be = &be, .results = results, .energy = &em, .sampler = sampler, .idle = &idle,
                            .grid_gco2_per_kwh = o.grid, .gen_tokens = o.gen_tokens, .state_interval_s = o.state_interval_s,
                            .resume = o.resume != NULL, .quiet = o.quiet, .json_log = o.json_log,
                            .tty = isatty(2)};
        if (!o.quiet) fprintf(stderr, "attnbench run: %s on %s, %d variant(s), results in %s\n", preset_name, be.ops->name, n_ids, out_dir);
        for (int i = 0; i < n_ids; i++) {
            const ab_variant *v = ab_variants[ids[i]];
            const ab_results_variant_state *st = o.resume ? ab_results_find(&done, v->name) : NULL;
            if (st && strcmp(st->status, "ok") == 0) {
                if (!o.quiet) fprintf(stderr, "%-15s finished in an earlier run: skipped\n", v->name);
                continue;
            }
            if (o.stop_after_s > 0 && ab_now_s() - started >= o.stop_after_s) {
                left++;
                continue;
            }
            ran++;
            if (ab_train_variant(&ctx, ids[i]) != AB_OK) {
                failed++;
                fprintf(stderr, "attnbench run: variant %s failed: %s\n", v->name, ab_error());
            }
        }
        ab_results_state_free(&done);
        s = ab_results_close(results);
    }
    ab_sampler_free(sampler);
    ab_energy_close(&em);
    ab_backend_close(&be);
    if (s != AB_OK) return ab_cli_fail("run", s);
    printf("%s\n", out_dir); /* the results directory, for scripts, even with --quiet */
    if (left) fprintf(stderr, "attnbench run: --stop-after %g s reached, %d variant(s) not started: continue with --resume %s\n",
                      o.stop_after_s, left, out_dir);
    if (failed) {
        fprintf(stderr, "attnbench run: %d of %d variant(s) failed (see %s/run.json)\n", failed, ran, out_dir);
        return 1;
    }
    return 0;
}
