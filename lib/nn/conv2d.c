/* conv2d.c - 2-D convolution as im2col + sgemm, and its backward
 * (dW = dY col^T, dcol = W^T dY, col2im). 1x1 stride-1 convolutions skip
 * im2col; 3x3 stride-1 padding-1 ones use conv3x3.c (direct or Winograd
 * kernels) and 1x1 ones conv1x1.c when the CPU has AVX-512F. */
#include <string.h>
#include <cblas.h>
#include "nn/bf16k.h"
#include "nn/conv1x1.h"
#include "nn/conv3x3.h"
#include "nn/cpu.h"
#include "nn/nn.h"

static int out_size(int n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }

static int direct3(int kh, int kw, int stride, int pad) { return kh == 3 && kw == 3 && stride == 1 && pad == 1 && glad_nn_avx512(); }

size_t glad_conv2d_workspace(int C, int H, int W, int OC, int kh, int kw, int stride, int pad)
{
    int Ho = out_size(H, kh, stride, pad), Wo = out_size(W, kw, stride, pad);
    size_t n = (size_t)C * kh * kw * Ho * Wo;
    if (direct3(kh, kw, stride, pad)) {
        size_t f = glad_conv3x3_forward_floats(C, H, W, OC), b = glad_conv3x3_backward_floats(C, H, W, OC);
        n = f > b ? f : b;
    }
    return n;
}

size_t glad_conv2d_forward_workspace(int C, int H, int W, int OC, int kh, int kw, int stride, int pad)
{
    if (direct3(kh, kw, stride, pad)) return glad_conv3x3_forward_floats(C, H, W, OC);
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0) return 0;   /* no im2col (conv1x1 or sgemm on x) */
    return (size_t)C * kh * kw * out_size(H, kh, stride, pad) * out_size(W, kw, stride, pad);
}

/* valid output columns [j0, j1) for kernel column kx: 0 <= j*s - p + kx < W */
static void col_range(int Wo, int W, int s, int p, int kx, int *j0, int *j1)
{
    int a = p - kx > 0 ? (p - kx + s - 1) / s : 0, b = (W - 1 + p - kx) >= 0 ? (W - 1 + p - kx) / s + 1 : 0;
    *j0 = a < Wo ? a : Wo;
    *j1 = b < Wo ? b : Wo;
    if (*j1 < *j0) *j1 = *j0;
}

/* col (C*kh*kw, Ho*Wo) from one image x (C,H,W); stride-1 rows are contiguous copies */
static void im2col(float *col, const float *x, int C, int H, int W, int kh, int kw, int s, int p, int Ho, int Wo)
{
    // rows of col are independent
    #pragma omp parallel for schedule(static) if ((long)C * kh * kw * Ho * Wo > 32768)
    for (int r = 0; r < C * kh * kw; r++) {
        int c = r / (kh * kw), ky = (r / kw) % kh, kx = r % kw, j0, j1;
        col_range(Wo, W, s, p, kx, &j0, &j1);
        float *o = col + (size_t)r * Ho * Wo;
        const float *xc = x + (size_t)c * H * W;
        for (int i = 0; i < Ho; i++) {
            int y = i * s - p + ky;
            float *orow = o + (size_t)i * Wo;
            if (y < 0 || y >= H) { memset(orow, 0, sizeof(float) * Wo); continue; }
            const float *xr = xc + (size_t)y * W - p + kx;
            for (int j = 0; j < j0; j++) orow[j] = 0.0f;
            if (s == 1) memcpy(orow + j0, xr + j0, sizeof(float) * (size_t)(j1 - j0));
            else for (int j = j0; j < j1; j++) orow[j] = xr[(size_t)j * s];
            for (int j = j1; j < Wo; j++) orow[j] = 0.0f;
        }
    }
}

