/* tile.h - full-resolution tiling: an HxW image cut into N x N tiles with
 * an overlap of P pixels (the geometry), tensors cropped to a tile, per-tile
 * maps blended back over the overlaps, and the record-level split and merge
 * that glad-tile runs on a stream. Not a resampler (resize.h): tiles keep
 * the image's native resolution and aspect ratio. Not the scoring either:
 * the merged image score uses lib/score's reducers (score/pipeline.h).
 *
 * Geometry. Along an axis of length L >= N the tiles start every S = N - P
 * pixels, n = 1 + ceil((L - N) / S) of them, tile i at min(i S, L - N): the
 * last tile is aligned to the border, so every pixel is covered, no tile is
 * padded, and the last pair overlaps by P or more. An axis shorter than N
 * has one tile at 0, reflect-padded to N (numpy mode 'reflect', no edge
 * repeat, mirrored again as often as needed: period 2(L - 1); L = 1 repeats
 * the one pixel). The padding is never merged back: the merge crops to L.
 * Tiles are numbered row-major: k = iy nx + ix.
 *
 * Blending. A pixel covered by several tiles gets the weighted mean
 *     out = sum_k w_k v_k / sum_k w_k,   w_k(y, x) = r(y - y_k) r(x - x_k),
 * with the separable trapezoid ramp (P > 0)
 *     r(t) = min(1, (t + 1/2) / P, (N - t - 1/2) / P),   t in [0, N)
 * and r = 1 when P = 0. Why a ramp rather than a plain average: per-tile
 * maps are least reliable at a tile's border (Gaussian smoothing reflects
 * there, features lose context), and an average switches the set of tiles
 * abruptly at each tile border, leaving seams. Across an overlap of exactly
 * P the falling weight of one tile and the rising weight of the next sum to
 * (N - S) / P = 1: a linear cross-fade, continuous at both ends. r > 0
 * everywhere, so the image border (seen by one tile only) keeps that tile's
 * value. Sums are in double: a pixel seen by one tile, or by tiles that
 * agree, gets its value back exactly in an f32 (or narrower) tensor. */
#ifndef GLAD_TILE_H
#define GLAD_TILE_H

#include "core/tensor.h"
#include "io/record.h"
#include "score/pipeline.h"

/* Largest tile side and image side (the decoders' bound). */
#define GLAD_TILE_MAX_SIDE 32768

typedef struct {
    int H, W;          /* image size */
    int size, overlap; /* N, P */
    int ny, nx;        /* tiles per column, per row */
} glad_tile_grid;

/* GLAD_EINVAL (with the detail) unless 1 <= N <= 32768, 0 <= P < N and
 * 1 <= H, W <= 32768. */
int glad_tile_grid_init(glad_tile_grid *g, int H, int W, int size, int overlap);
/* Start of tile i of n along an axis of length len (see Geometry). */
int glad_tile_axis_offset(int len, int size, int overlap, int i);
int glad_tile_count(const glad_tile_grid *g);
/* Top-left corner of tile k (0 <= k < count). */
void glad_tile_origin(const glad_tile_grid *g, int k, int *y, int *x);
/* Blend weight r(t) along one axis (see Blending). */
double glad_tile_ramp(int size, int overlap, int t);

/* Tile k of src (ndim >= 2, any dtype, trailing dims [H, W] of the grid)
 * into dst: the same leading dims and dtype, trailing [N, N], reflect-padded
 * where the image is smaller than N. */
int glad_tile_crop(glad_tensor *dst, const glad_tensor *src, const glad_tile_grid *g, int k);

/* Reassembling one tensor from its tiles: init from tile 0 (its dtype and
 * leading dims are the image's), add every tile, finish. blend = 0 copies
 * the tile's pixels (for image and mask, which every covering tile holds
 * identically: the last tile added wins; bit for bit); blend = 1 takes the
 * weighted mean above in double and writes the tile dtype back (integers
 * rounded and saturated). */
typedef struct {
    glad_tile_grid g;
    int blend;
    glad_dtype dtype;
    int ndim;
    int64_t shape[GLAD_MAX_DIMS];   /* of the merged tensor */
    size_t planes;                  /* product of the leading dims */
    glad_tensor out;                /* copy mode: the result being filled */
    double *sum, *wsum;             /* blend mode: planes x H x W, H x W */
    unsigned char *seen;            /* H x W: covered by some tile */
} glad_tile_acc;

