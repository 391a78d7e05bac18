/* score.h - anomaly maps and image scores from an image, its reconstruction
 * and their feature maps: pixel distance, GLAD nearest-neighbour feature
 * distance (tiled GEMM), DDAD/MDPS same-position distance after a 3x3
 * patchify, fusion, Gaussian smoothing, and the image-score reducers.
 * Formulas: ../shared/spec/reference-algorithms.md §1.5, §2.3, §3.3.
 * Maps are planar float arrays; nothing here reads streams. */
#ifndef GLAD_SCORE_H
#define GLAD_SCORE_H

#include "core/glad.h"

/* GLAD: A[i] = min_j (1 − <f_a[:,i], f_b[:,j]>) over ALL j, with the columns of
 * f_a (C x na) and f_b (C x nb) L2-normalised. Computed as tiled sgemm; memory
 * O((na + nb) C + tile x nb). */
int glad_score_nn_map(float *A, const float *fa, int na, const float *fb, int nb, int C);

/* DDAD/MDPS: D = 1 − cos(P(f_a), P(f_b)) at the same position, P the 3x3 mean
 * with zero padding (count_include_pad). f are (C,h,w). */
int glad_score_same_map(float *D, const float *fa, const float *fb, int C, int h, int w);

/* Pixel distance: D = mean_c |a − b| over (C,h,w) images in [-1,1]; with
 * imagenet != 0 both are first mapped to ((x+1)/2 − mean_c)/std_c (3 channels). */
int glad_score_pixel_map(float *D, const float *a, const float *b, int C, int h, int w, int imagenet);

/* A ← A + v (max A / max D) D  (per-record maxima; the reference code takes the
 * maxima over a whole batch). */
void glad_score_fuse(float *A, const float *D, size_t n, double v);

/* Gaussian blur as kornia.filters.gaussian_blur2d: separable, kernel size
 * 2*floor(4 sigma + 0.5) + 1, normalised, reflect border (no edge repeat). */
int glad_score_gaussian_blur(float *map, int h, int w, double sigma);

/* Image scores of a map of n values. */
double glad_score_max(const float *A, size_t n);
double glad_score_topk_mean(const float *A, size_t n, size_t k);
/* sum of the k largest softmax probabilities over all n values */
double glad_score_softmax_topk(const float *A, size_t n, size_t k);

/* Per-map baseline: A <- A - A_(r), A_(r) the value of ascending rank
 * r = floor(q (n - 1)) (nearest rank, no interpolation; q in [0,1]). An image
 * whose whole map is raised (a tile brighter or rougher than the bank's) then
 * scores by what stands out of it. Idempotent: subtraction is monotone, so
 * A_(r) - A_(r) = 0 stays the rank-r value and a second call subtracts 0.
 * GLAD_EINVAL for q outside [0,1] or n = 0, GLAD_ENOMEM. */
int glad_score_subtract_quantile(float *A, size_t n, double q);

/* *out = the rank-r value of A[0..n), r = floor(q (n - 1)), as above (A not
 * changed). GLAD_EINVAL for q outside [0,1] or n = 0, GLAD_ENOMEM. */
int glad_score_quantile(const float *A, size_t n, double q, float *out);

#endif
