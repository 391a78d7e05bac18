/* nhwc.h - the AVX-512F kernels of the channels-last convolutions
 * (depthwise.c, conv_nhwc.c), shared with the fused inverted-residual block
 * (invres.c), and the bf16 twin of their 1x1 GEMM (AVX512_BF16). Private to
 * lib/nn; call only when glad_nn_avx512() (the twin: in bf16 precision). */
#ifndef GLAD_NN_NHWC_H
#define GLAD_NN_NHWC_H

#include <stddef.h>
#include <stdint.h>

/* output row i of a depthwise conv with mult 1 (glad_depthwise_nhwc_forward's
 * arguments) into orow (Wo, C), only its first nc channels (C is the stride
 * of x, w, b's pixels and taps: a slice of channels starts at x + c0 ...) */
void glad_dw_row_avx512(float *orow, const float *x, const float *w, const float *b, int H, int W, int C, int nc, int kh,
                        int kw, int sh, int sw, int dh, int dw, int pt, int pl, int Wo, float lo, float hi, int i);
/* the same row stored rounded to bf16 (nearest even, NaN quiet, denormals to signed zero: vcvtneps2bf16's
 * rounding, with AVX-512F alone) into orow (Wo, C) of bf16, for a bf16 GEMM to read (glad_gemm_nhwc_bf16a) */
void glad_dw_row16_avx512(uint16_t *orow, const float *x, const float *w, const float *b, int H, int W, int C, int nc,
                          int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, int Wo, float lo, float hi, int i);
/* glad_dw_row16_avx512 on x (H, W, C) in bf16 (C even; rows of the bf16 fused block's expansion), for
 * glad_precision_get() == GLAD_PREC_BF16 (so glad_nn_bf16()): the same sums in fp32 of x widened exactly, so the
 * numbers of glad_dw_row16_avx512 run on x as fp32. w and b as glad_dw_pack_eo packs them (C up to 32 a tap); a slice
 * of channels starts at c0, a multiple of 32 (x + c0, w + c0, b + c0) */
void glad_dw_row16b_avx512(uint16_t *orow, const uint16_t *x, const float *w, const float *b, int H, int W, int C, int nc,
                           int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, int Wo, float lo, float hi, int i);
/* d (taps, C up to 32) = s (taps, C) with each 32 channels as their 16 even ones then their 16 odd ones (zero-padded):
 * the lanes glad_dw_row16b_avx512 widens a vector of 32 bf16 into (c even: shifted 16 bits up; c odd: masked) */
void glad_dw_pack_eo(float *d, const float *s, int taps, int C);

/* o (n, OC) = clamp(a (n, K) wt (K, OC) + b, lo, hi) (+ res (n, OC)); rows of o and res ldo apart, of a
 * lda, of wt ldb (a slice of columns starts at wt + c0); b and res may be NULL */
void glad_gemm_nhwc_avx512(float *o, size_t ldo, const float *a, size_t lda, const float *wt, size_t ldb, const float *b,
                           const float *res, int n, int K, int OC, float lo, float hi);

/* its twin on bf16 operands with fp32 sums, for glad_precision_get() == GLAD_PREC_BF16 (so glad_nn_bf16()):
 * the same o, a, b, res and epilogue, the weights wq packed as glad_bf16_pack_b (bf16.h) packs w^T (what
 * glad_bf16_cached_bt returns), pair rows ldq bf16 apart (2 x OC up to 32; a slice of columns starts at
 * wq + 2 c0, c0 a multiple of 16), a rounded to bf16 (nearest even) as it is read; K <= GLAD_GEMM_BF16_KMAX.
 * Sums the pairs of k in order from zero, then adds b: the numbers of glad_bf16_gemm_packed + the epilogue. */
#define GLAD_GEMM_BF16_KMAX 4096
void glad_gemm_nhwc_bf16(float *o, size_t ldo, const float *a, size_t lda, const uint16_t *wq, size_t ldq, const float *b,
                         const float *res, int n, int K, int OC, float lo, float hi);
/* the same stored in bf16: q (n, OC; rows ldq16 apart) = clamp(a wq + b, lo, hi) rounded to bf16 (nearest even, as
 * vcvtneps2bf16), no residual; the bf16 fused block's expansion (its depthwise conv reads q: glad_dw_row16b_avx512) */
void glad_gemm_nhwc_bf16h(uint16_t *q, size_t ldq16, const float *a, size_t lda, const uint16_t *wq, size_t ldq,
                          const float *b, int n, int K, int OC, float lo, float hi);
/* glad_conv2d_nhwc_forward's output pixels [p0, p0+n) in bf16 (its kernel, stride, dilation and padding; x (H, W, C);
 * output rows Wo wide, OC channels) rounded to bf16 as glad_gemm_nhwc_bf16h rounds, into q (rows ldq16 apart), wq its
 * weights (OC, kh kw C) packed (glad_bf16_cached_bt), no residual: the numbers of the bf16 conv, then rounded. For the
 * first conv fused into the bf16 block after it (invres.c). GLAD_EUNSUPPORTED (nothing written) for kh kw C > 12288 */
int glad_conv_rows_bf16h(uint16_t *q, size_t ldq16, const float *x, int H, int W, int C, int kh, int kw, int sh, int sw, int dh,
                         int dw, int pt, int pl, int Wo, int p0, int n, const uint16_t *wq, size_t ldq, const float *b, int OC,
                         float lo, float hi);
/* its fp32 twin: o's pixels [p0, p0+n) (rows ldo apart) = glad_conv2d_nhwc_forward's fp32 numbers, wt (kh kw C, OC)
 * = w^T (glad_conv2d_nhwc_wt), no residual; for the first conv fused into the fp32 block after it (invres.c).
 * GLAD_EUNSUPPORTED (nothing written) for kh kw C > 12288 */
int glad_conv_rows_f32(float *o, size_t ldo, const float *x, int H, int W, int C, int kh, int kw, int sh, int sw, int dh,
                       int dw, int pt, int pl, int Wo, int p0, int n, const float *wt, const float *b, int OC, float lo, float hi);
/* the same with a already in bf16 (rows lda bf16 apart), K even: the same numbers as a in fp32 rounded here */
void glad_gemm_nhwc_bf16a(float *o, size_t ldo, const uint16_t *a, size_t lda, const uint16_t *wq, size_t ldq, const float *b,
                          const float *res, int n, int K, int OC, float lo, float hi);

#endif
