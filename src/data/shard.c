/*
 * shard.c — reads and writes token shards (llm.c format) and their row / loss-mask sidecar.
 *
 * FILE.bin        : 256 x int32 header {20240520, 1, n_tokens, 0...}, then n_tokens x uint16.
 * FILE.bin.rows   : 256 x int32 header {AB_ROWS_MAGIC, 1, n_tokens, row_len, mask_encoding, checksum lo,
 *                   checksum hi, 0...}, then, when mask_encoding is 1, ceil(n_tokens / 8) bytes of loss mask,
 *                   one bit per token, least significant bit first. docs/FORMATS.md is the reference.
 *
 * The sidecar records a checksum of the token bytes, so a sidecar left beside a different shard (an
 * interrupted rewrite) is detected instead of silently applying the wrong mask. ab_shard_write commits the
 * sidecar first and the shard last: a crash in between leaves a pair whose checksums disagree.
 */
#include "data/shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fsutil.h"
#include "data/hash.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shards are little-endian on disk and read by casting: port ab_shard_read/write to this host first"
#endif

#define AB_ROWS_MAGIC 0x73776f72 /* the bytes "rows" */
#define AB_ROWS_VERSION 1
enum { MASK_NONE = 0, MASK_BITS = 1 };
#define HEADER_BYTES (AB_SHARD_HEADER_INTS * (long)sizeof(int32_t))

/* Checksum of the token bytes recorded in the sidecar. */
static uint64_t tokens_checksum(const uint16_t *tokens, size_t n) { return ab_hash64(tokens, n * sizeof *tokens, 0); }

void ab_shard_free(ab_shard *s) {
    if (!s) return;
    free(s->tokens);
    free(s->loss_mask);
    memset(s, 0, sizeof *s);
}

static ab_status read_header(FILE *f, const char *path, int32_t header[AB_SHARD_HEADER_INTS]) {
    if (fread(header, sizeof(int32_t), AB_SHARD_HEADER_INTS, f) != AB_SHARD_HEADER_INTS)
        return ab_fail(AB_ERR_FORMAT, "%s: offset 0: expected a %ld-byte header, the file is shorter", path, HEADER_BYTES);
    return AB_OK;
}

