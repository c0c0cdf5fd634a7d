/*
 * energy.h — the energy meter: GPU energy from NVML's counter and CPU energy from RAPL, read at
 * boundaries (epoch start/end, phase start/end), and the derived window figures of METRICS.md.
 *
 * Usage (the training loop):
 *     ab_energy_meter m; ab_energy_open(&m, &opts);           // never fails for a missing source
 *     ab_energy_measure_idle(&m, idle_s, &idle);              // before the first variant, GPU idle
 *     backend synchronize; ab_energy_read(&m, &a);            // boundary
 *     ... epoch ...
 *     backend synchronize; ab_energy_read(&m, &b);
 *     ab_energy_window_of(&m, &a, &b, &idle, tokens, grid, &w);   // -> run.json epochs[].energy
 * A source that is not available gives NAN figures with the reason in the window, written as JSON null +
 * "<key>_reason" (never 0).
 */
#ifndef AB_PROF_ENERGY_H
#define AB_PROF_ENERGY_H

#include <stdint.h>

#include "core/status.h"
#include "prof/nvml_dl.h"
#include "prof/rapl.h"

#define AB_REASON_LEN 256
/* Windows shorter than this are flagged reliable = false (counter granularity 20-100 ms, METRICS.md). */
#define AB_ENERGY_MIN_RELIABLE_S 1.0
#define AB_DEFAULT_GRID_GCO2_PER_KWH 400.0

typedef struct {
    int gpu_index;              /* NVML device index (--gpu); -1: do not use the GPU (CPU backend runs) */
    const char *nvml_lib;       /* NULL: $AB_NVML_LIB or libnvidia-ml.so.1 */
    const char *powercap_root;  /* NULL: $AB_POWERCAP_ROOT or /sys/class/powercap */
} ab_energy_opts;

typedef struct {
    ab_nvml *nvml;              /* NULL when NVML is not usable */
    unsigned gpu_index;
    int gpu_ok;                 /* the energy counter of gpu_index reads */
    char gpu_reason[AB_REASON_LEN];
    ab_gpu_info gpu;            /* valid when nvml != NULL and the device exists */
    ab_rapl *rapl;
    int cpu_ok;
    char cpu_reason[AB_REASON_LEN];
} ab_energy_meter;

/* One boundary reading. */
typedef struct {
    double t_s;                 /* ab_now_s() */
    int gpu_ok;
    uint64_t gpu_mj;            /* NVML counter, mJ since driver load */
    int cpu_ok;
    double cpu_uj;              /* RAPL cumulative, uJ since open */
} ab_energy_reading;

/* The idle baseline: mean power over a window with nothing running. */
typedef struct {
    double seconds;
    double gpu_w;               /* NAN + gpu_reason when unavailable */
    double cpu_w;               /* NAN + cpu_reason */
    char gpu_reason[AB_REASON_LEN];
    char cpu_reason[AB_REASON_LEN];
} ab_idle_power;

/* Figures of one window (epoch, phase or whole variant). NAN = null, with the reason beside it. */
typedef struct {
    double t_start_s, t_end_s;  /* ab_now_s() at the two readings (for the sampler's power window) */
    double seconds;
    double gpu_j;               /* NVML counter difference */
    double gpu_above_idle_j;    /* gpu_j - idle.gpu_w * seconds */
    double cpu_j;               /* RAPL package energy */
    double total_j;             /* gpu_j + cpu_j over the sources available; NAN if none */
    double tokens;              /* tokens processed in the window (all positions) */
    double j_per_token;         /* total_j / tokens */
    double co2e_g;              /* total_j / 3.6e6 kWh * grid gCO2e/kWh */
    double grid_gco2_per_kwh;
    double mean_power_w;        /* from the sampler (ab_sampler_window); NAN when no samples */
    double max_power_w;
    int reliable;               /* 0 when seconds < AB_ENERGY_MIN_RELIABLE_S or no source */
    char gpu_reason[AB_REASON_LEN];
    char cpu_reason[AB_REASON_LEN];
    char power_reason[AB_REASON_LEN];
    char reliable_reason[AB_REASON_LEN];
} ab_energy_window;

/* Opens the sources that exist; AB_OK even when none does (reasons say why). */
ab_status ab_energy_open(ab_energy_meter *m, const ab_energy_opts *opts);
void ab_energy_close(ab_energy_meter *m);
/* Reads every available counter now (call after a device synchronisation). */
void ab_energy_read(ab_energy_meter *m, ab_energy_reading *r);
/* Sleeps `seconds` while reading the counters at both ends. */
ab_status ab_energy_measure_idle(ab_energy_meter *m, double seconds, ab_idle_power *out);
/* The window figures from two readings a (earlier) and b. idle may be NULL (gpu_above_idle_j null).
 * mean/max power stay NAN ("no power samples") until the caller fills them from the sampler. */
void ab_energy_window_of(const ab_energy_meter *m, const ab_energy_reading *a, const ab_energy_reading *b,
                         const ab_idle_power *idle, double tokens, double grid_gco2_per_kwh,
                         ab_energy_window *w);
/* Sum of consecutive windows (epochs -> the variant's total; acc starts as a copy of the first): energies
 * and seconds add, power max is the max, mean power is time-weighted; a figure null in any part is null in
 * the sum, and the sum is reliable only when every part is. */
void ab_energy_window_add(ab_energy_window *acc, const ab_energy_window *w);
/* A window whose every figure is null with `reason` (e.g. before anything was measured). */
void ab_energy_window_null(ab_energy_window *w, const char *reason);

#endif
