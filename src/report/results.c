/*
 * results.c — the run record (a jansson tree, the single source of truth) and the files derived from it:
 * run.json, epochs.csv, inference.csv from the tree; steps.csv from the recorded steps; power.csv from
 * the sampler. Every rewrite goes through core/fsutil.h (temporary file + rename).
 *
 * Nulls: a NAN figure becomes JSON null plus "<key>_reason" (a string), and an empty CSV field.
 */
#include "report/results.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "prof/memory.h"
#include "prof/timer.h"
#include "report/env.h"

#define JSON_DUMP_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(12))

typedef struct {
    char *variant;              /* owned copy of the variant name */
    ab_step_record s;
} step_row;

struct ab_results {
    char dir[4096];
    json_t *run;                /* the whole run.json */
    json_t *cur;                /* the current variant object inside run.variants (borrowed) */
    double cur_t0;              /* ab_now_s() at begin_variant */
    ab_results_opts opts;
    step_row *steps;
    size_t n_steps, cap_steps;
    char *power_prefix;         /* power.csv rows of earlier sessions (resume), without the header */
    double mono0, wall0;        /* ab_now_s() and ab_wall_s() at open: maps sample times to run time */
    double run_start_unix_s;
};

/* ------------------------------------------------------------------ JSON helpers */

/* obj[key] = v, or null and obj[key_reason] = reason when v is not finite. */
static void set_num(json_t *obj, const char *key, double v, const char *reason) {
    char rkey[128];
    snprintf(rkey, sizeof rkey, "%s_reason", key);
    if (isfinite(v)) {
        json_object_set_new(obj, key, json_real(v));
        json_object_del(obj, rkey);
    } else {
        json_object_set_new(obj, key, json_null());
        json_object_set_new(obj, rkey, json_string(reason && *reason ? reason : "not measured"));
    }
}

static void set_int(json_t *obj, const char *key, long long v) { json_object_set_new(obj, key, json_integer(v)); }
static void set_str(json_t *obj, const char *key, const char *v) { json_object_set_new(obj, key, json_string(v ? v : "")); }

/* obj[key] is the string want. */
static int str_is(const json_t *obj, const char *key, const char *want) {
    const char *s = json_string_value(json_object_get(obj, key));
    return s && !strcmp(s, want);
}

/* A number from obj[key]; NAN when absent or null. */
static double get_num(const json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void now_iso(char *out, size_t n) { ab_utc_iso8601(ab_wall_s(), out, n); }

static json_t *energy_to_json(const ab_energy_window *w) {
    json_t *o = json_object();
    set_num(o, "seconds", w->seconds, "");
    set_num(o, "gpu_j", w->gpu_j, w->gpu_reason);
    set_num(o, "gpu_above_idle_j", w->gpu_above_idle_j, w->gpu_reason);
    set_num(o, "cpu_j", w->cpu_j, w->cpu_reason);
    set_num(o, "total_j", w->total_j, "no energy source (GPU and CPU both unavailable)");
    set_num(o, "tokens", w->tokens, "");
    set_num(o, "j_per_token", w->j_per_token, isnan(w->total_j) ? "no energy source" : "no tokens in the window");
    set_num(o, "co2e_g", w->co2e_g, "no energy source");
    set_num(o, "grid_gco2_per_kwh", w->grid_gco2_per_kwh, "");
    set_num(o, "mean_power_w", w->mean_power_w, w->power_reason);
    set_num(o, "max_power_w", w->max_power_w, w->power_reason);
    json_object_set_new(o, "reliable", json_boolean(w->reliable));
    if (!w->reliable) set_str(o, "reliable_reason", w->reliable_reason);
    return o;
}

static void copy_reason(char *dst, const json_t *o, const char *key) {
    char rkey[128];
    snprintf(rkey, sizeof rkey, "%s_reason", key);
    const char *r = json_string_value(json_object_get(o, rkey));
    snprintf(dst, AB_REASON_LEN, "%s", r ? r : "");
}

static void energy_from_json(const json_t *o, ab_energy_window *w) {
    ab_energy_window_null(w, "");
    w->seconds = get_num(o, "seconds");
    w->gpu_j = get_num(o, "gpu_j");
    w->gpu_above_idle_j = get_num(o, "gpu_above_idle_j");
    w->cpu_j = get_num(o, "cpu_j");
    w->tokens = get_num(o, "tokens");
    w->grid_gco2_per_kwh = get_num(o, "grid_gco2_per_kwh");
    w->mean_power_w = get_num(o, "mean_power_w");
    w->max_power_w = get_num(o, "max_power_w");
    w->total_j = get_num(o, "total_j");
    w->j_per_token = get_num(o, "j_per_token");
    w->co2e_g = get_num(o, "co2e_g");
    w->reliable = json_is_true(json_object_get(o, "reliable"));
    const char *rr = json_string_value(json_object_get(o, "reliable_reason"));
    snprintf(w->reliable_reason, sizeof w->reliable_reason, "%s", rr ? rr : "");
    copy_reason(w->gpu_reason, o, isnan(w->gpu_j) ? "gpu_j" : "gpu_above_idle_j");
    copy_reason(w->cpu_reason, o, "cpu_j");
    copy_reason(w->power_reason, o, "mean_power_w");
}

/* ------------------------------------------------------------------ CSV writers */

static void csv_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, ",%.9g", v);
    else fputs(",", f);
}

