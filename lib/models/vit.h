/* vit.h - the DINO Vision Transformer (ViT-S/8, ViT-B/8, /16 variants;
 * ../shared/spec/architectures.md §2), inference only: weights from
 * safetensors with the original DINO key names, raw block outputs (tokens)
 * and feature maps (B, dim, H/p, W/p) of chosen blocks. Input sizes other than
 * the trained grid interpolate the positional embedding bicubically exactly as
 * DINO's interpolate_pos_encoding. Not a trainer (no backward), not the image
 * normalisation (the caller normalises), not the L2 normalisation of tokens. */
#ifndef GLAD_VIT_H
#define GLAD_VIT_H

#include "core/glad.h"

typedef struct { int patch, dim, depth, heads, mlp_hidden, pos_grid; float eps; } glad_vit_config;
typedef struct glad_vit glad_vit;

/* Load from safetensors. Config comes from __metadata__["config"] JSON when present
 * (keys patch_size, embed_dim, depth, num_heads, layernorm_eps, pos_grid, mlp_ratio,
 * qkv_bias, as in ../shared/fixtures/dino-vit.weights.safetensors), else is inferred
 * from shapes with heads = dim/64 (DINO), eps 1e-6. Every tensor's shape is validated
 * and its values must be finite (GLAD_ENAN otherwise); on error
 * glad_error_detail() names the file and the tensor. */
int glad_vit_load(glad_vit **v, const char *path);
void glad_vit_free(glad_vit *v);
const glad_vit_config *glad_vit_cfg(const glad_vit *v);

/* Raw block outputs, tokens (B, 1+N, dim) with cls first, before the final norm, for the
 * nb 1-based block indices in blocks[] (any order); tokens[i] caller-allocated.
 * cls_norm: NULL or (B, dim): the cls token after the final norm (after the last block).
 * x is (B,3,H,W), H and W multiples of the patch, already normalised by the caller.
 * Each image is computed on its own (its own GEMMs), so a record's result does not
 * depend on the rest of its batch. */
int glad_vit_forward_tokens(glad_vit *v, const float *x, int B, int H, int W, int nb, const int *blocks, float **tokens,
                            float *cls_norm);

/* Feature maps: the same blocks with cls dropped, transposed to (B, dim, H/p, W/p)
 * (token n = row-major patch (n / (W/p), n % (W/p))), out[i] caller-allocated. Not L2-normalised. */
int glad_vit_features(glad_vit *v, const float *x, int B, int H, int W, int nb, const int *blocks, float **out);

/* Floating-point operations of one image's forward through `depth` blocks at H x W
 * (patch embedding, linear layers, attention products), for benchmarks. */
double glad_vit_flops(const glad_vit *v, int H, int W, int depth);

#endif
