/*
 * nvml_dl.c — NVML through dlopen. The few types and prototypes used are declared here exactly as
 * nvml.h declares them (CUDA 12/13 headers): getting a struct layout or a versioned symbol wrong makes
 * NVML return success and zeros, so the layouts are pinned with _Static_assert and the _v2 entry
 * points are the ones nvml.h maps the plain names to.
 */
#include "prof/nvml_dl.h"

#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- nvml.h, the subset used ---- */
typedef int nvmlReturn_t;                         /* enum nvmlReturn_enum: NVML_SUCCESS = 0 */
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef int nvmlClockType_t;                      /* enum: GRAPHICS 0, SM 1, MEM 2, VIDEO 3 */
typedef int nvmlTemperatureSensors_t;             /* enum: NVML_TEMPERATURE_GPU 0 */
typedef int nvmlValueType_t;                      /* enum: DOUBLE 0, UINT 1, ULONG 2, ULLONG 3, SLLONG 4, SINT 5, USHORT 6 */
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
/* v2: `used` excludes the driver's reserved memory, as nvidia-smi shows it (v1's used includes it). */
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
#define nvmlMemory_v2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))
typedef union {
    double dVal;
    int siVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
    unsigned short usVal;
} nvmlValue_t;
typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;       /* 0 = the GPU alone for power fields (1 would be the whole module) */
    long long timestamp;        /* us since 1970 */
    long long latencyUsec;
    nvmlValueType_t valueType;
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;
_Static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t layout must match nvml.h");
_Static_assert(offsetof(nvmlFieldValue_t, value) == 32, "nvmlFieldValue_t.value offset must match nvml.h");
_Static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t (v1) layout must match nvml.h");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t layout must match nvml.h");

#define NVML_SUCCESS 0
#define NVML_CLOCK_SM 1
#define NVML_CLOCK_MEM 2
#define NVML_TEMPERATURE_GPU 0
#define NVML_FI_DEV_POWER_INSTANT 186
#define NVML_VALUE_TYPE_DOUBLE 0
#define NVML_VALUE_TYPE_UNSIGNED_INT 1
#define NVML_VALUE_TYPE_UNSIGNED_LONG 2
#define NVML_VALUE_TYPE_UNSIGNED_LONG_LONG 3
#define NVML_VALUE_TYPE_SIGNED_LONG_LONG 4
#define NVML_VALUE_TYPE_SIGNED_INT 5
#define NVML_VALUE_TYPE_UNSIGNED_SHORT 6

#define AB_NVML_MAX_DEVICES 64

struct ab_nvml {
    void *lib;
    nvmlReturn_t (*Init)(void);
    nvmlReturn_t (*Shutdown)(void);
    const char *(*ErrorString)(nvmlReturn_t);
    nvmlReturn_t (*GetCount)(unsigned int *);
    nvmlReturn_t (*GetHandleByIndex)(unsigned int, nvmlDevice_t *);
    nvmlReturn_t (*GetName)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*SystemGetDriverVersion)(char *, unsigned int);
    nvmlReturn_t (*SystemGetCudaDriverVersion)(int *);
    nvmlReturn_t (*GetTotalEnergyConsumption)(nvmlDevice_t, unsigned long long *);
    nvmlReturn_t (*GetPowerUsage)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*GetEnforcedPowerLimit)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*GetFieldValues)(nvmlDevice_t, int, nvmlFieldValue_t *);
    nvmlReturn_t (*GetClockInfo)(nvmlDevice_t, nvmlClockType_t, unsigned int *);
    nvmlReturn_t (*GetMaxClockInfo)(nvmlDevice_t, nvmlClockType_t, unsigned int *);
    nvmlReturn_t (*GetUtilizationRates)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlReturn_t (*GetTemperature)(nvmlDevice_t, nvmlTemperatureSensors_t, unsigned int *);
    nvmlReturn_t (*GetClocksEventReasons)(nvmlDevice_t, unsigned long long *);
    nvmlReturn_t (*GetMemoryInfo)(nvmlDevice_t, nvmlMemory_t *);
    nvmlReturn_t (*GetMemoryInfo_v2)(nvmlDevice_t, nvmlMemory_v2_t *);
    unsigned count;
    nvmlDevice_t dev[AB_NVML_MAX_DEVICES];
};

