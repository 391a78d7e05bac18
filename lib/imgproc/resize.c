/* resize.c - bilinear and nearest resampling of planar (CHW) float and u8
 * images, matching PyTorch F.interpolate without antialiasing, and the
 * tensor-level geometry on [C,H,W] images (resize keeping dtype, centre crop,
 * grey <-> RGB). Not a codec (io/image.h). */
#include <stdlib.h>
#include <string.h>
#include "imgproc/resize.h"

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

/* ------------------------------------------------------------------ geometry */

int glad_image_resize(glad_tensor *dst, const glad_tensor *src, int h, int w, int nearest)
{
    int c, sh, sw;
    GLAD_TRY(glad_tensor_chw(src, &c, &sh, &sw));
    if (h < 1 || w < 1 || h > GLAD_RESIZE_MAX_SIDE || w > GLAD_RESIZE_MAX_SIDE) return GLAD_ERANGE;
    int64_t shape[3] = {c, h, w};
    int nd = src->ndim;
    const int64_t *shp = nd == 2 ? shape + 1 : shape;
    if (nearest && (src->dtype == GLAD_DT_U8 || src->dtype == GLAD_DT_BOOL)) {
        glad_tensor o;
        GLAD_TRY(glad_tensor_alloc(&o, src->dtype, nd, shp));
        int rc = glad_resize_nearest_u8(o.data, h, w, src->data, c, sh, sw);
        if (rc) { glad_tensor_free(&o); return rc; }
        *dst = o;
        return 0;
    }
    size_t ns = (size_t)c * sh * sw, nd_ = (size_t)c * h * w;
    float *a = malloc(ns * sizeof(float)), *b = malloc(nd_ * sizeof(float));
    int rc = GLAD_ENOMEM;
    if (!a || !b) goto out;
    if ((rc = glad_tensor_to_f32(src, a))) goto out;
    rc = nearest ? glad_resize_nearest_f32(b, h, w, a, c, sh, sw) : glad_resize_bilinear(b, h, w, a, c, sh, sw, 0);
    if (rc == 0) rc = glad_tensor_from_f32(dst, src->dtype, nd, shp, b);
out:
    free(a);
    free(b);
    return rc;
}

int glad_image_center_crop(glad_tensor *dst, const glad_tensor *src, int h, int w)
{
    int c, sh, sw;
    GLAD_TRY(glad_tensor_chw(src, &c, &sh, &sw));
    if (h < 1 || w < 1 || h > sh || w > sw) return GLAD_ESHAPE;
    /* torchvision CenterCrop: top = int(round((H - h) / 2.0)) (round half to even) */
    int top = (int)__builtin_nearbyint((sh - h) / 2.0), left = (int)__builtin_nearbyint((sw - w) / 2.0);
    int64_t shape[3] = {c, h, w};
    glad_tensor o;
    GLAD_TRY(glad_tensor_alloc(&o, src->dtype, src->ndim, src->ndim == 2 ? shape + 1 : shape));
    size_t es = glad_dtype_size(src->dtype);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            memcpy((uint8_t *)o.data + (((size_t)k * h + y) * w) * es,
                   (const uint8_t *)src->data + (((size_t)k * sh + top + y) * sw + left) * es, (size_t)w * es);
    *dst = o;
    return 0;
}

int glad_image_channels(glad_tensor *dst, const glad_tensor *src, int c)
{
    int sc, h, w;
    GLAD_TRY(glad_tensor_chw(src, &sc, &h, &w));
    if (c != 1 && c != 3) return GLAD_EINVAL;
    if (sc == c) return glad_tensor_copy(dst, src);
    if (sc != 1 && sc != 3) return GLAD_ESHAPE;
    size_t hw = (size_t)h * w;
    float *a = malloc(hw * sc * sizeof(float)), *b = malloc(hw * c * sizeof(float));
    int rc = GLAD_ENOMEM;
    if (!a || !b) goto out;
    if ((rc = glad_tensor_to_f32(src, a))) goto out;
    if (c == 3)
        for (int k = 0; k < 3; k++) memcpy(b + k * hw, a, hw * sizeof(float));
    else
        for (size_t i = 0; i < hw; i++) b[i] = 0.299f * a[i] + 0.587f * a[hw + i] + 0.114f * a[2 * hw + i];
    int64_t shape[3] = {c, h, w};
    rc = glad_tensor_from_f32(dst, src->dtype, 3, shape, b);
out:
    free(a);
    free(b);
    return rc;
}
