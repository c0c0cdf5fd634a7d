/*
 * tulu.c — the JSONL line reader (plain or gzip through zlib) and the Tulu conversation parser.
 *
 * The reader keeps one buffer of at most max_line + 1 bytes: lines are returned in place when they fit; a
 * longer line is consumed in buffer-sized steps and reported as too long, so a 100 MB line costs no more
 * memory than a short one.
 */
#include "data/tulu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/bpe.h"

#if HAVE_ZLIB
#include <zlib.h>
#endif
#if HAVE_JANSSON
#include <jansson.h>
#endif

static const char *const reason_names[AB_BAD_COUNT] = {
    [AB_BAD_NONE] = "ok",
    [AB_BAD_LINE_TOO_LONG] = "line_too_long",
    [AB_BAD_INVALID_UTF8] = "invalid_utf8",
    [AB_BAD_NOT_JSON] = "not_json",
    [AB_BAD_NOT_OBJECT] = "not_an_object",
    [AB_BAD_NO_MESSAGES] = "no_messages",
    [AB_BAD_MESSAGE_NOT_OBJECT] = "message_not_an_object",
    [AB_BAD_UNKNOWN_ROLE] = "unknown_role",
    [AB_BAD_NON_STRING_CONTENT] = "non_string_content",
    [AB_BAD_EMPTY_CONVERSATION] = "empty_conversation",
};

const char *ab_bad_reason_name(ab_bad_reason r) {
    return r >= 0 && r < AB_BAD_COUNT ? reason_names[r] : "unknown";
}

/* ------------------------------------------------------------------ reader */

#define READ_CHUNK (1u << 20)

struct ab_jsonl_reader {
    char path[4096];
#if HAVE_ZLIB
    gzFile gz;
#else
    FILE *f;
#endif
    char *buf;
    size_t cap, start, end; /* valid bytes are buf[start..end) */
    size_t max_line;
    long lineno;
    int eof;
    int last_byte_newline;  /* of everything read so far */
    int any_byte;
    uint64_t file_size;
};

