/*
 * fuzz_bpe.c — libFuzzer harness for the GPT-2 tokenizer.
 *
 * Any bytes are encoded; the ids must be in the vocabulary and decode back to the input with invalid UTF-8
 * replaced by U+FFFD (ab_utf8_sanitize), i.e. the tokenizer is lossless on valid text and never crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/bpe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ab_bpe_encoder *enc;
    if (!enc && ab_bpe_encoder_new(&enc) != AB_OK) abort();
    ab_ids ids = {0};
    if (ab_bpe_encode(enc, (const char *)data, size, &ids) != AB_OK) abort();
    for (size_t i = 0; i < ids.n; i++)
        if (ids.ids[i] < 0 || ids.ids[i] >= AB_BPE_VOCAB || ids.ids[i] == AB_BPE_EOT) abort();
    char *clean, *text;
    size_t clean_len, text_len, replaced;
    if (ab_utf8_sanitize((const char *)data, size, &clean, &clean_len, &replaced) != AB_OK) abort();
    if (ab_bpe_decode(ids.ids, ids.n, &text, &text_len) != AB_OK) abort();
    if (text_len != clean_len || memcmp(text, clean, clean_len) != 0) abort();
    free(text);
    free(clean);
    ab_ids_free(&ids);
    return 0;
}
