/* anomaly_map.c - a libglad example: reconstruct one image with a trained
 * diffusion model (glad-train) by deterministic DDIM (noised to t = 250,
 * 10 model calls), and write the anomaly map, mean_c |image - reconstruction|
 * smoothed (sigma 4) and scaled so its maximum is white, as a grey PNG of the
 * input's size; print the image score (the map's maximum).
 *   cc $(pkg-config --cflags glad) anomaly_map.c $(pkg-config --libs glad)
 *   ./a.out MODEL IN.png OUT.png */
#include <stdio.h>
#include <stdlib.h>
#include "libglad.h"

/* DDIM with eta 0 draws only the initial noise; seeded per (record, draw) */
static void noise_fn(void *ctx, int b, int k, float *out, size_t n)
{
    (void)ctx;
    glad_rng r;
    glad_rng_seed(&r, 0, (uint64_t)b, (uint64_t)k);
    glad_rng_normal_f32(&r, out, n);
}

int main(int argc, char **argv)
{
    if (argc != 4) { fprintf(stderr, "usage: anomaly_map MODEL IN.png OUT.png\n"); return 2; }
    glad_model m = {0};
    glad_unet_eps ue = {0};   /* the UNet as the noise predictor eps = UNet(x, t) */
    glad_tensor img = {0}, chan = {0}, in = {0}, png = {0};
    float *y = NULL, *recon = NULL, *D = NULL, *big = NULL;
    int rc, C, S, c0, H, W;
    glad_error_clear();
    GLAD_TRYG(rc, glad_model_load(&m, argv[1]), out);
    C = glad_unet_cfg(m.unet)->in_channels, S = glad_unet_cfg(m.unet)->img_size;
    GLAD_TRYG(rc, glad_image_read(argv[2], &img), out);   /* [C,H,W] u8: to the model's channels and size */
    GLAD_TRYG(rc, glad_tensor_chw(&img, &c0, &H, &W), out);
    GLAD_TRYG(rc, glad_image_channels(&chan, &img, C), out);
    GLAD_TRYG(rc, glad_image_resize(&in, &chan, S, S, 0), out);
    size_t n = (size_t)C * S * S, hw = (size_t)H * W;
    y = malloc(n * sizeof *y), recon = malloc(n * sizeof *recon), D = malloc(n * sizeof *D), big = malloc(hw * sizeof *big);
    if (!y || !recon || !D || !big) { rc = GLAD_ENOMEM; goto out; }
    GLAD_TRYG(rc, glad_tensor_image_to_f32(&in, y), out);   /* u8 -> [-1,1] */
    glad_denoise_opts o;
    glad_denoise_opts_default(&o);
    GLAD_TRYG(rc, glad_ddim_plan_make(&o.plan, m.alpha_bar, m.T, 250, 25, GLAD_TS_CONSISTENT), out);
    GLAD_TRYG(rc, glad_unet_eps_init(&ue, m.unet, C, S, S), out);
    glad_noise_fn nz = {.draw = noise_fn};
    GLAD_TRYG(rc, glad_denoise_run(glad_unet_eps_fn(&ue), &nz, NULL, &o, 1, y, recon, NULL), out);
    GLAD_TRYG(rc, glad_score_pixel_map(D, y, recon, C, S, S, 0), out);
    GLAD_TRYG(rc, glad_score_gaussian_blur(D, S, S, 4.0), out);
    GLAD_TRYG(rc, glad_resize_bilinear(big, H, W, D, 1, S, S, 0), out);
    double top = glad_score_max(D, (size_t)S * S);
    for (size_t i = 0; i < hw; i++) big[i] = top > 0 ? (float)(2 * big[i] / top - 1) : -1;   /* [0,top] -> [-1,1] */
    GLAD_TRYG(rc, glad_tensor_image_from_f32(&png, GLAD_DT_U8, 2, (int64_t[]){H, W}, big), out);
    GLAD_TRYG(rc, glad_image_write_png(argv[3], &png), out);
    printf("%s: score %.6f\n", argv[2], top);
out:
    if (rc) fprintf(stderr, "anomaly_map: %s\n", *glad_error_detail() ? glad_error_detail() : glad_strerror(rc));
    free(y), free(recon), free(D), free(big);
    glad_tensor_free(&img), glad_tensor_free(&chan), glad_tensor_free(&in), glad_tensor_free(&png);
    glad_unet_eps_free(&ue);
    glad_model_free(&m);
    return rc ? 1 : 0;
}
