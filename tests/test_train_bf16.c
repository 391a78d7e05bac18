/* test_train_bf16.c - mixed-precision training (lib/diffusion/train.h with
 * cfg.precision bf16; nn/bf16.h) on a small UNet (32 x 32 images, base 32,
 * levels 1,2, attention at 16: every bf16 path of the training passes runs,
 * the 1x1 convolutions, the Winograd 3x3 forward and input gradient):
 *   - the backward kernels alone (glad_conv2d_backward in bf16) against
 *     double sums: 1x1 input and weight gradients, the Winograd 3x3 input
 *     gradient and the F(2x2,3x3) weight gradient (16 x 16 planes; F(4x4)'s
 *     stays f32, bit for bit);
 *   - one step's loss and parameter gradients in bf16 against f32 from the
 *     same weights and batch: |loss_bf16 - loss_f32| <= TOL_LOSS loss_f32,
 *     ||g_bf16 - g_f32|| <= TOL_GRAD ||g_f32|| (and the bf16 numbers are
 *     not the f32 ones: the bf16 kernels ran);
 *   - the bf16 backward is the backward of the bf16 forward: along the
 *     gradient's direction d, (L(w + h d) - L(w - h d)) / 2h of the bf16
 *     loss equals g.d within TOL_FD;
 *   - no stale bf16 weights: the training passes convert each weight once
 *     per step (their forward fills a cache their backward reads), and
 *     after an optimiser step the next forward and backward equal a fresh
 *     model's bit for bit; a training forward after the weights changed
 *     (through a pointer taken before the first pass, the way an optimiser
 *     writes them) equals a fresh model's with those weights, bit for bit;
 *     and an inference pass (which caches its bf16 weights) after a training
 *     step equals a fresh model's;
 *   - the precision is left as the caller set it; f32 checkpoints carry no
 *     train.precision, bf16 ones do; resume in bf16 is bit-exact; resuming
 *     in another precision is refused (GLAD_ERANGE).
 * The measured errors (this machine, printed by the test) are in the
 * comments by the tolerances. Skips visibly without AVX512_BF16 (or with
 * GLAD_NO_BF16 set), where it checks that bf16 is refused. */
#include <math.h>
#include <unistd.h>
#include "check.h"
#include "core/rng.h"
#include "diffusion/train.h"
#include "io/safetensors.h"
#include "io/stream.h"
#include "nn/bf16.h"
#include "nn/nn.h"

#define S 32
#define C 3
#define PER (C * S * S)
#define NREC 4

/* the backward kernels in bf16, against double sums: 1x1 input and weight
 * gradients on the bf16-rounded operands (fp32 accumulation only, as
 * test_bf16's GEMM bound); the Winograd 3x3 input gradient against the exact
 * sums of the unrounded operands, of max |dx| (measured 4.2e-3 and 3.8e-3
 * on 16 x 16 and 32 x 32 planes) */
#define TOL_1X1 4e-6
#define TOL_W3 1e-2
/* the Winograd 3x3 weight gradient in bf16 (F(2x2,3x3)'s transform-domain
 * products on bf16 operands, where f32 takes F(2x2) too) against the exact
 * sums, of max |dw| (measured 4.6e-3 on 16 x 16; F(2x2) in bf16 on 32 x 32
 * gave 4.3e-3, F(4x4,3x3)'s domain 3.9e-2: those shapes stay f32) */
#define TOL_W3W 1e-2
/* measured (Zen 5): loss 7.7e-5, gradients 1.25e-2 (relative) */
#define TOL_LOSS 2e-3
#define TOL_GRAD 3e-2
/* measured: 5.3e-3 (the f32 gradient against f32 differences: 1.5e-5) */
#define TOL_FD 2e-2

static char dir[64];

static char *tmp(const char *name)
{
    static char b[16][160];
    static int k;
    char *p = b[k++ % 16];
    snprintf(p, 160, "%s/%s", dir, name);
    return p;
}

