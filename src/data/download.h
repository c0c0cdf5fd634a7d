/*
 * download.h — a Hugging Face dataset as Tulu JSONL, through the dataset-viewer rows API.
 *
 * GET {endpoint}/rows?dataset=D&config=C&split=S&offset=O&length=N returns
 * {"rows": [{"row_idx": i, "row": {...}, "truncated_cells": [...]}, ...], "num_rows_total": T, ...}; each "row"
 * object is written as one JSON line. libcurl is loaded with dlopen("libcurl.so.4") at run time, never linked.
 *
 * Progress goes to OUT.part (one complete line per row, flushed after each page); when the last row is in, it is
 * renamed to OUT. A later run with OUT.part present resumes after its last complete line. Failed requests (no
 * connection, HTTP 429 or 5xx, a body that is not the expected JSON) are retried with exponential backoff; other
 * HTTP errors stop at once. Rows whose cells the API truncated are not written (they would be corrupt) and are
 * counted in the result.
 */
#ifndef AB_DOWNLOAD_H
#define AB_DOWNLOAD_H

#include <stdint.h>

#include "core/status.h"

typedef struct {
    const char *endpoint;      /* "https://datasets-server.huggingface.co" */
    const char *dataset;       /* "allenai/tulu-v2-sft-mixture" */
    const char *config;        /* "default" */
    const char *split;         /* "train" */
    const char *out;           /* the JSONL file to write */
    uint64_t limit;            /* rows to fetch at most; 0 = all */
    int page_rows;             /* rows per request, 1..100 (100) */
    int max_retries;           /* per request (8) */
    int retry_base_ms;         /* first backoff; doubles per retry, capped at 60 s (1000) */
    int timeout_s;             /* per request (120) */
    void (*progress)(uint64_t rows, uint64_t total, void *user); /* may be NULL */
    void *progress_user;
} ab_download_opts;

typedef struct {
    int already_complete;      /* OUT existed: nothing was fetched */
    uint64_t resumed_from;     /* rows found in OUT.part at the start */
    uint64_t rows;             /* rows in OUT at the end */
    uint64_t skipped_truncated;/* rows the API truncated, not written */
    uint64_t retries;          /* failed requests that were retried */
} ab_download_result;

void ab_download_defaults(ab_download_opts *o);
ab_status ab_download_rows(const ab_download_opts *o, ab_download_result *result);

#endif
