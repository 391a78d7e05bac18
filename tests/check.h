/* check.h - the tiny unit-test harness: CHECK counts, prints failures with
 * file:line, and check_done() prints "N passed, N failed" and returns the
 * exit status. Header-only; each tests/test_*.c includes it once. */
#ifndef GLAD_CHECK_H
#define GLAD_CHECK_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_pass_, check_fail_;

#define CHECK(cond) do { if (cond) check_pass_++; else { check_fail_++; \
    fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECKF(cond, ...) do { if (cond) check_pass_++; else { check_fail_++; \
    fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_NEAR(a, b, tol) CHECKF(fabs((double)(a) - (double)(b)) <= (tol), \
    "%.9g vs %.9g (tol %g)", (double)(a), (double)(b), (double)(tol))
/* A visible skip: counted in the summary line */
static int check_skip_;
#define SKIP(...) do { check_skip_++; fprintf(stderr, "SKIP: "); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } while (0)

/* Path to ../shared relative to the project root (tests run from the root), or NULL */
static inline const char *check_shared(void)
{
    const char *p = getenv("GLAD_SHARED");
    if (!p) p = "../shared";
    FILE *f;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/README.md", p);
    f = fopen(buf, "rb");
    if (!f) return NULL;
    fclose(f);
    return p;
}

static inline int check_done(void)
{
    if (check_skip_) printf("%d passed, %d failed, %d skipped\n", check_pass_, check_fail_, check_skip_);
    else printf("%d passed, %d failed\n", check_pass_, check_fail_);
    return check_fail_ ? 1 : 0;
}
#endif
