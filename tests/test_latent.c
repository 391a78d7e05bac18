/* test_latent.c - GLAD's latent reconstruction (diffusion/latent.h) against
 * ../shared/fixtures/glad-latent.case (one reconstruction computed by GLAD's
 * own pipeline.py / ddim_scheduling.py with the sd-unet and sd-vae models):
 * the scheduler's ᾱ table and GLAD's timesteps; the scaled VAE posterior
 * sample; every step teacher-forced from the case's x_t (guided eps, x̂0,
 * the ADS x̂0_true, x_prev, both decoded images); then the whole run free
 * (the images ADS sees at every step and the final reconstruction); a run
 * whose results do not depend on the batch; ADS stopping (by score, with
 * SAFF, and by min_step); a model folder as convert.py writes it loading to
 * the same numbers; GLAD's VisA / PCB-Bank bookkeeping (noised at
 * denoise_step - 1, the model calls those of denoise_step) against a loop
 * written here from GLAD's formulas; non-square images (a transposed input
 * through networks with transpose-symmetric kernels gives the transposed
 * reconstruction). Config (denoise step, step count, guidance scale,
 * scheduler), inputs and noises all come from the case file. 1e-4 of max-abs. */
#include <stdlib.h>
#include <unistd.h>
#include "check.h"
#include "core/rng.h"
#include "core/json.h"
#include "diffusion/ddim.h"
#include "diffusion/latent.h"
#include "io/safetensors.h"

static double rel_err(const float *a, const float *ref, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) { m = fmax(m, fabs((double)a[i] - ref[i])); r = fmax(r, fabs((double)ref[i])); }
    return r > 0 ? m / r : m;
}

static const glad_st *CS;

/* case tensors by name, kept until T_free */
static glad_tensor keep[64];
static int nk;
static void T_free(void)
{
    for (int i = 0; i < nk; i++) glad_tensor_free(&keep[i]);
    nk = 0;
}

static float *T_(const char *name)
{
    glad_tensor t;
    if (glad_st_get_f32(CS, name, &t) || nk == 64) { CHECKF(0, "case tensor %s", name); return NULL; }
    keep[nk++] = t;
    return t.data;
}

/* the text of the JSON object value of "key" inside js (malloc'd) */
static char *subobject(const char *js, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(js, pat);
    if (!p || !(p = strchr(p + strlen(pat), '{'))) return NULL;
    int depth = 0;
    const char *q = p;
    for (; *q; q++) {
        if (*q == '{') depth++;
        else if (*q == '}' && --depth == 0) break;
    }
    return *q ? glad_strfmt("%.*s", (int)(q - p + 1), p) : NULL;
}

/* noise: draw 0 = the case's `noise`, the VAE draw = `vae_noise` (every record alike) */
static float *NOISE, *VNOISE;
static void fixture_draw(void *ctx, int b, int k, float *out, size_t n)
{
    (void)ctx; (void)b;
    if (k == 0) memcpy(out, NOISE, n * sizeof(float));
    else if (k == GLAD_LATENT_VAE_DRAW) memcpy(out, VNOISE, n * sizeof(float));
    else for (size_t i = 0; i < n; i++) out[i] = NAN;   /* eta 0 draws nothing else */
}
static const glad_noise_fn FIX_NOISE = {fixture_draw, NULL};

/* an image-space ADS map that records the images it is given and answers a
 * constant map on an h x w grid */
typedef struct { float *imt, *imp; int n, h, w; float value; size_t per; } capture;
static int capture_map(void *ctx, float *A, int *h, int *w, const float *x0t, const float *x0p, int C, int H, int W)
{
    capture *c = ctx;
    size_t per = (size_t)C * H * W;
    if (c->imt && c->n < 8) {
        memcpy(c->imt + per * c->n, x0t, per * sizeof(float));
        memcpy(c->imp + per * c->n, x0p, per * sizeof(float));
    }
    c->n++;
    c->per = per;
    *h = c->h; *w = c->w;
    for (int i = 0; i < c->h * c->w; i++) A[i] = c->value;
    return 0;
}

typedef struct {
    int steps, N, h, w, L;
    double guidance;
    size_t lat, img;
    char *sched;
} fx;

