/* wino3x3.c - the transforms of Winograd F(2x2,3x3) for the block driver
 * (winoblk.c), AVX-512F: 3x3 stride-1 padding-1 convolutions (the UNet's
 * forward, input and weight gradients) on the planes conv3x3.c gives it
 * (16 x 16 and more; from 32 x 32 on conv3x3.c picks wino4x4.c's F(4x4,3x3)
 * instead). Same transforms as winograd.c:
 *   Y = A^T [ (G g G^T) .* (B^T d B) ] A   per 2x2 output tile,
 * 16 products per tile and channel pair instead of 36. Unlike winograd.c (16 sgemm over
 * the whole image, whose V and M stream through memory), the driver has a
 * thread take 32 tiles at a time: their B^T d B for every input channel
 * (V: 16 x NI x 32, L2), then per 8 output channels the 16 products summed
 * over the inputs in 16 zmm accumulators (M: 16 x 8 x 32, L1), then A^T m A
 * into the output. Every output element sums its inputs in one fixed order
 * whatever the tiling, the threads or the batch. Not a general convolution:
 * H and W even, NO a multiple of 8 (glad_wino3x3_ok). */
#include <immintrin.h>
#include <string.h>
#include "nn/tile.h"
#include "nn/winograd.h"
#include "nn/wino3x3.h"

enum { NT = 32 };   /* tiles per block: two zmm of lanes */

int glad_wino3x3_ok(int NI, int H, int W, int NO)
{
    return H % 2 == 0 && W % 2 == 0 && NO % 8 == 0 && NI >= 16 && H * W >= 256;
}

/* plane strides of U and V (winoblk.h) */
static size_t ustride(int NI, int NO) { return glad_wino_plane((size_t)NI * NO); }
static size_t vstride(int NI) { return glad_wino_plane((size_t)NI * NT); }

/* U (16, NO/8, NI, 8) = G g G^T of filter (o, i); g[t] = w[(o NI + i) 9 + t],
 * or for the input gradient (flip) w[(i NO + o) 9 + 8 - t]: the transposed,
 * flipped kernel of a forward convolution with NI outputs */
static void weights(float *U, const float *w, int NI, int NO, int flip)
{
    int nob = NO / 8;
    size_t es = ustride(NI, NO);
    // (output block, input) pairs write disjoint 8-float runs of U
    #pragma omp parallel for schedule(static) if ((long)NI * NO > GLAD_WINO_PAR_FILTERS)
    for (int f = 0; f < nob * NI; f++) {
        int ob = f / NI, i = f % NI;
        float *u8 = U + (size_t)f * 8;
        for (int o8 = 0; o8 < 8; o8++) {
            int o = ob * 8 + o8;
            float g[9], u[16];
            for (int t = 0; t < 9; t++) g[t] = flip ? w[((size_t)i * NO + o) * 9 + 8 - t] : w[((size_t)o * NI + i) * 9 + t];
            glad_winograd3x3_filter(u, g);
            for (int e = 0; e < 16; e++) u8[e * es + o8] = u[e];
        }
    }
}

/* V (16, NI, NT) = B^T d B (glad_wino22_bt) for the tiles of the segments,
 * d the 4x4 patch at padded row 2 ti, column 2 tj; lanes past the block
 * stay zero */
__attribute__((target("avx512f"))) static void input_block(float *V, const float *xp, int NI, int H, int Wp,
                                                            const glad_wino_seg *sg, int nseg, int nt)
{
    size_t plane = (size_t)(H + 2) * Wp, vs = vstride(NI);
    if (nt < NT)
        for (int e = 0; e < 16; e++)
            for (int c = 0; c < NI; c++) memset(V + e * vs + (size_t)c * NT + nt, 0, sizeof(float) * (NT - nt));
    for (int k = 0; k < nseg; k++)
        for (int j0 = 0; j0 < sg[k].L; j0 += 16) {
            glad_wino22_mask m = glad_wino22_masks(sg[k].L - j0 < 16 ? sg[k].L - j0 : 16);
            size_t lane = (size_t)sg[k].s + j0;
            for (int c = 0; c < NI; c++) {
                __m512 v[16];
                glad_wino22_bt(v, xp + (size_t)c * plane + (size_t)(2 * sg[k].ti) * Wp + 2 * (sg[k].tj + j0), Wp, m);
                for (int e = 0; e < 16; e++) _mm512_mask_storeu_ps(V + e * vs + (size_t)c * NT + lane, m.s, v[e]);
            }
        }
}

/* M (16, 8, NT): for each e, M_e[o][t] = sum_i U_e[ob][i][o] V_e[i][t] */
static void gemm_block(float *M, const float *V, const float *U, int NI, int nob, int ob)
{
    for (int e = 0; e < 16; e++)
        glad_tile8x32(M + (size_t)e * 8 * NT, NT, U + e * ustride(NI, 8 * nob) + (size_t)ob * NI * 8, 8, 1, V + e * vstride(NI), NT,
                      NI, 1.0f, NULL, 0);
}

