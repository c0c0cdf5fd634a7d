/*
 * embedded.h — read-only files compiled into the binary: the GPT-2 BPE tables (data/gpt2/) and the built-in
 * sample corpus (data/sample/tulu_sample.jsonl).
 */
#ifndef AB_EMBEDDED_H
#define AB_EMBEDDED_H

#include <stddef.h>

typedef struct {
    const char *data; /* followed by a NUL byte not counted in size */
    size_t size;
} ab_blob;

ab_blob ab_embedded_encoder_json(void);
ab_blob ab_embedded_vocab_bpe(void);
ab_blob ab_embedded_sample_jsonl(void);

#endif
