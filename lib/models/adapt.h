/* adapt.h - feature extractors that learn (issue #21): DDAD's domain
 * adaptation of the Wide ResNet and GLAD's DINO fine-tuning, as
 * ../shared/spec/reference-algorithms.md §2.4 and §1.6 give them from the
 * official code (DDAD feature_extractor.py, GLAD train_dino.py). The losses
 * with their gradients (one step, what tests/test_adapt.c checks against
 * PyTorch), and the epoch loop with checkpoints and bit-exact resumption,
 * shaped like diffusion/train.h so a program only parses options and loops:
 *
 *     glad_adapt_config c;  glad_adapt_config_default(&c, GLAD_ADAPT_DDAD_DA);
 *     c.input = "train.msgpack";  c.backbone = "wrn.safetensors";  c.model = "ddpm.model";  c.outdir = "da";
 *     glad_adapt *a;        glad_adapt_open(&a, &c);
 *     while (a->epoch < a->epochs) glad_adapt_epoch(a);   (writes da/feat{k}.safetensors)
 *     glad_adapt_close(a);
 *
 * DDAD DA: batches of c.batch training images (shuffled, drop_last), split
 * in half: target y = the first half, input = the second; x̂0 =
 * Reconstruction(input, cond = y, w_DA) with the diffusion model (η 1, T'
 * 250, skip 25, DDAD's timestep spacing); both go through (x+1)/2 and the
 * ImageNet normalisation; the trained net φ (train() mode: batch-statistics
 * BatchNorm, running statistics moved by both forwards, x̂0 first) and the
 * frozen pretrained copy φ̄ (eval mode) give layer1..3, and
 *   L = Σ_l mean_b [1 − cos(φ_l(x̂0), φ_l(y))] + λ Σ_l mean_b [1 − cos(φ_l(y), φ̄_l(y))]
 *     + λ Σ_l mean_b [1 − cos(φ_l(x̂0), φ̄_l(x̂0))]
 * (cosine over each record's whole flattened map), AdamW over every
 * parameter that receives a gradient (not layer4/fc: PyTorch skips
 * parameters without one).
 * DINO-ft: records of a glad-denoise stream ('image' and its 'recon', fixed:
 * the official code reconstructs anew each epoch), resized to c.size
 * (bilinear, align_corners) and normalised; the raw outputs (cls included)
 * of the 4 feature blocks (3,6,9,12 of 12: every quarter of the depth) of
 * the trained ViT on the image (T_i) and the reconstruction (T_r), and of the
 * frozen copy:
 *   L = Σ_l mean_b [1 − cos(T_i, T_r)] + λ Σ_l mean_b [1 − cos(T_i, T̄_i)] + λ Σ_l mean_b [1 − cos(T_r, T̄_r)]
 * Only blocks.{those}.mlp train; Adam; batches shuffled (the last one
 * short), gradients of c.accum batches summed with each loss divided by
 * c.accum (accelerate's accumulation: a step every accum batches and at the
 * epoch's end).
 * Randomness from lib/core/rng only, a function of (seed, epoch) alone, so a
 * resumed run is the uninterrupted one: epoch e's order is a permutation
 * drawn from glad_rng (seed, 1, e); DDAD's reconstruction noise of a record
 * is glad_rng_noise with seed glad_adapt_noise_seed(seed, e) and the hash of
 * the record's id.
 * Files in c.outdir: feat0.safetensors (the pretrained weights), and after
 * epoch k feat{k}.safetensors (the backbone, loadable by glad-features and
 * glad-denoise) then feat{k}.state.safetensors (the optimiser moments, the
 * epoch, step and configuration: what resuming needs; only the last is
 * kept, and a fresh start removes those of an earlier run), each atomically.
 * Not the networks (resnet.h, vit.h), not the sampler (diffusion/denoise.h),
 * not option parsing (bin/glad-adapt.c). */
#ifndef GLAD_ADAPT_H
#define GLAD_ADAPT_H

#include "models/resnet.h"
#include "models/vit.h"
#include "nn/nn.h"

typedef enum { GLAD_ADAPT_DDAD_DA = 0, GLAD_ADAPT_DINO_FT } glad_adapt_method;
/* "ddad-da", "dino-ft", NULL */
extern const char *const glad_adapt_methods[];

/* scale Σ_b [1 − cos(a_b, b_b)] over B records of per values each (sums
 * in double); da, db (NULL: not wanted) += its gradients. A zero vector
 * counts as norm 1e-8 (PyTorch's CosineSimilarity eps). */
double glad_adapt_cos_loss(const float *a, const float *b, int B, size_t per, double scale, float *da, float *db);

