/*
 * test_bpe.c — the GPT-2 tokenizer: the reference vectors exactly (tests/data/gpt2_tokenizer_vectors.jsonl),
 * our own vectors, decode round trips, <|endoftext|> as plain text, invalid UTF-8, pathological pieces.
 * Runs from the repository root (tools/run-tests.sh does).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/bpe.h"
#include "test_util.h"

static ab_bpe_encoder *enc;

/* Encodes text and compares with want (n ids); on mismatch writes the first differing position into why. */
static int encode_equals(const char *text, size_t len, const int32_t *want, size_t n, char *why, size_t why_size) {
    ab_ids got = {0};
    if (ab_bpe_encode(enc, text, len, &got) != AB_OK) {
        snprintf(why, why_size, "encode failed: %s", ab_error());
        return 0;
    }
    size_t i = 0;
    while (i < n && i < got.n && got.ids[i] == want[i]) i++;
    int ok = i == n && got.n == n;
    if (!ok)
        snprintf(why, why_size, "first difference at id %zu: got %d want %d (lengths %zu vs %zu)", i,
                 i < got.n ? got.ids[i] : -1, i < n ? want[i] : -1, got.n, n);
    ab_ids_free(&got);
    return ok;
}

static int decodes_to(const int32_t *ids, size_t n, const char *text, size_t len) {
    char *out;
    size_t out_len;
    if (ab_bpe_decode(ids, n, &out, &out_len) != AB_OK) return 0;
    int ok = out_len == len && memcmp(out, text, len) == 0;
    free(out);
    return ok;
}

static void test_reference_vectors(void) {
    FILE *f = fopen("tests/data/gpt2_tokenizer_vectors.jsonl", "r");
    TEST_TRUE("bpe_vectors_file", f != NULL, "cannot open tests/data/gpt2_tokenizer_vectors.jsonl (run from the repo root)");
    if (!f) return;
    char line[1 << 16];
    int lineno = 0, n_ok = 0, n_bad = 0, round_trip_bad = 0;
    char first_bad[600] = "";
    while (fgets(line, sizeof line, f)) {
        lineno++;
        json_error_t err;
        json_t *o = json_loads(line, JSON_ALLOW_NUL, &err);
        json_t *jt = json_object_get(o, "text"), *ji = json_object_get(o, "ids");
        if (!json_is_string(jt) || !json_is_array(ji)) {
            if (n_bad++ == 0) snprintf(first_bad, sizeof first_bad, "line %d: not a vector: %s", lineno, err.text);
            json_decref(o);
            continue;
        }
        size_t n = json_array_size(ji);
        int32_t *want = malloc((n + 1) * sizeof *want);
        for (size_t i = 0; i < n; i++) want[i] = (int32_t)json_integer_value(json_array_get(ji, i));
        char why[300];
        const char *text = json_string_value(jt);
        size_t len = json_string_length(jt);
        if (encode_equals(text, len, want, n, why, sizeof why)) n_ok++;
        else if (n_bad++ == 0) snprintf(first_bad, sizeof first_bad, "line %d (%.60s): %s", lineno, text, why);
        if (!decodes_to(want, n, text, len)) round_trip_bad++;
        free(want);
        json_decref(o);
    }
    fclose(f);
    TEST_TRUE("bpe_reference_vectors_exact", n_bad == 0 && n_ok > 90, "%d of %d differ; first: %s", n_bad,
              n_ok + n_bad, first_bad);
    TEST_TRUE("bpe_reference_vectors_decode", round_trip_bad == 0, "%d vectors do not decode back to their text",
              round_trip_bad);
}

