/* pool.h - local averaging of feature maps: each position's vector replaced
 * by the mean of the K x K neighbourhood around it (PatchCore's "locally aware
 * patch features", its aggregation over a 3x3 patch). Not a strided pooling:
 * the map keeps its size. */
#ifndef GLAD_POOL_H
#define GLAD_POOL_H

#include "core/glad.h"

#define GLAD_POOL_MAX_K 63   /* the largest window (K odd, 1..63) */

/* out[c,y,x] = mean of x[c,y',x'] over |y'-y| <= K/2, |x'-x| <= K/2 inside the
 * map (positions outside are left out of the mean, not counted as zeros:
 * PatchCore's unfold pads zeros, which would shrink the vectors at the border
 * and make every tile's edge look anomalous). K odd, 1..GLAD_POOL_MAX_K; K = 1 copies.
 * x and out are (C,H,W) and must not overlap. GLAD_EINVAL on a bad K or shape. */
int glad_pool_avg(float *out, const float *x, int C, int H, int W, int K);

#endif
