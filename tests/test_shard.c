/*
 * test_shard.c — token shards and their sidecar: round trips, every rejected header/sidecar, atomic writes.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/status.h"
#include "data/shard.h"
#include "test_util.h"

#define VOCAB 50257

static char dir[256];

static const char *path_in(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* Overwrite `n` bytes at `offset` of PATH. */
static void patch_file(const char *path, long offset, const void *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    fseek(f, offset, SEEK_SET);
    fwrite(bytes, 1, n, f);
    fclose(f);
}

static int count_tmp_files(void) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static void test_round_trip_rows_and_mask(void) {
    enum { L = 6, ROWS = 3, N = L * ROWS };
    uint16_t tok[N];
    uint8_t mask[N];
    for (int i = 0; i < N; i++) {
        tok[i] = (uint16_t)(i * 2791 % VOCAB);
        mask[i] = (uint8_t)(i % 3 == 1);
    }
    const char *p = path_in("rows.bin");
    ab_status st = ab_shard_write(p, tok, N, mask, L);
    ab_shard s;
    if (st == AB_OK) st = ab_shard_read(p, VOCAB, &s);
    TEST_TRUE("shard_round_trip_status", st == AB_OK, "%s", ab_error());
    if (st != AB_OK) return;
    int same = s.n_tokens == N && s.row_len == L && s.n_rows == ROWS && s.loss_mask;
    for (int i = 0; same && i < N; i++) same = s.tokens[i] == tok[i] && s.loss_mask[i] == mask[i];
    TEST_TRUE("shard_round_trip_rows_mask", same, "n %zu row_len %d rows %zu", s.n_tokens, s.row_len, s.n_rows);
    ab_shard_free(&s);
    TEST_TRUE("shard_no_temporaries_left", count_tmp_files() == 0, "%d temporary files", count_tmp_files());
}

static void test_round_trip_packed(void) {
    uint16_t tok[5] = {50256, 1, 2, 3, 50256};
    char p[512], rows[520];
    snprintf(p, sizeof p, "%s", path_in("packed.bin"));
    snprintf(rows, sizeof rows, "%s.rows", p);
    ab_status st = ab_shard_write(p, tok, 5, NULL, 0);
    ab_shard s;
    if (st == AB_OK) st = ab_shard_read(p, VOCAB, &s);
    TEST_TRUE("shard_packed_round_trip", st == AB_OK && s.n_tokens == 5 && !s.loss_mask && s.row_len == 0 &&
                                             memcmp(s.tokens, tok, sizeof tok) == 0, "%s", ab_error());
    if (st == AB_OK) ab_shard_free(&s);
    /* An llm.c shard has no sidecar: a packed stream where every token counts. */
    unlink(rows);
    st = ab_shard_read(p, VOCAB, &s);
    TEST_TRUE("shard_llmc_without_sidecar", st == AB_OK && s.n_tokens == 5 && !s.loss_mask && s.row_len == 0, "%s",
              ab_error());
    if (st == AB_OK) ab_shard_free(&s);
    /* The header is exactly llm.c's: magic, version, count, then zeros, and uint16 tokens from byte 1024. */
    char *raw;
    size_t n;
    if (ab_read_file(p, &raw, &n) != AB_OK) {
        TEST_TRUE("shard_llmc_layout", 0, "%s", ab_error());
        return;
    }
    int32_t h[4];
    memcpy(h, raw, sizeof h);
    uint16_t first;
    memcpy(&first, raw + 1024, 2);
    TEST_TRUE("shard_llmc_layout", n == 1024 + 10 && h[0] == 20240520 && h[1] == 1 && h[2] == 5 && h[3] == 0 &&
                                       first == 50256, "size %zu header %d %d %d", n, h[0], h[1], h[2]);
    free(raw);
}

/* Reading SHARD must fail with AB_ERR_FORMAT and a message naming the file NAMED and the offset. */
static void expect_format_error(const char *name, const char *shard, const char *named, const char *offset_text) {
    ab_shard s;
    ab_status st = ab_shard_read(shard, VOCAB, &s);
    const char *msg = ab_error();
    TEST_TRUE(name, st == AB_ERR_FORMAT && strstr(msg, named) && strstr(msg, offset_text), "status %s, message '%s'",
              ab_status_name(st), msg);
    if (st == AB_OK) ab_shard_free(&s);
}

static void write_good(const char *p) {
    uint16_t tok[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t mask[8] = {0, 1, 1, 0, 0, 1, 1, 0};
    ab_shard_write(p, tok, 8, mask, 4);
}

static void test_rejections(void) {
    const char *p = path_in("bad.bin");
    char rows[600];
    snprintf(rows, sizeof rows, "%s.rows", p);

    write_good(p);
    int32_t v = 1234;
    patch_file(p, 0, &v, 4);
    expect_format_error("shard_rejects_bad_magic", p, p, "offset 0");

    write_good(p);
    v = 2;
    patch_file(p, 4, &v, 4);
    expect_format_error("shard_rejects_bad_version", p, p, "offset 4");

    write_good(p);
    v = 9;
    patch_file(p, 8, &v, 4);
    expect_format_error("shard_rejects_count_mismatch", p, p, "offset 8");

    write_good(p);
    uint16_t big = 50257;
    patch_file(p, 1024 + 2 * 3, &big, 2);
    expect_format_error("shard_rejects_token_outside_vocab", p, p, "offset 1030");

    write_good(p);
    uint16_t other = 9;
    patch_file(p, 1024, &other, 2); /* shard changed, sidecar not: checksum disagrees */
    expect_format_error("shard_rejects_foreign_sidecar", p, rows, "offset 20");

    write_good(p);
    v = 3;
    patch_file(rows, 12, &v, 4);
    expect_format_error("shard_rejects_row_len_not_dividing", p, rows, "offset 12");

    write_good(p);
    if (truncate(rows, 1024) != 0) return;
    expect_format_error("shard_rejects_short_mask", p, rows, "offset 1024");

    write_good(p);
    if (truncate(p, 100) != 0) return;
    expect_format_error("shard_rejects_short_header", p, p, "offset 0");

    ab_shard s;
    ab_status st = ab_shard_read(path_in("missing.bin"), VOCAB, &s);
    TEST_TRUE("shard_missing_is_io", st == AB_ERR_IO && strstr(ab_error(), "missing.bin"), "%s", ab_error());
}

static void test_failed_write_leaves_nothing(void) {
    uint16_t tok[4] = {1, 2, 3, 4};
    char p[512];
    snprintf(p, sizeof p, "%s/no-such-dir/x.bin", dir);
    ab_status st = ab_shard_write(p, tok, 4, NULL, 0);
    TEST_TRUE("shard_write_into_missing_dir_fails", st == AB_ERR_IO && !ab_file_exists(p), "%s", ab_status_name(st));
    st = ab_shard_write(path_in("uneven.bin"), tok, 4, NULL, 3);
    TEST_TRUE("shard_write_rejects_partial_rows", st != AB_OK && !ab_file_exists(path_in("uneven.bin")) &&
                                                      !ab_file_exists(path_in("uneven.bin.rows")), "%s", ab_error());
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ab_test_shard_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    test_round_trip_rows_and_mask();
    test_round_trip_packed();
    test_rejections();
    test_failed_write_leaves_nothing();
    test_remove_dir(dir);
    return TEST_SUMMARY();
}