/* Our own vectors (ids from tiktoken's gpt2 encoding). */
static void test_own_vectors(void) {
    static const struct {
        const char *name, *text;
        int32_t ids[16];
        size_t n;
    } cases[] = {
        {"bpe_eot_text_is_plain", "<|endoftext|>", {27, 91, 437, 1659, 5239, 91, 29}, 7},
        {"bpe_template_marker", "<|assistant|>\n", {27, 91, 562, 10167, 91, 29, 198}, 7},
        {"bpe_numbers_split_by_regex", "year 2024: 3.14", {1941, 48609, 25, 513, 13, 1415}, 6},
        {"bpe_trailing_spaces", "hi   \nthere", {5303, 220, 220, 220, 198, 8117}, 6},
        {"bpe_replacement_char", "a\xEF\xBF\xBD" "b", {64, 4210, 65}, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[300];
        int ok = encode_equals(cases[i].text, strlen(cases[i].text), cases[i].ids, cases[i].n, why, sizeof why);
        TEST_TRUE(cases[i].name, ok, "%s", why);
    }
}

static void test_invalid_utf8(void) {
    /* Each maximal invalid subsequence becomes U+FFFD: "a\xFF" + "b\xE2\x82" + "c" == "a\uFFFDb\uFFFDc". */
    const char bad[] = "a\xFF" "b\xE2\x82" "c", good[] = "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c";
    ab_ids x = {0}, y = {0};
    ab_status s1 = ab_bpe_encode(enc, bad, strlen(bad), &x), s2 = ab_bpe_encode(enc, good, strlen(good), &y);
    TEST_TRUE("bpe_invalid_utf8_replaced", s1 == AB_OK && s2 == AB_OK && x.n == y.n && x.n > 0 &&
                                               memcmp(x.ids, y.ids, x.n * sizeof *x.ids) == 0,
              "encodings differ (%zu vs %zu ids)", x.n, y.n);
    ab_ids_free(&x);
    ab_ids_free(&y);
    TEST_TRUE("bpe_first_invalid_offset", ab_utf8_first_invalid(bad, strlen(bad)) == 1 &&
                                              ab_utf8_first_invalid(good, strlen(good)) == strlen(good) &&
                                              ab_utf8_first_invalid("\xED\xA0\x80", 3) == 0,
              "offsets wrong");
}

static void test_long_pieces(void) {
    /* One 200000-byte piece of letters and one of spaces: merged in O(n log n), decoded back exactly. */
    size_t n = 200000;
    char *text = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) text[i] = "abcab"[i % 5];
    memset(text + n, ' ', n);
    text[2 * n] = '\0';
    ab_ids ids = {0};
    ab_status st = ab_bpe_encode(enc, text, 2 * n, &ids);
    int ok = st == AB_OK && decodes_to(ids.ids, ids.n, text, 2 * n);
    TEST_TRUE("bpe_long_piece_round_trip", ok, "status %s, %zu ids", ab_status_name(st), ids.n);
    ab_ids_free(&ids);
    free(text);
}

static void test_cache_consistent(void) {
    const char *t = "Tokenisation of uncommonwords, uncommonwords again; antidisestablishmentarianism!";
    ab_ids a = {0}, b = {0};
    ab_bpe_encode(enc, t, strlen(t), &a);
    ab_bpe_encode(enc, t, strlen(t), &b); /* second pass served from the cache */
    TEST_TRUE("bpe_cache_same_result", a.n == b.n && memcmp(a.ids, b.ids, a.n * sizeof *a.ids) == 0 &&
                                           decodes_to(a.ids, a.n, t, strlen(t)), "cached encoding differs");
    ab_ids_free(&a);
    ab_ids_free(&b);
}

static void test_decode_errors(void) {
    int32_t ids[3] = {15496, 50257, 0};
    char *out;
    size_t n;
    ab_status st = ab_bpe_decode(ids, 3, &out, &n);
    TEST_TRUE("bpe_decode_rejects_bad_id", st == AB_ERR_USAGE && strstr(ab_error(), "position 1"), "%s", ab_error());
    int32_t eot = AB_BPE_EOT;
    TEST_TRUE("bpe_decode_eot", decodes_to(&eot, 1, "<|endoftext|>", 13), "EOT does not decode to its text");
}

int main(void) {
    ab_status st = ab_bpe_encoder_new(&enc);
    TEST_TRUE("bpe_tables_load", st == AB_OK, "%s", ab_error());
    if (st != AB_OK) return TEST_SUMMARY();
    test_reference_vectors();
    test_own_vectors();
    test_invalid_utf8();
    test_long_pieces();
    test_cache_consistent();
    test_decode_errors();
    ab_bpe_encoder_free(enc);
    return TEST_SUMMARY();
}
