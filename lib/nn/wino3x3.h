/* wino3x3.h - the Winograd F(2x2,3x3) kernels of wino3x3.c for the block
 * driver (winoblk.h), AVX-512F only. Private to lib/nn: conv3x3.c picks them
 * for the shapes glad_wino3x3_ok / glad_wino3x3_dw_ok accept when the CPU
 * has AVX-512F (and wino4x4.h's do not). */
#ifndef GLAD_NN_WINO3X3_H
#define GLAD_NN_WINO3X3_H

#include <immintrin.h>
#include "nn/winoblk.h"

/* the masks of a run of n <= 16 tiles of one padded row for
 * glad_wino22_bt: a / b the two loads of d[0 .. 2n+1], a1 / b1 those of
 * d[2 .. 2n+1], s the n tile lanes */
typedef struct { __mmask16 a, b, a1, b1, s; } glad_wino22_mask;

static inline glad_wino22_mask glad_wino22_masks(int n)
{
    int c0 = 2 * n + 2, c1 = 2 * n;
    glad_wino22_mask m;
    m.a = (__mmask16)(c0 >= 16 ? 0xffff : (1u << c0) - 1);
    m.b = (__mmask16)(c0 >= 32 ? 0xffff : c0 > 16 ? (1u << (c0 - 16)) - 1 : 0);
    m.a1 = (__mmask16)(c1 >= 16 ? 0xffff : (1u << c1) - 1);
    m.b1 = (__mmask16)(c1 > 16 ? (1u << (c1 - 16)) - 1 : 0);
    m.s = (__mmask16)(n == 16 ? 0xffff : (1u << n) - 1);
    return m;
}

/* F(2x2,3x3)'s input transform of up to 16 tiles of one channel (the input
 * transforms of wino3x3.c and of bf16.c's twin): v[4 r + q] = (B^T d B)[r][q]
 * for the 4x4 patches d at 2j of the padded rows d, d + Wp, ... Per row:
 * E[j] = d[2j], O[j] = d[2j+1] and the same one tile on (E1 = d[2j+2],
 * O1 = d[2j+3]) by two permutes of two masked loads each; tb = B^T d over
 * the rows (d0 - d2, d1 + d2, d2 - d1, d1 - d3), then v = tb B over the
 * columns: v0 = E - E1, v1 = O + E1, v2 = E1 - O, v3 = O - O1. */
__attribute__((target("avx512f"), unused)) static inline void glad_wino22_bt(__m512 *v, const float *d, int Wp, glad_wino22_mask m)
{
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 E[4], O[4], E1[4], O1[4];
    for (int r = 0; r < 4; r++) {
        const float *dr = d + (size_t)r * Wp;
        __m512 a = _mm512_maskz_loadu_ps(m.a, dr), b = _mm512_maskz_loadu_ps(m.b, dr + 16);
        __m512 a1 = _mm512_maskz_loadu_ps(m.a1, dr + 2), b1 = _mm512_maskz_loadu_ps(m.b1, dr + 18);
        E[r] = _mm512_permutex2var_ps(a, ie, b);
        O[r] = _mm512_permutex2var_ps(a, io, b);
        E1[r] = _mm512_permutex2var_ps(a1, ie, b1);
        O1[r] = _mm512_permutex2var_ps(a1, io, b1);
    }
    __m512 te[4], to[4], te1[4], to1[4];
    te[0] = _mm512_sub_ps(E[0], E[2]); to[0] = _mm512_sub_ps(O[0], O[2]);
    te1[0] = _mm512_sub_ps(E1[0], E1[2]); to1[0] = _mm512_sub_ps(O1[0], O1[2]);
    te[1] = _mm512_add_ps(E[1], E[2]); to[1] = _mm512_add_ps(O[1], O[2]);
    te1[1] = _mm512_add_ps(E1[1], E1[2]); to1[1] = _mm512_add_ps(O1[1], O1[2]);
    te[2] = _mm512_sub_ps(E[2], E[1]); to[2] = _mm512_sub_ps(O[2], O[1]);
    te1[2] = _mm512_sub_ps(E1[2], E1[1]); to1[2] = _mm512_sub_ps(O1[2], O1[1]);
    te[3] = _mm512_sub_ps(E[1], E[3]); to[3] = _mm512_sub_ps(O[1], O[3]);
    te1[3] = _mm512_sub_ps(E1[1], E1[3]); to1[3] = _mm512_sub_ps(O1[1], O1[3]);
    for (int r = 0; r < 4; r++) {
        v[4 * r] = _mm512_sub_ps(te[r], te1[r]);
        v[4 * r + 1] = _mm512_add_ps(to[r], te1[r]);
        v[4 * r + 2] = _mm512_sub_ps(te1[r], to[r]);
        v[4 * r + 3] = _mm512_sub_ps(to[r], to1[r]);
    }
}

/* NI inputs, NO outputs, H x W: H and W even, NO % 8 == 0, NI >= 16, H W >= 256 */
int glad_wino3x3_ok(int NI, int H, int W, int NO);
extern const glad_wino_kernel glad_wino3x3_kernel;

/* weight gradient: H, W even, C % 32 == 0, OC % 16 == 0 */
int glad_wino3x3_dw_ok(int C, int H, int W, int OC);
extern const glad_wino_dwkernel glad_wino3x3_dwkernel;

#endif
