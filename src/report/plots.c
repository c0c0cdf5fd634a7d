/*
 * plots.c — the report's figures, drawn by gnuplot run as a program (never linked).
 *
 * Each figure is one script plots/NAME.gp (kept, so a person can restyle it) holding its data as inline
 * datablocks and drawing it twice: PNG (pngcairo) and SVG. gnuplot writes NAME.tmp.png/.svg, renamed
 * into place once it succeeded, so a failed render never leaves a half-written image. Every variant has
 * one colour (ab_variant_colour) and its display name in every figure; axes carry units.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/mem.h"
#include "report/report_data.h"

#define FIG_W 1000
#define FIG_H 560
#define MAX_SERIES_POINTS 4000 /* longer series are thinned (every k-th point) to keep the files small */

typedef struct {
    const ab_report_data *rd;
    const char *plots_dir;
    const char *gnuplot;
    int n_ok;
    char reason[256];
} plotter;

/* Runs `gnuplot script` in the plots directory; 0 on success. */
static int run_gnuplot(const plotter *p, const char *script) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        if (chdir(p->plots_dir) != 0) _exit(126);
        execlp(p->gnuplot, p->gnuplot, script, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A label safe inside a gnuplot double-quoted string. */
static void quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) fputc(*s == '"' ? '\'' : *s, f);
    fputc('"', f);
}

static void colour(FILE *f, unsigned rgb) { fprintf(f, "'#%06x'", rgb & 0xffffffu); }

/* Finishes a figure: body is drawn once per terminal; returns 1 when both images exist. */
static int render(plotter *p, const char *name, const char *data, const char *body) {
    char *script = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&script, &len);
    if (!f) return 0;
    fprintf(f, "# %s.gp — written by attnbench report; run `gnuplot %s.gp` in this directory to redraw.\n", name, name);
    fputs(data, f);
    fprintf(f, "set terminal pngcairo size %d,%d font 'Sans,11' noenhanced background '#ffffff'\n", FIG_W, FIG_H);
    fprintf(f, "set output '%s.tmp.png'\n%s\nunset output\n", name, body);
    fprintf(f, "set terminal svg size %d,%d font 'Sans,11' noenhanced dynamic background '#ffffff'\n", FIG_W, FIG_H);
    fprintf(f, "set output '%s.tmp.svg'\n%s\nunset output\n", name, body);
    fclose(f);
    char path[4400], gp[300];
    snprintf(gp, sizeof gp, "%s.gp", name);
    snprintf(path, sizeof path, "%s/%s", p->plots_dir, gp);
    ab_status st = ab_write_file_atomic(path, script, len);
    free(script);
    if (st != AB_OK) return 0;
    if (run_gnuplot(p, gp) != 0) {
        snprintf(p->reason, sizeof p->reason, "gnuplot failed on plots/%.64s (run it by hand to see why)", gp);
        return 0;
    }
    const char *ext[] = {"png", "svg"};
    for (int i = 0; i < 2; i++) {
        char from[4400], to[4400];
        snprintf(from, sizeof from, "%s/%s.tmp.%s", p->plots_dir, name, ext[i]);
        snprintf(to, sizeof to, "%s/%s.%s", p->plots_dir, name, ext[i]);
        if (rename(from, to) != 0) return 0;
    }
    p->n_ok++;
    return 1;
}

/* A figure being written: its data blocks (d) and its plot commands (b), in memory until figure_end */
typedef struct {
    char *data, *body;
    size_t dl, bl;
    FILE *d, *b;
} figure;

/* Closes the figure's streams and, with draw, renders it as name (render); frees the text. */
static void figure_end(plotter *p, const char *name, figure *f, int draw) {
    const int open = f->d && f->b;
    if (f->d) fclose(f->d);
    if (f->b) fclose(f->b);
    if (draw && open) render(p, name, f->data, f->body);
    free(f->data);
    free(f->body);
}

