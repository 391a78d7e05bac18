/* test_synth.c - Perlin noise against GLAD's rand_perlin_2d_np with stored
 * random angles (tests/fixtures/perlin.case.safetensors, 1e-9), Otsu and
 * foreground masks, the anomaly synthesis' invariants, and synthesis on
 * records (keys, --as-test labels, errors with their detail). */
#include <stdlib.h>
#include "check.h"
#include "imgproc/foreground.h"
#include "io/safetensors.h"
#include "synth/anomaly.h"
#include "synth/perlin.h"
#include "synth/records.h"

static void perlin_parity(void)
{
    glad_st *st;
    if (glad_st_open(&st, "tests/fixtures/perlin.case.safetensors")) { CHECKF(0, "perlin fixture missing"); return; }
    const char *cases[] = {"perlin_64x64_r4x8", "perlin_64x64_r2x2", "perlin_256x256_r32x1"};
    int dims[3][4] = {{64, 64, 4, 8}, {64, 64, 2, 2}, {256, 256, 32, 1}};
    for (int c = 0; c < 3; c++) {
        char n[128];
        glad_tensor u, ref, mask;
        snprintf(n, sizeof n, "%s.u", cases[c]);
        CHECK(glad_st_get(st, n, &u) == 0 && u.dtype == GLAD_DT_F64);
        snprintf(n, sizeof n, "%s.noise", cases[c]);
        CHECK(glad_st_get(st, n, &ref) == 0);
        snprintf(n, sizeof n, "%s.mask", cases[c]);
        CHECK(glad_st_get(st, n, &mask) == 0);
        int h = dims[c][0], w = dims[c][1];
        double *out = malloc(sizeof(double) * h * w), e = 0;
        CHECK(glad_perlin_from_u(out, h, w, dims[c][2], dims[c][3], u.data) == 0);
        int mask_ok = 1;
        for (int i = 0; i < h * w; i++) {
            e = fmax(e, fabs(out[i] - ((double *)ref.data)[i]));
            if ((out[i] > 0.3) != (((uint8_t *)mask.data)[i] != 0)) mask_ok = 0;
        }
        CHECKF(e < 1e-9, "%s max err %g", cases[c], e);
        CHECK(mask_ok);
        free(out);
        glad_tensor_free(&u); glad_tensor_free(&ref); glad_tensor_free(&mask);
    }
    glad_st_close(st);
}

static void on_records(void)
{
    CHECK(!strcmp(glad_synth_fg_names[GLAD_SYNTH_FG_AUTO], "auto") && !strcmp(glad_synth_fg_names[GLAD_SYNTH_FG_BRIGHT], "bright") &&
          !strcmp(glad_synth_fg_names[GLAD_SYNTH_FG_NONE], "none") && glad_synth_fg_names[4] == NULL);
    glad_synth_record_opts o;
    glad_synth_record_opts_default(&o);
    o.anomaly.p = 1;
    o.seed = 3;
    glad_record r;
    glad_record_init(&r);
    glad_record_set_str(&r, "id", "x/1");
    CHECK(glad_synth_record(&r, &o, NULL) == GLAD_ENOTFOUND && !strcmp(glad_error_detail(), "'image' missing"));
    glad_tensor t;
    glad_tensor_alloc4(&t, GLAD_DT_F32, 1, 32, 32, -1);
    ((float *)t.data)[5] = NAN;
    glad_record_set_tensor(&r, "image", &t);
    CHECK(glad_synth_record(&r, &o, NULL) == GLAD_ENAN && strstr(glad_error_detail(), "NaN"));
    glad_tensor_alloc4(&t, GLAD_DT_U8, 3, 32, 32, -1);
    for (int i = 0; i < 3 * 32 * 32; i++) ((uint8_t *)t.data)[i] = (uint8_t)(i * 7);
    glad_record_set_tensor(&r, "image", &t);
    glad_record a, b;
    CHECK(glad_record_copy(&a, &r) == 0 && glad_record_copy(&b, &r) == 0);
    int made = glad_synth_record(&a, &o, NULL);
    const glad_tensor *an, *m;
    CHECK(made >= 0 && glad_record_get_tensor(&a, "anomalous", &an) == 0 && an->dtype == GLAD_DT_U8 &&
          glad_record_get_tensor(&a, "synth_mask", &m) == 0 && m->shape[0] == 1 && m->shape[1] == 32);
    o.as_test = o.keep_source = 1;
    int made2 = glad_synth_record(&b, &o, NULL);
    int64_t label = -1;
    const char *defect = NULL;
    const glad_tensor *src, *img;
    CHECK(made2 == made && glad_record_get_int(&b, "label", &label) == 0 && label == made &&
          glad_record_get_str(&b, "defect", &defect) == 0 && !strcmp(defect, made ? "synthetic" : "good"));
    /* the same draws: as-test's image is training's anomalous; the original kept for the preview */
    CHECK(glad_record_get_tensor(&b, "image", &img) == 0 && memcmp(img->data, an->data, 3 * 32 * 32) == 0);
    CHECK(glad_record_get_tensor(&b, "source_image", &src) == 0 && glad_record_get_tensor(&r, "image", &img) == 0 &&
          memcmp(src->data, img->data, 3 * 32 * 32) == 0);
    glad_record_free(&a); glad_record_free(&b); glad_record_free(&r);
}

