/*
 * mem.h — memory accounting shared by every backend allocator.
 *
 * Every tensor the tool allocates (host fp32 on the CPU backend, device memory on CUDA) goes through a
 * backend's alloc(), which records the bytes here under a category. The high-water mark of the total and
 * the breakdown at that moment are what run.json reports as memory.peak_allocated_bytes (METRICS.md).
 * Not thread-safe: allocation happens on the main thread only.
 */
#ifndef AB_MEM_H
#define AB_MEM_H

#include <stddef.h>

typedef enum {
    MEM_PARAMS = 0,     /* model parameters (compute copy) */
    MEM_MASTER,         /* fp32 master weights, when the compute dtype is not fp32 */
    MEM_GRADS,          /* parameter gradients */
    MEM_OPTIMIZER,      /* AdamW m and v */
    MEM_ACTIVATIONS,    /* activations kept for backward and their gradients */
    MEM_ATTENTION,      /* what an attention variant keeps: T x T scores, softmax stats, caches */
    MEM_WORKSPACE,      /* scratch reused across layers */
    MEM_OTHER,          /* inputs, targets, losses, small buffers */
    MEM_CATEGORY_COUNT
} mem_category;

typedef struct {
    size_t current[MEM_CATEGORY_COUNT];
    size_t peak[MEM_CATEGORY_COUNT];               /* per-category high-water mark */
    size_t current_total;
    size_t peak_total;                             /* high-water mark of the total */
    size_t at_peak[MEM_CATEGORY_COUNT];            /* breakdown at the moment peak_total was reached */
    size_t n_allocs;
} mem_accounting;

/* A block of memory owned by a backend (host or device pointer). */
typedef struct {
    void *ptr;
    size_t bytes;
    mem_category category;
} ab_buffer;

const char *mem_category_name(mem_category c);   /* "params", "grads", ... as in run.json */
void mem_account_alloc(mem_accounting *m, mem_category c, size_t bytes);
void mem_account_free(mem_accounting *m, mem_category c, size_t bytes);
/* Forget the peaks (keep what is currently allocated): used between variants of one run. */
void mem_account_reset_peak(mem_accounting *m);

#endif
