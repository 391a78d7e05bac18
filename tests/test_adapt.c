/* test_adapt.c - DDAD's domain adaptation and GLAD's DINO fine-tuning
 * (lib/models/adapt.h, issue #21 items 2 and 4): the cosine loss against
 * finite differences (and PyTorch's eps clamp); one step of each procedure
 * against PyTorch (tests/fixtures/adapt.case.safetensors, made by
 * tests/ref/adapt_ref.py with the official losses on the wide-resnet and
 * dino-vit fixtures): the loss, every trained parameter's gradient to 1e-4,
 * the parameters after one AdamW / Adam step, DDAD's running statistics;
 * only the MLPs of the feature blocks train in DINO-ft; gradient
 * accumulation scales; the DINO-ft loop stopped after epoch 1 and resumed
 * gives bit-identical weights to an uninterrupted run, and a resume with
 * other settings is refused naming the setting. (ddad-da's loop needs a
 * diffusion model: tests/cli/adapt.sh runs it, resume included.) */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "core/rng.h"
#include "diffusion/denoise.h"
#include "diffusion/schedule.h"
#include "io/record.h"
#include "io/safetensors.h"
#include "io/stream.h"
#include "models/adapt.h"

static const char *fixture(char *buf, size_t n, const char *name)
{
    const char *sh = check_shared();
    snprintf(buf, n, "%s/fixtures/%s", sh ? sh : "tests", name);
    if (access(buf, R_OK) != 0) snprintf(buf, n, "tests/fixtures/%s", name);
    return buf;
}

static float *get(glad_st *st, const char *key, size_t *n)
{
    glad_tensor t;
    if (glad_st_get_f32(st, key, &t)) return NULL;
    if (n) *n = glad_tensor_numel(&t);
    return t.data;
}

static void fill(float *v, size_t n, uint64_t seed, float scale)
{
    glad_rng r;
    glad_rng_seed(&r, seed, 0, 0);
    for (size_t i = 0; i < n; i++) v[i] = (float)(glad_rng_normal(&r) * scale);
}

static double max_rel(const float *a, const float *ref, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) { m = fmax(m, fabs((double)a[i] - ref[i])); r = fmax(r, fabs((double)ref[i])); }
    return r > 0 ? m / r : m;
}

/* ---- the cosine loss ---- */
static void cos_loss(void)
{
    enum { B = 3, P = 50 };
    float a[B * P], b[B * P], da[B * P] = {0}, db[B * P] = {0};
    fill(a, B * P, 1, 1); fill(b, B * P, 2, 1);
    for (int i = 0; i < B * P; i++) b[i] += 0.5f * a[i];
    double s = 0.7, L = glad_adapt_cos_loss(a, b, B, P, s, da, db);
    /* against a direct evaluation */
    double ref = 0;
    for (int r = 0; r < B; r++) {
        double d = 0, na = 0, nb = 0;
        for (int i = 0; i < P; i++) { d += (double)a[r * P + i] * b[r * P + i]; na += (double)a[r * P + i] * a[r * P + i]; nb += (double)b[r * P + i] * b[r * P + i]; }
        ref += s * (1 - d / sqrt(na * nb));
    }
    CHECK_NEAR(L, ref, 1e-12);
    /* central differences of every 7th element of a and b */
    double worst = 0;
    for (int k = 0; k < B * P; k += 7)
        for (int w = 0; w < 2; w++) {
            float *v = w ? b : a, keep = v[k], h = 1e-2f;
            v[k] = keep + h; double lp = glad_adapt_cos_loss(a, b, B, P, s, NULL, NULL);
            v[k] = keep - h; double lm = glad_adapt_cos_loss(a, b, B, P, s, NULL, NULL);
            v[k] = keep;
            double fd = (lp - lm) / ((double)(keep + h) - (double)(keep - h)), g = w ? db[k] : da[k];
            worst = fmax(worst, fabs(fd - g));
        }
    CHECKF(worst < 1e-4, "cosine loss finite differences off by %.3g", worst);
    /* gradients accumulate (+=) */
    float da2[B * P];
    memcpy(da2, da, sizeof da);
    glad_adapt_cos_loss(a, b, B, P, s, da2, NULL);
    CHECK_NEAR(da2[10], 2 * da[10], 1e-6);
    /* a zero vector: PyTorch's clamp (|x||y| >= 1e-8): cos 0, finite gradient */
    float z[P] = {0}, dz[P] = {0};
    double Lz = glad_adapt_cos_loss(z, b, 1, P, 1, dz, NULL);
    CHECK_NEAR(Lz, 1, 1e-12);
    CHECK(isfinite(dz[0]) && fabsf(dz[0] + b[0] * 1e8f) <= 1e-3f * fabsf(b[0] * 1e8f));
}

