/*
 * report_data.c — loads the runs for the report and derives the per-entry numbers.
 */
#include "report/report_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/variant.h"
#include "core/fsutil.h"

const char *ab_json_str(const json_t *obj, const char *key) {
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

double ab_json_num(const json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Splits one CSV line in place into at most max fields (double-quoted fields with "" escapes). */
static int split_line(char *line, char **field, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return n + 1; /* too many */
        if (*p == '"') {
            char *w = ++p;
            field[n++] = w;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"') p++;
                *w++ = *p++;
            }
            if (*p == '"') p++;
            *w = '\0';
            if (*p == ',') *p++ = '\0';
            else if (!*p) return n;
            continue;
        }
        field[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma) return n;
        *comma = '\0';
        p = comma + 1;
    }
}

/* Reads PATH (absent: an empty table). Blank lines are skipped, the first other line is the header, and
 * every row must be as wide; line numbers in messages count every line. */
static ab_status csv_load(const char *path, ab_csv *c) {
    memset(c, 0, sizeof *c);
    if (!ab_file_exists(path)) return AB_OK;
    size_t len;
    AB_TRY(ab_read_file(path, &c->text, &len));
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += c->text[i] == '\n';
    ab_text_lines it;
    AB_TRY(ab_text_lines_open(&it, path, c->text, len));
    char *fields[64];
    for (char *line; (line = ab_text_lines_next(&it));) {
        const size_t line_no = it.line_no;
        int n = split_line(line, fields, 64);
        if (!c->names) { /* the header */
            if (n > 64) return ab_fail(AB_ERR_FORMAT, "%s:%zu: more than 64 columns", path, line_no);
            c->n_cols = n;
            c->names = malloc((size_t)n * sizeof *c->names);
            c->cell = malloc(lines * (size_t)n * sizeof *c->cell);
            if (!c->names || !c->cell) return ab_fail(AB_ERR_OOM, "%s: out of memory", path);
            memcpy(c->names, fields, (size_t)n * sizeof *fields);
            continue;
        }
        if (n != c->n_cols)
            return ab_fail(AB_ERR_FORMAT, "%s:%zu: %d fields, the header has %d", path, line_no, n, c->n_cols);
        memcpy(c->cell + (size_t)c->n_rows * (size_t)c->n_cols, fields, (size_t)n * sizeof *fields);
        c->n_rows++;
    }
    return AB_OK;
}

static void csv_free(ab_csv *c) {
    free(c->text);
    free(c->names);
    free(c->cell);
    memset(c, 0, sizeof *c);
}

int ab_csv_col(const ab_csv *c, const char *name) {
    for (int i = 0; i < c->n_cols; i++)
        if (!strcmp(c->names[i], name)) return i;
    return -1;
}

const char *ab_csv_cell(const ab_csv *c, int row, int col) {
    if (col < 0 || row < 0 || row >= c->n_rows) return "";
    return c->cell[(size_t)row * (size_t)c->n_cols + (size_t)col];
}

double ab_csv_num(const ab_csv *c, int row, int col) {
    const char *s = ab_csv_cell(c, row, col);
    char *end;
    double v = strtod(s, &end);
    return (*s && end != s) ? v : NAN;
}

unsigned ab_variant_colour(const char *name) {
    /* one palette entry per row of the variant table (tab10 order, readable on white and in print) */
    static const unsigned palette[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                       0x8c564b, 0xe377c2, 0x17becf, 0xbcbd22, 0x7f7f7f};
    const ab_variant *v = ab_variant_by_name(name);
    if (v) return palette[(size_t)v->id % (sizeof palette / sizeof palette[0])];
    return 0x555555;
}