/* dx (C,H,W) += col2im(dcol) */
static void col2im(float *dx, const float *col, int C, int H, int W, int kh, int kw, int s, int p, int Ho, int Wo)
{
    // each channel of dx is written by its own rows only
    #pragma omp parallel for schedule(static) if ((long)C * kh * kw * Ho * Wo > 32768)
    for (int c = 0; c < C; c++) {
        float *xc = dx + (size_t)c * H * W;
        for (int k = 0; k < kh * kw; k++) {
            int ky = k / kw, kx = k % kw, j0, j1;
            col_range(Wo, W, s, p, kx, &j0, &j1);
            const float *o = col + ((size_t)c * kh * kw + k) * Ho * Wo;
            for (int i = 0; i < Ho; i++) {
                int y = i * s - p + ky;
                if (y < 0 || y >= H) continue;
                float *xr = xc + (size_t)y * W - p + kx;
                const float *orow = o + (size_t)i * Wo;
                if (s == 1) for (int j = j0; j < j1; j++) xr[j] += orow[j];
                else for (int j = j0; j < j1; j++) xr[(size_t)j * s] += orow[j];
            }
        }
    }
}

/* the epilogue of glad_conv_epi made afterwards, on image n's finished
 * output (OC,N), for the paths without it in their output writes: the
 * same adds in the same order */
static void epi_image(float *ob, const glad_conv_epi *epi, int n, int OC, int N)
{
    size_t base = (size_t)n * OC * N;
    // channels are independent
    #pragma omp parallel for schedule(static) if ((long)OC * N > 65536)
    for (int o = 0; o < OC; o++) {
        float *r = ob + (size_t)o * N;
        if (epi->emb) {
            float e = epi->emb[(size_t)n * OC + o];
            for (int i = 0; i < N; i++) r[i] = r[i] + e;
        }
        if (epi->res) {
            const float *q = epi->res + base + (size_t)o * N;
            for (int i = 0; i < N; i++) r[i] = q[i] + r[i];
        }
    }
}

// x is (B,C,H,W), w is (OC,C,kh,kw), out is (B,OC,Ho,Wo)
void glad_conv2d_forward(float *out, const float *x, const float *w, const float *b, int B, int C, int H, int W,
                         int OC, int kh, int kw, int stride, int pad, float *ws)
{
    glad_conv2d_forward_epi(out, x, NULL, NULL, w, b, B, C, H, W, OC, kh, kw, stride, pad, ws);
}

void glad_conv2d_forward_epi(float *out, const float *x, const glad_gnsilu *pre, const glad_conv_epi *epi, const float *w,
                             const float *b, int B, int C, int H, int W, int OC, int kh, int kw, int stride, int pad, float *ws)
{
    int Ho = out_size(H, kh, stride, pad), Wo = out_size(W, kw, stride, pad), K = C * kh * kw, N = Ho * Wo;
    int direct = kh == 1 && kw == 1 && stride == 1 && pad == 0;
    if (epi && !epi->emb && !epi->res) epi = NULL;
    if (direct3(kh, kw, stride, pad)) {
        glad_conv3x3_forward(out, x, pre, epi, w, b, B, C, H, W, OC, ws);
        return;
    }
    if (direct && glad_conv1x1_ok(C, N, OC)) {
        /* the tiles add a residual as they store; an embedding afterwards */
        const float *res = epi && !epi->emb ? epi->res : NULL;
        /* bf16.h's precision (without memory for the bf16 weights, fp32) */
        if (glad_precision_get() != GLAD_PREC_BF16 || glad_conv1x1_forward_bf16(out, x, w, b, res, B, C, N, OC))
            glad_conv1x1_forward(out, x, w, b, res, B, C, N, OC);
        for (int n = 0; epi && !res && n < B; n++) epi_image(out + (size_t)n * OC * N, epi, n, OC, N);
        return;
    }
    for (int n = 0; n < B; n++) {
        const float *xb = x + (size_t)n * C * H * W;
        float *ob = out + (size_t)n * OC * N;
        const float *col = xb;
        if (!direct) { im2col(ws, xb, C, H, W, kh, kw, stride, pad, Ho, Wo); col = ws; }
        /* bias first, then out += W col */
        for (int o = 0; o < OC; o++) {
            float bv = b ? b[o] : 0.0f;
            float *r = ob + (size_t)o * N;
            for (int i = 0; i < N; i++) r[i] = bv;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, N, K, 1.0f, w, K, col, N, 1.0f, ob, N);
        if (epi) epi_image(ob, epi, n, OC, N);
    }
}