/* the case's gradient reference of tensor name (n values) against g; -1 when missing */
static double grad_err(glad_st *st, const char *pre, const char *name, const float *g, size_t n)
{
    char key[200];
    size_t m;
    double e = -1;
    snprintf(key, sizeof key, "%sgrad.%s", pre, name);
    float *r = get(st, key, &m);
    if (r) { e = m == n ? max_rel(g, r, n) : -1; free(r); return e; }
    snprintf(key, sizeof key, "%sgsample.%s", pre, name);
    float *smp = get(st, key, &m);
    snprintf(key, sizeof key, "%sgproj.%s", pre, name);
    size_t np;
    float *pj = get(st, key, &np);
    if (smp && m == 512 && pj && np == 5) {
        float mine[512];
        for (size_t k = 0; k < 512; k++) mine[k] = g[k * n / 512];
        e = max_rel(mine, smp, 512);
        double p[5] = {0};
        for (size_t k = 0; k < n; k++) {
            for (int j = 0; j < 4; j++) p[j] += g[k] * (2 * glad_rng_uniform_at((uint64_t)j + 1, k) - 1);
            p[4] += (double)g[k] * g[k];
        }
        p[4] = sqrt(p[4]);
        for (int j = 0; j < 5; j++) e = fmax(e, fabs(p[j] - pj[j]) / pj[4]);
    }
    free(smp); free(pj);
    return e;
}

/* (after - before) / lr against the case's upd.NAME at its indices: the
 * worst difference (in units of lr, beyond the rounding of the float
 * parameter) over elements whose reference gradient is clear of Adam's eps
 * (|g| > 1e-6: the first step is -g/(|g|+1e-8)) */
static double upd_err(glad_st *st, const char *pre, const char *name, const float *after, const float *before, const float *g, size_t n,
                      double lr, int *cmp)
{
    char key[200];
    size_t m;
    snprintf(key, sizeof key, "%supd.%s", pre, name);
    float *u = get(st, key, &m);
    if (!u || (m != n && m != 512)) { free(u); return -1; }
    double e = 0;
    for (size_t k = 0; k < m; k++) {
        size_t i = m == n ? k : k * n / 512;
        if (fabsf(g[i]) <= 1e-6f) continue;
        /* the float parameter rounds the step: up to 2 ulps of |p| allowed besides */
        e = fmax(e, (fabs((double)after[i] - before[i] - lr * u[k]) - 2.4e-7 * fabs(before[i])) / lr);
        (*cmp)++;
    }
    free(u);
    return e;
}

