/* depthwise.c - depthwise 2-D convolution on channels-last (H,W,C) images,
 * as TFLite's DEPTHWISE_CONV_2D computes it: output channel c*mult+m sees
 * only input channel c; any kernel, stride, dilation and explicit (possibly
 * asymmetric, TF "SAME") padding; bias and a clamp [lo, hi] fused (RELU6 is
 * [0, 6], none is [-inf, inf]). Channels go in blocks of 16 accumulated in
 * registers over all taps; on x86-64 the row kernel is also built for AVX2
 * and picked at load time (no FMA, so both builds round alike).
 * Not the NCHW grouped conv of conv2d.c. */
#include <string.h>
#include "nn/nn.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DW_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DW_CLONES
#endif

#define CB 16

/* output row i: out[i,j,c*mult+m] = b + sum_{ky,kx} x[i*sh - pt + ky*dh, j*sw - pl + kx*dw, c] w[ky,kx,c*mult+m];
 * taps outside the image are zero padding */
DW_CLONES
static void dw_row(float *out, const float *x, const float *w, const float *b, int H, int W, int C, int mult, int kh,
                   int kw, int sh, int sw, int dh, int dw, int pt, int pl, int Wo, float lo, float hi, int i)
{
    int OC = C * mult, y0 = i * sh - pt;
    /* rows of the kernel inside the image: ky in [ky0, ky1) */
    int ky0 = 0, ky1 = kh;
    while (ky0 < kh && y0 + ky0 * dh < 0) ky0++;
    while (ky1 > ky0 && y0 + (ky1 - 1) * dh >= H) ky1--;
    for (int j = 0; j < Wo; j++) {
        int x0 = j * sw - pl, kx0 = 0, kx1 = kw;
        while (kx0 < kw && x0 + kx0 * dw < 0) kx0++;
        while (kx1 > kx0 && x0 + (kx1 - 1) * dw >= W) kx1--;
        float *o = out + ((size_t)i * Wo + j) * OC;
        if (mult == 1) {
            int c0 = 0;
            for (; c0 + CB <= C; c0 += CB) {
                float acc[CB];
                for (int k = 0; k < CB; k++) acc[k] = b ? b[c0 + k] : 0.0f;
                for (int ky = ky0; ky < ky1; ky++)
                    for (int kx = kx0; kx < kx1; kx++) {
                        const float *xp = x + ((size_t)(y0 + ky * dh) * W + x0 + kx * dw) * C + c0;
                        const float *wp = w + ((size_t)ky * kw + kx) * OC + c0;
                        for (int k = 0; k < CB; k++) acc[k] += xp[k] * wp[k];
                    }
                for (int k = 0; k < CB; k++) o[c0 + k] = acc[k] < lo ? lo : acc[k] > hi ? hi : acc[k];
            }
            for (int c = c0; c < C; c++) {
                float a = b ? b[c] : 0.0f;
                for (int ky = ky0; ky < ky1; ky++)
                    for (int kx = kx0; kx < kx1; kx++)
                        a += x[((size_t)(y0 + ky * dh) * W + x0 + kx * dw) * C + c] * w[((size_t)ky * kw + kx) * OC + c];
                o[c] = a < lo ? lo : a > hi ? hi : a;
            }
        } else {
            for (int q = 0; q < OC; q++) o[q] = b ? b[q] : 0.0f;
            for (int ky = ky0; ky < ky1; ky++)
                for (int kx = kx0; kx < kx1; kx++) {
                    const float *xp = x + ((size_t)(y0 + ky * dh) * W + x0 + kx * dw) * C;
                    const float *wp = w + ((size_t)ky * kw + kx) * OC;
                    for (int c = 0; c < C; c++)
                        for (int m = 0; m < mult; m++) o[c * mult + m] += xp[c] * wp[c * mult + m];
                }
            for (int q = 0; q < OC; q++) o[q] = o[q] < lo ? lo : o[q] > hi ? hi : o[q];
        }
    }
}

// x is (H,W,C), w is (kh,kw,C*mult), b is (C*mult) or NULL, out is (Ho,Wo,C*mult)
void glad_depthwise_nhwc_forward(float *out, const float *x, const float *w, const float *b, int H, int W, int C,
                                 int mult, int kh, int kw, int sh, int sw, int dh, int dw, int pad_top, int pad_left,
                                 int Ho, int Wo, float lo, float hi)
{
    // each output row is written by one iteration only
    #pragma omp parallel for schedule(static) if ((long)Ho * Wo * C * mult * kh * kw > 100000)
    for (int i = 0; i < Ho; i++)
        dw_row(out, x, w, b, H, W, C, mult, kh, kw, sh, sw, dh, dw, pad_top, pad_left, Wo, lo, hi, i);
}
