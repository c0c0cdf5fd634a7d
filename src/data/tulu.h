/*
 * tulu.h — reading Tulu-format conversations from JSONL (.jsonl or .jsonl.gz).
 *
 * One JSON object a line: {"dataset": ..., "id": ..., "messages": [{"role": "system"|"user"|"assistant",
 * "content": "..."}, ...]}. Only "messages" is required. Lines that hold only whitespace are ignored. A last
 * line without a final newline is read like any other. A line longer than the reader's limit is skipped
 * without being held in memory and reported as AB_BAD_LINE_TOO_LONG.
 */
#ifndef AB_TULU_H
#define AB_TULU_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define AB_JSONL_MAX_LINE (16u << 20) /* 16 MiB: far above any real conversation */

/* Why a line was rejected; the order is the order stats.json lists them in. */
typedef enum {
    AB_BAD_NONE = 0,
    AB_BAD_LINE_TOO_LONG,
    AB_BAD_INVALID_UTF8,
    AB_BAD_NOT_JSON,
    AB_BAD_NOT_OBJECT,
    AB_BAD_NO_MESSAGES,      /* "messages" missing or not an array */
    AB_BAD_MESSAGE_NOT_OBJECT,
    AB_BAD_UNKNOWN_ROLE,     /* "role" missing, not a string, or not system/user/assistant */
    AB_BAD_NON_STRING_CONTENT,
    AB_BAD_EMPTY_CONVERSATION,
    AB_BAD_COUNT
} ab_bad_reason;

/* Stable snake_case name ("not_json", ...) used in stats.json and messages. */
const char *ab_bad_reason_name(ab_bad_reason r);

typedef enum { AB_ROLE_SYSTEM = 0, AB_ROLE_USER, AB_ROLE_ASSISTANT } ab_role;

typedef struct {
    ab_role role;
    const char *content; /* UTF-8, may contain NUL; owned by the conversation */
    size_t len;
} ab_message;

typedef struct {
    ab_message *messages; /* (n_messages) */
    size_t n_messages;
    void *json;           /* the parsed line, which owns the message texts */
} ab_conversation;

/* Parses one line. Returns AB_BAD_NONE and fills conv, or the reason with a detail ("message 3: role
 * 'tool'") in detail. conv needs ab_conversation_free only on success. */
ab_bad_reason ab_tulu_parse(const char *line, size_t len, ab_conversation *conv, char *detail, size_t detail_size);
void ab_conversation_free(ab_conversation *conv);

/* Line reader. */
typedef struct ab_jsonl_reader ab_jsonl_reader;

/* AB_ERR_IO if the file cannot be opened; gzip is detected by content (needs zlib for .gz). */
ab_status ab_jsonl_open(ab_jsonl_reader **out, const char *path, size_t max_line);
/* Next line: *line (not NUL-terminated, valid until the next call) of *len bytes, its 1-based *lineno.
 * *too_long is set for a line over the limit (then *len is 0). Returns AB_OK with *line NULL at the end;
 * AB_ERR_IO / AB_ERR_FORMAT (corrupt gzip) with the path and line number. */
ab_status ab_jsonl_next(ab_jsonl_reader *r, const char **line, size_t *len, long *lineno, int *too_long);
/* Uncompressed-input bytes consumed so far and the file's size on disk (for progress). */
void ab_jsonl_progress(const ab_jsonl_reader *r, uint64_t *done, uint64_t *total);
/* Did the file end without a final newline? (valid after the last line) */
int ab_jsonl_missing_final_newline(const ab_jsonl_reader *r);
void ab_jsonl_close(ab_jsonl_reader *r);

#endif
