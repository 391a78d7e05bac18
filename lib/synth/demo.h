/* demo.h - the built-in demo dataset: procedurally generated images in the
 * MVTec AD layout with realistic defects and pixel masks, so the toolkit can
 * be run and tested with no download. Classes: "fabric" (a woven texture) and
 * "pill" (an object on a background); defects: scratch, hole, stain,
 * missing, contamination. */
#ifndef GLAD_DEMO_H
#define GLAD_DEMO_H

#include "core/glad.h"

typedef struct {
    int size;          /* image side (default 64) */
    int train;         /* normal training images per class (60) */
    int test_good;     /* normal test images per class (20) */
    int test_defect;   /* test images per class and defect type (4) */
    uint64_t seed;
} glad_demo_opts;

#define GLAD_DEMO_NCLASSES 2
#define GLAD_DEMO_NDEFECTS 5
/* names, NULL-terminated (for cli_parse_choice) */
extern const char *const glad_demo_classes[GLAD_DEMO_NCLASSES + 1];
extern const char *const glad_demo_defects[GLAD_DEMO_NDEFECTS + 1];

/* Writes <dir>/<class>/{train/good, test/<defect>, ground_truth/<defect>}
 * (PNG files 000.png, ..., masks 000_mask.png). The detail names the path
 * that could not be created or written and why. */
int glad_demo_make(const char *dir, const char *cls, const glad_demo_opts *o);
/* One image (3,S,S) u8 and its mask (S,S) 0/1 for (class, defect or -1 for normal, index). */
int glad_demo_image(uint8_t *img, uint8_t *mask, const char *cls, int defect, int index, const glad_demo_opts *o);

#endif
