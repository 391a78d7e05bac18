/* demo.c - see demo.h. Normal images vary (position, orientation, lighting,
 * texture phase, sensor noise) but are learnable from ~60 examples; defects
 * are local and visible, with masks drawn from the same geometry. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "io/image.h"
#include "core/rng.h"
#include "synth/demo.h"

const char *const glad_demo_classes[GLAD_DEMO_NCLASSES + 1] = {"fabric", "pill", NULL};
const char *const glad_demo_defects[GLAD_DEMO_NDEFECTS + 1] = {"scratch", "hole", "stain", "missing", "contamination", NULL};

static float clamp255(double v) { return (float)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* normal image into f (3,S,S) in 0..255; obj (S,S) = 1 on the object (pill) */
static void draw_normal(float *f, uint8_t *obj, int cls, int S, glad_rng *r, double *geo)
{
    size_t hw = (size_t)S * S;
    double light = 0.9 + 0.2 * glad_rng_uniform(r), gx = (glad_rng_uniform(r) - 0.5) * 0.2, gy = (glad_rng_uniform(r) - 0.5) * 0.2;
    if (cls == 0) {
        /* fabric: a beige weave, threads in two directions, random phase */
        double p1 = 2 * M_PI * glad_rng_uniform(r), p2 = 2 * M_PI * glad_rng_uniform(r), period = S / 8.0;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double wv = 0.5 + 0.25 * sin(2 * M_PI * x / period + p1) * sin(2 * M_PI * y / period + p2) +
                            0.15 * sin(2 * M_PI * (x + y) / (period / 2) + p1);
                double l = light * (1 + gx * (x - S / 2.0) / S + gy * (y - S / 2.0) / S);
                double base[3] = {190, 160, 120};
                for (int c = 0; c < 3; c++) f[c * hw + (size_t)y * S + x] = clamp255(l * base[c] * (0.7 + 0.5 * wv));
                obj[(size_t)y * S + x] = 1;
            }
        geo[0] = S / 2.0; geo[1] = S / 2.0; geo[2] = 0; geo[3] = S * 0.45; geo[4] = S * 0.45;
    } else {
        /* pill: a white capsule with a red half on dark grey, jittered and turned */
        double cx = S / 2.0 + (glad_rng_uniform(r) - 0.5) * S * 0.1, cy = S / 2.0 + (glad_rng_uniform(r) - 0.5) * S * 0.1;
        double ang = (glad_rng_uniform(r) - 0.5) * 0.6, ax = S * 0.34, ay = S * 0.17, ca = cos(ang), sa = sin(ang);
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double dx = x - cx, dy = y - cy, u = ca * dx + sa * dy, v = -sa * dx + ca * dy;
                /* capsule: a rectangle with round ends */
                double uu = fabs(u) - (ax - ay), d = uu > 0 ? sqrt(uu * uu + v * v) : fabs(v);
                int in = d < ay;
                double l = light * (1 + gx * dx / S + gy * dy / S);
                double col[3] = {55, 58, 62};
                if (in) {
                    double shade = 0.8 + 0.2 * (1 - d / ay);
                    if (u < 0) { col[0] = 235 * shade; col[1] = 232 * shade; col[2] = 225 * shade; }
                    else { col[0] = 200 * shade; col[1] = 60 * shade; col[2] = 55 * shade; }
                }
                for (int c = 0; c < 3; c++) f[c * hw + (size_t)y * S + x] = clamp255(l * col[c]);
                obj[(size_t)y * S + x] = (uint8_t)in;
            }
        geo[0] = cx; geo[1] = cy; geo[2] = ang; geo[3] = ax; geo[4] = ay;
    }
    /* sensor noise */
    for (size_t i = 0; i < 3 * hw; i++) f[i] = clamp255(f[i] + 4 * glad_rng_normal(r));
}

/* a point on the object */
static void pick_point(const uint8_t *obj, int S, glad_rng *r, double *px, double *py)
{
    for (int k = 0; k < 200; k++) {
        int x = (int)(S * 0.15 + glad_rng_uniform(r) * S * 0.7), y = (int)(S * 0.15 + glad_rng_uniform(r) * S * 0.7);
        if (obj[(size_t)y * S + x]) { *px = x; *py = y; return; }
    }
    *px = S / 2.0; *py = S / 2.0;
}