static void schedule_and_plan(glad_latent *m, const fx *f, glad_ddim_plan *p)
{
    const float *ab = T_("alpha_bar"), *abt = T_("alpha_bar_t"), *abp = T_("alpha_bar_prev");
    glad_tensor ts, pts;
    CHECK(glad_st_get(CS, "timesteps", &ts) == 0 && glad_st_get(CS, "prev_timesteps", &pts) == 0);
    CHECK(m->T == 1000 || m->T > f->steps);
    double e = 0;
    for (int t = 0; ab && t < m->T; t++) e = fmax(e, fabs(m->alpha_bar[t] - ab[t]) / ab[t]);
    CHECKF(e < 1e-6, "alpha_bar rel err %.3g", e);
    CHECK(glad_ddim_plan_make(p, m->alpha_bar, m->T, f->steps, f->steps / f->N, GLAD_TS_GLAD) == 0);
    CHECK(p->n == f->N && p->t_noise == f->steps);
    for (int k = 0; k < p->n && k < f->N; k++) {
        CHECKF(p->t[k] == ((int64_t *)ts.data)[k], "step %d: t %d vs %lld", k, p->t[k], (long long)((int64_t *)ts.data)[k]);
        int64_t pv = ((int64_t *)pts.data)[k];
        CHECK(p->t_next[k] == (pv < 0 ? -1 : pv) || (pv < 0 && p->t_next[k] < 0));
        CHECK(fabs(p->ab[k] - abt[k]) < 1e-6 && fabs(p->ab_next[k] - abp[k]) < 1e-6);
    }
    glad_tensor_free(&ts);
    glad_tensor_free(&pts);
}

/* each step from the case's own x_t */
static void teacher_forced(glad_latent *m, const fx *f, const glad_ddim_plan *p, const float *zin)
{
    const float *xt = T_("x_t"), *eps_r = T_("eps"), *x0p = T_("x0_pred"), *x0t = T_("x0_true"), *xp = T_("x_prev"),
                *imp = T_("img_pred"), *imt = T_("img_true");
    if (!xt || !eps_r || !x0p || !x0t || !xp || !imp || !imt) return;
    const glad_model_fn *fn = glad_latent_eps_fn(m, f->h, f->w);
    float *eps = malloc(f->lat * sizeof(float)), *x0 = malloc(f->lat * sizeof(float)), *x0tr = malloc(f->lat * sizeof(float)),
          *nx = malloc(f->lat * sizeof(float)), *im = malloc(f->img * sizeof(float));
    double worst[7] = {0};
    for (int k = 0; k < p->n; k++) {
        float t = (float)p->t[k];
        CHECK(fn->eps(fn->ctx, eps, xt + f->lat * k, &t, 1) == 0);
        worst[0] = fmax(worst[0], rel_err(eps, eps_r + f->lat * k, f->lat));
        glad_ddim_x0(x0, xt + f->lat * k, eps, p->ab[k], f->lat);
        worst[1] = fmax(worst[1], rel_err(x0, x0p + f->lat * k, f->lat));
        glad_ddim_x0_true(x0tr, zin, NOISE, eps, p->ab[k], f->lat);
        worst[2] = fmax(worst[2], rel_err(x0tr, x0t + f->lat * k, f->lat));
        glad_ddim_step(nx, x0, eps, NULL, p->ab[k], p->ab_next[k], 0.0, f->lat);
        worst[3] = fmax(worst[3], rel_err(nx, xp + f->lat * k, f->lat));
        CHECK(glad_latent_decode(m, im, x0p + f->lat * k, 1, f->h, f->w) == 0);
        worst[4] = fmax(worst[4], rel_err(im, imp + f->img * k, f->img));
        CHECK(glad_latent_decode(m, im, x0t + f->lat * k, 1, f->h, f->w) == 0);
        worst[5] = fmax(worst[5], rel_err(im, imt + f->img * k, f->img));
    }
    static const char *what[] = {"eps (guided)", "x0_pred", "x0_true", "x_prev", "img_pred", "img_true"};
    for (int i = 0; i < 6; i++) CHECKF(worst[i] < 1e-4, "teacher-forced %s: worst rel err %.3g", what[i], worst[i]);
    fprintf(stderr, "  glad-latent teacher-forced: eps %.2g, x0_pred %.2g, x0_true %.2g, x_prev %.2g, img_pred %.2g, img_true %.2g\n",
            worst[0], worst[1], worst[2], worst[3], worst[4], worst[5]);
    free(eps); free(x0); free(x0tr); free(nx); free(im);
}

/* the whole reconstruction; returns recon (malloc'd) */
static float *free_run(glad_latent *m, const fx *f, const glad_ddim_plan *p, const float *x, int B, int ads_on, double threshold,
                       int min_step, int saff, float value, int *ads_step, capture *cap)
{
    glad_denoise_opts o;
    glad_denoise_opts_default(&o);
    o.plan = *p;
    o.ads = ads_on; o.threshold = threshold; o.min_step = min_step; o.saff = saff;
    cap->h = f->h; cap->w = f->w; cap->value = value; cap->n = 0;
    glad_ads_fn afn = {capture_map, cap};
    int H = f->h * glad_vae_down_factor(m->vae), W = f->w * glad_vae_down_factor(m->vae);
    float *xb = malloc(f->img * B * sizeof(float)), *r = malloc(f->img * B * sizeof(float));
    for (int b = 0; b < B; b++) memcpy(xb + f->img * b, x, f->img * sizeof(float));
    int rc = glad_latent_run(m, &FIX_NOISE, &afn, &o, B, xb, H, W, r, ads_step);
    CHECKF(rc == 0, "latent run: %s", glad_error_detail());
    free(xb);
    return r;
}

