/*
 * flops.c — `attnbench flops`: the analytical FLOPs per optimizer step of each variant for a model shape
 * (prof/flops.h; formulas in docs/METRICS-IMPL.md), printed as a table and optionally written as JSON.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn/variant.h"
#include "cli/cli.h"
#include "cli/config_opts.h"
#include "core/fsutil.h"
#include "prof/flops.h"

#define GFLOP 1e9

static json_t *flops_to_json(const ab_variant *v, const ab_flops_step *f) {
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(v->name));
    json_object_set_new(o, "title", json_string(v->title));
    json_object_set_new(o, "model_fwd", json_real(f->model_fwd));
    json_object_set_new(o, "model_bwd", json_real(f->model_bwd));
    json_object_set_new(o, "hardware_fwd", json_real(f->hw_fwd));
    json_object_set_new(o, "hardware_bwd", json_real(f->hw_bwd));
    json_object_set_new(o, "model_per_step", json_real(f->model_per_step));
    json_object_set_new(o, "hardware_per_step", json_real(f->hardware_per_step));
    json_object_set_new(o, "attention_model_fwd", json_real(f->attn_model_fwd));
    json_object_set_new(o, "attention_model_bwd", json_real(f->attn_model_bwd));
    json_object_set_new(o, "attention_hardware_fwd", json_real(f->attn_hw_fwd));
    json_object_set_new(o, "attention_hardware_bwd", json_real(f->attn_hw_bwd));
    json_object_set_new(o, "attention_projections_fwd", json_real(f->attn_proj_fwd));
    json_object_set_new(o, "attention_full_tt_fwd", json_real(f->attn_full_tt_fwd));
    json_object_set_new(o, "rest_fwd", json_real(f->rest_fwd));
    json_object_set_new(o, "rest_bwd", json_real(f->rest_bwd));
    json_object_set_new(o, "attention_share", json_real(f->attention_share));
    json_object_set_new(o, "full_tt_per_step", json_real(f->full_tt_per_step));
    json_object_set_new(o, "other_ops_fwd", json_real(f->other_ops_fwd));
    json_object_set_new(o, "tokens_per_step", json_real(f->tokens_per_step));
    return o;
}

int cmd_flops(int argc, char **argv) {
    ab_preset p;
    const char *preset_name;
    ab_status st = ab_config_preset_from_argv(argc, argv, "tiny", &p, &preset_name);
    if (st != AB_OK) return ab_cli_fail("flops", st);
    const char *variants = "all", *json_path = NULL;
    ab_opt opts[AB_CONFIG_OPT_COUNT + 3];
    ab_config_opts_fill(opts, &p, &preset_name);
    opts[AB_CONFIG_OPT_COUNT] = (ab_opt){"variants", OPT_STRING, &variants, "LIST", "all or a comma list (default all)", NULL, 0};
    opts[AB_CONFIG_OPT_COUNT + 1] = (ab_opt){"json", OPT_STRING, &json_path, "FILE", "also write the numbers as JSON", NULL, 0};
    opts[AB_CONFIG_OPT_COUNT + 2] = (ab_opt){NULL, 0, NULL, NULL, NULL, NULL, 0};
    ab_cmd_spec spec = {"flops", "", "analytical FLOPs per optimizer step for each variant",
                        "A multiply-add counts 2; matrix products only; backward = 2 x forward. model = causal-aware\n"
                        "work the math needs; hardware = what the kernels execute; full TxT = the attention core\n"
                        "without causal savings (PyTorch FlopCounterMode convention). Formulas: docs/METRICS-IMPL.md.\n"
                        "Only --preset, the model sizes, --batch, --seq, --grad-accum and the variant options matter here.",
                        opts};
    int first, help;
    st = ab_opts_parse(&spec, argc, argv, &first, &help);
    if (st != AB_OK) return ab_cli_fail("flops", st);
    if (help) return 0;
    if (first != argc) return ab_cli_fail("flops", ab_fail(AB_ERR_USAGE, "unexpected argument '%s'", argv[first]));
    const ab_model_config *m = &p.model;
    const ab_train_config *t = &p.train;
    if (m->n_head < 1 || m->n_embd % m->n_head)
        return ab_cli_fail("flops", ab_fail(AB_ERR_USAGE, "--embd %d must be a multiple of --heads %d", m->n_embd, m->n_head));
    if (t->seq > m->max_seq)
        return ab_cli_fail("flops", ab_fail(AB_ERR_USAGE, "--seq %d exceeds the position table (--max-seq %d)", t->seq, m->max_seq));
    ab_variant_id ids[VARIANT_COUNT];
    int n_ids;
    st = ab_variant_parse_list(variants, ids, &n_ids);
    if (st != AB_OK) return ab_cli_fail("flops", st);

    json_t *doc = json_object(), *arr = json_array();
    json_object_set_new(doc, "preset", json_string(preset_name));
    json_object_set_new(doc, "n_layer", json_integer(m->n_layer));
    json_object_set_new(doc, "n_head", json_integer(m->n_head));
    json_object_set_new(doc, "n_embd", json_integer(m->n_embd));
    json_object_set_new(doc, "vocab_size", json_integer(m->vocab_size));
    json_object_set_new(doc, "batch", json_integer(t->batch));
    json_object_set_new(doc, "seq", json_integer(t->seq));
    json_object_set_new(doc, "grad_accum", json_integer(t->grad_accum));
    json_object_set_new(doc, "unit", json_string("FLOP per optimizer step"));
    json_object_set_new(doc, "variants", arr);

    printf("FLOPs per optimizer step: preset %s (L%d H%d C%d V%d), B %d, T %d, grad_accum %d; GFLOP\n\n", preset_name,
           m->n_layer, m->n_head, m->n_embd, m->vocab_size, t->batch, t->seq, t->grad_accum);
    printf("%-16s %12s %12s %12s %12s %12s %12s %8s %12s\n", "variant", "model fwd", "model bwd", "model step", "hw fwd",
           "hw bwd", "hw step", "attn %", "full TxT");
    int failed = 0;
    for (int i = 0; i < n_ids; i++) {
        const ab_variant *v = ab_variants[ids[i]];
        ab_attn_config acfg;
        ab_model_attn_config(m, t->seq, &acfg);
        ab_flops_step f;
        st = v->validate ? v->validate(&acfg, t->seq) : AB_OK;
        if (st == AB_OK) st = ab_flops_per_step(m, v, &acfg, t->batch, t->seq, t->grad_accum, &f);
        if (st != AB_OK) {
            printf("%-16s invalid here: %s\n", v->name, ab_error());
            failed = 1;
            continue;
        }
        printf("%-16s %12.3f %12.3f %12.3f %12.3f %12.3f %12.3f %8.1f %12.3f\n", v->name, f.model_fwd / GFLOP,
               f.model_bwd / GFLOP, f.model_per_step / GFLOP, f.hw_fwd / GFLOP, f.hw_bwd / GFLOP,
               f.hardware_per_step / GFLOP, 100.0 * f.attention_share, f.full_tt_per_step / GFLOP);
        json_array_append_new(arr, flops_to_json(v, &f));
    }
    printf("\nattn %% = attention layers' share of the model FLOPs; full TxT = the model step with the attention core\n"
           "counted as a full T x T (no causal savings).\n");
    if (json_path) {
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
        st = text ? ab_write_file_atomic(json_path, text, strlen(text)) : ab_fail(AB_ERR_OOM, "out of memory");
        free(text);
        if (st != AB_OK) {
            json_decref(doc);
            return ab_cli_fail("flops", st);
        }
    }
    json_decref(doc);
    return failed;
}
