/* test_unet.c - the UNet against the official DDAD UNetModel fixtures
 * (../shared/fixtures/ddad-unet-{rgb,grey}): forward within 1e-4 of the
 * max-abs reference, loss, every parameter gradient and the input gradient
 * within 1e-3; plus self-contained checks (save/load round trip, finite
 * differences of parameter and input gradients of a tiny model) and the
 * model files load refuses: non-finite weights, configs the skip buffers
 * cannot hold, a missing file, a directory. */
#include <stdlib.h>
#include <unistd.h>
#include "check.h"
#include "models/unet.h"
#include "io/safetensors.h"

static double rel_err(const float *a, const float *ref, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) { m = fmax(m, fabs((double)a[i] - ref[i])); r = fmax(r, fabs((double)ref[i])); }
    return r > 0 ? m / r : m;
}

static void parity(const char *shared, const char *name)
{
    char wp[512], cp[512];
    snprintf(wp, sizeof wp, "%s/fixtures/%s.weights.safetensors", shared, name);
    snprintf(cp, sizeof cp, "%s/fixtures/%s.case.safetensors", shared, name);
    glad_unet *u;
    int rc = glad_unet_load(&u, wp);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return;
    glad_st *st;
    if (glad_st_open(&st, cp)) { CHECK(0); glad_unet_free(u); return; }
    glad_tensor x, t, eps, xt, tt, noise, loss, gin;
    CHECK(glad_st_get_f32(st, "x", &x) == 0 && glad_st_get_f32(st, "t", &t) == 0 && glad_st_get_f32(st, "eps", &eps) == 0);
    int B = (int)x.shape[0];
    size_t n = glad_tensor_numel(&x);
    float *out = malloc(n * sizeof(float)), *d = malloc(n * sizeof(float)), *dx = calloc(n, sizeof(float));
    CHECK(glad_unet_forward(u, out, x.data, t.data, B, 0, 0) == 0);
    double e = rel_err(out, eps.data, n);
    CHECKF(e < 1e-4, "%s forward rel err %.3g", name, e);
    /* training case */
    CHECK(glad_st_get_f32(st, "train.x_t", &xt) == 0 && glad_st_get_f32(st, "train.t", &tt) == 0);
    CHECK(glad_st_get_f32(st, "train.noise", &noise) == 0 && glad_st_get_f32(st, "train.loss", &loss) == 0);
    CHECK(glad_st_get_f32(st, "train.grad_input", &gin) == 0);
    glad_unet_zero_grad(u);
    CHECK(glad_unet_forward(u, out, xt.data, tt.data, B, 1, 0) == 0);
    double L = 0;
    for (size_t i = 0; i < n; i++) {
        double r = (double)((float *)noise.data)[i] - out[i];
        L += r * r;
        d[i] = (float)(-2.0 * r / B);   /* d/d eps of mean_b sum (noise - eps)^2 */
    }
    L /= B;
    CHECKF(fabs(L - ((float *)loss.data)[0]) <= 1e-4 * fabs(((float *)loss.data)[0]), "%s loss %.8g vs %.8g", name, L, ((float *)loss.data)[0]);
    CHECK(glad_unet_backward(u, d, dx) == 0);
    double worst = 0, gmax = 0;
    const char *worst_name = "";
    int missing = 0;
    /* Some gradients are zero by construction (a bias right before a GroupNorm
     * whose groups hold one channel): the reference has ~1e-14 there. Errors are
     * relative to the tensor's max-abs, floored at 1e-4 of the largest gradient. */
    for (int i = 0; i < glad_unet_param_count(u); i++) {
        char gn[300];
        snprintf(gn, sizeof gn, "grad.%s", glad_unet_param(u, i)->name);
        glad_tensor g;
        if (glad_st_get_f32(st, gn, &g) == 0) {
            for (size_t k = 0; k < glad_tensor_numel(&g); k++) gmax = fmax(gmax, fabs(((float *)g.data)[k]));
            glad_tensor_free(&g);
        }
    }
    for (int i = 0; i < glad_unet_param_count(u); i++) {
        const glad_param *q = glad_unet_param(u, i);
        char gn[300];
        snprintf(gn, sizeof gn, "grad.%s", q->name);
        glad_tensor g;
        if (glad_st_get_f32(st, gn, &g)) { missing++; continue; }
        double m = 0, r = 1e-4 * gmax;
        const float *ours = glad_unet_grads(u) + q->off, *ref = g.data;
        for (size_t k = 0; k < q->n; k++) { m = fmax(m, fabs((double)ours[k] - ref[k])); r = fmax(r, fabs((double)ref[k])); }
        double ge = m / r;
        if (ge > worst) { worst = ge; worst_name = q->name; }
        glad_tensor_free(&g);
    }
    CHECKF(missing == 0, "%d reference gradients missing", missing);
    CHECKF(worst < 1e-3, "%s worst parameter gradient %s rel err %.3g", name, worst_name, worst);
    double ie = rel_err(dx, gin.data, n);
    CHECKF(ie < 1e-3, "%s input gradient rel err %.3g", name, ie);
    fprintf(stderr, "  %s: forward %.2g, worst param grad %.2g (%s), input grad %.2g\n", name, e, worst, worst_name, ie);
    glad_tensor *all[] = {&x, &t, &eps, &xt, &tt, &noise, &loss, &gin};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) glad_tensor_free(all[i]);
    free(out); free(d); free(dx);
    glad_st_close(st);
    glad_unet_free(u);
}