static void whole(glad_latent *m, const fx *f, const glad_ddim_plan *p)
{
    const float *x = T_("x"), *recon = T_("recon"), *imp = T_("img_pred"), *imt = T_("img_true");
    if (!x || !recon || !imp || !imt) return;
    capture cap = {malloc(8 * f->img * sizeof(float)), malloc(8 * f->img * sizeof(float)), 0, 0, 0, 0, 0};
    int st[2] = {0, 0};
    /* ADS on but never firing (score 0, min_step 0): GLAD's plain trajectory, as the case */
    float *r = free_run(m, f, p, x, 1, 1, 0.5, 0, 0, 0.0f, st, &cap);
    double e = rel_err(r, recon, f->img), wi = 0, wp = 0;
    CHECKF(e < 1e-4, "recon rel err %.3g", e);
    CHECK(st[0] == -1 && cap.n == f->N);
    for (int k = 0; k < cap.n && k < f->N; k++) {
        wi = fmax(wi, rel_err(cap.imt + f->img * k, imt + f->img * k, f->img));
        wp = fmax(wp, rel_err(cap.imp + f->img * k, imp + f->img * k, f->img));
    }
    CHECKF(wi < 1e-4 && wp < 1e-4, "free-running ADS images: img_true %.3g, img_pred %.3g", wi, wp);
    fprintf(stderr, "  glad-latent free run: recon %.2g, ADS images true %.2g / pred %.2g\n", e, wi, wp);
    /* without ADS the same numbers */
    float *r0 = free_run(m, f, p, x, 1, 0, 0, 0, 0, 0.0f, NULL, &cap);
    CHECK(memcmp(r0, r, f->img * sizeof(float)) == 0);
    /* a batch of two: each record as alone */
    capture c2 = {0};
    float *r2 = free_run(m, f, p, x, 2, 1, 0.5, 0, 0, 0.0f, st, &c2);
    CHECK(memcmp(r2, r, f->img * sizeof(float)) == 0 && memcmp(r2 + f->img, r, f->img * sizeof(float)) == 0);
    CHECK(st[0] == -1 && st[1] == -1);
    /* ADS fires at the first step (map 1 > 0.5), with SAFF: stops there and changes the result */
    float *r3 = free_run(m, f, p, x, 1, 1, 0.5, 0, 1, 1.0f, st, &c2);
    CHECK(st[0] == p->t[0] && c2.n == 1 && rel_err(r3, r, f->img) > 1e-3);
    /* forced stop below min_step: the first timestep under it */
    int ms = p->t[1] + 1, want = p->t[1];
    float *r4 = free_run(m, f, p, x, 1, 1, 1e9, ms, 0, 0.0f, st, &c2);
    CHECKF(st[0] == want, "forced stop at %d, want %d", st[0], want);
    CHECK(rel_err(r4, r, f->img) > 1e-4);
    free(r); free(r0); free(r2); free(r3); free(r4); free(cap.imt); free(cap.imp);
}

