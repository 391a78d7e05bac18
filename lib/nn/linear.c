/* linear.c - fully connected layer out = x W^T + b and its backward. */
#include <cblas.h>
#include "nn/nn.h"

// x is (B,NI), w is (NO,NI), out is (B,NO)
void glad_linear_forward(float *out, const float *x, const float *w, const float *b, int B, int NI, int NO)
{
    /* one row at a time: a record's result must not depend on the other rows of
     * its batch (a batched GEMM rounds differently with the batch size) */
    for (int n = 0; n < B; n++) {
        for (int o = 0; o < NO; o++) out[(size_t)n * NO + o] = b ? b[o] : 0.0f;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 1, NO, NI, 1.0f, x + (size_t)n * NI, NI, w, NI, 1.0f,
                    out + (size_t)n * NO, NO);
    }
}

// dout is (B,NO); dw (NO,NI) += dout^T x ; db += sum_b dout ; dx (B,NI) += dout w
void glad_linear_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w, int B, int NI, int NO)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, NO, NI, B, 1.0f, dout, NO, x, NI, 1.0f, dw, NI);
    if (db)
        for (int n = 0; n < B; n++)
            for (int o = 0; o < NO; o++) db[o] += dout[(size_t)n * NO + o];
    if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, NI, NO, 1.0f, dout, NO, w, NI, 1.0f, dx, NI);
}
