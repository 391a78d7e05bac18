/* plot.c - line plots to PNG (see plot.h): an RGB canvas, Bresenham lines
 * with 2-pixel width, a 5x8 column-encoded bitmap font (the classic
 * public-domain 5x7 "glcdfont" layout, bit 0 = top row, bit 7 = descender),
 * and libpng output. Not an image codec (image.h). */
#include "io/plot.h"
#include "io/outfile.h"
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t font5x8[95][5] = {
    {0x00,0x00,0x00,0x00,0x00},{0x00,0x00,0x5F,0x00,0x00},{0x00,0x07,0x00,0x07,0x00},{0x14,0x7F,0x14,0x7F,0x14},
    {0x24,0x2A,0x7F,0x2A,0x12},{0x23,0x13,0x08,0x64,0x62},{0x36,0x49,0x56,0x20,0x50},{0x00,0x05,0x03,0x00,0x00},
    {0x00,0x1C,0x22,0x41,0x00},{0x00,0x41,0x22,0x1C,0x00},{0x14,0x08,0x3E,0x08,0x14},{0x08,0x08,0x3E,0x08,0x08},
    {0x00,0x50,0x30,0x00,0x00},{0x08,0x08,0x08,0x08,0x08},{0x00,0x60,0x60,0x00,0x00},{0x20,0x10,0x08,0x04,0x02},
    {0x3E,0x51,0x49,0x45,0x3E},{0x00,0x42,0x7F,0x40,0x00},{0x42,0x61,0x51,0x49,0x46},{0x21,0x41,0x45,0x4B,0x31},
    {0x18,0x14,0x12,0x7F,0x10},{0x27,0x45,0x45,0x45,0x39},{0x3C,0x4A,0x49,0x49,0x30},{0x01,0x71,0x09,0x05,0x03},
    {0x36,0x49,0x49,0x49,0x36},{0x06,0x49,0x49,0x29,0x1E},{0x00,0x36,0x36,0x00,0x00},{0x00,0x56,0x36,0x00,0x00},
    {0x08,0x14,0x22,0x41,0x00},{0x14,0x14,0x14,0x14,0x14},{0x00,0x41,0x22,0x14,0x08},{0x02,0x01,0x51,0x09,0x06},
    {0x32,0x49,0x79,0x41,0x3E},{0x7E,0x11,0x11,0x11,0x7E},{0x7F,0x49,0x49,0x49,0x36},{0x3E,0x41,0x41,0x41,0x22},
    {0x7F,0x41,0x41,0x22,0x1C},{0x7F,0x49,0x49,0x49,0x41},{0x7F,0x09,0x09,0x09,0x01},{0x3E,0x41,0x49,0x49,0x7A},
    {0x7F,0x08,0x08,0x08,0x7F},{0x00,0x41,0x7F,0x41,0x00},{0x20,0x40,0x41,0x3F,0x01},{0x7F,0x08,0x14,0x22,0x41},
    {0x7F,0x40,0x40,0x40,0x40},{0x7F,0x02,0x0C,0x02,0x7F},{0x7F,0x04,0x08,0x10,0x7F},{0x3E,0x41,0x41,0x41,0x3E},
    {0x7F,0x09,0x09,0x09,0x06},{0x3E,0x41,0x51,0x21,0x5E},{0x7F,0x09,0x19,0x29,0x46},{0x46,0x49,0x49,0x49,0x31},
    {0x01,0x01,0x7F,0x01,0x01},{0x3F,0x40,0x40,0x40,0x3F},{0x1F,0x20,0x40,0x20,0x1F},{0x3F,0x40,0x38,0x40,0x3F},
    {0x63,0x14,0x08,0x14,0x63},{0x07,0x08,0x70,0x08,0x07},{0x61,0x51,0x49,0x45,0x43},{0x00,0x7F,0x41,0x41,0x00},
    {0x02,0x04,0x08,0x10,0x20},{0x00,0x41,0x41,0x7F,0x00},{0x04,0x02,0x01,0x02,0x04},{0x80,0x80,0x80,0x80,0x80},
    {0x00,0x01,0x02,0x04,0x00},{0x20,0x54,0x54,0x54,0x78},{0x7F,0x48,0x44,0x44,0x38},{0x38,0x44,0x44,0x44,0x20},
    {0x38,0x44,0x44,0x48,0x7F},{0x38,0x54,0x54,0x54,0x18},{0x08,0x7E,0x09,0x01,0x02},{0x18,0xA4,0xA4,0xA4,0x7C},
    {0x7F,0x08,0x04,0x04,0x78},{0x00,0x44,0x7D,0x40,0x00},{0x40,0x80,0x84,0x7D,0x00},{0x7F,0x10,0x28,0x44,0x00},
    {0x00,0x41,0x7F,0x40,0x00},{0x7C,0x04,0x18,0x04,0x78},{0x7C,0x08,0x04,0x04,0x78},{0x38,0x44,0x44,0x44,0x38},
    {0xFC,0x24,0x24,0x24,0x18},{0x18,0x24,0x24,0x28,0xFC},{0x7C,0x08,0x04,0x04,0x08},{0x48,0x54,0x54,0x54,0x20},
    {0x04,0x3F,0x44,0x40,0x20},{0x3C,0x40,0x40,0x20,0x7C},{0x1C,0x20,0x40,0x20,0x1C},{0x3C,0x40,0x30,0x40,0x3C},
    {0x44,0x28,0x10,0x28,0x44},{0x1C,0xA0,0xA0,0xA0,0x7C},{0x44,0x64,0x54,0x4C,0x44},{0x00,0x08,0x36,0x41,0x00},
    {0x00,0x00,0x7F,0x00,0x00},{0x00,0x41,0x36,0x08,0x00},{0x08,0x04,0x08,0x10,0x08},
};

