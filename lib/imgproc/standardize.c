/* standardize.c - per-image standardisation to a fixed spread, clamped to
 * [-1, 1] (standardize.h). Two passes over the image: the mean, then the
 * centred sum of squares (no cancellation of sum x^2 - n mean^2). */
#include <math.h>
#include "imgproc/standardize.h"

// x is n values (C*H*W of one image)
int glad_standardize(float *x, size_t n, double s)
{
    if (!(s > 0 && s <= GLAD_STANDARDIZE_MAX)) return glad_fail(GLAD_EINVAL, "standardize: spread %g not in (0, %g]", s, GLAD_STANDARDIZE_MAX);
    if (!n) return glad_fail(GLAD_EINVAL, "standardize: an empty image");
    double sum = 0, ss = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return glad_fail(GLAD_EINVAL, "standardize: value %zu is not finite", i);
        sum += x[i];
    }
    double mean = sum / (double)n;
    for (size_t i = 0; i < n; i++) ss += ((double)x[i] - mean) * ((double)x[i] - mean);
    double sd = sqrt(ss / (double)n);
    // the range is 2 wide: below 2e-6 the image is one value (0 is its mean)
    double g = sd < 2e-6 ? 0 : s / sd;
    for (size_t i = 0; i < n; i++) {
        double v = g * ((double)x[i] - mean);
        x[i] = (float)(v < -1 ? -1 : v > 1 ? 1 : v);
    }
    return 0;
}
