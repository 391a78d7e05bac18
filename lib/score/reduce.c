/* reduce.c - Gaussian smoothing of maps, the per-map quantile baseline and the
 * image-score reducers (score.h). */
#include <math.h>
#include <stddef.h>
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

/* the k-th smallest of c[0..n) (0-based), c reordered: Wirth's selection
 * (Hoare's partition around c[k], narrowed to the side holding k) */
static float select_kth(float *c, ptrdiff_t n, ptrdiff_t k)
{
    ptrdiff_t l = 0, m = n - 1;
    while (l < m) {
        float x = c[k];
        ptrdiff_t i = l, j = m;
        do {
            while (c[i] < x) i++;
            while (x < c[j]) j--;
            if (i <= j) { float t = c[i]; c[i] = c[j]; c[j] = t; i++; j--; }
        } while (i <= j);
        if (j < k) l = i;
        if (k < i) m = j;
    }
    return c[k];
}

int glad_score_quantile(const float *A, size_t n, double q, float *out)
{
    if (n == 0 || n > PTRDIFF_MAX / sizeof(float) || !(q >= 0 && q <= 1)) return GLAD_EINVAL;
    float *c = malloc(n * sizeof(float));
    if (!c) return GLAD_ENOMEM;
    memcpy(c, A, n * sizeof(float));
    *out = select_kth(c, (ptrdiff_t)n, (ptrdiff_t)floor(q * (double)(n - 1)));
    free(c);
    return 0;
}

int glad_score_subtract_quantile(float *A, size_t n, double q)
{
    float base;
    GLAD_TRY(glad_score_quantile(A, n, q, &base));
    for (size_t i = 0; i < n; i++) A[i] -= base;
    return 0;
}
