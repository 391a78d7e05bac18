/* winoblk.c - the Winograd block driver (winoblk.h): the forward loop over
 * blocks of tiles and the weight gradient's, for whichever kernel conv3x3.c
 * hands it (wino3x3.c's F(2x2,3x3), wino4x4.c's F(4x4,3x3)), on a padded
 * plane or band by band of one its caller makes per band. No transforms
 * here: the kernel's functions do every transform and product. Every output
 * sums its inputs in the kernel's fixed order whatever the blocks, the
 * threads or the batch; the weight gradient's partials depend on the thread
 * count only by rounding. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/glad.h"
#include "nn/bf16k.h"
#include "nn/tile.h"
#include "nn/winoblk.h"

/* the runs of tiles t0 .. t0 + nt - 1 of rows tw tiles wide; returns how many */
static int segments(glad_wino_seg *sg, int t0, int nt, int tw)
{
    int n = 0;
    for (int t = t0; t < t0 + nt;) {
        int ti = t / tw, tj = t % tw, L = tw - tj < t0 + nt - t ? tw - tj : t0 + nt - t;
        sg[n++] = (glad_wino_seg){ti, tj, t - t0, L};
        t += L;
    }
    return n;
}

size_t glad_wino_weight_floats(const glad_wino_kernel *k, int NI, int NO)
{
    return (size_t)k->ne * glad_wino_plane((size_t)NI * NO);
}

/* the nt tiles from tile tb + t0 (rows tw tiles wide) for output channel
 * blocks ob0 .. ob1 - 1: input transform into V, then per block of 8
 * output channels the products into M and the output transform. xp holds
 * padded rows x0 .. x0 + xh + 1. */
static void block(const glad_wino_kernel *k, float *V, float *M, float *out, const float *xp, int xh, int x0, const float *U,
                  const float *bias, const glad_conv_epi *epi, int NI, int H, int W, int NO, int accumulate, int tb, int nt, int ob0,
                  int ob1)
{
    glad_wino_seg sg[32], sx[32];
    int nseg = segments(sg, tb, nt, W / k->m);
    /* the input transform sees tile rows from x0 / m, xp's first */
    for (int q = 0; q < nseg; q++) { sx[q] = sg[q]; sx[q].ti -= x0 / k->m; }
    k->input(V, xp, NI, xh, W + 2, sx, nseg, nt);
    for (int ob = ob0; ob < ob1; ob++) {
        k->gemm(M, V, U, NI, NO / 8, ob);
        k->output(out, M, bias, epi, ob * 8, H, W, sg, nseg, accumulate);
    }
}

float *glad_wino_team_scratch(float *own, size_t floats, int *fail)
{
    float *p = own ? own : aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        #pragma omp atomic write
        *fail = 1;
    }
    #pragma omp barrier
    int stop;
    #pragma omp atomic read
    stop = *fail;
    if (stop) {
        if (p != own) free(p);
        return NULL;
    }
    return p;
}

/* every thread allocates its V and M before any output is touched, so a
 * failure leaves out as it was (the caller then runs the direct kernel,
 * which in accumulate mode must not add twice); called by every thread of
 * a parallel region, NULL (for all) when one failed */
static float *scratch(const glad_wino_kernel *k, int NI, int *fail)
{
    size_t nv = (size_t)k->ne * glad_wino_plane((size_t)NI * k->nt);
    return glad_wino_team_scratch(NULL, nv + (size_t)k->ne * 8 * k->nt, fail);
}

int glad_wino_drive(const glad_wino_kernel *k, float *out, const float *xp, const float *U, const float *bias, const glad_conv_epi *epi,
                    int NI, int H, int W, int NO, int accumulate)
{
    int NB = k->nt, T = (H / k->m) * (W / k->m), nblk = (T + NB - 1) / NB, nob = NO / 8, nth = omp_get_max_threads();
    /* split the output channels too when there are fewer blocks than threads */
    int G = nblk >= nth ? 1 : (nth + nblk - 1) / nblk;
    if (G > nob) G = nob;
    int fail = 0;
    // each thread has its own V and M
    #pragma omp parallel shared(fail) if ((long)NO * NI * H * W > 65536)
    {
        float *V = scratch(k, NI, &fail), *M = V ? V + (size_t)k->ne * glad_wino_plane((size_t)NI * NB) : NULL;
        if (V) {
            // (tile block, channel group) tasks write disjoint outputs
            #pragma omp for schedule(static)
            for (int task = 0; task < nblk * G; task++) {
                int b = task / G, g = task % G, t0 = b * NB;
                block(k, V, M, out, xp, H, 0, U, bias, epi, NI, H, W, NO, accumulate, t0, T - t0 < NB ? T - t0 : NB, g * nob / G,
                      (g + 1) * nob / G);
            }
        }
        free(V);
    }
    return fail ? GLAD_ENOMEM : 0;
}

