/*
 * test_report_results.c — the results files: run.json against docs/run.schema.json (a small validator of
 * the JSON Schema subset that file uses: type, properties, required, additionalProperties, items), every
 * null carrying a reason, the CSV files, the derived statistics (step time without warm-up, tokens/s, MFU,
 * energy totals), and resume after a simulated interruption.
 */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>

#include "attn/variant.h"
#include "core/fsutil.h"
#include "fakes/fakes.h"
#include "prof/flops.h"
#include "report/results.h"
#include "test_util.h"

static char tests_dir[4096];

/* ---- the schema validator ---- */

static int type_matches(const char *t, const json_t *v) {
    if (!strcmp(t, "object")) return json_is_object(v);
    if (!strcmp(t, "array")) return json_is_array(v);
    if (!strcmp(t, "string")) return json_is_string(v);
    if (!strcmp(t, "integer")) return json_is_integer(v);
    if (!strcmp(t, "number")) return json_is_number(v);
    if (!strcmp(t, "boolean")) return json_is_boolean(v);
    if (!strcmp(t, "null")) return json_is_null(v);
    return 0;
}

static const json_t *schema_root;

/* 1 when v matches schema s; else 0 with the first problem in why (path: what). */
static int validate(const json_t *s, const json_t *v, const char *path, char *why, size_t n) {
    const char *ref = json_string_value(json_object_get(s, "$ref"));
    if (ref) {
        const char *prefix = "#/$defs/";
        json_t *target = strncmp(ref, prefix, strlen(prefix)) ? NULL
                                                               : json_object_get(json_object_get(schema_root, "$defs"), ref + strlen(prefix));
        if (!target) {
            snprintf(why, n, "%.300s: unresolvable $ref %.100s", path, ref);
            return 0;
        }
        return validate(target, v, path, why, n);
    }
    json_t *en = json_object_get(s, "enum");
    if (en) {
        int found = 0;
        size_t i;
        json_t *e;
        json_array_foreach(en, i, e) found |= json_equal(e, (json_t *)v);
        if (!found) {
            snprintf(why, n, "%.300s: value not in the enum", path);
            return 0;
        }
    }
    json_t *type = json_object_get(s, "type");
    if (type) {
        int ok = 0;
        if (json_is_string(type)) ok = type_matches(json_string_value(type), v);
        size_t i;
        json_t *t;
        json_array_foreach(type, i, t) ok |= type_matches(json_string_value(t), v);
        if (!ok) {
            char *dump = json_dumps(type, JSON_ENCODE_ANY | JSON_COMPACT);
            snprintf(why, n, "%.300s: expected type %.100s", path, dump ? dump : "?");
            free(dump);
            return 0;
        }
    }
    if (json_is_object(v)) {
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(s, "required"), i, r) if (!json_object_get(v, json_string_value(r))) {
            snprintf(why, n, "%.300s: required key %.100s missing", path, json_string_value(r));
            return 0;
        }
        json_t *props = json_object_get(s, "properties"), *addl = json_object_get(s, "additionalProperties");
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)v, k, val) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            json_t *ps = json_object_get(props, k);
            if (ps) {
                if (!validate(ps, val, sub, why, n)) return 0;
            } else if (json_is_false(addl)) {
                snprintf(why, n, "%.400s: key not in the schema (document it)", sub);
                return 0;
            } else if (json_is_object(addl) && !validate(addl, val, sub, why, n)) {
                return 0;
            }
        }
    }
    if (json_is_array(v)) {
        json_t *items = json_object_get(s, "items"), *it;
        size_t i;
        if (items) json_array_foreach((json_t *)v, i, it) {
                char sub[512];
                snprintf(sub, sizeof sub, "%s[%zu]", path, i);
                if (!validate(items, it, sub, why, n)) return 0;
            }
    }
    return 1;
}

