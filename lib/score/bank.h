/* bank.h - a memory bank of normal patch features: for every feature layer,
 * the L2-normalised feature vectors of every position of the training
 * normals (PatchCore, Roth et al. CVPR 2022, with GLAD's cosine distance in
 * place of its L2), optionally thinned by greedy k-center coreset selection.
 * Scoring a position is GLAD's nearest-neighbour distance (score.h
 * glad_score_nn_map) with the bank as the reference set instead of, or
 * beside, the reconstruction's positions. Saved as safetensors: one f32
 * tensor "bank.<layer>" [M, C] per layer, metadata "glad_bank" = "1" and
 * "layers" = "2,5,12" (their order), and "pool" = "K" when the features were
 * glad-features --pool K (K > 1), so that features pooled otherwise are
 * refused rather than compared, and "standardize" = "S" when the images were
 * glad-features --standardize S (likewise), and "standardize_tail" = "tanh"
 * or "open" when they were glad-features --standardize-tail T (absent: clip),
 * or the list "clip,tanh" of several tails (each further tail's layers under
 * their own names L~T, glad_bank_layer_match).
 * Optionally (glad-bank --global) a
 * whole-image Gaussian per named layer (gauss.h) beside it: F64 tensors
 * "gauss.<layer>.mean" [C], "gauss.<layer>.prec" [C, C], "gauss.<layer>.scale"
 * [1], metadata "global" = "16" (their layers). Optionally (glad-bank
 * --radius F) each vector's radius, its distance to the nearest vector of
 * another training image (glad_bank_radius): F32 tensors "radius.<layer>"
 * [M], metadata "radius" = "F". Not here: reading streams (glad-bank). */
#ifndef GLAD_SCORE_BANK_H
#define GLAD_SCORE_BANK_H

#include <stdint.h>
#include "core/glad.h"
#include "score/gauss.h"

/* layers of a bank: a backbone's layers at five input sizes (glad-features
 * --also-size) under three standardisation tails (--standardize-tail) */
#define GLAD_BANK_MAX_LAYERS 48

/* How a query's distance d to its nearest bank vector b* is read
 * (glad_bank_query_norm): as it is; relative to the bank's density there,
 * d / (r(b*) + median r) (ratio); or less it, d - r(b*) (diff), where r(b)
 * is b's radius (glad_bank_radius). A normal patch of a kind the training
 * images vary much in (a tile's dark edge band) has a far nearest
 * neighbour, and so do the bank vectors around it: the radius takes that
 * spread off, so the map ranks positions across images and across kinds of
 * region alike (a local-density correction, as LOF's reachability). */
typedef enum { GLAD_BANK_NORM_NONE = 0, GLAD_BANK_NORM_RATIO = 1, GLAD_BANK_NORM_DIFF = 2 } glad_bank_norm;
extern const char *const glad_bank_norms[];   /* "none", "ratio", "diff", NULL */

typedef struct {
    int nlayers;
    char *layer[GLAD_BANK_MAX_LAYERS];   /* layer names as in feat.<input>.<name> */
    int C[GLAD_BANK_MAX_LAYERS];         /* channels (0 before the first add) */
    int64_t n[GLAD_BANK_MAX_LAYERS];     /* vectors */
    int64_t cap[GLAD_BANK_MAX_LAYERS];
    float *x[GLAD_BANK_MAX_LAYERS];      /* n x C, rows L2-normalised */
    int32_t *src[GLAD_BANK_MAX_LAYERS];  /* the image of each vector (glad_bank_add's count; NULL when loaded) */
    int32_t nimg[GLAD_BANK_MAX_LAYERS];  /* images added to the layer */
    float *radius[GLAD_BANK_MAX_LAYERS]; /* n radii (glad_bank_radius), NULL without */
    float rmed[GLAD_BANK_MAX_LAYERS];    /* the median radius */
    double radius_frac;                  /* the radii's reference fraction (0: no radii) */
    int pool;                            /* the features' --pool K (0 or 1: none) */
    double stdz;                         /* the images' --standardize S (0: none) */
    int stdz_tail;                       /* and its --standardize-tail (glad_std_tails_parse's code; 0: clip) */
    /* the whole-image Gaussians: their layers, the pooled vectors gathered
     * (gx: gn x gC, freed by glad_bank_fit_global) and the fitted models */
    int nglobal;
    char *glayer[GLAD_BANK_MAX_LAYERS];
    int gC[GLAD_BANK_MAX_LAYERS];
    int64_t gn[GLAD_BANK_MAX_LAYERS], gcap[GLAD_BANK_MAX_LAYERS];
    float *gx[GLAD_BANK_MAX_LAYERS];
    glad_gauss gauss[GLAD_BANK_MAX_LAYERS];
} glad_bank;

/* An empty bank of the named layers (1..GLAD_BANK_MAX_LAYERS names). */
int glad_bank_init(glad_bank *b, int nlayers, const char *const *layers);
void glad_bank_free(glad_bank *b);

