/*
 * test_prof_cli.c — `attnbench flops` (table, --json, bad shapes) and `attnbench info` (no NVML; the fake
 * NVML through $AB_NVML_LIB; a fake powercap tree through $AB_POWERCAP_ROOT).
 */
#include <jansson.h>

#include "fakes/fakes.h"
#include "test_util.h"

static char tests_dir[4096], tmp[4096];

static void test_flops(void) {
    char cmd[9000], out[8192], json_path[4200];
    snprintf(json_path, sizeof json_path, "%s/flops.json", tmp);
    snprintf(cmd, sizeof cmd, "'%s' flops --preset gpt2 --seq 512 --batch 16 --json '%s' 2>&1", test_bin(), json_path);
    int rc = test_run_cmd(cmd, out, sizeof out);
    TEST_TRUE("flops_table", rc == 0 && strstr(out, "baseline") && strstr(out, "mla") && strstr(out, "GFLOP"), "rc %d: %s", rc, out);
    json_error_t err;
    json_t *j = json_load_file(json_path, 0, &err);
    TEST_TRUE("flops_json", j && json_array_size(json_object_get(j, "variants")) == 8, "%s", j ? "wrong count" : err.text);
    /* GPT-2 124M, B16 T512, causal baseline: 6.30 TFLOP per step (6N + 6LCT per token, ANCHORS.md) */
    double base = j ? json_number_value(json_object_get(json_array_get(json_object_get(j, "variants"), 0), "model_per_step")) : 0;
    TEST_TRUE("flops_gpt2_anchor", base > 6.25e12 && base < 6.40e12, "baseline %g", base);
    json_decref(j);
    snprintf(cmd, sizeof cmd, "'%s' flops --preset tiny --seq 4096 2>&1", test_bin());
    rc = test_run_cmd(cmd, out, sizeof out);
    TEST_TRUE("flops_seq_too_long", rc == 2 && strstr(out, "--seq"), "rc %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' flops --variants nosuch 2>&1", test_bin());
    rc = test_run_cmd(cmd, out, sizeof out);
    TEST_TRUE("flops_bad_variant", rc == 2 && strstr(out, "nosuch"), "rc %d: %s", rc, out);
}

static void test_info(void) {
    char cmd[9000], out[8192], lib[4200];
    snprintf(cmd, sizeof cmd, "AB_NVML_LIB=/nonexistent/libnvidia-ml.so.1 AB_POWERCAP_ROOT=/nonexistent '%s' info 2>&1", test_bin());
    int rc = test_run_cmd(cmd, out, sizeof out);
    TEST_TRUE("info_no_gpu", rc == 0 && strstr(out, "no GPU") && strstr(out, "NVML not found") && strstr(out, "RAPL") &&
                                 strstr(out, "HAVE_JANSSON"),
              "rc %d: %s", rc, out);
    if (!fake_build_nvml(tests_dir, tmp, lib, sizeof lib)) {
        test_report(0, "info_fake_gpu", "could not build the fake NVML");
        return;
    }
    fake_mkdir(tmp, "intel-rapl:0");
    fake_write(tmp, "intel-rapl:0/energy_uj", "5\n");
    fake_write(tmp, "intel-rapl:0/max_energy_range_uj", "100\n");
    snprintf(cmd, sizeof cmd, "AB_NVML_LIB='%s' AB_POWERCAP_ROOT='%s' '%s' info 2>&1", lib, tmp, test_bin());
    rc = test_run_cmd(cmd, out, sizeof out);
    TEST_TRUE("info_fake_gpu", rc == 0 && strstr(out, "NVIDIA H100 80GB HBM3") && strstr(out, "123.5 W") && strstr(out, "989 TFLOP/s") &&
                                   strstr(out, "RAPL: readable"),
              "rc %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "AB_NVML_LIB='%s' '%s' info --json 2>&1", lib, test_bin());
    rc = test_run_cmd(cmd, out, sizeof out);
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    TEST_TRUE("info_json", rc == 0 && j && !strcmp(json_string_value(json_object_get(json_object_get(j, "gpu"), "name")), "NVIDIA H100 80GB HBM3"),
              "rc %d: %s", rc, j ? "wrong name" : err.text);
    json_decref(j);
}

int main(void) {
    fake_src_dir(__FILE__, tests_dir, sizeof tests_dir);
    if (!fake_tmpdir(tmp, sizeof tmp, "cli")) return 1;
    test_flops();
    test_info();
    fake_rmtree(tmp);
    return TEST_SUMMARY();
}
