/* conv_nhwc.c - 2-D convolution on channels-last (H,W,C) images with TFLite
 * weights (OC,kh,kw,C): im2col into rows of kh*kw*C (the weight's own
 * layout) and sgemm, out (Ho*Wo, OC) = col (Ho*Wo, K) w^T (K, OC); a 1x1
 * stride-1 unpadded conv is the sgemm on x itself. Explicit top/left padding
 * (TF "SAME" may pad more at the bottom/right), dilation, bias, a clamp
 * [lo, hi] and an optional residual added after the clamp, all fused. The
 * output pixels are split into one contiguous slice per thread inside a
 * single parallel region (OpenBLAS runs single-threaded there), so a layer
 * costs one barrier. Not the NCHW conv of conv2d.c (no backward here).
 * In bf16 (nn/bf16.h) the GEMM takes bf16 operands with fp32 sums
 * (glad_bf16_gemm_packed; the weights packed once in the cache in use); the
 * epilogue stays fp32. */
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "nn/bf16.h"
#include "nn/nn.h"

size_t glad_conv2d_nhwc_workspace(int C, int kh, int kw, int Ho, int Wo, int direct)
{
    return direct ? 0 : (size_t)C * kh * kw * Ho * Wo;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CONV_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CONV_CLONES
#endif

/* o (n, OC) = clamp(o + b, lo, hi) (+ res) */
CONV_CLONES
static void epilogue(float *o, const float *b, const float *res, int n, int OC, float lo, float hi)
{
    for (int p = 0; p < n; p++) {
        float *r = o + (size_t)p * OC;
        if (b) for (int c = 0; c < OC; c++) r[c] += b[c];
        for (int c = 0; c < OC; c++) {
            float v = r[c];
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            r[c] = v;
        }
        if (res) {
            const float *q = res + (size_t)p * OC;
            for (int c = 0; c < OC; c++) r[c] += q[c];
        }
    }
}

/* col (n, K) rows for output pixels p0.. : col[p, (ky*kw+kx)*C + c] = x[i*sh - pt + ky*dh, j*sw - pl + kx*dw, c] or 0 */
static void im2col_rows(float *col, const float *x, int H, int W, int C, int kh, int kw, int sh, int sw, int dh, int dw,
                        int pt, int pl, int Wo, int p0, int n)
{
    int K = C * kh * kw;
    for (int p = p0; p < p0 + n; p++) {
        int i = p / Wo, j = p % Wo;
        float *r = col + (size_t)(p - p0) * K;
        for (int ky = 0; ky < kh; ky++) {
            int y = i * sh - pt + ky * dh;
            for (int kx = 0; kx < kw; kx++) {
                int xx = j * sw - pl + kx * dw;
                float *d = r + ((size_t)ky * kw + kx) * C;
                if (y < 0 || y >= H || xx < 0 || xx >= W) memset(d, 0, sizeof(float) * (size_t)C);
                else memcpy(d, x + ((size_t)y * W + xx) * C, sizeof(float) * (size_t)C);
            }
        }
    }
}

/* output pixels [p0, p1) in chunks small enough that the epilogue finds the
 * sgemm's output still in cache; col holds the slice's im2col rows */
static void conv_rows(float *out, const float *x, const float *w, const float *b, const float *res, int H, int W, int C,
                      int OC, int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, int Wo, float lo,
                      float hi, int direct, float *col, int p0, int p1, const uint16_t *wp, uint16_t *ap)
{
    int K = C * kh * kw, chunk = (int)(32768 / (OC + K)) + 1;
    for (int q0 = p0; q0 < p1; q0 += chunk) {
        int n = p1 - q0 < chunk ? p1 - q0 : chunk;
        const float *a = x + (size_t)q0 * C;
        if (!direct) {
            im2col_rows(col, x, H, W, C, kh, kw, sh, sw, dh, dw, pt, pl, Wo, q0, n);
            a = col;
        }
        float *o = out + (size_t)q0 * OC;
        if (wp) {   /* bf16: wp the packed weights, ap room for a chunk's packed rows */
            glad_bf16_pack_a(ap, a, (size_t)K, n, K);
            glad_bf16_gemm_packed(o, (size_t)OC, ap, wp, n, OC, K, 1.0f, 0);
        } else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, OC, K, 1.0f, a, K, w, K, 0.0f, o, OC);
        epilogue(o, b, res ? res + (size_t)q0 * OC : NULL, n, OC, lo, hi);
    }
}

// x is (H,W,C), w is (OC,kh,kw,C), b is (OC) or NULL, res is (Ho,Wo,OC) or NULL, out is (Ho,Wo,OC)
void glad_conv2d_nhwc_forward(float *out, const float *x, const float *w, const float *b, const float *res, int H,
                              int W, int C, int OC, int kh, int kw, int sh, int sw, int dh, int dw, int pad_top,
                              int pad_left, int Ho, int Wo, float lo, float hi, float *ws)
{
    int K = C * kh * kw, N = Ho * Wo;
    int direct = kh == 1 && kw == 1 && sh == 1 && sw == 1 && pad_top == 0 && pad_left == 0 && Ho == H && Wo == W;
    /* enough rows per slice that the sgemm stays efficient */
    long work = (long)N * OC * K;
    int nt = work < 200000 ? 1 : 0;
    /* bf16: the packed weights from the cache in use (or packed here); without
     * memory for them or a thread's packed rows, that thread runs fp32 */
    const uint16_t *wp = NULL;
    uint16_t *wown = NULL;
    if (glad_precision_get() == GLAD_PREC_BF16 && !(wp = glad_bf16_cached_bt(w, K, OC))) {
        size_t nb = (glad_bf16_pb_elems(K, OC) * sizeof(uint16_t) + 63) / 64 * 64;
        if ((wown = aligned_alloc(64, nb))) glad_bf16_pack_b(wown, w, (size_t)K, 1, K, OC);
        wp = wown;
    }
    int chunk = (int)(32768 / (OC + K)) + 1;
    // each thread computes its own slice of output pixels (and of the im2col rows)
    #pragma omp parallel if (!nt)
    {
        int t = 0, T = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        T = omp_get_num_threads();
#endif
        int p0 = (int)((long)N * t / T), p1 = (int)((long)N * (t + 1) / T);
        uint16_t *ap = wp ? aligned_alloc(64, (glad_bf16_pa_elems(chunk, K) * sizeof(uint16_t) + 63) / 64 * 64) : NULL;
        conv_rows(out, x, w, b, res, H, W, C, OC, kh, kw, sh, sw, dh, dw, pad_top, pad_left, Wo, lo, hi, direct,
                  direct ? NULL : ws + (size_t)p0 * K, p0, p1, ap ? wp : NULL, ap);
        free(ap);
    }
    free(wown);
}