/* im (3,S,S): a dark disc (the object, radius 40, grey level `in`) on a bright
 * ground (0.6), with texture; fg its dark foreground mask */
static void disc_image(float *im, uint8_t *fg, int S, float in)
{
    size_t hw = (size_t)S * S;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int d = (x - S / 2) * (x - S / 2) + (y - S / 2) * (y - S / 2) < 1600;
                im[(size_t)c * hw + (size_t)y * S + x] = (d ? in : 0.6f) + 0.2f * (float)sin(0.3 * x + 0.7 * y + c);
            }
    glad_foreground_mask(fg, im, 3, S, S, GLAD_FG_DARK);
}

/* CutPaste's family: deterministic, only the mask changes, the mask inside
 * the foreground, the pasted pixels the image's own (jittered by at most
 * 10 % each for brightness, contrast and saturation), sizes as the paper's,
 * and different from DRAEM's for the same seed */
static void cutpaste(void)
{
    enum { S = 128 };
    size_t hw = (size_t)S * S, n = 3 * hw;
    float *im = malloc(n * sizeof(float)), *an = malloc(n * sizeof(float)), *an2 = malloc(n * sizeof(float)), *ad = malloc(n * sizeof(float));
    uint8_t *m = malloc(hw), *m2 = malloc(hw), *fg = malloc(hw), *md = malloc(hw);
    disc_image(im, fg, S, -0.6f);
    for (int fam = GLAD_SYNTH_CUTPASTE; fam <= GLAD_SYNTH_CUTPASTE_MIX; fam++) {
        int made = 0, determ = 1, outside = 1, in_fg = 1, jitter = 1, differ = 0;
        size_t amin = hw, amax = 0;
        int big = 0;   /* mix: patches (more than a scar's 9 x 13 pixels) and scars both */
        for (int k = 0; k < 40; k++) {
            glad_synth_opts o;
            glad_synth_opts_default(&o);
            o.p = 1.0; o.fg = GLAD_FG_DARK; o.family = (glad_synth_family)fam;
            int got = glad_synth_anomaly(an, m, im, 3, S, S, &o, 5, (uint64_t)k, NULL);
            glad_synth_anomaly(an2, m2, im, 3, S, S, &o, 5, (uint64_t)k, NULL);
            if (memcmp(an, an2, n * sizeof(float)) || memcmp(m, m2, hw)) determ = 0;
            o.family = GLAD_SYNTH_DRAEM;
            glad_synth_anomaly(ad, md, im, 3, S, S, &o, 5, (uint64_t)k, NULL);
            differ += memcmp(m, md, hw) != 0;
            made += got == 1;
            size_t area = 0;
            for (size_t i = 0; i < hw; i++) {
                area += m[i];
                if (m[i] && !fg[i]) in_fg = 0;
                for (int c = 0; c < 3; c++) {
                    float v = an[(size_t)c * hw + i], u = im[(size_t)c * hw + i];
                    if (!m[i] && v != u) outside = 0;
                    /* every image value lies in [-0.8, 0.8]: jittered by <= 10 % three times, within [-1, 1] */
                    if (m[i] && (v < -1.0f || v > 1.0f || fabsf(v) > 0.8f * 1.1f * 1.1f * 1.1f + 0.25f)) jitter = 0;
                }
            }
            if (got == 1) { amin = area < amin ? area : amin; amax = area > amax ? area : amax; big += area > 9 * 13 + 30; }
        }
        const char *nm = glad_synth_family_names[fam];
        CHECKF(determ && outside && in_fg && jitter, "%s: deterministic %d, outside unchanged %d, inside the object %d, values %d", nm, determ,
               outside, in_fg, jitter);
        CHECKF(made >= 36 && differ == 40, "%s: %d of 40 made (p = 1), %d differ from DRAEM's", nm, made, differ);
        /* patch: at most 15 % of the image (plus the rounding up of its sides); scar at 128: at most 8.5 x 13 pixels */
        if (fam == GLAD_SYNTH_CUTPASTE) CHECKF(amax <= 0.15 * hw + 2 * S && amin >= 4, "%s: areas %zu..%zu", nm, amin, amax);
        else if (fam == GLAD_SYNTH_SCAR) CHECKF(amax <= 9 * 13 + 30 && amin >= 1, "%s: areas %zu..%zu", nm, amin, amax);
        else CHECKF(big >= 8 && big <= 32 && amin <= 9 * 13 + 30, "%s: %d of 40 patches, smallest %zu", nm, big, amin);
    }
    /* p = 0: never */
    glad_synth_opts o;
    glad_synth_opts_default(&o);
    o.p = 0; o.family = GLAD_SYNTH_SCAR;
    CHECK(glad_synth_anomaly(an, m, im, 3, S, S, &o, 7, 1, NULL) == 0 && memcmp(an, im, n * sizeof(float)) == 0);
    free(im); free(an); free(an2); free(ad); free(m); free(m2); free(fg); free(md);
}

