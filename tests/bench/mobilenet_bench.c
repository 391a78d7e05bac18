/* mobilenet_bench.c - times the MobileNetV2 runner for make bench on a real
 * .tflite file: the 17 inverted-residual blocks (features up to block 16,
 * what torchvision's model.features[:18] computes) at SIZE x SIZE, and the
 * whole classifier at 224. Median of several runs after a warm-up; where
 * the CPU runs bf16 the blocks' f32 and bf16 rounds alternate (medians of
 * each), so load from other jobs falls on both alike.
 *   mobilenet_bench SIZE FILE.tflite   (prints key=value lines) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "models/mobilenet.h"
#include "nn/bf16.h"
#include "bench.h"

static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: mobilenet_bench SIZE FILE.tflite\n"); return 2; }
    int S = atoi(argv[1]);
    glad_mobilenet *m;
    if (glad_mobilenet_load(&m, argv[2])) { fprintf(stderr, "%s\n", glad_error_detail()); return 1; }
    int last = glad_mobilenet_nblocks(m) - 1, C, h, w;
    if (glad_mobilenet_out_shape(m, last, S, S, &C, &h, &w)) { fprintf(stderr, "bad size\n"); return 1; }
    float *x = malloc(sizeof(float) * 3 * S * S), *f = malloc(sizeof(float) * C * h * w), *p = malloc(sizeof(float) * 1001);
    for (size_t i = 0; i < (size_t)3 * S * S; i++) x[i] = (float)((i * 7919) % 2000) / 1000.0f - 1.0f;
    int reps = S <= 256 ? 15 : 5;
    double t[32], tb[32];
    /* f32 and bf16 rounds alternate, so a neighbour's load falls on both alike */
    int bf = glad_precision_set(GLAD_PREC_BF16) == 0;
    if (bf) {   /* warm-up: the bf16 weight cache filled */
        glad_mobilenet_features(m, x, S, S, 1, &last, &f);
        glad_precision_set(GLAD_PREC_F32);
    }
    glad_mobilenet_features(m, x, S, S, 1, &last, &f);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        glad_mobilenet_features(m, x, S, S, 1, &last, &f);
        t[r] = bench_now() - t0;
        if (!bf) continue;
        glad_precision_set(GLAD_PREC_BF16);
        t0 = bench_now();
        glad_mobilenet_features(m, x, S, S, 1, &last, &f);
        tb[r] = bench_now() - t0;
        glad_precision_set(GLAD_PREC_F32);
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    /* last_flops: the graph's, the same in either precision */
    printf("blocks_s=%.5f\nblocks_images_per_s=%.3f\nblocks_gflops=%.2f\n", t[reps / 2], 1 / t[reps / 2],
           glad_mobilenet_last_flops(m) / t[reps / 2] / 1e9);
    if (bf) {   /* the blocks in bf16 where the CPU runs it */
        qsort(tb, (size_t)reps, sizeof *tb, cmp);
        printf("blocks_bf16_s=%.5f\n", tb[reps / 2]);
    }
    if (S == 224 && glad_mobilenet_nclasses(m) == 1001) {
        for (int r = 0; r < reps; r++) {
            double t0 = bench_now();
            glad_mobilenet_classify(m, x, S, S, p);
            t[r] = bench_now() - t0;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp);
        printf("forward_s=%.5f\nforward_images_per_s=%.3f\nforward_gflops=%.2f\n", t[reps / 2], 1 / t[reps / 2],
               glad_mobilenet_last_flops(m) / t[reps / 2] / 1e9);
    }
    glad_mobilenet_free(m);
    free(x); free(f); free(p);
    return 0;
}
