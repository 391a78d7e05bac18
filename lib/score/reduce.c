/* reduce.c - Gaussian smoothing of maps and the image-score reducers (score.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "score/score.h"

/* reflect index into [0, n): ... 2 1 | 0 1 2 ... n-1 | n-2 ... (periodic for large pads) */
static int reflect(int i, int n)
{
    if (n == 1) return 0;
    int p = 2 * (n - 1);
    i %= p;
    if (i < 0) i += p;
    return i < n ? i : p - i;
}

int glad_score_gaussian_blur(float *map, int h, int w, double sigma)
{
    if (sigma <= 0) return 0;
    int k = 2 * (int)(4.0 * sigma + 0.5) + 1, r = k / 2;
    double *g = malloc(sizeof(double) * (size_t)k);
    float *tmp = malloc(sizeof(float) * (size_t)h * w);
    if (!g || !tmp) { free(g); free(tmp); return GLAD_ENOMEM; }
    /* kornia get_gaussian_kernel1d: x = arange(k) - k//2, exp(-x^2 / (2 sigma^2)), normalised */
    double s = 0;
    for (int i = 0; i < k; i++) { double x = i - r; g[i] = exp(-x * x / (2 * sigma * sigma)); s += g[i]; }
    for (int i = 0; i < k; i++) g[i] /= s;
    // rows are independent
    #pragma omp parallel for schedule(static) if ((long)h * w * k > 1000000)
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double a = 0;
            for (int i = 0; i < k; i++) a += g[i] * map[(size_t)y * w + reflect(x + i - r, w)];
            tmp[(size_t)y * w + x] = (float)a;
        }
    // columns of one row are independent
    #pragma omp parallel for schedule(static) if ((long)h * w * k > 1000000)
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double a = 0;
            for (int i = 0; i < k; i++) a += g[i] * tmp[(size_t)reflect(y + i - r, h) * w + x];
            map[(size_t)y * w + x] = (float)a;
        }
    free(g);
    free(tmp);
    return 0;
}

double glad_score_max(const float *A, size_t n)
{
    float m = A[0];
    for (size_t i = 1; i < n; i++) if (A[i] > m) m = A[i];
    return m;
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* the k largest values, sorted descending, into a new array (k <= n) */
static float *top(const float *A, size_t n, size_t k)
{
    float *c = malloc(sizeof(float) * (n ? n : 1));
    if (!c) return NULL;
    memcpy(c, A, sizeof(float) * n);
    qsort(c, n, sizeof(float), cmp_desc);
    (void)k;
    return c;
}

double glad_score_topk_mean(const float *A, size_t n, size_t k)
{
    if (k > n) k = n;
    float *c = top(A, n, k);
    if (!c || k == 0) { free(c); return NAN; }
    double s = 0;
    for (size_t i = 0; i < k; i++) s += c[i];
    free(c);
    return s / (double)k;
}

double glad_score_softmax_topk(const float *A, size_t n, size_t k)
{
    if (k > n) k = n;
    float *c = top(A, n, k);
    if (!c || k == 0) { free(c); return NAN; }
    double mx = c[0], z = 0, s = 0;
    for (size_t i = 0; i < n; i++) z += exp((double)c[i] - mx);
    for (size_t i = 0; i < k; i++) s += exp((double)c[i] - mx);
    free(c);
    return s / z;
}
