/*
 * gpt2.c — GPT-2 parameters, initialisation, forward and backward through the backend op table.
 *
 * Block l (pre-LayerNorm, as GPT-2):
 *     ln1  = LN(r)                       r = encoded (l = 0) or residual3[l-1]       (B,T,C)
 *     atty = attention_variant(ln1)                                                   (B,T,C)
 *     residual2 = r + atty @ W_proj + b_proj
 *     ln2  = LN(residual2);  fch = ln2 @ W_fc + b_fc (B,T,4C);  fch_gelu = gelu(fch)
 *     residual3 = residual2 + fch_gelu @ W_fcproj + b_fcproj
 * then lnf = LN(residual3[L-1]) and the tied classifier (logits = lnf @ wte^T) with cross-entropy.
 * Backward walks the same graph in reverse; every backend op accumulates into gradients, so one
 * d_residual buffer carries the residual-stream gradient through the layers. Where the backend has the
 * optional fused ops, each projection adds its residual itself, c_fc + gelu is one call forward and
 * gelu' + c_proj's backward one call backward. Where the backend records steps (graph ops, be->graphs), a
 * decode step is recorded once per cache and replayed; it reads its tokens and position from the cache's step
 * buffer, uploaded inside the recording (docs/ARCHITECTURE.md, "Recorded decode steps").
 */
#include "model/gpt2.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

#define INIT_STD 0.02f

/* ------------------------------------------------------------------ parameter table */

typedef struct {
    const char *name;
    int rows_kind, cols_kind;     /* sizes: 0 = 1, 1 = C, 4 = 4C, -1 = V, -2 = max_seq */
    ab_init_kind init;
    int residual_proj;            /* init std 0.02 / sqrt(2L) */
} common_tensor;

/* Per-block tensors common to every variant, in block order; the variant's tensors come after ln_1. */
static const common_tensor block_before_attn[] = {
    {"ln_1.weight", 0, 1, INIT_ONE, 0},
    {"ln_1.bias", 0, 1, INIT_ZERO, 0},
};
static const common_tensor block_after_attn[] = {
    {"attn.c_proj.weight", 1, 1, INIT_NORMAL, 1},
    {"attn.c_proj.bias", 0, 1, INIT_ZERO, 0},
    {"ln_2.weight", 0, 1, INIT_ONE, 0},
    {"ln_2.bias", 0, 1, INIT_ZERO, 0},
    {"mlp.c_fc.weight", 1, 4, INIT_NORMAL, 0},
    {"mlp.c_fc.bias", 0, 4, INIT_ZERO, 0},
    {"mlp.c_proj.weight", 4, 1, INIT_NORMAL, 1},
    {"mlp.c_proj.bias", 0, 1, INIT_ZERO, 0},
};
#define N_BEFORE ((int)(sizeof block_before_attn / sizeof block_before_attn[0]))
#define N_AFTER ((int)(sizeof block_after_attn / sizeof block_after_attn[0]))

/* Indices of the common block tensors in a layer's slice of m->params. */
enum { P_LN1_W = 0, P_LN1_B };
#define P_AFTER(m, k) (N_BEFORE + (m)->n_attn_tensors + (k))
enum { A_PROJ_W = 0, A_PROJ_B, A_LN2_W, A_LN2_B, A_FC_W, A_FC_B, A_FCPROJ_W, A_FCPROJ_B };

static int resolve_size(int kind, const ab_model_config *c) {
    switch (kind) {
    case 0: return 1;
    case 1: return c->n_embd;
    case 4: return 4 * c->n_embd;
    case -1: return c->vocab_size;
    default: return c->max_seq;
    }
}

static int params_per_layer(const ab_gpt2 *m) { return N_BEFORE + m->n_attn_tensors + N_AFTER; }

/* params[] order: wte, wpe, then per layer (ln_1, variant tensors, c_proj, ln_2, mlp), then ln_f. */
#define P_WTE 0
#define P_WPE 1
#define P_LAYER(m, l, k) (2 + (l) * params_per_layer(m) + (k))
#define P_LNF_W(m) (2 + (m)->cfg.n_layer * params_per_layer(m))
#define P_LNF_B(m) (P_LNF_W(m) + 1)

static void set_info(ab_param_info *p, const char *name, int rows, int cols, ab_init_kind init, float std, int layer,
                     int attn_index) {
    snprintf(p->name, sizeof p->name, "%s", name);
    p->rows = rows;
    p->cols = cols;
    p->numel = (size_t)rows * cols;
    p->init = init;
    p->init_std = std;
    p->trainable = init != INIT_GAUSSIAN_FIXED;
    p->decay = p->trainable && rows > 1;
    p->layer = layer;
    p->attn_index = attn_index;
}

static ab_status build_param_table(ab_gpt2 *m) {
    const ab_model_config *c = &m->cfg;
    ab_attn_tensor at[AB_ATTN_MAX_TENSORS];
    m->n_attn_tensors = m->variant->tensors(&m->attn_cfg, at);
    m->n_params = 2 + c->n_layer * params_per_layer(m) + 2;
    m->params = calloc((size_t)m->n_params, sizeof *m->params);
    if (!m->params) return ab_fail(AB_ERR_OOM, "out of memory for the parameter table");
    float proj_std = INIT_STD / sqrtf(2.0f * c->n_layer);
    set_info(&m->params[P_WTE], "transformer.wte.weight", c->vocab_size, c->n_embd, INIT_NORMAL, INIT_STD, -1, -1);
    set_info(&m->params[P_WPE], "transformer.wpe.weight", c->max_seq, c->n_embd, INIT_NORMAL, INIT_STD, -1, -1);
    char name[AB_PARAM_NAME_MAX];
    for (int l = 0; l < c->n_layer; l++) {
        int k = 0;
        for (int i = 0; i < N_BEFORE; i++, k++) {
            const common_tensor *t = &block_before_attn[i];
            snprintf(name, sizeof name, "transformer.h.%d.%s", l, t->name);
            set_info(&m->params[P_LAYER(m, l, k)], name, resolve_size(t->rows_kind, c), resolve_size(t->cols_kind, c),
                     t->init, INIT_STD, l, -1);
        }
        for (int i = 0; i < m->n_attn_tensors; i++, k++) {
            snprintf(name, sizeof name, "transformer.h.%d.%s", l, at[i].name);
            ab_param_info *p = &m->params[P_LAYER(m, l, k)];
            set_info(p, name, at[i].rows, at[i].cols, at[i].init, INIT_STD, l, i);
            p->decay = at[i].weight_decay && p->trainable;
        }
        for (int i = 0; i < N_AFTER; i++, k++) {
            const common_tensor *t = &block_after_attn[i];
            snprintf(name, sizeof name, "transformer.h.%d.%s", l, t->name);
            set_info(&m->params[P_LAYER(m, l, k)], name, resolve_size(t->rows_kind, c), resolve_size(t->cols_kind, c),
                     t->init, t->residual_proj ? proj_std : INIT_STD, l, -1);
        }
    }
    set_info(&m->params[P_LNF_W(m)], "transformer.ln_f.weight", 1, c->n_embd, INIT_ONE, INIT_STD, -1, -1);
    set_info(&m->params[P_LNF_B(m)], "transformer.ln_f.bias", 1, c->n_embd, INIT_ZERO, INIT_STD, -1, -1);

    /* offsets: decayed tensors, then other trainable ones, then fixed ones */
    size_t off = 0;
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < m->n_params; i++) {
            ab_param_info *p = &m->params[i];
            int group = p->decay ? 0 : p->trainable ? 1 : 2;
            if (group != pass) continue;
            p->offset = off;
            off += p->numel;
        }
        if (pass == 0) m->n_decay = off;
        if (pass == 1) m->n_trainable = off;
    }
    m->n_elements = off;
    m->n_attention = 0;
    for (int i = 0; i < m->n_params; i++) {
        const ab_param_info *p = &m->params[i];
        if (p->attn_index >= 0 || strstr(p->name, ".attn.c_proj.")) m->n_attention += p->numel;
    }
    return AB_OK;
}