/* GLAD_ESHAPE (detail) when tile is not [..., N, N]. */
int glad_tile_acc_init(glad_tile_acc *a, const glad_tile_grid *g, const glad_tensor *tile, int blend);
/* GLAD_ESHAPE / GLAD_EDTYPE (detail) when tile differs from tile 0's shape or dtype. */
int glad_tile_acc_add(glad_tile_acc *a, const glad_tensor *tile, int k);
/* The merged tensor [..., H, W] into *out; GLAD_EINVAL when a pixel was never covered. */
int glad_tile_acc_finish(glad_tile_acc *a, glad_tensor *out);
void glad_tile_acc_free(glad_tile_acc *a);

/* ---- records (what glad-tile does) ----
 * Split: one record per tile, its fields those of the image's record in
 * their order, with
 *   id            "PARENT@Y,X" (Y, X the tile's top-left pixel)
 *   every tensor whose trailing dims are the image's [H, W] (image, mask,
 *                 and e.g. anomalous, synth_mask) cropped to the tile; any
 *                 other tensor is an error (tile before glad-features)
 * and appended: tile_of (parent id), tile_y, tile_x, tile_index (k),
 * tile_count, tile_size (N), tile_overlap (P), tile_full_h, tile_full_w.
 * Tiles of an image with tile_full_h or tile_full_w below N are padded
 * (see Geometry). Every other field (class, split, label, defect, source,
 * ...) is the parent's, unchanged. */
extern const char *const glad_tile_keys[];   /* the appended keys, NULL-terminated */

typedef struct {
    glad_record base;       /* the parent with its image-sized tensors moved out */
    char *parent_id;
    glad_tile_grid g;
    int k, n;
    int ntens;
    int *tens_field;        /* field index in base of each moved tensor */
    glad_tensor *tens;
} glad_tile_splitter;

/* Takes the parent record r (left empty). On an error r is left as it was
 * and the detail names the field: "'image' missing", "'feat.image.1' is
 * [8,4,4], not image-sized ...", "'tile_of' present: already a tile". */
int glad_tile_split_begin(glad_tile_splitter *s, glad_record *r, int size, int overlap);
/* The next tile into *tile (freed first): 1, or 0 after the last. */
int glad_tile_split_next(glad_tile_splitter *s, glad_record *tile);
void glad_tile_split_free(glad_tile_splitter *s);

/* Merge: consecutive tiles of one image, in the order split wrote them,
 * become one record:
 *   id       the tile_of value; the tile_* keys removed
 *   image, mask   reassembled by copy (bit for bit what split cut)
 *   every other tensor [..., N, N] (recon, amap, amap_pixel, ...) blended
 *   tensors of other shapes (feat.*, recon_samples) dropped; but image,
 *   mask, recon and amap must be tile-sized (glad-score without --crop
 *   or --size)
 *   score    removed, and when amap is present the image score of the
 *            merged amap by the reducer (glad_score_reduce)
 *   every other field kept when all tiles agree on it and dropped when
 *   they differ (per-tile results such as ads_step or decision).
 * A missing, duplicated or out-of-order tile, a tile of another image before
 * this one is complete, or tiles that disagree on the geometry or on a
 * tensor's shape are GLAD_EFORMAT with the detail naming the field. */
typedef struct {
    glad_score_reducer reducer;
    size_t k;
    int active;              /* an image is being merged */
    glad_record first;       /* tile 0 (its tensors moved into accs) */
    char *parent_id;
    glad_tile_grid g;
    int next, count;
    int nacc;
    char **acc_key;
    glad_tile_acc *acc;
    unsigned char *differs;  /* per field of first: some tile disagreed */
} glad_tile_merger;

void glad_tile_merge_init(glad_tile_merger *m, glad_score_reducer reducer, size_t k);
/* Adds the tile r (consumed: left empty). Returns 1 when it completed an
 * image, whose record is then in *out (freed first), 0 when more tiles are
 * needed, < 0 on an error (the merger is then reset). */
int glad_tile_merge_add(glad_tile_merger *m, glad_record *r, glad_record *out);
/* At the end of the stream: GLAD_EFORMAT naming the image when its tiles
 * stopped short. */
int glad_tile_merge_end(glad_tile_merger *m);
void glad_tile_merge_free(glad_tile_merger *m);

#endif
