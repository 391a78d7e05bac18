/* test_unet_eps.c - the UNet noise-predictor adapter (diffusion/unet_eps.h)
 * on a tiny random UNet: eps is the UNet's forward bit for bit; the MDPS
 * guidance gradient equals finite differences of ‖x̂0(x, t) − y‖ per record,
 * and one record's gradient does not depend on its neighbours; a wrong shape
 * is refused. Also the library's per-record noise and MDPS distance. */
#include <stdlib.h>
#include "check.h"
#include "core/rng.h"
#include "diffusion/denoise.h"
#include "diffusion/unet_eps.h"

#define NC 2
#define NS 16
#define NB 2
#define NPER (NC * NS * NS)

/* ‖x̂0 − y‖ of record b, x̂0 = (x − √(1−ᾱ) ε(x))/√ᾱ, in double from the float eps */
static double objective(glad_unet *u, const float *x, const float *t, const float *y, double ab, int b)
{
    static float e[NB * NPER];
    if (glad_unet_forward(u, e, x, t, NB, 0, 0)) return NAN;
    double s = 0;
    for (int i = 0; i < NPER; i++) {
        size_t k = (size_t)NPER * b + i;
        double r = (x[k] - sqrt(1 - ab) * e[k]) / sqrt(ab) - y[k];
        s += r * r;
    }
    return sqrt(s);
}

int main(void)
{
    glad_unet_config c;
    glad_unet_config_default(&c, NS, NC);
    c.base = 32; c.nmults = 2; c.mults[0] = 1; c.mults[1] = 1; c.num_res_blocks = 1; c.heads = 2; c.nattn = 1; c.attn_res[0] = 8;
    glad_unet *u;
    CHECK(glad_unet_create(&u, &c) == 0);
    glad_unet_init(u, 3);
    /* the zero-initialised output layers would make eps constant in x */
    glad_rng r;
    glad_rng_seed(&r, 11, 0, 0);
    float *w = glad_unet_weights(u);
    for (size_t i = 0; i < glad_unet_nparams(u); i++) w[i] += (float)(0.05 * glad_rng_normal(&r));

    static float x[NB * NPER], y[NB * NPER], e1[NB * NPER], e2[NB * NPER], g[NB * NPER], g2[NB * NPER], xp[NB * NPER];
    float t[NB] = {300, 300};
    glad_rng_normal_f32(&r, x, NB * NPER);
    for (int i = 0; i < NB * NPER; i++) y[i] = (float)(0.5 * sin(0.1 * i));

    glad_unet_eps a;
    CHECK(glad_unet_eps_init(&a, u, NC, NS + 1, NS) == GLAD_ESHAPE);
    CHECK(strstr(glad_error_detail(), "[2,16,16]") != NULL);
    CHECK(glad_unet_eps_init(&a, u, NC, NS, NS) == 0);
    const glad_model_fn *m = glad_unet_eps_fn(&a);
    CHECK(m->eps && m->eps_grad && m->C == NC && m->H == NS && m->W == NS);

    /* eps is the UNet's forward */
    CHECK(m->eps(m->ctx, e1, x, t, NB) == 0);
    CHECK(glad_unet_forward(u, e2, x, t, NB, 0, 0) == 0);
    CHECK(memcmp(e1, e2, sizeof e1) == 0);

    /* the guidance gradient against central differences along random directions */
    double ab = 0.6;
    CHECK(m->eps_grad(m->ctx, e2, g, x, t, y, &ab, NB) == 0);
    double de = 0;
    for (int i = 0; i < NB * NPER; i++) de = fmax(de, fabs(e2[i] - e1[i]));
    CHECKF(de < 1e-5, "eps of the taped forward differs by %g", de);
    for (int b = 0; b < NB; b++)
        for (int trial = 0; trial < 3; trial++) {
            static float d[NPER];
            glad_rng_normal_f32(&r, d, NPER);
            double h = 1e-2, an = 0;
            for (int i = 0; i < NPER; i++) an += (double)g[NPER * b + i] * d[i];
            memcpy(xp, x, sizeof xp);
            for (int i = 0; i < NPER; i++) xp[NPER * b + i] = x[NPER * b + i] + (float)(h * d[i]);
            double fp = objective(u, xp, t, y, ab, b);
            for (int i = 0; i < NPER; i++) xp[NPER * b + i] = x[NPER * b + i] - (float)(h * d[i]);
            double fm = objective(u, xp, t, y, ab, b);
            double fd = (fp - fm) / (2 * h);
            CHECKF(fabs(an - fd) <= 1e-2 * fabs(fd) + 1e-3, "record %d direction %d: gradient %.6g, finite difference %.6g", b, trial, an, fd);
        }
    /* per-record norm: moving record 1's target leaves record 0's gradient alone */
    for (int i = NPER; i < NB * NPER; i++) y[i] += 0.7f;
    CHECK(m->eps_grad(m->ctx, e2, g2, x, t, y, &ab, NB) == 0);
    CHECK(memcmp(g, g2, NPER * sizeof(float)) == 0);
    CHECK(memcmp(g + NPER, g2 + NPER, NPER * sizeof(float)) != 0);
    glad_unet_eps_free(&a);

    /* noise: (seed, id, draw) only, Gaussian from lib/core/rng */
    uint64_t ids[2] = {glad_rng_hash_str("a/0"), glad_rng_hash_str("b/1")};
    glad_rng_noise nz;
    const glad_noise_fn *nf = glad_rng_noise_init(&nz, 5, ids);
    float n1[64], n2[64];
    nf->draw(nf->ctx, 1, 3, n1, 64);
    glad_rng_seed(&r, 5, ids[1], 3);
    glad_rng_normal_f32(&r, n2, 64);
    CHECK(memcmp(n1, n2, sizeof n1) == 0);
    nf = glad_rng_noise_init(&nz, 5, ids + 1);   /* the same record at another batch index */
    nf->draw(nf->ctx, 0, 3, n2, 64);
    CHECK(memcmp(n1, n2, sizeof n1) == 0);

    /* MDPS distance: a flat difference stays flat under the blur */
    float rc[2 * 9 * 9], yy[2 * 9 * 9], D[9 * 9];
    for (int i = 0; i < 2 * 81; i++) { yy[i] = 0.1f; rc[i] = i < 81 ? 0.5f : -0.3f; }
    CHECK(glad_mdps_pixel_dist.dist(glad_mdps_pixel_dist.ctx, D, rc, yy, 2, 9, 9) == 0);
    CHECK_NEAR(D[0], 0.4, 1e-6);
    CHECK_NEAR(D[40], 0.4, 1e-6);
    glad_unet_free(u);
    return check_done();
}
