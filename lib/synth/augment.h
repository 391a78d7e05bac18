/* augment.h - the imgaug-style augmentations of DRAEM/GLAD's anomaly source
 * (reference-algorithms.md §1.4), on planar images with values in [0,255]:
 * gamma contrast, brightness, sharpness, hue/saturation, solarize, posterize,
 * invert, autocontrast, equalize, rotate; and the bilinear rotation shared
 * with the Perlin mask. */
#ifndef GLAD_AUGMENT_H
#define GLAD_AUGMENT_H

#include "core/rng.h"

#define GLAD_AUG_COUNT 10

/* Apply augmentation k (0..9) in place to img (C,H,W), values [0,255]. */
int glad_augment_one(float *img, int C, int H, int W, int k, glad_rng *r);
/* Three distinct augmentations in random order (GLAD's SomeOf(3)). */
int glad_augment_three(float *img, int C, int H, int W, glad_rng *r);
/* Rotate each plane by deg degrees about the centre, bilinear, fill 0. */
int glad_rotate(float *img, int C, int H, int W, double deg);

#endif