static int write_stream(const char *path)
{
    glad_writer *wr;
    if (glad_writer_open(&wr, path, 0) < 0) return -1;
    glad_record h;
    glad_header_init(&h);
    glad_writer_write(wr, &h);
    glad_record_free(&h);
    for (int k = 0; k < NREC; k++) {
        glad_record r;
        glad_record_init(&r);
        char id[32];
        snprintf(id, sizeof id, "r%d", k);
        glad_record_set_str(&r, "id", id);
        glad_tensor t;
        glad_tensor_alloc4(&t, GLAD_DT_U8, C, S, S, -1);
        uint8_t *p = t.data;
        /* smooth images with a little texture */
        for (int i = 0; i < PER; i++) {
            int c = i / (S * S), y = i / S % S, x = i % S;
            p[i] = (uint8_t)(128 + 90 * sin(0.2 * x + 0.3 * y + c + k) + (i * 7 + k) % 13);
        }
        glad_record_set_tensor(&r, "image", &t);
        glad_writer_write(wr, &r);
        glad_record_free(&r);
    }
    return glad_writer_close(wr);
}

static void small(glad_train_config *c, const char *in, int prec)
{
    glad_train_config_default(c);
    c->input = in;
    c->base = 32; c->nmults = 2; c->mults[0] = 1; c->mults[1] = 2; c->res_blocks = 1; c->heads = 2;
    c->nattn = 1; c->attn_res[0] = 16; c->dropout = 0;
    c->batch = 2; c->steps = 4; c->seed = 5; c->lr = 1e-3;
    c->precision = prec;
}

/* the initial weights with the zero-initialised layers made non-zero, so
 * every gradient is (the output conv's zero weights stop the backward) */
static void jitter(glad_unet *u)
{
    glad_rng r;
    glad_rng_seed(&r, 77, 0, 0);
    float *w = glad_unet_weights(u);
    for (size_t i = 0; i < glad_unet_nparams(u); i++) w[i] += (float)(0.05 * glad_rng_normal(&r));
}

static double norm(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) { double d = (double)a[i] - (b ? b[i] : 0); s += d * d; }
    return sqrt(s);
}

static glad_train *open_tr(const glad_train_config *c)
{
    glad_train *tr;
    int rc = glad_train_open(&tr, c);
    CHECKF(rc == 0, "open: %s", glad_error_detail());
    return rc ? NULL : tr;
}

static float rnd(float x, int r) { return r ? glad_bf16_round(x) : x; }

/* one conv's backward in bf16 (dx by GLAD_DX_ADD onto dx0) against double
 * sums; k = 1: operands rounded to bf16 in the reference, per-element bound
 * TOL_1X1 sum |terms|; k = 3: unrounded reference, max error TOL_W3 max |dx|
 * and TOL_W3W max |dw| */