/* the weights glad_unet_init leaves at zero (output layers, biases) made small
 * pseudo-random values in [-0.05, 0.05), so every layer has gradients and a
 * non-zero output */
static void jitter_zeros(glad_unet *u)
{
    float *w = glad_unet_weights(u);
    uint64_t s = 99;
    for (size_t i = 0; i < glad_unet_nparams(u); i++)
        if (w[i] == 0.0f) { s = s * 6364136223846793005ull + 1; w[i] = (float)(((s >> 40) / 16777216.0 - 0.5) * 0.1); }
}

/* tiny model: finite differences of a few parameters and input pixels */
static void finite_differences(void)
{
    glad_unet_config c;
    glad_unet_config_default(&c, 16, 2);
    c.base = 32; c.nmults = 2; c.mults[0] = 1; c.mults[1] = 1; c.num_res_blocks = 1; c.heads = 2; c.nattn = 1; c.attn_res[0] = 8;
    glad_unet *u;
    CHECK(glad_unet_create(&u, &c) == 0);
    glad_unet_init(u, 7);
    /* give the zero-initialised layers weights so gradients flow everywhere */
    jitter_zeros(u);
    float *w = glad_unet_weights(u);
    int B = 2;
    size_t n = (size_t)B * 2 * 16 * 16;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *dx = calloc(n, sizeof(float)), t[2] = {3, 500};
    for (size_t i = 0; i < n; i++) x[i] = sinf((float)i * 0.37f);
    /* loss = sum y * r with fixed random r */
    float *r = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) r[i] = cosf((float)i * 1.7f);
