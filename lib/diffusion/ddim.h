/* ddim.h - DDIM timestep plans and the per-step arithmetic shared by every
 * reconstruction strategy (fixed step, DDAD conditioning, GLAD ADS + SAFF,
 * MDPS masked posterior sampling). The model and the feature extractor are
 * reached through callbacks (denoise.h); this file has no network in it.
 * Formulas: ../shared/spec/reference-algorithms.md §1.1-1.3, §2.2, §3.2. */
#ifndef GLAD_DDIM_H
#define GLAD_DDIM_H

#include "core/glad.h"

#define GLAD_DDIM_MAX_STEPS 1000

typedef enum {
    GLAD_TS_CONSISTENT = 0, /* noise to T', model calls at T', T'-S, ..., S, then to clean */
    GLAD_TS_DDAD,           /* noise to T', calls at T'-S, ..., 0, then clean (ᾱ(-1) = 1) */
    GLAD_TS_GLAD            /* noise to T', ratio r = T'//N, calls at k r + 1 (k = N-1..0), prev = t - r, ᾱ_prev(<0) = ᾱ_0 */
} glad_ts_mode;

/* Option names of glad_ts_mode in enum order, NULL-terminated:
 * "consistent", "ddad", "glad" */
extern const char *const glad_ts_modes[];

typedef struct {
    int n;                                   /* number of model calls */
    int t_noise;                             /* timestep the input is noised to */
    double ab_noise;                         /* ᾱ at t_noise */
    int t[GLAD_DDIM_MAX_STEPS];              /* model-call timesteps, decreasing */
    int t_next[GLAD_DDIM_MAX_STEPS];         /* the timestep each step goes to (-1: clean) */
    double ab[GLAD_DDIM_MAX_STEPS];          /* ᾱ_t */
    double ab_next[GLAD_DDIM_MAX_STEPS];     /* ᾱ at t_next (1 for clean, or ᾱ_0 in GLAD mode) */
} glad_ddim_plan;

/* alpha_bar has T entries (ᾱ_t = prod_{s<=t}(1-β_s), t = 0..T-1).
 * t_start = T' (1..T-1), skip = S (1..T'). GLAD mode uses n_steps = T'/S.
 * More than GLAD_DDIM_MAX_STEPS model calls is GLAD_ERANGE. */
int glad_ddim_plan_make(glad_ddim_plan *p, const double *alpha_bar, int T, int t_start, int skip, glad_ts_mode mode);

/* Noise the input to timestep t (0..T-1) instead of the plan's T'; the model
 * calls stay those of T'. GLAD on VisA and PCB-Bank: t0 = randint(d-1, d) =
 * d - 1 while num_train_timesteps is overridden to d (utilize/utilize.py:77-84).
 * Out of range: GLAD_ERANGE with the detail set, the plan unchanged. */
int glad_ddim_plan_noise_at(glad_ddim_plan *p, const double *alpha_bar, int T, int t);

/* x_t = √ᾱ x0 + √(1-ᾱ) ε   (n elements) */
void glad_ddim_q_sample(float *xt, const float *x0, const float *eps, double ab, size_t n);
/* The same in double precision (training: x_t is rounded to float only as
 * the model's input, and GLAD's ATP target is computed from the unrounded x_t) */
void glad_ddim_q_sample_f64(double *xt, const double *x0, const float *eps, double ab, size_t n);

/* x̂0 = (x_t − √(1−ᾱ) ε)/√ᾱ */
void glad_ddim_x0(float *x0, const float *xt, const float *eps, double ab, size_t n);

/* DDAD conditioning (w): y_t = √ᾱ y + √(1−ᾱ) ε_θ ; ε̂ = ε_θ − w √(1−ᾱ) (y_t − x_t). In place on eps. */
void glad_ddim_condition(float *eps, const float *xt, const float *y, double ab, double w, size_t n);

/* One DDIM update with η:
 *   c1 = η √((1−ᾱ/ᾱn)(1−ᾱn)/(1−ᾱ)),  c2 = √(1−ᾱn − c1²)
 *   x_next = √ᾱn x̂0 + c1 z + c2 ε       (z may be NULL when c1 = 0) */
void glad_ddim_step(float *xnext, const float *x0, const float *eps, const float *z, double ab, double ab_next,
                    double eta, size_t n);

/* GLAD ADS input-derived estimate: x̂0_true = y + √((1−ᾱ)/ᾱ) (ε0 − ε_θ) */
void glad_ddim_x0_true(float *x0t, const float *y, const float *eps0, const float *eps, double ab, size_t n);

/* SAFF: x̂0 := m ⊙ x̂0 + (1 − m) ⊙ x̂0_true, m given per pixel (hw values,
 * broadcast over c channels). */
void glad_ddim_saff(float *x0, const float *x0_true, const float *m, int c, size_t hw);

#endif
