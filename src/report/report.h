/*
 * report.h — `attnbench report`: figures (gnuplot, PNG + SVG) in DIR/plots/, DIR/report.md and a
 * self-contained DIR/report.html from DIR/run.json and its CSV files, optionally comparing other runs.
 *
 * gnuplot is run as a program; without it the report still has every table and says how to get charts.
 * Every variant keeps one colour and its display name in every figure (colour by the variant's place in
 * the canonical variant order, so a variant looks the same across runs).
 */
#ifndef AB_REPORT_REPORT_H
#define AB_REPORT_REPORT_H

#include "core/status.h"

typedef struct {
    const char *const *compare_dirs;  /* other results directories shown beside DIR */
    int n_compare;
    const char *gnuplot;              /* program; NULL: $AB_GNUPLOT or "gnuplot" on PATH; "": no charts */
} ab_report_opts;

typedef struct {
    int charts;                       /* 1 when gnuplot rendered the figures */
    char charts_reason[256];          /* why not */
    int n_figures;
    char md_path[4096], html_path[4096], plots_dir[4096];
} ab_report_outcome;

ab_status ab_report_write(const char *dir, const ab_report_opts *opts, ab_report_outcome *out);

#endif