static void conv_backward(int k, int Cin, int OC, int H)
{
    int B = 2, W = H, N = H * W, pad = k / 2;
    size_t nx = (size_t)B * Cin * N, ny = (size_t)B * OC * N, nw = (size_t)OC * Cin * k * k;
    float *x = malloc(nx * 4), *dy = malloc(ny * 4), *w = malloc(nw * 4), *dx = malloc(nx * 4), *dw = calloc(nw, 4), *db = calloc(OC, 4);
    float *dxf = malloc(nx * 4), *dwf = calloc(nw, 4), *dbf = calloc(OC, 4);
    float *ws = malloc(glad_conv2d_workspace(Cin, H, W, OC, k, k, 1, pad) * 4);
    glad_rng r;
    glad_rng_seed(&r, 3, (uint64_t)k, (uint64_t)H);
    glad_rng_normal_f32(&r, x, nx);
    glad_rng_normal_f32(&r, dy, ny);
    glad_rng_normal_f32(&r, w, nw);
    glad_rng_normal_f32(&r, dx, nx);
    memcpy(dxf, dx, nx * 4);
    double *rx = malloc(nx * 8), *ex = malloc(nx * 8), *rw = calloc(nw, 8), *ew = calloc(nw, 8);
    int rd = k == 1;
    for (size_t i = 0; i < nx; i++) { rx[i] = dx[i]; ex[i] = 0; }
    for (int n = 0; n < B; n++)
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < Cin; c++)
                for (int t = 0; t < k * k; t++) {
                    int ky = t / k - pad, kx = t % k - pad;
                    double wv = rnd(w[((size_t)o * Cin + c) * k * k + t], rd);
                    for (int yy = 0; yy < H; yy++)
                        for (int xx = 0; xx < W; xx++) {
                            int sy = yy + ky, sx = xx + kx;   /* out (yy,xx) reads x (sy,sx) */
                            if (sy < 0 || sy >= H || sx < 0 || sx >= W) continue;
                            double g = rnd(dy[((size_t)n * OC + o) * N + yy * W + xx], rd), xv = rnd(x[((size_t)n * Cin + c) * N + sy * W + sx], rd);
                            size_t ix = ((size_t)n * Cin + c) * N + sy * W + sx, iw = ((size_t)o * Cin + c) * k * k + t;
                            rx[ix] += wv * g; ex[ix] += fabs(wv * g);
                            rw[iw] += g * xv; ew[iw] += fabs(g * xv);
                        }
                }
    glad_conv2d_backward(dxf, dwf, dbf, dy, x, w, B, Cin, H, W, OC, k, k, 1, pad, ws, GLAD_DX_ADD);
    CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
    glad_conv2d_backward(dx, dw, db, dy, x, w, B, Cin, H, W, OC, k, k, 1, pad, ws, GLAD_DX_ADD);
    glad_precision_set(GLAD_PREC_F32);
    double mx = 0, ex_max = 0, ew_max = 0, ratio = 0, mw = 0, eww = 0, ewf = 0;
    int okx = 1, okw = 1;
    for (size_t i = 0; i < nx; i++) mx = fmax(mx, fabs(rx[i]));
    for (size_t i = 0; i < nx; i++) {
        double e = fabs(dx[i] - rx[i]);
        ex_max = fmax(ex_max, e / mx);
        if (k == 1) { ratio = fmax(ratio, e / (ex[i] + fabs(rx[i]))); okx &= e <= TOL_1X1 * (ex[i] + fabs(rx[i])) + 1e-6; }
    }
    for (size_t i = 0; i < nw; i++) mw = fmax(mw, fabs(rw[i]));
    for (size_t i = 0; i < nw; i++) {
        double e = fabs(dw[i] - rw[i]);
        ew_max = fmax(ew_max, e / (ew[i] + 1e-30));
        eww = fmax(eww, e / mw);
        ewf = fmax(ewf, fabs(dwf[i] - rw[i]) / mw);
        if (k == 1) okw &= e <= TOL_1X1 * ew[i] + 1e-6;
    }
    printf("%dx%d backward bf16, C %d OC %d on %dx%d: dx max err %.2e of max |dx|%s; dw err %.2e of sum |terms|", k, k, Cin, OC, H, W,
           ex_max, k == 1 ? " (rounded operands)" : "", ew_max);
    if (k == 3) printf(", max err %.2e of max |dw| (f32 %.2e)", eww, ewf);
    printf("\n");
    CHECKF(memcmp(dx, dxf, nx * 4), "%dx%d: bf16 input gradient is not the f32 one (the bf16 kernel ran)", k, k);
    if (k == 1) {
        CHECKF(okx, "1x1 dx: err %.2e of sum |terms| > %.0e", ratio, TOL_1X1);
        CHECKF(okw, "1x1 dw: err %.2e of sum |terms| > %.0e", ew_max, TOL_1X1);
        CHECKF(memcmp(dw, dwf, nw * 4), "1x1: bf16 weight gradient is not the f32 one");
    } else {
        CHECKF(ex_max <= TOL_W3, "3x3 dx: err %.2e of max > %.0e", ex_max, TOL_W3);
        CHECKF(eww <= TOL_W3W, "3x3 dw: err %.2e of max > %.0e", eww, TOL_W3W);
        /* F(2x2,3x3)'s weight gradient in bf16 (16 x 16), F(4x4,3x3)'s in f32 (32 x 32 and up) */
        if (H * W < 1024) CHECKF(memcmp(dw, dwf, nw * 4), "3x3: bf16 weight gradient is not the f32 one (the bf16 kernel ran)");
        else CHECKF(!memcmp(dw, dwf, nw * 4), "3x3 on %dx%d: the F(4x4) weight gradient stays f32 (bit for bit)", H, W);
    }
    CHECKF(!memcmp(db, dbf, (size_t)OC * 4), "%dx%d: bias gradient f32", k, k);
    free(x); free(dy); free(w); free(dx); free(dw); free(db); free(dxf); free(dwf); free(dbf); free(ws);
    free(rx); free(ex); free(rw); free(ew);
}