/* a model folder as convert.py sd writes it: the same numbers */
static void folder(const char *shared, const fx *f, const glad_ddim_plan *p, const float *ref_recon)
{
    char tmp[] = "/tmp/glad_test_latent_XXXXXX", path[600], src[600];
    if (!mkdtemp(tmp)) { CHECK(0); return; }
    /* unet.safetensors: the fixture's tensors with the scheduler config in the metadata */
    snprintf(src, sizeof src, "%s/fixtures/sd-unet.weights.safetensors", shared);
    glad_st *st;
    CHECK(glad_st_open(&st, src) == 0);
    int n = glad_st_count(st);
    glad_tensor *ts = calloc((size_t)n, sizeof *ts);
    const glad_tensor **tp = calloc((size_t)n, sizeof *tp);
    const char **names = calloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        names[i] = glad_st_entry_at(st, i)->name;
        glad_st_get(st, names[i], &ts[i]);
        tp[i] = &ts[i];
    }
    const char *mk[] = {"config", "scheduler"}, *mv[] = {glad_st_meta(st, "config"), f->sched};
    snprintf(path, sizeof path, "%s/unet.safetensors", tmp);
    CHECK(glad_st_save(path, n, names, tp, 2, mk, mv) == 0);
    for (int i = 0; i < n; i++) glad_tensor_free(&ts[i]);
    free(ts); free(tp); free(names);
    glad_st_close(st);
    snprintf(src, sizeof src, "cp '%s/fixtures/sd-vae.weights.safetensors' '%s/vae.safetensors'", shared, tmp);
    CHECK(system(src) == 0);
    glad_tensor cu, ct;
    CHECK(glad_st_get(CS, "ctx_uncond", &cu) == 0 && glad_st_get(CS, "ctx_text", &ct) == 0);
    const char *pn[] = {"ctx_uncond", "ctx_text"}, *pk[] = {"prompt"}, *pv[] = {"a photo of sks"};
    const glad_tensor *pt[] = {&cu, &ct};
    snprintf(path, sizeof path, "%s/prompt.safetensors", tmp);
    CHECK(glad_st_save(path, 2, pn, pt, 1, pk, pv) == 0);
    glad_tensor_free(&cu);
    glad_tensor_free(&ct);
    CHECK(glad_latent_is_model(tmp));
    snprintf(path, sizeof path, "%s/unet.safetensors", tmp);
    CHECK(glad_latent_is_model(path));
    snprintf(src, sizeof src, "%s/fixtures/sd-vae.weights.safetensors", shared);
    CHECK(!glad_latent_is_model(src));
    glad_latent m;
    int rc = glad_latent_load(&m, tmp);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (!rc) {
        CHECK(m.prompt && !strcmp(m.prompt, "a photo of sks") && m.guidance == 9.0);
        m.guidance = f->guidance;
        capture c = {0};
        float *r = free_run(&m, f, p, T_("x"), 1, 0, 0, 0, 0, 0.0f, NULL, &c);
        CHECK(memcmp(r, ref_recon, f->img * sizeof(float)) == 0);
        free(r);
        glad_latent_free(&m);
    }
    /* no prompt file: refused, naming it and the fix */
    snprintf(path, sizeof path, "%s/prompt.safetensors", tmp);
    unlink(path);
    CHECK(glad_latent_load(&m, tmp) == GLAD_EIO && strstr(glad_error_detail(), "prompt.safetensors") &&
          strstr(glad_error_detail(), "--embeddings"));
    snprintf(path, sizeof path, "rm -rf '%s'", tmp);
    CHECK(system(path) == 0);
}

/* GLAD on VisA and PCB-Bank (utilize/utilize.py:77-84): t0 = randint(d-1, d),
 * i.e. d - 1, while num_train_timesteps := d, so set_timesteps(N) gives
 * ratio = d // N and t_k = k ratio + 1 (steps_offset 1), k = N-1 .. 0, and
 * step() goes to t - ratio (ᾱ_0 below 0: set_alpha_to_one False). The
 * reference loop below is those formulas with the latent model's guided eps
 * and VAE (both checked against the case above). */
