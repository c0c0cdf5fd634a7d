/*
 * eval.c — `attnbench eval`: loss of a checkpoint on token sequences, optionally their logits as .npy.
 *
 * Input: a text file of token ids, one sequence per line, blank separated (blank lines and lines
 * starting with '#' are skipped; data/token_ids.h reads it), or a token shard (llm.c format, detected by its magic; rows of its
 * sidecar, else consecutive sequences of the checkpoint's training length, loss mask honoured).
 * Output (stdout): JSON {"checkpoint", "variant", "sequences": [{"line", "tokens", "loss"}], "mean_loss"
 * (over all predicted tokens), "mean_sequence_loss"}.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/npy.h"
#include "data/shard.h"
#include "data/token_ids.h"
#include "model/checkpoint.h"

typedef struct {
    int32_t *tokens;  /* (n) */
    int32_t *targets; /* (n) next token or -1 */
    int n;
    long line;        /* 1-based source line (text) or row index (shard) */
} sequence;

typedef struct {
    sequence *seq;
    int n, cap;
} sequence_list;

/* appends s to l, which owns it from here (it is freed when it cannot be appended) */
static ab_status push_sequence(sequence_list *l, sequence s) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        sequence *ns = realloc(l->seq, (size_t)cap * sizeof *ns);
        if (!ns) {
            free(s.tokens);
            free(s.targets);
            return ab_fail(AB_ERR_OOM, "out of memory");
        }
        l->seq = ns;
        l->cap = cap;
    }
    l->seq[l->n++] = s;
    return AB_OK;
}

static void free_sequences(sequence_list *l) {
    for (int i = 0; i < l->n; i++) {
        free(l->seq[i].tokens);
        free(l->seq[i].targets);
    }
    free(l->seq);
}

static ab_status make_sequence(sequence *s, const int32_t *ids, const uint8_t *mask, int n, long line) {
    s->tokens = malloc((size_t)n * sizeof(int32_t));
    s->targets = malloc((size_t)n * sizeof(int32_t));
    if (!s->tokens || !s->targets) return ab_fail(AB_ERR_OOM, "out of memory");
    for (int i = 0; i < n; i++) {
        s->tokens[i] = ids[i];
        s->targets[i] = i + 1 < n && (!mask || mask[i + 1]) ? ids[i + 1] : -1;
    }
    s->n = n;
    s->line = line;
    return AB_OK;
}

/* One line of a text input (data/token_ids.h) becomes a sequence. */
static ab_status push_line(void *ctx, const int32_t *ids, int n, long line) {
    sequence sq;
    AB_TRY(make_sequence(&sq, ids, NULL, n, line));
    return push_sequence(ctx, sq);
}

static int is_shard(const char *path) {
    FILE *f = fopen(path, "rb");
    int32_t magic = 0;
    int ok = f && fread(&magic, sizeof magic, 1, f) == 1 && magic == AB_SHARD_MAGIC;
    if (f) fclose(f);
    return ok;
}

static ab_status read_shard(const char *path, int train_T, int V, sequence_list *out) {
    ab_shard sh;
    AB_TRY(ab_shard_read(path, V, &sh));
    int row = sh.row_len > 0 ? sh.row_len : train_T;
    size_t rows = sh.row_len > 0 ? sh.n_rows : sh.n_tokens / (size_t)row;
    int32_t *ids = malloc((size_t)row * sizeof *ids);
    ab_status s = ids ? AB_OK : ab_fail(AB_ERR_OOM, "out of memory");
    for (size_t r = 0; r < rows && s == AB_OK; r++) {
        for (int i = 0; i < row; i++) ids[i] = sh.tokens[r * (size_t)row + (size_t)i];
        sequence sq;
        s = make_sequence(&sq, ids, sh.loss_mask ? sh.loss_mask + r * (size_t)row : NULL, row, (long)r);
        if (s == AB_OK) s = push_sequence(out, sq);
    }
    if (s == AB_OK && rows == 0) s = ab_fail(AB_ERR_FORMAT, "%s: no sequence of %d tokens in the shard", path, row);
    free(ids);
    ab_shard_free(&sh);
    return s;
}

