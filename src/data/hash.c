/*
 * hash.c — 64-bit multiply-xor hash over 8-byte words with a final avalanche (see hash.h).
 */
#include "data/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t ab_hash64(const void *data, size_t n, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = seed ^ 0xcbf29ce484222325ULL ^ ((uint64_t)n * 0x9E3779B97F4A7C15ULL);
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, sizeof w);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (size_t i = words * 8; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

ab_status ab_hash_file(const char *path, uint64_t *hash, uint64_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return ab_fail(AB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    if (!buf) {
        fclose(f);
        return ab_fail(AB_ERR_OOM, "%s: out of memory", path);
    }
    uint64_t h = 0, total = 0;
    size_t got;
    while ((got = fread(buf, 1, CHUNK, f)) > 0) {
        h = ab_hash64(buf, got, h);
        total += got;
    }
    int err = ferror(f);
    free(buf);
    fclose(f);
    if (err) return ab_fail(AB_ERR_IO, "%s: read error", path);
    *hash = h;
    *size = total;
    return AB_OK;
}
