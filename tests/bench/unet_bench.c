/* unet_bench.c - times the UNet for make bench: batch forward, a training
 * step (forward + backward + Adam), a DDIM-10 reconstruction, and OpenBLAS
 * sgemm on 2048^2 as the machine's practical peak. Weights are written to a
 * safetensors file so the PyTorch reference runs the identical network.
 * Also the activation memory of a batch-8 training step.
 *   unet_bench SIZE BASE HEADS WEIGHTS_OUT   (prints key=value lines)
 * and where the time of one DDIM step (one batch-1 forward) goes, per layer
 * kind and for the slowest layers, in f32 and (where the CPU has it) bf16:
 *   unet_bench --profile SIZE BASE HEADS
 * and where the time of a training step goes (forward and backward per op
 * kind, Adam), in the process's precision (UNET_BENCH_ONLY=bf16: bf16):
 *   unet_bench --train-profile SIZE BASE HEADS BATCH ROUNDS [tiny]
 * (tiny: glad-train's tiny preset, the main job's network) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "diffusion/denoise.h"
#include "diffusion/schedule.h"
#include "diffusion/train.h"
#include "diffusion/unet_eps.h"
#include "models/unet.h"
#include "nn/bf16.h"
#include "bench.h"


static glad_unet *U;

static void noise_fn(void *ctx, int b, int k, float *out, size_t n) { (void)ctx; for (size_t i = 0; i < n; i++) out[i] = (float)((i * 2654435761u + b * 97 + k) % 1000) / 500.0f - 1.0f; }

/* U: DDAD-S-like at S x S with base channels and heads, weights initialised
 * and non-zero everywhere (so the reference computes the same work) */
static int make_unet(int S, int base, int heads, int tiny)
{
    glad_unet_config cfg;
    /* tiny: glad-train's preset (multipliers 1,2,2, one res block, attention at 16) */
    glad_train_preset_config(&cfg, tiny ? GLAD_TRAIN_PRESET_TINY : GLAD_TRAIN_PRESET_DDAD, S, 3);
    cfg.base = base; cfg.heads = heads;
    if (glad_unet_create(&U, &cfg)) { fprintf(stderr, "cannot build\n"); return 1; }
    glad_unet_init(U, 1);
    float *w = glad_unet_weights(U);
    for (size_t i = 0; i < glad_unet_nparams(U); i++) if (w[i] == 0) w[i] = 1e-3f * (float)((int)(i % 13) - 6);
    return 0;
}

/* the profile of REPS batch-1 forwards in the process's precision into rows (max NR) */
#define NR 512
static int profile_pass(const float *x, float *e, const float *t, glad_unet_prof *rows)
{
    enum { REPS = 5 };
    glad_unet_forward(U, e, x, t, 1, 0, 0);   /* graph, arena, bf16 weight cache */
    glad_unet_profile(U, 1);
    for (int r = 0; r < REPS; r++) glad_unet_forward(U, e, x, t, 1, 0, 0);
    glad_unet_profile(U, 0);
    int n = glad_unet_profile_rows(U, rows, NR);
    for (int i = 0; i < n && i < NR; i++) { rows[i].seconds /= REPS; rows[i].flops /= REPS; }
    return n < NR ? n : NR;
}

