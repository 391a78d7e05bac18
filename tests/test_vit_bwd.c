/* test_vit_bwd.c - the DINO ViT's training path (issue #21 item 1):
 * - finite differences per layer: LayerNorm, GELU, multi-head attention on
 *   token rows (one and several query tiles), the bicubic positional
 *   resampling (its transpose, exactly, as an adjoint identity), then through
 *   the network: the MLP alone (blocks.0.mlp.* trainable), the patch and
 *   position embedding, one block (all of it), the whole net (every tensor and
 *   the input) at the stored grid and at an interpolated one;
 * - parity with PyTorch (tests/ref/vit_bwd_ref.py, float64): loss, input
 *   gradient, pos_embed gradient per case and every parameter gradient within
 *   1e-4 of the reference's max-abs;
 * - the training forward equals the inference forward bit for bit; a frozen
 *   subset (GLAD's blocks.K.mlp.) gives the same gradients as the full
 *   backward there and zeros elsewhere; a batch of two equals twice one;
 * - save/load round trip of changed weights; errors reported. */
#include <omp.h>
#include <unistd.h>
#include "check.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "models/vit.h"
#include "nn/nn.h"

static char WP[512];
static const char *CASE = "tests/fixtures/vit-bwd.case.safetensors";

static int find_weights(void)
{
    const char *sh = check_shared();
    if (sh) {
        snprintf(WP, sizeof WP, "%s/fixtures/dino-vit.weights.safetensors", sh);
        if (access(WP, R_OK) == 0) return 1;
    }
    snprintf(WP, sizeof WP, "tests/fixtures/dino-vit.weights.safetensors");
    return access(WP, R_OK) == 0;
}

static float *rvec(glad_rng *r, size_t n, float scale)
{
    float *v = malloc(sizeof(float) * (n ? n : 1));
    glad_rng_normal_f32(r, v, n);
    for (size_t i = 0; i < n; i++) v[i] *= scale;
    return v;
}

static double dotd(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double rel_err(const float *a, const float *ref, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) { m = fmax(m, fabs((double)a[i] - ref[i])); r = fmax(r, fabs((double)ref[i])); }
    return r > 0 ? m / r : m;
}

/* ------------------------------------------------------------ layer FD tests */

typedef void (*fwd_fn)(float *out, void *ctx);

/* central differences of L = <r, f(p)> at every index of p (np small) or a
 * stride through it, against g; returns the worst |fd - g| / max(1, |fd|) */
static double fd_worst(float *p, const float *g, size_t np, float *out, size_t nout, const float *r, fwd_fn f, void *ctx, float h)
{
    double worst = 0;
    size_t step = np > 64 ? np / 61 : 1;
    for (size_t i = 0; i < np; i += step) {
        float keep = p[i];
        p[i] = keep + h; f(out, ctx); double lp = dotd(out, r, nout);
        p[i] = keep - h; f(out, ctx); double lm = dotd(out, r, nout);
        p[i] = keep;
        double fd = (lp - lm) / (2.0 * h);
        worst = fmax(worst, fabs(fd - g[i]) / fmax(1.0, fabs(fd)));
    }
    return worst;
}

typedef struct { float *x, *g, *b; int M, D; } ln_ctx;
static void ln_f(float *out, void *v) { ln_ctx *c = v; glad_layernorm_forward(out, c->x, c->g, c->b, c->M, c->D, 1e-6f); }

static void test_layernorm(glad_rng *rng)
{
    ln_ctx c = {rvec(rng, 5 * 24, 1.5f), rvec(rng, 24, 1), rvec(rng, 24, 1), 5, 24};
    size_t n = 5 * 24;
    float *out = malloc(sizeof(float) * n), *r = rvec(rng, n, 1), *dx = calloc(n, 4), *dg = calloc(24, 4), *db = calloc(24, 4);
    glad_layernorm_backward(dx, dg, db, r, c.x, c.g, c.M, c.D, 1e-6f);
    double e = fmax(fd_worst(c.x, dx, n, out, n, r, ln_f, &c, 1e-2f),
                    fmax(fd_worst(c.g, dg, 24, out, n, r, ln_f, &c, 1e-2f), fd_worst(c.b, db, 24, out, n, r, ln_f, &c, 1e-2f)));
    printf("  layernorm fd err %.2e\n", e);
    CHECKF(e < 2e-3, "layernorm fd err %g", e);
    free(c.x); free(c.g); free(c.b); free(out); free(r); free(dx); free(dg); free(db);
}

