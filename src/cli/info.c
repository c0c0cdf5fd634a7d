/*
 * info.c — `attnbench info`: build features, CPU, GPUs (NVML), whether decode steps are recorded as CUDA graphs
 * (AB_CUDA_GRAPHS), whether the decode products use programmatic dependent launch (AB_CUDA_PDL) and are chained
 * (AB_CUDA_CHAIN), RAPL access;
 * what a run would measure.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "prof/energy.h"
#include "prof/flops.h"
#include "report/env.h"

static void print_value(const char *label, double v, const char *fmt) {
    printf("    %-18s ", label);
    if (isfinite(v)) printf(fmt, v);
    else printf("not reported");
    printf("\n");
}

/* One line per NVML device, with a live power and energy reading. */
static void print_gpus(ab_nvml *nvml) {
    unsigned n = 0;
    ab_nvml_device_count(nvml, &n);
    printf("GPUs (NVML): %u\n", n);
    for (unsigned i = 0; i < n; i++) {
        ab_gpu_info gi;
        if (ab_nvml_device_info(nvml, i, &gi) != AB_OK) {
            printf("  [%u] %s\n", i, ab_error());
            continue;
        }
        printf("  [%u] %s\n", i, gi.name);
        printf("    %-18s %s (CUDA %d.%d)\n", "driver", gi.driver_version, gi.cuda_driver_version / 1000,
               (gi.cuda_driver_version % 1000) / 10);
        print_value("power limit", gi.power_limit_w, "%.0f W");
        print_value("max SM clock", gi.sm_clock_max_mhz, "%.0f MHz");
        print_value("max memory clock", gi.mem_clock_max_mhz, "%.0f MHz");
        print_value("memory", gi.memory_total_bytes / (1024.0 * 1024.0 * 1024.0), "%.1f GiB");
        ab_gpu_sample s;
        if (ab_nvml_sample(nvml, i, &s) == AB_OK) {
            print_value("power (instant)", s.power_instant_w, "%.1f W");
            print_value("power (1 s avg)", s.power_avg_w, "%.1f W");
            print_value("SM clock", s.sm_clock_mhz, "%.0f MHz");
            print_value("temperature", s.temp_c, "%.0f C");
            print_value("utilisation", s.util_gpu_pct, "%.0f %%");
            if (s.throttle_valid) {
                char why[160];
                ab_nvml_throttle_text(s.throttle_reasons, why, sizeof why);
                printf("    %-18s %s\n", "clock limits", s.throttle_reasons ? why : "none");
            }
        }
        uint64_t mj;
        if (ab_nvml_energy_mj(nvml, i, &mj) == AB_OK) printf("    %-18s %.3f kJ since driver load\n", "energy counter", (double)mj * 1e-6);
        else printf("    %-18s unavailable: %s\n", "energy counter", ab_error());
        ab_peak peak;
        ab_peak_lookup(gi.name, &peak);
        if (peak.available) printf("    %-18s %.0f TFLOP/s (%s)\n", "peak for MFU", peak.tflops, peak.source);
        else printf("    %-18s none: %s\n", "peak for MFU", peak.reason);
    }
}

int cmd_info(int argc, char **argv) {
    int as_json = 0, gpu = 0;
    ab_opt opts[] = {
        {"json", OPT_FLAG, &as_json, NULL, "print the environment block of run.json instead", NULL, 0},
        {"gpu", OPT_INT, &gpu, "N", "GPU index for the energy meter (default 0)", NULL, 0},
        {NULL, 0, NULL, NULL, NULL, NULL, 0},
    };
    ab_cmd_spec spec = {"info", "", "build features, CPU, GPUs, NVML and RAPL access",
                        "NVML is loaded at run time (libnvidia-ml.so.1, or $AB_NVML_LIB); RAPL is read from\n"
                        "/sys/class/powercap (or $AB_POWERCAP_ROOT).",
                        opts};
    int first, help;
    ab_status st = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (st != AB_OK) return ab_cli_fail("info", st);
    if (help) return 0;
    ab_energy_meter m;
    ab_energy_opts eo = {.gpu_index = gpu};
    ab_energy_open(&m, &eo);
    json_t *env;
    ab_env_collect(&m, argc, argv, &env);
    if (as_json) {
        char *text = json_dumps(env, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
        printf("%s\n", text ? text : "{}");
        free(text);
    } else {
        json_t *b = json_object_get(env, "build"), *f = json_object_get(b, "features");
        printf("attnbench %s (%s), %s\n", AB_VERSION, AB_GIT_COMMIT, json_string_value(json_object_get(b, "compiler")));
        printf("build features:");
        const char *k;
        json_t *v;
        json_object_foreach(f, k, v) printf(" %s=%d", k, json_is_true(v));
        json_t *c = json_object_get(env, "cpu");
        printf("\nCPU: %s, %lld cores; GEMM: %s\n", json_string_value(json_object_get(c, "model")),
               (long long)json_integer_value(json_object_get(c, "cores")), json_string_value(json_object_get(c, "gemm")));
        if (m.nvml) print_gpus(m.nvml);
        else printf("GPUs: no GPU / %s\n", m.gpu_reason);
        if (!ab_backend_table[BACKEND_CUDA]) printf("CUDA graphs: no (built without the CUDA backend)\n");
        else if (ab_backend_switch_env("AB_CUDA_GRAPHS")) printf("CUDA graphs: on, decode steps are recorded and replayed (AB_CUDA_GRAPHS=0: off)\n");
        else printf("CUDA graphs: off (AB_CUDA_GRAPHS=0), decode steps run directly\n");
        if (ab_backend_table[BACKEND_CUDA]) {
            printf("Programmatic dependent launch: %s\n", ab_backend_switch_env("AB_CUDA_PDL")
                       ? "on for the decode products on compute capability 9.0+ (AB_CUDA_PDL=0: off)"
                       : "off (AB_CUDA_PDL=0)");
            printf("Chained decode products: %s\n", ab_backend_switch_env("AB_CUDA_CHAIN")
                       ? "on, a block's products after its attention and the next block's first are one launch at "
                         "batch 1 (AB_CUDA_CHAIN=0: off)"
                       : "off (AB_CUDA_CHAIN=0)");
        }
        if (m.cpu_ok) printf("RAPL: readable (%d package zone(s))\n", ab_rapl_zone_count(m.rapl));
        else printf("RAPL: %s\n", m.cpu_reason);
    }
    json_decref(env);
    ab_energy_close(&m);
    return 0;
}