static void visa_bookkeeping(glad_latent *m, const fx *f, const float *x)
{
    int d = f->steps, N = f->N, t0 = d - 1, ratio = d / N;
    glad_ddim_plan p;
    CHECK(glad_ddim_plan_make(&p, m->alpha_bar, m->T, d, d / N, GLAD_TS_GLAD) == 0);
    CHECK(glad_ddim_plan_noise_at(&p, m->alpha_bar, m->T, t0) == 0);
    CHECK(p.t_noise == t0 && p.ab_noise == m->alpha_bar[t0] && p.n == N);
    for (int k = N - 1, i = 0; k >= 0 && i < p.n; k--, i++) {
        int t = k * ratio + 1, prev = t - ratio;
        CHECKF(p.t[i] == t, "VisA plan step %d: t %d, GLAD %d", i, p.t[i], t);
        CHECK(p.ab[i] == m->alpha_bar[t] && p.ab_next[i] == (prev >= 0 ? m->alpha_bar[prev] : m->alpha_bar[0]));
    }
    glad_ddim_plan q = p;
    CHECK(glad_ddim_plan_noise_at(&q, m->alpha_bar, m->T, m->T) == GLAD_ERANGE && strstr(glad_error_detail(), "0..") &&
          q.t_noise == t0);
    CHECK(glad_ddim_plan_noise_at(&q, m->alpha_bar, m->T, -1) == GLAD_ERANGE);
    /* the reference: z from the encoder, x_T at t0, N guided DDIM steps, decode */
    int H = f->h * glad_vae_down_factor(m->vae), W = f->w * glad_vae_down_factor(m->vae);
    float *z = malloc(f->lat * sizeof(float)), *xt = malloc(f->lat * sizeof(float)), *eps = malloc(f->lat * sizeof(float)),
          *ref = malloc(f->img * sizeof(float)), *got = malloc(f->img * sizeof(float));
    CHECK(glad_latent_encode(m, z, x, 1, H, W, &FIX_NOISE, GLAD_LATENT_VAE_DRAW) == 0);
    double a0 = m->alpha_bar[t0];
    for (size_t i = 0; i < f->lat; i++) xt[i] = (float)(sqrt(a0) * z[i] + sqrt(1 - a0) * NOISE[i]);
    const glad_model_fn *fn = glad_latent_eps_fn(m, f->h, f->w);
    for (int k = N - 1; k >= 0; k--) {
        int t = k * ratio + 1, prev = t - ratio;
        double at = m->alpha_bar[t], ap = prev >= 0 ? m->alpha_bar[prev] : m->alpha_bar[0];
        float tf = (float)t;
        CHECK(fn->eps(fn->ctx, eps, xt, &tf, 1) == 0);
        for (size_t i = 0; i < f->lat; i++) {
            double x0 = (xt[i] - sqrt(1 - at) * eps[i]) / sqrt(at);
            xt[i] = (float)(sqrt(ap) * x0 + sqrt(1 - ap) * eps[i]);
        }
    }
    CHECK(glad_latent_decode(m, ref, xt, 1, f->h, f->w) == 0);
    glad_denoise_opts o;
    glad_denoise_opts_default(&o);
    o.plan = p;
    CHECK(glad_latent_run(m, &FIX_NOISE, NULL, &o, 1, x, H, W, got, NULL) == 0);
    double e = rel_err(got, ref, f->img);
    CHECKF(e < 1e-5, "VisA bookkeeping: recon vs GLAD's formulas, rel err %.3g", e);
    /* and it is not MVTec's (noised at d) */
    const float *mv = T_("recon");
    CHECK(mv && rel_err(got, mv, f->img) > 1e-4);
    fprintf(stderr, "  glad-latent VisA bookkeeping (t0 = %d, t = %d..1 by %d): recon vs formulas %.2g\n", t0, (N - 1) * ratio + 1, ratio, e);
    free(z); free(xt); free(eps); free(ref); free(got);
}

/* ---- non-square images ----
 * With every spatial kernel made symmetric (w[.., y, x] = w[.., x, y]) each
 * operation of the VAE and the SD UNet commutes with transposing H and W
 * (3x3 convs, the stride-2 convs and the encoder's right/bottom padding,
 * nearest upsampling, GroupNorm, attention over the tokens), so the
 * reconstruction of x^T with the transposed noises must be the transpose of
 * x's: any mix-up of H and W in a non-square path breaks it. The same holds
 * for ADS + SAFF with the DINO ViT (symmetric patch kernels and positions:
 * its grid H/p x W/p, DINO's positional interpolation per axis, the map
 * resized to the latent grid). */
static char *symmetric_copy(const char *src, const char *dir, const char *name)
{
    glad_st *st;
    char *out = glad_strfmt("%s/%s", dir, name);
    if (!out || glad_st_open(&st, src)) { CHECK(0); free(out); return NULL; }
    int n = glad_st_count(st), nm = glad_st_meta_count(st);
    glad_tensor *ts = calloc((size_t)n, sizeof *ts);
    const glad_tensor **tp = calloc((size_t)n, sizeof *tp);
    const char **names = calloc((size_t)n, sizeof *names), **mk = calloc((size_t)nm + 1, sizeof *mk), **mv = calloc((size_t)nm + 1, sizeof *mv);
    for (int i = 0; i < n; i++) {
        names[i] = glad_st_entry_at(st, i)->name;
        CHECK(glad_st_get_f32(st, names[i], &ts[i]) == 0);
        tp[i] = &ts[i];
        glad_tensor *t = &ts[i];
        if (!strcmp(names[i], "pos_embed") && t->ndim == 3) {
            /* a ViT's square grid of positions (after the cls token): pos[r][c] = pos[c][r] */
            int64_t g = (int64_t)llround(sqrt((double)(t->shape[1] - 1))), D = t->shape[2];
            float *q = (float *)t->data + D;
            for (int64_t r = 0; r < g; r++)
                for (int64_t c = r + 1; c < g; c++)
                    for (int64_t k = 0; k < D; k++) {
                        float v = 0.5f * (q[(r * g + c) * D + k] + q[(c * g + r) * D + k]);
                        q[(r * g + c) * D + k] = q[(c * g + r) * D + k] = v;
                    }
        }
        if (t->ndim == 4 && t->shape[2] == t->shape[3] && t->shape[2] > 1) {
            int64_t k = t->shape[2], planes = t->shape[0] * t->shape[1];
            float *w = t->data;
            for (int64_t pl = 0; pl < planes; pl++, w += k * k)
                for (int64_t y = 0; y < k; y++)
                    for (int64_t x = y + 1; x < k; x++) {
                        float v = 0.5f * (w[y * k + x] + w[x * k + y]);
                        w[y * k + x] = w[x * k + y] = v;
                    }
        }
    }
    for (int i = 0; i < nm; i++) { mk[i] = glad_st_meta_key(st, i); mv[i] = glad_st_meta(st, mk[i]); }
    CHECKF(glad_st_save(out, n, names, tp, nm, mk, mv) == 0, "%s", glad_error_detail());
    for (int i = 0; i < n; i++) glad_tensor_free(&ts[i]);
    free(ts); free(tp); free(names); free(mk); free(mv);
    glad_st_close(st);
    return out;
}

