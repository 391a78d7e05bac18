/* gauss.h - separable Gaussian smoothing of one plane, the kernel shared by
 * kornia's gaussian_blur2d and scipy's gaussian_filter (radius
 * floor(4 sigma + 0.5), normalised); the two differ only at the border.
 * Callers: score/reduce.c (kornia) and foreground.c (scipy). */
#ifndef GLAD_GAUSS_H
#define GLAD_GAUSS_H

#include "core/glad.h"

typedef enum {
    GLAD_BORDER_REFLECT = 0,   /* torch/kornia 'reflect': d c b | a b c d | c b a */
    GLAD_BORDER_SYMMETRIC = 1  /* scipy 'reflect': d c b a | a b c d | d c b a */
} glad_border;

int glad_gauss_blur(float *map, int h, int w, double sigma, glad_border border);

#endif
