/* winograd.c - F(2x2,3x3) Winograd convolution (winograd.h). With
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1],
 * a 2x2 output tile is Y = A^T [ (G g G^T) .* (B^T d B) ] A for its 4x4 input
 * patch d (rows 2i-1..2i+2, zero outside the image). Summed over channels the
 * elementwise product becomes, for each of the 16 positions e, a GEMM
 * M_e (OC,T) = U_e (OC,C) V_e (C,T) over the T tiles. The transforms only add
 * and halve, so the error stays close to a direct convolution's (measured
 * ~4e-7 of the max-abs output on random data). */
#include <cblas.h>
#include <string.h>
#include "nn/winograd.h"

void glad_winograd3x3_filter(float *u, const float *g)
{
    double t[4][3];
    for (int j = 0; j < 3; j++) {   /* t = G g */
        t[0][j] = g[j];
        t[1][j] = 0.5 * ((double)g[j] + g[3 + j] + g[6 + j]);
        t[2][j] = 0.5 * ((double)g[j] - g[3 + j] + g[6 + j]);
        t[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; i++) {   /* u = t G^T */
        u[4 * i] = (float)t[i][0];
        u[4 * i + 1] = (float)(0.5 * (t[i][0] + t[i][1] + t[i][2]));
        u[4 * i + 2] = (float)(0.5 * (t[i][0] - t[i][1] + t[i][2]));
        u[4 * i + 3] = (float)t[i][2];
    }
}

void glad_winograd3x3_weights(float *U, const float *w, int OC, int C)
{
    size_t plane = (size_t)OC * C;
    // filters are independent
    #pragma omp parallel for schedule(static) if (plane > 4096)
    for (size_t f = 0; f < plane; f++) {
        float u[16];
        glad_winograd3x3_filter(u, w + f * 9);
        for (int e = 0; e < 16; e++) U[e * plane + f] = u[e];
    }
}

int glad_winograd3x3_tiles(int H, int W) { return ((H + 1) / 2) * ((W + 1) / 2); }

size_t glad_winograd3x3_workspace(int C, int H, int W, int OC)
{
    return 16 * (size_t)glad_winograd3x3_tiles(H, W) * ((size_t)C + OC);
}

/* Both transforms work on a row of up to CH tiles at a time, so the inner
 * loops run over tiles (contiguous in V and M) and vectorise. */
enum { CH = 64 };

// x is (C,H,W), V is (16,C,T)
void glad_winograd3x3_input(float *V, const float *x, int C, int H, int W, int c0, int c1)
{
    int th = (H + 1) / 2, tw = (W + 1) / 2, T = th * tw;
    size_t vs = (size_t)C * T;
    float P[4][2 * CH + 2], t[4][2 * CH + 2];
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * H * W;
        for (int i = 0; i < th; i++)
            for (int j0 = 0; j0 < tw; j0 += CH) {
                int nj = tw - j0 < CH ? tw - j0 : CH, x0 = 2 * j0 - 1, wd = 2 * nj + 2;
                for (int r = 0; r < 4; r++) {   /* padded rows 2i-1+r, columns x0 .. x0+wd-1 */
                    int y = 2 * i - 1 + r;
                    if (y < 0 || y >= H) { memset(P[r], 0, sizeof(float) * (size_t)wd); continue; }
                    const float *xr = xc + (size_t)y * W;
                    if (x0 >= 0 && x0 + wd <= W) memcpy(P[r], xr + x0, sizeof(float) * (size_t)wd);
                    else for (int q = 0; q < wd; q++) P[r][q] = x0 + q >= 0 && x0 + q < W ? xr[x0 + q] : 0.0f;
                }
                for (int q = 0; q < wd; q++) {   /* t = B^T d, all tiles of the row at once */
                    t[0][q] = P[0][q] - P[2][q];
                    t[1][q] = P[1][q] + P[2][q];
                    t[2][q] = P[2][q] - P[1][q];
                    t[3][q] = P[1][q] - P[3][q];
                }
                for (int r = 0; r < 4; r++) {   /* (t B) row r, tile j at columns 2j..2j+3 */
                    float *v = V + (size_t)4 * r * vs + (size_t)c * T + (size_t)i * tw + j0;
                    const float *u = t[r];
                    for (int j = 0; j < nj; j++) {
                        v[j] = u[2 * j] - u[2 * j + 2];
                        v[vs + j] = u[2 * j + 1] + u[2 * j + 2];
                        v[2 * vs + j] = u[2 * j + 2] - u[2 * j + 1];
                        v[3 * vs + j] = u[2 * j + 1] - u[2 * j + 3];
                    }
                }
            }
    }
}

