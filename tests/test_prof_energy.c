/*
 * test_prof_energy.c — NVML through a fake libnvidia-ml (built here with cc -shared), RAPL through fake
 * powercap trees (wrap-around, missing files, unreadable files), the window figures of METRICS.md
 * (null + reason, reliability, J/token, CO2e) and the sampler thread.
 *
 * Permission denied: tests run as root in CI, and chmod 000 does not stop root, so an unreadable
 * energy_uj is simulated by a directory in its place (read fails with EISDIR, as a denied read fails
 * with EACCES: both go through the same failing-read path).
 */
#include <dlfcn.h>
#include <math.h>
#include <time.h>

#include "fakes/fakes.h"
#include "prof/energy.h"
#include "prof/sampler.h"
#include "test_util.h"

static char tests_dir[4096], tmp[4096], lib[4200];

static void test_nvml_fake(void) {
    setenv("AB_NVML_LIB", lib, 1);
    ab_energy_meter m;
    ab_energy_opts o = {.gpu_index = 0, .powercap_root = "/nonexistent-powercap"};
    ab_energy_open(&m, &o);
    TEST_TRUE("nvml_open_fake", m.nvml && m.gpu_ok, "gpu_ok=%d reason=%s", m.gpu_ok, m.gpu_reason);
    if (!m.nvml) return;
    TEST_TRUE("nvml_name", !strcmp(m.gpu.name, "NVIDIA H100 80GB HBM3"), "name '%s'", m.gpu.name);
    TEST_TRUE("nvml_driver", !strcmp(m.gpu.driver_version, "580.00.01") && m.gpu.cuda_driver_version == 13000,
              "driver '%s' cuda %d", m.gpu.driver_version, m.gpu.cuda_driver_version);
    TEST_TRUE("nvml_power_limit", fabs(m.gpu.power_limit_w - 700.0) < 1e-9, "power limit %g", m.gpu.power_limit_w);
    ab_gpu_sample s;
    ab_status st = ab_nvml_sample(m.nvml, 0, &s);
    /* 123456 mW through nvmlDeviceGetFieldValues: a wrong struct layout or scope reads 0 or fails */
    TEST_TRUE("nvml_power_instant_field", st == AB_OK && fabs(s.power_instant_w - 123.456) < 1e-9, "got %g W", s.power_instant_w);
    TEST_TRUE("nvml_power_avg", fabs(s.power_avg_w - 120.0) < 1e-9, "got %g", s.power_avg_w);
    TEST_TRUE("nvml_clocks_util_temp",
              s.sm_clock_mhz == 1980 && s.mem_clock_mhz == 2619 && s.util_gpu_pct == 97 && s.util_mem_pct == 41 && s.temp_c == 55,
              "sm %g mem %g util %g/%g temp %g", s.sm_clock_mhz, s.mem_clock_mhz, s.util_gpu_pct, s.util_mem_pct, s.temp_c);
    TEST_TRUE("nvml_throttle", s.throttle_valid && s.throttle_reasons == 0x4, "valid %d mask %llx", s.throttle_valid,
              (unsigned long long)s.throttle_reasons);
    char text[128];
    ab_nvml_throttle_text(0x4 | 0x40, text, sizeof text);
    TEST_TRUE("nvml_throttle_text", !strcmp(text, "SW power cap, HW thermal"), "'%s'", text);
    TEST_TRUE("nvml_mem_used", s.mem_used_bytes == 1073741824.0, "%g", s.mem_used_bytes);
    TEST_TRUE("nvml_bad_index", ab_nvml_sample(m.nvml, 3, &s) == AB_ERR_DEVICE, "index 3 accepted");

    /* energy counter differences: the fake counter is set through the same loaded library */
    void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
    void (*set_energy)(unsigned long long) = NULL;
    if (h) *(void **)(&set_energy) = dlsym(h, "fake_nvml_set_energy");
    TEST_TRUE("fake_control", set_energy != NULL, "fake_nvml_set_energy not found");
    if (!set_energy) return;
    ab_energy_reading a, b;
    set_energy(10000);
    ab_energy_read(&m, &a);
    set_energy(10000 + 2500000); /* +2500 J */
    ab_energy_read(&m, &b);
    a.t_s = 100.0;
    b.t_s = 110.0; /* a 10 s window */
    ab_idle_power idle = {.seconds = 5, .gpu_w = 50.0, .cpu_w = NAN};
    snprintf(idle.cpu_reason, sizeof idle.cpu_reason, "RAPL absent");
    ab_energy_window w;
    ab_energy_window_of(&m, &a, &b, &idle, 1000.0, 400.0, &w);
    TEST_TRUE("energy_gpu_delta", fabs(w.gpu_j - 2500.0) < 1e-9, "gpu_j %g", w.gpu_j);
    TEST_TRUE("energy_above_idle", fabs(w.gpu_above_idle_j - 2000.0) < 1e-9, "above idle %g", w.gpu_above_idle_j);
    TEST_TRUE("energy_cpu_null_reason", isnan(w.cpu_j) && strstr(w.cpu_reason, "RAPL"), "cpu_j %g reason '%s'", w.cpu_j,
              w.cpu_reason);
    TEST_TRUE("energy_j_per_token", fabs(w.j_per_token - 2.5) < 1e-12, "%g", w.j_per_token);
    TEST_TRUE("energy_co2e", fabs(w.co2e_g - 2500.0 / 3.6e6 * 400.0) < 1e-12, "%g", w.co2e_g);
    TEST_TRUE("energy_reliable_10s", w.reliable, "reason %s", w.reliable_reason);
    b.t_s = 100.5;
    ab_energy_window_of(&m, &a, &b, NULL, 1000.0, 400.0, &w);
    TEST_TRUE("energy_unreliable_short", !w.reliable && strstr(w.reliable_reason, "shorter"), "reliable %d '%s'", w.reliable,
              w.reliable_reason);
    TEST_TRUE("energy_no_idle_null", isnan(w.gpu_above_idle_j) && w.gpu_reason[0], "above idle %g", w.gpu_above_idle_j);

    ab_energy_reading back = a;
    back.gpu_mj = a.gpu_mj - 1;
    back.t_s = a.t_s + 5;
    ab_energy_window_of(&m, &a, &back, NULL, 10, 400, &w);
    TEST_TRUE("energy_counter_backwards_null", isnan(w.gpu_j) && strstr(w.gpu_reason, "backwards"), "gpu_j %g '%s'", w.gpu_j,
              w.gpu_reason);

    /* sums of windows: energies add, a null part makes the sum null */
    ab_energy_window w1, w2;
    b.t_s = 110.0;
    ab_energy_window_of(&m, &a, &b, &idle, 1000.0, 400.0, &w1);
    w2 = w1;
    w1.mean_power_w = 100;
    w1.max_power_w = 150;
    w2.mean_power_w = 200;
    w2.max_power_w = 300;
    ab_energy_window_add(&w1, &w2);
    TEST_TRUE("energy_add", fabs(w1.gpu_j - 5000) < 1e-9 && fabs(w1.seconds - 20) < 1e-9 && fabs(w1.mean_power_w - 150) < 1e-9 &&
                  w1.max_power_w == 300 && fabs(w1.j_per_token - 2.5) < 1e-12,
              "gpu %g s %g mean %g max %g jpt %g", w1.gpu_j, w1.seconds, w1.mean_power_w, w1.max_power_w, w1.j_per_token);

    /* the sampler reads the fake at 200 Hz */
    ab_sampler *smp;
    st = ab_sampler_start(&smp, &m, 200.0);
    TEST_TRUE("sampler_start", st == AB_OK, "%s", ab_error());
    if (st == AB_OK) {
        ab_sampler_set_label(smp, "flash", "train");
        double t0 = 0;
        struct timespec ts = {0, 150 * 1000 * 1000};
        nanosleep(&ts, NULL);
        ab_sampler_stop(smp);
        size_t n = ab_sampler_count(smp);
        TEST_TRUE("sampler_count", n >= 10 && n <= 60, "%zu samples in 0.15 s at 200 Hz", n);
        ab_power_window pw;
        ab_sampler_window(smp, t0, 1e12, &pw);
        TEST_TRUE("sampler_window", pw.n == n && fabs(pw.mean_power_w - 123.456) < 1e-9 && fabs(pw.max_power_w - 123.456) < 1e-9 &&
                      pw.max_mem_used_bytes == 1073741824.0 && pw.throttle_any == 0x4,
                  "n %zu mean %g max %g", pw.n, pw.mean_power_w, pw.max_power_w);
        ab_power_sample one;
        const char *var, *ph;
        ab_sampler_copy(smp, 0, &one, 1);
        ab_sampler_label(smp, one.label, &var, &ph);
        TEST_TRUE("sampler_label", !strcmp(var, "flash") && !strcmp(ph, "train"), "'%s' '%s'", var, ph);
        ab_sampler_free(smp);
    }
    ab_energy_close(&m);
    if (h) dlclose(h);
}