static void ddad_parity(glad_st *st)
{
    char wp[512];
    fixture(wp, sizeof wp, "wide-resnet.weights.safetensors");
    glad_resnet_train *t;
    glad_resnet *fz;
    if (glad_resnet_train_load(&t, wp) || glad_resnet_load(&fz, wp)) { CHECKF(0, "%s", glad_error_detail()); return; }
    size_t n;
    float *x0 = get(st, "ddad.x0", &n), *y = get(st, "ddad.y", NULL), *lref = get(st, "ddad.loss", NULL);
    CHECK(x0 && y && lref && n == 2 * 3 * 64 * 64);
    if (!x0 || !y || !lref) return;
    double loss;
    CHECKF(glad_adapt_ddad_grad(t, fz, x0, y, 2, 64, 64, 0.1, &loss) == 0, "%s", glad_error_detail());
    CHECKF(fabs(loss - lref[0]) <= 1e-4 * fabs(lref[0]), "ddad loss %.8g vs %.8g", loss, lref[0]);
    /* one AdamW step, as the loop takes it */
    glad_adapt_config c;
    glad_adapt_config_default(&c, GLAD_ADAPT_DDAD_DA);
    c.lr = 1e-4; c.wd = 0.01;
    glad_adam_cfg ac;
    glad_adapt_adam_cfg(&c, &ac);
    double worst = 0, uworst = 0;
    int compared = 0, missing = 0, ucmp = 0, stats_bad = 0;
    char wn[160] = "", un[160] = "";
    for (int i = 0; i < glad_resnet_train_ntensors(t); i++) {
        glad_resnet_tensor q;
        glad_resnet_train_tensor(t, i, &q);
        if (!q.grad) continue;
        double e = grad_err(st, "ddad.", q.name, q.grad, q.n);
        if (e < 0) { missing++; fprintf(stderr, "  no reference for %s\n", q.name); continue; }
        compared++;
        if (e > worst) { worst = e; snprintf(wn, sizeof wn, "%s", q.name); }
        float *before = malloc(q.n * 4), *m = calloc(q.n, 4), *v = calloc(q.n, 4);
        memcpy(before, q.data, q.n * 4);
        glad_adam_step(q.data, q.grad, m, v, q.n, &ac, 1);
        double u = upd_err(st, "ddad.", q.name, q.data, before, q.grad, q.n, 1e-4, &ucmp);
        if (u < 0) missing++;
        if (u > uworst) { uworst = u; snprintf(un, sizeof un, "%s", q.name); }
        free(before); free(m); free(v);
    }
    for (int i = 0; i < glad_resnet_train_ntensors(t); i++) {   /* running statistics moved by both forwards */
        glad_resnet_tensor q;
        glad_resnet_train_tensor(t, i, &q);
        if (q.grad) continue;
        char key[200];
        size_t m;
        snprintf(key, sizeof key, "ddad.%s", q.name);
        float *r = get(st, key, &m);
        if (!r || m != q.n) missing++;
        else if (max_rel(q.data, r, m) > 1e-5) stats_bad++;
        free(r);
    }
    CHECKF(missing == 0, "%d ddad tensors without a reference", missing);
    CHECK(compared == 3 * 16);
    CHECKF(worst < 1e-4, "ddad: worst parameter gradient rel err %.3g (%s)", worst, wn);
    CHECKF(uworst < 1e-4 && ucmp > 1000, "ddad: AdamW update off by %.3g lr (%s; %d compared)", uworst, un, ucmp);
    CHECKF(stats_bad == 0, "ddad: %d running statistics off", stats_bad);
    fprintf(stderr, "  ddad-da step: loss %.8g (ref %.8g), worst grad %.2g (%s), update %.2g lr over %d values\n", loss, lref[0], worst, wn,
            uworst, ucmp);
    /* the frozen copy as glad-adapt loads it (plain weights: glad_resnet_forward_batch):
     * the same loss and gradients up to rounding */
    glad_resnet_train *t2;
    glad_resnet *fz0;
    if (glad_resnet_train_load(&t2, wp) == 0 && glad_resnet_load_winograd(&fz0, wp, 0) == 0) {
        double l2;
        CHECKF(glad_adapt_ddad_grad(t2, fz0, x0, y, 2, 64, 64, 0.1, &l2) == 0, "%s", glad_error_detail());
        float *g1, *g2;
        size_t n1, n2;
        glad_resnet_train_params(t, &g1, &n1);
        glad_resnet_train_params(t2, &g2, &n2);
        double gmax = 0, gd = 0;
        for (size_t i = 0; n1 == n2 && i < n1; i++) { gmax = fmax(gmax, fabs(g1[i])); gd = fmax(gd, fabs((double)g1[i] - g2[i])); }
        CHECKF(n1 == n2 && fabs(l2 - lref[0]) <= 1e-4 * fabs(lref[0]) && gd <= 1e-5 * gmax,
               "batch-forward frozen copy: loss %.8g vs %.8g, gradients differ by %.3g of max %.3g", l2, lref[0], gd, gmax);
        glad_resnet_train_free(t2);
        glad_resnet_free(fz0);
    } else CHECKF(0, "%s", glad_error_detail());
    free(x0); free(y); free(lref);
    glad_resnet_train_free(t);
    glad_resnet_free(fz);
}