static ab_status file_size(FILE *f, const char *path, long *size) {
    struct stat st;
    if (fstat(fileno(f), &st) != 0) return ab_fail(AB_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    *size = (long)st.st_size;
    return AB_OK;
}

/* Reads the sidecar PATH.rows into `s` (tokens already read). */
static ab_status read_sidecar(const char *rows_path, ab_shard *s) {
    FILE *f = fopen(rows_path, "rb");
    if (!f) return ab_fail(AB_ERR_IO, "%s: cannot open: %s", rows_path, strerror(errno));
    int32_t h[AB_SHARD_HEADER_INTS];
    long size = 0;
    ab_status st = read_header(f, rows_path, h);
    if (st == AB_OK) st = file_size(f, rows_path, &size);
    if (st != AB_OK) goto done;
    if (h[0] != AB_ROWS_MAGIC) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset 0: bad magic %d (expected %d, an attnbench row sidecar)", rows_path, h[0],
                     AB_ROWS_MAGIC);
        goto done;
    }
    if (h[1] != AB_ROWS_VERSION) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset 4: unsupported version %d (expected %d)", rows_path, h[1], AB_ROWS_VERSION);
        goto done;
    }
    if (h[2] < 0 || (size_t)h[2] != s->n_tokens) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset 8: sidecar is for %d tokens but the shard has %zu", rows_path, h[2],
                     s->n_tokens);
        goto done;
    }
    int row_len = h[3];
    if (row_len < 0 || (row_len > 0 && s->n_tokens % (size_t)row_len != 0)) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset 12: row length %d does not divide the %zu tokens", rows_path, row_len,
                     s->n_tokens);
        goto done;
    }
    uint64_t want = (uint64_t)(uint32_t)h[5] | (uint64_t)(uint32_t)h[6] << 32;
    if (want != tokens_checksum(s->tokens, s->n_tokens)) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset 20: token checksum disagrees with the shard (sidecar from another "
                                    "write, or an interrupted one)", rows_path);
        goto done;
    }
    size_t mask_bytes = h[4] == MASK_BITS ? (s->n_tokens + 7) / 8 : 0;
    if (h[4] != MASK_NONE && h[4] != MASK_BITS) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset 16: unknown mask encoding %d (expected 0 or 1)", rows_path, h[4]);
        goto done;
    }
    if (size != HEADER_BYTES + (long)mask_bytes) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset %ld: expected %zu mask bytes after the header, the file has %ld",
                     rows_path, HEADER_BYTES, mask_bytes, size - HEADER_BYTES);
        goto done;
    }
    s->row_len = row_len;
    s->n_rows = row_len > 0 ? s->n_tokens / (size_t)row_len : 0;
    if (mask_bytes) {
        uint8_t *bits = malloc(mask_bytes);
        s->loss_mask = malloc(s->n_tokens ? s->n_tokens : 1);
        if (!bits || !s->loss_mask) {
            free(bits);
            st = ab_fail(AB_ERR_OOM, "%s: out of memory for %zu mask bytes", rows_path, s->n_tokens);
            goto done;
        }
        if (fread(bits, 1, mask_bytes, f) != mask_bytes) {
            free(bits);
            st = ab_fail(AB_ERR_IO, "%s: read error in the mask", rows_path);
            goto done;
        }
        for (size_t i = 0; i < s->n_tokens; i++) s->loss_mask[i] = (bits[i >> 3] >> (i & 7)) & 1;
        free(bits);
    }
done:
    fclose(f);
    return st;
}

ab_status ab_shard_read(const char *path, int vocab_size, ab_shard *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return ab_fail(AB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int32_t h[AB_SHARD_HEADER_INTS];
    long size = 0;
    ab_status st = read_header(f, path, h);
    if (st == AB_OK) st = file_size(f, path, &size);
    if (st != AB_OK) goto fail;
    if (h[0] != AB_SHARD_MAGIC) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset 0: bad magic %d (expected %d, an llm.c token shard)", path, h[0],
                     AB_SHARD_MAGIC);
        goto fail;
    }
    if (h[1] != AB_SHARD_VERSION) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset 4: unsupported version %d (expected %d: uint16 tokens)", path, h[1],
                     AB_SHARD_VERSION);
        goto fail;
    }
    if (h[2] < 0 || size != HEADER_BYTES + 2L * h[2]) {
        st = ab_fail(AB_ERR_FORMAT, "%s: offset 8: header says %d tokens (%ld bytes) but %ld bytes follow the header",
                     path, h[2], 2L * h[2], size - HEADER_BYTES);
        goto fail;
    }
    out->n_tokens = (size_t)h[2];
    out->tokens = malloc(out->n_tokens ? out->n_tokens * sizeof(uint16_t) : 1);
    if (!out->tokens) {
        st = ab_fail(AB_ERR_OOM, "%s: out of memory for %zu tokens", path, out->n_tokens);
        goto fail;
    }
    if (fread(out->tokens, sizeof(uint16_t), out->n_tokens, f) != out->n_tokens) {
        st = ab_fail(AB_ERR_IO, "%s: read error", path);
        goto fail;
    }
    for (size_t i = 0; i < out->n_tokens; i++)
        if (out->tokens[i] >= vocab_size) {
            st = ab_fail(AB_ERR_FORMAT, "%s: offset %ld: token %u is outside the vocabulary (size %d)", path,
                         HEADER_BYTES + 2L * (long)i, out->tokens[i], vocab_size);
            goto fail;
        }
    fclose(f);
    f = NULL;
    char rows_path[4096];
    if (snprintf(rows_path, sizeof rows_path, "%s.rows", path) >= (int)sizeof rows_path) {
        st = ab_fail(AB_ERR_USAGE, "%s: path too long", path);
        goto fail;
    }
    if (ab_file_exists(rows_path)) {
        st = read_sidecar(rows_path, out);
        if (st != AB_OK) goto fail;
    }
    return AB_OK;
