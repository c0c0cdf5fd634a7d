/*
 * download.c — paging through the dataset-viewer rows API with a dlopen'ed libcurl (contract in download.h).
 *
 * Resume state: OUT.part holds the rows written so far, OUT.part.state ({"offset": API rows consumed, "bytes":
 * valid bytes of OUT.part, "skipped": truncated rows}) is rewritten atomically after each page has been appended
 * and synced. On resume OUT.part is cut back to "bytes", so a crash between the two writes loses nothing and
 * duplicates nothing.
 */
#include "data/download.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fsutil.h"

#if HAVE_CURL && HAVE_JANSSON
#include <curl/curl.h>
#include <jansson.h>
#define DOWNLOAD_AVAILABLE 1
#else
#define DOWNLOAD_AVAILABLE 0
#endif

void ab_download_defaults(ab_download_opts *o) {
    memset(o, 0, sizeof *o);
    o->endpoint = "https://datasets-server.huggingface.co";
    o->dataset = "allenai/tulu-v2-sft-mixture";
    o->config = "default";
    o->split = "train";
    o->page_rows = 100;
    o->max_retries = 8;
    o->retry_base_ms = 1000;
    o->timeout_s = 120;
}

#if DOWNLOAD_AVAILABLE

/* ------------------------------------------------------------------ libcurl, loaded at run time */

static struct {
    void *lib;
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *curl);
    const char *(*easy_strerror)(CURLcode code);
    char error[512];
} curl;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void load_curl(void) {
    curl.lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!curl.lib) {
        snprintf(curl.error, sizeof curl.error,
                 "libcurl.so.4 is not installed on this machine (%s); install libcurl4 (Debian/Ubuntu: apt-get install "
                 "libcurl4) or fetch the dataset's Parquet files elsewhere (README)", dlerror());
        return;
    }
    *(void **)&curl.global_init = dlsym(curl.lib, "curl_global_init");
    *(void **)&curl.easy_init = dlsym(curl.lib, "curl_easy_init");
    *(void **)&curl.easy_setopt = dlsym(curl.lib, "curl_easy_setopt");
    *(void **)&curl.easy_perform = dlsym(curl.lib, "curl_easy_perform");
    *(void **)&curl.easy_getinfo = dlsym(curl.lib, "curl_easy_getinfo");
    *(void **)&curl.easy_cleanup = dlsym(curl.lib, "curl_easy_cleanup");
    *(void **)&curl.easy_strerror = dlsym(curl.lib, "curl_easy_strerror");
    if (!curl.global_init || !curl.easy_init || !curl.easy_setopt || !curl.easy_perform || !curl.easy_getinfo ||
        !curl.easy_cleanup || !curl.easy_strerror) {
        snprintf(curl.error, sizeof curl.error, "libcurl.so.4 lacks the curl_easy functions");
        dlclose(curl.lib);
        curl.lib = NULL;
        return;
    }
    if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(curl.error, sizeof curl.error, "curl_global_init failed");
        curl.lib = NULL;
    }
}

/* ------------------------------------------------------------------ one request */

typedef struct {
    char *data;
    size_t len, cap;
} buffer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user) {
    buffer *b = user;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return 0; /* makes curl fail the transfer */
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* GET url into body; *http is the status (0 when no response). Returns 0 on a transport error with why. */
static int http_get(CURL *h, const char *url, int timeout_s, buffer *body, long *http, char *why, size_t why_size) {
    body->len = 0;
    if (body->data) body->data[0] = '\0';
    *http = 0;
    curl.easy_setopt(h, CURLOPT_URL, url);
    curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl.easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl.easy_setopt(h, CURLOPT_TIMEOUT, (long)timeout_s);
    curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl.easy_setopt(h, CURLOPT_USERAGENT, "attnbench/" AB_VERSION);
    curl.easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* any encoding libcurl supports */
    CURLcode rc = curl.easy_perform(h);
    if (rc != CURLE_OK) {
        snprintf(why, why_size, "%s", curl.easy_strerror(rc));
        return 0;
    }
    curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, http);
    return 1;
}

/* ------------------------------------------------------------------ resume state */

typedef struct {
    uint64_t offset, bytes, skipped;
} resume_state;

