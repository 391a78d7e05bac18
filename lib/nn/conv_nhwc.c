/* conv_nhwc.c - 2-D convolution on channels-last (H,W,C) images with TFLite
 * weights (OC,kh,kw,C): im2col into rows of kh*kw*C (the weight's own
 * layout) and one sgemm, out (Ho*Wo, OC) = col (Ho*Wo, K) w^T (K, OC); a 1x1
 * stride-1 unpadded conv is the sgemm on x itself. Explicit top/left padding
 * (TF "SAME" may pad more at the bottom/right), dilation, bias and a clamp
 * [lo, hi] fused. Not the NCHW conv of conv2d.c (no backward here). */
#include <string.h>
#include <cblas.h>
#include "nn/nn.h"

size_t glad_conv2d_nhwc_workspace(int C, int kh, int kw, int Ho, int Wo, int direct)
{
    return direct ? 0 : (size_t)C * kh * kw * Ho * Wo;
}

// x is (H,W,C), w is (OC,kh,kw,C), b is (OC) or NULL, out is (Ho,Wo,OC)
void glad_conv2d_nhwc_forward(float *out, const float *x, const float *w, const float *b, int H, int W, int C, int OC,
                              int kh, int kw, int sh, int sw, int dh, int dw, int pad_top, int pad_left, int Ho, int Wo,
                              float lo, float hi, float *ws)
{
    int K = C * kh * kw, N = Ho * Wo;
    int direct = kh == 1 && kw == 1 && sh == 1 && sw == 1 && pad_top == 0 && pad_left == 0 && Ho == H && Wo == W;
    const float *col = x;
    if (!direct) {
        /* col[i*Wo+j, (ky*kw+kx)*C + c] = x[i*sh - pad_top + ky*dh, j*sw - pad_left + kx*dw, c] or 0 */
        // each output pixel fills its own row of col
        #pragma omp parallel for schedule(static)
        for (int i = 0; i < Ho; i++)
            for (int j = 0; j < Wo; j++) {
                float *r = ws + ((size_t)i * Wo + j) * K;
                for (int ky = 0; ky < kh; ky++) {
                    int y = i * sh - pad_top + ky * dh;
                    for (int kx = 0; kx < kw; kx++) {
                        int xx = j * sw - pad_left + kx * dw;
                        float *d = r + ((size_t)ky * kw + kx) * C;
                        if (y < 0 || y >= H || xx < 0 || xx >= W) memset(d, 0, sizeof(float) * (size_t)C);
                        else memcpy(d, x + ((size_t)y * W + xx) * C, sizeof(float) * (size_t)C);
                    }
                }
            }
        col = ws;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, K, 1.0f, col, K, w, K, 0.0f, out, OC);
    // each pixel's OC outputs are independent
    #pragma omp parallel for schedule(static)
    for (int p = 0; p < N; p++) {
        float *o = out + (size_t)p * OC;
        for (int c = 0; c < OC; c++) {
            float v = o[c] + (b ? b[c] : 0.0f);
            o[c] = v < lo ? lo : v > hi ? hi : v;
        }
    }
}