/* dlsym into a function pointer without the object/function pointer cast warning. */
static void bind(void *lib, void *fp_addr, const char *name) {
    void *sym = dlsym(lib, name);
    memcpy(fp_addr, &sym, sizeof sym);
}

static const char *err_text(const ab_nvml *n, nvmlReturn_t rc) {
    const char *s = n->ErrorString ? n->ErrorString(rc) : NULL;
    return s ? s : "unknown NVML error";
}

ab_status ab_nvml_open(ab_nvml **out, const char *lib_path) {
    *out = NULL;
    const char *path = lib_path ? lib_path : getenv("AB_NVML_LIB");
    if (!path || !*path) path = "libnvidia-ml.so.1";
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        return ab_fail(AB_ERR_UNSUPPORTED, "NVML not found: %s", e ? e : path);
    }
    ab_nvml *n = calloc(1, sizeof *n);
    if (!n) {
        dlclose(lib);
        return ab_fail(AB_ERR_OOM, "NVML: out of memory");
    }
    n->lib = lib;
    bind(lib, &n->Init, "nvmlInit_v2");
    bind(lib, &n->Shutdown, "nvmlShutdown");
    bind(lib, &n->ErrorString, "nvmlErrorString");
    bind(lib, &n->GetCount, "nvmlDeviceGetCount_v2");
    bind(lib, &n->GetHandleByIndex, "nvmlDeviceGetHandleByIndex_v2");
    bind(lib, &n->GetName, "nvmlDeviceGetName");
    bind(lib, &n->SystemGetDriverVersion, "nvmlSystemGetDriverVersion");
    bind(lib, &n->SystemGetCudaDriverVersion, "nvmlSystemGetCudaDriverVersion_v2");
    bind(lib, &n->GetTotalEnergyConsumption, "nvmlDeviceGetTotalEnergyConsumption");
    bind(lib, &n->GetPowerUsage, "nvmlDeviceGetPowerUsage");
    bind(lib, &n->GetEnforcedPowerLimit, "nvmlDeviceGetEnforcedPowerLimit");
    bind(lib, &n->GetFieldValues, "nvmlDeviceGetFieldValues");
    bind(lib, &n->GetClockInfo, "nvmlDeviceGetClockInfo");
    bind(lib, &n->GetMaxClockInfo, "nvmlDeviceGetMaxClockInfo");
    bind(lib, &n->GetUtilizationRates, "nvmlDeviceGetUtilizationRates");
    bind(lib, &n->GetTemperature, "nvmlDeviceGetTemperature");
    /* Renamed in CUDA 12.2; the old name stays as an alias in newer drivers. */
    bind(lib, &n->GetClocksEventReasons, "nvmlDeviceGetCurrentClocksEventReasons");
    if (!n->GetClocksEventReasons) bind(lib, &n->GetClocksEventReasons, "nvmlDeviceGetCurrentClocksThrottleReasons");
    bind(lib, &n->GetMemoryInfo, "nvmlDeviceGetMemoryInfo");
    bind(lib, &n->GetMemoryInfo_v2, "nvmlDeviceGetMemoryInfo_v2");

    const char *missing = !n->Init ? "nvmlInit_v2" : !n->Shutdown ? "nvmlShutdown" : !n->GetCount ? "nvmlDeviceGetCount_v2"
                        : !n->GetHandleByIndex ? "nvmlDeviceGetHandleByIndex_v2" : NULL;
    if (missing) {
        dlclose(lib);
        free(n);
        return ab_fail(AB_ERR_UNSUPPORTED, "NVML library %s lacks %s", path, missing);
    }
    nvmlReturn_t rc = n->Init();
    if (rc != NVML_SUCCESS) {
        ab_status s = ab_fail(AB_ERR_UNSUPPORTED, "nvmlInit_v2 failed: %s (%d)", err_text(n, rc), rc);
        dlclose(lib);
        free(n);
        return s;
    }
    unsigned count = 0;
    rc = n->GetCount(&count);
    if (rc != NVML_SUCCESS) {
        ab_status s = ab_fail(AB_ERR_UNSUPPORTED, "nvmlDeviceGetCount_v2 failed: %s (%d)", err_text(n, rc), rc);
        ab_nvml_close(n);
        return s;
    }
    n->count = count < AB_NVML_MAX_DEVICES ? count : AB_NVML_MAX_DEVICES;
    for (unsigned i = 0; i < n->count; i++)
        if (n->GetHandleByIndex(i, &n->dev[i]) != NVML_SUCCESS) n->dev[i] = NULL;
    *out = n;
    return AB_OK;
}

