/* textures.c - see textures.h. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "io/dataset.h"
#include "io/image.h"
#include "synth/perlin.h"
#include "synth/textures.h"
#include "imgproc/resize.h"

struct glad_textures { char **path; int n, cap; };

static int add(glad_textures *t, const char *p)
{
    char **np = glad_grow(t->path, &t->cap, t->n, sizeof *np, 64);
    if (!np) return GLAD_ENOMEM;
    t->path = np;
    return (t->path[t->n] = strdup(p)) ? (t->n++, 0) : GLAD_ENOMEM;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Image files under dir, sub-directories two levels deep; a broken symbolic
 * link with an image name is an error, not skipped. */
static int walk(glad_textures *t, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d) return depth == 0 ? glad_fail(GLAD_EIO, "%s: %s", dir, strerror(errno)) : 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        struct stat st;
        if ((size_t)snprintf(p, sizeof p, "%.3800s/%.255s", dir, e->d_name) >= sizeof p) continue;
        if (stat(p, &st) != 0) {
            if (glad_dataset_is_image(e->d_name)) rc = glad_fail(GLAD_EIO, "%s: %s", p, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if (depth < 2) rc = walk(t, p, depth + 1);
        } else if (glad_dataset_is_image(e->d_name)) rc = add(t, p) ? glad_fail(GLAD_ENOMEM, "out of memory") : 0;
    }
    closedir(d);
    return rc;
}

int glad_textures_open(glad_textures **out, const char *dir)
{
    glad_textures *t = calloc(1, sizeof *t);
    if (!t) return glad_fail(GLAD_ENOMEM, "out of memory");
    int rc = walk(t, dir, 0);
    if (rc == 0 && t->n == 0) rc = glad_fail(GLAD_ENOTFOUND, "%s: no images found (png, jpg, bmp, tif, two levels deep)", dir);
    if (rc) { glad_textures_close(t); return rc; }
    qsort(t->path, (size_t)t->n, sizeof(char *), cmp);   /* deterministic order */
    *out = t;
    return 0;
}

void glad_textures_close(glad_textures *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++) free(t->path[i]);
    free(t->path);
    free(t);
}

int glad_textures_count(const glad_textures *t) { return t ? t->n : 0; }

int glad_texture_procedural(float *out, int C, int H, int W, int kind, glad_rng *r)
{
    size_t hw = (size_t)H * W;
    float col[2][3];
    for (int k = 0; k < 2; k++) for (int c = 0; c < 3; c++) col[k][c] = (float)(255 * glad_rng_uniform(r));
    double ang = M_PI * glad_rng_uniform(r), freq = 0.1 + 0.6 * glad_rng_uniform(r), ca = cos(ang), sa = sin(ang);
    int cell = 2 + (int)glad_rng_below(r, 10);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double v;
                switch (kind) {
                case 0: v = glad_rng_uniform(r); break;
                case 1: v = 0.5 + 0.5 * sin((x * ca + y * sa) * freq * 2); break;
                case 2: v = ((x / cell + y / cell) & 1); break;
                default: v = 0; break;
                }
                out[(size_t)c * hw + (size_t)y * W + x] = (float)(col[0][c] * (1 - v) + col[1][c] * v);
            }
    if (kind == 3) {   /* blobs: thresholded low-frequency Perlin noise */
        double *pn = malloc(hw * sizeof(double));
        int res = 4, rc;
        while (res > 1 && (H % res || W % res)) res /= 2;
        if (!pn) return glad_fail(GLAD_ENOMEM, "out of memory");
        if ((rc = glad_perlin(pn, H, W, res, res, r)) == 0)
            for (int c = 0; c < C; c++)
                for (size_t i = 0; i < hw; i++) out[(size_t)c * hw + i] = pn[i] > 0 ? col[1][c] : col[0][c];
        free(pn);
        if (rc) return rc;
    } else if (kind == 4) {   /* scratches: bright thin lines on a darker base */
        for (size_t i = 0; i < hw * C; i++) out[i] = out[i] * 0.3f;
        int nl = 3 + (int)glad_rng_below(r, 6);
        for (int l = 0; l < nl; l++) {
            double x0 = W * glad_rng_uniform(r), y0 = H * glad_rng_uniform(r), a = 2 * M_PI * glad_rng_uniform(r);
            for (int s = 0; s < 2 * (H + W); s++) {
                int x = (int)(x0 + cos(a) * s * 0.5), y = (int)(y0 + sin(a) * s * 0.5);
                if (x < 0 || y < 0 || x >= W || y >= H) break;
                for (int c = 0; c < C; c++) out[(size_t)c * hw + (size_t)y * W + x] = col[1][c];
            }
        }
    }
    return 0;
}

int glad_texture_sample(float *out, int C, int H, int W, const glad_textures *t, glad_rng *r)
{
    if (!t || t->n == 0) {
        return glad_texture_procedural(out, C, H, W, (int)glad_rng_below(r, 5), r);
    }
    const char *p = t->path[glad_rng_below(r, (uint64_t)t->n)];
    glad_tensor img = {0}, a = {0}, b = {0};
    GLAD_TRY(glad_image_read(p, &img));
    int rc = glad_image_channels(&a, &img, C);
    if (rc == 0) rc = glad_image_resize(&b, &a, H, W, 0);
    if (rc == 0) rc = glad_tensor_to_f32(&b, out);
    if (rc == 0 && b.dtype != GLAD_DT_U8) {   /* 16-bit / float files to the 0..255 scale */
        size_t n = (size_t)C * H * W;
        float *f = malloc(n * sizeof(float));
        if (!f) rc = glad_fail(GLAD_ENOMEM, "out of memory");
        else if ((rc = glad_tensor_image_to_f32(&b, f)) == 0) for (size_t i = 0; i < n; i++) out[i] = (f[i] + 1) * 127.5f;
        free(f);
    }
    glad_tensor_free(&img); glad_tensor_free(&a); glad_tensor_free(&b);
    return rc;
}
