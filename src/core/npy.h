/*
 * npy.h — writing float32 arrays as NumPy .npy files (format 1.0), streamed and atomic.
 */
#ifndef AB_NPY_H
#define AB_NPY_H

#include <stddef.h>

#include "core/fsutil.h"

/* Opens PATH atomically and writes the header of a C-order float32 array of the given shape; the caller
 * then writes exactly prod(shape) floats with ab_npy_write and commits with ab_npy_close(ok = 1). */
ab_status ab_npy_open(ab_atomic_file *af, const char *path, const size_t *shape, int ndim);
ab_status ab_npy_write(ab_atomic_file *af, const float *data, size_t n);
ab_status ab_npy_close(ab_atomic_file *af, int ok);

#endif
