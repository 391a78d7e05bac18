/* denoise.c - the reconstruction loops of denoise.h and the callbacks the
 * programs give them. Work buffers are allocated once per call (a few copies
 * of the batch). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/rng.h"
#include "diffusion/denoise.h"
#include "score/score.h"
#include "imgproc/resize.h"

const char *const glad_saff_masks[] = {"sigmoid", "binary", NULL};

void glad_denoise_opts_default(glad_denoise_opts *o)
{
    memset(o, 0, sizeof *o);
    o->topk = 10;
    o->threshold = 0.3;
    o->min_step = 100;
    o->saff_threshold = 0.5;
}

static int all_finite(const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++) if (!isfinite(a[i])) return 0;
    return 1;
}

static float *alloc_f(size_t n) { return malloc((n ? n : 1) * sizeof(float)); }

/* xin is noised to T', y conditions (DDAD) and is ADS's input; glad_denoise_run has xin = y */
static int denoise(const glad_model_fn *m, const glad_noise_fn *nz, const glad_ads_fn *ads, const glad_denoise_opts *o, int B,
                   const float *xin, const float *y, float *recon, int *ads_step)
{
    const glad_ddim_plan *p = &o->plan;
    size_t per = (size_t)m->C * m->H * m->W, n = per * (size_t)B, hw = (size_t)m->H * m->W;
    if (o->ads && !ads) return glad_fail(GLAD_EINVAL, "ADS needs a feature-map callback");
    int rc = GLAD_ENOMEM;
    float *x = alloc_f(n), *eps = alloc_f(n), *x0 = alloc_f(n), *eps0 = NULL, *x0t = NULL, *z = alloc_f(per),
          *t = alloc_f((size_t)B), *A = NULL, *tmp = NULL, *mask = NULL;
    int *decided = calloc((size_t)B, sizeof(int));
    if (!x || !eps || !x0 || !z || !t || !decided) goto out;
    if (o->ads) {
        eps0 = alloc_f(n); x0t = alloc_f(per); A = alloc_f(GLAD_ADS_MAX_GRID); tmp = alloc_f(GLAD_ADS_MAX_GRID);
        mask = alloc_f(hw);
        if (!eps0 || !x0t || !A || !tmp || !mask) goto out;
    }
    /* x_{T'} = √ᾱ y + √(1−ᾱ) ε0 with the record's own ε0 */
    for (int b = 0; b < B; b++) {
        nz->draw(nz->ctx, b, 0, z, per);
        if (eps0) memcpy(eps0 + per * b, z, per * sizeof(float));
        glad_ddim_q_sample(x + per * b, xin + per * b, z, p->ab_noise, per);
        if (ads_step) ads_step[b] = -1;
    }
    for (int s = 0; s < p->n; s++) {
        for (int b = 0; b < B; b++) t[b] = (float)p->t[s];
        GLAD_TRYG(rc, m->eps(m->ctx, eps, x, t, B), out);
        if (o->cond_w != 0.0) glad_ddim_condition(eps, x, y, p->ab[s], o->cond_w, n);
        glad_ddim_x0(x0, x, eps, p->ab[s], n);
        for (int b = 0; o->ads && b < B; b++) {
            if (decided[b]) continue;
            float *xb0 = x0 + per * b;
            glad_ddim_x0_true(x0t, y + per * b, eps0 + per * b, eps + per * b, p->ab[s], per);
            int h = 0, w = 0;
            GLAD_TRYG(rc, ads->amap(ads->ctx, A, &h, &w, x0t, xb0, m->C, m->H, m->W), out);
            if (h <= 0 || w <= 0 || (long)h * w > GLAD_ADS_MAX_GRID) {
                rc = glad_fail(GLAD_ESHAPE, "ADS map of %dx%d cells (1..%d)", h, w, GLAD_ADS_MAX_GRID);
                goto out;
            }
            if (!all_finite(A, (size_t)h * w)) {
                rc = glad_fail(GLAD_ENAN, "the ADS anomaly map at t = %d contains NaN or infinity", p->t[s]);
                goto out;
            }
            double score = glad_score_topk_mean(A, (size_t)h * w, (size_t)o->topk);
            if (isnan(score)) { rc = GLAD_ENOMEM; goto out; }   /* its copy could not be allocated */
            if (score > o->threshold) {
                if (o->saff) {
                    /* m = sigmoid(A) (or the binary ablation) upsampled to the image grid */
                    for (int i = 0; i < h * w; i++)
                        tmp[i] = o->saff_binary ? (A[i] > o->saff_threshold ? 1.0f : 0.0f) : 1.0f / (1.0f + expf(-A[i]));
                    GLAD_TRYG(rc, glad_resize_bilinear(mask, m->H, m->W, tmp, 1, h, w, 0), out);
                    glad_ddim_saff(xb0, x0t, mask, m->C, hw);
                }
                decided[b] = 1;
                if (ads_step) ads_step[b] = p->t[s];
            } else if (p->t[s] < o->min_step) {
                memcpy(xb0, x0t, per * sizeof(float));
                decided[b] = 1;
                if (ads_step) ads_step[b] = p->t[s];
            }
        }
        /* x_next = √ᾱn x̂0 + c1 z + c2 ε (ε stays the model's, as in GLAD) */
        for (int b = 0; b < B; b++) {
            if (o->eta != 0.0) nz->draw(nz->ctx, b, s + 1, z, per);
            glad_ddim_step(x + per * b, x0 + per * b, eps + per * b, o->eta != 0.0 ? z : NULL, p->ab[s],
                           p->ab_next[s], o->eta, per);
        }
    }
    memcpy(recon, x, n * sizeof(float));
    rc = 0;
out:
    free(x); free(eps); free(x0); free(eps0); free(x0t); free(z); free(t); free(A); free(tmp); free(mask); free(decided);
    return rc;
}