void ab_nvml_close(ab_nvml *n) {
    if (!n) return;
    if (n->Shutdown) n->Shutdown();
    dlclose(n->lib);
    free(n);
}

ab_status ab_nvml_device_count(ab_nvml *n, unsigned *count) {
    *count = n->count;
    return AB_OK;
}

static ab_status device(ab_nvml *n, unsigned index, nvmlDevice_t *d) {
    if (index >= n->count) return ab_fail(AB_ERR_DEVICE, "GPU %u does not exist (NVML sees %u)", index, n->count);
    if (!n->dev[index]) return ab_fail(AB_ERR_DEVICE, "GPU %u: nvmlDeviceGetHandleByIndex_v2 failed", index);
    *d = n->dev[index];
    return AB_OK;
}

/* An unsigned NVML reading scaled into a double, NAN when the call is absent or fails. */
#define READ_UINT(call_ok, value, scale) ((call_ok) ? (double)(value) * (scale) : NAN)

ab_status ab_nvml_device_info(ab_nvml *n, unsigned index, ab_gpu_info *out) {
    nvmlDevice_t d = NULL;
    AB_TRY(device(n, index, &d));
    memset(out, 0, sizeof *out);
    if (!n->GetName || n->GetName(d, out->name, sizeof out->name) != NVML_SUCCESS)
        snprintf(out->name, sizeof out->name, "unknown NVIDIA GPU");
    if (!n->SystemGetDriverVersion ||
        n->SystemGetDriverVersion(out->driver_version, sizeof out->driver_version) != NVML_SUCCESS)
        snprintf(out->driver_version, sizeof out->driver_version, "unknown");
    if (!n->SystemGetCudaDriverVersion || n->SystemGetCudaDriverVersion(&out->cuda_driver_version) != NVML_SUCCESS)
        out->cuda_driver_version = 0;
    unsigned v = 0;
    out->power_limit_w = READ_UINT(n->GetEnforcedPowerLimit && n->GetEnforcedPowerLimit(d, &v) == NVML_SUCCESS, v, 1e-3);
    out->sm_clock_max_mhz = READ_UINT(n->GetMaxClockInfo && n->GetMaxClockInfo(d, NVML_CLOCK_SM, &v) == NVML_SUCCESS, v, 1.0);
    out->mem_clock_max_mhz = READ_UINT(n->GetMaxClockInfo && n->GetMaxClockInfo(d, NVML_CLOCK_MEM, &v) == NVML_SUCCESS, v, 1.0);
    nvmlMemory_t mem;
    out->memory_total_bytes = READ_UINT(n->GetMemoryInfo && n->GetMemoryInfo(d, &mem) == NVML_SUCCESS, mem.total, 1.0);
    return AB_OK;
}

ab_status ab_nvml_energy_mj(ab_nvml *n, unsigned index, uint64_t *mj) {
    nvmlDevice_t d = NULL;
    AB_TRY(device(n, index, &d));
    if (!n->GetTotalEnergyConsumption) return ab_fail(AB_ERR_UNSUPPORTED, "NVML lacks nvmlDeviceGetTotalEnergyConsumption");
    unsigned long long e = 0;
    nvmlReturn_t rc = n->GetTotalEnergyConsumption(d, &e);
    if (rc != NVML_SUCCESS)
        return ab_fail(AB_ERR_UNSUPPORTED, "nvmlDeviceGetTotalEnergyConsumption: %s (%d)", err_text(n, rc), rc);
    *mj = (uint64_t)e;
    return AB_OK;
}

/* A field value as a double according to its declared type. */
static double field_value(const nvmlFieldValue_t *f) {
    switch (f->valueType) {
    case NVML_VALUE_TYPE_DOUBLE: return f->value.dVal;
    case NVML_VALUE_TYPE_UNSIGNED_INT: return (double)f->value.uiVal;
    case NVML_VALUE_TYPE_UNSIGNED_LONG: return (double)f->value.ulVal;
    case NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: return (double)f->value.ullVal;
    case NVML_VALUE_TYPE_SIGNED_LONG_LONG: return (double)f->value.sllVal;
    case NVML_VALUE_TYPE_SIGNED_INT: return (double)f->value.siVal;
    case NVML_VALUE_TYPE_UNSIGNED_SHORT: return (double)f->value.usVal;
    default: return NAN;
    }
}