/* out rows of 8 channels from M: y = A^T m A (+ bias, then epilogue epi), written or added */
__attribute__((target("avx512f"))) static void output_block(float *out, const float *M, const float *bias,
                                                             const glad_conv_epi *epi, int o0, int H, int W,
                                                             const glad_wino_seg *sg, int nseg, int accumulate)
{
    for (int o = 0; o < 8; o++) {
        const float *m = M + (size_t)o * NT;
        float y[2][2 * NT];
        for (int j = 0; j < NT; j++) {
            float s[2][4];
            for (int q = 0; q < 4; q++) {   /* s = A^T m over the rows e / 4 */
                float m0 = m[(size_t)q * 8 * NT + j], m1 = m[(size_t)(4 + q) * 8 * NT + j];
                float m2 = m[(size_t)(8 + q) * 8 * NT + j], m3 = m[(size_t)(12 + q) * 8 * NT + j];
                s[0][q] = m0 + m1 + m2;
                s[1][q] = m1 - m2 - m3;
            }
            for (int r = 0; r < 2; r++) {   /* y = s A */
                y[r][2 * j] = s[r][0] + s[r][1] + s[r][2];
                y[r][2 * j + 1] = s[r][1] - s[r][2] - s[r][3];
            }
        }
        glad_wino_put_ch(out, y[0], 2 * NT, 2, H, W, bias, epi, o0 + o, sg, nseg, accumulate);
    }
}

const glad_wino_kernel glad_wino3x3_kernel = {2, 16, NT, weights, input_block, gemm_block, output_block};

/* ---- weight gradient (winoblk.c's loop): dM = A dY A^T, 4x4 from a tile's
 * 2x2 dout, dU_e = sum_t dM_e V_e^T, dw = G^T dU G */

int glad_wino3x3_dw_ok(int C, int H, int W, int OC) { return H % 2 == 0 && W % 2 == 0 && C % 32 == 0 && OC % 16 == 0; }

/* the 16 (B^T d B) vectors of 16 channels from a 4x4 patch d[r][c] = p[r rs + c cs] */
__attribute__((target("avx512f"))) static void btdb16(float *v, size_t vs, const float *p, size_t rs, size_t cs)
{
    __m512 d[4][4], t[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) d[r][c] = _mm512_load_ps(p + r * rs + c * cs);
    for (int c = 0; c < 4; c++) {
        t[0][c] = _mm512_sub_ps(d[0][c], d[2][c]);
        t[1][c] = _mm512_add_ps(d[1][c], d[2][c]);
        t[2][c] = _mm512_sub_ps(d[2][c], d[1][c]);
        t[3][c] = _mm512_sub_ps(d[1][c], d[3][c]);
    }
    for (int r = 0; r < 4; r++) {
        _mm512_storeu_ps(v + (4 * r) * vs, _mm512_sub_ps(t[r][0], t[r][2]));
        _mm512_storeu_ps(v + (4 * r + 1) * vs, _mm512_add_ps(t[r][1], t[r][2]));
        _mm512_storeu_ps(v + (4 * r + 2) * vs, _mm512_sub_ps(t[r][2], t[r][1]));
        _mm512_storeu_ps(v + (4 * r + 3) * vs, _mm512_sub_ps(t[r][1], t[r][3]));
    }
}

/* the 16 (A dY A^T) vectors of 16 channels from a 2x2 dout y[a][b] = p[a rs + b cs]:
 * A's rows (1,0), (1,1), (1,-1), (0,-1) on both sides */
__attribute__((target("avx512f"))) static void adya16(float *m, size_t ms, const float *p, size_t rs, size_t cs)
{
    __m512 y00 = _mm512_load_ps(p), y01 = _mm512_load_ps(p + cs), y10 = _mm512_load_ps(p + rs), y11 = _mm512_load_ps(p + rs + cs);
    __m512 r[4][2] = {{y00, y01},
                      {_mm512_add_ps(y00, y10), _mm512_add_ps(y01, y11)},
                      {_mm512_sub_ps(y00, y10), _mm512_sub_ps(y01, y11)},
                      {_mm512_sub_ps(_mm512_setzero_ps(), y10), _mm512_sub_ps(_mm512_setzero_ps(), y11)}};
    for (int q = 0; q < 4; q++) {
        _mm512_storeu_ps(m + (4 * q) * ms, r[q][0]);
        _mm512_storeu_ps(m + (4 * q + 1) * ms, _mm512_add_ps(r[q][0], r[q][1]));
        _mm512_storeu_ps(m + (4 * q + 2) * ms, _mm512_sub_ps(r[q][0], r[q][1]));
        _mm512_storeu_ps(m + (4 * q + 3) * ms, _mm512_sub_ps(_mm512_setzero_ps(), r[q][1]));
    }
}

/* dw += G^T dU G per filter, dU the thread partials summed in thread order */
static void dw_finish(float *dw, const float *scr, int nth, int C, int OC)
{
    size_t per = glad_wino_dw_floats(&glad_wino3x3_dwkernel, C, OC), ps = (size_t)OC * C;
    // filters are independent
    #pragma omp parallel for schedule(static) if (ps > GLAD_WINO_PAR_FILTERS)
    for (size_t f = 0; f < ps; f++) {
        double u[4][4], a[3][4];
        for (int e = 0; e < 16; e++) {
            double s = 0;
            for (int th = 0; th < nth; th++) s += scr[th * per + e * ps + f];
            u[e / 4][e % 4] = s;
        }
        for (int c = 0; c < 4; c++) {   /* a = G^T dU */
            a[0][c] = u[0][c] + 0.5 * (u[1][c] + u[2][c]);
            a[1][c] = 0.5 * (u[1][c] - u[2][c]);
            a[2][c] = 0.5 * (u[1][c] + u[2][c]) + u[3][c];
        }
        float *g = dw + f * 9;
        for (int j = 0; j < 3; j++) {   /* dw += a G */
            g[3 * j] += (float)(a[j][0] + 0.5 * (a[j][1] + a[j][2]));
            g[3 * j + 1] += (float)(0.5 * (a[j][1] - a[j][2]));
            g[3 * j + 2] += (float)(0.5 * (a[j][1] + a[j][2]) + a[j][3]);
        }
    }
}

const glad_wino_dwkernel glad_wino3x3_dwkernel = {2, 16, btdb16, adya16, dw_finish};
