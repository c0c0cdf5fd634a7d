/*
 * test_report_render.c — report generation on the recorded run (tests/data/recorded_run): the files
 * exist, the Markdown and HTML carry every metric table and the summaries, the HTML is self-contained,
 * PNG and SVG exist when gnuplot is present, the report degrades to tables without gnuplot, --compare, the
 * repeated-runs table (identical losses, the largest differences, another configuration excluded), and
 * `attnbench report` exit codes.
 */
#include <jansson.h>
#include <math.h>

#include "core/fsutil.h"
#include "fakes/fakes.h"
#include "report/report.h"
#include "test_util.h"

static char tests_dir[4096], tmp[4096];

/* A fresh copy of the recorded run (the report writes into its directory). */
static void copy_run(const char *name, char *out, size_t n) {
    snprintf(out, n, "%s/%s", tmp, name);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp -r '%s/data/recorded_run' '%s'", tests_dir, out);
    if (system(cmd) != 0) printf("# copy failed: %s\n", cmd);
}

static char *slurp(const char *dir, const char *file) {
    char p[4400], *text = NULL;
    size_t n;
    snprintf(p, sizeof p, "%s/%s", dir, file);
    if (ab_read_file(p, &text, &n) != AB_OK) return NULL;
    return text;
}

static int has_gnuplot(void) { return test_run_cmd("gnuplot --version 2>&1", NULL, 0) == 0; }

static void test_with_charts(void) {
    char dir[4200];
    copy_run("with_charts", dir, sizeof dir);
    ab_report_opts o = {0};
    ab_report_outcome out;
    ab_status st = ab_report_write(dir, &o, &out);
    TEST_TRUE("report_writes", st == AB_OK, "%s", ab_error());
    char *md = slurp(dir, "report.md"), *html = slurp(dir, "report.html");
    TEST_TRUE("report_files_exist", md && html, "md %p html %p", (void *)md, (void *)html);
    if (!md || !html) return;
    const char *sections[] = {"## Environment", "## Configuration", "## Training time", "## Memory", "## FLOPs",
                              "## Energy and power", "## Loss", "## Inference", "## Model size"};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "md_section[%s]", sections[i] + 3);
        TEST_TRUE(name, strstr(md, sections[i]) != NULL, "missing");
    }
    TEST_TRUE("md_tables", strstr(md, "| variant | train time (s)") && strstr(md, "| variant | peak allocated (MiB)") &&
                               strstr(md, "| variant | GPU (J)") && strstr(md, "| variant | prefill b1 (ms)"),
              "a metric table is missing");
    const char *titles[] = {"Baseline Self-Attention (GPT-2)", "FlashAttention v2", "Multi-Head Latent Attention", "LSH Attention"};
    for (size_t i = 0; i < 4; i++) TEST_TRUE("md_display_names", strstr(md, titles[i]) != NULL, "%s missing", titles[i]);
    TEST_TRUE("md_summary", strstr(md, "Median step time: lowest") && strstr(md, "the highest is"), "summary sentence missing");
    TEST_TRUE("md_na_not_zero", strstr(md, "| n/a |") != NULL, "CPU energy (null in the run) should print n/a");
    TEST_TRUE("html_tables", strstr(html, "<table>") && strstr(html, "<h2>Memory</h2>"), "html structure");
    TEST_TRUE("html_self_contained", !strstr(html, "src=\"plots/") && !strstr(html, "<link"), "external reference in html");
    if (has_gnuplot()) {
        TEST_TRUE("charts_rendered", out.charts && out.n_figures == 10, "charts %d figures %d: %s", out.charts, out.n_figures,
                  out.charts_reason);
        const char *figs[] = {"epoch_time", "tokens_per_s", "energy", "memory", "loss_epochs", "loss_steps",
                              "flops", "prefill", "decode", "power"};
        for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
            char rel[128], name[128];
            snprintf(rel, sizeof rel, "plots/%s.png", figs[i]);
            char *png = slurp(dir, rel);
            snprintf(rel, sizeof rel, "plots/%s.svg", figs[i]);
            char *svg = slurp(dir, rel);
            snprintf(name, sizeof name, "figure[%s]", figs[i]);
            TEST_TRUE(name, png && !memcmp(png, "\x89PNG", 4) && svg && strstr(svg, "<svg"), "png %p svg %p", (void *)png, (void *)svg);
            free(png);
            free(svg);
        }
        TEST_TRUE("html_inlines_png", strstr(html, "data:image/png;base64,iVBOR") != NULL, "no inlined PNG");
        TEST_TRUE("md_links_figures", strstr(md, "![") && strstr(md, "(plots/memory.png)"), "no figure links");
    } else {
        printf("SKIP charts: gnuplot not installed\n");
    }
    free(md);
    free(html);
}

