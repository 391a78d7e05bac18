/* backbone.h - feature extractors behind one interface, used by
 * glad-features, by glad-denoise (GLAD's ADS compares features at every
 * step) and by scripts through the library: the built-in `unet` backbone (the
 * encoder of a trained diffusion UNet, no download needed). Inputs are
 * images in [-1,1] (C,H,W); outputs [C,h,w] per chosen layer. */
#ifndef GLAD_BACKBONE_H
#define GLAD_BACKBONE_H

#include "glad.h"

#define GLAD_BACKBONE_MAX_LAYERS 16

typedef struct glad_backbone glad_backbone;

typedef struct {
    const char *kind;        /* "unet" */
    const char *weights;     /* model file */
    float feature_t;         /* unet: timestep of the encoder pass (default 0) */
} glad_backbone_opts;

int glad_backbone_open(glad_backbone **bb, const glad_backbone_opts *o, char *err, size_t errlen);
void glad_backbone_close(glad_backbone *bb);
/* number of layers the backbone offers and the input size it needs (0 = any) */
int glad_backbone_layers(const glad_backbone *bb);
int glad_backbone_input_size(const glad_backbone *bb);
int glad_backbone_input_channels(const glad_backbone *bb);
/* Features of one image for the layers listed (indices); out[i] is malloc'd
 * (C,h,w) floats with its dims in c[i], h[i], w[i]. The image is resized
 * (bilinear, align_corners=True) to the backbone's input size when needed. */
int glad_backbone_features(glad_backbone *bb, const float *img, int C, int H, int W, int nl, const int *layers, float **out,
                           int *c, int *h, int *w);

#endif
