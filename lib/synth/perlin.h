/* perlin.h - DRAEM/GLAD's rand_perlin_2d_np: gradient noise on a res0 x res1
 * lattice with the quintic fade 6t^5 - 15t^4 + 10t^3 and the sqrt(2) factor.
 * Not the anomaly synthesis itself (anomaly.h). */
#ifndef GLAD_PERLIN_H
#define GLAD_PERLIN_H

#include "core/rng.h"

/* noise (h x w, row-major) with gradient angles 2*pi*u[(res0+1) x (res1+1)];
 * h must be divisible by res0 and w by res1. */
int glad_perlin_from_u(double *noise, int h, int w, int res0, int res1, const double *u);
/* the same with u drawn from r */
int glad_perlin(double *noise, int h, int w, int res0, int res1, glad_rng *r);

#endif
