/* tensor.h - a dense n-dimensional array with a numpy dtype: the unit of data
 * in every glad stream. Owns its data (malloc'd). Row-major (C order).
 * Not a compute library: kernels live in lib/nn and take raw float pointers. */
#ifndef GLAD_TENSOR_H
#define GLAD_TENSOR_H

#include "core/glad.h"

#define GLAD_MAX_DIMS 8

typedef enum {
    GLAD_DT_U8, GLAD_DT_I8, GLAD_DT_U16, GLAD_DT_I16, GLAD_DT_U32, GLAD_DT_I32,
    GLAD_DT_I64, GLAD_DT_F16, GLAD_DT_F32, GLAD_DT_F64, GLAD_DT_BOOL, GLAD_DT_COUNT
} glad_dtype;

typedef struct {
    glad_dtype dtype;
    int ndim;
    int64_t shape[GLAD_MAX_DIMS];
    void *data;        /* numel * dtype size bytes, owned */
} glad_tensor;

size_t glad_dtype_size(glad_dtype dt);
/* numpy dtype string ("<f4", "|u1", "<i4", "<f8", "<f2", "|b1", ...) */
const char *glad_dtype_str(glad_dtype dt);
/* Parse a numpy dtype string; accepts '<', '|', '=' byte orders (and
 * single-byte types with any order). Big-endian multi-byte types give
 * GLAD_EUNSUPPORTED. */
int glad_dtype_parse(const char *s, size_t len, glad_dtype *out);

/* Number of elements; returns 0 and sets *n, or GLAD_ERANGE when the shape
 * is negative or the byte size would exceed GLAD_MAX_ALLOC. */
int glad_tensor_numel_checked(int ndim, const int64_t *shape, glad_dtype dt, size_t *n);
size_t glad_tensor_numel(const glad_tensor *t);
size_t glad_tensor_nbytes(const glad_tensor *t);

/* Allocate zeroed data for the given dtype and shape (checked). */
int glad_tensor_alloc(glad_tensor *t, glad_dtype dt, int ndim, const int64_t *shape);
/* Convenience for up to 4 dims: pass -1 for unused trailing dims. */
int glad_tensor_alloc4(glad_tensor *t, glad_dtype dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
void glad_tensor_free(glad_tensor *t);
int glad_tensor_copy(glad_tensor *dst, const glad_tensor *src);
/* Move src into dst (dst freed first), src left empty. */
void glad_tensor_move(glad_tensor *dst, glad_tensor *src);

/* Element conversions. to_f32 writes numel floats; u8 images are NOT
 * rescaled here (see glad_tensor_image_to_f32 for the [-1,1] convention). */
int glad_tensor_to_f32(const glad_tensor *t, float *out);
int glad_tensor_to_f64(const glad_tensor *t, double *out);
/* New tensor of dtype dt from floats (rounding + saturation for integers). */
int glad_tensor_from_f32(glad_tensor *t, glad_dtype dt, int ndim, const int64_t *shape, const float *src);
int glad_tensor_convert(glad_tensor *dst, const glad_tensor *src, glad_dtype dt);

/* Images: u8 in [0,255] maps to [-1,1] as x/127.5 - 1; u16 as x/32767.5 - 1;
 * float images are taken as already in [-1,1]. Writes numel floats. */
int glad_tensor_image_to_f32(const glad_tensor *t, float *out);
/* Inverse for writing an image back in the dtype of a reference tensor:
 * floats in [-1,1] -> u8 (round, clamp) or kept f32. */
int glad_tensor_image_from_f32(glad_tensor *t, glad_dtype dt, int ndim, const int64_t *shape, const float *src);

/* New f32 tensor holding an image's values in [-1,1] (same shape). */
int glad_tensor_image_as_f32(glad_tensor *dst, const glad_tensor *src);

/* Shape helpers for images stored as [C,H,W] (or [H,W] = one channel). */
int glad_tensor_chw(const glad_tensor *t, int *c, int *h, int *w);
int glad_tensor_has_nonfinite(const glad_tensor *t);

float glad_f16_to_f32(uint16_t h);
uint16_t glad_f32_to_f16(float f);

#endif
