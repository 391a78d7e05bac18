/* backbone.h - feature extractors behind one interface, used by
 * glad-features, by glad-denoise (GLAD's ADS compares features at every
 * step) and by scripts through the library:
 *   unet         the encoder of a trained diffusion UNet (built in, no download)
 *   vit          DINO ViT (safetensors with the DINO key names)
 *   resnet       torchvision (Wide) ResNet, layer1..layer3/4 (safetensors)
 *   mobilenetv2  an ImageNet MobileNetV2 read from a .tflite file
 * Inputs are images in [-1,1] (C,H,W), grey or RGB; outputs [C,h,w] per chosen
 * layer. Each backbone does its own input preparation (resize, channels,
 * normalisation), documented in glad-features(1). This is not a scorer:
 * features come out raw (not L2-normalised). */
#ifndef GLAD_BACKBONE_H
#define GLAD_BACKBONE_H

#include "core/glad.h"

#define GLAD_BACKBONE_MAX_LAYERS 16

typedef struct glad_backbone glad_backbone;

typedef enum {
    GLAD_BB_NORM_DEFAULT = 0,  /* vit, resnet: (x+1)/2 then ImageNet mean/std; mobilenetv2: [-1,1]; unet: raw */
    GLAD_BB_NORM_RAW = 1       /* the [-1,1] image as it is (GLAD's official ADS feeds DINO this way) */
} glad_backbone_norm;

typedef struct {
    const char *kind;        /* "unet" | "vit" | "resnet" | "mobilenetv2"; NULL or "auto": from the file */
    const char *weights;     /* unet: glad-train model; vit, resnet: safetensors; mobilenetv2: .tflite */
    float feature_t;         /* unet: timestep of the encoder pass (default 0) */
    int size;                /* square input size the image is resized to; 0: the backbone's default
                              * (unet: the model's size; others: the image's size, rounded to a
                              * multiple of the patch (vit) or of 32 (mobilenetv2)) */
    glad_backbone_norm norm;
} glad_backbone_opts;

/* Option names of glad_backbone_norm in enum order, NULL-terminated:
 * "imagenet" (GLAD_BB_NORM_DEFAULT), "raw" */
extern const char *const glad_backbone_norms[];

/* The kinds, NULL-terminated: "unet", "vit", "resnet", "mobilenetv2" */
extern const char *const glad_backbone_kinds[];

/* Which backbone a weights file holds, from its contents: "unet", "vit",
 * "resnet", "mobilenetv2", or NULL (unreadable or unknown). */
const char *glad_backbone_detect(const char *path);

/* Open the backbone o names. Errors: a negative code (GLAD_EINVAL for bad
 * options, the model loader's codes, e.g. GLAD_ENAN for non-finite weights)
 * with glad_error_detail() saying what and where. */
int glad_backbone_open(glad_backbone **bb, const glad_backbone_opts *o);
void glad_backbone_close(glad_backbone *bb);
/* Change the square input size of an open backbone (as glad_backbone_opts.size:
 * 0 = from the image), so that one set of weights gives features at several
 * input sizes. GLAD_EINVAL for the unet backbone (it runs at its model's size)
 * and for a size out of 0..8192 or not a multiple of the patch (vit) or 32
 * (mobilenetv2); the size is then unchanged. */
int glad_backbone_set_size(glad_backbone *bb, int size);
const char *glad_backbone_kind(const glad_backbone *bb);
/* Layer numbers the backbone accepts are lo..hi: unet resolution levels from
 * 0 (full size), vit blocks from 1, resnet layers from 1, mobilenetv2
 * inverted-residual blocks from 0. */
void glad_backbone_layer_range(const glad_backbone *bb, int *lo, int *hi);
/* The published default layers (unet: the two deepest levels; vit: blocks
 * 3,6,9,12 scaled to its depth; resnet: 2,3; mobilenetv2: the last blocks at
 * stride 8 and 16). Returns the count (<= GLAD_BACKBONE_MAX_LAYERS). */
int glad_backbone_default_layers(const glad_backbone *bb, int *layers);
/* Features of one image for the layers listed; out[i] is malloc'd (C,h,w)
 * floats with its dims in c[i], h[i], w[i]. On error every out[i] is NULL. */
int glad_backbone_features(glad_backbone *bb, const float *img, int C, int H, int W, int nl, const int *layers, float **out,
                           int *c, int *h, int *w);

#endif
