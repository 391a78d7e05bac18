/* gallery.h - the pictures glad-view makes of a scored stream: one panel
 * per record (input | reconstruction | anomaly map as a jet heat map over
 * the input | ground-truth mask in red over the input, with the id, label,
 * score and ads_step written above) as an RGB image tensor, and the HTML
 * index of the panels sorted by score after the worst false positives and
 * false negatives.
 * Not a file writer: the caller writes the panel tensor (glad_image_write_png)
 * and gives the FILE* of the index; it names the panel files too. */
#ifndef GLAD_GALLERY_H
#define GLAD_GALLERY_H

#include <stdio.h>
#include "core/glad.h"
#include "io/record.h"

/* Heat-map range: the whole stream's (panels comparable) or each record's own. */
typedef enum { GLAD_GALLERY_NORM_GLOBAL, GLAD_GALLERY_NORM_RECORD } glad_gallery_norm;
extern const char *const glad_gallery_norm_names[];   /* "global", "record", NULL */

/* Widen [*lo, *hi] by the finite values of the record's 'amap' (start from
 * lo = +inf, hi = -inf); a record without an amap tensor changes nothing.
 * 0 or GLAD_ENOMEM. */
int glad_gallery_range(const glad_record *r, double *lo, double *hi);

/* The panel of record r as a u8 tensor [3, cell + 26, 4 cell + 20] (out is
 * allocated; free with glad_tensor_free). Pictures are resampled (nearest)
 * to cell x cell; 'image' and 'recon' are images in the [-1,1] convention
 * (glad_tensor_image_to_f32), a missing or undrawable one is a grey cell.
 * The heat map maps [lo, hi] to the jet colours (NORM_RECORD: the
 * record's own range instead); mask pixels > 0.5 are red. */
int glad_gallery_panel(const glad_record *r, int cell, double lo, double hi, glad_gallery_norm norm, glad_tensor *out);

/* The index: one entry per panel. decision: the record's calibrated
 * 'decision' (0/1; -1 when it has none), shown in the caption when present.
 * per_image: a file name (relative to the index) linked at the top as the
 * per-image results (glad-auroc --per-image); NULL: no link. */
typedef struct { char *id, *file; double score; int label, has_score, decision; } glad_gallery_entry;
typedef struct { glad_gallery_entry *e; int n, cap; const char *per_image; } glad_gallery;

void glad_gallery_init(glad_gallery *g);
void glad_gallery_free(glad_gallery *g);
/* Record r's id, label (-1 when missing), score (NAN when missing) and
 * decision (-1 when missing) with
 * the panel's file name as the index links it (relative to the index). */
int glad_gallery_add(glad_gallery *g, const glad_record *r, const char *file);
/* Sort the entries by score (highest first) and write index.html to f:
 * the worst normal records (highest scores) and anomalous ones (lowest
 * scores), at most `worst` each, then all. 0 or GLAD_EIO. */
int glad_gallery_write_html(glad_gallery *g, int worst, FILE *f);

#endif
