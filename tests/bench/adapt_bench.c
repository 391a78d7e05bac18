/* adapt_bench.c - times the loss steps of lib/models/adapt.h for make bench
 * (issue #21's speed target): random weights of the published shapes
 * written to safetensors (so tests/ref/adapt_bench_ref.py runs the identical
 * networks), random inputs written beside them, then STEPS optimiser steps of
 * the official batch, each as glad-adapt's epoch loop does it:
 *   ddad  wide_resnet50_2 (layer1..3 trained, train-mode BatchNorm): two
 *         halves of HALF images at SIZE (reconstruction x0 and target y, the
 *         reconstructions themselves not timed: they are the sampler's),
 *         glad_adapt_ddad_grad (two train forwards, two frozen forwards,
 *         cosine losses, two backwards) + AdamW over every parameter;
 *   dino  DINO ViT-S/8 (dim 384, depth 12, 6 heads, pos grid 28): a batch of
 *         HALF image/reconstruction pairs at SIZE, glad_adapt_dino_grad
 *         (blocks 3,6,9,12, only their MLPs train) + Adam over those MLPs
 *         (one micro-batch per step: the accumulation changes nothing timed).
 * The files are made only when missing (the same seed makes the same ones).
 *   adapt_bench ddad|dino WEIGHTS INPUTS SIZE HALF STEPS
 * prints key=value lines: step_s (each step's wall time, space-separated),
 * step_cpu_s (each step's process CPU time), loss0 (the first step's loss,
 * for the reference's parity), max_rss_mb. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "core/rng.h"
#include "io/safetensors.h"
#include "models/adapt.h"
#include "bench.h"

static bench_weights W;

/* wide_resnet50_2 to layer3 (layer4 and fc unused by DDAD: PyTorch gives them no gradient) */
static int write_wrn(const char *path)
{
    bench_w_wrn50_2_layer3(&W);
    return bench_w_save(&W, path, "{\"block\": \"bottleneck\", \"layers\": [3, 4, 6, 3], \"width_per_group\": 128, "
                      "\"note\": \"wide_resnet50_2, random weights, layer4 and fc omitted\"}");
}

/* DINO ViT-S/8 */
static int write_vit(const char *path)
{
    const int D = 384, depth = 12, g = 28;
    glad_rng_seed(&W.rng, 1, 2, 3);
    bench_w_add(&W, "cls_token", 4, 3, 1, 1, D, 0);
    bench_w_add(&W, "pos_embed", 4, 3, 1, 1 + g * g, D, 0);
    bench_w_add(&W, "patch_embed.proj.weight", 4, 4, D, 3, 8, 8);
    bench_w_add(&W, "patch_embed.proj.bias", 4, 1, D, 0, 0, 0);
    static const char *const bn[12] = {"norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                                       "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                                       "mlp.fc2.weight", "mlp.fc2.bias"};
    static const int rows[12] = {1, 1, 3, 3, 1, 1, 1, 1, 4, 4, 1, 1}, cols[12] = {0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 0};
    for (int i = 0; i < depth; i++)
        for (int j = 0; j < 12; j++) {
            char n[64];
            snprintf(n, sizeof n, "blocks.%d.%s", i, bn[j]);
            bench_w_add(&W, n, j == 0 || j == 6 ? 5 : 4, cols[j] ? 2 : 1, (int64_t)rows[j] * D, (int64_t)cols[j] * D, 0, 0);
        }
    bench_w_add(&W, "norm.weight", 5, 1, D, 0, 0, 0);
    bench_w_add(&W, "norm.bias", 4, 1, D, 0, 0, 0);
    return bench_w_save(&W, path, "{\"patch_size\": 8, \"embed_dim\": 384, \"depth\": 12, \"num_heads\": 6, \"mlp_ratio\": 4, "
                      "\"qkv_bias\": true, \"layernorm_eps\": 1e-06, \"pos_grid\": 28}");
}

/* a: N(0,1) images, b: 0.8 a + 0.6 N(0,1) (a reconstruction close to its image), (n,3,S,S) each */
static int write_inputs(const char *path, int n, int S)
{
    glad_tensor a, b;
    glad_rng_seed(&W.rng, 5, (uint64_t)S, (uint64_t)n);
    if (glad_tensor_alloc4(&a, GLAD_DT_F32, n, 3, S, S) || glad_tensor_alloc4(&b, GLAD_DT_F32, n, 3, S, S)) return -1;
    size_t m = glad_tensor_numel(&a);
    float *pa = a.data, *pb = b.data;
    glad_rng_normal_f32(&W.rng, pa, m);
    glad_rng_normal_f32(&W.rng, pb, m);
    for (size_t i = 0; i < m; i++) pb[i] = 0.8f * pa[i] + 0.6f * pb[i];
    const char *nm[2] = {"a", "b"};
    const glad_tensor *t[2] = {&a, &b};
    int rc = glad_st_save(path, 2, nm, t, 0, NULL, NULL);
    glad_tensor_free(&a); glad_tensor_free(&b);
    return rc;
}

static int fail(const char *what) { fprintf(stderr, "adapt_bench: %s: %s\n", what, glad_error_detail()); return 1; }