/* A CSV field: quoted when it holds a comma, quote or newline. */
static void csv_str(FILE *f, const char *s, int first) {
    if (!first) fputc(',', f);
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static ab_status write_csv(const char *dir, const char *name, ab_status (*body)(ab_results *r, FILE *f),
                           ab_results *r) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ab_atomic_file af;
    AB_TRY(ab_atomic_open(&af, path));
    ab_status st = body(r, af.f);
    if (st != AB_OK) {
        ab_atomic_abort(&af);
        return st;
    }
    return ab_atomic_commit(&af);
}

static ab_status epochs_body(ab_results *r, FILE *f) {
    fputs("variant,epoch,steps,train_time_s,train_loss,val_loss,val_ppl,tokens,loss_tokens,tokens_per_s,"
          "effective_tokens_per_s,gpu_j,gpu_above_idle_j,cpu_j,j_per_token,co2e_g,mean_power_w,max_power_w,"
          "energy_reliable\n", f);
    size_t i, j;
    json_t *v, *e;
    json_array_foreach(json_object_get(r->run, "variants"), i, v) {
        json_array_foreach(json_object_get(v, "epochs"), j, e) {
            json_t *en = json_object_get(e, "energy");
            csv_str(f, json_string_value(json_object_get(v, "name")), 1);
            fprintf(f, ",%lld,%lld", (long long)json_integer_value(json_object_get(e, "epoch")),
                    (long long)json_integer_value(json_object_get(e, "steps")));
            const char *keys[] = {"train_time_s", "train_loss", "val_loss", "val_ppl", "tokens", "loss_tokens",
                                  "tokens_per_s", "effective_tokens_per_s"};
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) csv_num(f, get_num(e, keys[k]));
            const char *ekeys[] = {"gpu_j", "gpu_above_idle_j", "cpu_j", "j_per_token", "co2e_g", "mean_power_w", "max_power_w"};
            for (size_t k = 0; k < sizeof ekeys / sizeof ekeys[0]; k++) csv_num(f, get_num(en, ekeys[k]));
            fprintf(f, ",%s\n", json_is_true(json_object_get(en, "reliable")) ? "true" : "false");
        }
    }
    return AB_OK;
}

static ab_status steps_body(ab_results *r, FILE *f) {
    fputs("variant,step,epoch,loss,lr,grad_norm,step_time_ms,tokens,loss_tokens\n", f);
    for (size_t i = 0; i < r->n_steps; i++) {
        const ab_step_record *s = &r->steps[i].s;
        csv_str(f, r->steps[i].variant, 1);
        fprintf(f, ",%ld,%d", s->step, s->epoch);
        csv_num(f, s->loss);
        csv_num(f, s->lr);
        csv_num(f, s->grad_norm);
        csv_num(f, s->step_time_ms);
        fprintf(f, ",%lld,%lld\n", s->tokens, s->loss_tokens);
    }
    return AB_OK;
}

static ab_status inference_body(ab_results *r, FILE *f) {
    fputs("variant,batch,prompt_tokens,gen_tokens,prefill_ms,decode_ms_p50,decode_ms_p90,decode_ms_p99,"
          "cache_bytes_per_token_analytical,cache_bytes_measured\n", f);
    size_t i, j;
    json_t *v, *b;
    json_array_foreach(json_object_get(r->run, "variants"), i, v) {
        json_t *inf = json_object_get(v, "inference");
        if (!json_is_true(json_object_get(inf, "available"))) continue;
        json_array_foreach(json_object_get(inf, "batches"), j, b) {
            csv_str(f, json_string_value(json_object_get(v, "name")), 1);
            fprintf(f, ",%lld,%lld,%lld", (long long)json_integer_value(json_object_get(b, "batch")),
                    (long long)json_integer_value(json_object_get(inf, "prompt_tokens")),
                    (long long)json_integer_value(json_object_get(inf, "gen_tokens")));
            const char *keys[] = {"prefill_ms", "decode_ms_p50", "decode_ms_p90", "decode_ms_p99"};
            for (size_t k = 0; k < 4; k++) csv_num(f, get_num(b, keys[k]));
            csv_num(f, get_num(inf, "cache_bytes_per_token_analytical"));
            csv_num(f, get_num(inf, "cache_bytes_measured"));
            fputc('\n', f);
        }
    }
    return AB_OK;
}

#define POWER_CSV_HEADER                                                                                   \
    "t_s,variant,phase,gpu_power_w,gpu_power_avg_w,sm_clock_mhz,mem_clock_mhz,gpu_util_pct,mem_util_pct,"  \
    "temp_c,mem_used_bytes,throttle_reasons,cpu_power_w\n"

