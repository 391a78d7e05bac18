/* tensor.c - dtype table, checked allocation, conversions between dtypes and
 * the image value convention ([-1,1] floats). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/tensor.h"

static const struct { const char *str; size_t size; } dtypes[GLAD_DT_COUNT] = {
    [GLAD_DT_U8] = {"|u1", 1},  [GLAD_DT_I8] = {"|i1", 1},  [GLAD_DT_U16] = {"<u2", 2},
    [GLAD_DT_I16] = {"<i2", 2}, [GLAD_DT_U32] = {"<u4", 4}, [GLAD_DT_I32] = {"<i4", 4},
    [GLAD_DT_I64] = {"<i8", 8}, [GLAD_DT_F16] = {"<f2", 2}, [GLAD_DT_F32] = {"<f4", 4},
    [GLAD_DT_F64] = {"<f8", 8}, [GLAD_DT_BOOL] = {"|b1", 1},
};

size_t glad_dtype_size(glad_dtype dt) { return (unsigned)dt < GLAD_DT_COUNT ? dtypes[dt].size : 0; }
const char *glad_dtype_str(glad_dtype dt) { return (unsigned)dt < GLAD_DT_COUNT ? dtypes[dt].str : "?"; }

int glad_dtype_parse(const char *s, size_t len, glad_dtype *out)
{
    if (len < 2 || len > 3) return GLAD_EFORMAT;
    char order = s[0];
    const char *code = s + 1;
    size_t clen = len - 1;
    if (order != '<' && order != '|' && order != '=' && order != '>') return GLAD_EFORMAT;
    for (int d = 0; d < GLAD_DT_COUNT; d++) {
        const char *ds = dtypes[d].str + 1;
        if (strlen(ds) == clen && memcmp(ds, code, clen) == 0) {
            if (order == '>' && dtypes[d].size > 1) return GLAD_EUNSUPPORTED;
            *out = (glad_dtype)d;
            return 0;
        }
    }
    return GLAD_EUNSUPPORTED;
}

int glad_tensor_numel_checked(int ndim, const int64_t *shape, glad_dtype dt, size_t *n)
{
    if (ndim < 0 || ndim > GLAD_MAX_DIMS || (unsigned)dt >= GLAD_DT_COUNT) return GLAD_ERANGE;
    size_t total = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return GLAD_ERANGE;
        GLAD_TRY(glad_mul_size(total, (size_t)shape[i], &total));
    }
    size_t bytes;
    GLAD_TRY(glad_mul_size(total, dtypes[dt].size, &bytes));
    if (bytes > GLAD_MAX_ALLOC) return GLAD_ERANGE;
    *n = total;
    return 0;
}

size_t glad_tensor_numel(const glad_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

size_t glad_tensor_nbytes(const glad_tensor *t) { return glad_tensor_numel(t) * glad_dtype_size(t->dtype); }

int glad_tensor_alloc(glad_tensor *t, glad_dtype dt, int ndim, const int64_t *shape)
{
    size_t n;
    memset(t, 0, sizeof *t);
    GLAD_TRY(glad_tensor_numel_checked(ndim, shape, dt, &n));
    /* at least one byte so a 0-element tensor still has a valid pointer */
    t->data = calloc(n ? n : 1, dtypes[dt].size);
    if (!t->data) return GLAD_ENOMEM;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    return 0;
}

int glad_tensor_alloc4(glad_tensor *t, glad_dtype dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    int64_t s[4] = {d0, d1, d2, d3};
    int nd = 0;
    while (nd < 4 && s[nd] >= 0) nd++;
    return glad_tensor_alloc(t, dt, nd, s);
}