typedef struct { float *x; size_t n; } ge_ctx;
static void ge_f(float *out, void *v) { ge_ctx *c = v; glad_gelu_forward(out, c->x, c->n); }

static void test_gelu(glad_rng *rng)
{
    ge_ctx c = {rvec(rng, 200, 2.5f), 200};
    float *out = malloc(sizeof(float) * 200), *r = rvec(rng, 200, 1), *dx = calloc(200, 4);
    glad_gelu_backward(dx, r, c.x, 200);
    double e = fd_worst(c.x, dx, 200, out, 200, r, ge_f, &c, 1e-2f);
    printf("  gelu fd err %.2e\n", e);
    CHECKF(e < 2e-3, "gelu fd err %g", e);
    free(c.x); free(out); free(r); free(dx);
}

typedef struct { float *qkv, *ws; int T, D, heads; } mh_ctx;
static void mh_f(float *out, void *v) { mh_ctx *c = v; glad_mhsa_forward(out, c->qkv, c->T, c->D, c->heads, c->ws); }

/* output against a direct double computation, gradient by finite differences */
static void test_mhsa(glad_rng *rng, int T, int D, int heads)
{
    mh_ctx c = {rvec(rng, (size_t)T * 3 * D, 1.0f), malloc(sizeof(float) * glad_mhsa_workspace(T, heads)), T, D, heads};
    size_t no = (size_t)T * D, nq = 3 * no;
    int hd = D / heads;
    float *out = malloc(sizeof(float) * no), *r = rvec(rng, no, 1), *dq = calloc(nq, 4);
    mh_f(out, &c);
    double eo = 0, *p = malloc(sizeof(double) * T);
    for (int j = 0; j < heads; j++)
        for (int t = 0; t < T; t++) {
            double mx = -1e300, s = 0;
            for (int u = 0; u < T; u++) {
                double l = 0;
                for (int e = 0; e < hd; e++) l += (double)c.qkv[(size_t)t * 3 * D + j * hd + e] * c.qkv[(size_t)u * 3 * D + D + j * hd + e];
                p[u] = l / sqrt(hd);
                mx = fmax(mx, p[u]);
            }
            for (int u = 0; u < T; u++) { p[u] = exp(p[u] - mx); s += p[u]; }
            for (int e = 0; e < hd; e++) {
                double a = 0;
                for (int u = 0; u < T; u++) a += p[u] / s * c.qkv[(size_t)u * 3 * D + 2 * D + j * hd + e];
                eo = fmax(eo, fabs(a - out[(size_t)t * D + j * hd + e]));
            }
        }
    glad_mhsa_backward(dq, r, c.qkv, T, D, heads, c.ws);
    double e = fd_worst(c.qkv, dq, nq, out, no, r, mh_f, &c, 1e-2f);
    printf("  mhsa T%d D%d heads %d: forward err %.2e, fd err %.2e\n", T, D, heads, eo, e);
    CHECKF(eo < 1e-5, "mhsa T%d forward err %g", T, eo);
    CHECKF(e < 3e-3, "mhsa T%d fd err %g", T, e);
    free(c.qkv); free(c.ws); free(out); free(r); free(dq); free(p);
}

/* the resampling is linear: <R^T a, b> = <a, R b> in double for random a, b,
 * and R itself equals glad_vit_forward_tokens' (checked through the net) */