static ab_status power_body(ab_results *r, FILE *f) {
    fputs(POWER_CSV_HEADER, f);
    if (r->power_prefix) fputs(r->power_prefix, f);
    if (!r->opts.sampler) return AB_OK;
    ab_power_sample buf[512];
    size_t from = 0, k;
    while ((k = ab_sampler_copy(r->opts.sampler, from, buf, sizeof buf / sizeof buf[0])) > 0) {
        for (size_t i = 0; i < k; i++) {
            const ab_power_sample *p = &buf[i];
            const char *variant, *phase;
            ab_sampler_label(r->opts.sampler, p->label, &variant, &phase);
            double t = r->wall0 + (p->t_s - r->mono0) - r->run_start_unix_s;
            fprintf(f, "%.3f", t);
            csv_str(f, variant, 0);
            csv_str(f, phase, 0);
            csv_num(f, p->gpu.power_instant_w);
            csv_num(f, p->gpu.power_avg_w);
            csv_num(f, p->gpu.sm_clock_mhz);
            csv_num(f, p->gpu.mem_clock_mhz);
            csv_num(f, p->gpu.util_gpu_pct);
            csv_num(f, p->gpu.util_mem_pct);
            csv_num(f, p->gpu.temp_c);
            csv_num(f, p->gpu.mem_used_bytes);
            if (p->gpu.throttle_valid) fprintf(f, ",0x%" PRIx64, p->gpu.throttle_reasons);
            else fputs(",", f);
            csv_num(f, p->cpu_power_w);
            fputc('\n', f);
        }
        from += k;
    }
    return AB_OK;
}

ab_status ab_results_flush(ab_results *r) {
    char ts[32];
    now_iso(ts, sizeof ts);
    set_str(r->run, "updated_at", ts);
    char *text = json_dumps(r->run, JSON_DUMP_FLAGS);
    if (!text) return ab_fail(AB_ERR_OOM, "run.json: cannot serialise");
    char path[4200];
    snprintf(path, sizeof path, "%s/run.json", r->dir);
    size_t n = strlen(text);
    text[n] = '\n'; /* replace the NUL: the file ends with a newline */
    ab_status st = ab_write_file_atomic(path, text, n + 1);
    free(text);
    AB_TRY(st);
    AB_TRY(write_csv(r->dir, "epochs.csv", epochs_body, r));
    AB_TRY(write_csv(r->dir, "steps.csv", steps_body, r));
    AB_TRY(write_csv(r->dir, "inference.csv", inference_body, r));
    return write_csv(r->dir, "power.csv", power_body, r);
}

/* ------------------------------------------------------------------ loading */

/* First key path where a and b differ ("train.lr"), into out; "" when equal. */
static void first_difference(const json_t *a, const json_t *b, const char *prefix, char *out, size_t n) {
    out[0] = '\0';
    if (json_equal((json_t *)a, (json_t *)b)) return;
    if (json_is_object(a) && json_is_object(b)) {
        const char *k;
        json_t *va;
        json_object_foreach((json_t *)a, k, va) {
            char p[256];
            snprintf(p, sizeof p, "%s%s%s", prefix, *prefix ? "." : "", k);
            json_t *vb = json_object_get(b, k);
            if (!vb) {
                snprintf(out, n, "%s (missing now)", p);
                return;
            }
            first_difference(va, vb, p, out, n);
            if (out[0]) return;
        }
        json_t *vb;
        json_object_foreach((json_t *)b, k, vb) if (!json_object_get(a, k)) {
            snprintf(out, n, "%s%s%s (new)", prefix, *prefix ? "." : "", k);
            return;
        }
    }
    snprintf(out, n, "%s", *prefix ? prefix : "(top level)");
}

static void free_steps(step_row *rows, size_t n) {
    for (size_t i = 0; i < n; i++) free(rows[i].variant);
    free(rows);
}

static const char *const step_fields[9] = {"variant", "step", "epoch", "loss", "lr", "grad_norm", "step_time_ms",
                                           "tokens", "loss_tokens"};

/* A whole field as an integer (strtoll must read all of it; no '+'). */
static int field_int(const char *f, long long *v) {
    char *end;
    errno = 0;
    *v = strtoll(f, &end, 10);
    return *f && *f != '+' && !errno && !*end;
}

/* A whole field as a number; empty = null = NAN. */
static int field_num(const char *f, double *v) {
    char *end;
    *v = *f ? strtod(f, &end) : NAN;
    return !*f || !*end;
}

/* Parses one steps.csv line (NUL-terminated in place) into a row. Returns 0, or the 1-based number of the
 * field at fault with *why set, or -1 when the line does not have 9 fields. */
static int parse_step_line(char *line, step_row *row, const char **why) {
    char *field[9];
    int n = 0;
    /* steps.csv never quotes: variant names are identifiers. Empty fields are kept (nulls). */
    for (char *p = line;;) {
        if (n == 9) return -1;
        field[n++] = p;
        if (!(p = strchr(p, ','))) break;
        *p++ = '\0';
    }
    if (n != 9) return -1;
    ab_step_record *s = &row->s;
    long long iv[4];
    const int ints[4] = {1, 2, 7, 8};
    for (int k = 0; k < 4; k++)
        if (!field_int(field[ints[k]], &iv[k])) {
            *why = "an integer";
            return ints[k] + 1;
        }
    double *nums[4] = {&s->loss, &s->lr, &s->grad_norm, &s->step_time_ms};
    for (int k = 0; k < 4; k++)
        if (!field_num(field[3 + k], nums[k])) {
            *why = "a number or an empty field (null)";
            return 3 + k + 1;
        }
    if (!*field[0]) {
        *why = "a variant name";
        return 1;
    }
    s->step = (long)iv[0];
    s->epoch = (int)iv[1];
    s->tokens = iv[2];
    s->loss_tokens = iv[3];
    row->variant = strdup(field[0]);
    return 0;
}

