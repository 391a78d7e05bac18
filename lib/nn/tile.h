/* tile.h - the 8 x 32 register tile of lib/nn's AVX-512F kernels: 16 zmm
 * accumulators, per k two vector loads of b, eight broadcasts of a, sixteen
 * FMAs. Operands are addressed by strides, so one kernel serves a GEMM with
 * either operand transposed in memory (attention, 1x1 convolutions, Winograd's
 * 16 products). Sums run over k in order. And the 16 x 16 in-register
 * transpose the channels-last copies and attention use. Private to lib/nn;
 * include only from code that checks glad_nn_avx512(). */
#ifndef GLAD_NN_TILE_H
#define GLAD_NN_TILE_H

#include <immintrin.h>
#include <stddef.h>

/* C[o][n] (8 x 32, rows ldc apart) = alpha sum_k a[k ak + o ao] b[k ldb + n]
 * (+ bias[o] when bias; then R[o][n] + that when R, rows ldr apart: R = C
 * adds to C, another tensor is a residual add) */
__attribute__((target("avx512f"), unused)) static inline void glad_tile8x32r(float *C, size_t ldc, const float *a, size_t ak,
                                                                             size_t ao, const float *b, size_t ldb, int K,
                                                                             float alpha, const float *bias, const float *R,
                                                                             size_t ldr)
{
    __m512 c0[8], c1[8];
    for (int o = 0; o < 8; o++) { c0[o] = _mm512_setzero_ps(); c1[o] = _mm512_setzero_ps(); }
    for (int k = 0; k < K; k++) {
        __m512 b0 = _mm512_loadu_ps(b + (size_t)k * ldb), b1 = _mm512_loadu_ps(b + (size_t)k * ldb + 16);
        const float *ak0 = a + (size_t)k * ak;
        for (int o = 0; o < 8; o++) {
            __m512 w = _mm512_set1_ps(ak0[(size_t)o * ao]);
            c0[o] = _mm512_fmadd_ps(w, b0, c0[o]);
            c1[o] = _mm512_fmadd_ps(w, b1, c1[o]);
        }
    }
    __m512 al = _mm512_set1_ps(alpha);
    for (int o = 0; o < 8; o++) {
        float *r = C + (size_t)o * ldc;
        __m512 r0 = _mm512_mul_ps(al, c0[o]), r1 = _mm512_mul_ps(al, c1[o]);
        if (bias) { __m512 bv = _mm512_set1_ps(bias[o]); r0 = _mm512_add_ps(r0, bv); r1 = _mm512_add_ps(r1, bv); }
        if (R) {
            const float *q = R + (size_t)o * ldr;
            r0 = _mm512_add_ps(_mm512_loadu_ps(q), r0);
            r1 = _mm512_add_ps(_mm512_loadu_ps(q + 16), r1);
        }
        _mm512_storeu_ps(r, r0);
        _mm512_storeu_ps(r + 16, r1);
    }
}

/* the same, + C when add */
__attribute__((target("avx512f"), unused)) static inline void glad_tile8x32(float *C, size_t ldc, const float *a, size_t ak,
                                                                            size_t ao, const float *b, size_t ldb, int K,
                                                                            float alpha, const float *bias, int add)
{
    glad_tile8x32r(C, ldc, a, ak, ao, b, ldb, K, alpha, bias, add ? C : NULL, ldc);
}

/* r[k] := column k of the 16 x 16 block whose rows are r (unpack within
 * 128-bit lanes, then exchange the lanes) */
__attribute__((target("avx512f"), unused)) static inline void glad_transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int k = 0; k < 16; k += 2) { t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]); t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]); }
    for (int k = 0; k < 16; k += 4) {
        r[k] = _mm512_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int k = 0; k < 4; k++) {
        t[k] = _mm512_shuffle_f32x4(r[k], r[k + 4], 0x88);
        t[k + 4] = _mm512_shuffle_f32x4(r[k], r[k + 4], 0xdd);
        t[k + 8] = _mm512_shuffle_f32x4(r[k + 8], r[k + 12], 0x88);
        t[k + 12] = _mm512_shuffle_f32x4(r[k + 8], r[k + 12], 0xdd);
    }
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
    }
}

/* dst[j][s] (32 x T, rows ldd apart) = src[s][j] (T x 32, rows lds apart), T % 16 == 0 */
__attribute__((target("avx512f"), unused)) static inline void glad_transpose_t32(float *dst, size_t ldd, const float *src,
                                                                                 size_t lds, int T)
{
    __m512 r[16];
    for (int s0 = 0; s0 < T; s0 += 16)
        for (int j0 = 0; j0 < 32; j0 += 16) {
            for (int k = 0; k < 16; k++) r[k] = _mm512_loadu_ps(src + (size_t)(s0 + k) * lds + j0);
            glad_transpose16(r);
            for (int k = 0; k < 16; k++) _mm512_storeu_ps(dst + (size_t)(j0 + k) * ldd + s0, r[k]);
        }
}

#endif
