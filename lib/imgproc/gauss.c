/* gauss.c - see gauss.h. */
#include <math.h>
#include <stdlib.h>
#include "imgproc/gauss.h"

static int border_index(int i, int n, glad_border b)
{
    if (b == GLAD_BORDER_SYMMETRIC) {
        int p = 2 * n;
        i %= p;
        if (i < 0) i += p;
        return i < n ? i : p - 1 - i;
    }
    if (n == 1) return 0;
    int p = 2 * (n - 1);
    i %= p;
    if (i < 0) i += p;
    return i < n ? i : p - i;
}

int glad_gauss_blur(float *map, int h, int w, double sigma, glad_border border)
{
    if (sigma <= 0) return 0;
    int r = (int)(4.0 * sigma + 0.5), k = 2 * r + 1;
    double *g = malloc(sizeof(double) * (size_t)k);
    float *tmp = malloc(sizeof(float) * (size_t)h * w);
    if (!g || !tmp) { free(g); free(tmp); return GLAD_ENOMEM; }
    double s = 0;
    for (int i = 0; i < k; i++) { double x = i - r; g[i] = exp(-x * x / (2 * sigma * sigma)); s += g[i]; }
    for (int i = 0; i < k; i++) g[i] /= s;
    /* the last axis first, then the first (scipy's order; kornia's result is the same) */
    // rows are independent
    #pragma omp parallel for schedule(static) if ((long)h * w * k > 1000000)
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double a = 0;
            for (int i = 0; i < k; i++) a += g[i] * map[(size_t)y * w + border_index(x + i - r, w, border)];
            tmp[(size_t)y * w + x] = (float)a;
        }
    // columns of one row are independent
    #pragma omp parallel for schedule(static) if ((long)h * w * k > 1000000)
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double a = 0;
            for (int i = 0; i < k; i++) a += g[i] * tmp[(size_t)border_index(y + i - r, h, border) * w + x];
            map[(size_t)y * w + x] = (float)a;
        }
    free(g);
    free(tmp);
    return 0;
}
