/*
 * safetensors.c — safetensors reader (validating) and writer (atomic, F32), with jansson for the header.
 */
#include "core/safetensors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[ST_DTYPE_COUNT] = {
    [ST_F32] = {"F32", 4}, [ST_BF16] = {"BF16", 2}, [ST_F16] = {"F16", 2}, [ST_I32] = {"I32", 4}};

#define MAX_HEADER_BYTES (100u << 20) /* the format's own limit */

size_t ab_st_dtype_size(ab_st_dtype d) { return dtypes[d].size; }
const char *ab_st_dtype_name(ab_st_dtype d) { return dtypes[d].name; }

size_t ab_st_numel(const ab_st_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

ab_status ab_st_write(const char *path, const ab_st_write_tensor *tensors, int n, const char *const *meta_kv, int n_meta) {
    json_t *root = json_object();
    size_t offset = 0;
    if (n_meta > 0) {
        json_t *meta = json_object();
        for (int i = 0; i < n_meta; i++) json_object_set_new(meta, meta_kv[2 * i], json_string(meta_kv[2 * i + 1]));
        json_object_set_new(root, "__metadata__", meta);
    }
    for (int i = 0; i < n; i++) {
        const ab_st_write_tensor *t = &tensors[i];
        size_t numel = 1;
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) {
            json_array_append_new(shape, json_integer(t->shape[d]));
            numel *= (size_t)t->shape[d];
        }
        json_t *entry = json_object();
        json_object_set_new(entry, "dtype", json_string("F32"));
        json_object_set_new(entry, "shape", shape);
        json_object_set_new(entry, "data_offsets", json_pack("[II]", (json_int_t)offset, (json_int_t)(offset + numel * 4)));
        json_object_set_new(root, t->name, entry);
        offset += numel * 4;
    }
    char *header = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!header) return ab_fail(AB_ERR_OOM, "%s: cannot serialise the header", path);
    size_t hlen = strlen(header), padded = (hlen + 7) & ~(size_t)7; /* 8-byte aligned data, padded with spaces */
    ab_atomic_file af;
    ab_status s = ab_atomic_open(&af, path);
    if (s != AB_OK) {
        free(header);
        return s;
    }
    unsigned char len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len_le, 1, 8, af.f) == 8 && fwrite(header, 1, hlen, af.f) == hlen;
    for (size_t i = hlen; i < padded && ok; i++) ok = fputc(' ', af.f) != EOF;
    free(header);
    for (int i = 0; i < n && ok; i++) {
        size_t numel = 1;
        for (int d = 0; d < tensors[i].ndim; d++) numel *= (size_t)tensors[i].shape[d];
        ok = fwrite(tensors[i].data, sizeof(float), numel, af.f) == numel; /* little-endian hosts only (x86-64, arm64) */
    }
    if (!ok) {
        ab_atomic_abort(&af);
        return ab_fail(AB_ERR_IO, "%s: write failed", path);
    }
    return ab_atomic_commit(&af);
}

static int parse_dtype(const char *s, ab_st_dtype *out) {
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (ab_st_dtype)i;
            return 1;
        }
    return 0;
}

/* numel x dtype size of t, computed without wrapping: *too_big when it does not fit size_t (the dimensions
 * are each at most 2^40 but four of them multiply past 64 bits, and a wrapped product can match any range). */
static size_t shape_bytes(const ab_st_tensor *t, int *too_big) {
    size_t bytes = ab_st_dtype_size(t->dtype);
    *too_big = 0;
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] == 0) return 0;
    for (int d = 0; d < t->ndim; d++) {
        size_t dim = (size_t)t->shape[d];
        if (bytes > SIZE_MAX / dim) {
            *too_big = 1;
            return 0;
        }
        bytes *= dim;
    }
    return bytes;
}

