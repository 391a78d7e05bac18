/* depthwise.c - depthwise 2-D convolution on channels-last (H,W,C) images,
 * as TFLite's DEPTHWISE_CONV_2D computes it: output channel c*mult+m sees
 * only input channel c; any kernel, stride, dilation and explicit (possibly
 * asymmetric, TF "SAME") padding; bias and a clamp [lo, hi] fused (RELU6 is
 * [0, 6], none is [-inf, inf]). Not the NCHW grouped conv of conv2d.c. */
#include <string.h>
#include "nn/nn.h"

// x is (H,W,C), w is (kh,kw,C*mult), b is (C*mult) or NULL, out is (Ho,Wo,C*mult)
void glad_depthwise_nhwc_forward(float *out, const float *x, const float *w, const float *b, int H, int W, int C,
                                 int mult, int kh, int kw, int sh, int sw, int dh, int dw, int pad_top, int pad_left,
                                 int Ho, int Wo, float lo, float hi)
{
    int OC = C * mult;
    /* out[i,j,c*mult+m] = b + sum_{ky,kx} x[i*sh - pad_top + ky*dh, j*sw - pad_left + kx*dw, c] w[ky,kx,c*mult+m];
     * taps outside the image are zero padding */
    // each output row is written by one iteration only
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < Ho; i++) {
        for (int j = 0; j < Wo; j++) {
            float *o = out + ((size_t)i * Wo + j) * OC;
            if (b) memcpy(o, b, sizeof(float) * (size_t)OC);
            else memset(o, 0, sizeof(float) * (size_t)OC);
            for (int ky = 0; ky < kh; ky++) {
                int y = i * sh - pad_top + ky * dh;
                if (y < 0 || y >= H) continue;
                for (int kx = 0; kx < kw; kx++) {
                    int xx = j * sw - pad_left + kx * dw;
                    if (xx < 0 || xx >= W) continue;
                    const float *xp = x + ((size_t)y * W + xx) * C, *wp = w + ((size_t)ky * kw + kx) * OC;
                    if (mult == 1)
                        for (int c = 0; c < C; c++) o[c] += xp[c] * wp[c];
                    else
                        for (int c = 0; c < C; c++)
                            for (int m = 0; m < mult; m++) o[c * mult + m] += xp[c] * wp[c * mult + m];
                }
            }
            for (int c = 0; c < OC; c++) o[c] = o[c] < lo ? lo : o[c] > hi ? hi : o[c];
        }
    }
}