static void test_pos_interp(glad_rng *rng, int g, int gh, int gw)
{
    int D = 5;
    size_t ns = (size_t)g * g * D, no = (size_t)gh * gw * D;
    float *src = rvec(rng, ns, 1), *a = rvec(rng, no, 1), *Rb = malloc(sizeof(float) * no), *Ra = calloc(ns, 4);
    glad_vit_pos_interp_forward(Rb, src, g, D, gh, gw);
    CHECK(glad_vit_pos_interp_backward(Ra, a, g, D, gh, gw) == 0);
    double l = dotd(a, Rb, no), r = dotd(Ra, src, ns);
    printf("  pos interp %dx%d -> %dx%d: adjoint %.9g vs %.9g\n", g, g, gh, gw, l, r);
    CHECKF(fabs(l - r) <= 1e-5 * fmax(1, fabs(l)), "pos interp adjoint %g vs %g", l, r);
    free(src); free(a); free(Rb); free(Ra);
}

/* ------------------------------------------------------------- network tests */

typedef struct { glad_vit *v; float *x; int B, H, W, nb; const int *blocks; float **tok, **G; size_t TD; } net_ctx;

static double net_loss(net_ctx *c)
{
    if (glad_vit_forward_tokens(c->v, c->x, c->B, c->H, c->W, c->nb, c->blocks, c->tok, NULL)) return NAN;
    double s = 0;
    for (int i = 0; i < c->nb; i++) s += dotd(c->tok[i], c->G[i], (size_t)c->B * c->TD);
    return s;
}

static net_ctx net_new(glad_vit *v, glad_rng *rng, int B, int H, int W, int nb, const int *blocks)
{
    const glad_vit_config *cf = glad_vit_cfg(v);
    net_ctx c = {v, rvec(rng, (size_t)B * 3 * H * W, 1), B, H, W, nb, blocks, calloc(nb, sizeof(float *)), calloc(nb, sizeof(float *)), 0};
    c.TD = (size_t)(1 + (H / cf->patch) * (W / cf->patch)) * cf->dim;
    for (int i = 0; i < nb; i++) { c.tok[i] = malloc(sizeof(float) * B * c.TD); c.G[i] = rvec(rng, B * c.TD, 1); }
    return c;
}

static void net_free(net_ctx *c)
{
    for (int i = 0; i < c->nb; i++) { free(c->tok[i]); free(c->G[i]); }
    free(c->tok); free(c->G); free(c->x);
}

/* the gradients of L = sum_i <G_i, tokens_i> by the tape, then central
 * differences at a few entries of every parameter whose name starts with one
 * of want[] (every one when nwant is 0) and of the input; worst error over
 * them: |fd - g| / (|fd| + 0.05 max|g| of the tensor) */
