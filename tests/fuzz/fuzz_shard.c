/*
 * fuzz_shard.c — libFuzzer harness for the token shard reader and its row / loss-mask sidecar.
 *
 * Input layout: byte 0 = flags, bytes 1..4 = length L of the shard part (u32 little-endian, clamped), then L
 * bytes of FILE.bin, then the bytes of FILE.bin.rows. Both are written into a private temporary directory
 * and read with ab_shard_read. So that the fuzzer also gets past the headers and the checksum, the flags can
 * repair them before writing:
 *     bit 0  shard header: magic, version and token count from the length (an odd last byte dropped)
 *     bit 1  sidecar header: magic, version, token count and the checksum of the shard's tokens
 *     bit 2  sidecar size: mask encoding taken as bit 0 of its field, file cut or zero-padded to fit
 *     bit 3  no sidecar file at all (an llm.c shard)
 * A rejected pair must leave a message naming one of the two files. An accepted one must hold what
 * shard.h and docs/FORMATS.md promise: the tokens are the file's, each below the vocabulary (50257); row
 * length >= 0, n_rows x row_len = n_tokens when row_len > 0 and n_rows = 0 when packed; a mask exactly when a
 * sidecar of mask encoding 1 covers at least one token (an empty shard has none to mask), each value 0 or 1 and
 * equal to the token's bit; the sidecar's checksum is the
 * tokens'. Any failure is an abort().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/hash.h"
#include "data/shard.h"

#define VOCAB 50257
#define HEADER_BYTES (AB_SHARD_HEADER_INTS * 4)
#define ROWS_MAGIC 0x73776f72

static void put_i32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static char dir[64];

/* The temporary directory goes at a normal exit (a crash keeps it, with the files of the failing input). */
static void remove_dir(void) {
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz_shard: could not remove %s\n", dir);
}

static void write_file(const char *path, const unsigned char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char shard_path[128], rows_path[140];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz_shard_XXXXXX");
        if (!mkdtemp(dir)) abort();
        atexit(remove_dir);
        snprintf(shard_path, sizeof shard_path, "%s/s.bin", dir);
        snprintf(rows_path, sizeof rows_path, "%s/s.bin.rows", dir);
    }
    if (size < 5) return 0;
    unsigned flags = data[0];
    size_t len = get_u32(data + 1);
    if (len > size - 5) len = size - 5;
    size_t side_len = size - 5 - len;
    /* private, writable copies (room for the padding of bit 2) */
    unsigned char *shard = malloc(len + 1), *side = calloc(side_len + HEADER_BYTES + len / 16 + 2, 1);
    if (!shard || !side) abort();
    memcpy(shard, data + 5, len);
    memcpy(side, data + 5 + len, side_len);
    if ((flags & 1) && len >= HEADER_BYTES) {
        len = HEADER_BYTES + (len - HEADER_BYTES) / 2 * 2;
        put_i32(shard, AB_SHARD_MAGIC);
        put_i32(shard + 4, AB_SHARD_VERSION);
        put_i32(shard + 8, (uint32_t)((len - HEADER_BYTES) / 2));
    }
    size_t n_file_tokens = len >= HEADER_BYTES ? (len - HEADER_BYTES) / 2 : 0;
    if ((flags & 2) && side_len >= HEADER_BYTES) {
        put_i32(side, ROWS_MAGIC);
        put_i32(side + 4, 1);
        put_i32(side + 8, (uint32_t)n_file_tokens);
        uint64_t sum = ab_hash64(shard + HEADER_BYTES, n_file_tokens * 2, 0);
        put_i32(side + 20, (uint32_t)sum);
        put_i32(side + 24, (uint32_t)(sum >> 32));
    }
    if ((flags & 4) && side_len >= HEADER_BYTES) {
        uint32_t enc = get_u32(side + 16) & 1;
        put_i32(side + 16, enc);
        size_t want = HEADER_BYTES + (enc ? (n_file_tokens + 7) / 8 : 0);
        side_len = want; /* within the allocation; calloc'ed, so the padding is zero */
    }
    write_file(shard_path, shard, len);
    if (flags & 8) unlink(rows_path);
    else write_file(rows_path, side, side_len);

    ab_shard s;
    ab_status st = ab_shard_read(shard_path, VOCAB, &s);
    if (st != AB_OK) {
        if (!strstr(ab_error(), shard_path) || s.tokens || s.loss_mask) abort(); /* names FILE.bin or FILE.bin.rows */
    } else {
        if (len < HEADER_BYTES || s.n_tokens != get_u32(shard + 8) || len != HEADER_BYTES + 2 * s.n_tokens) abort();
        if (memcmp(s.tokens, shard + HEADER_BYTES, 2 * s.n_tokens) != 0) abort();
        for (size_t i = 0; i < s.n_tokens; i++)
            if (s.tokens[i] >= VOCAB) abort();
        if (s.row_len < 0 || (s.row_len > 0 && s.n_rows * (size_t)s.row_len != s.n_tokens) ||
            (s.row_len == 0 && s.n_rows != 0))
            abort();
        int has_side = !(flags & 8);
        if (!has_side && (s.row_len != 0 || s.loss_mask)) abort();
        if (has_side) {
            if (side_len < HEADER_BYTES || get_u32(side) != ROWS_MAGIC || get_u32(side + 8) != s.n_tokens ||
                (int32_t)get_u32(side + 12) != s.row_len)
                abort();
            uint64_t sum = ab_hash64(s.tokens, 2 * s.n_tokens, 0);
            if (get_u32(side + 20) != (uint32_t)sum || get_u32(side + 24) != (uint32_t)(sum >> 32)) abort();
            uint32_t enc = get_u32(side + 16);
            if ((enc == 1 && s.n_tokens > 0) != (s.loss_mask != NULL) || (enc != 0 && enc != 1)) abort();
            if (enc == 1 && side_len != HEADER_BYTES + (s.n_tokens + 7) / 8) abort();
            for (size_t i = 0; s.loss_mask && i < s.n_tokens; i++)
                if (s.loss_mask[i] != ((side[HEADER_BYTES + i / 8] >> (i % 8)) & 1)) abort();
        }
        ab_shard_free(&s);
    }
    free(shard);
    free(side);
    return 0;
}
