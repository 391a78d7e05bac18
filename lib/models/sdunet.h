/* sdunet.h - Stable Diffusion's denoiser: diffusers v0.20 UNet2DConditionModel
 * for the block types SD uses (CrossAttnDownBlock2D, DownBlock2D,
 * UNetMidBlock2DCrossAttn, UpBlock2D, CrossAttnUpBlock2D; ResnetBlock2D with
 * the time embedding, Transformer2DModel with self- and cross-attention and a
 * GEGLU feed-forward), inference only, float32 compute
 * (../shared/spec/latent-diffusion.md sections 2, 3 and 5).
 * The config is diffusers' unet/config.json text, stored in the safetensors
 * file's __metadata__["config"]; weights carry the diffusers state_dict names.
 * Not the VAE (models/vae.h), not the text encoder (contexts are given as
 * token embeddings) and not the noise schedule or the sampler.
 * Status: the API is stable; forward: in progress (branch sdunet). */
#ifndef GLAD_SDUNET_H
#define GLAD_SDUNET_H

#include <stddef.h>
#include <stdint.h>
#include "core/glad.h"
#include "io/safetensors.h"

#define GLAD_SDUNET_MAX_BLOCKS 8

/* One diffusers config. Per-block lists are indexed by DOWN block (as in
 * config.json); up block i uses entry nblocks-1-i, the mid block the last. */
typedef struct {
    int in_channels, out_channels;
    int sample_size;                               /* informational only */
    int nblocks;                                   /* len(block_out_channels) */
    int block_out_channels[GLAD_SDUNET_MAX_BLOCKS];
    int down_cross[GLAD_SDUNET_MAX_BLOCKS];        /* 1: CrossAttnDownBlock2D, 0: DownBlock2D */
    int up_cross[GLAD_SDUNET_MAX_BLOCKS];          /* up block i: 1 CrossAttnUpBlock2D, 0 UpBlock2D */
    int layers_per_block[GLAD_SDUNET_MAX_BLOCKS];
    int heads[GLAD_SDUNET_MAX_BLOCKS];             /* attention_head_dim: the head COUNT (diffusers quirk) */
    int transformer_layers[GLAD_SDUNET_MAX_BLOCKS];/* transformer_layers_per_block */
    int mid_block;                                 /* 1: UNetMidBlock2DCrossAttn, 0: none (null) */
    int cross_attention_dim;
    int norm_num_groups;
    float norm_eps;
    int flip_sin_to_cos;
    float freq_shift;
    float mid_block_scale_factor;
    int use_linear_projection;                     /* proj_in/proj_out as Linear [C,C] instead of 1x1 conv */
    int time_embed_dim;                            /* time_embedding_dim or 4 x block_out_channels[0] */
} glad_sdunet_config;

typedef struct glad_sdunet glad_sdunet;

/* Parse diffusers' config.json text. GLAD_EFORMAT for bad JSON, GLAD_EINVAL
 * for a config outside the supported block types and options (the detail
 * names the key); a config that parses is also checked by
 * glad_sdunet_config_check. */
int glad_sdunet_config_parse(glad_sdunet_config *c, const char *json);
/* 0 when the config can be built (channel counts, groups, heads, sizes within
 * bounds and consistent); else GLAD_EINVAL with the detail. */
int glad_sdunet_config_check(const glad_sdunet_config *c);

/* Load a model file: config from __metadata__["config"], every tensor the
 * config implies checked (name, shape, F32 dtype) before anything of the
 * model's size is allocated. GLAD_EIO (file), GLAD_EFORMAT / GLAD_EINVAL
 * (config), GLAD_ENOTFOUND / GLAD_ESHAPE (a tensor missing or misshapen),
 * GLAD_ENAN (non-finite weight); glad_error_detail() names file and tensor. */
int glad_sdunet_load(const char *path, glad_sdunet **out);
int glad_sdunet_load_st(const glad_st *st, const char *path, glad_sdunet **out);
/* A model from a config with random weights (seeded, lib/core/rng; for tests
 * and benchmarks: no file of the full model's size is needed). */
int glad_sdunet_create_random(const glad_sdunet_config *c, uint64_t seed, glad_sdunet **out);
void glad_sdunet_free(glad_sdunet *n);

/* config accessors */
const glad_sdunet_config *glad_sdunet_cfg(const glad_sdunet *n);
int glad_sdunet_in_channels(const glad_sdunet *n);
int glad_sdunet_out_channels(const glad_sdunet *n);
int glad_sdunet_ctx_dim(const glad_sdunet *n);
/* H and W must be multiples of this (2^(nblocks-1)) */
int glad_sdunet_size_multiple(const glad_sdunet *n);
size_t glad_sdunet_nparams(const glad_sdunet *n);

/* eps (B, out_channels, H, W) = model(x (B, in_channels, H, W), t, ctx).
 * t: B timesteps (float, integer-valued as diffusers' int64 ones; the
 * sinusoid is formed in float32 as diffusers does). ctx: (B, L, ctx_dim)
 * token embeddings, L >= 1. Activations are planned per (B, H, W, L) and
 * kept between calls. GLAD_EINVAL for sizes the model cannot take (the
 * detail says why), GLAD_ENOMEM. */
int glad_sdunet_forward(glad_sdunet *n, float *eps, const float *x, int B, int H, int W, const float *t, const float *ctx,
                        int L);

/* Bytes of activation memory planned for the last forward. */
size_t glad_sdunet_activation_bytes(const glad_sdunet *n);
/* Floating-point operations of the last forward (convolutions, linear layers, attention products). */
double glad_sdunet_forward_flops(const glad_sdunet *n);

/* For tests: after a forward with dump set, the activation of a diffusers
 * submodule name (e.g. "down_blocks.0.attentions.0", "mid_block",
 * "time_embedding"), as the fixtures' act.* tensors lay it out; NULL if not
 * recorded. Valid until the next forward. n_out: element count. */
void glad_sdunet_set_dump(glad_sdunet *n, int on);
const float *glad_sdunet_dump(const glad_sdunet *n, const char *name, size_t *n_out);

#endif
