/* latent.h - GLAD's latent diffusion as published (Stable Diffusion v1:
 * models/sdunet.h + models/vae.h, ../shared/spec/latent-diffusion.md §1):
 * a model folder (convert.py sd / glad: unet.safetensors with the scheduler
 * config, vae.safetensors, prompt.safetensors with the two CLIP prompt
 * embeddings), the classifier-free-guided noise predictor on latents, the
 * VAE encode (a posterior sample, scaled) and decode, ADS with the x̂0
 * estimates decoded to images for the feature backbone, and one call that
 * runs the reconstruction strategies of denoise.h in latent space between
 * encode and decode. Not the networks, not the sampler (denoise.h, ddim.h). */
#ifndef GLAD_LATENT_H
#define GLAD_LATENT_H

#include "diffusion/denoise.h"
#include "models/sdunet.h"
#include "models/vae.h"

/* The noise draw index of the VAE posterior sample (glad_noise_fn): after
 * every draw glad_denoise_run makes (0 and 1..GLAD_DDIM_MAX_STEPS). */
#define GLAD_LATENT_VAE_DRAW (GLAD_DDIM_MAX_STEPS + 1)

typedef struct {
    glad_sdunet *unet;
    glad_vae *vae;
    int own;               /* 1: unet and vae are freed with the model */
    float *ctx;            /* (2, L, D): the embeddings of "" then of the prompt */
    int L, D;
    double guidance;       /* classifier-free guidance scale (GLAD: 9) */
    float scale;           /* the VAE's scaling_factor */
    int T;                 /* num_train_timesteps of the scheduler */
    double *alpha_bar;     /* T values, from the scheduler config */
    char *prompt;          /* the prompt's text when the file records it (or NULL) */
    /* work buffers of the noise predictor and the ADS decoder */
    int h, w, capB;
    float *x2, *e2, *t2, *c2, *ia, *ib;
    size_t cap2, icap;
    const glad_ads_fn *inner;
    glad_model_fn fn;
    glad_ads_fn ads;
} glad_latent;

/* 1 when path is a latent model: a folder holding unet.safetensors, or a
 * safetensors file whose config is a UNet2DConditionModel's. */
int glad_latent_is_model(const char *path);

/* Load a folder made by convert.py sd / glad (or its unet.safetensors: the
 * other files are taken from beside it). guidance starts at 9 (GLAD's).
 * Errors name the file: GLAD_EIO, GLAD_EFORMAT (scheduler config, prompt
 * embeddings of the wrong shape for the UNet), and the loaders' codes. */
int glad_latent_load(glad_latent *m, const char *path);

/* A model from networks in memory (borrowed: freed by their owner), the two
 * prompt embeddings (L x D each, copied) and the scheduler config JSON
 * (diffusers scheduler_config.json: num_train_timesteps, beta_start,
 * beta_end, beta_schedule linear | scaled_linear). */
int glad_latent_init(glad_latent *m, glad_sdunet *unet, glad_vae *vae, const float *ctx_uncond, const float *ctx_text, int L,
                     int D, const char *scheduler_json);
void glad_latent_free(glad_latent *m);

/* Image sides must be multiples of this (the VAE's factor times the UNet's). */
int glad_latent_size_multiple(const glad_latent *m);

/* z (B, L, H/f, W/f) = scale (mean + std n), the posterior of the VAE
 * encoding of x (B, 3, H, W) in [-1, 1], n = draw `k` of each record from nz
 * (NULL: the mean, n = 0). GLAD_ESHAPE for sizes the VAE cannot take. */
int glad_latent_encode(glad_latent *m, float *z, const float *x, int B, int H, int W, const glad_noise_fn *nz, int k);
/* x (B, 3, h f, w f) = decode(z / scale), no clamp. */
int glad_latent_decode(glad_latent *m, float *x, const float *z, int B, int h, int w);

/* The noise predictor on latents of h x w: per record, the UNet on
 * [x; x] with contexts [uncond; text], eps = eps_u + guidance (eps_t - eps_u).
 * Valid until the next call with another size. */
const glad_model_fn *glad_latent_eps_fn(glad_latent *m, int h, int w);

/* ADS for latent runs: x̂0_true and x̂0_pred decoded (÷ scale) and handed to
 * image_ads (an image-space map, e.g. glad_ads_backbone_fn), whose grid
 * SAFF resizes to the latent grid. Valid while m and image_ads are. */
const glad_ads_fn *glad_latent_ads_fn(glad_latent *m, const glad_ads_fn *image_ads);

/* GLAD's reconstruction of x (B, 3, H, W): encode (sample with draw
 * GLAD_LATENT_VAE_DRAW), glad_denoise_run in latent space with o (its plan
 * from m->alpha_bar; ADS through image_ads when o->ads), decode into recon
 * (B, 3, H, W). ads_step as glad_denoise_run's (may be NULL). */
int glad_latent_run(glad_latent *m, const glad_noise_fn *nz, const glad_ads_fn *image_ads, const glad_denoise_opts *o, int B,
                    const float *x, int H, int W, float *recon, int *ads_step);

#endif
