/* anomaly.h - GLAD/DRAEM synthetic anomalies (reference-algorithms.md §1.4):
 * a Perlin mask (scales 2^{0..5} per axis, rotated -90..90 degrees, > 0.3),
 * restricted to the foreground, filled from an augmented texture or the
 * augmented image cut into 8x8 shuffled tiles, blended with beta ~ U[0,0.8):
 *   I_a = I (1 - M) + (1 - beta) S M + beta I M.
 * Randomness comes from (seed, record id hash) only. The options also pick
 * CutPaste's family (cutpaste.c) or drawn defects (defects.c) instead. */
#ifndef GLAD_ANOMALY_H
#define GLAD_ANOMALY_H

#include "imgproc/foreground.h"
#include "synth/textures.h"

/* the anomaly family: GLAD/DRAEM's (this file), CutPaste's patch or scar
 * (cutpaste.c), a drawn crack, hole, stain, uneven area or chipped edge (defects.c) */
typedef enum {
    GLAD_SYNTH_DRAEM = 0, GLAD_SYNTH_CUTPASTE = 1, GLAD_SYNTH_SCAR = 2, GLAD_SYNTH_CUTPASTE_MIX = 3,
    GLAD_SYNTH_CRACK = 4, GLAD_SYNTH_HOLE = 5, GLAD_SYNTH_STAIN = 6, GLAD_SYNTH_DEFECT_MIX = 7,
    GLAD_SYNTH_UNEVEN = 8, GLAD_SYNTH_EDGE = 9
} glad_synth_family;
/* "draem", "cutpaste", "scar", "cutpaste-mix" (patch or scar, 1/2 each, as
 * CutPaste's 3-way training draws them), "crack", "hole", "stain",
 * "defect-mix" (crack, hole or stain, 1/3 each), "uneven", "edge", NULL
 * (cli_parse_choice) */
extern const char *const glad_synth_family_names[];

typedef struct {
    double p;             /* probability of making an anomaly (0.5) */
    glad_synth_family family;   /* GLAD_SYNTH_DRAEM */
    glad_fg_mode fg;      /* foreground restriction */
    double threshold;     /* Perlin threshold (0.3) */
    double beta_max;      /* 0.8 */
} glad_synth_opts;

void glad_synth_opts_default(glad_synth_opts *o);

/* img and out are (C,H,W) in [-1,1]; mask (H,W) 0/1. Returns 1 when an
 * anomaly was made (non-empty mask), 0 when the image is left as is, <0 on error. */
int glad_synth_anomaly(float *out, uint8_t *mask, const float *img, int C, int H, int W, const glad_synth_opts *o,
                       uint64_t seed, uint64_t id_hash, const glad_textures *tex);

/* The other families, called by glad_synth_anomaly once it has set out = img,
 * cleared the mask, drawn p from r (seeded with the family's salt) and made the
 * foreground mask fg of o->fg; they draw on from r, return as it does.
 * CutPaste's (o->family CUTPASTE, SCAR or CUTPASTE_MIX; cutpaste.c; threshold
 * and beta_max unused, no textures), drawn defects (CRACK, HOLE, STAIN,
 * DEFECT_MIX, UNEVEN or EDGE; defects.c). */
int glad_synth_cutpaste(float *out, uint8_t *mask, const float *img, int C, int H, int W, const glad_synth_opts *o,
                        const uint8_t *fg, glad_rng *r);
int glad_synth_defect(float *out, uint8_t *mask, const float *img, int C, int H, int W, const glad_synth_opts *o,
                      const uint8_t *fg, glad_rng *r);

/* a random pixel index with fg[i] = 1, uniform over them (any pixel when fg is empty) */
size_t glad_synth_pick_fg(const uint8_t *fg, size_t hw, glad_rng *r);

#endif