/* drawn defects: deterministic, only foreground pixels change, cracks and
 * holes darker by 30-70 % inside the mask and unchanged outside it, a stain
 * one-signed and changed only within its ellipse, sizes as documented, the
 * mix drawing all three kinds */
static void defects(void)
{
    enum { S = 128 };
    size_t hw = (size_t)S * S, n = 3 * hw;
    float *im = malloc(n * sizeof(float)), *an = malloc(n * sizeof(float)), *an2 = malloc(n * sizeof(float));
    uint8_t *m = malloc(hw), *m2 = malloc(hw), *fg = malloc(hw);
    disc_image(im, fg, S, -0.2f);
    for (int fam = GLAD_SYNTH_CRACK; fam <= GLAD_SYNTH_EDGE; fam++) {
        int made = 0, determ = 1, in_fg = 1, shade = 1, kinds[3] = {0, 0, 0}, on_edge = 0;
        size_t amin = hw, amax = 0;
        for (int k = 0; k < 60; k++) {
            glad_synth_opts o;
            glad_synth_opts_default(&o);
            o.p = 1.0; o.fg = GLAD_FG_DARK; o.family = (glad_synth_family)fam;
            int got = glad_synth_anomaly(an, m, im, 3, S, S, &o, 5, (uint64_t)k, NULL);
            glad_synth_anomaly(an2, m2, im, 3, S, S, &o, 5, (uint64_t)k, NULL);
            if (memcmp(an, an2, n * sizeof(float)) || memcmp(m, m2, hw)) determ = 0;
            made += got == 1;
            size_t area = 0, changed_out = 0;
            int darker = 0, brighter = 0;
            for (size_t i = 0; i < hw; i++) {
                area += m[i];
                if (m[i] && !fg[i]) in_fg = 0;
                for (int c = 0; c < 3; c++) {
                    float v = an[(size_t)c * hw + i] + 1, u = im[(size_t)c * hw + i] + 1;
                    if (v != u && !fg[i]) in_fg = 0;
                    if (v != u && !m[i]) changed_out++;
                    darker += v < u; brighter += v > u;
                    /* inside a crack or hole: v = f u, f in [0.3, 0.7] */
                    if (m[i] && (v < 0.3f * u - 1e-5f || v > 0.7f * u + 1e-5f) && (o.family == GLAD_SYNTH_CRACK || o.family == GLAD_SYNTH_HOLE || o.family == GLAD_SYNTH_EDGE))
                        shade = 0;
                }
            }
            if (got != 1) continue;
            amin = area < amin ? area : amin; amax = area > amax ? area : amax;
            /* an edge chip touches the object's boundary (a mask pixel next to the background) */
            int touches = 0;
            for (int y = 1; y < S - 1; y++)
                for (int x = 1; x < S - 1; x++) {
                    size_t i = (size_t)y * S + x;
                    if (m[i] && (!fg[i - 1] || !fg[i + 1] || !fg[i - S] || !fg[i + S])) touches = 1;
                }
            on_edge += touches;
            /* which kind the mix drew: a change outside the mask is a stain's rim; else a crack
             * when the mask's bounding box is longer than a hole's can be (semi-axes <= 4 px:
             * diagonal <= 8 sqrt 2 plus a pixel), else a small crack or a hole */
            int bx0 = S, bx1 = -1, by0 = S, by1 = -1;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    if (m[(size_t)y * S + x]) { bx0 = x < bx0 ? x : bx0; bx1 = x > bx1 ? x : bx1; by0 = y < by0 ? y : by0; by1 = y > by1 ? y : by1; }
            double diag = hypot(bx1 - bx0 + 1, by1 - by0 + 1);
            if (fam == GLAD_SYNTH_HOLE && diag > 13) shade = 0;
            int kind = changed_out ? 2 : diag > 13 ? 0 : 1;
            if (fam != GLAD_SYNTH_DEFECT_MIX && fam != GLAD_SYNTH_STAIN && fam != GLAD_SYNTH_UNEVEN && changed_out) shade = 0;
            if ((fam == GLAD_SYNTH_STAIN || fam == GLAD_SYNTH_UNEVEN) && darker && brighter) shade = 0;
            kinds[kind]++;
        }
        const char *nm = glad_synth_family_names[fam];
        CHECKF(determ && in_fg && shade, "%s: deterministic %d, inside the object %d, shading as documented %d", nm, determ, in_fg, shade);
        CHECKF(made >= 55, "%s: %d of 60 made (p = 1)", nm, made);
        /* at 128 px: a hole's ellipse has semi-axes <= 4 px (area <= pi 16 plus its pixelation),
         * a stain's mask semi-axes <= 10 px, a crack <= 8 x 10 px long and >= 1 px wide */
        if (fam == GLAD_SYNTH_HOLE) CHECKF(amax <= 3.15 * 4 * 4 + 30 && amin >= 1, "%s: areas %zu..%zu", nm, amin, amax);
        else if (fam == GLAD_SYNTH_STAIN) CHECKF(amax <= 3.15 * 10 * 10 + 60 && amin >= 9, "%s: areas %zu..%zu", nm, amin, amax);
        /* uneven at 128 px: mask semi-axes 12..40 px (half of 24..80), clipped by the
         * object (a disc of radius 40, 5027 px): larger than any stain's smallest */
        else if (fam == GLAD_SYNTH_UNEVEN) CHECKF(amax <= 5100 && amin >= 200 && amax >= 1500, "%s: areas %zu..%zu", nm, amin, amax);
        /* edge at 128 px: semi-axes 6..24 px along, 2..8 across (outline up to 1.36x), the
         * half inside the disc: at most pi 32.6 10.9 / 2 + pixelation; every chip on the edge
         * (no other family's mask is: a hole or crack touches it only by chance) */
        else if (fam == GLAD_SYNTH_EDGE) CHECKF(amax <= 620 && amin >= 4 && on_edge == made, "%s: areas %zu..%zu, %d of %d on the edge", nm, amin, amax, on_edge, made);
        else if (fam == GLAD_SYNTH_CRACK) CHECKF(amax <= 80 * 2.2 + 20 && kinds[0] >= 40, "%s: areas %zu..%zu, %d of 60 longer than a hole", nm, amin, amax, kinds[0]);
        else CHECKF(kinds[0] >= 8 && kinds[1] >= 10 && kinds[2] >= 10 && kinds[2] <= 35, "%s: %d long cracks, %d small ones or holes, %d stains",
                    nm, kinds[0], kinds[1], kinds[2]);
    }
    free(im); free(an); free(an2); free(m); free(m2); free(fg);
    /* edge with --fg none (a tile filling the image): the chip is cut out of the image's
     * border -- every mask touches it, and none reaches further in than the ellipse's
     * 16 px across (8 at 128 px, 1.36x for the ragged outline) */
    float *t = malloc(n * sizeof(float)), *ta = malloc(n * sizeof(float));
    uint8_t *tm = malloc(hw);
    for (size_t i = 0; i < n; i++) t[i] = 0.2f * (float)sin(i * 0.013);
    int border = 0, shallow = 1, tmade = 0;
    for (int k = 0; k < 40; k++) {
        glad_synth_opts o;
        glad_synth_opts_default(&o);
        o.p = 1.0; o.family = GLAD_SYNTH_EDGE;
        if (glad_synth_anomaly(ta, tm, t, 3, S, S, &o, 9, (uint64_t)k, NULL) != 1) continue;
        tmade++;
        int on = 0, deep = 0;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                if (!tm[(size_t)y * S + x]) continue;
                int d = x < y ? x : y;
                d = S - 1 - x < d ? S - 1 - x : d;
                d = S - 1 - y < d ? S - 1 - y : d;
                on |= d == 0; deep = d > deep ? d : deep;
            }
        border += on;
        if (deep > 11) shallow = 0;
    }
    CHECKF(tmade >= 38 && border == tmade && shallow, "edge, --fg none: %d made, %d on the border, within 11 px of it %d", tmade, border, shallow);
    free(t); free(ta); free(tm);
    /* tiny images (1x1, 1x7, 5x2): every family of drawn defect returns 0 or 1 and its mask
     * stays a 0/1 map of the image's pixels (ASan checks the bounds) */
    int tiny_ok = 1;
    const int th[3] = {1, 1, 5}, tw[3] = {1, 7, 2};
    for (int c = 0; c < 3; c++)
        for (int fam = GLAD_SYNTH_CRACK; fam <= GLAD_SYNTH_EDGE; fam++) {
            float ti[35], to[35];
            uint8_t mm[35];
            for (int i = 0; i < 35; i++) ti[i] = 0.1f * (float)(i % 5);
            glad_synth_opts o;
            glad_synth_opts_default(&o);
            o.p = 1.0; o.family = (glad_synth_family)fam;
            int got = glad_synth_anomaly(to, mm, ti, 1, th[c], tw[c], &o, 4, 7, NULL);
            if (got != 0 && got != 1) tiny_ok = 0;
            for (int i = 0; i < th[c] * tw[c]; i++) if (mm[i] > 1 || to[i] < -1 || to[i] > 1) tiny_ok = 0;
        }
    CHECKF(tiny_ok, "drawn defects on 1x1, 1x7 and 5x2 images");
}

