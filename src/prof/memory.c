/*
 * memory.c — peak resident set size from /proc/self/status (VmHWM), reset through
 * /proc/self/clear_refs; getrusage as the fallback for the peak.
 */
#include "prof/memory.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* Value in bytes of a "Key:   123 kB" line of /proc/self/status; 0 if absent. */
static size_t proc_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t klen = strlen(key), bytes = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (strncmp(line, key, klen) == 0 && line[klen] == ':' && sscanf(line + klen + 1, "%llu", &kb) == 1) {
            bytes = (size_t)kb * 1024;
            break;
        }
    }
    fclose(f);
    return bytes;
}

size_t ab_peak_rss_bytes(void) {
    size_t b = proc_status_kb("VmHWM");
    if (b) return b;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) return (size_t)ru.ru_maxrss * 1024; /* Linux: kB */
    return 0;
}

int ab_peak_rss_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}
