/* fastmath.h - a vectorisable expf for the engine's elementwise kernels
 * (SiLU, GroupNorm+SiLU, softmax). libm's expf is a call GCC cannot
 * vectorise; this one is branch-free, so loops under `omp simd` become SIMD.
 * exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 (Cody-Waite, two
 * parts of ln 2), |r| <= ln2/2, exp(r) by its degree-6 Taylor polynomial
 * (truncation r^7/7! < 2e-10 relative): within 2 ulp of expf. Inputs are
 * clamped to [-87.3, 88.3] (2^k stays a normal float); exp(-87.3) ~ 1.2e-38
 * and exp(88.3) ~ 2.0e38 stand in for underflow and overflow. Not a
 * general-purpose libm: no NaN/inf semantics. Private to lib/nn. */
#ifndef GLAD_NN_FASTMATH_H
#define GLAD_NN_FASTMATH_H

#include <stdint.h>

/* The clamps below are selects; with -ftrapping-math (GCC's default) GCC will
 * not if-convert them inside loops, so no loop calling this vectorises. The
 * engine never inspects floating-point exception flags, so the files that
 * include this header drop that guarantee (results are unchanged). */
#pragma GCC optimize("no-trapping-math")

/* Row helpers of the elementwise kernels are compiled twice, for AVX-512F
 * (16 lanes) and for the baseline, and picked at load time (GCC ifunc): the
 * library is built without -march. Called from inside OpenMP loops, once per
 * row, so the dispatch costs nothing. */
#define GLAD_VEC_CLONES __attribute__((target_clones("avx512f", "default"), noinline))

static inline float glad_expf_fast(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    /* round to nearest by the 1.5 * 2^23 trick (default rounding mode) */
    float kf = x * 1.44269504088896341f + 12582912.0f;
    kf -= 12582912.0f;
    float r = x - kf * 0.693145751953125f;       /* ln2 high part (exact product) */
    r -= kf * 1.42860682030941723212e-6f;        /* ln2 low part */
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { int32_t i; float f; } s = {((int32_t)kf + 127) << 23};
    return p * s.f;
}

#endif
