/* unet_eps.h - the diffusion UNet (models/unet.h) as the noise predictor of
 * the reconstruction strategies (diffusion/denoise.h): eps = ε_θ(x, t), and
 * for MDPS guidance eps together with grad = ∇_x ‖x̂0(x, t) − y‖₂ per record,
 * x̂0 = (x − √(1−ᾱ) ε_θ(x, t))/√ᾱ, through the UNet's backward. Not the
 * network and not the sampler: an adapter between the two. */
#ifndef GLAD_UNET_EPS_H
#define GLAD_UNET_EPS_H

#include "diffusion/denoise.h"
#include "models/unet.h"

typedef struct {
    glad_unet *u;          /* borrowed: the caller keeps and frees it */
    glad_model_fn fn;
    float *v, *jt;         /* guidance work buffers (cap floats each) */
    size_t cap;
} glad_unet_eps;

/* Wrap u for images of C x H x W (must be the UNet's channels and size:
 * GLAD_ESHAPE with glad_error_detail() saying so otherwise). */
int glad_unet_eps_init(glad_unet_eps *a, glad_unet *u, int C, int H, int W);
/* The callbacks; valid while a is. eps_grad is set (MDPS guidance works). */
const glad_model_fn *glad_unet_eps_fn(glad_unet_eps *a);
/* Frees the work buffers, not the UNet. */
void glad_unet_eps_free(glad_unet_eps *a);

#endif
