/* norm.c - GroupNorm (forward, backward), GroupNorm fused with SiLU
 * (forward, backward that recomputes the normalised values from x instead of
 * reading stored ones), LayerNorm and training-mode BatchNorm (batch
 * statistics, running-statistics update, backward). Statistics in double for stability;
 * biased variance as PyTorch. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "nn/cpu.h"
#include "nn/fastmath.h"
#include "nn/nn.h"

/* mean and 1/sqrt(var + eps) of n values: one pass of double sums under
 * `omp simd` (fixed lane order, so deterministic); var = E[x^2] - mu^2 is
 * exact enough in double for activations (|mu|/sd << 1e8). */
GLAD_VEC_CLONES static void group_stats(const float *x, size_t n, float eps, double *mu, double *rs)
{
    double s = 0, ss = 0;
    #pragma omp simd reduction(+:s, ss)
    for (size_t i = 0; i < n; i++) { double v = x[i]; s += v; ss += v * v; }
    double m = s / n, var = ss / n - m * m;
    *mu = m;
    *rs = 1.0 / sqrt((var > 0 ? var : 0) + eps);
}

/* one channel row: o = x ga + be */
GLAD_VEC_CLONES static void affine_row(float *o, const float *x, int n, float ga, float be)
{
    #pragma omp simd
    for (int i = 0; i < n; i++) o[i] = x[i] * ga + be;
}

/* o = silu(z), z = x ga + be */
GLAD_VEC_CLONES static void silu_affine_row1(float *o, const float *x, int n, float ga, float be)
{
    #pragma omp simd
    for (int i = 0; i < n; i++) { float z = x[i] * ga + be, e = glad_expf_fast(-z); o[i] = z / (1.0f + e); }
}

/* the lanes [i, n) of a row, i <= n: all 16 or the tail */
#define LANES(n, i) ((__mmask16)((n) - (i) >= 16 ? 0xffff : (1u << ((n) - (i))) - 1))

/* floats ahead that the AVX-512 row kernels here prefetch the tensors they
 * stream from memory (x; dout and dx when added to in the backward): most
 * of their samples sat on those loads (perf annotate, DDAD-S f32 training
 * step at 128). A prefetch past the end of a tensor does not fault and
 * changes no value. */
enum { PF = 256 };

/* prefetch p + PF (integer arithmetic: the address may lie past the tensor) */
#define PREFETCH_AHEAD(p) _mm_prefetch((const char *)((uintptr_t)(p) + PF * sizeof(float)), _MM_HINT_T0)

/* the same on AVX-512F with glad_sigmoid16 (no division) */
__attribute__((target("avx512f"))) static void silu_affine_row16(float *o, const float *x, int n, float ga, float be)
{
    __m512 g = _mm512_set1_ps(ga), b = _mm512_set1_ps(be);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = LANES(n, i);
        PREFETCH_AHEAD(x + i);
        __m512 z = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), g), b);
        _mm512_mask_storeu_ps(o + i, m, _mm512_mul_ps(z, glad_sigmoid16(z)));
    }
}

/* the same with glad_silu16_coarse (under 6e-5 relative) */
__attribute__((target("avx512f"))) static void silu_affine_row16_coarse(float *o, const float *x, int n, float ga, float be)
{
    __m512 g = _mm512_set1_ps(ga), b = _mm512_set1_ps(be);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = LANES(n, i);
        _mm512_mask_storeu_ps(o + i, m, glad_silu16_coarse(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), g, b)));
    }
}

static void silu_affine_row(float *o, const float *x, int n, float ga, float be)
{
    if (glad_nn_avx512()) silu_affine_row16(o, x, n, ga, be);
    else silu_affine_row1(o, x, n, ga, be);
}

void glad_groupnorm_silu_row(float *o, const float *x, int n, float ga, float be) { silu_affine_row(o, x, n, ga, be); }

void glad_groupnorm_silu_row_coarse(float *o, const float *x, int n, float ga, float be)
{
    if (glad_nn_avx512()) silu_affine_row16_coarse(o, x, n, ga, be);
    else silu_affine_row1(o, x, n, ga, be);
}

/* sums of dz and dz xhat over a row, dz = dout silu'(z); dz to dzo when
 * given (read back by the second pass instead of recomputed) */
