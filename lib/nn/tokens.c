/* tokens.c - LayerNorm over channels, GEGLU and context attention on
 * channel-major token planes (tokens.h). The attention takes the queries in
 * blocks of XB: per (head, block) the scores S (Tk x nb) = s K_h^T Q_blk,
 * their softmax down each column (one column per query), then
 * out_blk = V_h S, so the scratch is Tk x XB per thread, never Tq x Tk. */
#include <math.h>
#include <omp.h>
#include <string.h>
#include <cblas.h>
#include "nn/fastmath.h"
#include "nn/tokens.h"

enum { XB = 64, LNB = 256 };   /* queries per attention block; tokens per LayerNorm block */

void glad_layernorm_cols_forward(float *out, const float *x, const float *gamma, const float *beta, int C, int T, float eps)
{
    int nblk = (T + LNB - 1) / LNB;
    // token blocks are independent
    #pragma omp parallel for schedule(static) if ((long)C * T > 32768)
    for (int bk = 0; bk < nblk; bk++) {
        int t0 = bk * LNB, n = T - t0 < LNB ? T - t0 : LNB;
        double s[LNB], ss[LNB];
        float mu[LNB], rs[LNB];
        for (int j = 0; j < n; j++) s[j] = ss[j] = 0;
        for (int c = 0; c < C; c++) {
            const float *r = x + (size_t)c * T + t0;
            #pragma omp simd
            for (int j = 0; j < n; j++) s[j] += r[j];
        }
        for (int j = 0; j < n; j++) s[j] /= C;
        for (int c = 0; c < C; c++) {
            const float *r = x + (size_t)c * T + t0;
            #pragma omp simd
            for (int j = 0; j < n; j++) { double d = r[j] - s[j]; ss[j] += d * d; }
        }
        for (int j = 0; j < n; j++) { mu[j] = (float)s[j]; rs[j] = (float)(1.0 / sqrt(ss[j] / C + eps)); }
        for (int c = 0; c < C; c++) {
            const float *r = x + (size_t)c * T + t0;
            float *o = out + (size_t)c * T + t0, g = gamma[c], b = beta[c];
            #pragma omp simd
            for (int j = 0; j < n; j++) o[j] = (r[j] - mu[j]) * rs[j] * g + b;
        }
    }
}

void glad_geglu_forward(float *out, const float *proj, int NI, int T)
{
    // rows are independent; out row i is written from proj rows i and NI + i only
    #pragma omp parallel for schedule(static) if ((long)NI * T > 65536)
    for (int i = 0; i < NI; i++) {
        const float *a = proj + (size_t)i * T, *g = proj + ((size_t)NI + i) * T;
        float *o = out + (size_t)i * T;
        for (int t = 0; t < T; t++) o[t] = a[t] * (0.5f * g[t] * (1.0f + erff(g[t] * 0.70710678118654752f)));
    }
}

size_t glad_xattn_workspace(int Tk) { return (size_t)Tk * XB; }

/* S (Tk rows of nb, stride XB): each column replaced by its softmax, sums in double */
GLAD_VEC_CLONES static void softmax_cols(float *S, int Tk, int nb)
{
    float mx[XB];
    double sum[XB];
    for (int j = 0; j < nb; j++) { mx[j] = S[j]; sum[j] = 0; }
    for (int s = 1; s < Tk; s++) {
        const float *r = S + (size_t)s * XB;
        #pragma omp simd
        for (int j = 0; j < nb; j++) mx[j] = r[j] > mx[j] ? r[j] : mx[j];
    }
    for (int s = 0; s < Tk; s++) {
        float *r = S + (size_t)s * XB;
        #pragma omp simd
        for (int j = 0; j < nb; j++) { r[j] = glad_expf_fast(r[j] - mx[j]); sum[j] += r[j]; }
    }
    float inv[XB];
    for (int j = 0; j < nb; j++) inv[j] = (float)(1.0 / sum[j]);
    for (int s = 0; s < Tk; s++) {
        float *r = S + (size_t)s * XB;
        #pragma omp simd
        for (int j = 0; j < nb; j++) r[j] *= inv[j];
    }
}

static void xattn_task(float *out, const float *q, const float *k, const float *v, int Tq, int Tk, int hd, int nqb, float sc,
                       int i, float *S)
{
    int h = i / nqb, t0 = (i % nqb) * XB, nb = Tq - t0 < XB ? Tq - t0 : XB;
    size_t qo = (size_t)h * hd * Tq, ko = (size_t)h * hd * Tk;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, nb, hd, sc, k + ko, Tk, q + qo + t0, Tq, 0.0f, S, XB);
    softmax_cols(S, Tk, nb);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hd, nb, Tk, 1.0f, v + ko, Tk, S, XB, 0.0f, out + qo + t0, Tq);
}

void glad_xattn_forward(float *out, const float *q, const float *k, const float *v, int C, int Tq, int Tk, int heads, float *ws)
{
    int hd = C / heads, nqb = (Tq + XB - 1) / XB, tasks = heads * nqb;
    float sc = 1.0f / sqrtf((float)hd);
    int nth = omp_get_max_threads();
    if (nth > tasks) nth = tasks;
    /* one thread runs outside any team (an sgemm inside even a one-thread
     * region would open a nested team) */
    if (nth < 2) {
        for (int i = 0; i < tasks; i++) xattn_task(out, q, k, v, Tq, Tk, hd, nqb, sc, i, ws);
        return;
    }
    // (head, query block) pairs write disjoint blocks of out; sgemm runs single-threaded in the team
    #pragma omp parallel num_threads(nth)
    {
        float *S = ws + (size_t)omp_get_thread_num() * glad_xattn_workspace(Tk);
        #pragma omp for schedule(static)
        for (int i = 0; i < tasks; i++) xattn_task(out, q, k, v, Tq, Tk, hd, nqb, sc, i, S);
    }
}
