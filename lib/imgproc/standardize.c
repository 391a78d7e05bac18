/* standardize.c - per-image standardisation to a fixed spread, its tails
 * clamped to [-1, 1], squashed by tanh or left open (standardize.h). Two
 * passes over the image: the mean, then the centred sum of squares (no
 * cancellation of sum x^2 - n mean^2). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "imgproc/standardize.h"

const char *const glad_std_tails[] = {"clip", "tanh", "open", NULL};

int glad_std_tail_find(const char *name)
{
    for (int k = 0; glad_std_tails[k]; k++)
        if (!strcmp(name, glad_std_tails[k])) return k;
    return -1;
}

int glad_std_tails_parse(const char *list)
{
    char name[16];
    int code = -1;
    for (const char *p = list, *e;; p = e + 1) {
        e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len >= sizeof name) return -1;
        memcpy(name, p, len);
        name[len] = 0;
        int k = glad_std_tail_find(name);
        if (k < 0) return -1;
        if (code < 0) code = k;
        else if (k == (int)GLAD_STD_TAILS_FIRST(code) || GLAD_STD_TAILS_HAS(code, k)) return -1;
        else code |= 1 << (GLAD_STD_TAILS_SHIFT + k);
        if (!e) return code;
    }
}

int glad_std_tails_format(char *buf, size_t n, int code)
{
    int first = code & 3, nt = 0;
    while (glad_std_tails[nt]) nt++;
    if (code < 0 || first >= nt || code >> (GLAD_STD_TAILS_SHIFT + nt) || GLAD_STD_TAILS_HAS(code, first)) return glad_fail(GLAD_EINVAL, "standardize tails code %d", code);
    size_t used = (size_t)snprintf(buf, n, "%s", glad_std_tails[first]);
    for (int k = 0; k < nt && used < n; k++)
        if (GLAD_STD_TAILS_HAS(code, k)) used += (size_t)snprintf(buf + used, n - used, ",%s", glad_std_tails[k]);
    return used < n ? 0 : glad_fail(GLAD_EINVAL, "standardize tails: a buffer of %zu bytes", n);
}

int glad_standardize(float *x, size_t n, double s)
{
    return glad_standardize_tail(x, n, s, GLAD_STD_TAIL_CLIP);
}

// x is n values (C*H*W of one image)
int glad_standardize_tail(float *x, size_t n, double s, glad_std_tail tail)
{
    if (tail != GLAD_STD_TAIL_CLIP && tail != GLAD_STD_TAIL_TANH && tail != GLAD_STD_TAIL_OPEN) return glad_fail(GLAD_EINVAL, "standardize: tail %d", (int)tail);
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
        x[i] = (float)(tail == GLAD_STD_TAIL_TANH ? tanh(v) : tail == GLAD_STD_TAIL_OPEN ? v : v < -1 ? -1 : v > 1 ? 1 : v);
    }
    return 0;
}
