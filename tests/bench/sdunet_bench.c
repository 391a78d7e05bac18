/* sdunet_bench.c - times the Stable Diffusion UNet for make bench: an
 * SD-v1-4-shaped UNet2DConditionModel (the hub unet/config.json) with random
 * weights built in memory (3.4 GB in f32; no file), a batch-2 forward (the
 * guidance pair) at each SIZE x SIZE latents with a 77-token context, the
 * model built once. Prints key=value lines per size S: forward_b2_s_S (the
 * fastest of REPS forwards after a warm-up), forward_gflops_S,
 * activation_mb_S and peak_rss_mb_S, the process's peak resident memory
 * after that size (getrusage; the sizes run in the order given).
 *   sdunet_bench REPS SIZE... */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include "core/glad.h"
#include "models/sdunet.h"
#include "bench.h"

static const char *SD14 =
    "{\"_class_name\": \"UNet2DConditionModel\", \"act_fn\": \"silu\", \"attention_head_dim\": 8, "
    "\"block_out_channels\": [320, 640, 1280, 1280], \"center_input_sample\": false, \"cross_attention_dim\": 768, "
    "\"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"DownBlock2D\"], "
    "\"downsample_padding\": 1, \"flip_sin_to_cos\": true, \"freq_shift\": 0, \"in_channels\": 4, \"layers_per_block\": 2, "
    "\"mid_block_scale_factor\": 1, \"norm_eps\": 1e-05, \"norm_num_groups\": 32, \"out_channels\": 4, \"sample_size\": 64, "
    "\"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\"]}";

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: sdunet_bench REPS SIZE...\n"); return 2; }
    int reps = atoi(argv[1]), B = 2, L = 77, X = 768;
    glad_sdunet_config c;
    glad_sdunet *u;
    double t0 = bench_now();
    if (glad_sdunet_config_parse(&c, SD14) || glad_sdunet_create_random(&c, 1, &u)) {
        fprintf(stderr, "sdunet_bench: %s\n", glad_error_detail());
        return 1;
    }
    printf("params=%zu\nbuild_s=%.2f\n", glad_sdunet_nparams(u), bench_now() - t0);
    for (int a = 2; a < argc; a++) {
        int S = atoi(argv[a]);
        size_t per = (size_t)4 * S * S;
        float *x = malloc(per * B * sizeof(float)), *e = malloc(per * B * sizeof(float)), *ctx = malloc(sizeof(float) * B * L * X);
        float t[2] = {601, 601};
        if (!x || !e || !ctx) return 1;
        for (size_t i = 0; i < per * B; i++) x[i] = (float)((i * 7919) % 2000) / 1000.0f - 1.0f;
        for (size_t i = 0; i < (size_t)B * L * X; i++) ctx[i] = (float)((i * 104729) % 2000) / 1000.0f - 1.0f;
        if (glad_sdunet_forward(u, e, x, B, S, S, t, ctx, L)) { fprintf(stderr, "sdunet_bench: %s\n", glad_error_detail()); return 1; }
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            t0 = bench_now();
            glad_sdunet_forward(u, e, x, B, S, S, t, ctx, L);
            double d = bench_now() - t0;
            if (d < best) best = d;
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("forward_b2_s_%d=%.3f\nforward_gflops_%d=%.1f\nactivation_mb_%d=%.0f\npeak_rss_mb_%d=%.0f\n", S, best, S,
               glad_sdunet_forward_flops(u) / best / 1e9, S, glad_sdunet_activation_bytes(u) / 1048576.0, S, ru.ru_maxrss / 1024.0);
        fflush(stdout);
        free(x); free(e); free(ctx);
    }
    glad_sdunet_free(u);
    return 0;
}
