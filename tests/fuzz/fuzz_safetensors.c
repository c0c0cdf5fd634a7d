/*
 * fuzz_safetensors.c — libFuzzer harness for the safetensors reader (checkpoints, training states).
 *
 * The input is served as a file (memfd) to ab_st_read. A rejected file must leave a message that names the
 * path. An accepted one must hold what the reader promises (core/safetensors.h): every tensor's [begin, end)
 * lies inside the data section, end - begin is exactly numel x dtype size (computed here without overflow),
 * no two non-empty ranges overlap, ab_st_find returns each tensor by its name, ab_st_to_f32 converts each
 * into a buffer of numel floats (F32 and BF16 checked bit for bit, F16 by sign and finiteness, I32 refused),
 * and ab_st_metadata answers a few keys. Any failure is an abort().
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/safetensors.h"

typedef struct {
    size_t begin, end;
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* numel x dtype size of t, or 0 in *ok when it does not fit size_t. */
static size_t exact_bytes(const ab_st_tensor *t, int *ok) {
    size_t n = ab_st_dtype_size(t->dtype);
    *ok = 1;
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] < 0 || __builtin_mul_overflow(n, (size_t)t->shape[d], &n)) *ok = 0;
    return n;
}

static void check_conversion(const ab_st_file *f, const ab_st_tensor *t) {
    size_t n = ab_st_numel(t);
    float *dst = malloc((n ? n : 1) * sizeof *dst);
    if (!dst) abort();
    ab_status s = ab_st_to_f32(f, t, dst);
    const unsigned char *src = f->data + t->begin;
    if (t->dtype == ST_I32) {
        if (s != AB_ERR_FORMAT) abort();
    } else if (s != AB_OK) {
        abort();
    }
    for (size_t i = 0; s == AB_OK && i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &dst[i], 4);
        if (t->dtype == ST_F32) {
            uint32_t want;
            memcpy(&want, src + 4 * i, 4);
            if (bits != want) abort();
        } else if (t->dtype == ST_BF16) {
            if (bits != (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16) abort();
        } else {
            unsigned h = (unsigned)(src[2 * i] | src[2 * i + 1] << 8);
            if ((bits >> 31) != (h >> 15) || !isfinite(dst[i]) != ((h & 0x7c00) == 0x7c00)) abort();
            if (isfinite(dst[i]) && fabsf(dst[i]) > 65504.0f) abort();
        }
    }
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz_safetensors", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ab_st_file f;
    if (ab_st_read(path, &f) != AB_OK) {
        if (!strstr(ab_error(), path) || f.tensors || f.data || f.n_tensors) abort(); /* the message names the file */
        close(fd);
        return 0;
    }
    if (f.file_bytes != size || f.data_bytes > size - 8) abort();
    range *r = malloc((size_t)(f.n_tensors + 1) * sizeof *r);
    int nr = 0;
    if (!r) abort();
    for (int i = 0; i < f.n_tensors; i++) {
        const ab_st_tensor *t = &f.tensors[i];
        int fits;
        size_t bytes = exact_bytes(t, &fits);
        if (!t->name || (unsigned)t->dtype >= ST_DTYPE_COUNT || t->ndim < 0 || t->ndim > AB_ST_MAX_DIMS) abort();
        if (t->begin > t->end || t->end > f.data_bytes) abort();
        if (!fits || t->end - t->begin != bytes) abort();
        if (ab_st_find(&f, t->name) != t) abort(); /* keys of a JSON object are unique */
        check_conversion(&f, t);
        if (t->end > t->begin) r[nr++] = (range){t->begin, t->end};
    }
    qsort(r, (size_t)nr, sizeof *r, cmp_range);
    for (int i = 1; i < nr; i++)
        if (r[i].begin < r[i - 1].end) abort();
    free(r);
    static const char *const keys[] = {"attnbench", "attnbench_state", "format", ""};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        char *v = ab_st_metadata(&f, keys[k]);
        if (v && !f.metadata_json) abort();
        free(v);
    }
    ab_st_free(&f);
    close(fd);
    return 0;
}