/* Append the h*w positions of layer i's map f (C,h,w), each normalised.
 * The first add fixes C; a different C later is GLAD_ESHAPE. Non-finite
 * values are GLAD_ENAN. The bank of one layer is capped at max_bytes
 * (GLAD_ERANGE beyond it). */
int glad_bank_add(glad_bank *b, int i, const float *f, int C, int h, int w, size_t max_bytes);

/* Name the layers of the whole-image Gaussians (1..GLAD_BANK_MAX_LAYERS,
 * once, before the first glad_bank_add_global); they need not be bank layers. */
int glad_bank_init_global(glad_bank *b, int n, const char *const *layers);

/* Gather one image's pooled vector (glad_gauss_pool) of global layer i's map
 * f (C,h,w); the first fixes C (a different C later is GLAD_ESHAPE). */
int glad_bank_add_global(glad_bank *b, int i, const float *f, int C, int h, int w);

/* Fit every global layer's Gaussian on the vectors gathered (glad_gauss_fit:
 * two images at least) and free them. */
int glad_bank_fit_global(glad_bank *b);

/* *d = the mean over the global layers of the image's glad_gauss_score, f[i]
 * the (C[i],h[i],w[i]) map of global layer i (normal images score about 1). */
int glad_bank_score_global(const glad_bank *b, const float *const *f, const int *C, const int *h, const int *w, double *d);

/* Keep `keep` vectors of layer i drawn uniformly without replacement (seeded;
 * kept in their order): the cheap alternative to the coreset, whose cost is
 * keep x n. keep >= n is a no-op. */
int glad_bank_subsample(glad_bank *b, int i, int64_t keep, uint64_t seed);

/* Keep `keep` vectors of layer i chosen by greedy k-center (the coreset of
 * PatchCore): start at a seeded random vector, then repeatedly add the
 * vector farthest (cosine distance) from those kept, so that every dropped
 * vector is near a kept one. Distances are computed on a seeded Gaussian
 * projection to min(C, 64) dimensions, as PatchCore projects to speed the
 * selection. keep >= n is a no-op. */
int glad_bank_coreset(glad_bank *b, int i, int64_t keep, uint64_t seed);

/* radius[j] = min over the reference vectors k of another image than j's of
 * 1 - <x_j, x_k>, for every vector j of layer i: how far the nearest normal
 * patch of another image lies from a normal patch (leave-one-image-out, so a
 * vector is not its own neighbour). The reference set is a seeded uniform
 * draw of round(frac * n) of the layer's vectors (frac in (0,1]; 1: all),
 * since the exact radii cost n^2 C. Needs the vectors' images (a bank being
 * built, not a loaded one) and two images among the reference vectors.
 * Call it after any subsample or coreset (they keep radii in step, but the
 * radii were measured against the vectors then present). */
int glad_bank_radius(glad_bank *b, int i, double frac, uint64_t seed);

/* D[p] = min over the bank of layer i of 1 - <f[:,p], bank_j> for the
 * normalised columns p of f (C,h,w): GLAD's nearest-neighbour distance
 * against the bank. */
int glad_bank_query(float *D, const glad_bank *b, int i, const float *f, int C, int h, int w);

/* The same read by norm (glad_bank_norm): the radius of each position's
 * nearest bank vector (the first of the nearest, in bank order) applied.
 * A norm other than none on a bank without radii is GLAD_EINVAL. */
int glad_bank_query_norm(float *D, const glad_bank *b, int i, glad_bank_norm norm, const float *f, int C, int h, int w);

/* Index of the named layer, or -1. */
int glad_bank_find(const glad_bank *b, const char *layer);

/* 1 when a feature layer named name answers to the layer asked for. A name
 * is "L", "L@N" (glad-features --also-size N: the layer at another input
 * size), "L~T" or "L~T@N" (glad-features --standardize-tail with a further
 * tail T: the layer of the image standardised with that tail); want matches
 * the names with its L and with its ~T and @N where it has them: "12" matches
 * "12", "12@192", "12~tanh" and "12~tanh@192", not "120"; "12@192" matches
 * "12@192" and "12~tanh@192"; "12~tanh" matches "12~tanh" and "12~tanh@192". */
int glad_bank_layer_match(const char *want, const char *name);

/* The tail T of a layer name "L~T[@N]" (*tail its start, the length
 * returned); 0 for a name without one (the first tail's plain names). */
size_t glad_bank_layer_tail(const char *name, const char **tail);

/* Save through a temporary file renamed on success / load and validate
 * (every tensor finite, [M, C] with M >= 1; the metadata's layers present;
 * pool, when present, an odd 1..GLAD_POOL_MAX_K of imgproc/pool.h;
 * standardize, when present, a number in (0, GLAD_STANDARDIZE_MAX] of
 * imgproc/standardize.h). */
int glad_bank_save(const glad_bank *b, const char *path);
int glad_bank_load(glad_bank *b, const char *path);

#endif
