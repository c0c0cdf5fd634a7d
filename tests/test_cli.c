/*
 * test_cli.c — the attnbench binary end to end: exit codes and messages for bad input, a tiny training
 * run followed by eval, eval --logits-out and generate on its checkpoint, and `bench --infer`.
 *
 * Runs the binary named by $AB_BIN (tools/run-tests.sh sets it) in a temporary directory.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "attn/variant.h"
#include "core/fsutil.h"
#include "core/rng.h"
#include "data/shard.h"
#include "test_util.h"

static char dir[64], out[65536];

/* Runs `attnbench ARGS` (stderr merged) and checks the exit code and that the output contains `needle`. */
static void expect(const char *name, const char *args, int want_rc, const char *needle) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd %s && %s %s 2>&1", dir, test_bin(), args);
    int rc = test_run_cmd(cmd, out, sizeof out);
    int has = !needle || strstr(out, needle) != NULL;
    test_report(rc == want_rc && has, name, "exit %d (want %d)%s%s; output: %.300s", rc, want_rc, has ? "" : ", missing: ",
                has ? "" : needle, out);
}

static void write_shard(const char *name, size_t n, int vocab) {
    uint16_t *t = malloc(n * sizeof *t);
    ab_rng r;
    ab_rng_seed(&r, 3);
    for (size_t i = 0; i < n; i++) t[i] = (uint16_t)ab_rng_below(&r, (uint32_t)vocab);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (ab_shard_write(path, t, n, NULL, 0) != AB_OK) printf("# shard write failed: %s\n", ab_error());
    free(t);
}

static void corrupt(const char *src, const char *dst, long offset, const char *bytes, size_t n, size_t truncate_to) {
    char path[256], *buf;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, src);
    if (ab_read_file(path, &buf, &len) != AB_OK) return;
    if (offset >= 0) memcpy(buf + offset, bytes, n);
    if (truncate_to) len = truncate_to;
    snprintf(path, sizeof path, "%s/%s", dir, dst);
    ab_write_file_atomic(path, buf, len);
    free(buf);
}

/* train_loss of `variant` at `epoch` in DIR/epochs.csv (column 5), or NAN. */
static double epoch_loss(const char *run, const char *variant, int epoch) {
    char path[256], *buf, prefix[64];
    size_t n;
    snprintf(path, sizeof path, "%s/%s/epochs.csv", dir, run);
    if (ab_read_file(path, &buf, &n) != AB_OK) return NAN;
    snprintf(prefix, sizeof prefix, "\n%s,%d,", variant, epoch);
    char *line = strstr(buf, prefix);
    double loss = NAN;
    if (line) {
        char *field = line + 1;
        for (int i = 0; i < 4 && field; i++) field = strchr(field, ',') ? strchr(field, ',') + 1 : NULL;
        if (field) loss = strtod(field, NULL);
    }
    free(buf);
    return loss;
}

/* A run killed (SIGKILL) right after its epoch-1 training state appears, then resumed, must end with the same
 * epoch-2 loss as an uninterrupted run: training is deterministic and the state holds everything. */
static void test_resume_after_kill(void) {
    const char *args = "run --device cpu --preset tiny --variants baseline --epochs 2 --steps-per-epoch 6 --batch 2 --seq 32 "
                       "--data train.bin --gen-tokens 0 --idle-s 0 --state-interval-s 0";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s --quiet --out full", args);
    expect("uninterrupted 2-epoch run", cmd, 0, NULL);
    snprintf(cmd, sizeof cmd,
             "cd %s && (%s %s --quiet --out cut >/dev/null 2>&1 & pid=$!; "
             "while [ ! -f cut/checkpoints/baseline.state.safetensors ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done; "
             "kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; true)",
             dir, test_bin(), args);
    int rc = test_run_cmd(cmd, out, sizeof out);
    char state[256];
    snprintf(state, sizeof state, "%s/cut/checkpoints/baseline.state.safetensors", dir);
    int interrupted = rc == 0 && ab_file_exists(state);
    TEST_TRUE("run killed after epoch 1 leaves its training state", interrupted, "rc %d, no %s", rc, state);
    if (!interrupted) return;
    snprintf(cmd, sizeof cmd, "%s --resume cut", args);
    expect("resume continues after epoch 1", cmd, 0, "resuming after epoch 1");
    double full = epoch_loss("full", "baseline", 2), resumed = epoch_loss("cut", "baseline", 2);
    TEST_TRUE("resumed epoch-2 loss equals the uninterrupted run's", !isnan(full) && full == resumed, "full %.9g resumed %.9g", full,
              resumed);
    TEST_TRUE("the state file is removed once the variant finishes", !ab_file_exists(state), "%s still there", state);
}

/* `bench --infer` on the tiny preset: a table row per variant, eight finite numbers each (prefill, decode p50 / p90
 * at batch 1 and 2, analytical and allocated cache bytes per token, the two equal and positive). */