/* Every null value K has a string sibling K_reason (METRICS.md: null with a reason, never 0). */
static int nulls_have_reasons(const json_t *v, const char *path, char *why, size_t n) {
    if (json_is_object(v)) {
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)v, k, val) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            if (json_is_null(val)) {
                char rk[256];
                snprintf(rk, sizeof rk, "%s_reason", k);
                if (!json_is_string(json_object_get(v, rk)) || !*json_string_value(json_object_get(v, rk))) {
                    snprintf(why, n, "%.300s is null without %.100s", sub, rk);
                    return 0;
                }
            }
            if (!nulls_have_reasons(val, sub, why, n)) return 0;
        }
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *it;
        json_array_foreach((json_t *)v, i, it) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            if (!nulls_have_reasons(it, sub, why, n)) return 0;
        }
    }
    return 1;
}

static int count_lines(const char *dir, const char *file) {
    char p[4200], *text;
    size_t n;
    snprintf(p, sizeof p, "%s/%s", dir, file);
    if (ab_read_file(p, &text, &n) != AB_OK) return -1;
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
    free(text);
    return lines;
}

/* ---- a run written through the API ---- */

typedef struct {
    ab_energy_meter m;
    char powercap[4200];
    double uj;
} cpu_energy;

/* A window of `seconds` in which the fake RAPL counter advances by joules. */
static ab_energy_window window(cpu_energy *ce, double seconds, double joules, double tokens) {
    ab_energy_reading a, b;
    ab_energy_read(&ce->m, &a);
    ce->uj += joules * 1e6;
    char v[64];
    snprintf(v, sizeof v, "%.0f\n", ce->uj);
    fake_write(ce->powercap, "intel-rapl:0/energy_uj", v);
    ab_energy_read(&ce->m, &b);
    b.t_s = a.t_s + seconds;
    ab_energy_window w;
    ab_energy_window_of(&ce->m, &a, &b, NULL, tokens, 400.0, &w);
    return w;
}

static json_t *test_config(double lr) {
    return json_pack("{s:{s:i,s:i,s:i},s:{s:i,s:i,s:f}}", "model", "n_layer", 2, "n_head", 2, "n_embd", 32, "train",
                     "batch", 2, "seq", 16, "lr", lr);
}

static void record_variant(ab_results *r, cpu_energy *ce, const char *name, int first_epoch, int last_epoch, int finish, int ok) {
    const ab_variant *v = ab_variant_by_name(name);
    ab_variant_begin b = {.name = name, .title = v ? v->title : name, .backend = "cpu", .params_total = 123456,
                          .params_attention = 4096, .hparams = NULL, .resume_from_epoch = first_epoch};
    ab_results_begin_variant(r, &b);
    long step = (first_epoch - 1) * 3;
    for (int e = first_epoch; e <= last_epoch; e++) {
        for (int k = 0; k < 3; k++) {
            step++;
            ab_step_record s = {.step = step, .epoch = e, .loss = 5.0 - 0.1 * step, .lr = 1e-3, .grad_norm = 1.5,
                                .step_time_ms = 10.0 * step, .tokens = 32, .loss_tokens = 24};
            ab_results_step(r, &s);
        }
        ab_epoch_record er = {.epoch = e, .steps = 3, .train_time_s = 2.0, .train_loss = 5.0 - 0.3 * e,
                              .val_loss = 5.1 - 0.3 * e, .tokens = 96, .loss_tokens = 72};
        er.energy = window(ce, 2.0, 10.0, 96);
        ab_results_epoch(r, &er);
    }
    if (!finish) return;
    ab_variant_end end = {.ok = ok, .failure_reason = ok ? NULL : "out of memory: test", .peak_rss_bytes = 1 << 20,
                          .peak_device_bytes = NAN, .checkpoint_bytes = ok ? 500000 : -1};
    snprintf(end.peak_device_reason, sizeof end.peak_device_reason, "CPU backend: no device");
    mem_account_alloc(&end.mem, MEM_PARAMS, 1000);
    mem_account_alloc(&end.mem, MEM_ACTIVATIONS, 3000);
    if (v) {
        ab_model_config mc = {.n_layer = 2, .n_head = 2, .n_embd = 32, .vocab_size = 100, .max_seq = 64};
        ab_attn_config acfg = {.C = 32, .H = 2, .D = 16, .max_T = 64, .train_T = 16};
        ab_attn_resolve_hparams(&acfg);
        end.flops_available = ab_flops_per_step(&mc, v, &acfg, 2, 16, 1, &end.flops) == AB_OK;
    }
    if (!end.flops_available) snprintf(end.flops_reason, sizeof end.flops_reason, "unknown variant");
    ab_inference_result_null(&end.inference, "inference benchmark not run (test)");
    if (ok) {
        end.inference.available = 1;
        end.inference.prompt_tokens = 16;
        end.inference.gen_tokens = 8;
        end.inference.repeats = 3;
        end.inference.batch[0] = 1;
        end.inference.batch[1] = 2;
        for (int i = 0; i < 2; i++) {
            end.inference.prefill_ms[i] = 1.0 + i;
            end.inference.decode_ms_p50[i] = 0.1 + i;
            end.inference.decode_ms_p90[i] = 0.2 + i;
            end.inference.decode_ms_p99[i] = 0.3 + i;
        }
        end.inference.cache_bytes_per_token_analytical = 256;
    }
    ab_results_end_variant(r, &end);
}