static int profile(int S, int base, int heads)
{
    if (make_unet(S, base, heads, 0)) return 1;
    size_t per = (size_t)3 * S * S;
    float *x = malloc(per * sizeof(float)), *e = malloc(per * sizeof(float)), t[1] = {500};
    static glad_unet_prof f[NR], b[NR];
    if (!x || !e) return 1;
    for (size_t i = 0; i < per; i++) x[i] = (float)((i * 7919) % 2000) / 1000.0f - 1.0f;
    int nf = profile_pass(x, e, t, f), nb = 0;
    if (glad_precision_set(GLAD_PREC_BF16) == 0) { nb = profile_pass(x, e, t, b); glad_precision_set(GLAD_PREC_F32); }
    if (nb && nb != nf) { fprintf(stderr, "profiles differ in length\n"); return 1; }
    double tf = 0, tb = 0;
    for (int i = 0; i < nf; i++) { tf += f[i].seconds; tb += nb ? b[i].seconds : 0; }
    printf("one DDIM step (batch-1 forward) at %dx%d, base %d, %d heads: f32 %.1f ms%s", S, S, base, heads, 1e3 * tf, nb ? "" : "\n");
    if (nb) printf(", bf16 %.1f ms (%.2fx)\n", 1e3 * tb, tf / tb);
    /* by kind, in order of f32 time */
    const char *kinds[32]; double kf[32] = {0}, kb[32] = {0}, kfl[32] = {0}; int kn[32] = {0}, nk = 0;
    for (int i = 0; i < nf; i++) {
        int k = 0;
        while (k < nk && strcmp(kinds[k], f[i].kind)) k++;
        if (k == nk) { if (nk == 32) continue; kinds[nk++] = f[i].kind; }
        kf[k] += f[i].seconds; kb[k] += nb ? b[i].seconds : 0; kfl[k] += f[i].flops; kn[k]++;
    }
    printf("  %-28s %5s %9s %6s %9s %6s %8s %8s\n", "kind", "ops", "f32 ms", "%", "bf16 ms", "%", "f32 GF/s", "bf16 GF/s");
    for (int done = 0; done < nk; done++) {
        int k = -1;
        for (int j = 0; j < nk; j++) if (kn[j] && (k < 0 || kf[j] > kf[k])) k = j;
        printf("  %-28s %5d %9.2f %5.1f%% %9.2f %5.1f%% %8.0f %8.0f\n", kinds[k], kn[k], 1e3 * kf[k], 100 * kf[k] / tf, 1e3 * kb[k],
               nb ? 100 * kb[k] / tb : 0.0, kfl[k] / kf[k] / 1e9, nb && kb[k] > 0 ? kfl[k] / kb[k] / 1e9 : 0.0);
        kn[k] = 0;
    }
    /* the slowest layers in f32, with their bf16 time */
    printf("  slowest layers (input B,C,HxW -> OC):\n");
    for (int r = 0; r < 12 && r < nf; r++) {
        int m = -1;
        for (int i = 0; i < nf; i++) if (f[i].calls && (m < 0 || f[i].seconds > f[m].seconds)) m = i;
        printf("  %3d %-28s %d,%d,%dx%d -> %d  f32 %.2f ms  bf16 %.2f ms\n", m, f[m].kind, f[m].B, f[m].C, f[m].H, f[m].W, f[m].OC,
               1e3 * f[m].seconds, nb ? 1e3 * b[m].seconds : 0.0);
        f[m].calls = 0;
    }
    glad_unet_free(U);
    free(x); free(e);
    return 0;
}