static double net_fd(net_ctx *c, int ntrain, const char *const *train, int check_dx, const char *what)
{
    glad_vit_tape *t;
    if (glad_vit_tape_new(&t, c->v, ntrain, train)) { CHECKF(0, "%s: tape", what); return 1; }
    size_t nx = (size_t)c->B * 3 * c->H * c->W;
    float *dx = check_dx ? calloc(nx, 4) : NULL;
    CHECK(glad_vit_train_forward(t, c->x, c->B, c->H, c->W, c->nb, c->blocks, c->tok) == 0);
    CHECK(glad_vit_backward(t, c->G, dx) == 0);
    double worst = 0;
    int checked = 0;
    for (int pi = 0; pi < glad_vit_param_count(c->v); pi++) {
        const char *name = glad_vit_param_name(c->v, pi);
        int on = ntrain == 0;
        for (int j = 0; j < ntrain; j++) on |= !strncmp(name, train[j], strlen(train[j]));
        size_t n;
        float *p = glad_vit_param(c->v, name, &n), *g = glad_vit_grad(t, name, NULL);
        double gmax = 0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
        if (!on) {   /* frozen: no gradient computed */
            CHECKF(gmax == 0, "%s: frozen %s has a gradient", what, name);
            continue;
        }
        if (!strncmp(name, "norm.", 5)) continue;   /* after the last block: unused by block outputs */
        for (int k = 0; k < 3; k++) {
            size_t i = (size_t)(k * 7919 + 13 * pi) % n;
            float keep = p[i], h = 1e-2f;
            p[i] = keep + h; double lp = net_loss(c);
            p[i] = keep - h; double lm = net_loss(c);
            p[i] = keep;
            double fd = (lp - lm) / (2.0 * h), e = fabs(fd - g[i]) / (fabs(fd) + 0.05 * gmax + 1e-3);
            if (e > worst) worst = e;
            if (e > 2e-2) fprintf(stderr, "  %s %s[%zu]: fd %.6g vs %.6g\n", what, name, i, fd, g[i]);
            checked++;
        }
    }
    if (dx) {
        double gmax = 0;
        for (size_t i = 0; i < nx; i++) gmax = fmax(gmax, fabs(dx[i]));
        for (int k = 0; k < 6; k++) {
            size_t i = (size_t)(k * 7919 + 5) % nx;
            float keep = c->x[i], h = 1e-2f;
            c->x[i] = keep + h; double lp = net_loss(c);
            c->x[i] = keep - h; double lm = net_loss(c);
            c->x[i] = keep;
            double fd = (lp - lm) / (2.0 * h), e = fabs(fd - dx[i]) / (fabs(fd) + 0.05 * gmax + 1e-3);
            if (e > worst) worst = e;
            if (e > 2e-2) fprintf(stderr, "  %s x[%zu]: fd %.6g vs %.6g\n", what, i, fd, dx[i]);
            checked++;
        }
    }
    printf("  %-34s fd err %.2e over %d entries\n", what, worst, checked);
    CHECKF(worst < 2e-2, "%s: fd err %g", what, worst);
    CHECKF(checked > 0, "%s: nothing checked", what);
    free(dx);
    glad_vit_tape_free(t);
    return worst;
}

static void test_net_fd(glad_vit *v, glad_rng *rng)
{
    int b1[1] = {1}, b134[3] = {4, 1, 3}, b2[1] = {2};
    net_ctx c = net_new(v, rng, 1, 32, 32, 1, b1);
    const char *mlp[1] = {"blocks.0.mlp."}, *emb[3] = {"patch_embed.", "pos_embed", "cls_token"}, *blk[4] = {"blocks.0.", "patch_embed.", "pos_embed", "cls_token"};
    net_fd(&c, 1, mlp, 0, "MLP (blocks.0.mlp.*)");
    net_fd(&c, 3, emb, 1, "patch/position embedding + input");
    net_fd(&c, 4, blk, 1, "one block (block 1, all)");
    /* a frozen patch embedding under an input gradient; attention alone */
    const char *att[1] = {"blocks.0.attn."};
    net_fd(&c, 1, att, 1, "attention (blocks.0.attn.*) + input");
    net_free(&c);
    /* an interpolated grid (6x5 from 4x4) and a non-square image of a square grid count */
    c = net_new(v, rng, 1, 48, 40, 1, b2);
    net_fd(&c, 3, emb, 1, "embedding, 48x40 (interpolated pos)");
    net_free(&c);
    c = net_new(v, rng, 1, 16, 64, 1, b1);
    net_fd(&c, 3, emb, 1, "embedding, 16x64 (2x8: interpolated)");
    net_free(&c);
    c = net_new(v, rng, 2, 32, 32, 3, b134);
    net_fd(&c, 0, NULL, 1, "whole net, 2 x 32x32, blocks 4,1,3");
    net_free(&c);
    c = net_new(v, rng, 1, 48, 40, 3, b134);
    net_fd(&c, 0, NULL, 1, "whole net, 48x40, blocks 4,1,3");
    net_free(&c);
}

/* training forward = inference forward bit for bit; subset = full where
 * trained and zero elsewhere; a batch of [x, x] = 2 x the gradients of x */