/* 0 (and no figure) when the memory for its streams cannot be had */
static int figure_begin(figure *f) {
    memset(f, 0, sizeof *f);
    f->d = open_memstream(&f->data, &f->dl);
    f->b = open_memstream(&f->body, &f->bl);
    if (f->d && f->b) return 1;
    figure_end(NULL, NULL, f, 0);
    return 0;
}

/* Common look: light grid, key outside on the right when there are many series. */
static void style(FILE *b, const char *title, const char *xlabel, const char *ylabel) {
    fprintf(b, "set title ");
    quoted(b, title);
    fprintf(b, "\nset xlabel ");
    quoted(b, xlabel);
    fprintf(b, "\nset ylabel ");
    quoted(b, ylabel);
    fputs("\nset title font ',13'\nset grid ytics lc rgb '#dddddd'\nset border 3\nset tics nomirror\n"
          "set key outside right top\n",
          b);
}

/* A bar chart of one value per entry (in `order`), coloured per variant, value printed on each bar. */
static void bars(plotter *p, const char *name, const char *title, const char *ylabel, const double *v, const int *order,
                 int n, double scale, const char *fmt) {
    int have = 0;
    for (int k = 0; k < n; k++) have += isfinite(v[order[k]]);
    if (!have) return;
    figure fig;
    if (!figure_begin(&fig)) return;
    FILE *d = fig.d, *b = fig.b;
    fprintf(d, "$bars << EOD\n");
    for (int k = 0; k < n; k++) {
        const ab_report_entry *e = &p->rd->e[order[k]];
        quoted(d, e->label);
        if (isfinite(v[order[k]])) fprintf(d, " %.9g %u\n", v[order[k]] / scale, e->colour);
        else fprintf(d, " NaN %u\n", e->colour);
    }
    fprintf(d, "EOD\n");
    style(b, title, "", ylabel);
    fprintf(b, "unset key\nset style fill solid 0.85 border rgb '#333333'\nset boxwidth 0.7\nset yrange [0:*]\n"
               "set offsets 0.5,0.5,0,0\nset xtics rotate by 25 right\nset lmargin 20\n"
               "plot $bars using 0:2:3:xtic(1) with boxes lc rgb variable, "
               "$bars using 0:2:(sprintf('%s',$2)) with labels offset 0,0.7 font 'Sans,9'\n",
            fmt);
    figure_end(p, name, &fig, 1);
}

/* One line per entry and kind from the (x, y) pairs of get(): kind 0 solid, further kinds dashed.
 * integer_x: x is an epoch number (integer tics). */
typedef int (*series_fn)(const plotter *p, const ab_report_entry *e, int which, double **x, double **y);

static void lines(plotter *p, const char *name, const char *title, const char *xlabel, const char *ylabel, series_fn get,
                  int n_kinds, int integer_x) {
    figure fig;
    if (!figure_begin(&fig)) return;
    FILE *d = fig.d, *b = fig.b;
    style(b, title, xlabel, ylabel);
    fputs("set key font ',10'\n", b);
    if (integer_x) fputs("set xtics 1\nset mxtics 1\n", b);
    fputs("plot ", b);
    int n_series = 0;
    for (int i = 0; i < p->rd->n; i++) {
        const ab_report_entry *e = &p->rd->e[i];
        for (int k = 0; k < n_kinds; k++) {
            double *x = NULL, *y = NULL;
            int n = get(p, e, k, &x, &y);
            int finite = 0;
            for (int j = 0; j < n; j++) finite += isfinite(y[j]);
            if (finite) {
                int step = n > MAX_SERIES_POINTS ? n / MAX_SERIES_POINTS + 1 : 1;
                fprintf(d, "$s%d << EOD\n", n_series);
                for (int j = 0; j < n; j += step)
                    if (isfinite(y[j]) && isfinite(x[j])) fprintf(d, "%.9g %.9g\n", x[j], y[j]);
                fprintf(d, "EOD\n");
                fprintf(b, "%s$s%d using 1:2 with %s lw 2 %s lc rgb ", n_series ? ", \\\n     " : "", n_series,
                        n <= 50 ? "linespoints pt 7 ps 0.8" : "lines", k ? "dt 2" : "dt 1");
                colour(b, e->colour);
                /* one key entry per variant: the dash style of further kinds is explained in the title */
                if (k == 0) {
                    fputs(" title ", b);
                    quoted(b, e->label);
                } else {
                    fputs(" notitle", b);
                }
                n_series++;
            }
            free(x);
            free(y);
        }
    }
    fputc('\n', b);
    figure_end(p, name, &fig, n_series);
}

