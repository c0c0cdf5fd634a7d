/*
 * seeds.c — writes the first corpus of a harness of tests/fuzz/ (tools/fuzz.sh runs it when a corpus is empty).
 *
 *     seeds fuzz_safetensors|fuzz_shard|fuzz_results|fuzz_token_ids DIR
 *
 * The seeds are real files: safetensors written by ab_st_write (plus hand-made headers for the dtypes it does
 * not write), shards and sidecars written by ab_shard_write and wrapped in fuzz_shard's input layout, the
 * recorded results directory of tests/data/recorded_run in fuzz_results' layout, and small id files.
 * Run from the repository root.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/safetensors.h"
#include "data/shard.h"

static const char *out_dir;

static void seed(const char *name, const void *data, size_t n) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    if (ab_write_file_atomic(path, data, n) != AB_OK) {
        fprintf(stderr, "seeds: %s\n", ab_error());
        exit(1);
    }
}

static char *slurp(const char *path, size_t *n) {
    char *text;
    if (ab_read_file(path, &text, n) != AB_OK) {
        fprintf(stderr, "seeds: %s\n", ab_error());
        exit(1);
    }
    return text;
}

/* A temporary directory for the files that are written to be wrapped. */
static const char *scratch(const char *name) {
    static char dir[64], path[128];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/ab_fuzz_seeds_XXXXXX");
        if (!mkdtemp(dir)) exit(1);
    }
    if (!name) return dir;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* A safetensors file with the given header and data bytes (the header padded to 8 bytes). */
static void raw_safetensors(const char *name, const char *header, const void *data, size_t n) {
    size_t h = strlen(header), padded = (h + 7) / 8 * 8;
    unsigned char *buf = malloc(8 + padded + n);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, ' ', padded - h);
    if (n) memcpy(buf + 8 + padded, data, n);
    seed(name, buf, 8 + padded + n);
    free(buf);
}

static void safetensors_seeds(void) {
    float w[12], b[3] = {0.5f, -1, 2}, one = 3.25f;
    for (int i = 0; i < 12; i++) w[i] = (float)i / 7;
    ab_st_write_tensor ts[] = {
        {"transformer.wte.weight", 2, {4, 3}, w},
        {"transformer.h.0.ln_1.bias", 1, {3}, b},
        {"scalar", 0, {0}, &one},
        {"empty", 2, {0, 3}, &one},
    };
    const char *meta[] = {"attnbench", "{\"format_version\":1,\"variant\":\"baseline\",\"model\":{\"n_layer\":1}}",
                          "format", "pt"};
    const char *p = scratch("m.safetensors");
    if (ab_st_write(p, ts, 4, meta, 2) != AB_OK) exit(1);
    size_t n;
    char *bytes = slurp(p, &n);
    seed("written", bytes, n);
    free(bytes);
    if (ab_st_write(p, ts, 2, NULL, 0) != AB_OK) exit(1);
    bytes = slurp(p, &n);
    seed("written-no-metadata", bytes, n);
    free(bytes);
    const unsigned char data[16] = {0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3c, 0x00, 0x7c, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f};
    raw_safetensors("dtypes",
                    "{\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                    "\"h\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[4,8]},"
                    "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                    "\"__metadata__\":{\"attnbench_state\":\"{\\\"epoch\\\":1}\"}}",
                    data, sizeof data);
    raw_safetensors("empty-header", "{}", NULL, 0);
}

/* fuzz_shard's layout: flags, u32 length of the shard part, the shard, the sidecar. */
static void shard_seed(const char *name, unsigned flags, int with_sidecar) {
    size_t ns, nr = 0;
    char rows[200];
    snprintf(rows, sizeof rows, "%s.rows", scratch("s.bin"));
    char *s = slurp(scratch("s.bin"), &ns), *r = with_sidecar ? slurp(rows, &nr) : NULL;
    unsigned char *buf = malloc(5 + ns + nr);
    buf[0] = (unsigned char)flags;
    for (int i = 0; i < 4; i++) buf[1 + i] = (unsigned char)(ns >> (8 * i));
    memcpy(buf + 5, s, ns);
    if (nr) memcpy(buf + 5 + ns, r, nr);
    seed(name, buf, 5 + ns + nr);
    free(buf);
    free(s);
    free(r);
}

static void shard_seeds(void) {
    uint16_t tok[24];
    uint8_t mask[24];
    for (int i = 0; i < 24; i++) {
        tok[i] = (uint16_t)(i == 23 ? 50256 : i * 2099 % 50257);
        mask[i] = (uint8_t)(i % 4 != 0);
    }
    const char *p = scratch("s.bin");
    if (ab_shard_write(p, tok, 24, mask, 8) != AB_OK) exit(1);
    shard_seed("rows-mask", 0, 1);
    shard_seed("rows-mask-repaired", 7, 1);
    if (ab_shard_write(p, tok, 24, NULL, 0) != AB_OK) exit(1);
    shard_seed("packed", 0, 1);
    shard_seed("llmc-no-sidecar", 8, 0);
    if (ab_shard_write(p, tok, 21, mask, 0) != AB_OK) exit(1);
    shard_seed("packed-mask", 0, 1);
    if (ab_shard_write(p, tok, 0, NULL, 0) != AB_OK) exit(1);
    shard_seed("empty", 0, 1);
}

/* fuzz_results' layout: run.json, steps.csv, power.csv, separated by 0x01; fewer parts leave files absent. */
static void results_seed(const char *name, int parts) {
    static const char *const files[] = {"run.json", "steps.csv", "power.csv"};
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    for (int k = 0; k < parts; k++) {
        char path[200];
        snprintf(path, sizeof path, "tests/data/recorded_run/%s", files[k]);
        size_t n;
        char *text = slurp(path, &n);
        if (k) fputc(0x01, m);
        fwrite(text, 1, n, m);
        free(text);
    }
    fclose(m);
    seed(name, buf, len);
    free(buf);
}

static void results_seeds(void) {
    results_seed("recorded-run", 3);
    results_seed("recorded-run-json-steps", 2);
    results_seed("recorded-run-json", 1);
    const char minimal[] = "{\"schema_version\": 1, \"variants\": [{\"name\": \"flash\", \"status\": \"running\", "
                           "\"epochs\": [{\"epoch\": 1}]}]}\n\001variant,step,epoch,loss,lr,grad_norm,step_time_ms,"
                           "tokens,loss_tokens\nflash,1,1,10.5,0.0006,1.5,100,8192,4000\n\001t_s,variant,phase\n0.5,"
                           "flash,train\n";
    seed("minimal", minimal, sizeof minimal - 1);
}

static void token_ids_seeds(void) {
    static const char *const texts[] = {
        "# two sequences of 5 tokens\n464 2068 7586 21831 18045\n\n50256 40 588 257 1332\n",
        "1 2 3\r\n4\t5 6\r\n",
        "0 50256",
        "  # indented comment\n   \n12 34 56 78 90 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "ids-%zu", i);
        seed(name, texts[i], strlen(texts[i]));
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: seeds HARNESS DIR\n");
        return 2;
    }
    out_dir = argv[2];
    const char *h = argv[1];
    if (!strcmp(h, "fuzz_safetensors")) safetensors_seeds();
    else if (!strcmp(h, "fuzz_shard")) shard_seeds();
    else if (!strcmp(h, "fuzz_results")) results_seeds();
    else if (!strcmp(h, "fuzz_token_ids")) token_ids_seeds();
    else {
        fprintf(stderr, "seeds: no seeds for %s\n", h);
        return 2;
    }
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch(NULL));
    return system(cmd) == 0 ? 0 : 1;
}
