/*
 * mem.c — category accounting and high-water marks for the backend allocators.
 */
#include "core/mem.h"

#include <string.h>

static const char *const category_names[MEM_CATEGORY_COUNT] = {
    [MEM_PARAMS] = "params",         [MEM_MASTER] = "master_weights",
    [MEM_GRADS] = "grads",           [MEM_OPTIMIZER] = "optimizer",
    [MEM_ACTIVATIONS] = "activations", [MEM_ATTENTION] = "attention",
    [MEM_WORKSPACE] = "workspace",   [MEM_OTHER] = "other",
};

const char *mem_category_name(mem_category c) {
    return (c >= 0 && c < MEM_CATEGORY_COUNT) ? category_names[c] : "unknown";
}

void mem_account_alloc(mem_accounting *m, mem_category c, size_t bytes) {
    m->current[c] += bytes;
    m->current_total += bytes;
    m->n_allocs++;
    if (m->current[c] > m->peak[c]) m->peak[c] = m->current[c];
    if (m->current_total > m->peak_total) {
        m->peak_total = m->current_total;
        memcpy(m->at_peak, m->current, sizeof m->at_peak);
    }
}

void mem_account_free(mem_accounting *m, mem_category c, size_t bytes) {
    m->current[c] -= bytes;
    m->current_total -= bytes;
}

void mem_account_reset_peak(mem_accounting *m) {
    memcpy(m->peak, m->current, sizeof m->peak);
    m->peak_total = m->current_total;
    memcpy(m->at_peak, m->current, sizeof m->at_peak);
}