static void test_without_gnuplot(void) {
    char dir[4200];
    copy_run("no_charts", dir, sizeof dir);
    ab_report_opts o = {.gnuplot = "/nonexistent/gnuplot"};
    ab_report_outcome out;
    ab_status st = ab_report_write(dir, &o, &out);
    char *md = slurp(dir, "report.md");
    TEST_TRUE("no_gnuplot_still_reports", st == AB_OK && !out.charts && md, "st %d charts %d", st, out.charts);
    if (!md) return;
    TEST_TRUE("no_gnuplot_note", strstr(md, "No charts") && strstr(md, "Install gnuplot"),
              "note on how to get charts missing");
    TEST_TRUE("no_gnuplot_tables_only", strstr(md, "| variant | peak allocated (MiB)") && !strstr(md, "!["), "tables/figures");
    free(md);
}

static void test_compare(void) {
    char a[4200], b[4200];
    copy_run("cmp_a", a, sizeof a);
    copy_run("cmp_b", b, sizeof b);
    const char *cmp[] = {b};
    ab_report_opts o = {.compare_dirs = cmp, .n_compare = 1, .gnuplot = ""};
    ab_report_outcome out;
    ab_status st = ab_report_write(a, &o, &out);
    char *md = slurp(a, "report.md");
    TEST_TRUE("compare_labels", st == AB_OK && md && strstr(md, "FlashAttention v2 [cmp_a]") && strstr(md, "FlashAttention v2 [cmp_b]"),
              "st %d: %s", st, ab_error());
    free(md);
}

/* DIR/run.json loaded for an edit (NULL, said, when it cannot be), written back by save_run */
static json_t *load_run(const char *dir, char *path, size_t n) {
    snprintf(path, n, "%s/run.json", dir);
    json_error_t err;
    json_t *run = json_load_file(path, 0, &err);
    if (!run) printf("# %s: %s\n", path, err.text);
    return run;
}

static void save_run(json_t *run, const char *path) {
    if (json_dump_file(run, path, JSON_INDENT(1)) != 0) printf("# cannot rewrite %s\n", path);
    json_decref(run);
}

/* variant `name`'s record in run (NULL: none) */
static json_t *run_variant(json_t *run, const char *name) {
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(run, "variants"), i, v) {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0) return v;
    }
    return NULL;
}

/* Rewrites DIR/run.json: variant `name`'s epoch `epoch` (0-based) gets `key` += delta (delta NaN: `key` = null, a
 * loss not measured), or, with name NULL, the configuration's train.lr is set to delta. */
static void edit_run(const char *dir, const char *name, size_t epoch, const char *key, double delta) {
    char p[4400];
    json_t *run = load_run(dir, p, sizeof p);
    if (!run) return;
    if (!name) {
        json_object_set_new(json_object_get(json_object_get(run, "config"), "train"), "lr", json_real(delta));
    } else {
        json_t *e = json_array_get(json_object_get(run_variant(run, name), "epochs"), epoch);
        json_object_set_new(e, key, isnan(delta) ? json_null() : json_real(json_number_value(json_object_get(e, key)) + delta));
    }
    save_run(run, p);
}

/* Rewrites DIR/run.json: variant `name`'s tool.git_commit = commit (the recorded run predates the per-variant tool). */
static void set_commit(const char *dir, const char *name, const char *commit) {
    char p[4400];
    json_t *run = load_run(dir, p, sizeof p);
    if (!run) return;
    json_object_set_new(run_variant(run, name), "tool", json_pack("{s:s}", "git_commit", commit));
    save_run(run, p);
}

/* whether the line starting at line (NULL: no) ends with tail */
static int line_ends(const char *line, const char *tail) {
    if (!line) return 0;
    const char *end = strchr(line, '\n');
    const size_t len = end ? (size_t)(end - line) : strlen(line), n = strlen(tail);
    return len >= n && memcmp(line + len - n, tail, n) == 0;
}

/* Three runs compared: rep_b repeats rep_a except flash's epoch-2 validation loss (+0.0125), lsh's epoch-1 train
 * loss (-0.5) and mla's epoch-1 validation loss (null: never "identical", its difference n/a); rep_c has another
 * learning rate, so none of its variants counts as a repeat. baseline was trained by the same commit in rep_a and
 * rep_b, sdpa by two, the others name none. */
