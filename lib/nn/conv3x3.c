/* conv3x3.c - direct 3x3 stride-1 padding-1 convolution for CPUs with
 * AVX-512F (used by conv2d.c, which falls back to im2col + sgemm elsewhere).
 * No im2col: the input is copied once into a zero-bordered plane per channel
 * (H+2) x (W+2), and output position p = i (W+2) + j of that padded width
 * reads the inputs at p + ky (W+2) + kx for every tap, so 32 consecutive
 * positions are two contiguous 16-float vectors whatever W is (the two pad
 * columns are computed and dropped). A tile is 8 output channels x 32
 * positions in 16 zmm accumulators:
 *   out[o][p] = sum_i sum_tap w(o, i, tap) xpad[i][p + off(tap)]
 * summed over i then taps in that fixed order for every output, so results do
 * not depend on the tiling, the thread count or the batch. The same kernel
 * gives the input gradient (a 3x3 convolution of dout with the weights
 * transposed and flipped). Planes of 16 x 16 or more whose shapes Winograd
 * accepts go to the Winograd block driver (winoblk.c) instead, forward,
 * input and weight gradients alike, and the choice of its kernel is made
 * here: wino4x4.c's F(4x4,3x3) (4x fewer products) from 32 x 32 with sides
 * multiples of 4, else wino3x3.c's F(2x2,3x3) (2.25x fewer); smaller planes
 * use the direct sums here. With a
 * glad_gnsilu the input copies apply GroupNorm+SiLU on the way (the tensor is
 * never stored); the Winograd forward on large planes makes those copies
 * band by band of rows, each just before the band's tiles are transformed.
 * Not a general convolution. */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "nn/nn.h"
#include "nn/bf16k.h"
#include "nn/conv3x3.h"
#include "nn/cpu.h"
#include "nn/tile.h"
#include "nn/wino3x3.h"
#include "nn/wino4x4.h"
#include "nn/winoblk.h"

size_t glad_conv3x3_pad_floats(int C, int H, int W)
{
    return (size_t)C * (H + 2) * (W + 2) + 32 + 2 * (size_t)(W + 2) + 2;
}

/* the GroupNorm+SiLU affine of channel c of image n, as
 * glad_groupnorm_silu_forward computes it */
static void gnsilu_affine(const glad_gnsilu *pre, int C, int n, int c, float *ga, float *be)
{
    int g = n * pre->groups + c / (C / pre->groups);
    *ga = pre->gamma[c] * pre->rstd[g];
    *be = pre->beta[c] - pre->mean[g] * *ga;
}

/* padded rows q0 .. q1 - 1 (of 0 .. H+1) of channel c of image n into o,
 * a plane of W + 2 floats a row from row b0 (o's row q - b0 is row q):
 * rows 0 and H+1 and columns 0 and W+1 zero, row i+1 image row i of x, or
 * of silu(groupnorm(x)) when pre is given: with coarse, the SiLU of
 * glad_groupnorm_silu_row_coarse (for the bf16 Winograd kernel, which
 * rounds the transformed rows to bf16); with pf, each row of channel c + 1
 * is prefetched while channel c's is made */
static void pad_channel(float *o, int b0, const float *x, int C, int c, int H, int W, const glad_gnsilu *pre, int n, int q0, int q1,
                        int coarse, int pf)
{
    int Wp = W + 2;
    const float *xc = x + (size_t)c * H * W;
    float ga = 1, be = 0;
    if (pre) gnsilu_affine(pre, C, n, c, &ga, &be);
    for (int q = q0; q < q1; q++) {
        float *r = o + (size_t)(q - b0) * Wp;
        if (q == 0 || q == H + 1) { memset(r, 0, sizeof(float) * Wp); continue; }
        r[0] = 0;
        /* the band path reads x from memory a few rows per channel (8 KB of
         * a 256-wide bf16 band): too short a run for the hardware prefetcher
         * to ramp up, so each channel would start with cache misses */
        if (pf && c + 1 < C)
            for (int k = 0; k < W; k += 16) __builtin_prefetch(xc + (size_t)H * W + (size_t)(q - 1) * W + k);
        if (pre && coarse) glad_groupnorm_silu_row_coarse(r + 1, xc + (size_t)(q - 1) * W, W, ga, be);
        else if (pre) glad_groupnorm_silu_row(r + 1, xc + (size_t)(q - 1) * W, W, ga, be);
        else memcpy(r + 1, xc + (size_t)(q - 1) * W, sizeof(float) * W);
        r[W + 1] = 0;
    }
}

/* xp (C, H+2, W+2) zero border, then zero slack; the interior is x, or
 * silu(groupnorm(x)) of image n when pre is given (coarse: pad_channel's) */
