/*
 * npy.c — .npy format 1.0: magic, version, little-endian u16 header length, a Python dict literal padded
 * with spaces and a newline so the data starts at a multiple of 64 bytes, then the raw data.
 */
#include "core/npy.h"

#include <stdio.h>
#include <string.h>

ab_status ab_npy_open(ab_atomic_file *af, const char *path, const size_t *shape, int ndim) {
    char dict[256], dims[160] = "";
    for (int i = 0; i < ndim; i++) {
        char d[32];
        snprintf(d, sizeof d, "%zu%s", shape[i], ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
        strncat(dims, d, sizeof dims - strlen(dims) - 1);
    }
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    size_t total = 10 + (size_t)n + 1, padded = (total + 63) / 64 * 64; /* magic(6)+version(2)+len(2)+dict+\n */
    size_t hlen = padded - 10;
    AB_TRY(ab_atomic_open(af, path));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, af->f) == 10 && fwrite(dict, 1, (size_t)n, af->f) == (size_t)n;
    for (size_t i = (size_t)n; i + 1 < hlen && ok; i++) ok = fputc(' ', af->f) != EOF;
    if (ok) ok = fputc('\n', af->f) != EOF;
    if (!ok) {
        ab_atomic_abort(af);
        return ab_fail(AB_ERR_IO, "%s: cannot write the .npy header", path);
    }
    return AB_OK;
}

ab_status ab_npy_write(ab_atomic_file *af, const float *data, size_t n) {
    if (fwrite(data, sizeof(float), n, af->f) != n) return ab_fail(AB_ERR_IO, "%s: short write", af->final_path);
    return AB_OK;
}

ab_status ab_npy_close(ab_atomic_file *af, int ok) {
    if (!ok) {
        ab_atomic_abort(af);
        return AB_OK;
    }
    return ab_atomic_commit(af);
}
