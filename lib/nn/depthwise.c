/* depthwise.c - depthwise 2-D convolution on channels-last (H,W,C) images,
 * as TFLite's DEPTHWISE_CONV_2D computes it: output channel c*mult+m sees
 * only input channel c; any kernel, stride, dilation and explicit (possibly
 * asymmetric, TF "SAME") padding; bias and a clamp [lo, hi] fused (RELU6 is
 * [0, 6], none is [-inf, inf]). Channels go in blocks of 16 accumulated in
 * registers over all taps; on x86-64 the row kernel is also built for AVX2
 * and picked at load time (no FMA, so both builds round alike). With one
 * output channel per input channel (mult 1, MobileNet's case) an AVX-512F
 * CPU (nn/cpu.h) runs glad_dw_row_avx512 (nhwc.h) instead: FMA, four output pixels per
 * weight load, masked channel tails; it rounds differently from the portable
 * row (one rounding per tap instead of two), which GLAD_NO_AVX512=1 keeps.
 * Not the NCHW grouped conv of conv2d.c. */
#include <string.h>
#include "nn/cpu.h"
#include "nn/nhwc.h"
#include "nn/nn.h"
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DW_AVX512 1
#endif

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

#ifdef DW_AVX512
/* the taps ky in [ky0, ky1) x kx in [kx0, kx1) of output pixel (y0, x0)'s
 * channels [c0, c0+16) under mask k, summed over the taps in order */
__attribute__((target("avx512f"), always_inline)) static inline __m512 dw_px(const float *x, const float *w, __m512 acc,
                                                                           __mmask16 k, int W, int C, int kw, int dh,
                                                                           int dw, int y0, int x0, int ky0, int ky1,
                                                                           int kx0, int kx1)
{
    for (int ky = ky0; ky < ky1; ky++)
        for (int kx = kx0; kx < kx1; kx++)
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + ((size_t)(y0 + ky * dh) * W + x0 + kx * dw) * C),
                                  _mm512_maskz_loadu_ps(k, w + ((size_t)ky * kw + kx) * C), acc);
    return acc;
}

/* dw_row for mult 1 into orow (Wo, C), output row i, its first nc channels: columns whose taps all lie inside the image go four at
 * a time (one weight load serves four pixels); the edges one at a time */
__attribute__((target("avx512f"))) void glad_dw_row_avx512(float *orow, const float *x, const float *w, const float *b,
                                                           int H, int W, int C, int nc, int kh, int kw, int sh, int sw, int dh,
                                                           int dw, int pt, int pl, int Wo, float lo, float hi, int i)
{
    int y0 = i * sh - pt, ky0 = 0, ky1 = kh;
    while (ky0 < kh && y0 + ky0 * dh < 0) ky0++;
    while (ky1 > ky0 && y0 + (ky1 - 1) * dh >= H) ky1--;
    /* interior columns j in [ja, jb): j sw - pl >= 0 and j sw - pl + (kw-1) dw < W */
    int ja = (pl + sw - 1) / sw, lim = W - 1 + pl - (kw - 1) * dw, jb = lim < 0 ? 0 : lim / sw + 1;
    if (jb > Wo) jb = Wo;
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    size_t sx = (size_t)sw * C;
    for (int j = 0; j < Wo;) {
        float *o = orow + (size_t)j * C;
        int x0 = j * sw - pl;
        if (j >= ja && j + 4 <= jb) {
            for (int c0 = 0; c0 < nc; c0 += 16) {
                __mmask16 k = nc - c0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nc - c0)) - 1);
                __m512 a0 = b ? _mm512_maskz_loadu_ps(k, b + c0) : _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (int ky = ky0; ky < ky1; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        __m512 wv = _mm512_maskz_loadu_ps(k, w + ((size_t)ky * kw + kx) * C + c0);
                        const float *xp = x + ((size_t)(y0 + ky * dh) * W + x0 + kx * dw) * C + c0;
                        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp), wv, a0);
                        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp + sx), wv, a1);
                        a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp + 2 * sx), wv, a2);
                        a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp + 3 * sx), wv, a3);
                    }
                _mm512_mask_storeu_ps(o + c0, k, _mm512_min_ps(_mm512_max_ps(a0, vlo), vhi));
                _mm512_mask_storeu_ps(o + C + c0, k, _mm512_min_ps(_mm512_max_ps(a1, vlo), vhi));
                _mm512_mask_storeu_ps(o + 2 * (size_t)C + c0, k, _mm512_min_ps(_mm512_max_ps(a2, vlo), vhi));
                _mm512_mask_storeu_ps(o + 3 * (size_t)C + c0, k, _mm512_min_ps(_mm512_max_ps(a3, vlo), vhi));
            }
            j += 4;
            continue;
        }
        int kx0 = 0, kx1 = kw;
        while (kx0 < kw && x0 + kx0 * dw < 0) kx0++;
        while (kx1 > kx0 && x0 + (kx1 - 1) * dw >= W) kx1--;
        for (int c0 = 0; c0 < nc; c0 += 16) {
            __mmask16 k = nc - c0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nc - c0)) - 1);
            __m512 a = b ? _mm512_maskz_loadu_ps(k, b + c0) : _mm512_setzero_ps();
            a = dw_px(x + c0, w + c0, a, k, W, C, kw, dh, dw, y0, x0, ky0, ky1, kx0, kx1);
            _mm512_mask_storeu_ps(o + c0, k, _mm512_min_ps(_mm512_max_ps(a, vlo), vhi));
        }
        j++;
    }
}
#endif

// x is (H,W,C), w is (kh,kw,C*mult), b is (C*mult) or NULL, out is (Ho,Wo,C*mult)
void glad_depthwise_nhwc_forward(float *out, const float *x, const float *w, const float *b, int H, int W, int C,
                                 int mult, int kh, int kw, int sh, int sw, int dh, int dw, int pad_top, int pad_left,
                                 int Ho, int Wo, float lo, float hi)
{
#ifdef DW_AVX512
    if (mult == 1 && glad_nn_avx512()) {
        // each output row is written by one iteration only
        #pragma omp parallel for schedule(static) if ((long)Ho * Wo * C * kh * kw > 100000)
        for (int i = 0; i < Ho; i++)
            glad_dw_row_avx512(out + (size_t)i * Wo * C, x, w, b, H, W, C, C, kh, kw, sh, sw, dh, dw, pad_top, pad_left, Wo,
                               lo, hi, i);
        return;
    }
#endif
    // each output row is written by one iteration only
    #pragma omp parallel for schedule(static) if ((long)Ho * Wo * C * mult * kh * kw > 100000)
    for (int i = 0; i < Ho; i++)
        dw_row(out, x, w, b, H, W, C, mult, kh, kw, sh, sw, dh, dw, pad_top, pad_left, Wo, lo, hi, i);
}
