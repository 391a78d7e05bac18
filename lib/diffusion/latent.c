/* latent.c - GLAD's latent pipeline (latent.h): loading a model folder, the
 * scheduler's ᾱ table, classifier-free guidance around the SD UNet, the
 * scaled VAE encode / decode, the decoding ADS adapter, and the run. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/json.h"
#include "diffusion/latent.h"

#define MAX_T 100000

/* ᾱ_t = prod_{s<=t} (1 − β_s) of a diffusers scheduler config: β linear
 * from beta_start to beta_end, or "scaled_linear" (linspace of the square
 * roots, squared), over num_train_timesteps (ddim_scheduling.py:215-231) */
static int schedule(glad_latent *m, const char *js)
{
    glad_json *j;
    if (!js || glad_json_parse(js, strlen(js), &j) || j->type != GLAD_JSON_OBJ) {
        if (js) glad_json_free(j);
        return glad_fail(GLAD_EFORMAT, "scheduler config: not a JSON object");
    }
    double T = glad_json_num(glad_json_get(j, "num_train_timesteps"), 1000);
    double b0 = glad_json_num(glad_json_get(j, "beta_start"), 0.0001), b1 = glad_json_num(glad_json_get(j, "beta_end"), 0.02);
    const char *kind = glad_json_str(glad_json_get(j, "beta_schedule"), "linear");
    int scaled = !strcmp(kind, "scaled_linear"), rc = 0;
    if (!scaled && strcmp(kind, "linear")) rc = glad_fail(GLAD_EUNSUPPORTED, "scheduler config: beta_schedule %.64s (linear or scaled_linear)", kind);
    else if (!(T >= 2 && T <= MAX_T && T == floor(T)))
        rc = glad_fail(GLAD_ERANGE, "scheduler config: num_train_timesteps %g (2..%d)", T, MAX_T);
    else if (!(b0 > 0 && b1 >= b0 && b1 < 1)) rc = glad_fail(GLAD_ERANGE, "scheduler config: betas %g..%g", b0, b1);
    glad_json_free(j);
    if (rc) return rc;
    m->T = (int)T;
    m->alpha_bar = malloc(sizeof(double) * (size_t)m->T);
    if (!m->alpha_bar) return GLAD_ENOMEM;
    double prod = 1.0, a = scaled ? sqrt(b0) : b0, b = scaled ? sqrt(b1) : b1;
    for (int t = 0; t < m->T; t++) {
        double s = a + (b - a) * t / (m->T - 1), beta = scaled ? s * s : s;
        prod *= 1.0 - beta;
        m->alpha_bar[t] = prod;
    }
    return 0;
}

static int setup(glad_latent *m, const float *cu, const float *ct, int L, int D, const char *sched)
{
    const glad_vae_config *vc = glad_vae_cfg(m->vae);
    if (vc->latent_channels != glad_sdunet_in_channels(m->unet) || vc->latent_channels != glad_sdunet_out_channels(m->unet))
        return glad_fail(GLAD_EFORMAT, "the VAE has %d latent channels, the UNet takes %d and gives %d", vc->latent_channels,
                         glad_sdunet_in_channels(m->unet), glad_sdunet_out_channels(m->unet));
    if (vc->in_channels != vc->out_channels)
        return glad_fail(GLAD_EFORMAT, "the VAE takes %d channels and gives %d; a reconstruction needs the same", vc->in_channels,
                         vc->out_channels);
    if (D != glad_sdunet_ctx_dim(m->unet) || L < 1 || L > 4096)
        return glad_fail(GLAD_EFORMAT, "prompt embeddings of %d tokens x %d; the UNet's cross-attention takes %d", L, D,
                         glad_sdunet_ctx_dim(m->unet));
    size_t n = (size_t)L * D;
    m->ctx = malloc(2 * n * sizeof(float));
    if (!m->ctx) return GLAD_ENOMEM;
    memcpy(m->ctx, cu, n * sizeof(float));
    memcpy(m->ctx + n, ct, n * sizeof(float));
    for (size_t i = 0; i < 2 * n; i++)
        if (!isfinite(m->ctx[i])) return glad_fail(GLAD_ENAN, "the prompt embeddings contain NaN or infinity");
    m->L = L; m->D = D;
    m->guidance = 9.0;
    m->scale = vc->scaling_factor;
    return schedule(m, sched);
}

