/*
 * bench.c — `attnbench bench`.
 *
 * --attn-only: one attention layer per variant, forward and backward time and memory (saved tensors +
 * workspace, from the allocator's accounting) against the sequence length (src/attn/bench.c), printed as
 * a table and optionally written as JSON.
 * default (training mode): whole-model steady-state training steps per variant on random tokens at a preset's
 * shape (model/bench_train.c): step time, tokens/s, peak allocated memory, energy per step, MFU.
 * --infer: the inference benchmark of `run` (model/infer.c) per variant on a randomly initialised model, no
 * training: prefill time and per-token decode latency at batch 1 and B, and the cache size per token.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/bench.h"
#include "backend/backend.h"
#include "cli/cli.h"
#include "cli/config_opts.h"
#include "core/fsutil.h"
#include "model/bench_train.h"
#include "model/infer.h"
#include "report/env.h"

#if HAVE_OPENMP
#include <omp.h>
#endif

/* "128,256,512" -> seqs[] */
static ab_status parse_seqs(const char *list, ab_attn_bench_opts *o) {
    o->n_seqs = 0;
    for (const char *p = list; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > (1 << 20) || (*end && *end != ','))
            return ab_fail(AB_ERR_USAGE, "--seq '%s': expected a comma list of positive lengths, e.g. 128,256,512", list);
        if (o->n_seqs == AB_ATTN_BENCH_MAX_SEQS)
            return ab_fail(AB_ERR_USAGE, "--seq '%s': at most %d lengths", list, AB_ATTN_BENCH_MAX_SEQS);
        o->seqs[o->n_seqs++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return o->n_seqs ? AB_OK : ab_fail(AB_ERR_USAGE, "--seq: no lengths given");
}

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

static void print_table(const ab_attn_bench_opts *o, const ab_attn_bench_row *rows, const ab_backend *be) {
    char cpu[256];
    ab_cpu_model(cpu, sizeof cpu);
#if HAVE_OPENMP
    const int threads = omp_get_max_threads();
#else
    const int threads = 1;
#endif
    printf("attention-only benchmark on %s (%s, %d threads): B=%d H=%d C=%d D=%d, median of %d runs%s\n", be->ops->name,
           cpu, threads, o->B, o->H, o->C, o->C / o->H, o->repeats, be->deterministic ? ", deterministic backward" : "");
    printf("%-15s %6s %10s %10s %11s %11s %10s %10s\n", "variant", "T", "fwd_ms", "bwd_ms", "saved_MiB", "work_MiB",
           "fwd_GF/s", "bwd_GF/s");
    for (int v = 0; v < o->n_variants; v++)
        for (int s = 0; s < o->n_seqs; s++) {
            const ab_attn_bench_row *r = &rows[v * o->n_seqs + s];
            const char *name = ab_variants[r->id]->name;
            if (!r->ok) {
                printf("%-15s %6d  not measured: %s\n", name, o->seqs[s], r->reason);
                continue;
            }
            printf("%-15s %6d %10.3f %10.3f %11.2f %11.2f %10.1f %10.1f\n", name, r->T, r->fwd_ms, r->bwd_ms,
                   mib(r->saved_bytes), mib(r->workspace_bytes), r->flops.hw_fwd / (r->fwd_ms * 1e6),
                   r->flops.hw_bwd / (r->bwd_ms * 1e6));
        }
    printf("GF/s: hardware FLOPs (what the implementation executes, METRICS.md) / time.\n");
}

static ab_status write_json(const char *path, const ab_attn_bench_opts *o, const ab_attn_bench_row *rows,
                            const ab_backend *be) {
    char cpu[256];
    ab_cpu_model(cpu, sizeof cpu);
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "device", json_string(be->ops->name));
    json_object_set_new(root, "deterministic", json_boolean(be->deterministic));
    json_object_set_new(root, "cpu_model", json_string(cpu));
    json_object_set_new(root, "batch", json_integer(o->B));
    json_object_set_new(root, "heads", json_integer(o->H));
    json_object_set_new(root, "embd", json_integer(o->C));
    json_object_set_new(root, "repeats", json_integer(o->repeats));
    for (int i = 0; i < o->n_variants * o->n_seqs; i++) {
        const ab_attn_bench_row *r = &rows[i];
        json_t *e = json_object();
        json_object_set_new(e, "variant", json_string(ab_variants[r->id]->name));
        json_object_set_new(e, "T", json_integer(o->seqs[i % o->n_seqs]));
        if (r->ok) {
            json_object_set_new(e, "fwd_ms", json_real(r->fwd_ms));
            json_object_set_new(e, "bwd_ms", json_real(r->bwd_ms));
            json_object_set_new(e, "saved_bytes", json_integer((json_int_t)r->saved_bytes));
            json_object_set_new(e, "workspace_bytes", json_integer((json_int_t)r->workspace_bytes));
            json_object_set_new(e, "model_fwd_flops", json_real(r->flops.model_fwd));
            json_object_set_new(e, "model_bwd_flops", json_real(r->flops.model_bwd));
            json_object_set_new(e, "hw_fwd_flops", json_real(r->flops.hw_fwd));
            json_object_set_new(e, "hw_bwd_flops", json_real(r->flops.hw_bwd));
        } else {
            json_object_set_new(e, "fwd_ms", json_null());
            json_object_set_new(e, "reason", json_string(r->reason));
        }
        json_array_append_new(arr, e);
    }
    json_object_set_new(root, "results", arr);
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!text) return ab_fail(AB_ERR_OOM, "%s: cannot format JSON", path);
    ab_status s = ab_write_file_atomic(path, text, strlen(text));
    free(text);
    return s;
}

