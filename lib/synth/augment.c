/* augment.c - see augment.h. Parameter ranges follow GLAD's augmenter list
 * with imgaug 0.4 defaults: GammaContrast((0.5,2), per channel),
 * MultiplyAndAddToBrightness(mul (0.8,1.2), add (-30,30)), EnhanceSharpness
 * (factor 0..2), AddToHueAndSaturation((-50,50)), Solarize(p 0.5, threshold
 * 32..128), Posterize(1..8 bits), Invert, Autocontrast(cutoff 0..20 %),
 * Equalize, Affine(rotate -45..45). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/glad.h"
#include "synth/augment.h"

static float clampf(float v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

int glad_rotate(float *img, int C, int H, int W, double deg)
{
    size_t hw = (size_t)H * W;
    float *src = malloc(hw * sizeof(float));
    if (!src) return GLAD_ENOMEM;
    double a = deg * M_PI / 180.0, ca = cos(a), sa = sin(a), cy = (H - 1) / 2.0, cx = (W - 1) / 2.0;
    for (int c = 0; c < C; c++) {
        float *p = img + (size_t)c * hw;
        memcpy(src, p, hw * sizeof(float));
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                /* inverse map: source = R^-1 (dst - centre) + centre */
                double dx = x - cx, dy = y - cy, sx = ca * dx + sa * dy + cx, sy = -sa * dx + ca * dy + cy;
                int x0 = (int)floor(sx), y0 = (int)floor(sy);
                double fx = sx - x0, fy = sy - y0, v = 0;
                for (int k = 0; k < 4; k++) {
                    int xx = x0 + (k & 1), yy = y0 + (k >> 1);
                    double wgt = ((k & 1) ? fx : 1 - fx) * ((k >> 1) ? fy : 1 - fy);
                    if (xx >= 0 && xx < W && yy >= 0 && yy < H) v += wgt * src[(size_t)yy * W + xx];
                }
                p[(size_t)y * W + x] = (float)v;
            }
    }
    free(src);
    return 0;
}

static void rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v)
{
    float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
    *v = mx;
    *s = mx > 0 ? d / mx : 0;
    if (d == 0) *h = 0;
    else if (mx == r) *h = fmodf((g - b) / d + 6, 6);
    else if (mx == g) *h = (b - r) / d + 2;
    else *h = (r - g) / d + 4;
    *h *= 60;
}

static void hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b)
{
    float c = v * s, hp = fmodf(h / 60.0f + 6, 6), x = c * (1 - fabsf(fmodf(hp, 2) - 1)), m = v - c;
    float rr = 0, gg = 0, bb = 0;
    if (hp < 1) { rr = c; gg = x; } else if (hp < 2) { rr = x; gg = c; } else if (hp < 3) { gg = c; bb = x; }
    else if (hp < 4) { gg = x; bb = c; } else if (hp < 5) { rr = x; bb = c; } else { rr = c; bb = x; }
    *r = rr + m; *g = gg + m; *b = bb + m;
}