static ab_results_opts test_opts(void) {
    ab_results_opts o = {.grid_gco2_per_kwh = 400, .warmup_steps = 2};
    ab_peak_lookup("NVIDIA H100 80GB HBM3", &o.peak);
    o.idle.seconds = 5;
    o.idle.gpu_w = NAN;
    o.idle.cpu_w = 3.0;
    snprintf(o.idle.gpu_reason, sizeof o.idle.gpu_reason, "no GPU");
    return o;
}

static void test_full_run(const char *tmp, cpu_energy *ce, json_t *schema) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/run1", tmp);
    json_t *env = json_pack("{s:s}", "hostname", "test"), *cfg = test_config(1e-3);
    ab_results_opts o = test_opts();
    ab_results *r;
    ab_status st = ab_results_open(&r, dir, env, cfg, &o);
    TEST_TRUE("open", st == AB_OK, "%s", ab_error());
    if (st != AB_OK) return;
    record_variant(r, ce, "baseline", 1, 2, 1, 1);
    record_variant(r, ce, "flash", 1, 1, 1, 0);
    TEST_TRUE("close", ab_results_close(r) == AB_OK, "%s", ab_error());

    ab_results_state s;
    st = ab_results_load(dir, &s);
    TEST_TRUE("load", st == AB_OK && s.n_variants == 2, "%s", ab_error());
    if (st != AB_OK) return;
    char why[512] = "";
    TEST_TRUE("run_json_schema", validate(schema, s.run, "run", why, sizeof why), "%s", why);
    TEST_TRUE("nulls_have_reasons", nulls_have_reasons(s.run, "run", why, sizeof why), "%s", why);
    json_t *v0 = json_array_get(json_object_get(s.run, "variants"), 0), *v1 = json_array_get(json_object_get(s.run, "variants"), 1);
    json_t *stm = json_object_get(v0, "step_time_ms");
    /* steps 1..6 at 10*step ms, warm-up 2: steady steps 30, 40, 50, 60 ms */
    double got[] = {json_real_value(json_object_get(stm, "median")), json_real_value(json_object_get(stm, "p10")),
                    (double)json_integer_value(json_object_get(stm, "n")), json_real_value(json_object_get(stm, "warmup_median")),
                    json_real_value(json_object_get(v0, "tokens_per_s")), json_real_value(json_object_get(v0, "effective_tokens_per_s")),
                    json_real_value(json_object_get(v0, "train_time_s"))};
    double ref[] = {45.0, 33.0, 4, 15.0, 32 / 0.045, 24 / 0.045, 4.0};
    TEST_CLOSE_F64("step_time_stats", got, ref, 7, 0, 1e-10);
    json_t *fl = json_object_get(v0, "flops");
    double mps = json_real_value(json_object_get(fl, "model_per_step"));
    double got2[] = {json_real_value(json_object_get(fl, "achieved_tflops")), json_real_value(json_object_get(fl, "mfu"))};
    double ref2[] = {mps / 0.045 * 1e-12, mps / 0.045 * 1e-12 / 989.0};
    TEST_CLOSE_F64("mfu_from_median_step", got2, ref2, 2, 0, 1e-10);
    json_t *en = json_object_get(v0, "energy");
    double got3[] = {json_real_value(json_object_get(en, "cpu_j")), json_real_value(json_object_get(en, "seconds")),
                     json_real_value(json_object_get(en, "j_per_token")), json_real_value(json_object_get(en, "co2e_g"))};
    double ref3[] = {20.0, 4.0, 20.0 / 192, 20.0 / 3.6e6 * 400};
    TEST_CLOSE_F64("energy_totals", got3, ref3, 4, 0, 1e-9);
    TEST_TRUE("gpu_energy_null_reason", json_is_null(json_object_get(en, "gpu_j")) && json_is_string(json_object_get(en, "gpu_j_reason")),
              "gpu_j not null with reason");
    TEST_TRUE("failed_variant", !strcmp(json_string_value(json_object_get(v1, "status")), "failed") &&
                                    !strcmp(json_string_value(json_object_get(v1, "failure_reason")), "out of memory: test"),
              "status/failure_reason wrong");
    TEST_TRUE("memory_peak", json_integer_value(json_object_get(json_object_get(v0, "memory"), "peak_allocated_bytes")) == 4000,
              "peak");
    TEST_TRUE("run_finished", !strcmp(json_string_value(json_object_get(s.run, "status")), "finished"), "status");
    const char *vc = json_string_value(json_object_get(json_object_get(v0, "tool"), "git_commit"));
    TEST_TRUE("variant_tool_commit", vc && !strcmp(vc, AB_GIT_COMMIT), "variant tool.git_commit %s", vc ? vc : "(none)");
    TEST_TRUE("epochs_csv", count_lines(dir, "epochs.csv") == 1 + 3, "%d lines", count_lines(dir, "epochs.csv"));
    TEST_TRUE("steps_csv", count_lines(dir, "steps.csv") == 1 + 9, "%d lines", count_lines(dir, "steps.csv"));
    TEST_TRUE("inference_csv", count_lines(dir, "inference.csv") == 1 + 2, "%d lines", count_lines(dir, "inference.csv"));
    TEST_TRUE("power_csv_header_only", count_lines(dir, "power.csv") == 1, "%d lines", count_lines(dir, "power.csv"));
    char p[4300];
    snprintf(p, sizeof p, "%s/run.json.tmp.%ld", dir, (long)getpid());
    TEST_TRUE("no_temporaries_left", !ab_file_exists(p), "%s exists", p);
    ab_results_state_free(&s);
    json_decref(env);
    json_decref(cfg);
}

