/* test_nn.c - each engine kernel against a naive reference (forward) and
 * central finite differences (backward): conv2d (kernels 1/3/7, stride 1/2,
 * padding 0/1/3; 3x3 stride 1 on shapes that exercise the direct kernel's
 * tiles against naive sums (forward, dx, dw), bit-identical across batch sizes),
 * linear, GroupNorm, GroupNorm+SiLU (against GroupNorm then
 * SiLU), a conv's output epilogue (against the adds after it), SiLU, GELU,
 * pooling, upsampling, concat, attention, dropout; the
 * vectorised exp of SiLU/softmax against libm, the coarse SiLU of bf16's
 * inputs against the exact one; the memory planner (no live
 * ranges overlap); Adam/AdamW against the update formulas; thread-count
 * independence. */
#include <omp.h>
#include <stdlib.h>
#include "check.h"
#include "core/rng.h"
#include "nn/cpu.h"
#include "nn/bf16.h"
#include "nn/nn.h"
#include "nn/fastmath.h"

/* every allocation of this test is freed at exit (LeakSanitizer runs in CI);
 * the list grows: a fixed 512 once overflowed silently, and LeakSanitizer's
 * exit then lost the test's buffered summary line too */
static void **allocs_;
static int nallocs_, capallocs_;
static void *track(void *p)
{
    if (!p) return p;
    if (nallocs_ == capallocs_) {
        int cap = capallocs_ ? 2 * capallocs_ : 512;
        void **na = realloc(allocs_, (size_t)cap * sizeof *na);
        if (!na) { fprintf(stderr, "test_nn: out of memory\n"); exit(1); }
        allocs_ = na;
        capallocs_ = cap;
    }
    allocs_[nallocs_++] = p;
    return p;
}
static void free_all(void)
{
    for (int i = 0; i < nallocs_; i++) free(allocs_[i]);
    free(allocs_);
    allocs_ = NULL;
    nallocs_ = capallocs_ = 0;
}
#define TMALLOC(n) track(malloc(n))
#define TCALLOC(n, s) track(calloc(n, s))

static uint64_t S_ = 1;
static float rnd(void) { S_ = S_ * 6364136223846793005ull + 1442695040888963407ull; return (float)((S_ >> 40) / 16777216.0 * 2 - 1); }
static float *rvec(size_t n) { float *v = TMALLOC(n * sizeof(float)); for (size_t i = 0; i < n; i++) v[i] = rnd(); return v; }
static double dot(const float *a, const float *b, size_t n) { double s = 0; for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i]; return s; }

/* loss(p) = sum out(p) * r ; checks analytic grad g at a few coordinates of p */
typedef void (*fwd_fn)(float *out, void *ctx);
static int fd_check(float *p, const float *g, size_t np, float *out, size_t nout, const float *r, fwd_fn f, void *ctx, double tol)
{
    int bad = 0;
    for (int k = 0; k < 6; k++) {
        size_t i = (size_t)(k * 7919 + 13) % np;
        float keep = p[i], h = 1e-2f;
        p[i] = keep + h; f(out, ctx); double lp = dot(out, r, nout);
        p[i] = keep - h; f(out, ctx); double lm = dot(out, r, nout);
        p[i] = keep;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - g[i]) > tol * fmax(1.0, fabs(fd))) { bad++; fprintf(stderr, "  fd[%zu] %g vs %g\n", i, fd, g[i]); }
    }
    return bad;
}

typedef struct { float *x, *w, *b, *ws; int B, C, H, W, OC, k, s, p; } conv_ctx;
static void conv_f(float *out, void *v) { conv_ctx *c = v; glad_conv2d_forward(out, c->x, c->w, c->b, c->B, c->C, c->H, c->W, c->OC, c->k, c->k, c->s, c->p, c->ws); }

/* forward and both gradients against the naive sums (and finite
 * differences); C, OC, H, W pick the kernels (1x1 of 8-multiples: conv1x1.c) */
static void test_conv(int k, int s, int p, int C, int OC, int H, int W)
{
    conv_ctx c = {0};
    c.B = 2; c.C = C; c.H = H; c.W = W; c.OC = OC; c.k = k; c.s = s; c.p = p;
    int Ho = (c.H + 2 * p - k) / s + 1, Wo = (c.W + 2 * p - k) / s + 1;
    size_t nx = (size_t)c.B * c.C * c.H * c.W, nw = (size_t)c.OC * c.C * k * k, no = (size_t)c.B * c.OC * Ho * Wo;
    c.x = rvec(nx); c.w = rvec(nw); c.b = rvec(c.OC);
    c.ws = TMALLOC(glad_conv2d_workspace(c.C, c.H, c.W, c.OC, k, k, s, p) * sizeof(float));
    float *out = TMALLOC(no * sizeof(float)), *r = rvec(no);
    conv_f(out, &c);
    /* naive reference: the forward sums and their adjoints */
    double err = 0, *ndx = calloc(nx, sizeof(double)), *ndw = calloc(nw, sizeof(double));
    for (int b = 0; b < c.B; b++)
        for (int o = 0; o < c.OC; o++)
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++) {
                    double a = c.b[o], g = r[((b * c.OC + o) * Ho + i) * Wo + j];
                    for (int ci = 0; ci < c.C; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int y = i * s - p + ky, x = j * s - p + kx;
                                if (y >= 0 && y < c.H && x >= 0 && x < c.W) {
                                    size_t wi = ((size_t)(o * c.C + ci) * k + ky) * k + kx, xi = ((size_t)(b * c.C + ci) * c.H + y) * c.W + x;
                                    a += (double)c.w[wi] * c.x[xi];
                                    ndx[xi] += g * c.w[wi];
                                    ndw[wi] += g * c.x[xi];
                                }
                            }
                    err = fmax(err, fabs(a - out[((b * c.OC + o) * Ho + i) * Wo + j]));
                }
    CHECKF(err < 1e-4, "conv k%d s%d p%d forward err %g", k, s, p, err);
    float *dx = TCALLOC(nx, sizeof(float)), *dw = TCALLOC(nw, sizeof(float)), *db = TCALLOC(c.OC, sizeof(float));
    glad_conv2d_backward(dx, dw, db, r, c.x, c.w, c.B, c.C, c.H, c.W, c.OC, k, k, s, p, c.ws, GLAD_DX_ADD);
    double ex = 0, ew = 0;
    for (size_t i = 0; i < nx; i++) ex = fmax(ex, fabs(ndx[i] - dx[i]));
    for (size_t i = 0; i < nw; i++) ew = fmax(ew, fabs(ndw[i] - dw[i]));
    free(ndx);
    free(ndw);
    CHECKF(ex < 1e-4 && ew < 1e-3, "conv k%d s%d p%d C%d OC%d %dx%d: dx err %g, dw err %g", k, s, p, C, OC, H, W, ex, ew);
    CHECKF(fd_check(c.x, dx, nx, out, no, r, conv_f, &c, 1e-2) == 0, "conv k%d s%d p%d dx", k, s, p);
    CHECKF(fd_check(c.w, dw, nw, out, no, r, conv_f, &c, 1e-2) == 0, "conv k%d s%d p%d dw", k, s, p);
    CHECKF(fd_check(c.b, db, c.OC, out, no, r, conv_f, &c, 1e-2) == 0, "conv k%d s%d p%d db", k, s, p);
    /* GLAD_DX_SET overwrites what dx held with the same gradient GLAD_DX_ADD
     * adds to zeros, bit for bit */
    float *dx2 = rvec(nx), *dw2 = TCALLOC(nw, sizeof(float));
    glad_conv2d_backward(dx2, dw2, NULL, r, c.x, c.w, c.B, c.C, c.H, c.W, c.OC, k, k, s, p, c.ws, GLAD_DX_SET);
    CHECKF(memcmp(dx, dx2, nx * sizeof(float)) == 0, "conv k%d s%d p%d C%d OC%d %dx%d: GLAD_DX_SET != GLAD_DX_ADD onto zeros", k, s,
           p, C, OC, H, W);
}