/* noise of draw k: a fixed field on the h x w latent grid (per draw),
 * handed out as it is or transposed */
typedef struct { int C, h, w, transpose; } tnoise;
static void tnoise_draw(void *ctx, int b, int k, float *out, size_t n)
{
    tnoise *z = ctx;
    size_t hw = (size_t)z->h * z->w;
    float *v = malloc(n * sizeof(float));
    glad_rng r;
    glad_rng_seed(&r, 77, (uint64_t)b, (uint64_t)k);
    glad_rng_normal_f32(&r, v, n);
    if (!z->transpose || n != (size_t)z->C * hw) memcpy(out, v, n * sizeof(float));
    else
        for (int c = 0; c < z->C; c++)
            for (int y = 0; y < z->h; y++)
                for (int x = 0; x < z->w; x++) out[c * hw + (size_t)x * z->h + y] = v[c * hw + (size_t)y * z->w + x];
    free(v);
}

/* out (C, W, H) = in (C, H, W) transposed */
static void transpose(float *out, const float *in, int B, int C, int H, int W)
{
    for (int c = 0; c < B * C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) out[(size_t)c * H * W + (size_t)x * H + y] = in[(size_t)c * H * W + (size_t)y * W + x];
}

/* an ADS map made decisive: the inner map split at its median into -6 / +6,
 * so SAFF's sigmoid mask is ~0 or ~1 per cell and the map's orientation
 * shows in the reconstruction (the split is permutation invariant) */
static int cmpf(const void *a, const void *b) { float x = *(const float *)a, y = *(const float *)b; return (x > y) - (x < y); }
static int split_map(void *ctx, float *A, int *h, int *w, const float *x0t, const float *x0p, int C, int H, int W)
{
    const glad_ads_fn *in = ctx;
    GLAD_TRY(in->amap(in->ctx, A, h, w, x0t, x0p, C, H, W));
    size_t n = (size_t)*h * *w;
    float *s = malloc(n * sizeof(float));
    if (!s) return GLAD_ENOMEM;
    memcpy(s, A, n * sizeof(float));
    qsort(s, n, sizeof(float), cmpf);
    float med = s[n / 2];
    for (size_t i = 0; i < n; i++) A[i] = A[i] >= med ? 6.0f : -6.0f;
    free(s);
    return 0;
}