static void dino_parity(glad_st *st)
{
    char wp[512];
    fixture(wp, sizeof wp, "dino-vit.weights.safetensors");
    glad_vit *v, *fz;
    if (glad_vit_load(&v, wp) || glad_vit_load(&fz, wp)) { CHECKF(0, "%s", glad_error_detail()); return; }
    int blocks[4], nb = glad_adapt_dino_blocks(glad_vit_cfg(v)->depth, blocks);
    CHECK(nb == 4 && blocks[0] == 1 && blocks[3] == 4);
    int b12[4];
    CHECK(glad_adapt_dino_blocks(12, b12) == 4 && b12[0] == 3 && b12[1] == 6 && b12[2] == 9 && b12[3] == 12);
    char pre[4][32];
    const char *pp[4];
    for (int k = 0; k < nb; k++) { snprintf(pre[k], sizeof pre[k], "blocks.%d.mlp.", blocks[k] - 1); pp[k] = pre[k]; }
    glad_vit_tape *tp;
    CHECKF(glad_vit_tape_new(&tp, v, nb, pp) == 0, "%s", glad_error_detail());
    size_t n;
    float *xi = get(st, "dino.xi", &n), *xr = get(st, "dino.xr", NULL), *lref = get(st, "dino.loss", NULL);
    CHECK(xi && xr && lref && n == 2 * 3 * 32 * 32);
    if (!xi || !xr || !lref) return;
    double loss;
    glad_vit_zero_grad(tp);
    CHECKF(glad_adapt_dino_grad(tp, fz, xi, xr, 2, 32, 32, nb, blocks, 0.01, 1.0, &loss) == 0, "%s", glad_error_detail());
    CHECKF(fabs(loss - lref[0]) <= 1e-4 * fabs(lref[0]), "dino loss %.8g vs %.8g", loss, lref[0]);
    glad_adapt_config c;
    glad_adapt_config_default(&c, GLAD_ADAPT_DINO_FT);
    c.lr = 3e-4; c.wd = 0;
    glad_adam_cfg ac;
    glad_adapt_adam_cfg(&c, &ac);
    double worst = 0, uworst = 0;
    int compared = 0, missing = 0, ucmp = 0, frozen_nonzero = 0;
    char wn[160] = "";
    for (int i = 0; i < glad_vit_param_count(v); i++) {
        const char *nm = glad_vit_param_name(v, i);
        size_t m;
        float *g = glad_vit_grad(tp, nm, &m), *p = glad_vit_param(v, nm, NULL);
        if (!strstr(nm, ".mlp.")) {
            for (size_t k = 0; k < m; k++) frozen_nonzero += g[k] != 0;
            continue;
        }
        double e = grad_err(st, "dino.", nm, g, m);
        if (e < 0) { missing++; fprintf(stderr, "  no reference for %s\n", nm); continue; }
        compared++;
        if (e > worst) { worst = e; snprintf(wn, sizeof wn, "%s", nm); }
        float *before = malloc(m * 4), *mm = calloc(m, 4), *vv = calloc(m, 4);
        memcpy(before, p, m * 4);
        glad_adam_step(p, g, mm, vv, m, &ac, 1);
        double u = upd_err(st, "dino.", nm, p, before, g, m, 3e-4, &ucmp);
        if (u < 0) missing++;
        uworst = fmax(uworst, u);
        free(before); free(mm); free(vv);
    }
    CHECKF(missing == 0, "%d dino tensors without a reference", missing);
    CHECK(compared == 4 * 4);
    CHECKF(frozen_nonzero == 0, "%d gradients of frozen parameters are not zero", frozen_nonzero);
    CHECKF(worst < 1e-4, "dino: worst parameter gradient rel err %.3g (%s)", worst, wn);
    CHECKF(uworst < 1e-4 && ucmp > 1000, "dino: Adam update off by %.3g lr (%d compared)", uworst, ucmp);
    fprintf(stderr, "  dino-ft step: loss %.8g (ref %.8g), worst grad %.2g (%s), update %.2g lr over %d values\n", loss, lref[0], worst, wn,
            uworst, ucmp);
    /* accumulation: scale 0.5 adds half the gradients (the weights changed, so compare against a fresh pass) */
    size_t ng;
    float *g = glad_vit_grads(tp, &ng), *g1 = malloc(ng * 4);
    glad_vit_zero_grad(tp);
    CHECK(glad_adapt_dino_grad(tp, fz, xi, xr, 2, 32, 32, nb, blocks, 0.01, 1.0, &loss) == 0);
    memcpy(g1, g, ng * 4);
    glad_vit_zero_grad(tp);
    double l2;
    CHECK(glad_adapt_dino_grad(tp, fz, xi, xr, 2, 32, 32, nb, blocks, 0.01, 0.5, &l2) == 0);
    CHECK_NEAR(l2, loss, 1e-9);
    double e = 0;
    for (size_t k = 0; k < ng; k++) e = fmax(e, fabs(2.0 * g[k] - g1[k]));
    CHECKF(e < 1e-6, "scale 0.5 off by %.3g", e);
    free(g1); free(xi); free(xr); free(lref);
    glad_vit_tape_free(tp);
    glad_vit_free(v);
    glad_vit_free(fz);
}

