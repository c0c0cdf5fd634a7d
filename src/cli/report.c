/*
 * report.c — `attnbench report DIR [--compare DIR2 ...]`: figures, report.md and report.html.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "report/report.h"

#define MAX_COMPARE 7

typedef struct {
    const char *dirs[MAX_COMPARE];
    int n;
} compare_list;

static ab_status add_compare(const char *value, void *user) {
    compare_list *c = user;
    if (c->n == MAX_COMPARE) return ab_fail(AB_ERR_USAGE, "--compare: at most %d directories", MAX_COMPARE);
    c->dirs[c->n++] = value;
    return AB_OK;
}

int cmd_report(int argc, char **argv) {
    compare_list cmp = {.n = 0};
    int no_charts = 0;
    const char *gnuplot = NULL;
    ab_opt opts[] = {
        {"compare", OPT_CALLBACK, &cmp, "DIR", "another results directory to show beside DIR (repeatable)", add_compare, 0},
        {"no-charts", OPT_FLAG, &no_charts, NULL, "tables only, do not run gnuplot", NULL, 0},
        {"gnuplot", OPT_STRING, &gnuplot, "PROG", "gnuplot program (default $AB_GNUPLOT or gnuplot on PATH)", NULL, 0},
        {NULL, 0, NULL, NULL, NULL, NULL, 0},
    };
    ab_cmd_spec spec = {
        "report", "DIR", "plots (PNG + SVG), report.md and a self-contained report.html from a results directory",
        "Writes DIR/plots/*.png|svg|gp, DIR/report.md and DIR/report.html from DIR/run.json and its CSV files.\n"
        "Without gnuplot the report has every table and says how to get the charts.",
        opts};
    int first, help;
    ab_status st = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (st != AB_OK) return ab_cli_fail("report", st);
    if (help) return 0;
    if (first >= argc)
        return ab_cli_fail("report", ab_fail(AB_ERR_USAGE, "expected one results directory (see attnbench report --help)"));
    const char *dir = argv[first];
    if (first + 1 < argc) { /* options after DIR: parse the rest with DIR in the command-name slot */
        int rest_first;
        st = ab_opts_parse(&spec, argc - first, argv + first, &rest_first, &help);
        if (st != AB_OK) return ab_cli_fail("report", st);
        if (help) return 0;
        if (rest_first != argc - first)
            return ab_cli_fail("report", ab_fail(AB_ERR_USAGE, "expected one results directory, got also '%s'",
                                                 argv[first + rest_first]));
    }
    ab_report_opts ro = {.compare_dirs = cmp.dirs, .n_compare = cmp.n, .gnuplot = no_charts ? "" : gnuplot};
    ab_report_outcome out;
    st = ab_report_write(dir, &ro, &out);
    if (st != AB_OK) return ab_cli_fail("report", st);
    if (out.charts) printf("figures: %d in %s\n", out.n_figures, out.plots_dir);
    if (out.charts_reason[0]) printf("%s: %s\n", out.charts ? "note" : "no figures", out.charts_reason);
    printf("report: %s\n        %s\n", out.md_path, out.html_path);
    return 0;
}
