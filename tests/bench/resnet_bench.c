/* resnet_bench.c - times the wide_resnet50_2 feature extractor (layer1..3,
 * the DDAD/MDPS backbone) for make bench: random weights with torchvision key
 * names written to a safetensors file (so the PyTorch reference loads the
 * identical network), batch-1 forward at SIZE x SIZE (fastest of 5), and the
 * features of the timed input written out so the reference can check them.
 *   resnet_bench SIZE WEIGHTS_OUT FEATURES_OUT   (prints key=value lines) */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "models/resnet.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "bench.h"

static bench_weights W;

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: resnet_bench SIZE WEIGHTS_OUT FEATURES_OUT\n"); return 2; }
    int S = atoi(argv[1]);
    printf("sgemm_gflops=%.1f\n", bench_sgemm_gflops());
    double t0;

    /* wide_resnet50_2: layers [3,4,6,(3)], width_per_group 128; layer4/fc not written */
    bench_w_wrn50_2_layer3(&W);
    if (bench_w_save(&W, argv[2], "{\"block\": \"bottleneck\", \"layers\": [3, 4, 6, 3], \"width_per_group\": 128, "
                                  "\"note\": \"wide_resnet50_2, random weights, layer4 and fc omitted\"}")) {
        fprintf(stderr, "cannot save weights\n"); return 1; }

    glad_resnet *r;
    if (glad_resnet_load(&r, argv[2])) { fprintf(stderr, "%s\n", glad_error_detail()); return 1; }
    glad_tensor x, f[3];
    glad_tensor_alloc4(&x, GLAD_DT_F32, 1, 3, S, S);
    glad_rng_normal_f32(&W.rng, x.data, glad_tensor_numel(&x));
    int layers[3] = {1, 2, 3};
    float *out[3];
    for (int i = 0; i < 3; i++) {
        int C, h, w;
        glad_resnet_out_shape(r, i + 1, S, S, &C, &h, &w);
        glad_tensor_alloc4(&f[i], GLAD_DT_F32, 1, C, h, w);
        out[i] = f[i].data;
    }
    if (glad_resnet_forward(r, x.data, 1, S, S, 3, layers, out)) { fprintf(stderr, "forward failed\n"); return 1; }
    /* the fastest of 5: the machine is shared, the minimum is the least
     * disturbed; also the calling thread's CPU time, which excludes time
     * spent preempted and so measures the code alone when run on 1 thread */
    double s = 1e30, cpu = 1e30, fl = glad_resnet_flops(r, 3, S, S);
    for (int k = 0; k < 5; k++) {
        double c0 = bench_cputime(CLOCK_THREAD_CPUTIME_ID);
        t0 = bench_now();
        glad_resnet_forward(r, x.data, 1, S, S, 3, layers, out);
        t0 = bench_now() - t0;
        c0 = bench_cputime(CLOCK_THREAD_CPUTIME_ID) - c0;
        if (t0 < s) s = t0;
        if (c0 < cpu) cpu = c0;
    }
    printf("forward_b1_s=%.4f\nimages_per_s=%.3f\nthread_cpu_s=%.4f\ngflop=%.2f\ngflops=%.1f\n", s, 1 / s, cpu, fl / 1e9, fl / s / 1e9);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("max_rss_mb=%.0f\n", ru.ru_maxrss / 1024.0);
    const char *fn[4] = {"x", "layer1", "layer2", "layer3"};
    const glad_tensor *ft[4] = {&x, &f[0], &f[1], &f[2]};
    if (glad_st_save(argv[3], 4, fn, ft, 0, NULL, NULL)) { fprintf(stderr, "cannot save features\n"); return 1; }
    for (int i = 0; i < 3; i++) glad_tensor_free(&f[i]);
    glad_tensor_free(&x);
    glad_resnet_free(r);
    return 0;
}
