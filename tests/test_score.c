/* test_score.c - anomaly maps and image scores against the official-code
 * values of tests/fixtures/scoring.case.safetensors (1e-5), tiled vs direct
 * nearest-neighbour distance, a 64x64 token grid, and the quantile baseline
 * against a sorted copy. */
#include <stdlib.h>
#include "check.h"
#include "io/image.h"
#include "core/json.h"
#include "io/safetensors.h"
#include "score/score.h"
#include "imgproc/resize.h"

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* glad_score_subtract_quantile: the subtracted value is the sorted copy's
 * element floor(q (n-1)) on random maps (with many ties, and sorted and
 * reversed ones), a second call changes nothing, bad q / n are refused */
static void quantile_cases(void)
{
    unsigned seed = 12345;
    const double qs[] = {0, 0.1, 0.25, 0.5, 0.9, 1};
    int ok = 1, idem = 1;
    for (int trial = 0; trial < 60; trial++) {
        size_t n = 1 + (size_t)(trial * 37 % 500);
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *s = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            int kind = trial % 4;   /* 0 random, 1 few values (ties), 2 ascending, 3 descending */
            a[i] = kind == 0 ? (float)((seed >> 8) % 100000) / 977.0f - 40 : kind == 1 ? (float)((seed >> 8) % 3)
                 : kind == 2 ? (float)i * 0.5f : (float)(n - i) * 0.25f;
        }
        for (int qi = 0; qi < 6; qi++) {
            memcpy(b, a, n * sizeof(float));
            memcpy(s, a, n * sizeof(float));
            qsort(s, n, sizeof(float), cmp_f);
            float want = s[(size_t)floor(qs[qi] * (double)(n - 1))];
            if (glad_score_subtract_quantile(b, n, qs[qi]) != 0) ok = 0;
            for (size_t i = 0; i < n; i++) if (b[i] != a[i] - want) ok = 0;
            memcpy(s, b, n * sizeof(float));
            if (glad_score_subtract_quantile(b, n, qs[qi]) != 0) idem = 0;
            if (memcmp(s, b, n * sizeof(float))) idem = 0;
        }
        free(a); free(b); free(s);
    }
    CHECK(ok);
    CHECK(idem);
    float v[3] = {3, 1, 2};
    CHECK(glad_score_subtract_quantile(v, 3, 0.5) == 0 && v[0] == 1 && v[1] == -1 && v[2] == 0);
    CHECK(glad_score_subtract_quantile(v, 3, -0.1) == GLAD_EINVAL);
    CHECK(glad_score_subtract_quantile(v, 3, 1.5) == GLAD_EINVAL);
    CHECK(glad_score_subtract_quantile(v, 3, NAN) == GLAD_EINVAL);
    CHECK(glad_score_subtract_quantile(v, 0, 0.5) == GLAD_EINVAL);
    CHECK(v[0] == 1 && v[1] == -1 && v[2] == 0);   /* refused calls leave the map */
}

static glad_tensor T(glad_st *st, const char *name)
{
    glad_tensor t = {0};
    if (glad_st_get_f32(st, name, &t)) fprintf(stderr, "missing %s\n", name);
    return t;
}

/* layer maps upsampled (align_corners=True) to 64x64 and summed */
static void nn_sum(float *out, glad_st *st, int reverse)
{
    memset(out, 0, sizeof(float) * 64 * 64);
    for (int l = 0; l < 2; l++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "feat.%s.%d", reverse ? "recon" : "image", l);
        snprintf(b, sizeof b, "feat.%s.%d", reverse ? "image" : "recon", l);
        glad_tensor fa = T(st, a), fb = T(st, b);
        int C = (int)fa.shape[0], h = (int)fa.shape[1], w = (int)fa.shape[2];
        float *m = malloc(sizeof(float) * h * w), up[64 * 64];
        CHECK(glad_score_nn_map(m, fa.data, h * w, fb.data, h * w, C) == 0);
        glad_resize_bilinear(up, 64, 64, m, 1, h, w, 1);
        for (int i = 0; i < 64 * 64; i++) out[i] += up[i];
        free(m);
        glad_tensor_free(&fa);
        glad_tensor_free(&fb);
    }
}

