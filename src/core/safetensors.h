/*
 * safetensors.h — reading and writing safetensors files (the checkpoint format).
 *
 * Layout: u64 little-endian header length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets":
 * [begin, end]}, ..., "__metadata__": {string: string}}, then the tensor bytes. Writing is atomic; reading
 * validates everything (header length against the file, JSON, dtypes, shapes against byte ranges, ranges
 * inside the data and not overlapping) and names the offset of what is wrong.
 */
#ifndef AB_SAFETENSORS_H
#define AB_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum { ST_F32 = 0, ST_BF16, ST_F16, ST_I32, ST_DTYPE_COUNT } ab_st_dtype;

#define AB_ST_MAX_DIMS 4

typedef struct {
    char *name;
    ab_st_dtype dtype;
    int ndim;
    int64_t shape[AB_ST_MAX_DIMS];
    size_t begin, end;      /* byte range inside the data section */
} ab_st_tensor;

typedef struct {
    ab_st_tensor *tensors;
    int n_tensors;
    char *metadata_json;    /* the __metadata__ object serialised as JSON, or NULL */
    unsigned char *data;    /* the data section */
    size_t data_bytes;
    size_t file_bytes;
} ab_st_file;

/* One tensor to write: f32 data of the given shape (stored as F32). */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[AB_ST_MAX_DIMS];
    const float *data;
} ab_st_write_tensor;

size_t ab_st_dtype_size(ab_st_dtype d);
const char *ab_st_dtype_name(ab_st_dtype d);

/* metadata: pairs of (key, value) strings, n_meta pairs. */
ab_status ab_st_write(const char *path, const ab_st_write_tensor *tensors, int n, const char *const *meta_kv, int n_meta);
ab_status ab_st_read(const char *path, ab_st_file *out);
void ab_st_free(ab_st_file *f);
const ab_st_tensor *ab_st_find(const ab_st_file *f, const char *name);
/* Convert a tensor to f32 into dst (numel elements). */
ab_status ab_st_to_f32(const ab_st_file *f, const ab_st_tensor *t, float *dst);
size_t ab_st_numel(const ab_st_tensor *t);
/* Value of a metadata key as a malloc'ed string, or NULL. */
char *ab_st_metadata(const ab_st_file *f, const char *key);

#endif
