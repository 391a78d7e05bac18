/* resnet.h - torchvision Bottleneck ResNets as a frozen feature extractor
 * (wide_resnet50_2, wide_resnet101_2 and any depth/width;
 * ../shared/spec/architectures.md §3), the DDAD/MDPS feature backbone.
 * Weights with torchvision key names in safetensors; the blocks per layer and
 * the widths come from __metadata__["config"] ({"block":"bottleneck",
 * "layers":[...],"width_per_group":N}) when present, else from the keys and
 * shapes. Eval-mode BatchNorm is folded into the convolutions at load time.
 * Inference only: no training, no gradients; layer4 and fc are optional (fc is
 * never used). Not an image pre-processor: inputs are already
 * ImageNet-normalised. */
#ifndef GLAD_RESNET_H
#define GLAD_RESNET_H

#include "core/glad.h"

typedef struct glad_resnet glad_resnet;

/* Load a model file; on error glad_error_detail() names the file and the bad
 * key (missing, wrong shape or dtype, non-finite values: GLAD_ENAN, negative
 * running_var). */
int glad_resnet_load(glad_resnet **r, const char *path);
/* Same, choosing whether stride-1 3x3 convolutions use Winograd F(2x2,3x3)
 * (lib/nn/winograd.h; its transformed weights, 16/9 the size, replace the
 * plain ones): 1 yes (what glad_resnet_load does), 0 im2col + GEMM. */
int glad_resnet_load_winograd(glad_resnet **r, const char *path, int winograd);
void glad_resnet_free(glad_resnet *r);
int glad_resnet_nlayers(const glad_resnet *r);        /* 3, or 4 when layer4 is present */
/* output shape of layer L (1-based: 1..nlayers) for an H x W input */
int glad_resnet_out_shape(const glad_resnet *r, int L, int H, int W, int *C, int *h, int *w);
/* x (B,3,H,W), already ImageNet-normalised by the caller. For the nl 1-based layer
 * indices in layers[], out[i] (caller-allocated, B*C*h*w) receives that layer's output.
 * Stops after the deepest requested layer. Records are computed one by one, so a
 * record's output does not depend on the others in the batch. Runs on the
 * OpenMP threads (results agree across thread counts up to rounding). The
 * scratch buffers live in r: one forward at a time per model. */
int glad_resnet_forward(glad_resnet *r, const float *x, int B, int H, int W, int nl, const int *layers, float **out);
/* Multiply-adds x 2 of one record's forward up to layer L (1-based) at H x W,
 * counted as direct convolutions (Winograd does fewer). */
double glad_resnet_flops(const glad_resnet *r, int L, int H, int W);

#endif
