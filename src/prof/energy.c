/*
 * energy.c — boundary readings of the GPU (NVML) and CPU (RAPL) energy counters and the window figures
 * of METRICS.md: energy, energy above idle, J per token, CO2e, reliability.
 */
#include "prof/energy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "prof/timer.h"

#define J_PER_KWH 3.6e6

ab_status ab_energy_open(ab_energy_meter *m, const ab_energy_opts *opts) {
    memset(m, 0, sizeof *m);
    if (opts->gpu_index < 0) {
        snprintf(m->gpu_reason, sizeof m->gpu_reason, "no GPU used by this run (CPU backend)");
    } else if (ab_nvml_open(&m->nvml, opts->nvml_lib) != AB_OK) {
        snprintf(m->gpu_reason, sizeof m->gpu_reason, "%s", ab_error());
    } else {
        m->gpu_index = (unsigned)opts->gpu_index;
        uint64_t mj;
        if (ab_nvml_device_info(m->nvml, m->gpu_index, &m->gpu) != AB_OK) {
            snprintf(m->gpu_reason, sizeof m->gpu_reason, "%s", ab_error());
            ab_nvml_close(m->nvml);
            m->nvml = NULL;
        } else if (ab_nvml_energy_mj(m->nvml, m->gpu_index, &mj) != AB_OK) {
            snprintf(m->gpu_reason, sizeof m->gpu_reason, "%s (%s)", ab_error(), m->gpu.name);
        } else {
            m->gpu_ok = 1;
        }
    }
    if (ab_rapl_open(&m->rapl, opts->powercap_root) == AB_OK) m->cpu_ok = 1;
    else snprintf(m->cpu_reason, sizeof m->cpu_reason, "%s", ab_error());
    ab_clear_error();
    return AB_OK;
}

void ab_energy_close(ab_energy_meter *m) {
    ab_nvml_close(m->nvml);
    ab_rapl_close(m->rapl);
    m->nvml = NULL;
    m->rapl = NULL;
    m->gpu_ok = m->cpu_ok = 0;
}

void ab_energy_read(ab_energy_meter *m, ab_energy_reading *r) {
    memset(r, 0, sizeof *r);
    r->t_s = ab_now_s();
    if (m->gpu_ok) r->gpu_ok = ab_nvml_energy_mj(m->nvml, m->gpu_index, &r->gpu_mj) == AB_OK;
    if (m->cpu_ok) r->cpu_ok = ab_rapl_read_uj(m->rapl, &r->cpu_uj) == AB_OK;
}