/* one step's loss and gradients, bf16 against f32; then the finite differences */
static void accuracy(const char *in)
{
    glad_train_config cf, cb;
    small(&cf, in, GLAD_PREC_F32);
    small(&cb, in, GLAD_PREC_BF16);
    glad_train *f = open_tr(&cf), *b = open_tr(&cb);
    if (!f || !b) { glad_train_close(f); glad_train_close(b); return; }
    size_t P = f->nparams;
    jitter(f->model.unet);
    memcpy(glad_unet_weights(b->model.unet), glad_unet_weights(f->model.unet), P * sizeof(float));
    CHECK(glad_train_batch(f) == 0 && glad_train_batch(b) == 0);
    CHECK(glad_train_forward(f) == 0 && glad_train_backward(f) == 0);
    CHECK(glad_precision_get() == GLAD_PREC_F32);
    CHECK(glad_train_forward(b) == 0 && glad_train_backward(b) == 0);
    CHECKF(glad_precision_get() == GLAD_PREC_F32, "the caller's precision is restored");
    const float *gf = glad_unet_grads(f->model.unet), *gb = glad_unet_grads(b->model.unet);
    double el = fabs(b->loss - f->loss) / f->loss, eg = norm(gb, gf, P) / norm(gf, NULL, P);
    printf("bf16 vs f32, one step: loss %.6g vs %.6g (rel %.2e), gradients rel %.2e (||g|| %.4g)\n", b->loss, f->loss, el, eg,
           norm(gf, NULL, P));
    CHECKF(b->loss != f->loss, "bf16 kernels ran (the loss is not the f32 one)");
    CHECKF(el <= TOL_LOSS, "loss rel err %.2e > %.0e", el, TOL_LOSS);
    CHECKF(eg <= TOL_GRAD, "gradient rel err %.2e > %.0e", eg, TOL_GRAD);
    /* finite differences of each precision's own loss along its gradient */
    for (int k = 0; k < 2; k++) {
        glad_train *tr = k ? b : f;
        glad_unet *u = tr->model.unet;
        float *g = malloc(P * sizeof(float)), *w0 = malloc(P * sizeof(float));
        memcpy(g, glad_unet_grads(u), P * sizeof(float));
        memcpy(w0, glad_unet_weights(u), P * sizeof(float));
        double gn = norm(g, NULL, P), h = 1e-2, L[2];
        for (int s = 0; s < 2; s++) {
            float *w = glad_unet_weights(u);
            for (size_t i = 0; i < P; i++) w[i] = (float)(w0[i] + (s ? -h : h) * g[i] / gn);
            CHECK(glad_train_forward(tr) == 0);
            L[s] = tr->loss;
        }
        memcpy(glad_unet_weights(u), w0, P * sizeof(float));
        double fd = (L[0] - L[1]) / (2 * h), e = fabs(fd - gn) / gn;
        printf("%s: directional derivative %.6g, finite difference (h %g) %.6g, rel %.2e\n", k ? "bf16" : "f32", gn, h, fd, e);
        CHECKF(e <= TOL_FD, "%s: finite difference off by %.2e > %.0e", k ? "bf16" : "f32", e, TOL_FD);
        free(g);
        free(w0);
    }
    glad_train_close(f);
    glad_train_close(b);
}

/* the stale-weight tests' fixture: a bf16 training of small() with its
 * weights jittered, its UNet u, P parameters, n outputs of a batch, and two
 * output buffers */
typedef struct { glad_train *tr; glad_unet *u; size_t P, n; float *e1, *e2; } stale_fx;

static void stale_close(stale_fx *f)
{
    free(f->e1);
    free(f->e2);
    glad_train_close(f->tr);
}

static int stale_open(stale_fx *f, const char *in)
{
    glad_train_config cb;
    small(&cb, in, GLAD_PREC_BF16);
    if (!(f->tr = open_tr(&cb))) return -1;
    f->u = f->tr->model.unet;
    f->P = f->tr->nparams;
    f->n = (size_t)f->tr->B * PER;
    jitter(f->u);
    f->e1 = malloc(f->n * sizeof(float));
    f->e2 = malloc(f->n * sizeof(float));
    CHECK(f->e1 && f->e2);
    if (f->e1 && f->e2) return 0;
    stale_close(f);
    return -1;
}

/* a training forward after the weights changed under it, and an inference
 * pass after a training step, against fresh models with those weights */
