/* conv1x1.c - 1x1 stride-1 convolutions (conv1x1.h): a per-pixel GEMM
 *   y[o][p] = b[o] + sum_i w[o][i] x[i][p]
 * whose M and N (channels) are small and K or N (pixels) large, where
 * per-image sgemm calls thread poorly. Forward and input gradient are the
 * 8 x 32 register tile of tile.h over (image, channel block, pixel block)
 * tasks of the whole batch; the weight gradient dw[o][i] = sum_p dy[o][p]
 * x[i][p] is the same tile on x transposed to pixels x channels, chunk by
 * chunk of pixels: over many pixels, chunks of 2048 pixels into per-thread
 * partials, added in thread order (results depend on the thread count by
 * rounding only); over few, each thread its own output-channel rows of dw. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/glad.h"
#include "nn/conv1x1.h"
#include "nn/cpu.h"
#include "nn/tile.h"

enum { PCH = 2048,     /* pixels per weight-gradient task */
       PK = 32768 };   /* floats of a packed chunk (forward, input gradient, weight gradient) */

/* pixels per packed chunk of rows channels: a multiple of 32, at most 256,
 * rows x chunk <= PK (a 128 KB stack buffer) for rows <= 1024 */
static int chunk(int rows)
{
    int p = PK / rows / 32 * 32;
    return p < 32 ? 32 : p > 256 ? 256 : p;
}

int glad_conv1x1_ok(int C, int N, int OC) { return glad_nn_avx512() && C % 8 == 0 && OC % 8 == 0 && N % 32 == 0 && C <= 1024 && OC <= 1024; }

/* y (B,M,N) = (or +=) a x (+ bias) (then res + that when res (B,M,N)), x (B,K,N), a[m][k] at a[m am + k ak]:
 * per (image, pixel chunk) the chunk's K rows are packed into a contiguous
 * stack buffer (read once as a few long streams the prefetchers follow,
 * instead of one stream per row) that serves every 8 output rows */
static void packed_gemm(float *y, const float *a, size_t am, size_t ak, const float *x, const float *bias, const float *res, int B,
                        int M, int K, int N, int add)
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
                for (int q = 0; q < np; q += 32) {
                    size_t at = ((size_t)n * M + m) * N + p0 + q;
                    glad_tile8x32r(y + at, (size_t)N, a + (size_t)m * am, ak, am, pk + q, (size_t)np, K, 1.0f, bias ? bias + m : NULL,
                                   res ? res + at : add ? y + at : NULL, (size_t)N);
                }
        }
}

/* dw rows o0 .. o1 - 1 (OC,C) += sum_p dy[o][p] x[i][p] over the np pixels
 * from dy and x (rows N apart; C % 32 == 0): chunk by chunk of pixels, x
 * transposed into a stack buffer xt[p][i] (32-pixel runs of C rows, so the
 * reads are C short sequential streams), then the 8 x 32 register tile with
 * k the pixel: dy's 8 rows broadcast, xt's rows the vectors. This replaces
 * OpenBLAS's sgemm (NoTrans x Trans), whose AVX2 kernel on this layout ran
 * at 60-69 GFLOP/s on DDAD-S's shapes against the forward tile's ~125, one
 * thread. Sums of a chunk run over its pixels in order, then add into dw. */
__attribute__((target("avx512f"))) static void dw_rows(float *dw, const float *dy, const float *x, int C, int N, int o0, int o1,
                                                        int np)
{
    float xt[PK] __attribute__((aligned(64)));
    int pix = chunk(C);
    for (int p0 = 0; p0 < np; p0 += pix) {
        int nq = np - p0 < pix ? np - p0 : pix;
        for (int q = 0; q < nq; q += 32) glad_transpose_t32(xt + (size_t)q * C, (size_t)C, x + p0 + q, (size_t)N, C);
        for (int o = o0; o < o1; o += 8)
            for (int i0 = 0; i0 < C; i0 += 32)
                glad_tile8x32(dw + (size_t)o * C + i0, (size_t)C, dy + (size_t)o * N + p0, 1, (size_t)N, xt + i0, (size_t)C, nq, 1.0f,
                              NULL, 1);
    }
}

// x is (B,C,N), w is (OC,C), out is (B,OC,N)
void glad_conv1x1_forward(float *out, const float *x, const float *w, const float *b, const float *res, int B, int C, int N, int OC)
{
    packed_gemm(out, w, (size_t)C, 1, x, b, res, B, OC, C, N, 0);
}

// dout is (B,OC,N)
int glad_conv1x1_backward(float *dx, float *dw, const float *dout, const float *x, const float *w, int B, int C, int N, int OC,
                          int set)
{
    /* dx[c][p] (+)= sum_o w[o][c] dy[o][p] */
    if (dx) packed_gemm(dx, w, 1, (size_t)C, dout, NULL, NULL, B, C, OC, N, !set);
    int nth = omp_get_max_threads(), nch = (N + PCH - 1) / PCH;
    size_t nw = (size_t)OC * C;
    /* channels not in 32s (the tile's width): OpenBLAS image by image, threading
     * each product (an sgemm inside even a one-thread region would open a nested team) */
    if (C % 32) {
        for (int n = 0; n < B; n++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, N, 1.0f, dout + (size_t)n * OC * N, N, x + (size_t)n * C * N,
                        N, 1.0f, dw, C);
        return 0;
    }
    /* one thread, or few pixels: each thread its own output-channel rows,
     * every image's pixels (no partials; with few pixels x is transposed
     * once per thread, cheap) */
    if (nth < 2 || (long)B * N <= 2 * PCH) {
        int nob = OC / 8, G = nth < nob ? nth : nob;
        // groups of 8-row output blocks write disjoint rows of dw
        #pragma omp parallel for schedule(static) if (nth > 1 && (long)B * N * C * OC > 65536)
        for (int g = 0; g < G; g++)
            for (int n = 0; n < B; n++)
                dw_rows(dw, dout + (size_t)n * OC * N, x + (size_t)n * C * N, C, N, g * nob / G * 8, (g + 1) * nob / G * 8, N);
        return 0;
    }
    float *part = calloc((size_t)nth * nw, sizeof(float));
    if (!part) return GLAD_ENOMEM;
    // pixel chunks add into their thread's partial
    #pragma omp parallel num_threads(nth)
    {
        float *pp = part + (size_t)omp_get_thread_num() * nw;
        #pragma omp for schedule(static)
        for (int k = 0; k < B * nch; k++) {
            int n = k / nch, p0 = (k % nch) * PCH, np = N - p0 < PCH ? N - p0 : PCH;
            dw_rows(pp, dout + (size_t)n * OC * N + p0, x + (size_t)n * C * N + p0, C, N, 0, OC, np);
        }
    }
    for (int t = 0; t < nth; t++)
        for (size_t i = 0; i < nw; i++) dw[i] += part[(size_t)t * nw + i];
    free(part);
    return 0;
}
