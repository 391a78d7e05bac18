/* conv3x3.h - the direct 3x3 stride-1 padding-1 convolution of conv3x3.c
 * and, for large planes, the Winograd ones of winoblk.c (AVX-512F only: check
 * glad_nn_avx512() first). Private to lib/nn: glad_conv2d_forward and
 * glad_conv2d_backward pick it. */
#ifndef GLAD_NN_CONV3X3_H
#define GLAD_NN_CONV3X3_H

#include <stddef.h>
#include "nn/nn.h"

/* floats of scratch for C padded planes of H x W */
size_t glad_conv3x3_pad_floats(int C, int H, int W);
/* floats of scratch for glad_conv3x3_forward */
size_t glad_conv3x3_forward_floats(int C, int H, int W, int OC);
/* out (B,OC,H,W) = w * x + b, of silu(groupnorm(x)) when pre is given,
 * then the epilogue epi (nn.h) when given */
void glad_conv3x3_forward(float *out, const float *x, const glad_gnsilu *pre, const glad_conv_epi *epi, const float *w, const float *b,
                          int B, int C, int H, int W, int OC, float *ws);
/* floats of scratch for glad_conv3x3_backward */
size_t glad_conv3x3_backward_floats(int C, int H, int W, int OC);
/* dw (OC,C,3,3) += weight gradient, dx (B,C,H,W) += input gradient (= with
 * set; dx may be NULL); the input is silu(groupnorm(x)) when pre is given */
void glad_conv3x3_backward(float *dx, float *dw, const float *dout, const float *x, const glad_gnsilu *pre, const float *w,
                           int B, int C, int H, int W, int OC, float *ws, int set);

#endif
