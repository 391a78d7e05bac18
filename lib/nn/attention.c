/* attention.c - multi-head self-attention in guided diffusion's legacy QKV
 * layout, as batched GEMMs per (batch, head):
 *   logits[t,s] = sum_c (q[c,t] c^-1/4)(k[c,s] c^-1/4),  W = softmax_s(logits)
 *   a[c,t] = sum_s W[t,s] v[c,s]
 * backward: dV = dA W, dW = dA^T V, dL = W (dW - rowsum(W dW)),
 *           dQ = s^2 K dL^T, dK = s^2 Q dL. */
#include <math.h>
#include <cblas.h>
#include "nn/nn.h"

#define QB 64   /* query rows per block: a QB x T block of weights stays in L2 */

// qkv is (B,3C,T), out is (B,C,T), att is (B*heads,T,T)
void glad_attention_forward(float *out, float *att, const float *qkv, int B, int C, int T, int heads)
{
    int c = C / heads, nqb = (T + QB - 1) / QB;
    float s2 = 1.0f / sqrtf((float)c);   /* (c^-1/4)^2 */
    /* blocks of query rows: logits, softmax and the weighted sum of one block
     * run while it is in cache (each sgemm single-threaded inside the loop) */
    // (batch, head, query block) triples write disjoint rows of att and columns of out
    #pragma omp parallel for collapse(3) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < heads; h++)
            for (int qb = 0; qb < nqb; qb++) {
                const float *q = qkv + ((size_t)b * 3 * C + (size_t)h * 3 * c) * T, *k = q + (size_t)c * T, *v = k + (size_t)c * T;
                int t0 = qb * QB, nt = T - t0 < QB ? T - t0 : QB;
                float *w = att + ((size_t)b * heads + h) * T * T + (size_t)t0 * T;
                /* W[t0:t0+nt] (nt,T) = s2 Q[:, t0:]^T K */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nt, T, c, s2, q + t0, T, k, T, 0.0f, w, T);
                glad_softmax_rows(w, nt, T);
                /* A[:, t0:t0+nt] (c,nt) = V (c,T) W[t0:]^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, nt, T, 1.0f, v, T, w, T, 0.0f,
                            out + ((size_t)b * C + (size_t)h * c) * T + t0, T);
            }
}

// dout is (B,C,T); dqkv (B,3C,T) accumulates
void glad_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int C, int T,
                             int heads, float *ws)
{
    int c = C / heads;
    float s2 = 1.0f / sqrtf((float)c);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < heads; h++) {
            size_t off = ((size_t)b * 3 * C + (size_t)h * 3 * c) * T;
            const float *q = qkv + off, *k = q + (size_t)c * T, *v = k + (size_t)c * T;
            float *dq = dqkv + off, *dk = dq + (size_t)c * T, *dv = dk + (size_t)c * T;
            const float *w = att + ((size_t)b * heads + h) * T * T, *da = dout + ((size_t)b * C + (size_t)h * c) * T;
            /* dV (c,T) += dA (c,T) W (T,T) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, T, T, 1.0f, da, T, w, T, 1.0f, dv, T);
            /* dW (T,T) = dA^T V */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, T, c, 1.0f, da, T, v, T, 0.0f, ws, T);
            // softmax backward: rows are independent
            #pragma omp parallel for schedule(static) if ((long)T * T > 16384)
            for (int t = 0; t < T; t++) {
                float *r = ws + (size_t)t * T;
                const float *wr = w + (size_t)t * T;
                double dot = 0;
                for (int s = 0; s < T; s++) dot += (double)r[s] * wr[s];
                for (int s = 0; s < T; s++) r[s] = wr[s] * (r[s] - (float)dot);
            }
            /* dQ (c,T) += s2 K (c,T) dL^T ; dK (c,T) += s2 Q (c,T) dL */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, T, T, s2, k, T, ws, T, 1.0f, dq, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, T, T, s2, q, T, ws, T, 1.0f, dk, T);
        }
}
