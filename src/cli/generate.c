/*
 * generate.c — `attnbench generate`: sample text from a checkpoint with the variant's decode cache.
 *
 * The prompt is encoded with GPT-2's BPE (--prompt) or given as ids (--prompt-ids "1 2 3" or "1,2,3");
 * the prompt is prefilled once, then each new token is one decode step. Text is streamed to stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/rng.h"
#include "data/bpe.h"
#include "model/checkpoint.h"
#include "model/infer.h"

static ab_status parse_ids(const char *text, int V, ab_ids *out) {
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= V)
            return ab_fail(AB_ERR_USAGE, "--prompt-ids: offset %ld: expected a token id in 0..%d", (long)(p - text), V - 1);
        AB_TRY(ab_ids_push(out, (int32_t)v));
        p = end;
    }
    return AB_OK;
}

static ab_status print_token(int32_t id) {
    char *text;
    size_t len;
    AB_TRY(ab_bpe_decode(&id, 1, &text, &len));
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    free(text);
    return AB_OK;
}

static ab_status generate(ab_gpt2 *m, ab_ids *ids, int n_new, float temperature, int top_k, uint64_t seed, int *produced) {
    int V = m->cfg.vocab_size, max_T = m->cfg.max_seq;
    int ctx = (int)ids->n + n_new < max_T ? (int)ids->n + n_new : max_T;
    AB_TRY(ab_gpt2_alloc_cache(m, 1, ctx));
    float *logits = malloc((size_t)V * sizeof *logits);
    if (!logits) return ab_fail(AB_ERR_OOM, "out of memory");
    ab_rng rng;
    ab_rng_seed(&rng, seed);
    ab_status s = ab_gpt2_prefill(m, ids->ids, 1, (int)ids->n, logits);
    *produced = 0;
    for (int i = 0; i < n_new && s == AB_OK; i++) {
        int32_t next = ab_sample_token(logits, V, temperature, top_k, &rng);
        s = print_token(next);
        if (s == AB_OK) s = ab_ids_push(ids, next);
        (*produced)++;
        if (s != AB_OK || (int)ids->n >= ctx) break;
        s = ab_gpt2_decode(m, &next, 1, (int)ids->n - 1, logits);
    }
    free(logits);
    return s;
}

int cmd_generate(int argc, char **argv) {
    const char *checkpoint = NULL, *prompt = NULL, *prompt_ids = NULL, *device = "auto";
    int tokens = 64, top_k = 40, gpu = 0;
    float temperature = 1.0f;
    uint64_t seed = 1337;
    ab_opt opts[] = {
        {"checkpoint", OPT_STRING, &checkpoint, "FILE", "safetensors checkpoint"},
        {"prompt", OPT_STRING, &prompt, "TEXT", "prompt text (GPT-2 BPE)"},
        {"prompt-ids", OPT_STRING, &prompt_ids, "IDS", "prompt as token ids, space or comma separated"},
        {"tokens", OPT_INT, &tokens, "N", "tokens to generate (default 64)"},
        {"temperature", OPT_FLOAT, &temperature, "X", "sampling temperature; 0 = greedy (default 1)"},
        {"top-k", OPT_INT, &top_k, "K", "sample among the K most likely tokens; 0 = all (default 40)"},
        {"seed", OPT_U64, &seed, "S", "sampling seed"},
        {"device", OPT_STRING, &device, "cpu|cuda", "backend (default: cuda when present, else cpu)"},
        {"gpu", OPT_INT, &gpu, "N", "GPU index"},
        {NULL, 0, NULL, NULL, NULL},
    };
    ab_cmd_spec spec = {"generate", "", "Sample text from a checkpoint, decoding with the variant's cache.", NULL, opts};
    int first, help;
    ab_status s = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (s != AB_OK) return ab_cli_fail("generate", s);
    if (help) return 0;
    if (!checkpoint || (!prompt == !prompt_ids) || first < argc || tokens < 0 || temperature < 0) {
        fprintf(stderr, "attnbench generate: --checkpoint FILE and exactly one of --prompt / --prompt-ids are required; "
                        "--tokens and --temperature must be >= 0\n");
        return 2;
    }
    ab_backend be;
    if ((s = ab_cli_open_backend(device, gpu, &be)) != AB_OK) return ab_cli_fail("generate", s);
    ab_gpt2 m;
    ab_ids ids = {0};
    int produced = 0;
    s = ab_checkpoint_open(checkpoint, &be, &m);
    if (s == AB_OK) {
        if (prompt_ids) s = parse_ids(prompt_ids, m.cfg.vocab_size, &ids);
        else {
            ab_bpe_encoder *enc;
            s = ab_bpe_encoder_new(&enc);
            if (s == AB_OK) {
                s = ab_bpe_encode(enc, prompt, strlen(prompt), &ids);
                ab_bpe_encoder_free(enc);
            }
        }
        if (s == AB_OK && ids.n == 0) s = ab_fail(AB_ERR_USAGE, "the prompt is empty");
        if (s == AB_OK && (int)ids.n >= m.cfg.max_seq)
            s = ab_fail(AB_ERR_USAGE, "the prompt has %zu tokens; the model's context is %d", ids.n, m.cfg.max_seq);
        if (s == AB_OK && prompt) fputs(prompt, stdout);
        if (s == AB_OK) s = generate(&m, &ids, tokens, temperature, top_k, seed, &produced);
        printf("\n");
        if (s == AB_OK && produced < tokens)
            fprintf(stderr, "attnbench generate: stopped after %d tokens at the model's context of %d\n", produced, m.cfg.max_seq);
        ab_gpt2_destroy(&m);
    }
    ab_ids_free(&ids);
    ab_backend_close(&be);
    return s == AB_OK ? 0 : ab_cli_fail("generate", s);
}
