/* depthwise.c - depthwise 2-D convolution on channels-last (H,W,C) images,
 * as TFLite's DEPTHWISE_CONV_2D computes it: output channel c*mult+m sees
 * only input channel c; any kernel, stride, dilation and explicit (possibly
 * asymmetric, TF "SAME") padding; bias and a clamp [lo, hi] fused (RELU6 is
 * [0, 6], none is [-inf, inf]). Channels go in blocks of 16 accumulated in
 * registers over all taps; on x86-64 the row kernel is also built for AVX2
 * and picked at load time (no FMA, so both builds round alike). With one
 * output channel per input channel (mult 1, MobileNet's case) an AVX-512F
 * CPU (nn/cpu.h) runs glad_dw_row_avx512 (nhwc.h) instead: FMA, eight (or four) output pixels per
 * weight load, masked channel tails; it rounds differently from the portable
 * row (one rounding per tap instead of two), which GLAD_NO_AVX512=1 keeps.
 * Its twin glad_dw_row16_avx512 stores the same row rounded to bf16 for the
 * bf16 fused inverted-residual block (invres.c), whose projection GEMM then
 * reads it without a conversion pass; it rounds with AVX-512F integer ops
 * (as vcvtneps2bf16 would), so the fp32 kernel and it share one body and
 * run on CPUs without AVX512_BF16 too. In that block the expansion is stored
 * in bf16 as well (Ce even), and glad_dw_row16b_avx512 (AVX512_BF16, bf16
 * precision only) reads it: half the bytes of fp32 rows, each vector of 32
 * bf16 channels widened exactly to fp32 by a shift (even channels) and a
 * mask (odd ones), the weights packed to match (glad_dw_pack_eo, once per
 * model in the bf16 cache), at stride 1 the pixels a kernel row reads
 * widened once for its three taps, the taps' fp32 FMAs in the same order
 * as the fp32 row's, so its output is glad_dw_row16_avx512's on the widened
 * input, bit for bit; its sums stay fp32 (9 taps per channel: no pairs of
 * products for vdpbf16ps). Not the NCHW grouped conv of conv2d.c. */
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

/* v rounded to bf16 as vcvtneps2bf16 and glad_bf16_from_f32 round (nearest even; NaN quiet with its sign; a denormal
 * to a signed zero), one per 32-bit lane, with AVX-512F alone: the fp32 CPUs' kernel and this one share the row body */
__attribute__((target("avx512f"), always_inline)) static inline __m512i bf16_lanes(__m512 v)
{
    __m512i u = _mm512_castps_si512(v), hi = _mm512_srli_epi32(u, 16);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                                         _mm512_and_si512(hi, _mm512_set1_epi32(1)))), 16);
    __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    __mmask16 den = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
    return _mm512_mask_mov_epi32(r, den, _mm512_and_si512(hi, _mm512_set1_epi32(0x8000)));
}

/* channels [c0, c0+16) under mask k of a pixel: v clamped, stored as fp32 at o, or as bf16 at o16 when o16 is not NULL */
__attribute__((target("avx512f"), always_inline)) static inline void dw_store(float *o, uint16_t *o16, size_t at, __mmask16 k,
                                                                            __m512 v, __m512 vlo, __m512 vhi)
{
    v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
    if (o16) _mm512_mask_cvtepi32_storeu_epi16(o16 + at, k, bf16_lanes(v));
    else _mm512_mask_storeu_ps(o + at, k, v);
}

/* dw_row for mult 1 into orow (Wo, C) (or orow16 in bf16), output row i, its first nc channels: columns whose taps all lie
 * inside the image go eight at a time (one weight load serves eight pixels, and eight chains of FMA hide its latency),
 * then four; the edges one at a time. Each output sums its taps in the same order on every path */
