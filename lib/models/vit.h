/* vit.h - the DINO Vision Transformer (ViT-S/8, ViT-B/8, /16 variants;
 * ../shared/spec/architectures.md §2), inference only: weights from
 * safetensors with the original DINO key names, raw block outputs (tokens)
 * and feature maps (B, dim, H/p, W/p) of chosen blocks. Input sizes other than
 * the trained grid interpolate the positional embedding bicubically exactly as
 * DINO's interpolate_pos_encoding. Training (issue #21): a forward that keeps
 * a tape, the backward from gradients of the block outputs to every (or a
 * chosen subset of) parameter and the input, parameters and gradients by
 * name, saving. Not the losses or the optimiser (the caller's), not the image
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

/* ---- training (issue #21 item 1) ----
 * Parameters by their safetensors names (file order: cls_token, pos_embed,
 * patch_embed.proj.{weight,bias}, blocks.K.{norm1,attn.qkv,attn.proj,norm2,
 * mlp.fc1,mlp.fc2}.{weight,bias}, norm.{weight,bias}), one flat array. */
int glad_vit_param_count(const glad_vit *v);
const char *glad_vit_param_name(const glad_vit *v, int i);            /* NULL out of range */
float *glad_vit_param(glad_vit *v, const char *name, size_t *n);     /* NULL if unknown; *n values */
float *glad_vit_params(glad_vit *v, size_t *n);                      /* every parameter, file order */
/* Write v in the format glad_vit_load reads (config in __metadata__). */
int glad_vit_save(const glad_vit *v, const char *path);

/* A tape: gradient accumulators (the layout of glad_vit_params) and what the
 * backward needs from the last glad_vit_train_forward. train: ntrain name
 * prefixes of the parameters whose gradients are wanted (e.g. "blocks.2.mlp.");
 * ntrain 0 = every parameter. Frozen parameters' weight gradients are not
 * computed (stay 0), and the backward stops below the lowest block that
 * needs a gradient. GLAD_ENOTFOUND when a prefix matches no parameter. */
typedef struct glad_vit_tape glad_vit_tape;
int glad_vit_tape_new(glad_vit_tape **t, glad_vit *v, int ntrain, const char *const *train);
void glad_vit_tape_free(glad_vit_tape *t);
/* The forward of glad_vit_forward_tokens (the same numbers: the same code with
 * copies to the tape) for nb >= 1 blocks, keeping per image and block up to the
 * last requested one T (6 dim + mlp_hidden) floats, plus a copy of x. No cls_norm. */
int glad_vit_train_forward(glad_vit_tape *t, const float *x, int B, int H, int W, int nb, const int *blocks, float **tokens);
/* dtokens[i] (B, T, dim): the loss gradient w.r.t. tokens[i] of the last train
 * forward (NULL: zero). Accumulates (+=) into the gradients of the trainable
 * parameters and, when dx is not NULL, into dx (B,3,H,W). The weights must not
 * change between the forward and its backward. Can be called again (sums). */
int glad_vit_backward(glad_vit_tape *t, float *const *dtokens, float *dx);
float *glad_vit_grad(glad_vit_tape *t, const char *name, size_t *n);  /* NULL if unknown; zeros if frozen */
float *glad_vit_grads(glad_vit_tape *t, size_t *n);                   /* flat, the layout of glad_vit_params */
void glad_vit_zero_grad(glad_vit_tape *t);

/* DINO's bicubic positional resampling alone, patch rows only (no cls):
 * out (gh*gw, D) from src (g*g, D) with scale factors ((gh+0.1)/g, (gw+0.1)/g),
 * and its transpose dsrc (g*g, D) += R^T dout (GLAD_ENOMEM: dsrc untouched). */
void glad_vit_pos_interp_forward(float *out, const float *src, int g, int D, int gh, int gw);
int glad_vit_pos_interp_backward(float *dsrc, const float *dout, int g, int D, int gh, int gw);

#endif
