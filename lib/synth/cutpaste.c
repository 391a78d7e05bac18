/* cutpaste.c - CutPaste's synthetic anomalies (Li et al., "CutPaste:
 * Self-Supervised Learning for Anomaly Detection and Localization", CVPR
 * 2021), a family of its own beside GLAD/DRAEM's (anomaly.c): a region of
 * the image itself, colour-jittered, pasted somewhere else.
 *   patch: area a U[0.02, 0.15] of the image, aspect ratio r log-uniform in
 *          [0.3, 3.3], width sqrt(a H W r), height sqrt(a H W / r);
 *   scar:  width U[2, 16] and height U[10, 25] pixels at 256 (scaled with
 *          the image), rotated by U[-45, 45] degrees;
 * (mix: one of the two, 1/2 each, as in CutPaste's 3-way training); both:
 * cut at a random place, brightness, contrast and saturation each
 * jittered by a factor U[0.9, 1.1] (torchvision's ColorJitter(0.1) without
 * hue), pasted centred at a random foreground pixel (nearest-neighbour
 * rotation). The mask is the pasted region inside the foreground. Used to
 * validate on anomalies the ATP training never saw (tune.sh --val-family).
 * Randomness comes from (seed, record id hash) only. Not DRAEM's synthesis. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "synth/anomaly.h"

static double unif(glad_rng *r, double a, double b) { return a + (b - a) * glad_rng_uniform(r); }

int glad_synth_cutpaste(float *out, uint8_t *mask, const float *img, int C, int H, int W, const glad_synth_opts *o,
                        const uint8_t *fg, glad_rng *r)
{
    size_t hw = (size_t)H * W, n = hw * C;
    /* mix: a scar or a patch, 1/2 each */
    int scar = o->family == GLAD_SYNTH_SCAR || (o->family == GLAD_SYNTH_CUTPASTE_MIX && glad_rng_uniform(r) < 0.5);
    /* the patch's size (pixels, before rotation) and angle */
    double pw, ph, ang = 0;
    if (scar) {
        double s = (H < W ? H : W) / 256.0;
        pw = unif(r, 2, 16) * s; ph = unif(r, 10, 25) * s;
        ang = unif(r, -45, 45) * M_PI / 180;
    } else {
        double a = unif(r, 0.02, 0.15) * hw, ar = exp(unif(r, log(0.3), log(1 / 0.3)));
        pw = sqrt(a * ar); ph = sqrt(a / ar);
    }
    int iw = (int)ceil(pw), ih = (int)ceil(ph);
    if (iw < 1) iw = 1;
    if (ih < 1) ih = 1;
    if (iw > W) iw = W;
    if (ih > H) ih = H;
    /* the cut: top-left corner (sx, sy) of an iw x ih window inside the image */
    int sx = (int)glad_rng_below(r, (uint64_t)(W - iw + 1)), sy = (int)glad_rng_below(r, (uint64_t)(H - ih + 1));
    /* jitter factors: brightness, contrast (about the window's mean), saturation (about the grey value) */
    double fb = unif(r, 0.9, 1.1), fc = unif(r, 0.9, 1.1), fs = unif(r, 0.9, 1.1);
    double mean = 0;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < iw; x++) mean += img[(size_t)c * hw + (size_t)(sy + y) * W + sx + x];
    mean /= (double)C * iw * ih;
    /* the paste centre: a random foreground pixel (any pixel when there is none) */
    size_t at = glad_synth_pick_fg(fg, hw, r);
    double cx = (double)(at % W) + 0.5, cy = (double)(at / W) + 0.5, ca = cos(ang), sa = sin(ang);
    /* destination pixels whose centre, rotated back into the window's frame, falls inside it */
    double rad = 0.5 * sqrt((double)iw * iw + (double)ih * ih) + 1;
    int x0 = (int)floor(cx - rad), x1 = (int)ceil(cx + rad), y0 = (int)floor(cy - rad), y1 = (int)ceil(cy + rad);
    size_t area = 0;
    for (int y = y0 < 0 ? 0 : y0; y < (y1 > H ? H : y1); y++)
        for (int x = x0 < 0 ? 0 : x0; x < (x1 > W ? W : x1); x++) {
            double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
            double u = ca * dx + sa * dy + 0.5 * iw, v = -sa * dx + ca * dy + 0.5 * ih;
            if (u < 0 || v < 0 || u >= iw || v >= ih) continue;
            size_t i = (size_t)y * W + x;
            if (!fg[i]) continue;
            size_t s = (size_t)(sy + (int)v) * W + sx + (int)u;
            /* grey value of the source pixel for the saturation jitter */
            double g = 0;
            for (int c = 0; c < C; c++) g += img[(size_t)c * hw + s];
            g /= C;
            for (int c = 0; c < C; c++) {
                double val = img[(size_t)c * hw + s];
                val = g + fs * (val - g);                 /* saturation */
                val = mean + fc * (val - mean);           /* contrast */
                val = (val + 1) * fb - 1;                 /* brightness on [0, 2] = (x + 1) */
                out[(size_t)c * hw + i] = (float)(val < -1 ? -1 : val > 1 ? 1 : val);
            }
            mask[i] = 1;
            area++;
        }
    if (!area) { memcpy(out, img, n * sizeof(float)); return 0; }
    return 1;
}
