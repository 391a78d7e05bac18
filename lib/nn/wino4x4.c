/* wino4x4.c - the transforms of Winograd F(4x4,3x3) for the block driver
 * (winoblk.c), AVX-512F: forward, input and weight gradients of 3x3
 * stride-1 padding-1 convolutions on planes of 32 x 32 and more whose sides
 * are multiples of 4 (conv3x3.c picks it there, wino3x3.c's F(2x2,3x3)
 * below). Per 4x4 output tile, with the points 0, 1, -1, 2, -2 (Lavin & Gray):
 *   Y = A^T [ (G g G^T) .* (B^T d B) ] A,   d the 6x6 input patch,
 * 36 products per tile and channel pair instead of F(2x2,3x3)'s 4 x 16 = 64
 * for the same 16 outputs. The driver's blocking with one zmm of lanes: a
 * thread takes 16 tiles, writes their B^T d B for every input channel
 * (V: 36 x NI x 16, L2), then per 8 output channels sums the 36 products over
 * the inputs in 8 accumulators (M: 36 x 8 x 16, L1) and writes A^T m A.
 * Every output sums its inputs in one fixed order whatever the tiling, the
 * threads or the batch. The transforms' constants (up to 8) cost precision:
 * about 1e-5 relative per convolution, 20x F(2x2,3x3)'s rounding error. Not
 * a general convolution: H and W multiples of 4, NO of 8. */
#include <immintrin.h>
#include <string.h>
#include "nn/wino4x4.h"

enum { NT = 16 };   /* tiles per block: one zmm of lanes */

int glad_wino4x4_ok(int NI, int H, int W, int NO)
{
    return H % 4 == 0 && W % 4 == 0 && NO % 8 == 0 && NI >= 16 && H * W >= 1024;
}

/* plane strides of U and V (winoblk.h) */
static size_t ustride(int NI, int NO) { return glad_wino_plane((size_t)NI * NO); }
static size_t vstride(int NI) { return glad_wino_plane((size_t)NI * NT); }

