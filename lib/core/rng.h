/* rng.h - small, splittable, counter-seeded random numbers: every stream is
 * derived from (seed, a stream id such as a hash of the record id, a step),
 * so results do not depend on thread count, batching or sharding.
 * xoshiro256** seeded through splitmix64; Gaussian by Box-Muller. */
#ifndef GLAD_RNG_H
#define GLAD_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct { uint64_t s[4]; int has_spare; double spare; } glad_rng;

void glad_rng_seed(glad_rng *r, uint64_t seed, uint64_t stream, uint64_t sub);
uint64_t glad_rng_u64(glad_rng *r);
double glad_rng_uniform(glad_rng *r);            /* [0, 1) */
/* Counter-based: [0, 1) from output i (0-based) of the splitmix64 sequence
 * started at state seed (state += 0x9E3779B97F4A7C15, then its finaliser), so
 * any element comes without the ones before it and a loop over i may run on
 * any threads. The dropout masks of lib/nn (keep element i when >= p). */
double glad_rng_uniform_at(uint64_t seed, uint64_t i);
uint64_t glad_rng_below(glad_rng *r, uint64_t n);  /* [0, n) without modulo bias */
double glad_rng_normal(glad_rng *r);
void glad_rng_normal_f32(glad_rng *r, float *out, size_t n);
uint64_t glad_rng_hash_str(const char *s);       /* FNV-1a 64 of a record id */

/* splitmix64 as a generator of its own: *state += 0x9E3779B97F4A7C15, the
 * output is the finaliser of the new state. glad_rng_seed mixes through it;
 * the UNet initialisation draws its weights from it directly (state seeded
 * seed * 0x2545F4914F6CDD1D + 12345), so that sequence must not change. */
uint64_t glad_rng_splitmix64(uint64_t *state);
double glad_rng_splitmix64_uniform(uint64_t *state);   /* [0, 1): the top 53 bits */

#endif