static void test_repeats(void) {
    char a[4200], b[4200], c[4200];
    copy_run("rep_a", a, sizeof a);
    copy_run("rep_b", b, sizeof b);
    copy_run("rep_c", c, sizeof c);
    edit_run(b, "flash", 1, "val_loss", 0.0125);
    edit_run(b, "lsh", 0, "train_loss", -0.5);
    edit_run(b, "mla", 0, "val_loss", NAN);
    edit_run(c, NULL, 0, NULL, 1e-3);
    set_commit(a, "baseline", "cccccccccccc");
    set_commit(b, "baseline", "cccccccccccc");
    set_commit(a, "sdpa", "aaaaaaaaaaaa");
    set_commit(b, "sdpa", "bbbbbbbbbbbb");
    const char *cmp[] = {b, c};
    ab_report_opts o = {.compare_dirs = cmp, .n_compare = 2, .gnuplot = ""};
    ab_report_outcome out;
    ab_status st = ab_report_write(a, &o, &out);
    char *md = slurp(a, "report.md");
    TEST_TRUE("repeats_section", st == AB_OK && md && strstr(md, "## Repeated runs"), "st %d: %s", st, ab_error());
    if (!md) return;
    const char *sec = strstr(md, "## Repeated runs");
    TEST_TRUE("repeats_baseline_identical", sec && strstr(sec, "| Baseline Self-Attention (GPT-2) | 2 | 2 | identical | 0 | 0 |"),
              "%.600s", sec ? sec : md);
    TEST_TRUE("repeats_flash_val_gap", sec && strstr(sec, "| FlashAttention v2 | 2 | 2 | differ | 0.0125 | 0 |"), "%.900s",
              sec ? sec : md);
    TEST_TRUE("repeats_lsh_train_gap", sec && strstr(sec, "| differ | 0 | 0.5 |"), "%.900s", sec ? sec : md);
    TEST_TRUE("repeats_missing_loss_differs", sec && strstr(sec, "| Multi-Head Latent Attention | 2 | 2 | differ | n/a |"),
              "%.1200s", sec ? sec : md);
    const char *sdpa = sec ? strstr(sec, "| Scaled Dot-Product Attention |") : NULL;
    const char *base = sec ? strstr(sec, "| Baseline Self-Attention (GPT-2) |") : NULL;
    const char *flash = sec ? strstr(sec, "| FlashAttention v2 |") : NULL;
    TEST_TRUE("repeats_commit_same", line_ends(base, " | cccccccccccc |"), "%.900s", sec ? sec : md);
    TEST_TRUE("repeats_commits_differ", line_ends(sdpa, "| aaaaaaaaaaaa / bbbbbbbbbbbb |"), "%.900s", sec ? sec : md);
    TEST_TRUE("repeats_commit_none", line_ends(flash, "| n/a |"), "%.900s", sec ? sec : md);
    TEST_TRUE("repeats_other_config_excluded", sec && !strstr(sec, "| 3 |"), "rep_c counted as a repeat: %.900s",
              sec ? sec : md);
    free(md);
    /* a single run, or runs of other configurations only: no section */
    o.compare_dirs = (const char *[]){c};
    o.n_compare = 1;
    st = ab_report_write(a, &o, &out);
    md = slurp(a, "report.md");
    TEST_TRUE("repeats_none_without_repeat", st == AB_OK && md && !strstr(md, "## Repeated runs"), "section present");
    free(md);
}

static void test_cli(void) {
    char dir[4200], cmd[9000], out[4096];
    copy_run("cli", dir, sizeof dir);
    snprintf(cmd, sizeof cmd, "'%s' report '%s' --no-charts 2>&1", test_bin(), dir);
    int rc = test_run_cmd(cmd, out, sizeof out);
    TEST_TRUE("cli_report_ok", rc == 0 && strstr(out, "report.md"), "rc %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' report --no-charts '%s' --compare '%s' 2>&1", test_bin(), dir, dir);
    rc = test_run_cmd(cmd, out, sizeof out);
    char *md = slurp(dir, "report.md");
    TEST_TRUE("cli_report_compare_after_dir", rc == 0 && md && strstr(md, "[cli]"), "rc %d: %s", rc, out);
    free(md);
    snprintf(cmd, sizeof cmd, "'%s' report '%s' extra 2>&1", test_bin(), dir);
    rc = test_run_cmd(cmd, out, sizeof out);
    TEST_TRUE("cli_report_extra_arg", rc == 2 && strstr(out, "extra"), "rc %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' report 2>&1", test_bin());
    rc = test_run_cmd(cmd, out, sizeof out);
    TEST_TRUE("cli_report_usage", rc == 2, "rc %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' report '%s/nonexistent' 2>&1", test_bin(), tmp);
    rc = test_run_cmd(cmd, out, sizeof out);
    TEST_TRUE("cli_report_missing_dir", rc == 1 && strstr(out, "run.json"), "rc %d: %s", rc, out);
}