GLAD_VEC_CLONES static void gnsilu_sums_row1(double *sz_, double *szx_, float *dzo, const float *x, const float *d, int n,
                                             float ga, float be, float mu, float rs)
{
    double sz = 0, szx = 0;
    #pragma omp simd reduction(+:sz, szx)
    for (int i = 0; i < n; i++) {
        float z = x[i] * ga + be, s = 1.0f / (1.0f + glad_expf_fast(-z));
        float dz = d[i] * s * (1.0f + z * (1.0f - s)), xh = (x[i] - mu) * rs;
        sz += dz; szx += (double)dz * xh;
        if (dzo) dzo[i] = dz;
    }
    *sz_ = sz;
    *szx_ = szx;
}

/* dz of 16 lanes (zero past the row) and their xhat */
__attribute__((target("avx512f"))) static inline __m512 gnsilu_dz16(__m512 *xh, const float *x, const float *d, __mmask16 m,
                                                                     __m512 g, __m512 b, __m512 mu, __m512 rs)
{
    __m512 xv = _mm512_maskz_loadu_ps(m, x), z = _mm512_add_ps(_mm512_mul_ps(xv, g), b), s = glad_sigmoid16(z);
    __m512 one = _mm512_set1_ps(1.0f);
    /* silu'(z) = s (1 + z (1 - s)) */
    __m512 dz = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, d), s), _mm512_add_ps(one, _mm512_mul_ps(z, _mm512_sub_ps(one, s))));
    *xh = _mm512_mul_ps(_mm512_sub_ps(xv, mu), rs);
    return _mm512_maskz_mov_ps(m, dz);
}

__attribute__((target("avx512f"))) static void gnsilu_sums_row16(double *sz_, double *szx_, float *dzo, const float *x,
                                                                  const float *d, int n, float ga, float be, float mu, float rs)
{
    __m512 g = _mm512_set1_ps(ga), b = _mm512_set1_ps(be), vm = _mm512_set1_ps(mu), vr = _mm512_set1_ps(rs);
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd(), c0 = _mm512_setzero_pd(), c1 = _mm512_setzero_pd();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = LANES(n, i);
        /* x and dout PF floats ahead */
        PREFETCH_AHEAD(x + i);
        PREFETCH_AHEAD(d + i);
        __m512 xh, dz = gnsilu_dz16(&xh, x + i, d + i, m, g, b, vm, vr);
        if (dzo) _mm512_mask_storeu_ps(dzo + i, m, dz);
        __m512d dlo = _mm512_cvtps_pd(_mm512_castps512_ps256(dz)), dhi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(dz), 1)));
        __m512d xlo = _mm512_cvtps_pd(_mm512_castps512_ps256(xh)), xhi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(xh), 1)));
        a0 = _mm512_add_pd(a0, dlo); a1 = _mm512_add_pd(a1, dhi);
        c0 = _mm512_fmadd_pd(dlo, xlo, c0); c1 = _mm512_fmadd_pd(dhi, xhi, c1);
    }
    *sz_ = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    *szx_ = _mm512_reduce_add_pd(_mm512_add_pd(c0, c1));
}

static void gnsilu_sums_row(double *sz, double *szx, float *dzo, const float *x, const float *d, int n, float ga, float be, float mu,
                            float rs)
{
    if (glad_nn_avx512()) gnsilu_sums_row16(sz, szx, dzo, x, d, n, ga, be, mu, rs);
    else gnsilu_sums_row1(sz, szx, dzo, x, d, n, ga, be, mu, rs);
}

/* o (+)= rstd (dz gamma - m1 - xhat m2): added, or written when set */
GLAD_VEC_CLONES static void gnsilu_dx_row1(float *o, const float *x, const float *d, int n, float ga, float be, float mu,
                                           float rs, float gm, float m1, float m2, int set)
{
    #pragma omp simd
    for (int i = 0; i < n; i++) {
        float z = x[i] * ga + be, s = 1.0f / (1.0f + glad_expf_fast(-z));
        float dz = d[i] * s * (1.0f + z * (1.0f - s)), xh = (x[i] - mu) * rs;
        o[i] = (set ? 0.0f : o[i]) + rs * (dz * gm - m1 - xh * m2);
    }
}

