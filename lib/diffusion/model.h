/* model.h - a trained diffusion model file as the programs use it: the UNet
 * (models/unet.h) together with the noise schedule it was trained with, read
 * from the file's metadata ("betas": linear | scaled_linear, "T": the number
 * of diffusion steps; files without them, such as the official fixtures, are
 * linear with T = 1000). Not the network itself and not training state
 * (diffusion/train.h). */
#ifndef GLAD_MODEL_H
#define GLAD_MODEL_H

#include "diffusion/schedule.h"
#include "models/unet.h"

#define GLAD_MODEL_DEFAULT_T 1000
#define GLAD_MODEL_MAX_T 100000

typedef struct {
    glad_unet *unet;
    glad_betas betas;
    int T;
    double *alpha_bar;   /* T values: ᾱ_t = prod_{s<=t} (1 − β_s) */
} glad_model;

/* Load path; on failure *m is left empty and glad_error_detail() names the
 * file and what is wrong (glad_unet_load's codes, GLAD_EFORMAT for bad
 * "betas" or "T" metadata). */
int glad_model_load(glad_model *m, const char *path);
/* The same from an open model file (path names it in messages). */
int glad_model_load_st(glad_model *m, const glad_st *st, const char *path);
/* ᾱ for a schedule without a file (training from scratch). */
int glad_model_schedule(glad_model *m, glad_betas betas, int T);
void glad_model_free(glad_model *m);

#endif
