/*
 * sampler.h — a background thread that samples GPU power, clocks, utilisation, temperature, throttle
 * reasons and device memory (NVML) plus CPU package power (RAPL) at a fixed rate into a growing buffer:
 * the rows of power.csv and the per-epoch mean/max power.
 *
 * Samples are labelled with the (variant, phase) set last by ab_sampler_set_label(), so power.csv can be
 * cut by variant and phase ("idle", "train", "eval", "inference"). The training loop never waits on it:
 * the thread takes a mutex only to append. The energy figures themselves come from the counters
 * (energy.h), not from integrating these samples.
 */
#ifndef AB_PROF_SAMPLER_H
#define AB_PROF_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "prof/energy.h"

#define AB_DEFAULT_POWER_HZ 20.0

typedef struct {
    double t_s;                 /* ab_now_s() when taken */
    ab_gpu_sample gpu;          /* all NAN when NVML is unavailable */
    double cpu_power_w;         /* RAPL energy difference / time since the previous sample; NAN if none */
    uint32_t label;             /* index for ab_sampler_label() */
} ab_power_sample;

/* Mean/max over a time window [t0, t1] (ab_now_s() seconds). */
typedef struct {
    size_t n;                   /* samples in the window */
    double mean_power_w, max_power_w;       /* GPU instant power (falls back to the 1 s average) */
    double mean_cpu_power_w;
    double mean_sm_clock_mhz, max_temp_c;
    double max_mem_used_bytes;              /* device-wide peak: memory.peak_device_bytes */
    uint64_t throttle_any;                  /* OR of throttle reasons seen */
} ab_power_window;

typedef struct ab_sampler ab_sampler;

/* Starts the thread at `hz` (> 0, <= 1000) reading the sources m has open. AB_ERR_UNSUPPORTED when m has
 * neither GPU nor CPU source (reason in the message); m must outlive the sampler. */
ab_status ab_sampler_start(ab_sampler **out, ab_energy_meter *m, double hz);
/* Labels the samples taken from now on. Strings are copied. */
void ab_sampler_set_label(ab_sampler *s, const char *variant, const char *phase);
/* Stops and joins the thread; the samples stay readable until ab_sampler_free. */
void ab_sampler_stop(ab_sampler *s);
void ab_sampler_free(ab_sampler *s);   /* stops first if running; NULL-safe */

size_t ab_sampler_count(ab_sampler *s);
double ab_sampler_hz(const ab_sampler *s);
/* Copies up to max samples starting at index `from` into dst; returns how many (thread-safe). */
size_t ab_sampler_copy(ab_sampler *s, size_t from, ab_power_sample *dst, size_t max);
/* The (variant, phase) of a label index ("" for unlabelled). Valid until ab_sampler_free. */
void ab_sampler_label(ab_sampler *s, uint32_t label, const char **variant, const char **phase);
void ab_sampler_window(ab_sampler *s, double t0, double t1, ab_power_window *out);

#endif
