/*
 * checkpoint.c — save/load GPT-2 (+ variant tensors) to/from safetensors with the config in metadata.
 */
#include "model/checkpoint.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"

#define CHECKPOINT_FORMAT_VERSION 1

static json_t *config_json(const ab_gpt2 *m) {
    const ab_model_config *c = &m->cfg;
    const ab_attn_hparams *h = &m->attn_cfg.hp;
    return json_pack("{s:i, s:s, s:{s:i, s:i, s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i}, s:i}",
                     "format_version", CHECKPOINT_FORMAT_VERSION, "variant", m->variant->name,
                     "model", "n_layer", c->n_layer, "n_head", c->n_head, "n_embd", c->n_embd, "vocab_size", c->vocab_size,
                     "max_seq", c->max_seq,
                     "attn", "gqa_kv_heads", h->gqa_kv_heads, "window", h->window, "lsh_hashes", h->lsh_hashes,
                     "lsh_chunk", h->lsh_chunk, "lsh_buckets", h->lsh_buckets, "linear_chunk", h->linear_chunk,
                     "mla_kv_rank", h->mla_kv_rank,
                     "train_T", m->attn_cfg.train_T);
}

/* whether j is m's configuration as config_json writes it */
static int is_config_of(const json_t *j, const ab_gpt2 *m) {
    json_t *want = config_json(m);
    const int same = json_equal(j, want);
    json_decref(want);
    return same;
}

ab_status ab_checkpoint_save(ab_gpt2 *m, const char *path) {
    float *host = malloc(m->n_elements * sizeof(float));
    ab_st_write_tensor *ts = calloc((size_t)m->n_params, sizeof *ts);
    if (!host || !ts) {
        free(host);
        free(ts);
        return ab_fail(AB_ERR_OOM, "%s: out of memory", path);
    }
    ab_status s = ab_gpt2_get_params(m, host);
    for (int i = 0; i < m->n_params && s == AB_OK; i++) {
        const ab_param_info *p = &m->params[i];
        ts[i].name = p->name;
        ts[i].data = host + p->offset;
        if (p->rows == 1) {
            ts[i].ndim = 1;
            ts[i].shape[0] = p->cols;
        } else {
            ts[i].ndim = 2;
            ts[i].shape[0] = p->rows;
            ts[i].shape[1] = p->cols;
        }
    }
    if (s == AB_OK) {
        json_t *cfg = config_json(m);
        char *cfg_str = json_dumps(cfg, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(cfg);
        const char *meta[] = {"format", "pt", "attnbench", cfg_str};
        s = ab_st_write(path, ts, m->n_params, meta, 2);
        free(cfg_str);
    }
    free(ts);
    free(host);
    return s;
}

/* 1: obj[key] is an integer that fits an int, stored in *out; 0: absent; -1: present but not such an integer
 * (a value of 2^32 + 2 must not load as 2). */
static int get_int(json_t *obj, const char *key, int *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < INT_MIN || json_integer_value(v) > INT_MAX) return -1;
    *out = (int)json_integer_value(v);
    return 1;
}

/* The file's tensor of a model parameter. Published Hugging Face GPT-2 files (GPT2Model's state dict, e.g.
 * openai-community/gpt2) name them without the "transformer." prefix: "h.0.attn.c_attn.weight", "wte.weight". */
static const ab_st_tensor *find_tensor(const ab_st_file *f, const char *name) {
    const ab_st_tensor *t = ab_st_find(f, name);
    if (!t && strncmp(name, "transformer.", 12) == 0) t = ab_st_find(f, name + 12);
    return t;
}

static int int_dim(const ab_st_tensor *t, int d) { return t->shape[d] >= 1 && t->shape[d] <= INT_MAX; }

