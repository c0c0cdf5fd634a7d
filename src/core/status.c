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
    char prefix[512], old[sizeof error_message - sizeof prefix];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", error_message);
    snprintf(error_message, sizeof error_message, "%s%s", prefix, old);
    return s;
}

const char *ab_error(void) { return error_message; }

void ab_clear_error(void) { error_message[0] = '\0'; }

int ab_exit_code(ab_status s) {
    if (s == AB_OK) return 0;
    return s == AB_ERR_USAGE ? 2 : 1;
}
