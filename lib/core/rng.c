/* rng.c - see rng.h. */
#include <math.h>
#include "core/rng.h"

uint64_t glad_rng_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void glad_rng_seed(glad_rng *r, uint64_t seed, uint64_t stream, uint64_t sub)
{
    uint64_t x = seed ^ 0x6A09E667F3BCC909ull;
    x = glad_rng_splitmix64(&x) ^ stream;
    x = glad_rng_splitmix64(&x) ^ sub;
    for (int i = 0; i < 4; i++) r->s[i] = glad_rng_splitmix64(&x);
    r->has_spare = 0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t glad_rng_u64(glad_rng *r)
{
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return res;
}

double glad_rng_splitmix64_uniform(uint64_t *state)
{
    return (double)(glad_rng_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

double glad_rng_uniform(glad_rng *r) { return (double)(glad_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

uint64_t glad_rng_below(glad_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, v;
    do v = glad_rng_u64(r); while (v >= lim);
    return v % n;
}

double glad_rng_normal(glad_rng *r)
{
    if (r->has_spare) { r->has_spare = 0; return r->spare; }
    double u1, u2;
    do u1 = glad_rng_uniform(r); while (u1 <= 0.0);
    u2 = glad_rng_uniform(r);
    double m = sqrt(-2.0 * log(u1));
    r->spare = m * sin(2 * M_PI * u2);
    r->has_spare = 1;
    return m * cos(2 * M_PI * u2);
}

void glad_rng_normal_f32(glad_rng *r, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = (float)glad_rng_normal(r);
}

uint64_t glad_rng_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
    return h;
}

double glad_rng_uniform_at(uint64_t seed, uint64_t i)
{
    uint64_t x = seed + 0x9E3779B97F4A7C15ull * i;   /* splitmix adds the (i+1)-th increment */
    return glad_rng_splitmix64_uniform(&x);
}