/* Sizes of a published GPT-2 file (no attnbench metadata), from its tensor shapes. */
static ab_status infer_config(const ab_st_file *f, const char *path, ab_model_config *cfg) {
    const ab_st_tensor *wte = find_tensor(f, "transformer.wte.weight"), *wpe = find_tensor(f, "transformer.wpe.weight");
    if (!wte || !wpe)
        return ab_fail(AB_ERR_FORMAT, "%s: not an attnbench or GPT-2 checkpoint (no attnbench metadata and no transformer.wte.weight / "
                                      "transformer.wpe.weight, nor wte.weight / wpe.weight)", path);
    if (wte->ndim != 2 || wpe->ndim != 2 || !int_dim(wte, 0) || !int_dim(wte, 1) || !int_dim(wpe, 0) || !int_dim(wpe, 1))
        return ab_fail(AB_ERR_FORMAT, "%s: %s and %s must be matrices (vocabulary x n_embd, positions x n_embd) of sizes from 1 "
                                      "to %d", path, wte->name, wpe->name, INT_MAX);
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab_size = (int)wte->shape[0];
    cfg->n_embd = (int)wte->shape[1];
    cfg->max_seq = (int)wpe->shape[0];
    cfg->n_head = cfg->n_embd / 64;
    char name[64];
    for (cfg->n_layer = 0; cfg->n_layer < INT_MAX; cfg->n_layer++) {
        snprintf(name, sizeof name, "transformer.h.%d.ln_1.weight", cfg->n_layer);
        if (!find_tensor(f, name)) break;
    }
    return AB_OK;
}

static ab_status parse_config(const ab_st_file *f, const char *path, ab_model_config *cfg, ab_variant_id *variant, int *train_T) {
    char *meta = ab_st_metadata(f, "attnbench");
    if (!meta) {
        *variant = VARIANT_BASELINE;
        AB_TRY(infer_config(f, path, cfg));
        *train_T = cfg->max_seq;
        return AB_OK;
    }
    json_error_t err;
    json_t *root = json_loads(meta, 0, &err);
    free(meta);
    memset(cfg, 0, sizeof *cfg);
    if (!json_is_object(root)) {
        json_decref(root);
        return ab_fail(AB_ERR_FORMAT, "%s: the attnbench metadata is not a JSON object (%s)", path, root ? "another JSON value" : err.text);
    }
    json_t *model = json_object_get(root, "model"), *attn = json_object_get(root, "attn"), *var = json_object_get(root, "variant");
    const ab_variant *v = json_is_string(var) ? ab_variant_by_name(json_string_value(var)) : NULL;
    ab_status st = AB_OK;
    if (!v) {
        st = json_is_string(var) ? ab_fail(AB_ERR_FORMAT, "%s: the attnbench metadata names an unknown variant \"%.64s\"", path,
                                           json_string_value(var))
                                 : ab_fail(AB_ERR_FORMAT, "%s: the attnbench metadata has no \"variant\" string", path);
    } else if (!json_is_object(model) || !json_is_object(attn)) {
        st = ab_fail(AB_ERR_FORMAT, "%s: the attnbench metadata has no \"model\" and \"attn\" objects", path);
    } else {
        *variant = v->id;
        ab_attn_hparams *h = &cfg->attn;
        const struct {
            json_t *obj;
            const char *key;
            int *out;
            int required; /* the attention hyper-parameters may be absent: 0, the default */
        } fields[] = {
            {model, "n_layer", &cfg->n_layer, 1},        {model, "n_head", &cfg->n_head, 1},
            {model, "n_embd", &cfg->n_embd, 1},          {model, "vocab_size", &cfg->vocab_size, 1},
            {model, "max_seq", &cfg->max_seq, 1},        {root, "train_T", train_T, 1},
            {attn, "gqa_kv_heads", &h->gqa_kv_heads, 0}, {attn, "window", &h->window, 0},
            {attn, "lsh_hashes", &h->lsh_hashes, 0},     {attn, "lsh_chunk", &h->lsh_chunk, 0},
            {attn, "lsh_buckets", &h->lsh_buckets, 0},   {attn, "linear_chunk", &h->linear_chunk, 0},
            {attn, "mla_kv_rank", &h->mla_kv_rank, 0},
        };
        for (size_t i = 0; i < sizeof fields / sizeof fields[0] && st == AB_OK; i++) {
            int got = get_int(fields[i].obj, fields[i].key, fields[i].out);
            if (got < 0 || (got == 0 && fields[i].required))
                st = ab_fail(AB_ERR_FORMAT, "%s: the attnbench metadata's %s%s %s (expected an integer from %d to %d)", path,
                             fields[i].obj == model ? "model." : fields[i].obj == attn ? "attn." : "", fields[i].key,
                             got < 0 ? "is out of range or not an integer" : "is missing", INT_MIN, INT_MAX);
        }
    }
    json_decref(root);
    return st;
}