/* The --attn-only mode. */
static int bench_attn_only(int argc, char **argv) {
    const char *device = "cpu", *seq = "128,256,512,1024,2048", *variants = "all", *json = NULL;
    int attn_only = 0, deterministic = 0;
    ab_attn_bench_opts o = {.B = 1, .H = 4, .C = 256, .repeats = 3, .seed = 1234};
    ab_opt opts[] = {
        {"device", OPT_STRING, &device, "DEV", "cpu | cuda | auto (default cpu)"},
        {"attn-only", OPT_FLAG, &attn_only, NULL, "benchmark one attention layer per variant"},
        {"seq", OPT_STRING, &seq, "LIST", "sequence lengths (default 128,256,512,1024,2048)"},
        {"variants", OPT_STRING, &variants, "LIST", "all or a comma list of variants (default all)"},
        {"batch", OPT_INT, &o.B, "B", "sequences (default 1)"},
        {"heads", OPT_INT, &o.H, "H", "attention heads (default 4)"},
        {"embd", OPT_INT, &o.C, "C", "embedding width, C = H x head size (default 256)"},
        {"repeats", OPT_INT, &o.repeats, "N", "timed runs per measurement, median reported (default 3)"},
        {"json", OPT_STRING, &json, "FILE", "also write the results as JSON"},
        {"gqa-kv-heads", OPT_INT, &o.hp.gqa_kv_heads, "G", "gqa: key/value heads (default H/3 or H/2)"},
        {"window", OPT_INT, &o.hp.window, "W", "sliding_window: keys per query incl. itself (default 128)"},
        {"lsh-hashes", OPT_INT, &o.hp.lsh_hashes, "N", "lsh: hash rounds (default 2)"},
        {"lsh-chunk", OPT_INT, &o.hp.lsh_chunk, "N", "lsh: chunk length Lc (default 64)"},
        {"lsh-buckets", OPT_INT, &o.hp.lsh_buckets, "N", "lsh: buckets (default 2T/Lc rounded to a power of two)"},
        {"linear-chunk", OPT_INT, &o.hp.linear_chunk, "N", "linear: chunk length (default 64)"},
        {"mla-kv-rank", OPT_INT, &o.hp.mla_kv_rank, "N", "mla: latent rank d_c (default 4 x head size)"},
        {"deterministic", OPT_FLAG, &deterministic, NULL, "the deterministic backward (run --deterministic)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    ab_cmd_spec spec = {"bench", "", "Benchmark the attention variants (one layer, forward + backward) against T.",
                        "Memory is what the allocator accounts: the tensors a forward keeps for backward\n"
                        "(saved) and the variant's scratch (workspace).",
                        opts};
    int first, help;
    ab_status s = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (s != AB_OK) return ab_cli_fail("bench", s);
    if (help) return 0;
    if (first < argc) return ab_cli_fail("bench", ab_fail(AB_ERR_USAGE, "unexpected argument '%s'", argv[first]));
    if ((s = parse_seqs(seq, &o)) != AB_OK) return ab_cli_fail("bench", s);
    if ((s = ab_variant_parse_list(variants, o.variants, &o.n_variants)) != AB_OK)
        return ab_cli_fail("bench", ab_fail_context(s, "--variants: "));
    ab_backend be;
    if ((s = ab_cli_open_backend(device, 0, &be)) != AB_OK) return ab_cli_fail("bench", s);
    be.deterministic = deterministic;
    ab_attn_bench_row *rows = calloc((size_t)o.n_variants * o.n_seqs, sizeof *rows);
    s = rows ? ab_attn_bench_run(&be, &o, rows) : ab_fail(AB_ERR_OOM, "bench: results");
    if (s == AB_OK) {
        print_table(&o, rows, &be);
        if (json) s = write_json(json, &o, rows, &be);
    }
    free(rows);
    ab_backend_close(&be);
    return s == AB_OK ? 0 : ab_cli_fail("bench", s);
}

#define MODE_OWN_MAX 12 /* a mode's own options, its terminator included */
/* the rows both model modes (training, --infer) start their own options with */
#define MODEL_MODE_OPTS(device, gpu, variants)                                                            \
    {"device", OPT_STRING, &(device), "cpu|cuda", "backend (default: cuda when present, else cpu)"},     \
        {"gpu", OPT_INT, &(gpu), "N", "GPU index"},                                                      \
        {"variants", OPT_STRING, &(variants), "LIST", "all or a comma list of variants (default all)"}

/* Parses a mode with the preset + override options followed by its own (`own`, NULL-terminated, at most
 * MODE_OWN_MAX rows); `summary` and `notes` go to --help. Returns -1 to go on, else the exit code. */
static int parse_mode(int argc, char **argv, ab_preset *p, const char **preset_name, const ab_opt *own, size_t n_own,
                      const char *mode, const char *summary, const char *notes) {
    ab_opt opts[AB_CONFIG_OPT_COUNT + MODE_OWN_MAX];
    if (n_own > MODE_OWN_MAX) return ab_cli_fail("bench", ab_fail(AB_ERR_INTERNAL, "%zu options for %d rows", n_own, MODE_OWN_MAX));
    ab_config_opts_fill(opts, p, preset_name);
    memcpy(opts + AB_CONFIG_OPT_COUNT, own, n_own * sizeof *own);
    ab_cmd_spec spec = {"bench", mode, summary, notes, opts};
    int first, help;
    ab_status s = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (s != AB_OK) return ab_cli_fail("bench", s);
    if (help) return 0;
    if (first < argc) return ab_cli_fail("bench", ab_fail(AB_ERR_USAGE, "unexpected argument '%s'", argv[first]));
    return -1;
}

/* The training-step mode (default). */
static int bench_train_mode(int argc, char **argv) {
    ab_preset p;
    const char *preset_name, *device = "auto", *variants = "all", *json = NULL, *peak_arg = NULL;
    int gpu = 0, steps = 20;
    ab_status s = ab_config_preset_from_argv(argc, argv, "gpt2", &p, &preset_name);
    if (s != AB_OK) return ab_cli_fail("bench", s);
    const ab_opt own[] = {
        MODEL_MODE_OPTS(device, gpu, variants),
        {"steps", OPT_INT, &steps, "N", "timed steps after the --warmup-steps (default 20)"},
        {"peak-tflops", OPT_STRING, &peak_arg, "X", "device peak for MFU: TFLOP/s, or measured (a timed GEMM); default: the table"},
        {"json", OPT_STRING, &json, "FILE", "also write the results as JSON"},
        {"attn-only", OPT_FLAG, NULL, NULL, "the attention-only benchmark instead (attnbench bench --attn-only --help)"},
        {"infer", OPT_FLAG, NULL, NULL, "the inference benchmark instead (attnbench bench --infer --help)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    const int rc = parse_mode(argc, argv, &p, &preset_name, own, sizeof own / sizeof own[0], "",
                              "Benchmark whole-model training steps per variant on random tokens (default preset gpt2).",
                              "Steady state: the --warmup-steps (default 5) are not timed; each timed step ends with a device\n"
                              "synchronisation. Energy per step comes from the NVML counter over the timed steps.");
    if (rc >= 0) return rc;
    if (steps < 1) return ab_cli_fail("bench", ab_fail(AB_ERR_USAGE, "--steps must be at least 1"));
    ab_variant_id ids[VARIANT_COUNT * 4];
    int n = 0;
    if ((s = ab_variant_parse_list(variants, ids, &n)) != AB_OK || (s = ab_config_validate_train(&p.train)) != AB_OK)
        return ab_cli_fail("bench", s);
    ab_backend be;
    if ((s = ab_cli_open_backend(device, gpu, &be)) != AB_OK) return ab_cli_fail("bench", s);
    be.deterministic = p.train.deterministic;
    ab_energy_meter em;
    ab_energy_opts eo = {.gpu_index = be.ops->id == BACKEND_CUDA ? gpu : -1};
    ab_energy_open(&em, &eo);
    ab_peak peak;
    s = ab_config_resolve_peak(peak_arg, &be, em.nvml ? em.gpu.name : NULL, &peak);
    ab_bench_train_args a = {.model = p.model, .train = p.train, .warmup_steps = p.train.warmup_steps, .timed_steps = steps,
                             .be = &be, .energy = &em, .peak = &peak};
    ab_bench_train_result *r = s == AB_OK ? calloc((size_t)n, sizeof *r) : NULL;
    if (s == AB_OK && !r) s = ab_fail(AB_ERR_OOM, "out of memory");
    for (int i = 0; i < n && s == AB_OK; i++) ab_bench_train(&a, ids[i], &r[i]);
    if (s == AB_OK) {
        ab_bench_train_print(stdout, &a, r, n);
        if (json) s = ab_bench_train_write_json(json, &a, r, n);
    }
    free(r);
    ab_energy_close(&em);
    ab_backend_close(&be);
    return s == AB_OK ? 0 : ab_cli_fail("bench", s);
}

/* One row of the --infer table: prefill ms, decode p50 / p90 ms at batch 1 and B, cache bytes per token of a
 * max_seq context, analytical (VARIANTS.md) and allocated. */
static void print_infer_row(const ab_gpt2 *m, const ab_inference_result *r) {
    const int L = m->cfg.n_layer, S = m->cfg.max_seq;
    const double analytical = m->variant->cache_elems_per_token(&m->attn_cfg, S) * (double)m->be->ops->act_bytes * L;
    printf("%-16s %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f %12.0f %12.0f\n", m->variant->name, r->prefill_ms[0],
           r->prefill_ms[1], r->decode_ms_p50[0], r->decode_ms_p90[0], r->decode_ms_p50[1], r->decode_ms_p90[1], analytical,
           r->cache_bytes_measured / S);
}

/* The inference mode (--infer). */
static int bench_infer_mode(int argc, char **argv) {
    ab_preset p;
    const char *preset_name, *device = "auto", *variants = "all";
    int gpu = 0, gen_tokens = 128, infer = 0;
    ab_status s = ab_config_preset_from_argv(argc, argv, "gpt2", &p, &preset_name);
    if (s != AB_OK) return ab_cli_fail("bench", s);
    const ab_opt own[] = {
        MODEL_MODE_OPTS(device, gpu, variants),
        {"gen-tokens", OPT_INT, &gen_tokens, "N", "decoded tokens per batch size after the prompt (default 128)"},
        {"infer", OPT_FLAG, &infer, NULL, "benchmark inference (this mode)"},
        {NULL, 0, NULL, NULL, NULL},
    };
    const int rc = parse_mode(argc, argv, &p, &preset_name, own, sizeof own / sizeof own[0], "--infer",
                              "Benchmark inference per variant on a randomly initialised model (default preset gpt2).",
                              "What `run` measures after training (model/infer.c), without training: prefill of --seq tokens\n"
                              "(median of 5 after a warm-up) and the latency of each decoded token (p50, p90; every step ends\n"
                              "with a device synchronisation) after a prompt of --seq/2 tokens (fewer when --gen-tokens needs\n"
                              "the room), at batch 1 and --batch, with the variant's cache. On cuda the decode step is recorded\n"
                              "once as a CUDA graph and replayed; AB_CUDA_GRAPHS=0 runs it directly.");
    if (rc >= 0) return rc;
    const int B = p.train.batch, T = p.train.seq;
    if ((s = ab_config_validate_train(&p.train)) != AB_OK) return ab_cli_fail("bench", s);
    if (T < 2 || T > p.model.max_seq)
        return ab_cli_fail("bench", ab_fail(AB_ERR_USAGE, "--seq %d: a prompt and a decoded token need 2..%d (--max-seq)", T,
                                            p.model.max_seq));
    if (gen_tokens < 1) return ab_cli_fail("bench", ab_fail(AB_ERR_USAGE, "--gen-tokens must be at least 1 (got %d)", gen_tokens));
    ab_variant_id ids[VARIANT_COUNT * 4];
    int n = 0;
    if ((s = ab_variant_parse_list(variants, ids, &n)) != AB_OK) return ab_cli_fail("bench", ab_fail_context(s, "--variants: "));
    ab_backend be;
    if ((s = ab_cli_open_backend(device, gpu, &be)) != AB_OK) return ab_cli_fail("bench", s);
    printf("inference, %s, L%d H%d C%d, random weights (seed %llu), prefill of %d tokens, decode of up to %d tokens, "
           "batch 1 and %d; recorded decode steps: %s\n",
           be.ops->name, p.model.n_layer, p.model.n_head, p.model.n_embd, (unsigned long long)p.train.seed, T, gen_tokens, B,
           be.graphs && be.ops->graph_begin ? "on" : "off");
    printf("%-16s %10s %10s %10s %10s %10s %10s %12s %12s\n", "variant", "prefill_1", "prefill_B", "dec_p50_1", "dec_p90_1",
           "dec_p50_B", "dec_p90_B", "cache_B/tok", "alloc_B/tok");
    int failed = 0; /* a variant or shape the backend does not support is reported, not counted */
    ab_status worst = AB_OK;
    for (int i = 0; i < n; i++) {
        ab_gpt2 m;
        ab_inference_result r;
        const char *name = ab_variants[ids[i]]->name;
        s = ab_gpt2_create(&m, &p.model, ids[i], T, &be);
        if (s == AB_OK) s = ab_gpt2_init_weights(&m, p.train.seed);
        if (s == AB_OK) s = ab_bench_inference(&m, B, T, gen_tokens, &r);
        if (s == AB_OK) {
            print_infer_row(&m, &r);
        } else {
            printf("%-16s %s: %s\n", name, s == AB_ERR_UNSUPPORTED ? "not supported" : "failed", ab_error());
            if (s != AB_ERR_UNSUPPORTED) {
                failed++;
                worst = s;
            }
        }
        ab_gpt2_destroy(&m);
    }
    printf("ms: prefill of the whole sequence, decode per token; cache: bytes per token of a %d-token context, all layers,\n"
           "analytical (VARIANTS.md) and allocated.\n",
           p.model.max_seq);
    ab_backend_close(&be);
    if (failed) return ab_cli_fail("bench", ab_fail(worst, "%d of %d variants failed (see the table)", failed, n));
    return 0;
}

int cmd_bench(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--attn-only") == 0) return bench_attn_only(argc, argv);
        if (strcmp(argv[i], "--infer") == 0) return bench_infer_mode(argc, argv);
    }
    return bench_train_mode(argc, argv);
}
