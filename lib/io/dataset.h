/* dataset.h - list the images of a dataset in its published layout (MVTec AD,
 * MPDD, VisA, BTAD, MTD, generic folders or paths) as items with their
 * class, split, label, defect type, mask path and record id. Sorted and
 * deterministic. Does not decode images (image.h, encode.h) or write streams.
 * Every failure sets the detail (glad_error_detail) naming the path or line. */
#ifndef GLAD_DATASET_H
#define GLAD_DATASET_H

#include "core/glad.h"

typedef struct {
    char *path;     /* image file */
    char *mask;     /* mask file or NULL */
    char *cls, *split, *defect, *id;
    int label;      /* 0 normal, 1 anomalous */
} glad_item;

typedef struct {
    glad_item *v;
    int n, cap;
} glad_items;

void glad_items_free(glad_items *it);
/* Fisher-Yates shuffle with draws from core/rng (seed, a fixed stream): the
 * same seed gives the same order on every machine. */
void glad_items_shuffle(glad_items *it, uint64_t seed);

/* Layouts, in the order of glad_dataset_formats[] (NULL-terminated names
 * "mvtec", "mpdd", "visa", "btad", "mtd", "generic"), and the split names
 * glad_dataset_splits[] ("train", "test", "all"). */
typedef enum {
    GLAD_DATASET_MVTEC, GLAD_DATASET_MPDD, GLAD_DATASET_VISA, GLAD_DATASET_BTAD, GLAD_DATASET_MTD, GLAD_DATASET_GENERIC
} glad_dataset_format;
extern const char *const glad_dataset_formats[];
extern const char *const glad_dataset_splits[];

typedef struct {
    glad_dataset_format format;
    const char *root;          /* every layout but generic */
    const char *cls;           /* NULL: every class found (generic: the class name, "generic") */
    const char *split;         /* "train", "test" or "all" */
    const char *split_file;    /* MTD: the train/test list, or NULL (every image is test) */
    const char *normal_dir, *anomalous_dir, *masks_dir;   /* generic; each may be NULL */
} glad_dataset_spec;
/* Append the items of s to it (one of the functions below by format). */
int glad_dataset_list(glad_items *it, const glad_dataset_spec *s);

/* Masks. An anomalous image needs its mask (an error naming the image
 * otherwise), looked up as <stem>_mask.<ext> (MVTec, MPDD) and as <stem>.<ext>
 * (BTAD, generic), the layout's own naming first, ext one of png, bmp, jpg,
 * tif. Broken symbolic links among the images are errors, not skipped. */

/* split: "train", "test" or "all"; cls NULL = every class found. */
int glad_dataset_mvtec(glad_items *it, const char *root, const char *cls, const char *split);  /* also MPDD */
int glad_dataset_visa(glad_items *it, const char *root, const char *cls, const char *split);
int glad_dataset_btad(glad_items *it, const char *root, const char *cls, const char *split);
/* MTD: MT_<type>/Imgs/<name>.jpg with <name>.png masks; train/test from the
 * list file (lines "train|test <relative path>", '#' comments). An image that
 * is not in the list is an error unless split is "all" (it is then "test"). */
int glad_dataset_mtd(glad_items *it, const char *root, const char *list_file, const char *cls, const char *split);
/* Generic: normal_dir (label 0) and anomalous_dir (label 1), each may be NULL.
 * With masks_dir (which must exist) every anomalous image needs its mask
 * there; without it anomalous images get no mask. */
int glad_dataset_generic(glad_items *it, const char *normal_dir, const char *anomalous_dir, const char *masks_dir,
                         const char *cls, const char *split);
/* One explicit image path, label 0 ("good") or 1 ("anomalous"); the id is the
 * path without its extension. */
int glad_dataset_add_path(glad_items *it, const char *path, const char *cls, const char *split, int label);

/* Is this file name an image we can read (png, jpg, jpeg, bmp, tif, tiff)? */
int glad_dataset_is_image(const char *name);

#endif
