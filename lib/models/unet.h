/* unet.h - the diffusion UNet of DDAD/MDPS (guided-diffusion family,
 * ../shared/spec/architectures.md §1): built from a config, weights with the
 * official key names in safetensors (config JSON in __metadata__["config"]),
 * forward eps = model(x, t), backward to every parameter and to the input,
 * and the encoder half for the built-in `unet` feature backbone.
 * Activations live in one buffer the model plans per (batch, mode) and keeps
 * between forward and backward. Not the noise schedule (diffusion/model.h)
 * and not training (diffusion/train.h). */
#ifndef GLAD_UNET_H
#define GLAD_UNET_H

#include "core/glad.h"
#include "nn/nn.h"
#include "core/tensor.h"
#include "io/safetensors.h"

#define GLAD_UNET_MAX_LEVELS 8
/* skip connections the down path hands to the up path: conv_in, every res
 * block and every downsampling, i.e. levels x (num_res_blocks + 1) */
#define GLAD_UNET_MAX_SKIPS 64

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
/* 0 when the config can be built: 1..GLAD_UNET_MAX_LEVELS levels, every
 * level's channels (base x multiplier) a multiple of 32 (GroupNorm) and of the
 * heads, the image size divisible by 2^(levels-1), at most
 * GLAD_UNET_MAX_SKIPS skip connections. Else GLAD_EINVAL and
 * glad_error_detail() says which rule fails. */
int glad_unet_config_check(const glad_unet_config *c);

/* GLAD_EINVAL (with the detail) when glad_unet_config_check refuses c. */
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

/* Load a model file (safetensors + config metadata). Failures return
 * GLAD_EIO (a missing file or a directory: the detail says "No such file or
 * directory" / "Is a directory"), GLAD_EFORMAT (no config, or one that
 * glad_unet_config_check refuses), GLAD_ENOTFOUND / GLAD_ESHAPE (a tensor
 * missing or misshapen) or GLAD_ENAN (a tensor with NaN or infinity);
 * glad_error_detail() names the file and the tensor. */
int glad_unet_load(glad_unet **u, const char *path);
/* The same from an open file (path only names it in messages). */
int glad_unet_load_st(glad_unet **u, const glad_st *st, const char *path);
/* glad_st_open with the detail glad_unet_load gives for a missing file or a
 * directory (for readers of the other tensors of a model file). */
int glad_unet_file_open(glad_st **st, const char *path);
/* Save the model atomically: its parameters (or weights, a flat array laid
 * out like glad_unet_weights, e.g. an EMA of them, when not NULL), extra
 * tensors (e.g. optimiser state) and metadata beside "config". */
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
 * downsampling). feats[l] points into the model's activation buffer (valid
 * until the next call); C/H/W per level; returns the number of levels. */
int glad_unet_encode(glad_unet *u, const float *x, const float *t, int B, float **feats, int *C, int *H, int *W);

/* Floating-point operations of the last forward (convolutions, linear
 * layers and attention products); a training step (forward + backward) is
 * about 3 times this. */
double glad_unet_forward_flops(const glad_unet *u);

/* A profile of forward and backward passes (for benchmarks; off by
 * default): when on, every op of the forward, and of a training backward, is
 * timed (wall seconds, omp_get_wtime, so an op's OpenMP threads count once)
 * and its times add up until the graph changes (another batch or mode).
 * Turning it on zeroes the table; off keeps it. An op's backward time
 * includes the zeroing of the input gradients it creates, the
 * recomputation of a GroupNorm+SiLU input it reads and, for a conv that
 * adds as it writes, the gradients of what it adds. */
typedef struct {
    const char *kind;     /* "conv3x3", "groupnorm+silu>conv3x3" (fused), "conv1x1", "attention", ...; a conv
                           * that adds the time embedding or a residual as it writes: "conv3x3+emb", "conv1x1+add", ... */
    int B, C, H, W, OC;   /* input batch, channels, plane (H*W in H, W 1, for ops on flat planes; tokens for attention), output channels */
    double seconds;       /* summed over calls */
    double flops;         /* as glad_unet_forward_flops counts them, summed over calls (0: not counted) */
    int calls;
    double back_seconds;  /* the op's backward, summed over back_calls backward passes */
    int back_calls;
} glad_unet_prof;
void glad_unet_profile(glad_unet *u, int on);
/* The rows of ops that ran (forward or backward) since profiling was
 * turned on, in network order, at most max written; returns their number
 * (rows may be NULL). */
int glad_unet_profile_rows(const glad_unet *u, glad_unet_prof *rows, int max);

/* Bytes of the activation buffer planned for the last forward (and, in
 * training, the backward that follows). */
size_t glad_unet_arena_peak(const glad_unet *u);

#endif
