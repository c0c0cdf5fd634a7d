/*
 * shard.h — token shards in llm.c's format, plus attnbench's row / loss-mask sidecar.
 *
 * A shard FILE.bin: 256 x int32 header (magic 20240520, version 1, number of tokens, rest 0), then the
 * tokens as uint16 little-endian. The sidecar FILE.bin.rows (docs/FORMATS.md) records how the stream is cut
 * into rows and which tokens carry loss; a shard without sidecar is one packed stream, every token counted.
 */
#ifndef AB_SHARD_H
#define AB_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define AB_SHARD_MAGIC 20240520
#define AB_SHARD_VERSION 1
#define AB_SHARD_HEADER_INTS 256

typedef struct {
    size_t n_tokens;
    uint16_t *tokens;       /* (n_tokens) */
    uint8_t *loss_mask;     /* (n_tokens) 1 = the token is a target that carries loss; NULL = all carry loss */
    int row_len;            /* 0 = packed stream; > 0 = fixed rows of row_len tokens (padded, no-pack mode) */
    size_t n_rows;          /* n_tokens / row_len when row_len > 0 */
} ab_shard;

/* Reads PATH and, if present, PATH.rows. AB_ERR_IO if missing; AB_ERR_FORMAT naming the offset for a bad
 * magic / version, a size that disagrees with the header, a token id >= vocab, a sidecar that disagrees. */
ab_status ab_shard_read(const char *path, int vocab_size, ab_shard *out);
/* Writes atomically (temporary file + rename). mask may be NULL; row_len 0 for a packed stream. */
ab_status ab_shard_write(const char *path, const uint16_t *tokens, size_t n_tokens, const uint8_t *mask, int row_len);
void ab_shard_free(ab_shard *s);

#endif
