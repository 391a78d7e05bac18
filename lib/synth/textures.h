/* textures.h - anomaly source images: a folder of texture photographs (e.g.
 * DTD's images/<category>/NAME.jpg), or the built-in procedural textures (noise,
 * stripes, checker, blobs, scratches) so synthesis needs no download. */
#ifndef GLAD_TEXTURES_H
#define GLAD_TEXTURES_H

#include "core/rng.h"

typedef struct glad_textures glad_textures;

/* Lists the images under dir (sub-directories two levels deep), sorted.
 * GLAD_EIO when dir cannot be read ("DIR: No such file or directory", "DIR:
 * Not a directory") or an image name is a broken link, GLAD_ENOTFOUND when
 * there is no image; the detail says which. */
int glad_textures_open(glad_textures **t, const char *dir);
void glad_textures_close(glad_textures *t);
int glad_textures_count(const glad_textures *t);
/* A random texture as (C,H,W) values in [0,255]: from the folder when t is
 * not NULL, else procedural. */
int glad_texture_sample(float *out, int C, int H, int W, const glad_textures *t, glad_rng *r);
/* One procedural texture of kind k (0 noise, 1 stripes, 2 checker, 3 blobs, 4 scratches);
 * 0, or GLAD_ENOMEM (blobs need a noise buffer). */
int glad_texture_procedural(float *out, int C, int H, int W, int kind, glad_rng *r);

#endif