/* G of u (6x6) = G g G^T, in double */
static const double G[6][3] = {{0.25, 0, 0},
                               {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                               {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                               {1.0 / 24, 1.0 / 12, 1.0 / 6},
                               {1.0 / 24, -1.0 / 12, 1.0 / 6},
                               {0, 0, 1}};

/* U's 36 runs (es apart) of 8 floats of output block ob, input i: G g G^T of
 * its 8 filters, flip as wino3x3.c's weights, in double on 8 lanes. On
 * AVX-512F (conv3x3.c runs Winograd only there) the 8 lanes are one zmm; in
 * the library's baseline SSE2 two at a time, the transforms of a training
 * step's weights and weight gradients took 3 % of its samples. Products
 * and sums stay separate operations (ISO C: no contraction), so the same
 * bits in either. */
__attribute__((target("avx512f"))) static void weights_block(float *u8, const float *w, int NI, int NO, int ob, int i, size_t es,
                                                              int flip)
{
    double g[9][8], t[6][3][8];
    for (int k = 0; k < 9; k++)
        for (int l = 0; l < 8; l++) {
            int o = ob * 8 + l;
            g[k][l] = flip ? w[((size_t)i * NO + o) * 9 + 8 - k] : w[((size_t)o * NI + i) * 9 + k];
        }
    for (int r = 0; r < 6; r++)   /* t = G g */
        for (int j = 0; j < 3; j++)
            #pragma omp simd
            for (int l = 0; l < 8; l++) t[r][j][l] = G[r][0] * g[j][l] + G[r][1] * g[3 + j][l] + G[r][2] * g[6 + j][l];
    for (int r = 0; r < 6; r++)   /* u = t G^T */
        for (int c = 0; c < 6; c++)
            #pragma omp simd
            for (int l = 0; l < 8; l++)
                u8[(size_t)(6 * r + c) * es + l] = (float)(t[r][0][l] * G[c][0] + t[r][1][l] * G[c][1] + t[r][2][l] * G[c][2]);
}

/* U (36, NO/8, NI, 8) = G g G^T of filter (o, i) */
static void weights(float *U, const float *w, int NI, int NO, int flip)
{
    int nob = NO / 8;
    size_t es = ustride(NI, NO);
    // (output block, input) pairs write disjoint 8-float runs of U
    #pragma omp parallel for schedule(static) if ((long)NI * NO > GLAD_WINO_PAR_FILTERS)
    for (int f = 0; f < nob * NI; f++) weights_block(U + (size_t)f * 8, w, NI, NO, f / NI, f % NI, es, flip);
}

/* r = B^T d for six vectors: B^T's rows (4, 0, -5, 0, 1, 0),
 * (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0), (0, -2, -1, 2, 1, 0),
 * (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1) */
__attribute__((target("avx512f"))) static inline void bt6(__m512 *r, const __m512 *d)
{
    const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f), two = _mm512_set1_ps(2.0f);
    __m512 t0 = _mm512_fnmadd_ps(four, d[2], d[4]), t1 = _mm512_fnmadd_ps(four, d[1], d[3]);   /* d4 - 4 d2, d3 - 4 d1 */
    __m512 t2 = _mm512_sub_ps(d[4], d[2]), t3 = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
    r[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
    r[1] = _mm512_add_ps(t0, t1);
    r[2] = _mm512_sub_ps(t0, t1);
    r[3] = _mm512_add_ps(t2, t3);
    r[4] = _mm512_sub_ps(t2, t3);
    r[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

/* y = A^T m for six vectors: A^T's rows (1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0),
 * (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1) */
__attribute__((target("avx512f"))) static inline void at6(__m512 *y, const __m512 *m)
{
    __m512 a = _mm512_add_ps(m[1], m[2]), b = _mm512_sub_ps(m[1], m[2]), c = _mm512_add_ps(m[3], m[4]), d = _mm512_sub_ps(m[3], m[4]);
    y[0] = _mm512_add_ps(_mm512_add_ps(m[0], a), c);
    y[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d, b);
    y[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), c, a);
    y[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d, b), m[5]);
}

/* x[k] (lane j) = d[4 j + k], k < 6, for the n <= 16 tiles of a padded row
 * from d: four masked loads of 16 (only the 4 n + 2 floats the tiles read),
 * columns 0-3 by two permutes and a lane shuffle each, 4 and 5 as 0 and 1
 * one tile on (lane 15 then needs d[64], d[65]) */
__attribute__((target("avx512f"))) static inline void row6(__m512 *x, const float *d, int n)
{
    int c = 4 * n + 2;
    __m512 L[4];
    for (int q = 0; q < 4; q++) {
        int k = c - 16 * q;
        __mmask16 m = (__mmask16)(k >= 16 ? 0xffff : k > 0 ? (1u << k) - 1 : 0);
        L[q] = _mm512_maskz_loadu_ps(m, d + 16 * q);
    }
    for (int k = 0; k < 4; k++) {
        const __m512i ix = _mm512_setr_epi32(k, 4 + k, 8 + k, 12 + k, 16 + k, 20 + k, 24 + k, 28 + k, k, 4 + k, 8 + k, 12 + k, 16 + k,
                                             20 + k, 24 + k, 28 + k);
        __m512 a = _mm512_permutex2var_ps(L[0], ix, L[1]), b = _mm512_permutex2var_ps(L[2], ix, L[3]);
        x[k] = _mm512_shuffle_f32x4(a, b, 0x44);
    }
    __m512 e4 = _mm512_maskz_loadu_ps((__mmask16)(c > 64), d + 64), e5 = _mm512_maskz_loadu_ps((__mmask16)(c > 65), d + 65);
    x[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(e4), _mm512_castps_si512(x[0]), 1));
    x[5] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(e5), _mm512_castps_si512(x[1]), 1));
}

/* V (36, NI, NT) = B^T d B for the tiles of the segments, d the 6x6 patch at
 * padded row 4 ti, column 4 tj; lanes past the block stay zero */
__attribute__((target("avx512f"))) static void input_block(float *V, const float *xp, int NI, int H, int Wp, const glad_wino_seg *sg,
                                                            int nseg, int nt)
{
    size_t plane = (size_t)(H + 2) * Wp, vs = vstride(NI);
    if (nt < NT)
        for (int e = 0; e < 36; e++)
            for (int c = 0; c < NI; c++) memset(V + e * vs + (size_t)c * NT + nt, 0, sizeof(float) * (NT - nt));
    for (int k = 0; k < nseg; k++) {
        __mmask16 ms = (__mmask16)(sg[k].L == 16 ? 0xffff : (1u << sg[k].L) - 1);
        for (int c = 0; c < NI; c++) {
            const float *d = xp + (size_t)c * plane + (size_t)(4 * sg[k].ti) * Wp + 4 * sg[k].tj;
            __m512 h[6][6], x[6], col[6], v[6];
            for (int r = 0; r < 6; r++) {   /* h[r] = (d B)'s row r: B^T on the columns of the row */
                row6(x, d + (size_t)r * Wp, sg[k].L);
                bt6(h[r], x);
            }
            float *vc = V + (size_t)c * NT + sg[k].s;
            for (int j = 0; j < 6; j++) {   /* then B^T down each column */
                for (int r = 0; r < 6; r++) col[r] = h[r][j];
                bt6(v, col);
                for (int i = 0; i < 6; i++) _mm512_mask_storeu_ps(vc + (size_t)(6 * i + j) * vs, ms, v[i]);
            }
        }
    }
}

