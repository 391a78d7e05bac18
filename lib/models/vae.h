/* vae.h - the Stable Diffusion VAE: diffusers v0.20 AutoencoderKL with
 * DownEncoderBlock2D / UpDecoderBlock2D blocks (../shared/spec/latent-diffusion.md
 * §2, §4). Encoder to the posterior moments (quant_conv included), the
 * diagonal-Gaussian posterior (logvar clamped to [-30, 20]) and a sample from
 * caller-given noise, decoder from a latent (post_quant_conv included).
 * Built from the config diffusers writes to vae/config.json, read from the
 * model file's __metadata__["config"]; weights by their diffusers state_dict
 * names, the mid-block attention under either the v0.20 names
 * (group_norm/to_q/to_k/to_v/to_out.0) or the older ones
 * (query/key/value/proj_attn). Inference only, float32. Not the latent
 * scaling (callers multiply by scaling_factor after sampling and divide
 * before decoding, as GLAD does) and not the UNet (models/sdunet.h). */
#ifndef GLAD_VAE_H
#define GLAD_VAE_H

#include "core/glad.h"
#include "io/safetensors.h"

#define GLAD_VAE_MAX_LEVELS 8

typedef struct {
    int in_channels, out_channels, latent_channels;
    int nlevels;                              /* len(block_out_channels) = number of down / up blocks */
    int block_out[GLAD_VAE_MAX_LEVELS];       /* block_out_channels */
    int layers_per_block;                     /* encoder blocks have this many ResNets, decoder blocks one more */
    int norm_groups;                          /* norm_num_groups (every VAE GroupNorm has eps 1e-6) */
    float scaling_factor;                     /* 0.18215 for SD v1 */
    int mid_attention;                        /* mid_block_add_attention (later diffusers; default 1) */
    int quant_conv, post_quant_conv;          /* use_quant_conv / use_post_quant_conv (later diffusers; default 1) */
} glad_vae_config;

typedef struct glad_vae glad_vae;

/* Parse diffusers' vae/config.json text. Missing keys take AutoencoderKL's
 * defaults. GLAD_EFORMAT (bad JSON, wrong types), GLAD_EUNSUPPORTED (another
 * class, block type or activation than AutoencoderKL / DownEncoderBlock2D /
 * UpDecoderBlock2D / silu) or GLAD_ERANGE (absurd sizes: channels outside
 * 1..8192 or not a multiple of the groups, more than GLAD_VAE_MAX_LEVELS
 * levels, ...), with glad_error_detail() saying which. */
int glad_vae_config_parse(glad_vae_config *c, const char *json);

/* Load a model file: safetensors with the config in __metadata__["config"].
 * Every tensor the config implies is checked (name, shape, dtype F32 or F16,
 * finite) before the weights are allocated; a tensor of the encoder/decoder
 * the config does not imply is refused too (a config that does not match the
 * weights). Errors: GLAD_EIO (missing file, directory), GLAD_EFORMAT,
 * GLAD_EUNSUPPORTED, GLAD_ERANGE (config), GLAD_ENOTFOUND / GLAD_ESHAPE /
 * GLAD_EDTYPE / GLAD_ENAN (a tensor), each with the detail. */
int glad_vae_load(glad_vae **v, const char *path);
/* The same from an open file (path only names it in messages). */
int glad_vae_load_st(glad_vae **v, const glad_st *st, const char *path);
/* A model of config c with random weights, seeded (lib/core/rng): uniform
 * in +-1/sqrt(fan_in) for convolutions and linear layers, norms' gamma 1 and
 * beta 0. For tests and benchmarks (no file of an SD VAE's size needed). */
int glad_vae_create_random(glad_vae **v, const glad_vae_config *c, uint64_t seed);
void glad_vae_free(glad_vae *v);

const glad_vae_config *glad_vae_cfg(const glad_vae *v);
/* Image pixels per latent pixel along each axis: 2^(levels-1) (8 for SD). */
int glad_vae_down_factor(const glad_vae *v);
/* Parameters (number of floats) of the loaded model. */
size_t glad_vae_nparams(const glad_vae *v);

/* moments (B, 2L, H/f, W/f) = quant_conv(encoder(x)), x (B, in_channels, H, W)
 * in [-1, 1]; H and W multiples of f = glad_vae_down_factor. Channels 0..L-1
 * are the mean, L..2L-1 the (unclamped) logvar. GLAD_ESHAPE for other sizes,
 * GLAD_ENOMEM. Each image is computed on its own (results do not depend on
 * the batch). */
int glad_vae_encode(glad_vae *v, float *moments, const float *x, int B, int H, int W);

/* The posterior of moments (B, 2L, N): mean, logvar clamped to [-30, 20] and
 * std = exp(logvar / 2), each (B, L, N); any output may be NULL. */
void glad_vae_posterior(float *mean, float *logvar, float *std, const float *moments, int B, int L, size_t N);
/* z (B, L, N) = mean + std * noise (noise (B, L, N); NULL: the mean). */
void glad_vae_sample(float *z, const float *moments, const float *noise, int B, int L, size_t N);

/* x (B, out_channels, h f, w f) = decoder(post_quant_conv(z)), z (B, L, h, w);
 * no clamp. GLAD_ESHAPE for empty or oversized latents, GLAD_ENOMEM. */
int glad_vae_decode(glad_vae *v, float *x, const float *z, int B, int h, int w);

#endif
