/* unet.h - the diffusion UNet of DDAD/MDPS (guided-diffusion family,
 * ../shared/spec/architectures.md §1): built from a config, weights with the
 * official key names in safetensors (config JSON in __metadata__["config"]),
 * forward eps = model(x, t), backward to every parameter and to the input,
 * and the encoder half for the built-in `unet` feature backbone.
 * Activations live in the model's arena between forward and backward. */
#ifndef GLAD_UNET_H
#define GLAD_UNET_H

#include "core/glad.h"
#include "nn/nn.h"
#include "core/tensor.h"

#define GLAD_UNET_MAX_LEVELS 8

typedef struct {
    int img_size, base, num_res_blocks, heads, in_channels;
    int nmults;
    float mults[GLAD_UNET_MAX_LEVELS];
    int nattn;
    int attn_res[GLAD_UNET_MAX_LEVELS];   /* image sizes (img_size / ds) with attention */
    float dropout;
} glad_unet_config;

typedef struct {
    char *name;
    int ndim;
    int64_t shape[4];
    size_t n, off;    /* elements, offset in the flat arrays */
} glad_param;

typedef struct glad_unet glad_unet;

/* Default config for an image size (mults by size as in DDAD; base 64, 2 res
 * blocks, attention at 32,16,8, 4 heads, dropout 0). */
void glad_unet_config_default(glad_unet_config *c, int img_size, int in_channels);
int glad_unet_config_parse(glad_unet_config *c, const char *json);
/* JSON in the fixtures' format; returns bytes written (snprintf semantics) */
int glad_unet_config_json(const glad_unet_config *c, char *buf, size_t len);

int glad_unet_create(glad_unet **u, const glad_unet_config *c);
void glad_unet_free(glad_unet *u);
const glad_unet_config *glad_unet_cfg(const glad_unet *u);

/* PyTorch default initialisation (kaiming-uniform a=sqrt 5, bias U(+-1/sqrt fan_in),
 * norms 1/0) with proj_out, out_layers.3 and out.2 zeroed, seeded. */
void glad_unet_init(glad_unet *u, uint64_t seed);

/* Flat parameter / gradient arrays and the table naming their parts. */
size_t glad_unet_nparams(const glad_unet *u);
float *glad_unet_weights(glad_unet *u);
float *glad_unet_grads(glad_unet *u);
int glad_unet_param_count(const glad_unet *u);
const glad_param *glad_unet_param(const glad_unet *u, int i);

/* Load a model file (safetensors + config metadata) / copy weights from an
 * open safetensors by name (missing or misshapen -> GLAD_ENOTFOUND/GLAD_ESHAPE,
 * with the name in *bad when given). */
int glad_unet_load(glad_unet **u, const char *path, char *err, size_t errlen);
/* Save weights (and extra tensors, e.g. optimiser state) atomically. */
int glad_unet_save(const glad_unet *u, const char *path, const float *weights, int nextra, const char *const *extra_names,
                   const glad_tensor *const *extra, int nmeta, const char *const *mk, const char *const *mv);

/* eps (B,C,H,W) = model(x, t). train = 1 keeps the tape for backward and
 * applies dropout with dropout_seed; 2 keeps the tape without dropout (for
 * gradients with respect to the input at inference, e.g. MDPS guidance). */
int glad_unet_forward(glad_unet *u, float *eps, const float *x, const float *t, int B, int train, uint64_t dropout_seed);
/* After a train forward: param grads += d loss/d params (glad_unet_grads), and
 * dx (B,C,H,W) += d loss / d x when dx != NULL. deps = d loss / d eps. */
int glad_unet_backward(glad_unet *u, const float *deps, float *dx);
void glad_unet_zero_grad(glad_unet *u);

/* Encoder: activations at the end of each resolution level (before its
 * downsampling). feats[l] points into the model's arena (valid until the next
 * call); C/H/W per level; returns the number of levels. */
int glad_unet_encode(glad_unet *u, const float *x, const float *t, int B, float **feats, int *C, int *H, int *W);

/* Floating-point operations of the last training forward (convolutions,
 * linear layers and attention products; x3 for forward + backward). */
double glad_unet_forward_flops(const glad_unet *u);

/* Peak bytes of activations of the last forward/backward. */
size_t glad_unet_arena_peak(const glad_unet *u);

#endif