static void no_stale_weights(const char *in)
{
    stale_fx f;
    if (stale_open(&f, in)) return;
    glad_train *tr = f.tr;
    glad_unet *u = f.u, *v = NULL;
    size_t P = f.P, n = f.n;
    float *w = glad_unet_weights(u);   /* held across the passes, as an optimiser does */
    float *e1 = f.e1, *e2 = f.e2;
    CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
    CHECK(glad_train_batch(tr) == 0);
    CHECK(glad_unet_forward(u, e1, tr->x, tr->t, tr->B, 1, 0) == 0);
    for (size_t i = 0; i < P; i++) w[i] *= 1.01f;
    CHECK(glad_unet_forward(u, e1, tr->x, tr->t, tr->B, 1, 0) == 0);
    CHECK(glad_unet_create(&v, glad_unet_cfg(u)) == 0);
    memcpy(glad_unet_weights(v), w, P * sizeof(float));
    CHECK(glad_unet_forward(v, e2, tr->x, tr->t, tr->B, 1, 0) == 0);
    CHECKF(!memcmp(e1, e2, n * sizeof(float)), "training forward after a weight change: stale bf16 weights");
    /* inference (bf16 weights cached), a training step, inference again */
    CHECK(glad_unet_forward(u, e1, tr->x, tr->t, tr->B, 0, 0) == 0);
    glad_precision_set(GLAD_PREC_F32);
    CHECK(glad_train_forward(tr) == 0 && glad_train_backward(tr) == 0 && glad_train_update(tr) == 0);
    CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
    CHECK(glad_unet_forward(u, e1, tr->x, tr->t, tr->B, 0, 0) == 0);
    memcpy(glad_unet_weights(v), glad_unet_weights(u), P * sizeof(float));
    CHECK(glad_unet_forward(v, e2, tr->x, tr->t, tr->B, 0, 0) == 0);
    CHECKF(!memcmp(e1, e2, n * sizeof(float)), "inference after a training step: stale bf16 weights");
    glad_precision_set(GLAD_PREC_F32);
    glad_unet_free(v);
    stale_close(&f);
}

/* the training passes' bf16 weight cache (one conversion per step, shared
 * by the step's forward and backward) is invalidated by the optimiser step:
 * after glad_train_update (Adam writing through the pointer it holds) the
 * next forward's output and the backward's gradients equal a fresh model's
 * with the updated weights, bit for bit; and so does a step whose backward
 * runs in bf16 after the weights changed and an f32 forward ran */
static void cache_per_step(const char *in)
{
    stale_fx f;
    if (stale_open(&f, in)) return;
    glad_train *tr = f.tr;
    glad_unet *u = f.u, *v = NULL;
    size_t P = f.P, n = f.n;
    float *e1 = f.e1, *e2 = f.e2, *g1 = malloc(P * sizeof(float)), *dy = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) dy[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    CHECK(glad_train_batch(tr) == 0);
    CHECK(glad_train_forward(tr) == 0 && glad_train_backward(tr) == 0 && glad_train_update(tr) == 0);
    CHECK(glad_unet_create(&v, glad_unet_cfg(u)) == 0);
    for (int k = 0; k < 2 && v; k++) {
        CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
        if (k) {   /* the weights change, an f32 forward, then a bf16 step */
            float *w = glad_unet_weights(u);
            for (size_t i = 0; i < P; i++) w[i] *= 0.99f;
            CHECK(glad_unet_forward(u, e1, tr->x, tr->t, tr->B, 1, 0) == 0 && glad_unet_backward(u, dy, NULL) == 0);
            glad_precision_set(GLAD_PREC_F32);
            for (size_t i = 0; i < P; i++) w[i] *= 0.99f;
            CHECK(glad_unet_forward(u, e1, tr->x, tr->t, tr->B, 1, 0) == 0);
            CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
        } else
            CHECK(glad_unet_forward(u, e1, tr->x, tr->t, tr->B, 1, 0) == 0);
        glad_unet_zero_grad(u);
        CHECK(glad_unet_backward(u, dy, NULL) == 0);
        memcpy(g1, glad_unet_grads(u), P * sizeof(float));
        memcpy(glad_unet_weights(v), glad_unet_weights(u), P * sizeof(float));
        glad_unet_zero_grad(v);
        if (k) glad_precision_set(GLAD_PREC_F32);   /* v's forward in u's precision */
        CHECK(glad_unet_forward(v, e2, tr->x, tr->t, tr->B, 1, 0) == 0);
        CHECK(glad_precision_set(GLAD_PREC_BF16) == 0 && glad_unet_backward(v, dy, NULL) == 0);
        if (!k) CHECKF(!memcmp(e1, e2, n * sizeof(float)), "forward after an optimiser step: stale bf16 weights");
        CHECKF(!memcmp(g1, glad_unet_grads(v), P * sizeof(float)), "%s: stale bf16 weights in the backward",
               k ? "bf16 backward after an f32 forward" : "backward after an optimiser step");
        glad_precision_set(GLAD_PREC_F32);
    }
    glad_unet_free(v);
    free(g1);
    free(dy);
    stale_close(&f);
}

