/* pipeline.h - one record's anomaly map and image score as GLAD, DDAD and
 * MDPS build them (../shared/spec/reference-algorithms.md §1.5, §2.3, §3.3),
 * from the parts in score.h: pixel distance, per-layer feature distances
 * summed, fusion, scaling, smoothing, the object mask, a centre crop and the
 * reducer. The settings are a struct; the published choices are a table of
 * presets. Arrays in, arrays out: reading records is the caller's. */
#ifndef GLAD_SCORE_PIPELINE_H
#define GLAD_SCORE_PIPELINE_H

#include "core/tensor.h"
#include "imgproc/foreground.h"
#include "score/bank.h"

/* Feature distance: none (pixel only), GLAD's nearest neighbour over all
 * reconstruction positions, DDAD's same position after a 3x3 mean. */
typedef enum { GLAD_FEAT_DIST_NONE = 0, GLAD_FEAT_DIST_NN = 1, GLAD_FEAT_DIST_SAME = 2 } glad_feat_dist;
/* GLAD's reverse direction (nn only): off, on, or by class
 * (glad_score_bidirectional_class). */
typedef enum { GLAD_BIDIR_OFF = 0, GLAD_BIDIR_ON = 1, GLAD_BIDIR_AUTO = 2 } glad_bidir;
/* Object mask: the glad_fg_mode values, or by class (GLAD's test-time list). */
typedef enum { GLAD_SCORE_FG_NONE = GLAD_FG_NONE, GLAD_SCORE_FG_DARK = GLAD_FG_DARK, GLAD_SCORE_FG_BRIGHT = GLAD_FG_BRIGHT,
               GLAD_SCORE_FG_AUTO = 3 } glad_score_fg;
/* How a memory bank of normal features (bank.h) joins a layer's feature
 * distance: replace it (bank only: PatchCore's reference set), union (the
 * nearest over the reconstruction's positions AND the bank: min of both
 * distances), add (the sum of both). */
typedef enum { GLAD_BANK_REPLACE = 0, GLAD_BANK_UNION = 1, GLAD_BANK_ADD = 2 } glad_bank_mode;
typedef enum { GLAD_REDUCE_MAX = 0, GLAD_REDUCE_TOPK_MEAN = 1, GLAD_REDUCE_SOFTMAX_TOPK = 2 } glad_score_reducer;
/* The map's own baseline taken off before the image score: none (the
 * published pipelines), or its q-quantile (glad_score_subtract_quantile). */
typedef enum { GLAD_MAP_NORM_NONE = 0, GLAD_MAP_NORM_QUANTILE = 1 } glad_map_norm;

/* Option names in enum order, NULL-terminated. */
extern const char *const glad_feat_dists[];      /* "none", "nn", "same" */
extern const char *const glad_bidir_modes[];     /* "off", "on", "auto" */
extern const char *const glad_pixel_spaces[];    /* "raw", "imagenet" (the imagenet flag) */
extern const char *const glad_score_fg_modes[];  /* "none", "dark", "bright", "auto" */
extern const char *const glad_score_reducers[];  /* "max", "topk-mean", "softmax-topk" */
extern const char *const glad_bank_modes[];      /* "replace", "union", "add" */

typedef struct {
    glad_feat_dist feat;
    glad_bidir bidir;
    int imagenet;              /* pixel distance on ImageNet-normalised images */
    double v;                  /* A = D_f + v (max D_f / max D_p) D_p; 0: features only */
    double scale;              /* A *= scale */
    double sigma;              /* Gaussian smoothing (0: none) */
    glad_score_fg fg;
    int crop;                  /* centre crop NxN when the map is at least that big (0: none) */
    int size;                  /* map resolution (0: the image's) */
    glad_score_reducer reducer;
    long k;                    /* K of the top-K reducers */
    glad_map_norm norm;        /* after the crop, before the reducer (amap is the normalised map) */
    double norm_q;             /* q of GLAD_MAP_NORM_QUANTILE, in [0,1] */
    glad_bank_norm bank_norm;  /* how a bank layer's distance is read (bank.h; none in the presets) */
} glad_score_opts;

/* The published settings (spec §1.5, §2.3, §3.3), indexed by the names. */
enum { GLAD_SCORE_PRESET_GLAD = 0, GLAD_SCORE_PRESET_DDAD = 1, GLAD_SCORE_PRESET_MDPS = 2 };
extern const char *const glad_score_preset_names[];   /* "glad", "ddad", "mdps" */
extern const glad_score_opts glad_score_presets[];

/* GLAD adds the reverse nearest-neighbour direction for these classes
 * (transistor, pcb1, pcb4; main.py). cls may be NULL (no). */
int glad_score_bidirectional_class(const char *cls);

/* The map normalisation of o on a map of n values (in place; a no-op with
 * GLAD_MAP_NORM_NONE). GLAD_EINVAL, GLAD_ENOMEM. */
int glad_score_map_norm(float *A, size_t n, const glad_score_opts *o);

/* Image score of a map of n values by the reducer (k for the top-K ones). */
double glad_score_reduce(const float *A, size_t n, glad_score_reducer r, size_t k);

/* One record in three calls: begin with the image and its reconstruction
 * ((C,H,W) in [-1,1]; image must stay valid until finish), add each feature
 * layer pair, finish. Errors are GLAD_E* codes with glad_error_detail(). */
typedef struct {
    glad_score_opts o;
    const float *image;
    int C, H, W;
    int oh, ow;                /* map size before the crop */
    int bidir;                 /* the reverse direction is added (decided from the class) */
    int crop;                  /* the crop finish applies (0: none) */
    int nlayers;
    float *pixel;              /* D_p at oh x ow */
    float *feat;               /* sum of the layers' D_f at oh x ow, NULL before the first */
    const char *cls;
} glad_score_map;

int glad_score_map_begin(glad_score_map *m, const glad_score_opts *o, const float *image, const float *recon, int C, int H, int W,
                         const char *cls);
/* recon may be NULL: the pixel distance is then 0 (only a bank-only feature
 * map with v = 0 makes sense of it; the caller checks). */
/* fa, fb: (c,h,w) features of the image and of the reconstruction. A no-op
 * with GLAD_FEAT_DIST_NONE. */
int glad_score_map_add_layer(glad_score_map *m, const float *fa, const float *fb, int c, int h, int w);
/* The same with layer bi of bank b (bank.h) combined by mode; fb (the
 * reconstruction's features) is not read with GLAD_BANK_REPLACE and may be
 * NULL then. Counts as a feature layer whatever the feat setting. */
int glad_score_map_add_bank_layer(glad_score_map *m, const glad_bank *b, int bi, glad_bank_mode mode, const float *fa,
                                  const float *fb, int c, int h, int w);
/* amap: set to a new f32 tensor [1,h,w] (the crop and the map normalisation
 * applied); score by the reducer of it.
 * A map with NaN or infinity is GLAD_ENAN. m->pixel and m->feat stay valid
 * (before scaling and smoothing) until glad_score_map_free. */
int glad_score_map_finish(glad_score_map *m, glad_tensor *amap, double *score);
void glad_score_map_free(glad_score_map *m);

#endif
