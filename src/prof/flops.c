/*
 * flops.c — whole-model analytical FLOPs per optimizer step from the variant's per-layer numbers plus
 * the rest of GPT-2, and MFU against the peak table (docs/METRICS-IMPL.md has the formulas).
 */
#include "prof/flops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Element-wise cost estimates (FLOPs per element, forward) for other_ops; not in the headline. */
#define LAYERNORM_FLOPS_PER_ELEM 8.0   /* mean, variance (sub, square, add), normalise, scale, shift */
#define GELU_FLOPS_PER_ELEM 10.0       /* tanh form: x^3, fma, tanh, add, 2 mul */
#define RESIDUAL_FLOPS_PER_ELEM 1.0
#define XENT_FLOPS_PER_LOGIT 4.0       /* max, subtract, exp, sum */

double ab_flops_rest_fwd(int n_layer, int C, int V, double N) {
    double c = (double)C;
    double c_proj = 2.0 * N * c * c;
    double mlp = 2.0 * N * c * (4.0 * c) + 2.0 * N * (4.0 * c) * c;
    double lm_head = 2.0 * N * c * (double)V;
    return (double)n_layer * (c_proj + mlp) + lm_head;
}

/* Element-wise forward work of the non-attention part for N tokens. */
static double rest_other_ops_fwd(int L, int C, int V, double N) {
    double nc = N * (double)C;
    return (2.0 * L + 1.0) * nc * LAYERNORM_FLOPS_PER_ELEM + (double)L * 4.0 * nc * GELU_FLOPS_PER_ELEM +
           2.0 * L * nc * RESIDUAL_FLOPS_PER_ELEM + N * (double)V * XENT_FLOPS_PER_LOGIT;
}

ab_status ab_flops_per_step(const ab_model_config *model, const ab_variant *v, const ab_attn_config *acfg, int B,
                            int T, int grad_accum, ab_flops_step *out) {
    memset(out, 0, sizeof *out);
    if (B <= 0 || T <= 0 || grad_accum <= 0)
        return ab_fail(AB_ERR_USAGE, "flops: B, T and grad_accum must be positive (got %d, %d, %d)", B, T, grad_accum);
    if (model->n_layer <= 0 || model->n_embd <= 0 || model->vocab_size <= 0)
        return ab_fail(AB_ERR_USAGE, "flops: model shape must be positive (L %d, C %d, V %d)", model->n_layer,
                       model->n_embd, model->vocab_size);
    if (!v || !v->flops) return ab_fail(AB_ERR_USAGE, "flops: variant %s has no FLOPs formula", v ? v->name : "(null)");
    ab_attn_config derived;
    if (!acfg) {
        ab_model_attn_config(model, T, &derived);
        acfg = &derived;
    }
    ab_attn_flops a;
    memset(&a, 0, sizeof a);
    v->flops(acfg, B, T, &a);
    const double L = model->n_layer, acc = grad_accum, N = (double)B * (double)T;

    out->rest_fwd = ab_flops_rest_fwd(model->n_layer, model->n_embd, model->vocab_size, N) * acc;
    out->rest_bwd = 2.0 * out->rest_fwd;
    out->attn_model_fwd = L * a.model_fwd * acc;
    out->attn_model_bwd = L * a.model_bwd * acc;
    out->attn_hw_fwd = L * a.hw_fwd * acc;
    out->attn_hw_bwd = L * a.hw_bwd * acc;
    out->attn_proj_fwd = L * a.proj_fwd * acc;
    out->attn_full_tt_fwd = L * (a.proj_fwd + a.full_tt_fwd) * acc;

    out->model_fwd = out->rest_fwd + out->attn_model_fwd;
    out->model_bwd = out->rest_bwd + out->attn_model_bwd;
    out->hw_fwd = out->rest_fwd + out->attn_hw_fwd;
    out->hw_bwd = out->rest_bwd + out->attn_hw_bwd;
    out->model_per_step = out->model_fwd + out->model_bwd;
    out->hardware_per_step = out->hw_fwd + out->hw_bwd;
    out->attention_share = (out->attn_model_fwd + out->attn_model_bwd) / out->model_per_step;
    out->full_tt_per_step = 3.0 * (out->rest_fwd + out->attn_full_tt_fwd);
    out->other_ops_fwd = (rest_other_ops_fwd(model->n_layer, model->n_embd, model->vocab_size, N) + L * a.other_ops_fwd) * acc;
    out->tokens_per_step = N * acc;
    return AB_OK;
}

/* Dense bf16 tensor-core peaks (fp32 accumulate, no sparsity) from the vendors' data sheets.
 * Matched by substring of the NVML name, first match wins: specific names before general ones. */
static const struct {
    const char *match;
    const char *label;
    double tflops;
} peak_table[] = {
    {"H100 PCIe", "H100 PCIe", 756.0},
    {"H100 NVL", "H100 NVL", 835.0},
    {"H100", "H100 SXM", 989.0},     /* "NVIDIA H100 80GB HBM3" is the SXM board */
    {"H200", "H200", 989.0},         /* also matches "GH200" */
    {"H800", "H800 SXM", 989.0},
    {"A100", "A100", 312.0},
    {"A800", "A800", 312.0},
    {"L40S", "L40S", 362.0},
    {"L40", "L40", 181.0},
    {"L4", "L4", 121.0},
    {"A10G", "A10G", 70.0},
    {"RTX 4090", "GeForce RTX 4090", 165.2},
    {"RTX 3090", "GeForce RTX 3090", 71.0},
    {"V100", "V100 (fp16; no bf16)", 125.0},
};

void ab_peak_lookup(const char *device_name, ab_peak *out) {
    memset(out, 0, sizeof *out);
    if (!device_name || !*device_name) {
        snprintf(out->reason, sizeof out->reason, "no GPU device name (CPU run): no peak to compare with");
        out->tflops = NAN;
        return;
    }
    for (size_t i = 0; i < sizeof peak_table / sizeof peak_table[0]; i++)
        if (strstr(device_name, peak_table[i].match)) {
            out->available = 1;
            out->tflops = peak_table[i].tflops;
            snprintf(out->source, sizeof out->source, "table: %s dense bf16", peak_table[i].label);
            return;
        }
    out->tflops = NAN;
    snprintf(out->reason, sizeof out->reason,
             "device '%s' is not in the peak table (use --peak-tflops N or --peak-tflops measured)", device_name);
}

void ab_peak_set(ab_peak *out, double tflops, const char *source) {
    memset(out, 0, sizeof *out);
    out->available = tflops > 0;
    out->tflops = tflops > 0 ? tflops : NAN;
    snprintf(out->source, sizeof out->source, "%s", source);
    if (!out->available) snprintf(out->reason, sizeof out->reason, "peak %g TFLOP/s is not positive", tflops);
}

void ab_mfu_of(const ab_flops_step *f, double step_time_s, const ab_peak *peak, ab_mfu *out) {
    memset(out, 0, sizeof *out);
    out->achieved_tflops = out->mfu = NAN;
    if (!(step_time_s > 0) || !isfinite(step_time_s)) {
        snprintf(out->reason, sizeof out->reason, "no steady-state step time");
        return;
    }
    out->achieved_tflops = f->model_per_step / step_time_s * 1e-12;
    if (!peak->available) {
        snprintf(out->reason, sizeof out->reason, "%s", peak->reason);
        return;
    }
    out->mfu = out->achieved_tflops / peak->tflops;
}
