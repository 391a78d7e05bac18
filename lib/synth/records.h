/* records.h - synthetic anomalies on stream records, what glad-synth does to
 * each record: 'anomalous' + 'synth_mask' for GLAD's anomaly-oriented
 * training, or a labelled synthetic test record (as_test); and the preview
 * grid. The synthesis itself is anomaly.h; the demo dataset is demo.h. */
#ifndef GLAD_SYNTH_RECORDS_H
#define GLAD_SYNTH_RECORDS_H

#include "io/record.h"
#include "synth/anomaly.h"

/* Foreground restriction: GLAD's per-class training table (auto) or a fixed
 * mode; names in this order in glad_synth_fg_names[] ("auto", "dark",
 * "bright", "none", NULL). */
typedef enum { GLAD_SYNTH_FG_AUTO, GLAD_SYNTH_FG_DARK, GLAD_SYNTH_FG_BRIGHT, GLAD_SYNTH_FG_NONE } glad_synth_fg;
extern const char *const glad_synth_fg_names[];

typedef struct {
    glad_synth_opts anomaly;   /* p, threshold, beta_max; its fg is set per record from fg */
    glad_synth_fg fg;
    uint64_t seed;             /* with the record id the only source of randomness */
    int as_test;               /* replace 'image', set 'mask', label, defect, split "test" */
    int keep_source;           /* as_test: keep the original as 'source_image' (for the preview) */
    const char *defect;        /* as_test: the anomalous records' defect name (NULL: "synthetic") */
} glad_synth_record_opts;

/* p 0.5, fg auto, seed 0, not as_test. */
void glad_synth_record_opts_default(glad_synth_record_opts *o);

/* Synthesise on r's 'image' ([C,H,W], any image dtype, finite): adds
 * 'anomalous' (same dtype) and 'synth_mask' (u8 [1,H,W]), or with as_test
 * replaces 'image' and sets 'mask', label 1 and defect o->defect ("synthetic" when NULL) when an
 * anomaly was made (label 0, defect "good", an empty mask when not). Returns
 * 1 when an anomaly was made, 0 when not, < 0 with the detail set ("'image'
 * missing", "synthesis failed: ..."); the record id is the caller's to add. */
int glad_synth_record(glad_record *r, const glad_synth_record_opts *o, const glad_textures *tex);

/* PNG of one row [original | anomalous | mask] per record, RGB on a grey
 * background with 2-pixel gaps (as_test: 'source_image' | 'image' | 'mask').
 * GLAD_EINVAL when no record has an image. */
int glad_synth_preview(const char *path, const glad_record *recs, int n, int as_test);

#endif
