/* test_synth.c - Perlin noise against GLAD's rand_perlin_2d_np with stored
 * random angles (tests/fixtures/perlin.case.safetensors, 1e-9), Otsu and
 * foreground masks, and the anomaly synthesis' invariants. */
#include <stdlib.h>
#include "check.h"
#include "imgproc/foreground.h"
#include "io/safetensors.h"
#include "synth/anomaly.h"
#include "synth/perlin.h"

static void perlin_parity(void)
{
    glad_st *st;
    if (glad_st_open(&st, "tests/fixtures/perlin.case.safetensors")) { CHECKF(0, "perlin fixture missing"); return; }
    const char *cases[] = {"perlin_64x64_r4x8", "perlin_64x64_r2x2", "perlin_256x256_r32x1"};
    int dims[3][4] = {{64, 64, 4, 8}, {64, 64, 2, 2}, {256, 256, 32, 1}};
    for (int c = 0; c < 3; c++) {
        char n[128];
        glad_tensor u, ref, mask;
        snprintf(n, sizeof n, "%s.u", cases[c]);
        CHECK(glad_st_get(st, n, &u) == 0 && u.dtype == GLAD_DT_F64);
        snprintf(n, sizeof n, "%s.noise", cases[c]);
        CHECK(glad_st_get(st, n, &ref) == 0);
        snprintf(n, sizeof n, "%s.mask", cases[c]);
        CHECK(glad_st_get(st, n, &mask) == 0);
        int h = dims[c][0], w = dims[c][1];
        double *out = malloc(sizeof(double) * h * w), e = 0;
        CHECK(glad_perlin_from_u(out, h, w, dims[c][2], dims[c][3], u.data) == 0);
        int mask_ok = 1;
        for (int i = 0; i < h * w; i++) {
            e = fmax(e, fabs(out[i] - ((double *)ref.data)[i]));
            if ((out[i] > 0.3) != (((uint8_t *)mask.data)[i] != 0)) mask_ok = 0;
        }
        CHECKF(e < 1e-9, "%s max err %g", cases[c], e);
        CHECK(mask_ok);
        free(out);
        glad_tensor_free(&u); glad_tensor_free(&ref); glad_tensor_free(&mask);
    }
    glad_st_close(st);
}

int main(void)
{
    perlin_parity();
    /* Otsu on a bimodal image: threshold between the modes */
    uint8_t g[1000];
    for (int i = 0; i < 1000; i++) g[i] = i < 600 ? (uint8_t)(40 + i % 10) : (uint8_t)(200 + i % 7);
    int t = glad_otsu_threshold(g, 1000);
    CHECK(t >= 49 && t < 200);
    /* foreground: a dark disc on a bright background, mode dark */
    int S = 32;
    float img[32 * 32];
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) img[y * S + x] = ((x - 16) * (x - 16) + (y - 16) * (y - 16) < 64) ? -0.8f : 0.7f;
    uint8_t fg[32 * 32];
    glad_foreground_mask(fg, img, 1, S, S, GLAD_FG_DARK);
    CHECK(fg[16 * S + 16] == 1 && fg[0] == 0);
    glad_foreground_mask(fg, img, 1, S, S, GLAD_FG_BRIGHT);
    CHECK(fg[16 * S + 16] == 0 && fg[0] == 1);
    CHECK(glad_fg_mode_for_class("screw", 0) == GLAD_FG_DARK && glad_fg_mode_for_class("pill", 0) == GLAD_FG_BRIGHT &&
          glad_fg_mode_for_class("carpet", 0) == GLAD_FG_NONE && glad_fg_mode_for_class("bottle", 1) == GLAD_FG_NONE);
    /* synthesis invariants on a 64x64 RGB image */
    S = 64;
    size_t n = 3 * S * S;
    float *im = malloc(n * sizeof(float)), *an = malloc(n * sizeof(float)), *an2 = malloc(n * sizeof(float));
    uint8_t *m = malloc(S * S), *m2 = malloc(S * S);
    for (size_t i = 0; i < n; i++) im[i] = (float)sin(i * 0.01) * 0.5f;
    int made = 0, outside_ok = 1, determ = 1;
    for (int k = 0; k < 40; k++) {
        glad_synth_opts o;
        glad_synth_opts_default(&o);
        o.p = 1.0;
        o.fg = GLAD_FG_NONE;
        int got = glad_synth_anomaly(an, m, im, 3, S, S, &o, 7, (uint64_t)k, NULL);
        glad_synth_anomaly(an2, m2, im, 3, S, S, &o, 7, (uint64_t)k, NULL);
        if (memcmp(an, an2, n * sizeof(float)) || memcmp(m, m2, S * S)) determ = 0;
        made += got > 0;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < S * S; i++)
                if (!m[i] && an[c * S * S + i] != im[c * S * S + i]) outside_ok = 0;
    }
    CHECK(determ);
    CHECK(outside_ok);
    CHECKF(made >= 30, "only %d of 40 draws made an anomaly with p = 1", made);
    /* p = 0: never */
    glad_synth_opts o;
    glad_synth_opts_default(&o);
    o.p = 0;
    CHECK(glad_synth_anomaly(an, m, im, 3, S, S, &o, 7, 1, NULL) == 0 && memcmp(an, im, n * sizeof(float)) == 0);
    free(im); free(an); free(an2); free(m); free(m2);
    return check_done();
}