static void test_consistency(glad_vit *v, glad_rng *rng)
{
    int bl[2] = {3, 4};
    net_ctx c = net_new(v, rng, 1, 48, 40, 2, bl);
    glad_vit_tape *full, *sub, *two;
    const char *glad_mlp[2] = {"blocks.2.mlp.", "blocks.3.mlp."};
    CHECK(glad_vit_tape_new(&full, v, 0, NULL) == 0);
    CHECK(glad_vit_tape_new(&sub, v, 2, glad_mlp) == 0);
    CHECK(glad_vit_tape_new(&two, v, 0, NULL) == 0);
    float *ref[2] = {malloc(sizeof(float) * c.TD), malloc(sizeof(float) * c.TD)};
    CHECK(glad_vit_forward_tokens(v, c.x, 1, 48, 40, 2, bl, ref, NULL) == 0);
    CHECK(glad_vit_train_forward(full, c.x, 1, 48, 40, 2, bl, c.tok) == 0);
    CHECK(memcmp(ref[0], c.tok[0], sizeof(float) * c.TD) == 0 && memcmp(ref[1], c.tok[1], sizeof(float) * c.TD) == 0);
    size_t nx = (size_t)3 * 48 * 40, n;
    float *dx = calloc(nx, 4), *dx2 = calloc(2 * nx, 4);
    CHECK(glad_vit_backward(full, c.G, dx) == 0);
    CHECK(glad_vit_train_forward(sub, c.x, 1, 48, 40, 2, bl, c.tok) == 0);
    CHECK(glad_vit_backward(sub, c.G, NULL) == 0);
    float *gf = glad_vit_grads(full, &n), *gs = glad_vit_grads(sub, NULL);
    long same = 0, zero = 0, ntr = 0, nfz = 0;
    for (int pi = 0; pi < glad_vit_param_count(v); pi++) {
        const char *name = glad_vit_param_name(v, pi);
        size_t m;
        float *a = glad_vit_grad(full, name, &m), *b = glad_vit_grad(sub, name, NULL);
        int on = !strncmp(name, "blocks.2.mlp.", 13) || !strncmp(name, "blocks.3.mlp.", 13);
        if (on) { ntr++; same += memcmp(a, b, sizeof(float) * m) == 0; }
        else {
            nfz++;
            int z = 1;
            for (size_t i = 0; i < m; i++) z &= b[i] == 0;
            zero += z;
        }
    }
    CHECKF(same == ntr && ntr == 8, "subset: %ld of %ld trained tensors equal to the full backward's", same, ntr);
    CHECKF(zero == nfz, "subset: %ld of %ld frozen tensors zero", zero, nfz);
    (void)gs;
    /* the same image twice in one batch */
    float *x2 = malloc(sizeof(float) * 2 * nx), *t2[2] = {malloc(sizeof(float) * 2 * c.TD), malloc(sizeof(float) * 2 * c.TD)};
    float *G2[2] = {malloc(sizeof(float) * 2 * c.TD), malloc(sizeof(float) * 2 * c.TD)};
    memcpy(x2, c.x, sizeof(float) * nx); memcpy(x2 + nx, c.x, sizeof(float) * nx);
    for (int i = 0; i < 2; i++) { memcpy(G2[i], c.G[i], sizeof(float) * c.TD); memcpy(G2[i] + c.TD, c.G[i], sizeof(float) * c.TD); }
    CHECK(glad_vit_train_forward(two, x2, 2, 48, 40, 2, bl, t2) == 0);
    CHECK(glad_vit_backward(two, G2, dx2) == 0);
    float *g2 = glad_vit_grads(two, NULL);
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) { e = fmax(e, fabs(g2[i] - 2.0 * gf[i])); m = fmax(m, fabs(gf[i])); }
    CHECKF(e <= 1e-6 * m, "batch of two: %g vs max %g", e, m);
    CHECK(memcmp(dx, dx2, sizeof(float) * nx) == 0 && memcmp(dx, dx2 + nx, sizeof(float) * nx) == 0);
    /* a second backward of the same forward sums; zero_grad clears */
    glad_vit_zero_grad(two);
    int z = 1;
    for (size_t i = 0; i < n; i++) z &= g2[i] == 0;
    CHECK(z);
    printf("  train forward = inference; subset (blocks.2/3.mlp) = full there, 0 elsewhere; batch 2 err %.1e\n", m ? e / m : e);
    glad_vit_tape_free(full); glad_vit_tape_free(sub); glad_vit_tape_free(two);
    free(ref[0]); free(ref[1]); free(dx); free(dx2); free(x2);
    for (int i = 0; i < 2; i++) { free(t2[i]); free(G2[i]); }
    net_free(&c);
}