/* ---- series getters ---- */

static int epoch_series(const ab_report_entry *e, const char *key, double **x, double **y) {
    json_t *eps = json_object_get(e->v, "epochs");
    int n = (int)json_array_size(eps);
    *x = malloc(((size_t)n + 1) * sizeof **x);
    *y = malloc(((size_t)n + 1) * sizeof **y);
    for (int i = 0; i < n; i++) {
        json_t *ep = json_array_get(eps, (size_t)i);
        (*x)[i] = ab_json_num(ep, "epoch");
        (*y)[i] = ab_json_num(ep, key);
    }
    return n;
}

static int s_epoch_time(const plotter *p, const ab_report_entry *e, int k, double **x, double **y) {
    return epoch_series(e, "train_time_s", x, y);
}

static int s_loss_epochs(const plotter *p, const ab_report_entry *e, int k, double **x, double **y) {
    return epoch_series(e, k == 0 ? "train_loss" : "val_loss", x, y);
}

/* Rows of a run's CSV belonging to the entry's variant: x and y columns. */
static int csv_series(const ab_csv *c, const char *variant, const char *xcol, const char *ycol, double **x, double **y) {
    int cv = ab_csv_col(c, "variant"), cx = ab_csv_col(c, xcol), cy = ab_csv_col(c, ycol);
    *x = malloc(((size_t)c->n_rows + 1) * sizeof **x);
    *y = malloc(((size_t)c->n_rows + 1) * sizeof **y);
    if (cv < 0 || cx < 0 || cy < 0) return 0;
    int n = 0;
    for (int r = 0; r < c->n_rows; r++) {
        if (strcmp(ab_csv_cell(c, r, cv), variant)) continue;
        (*x)[n] = ab_csv_num(c, r, cx);
        (*y)[n] = ab_csv_num(c, r, cy);
        n++;
    }
    return n;
}

static int s_loss_steps(const plotter *p, const ab_report_entry *e, int k, double **x, double **y) {
    return csv_series(&p->rd->runs[e->run].steps, e->name, "step", "loss", x, y);
}

/* The power column to draw: GPU instant power, else its 1 s average, else CPU package power. */
static const char *power_column(const plotter *p) {
    const ab_csv *c = &p->rd->runs[0].power;
    const char *cols[] = {"gpu_power_w", "gpu_power_avg_w", "cpu_power_w"};
    for (int i = 0; i < 3; i++) {
        int ci = ab_csv_col(c, cols[i]);
        for (int r = 0; ci >= 0 && r < c->n_rows; r++)
            if (isfinite(ab_csv_num(c, r, ci))) return cols[i];
    }
    return NULL;
}

/* ---- composite figures ---- */

static void memory_figure(plotter *p) {
    static const unsigned cat_colour[MEM_CATEGORY_COUNT] = {0x4e79a7, 0xa0cbe8, 0xf28e2b, 0xffbe7d,
                                                            0x59a14f, 0xe15759, 0xb07aa1, 0xbab0ac};
    figure fig;
    if (!figure_begin(&fig)) return;
    FILE *d = fig.d, *b = fig.b;
    int have = 0;
    fputs("$mem << EOD\n", d);
    for (int i = 0; i < p->rd->n; i++) {
        const ab_report_entry *e = &p->rd->e[i];
        json_t *at = json_object_get(json_object_get(e->v, "memory"), "at_peak_by_category");
        if (!at) continue;
        have++;
        quoted(d, e->label);
        for (int c = 0; c < MEM_CATEGORY_COUNT; c++) {
            double v = ab_json_num(at, mem_category_name((mem_category)c));
            fprintf(d, " %.6g", isfinite(v) ? v / (1024.0 * 1024.0) : 0.0);
        }
        fputc('\n', d);
    }
    fputs("EOD\n", d);
    style(b, "Peak allocated memory by category", "", "MiB at the allocator's peak");
    fputs("set style data histograms\nset style histogram rowstacked\nset style fill solid 0.9 border rgb '#333333'\n"
          "set boxwidth 0.7\nset yrange [0:*]\nset xtics rotate by 25 right\nset lmargin 20\n"
          "set key outside top center horizontal\nplot ",
          b);
    for (int c = 0; c < MEM_CATEGORY_COUNT; c++) {
        fprintf(b, "%s$mem using %d%s lc rgb ", c ? ", " : "", c + 2, c == 0 ? ":xtic(1)" : "");
        colour(b, cat_colour[c]);
        fprintf(b, " title '%s'", mem_category_name((mem_category)c));
    }
    fputc('\n', b);
    figure_end(p, "memory", &fig, have);
}