__attribute__((target("avx512f"), always_inline)) static inline void dw_row_avx512(float *orow, uint16_t *orow16,
                                                                                 const float *x, const float *w,
                                                                                 const float *b, int H, int W, int C, int nc,
                                                                                 int kh, int kw, int sh, int sw, int dh, int dw,
                                                                                 int pt, int pl, int Wo, float lo, float hi,
                                                                                 int i)
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
        size_t at = (size_t)j * C;
        int x0 = j * sw - pl;
        if (j >= ja && j + 8 <= jb) {   /* 8 chains of FMA: enough to hide its latency; 4 are not */
            for (int c0 = 0; c0 < nc; c0 += 16) {
                __mmask16 k = nc - c0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nc - c0)) - 1);
                __m512 a0 = b ? _mm512_maskz_loadu_ps(k, b + c0) : _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                __m512 a4 = a0, a5 = a0, a6 = a0, a7 = a0;
                for (int ky = ky0; ky < ky1; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        __m512 wv = _mm512_maskz_loadu_ps(k, w + ((size_t)ky * kw + kx) * C + c0);
                        const float *xp = x + ((size_t)(y0 + ky * dh) * W + x0 + kx * dw) * C + c0;
                        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp), wv, a0);
                        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp + sx), wv, a1);
                        a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp + 2 * sx), wv, a2);
                        a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp + 3 * sx), wv, a3);
                        a4 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp + 4 * sx), wv, a4);
                        a5 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp + 5 * sx), wv, a5);
                        a6 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp + 6 * sx), wv, a6);
                        a7 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, xp + 7 * sx), wv, a7);
                    }
                dw_store(orow, orow16, at + c0, k, a0, vlo, vhi);
                dw_store(orow, orow16, at + C + c0, k, a1, vlo, vhi);
                dw_store(orow, orow16, at + 2 * (size_t)C + c0, k, a2, vlo, vhi);
                dw_store(orow, orow16, at + 3 * (size_t)C + c0, k, a3, vlo, vhi);
                dw_store(orow, orow16, at + 4 * (size_t)C + c0, k, a4, vlo, vhi);
                dw_store(orow, orow16, at + 5 * (size_t)C + c0, k, a5, vlo, vhi);
                dw_store(orow, orow16, at + 6 * (size_t)C + c0, k, a6, vlo, vhi);
                dw_store(orow, orow16, at + 7 * (size_t)C + c0, k, a7, vlo, vhi);
            }
            j += 8;
            continue;
        }
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
                dw_store(orow, orow16, at + c0, k, a0, vlo, vhi);
                dw_store(orow, orow16, at + C + c0, k, a1, vlo, vhi);
                dw_store(orow, orow16, at + 2 * (size_t)C + c0, k, a2, vlo, vhi);
                dw_store(orow, orow16, at + 3 * (size_t)C + c0, k, a3, vlo, vhi);
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
            dw_store(orow, orow16, at + c0, k, a, vlo, vhi);
        }
        j++;
    }
}

__attribute__((target("avx512f"))) void glad_dw_row_avx512(float *orow, const float *x, const float *w, const float *b,
                                                           int H, int W, int C, int nc, int kh, int kw, int sh, int sw, int dh,
                                                           int dw, int pt, int pl, int Wo, float lo, float hi, int i)
{
    dw_row_avx512(orow, NULL, x, w, b, H, W, C, nc, kh, kw, sh, sw, dh, dw, pt, pl, Wo, lo, hi, i);
}

__attribute__((target("avx512f"))) void glad_dw_row16_avx512(uint16_t *orow, const float *x, const float *w, const float *b,
                                                             int H, int W, int C, int nc, int kh, int kw, int sh, int sw,
                                                             int dh, int dw, int pt, int pl, int Wo, float lo, float hi, int i)
{
    dw_row_avx512(NULL, orow, x, w, b, H, W, C, nc, kh, kw, sh, sw, dh, dw, pt, pl, Wo, lo, hi, i);
}

/* ---- bf16 in, bf16 out (the bf16 fused block's depthwise conv on its expansion's bf16 rows): a vector of 32 bf16
 * channels widens exactly into two fp32 vectors, the even channels (each 32-bit lane's low half shifted 16 bits up) and
 * the odd ones (its high half, the low half cleared), so no shuffle; the weights and bias come packed to match
 * (glad_dw_pack_eo), and vcvtne2ps2bf16 + one vpermw put the rounded lanes back in channel order. The fp32 FMAs per tap
 * in the same order as dw_row_avx512: its numbers on x widened to fp32. */
