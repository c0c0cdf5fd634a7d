/*
 * token_ids.c — reads token sequences written as text (token_ids.h), one sequence per line.
 */
#include "data/token_ids.h"

#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Parses the line [p, eol) (1-based number `line`) into ids; *n = 0 for a blank or comment line. */
static ab_status parse_line(const char *path, long line, const char *p, const char *eol, int max_tokens, int vocab_size,
                            int32_t *ids, int *n) {
    *n = 0;
    const char *q = p;
    while (q < eol && is_blank(*q)) q++;
    if (q == eol || *q == '#') return AB_OK;
    while (q < eol) {
        const char *start = q;
        long v = 0;
        while (q < eol && is_digit(*q) && v < vocab_size) v = 10 * v + (*q++ - '0');
        if (q == start || v >= vocab_size || (q < eol && !is_blank(*q)))
            return ab_fail(AB_ERR_FORMAT, "%s:%ld: column %ld: expected a token id in 0..%d", path, line,
                           (long)(start - p) + 1, vocab_size - 1);
        if (*n >= max_tokens)
            return ab_fail(AB_ERR_FORMAT, "%s:%ld: more than %d tokens (the checkpoint's position table)", path, line,
                           max_tokens);
        ids[(*n)++] = (int32_t)v;
        while (q < eol && is_blank(*q)) q++;
    }
    if (*n < 2) return ab_fail(AB_ERR_FORMAT, "%s:%ld: a sequence needs at least 2 tokens", path, line);
    return AB_OK;
}

ab_status ab_token_ids_read(const char *path, int max_tokens, int vocab_size, ab_token_ids_fn each, void *ctx) {
    char *buf;
    size_t len;
    AB_TRY(ab_read_file(path, &buf, &len));
    int32_t *ids = malloc((size_t)(max_tokens > 0 ? max_tokens : 1) * sizeof *ids);
    ab_status s = ids ? AB_OK : ab_fail(AB_ERR_OOM, "%s: out of memory", path);
    long line = 0;
    for (const char *p = buf; s == AB_OK && p < buf + len;) {
        const char *eol = memchr(p, '\n', (size_t)(buf + len - p));
        if (!eol) eol = buf + len;
        int n;
        s = parse_line(path, ++line, p, eol, max_tokens, vocab_size, ids, &n);
        if (s == AB_OK && n > 0) s = each(ctx, ids, n, line);
        p = eol + 1;
    }
    free(ids);
    free(buf);
    return s;
}
