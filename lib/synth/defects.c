/* defects.c - drawn structural defects, a third synthetic family beside
 * GLAD/DRAEM's (anomaly.c) and CutPaste's (cutpaste.c): small, low-contrast
 * changes of the image's own intensity in the shapes surface-inspection
 * datasets name (MTD's blowhole, crack and uneven; Huang et al., "Surface
 * defect saliency of magnetic tile", 2018), for a validation whose pixel
 * ranking is as hard as such defects make it. Sizes in pixels at 256
 * (scaled with min(H, W) / 256), intensities as v = x + 1 on [0, 2]:
 *   crack: a polyline of U{3..8} segments of U[6, 20] px, heading turned by
 *          U[-0.7, 0.7] rad per segment, width U[1, 3] px, v *= f,
 *          f ~ U[0.3, 0.7] (darker);
 *   hole:  an ellipse, semi-axes U[2, 8] px, any angle, v *= f as a crack's;
 *   stain: an ellipse, semi-axes U[12, 40] px, v *= 1 + d w(r), w(r) =
 *          (1 + cos(pi r)) / 2 at normalised radius r < 1, |d| ~ U[0.15,
 *          0.35], either sign; the mask is w >= 1/2 (r <= 1/2), the faint rim
 *          outside it is changed but stays a normal pixel;
 *   uneven: a stain 16 times the area, semi-axes U[48, 160] px (up to 5/8 of
 *          the short side): a broad, low-contrast change of a large part of
 *          the tile, the kind of anomaly an image-level baseline would hide
 *          (MTD's uneven tiles are named, not looked at);
 *   edge:  a chip out of the object's edge (MTD's break and fray tiles, named,
 *          not looked at): centred on a random boundary pixel of the
 *          foreground (on the image's border or next to a background pixel),
 *          an ellipse with semi-axes U[12, 48] px along the edge and U[4, 16]
 *          px across it (the edge's direction from the background pixels
 *          around the centre), its outline ragged -- r < 1 + sum_k a_k
 *          sin(k phi + p_k), k = 3, 5, 7, a_k ~ U[0, 0.12] -- and v *= f as a
 *          crack's; the half inside the object is the chip;
 * (defect-mix: crack, hole or stain, 1/3 each; uneven and edge only by name). Each starts at a
 * random foreground pixel (edge: a boundary one) and changes foreground pixels only. Randomness comes from
 * (seed, record id hash) only. Not a copy of any dataset's defects: no test
 * image was looked at to draw them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "synth/anomaly.h"

static double unif(glad_rng *r, double a, double b) { return a + (b - a) * glad_rng_uniform(r); }

/* squared distance from (px, py) to the segment (ax, ay)-(bx, by) */
static double seg_d2(double px, double py, double ax, double ay, double bx, double by)
{
    double dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy, t = 0;
    if (l2 > 0) t = ((px - ax) * dx + (py - ay) * dy) / l2;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = px - ax - t * dx, ey = py - ay - t * dy;
    return ex * ex + ey * ey;
}

/* a random boundary pixel of the foreground, uniform over them: a foreground pixel on the
 * image's border or with a 4-neighbour outside it (pixel 0 when there is none: an empty
 * foreground, where no defect is drawn anyway) */
static int is_boundary(const uint8_t *fg, int H, int W, int x, int y)
{
    if (!fg[(size_t)y * W + x]) return 0;
    if (x == 0 || y == 0 || x == W - 1 || y == H - 1) return 1;
    return !fg[(size_t)y * W + x - 1] || !fg[(size_t)y * W + x + 1] || !fg[(size_t)(y - 1) * W + x] || !fg[(size_t)(y + 1) * W + x];
}
static size_t pick_boundary(const uint8_t *fg, int H, int W, glad_rng *r)
{
    size_t nb = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) nb += is_boundary(fg, H, W, x, y);
    size_t pick = (size_t)glad_rng_below(r, nb ? nb : 1);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if (is_boundary(fg, H, W, x, y) && pick-- == 0) return (size_t)y * W + x;
    return 0;
}

