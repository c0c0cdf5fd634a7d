/*
 * checkpoint.h — model checkpoints as safetensors (Hugging Face GPT2LMHeadModel names and layouts).
 *
 * Metadata key "attnbench" holds the config as JSON: {"format_version", "variant", "model": {n_layer,
 * n_head, n_embd, vocab_size, max_seq}, "attn": {resolved hyper-parameters}, "train_T"}, so `eval` and
 * `generate` reload a checkpoint without flags. A file without that key (published GPT-2 weights) is read
 * as the baseline variant with its sizes inferred from the tensor shapes and n_head = n_embd / 64. A tensor
 * "transformer.X" missing from a file is also looked up as "X" (the names of published Hugging Face GPT-2 files).
 * Every failure is a status with a message naming the file.
 */
#ifndef AB_CHECKPOINT_H
#define AB_CHECKPOINT_H

#include "model/gpt2.h"

/* Saves the master weights (fp32) atomically. */
ab_status ab_checkpoint_save(ab_gpt2 *m, const char *path);
/* Reads the config of a checkpoint (for creating the model before loading weights). */
ab_status ab_checkpoint_read_config(const char *path, ab_model_config *cfg, ab_variant_id *variant, int *train_T);
/* Loads a checkpoint into an existing model: every tensor of the model must be present with the same
 * shape (extra tensors such as lm_head.weight or attn.bias buffers of published GPT-2 files are ignored). */
ab_status ab_checkpoint_load_into(ab_gpt2 *m, const char *path);
/* Convenience: read config, create the model on `be`, load the weights. Every tensor is checked against the
 * model's parameter table before the parameters are allocated, so a small file whose metadata asks for a large
 * model is refused without building it. `m` may be uninitialised; on failure it is left zeroed (nothing to
 * destroy). */
ab_status ab_checkpoint_open(const char *path, ab_backend *be, ab_gpt2 *m);

/* Training state for resuming after epoch `epoch`: fp32 parameters, AdamW moments and the step count, in
 * one safetensors file ("params", "adamw.m", "adamw.v"; metadata "attnbench_state" with the variant, epoch
 * and optimizer step). Loading checks that the file belongs to the same variant and sizes. */
ab_status ab_checkpoint_save_state(ab_gpt2 *m, const char *path, int epoch);
ab_status ab_checkpoint_load_state(ab_gpt2 *m, const char *path, int *epoch);

#endif
