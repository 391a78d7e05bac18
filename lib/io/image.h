/* image.h - decode PNG/JPEG/TIFF/BMP files into tensors, encode PNG and
 * float32 TIFF. Resizing, cropping and grey <-> RGB are imgproc/resize.h.
 * Images are tensors of shape [C,H,W] (C = 1 or 3; RGBA drops alpha,
 * palette expands to RGB, grey+alpha drops alpha), dtype u8 (8-bit files),
 * u16 (16-bit files) or f32 (float TIFF). Not a dataset walker (dataset.h). */
#ifndef GLAD_IMAGE_H
#define GLAD_IMAGE_H

#include "core/tensor.h"

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

#endif
