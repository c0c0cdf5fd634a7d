/*
 * test_token_ids.c — the text form of token sequences (`eval --input ids.txt`, data/token_ids.h): what is
 * read (comments, blank lines, CRLF, a last line without newline) and every refusal with its line and column.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "data/token_ids.h"
#include "test_util.h"

#define VOCAB 50257

typedef struct {
    char got[256];  /* "line:id,id;" per sequence */
    int calls, fail_at; /* fail_at: the callback fails on that call (1-based), 0 never */
} collected;

static ab_status collect(void *ctx, const int32_t *ids, int n, long line) {
    collected *c = ctx;
    size_t used = strlen(c->got);
    used += (size_t)snprintf(c->got + used, sizeof c->got - used, "%ld:", line);
    for (int i = 0; i < n && used < sizeof c->got; i++)
        used += (size_t)snprintf(c->got + used, sizeof c->got - used, "%s%d", i ? "," : "", ids[i]);
    if (used < sizeof c->got) snprintf(c->got + used, sizeof c->got - used, ";");
    if (++c->calls == c->fail_at) return ab_fail(AB_ERR_USAGE, "stopped by the callback");
    return AB_OK;
}

#define NUL_TEXT "1 2\0 3\n"

static void test_cases(const char *dir) {
    static const struct {
        const char *name, *text;
        size_t len;              /* 0: strlen(text) */
        int max_tokens, fail_at;
        ab_status want;
        const char *got;         /* sequences read (on success) */
        const char *message;     /* text the error must hold (after the file name) */
    } cases[] = {
        {"token_ids_comments_blank_crlf", "# two\n\n1 2 3\r\n  4\t5\n", 0, 8, 0, AB_OK, "3:1,2,3;4:4,5;", NULL},
        {"token_ids_last_line_without_newline", "0 50256", 0, 8, 0, AB_OK, "1:0,50256;", NULL},
        {"token_ids_leading_zeros", "007 08\n", 0, 8, 0, AB_OK, "1:7,8;", NULL},
        {"token_ids_id_outside_vocab", "1 2\n3 50257\n", 0, 8, 0, AB_ERR_FORMAT, NULL, ":2: column 3: expected a token id in 0..50256"},
        {"token_ids_huge_number", "1 99999999999999999999999999\n", 0, 8, 0, AB_ERR_FORMAT, NULL, ":1: column 3:"},
        /* strtol used to read "12+34" as 12 and 34, "-0" as 0 and stop a line at a NUL byte */
        {"token_ids_sign_between_ids", "12+34 5\n", 0, 8, 0, AB_ERR_FORMAT, NULL, ":1: column 1:"},
        {"token_ids_negative_zero", "-0 5\n", 0, 8, 0, AB_ERR_FORMAT, NULL, ":1: column 1:"},
        {"token_ids_plus_sign", "5 +6\n", 0, 8, 0, AB_ERR_FORMAT, NULL, ":1: column 3:"},
        {"token_ids_nul_byte", NUL_TEXT, sizeof NUL_TEXT - 1, 8, 0, AB_ERR_FORMAT, NULL, ":1: column 3:"},
        {"token_ids_letter", "1 2\n4 x 6\n", 0, 8, 0, AB_ERR_FORMAT, NULL, ":2: column 3:"},
        {"token_ids_trailing_comment", "1 2 # no\n", 0, 8, 0, AB_ERR_FORMAT, NULL, ":1: column 5:"},
        {"token_ids_one_token", "5\n", 0, 8, 0, AB_ERR_FORMAT, NULL, ":1: a sequence needs at least 2 tokens"},
        {"token_ids_too_many", "1 2 3\n1 2 3 4\n", 0, 3, 0, AB_ERR_FORMAT, NULL, ":2: more than 3 tokens"},
        {"token_ids_callback_status", "1 2\n3 4\n5 6\n", 0, 8, 2, AB_ERR_USAGE, NULL, "stopped by the callback"},
    };
    char path[4200];
    snprintf(path, sizeof path, "%s/ids.txt", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ab_write_file_atomic(path, cases[i].text, cases[i].len ? cases[i].len : strlen(cases[i].text));
        collected c = {.fail_at = cases[i].fail_at};
        ab_status st = ab_token_ids_read(path, cases[i].max_tokens, VOCAB, collect, &c);
        int ok = st == cases[i].want;
        if (ok && st == AB_OK) ok = !strcmp(c.got, cases[i].got);
        if (ok && st != AB_OK && st != AB_ERR_USAGE) ok = strstr(ab_error(), path) == ab_error();
        if (ok && cases[i].message) ok = strstr(ab_error(), cases[i].message) != NULL;
        test_report(ok, cases[i].name, "status %s, read '%s', message '%s'", ab_status_name(st), c.got,
                    st == AB_OK ? "" : ab_error());
    }
    unlink(path);
}

int main(void) {
    char dir[] = "/tmp/ab_test_token_ids_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    test_cases(dir);
    ab_status st = ab_token_ids_read("/nonexistent/ids.txt", 8, VOCAB, collect, &(collected){0});
    test_report(st == AB_ERR_IO && strstr(ab_error(), "/nonexistent/ids.txt"), "token_ids_missing_file", "status %s: %s",
                ab_status_name(st), ab_error());
    rmdir(dir);
    return TEST_SUMMARY();
}
