/*
 * token_ids.h — token sequences as text, the input of `attnbench eval --input FILE`.
 *
 * One sequence per line: token ids in decimal, separated by blanks (space, tab; the \r of a CRLF line end is
 * a blank). Blank lines and lines whose first non-blank character is '#' are skipped. A sequence has at least
 * 2 and at most max_tokens ids, each below vocab_size. Anything else (a sign, a letter, a NUL byte, digits
 * run into another character) is an error naming the file, the line and the column.
 */
#ifndef AB_TOKEN_IDS_H
#define AB_TOKEN_IDS_H

#include <stdint.h>

#include "core/status.h"

/* Called once per sequence, in file order; ids is valid during the call only; line is 1-based. A status
 * other than AB_OK stops the reading and is returned. */
typedef ab_status (*ab_token_ids_fn)(void *ctx, const int32_t *ids, int n, long line);

ab_status ab_token_ids_read(const char *path, int max_tokens, int vocab_size, ab_token_ids_fn each, void *ctx);

#endif
