/* tflite.c - TFLite FlatBuffer reader, by hand (no generated code). A
 * FlatBuffer is a tree of tables reached through 32-bit offsets:
 *   root:   u32 at byte 0 = offset of the root table (Model); bytes 4..8 "TFL3"
 *   table:  i32 soffset at its start; vtable = table - soffset; the vtable is
 *           u16 vtable_bytes, u16 table_bytes, then one u16 per field id:
 *           the field's offset from the table start (0 = absent, default)
 *   offset fields (tables, vectors, strings) hold a u32 added to their own
 *           position; a vector / string is a u32 length followed by elements.
 * Every one of those numbers is checked against the buffer size before it is
 * used, and the total memory the parse allocates is capped at a multiple of
 * the file size, so tables aliasing one huge vector cannot blow up memory.
 * Field ids below are those of tensorflow/lite/schema/schema.fbs (0-based
 * order of declaration; a union takes two ids: its _type byte, then the value). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/tflite.h"

/* schema.fbs field ids */
enum { MODEL_VERSION = 0, MODEL_OPERATOR_CODES = 1, MODEL_SUBGRAPHS = 2, MODEL_BUFFERS = 4 };
enum { OPCODE_DEPRECATED_BUILTIN = 0, OPCODE_CUSTOM = 1, OPCODE_BUILTIN = 3 };  /* builtin_code: int32, newer files */
enum { SG_TENSORS = 0, SG_INPUTS = 1, SG_OUTPUTS = 2, SG_OPERATORS = 3 };
enum { BUF_DATA = 0, BUF_OFFSET = 1, BUF_SIZE = 2 };   /* offset/size (ulong): data appended after a >2 GB flatbuffer */
enum { TEN_SHAPE = 0, TEN_TYPE = 1, TEN_BUFFER = 2, TEN_NAME = 3, TEN_QUANT = 4 };
enum { Q_SCALE = 2, Q_ZERO_POINT = 3, Q_DIM = 6 };     /* min 0, max 1, details_type 4, details 5 */
enum { OP_OPCODE = 0, OP_INPUTS = 1, OP_OUTPUTS = 2, OP_OPTIONS_TYPE = 3, OP_OPTIONS = 4 };
/* BuiltinOptions union type ids (1-based order in the union) */
enum { BO_CONV2D = 1, BO_DEPTHWISE = 2, BO_POOL2D = 5, BO_FC = 8, BO_SOFTMAX = 9, BO_ADD = 11, BO_RESHAPE = 17,
       BO_PAD = 22, BO_REDUCER = 27, BO_DEQUANTIZE = 38 };

typedef struct {
    const uint8_t *b;
    size_t n;
    size_t budget;     /* bytes the parse may still allocate */
} rd;

typedef struct { size_t pos, vt; unsigned vtlen, tlen; } tbl;

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t u64(const uint8_t *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }
static float f32(const uint8_t *p) { uint32_t v = u32(p); float f; memcpy(&f, &v, 4); return f; }

/* [pos, pos+k) inside the buffer */
static int inside(const rd *r, size_t pos, size_t k) { return pos <= r->n && r->n - pos >= k; }

/* allocate count*size zeroed bytes from the parse's budget */
static int take(rd *r, void **p, size_t count, size_t size)
{
    size_t nb;
    *p = NULL;
    if (glad_mul_size(count, size, &nb) || nb > r->budget || nb > GLAD_MAX_ALLOC)
        return glad_fail(GLAD_EFORMAT, "declared sizes exceed what the file can hold");
    r->budget -= nb;
    if (nb == 0) return 0;
    *p = calloc(1, nb);
    return *p ? 0 : glad_fail(GLAD_ENOMEM, "out of memory");
}

static int table_at(rd *r, size_t pos, tbl *t, const char *what)
{
    if (!inside(r, pos, 4)) return glad_fail(GLAD_EFORMAT, "%s: table offset %zu outside the file", what, pos);
    int64_t vt = (int64_t)pos - (int32_t)u32(r->b + pos);
    if (vt < 0 || !inside(r, (size_t)vt, 4)) return glad_fail(GLAD_EFORMAT, "%s: vtable outside the file", what);
    t->pos = pos;
    t->vt = (size_t)vt;
    t->vtlen = u16(r->b + vt);
    t->tlen = u16(r->b + vt + 2);
    if (t->vtlen < 4 || (t->vtlen & 1) || !inside(r, t->vt, t->vtlen))
        return glad_fail(GLAD_EFORMAT, "%s: bad vtable size %u", what, t->vtlen);
    if (t->tlen < 4 || !inside(r, pos, t->tlen)) return glad_fail(GLAD_EFORMAT, "%s: bad table size %u", what, t->tlen);
    return 0;
}

