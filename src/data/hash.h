/*
 * hash.h — a fast 64-bit non-cryptographic hash of bytes: shard checksums, the input hash that makes a
 * re-run of `prepare` a no-op, the key of the built-in sample's cache directory.
 *
 * Not for security: it detects accidental change (a different file, a torn write), not tampering.
 */
#ifndef AB_HASH_H
#define AB_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Hash of data[0..n), chained from `seed` (hash a stream chunk by chunk by passing the previous result;
 * the result then depends on the chunking, so hash streams in fixed-size chunks). */
uint64_t ab_hash64(const void *data, size_t n, uint64_t seed);
/* Hash of a whole file read in 1 MiB chunks; *size gets its length. */
ab_status ab_hash_file(const char *path, uint64_t *hash, uint64_t *size);

#endif
