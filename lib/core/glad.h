/* glad.h - the one header every part of libglad includes: error codes, the
 * error-propagation idiom, version, and small portable helpers.
 * It is not a catalogue of the library: each module has its own header. */
#ifndef GLAD_H
#define GLAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#define GLAD_VERSION "0.1.0"

/* Every lib function returns 0 on success or one of these (negative) codes.
 * lib never prints and never exits; the programs in bin/ turn codes into
 * messages and exit statuses. */
enum {
    GLAD_OK = 0,
    GLAD_ENOMEM = -1,   /* allocation failed */
    GLAD_EIO = -2,      /* read/write failed, file missing */
    GLAD_EFORMAT = -3,  /* corrupt or truncated data */
    GLAD_ESHAPE = -4,   /* tensor shape wrong for the operation */
    GLAD_EDTYPE = -5,   /* tensor dtype wrong for the operation */
    GLAD_ERANGE = -6,   /* a declared size or value is absurd / out of range */
    GLAD_EINVAL = -7,   /* invalid argument */
    GLAD_ENOTFOUND = -8,/* a key / tensor / file entry is missing */
    GLAD_ENAN = -9,     /* NaN or infinity where finite numbers are required */
    GLAD_EUNSUPPORTED = -10 /* valid input this build does not handle */
};

/* The one propagation idiom:  GLAD_TRY(glad_foo(...));  */
#define GLAD_TRY(expr) do { int glad_rc_ = (expr); if (glad_rc_ < 0) return glad_rc_; } while (0)
/* Same, but jump to a cleanup label with rc set. */
#define GLAD_TRYG(rc, expr, label) do { (rc) = (expr); if ((rc) < 0) goto label; } while (0)

const char *glad_strerror(int rc);

/* ---- the one message channel ----
 * A code says what kind of failure; the detail says where and what ("x.st:
 * tensor 'w' missing", "byte 1234, record 5: truncated"). A lib function that
 * knows more than its code records it with glad_fail just before returning:
 *     return glad_fail(GLAD_ENOTFOUND, "%s: tensor '%s' missing", path, key);
 * The detail is per thread (like errno): glad_error_detail() returns the
 * message of this thread's last glad_fail, or "" after glad_error_clear().
 * Callers print  detail ? detail : glad_strerror(rc). */
int glad_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *glad_error_detail(void);
/* rc, with this thread's detail re-recorded as "WHERE: detail" (a loader
 * naming its file around a parser's message). */
int glad_fail_in(int rc, const char *where);
void glad_error_clear(void);

/* The one formatting helper: a malloc'd printf result (NULL when out of
 * memory); the caller frees it. */
char *glad_strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Overflow-checked size arithmetic: return 0 and store the result, or
 * GLAD_ERANGE on overflow. Use before every allocation from a declared size. */
int glad_mul_size(size_t a, size_t b, size_t *out);

/* Room for element n of a doubling array of *cap elements of elem bytes:
 * returns items itself while n < *cap, else items realloc'd to twice *cap
 * (first when empty) with *cap updated; NULL when that fails (items is then
 * still valid and unchanged). Usage:
 *   T *v = glad_grow(a->v, &a->cap, a->n, sizeof *v, 64); if (!v) ...; a->v = v; */
void *glad_grow(void *items, int *cap, int n, size_t elem, int first);

/* Limit on any single allocation made from a size read from a file
 * (tensor data, image dimensions, ...): 8 GiB. */
#define GLAD_MAX_ALLOC ((size_t)8 << 30)

#endif
