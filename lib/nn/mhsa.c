/* mhsa.c - multi-head self-attention on token rows (the ViT layout, unlike
 * attention.c's channel-major guided-diffusion layout): qkv (T, 3D) with
 * columns [3][heads][hd], head j's q, k, v at columns j*hd, D + j*hd,
 * 2D + j*hd (row stride 3D); out (T, D) with head j at columns j*hd.
 * Per head, with s = hd^-1/2:
 *   P = softmax_rows(s Q K^T) (T,T),  A = P V
 * backward, per tile of queries (P recomputed, never stored: T^2 per head
 * and block would dominate a training step's memory):
 *   dV += P^T dA,  dP = dA V^T,  dS = P (dP - rowsum(P dP)),
 *   dQ += s dS K,  dK += s dS^T Q
 * Used by the ViT's training path (models/vit.c); the ViT's inference
 * forward keeps its own vectorised kernel. Not causal, no masking, no dropout. */
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <cblas.h>
#include "nn/nn.h"

enum { MQT = 64 };   /* queries per tile: a tile's P and dP (MQT x T each) */

size_t glad_mhsa_workspace(int T, int heads) { return (size_t)heads * 2 * MQT * (size_t)T; }

/* softmax of one row in place, sum in double */
static void softmax_row_d(float *r, int n)
{
    float mx = r[0];
    for (int i = 1; i < n; i++) mx = r[i] > mx ? r[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) { r[i] = expf(r[i] - mx); s += r[i]; }
    float inv = (float)(1.0 / s);
    for (int i = 0; i < n; i++) r[i] *= inv;
}

/* P (m,T) = softmax(s Q_tile K^T) for the m queries from t0 of head j */
static void probs(float *P, const float *qkv, int T, int D, int hd, int j, int t0, int m, float s)
{
    int D3 = 3 * D;
    const float *q = qkv + (size_t)t0 * D3 + (size_t)j * hd, *k = qkv + D + (size_t)j * hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, T, hd, s, q, D3, k, D3, 0.0f, P, T);
    for (int r = 0; r < m; r++) softmax_row_d(P + (size_t)r * T, T);
}

// qkv is (T,3D), out is (T,D); ws holds glad_mhsa_workspace(T, heads) floats
void glad_mhsa_forward(float *out, const float *qkv, int T, int D, int heads, float *ws)
{
    int hd = D / heads, D3 = 3 * D;
    float s = 1.0f / sqrtf((float)hd);
    // heads write disjoint column blocks of out, each with its own scratch; sgemm
    // runs single-threaded inside the region
    #pragma omp parallel for schedule(dynamic)
    for (int j = 0; j < heads; j++) {
        float *P = ws + (size_t)j * 2 * MQT * T;
        for (int t0 = 0; t0 < T; t0 += MQT) {
            int m = T - t0 < MQT ? T - t0 : MQT;
            probs(P, qkv, T, D, hd, j, t0, m, s);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, T, 1.0f, P, T, qkv + 2 * D + (size_t)j * hd, D3,
                        0.0f, out + (size_t)t0 * D + (size_t)j * hd, D);
        }
    }
}

// dout is (T,D); dqkv (T,3D) accumulates
void glad_mhsa_backward(float *dqkv, const float *dout, const float *qkv, int T, int D, int heads, float *ws)
{
    int hd = D / heads, D3 = 3 * D;
    float s = 1.0f / sqrtf((float)hd);
    // a head's dQ, dK, dV are its own columns of dqkv; its query tiles run in order
    // inside the head (dK, dV sum over the tiles), so no two threads write the
    // same value and the sums do not depend on the thread count
    #pragma omp parallel for schedule(dynamic)
    for (int j = 0; j < heads; j++) {
        float *P = ws + (size_t)j * 2 * MQT * T, *dP = P + (size_t)MQT * T;
        const float *k = qkv + D + (size_t)j * hd, *v = k + D;
        float *dk = dqkv + D + (size_t)j * hd, *dv = dk + D;
        for (int t0 = 0; t0 < T; t0 += MQT) {
            int m = T - t0 < MQT ? T - t0 : MQT;
            const float *q = qkv + (size_t)t0 * D3 + (size_t)j * hd, *da = dout + (size_t)t0 * D + (size_t)j * hd;
            float *dq = dqkv + (size_t)t0 * D3 + (size_t)j * hd;
            probs(P, qkv, T, D, hd, j, t0, m, s);
            /* dV (T,hd) += P^T (T,m) dA (m,hd) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, m, 1.0f, P, T, da, D, 1.0f, dv, D3);
            /* dP (m,T) = dA V^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, T, hd, 1.0f, da, D, v, D3, 0.0f, dP, T);
            for (int r = 0; r < m; r++) {
                float *g = dP + (size_t)r * T;
                const float *p = P + (size_t)r * T;
                double dot = 0;
                for (int i = 0; i < T; i++) dot += (double)p[i] * g[i];
                for (int i = 0; i < T; i++) g[i] = p[i] * (g[i] - (float)dot);
            }
            /* dQ (m,hd) += s dS K ; dK (T,hd) += s dS^T Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, T, s, dP, T, k, D3, 1.0f, dq, D3);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, m, s, dP, T, q, D3, 1.0f, dk, D3);
        }
    }
}
