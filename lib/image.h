/* image.h - decode PNG/JPEG/TIFF/BMP files into tensors, encode PNG and
 * float32 TIFF, and the geometric operations on images (resize, crop, grey).
 * Images are tensors of shape [C,H,W] (C = 1 or 3; RGBA drops alpha,
 * palette expands to RGB, grey+alpha drops alpha), dtype u8 (8-bit files),
 * u16 (16-bit files) or f32 (float TIFF). Not a dataset walker (dataset.h). */
#ifndef GLAD_IMAGE_H
#define GLAD_IMAGE_H

#include "tensor.h"

/* Reads by content (magic bytes), not by extension. Corrupt or truncated
 * files give GLAD_EFORMAT, missing ones GLAD_EIO; dimensions above
 * GLAD_IMAGE_MAX_SIDE give GLAD_ERANGE before any pixel allocation. */
#define GLAD_IMAGE_MAX_SIDE 32768
int glad_image_read(const char *path, glad_tensor *out);
int glad_image_read_mem(const uint8_t *buf, size_t len, glad_tensor *out);

/* PNG from u8 or u16 [C,H,W] with C in {1,3,4}, or [H,W]. */
int glad_image_write_png(const char *path, const glad_tensor *t);
/* 32-bit float TIFF from f32 [C,H,W] or [H,W]. */
int glad_image_write_tiff_f32(const char *path, const glad_tensor *t);

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