int main(void)
{
    perlin_parity();
    cutpaste();
    defects();
    on_records();
    /* Otsu on a bimodal image: threshold between the modes */
    uint8_t g[1000];
    for (int i = 0; i < 1000; i++) g[i] = i < 600 ? (uint8_t)(40 + i % 10) : (uint8_t)(200 + i % 7);
    int t = glad_otsu_threshold(g, 1000);
    CHECK(t >= 49 && t < 200);
    /* foreground: a dark disc on a bright background, mode dark */
    int S = 32;
    float img[32 * 32];
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) img[y * S + x] = ((x - 16) * (x - 16) + (y - 16) * (y - 16) < 64) ? -0.8f : 0.7f;
    uint8_t fg[32 * 32];
    glad_foreground_mask(fg, img, 1, S, S, GLAD_FG_DARK);
    CHECK(fg[16 * S + 16] == 1 && fg[0] == 0);
    glad_foreground_mask(fg, img, 1, S, S, GLAD_FG_BRIGHT);
    CHECK(fg[16 * S + 16] == 0 && fg[0] == 1);
    CHECK(glad_fg_mode_for_class("screw", 0) == GLAD_FG_DARK && glad_fg_mode_for_class("pill", 0) == GLAD_FG_BRIGHT &&
          glad_fg_mode_for_class("carpet", 0) == GLAD_FG_NONE && glad_fg_mode_for_class("bottle", 1) == GLAD_FG_NONE);
    /* synthesis invariants on a 64x64 RGB image */
    S = 64;
    size_t n = 3 * S * S;
    float *im = malloc(n * sizeof(float)), *an = malloc(n * sizeof(float)), *an2 = malloc(n * sizeof(float));
    uint8_t *m = malloc(S * S), *m2 = malloc(S * S);
    for (size_t i = 0; i < n; i++) im[i] = (float)sin(i * 0.01) * 0.5f;
    int made = 0, outside_ok = 1, determ = 1;
    for (int k = 0; k < 40; k++) {
        glad_synth_opts o;
        glad_synth_opts_default(&o);
        o.p = 1.0;
        o.fg = GLAD_FG_NONE;
        int got = glad_synth_anomaly(an, m, im, 3, S, S, &o, 7, (uint64_t)k, NULL);
        glad_synth_anomaly(an2, m2, im, 3, S, S, &o, 7, (uint64_t)k, NULL);
        if (memcmp(an, an2, n * sizeof(float)) || memcmp(m, m2, S * S)) determ = 0;
        made += got > 0;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < S * S; i++)
                if (!m[i] && an[c * S * S + i] != im[c * S * S + i]) outside_ok = 0;
    }
    CHECK(determ);
    CHECK(outside_ok);
    CHECKF(made >= 30, "only %d of 40 draws made an anomaly with p = 1", made);
    /* p = 0: never */
    glad_synth_opts o;
    glad_synth_opts_default(&o);
    o.p = 0;
    CHECK(glad_synth_anomaly(an, m, im, 3, S, S, &o, 7, 1, NULL) == 0 && memcmp(an, im, n * sizeof(float)) == 0);
    free(im); free(an); free(an2); free(m); free(m2);
    return check_done();
}
