/* plot.h - simple line plots written as PNG: a frame with axes, ticks and
 * tick labels, axis labels, a title and a legend, drawn with a built-in
 * 5x8 bitmap font (no font files, no dependency beyond libpng).
 * Meant for metric curves (ROC, PR, PRO) a person looks at; not a general
 * charting library (no log axes, no markers, no text rotation: the y label
 * is written vertically letter by letter). Also the text and jet colour
 * map the picture panels of glad-view draw with (gallery.h). */
#ifndef GLAD_PLOT_H
#define GLAD_PLOT_H

#include <stdio.h>
#include "core/glad.h"

typedef struct {
    const double *x, *y;   /* n points, drawn as a polyline */
    size_t n;
    const char *label;     /* legend entry (NULL = none) */
    int dashed;
} glad_plot_series;

typedef struct {
    int width, height;              /* pixels; 0 = 640 x 480 */
    const char *title, *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax;  /* axis ranges; xmin == xmax = fit to data */
    double vline;                   /* draw a dotted vertical marker at x = vline when within range (e.g. FPR 0.3); NAN = none */
    int diagonal;                   /* draw the y = x reference line */
    int legend_left;                /* legend in the lower left corner (default lower right) */
} glad_plot_opts;

/* Renders and writes path (RGB PNG). 0 or GLAD_EIO / GLAD_ENOMEM / GLAD_EINVAL. */
int glad_plot_lines_png(const char *path, const glad_plot_opts *o, const glad_plot_series *s, int ns);
/* The same PNG written to f (left open; flushed). */
int glad_plot_lines_png_file(FILE *f, const glad_plot_opts *o, const glad_plot_series *s, int ns);

/* Draw text with the 5x8 font (6 px advance, times scale) on an interleaved
 * RGB buffer of w x h pixels, clipped at its edges. */
void glad_plot_text(uint8_t *rgb, int w, int h, int x, int y, const char *s, int scale, const uint8_t color[3]);

/* The jet colour map (blue - cyan - yellow - red) of v in [0,1] (clamped):
 * each channel 1.5 - |4v - k| clamped to [0,1], k = 3, 2, 1 for R, G, B. */
void glad_plot_jet(double v, uint8_t rgb[3]);

#endif