static int cmp_d(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static int train_alternating(int S, int base, int heads, int B, int rounds, int tiny)
{
    glad_unet_config cfg;
    /* tiny: glad-train's preset (multipliers 1,2,2, one res block, attention at 16) */
    glad_train_preset_config(&cfg, tiny ? GLAD_TRAIN_PRESET_TINY : GLAD_TRAIN_PRESET_DDAD, S, 3);
    cfg.base = base; cfg.heads = heads;
    if (glad_unet_create(&U, &cfg)) { fprintf(stderr, "cannot build\n"); return 1; }
    glad_unet_init(U, 1);
    float *w = glad_unet_weights(U);
    size_t P = glad_unet_nparams(U), per = (size_t)3 * S * S;
    for (size_t i = 0; i < P; i++) if (w[i] == 0) w[i] = 1e-3f * (float)((int)(i % 13) - 6);
    float *x = malloc(per * B * sizeof(float)), *e = malloc(per * B * sizeof(float)), *t = malloc(B * sizeof(float));
    float *m = calloc(P, 4), *v = calloc(P, 4);
    double *tw[2], *tc[2];
    for (int p = 0; p < 2; p++) { tw[p] = calloc(rounds, sizeof(double)); tc[p] = calloc(rounds, sizeof(double)); }
    for (size_t i = 0; i < per * B; i++) x[i] = (float)((i * 7919) % 2000) / 1000.0f - 1.0f;
    for (int b = 0; b < B; b++) t[b] = (float)(10 + 297 * b % 990);
    glad_adam_cfg oc = {1e-4f, 0.9f, 0.999f, 1e-8f, 0, 0};
    int np = glad_precision_set(GLAD_PREC_BF16) == 0 ? 2 : 1;
    glad_precision_set(GLAD_PREC_F32);
    /* UNET_BENCH_ONLY=f32 or bf16: that precision alone (for perf record) */
    const char *only = getenv("UNET_BENCH_ONLY");
    int p0 = only && !strcmp(only, "bf16") && np == 2, p1 = only && !strcmp(only, "f32") ? 1 : np;
    for (int r = -1; r < rounds; r++)   /* round -1 warms up (arena, graph) */
        for (int p = p0; p < p1; p++) {
            glad_precision_set(p ? GLAD_PREC_BF16 : GLAD_PREC_F32);
            double s0 = bench_now(), c0 = bench_cputime(CLOCK_PROCESS_CPUTIME_ID);
            glad_unet_zero_grad(U);
            glad_unet_forward(U, e, x, t, B, 1, (uint64_t)r);
            glad_unet_backward(U, e, NULL);
            glad_adam_step(w, glad_unet_grads(U), m, v, P, &oc, r + 2);
            if (r >= 0) { tw[p][r] = bench_now() - s0; tc[p][r] = bench_cputime(CLOCK_PROCESS_CPUTIME_ID) - c0; }
            glad_precision_set(GLAD_PREC_F32);
        }
    double med[2][2] = {{0}};
    for (int p = p0; p < p1; p++) {
        qsort(tw[p], rounds, sizeof(double), cmp_d);
        qsort(tc[p], rounds, sizeof(double), cmp_d);
        med[p][0] = tw[p][rounds / 2]; med[p][1] = tc[p][rounds / 2];
        printf("train_%s_wall_s=%.4f\ntrain_%s_cpu_s=%.4f\n", p ? "bf16" : "f32", med[p][0], p ? "bf16" : "f32", med[p][1]);
    }
    if (p0 == 0 && p1 == 2) printf("f32_over_bf16_wall=%.3f\nf32_over_bf16_cpu=%.3f\n", med[0][0] / med[1][0], med[0][1] / med[1][1]);
    for (int p = 0; p < 2; p++) { free(tw[p]); free(tc[p]); }
    free(x); free(e); free(t); free(m); free(v);
    glad_unet_free(U);
    return 0;
}

/* the mean of ROUNDS training steps (after one warm-up step) by op kind,
 * forward and backward, and the slowest backward layers */
static int train_profile(int S, int base, int heads, int B, int rounds, int tiny)
{
    if (make_unet(S, base, heads, tiny) || rounds < 1) return 1;
    const char *only = getenv("UNET_BENCH_ONLY");
    int bf = only && !strcmp(only, "bf16");
    if (bf && glad_precision_set(GLAD_PREC_BF16)) { fprintf(stderr, "no bf16 on this CPU\n"); return 1; }
    float *w = glad_unet_weights(U);
    size_t P = glad_unet_nparams(U), per = (size_t)3 * S * S;
    float *x = malloc(per * B * sizeof(float)), *e = malloc(per * B * sizeof(float)), *t = malloc(B * sizeof(float));
    float *m = calloc(P, 4), *v = calloc(P, 4);
    static glad_unet_prof f[NR];
    if (!x || !e || !t || !m || !v) return 1;
    for (size_t i = 0; i < per * B; i++) x[i] = (float)((i * 7919) % 2000) / 1000.0f - 1.0f;
    for (int b = 0; b < B; b++) t[b] = (float)(10 + 297 * b % 990);
    glad_adam_cfg oc = {1e-4f, 0.9f, 0.999f, 1e-8f, 0, 0};
    double ta = 0, tz = 0, tstep = 0;
    for (int r = -1; r < rounds; r++) {
        if (r == 0) glad_unet_profile(U, 1);
        double s0 = bench_now();
        glad_unet_zero_grad(U);
        double s1 = bench_now();
        glad_unet_forward(U, e, x, t, B, 1, (uint64_t)r);
        glad_unet_backward(U, e, NULL);
        double s2 = bench_now();
        glad_adam_step(w, glad_unet_grads(U), m, v, P, &oc, r + 2);
        double s3 = bench_now();
        if (r >= 0) { tz += s1 - s0; ta += s3 - s2; tstep += s3 - s0; }
    }
    glad_unet_profile(U, 0);
    int n = glad_unet_profile_rows(U, f, NR);
    if (n > NR) n = NR;
    double tf = 0, tb = 0;
    for (int i = 0; i < n; i++) { tf += f[i].seconds / rounds; tb += f[i].back_seconds / rounds; }
    tz /= rounds; ta /= rounds; tstep /= rounds;
    printf("training step (batch %d) at %dx%d, base %d, %d heads, %s: %.1f ms = forward %.1f + backward %.1f + Adam %.1f + zero_grad %.1f"
           " (+ %.1f outside ops)\n", B, S, S, base, heads, bf ? "bf16" : "f32", 1e3 * tstep, 1e3 * tf, 1e3 * tb, 1e3 * ta, 1e3 * tz,
           1e3 * (tstep - tf - tb - ta - tz));
    /* by kind (conv3x3 kinds also by plane side), in order of forward + backward time */
    const char *kinds[64]; int side[64], kn[64] = {0}, nk = 0; double kf[64] = {0}, kb[64] = {0};
    for (int i = 0; i < n; i++) {
        int sd = strstr(f[i].kind, "conv3x3") ? f[i].W : 0, k = 0;
        while (k < nk && (strcmp(kinds[k], f[i].kind) || side[k] != sd)) k++;
        if (k == nk) { if (nk == 64) continue; kinds[nk] = f[i].kind; side[nk++] = sd; }
        kf[k] += f[i].seconds / rounds; kb[k] += f[i].back_seconds / rounds; kn[k]++;
    }
    printf("  %-28s %5s %5s %9s %9s %6s\n", "kind", "side", "ops", "fwd ms", "bwd ms", "%step");
    for (int done = 0; done < nk; done++) {
        int k = -1;
        for (int j = 0; j < nk; j++) if (kn[j] && (k < 0 || kf[j] + kb[j] > kf[k] + kb[k])) k = j;
        printf("  %-28s %5d %5d %9.2f %9.2f %5.1f%%\n", kinds[k], side[k], kn[k], 1e3 * kf[k], 1e3 * kb[k], 100 * (kf[k] + kb[k]) / tstep);
        kn[k] = 0;
    }
    printf("  slowest backward layers (input B,C,HxW -> OC):\n");
    for (int r = 0; r < 15 && r < n; r++) {
        int k = -1;
        for (int i = 0; i < n; i++) if (f[i].back_calls && (k < 0 || f[i].back_seconds > f[k].back_seconds)) k = i;
        if (k < 0) break;
        printf("  %3d %-28s %d,%d,%dx%d -> %d  fwd %.2f ms  bwd %.2f ms\n", k, f[k].kind, f[k].B, f[k].C, f[k].H, f[k].W, f[k].OC,
               1e3 * f[k].seconds / rounds, 1e3 * f[k].back_seconds / rounds);
        f[k].back_calls = 0;
    }
    glad_precision_set(GLAD_PREC_F32);
    free(x); free(e); free(t); free(m); free(v);
    glad_unet_free(U);
    return 0;
}

int main(int argc, char **argv)
{
    if ((argc == 7 || argc == 8) && !strcmp(argv[1], "--train-profile"))
        return train_profile(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), argc > 7 && !strcmp(argv[7], "tiny"));
    if (argc >= 7 && !strcmp(argv[1], "--train"))
        return train_alternating(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), argc > 7 && !strcmp(argv[7], "tiny"));
    if (argc == 5 && !strcmp(argv[1], "--profile")) return profile(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    if (argc < 5) { fprintf(stderr, "usage: unet_bench SIZE BASE HEADS WEIGHTS_OUT\n"); return 2; }
    int S = atoi(argv[1]), base = atoi(argv[2]), heads = atoi(argv[3]);
    printf("sgemm_gflops=%.1f\n", bench_sgemm_gflops());
    double t0;
    if (make_unet(S, base, heads, 0)) return 1;
    float *w = glad_unet_weights(U);
    if (glad_unet_save(U, argv[4], NULL, 0, NULL, NULL, 0, NULL, NULL)) { fprintf(stderr, "cannot save\n"); return 1; }
    size_t per = (size_t)3 * S * S;
    int B = 4;
    float *x = malloc(per * B * sizeof(float)), *e = malloc(per * B * sizeof(float)), t[4] = {10, 200, 500, 900};
    for (size_t i = 0; i < per * B; i++) x[i] = (float)((i * 7919) % 2000) / 1000.0f - 1.0f;
    /* batch-1 forward */
    glad_unet_forward(U, e, x, t, 1, 0, 0);
    /* every figure is the fastest of its repetitions: the least disturbed by
     * whatever else the machine runs (the reference does the same) */
    int it = S >= 256 ? 3 : 6;
    double fwd = 1e30;
    for (int r = 0; r < it; r++) {
        t0 = bench_now();
        glad_unet_forward(U, e, x, t, 1, 0, 0);
        double d = bench_now() - t0;
        if (d < fwd) fwd = d;
    }
    /* batch-4 forward (inference) */
    double fwd4 = 1e30;
    glad_unet_forward(U, e, x, t, B, 0, 0);
    for (int r = 0; r < (it + 1) / 2; r++) {
        t0 = bench_now();
        glad_unet_forward(U, e, x, t, B, 0, 0);
        double d = bench_now() - t0;
        if (d < fwd4) fwd4 = d;
    }
    printf("forward_b4_s=%.4f\n", fwd4);
    glad_unet_forward(U, e, x, t, 1, 1, 0);
    double flops1 = glad_unet_forward_flops(U);
    printf("forward_b1_s=%.4f\nforward_gflops=%.1f\n", fwd, flops1 / fwd / 1e9);
    /* batch-4 training step: forward + backward + Adam */
    size_t P = glad_unet_nparams(U);
    float *m = calloc(P, 4), *v = calloc(P, 4);
    glad_adam_cfg oc = {1e-4f, 0.9f, 0.999f, 1e-8f, 0, 0};
    double step = 1e30;
    for (int r = 0; r <= it; r++) {
        double s0 = bench_now();
        glad_unet_zero_grad(U);
        glad_unet_forward(U, e, x, t, B, 1, (uint64_t)r);
        glad_unet_backward(U, e, NULL);
        glad_adam_step(w, glad_unet_grads(U), m, v, P, &oc, r + 1);
        double d = bench_now() - s0;
        if (r > 0 && d < step) step = d;   /* the first step allocates the arena */
    }
    printf("train_b4_s=%.4f\ntrain_gflops=%.1f\npeak_activation_mb=%.0f\n", step, 3 * glad_unet_forward_flops(U) / step / 1e9,
           glad_unet_arena_peak(U) / 1048576.0);
    /* DDIM-10 fixed step, batch 4 */
    double ab[1000];
    glad_schedule_alpha_bar(ab, 1000, GLAD_BETAS_LINEAR);
    glad_denoise_opts o;
    glad_denoise_opts_default(&o);
    glad_ddim_plan_make(&o.plan, ab, 1000, 250, 25, GLAD_TS_CONSISTENT);
    glad_unet_eps ue;
    if (glad_unet_eps_init(&ue, U, 3, S, S)) { fprintf(stderr, "%s\n", glad_error_detail()); return 1; }
    glad_noise_fn nf = {noise_fn, NULL};
    float *rec = malloc(per * B * sizeof(float));
    double dd = 1e30;
    for (int r = 0; r < 2; r++) {
        t0 = bench_now();
        glad_denoise_run(glad_unet_eps_fn(&ue), &nf, NULL, &o, B, x, rec, NULL);
        double d = bench_now() - t0;
        if (d < dd) dd = d;
    }
    printf("ddim10_images_per_s=%.3f\n", B / dd);
    /* bf16 (nn/bf16.h) where the CPU has it: forward b1 and b4, DDIM-10 (the
     * accuracy is tests/test_bf16.c's: this network's weights are not trained) */
    if (glad_precision_set(GLAD_PREC_BF16) == 0) {
        double bf = 1e30, bf4 = 1e30, bd = 1e30;
        glad_unet_forward(U, e, x, t, 1, 0, 0);   /* fills the bf16 weight cache */
        for (int k = 0; k < it; k++) {
            t0 = bench_now();
            glad_unet_forward(U, e, x, t, 1, 0, 0);
            double d = bench_now() - t0;
            if (d < bf) bf = d;
        }
        for (int k = 0; k < (it + 1) / 2; k++) {
            t0 = bench_now();
            glad_unet_forward(U, e, x, t, B, 0, 0);
            double d = bench_now() - t0;
            if (d < bf4) bf4 = d;
        }
        for (int k = 0; k < 2; k++) {
            t0 = bench_now();
            glad_denoise_run(glad_unet_eps_fn(&ue), &nf, NULL, &o, B, x, rec, NULL);
            double d = bench_now() - t0;
            if (d < bd) bd = d;
        }
        /* the batch-4 training step in mixed precision (train.h's bf16) */
        double bs = 1e30;
        for (int r = 0; r <= it; r++) {
            double s0 = bench_now();
            glad_unet_zero_grad(U);
            glad_unet_forward(U, e, x, t, B, 1, (uint64_t)r);
            glad_unet_backward(U, e, NULL);
            glad_adam_step(w, glad_unet_grads(U), m, v, P, &oc, r + 1);
            double d = bench_now() - s0;
            if (r > 0 && d < bs) bs = d;
        }
        glad_precision_set(GLAD_PREC_F32);
        printf("forward_b1_bf16_s=%.4f\nforward_b4_bf16_s=%.4f\nddim10_bf16_images_per_s=%.3f\ntrain_b4_bf16_s=%.4f\n", bf, bf4, B / bd, bs);
    }
    /* activation memory of a batch-8 training step (issue #4: <= 4 GB at 256) */
    float *x8 = malloc(per * 8 * sizeof(float)), *e8 = malloc(per * 8 * sizeof(float)), t8[8];
    for (int i = 0; i < 8; i++) { t8[i] = t[i % 4]; memcpy(x8 + per * i, x + per * (i % 4), per * sizeof(float)); }
    glad_unet_zero_grad(U);
    if (glad_unet_forward(U, e8, x8, t8, 8, 1, 0) == 0 && glad_unet_backward(U, e8, NULL) == 0)
        printf("peak_activation_b8_mb=%.0f\n", glad_unet_arena_peak(U) / 1048576.0);
    free(x8); free(e8);
    glad_unet_eps_free(&ue);
    glad_unet_free(U);
    free(x); free(e); free(m); free(v); free(rec);
    return 0;
}
