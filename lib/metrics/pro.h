/* pro.h - pixel-level metrics over many anomaly maps: P-AUROC, P-AP,
 * P-F1max (scikit-learn definitions, roc.h) and the per-region overlap (PRO)
 * curve in its two published forms, from one sort of all pixels:
 *   aupro      exact: every distinct score is a threshold; PRO(t) = mean over
 *              all ground-truth regions (8-connected components of each
 *              mask) of TP_r/area_r, FPR(t) = FP/#negative pixels; the curve
 *              starts at (0,0), is integrated with the trapezoid rule up to
 *              FPR = lim (linear interpolation at lim) and divided by lim.
 *   pro_compat GLAD / DDAD / RD4AD compute_pro: thresholds
 *              np.arange(min, max, (max-min)/200) as numpy 1.x builds it from float32 maps (binary map =
 *              score > t), keep FPR < lim, divide FPR by its largest kept
 *              value, sklearn.metrics.auc (trapezoid).
 * Not an image reader and not a CLI; maps arrive as float planes.
 *
 * Memory (why 100 M pixels fit in <= 16 bytes/pixel): each pixel is ONE
 * uint64 = (descending-order key of its f32 score) << 32 | payload, where
 * payload = region id (1..2^31-1) for a ground-truth pixel or
 * 0x80000000 | image index for a negative pixel. The score and the mask are
 * both recoverable from it, so maps and masks are not kept: 8 B/pixel.
 * Sorting is an in-place MSD radix sort (American flag sort) on the 4 key
 * bytes; buckets of at most n/(2T) pixels (T threads) finish with an LSD
 * radix sort in a per-thread scratch slice of n/(2T) elements, so the
 * scratch is <= 4 B/pixel (without it, all in place). Per region 4 B
 * (area); regions of an 8-connected labelling are at most 1/4 of the
 * pixels, so <= 1 B/pixel worst case, tiny in practice. Per image 24 B.
 * The pixel array grows geometrically with realloc (glibc moves large
 * blocks with mremap, and untouched tail pages are never resident), and is
 * trimmed when sorted. Peak: 8 + 4 (+ regions) <= 13 B/pixel, plus
 * one image's transient buffers. Measured: 100 M pixels in 0.82 GB. */
#ifndef GLAD_METRICS_PRO_H
#define GLAD_METRICS_PRO_H

#include <stdint.h>
#include "core/glad.h"
#include "metrics/roc.h"

typedef struct {
    uint64_t *px;            /* n pixels (key << 32 | payload) */
    size_t n, cap;
    uint32_t *area;          /* area[r] for region r = 1..nreg (area[0] unused) */
    uint32_t nreg, regcap;
    uint32_t nimg, imgcap;
    uint32_t *img_reg0;      /* first region id of image i (regions are numbered per image in order) */
    uint64_t *img_npix, *img_npos;
    int sorted;
} glad_pixset;

/* 8-connected components of a binary mask (nonzero = foreground), labels
 * 1..*nreg in raster order of first pixel (as skimage.measure.label with
 * connectivity 2), 0 for background. lab has h*w entries. */
int glad_label_regions(const uint8_t *mask, int h, int w, uint32_t *lab, uint32_t *nreg);

void glad_pixset_init(glad_pixset *ps);
void glad_pixset_free(glad_pixset *ps);
/* Add one image: map (h*w finite floats; GLAD_ENAN otherwise) and its
 * binary mask (nonzero = anomalous). *img gets the image's index. */
int glad_pixset_add(glad_pixset *ps, const float *map, const uint8_t *mask, int h, int w, uint32_t *img);
/* Sort (once; later calls do nothing). Parallel over the top-level buckets. */
int glad_pixset_sort(glad_pixset *ps);
/* Sort several sets at once (in parallel). */
int glad_pixset_sort_many(glad_pixset **ps, int n);

typedef struct {
    double auroc, ap, f1max;  /* pixel-level, NAN when undefined */
    double aupro, pro_compat; /* NAN when there is no region or no negative pixel */
    uint64_t npix, npos;
    uint32_t nimg, nreg;
} glad_pix_metrics;

typedef struct {
    double fpr_limit;        /* 0.3 */
    int compat_thresholds;   /* 200 */
    double curve_step;       /* decimation of the returned curves (e.g. 1e-3), 0 = every point */
} glad_pro_opts;

/* Evaluate the images with in_group[i] != 0 (in_group NULL = all) of a
 * sorted pixset. roc (FPR,TPR), pr (recall,precision), pro (FPR,PRO) may be
 * NULL; curves should be glad_curve_init'ed by the caller. */
int glad_pixset_eval(const glad_pixset *ps, const uint8_t *in_group, const glad_pro_opts *opt,
                     glad_pix_metrics *out, glad_curve *roc, glad_curve *pr, glad_curve *pro);

#endif