#define LOSS(out) ({ double l_ = 0; for (size_t k_ = 0; k_ < n; k_++) l_ += (double)(out)[k_] * r[k_]; l_; })
    glad_unet_zero_grad(u);
    glad_unet_forward(u, y, x, t, B, 1, 0);
    CHECK(glad_unet_backward(u, r, dx) == 0);
    const float *g = glad_unet_grads(u);
    int bad = 0, checked = 0;
    for (int pi = 0; pi < glad_unet_param_count(u); pi += 3) {
        const glad_param *q = glad_unet_param(u, pi);
        size_t k = q->off + (q->n * 7919) % q->n;
        float keep = w[k], h = 1e-2f;
        w[k] = keep + h; glad_unet_forward(u, y, x, t, B, 0, 0); double lp = LOSS(y);
        w[k] = keep - h; glad_unet_forward(u, y, x, t, B, 0, 0); double lm = LOSS(y);
        w[k] = keep;
        double fd = (lp - lm) / (2 * h);
        checked++;
        if (fabs(fd - g[k]) > 2e-2 * fmax(1.0, fabs(fd))) { bad++; fprintf(stderr, "  fd %s: %g vs %g\n", q->name, fd, g[k]); }
    }
    CHECKF(bad == 0, "%d of %d parameter finite differences off", bad, checked);
    bad = 0;
    for (size_t k = 5; k < n; k += n / 7) {
        float keep = x[k], h = 1e-2f;
        x[k] = keep + h; glad_unet_forward(u, y, x, t, B, 0, 0); double lp = LOSS(y);
        x[k] = keep - h; glad_unet_forward(u, y, x, t, B, 0, 0); double lm = LOSS(y);
        x[k] = keep;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - dx[k]) > 2e-2 * fmax(1.0, fabs(fd))) { bad++; fprintf(stderr, "  fd x[%zu]: %g vs %g\n", k, fd, dx[k]); }
    }
    CHECK(bad == 0);
    /* save / load round trip gives the same output */
    char path[64];   /* per process: run.sh runs this binary twice at once (with and without AVX-512) */
    snprintf(path, sizeof path, "/tmp/glad-test-unet-%d.safetensors", (int)getpid());
    CHECK(glad_unet_save(u, path, NULL, 0, NULL, NULL, 0, NULL, NULL) == 0);
    glad_unet *v;
    CHECKF(glad_unet_load(&v, path) == 0, "%s", glad_error_detail());
    float *y2 = malloc(n * sizeof(float));
    glad_unet_forward(u, y, x, t, B, 0, 0);
    glad_unet_forward(v, y2, x, t, B, 0, 0);
    CHECK(memcmp(y, y2, n * sizeof(float)) == 0);
    /* batch 2 == two batches of 1 */
    float *y1 = malloc(n * sizeof(float));
    glad_unet_forward(v, y1, x, t, 1, 0, 0);
    glad_unet_forward(v, y1 + n / 2, x + n / 2, t + 1, 1, 0, 0);
    CHECK(rel_err(y1, y, n) < 1e-5);
    remove(path);
    free(x); free(y); free(y1); free(y2); free(dx); free(r);
    glad_unet_free(u);
    glad_unet_free(v);
}

