/*
 * test_download.c — the rows-API downloader against a local HTTP server on 127.0.0.1 started by this test (a
 * thread serving pages in the dataset-viewer format, with scripted faults: 429, 500, truncated JSON, a dropped
 * connection, 404). Checks retries, resume after an interruption (including bytes written after the last
 * recorded page), --limit, rows the API truncated, and the no-op on a finished file. The server stops by
 * itself after 30 s at the latest.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "data/download.h"
#include "test_util.h"

#define TOTAL_ROWS 250
#define TRUNCATED_ROW 7 /* the API marks this row's cells truncated */

typedef enum { FAULT_NONE = 0, FAULT_429, FAULT_500, FAULT_TRUNCATED_JSON, FAULT_DROP, FAULT_404 } fault;

static struct {
    int listen_fd, port;
    atomic_int stop;
    pthread_mutex_t lock;
    fault script[8];          /* faults for the next requests, in order */
    int script_n, script_at;
    int ok_pages_left;        /* -1 = unlimited; else after this many good pages, answer 500 */
    int requests;
    long first_offset;        /* offset of the first request since the last reset */
    long last_length;
} srv;

static void server_reset(const fault *script, int n, int ok_pages) {
    pthread_mutex_lock(&srv.lock);
    if (n) memcpy(srv.script, script, (size_t)n * sizeof *script);
    srv.script_n = n;
    srv.script_at = 0;
    srv.ok_pages_left = ok_pages;
    srv.requests = 0;
    srv.first_offset = -1;
    pthread_mutex_unlock(&srv.lock);
}

static char *page_json(long offset, long length) {
    json_t *rows = json_array();
    for (long i = offset; i < offset + length && i < TOTAL_ROWS; i++) {
        char id[32], q[64], a[64];
        snprintf(id, sizeof id, "r%ld", i);
        snprintf(q, sizeof q, "question %ld \xC3\xBC", i);
        snprintf(a, sizeof a, "answer %ld", i);
        json_t *row = json_pack("{s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "dataset", "test", "id", id, "messages", "role",
                                "user", "content", q, "role", "assistant", "content", a);
        json_array_append_new(rows, json_pack("{s:I, s:o, s:[]}", "row_idx", (json_int_t)i, "row", row, "truncated_cells"));
        if (i == TRUNCATED_ROW)
            json_array_append_new(json_object_get(json_array_get(rows, json_array_size(rows) - 1), "truncated_cells"),
                                  json_string("messages"));
    }
    json_t *page = json_pack("{s:[], s:o, s:i, s:i, s:b}", "features", "rows", rows, "num_rows_total", TOTAL_ROWS,
                             "num_rows_per_page", 100, "partial", 0);
    char *text = json_dumps(page, JSON_COMPACT);
    json_decref(page);
    return text;
}

static void respond(int fd, int status, const char *reason, const char *body, size_t body_len) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason, body_len);
    if (write(fd, head, (size_t)n) < 0 || write(fd, body, body_len) < 0) return;
}

static void serve_one(int fd) {
    char req[8192] = "";
    size_t len = 0;
    while (len < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0) return;
        ssize_t got = read(fd, req + len, sizeof req - 1 - len);
        if (got <= 0) return;
        len += (size_t)got;
        req[len] = '\0';
    }
    const char *o = strstr(req, "offset="), *l = strstr(req, "length=");
    long offset = o ? atol(o + 7) : 0, length = l ? atol(l + 7) : 100;
    pthread_mutex_lock(&srv.lock);
    srv.requests++;
    if (srv.first_offset < 0) srv.first_offset = offset;
    srv.last_length = length;
    fault f = srv.script_at < srv.script_n ? srv.script[srv.script_at++] : FAULT_NONE;
    if (f == FAULT_NONE && srv.ok_pages_left == 0) f = FAULT_500;
    if (f == FAULT_NONE && srv.ok_pages_left > 0) srv.ok_pages_left--;
    pthread_mutex_unlock(&srv.lock);
    static const char err[] = "{\"error\": \"try later\"}";
    char *body = page_json(offset, length);
    switch (f) {
    case FAULT_NONE: respond(fd, 200, "OK", body, strlen(body)); break;
    case FAULT_429: respond(fd, 429, "Too Many Requests", err, sizeof err - 1); break;
    case FAULT_500: respond(fd, 500, "Internal Server Error", err, sizeof err - 1); break;
    case FAULT_TRUNCATED_JSON: respond(fd, 200, "OK", body, strlen(body) / 2); break;
    case FAULT_DROP: break; /* close without answering */
    case FAULT_404: respond(fd, 404, "Not Found", "{\"error\": \"no such dataset\"}", 28); break;
    }
    free(body);
}