/* M (36, 8, NT): M_e[o][t] = sum_i U_e[ob][i][o] V_e[i][t], 8 accumulators */
__attribute__((target("avx512f"))) static void gemm_block(float *M, const float *V, const float *U, int NI, int nob, int ob)
{
    size_t us = ustride(NI, 8 * nob), vs = vstride(NI);
    for (int e = 0; e < 36; e++) {
        const float *u = U + e * us + (size_t)ob * NI * 8, *v = V + e * vs;
        __m512 acc[8];
        for (int o = 0; o < 8; o++) acc[o] = _mm512_setzero_ps();
        for (int i = 0; i < NI; i++) {
            __m512 b = _mm512_loadu_ps(v + (size_t)i * NT);
            for (int o = 0; o < 8; o++) acc[o] = _mm512_fmadd_ps(_mm512_set1_ps(u[(size_t)i * 8 + o]), b, acc[o]);
        }
        for (int o = 0; o < 8; o++) _mm512_storeu_ps(M + ((size_t)e * 8 + o) * NT, acc[o]);
    }
}

/* out rows of 8 channels from M: y = A^T m A (+ bias, then epilogue epi), written or added; the
 * four columns of a tile row interleaved by two rounds of permutes */
__attribute__((target("avx512f"))) static void output_block(float *out, const float *M, const float *bias,
                                                             const glad_conv_epi *epi, int o0, int H, int W,
                                                             const glad_wino_seg *sg, int nseg, int accumulate)
{
    const __m512i p2lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i p2hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i p4lo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), p4hi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
    for (int o = 0; o < 8; o++) {
        float y[4][4 * NT] __attribute__((aligned(64)));
        __m512 s[4][6], m[6], t[4];
        for (int j = 0; j < 6; j++) {   /* s = A^T m down the columns */
            for (int i = 0; i < 6; i++) m[i] = _mm512_loadu_ps(M + ((size_t)(6 * i + j) * 8 + o) * NT);
            at6(t, m);
            for (int a = 0; a < 4; a++) s[a][j] = t[a];
        }
        for (int a = 0; a < 4; a++) {   /* y = s A along the rows; lane l's 4 columns to 4 l .. 4 l + 3 */
            at6(t, s[a]);
            __m512d q0 = _mm512_castps_pd(_mm512_permutex2var_ps(t[0], p2lo, t[1])), q1 = _mm512_castps_pd(_mm512_permutex2var_ps(t[0], p2hi, t[1]));
            __m512d r0 = _mm512_castps_pd(_mm512_permutex2var_ps(t[2], p2lo, t[3])), r1 = _mm512_castps_pd(_mm512_permutex2var_ps(t[2], p2hi, t[3]));
            _mm512_store_ps(y[a], _mm512_castpd_ps(_mm512_permutex2var_pd(q0, p4lo, r0)));
            _mm512_store_ps(y[a] + 16, _mm512_castpd_ps(_mm512_permutex2var_pd(q0, p4hi, r0)));
            _mm512_store_ps(y[a] + 32, _mm512_castpd_ps(_mm512_permutex2var_pd(q1, p4lo, r1)));
            _mm512_store_ps(y[a] + 48, _mm512_castpd_ps(_mm512_permutex2var_pd(q1, p4hi, r1)));
        }
        glad_wino_put_ch(out, y[0], 4 * NT, 4, H, W, bias, epi, o0 + o, sg, nseg, accumulate);
    }
}

const glad_wino_kernel glad_wino4x4_kernel = {4, 36, NT, weights, input_block, gemm_block, output_block};

/* ---- weight gradient (winoblk.c's loop) with 6x6 transforms: per 4x4 tile
 *   dM = A dY A^T (6x6 from the tile's 4x4 dout),  dU_e[o][i] = sum_t dM_e[o][t] V_e[i][t],
 *   dw[o][i] = G^T dU[o][i] G,
 * on channels-last copies (vectors over channels, no shuffles). */

int glad_wino4x4_dw_ok(int C, int H, int W, int OC)
{
    return H % 4 == 0 && W % 4 == 0 && C % 32 == 0 && OC % 16 == 0 && H * W >= 1024;
}

