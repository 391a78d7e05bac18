/* bench.h - what the make-bench binaries share: a monotonic clock, CPU time,
 * the machine's practical GEMM peak (OpenBLAS sgemm on 2048^2, one warm-up then
 * three timed products), against which kernels report their fraction, and a
 * writer of random-weight safetensors files (networks of the published shapes,
 * so the PyTorch references load identical weights). Not a library API. */
#ifndef GLAD_BENCH_H
#define GLAD_BENCH_H
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/rng.h"
#include "io/safetensors.h"

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

/* CPU time of the process (CLOCK_PROCESS_CPUTIME_ID) or of the calling thread
 * (CLOCK_THREAD_CPUTIME_ID): on one thread, the code's own cost, free of time spent preempted */
static inline double bench_cputime(clockid_t which)
{
    struct timespec t;
    clock_gettime(which, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* random weights, tensor by tensor, saved in one safetensors file */
#define BENCH_MAXT 512
typedef struct {
    const char *names[BENCH_MAXT];
    glad_tensor ts[BENCH_MAXT];
    const glad_tensor *tp[BENCH_MAXT];
    int n;
    glad_rng rng;
} bench_weights;

/* an nd-dimensional f32 tensor (a, b, c, d: its first nd sizes). kind 0: conv
 * weight N(0, 2/fan_in); 1: gamma U(0.5,1); 2: beta/mean U(-0.1,0.1); 3: var
 * U(0.5,1.5); 4: N(0, 0.02); 5: 1 + N(0, 0.1). Aborts when out of memory or slots
 * (a bench, not a program: nothing to recover). */
static inline void bench_w_add(bench_weights *w, const char *name, int kind, int nd, int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t sh[4] = {a, b, c, d};
    if (w->n == BENCH_MAXT || glad_tensor_alloc(&w->ts[w->n], GLAD_DT_F32, nd, sh)) { fprintf(stderr, "bench: %s: no room\n", name); abort(); }
    glad_tensor *t = &w->ts[w->n];
    float *v = t->data;
    size_t n = glad_tensor_numel(t);
    double fan = nd > 1 ? (double)b * (nd > 2 ? c * d : 1) : 1;
    for (size_t i = 0; i < n; i++) {
        double u = kind <= 3 ? glad_rng_uniform(&w->rng) : 0;
        v[i] = (float)(kind == 0 ? glad_rng_normal(&w->rng) * sqrt(2.0 / fan) : kind == 1 ? 0.5 + 0.5 * u : kind == 2 ? 0.2 * u - 0.1
                       : kind == 3 ? 0.5 + u : kind == 4 ? 0.02 * glad_rng_normal(&w->rng) : 1 + 0.1 * glad_rng_normal(&w->rng));
    }
    w->names[w->n] = strdup(name);
    w->tp[w->n] = t;
    w->n++;
}

/* a torchvision conv (k x k, no bias) and its BatchNorm2d, with the num_batches_tracked buffer */
static inline void bench_w_conv_bn(bench_weights *w, const char *cn, const char *bn, int oc, int ic, int k)
{
    char key[128];
    snprintf(key, sizeof key, "%s.weight", cn); bench_w_add(w, key, 0, 4, oc, ic, k, k);
    snprintf(key, sizeof key, "%s.weight", bn); bench_w_add(w, key, 1, 1, oc, 0, 0, 0);
    snprintf(key, sizeof key, "%s.bias", bn); bench_w_add(w, key, 2, 1, oc, 0, 0, 0);
    snprintf(key, sizeof key, "%s.running_mean", bn); bench_w_add(w, key, 2, 1, oc, 0, 0, 0);
    snprintf(key, sizeof key, "%s.running_var", bn); bench_w_add(w, key, 3, 1, oc, 0, 0, 0);
    snprintf(key, sizeof key, "%s.num_batches_tracked", bn);
    if (w->n == BENCH_MAXT || glad_tensor_alloc4(&w->ts[w->n], GLAD_DT_I64, 1, -1, -1, -1)) { fprintf(stderr, "bench: %s: no room\n", key); abort(); }
    w->names[w->n] = strdup(key); w->tp[w->n] = &w->ts[w->n]; w->n++;
}

/* wide_resnet50_2 up to layer3 (DDAD's and MDPS's backbone; layer4 and fc are
 * not used), torchvision's names, seeded (1, 0, 0): both ResNet benches write it */
static inline void bench_w_wrn50_2_layer3(bench_weights *w)
{
    glad_rng_seed(&w->rng, 1, 0, 0);
    const int blocks[3] = {3, 4, 6};
    bench_w_conv_bn(w, "conv1", "bn1", 64, 3, 7);
    int inplanes = 64;
    for (int L = 0; L < 3; L++) {
        int planes = 64 << L, width = planes * 2, out = planes * 4;
        for (int k = 0; k < blocks[L]; k++) {
            char cn[64], bn[64];
            for (int j = 1; j <= 3; j++) {
                snprintf(cn, sizeof cn, "layer%d.%d.conv%d", L + 1, k, j);
                snprintf(bn, sizeof bn, "layer%d.%d.bn%d", L + 1, k, j);
                bench_w_conv_bn(w, cn, bn, j == 3 ? out : width, j == 1 ? inplanes : width, j == 2 ? 3 : 1);
            }
            if (k == 0) {
                snprintf(cn, sizeof cn, "layer%d.0.downsample.0", L + 1); snprintf(bn, sizeof bn, "layer%d.0.downsample.1", L + 1);
                bench_w_conv_bn(w, cn, bn, out, inplanes, 1);
            }
            inplanes = out;
        }
    }
}

/* saves the tensors (metadata "config" = cfg), frees them and empties w */
static inline int bench_w_save(bench_weights *w, const char *path, const char *cfg)
{
    const char *mk = "config";
    int rc = glad_st_save(path, w->n, w->names, w->tp, 1, &mk, &cfg);
    for (int i = 0; i < w->n; i++) { glad_tensor_free(&w->ts[i]); free((void *)w->names[i]); }
    w->n = 0;
    return rc;
}
#endif