static ab_status validate_config(const ab_model_config *c, int train_T) {
    if (c->n_layer < 1 || c->n_head < 1 || c->n_embd < 1 || c->vocab_size < 1 || c->max_seq < 1)
        return ab_fail(AB_ERR_USAGE, "model sizes must be positive (layers %d, heads %d, embd %d, vocab %d, positions %d)",
                       c->n_layer, c->n_head, c->n_embd, c->vocab_size, c->max_seq);
    if (c->n_layer > AB_GPT2_MAX_LAYERS || c->n_embd > AB_GPT2_MAX_EMBD || c->max_seq > AB_GPT2_MAX_SEQ)
        return ab_fail(AB_ERR_USAGE, "model sizes over the supported %d layers, %d embedding, %d positions (layers %d, "
                       "embd %d, positions %d)", AB_GPT2_MAX_LAYERS, AB_GPT2_MAX_EMBD, AB_GPT2_MAX_SEQ, c->n_layer,
                       c->n_embd, c->max_seq);
    if (c->n_embd % c->n_head)
        return ab_fail(AB_ERR_USAGE, "--embd %d must be a multiple of --heads %d", c->n_embd, c->n_head);
    if (c->vocab_size > 65536)
        return ab_fail(AB_ERR_USAGE, "vocabulary of %d does not fit the uint16 token shards", c->vocab_size);
    if (train_T < 1 || train_T > c->max_seq)
        return ab_fail(AB_ERR_USAGE, "sequence length %d must be between 1 and the position table size %d (--max-seq)",
                       train_T, c->max_seq);
    return AB_OK;
}

ab_status ab_gpt2_plan(ab_gpt2 *m, const ab_model_config *cfg, ab_variant_id variant, int train_T, ab_backend *be) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->be = be;
    if (variant < 0 || variant >= VARIANT_COUNT) return ab_fail(AB_ERR_USAGE, "unknown variant id %d", (int)variant);
    m->variant = ab_variants[variant];
    AB_TRY(validate_config(cfg, train_T));
    ab_model_attn_config(cfg, train_T, &m->attn_cfg);
    AB_TRY(m->variant->validate(&m->attn_cfg, train_T));
    ab_status st;
    m->attn = ab_variant_ops(m->variant, be->ops->id, &st);
    if (!m->attn) return st;
    return build_param_table(m);
}

ab_status ab_gpt2_alloc_params(ab_gpt2 *m) {
    ab_backend *be = m->be;
    AB_TRY(ab_alloc(be, &m->params_buf, m->n_elements * be->ops->act_bytes, MEM_PARAMS));
    if (be->ops->act_bytes != sizeof(float))
        AB_TRY(ab_alloc(be, &m->master_buf, m->n_elements * sizeof(float), MEM_MASTER));
    return AB_OK;
}

ab_status ab_gpt2_create(ab_gpt2 *m, const ab_model_config *cfg, ab_variant_id variant, int train_T,
                         ab_backend *be) {
    AB_TRY(ab_gpt2_plan(m, cfg, variant, train_T, be));
    return ab_gpt2_alloc_params(m);
}

/* The recorded decode step holds pointers into the activations and the cache: dropped with either. */
static void forget_decode_step(ab_gpt2 *m) {
    if (m->cache.graph) m->be->ops->graph_free(m->be, m->cache.graph);
    m->cache.graph = NULL;
}

static void free_activations(ab_gpt2 *m) {
    forget_decode_step(m);
    ab_activations *a = &m->act;
    ab_buffer *bufs[] = {&a->ln1, &a->ln1_stats, &a->atty, &a->residual2, &a->ln2, &a->ln2_stats, &a->fch,
                         &a->fch_gelu, &a->residual3, &a->encoded, &a->lnf, &a->lnf_stats, &a->losses, &a->tokens,
                         &a->targets, &a->attn_workspace, &a->d_residual, &a->d_ln, &a->d_atty, &a->d_fch,
                         &a->d_fch_gelu};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ab_free(m->be, bufs[i]);
    if (a->attn_saved) {
        for (int l = 0; l < m->cfg.n_layer; l++) ab_free(m->be, &a->attn_saved[l]);
        free(a->attn_saved);
    }
    memset(a, 0, sizeof *a);
}

void ab_gpt2_destroy(ab_gpt2 *m) {
    if (!m->be) return;
    ab_gpt2_free_cache(m);
    free_activations(m);
    ab_free(m->be, &m->params_buf);
    ab_free(m->be, &m->master_buf);
    ab_free(m->be, &m->grads_buf);
    ab_free(m->be, &m->m_buf);
    ab_free(m->be, &m->v_buf);
    free(m->params);
    memset(m, 0, sizeof *m);
}