static void test_resume(const char *tmp, cpu_energy *ce, json_t *schema) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/run2", tmp);
    json_t *env = json_object(), *cfg = test_config(1e-3);
    ab_results_opts o = test_opts();
    /* a child process runs baseline to the end and sdpa for one epoch, then is killed */
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        ab_results *killed;
        if (ab_results_open(&killed, dir, env, cfg, &o) != AB_OK) _exit(3);
        record_variant(killed, ce, "baseline", 1, 2, 1, 1);
        record_variant(killed, ce, "sdpa", 1, 1, 0, 1);
        raise(SIGKILL);
    }
    int wst = 0;
    waitpid(child, &wst, 0);
    TEST_TRUE("child_killed", WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL, "child status %d", wst);
    ab_results *r;
    ab_results_state s;
    ab_status st = ab_results_load(dir, &s);
    const ab_results_variant_state *a = ab_results_find(&s, "baseline"), *b = ab_results_find(&s, "sdpa");
    TEST_TRUE("interrupted_state", st == AB_OK && a && b && !strcmp(a->status, "ok") && a->epochs_done == 2 &&
                                       !strcmp(b->status, "running") && b->epochs_done == 1 && b->steps_done == 3,
              "st %d a %s/%d b %s/%d/%ld", st, a ? a->status : "-", a ? a->epochs_done : -1, b ? b->status : "-",
              b ? b->epochs_done : -1, b ? b->steps_done : -1L);
    ab_results_state_free(&s);

    json_t *other = test_config(2e-3);
    ab_results *r2;
    st = ab_results_open(&r2, dir, env, other, &(ab_results_opts){.resume = 1});
    TEST_TRUE("resume_config_mismatch", st == AB_ERR_USAGE && strstr(ab_error(), "train.lr"), "st %d '%s'", st, ab_error());
    json_decref(other);

    o.resume = 1;
    st = ab_results_open(&r2, dir, env, cfg, &o);
    TEST_TRUE("resume_open", st == AB_OK, "%s", ab_error());
    if (st != AB_OK) return;
    record_variant(r2, ce, "sdpa", 2, 2, 1, 1);
    ab_results_close(r2);
    st = ab_results_load(dir, &s);
    b = ab_results_find(&s, "sdpa");
    a = ab_results_find(&s, "baseline");
    TEST_TRUE("resumed_variant", st == AB_OK && b && !strcmp(b->status, "ok") && b->epochs_done == 2 && b->steps_done == 6 &&
                                     a && a->epochs_done == 2 && s.n_variants == 2,
              "sdpa %s epochs %d steps %ld", b ? b->status : "-", b ? b->epochs_done : -1, b ? b->steps_done : -1L);
    json_t *sv = json_array_get(json_object_get(s.run, "variants"), 1);
    TEST_TRUE("resumed_epochs_kept", json_array_size(json_object_get(sv, "epochs")) == 2, "%zu epochs",
              json_array_size(json_object_get(sv, "epochs")));
    TEST_TRUE("resumed_at_recorded", json_array_size(json_object_get(s.run, "resumed_at")) == 1, "resumed_at");
    char why[512] = "";
    TEST_TRUE("resumed_run_schema", validate(schema, s.run, "run", why, sizeof why), "%s", why);
    TEST_TRUE("resumed_steps_csv", count_lines(dir, "steps.csv") == 1 + 12, "%d", count_lines(dir, "steps.csv"));
    ab_results_state_free(&s);

    /* a run closed while a variant runs is "interrupted" */
    snprintf(dir, sizeof dir, "%s/run3", tmp);
    ab_results_open(&r, dir, env, cfg, &(ab_results_opts){.warmup_steps = 1});
    record_variant(r, ce, "gqa", 1, 1, 0, 1);
    ab_results_close(r);
    st = ab_results_load(dir, &s);
    TEST_TRUE("close_while_running_interrupted", st == AB_OK && !strcmp(json_string_value(json_object_get(s.run, "status")), "interrupted"),
              "status");
    ab_results_state_free(&s);

    TEST_TRUE("load_missing_dir", ab_results_load("/nonexistent-results", &s) == AB_ERR_IO, "no error");
    char bad[4200];
    snprintf(bad, sizeof bad, "%s/bad", tmp);
    ab_mkdir_p(bad);
    fake_write(bad, "run.json", "{\"schema_version\": 99, \"variants\": []}");
    st = ab_results_load(bad, &s);
    TEST_TRUE("load_other_schema", st == AB_ERR_FORMAT && strstr(ab_error(), "schema_version"), "st %d '%s'", st, ab_error());
    fake_write(bad, "run.json", "{\"schema_version\": 1,");
    st = ab_results_load(bad, &s);
    TEST_TRUE("load_bad_json_position", st == AB_ERR_FORMAT && strstr(ab_error(), "run.json:1:"), "'%s'", ab_error());
    json_decref(env);
    json_decref(cfg);
}

