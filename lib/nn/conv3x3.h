/* conv3x3.h - the direct 3x3 stride-1 padding-1 convolution of conv3x3.c
 * (one image; AVX-512F only: check glad_conv3x3_available() first). Private
 * to lib/nn: glad_conv2d_forward/backward pick it. */
#ifndef GLAD_NN_CONV3X3_H
#define GLAD_NN_CONV3X3_H

#include <stddef.h>

int glad_conv3x3_available(void);
/* floats of scratch for C padded planes of H x W */
size_t glad_conv3x3_pad_floats(int C, int H, int W);
/* out (OC,H,W) = w * x + b */
void glad_conv3x3_forward1(float *out, const float *x, const float *w, const float *b, int C, int H, int W, int OC,
                           float *ws);
/* dx (C,H,W) += input gradient of dout (OC,H,W) */
void glad_conv3x3_backward_input1(float *dx, const float *dout, const float *w, int C, int H, int W, int OC, float *ws);
/* floats of scratch for glad_conv3x3_backward1 */
size_t glad_conv3x3_backward_floats(int C, int H, int W, int OC);
/* dw (OC,C,3,3) += weight gradient, dx (C,H,W) += input gradient (dx may be NULL) */
void glad_conv3x3_backward1(float *dx, float *dw, const float *dout, const float *x, const float *w, int C, int H, int W,
                            int OC, float *ws);

#endif