int glad_wino_drive_bands(const glad_wino_kernel *k, float *out, float *xp, int bh, glad_wino_rows rows, void *ctx, const float *U,
                          const float *bias, const glad_conv_epi *epi, int NI, int H, int W, int NO)
{
    int m = k->m, NB = k->nt, tw = W / m, TR = H / m, Wp = W + 2, fail = 0;
    size_t per = (size_t)NI * (bh + 2) * Wp;
    /* each thread takes a slab of whole tile rows, band by band through its
     * own buffer: no barriers between bands and no band rows made by one
     * thread and read by another (a slab's first band makes its 2 rows
     * above again, the only rows made twice) */
    // each thread has its own V, M, band buffer and slab of output rows
    #pragma omp parallel shared(fail) if ((long)NO * NI * H * W > 65536)
    {
        float *V = scratch(k, NI, &fail), *M = V ? V + (size_t)k->ne * glad_wino_plane((size_t)NI * NB) : NULL;
        int nth = omp_get_num_threads(), th = omp_get_thread_num(), s0 = th * TR / nth * m, s1 = (th + 1) * TR / nth * m;
        float *xb = xp + (size_t)th * per;
        for (int r0 = s0; V && r0 < s1; r0 += bh) {
            int r1 = s1 - r0 < bh ? s1 : r0 + bh;
            /* the band's first two padded rows are the previous band's last two */
            if (r0 > s0)
                for (int c = 0; c < NI; c++) memcpy(xb + c * per / NI, xb + c * per / NI + (size_t)bh * Wp, sizeof(float) * 2 * Wp);
            rows(ctx, xb, bh, r0, r0 > s0 ? r0 + 2 : r0, r1 + 2);
            int T = (r1 - r0) / m * tw;
            for (int t0 = 0; t0 < T; t0 += NB)
                block(k, V, M, out, xb, bh, r0, U, bias, epi, NI, H, W, NO, 0, r0 / m * tw + t0, T - t0 < NB ? T - t0 : NB, 0, NO / 8);
        }
        free(V);
    }
    return fail ? GLAD_ENOMEM : 0;
}

/* ---- weight gradient. With Y = A^T M A per tile and M_e = sum_i U_e V_e:
 *   dM = A dY A^T (from the tile's dout),  dU_e[o][i] = sum_t dM_e[o][t] V_e[i][t],
 *   dw[o][i] = G^T dU[o][i] G,
 * exact since every output belongs to one tile. Channels-last inputs make
 * both transforms vectors over channels: a thread takes DT tiles, writes
 * V (ne, DT, C) and dM (ne, DT, OC), then adds dM_e^T V_e into its own
 * partial dU (ne, OC, C) by 8 x 32 register tiles; the kernel's finish sums
 * the partials in thread order. */

enum { DT = 32 };   /* tiles per weight-gradient block */

size_t glad_wino_dw_floats(const glad_wino_dwkernel *k, int C, int OC)
{
    /* dU, V and dM of a block, then one plane of dM and V as bf16 pair rows (half as many floats) */
    return (size_t)k->ne * OC * C + (size_t)k->ne * DT * (C + OC) + (size_t)DT * (C + OC) / 2;
}

// xt: x (C,H,W) channels-last and zero-bordered, position (i+1)(W+2)+j+1 at xt + pos C (64-byte aligned); dyt: dout alike
void glad_wino_dw_drive(const glad_wino_dwkernel *k, float *scr, int nth, const float *xt, const float *dyt, int C, int H, int W,
                        int OC, int bf16)
{
    int m = k->m, ne = k->ne, Wp = W + 2, tw = W / m, T = (H / m) * tw, nblk = (T + DT - 1) / DT;
    size_t per = glad_wino_dw_floats(k, C, OC), ps = (size_t)OC * C;
    // tile blocks add into their thread's own partial
    #pragma omp parallel num_threads(nth) if (nth > 1)
    {
        float *P = scr + (size_t)omp_get_thread_num() * per, *Vb = P + ne * ps, *Mb = Vb + (size_t)ne * DT * C;
        #pragma omp for schedule(static)
        for (int b = 0; b < nblk; b++) {
            int t0 = b * DT, nt = T - t0 < DT ? T - t0 : DT;
            for (int q = 0; q < nt; q++) {
                int ti = (t0 + q) / tw, tj = (t0 + q) % tw;
                const float *xq = xt + ((size_t)(m * ti) * Wp + m * tj) * C, *yq = dyt + ((size_t)(m * ti + 1) * Wp + m * tj + 1) * OC;
                for (int c0 = 0; c0 < C; c0 += 16) k->btdb(Vb + (size_t)q * C + c0, (size_t)DT * C, xq + c0, (size_t)Wp * C, (size_t)C);
                for (int o0 = 0; o0 < OC; o0 += 16)
                    k->adya(Mb + (size_t)q * OC + o0, (size_t)DT * OC, yq + o0, (size_t)Wp * OC, (size_t)OC);
            }
            if (bf16) {
                glad_bf16_dw_block(P, Mb, Vb, (uint16_t *)(Mb + (size_t)ne * DT * OC), ne, DT, nt, C, OC);
                continue;
            }
            for (int e = 0; e < ne; e++)
                for (int o0 = 0; o0 < OC; o0 += 8)
                    for (int i0 = 0; i0 < C; i0 += 32)
                        /* P_e[o0..+8][i0..+32] += sum_t dM_e[t][o] V_e[t][i] */
                        glad_tile8x32(P + e * ps + (size_t)o0 * C + i0, (size_t)C, Mb + (size_t)e * DT * OC + o0, (size_t)OC, 1,
                                      Vb + (size_t)e * DT * C + i0, (size_t)C, nt, 1.0f, NULL, 1);
        }
    }
}