typedef struct { int w, h; uint8_t *px; } canvas;

static const uint8_t palette[8][3] = {
    {31,119,180},{214,39,40},{44,160,44},{255,127,14},{148,103,189},{140,86,75},{227,119,194},{23,190,207}
};

static void put(canvas *c, int x, int y, const uint8_t *rgb)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    uint8_t *p = c->px + ((size_t)y * c->w + x) * 3;
    p[0] = rgb[0]; p[1] = rgb[1]; p[2] = rgb[2];
}

static void rect(canvas *c, int x0, int y0, int x1, int y1, const uint8_t *rgb)
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) put(c, x, y, rgb);
}

/* Bresenham; thick = 2 draws a 2x2 pen; dash pattern on/off every 6 steps */
static void line(canvas *c, int x0, int y0, int x1, int y1, const uint8_t *rgb, int thick, int dash, int *phase)
{
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1, dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) {
        int on = !dash || ((*phase / dash) % 2 == 0);
        (*phase)++;
        if (on) {
            put(c, x0, y0, rgb);
            if (thick > 1) { put(c, x0 + 1, y0, rgb); put(c, x0, y0 + 1, rgb); put(c, x0 + 1, y0 + 1, rgb); }
        }
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

static void glyph(canvas *c, int x, int y, char ch, int scale, const uint8_t *rgb)
{
    if (ch < 32 || ch > 126) ch = '?';
    const uint8_t *g = font5x8[ch - 32];
    for (int col = 0; col < 5; col++)
        for (int row = 0; row < 8; row++)
            if (g[col] >> row & 1) rect(c, x + col * scale, y + row * scale, x + col * scale + scale - 1, y + row * scale + scale - 1, rgb);
}

/* advance 6 px per character at scale 1 */
static int text_w(const char *s, int scale) { return (int)strlen(s) * 6 * scale; }

static void text(canvas *c, int x, int y, const char *s, int scale, const uint8_t *rgb)
{
    for (; *s; s++, x += 6 * scale) glyph(c, x, y, *s, scale, rgb);
}

void glad_plot_text(uint8_t *rgb, int w, int h, int x, int y, const char *s, int scale, const uint8_t color[3])
{
    canvas c = {w, h, rgb};
    text(&c, x, y, s, scale, color);
}

static void fmt_tick(char *buf, size_t n, double v, double step)
{
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6) dec = 6;
    if (fabs(v) < step * 1e-9) v = 0;
    snprintf(buf, n, "%.*f", dec, v);
}