/* Derived numbers of one entry from its run.json object. */
static void derive_entry(ab_report_entry *e, int infer_batch) {
    e->mean_epoch_s = e->final_train_loss = e->final_val_loss = e->best_val_loss = NAN;
    double sum = 0;
    size_t i, n = 0;
    json_t *ep;
    json_array_foreach(json_object_get(e->v, "epochs"), i, ep) {
        double t = ab_json_num(ep, "train_time_s"), vl = ab_json_num(ep, "val_loss");
        if (isfinite(t)) sum += t, n++;
        e->final_train_loss = ab_json_num(ep, "train_loss");
        e->final_val_loss = vl;
        if (isfinite(vl) && !(vl >= e->best_val_loss)) e->best_val_loss = vl;
    }
    if (n) e->mean_epoch_s = sum / (double)n;
    for (int b = 0; b < 2; b++) {
        e->prefill_ms[b] = NAN;
        for (int k = 0; k < 3; k++) e->decode_ms[b][k] = NAN;
    }
    json_t *bt;
    json_array_foreach(json_object_get(json_object_get(e->v, "inference"), "batches"), i, bt) {
        int batch = (int)json_integer_value(json_object_get(bt, "batch"));
        int slot = batch == 1 ? 0 : batch == infer_batch ? 1 : -1;
        if (slot < 0) continue;
        e->prefill_ms[slot] = ab_json_num(bt, "prefill_ms");
        e->decode_ms[slot][0] = ab_json_num(bt, "decode_ms_p50");
        e->decode_ms[slot][1] = ab_json_num(bt, "decode_ms_p90");
        e->decode_ms[slot][2] = ab_json_num(bt, "decode_ms_p99");
    }
}

static ab_status load_run(const char *dir, ab_report_run *r) {
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    size_t l = strlen(tmp);
    while (l > 1 && tmp[l - 1] == '/') tmp[--l] = '\0';
    const char *slash = strrchr(tmp, '/');
    snprintf(r->label, sizeof r->label, "%s", slash ? slash + 1 : tmp);
    AB_TRY(ab_results_load(dir, &r->st));
    char path[4200];
    snprintf(path, sizeof path, "%s/steps.csv", dir);
    AB_TRY(csv_load(path, &r->steps));
    snprintf(path, sizeof path, "%s/power.csv", dir);
    return csv_load(path, &r->power);
}

ab_status ab_report_data_load(const char *dir, const char *const *compare, int n_compare, ab_report_data *rd) {
    memset(rd, 0, sizeof *rd);
    if (n_compare + 1 > AB_REPORT_MAX_RUNS)
        return ab_fail(AB_ERR_USAGE, "report: at most %d runs can be compared", AB_REPORT_MAX_RUNS);
    for (int r = 0; r <= n_compare; r++) {
        ab_status st = load_run(r == 0 ? dir : compare[r - 1], &rd->runs[r]);
        rd->n_runs = r + 1;
        if (st != AB_OK) return st;
    }
    /* the training batch = the inference batch other than 1 (first found) */
    for (int r = 0; r < rd->n_runs && !rd->infer_batch; r++) {
        size_t i, j;
        json_t *v, *bt;
        json_array_foreach(json_object_get(rd->runs[r].st.run, "variants"), i, v)
            json_array_foreach(json_object_get(json_object_get(v, "inference"), "batches"), j, bt) {
            int b = (int)json_integer_value(json_object_get(bt, "batch"));
            if (b > 1 && !rd->infer_batch) rd->infer_batch = b;
        }
    }
    for (int r = 0; r < rd->n_runs; r++) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(rd->runs[r].st.run, "variants"), i, v) {
            if (rd->n == AB_REPORT_MAX_ENTRIES) return ab_fail(AB_ERR_USAGE, "report: more than %d variants", AB_REPORT_MAX_ENTRIES);
            ab_report_entry *e = &rd->e[rd->n++];
            e->run = r;
            e->v = v;
            e->name = ab_json_str(v, "name");
            const char *title = ab_json_str(v, "title");
            if (!*title) title = e->name;
            if (rd->n_runs > 1) snprintf(e->label, sizeof e->label, "%s [%s]", title, rd->runs[r].label);
            else snprintf(e->label, sizeof e->label, "%s", title);
            e->colour = ab_variant_colour(e->name);
            derive_entry(e, rd->infer_batch);
        }
    }
    return AB_OK;
}

void ab_report_data_free(ab_report_data *rd) {
    for (int r = 0; r < rd->n_runs; r++) {
        ab_results_state_free(&rd->runs[r].st);
        csv_free(&rd->runs[r].steps);
        csv_free(&rd->runs[r].power);
    }
    rd->n_runs = 0;
}