/* The Variants table names the commit of the binary that ran each variant (a study resumed with another build mixes
 * them): flash's from its run.json entry, n/a for the others (the recorded run predates the field). */
static void test_variant_commits(void) {
    char dir[4200], p[4400];
    copy_run("commits", dir, sizeof dir);
    snprintf(p, sizeof p, "%s/run.json", dir);
    json_error_t err;
    json_t *run = json_load_file(p, 0, &err), *v;
    size_t i;
    if (run) {
        json_array_foreach(json_object_get(run, "variants"), i, v) if (!strcmp(json_string_value(json_object_get(v, "name")), "flash"))
            json_object_set_new(v, "tool", json_pack("{s:s,s:s,s:s}", "name", "attnbench", "version", "0.1.0", "git_commit",
                                                     "0123456789ab"));
        if (json_dump_file(run, p, JSON_INDENT(1)) != 0) printf("# cannot rewrite %s\n", p);
        json_decref(run);
    }
    ab_report_opts o = {.gnuplot = ""};
    ab_report_outcome out;
    ab_status st = ab_report_write(dir, &o, &out);
    char *md = slurp(dir, "report.md");
    const char *sec = md ? strstr(md, "## Variants") : NULL;
    TEST_TRUE("variants_commit_column", st == AB_OK && sec && strstr(sec, "| epochs | commit |"), "st %d: %.400s", st,
              sec ? sec : "");
    TEST_TRUE("variants_commit_recorded", sec && strstr(sec, "| flash | ok |  | 2 | 0123456789ab |"), "%.1200s", sec ? sec : "");
    TEST_TRUE("variants_commit_absent_na", sec && strstr(sec, "| baseline | ok |  | 2 | n/a |"), "%.1200s", sec ? sec : "");
    free(md);
}

/* CSV files of a results directory that `report` must refuse, each with the file:line of the fault: the
 * file is replaced in a copy of the recorded run. */
#define POWER_HEADER_NUL "t_s,variant,ph\0ase\n0.5,flash,train\n"
#define STEPS_HEADER_NUL "variant,step\0\nflash,1\n"
static void test_bad_csv(void) {
    static const struct {
        const char *name, *file, *text;
        size_t len; /* 0: strlen(text) */
        const char *message;
    } cases[] = {
        /* the CSV reader stopped at a NUL byte and reported a run without power samples */
        {"report_power_nul_byte", "power.csv", POWER_HEADER_NUL, sizeof POWER_HEADER_NUL - 1, "power.csv:1: a NUL byte"},
        /* blank lines were not counted in the line numbers */
        {"report_power_short_row_line", "power.csv", "t_s,variant,phase\n0.5,flash,train\n\n0.6,flash\n", 0,
         "power.csv:4: 2 fields, the header has 3"},
        {"report_steps_nul_byte", "steps.csv", STEPS_HEADER_NUL, sizeof STEPS_HEADER_NUL - 1, "steps.csv:1: a NUL byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[4200], p[4400];
        copy_run(cases[i].name, dir, sizeof dir);
        snprintf(p, sizeof p, "%s/%s", dir, cases[i].file);
        ab_write_file_atomic(p, cases[i].text, cases[i].len ? cases[i].len : strlen(cases[i].text));
        ab_report_opts o = {.gnuplot = ""};
        ab_report_outcome out;
        ab_status st = ab_report_write(dir, &o, &out);
        TEST_TRUE(cases[i].name, st == AB_ERR_FORMAT && strstr(ab_error(), cases[i].message), "status %s: %s",
                  ab_status_name(st), st == AB_OK ? "accepted" : ab_error());
    }
}

int main(void) {
    fake_src_dir(__FILE__, tests_dir, sizeof tests_dir);
    if (!fake_tmpdir(tmp, sizeof tmp, "report")) return 1;
    test_with_charts();
    test_without_gnuplot();
    test_compare();
    test_repeats();
    test_variant_commits();
    test_bad_csv();
    test_cli();
    fake_rmtree(tmp);
    return TEST_SUMMARY();
}
