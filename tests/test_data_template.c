/*
 * test_data_template.c — the Tulu chat template: exact tokens (reference ids from tiktoken's gpt2 encoding of
 * the open-instruct text) and the loss mask under --loss-on assistant and all; Python-style stripping;
 * parse errors of the conversation parser with their reasons.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "data/bpe.h"
#include "data/template.h"
#include "data/tulu.h"
#include "test_util.h"

static ab_bpe_encoder *enc;
static ab_template_scratch *scratch;

static int encode_line(const char *line, ab_loss_on loss_on, ab_ids *ids, ab_bytes *mask) {
    ab_conversation c;
    char detail[200];
    if (ab_tulu_parse(line, strlen(line), &c, detail, sizeof detail) != AB_BAD_NONE) return 0;
    ab_status st = ab_template_encode(enc, scratch, &c, loss_on, ids, mask);
    ab_conversation_free(&c);
    return st == AB_OK;
}

static void test_two_turns(void) {
    const char *line = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": "
                       "\" Hi! \"}, {\"role\": \"assistant\", \"content\": \"Hello.\\n\"}, {\"role\": \"user\", \"content\": "
                       "\"Bye\"}, {\"role\": \"assistant\", \"content\": \"Bye!\"}]}";
    /* "<|system|>\nBe brief.\n<|user|>\nHi!\n<|assistant|>\nHello." EOT "\n<|user|>\nBye\n<|assistant|>\nBye!" EOT */
    static const int32_t want[] = {27,  91,   10057, 91, 29,  198, 3856, 4506, 13,   198,   27, 91,  7220,
                                   91,  29,   198,   17250, 0, 198, 27,   91,   562,  10167, 91, 29,  198,
                                   15496, 13, 50256, 198, 27, 91,  7220, 91,   29,   198,   3886, 68, 198,
                                   27,  91,   562,   10167, 91, 29,  198, 3886, 68,   0,     50256};
    size_t n = sizeof want / sizeof want[0];
    uint8_t want_mask[sizeof want / sizeof want[0]] = {0};
    for (size_t i = 26; i <= 29; i++) want_mask[i] = 1; /* "Hello." EOT "\n" */
    for (size_t i = 46; i <= 49; i++) want_mask[i] = 1; /* "Bye!" EOT */
    ab_ids ids = {0};
    ab_bytes mask = {0};
    int ok = encode_line(line, AB_LOSS_ASSISTANT, &ids, &mask);
    int same = ok && ids.n == n && memcmp(ids.ids, want, sizeof want) == 0;
    TEST_TRUE("template_tokens_exact", same, "got %zu tokens, want %zu", ids.n, n);
    int mask_same = same && mask.n == n && memcmp(mask.v, want_mask, n) == 0;
    size_t first_diff = 0;
    while (same && first_diff < n && mask.v[first_diff] == want_mask[first_diff]) first_diff++;
    TEST_TRUE("template_mask_assistant", mask_same, "first mask difference at token %zu", first_diff);
    ids.n = mask.n = 0;
    ok = encode_line(line, AB_LOSS_ALL, &ids, &mask);
    size_t ones = 0;
    for (size_t i = 0; ok && i < mask.n; i++) ones += mask.v[i];
    TEST_TRUE("template_mask_all", ok && ids.n == n && ones == n, "%zu of %zu tokens carry loss", ones, ids.n);
    ab_ids_free(&ids);
    ab_bytes_free(&mask);
}

