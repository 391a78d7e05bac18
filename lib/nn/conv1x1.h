/* conv1x1.h - 1x1 stride-1 convolution for AVX-512F CPUs, whole batches at a
 * time (conv1x1.c). Private to lib/nn: glad_conv2d_forward/backward pick it
 * for the shapes glad_conv1x1_ok accepts. */
#ifndef GLAD_NN_CONV1X1_H
#define GLAD_NN_CONV1X1_H

/* AVX-512F, C and OC multiples of 8 up to 1024, N = H W a multiple of 32 */
int glad_conv1x1_ok(int C, int N, int OC);
/* out (B,OC,N) = w (OC,C) x (B,C,N) + b, then res + that when res (B,OC,N) is given */
void glad_conv1x1_forward(float *out, const float *x, const float *w, const float *b, const float *res, int B, int C, int N, int OC);
/* dx (B,C,N) += w^T dout (= with set; dx may be NULL); dw (OC,C) += sum_n dout x^T.
 * GLAD_ENOMEM (dw untouched, dx done) when the per-thread partials of dw
 * cannot be allocated */
int glad_conv1x1_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, int B, int C, int N, int OC,
                          int set);

#endif
