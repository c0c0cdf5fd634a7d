/*
 * fake_nvml.c — a stand-in for libnvidia-ml.so.1 used by the energy tests (built with cc -shared into a
 * temporary directory and loaded through $AB_NVML_LIB).
 *
 * It declares the NVML types the way nvml.h does, independently of src/prof/nvml_dl.c, and refuses calls
 * whose arguments a real NVML would misread (a field request with a nonzero scope, an unknown field id),
 * so a layout mistake in the caller shows up as a failed test rather than as zeros. Controls:
 *   fake_nvml_set_energy(mJ)   the value nvmlDeviceGetTotalEnergyConsumption returns next
 *   fake_nvml_set_power(mW)    the instant power (default 123456 mW)
 *   $FAKE_NVML_INIT_FAIL=1     nvmlInit_v2 fails with NVML_ERROR_DRIVER_NOT_LOADED (9)
 *   $FAKE_NVML_NO_ENERGY=1     the energy counter is NVML_ERROR_NOT_SUPPORTED (3)
 * Device: one "NVIDIA H100 80GB HBM3", instant power 123.456 W, 1 s average 120 W, SM 1980 MHz.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
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
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

static struct nvmlDevice_st { int index; } the_device;
static unsigned long long energy_mj = 1000;
static unsigned int power_mw = 123456;
static int initialised;

void fake_nvml_set_energy(unsigned long long mj) { energy_mj = mj; }
void fake_nvml_set_power(unsigned int mw) { power_mw = mw; }

static int env_on(const char *name) {
    const char *v = getenv(name);
    return v && *v == '1';
}

nvmlReturn_t nvmlInit_v2(void) {
    if (env_on("FAKE_NVML_INIT_FAIL")) return 9;
    initialised = 1;
    return 0;
}
nvmlReturn_t nvmlShutdown(void) {
    initialised = 0;
    return 0;
}
const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case 0: return "Success";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 9: return "Driver Not Loaded";
    default: return "Unknown Error";
    }
}
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) {
    *n = 1;
    return initialised ? 0 : 1;
}
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) {
    if (i != 0) return 2;
    *d = &the_device;
    return 0;
}
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len) {
    if (d != &the_device) return 2;
    strncpy(name, "NVIDIA H100 80GB HBM3", len - 1);
    name[len - 1] = '\0';
    return 0;
}
nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int len) {
    strncpy(v, "580.00.01", len - 1);
    v[len - 1] = '\0';
    return 0;
}
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) {
    *v = 13000;
    return 0;
}
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *e) {
    if (d != &the_device) return 2;
    if (env_on("FAKE_NVML_NO_ENERGY")) return 3;
    *e = energy_mj;
    return 0;
}
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
    *mw = 120000;
    return d == &the_device ? 0 : 2;
}
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw) {
    *mw = 700000;
    return d == &the_device ? 0 : 2;
}
nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t d, int n, nvmlFieldValue_t *v) {
    if (d != &the_device || n < 1) return 2;
    for (int i = 0; i < n; i++) {
        v[i].timestamp = 1;
        v[i].latencyUsec = 0;
        if (v[i].fieldId != 186 || v[i].scopeId != 0) {
            v[i].nvmlReturn = 2;
            continue;
        }
        v[i].valueType = 1; /* NVML_VALUE_TYPE_UNSIGNED_INT */
        v[i].nvmlReturn = 0;
        v[i].value.ullVal = 0;
        v[i].value.uiVal = power_mw;
    }
    return 0;
}
nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int *mhz) {
    *mhz = type == 1 ? 1980 : type == 2 ? 2619 : 0;
    return (type == 1 || type == 2) ? 0 : 3;
}
nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t d, int type, unsigned int *mhz) {
    *mhz = type == 1 ? 1980 : 2619;
    return 0;
}
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
    u->gpu = 97;
    u->memory = 41;
    return 0;
}
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *t) {
    *t = 55;
    return sensor == 0 ? 0 : 2;
}
nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d, unsigned long long *r) {
    *r = 0x4; /* SW power cap */
    return 0;
}
/* v1 counts the driver's reserved memory as used; v2 does not (as nvidia-smi). */
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
    m->total = 85899345920ULL;
    m->used = 1073741824ULL + 536870912ULL;
    m->free = m->total - m->used;
    return 0;
}
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m) {
    if (m->version != (unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24))) return 25; /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
    m->total = 85899345920ULL;
    m->reserved = 536870912ULL;
    m->used = 1073741824ULL;
    m->free = m->total - m->used - m->reserved;
    return 0;
}
