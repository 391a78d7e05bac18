/* foreground.h - where the object is: Otsu threshold on grey, GLAD's
 * foreground modes (dark object, bright object, whole image) used to restrict
 * synthetic anomalies (training) and to mask anomaly maps (test), the
 * per-class mode tables, and scipy-style Gaussian filtering.
 * Reference: ../shared/spec/reference-algorithms.md §1.4, §1.5. */
#ifndef GLAD_FOREGROUND_H
#define GLAD_FOREGROUND_H

#include "core/glad.h"

typedef enum { GLAD_FG_NONE = 0, GLAD_FG_DARK = 1, GLAD_FG_BRIGHT = 2 } glad_fg_mode;

/* Otsu threshold of 8-bit grey values (cv2.THRESH_OTSU): the t maximising the
 * between-class variance of {<= t} and {> t}. */
int glad_otsu_threshold(const uint8_t *grey, size_t n);

/* grey u8 (cv2 RGB2GRAY rounding) of an image in [-1,1], (C,h,w) with C = 1 or 3 */
void glad_grey_u8(uint8_t *grey, const float *img, int C, int h, int w);

/* fg[i] = 1 on the object: DARK = grey <= otsu, BRIGHT = grey > otsu, NONE = all ones */
void glad_foreground_mask(uint8_t *fg, const float *img, int C, int h, int w, glad_fg_mode mode);

/* GLAD's test-time object mask (§1.5): fg -> gaussian_filter(sigma 6) -> 1 where
 * > 0 -> gaussian_filter(sigma 6), as float weights in [0,1]. */
int glad_object_mask(float *obj, const float *img, int C, int h, int w, glad_fg_mode mode);

/* scipy.ndimage.gaussian_filter(sigma, truncate=4.0, mode='reflect'), i.e. the
 * edge sample repeated (d c b a | a b c d). In place. */
int glad_gaussian_filter(float *map, int h, int w, double sigma);

/* GLAD's class lists: training (synthesis, §1.4) or test (object mask, §1.5). */
glad_fg_mode glad_fg_mode_for_class(const char *cls, int test_time);

#endif