/* ---- DDAD's reconstruction of one image conditioned on another ---- */
static int toy_eps(void *ctx, float *eps, const float *x, const float *t, int B)
{
    (void)ctx;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < 3 * 8 * 8; i++) eps[b * 192 + i] = 0.1f * x[b * 192 + i] + 1e-4f * t[b];
    return 0;
}

static void denoise_cond(void)
{
    double ab[1000];
    CHECK(glad_schedule_alpha_bar(ab, 1000, GLAD_BETAS_LINEAR) == 0);
    glad_denoise_opts o;
    glad_denoise_opts_default(&o);
    o.eta = 1; o.cond_w = 3;
    CHECK(glad_ddim_plan_make(&o.plan, ab, 1000, 250, 25, GLAD_TS_DDAD) == 0);
    glad_model_fn m = {.eps = toy_eps, .C = 3, .H = 8, .W = 8};
    uint64_t ids[2] = {11, 12};
    glad_rng_noise nz;
    const glad_noise_fn *nf = glad_rng_noise_init(&nz, 7, ids);
    float x[384], y[384], r1[384], r2[384], r3[384];
    fill(x, 384, 20, 0.5f); fill(y, 384, 21, 0.5f);
    CHECK(glad_denoise_run(&m, nf, NULL, &o, 2, y, r1, NULL) == 0);
    CHECK(glad_denoise_run_cond(&m, nf, &o, 2, y, y, r2) == 0);
    CHECK(memcmp(r1, r2, sizeof r1) == 0);   /* x = y is glad_denoise_run, bit for bit */
    CHECK(glad_denoise_run_cond(&m, nf, &o, 2, x, y, r3) == 0);
    double dx = 0, dy = 0;   /* conditioned on y, the reconstruction of x ends nearer y than x */
    for (int i = 0; i < 384; i++) { dx += fabs(r3[i] - x[i]); dy += fabs(r3[i] - y[i]); }
    CHECKF(dy < dx, "reconstruction of x under y: |r - y| %.3g, |r - x| %.3g", dy, dx);
    o.ads = 1;
    CHECK(glad_denoise_run_cond(&m, nf, &o, 2, x, y, r3) == GLAD_EINVAL);
}

/* ---- the DINO-ft loop: resume bit-exact ---- */
static int write_stream(const char *path, int n, int S)
{
    glad_writer *wr;
    if (glad_writer_open(&wr, path, 0)) return -1;
    glad_record h;
    glad_header_init(&h);
    int rc = glad_writer_write(wr, &h);
    glad_record_free(&h);
    for (int i = 0; i < n && !rc; i++) {
        glad_record r;
        glad_record_init(&r);
        char id[32];
        snprintf(id, sizeof id, "good/%03d", i);
        glad_tensor a, b;
        glad_tensor_alloc4(&a, GLAD_DT_F32, 3, S, S, -1);
        glad_tensor_alloc4(&b, GLAD_DT_F32, 3, S, S, -1);
        float *pa = a.data, *pb = b.data;
        fill(pa, (size_t)3 * S * S, 50 + i, 0.4f);
        fill(pb, (size_t)3 * S * S, 90 + i, 0.1f);
        for (int k = 0; k < 3 * S * S; k++) pb[k] += pa[k];
        rc = glad_record_set_str(&r, "id", id) || glad_record_set_tensor(&r, "image", &a) || glad_record_set_tensor(&r, "recon", &b) ||
             glad_writer_write(wr, &r);
        glad_record_free(&r);
    }
    if (rc) { glad_writer_abort(wr); return -1; }
    return glad_writer_close(wr);
}

static int run(const char *in, const char *wp, const char *dir, int epochs, int resume, double lr)
{
    glad_adapt_config c;
    glad_adapt_config_default(&c, GLAD_ADAPT_DINO_FT);
    c.input = in; c.backbone = wp; c.outdir = dir; c.epochs = epochs; c.resume = resume;
    c.batch = 3; c.accum = 2; c.size = 32; c.seed = 5; c.lr = lr;
    glad_adapt *a;
    int rc = glad_adapt_open(&a, &c);
    if (rc) return rc;
    while (!rc && a->epoch < a->epochs) rc = glad_adapt_epoch(a);
    glad_adapt_close(a);
    return rc;
}