fail:
    if (f) fclose(f);
    ab_shard_free(out);
    return st;
}

static ab_status write_all(ab_atomic_file *af, const void *data, size_t size, size_t count) {
    if (count && fwrite(data, size, count, af->f) != count) {
        ab_atomic_abort(af);
        return ab_fail(AB_ERR_IO, "%s: short write: %s", af->final_path, strerror(errno));
    }
    return AB_OK;
}

static ab_status write_sidecar(const char *rows_path, const uint16_t *tokens, size_t n_tokens, const uint8_t *mask,
                               int row_len) {
    int32_t h[AB_SHARD_HEADER_INTS] = {0};
    uint64_t sum = tokens_checksum(tokens, n_tokens);
    h[0] = AB_ROWS_MAGIC;
    h[1] = AB_ROWS_VERSION;
    h[2] = (int32_t)n_tokens;
    h[3] = row_len;
    h[4] = mask ? MASK_BITS : MASK_NONE;
    h[5] = (int32_t)(uint32_t)sum;
    h[6] = (int32_t)(uint32_t)(sum >> 32);
    size_t mask_bytes = mask ? (n_tokens + 7) / 8 : 0;
    uint8_t *bits = calloc(mask_bytes ? mask_bytes : 1, 1);
    if (!bits) return ab_fail(AB_ERR_OOM, "%s: out of memory", rows_path);
    for (size_t i = 0; i < n_tokens && mask; i++)
        if (mask[i]) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    ab_atomic_file af;
    ab_status st = ab_atomic_open(&af, rows_path);
    if (st == AB_OK) st = write_all(&af, h, sizeof h[0], AB_SHARD_HEADER_INTS);
    if (st == AB_OK) st = write_all(&af, bits, 1, mask_bytes);
    if (st == AB_OK) st = ab_atomic_commit(&af);
    free(bits);
    return st;
}

ab_status ab_shard_write(const char *path, const uint16_t *tokens, size_t n_tokens, const uint8_t *mask, int row_len) {
    if (n_tokens > INT32_MAX)
        return ab_fail(AB_ERR_USAGE, "%s: %zu tokens do not fit one shard (at most %d)", path, n_tokens, INT32_MAX);
    if (row_len < 0 || (row_len > 0 && n_tokens % (size_t)row_len != 0))
        return ab_fail(AB_ERR_INTERNAL, "%s: %zu tokens are not whole rows of %d", path, n_tokens, row_len);
    char rows_path[4096];
    if (snprintf(rows_path, sizeof rows_path, "%s.rows", path) >= (int)sizeof rows_path)
        return ab_fail(AB_ERR_USAGE, "%s: path too long", path);
    /* The sidecar always exists for shards attnbench writes (mask encoding 0 when every token counts), so a
     * rewrite never leaves an old sidecar beside a new shard. */
    AB_TRY(write_sidecar(rows_path, tokens, n_tokens, mask, row_len));
    int32_t h[AB_SHARD_HEADER_INTS] = {0};
    h[0] = AB_SHARD_MAGIC;
    h[1] = AB_SHARD_VERSION;
    h[2] = (int32_t)n_tokens;
    ab_atomic_file af;
    AB_TRY(ab_atomic_open(&af, path));
    AB_TRY(write_all(&af, h, sizeof h[0], AB_SHARD_HEADER_INTS));
    AB_TRY(write_all(&af, tokens, sizeof(uint16_t), n_tokens));
    return ab_atomic_commit(&af);
}
