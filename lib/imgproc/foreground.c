/* foreground.c - Otsu foreground masks and the class tables (foreground.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "imgproc/foreground.h"
#include "imgproc/gauss.h"

int glad_otsu_threshold(const uint8_t *g, size_t n)
{
    double hist[256] = {0};
    for (size_t i = 0; i < n; i++) hist[g[i]]++;
    double total = (double)n, sum = 0;
    for (int i = 0; i < 256; i++) sum += i * hist[i];
    double w0 = 0, s0 = 0, best = -1;
    int t = 0;
    for (int i = 0; i < 256; i++) {
        w0 += hist[i];
        s0 += i * hist[i];
        double w1 = total - w0;
        if (w0 == 0 || w1 == 0) continue;
        double m0 = s0 / w0, m1 = (sum - s0) / w1, v = w0 * w1 * (m0 - m1) * (m0 - m1);
        if (v > best) { best = v; t = i; }
    }
    return t;
}

void glad_grey_u8(uint8_t *grey, const float *img, int C, int h, int w)
{
    size_t n = (size_t)h * w;
    for (size_t i = 0; i < n; i++) {
        double v;
        if (C == 3) {
            double r = (img[i] + 1) * 127.5, g = (img[n + i] + 1) * 127.5, b = (img[2 * n + i] + 1) * 127.5;
            v = 0.299 * r + 0.587 * g + 0.114 * b;
        } else v = (img[i] + 1) * 127.5;
        v = nearbyint(v);
        grey[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

void glad_foreground_mask(uint8_t *fg, const float *img, int C, int h, int w, glad_fg_mode mode)
{
    size_t n = (size_t)h * w;
    if (mode == GLAD_FG_NONE) { memset(fg, 1, n); return; }
    glad_grey_u8(fg, img, C, h, w);
    int t = glad_otsu_threshold(fg, n);
    for (size_t i = 0; i < n; i++) fg[i] = mode == GLAD_FG_DARK ? fg[i] <= t : fg[i] > t;
}

int glad_gaussian_filter(float *map, int h, int w, double sigma)
{
    return glad_gauss_blur(map, h, w, sigma, GLAD_BORDER_SYMMETRIC);
}

int glad_object_mask(float *obj, const float *img, int C, int h, int w, glad_fg_mode mode)
{
    size_t n = (size_t)h * w;
    uint8_t *fg = malloc(n);
    if (!fg) return GLAD_ENOMEM;
    glad_foreground_mask(fg, img, C, h, w, mode);
    for (size_t i = 0; i < n; i++) obj[i] = fg[i];
    free(fg);
    if (mode == GLAD_FG_NONE) return 0;
    GLAD_TRY(glad_gaussian_filter(obj, h, w, 6.0));
    for (size_t i = 0; i < n; i++) obj[i] = obj[i] > 0 ? 1.0f : 0.0f;
    return glad_gaussian_filter(obj, h, w, 6.0);
}

/* GLAD dataset.py (training, §1.4) and main.py (test, §1.5) class lists */
static const char *train_dark[] = {"screw", "bottle", "capsule", "zipper", "bracket_black", "bracket_brown", "metal_plate", NULL};
static const char *train_bright[] = {"hazelnut", "pill", "metal_nut", "toothbrush", "candle", "cashew", "chewinggum", "fryum",
                                     "macaroni1", "macaroni2", "pipe_fryum", "bracket_white", NULL};
static const char *test_dark[] = {"screw", "capsule", "bracket_black", "bracket_brown", NULL};
static const char *test_bright[] = {"bracket_white", NULL};

static int in(const char *const *list, const char *s)
{
    for (; *list; list++) if (strcmp(*list, s) == 0) return 1;
    return 0;
}

glad_fg_mode glad_fg_mode_for_class(const char *cls, int test_time)
{
    if (!cls) return GLAD_FG_NONE;
    if (in(test_time ? test_dark : train_dark, cls)) return GLAD_FG_DARK;
    if (in(test_time ? test_bright : train_bright, cls)) return GLAD_FG_BRIGHT;
    return GLAD_FG_NONE;
}
