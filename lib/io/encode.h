/* encode.h - one dataset item (an image file and its mask file) into a
 * stream record: decode within a pixel budget, convert (f32, channels),
 * resize (bilinear images, nearest masks), centre crop, binarise the mask,
 * and set id, class, split, label, defect, source, image, mask.
 * Not the directory walking (dataset.h) nor the stream writing (stream.h). */
#ifndef GLAD_ENCODE_H
#define GLAD_ENCODE_H

#include "io/dataset.h"
#include "io/record.h"

typedef struct {
    int h, w;              /* resize to h x w (bilinear, align_corners=False); 0: keep */
    double scale;          /* without h: resize to round(H*scale) x round(W*scale), the
                              aspect ratio kept (each side at least 1); 0: keep */
    int crop;              /* centre crop to crop x crop after resizing; 0: none */
    int channels;          /* 1 (grey) or 3 (RGB); 0: as stored */
    int as_float;          /* u8 images as f32 in [-1,1] (16-bit and float files always are) */
    uint64_t max_pixels;   /* decoding budget per file, 0: GLAD_IMAGE_MAX_PIXELS (image.h) */
    int mask_nonzero;      /* masks hold region ids (VisA, PCB-Bank): 1 where > 0, as their
                              prepare_data.py does, instead of >= half the max */
} glad_encode_opts;

/* Fills r (initialised here; freed on failure). The mask is resized with
 * nearest neighbour to the pre-crop size, cropped like the image and
 * binarised: 1 where >= half of its maximum (MTD masks are not strictly
 * 0/255), or where > 0 with mask_nonzero. A normal item without a mask gets an all-zero one; an anomalous
 * item without one (generic folders without masks) gets none. Every failure
 * sets the detail, starting with the file at fault. */
int glad_encode_item(const glad_item *x, const glad_encode_opts *o, glad_record *r);

#endif