static void pad_pre(float *xp, const float *x, int C, int H, int W, const glad_gnsilu *pre, int n, int coarse)
{
    size_t plane = (size_t)(H + 2) * (W + 2);
    /* each thread pads the same rows of every channel: the Winograd and
     * direct loops after this take their tiles in row order with static
     * schedules, so a thread then reads the rows it wrote, from its own
     * core's cache (split by channels instead, half of every tile's input
     * came from the other core: the 2-thread forward of a 32 x 128 x 128 plane
     * to 3 channels took 0.52 ms against 0.33 ms so, its 1-thread 0.48) */
    // row ranges are independent
    #pragma omp parallel if ((long)C * H * W > 32768)
    {
        int nth = omp_get_num_threads(), th = omp_get_thread_num(), q0 = th * (H + 2) / nth, q1 = (th + 1) * (H + 2) / nth;
        for (int c = 0; c < C; c++) pad_channel(xp + c * plane, 0, x, C, c, H, W, pre, n, q0, q1, coarse, 0);
    }
    memset(xp + (size_t)C * plane, 0, sizeof(float) * (32 + 2 * (size_t)(W + 2) + 2));
}

/* the Winograd forward's band rows (glad_wino_rows) of image n */
typedef struct { const float *x; const glad_gnsilu *pre; int C, H, W, n, coarse; } band_ctx;

static void band_rows_make(void *ctx, float *xp, int bh, int r0, int q0, int q1)
{
    const band_ctx *b = ctx;
    size_t plane = (size_t)(bh + 2) * (b->W + 2);
    for (int c = 0; c < b->C; c++) pad_channel(xp + c * plane, r0, b->x, b->C, c, b->H, b->W, b->pre, b->n, q0, q1, b->coarse, 1);
}

/* tile (8 x 32) = sum over nin input planes and 9 taps; w[o] points at output
 * channel o's weights, input i's tap t at w[o][i * si + toff[t]] */
__attribute__((target("avx512f"))) static void taps8x32(float *tile, const float *xp, size_t plane, int Wp, int nin,
                                                         const float *const *w, size_t si, const int *toff)
{
    __m512 a0[8], a1[8];
    for (int o = 0; o < 8; o++) { a0[o] = _mm512_setzero_ps(); a1[o] = _mm512_setzero_ps(); }
    int so[9];
    for (int t = 0; t < 9; t++) so[t] = (t / 3) * Wp + t % 3;
    for (int i = 0; i < nin; i++) {
        const float *xb = xp + (size_t)i * plane;
        size_t wi = (size_t)i * si;
        for (int t = 0; t < 9; t++) {
            __m512 v0 = _mm512_loadu_ps(xb + so[t]), v1 = _mm512_loadu_ps(xb + so[t] + 16);
            size_t k = wi + (size_t)toff[t];
            for (int o = 0; o < 8; o++) {
                __m512 wv = _mm512_set1_ps(w[o][k]);
                a0[o] = _mm512_fmadd_ps(wv, v0, a0[o]);
                a1[o] = _mm512_fmadd_ps(wv, v1, a1[o]);
            }
        }
    }
    for (int o = 0; o < 8; o++) { _mm512_storeu_ps(tile + o * 32, a0[o]); _mm512_storeu_ps(tile + o * 32 + 16, a1[o]); }
}

/* taps8x32's sums for 4 output channels and 64 positions (16 zmm
 * accumulators, four loads and four broadcasts per tap instead of two and
 * eight): for NO <= 4 (a network's 3-channel output conv, the input
 * gradient of its 3-channel input conv), where taps8x32 would compute 8
 * channels for at most 4 kept. Same order of sums: the same results. */
__attribute__((target("avx512f"))) static void taps4x64(float *tile, const float *xp, size_t plane, int Wp, int nin,
                                                         const float *const *w, size_t si, const int *toff)
{
    __m512 a[4][4];
    for (int o = 0; o < 4; o++)
        for (int j = 0; j < 4; j++) a[o][j] = _mm512_setzero_ps();
    int so[9];
    for (int t = 0; t < 9; t++) so[t] = (t / 3) * Wp + t % 3;
    for (int i = 0; i < nin; i++) {
        const float *xb = xp + (size_t)i * plane;
        size_t wi = (size_t)i * si;
        for (int t = 0; t < 9; t++) {
            __m512 v[4];
            for (int j = 0; j < 4; j++) v[j] = _mm512_loadu_ps(xb + so[t] + 16 * j);
            size_t k = wi + (size_t)toff[t];
            for (int o = 0; o < 4; o++) {
                __m512 wv = _mm512_set1_ps(w[o][k]);
                for (int j = 0; j < 4; j++) a[o][j] = _mm512_fmadd_ps(wv, v[j], a[o][j]);
            }
        }
    }
    for (int o = 0; o < 4; o++)
        for (int j = 0; j < 4; j++) _mm512_storeu_ps(tile + o * 64 + 16 * j, a[o][j]);
}

/* out (NO, H, W) (= or +=) conv of xp (NI planes, padded) with weights
 * w[o * so + i * si + toff[t]]; bias added and epilogue epi (of this image)
 * applied when given (= mode only) */
