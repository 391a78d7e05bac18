/* reduce.c - Gaussian smoothing of maps and the image-score reducers (score.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "imgproc/gauss.h"
#include "score/score.h"

int glad_score_gaussian_blur(float *map, int h, int w, double sigma)
{
    return glad_gauss_blur(map, h, w, sigma, GLAD_BORDER_REFLECT);
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

/* a copy of A sorted descending */
static float *sorted_desc(const float *A, size_t n)
{
    float *c = malloc(sizeof(float) * (n ? n : 1));
    if (!c) return NULL;
    memcpy(c, A, sizeof(float) * n);
    qsort(c, n, sizeof(float), cmp_desc);
    return c;
}

double glad_score_topk_mean(const float *A, size_t n, size_t k)
{
    if (k > n) k = n;
    float *c = sorted_desc(A, n);
    if (!c || k == 0) { free(c); return NAN; }
    double s = 0;
    for (size_t i = 0; i < k; i++) s += c[i];
    free(c);
    return s / (double)k;
}

double glad_score_softmax_topk(const float *A, size_t n, size_t k)
{
    if (k > n) k = n;
    float *c = sorted_desc(A, n);
    if (!c || k == 0) { free(c); return NAN; }
    double mx = c[0], z = 0, s = 0;
    for (size_t i = 0; i < n; i++) z += exp((double)c[i] - mx);
    for (size_t i = 0; i < k; i++) s += exp((double)c[i] - mx);
    free(c);
    return s / z;
}
