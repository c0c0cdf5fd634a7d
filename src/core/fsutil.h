/*
 * fsutil.h — files written atomically (temporary file + fsync + rename), whole-file reads, mkdir -p.
 *
 * Every file attnbench writes goes through here, so an interrupted process never leaves a file that
 * looks complete: readers see the old version or the new one.
 */
#ifndef AB_FSUTIL_H
#define AB_FSUTIL_H

#include <stdio.h>
#include <stddef.h>

#include "core/status.h"

typedef struct {
    FILE *f;                 /* write through this */
    char tmp_path[4096];
    char final_path[4096];
} ab_atomic_file;

/* Opens PATH.tmp.<pid> beside PATH for writing. */
ab_status ab_atomic_open(ab_atomic_file *af, const char *path);
/* Flushes, fsyncs, closes and renames onto the final path. On failure the temporary is removed. */
ab_status ab_atomic_commit(ab_atomic_file *af);
/* Closes and removes the temporary; the final path is untouched. Safe to call twice. */
void ab_atomic_abort(ab_atomic_file *af);
/* Whole buffer to PATH atomically. */
ab_status ab_write_file_atomic(const char *path, const void *data, size_t n);
/* Whole file into a malloc'ed buffer (NUL-terminated; *n excludes the NUL). */
ab_status ab_read_file(const char *path, char **data, size_t *n);
/* The lines of a text file read whole (ab_read_file's buffer, split in place). ab_text_lines_open refuses a NUL
 * byte (AB_ERR_FORMAT naming path and its line: expected a text file); ab_text_lines_next returns the next
 * non-blank line, NUL-terminated and without a trailing '\r', or NULL at the end, with line_no its number
 * (every line counted, blank ones too). */
typedef struct {
    char *at, *end;
    size_t line_no;
} ab_text_lines;
ab_status ab_text_lines_open(ab_text_lines *it, const char *path, char *text, size_t len);
char *ab_text_lines_next(ab_text_lines *it);
/* mkdir -p; AB_ERR_IO naming the component that failed. */
ab_status ab_mkdir_p(const char *path);
int ab_file_exists(const char *path);

#endif
