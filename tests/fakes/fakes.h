/*
 * fakes.h — helpers shared by the measurement tests: a temporary directory, small files in it, and the
 * fake NVML library built from tests/fakes/fake_nvml.c with the system C compiler.
 */
#ifndef AB_TEST_FAKES_H
#define AB_TEST_FAKES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdtemp under $TMPDIR (or /tmp); the path lives in a static buffer per call site's array. */
static inline int fake_tmpdir(char *out, size_t n, const char *tag) {
    const char *base = getenv("TMPDIR");
    snprintf(out, n, "%s/ab-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    return mkdtemp(out) != NULL;
}

/* Writes text to dir/rel (creating no directories). */
static inline int fake_write(const char *dir, const char *rel, const char *text) {
    char p[8400];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

static inline int fake_mkdir(const char *dir, const char *rel) {
    char p[8400];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return mkdir(p, 0755) == 0;
}

/* Removes a temporary tree (rm -rf; only ever called on a fake_tmpdir path). */
static inline void fake_rmtree(const char *dir) {
    char cmd[4200];
    if (!strstr(dir, "/ab-")) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Builds the fake NVML into dir/libnvidia-ml-fake.so from the source beside this header; writes the
 * library path to out. src_dir is the tests/ directory. Returns 1 on success. */
static inline int fake_build_nvml(const char *src_dir, const char *dir, char *out, size_t n) {
    snprintf(out, n, "%s/libnvidia-ml-fake.so", dir);
    char cmd[8400];
    const char *cc = getenv("CC");
    snprintf(cmd, sizeof cmd, "%s -shared -fPIC -O0 -o '%s' '%s/fakes/fake_nvml.c' 2>&1", cc && *cc ? cc : "cc", out, src_dir);
    return system(cmd) == 0;
}

/* The directory of the test sources (from __FILE__ as the Makefile compiles it: tests/test_x.c). */
static inline void fake_src_dir(const char *file, char *out, size_t n) {
    snprintf(out, n, "%s", file);
    char *slash = strrchr(out, '/');
    if (slash) *slash = '\0';
    else snprintf(out, n, ".");
}

#endif