#define DW16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

void glad_dw_pack_eo(float *d, const float *s, int taps, int C)
{
    int Cp = (C + 31) / 32 * 32;
    for (int t = 0; t < taps; t++) {
        const float *r = s + (size_t)t * C;
        float *o = d + (size_t)t * Cp;
        for (int c0 = 0; c0 < Cp; c0 += 32)
            for (int k = 0; k < 16; k++) {
                int e = c0 + 2 * k;
                o[c0 + k] = e < C ? r[e] : 0.0f;
                o[c0 + 16 + k] = e + 1 < C ? r[e + 1] : 0.0f;
            }
    }
}

/* the mask of the first n (may be <= 0, or over 32) of 32 channels */
static inline __mmask32 kmask(int n) { return n >= 32 ? (__mmask32)0xffffffffu : n <= 0 ? 0 : (__mmask32)((1u << n) - 1); }

/* 32 channels at p (mask k) widened: *e = the even ones, *o = the odd ones, fp32 */
DW16_TARGET __attribute__((always_inline)) static inline void widen(const uint16_t *p, __mmask32 k, __m512 *e, __m512 *o)
{
    __m512i v = _mm512_maskz_loadu_epi16(k, p);
    *e = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    *o = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u)));
}

/* one of widen's halves: the even channels (h 0) or the odd ones (h 1) */
DW16_TARGET __attribute__((always_inline)) static inline __m512 half(const uint16_t *p, __mmask32 k, int h)
{
    __m512i v = _mm512_maskz_loadu_epi16(k, p);
    return _mm512_castsi512_ps(h ? _mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u)) : _mm512_slli_epi32(v, 16));
}

/* even and odd lanes e, o of 32 channels clamped, rounded to bf16 (nearest even) and stored in channel order under k */
DW16_TARGET __attribute__((always_inline)) static inline void store32(uint16_t *p, __mmask32 k, __m512 e, __m512 o,
                                                                       __m512 vlo, __m512 vhi, __m512i perm)
{
    e = _mm512_min_ps(_mm512_max_ps(e, vlo), vhi);
    o = _mm512_min_ps(_mm512_max_ps(o, vlo), vhi);
    /* words 0-15 e's, 16-31 o's; perm interleaves them back: word 2m <- m, 2m+1 <- 16+m */
    _mm512_mask_storeu_epi16(p, k, _mm512_permutexvar_epi16(perm, (__m512i)_mm512_cvtne2ps_pbh(o, e)));
}

/* The three column paths of glad_dw_row16b_avx512, each its own function so that each gets the registers to itself
 * (inlined into one, GCC spilled the eight-pixel path's weights). All take o = orow at the first pixel, xr = x at the
 * first tap of its first pixel (row y0 + ky0 dh, column x0 + kx0 dw), the taps ky in [ky0, ky1) (rows sr bf16 apart in
 * x) x kx in [kx0, kx1) (sc apart), pixels sx apart in x and C in o, w and b packed (Cp a tap) from the first tap. */
#define DW16_ACC(q) __m512 e##q = be, o##q = bo;
#define DW16_TAP(q) { __m512 xe, xo; widen(xp + (q) * sx, k, &xe, &xo); \
        e##q = _mm512_fmadd_ps(xe, we, e##q); o##q = _mm512_fmadd_ps(xo, wo, o##q); }
#define DW16_OUT(q) store32(o + (size_t)(q) * C + c0, k, e##q, o##q, vlo, vhi, perm);
/* accumulator a##q += three taps u0 u1 u2 times the row's weights w0 w1 w2 (the stride-1 paths' reuse of widened pixels) */
#define DW16_F3(a, q, u0, u1, u2) a##q = _mm512_fmadd_ps(u0, w0, a##q); a##q = _mm512_fmadd_ps(u1, w1, a##q); \
        a##q = _mm512_fmadd_ps(u2, w2, a##q);