static void *server_main(void *arg) {
    (void)arg;
    time_t deadline = time(NULL) + 30;
    while (!atomic_load(&srv.stop) && time(NULL) < deadline) {
        struct pollfd p = {srv.listen_fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        int fd = accept(srv.listen_fd, NULL, NULL);
        if (fd < 0) continue;
        serve_one(fd);
        close(fd);
    }
    close(srv.listen_fd);
    return NULL;
}

static int server_start(pthread_t *tid) {
    srv.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (srv.listen_fd < 0 || bind(srv.listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(srv.listen_fd, 16) != 0 ||
        getsockname(srv.listen_fd, (struct sockaddr *)&a, &alen) != 0)
        return 0;
    srv.port = ntohs(a.sin_port);
    pthread_mutex_init(&srv.lock, NULL);
    return pthread_create(tid, NULL, server_main, NULL) == 0;
}

/* ------------------------------------------------------------------ checks */

static char dir[256], endpoint[64];

static void opts_for(ab_download_opts *o, const char *out) {
    ab_download_defaults(o);
    o->endpoint = endpoint;
    o->out = out;
    o->retry_base_ms = 1;
    o->max_retries = 4;
    o->timeout_s = 10;
}

/* Does FILE hold exactly rows first..last-1 (minus the truncated one), in order, as Tulu JSON lines? */
static int file_has_rows(const char *path, long first, long last, char *why, size_t why_size) {
    char *text;
    size_t n;
    if (ab_read_file(path, &text, &n) != AB_OK) {
        snprintf(why, why_size, "%s", ab_error());
        return 0;
    }
    long want = first;
    int ok = 1;
    for (char *line = text, *nl; ok && (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        if (want == TRUNCATED_ROW) want++;
        json_t *row = json_loads(line, 0, NULL);
        char id[32];
        snprintf(id, sizeof id, "r%ld", want);
        const char *got = json_string_value(json_object_get(row, "id"));
        ok = got && strcmp(got, id) == 0 && json_array_size(json_object_get(row, "messages")) == 2;
        if (!ok) snprintf(why, why_size, "line for row %ld is '%.80s'", want, line);
        json_decref(row);
        want++;
    }
    if (ok && want != last) {
        ok = 0;
        snprintf(why, why_size, "ended before row %ld (at %ld)", last, want);
    }
    free(text);
    return ok;
}

static void test_retries_and_truncated_rows(void) {
    char out[400], why[200] = "";
    snprintf(out, sizeof out, "%s/all.jsonl", dir);
    fault script[] = {FAULT_429, FAULT_500, FAULT_TRUNCATED_JSON, FAULT_DROP};
    server_reset(script, 4, -1);
    ab_download_opts o;
    opts_for(&o, out);
    ab_download_result r;
    ab_status st = ab_download_rows(&o, &r);
    TEST_TRUE("download_retries_429_500_truncated_json", st == AB_OK && r.retries == 4, "status %s (%s), %llu retries",
              ab_status_name(st), ab_error(), (unsigned long long)r.retries);
    TEST_TRUE("download_all_rows_in_order", st == AB_OK && file_has_rows(out, 0, TOTAL_ROWS, why, sizeof why) &&
                                                r.rows == TOTAL_ROWS - 1, "%s", why);
    TEST_TRUE("download_skips_rows_the_api_truncated", r.skipped_truncated == 1, "%llu skipped",
              (unsigned long long)r.skipped_truncated);
    char part[420];
    snprintf(part, sizeof part, "%s.part", out);
    TEST_TRUE("download_leaves_no_part_file", !ab_file_exists(part), "%s left behind", part);
    server_reset(NULL, 0, -1);
    st = ab_download_rows(&o, &r);
    TEST_TRUE("download_finished_file_is_noop", st == AB_OK && r.already_complete && srv.requests == 0,
              "%d requests", srv.requests);
}

static void test_resume(void) {
    char out[400], part[420], why[200] = "";
    snprintf(out, sizeof out, "%s/resume.jsonl", dir);
    snprintf(part, sizeof part, "%s.part", out);
    server_reset(NULL, 0, 1); /* one good page, then HTTP 500 for good */
    ab_download_opts o;
    opts_for(&o, out);
    o.max_retries = 2;
    ab_download_result r;
    ab_status st = ab_download_rows(&o, &r);
    TEST_TRUE("download_gives_up_after_retries", st == AB_ERR_IO && strstr(ab_error(), "HTTP 500") &&
                                                     strstr(ab_error(), "resume") && !ab_file_exists(out),
              "status %s: %s", ab_status_name(st), ab_error());
    TEST_TRUE("download_keeps_finished_pages", file_has_rows(part, 0, 100, why, sizeof why), "%s", why);
    /* Bytes after the last recorded page (a crash between appending and recording) must be dropped. */
    FILE *f = fopen(part, "ab");
    fputs("{\"dataset\": \"test\", \"id\": \"r100\", \"mess", f);
    fclose(f);
    server_reset(NULL, 0, -1);
    st = ab_download_rows(&o, &r);
    TEST_TRUE("download_resumes_at_offset", st == AB_OK && r.resumed_from == 100 && srv.first_offset == 100,
              "status %s (%s), resumed from %llu, first request at %ld", ab_status_name(st), ab_error(),
              (unsigned long long)r.resumed_from, srv.first_offset);
    TEST_TRUE("download_resumed_file_exact", st == AB_OK && file_has_rows(out, 0, TOTAL_ROWS, why, sizeof why), "%s", why);
}

static void test_limit_and_errors(void) {
    char out[400], why[200] = "";
    snprintf(out, sizeof out, "%s/limit.jsonl", dir);
    server_reset(NULL, 0, -1);
    ab_download_opts o;
    opts_for(&o, out);
    o.limit = 30;
    ab_download_result r;
    ab_status st = ab_download_rows(&o, &r);
    TEST_TRUE("download_limit", st == AB_OK && srv.requests == 1 && srv.last_length == 30 &&
                                    file_has_rows(out, 0, 30, why, sizeof why), "status %s, %d requests: %s",
              ab_status_name(st), srv.requests, why);
    snprintf(out, sizeof out, "%s/missing.jsonl", dir);
    fault script[] = {FAULT_404};
    server_reset(script, 1, -1);
    opts_for(&o, out);
    st = ab_download_rows(&o, &r);
    TEST_TRUE("download_404_fails_without_retry", st == AB_ERR_IO && strstr(ab_error(), "HTTP 404") && r.retries == 0 &&
                                                      !ab_file_exists(out), "status %s: %s", ab_status_name(st), ab_error());
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ab_test_download_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    pthread_t tid;
    if (!server_start(&tid)) {
        TEST_TRUE("download_server_starts", 0, "cannot listen on 127.0.0.1");
        return TEST_SUMMARY();
    }
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", srv.port);
    void *lib = dlopen("libcurl.so.4", RTLD_NOW);
    if (!lib) { /* the downloader must then say so clearly */
        char out[400];
        snprintf(out, sizeof out, "%s/x.jsonl", dir);
        ab_download_opts o;
        opts_for(&o, out);
        ab_download_result r;
        ab_status st = ab_download_rows(&o, &r);
        TEST_TRUE("download_without_libcurl_says_so", st == AB_ERR_UNSUPPORTED && strstr(ab_error(), "libcurl.so.4"),
                  "%s", ab_error());
        printf("SKIP download against the local server: libcurl.so.4 is not installed\n");
    } else {
        dlclose(lib);
        test_retries_and_truncated_rows();
        test_resume();
        test_limit_and_errors();
    }
    atomic_store(&srv.stop, 1);
    pthread_join(tid, NULL);
    test_remove_dir(dir);
    return TEST_SUMMARY();
}