int glad_latent_init(glad_latent *m, glad_sdunet *unet, glad_vae *vae, const float *cu, const float *ct, int L, int D,
                     const char *sched)
{
    memset(m, 0, sizeof *m);
    m->unet = unet; m->vae = vae;
    int rc = setup(m, cu, ct, L, D, sched);
    if (rc) { glad_latent_free(m); return rc; }
    return 0;
}

void glad_latent_free(glad_latent *m)
{
    if (m->own) { glad_sdunet_free(m->unet); glad_vae_free(m->vae); }
    free(m->ctx); free(m->alpha_bar); free(m->prompt);
    free(m->x2); free(m->e2); free(m->t2); free(m->c2); free(m->ia); free(m->ib);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ files */

static int is_dir(const char *p)
{
    struct stat sb;
    return !stat(p, &sb) && S_ISDIR(sb.st_mode);
}

/* the folder of a model path: path itself, or the directory of a file */
static char *folder(const char *path)
{
    if (is_dir(path)) return glad_strfmt("%s", path);
    const char *s = strrchr(path, '/');
    return s ? glad_strfmt("%.*s", (int)(s - path), path) : glad_strfmt(".");
}

int glad_latent_is_model(const char *path)
{
    if (is_dir(path)) {
        char *u = glad_strfmt("%s/unet.safetensors", path);
        struct stat sb;
        int r = u && !stat(u, &sb);
        free(u);
        return r;
    }
    /* the safetensors header only (the file may be gigabytes): its config
     * names the class; regular files only (a FIFO must not be read here) */
    struct stat sb;
    if (stat(path, &sb) || !S_ISREG(sb.st_mode)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char n8[8];
    uint64_t n = 0;
    int r = 0;
    if (fread(n8, 1, 8, f) == 8) {
        for (int i = 7; i >= 0; i--) n = n << 8 | n8[i];
        char *h = n > 0 && n <= (64u << 20) ? malloc((size_t)n + 1) : NULL;
        if (h && fread(h, 1, (size_t)n, f) == (size_t)n) {
            h[n] = 0;
            r = strstr(h, "UNet2DConditionModel") != NULL;
        }
        free(h);
    }
    fclose(f);
    return r;
}

/* one [1, L, D] (or [L, D]) embedding tensor of the prompt file */
static int embedding(const glad_st *st, const char *path, const char *name, glad_tensor *t)
{
    int rc = glad_st_get_f32(st, name, t);
    if (rc == GLAD_ENOTFOUND) return glad_fail(rc, "%s: tensor '%s' missing (convert.py --embeddings)", path, name);
    if (rc) return glad_fail(rc, "%s: tensor '%s': %s", path, name, glad_strerror(rc));
    if (!(t->ndim == 2 || (t->ndim == 3 && t->shape[0] == 1))) {
        glad_tensor_free(t);
        return glad_fail(GLAD_ESHAPE, "%s: tensor '%s' is not [1, L, D]", path, name);
    }
    return 0;
}

int glad_latent_load(glad_latent *m, const char *path)
{
    memset(m, 0, sizeof *m);
    m->own = 1;
    char *dir = folder(path), *up = NULL, *vp = NULL, *pp = NULL;
    int rc = GLAD_ENOMEM;
    glad_st *us = NULL, *ps = NULL;
    glad_tensor cu = {0}, ct = {0};
    if (!dir) goto out;
    up = is_dir(path) ? glad_strfmt("%s/unet.safetensors", dir) : glad_strfmt("%s", path);
    vp = glad_strfmt("%s/vae.safetensors", dir);
    pp = glad_strfmt("%s/prompt.safetensors", dir);
    if (!up || !vp || !pp) goto out;
    errno = 0;
    if ((rc = glad_st_open(&us, up))) { rc = glad_fail(rc, "%s: %s", up, errno ? strerror(errno) : glad_strerror(rc)); goto out; }
    if ((rc = glad_sdunet_load_st(us, up, &m->unet))) goto out;
    if ((rc = glad_vae_load(&m->vae, vp))) goto out;
    errno = 0;
    if ((rc = glad_st_open(&ps, pp))) {
        rc = glad_fail(rc, "%s: %s (the prompt embeddings: convert.py ... --embeddings FILE)", pp, errno ? strerror(errno) : glad_strerror(rc));
        goto out;
    }
    if ((rc = embedding(ps, pp, "ctx_uncond", &cu)) || (rc = embedding(ps, pp, "ctx_text", &ct))) goto out;
    int L = (int)cu.shape[cu.ndim - 2], D = (int)cu.shape[cu.ndim - 1];
    if (ct.shape[ct.ndim - 2] != L || ct.shape[ct.ndim - 1] != D) { rc = glad_fail(GLAD_ESHAPE, "%s: ctx_uncond and ctx_text differ in shape", pp); goto out; }
    const char *sched = glad_st_meta(us, "scheduler");
    if (!sched) { rc = glad_fail(GLAD_EFORMAT, "%s: no scheduler config in __metadata__[\"scheduler\"]", up); goto out; }
    if ((rc = setup(m, cu.data, ct.data, L, D, sched))) {
        rc = glad_fail_in(rc, dir);
        goto out;
    }
    const char *pr = glad_st_meta(ps, "prompt");
    if (pr && !(m->prompt = glad_strfmt("%s", pr))) rc = GLAD_ENOMEM;
out:
    glad_tensor_free(&cu);
    glad_tensor_free(&ct);
    if (us) glad_st_close(us);
    if (ps) glad_st_close(ps);
    free(dir); free(up); free(vp); free(pp);
    if (rc) glad_latent_free(m);
    return rc;
}

int glad_latent_size_multiple(const glad_latent *m) { return glad_vae_down_factor(m->vae) * glad_sdunet_size_multiple(m->unet); }

/* ------------------------------------------------------------------ VAE */

int glad_latent_encode(glad_latent *m, float *z, const float *x, int B, int H, int W, const glad_noise_fn *nz, int k)
{
    const glad_vae_config *c = glad_vae_cfg(m->vae);
    int f = glad_vae_down_factor(m->vae), L = c->latent_channels;
    size_t N = (size_t)(H / f) * (W / f), ln = (size_t)L * N;
    float *mom = malloc(2 * ln * sizeof(float)), *n = nz ? malloc(ln * sizeof(float)) : NULL;
    int rc = GLAD_ENOMEM;
    if (!mom || (nz && !n)) goto out;
    for (int b = 0; b < B; b++) {
        /* one record at a time: its moments only are kept */
        if ((rc = glad_vae_encode(m->vae, mom, x + (size_t)b * c->in_channels * H * W, 1, H, W))) goto out;
        if (nz) nz->draw(nz->ctx, b, k, n, ln);
        float *zb = z + ln * b;
        glad_vae_sample(zb, mom, n, 1, L, N);
        for (size_t i = 0; i < ln; i++) zb[i] *= m->scale;
    }
    rc = 0;
out:
    free(mom);
    free(n);
    return rc;
}

int glad_latent_decode(glad_latent *m, float *x, const float *z, int B, int h, int w)
{
    size_t ln = (size_t)glad_vae_cfg(m->vae)->latent_channels * h * w;
    float *t = malloc(ln * sizeof(float));
    if (!t) return GLAD_ENOMEM;
    int rc = 0, f = glad_vae_down_factor(m->vae);
    size_t out = (size_t)glad_vae_cfg(m->vae)->out_channels * h * f * w * f;
    for (int b = 0; b < B && !rc; b++) {
        for (size_t i = 0; i < ln; i++) t[i] = z[ln * b + i] / m->scale;
        rc = glad_vae_decode(m->vae, x + out * b, t, 1, h, w);
    }
    free(t);
    return rc;
}

/* ------------------------------------------------------------------ CFG */

static int grow(float **p, size_t n)
{
    float *q = realloc(*p, (n ? n : 1) * sizeof(float));
    if (!q) return GLAD_ENOMEM;
    *p = q;
    return 0;
}

/* pipeline.py:665-678: the UNet on [x; x] with [e(""); e(prompt)], then
 * eps = eps_u + g (eps_t - eps_u); one record at a time, so that a record's
 * result does not depend on its batch */
static int cfg_eps(void *ctx, float *eps, const float *x, const float *t, int B)
{
    glad_latent *m = ctx;
    int C = glad_sdunet_in_channels(m->unet), OC = glad_sdunet_out_channels(m->unet);
    size_t per = (size_t)C * m->h * m->w, oper = (size_t)OC * m->h * m->w, cn = (size_t)m->L * m->D;
    if (m->cap2 < 2 * (per > oper ? per : oper)) {
        size_t n = 2 * (per > oper ? per : oper);
        if (grow(&m->x2, n) || grow(&m->e2, n)) return GLAD_ENOMEM;
        m->cap2 = n;
    }
    if (!m->t2 && (grow(&m->t2, 2) || grow(&m->c2, 2 * cn))) return GLAD_ENOMEM;
    memcpy(m->c2, m->ctx, 2 * cn * sizeof(float));
    for (int b = 0; b < B; b++) {
        memcpy(m->x2, x + per * b, per * sizeof(float));
        memcpy(m->x2 + per, x + per * b, per * sizeof(float));
        m->t2[0] = m->t2[1] = t[b];
        GLAD_TRY(glad_sdunet_forward(m->unet, m->e2, m->x2, 2, m->h, m->w, m->t2, m->c2, m->L));
        const float *eu = m->e2, *et = m->e2 + oper;
        float g = (float)m->guidance;
        float *o = eps + oper * b;
        for (size_t i = 0; i < oper; i++) o[i] = eu[i] + g * (et[i] - eu[i]);
    }
    return 0;
}

const glad_model_fn *glad_latent_eps_fn(glad_latent *m, int h, int w)
{
    m->h = h; m->w = w;
    m->fn = (glad_model_fn){.eps = cfg_eps, .eps_grad = NULL, .ctx = m, .C = glad_sdunet_in_channels(m->unet), .H = h, .W = w};
    return &m->fn;
}

/* ------------------------------------------------------------------ ADS */

static int ads_decode_map(void *ctx, float *A, int *h, int *w, const float *x0t, const float *x0p, int C, int H, int W)
{
    glad_latent *m = ctx;
    (void)C;
    int f = glad_vae_down_factor(m->vae), OC = glad_vae_cfg(m->vae)->out_channels;
    size_t n = (size_t)OC * H * f * W * f;
    if (m->icap < n) {
        if (grow(&m->ia, n) || grow(&m->ib, n)) return GLAD_ENOMEM;
        m->icap = n;
    }
    /* GLAD decodes x0/0.18215 and feeds DINO the decoder output as it is */
    GLAD_TRY(glad_latent_decode(m, m->ia, x0t, 1, H, W));
    GLAD_TRY(glad_latent_decode(m, m->ib, x0p, 1, H, W));
    return m->inner->amap(m->inner->ctx, A, h, w, m->ia, m->ib, OC, H * f, W * f);
}

const glad_ads_fn *glad_latent_ads_fn(glad_latent *m, const glad_ads_fn *image_ads)
{
    m->inner = image_ads;
    m->ads = (glad_ads_fn){ads_decode_map, m};
    return &m->ads;
}

/* ------------------------------------------------------------------ run */

int glad_latent_run(glad_latent *m, const glad_noise_fn *nz, const glad_ads_fn *image_ads, const glad_denoise_opts *o, int B,
                    const float *x, int H, int W, float *recon, int *ads_step)
{
    int f = glad_vae_down_factor(m->vae), mult = glad_latent_size_multiple(m);
    if (H < mult || W < mult || H % mult || W % mult)
        return glad_fail(GLAD_ESHAPE, "%dx%d images: the latent model takes sides that are multiples of %d", H, W, mult);
    int h = H / f, w = W / f;
    size_t ln = (size_t)glad_vae_cfg(m->vae)->latent_channels * h * w, n;
    if (glad_mul_size(ln, (size_t)B, &n)) return GLAD_ENOMEM;
    float *z = malloc(n * sizeof(float)), *zr = malloc(n * sizeof(float));
    int rc = GLAD_ENOMEM;
    if (!z || !zr) goto out;
    if ((rc = glad_latent_encode(m, z, x, B, H, W, nz, GLAD_LATENT_VAE_DRAW))) goto out;
    const glad_ads_fn *ads = o->ads && image_ads ? glad_latent_ads_fn(m, image_ads) : NULL;
    if ((rc = glad_denoise_run(glad_latent_eps_fn(m, h, w), nz, ads, o, B, z, zr, ads_step))) goto out;
    rc = glad_latent_decode(m, recon, zr, B, h, w);
out:
    free(z);
    free(zr);
    return rc;
}
