/*
 * status.c — status names, exit codes and the thread-local error message buffer.
 */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char error_message[2048];

static const char *const status_names[AB_STATUS_COUNT] = {
    [AB_OK] = "ok",
    [AB_ERR_USAGE] = "usage",
    [AB_ERR_IO] = "io",
    [AB_ERR_FORMAT] = "format",
    [AB_ERR_OOM] = "out-of-memory",
    [AB_ERR_UNSUPPORTED] = "unsupported",
    [AB_ERR_NUMERIC] = "numeric",
    [AB_ERR_DEVICE] = "device",
    [AB_ERR_INTERNAL] = "internal",
};

const char *ab_status_name(ab_status s) {
    return (s >= 0 && s < AB_STATUS_COUNT) ? status_names[s] : "unknown";
}

ab_status ab_fail(ab_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return s;
}

ab_status ab_fail_context(ab_status s, const char *fmt, ...) {
    char old[sizeof error_message];
    memcpy(old, error_message, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof error_message) {
        size_t room = sizeof error_message - (size_t)n - 1, len = strnlen(old, room);
        memcpy(error_message + n, old, len);
        error_message[(size_t)n + len] = '\0';
    }
    return s;
}

const char *ab_error(void) { return error_message; }

void ab_clear_error(void) { error_message[0] = '\0'; }

int ab_exit_code(ab_status s) {
    if (s == AB_OK) return 0;
    return s == AB_ERR_USAGE ? 2 : 1;
}
