/* train.h - training the diffusion UNet on normal images: DDAD's DDPM
 * noise-prediction loss or GLAD's anomaly-oriented training paradigm (ATP)
 * on glad-synth output (../shared/spec/reference-algorithms.md §1.4, §2.1,
 * the ATP target of "decisions" 3), with Adam/AdamW, gradient clipping, an
 * EMA of the weights, checkpoints that resume bit for bit, and a CSV log.
 * Shaped like llm.c's train_gpt2.c: a batch, a forward (loss) / backward
 * pair and a separate update, so a program only parses options and loops:
 *
 *     glad_train_config c;  glad_train_config_default(&c);
 *     c.input = "train.msgpack";  c.loss = GLAD_TRAIN_ATP;  ...
 *     glad_train *tr;       glad_train_open(&tr, &c);
 *     while (tr->step < tr->total) {
 *         glad_train_step(tr);               (batch, forward, backward, update, log)
 *         if (tr->step == tr->total) glad_train_save(tr, "m.model");
 *     }
 *     glad_train_close(tr);
 *
 * Every random draw depends on (seed, step) alone, so a resumed run is the
 * uninterrupted one: the batch of step s takes images (s mod E) B .. + B - 1
 * (mod n) of a permutation drawn from glad_rng (seed, 1, s / E), E =
 * ceil(n / B) steps an epoch; glad_rng (seed, 2, s) then gives per image its
 * timestep (glad_rng_below T) and noise (glad_rng_normal, C H W values);
 * dropout uses seed 1000003 seed + s; weights start from glad_unet_init (seed).
 * Not the network (models/unet.h), not the schedule (diffusion/model.h), not
 * option parsing or printing (bin/glad-train.c). */
#ifndef GLAD_TRAIN_H
#define GLAD_TRAIN_H

#include <stdio.h>
#include "diffusion/model.h"

typedef enum { GLAD_TRAIN_DDPM = 0, GLAD_TRAIN_ATP } glad_train_loss;
typedef enum { GLAD_TRAIN_PRESET_DDAD = 0, GLAD_TRAIN_PRESET_DDAD_S, GLAD_TRAIN_PRESET_TINY } glad_train_preset;
typedef enum { GLAD_TRAIN_ADAM = 0, GLAD_TRAIN_ADAMW } glad_train_optim;

/* Names in enum order, NULL-terminated (the betas are glad_betas_names):
 * "ddpm", "atp" / "ddad", "ddad-s", "tiny" / "adam", "adamw" */
extern const char *const glad_train_losses[];
extern const char *const glad_train_presets[];
extern const char *const glad_train_optims[];

/* u = the UNet config of preset P (glad_train_preset; above) for S x S
 * images of C channels, before any field glad_train_config sets. */
void glad_train_preset_config(glad_unet_config *u, int preset, int S, int C);

/* A config field left at GLAD_TRAIN_UNSET takes the checkpoint's value when
 * resuming and the default otherwise; a field that is set and differs from
 * the checkpoint's makes glad_train_open fail naming it. */
#define GLAD_TRAIN_UNSET (-1)

typedef struct {
    /* the model: the preset's config (default ddad: base 64, 4 heads, 2 res
     * blocks, attention at 32,16,8, multipliers by image size; ddad-s: base
     * 32, 2 heads, dropout 0.3; tiny: base 32, 2 heads, multipliers 1,2,2,
     * 1 res block, attention at 16), then each field that is set */
    int preset;                            /* glad_train_preset */
    int base, res_blocks, heads;
    double dropout;
    int nmults;                            /* with mults[0..nmults) */
    float mults[GLAD_UNET_MAX_LEVELS];
    int nattn;                             /* with attn_res[0..nattn); 0: no attention */
    int attn_res[GLAD_UNET_MAX_LEVELS];
    /* the training; defaults in brackets */
    int loss;                              /* glad_train_loss [ddpm] */
    int betas;                             /* glad_betas [linear] */
    int T;                                 /* schedule length [GLAD_MODEL_DEFAULT_T] */
    int batch;                             /* [8] */
    double lr, wd;                         /* [3e-4, 0] */
    int optim;                             /* glad_train_optim [adam] */
    double ema;                            /* EMA decay, 0 = none [0] */
    double clip;                           /* max global gradient norm, 0 = none [0] */
    int64_t seed;                          /* [0] */
    int precision;                         /* glad_precision (nn/bf16.h) [f32]; bf16: mixed precision, the
                                            * UNet's GEMMs (nn/bf16.h says which) on bf16 operands with fp32 sums, fp32 weights,
                                            * gradients and Adam state (needs glad_bf16_available()) */
    long steps, epochs;                    /* the last step: steps, or epochs x E [1000 steps] */
    /* files (NULL: none) */
    const char *input;                     /* the training stream (NULL or "-": stdin) */
    const char *resume;                    /* checkpoint to continue from */
    const char *output;                    /* model file: checked creatable before the first step */
    const char *log;                       /* CSV step,loss,images_per_s; on resume cut back to the checkpoint's step */
} glad_train_config;

