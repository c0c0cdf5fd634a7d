/*
 * nvml_dl.h — the NVIDIA Management Library, loaded at run time with dlopen (never a link dependency).
 *
 * Where libnvidia-ml.so.1 is absent (no driver, a CPU machine) ab_nvml_open() fails with
 * AB_ERR_UNSUPPORTED and a reason the caller records next to a JSON null (METRICS.md). The library path
 * can be overridden with the environment variable AB_NVML_LIB (tests load a fake library that way).
 * All calls are thread-safe (NVML is), so the sampler thread and the main thread share one handle.
 *
 * Units: power in W, energy in mJ (NVML's counter since the driver was loaded), clocks in MHz,
 * memory in bytes, temperature in degrees C. A reading NVML does not support on this device is NAN.
 */
#ifndef AB_PROF_NVML_DL_H
#define AB_PROF_NVML_DL_H

#include <stdint.h>

#include "core/status.h"

typedef struct ab_nvml ab_nvml;

/* Static facts about one device. */
typedef struct {
    char name[96];              /* "NVIDIA H100 80GB HBM3" */
    char driver_version[80];    /* "580.65.06" (system-wide) */
    int cuda_driver_version;    /* 13000 = CUDA 13.0 (what the driver supports); 0 if unknown */
    double power_limit_w;       /* enforced power limit; NAN if unknown */
    double sm_clock_max_mhz;    /* NAN if unknown */
    double mem_clock_max_mhz;   /* NAN if unknown */
    double memory_total_bytes;  /* NAN if unknown */
} ab_gpu_info;

/* One reading of the device's state (the sampler's row). NAN where not supported. */
typedef struct {
    double power_instant_w;     /* nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT, scope GPU) */
    double power_avg_w;         /* nvmlDeviceGetPowerUsage: a ~1 s average on Hopper */
    double sm_clock_mhz;
    double mem_clock_mhz;
    double util_gpu_pct;        /* percent of the last sample period a kernel ran */
    double util_mem_pct;
    double temp_c;
    double mem_used_bytes;      /* device-wide used memory as nvidia-smi shows it (GetMemoryInfo_v2) */
    uint64_t throttle_reasons;  /* nvmlClocksEventReasons bit mask */
    int throttle_valid;         /* 0: throttle_reasons not available */
} ab_gpu_sample;

/* Loads the library (path: lib_path, else $AB_NVML_LIB, else "libnvidia-ml.so.1") and calls nvmlInit_v2.
 * AB_ERR_UNSUPPORTED with the dlopen/dlsym/init reason when unusable. */
ab_status ab_nvml_open(ab_nvml **out, const char *lib_path);
void ab_nvml_close(ab_nvml *n);   /* nvmlShutdown + dlclose; NULL-safe */

ab_status ab_nvml_device_count(ab_nvml *n, unsigned *count);
ab_status ab_nvml_device_info(ab_nvml *n, unsigned index, ab_gpu_info *out);
/* Total energy counter in mJ since driver load (nvmlDeviceGetTotalEnergyConsumption, Volta and newer). */
ab_status ab_nvml_energy_mj(ab_nvml *n, unsigned index, uint64_t *mj);
/* Instant power alone (cheap): W, or AB_ERR_UNSUPPORTED. */
ab_status ab_nvml_power_w(ab_nvml *n, unsigned index, double *w);
/* Fills every field it can; fails only when the device index is invalid. */
ab_status ab_nvml_sample(ab_nvml *n, unsigned index, ab_gpu_sample *out);

/* "HW slowdown, SW power cap" style text for a throttle mask (empty string for 0). */
void ab_nvml_throttle_text(uint64_t mask, char *out, int out_size);

#endif