static void run(float *out, const float *xp, const float *w, const float *bias, const glad_conv_epi *epi, int NI, int NO, int H,
                int W, size_t so, size_t si, const int *toff, int accumulate)
{
    /* tiles of TP positions x OB channels: taps4x64 for at most 4 outputs
     * where the padding's slack (34 + 2 (W + 2) floats past the last
     * plane) covers its reads up to 65 floats past it */
    int wide = NO <= 4 && W >= 14, TP = wide ? 64 : 32, OB = wide ? 4 : 8;
    int Wp = W + 2, ntile = (H * Wp + TP - 1) / TP, nob = (NO + OB - 1) / OB;
    size_t plane = (size_t)(H + 2) * Wp;
    /* tiles outer: the channel blocks of one tile reuse its input rows from
     * L1/L2 (planes of large images exceed L2) */
    // (tile, channel block) pairs write disjoint outputs
    #pragma omp parallel for collapse(2) schedule(static) if ((long)NO * NI * H * W > 65536)
    for (int tl = 0; tl < ntile; tl++)
        for (int ob = 0; ob < nob; ob++) {
            float tile[8 * 32] __attribute__((aligned(64)));
            const float *wr[8];
            /* channels past NO repeat the last one; their rows are dropped */
            for (int o = 0; o < OB; o++) { int oc = ob * OB + o < NO ? ob * OB + o : NO - 1; wr[o] = w + (size_t)oc * so; }
            int p0 = tl * TP;
            if (wide) taps4x64(tile, xp + p0, plane, Wp, NI, wr, si, toff);
            else taps8x32(tile, xp + p0, plane, Wp, NI, wr, si, toff);
            int no = NO - ob * OB < OB ? NO - ob * OB : OB;
            /* copy the row segments of the tile, dropping the pad columns */
            int i = p0 / Wp, j = p0 % Wp;
            for (int k = 0; k < TP && i < H;) {
                int len = Wp - j < TP - k ? Wp - j : TP - k, valid = W - j < len ? W - j : len;
                for (int o = 0; o < no && valid > 0; o++) {
                    float *orow = out + (size_t)(ob * OB + o) * H * W + (size_t)i * W + j;
                    const float *tr = tile + o * TP + k;
                    if (accumulate) for (int q = 0; q < valid; q++) orow[q] += tr[q];
                    else if (!epi) {
                        float bv = bias ? bias[ob * OB + o] : 0.0f;
                        for (int q = 0; q < valid; q++) orow[q] = tr[q] + bv;
                    } else {
                        /* Winograd's row writer does the epilogue's adds in their order */
                        glad_wino_seg sg = {0, 0, 0, valid};
                        size_t at = (size_t)(ob * OB + o) * H * W + (size_t)i * W + j;
                        glad_wino_put(orow, tr, 0, 1, 0, bias ? bias[ob * OB + o] : 0.0f, epi->emb ? epi->emb + ob * OB + o : NULL,
                                      epi->res ? epi->res + at : NULL, &sg, 1, 0);
                    }
                }
                k += len;
                j += len;
                if (j == Wp) { j = 0; i++; }
            }
        }
}

/* the Winograd kernel for a conv of NI inputs and NO outputs on H x W, or
 * NULL: F(4x4,3x3) where its shape rules hold (planes of 32 x 32 and more,
 * where its fewer products outweigh its larger transforms), else F(2x2,3x3)
 * where its rules and 16 x 16 or more positions hold; below that (one block
 * of tiles per image) the direct kernel is faster */
static const glad_wino_kernel *wino(int NI, int H, int W, int NO)
{
    if (glad_wino4x4_ok(NI, H, W, NO)) return &glad_wino4x4_kernel;
    return H * W >= 256 && glad_wino3x3_ok(NI, H, W, NO) ? &glad_wino3x3_kernel : NULL;
}

/* output rows per band of the forward's Winograd loop (H: no bands): a
 * multiple of the tile side m whose C padded planes' rows (band + 2 rows
 * of W + 2 floats) take about BANDB bytes, 4 tile rows at least, and few
 * enough that every thread's band buffer fits in ws's room for the whole
 * padded planes. Planes whose padded copy takes under 8 BANDB (small) stay
 * in L2 or L3 between the padding and the transform, so one thread pads
 * them whole (bands measured 1.05-1.08x slower on 64 x 64 planes of C 64
 * and 128, 1.2-1.3x faster on 256 x 256 of C 32 and 64, one thread); with
 * more threads each takes its slab of rows as one band where ws's room
 * (SLAB_ROWS more rows for small planes) allows, in as few equal bands as
 * fit where not, so that it transforms the rows it padded itself from its
 * own core's cache, in blocks of whole tile rows (padded to the kernel's
 * block of tiles: a band's rows should fill them) */