static ab_status evaluate(ab_gpt2 *m, sequence_list *seqs, const char *logits_out, json_t *result) {
    int V = m->cfg.vocab_size, T0 = seqs->seq[0].n;
    ab_atomic_file npy;
    if (logits_out) {
        for (int i = 1; i < seqs->n; i++)
            if (seqs->seq[i].n != T0)
                return ab_fail(AB_ERR_USAGE, "--logits-out needs sequences of one length (line %ld has %d tokens, the first %d)",
                               seqs->seq[i].line, seqs->seq[i].n, T0);
        size_t shape[3] = {(size_t)seqs->n, (size_t)T0, (size_t)V};
        AB_TRY(ab_npy_open(&npy, logits_out, shape, 3));
    }
    json_t *arr = json_array();
    json_object_set_new(result, "sequences", arr);
    double total = 0.0, seq_mean_sum = 0.0;
    long long counted = 0;
    int n_seq_counted = 0;
    float *logits = logits_out ? malloc((size_t)T0 * V * sizeof(float)) : NULL;
    ab_status s = logits_out && !logits ? ab_fail(AB_ERR_OOM, "out of memory for logits") : AB_OK;
    for (int i = 0; i < seqs->n && s == AB_OK; i++) {
        sequence *q = &seqs->seq[i];
        s = ab_gpt2_alloc(m, 1, q->n, 0);
        double sum = 0.0;
        if (s == AB_OK) s = ab_gpt2_forward(m, q->tokens, q->targets, 1, q->n, 0.0f, &sum);
        if (s == AB_OK && logits) s = ab_gpt2_logits_of_last_forward(m, logits);
        if (s == AB_OK && logits) s = ab_npy_write(&npy, logits, (size_t)q->n * V);
        int n_targets = 0;
        for (int t = 0; t < q->n; t++) n_targets += q->targets[t] >= 0;
        double loss = n_targets ? sum / n_targets : NAN;
        json_array_append_new(arr, json_pack("{s:I, s:i, s:i, s:o}", "line", (json_int_t)q->line, "tokens", q->n, "targets",
                                             n_targets, "loss", n_targets ? json_real(loss) : json_null()));
        total += sum;
        counted += n_targets;
        if (n_targets) {
            seq_mean_sum += loss;
            n_seq_counted++;
        }
    }
    free(logits);
    if (logits_out) {
        ab_status c = ab_npy_close(&npy, s == AB_OK);
        if (s == AB_OK) s = c;
    }
    json_object_set_new(result, "n_sequences", json_integer(seqs->n));
    json_object_set_new(result, "n_targets", json_integer(counted));
    json_object_set_new(result, "mean_loss", counted ? json_real(total / (double)counted) : json_null());
    json_object_set_new(result, "mean_sequence_loss", n_seq_counted ? json_real(seq_mean_sum / n_seq_counted) : json_null());
    return s;
}

int cmd_eval(int argc, char **argv) {
    const char *checkpoint = NULL, *input = NULL, *logits_out = NULL, *device = "auto";
    int gpu = 0;
    ab_opt opts[] = {
        {"checkpoint", OPT_STRING, &checkpoint, "FILE", "safetensors checkpoint written by `run` (or GPT-2 weights)"},
        {"input", OPT_STRING, &input, "FILE", "token ids, one sequence per line, or a token shard"},
        {"logits-out", OPT_STRING, &logits_out, "FILE.npy", "write float32 logits of shape (N, T, V)"},
        {"device", OPT_STRING, &device, "cpu|cuda", "backend (default: cuda when present, else cpu)"},
        {"gpu", OPT_INT, &gpu, "N", "GPU index"},
        {NULL, 0, NULL, NULL, NULL},
    };
    ab_cmd_spec spec = {"eval", "", "Mean loss per sequence and overall of a checkpoint on token sequences (JSON on stdout).", NULL,
                        opts};
    int first, help;
    ab_status s = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (s != AB_OK) return ab_cli_fail("eval", s);
    if (help) return 0;
    if (!checkpoint || !input || first < argc) {
        fprintf(stderr, "attnbench eval: --checkpoint FILE and --input FILE are required (attnbench eval --help)\n");
        return 2;
    }
    ab_backend be;
    if ((s = ab_cli_open_backend(device, gpu, &be)) != AB_OK) return ab_cli_fail("eval", s);
    ab_gpt2 m;
    sequence_list seqs = {0};
    json_t *result = json_object();
    s = ab_checkpoint_open(checkpoint, &be, &m);
    if (s == AB_OK) {
        s = is_shard(input) ? read_shard(input, m.attn_cfg.train_T, m.cfg.vocab_size, &seqs)
                            : ab_token_ids_read(input, m.cfg.max_seq, m.cfg.vocab_size, push_line, &seqs);
        if (s == AB_OK && seqs.n == 0) s = ab_fail(AB_ERR_FORMAT, "%s: no sequence", input);
        json_object_set_new(result, "checkpoint", json_string(checkpoint));
        json_object_set_new(result, "variant", json_string(m.variant->name));
        if (s == AB_OK) s = evaluate(&m, &seqs, logits_out, result);
        ab_gpt2_destroy(&m);
    }
    ab_backend_close(&be);
    free_sequences(&seqs);
    if (s == AB_OK) {
        char *text = json_dumps(result, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        printf("%s\n", text);
        free(text);
    }
    json_decref(result);
    return s == AB_OK ? 0 : ab_cli_fail("eval", s);
}
