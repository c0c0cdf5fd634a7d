/*
 * status.h — status codes returned by every module, and the per-thread error message.
 *
 * Modules never print to the user and never exit: they return an ab_status and, on failure, leave a
 * human-readable message (file, line or offset, what was expected) with ab_error(). Only src/cli/ turns a
 * status into text and an exit code (ab_exit_code): 0 ok, 2 usage error, 1 any runtime error.
 */
#ifndef AB_STATUS_H
#define AB_STATUS_H

#include <stddef.h>

typedef enum {
    AB_OK = 0,
    AB_ERR_USAGE,        /* bad flag, bad value, invalid combination of options */
    AB_ERR_IO,           /* a file could not be opened, read, written or renamed */
    AB_ERR_FORMAT,       /* a file exists but its content is not what was expected */
    AB_ERR_OOM,          /* host or device allocation failed */
    AB_ERR_UNSUPPORTED,  /* the feature is not implemented on this backend / not built in */
    AB_ERR_NUMERIC,      /* NaN or inf where a finite number was required */
    AB_ERR_DEVICE,       /* CUDA / driver / NVML error */
    AB_ERR_INTERNAL,     /* a bug: an invariant did not hold */
    AB_STATUS_COUNT
} ab_status;

/* Short stable name of a status ("usage", "io", ...). */
const char *ab_status_name(ab_status s);

/* Sets the calling thread's error message (printf-style) and returns `s`, so callers can write
 * `return ab_fail(AB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));`. */
ab_status ab_fail(ab_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with more context ("variant flash: " + old message). Returns `s`. */
ab_status ab_fail_context(ab_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The calling thread's last error message ("" if none). */
const char *ab_error(void);
void ab_clear_error(void);

/* Process exit code for a status: 0 ok, 2 usage, 1 anything else. */
int ab_exit_code(ab_status s);

/* Propagate a failing status from a call. */
#define AB_TRY(expr)                                                                               \
    do {                                                                                           \
        ab_status ab_try_s_ = (expr);                                                              \
        if (ab_try_s_ != AB_OK) return ab_try_s_;                                                  \
    } while (0)

#endif
