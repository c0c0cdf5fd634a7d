/*
 * report.c — report.md and a self-contained report.html from one or more results directories, with the
 * figures of plots.c. Both documents are built by the same calls (doc_*), so their content cannot drift:
 * the environment, the configuration, then per metric a table, its figure and a factual summary
 * (best and worst variant and the ratio between them, nothing the numbers do not say), and, when the runs compared
 * repeat a variant under the same configuration, whether its losses repeated bit for bit.
 */
#include "report/report.h"

#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "prof/timer.h"
#include "report/report_data.h"

/* ------------------------------------------------------------------ the two documents */

typedef struct {
    FILE *md, *html;
    char *md_buf, *html_buf;
    size_t md_len, html_len;
    const char *plots_dir;
    int charts;
} doc;

static void html_escaped(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void md_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n') fputc(' ', f);
        else fputc(*s, f);
    }
}

static void doc_h(doc *d, int level, const char *text) {
    fprintf(d->md, "\n%.*s %s\n\n", level, "######", text);
    fprintf(d->html, "<h%d>", level);
    html_escaped(d->html, text);
    fprintf(d->html, "</h%d>\n", level);
}

static void doc_p(doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void doc_p(doc *d, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(d->md, "%s\n\n", buf);
    fputs("<p>", d->html);
    html_escaped(d->html, buf);
    fputs("</p>\n", d->html);
}

/* A cell that reads as a number (or n/a, or empty): such columns are right-aligned. */
static int numeric_cell(const char *s) {
    if (!*s || !strcmp(s, "n/a")) return 1;
    char *end;
    strtod(s, &end);
    return end != s && *end == '\0';
}

static void doc_table(doc *d, int ncols, const char *const *head, int nrows, char cells[][AB_CELL_COLS][AB_CELL_LEN]) {
    int numeric[AB_CELL_COLS];
    for (int c = 0; c < ncols; c++) {
        numeric[c] = c > 0;
        for (int r = 0; r < nrows && numeric[c]; r++) numeric[c] = numeric_cell(cells[r][c]);
    }
    fputs("|", d->md);
    for (int c = 0; c < ncols; c++) {
        fputc(' ', d->md);
        md_cell(d->md, head[c]);
        fputs(" |", d->md);
    }
    fputs("\n|", d->md);
    for (int c = 0; c < ncols; c++) fputs(numeric[c] ? "---:|" : "---|", d->md);
    fputc('\n', d->md);
    fputs("<table>\n<thead><tr>", d->html);
    for (int c = 0; c < ncols; c++) {
        fputs("<th>", d->html);
        html_escaped(d->html, head[c]);
        fputs("</th>", d->html);
    }
    fputs("</tr></thead>\n<tbody>\n", d->html);
    for (int r = 0; r < nrows; r++) {
        fputs("|", d->md);
        fputs("<tr>", d->html);
        for (int c = 0; c < ncols; c++) {
            fputc(' ', d->md);
            md_cell(d->md, cells[r][c]);
            fputs(" |", d->md);
            fputs(numeric[c] ? "<td class=\"n\">" : "<td>", d->html);
            html_escaped(d->html, cells[r][c]);
            fputs("</td>", d->html);
        }
        fputs("\n", d->md);
        fputs("</tr>\n", d->html);
    }
    fputs("\n", d->md);
    fputs("</tbody>\n</table>\n", d->html);
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(FILE *f, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        fputc(b64_alphabet[(v >> 18) & 63], f);
        fputc(b64_alphabet[(v >> 12) & 63], f);
        fputc(i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=', f);
        fputc(i + 2 < n ? b64_alphabet[v & 63] : '=', f);
    }
}

/* A figure: Markdown links the PNG (and SVG) in plots/; HTML inlines the PNG as base64. */
static void doc_figure(doc *d, const char *name, const char *caption) {
    if (!d->charts) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.png", d->plots_dir, name);
    char *png;
    size_t n;
    if (!ab_file_exists(path) || ab_read_file(path, &png, &n) != AB_OK) return;
    fprintf(d->md, "![%s](plots/%s.png)\n\n*%s* ([SVG](plots/%s.svg))\n\n", caption, name, caption, name);
    fputs("<figure><img alt=\"", d->html);
    html_escaped(d->html, caption);
    fputs("\" src=\"data:image/png;base64,", d->html);
    base64(d->html, (const unsigned char *)png, n);
    fputs("\"><figcaption>", d->html);
    html_escaped(d->html, caption);
    fputs("</figcaption></figure>\n", d->html);
    free(png);
}

/* ------------------------------------------------------------------ numbers as text */

static void fmt_num(char *out, double v, const char *fmt) {
    if (isfinite(v)) snprintf(out, AB_CELL_LEN, fmt, v);
    else snprintf(out, AB_CELL_LEN, "n/a");
}

/* Best and worst of a metric over the entries, and how far apart; names ties for the best and the entries
 * without a value. unit may be "". */
static void summarize(doc *d, const ab_report_data *rd, const double *vals, const char *metric, const char *unit,
                      int lower_is_better, const char *fmt) {
    int best = -1, worst = -1, n_have = 0;
    for (int i = 0; i < rd->n; i++) {
        if (!isfinite(vals[i])) continue;
        n_have++;
        if (best < 0 || (lower_is_better ? vals[i] < vals[best] : vals[i] > vals[best])) best = i;
        if (worst < 0 || (lower_is_better ? vals[i] > vals[worst] : vals[i] < vals[worst])) worst = i;
    }
    char missing[1024] = "", ties[1024] = "";
    size_t ml = 0, tl = 0;
    for (int i = 0; i < rd->n; i++) {
        if (!isfinite(vals[i]) && ml < sizeof missing)
            ml += (size_t)snprintf(missing + ml, sizeof missing - ml, "%s%s", ml ? ", " : "", rd->e[i].label);
        else if (isfinite(vals[i]) && best >= 0 && i != best && vals[i] == vals[best] && tl < sizeof ties)
            tl += (size_t)snprintf(ties + tl, sizeof ties - tl, "%s%s", tl ? ", " : "", rd->e[i].label);
    }
    char text[4096], a[64], b[64], diff[64], sp[2] = {unit[0] ? ' ' : '\0', '\0'};
    if (n_have == 0) {
        snprintf(text, sizeof text, "%s: no variant has this figure.", metric);
    } else if (n_have == 1) {
        snprintf(a, sizeof a, fmt, vals[best]);
        snprintf(text, sizeof text, "%s: only %s has this figure (%s%s%s).", metric, rd->e[best].label, a, sp, unit);
    } else if (vals[best] == vals[worst]) {
        snprintf(a, sizeof a, fmt, vals[best]);
        snprintf(text, sizeof text, "%s: the same for all %d variants that have it (%s%s%s).", metric, n_have, a, sp, unit);
    } else {
        snprintf(a, sizeof a, fmt, vals[best]);
        snprintf(b, sizeof b, fmt, vals[worst]);
        snprintf(diff, sizeof diff, fmt, fabs(vals[worst] - vals[best]));
        double lo = fmin(vals[best], vals[worst]), hi = fmax(vals[best], vals[worst]);
        char ratio_text[96] = "", tie_text[1100] = "";
        if (lo > 0) snprintf(ratio_text, sizeof ratio_text, "; the highest is %.2fx the lowest", hi / lo);
        if (ties[0]) snprintf(tie_text, sizeof tie_text, " (tied with %s)", ties);
        snprintf(text, sizeof text, "%s: %s %s (%s%s%s)%s, %s %s (%s%s%s): a difference of %s%s%s%s.", metric,
                 lower_is_better ? "lowest" : "highest", rd->e[best].label, a, sp, unit, tie_text,
                 lower_is_better ? "highest" : "lowest", rd->e[worst].label, b, sp, unit, diff, sp, unit, ratio_text);
    }
    if (missing[0]) {
        size_t l = strlen(text);
        snprintf(text + l, sizeof text - l, " Not available for: %s.", missing);
    }
    doc_p(d, "%s", text);
}

/* ------------------------------------------------------------------ sections */

static void section_environment(doc *d, const ab_report_data *rd) {
    doc_h(d, 2, "Environment");
    for (int r = 0; r < rd->n_runs; r++) {
        json_t *run = rd->runs[r].st.run, *env = json_object_get(run, "env");
        json_t *gpu = json_object_get(env, "gpu"), *cpu = json_object_get(env, "cpu");
        static char cells[16][AB_CELL_COLS][AB_CELL_LEN];
        int n = 0;
#define ROW(k, ...)                                                                                          \
    do {                                                                                                     \
        snprintf(cells[n][0], AB_CELL_LEN, "%s", k);                                                         \
        snprintf(cells[n][1], AB_CELL_LEN, __VA_ARGS__);                                                     \
        n++;                                                                                                 \
    } while (0)
        ROW("run", "%s", rd->runs[r].label);
        ROW("tool", "attnbench %s (%s)", ab_json_str(json_object_get(run, "tool"), "version"),
            ab_json_str(json_object_get(run, "tool"), "git_commit"));
        ROW("started (UTC)", "%s", ab_json_str(run, "started_at"));
        ROW("status", "%s", ab_json_str(run, "status"));
        ROW("host", "%s", ab_json_str(env, "hostname"));
        ROW("CPU", "%s, %lld cores", ab_json_str(cpu, "model"), (long long)json_integer_value(json_object_get(cpu, "cores")));
        if (json_is_true(json_object_get(gpu, "available"))) {
            ROW("GPU", "%s", ab_json_str(gpu, "name"));
            ROW("driver / CUDA", "%s / %s", ab_json_str(gpu, "driver_version"), ab_json_str(gpu, "cuda_driver_version"));
            char pl[64];
            fmt_num(pl, ab_json_num(gpu, "power_limit_w"), "%.0f W");
            ROW("power limit", "%s", pl);
        } else {
            ROW("GPU", "none: %s", ab_json_str(gpu, "reason"));
        }
        ROW("RAPL (CPU energy)", "%s", json_is_true(json_object_get(cpu, "rapl")) ? "readable" : ab_json_str(cpu, "rapl_reason"));
        json_t *cmd = json_object_get(env, "command_line");
        char line[AB_CELL_LEN] = "";
        size_t l = 0, i;
        json_t *a;
        json_array_foreach(cmd, i, a) l += (size_t)snprintf(line + l, l < sizeof line ? sizeof line - l : 0, "%s%s", i ? " " : "",
                                                             json_string_value(a));
        ROW("command line", "%s", line);
#undef ROW
        static const char *const head[] = {"item", "value"};
        doc_table(d, 2, head, n, cells);
    }
}

/* Flattens a JSON object into "a.b = value" rows. */
static void flatten(json_t *o, const char *prefix, char cells[][AB_CELL_COLS][AB_CELL_LEN], int *n, int max) {
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (*n >= max) return;
        char key[AB_CELL_LEN];
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", k);
        if (json_is_object(v)) {
            flatten(v, key, cells, n, max);
            continue;
        }
        snprintf(cells[*n][0], AB_CELL_LEN, "%s", key);
        if (json_is_string(v)) {
            snprintf(cells[*n][1], AB_CELL_LEN, "%s", json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(8));
            snprintf(cells[*n][1], AB_CELL_LEN, "%s", s ? s : "?");
            free(s);
        }
        (*n)++;
    }
}

static void section_config(doc *d, const ab_report_data *rd) {
    doc_h(d, 2, "Configuration");
    static char cells[128][AB_CELL_COLS][AB_CELL_LEN];
    for (int r = 0; r < rd->n_runs; r++) {
        int n = 0;
        json_t *run = rd->runs[r].st.run;
        flatten(json_object_get(run, "config"), "", cells, &n, 96);
        flatten(json_object_get(run, "measurement"), "measurement", cells, &n, 128);
        if (rd->n_runs > 1) doc_p(d, "Run %s:", rd->runs[r].label);
        static const char *const head[] = {"setting", "value"};
        doc_table(d, 2, head, n, cells);
    }
}

/* One metric table: a row per entry with the label and ncols-1 formatted values from get(). */
typedef void (*row_fn)(const ab_report_entry *e, char row[AB_CELL_COLS][AB_CELL_LEN]);

static void entry_table(doc *d, const ab_report_data *rd, int ncols, const char *const *head, row_fn fn) {
    static char cells[AB_REPORT_MAX_ENTRIES][AB_CELL_COLS][AB_CELL_LEN];
    for (int i = 0; i < rd->n; i++) {
        snprintf(cells[i][0], AB_CELL_LEN, "%s", rd->e[i].label);
        fn(&rd->e[i], cells[i]);
    }
    doc_table(d, ncols, head, rd->n, cells);
}

static void row_status(const ab_report_entry *e, char row[AB_CELL_COLS][AB_CELL_LEN]) {
    snprintf(row[1], AB_CELL_LEN, "%s", e->name);
    snprintf(row[2], AB_CELL_LEN, "%s", ab_json_str(e->v, "status"));
    snprintf(row[3], AB_CELL_LEN, "%s", ab_json_str(e->v, "failure_reason"));
    snprintf(row[4], AB_CELL_LEN, "%d", (int)json_array_size(json_object_get(e->v, "epochs")));
    const char *commit = ab_json_str(json_object_get(e->v, "tool"), "git_commit"); /* absent in older runs */
    snprintf(row[5], AB_CELL_LEN, "%s", commit[0] ? commit : "n/a");
}

static void row_time(const ab_report_entry *e, char row[AB_CELL_COLS][AB_CELL_LEN]) {
    json_t *st = json_object_get(e->v, "step_time_ms");
    fmt_num(row[1], ab_json_num(e->v, "train_time_s"), "%.2f");
    fmt_num(row[2], e->mean_epoch_s, "%.2f");
    fmt_num(row[3], ab_json_num(st, "median"), "%.2f");
    fmt_num(row[4], ab_json_num(st, "p10"), "%.2f");
    fmt_num(row[5], ab_json_num(st, "p90"), "%.2f");
    fmt_num(row[6], ab_json_num(e->v, "tokens_per_s"), "%.0f");
    fmt_num(row[7], ab_json_num(e->v, "effective_tokens_per_s"), "%.0f");
}

#define MIB (1024.0 * 1024.0)

static void row_memory(const ab_report_entry *e, char row[AB_CELL_COLS][AB_CELL_LEN]) {
    json_t *m = json_object_get(e->v, "memory"), *at = json_object_get(m, "at_peak_by_category");
    fmt_num(row[1], ab_json_num(m, "peak_allocated_bytes") / MIB, "%.1f");
    for (int c = 0; c < MEM_CATEGORY_COUNT; c++)
        fmt_num(row[2 + c], ab_json_num(at, mem_category_name((mem_category)c)) / MIB, "%.1f");
    fmt_num(row[2 + MEM_CATEGORY_COUNT], ab_json_num(m, "peak_rss_bytes") / MIB, "%.1f");
    fmt_num(row[3 + MEM_CATEGORY_COUNT], ab_json_num(m, "peak_device_bytes") / MIB, "%.1f");
}

static void row_flops(const ab_report_entry *e, char row[AB_CELL_COLS][AB_CELL_LEN]) {
    json_t *f = json_object_get(e->v, "flops");
    fmt_num(row[1], ab_json_num(f, "model_per_step") * 1e-9, "%.3f");
    fmt_num(row[2], ab_json_num(f, "hardware_per_step") * 1e-9, "%.3f");
    fmt_num(row[3], 100.0 * ab_json_num(f, "attention_share"), "%.1f");
    fmt_num(row[4], ab_json_num(f, "full_tt_per_step") * 1e-9, "%.3f");
    fmt_num(row[5], ab_json_num(f, "achieved_tflops"), "%.4f");
    fmt_num(row[6], 100.0 * ab_json_num(f, "mfu"), "%.2f");
}

static void row_energy(const ab_report_entry *e, char row[AB_CELL_COLS][AB_CELL_LEN]) {
    json_t *en = json_object_get(e->v, "energy");
    fmt_num(row[1], ab_json_num(en, "gpu_j"), "%.1f");
    fmt_num(row[2], ab_json_num(en, "gpu_above_idle_j"), "%.1f");
    fmt_num(row[3], ab_json_num(en, "cpu_j"), "%.1f");
    fmt_num(row[4], ab_json_num(en, "j_per_token") * 1e3, "%.4f");
    fmt_num(row[5], ab_json_num(en, "co2e_g"), "%.3f");
    fmt_num(row[6], ab_json_num(en, "mean_power_w"), "%.1f");
    fmt_num(row[7], ab_json_num(en, "max_power_w"), "%.1f");
    snprintf(row[8], AB_CELL_LEN, "%s", json_is_true(json_object_get(en, "reliable")) ? "yes" : "no");
}

static void row_loss(const ab_report_entry *e, char row[AB_CELL_COLS][AB_CELL_LEN]) {
    fmt_num(row[1], e->final_train_loss, "%.4f");
    fmt_num(row[2], e->final_val_loss, "%.4f");
    fmt_num(row[3], exp(e->final_val_loss), "%.2f");
    fmt_num(row[4], e->best_val_loss, "%.4f");
}

static void row_inference(const ab_report_entry *e, char row[AB_CELL_COLS][AB_CELL_LEN]) {
    for (int b = 0; b < 2; b++) {
        fmt_num(row[1 + b * 4], e->prefill_ms[b], "%.3f");
        fmt_num(row[2 + b * 4], e->decode_ms[b][0], "%.3f");
        fmt_num(row[3 + b * 4], e->decode_ms[b][1], "%.3f");
        fmt_num(row[4 + b * 4], e->decode_ms[b][2], "%.3f");
    }
    json_t *inf = json_object_get(e->v, "inference");
    fmt_num(row[9], ab_json_num(inf, "cache_bytes_per_token_analytical"), "%.0f");
    fmt_num(row[10], ab_json_num(inf, "cache_bytes_measured") / MIB, "%.2f");
}

static void row_size(const ab_report_entry *e, char row[AB_CELL_COLS][AB_CELL_LEN]) {
    json_t *p = json_object_get(e->v, "params");
    fmt_num(row[1], ab_json_num(p, "total") * 1e-6, "%.3f");
    fmt_num(row[2], ab_json_num(p, "attention") * 1e-6, "%.3f");
    fmt_num(row[3], ab_json_num(e->v, "checkpoint_bytes") / MIB, "%.2f");
}

/* Collects one number per entry. */
static void values(const ab_report_data *rd, double *out, double (*get)(const ab_report_entry *)) {
    for (int i = 0; i < rd->n; i++) out[i] = get(&rd->e[i]);
}

static double v_train_time(const ab_report_entry *e) { return ab_json_num(e->v, "train_time_s"); }
static double v_step_ms(const ab_report_entry *e) { return ab_json_num(json_object_get(e->v, "step_time_ms"), "median"); }
static double v_tps(const ab_report_entry *e) { return ab_json_num(e->v, "tokens_per_s"); }
static double v_peak_alloc(const ab_report_entry *e) {
    return ab_json_num(json_object_get(e->v, "memory"), "peak_allocated_bytes") / MIB;
}
static double v_peak_dev(const ab_report_entry *e) {
    return ab_json_num(json_object_get(e->v, "memory"), "peak_device_bytes") / MIB;
}
static double v_flops(const ab_report_entry *e) { return ab_json_num(json_object_get(e->v, "flops"), "model_per_step") * 1e-9; }
static double v_mfu(const ab_report_entry *e) { return 100.0 * ab_json_num(json_object_get(e->v, "flops"), "mfu"); }
static double v_energy(const ab_report_entry *e) { return ab_json_num(json_object_get(e->v, "energy"), "total_j"); }
static double v_jpt(const ab_report_entry *e) { return 1e3 * ab_json_num(json_object_get(e->v, "energy"), "j_per_token"); }
static double v_val(const ab_report_entry *e) { return e->final_val_loss; }
static double v_train_loss(const ab_report_entry *e) { return e->final_train_loss; }
static double v_prefill1(const ab_report_entry *e) { return e->prefill_ms[0]; }
static double v_decode1(const ab_report_entry *e) { return e->decode_ms[0][0]; }
static double v_decodeB(const ab_report_entry *e) { return e->decode_ms[1][0]; }
static double v_params(const ab_report_entry *e) { return ab_json_num(json_object_get(e->v, "params"), "total") * 1e-6; }
static double v_ckpt(const ab_report_entry *e) { return ab_json_num(e->v, "checkpoint_bytes") / MIB; }

static void section_metrics(doc *d, const ab_report_data *rd) {
    double vals[AB_REPORT_MAX_ENTRIES];

    doc_h(d, 2, "Variants");
    static const char *const h_status[] = {"variant", "name", "status", "failure reason", "epochs", "commit"};
    entry_table(d, rd, 6, h_status, row_status);

    doc_h(d, 2, "Training time");
    doc_p(d, "Epoch time runs from the first batch to the device synchronisation after the last optimizer step "
             "(evaluation excluded). Step times are steady-state statistics (warm-up steps excluded); tokens/s = "
             "tokens per step / median step time; effective tokens/s counts only positions that carry loss.");
    static const char *const h_time[] = {"variant", "train time (s)", "mean epoch (s)", "step median (ms)", "step p10 (ms)",
                                         "step p90 (ms)", "tokens/s", "effective tokens/s"};
    entry_table(d, rd, 8, h_time, row_time);
    doc_figure(d, "epoch_time", "Training time per epoch (s)");
    doc_figure(d, "tokens_per_s", "Training throughput (tokens/s, steady state)");
    values(rd, vals, v_train_time);
    summarize(d, rd, vals, "Total training time", "s", 1, "%.2f");
    values(rd, vals, v_step_ms);
    summarize(d, rd, vals, "Median step time", "ms", 1, "%.2f");
    values(rd, vals, v_tps);
    summarize(d, rd, vals, "Throughput", "tokens/s", 0, "%.0f");

    doc_h(d, 2, "Memory");
    doc_p(d, "Peak allocated: high-water mark of the tool's own allocator, with the breakdown by category at that "
             "moment (MiB). Peak device: device-wide used memory (includes the CUDA context and library workspaces). "
             "Peak RSS: resident set of the process.");
    static const char *h_mem[3 + MEM_CATEGORY_COUNT + 1];
    static char h_mem_text[MEM_CATEGORY_COUNT][64];
    h_mem[0] = "variant";
    h_mem[1] = "peak allocated (MiB)";
    for (int c = 0; c < MEM_CATEGORY_COUNT; c++) {
        snprintf(h_mem_text[c], sizeof h_mem_text[c], "%s (MiB)", mem_category_name((mem_category)c));
        h_mem[2 + c] = h_mem_text[c];
    }
    h_mem[2 + MEM_CATEGORY_COUNT] = "peak RSS (MiB)";
    h_mem[3 + MEM_CATEGORY_COUNT] = "peak device (MiB)";
    entry_table(d, rd, 4 + MEM_CATEGORY_COUNT, h_mem, row_memory);
    doc_figure(d, "memory", "Peak allocated memory by category (MiB)");
    values(rd, vals, v_peak_alloc);
    summarize(d, rd, vals, "Peak allocated memory", "MiB", 1, "%.1f");
    values(rd, vals, v_peak_dev);
    summarize(d, rd, vals, "Peak device memory", "MiB", 1, "%.1f");

    doc_h(d, 2, "FLOPs");
    doc_p(d, "Analytical FLOPs per optimizer step (a multiply-add = 2, matrix products only, backward = 2x forward). "
             "Model = what the math needs (causal-aware); hardware = what the kernels execute; full TxT = the "
             "attention core counted without causal savings (PyTorch FlopCounterMode convention). MFU = achieved / "
             "device peak (null when the device is not in the peak table).");
    static const char *const h_flops[] = {"variant", "model (GFLOP/step)", "hardware (GFLOP/step)", "attention share (%)",
                                          "full TxT (GFLOP/step)", "achieved (TFLOP/s)", "MFU (%)"};
    entry_table(d, rd, 7, h_flops, row_flops);
    doc_figure(d, "flops", "Model FLOPs per step: attention vs the rest of the model");
    values(rd, vals, v_flops);
    summarize(d, rd, vals, "Model FLOPs per step", "GFLOP", 1, "%.3f");
    values(rd, vals, v_mfu);
    summarize(d, rd, vals, "MFU", "%", 0, "%.2f");

    doc_h(d, 2, "Energy and power");
    doc_p(d, "GPU energy is the difference of NVML's energy counter at epoch boundaries (after a device "
             "synchronisation); CPU energy is the RAPL package counter. Above idle subtracts the idle power measured "
             "before the first variant. Totals are over the training epochs. Windows under 1 s are marked unreliable.");
    static const char *const h_energy[] = {"variant", "GPU (J)", "GPU above idle (J)", "CPU (J)", "mJ/token", "CO2e (g)",
                                           "mean power (W)", "max power (W)", "reliable"};
    entry_table(d, rd, 9, h_energy, row_energy);
    doc_figure(d, "energy", "Training energy per variant (sorted)");
    doc_figure(d, "power", "Power over the run");
    values(rd, vals, v_energy);
    summarize(d, rd, vals, "Training energy (GPU + CPU measured)", "J", 1, "%.1f");
    values(rd, vals, v_jpt);
    summarize(d, rd, vals, "Energy per token", "mJ", 1, "%.4f");

    doc_h(d, 2, "Loss");
    static const char *const h_loss[] = {"variant", "final train loss", "final val loss", "final val perplexity",
                                         "best val loss"};
    entry_table(d, rd, 5, h_loss, row_loss);
    doc_figure(d, "loss_epochs", "Train (solid) and validation (dashed) loss per epoch");
    doc_figure(d, "loss_steps", "Training loss per step");
    values(rd, vals, v_val);
    summarize(d, rd, vals, "Final validation loss", "", 1, "%.4f");
    values(rd, vals, v_train_loss);
    summarize(d, rd, vals, "Final train loss", "", 1, "%.4f");

    doc_h(d, 2, "Inference");
    int bB = rd->infer_batch > 0 ? rd->infer_batch : 0;
    static const char *h_inf[11];
    static char h_text[8][64];
    h_inf[0] = "variant";
    for (int b = 0; b < 2; b++) {
        int batch = b == 0 ? 1 : bB;
        snprintf(h_text[b * 4 + 0], 64, "prefill b%d (ms)", batch);
        snprintf(h_text[b * 4 + 1], 64, "decode p50 b%d (ms/token)", batch);
        snprintf(h_text[b * 4 + 2], 64, "decode p90 b%d", batch);
        snprintf(h_text[b * 4 + 3], 64, "decode p99 b%d", batch);
        for (int k = 0; k < 4; k++) h_inf[1 + b * 4 + k] = h_text[b * 4 + k];
    }
    h_inf[9] = "cache (bytes/token, analytical)";
    h_inf[10] = "cache measured (MiB)";
    entry_table(d, rd, 11, h_inf, row_inference);
    doc_figure(d, "prefill", "Prefill latency (median, ms)");
    doc_figure(d, "decode", "Decode latency per token (bars p50, whiskers p90 to p99, ms)");
    values(rd, vals, v_prefill1);
    summarize(d, rd, vals, "Prefill latency at batch 1", "ms", 1, "%.3f");
    values(rd, vals, v_decode1);
    summarize(d, rd, vals, "Decode latency p50 at batch 1", "ms/token", 1, "%.3f");
    values(rd, vals, v_decodeB);
    summarize(d, rd, vals, "Decode latency p50 at the training batch", "ms/token", 1, "%.3f");

    doc_h(d, 2, "Model size");
    static const char *const h_size[] = {"variant", "parameters (M)", "attention parameters (M)", "checkpoint (MiB)"};
    entry_table(d, rd, 4, h_size, row_size);
    values(rd, vals, v_params);
    summarize(d, rd, vals, "Parameters", "M", 1, "%.3f");
    values(rd, vals, v_ckpt);
    summarize(d, rd, vals, "Checkpoint size", "MiB", 1, "%.2f");
}

/* ------------------------------------------------------------------ repeated runs */

/* max(a, b), NaN when either is (a missing loss stays visible as n/a) */
static double max_or_nan(double a, double b) { return isnan(a) || isnan(b) ? NAN : fmax(a, b); }

/* The largest |a - b| over the epochs both have, of one loss; identical stays 1 while every pair is the same number
 * (a NaN is never the same: it clears identical and makes the difference NaN). */
static double epoch_loss_gap(const json_t *ea, const json_t *eb, size_t n, const char *key, int *identical) {
    double worst = 0.0;
    for (size_t k = 0; k < n; k++) {
        const double gap = fabs(ab_json_num(json_array_get(ea, k), key) - ab_json_num(json_array_get(eb, k), key));
        if (!(gap == 0.0)) *identical = 0;
        worst = max_or_nan(worst, gap);
    }
    return worst;
}

/* A variant that finished in several of the runs compared, under the same configuration (a repeated study): whether
 * its training repeated bit for bit (the same train and validation loss at every epoch), how far apart the losses
 * got, and how much the training time moved. Nothing when no variant repeats. */
static int finished_ok(const ab_report_entry *e) { return strcmp(ab_json_str(e->v, "status"), "ok") == 0; }

/* cell = the tool commit that trained the variant in each of the n runs (n/a where run.json has none), one where they
 * all agree: a difference between two commits may be the code's, not noise */
static void repeat_commits(char *cell, const ab_report_data *rd, const int *member, int n) {
    const char *first = ab_json_str(json_object_get(rd->e[member[0]].v, "tool"), "git_commit");
    int same = 1;
    cell[0] = '\0';
    for (int m = 0; m < n; m++) {
        const char *c = ab_json_str(json_object_get(rd->e[member[m]].v, "tool"), "git_commit");
        if (strcmp(c, first) != 0) same = 0;
        const size_t used = strlen(cell);
        snprintf(cell + used, AB_CELL_LEN - used, "%s%s", m ? " / " : "", c[0] ? c : "n/a");
    }
    if (same) snprintf(cell, AB_CELL_LEN, "%s", first[0] ? first : "n/a");
}

static void section_repeats(doc *d, const ab_report_data *rd) {
    static char cells[AB_REPORT_MAX_ENTRIES][AB_CELL_COLS][AB_CELL_LEN];
    int rows = 0, grouped[AB_REPORT_MAX_ENTRIES] = {0};
    for (int i = 0; i < rd->n && rd->n_runs > 1; i++) {
        const ab_report_entry *a = &rd->e[i];
        if (grouped[i] || !finished_ok(a)) continue;
        const json_t *config = json_object_get(rd->runs[a->run].st.run, "config");
        int member[AB_REPORT_MAX_RUNS], n = 0;
        member[n++] = i;
        for (int j = i + 1; j < rd->n && n < AB_REPORT_MAX_RUNS; j++) {
            const ab_report_entry *b = &rd->e[j];
            if (grouped[j] || b->run == a->run || strcmp(b->name, a->name) != 0 || !finished_ok(b) ||
                !json_equal(config, json_object_get(rd->runs[b->run].st.run, "config")))
                continue;
            grouped[j] = 1;
            member[n++] = j;
        }
        if (n < 2) continue;
        const json_t *ea = json_object_get(a->v, "epochs");
        size_t epochs = json_array_size(ea);
        for (int m = 1; m < n; m++) {
            const size_t em = json_array_size(json_object_get(rd->e[member[m]].v, "epochs"));
            if (em < epochs) epochs = em;
        }
        int identical = epochs > 0;
        double gap_val = 0.0, gap_train = 0.0, t_min = INFINITY, t_max = -INFINITY;
        char times[AB_CELL_LEN] = "";
        for (int m = 0; m < n; m++) {
            const ab_report_entry *e = &rd->e[member[m]];
            if (m > 0) {
                const json_t *eb = json_object_get(e->v, "epochs");
                gap_val = max_or_nan(gap_val, epoch_loss_gap(ea, eb, epochs, "val_loss", &identical));
                gap_train = max_or_nan(gap_train, epoch_loss_gap(ea, eb, epochs, "train_loss", &identical));
            }
            const double t = v_train_time(e);
            t_min = fmin(t_min, t);
            t_max = fmax(t_max, t);
            const size_t used = strlen(times);
            snprintf(times + used, sizeof times - used, "%s%.2f", m ? " / " : "", t);
        }
        char(*row)[AB_CELL_LEN] = cells[rows++];
        snprintf(row[0], AB_CELL_LEN, "%s", ab_json_str(a->v, "title")[0] ? ab_json_str(a->v, "title") : a->name);
        snprintf(row[1], AB_CELL_LEN, "%d", n);
        snprintf(row[2], AB_CELL_LEN, "%zu", epochs);
        snprintf(row[3], AB_CELL_LEN, "%s", identical ? "identical" : "differ");
        fmt_num(row[4], gap_val, "%.4g");
        fmt_num(row[5], gap_train, "%.4g");
        snprintf(row[6], AB_CELL_LEN, "%s", times);
        fmt_num(row[7], t_min > 0 ? 100.0 * (t_max - t_min) / t_min : NAN, "%.2f");
        repeat_commits(row[8], rd, member, n);
    }
    if (rows == 0) return;
    doc_h(d, 2, "Repeated runs");
    doc_p(d, "Variants that finished in several of the runs compared under the same configuration. Losses identical: "
             "every epoch's train and validation loss is the same number in each run (training repeated bit for bit); "
             "otherwise the largest differences over the epochs compared, which say how much of a loss difference "
             "between variants is run-to-run noise (non-deterministic kernels, such as floating-point atomics). "
             "Training times and tool commits in run order; spread = (max - min) / min; one commit where every run "
             "has the same (runs of different commits may differ by a change of the code, not only by noise).");
    static const char *const head[] = {"variant", "runs", "epochs compared", "losses", "largest val loss difference",
                                       "largest train loss difference", "train time (s)", "time spread (%)",
                                       "tool commit"};
    doc_table(d, 9, head, rows, cells);
}

static const char *const html_head =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>attnbench report</title>\n<style>\n"
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\n"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\n"
    "th,td{border:1px solid #ccc;padding:0.3em 0.6em}th{background:#f3f3f3}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}\nfigure{margin:1.5em 0}img{max-width:100%}figcaption{color:#555;font-size:0.9em}\n"
    "</style></head><body>\n";

ab_status ab_report_write(const char *dir, const ab_report_opts *opts, ab_report_outcome *out) {
    memset(out, 0, sizeof *out);
    ab_report_data *rd = calloc(1, sizeof *rd);
    if (!rd) return ab_fail(AB_ERR_OOM, "report: out of memory");
    ab_status st = ab_report_data_load(dir, opts->compare_dirs, opts->n_compare, rd);
    if (st != AB_OK) {
        ab_report_data_free(rd);
        free(rd);
        return st;
    }
    snprintf(out->plots_dir, sizeof out->plots_dir, "%s/plots", dir);
    snprintf(out->md_path, sizeof out->md_path, "%s/report.md", dir);
    snprintf(out->html_path, sizeof out->html_path, "%s/report.html", dir);
    st = ab_mkdir_p(out->plots_dir);
    if (st == AB_OK) {
        out->charts = ab_plots_render(rd, out->plots_dir, opts->gnuplot, &out->n_figures, out->charts_reason,
                                      sizeof out->charts_reason);
    }
    doc d = {.plots_dir = out->plots_dir, .charts = out->charts};
    d.md = open_memstream(&d.md_buf, &d.md_len);
    d.html = open_memstream(&d.html_buf, &d.html_len);
    if (st == AB_OK && (!d.md || !d.html)) st = ab_fail(AB_ERR_OOM, "report: out of memory");
    if (st == AB_OK) {
        fputs(html_head, d.html);
        char ts[32];
        ab_utc_iso8601(ab_wall_s(), ts, sizeof ts);
        doc_h(&d, 1, "attnbench report");
        doc_p(&d, "Results directory: %s%s. Generated %s by attnbench %s. Every figure is defined in METRICS.md; "
                  "n/a means the figure was not available (run.json gives the reason).",
              dir, rd->n_runs > 1 ? " (with comparison runs)" : "", ts, AB_VERSION);
        if (!out->charts)
            doc_p(&d, "No charts: %s. Install gnuplot (apt-get install gnuplot-nox) and run `attnbench report %s` again "
                      "to get them; the tables below are complete without them.",
                  out->charts_reason, dir);
        section_environment(&d, rd);
        section_config(&d, rd);
        section_metrics(&d, rd);
        section_repeats(&d, rd);
        fputs("</body></html>\n", d.html);
    }
    if (d.md) fclose(d.md);
    if (d.html) fclose(d.html);
    if (st == AB_OK) st = ab_write_file_atomic(out->md_path, d.md_buf, d.md_len);
    if (st == AB_OK) st = ab_write_file_atomic(out->html_path, d.html_buf, d.html_len);
    free(d.md_buf);
    free(d.html_buf);
    ab_report_data_free(rd);
    free(rd);
    return st;
}
