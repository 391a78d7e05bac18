/* distance.c - feature and pixel distance maps (score.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "score/score.h"

/* tokens-major copy of the columns of f (C x n), each L2-normalised as
 * F.normalize(eps = 1e-12) */
static float *normalized_tokens(const float *f, int n, int C)
{
    float *t = malloc(sizeof(float) * (size_t)n * C);
    if (!t) return NULL;
    // tokens are independent
    #pragma omp parallel for schedule(static) if ((long)n * C > 65536)
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int c = 0; c < C; c++) { double v = f[(size_t)c * n + i]; s += v * v; }
        float inv = (float)(1.0 / fmax(sqrt(s), 1e-12));
        for (int c = 0; c < C; c++) t[(size_t)i * C + c] = f[(size_t)c * n + i] * inv;
    }
    return t;
}

int glad_score_nn_map(float *A, const float *fa, int na, const float *fb, int nb, int C)
{
    if (na < 1 || nb < 1 || C < 1) return GLAD_EINVAL;
    float *ta = normalized_tokens(fa, na, C), *tb = normalized_tokens(fb, nb, C);
    /* rows of the similarity matrix in tiles so that tile x nb floats stay ~16 MB */
    int tile = (int)((4u << 20) / (unsigned)nb);
    if (tile < 1) tile = 1;
    if (tile > na) tile = na;
    float *S = malloc(sizeof(float) * (size_t)tile * nb);
    int rc = GLAD_ENOMEM;
    if (!ta || !tb || !S) goto out;
    for (int i0 = 0; i0 < na; i0 += tile) {
        int m = na - i0 < tile ? na - i0 : tile;
        /* S (m x nb) = ta[i0:i0+m] (m x C) . tb^T (C x nb) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nb, C, 1.0f, ta + (size_t)i0 * C, C, tb, C, 0.0f, S, nb);
        // rows are independent
        #pragma omp parallel for schedule(static) if ((long)m * nb > 65536)
        for (int i = 0; i < m; i++) {
            const float *r = S + (size_t)i * nb;
            float best = r[0];
            for (int j = 1; j < nb; j++) if (r[j] > best) best = r[j];
            A[i0 + i] = 1.0f - best;
        }
    }
    rc = 0;
out:
    free(ta); free(tb); free(S);
    return rc;
}

/* 3x3 mean with zero padding, divided by 9 (count_include_pad) */
static void patchify(float *o, const float *f, int C, int h, int w)
{
    for (int c = 0; c < C; c++) {
        const float *p = f + (size_t)c * h * w;
        float *q = o + (size_t)c * h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float s = 0;
                for (int dy = -1; dy <= 1; dy++) {
                    int yy = y + dy;
                    if (yy < 0 || yy >= h) continue;
                    for (int dx = -1; dx <= 1; dx++) {
                        int xx = x + dx;
                        if (xx >= 0 && xx < w) s += p[yy * w + xx];
                    }
                }
                q[y * w + x] = s / 9.0f;
            }
    }
}

int glad_score_same_map(float *D, const float *fa, const float *fb, int C, int h, int w)
{
    size_t n = (size_t)h * w;
    float *pa = malloc(sizeof(float) * n * C), *pb = malloc(sizeof(float) * n * C);
    if (!pa || !pb) { free(pa); free(pb); return GLAD_ENOMEM; }
    patchify(pa, fa, C, h, w);
    patchify(pb, fb, C, h, w);
    /* torch cosine_similarity: a.b / (max(|a|, eps) max(|b|, eps)), eps 1e-8 */
    for (size_t i = 0; i < n; i++) {
        double ab = 0, aa = 0, bb = 0;
        for (int c = 0; c < C; c++) {
            double x = pa[(size_t)c * n + i], y = pb[(size_t)c * n + i];
            ab += x * y; aa += x * x; bb += y * y;
        }
        D[i] = (float)(1.0 - ab / (fmax(sqrt(aa), 1e-8) * fmax(sqrt(bb), 1e-8)));
    }
    free(pa);
    free(pb);
    return 0;
}

int glad_score_pixel_map(float *D, const float *a, const float *b, int C, int h, int w, int imagenet)
{
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    if (imagenet && C != 3 && C != 1) return GLAD_ESHAPE;
    size_t n = (size_t)h * w;
    for (size_t i = 0; i < n; i++) {
        float s = 0;
        for (int c = 0; c < C; c++) {
            float x = a[(size_t)c * n + i], y = b[(size_t)c * n + i];
            if (imagenet) {
                /* grey images are repeated to 3 channels: same channel, its own std */
                int k = C == 1 ? 0 : c;
                x = ((x + 1) * 0.5f - mean[k]) / std[k];
                y = ((y + 1) * 0.5f - mean[k]) / std[k];
            }
            s += fabsf(x - y);
        }
        D[i] = s / (float)C;
    }
    return 0;
}

void glad_score_fuse(float *A, const float *D, size_t n, double v)
{
    if (v == 0.0 || n == 0) return;
    float ma = A[0], md = D[0];
    for (size_t i = 1; i < n; i++) { if (A[i] > ma) ma = A[i]; if (D[i] > md) md = D[i]; }
    if (md <= 0) return;
    float k = (float)(v * ma / md);
    for (size_t i = 0; i < n; i++) A[i] += k * D[i];
}