static void non_square(const char *shared, const fx *f, const glad_ddim_plan *p)
{
    char tmp[] = "/tmp/glad_test_latent_ns_XXXXXX", src[600];
    if (!mkdtemp(tmp)) { CHECK(0); return; }
    snprintf(src, sizeof src, "%s/fixtures/sd-unet.weights.safetensors", shared);
    char *up = symmetric_copy(src, tmp, "unet.safetensors");
    snprintf(src, sizeof src, "%s/fixtures/sd-vae.weights.safetensors", shared);
    char *vp = symmetric_copy(src, tmp, "vae.safetensors");
    glad_sdunet *u = NULL;
    glad_vae *v = NULL;
    glad_tensor cu, ct;
    glad_latent m;
    if (!up || !vp || glad_sdunet_load(up, &u) || glad_vae_load(&v, vp) || glad_st_get_f32(CS, "ctx_uncond", &cu)) { CHECKF(0, "symmetric models: %s", glad_error_detail()); goto out0; }
    if (glad_st_get_f32(CS, "ctx_text", &ct)) { glad_tensor_free(&cu); CHECK(0); goto out0; }
    int rc = glad_latent_init(&m, u, v, cu.data, ct.data, f->L, (int)cu.shape[2], f->sched);
    glad_tensor_free(&cu); glad_tensor_free(&ct);
    if (rc) { CHECKF(0, "%s", glad_error_detail()); goto out0; }
    m.guidance = f->guidance;
    int mult = glad_latent_size_multiple(&m), fct = glad_vae_down_factor(v), C = glad_vae_cfg(v)->in_channels;
    int H = 12 * mult, W = 8 * mult, B = 2;   /* 48 x 32 with the fixture's multiple of 4 */
    size_t img = (size_t)C * H * W;
    float *x = malloc(B * img * sizeof(float)), *xT = malloc(B * img * sizeof(float)), *r = malloc(B * img * sizeof(float)),
          *rT = malloc(B * img * sizeof(float)), *back = malloc(B * img * sizeof(float)), *r1 = malloc(img * sizeof(float));
    glad_rng g;
    glad_rng_seed(&g, 5, 0, 0);
    glad_rng_normal_f32(&g, x, B * img);
    for (size_t i = 0; i < B * img; i++) x[i] = tanhf(x[i]);   /* an image in [-1, 1] */
    transpose(xT, x, B, C, H, W);
    glad_denoise_opts o;
    glad_denoise_opts_default(&o);
    o.plan = *p;
    int L = glad_vae_cfg(v)->latent_channels;
    tnoise zn = {L, H / fct, W / fct, 0}, zt = {L, H / fct, W / fct, 1};
    glad_noise_fn nf = {tnoise_draw, &zn}, nt = {tnoise_draw, &zt};
    CHECKF(glad_latent_run(&m, &nf, NULL, &o, B, x, H, W, r, NULL) == 0, "%dx%d run: %s", H, W, glad_error_detail());
    CHECKF(glad_latent_run(&m, &nt, NULL, &o, B, xT, W, H, rT, NULL) == 0, "%dx%d run: %s", W, H, glad_error_detail());
    int finite = 1;
    for (size_t i = 0; i < B * img; i++) finite &= isfinite(r[i]) != 0;
    CHECK(finite);
    transpose(back, rT, B, C, W, H);
    double e = rel_err(back, r, B * img), d = rel_err(r + img, r, img);
    CHECKF(e < 1e-4, "%dx%d vs %dx%d transposed: rel err %.3g", H, W, W, H, e);
    CHECKF(d > 1e-2, "two different records, two reconstructions (%.3g)", d);
    /* the first record alone: as in the batch */
    CHECK(glad_latent_run(&m, &nf, NULL, &o, 1, x, H, W, r1, NULL) == 0 && memcmp(r1, r, img * sizeof(float)) == 0);
    fprintf(stderr, "  glad-latent %dx%d: transposed input -> transposed recon, rel err %.2g\n", H, W, e);
    /* ADS (threshold -1: stops at the first step) with SAFF through the fixture
     * DINO, its map split at the median (split_map) */
    char *vitp = symmetric_copy("tests/fixtures/dino-vit.weights.safetensors", tmp, "vit.safetensors");
    glad_backbone *bb = NULL;
    glad_backbone_opts bo = {"vit", vitp, 0, 0, GLAD_BB_NORM_RAW};
    glad_ads_backbone ab;
    if (vitp && glad_backbone_open(&bb, &bo) == 0 && glad_ads_backbone_init(&ab, bb, -1) == 0) {
        o.ads = 1; o.saff = 1; o.threshold = -1;
        int st[2] = {0, 0}, stT[2] = {0, 0};
        glad_ads_fn split = {split_map, (void *)glad_ads_backbone_fn(&ab)};
        CHECK(glad_latent_run(&m, &nf, &split, &o, B, x, H, W, r, st) == 0);
        CHECK(glad_latent_run(&m, &nt, &split, &o, B, xT, W, H, rT, stT) == 0);
        transpose(back, rT, B, C, W, H);
        double ea = rel_err(back, r, B * img);
        CHECKF(ea < 1e-4, "ADS + SAFF %dx%d vs %dx%d transposed: rel err %.3g", H, W, W, H, ea);
        CHECK(st[0] == p->t[0] && stT[0] == p->t[0] && st[1] == p->t[0]);
        /* SAFF changed the result (the map is not constant) */
        CHECK(glad_latent_run(&m, &nf, NULL, &(glad_denoise_opts){.plan = *p, .topk = 10}, 1, x, H, W, r1, NULL) == 0);
        CHECK(rel_err(r, r1, img) > 1e-3);
        fprintf(stderr, "  glad-latent %dx%d ADS + SAFF with DINO: transposed, rel err %.2g\n", H, W, ea);
    } else
        CHECKF(0, "fixture DINO (tests/fixtures/dino-vit.weights.safetensors): %s", glad_error_detail());
    glad_backbone_close(bb);
    free(vitp);
    /* sides that are no multiple */
    CHECK(glad_latent_run(&m, &nf, NULL, &o, 1, x, H, W + mult / 2, r, NULL) == GLAD_ESHAPE);
    CHECK(glad_latent_run(&m, &nf, NULL, &o, 1, x, H - 1, W, r, NULL) == GLAD_ESHAPE);
    free(x); free(xT); free(r); free(rT); free(back); free(r1);
    glad_latent_free(&m);
out0:
    glad_sdunet_free(u);
    glad_vae_free(v);
    free(up); free(vp);
    snprintf(src, sizeof src, "rm -rf '%s'", tmp);
    CHECK(system(src) == 0);
}

