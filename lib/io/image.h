/* image.h - decode PNG/JPEG/TIFF/BMP files into tensors, encode PNG and
 * float32 TIFF. Resizing, cropping and grey <-> RGB are imgproc/resize.h.
 * Images are tensors of shape [C,H,W] (C = 1 or 3; RGBA drops alpha,
 * palette expands to RGB, grey+alpha drops alpha), dtype u8 (8-bit files),
 * u16 (16-bit files) or f32 (float TIFF). Not a dataset walker (dataset.h). */
#ifndef GLAD_IMAGE_H
#define GLAD_IMAGE_H

#include "core/tensor.h"

/* Reads by content (magic bytes), not by extension. Every failure sets the
 * detail (glad_error_detail), prefixed with the path by the file readers:
 * a missing or unreadable file or a directory gives GLAD_EIO ("x.png: No such
 * file or directory", "x.png: Is a directory"), a corrupt or truncated one
 * GLAD_EFORMAT with the codec library's message, a failed allocation
 * GLAD_ENOMEM ("out of memory ..."), a valid file this build does not decode
 * GLAD_EUNSUPPORTED.
 *
 * Pixel budget. The size a file declares (PNG IHDR, JPEG frame header, TIFF
 * tags, BMP header) is checked BEFORE any pixel buffer is allocated: more than
 * max_pixels pixels (width x height), or a side over GLAD_IMAGE_MAX_SIDE, gives
 * GLAD_ERANGE with the declared size in the detail ("x.png: 16000x16000 PNG
 * (256000000 pixels) over the limit of 67108864 pixels"). The default budget
 * GLAD_IMAGE_MAX_PIXELS is 2^26 = 67,108,864 pixels (8192 x 8192; 192 MiB as
 * RGB u8), 64 times an MVTec AD image: a 250 KB PNG declaring 16000 x 16000
 * is refused instead of taking gigabytes through glad-encode. The libraries'
 * own limits back the check up: libpng's user limits and an 8 MiB cap on an
 * ancillary chunk, libjpeg's max_memory_to_use (8 bytes a pixel + 64 MiB),
 * libtiff's largest single allocation (16 bytes a pixel + 1 MiB). */
#define GLAD_IMAGE_MAX_SIDE 32768
#define GLAD_IMAGE_MAX_PIXELS ((uint64_t)1 << 26)
int glad_image_read(const char *path, glad_tensor *out);
int glad_image_read_mem(const uint8_t *buf, size_t len, glad_tensor *out);
/* The same with another budget: max_pixels 0 is GLAD_IMAGE_MAX_PIXELS; values
 * above GLAD_IMAGE_MAX_SIDE^2 act as that. */
int glad_image_read_bounded(const char *path, uint64_t max_pixels, glad_tensor *out);
int glad_image_read_mem_bounded(const uint8_t *buf, size_t len, uint64_t max_pixels, glad_tensor *out);

/* PNG from u8 or u16 [C,H,W] with C in {1,3,4}, or [H,W]. */
int glad_image_write_png(const char *path, const glad_tensor *t);
/* 32-bit float TIFF from f32 [C,H,W] or [H,W]. */
int glad_image_write_tiff_f32(const char *path, const glad_tensor *t);

#endif
