/* pipeline.c - one record's anomaly map and score (pipeline.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "imgproc/resize.h"
#include "score/pipeline.h"
#include "score/score.h"

const char *const glad_feat_dists[] = {"none", "nn", "same", NULL};
const char *const glad_bidir_modes[] = {"off", "on", "auto", NULL};
const char *const glad_pixel_spaces[] = {"raw", "imagenet", NULL};
const char *const glad_score_fg_modes[] = {"none", "dark", "bright", "auto", NULL};
const char *const glad_score_reducers[] = {"max", "topk-mean", "softmax-topk", NULL};
const char *const glad_bank_modes[] = {"replace", "union", "add", NULL};

const char *const glad_score_preset_names[] = {"glad", "ddad", "mdps", NULL};
const glad_score_opts glad_score_presets[] = {
    /* GLAD main.py: nn over DINO layers, reverse direction for some classes,
     * v 0 (ImageNet pixels), sigma 6, the object mask, mean of the top 250 */
    [GLAD_SCORE_PRESET_GLAD] = {.feat = GLAD_FEAT_DIST_NN, .bidir = GLAD_BIDIR_AUTO, .imagenet = 1, .v = 0, .scale = 1, .sigma = 6,
                                .fg = GLAD_SCORE_FG_AUTO, .crop = 0, .reducer = GLAD_REDUCE_TOPK_MEAN, .k = 250},
    /* DDAD anomaly_map.py: same position, v 1 on raw pixels, sigma 4, crop 224, max */
    [GLAD_SCORE_PRESET_DDAD] = {.feat = GLAD_FEAT_DIST_SAME, .bidir = GLAD_BIDIR_OFF, .imagenet = 0, .v = 1, .scale = 1, .sigma = 4,
                                .fg = GLAD_SCORE_FG_NONE, .crop = 224, .reducer = GLAD_REDUCE_MAX, .k = 250},
    /* MDPS compare.py: same position, v ("eta") 7 on ImageNet pixels, halved,
     * sigma 4, crop 224, sum of the top 500 softmax probabilities */
    [GLAD_SCORE_PRESET_MDPS] = {.feat = GLAD_FEAT_DIST_SAME, .bidir = GLAD_BIDIR_OFF, .imagenet = 1, .v = 7, .scale = 0.5, .sigma = 4,
                                .fg = GLAD_SCORE_FG_NONE, .crop = 224, .reducer = GLAD_REDUCE_SOFTMAX_TOPK, .k = 500},
};

int glad_score_bidirectional_class(const char *cls)
{
    static const char *const classes[] = {"transistor", "pcb1", "pcb4", NULL};
    for (int i = 0; cls && classes[i]; i++) if (!strcmp(cls, classes[i])) return 1;
    return 0;
}

int glad_score_map_norm(float *A, size_t n, const glad_score_opts *o)
{
    if (o->norm == GLAD_MAP_NORM_NONE) return 0;
    return glad_score_subtract_quantile(A, n, o->norm_q);
}

double glad_score_reduce(const float *A, size_t n, glad_score_reducer r, size_t k)
{
    switch (r) {
    case GLAD_REDUCE_TOPK_MEAN: return glad_score_topk_mean(A, n, k);
    case GLAD_REDUCE_SOFTMAX_TOPK: return glad_score_softmax_topk(A, n, k);
    default: return glad_score_max(A, n);
    }
}

void glad_score_map_free(glad_score_map *m)
{
    if (!m) return;
    free(m->pixel);
    free(m->feat);
    memset(m, 0, sizeof *m);
}