static void test_empty_message_and_final_strip(void) {
    /* An empty user message gives "\n\n" before the next header, tokenised as 198 198 in context. */
    const char *line = "{\"messages\": [{\"role\": \"user\", \"content\": \"   \"}, {\"role\": \"assistant\", \"content\": \"Ok\"}]}";
    static const int32_t want[] = {27, 91, 7220, 91, 29, 198, 198, 27, 91, 562, 10167, 91, 29, 198, 18690, 50256};
    ab_ids ids = {0};
    ab_bytes mask = {0};
    int ok = encode_line(line, AB_LOSS_ASSISTANT, &ids, &mask);
    TEST_TRUE("template_empty_message", ok && ids.n == 16 && memcmp(ids.ids, want, sizeof want) == 0, "got %zu tokens",
              ids.n);
    /* A conversation ending with a user message loses its final newline and carries no loss. */
    ids.n = mask.n = 0;
    const char *user_last = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}";
    ok = encode_line(user_last, AB_LOSS_ASSISTANT, &ids, &mask);
    int none = ok && ids.n > 0 && ids.ids[ids.n - 1] != 198;
    for (size_t i = 0; none && i < mask.n; i++) none = mask.v[i] == 0;
    TEST_TRUE("template_final_newline_stripped_no_loss", none, "last id %d", ids.n ? ids.ids[ids.n - 1] : -1);
    ab_ids_free(&ids);
    ab_bytes_free(&mask);
}

static void test_python_strip(void) {
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"  a b \t\n", "a b"},
        {"\xC2\xA0" "x" "\xE3\x80\x80", "x"},                 /* NBSP, ideographic space */
        {"\xE2\x80\x8B" "x", "\xE2\x80\x8B" "x"},             /* zero-width space is not whitespace */
        {"\x1C" "y" "\x1F", "y"},
        {" \n ", ""},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t s, n;
        ab_py_strip(cases[i].in, strlen(cases[i].in), &s, &n);
        ok &= n == strlen(cases[i].out) && memcmp(cases[i].in + s, cases[i].out, n) == 0;
    }
    TEST_TRUE("template_python_strip", ok, "a case differs from Python's str.strip()");
}

static void test_parse_reasons(void) {
    static const struct {
        const char *line;
        ab_bad_reason reason;
    } cases[] = {
        {"nope", AB_BAD_NOT_JSON},
        {"{\"messages\": [", AB_BAD_NOT_JSON},
        {"[1, 2]", AB_BAD_NOT_OBJECT},
        {"{\"id\": 1}", AB_BAD_NO_MESSAGES},
        {"{\"messages\": {}}", AB_BAD_NO_MESSAGES},
        {"{\"messages\": []}", AB_BAD_EMPTY_CONVERSATION},
        {"{\"messages\": [3]}", AB_BAD_MESSAGE_NOT_OBJECT},
        {"{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}", AB_BAD_UNKNOWN_ROLE},
        {"{\"messages\": [{\"content\": \"x\"}]}", AB_BAD_UNKNOWN_ROLE},
        {"{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", AB_BAD_NON_STRING_CONTENT},
        {"{\"messages\": [{\"role\": \"user\"}]}", AB_BAD_NON_STRING_CONTENT},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"\xFF\"}]}", AB_BAD_INVALID_UTF8},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"a\\u0000b\"}]}", AB_BAD_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ab_conversation c;
        char detail[200], name[80];
        ab_bad_reason r = ab_tulu_parse(cases[i].line, strlen(cases[i].line), &c, detail, sizeof detail);
        if (r == AB_BAD_NONE) ab_conversation_free(&c);
        snprintf(name, sizeof name, "tulu_parse[%s,%zu]", ab_bad_reason_name(cases[i].reason), i);
        TEST_TRUE(name, r == cases[i].reason && (r == AB_BAD_NONE || detail[0]), "got %s (%s)", ab_bad_reason_name(r),
                  detail);
    }
}

int main(void) {
    ab_status st = ab_bpe_encoder_new(&enc);
    scratch = ab_template_scratch_new();
    TEST_TRUE("template_setup", st == AB_OK && scratch, "%s", ab_error());
    if (st != AB_OK || !scratch) return TEST_SUMMARY();
    test_two_turns();
    test_empty_message_and_final_strip();
    test_python_strip();
    test_parse_reasons();
    ab_template_scratch_free(scratch);
    ab_bpe_encoder_free(enc);
    return TEST_SUMMARY();
}