static int train_to(glad_train_config *c, const char *out)
{
    glad_train *tr;
    c->output = out;
    GLAD_TRY(glad_train_open(&tr, c));
    int rc = 0;
    while (rc == 0 && tr->step < tr->total) {
        rc = glad_train_step(tr);
        if (rc == 0 && (tr->step == 2 || tr->step == tr->total)) rc = glad_train_save(tr, out);
    }
    glad_train_close(tr);
    return rc;
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int x = fgetc(fa), y = fgetc(fb);
        if (x != y) same = 0;
        if (x == EOF || y == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static const char *meta(const char *path, const char *key, char *buf, size_t n)
{
    glad_st *st;
    buf[0] = 0;
    if (glad_st_open(&st, path)) return NULL;
    const char *s = glad_st_meta(st, key);
    if (s) snprintf(buf, n, "%s", s);
    glad_st_close(st);
    return s ? buf : NULL;
}

/* checkpoints: the recorded precision, bit-exact resume, another precision refused */
static void checkpoints(const char *in)
{
    glad_train_config c;
    char b[32];
    small(&c, in, GLAD_PREC_F32);
    c.steps = 2;
    CHECKF(train_to(&c, tmp("f32.model")) == 0, "%s", glad_error_detail());
    CHECKF(!meta(tmp("f32.model"), "train.precision", b, sizeof b), "an f32 checkpoint has no train.precision");
    small(&c, in, GLAD_PREC_BF16);
    CHECKF(train_to(&c, tmp("straight.model")) == 0, "%s", glad_error_detail());
    CHECKF(meta(tmp("straight.model"), "train.precision", b, sizeof b) && !strcmp(b, "bf16"), "bf16 recorded: '%s'", b);
    small(&c, in, GLAD_PREC_BF16);
    c.steps = 2;
    CHECKF(train_to(&c, tmp("part.model")) == 0, "%s", glad_error_detail());
    glad_train_config r;
    glad_train_config_default(&r);   /* nothing but the steps: the precision is the checkpoint's */
    r.input = in; r.resume = tmp("part.model"); r.steps = 4;
    CHECKF(train_to(&r, tmp("resumed.model")) == 0, "%s", glad_error_detail());
    CHECKF(same_file(tmp("straight.model"), tmp("resumed.model")), "bf16: resumed != uninterrupted");
    small(&c, in, GLAD_PREC_F32);
    CHECKF(!same_file(tmp("straight.model"), tmp("f32.model")), "bf16 and f32 runs differ");
    glad_train_config_default(&r);
    r.input = in; r.resume = tmp("part.model"); r.steps = 4; r.precision = GLAD_PREC_F32; r.output = tmp("x.model");
    glad_train *tr;
    int rc = glad_train_open(&tr, &r);
    CHECKF(rc == GLAD_ERANGE && strstr(glad_error_detail(), "precision is bf16, not f32"), "rc %d: %s", rc, glad_error_detail());
    glad_train_config_default(&r);
    r.input = in; r.resume = tmp("f32.model"); r.steps = 4; r.precision = GLAD_PREC_BF16; r.output = tmp("x.model");
    rc = glad_train_open(&tr, &r);
    CHECKF(rc == GLAD_ERANGE && strstr(glad_error_detail(), "precision is f32, not bf16"), "rc %d: %s", rc, glad_error_detail());
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/glad-train-bf16-XXXXXX");
    if (!mkdtemp(dir)) { printf("mkdtemp failed\n"); return 1; }
    const char *in = tmp("train.msgpack");
    CHECK(write_stream(in) == 0);
    if (!glad_bf16_available()) {
        SKIP("no AVX512_BF16 (or GLAD_NO_BF16 / GLAD_NO_AVX512 set): mixed-precision training not checked");
        glad_train_config c;
        small(&c, in, GLAD_PREC_BF16);
        glad_train *tr;
        int rc = glad_train_open(&tr, &c);
        CHECKF(rc == GLAD_EUNSUPPORTED && strstr(glad_error_detail(), "bf16 needs"), "rc %d: %s", rc, glad_error_detail());
    } else {
        conv_backward(1, 32, 48, 16);
        conv_backward(3, 32, 48, 16);
        conv_backward(3, 32, 32, 32);
        accuracy(in);
        no_stale_weights(in);
        cache_per_step(in);
        checkpoints(in);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}
