/* test_ddad_step.c - DDAD's conditioned reconstruction (w = 3, T' = 250,
 * skip 25, eta 1) with the rgb UNet fixture and the stored noises, against
 * ../shared/fixtures/ddad-step.case.safetensors (trajectory end, 1e-4). */
#include <stdlib.h>
#include "check.h"
#include "diffusion/denoise.h"
#include "diffusion/unet_eps.h"
#include "models/unet.h"
#include "io/safetensors.h"

static glad_unet *U;
static const float *NOISE;   /* (11, B, C, H, W) */
static size_t PER;
static int NB;

static void noise_fn(void *ctx, int b, int k, float *out, size_t n)
{
    (void)ctx;
    memcpy(out, NOISE + ((size_t)k * NB + b) * PER, n * sizeof(float));
}

int main(void)
{
    const char *sh = check_shared();
    if (!sh) { SKIP("../shared absent: DDAD conditioned-step parity not checked"); return check_done(); }
    char wp[512], cp[512];
    snprintf(wp, sizeof wp, "%s/fixtures/ddad-unet-rgb.weights.safetensors", sh);
    snprintf(cp, sizeof cp, "%s/fixtures/ddad-step.case.safetensors", sh);
    CHECKF(glad_unet_load(&U, wp) == 0, "%s", glad_error_detail());
    glad_st *st;
    CHECK(glad_st_open(&st, cp) == 0);
    glad_tensor y, noise, recon, ab;
    CHECK(glad_st_get_f32(st, "y", &y) == 0 && glad_st_get_f32(st, "noise", &noise) == 0);
    CHECK(glad_st_get_f32(st, "recon", &recon) == 0 && glad_st_get(st, "alpha_bar", &ab) == 0);
    NB = (int)y.shape[0];
    PER = glad_tensor_numel(&y) / NB;
    NOISE = noise.data;
    glad_unet_eps ue;
    CHECK(glad_unet_eps_init(&ue, U, 3, 32, 32) == 0);
    const glad_model_fn *m = glad_unet_eps_fn(&ue);
    glad_noise_fn nz = {noise_fn, NULL};
    glad_denoise_opts o;
    glad_denoise_opts_default(&o);
    o.eta = 1.0;
    o.cond_w = 3.0;
    CHECK(glad_ddim_plan_make(&o.plan, ab.data, 1000, 250, 25, GLAD_TS_DDAD) == 0);
    float *out = malloc(glad_tensor_numel(&y) * sizeof(float));
    CHECK(glad_denoise_run(m, &nz, NULL, &o, NB, y.data, out, NULL) == 0);
    double mx = 0, r = 0;
    for (size_t i = 0; i < glad_tensor_numel(&y); i++) {
        mx = fmax(mx, fabs(out[i] - ((float *)recon.data)[i]));
        r = fmax(r, fabs(((float *)recon.data)[i]));
    }
    CHECKF(mx / r < 1e-4, "DDAD step recon rel err %.3g", mx / r);
    fprintf(stderr, "  ddad-step: recon max-abs err %.3g (relative %.3g)\n", mx, mx / r);
    free(out);
    glad_tensor_free(&y); glad_tensor_free(&noise); glad_tensor_free(&recon); glad_tensor_free(&ab);
    glad_st_close(st);
    glad_unet_eps_free(&ue);
    glad_unet_free(U);
    return check_done();
}