#define ROWS_WITH_NUL "flash,1,1,2.5,0.001,1,10,64,32\0junk\n"

/* steps.csv as `run --resume` and `report` read it back (ab_results_load): each case is a steps.csv beside a
 * minimal run.json, the status expected and either the steps counted for "flash" or a text the message
 * must hold (file:line, and the field at fault). */
static void test_load_steps(const char *tmp) {
    static const char header[] = "variant,step,epoch,loss,lr,grad_norm,step_time_ms,tokens,loss_tokens\n";
    static const struct {
        const char *name, *rows;
        size_t rows_len; /* 0: strlen(rows) */
        ab_status want;
        long steps_done;
        const char *message;
    } cases[] = {
        /* a malformed line after good ones: the rows read so far are freed (LeakSanitizer, make test-asan) */
        {"load_steps_bad_line_after_rows", "flash,1,1,2.5,0.001,1,10,64,32\nflash,2,1,2.4,0.001,1,10,64,32\nflash,3\n", 0,
         AB_ERR_FORMAT, 0, "steps.csv:4:"},
        /* a step without loss tokens has no loss: results.c writes it as empty fields, which must read back */
        {"load_steps_null_fields_read_back", "flash,1,1,,0.001,,10,64,0\nflash,2,1,2.4,0.001,1,,64,32\n", 0, AB_OK, 2, NULL},
        {"load_steps_blank_line_keeps_numbering", "flash,1,1,2.5,0.001,1,10,64,32\n\nflash,x,1,2.5,0.001,1,10,64,32\n", 0,
         AB_ERR_FORMAT, 0, "steps.csv:4: field 2 (step)"},
        {"load_steps_rejects_ten_fields", "flash,1,1,2.5,0.001,1,10,64,32,7\n", 0, AB_ERR_FORMAT, 0, "steps.csv:2:"},
        {"load_steps_rejects_bad_number", "flash,1,1,2.5x,0.001,1,10,64,32\n", 0, AB_ERR_FORMAT, 0, "field 4 (loss)"},
        {"load_steps_rejects_empty_integer", "flash,1,1,2.5,0.001,1,10,,32\n", 0, AB_ERR_FORMAT, 0, "field 8 (tokens)"},
        {"load_steps_rejects_nul_byte", ROWS_WITH_NUL, sizeof ROWS_WITH_NUL - 1, AB_ERR_FORMAT, 0, "steps.csv:2:"},
    };
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/steps_cases", tmp);
    ab_mkdir_p(dir);
    fake_write(dir, "run.json", "{\"schema_version\": 1, \"variants\": [{\"name\": \"flash\", \"status\": \"ok\"}]}\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[4300], text[512];
        snprintf(path, sizeof path, "%s/steps.csv", dir);
        size_t hn = strlen(header), rn = cases[i].rows_len ? cases[i].rows_len : strlen(cases[i].rows);
        memcpy(text, header, hn);
        memcpy(text + hn, cases[i].rows, rn);
        ab_write_file_atomic(path, text, hn + rn);
        ab_results_state s;
        ab_status st = ab_results_load(dir, &s);
        const ab_results_variant_state *v = st == AB_OK ? ab_results_find(&s, "flash") : NULL;
        int ok = st == cases[i].want && (st != AB_OK || (v && v->steps_done == cases[i].steps_done)) &&
                 (!cases[i].message || strstr(ab_error(), cases[i].message));
        TEST_TRUE(cases[i].name, ok, "status %s, steps %ld, message '%s'", ab_status_name(st), v ? v->steps_done : -1L,
                  st == AB_OK ? "" : ab_error());
        if (st == AB_OK) ab_results_state_free(&s);
    }
}