typedef struct { float *x, *g, *b, *mean, *rstd; int B, C, N; } gn_ctx;
static void gn_f(float *out, void *v) { gn_ctx *c = v; glad_groupnorm_forward(out, c->mean, c->rstd, c->x, c->g, c->b, c->B, c->C, c->N, 4, 1e-5f); }

/* 3x3 stride-1 padding-1 convolutions (the direct kernel where the CPU has
 * AVX-512F) on shapes that exercise its tiling: output channels not a multiple
 * of 8 or at most 4, widths below, at and above the 32-position tile, one
 * input channel;
 * forward and input gradient against naive sums; batch 2 == two batches of 1
 * bit for bit */
static void test_conv3x3_shapes(void)
{
    int shapes[][4] = {{1, 5, 7, 3}, {3, 13, 4, 4}, {16, 8, 30, 9}, {9, 17, 33, 6}, {32, 3, 64, 5}, {16, 24, 34, 32}, {24, 16, 40, 26}, {32, 16, 64, 18}, {16, 16, 16, 16},
                       {3, 16, 20, 6}, {4, 2, 14, 3}, {24, 16, 44, 24}, {16, 8, 32, 32}, {32, 16, 36, 32}, {64, 32, 40, 28}};
    /* {32, 3, 64, 5} (forward), {3, 16, 20, 6} (input gradient) and
     * {4, 2, 14, 3} (both, at the narrowest width it takes: its reads end
     * one float before the padded planes' slack does) take the 4 x 64
     * tile of at most 4 outputs; the last four take F(4x4,3x3) (partial
     * rows, partial blocks), the last two for the weight gradient too */
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int C = shapes[si][0], OC = shapes[si][1], W = shapes[si][2], H = shapes[si][3], B = 2;
        size_t nx = (size_t)B * C * H * W, no = (size_t)B * OC * H * W;
        float *x = rvec(nx), *w = rvec((size_t)OC * C * 9), *b = rvec(OC), *d = rvec(no);
        float *ws = TMALLOC(glad_conv2d_workspace(C, H, W, OC, 3, 3, 1, 1) * sizeof(float)), *o = TMALLOC(no * sizeof(float));
        float *o1 = TMALLOC(no * sizeof(float)), *dx = TCALLOC(nx, sizeof(float)), *dw = TCALLOC((size_t)OC * C * 9, sizeof(float));
        float *db = TCALLOC(OC, sizeof(float));
        glad_conv2d_forward(o, x, w, b, B, C, H, W, OC, 3, 3, 1, 1, ws);
        glad_conv2d_forward(o1, x, w, b, 1, C, H, W, OC, 3, 3, 1, 1, ws);
        glad_conv2d_forward(o1 + no / 2, x + nx / 2, w, b, 1, C, H, W, OC, 3, 3, 1, 1, ws);
        CHECKF(memcmp(o, o1, no * sizeof(float)) == 0, "conv3x3 C%d OC%d %dx%d: batch 2 != 2 x batch 1", C, OC, H, W);
        glad_conv2d_backward(dx, dw, db, d, x, w, B, C, H, W, OC, 3, 3, 1, 1, ws, GLAD_DX_ADD);
        float *dxs = rvec(nx), *dws = TCALLOC((size_t)OC * C * 9, sizeof(float));
        glad_conv2d_backward(dxs, dws, NULL, d, x, w, B, C, H, W, OC, 3, 3, 1, 1, ws, GLAD_DX_SET);
        CHECKF(memcmp(dx, dxs, nx * sizeof(float)) == 0, "conv3x3 C%d OC%d %dx%d: GLAD_DX_SET != GLAD_DX_ADD onto zeros", C, OC, H, W);
        double ef = 0, eb = 0, mf = 0, mb = 0;
        for (int n = 0; n < B; n++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    for (int oc = 0; oc < OC; oc++) {
                        double a = b[oc];
                        for (int c = 0; c < C; c++)
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++) {
                                    int y = i + ky - 1, xx = j + kx - 1;
                                    if (y >= 0 && y < H && xx >= 0 && xx < W)
                                        a += (double)w[((oc * C + c) * 3 + ky) * 3 + kx] * x[(((size_t)n * C + c) * H + y) * W + xx];
                                }
                        ef = fmax(ef, fabs(a - o[(((size_t)n * OC + oc) * H + i) * W + j]));
                        mf = fmax(mf, fabs(a));
                    }
                    for (int c = 0; c < C; c++) {
                        double a = 0;
                        for (int oc = 0; oc < OC; oc++)
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++) {
                                    int y = i + 1 - ky, xx = j + 1 - kx;
                                    if (y >= 0 && y < H && xx >= 0 && xx < W)
                                        a += (double)w[((oc * C + c) * 3 + ky) * 3 + kx] * d[(((size_t)n * OC + oc) * H + y) * W + xx];
                                }
                        eb = fmax(eb, fabs(a - dx[(((size_t)n * C + c) * H + i) * W + j]));
                        mb = fmax(mb, fabs(a));
                    }
                }
        double ew = 0, mw = 0;
        for (int oc = 0; oc < OC; oc++)
            for (int c = 0; c < C; c++)
                for (int t = 0; t < 9; t++) {
                    double a = 0;
                    for (int n = 0; n < B; n++)
                        for (int i = 0; i < H; i++)
                            for (int j = 0; j < W; j++) {
                                int y = i + t / 3 - 1, xx = j + t % 3 - 1;
                                if (y >= 0 && y < H && xx >= 0 && xx < W)
                                    a += (double)d[(((size_t)n * OC + oc) * H + i) * W + j] * x[(((size_t)n * C + c) * H + y) * W + xx];
                            }
                    ew = fmax(ew, fabs(a - dw[((size_t)oc * C + c) * 9 + t]));
                    mw = fmax(mw, fabs(a));
                }
        CHECKF(ef < 1e-5 * fmax(1, mf) && eb < 1e-5 * fmax(1, mb) && ew < 1e-5 * fmax(1, mw),
               "conv3x3 C%d OC%d %dx%d: forward err %g, dx err %g, dw err %g", C, OC, H, W, ef, eb, ew);
    }
}