/* One DDAD step's loss and gradients: x0 (the reconstructions) and y (the
 * targets), B records each, (B,3,H,W), already ImageNet-normalised. Zeroes
 * the gradients of t, runs the two train-mode forwards (x0 on tape 0, then
 * y on tape 1; running statistics move) and the frozen net's
 * (glad_resnet_forward_batch: load it with glad_resnet_load_winograd(.., 0)
 * for the fast path), and the backwards; *loss = L above. */
int glad_adapt_ddad_grad(glad_resnet_train *t, glad_resnet *frozen, const float *x0, const float *y, int B, int H, int W,
                         double lambda, double *loss);

/* One DINO-ft micro-batch: xi images and xr reconstructions (B,3,H,W),
 * normalised. Adds scale x the gradients of L above (blocks: the nb feature
 * blocks) to the tape's (not zeroed), *loss = L (unscaled). Runs the
 * records one at a time (the ViT has no batch coupling), so memory is that
 * of two images' tapes. */
int glad_adapt_dino_grad(glad_vit_tape *tp, glad_vit *frozen, const float *xi, const float *xr, int B, int H, int W, int nb,
                         const int *blocks, double lambda, double scale, double *loss);

/* The 4 feature blocks of a ViT of that depth (blocks 3,6,9,12 of 12); the
 * count. */
int glad_adapt_dino_blocks(int depth, int *blocks);

/* DDAD's reconstruction noise seed of epoch e */
uint64_t glad_adapt_noise_seed(uint64_t seed, long epoch);

typedef struct {
    int method;              /* glad_adapt_method */
    const char *input;       /* ddad-da: the class's training stream ('image'); dino-ft: a glad-denoise stream
                              * ('image', 'recon'); NULL or "-": stdin */
    const char *backbone;    /* the pretrained weights (resnet / vit safetensors) */
    const char *model;       /* ddad-da: the diffusion model of the reconstructions */
    const char *outdir;      /* feat{k} files (must exist) */
    int resume;              /* continue from the last feat{k}.state in outdir */
    /* < 0: the method's default [ddad-da ; dino-ft] */
    int epochs;              /* [4 (config.yaml DA_epochs) ; 15] */
    int batch;               /* [16, split in two halves ; 16] */
    int accum;               /* [1 ; 2] */
    double lr, wd, lambda;   /* [1e-4, 0.01 (AdamW), 0.1 (MVTec; 0.01 VisA) ; 3e-4, 0 (Adam), 0.01] */
    double w_da;             /* ddad-da: [3] */
    int t_start, skip;       /* ddad-da: [250, 25] */
    int size;                /* dino-ft: the ViT's input side [256] */
    int64_t seed;            /* [0] */
} glad_adapt_config;

/* method set, every other field -1, files NULL, resume 0 */
void glad_adapt_config_default(glad_adapt_config *c, int method);

/* The optimiser of a resolved config: ddad-da torch.optim.AdamW(lr, wd),
 * dino-ft torch.optim.Adam(lr) (wd as L2); betas 0.9, 0.999, eps 1e-8. The
 * loop applies glad_adam_step with it to each trained tensor. */
void glad_adapt_adam_cfg(const glad_adapt_config *c, glad_adam_cfg *out);

typedef struct glad_adapt_priv glad_adapt_priv;
typedef struct {
    glad_adapt_config cfg;   /* resolved (no field < 0) */
    long epoch;              /* epochs done (feat{epoch} is on disk) */
    long epochs;             /* the epoch training ends at */
    long step;               /* optimiser steps done */
    long nrecords;           /* training records */
    double loss;             /* the last batch's loss */
    double epoch_loss;       /* mean batch loss of the last epoch */
    glad_adapt_priv *p;
} glad_adapt;

/* Loads everything, writes feat0 (not when resuming), checks the output
 * directory. GLAD_EINVAL for a configuration that cannot run (the detail
 * says why: a usage error); GLAD_ERANGE when resuming with a setting that
 * differs from the checkpoint's (the detail names it) or nothing is left to
 * do; the loaders' codes otherwise, the detail naming the file, or the
 * record and field ("record 'x': 'recon' missing"). The config's strings
 * must outlive a. */
int glad_adapt_open(glad_adapt **a, const glad_adapt_config *c);
/* One epoch: its batches, the optimiser steps, then feat{epoch+1} and its
 * state. */
int glad_adapt_epoch(glad_adapt *a);
void glad_adapt_close(glad_adapt *a);
/* "DIR/feat{k}.safetensors" (malloc'd), or NULL */
char *glad_adapt_feat_path(const char *outdir, long k);

#endif
