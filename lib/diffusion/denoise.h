/* denoise.h - reconstruction strategies over a batch of records of one shape:
 * fixed-step DDIM (η), DDAD conditioning (w), GLAD's adaptive denoising step
 * (ADS) with spatial-adaptive feature fusion (SAFF), and MDPS masked
 * posterior sampling. The noise model, the feature maps (ADS) and the
 * distance map (MDPS mask) come from callbacks, so the same code runs with
 * any network and any backbone. Not the network (models/unet.h). */
#ifndef GLAD_DENOISE_H
#define GLAD_DENOISE_H

#include "diffusion/ddim.h"

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

void glad_denoise_opts_default(glad_denoise_opts *o);

/* y: inputs (B,C,H,W) in [-1,1]; recon: output (B,C,H,W); ads_step: B ints
 * (the timestep at which each record stopped, -1 if never; may be NULL). */
int glad_denoise_run(const glad_model_fn *m, const glad_noise_fn *nz, const glad_ads_fn *ads,
                     const glad_denoise_opts *o, int B, const float *y, float *recon, int *ads_step);

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
 * mask: NULL or (B,H,W) binary mask of pass 1 (1 = suspected anomaly). */
int glad_mdps_run(const glad_model_fn *m, const glad_noise_fn *nz, const glad_dist_fn *dist,
                  const glad_mdps_opts *o, int B, const float *y, float *recon, float *samples, float *mask);

#endif