static void draw_defect(float *f, uint8_t *m, const uint8_t *obj, int defect, int cls, int S, glad_rng *r, const double *geo)
{
    size_t hw = (size_t)S * S;
    double px, py;
    pick_point(obj, S, r, &px, &py);
    double sc = S / 64.0;
    switch (defect) {
    case 0: { /* scratch: a thin dark or bright line across the surface */
        double a = M_PI * glad_rng_uniform(r), len = (14 + 12 * glad_rng_uniform(r)) * sc, col = glad_rng_uniform(r) < 0.5 ? 25 : 250;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double dx = x - px, dy = y - py, t = dx * cos(a) + dy * sin(a), dist = fabs(-dx * sin(a) + dy * cos(a));
                if (fabs(t) < len / 2 && dist < 0.9 * sc + 0.3 && obj[(size_t)y * S + x]) {
                    m[(size_t)y * S + x] = 1;
                    for (int c = 0; c < 3; c++) f[c * hw + (size_t)y * S + x] = (float)col;
                }
            }
        break;
    }
    case 1: { /* hole: a dark disc with a lighter rim */
        double rad = (3 + 3 * glad_rng_uniform(r)) * sc;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double d = hypot(x - px, y - py);
                if (d < rad) {
                    m[(size_t)y * S + x] = 1;
                    for (int c = 0; c < 3; c++) f[c * hw + (size_t)y * S + x] = d < rad - 1 ? 12.0f : 120.0f;
                }
            }
        break;
    }
    case 2: { /* stain: a soft-edged coloured blob */
        double rad = (5 + 4 * glad_rng_uniform(r)) * sc, col[3] = {60 + 80 * glad_rng_uniform(r), 90 + 60 * glad_rng_uniform(r), 20};
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double d = hypot((x - px) * 1.3, y - py), a = exp(-(d * d) / (2 * rad * rad / 2.5)) * 0.9;
                if (a > 0.3 && obj[(size_t)y * S + x]) m[(size_t)y * S + x] = 1;
                if (obj[(size_t)y * S + x])
                    for (int c = 0; c < 3; c++) { float *v = &f[c * hw + (size_t)y * S + x]; *v = (float)((1 - a) * *v + a * col[c]); }
            }
        break;
    }
    case 3: { /* missing part: the pill loses a chunk (background shows); the fabric a patch of weave */
        double rad = (6 + 4 * glad_rng_uniform(r)) * sc;
        if (cls == 1) { /* at one end of the capsule */
            double side = glad_rng_uniform(r) < 0.5 ? -1 : 1;
            px = geo[0] + side * cos(geo[2]) * geo[3] * 0.8;
            py = geo[1] + side * sin(geo[2]) * geo[3] * 0.8;
        }
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                if (hypot(x - px, y - py) >= rad || !obj[(size_t)y * S + x]) continue;
                m[(size_t)y * S + x] = 1;
                double bg[3] = {55, 58, 62}, flat[3] = {150, 125, 95};
                for (int c = 0; c < 3; c++) f[c * hw + (size_t)y * S + x] = (float)(cls == 1 ? bg[c] : flat[c]) + (float)(3 * glad_rng_normal(r));
            }
        break;
    }
    default: { /* contamination: a cluster of small foreign specks */
        int ns = 5 + (int)glad_rng_below(r, 6);
        double col[3] = {30 + 200 * glad_rng_uniform(r), 30 + 200 * glad_rng_uniform(r), 200 * glad_rng_uniform(r)};
        for (int k = 0; k < ns; k++) {
            double qx = px + (glad_rng_uniform(r) - 0.5) * 14 * sc, qy = py + (glad_rng_uniform(r) - 0.5) * 14 * sc, rr = (1 + 1.5 * glad_rng_uniform(r)) * sc;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    if (hypot(x - qx, y - qy) < rr && obj[(size_t)y * S + x]) {
                        m[(size_t)y * S + x] = 1;
                        for (int c = 0; c < 3; c++) f[c * hw + (size_t)y * S + x] = (float)col[c];
                    }
        }
        break;
    }
    }
}

