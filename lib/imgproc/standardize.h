/* standardize.h - one image's intensities brought to a fixed mean and spread
 * (per-image contrast normalisation before a feature backbone): tiles shot
 * under different exposure and gain then reach the backbone alike, and faint
 * intensity changes reach it at a contrast the ImageNet filters respond to.
 * Not a per-channel or per-dataset normalisation (the backbone's own ImageNet
 * mean/std comes after this), and not a local (windowed) one. */
#ifndef GLAD_STANDARDIZE_H
#define GLAD_STANDARDIZE_H

#include <stddef.h>
#include "core/glad.h"

#define GLAD_STANDARDIZE_MAX 8.0   /* the largest spread s */

/* x (n values in the stream's [-1, 1] intensity scale, every channel and
 * pixel of one image) replaced in place by
 *     x' = clamp(s (x - mean) / std, -1, 1),
 * mean and std (population) over all n values, summed in double. The clamp
 * keeps x' an image in [-1, 1], as every backbone expects; it saturates the
 * tails beyond s standard deviations' worth of the range. An image of one
 * value (std below 1e-6 of the range) becomes all 0. GLAD_EINVAL when s is
 * not in (0, GLAD_STANDARDIZE_MAX], n is 0 or a value is not finite (x is then
 * unchanged). */
int glad_standardize(float *x, size_t n, double s);

/* What happens to the standardised values v = s (x - mean) / std beyond +-1:
 * clip (glad_standardize's clamp), tanh (x' = tanh v: in (-1, 1), strictly
 * increasing, so that the tails keep their order: a darker spot inside a dark
 * band that the clamp would flatten to -1 stays darker; near 0 the slope is 1
 * as the clamp's) or open (x' = v, no bound: the backbone sees values beyond its
 * [-1, 1] range). */
typedef enum { GLAD_STD_TAIL_CLIP, GLAD_STD_TAIL_TANH, GLAD_STD_TAIL_OPEN } glad_std_tail;
extern const char *const glad_std_tails[];   /* "clip", "tanh", "open", NULL */

/* The tail named name (one of glad_std_tails), or -1. */
int glad_std_tail_find(const char *name);

/* A list of tails "T[,T...]" (glad-features --standardize-tail clip,tanh:
 * features of the image under each tail, the first under the layers' plain
 * names and each further tail T under L~T, so that glad-score can take the
 * pixel-wise maximum of the tails' maps) as one code: the first tail in the
 * low two bits, each further tail k as bit GLAD_STD_TAILS_SHIFT + k. A single
 * tail's code is its glad_std_tail, so the codes of one tail are as before. */
#define GLAD_STD_TAILS_SHIFT 2
#define GLAD_STD_TAILS_FIRST(code) ((glad_std_tail)((code) & 3))
#define GLAD_STD_TAILS_HAS(code, k) (((code) >> (GLAD_STD_TAILS_SHIFT + (k))) & 1)

/* The code of a list "T[,T...]" of distinct glad_std_tails (the further tails
 * in any order), or -1 (an unknown name, a tail twice, an empty name). */
int glad_std_tails_parse(const char *list);

/* The list of code into buf (the first tail, then the further ones in
 * glad_std_tails' order: one spelling per code); GLAD_EINVAL for a code that
 * is none or a buf too small (at least 32 bytes is always enough). */
int glad_std_tails_format(char *buf, size_t n, int code);

/* glad_standardize with the given tail (GLAD_STD_TAIL_CLIP: the same bits). */
int glad_standardize_tail(float *x, size_t n, double s, glad_std_tail tail);

#endif