/* position of field id (size bytes) or 0 when absent */
static int field(rd *r, const tbl *t, int id, size_t size, size_t *pos, const char *what)
{
    *pos = 0;
    if (4u + 2u * (unsigned)id + 2u > t->vtlen) return 0;
    unsigned off = u16(r->b + t->vt + 4 + 2 * id);
    if (off == 0) return 0;
    if (off < 4 || off + size > t->tlen) return glad_fail(GLAD_EFORMAT, "%s: field %d outside its table", what, id);
    *pos = t->pos + off;
    return 0;
}

static int get_u8(rd *r, const tbl *t, int id, int def, int *v, const char *what)
{
    size_t p;
    GLAD_TRY(field(r, t, id, 1, &p, what));
    *v = p ? r->b[p] : def;
    return 0;
}
static int get_i8(rd *r, const tbl *t, int id, int def, int *v, const char *what)
{
    size_t p;
    GLAD_TRY(field(r, t, id, 1, &p, what));
    *v = p ? (int)(int8_t)r->b[p] : def;
    return 0;
}
static int get_i32(rd *r, const tbl *t, int id, int32_t def, int32_t *v, const char *what)
{
    size_t p;
    GLAD_TRY(field(r, t, id, 4, &p, what));
    *v = p ? (int32_t)u32(r->b + p) : def;
    return 0;
}
static int get_u64(rd *r, const tbl *t, int id, uint64_t *v, const char *what)
{
    size_t p;
    GLAD_TRY(field(r, t, id, 8, &p, what));
    *v = p ? u64(r->b + p) : 0;
    return 0;
}

/* follow the offset stored at field id: *pos = target (0 when absent) */
static int get_ref(rd *r, const tbl *t, int id, size_t *pos, const char *what)
{
    size_t p;
    GLAD_TRY(field(r, t, id, 4, &p, what));
    *pos = 0;
    if (!p) return 0;
    size_t q = p + u32(r->b + p);
    if (!inside(r, q, 4)) return glad_fail(GLAD_EFORMAT, "%s: field %d points outside the file", what, id);
    *pos = q;
    return 0;
}

static int get_table(rd *r, const tbl *t, int id, tbl *sub, int *present, const char *what)
{
    size_t q;
    GLAD_TRY(get_ref(r, t, id, &q, what));
    *present = q != 0;
    return q ? table_at(r, q, sub, what) : 0;
}

/* vector of elem-byte elements: *data = first element, *len (0, 0 when absent) */
static int get_vec(rd *r, const tbl *t, int id, size_t elem, size_t *data, size_t *len, const char *what)
{
    size_t q;
    GLAD_TRY(get_ref(r, t, id, &q, what));
    *data = 0;
    *len = 0;
    if (!q) return 0;
    size_t l = u32(r->b + q);
    if ((r->n - q - 4) / elem < l) return glad_fail(GLAD_EFORMAT, "%s: vector of %zu elements runs past the end of the file", what, l);
    *data = q + 4;
    *len = l;
    return 0;
}

/* element i of a vector of tables */
static int vec_table(rd *r, size_t data, size_t i, tbl *t, const char *what)
{
    size_t p = data + 4 * i;
    return table_at(r, p + u32(r->b + p), t, what);
}

/* int32 vector into dst (at most cap entries, else EUNSUPPORTED), each in [lo, hi] */
static int get_ints(rd *r, const tbl *t, int id, int *dst, int cap, int *n, int lo, int hi, const char *what)
{
    size_t d, l;
    GLAD_TRY(get_vec(r, t, id, 4, &d, &l, what));
    if (l > (size_t)cap) return glad_fail(GLAD_EUNSUPPORTED, "%s: %zu entries (at most %d supported)", what, l, cap);
    for (size_t i = 0; i < l; i++) {
        int32_t v = (int32_t)u32(r->b + d + 4 * i);
        if (v < lo || v > hi) return glad_fail(GLAD_EFORMAT, "%s: entry %d out of range", what, v);
        dst[i] = v;
    }
    *n = (int)l;
    return 0;
}

