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
/* The same outputs as glad_resnet_forward up to float rounding (rel ~1e-6),
 * computed the whole batch a layer at a time through lib/nn's convolutions
 * (glad_conv2d_forward: its AVX-512 1x1 and Winograd F(4x4,3x3) kernels
 * where the CPU has them, faster than the record path's OpenBLAS GEMMs), for
 * DDAD's frozen copy during adaptation. Each record is still computed alone
 * (outputs do not depend on the batch); memory grows with B (five
 * activations of the batch, kept in r for the next call). Needs the plain
 * 3x3 weights: a model from glad_resnet_load_winograd(.., 0); one holding
 * Winograd weights runs glad_resnet_forward instead. */
int glad_resnet_forward_batch(glad_resnet *r, const float *x, int B, int H, int W, int nl, const int *layers, float **out);
/* Multiply-adds x 2 of one record's forward up to layer L (1-based) at H x W,
 * counted as direct convolutions (Winograd does fewer). */
double glad_resnet_flops(const glad_resnet *r, int L, int H, int W);

/* ---- Training (DDAD's domain adaptation, ../shared/spec/reference-algorithms.md
 * §2.4): the network with its BatchNorm unfolded, in torchvision's train()
 * mode: every BatchNorm normalises with the batch's statistics (biased
 * variance, eps 1e-5) and, when asked, moves its running estimates as
 * PyTorch does (momentum 0.1, unbiased variance, num_batches_tracked + 1).
 * Gradients of every conv weight (and conv bias when the file has one) and
 * BatchNorm weight and bias, and optionally of the input. The adapted
 * network goes back to glad_resnet through glad_resnet_train_save +
 * glad_resnet_load. One forward/backward at a time per model. */
typedef struct glad_resnet_train glad_resnet_train;
/* tapes: records of forwards kept for their backwards at the same time
 * (DDAD differentiates two forwards per step, each with its own batch) */
#define GLAD_RESNET_TAPES 2
/* one tensor of the file: trained parameters have grad (same layout),
 * running statistics have grad NULL; data and grad point into the model */
typedef struct { const char *name; float *data, *grad; size_t n; int ndim; int64_t shape[4]; } glad_resnet_tensor;

/* Same files, checks and structure rules as glad_resnet_load. */
int glad_resnet_train_load(glad_resnet_train **t, const char *path);
void glad_resnet_train_free(glad_resnet_train *t);
int glad_resnet_train_nlayers(const glad_resnet_train *t);
int glad_resnet_train_out_shape(glad_resnet_train *t, int L, int H, int W, int *C, int *h, int *w);
/* x (B,3,H,W): as glad_resnet_forward (out[i] receives layer layers[i]; nl may
 * be 0), but the whole batch at once in train mode, recording on tape `tape`
 * (0..GLAD_RESNET_TAPES-1, replacing that tape's last forward) what the
 * backward needs; update_stats 1 moves the running statistics (PyTorch's
 * train() forward), 0 leaves them (for finite differences). A batch with one
 * value per channel in some BatchNorm is GLAD_EINVAL. The parameters must not
 * change between a forward and its backward. */
int glad_resnet_train_forward(glad_resnet_train *t, int tape, const float *x, int B, int H, int W, int nl, const int *layers,
                              float **out, int update_stats);
/* Backward of the last forward on `tape`: dout[i] (the shape of layer
 * layers[i], a layer that forward computed) is the loss gradient of that
 * layer's output. Accumulates (+=) every parameter gradient and dx (B,3,H,W;
 * NULL: no input gradient). May run again on the same forward. */
int glad_resnet_train_backward(glad_resnet_train *t, int tape, int nl, const int *layers, const float *const *dout, float *dx);
void glad_resnet_train_zero_grad(glad_resnet_train *t);
/* the tensors in file order (torchvision names; num_batches_tracked aside) */
int glad_resnet_train_ntensors(const glad_resnet_train *t);
int glad_resnet_train_tensor(glad_resnet_train *t, int i, glad_resnet_tensor *out);
int glad_resnet_train_find(glad_resnet_train *t, const char *name, glad_resnet_tensor *out);   /* GLAD_ENOTFOUND */
/* all trained parameters as one flat array (file order) and their gradients,
 * for an optimiser (glad_adam_step) */
float *glad_resnet_train_params(glad_resnet_train *t, float **grads, size_t *n);
/* safetensors that glad_resnet_load and torchvision's load_state_dict read:
 * every tensor with the running statistics and num_batches_tracked (int64
 * scalars, counted from 0 when the source had none), the source's config
 * metadata */
int glad_resnet_train_save(const glad_resnet_train *t, const char *path);

#endif
