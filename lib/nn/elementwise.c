/* elementwise.c - activations, resampling, concat, softmax, dropout and the
 * timestep embedding: the engine's memory-bound kernels. */
#include <math.h>
#include <string.h>
#include "core/rng.h"
#include "nn/fastmath.h"
#include "nn/nn.h"

GLAD_VEC_CLONES static void silu_chunk(float *out, const float *x, size_t n)
{
    #pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = x[i] / (1.0f + glad_expf_fast(-x[i]));
}

GLAD_VEC_CLONES static void silu_back_chunk(float *dx, const float *dout, const float *x, size_t n)
{
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + glad_expf_fast(-x[i]));
        dx[i] += dout[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

#define CHUNK 4096

// x is any shape, n values; y = x sigmoid(x)
void glad_silu_forward(float *out, const float *x, size_t n)
{
    size_t nc = (n + CHUNK - 1) / CHUNK;
    // elementwise, in chunks
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t c = 0; c < nc; c++) silu_chunk(out + c * CHUNK, x + c * CHUNK, c + 1 < nc ? CHUNK : n - c * CHUNK);
}

// dy/dx = s (1 + x (1 - s)), s = sigmoid(x)
void glad_silu_backward(float *dx, const float *dout, const float *x, size_t n)
{
    size_t nc = (n + CHUNK - 1) / CHUNK;
    // elementwise, in chunks
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t c = 0; c < nc; c++)
        silu_back_chunk(dx + c * CHUNK, dout + c * CHUNK, x + c * CHUNK, c + 1 < nc ? CHUNK : n - c * CHUNK);
}

// y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
void glad_gelu_forward(float *out, const float *x, size_t n)
{
    // elementwise
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

// dy/dx = Phi(x) + x phi(x)
void glad_gelu_backward(float *dx, const float *dout, const float *x, size_t n)
{
    // elementwise
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f)), pdf = 0.39894228040143268f * expf(-0.5f * x[i] * x[i]);
        dx[i] += dout[i] * (cdf + x[i] * pdf);
    }
}

// x is (BC,H,W), out is (BC,H/2,W/2)
void glad_avgpool2_forward(float *out, const float *x, int BC, int H, int W)
{
    int h = H / 2, w = W / 2;
    // planes are independent
    #pragma omp parallel for schedule(static) if ((long)BC * H * W > 65536)
    for (int p = 0; p < BC; p++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                const float *r = x + ((size_t)p * H + 2 * i) * W + 2 * j;
                out[((size_t)p * h + i) * w + j] = 0.25f * (r[0] + r[1] + r[W] + r[W + 1]);
            }
}

void glad_avgpool2_backward(float *dx, const float *dout, int BC, int H, int W)
{
    int h = H / 2, w = W / 2;
    // planes are independent
    #pragma omp parallel for schedule(static) if ((long)BC * H * W > 65536)
    for (int p = 0; p < BC; p++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                float g = 0.25f * dout[((size_t)p * h + i) * w + j];
                float *r = dx + ((size_t)p * H + 2 * i) * W + 2 * j;
                r[0] += g; r[1] += g; r[W] += g; r[W + 1] += g;
            }
}

/* o[2j] = o[2j + 1] = x[j]: one output row of the nearest-neighbour
 * upsampling (interleaving stores the vectoriser makes of the pair, where
 * the index j / 2 of the whole row would be a gather) */
GLAD_VEC_CLONES static void dup_row(float *o, const float *x, int W)
{
    #pragma omp simd
    for (int j = 0; j < W; j++) { o[2 * j] = x[j]; o[2 * j + 1] = x[j]; }
}

// x is (BC,H,W), out is (BC,2H,2W)
void glad_upsample2_forward(float *out, const float *x, int BC, int H, int W)
{
    // planes are independent
    #pragma omp parallel for schedule(static) if ((long)BC * H * W > 16384)
    for (int p = 0; p < BC; p++)
        for (int i = 0; i < H; i++) {
            /* output rows 2i and 2i + 1 are the same row */
            float *o = out + ((size_t)p * 2 * H + 2 * i) * 2 * W;
            dup_row(o, x + ((size_t)p * H + i) * W, W);
            memcpy(o + 2 * W, o, sizeof(float) * 2 * W);
        }
}

void glad_upsample2_backward(float *dx, const float *dout, int BC, int H, int W)
{
    // planes are independent
    #pragma omp parallel for schedule(static) if ((long)BC * H * W > 16384)
    for (int p = 0; p < BC; p++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                const float *r = dout + ((size_t)p * 2 * H + 2 * i) * 2 * W + 2 * j;
                dx[((size_t)p * H + i) * W + j] += r[0] + r[1] + r[2 * W] + r[2 * W + 1];
            }
}