__attribute__((target("avx512f"))) static void gnsilu_dx_row16(float *o, const float *x, const float *d, int n, float ga, float be,
                                                                float mu, float rs, float gm, float m1, float m2, int set)
{
    __m512 g = _mm512_set1_ps(ga), b = _mm512_set1_ps(be), vm = _mm512_set1_ps(mu), vr = _mm512_set1_ps(rs);
    __m512 vg = _mm512_set1_ps(gm), v1 = _mm512_set1_ps(m1), v2 = _mm512_set1_ps(m2);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = LANES(n, i);
        __m512 xh, dz = gnsilu_dz16(&xh, x + i, d + i, m, g, b, vm, vr);
        __m512 t = _mm512_sub_ps(_mm512_sub_ps(_mm512_mul_ps(dz, vg), v1), _mm512_mul_ps(xh, v2));
        __m512 prev = set ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, o + i);
        _mm512_mask_storeu_ps(o + i, m, _mm512_add_ps(prev, _mm512_mul_ps(vr, t)));
    }
}

static void gnsilu_dx_row(float *o, const float *x, const float *d, int n, float ga, float be, float mu, float rs, float gm,
                          float m1, float m2, int set)
{
    if (glad_nn_avx512()) gnsilu_dx_row16(o, x, d, n, ga, be, mu, rs, gm, m1, m2, set);
    else gnsilu_dx_row1(o, x, d, n, ga, be, mu, rs, gm, m1, m2, set);
}

/* the same from dz stored by the first pass (o may be dz itself: each
 * lane is read before it is written) */
GLAD_VEC_CLONES static void gnsilu_dxz_row1(float *o, const float *dz, const float *x, int n, float mu, float rs, float gm,
                                            float m1, float m2, int set)
{
    #pragma omp simd
    for (int i = 0; i < n; i++) {
        float xh = (x[i] - mu) * rs;
        o[i] = (set ? 0.0f : o[i]) + rs * (dz[i] * gm - m1 - xh * m2);
    }
}

__attribute__((target("avx512f"))) static void gnsilu_dxz_row16(float *o, const float *dz, const float *x, int n, float mu, float rs,
                                                                 float gm, float m1, float m2, int set)
{
    __m512 vm = _mm512_set1_ps(mu), vr = _mm512_set1_ps(rs), vg = _mm512_set1_ps(gm), v1 = _mm512_set1_ps(m1), v2 = _mm512_set1_ps(m2);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = LANES(n, i);
        /* the gradient added to, not touched since it was last written */
        if (!set) PREFETCH_AHEAD(o + i);
        __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vr);
        __m512 t = _mm512_sub_ps(_mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, dz + i), vg), v1), _mm512_mul_ps(xh, v2));
        __m512 prev = set ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, o + i);
        _mm512_mask_storeu_ps(o + i, m, _mm512_add_ps(prev, _mm512_mul_ps(vr, t)));
    }
}

static void gnsilu_dxz_row(float *o, const float *dz, const float *x, int n, float mu, float rs, float gm, float m1, float m2, int set)
{
    if (glad_nn_avx512()) gnsilu_dxz_row16(o, dz, x, n, mu, rs, gm, m1, m2, set);
    else gnsilu_dxz_row1(o, dz, x, n, mu, rs, gm, m1, m2, set);
}

/* GroupNorm forward, optionally followed by SiLU on each row (one pass) */
static void groupnorm_forward(float *out, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                              int B, int C, int N, int G, float eps, int silu)
{
    int cg = C / G;
    // (batch, group) pairs are independent
    #pragma omp parallel for collapse(2) schedule(static) if ((long)B * C * N > 32768)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++) {
            const float *xg = x + ((size_t)b * C + (size_t)g * cg) * N;
            double mu, rs;
            group_stats(xg, (size_t)cg * N, eps, &mu, &rs);
            mean[b * G + g] = (float)mu;
            rstd[b * G + g] = (float)rs;
            if (!out) continue;
            float *og = out + ((size_t)b * C + (size_t)g * cg) * N;
            for (int c = 0; c < cg; c++) {
                float ga = gamma[g * cg + c] * (float)rs, be = beta[g * cg + c] - (float)mu * ga;
                if (silu) silu_affine_row(og + (size_t)c * N, xg + (size_t)c * N, N, ga, be);
                else affine_row(og + (size_t)c * N, xg + (size_t)c * N, N, ga, be);
            }
        }
}