static int get_string(rd *r, const tbl *t, int id, char **s, const char *what)
{
    size_t d, l;
    GLAD_TRY(get_vec(r, t, id, 1, &d, &l, what));
    GLAD_TRY(take(r, (void **)s, l + 1, 1));
    if (l) memcpy(*s, r->b + d, l);
    return 0;
}

/* ---- operator names (schema.fbs enum BuiltinOperator, codes 0..127) ---- */
static const char *const op_names[] = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE",
    "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU",
    "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH",
    "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB",
    "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP",
    "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM",
    "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE",
    "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT",
    "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR",
    "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE",
    "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE",
    "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK",
    "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF",
    "WHILE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2", "DENSIFY",
    "SEGMENT_SUM", "BATCH_MATMUL",
};

const char *glad_tflite_op_name(int code)
{
    if (code >= 0 && code < (int)(sizeof op_names / sizeof *op_names)) return op_names[code];
    return "(builtin operator beyond the known list)";
}

static int supported_op(int c)
{
    switch (c) {
    case GLAD_TFL_ADD: case GLAD_TFL_AVERAGE_POOL_2D: case GLAD_TFL_CONV_2D: case GLAD_TFL_DEPTHWISE_CONV_2D:
    case GLAD_TFL_DEQUANTIZE: case GLAD_TFL_FULLY_CONNECTED: case GLAD_TFL_RESHAPE: case GLAD_TFL_SOFTMAX:
    case GLAD_TFL_PAD: case GLAD_TFL_MEAN: case GLAD_TFL_QUANTIZE: return 1;
    default: return 0;
    }
}

static size_t type_size(int t)
{
    switch (t) {
    case GLAD_TFL_FLOAT32: case GLAD_TFL_INT32: return 4;
    case GLAD_TFL_FLOAT16: case GLAD_TFL_INT16: return 2;
    case GLAD_TFL_UINT8: case GLAD_TFL_INT8: case GLAD_TFL_BOOL: return 1;
    case GLAD_TFL_INT64: return 8;
    default: return 0;
    }
}

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, v;
    if (e == 0) {              /* zero / subnormal: m * 2^-24 */
        float f = (float)m * (1.0f / 16777216.0f);
        return s ? -f : f;
    }
    if (e == 31) v = s | 0x7f800000u | m << 13;
    else v = s | (e + 112) << 23 | m << 13;
    float f;
    memcpy(&f, &v, 4);
    return f;
}

/* raw element i of a constant as a double */
static double raw_value(const uint8_t *p, int type, size_t i)
{
    switch (type) {
    case GLAD_TFL_FLOAT32: return f32(p + 4 * i);
    case GLAD_TFL_FLOAT16: return half_to_float(u16(p + 2 * i));
    case GLAD_TFL_INT32: return (int32_t)u32(p + 4 * i);
    case GLAD_TFL_INT16: return (int16_t)u16(p + 2 * i);
    case GLAD_TFL_UINT8: case GLAD_TFL_BOOL: return p[i];
    case GLAD_TFL_INT8: return (int8_t)p[i];
    case GLAD_TFL_INT64: return (double)(int64_t)u64(p + 8 * i);
    default: return 0;
    }
}

typedef struct { size_t off, len; } bufref;

