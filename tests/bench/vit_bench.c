/* vit_bench.c - times the DINO ViT for make bench: random weights of a given
 * shape (DINO key names, written to a safetensors file so the PyTorch
 * reference tests/ref/vit_ref.py runs the identical network), then batch-1
 * forwards at each size returning GLAD's feature blocks (3, 6, 9, 12 of 12,
 * or the last block of shallower models), best of several repetitions. For each size it also writes the
 * input and glad's outputs so the reference can report the parity.
 *   vit_bench WEIGHTS_OUT OUT_PREFIX DIM DEPTH HEADS PATCH POS_GRID SIZE...
 * prints key=value lines: s<SIZE>_images_per_s, s<SIZE>_gflops, peak_rss_mb,
 * and s<SIZE>_bf16_images_per_s where the CPU runs bf16 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "models/vit.h"
#include "nn/bf16.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "bench.h"


/* random DINO-shaped weights: N(0, 0.02) matrices (trunc-normal-like init),
 * norm weights 1 + N(0, 0.1), biases N(0, 0.02) */
static int write_weights(const char *path, int D, int depth, int heads, int p, int g)
{
    int nt = 6 + 12 * depth, k = 0;
    char **names = calloc((size_t)nt, sizeof(char *));
    glad_tensor *ts = calloc((size_t)nt, sizeof *ts);
    const glad_tensor **tp = calloc((size_t)nt, sizeof *tp);
    glad_rng r;
    glad_rng_seed(&r, 1, 2, 3);
#define T(nm, nd, a, b, c, d, base, sd) do { \
        names[k] = strdup(nm); \
        int64_t sh_[4] = {a, b, c, d}; \
        if (glad_tensor_alloc(&ts[k], GLAD_DT_F32, nd, sh_)) return -1; \
        float *w_ = ts[k].data; size_t n_ = glad_tensor_numel(&ts[k]); \
        glad_rng_normal_f32(&r, w_, n_); \
        for (size_t i_ = 0; i_ < n_; i_++) w_[i_] = (float)(base) + (float)(sd) * w_[i_]; \
        tp[k] = &ts[k]; k++; } while (0)
    char n[96];
    T("cls_token", 3, 1, 1, D, 0, 0, 0.02);
    T("pos_embed", 3, 1, 1 + g * g, D, 0, 0, 0.02);
    T("patch_embed.proj.weight", 4, D, 3, p, p, 0, 0.02);
    T("patch_embed.proj.bias", 1, D, 0, 0, 0, 0, 0.02);
    for (int i = 0; i < depth; i++) {
#define B1(s, len, base, sd) snprintf(n, sizeof n, "blocks.%d." s, i); T(n, 1, len, 0, 0, 0, base, sd)
#define B2(s, o, in) snprintf(n, sizeof n, "blocks.%d." s, i); T(n, 2, o, in, 0, 0, 0, 0.02)
        B1("norm1.weight", D, 1, 0.1); B1("norm1.bias", D, 0, 0.02);
        B2("attn.qkv.weight", 3 * D, D); B1("attn.qkv.bias", 3 * D, 0, 0.02);
        B2("attn.proj.weight", D, D); B1("attn.proj.bias", D, 0, 0.02);
        B1("norm2.weight", D, 1, 0.1); B1("norm2.bias", D, 0, 0.02);
        B2("mlp.fc1.weight", 4 * D, D); B1("mlp.fc1.bias", 4 * D, 0, 0.02);
        B2("mlp.fc2.weight", D, 4 * D); B1("mlp.fc2.bias", D, 0, 0.02);
    }
    T("norm.weight", 1, D, 0, 0, 0, 1, 0.1);
    T("norm.bias", 1, D, 0, 0, 0, 0, 0.02);
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"patch_size\": %d, \"embed_dim\": %d, \"depth\": %d, \"num_heads\": %d, \"mlp_ratio\": 4, "
             "\"qkv_bias\": true, \"layernorm_eps\": 1e-06, \"pos_grid\": %d}", p, D, depth, heads, g);
    const char *mk = "config", *mv = cfg;
    int rc = glad_st_save(path, k, (const char *const *)names, tp, 1, &mk, &mv);
    for (int i = 0; i < k; i++) { free(names[i]); glad_tensor_free(&ts[i]); }
    free(names); free(ts); free(tp);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 9) { fprintf(stderr, "usage: vit_bench WEIGHTS_OUT OUT_PREFIX DIM DEPTH HEADS PATCH POS_GRID SIZE...\n"); return 2; }
    int D = atoi(argv[3]), depth = atoi(argv[4]), heads = atoi(argv[5]), p = atoi(argv[6]), g = atoi(argv[7]);
    if (write_weights(argv[1], D, depth, heads, p, g)) { fprintf(stderr, "cannot write weights\n"); return 1; }
    glad_vit *v;
    if (glad_vit_load(&v, argv[1])) { fprintf(stderr, "%s\n", glad_error_detail()); return 1; }
    int blocks[4] = {3, 6, 9, 12}, nb = 4;
    if (depth < 12) { blocks[0] = depth; nb = 1; }
    for (int a = 8; a < argc; a++) {
        int S = atoi(argv[a]);
        size_t N = (size_t)(S / p) * (S / p), T = N + 1;
        float *x = malloc(sizeof(float) * 3 * S * S), *tok[4];
        for (int i = 0; i < nb; i++) tok[i] = malloc(sizeof(float) * T * D);
        glad_rng r;
        glad_rng_seed(&r, 7, (uint64_t)S, 0);
        glad_rng_normal_f32(&r, x, (size_t)3 * S * S);
        if (glad_vit_forward_tokens(v, x, 1, S, S, nb, blocks, tok, NULL)) { fprintf(stderr, "forward failed\n"); return 1; }
        /* best of the repetitions: the machine is shared, the minimum is the least disturbed */
        int it = S >= 384 ? 2 : 8;
        /* f32 and, where the CPU has AVX512_BF16, bf16 alternating (the bf16
         * weights packed by an untimed first pass) */
        int bf = glad_bf16_available();
        double dt = 1e30, db = 1e30;
        if (bf && glad_precision_set(GLAD_PREC_BF16) == 0) glad_vit_forward_tokens(v, x, 1, S, S, nb, blocks, tok, NULL);
        for (int k = 0; k < it; k++)
            for (int pr = 0; pr <= bf; pr++) {
                glad_precision_set(pr ? GLAD_PREC_BF16 : GLAD_PREC_F32);
                double t0 = bench_now();
                glad_vit_forward_tokens(v, x, 1, S, S, nb, blocks, tok, NULL);
                double d = bench_now() - t0;
                if (pr) db = d < db ? d : db;
                else dt = d < dt ? d : dt;
            }
        glad_precision_set(GLAD_PREC_F32);
        glad_vit_forward_tokens(v, x, 1, S, S, nb, blocks, tok, NULL);   /* the parity outputs below in f32 */
        printf("s%d_images_per_s=%.4f\ns%d_gflops=%.1f\n", S, 1 / dt, S, glad_vit_flops(v, S, S, blocks[nb - 1]) / dt / 1e9);
        if (bf) printf("s%d_bf16_images_per_s=%.4f\n", S, 1 / db);
        /* input and the last requested block for the reference's parity check */
        char path[600];
        snprintf(path, sizeof path, "%s%d.safetensors", argv[2], S);
        glad_tensor tx = {GLAD_DT_F32, 4, {1, 3, S, S}, x}, tt = {GLAD_DT_F32, 3, {1, (int64_t)T, D}, tok[nb - 1]};
        const char *nm[2] = {"x", "tokens"};
        const glad_tensor *tp[2] = {&tx, &tt};
        char bl[32];
        snprintf(bl, sizeof bl, "%d", blocks[nb - 1]);
        const char *mk = "block", *mv = bl;
        if (glad_st_save(path, 2, nm, tp, 1, &mk, &mv)) { fprintf(stderr, "cannot write %s\n", path); return 1; }
        free(x);
        for (int i = 0; i < nb; i++) free(tok[i]);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak_rss_mb=%.0f\n", ru.ru_maxrss / 1024.0);
    glad_vit_free(v);
    return 0;
}
