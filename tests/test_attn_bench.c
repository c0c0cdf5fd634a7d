/*
 * test_attn_bench.c — the attention-only benchmark: the library call measures every variant at every length
 * with the memory the allocator accounted (= the variant's saved_bytes / workspace_bytes), and the CLI
 * (`attnbench bench --attn-only`, through AB_BIN) prints the table, writes JSON and refuses bad input with
 * exit code 2.
 */
#include <unistd.h>

#include "attn/bench.h"
#include "test_attn_util.h"

int main(void) {
    ab_backend be;
    att_open_backend(&be);
    ab_attn_bench_opts o = {.B = 2, .H = 2, .C = 16, .seqs = {8, 37}, .n_seqs = 2, .repeats = 2, .seed = 3,
                            .hp = {.lsh_chunk = 4, .linear_chunk = 16, .window = 5}};
    ab_variant_parse_list("all", o.variants, &o.n_variants);
    ab_attn_bench_row rows[VARIANT_COUNT * 2];
    ab_status s = ab_attn_bench_run(&be, &o, rows);
    TEST_TRUE("bench[run,cpu,B=2,H=2,C=16,T=8,37] returns ok", s == AB_OK, "%s", ab_error());
    for (int i = 0; s == AB_OK && i < o.n_variants * o.n_seqs; i++) {
        const ab_attn_bench_row *r = &rows[i];
        ab_attn_config cfg = {.C = 16, .H = 2, .D = 8, .max_T = 37, .train_T = r->T, .hp = o.hp};
        ab_attn_resolve_hparams(&cfg);
        const ab_attn_ops *ops = ab_variants[r->id]->ops[BACKEND_CPU];
        char name[128];
        snprintf(name, sizeof name, "bench[%s,cpu,B=2,T=%d] measured, memory = saved_bytes + workspace_bytes",
                 ab_variants[r->id]->name, r->T);
        TEST_TRUE(name, r->ok && r->fwd_ms > 0 && r->bwd_ms > 0 && r->saved_bytes == ops->saved_bytes(&cfg, 2, r->T) &&
                            r->workspace_bytes == ops->workspace_bytes(&cfg, 2, r->T),
                  "ok %d (%s) fwd %g bwd %g saved %zu workspace %zu", r->ok, r->reason, r->fwd_ms, r->bwd_ms,
                  r->saved_bytes, r->workspace_bytes);
    }
    TEST_TRUE("bench[run] leaves no attention memory allocated",
              be.mem.current[MEM_ATTENTION] == 0 && be.mem.current[MEM_WORKSPACE] == 0, "attention %zu workspace %zu",
              be.mem.current[MEM_ATTENTION], be.mem.current[MEM_WORKSPACE]);
    ab_backend_close(&be);

    char cmd[1024], out[8192], json_path[64];
    snprintf(json_path, sizeof json_path, "/tmp/attnbench_test_bench_%d.json", (int)getpid());
    snprintf(cmd, sizeof cmd,
             "%s bench --device cpu --attn-only --seq 16,40 --batch 1 --heads 2 --embd 16 --repeats 1 --lsh-chunk 8 "
             "--json %s 2>&1",
             test_bin(), json_path);
    int rc = test_run_cmd(cmd, out, sizeof out);
    int all = rc == 0;
    for (int v = 0; v < VARIANT_COUNT; v++) all &= strstr(out, ab_variants[v]->name) != NULL;
    TEST_TRUE("bench[cli --attn-only] exit 0, every variant in the table", all, "rc %d: %.300s", rc, out);
    char *json = NULL;
    size_t n = 0;
    FILE *f = fopen(json_path, "rb");
    if (f) {
        json = calloc(1, 1 << 16);
        n = fread(json, 1, (1 << 16) - 1, f);
        fclose(f);
    }
    TEST_TRUE("bench[cli --json] written with fwd_ms and saved_bytes", json && n > 0 && strstr(json, "\"saved_bytes\"") &&
                                                                          strstr(json, "\"sliding_window\""),
              "no JSON at %s", json_path);
    free(json);
    remove(json_path);
    snprintf(cmd, sizeof cmd, "%s bench --attn-only --seq 16,x 2>&1", test_bin());
    rc = test_run_cmd(cmd, out, sizeof out);
    TEST_TRUE("bench[cli --seq 16,x] usage error 2", rc == 2 && strstr(out, "--seq"), "rc %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s bench --attn-only --variants baseline,mha 2>&1", test_bin());
    rc = test_run_cmd(cmd, out, sizeof out);
    TEST_TRUE("bench[cli --variants baseline,mha] usage error 2 naming it", rc == 2 && strstr(out, "mha"), "rc %d: %s", rc, out);
    return TEST_SUMMARY();
}
