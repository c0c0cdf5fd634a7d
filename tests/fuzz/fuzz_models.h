/*
 * fuzz_models.h — the model sizes that seeds.c writes its checkpoints and training states with and that
 * fuzz_checkpoint.c and fuzz_state.c build their fixed models of, defined once so that a seed and the harness
 * loading it cannot drift apart. Initialisers of ab_model_config (core/config.h).
 */
#ifndef AB_FUZZ_MODELS_H
#define AB_FUZZ_MODELS_H

/* the tiny baseline: 1 layer, 2 heads, n_embd 8, vocabulary 16, 8 positions; trained at T = FUZZ_TINY_T */
#define FUZZ_TINY_MODEL {.n_layer = 1, .n_head = 2, .n_embd = 8, .vocab_size = 16, .max_seq = 8}
#define FUZZ_TINY_T 8
/* the smallest shape of a published GPT-2 file (one head of 64): 1 layer, vocabulary 8, 4 positions */
#define FUZZ_PUBLISHED_MODEL {.n_layer = 1, .n_head = 1, .n_embd = 64, .vocab_size = 8, .max_seq = 4}
#define FUZZ_PUBLISHED_T 4

#endif
