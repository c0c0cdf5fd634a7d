/*
 * fuzz_results.c — libFuzzer harness for the results directory readers behind `run --resume` and `report`.
 *
 * Input layout: up to three parts separated by the byte 0x01 (which neither JSON text nor the CSV files
 * results.c writes contain): run.json, steps.csv, power.csv. Each part present is written as that file into
 * a private temporary directory (created once); a part that is absent leaves the file absent. The directory
 * is then read as `report` reads it (ab_report_data_load: ab_results_load for run.json + steps.csv, and the
 * CSV reader for steps.csv and power.csv) and, when that succeeds, rendered as `report` renders it without
 * gnuplot (ab_report_write: report.md and report.html).
 * Invariants: a rejected directory leaves a message naming the file; an accepted one has at most
 * AB_RESULTS_MAX_VARIANTS variant states, each found by ab_results_find under its name, with epochs_done >= 0
 * and steps_done <= the rows of steps.csv (the two readers of that file agree); every CSV row is as wide as
 * its header and every cell and number is readable through ab_csv_cell / ab_csv_num; every report entry has
 * a name and its variant object. Any failure is an abort().
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/report.h"
#include "report/report_data.h"

static const char *const files[] = {"run.json", "steps.csv", "power.csv"};
enum { N_FILES = sizeof files / sizeof files[0] };

static char dir[64];

/* The temporary directory goes at a normal exit (a crash keeps it, with the files of the failing input). */
static void remove_dir(void) {
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz_results: could not remove %s\n", dir);
}

static void check_csv(const ab_csv *c) {
    if (c->n_rows < 0 || c->n_cols < 0 || (c->n_rows > 0 && c->n_cols == 0)) abort();
    for (int j = 0; j < c->n_cols; j++) {
        int col = ab_csv_col(c, c->names[j]);
        if (col < 0 || col > j) abort(); /* the first column of that name */
    }
    for (int i = 0; i < c->n_rows; i++)
        for (int j = 0; j < c->n_cols; j++) {
            const char *cell = ab_csv_cell(c, i, j);
            double v = ab_csv_num(c, i, j);
            if (!cell || (!*cell && !isnan(v))) abort(); /* an empty field is a null */
        }
    if (*ab_csv_cell(c, c->n_rows, 0) || *ab_csv_cell(c, 0, -1)) abort(); /* outside the table: "" */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz_results_XXXXXX");
        if (!mkdtemp(dir)) abort();
        atexit(remove_dir);
    }
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; k < N_FILES; k++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        if (!p) {
            unlink(path);
            continue;
        }
        const uint8_t *sep = memchr(p, 0x01, (size_t)(end - p));
        size_t n = (size_t)((sep ? sep : end) - p);
        FILE *f = fopen(path, "wb");
        if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) abort();
        p = sep ? sep + 1 : NULL;
    }

    ab_report_data *rd = calloc(1, sizeof *rd);
    if (!rd) abort();
    ab_status st = ab_report_data_load(dir, NULL, 0, rd);
    if (st != AB_OK) {
        if (!strstr(ab_error(), dir)) abort();
    } else {
        if (rd->n_runs != 1) abort();
        const ab_report_run *r = &rd->runs[0];
        const ab_results_state *rs = &r->st;
        if (!rs->run || rs->n_variants < 0 || rs->n_variants > AB_RESULTS_MAX_VARIANTS) abort();
        for (int i = 0; i < rs->n_variants; i++) {
            const ab_results_variant_state *v = &rs->v[i];
            const ab_results_variant_state *found = ab_results_find(rs, v->name);
            if (!found || found > v || strcmp(found->name, v->name) != 0) abort();
            if (v->epochs_done < 0 || v->steps_done < 0 || (r->steps.n_rows >= 0 && v->steps_done > r->steps.n_rows))
                abort();
        }
        check_csv(&r->steps);
        check_csv(&r->power);
        if (rd->n < 0 || rd->n > AB_REPORT_MAX_ENTRIES) abort();
        for (int i = 0; i < rd->n; i++)
            if (!rd->e[i].name || !rd->e[i].v || rd->e[i].run != 0) abort();
    }
    ab_report_data_free(rd);
    free(rd);
    if (st == AB_OK) {
        ab_report_opts opts = {.gnuplot = ""};
        ab_report_outcome out;
        if (ab_report_write(dir, &opts, &out) != AB_OK && !strstr(ab_error(), dir)) abort();
    }
    return 0;
}
