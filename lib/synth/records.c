/* records.c - see records.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/rng.h"
#include "io/image.h"
#include "synth/records.h"

const char *const glad_synth_fg_names[] = {"auto", "dark", "bright", "none", NULL};

void glad_synth_record_opts_default(glad_synth_record_opts *o)
{
    memset(o, 0, sizeof *o);
    glad_synth_opts_default(&o->anomaly);
    o->fg = GLAD_SYNTH_FG_AUTO;
}

static glad_fg_mode fg_mode(const glad_synth_record_opts *o, const glad_record *r)
{
    const char *cls = NULL;
    switch (o->fg) {
    case GLAD_SYNTH_FG_DARK: return GLAD_FG_DARK;
    case GLAD_SYNTH_FG_BRIGHT: return GLAD_FG_BRIGHT;
    case GLAD_SYNTH_FG_NONE: return GLAD_FG_NONE;
    default: return glad_fg_mode_for_class(glad_record_get_str(r, "class", &cls) == 0 ? cls : NULL, 0);
    }
}

/* The new keys, in the order the fields have always been written. */
static int set_keys(glad_record *r, const glad_synth_record_opts *o, int made, glad_tensor *ta, glad_tensor *tm)
{
    if (!o->as_test) {
        GLAD_TRY(glad_record_set_tensor(r, "anomalous", ta));
        return glad_record_set_tensor(r, "synth_mask", tm);
    }
    if (made) GLAD_TRY(glad_record_set_tensor(r, "image", ta));
    GLAD_TRY(glad_record_set_tensor(r, "mask", tm));
    GLAD_TRY(glad_record_set_int(r, "label", made));
    GLAD_TRY(glad_record_set_str(r, "defect", !made ? "good" : o->defect ? o->defect : "synthetic"));
    return glad_record_set_str(r, "split", "test");
}

int glad_synth_record(glad_record *r, const glad_synth_record_opts *o, const glad_textures *tex)
{
    const glad_tensor *t;
    int C, H, W;
    if (glad_record_get_tensor(r, "image", &t)) return glad_fail(GLAD_ENOTFOUND, "'image' missing");
    if (glad_tensor_chw(t, &C, &H, &W)) return glad_fail(GLAD_ESHAPE, "'image' is not a [C,H,W] image");
    if (o->as_test && o->keep_source) {
        glad_tensor cp;
        if (glad_tensor_copy(&cp, t) || glad_record_set_tensor(r, "source_image", &cp)) return glad_fail(GLAD_ENOMEM, "out of memory");
        GLAD_TRY(glad_record_get_tensor(r, "image", &t));   /* the record's fields may have moved */
    }
    size_t n = glad_tensor_numel(t), hw = (size_t)H * W;
    float *img = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
    uint8_t *m = malloc(hw);
    glad_tensor ta = {0}, tm = {0};
    int rc = 0, made = 0;
    int64_t ms[3] = {1, H, W};
    if (!img || !out || !m) rc = glad_fail(GLAD_ENOMEM, "out of memory");
    else if (glad_tensor_image_to_f32(t, img)) rc = glad_fail(GLAD_EDTYPE, "'image' is not numeric");
    for (size_t i = 0; rc == 0 && i < n; i++) if (!isfinite(img[i])) rc = glad_fail(GLAD_ENAN, "'image' contains NaN or infinity");
    if (rc == 0) {
        glad_synth_opts so = o->anomaly;
        so.fg = fg_mode(o, r);
        glad_error_clear();
        made = glad_synth_anomaly(out, m, img, C, H, W, &so, o->seed, glad_rng_hash_str(glad_record_id(r)), tex);
        if (made < 0) rc = glad_fail(made, "synthesis failed: %s", glad_error_detail()[0] ? glad_error_detail() : glad_strerror(made));
    }
    if (rc == 0 && (rc = glad_tensor_image_from_f32(&ta, t->dtype, t->ndim, t->shape, out)) == 0 &&
        (rc = glad_tensor_alloc(&tm, GLAD_DT_U8, 3, ms)) == 0) {
        memcpy(tm.data, m, hw);
        rc = set_keys(r, o, made, &ta, &tm);
    }
    if (rc < 0 && !glad_error_detail()[0]) glad_fail(rc, "%s", glad_strerror(rc));
    glad_tensor_free(&ta); glad_tensor_free(&tm);
    free(img); free(out); free(m);
    return rc < 0 ? rc : made;
}

/* one panel (original, anomalous or mask) at (x0, y0) of the RGB grid o (Wd wide, ghw pixels),
 * at most S x S (a larger one is left out) */
static int draw_panel(uint8_t *o, int Wd, size_t ghw, int x0, int y0, int S, const glad_tensor *t, int is_mask)
{
    int c, h, w;
    if (glad_tensor_chw(t, &c, &h, &w) || h > S || w > S) return 0;
    size_t n = glad_tensor_numel(t), hw = (size_t)h * w;
    float *f = malloc(n * sizeof(float));
    if (!f) return GLAD_ENOMEM;
    glad_tensor_to_f32(t, f);
    /* u8 images are drawn as they are, others from [-1,1]; masks 0/1 -> 0/255 */
    if (!is_mask && t->dtype != GLAD_DT_U8) { glad_tensor_image_to_f32(t, f); for (size_t j = 0; j < n; j++) f[j] = (f[j] + 1) * 127.5f; }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < 3; ch++) {
                float v = f[(size_t)(c == 3 ? ch : 0) * hw + (size_t)y * w + x] * (is_mask ? 255.0f : 1.0f);
                o[ch * ghw + (size_t)(y0 + y) * Wd + x0 + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    free(f);
    return 0;
}

int glad_synth_preview(const char *path, const glad_record *recs, int n, int as_test)
{
    int S = 0;
    for (int i = 0; i < n; i++) {
        const glad_tensor *t;
        int c, h, w;
        if (glad_record_get_tensor(&recs[i], "image", &t) || glad_tensor_chw(t, &c, &h, &w)) continue;
        if (h > S) S = h;
        if (w > S) S = w;
    }
    if (!S || n == 0) return glad_fail(GLAD_EINVAL, "no record with an image to preview");
    int pad = 2, Wd = 3 * S + 4 * pad, Hd = n * S + (n + 1) * pad;
    glad_tensor g;
    GLAD_TRY(glad_tensor_alloc4(&g, GLAD_DT_U8, 3, Hd, Wd, -1));
    memset(g.data, 40, (size_t)3 * Hd * Wd);
    const char *keys[3] = {as_test ? "source_image" : "image", as_test ? "image" : "anomalous", as_test ? "mask" : "synth_mask"};
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++)
        for (int k = 0; rc == 0 && k < 3; k++) {
            const glad_tensor *t;
            if (glad_record_get_tensor(&recs[i], keys[k], &t) == 0)
                rc = draw_panel(g.data, Wd, (size_t)Hd * Wd, pad + k * (S + pad), pad + i * (S + pad), S, t, k == 2);
        }
    if (rc == 0) rc = glad_image_write_png(path, &g);
    glad_tensor_free(&g);
    return rc;
}