static int read_tensor(rd *r, const tbl *t, glad_tflite_tensor *x, size_t nbuf, int idx)
{
    char what[64];
    snprintf(what, sizeof what, "tensor %d", idx);
    /* -1 (unknown) only makes sense for activations: a constant's shape must match its bytes */
    GLAD_TRY(get_ints(r, t, TEN_SHAPE, x->shape, GLAD_TFLITE_MAX_DIMS, &x->ndim, -1, INT32_MAX, what));
    GLAD_TRY(get_i8(r, t, TEN_TYPE, GLAD_TFL_FLOAT32, &x->type, what));
    int32_t b;
    GLAD_TRY(get_i32(r, t, TEN_BUFFER, 0, &b, what));
    x->buffer = (uint32_t)b;
    if ((size_t)x->buffer >= nbuf && x->buffer != 0)
        return glad_fail(GLAD_EFORMAT, "%s: buffer index %u of %zu", what, x->buffer, nbuf);
    GLAD_TRY(get_string(r, t, TEN_NAME, &x->name, what));
    tbl q;
    int has_q;
    GLAD_TRY(get_table(r, t, TEN_QUANT, &q, &has_q, what));
    x->qdim = 0;
    if (!has_q) return 0;
    size_t sd, sl, zd, zl;
    GLAD_TRY(get_vec(r, &q, Q_SCALE, 4, &sd, &sl, what));
    GLAD_TRY(get_vec(r, &q, Q_ZERO_POINT, 8, &zd, &zl, what));
    int32_t qd;
    GLAD_TRY(get_i32(r, &q, Q_DIM, 0, &qd, what));
    if (sl == 0) return 0;    /* min/max only, or custom details: not a linear quantisation */
    if (zl != 0 && zl != 1 && zl != sl) return glad_fail(GLAD_EFORMAT, "%s: %zu scales but %zu zero points", what, sl, zl);
    if (qd < 0 || (sl > 1 && qd >= x->ndim)) return glad_fail(GLAD_EFORMAT, "%s: quantized_dimension %d", what, qd);
    GLAD_TRY(take(r, (void **)&x->scale, sl, sizeof(float)));
    GLAD_TRY(take(r, (void **)&x->zero_point, sl, sizeof(int64_t)));
    for (size_t i = 0; i < sl; i++) {
        x->scale[i] = f32(r->b + sd + 4 * i);
        x->zero_point[i] = zl == 0 ? 0 : (int64_t)u64(r->b + zd + 8 * (zl == 1 ? 0 : i));
    }
    x->nscale = (int)sl;
    x->qdim = qd;
    return 0;
}

/* f = scale[c] * (q - zero_point[c]), c = index along quantized_dimension */
static int dequantise(rd *r, glad_tflite_tensor *x, const bufref *br, int idx)
{
    size_t es = type_size(x->type), numel = 1;
    if (!es) return glad_fail(GLAD_EUNSUPPORTED, "tensor %d ('%s'): constant of type %d", idx, x->name, x->type);
    for (int d = 0; d < x->ndim; d++)
        if (x->shape[d] < 0 || glad_mul_size(numel, (size_t)x->shape[d], &numel))
            return glad_fail(GLAD_EFORMAT, "tensor %d: constant with shape entry %d", idx, x->shape[d]);
    if (numel > br->len / es || numel * es != br->len)
        return glad_fail(GLAD_EFORMAT, "tensor %d ('%s'): %zu bytes of data for %zu elements of %zu bytes", idx, x->name, br->len, numel, es);
    if (x->nscale > 1 && x->shape[x->qdim] != x->nscale)
        return glad_fail(GLAD_EFORMAT, "tensor %d ('%s'): %d scales along a dimension of %d", idx, x->name, x->nscale, x->shape[x->qdim]);
    GLAD_TRY(take(r, (void **)&x->data, numel ? numel : 1, sizeof(float)));
    x->numel = numel;
    x->raw_offset = br->off;
    x->raw_len = br->len;
    const uint8_t *p = r->b + br->off;
    int quant = x->nscale > 0 && x->type != GLAD_TFL_FLOAT32 && x->type != GLAD_TFL_FLOAT16;
    if (!quant) {
        for (size_t i = 0; i < numel; i++) x->data[i] = (float)raw_value(p, x->type, i);
        return 0;
    }
    /* element i = (outer, c, k) with c along quantized_dimension and k over the inner dims */
    size_t inner = 1, nc = (size_t)x->nscale;
    for (int d = x->qdim + 1; nc > 1 && d < x->ndim; d++) inner *= (size_t)x->shape[d];
    if (nc == 1) inner = numel;
    size_t blk = nc * inner, outer = blk > 0 ? numel / blk : 0;
    for (size_t o = 0, i = 0; o < outer; o++)
        for (size_t c = 0; c < nc; c++) {
            float sc = x->scale[c], zp = (float)x->zero_point[c];
            float *dst = x->data + i;
            if (x->type == GLAD_TFL_UINT8) for (size_t k = 0; k < inner; k++) dst[k] = sc * ((float)p[i + k] - zp);
            else if (x->type == GLAD_TFL_INT8) for (size_t k = 0; k < inner; k++) dst[k] = sc * ((float)(int8_t)p[i + k] - zp);
            else for (size_t k = 0; k < inner; k++) dst[k] = (float)((double)sc * (raw_value(p, x->type, i + k) - (double)x->zero_point[c]));
            i += inner;
        }
    return 0;
}