static void flops_figure(plotter *p) {
    double max = 0;
    int have = 0;
    for (int i = 0; i < p->rd->n; i++) {
        double v = ab_json_num(json_object_get(p->rd->e[i].v, "flops"), "model_per_step");
        if (isfinite(v)) have++, max = fmax(max, v);
    }
    if (!have) return;
    double scale = max >= 1e12 ? 1e12 : max >= 1e9 ? 1e9 : 1e6;
    const char *unit = max >= 1e12 ? "TFLOP" : max >= 1e9 ? "GFLOP" : "MFLOP";
    figure fig;
    if (!figure_begin(&fig)) return;
    FILE *d = fig.d, *b = fig.b;
    fputs("$f << EOD\n", d);
    for (int i = 0; i < p->rd->n; i++) {
        const ab_report_entry *e = &p->rd->e[i];
        json_t *f = json_object_get(e->v, "flops"), *a = json_object_get(f, "attention");
        double attn = ab_json_num(a, "model_fwd") + ab_json_num(a, "model_bwd"), total = ab_json_num(f, "model_per_step");
        if (!isfinite(total)) continue;
        quoted(d, e->label);
        fprintf(d, " %.9g %.9g %.9g %u\n", attn / scale, (total - attn) / scale, total / scale, e->colour);
    }
    fputs("EOD\n", d);
    char ylabel[64];
    snprintf(ylabel, sizeof ylabel, "%s per optimizer step (forward + backward)", unit);
    style(b, "Model FLOPs per step (label: attention share)", "", ylabel);
    fputs("set style data histograms\nset style histogram rowstacked\nset style fill solid 0.9 border rgb '#333333'\n"
          "set boxwidth 0.7\nset yrange [0:*]\nset xtics rotate by 25 right\nset lmargin 20\n"
          "set key outside top center horizontal\nplot $f using 2:xtic(1) lc rgb '#e15759' title 'attention layers', "
          "$f using 3 lc rgb '#4e79a7' title 'rest (c_proj, MLP, LM head)', "
          "$f using 0:4:(sprintf('%.0f%%', 100*$2/$4)) with labels offset 0,0.7 font 'Sans,9' notitle\n",
          b);
    figure_end(p, "flops", &fig, 1);
}