static double nice_step(double range)
{
    double raw = range / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

static int write_png(FILE *f, const canvas *c)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) { png_destroy_write_struct(&png, NULL); return GLAD_ENOMEM; }
    if (setjmp(png_jmpbuf(png))) { png_destroy_write_struct(&png, &info); return GLAD_EIO; }
    png_init_io(png, f);
    png_set_IHDR(png, info, c->w, c->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++) png_write_row(png, c->px + (size_t)y * c->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fflush(f) == 0 && !ferror(f) ? 0 : GLAD_EIO;
}

int glad_plot_lines_png_file(FILE *f, const glad_plot_opts *o, const glad_plot_series *s, int ns)
{
    static const uint8_t black[3] = {0,0,0}, grey[3] = {225,225,225}, dgrey[3] = {120,120,120};
    canvas c;
    c.w = o->width > 0 ? o->width : 640;
    c.h = o->height > 0 ? o->height : 480;
    if (c.w < 160 || c.h < 120 || c.w > 8192 || c.h > 8192 || ns < 0) return GLAD_EINVAL;
    c.px = malloc((size_t)c.w * c.h * 3);
    if (!c.px) return GLAD_ENOMEM;
    memset(c.px, 255, (size_t)c.w * c.h * 3);

    double x0 = o->xmin, x1 = o->xmax, y0 = o->ymin, y1 = o->ymax;
    if (!(x1 > x0) || !(y1 > y0)) {   /* fit to the finite data */
        double a = INFINITY, b = -INFINITY, cc = INFINITY, d = -INFINITY;
        for (int k = 0; k < ns; k++)
            for (size_t i = 0; i < s[k].n; i++) {
                if (isfinite(s[k].x[i])) { a = fmin(a, s[k].x[i]); b = fmax(b, s[k].x[i]); }
                if (isfinite(s[k].y[i])) { cc = fmin(cc, s[k].y[i]); d = fmax(d, s[k].y[i]); }
            }
        if (!(x1 > x0)) { x0 = isfinite(a) ? a : 0; x1 = isfinite(b) && b > x0 ? b : x0 + 1; }
        if (!(y1 > y0)) { y0 = isfinite(cc) ? cc : 0; y1 = isfinite(d) && d > y0 ? d : y0 + 1; }
    }
    /* plot area: margins for tick labels, axis labels, title */
    int L = 70, R = c.w - 20, T = 40, B = c.h - 55;
#define MAPX(v) (L + (int)lround(((v) - x0) / (x1 - x0) * (R - L)))
#define MAPY(v) (B - (int)lround(((v) - y0) / (y1 - y0) * (B - T)))
    char buf[64];
    int phase = 0;
    double xs = nice_step(x1 - x0), ys = nice_step(y1 - y0);
    for (double v = ceil(x0 / xs - 1e-9) * xs; v <= x1 + xs * 1e-9; v += xs) {
        int px = MAPX(v);
        line(&c, px, T, px, B, grey, 1, 0, &phase);
        line(&c, px, B, px, B + 5, black, 1, 0, &phase);
        fmt_tick(buf, sizeof buf, v, xs);
        text(&c, px - text_w(buf, 1) / 2, B + 9, buf, 1, black);
    }
    for (double v = ceil(y0 / ys - 1e-9) * ys; v <= y1 + ys * 1e-9; v += ys) {
        int py = MAPY(v);
        line(&c, L, py, R, py, grey, 1, 0, &phase);
        line(&c, L - 5, py, L, py, black, 1, 0, &phase);
        fmt_tick(buf, sizeof buf, v, ys);
        text(&c, L - 8 - text_w(buf, 1), py - 4, buf, 1, black);
    }
    if (o->diagonal) {
        double lo = fmax(x0, y0), hi = fmin(x1, y1);
        if (hi > lo) { phase = 0; line(&c, MAPX(lo), MAPY(lo), MAPX(hi), MAPY(hi), dgrey, 1, 4, &phase); }
    }
    if (isfinite(o->vline) && o->vline > x0 && o->vline < x1) {
        phase = 0;
        line(&c, MAPX(o->vline), T, MAPX(o->vline), B, dgrey, 1, 3, &phase);
    }
    /* series, clipped to the plot area by clamping into the frame */
    for (int k = 0; k < ns; k++) {
        const uint8_t *col = palette[k % 8];
        int have = 0, px = 0, py = 0;
        phase = 0;
        for (size_t i = 0; i < s[k].n; i++) {
            double xv = s[k].x[i], yv = s[k].y[i];
            if (!isfinite(xv) || !isfinite(yv)) { have = 0; continue; }
            xv = fmin(fmax(xv, x0), x1);
            yv = fmin(fmax(yv, y0), y1);
            int qx = MAPX(xv), qy = MAPY(yv);
            if (have) line(&c, px, py, qx, qy, col, 2, s[k].dashed ? 6 : 0, &phase);
            else if (s[k].n == 1) rect(&c, qx - 2, qy - 2, qx + 2, qy + 2, col);
            px = qx; py = qy; have = 1;
        }
    }
    /* frame */
    phase = 0;
    line(&c, L, T, R, T, black, 1, 0, &phase); line(&c, L, B, R, B, black, 1, 0, &phase);
    line(&c, L, T, L, B, black, 1, 0, &phase); line(&c, R, T, R, B, black, 1, 0, &phase);
    /* title, axis labels (y label stacked vertically) */
    if (o->title) text(&c, (c.w - text_w(o->title, 2)) / 2, 10, o->title, 2, black);
    if (o->xlabel) text(&c, (L + R - text_w(o->xlabel, 1)) / 2, c.h - 22, o->xlabel, 1, black);
    if (o->ylabel) {
        int n = (int)strlen(o->ylabel), y = (T + B) / 2 - n * 5;
        for (int i = 0; i < n; i++) glyph(&c, 8, y + i * 10, o->ylabel[i], 1, black);
    }
    /* legend box in a lower corner of the plot area */
    int nl = 0, lw = 0;
    for (int k = 0; k < ns; k++) if (s[k].label) { nl++; if (text_w(s[k].label, 1) > lw) lw = text_w(s[k].label, 1); }
    if (nl) {
        int bw = lw + 40, bh = nl * 14 + 8, bx = o->legend_left ? L + 8 : R - bw - 8, by = B - bh - 8;
        static const uint8_t white[3] = {255,255,255};
        rect(&c, bx, by, bx + bw, by + bh, white);
        phase = 0;
        line(&c, bx, by, bx + bw, by, dgrey, 1, 0, &phase); line(&c, bx, by + bh, bx + bw, by + bh, dgrey, 1, 0, &phase);
        line(&c, bx, by, bx, by + bh, dgrey, 1, 0, &phase); line(&c, bx + bw, by, bx + bw, by + bh, dgrey, 1, 0, &phase);
        int row = 0;
        for (int k = 0; k < ns; k++) {
            if (!s[k].label) continue;
            int yy = by + 6 + row * 14;
            phase = 0;
            line(&c, bx + 6, yy + 4, bx + 26, yy + 4, palette[k % 8], 2, s[k].dashed ? 6 : 0, &phase);
            text(&c, bx + 32, yy, s[k].label, 1, black);
            row++;
        }
    }
#undef MAPX
#undef MAPY
    int rc = write_png(f, &c);
    free(c.px);
    return rc;
}

int glad_plot_lines_png(const char *path, const glad_plot_opts *o, const glad_plot_series *s, int ns)
{
    glad_outfile *of;   /* complete or untouched */
    GLAD_TRY(glad_outfile_open(&of, path, 0));
    int rc = glad_plot_lines_png_file(glad_outfile_file(of), o, s, ns);
    if (rc < 0) { glad_outfile_abort(of); return rc; }
    return glad_outfile_commit(of);
}

void glad_plot_jet(double v, uint8_t rgb[3])
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    double r = 1.5 - fabs(4 * v - 3), g = 1.5 - fabs(4 * v - 2), b = 1.5 - fabs(4 * v - 1);
    rgb[0] = (uint8_t)(255 * (r < 0 ? 0 : r > 1 ? 1 : r));
    rgb[1] = (uint8_t)(255 * (g < 0 ? 0 : g > 1 ? 1 : g));
    rgb[2] = (uint8_t)(255 * (b < 0 ? 0 : b > 1 ? 1 : b));
}
