/*
 * backend.c — the table of compiled-in backends, name parsing, open/close.
 *
 * The CUDA op table is referenced weakly: when the CUDA objects are not built the address is NULL and
 * `--device cuda` reports "not built with CUDA".
 */
#include "backend/backend.h"

#include <stdlib.h>
#include <string.h>

extern const ab_backend_ops ab_cpu_backend;
#if HAVE_CUDA
extern const ab_backend_ops ab_cuda_backend __attribute__((weak));
#define CUDA_BACKEND (&ab_cuda_backend)
#else
#define CUDA_BACKEND NULL
#endif

const ab_backend_ops *const ab_backend_table[BACKEND_COUNT] = {
    [BACKEND_CPU] = &ab_cpu_backend,
    [BACKEND_CUDA] = CUDA_BACKEND,
};

static const char *const backend_names[BACKEND_COUNT] = {[BACKEND_CPU] = "cpu", [BACKEND_CUDA] = "cuda"};

const char *ab_backend_name(ab_backend_id id) {
    return (id >= 0 && id < BACKEND_COUNT) ? backend_names[id] : "unknown";
}

ab_status ab_backend_parse(const char *name, ab_backend_id *out) {
    for (int i = 0; i < BACKEND_COUNT; i++)
        if (strcmp(name, backend_names[i]) == 0) {
            *out = (ab_backend_id)i;
            return AB_OK;
        }
    return ab_fail(AB_ERR_USAGE, "unknown device '%s' (expected cpu or cuda)", name);
}

ab_status ab_backend_open(ab_backend_id id, int device_index, ab_backend *be) {
    memset(be, 0, sizeof *be);
    if (id < 0 || id >= BACKEND_COUNT) return ab_fail(AB_ERR_USAGE, "unknown backend id %d", (int)id);
    if (!ab_backend_table[id])
        return ab_fail(AB_ERR_UNSUPPORTED, "this attnbench was built without the %s backend%s", backend_names[id],
                       id == BACKEND_CUDA ? " (nvcc was not found at build time; rebuild with CUDA=1)" : "");
    be->ops = ab_backend_table[id];
    be->device_index = device_index;
    ab_status s = be->ops->init ? be->ops->init(be) : AB_OK;
    if (s != AB_OK) be->ops = NULL;
    return s;
}

void ab_backend_close(ab_backend *be) {
    if (be->ops && be->ops->shutdown) be->ops->shutdown(be);
    be->ops = NULL;
}

int ab_backend_switch_env(const char *name) {
    const char *v = getenv(name);
    return !(v && strcmp(v, "0") == 0);
}