/* Two panels (batch 1, batch B) of per-variant bars; with whiskers from p90 to p99 for decode. */
static void latency_figure(plotter *p, const char *name, const char *title, int decode) {
    int have = 0;
    for (int i = 0; i < p->rd->n; i++)
        for (int s = 0; s < 2; s++) have += isfinite(decode ? p->rd->e[i].decode_ms[s][0] : p->rd->e[i].prefill_ms[s]);
    if (!have) return;
    figure fig;
    if (!figure_begin(&fig)) return;
    FILE *d = fig.d, *b = fig.b;
    for (int s = 0; s < 2; s++) {
        fprintf(d, "$b%d << EOD\n", s);
        for (int i = 0; i < p->rd->n; i++) {
            const ab_report_entry *e = &p->rd->e[i];
            quoted(d, e->label);
            double v = decode ? e->decode_ms[s][0] : e->prefill_ms[s];
            double lo = decode ? e->decode_ms[s][1] : v, hi = decode ? e->decode_ms[s][2] : v;
            fprintf(d, " %.9g %u %.9g %.9g\n", isfinite(v) ? v : NAN, e->colour, isfinite(lo) ? lo : v, isfinite(hi) ? hi : v);
        }
        fputs("EOD\n", d);
    }
    fputs("set multiplot layout 1,2 margins 0.15,0.98,0.30,0.86 spacing 0.12,0.1 title ", b);
    quoted(b, title);
    fputs("\nset grid ytics lc rgb '#dddddd'\nset border 3\nset tics nomirror\nunset key\n"
          "set style fill solid 0.85 border rgb '#333333'\nset boxwidth 0.7\nset yrange [0:*]\n"
          "set offsets 0.5,0.5,0,0\nset xtics rotate by 30 right font 'Sans,9'\n",
          b);
    fprintf(b, "set ylabel '%s'\n", decode ? "ms per generated token" : "ms (median)");
    for (int s = 0; s < 2; s++) {
        fprintf(b, "set title 'batch %d'\n", s == 0 ? 1 : p->rd->infer_batch);
        fprintf(b, "plot $b%d using 0:2:3:xtic(1) with boxes lc rgb variable", s);
        if (decode) fprintf(b, ", $b%d using 0:4:(0):($5-$4) with vectors nohead lc rgb '#222222' lw 1.5", s);
        fputc('\n', b);
    }
    fputs("unset multiplot\n", b);
    figure_end(p, name, &fig, 1);
}

/* A printf format that shows values up to max with about three significant digits, no exponent. */
static const char *label_format(double max) { return max >= 100 ? "%.0f" : max >= 10 ? "%.1f" : max >= 1 ? "%.2f" : "%.3g"; }

/* The power timeline of the first run: one line per variant (all its phases) and, in grey, the samples
 * taken outside any variant (idle baseline, set-up between variants). */
static void power_figure(plotter *p) {
    const char *pc = power_column(p);
    if (!pc) return;
    const ab_csv *c = &p->rd->runs[0].power;
    int cv = ab_csv_col(c, "variant"), ct = ab_csv_col(c, "t_s"), cy = ab_csv_col(c, pc);
    figure fig;
    if (!figure_begin(&fig)) return;
    FILE *d = fig.d, *b = fig.b;
    char ylabel[96];
    snprintf(ylabel, sizeof ylabel, "%s (W)",
             !strcmp(pc, "gpu_power_w") ? "GPU power, instant" : !strcmp(pc, "gpu_power_avg_w") ? "GPU power, 1 s average" : "CPU package power");
    style(b, "Power over the run", "seconds since the run started", ylabel);
    fputs("set key font ',10'\nplot ", b);
    int n_series = 0;
    for (int i = -1; i < p->rd->n; i++) {
        if (i >= 0 && p->rd->e[i].run != 0) continue;
        const char *name = i < 0 ? "" : p->rd->e[i].name;
        int n = 0, gap = 0;
        fprintf(d, "$p%d << EOD\n", i + 1);
        for (int r = 0; r < c->n_rows; r++) {
            if (strcmp(ab_csv_cell(c, r, cv), name)) {
                gap = 1;
                continue;
            }
            double x = ab_csv_num(c, r, ct), y = ab_csv_num(c, r, cy);
            if (!isfinite(x) || !isfinite(y)) continue;
            if (gap && n) fputs("\n", d); /* one blank line: the line breaks where other samples came */
            gap = 0;
            fprintf(d, "%.3f %.6g\n", x, y);
            n++;
        }
        fputs("EOD\n", d);
        if (!n) continue;
        fprintf(b, "%s$p%d using 1:2 with lines lw %s lc rgb ", n_series++ ? ", \\\n     " : "", i + 1, i < 0 ? "1.5" : "2");
        colour(b, i < 0 ? 0xaaaaaa : p->rd->e[i].colour);
        fputs(" title ", b);
        quoted(b, i < 0 ? "outside variants (idle, set-up)" : p->rd->e[i].label);
    }
    fputc('\n', b);
    figure_end(p, "power", &fig, n_series);
}