static void gns_f(float *out, void *v) { gn_ctx *c = v; glad_groupnorm_silu_forward(out, c->mean, c->rstd, c->x, c->g, c->b, c->B, c->C, c->N, 4, 1e-5f); }

/* fused GroupNorm+SiLU: equals GroupNorm then SiLU (libm expf) and its
 * backward matches finite differences, on data whose silu' varies */
static void test_gn_silu(void)
{
    gn_ctx g = {rvec(2 * 8 * 10), rvec(8), rvec(8), TMALLOC(8 * sizeof(float)), TMALLOC(8 * sizeof(float)), 2, 8, 10};
    for (int i = 0; i < 8; i++) { g.g[i] *= 3; g.b[i] *= 2; }
    float go[160], ref[160], *gr = rvec(160), gdx[160] = {0}, gdg[8] = {0}, gdb[8] = {0};
    double ws[2 * 2 * 8];
    gn_f(ref, &g);
    for (int i = 0; i < 160; i++) ref[i] = ref[i] / (1.0f + expf(-ref[i]));
    gns_f(go, &g);
    double e = 0;
    for (int i = 0; i < 160; i++) e = fmax(e, fabs(go[i] - ref[i]));
    CHECKF(e < 2e-6, "gn+silu vs gn then silu: %g", e);
    glad_groupnorm_silu_backward(gdx, gdg, gdb, gr, g.x, g.mean, g.rstd, g.g, g.b, 2, 8, 10, 4, ws, GLAD_DX_ADD);
    CHECK(fd_check(g.x, gdx, 160, go, 160, gr, gns_f, &g, 2e-2) == 0);
    CHECK(fd_check(g.g, gdg, 8, go, 160, gr, gns_f, &g, 1e-2) == 0 && fd_check(g.b, gdb, 8, go, 160, gr, gns_f, &g, 1e-2) == 0);
    /* dx NULL still gives the parameter gradients */
    float gdg2[8] = {0}, gdb2[8] = {0};
    glad_groupnorm_silu_backward(NULL, gdg2, gdb2, gr, g.x, g.mean, g.rstd, g.g, g.b, 2, 8, 10, 4, ws, GLAD_DX_ADD);
    CHECK(memcmp(gdg, gdg2, sizeof gdg) == 0 && memcmp(gdb, gdb2, sizeof gdb) == 0);
    /* GLAD_DX_SET writes over what dx held the gradient ADD adds to zeros */
    float *gdx3 = rvec(160);
    glad_groupnorm_silu_backward(gdx3, gdg2, gdb2, gr, g.x, g.mean, g.rstd, g.g, g.b, 2, 8, 10, 4, ws, GLAD_DX_SET);
    CHECK(memcmp(gdx, gdx3, sizeof gdx) == 0);
    /* a 3x3 conv of it without materialising it (direct and Winograd sizes;
     * channels a multiple of 16 or not) is bit for bit the conv of
     * glad_groupnorm_silu_forward's output, forward and backward; the
     * statistics-only call gives the same statistics */
    if (!glad_conv2d_gnsilu_ok(3, 3, 1, 1)) return;
    int cfg[][3] = {{12, 32, 32}, {36, 32, 32}, {20, 24, 4}};   /* size, channels, groups */
    for (int ci = 0; ci < 3; ci++) {
        int S = cfg[ci][0], B = 2, C = cfg[ci][1], G = cfg[ci][2], OC = 16, N = S * S;
        float *x = rvec((size_t)B * C * N), *ga = rvec(C), *be = rvec(C), *w = rvec((size_t)OC * C * 9), *bb = rvec(OC);
        float *y = TMALLOC((size_t)B * C * N * sizeof(float)), *o1 = TMALLOC((size_t)B * OC * N * sizeof(float));
        float *o2 = TMALLOC((size_t)B * OC * N * sizeof(float)), mu[64], rs[64], mu2[64], rs2[64];
        float *cws = TMALLOC(glad_conv2d_workspace(C, S, S, OC, 3, 3, 1, 1) * sizeof(float)), *dy = rvec((size_t)B * OC * N);
        float *dx1 = TCALLOC((size_t)B * C * N, sizeof(float)), *dx2 = TCALLOC((size_t)B * C * N, sizeof(float));
        float *dw1 = TCALLOC((size_t)OC * C * 9, sizeof(float)), *dw2 = TCALLOC((size_t)OC * C * 9, sizeof(float)), db1[16] = {0}, db2[16] = {0};
        for (int i = 0; i < B * C * N; i++) x[i] = 3 * x[i] + 1;
        glad_groupnorm_silu_forward(y, mu, rs, x, ga, be, B, C, N, G, 1e-5f);
        glad_conv2d_forward(o1, y, w, bb, B, C, S, S, OC, 3, 3, 1, 1, cws);
        glad_conv2d_backward(dx1, dw1, db1, dy, y, w, B, C, S, S, OC, 3, 3, 1, 1, cws, GLAD_DX_ADD);
        glad_groupnorm_silu_forward(NULL, mu2, rs2, x, ga, be, B, C, N, G, 1e-5f);
        glad_gnsilu pre = {mu2, rs2, ga, be, G};
        glad_conv2d_forward_gnsilu(o2, x, &pre, w, bb, B, C, S, S, OC, cws);
        glad_conv2d_backward_gnsilu(dx2, dw2, db2, dy, x, &pre, w, B, C, S, S, OC, cws, GLAD_DX_ADD);
        CHECKF(memcmp(dx1, dx2, (size_t)B * C * N * sizeof(float)) == 0 && memcmp(dw1, dw2, (size_t)OC * C * 9 * sizeof(float)) == 0 &&
               memcmp(db1, db2, sizeof db1) == 0, "fused gn+silu conv %dx%d C%d: backward differs", S, S, C);
        CHECKF(memcmp(mu, mu2, sizeof mu) == 0 && memcmp(rs, rs2, sizeof rs) == 0 &&
               memcmp(o1, o2, (size_t)B * OC * N * sizeof(float)) == 0, "fused gn+silu conv %dx%d C%d differs", S, S, C);
    }
}