int glad_conv2d_gnsilu_ok(int kh, int kw, int stride, int pad) { return direct3(kh, kw, stride, pad); }

void glad_conv2d_forward_gnsilu(float *out, const float *x, const glad_gnsilu *pre, const float *w, const float *b, int B,
                                int C, int H, int W, int OC, float *ws)
{
    glad_conv3x3_forward(out, x, pre, NULL, w, b, B, C, H, W, OC, ws);
}

/* db[o] += sum of dout row o (double, fixed lane order) */
static void bias_grad(float *db, const float *gb, int OC, int N)
{
    // channels are independent
    #pragma omp parallel for schedule(static) if ((long)OC * N > 65536)
    for (int o = 0; o < OC; o++) {
        const float *r = gb + (size_t)o * N;
        double s = 0;
        #pragma omp simd reduction(+:s)
        for (int i = 0; i < N; i++) s += r[i];
        db[o] += (float)s;
    }
}

/* bias_grad image by image over the batch dout (B,OC,N) */
static void bias_grads(float *db, const float *dout, int B, int OC, int N)
{
    for (int n = 0; db && n < B; n++) bias_grad(db, dout + (size_t)n * OC * N, OC, N);
}

void glad_conv2d_backward_gnsilu(float *dx, float *dw, float *db, const float *dout, const float *x, const glad_gnsilu *pre,
                                 const float *w, int B, int C, int H, int W, int OC, float *ws, int dxmode)
{
    glad_conv3x3_backward(dx, dw, dout, x, pre, w, B, C, H, W, OC, ws, dxmode == GLAD_DX_SET);
    bias_grads(db, dout, B, OC, H * W);
}

// x is (B,C,H,W), dout is (B,OC,Ho,Wo)
void glad_conv2d_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w, int B,
                          int C, int H, int W, int OC, int kh, int kw, int stride, int pad, float *ws, int dxmode)
{
    int set = dxmode == GLAD_DX_SET, Ho = out_size(H, kh, stride, pad), Wo = out_size(W, kw, stride, pad), K = C * kh * kw, N = Ho * Wo;
    int direct = kh == 1 && kw == 1 && stride == 1 && pad == 0;
    if (direct3(kh, kw, stride, pad)) {
        glad_conv3x3_backward(dx, dw, dout, x, NULL, w, B, C, H, W, OC, ws, set);
        bias_grads(db, dout, B, OC, N);
        return;
    }
    if (direct && glad_conv1x1_ok(C, N, OC)) {
        /* bf16.h's precision: bf16 operands (mixed-precision training); its
         * scratch is allocated before anything is written */
        if (glad_precision_get() == GLAD_PREC_BF16 && glad_conv1x1_backward_bf16(dx, dw, dout, x, w, B, C, N, OC, set) == 0) {
            bias_grads(db, dout, B, OC, N);
            return;
        }
        if (glad_conv1x1_backward(dx, dw, dout, x, w, B, C, N, OC, set) == 0) {
            bias_grads(db, dout, B, OC, N);
            return;
        }
        dx = NULL;   /* done; without memory for its partials, dw falls to the loop below */
    }
    for (int n = 0; n < B; n++) {
        const float *xb = x + (size_t)n * C * H * W, *gb = dout + (size_t)n * OC * N;
        const float *col = xb;
        if (!direct) { im2col(ws, xb, C, H, W, kh, kw, stride, pad, Ho, Wo); col = ws; }
        /* dW (OC,K) += dY (OC,N) col^T (N,K) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, K, N, 1.0f, gb, N, col, N, 1.0f, dw, K);
        if (db) bias_grad(db, gb, OC, N);
        if (!dx) continue;
        float *dxb = dx + (size_t)n * C * H * W;
        if (direct) {
            /* dX (C,N) += W^T (C,OC) dY (OC,N) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, N, OC, 1.0f, w, K, gb, N, set ? 0.0f : 1.0f, dxb, N);
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, OC, 1.0f, w, K, gb, N, 0.0f, ws, N);
            if (set) memset(dxb, 0, sizeof(float) * (size_t)C * H * W);   /* col2im adds */
            col2im(dxb, ws, C, H, W, kh, kw, stride, pad, Ho, Wo);
        }
    }
}
