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
#include "core/glad.h"
#include "nn/conv1x1.h"
#include "nn/cpu.h"
#include "nn/tile.h"

enum { PCH = 2048,     /* pixels per weight-gradient chunk */
       PK = 32768 };   /* floats of a packed forward / input-gradient chunk */

/* pixels per packed chunk of rows channels: a multiple of 32, at most 256,
 * rows x chunk <= PK (a 128 KB stack buffer) for rows <= 1024 */
static int chunk(int rows)
{
    int p = PK / rows / 32 * 32;
    return p < 32 ? 32 : p > 256 ? 256 : p;
}

int glad_conv1x1_ok(int C, int N, int OC) { return glad_nn_avx512() && C % 8 == 0 && OC % 8 == 0 && N % 32 == 0 && C <= 1024 && OC <= 1024; }

/* y (B,M,N) = (or +=) a x (+ bias), x (B,K,N), a[m][k] at a[m am + k ak]:
 * per (image, pixel chunk) the chunk's K rows are packed into a contiguous
 * stack buffer (read once as a few long streams the prefetchers follow,
 * instead of one stream per row) that serves every 8 output rows */
static void packed_gemm(float *y, const float *a, size_t am, size_t ak, const float *x, const float *bias, int B, int M, int K,
                        int N, int add)
{
    int pix = chunk(K), nck = (N + pix - 1) / pix;
    // (image, pixel chunk) tasks write disjoint outputs; each packs into its own buffer
    #pragma omp parallel for collapse(2) schedule(static) if ((long)B * M * K * N > 65536)
    for (int n = 0; n < B; n++)
        for (int ck = 0; ck < nck; ck++) {
            float pk[PK] __attribute__((aligned(64)));
            int p0 = ck * pix, np = N - p0 < pix ? N - p0 : pix;
            for (int r = 0; r < K; r++) memcpy(pk + (size_t)r * np, x + ((size_t)n * K + r) * N + p0, sizeof(float) * np);
            for (int m = 0; m < M; m += 8)
                for (int q = 0; q < np; q += 32)
                    glad_tile8x32(y + ((size_t)n * M + m) * N + p0 + q, (size_t)N, a + (size_t)m * am, ak, am, pk + q, (size_t)np, K,
                                  1.0f, bias ? bias + m : NULL, add);
        }
}

// x is (B,C,N), w is (OC,C), out is (B,OC,N)
void glad_conv1x1_forward(float *out, const float *x, const float *w, const float *b, int B, int C, int N, int OC)
{
    packed_gemm(out, w, (size_t)C, 1, x, b, B, OC, C, N, 0);
}

// dout is (B,OC,N)
int glad_conv1x1_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, int B, int C, int N, int OC,
                          int set)
{
    /* dx[c][p] (+)= sum_o w[o][c] dy[o][p] */
    if (dx) packed_gemm(dx, w, 1, (size_t)C, dout, NULL, B, C, OC, N, !set);
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
