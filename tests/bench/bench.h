/* bench.h - what the make-bench binaries share: a monotonic clock and the
 * machine's practical GEMM peak (OpenBLAS sgemm on 2048^2, one warm-up then
 * three timed products), against which kernels report their fraction. */
#ifndef GLAD_BENCH_H
#define GLAD_BENCH_H
#include <cblas.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline double bench_sgemm_gflops(void)
{
    int n = 2048;
    float *a = calloc((size_t)n * n, 4), *b = calloc((size_t)n * n, 4), *c = calloc((size_t)n * n, 4);
    if (!a || !b || !c) { free(a); free(b); free(c); return 0; }
    for (size_t i = 0; i < (size_t)n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double t0 = bench_now();
    for (int r = 0; r < 3; r++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double g = 3 * 2.0 * n * n * (double)n / (bench_now() - t0) / 1e9;
    free(a); free(b); free(c);
    return g;
}
#endif
