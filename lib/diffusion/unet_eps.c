/* unet_eps.c - see unet_eps.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "diffusion/unet_eps.h"

static int eps_fn(void *ctx, float *eps, const float *x, const float *t, int B)
{
    glad_unet_eps *a = ctx;
    return glad_unet_forward(a->u, eps, x, t, B, 0, 0);
}

/* g = d/dx ‖x̂0(x) − y‖ with x̂0 = (x − √(1−ᾱ) ε(x))/√ᾱ, r = x̂0 − y:
 * v = r/‖r‖ (per record), g = (v − √(1−ᾱ) Jᵀv)/√ᾱ, Jᵀv from the UNet backward
 * of a forward that kept its tape (train = 2: no dropout). */
static int eps_grad_fn(void *ctx, float *eps, float *g, const float *x, const float *t, const float *y, const double *ab, int B)
{
    glad_unet_eps *a = ctx;
    size_t per = (size_t)a->fn.C * a->fn.H * a->fn.W, n;
    if (B < 1 || glad_mul_size(per, (size_t)B, &n)) return glad_fail(GLAD_EINVAL, "guidance: batch of %d records", B);
    GLAD_TRY(glad_unet_forward(a->u, eps, x, t, B, 2, 0));
    if (n > a->cap) {
        float *v = realloc(a->v, n * sizeof(float)), *jt = v ? realloc(a->jt, n * sizeof(float)) : NULL;
        if (v) a->v = v;
        if (jt) a->jt = jt;
        if (!v || !jt) return glad_fail(GLAD_ENOMEM, "guidance: out of memory for %zu values", n);
        a->cap = n;
    }
    float *v = a->v, *jt = a->jt;
    memset(jt, 0, n * sizeof(float));   /* the backward adds into dx */
    double sa = sqrt(*ab), sb = sqrt(1 - *ab);
    for (int b = 0; b < B; b++) {
        double nr = 0;
        for (size_t i = 0; i < per; i++) {
            size_t k = per * b + i;
            double r = (x[k] - sb * eps[k]) / sa - y[k];
            v[k] = (float)r;
            nr += r * r;
        }
        nr = sqrt(nr) + 1e-12;
        for (size_t i = 0; i < per; i++) v[per * b + i] = (float)(v[per * b + i] / nr);
    }
    GLAD_TRY(glad_unet_backward(a->u, v, jt));
    for (size_t k = 0; k < n; k++) g[k] = (float)((v[k] - sb * jt[k]) / sa);
    return 0;
}

int glad_unet_eps_init(glad_unet_eps *a, glad_unet *u, int C, int H, int W)
{
    memset(a, 0, sizeof *a);
    const glad_unet_config *c = glad_unet_cfg(u);
    if (C != c->in_channels || H != c->img_size || W != c->img_size)
        return glad_fail(GLAD_ESHAPE, "the UNet takes [%d,%d,%d] images, not [%d,%d,%d]", c->in_channels, c->img_size, c->img_size, C, H, W);
    a->u = u;
    a->fn = (glad_model_fn){eps_fn, eps_grad_fn, a, C, H, W};
    return 0;
}

const glad_model_fn *glad_unet_eps_fn(glad_unet_eps *a) { return &a->fn; }

void glad_unet_eps_free(glad_unet_eps *a)
{
    if (!a) return;
    free(a->v);
    free(a->jt);
    memset(a, 0, sizeof *a);
}
