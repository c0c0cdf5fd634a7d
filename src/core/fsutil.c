/*
 * fsutil.c — atomic writes, whole-file reads, mkdir -p.
 */
#include "core/fsutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ab_status ab_atomic_open(ab_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    if (strlen(path) + 32 >= sizeof af->tmp_path) return ab_fail(AB_ERR_USAGE, "%s: path too long", path);
    snprintf(af->final_path, sizeof af->final_path, "%s", path);
    snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp_path, "wb");
    if (!af->f) return ab_fail(AB_ERR_IO, "%s: cannot create: %s", af->tmp_path, strerror(errno));
    return AB_OK;
}

ab_status ab_atomic_commit(ab_atomic_file *af) {
    if (!af->f) return ab_fail(AB_ERR_INTERNAL, "%s: commit of a file that is not open", af->final_path);
    int bad = ferror(af->f) || fflush(af->f) != 0 || fsync(fileno(af->f)) != 0;
    int err = errno;
    if (fclose(af->f) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    af->f = NULL;
    if (bad) {
        unlink(af->tmp_path);
        return ab_fail(AB_ERR_IO, "%s: write failed: %s", af->final_path, strerror(err));
    }
    if (rename(af->tmp_path, af->final_path) != 0) {
        err = errno;
        unlink(af->tmp_path);
        return ab_fail(AB_ERR_IO, "%s: rename failed: %s", af->final_path, strerror(err));
    }
    return AB_OK;
}

void ab_atomic_abort(ab_atomic_file *af) {
    if (af->f) {
        fclose(af->f);
        af->f = NULL;
        unlink(af->tmp_path);
    }
}

ab_status ab_write_file_atomic(const char *path, const void *data, size_t n) {
    ab_atomic_file af;
    AB_TRY(ab_atomic_open(&af, path));
    if (n && fwrite(data, 1, n, af.f) != n) {
        ab_atomic_abort(&af);
        return ab_fail(AB_ERR_IO, "%s: short write", path);
    }
    return ab_atomic_commit(&af);
}

ab_status ab_read_file(const char *path, char **data, size_t *n) {
    *data = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ab_fail(AB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return ab_fail(AB_ERR_OOM, "%s: out of memory", path);
    }
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return ab_fail(AB_ERR_OOM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, f);
        len += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return ab_fail(AB_ERR_IO, "%s: read error", path);
    }
    buf[len] = '\0';
    *data = buf;
    *n = len;
    return AB_OK;
}

ab_status ab_mkdir_p(const char *path) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return ab_fail(AB_ERR_USAGE, "%s: path too long", path);
    for (char *p = tmp + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return ab_fail(AB_ERR_IO, "%s: cannot create directory: %s", tmp, strerror(errno));
            *p = saved;
            if (saved == '\0') break;
        }
    }
    return AB_OK;
}

int ab_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

ab_status ab_text_lines_open(ab_text_lines *it, const char *path, char *text, size_t len) {
    *it = (ab_text_lines){text, text + len, 0};
    const char *nul = memchr(text, '\0', len);
    if (!nul) return AB_OK;
    size_t line = 1;
    for (const char *q = text; q < nul; q++) line += *q == '\n';
    return ab_fail(AB_ERR_FORMAT, "%s:%zu: a NUL byte: expected a text file", path, line);
}

char *ab_text_lines_next(ab_text_lines *it) {
    while (it->at < it->end) {
        char *line = it->at, *eol = memchr(line, '\n', (size_t)(it->end - line));
        if (!eol) eol = it->end;
        *eol = '\0';
        it->at = eol + 1;
        it->line_no++;
        if (eol > line && eol[-1] == '\r') eol[-1] = '\0';
        if (*line) return line;
    }
    return NULL;
}