/* a larger grid (211 tokens: the backward's scratch is then dominated by the
 * token rows, not by the frozen-parameter sinks) with frozen LayerNorms and
 * patch embedding on the way: same gradients as the full tape there */
static void test_large_subset(glad_vit *v, glad_rng *rng)
{
    int bl[1] = {2};
    net_ctx c = net_new(v, rng, 1, 112, 120, 1, bl);
    glad_vit_tape *full, *sub;
    const char *mlp[1] = {"blocks.0.mlp."};
    CHECK(glad_vit_tape_new(&full, v, 0, NULL) == 0);
    CHECK(glad_vit_tape_new(&sub, v, 1, mlp) == 0);
    size_t nx = (size_t)3 * 112 * 120, n;
    float *dx = calloc(nx, 4), *dx2 = calloc(nx, 4);
    CHECK(glad_vit_train_forward(full, c.x, 1, 112, 120, 1, bl, c.tok) == 0);
    CHECK(glad_vit_backward(full, c.G, dx) == 0);
    CHECK(glad_vit_train_forward(sub, c.x, 1, 112, 120, 1, bl, c.tok) == 0);
    CHECK(glad_vit_backward(sub, c.G, dx2) == 0);
    const char *names[4] = {"blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.bias", "blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.bias"};
    int same = 0;
    for (int i = 0; i < 4; i++) {
        float *a = glad_vit_grad(full, names[i], &n), *b = glad_vit_grad(sub, names[i], NULL);
        same += memcmp(a, b, sizeof(float) * n) == 0;
    }
    CHECKF(same == 4, "112x120 subset: %d of 4 tensors equal", same);
    CHECK(memcmp(dx, dx2, sizeof(float) * nx) == 0);
    glad_vit_tape_free(full); glad_vit_tape_free(sub);
    free(dx); free(dx2);
    net_free(&c);
}

/* ----------------------------------------------------------- PyTorch parity */

static double worst_ref;

static void cmp(const char *what, const float *a, const glad_st *st, const char *key, size_t n)
{
    glad_tensor r;
    if (glad_st_get_f32(st, key, &r)) { CHECKF(0, "%s missing", key); return; }
    size_t m = 1;
    for (int d = 0; d < r.ndim; d++) m *= (size_t)r.shape[d];
    CHECKF(m == n, "%s: %zu values, expected %zu", key, m, n);
    if (m == n) {
        double e = rel_err(a, r.data, n);
        worst_ref = fmax(worst_ref, e);
        CHECKF(e < 1e-4, "%s: rel err %g", what, e);
        if (e >= 1e-5) printf("  %-36s rel err %.2e\n", what, e);
    }
    glad_tensor_free(&r);
}