static void test_nvml_failures(void) {
    ab_energy_meter m;
    ab_energy_opts o = {.gpu_index = 0, .nvml_lib = "/nonexistent/libnvidia-ml.so.1", .powercap_root = "/nonexistent"};
    ab_energy_open(&m, &o);
    TEST_TRUE("nvml_missing_reason", !m.gpu_ok && !m.nvml && strstr(m.gpu_reason, "NVML not found"), "'%s'", m.gpu_reason);
    ab_energy_reading a, b;
    ab_energy_read(&m, &a);
    ab_energy_read(&m, &b);
    ab_energy_window w;
    ab_energy_window_of(&m, &a, &b, NULL, 10, 400, &w);
    TEST_TRUE("no_source_all_null", isnan(w.gpu_j) && isnan(w.cpu_j) && isnan(w.total_j) && isnan(w.j_per_token) &&
                                        isnan(w.co2e_g) && !w.reliable && strstr(w.gpu_reason, "NVML not found"),
              "gpu %g total %g reason '%s'", w.gpu_j, w.total_j, w.gpu_reason);
    ab_sampler *s;
    TEST_TRUE("sampler_needs_source", ab_sampler_start(&s, &m, 20) == AB_ERR_UNSUPPORTED, "started without a source");
    ab_energy_close(&m);

    setenv("FAKE_NVML_INIT_FAIL", "1", 1);
    o.nvml_lib = lib;
    ab_energy_open(&m, &o);
    TEST_TRUE("nvml_init_failure_reason", !m.gpu_ok && strstr(m.gpu_reason, "nvmlInit_v2") && strstr(m.gpu_reason, "Driver Not Loaded"),
              "'%s'", m.gpu_reason);
    ab_energy_close(&m);
    unsetenv("FAKE_NVML_INIT_FAIL");

    setenv("FAKE_NVML_NO_ENERGY", "1", 1);
    ab_energy_open(&m, &o);
    TEST_TRUE("nvml_no_energy_counter", m.nvml && !m.gpu_ok && strstr(m.gpu_reason, "Not Supported"), "'%s'", m.gpu_reason);
    ab_energy_close(&m);
    unsetenv("FAKE_NVML_NO_ENERGY");

    o.gpu_index = -1;
    ab_energy_open(&m, &o);
    TEST_TRUE("cpu_run_no_gpu", !m.nvml && strstr(m.gpu_reason, "CPU backend"), "'%s'", m.gpu_reason);
    ab_energy_close(&m);
}