static void test_bench_infer(void) {
    expect("bench --infer on cpu, every variant",
           "bench --infer --device cpu --preset tiny --variants all --seq 16 --batch 2 --gen-tokens 4 --lsh-chunk 8", 0,
           "dec_p50_1");
    for (int v = 0; v < VARIANT_COUNT; v++) {
        const char *name = ab_variants[v]->name, *line = out;
        char want[80], label[128];
        snprintf(want, sizeof want, "\n%s ", name);
        double x[8];
        int got = (line = strstr(out, want)) ? sscanf(line + strlen(want), "%lf %lf %lf %lf %lf %lf %lf %lf", &x[0], &x[1],
                                                        &x[2], &x[3], &x[4], &x[5], &x[6], &x[7])
                                             : 0;
        int finite = got == 8;
        for (int i = 0; i < got; i++) finite &= isfinite(x[i]) && x[i] > 0;
        snprintf(label, sizeof label, "bench --infer row for %s: 8 finite positive numbers, cache analytical == allocated", name);
        TEST_TRUE(label, finite && x[6] == x[7], "parsed %d numbers from: %.200s", got, line ? line + 1 : "(no row)");
    }
    expect("bench --infer: --gen-tokens 0 is a usage error", "bench --infer --device cpu --preset tiny --gen-tokens 0", 2,
           "--gen-tokens");
    expect("bench --infer --help", "bench --infer --help", 0, "--gen-tokens");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ab_test_cli_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    char abs_bin[4096];
    if (!realpath(test_bin(), abs_bin)) {
        printf("FAIL binary %s not found\n# passed 0 failed 1\n", test_bin());
        return 1;
    }
    setenv("AB_BIN", abs_bin, 1);

    expect("--version", "--version", 0, "attnbench");
    expect("unknown command: usage error", "frobnicate", 2, "unknown command");
    expect("run --help lists its options", "run --help", 0, "--variants");
    expect("unknown variant: usage error", "run --variants baseline,nope --idle-s 0", 2, "nope");
    expect("unknown preset: usage error", "run --preset huge --idle-s 0", 2, "unknown preset");
    expect("T beyond the position table: usage error", "run --seq 4096 --idle-s 0", 2, "position table");
    expect("bad option value: usage error", "run --batch many", 2, "--batch");
    expect("missing data: runtime error naming the path", "run --device cpu --variants baseline --data nowhere.bin --idle-s 0 --out r0",
           1, "nowhere.bin");

    write_shard("train.bin", 40000, 50257);
    corrupt("train.bin", "badmagic.bin", 0, "\x01\x02\x03\x04", 4, 0);
    corrupt("train.bin", "short.bin", -1, NULL, 0, 1024 + 2 * 1000);
    expect("shard with a bad magic: runtime error", "run --device cpu --variants baseline --data badmagic.bin --idle-s 0 --out r1", 1,
           "magic");
    expect("shard shorter than its header says: runtime error", "run --device cpu --variants baseline --data short.bin --idle-s 0 --out r2",
           1, "short.bin");

    expect("tiny run, baseline, 1 epoch of 2 steps",
           "run --device cpu --preset tiny --variants baseline --epochs 1 --steps-per-epoch 2 --batch 2 --seq 32 --data train.bin "
           "--gen-tokens 4 --idle-s 0 --out run1 --quiet",
           0, "run1");
    char path[256];
    snprintf(path, sizeof path, "%s/run1/run.json", dir);
    TEST_TRUE("run writes run.json", ab_file_exists(path), "%s missing", path);
    snprintf(path, sizeof path, "%s/run1/checkpoints/baseline.safetensors", dir);
    TEST_TRUE("run writes the checkpoint", ab_file_exists(path), "%s missing", path);
    expect("a second run into the same directory is refused", "run --device cpu --variants baseline --data train.bin --idle-s 0 --out run1",
           2, "--resume");
    expect("resume skips the finished variant",
           "run --device cpu --preset tiny --variants baseline --epochs 1 --steps-per-epoch 2 --batch 2 --seq 32 --data train.bin "
           "--gen-tokens 4 --idle-s 0 --resume run1",
           0, "skipped");

    expect("--stop-after: the second variant is not started",
           "run --device cpu --preset tiny --variants baseline,flash --epochs 1 --steps-per-epoch 2 --batch 2 --seq 32 "
           "--data train.bin --gen-tokens 0 --idle-s 0 --stop-after 0.001 --out run2 --quiet",
           0, "1 variant(s) not started: continue with --resume run2");
    expect("--resume runs the variant --stop-after left",
           "run --device cpu --preset tiny --variants baseline,flash --epochs 1 --steps-per-epoch 2 --batch 2 --seq 32 "
           "--data train.bin --gen-tokens 0 --idle-s 0 --resume run2",
           0, "baseline        finished in an earlier run: skipped");
    snprintf(path, sizeof path, "%s/run2/checkpoints/flash.safetensors", dir);
    TEST_TRUE("the resumed run trained flash", ab_file_exists(path), "%s missing", path);
    expect("--stop-after below 0 is a usage error", "run --device cpu --variants baseline --data train.bin --stop-after -1", 2,
           "--stop-after");
    expect("--stop-after nan is a usage error", "run --device cpu --variants baseline --data train.bin --stop-after nan", 2,
           "--stop-after");
    expect("--idle-s nan is a usage error", "run --device cpu --variants baseline --data train.bin --idle-s nan", 2,
           "--idle-s");

    /* --deterministic is part of the configuration: recorded in run.json (only when set, so runs recorded before the
     * option existed resume), and a resume without it is refused */
    expect("--deterministic run",
           "run --device cpu --preset tiny --variants baseline --epochs 1 --steps-per-epoch 1 --batch 2 --seq 32 "
           "--data train.bin --gen-tokens 0 --idle-s 0 --deterministic --out run3 --quiet",
           0, "run3");
    char *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/run3/run.json", dir);
    ab_read_file(path, &text, &len);
    TEST_TRUE("--deterministic is recorded", text && strstr(text, "\"deterministic\": true"), "run.json lacks it");
    free(text);
    text = NULL;
    snprintf(path, sizeof path, "%s/run1/run.json", dir);
    ab_read_file(path, &text, &len);
    TEST_TRUE("no deterministic key without the option", text && !strstr(text, "deterministic"), "run1's run.json has it");
    free(text);
    expect("resuming a --deterministic run without it is refused",
           "run --device cpu --preset tiny --variants baseline,flash --epochs 1 --steps-per-epoch 1 --batch 2 --seq 32 "
           "--data train.bin --gen-tokens 0 --idle-s 0 --resume run3",
           2, "deterministic");

    test_resume_after_kill();

    snprintf(path, sizeof path, "%s/ids.txt", dir);
    const char ids[] = "# two sequences of 5 tokens\n464 2068 7586 21831 18045\n\n50256 40 588 257 1332\n";
    ab_write_file_atomic(path, ids, sizeof ids - 1);
    expect("eval prints the mean loss", "eval --device cpu --checkpoint run1/checkpoints/baseline.safetensors --input ids.txt", 0,
           "\"mean_loss\"");
    expect("eval --logits-out", "eval --device cpu --checkpoint run1/checkpoints/baseline.safetensors --input ids.txt --logits-out l.npy",
           0, "\"mean_loss\"");
    struct stat st;
    snprintf(path, sizeof path, "%s/l.npy", dir);
    size_t want = 128 + (size_t)2 * 5 * 50257 * 4;
    TEST_TRUE("logits .npy has the size of (2, 5, 50257) float32 + header", stat(path, &st) == 0 && (size_t)st.st_size == want,
              "size %lld, want %zu", (long long)st.st_size, want);
    snprintf(path, sizeof path, "%s/bad_ids.txt", dir);
    ab_write_file_atomic(path, "1 2 3\n4 x 6\n", 12);
    expect("eval: bad token names file and line", "eval --device cpu --checkpoint run1/checkpoints/baseline.safetensors --input bad_ids.txt",
           1, "bad_ids.txt:2");
    snprintf(path, sizeof path, "%s/glued_ids.txt", dir);
    ab_write_file_atomic(path, "464+2068 7586\n", 14); /* was read as 464 2068 7586 */
    expect("eval: ids run together are refused", "eval --device cpu --checkpoint run1/checkpoints/baseline.safetensors --input glued_ids.txt",
           1, "glued_ids.txt:1: column 1");
    corrupt("run1/checkpoints/baseline.safetensors", "trunc.safetensors", -1, NULL, 0, 5000);
    expect("eval: truncated checkpoint", "eval --device cpu --checkpoint trunc.safetensors --input ids.txt", 1, "trunc.safetensors");
    expect("eval: a shard is not a checkpoint", "eval --device cpu --checkpoint train.bin --input ids.txt", 1, "train.bin");
    expect("generate from ids", "generate --device cpu --checkpoint run1/checkpoints/baseline.safetensors --prompt-ids '464 2068' --tokens 5 --seed 1",
           0, NULL);
    expect("generate: bad prompt id", "generate --device cpu --checkpoint run1/checkpoints/baseline.safetensors --prompt-ids '1 99999'", 2,
           "--prompt-ids");
    expect("list shows every variant", "list", 0, "mla");
    expect("bench with a measured peak reports an MFU",
           "bench --device cpu --preset tiny --variants baseline --steps 1 --warmup-steps 0 --batch 1 --seq 16 --peak-tflops measured", 0,
           "%");
    expect("bench: a bad --peak-tflops is a usage error", "bench --device cpu --preset tiny --peak-tflops fast", 2, "--peak-tflops");
    test_bench_infer();

    test_remove_dir(dir);
    return TEST_SUMMARY();
}