// 3x3 max pool, stride 2, padding 1 (padding never wins)
void glad_maxpool3s2_forward(float *out, const float *x, int BC, int H, int W)
{
    int h = (H + 2 - 3) / 2 + 1, w = (W + 2 - 3) / 2 + 1;
    // planes are independent
    #pragma omp parallel for schedule(static)
    for (int p = 0; p < BC; p++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                float m = -INFINITY;
                for (int dy = 0; dy < 3; dy++)
                    for (int dx = 0; dx < 3; dx++) {
                        int y = 2 * i - 1 + dy, xx = 2 * j - 1 + dx;
                        if (y >= 0 && y < H && xx >= 0 && xx < W) {
                            float v = x[((size_t)p * H + y) * W + xx];
                            if (v > m) m = v;
                        }
                    }
                out[((size_t)p * h + i) * w + j] = m;
            }
}

/* dx += dout routed to the first maximum of each window in the forward's
 * scan order (PyTorch's rule; ties after a ReLU are common) */
void glad_maxpool3s2_backward(float *dx, const float *dout, const float *x, int BC, int H, int W)
{
    int h = (H + 2 - 3) / 2 + 1, w = (W + 2 - 3) / 2 + 1;
    // planes are independent; windows overlap within a plane, so one thread owns a plane
    #pragma omp parallel for schedule(static)
    for (int p = 0; p < BC; p++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                float m = -INFINITY;
                size_t at = (size_t)-1;
                for (int dy = 0; dy < 3; dy++)
                    for (int dx_ = 0; dx_ < 3; dx_++) {
                        int y = 2 * i - 1 + dy, xx = 2 * j - 1 + dx_;
                        if (y >= 0 && y < H && xx >= 0 && xx < W) {
                            size_t k = ((size_t)p * H + y) * W + xx;
                            if (at == (size_t)-1 || x[k] > m) { m = x[k]; at = k; }
                        }
                    }
                dx[at] += dout[((size_t)p * h + i) * w + j];
            }
}

// x is any shape, n values; out = max(x, 0) (out may be x)
void glad_relu_forward(float *out, const float *x, size_t n)
{
    // elementwise
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : 0.0f;
}

/* dx += dout where y > 0; y is the forward's output (or its input: the same sign) */
void glad_relu_backward(float *dx, const float *dout, const float *y, size_t n)
{
    // elementwise
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dx[i] += y[i] > 0 ? dout[i] : 0.0f;
}

// a is (B,Ca,N), b is (B,Cb,N), out is (B,Ca+Cb,N)
void glad_concat_forward(float *out, const float *a, const float *b, int B, int Ca, int Cb, size_t N)
{
    int C = Ca + Cb;
    // (image, channel) rows are independent
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * C * N > 65536)
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++)
            memcpy(out + ((size_t)n * C + c) * N, c < Ca ? a + ((size_t)n * Ca + c) * N : b + ((size_t)n * Cb + c - Ca) * N,
                   sizeof(float) * N);
}

void glad_concat_backward(float *da, float *db, const float *dout, int B, int Ca, int Cb, size_t N)
{
    int C = Ca + Cb;
    // (image, channel) rows are independent
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * C * N > 65536)
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++) {
            float *d = c < Ca ? (da ? da + ((size_t)n * Ca + c) * N : NULL) : (db ? db + ((size_t)n * Cb + c - Ca) * N : NULL);
            const float *g = dout + ((size_t)n * C + c) * N;
            if (d) for (size_t i = 0; i < N; i++) d[i] += g[i];
        }
}

/* one row: r = exp(r - max) / sum */
GLAD_VEC_CLONES static void softmax_row(float *r, int D)
{
    float mx = r[0];
    #pragma omp simd reduction(max:mx)
    for (int i = 1; i < D; i++) mx = r[i] > mx ? r[i] : mx;
    double s = 0;
    #pragma omp simd
    for (int i = 0; i < D; i++) r[i] = glad_expf_fast(r[i] - mx);
    #pragma omp simd reduction(+:s)
    for (int i = 0; i < D; i++) s += r[i];
    float inv = (float)(1.0 / s);
    #pragma omp simd
    for (int i = 0; i < D; i++) r[i] *= inv;
}

void glad_softmax_rows(float *x, int M, int D)
{
    // rows are independent
    #pragma omp parallel for schedule(static) if ((long)M * D > 16384)
    for (int m = 0; m < M; m++) softmax_row(x + (size_t)m * D, D);
}

/* keep element i when uniform i of seed >= p (lib/core/rng) */
static int keep(uint64_t seed, size_t i, float p) { return glad_rng_uniform_at(seed, i) >= p; }

void glad_dropout_forward(float *out, const float *x, size_t n, float p, uint64_t seed)
{
    float s = 1.0f / (1.0f - p);
    // elementwise; the mask depends on (seed, i) only
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = keep(seed, i, p) ? x[i] * s : 0.0f;
}

void glad_dropout_backward(float *dx, const float *dout, size_t n, float p, uint64_t seed)
{
    float s = 1.0f / (1.0f - p);
    // elementwise
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) if (keep(seed, i, p)) dx[i] += dout[i] * s;
}

// t is (B), out is (B,dim)
void glad_timestep_embedding(float *out, const float *t, int B, int dim)
{
    int half = dim / 2;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < half; i++) {
            double f = exp(-log(10000.0) * i / half);
            out[(size_t)b * dim + i] = (float)sin(t[b] * f);
            out[(size_t)b * dim + half + i] = (float)cos(t[b] * f);
        }
}
