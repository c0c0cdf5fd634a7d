/*
 * template.c — Tulu chat template to tokens + loss mask (contract in template.h).
 *
 * The conversation text is built segment by segment (a segment ends where an end-of-text token goes) with
 * the byte spans that carry loss; each segment is tokenised whole and every token takes the loss flag of its
 * first byte. Tokenising whole segments (not message by message) reproduces the tokenisation of the full
 * string exactly, including the rare merges across a message boundary (an empty message's "\n\n").
 */
#include "data/template.h"

#include <stdlib.h>
#include <string.h>

ab_status ab_bytes_push(ab_bytes *b, uint8_t x) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        uint8_t *v = realloc(b->v, cap);
        if (!v) return ab_fail(AB_ERR_OOM, "out of memory for %zu bytes", cap);
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = x;
    return AB_OK;
}

void ab_bytes_free(ab_bytes *b) {
    free(b->v);
    memset(b, 0, sizeof *b);
}

/* Length of the Python whitespace character at p (str.isspace()), 0 if p does not start one. */
static size_t space_len(const unsigned char *p, size_t left) {
    if (left >= 1 && ((p[0] >= 0x09 && p[0] <= 0x0D) || (p[0] >= 0x1C && p[0] <= 0x20))) return 1;
    if (left >= 2 && p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0)) return 2;
    if (left >= 3 && p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) return 3;              /* U+1680 */
    if (left >= 3 && p[0] == 0xE2 && p[1] == 0x80 &&
        (p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF)) return 3;         /* U+2000-200A, 2028, 2029, 202F */
    if (left >= 3 && p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) return 3;              /* U+205F */
    if (left >= 3 && p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) return 3;              /* U+3000 */
    return 0;
}

/* Is there a whitespace character ending exactly at p + end? Returns its length or 0. */
static size_t space_len_before(const unsigned char *p, size_t end) {
    for (size_t k = 1; k <= 3 && k <= end; k++)
        if (space_len(p + end - k, k) == k) return k;
    return 0;
}

void ab_py_strip(const char *text, size_t len, size_t *start, size_t *n) {
    const unsigned char *p = (const unsigned char *)text;
    size_t a = 0, b = len, k;
    while (a < b && (k = space_len(p + a, b - a))) a += k;
    while (b > a && (k = space_len_before(p, b)) && b - k >= a) b -= k;
    *start = a;
    *n = b - a;
}

typedef struct {
    size_t start, end;
} span;

struct ab_template_scratch {
    char *text;
    size_t len, cap;
    span *spans;   /* loss-carrying byte ranges of the segment, in order */
    size_t n_spans, spans_cap;
};

ab_template_scratch *ab_template_scratch_new(void) { return calloc(1, sizeof(ab_template_scratch)); }

void ab_template_scratch_free(ab_template_scratch *s) {
    if (!s) return;
    free(s->text);
    free(s->spans);
    free(s);
}

static ab_status append(ab_template_scratch *s, const char *bytes, size_t n, int loss) {
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n) cap *= 2;
        char *t = realloc(s->text, cap);
        if (!t) return ab_fail(AB_ERR_OOM, "template: out of memory for %zu bytes", cap);
        s->text = t;
        s->cap = cap;
    }
    if (loss && n) {
        if (s->n_spans && s->spans[s->n_spans - 1].end == s->len) {
            s->spans[s->n_spans - 1].end += n;
        } else {
            if (s->n_spans == s->spans_cap) {
                size_t cap = s->spans_cap ? s->spans_cap * 2 : 16;
                span *sp = realloc(s->spans, cap * sizeof *sp);
                if (!sp) return ab_fail(AB_ERR_OOM, "template: out of memory");
                s->spans = sp;
                s->spans_cap = cap;
            }
            s->spans[s->n_spans++] = (span){s->len, s->len + n};
        }
    }
    memcpy(s->text + s->len, bytes, n);
    s->len += n;
    return AB_OK;
}

/* Tokenises the segment, appends tokens and their loss flags, and empties the segment. */
static ab_status flush_segment(ab_bpe_encoder *e, ab_template_scratch *s, ab_ids *tokens, ab_bytes *mask) {
    size_t first = tokens->n;
    AB_TRY(ab_bpe_encode(e, s->text, s->len, tokens));
    size_t offset = 0, k = 0;
    for (size_t i = first; i < tokens->n; i++) {
        while (k < s->n_spans && s->spans[k].end <= offset) k++;
        int loss = k < s->n_spans && s->spans[k].start <= offset;
        AB_TRY(ab_bytes_push(mask, (uint8_t)loss));
        size_t n = 0;
        ab_bpe_token_bytes(tokens->ids[i], &n);
        offset += n;
    }
    s->len = 0;
    s->n_spans = 0;
    return AB_OK;
}

ab_status ab_template_encode(ab_bpe_encoder *e, ab_template_scratch *s, const ab_conversation *c, ab_loss_on loss_on,
                             ab_ids *tokens, ab_bytes *mask) {
    static const char *const headers[] = {"<|system|>\n", "<|user|>\n", "<|assistant|>\n"};
    int all = loss_on == AB_LOSS_ALL;
    s->len = 0;
    s->n_spans = 0;
    for (size_t i = 0; i < c->n_messages; i++) {
        const ab_message *m = &c->messages[i];
        int assistant = m->role == AB_ROLE_ASSISTANT;
        size_t start, n;
        ab_py_strip(m->content, m->len, &start, &n);
        AB_TRY(append(s, headers[m->role], strlen(headers[m->role]), all));
        AB_TRY(append(s, m->content + start, n, all || assistant));
        if (assistant) {
            AB_TRY(flush_segment(e, s, tokens, mask));
            AB_TRY(ab_ids_push(tokens, AB_BPE_EOT));
            AB_TRY(ab_bytes_push(mask, 1));
        }
        AB_TRY(append(s, "\n", 1, all || assistant));
    }
    /* open-instruct strips the whole text, which starts with "<|": only the end of the last segment can change.
     * The stripped segment ends at start + n, or is empty when it was all whitespace. */
    size_t start, n;
    ab_py_strip(s->text, s->len, &start, &n);
    s->len = n ? start + n : 0;
    while (s->n_spans && s->spans[s->n_spans - 1].start >= s->len) s->n_spans--;
    if (s->n_spans && s->spans[s->n_spans - 1].end > s->len) s->spans[s->n_spans - 1].end = s->len;
    if (s->len) AB_TRY(flush_segment(e, s, tokens, mask));
    return AB_OK;
}
