/*
 * env.c — the environment block of run.json and `attnbench info`.
 */
#include "report/env.h"

#include "backend/cpu/cpu_gemm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "prof/timer.h"

void ab_cpu_model(char *out, int out_size) {
    snprintf(out, (size_t)out_size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon || strncmp(line, "model name", 10) != 0) continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = '\0';
        snprintf(out, (size_t)out_size, "%s", v);
        break;
    }
    fclose(f);
}

int ab_cpu_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* obj[key] = v, or null + reason when NAN (as in run.json). */
static void num_or_null(json_t *obj, const char *key, double v, const char *reason) {
    if (isfinite(v)) {
        json_object_set_new(obj, key, json_real(v));
        return;
    }
    char rkey[128];
    snprintf(rkey, sizeof rkey, "%s_reason", key);
    json_object_set_new(obj, key, json_null());
    json_object_set_new(obj, rkey, json_string(reason));
}

static json_t *build_json(void) {
    json_t *b = json_object();
    json_object_set_new(b, "compiler", json_string(__VERSION__));
    json_object_set_new(b, "optimized", json_boolean(
#ifdef __OPTIMIZE__
                                            1
#else
                                            0
#endif
                                            ));
    json_t *f = json_object();
    json_object_set_new(f, "HAVE_OPENMP", json_boolean(HAVE_OPENMP));
    json_object_set_new(f, "HAVE_OPENBLAS", json_boolean(HAVE_OPENBLAS));
    json_object_set_new(f, "HAVE_JANSSON", json_boolean(HAVE_JANSSON));
    json_object_set_new(f, "HAVE_PCRE2", json_boolean(HAVE_PCRE2));
    json_object_set_new(f, "HAVE_ZLIB", json_boolean(HAVE_ZLIB));
    json_object_set_new(f, "HAVE_CURL", json_boolean(HAVE_CURL));
    json_object_set_new(f, "HAVE_CUDA", json_boolean(HAVE_CUDA));
    json_object_set_new(f, "HAVE_CUBLASLT", json_boolean(HAVE_CUBLASLT));
    json_object_set_new(b, "features", f);
    return b;
}

static json_t *gpu_json(const ab_energy_meter *m) {
    json_t *g = json_object();
    if (!m) {
        json_object_set_new(g, "available", json_false());
        json_object_set_new(g, "reason", json_string("not probed"));
        return g;
    }
    if (!m->nvml) {
        json_object_set_new(g, "available", json_false());
        json_object_set_new(g, "reason", json_string(m->gpu_reason));
        return g;
    }
    const ab_gpu_info *i = &m->gpu;
    json_object_set_new(g, "available", json_true());
    json_object_set_new(g, "index", json_integer(m->gpu_index));
    json_object_set_new(g, "name", json_string(i->name));
    json_object_set_new(g, "driver_version", json_string(i->driver_version));
    if (i->cuda_driver_version > 0) {
        char v[32];
        snprintf(v, sizeof v, "%d.%d", i->cuda_driver_version / 1000, (i->cuda_driver_version % 1000) / 10);
        json_object_set_new(g, "cuda_driver_version", json_string(v));
    } else {
        json_object_set_new(g, "cuda_driver_version", json_null());
        json_object_set_new(g, "cuda_driver_version_reason", json_string("nvmlSystemGetCudaDriverVersion_v2 failed"));
    }
    const char *why = "not reported by NVML on this device";
    num_or_null(g, "power_limit_w", i->power_limit_w, why);
    num_or_null(g, "sm_clock_max_mhz", i->sm_clock_max_mhz, why);
    num_or_null(g, "mem_clock_max_mhz", i->mem_clock_max_mhz, why);
    num_or_null(g, "memory_total_bytes", i->memory_total_bytes, why);
    json_object_set_new(g, "energy_counter", json_boolean(m->gpu_ok));
    if (!m->gpu_ok) json_object_set_new(g, "energy_counter_reason", json_string(m->gpu_reason));
    return g;
}

json_t *ab_env_tool_json(void) {
    return json_pack("{s:s, s:s, s:s}", "name", "attnbench", "version", AB_VERSION, "git_commit", AB_GIT_COMMIT);
}

ab_status ab_env_collect(const ab_energy_meter *m, int argc, char **argv, json_t **out) {
    json_t *e = json_object();
    json_object_set_new(e, "tool", ab_env_tool_json());
    json_object_set_new(e, "build", build_json());
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    json_object_set_new(e, "hostname", json_string(host));
    char cpu[256];
    ab_cpu_model(cpu, sizeof cpu);
    json_t *c = json_object();
    json_object_set_new(c, "model", json_string(cpu));
    json_object_set_new(c, "cores", json_integer(ab_cpu_cores()));
    char blas[256];
    ab_cpu_gemm_describe(blas, sizeof blas);
    json_object_set_new(c, "gemm", json_string(blas));
    json_object_set_new(c, "rapl", json_boolean(m && m->cpu_ok));
    if (!(m && m->cpu_ok)) json_object_set_new(c, "rapl_reason", json_string(m ? m->cpu_reason : "not probed"));
    json_object_set_new(e, "cpu", c);
    json_object_set_new(e, "gpu", gpu_json(m));
    char ts[32];
    ab_utc_iso8601(ab_wall_s(), ts, sizeof ts);
    json_object_set_new(e, "time_utc", json_string(ts));
    json_t *cmd = json_array();
    for (int i = 0; argv && i < argc; i++) json_array_append_new(cmd, json_string(argv[i]));
    json_object_set_new(e, "command_line", cmd);
    *out = e;
    return AB_OK;
}
