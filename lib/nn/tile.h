/* tile.h - the 8 x 32 register tile of lib/nn's AVX-512F kernels: 16 zmm
 * accumulators, per k two vector loads of b, eight broadcasts of a, sixteen
 * FMAs. Operands are addressed by strides, so one kernel serves a GEMM with
 * either operand transposed in memory (attention, 1x1 convolutions, Winograd's
 * 16 products). Sums run over k in order. Private to lib/nn; include only
 * from code that checks glad_nn_avx512(). */
#ifndef GLAD_NN_TILE_H
#define GLAD_NN_TILE_H

#include <immintrin.h>
#include <stddef.h>

/* C[o][n] (8 x 32, rows ldc apart) = alpha sum_k a[k ak + o ao] b[k ldb + n]
 * (+ bias[o] when bias; + C when add) */
__attribute__((target("avx512f"), unused)) static inline void glad_tile8x32(float *C, size_t ldc, const float *a, size_t ak,
                                                                            size_t ao, const float *b, size_t ldb, int K,
                                                                            float alpha, const float *bias, int add)
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
        if (add) { r0 = _mm512_add_ps(_mm512_loadu_ps(r), r0); r1 = _mm512_add_ps(_mm512_loadu_ps(r + 16), r1); }
        _mm512_storeu_ps(r, r0);
        _mm512_storeu_ps(r + 16, r1);
    }
}

#endif
