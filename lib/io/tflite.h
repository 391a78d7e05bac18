/* tflite.h - a reader for TensorFlow Lite model files (FlatBuffers, file
 * identifier "TFL3"), parsed by hand against tensorflow/lite/schema/schema.fbs:
 * subgraph 0's tensors, operators and their builtin options, with every
 * constant tensor dequantised to float32 at load. It is not an interpreter
 * (models/mobilenet.c runs a graph) and knows only the operators a float
 * MobileNet-style graph needs; any other operator gives GLAD_EUNSUPPORTED. */
#ifndef GLAD_TFLITE_H
#define GLAD_TFLITE_H

#include "core/glad.h"

#define GLAD_TFLITE_MAX_DIMS 8
#define GLAD_TFLITE_MAX_IO 8      /* inputs / outputs per operator */

/* schema.fbs enum BuiltinOperator (the subset we read) */
enum {
    GLAD_TFL_ADD = 0, GLAD_TFL_AVERAGE_POOL_2D = 1, GLAD_TFL_CONV_2D = 3, GLAD_TFL_DEPTHWISE_CONV_2D = 4,
    GLAD_TFL_DEQUANTIZE = 6, GLAD_TFL_FULLY_CONNECTED = 9, GLAD_TFL_RESHAPE = 22, GLAD_TFL_SOFTMAX = 25,
    GLAD_TFL_PAD = 34, GLAD_TFL_MEAN = 40, GLAD_TFL_QUANTIZE = 114
};
/* schema.fbs enum TensorType */
enum {
    GLAD_TFL_FLOAT32 = 0, GLAD_TFL_FLOAT16 = 1, GLAD_TFL_INT32 = 2, GLAD_TFL_UINT8 = 3, GLAD_TFL_INT64 = 4,
    GLAD_TFL_STRING = 5, GLAD_TFL_BOOL = 6, GLAD_TFL_INT16 = 7, GLAD_TFL_INT8 = 9
};
/* schema.fbs enum ActivationFunctionType (NONE, RELU, RELU_N1_TO_1, RELU6) and Padding */
enum { GLAD_TFL_ACT_NONE = 0, GLAD_TFL_ACT_RELU = 1, GLAD_TFL_ACT_RELU_N1_TO_1 = 2, GLAD_TFL_ACT_RELU6 = 3 };
enum { GLAD_TFL_PAD_SAME = 0, GLAD_TFL_PAD_VALID = 1 };

typedef struct {
    char *name;                       /* NUL-terminated copy ("" when absent) */
    int type;                         /* GLAD_TFL_FLOAT32, ... */
    int ndim;
    int shape[GLAD_TFLITE_MAX_DIMS];  /* as stored (the graph's static shape; -1 = unknown, activations only) */
    uint32_t buffer;                  /* index into Model.buffers */
    int nscale;                       /* quantisation: 0 = none */
    float *scale;                     /* nscale */
    int64_t *zero_point;              /* nscale (missing zero points are 0) */
    int qdim;                         /* quantized_dimension */
    float *data;                      /* constant tensors: numel floats, dequantised; NULL otherwise */
    size_t numel;                     /* elements of data (0 when not constant) */
    size_t raw_offset, raw_len;       /* where the constant's bytes lie in the file (0,0 if none) */
} glad_tflite_tensor;

typedef struct {
    int code;                         /* builtin operator (GLAD_TFL_CONV_2D, ...) */
    int nin, nout;
    int in[GLAD_TFLITE_MAX_IO], out[GLAD_TFLITE_MAX_IO];   /* tensor indices, -1 = optional absent */
    /* builtin options (those the op has; the rest stay at their defaults) */
    int padding;                      /* GLAD_TFL_PAD_SAME / _VALID */
    int stride_w, stride_h;
    int dilation_w, dilation_h;       /* default 1 */
    int filter_w, filter_h;           /* pooling */
    int depth_multiplier;             /* default 1 */
    int act;                          /* fused activation */
    int keep_dims;                    /* MEAN */
    float beta;                       /* SOFTMAX (default 1) */
    int nnew_shape;                   /* RESHAPE option new_shape (0 = absent) */
    int new_shape[GLAD_TFLITE_MAX_DIMS];
} glad_tflite_op;

typedef struct {
    uint32_t version;                 /* schema version (3) */
    int ntensors, nops, nin, nout;
    glad_tflite_tensor *tensors;
    glad_tflite_op *ops;              /* in execution order */
    int *inputs, *outputs;            /* subgraph inputs / outputs (tensor indices) */
} glad_tflite_model;

/* Parse a model from memory (the bytes are not kept) or from a file. Every
 * offset, length, vtable entry, string and buffer is checked against the
 * size: a truncated or corrupt file gives GLAD_EFORMAT, an operator or
 * tensor type outside the subset GLAD_EUNSUPPORTED, each with
 * glad_error_detail() saying where (prefixed with the path by
 * glad_tflite_load). Constants are not checked for NaN or inf here
 * (glad_mobilenet_from_model does). */
int glad_tflite_parse(glad_tflite_model **m, const uint8_t *buf, size_t len);
int glad_tflite_load(glad_tflite_model **m, const char *path);
void glad_tflite_free(glad_tflite_model *m);

/* "CONV_2D", ... for the operators above; "op N" otherwise (static storage for known ones) */
const char *glad_tflite_op_name(int code);

#endif