// x is (B,C,N); groups of C/G channels; mean, rstd are (B,G)
void glad_groupnorm_forward(float *out, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                            int B, int C, int N, int G, float eps)
{
    groupnorm_forward(out, mean, rstd, x, gamma, beta, B, C, N, G, eps, 0);
}

// x is (B,C,N); out = silu(groupnorm(x)) = z sigmoid(z), z = xhat gamma + beta
void glad_groupnorm_silu_forward(float *out, float *mean, float *rstd, const float *x, const float *gamma,
                                 const float *beta, int B, int C, int N, int G, float eps)
{
    groupnorm_forward(out, mean, rstd, x, gamma, beta, B, C, N, G, eps, 1);
}

/* d silu(z)/dz = s (1 + z (1 - s)), s = sigmoid(z); dz = dout silu'(z), then
 * GroupNorm backward with dxhat = dz gamma:
 *   dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) per group
 *   (dx = with GLAD_DX_SET),
 *   dgamma += sum dz xhat, dbeta += sum dz.
 * z is recomputed from x and the saved statistics. Two passes per group: the
 * group means first, then dx. The first pass keeps dz (in dx itself when it
 * is overwritten, else in a thread's scratch of one group), so the second
 * reads it instead of computing the sigmoid again: the same floats, so the
 * same results (without memory for the scratch, it recomputes them). ws holds
 * per-(batch, channel) partial sums so dgamma/dbeta are summed over the batch
 * in a fixed order. */
void glad_groupnorm_silu_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x,
                                  const float *mean, const float *rstd, const float *gamma, const float *beta, int B,
                                  int C, int N, int G, double *ws, int dxmode)
{
    int cg = C / G, set = dxmode == GLAD_DX_SET;
    double *pg = ws, *pb = ws + (size_t)B * C;
    // (batch, group) pairs write disjoint blocks of dx and of ws; each thread has its own scratch
    #pragma omp parallel if ((long)B * C * N > 32768)
    {
        float *scr = dx && !set ? malloc(sizeof(float) * (size_t)cg * N) : NULL;
        #pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int g = 0; g < G; g++) {
                float mu = mean[b * G + g], rs = rstd[b * G + g];
                size_t off = ((size_t)b * C + (size_t)g * cg) * N, n = (size_t)cg * N;
                float *dz = !dx ? NULL : set ? dx + off : scr;
                double s1 = 0, s2 = 0;
                for (int c = 0; c < cg; c++) {
                    int ch = g * cg + c;
                    float gm = gamma[ch], ga = gm * rs, be = beta[ch] - mu * ga;
                    double sz, szx;
                    gnsilu_sums_row(&sz, &szx, dz ? dz + (size_t)c * N : NULL, x + off + (size_t)c * N, dout + off + (size_t)c * N, N, ga,
                                    be, mu, rs);
                    pg[(size_t)b * C + ch] = szx;
                    pb[(size_t)b * C + ch] = sz;
                    s1 += sz * gm; s2 += szx * gm;
                }
                if (!dx) continue;
                float m1 = (float)(s1 / n), m2 = (float)(s2 / n);
                for (int c = 0; c < cg; c++) {
                    int ch = g * cg + c;
                    float gm = gamma[ch], ga = gm * rs, be = beta[ch] - mu * ga;
                    size_t r = off + (size_t)c * N;
                    if (dz) gnsilu_dxz_row(dx + r, dz + (size_t)c * N, x + r, N, mu, rs, gm, m1, m2, set);
                    else gnsilu_dx_row(dx + r, x + r, dout + r, N, ga, be, mu, rs, gm, m1, m2, set);
                }
            }
        free(scr);
    }
    for (int c = 0; c < C; c++) {
        double sg = 0, sb = 0;
        for (int b = 0; b < B; b++) { sg += pg[(size_t)b * C + c]; sb += pb[(size_t)b * C + c]; }
        dgamma[c] += (float)sg;
        dbeta[c] += (float)sb;
    }
}

// dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) per group, dxhat = dout gamma
void glad_groupnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x, const float *mean,
                             const float *rstd, const float *gamma, int B, int C, int N, int G)
{
    int cg = C / G;
    // dgamma/dbeta: one channel per iteration, batch summed inside (disjoint writes)
    #pragma omp parallel for schedule(static) if ((long)B * C * N > 32768)
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
    #pragma omp parallel for collapse(2) schedule(static) if ((long)B * C * N > 32768)
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

/* ---- BatchNorm, training mode. Channel c normalises its M = B*N values
 * x[n][c][:] with their mean and biased variance; the running estimates move
 * as torch.nn.BatchNorm2d's: r = (1 - m) r + m s, with the unbiased variance
 * var * M / (M - 1). Statistics in double, two passes (mean, then squared
 * deviations), so a large mean costs no precision. ---- */

// x, out are (B,C,N); mean, rstd, run_mean, run_var are (C)
void glad_batchnorm_train_forward(float *out, float *mean, float *rstd, float *run_mean, float *run_var, const float *x,
                                  const float *gamma, const float *beta, int B, int C, int N, float eps, float momentum)
{
    double M = (double)B * N;
    // channels are independent: each writes its own rows of out and its own statistics
    #pragma omp parallel for schedule(static) if ((long)B * C * N > 32768)
    for (int c = 0; c < C; c++) {
        double s = 0, ss = 0;
        for (int n = 0; n < B; n++) {
            const float *r = x + ((size_t)n * C + c) * N;
            #pragma omp simd reduction(+:s)
            for (int i = 0; i < N; i++) s += r[i];
        }
        double mu = s / M;
        for (int n = 0; n < B; n++) {
            const float *r = x + ((size_t)n * C + c) * N;
            #pragma omp simd reduction(+:ss)
            for (int i = 0; i < N; i++) { double d = r[i] - mu; ss += d * d; }
        }
        double var = ss / M, rs = 1.0 / sqrt(var + eps);
        /* (x - mu) first: x ga + (beta - mu ga) would cancel when |mu| >> sd */
        float ga = (float)(gamma[c] * rs), be = beta[c], mf = (float)mu;
        for (int n = 0; n < B; n++) {
            const float *r = x + ((size_t)n * C + c) * N;
            float *o = out + ((size_t)n * C + c) * N;
            #pragma omp simd
            for (int i = 0; i < N; i++) o[i] = (r[i] - mf) * ga + be;
        }
        mean[c] = (float)mu;
        rstd[c] = (float)rs;
        if (run_mean) run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * (float)mu;
        if (run_var) run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)(M > 1 ? var * M / (M - 1) : var);
    }
}

/* With xh = (x - mean) rstd and g = dout: dgamma += sum g xh, dbeta += sum g,
 * dx += gamma rstd (g - mean(g) - xh mean(g xh)) (the batch statistics'
 * own gradients included). */
void glad_batchnorm_train_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *x, const float *mean,
                                   const float *rstd, const float *gamma, int B, int C, int N)
{
    double M = (double)B * N;
    // channels are independent: each writes its own rows of dx and its own dgamma, dbeta
    #pragma omp parallel for schedule(static) if ((long)B * C * N > 32768)
    for (int c = 0; c < C; c++) {
        double sg = 0, sgx = 0, mu = mean[c], rs = rstd[c];
        for (int n = 0; n < B; n++) {
            const float *r = x + ((size_t)n * C + c) * N, *g = dout + ((size_t)n * C + c) * N;
            #pragma omp simd reduction(+:sg, sgx)
            for (int i = 0; i < N; i++) { sg += g[i]; sgx += g[i] * ((r[i] - mu) * rs); }
        }
        dgamma[c] += (float)sgx;
        dbeta[c] += (float)sg;
        if (!dx) continue;
        double k = gamma[c] * rs, a = sg / M, b = sgx / M;
        for (int n = 0; n < B; n++) {
            const float *r = x + ((size_t)n * C + c) * N, *g = dout + ((size_t)n * C + c) * N;
            float *o = dx + ((size_t)n * C + c) * N;
            #pragma omp simd
            for (int i = 0; i < N; i++) o[i] += (float)(k * (g[i] - a - (r[i] - mu) * rs * b));
        }
    }
}