int main(void)
{
    glad_st *st;
    if (glad_st_open(&st, "tests/fixtures/scoring.case.safetensors")) { CHECKF(0, "fixture missing"); return check_done(); }
    const char *meta = glad_st_meta(st, "scores");
    glad_json *sc;
    CHECK(meta && glad_json_parse(meta, strlen(meta), &sc) == 0);
    float nn[64 * 64], rev[64 * 64], same[64 * 64], pix[64 * 64], fused[64 * 64], tmp[64 * 64];
    glad_tensor ref;

    nn_sum(nn, st, 0);
    ref = T(st, "nn_sum");
    CHECKF(max_abs_diff(nn, ref.data, 4096) < 1e-5, "nn_sum %g", max_abs_diff(nn, ref.data, 4096));
    glad_tensor_free(&ref);
    nn_sum(rev, st, 1);
    ref = T(st, "nn_reverse_sum");
    CHECKF(max_abs_diff(rev, ref.data, 4096) < 1e-5, "nn_reverse_sum %g", max_abs_diff(rev, ref.data, 4096));
    glad_tensor_free(&ref);

    /* DDAD same-position distance */
    memset(same, 0, sizeof same);
    for (int l = 0; l < 2; l++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "feat.image.%d", l);
        snprintf(b, sizeof b, "feat.recon.%d", l);
        glad_tensor fa = T(st, a), fb = T(st, b);
        int C = (int)fa.shape[0], h = (int)fa.shape[1], w = (int)fa.shape[2];
        float m[256], up[4096];
        CHECK(glad_score_same_map(m, fa.data, fb.data, C, h, w) == 0);
        glad_resize_bilinear(up, 64, 64, m, 1, h, w, 1);
        for (int i = 0; i < 4096; i++) same[i] += up[i];
        glad_tensor_free(&fa);
        glad_tensor_free(&fb);
    }
    ref = T(st, "same_sum");
    CHECKF(max_abs_diff(same, ref.data, 4096) < 1e-5, "same_sum %g", max_abs_diff(same, ref.data, 4096));
    glad_tensor_free(&ref);

    glad_tensor img = T(st, "image"), rec = T(st, "recon");
    CHECK(glad_score_pixel_map(pix, img.data, rec.data, 3, 64, 64, 0) == 0);
    ref = T(st, "pixel");
    CHECKF(max_abs_diff(pix, ref.data, 4096) < 1e-5, "pixel %g", max_abs_diff(pix, ref.data, 4096));
    glad_tensor_free(&ref);

    memcpy(fused, same, sizeof fused);
    glad_score_fuse(fused, pix, 4096, 1.0);
    ref = T(st, "fused_v1");
    CHECKF(max_abs_diff(fused, ref.data, 4096) < 1e-5, "fused_v1 %g", max_abs_diff(fused, ref.data, 4096));
    glad_tensor_free(&ref);

    memcpy(tmp, fused, sizeof tmp);
    CHECK(glad_score_gaussian_blur(tmp, 64, 64, 4) == 0);
    ref = T(st, "blur4_fused");
    CHECKF(max_abs_diff(tmp, ref.data, 4096) < 1e-5, "blur4 %g", max_abs_diff(tmp, ref.data, 4096));
    glad_tensor_free(&ref);
    CHECK_NEAR(glad_score_max(tmp, 4096), glad_json_num(glad_json_get(sc, "ddad_max_of_blur4_fused"), -1), 1e-5);
    CHECK_NEAR(glad_score_softmax_topk(tmp, 4096, 500), glad_json_num(glad_json_get(sc, "mdps_softmax_top500_sum_of_blur4_fused"), -1), 1e-5);

    float b6[4096];
    memcpy(b6, nn, sizeof b6);
    CHECK(glad_score_gaussian_blur(b6, 64, 64, 6) == 0);
    ref = T(st, "blur6_nn");
    CHECKF(max_abs_diff(b6, ref.data, 4096) < 1e-5, "blur6 %g", max_abs_diff(b6, ref.data, 4096));
    glad_tensor_free(&ref);
    CHECK_NEAR(glad_score_topk_mean(b6, 4096, 250), glad_json_num(glad_json_get(sc, "glad_top250_mean_of_blur6_nn"), -1), 1e-5);

    /* ADS-style top-10 on the layer-0 grid */
    glad_tensor fa = T(st, "feat.image.0"), fb = T(st, "feat.recon.0");
    float g0[256];
    CHECK(glad_score_nn_map(g0, fa.data, 256, fb.data, 256, 16) == 0);
    CHECK_NEAR(glad_score_topk_mean(g0, 256, 10), glad_json_num(glad_json_get(sc, "top10_mean_of_nn_sum_layer0_grid"), -1), 1e-5);
    glad_tensor_free(&fa);
    glad_tensor_free(&fb);

    /* 64x64 token grids (4096 x 4096 similarities) work, and tiling does not
     * change results: compare with a direct computation on a few rows */
    int n = 4096, C = 24;
    float *A = malloc(sizeof(float) * n * C), *B = malloc(sizeof(float) * n * C), *M = malloc(sizeof(float) * n);
    uint64_t s = 1;
    for (int i = 0; i < n * C; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull; A[i] = (float)((s >> 40) / 16777216.0 - 0.5);
        s = s * 6364136223846793005ull + 1442695040888963407ull; B[i] = (float)((s >> 40) / 16777216.0 - 0.5);
    }
    CHECK(glad_score_nn_map(M, A, n, B, n, C) == 0);
    int ok = 1;
    for (int i = 0; i < n; i += 511) {
        double na = 0, best = -2;
        for (int c = 0; c < C; c++) na += (double)A[c * n + i] * A[c * n + i];
        for (int j = 0; j < n; j++) {
            double d = 0, nb = 0;
            for (int c = 0; c < C; c++) { d += (double)A[c * n + i] * B[c * n + j]; nb += (double)B[c * n + j] * B[c * n + j]; }
            d /= sqrt(na) * sqrt(nb);
            if (d > best) best = d;
        }
        if (fabs((1 - best) - M[i]) > 1e-5) ok = 0;
    }
    CHECK(ok);
    free(A); free(B); free(M);
    /* reducers on a hand case */
    float v[5] = {1, 5, 3, 4, 2};
    CHECK(glad_score_max(v, 5) == 5 && glad_score_topk_mean(v, 5, 2) == 4.5);
    double z = exp(1) + exp(5) + exp(3) + exp(4) + exp(2);
    CHECK_NEAR(glad_score_softmax_topk(v, 5, 2), (exp(5) + exp(4)) / z, 1e-12);
    quantile_cases();
    glad_tensor_free(&img);
    glad_tensor_free(&rec);
    glad_json_free(sc);
    glad_st_close(st);
    return check_done();
}