int glad_denoise_run(const glad_model_fn *m, const glad_noise_fn *nz, const glad_ads_fn *ads,
                     const glad_denoise_opts *o, int B, const float *y, float *recon, int *ads_step)
{
    return denoise(m, nz, ads, o, B, y, y, recon, ads_step);
}

int glad_denoise_run_cond(const glad_model_fn *m, const glad_noise_fn *nz, const glad_denoise_opts *o, int B, const float *x,
                          const float *y, float *recon)
{
    if (o->ads) return glad_fail(GLAD_EINVAL, "ADS is not defined with a separate conditioning target");
    return denoise(m, nz, NULL, o, B, x, y, recon, NULL);
}

/* One guided (optionally masked) DDIM pass of MDPS with η = 1:
 *   x_t ← M ⊙ x_t + (1 − M) ⊙ (√ᾱ y + √(1−ᾱ) z0)      (mask, same z0 every step)
 *   ε̂ = ε + w √(1−ᾱ) ∇ₓ‖x̂0(x_t) − y‖                   (DPS guidance)
 * noise draws: k0 for z0, k0 + 1 + s for the step noise. */
static int mdps_pass(const glad_model_fn *m, const glad_noise_fn *nz, const glad_ddim_plan *p, double w,
                     const float *M, int B, const float *y, float *out, int k0)
{
    size_t per = (size_t)m->C * m->H * m->W, n = per * (size_t)B, hw = (size_t)m->H * m->W;
    int rc = GLAD_ENOMEM;
    float *x = alloc_f(n), *eps = alloc_f(n), *g = w != 0.0 ? alloc_f(n) : NULL, *x0 = alloc_f(n),
          *z0 = alloc_f(n), *z = alloc_f(per), *t = alloc_f((size_t)B);
    if (!x || !eps || !x0 || !z0 || !z || !t || (w != 0.0 && !g)) goto out;
    if (w != 0.0 && !m->eps_grad) { rc = glad_fail(GLAD_EINVAL, "MDPS guidance needs the model's gradient callback"); goto out; }
    for (int b = 0; b < B; b++) {
        nz->draw(nz->ctx, b, k0, z0 + per * b, per);
        glad_ddim_q_sample(x + per * b, y + per * b, z0 + per * b, p->ab_noise, per);
    }
    for (int s = 0; s < p->n; s++) {
        double ab = p->ab[s], sa = sqrt(ab), sb = sqrt(1.0 - ab);
        if (M)
            for (int b = 0; b < B; b++)
                for (int c = 0; c < m->C; c++)
                    for (size_t i = 0; i < hw; i++) {
                        size_t k = per * b + hw * c + i;
                        float mk = M[hw * b + i];
                        x[k] = mk * x[k] + (1.0f - mk) * (float)(sa * y[k] + sb * z0[k]);
                    }
        for (int b = 0; b < B; b++) t[b] = (float)p->t[s];
        if (w != 0.0) {
            GLAD_TRYG(rc, m->eps_grad(m->ctx, eps, g, x, t, y, &p->ab[s], B), out);
            for (size_t i = 0; i < n; i++) eps[i] = (float)(eps[i] + w * sb * g[i]);
        } else
            GLAD_TRYG(rc, m->eps(m->ctx, eps, x, t, B), out);
        glad_ddim_x0(x0, x, eps, ab, n);
        for (int b = 0; b < B; b++) {
            nz->draw(nz->ctx, b, k0 + 1 + s, z, per);
            glad_ddim_step(x + per * b, x0 + per * b, eps + per * b, z, ab, p->ab_next[s], 1.0, per);
        }
    }
    memcpy(out, x, n * sizeof(float));
    rc = 0;
out:
    free(x); free(eps); free(g); free(x0); free(z0); free(z); free(t);
    return rc;
}