const ab_param_info *ab_gpt2_find_param(const ab_gpt2 *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

/* ------------------------------------------------------------------ host <-> backend parameters */

ab_status ab_gpt2_set_params(ab_gpt2 *m, const float *host) {
    ab_backend *be = m->be;
    AB_TRY(be->ops->upload_f32(be, m->params_buf.ptr, host, m->n_elements));
    if (m->master_buf.ptr)
        AB_TRY(be->ops->copy_to_device(be, m->master_buf.ptr, host, m->n_elements * sizeof(float)));
    return AB_OK;
}

ab_status ab_gpt2_get_params(ab_gpt2 *m, float *host) {
    ab_backend *be = m->be;
    if (m->master_buf.ptr) return be->ops->copy_to_host(be, host, m->master_buf.ptr, m->n_elements * sizeof(float));
    return be->ops->download_f32(be, host, m->params_buf.ptr, m->n_elements);
}

ab_status ab_gpt2_get_grads(ab_gpt2 *m, float *host) {
    if (!m->grads_buf.ptr) return ab_fail(AB_ERR_INTERNAL, "gradients requested before ab_gpt2_alloc(training)");
    return m->be->ops->download_f32(m->be, host, m->grads_buf.ptr, m->n_elements);
}

ab_status ab_gpt2_init_weights(ab_gpt2 *m, uint64_t seed) {
    float *host = malloc(m->n_elements * sizeof(float));
    if (!host) return ab_fail(AB_ERR_OOM, "out of memory initialising %zu parameters", m->n_elements);
    for (int i = 0; i < m->n_params; i++) {
        const ab_param_info *p = &m->params[i];
        float *w = host + p->offset;
        ab_rng rng;
        ab_rng_derive(&rng, seed, (uint64_t)i); /* one stream per tensor: independent of layout and threads */
        for (size_t j = 0; j < p->numel; j++) {
            switch (p->init) {
            case INIT_NORMAL: w[j] = p->init_std * (float)ab_rng_normal(&rng); break;
            case INIT_ZERO: w[j] = 0.0f; break;
            case INIT_ONE: w[j] = 1.0f; break;
            case INIT_GAUSSIAN_FIXED: w[j] = (float)ab_rng_normal(&rng); break;
            }
        }
    }
    ab_status s = ab_gpt2_set_params(m, host);
    free(host);
    return s;
}

/* ------------------------------------------------------------------ activations */

static ab_status alloc_act(ab_gpt2 *m, ab_buffer *b, size_t elements, size_t elem_bytes, mem_category cat) {
    return ab_alloc(m->be, b, elements * elem_bytes, cat);
}

ab_status ab_gpt2_alloc(ab_gpt2 *m, int B, int T, int training) {
    ab_activations *a = &m->act;
    if (a->B == B && a->T == T && a->training >= training && a->tokens.ptr) return AB_OK;
    free_activations(m);
    if (T > m->cfg.max_seq)
        return ab_fail(AB_ERR_USAGE, "sequence length %d exceeds the position table (%d)", T, m->cfg.max_seq);
    ab_backend *be = m->be;
    size_t ab = be->ops->act_bytes, L = (size_t)m->cfg.n_layer, C = (size_t)m->cfg.n_embd;
    size_t BT = (size_t)B * T;
    /* Without training, one layer's worth of buffers is reused by every layer. */
    size_t Lk = training ? L : 1;
    AB_TRY(alloc_act(m, &a->ln1, Lk * BT * C, ab, MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->ln1_stats, Lk * 2 * BT, sizeof(float), MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->atty, Lk * BT * C, ab, MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->residual2, Lk * BT * C, ab, MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->ln2, Lk * BT * C, ab, MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->ln2_stats, Lk * 2 * BT, sizeof(float), MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->fch, Lk * BT * 4 * C, ab, MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->fch_gelu, Lk * BT * 4 * C, ab, MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->residual3, (training ? L : 2) * BT * C, ab, MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->encoded, BT * C, ab, MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->lnf, BT * C, ab, MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->lnf_stats, 2 * BT, sizeof(float), MEM_ACTIVATIONS));
    AB_TRY(alloc_act(m, &a->losses, BT, sizeof(float), MEM_OTHER));
    AB_TRY(alloc_act(m, &a->tokens, BT, sizeof(int32_t), MEM_OTHER));
    AB_TRY(alloc_act(m, &a->targets, BT, sizeof(int32_t), MEM_OTHER));
    a->attn_saved = calloc(L, sizeof *a->attn_saved);
    if (!a->attn_saved) return ab_fail(AB_ERR_OOM, "out of memory");
    size_t saved = m->attn->saved_bytes ? m->attn->saved_bytes(&m->attn_cfg, B, T) : 0;
    for (size_t l = 0; l < Lk && saved; l++) AB_TRY(ab_alloc(be, &a->attn_saved[l], saved, MEM_ATTENTION));
    size_t ws = m->attn->workspace_bytes ? m->attn->workspace_bytes(&m->attn_cfg, B, T) : 0;
    if (ws) AB_TRY(ab_alloc(be, &a->attn_workspace, ws, MEM_WORKSPACE));
    if (training) {
        AB_TRY(alloc_act(m, &a->d_residual, BT * C, ab, MEM_ACTIVATIONS));
        AB_TRY(alloc_act(m, &a->d_ln, BT * C, ab, MEM_ACTIVATIONS));
        AB_TRY(alloc_act(m, &a->d_atty, BT * C, ab, MEM_ACTIVATIONS));
        AB_TRY(alloc_act(m, &a->d_fch, BT * 4 * C, ab, MEM_ACTIVATIONS));
        if (!be->ops->gelu_matmul_backward) AB_TRY(alloc_act(m, &a->d_fch_gelu, BT * 4 * C, ab, MEM_ACTIVATIONS));
        if (!m->grads_buf.ptr) AB_TRY(ab_alloc(be, &m->grads_buf, m->n_elements * ab, MEM_GRADS));
        if (!m->m_buf.ptr) {
            AB_TRY(ab_alloc(be, &m->m_buf, m->n_trainable * sizeof(float), MEM_OPTIMIZER));
            AB_TRY(ab_alloc(be, &m->v_buf, m->n_trainable * sizeof(float), MEM_OPTIMIZER));
        }
    }
    a->B = B;
    a->T = T;
    a->training = training;
    return AB_OK;
}

/* ------------------------------------------------------------------ forward / backward */

/* Pointer to element `index` of an act-dtype buffer. */
static inline void *act_at(const ab_gpt2 *m, const ab_buffer *b, size_t index) {
    return (char *)b->ptr + index * m->be->ops->act_bytes;
}
static inline float *f32_at(const ab_buffer *b, size_t index) { return (float *)b->ptr + index; }
static inline void *param(const ab_gpt2 *m, int i) { return act_at(m, &m->params_buf, m->params[i].offset); }
static inline void *grad(const ab_gpt2 *m, int i) {
    return m->params[i].trainable ? act_at(m, &m->grads_buf, m->params[i].offset) : NULL;
}

static void layer_weights(const ab_gpt2 *m, int l, ab_attn_weights *w, ab_attn_weights *dw) {
    memset(w, 0, sizeof *w);
    if (dw) memset(dw, 0, sizeof *dw);
    for (int i = 0; i < m->n_attn_tensors; i++) {
        int p = P_LAYER(m, l, N_BEFORE + i);
        w->t[i] = param(m, p);
        if (dw) dw->t[i] = grad(m, p);
    }
}

static ab_status check(ab_status s, const ab_gpt2 *m, const char *what, int layer) {
    if (s == AB_OK) return s;
    return ab_fail_context(s, "variant %s on %s, %s (layer %d): ", m->variant->name, m->be->ops->name, what, layer);
}

/* How a block runs its attention: training/eval forward (saves for backward), prefill (fills the cache)
 * or decode (one position, reads and extends the cache). */
typedef enum { BLOCK_FORWARD, BLOCK_PREFILL, BLOCK_DECODE } block_mode;

/* Where one block reads and writes, (B,T,C) unless noted. */
typedef struct {
    void *ln1, *atty, *res2, *ln2, *fch, *fchg, *res3; /* fch, fchg (B,T,4C) */
    float *ln1_stats, *ln2_stats;                      /* f32 (2,B,T) */
    void *attn_saved;                                  /* forward only */
} block_io;

static block_io block_slot(const ab_gpt2 *m, int l, int B, int T, int keep_all_layers) {
    const ab_activations *a = &m->act;
    size_t BT = (size_t)B * T, BTC = BT * m->cfg.n_embd, k = keep_all_layers ? (size_t)l : 0;
    block_io io = {
        .ln1 = act_at(m, &a->ln1, k * BTC), .atty = act_at(m, &a->atty, k * BTC), .res2 = act_at(m, &a->residual2, k * BTC),
        .ln2 = act_at(m, &a->ln2, k * BTC), .fch = act_at(m, &a->fch, k * BTC * 4), .fchg = act_at(m, &a->fch_gelu, k * BTC * 4),
        /* without keeping every layer, residual3 alternates between two slots: the next block reads one */
        .res3 = act_at(m, &a->residual3, (keep_all_layers ? (size_t)l : (size_t)(l % 2)) * BTC),
        .ln1_stats = f32_at(&a->ln1_stats, k * 2 * BT), .ln2_stats = f32_at(&a->ln2_stats, k * 2 * BT),
        .attn_saved = a->attn_saved ? a->attn_saved[k].ptr : NULL,
    };
    return io;
}

/* out (N,OC) = residual + inp (N,C) @ W + b: one fused op where the backend has it */
static ab_status project_add(ab_gpt2 *m, void *out, const void *inp, const void *w, const void *b, const void *residual,
                             int N, int C, int OC) {
    const ab_backend_ops *ops = m->be->ops;
    if (ops->matmul_residual_forward) return ops->matmul_residual_forward(m->be, out, inp, w, b, residual, N, C, OC);
    AB_TRY(ops->matmul_forward(m->be, out, inp, w, b, N, C, OC));
    return ops->residual_forward(m->be, out, out, residual, (size_t)N * OC);
}

/* The next block's decode input (its first product on LN(io->res3) with its ln_1), for the backend to chain after this
 * block's tail: *next = the variant's, or NULL where the variant or the layer has none. */
static ab_status next_decode_input(ab_gpt2 *m, int l, const block_io *io, int B, const int32_t *pos_dev, int pos,
                                   ab_decode_input *in, ab_layernorm_input *ln, const ab_decode_input **next) {
    *next = NULL;
    if (l + 1 >= m->cfg.n_layer || !m->attn->decode_input) return AB_OK;
    const ab_attn_ctx ctx = {.be = m->be, .cfg = &m->attn_cfg, .workspace = m->act.attn_workspace.ptr, .layer = l + 1,
                             .pos_dev = pos_dev};
    ab_attn_weights w;
    layer_weights(m, l + 1, &w, NULL);
    AB_TRY(check(m->attn->decode_input(&ctx, &w, m->cache.layers[l + 1].ptr, B, pos, in), m, "attention decode input",
                 l + 1));
    const ab_layernorm_input ln1 = {param(m, P_LAYER(m, l + 1, P_LN1_W)), param(m, P_LAYER(m, l + 1, P_LN1_B)), io->ln1,
                                    io->ln1_stats, io->ln1_stats + B};
    *ln = ln1;
    *next = in;
    return AB_OK;
}

/* One GPT-2 block on `residual` (B,T,C); the output is io->res3. Decode: pos is the position, also held by pos_dev
 * (backend memory, what the attention kernels read); *input_ready says whether the block before computed this block's
 * decode input (ab_attn_ctx.input_ready), and on return whether this block computed the next one's. */
static ab_status block_forward(ab_gpt2 *m, int l, const block_io *io, const void *residual, int B, int T, block_mode mode,
                               void *cache, const int32_t *pos_dev, int pos, int *input_ready) {
    const ab_backend_ops *ops = m->be->ops;
    ab_backend *be = m->be;
    const int C = m->cfg.n_embd;
    const size_t BT = (size_t)B * T, BTC = BT * C;
    ab_attn_ctx ctx = {.be = be, .cfg = &m->attn_cfg, .workspace = m->act.attn_workspace.ptr, .layer = l,
                       .pos_dev = pos_dev, .input_ready = *input_ready};
    *input_ready = 0;
    ab_attn_weights w;
    layer_weights(m, l, &w, NULL);
#define LP(idx) param(m, P_LAYER(m, l, (idx)))
    /* Decode, where the backend folds a LayerNorm into the product after it: ln_1 into the variant's projections
     * (ctx.ln, the attention reads the residual), ln_2 into c_fc. Elsewhere each is its own op. */
    const int fold_ln = mode == BLOCK_DECODE && ops->layernorm_matmul_forward;
    const ab_layernorm_input ln1 = {LP(P_LN1_W), LP(P_LN1_B), io->ln1, io->ln1_stats, io->ln1_stats + BT};
    const ab_layernorm_input ln2 = {LP(P_AFTER(m, A_LN2_W)), LP(P_AFTER(m, A_LN2_B)), io->ln2, io->ln2_stats,
                                    io->ln2_stats + BT};
    if (fold_ln)
        ctx.ln = &ln1;
    else
        AB_TRY(check(ops->layernorm_forward(be, ln1.out, ln1.mean, ln1.rstd, residual, ln1.w, ln1.b, (int)BT, C), m, "ln_1",
                     l));
    ab_status s = mode == BLOCK_FORWARD   ? m->attn->forward(&ctx, &w, io->attn_saved, io->atty, io->ln1, B, T)
                  : mode == BLOCK_PREFILL ? m->attn->prefill(&ctx, &w, cache, io->atty, io->ln1, B, T)
                                          : m->attn->decode(&ctx, &w, cache, io->atty, fold_ln ? residual : io->ln1, B, pos);
    AB_TRY(check(s, m, mode == BLOCK_FORWARD ? "attention forward" : mode == BLOCK_PREFILL ? "attention prefill" : "attention decode", l));
    if (fold_ln && ops->block_tail_forward) { /* the products after the attention at once, where the backend can */
        ab_block_tail tail = {io->res2, io->fch, io->fchg, io->res3, io->atty, residual, ln2,
                              LP(P_AFTER(m, A_PROJ_W)), LP(P_AFTER(m, A_PROJ_B)), LP(P_AFTER(m, A_FC_W)),
                              LP(P_AFTER(m, A_FC_B)), LP(P_AFTER(m, A_FCPROJ_W)), LP(P_AFTER(m, A_FCPROJ_B))};
        /* the last block's products chained only where the other blocks' are (a variant with decode_input): lsh's
         * were slower chained while its blocks were not, 0.341 -> 0.348 ms a token on an H200 (docs/PERF.md) */
        tail.last = l + 1 == m->cfg.n_layer && m->attn->decode_input;
        ab_decode_input next;
        AB_TRY(next_decode_input(m, l, io, B, pos_dev, pos, &next, &tail.next_ln, &tail.next));
        int done;
        AB_TRY(check(ops->block_tail_forward(be, &tail, (int)BT, C, &done, input_ready), m, "attn.c_proj + ln_2 + mlp",
                     l));
        if (done) return AB_OK;
    }
    AB_TRY(check(project_add(m, io->res2, io->atty, LP(P_AFTER(m, A_PROJ_W)), LP(P_AFTER(m, A_PROJ_B)), residual, (int)BT, C, C),
                 m, "attn.c_proj", l));
    if (fold_ln) {
        AB_TRY(check(ops->layernorm_matmul_forward(be, &ln2, io->fchg, io->fch, io->res2, LP(P_AFTER(m, A_FC_W)),
                                                   LP(P_AFTER(m, A_FC_B)), (int)BT, C, 4 * C), m, "ln_2 + mlp.c_fc + gelu", l));
    } else {
        AB_TRY(check(ops->layernorm_forward(be, ln2.out, ln2.mean, ln2.rstd, io->res2, ln2.w, ln2.b, (int)BT, C), m, "ln_2",
                     l));
        if (ops->matmul_gelu_forward) { /* fused where the backend has it */
            AB_TRY(check(ops->matmul_gelu_forward(be, io->fchg, io->fch, io->ln2, LP(P_AFTER(m, A_FC_W)),
                                                  LP(P_AFTER(m, A_FC_B)), (int)BT, C, 4 * C), m, "mlp.c_fc + gelu", l));
        } else {
            AB_TRY(check(ops->matmul_forward(be, io->fch, io->ln2, LP(P_AFTER(m, A_FC_W)), LP(P_AFTER(m, A_FC_B)), (int)BT,
                                             C, 4 * C), m, "mlp.c_fc", l));
            AB_TRY(ops->gelu_forward(be, io->fchg, io->fch, BTC * 4));
        }
    }
    AB_TRY(check(project_add(m, io->res3, io->fchg, LP(P_AFTER(m, A_FCPROJ_W)), LP(P_AFTER(m, A_FCPROJ_B)), io->res2, (int)BT,
                             4 * C, C), m, "mlp.c_proj", l));
#undef LP
    return AB_OK;
}

/* ln_f's weights and where LN(x) (B*T rows) and its statistics go */
static ab_layernorm_input lnf_input(const ab_gpt2 *m, size_t BT) {
    const ab_layernorm_input ln = {param(m, P_LNF_W(m)), param(m, P_LNF_B(m)), m->act.lnf.ptr, f32_at(&m->act.lnf_stats, 0),
                                   f32_at(&m->act.lnf_stats, BT)};
    return ln;
}

/* Embeddings, every block and ln_f on tokens (B,T) in backend memory. Positions start at 0, or, for decode, at pos,
 * which pos_dev (backend memory) holds: the encoder and the attention kernels read it there, so a recorded step
 * replays at any position. With last (not NULL) ln_f is left to the caller, which folds it into what follows:
 * *last = the last block's output. */
static ab_status trunk_forward(ab_gpt2 *m, const int32_t *tokens, const int32_t *pos_dev, int B, int T, block_mode mode,
                               int keep_all_layers, int pos, const void **last) {
    ab_activations *a = &m->act;
    const ab_backend_ops *ops = m->be->ops;
    ab_backend *be = m->be;
    const int C = m->cfg.n_embd;
    const size_t BT = (size_t)B * T;
    AB_TRY(ops->encoder_forward(be, a->encoded.ptr, tokens, param(m, P_WTE), param(m, P_WPE), pos_dev, B, T, C));
    const void *residual = a->encoded.ptr;
    int input_ready = 0; /* the block's decode input computed by the block before */
    for (int l = 0; l < m->cfg.n_layer; l++) {
        block_io io = block_slot(m, l, B, T, keep_all_layers);
        void *cache = mode == BLOCK_FORWARD ? NULL : m->cache.layers[l].ptr;
        AB_TRY(block_forward(m, l, &io, residual, B, T, mode, cache, pos_dev, pos, &input_ready));
        residual = io.res3;
    }
    if (last) {
        *last = residual;
        return AB_OK;
    }
    const ab_layernorm_input lnf = lnf_input(m, BT);
    return check(ops->layernorm_forward(be, lnf.out, lnf.mean, lnf.rstd, residual, lnf.w, lnf.b, (int)BT, C), m, "ln_f",
                 m->cfg.n_layer - 1);
}

static ab_status check_tokens(const ab_gpt2 *m, const int32_t *tokens, size_t n) {
    const int V = m->cfg.vocab_size;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return ab_fail(AB_ERR_FORMAT, "token id %d at position %zu is outside the vocabulary (0..%d)", tokens[i], i, V - 1);
    return AB_OK;
}

static ab_status upload_tokens(ab_gpt2 *m, const int32_t *tokens, size_t n) {
    AB_TRY(check_tokens(m, tokens, n));
    return m->be->ops->copy_to_device(m->be, m->act.tokens.ptr, tokens, n * sizeof(int32_t));
}

ab_status ab_gpt2_forward(ab_gpt2 *m, const int32_t *tokens, const int32_t *targets, int B, int T, float dloss,
                          double *loss_sum_out) {
    ab_activations *a = &m->act;
    const ab_backend_ops *ops = m->be->ops;
    ab_backend *be = m->be;
    if (!a->tokens.ptr || a->B != B || a->T != T)
        return ab_fail(AB_ERR_INTERNAL, "forward at (%d,%d) without ab_gpt2_alloc for that shape", B, T);
    const int C = m->cfg.n_embd, V = m->cfg.vocab_size;
    const size_t BT = (size_t)B * T, BTC = BT * C;
    const int train = a->training && targets && dloss > 0.0f; /* prepare backward */
    AB_TRY(upload_tokens(m, tokens, BT));
    AB_TRY(trunk_forward(m, a->tokens.ptr, NULL, B, T, BLOCK_FORWARD, a->training, 0, NULL));
    if (!targets) return AB_OK;
    AB_TRY(ops->copy_to_device(be, a->targets.ptr, targets, BT * sizeof(int32_t)));
    if (train) AB_TRY(ops->memzero(be, a->d_ln.ptr, BTC * ops->act_bytes));
    AB_TRY(check(ops->classifier(be, a->losses.ptr, train ? a->d_ln.ptr : NULL, train ? grad(m, P_WTE) : NULL, a->lnf.ptr,
                                 param(m, P_WTE), a->targets.ptr, (int)BT, C, V, dloss), m, "classifier", -1));
    if (loss_sum_out) {
        float *host = malloc(BT * sizeof(float));
        if (!host) return ab_fail(AB_ERR_OOM, "out of memory");
        ab_status s = ops->copy_to_host(be, host, a->losses.ptr, BT * sizeof(float));
        double sum = 0.0;
        for (size_t i = 0; i < BT; i++) sum += host[i];
        free(host);
        AB_TRY(s);
        *loss_sum_out = sum;
    }
    return AB_OK;
}

ab_status ab_gpt2_losses(ab_gpt2 *m, float *losses_host) {
    size_t BT = (size_t)m->act.B * m->act.T;
    return m->be->ops->copy_to_host(m->be, losses_host, m->act.losses.ptr, BT * sizeof(float));
}

ab_status ab_gpt2_backward(ab_gpt2 *m) {
    ab_activations *a = &m->act;
    const ab_backend_ops *ops = m->be->ops;
    ab_backend *be = m->be;
    if (!a->training) return ab_fail(AB_ERR_INTERNAL, "backward without training activations");
    const int B = a->B, T = a->T, C = m->cfg.n_embd, L = m->cfg.n_layer;
    const size_t BT = (size_t)B * T, BTC = BT * C, ab = ops->act_bytes;
    ab_attn_ctx ctx = {.be = be, .cfg = &m->attn_cfg, .workspace = a->attn_workspace.ptr};

    /* d_ln holds d(lnf) from the classifier; d_residual becomes d(residual3[L-1]) */
    AB_TRY(ops->memzero(be, a->d_residual.ptr, BTC * ab));
    AB_TRY(ops->layernorm_backward(be, a->d_residual.ptr, grad(m, P_LNF_W(m)), grad(m, P_LNF_B(m)), a->d_ln.ptr,
                                   act_at(m, &a->residual3, (size_t)(L - 1) * BTC), param(m, P_LNF_W(m)),
                                   f32_at(&a->lnf_stats, 0), f32_at(&a->lnf_stats, BT), (int)BT, C));
    for (int l = L - 1; l >= 0; l--) {
        size_t k = (size_t)l;
        void *residual = l == 0 ? a->encoded.ptr : act_at(m, &a->residual3, (k - 1) * BTC);
        void *ln1 = act_at(m, &a->ln1, k * BTC), *atty = act_at(m, &a->atty, k * BTC);
        void *res2 = act_at(m, &a->residual2, k * BTC), *ln2 = act_at(m, &a->ln2, k * BTC);
        void *fch = act_at(m, &a->fch, k * BTC * 4), *fchg = act_at(m, &a->fch_gelu, k * BTC * 4);
        float *ln1_stats = f32_at(&a->ln1_stats, k * 2 * BT), *ln2_stats = f32_at(&a->ln2_stats, k * 2 * BT);
#define LP(idx) param(m, P_LAYER(m, l, (idx)))
#define LG(idx) grad(m, P_LAYER(m, l, (idx)))
        /* MLP: d_residual (= d residual3) flows into the MLP branch and on to residual2 unchanged */
        if (ops->gelu_matmul_backward) { /* writes d_fch: no zeroing, no d_fch_gelu */
            AB_TRY(ops->gelu_matmul_backward(be, a->d_fch.ptr, LG(P_AFTER(m, A_FCPROJ_W)), LG(P_AFTER(m, A_FCPROJ_B)),
                                             a->d_residual.ptr, fchg, fch, LP(P_AFTER(m, A_FCPROJ_W)), (int)BT, 4 * C, C));
        } else {
            AB_TRY(ops->memzero(be, a->d_fch_gelu.ptr, BTC * 4 * ab));
            AB_TRY(ops->matmul_backward(be, a->d_fch_gelu.ptr, LG(P_AFTER(m, A_FCPROJ_W)), LG(P_AFTER(m, A_FCPROJ_B)),
                                        a->d_residual.ptr, fchg, LP(P_AFTER(m, A_FCPROJ_W)), (int)BT, 4 * C, C));
            AB_TRY(ops->memzero(be, a->d_fch.ptr, BTC * 4 * ab));
            AB_TRY(ops->gelu_backward(be, a->d_fch.ptr, fch, a->d_fch_gelu.ptr, BTC * 4));
        }
        AB_TRY(ops->memzero(be, a->d_ln.ptr, BTC * ab));
        AB_TRY(ops->matmul_backward(be, a->d_ln.ptr, LG(P_AFTER(m, A_FC_W)), LG(P_AFTER(m, A_FC_B)), a->d_fch.ptr, ln2,
                                    LP(P_AFTER(m, A_FC_W)), (int)BT, C, 4 * C));
        AB_TRY(ops->layernorm_backward(be, a->d_residual.ptr, LG(P_AFTER(m, A_LN2_W)), LG(P_AFTER(m, A_LN2_B)), a->d_ln.ptr,
                                       res2, LP(P_AFTER(m, A_LN2_W)), ln2_stats, ln2_stats + BT, (int)BT, C));
        /* attention: d_residual (= d residual2) into c_proj, the variant, ln_1 */
        AB_TRY(ops->memzero(be, a->d_atty.ptr, BTC * ab));
        AB_TRY(ops->matmul_backward(be, a->d_atty.ptr, LG(P_AFTER(m, A_PROJ_W)), LG(P_AFTER(m, A_PROJ_B)),
                                    a->d_residual.ptr, atty, LP(P_AFTER(m, A_PROJ_W)), (int)BT, C, C));
        AB_TRY(ops->memzero(be, a->d_ln.ptr, BTC * ab));
        ab_attn_weights w, dw;
        layer_weights(m, l, &w, &dw);
        ctx.layer = l;
        AB_TRY(check(m->attn->backward(&ctx, &w, &dw, a->attn_saved[k].ptr, a->d_ln.ptr, a->d_atty.ptr, ln1, B, T), m,
                     "attention backward", l));
        AB_TRY(ops->layernorm_backward(be, a->d_residual.ptr, LG(P_LN1_W), LG(P_LN1_B), a->d_ln.ptr, residual,
                                       LP(P_LN1_W), ln1_stats, ln1_stats + BT, (int)BT, C));
        (void)res2;
#undef LP
#undef LG
    }
    AB_TRY(ops->encoder_backward(be, grad(m, P_WTE), grad(m, P_WPE), a->d_residual.ptr, a->tokens.ptr, B, T, C));
    return AB_OK;
}

ab_status ab_gpt2_zero_grad(ab_gpt2 *m) {
    if (!m->grads_buf.ptr) return ab_fail(AB_ERR_INTERNAL, "zero_grad before ab_gpt2_alloc(training)");
    return m->be->ops->memzero(m->be, m->grads_buf.ptr, m->n_elements * m->be->ops->act_bytes);
}

ab_status ab_gpt2_grad_norm(ab_gpt2 *m, double *norm_out) {
    double sq = 0.0;
    AB_TRY(m->be->ops->sum_squares(m->be, &sq, m->grads_buf.ptr, m->n_trainable));
    *norm_out = sqrt(sq);
    return AB_OK;
}

ab_status ab_gpt2_adamw(ab_gpt2 *m, float lr, const ab_train_config *tc, float grad_scale) {
    ab_backend *be = m->be;
    size_t ab = be->ops->act_bytes;
    m->optimizer_step++;
    ab_adamw_args args = {.lr = lr, .beta1 = tc->beta1, .beta2 = tc->beta2, .eps = tc->eps,
                          .weight_decay = tc->weight_decay, .grad_scale = grad_scale, .step = m->optimizer_step};
    float *master = m->master_buf.ptr;
    AB_TRY(be->ops->adamw(be, m->params_buf.ptr, master, m->grads_buf.ptr, m->m_buf.ptr, m->v_buf.ptr, m->n_decay, &args));
    args.weight_decay = 0.0f;
    size_t n_rest = m->n_trainable - m->n_decay;
    return be->ops->adamw(be, (char *)m->params_buf.ptr + m->n_decay * ab, master ? master + m->n_decay : NULL,
                          (char *)m->grads_buf.ptr + m->n_decay * ab, (float *)m->m_buf.ptr + m->n_decay,
                          (float *)m->v_buf.ptr + m->n_decay, n_rest, &args);
}

ab_status ab_gpt2_logits_of_last_forward(ab_gpt2 *m, float *logits_host) {
    ab_backend *be = m->be;
    size_t BT = (size_t)m->act.B * m->act.T, V = (size_t)m->cfg.vocab_size;
    ab_buffer buf;
    AB_TRY(ab_alloc(be, &buf, BT * V * sizeof(float), MEM_WORKSPACE));
    ab_status s = be->ops->logits(be, buf.ptr, m->act.lnf.ptr, param(m, P_WTE), (int)BT, m->cfg.n_embd, (int)V);
    if (s == AB_OK) s = be->ops->copy_to_host(be, logits_host, buf.ptr, BT * V * sizeof(float));
    ab_free(be, &buf);
    return s;
}

ab_status ab_gpt2_logits(ab_gpt2 *m, const int32_t *tokens, int B, int T, float *logits_host) {
    AB_TRY(ab_gpt2_alloc(m, B, T, m->act.training));
    AB_TRY(ab_gpt2_forward(m, tokens, NULL, B, T, 0.0f, NULL));
    return ab_gpt2_logits_of_last_forward(m, logits_host);
}

/* ------------------------------------------------------------------ inference */

void ab_gpt2_free_cache(ab_gpt2 *m) {
    ab_infer_cache *c = &m->cache;
    forget_decode_step(m);
    if (c->layers) {
        for (int l = 0; l < m->cfg.n_layer; l++) ab_free(m->be, &c->layers[l]);
        free(c->layers);
    }
    ab_free(m->be, &c->logits);
    ab_free(m->be, &c->step);
    if (m->be->ops->host_free) m->be->ops->host_free(m->be, c->step_host);
    else free(c->step_host);
    memset(c, 0, sizeof *c);
}

ab_status ab_gpt2_alloc_cache(ab_gpt2 *m, int B, int max_T) {
    if (!m->attn->prefill || !m->attn->decode || !m->attn->cache_bytes)
        return ab_fail(AB_ERR_UNSUPPORTED, "variant %s has no decode on %s", m->variant->name, m->be->ops->name);
    if (max_T > m->cfg.max_seq)
        return ab_fail(AB_ERR_USAGE, "context of %d tokens exceeds the position table (%d)", max_T, m->cfg.max_seq);
    ab_gpt2_free_cache(m);
    ab_infer_cache *c = &m->cache;
    AB_TRY(ab_gpt2_alloc(m, B, max_T, 0));
    c->layers = calloc((size_t)m->cfg.n_layer, sizeof *c->layers);
    if (!c->layers) return ab_fail(AB_ERR_OOM, "out of memory");
    /* variants address their cache for the whole context (variant.h) */
    c->bytes_per_layer = m->attn->cache_bytes(&m->attn_cfg, B, m->cfg.max_seq);
    for (int l = 0; l < m->cfg.n_layer; l++) AB_TRY(ab_alloc(m->be, &c->layers[l], c->bytes_per_layer, MEM_ATTENTION));
    AB_TRY(ab_alloc(m->be, &c->logits, (size_t)B * m->cfg.vocab_size * sizeof(float), MEM_OTHER));
    const size_t step_bytes = (size_t)(1 + B) * sizeof(int32_t);
    AB_TRY(ab_alloc(m->be, &c->step, step_bytes, MEM_OTHER));
    if (m->be->ops->host_alloc) {
        AB_TRY(m->be->ops->host_alloc(m->be, (void **)&c->step_host, step_bytes));
    } else if (!(c->step_host = malloc(step_bytes))) {
        return ab_fail(AB_ERR_OOM, "out of memory");
    }
    c->B = B;
    c->max_T = max_T;
    return AB_OK;
}

/* Logits of the last of T positions of each sequence into the host (B,V). */
static ab_status last_logits(ab_gpt2 *m, int B, int T, float *logits_host) {
    if (!logits_host) return AB_OK;
    ab_backend *be = m->be;
    const int C = m->cfg.n_embd, V = m->cfg.vocab_size;
    float *dev = m->cache.logits.ptr;
    for (int b = 0; b < B; b++)
        AB_TRY(be->ops->logits(be, dev + (size_t)b * V, act_at(m, &m->act.lnf, ((size_t)b * T + T - 1) * C), param(m, P_WTE), 1,
                               C, V));
    return be->ops->copy_to_host(be, logits_host, dev, (size_t)B * V * sizeof(float));
}

ab_status ab_gpt2_prefill(ab_gpt2 *m, const int32_t *tokens, int B, int T, float *logits_host) {
    if (!m->cache.layers || B != m->cache.B || T > m->cache.max_T || T < 1)
        return ab_fail(AB_ERR_USAGE, "prefill of (%d,%d) does not fit the cache (%d,%d)", B, T, m->cache.B, m->cache.max_T);
    AB_TRY(upload_tokens(m, tokens, (size_t)B * T));
    AB_TRY(trunk_forward(m, m->act.tokens.ptr, NULL, B, T, BLOCK_PREFILL, 0, 0, NULL));
    return last_logits(m, B, T, logits_host);
}

/* What one decode step runs, recorded once where the backend records steps: [pos | tokens] from the staging into
 * the step buffer (a recorded copy reads the staging when it replays), the trunk at the position it holds, and the
 * next token's logits (B,V) into the cache's logits buffer: a step is everything a token costs on the device. */
static ab_status decode_step(ab_gpt2 *m, int B, int pos) {
    ab_infer_cache *c = &m->cache;
    const ab_backend_ops *ops = m->be->ops;
    int32_t *step = c->step.ptr;
    const size_t bytes = (size_t)(1 + B) * sizeof(int32_t);
    AB_TRY(ops->copy_to_device_async ? ops->copy_to_device_async(m->be, step, c->step_host, bytes)
                                     : ops->copy_to_device(m->be, step, c->step_host, bytes));
    const void *last = NULL; /* with layernorm_logits, ln_f is folded into the logits */
    AB_TRY(trunk_forward(m, step + 1, step, B, 1, BLOCK_DECODE, 0, pos, ops->layernorm_logits ? &last : NULL));
    if (!last)
        return ops->logits(m->be, c->logits.ptr, m->act.lnf.ptr, param(m, P_WTE), B, m->cfg.n_embd, m->cfg.vocab_size);
    const ab_layernorm_input lnf = lnf_input(m, (size_t)B);
    return check(ops->layernorm_logits(m->be, &lnf, c->logits.ptr, last, param(m, P_WTE), B, m->cfg.n_embd,
                                       m->cfg.vocab_size), m, "ln_f + logits", m->cfg.n_layer - 1);
}

static ab_status record_decode_step(ab_gpt2 *m, int B, int pos) {
    const ab_backend_ops *ops = m->be->ops;
    ab_status s = ops->graph_begin(m->be);
    if (s == AB_OK) {
        s = decode_step(m, B, pos);
        ab_status e = ops->graph_end(m->be, s == AB_OK ? &m->cache.graph : NULL);
        if (s == AB_OK) s = e;
    }
    if (s != AB_OK) return ab_fail_context(s, "recording the decode step for replay (AB_CUDA_GRAPHS=0 runs it directly): ");
    return AB_OK;
}

ab_status ab_gpt2_decode(ab_gpt2 *m, const int32_t *tokens, int B, int pos, float *logits_host) {
    ab_infer_cache *c = &m->cache;
    ab_backend *be = m->be;
    if (!c->layers || B != c->B || pos < 1 || pos >= c->max_T)
        return ab_fail(AB_ERR_USAGE, "decode at position %d outside the cache (1..%d)", pos, c->max_T - 1);
    AB_TRY(check_tokens(m, tokens, (size_t)B));
    AB_TRY(be->ops->synchronize(be)); /* the last step's upload may not have read the staging yet */
    c->step_host[0] = pos;
    memcpy(c->step_host + 1, tokens, (size_t)B * sizeof(int32_t));
    if (be->graphs && be->ops->graph_begin) {
        if (!c->graph) AB_TRY(record_decode_step(m, B, pos));
        AB_TRY(check(be->ops->graph_launch(be, c->graph), m, "decode step replay", -1));
    } else {
        AB_TRY(decode_step(m, B, pos));
    }
    if (!logits_host) return AB_OK;
    return be->ops->copy_to_host(be, logits_host, c->logits.ptr, (size_t)B * m->cfg.vocab_size * sizeof(float));
}