int glad_demo_image(uint8_t *img, uint8_t *mask, const char *cls, int defect, int index, const glad_demo_opts *o)
{
    int ci = -1;
    for (int i = 0; i < GLAD_DEMO_NCLASSES; i++) if (!strcmp(cls, glad_demo_classes[i])) ci = i;
    if (ci < 0) return GLAD_EINVAL;
    int S = o->size;
    size_t hw = (size_t)S * S;
    float *f = malloc(3 * hw * sizeof(float));
    uint8_t *obj = malloc(hw);
    if (!f || !obj) { free(f); free(obj); return GLAD_ENOMEM; }
    glad_rng r;
    glad_rng_seed(&r, o->seed, (uint64_t)ci * 1000 + (uint64_t)(defect + 1), (uint64_t)index);
    double geo[5];
    draw_normal(f, obj, ci, S, &r, geo);
    memset(mask, 0, hw);
    if (defect >= 0) draw_defect(f, mask, obj, defect, ci, S, &r, geo);
    for (size_t i = 0; i < 3 * hw; i++) img[i] = (uint8_t)nearbyintf(clamp255(f[i]));
    free(f);
    free(obj);
    return 0;
}

static int mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) return glad_fail(GLAD_EIO, "%s: cannot create: %s", buf, strerror(errno));
            *p = '/';
        }
    if (mkdir(buf, 0755) && errno != EEXIST) return glad_fail(GLAD_EIO, "%s: cannot create: %s", buf, strerror(errno));
    return 0;
}

static int write_png(const char *path, const uint8_t *data, int C, int S, int scale)
{
    glad_tensor t;
    GLAD_TRY(glad_tensor_alloc4(&t, GLAD_DT_U8, C, S, S, -1));
    for (size_t i = 0; i < (size_t)C * S * S; i++) ((uint8_t *)t.data)[i] = (uint8_t)(data[i] * scale);
    glad_error_clear();
    int rc = glad_image_write_png(path, &t);
    glad_tensor_free(&t);
    if (rc < 0 && !glad_error_detail()[0]) glad_fail(rc, "%s: cannot write: %s", path, glad_strerror(rc));
    return rc;
}

int glad_demo_make(const char *dir, const char *cls, const glad_demo_opts *o)
{
    int S = o->size, rc = 0;
    glad_error_clear();
    uint8_t *img = malloc(3 * (size_t)S * S), *mask = malloc((size_t)S * S);
    char p[4096];
    if (!img || !mask) { free(img); free(mask); return glad_fail(GLAD_ENOMEM, "out of memory"); }
    for (int d = -1; d < GLAD_DEMO_NDEFECTS && rc == 0; d++) {
        /* d = -1: normal images (train and test/good) */
        int groups = d < 0 ? 2 : 1;
        for (int g = 0; g < groups && rc == 0; g++) {
            const char *sub = d < 0 ? (g == 0 ? "train/good" : "test/good") : NULL;
            char folder[4096];
            if (sub) snprintf(folder, sizeof folder, "%.3000s/%s/%s", dir, cls, sub);
            else snprintf(folder, sizeof folder, "%.3000s/%s/test/%s", dir, cls, glad_demo_defects[d]);
            if ((rc = mkdirs(folder))) break;
            if (d >= 0) {
                snprintf(p, sizeof p, "%.3000s/%s/ground_truth/%s", dir, cls, glad_demo_defects[d]);
                if ((rc = mkdirs(p))) break;
            }
            int count = d < 0 ? (g == 0 ? o->train : o->test_good) : o->test_defect;
            for (int i = 0; i < count && rc == 0; i++) {
                /* train and test normals are different draws */
                int index = d < 0 && g == 1 ? 100000 + i : i;
                if ((rc = glad_demo_image(img, mask, cls, d, index, o))) { glad_fail(rc, "demo class '%s': %s", cls, glad_strerror(rc)); break; }
                snprintf(p, sizeof p, "%.3900s/%03d.png", folder, i);
                if ((rc = write_png(p, img, 3, S, 1))) break;
                if (d >= 0) {
                    snprintf(p, sizeof p, "%.3000s/%s/ground_truth/%s/%03d_mask.png", dir, cls, glad_demo_defects[d], i);
                    if ((rc = write_png(p, mask, 1, S, 255))) break;
                }
            }
        }
    }
    free(img);
    free(mask);
    if (rc < 0 && !glad_error_detail()[0]) glad_fail(rc, "%s/%s: %s", dir, cls, glad_strerror(rc));
    return rc;
}