static ab_status save_state(const char *path, const resume_state *s) {
    char text[256];
    int n = snprintf(text, sizeof text, "{\"offset\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"skipped\": %" PRIu64 "}\n",
                     s->offset, s->bytes, s->skipped);
    return ab_write_file_atomic(path, text, (size_t)n);
}

static ab_status load_state(const char *path, resume_state *s) {
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    json_t *off = json_object_get(j, "offset"), *bytes = json_object_get(j, "bytes"), *sk = json_object_get(j, "skipped");
    if (!json_is_integer(off) || !json_is_integer(bytes) || !json_is_integer(sk) || json_integer_value(off) < 0 ||
        json_integer_value(bytes) < 0 || json_integer_value(sk) < 0) {
        json_decref(j);
        return ab_fail(AB_ERR_FORMAT, "%s: line %d: expected {\"offset\": N, \"bytes\": N, \"skipped\": N} (delete it and "
                                      "the .part file to start over)", path, err.line);
    }
    s->offset = (uint64_t)json_integer_value(off);
    s->bytes = (uint64_t)json_integer_value(bytes);
    s->skipped = (uint64_t)json_integer_value(sk);
    json_decref(j);
    return AB_OK;
}

/* ------------------------------------------------------------------ paging */

static void url_escape(const char *in, char *out, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < n; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.~/", *p)) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Fetches one page (with retries) and returns its parsed JSON, which has a "rows" array. */
static ab_status fetch_page(CURL *h, const ab_download_opts *o, uint64_t offset, int length, buffer *body,
                            json_t **page, ab_download_result *result) {
    char ds[512], cfg[256], split[256], url[2048];
    url_escape(o->dataset, ds, sizeof ds);
    url_escape(o->config, cfg, sizeof cfg);
    url_escape(o->split, split, sizeof split);
    snprintf(url, sizeof url, "%s/rows?dataset=%s&config=%s&split=%s&offset=%" PRIu64 "&length=%d", o->endpoint, ds, cfg,
             split, offset, length);
    char why[512] = "";
    for (int attempt = 0;; attempt++) {
        long http;
        if (http_get(h, url, o->timeout_s, body, &http, why, sizeof why)) {
            if (http == 200) {
                json_error_t err;
                *page = json_loadb(body->data ? body->data : "", body->len, 0, &err);
                if (json_is_array(json_object_get(*page, "rows"))) return AB_OK;
                snprintf(why, sizeof why, "the response is not a rows page (%s at byte %d of %zu)",
                         *page ? "no \"rows\" array" : err.text, err.position, body->len);
                json_decref(*page);
                *page = NULL;
            } else if (http == 429 || http >= 500) {
                snprintf(why, sizeof why, "HTTP %ld", http);
            } else {
                return ab_fail(AB_ERR_IO, "%s: HTTP %ld: %.200s", url, http, body->data ? body->data : "");
            }
        }
        if (attempt >= o->max_retries)
            return ab_fail(AB_ERR_IO, "%s: %s (gave up after %d retries; run the same command again to resume)", url, why,
                           o->max_retries);
        result->retries++;
        long delay = (long)o->retry_base_ms << (attempt < 16 ? attempt : 16);
        sleep_ms(delay > 60000 ? 60000 : delay);
    }
}

/* Appends the page's rows to f; returns the number of rows the page held. */
static ab_status append_rows(FILE *f, const char *part, json_t *page, uint64_t *n_rows, uint64_t *skipped) {
    json_t *rows = json_object_get(page, "rows");
    *n_rows = json_array_size(rows);
    for (size_t i = 0; i < *n_rows; i++) {
        json_t *item = json_array_get(rows, i), *row = json_object_get(item, "row");
        if (json_array_size(json_object_get(item, "truncated_cells")) > 0) {
            (*skipped)++;
            continue;
        }
        if (!json_is_object(row)) return ab_fail(AB_ERR_FORMAT, "rows page: item %zu has no \"row\" object", i);
        if (json_dumpf(row, f, JSON_COMPACT) != 0 || fputc('\n', f) == EOF)
            return ab_fail(AB_ERR_IO, "%s: write failed: %s", part, strerror(errno));
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) return ab_fail(AB_ERR_IO, "%s: write failed: %s", part, strerror(errno));
    return AB_OK;
}

/* Opens OUT.part for appending at the recorded state (cut back to its valid bytes). */
static ab_status open_part(const char *part, const char *state_path, resume_state *st, FILE **f) {
    *st = (resume_state){0, 0, 0};
    if (ab_file_exists(state_path) && ab_file_exists(part)) {
        AB_TRY(load_state(state_path, st));
        if (truncate(part, (off_t)st->bytes) != 0)
            return ab_fail(AB_ERR_IO, "%s: cannot cut back to %" PRIu64 " bytes: %s", part, st->bytes, strerror(errno));
    }
    *f = fopen(part, st->bytes ? "ab" : "wb");
    if (!*f) return ab_fail(AB_ERR_IO, "%s: cannot open: %s", part, strerror(errno));
    return AB_OK;
}

ab_status ab_download_rows(const ab_download_opts *o, ab_download_result *result) {
    memset(result, 0, sizeof *result);
    if (!o->out) return ab_fail(AB_ERR_USAGE, "download: --out FILE is required");
    if (o->page_rows < 1 || o->page_rows > 100)
        return ab_fail(AB_ERR_USAGE, "download: page size %d: expected 1 .. 100 rows", o->page_rows);
    if (ab_file_exists(o->out)) {
        result->already_complete = 1;
        return AB_OK;
    }
    pthread_once(&curl_once, load_curl);
    if (!curl.lib) return ab_fail(AB_ERR_UNSUPPORTED, "download: %s", curl.error);
    char part[4200], state_path[4300];
    snprintf(part, sizeof part, "%s.part", o->out);
    snprintf(state_path, sizeof state_path, "%s.state", part);
    resume_state rs;
    FILE *f = NULL;
    AB_TRY(open_part(part, state_path, &rs, &f));
    result->resumed_from = rs.offset;
    CURL *h = curl.easy_init();
    if (!h) {
        fclose(f);
        return ab_fail(AB_ERR_INTERNAL, "download: curl_easy_init failed");
    }
    buffer body = {0};
    ab_status st = AB_OK;
    uint64_t total = UINT64_MAX;
    while (st == AB_OK) {
        uint64_t want = o->limit ? o->limit : UINT64_MAX;
        if (total < want) want = total;
        if (rs.offset >= want) break;
        int length = want - rs.offset < (uint64_t)o->page_rows ? (int)(want - rs.offset) : o->page_rows;
        json_t *page = NULL;
        st = fetch_page(h, o, rs.offset, length, &body, &page, result);
        if (st != AB_OK) break;
        json_t *jt = json_object_get(page, "num_rows_total");
        if (json_is_integer(jt) && json_integer_value(jt) >= 0) total = (uint64_t)json_integer_value(jt);
        uint64_t n = 0;
        st = append_rows(f, part, page, &n, &rs.skipped);
        json_decref(page);
        if (st != AB_OK) break;
        if (n == 0) break; /* past the end */
        rs.offset += n;
        long pos = ftell(f);
        rs.bytes = pos > 0 ? (uint64_t)pos : 0;
        st = save_state(state_path, &rs);
        if (st == AB_OK && o->progress) o->progress(rs.offset, total < UINT64_MAX ? total : 0, o->progress_user);
    }
    free(body.data);
    curl.easy_cleanup(h);
    if (fclose(f) != 0 && st == AB_OK) st = ab_fail(AB_ERR_IO, "%s: close failed: %s", part, strerror(errno));
    if (st == AB_OK && rename(part, o->out) != 0)
        st = ab_fail(AB_ERR_IO, "%s: rename to %s failed: %s", part, o->out, strerror(errno));
    if (st == AB_OK) unlink(state_path);
    result->rows = rs.offset - rs.skipped;
    result->skipped_truncated = rs.skipped;
    return st;
}

#else

ab_status ab_download_rows(const ab_download_opts *o, ab_download_result *result) {
    memset(result, 0, sizeof *result);
    return ab_fail(AB_ERR_UNSUPPORTED, "download: this build has no libcurl headers or no jansson (install "
                                       "libcurl4-openssl-dev and libjansson-dev, then rebuild)");
}

#endif
