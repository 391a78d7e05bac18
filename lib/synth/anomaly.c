/* anomaly.c - see anomaly.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "synth/anomaly.h"
#include "synth/augment.h"
#include "synth/perlin.h"

const char *const glad_synth_family_names[] = {"draem", "cutpaste", "scar", "cutpaste-mix", "crack", "hole", "stain", "defect-mix", "uneven", "edge", NULL};

void glad_synth_opts_default(glad_synth_opts *o)
{
    o->p = 0.5;
    o->family = GLAD_SYNTH_DRAEM;
    o->fg = GLAD_FG_NONE;
    o->threshold = 0.3;
    o->beta_max = 0.8;
}

size_t glad_synth_pick_fg(const uint8_t *fg, size_t hw, glad_rng *r)
{
    size_t nfg = 0, at = 0;
    for (size_t i = 0; i < hw; i++) nfg += fg[i];
    size_t pick = (size_t)glad_rng_below(r, nfg ? nfg : hw);
    for (size_t i = 0; i < hw; i++)
        if (!nfg || fg[i]) { if (pick-- == 0) { at = i; break; } }
    return at;
}

/* largest power of two <= 2^k dividing n */
static int scale_for(int k, int n)
{
    int s = 1 << k;
    while (s > 1 && n % s) s >>= 1;
    return s;
}

/* GLAD/DRAEM's family on an image whose anomaly is to be made (see glad_synth_anomaly) */
static int draem(float *out, uint8_t *mask, const float *img, int C, int H, int W, const glad_synth_opts *o,
                 const uint8_t *fg, glad_rng *r, const glad_textures *tex)
{
    size_t hw = (size_t)H * W, n = hw * C;
    int rc = GLAD_ENOMEM;
    double *pn = malloc(hw * sizeof(double));
    float *pm = malloc(hw * sizeof(float)), *src = malloc(n * sizeof(float)), *tmp = malloc(n * sizeof(float));
    if (!pn || !pm || !src || !tmp) goto out;
    /* Perlin mask: scales 2^U{0..5} per axis (reduced to divide the image), rotated, thresholded */
    int sx = scale_for((int)glad_rng_below(r, 6), H), sy = scale_for((int)glad_rng_below(r, 6), W);
    if ((rc = glad_perlin(pn, H, W, sx, sy, r))) goto out;
    for (size_t i = 0; i < hw; i++) pm[i] = (float)pn[i];
    if ((rc = glad_rotate(pm, 1, H, W, -90 + 180 * glad_rng_uniform(r)))) goto out;
    size_t area = 0;
    for (size_t i = 0; i < hw; i++) { mask[i] = pm[i] > o->threshold && fg[i]; area += mask[i]; }
    /* the anomaly source: a texture or the image's own shuffled tiles, p 1/2 each */
    int self = glad_rng_uniform(r) < 0.5 && H % 8 == 0 && W % 8 == 0;
    if (self) {
        for (size_t i = 0; i < n; i++) src[i] = (img[i] + 1) * 127.5f;
        if ((rc = glad_augment_three(src, C, H, W, r))) goto out;
        int th = H / 8, tw = W / 8, perm[64];
        for (int i = 0; i < 64; i++) perm[i] = i;
        for (int i = 63; i > 0; i--) { int j = (int)glad_rng_below(r, (uint64_t)i + 1), t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
        memcpy(tmp, src, n * sizeof(float));
        for (int t = 0; t < 64; t++) {
            int ty = t / 8, tx = t % 8, fy = perm[t] / 8, fx = perm[t] % 8;
            for (int c = 0; c < C; c++)
                for (int y = 0; y < th; y++)
                    memcpy(src + (size_t)c * hw + (size_t)(ty * th + y) * W + tx * tw,
                           tmp + (size_t)c * hw + (size_t)(fy * th + y) * W + fx * tw, (size_t)tw * sizeof(float));
        }
    } else {
        if ((rc = glad_texture_sample(src, C, H, W, tex, r))) goto out;
        if ((rc = glad_augment_three(src, C, H, W, r))) goto out;
    }
    double beta = o->beta_max * glad_rng_uniform(r);
    for (int c = 0; c < C; c++)
        for (size_t i = 0; i < hw; i++) {
            if (!mask[i]) continue;
            size_t k = (size_t)c * hw + i;
            float s = src[k] / 127.5f - 1.0f;
            s = s < -1 ? -1 : s > 1 ? 1 : s;
            out[k] = (float)((1 - beta) * s + beta * img[k]);
        }
    rc = area > 0;
out:
    free(pn); free(pm); free(src); free(tmp);
    return rc;
}

/* The families share their start: out = img, an empty mask, the p draw from an
 * rng seeded by (seed, id hash, the family's own salt), the foreground mask;
 * each then draws on from that rng. */
int glad_synth_anomaly(float *out, uint8_t *mask, const float *img, int C, int H, int W, const glad_synth_opts *o,
                       uint64_t seed, uint64_t id_hash, const glad_textures *tex)
{
    size_t hw = (size_t)H * W, n = hw * C;
    int defect = o->family >= GLAD_SYNTH_CRACK, cutpaste = !defect && o->family != GLAD_SYNTH_DRAEM;
    glad_rng r;
    glad_rng_seed(&r, seed, id_hash, defect ? 0xDEF : cutpaste ? 0xC07 : 0x5EED);
    memcpy(out, img, n * sizeof(float));
    memset(mask, 0, hw);
    if (glad_rng_uniform(&r) >= o->p) return 0;
    uint8_t *fg = malloc(hw);
    if (!fg) return GLAD_ENOMEM;
    glad_foreground_mask(fg, img, C, H, W, o->fg);
    int rc = defect     ? glad_synth_defect(out, mask, img, C, H, W, o, fg, &r)
             : cutpaste ? glad_synth_cutpaste(out, mask, img, C, H, W, o, fg, &r)
                        : draem(out, mask, img, C, H, W, o, fg, &r, tex);
    free(fg);
    return rc;
}
