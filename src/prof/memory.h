/*
 * memory.h — process memory figures for run.json: peak resident set size and its per-variant reset.
 *
 * The allocator high-water marks (by category) live in core/mem.h and are filled by the backends; this
 * adds what the OS sees. Peak RSS is VmHWM from /proc/self/status; writing "5" to /proc/self/clear_refs
 * resets it (Linux >= 4.0), so each variant gets its own peak. Without /proc, getrusage's ru_maxrss is
 * the process lifetime peak and the reset reports that it could not reset.
 */
#ifndef AB_PROF_MEMORY_H
#define AB_PROF_MEMORY_H

#include <stddef.h>

/* Peak resident set size in bytes since start or the last successful reset; 0 if unknown. */
size_t ab_peak_rss_bytes(void);
/* Resets the peak to the current RSS. Returns 1 on success, 0 when not supported (peak is then lifetime). */
int ab_peak_rss_reset(void);

#endif
