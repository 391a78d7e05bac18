/* test_winograd.c - F(2x2,3x3) Winograd convolution against the im2col
 * convolution (glad_conv2d_forward) on odd, even and 1-pixel sizes, with and
 * without bias and ReLU, and the split transforms over uneven ranges giving
 * the same output as the whole-image call. */
#include <cblas.h>
#include <stdlib.h>
#include "check.h"
#include "nn/nn.h"
#include "nn/winograd.h"

static float frand(unsigned *s) { *s = *s * 1664525u + 1013904223u; return (float)(*s >> 8) / 16777216.0f - 0.5f; }

static void one(int C, int H, int W, int OC, int relu, int bias)
{
    unsigned sd = (unsigned)(C * 131 + H * 17 + W);
    size_t nx = (size_t)C * H * W, no = (size_t)OC * H * W;
    float *x = malloc(nx * 4), *w = malloc((size_t)OC * C * 9 * 4), *b = malloc((size_t)OC * 4), *U = malloc((size_t)16 * OC * C * 4);
    float *r = malloc(no * 4), *o = malloc(no * 4), *o2 = malloc(no * 4);
    float *ws = malloc((glad_winograd3x3_workspace(C, H, W, OC) + glad_conv2d_workspace(C, H, W, OC, 3, 3, 1, 1)) * 4);
    for (size_t i = 0; i < nx; i++) x[i] = frand(&sd);
    for (size_t i = 0; i < (size_t)OC * C * 9; i++) w[i] = frand(&sd);
    for (int i = 0; i < OC; i++) b[i] = frand(&sd);
    glad_conv2d_forward(r, x, w, bias ? b : NULL, 1, C, H, W, OC, 3, 3, 1, 1, ws);
    if (relu) for (size_t i = 0; i < no; i++) r[i] = r[i] < 0 ? 0 : r[i];
    glad_winograd3x3_weights(U, w, OC, C);
    glad_winograd3x3_forward(o, x, U, bias ? b : NULL, C, H, W, OC, relu, ws);
    double e = 0, m = 0;
    for (size_t i = 0; i < no; i++) { e = fmax(e, fabs((double)o[i] - r[i])); m = fmax(m, fabs((double)r[i])); }
    CHECKF(e <= 1e-5 * (m > 0 ? m : 1), "C%d %dx%d OC%d relu %d: max err %.3g (max %.3g)", C, H, W, OC, relu, e, m);
    /* the range functions over uneven pieces: same bits as the whole call */
    int T = glad_winograd3x3_tiles(H, W);
    float *V = ws, *M = ws + (size_t)16 * C * T;
    for (int c = 0; c < C; c += 3) glad_winograd3x3_input(V, x, C, H, W, c, c + 3 < C ? c + 3 : C);
    for (int k = 0; k < 16; k++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, T, C, 1, U + (size_t)k * OC * C, C, V + (size_t)k * C * T, T, 0,
                    M + (size_t)k * OC * T, T);
    for (int oc = 0; oc < OC; oc += 2)
        for (int t = 0; t < T; t += 5) glad_winograd3x3_output(o2, M, bias ? b : NULL, OC, H, W, relu, oc, oc + 2 < OC ? oc + 2 : OC, t, t + 5 < T ? t + 5 : T);
    CHECKF(memcmp(o, o2, no * 4) == 0, "C%d %dx%d: split transforms differ", C, H, W);
    free(x); free(w); free(b); free(U); free(r); free(o); free(o2); free(ws);
}

int main(void)
{
    const int s[][4] = {{3, 9, 5, 4}, {8, 1, 1, 5}, {5, 2, 3, 7}, {16, 16, 16, 8}, {7, 65, 63, 3}, {32, 8, 130, 16}, {1, 4, 4, 1}};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        for (int v = 0; v < 3; v++) one(s[i][0], s[i][1], s[i][2], s[i][3], v == 1, v != 2);
    return check_done();
}