int glad_augment_one(float *img, int C, int H, int W, int k, glad_rng *r)
{
    size_t hw = (size_t)H * W, n = hw * C;
    switch (k) {
    case 0: /* gamma contrast, per channel */
        for (int c = 0; c < C; c++) {
            double g = 0.5 + 1.5 * glad_rng_uniform(r);
            for (size_t i = 0; i < hw; i++) img[c * hw + i] = (float)(255.0 * pow(img[c * hw + i] / 255.0, g));
        }
        break;
    case 1: { /* brightness: multiply then add */
        double mul = 0.8 + 0.4 * glad_rng_uniform(r), add = -30 + 60 * glad_rng_uniform(r);
        for (size_t i = 0; i < n; i++) img[i] = clampf((float)(img[i] * mul + add));
        break;
    }
    case 2: { /* PIL EnhanceSharpness: blend with the SMOOTH filter (1 1 1; 1 5 1; 1 1 1)/13, borders kept */
        double f = 2 * glad_rng_uniform(r);
        float *s = malloc(n * sizeof(float));
        if (!s) return GLAD_ENOMEM;
        memcpy(s, img, n * sizeof(float));
        for (int c = 0; c < C; c++)
            for (int y = 1; y < H - 1; y++)
                for (int x = 1; x < W - 1; x++) {
                    const float *p = img + c * hw;
                    float sm = 0;
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++) sm += p[(y + dy) * W + x + dx] * ((dx || dy) ? 1.0f : 5.0f);
                    sm /= 13.0f;
                    s[c * hw + (size_t)y * W + x] = clampf((float)(sm + f * (p[(size_t)y * W + x] - sm)));
                }
        memcpy(img, s, n * sizeof(float));
        free(s);
        break;
    }
    case 3: { /* hue and saturation shift (imgaug value -50..50 on a 0..255 scale) */
        float dh = (float)((-50 + 100 * glad_rng_uniform(r)) * 360.0 / 255.0), ds = (float)((-50 + 100 * glad_rng_uniform(r)) / 255.0);
        if (C != 3) break;
        for (size_t i = 0; i < hw; i++) {
            float h, s, v, rr, gg, bb;
            rgb_to_hsv(img[i], img[hw + i], img[2 * hw + i], &h, &s, &v);
            s = fminf(1, fmaxf(0, s + ds));
            hsv_to_rgb(h + dh, s, v, &rr, &gg, &bb);
            img[i] = clampf(rr); img[hw + i] = clampf(gg); img[2 * hw + i] = clampf(bb);
        }
        break;
    }
    case 4: { /* solarize with p 0.5 */
        double thr = 32 + 96 * glad_rng_uniform(r);
        if (glad_rng_uniform(r) < 0.5)
            for (size_t i = 0; i < n; i++) if (img[i] >= thr) img[i] = 255 - img[i];
        break;
    }
    case 5: { /* posterize to 1..8 bits */
        int bits = 1 + (int)glad_rng_below(r, 8), sh = 8 - bits;
        for (size_t i = 0; i < n; i++) img[i] = (float)(((int)clampf(img[i]) >> sh) << sh);
        break;
    }
    case 6: /* invert */
        for (size_t i = 0; i < n; i++) img[i] = 255 - img[i];
        break;
    case 7: { /* autocontrast with a cutoff of 0..20 % at both ends, per channel */
        double cut = 0.2 * glad_rng_uniform(r);
        for (int c = 0; c < C; c++) {
            int hist[256] = {0};
            float *p = img + c * hw;
            for (size_t i = 0; i < hw; i++) hist[(int)clampf(p[i])]++;
            size_t lo_n = (size_t)(cut * hw), acc = 0;
            int lo = 0, hi = 255;
            while (lo < 255 && acc + hist[lo] <= lo_n) acc += hist[lo++];
            acc = 0;
            while (hi > 0 && acc + hist[hi] <= lo_n) acc += hist[hi--];
            if (hi <= lo) continue;
            float sc = 255.0f / (hi - lo);
            for (size_t i = 0; i < hw; i++) p[i] = clampf((p[i] - lo) * sc);
        }
        break;
    }
    case 8: /* histogram equalisation, per channel */
        for (int c = 0; c < C; c++) {
            int hist[256] = {0};
            float *p = img + c * hw, lut[256];
            for (size_t i = 0; i < hw; i++) hist[(int)clampf(p[i])]++;
            size_t acc = 0;
            for (int v = 0; v < 256; v++) { acc += hist[v]; lut[v] = (float)(255.0 * acc / hw); }
            for (size_t i = 0; i < hw; i++) p[i] = lut[(int)clampf(p[i])];
        }
        break;
    case 9: /* rotate -45..45 */
        return glad_rotate(img, C, H, W, -45 + 90 * glad_rng_uniform(r));
    default: return GLAD_EINVAL;
    }
    return 0;
}

int glad_augment_three(float *img, int C, int H, int W, glad_rng *r)
{
    int idx[GLAD_AUG_COUNT];
    for (int i = 0; i < GLAD_AUG_COUNT; i++) idx[i] = i;
    for (int i = 0; i < 3; i++) {
        int j = i + (int)glad_rng_below(r, GLAD_AUG_COUNT - i), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        GLAD_TRY(glad_augment_one(img, C, H, W, idx[i], r));
    }
    return 0;
}