int main(int argc, char **argv)
{
    if (argc != 7 || (strcmp(argv[1], "ddad") && strcmp(argv[1], "dino"))) {
        fprintf(stderr, "usage: adapt_bench ddad|dino WEIGHTS INPUTS SIZE HALF STEPS\n");
        return 2;
    }
    int dd = !strcmp(argv[1], "ddad"), S = atoi(argv[4]), B = atoi(argv[5]), steps = atoi(argv[6]);
    if (S < 16 || B < 1 || steps < 1) { fprintf(stderr, "adapt_bench: bad SIZE, HALF or STEPS\n"); return 2; }
    if (access(argv[2], R_OK) && (dd ? write_wrn(argv[2]) : write_vit(argv[2]))) return fail("cannot write weights");
    if (access(argv[3], R_OK) && write_inputs(argv[3], B, S)) return fail("cannot write inputs");
    glad_st *in;
    if (glad_st_open(&in, argv[3])) return fail(argv[3]);
    const glad_st_entry *ea = glad_st_find(in, "a"), *eb = glad_st_find(in, "b");
    if (!ea || !eb || ea->shape[0] != B || ea->shape[2] != S) { fprintf(stderr, "adapt_bench: %s: not %d images at %d\n", argv[3], B, S); return 1; }
    const float *xa = glad_st_data(in, ea), *xb = glad_st_data(in, eb);

    glad_adapt_config c;
    glad_adapt_config_default(&c, dd ? GLAD_ADAPT_DDAD_DA : GLAD_ADAPT_DINO_FT);
    c.lr = dd ? 1e-4 : 3e-4; c.wd = dd ? 0.01 : 0;
    glad_adam_cfg ac;
    glad_adapt_adam_cfg(&c, &ac);
    glad_resnet_train *rt = NULL;
    glad_resnet *rf = NULL;
    glad_vit *v = NULL, *vf = NULL;
    glad_vit_tape *tape = NULL;
    int blocks[4], nb = 0;
    /* the optimised tensors: p, g, n (ddad: one flat range; dino: each MLP tensor) */
    float *P[64], *G[64], *M[64], *V[64];
    size_t N[64];
    int np = 0;
    if (dd) {
        if (glad_resnet_train_load(&rt, argv[2]) || glad_resnet_load_winograd(&rf, argv[2], 0)) return fail(argv[2]);
        P[0] = glad_resnet_train_params(rt, &G[0], &N[0]);
        np = 1;
    } else {
        if (glad_vit_load(&v, argv[2]) || glad_vit_load(&vf, argv[2])) return fail(argv[2]);
        nb = glad_adapt_dino_blocks(12, blocks);
        char pre[4][32];
        const char *pp[4];
        for (int i = 0; i < nb; i++) { snprintf(pre[i], sizeof pre[i], "blocks.%d.mlp.", blocks[i] - 1); pp[i] = pre[i]; }
        if (glad_vit_tape_new(&tape, v, nb, pp)) return fail("tape");
        for (int i = 0; i < glad_vit_param_count(v); i++) {
            const char *nm = glad_vit_param_name(v, i);
            int want = 0;
            for (int k = 0; k < nb; k++) want |= !strncmp(nm, pp[k], strlen(pp[k]));
            if (!want || np == 64) continue;
            P[np] = glad_vit_param(v, nm, &N[np]);
            G[np] = glad_vit_grad(tape, nm, &N[np]);
            np++;
        }
    }
    for (int i = 0; i < np; i++) {
        M[i] = calloc(N[i], 4); V[i] = calloc(N[i], 4);
        if (!M[i] || !V[i]) { fprintf(stderr, "adapt_bench: out of memory\n"); return 1; }
    }
    double loss0 = 0, *cpu = calloc((size_t)steps, sizeof(double));
    if (!cpu) return 1;
    printf("step_s=");
    for (int s = 0; s < steps; s++) {
        double L, c0 = bench_cputime(CLOCK_PROCESS_CPUTIME_ID), t0 = bench_now();
        int rc;
        if (dd) rc = glad_adapt_ddad_grad(rt, rf, xa, xb, B, S, S, 0.1, &L);
        else {
            glad_vit_zero_grad(tape);
            rc = glad_adapt_dino_grad(tape, vf, xa, xb, B, S, S, nb, blocks, 0.01, 1.0, &L);
        }
        if (rc) return fail("step");
        for (int i = 0; i < np; i++) glad_adam_step(P[i], G[i], M[i], V[i], N[i], &ac, s + 1);
        printf("%s%.3f", s ? " " : "", bench_now() - t0);
        fflush(stdout);
        cpu[s] = bench_cputime(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (s == 0) loss0 = L;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\nstep_cpu_s=");
    for (int s = 0; s < steps; s++) printf("%s%.3f", s ? " " : "", cpu[s]);
    printf("\nloss0=%.8g\nmax_rss_mb=%.0f\n", loss0, ru.ru_maxrss / 1024.0);
    free(cpu);
    for (int i = 0; i < np; i++) { free(M[i]); free(V[i]); }
    glad_resnet_train_free(rt); glad_resnet_free(rf);
    glad_vit_tape_free(tape); glad_vit_free(v); glad_vit_free(vf);
    glad_st_close(in);
    return 0;
}