/* Reads DIR/steps.csv into rows (missing file: zero rows). Blank lines are skipped; the first other line is
 * the header. Empty number fields are nulls (a step without loss tokens has no loss) and read as NAN, so a
 * rewrite writes them empty again. On failure nothing is returned (and nothing is left allocated). */
static ab_status load_steps(const char *dir, step_row **rows, size_t *n) {
    *rows = NULL;
    *n = 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/steps.csv", dir);
    if (!ab_file_exists(path)) return AB_OK;
    char *text;
    size_t len;
    AB_TRY(ab_read_file(path, &text, &len));
    size_t cap = 0;
    int header = 1;
    ab_text_lines it;
    ab_status st = ab_text_lines_open(&it, path, text, len);
    for (char *line; st == AB_OK && (line = ab_text_lines_next(&it));) {
        const size_t line_no = it.line_no;
        if (header) {
            header = 0;
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            step_row *nr = realloc(*rows, cap * sizeof *nr);
            if (!nr) {
                st = ab_fail(AB_ERR_OOM, "%s: out of memory", path);
                break;
            }
            *rows = nr;
        }
        const char *why = NULL;
        int bad = parse_step_line(line, &(*rows)[*n], &why);
        if (bad < 0)
            st = ab_fail(AB_ERR_FORMAT, "%s:%zu: expected 9 comma-separated fields (%s, ..., %s)", path, line_no,
                         step_fields[0], step_fields[8]);
        else if (bad > 0)
            st = ab_fail(AB_ERR_FORMAT, "%s:%zu: field %d (%s): expected %s", path, line_no, bad, step_fields[bad - 1],
                         why);
        else if (!(*rows)[*n].variant)
            st = ab_fail(AB_ERR_OOM, "%s: out of memory", path);
        else
            (*n)++;
    }
    free(text);
    if (st != AB_OK) {
        free_steps(*rows, *n);
        *rows = NULL;
        *n = 0;
    }
    return st;
}

ab_status ab_results_load(const char *dir, ab_results_state *out) {
    memset(out, 0, sizeof *out);
    char path[4200];
    snprintf(path, sizeof path, "%s/run.json", dir);
    if (!ab_file_exists(path)) return ab_fail(AB_ERR_IO, "%s: no such file (not a results directory?)", path);
    json_error_t err;
    json_t *run = json_load_file(path, 0, &err);
    if (!run) return ab_fail(AB_ERR_FORMAT, "%s:%d:%d: invalid JSON: %s", path, err.line, err.column, err.text);
    json_t *sv = json_object_get(run, "schema_version");
    if (!json_is_integer(sv)) {
        json_decref(run);
        return ab_fail(AB_ERR_FORMAT, "%s: integer key 'schema_version' missing", path);
    }
    long long version = json_integer_value(sv);
    if (version != AB_RESULTS_SCHEMA_VERSION) {
        json_decref(run);
        return ab_fail(AB_ERR_FORMAT, "%s: schema_version is %lld, this build reads %d", path, version,
                       AB_RESULTS_SCHEMA_VERSION);
    }
    json_t *vs = json_object_get(run, "variants");
    if (!json_is_array(vs)) {
        json_decref(run);
        return ab_fail(AB_ERR_FORMAT, "%s: key 'variants' must be an array", path);
    }
    step_row *rows;
    size_t n_rows;
    ab_status st = load_steps(dir, &rows, &n_rows);
    if (st != AB_OK) {
        json_decref(run);
        return st;
    }
    size_t i;
    json_t *v;
    json_array_foreach(vs, i, v) {
        if (out->n_variants == AB_RESULTS_MAX_VARIANTS) break;
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *status = json_string_value(json_object_get(v, "status"));
        if (!name || !status) {
            free_steps(rows, n_rows);
            json_decref(run);
            return ab_fail(AB_ERR_FORMAT, "%s: variants[%zu] lacks a string 'name' or 'status'", path, i);
        }
        ab_results_variant_state *s = &out->v[out->n_variants++];
        snprintf(s->name, sizeof s->name, "%s", name);
        snprintf(s->status, sizeof s->status, "%s", status);
        size_t j;
        json_t *e;
        json_array_foreach(json_object_get(v, "epochs"), j, e) {
            int ep = (int)json_integer_value(json_object_get(e, "epoch"));
            if (ep > s->epochs_done) s->epochs_done = ep;
        }
        for (size_t k = 0; k < n_rows; k++)
            if (!strcmp(rows[k].variant, name)) s->steps_done++;
    }
    free_steps(rows, n_rows);
    out->run = run;
    return AB_OK;
}

void ab_results_state_free(ab_results_state *s) {
    json_decref(s->run);
    s->run = NULL;
}

const ab_results_variant_state *ab_results_find(const ab_results_state *s, const char *name) {
    for (int i = 0; i < s->n_variants; i++)
        if (!strcmp(s->v[i].name, name)) return &s->v[i];
    return NULL;
}

