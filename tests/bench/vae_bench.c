/* vae_bench.c - times the Stable Diffusion VAE decoder for make bench: an
 * SD-v1-4-shaped AutoencoderKL (the hub vae/config.json, 84 M parameters)
 * with random weights built in memory (no file), a batch-1 decode of a
 * SIZE/8 x SIZE/8 latent to a SIZE x SIZE image at each SIZE. Prints
 * key=value lines per size S: decode_s_S (the fastest of REPS decodes after a
 * warm-up) and peak_rss_mb_S, the process's peak resident memory after that
 * size (getrusage; the sizes run in the order given).
 *   vae_bench REPS SIZE... */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include "core/glad.h"
#include "models/vae.h"
#include "bench.h"

static const char *SD14_VAE =
    "{\"_class_name\": \"AutoencoderKL\", \"act_fn\": \"silu\", \"block_out_channels\": [128, 256, 512, 512], "
    "\"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"], "
    "\"in_channels\": 3, \"latent_channels\": 4, \"layers_per_block\": 2, \"norm_num_groups\": 32, \"out_channels\": 3, "
    "\"sample_size\": 512, \"scaling_factor\": 0.18215, "
    "\"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]}";

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: vae_bench REPS SIZE...\n"); return 2; }
    int reps = atoi(argv[1]);
    glad_vae_config c;
    glad_vae *v;
    double t0 = bench_now();
    if (glad_vae_config_parse(&c, SD14_VAE) || glad_vae_create_random(&v, &c, 1)) {
        fprintf(stderr, "vae_bench: %s\n", glad_error_detail());
        return 1;
    }
    printf("params=%zu\nbuild_s=%.2f\n", glad_vae_nparams(v), bench_now() - t0);
    for (int a = 2; a < argc; a++) {
        int S = atoi(argv[a]), h = S / 8;
        if (h < 1 || h * 8 != S) { fprintf(stderr, "vae_bench: SIZE must be a multiple of 8\n"); return 2; }
        float *z = malloc(sizeof(float) * 4 * h * h), *x = malloc(sizeof(float) * 3 * S * S);
        if (!z || !x) return 1;
        for (int i = 0; i < 4 * h * h; i++) z[i] = (float)((i * 7919) % 2000) / 1000.0f - 1.0f;
        if (glad_vae_decode(v, x, z, 1, h, h)) { fprintf(stderr, "vae_bench: %s\n", glad_error_detail()); return 1; }
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            t0 = bench_now();
            glad_vae_decode(v, x, z, 1, h, h);
            double d = bench_now() - t0;
            if (d < best) best = d;
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("decode_s_%d=%.3f\npeak_rss_mb_%d=%.0f\n", S, best, S, ru.ru_maxrss / 1024.0);
        fflush(stdout);
        free(z); free(x);
    }
    glad_vae_free(v);
    return 0;
}