ab_status ab_jsonl_open(ab_jsonl_reader **out, const char *path, size_t max_line) {
    *out = NULL;
    ab_jsonl_reader *r = calloc(1, sizeof *r);
    if (!r) return ab_fail(AB_ERR_OOM, "%s: out of memory", path);
    snprintf(r->path, sizeof r->path, "%s", path);
    struct stat st;
    if (stat(path, &st) != 0) {
        free(r);
        return ab_fail(AB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        free(r);
        return ab_fail(AB_ERR_IO, "%s: is a directory, expected a .jsonl or .jsonl.gz file", path);
    }
    r->file_size = (uint64_t)st.st_size;
#if HAVE_ZLIB
    r->gz = gzopen(path, "rb"); /* reads uncompressed files unchanged */
    int opened = r->gz != NULL;
    if (opened) gzbuffer(r->gz, 1 << 18);
#else
    r->f = fopen(path, "rb");
    int opened = r->f != NULL;
#endif
    if (!opened) {
        free(r);
        return ab_fail(AB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    r->max_line = max_line;
    r->cap = max_line + 1 < READ_CHUNK ? max_line + 1 : READ_CHUNK;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        ab_jsonl_close(r);
        return ab_fail(AB_ERR_OOM, "%s: out of memory", path);
    }
    *out = r;
    return AB_OK;
}

/* Appends up to the free space of the buffer from the file. Sets eof at the end. */
static ab_status fill(ab_jsonl_reader *r) {
    size_t room = r->cap - r->end;
#if HAVE_ZLIB
    int got = gzread(r->gz, r->buf + r->end, (unsigned)room);
    if (got < 0) {
        int code;
        const char *msg = gzerror(r->gz, &code);
        return ab_fail(code == Z_ERRNO ? AB_ERR_IO : AB_ERR_FORMAT, "%s:%ld: cannot read: %s", r->path, r->lineno + 1,
                       code == Z_ERRNO ? strerror(errno) : msg);
    }
    size_t n = (size_t)got;
#else
    size_t n = fread(r->buf + r->end, 1, room, r->f);
    if (n == 0 && ferror(r->f)) return ab_fail(AB_ERR_IO, "%s:%ld: read error", r->path, r->lineno + 1);
#endif
    if (n == 0) r->eof = 1;
    else {
        r->any_byte = 1;
        r->last_byte_newline = r->buf[r->end + n - 1] == '\n';
    }
    r->end += n;
    return AB_OK;
}

ab_status ab_jsonl_next(ab_jsonl_reader *r, const char **line, size_t *len, long *lineno, int *too_long) {
    *line = NULL;
    *len = 0;
    *too_long = 0;
    size_t scanned = 0; /* bytes of the current line already searched for '\n' */
    for (;;) {
        char *nl = memchr(r->buf + r->start + scanned, '\n', r->end - r->start - scanned);
        if (nl || (r->eof && (r->end > r->start || *too_long))) {
            size_t n = nl ? (size_t)(nl - (r->buf + r->start)) : r->end - r->start;
            *lineno = ++r->lineno;
            if (*too_long) {
                *len = 0;
                *line = r->buf; /* not NULL: a line was read */
            } else {
                *line = r->buf + r->start;
                *len = n;
            }
            r->start += n + (nl != NULL);
            if (*too_long || n > r->max_line) {
                *too_long = 1;
                *len = 0;
            }
            return AB_OK;
        }
        if (r->eof) return AB_OK; /* nothing left */
        scanned = r->end - r->start;
        if (r->start > 0) { /* move the partial line to the front */
            memmove(r->buf, r->buf + r->start, scanned);
            r->start = 0;
            r->end = scanned;
        }
        if (r->end == r->cap) {
            size_t limit = r->max_line + 1;
            if (r->cap < limit) {
                size_t cap = r->cap * 2 < limit ? r->cap * 2 : limit;
                char *b = realloc(r->buf, cap);
                if (!b) return ab_fail(AB_ERR_OOM, "%s:%ld: out of memory for a %zu-byte line", r->path, r->lineno + 1, cap);
                r->buf = b;
                r->cap = cap;
            } else { /* over the limit: drop what we have, keep reading to the newline */
                *too_long = 1;
                r->end = 0;
                scanned = 0;
            }
        }
        AB_TRY(fill(r));
    }
}

void ab_jsonl_progress(const ab_jsonl_reader *r, uint64_t *done, uint64_t *total) {
#if HAVE_ZLIB
    long off = gzoffset(r->gz);
    *done = off > 0 ? (uint64_t)off : 0;
#else
    long off = ftell(r->f);
    *done = off > 0 ? (uint64_t)off : 0;
#endif
    *total = r->file_size;
}

int ab_jsonl_missing_final_newline(const ab_jsonl_reader *r) { return r->any_byte && !r->last_byte_newline; }

void ab_jsonl_close(ab_jsonl_reader *r) {
    if (!r) return;
#if HAVE_ZLIB
    if (r->gz) gzclose(r->gz);
#else
    if (r->f) fclose(r->f);
#endif
    free(r->buf);
    free(r);
}

/* ------------------------------------------------------------------ conversations */

#if HAVE_JANSSON

static int role_of(const char *s, ab_role *role) {
    static const char *const names[] = {"system", "user", "assistant"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *role = (ab_role)i;
            return 1;
        }
    return 0;
}

ab_bad_reason ab_tulu_parse(const char *line, size_t len, ab_conversation *conv, char *detail, size_t detail_size) {
    memset(conv, 0, sizeof *conv);
    detail[0] = '\0';
    size_t bad = ab_utf8_first_invalid(line, len);
    if (bad != len) {
        snprintf(detail, detail_size, "invalid UTF-8 at byte %zu of the line", bad + 1);
        return AB_BAD_INVALID_UTF8;
    }
    json_error_t err;
    json_t *root = json_loadb(line, len, JSON_ALLOW_NUL, &err);
    if (!root) {
        snprintf(detail, detail_size, "not JSON: %s at column %d", err.text, err.column);
        return AB_BAD_NOT_JSON;
    }
    ab_bad_reason reason = AB_BAD_NONE;
    json_t *msgs = json_object_get(root, "messages");
    if (!json_is_object(root)) {
        reason = AB_BAD_NOT_OBJECT;
        snprintf(detail, detail_size, "expected a JSON object, got %s",
                 json_is_array(root) ? "an array" : json_is_string(root) ? "a string" : "a scalar");
    } else if (!json_is_array(msgs)) {
        reason = AB_BAD_NO_MESSAGES;
        snprintf(detail, detail_size, "expected \"messages\": [...]%s", msgs ? ", got another type" : ", none found");
    } else if (json_array_size(msgs) == 0) {
        reason = AB_BAD_EMPTY_CONVERSATION;
        snprintf(detail, detail_size, "\"messages\" is empty");
    }
    size_t n = reason == AB_BAD_NONE ? json_array_size(msgs) : 0;
    if (n) {
        conv->messages = calloc(n, sizeof *conv->messages);
        if (!conv->messages) {
            json_decref(root);
            snprintf(detail, detail_size, "out of memory");
            return AB_BAD_NOT_JSON;
        }
    }
    for (size_t i = 0; i < n && reason == AB_BAD_NONE; i++) {
        json_t *m = json_array_get(msgs, i);
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        ab_message *out = &conv->messages[i];
        if (!json_is_object(m)) {
            reason = AB_BAD_MESSAGE_NOT_OBJECT;
            snprintf(detail, detail_size, "message %zu: expected an object", i + 1);
        } else if (!json_is_string(role) || !role_of(json_string_value(role), &out->role)) {
            reason = AB_BAD_UNKNOWN_ROLE;
            snprintf(detail, detail_size, "message %zu: role %s%.40s%s, expected system, user or assistant", i + 1,
                     json_is_string(role) ? "'" : "", json_is_string(role) ? json_string_value(role) : "missing or not a string",
                     json_is_string(role) ? "'" : "");
        } else if (!json_is_string(content)) {
            reason = AB_BAD_NON_STRING_CONTENT;
            snprintf(detail, detail_size, "message %zu: \"content\" %s, expected a string", i + 1,
                     content ? "is not a string" : "is missing");
        } else {
            out->content = json_string_value(content);
            out->len = json_string_length(content);
        }
    }
    if (reason != AB_BAD_NONE) {
        free(conv->messages);
        json_decref(root);
        memset(conv, 0, sizeof *conv);
        return reason;
    }
    conv->n_messages = n;
    conv->json = root;
    return AB_BAD_NONE;
}

void ab_conversation_free(ab_conversation *conv) {
    free(conv->messages);
    json_decref((json_t *)conv->json);
    memset(conv, 0, sizeof *conv);
}

#else

ab_bad_reason ab_tulu_parse(const char *line, size_t len, ab_conversation *conv, char *detail, size_t detail_size) {
    memset(conv, 0, sizeof *conv);
    snprintf(detail, detail_size, "this build has no jansson: cannot parse JSON");
    return AB_BAD_NOT_JSON;
}

void ab_conversation_free(ab_conversation *conv) { memset(conv, 0, sizeof *conv); }

#endif
