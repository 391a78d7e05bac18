/* gauss.c - the whole-image Gaussian (gauss.h): pooling, Ledoit-Wolf fit,
 * Cholesky inverse, Mahalanobis score. Everything in double: the covariance
 * of a few hundred vectors is small, and its inverse amplifies rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "score/gauss.h"

void glad_gauss_free(glad_gauss *g)
{
    free(g->mean);
    free(g->prec);
    memset(g, 0, sizeof *g);
}

int glad_gauss_pool(float *v, const float *f, int C, int h, int w)
{
    if (C < 1 || h < 1 || w < 1) return glad_fail(GLAD_EINVAL, "map [%d,%d,%d]", C, h, w);
    size_t hw = (size_t)h * w;
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (size_t p = 0; p < hw; p++) s += f[(size_t)c * hw + p];
        if (!isfinite(s)) return glad_fail(GLAD_ENAN, "the map contains NaN or infinity");
        v[c] = (float)(s / (double)hw);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q = d^T P d, d = x - mean */
static double quad(const glad_gauss *g, const float *x, double *d)
{
    int C = g->C;
    for (int c = 0; c < C; c++) d[c] = (double)x[c] - g->mean[c];
    double q = 0;
    for (int i = 0; i < C; i++) {
        const double *p = g->prec + (size_t)i * C;
        double s = 0;
        for (int j = 0; j < C; j++) s += p[j] * d[j];
        q += d[i] * s;
    }
    return q;
}

/* Lower Cholesky factor of the SPD matrix A (C x C, in place: the lower
 * triangle becomes L); -1 when a pivot is not positive. */
static int cholesky(double *A, int C)
{
    for (int j = 0; j < C; j++) {
        double *aj = A + (size_t)j * C, s = aj[j];
        for (int k = 0; k < j; k++) s -= aj[k] * aj[k];
        if (!(s > 0)) return -1;
        double ljj = sqrt(s);
        aj[j] = ljj;
        // rows below j are independent given row j
        #pragma omp parallel for schedule(static) if ((size_t)(C - j) * j > 65536)
        for (int i = j + 1; i < C; i++) {
            double *ai = A + (size_t)i * C, t = ai[j];
            for (int k = 0; k < j; k++) t -= ai[k] * aj[k];
            ai[j] = t / ljj;
        }
    }
    return 0;
}