static int cmp_begin(const void *a, const void *b) {
    const ab_st_tensor *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

ab_status ab_st_read(const char *path, ab_st_file *out) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t n;
    AB_TRY(ab_read_file(path, &buf, &n));
    ab_status st = AB_OK;
    json_t *root = NULL;
    if (n < 8) {
        st = ab_fail(AB_ERR_FORMAT, "%s: %zu bytes: too short for a safetensors file (8-byte header length expected)", path, n);
        goto done;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)(unsigned char)buf[i] << (8 * i);
    if (hlen > MAX_HEADER_BYTES || hlen > n - 8) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset 0: header length %llu does not fit the file of %zu bytes (truncated or not safetensors)",
                     path, (unsigned long long)hlen, n);
        goto done;
    }
    json_error_t err;
    root = json_loadb(buf + 8, hlen, 0, &err);
    if (!root || !json_is_object(root)) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset %d: header is not a JSON object: %s", path, 8 + err.position,
                     root ? "not an object" : err.text);
        goto done;
    }
    out->file_bytes = n;
    out->data_bytes = n - 8 - hlen;
    size_t cap = json_object_size(root);
    out->tensors = calloc(cap ? cap : 1, sizeof *out->tensors);
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            out->metadata_json = json_dumps(val, JSON_COMPACT);
            continue;
        }
        ab_st_tensor *t = &out->tensors[out->n_tensors];
        json_t *dt = json_object_get(val, "dtype"), *shape = json_object_get(val, "shape"), *offs = json_object_get(val, "data_offsets");
        if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs) || json_array_size(offs) != 2) {
            st = ab_fail(AB_ERR_FORMAT, "%s: tensor '%s': expected dtype, shape and data_offsets [begin, end]", path, key);
            goto done;
        }
        if (!parse_dtype(json_string_value(dt), &t->dtype)) {
            st = ab_fail(AB_ERR_FORMAT, "%s: tensor '%s': unsupported dtype %s (F32, BF16, F16, I32)", path, key, json_string_value(dt));
            goto done;
        }
        t->ndim = (int)json_array_size(shape);
        if (t->ndim > AB_ST_MAX_DIMS) {
            st = ab_fail(AB_ERR_FORMAT, "%s: tensor '%s': %d dimensions (at most %d)", path, key, t->ndim, AB_ST_MAX_DIMS);
            goto done;
        }
        for (int d = 0; d < t->ndim; d++) {
            json_t *x = json_array_get(shape, (size_t)d);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > (1LL << 40)) {
                st = ab_fail(AB_ERR_FORMAT, "%s: tensor '%s': bad dimension %d", path, key, d);
                goto done;
            }
            t->shape[d] = json_integer_value(x);
        }
        json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
        if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b) || (uint64_t)json_integer_value(e) > out->data_bytes) {
            st = ab_fail(AB_ERR_FORMAT, "%s: tensor '%s': data_offsets outside the %zu data bytes (file truncated?)", path, key,
                         out->data_bytes);
            goto done;
        }
        t->begin = (size_t)json_integer_value(b);
        t->end = (size_t)json_integer_value(e);
        int too_big;
        size_t bytes = shape_bytes(t, &too_big);
        if (too_big) {
            st = ab_fail(AB_ERR_FORMAT, "%s: tensor '%s': a shape of more than 2^64 bytes of %s (its dimensions are corrupt)",
                         path, key, dtypes[t->dtype].name);
            goto done;
        }
        if (t->end - t->begin != bytes) {
            st = ab_fail(AB_ERR_FORMAT, "%s: tensor '%s': %zu bytes for a shape of %zu %s elements", path, key, t->end - t->begin,
                         ab_st_numel(t), dtypes[t->dtype].name);
            goto done;
        }
        t->name = strdup(key);
        out->n_tensors++;
        if (!t->name) {
            st = ab_fail(AB_ERR_OOM, "%s: out of memory", path);
            goto done;
        }
    }
    /* byte ranges must not overlap */
    ab_st_tensor *sorted = malloc((size_t)(out->n_tensors ? out->n_tensors : 1) * sizeof *sorted);
    if (!sorted) {
        st = ab_fail(AB_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    memcpy(sorted, out->tensors, (size_t)out->n_tensors * sizeof *sorted);
    qsort(sorted, (size_t)out->n_tensors, sizeof *sorted, cmp_begin);
    for (int i = 1; i < out->n_tensors && st == AB_OK; i++)
        if (sorted[i].begin < sorted[i - 1].end)
            st = ab_fail(AB_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", path, sorted[i - 1].name, sorted[i].name);
    free(sorted);
    if (st != AB_OK) goto done;
    out->data = malloc(out->data_bytes ? out->data_bytes : 1);
    if (!out->data) {
        st = ab_fail(AB_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    memcpy(out->data, buf + 8 + hlen, out->data_bytes);
done:
    json_decref(root);
    free(buf);
    if (st != AB_OK) ab_st_free(out);
    return st;
}

void ab_st_free(ab_st_file *f) {
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    free(f->metadata_json);
    free(f->data);
    memset(f, 0, sizeof *f);
}

const ab_st_tensor *ab_st_find(const ab_st_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

static float half_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

ab_status ab_st_to_f32(const ab_st_file *f, const ab_st_tensor *t, float *dst) {
    const unsigned char *src = f->data + t->begin;
    size_t n = ab_st_numel(t);
    switch (t->dtype) {
    case ST_F32: memcpy(dst, src, n * 4); return AB_OK;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)(src[2 * i] | (src[2 * i + 1] << 8)) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return AB_OK;
    case ST_F16:
        for (size_t i = 0; i < n; i++) dst[i] = half_to_f32((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
        return AB_OK;
    default: return ab_fail(AB_ERR_FORMAT, "tensor '%s': %s cannot be read as parameters", t->name, dtypes[t->dtype].name);
    }
}

char *ab_st_metadata(const ab_st_file *f, const char *key) {
    if (!f->metadata_json) return NULL;
    json_t *meta = json_loads(f->metadata_json, 0, NULL);
    json_t *v = meta ? json_object_get(meta, key) : NULL;
    char *out = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
    json_decref(meta);
    return out;
}