/* Every field GLAD_TRAIN_UNSET, the files NULL. */
void glad_train_config_default(glad_train_config *c);

/* The training set, held as u8 (f32 inputs in [-1,1] are quantised to
 * round((v + 1) 127.5)). */
typedef struct {
    int n, C, S;           /* images, channels, side */
    uint8_t *img;          /* n x C x S x S */
    uint8_t *anom;         /* ATP: the records' 'anomalous' images, same layout; NULL for DDPM */
    uint8_t *has_anom;     /* n flags: the record's 'synth_mask' is not empty */
} glad_train_data;

/* Reads the 'image' (and for ATP 'anomalous', 'synth_mask') of every record
 * of a stream (path; NULL or "-": stdin). Images are square [C,S,S], all of
 * one size, finite. Failures (never GLAD_EINVAL) leave *d empty; the detail
 * names the stream, or the record and the field: "record 'x': 'image'
 * missing". */
int glad_train_data_load(glad_train_data *d, const char *path, glad_train_loss loss);
void glad_train_data_free(glad_train_data *d);

/* The training state. Read it; change it only through the functions below. */
typedef struct {
    glad_train_config cfg;     /* resolved: no field GLAD_TRAIN_UNSET */
    glad_model model;          /* the UNet being trained and its schedule */
    glad_train_data data;      /* the training set (cfg.input) */
    long step;                 /* steps done (the checkpoint's after a resume) */
    long step0;                /* the step training (re)started at */
    long total;                /* the step training ends at */
    long steps_per_epoch;      /* E = ceil(n / batch) */
    size_t nparams;
    float *adam_m, *adam_v;    /* nparams each */
    float *ema;                /* nparams, or NULL without an EMA */
    /* the current batch (glad_train_batch) and its loss (glad_train_forward) */
    int B;
    size_t per;                /* C S S */
    float *x;                  /* B x per: x_t, the model input */
    float *t;                  /* B timesteps */
    float *target;             /* B x per: what the model should predict (ε, or ATP's ε*) */
    float *eps, *deps;         /* B x per: the prediction (the noise ε after glad_train_batch)
                                * and d loss / d prediction */
    double loss;
    /* private */
    int *perm;
    long perm_epoch;
    double *x0d, *zd, *xtd;    /* per: one image in double */
    FILE *logf;
    double t0;
} glad_train;

/* Loads cfg->resume when given (weights, Adam moments, EMA, step, schedule,
 * and every field left unset), the training set (cfg->input, with the
 * fields the loss needs), builds the model when not resuming, checks that
 * cfg->output can be created, opens the log, and allocates one step's
 * buffers. The precision is the checkpoint's when resuming (f32 for one
 * without 'train.precision'). Failures: GLAD_EINVAL when the configuration asked for cannot be
 * built (a usage error; the detail says which rule, see
 * glad_unet_config_check); GLAD_ERANGE when a set field differs from the
 * checkpoint's (the detail names it) or the checkpoint is at or past the last
 * step; GLAD_EUNSUPPORTED for bf16 where this CPU (or GLAD_NO_BF16) has no
 * bf16 kernels; GLAD_ESHAPE when the model and the data differ in size; the codes of
 * glad_train_data_load; others for unreadable checkpoints and unwritable
 * files. The config's strings must outlive tr. */
int glad_train_open(glad_train **tr, const glad_train_config *cfg);

/* One step, in parts:
 *   batch:    x, t and target of step tr->step (see the top of this file):
 *             DDPM x_t = √ᾱ x0 + √(1−ᾱ) ε, target ε; ATP with a = t/T and
 *             z = a anomalous + (1 − a) x0: x_t = √ᾱ z + √(1−ᾱ) ε, target
 *             ε* = (x_t − √ᾱ x0)/√(1−ᾱ), so the x̂0 it implies is the normal
 *             image (records with an empty synth_mask take the DDPM target)
 *   forward:  eps = UNet(x, t) with dropout (forward and backward run in
 *             cfg.precision, the process's precision restored after); loss = mean over the batch of
 *             the sum over pixels of (eps − target)²; GLAD_ENAN when it is
 *             not finite
 *   backward: parameter gradients of the loss (zeroed first by forward)
 *   update:   clip the global gradient norm, Adam/AdamW, EMA; step += 1
 *   step:     the four, then the log line */
int glad_train_batch(glad_train *tr);
int glad_train_forward(glad_train *tr);
int glad_train_backward(glad_train *tr);
int glad_train_update(glad_train *tr);
int glad_train_step(glad_train *tr);

/* Writes the model file atomically: the weights (the EMA when there is one),
 * config, "betas", "T", and the training state glad_train_open resumes from
 * (tensors train.adam_m, train.adam_v, train.weights, train.ema; metadata
 * train.step, train.seed, train.loss, train.batch, train.lr, train.optim,
 * train.wd, train.ema_decay, train.clip, and train.precision when it is not
 * f32: f32 files stay byte for byte as before it was recorded). */
int glad_train_save(glad_train *tr, const char *path);

/* Frees tr and closes the log: GLAD_EIO when its last writes fail. */
int glad_train_close(glad_train *tr);

#endif
