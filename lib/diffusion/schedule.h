/* schedule.h - noise schedules: ᾱ_t = prod_{s<=t} (1 − β_s), t = 0..T−1, with
 * β linear 1e-4 -> 0.02 (DDPM/DDAD/MDPS) or "scaled_linear" (Stable
 * Diffusion/GLAD: β = linspace(√0.00085, √0.012, T)²). */
#ifndef GLAD_SCHEDULE_H
#define GLAD_SCHEDULE_H

#include "core/glad.h"

typedef enum { GLAD_BETAS_LINEAR = 0, GLAD_BETAS_SCALED_LINEAR = 1 } glad_betas;

/* Names in enum order, NULL-terminated: "linear", "scaled_linear" */
extern const char *const glad_betas_names[];

int glad_schedule_alpha_bar(double *ab, int T, glad_betas kind);
int glad_betas_parse(const char *s, glad_betas *out);
const char *glad_betas_name(glad_betas b);

#endif