int glad_score_map_begin(glad_score_map *m, const glad_score_opts *o, const float *image, const float *recon, int C, int H, int W,
                         const char *cls)
{
    memset(m, 0, sizeof *m);
    m->o = *o;
    m->image = image;
    m->C = C; m->H = H; m->W = W;
    m->oh = o->size ? o->size : H;
    m->ow = o->size ? o->size : W;
    m->cls = cls;
    m->bidir = o->bidir == GLAD_BIDIR_AUTO ? glad_score_bidirectional_class(cls) : o->bidir == GLAD_BIDIR_ON;
    m->crop = o->crop && o->crop <= m->oh && o->crop <= m->ow ? o->crop : 0;
    size_t on = (size_t)m->oh * m->ow;
    m->pixel = malloc(on * sizeof(float));
    float *tmp = malloc((size_t)H * W * sizeof(float));
    int rc = GLAD_ENOMEM;
    if (!m->pixel || !tmp) goto fail;
    /* pixel distance at the image resolution, then to the map resolution */
    if (!recon) { memset(m->pixel, 0, on * sizeof(float)); free(tmp); return 0; }
    GLAD_TRYG(rc, glad_score_pixel_map(tmp, image, recon, C, H, W, o->imagenet), fail);
    GLAD_TRYG(rc, glad_resize_bilinear(m->pixel, m->oh, m->ow, tmp, 1, H, W, 1), fail);
    free(tmp);
    return 0;
fail:
    free(tmp);
    glad_score_map_free(m);
    return glad_fail(rc, "pixel distance of [%d,%d,%d] images: %s", C, H, W, glad_strerror(rc));
}

/* lay (h x w, one layer's distance) upsampled (align_corners) to the map and summed */
static int accumulate(glad_score_map *m, const float *lay, int h, int w)
{
    size_t on = (size_t)m->oh * m->ow;
    float *up = malloc(on * sizeof(float));
    if (!up || (!m->feat && !(m->feat = calloc(on, sizeof(float))))) { free(up); return GLAD_ENOMEM; }
    int rc = glad_resize_bilinear(up, m->oh, m->ow, lay, 1, h, w, 1);
    if (!rc) for (size_t i = 0; i < on; i++) m->feat[i] += up[i];
    free(up);
    if (!rc) m->nlayers++;
    return rc;
}

/* lay = GLAD's nearest-neighbour distance over the reconstruction's positions (and the reverse) */
static int nn_layer(const glad_score_map *m, float *lay, const float *fa, const float *fb, int c, size_t hw)
{
    GLAD_TRY(glad_score_nn_map(lay, fa, (int)hw, fb, (int)hw, c));
    if (m->bidir) {
        GLAD_TRY(glad_score_nn_map(lay + hw, fb, (int)hw, fa, (int)hw, c));
        for (size_t i = 0; i < hw; i++) lay[i] += lay[hw + i];
    }
    return 0;
}

int glad_score_map_add_layer(glad_score_map *m, const float *fa, const float *fb, int c, int h, int w)
{
    if (m->o.feat == GLAD_FEAT_DIST_NONE) return 0;
    size_t hw = (size_t)h * w;
    if (c < 1 || h < 1 || w < 1 || hw > (size_t)1 << 30) return glad_fail(GLAD_ESHAPE, "feature map [%d,%d,%d]", c, h, w);
    float *lay = malloc(2 * hw * sizeof(float));
    int rc = GLAD_ENOMEM;
    if (!lay) goto out;
    if (m->o.feat == GLAD_FEAT_DIST_NN) GLAD_TRYG(rc, nn_layer(m, lay, fa, fb, c, hw), out);
    else GLAD_TRYG(rc, glad_score_same_map(lay, fa, fb, c, h, w), out);
    GLAD_TRYG(rc, accumulate(m, lay, h, w), out);
out:
    free(lay);
    return rc ? glad_fail(rc, "feature distance of a [%d,%d,%d] layer: %s", c, h, w, glad_strerror(rc)) : 0;
}

