/* nhwc.h - the AVX-512F kernels of the channels-last convolutions
 * (depthwise.c, conv_nhwc.c), shared with the fused inverted-residual block
 * (invres.c). Private to lib/nn; call only when glad_nn_avx512(). */
#ifndef GLAD_NN_NHWC_H
#define GLAD_NN_NHWC_H

/* output row i of a depthwise conv with mult 1 (glad_depthwise_nhwc_forward's
 * arguments) into orow (Wo, C), only its first nc channels (C is the stride
 * of x, w, b's pixels and taps: a slice of channels starts at x + c0 ...) */
void glad_dw_row_avx512(float *orow, const float *x, const float *w, const float *b, int H, int W, int C, int nc, int kh,
                        int kw, int sh, int sw, int dh, int dw, int pt, int pl, int Wo, float lo, float hi, int i);

/* o (n, OC) = clamp(a (n, K) wt (K, OC) + b, lo, hi) (+ res (n, OC)); rows of o and res ldo apart, of a
 * lda, of wt ldb (a slice of columns starts at wt + c0); b and res may be NULL */
void glad_gemm_nhwc_avx512(float *o, size_t ldo, const float *a, size_t lda, const float *wt, size_t ldb, const float *b,
                           const float *res, int n, int K, int OC, float lo, float hi);

#endif