/* a conv's output epilogue (glad_conv2d_forward_epi) is bit for bit the
 * conv followed by its adds, out = (conv + emb[n][o]) then res + out, on
 * every output path: the direct 3x3 tiles (8 and 4 channels wide), both
 * Winograd kernels, whole planes and bands, with GroupNorm+SiLU on the
 * input, the 1x1 tile (residual in the tile, embedding after it), im2col +
 * sgemm (strided, 1x1 on pixels not in 32s); f32 and, where the CPU has it,
 * bf16 */
static void test_conv_epi(void)
{
    /* k, stride, pad, C, OC, size, pre */
    int cfg[][7] = {{3, 1, 1, 8, 16, 8, 0},   {3, 1, 1, 8, 4, 16, 0},   {3, 1, 1, 8, 12, 12, 0},  {3, 1, 1, 16, 16, 16, 0},
                    {3, 1, 1, 32, 16, 32, 1}, {3, 1, 1, 64, 16, 128, 1}, {1, 1, 0, 16, 24, 8, 0},  {1, 1, 0, 16, 8, 5, 0},
                    {3, 2, 1, 8, 8, 10, 0}};
    for (int prec = 0; prec < 2; prec++) {
        if (prec && glad_precision_set(GLAD_PREC_BF16)) break;
        for (size_t ci = 0; ci < sizeof cfg / sizeof *cfg; ci++) {
            int k = cfg[ci][0], st = cfg[ci][1], pd = cfg[ci][2], C = cfg[ci][3], OC = cfg[ci][4], S = cfg[ci][5], B = 2;
            int pre = cfg[ci][6] && glad_conv2d_gnsilu_ok(k, k, st, pd), So = (S + 2 * pd - k) / st + 1, N = So * So;
            size_t no = (size_t)B * OC * N;
            float *x = rvec((size_t)B * C * S * S), *w = rvec((size_t)OC * C * k * k), *bb = rvec(OC), *emb = rvec((size_t)B * OC);
            float *res = rvec(no), *ref = TMALLOC(no * sizeof(float)), *o = TMALLOC(no * sizeof(float)), mu[64], rs[64];
            float *ga = rvec(C), *be = rvec(C), *ws = TMALLOC(glad_conv2d_workspace(C, S, S, OC, k, k, st, pd) * sizeof(float) + 64);
            glad_gnsilu g = {mu, rs, ga, be, 4};
            if (pre) glad_groupnorm_silu_forward(NULL, mu, rs, x, ga, be, B, C, S * S, 4, 1e-5f);
            int ok = 1;
            for (int mode = 1; mode < 4; mode++) {   /* emb, res, both */
                glad_conv_epi ep = {mode & 1 ? emb : NULL, mode & 2 ? res : NULL};
                glad_conv2d_forward_epi(ref, x, pre ? &g : NULL, NULL, w, bb, B, C, S, S, OC, k, k, st, pd, ws);
                for (size_t i = 0; i < no; i++) {
                    if (ep.emb) ref[i] = ref[i] + emb[i / N];
                    if (ep.res) ref[i] = res[i] + ref[i];
                }
                glad_conv2d_forward_epi(o, x, pre ? &g : NULL, &ep, w, bb, B, C, S, S, OC, k, k, st, pd, ws);
                ok &= memcmp(o, ref, no * sizeof(float)) == 0;
            }
            CHECKF(ok, "%s conv %dx%d/%d %dx%d C%d OC%d%s: epilogue differs from the adds", prec ? "bf16" : "f32", k, k, st, S, S, C, OC,
                   pre ? " (gn+silu)" : "");
        }
    }
    glad_precision_set(GLAD_PREC_F32);
}

/* the vectorised exp inside SiLU and softmax against libm, over the range
 * where they matter, including saturation */
static void test_fast_exp(void)
{
    enum { n = 4001 };
    float *x = TMALLOC(n * sizeof(float)), *y = TMALLOC(n * sizeof(float)), *sm = TMALLOC(n * sizeof(float));
    for (int i = 0; i < n; i++) x[i] = -100.0f + 200.0f * i / (n - 1);
    glad_silu_forward(y, x, n);
    double e = 0;
    for (int i = 0; i < n; i++) {
        double r = x[i] / (1.0 + exp(-(double)x[i]));
        e = fmax(e, fabs(y[i] - r) / fmax(1e-30, fabs(r)));
    }
    CHECKF(e < 1e-6, "silu relative error %g", e);
    for (int i = 0; i < n; i++) sm[i] = x[i] * 0.2f;
    glad_softmax_rows(sm, 1, n);
    double z = 0, mx = 0.2 * x[n - 1], em = 0;
    for (int i = 0; i < n; i++) z += exp(0.2 * x[i] - mx);
    for (int i = 0; i < n; i++) { double r = exp(0.2 * x[i] - mx) / z; em = fmax(em, fabs(sm[i] - r) / fmax(r, 1e-30)); }
    CHECKF(em < 1e-5, "softmax relative error %g", em);
}