int main(void)
{
    const char *sh = check_shared();
    char up[512], vp[512], cp[512];
    if (sh) {
        snprintf(up, sizeof up, "%s/fixtures/sd-unet.weights.safetensors", sh);
        snprintf(vp, sizeof vp, "%s/fixtures/sd-vae.weights.safetensors", sh);
        snprintf(cp, sizeof cp, "%s/fixtures/glad-latent.case.safetensors", sh);
    }
    glad_st *cs;
    if (!sh || access(up, R_OK) || access(vp, R_OK) || glad_st_open(&cs, cp)) {
        SKIP("glad-latent / sd-unet / sd-vae fixtures not found (GLAD_SHARED or ../shared/fixtures)");
        return check_done();
    }
    CS = cs;
    glad_sdunet *u = NULL;
    glad_vae *v = NULL;
    CHECKF(glad_sdunet_load(up, &u) == 0, "%s", glad_error_detail());
    CHECKF(glad_vae_load(&v, vp) == 0, "%s", glad_error_detail());
    const char *cfg = glad_st_meta(cs, "config");
    glad_json *j = NULL;
    CHECK(cfg && glad_json_parse(cfg, strlen(cfg), &j) == 0);
    fx f = {0};
    if (j) {
        f.steps = (int)glad_json_num(glad_json_get(j, "denoise_step"), 0);
        f.N = (int)glad_json_num(glad_json_get(j, "num_inference_steps"), 0);
        f.guidance = glad_json_num(glad_json_get(j, "guidance_scale"), 0);
        CHECK(fabs(glad_json_num(glad_json_get(j, "scaling_factor"), 0) - glad_vae_cfg(v)->scaling_factor) < 1e-7);
        glad_json_free(j);
    }
    f.sched = cfg ? subobject(cfg, "scheduler") : NULL;
    glad_tensor cu, ct, zin, x;
    if (!u || !v || !f.sched || f.N < 1 || glad_st_get_f32(cs, "ctx_uncond", &cu) || glad_st_get_f32(cs, "ctx_text", &ct) ||
        glad_st_get_f32(cs, "z_in", &zin) || glad_st_get_f32(cs, "x", &x)) {
        CHECKF(0, "fixture contents");
        return check_done();
    }
    f.L = (int)cu.shape[1];
    f.h = (int)zin.shape[2]; f.w = (int)zin.shape[3];
    f.lat = glad_tensor_numel(&zin);
    f.img = glad_tensor_numel(&x);
    NOISE = T_("noise");
    VNOISE = T_("vae_noise");
    glad_latent m;
    int rc = glad_latent_init(&m, u, v, cu.data, ct.data, f.L, (int)cu.shape[2], f.sched);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (!rc) {
        m.guidance = f.guidance;
        glad_ddim_plan p;
        schedule_and_plan(&m, &f, &p);
        /* the posterior sample, scaled */
        float *z = malloc(f.lat * sizeof(float));
        CHECK(glad_latent_encode(&m, z, x.data, 1, (int)x.shape[2], (int)x.shape[3], &FIX_NOISE, GLAD_LATENT_VAE_DRAW) == 0);
        double ez = rel_err(z, zin.data, f.lat);
        CHECKF(ez < 1e-4, "z_in rel err %.3g", ez);
        fprintf(stderr, "  glad-latent z_in %.2g\n", ez);
        teacher_forced(&m, &f, &p, zin.data);
        whole(&m, &f, &p);
        capture c = {0};
        float *r = free_run(&m, &f, &p, x.data, 1, 0, 0, 0, 0, 0.0f, NULL, &c);
        folder(sh, &f, &p, r);
        visa_bookkeeping(&m, &f, x.data);
        non_square(sh, &f, &p);
        /* sizes the latent model refuses */
        glad_denoise_opts o;
        glad_denoise_opts_default(&o);
        o.plan = p;
        int mult = glad_latent_size_multiple(&m);
        CHECK(glad_latent_run(&m, &FIX_NOISE, NULL, &o, 1, x.data, mult + 1, mult, r, NULL) == GLAD_ESHAPE);
        free(r);
        free(z);
        glad_latent_free(&m);
    }
    glad_tensor_free(&cu); glad_tensor_free(&ct); glad_tensor_free(&zin); glad_tensor_free(&x);
    free(f.sched);
    glad_sdunet_free(u);
    glad_vae_free(v);
    T_free();
    glad_st_close(cs);
    return check_done();
}