static int read_options(rd *r, const tbl *ot, int type, glad_tflite_op *op, int idx)
{
    char what[64];
    snprintf(what, sizeof what, "operator %d (%s) options", idx, glad_tflite_op_name(op->code));
    int32_t v;
    int e;
    switch (op->code) {
    case GLAD_TFL_CONV_2D:            /* Conv2DOptions: padding 0, stride_w 1, stride_h 2, act 3, dilation_w 4, dilation_h 5 */
    case GLAD_TFL_DEPTHWISE_CONV_2D:  /* DepthwiseConv2DOptions: padding 0, stride_w 1, stride_h 2, depth_multiplier 3, act 4, dilation_w 5, dilation_h 6 */
    {
        int dw = op->code == GLAD_TFL_DEPTHWISE_CONV_2D;
        if (type != (dw ? BO_DEPTHWISE : BO_CONV2D)) return glad_fail(GLAD_EFORMAT, "%s: wrong options type %d", what, type);
        GLAD_TRY(get_i8(r, ot, 0, 0, &op->padding, what));
        GLAD_TRY(get_i32(r, ot, 1, 0, &v, what)); op->stride_w = v;
        GLAD_TRY(get_i32(r, ot, 2, 0, &v, what)); op->stride_h = v;
        if (dw) { GLAD_TRY(get_i32(r, ot, 3, 0, &v, what)); op->depth_multiplier = v; }
        GLAD_TRY(get_i8(r, ot, dw ? 4 : 3, 0, &op->act, what));
        GLAD_TRY(get_i32(r, ot, dw ? 5 : 4, 1, &v, what)); op->dilation_w = v;
        GLAD_TRY(get_i32(r, ot, dw ? 6 : 5, 1, &v, what)); op->dilation_h = v;
        break;
    }
    case GLAD_TFL_AVERAGE_POOL_2D:    /* Pool2DOptions: padding 0, stride_w 1, stride_h 2, filter_width 3, filter_height 4, act 5 */
        if (type != BO_POOL2D) return glad_fail(GLAD_EFORMAT, "%s: wrong options type %d", what, type);
        GLAD_TRY(get_i8(r, ot, 0, 0, &op->padding, what));
        GLAD_TRY(get_i32(r, ot, 1, 0, &v, what)); op->stride_w = v;
        GLAD_TRY(get_i32(r, ot, 2, 0, &v, what)); op->stride_h = v;
        GLAD_TRY(get_i32(r, ot, 3, 0, &v, what)); op->filter_w = v;
        GLAD_TRY(get_i32(r, ot, 4, 0, &v, what)); op->filter_h = v;
        GLAD_TRY(get_i8(r, ot, 5, 0, &op->act, what));
        if (op->filter_w < 1 || op->filter_h < 1 || op->filter_w > 65536 || op->filter_h > 65536) return glad_fail(GLAD_EFORMAT, "%s: filter %dx%d", what, op->filter_h, op->filter_w);
        break;
    case GLAD_TFL_FULLY_CONNECTED:    /* FullyConnectedOptions: act 0, weights_format 1 (DEFAULT = 0 only) */
        if (type != BO_FC) return glad_fail(GLAD_EFORMAT, "%s: wrong options type %d", what, type);
        GLAD_TRY(get_i8(r, ot, 0, 0, &op->act, what));
        GLAD_TRY(get_i8(r, ot, 1, 0, &e, what));
        if (e != 0) return glad_fail(GLAD_EUNSUPPORTED, "%s: shuffled weights format", what);
        break;
    case GLAD_TFL_ADD:                /* AddOptions: act 0 */
        if (type != BO_ADD) return glad_fail(GLAD_EFORMAT, "%s: wrong options type %d", what, type);
        GLAD_TRY(get_i8(r, ot, 0, 0, &op->act, what));
        break;
    case GLAD_TFL_SOFTMAX:            /* SoftmaxOptions: beta 0 (float) */
    {
        size_t p;
        if (type != BO_SOFTMAX) return glad_fail(GLAD_EFORMAT, "%s: wrong options type %d", what, type);
        GLAD_TRY(field(r, ot, 0, 4, &p, what));
        op->beta = p ? f32(r->b + p) : 0.0f;
        if (!(op->beta == op->beta) || op->beta > 1e30f || op->beta < -1e30f) return glad_fail(GLAD_EFORMAT, "%s: beta not finite", what);
        break;
    }
    case GLAD_TFL_MEAN:               /* ReducerOptions: keep_dims 0 (bool) */
        if (type != BO_REDUCER) return glad_fail(GLAD_EFORMAT, "%s: wrong options type %d", what, type);
        GLAD_TRY(get_u8(r, ot, 0, 0, &op->keep_dims, what));
        op->keep_dims = op->keep_dims != 0;
        break;
    case GLAD_TFL_RESHAPE:            /* ReshapeOptions: new_shape 0 ([int], -1 = inferred) */
        if (type != BO_RESHAPE) return glad_fail(GLAD_EFORMAT, "%s: wrong options type %d", what, type);
        GLAD_TRY(get_ints(r, ot, 0, op->new_shape, GLAD_TFLITE_MAX_DIMS, &op->nnew_shape, -1, INT32_MAX, what));
        break;
    default:                          /* PAD, QUANTIZE, DEQUANTIZE: empty options tables */
        break;
    }
    if (op->padding != GLAD_TFL_PAD_SAME && op->padding != GLAD_TFL_PAD_VALID) return glad_fail(GLAD_EFORMAT, "%s: padding %d", what, op->padding);
    if (op->act < 0 || op->act > GLAD_TFL_ACT_RELU6) return glad_fail(GLAD_EUNSUPPORTED, "%s: fused activation %d", what, op->act);
    return 0;
}

