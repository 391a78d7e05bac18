/* mobilenet.h - a pretrained MobileNetV2 read from a .tflite file (lib/io/tflite.h)
 * and run as a float32 graph with TFLite semantics (NHWC, TF "SAME"
 * padding, fused ReLU6; QUANTIZE / DEQUANTIZE are identities): the outputs of
 * chosen inverted-residual blocks as anomaly-detection features, and the
 * ImageNet classifier. Blocks are found in the graph, not hard-coded: a block
 * ends with a 1x1 CONV_2D without activation that follows a depthwise conv
 * (the linear projection), or with the residual ADD that consumes it.
 * Not a general TFLite interpreter: only the operators of tflite.h. */
#ifndef GLAD_MOBILENET_H
#define GLAD_MOBILENET_H

#include "core/glad.h"
#include "io/tflite.h"

#define GLAD_MOBILENET_MAX_BLOCKS 64

typedef struct glad_mobilenet glad_mobilenet;

/* Load a .tflite file. Errors: a negative code with glad_error_detail()
 * naming the file and what is wrong (the operator, or the tensor: constants
 * must be finite, GLAD_ENAN otherwise). */
int glad_mobilenet_load(glad_mobilenet **m, const char *tflite_path);
/* the same from a parsed model, which m then owns (freed on failure too);
 * path only names it in messages (may be NULL) */
int glad_mobilenet_from_model(glad_mobilenet **m, glad_tflite_model *model, const char *path);
void glad_mobilenet_free(glad_mobilenet *m);
int glad_mobilenet_nblocks(const glad_mobilenet *m);                 /* 17 for MobileNetV2 */
/* default feature blocks: the last block at stride 8 and the last at stride
 * 16 (5 and 12 for MobileNetV2); writes them to blocks (room for 2), returns the count */
int glad_mobilenet_default_blocks(const glad_mobilenet *m, int *blocks);
/* channels, output stride of block blk (0..nblocks-1), or a negative code */
int glad_mobilenet_block_channels(const glad_mobilenet *m, int blk);
int glad_mobilenet_block_stride(const glad_mobilenet *m, int blk);
/* (C,h,w) of block blk's output for an H x W input */
int glad_mobilenet_out_shape(const glad_mobilenet *m, int blk, int H, int W, int *C, int *h, int *w);
/* x (3,H,W) CHW in [-1,1] (one image), H and W multiples of 32 (other sizes
 * run too, with TF "SAME" rounding). out[i] caller-allocated (C,h,w) for block
 * blocks[i]. Stops after the deepest requested block. */
int glad_mobilenet_features(glad_mobilenet *m, const float *x, int H, int W, int nb, const int *blocks, float **out);
/* classifier: x (3,H,W) in [-1,1], H = W = 224 (the graph's reshape fixes
 * the size); probs caller-allocated, glad_mobilenet_nclasses(m) floats (1001,
 * class 0 = background) */
int glad_mobilenet_nclasses(const glad_mobilenet *m);
int glad_mobilenet_classify(glad_mobilenet *m, const float *x, int H, int W, float *probs);
/* multiply-accumulates x 2 of the last run (for GFLOP/s) */
double glad_mobilenet_last_flops(const glad_mobilenet *m);

#endif
