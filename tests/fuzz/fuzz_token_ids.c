/*
 * fuzz_token_ids.c — libFuzzer harness for the text form of token sequences (`eval --input ids.txt`).
 *
 * The input is served as a file (memfd) to ab_token_ids_read with at most 64 tokens per sequence and GPT-2's
 * vocabulary. Each sequence handed back is checked against the harness's own reading of that line: the line
 * holds only digits and blanks, its decimal fields are the ids (2..64 of them, each below 50257), lines come
 * in increasing order; a successful read handed back every line that is not blank or a comment. A sequence
 * starting with id 12345 makes the callback fail, and that status must come back. A rejected file leaves a
 * message naming the file. Any failure is an abort().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "data/token_ids.h"

#define MAX_TOKENS 64
#define VOCAB 50257
#define STOP_ID 12345

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t *start;              /* start[l - 1] .. start[l] - 1: line l and its '\n' */
    long n_lines, last_line, calls;
    int stopped;
} state;

static int blank(uint8_t c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Bytes of 1-based line `line` of the input: [*b, *e). 0 when there is no such line. */
static int find_line(const state *s, long line, size_t *b, size_t *e) {
    if (line < 1 || line > s->n_lines) return 0;
    *b = s->start[line - 1];
    size_t end = s->start[line];
    if (end > *b && s->data[end - 1] == '\n') end--;
    *e = end;
    return 1;
}

/* 1 when the line is skipped (blank, or its first non-blank byte is '#'). */
static int skipped(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n && blank(p[i])) i++;
    return i == n || p[i] == '#';
}

static ab_status each(void *ctx, const int32_t *ids, int n, long line) {
    state *s = ctx;
    size_t b, e;
    if (line <= s->last_line || !find_line(s, line, &b, &e) || skipped(s->data + b, e - b)) abort();
    if (n < 2 || n > MAX_TOKENS) abort();
    int k = 0;
    for (size_t i = b; i < e;) {
        if (blank(s->data[i])) {
            i++;
            continue;
        }
        long v = 0;
        size_t start = i;
        while (i < e && s->data[i] >= '0' && s->data[i] <= '9' && v <= VOCAB) v = 10 * v + (s->data[i++] - '0');
        if (i == start || (i < e && !blank(s->data[i])) || k == n || v != ids[k]) abort();
        k++;
    }
    if (k != n) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= VOCAB) abort();
    s->last_line = line;
    s->calls++;
    if (ids[0] == STOP_ID) {
        s->stopped = 1;
        return ab_fail(AB_ERR_USAGE, "stop requested by the harness");
    }
    return AB_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz_token_ids", 0);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    state s = {.data = data, .size = size, .start = malloc((size + 2) * sizeof(size_t))};
    if (!s.start) abort();
    s.start[0] = 0;
    for (size_t p = 0; p < size;) { /* as the reader cuts: a final line without '\n' is a line */
        const uint8_t *nl = memchr(data + p, '\n', size - p);
        p = nl ? (size_t)(nl - data) + 1 : size;
        s.start[++s.n_lines] = p;
    }
    ab_status st = ab_token_ids_read(path, MAX_TOKENS, VOCAB, each, &s);
    if (s.stopped) {
        if (st != AB_ERR_USAGE) abort();
    } else if (st != AB_OK) {
        if (st != AB_ERR_FORMAT || !strstr(ab_error(), path)) abort();
    } else {
        long kept = 0;
        size_t b, e;
        for (long l = 1; find_line(&s, l, &b, &e); l++) kept += !skipped(data + b, e - b);
        if (kept != s.calls) abort(); /* every sequence line was handed back */
    }
    free(s.start);
    close(fd);
    return 0;
}
