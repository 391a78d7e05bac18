/* encode.c - see encode.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "imgproc/resize.h"
#include "io/encode.h"
#include "io/image.h"

/* "path: what failed": the detail a call left (detail is cleared on entry), else the code's text */
static int at(const char *path, int rc)
{
    char why[1024];
    snprintf(why, sizeof why, "%s", glad_error_detail()[0] ? glad_error_detail() : glad_strerror(rc));
    return glad_fail(rc, "%s: %s", path, why);
}

/* mask in place: grey, nearest to (mh, mw), centre crop, then 1 where >= half the max
 * (or > 0: VisA's masks hold region ids 1, 2, ..., and a half-max rule would drop the low ones) */
static int prepare_mask(glad_tensor *mask, const glad_encode_opts *o, int mh, int mw, int oh, int ow)
{
    glad_tensor tmp = {0};
    if (mask->shape[0] != 1) { GLAD_TRY(glad_image_channels(&tmp, mask, 1)); glad_tensor_move(mask, &tmp); }
    if (mask->shape[1] != mh || mask->shape[2] != mw) {
        if (mask->dtype != GLAD_DT_U8) { GLAD_TRY(glad_tensor_convert(&tmp, mask, GLAD_DT_F32)); glad_tensor_move(mask, &tmp); }
        GLAD_TRY(glad_image_resize(&tmp, mask, mh, mw, 1));
        glad_tensor_move(mask, &tmp);
    }
    if (o->crop) { GLAD_TRY(glad_image_center_crop(&tmp, mask, o->crop, o->crop)); glad_tensor_move(mask, &tmp); }
    size_t n = glad_tensor_numel(mask);
    double *v = malloc(n * sizeof(double)), mx = 0;
    if (!v) return GLAD_ENOMEM;
    glad_tensor_to_f64(mask, v);
    for (size_t i = 0; i < n; i++) if (v[i] > mx) mx = v[i];
    int rc = glad_tensor_alloc4(&tmp, GLAD_DT_U8, 1, oh, ow, -1);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) ((uint8_t *)tmp.data)[i] = o->mask_nonzero ? v[i] > 0 : mx > 0 && v[i] >= mx / 2;
        glad_tensor_move(mask, &tmp);
    }
    free(v);
    return rc;
}

int glad_encode_item(const glad_item *x, const glad_encode_opts *o, glad_record *r)
{
    glad_tensor img = {0}, tmp = {0}, mask = {0};
    int rc;
    glad_record_init(r);
    glad_error_clear();
    if ((rc = glad_image_read_bounded(x->path, o->max_pixels, &img))) goto fail;   /* detail names the file */
    /* 16-bit and float images become f32 in [-1,1] (u8 would lose range) */
    if (img.dtype == GLAD_DT_U16 || img.dtype == GLAD_DT_F32 || (o->as_float && img.dtype == GLAD_DT_U8)) {
        if ((rc = glad_tensor_image_as_f32(&tmp, &img))) { at(x->path, rc); goto fail; }
        glad_tensor_move(&img, &tmp);
    }
    if (o->channels && img.shape[0] != o->channels) {
        if ((rc = glad_image_channels(&tmp, &img, o->channels))) { glad_fail(rc, "%s: channels: %s", x->path, glad_strerror(rc)); goto fail; }
        glad_tensor_move(&img, &tmp);
    }
    int H = (int)img.shape[1], W = (int)img.shape[2], th = o->h, tw = o->w;
    if (!th && o->scale > 0) {
        /* a factor keeps the aspect ratio: images of many sizes stay at one scale */
        double sh = floor(H * o->scale + 0.5), sw = floor(W * o->scale + 0.5);
        if (sh > GLAD_IMAGE_MAX_SIDE || sw > GLAD_IMAGE_MAX_SIDE) { rc = glad_fail(GLAD_ERANGE, "%s: --scale %g makes %.0fx%.0f, above %d px", x->path, o->scale, sh, sw, GLAD_IMAGE_MAX_SIDE); goto fail; }
        th = sh < 1 ? 1 : (int)sh;
        tw = sw < 1 ? 1 : (int)sw;
    }
    if (th && (H != th || W != tw)) {
        if ((rc = glad_image_resize(&tmp, &img, th, tw, 0))) { at(x->path, rc); goto fail; }
        glad_tensor_move(&img, &tmp);
    }
    if (o->crop) {
        if ((rc = glad_image_center_crop(&tmp, &img, o->crop, o->crop))) { glad_fail(rc, "%s: crop %d larger than the image", x->path, o->crop); goto fail; }
        glad_tensor_move(&img, &tmp);
    }
    int oh = (int)img.shape[1], ow = (int)img.shape[2];
    if (x->mask) {
        if ((rc = glad_image_read_bounded(x->mask, o->max_pixels, &mask))) goto fail;
        if ((rc = prepare_mask(&mask, o, th ? th : H, th ? tw : W, oh, ow))) { at(x->mask, rc); goto fail; }
    } else if (!x->label) {
        if ((rc = glad_tensor_alloc4(&mask, GLAD_DT_U8, 1, oh, ow, -1))) { at(x->path, rc); goto fail; }
    }
    if ((rc = glad_record_set_str(r, "id", x->id)) || (rc = glad_record_set_str(r, "class", x->cls)) ||
        (rc = glad_record_set_str(r, "split", x->split)) || (rc = glad_record_set_int(r, "label", x->label)) ||
        (rc = glad_record_set_str(r, "defect", x->defect)) || (rc = glad_record_set_str(r, "source", x->path)) ||
        (rc = glad_record_set_tensor(r, "image", &img)) || (mask.data && (rc = glad_record_set_tensor(r, "mask", &mask)))) {
        at(x->path, rc);
        goto fail;
    }
    return 0;
fail:
    glad_tensor_free(&img); glad_tensor_free(&tmp); glad_tensor_free(&mask);
    glad_record_free(r);
    return rc;
}
