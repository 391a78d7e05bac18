/* glad.c - error strings, the per-thread error detail, the formatting helper,
 * checked size arithmetic and array growth shared by all of lib/. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/glad.h"

const char *glad_strerror(int rc)
{
    switch (rc) {
    case GLAD_OK: return "ok";
    case GLAD_ENOMEM: return "out of memory";
    case GLAD_EIO: return "input/output error";
    case GLAD_EFORMAT: return "corrupt or truncated data";
    case GLAD_ESHAPE: return "wrong shape";
    case GLAD_EDTYPE: return "wrong dtype";
    case GLAD_ERANGE: return "size or value out of range";
    case GLAD_EINVAL: return "invalid argument";
    case GLAD_ENOTFOUND: return "not found";
    case GLAD_ENAN: return "NaN or infinite value";
    case GLAD_EUNSUPPORTED: return "unsupported";
    default: return "unknown error";
    }
}

/* One buffer per thread: messages set inside an OpenMP region stay with
 * the thread that failed, and the serial caller reads its own. */
static _Thread_local char detail[1024];

int glad_fail(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return rc;
}

const char *glad_error_detail(void) { return detail; }

int glad_fail_in(int rc, const char *where)
{
    char why[sizeof detail];
    snprintf(why, sizeof why, "%s", detail);   /* glad_fail writes over detail */
    return glad_fail(rc, "%s: %s", where, why);
}
void glad_error_clear(void) { detail[0] = 0; }

char *glad_strfmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

int glad_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return GLAD_ERANGE;
    *out = a * b;
    return 0;
}

void *glad_grow(void *items, int *cap, int n, size_t elem, int first)
{
    if (n < *cap) return items;
    if (*cap > INT_MAX / 2) return NULL;
    int nc = *cap ? *cap * 2 : first;
    void *p = realloc(items, elem * (size_t)nc);
    if (p) *cap = nc;
    return p;
}
