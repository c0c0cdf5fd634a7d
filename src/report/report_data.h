/*
 * report_data.h — what the report and its plots read: the runs (run.json + steps.csv + power.csv) and
 * one entry per (run, variant) with the derived numbers the tables, summaries and figures share.
 * Internal to src/report/.
 */
#ifndef AB_REPORT_REPORT_DATA_H
#define AB_REPORT_REPORT_DATA_H

#include <jansson.h>
#include <stddef.h>

#include "core/status.h"
#include "report/results.h"

#define AB_CELL_LEN 256
#define AB_CELL_COLS 16
#define AB_REPORT_MAX_RUNS 8
#define AB_REPORT_MAX_ENTRIES 64

/* A CSV file as written by results.c: a header row, then rows of the same width. */
typedef struct {
    char *text;                 /* the file, split in place */
    int n_cols, n_rows;
    char **cell;                /* n_rows * n_cols pointers into text; row-major */
    char **names;               /* n_cols header names */
} ab_csv;

typedef struct {
    char dir[4096];
    char label[256];            /* the directory's base name */
    ab_results_state st;
    ab_csv steps, power;        /* empty when the file is absent */
} ab_report_run;

typedef struct {
    int run;                    /* index into runs[] */
    json_t *v;                  /* the variant object of run.json (borrowed) */
    const char *name;           /* "flash" */
    char label[192];            /* display name; "title [run]" when comparing runs */
    unsigned colour;            /* 0xRRGGBB, fixed per variant name */
    double mean_epoch_s, final_train_loss, final_val_loss, best_val_loss;
    double prefill_ms[2];       /* [0] batch 1, [1] the training batch */
    double decode_ms[2][3];     /* [batch][p50, p90, p99] */
} ab_report_entry;

typedef struct {
    int n_runs;
    ab_report_run runs[AB_REPORT_MAX_RUNS];
    int n;
    ab_report_entry e[AB_REPORT_MAX_ENTRIES];
    int infer_batch;            /* the larger inference batch (B), 0 if none */
} ab_report_data;

ab_status ab_report_data_load(const char *dir, const char *const *compare, int n_compare, ab_report_data *rd);
void ab_report_data_free(ab_report_data *rd);

/* obj[key] as a string ("" when absent) or a number (NAN when absent or null). */
const char *ab_json_str(const json_t *obj, const char *key);
double ab_json_num(const json_t *obj, const char *key);

/* Column index of `name`, -1 when absent; a cell as text, or as a number (NAN when empty). */
int ab_csv_col(const ab_csv *c, const char *name);
const char *ab_csv_cell(const ab_csv *c, int row, int col);
double ab_csv_num(const ab_csv *c, int row, int col);

/* The fixed colour of a variant: its place in the variant table picks from one palette. */
unsigned ab_variant_colour(const char *name);

/* Renders every figure into plots_dir as NAME.png and NAME.svg with gnuplot. Returns 1 when gnuplot ran
 * (n_figures rendered), 0 with the reason when charts are not available. */
int ab_plots_render(const ab_report_data *rd, const char *plots_dir, const char *gnuplot, int *n_figures, char *reason,
                    size_t reason_size);

#endif
