/*
 * template.h — the Tulu chat template (as open-instruct formats Tulu-v2) to GPT-2 tokens with a loss mask.
 *
 * For each message in order: "<|system|>\n" / "<|user|>\n" / "<|assistant|>\n", the content stripped of
 * surrounding whitespace (Python's str.strip()), "\n"; an assistant message has the end-of-text token
 * (50256) between its content and its newline. As open-instruct does, the whole text is stripped at the end
 * (the final newline goes) and tokenised as one string, the end-of-text tokens splitting it into segments.
 *
 * Loss mask (one byte per token, 1 = the token is a target carrying loss):
 *   AB_LOSS_ASSISTANT  tokens of assistant contents, their end-of-text token and the newline after it (the
 *                      open-instruct labels); role headers, system and user messages carry none.
 *   AB_LOSS_ALL        every token.
 */
#ifndef AB_TEMPLATE_H
#define AB_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "data/bpe.h"
#include "data/tulu.h"

typedef enum { AB_LOSS_ASSISTANT = 0, AB_LOSS_ALL } ab_loss_on;

/* A growable byte array (the loss mask, parallel to an ab_ids). */
typedef struct {
    uint8_t *v;
    size_t n, cap;
} ab_bytes;

ab_status ab_bytes_push(ab_bytes *b, uint8_t x);
void ab_bytes_free(ab_bytes *b);

/* Per-thread scratch for ab_template_encode (the text of the current segment and its loss spans). */
typedef struct ab_template_scratch ab_template_scratch;
ab_template_scratch *ab_template_scratch_new(void);
void ab_template_scratch_free(ab_template_scratch *s);

/* Appends the conversation's tokens to *tokens and their loss flags to *mask. */
ab_status ab_template_encode(ab_bpe_encoder *e, ab_template_scratch *s, const ab_conversation *c, ab_loss_on loss_on,
                             ab_ids *tokens, ab_bytes *mask);

/* Python str.strip(): [*start, *start + *n) is text without leading and trailing whitespace. */
void ab_py_strip(const char *text, size_t len, size_t *start, size_t *n);

#endif
