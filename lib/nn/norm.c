/* norm.c - GroupNorm (forward, backward) and LayerNorm (forward). Statistics
 * in double for stability; biased variance as PyTorch. */
#include <math.h>
#include "nn/nn.h"

// x is (B,C,N); groups of C/G channels; mean, rstd are (B,G)
void glad_groupnorm_forward(float *out, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                            int B, int C, int N, int G, float eps)
{
    int cg = C / G;
    // (batch, group) pairs are independent
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++) {
            const float *xg = x + ((size_t)b * C + (size_t)g * cg) * N;
            size_t n = (size_t)cg * N;
            double s = 0, ss = 0;
            for (size_t i = 0; i < n; i++) s += xg[i];
            double mu = s / n;
            for (size_t i = 0; i < n; i++) { double d = xg[i] - mu; ss += d * d; }
            double rs = 1.0 / sqrt(ss / n + eps);
            mean[b * G + g] = (float)mu;
            rstd[b * G + g] = (float)rs;
            float *og = out + ((size_t)b * C + (size_t)g * cg) * N;
            for (int c = 0; c < cg; c++) {
                float ga = gamma[g * cg + c] * (float)rs, be = beta[g * cg + c] - (float)mu * ga;
                for (int i = 0; i < N; i++) og[(size_t)c * N + i] = xg[(size_t)c * N + i] * ga + be;
            }
        }
}

// dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) per group, dxhat = dout gamma
void glad_groupnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x, const float *mean,
                             const float *rstd, const float *gamma, int B, int C, int N, int G)
{
    int cg = C / G;
    // dgamma/dbeta: one channel per iteration, batch summed inside (disjoint writes)
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        int g = c / cg;
        double sg = 0, sb = 0;
        for (int b = 0; b < B; b++) {
            const float *xr = x + ((size_t)b * C + c) * N, *dr = dout + ((size_t)b * C + c) * N;
            float mu = mean[b * G + g], rs = rstd[b * G + g];
            for (int i = 0; i < N; i++) { sg += (double)dr[i] * (xr[i] - mu) * rs; sb += dr[i]; }
        }
        dgamma[c] += (float)sg;
        dbeta[c] += (float)sb;
    }
    if (!dx) return;
    // dx: (batch, group) pairs write disjoint blocks
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++) {
            float mu = mean[b * G + g], rs = rstd[b * G + g];
            size_t off = ((size_t)b * C + (size_t)g * cg) * N, n = (size_t)cg * N;
            double s1 = 0, s2 = 0;
            for (int c = 0; c < cg; c++)
                for (int i = 0; i < N; i++) {
                    size_t k = off + (size_t)c * N + i;
                    double dxh = (double)dout[k] * gamma[g * cg + c], xh = (x[k] - mu) * rs;
                    s1 += dxh; s2 += dxh * xh;
                }
            double m1 = s1 / n, m2 = s2 / n;
            for (int c = 0; c < cg; c++)
                for (int i = 0; i < N; i++) {
                    size_t k = off + (size_t)c * N + i;
                    double dxh = (double)dout[k] * gamma[g * cg + c], xh = (x[k] - mu) * rs;
                    dx[k] += (float)(rs * (dxh - m1 - xh * m2));
                }
        }
}

// x is (M,D); normalised over D
void glad_layernorm_forward(float *out, const float *x, const float *gamma, const float *beta, int M, int D, float eps)
{
    // rows are independent
    #pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const float *r = x + (size_t)m * D;
        double s = 0, ss = 0;
        for (int i = 0; i < D; i++) s += r[i];
        double mu = s / D;
        for (int i = 0; i < D; i++) { double d = r[i] - mu; ss += d * d; }
        float rs = (float)(1.0 / sqrt(ss / D + eps));
        float *o = out + (size_t)m * D;
        for (int i = 0; i < D; i++) o[i] = (r[i] - (float)mu) * rs * gamma[i] + beta[i];
    }
}

// dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dout gamma, per row
void glad_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x, const float *gamma,
                             int M, int D, float eps)
{
    /* parameter gradients: columns summed over rows in row order (deterministic) */
    for (int m = 0; m < M; m++) {
        const float *r = x + (size_t)m * D, *g = dout + (size_t)m * D;
        double s = 0, ss = 0;
        for (int i = 0; i < D; i++) s += r[i];
        double mu = s / D;
        for (int i = 0; i < D; i++) { double d = r[i] - mu; ss += d * d; }
        double rs = 1.0 / sqrt(ss / D + eps);
        for (int i = 0; i < D; i++) { dgamma[i] += (float)(g[i] * (r[i] - mu) * rs); dbeta[i] += g[i]; }
    }
    if (!dx) return;
    // rows are independent
    #pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const float *r = x + (size_t)m * D, *g = dout + (size_t)m * D;
        double s = 0, ss = 0, s1 = 0, s2 = 0;
        for (int i = 0; i < D; i++) s += r[i];
        double mu = s / D;
        for (int i = 0; i < D; i++) { double d = r[i] - mu; ss += d * d; }
        double rs = 1.0 / sqrt(ss / D + eps);
        for (int i = 0; i < D; i++) { double dxh = (double)g[i] * gamma[i], xh = (r[i] - mu) * rs; s1 += dxh; s2 += dxh * xh; }
        for (int i = 0; i < D; i++) {
            double dxh = (double)g[i] * gamma[i], xh = (r[i] - mu) * rs;
            dx[(size_t)m * D + i] += (float)(rs * (dxh - s1 / D - xh * s2 / D));
        }
    }
}