enum { BANDB = 1 << 19, SLAB_ROWS = 12 };
static int small_plane(int C, int H, int W) { return (long)C * (H + 2) * (W + 2) * 4 < 8L * BANDB; }
static size_t slab_floats(int C, int H, int W) { return small_plane(C, H, W) ? (size_t)C * SLAB_ROWS * (W + 2) : 0; }
static int band_rows(int m, int C, int H, int W, int slabs)
{
    int nth = omp_get_max_threads();
    if (small_plane(C, H, W)) {
        long r = nth < 2 || !slabs ? 0 : ((H + 2 + SLAB_ROWS) / nth - 2) / m * m, S = (H / m + nth - 1) / nth * m;
        if (r < m) return H;
        long nb = (S + r - 1) / r, bh = ((S + nb - 1) / nb + m - 1) / m * m;
        return bh < H ? (int)bh : H;
    }
    long rows = BANDB / ((long)C * (W + 2) * 4) - 2, most = (H + 2) / nth - 2;
    if (rows < 4 * m) rows = 4 * m;
    if (rows > most) rows = most;
    rows = rows / m * m;
    return rows >= m && rows < H ? (int)rows : H;
}

static size_t wino_floats(int NI, int H, int W, int NO)
{
    const glad_wino_kernel *k = wino(NI, H, W, NO);
    return k ? glad_wino_weight_floats(k, NI, NO) : 0;
}

size_t glad_conv3x3_forward_floats(int C, int H, int W, int OC)
{
    return glad_conv3x3_pad_floats(C, H, W) + slab_floats(C, H, W) + wino_floats(C, H, W, OC);
}

/* image n of glad_conv3x3_forward: out, x and epi's tensors are the
 * batch's; k the Winograd kernel (NULL: the direct sums), kb its bf16 twin
 * when in use, Uk its transformed weights; bh its band rows; ws this
 * image's scratch (glad_conv3x3_pad_floats + slab_floats) */