/* m = A y for four vectors, the adjoint of at6: A's rows (1, 0, 0, 0),
 * (1, 1, 1, 1), (1, -1, 1, -1), (1, 2, 4, 8), (1, -2, 4, -8), (0, 0, 0, 1) */
__attribute__((target("avx512f"))) static inline void a6(__m512 *m, const __m512 *y)
{
    __m512 s02 = _mm512_add_ps(y[0], y[2]), s13 = _mm512_add_ps(y[1], y[3]);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), y[2], y[0]);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(8.0f), y[3], _mm512_add_ps(y[1], y[1]));
    m[0] = y[0];
    m[1] = _mm512_add_ps(s02, s13);
    m[2] = _mm512_sub_ps(s02, s13);
    m[3] = _mm512_add_ps(p, q);
    m[4] = _mm512_sub_ps(p, q);
    m[5] = y[3];
}

/* the 36 (B^T d B) vectors of 16 channels from a 6x6 patch d[r][c] = p[r rs + c cs] */
__attribute__((target("avx512f"))) static void btdb16(float *v, size_t vs, const float *p, size_t rs, size_t cs)
{
    __m512 h[6][6], x[6], col[6], r6[6];
    for (int r = 0; r < 6; r++) {
        for (int c = 0; c < 6; c++) x[c] = _mm512_load_ps(p + r * rs + c * cs);
        bt6(h[r], x);
    }
    for (int j = 0; j < 6; j++) {
        for (int r = 0; r < 6; r++) col[r] = h[r][j];
        bt6(r6, col);
        for (int i = 0; i < 6; i++) _mm512_storeu_ps(v + (6 * i + j) * vs, r6[i]);
    }
}

/* the 36 (A dY A^T) vectors of 16 channels from a 4x4 dout y[a][b] = p[a rs + b cs] */
__attribute__((target("avx512f"))) static void adya16(float *m, size_t ms, const float *p, size_t rs, size_t cs)
{
    __m512 t[4][6], y[4], col[4], r6[6];
    for (int a = 0; a < 4; a++) {
        for (int b = 0; b < 4; b++) y[b] = _mm512_load_ps(p + a * rs + b * cs);
        a6(t[a], y);
    }
    for (int j = 0; j < 6; j++) {
        for (int a = 0; a < 4; a++) col[a] = t[a][j];
        a6(r6, col);
        for (int i = 0; i < 6; i++) _mm512_storeu_ps(m + (6 * i + j) * ms, r6[i]);
    }
}

/* dw += G^T dU G for the nl <= 8 filters from f0, on lanes: dU their thread
 * partials (per floats apart, planes ps apart) summed in thread order, then
 * G^T dU G as sums in a fixed order; in double on 8 lanes, one zmm (as
 * weights_block) */
__attribute__((target("avx512f"))) static void finish_block(float *dw, const float *scr, int nth, size_t per, size_t ps, size_t f0,
                                                             int nl)
{
    double u[36][8], a[3][6][8];
    for (int e = 0; e < 36; e++)
        for (int l = 0; l < 8; l++) {
            double s = 0;
            if (l < nl)
                for (int th = 0; th < nth; th++) s += scr[th * per + e * ps + f0 + l];
            u[e][l] = s;
        }
    for (int r = 0; r < 3; r++)   /* a = G^T dU */
        for (int j = 0; j < 6; j++)
            #pragma omp simd
            for (int l = 0; l < 8; l++) {
                double s = 0;
                for (int i = 0; i < 6; i++) s += G[i][r] * u[6 * i + j][l];
                a[r][j][l] = s;
            }
    for (int r = 0; r < 3; r++)   /* dw += a G */
        for (int c = 0; c < 3; c++)
            for (int l = 0; l < nl; l++) {
                double s = 0;
                for (int j = 0; j < 6; j++) s += a[r][j][l] * G[j][c];
                dw[(f0 + l) * 9 + 3 * r + c] += (float)s;
            }
}

static void dw_finish(float *dw, const float *scr, int nth, int C, int OC)
{
    size_t per = glad_wino_dw_floats(&glad_wino4x4_dwkernel, C, OC), ps = (size_t)OC * C, nfb = (ps + 7) / 8;
    // filter blocks are independent
    #pragma omp parallel for schedule(static) if (ps > GLAD_WINO_PAR_FILTERS)
    for (size_t fb = 0; fb < nfb; fb++) finish_block(dw, scr, nth, per, ps, fb * 8, ps - fb * 8 < 8 ? (int)(ps - fb * 8) : 8);
}

const glad_wino_dwkernel glad_wino4x4_dwkernel = {4, 36, btdb16, adya16, dw_finish};
