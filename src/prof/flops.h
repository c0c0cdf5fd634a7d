/*
 * flops.h — analytical FLOPs of one optimizer step of the whole model, and MFU against a device peak.
 *
 * Convention (METRICS.md): a multiply-add is 2 FLOPs, matrix products only; backward = 2 x forward for
 * the matrix products (gradient w.r.t. input and w.r.t. weight). Per micro-batch of N = B*T tokens:
 *     attention layers  : the variant's own numbers (variant.h flops()) x n_layer
 *     c_proj            : 2*N*C*C            per layer
 *     MLP (c_fc, c_proj): 2*N*C*4C + 2*N*4C*C per layer
 *     LM head (tied wte): 2*N*C*V
 *     embeddings        : 0 (a lookup)
 * and everything x grad_accum. "rest" = all of that except the attention layers; the hardware count of
 * the rest equals the model count (dense GEMMs execute exactly what they compute).
 * Element-wise work (layernorm, GELU, residual adds, softmax cross-entropy) is estimated separately in
 * other_ops with the per-element costs of docs/METRICS-IMPL.md; it is never in the headline.
 */
#ifndef AB_PROF_FLOPS_H
#define AB_PROF_FLOPS_H

#include "attn/variant.h"
#include "core/config.h"
#include "core/status.h"

typedef struct {
    /* whole optimizer step (all layers, all micro-batches) */
    double model_fwd, model_bwd;            /* model = what the math needs (causal-aware) */
    double hw_fwd, hw_bwd;                  /* what the kernels execute */
    double model_per_step, hardware_per_step;   /* fwd + bwd */
    double attn_model_fwd, attn_model_bwd;  /* the attention layers (variant incl. its projections) */
    double attn_hw_fwd, attn_hw_bwd;
    double attn_proj_fwd;                   /* part of attn_model_fwd in the variant's input projections */
    double rest_fwd, rest_bwd;              /* c_proj + MLP + LM head */
    double attention_share;                 /* (attn_model_fwd + attn_model_bwd) / model_per_step */
    /* PyTorch FlopCounterMode style: the attention core as a full T x T, no causal halving */
    double full_tt_per_step;                /* fwd + bwd of the whole model with the full T x T core */
    double attn_full_tt_fwd;                /* attention layers forward with the full T x T core */
    double other_ops_fwd;                   /* element-wise estimate (variant + rest), forward only */
    double tokens_per_step;                 /* B * T * grad_accum */
} ab_flops_step;

/* Whole-model FLOPs per optimizer step. acfg is the variant's resolved attention config as the model
 * builds it, or NULL to derive it from model (C, H, D = C/H, max_T, model->attn resolved for train_T = T).
 * AB_ERR_USAGE for non-positive shapes or a variant without flops(). */
ab_status ab_flops_per_step(const ab_model_config *model, const ab_variant *v, const ab_attn_config *acfg,
                            int B, int T, int grad_accum, ab_flops_step *out);

/* The non-attention part alone for one micro-batch (forward), exposed for the tests. */
double ab_flops_rest_fwd(int n_layer, int C, int V, double N_tokens);

/* Peak dense matrix throughput of a device. */
typedef struct {
    int available;
    double tflops;              /* dense bf16 (tensor cores, fp32 accumulate), TFLOP/s */
    char source[128];           /* "table: H100 SXM" or "measured: bf16 GEMM 8192^3" */
    char reason[256];           /* why unavailable */
} ab_peak;

/* Looks the device name up in the peak table (docs/METRICS-IMPL.md lists it). Unknown names and NULL
 * give available = 0 with a reason naming the device; never a guess. */
void ab_peak_lookup(const char *device_name, ab_peak *out);
/* A peak measured by the caller (--peak-tflops measured, or a number given on the command line). */
void ab_peak_set(ab_peak *out, double tflops, const char *source);

/* achieved TFLOP/s = model_per_step / step_time; mfu = achieved / peak. NAN + reason when step time or
 * peak is unavailable. */
typedef struct {
    double achieved_tflops;
    double mfu;                 /* fraction, 0..1 */
    char reason[256];           /* set when mfu is NAN */
} ab_mfu;

void ab_mfu_of(const ab_flops_step *f, double step_time_s, const ab_peak *peak, ab_mfu *out);

#endif
