/* bf16k.h - the bf16 kernels of bf16.c for the convolution drivers of lib/nn
 * (conv2d.c, conv3x3.c). Private to lib/nn: call them only when
 * glad_precision_get() is GLAD_PREC_BF16 (which implies the CPU runs them). */
#ifndef GLAD_NN_BF16K_H
#define GLAD_NN_BF16K_H

#include "nn/bf16.h"
#include "nn/winoblk.h"

/* shapes glad_conv1x1_forward_bf16 takes: those of glad_conv1x1_ok */
int glad_conv1x1_bf16_ok(int C, int N, int OC);
/* out (B,OC,N) = w (OC,C) x (B,C,N) + b with w and x rounded to bf16, fp32
 * sums, then res + that when res (B,OC,N) is given; GLAD_ENOMEM (out
 * untouched) when the bf16 weights cannot be allocated */
int glad_conv1x1_forward_bf16(float *out, const float *x, const float *w, const float *b, const float *res, int B, int C, int N,
                              int OC);

/* its backward: dx (B,C,N) += w^T dout (= with set; dx may be NULL), dw
 * (OC,C) += sum_n dout x^T, every product on bf16 operands with fp32 sums;
 * GLAD_ENOMEM, nothing written, when scratch cannot be allocated */
int glad_conv1x1_backward_bf16(float *dx, float *dw, const float *dout, const float *x, const float *w, int B, int C, int N, int OC,
                               int set);

/* the bf16 kernel for a conv f32 runs with Winograd kernel k (F(2x2,3x3)'s
 * fp32 transforms, the transform-domain products on bf16 operands, for
 * F(4x4,3x3)'s shapes too) with NI inputs, or NULL when there is none */
const glad_wino_kernel *glad_wino_bf16(const glad_wino_kernel *k, int NI);

/* from the cache in use (bf16.h): kernel k's bf16 U for w (NO,NI,3,3), or
 * the bf16 copy of n weights w (k NULL), made on the first call; NULL when
 * no cache is in use or memory ran out (the caller converts itself) */
const void *glad_bf16_cached(const glad_wino_kernel *k, const float *w, int NI, int NO, size_t n);
/* the same for kernel k's flipped U of w (NI,NO,3,3) (k->weights with flip:
 * the input gradient of the conv with NI outputs) */
const void *glad_bf16_cached_flip(const glad_wino_kernel *k, const float *w, int NI, int NO);

/* the Winograd weight gradient's products (winoblk.c) on bf16 operands:
 * P_e (OC, C) += sum_t dM_e[t][o] V_e[t][i] for the ne planes of a block
 * of nt tiles, dM (ne, dt, OC) and V (ne, dt, C) in fp32 (rows dt and up
 * free: an odd nt's pad row is zeroed there), a plane's both rounded into
 * pair rows (t, t+1) at bp (dt (C + OC) bf16); fp32 sums; C % 32 == 0,
 * OC % 16 == 0 */
void glad_bf16_dw_block(float *P, float *M, float *V, uint16_t *bp, int ne, int dt, int nt, int C, int OC);

/* C (8 x 32, rows ldc apart) = sum over K (even) of a (8 rows of bf16, lda
 * apart) times b (K/2 pair rows of 32 interleaved bf16 pairs, ldb bf16 apart),
 * + bias (when given), then R + that (when R, rows ldc apart: R = C adds to
 * C, another tensor is a residual add) */
void glad_bf16_tile8x32(float *C, size_t ldc, const uint16_t *a, size_t lda, const uint16_t *b, size_t ldb, int K,
                        const float *bias, const float *R);
/* dst (K/2 pair rows of n interleaved pairs, ldd bf16 apart) = rows 2p and
 * 2p+1 of src (K rows of n floats, lds apart) rounded to bf16; n % 16 == 0 */
void glad_bf16_pack_pairs(uint16_t *dst, size_t ldd, const float *src, size_t lds, int K, int n);
/* dst[i] = bf16 of src[i], n values */
void glad_bf16_convert(uint16_t *dst, const float *src, size_t n);

#endif
