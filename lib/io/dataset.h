/* dataset.h - list the images of a dataset in its published layout (MVTec AD,
 * MPDD, VisA, BTAD, MTD, generic folders or paths) as items with their
 * class, split, label, defect type, mask path and record id. Sorted and
 * deterministic. Does not decode images (image.h) or write streams. */
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
    char err[1024];   /* what went wrong (a path, a line) when a call fails */
} glad_items;

void glad_items_free(glad_items *it);

/* split: "train", "test" or "all"; cls NULL = every class found. */
int glad_dataset_mvtec(glad_items *it, const char *root, const char *cls, const char *split);  /* also MPDD */
int glad_dataset_visa(glad_items *it, const char *root, const char *cls, const char *split);
int glad_dataset_btad(glad_items *it, const char *root, const char *cls, const char *split);
/* MTD: MT_<type>/Imgs/<name>.jpg with <name>.png masks; train/test from the
 * list file (lines "train|test <relative path>", '#' comments). An image that
 * is not in the list is an error unless split is "all" (it is then "test"). */
int glad_dataset_mtd(glad_items *it, const char *root, const char *list_file, const char *cls, const char *split);
/* Generic: normal_dir (label 0), anomalous_dir (label 1, may be NULL), masks_dir
 * with same-stem files (optional). */
int glad_dataset_generic(glad_items *it, const char *normal_dir, const char *anomalous_dir, const char *masks_dir,
                         const char *cls, const char *split);
/* Explicit image paths (label 0 unless in a folder named like a defect). */
int glad_dataset_add_path(glad_items *it, const char *path, const char *cls, const char *split, int label);

/* Is this file name an image we can read (png, jpg, jpeg, bmp, tif, tiff)? */
int glad_dataset_is_image(const char *name);

#endif