/* ------------------------------------------------------------------ the run */

static json_t *idle_to_json(const ab_idle_power *idle) {
    json_t *o = json_object();
    set_num(o, "seconds", idle->seconds, "");
    set_num(o, "gpu_w", idle->gpu_w, idle->gpu_reason);
    set_num(o, "cpu_w", idle->cpu_w, idle->cpu_reason);
    return o;
}

static json_t *measurement_json(const ab_results_opts *o) {
    json_t *m = json_object();
    set_int(m, "warmup_steps", o->warmup_steps);
    set_num(m, "grid_gco2_per_kwh", o->grid_gco2_per_kwh, "");
    json_t *peak = json_object();
    set_num(peak, "tflops", o->peak.available ? o->peak.tflops : NAN, o->peak.reason);
    if (o->peak.available) set_str(peak, "source", o->peak.source);
    json_object_set_new(m, "peak", peak);
    json_object_set_new(m, "idle", idle_to_json(&o->idle));
    set_num(m, "power_hz", o->sampler ? ab_sampler_hz(o->sampler) : NAN, "no power sampler (no NVML and no RAPL)");
    return m;
}

/* Reads the old power.csv rows (without header) for a resumed run. */
static void load_power_prefix(ab_results *r) {
    char path[4200];
    snprintf(path, sizeof path, "%s/power.csv", r->dir);
    char *text;
    size_t n;
    if (!ab_file_exists(path) || ab_read_file(path, &text, &n) != AB_OK) return;
    char *nl = strchr(text, '\n');
    if (nl && nl[1]) r->power_prefix = strdup(nl + 1);
    free(text);
}

ab_status ab_results_open(ab_results **out, const char *dir, json_t *env, json_t *config, const ab_results_opts *opts) {
    *out = NULL;
    AB_TRY(ab_mkdir_p(dir));
    ab_results *r = calloc(1, sizeof *r);
    if (!r) return ab_fail(AB_ERR_OOM, "results: out of memory");
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    r->opts = *opts;
    if (!(r->opts.grid_gco2_per_kwh > 0)) r->opts.grid_gco2_per_kwh = AB_DEFAULT_GRID_GCO2_PER_KWH;
    r->mono0 = ab_now_s();
    r->wall0 = ab_wall_s();
    char ts[32];
    if (opts->resume) {
        ab_results_state st;
        ab_status s = ab_results_load(dir, &st);
        if (s != AB_OK) {
            free(r);
            return ab_fail_context(s, "--resume %s: ", dir);
        }
        char diff[300];
        first_difference(json_object_get(st.run, "config"), config, "", diff, sizeof diff);
        if (diff[0]) {
            ab_results_state_free(&st);
            free(r);
            return ab_fail(AB_ERR_USAGE, "--resume %s: the configuration differs from the stored run at '%s'", dir, diff);
        }
        r->run = json_incref(st.run);
        ab_results_state_free(&st);
        ab_status ls = load_steps(dir, &r->steps, &r->n_steps);
        if (ls != AB_OK) {
            ab_results_close(r);
            return ls;
        }
        r->cap_steps = r->n_steps;
        r->run_start_unix_s = get_num(r->run, "started_unix_s");
        if (isnan(r->run_start_unix_s)) r->run_start_unix_s = r->wall0;
        load_power_prefix(r);
        json_t *resumes = json_object_get(r->run, "resumed_at");
        if (!json_is_array(resumes)) json_object_set_new(r->run, "resumed_at", resumes = json_array());
        now_iso(ts, sizeof ts);
        json_array_append_new(resumes, json_string(ts));
        json_object_set_new(r->run, "env", json_deep_copy(env));
    } else {
        r->run = json_object();
        set_int(r->run, "schema_version", AB_RESULTS_SCHEMA_VERSION);
        json_object_set_new(r->run, "tool", ab_env_tool_json());
        ab_utc_iso8601(r->wall0, ts, sizeof ts);
        set_str(r->run, "started_at", ts);
        r->run_start_unix_s = r->wall0;
        json_object_set_new(r->run, "started_unix_s", json_real(r->wall0));
        json_object_set_new(r->run, "env", env ? json_deep_copy(env) : json_object());
        json_object_set_new(r->run, "config", config ? json_deep_copy(config) : json_object());
        json_object_set_new(r->run, "variants", json_array());
    }
    set_str(r->run, "status", "running");
    json_object_set_new(r->run, "measurement", measurement_json(&r->opts));
    ab_status st = ab_results_flush(r);
    if (st != AB_OK) {
        ab_results_close(r);
        return st;
    }
    *out = r;
    return AB_OK;
}

/* Drops recorded steps of `name` whose epoch >= from_epoch. */
static void drop_steps(ab_results *r, const char *name, int from_epoch) {
    size_t w = 0;
    for (size_t i = 0; i < r->n_steps; i++) {
        if (!strcmp(r->steps[i].variant, name) && r->steps[i].s.epoch >= from_epoch) {
            free(r->steps[i].variant);
            continue;
        }
        r->steps[w++] = r->steps[i];
    }
    r->n_steps = w;
}