/* the coarse GroupNorm+SiLU row of the bf16 Winograd input: within 1e-4
 * relative of silu (its stated 6e-5 with room; bf16 rounds to 2^-9), over
 * saturation too, NaN kept; elsewhere the exact row bit for bit */
static void test_coarse_silu(void)
{
    enum { n = 4001 };
    float *x = TMALLOC(n * sizeof(float)), *y = TMALLOC(n * sizeof(float)), *y2 = TMALLOC(n * sizeof(float));
    for (int i = 0; i < n; i++) x[i] = -100.0f + 200.0f * i / (n - 1);
    glad_groupnorm_silu_row_coarse(y, x, n, 0.75f, 0.125f);
    double e = 0;
    for (int i = 0; i < n; i++) {
        double z = (double)x[i] * 0.75 + 0.125, r = z / (1.0 + exp(-z));
        e = fmax(e, fabs(y[i] - r) / fmax(1e-30, fabs(r)));
    }
    CHECKF(e < 1e-4, "coarse silu relative error %g", e);
    x[7] = NAN;
    glad_groupnorm_silu_row_coarse(y, x, 16, 1, 0);
    CHECK(isnan(y[7]) && isfinite(y[6]));
    if (glad_nn_avx512()) return;
    glad_groupnorm_silu_row_coarse(y, x, n, 0.75f, 0.125f);
    glad_groupnorm_silu_row(y2, x, n, 0.75f, 0.125f);
    CHECK(memcmp(y, y2, n * sizeof(float)) == 0);
}

/* nearest-neighbour upsampling: every output the input at (i / 2, j / 2),
 * widths under, at and over a vector's 16 lanes */
static void test_upsample(void)
{
    int sh[][3] = {{3, 4, 5}, {2, 3, 16}, {2, 5, 17}, {1, 2, 40}};
    for (int k = 0; k < 4; k++) {
        int BC = sh[k][0], H = sh[k][1], W = sh[k][2], bad = 0;
        float *x = rvec((size_t)BC * H * W), *o = TMALLOC((size_t)BC * 4 * H * W * sizeof(float));
        glad_upsample2_forward(o, x, BC, H, W);
        for (int p = 0; p < BC; p++)
            for (int i = 0; i < 2 * H; i++)
                for (int j = 0; j < 2 * W; j++)
                    bad += o[((size_t)p * 2 * H + i) * 2 * W + j] != x[((size_t)p * H + i / 2) * W + j / 2];
        CHECKF(bad == 0, "upsample %dx%dx%d: %d outputs wrong", BC, H, W, bad);
    }
}

/* memory plan: live ranges never overlap, frees coalesce, top is the peak */
static void test_memplan(void)
{
    glad_memplan m;
    glad_memplan_init(&m);
    size_t off[64], len[64];
    int live[64] = {0}, bad = 0;
    uint64_t s = 5;
    for (int step = 0; step < 2000; step++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((s >> 33) % 64);
        if (live[i]) { glad_memplan_free(&m, off[i], len[i]); live[i] = 0; continue; }
        len[i] = 1 + (size_t)((s >> 17) % 5000);
        glad_memplan_alloc(&m, len[i], &off[i]);
        live[i] = 1;
        if (off[i] % 16 || off[i] + len[i] > m.top) bad++;
        for (int j = 0; j < 64; j++)
            if (j != i && live[j] && off[i] < off[j] + len[j] && off[j] < off[i] + len[i]) bad++;
    }
    CHECKF(bad == 0, "%d overlapping or misaligned ranges", bad);
    for (int i = 0; i < 64; i++) if (live[i]) glad_memplan_free(&m, off[i], len[i]);
    CHECK(m.live == 0 && m.nspan == 1 && m.span[0].off == 0 && m.span[0].len == m.top);
    /* after everything is freed one block of the whole size fits at 0 */
    size_t o;
    glad_memplan_alloc(&m, m.top, &o);
    CHECK(o == 0);
    glad_memplan_release(&m);
}

typedef struct { float *x, *g, *b; int M, D; } ln_ctx;
static void ln_f(float *out, void *v) { ln_ctx *c = v; glad_layernorm_forward(out, c->x, c->g, c->b, c->M, c->D, 1e-6f); }

typedef struct { float *qkv; float *att; int B, C, T, heads; float *ws; } at_ctx;
static void at_f(float *out, void *v) { at_ctx *c = v; glad_attention_forward(out, c->att, c->qkv, c->B, c->C, c->T, c->heads, c->ws); }

/* attention forward and backward against a direct double computation of
 * every output and every gradient, on shapes for the portable path (5 tokens,
 * 3 channels; 40 tokens) and for the AVX-512F block kernel (64 tokens, 8
 * channels a head; 32 and 64 channels a head, whose dK and dV are summed
 * transposed; 64 channels over 32 tokens, which are not; 6 channels a head
 * over 64 tokens: the weights saved in the block kernel's layout, the
 * portable backward); inference (no saved weights) gives the same output;
 * and finite differences on the small one */