void glad_tensor_free(glad_tensor *t)
{
    if (!t) return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

int glad_tensor_copy(glad_tensor *dst, const glad_tensor *src)
{
    glad_tensor tmp;
    GLAD_TRY(glad_tensor_alloc(&tmp, src->dtype, src->ndim, src->shape));
    memcpy(tmp.data, src->data, glad_tensor_nbytes(src));
    *dst = tmp;
    return 0;
}

void glad_tensor_move(glad_tensor *dst, glad_tensor *src)
{
    if (dst == src) return;
    glad_tensor_free(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

/* IEEE half <-> single, round to nearest even, with subnormals, inf, nan. */
float glad_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | man << 13;
    else bits = sign | (exp + 112) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t glad_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) return (uint16_t)(sign | 0x7e00);            /* nan */
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);           /* overflow -> inf */
    if (absx < 0x38800000u) {                                            /* subnormal or zero */
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t man = (absx & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(absx >> 23);                             /* 14..24 */
        uint32_t r = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((absx >> 13) - (112u << 10));
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

#define CONVERT_LOOP(OUT_T, EXPR_F16) \
    switch (t->dtype) { \
    case GLAD_DT_U8: case GLAD_DT_BOOL: for (size_t i = 0; i < n; i++) out[i] = (OUT_T)((const uint8_t *)t->data)[i]; break; \
    case GLAD_DT_I8: for (size_t i = 0; i < n; i++) out[i] = (OUT_T)((const int8_t *)t->data)[i]; break; \
    case GLAD_DT_U16: for (size_t i = 0; i < n; i++) out[i] = (OUT_T)((const uint16_t *)t->data)[i]; break; \
    case GLAD_DT_I16: for (size_t i = 0; i < n; i++) out[i] = (OUT_T)((const int16_t *)t->data)[i]; break; \
    case GLAD_DT_U32: for (size_t i = 0; i < n; i++) out[i] = (OUT_T)((const uint32_t *)t->data)[i]; break; \
    case GLAD_DT_I32: for (size_t i = 0; i < n; i++) out[i] = (OUT_T)((const int32_t *)t->data)[i]; break; \
    case GLAD_DT_I64: for (size_t i = 0; i < n; i++) out[i] = (OUT_T)((const int64_t *)t->data)[i]; break; \
    case GLAD_DT_F16: for (size_t i = 0; i < n; i++) out[i] = (OUT_T)EXPR_F16(((const uint16_t *)t->data)[i]); break; \
    case GLAD_DT_F32: for (size_t i = 0; i < n; i++) out[i] = (OUT_T)((const float *)t->data)[i]; break; \
    case GLAD_DT_F64: for (size_t i = 0; i < n; i++) out[i] = (OUT_T)((const double *)t->data)[i]; break; \
    default: return GLAD_EDTYPE; \
    }

int glad_tensor_to_f32(const glad_tensor *t, float *out)
{
    size_t n = glad_tensor_numel(t);
    CONVERT_LOOP(float, glad_f16_to_f32)
    return 0;
}

int glad_tensor_to_f64(const glad_tensor *t, double *out)
{
    size_t n = glad_tensor_numel(t);
    CONVERT_LOOP(double, glad_f16_to_f32)
    return 0;
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

int glad_tensor_from_f32(glad_tensor *t, glad_dtype dt, int ndim, const int64_t *shape, const float *src)
{
    glad_tensor o;
    GLAD_TRY(glad_tensor_alloc(&o, dt, ndim, shape));
    size_t n = glad_tensor_numel(&o);
    for (size_t i = 0; i < n; i++) {
        double v = src[i];
        double r = isnan(v) ? 0.0 : nearbyint(v);
        switch (dt) {
        case GLAD_DT_U8: ((uint8_t *)o.data)[i] = (uint8_t)clampd(r, 0, 255); break;
        case GLAD_DT_BOOL: ((uint8_t *)o.data)[i] = v != 0; break;
        case GLAD_DT_I8: ((int8_t *)o.data)[i] = (int8_t)clampd(r, -128, 127); break;
        case GLAD_DT_U16: ((uint16_t *)o.data)[i] = (uint16_t)clampd(r, 0, 65535); break;
        case GLAD_DT_I16: ((int16_t *)o.data)[i] = (int16_t)clampd(r, -32768, 32767); break;
        case GLAD_DT_U32: ((uint32_t *)o.data)[i] = (uint32_t)clampd(r, 0, 4294967295.0); break;
        case GLAD_DT_I32: ((int32_t *)o.data)[i] = (int32_t)clampd(r, -2147483648.0, 2147483647.0); break;
        case GLAD_DT_I64: ((int64_t *)o.data)[i] = (int64_t)clampd(r, -9.2e18, 9.2e18); break;
        case GLAD_DT_F16: ((uint16_t *)o.data)[i] = glad_f32_to_f16(src[i]); break;
        case GLAD_DT_F32: ((float *)o.data)[i] = src[i]; break;
        case GLAD_DT_F64: ((double *)o.data)[i] = src[i]; break;
        default: glad_tensor_free(&o); return GLAD_EDTYPE;
        }
    }
    *t = o;
    return 0;
}

int glad_tensor_convert(glad_tensor *dst, const glad_tensor *src, glad_dtype dt)
{
    if (src->dtype == dt) return glad_tensor_copy(dst, src);
    size_t n = glad_tensor_numel(src), bytes;
    GLAD_TRY(glad_mul_size(n ? n : 1, sizeof(float), &bytes));
    float *tmp = malloc(bytes);
    if (!tmp) return GLAD_ENOMEM;
    int rc = glad_tensor_to_f32(src, tmp);
    if (rc == 0) rc = glad_tensor_from_f32(dst, dt, src->ndim, src->shape, tmp);
    free(tmp);
    return rc;
}

int glad_tensor_image_to_f32(const glad_tensor *t, float *out)
{
    GLAD_TRY(glad_tensor_to_f32(t, out));
    size_t n = glad_tensor_numel(t);
    if (t->dtype == GLAD_DT_U8)
        for (size_t i = 0; i < n; i++) out[i] = out[i] / 127.5f - 1.0f;
    else if (t->dtype == GLAD_DT_U16)
        for (size_t i = 0; i < n; i++) out[i] = out[i] / 32767.5f - 1.0f;
    else if (t->dtype != GLAD_DT_F32 && t->dtype != GLAD_DT_F64 && t->dtype != GLAD_DT_F16)
        return GLAD_EDTYPE;
    return 0;
}

int glad_tensor_image_from_f32(glad_tensor *t, glad_dtype dt, int ndim, const int64_t *shape, const float *src)
{
    if (dt != GLAD_DT_U8 && dt != GLAD_DT_U16) return glad_tensor_from_f32(t, dt, ndim, shape, src);
    size_t n;
    GLAD_TRY(glad_tensor_numel_checked(ndim, shape, GLAD_DT_F32, &n));
    float *tmp = malloc((n ? n : 1) * sizeof(float));
    if (!tmp) return GLAD_ENOMEM;
    float scale = dt == GLAD_DT_U8 ? 127.5f : 32767.5f;
    for (size_t i = 0; i < n; i++) tmp[i] = (src[i] + 1.0f) * scale;
    int rc = glad_tensor_from_f32(t, dt, ndim, shape, tmp);
    free(tmp);
    return rc;
}

int glad_tensor_image_as_f32(glad_tensor *dst, const glad_tensor *src)
{
    glad_tensor o;
    GLAD_TRY(glad_tensor_alloc(&o, GLAD_DT_F32, src->ndim, src->shape));
    int rc = glad_tensor_image_to_f32(src, o.data);
    if (rc) { glad_tensor_free(&o); return rc; }
    *dst = o;
    return 0;
}

int glad_tensor_chw(const glad_tensor *t, int *c, int *h, int *w)
{
    if (t->ndim == 2) { *c = 1; *h = (int)t->shape[0]; *w = (int)t->shape[1]; }
    else if (t->ndim == 3) { *c = (int)t->shape[0]; *h = (int)t->shape[1]; *w = (int)t->shape[2]; }
    else return GLAD_ESHAPE;
    if (*c <= 0 || *h <= 0 || *w <= 0 || t->shape[t->ndim - 1] > INT32_MAX || t->shape[t->ndim - 2] > INT32_MAX)
        return GLAD_ESHAPE;
    return 0;
}

int glad_tensor_has_nonfinite(const glad_tensor *t)
{
    size_t n = glad_tensor_numel(t);
    switch (t->dtype) {
    case GLAD_DT_F32: for (size_t i = 0; i < n; i++) if (!isfinite(((const float *)t->data)[i])) return 1; break;
    case GLAD_DT_F64: for (size_t i = 0; i < n; i++) if (!isfinite(((const double *)t->data)[i])) return 1; break;
    case GLAD_DT_F16: for (size_t i = 0; i < n; i++) if ((((const uint16_t *)t->data)[i] & 0x7c00) == 0x7c00) return 1; break;
    default: break;
    }
    return 0;
}