ab_status ab_results_begin_variant(ab_results *r, const ab_variant_begin *b) {
    if (!b->name || !*b->name) return ab_fail(AB_ERR_INTERNAL, "results: variant without a name");
    json_t *vs = json_object_get(r->run, "variants"), *v = NULL, *it;
    size_t i;
    json_array_foreach(vs, i, it) {
        const char *n = json_string_value(json_object_get(it, "name"));
        if (n && !strcmp(n, b->name)) v = it;
    }
    int keep_below = b->resume_from_epoch > 1 ? b->resume_from_epoch : 1;
    if (v && keep_below > 1) {
        json_t *epochs = json_object_get(v, "epochs"), *kept = json_array(), *e;
        json_array_foreach(epochs, i, e) if (json_integer_value(json_object_get(e, "epoch")) < keep_below)
            json_array_append(kept, e);
        json_object_set_new(v, "epochs", kept);
    } else {
        if (!v) {
            v = json_object();
            json_array_append_new(vs, v);
        }
        json_object_clear(v);
    }
    drop_steps(r, b->name, keep_below);
    char ts[32];
    now_iso(ts, sizeof ts);
    set_str(v, "name", b->name);
    set_str(v, "title", b->title ? b->title : b->name);
    set_str(v, "backend", b->backend ? b->backend : "cpu");
    json_object_set_new(v, "tool", ab_env_tool_json()); /* a resumed study may run variants with other builds */
    set_str(v, "status", "running");
    json_object_del(v, "failure_reason");
    set_str(v, "started_at", ts);
    json_t *params = json_object();
    set_int(params, "total", b->params_total);
    set_int(params, "attention", b->params_attention);
    json_object_set_new(v, "params", params);
    json_object_set_new(v, "hparams", b->hparams ? json_deep_copy(b->hparams) : json_object());
    if (!json_object_get(v, "epochs")) json_object_set_new(v, "epochs", json_array());
    r->cur = v;
    r->cur_t0 = ab_now_s();
    if (r->opts.sampler) ab_sampler_set_label(r->opts.sampler, b->name, "train");
    return ab_results_flush(r);
}

ab_status ab_results_step(ab_results *r, const ab_step_record *s) {
    if (!r->cur) return ab_fail(AB_ERR_INTERNAL, "results: step recorded outside a variant");
    if (r->n_steps == r->cap_steps) {
        size_t cap = r->cap_steps ? r->cap_steps * 2 : 1024;
        step_row *nr = realloc(r->steps, cap * sizeof *nr);
        if (!nr) return ab_fail(AB_ERR_OOM, "results: out of memory for steps");
        r->steps = nr;
        r->cap_steps = cap;
    }
    step_row *row = &r->steps[r->n_steps];
    row->variant = strdup(json_string_value(json_object_get(r->cur, "name")));
    if (!row->variant) return ab_fail(AB_ERR_OOM, "results: out of memory for steps");
    row->s = *s;
    r->n_steps++;
    return AB_OK;
}

/* Fills a window's mean/max power from the sampler when the caller did not. */
static void fill_power(ab_results *r, ab_energy_window *w) {
    if (!isnan(w->mean_power_w) || !r->opts.sampler) return;
    ab_power_window pw;
    ab_sampler_window(r->opts.sampler, w->t_start_s, w->t_end_s, &pw);
    w->mean_power_w = pw.mean_power_w;
    w->max_power_w = pw.max_power_w;
    if (isnan(w->mean_power_w))
        snprintf(w->power_reason, sizeof w->power_reason, "%s",
                 pw.n ? "no GPU power reading in the samples" : "no power samples in the window (shorter than 1/--power-hz?)");
}

ab_status ab_results_epoch(ab_results *r, const ab_epoch_record *e) {
    if (!r->cur) return ab_fail(AB_ERR_INTERNAL, "results: epoch recorded outside a variant");
    json_t *o = json_object();
    set_int(o, "epoch", e->epoch);
    set_int(o, "steps", e->steps);
    set_num(o, "train_time_s", e->train_time_s, "");
    set_num(o, "train_loss", e->train_loss, "non-finite loss");
    set_num(o, "val_loss", e->val_loss, e->val_reason ? e->val_reason : "no validation split");
    set_num(o, "val_ppl", exp(e->val_loss), e->val_reason ? e->val_reason : "no validation split");
    set_int(o, "tokens", e->tokens);
    set_int(o, "loss_tokens", e->loss_tokens);
    set_num(o, "tokens_per_s", e->train_time_s > 0 ? (double)e->tokens / e->train_time_s : NAN, "zero epoch time");
    set_num(o, "effective_tokens_per_s", e->train_time_s > 0 ? (double)e->loss_tokens / e->train_time_s : NAN,
            "zero epoch time");
    ab_energy_window w = e->energy;
    fill_power(r, &w);
    json_object_set_new(o, "energy", energy_to_json(&w));
    json_t *epochs = json_object_get(r->cur, "epochs");
    /* re-recording an epoch (a resumed run) replaces it */
    size_t i;
    json_t *old;
    json_array_foreach(epochs, i, old) if (json_integer_value(json_object_get(old, "epoch")) == e->epoch) {
        json_array_remove(epochs, i);
        break;
    }
    json_array_append_new(epochs, o);
    return ab_results_flush(r);
}