static void test_attention(void)
{
    int shapes[][4] = {{2, 6, 5, 2}, {1, 16, 40, 2}, {2, 16, 64, 2}, {1, 16, 64, 1}, {2, 64, 64, 2}, {1, 64, 96, 1}, {1, 64, 32, 1},
                       {2, 12, 64, 2}};   /* B, C, T, heads */
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int B = shapes[si][0], C = shapes[si][1], T = shapes[si][2], H = shapes[si][3], c = C / H;
        size_t nq = (size_t)B * 3 * C * T, no = (size_t)B * C * T;
        at_ctx a = {rvec(nq), TMALLOC((size_t)B * H * T * T * sizeof(float)), B, C, T, H, TMALLOC((size_t)3 * T * T * sizeof(float))};
        float *ao = TMALLOC(no * sizeof(float)), *ai = TMALLOC(no * sizeof(float)), *ar = rvec(no), *adq = TCALLOC(nq, sizeof(float));
        at_f(ao, &a);
        glad_attention_forward(ai, NULL, a.qkv, B, C, T, H, a.ws);
        CHECKF(memcmp(ao, ai, no * sizeof(float)) == 0, "attention T%d: inference output differs", T);
        glad_attention_backward(adq, ar, a.qkv, a.att, B, C, T, H, a.ws);
        double eo = 0, mo = 0, eg = 0, mg = 0, s2 = 1 / sqrt((double)c);
        double *W = malloc(sizeof(double) * T * T), *dL = malloc(sizeof(double) * T * T);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                const float *q = a.qkv + ((size_t)b * 3 * C + (size_t)h * 3 * c) * T, *k = q + (size_t)c * T, *v = k + (size_t)c * T;
                const float *dq = adq + (q - a.qkv), *dk = dq + (size_t)c * T, *dv = dk + (size_t)c * T;
                const float *o = ao + ((size_t)b * C + (size_t)h * c) * T, *da = ar + ((size_t)b * C + (size_t)h * c) * T;
                for (int t = 0; t < T; t++) {   /* W = softmax_s(s2 q_t . k_s) */
                    double mx = -1e300, z = 0;
                    for (int s = 0; s < T; s++) {
                        double l = 0;
                        for (int j = 0; j < c; j++) l += (double)q[j * T + t] * k[j * T + s];
                        W[t * T + s] = l * s2;
                        mx = fmax(mx, l * s2);
                    }
                    for (int s = 0; s < T; s++) { W[t * T + s] = exp(W[t * T + s] - mx); z += W[t * T + s]; }
                    for (int s = 0; s < T; s++) W[t * T + s] /= z;
                }
                for (int j = 0; j < c; j++)
                    for (int t = 0; t < T; t++) {
                        double r = 0;
                        for (int s = 0; s < T; s++) r += W[t * T + s] * v[j * T + s];
                        eo = fmax(eo, fabs(r - o[j * T + t]));
                        mo = fmax(mo, fabs(r));
                    }
                for (int t = 0; t < T; t++) {   /* dL = W (dW - sum_s W dW), dW[t][s] = dA_t . v_s */
                    double dot = 0;
                    for (int s = 0; s < T; s++) {
                        double dw = 0;
                        for (int j = 0; j < c; j++) dw += (double)da[j * T + t] * v[j * T + s];
                        dL[t * T + s] = dw;
                        dot += dw * W[t * T + s];
                    }
                    for (int s = 0; s < T; s++) dL[t * T + s] = W[t * T + s] * (dL[t * T + s] - dot);
                }
                for (int j = 0; j < c; j++)
                    for (int u = 0; u < T; u++) {
                        double gq = 0, gk = 0, gv = 0;
                        for (int w = 0; w < T; w++) {
                            gq += s2 * k[j * T + w] * dL[u * T + w];
                            gk += s2 * q[j * T + w] * dL[w * T + u];
                            gv += (double)da[j * T + w] * W[w * T + u];
                        }
                        eg = fmax(eg, fmax(fabs(gq - dq[j * T + u]), fmax(fabs(gk - dk[j * T + u]), fabs(gv - dv[j * T + u]))));
                        mg = fmax(mg, fmax(fabs(gq), fmax(fabs(gk), fabs(gv))));
                    }
            }
        free(W);
        free(dL);
        CHECKF(eo < 1e-5 * fmax(1, mo) && eg < 1e-5 * fmax(1, mg), "attention B%d C%d T%d heads %d: output err %g, grad err %g", B, C,
               T, H, eo, eg);
        if (si == 0) CHECK(fd_check(a.qkv, adq, nq, ao, no, ar, at_f, &a, 2e-2) == 0);
    }
}

typedef struct { float *x, *w, *b; int B, I, O; } li_ctx;
static void li_f(float *out, void *v) { li_ctx *c = v; glad_linear_forward(out, c->x, c->w, c->b, c->B, c->I, c->O); }

typedef struct { float *x; size_t n; int kind; int BC, H, W; } el_ctx;
static void el_f(float *out, void *v)
{
    el_ctx *c = v;
    if (c->kind == 0) glad_silu_forward(out, c->x, c->n);
    else if (c->kind == 1) glad_gelu_forward(out, c->x, c->n);
    else if (c->kind == 2) glad_avgpool2_forward(out, c->x, c->BC, c->H, c->W);
    else glad_upsample2_forward(out, c->x, c->BC, c->H, c->W);
}

/* the fast exp on non-finite input (issue #16: under UBSan a NaN's exponent
 * was a NaN converted to an integer and a negative value shifted): NaN stays
 * NaN, +-inf give the clamps' values; then NaN and inf through the kernels
 * that use it (SiLU, GroupNorm+SiLU, softmax), which must keep the NaN and
 * not trip the sanitizer */
static void fastmath_nonfinite(void)
{
    volatile float nan = NAN, inf = INFINITY;   /* volatile: computed at run time, not folded */
    CHECK(isnan(glad_expf_fast(nan)) && isnan(glad_expf_fast(-nan)));
    CHECK(glad_expf_fast(inf) == glad_expf_fast(88.3f) && isfinite(glad_expf_fast(inf)));
    CHECK(glad_expf_fast(-inf) == glad_expf_fast(-87.3f) && glad_expf_fast(-inf) > 0);
    CHECK(glad_expf_fast(0.0f) == 1.0f && fabsf(glad_expf_fast(1.0f) - expf(1.0f)) <= 2e-7f * expf(1.0f));
    enum { N = 64 };
    float x[N], y[N], d[N], g[N];
    for (int i = 0; i < N; i++) { x[i] = (float)(i % 7) - 3.0f; g[i] = 1.0f; d[i] = 0.0f; }
    x[3] = nan; x[17] = inf; x[40] = -inf; x[63] = nan;
    glad_silu_forward(y, x, N);
    glad_silu_backward(d, g, x, N);
    CHECK(isnan(y[3]) && isnan(y[63]) && isnan(d[3]) && y[17] == inf && isfinite(y[0]) && isfinite(y[62]));
    float mean[2], rstd[2], gm[4] = {1, 1, 1, 1}, bt[4] = {0, 0, 0, 0};
    glad_groupnorm_silu_forward(y, mean, rstd, x, gm, bt, 1, 4, 16, 2, 1e-5f);   /* (1,4,16), 2 groups: both hold a NaN */
    CHECK(isnan(y[0]) && isnan(y[63]));
    memcpy(y, x, sizeof y);
    glad_softmax_rows(y, 4, 16);
    double s2 = 0;
    for (int k = 32; k < 48; k++) s2 += y[k];
    CHECK(isnan(y[3]) && isnan(y[63]) && y[40] >= 0 && y[40] < 1e-30f && fabs(s2 - 1) < 1e-6);   /* row 2: -inf gives ~0 */
}