static int op_defaults_check(const glad_tflite_op *op, int idx)
{
    int conv = op->code == GLAD_TFL_CONV_2D || op->code == GLAD_TFL_DEPTHWISE_CONV_2D || op->code == GLAD_TFL_AVERAGE_POOL_2D;
    if (conv && (op->stride_w < 1 || op->stride_h < 1 || op->dilation_w < 1 || op->dilation_h < 1 ||
                 op->stride_w > 1024 || op->stride_h > 1024 || op->dilation_w > 1024 || op->dilation_h > 1024))
        return glad_fail(GLAD_EFORMAT, "operator %d (%s): stride %dx%d dilation %dx%d", idx, glad_tflite_op_name(op->code),
                         op->stride_h, op->stride_w, op->dilation_h, op->dilation_w);
    if (op->depth_multiplier < 0) return glad_fail(GLAD_EFORMAT, "operator %d: depth_multiplier %d", idx, op->depth_multiplier);
    return 0;
}

static int parse(rd *r, glad_tflite_model *m)
{
    if (r->n < 8) return glad_fail(GLAD_EFORMAT, "file of %zu bytes is too short for a TFLite model", r->n);
    if (memcmp(r->b + 4, "TFL3", 4) != 0) return glad_fail(GLAD_EFORMAT, "not a TFLite model (no TFL3 identifier at byte 4)");
    tbl model, sg;
    GLAD_TRY(table_at(r, u32(r->b), &model, "Model"));
    int32_t ver;
    GLAD_TRY(get_i32(r, &model, MODEL_VERSION, 0, &ver, "Model"));
    m->version = (uint32_t)ver;

    /* operator codes: TFLite's own reader takes max(deprecated_builtin_code, builtin_code) */
    size_t cd, cl;
    int *codes = NULL;
    bufref *bufs = NULL;
    int rc;
    GLAD_TRY(get_vec(r, &model, MODEL_OPERATOR_CODES, 4, &cd, &cl, "Model.operator_codes"));
    GLAD_TRY(take(r, (void **)&codes, cl ? cl : 1, sizeof(int)));
    for (size_t i = 0; i < cl; i++) {
        tbl oc;
        int dep;
        int32_t bc;
        GLAD_TRYG(rc, vec_table(r, cd, i, &oc, "OperatorCode"), out);
        GLAD_TRYG(rc, get_i8(r, &oc, OPCODE_DEPRECATED_BUILTIN, 0, &dep, "OperatorCode"), out);
        GLAD_TRYG(rc, get_i32(r, &oc, OPCODE_BUILTIN, 0, &bc, "OperatorCode"), out);
        codes[i] = dep > bc ? dep : bc;
    }

    /* buffers: data [ubyte] (field 0) or, for files past 2 GB, offset/size (fields 1, 2) */
    size_t bd, bl;
    GLAD_TRYG(rc, get_vec(r, &model, MODEL_BUFFERS, 4, &bd, &bl, "Model.buffers"), out);
    GLAD_TRYG(rc, take(r, (void **)&bufs, bl ? bl : 1, sizeof *bufs), out);
    for (size_t i = 0; i < bl; i++) {
        tbl bt;
        uint64_t off, sz;
        GLAD_TRYG(rc, vec_table(r, bd, i, &bt, "Buffer"), out);
        GLAD_TRYG(rc, get_vec(r, &bt, BUF_DATA, 1, &bufs[i].off, &bufs[i].len, "Buffer.data"), out);
        GLAD_TRYG(rc, get_u64(r, &bt, BUF_OFFSET, &off, "Buffer"), out);
        GLAD_TRYG(rc, get_u64(r, &bt, BUF_SIZE, &sz, "Buffer"), out);
        if (off > 1 && bufs[i].len == 0) {    /* offset 1 is the converter's "not set" placeholder */
            if (off > r->n || sz > r->n - off) { rc = glad_fail(GLAD_EFORMAT, "buffer %zu: offset %llu size %llu outside the file", i, (unsigned long long)off, (unsigned long long)sz); goto out; }
            bufs[i].off = (size_t)off;
            bufs[i].len = (size_t)sz;
        }
    }

    /* subgraph 0 */
    size_t sd, sl;
    GLAD_TRYG(rc, get_vec(r, &model, MODEL_SUBGRAPHS, 4, &sd, &sl, "Model.subgraphs"), out);
    if (sl < 1) { rc = glad_fail(GLAD_EFORMAT, "model has no subgraph"); goto out; }
    GLAD_TRYG(rc, vec_table(r, sd, 0, &sg, "SubGraph"), out);

    size_t td, tl;
    GLAD_TRYG(rc, get_vec(r, &sg, SG_TENSORS, 4, &td, &tl, "SubGraph.tensors"), out);
    if (tl > INT32_MAX / 2) { rc = glad_fail(GLAD_EFORMAT, "too many tensors"); goto out; }
    GLAD_TRYG(rc, take(r, (void **)&m->tensors, tl ? tl : 1, sizeof *m->tensors), out);
    m->ntensors = (int)tl;
    for (size_t i = 0; i < tl; i++) {
        tbl tt;
        GLAD_TRYG(rc, vec_table(r, td, i, &tt, "Tensor"), out);
        GLAD_TRYG(rc, read_tensor(r, &tt, &m->tensors[i], bl, (int)i), out);
    }

    /* subgraph inputs / outputs */
    for (int io = 0; io < 2; io++) {
        size_t d, l;
        GLAD_TRYG(rc, get_vec(r, &sg, io ? SG_OUTPUTS : SG_INPUTS, 4, &d, &l, "SubGraph inputs/outputs"), out);
        int **dst = io ? &m->outputs : &m->inputs;
        GLAD_TRYG(rc, take(r, (void **)dst, l ? l : 1, sizeof(int)), out);
        for (size_t k = 0; k < l; k++) {
            int32_t v = (int32_t)u32(r->b + d + 4 * k);
            if (v < 0 || v >= m->ntensors) { rc = glad_fail(GLAD_EFORMAT, "subgraph %s %d: tensor %d of %d", io ? "output" : "input", (int)k, v, m->ntensors); goto out; }
            (*dst)[k] = v;
        }
        if (io) m->nout = (int)l; else m->nin = (int)l;
    }

    /* operators */
    size_t od, ol;
    GLAD_TRYG(rc, get_vec(r, &sg, SG_OPERATORS, 4, &od, &ol, "SubGraph.operators"), out);
    GLAD_TRYG(rc, take(r, (void **)&m->ops, ol ? ol : 1, sizeof *m->ops), out);
    m->nops = (int)ol;
    for (size_t i = 0; i < ol; i++) {
        tbl ot, opt;
        int32_t oi;
        int otype, has_opt;
        glad_tflite_op *op = &m->ops[i];
        char what[48];
        snprintf(what, sizeof what, "operator %zu", i);
        GLAD_TRYG(rc, vec_table(r, od, i, &ot, what), out);
        GLAD_TRYG(rc, get_i32(r, &ot, OP_OPCODE, 0, &oi, what), out);
        if (oi < 0 || (size_t)oi >= cl) { rc = glad_fail(GLAD_EFORMAT, "%s: opcode_index %d of %zu", what, oi, cl); goto out; }
        op->code = codes[oi];
        if (!supported_op(op->code)) {
            rc = glad_fail(GLAD_EUNSUPPORTED, "%s: operator %s (builtin code %d) is not supported", what, glad_tflite_op_name(op->code), op->code);
            goto out;
        }
        GLAD_TRYG(rc, get_ints(r, &ot, OP_INPUTS, op->in, GLAD_TFLITE_MAX_IO, &op->nin, -1, m->ntensors - 1, what), out);
        GLAD_TRYG(rc, get_ints(r, &ot, OP_OUTPUTS, op->out, GLAD_TFLITE_MAX_IO, &op->nout, -1, m->ntensors - 1, what), out);
        op->padding = GLAD_TFL_PAD_SAME;
        op->dilation_w = op->dilation_h = 1;
        op->depth_multiplier = 1;
        op->beta = 1.0f;
        GLAD_TRYG(rc, get_u8(r, &ot, OP_OPTIONS_TYPE, 0, &otype, what), out);
        GLAD_TRYG(rc, get_table(r, &ot, OP_OPTIONS, &opt, &has_opt, what), out);
        if (has_opt) GLAD_TRYG(rc, read_options(r, &opt, otype, op, (int)i), out);
        else if (op->code == GLAD_TFL_CONV_2D || op->code == GLAD_TFL_DEPTHWISE_CONV_2D || op->code == GLAD_TFL_AVERAGE_POOL_2D) {
            rc = glad_fail(GLAD_EFORMAT, "%s (%s): options missing", what, glad_tflite_op_name(op->code));
            goto out;
        }
        GLAD_TRYG(rc, op_defaults_check(op, (int)i), out);
    }

    /* constants, once the whole structure is known to be sound */
    for (int i = 0; i < m->ntensors; i++) {
        glad_tflite_tensor *x = &m->tensors[i];
        if (x->buffer == 0 || bufs[x->buffer].len == 0) continue;
        GLAD_TRYG(rc, dequantise(r, x, &bufs[x->buffer], i), out);
    }
    rc = 0;
out:
    free(codes);
    free(bufs);
    return rc;
}