static int same_file(const char *a, const char *b)
{
    FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
    int same = f && g;
    while (same) {
        int x = fgetc(f), y = fgetc(g);
        if (x != y) same = 0;
        if (x == EOF || y == EOF) break;
    }
    if (f) fclose(f);
    if (g) fclose(g);
    return same;
}

static void resume(void)
{
    char wp[512], in[128], d1[128], d2[128], p1[256], p2[256], cmd[512];
    fixture(wp, sizeof wp, "dino-vit.weights.safetensors");
    snprintf(in, sizeof in, "/tmp/glad-test-adapt-%d.msgpack", (int)getpid());
    snprintf(d1, sizeof d1, "/tmp/glad-test-adapt-%d-a", (int)getpid());
    snprintf(d2, sizeof d2, "/tmp/glad-test-adapt-%d-b", (int)getpid());
    CHECK(write_stream(in, 7, 24) == 0);   /* 7 records: batches 3,3,1; steps after 2 and at the end; resized 24 -> 32 */
    CHECKF(run(in, wp, d1, 2, 0, 3e-4) == 0, "%s", glad_error_detail());
    CHECKF(run(in, wp, d2, 1, 0, 3e-4) == 0, "%s", glad_error_detail());
    /* another lr is refused, naming it */
    CHECK(run(in, wp, d2, 2, 1, 1e-3) == GLAD_ERANGE && strstr(glad_error_detail(), "lr"));
    CHECKF(run(in, wp, d2, 2, 1, 3e-4) == 0, "%s", glad_error_detail());
    /* nothing left to do */
    CHECK(run(in, wp, d2, 2, 1, 3e-4) == GLAD_ERANGE);
    snprintf(p1, sizeof p1, "%s/feat2.safetensors", d1);
    snprintf(p2, sizeof p2, "%s/feat2.safetensors", d2);
    CHECKF(same_file(p1, p2), "resumed feat2 differs from the uninterrupted run's");
    snprintf(p1, sizeof p1, "%s/feat2.state.safetensors", d1);
    snprintf(p2, sizeof p2, "%s/feat2.state.safetensors", d2);
    CHECKF(same_file(p1, p2), "resumed optimiser state differs");
    /* feat0 is the pretrained net; feat1 differs from it only in the trained MLPs */
    snprintf(p1, sizeof p1, "%s/feat0.safetensors", d1);
    snprintf(p2, sizeof p2, "%s/feat1.safetensors", d1);
    glad_vit *v0, *v1;
    CHECK(glad_vit_load(&v0, p1) == 0 && glad_vit_load(&v1, p2) == 0);
    int changed_mlp = 0, changed_other = 0;
    for (int i = 0; i < glad_vit_param_count(v0); i++) {
        const char *nm = glad_vit_param_name(v0, i);
        size_t m;
        float *a = glad_vit_param(v0, nm, &m), *b = glad_vit_param(v1, nm, NULL);
        int diff = memcmp(a, b, m * 4) != 0;
        if (strstr(nm, ".mlp.")) changed_mlp += diff;
        else changed_other += diff;
    }
    CHECK(changed_mlp == 16 && changed_other == 0);
    glad_vit_free(v0); glad_vit_free(v1);
    /* the state of epoch 1 was replaced by epoch 2's */
    snprintf(p1, sizeof p1, "%s/feat1.state.safetensors", d1);
    CHECK(access(p1, F_OK) != 0);
    /* errors name the record and the field */
    glad_adapt_config c;
    glad_adapt_config_default(&c, GLAD_ADAPT_DDAD_DA);
    c.input = in; c.backbone = wp; c.outdir = d1;
    glad_adapt *a;
    CHECK(glad_adapt_open(&a, &c) == GLAD_EINVAL && strstr(glad_error_detail(), "--model"));
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s", in, d1, d2);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    cos_loss();
    denoise_cond();
    glad_st *st;
    if (glad_st_open(&st, "tests/fixtures/adapt.case.safetensors")) CHECKF(0, "tests/fixtures/adapt.case.safetensors: %s", glad_error_detail());
    else {
        ddad_parity(st);
        dino_parity(st);
        glad_st_close(st);
    }
    resume();
    return check_done();
}