/* A package zone dir/intel-rapl:N with energy and range files (NULL: file absent). */
static void zone(const char *root, const char *name, const char *energy, const char *range) {
    char rel[256];
    fake_mkdir(root, name);
    if (energy) {
        snprintf(rel, sizeof rel, "%s/energy_uj", name);
        fake_write(root, rel, energy);
    }
    if (range) {
        snprintf(rel, sizeof rel, "%s/max_energy_range_uj", name);
        fake_write(root, rel, range);
    }
}

static void test_rapl(void) {
    char root[4200];
    snprintf(root, sizeof root, "%s/powercap", tmp);
    fake_mkdir(tmp, "powercap");
    zone(root, "intel-rapl:0", "9000\n", "10000\n");
    zone(root, "intel-rapl:0:0", "5\n", "10000\n"); /* a sub-zone: must not be added */
    zone(root, "intel-rapl:1", "100\n", "1000000\n");
    ab_rapl *r;
    ab_status st = ab_rapl_open(&r, root);
    TEST_TRUE("rapl_open", st == AB_OK && ab_rapl_zone_count(r) == 2, "st %d zones %d: %s", st, ab_rapl_zone_count(r), ab_error());
    if (st != AB_OK) return;
    double uj;
    ab_rapl_read_uj(r, &uj);
    TEST_TRUE("rapl_zero_at_open", uj == 0, "%g", uj);
    fake_write(root, "intel-rapl:0/energy_uj", "9500\n");
    fake_write(root, "intel-rapl:1/energy_uj", "400\n");
    ab_rapl_read_uj(r, &uj);
    TEST_TRUE("rapl_sum_packages", uj == 500 + 300, "%g", uj);
    fake_write(root, "intel-rapl:0/energy_uj", "700\n"); /* wrapped: 9500 -> 10000 -> 0 -> 700 */
    ab_rapl_read_uj(r, &uj);
    TEST_TRUE("rapl_wraparound", uj == 800 + 500 + 700, "%g", uj);
    fake_write(root, "intel-rapl:1/energy_uj", "garbage\n");
    st = ab_rapl_read_uj(r, &uj);
    TEST_TRUE("rapl_bad_value_io", st == AB_ERR_IO && uj == 2000 && strstr(ab_error(), "not an unsigned integer"), "st %d uj %g '%s'", st,
              uj, ab_error());
    ab_rapl_close(r);

    /* the meter turns RAPL into cpu_j */
    fake_write(root, "intel-rapl:1/energy_uj", "400\n");
    ab_energy_meter m;
    ab_energy_opts o = {.gpu_index = -1, .powercap_root = root};
    ab_energy_open(&m, &o);
    ab_energy_reading a, b;
    ab_energy_read(&m, &a);
    fake_write(root, "intel-rapl:0/energy_uj", "2700\n"); /* +2 J */
    ab_energy_read(&m, &b);
    b.t_s = a.t_s + 2.0;
    ab_energy_window w;
    ab_energy_window_of(&m, &a, &b, NULL, 100, 400, &w);
    TEST_TRUE("rapl_window_cpu_j", m.cpu_ok && fabs(w.cpu_j - 0.002) < 1e-12 && fabs(w.total_j - 0.002) < 1e-12 && w.reliable,
              "cpu_ok %d cpu_j %g", m.cpu_ok, w.cpu_j);
    ab_energy_close(&m);

    /* missing files */
    char root2[4200];
    snprintf(root2, sizeof root2, "%s/powercap2", tmp);
    fake_mkdir(tmp, "powercap2");
    zone(root2, "intel-rapl:0", "10\n", NULL);
    st = ab_rapl_open(&r, root2);
    TEST_TRUE("rapl_missing_range_file", st == AB_ERR_UNSUPPORTED && strstr(ab_error(), "max_energy_range_uj"), "st %d '%s'", st,
              ab_error());
    char root3[4200];
    snprintf(root3, sizeof root3, "%s/powercap3", tmp);
    fake_mkdir(tmp, "powercap3");
    zone(root3, "intel-rapl:0", NULL, "100\n");
    st = ab_rapl_open(&r, root3);
    TEST_TRUE("rapl_missing_energy_file", st == AB_ERR_UNSUPPORTED && strstr(ab_error(), "energy_uj") && strstr(ab_error(), "No such file"),
              "st %d '%s'", st, ab_error());
    /* permission denied, simulated by a directory where the counter file should be (see the top) */
    char root4[4200];
    snprintf(root4, sizeof root4, "%s/powercap4", tmp);
    fake_mkdir(tmp, "powercap4");
    zone(root4, "intel-rapl:0", NULL, "100\n");
    fake_mkdir(root4, "intel-rapl:0/energy_uj");
    st = ab_rapl_open(&r, root4);
    TEST_TRUE("rapl_unreadable_counter", st == AB_ERR_UNSUPPORTED && strstr(ab_error(), "energy_uj"), "st %d '%s'", st, ab_error());
    st = ab_rapl_open(&r, "/nonexistent-powercap");
    TEST_TRUE("rapl_no_tree", st == AB_ERR_UNSUPPORTED && strstr(ab_error(), "No such file"), "'%s'", ab_error());
    char root5[4200];
    snprintf(root5, sizeof root5, "%s/powercap5", tmp);
    fake_mkdir(tmp, "powercap5");
    st = ab_rapl_open(&r, root5);
    TEST_TRUE("rapl_no_package_zone", st == AB_ERR_UNSUPPORTED && strstr(ab_error(), "no intel-rapl"), "'%s'", ab_error());
}

int main(void) {
    fake_src_dir(__FILE__, tests_dir, sizeof tests_dir);
    if (!fake_tmpdir(tmp, sizeof tmp, "energy")) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    int have_fake = fake_build_nvml(tests_dir, tmp, lib, sizeof lib);
    TEST_TRUE("build_fake_nvml", have_fake, "cc -shared of %s/fakes/fake_nvml.c failed", tests_dir);
    if (have_fake) {
        test_nvml_fake();
        test_nvml_failures();
    }
    test_rapl();
    fake_rmtree(tmp);
    return TEST_SUMMARY();
}