static void test_pytorch(glad_vit *v)
{
    glad_st *st;
    if (glad_st_open(&st, CASE)) { SKIP("%s missing (python3 tests/ref/vit_bwd_ref.py writes it)", CASE); return; }
    const char *cases[2] = {"s32", "s48"};
    int bl[3] = {1, 3, 4};
    glad_vit_tape *all;
    CHECK(glad_vit_tape_new(&all, v, 0, NULL) == 0);
    const glad_vit_config *cf = glad_vit_cfg(v);
    for (int ci = 0; ci < 2; ci++) {
        char k[64];
        glad_tensor x, G[3];
        snprintf(k, sizeof k, "%s.x", cases[ci]);
        if (glad_st_get_f32(st, k, &x)) { CHECKF(0, "%s missing", k); continue; }
        int B = (int)x.shape[0], H = (int)x.shape[2], W = (int)x.shape[3];
        size_t TD = (size_t)(1 + (H / cf->patch) * (W / cf->patch)) * cf->dim, nx = (size_t)B * 3 * H * W;
        float *tok[3], *g[3];
        for (int i = 0; i < 3; i++) {
            snprintf(k, sizeof k, "%s.g%d", cases[ci], bl[i]);
            CHECK(glad_st_get_f32(st, k, &G[i]) == 0);
            g[i] = G[i].data;
            tok[i] = malloc(sizeof(float) * B * TD);
        }
        glad_vit_tape *one;
        CHECK(glad_vit_tape_new(&one, v, 1, (const char *[]){"pos_embed"}) == 0);
        float *dx = calloc(nx, 4);
        CHECK(glad_vit_train_forward(all, x.data, B, H, W, 3, bl, tok) == 0);
        double loss = 0;
        for (int i = 0; i < 3; i++) loss += dotd(tok[i], g[i], (size_t)B * TD);
        CHECK(glad_vit_backward(all, g, dx) == 0);
        CHECK(glad_vit_train_forward(one, x.data, B, H, W, 3, bl, tok) == 0);
        CHECK(glad_vit_backward(one, g, NULL) == 0);
        glad_tensor lr;
        snprintf(k, sizeof k, "%s.loss", cases[ci]);
        if (glad_st_get_f32(st, k, &lr) == 0) {
            double rl = ((float *)lr.data)[0];
            CHECKF(fabs(loss - rl) <= 1e-4 * fabs(rl), "%s loss %.9g vs %.9g", cases[ci], loss, rl);
            printf("  %s loss %.7g (PyTorch %.7g)\n", cases[ci], loss, rl);
            glad_tensor_free(&lr);
        } else CHECKF(0, "%s missing", k);
        snprintf(k, sizeof k, "%s.dx", cases[ci]);
        cmp(k, dx, st, k, nx);
        size_t np;
        float *dp = glad_vit_grad(one, "pos_embed", &np);
        snprintf(k, sizeof k, "%s.dpos", cases[ci]);
        cmp(k, dp, st, k, np);
        glad_vit_tape_free(one);
        free(dx);
        for (int i = 0; i < 3; i++) { free(tok[i]); glad_tensor_free(&G[i]); }
        glad_tensor_free(&x);
    }
    /* every parameter's gradient of L_s32 + L_s48 (the tape accumulated both) */
    int nchk = 0;
    for (int pi = 0; pi < glad_vit_param_count(v); pi++) {
        const char *name = glad_vit_param_name(v, pi);
        if (!strncmp(name, "norm.", 5)) continue;
        char k[96];
        size_t n;
        float *g = glad_vit_grad(all, name, &n);
        snprintf(k, sizeof k, "grad.%s", name);
        cmp(k, g, st, k, n);
        nchk++;
    }
    printf("  PyTorch parity: loss, dx, dpos of 2 cases and %d parameter gradients; worst rel err %.2e\n", nchk, worst_ref);
    CHECK(nchk == glad_vit_param_count(v) - 2);
    glad_vit_tape_free(all);
    glad_st_close(st);
}

/* ------------------------------------------------------------ save, errors */