int main(void)
{
    fastmath_nonfinite();
    int ks[][3] = {{1, 1, 0}, {3, 1, 1}, {3, 2, 1}, {1, 2, 0}, {7, 2, 3}, {3, 1, 0}};
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) test_conv(ks[i][0], ks[i][1], ks[i][2], 3, 4, 9, 8);
    test_conv(1, 1, 0, 16, 24, 8, 12);
    test_conv(1, 1, 0, 8, 16, 16, 130);   /* more than one 2048-pixel chunk of the weight gradient */
    /* channels in 32s: the weight gradient's register tile, over few pixels
     * (threads split the output rows, 3 blocks of 8) and over many (2048-pixel
     * chunks into per-thread partials, a partial last chunk) */
    test_conv(1, 1, 0, 32, 24, 8, 12);
    test_conv(1, 1, 0, 64, 16, 64, 80);
    /* linear */
    li_ctx l = {rvec(3 * 5), rvec(4 * 5), rvec(4), 3, 5, 4};
    float lo[12], *lr = rvec(12), ldx[15] = {0}, ldw[20] = {0}, ldb[4] = {0};
    li_f(lo, &l);
    CHECK_NEAR(lo[1 * 4 + 2], l.b[2] + dot(l.x + 5, l.w + 2 * 5, 5), 1e-5);
    glad_linear_backward(ldx, ldw, ldb, lr, l.x, l.w, 3, 5, 4);
    CHECK(fd_check(l.x, ldx, 15, lo, 12, lr, li_f, &l, 1e-2) == 0 && fd_check(l.w, ldw, 20, lo, 12, lr, li_f, &l, 1e-2) == 0);
    /* GroupNorm */
    gn_ctx g = {rvec(2 * 8 * 10), rvec(8), rvec(8), TMALLOC(8 * sizeof(float)), TMALLOC(8 * sizeof(float)), 2, 8, 10};
    float go[160], *gr = rvec(160), gdx[160] = {0}, gdg[8] = {0}, gdb[8] = {0};
    gn_f(go, &g);
    glad_groupnorm_backward(gdx, gdg, gdb, gr, g.x, g.mean, g.rstd, g.g, 2, 8, 10, 4);
    CHECK(fd_check(g.x, gdx, 160, go, 160, gr, gn_f, &g, 2e-2) == 0);
    CHECK(fd_check(g.g, gdg, 8, go, 160, gr, gn_f, &g, 1e-2) == 0 && fd_check(g.b, gdb, 8, go, 160, gr, gn_f, &g, 1e-2) == 0);
    test_conv3x3_shapes();
    test_gn_silu();
    test_conv_epi();
    test_fast_exp();
    test_coarse_silu();
    test_upsample();
    test_memplan();
    /* LayerNorm */
    ln_ctx ln = {rvec(3 * 7), rvec(7), rvec(7), 3, 7};
    float lno[21], *lnr = rvec(21), lndx[21] = {0}, lndg[7] = {0}, lndb[7] = {0};
    ln_f(lno, &ln);
    {
        double mu = 0, var = 0;
        for (int i = 0; i < 7; i++) mu += ln.x[7 + i] / 7.0;
        for (int i = 0; i < 7; i++) var += (ln.x[7 + i] - mu) * (ln.x[7 + i] - mu) / 7.0;
        CHECK_NEAR(lno[7 + 2], (ln.x[7 + 2] - mu) / sqrt(var + 1e-6) * ln.g[2] + ln.b[2], 1e-5);
    }
    glad_layernorm_backward(lndx, lndg, lndb, lnr, ln.x, ln.g, 3, 7, 1e-6f);
    CHECK(fd_check(ln.x, lndx, 21, lno, 21, lnr, ln_f, &ln, 2e-2) == 0);
    CHECK(fd_check(ln.g, lndg, 7, lno, 21, lnr, ln_f, &ln, 1e-2) == 0 && fd_check(ln.b, lndb, 7, lno, 21, lnr, ln_f, &ln, 1e-2) == 0);
    test_attention();
    /* elementwise and resampling */
    for (int kind = 0; kind < 4; kind++) {
        el_ctx e = {rvec(2 * 6 * 8), 96, kind, 2, 6, 8};
        size_t no = kind == 2 ? 24 : kind == 3 ? 384 : 96;
        float *eo = TMALLOC(no * sizeof(float)), *er = rvec(no), edx[96] = {0};
        el_f(eo, &e);
        if (kind == 0) glad_silu_backward(edx, er, e.x, 96);
        else if (kind == 1) glad_gelu_backward(edx, er, e.x, 96);
        else if (kind == 2) glad_avgpool2_backward(edx, er, 2, 6, 8);
        else glad_upsample2_backward(edx, er, 2, 6, 8);
        CHECKF(fd_check(e.x, edx, 96, eo, no, er, el_f, &e, 1e-2) == 0, "elementwise kind %d", kind);

    }
    /* concat backward splits */
    float ca[4] = {1, 2, 3, 4}, cb[2] = {5, 6}, co[6], cda[4] = {0}, cdb[2] = {0}, cg[6] = {1, 2, 3, 4, 5, 6};
    glad_concat_forward(co, ca, cb, 1, 2, 1, 2);
    CHECK(co[4] == 5 && co[3] == 4);
    glad_concat_backward(cda, cdb, cg, 1, 2, 1, 2);
    CHECK(cda[3] == 4 && cdb[1] == 6);
    /* dropout: keep rate and determinism */
    size_t n = 100000;
    float *x = TMALLOC(n * sizeof(float)), *y = TMALLOC(n * sizeof(float)), *y2 = TMALLOC(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = 1;
    glad_dropout_forward(y, x, n, 0.3f, 42);
    glad_dropout_forward(y2, x, n, 0.3f, 42);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) kept += y[i] != 0;
    CHECK(memcmp(y, y2, n * sizeof(float)) == 0);
    CHECK(fabs(kept / (double)n - 0.7) < 0.01 && fabs(y[0] == 0 ? y[1] - 1 / 0.7f : y[0] - 1 / 0.7f) < 1e-6 + 1e9 * 0);
    /* the mask is pinned: element i is kept when output i of splitmix64 from
     * the seed, as a double in [0,1), is >= p (values from an independent
     * Python splitmix64), so a change of generator shows here */
    CHECK(kept == 69929 && y[0] != 0 && y[1] == 0);
    CHECK(glad_rng_uniform_at(0, 0) == 0.8833108082136426 && glad_rng_uniform_at(42, 0) == 0.7415648787718233);
    CHECK(glad_rng_uniform_at(42, 1) == 0.1599103928769201 && glad_rng_uniform_at(42, 123456) == 0.9191066368756647);
    CHECK(glad_rng_uniform_at(UINT64_MAX, 7) == 0.25142885573188245);
    /* Adam and AdamW: two steps against the formulas */
    for (int dec = 0; dec < 2; dec++) {
        float p[1] = {0.5f}, gr1[1] = {0.2f}, m[1] = {0}, v[1] = {0};
        glad_adam_cfg cfg = {0.1f, 0.9f, 0.999f, 1e-8f, 0.05f, dec};
        double P = 0.5, M = 0, V = 0;
        for (int t = 1; t <= 2; t++) {
            glad_adam_step(p, gr1, m, v, 1, &cfg, t);
            double gg = 0.2;
            if (dec) P *= 1 - 0.1 * 0.05; else gg += 0.05 * P;
            M = 0.9 * M + 0.1 * gg; V = 0.999 * V + 0.001 * gg * gg;
            P -= 0.1 * (M / (1 - pow(0.9, t))) / (sqrt(V / (1 - pow(0.999, t))) + 1e-8);
        }
        CHECK_NEAR(p[0], P, 1e-6);
    }
    /* a vector of them (the AVX-512F lanes and a tail) is bit for bit the
     * scalar float formulas, with and without weight decay, both kinds */
    for (int k = 0; k < 3; k++) {
        enum { n = 1003 };
        static float p[n], g[n], m[n], v[n], rp[n], rm[n], rv[n];
        glad_adam_cfg cfg = {1e-3f, 0.9f, 0.999f, 1e-8f, k ? 0.01f : 0.0f, k == 2};
        for (int i = 0; i < n; i++) { p[i] = rp[i] = sinf(i * 0.37f); m[i] = rm[i] = v[i] = rv[i] = 0; }
        int same = 1;
        for (long t = 1; t <= 3; t++) {
            for (int i = 0; i < n; i++) g[i] = cosf(i * 0.11f + t) * (i % 7 ? 1e-2f : 3.0f);
            glad_adam_step(p, g, m, v, n, &cfg, t);
            double bc1 = 1.0 - pow(cfg.beta1, (double)t), bc2 = 1.0 - pow(cfg.beta2, (double)t);
            float ss = (float)(cfg.lr / bc1), bs = (float)sqrt(bc2);
            for (int i = 0; i < n; i++) {
                float gi = g[i];
                if (cfg.wd != 0.0f) {
                    if (cfg.decoupled) rp[i] *= 1.0f - cfg.lr * cfg.wd;
                    else gi += cfg.wd * rp[i];
                }
                rm[i] = cfg.beta1 * rm[i] + (1.0f - cfg.beta1) * gi;
                rv[i] = cfg.beta2 * rv[i] + (1.0f - cfg.beta2) * gi * gi;
                rp[i] -= ss * rm[i] / (sqrtf(rv[i]) / bs + cfg.eps);
            }
            same &= !memcmp(p, rp, sizeof p) && !memcmp(m, rm, sizeof m) && !memcmp(v, rv, sizeof v);
        }
        CHECKF(same, "Adam over %d parameters (weight decay %g, decoupled %d) differs from the scalar formulas", n, (double)cfg.wd, k == 2);
    }
    /* threads: a conv and its gradients are the same with 1 and 2 (or 4)
     * threads (up to rounding: Winograd's weight gradient sums per-thread
     * partials), at a size the direct kernel takes and sizes Winograd takes on
     * AVX-512F (16x16 with 4 threads splits the output channels of its two
     * tile blocks) */
    int sizes[3] = {12, 40, 16};
    for (int si = 0; si < 3; si++) {
        int S = sizes[si], nt2 = S == 16 ? 4 : 2;
        conv_ctx c = {rvec((size_t)2 * 32 * S * S), rvec(32 * 32 * 9), rvec(32), NULL, 2, 32, S, S, 32, 3, 1, 1};
        size_t no = (size_t)2 * 32 * S * S, nw = 32 * 32 * 9;
        c.ws = TMALLOC(glad_conv2d_workspace(32, S, S, 32, 3, 3, 1, 1) * sizeof(float));
        float *o1 = TMALLOC(no * sizeof(float)), *o2 = TMALLOC(no * sizeof(float)), *r = rvec(no);
        float *dx1 = TCALLOC(no, sizeof(float)), *dx2 = TCALLOC(no, sizeof(float)), *dw1 = TCALLOC(nw, sizeof(float));
        float *dw2 = TCALLOC(nw, sizeof(float)), db[32] = {0};
        omp_set_num_threads(1);
        conv_f(o1, &c);
        glad_conv2d_backward(dx1, dw1, db, r, c.x, c.w, 2, 32, S, S, 32, 3, 3, 1, 1, c.ws, GLAD_DX_ADD);
        omp_set_num_threads(nt2);
        conv_f(o2, &c);
        glad_conv2d_backward(dx2, dw2, db, r, c.x, c.w, 2, 32, S, S, 32, 3, 3, 1, 1, c.ws, GLAD_DX_ADD);
        omp_set_num_threads(2);
        double d = 0, ddx = 0, ddw = 0, mw = 0;
        for (size_t i = 0; i < no; i++) { d = fmax(d, fabs(o1[i] - o2[i])); ddx = fmax(ddx, fabs(dx1[i] - dx2[i])); }
        for (size_t i = 0; i < nw; i++) { ddw = fmax(ddw, fabs(dw1[i] - dw2[i])); mw = fmax(mw, fabs(dw1[i])); }
        CHECKF(d < 1e-4 && ddx < 1e-4 && ddw < 1e-5 * mw, "conv %dx%d: 1 vs %d threads differ by %g (out), %g (dx), %g of %g (dw)", S, S,
               nt2, d, ddx, ddw, mw);
    }
    free_all();
    return check_done();
}