void ab_inference_result_null(ab_inference_result *ir, const char *reason) {
    memset(ir, 0, sizeof *ir);
    snprintf(ir->reason, sizeof ir->reason, "%s", reason);
    for (int b = 0; b < AB_INFER_BATCHES; b++)
        ir->prefill_ms[b] = ir->decode_ms_p50[b] = ir->decode_ms_p90[b] = ir->decode_ms_p99[b] = NAN;
    ir->cache_bytes_per_token_analytical = ir->cache_bytes_measured = NAN;
}

static json_t *inference_json(const ab_inference_result *ir) {
    json_t *o = json_object();
    json_object_set_new(o, "available", json_boolean(ir->available));
    if (!ir->available) {
        set_str(o, "reason", ir->reason[0] ? ir->reason : "not run");
        return o;
    }
    set_int(o, "prompt_tokens", ir->prompt_tokens);
    set_int(o, "gen_tokens", ir->gen_tokens);
    set_int(o, "repeats", ir->repeats);
    const char *why = ir->reason[0] ? ir->reason : "not measured";
    set_num(o, "cache_bytes_per_token_analytical", ir->cache_bytes_per_token_analytical, why);
    set_num(o, "cache_bytes_measured", ir->cache_bytes_measured, why);
    json_t *batches = json_array();
    for (int b = 0; b < AB_INFER_BATCHES; b++) {
        if (ir->batch[b] <= 0) continue;
        json_t *x = json_object();
        set_int(x, "batch", ir->batch[b]);
        set_num(x, "prefill_ms", ir->prefill_ms[b], why);
        set_num(x, "decode_ms_p50", ir->decode_ms_p50[b], why);
        set_num(x, "decode_ms_p90", ir->decode_ms_p90[b], why);
        set_num(x, "decode_ms_p99", ir->decode_ms_p99[b], why);
        json_array_append_new(batches, x);
    }
    json_object_set_new(o, "batches", batches);
    return o;
}

static json_t *memory_json(ab_results *r, const ab_variant_end *e) {
    json_t *m = json_object();
    set_int(m, "peak_allocated_bytes", (long long)e->mem.peak_total);
    json_t *at = json_object(), *pk = json_object();
    for (int c = 0; c < MEM_CATEGORY_COUNT; c++) {
        set_int(at, mem_category_name((mem_category)c), (long long)e->mem.at_peak[c]);
        set_int(pk, mem_category_name((mem_category)c), (long long)e->mem.peak[c]);
    }
    json_object_set_new(m, "at_peak_by_category", at);
    json_object_set_new(m, "peak_by_category", pk);
    size_t rss = e->peak_rss_bytes ? e->peak_rss_bytes : ab_peak_rss_bytes();
    if (rss) set_int(m, "peak_rss_bytes", (long long)rss);
    else set_num(m, "peak_rss_bytes", NAN, "/proc/self/status and getrusage unavailable");
    double dev = e->peak_device_bytes;
    const char *why = e->peak_device_reason;
    if (isnan(dev) && r->opts.sampler) {
        ab_power_window pw;
        ab_sampler_window(r->opts.sampler, r->cur_t0, ab_now_s(), &pw);
        dev = pw.max_mem_used_bytes;
        if (isnan(dev)) why = "the sampler saw no device memory reading";
    }
    set_num(m, "peak_device_bytes", dev, why && *why ? why : "no NVML / cudaMemGetInfo reading");
    return m;
}

static json_t *flops_json(const ab_variant_end *e, double step_time_s, const ab_peak *peak) {
    json_t *o = json_object();
    if (!e->flops_available) {
        json_object_set_new(o, "model_per_step", json_null());
        set_str(o, "model_per_step_reason", e->flops_reason[0] ? e->flops_reason : "not computed");
        return o;
    }
    const ab_flops_step *f = &e->flops;
    set_num(o, "model_per_step", f->model_per_step, "");
    set_num(o, "hardware_per_step", f->hardware_per_step, "");
    set_num(o, "model_fwd", f->model_fwd, "");
    set_num(o, "model_bwd", f->model_bwd, "");
    set_num(o, "hardware_fwd", f->hw_fwd, "");
    set_num(o, "hardware_bwd", f->hw_bwd, "");
    json_t *a = json_object();
    set_num(a, "model_fwd", f->attn_model_fwd, "");
    set_num(a, "model_bwd", f->attn_model_bwd, "");
    set_num(a, "hardware_fwd", f->attn_hw_fwd, "");
    set_num(a, "hardware_bwd", f->attn_hw_bwd, "");
    set_num(a, "projections_fwd", f->attn_proj_fwd, "");
    set_num(a, "full_tt_fwd", f->attn_full_tt_fwd, "");
    json_object_set_new(o, "attention", a);
    json_t *rest = json_object();
    set_num(rest, "fwd", f->rest_fwd, "");
    set_num(rest, "bwd", f->rest_bwd, "");
    json_object_set_new(o, "rest", rest);
    set_num(o, "attention_share", f->attention_share, "");
    set_num(o, "full_tt_per_step", f->full_tt_per_step, "");
    set_num(o, "other_ops_fwd", f->other_ops_fwd, "");
    set_num(o, "tokens_per_step", f->tokens_per_step, "");
    ab_mfu mfu;
    ab_mfu_of(f, step_time_s, peak, &mfu);
    set_num(o, "achieved_tflops", mfu.achieved_tflops, mfu.reason);
    set_num(o, "mfu", mfu.mfu, mfu.reason);
    set_num(o, "peak_tflops", peak->available ? peak->tflops : NAN, peak->reason);
    return o;
}