ab_status ab_nvml_power_w(ab_nvml *n, unsigned index, double *w) {
    nvmlDevice_t d = NULL;
    AB_TRY(device(n, index, &d));
    if (!n->GetFieldValues) return ab_fail(AB_ERR_UNSUPPORTED, "NVML lacks nvmlDeviceGetFieldValues");
    nvmlFieldValue_t f;
    memset(&f, 0, sizeof f);
    f.fieldId = NVML_FI_DEV_POWER_INSTANT;
    nvmlReturn_t rc = n->GetFieldValues(d, 1, &f);
    if (rc != NVML_SUCCESS) return ab_fail(AB_ERR_UNSUPPORTED, "nvmlDeviceGetFieldValues: %s (%d)", err_text(n, rc), rc);
    if (f.nvmlReturn != NVML_SUCCESS)
        return ab_fail(AB_ERR_UNSUPPORTED, "NVML_FI_DEV_POWER_INSTANT: %s (%d)", err_text(n, f.nvmlReturn), f.nvmlReturn);
    *w = field_value(&f) * 1e-3; /* mW */
    return AB_OK;
}

/* Device memory in use as nvidia-smi reports it: v2 (without reserved memory), else v1; NAN if neither. */
static double used_memory(ab_nvml *n, nvmlDevice_t d) {
    nvmlMemory_v2_t m2;
    memset(&m2, 0, sizeof m2);
    m2.version = nvmlMemory_v2;
    if (n->GetMemoryInfo_v2 && n->GetMemoryInfo_v2(d, &m2) == NVML_SUCCESS) return (double)m2.used;
    nvmlMemory_t m1;
    if (n->GetMemoryInfo && n->GetMemoryInfo(d, &m1) == NVML_SUCCESS) return (double)m1.used;
    return NAN;
}

ab_status ab_nvml_sample(ab_nvml *n, unsigned index, ab_gpu_sample *out) {
    nvmlDevice_t d = NULL;
    AB_TRY(device(n, index, &d));
    double w;
    out->power_instant_w = ab_nvml_power_w(n, index, &w) == AB_OK ? w : NAN;
    unsigned v = 0;
    out->power_avg_w = READ_UINT(n->GetPowerUsage && n->GetPowerUsage(d, &v) == NVML_SUCCESS, v, 1e-3);
    out->sm_clock_mhz = READ_UINT(n->GetClockInfo && n->GetClockInfo(d, NVML_CLOCK_SM, &v) == NVML_SUCCESS, v, 1.0);
    out->mem_clock_mhz = READ_UINT(n->GetClockInfo && n->GetClockInfo(d, NVML_CLOCK_MEM, &v) == NVML_SUCCESS, v, 1.0);
    out->temp_c = READ_UINT(n->GetTemperature && n->GetTemperature(d, NVML_TEMPERATURE_GPU, &v) == NVML_SUCCESS, v, 1.0);
    nvmlUtilization_t u;
    int uok = n->GetUtilizationRates && n->GetUtilizationRates(d, &u) == NVML_SUCCESS;
    out->util_gpu_pct = READ_UINT(uok, u.gpu, 1.0);
    out->util_mem_pct = READ_UINT(uok, u.memory, 1.0);
    out->mem_used_bytes = used_memory(n, d);
    unsigned long long reasons = 0;
    out->throttle_valid = n->GetClocksEventReasons && n->GetClocksEventReasons(d, &reasons) == NVML_SUCCESS;
    out->throttle_reasons = out->throttle_valid ? (uint64_t)reasons : 0;
    return AB_OK;
}

void ab_nvml_throttle_text(uint64_t mask, char *out, int out_size) {
    static const struct {
        uint64_t bit;
        const char *name;
    } bits[] = {
        {0x1, "GPU idle"},          {0x2, "applications clocks"}, {0x4, "SW power cap"},
        {0x8, "HW slowdown"},       {0x10, "sync boost"},         {0x20, "SW thermal"},
        {0x40, "HW thermal"},       {0x80, "HW power brake"},     {0x100, "display clock"},
    };
    int len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof bits / sizeof bits[0] && len < out_size; i++)
        if (mask & bits[i].bit) len += snprintf(out + len, (size_t)(out_size - len), "%s%s", len ? ", " : "", bits[i].name);
}