void glad_tflite_free(glad_tflite_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->ntensors; i++) {
        free(m->tensors[i].name);
        free(m->tensors[i].scale);
        free(m->tensors[i].zero_point);
        free(m->tensors[i].data);
    }
    free(m->tensors);
    free(m->ops);
    free(m->inputs);
    free(m->outputs);
    free(m);
}

int glad_tflite_parse(glad_tflite_model **out, const uint8_t *buf, size_t len)
{
    *out = NULL;
    /* the largest legitimate growth is x4 (u8 weights to floats) plus small tables */
    rd r = {buf, len, 0};
    r.budget = len > (SIZE_MAX - (1u << 20)) / 16 ? SIZE_MAX : 16 * len + (1u << 20);
    glad_tflite_model *m = calloc(1, sizeof *m);
    if (!m) return glad_fail(GLAD_ENOMEM, "out of memory");
    int rc = parse(&r, m);
    if (rc) { glad_tflite_free(m); return rc; }
    *out = m;
    return 0;
}

int glad_tflite_load(glad_tflite_model **out, const char *path)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return glad_fail(GLAD_EIO, "%s: cannot open", path);
    uint8_t *buf = NULL;
    int rc;
    long sz;
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) { rc = glad_fail(GLAD_EIO, "%s: read error", path); goto done; }
    if ((uint64_t)sz > GLAD_MAX_ALLOC) { rc = glad_fail(GLAD_ERANGE, "%s: %ld bytes, more than a model may have", path, sz); goto done; }
    buf = malloc(sz ? (size_t)sz : 1);
    if (!buf) { rc = glad_fail(GLAD_ENOMEM, "%s: out of memory", path); goto done; }
    if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) { rc = glad_fail(GLAD_EIO, "%s: read error", path); goto done; }
    if ((rc = glad_tflite_parse(out, buf, (size_t)sz))) {   /* the parser's detail, prefixed with the path */
        char *d = glad_strfmt("%s: %s", path, glad_error_detail());
        if (d) glad_fail(rc, "%s", d);
        free(d);
    }
done:
    fclose(f);
    free(buf);
    return rc;
}