/* what glad_unet_create and glad_unet_load refuse, and how they say it */
static void refusals(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/glad-test-unet-bad-%d.safetensors", (int)getpid());
    glad_unet_config c;
    glad_unet_config_default(&c, 16, 1);
    c.base = 32; c.nmults = 1; c.mults[0] = 1; c.num_res_blocks = 1; c.heads = 1; c.nattn = 0;
    glad_unet *u, *v = NULL;
    CHECK(glad_unet_create(&u, &c) == 0);
    glad_unet_init(u, 1);
    /* a NaN in one tensor: refused at load, naming it */
    const glad_param *q = glad_unet_param(u, 5);
    glad_unet_weights(u)[q->off + 3] = NAN;
    CHECK(glad_unet_save(u, path, NULL, 0, NULL, NULL, 0, NULL, NULL) == 0);
    int rc = glad_unet_load(&v, path);
    char want[300];
    snprintf(want, sizeof want, "tensor '%s' has NaN or infinity", q->name);
    CHECKF(rc == GLAD_ENAN && strstr(glad_error_detail(), want), "rc %d '%s'", rc, glad_error_detail());
    if (!rc) glad_unet_free(v);
    /* more skip connections than the UNet holds: 4 levels x (16 + 1) > 64,
     * from a config and from a model file's config */
    glad_unet_config deep = c;
    deep.nmults = 4; deep.mults[1] = deep.mults[2] = deep.mults[3] = 1; deep.num_res_blocks = 16;
    v = NULL;
    rc = glad_unet_create(&v, &deep);
    CHECKF(rc == GLAD_EINVAL && strstr(glad_error_detail(), "skip connections"), "rc %d '%s'", rc, glad_error_detail());
    if (!rc) glad_unet_free(v);
    deep.num_res_blocks = 15;   /* 4 x 16 = 64: the limit itself is fine */
    rc = glad_unet_create(&v, &deep);
    CHECK(rc == 0);
    if (!rc) glad_unet_free(v);
    char cfg[1024];
    deep.num_res_blocks = 16;
    glad_unet_config_json(&deep, cfg, sizeof cfg);
    const char *mk[] = {"config"}, *mv[] = {cfg};
    CHECK(glad_st_save(path, 0, NULL, NULL, 1, mk, mv) == 0);
    rc = glad_unet_load(&v, path);
    CHECKF(rc == GLAD_EFORMAT && strstr(glad_error_detail(), "skip connections"), "rc %d '%s'", rc, glad_error_detail());
    if (!rc) glad_unet_free(v);
    /* a config of about 10^12 parameters in a file of a few hundred bytes:
     * refused for the missing tensor before anything of that size is
     * allocated (the old loader answered "out of memory", or took the RAM) */
    glad_unet_config huge = c;
    huge.base = 4096; huge.nmults = 4; huge.num_res_blocks = 4; huge.heads = 1;
    for (int i = 0; i < 4; i++) huge.mults[i] = 16;
    glad_unet_config_json(&huge, cfg, sizeof cfg);
    CHECK(glad_st_save(path, 0, NULL, NULL, 1, mk, mv) == 0);
    rc = glad_unet_load(&v, path);
    CHECKF(rc == GLAD_ENOTFOUND && strstr(glad_error_detail(), "tensor 'time_embedding.1.weight' missing"), "rc %d '%s'", rc,
           glad_error_detail());
    if (!rc) glad_unet_free(v);
    remove(path);
    /* no such file; a directory */
    rc = glad_unet_load(&v, path);
    CHECKF(rc == GLAD_EIO && strstr(glad_error_detail(), "No such file or directory"), "'%s'", glad_error_detail());
    rc = glad_unet_load(&v, "/tmp");
    CHECKF(rc == GLAD_EIO && strstr(glad_error_detail(), "Is a directory"), "'%s'", glad_error_detail());
    glad_unet_free(u);
}

/* glad_unet_profile: off by default, one row per op with its calls, the
 * flops add up to glad_unet_forward_flops, the output unchanged by it, a new
 * graph starts a new table, turning it on again zeroes it */