/* Step-time statistics of the current variant's steps: steady state (step > warmup) and warmup. */
static json_t *step_time_json(ab_results *r, const char *name, double *median_ms, double *tokens_per_step,
                              double *loss_tokens_per_step) {
    size_t n = 0, nw = 0;
    double *st = malloc((r->n_steps + 1) * sizeof *st), *wu = malloc((r->n_steps + 1) * sizeof *wu);
    double tok = 0, ltok = 0;
    for (size_t i = 0; st && wu && i < r->n_steps; i++) {
        if (strcmp(r->steps[i].variant, name)) continue;
        const ab_step_record *s = &r->steps[i].s;
        if (s->step > r->opts.warmup_steps) {
            st[n++] = s->step_time_ms;
            tok += (double)s->tokens;
            ltok += (double)s->loss_tokens;
        } else {
            wu[nw++] = s->step_time_ms;
        }
    }
    ab_latency_stats ss, ws;
    ab_latency_stats_of(st, n, &ss);
    ab_latency_stats_of(wu, nw, &ws);
    free(st);
    free(wu);
    json_t *o = json_object();
    const char *why = "no steady-state steps (all within --warmup-steps)";
    set_int(o, "n", (long long)n);
    set_num(o, "median", ss.median, why);
    set_num(o, "p10", ss.p10, why);
    set_num(o, "p90", ss.p90, why);
    set_num(o, "mean", ss.mean, why);
    set_num(o, "min", ss.min, why);
    set_num(o, "max", ss.max, why);
    set_int(o, "warmup_steps", (long long)nw);
    set_num(o, "warmup_median", ws.median, "no warmup steps");
    set_num(o, "warmup_max", ws.max, "no warmup steps");
    *median_ms = ss.median;
    *tokens_per_step = n ? tok / (double)n : NAN;
    *loss_tokens_per_step = n ? ltok / (double)n : NAN;
    return o;
}

ab_status ab_results_end_variant(ab_results *r, const ab_variant_end *e) {
    if (!r->cur) return ab_fail(AB_ERR_INTERNAL, "results: end_variant without begin_variant");
    json_t *v = r->cur;
    const char *name = json_string_value(json_object_get(v, "name"));
    char ts[32];
    now_iso(ts, sizeof ts);
    set_str(v, "finished_at", ts);
    set_str(v, "status", e->ok ? "ok" : "failed");
    if (!e->ok) set_str(v, "failure_reason", e->failure_reason && *e->failure_reason ? e->failure_reason : "unknown");

    double median_ms, tps, ltps;
    json_object_set_new(v, "step_time_ms", step_time_json(r, name, &median_ms, &tps, &ltps));
    set_num(v, "tokens_per_s", tps / (median_ms * 1e-3), "no steady-state step time");
    set_num(v, "effective_tokens_per_s", ltps / (median_ms * 1e-3), "no steady-state step time");

    /* energy and time totals over the recorded epochs */
    ab_energy_window total;
    double train_time = 0;
    size_t i;
    json_t *ep;
    int any = 0;
    json_array_foreach(json_object_get(v, "epochs"), i, ep) {
        ab_energy_window w;
        energy_from_json(json_object_get(ep, "energy"), &w);
        if (!any) total = w;
        else ab_energy_window_add(&total, &w);
        any = 1;
        train_time += get_num(ep, "train_time_s");
    }
    if (!any) ab_energy_window_null(&total, "no finished epoch");
    set_num(v, "train_time_s", any ? train_time : NAN, "no finished epoch");
    json_t *energy = energy_to_json(&total);
    if (e->inference_energy) {
        ab_energy_window iw = *e->inference_energy;
        fill_power(r, &iw);
        json_object_set_new(energy, "inference", energy_to_json(&iw));
    } else {
        json_object_set_new(energy, "inference", json_null());
        set_str(energy, "inference_reason", "inference energy not measured");
    }
    json_object_set_new(v, "energy", energy);
    json_object_set_new(v, "memory", memory_json(r, e));
    json_object_set_new(v, "flops", flops_json(e, median_ms * 1e-3, &r->opts.peak));
    json_object_set_new(v, "inference", inference_json(&e->inference));
    if (e->checkpoint_bytes >= 0) set_int(v, "checkpoint_bytes", e->checkpoint_bytes);
    else set_num(v, "checkpoint_bytes", NAN, "no checkpoint saved");
    r->cur = NULL;
    return ab_results_flush(r);
}

ab_status ab_results_close(ab_results *r) {
    if (!r) return AB_OK;
    ab_status st = AB_OK;
    if (r->run) {
        int running = 0;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(r->run, "variants"), i, v)
            running |= str_is(v, "status", "running");
        set_str(r->run, "status", running ? "interrupted" : "finished");
        st = ab_results_flush(r);
    }
    json_decref(r->run);
    free_steps(r->steps, r->n_steps);
    free(r->power_prefix);
    free(r);
    return st;
}