#define DW16_PERM _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, \
                                   4, 19, 3, 18, 2, 17, 1, 16, 0)
#define DW16_ARGS uint16_t *o, const uint16_t *xr, const float *w, const float *b, int C, int nc, int Cp, int nky, int nkx, \
                  size_t sr, size_t sc, size_t sx, float lo, float hi

/* eight pixels x 2 halves of 32 channels: 16 chains of FMA, one weight load serving eight pixels */
DW16_TARGET __attribute__((noinline)) static void dw16_px8(DW16_ARGS)
{
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    __m512i perm = DW16_PERM;
    for (int c0 = 0; c0 < nc; c0 += 32) {
        __mmask32 k = kmask(nc - c0);
        __m512 be = b ? _mm512_loadu_ps(b + c0) : _mm512_setzero_ps(), bo = b ? _mm512_loadu_ps(b + c0 + 16) : be;
        DW16_ACC(0) DW16_ACC(1) DW16_ACC(2) DW16_ACC(3) DW16_ACC(4) DW16_ACC(5) DW16_ACC(6) DW16_ACC(7)
        if (nkx == 3 && sc == sx) {   /* 3 taps a row at stride 1: the 10 pixels they read widened once, each serving up to
                                       * 3 taps (a third of the loads and widenings; 1.15-1.28x faster alone), a half at a
                                       * time (10 + 16 accumulators + 3 weights fit the 32 registers) */
            for (int ky = 0; ky < nky; ky++) {
                const float *wt = w + c0 + (size_t)ky * 3 * Cp;
                const uint16_t *xp = xr + ky * sr + c0;
                __m512 x0, x1, x2, x3, x4, x5, x6, x7, x8, x9;
#define W10(h) x0 = half(xp, k, h); x1 = half(xp + sx, k, h); x2 = half(xp + 2 * sx, k, h); \
        x3 = half(xp + 3 * sx, k, h); x4 = half(xp + 4 * sx, k, h); x5 = half(xp + 5 * sx, k, h); \
        x6 = half(xp + 6 * sx, k, h); x7 = half(xp + 7 * sx, k, h); x8 = half(xp + 8 * sx, k, h); \
        x9 = half(xp + 9 * sx, k, h);
                {
                    W10(0)
                    __m512 w0 = _mm512_loadu_ps(wt), w1 = _mm512_loadu_ps(wt + Cp), w2 = _mm512_loadu_ps(wt + 2 * Cp);
                    DW16_F3(e, 0, x0, x1, x2) DW16_F3(e, 1, x1, x2, x3) DW16_F3(e, 2, x2, x3, x4) DW16_F3(e, 3, x3, x4, x5)
                    DW16_F3(e, 4, x4, x5, x6) DW16_F3(e, 5, x5, x6, x7) DW16_F3(e, 6, x6, x7, x8) DW16_F3(e, 7, x7, x8, x9)
                }
                {
                    W10(1)
                    __m512 w0 = _mm512_loadu_ps(wt + 16), w1 = _mm512_loadu_ps(wt + Cp + 16);
                    __m512 w2 = _mm512_loadu_ps(wt + 2 * Cp + 16);
                    DW16_F3(o, 0, x0, x1, x2) DW16_F3(o, 1, x1, x2, x3) DW16_F3(o, 2, x2, x3, x4) DW16_F3(o, 3, x3, x4, x5)
                    DW16_F3(o, 4, x4, x5, x6) DW16_F3(o, 5, x5, x6, x7) DW16_F3(o, 6, x6, x7, x8) DW16_F3(o, 7, x7, x8, x9)
                }
#undef W10
            }
        } else
            for (int ky = 0; ky < nky; ky++)
                for (int kx = 0; kx < nkx; kx++) {
                    const float *wt = w + c0 + ((size_t)ky * nkx + kx) * Cp;
                    __m512 we = _mm512_loadu_ps(wt), wo = _mm512_loadu_ps(wt + 16);
                    const uint16_t *xp = xr + ky * sr + kx * sc + c0;
                    DW16_TAP(0) DW16_TAP(1) DW16_TAP(2) DW16_TAP(3) DW16_TAP(4) DW16_TAP(5) DW16_TAP(6) DW16_TAP(7)
                }
        DW16_OUT(0) DW16_OUT(1) DW16_OUT(2) DW16_OUT(3) DW16_OUT(4) DW16_OUT(5) DW16_OUT(6) DW16_OUT(7)
    }
}