static void profile(void)
{
    glad_unet_config c;
    glad_unet_config_default(&c, 16, 1);
    c.base = 32; c.nmults = 2; c.mults[0] = 1; c.mults[1] = 2; c.num_res_blocks = 1; c.heads = 2; c.nattn = 1; c.attn_res[0] = 8;
    glad_unet *u;
    CHECK(glad_unet_create(&u, &c) == 0);
    glad_unet_init(u, 3);
    jitter_zeros(u);   /* the zero-initialised output layer too: a non-zero output to compare */
    size_t n = 16 * 16;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *y0 = malloc(n * sizeof(float)), t[2] = {5, 700};
    for (size_t i = 0; i < n; i++) x[i] = sinf((float)i * 0.11f);
    CHECK(glad_unet_forward(u, y0, x, t, 1, 0, 0) == 0);
    CHECKF(glad_unet_profile_rows(u, NULL, 0) == 0, "rows without profiling");
    glad_unet_profile(u, 1);
    for (int r = 0; r < 3; r++) CHECK(glad_unet_forward(u, y, x, t, 1, 0, 0) == 0);
    glad_unet_profile(u, 0);
    double ny = 0;
    for (size_t i = 0; i < n; i++) ny += fabs(y0[i]);
    CHECK(ny > 0 && memcmp(y, y0, n * sizeof(float)) == 0);
    CHECK(glad_unet_forward(u, y, x, t, 1, 0, 0) == 0);   /* off: not counted */
    int nr = glad_unet_profile_rows(u, NULL, 0);
    glad_unet_prof *rows = calloc((size_t)nr + 1, sizeof *rows);
    CHECK(nr > 20 && glad_unet_profile_rows(u, rows, nr) == nr);
    double fl = 0, sec = 0;
    int calls_ok = 1, kinds = 0, conv = 0, attn = 0;
    for (int i = 0; i < nr; i++) {
        fl += rows[i].flops; sec += rows[i].seconds;
        calls_ok &= rows[i].calls == 3 && rows[i].seconds >= 0 && rows[i].kind != NULL;
        conv += strstr(rows[i].kind, "conv") != NULL;   /* with an epilogue too (conv3x3+add, ...) */
        attn += !strcmp(rows[i].kind, "attention") && rows[i].H == 64 && rows[i].C == 64;
        kinds += rows[i].kind && rows[i].kind[0];
    }
    CHECKF(calls_ok && kinds == nr, "every row: 3 calls, a kind");
    CHECKF(fabs(fl - 3 * glad_unet_forward_flops(u)) <= 1e-9 * fl, "flops %g vs 3 x %g", fl, glad_unet_forward_flops(u));
    CHECKF(sec > 0 && conv > 5 && attn >= 1, "seconds %g, %d convolutions, %d 8x8 attention", sec, conv, attn);
    /* another batch is another graph: its own table, from zero */
    glad_unet_profile(u, 1);
    float *x2 = malloc(2 * n * sizeof(float)), *y2 = malloc(2 * n * sizeof(float));
    memcpy(x2, x, n * sizeof(float)); memcpy(x2 + n, x, n * sizeof(float));
    CHECK(glad_unet_forward(u, y2, x2, t, 2, 0, 0) == 0);
    CHECK(glad_unet_profile_rows(u, rows, nr) == nr && rows[0].calls == 1);
    int b2 = 0;
    for (int i = 0; i < nr; i++) b2 += !strcmp(rows[i].kind, "conv3x3") && rows[i].B == 2;
    CHECK(b2 > 0);
    /* on again: zeroed */
    glad_unet_profile(u, 1);
    CHECK(glad_unet_forward(u, y2, x2, t, 2, 0, 0) == 0);
    CHECK(glad_unet_profile_rows(u, rows, nr) == nr && rows[nr - 1].calls == 1);
    /* a training step: its backward timed too, op by op */
    CHECK(glad_unet_forward(u, y2, x2, t, 2, 1, 0) == 0);
    glad_unet_profile(u, 1);
    CHECK(glad_unet_forward(u, y2, x2, t, 2, 1, 0) == 0 && glad_unet_backward(u, y2, NULL) == 0);
    int nt = glad_unet_profile_rows(u, NULL, 0), back = 0, back_ok = 1;
    glad_unet_prof *tr = calloc((size_t)nt + 1, sizeof *tr);
    CHECK(nt > 20 && glad_unet_profile_rows(u, tr, nt) == nt);
    for (int i = 0; i < nt; i++) {
        back += tr[i].back_calls == 1;
        back_ok &= tr[i].calls == 1 && tr[i].back_calls <= 1 && tr[i].back_seconds >= 0;
    }
    CHECKF(back_ok && back > 20, "%d of %d rows with a backward", back, nt);
    free(tr);
    free(rows); free(x); free(y); free(y0); free(x2); free(y2);
    glad_unet_free(u);
}

int main(void)
{
    const char *sh = check_shared();
    if (sh) {
        parity(sh, "ddad-unet-rgb");
        parity(sh, "ddad-unet-grey");
    } else SKIP("../shared absent: UNet parity with the official fixtures not checked");
    finite_differences();
    refusals();
    profile();
    return check_done();
}