int glad_synth_defect(float *out, uint8_t *mask, const float *img, int C, int H, int W, const glad_synth_opts *o,
                      const uint8_t *fg, glad_rng *r)
{
    size_t hw = (size_t)H * W, n = hw * C;
    float *gain = malloc(hw * sizeof(float));   /* the factor on v per pixel (1: unchanged) */
    if (!gain) return GLAD_ENOMEM;
    for (size_t i = 0; i < hw; i++) gain[i] = 1;
    glad_synth_family kind = o->family;
    if (kind == GLAD_SYNTH_DEFECT_MIX) kind = (glad_synth_family)(GLAD_SYNTH_CRACK + (int)glad_rng_below(r, 3));
    double s = (H < W ? H : W) / 256.0;
    size_t at = glad_synth_pick_fg(fg, hw, r);
    double cx = (double)(at % W) + 0.5, cy = (double)(at / W) + 0.5;
    if (kind == GLAD_SYNTH_CRACK) {
        /* the polyline's vertices, then every pixel within half the width of a segment */
        double px[9], py[9], th = unif(r, 0, 2 * M_PI);
        int segs = 3 + (int)glad_rng_below(r, 6);
        px[0] = cx; py[0] = cy;
        for (int k = 1; k <= segs; k++) {
            double len = unif(r, 6, 20) * s;
            th += unif(r, -0.7, 0.7);
            px[k] = px[k - 1] + len * cos(th); py[k] = py[k - 1] + len * sin(th);
        }
        /* at least ~one pixel wide, so a crack at 128 px stays connected */
        double hw2 = 0.5 * unif(r, 1, 3) * s, f = unif(r, 0.3, 0.7);
        if (hw2 < 0.71) hw2 = 0.71;
        for (int k = 0; k < segs; k++) {
            int x0 = (int)floor(fmin(px[k], px[k + 1]) - hw2), x1 = (int)ceil(fmax(px[k], px[k + 1]) + hw2);
            int y0 = (int)floor(fmin(py[k], py[k + 1]) - hw2), y1 = (int)ceil(fmax(py[k], py[k + 1]) + hw2);
            for (int y = y0 < 0 ? 0 : y0; y < (y1 > H ? H : y1); y++)
                for (int x = x0 < 0 ? 0 : x0; x < (x1 > W ? W : x1); x++)
                    if (seg_d2(x + 0.5, y + 0.5, px[k], py[k], px[k + 1], py[k + 1]) <= hw2 * hw2) {
                        gain[(size_t)y * W + x] = (float)f;
                        mask[(size_t)y * W + x] = 1;
                    }
        }
    } else if (kind == GLAD_SYNTH_EDGE) {
        /* the edge's outward normal: the mean offset of the pixels outside the object
         * (background or beyond the image) within 3 px of the centre; the ellipse's
         * long axis is perpendicular to it */
        /* (the foreground pick above goes unused here; its draw stays so that a seed's
         * edge chips stay those the twenty-first and twenty-second MTD runs validated on) */
        size_t e = pick_boundary(fg, H, W, r);
        int ex = (int)(e % W), ey = (int)(e / W);
        cx = ex + 0.5; cy = ey + 0.5;
        double nx = 0, ny = 0;
        for (int dy = -3; dy <= 3; dy++)
            for (int dx = -3; dx <= 3; dx++) {
                int x = ex + dx, y = ey + dy;
                if (x < 0 || y < 0 || x >= W || y >= H || !fg[(size_t)y * W + x]) { nx += dx; ny += dy; }
            }
        double ang = (nx == 0 && ny == 0 ? unif(r, 0, M_PI) : atan2(ny, nx)) + M_PI / 2, ca = cos(ang), sa = sin(ang);
        double a = unif(r, 12, 48) * s, b = unif(r, 4, 16) * s, f = unif(r, 0.3, 0.7), amp[3], ph[3];
        if (b < 0.71) b = 0.71;
        for (int k = 0; k < 3; k++) { amp[k] = unif(r, 0, 0.12); ph[k] = unif(r, 0, 2 * M_PI); }
        double rad = 1.36 * a + 1;
        int x0 = (int)floor(cx - rad), x1 = (int)ceil(cx + rad), y0 = (int)floor(cy - rad), y1 = (int)ceil(cy + rad);
        for (int y = y0 < 0 ? 0 : y0; y < (y1 > H ? H : y1); y++)
            for (int x = x0 < 0 ? 0 : x0; x < (x1 > W ? W : x1); x++) {
                double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
                double u = (ca * dx + sa * dy) / a, v = (-sa * dx + ca * dy) / b, phi = atan2(v, u);
                double lim = 1 + amp[0] * sin(3 * phi + ph[0]) + amp[1] * sin(5 * phi + ph[1]) + amp[2] * sin(7 * phi + ph[2]);
                if (u * u + v * v >= lim * lim) continue;
                gain[(size_t)y * W + x] = (float)f;
                mask[(size_t)y * W + x] = 1;
            }
    } else {
        /* hole, stain or uneven: an ellipse, semi-axes (a, b), angle ang */
        int stain = kind == GLAD_SYNTH_STAIN || kind == GLAD_SYNTH_UNEVEN;
        double lo = kind == GLAD_SYNTH_UNEVEN ? 48 : stain ? 12 : 2, hi = kind == GLAD_SYNTH_UNEVEN ? 160 : stain ? 40 : 8;
        double a = unif(r, lo, hi) * s, b = unif(r, lo, hi) * s;
        if (a < 0.71) a = 0.71;
        if (b < 0.71) b = 0.71;
        double ang = unif(r, 0, M_PI), ca = cos(ang), sa = sin(ang);
        double f = stain ? 0 : unif(r, 0.3, 0.7);
        double d = stain ? unif(r, 0.15, 0.35) * (glad_rng_uniform(r) < 0.5 ? -1 : 1) : 0;
        double rad = fmax(a, b) + 1;
        int x0 = (int)floor(cx - rad), x1 = (int)ceil(cx + rad), y0 = (int)floor(cy - rad), y1 = (int)ceil(cy + rad);
        for (int y = y0 < 0 ? 0 : y0; y < (y1 > H ? H : y1); y++)
            for (int x = x0 < 0 ? 0 : x0; x < (x1 > W ? W : x1); x++) {
                double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
                double u = (ca * dx + sa * dy) / a, v = (-sa * dx + ca * dy) / b, rr = sqrt(u * u + v * v);
                if (rr >= 1) continue;
                size_t i = (size_t)y * W + x;
                if (stain) {
                    double w = 0.5 * (1 + cos(M_PI * rr));
                    gain[i] = (float)(1 + d * w);
                    mask[i] = w >= 0.5;
                } else {
                    gain[i] = (float)f;
                    mask[i] = 1;
                }
            }
    }
    /* v = x + 1 scaled by the gain on the foreground, clamped to [-1, 1] */
    size_t area = 0;
    for (size_t i = 0; i < hw; i++) {
        if (!fg[i]) { mask[i] = 0; continue; }
        area += mask[i];
        if (gain[i] == 1) continue;
        for (int c = 0; c < C; c++) {
            float v = (img[(size_t)c * hw + i] + 1) * gain[i] - 1;
            out[(size_t)c * hw + i] = v < -1 ? -1 : v > 1 ? 1 : v;
        }
    }
    free(gain);
    if (!area) { memcpy(out, img, n * sizeof(float)); memset(mask, 0, hw); return 0; }
    return 1;
}