/* four pixels: 8 chains */
DW16_TARGET __attribute__((noinline)) static void dw16_px4(DW16_ARGS)
{
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    __m512i perm = DW16_PERM;
    for (int c0 = 0; c0 < nc; c0 += 32) {
        __mmask32 k = kmask(nc - c0);
        __m512 be = b ? _mm512_loadu_ps(b + c0) : _mm512_setzero_ps(), bo = b ? _mm512_loadu_ps(b + c0 + 16) : be;
        DW16_ACC(0) DW16_ACC(1) DW16_ACC(2) DW16_ACC(3)
        if (nkx == 3 && sc == sx)   /* as dw16_px8's: the 6 pixels read widened once */
            for (int ky = 0; ky < nky; ky++) {
                const float *wt = w + c0 + (size_t)ky * 3 * Cp;
                const uint16_t *xp = xr + ky * sr + c0;
                for (int h = 0; h < 2; h++) {
                    __m512 x0 = half(xp, k, h), x1 = half(xp + sx, k, h), x2 = half(xp + 2 * sx, k, h);
                    __m512 x3 = half(xp + 3 * sx, k, h), x4 = half(xp + 4 * sx, k, h), x5 = half(xp + 5 * sx, k, h);
                    __m512 w0 = _mm512_loadu_ps(wt + 16 * h), w1 = _mm512_loadu_ps(wt + Cp + 16 * h);
                    __m512 w2 = _mm512_loadu_ps(wt + 2 * Cp + 16 * h);
                    if (h) { DW16_F3(o, 0, x0, x1, x2) DW16_F3(o, 1, x1, x2, x3) DW16_F3(o, 2, x2, x3, x4) DW16_F3(o, 3, x3, x4, x5) }
                    else { DW16_F3(e, 0, x0, x1, x2) DW16_F3(e, 1, x1, x2, x3) DW16_F3(e, 2, x2, x3, x4) DW16_F3(e, 3, x3, x4, x5) }
                }
            }
        else
            for (int ky = 0; ky < nky; ky++)
                for (int kx = 0; kx < nkx; kx++) {
                    const float *wt = w + c0 + ((size_t)ky * nkx + kx) * Cp;
                    __m512 we = _mm512_loadu_ps(wt), wo = _mm512_loadu_ps(wt + 16);
                    const uint16_t *xp = xr + ky * sr + kx * sc + c0;
                    DW16_TAP(0) DW16_TAP(1) DW16_TAP(2) DW16_TAP(3)
                }
        DW16_OUT(0) DW16_OUT(1) DW16_OUT(2) DW16_OUT(3)
    }
}

/* one (edge) pixel, its taps inside the image: four vectors of channels at a time (8 chains), then one at a time; the
 * weights of tap (ky, kx) at w + (ky kw + kx) Cp: kw here is the kernel's width, nkx only the taps run */
#define DW16_EACC(q) __mmask32 k##q = kmask(nc - c0 - 32 * (q)); \
        __m512 e##q = b ? _mm512_loadu_ps(b + c0 + 32 * (q)) : _mm512_setzero_ps(); \
        __m512 o##q = b ? _mm512_loadu_ps(b + c0 + 32 * (q) + 16) : e##q;