int main(void) {
    fake_src_dir(__FILE__, tests_dir, sizeof tests_dir);
    char tmp[4096], schema_path[4200];
    if (!fake_tmpdir(tmp, sizeof tmp, "results")) return 1;
    snprintf(schema_path, sizeof schema_path, "%s/../docs/run.schema.json", tests_dir);
    json_error_t err;
    json_t *schema = json_load_file(schema_path, 0, &err);
    TEST_TRUE("schema_loads", schema != NULL, "%s:%d: %s", schema_path, err.line, err.text);
    if (!schema) return TEST_SUMMARY();
    schema_root = schema;
    cpu_energy ce = {.uj = 1000};
    snprintf(ce.powercap, sizeof ce.powercap, "%s/powercap", tmp);
    fake_mkdir(tmp, "powercap");
    fake_mkdir(ce.powercap, "intel-rapl:0");
    fake_write(ce.powercap, "intel-rapl:0/energy_uj", "1000\n");
    fake_write(ce.powercap, "intel-rapl:0/max_energy_range_uj", "262143328850\n");
    ab_energy_opts eo = {.gpu_index = -1, .powercap_root = ce.powercap};
    ab_energy_open(&ce.m, &eo);
    test_full_run(tmp, &ce, schema);
    test_resume(tmp, &ce, schema);
    test_load_steps(tmp);
    ab_energy_close(&ce.m);
    json_decref(schema);
    if (!getenv("AB_KEEP_TMP")) fake_rmtree(tmp);
    else printf("# kept %s\n", tmp);
    return TEST_SUMMARY();
}
