/*
 * bpe.h — GPT-2 byte-level BPE: text to token ids and back, exactly as GPT-2's encoder.py / tiktoken.
 *
 * Text is cut into pieces by GPT-2's pre-tokenisation regex (PCRE2, UTF + UCP, JIT); each piece's bytes
 * are mapped to byte tokens and merged by rank (data/gpt2/vocab.bpe); ids come from data/gpt2/encoder.json.
 * Both tables are compiled into the binary and parsed once, at the first ab_bpe_encoder_new().
 *
 * <|endoftext|> (AB_BPE_EOT) is never produced from text: the characters "<|endoftext|>" inside text are
 * ordinary text. The pipeline appends the token itself where the chat template puts it.
 * Invalid UTF-8 in text is not an error: each maximal invalid subsequence is replaced by U+FFFD (as
 * Python's bytes.decode(errors="replace") does) before pre-tokenisation.
 *
 * An encoder holds per-thread state (regex match data, a cache of pieces already merged): use one per
 * thread. Decoding needs no encoder.
 */
#ifndef AB_BPE_H
#define AB_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define AB_BPE_VOCAB 50257
#define AB_BPE_EOT 50256

/* A growable array of token ids. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} ab_ids;

ab_status ab_ids_push(ab_ids *v, int32_t id);
void ab_ids_free(ab_ids *v);

typedef struct ab_bpe_encoder ab_bpe_encoder;

/* Loads the tables on first use (thread-safe) and returns a new encoder. AB_ERR_FORMAT if an embedded table
 * is corrupt, AB_ERR_UNSUPPORTED if the build lacks PCRE2 or jansson. */
ab_status ab_bpe_encoder_new(ab_bpe_encoder **out);
void ab_bpe_encoder_free(ab_bpe_encoder *e);

/* Appends the ids of text[0..len) to *out. */
ab_status ab_bpe_encode(ab_bpe_encoder *e, const char *text, size_t len, ab_ids *out);

/* The bytes of token `id` (not NUL-terminated); NULL if id is outside the vocabulary. Needs the tables:
 * call after a successful ab_bpe_encoder_new() or ab_bpe_load(). */
const char *ab_bpe_token_bytes(int32_t id, size_t *len);
/* Loads the tables if not yet loaded (what ab_bpe_encoder_new does first). */
ab_status ab_bpe_load(void);
/* Decodes ids into a malloc'ed NUL-terminated buffer of *len bytes (which may be invalid UTF-8 where a
 * multi-byte character is split across a cut). AB_ERR_USAGE naming the position of an id outside the vocab. */
ab_status ab_bpe_decode(const int32_t *ids, size_t n, char **text, size_t *len);

/* Copies text with invalid UTF-8 replaced by U+FFFD into a malloc'ed buffer; *n_replaced counts replacements. */
ab_status ab_utf8_sanitize(const char *text, size_t len, char **out, size_t *out_len, size_t *n_replaced);
/* Byte offset of the first invalid UTF-8 sequence, or len if the text is valid. */
size_t ab_utf8_first_invalid(const char *text, size_t len);

#endif