#define DW16_ETAP(q) { __m512 xe, xo, we = _mm512_loadu_ps(wt + 32 * (q)), wo = _mm512_loadu_ps(wt + 32 * (q) + 16); \
        widen(xp + 32 * (q), k##q, &xe, &xo); e##q = _mm512_fmadd_ps(xe, we, e##q); o##q = _mm512_fmadd_ps(xo, wo, o##q); }
#define DW16_EOUT(q) store32(o + c0 + 32 * (q), k##q, e##q, o##q, vlo, vhi, perm);
DW16_TARGET __attribute__((noinline)) static void dw16_px1(DW16_ARGS, int kw)
{
    __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    __m512i perm = DW16_PERM;
    int c0 = 0;
    for (; c0 + 128 <= nc; c0 += 128) {
        DW16_EACC(0) DW16_EACC(1) DW16_EACC(2) DW16_EACC(3)
        for (int ky = 0; ky < nky; ky++)
            for (int kx = 0; kx < nkx; kx++) {
                const float *wt = w + c0 + ((size_t)ky * kw + kx) * Cp;
                const uint16_t *xp = xr + ky * sr + kx * sc + c0;
                DW16_ETAP(0) DW16_ETAP(1) DW16_ETAP(2) DW16_ETAP(3)
            }
        DW16_EOUT(0) DW16_EOUT(1) DW16_EOUT(2) DW16_EOUT(3)
    }
    for (; c0 < nc; c0 += 32) {
        DW16_EACC(0)
        for (int ky = 0; ky < nky; ky++)
            for (int kx = 0; kx < nkx; kx++) {
                const float *wt = w + c0 + ((size_t)ky * kw + kx) * Cp;
                const uint16_t *xp = xr + ky * sr + kx * sc + c0;
                DW16_ETAP(0)
            }
        DW16_EOUT(0)
    }
}
#undef DW16_ACC
#undef DW16_TAP
#undef DW16_OUT
#undef DW16_F3
#undef DW16_PERM
#undef DW16_ARGS
#undef DW16_EACC
#undef DW16_ETAP
#undef DW16_EOUT

/* dw_row_avx512 on bf16 x into bf16 orow (nhwc.h): the same paths (eight interior pixels, four, then one at a time) */
DW16_TARGET void glad_dw_row16b_avx512(uint16_t *orow, const uint16_t *x, const float *w, const float *b, int H, int W, int C,
                                       int nc, int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, int Wo,
                                       float lo, float hi, int i)
{
    int y0 = i * sh - pt, ky0 = 0, ky1 = kh, Cp = (C + 31) / 32 * 32;
    while (ky0 < kh && y0 + ky0 * dh < 0) ky0++;
    while (ky1 > ky0 && y0 + (ky1 - 1) * dh >= H) ky1--;
    int ja = (pl + sw - 1) / sw, lim = W - 1 + pl - (kw - 1) * dw, jb = lim < 0 ? 0 : lim / sw + 1;
    if (jb > Wo) jb = Wo;
    size_t sr = (size_t)dh * W * C, sc = (size_t)dw * C, sx = (size_t)sw * C;
    const float *wr = w + (size_t)ky0 * kw * Cp;
    for (int j = 0; j < Wo;) {
        int x0 = j * sw - pl;
        /* x at the first tap (no row inside the image: no tap, the bias alone) */
        const uint16_t *xr = ky1 > ky0 && x0 >= 0 ? x + ((size_t)(y0 + ky0 * dh) * W + x0) * C : x;
        if (j >= ja && j + 8 <= jb) {
            dw16_px8(orow + (size_t)j * C, xr, wr, b, C, nc, Cp, ky1 - ky0, kw, sr, sc, sx, lo, hi);
            j += 8;
        } else if (j >= ja && j + 4 <= jb) {
            dw16_px4(orow + (size_t)j * C, xr, wr, b, C, nc, Cp, ky1 - ky0, kw, sr, sc, sx, lo, hi);
            j += 4;
        } else {
            int kx0 = 0, kx1 = kw;
            while (kx0 < kw && x0 + kx0 * dw < 0) kx0++;
            while (kx1 > kx0 && x0 + (kx1 - 1) * dw >= W) kx1--;
            if (ky1 > ky0 && kx1 > kx0) xr = x + ((size_t)(y0 + ky0 * dh) * W + x0 + kx0 * dw) * C;
            dw16_px1(orow + (size_t)j * C, xr, wr + (size_t)kx0 * Cp, b, C, nc, Cp, ky1 - ky0, kx1 - kx0, sr, sc, sx, lo, hi,
                     kw);
            j++;
        }
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