static void test_save(glad_vit *v, glad_rng *rng)
{
    char path[] = "/tmp/glad-vit-bwd-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { SKIP("no temporary file"); return; }
    close(fd);
    size_t n;
    float *w = glad_vit_params(v, &n), *keep = malloc(sizeof(float) * n);
    memcpy(keep, w, sizeof(float) * n);
    size_t nf;
    float *fc = glad_vit_param(v, "blocks.2.mlp.fc1.weight", &nf);
    CHECK(fc && nf == 256 * 64);
    for (size_t i = 0; i < nf; i++) fc[i] += 0.01f * (float)glad_rng_normal(rng);   /* a "fine-tuned" MLP */
    CHECK(glad_vit_save(v, path) == 0);
    glad_vit *u = NULL;
    CHECK(glad_vit_load(&u, path) == 0);
    if (u) {
        size_t m;
        float *wu = glad_vit_params(u, &m);
        CHECK(m == n && memcmp(wu, w, sizeof(float) * n) == 0);
        const glad_vit_config *a = glad_vit_cfg(u), *b = glad_vit_cfg(v);
        CHECK(a->patch == b->patch && a->dim == b->dim && a->depth == b->depth && a->heads == b->heads &&
              a->mlp_hidden == b->mlp_hidden && a->pos_grid == b->pos_grid && a->eps == b->eps);
        glad_vit_free(u);
    }
    memcpy(w, keep, sizeof(float) * n);
    free(keep);
    CHECK(glad_vit_save(v, "/nonexistent-dir/x.safetensors") != 0 && glad_error_detail()[0]);
    unlink(path);
}

static void test_errors(glad_vit *v)
{
    glad_vit_tape *t;
    const char *bad[1] = {"blocks.9."};
    CHECK(glad_vit_tape_new(&t, v, 1, bad) == GLAD_ENOTFOUND && strstr(glad_error_detail(), "blocks.9."));
    CHECK(glad_vit_tape_new(&t, v, 0, NULL) == 0);
    float x[3 * 32 * 32] = {0}, *tok[1] = {malloc(sizeof(float) * 17 * 64)};
    int b1[1] = {1}, b9[1] = {9};
    CHECK(glad_vit_backward(t, tok, NULL) == GLAD_EINVAL);                          /* no forward yet */
    CHECK(glad_vit_train_forward(t, x, 1, 30, 32, 1, b1, tok) == GLAD_ESHAPE);      /* not a patch multiple */
    CHECK(glad_vit_train_forward(t, x, 1, 32, 32, 1, b9, tok) == GLAD_EINVAL);      /* no block 9 */
    CHECK(glad_vit_train_forward(t, x, 1, 32, 32, 0, b1, tok) == GLAD_EINVAL);      /* no block at all */
    CHECK(glad_vit_train_forward(t, x, 1, 32, 32, 1, b1, tok) == 0);
    CHECK(glad_vit_train_forward(t, x, 1, 32, 30, 1, b1, tok) == GLAD_ESHAPE);
    CHECK(glad_vit_backward(t, tok, NULL) == GLAD_EINVAL);                          /* a failed forward leaves no tape */
    CHECK(glad_vit_param(v, "nope", NULL) == NULL && glad_vit_grad(t, "nope", NULL) == NULL && glad_vit_param_name(v, 999) == NULL);
    CHECK(glad_vit_param_count(v) == 6 + 12 * glad_vit_cfg(v)->depth);
    free(tok[0]);
    glad_vit_tape_free(t);
}

int main(void)
{
    glad_rng rng;
    glad_rng_seed(&rng, 21, 1, 0);
    test_layernorm(&rng);
    test_gelu(&rng);
    test_mhsa(&rng, 13, 16, 4);
    test_mhsa(&rng, 150, 24, 3);   /* three query tiles, the last partial */
    test_pos_interp(&rng, 4, 6, 5);
    test_pos_interp(&rng, 4, 2, 8);
    test_pos_interp(&rng, 5, 9, 3);
    if (!find_weights()) {
        SKIP("dino-vit.weights.safetensors not found");
        return check_done();
    }
    glad_vit *v;
    if (glad_vit_load(&v, WP)) { CHECKF(0, "load %s: %s", WP, glad_error_detail()); return check_done(); }
    test_net_fd(v, &rng);
    test_consistency(v, &rng);
    test_large_subset(v, &rng);
    test_pytorch(v);
    test_save(v, &rng);
    test_errors(v);
    glad_vit_free(v);
    return check_done();
}