static void forward1(float *out, const float *x, int n, const glad_gnsilu *pre, const glad_conv_epi *epi, const glad_wino_kernel *k,
                     const glad_wino_kernel *kb, const float *Uk, const float *w, const float *b, int bh, int C, int H, int W, int OC,
                     float *ws)
{
    static const int toff[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    size_t nx = (size_t)C * H * W, no = (size_t)OC * H * W;
    /* large planes band by band: a band's padded rows (GroupNorm+SiLU,
     * the zero border) are made just before its tiles read them, so they
     * are written and read in cache, not memory (a 256 x 256 plane of 64
     * channels pads to 17 MB); a thread without its Winograd scratch:
     * the direct kernel instead */
    band_ctx bc = {x + n * nx, pre, C, H, W, n, kb != NULL};
    glad_conv_epi en = {epi && epi->emb ? epi->emb + (size_t)n * OC : NULL, epi && epi->res ? epi->res + n * no : NULL}, *ep = epi ? &en : NULL;
    int fail = !k, padded = 0;
    if (k && bh < H) fail = glad_wino_drive_bands(k, out + n * no, ws, bh, band_rows_make, &bc, Uk, b, ep, C, H, W, OC);
    else if (k) {
        pad_pre(ws, x + n * nx, C, H, W, pre, n, kb != NULL);
        padded = 1;
        fail = glad_wino_drive(k, out + n * no, ws, Uk, b, ep, C, H, W, OC, 0);
    }
    if (fail) {
        /* the direct kernel sums in f32: the exact SiLU */
        if (!padded || (pre && kb)) pad_pre(ws, x + n * nx, C, H, W, pre, n, 0);
        run(out + n * no, ws, w, b, ep, C, OC, H, W, (size_t)C * 9, 9, toff, 0);
    }
}

// x is (B,C,H,W), w is (OC,C,3,3), out is (B,OC,H,W), epi's emb (B,OC) and res (B,OC,H,W); ws: glad_conv3x3_forward_floats
void glad_conv3x3_forward(float *out, const float *x, const glad_gnsilu *pre, const glad_conv_epi *epi, const float *w, const float *b,
                          int B, int C, int H, int W, int OC, float *ws)
{
    const glad_wino_kernel *k = wino(C, H, W, OC), *kb = k && glad_precision_get() == GLAD_PREC_BF16 ? glad_wino_bf16(k, C) : NULL;
    if (kb) k = kb;   /* bf16.h: the same transforms, bf16 products */
    /* bf16's U from the network's cache when one is in use */
    const float *Uc = kb ? glad_bf16_cached(kb, w, C, OC, 0) : NULL;
    float *U = k ? ws + glad_conv3x3_pad_floats(C, H, W) + slab_floats(C, H, W) : NULL;
    if (k && !Uc) k->weights(U, w, C, OC, 0);
    int nth = omp_get_max_threads(), done = 0;
    /* planes of 32 x 32 and less, several images: each thread takes whole
     * images, in its own scratch, the ops inside on one thread, where image
     * by image each op would split a block or two of tiles between threads
     * (bit for bit the same: every output's sums are the kernel's whatever
     * the split). DDAD-S's batch-4 forward at 128, 2 threads, alternating:
     * f32 -6..-9 %, bf16 -0..-7 %; with 64 x 64 planes too, no better */
    if (nth > 1 && B >= nth && H * W <= 32 * 32) {
        size_t nws = glad_conv3x3_pad_floats(C, H, W) + slab_floats(C, H, W);
        int fail = 0;
        // each thread has its own scratch and images
        #pragma omp parallel num_threads(nth) shared(fail)
        {
            float *tw = glad_wino_team_scratch(omp_get_thread_num() ? NULL : ws, nws, &fail);
            if (tw) {
                #pragma omp for schedule(static)
                for (int n = 0; n < B; n++) forward1(out, x, n, pre, epi, k, kb, Uc ? Uc : U, w, b, H, C, H, W, OC, tw);
                if (tw != ws) free(tw);
            }
        }
        done = !fail;
    }
    int bh = k ? band_rows(k->m, C, H, W, kb || H >= 64) : H;
    for (int n = 0; n < B && !done; n++) forward1(out, x, n, pre, epi, k, kb, Uc ? Uc : U, w, b, bh, C, H, W, OC, ws);
}

/* sums[o][t] = sum_p dy_o[p] x[p + off(t)] over npos padded-width positions
 * for 2 output channels (18 zmm accumulators; more would make GCC reload x
 * for every FMA); the last partial vector is masked so dy beyond npos reads
 * as zero */
__attribute__((target("avx512f"))) static void dw2(float *sums, const float *dy0, const float *dy1, const float *xb, int Wp,
                                                    int npos)
{
    __m512 a0[9], a1[9];
    for (int t = 0; t < 9; t++) { a0[t] = _mm512_setzero_ps(); a1[t] = _mm512_setzero_ps(); }
    int so[9];
    for (int t = 0; t < 9; t++) so[t] = (t / 3) * Wp + t % 3;
    int p = 0;
    for (; p + 16 <= npos; p += 16) {
        __m512 d0 = _mm512_loadu_ps(dy0 + p), d1 = _mm512_loadu_ps(dy1 + p);
        for (int t = 0; t < 9; t++) {
            __m512 v = _mm512_loadu_ps(xb + p + so[t]);
            a0[t] = _mm512_fmadd_ps(d0, v, a0[t]);
            a1[t] = _mm512_fmadd_ps(d1, v, a1[t]);
        }
    }
    if (p < npos) {
        __mmask16 m = (__mmask16)((1u << (npos - p)) - 1);
        __m512 d0 = _mm512_maskz_loadu_ps(m, dy0 + p), d1 = _mm512_maskz_loadu_ps(m, dy1 + p);
        for (int t = 0; t < 9; t++) {
            __m512 v = _mm512_maskz_loadu_ps(m, xb + p + so[t]);
            a0[t] = _mm512_fmadd_ps(d0, v, a0[t]);
            a1[t] = _mm512_fmadd_ps(d1, v, a1[t]);
        }
    }
    for (int t = 0; t < 9; t++) { sums[t] = _mm512_reduce_add_ps(a0[t]); sums[9 + t] = _mm512_reduce_add_ps(a1[t]); }
}

/* o[j C + c] = x[c W' + j] for 16 channels (rows ldx apart) and nj <= 16 positions */
__attribute__((target("avx512f"))) static void block_to_cl(float *o, size_t C, const float *x, size_t ldx, int nj)
{
    __m512 r[16];
    __mmask16 m = (__mmask16)(nj == 16 ? 0xffff : (1u << nj) - 1);
    for (int c = 0; c < 16; c++) r[c] = _mm512_maskz_loadu_ps(m, x + (size_t)c * ldx);
    glad_transpose16(r);
    for (int j = 0; j < nj; j++) _mm512_storeu_ps(o + (size_t)j * C, r[j]);
}

/* channels-last copy of the padded input: xt[q C + c] = xpad[c][q] for the
 * (H+2)(W+2) + 2 positions q of a padded plane (the last two, read past the
 * plane by the bottom-right taps of dropped positions, are zero); of
 * silu(groupnorm(x)) of image n when pre is given. A task is 16 channels x
 * a band of rows: its reads are 16 sequential streams (one per channel
 * plane), which the prefetchers follow. (Row by row across all C channels,
 * C streams of W floats each, the reads of a tensor not in cache waited on
 * memory: 95 ms of the DDAD-S f32 training step at 128, batch 4, one
 * thread, against 13 ms for the same copy of the cached dout.) */
static void pad_channels_last_pre(float *xt, const float *x, int C, int H, int W, const glad_gnsilu *pre, int n)
{
    enum { RB = 8 };   /* rows per task */
    int Wp = W + 2, ncb = C / 16, nrb = (H + RB - 1) / RB;
    memset(xt, 0, sizeof(float) * (size_t)C * Wp);
    memset(xt + (size_t)(H + 1) * Wp * C, 0, sizeof(float) * (size_t)C * (Wp + 2));
    /* row bands outer: a thread then copies the rows whose tiles the
     * Winograd weight gradient hands it next (its static share of tile
     * blocks, in row order), so it reads them from its own core's cache */
    // (row band, channel block) tasks write disjoint 16-channel lines of xt
    #pragma omp parallel for collapse(2) schedule(static) if ((long)C * H * W > 32768)
    for (int ib = 0; ib < nrb; ib++)
        for (int cb = 0; cb < ncb; cb++) {
            int c0 = cb * 16;
            float ga[16], be[16];
            for (int k = 0; pre && k < 16; k++) gnsilu_affine(pre, C, n, c0 + k, &ga[k], &be[k]);
            for (int i = ib * RB; i < H && i < (ib + 1) * RB; i++) {
                float *r = xt + (size_t)(i + 1) * Wp * C;
                /* the 16 channels' next rows, one row ahead: 16 streams of
                 * one row each per step are too short for the hardware
                 * prefetchers (the loads of x waited on memory) */
                if (i + 1 < H)
                    for (int k = 0; k < 16; k++)
                        for (int j = 0; j < W; j += 16) _mm_prefetch((const char *)(x + ((size_t)(c0 + k) * H + i + 1) * W + j), _MM_HINT_T0);
                memset(r + c0, 0, sizeof(float) * 16);
                memset(r + (size_t)(W + 1) * C + c0, 0, sizeof(float) * 16);
                /* 16 x 16 blocks transposed in registers (C % 16 == 0 here);
                 * with pre, 16 channels x 256 positions at a time go through
                 * a buffer */
                for (int j1 = 0; j1 < W; j1 += 256) {
                    int nj1 = W - j1 < 256 ? W - j1 : 256;
                    const float *src = x + ((size_t)c0 * H + i) * W + j1;
                    size_t ld = (size_t)H * W;
                    float buf[16 * 256];
                    if (pre) {
                        for (int k = 0; k < 16; k++) glad_groupnorm_silu_row(buf + k * 256, src + k * ld, nj1, ga[k], be[k]);
                        src = buf;
                        ld = 256;
                    }
                    for (int j0 = 0; j0 < nj1; j0 += 16)
                        block_to_cl(r + (size_t)(j1 + j0 + 1) * C + c0, (size_t)C, src + j0, ld, nj1 - j0 < 16 ? nj1 - j0 : 16);
                }
            }
        }
}

static void pad_channels_last(float *xt, const float *x, int C, int H, int W) { pad_channels_last_pre(xt, x, C, H, W, NULL, 0); }

/* acc[k][t] (16 channels) = sum_p dy_k[p] xt[(p + off(t)) C + c0 ..] for 3
 * output channels: vectors run over 16 input channels, so every load is one
 * aligned 64-byte line and dout is a broadcast; positions are summed in order */
__attribute__((target("avx512f"))) static void dw_cl(float *acc, const float *dy0, const float *dy1, const float *dy2,
                                                      const float *xt, int C, int Wp, int npos)
{
    __m512 a0[9], a1[9], a2[9];
    for (int t = 0; t < 9; t++) { a0[t] = _mm512_setzero_ps(); a1[t] = _mm512_setzero_ps(); a2[t] = _mm512_setzero_ps(); }
    size_t so[9];
    for (int t = 0; t < 9; t++) so[t] = (size_t)((t / 3) * Wp + t % 3) * C;
    for (int p = 0; p < npos; p++) {
        __m512 b0 = _mm512_set1_ps(dy0[p]), b1 = _mm512_set1_ps(dy1[p]), b2 = _mm512_set1_ps(dy2[p]);
        const float *xp = xt + (size_t)p * C;
        for (int t = 0; t < 9; t++) {
            __m512 v = _mm512_load_ps(xp + so[t]);
            a0[t] = _mm512_fmadd_ps(b0, v, a0[t]);
            a1[t] = _mm512_fmadd_ps(b1, v, a1[t]);
            a2[t] = _mm512_fmadd_ps(b2, v, a2[t]);
        }
    }
    for (int t = 0; t < 9; t++) {
        _mm512_storeu_ps(acc + t * 16, a0[t]);
        _mm512_storeu_ps(acc + (9 + t) * 16, a1[t]);
        _mm512_storeu_ps(acc + (18 + t) * 16, a2[t]);
    }
}

static size_t cl_floats(int C, int H, int W) { return (size_t)C * ((size_t)(H + 2) * (W + 2) + 2) + 16; }

/* the weight gradient's Winograd kernel, or NULL: F(4x4,3x3), else
 * F(2x2,3x3) from 16 x 16 positions on, as for the forward */
static const glad_wino_dwkernel *wino_dw(int C, int H, int W, int OC)
{
    if (glad_wino4x4_dw_ok(C, H, W, OC)) return &glad_wino4x4_dwkernel;
    return H * W >= 256 && glad_wino3x3_dw_ok(C, H, W, OC) ? &glad_wino3x3_dwkernel : NULL;
}

/* x's padded planes (channels-last when C % 16 == 0), dout's padded planes,
 * dout channels-last (Winograd weight gradient), then the input gradient's
 * Winograd weights */
size_t glad_conv3x3_backward_floats(int C, int H, int W, int OC)
{
    size_t a = glad_conv3x3_pad_floats(C, H, W), b = C % 16 ? 0 : cl_floats(C, H, W);
    return (a > b ? a : b) + glad_conv3x3_pad_floats(OC, H, W) + (wino_dw(C, H, W, OC) ? cl_floats(OC, H, W) : 0) +
           wino_floats(OC, H, W, C);
}

static float *align64(float *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* dw (OC,C,3,3) += sum_p dout[o][p] xpad[c][p + off(t)], dx (C,H,W) += the
 * input gradient (when dx != NULL; by Winograd kernel k when U, its flipped
 * weights, is given). x and dout are padded once each into ws; every dw
 * element is one (channel block, input channel) task's vector sum, so it is
 * thread-independent. With scr (nth thread scratches) the weight gradient
 * goes to Winograd kernel kd's partials instead (its finish ends it), its
 * products on bf16 operands with dwb. */
static void backward1(float *dx, float *dw, const float *dout, const float *x, const glad_gnsilu *pre, int n, const float *w,
                      const glad_wino_kernel *k, const float *U, const glad_wino_dwkernel *kd, float *scr, int nth, int C,
                      int H, int W, int OC, float *ws, int set, int dwb)
{
    int Wp = W + 2;
    size_t plane = (size_t)(H + 2) * Wp, na = glad_conv3x3_pad_floats(C, H, W), nb = C % 16 ? 0 : cl_floats(C, H, W);
    float *dp = ws + (na > nb ? na : nb);
    pad_pre(dp, dout, OC, H, W, NULL, 0, 0);
    /* dout at position p sits at (i+1, j+1) of its padded plane */
    const float *d0 = dp + Wp + 1;
    if (scr) {
        float *xt = align64(ws), *dyt = align64(dp + glad_conv3x3_pad_floats(OC, H, W));
        pad_channels_last_pre(xt, x, C, H, W, pre, n);
        pad_channels_last(dyt, dout, OC, H, W);
        glad_wino_dw_drive(kd, scr, nth, xt, dyt, C, H, W, OC, dwb);
    } else if (C % 16 == 0) {
        /* channels-last input, 64-byte aligned inside ws */
        float *xt = align64(ws);
        pad_channels_last_pre(xt, x, C, H, W, pre, n);
        int nob = (OC + 2) / 3, ncb = C / 16;
        // (channel block, input block) pairs write disjoint dw entries
        #pragma omp parallel for collapse(2) schedule(static) if ((long)OC * C * H * W > 65536)
        for (int ob = 0; ob < nob; ob++)
            for (int cb = 0; cb < ncb; cb++) {
                float acc[27 * 16];
                int o0 = ob * 3, o1 = o0 + 1 < OC ? o0 + 1 : OC - 1, o2 = o0 + 2 < OC ? o0 + 2 : OC - 1;
                dw_cl(acc, d0 + (size_t)o0 * plane, d0 + (size_t)o1 * plane, d0 + (size_t)o2 * plane, xt + cb * 16, C, Wp, H * Wp);
                for (int k = 0; k < 3 && o0 + k < OC; k++)
                    for (int t = 0; t < 9; t++)
                        for (int l = 0; l < 16; l++) dw[((size_t)(o0 + k) * C + cb * 16 + l) * 9 + t] += acc[(k * 9 + t) * 16 + l];
            }
    } else {
        float *xp = ws;
        pad_pre(xp, x, C, H, W, pre, n, 0);
        int nob = (OC + 1) / 2;
        // (channel block, input channel) pairs write disjoint dw entries
        #pragma omp parallel for collapse(2) schedule(static) if ((long)OC * C * H * W > 65536)
        for (int ob = 0; ob < nob; ob++)
            for (int c = 0; c < C; c++) {
                float s[18];
                int o0 = ob * 2, o1 = o0 + 1 < OC ? o0 + 1 : OC - 1;
                dw2(s, d0 + (size_t)o0 * plane, d0 + (size_t)o1 * plane, xp + (size_t)c * plane, Wp, H * Wp);
                for (int k = 0; k < 2 && o0 + k < OC; k++)
                    for (int t = 0; t < 9; t++) dw[((size_t)(o0 + k) * C + c) * 9 + t] += s[k * 9 + t];
            }
    }
    /* dx[c] += sum_o sum_t w[o][c][8 - t] dpad[o][p + off(t)]: the transposed, flipped kernel */
    if (dx && (!U || glad_wino_drive(k, dx, dp, U, NULL, NULL, OC, H, W, C, !set))) {
        static const int toff[9] = {8, 7, 6, 5, 4, 3, 2, 1, 0};
        run(dx, dp, w, NULL, NULL, OC, C, H, W, 9, (size_t)C * 9, toff, !set);
    }
}

// x is (B,C,H,W), dout is (B,OC,H,W); dw accumulates image by image; ws: glad_conv3x3_backward_floats
void glad_conv3x3_backward(float *dx, float *dw, const float *dout, const float *x, const glad_gnsilu *pre, const float *w,
                           int B, int C, int H, int W, int OC, float *ws, int set)
{
    size_t nx = (size_t)C * H * W, no = (size_t)OC * H * W, nu = wino_floats(OC, H, W, C);
    const glad_wino_kernel *k = dx ? wino(OC, H, W, C) : NULL, *kb = k && glad_precision_get() == GLAD_PREC_BF16 ? glad_wino_bf16(k, OC) : NULL;
    /* bf16.h (mixed-precision training): the input gradient by the bf16 twin,
     * its flipped U from the training step's cache (made once per step) or
     * made here (it fits the f32 kernel's room: F(2x2)'s 16 planes against
     * F(4x4)'s 36) */
    if (kb) k = kb;
    const float *Uc = kb ? glad_bf16_cached_flip(kb, w, OC, C) : NULL;
    float *U = k ? ws + glad_conv3x3_backward_floats(C, H, W, OC) - nu : NULL;
    if (k && !Uc) k->weights(U, w, OC, C, 1);
    /* Winograd's weight gradient sums into per-thread partials (without
     * their memory, the direct sums) */
    int nth = omp_get_max_threads();
    const glad_wino_dwkernel *kd = wino_dw(C, H, W, OC);
    /* bf16.h (mixed-precision training): F(2x2,3x3)'s transform-domain
     * products on bf16 operands (1.13-1.15x faster than its f32 ones on the
     * 16 x 16 planes of DDAD-S, C 96-192, batch 4, one thread). F(4x4,3x3)'s
     * shapes stay f32: its transforms magnify bf16's rounding (measured
     * 3.9e-2 of max |dw| against F(2x2)'s 4.6e-3, tests/test_train_bf16.c),
     * and F(2x2) in bf16 instead, though 1.06-1.16x faster alone, made the
     * DDAD-S training step at 128 slower (its larger V and dM per pixel) */
    int dwb = kd == &glad_wino3x3_dwkernel && glad_precision_get() == GLAD_PREC_BF16;
    size_t per = kd ? glad_wino_dw_floats(kd, C, OC) : 0;
    float *scr = kd ? calloc((size_t)nth * per, sizeof(float)) : NULL;
    /* small planes of several images: each thread takes whole images (its
     * own scratch, its own weight-gradient partial, the ops inside it on one
     * thread), where image by image every op would be a parallel region of
     * a block or two of tiles per thread: the backward of DDAD-S's 16 x 16
     * and 32 x 32 convs gained 1.1-1.4x from a second thread so (at 128,
     * batch 4, this takes its planes up to 128 x 128 of 32 channels). The direct
     * weight gradient (planes under 16 x 16) sums into a partial per thread
     * too, added to dw in thread order. The partials sum other tiles, so dw
     * rounds differently than image by image (it already depended on the
     * thread count); dx is the same. */
    size_t nw = (size_t)OC * C * 9;
    int byimg = nth > 1 && B >= nth && small_plane(C, H, W), done = 0;
    float *dwp = byimg && !scr ? calloc((size_t)nth * nw, sizeof(float)) : NULL;
    if (byimg && (scr || dwp)) {
        size_t nws = glad_conv3x3_backward_floats(C, H, W, OC) - nu;
        int fail = 0;
        // each thread has its own scratch, partial and images
        #pragma omp parallel num_threads(nth) shared(fail)
        {
            int th = omp_get_thread_num();
            float *tw = glad_wino_team_scratch(th ? NULL : ws, nws, &fail);
            if (tw) {
                #pragma omp for schedule(static)
                for (int n = 0; n < B; n++)
                    backward1(dx ? dx + n * nx : NULL, dwp ? dwp + (size_t)th * nw : dw, dout + n * no, x + n * nx, pre, n, w, k,
                              Uc ? Uc : U, kd, scr ? scr + (size_t)th * per : NULL, 1, C, H, W, OC, tw, set, dwb);
                if (tw != ws) free(tw);
            }
        }
        done = !fail;
        for (int t = 0; done && dwp && t < nth; t++)
            for (size_t i = 0; i < nw; i++) dw[i] += dwp[(size_t)t * nw + i];
    }
    free(dwp);
    for (int n = 0; n < B && !done; n++)
        backward1(dx ? dx + n * nx : NULL, dw, dout + n * no, x + n * nx, pre, n, w, k, Uc ? Uc : U, kd, scr, nth, C, H, W, OC, ws, set, dwb);
    if (scr) kd->finish(dw, scr, nth, C, OC);
    free(scr);
}
