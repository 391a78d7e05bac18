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

/* pk (rows, np) = the np pixels from p0 of each of the rows of src (rows N
 * apart): a pixel chunk's rows as contiguous runs, read once as a few long
 * streams the prefetchers follow instead of one stream per row */
static void pack(float *pk, const float *src, int rows, int N, int p0, int np)
{
    for (int r = 0; r < rows; r++) memcpy(pk + (size_t)r * np, src + (size_t)r * N + p0, sizeof(float) * np);
}

// x is (B,C,N), w is (OC,C), out is (B,OC,N)
void glad_conv1x1_forward(float *out, const float *x, const float *w, const float *b, int B, int C, int N, int OC)
{
    int pix = chunk(C), nck = (N + pix - 1) / pix;
    /* a packed chunk (C x pix, L1/L2) serves every channel block */
    // (image, pixel chunk) tasks write disjoint outputs; each packs into its own stack buffer
    #pragma omp parallel for collapse(2) schedule(static) if ((long)B * OC * C * N > 65536)
    for (int n = 0; n < B; n++)
        for (int ck = 0; ck < nck; ck++) {
            float pk[PK] __attribute__((aligned(64)));
            int p0 = ck * pix, np = N - p0 < pix ? N - p0 : pix;
            pack(pk, x + (size_t)n * C * N, C, N, p0, np);
            for (int ob = 0; ob < OC; ob += 8)
                for (int q = 0; q < np; q += 32)
                    glad_tile8x32(out + ((size_t)n * OC + ob) * N + p0 + q, (size_t)N, w + (size_t)ob * C, 1, (size_t)C, pk + q,
                                  (size_t)np, C, 1.0f, b ? b + ob : NULL, 0);
        }
}

// dout is (B,OC,N)
int glad_conv1x1_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, int B, int C, int N, int OC,
                          int set)
{
    if (dx) {
        int pix = chunk(OC), nck = (N + pix - 1) / pix;
        /* dx[c][p] (+)= sum_o w[o][c] dy[o][p], dout's chunk packed as above */
        // (image, pixel chunk) tasks write disjoint parts of dx
        #pragma omp parallel for collapse(2) schedule(static) if ((long)B * OC * C * N > 65536)
        for (int n = 0; n < B; n++)
            for (int ck = 0; ck < nck; ck++) {
                float pk[PK] __attribute__((aligned(64)));
                int p0 = ck * pix, np = N - p0 < pix ? N - p0 : pix;
                pack(pk, dout + (size_t)n * OC * N, OC, N, p0, np);
                for (int cb = 0; cb < C; cb += 8)
                    for (int q = 0; q < np; q += 32)
                        glad_tile8x32(dx + ((size_t)n * C + cb) * N + p0 + q, (size_t)N, w + cb, (size_t)C, 1, pk + q, (size_t)np, OC,
                                      1.0f, NULL, !set);
            }
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
