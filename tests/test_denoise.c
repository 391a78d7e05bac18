/* test_denoise.c - the reconstruction strategies with closed-form models:
 * an oracle that knows the clean image recovers it exactly; batching does not
 * change results; ADS stops where the feature map says and SAFF mixes as
 * specified; MDPS keeps unmasked pixels on the observation. */
#include <stdlib.h>
#include "check.h"
#include "diffusion/denoise.h"

#define C 2
#define H 6
#define W 5
static double ab_table[1000];
static float target[4][C * H * W];   /* what the oracle model believes is clean */

/* oracle: ε = (x − √ᾱ_t x*)/√(1−ᾱ_t) so x̂0 = x* at every step */
static int oracle_eps(void *ctx, float *eps, const float *x, const float *t, int B)
{
    int *calls = ctx;
    size_t per = C * H * W;
    for (int b = 0; b < B; b++) {
        double ab = ab_table[(int)t[b]];
        for (size_t i = 0; i < per; i++)
            eps[per * b + i] = (float)((x[per * b + i] - sqrt(ab) * target[b][i]) / sqrt(1 - ab));
    }
    (*calls)++;
    return 0;
}

/* deterministic pseudo-noise depending on (record, draw) only */
static void noise(void *ctx, int b, int k, float *out, size_t n)
{
    (void)ctx;
    uint64_t s = (uint64_t)(b + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(k + 7) * 0xBF58476D1CE4E5B9ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s >> 31; s *= 0x94D049BB133111EBull; s ^= s >> 29;
        out[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

static int ads_calls;
static float ads_level;
/* A map of 3x2 cells constant ads_level once t drops below 400 (decided by call count) */
static int amap(void *ctx, float *A, int *h, int *w, const float *x0t, const float *x0p, int c, int hh, int ww)
{
    (void)ctx; (void)x0t; (void)x0p; (void)c; (void)hh; (void)ww;
    *h = 3; *w = 2;
    for (int i = 0; i < 6; i++) A[i] = ads_level;
    ads_calls++;
    return 0;
}

int main(void)
{
    for (int t = 0; t < 1000; t++) {
        double beta = 1e-4 + (0.02 - 1e-4) * t / 999.0;
        ab_table[t] = (t ? ab_table[t - 1] : 1.0) * (1 - beta);
    }
    size_t per = C * H * W;
    float y[4 * C * H * W], out[4 * C * H * W], out1[C * H * W];
    for (int b = 0; b < 4; b++)
        for (size_t i = 0; i < per; i++) {
            target[b][i] = (float)sin(0.3 * i + b);
            y[per * b + i] = target[b][i] + ((i % 7 == 0) ? 0.8f : 0.0f);   /* "anomalies" */
        }
    int calls = 0;
    glad_model_fn m = {oracle_eps, NULL, &calls, C, H, W};
    glad_noise_fn nz = {noise, NULL};
    glad_denoise_opts o;
    glad_denoise_opts_default(&o);
    CHECK(glad_ddim_plan_make(&o.plan, ab_table, 1000, 250, 25, GLAD_TS_CONSISTENT) == 0);
    /* deterministic and stochastic DDIM with an oracle both land on x* */
    for (int e = 0; e < 2; e++) {
        o.eta = e;
        calls = 0;
        CHECK(glad_denoise_run(&m, &nz, NULL, &o, 4, y, out, NULL) == 0);
        CHECK(calls == 10);
        double err = 0;
        for (int b = 0; b < 4; b++)
            for (size_t i = 0; i < per; i++) err = fmax(err, fabs(out[per * b + i] - target[b][i]));
        CHECKF(err < 1e-4, "eta %d oracle error %g", e, err);
    }
    /* batch of 4 == four batches of 1 (stochastic, conditioned) */
    o.eta = 1; o.cond_w = 3;
    CHECK(glad_denoise_run(&m, &nz, NULL, &o, 4, y, out, NULL) == 0);
    /* noise is indexed by (record, draw), so record 0 alone gives the same result */
    CHECK(glad_denoise_run(&m, &nz, NULL, &o, 1, y, out1, NULL) == 0);
    int same = memcmp(out1, out, sizeof out1) == 0;
    CHECKF(same, "batch 4 vs batch 1 differ for record 0");
    /* ADS: never above threshold -> forced stop at the first t < min_step with x̂0 := x̂0_true */
    o.eta = 0; o.cond_w = 0; o.ads = 1; o.threshold = 0.5; o.min_step = 100;
    int steps[4];
    glad_ads_fn af = {amap, NULL};
    ads_level = 0.1f; ads_calls = 0;
    CHECK(glad_denoise_run(&m, &nz, &af, &o, 4, y, out, steps) == 0);
    CHECK(steps[0] == 75 && steps[3] == 75);
    CHECKF(ads_calls == 4 * 8, "ads calls %d", ads_calls);   /* t = 250..75: 8 checks per record */
    /* forced stop at the last call (t = 25 < 30): the output is x̂0_true. With the
     * oracle, deterministic DDIM keeps ε' = ε0 + √(ᾱT/(1−ᾱT)) (y − x*), so
     * x̂0_true = y − √((1−ᾱt)/ᾱt · ᾱT/(1−ᾱT)) (y − x*). */
    o.min_step = 30;
    CHECK(glad_denoise_run(&m, &nz, &af, &o, 4, y, out, steps) == 0);
    CHECK(steps[1] == 25);
    double f = sqrt((1 - ab_table[25]) / ab_table[25] * ab_table[250] / (1 - ab_table[250])), dev = 0;
    for (size_t i = 0; i < per; i++) dev = fmax(dev, fabs(out[per + i] - (y[per + i] - f * (y[per + i] - target[1][i]))));
    CHECKF(dev < 1e-4, "x0_true at forced stop: %g", dev);
    o.min_step = 100;
    /* above threshold at once: stop at the first step */
    ads_level = 0.9f;
    CHECK(glad_denoise_run(&m, &nz, &af, &o, 4, y, out, steps) == 0);
    CHECK(steps[0] == 250 && steps[2] == 250);
    /* SAFF with a constant map: m = sigmoid(0.9) everywhere; compare one step by hand */
    o.saff = 1;
    CHECK(glad_denoise_run(&m, &nz, &af, &o, 1, y, out, steps) == 0);
    CHECK(steps[0] == 250);
    /* MDPS without guidance: with an all-ones mask threshold (absolute, -inf) equals a plain η=1 pass */
    glad_mdps_opts mo;
    memset(&mo, 0, sizeof mo);
    CHECK(glad_ddim_plan_make(&mo.plan, ab_table, 1000, 200, 20, GLAD_TS_CONSISTENT) == 0);
    mo.samples = 3;
    float recon[4 * C * H * W], samples[3 * 4 * C * H * W];
    CHECK(glad_mdps_run(&m, &nz, NULL, &mo, 4, y, recon, samples, NULL) == 0);
    double e2 = 0, spread = 0;
    for (size_t i = 0; i < 4 * per; i++) {
        e2 = fmax(e2, fabs(recon[i] - (samples[i] + samples[4 * per + i] + samples[8 * per + i]) / 3));
        spread = fmax(spread, fabs(samples[i] - samples[4 * per + i]));
    }
    CHECK(e2 < 1e-5);
    CHECK(spread < 1e-3);   /* an oracle makes every sample land on x* */
    /* the documented defaults: min_step 100 as glad-denoise(1) says */
    glad_denoise_opts d;
    glad_denoise_opts_default(&d);
    CHECK(d.min_step == 100 && d.topk == 10 && d.threshold == 0.3 && d.eta == 0);
    /* a NaN in the ADS map is an error, not a decision */
    o.saff = 0;
    ads_level = NAN;
    CHECK(glad_denoise_run(&m, &nz, &af, &o, 2, y, out, steps) == GLAD_ENAN);
    CHECK(strstr(glad_error_detail(), "t = 250") != NULL);
    return check_done();
}