int glad_gauss_fit(glad_gauss *g, const float *X, int64_t n, int C)
{
    memset(g, 0, sizeof *g);
    if (n < 2 || C < 1 || C > 1 << 14) return glad_fail(GLAD_EINVAL, "a Gaussian of %lld vectors of %d values (needs 2 or more)", (long long)n, C);
    size_t nc, cc;
    if (glad_mul_size((size_t)n, (size_t)C, &nc) || glad_mul_size((size_t)C, (size_t)C, &cc)) return glad_fail(GLAD_ERANGE, "too large");
    for (size_t k = 0; k < nc; k++)
        if (!isfinite(X[k])) return glad_fail(GLAD_ENAN, "a vector contains NaN or infinity");
    double *Xc = malloc(nc * sizeof(double)), *S = malloc(cc * sizeof(double)), *q = malloc((size_t)n * sizeof(double));
    g->mean = calloc((size_t)C, sizeof(double));
    g->prec = calloc(cc, sizeof(double));
    int rc = 0;
    if (!Xc || !S || !q || !g->mean || !g->prec) { rc = GLAD_ENOMEM; goto out; }
    g->C = C;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < C; c++) g->mean[c] += X[(size_t)i * C + c];
    for (int c = 0; c < C; c++) g->mean[c] /= (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < C; c++) Xc[(size_t)i * C + c] = X[(size_t)i * C + c] - g->mean[c];
    /* S = Xc^T Xc / n (the maximum-likelihood covariance, as sklearn's) */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, C, (int)n, 1.0 / (double)n, Xc, C, Xc, C, 0.0, S, C);
    /* Ledoit-Wolf (2004) as sklearn's ledoit_wolf_shrinkage: mu = tr S / C,
     * delta = ||S - mu I||_F^2 / C, beta = (sum_i ||x_i||^4 / n - ||S||_F^2) / (C n),
     * s = min(beta, delta) / delta */
    double tr = 0, fro = 0, b4 = 0;
    for (int c = 0; c < C; c++) tr += S[(size_t)c * C + c];
    for (size_t k = 0; k < cc; k++) fro += S[k] * S[k];
    for (int64_t i = 0; i < n; i++) {
        double r = 0;
        for (int c = 0; c < C; c++) r += Xc[(size_t)i * C + c] * Xc[(size_t)i * C + c];
        b4 += r * r;
    }
    double mu = tr / C, delta = (fro - 2 * mu * tr + C * mu * mu) / C, beta = (b4 / (double)n - fro) / ((double)C * (double)n);
    if (beta > delta) beta = delta;
    g->shrinkage = beta == 0 ? 0 : beta / delta;
    if (!(g->shrinkage >= 0 && g->shrinkage <= 1)) g->shrinkage = delta > 0 ? 0 : 1;
    for (size_t k = 0; k < cc; k++) S[k] *= 1 - g->shrinkage;
    for (int c = 0; c < C; c++) S[(size_t)c * C + c] += g->shrinkage * mu;
    if (cholesky(S, C)) { rc = glad_fail(GLAD_ERANGE, "the covariance of %lld vectors is not positive definite (every vector alike?)", (long long)n); goto out; }
    /* prec = Sigma^-1 = L^-T L^-1, the columns of L^-1 by forward substitution */
    double *Li = calloc(cc, sizeof(double));
    if (!Li) { rc = GLAD_ENOMEM; goto out; }
    // columns of L^-1 are independent
    #pragma omp parallel for schedule(dynamic, 8) if (C > 64)
    for (int j = 0; j < C; j++) {
        /* solve L y = e_j; y_i = 0 for i < j */
        for (int i = j; i < C; i++) {
            const double *li = S + (size_t)i * C;
            double t = i == j ? 1.0 : 0.0;
            for (int k = j; k < i; k++) t -= li[k] * Li[(size_t)k * C + j];
            Li[(size_t)i * C + j] = t / li[i];
        }
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, C, C, 1.0, Li, C, Li, C, 0.0, g->prec, C);
    free(Li);
    /* symmetric to the last bit: (P + P^T) / 2 */
    for (int i = 0; i < C; i++)
        for (int j = 0; j < i; j++) {
            double m = 0.5 * (g->prec[(size_t)i * C + j] + g->prec[(size_t)j * C + i]);
            g->prec[(size_t)i * C + j] = g->prec[(size_t)j * C + i] = m;
        }
    /* the scale: the fitting images' own median squared distance (in-sample,
     * so held-out normals sit somewhat above 1) */
    g->scale = 1;
    for (int64_t i = 0; i < n; i++) q[i] = quad(g, X + (size_t)i * C, S);   /* S (L, no longer needed): scratch */
    qsort(q, (size_t)n, sizeof(double), cmp_double);
    g->scale = n % 2 ? q[n / 2] : 0.5 * (q[n / 2 - 1] + q[n / 2]);
    if (!(g->scale > 0) || !isfinite(g->scale)) { rc = glad_fail(GLAD_ERANGE, "the fitted distances have median %g", g->scale); goto out; }
out:
    free(Xc); free(S); free(q);
    if (rc) glad_gauss_free(g);
    return rc;
}

int glad_gauss_score(const glad_gauss *g, const float *x, int C, double *d)
{
    if (C != g->C) return glad_fail(GLAD_ESHAPE, "a vector of %d values, the Gaussian has %d", C, g->C);
    for (int c = 0; c < C; c++)
        if (!isfinite(x[c])) return glad_fail(GLAD_ENAN, "the vector contains NaN or infinity");
    double *t = malloc((size_t)C * sizeof(double));
    if (!t) return GLAD_ENOMEM;
    *d = quad(g, x, t) / g->scale;
    free(t);
    return 0;
}

int glad_gauss_set(glad_gauss *g, int C, const double *mean, const double *prec, double scale)
{
    memset(g, 0, sizeof *g);
    if (C < 1 || C > 1 << 14) return glad_fail(GLAD_EFORMAT, "a Gaussian of %d values", C);
    size_t cc = (size_t)C * C;
    if (!(scale > 0) || !isfinite(scale)) return glad_fail(GLAD_EFORMAT, "scale %g is not positive", scale);
    for (int c = 0; c < C; c++)
        if (!isfinite(mean[c])) return glad_fail(GLAD_EFORMAT, "the mean contains NaN or infinity");
    for (int i = 0; i < C; i++)
        for (int j = 0; j <= i; j++) {
            double a = prec[(size_t)i * C + j], b = prec[(size_t)j * C + i];
            if (!isfinite(a) || a != b) return glad_fail(GLAD_EFORMAT, "the precision matrix is not finite and symmetric");
        }
    for (int c = 0; c < C; c++)
        if (!(prec[(size_t)c * C + c] > 0)) return glad_fail(GLAD_EFORMAT, "the precision matrix has a diagonal entry <= 0");
    g->mean = malloc((size_t)C * sizeof(double));
    g->prec = malloc(cc * sizeof(double));
    if (!g->mean || !g->prec) { glad_gauss_free(g); return GLAD_ENOMEM; }
    memcpy(g->mean, mean, (size_t)C * sizeof(double));
    memcpy(g->prec, prec, cc * sizeof(double));
    g->C = C;
    g->scale = scale;
    return 0;
}