/* Sorted ascending by value (NAN last). */
static void sort_order(const double *v, int n, int *order) {
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            double a = v[order[j - 1]], c = v[order[j]];
            int swap = (isnan(a) && !isnan(c)) || (!isnan(a) && !isnan(c) && c < a);
            if (!swap) break;
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
}

static void energy_figure(plotter *p) {
    int n = p->rd->n, order[AB_REPORT_MAX_ENTRIES], gpu = 0;
    double v[AB_REPORT_MAX_ENTRIES];
    for (int i = 0; i < n; i++) gpu += isfinite(ab_json_num(json_object_get(p->rd->e[i].v, "energy"), "gpu_j"));
    double max = 0;
    for (int i = 0; i < n; i++) {
        v[i] = ab_json_num(json_object_get(p->rd->e[i].v, "energy"), gpu ? "gpu_j" : "cpu_j");
        if (isfinite(v[i])) max = fmax(max, v[i]);
    }
    sort_order(v, n, order);
    int kj = max >= 1e4;
    char ylabel[96];
    snprintf(ylabel, sizeof ylabel, "%s energy of training (%s)", gpu ? "GPU" : "CPU package", kj ? "kJ" : "J");
    bars(p, "energy", gpu ? "Total GPU energy of training (sorted)" : "Total CPU package energy of training (sorted)",
         ylabel, v, order, n, kj ? 1e3 : 1.0, label_format(kj ? max / 1e3 : max));
}

int ab_plots_render(const ab_report_data *rd, const char *plots_dir, const char *gnuplot, int *n_figures, char *reason,
                    size_t reason_size) {
    *n_figures = 0;
    if (!gnuplot) gnuplot = getenv("AB_GNUPLOT");
    if (!gnuplot) gnuplot = "gnuplot";
    if (!*gnuplot) {
        snprintf(reason, reason_size, "charts disabled");
        return 0;
    }
    plotter p = {.rd = rd, .plots_dir = plots_dir, .gnuplot = gnuplot};
    /* probe: gnuplot must run at all */
    char probe[4400];
    snprintf(probe, sizeof probe, "%s/probe.gp", plots_dir);
    if (ab_write_file_atomic(probe, "set terminal pngcairo\n", 22) != AB_OK || run_gnuplot(&p, "probe.gp") != 0) {
        remove(probe);
        snprintf(reason, reason_size, "gnuplot (with the pngcairo terminal) could not be run as '%s'", gnuplot);
        return 0;
    }
    remove(probe);

    int n = rd->n, order[AB_REPORT_MAX_ENTRIES];
    double v[AB_REPORT_MAX_ENTRIES];
    for (int i = 0; i < n; i++) order[i] = i;

    lines(&p, "epoch_time", "Training time per epoch", "epoch", "seconds", s_epoch_time, 1, 1);
    for (int i = 0; i < n; i++) v[i] = ab_json_num(rd->e[i].v, "tokens_per_s");
    double vmax = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) vmax = fmax(vmax, v[i]);
    bars(&p, "tokens_per_s", "Training throughput (steady state)", "tokens per second", v, order, n, 1.0, label_format(vmax));
    energy_figure(&p);
    memory_figure(&p);
    lines(&p, "loss_epochs", "Loss per epoch (solid: train, dashed: validation)", "epoch", "cross-entropy loss (nats)",
          s_loss_epochs, 2, 1);
    lines(&p, "loss_steps", "Training loss per step", "optimizer step", "cross-entropy loss (nats)", s_loss_steps, 1, 0);
    flops_figure(&p);
    latency_figure(&p, "prefill", "Prefill latency (median)", 0);
    latency_figure(&p, "decode", "Decode latency per token (bars: p50; whiskers: p90 to p99)", 1);
    power_figure(&p);
    *n_figures = p.n_ok;
    if (p.reason[0]) snprintf(reason, reason_size, "%s", p.reason);
    return 1;
}
