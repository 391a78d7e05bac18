/* denoise.h - reconstruction strategies over a batch of records of one shape:
 * fixed-step DDIM (η), DDAD conditioning (w), GLAD's adaptive denoising step
 * (ADS) with spatial-adaptive feature fusion (SAFF), and MDPS masked
 * posterior sampling. The noise model, the feature maps (ADS) and the
 * distance map (MDPS mask) come from callbacks, so the same code runs with
 * any network and any backbone; the callbacks the programs use are here too
 * (seeded per-record noise, backbone feature maps for ADS, MDPS's pixel
 * distance). Not the network (models/unet.h, diffusion/unet_eps.h). */
#ifndef GLAD_DENOISE_H
#define GLAD_DENOISE_H

#include "diffusion/ddim.h"
#include "models/backbone.h"

typedef struct {
    /* eps = ε_θ(x, t); x, eps are (B,C,H,W), t has B entries */
    int (*eps)(void *ctx, float *eps, const float *x, const float *t, int B);
    /* MDPS guidance: eps = ε_θ(x, t) and grad = ∇_x ‖x̂0(x, t) − y‖₂ for each
     * record (a per-record norm); may be NULL when guidance is not used */
    int (*eps_grad)(void *ctx, float *eps, float *grad, const float *x, const float *t, const float *y,
                    const double *ab, int B);
    void *ctx;
    int C, H, W;
} glad_model_fn;

/* Gaussian noise for record b (index in the batch) and draw k (0 = the
 * initial ε0; k >= 1 the z of step k; MDPS samples use further indices).
 * Must depend on (record, k) only, so batching does not change results. */
typedef struct {
    void (*draw)(void *ctx, int b, int k, float *out, size_t n);
    void *ctx;
} glad_noise_fn;

/* ADS: the anomaly map A[i] = min_j (1 − cos(f_true[i], f_pred[j])) of one
 * record, on the feature grid (h x w, at most GLAD_ADS_MAX_GRID cells). */
#define GLAD_ADS_MAX_GRID (256 * 256)
typedef struct {
    int (*amap)(void *ctx, float *A, int *h, int *w, const float *x0_true, const float *x0_pred, int C, int H, int W);
    void *ctx;
} glad_ads_fn;

typedef struct {
    glad_ddim_plan plan;
    double eta;          /* 0 deterministic, 1 DDAD/MDPS */
    double cond_w;       /* DDAD conditioning weight (0: off) */
    /* ADS / SAFF */
    int ads;
    double threshold;    /* stop when mean top-k of A > threshold */
    int min_step;        /* forced stop (x̂0 := x̂0_true) when t < min_step */
    int topk;            /* 10 */
    int saff;            /* fuse at the ADS stop */
    int saff_binary;     /* ablation: m = A > saff_threshold instead of sigmoid(A) */
    double saff_threshold;
} glad_denoise_opts;

/* SAFF mask names by saff_binary, NULL-terminated: "sigmoid", "binary" */
extern const char *const glad_saff_masks[];

/* eta 0, no conditioning, no ADS; ADS settings: threshold 0.3, min_step 100
 * (glad-denoise's default, for its T' = 250; GLAD's official code uses 350 with
 * T' = 750 on MVTec and 200 with T' = 450 on VisA), topk 10, saff_threshold 0.5. */
void glad_denoise_opts_default(glad_denoise_opts *o);

/* y: inputs (B,C,H,W) in [-1,1]; recon: output (B,C,H,W); ads_step: B ints
 * (the timestep at which each record stopped, -1 if never; may be NULL).
 * An ADS map with NaN or infinity is GLAD_ENAN (glad_error_detail() names the
 * step). The batch size never changes a record's result. */
int glad_denoise_run(const glad_model_fn *m, const glad_noise_fn *nz, const glad_ads_fn *ads,
                     const glad_denoise_opts *o, int B, const float *y, float *recon, int *ads_step);

/* DDAD's domain adaptation (reference-algorithms.md §2.4): x (B,C,H,W) is
 * noised to T' and reconstructed under the conditioning of another image y
 * (o->cond_w = w_DA), as Reconstruction(input, target, w_DA). The same loop
 * and noise draws as glad_denoise_run, which is this with x = y. ADS is
 * GLAD_EINVAL. */
int glad_denoise_run_cond(const glad_model_fn *m, const glad_noise_fn *nz, const glad_denoise_opts *o, int B, const float *x,
                          const float *y, float *recon);

/* ---- MDPS ---- */
typedef struct {
    glad_ddim_plan mask_plan;   /* pass 1 (T_m, skip) */
    glad_ddim_plan plan;        /* pass 2 (T', skip) */
    double mask_guidance;       /* w_mask */
    double guidance;            /* w */
    double mask_threshold;      /* τ: relative (min + τ (max − min)) unless absolute */
    int threshold_absolute;
    int samples;                /* K posterior samples */
    int use_mask;               /* 0: a single guided pass, no mask (texture classes) */
} glad_mdps_opts;

/* Distance map between a reconstruction and the input for one record
 * (H*W values); used to build the mask from pass 1. */
typedef struct {
    int (*dist)(void *ctx, float *D, const float *recon, const float *y, int C, int H, int W);
    void *ctx;
} glad_dist_fn;

/* recon: mean of the K samples (B,C,H,W); samples: NULL or (K,B,C,H,W);
 * mask: NULL or (B,H,W) binary mask of pass 1 (1 = suspected anomaly).
 * A distance map with NaN or infinity is GLAD_ENAN. */
int glad_mdps_run(const glad_model_fn *m, const glad_noise_fn *nz, const glad_dist_fn *dist,
                  const glad_mdps_opts *o, int B, const float *y, float *recon, float *samples, float *mask);

/* ---- the callbacks the programs use ---- */

/* Noise from lib/core/rng: draw k of record b is glad_rng_normal_f32 of the
 * stream glad_rng_seed(seed, ids[b], k), so it depends on the seed, the record
 * (ids[b], e.g. glad_rng_hash_str of its id) and the draw only. ids is
 * borrowed; the caller may change its contents between runs. */
typedef struct {
    uint64_t seed;
    const uint64_t *ids;
    glad_noise_fn fn;
} glad_rng_noise;
const glad_noise_fn *glad_rng_noise_init(glad_rng_noise *z, uint64_t seed, const uint64_t *ids);

/* ADS maps from a feature backbone (models/backbone.h) at one layer: A[i] =
 * min_j (1 − cos(f_true[i], f_pred[j])) over the layer's grid
 * (glad_score_nn_map). The backbone is borrowed. */
typedef struct {
    glad_backbone *bb;
    int layer;
    glad_ads_fn fn;
} glad_ads_backbone;
/* layer < 0: the last of the backbone's default layers. A layer outside the
 * backbone's range is GLAD_ERANGE ("the vit backbone has layers 1..4"). */
int glad_ads_backbone_init(glad_ads_backbone *a, glad_backbone *bb, int layer);
const glad_ads_fn *glad_ads_backbone_fn(glad_ads_backbone *a);

/* MDPS's mask distance: mean_c |recon − y| (raw [-1,1] values), smoothed with
 * a Gaussian of sigma 4 as MDPS smooths its maps (glad_score_pixel_map,
 * glad_score_gaussian_blur). No context. */
extern const glad_dist_fn glad_mdps_pixel_dist;

#endif
