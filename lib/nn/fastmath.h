/* fastmath.h - a vectorisable expf for the engine's elementwise kernels
 * (SiLU, GroupNorm+SiLU, softmax). libm's expf is a call GCC cannot
 * vectorise; this one is branch-free, so loops under `omp simd` become SIMD.
 * exp(x) = 2^k exp(r), k = round(x / ln 2), r = x - k ln 2 (Cody-Waite, two
 * parts of ln 2), |r| <= ln2/2, exp(r) by its degree-6 Taylor polynomial
 * (truncation r^7/7! < 2e-10 relative): within 2 ulp of expf. Inputs are
 * clamped to [-87.3, 88.3] (2^k stays a normal float); exp(-87.3) ~ 1.2e-38
 * and exp(88.3) ~ 2.0e38 stand in for underflow and overflow, also for
 * -inf and +inf. A NaN x gives NaN from glad_expf_fast and exp(-87.3) from
 * glad_exp16 (vmaxps returns its second operand for a NaN). Not a
 * general-purpose libm. Private to lib/nn. */
#ifndef GLAD_NN_FASTMATH_H
#define GLAD_NN_FASTMATH_H

#include <immintrin.h>
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
#ifndef GLAD_NO_VEC_CLONES
#define GLAD_VEC_CLONES __attribute__((target_clones("avx512f", "default"), noinline))
#else   /* the fuzz build (tests/fuzz, clang): the baseline version only */
#define GLAD_VEC_CLONES __attribute__((noinline))
#endif

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
    /* 2^k by its exponent bits. A NaN x passes the clamps and makes r and p
     * NaN, which the product keeps; its k is taken as 0, because converting
     * a NaN to an integer is undefined (and shifting the negative result of
     * x86's conversion too). Finite x: k in [-126, 127], the same bits. */
    float ki = kf == kf ? kf : 0.0f;
    union { uint32_t i; float f; } s = {(uint32_t)((int32_t)ki + 127) << 23};
    return p * s.f;
}

/* glad_expf_fast on 16 lanes, the same steps with the polynomial's Horner
 * steps as FMAs (so not always bit for bit the scalar one: within its 2 ulp
 * of expf). Callers check glad_nn_avx512(). */
__attribute__((target("avx512f"), unused)) static inline __m512 glad_exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 kf = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _mm512_set1_ps(12582912.0f)),
                              _mm512_set1_ps(12582912.0f));
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(kf, _mm512_set1_ps(0.693145751953125f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(kf, _mm512_set1_ps(1.42860682030941723212e-6f)));
    static const float c[6] = {1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
    __m512 p = _mm512_set1_ps(1.0f / 720);
    for (int i = 0; i < 6; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[i]));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(kf), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

/* sigmoid(z) = 1 / (1 + exp(-z)) on 16 lanes: the reciprocal by rcp14 and one
 * Newton step r (2 - d r) (within about 2 ulp) instead of a division, which
 * costs more than the exp on 512-bit vectors. A NaN z gives a finite
 * sigmoid; callers multiply by z (or a function of it), which keeps the NaN. */
__attribute__((target("avx512f"), unused)) static inline __m512 glad_sigmoid16(__m512 z)
{
    __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), glad_exp16(_mm512_sub_ps(_mm512_setzero_ps(), z)));
    __m512 r = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}

/* silu(z) = z / (1 + exp(-z)) on 16 lanes to under 6e-5 relative (5.7e-5
 * measured on [-90, 90]), for values rounded to bf16 next (2^-9 relative,
 * 30x more): exp(-z) = 2^t,
 * t = -z log2(e) clamped to [-126, 126], = 2^k 2^f with k = round(t),
 * |f| <= 1/2, 2^f by a degree-4 polynomial fitted for least maximum relative
 * error (2.7e-6), 2^k by vscalefps; the reciprocal by rcp14 alone (2^-14
 * relative) without glad_sigmoid16's Newton step. About half the
 * instructions of z glad_sigmoid16(z). A NaN z gives NaN. */
__attribute__((target("avx512f"), unused)) static inline __m512 glad_silu16_coarse(__m512 z)
{
    __m512 t = _mm512_mul_ps(z, _mm512_set1_ps(-1.44269504088896341f));
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-126.0f)), _mm512_set1_ps(126.0f));
    __m512 k = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), f = _mm512_sub_ps(t, k);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.009570102207362652f), f, _mm512_set1_ps(0.05591786280274391f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.240247443318367f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931217908859253f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.9999992847442627f));
    __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), _mm512_scalef_ps(p, k));
    return _mm512_mul_ps(z, _mm512_rcp14_ps(d));
}

#endif