ab_status ab_energy_measure_idle(ab_energy_meter *m, double seconds, ab_idle_power *out) {
    if (!(seconds > 0)) return ab_fail(AB_ERR_USAGE, "--idle-s must be > 0 (got %g)", seconds);
    ab_energy_reading a, b;
    ab_energy_read(m, &a);
    struct timespec ts = {(time_t)seconds, (long)((seconds - floor(seconds)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
    ab_energy_read(m, &b);
    ab_energy_window w;
    ab_energy_window_of(m, &a, &b, NULL, 0, AB_DEFAULT_GRID_GCO2_PER_KWH, &w);
    memset(out, 0, sizeof *out);
    out->seconds = w.seconds;
    out->gpu_w = w.gpu_j / w.seconds;
    out->cpu_w = w.cpu_j / w.seconds;
    snprintf(out->gpu_reason, sizeof out->gpu_reason, "%s", w.gpu_reason);
    snprintf(out->cpu_reason, sizeof out->cpu_reason, "%s", w.cpu_reason);
    return AB_OK;
}

/* Recomputes the figures that derive from the energies and tokens. */
static void derive(ab_energy_window *w) {
    int any = 0;
    double total = 0;
    if (!isnan(w->gpu_j)) total += w->gpu_j, any = 1;
    if (!isnan(w->cpu_j)) total += w->cpu_j, any = 1;
    w->total_j = any ? total : NAN;
    w->j_per_token = (any && w->tokens > 0) ? total / w->tokens : NAN;
    w->co2e_g = any ? total / J_PER_KWH * w->grid_gco2_per_kwh : NAN;
}

/* A single counter difference is reliable when a source exists and the window lasts long enough. */
static void judge_reliability(ab_energy_window *w) {
    w->reliable = !isnan(w->total_j) && w->seconds >= AB_ENERGY_MIN_RELIABLE_S;
    if (isnan(w->total_j)) snprintf(w->reliable_reason, sizeof w->reliable_reason, "no energy source");
    else if (!w->reliable)
        snprintf(w->reliable_reason, sizeof w->reliable_reason,
                 "window of %.3f s is shorter than %.1f s: the counters update every 20-100 ms", w->seconds,
                 AB_ENERGY_MIN_RELIABLE_S);
    else w->reliable_reason[0] = '\0';
}

void ab_energy_window_null(ab_energy_window *w, const char *reason) {
    memset(w, 0, sizeof *w);
    w->gpu_j = w->gpu_above_idle_j = w->cpu_j = w->total_j = w->j_per_token = w->co2e_g = NAN;
    w->mean_power_w = w->max_power_w = NAN;
    w->grid_gco2_per_kwh = AB_DEFAULT_GRID_GCO2_PER_KWH;
    snprintf(w->gpu_reason, sizeof w->gpu_reason, "%s", reason);
    snprintf(w->cpu_reason, sizeof w->cpu_reason, "%s", reason);
    snprintf(w->power_reason, sizeof w->power_reason, "%s", reason);
    snprintf(w->reliable_reason, sizeof w->reliable_reason, "%s", reason);
}

void ab_energy_window_of(const ab_energy_meter *m, const ab_energy_reading *a, const ab_energy_reading *b,
                         const ab_idle_power *idle, double tokens, double grid_gco2_per_kwh, ab_energy_window *w) {
    ab_energy_window_null(w, "");
    w->t_start_s = a->t_s;
    w->t_end_s = b->t_s;
    w->seconds = b->t_s - a->t_s;
    w->tokens = tokens;
    w->grid_gco2_per_kwh = grid_gco2_per_kwh > 0 ? grid_gco2_per_kwh : AB_DEFAULT_GRID_GCO2_PER_KWH;
    snprintf(w->power_reason, sizeof w->power_reason, "no power samples in the window");
    if (a->gpu_ok && b->gpu_ok && b->gpu_mj < a->gpu_mj) {
        snprintf(w->gpu_reason, sizeof w->gpu_reason, "NVML energy counter went backwards (driver reloaded?)");
    } else if (a->gpu_ok && b->gpu_ok) {
        w->gpu_j = (double)(b->gpu_mj - a->gpu_mj) * 1e-3;
        if (idle && !isnan(idle->gpu_w)) {
            w->gpu_above_idle_j = w->gpu_j - idle->gpu_w * w->seconds;
        } else {
            snprintf(w->gpu_reason, sizeof w->gpu_reason, "%s",
                     idle ? idle->gpu_reason : "no idle baseline measured (--idle-s 0)");
        }
    } else {
        snprintf(w->gpu_reason, sizeof w->gpu_reason, "%s", m->gpu_ok ? "GPU energy counter read failed" : m->gpu_reason);
    }
    if (a->cpu_ok && b->cpu_ok) w->cpu_j = (b->cpu_uj - a->cpu_uj) * 1e-6;
    else snprintf(w->cpu_reason, sizeof w->cpu_reason, "%s", m->cpu_ok ? "RAPL counter read failed" : m->cpu_reason);
    derive(w);
    judge_reliability(w);
}

/* a + b where NAN in either makes NAN. */
static double add_or_null(double a, double b) { return (isnan(a) || isnan(b)) ? NAN : a + b; }

void ab_energy_window_add(ab_energy_window *acc, const ab_energy_window *w) {
    double t0 = acc->seconds, t1 = w->seconds;
    acc->gpu_j = add_or_null(acc->gpu_j, w->gpu_j);
    acc->gpu_above_idle_j = add_or_null(acc->gpu_above_idle_j, w->gpu_above_idle_j);
    acc->cpu_j = add_or_null(acc->cpu_j, w->cpu_j);
    if (isnan(acc->gpu_j) && !acc->gpu_reason[0]) snprintf(acc->gpu_reason, sizeof acc->gpu_reason, "%s", w->gpu_reason);
    if (isnan(acc->gpu_above_idle_j) && !acc->gpu_reason[0])
        snprintf(acc->gpu_reason, sizeof acc->gpu_reason, "%s", w->gpu_reason);
    if (isnan(acc->cpu_j) && !acc->cpu_reason[0]) snprintf(acc->cpu_reason, sizeof acc->cpu_reason, "%s", w->cpu_reason);
    acc->mean_power_w = (t0 + t1 > 0) ? add_or_null(acc->mean_power_w * t0, w->mean_power_w * t1) / (t0 + t1) : NAN;
    acc->max_power_w = (isnan(acc->max_power_w) || isnan(w->max_power_w)) ? NAN : fmax(acc->max_power_w, w->max_power_w);
    if (isnan(acc->mean_power_w) && !acc->power_reason[0])
        snprintf(acc->power_reason, sizeof acc->power_reason, "%s", w->power_reason);
    acc->seconds = t0 + t1;
    acc->t_start_s = fmin(acc->t_start_s, w->t_start_s);
    acc->t_end_s = fmax(acc->t_end_s, w->t_end_s);
    acc->tokens += w->tokens;
    acc->grid_gco2_per_kwh = w->grid_gco2_per_kwh;
    derive(acc);
    /* a sum is as reliable as its least reliable part */
    if (acc->reliable && !w->reliable) snprintf(acc->reliable_reason, sizeof acc->reliable_reason, "%s", w->reliable_reason);
    acc->reliable = acc->reliable && w->reliable;
}