int glad_score_map_add_bank_layer(glad_score_map *m, const glad_bank *b, int bi, glad_bank_mode mode, const float *fa,
                                  const float *fb, int c, int h, int w)
{
    size_t hw = (size_t)h * w;
    if (c < 1 || h < 1 || w < 1 || hw > (size_t)1 << 30) return glad_fail(GLAD_ESHAPE, "feature map [%d,%d,%d]", c, h, w);
    if (mode != GLAD_BANK_REPLACE && !fb) return glad_fail(GLAD_EINVAL, "bank mode %s needs the reconstruction's features", glad_bank_modes[mode]);
    float *lay = malloc(3 * hw * sizeof(float)), *db = lay ? lay + 2 * hw : NULL;
    int rc = GLAD_ENOMEM;
    if (!lay) goto out;
    GLAD_TRYG(rc, glad_bank_query_norm(mode == GLAD_BANK_REPLACE ? lay : db, b, bi, m->o.bank_norm, fa, c, h, w), out);
    if (mode != GLAD_BANK_REPLACE) {
        /* the reconstruction's distance as glad_score_map_add_layer computes it */
        if (m->o.feat == GLAD_FEAT_DIST_SAME) GLAD_TRYG(rc, glad_score_same_map(lay, fa, fb, c, h, w), out);
        else GLAD_TRYG(rc, nn_layer(m, lay, fa, fb, c, hw), out);
        for (size_t i = 0; i < hw; i++) lay[i] = mode == GLAD_BANK_UNION ? fminf(lay[i], db[i]) : lay[i] + db[i];
    }
    GLAD_TRYG(rc, accumulate(m, lay, h, w), out);
out:
    free(lay);
    if (rc == GLAD_ESHAPE || rc == GLAD_EINVAL) return rc;   /* the bank's detail stands */
    return rc ? glad_fail(rc, "bank distance of a [%d,%d,%d] layer: %s", c, h, w, glad_strerror(rc)) : 0;
}

int glad_score_map_finish(glad_score_map *m, glad_tensor *amap, double *score)
{
    const glad_score_opts *o = &m->o;
    int oh = m->oh, ow = m->ow, C = m->C, rc = GLAD_ENOMEM;
    size_t on = (size_t)oh * ow;
    float *A = malloc(on * sizeof(float)), *ir = NULL, *obj = NULL;
    glad_tensor am = {0}, tp = {0};
    if (!A) goto out;
    /* A = D_f + v (max D_f / max D_p) D_p, or D_p without features */
    if (m->nlayers) {
        memcpy(A, m->feat, on * sizeof(float));
        glad_score_fuse(A, m->pixel, on, o->v);
    } else memcpy(A, m->pixel, on * sizeof(float));
    if (o->scale != 1.0) for (size_t i = 0; i < on; i++) A[i] = (float)(A[i] * o->scale);
    GLAD_TRYG(rc, glad_score_gaussian_blur(A, oh, ow, o->sigma), out);
    /* object mask from the input image at the map resolution */
    glad_fg_mode fg = o->fg == GLAD_SCORE_FG_AUTO ? glad_fg_mode_for_class(m->cls, 1) : (glad_fg_mode)o->fg;
    if (fg != GLAD_FG_NONE) {
        ir = malloc((size_t)C * on * sizeof(float));
        obj = malloc(on * sizeof(float));
        rc = GLAD_ENOMEM;
        if (!ir || !obj) goto out;
        GLAD_TRYG(rc, glad_resize_bilinear(ir, oh, ow, m->image, C, m->H, m->W, 1), out);
        GLAD_TRYG(rc, glad_object_mask(obj, ir, C, oh, ow, fg), out);
        for (size_t i = 0; i < on; i++) A[i] *= obj[i];
    }
    int64_t shp[3] = {1, oh, ow};
    GLAD_TRYG(rc, glad_tensor_from_f32(&am, GLAD_DT_F32, 3, shp, A), out);
    if (m->crop) {
        GLAD_TRYG(rc, glad_image_center_crop(&tp, &am, m->crop, m->crop), out);
        glad_tensor_move(&am, &tp);
    }
    if (glad_tensor_has_nonfinite(&am)) { rc = glad_fail(GLAD_ENAN, "contains NaN or infinity"); goto out; }
    /* the baseline after the crop: what --rescore reads back is this map, and
     * normalising it again changes nothing (idempotent) */
    GLAD_TRYG(rc, glad_score_map_norm(am.data, glad_tensor_numel(&am), o), out);
    *score = glad_score_reduce(am.data, glad_tensor_numel(&am), o->reducer, (size_t)o->k);
    rc = GLAD_ENOMEM;
    if (isnan(*score)) goto out;   /* the reducers' sorted copy could not be allocated */
    *amap = am;
    memset(&am, 0, sizeof am);
    rc = 0;
out:
    free(A); free(ir); free(obj);
    glad_tensor_free(&am);
    glad_tensor_free(&tp);
    if (rc && rc != GLAD_ENAN) rc = glad_fail(rc, "anomaly map: %s", glad_strerror(rc));
    return rc;
}