int glad_mdps_run(const glad_model_fn *m, const glad_noise_fn *nz, const glad_dist_fn *dist,
                  const glad_mdps_opts *o, int B, const float *y, float *recon, float *samples, float *mask)
{
    size_t per = (size_t)m->C * m->H * m->W, n = per * (size_t)B, hw = (size_t)m->H * m->W;
    if (o->samples < 1) return glad_fail(GLAD_EINVAL, "MDPS: %d samples", o->samples);
    if (o->use_mask && !dist) return glad_fail(GLAD_EINVAL, "MDPS: the mask needs a distance callback");
    int rc = GLAD_ENOMEM, K = o->samples;
    float *M = NULL, *D = NULL, *buf = alloc_f(n);
    if (!buf) goto out;
    /* noise draw indices: pass 1 uses 0..; sample k uses a disjoint block */
    int block = GLAD_DDIM_MAX_STEPS + 2;
    if (o->use_mask) {
        M = alloc_f(hw * (size_t)B);
        D = alloc_f(hw);
        if (!M || !D) goto out;
        GLAD_TRYG(rc, mdps_pass(m, nz, &o->mask_plan, o->mask_guidance, NULL, B, y, buf, 0), out);
        for (int b = 0; b < B; b++) {
            GLAD_TRYG(rc, dist->dist(dist->ctx, D, buf + per * b, y + per * b, m->C, m->H, m->W), out);
            if (!all_finite(D, hw)) { rc = glad_fail(GLAD_ENAN, "the MDPS mask distance map contains NaN or infinity"); goto out; }
            float lo = D[0], hi = D[0];
            for (size_t i = 1; i < hw; i++) { if (D[i] < lo) lo = D[i]; if (D[i] > hi) hi = D[i]; }
            double thr = o->threshold_absolute ? o->mask_threshold : lo + o->mask_threshold * (hi - lo);
            for (size_t i = 0; i < hw; i++) M[hw * b + i] = D[i] > thr ? 1.0f : 0.0f;
        }
        if (mask) memcpy(mask, M, hw * (size_t)B * sizeof(float));
    }
    memset(recon, 0, n * sizeof(float));
    for (int k = 0; k < K; k++) {
        GLAD_TRYG(rc, mdps_pass(m, nz, &o->plan, o->guidance, M, B, y, buf, block * (k + 1)), out);
        for (size_t i = 0; i < n; i++) recon[i] += buf[i] / (float)K;
        if (samples) memcpy(samples + n * k, buf, n * sizeof(float));
    }
    rc = 0;
out:
    free(M); free(D); free(buf);
    return rc;
}

/* ---- the callbacks the programs use ---- */

static void rng_noise_draw(void *ctx, int b, int k, float *out, size_t n)
{
    glad_rng_noise *z = ctx;
    glad_rng r;
    glad_rng_seed(&r, z->seed, z->ids[b], (uint64_t)k);
    glad_rng_normal_f32(&r, out, n);
}

const glad_noise_fn *glad_rng_noise_init(glad_rng_noise *z, uint64_t seed, const uint64_t *ids)
{
    z->seed = seed;
    z->ids = ids;
    z->fn = (glad_noise_fn){rng_noise_draw, z};
    return &z->fn;
}

static int ads_backbone_map(void *ctx, float *A, int *h, int *w, const float *x0t, const float *x0p, int C, int H, int W)
{
    glad_ads_backbone *a = ctx;
    float *ft, *fp;
    int c1, h1, w1, c2, h2, w2;
    GLAD_TRY(glad_backbone_features(a->bb, x0t, C, H, W, 1, &a->layer, &ft, &c1, &h1, &w1));
    int rc = glad_backbone_features(a->bb, x0p, C, H, W, 1, &a->layer, &fp, &c2, &h2, &w2);
    if (rc) { free(ft); return rc; }
    if ((long)h1 * w1 > GLAD_ADS_MAX_GRID) rc = glad_fail(GLAD_ESHAPE, "ADS: a %dx%d feature grid exceeds %d cells", h1, w1, GLAD_ADS_MAX_GRID);
    else rc = glad_score_nn_map(A, ft, h1 * w1, fp, h2 * w2, c1);
    *h = h1;
    *w = w1;
    free(ft);
    free(fp);
    return rc;
}

int glad_ads_backbone_init(glad_ads_backbone *a, glad_backbone *bb, int layer)
{
    int lo, hi, dl[GLAD_BACKBONE_MAX_LAYERS], nd = glad_backbone_default_layers(bb, dl);
    glad_backbone_layer_range(bb, &lo, &hi);
    if (layer < 0) layer = dl[nd - 1];
    if (layer < lo || layer > hi) return glad_fail(GLAD_ERANGE, "the %s backbone has layers %d..%d", glad_backbone_kind(bb), lo, hi);
    a->bb = bb;
    a->layer = layer;
    a->fn = (glad_ads_fn){ads_backbone_map, a};
    return 0;
}

const glad_ads_fn *glad_ads_backbone_fn(glad_ads_backbone *a) { return &a->fn; }

static int mdps_pixel_dist(void *ctx, float *D, const float *recon, const float *y, int C, int H, int W)
{
    (void)ctx;
    GLAD_TRY(glad_score_pixel_map(D, recon, y, C, H, W, 0));
    return glad_score_gaussian_blur(D, H, W, 4.0);
}

const glad_dist_fn glad_mdps_pixel_dist = {mdps_pixel_dist, NULL};
