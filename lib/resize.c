/* resize.c - bilinear and nearest resampling of planar (CHW) float and u8
 * images, matching PyTorch F.interpolate without antialiasing. The
 * tensor-level wrappers (dtype handling) are in image.c. */
#include <stdlib.h>
#include "image.h"

/* Source coordinate of destination index i along one axis:
 *   align_corners:  x = i * (S-1)/(D-1)
 *   otherwise:      x = max(0, (i + 0.5) * S/D - 0.5)        (PyTorch) */
static void axis_weights(int d, int s, int align, int *i0, int *i1, float *w1)
{
    for (int i = 0; i < d; i++) {
        double x;
        if (align) x = d > 1 ? (double)i * (s - 1) / (d - 1) : 0.0;
        else { x = (i + 0.5) * (double)s / d - 0.5; if (x < 0) x = 0; }
        int a = (int)x;
        if (a > s - 1) a = s - 1;
        i0[i] = a;
        i1[i] = a + 1 < s ? a + 1 : s - 1;
        w1[i] = (float)(x - a);
    }
}

int glad_resize_bilinear(float *dst, int dh, int dw, const float *src, int c, int sh, int sw, int align_corners)
{
    int *ix = malloc(sizeof(int) * 2 * ((size_t)dh + dw));
    float *wt = malloc(sizeof(float) * ((size_t)dh + dw));
    if (!ix || !wt) { free(ix); free(wt); return GLAD_ENOMEM; }
    int *y0 = ix, *y1 = ix + dh, *x0 = ix + 2 * dh, *x1 = ix + 2 * dh + dw;
    float *wy = wt, *wx = wt + dh;
    axis_weights(dh, sh, align_corners, y0, y1, wy);
    axis_weights(dw, sw, align_corners, x0, x1, wx);
    // planes x rows are independent; large maps make this worth threading
    #pragma omp parallel for collapse(2) schedule(static) if ((long)c * dh * dw > 65536)
    for (int k = 0; k < c; k++)
        for (int i = 0; i < dh; i++) {
            const float *p = src + (size_t)k * sh * sw;
            const float *r0 = p + (size_t)y0[i] * sw, *r1 = p + (size_t)y1[i] * sw;
            float *o = dst + ((size_t)k * dh + i) * dw;
            float b = wy[i], a = 1.0f - b;
            for (int j = 0; j < dw; j++) {
                float top = r0[x0[j]] * (1.0f - wx[j]) + r0[x1[j]] * wx[j];
                float bot = r1[x0[j]] * (1.0f - wx[j]) + r1[x1[j]] * wx[j];
                o[j] = a * top + b * bot;
            }
        }
    free(ix); free(wt);
    return 0;
}

/* PyTorch "nearest": src = min(floor(i * S / D), S-1) */
static int nearest_index(int *idx, int d, int s)
{
    for (int i = 0; i < d; i++) {
        long v = (long)((double)i * s / d);
        idx[i] = v < s ? (int)v : s - 1;
    }
    return 0;
}

#define NEAREST_BODY(T) \
    int *ix = malloc(sizeof(int) * ((size_t)dh + dw)); \
    if (!ix) return GLAD_ENOMEM; \
    nearest_index(ix, dh, sh); nearest_index(ix + dh, dw, sw); \
    for (int k = 0; k < c; k++) \
        for (int i = 0; i < dh; i++) { \
            const T *r = src + ((size_t)k * sh + ix[i]) * sw; \
            T *o = dst + ((size_t)k * dh + i) * dw; \
            for (int j = 0; j < dw; j++) o[j] = r[ix[dh + j]]; \
        } \
    free(ix); \
    return 0;

int glad_resize_nearest_f32(float *dst, int dh, int dw, const float *src, int c, int sh, int sw) { NEAREST_BODY(float) }
int glad_resize_nearest_u8(uint8_t *dst, int dh, int dw, const uint8_t *src, int c, int sh, int sw) { NEAREST_BODY(uint8_t) }
