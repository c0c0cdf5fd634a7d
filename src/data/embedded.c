/*
 * embedded.c — files built into the binary with the assembler's .incbin, so that the binary copied to a
 * machine without this repository still has the GPT-2 tables and the built-in sample corpus.
 *
 * The paths are relative to the repository root, where the Makefile runs the compiler. Each blob is
 * followed by one NUL byte (not counted in its size), so text blobs can be parsed as C strings.
 */
#include "data/embedded.h"

#define AB_EMBED(name, file)                                                                       \
    __asm__(".pushsection .rodata\n"                                                               \
            ".balign 16\n"                                                                         \
            ".globl " #name "_start\n" #name "_start:\n"                                           \
            ".incbin \"" file "\"\n"                                                               \
            ".globl " #name "_end\n" #name "_end:\n"                                               \
            ".byte 0\n"                                                                            \
            ".popsection\n");                                                                      \
    extern const char name##_start[], name##_end[];

AB_EMBED(ab_blob_encoder_json, "data/gpt2/encoder.json")
AB_EMBED(ab_blob_vocab_bpe, "data/gpt2/vocab.bpe")
AB_EMBED(ab_blob_sample_jsonl, "data/sample/tulu_sample.jsonl")

static ab_blob make_blob(const char *start, const char *end) { return (ab_blob){start, (size_t)(end - start)}; }

ab_blob ab_embedded_encoder_json(void) { return make_blob(ab_blob_encoder_json_start, ab_blob_encoder_json_end); }
ab_blob ab_embedded_vocab_bpe(void) { return make_blob(ab_blob_vocab_bpe_start, ab_blob_vocab_bpe_end); }
ab_blob ab_embedded_sample_jsonl(void) { return make_blob(ab_blob_sample_jsonl_start, ab_blob_sample_jsonl_end); }