// M is (16,OC,T), out is (OC,H,W)
void glad_winograd3x3_output(float *out, const float *M, const float *b, int OC, int H, int W, int relu, int o0, int o1,
                             int t0, int t1)
{
    int tw = (W + 1) / 2, T = glad_winograd3x3_tiles(H, W);
    size_t ms = (size_t)OC * T;
    float s[2][4][CH], y[2][2][CH];
    for (int o = o0; o < o1; o++) {
        float bv = b ? b[o] : 0.0f, *oc = out + (size_t)o * H * W;
        for (int ta = t0; ta < t1;) {
            int i = ta / tw, j0 = ta % tw, nj = tw - j0;   /* a run of tiles within one tile row */
            if (nj > t1 - ta) nj = t1 - ta;
            if (nj > CH) nj = CH;
            const float *m = M + (size_t)o * T + ta;
            for (int q = 0; q < 4; q++)   /* s = A^T m */
                for (int j = 0; j < nj; j++) {
                    float m0 = m[q * ms + j], m1 = m[(4 + q) * ms + j], m2 = m[(8 + q) * ms + j], m3 = m[(12 + q) * ms + j];
                    s[0][q][j] = m0 + m1 + m2;
                    s[1][q][j] = m1 - m2 - m3;
                }
            for (int r = 0; r < 2; r++)   /* y = s A + b */
                for (int j = 0; j < nj; j++) {
                    float a0 = s[r][0][j] + s[r][1][j] + s[r][2][j] + bv, a1 = s[r][1][j] - s[r][2][j] - s[r][3][j] + bv;
                    y[r][0][j] = relu && a0 < 0 ? 0.0f : a0;
                    y[r][1][j] = relu && a1 < 0 ? 0.0f : a1;
                }
            int full = 2 * (j0 + nj) <= W ? nj : nj - 1;   /* an odd W leaves the last tile one column */
            for (int r = 0; r < 2 && 2 * i + r < H; r++) {
                float *row = oc + (size_t)(2 * i + r) * W + 2 * j0;
                for (int j = 0; j < full; j++) { row[2 * j] = y[r][0][j]; row[2 * j + 1] = y[r][1][j]; }
                if (full < nj) row[2 * full] = y[r][0][full];
            }
            ta += nj;
        }
    }
}

// x is (C,H,W), U is (16,OC,C), out is (OC,H,W)
void glad_winograd3x3_forward(float *out, const float *x, const float *U, const float *b, int C, int H, int W, int OC,
                              int relu, float *ws)
{
    int T = glad_winograd3x3_tiles(H, W);
    float *V = ws, *M = ws + (size_t)16 * C * T;
    // channels are independent
    #pragma omp parallel for schedule(static) if ((size_t)C * T > 4096)
    for (int c = 0; c < C; c++) glad_winograd3x3_input(V, x, C, H, W, c, c + 1);
    for (int e = 0; e < 16; e++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, T, C, 1.0f, U + (size_t)e * OC * C, C, V + (size_t)e * C * T,
                    T, 0.0f, M + (size_t)e * OC * T, T);
    // output channels are independent
    #pragma omp parallel for schedule(static) if ((size_t)OC * T > 4096)
    for (int o = 0; o < OC; o++) glad_winograd3x3_output(out, M, b, OC, H, W, relu, o, o + 1, 0, T);
}