ab_status ab_checkpoint_read_config(const char *path, ab_model_config *cfg, ab_variant_id *variant, int *train_T) {
    ab_st_file f;
    AB_TRY(ab_st_read(path, &f));
    ab_status s = parse_config(&f, path, cfg, variant, train_T);
    ab_st_free(&f);
    return s;
}

/* Every parameter of m's table has its tensor in f, of its shape: checked before anything is allocated for them (a
 * small file whose metadata asks for a large model is refused here, not after the model was built). */
static ab_status check_tensors(const ab_gpt2 *m, const ab_st_file *f, const char *path) {
    for (int i = 0; i < m->n_params; i++) {
        const ab_param_info *p = &m->params[i];
        const ab_st_tensor *t = find_tensor(f, p->name);
        if (!t) return ab_fail(AB_ERR_FORMAT, "%s: tensor %s is missing (checkpoint of another variant or size?)", path, p->name);
        /* a 1-D parameter is (1, C): a file may hold it as (C) or (1, C) */
        int match = ab_st_numel(t) == p->numel && ((t->ndim == 1 && p->rows == 1) ||
                                                   (t->ndim == 2 && t->shape[0] == p->rows && t->shape[1] == p->cols));
        if (!match) {
            char shape[120] = "(";
            for (int d = 0; d < t->ndim; d++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
            return ab_fail(AB_ERR_FORMAT, "%s: tensor %s has shape %s), the model expects (%d, %d)", path, t->name, shape,
                           p->rows, p->cols);
        }
    }
    return AB_OK;
}

/* f's tensors into m's parameters; check_tensors has found them all, of their shapes */
static ab_status copy_tensors(ab_gpt2 *m, const ab_st_file *f, const char *path) {
    float *host = calloc(m->n_elements, sizeof(float));
    if (!host) return ab_fail(AB_ERR_OOM, "%s: out of memory", path);
    ab_status s = AB_OK;
    for (int i = 0; i < m->n_params && s == AB_OK; i++) {
        const ab_param_info *p = &m->params[i];
        s = ab_st_to_f32(f, find_tensor(f, p->name), host + p->offset);
        if (s != AB_OK) s = ab_fail_context(s, "%s: ", path);
    }
    if (s == AB_OK) s = ab_gpt2_set_params(m, host);
    free(host);
    return s;
}

ab_status ab_checkpoint_load_into(ab_gpt2 *m, const char *path) {
    ab_st_file f;
    AB_TRY(ab_st_read(path, &f));
    ab_status s = check_tensors(m, &f, path);
    if (s == AB_OK) s = copy_tensors(m, &f, path);
    ab_st_free(&f);
    return s;
}

ab_status ab_checkpoint_open(const char *path, ab_backend *be, ab_gpt2 *m) {
    memset(m, 0, sizeof *m); /* callers hand over an uninitialised model; a failure destroys it */
    ab_st_file f;
    AB_TRY(ab_st_read(path, &f));
    ab_model_config cfg;
    ab_variant_id v;
    int train_T;
    ab_status s = parse_config(&f, path, &cfg, &v, &train_T);
    if (s == AB_OK && (s = ab_gpt2_plan(m, &cfg, v, train_T, be)) != AB_OK) /* the sizes or hyper-parameters: the file's */
        s = ab_fail_context(s == AB_ERR_USAGE ? AB_ERR_FORMAT : s, "%s: the checkpoint's model cannot be built: ", path);
    if (s == AB_OK) s = check_tensors(m, &f, path); /* before the parameters are allocated */
    if (s == AB_OK) s = ab_gpt2_alloc_params(m);
    if (s == AB_OK) s = copy_tensors(m, &f, path);
    if (s != AB_OK) ab_gpt2_destroy(m);
    ab_st_free(&f);
    return s;
}

/* ------------------------------------------------------------------ training state */

ab_status ab_checkpoint_save_state(ab_gpt2 *m, const char *path, int epoch) {
    ab_backend *be = m->be;
    float *params = malloc(m->n_elements * sizeof(float)), *mom = malloc(m->n_trainable * sizeof(float) * 2);
    ab_status s = params && mom ? AB_OK : ab_fail(AB_ERR_OOM, "%s: out of memory", path);
    if (s == AB_OK) s = ab_gpt2_get_params(m, params);
    if (s == AB_OK) s = be->ops->copy_to_host(be, mom, m->m_buf.ptr, m->n_trainable * sizeof(float));
    if (s == AB_OK) s = be->ops->copy_to_host(be, mom + m->n_trainable, m->v_buf.ptr, m->n_trainable * sizeof(float));
    if (s == AB_OK) {
        ab_st_write_tensor ts[3] = {
            {"params", 1, {(int64_t)m->n_elements}, params},
            {"adamw.m", 1, {(int64_t)m->n_trainable}, mom},
            {"adamw.v", 1, {(int64_t)m->n_trainable}, mom + m->n_trainable},
        };
        json_t *meta = json_pack("{s:s, s:i, s:i, s:o}", "variant", m->variant->name, "epoch", epoch, "optimizer_step",
                                 m->optimizer_step, "model", config_json(m));
        char *meta_str = json_dumps(meta, JSON_COMPACT);
        json_decref(meta);
        const char *kv[] = {"attnbench_state", meta_str};
        s = ab_st_write(path, ts, 3, kv, 1);
        free(meta_str);
    }
    free(params);
    free(mom);
    return s;
}

ab_status ab_checkpoint_load_state(ab_gpt2 *m, const char *path, int *epoch) {
    if (!m->m_buf.ptr || !m->v_buf.ptr)
        return ab_fail(AB_ERR_INTERNAL, "%s: training state loaded before the model's optimizer state was allocated", path);
    ab_st_file f;
    AB_TRY(ab_st_read(path, &f));
    ab_status s = AB_OK;
    char *meta = ab_st_metadata(&f, "attnbench_state");
    json_t *root = meta ? json_loads(meta, 0, NULL) : NULL;
    free(meta);
    const char *variant = root ? json_string_value(json_object_get(root, "variant")) : NULL;
    const json_t *model = root ? json_object_get(root, "model") : NULL;
    int step = 0, done = 0;
    const ab_st_tensor *p = ab_st_find(&f, "params"), *mt = ab_st_find(&f, "adamw.m"), *vt = ab_st_find(&f, "adamw.v");
    if (!variant || strcmp(variant, m->variant->name) != 0)
        s = ab_fail(AB_ERR_FORMAT, "%s: not a training state of variant %s (expected metadata \"attnbench_state\" naming it)", path,
                    m->variant->name);
    else if (get_int(root, "epoch", &done) != 1 || get_int(root, "optimizer_step", &step) != 1)
        s = ab_fail(AB_ERR_FORMAT, "%s: the training state's metadata lacks an integer epoch and optimizer_step", path);
    /* AdamW increments the step before dividing by 1 - beta^step: a negative step (0 next: a division by zero) or
     * INT_MAX (a signed overflow) cannot be continued from. */
    else if (step < 0 || step == INT_MAX)
        s = ab_fail(AB_ERR_FORMAT, "%s: optimizer_step %d is out of range (expected 0 to %d)", path, step, INT_MAX - 1);
    /* the same element counts do not make the same model (n_head, gqa_kv_heads, window, train_T...); states written
     * before the configuration was recorded have none and are taken on their counts */
    else if (model && !is_config_of(model, m))
        s = ab_fail(AB_ERR_FORMAT, "%s: the training state is of another model configuration than the run's", path);
    else if (!p || !mt || !vt || p->dtype != ST_F32 || mt->dtype != ST_F32 || vt->dtype != ST_F32 || ab_st_numel(p) != m->n_elements ||
             ab_st_numel(mt) != m->n_trainable || ab_st_numel(vt) != m->n_trainable)
        s = ab_fail(AB_ERR_FORMAT, "%s: the training state does not match the model's sizes (expected F32 params of %zu, "
                    "adamw.m and adamw.v of %zu elements)", path, m->n_elements, m->n_trainable);
    if (s == AB_OK) s = ab_gpt2_set_params(m, (const float *)(f.data + p->begin));
    if (s == AB_OK) s = m->be->ops->copy_to_device(m->be, m->m_buf.ptr, f.data + mt->begin, m->n_trainable * sizeof(float));
    if (s == AB_OK) s = m->be->ops->copy_to_device(m->be, m->v_buf.ptr, f.data + vt->begin, m->n_trainable * sizeof(float));
    if (s == AB_OK) {
        m->optimizer_step = step;
        *epoch = done;
    }
    json_decref(root);
    ab_st_free(&f);
    return s;
}
