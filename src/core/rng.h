/*
 * rng.h — the one random number generator (xoshiro256**, seeded through splitmix64).
 *
 * Deterministic given the seed on every platform: initialisation, data shuffles, dropout-free training
 * and sampling all draw from streams derived with ab_rng_derive(seed, stream id).
 */
#ifndef AB_RNG_H
#define AB_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} ab_rng;

void ab_rng_seed(ab_rng *r, uint64_t seed);
/* An independent stream for (seed, stream): e.g. (seed, layer index) for init, (seed, epoch) for shuffles. */
void ab_rng_derive(ab_rng *r, uint64_t seed, uint64_t stream);
uint64_t ab_rng_u64(ab_rng *r);
uint32_t ab_rng_below(ab_rng *r, uint32_t n);   /* uniform in [0, n), unbiased */
double ab_rng_uniform(ab_rng *r);               /* [0, 1) with 53 bits */
double ab_rng_normal(ab_rng *r);                /* N(0, 1), Box-Muller */

#endif
