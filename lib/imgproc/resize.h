/* resize.h - geometry of images: bilinear and nearest resampling of planar
 * float/u8 planes (PyTorch F.interpolate semantics) and tensor-level resize,
 * centre crop and channel conversion of [C,H,W] images. Not a codec
 * (io/image.h) and not a blur (imgproc/gauss.h). */
#ifndef GLAD_RESIZE_H
#define GLAD_RESIZE_H

#include "core/tensor.h"

/* Largest side the tensor-level resize produces (same bound as decoding). */
#define GLAD_RESIZE_MAX_SIDE 32768

/* Bilinear resize of c planes (float, planar CHW), no antialiasing.
 * align_corners = 0 is PyTorch F.interpolate(mode="bilinear",
 * align_corners=False) (half-pixel centres, source index clamped at 0);
 * align_corners = 1 maps corner pixels onto corner pixels.
 * These return 0 or GLAD_ENOMEM (they allocate index tables). */
int glad_resize_bilinear(float *dst, int dh, int dw, const float *src, int c, int sh, int sw, int align_corners);
/* Nearest (PyTorch mode="nearest": src = floor(dst * sh / dh)). */
int glad_resize_nearest_f32(float *dst, int dh, int dw, const float *src, int c, int sh, int sw);
int glad_resize_nearest_u8(uint8_t *dst, int dh, int dw, const uint8_t *src, int c, int sh, int sw);

/* Tensor-level resize keeping dtype ([C,H,W] or [H,W]); integer dtypes are
 * rounded and clamped after bilinear. nearest != 0 selects nearest. */
int glad_image_resize(glad_tensor *dst, const glad_tensor *src, int h, int w, int nearest);
/* Centre crop to h x w (torchvision CenterCrop: top = round((H-h)/2)). */
int glad_image_center_crop(glad_tensor *dst, const glad_tensor *src, int h, int w);
/* Convert to c channels (1 <-> 3): grey = 0.299 R + 0.587 G + 0.114 B; grey->RGB repeats. */
int glad_image_channels(glad_tensor *dst, const glad_tensor *src, int c);

#endif
