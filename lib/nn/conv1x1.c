/* conv1x1.c - 1x1 stride-1 convolutions (conv1x1.h): a per-pixel GEMM
 *   y[o][p] = b[o] + sum_i w[o][i] x[i][p]
 * whose M and N (channels) are small and K or N (pixels) large, where
 * per-image sgemm calls thread poorly. Forward and input gradient are the
 * 8 x 32 register tile of tile.h over (image, channel block, pixel block)
 * tasks of the whole batch; the weight gradient dw[o][i] = sum_p dy[o][p]
 * x[i][p] sums chunks of 2048 pixels with single-threaded sgemm into
 * per-thread partials, added in thread order (results depend on the thread
 * count by rounding only). */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "glad.h"
#include "nn/conv1x1.h"
#include "nn/cpu.h"
#include "nn/tile.h"

enum { PCH = 2048 };   /* pixels per weight-gradient chunk */

int glad_conv1x1_ok(int C, int N, int OC) { return glad_nn_avx512() && C % 8 == 0 && OC % 8 == 0 && N % 32 == 0; }

// x is (B,C,N), w is (OC,C), out is (B,OC,N)
void glad_conv1x1_forward(float *out, const float *x, const float *w, const float *b, int B, int C, int N, int OC)
{
    int nob = OC / 8, npb = N / 32;
    /* channel blocks innermost: they reuse the pixel block's inputs from L1 */
    // (image, pixel block, channel block) tiles write disjoint outputs
    #pragma omp parallel for collapse(3) schedule(static) if ((long)B * OC * C * N > 65536)
    for (int n = 0; n < B; n++)
        for (int pb = 0; pb < npb; pb++)
            for (int ob = 0; ob < nob; ob++)
                glad_tile8x32(out + ((size_t)n * OC + (size_t)ob * 8) * N + (size_t)pb * 32, (size_t)N, w + (size_t)ob * 8 * C, 1,
                              (size_t)C, x + (size_t)n * C * N + (size_t)pb * 32, (size_t)N, C, 1.0f, b ? b + ob * 8 : NULL, 0);
}

// dout is (B,OC,N)
int glad_conv1x1_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, int B, int C, int N, int OC)
{
    if (dx) {
        int ncb = C / 8, npb = N / 32;
        /* dx[c][p] += sum_o w[o][c] dy[o][p] */
        // (image, pixel block, channel block) tiles write disjoint parts of dx
        #pragma omp parallel for collapse(3) schedule(static) if ((long)B * OC * C * N > 65536)
        for (int n = 0; n < B; n++)
            for (int pb = 0; pb < npb; pb++)
                for (int cb = 0; cb < ncb; cb++)
                    glad_tile8x32(dx + ((size_t)n * C + (size_t)cb * 8) * N + (size_t)pb * 32, (size_t)N, w + (size_t)cb * 8,
                                  (size_t)C, 1, dout + (size_t)n * OC * N + (size_t)pb * 32, (size_t)N, OC, 1.0f, NULL, 1);
    }
    int nth = omp_get_max_threads(), nch = (N + PCH - 1) / PCH;
    size_t nw = (size_t)OC * C;
    /* few pixels: image by image, OpenBLAS threading each product (an
     * sgemm inside even a one-thread region would open a nested team) */
    if (nth < 2 || (long)B * N <= 2 * PCH) {
        for (int n = 0; n < B; n++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, N, 1.0f, dout + (size_t)n * OC * N, N, x + (size_t)n * C * N,
                        N, 1.0f, dw, C);
        return 0;
    }
    float *part = calloc((size_t)nth * nw, sizeof(float));
    if (!part) return GLAD_ENOMEM;
    // pixel chunks add into their thread's partial; each sgemm single-threaded
    #pragma omp parallel num_threads(nth)
    {
        float *pp = part + (size_t)omp_get_thread_num() * nw;
        #pragma omp for schedule(static)
        for (int k = 0; k < B * nch; k++) {
            int n = k / nch, p0 = (k % nch) * PCH, np = N - p0 < PCH ? N - p0 : PCH;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, np, 1.0f, dout + (size_t)n * OC * N + p0, N,
                        x + (size_t)n * C * N + p0, N, 1.0f, pp, C);
        }
    }
    for (int t = 0; t < nth; t++)
        for (size_t i = 0; i < nw; i++) dw[i] += part[(size_t)t * nw + i];
    free(part);
    return 0;
}
