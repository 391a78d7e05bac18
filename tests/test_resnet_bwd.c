/* test_resnet_bwd.c - the ResNet's training mode (glad_resnet_train, issue
 * #21): finite differences of each layer's backward (conv 7x7/s2, 3x3/s2,
 * 1x1/s2; BatchNorm in train mode; ReLU; the 3x3/s2 max pool), of one
 * Bottleneck with a downsample and of a whole small net (a tiny weights file
 * made here: every parameter tensor and input pixels probed); the running
 * statistics update against its formula; parity with PyTorch's gradients on
 * the wide-resnet fixture (tests/fixtures/resnet-bwd.case, made by
 * tests/ref/resnet_bwd_ref.py: DDAD's cosine loss of layer1..3 in train()
 * mode, loss and every parameter gradient to 1e-4, the input gradient, the
 * updated running statistics; once with both records in one forward, once
 * as DDAD runs it: two forwards on two tapes); the same gradients on 1, 2 and 3 threads;
 * save -> glad_resnet_load round trips; errors.
 * Finite differences run on float kernels with the loss summed in double,
 * a central difference, and a tolerance relative to the largest probed
 * gradient. */
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>
#include "check.h"
#include "core/rng.h"
#include "models/resnet.h"
#include "nn/nn.h"
#include "io/safetensors.h"

/* ../shared/fixtures/NAME if ../shared exists, else tests/fixtures/NAME */
static const char *fixture(char *buf, size_t n, const char *name)
{
    const char *sh = check_shared();
    snprintf(buf, n, "%s/fixtures/%s", sh ? sh : "tests", name);
    if (access(buf, R_OK) != 0) snprintf(buf, n, "tests/fixtures/%s", name);
    return buf;
}

static void fill(float *v, size_t n, uint64_t seed, float scale)
{
    glad_rng r;
    glad_rng_seed(&r, seed, 0, 0);
    for (size_t i = 0; i < n; i++) v[i] = (float)(glad_rng_normal(&r) * scale);
}

/* ---- one layer: y = f(inputs); loss = sum r y ---- */
typedef struct lay lay;
struct lay {
    void (*fwd)(lay *);
    float *y, *r;
    size_t ny;
    /* conv / bn / pool parameters */
    float *x, *w, *b, *g, *be, *mean, *rstd, *ws;
    int B, C, H, W, OC, k, s, p, N;
};

static double lay_loss(lay *l)
{
    l->fwd(l);
    double s = 0;
    for (size_t i = 0; i < l->ny; i++) s += (double)l->y[i] * l->r[i];
    return s;
}

/* Central differences of the loss at nprobe entries of v (n values) against
 * grad, double-checked: each probe at steps h and h/2. Where the two differ
 * (a ReLU or max-pool kink crossed within h: the loss is only piecewise
 * smooth), the probe is set aside and counted in *kinks; the others
 * compare the h/2 difference. Returns the worst |fd - grad| relative to the
 * largest |grad| probed. */
static int g_kinks, g_probes;

static double fd_worst(lay *l, float *v, size_t n, const float *grad, int nprobe, float h, const char *what)
{
    double worst = 0, gmax = 0, *fd = malloc(sizeof(double) * (size_t)nprobe), *fd2 = malloc(sizeof(double) * (size_t)nprobe);
    size_t *at = malloc(sizeof(size_t) * (size_t)nprobe);
    for (int i = 0; i < nprobe; i++) {
        size_t k = (size_t)((double)i * n / nprobe + (i * 7919) % 13) % n;
        float keep = v[k];
        v[k] = keep + h; double lp = lay_loss(l);
        v[k] = keep - h; double lm = lay_loss(l);
        v[k] = keep + h / 2; double lp2 = lay_loss(l);
        v[k] = keep - h / 2; double lm2 = lay_loss(l);
        v[k] = keep;
        /* the steps actually taken (keep +- h rounds in float) */
        fd[i] = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
        fd2[i] = (lp2 - lm2) / ((double)(keep + h / 2) - (double)(keep - h / 2));
        at[i] = k;
        gmax = fmax(gmax, fabs(grad[k]));
    }
    double s = gmax > 0 ? gmax : 1;
    for (int i = 0; i < nprobe; i++) {
        g_probes++;
        if (fabs(fd[i] - fd2[i]) > 5e-3 * s) { g_kinks++; continue; }
        double e = fabs(fd2[i] - grad[at[i]]) / s;
        if (e > worst) worst = e;
    }
    if (worst > 1e-2) fprintf(stderr, "  fd %s: worst %.3g (max |grad| %.3g)\n", what, worst, gmax);
    free(fd); free(fd2); free(at);
    return worst;
}

static int outsz(int n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }

static void conv_fwd(lay *l) { glad_conv2d_forward(l->y, l->x, l->w, l->b, l->B, l->C, l->H, l->W, l->OC, l->k, l->k, l->s, l->p, l->ws); }

/* conv2d backward at the ResNet's strided shapes (the UNet tests cover 3x3/s1 and 1x1/s1) */
static void fd_conv(int k, int s, int p)
{
    lay l = {.fwd = conv_fwd, .B = 2, .C = 3, .H = 11, .W = 9, .OC = 4, .k = k, .s = s, .p = p};
    int Ho = outsz(l.H, k, s, p), Wo = outsz(l.W, k, s, p);
    size_t nx = (size_t)l.B * l.C * l.H * l.W, nw = (size_t)l.OC * l.C * k * k;
    l.ny = (size_t)l.B * l.OC * Ho * Wo;
    l.x = malloc(nx * 4); l.w = malloc(nw * 4); l.b = malloc(l.OC * 4); l.y = malloc(l.ny * 4); l.r = malloc(l.ny * 4);
    l.ws = malloc(glad_conv2d_workspace(l.C, l.H, l.W, l.OC, k, k, s, p) * 4 + 64);
    fill(l.x, nx, 1, 1); fill(l.w, nw, 2, 0.3f); fill(l.b, l.OC, 3, 0.1f); fill(l.r, l.ny, 4, 1);
    float *dx = calloc(nx, 4), *dw = calloc(nw, 4), *db = calloc(l.OC, 4);
    glad_conv2d_backward(dx, dw, db, l.r, l.x, l.w, l.B, l.C, l.H, l.W, l.OC, k, k, s, p, l.ws, GLAD_DX_ADD);
    char what[64];
    snprintf(what, sizeof what, "conv %dx%d/s%d", k, k, s);
    /* linear in each input: the difference is exact up to rounding */
    double e = fmax(fd_worst(&l, l.w, nw, dw, 40, 0.25f, what), fmax(fd_worst(&l, l.x, nx, dx, 40, 0.25f, what), fd_worst(&l, l.b, l.OC, db, 4, 0.25f, what)));
    CHECKF(e < 1e-3, "%s finite differences off by %.3g", what, e);
    free(l.x); free(l.w); free(l.b); free(l.y); free(l.r); free(l.ws); free(dx); free(dw); free(db);
}

static void bn_fwd(lay *l) { glad_batchnorm_train_forward(l->y, l->mean, l->rstd, NULL, NULL, l->x, l->g, l->be, l->B, l->C, l->N, 1e-5f, 0.1f); }

static void fd_batchnorm(void)
{
    lay l = {.fwd = bn_fwd, .B = 3, .C = 4, .N = 10};
    size_t n = (size_t)l.B * l.C * l.N;
    l.ny = n;
    l.x = malloc(n * 4); l.y = malloc(n * 4); l.r = malloc(n * 4); l.g = malloc(16); l.be = malloc(16);
    l.mean = malloc(16); l.rstd = malloc(16);
    fill(l.x, n, 5, 2); fill(l.r, n, 6, 1); fill(l.g, 4, 7, 1); fill(l.be, 4, 8, 1);
    for (size_t i = 0; i < n; i++) l.x[i] += 3.0f * (float)((i / l.N) % l.C);   /* channel means 0, 3, 6, 9 */
    float *dx = calloc(n, 4), *dg = calloc(4, 4), *db = calloc(4, 4);
    bn_fwd(&l);
    glad_batchnorm_train_backward(dx, dg, db, l.r, l.x, l.mean, l.rstd, l.g, l.B, l.C, l.N);
    double e = fmax(fd_worst(&l, l.x, n, dx, 60, 1e-2f, "batchnorm x"),
                    fmax(fd_worst(&l, l.g, 4, dg, 4, 1e-2f, "batchnorm gamma"), fd_worst(&l, l.be, 4, db, 4, 1e-2f, "batchnorm beta")));
    CHECKF(e < 2e-3, "batchnorm finite differences off by %.3g", e);
    /* the output per channel has mean beta and variance gamma^2 (biased) */
    double m = 0, v = 0;
    for (int nn = 0; nn < l.B; nn++)
        for (int i = 0; i < l.N; i++) { double z = l.y[((size_t)nn * l.C + 2) * l.N + i]; m += z; v += z * z; }
    m /= l.B * l.N; v = v / (l.B * l.N) - m * m;
    CHECK_NEAR(m, l.be[2], 1e-5);
    CHECK_NEAR(v, (double)l.g[2] * l.g[2] / (1 + 1e-5 * l.rstd[2] * l.rstd[2]), 1e-4);
    /* running statistics: r = 0.9 r + 0.1 s, unbiased variance */
    float rm[4] = {1, 2, 3, 4}, rv[4] = {1, 1, 2, 2};
    glad_batchnorm_train_forward(l.y, l.mean, l.rstd, rm, rv, l.x, l.g, l.be, l.B, l.C, l.N, 1e-5f, 0.1f);
    double s = 0, ss = 0, M = l.B * l.N;
    for (int nn = 0; nn < l.B; nn++)
        for (int i = 0; i < l.N; i++) s += l.x[((size_t)nn * l.C + 1) * l.N + i];
    for (int nn = 0; nn < l.B; nn++)
        for (int i = 0; i < l.N; i++) { double d = l.x[((size_t)nn * l.C + 1) * l.N + i] - s / M; ss += d * d; }
    CHECK_NEAR(rm[1], 0.9 * 2 + 0.1 * s / M, 1e-5);
    CHECK_NEAR(rv[1], 0.9 * 1 + 0.1 * ss / (M - 1), 1e-5);
    free(l.x); free(l.y); free(l.r); free(l.g); free(l.be); free(l.mean); free(l.rstd); free(dx); free(dg); free(db);
}

static void relu_fwd(lay *l) { glad_relu_forward(l->y, l->x, l->ny); }
static void pool_fwd(lay *l) { glad_maxpool3s2_forward(l->y, l->x, l->B * l->C, l->H, l->W); }

static void fd_relu_pool(void)
{
    size_t n = 200;
    lay l = {.fwd = relu_fwd, .ny = n};
    l.x = malloc(n * 4); l.y = malloc(n * 4); l.r = malloc(n * 4);
    fill(l.x, n, 9, 1); fill(l.r, n, 10, 1);
    for (size_t i = 0; i < n; i++) if (fabsf(l.x[i]) < 0.02f) l.x[i] = 0.5f;   /* no kink within h */
    float *dx = calloc(n, 4);
    glad_relu_backward(dx, l.r, l.x, n);
    CHECKF(fd_worst(&l, l.x, n, dx, 50, 1e-2f, "relu") < 1e-3, "relu finite differences");
    free(l.x); free(l.y); free(l.r); free(dx);
    /* max pool 3x3/s2/p1 on odd and even sizes: distinct values (no ties within h) */
    for (int odd = 0; odd < 2; odd++) {
        lay q = {.fwd = pool_fwd, .B = 2, .C = 3, .H = 9 + odd, .W = 8 + odd};
        size_t nx = (size_t)q.B * q.C * q.H * q.W;
        q.ny = (size_t)q.B * q.C * outsz(q.H, 3, 2, 1) * outsz(q.W, 3, 2, 1);
        q.x = malloc(nx * 4); q.y = malloc(q.ny * 4); q.r = malloc(q.ny * 4);
        for (size_t i = 0; i < nx; i++) q.x[i] = (float)((i * 37) % nx) * 0.1f;
        fill(q.r, q.ny, 11, 1);
        float *d = calloc(nx, 4);
        glad_maxpool3s2_backward(d, q.r, q.x, q.B * q.C, q.H, q.W);
        CHECKF(fd_worst(&q, q.x, nx, d, 80, 1e-2f, "maxpool") < 1e-3, "maxpool finite differences (%dx%d)", q.H, q.W);
        double sd = 0, sr = 0;   /* every output's gradient lands exactly once */
        for (size_t i = 0; i < nx; i++) sd += d[i];
        for (size_t i = 0; i < q.ny; i++) sr += q.r[i];
        CHECK_NEAR(sd, sr, 1e-4);
        free(q.x); free(q.y); free(q.r); free(d);
    }
    /* ties (a window of zeros after a ReLU) go to the first maximum, as PyTorch */
    float z[9] = {0}, one = 1.0f, dz[9] = {0};
    glad_maxpool3s2_backward(dz, &one, z, 1, 2, 2);
    CHECK(dz[0] == 1.0f && dz[1] == 0.0f && dz[2] == 0.0f && dz[3] == 0.0f);
}

static double max_rel_(const float *a, const float *ref, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) { m = fmax(m, fabs((double)a[i] - ref[i])); r = fmax(r, fabs((double)ref[i])); }
    return r > 0 ? m / r : m;
}

/* ---- a tiny net in a weights file without config: stem 8, layer1 one block
 * with a downsample (channels change), layer2 a strided block and an
 * identity block, layer3 a strided block whose channels do not change ---- */
typedef struct { const char *name; int oc, ic, k; } spec;
static const spec TINY[] = {
    {"conv1", 8, 3, 7},
    {"layer1.0.conv1", 4, 8, 1}, {"layer1.0.conv2", 4, 4, 3}, {"layer1.0.conv3", 16, 4, 1}, {"layer1.0.downsample.0", 16, 8, 1},
    {"layer2.0.conv1", 8, 16, 1}, {"layer2.0.conv2", 8, 8, 3}, {"layer2.0.conv3", 32, 8, 1}, {"layer2.0.downsample.0", 32, 16, 1},
    {"layer2.1.conv1", 8, 32, 1}, {"layer2.1.conv2", 8, 8, 3}, {"layer2.1.conv3", 32, 8, 1},
    {"layer3.0.conv1", 8, 32, 1}, {"layer3.0.conv2", 8, 8, 3}, {"layer3.0.conv3", 32, 8, 1}, {"layer3.0.downsample.0", 32, 32, 1},
};
#define NTINY ((int)(sizeof TINY / sizeof *TINY))

static int write_tiny(const char *path)
{
    const char *names[NTINY * 6];
    glad_tensor ts[NTINY * 6];
    const glad_tensor *tp[NTINY * 6];
    char *own[NTINY * 6];
    int n = 0, rc;
    for (int i = 0; i < NTINY; i++) {
        const spec *s = &TINY[i];
        char bn[64];
        size_t ln = strlen(s->name);
        if (strcmp(s->name, "conv1") == 0) snprintf(bn, sizeof bn, "bn1");
        else if (strstr(s->name, "downsample")) snprintf(bn, sizeof bn, "%.*s1", (int)ln - 1, s->name);   /* downsample.1 */
        else snprintf(bn, sizeof bn, "%.*sbn%c", (int)ln - 5, s->name, s->name[ln - 1]);                    /* convK -> bnK */
        for (int j = 0; j < 6; j++) {
            static const char *part[6] = {"weight", "weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
            own[n] = glad_strfmt("%s.%s", j == 0 ? s->name : bn, part[j]);
            glad_tensor *t = &ts[n];
            if (j == 5) {
                int64_t one = 1;
                glad_tensor_alloc(t, GLAD_DT_I64, 0, &one);
                ((int64_t *)t->data)[0] = 3;
            } else if (j == 0) {
                glad_tensor_alloc4(t, GLAD_DT_F32, s->oc, s->ic, s->k, s->k);
                fill(t->data, glad_tensor_numel(t), 100 + i, (float)sqrt(2.0 / (s->ic * s->k * s->k)));
            } else {
                glad_tensor_alloc4(t, GLAD_DT_F32, s->oc, -1, -1, -1);
                float *v = t->data;
                fill(v, (size_t)s->oc, 200 + 10 * i + j, j == 1 ? 0.2f : 0.1f);
                for (int o = 0; o < s->oc; o++) v[o] = j == 1 ? 1 + v[o] : j == 4 ? 1 + 3 * fabsf(v[o]) : v[o];
            }
            names[n] = own[n];
            tp[n] = t;
            n++;
        }
    }
    rc = glad_st_save(path, n, names, tp, 0, NULL, NULL);
    for (int i = 0; i < n; i++) { glad_tensor_free(&ts[i]); free(own[i]); }
    return rc;
}

/* the model as a layer: y = layer1..nl outputs concatenated */
static glad_resnet_train *g_t;
static int g_nl, g_B = 2, g_H = 20, g_W = 19;
static size_t g_off[4];
static float *g_out[3];

static void net_fwd(lay *l)
{
    int layers[3] = {1, 2, 3};
    for (int i = 0; i < g_nl; i++) g_out[i] = l->y + g_off[i];
    if (glad_resnet_train_forward(g_t, 0, l->x, g_B, g_H, g_W, g_nl, layers, g_out, 0)) fprintf(stderr, "forward: %s\n", glad_error_detail());
}

/* whole net (nl 3) or the stem and one Bottleneck with a downsample (nl 1):
 * every tensor of those layers probed, and input pixels */
static void fd_net(const char *path, int nl)
{
    CHECKF(glad_resnet_train_load(&g_t, path) == 0, "%s", glad_error_detail());
    if (!g_t) return;
    g_nl = nl;
    size_t tot = 0;
    for (int L = 1; L <= nl; L++) {
        int C, h, w;
        CHECK(glad_resnet_train_out_shape(g_t, L, g_H, g_W, &C, &h, &w) == 0);
        g_off[L - 1] = tot;
        tot += (size_t)g_B * C * h * w;
    }
    size_t nx = (size_t)g_B * 3 * g_H * g_W;
    lay l = {.fwd = net_fwd, .ny = tot};
    l.x = malloc(nx * 4); l.y = malloc(tot * 4); l.r = malloc(tot * 4);
    fill(l.x, nx, 300, 1); fill(l.r, tot, 301, 1);
    float *dx = calloc(nx, 4);
    const float *dout[3];
    int layers[3] = {1, 2, 3};
    net_fwd(&l);
    for (int i = 0; i < nl; i++) dout[i] = l.r + g_off[i];
    glad_resnet_train_zero_grad(g_t);
    CHECKF(glad_resnet_train_backward(g_t, 0, nl, layers, dout, dx) == 0, "%s", glad_error_detail());
    double worst = 0;
    int probed = 0, zero = 0;
    g_kinks = g_probes = 0;
    char wn[128] = "";
    for (int i = 0; i < glad_resnet_train_ntensors(g_t); i++) {
        glad_resnet_tensor q;
        glad_resnet_train_tensor(g_t, i, &q);
        if (!q.grad) continue;
        if (nl == 1 && strncmp(q.name, "layer1.", 7) != 0 && strncmp(q.name, "conv1", 5) != 0 && strncmp(q.name, "bn1", 3) != 0) {
            double s = 0;   /* layers past the loss get no gradient */
            for (size_t k = 0; k < q.n; k++) s += fabs(q.grad[k]);
            zero += s == 0;
            continue;
        }
        double e = fd_worst(&l, q.data, q.n, q.grad, q.n < 6 ? (int)q.n : 6, 5e-4f, q.name);
        probed++;
        if (e > worst) { worst = e; snprintf(wn, sizeof wn, "%s", q.name); }
    }
    double ex = fd_worst(&l, l.x, nx, dx, 30, 2e-3f, "input");
    CHECKF(worst < 1e-2, "net (%d layers): worst parameter finite difference %.3g (%s)", nl, worst, wn);
    CHECKF(ex < 1e-2, "net (%d layers): input finite differences off by %.3g", nl, ex);
    CHECK(probed >= (nl == 1 ? 15 : 48));
    CHECKF(g_kinks * 5 < g_probes, "%d of %d probes crossed a kink", g_kinks, g_probes);
    if (nl == 1) CHECK(zero == 33);
    fprintf(stderr, "  fd net (%d layers): %d tensors, worst %.2g (%s), input %.2g; %d of %d probes set aside (kink within h)\n", nl,
            probed, worst, wn, ex, g_kinks, g_probes);
    /* a second backward on the same forward doubles the gradients */
    glad_resnet_tensor q;
    CHECK(glad_resnet_train_find(g_t, "layer1.0.conv2.weight", &q) == 0);
    float g0 = q.grad[5];
    net_fwd(&l);   /* the probes left the tape at a perturbed point */
    CHECK(glad_resnet_train_backward(g_t, 0, nl, layers, dout, NULL) == 0);
    CHECK_NEAR(q.grad[5], 2 * g0, 1e-6 * fabs(g0) + 1e-12);
    /* 1 and 3 threads: the same gradients up to rounding (BLAS blocking may differ) */
    if (nl == 3) {
        size_t np;
        float *g, *keep;
        glad_resnet_train_params(g_t, &g, &np);
        double e[2] = {0, 0};
        keep = malloc(np * 4);
        int nt = omp_get_max_threads();
        for (int r = 0; r < 3; r++) {
            omp_set_num_threads(r == 0 ? 2 : r == 1 ? 1 : 3);
            net_fwd(&l);
            glad_resnet_train_zero_grad(g_t);
            glad_resnet_train_backward(g_t, 0, nl, layers, dout, NULL);
            if (r == 0) memcpy(keep, g, np * 4);
            else e[r - 1] = max_rel_(g, keep, np);
        }
        omp_set_num_threads(nt);
        CHECKF(e[0] < 1e-5 && e[1] < 1e-5, "gradients on 1 / 3 threads differ by %.3g / %.3g", e[0], e[1]);
        free(keep);
    }
    free(l.x); free(l.y); free(l.r); free(dx);
    glad_resnet_train_free(g_t);
    g_t = NULL;
}

/* DDAD's loss sum_l 1 - cos(f_l[0], f_l[1]) and its gradient d (both records) */
static double ddad_loss(const float *f, size_t half, float *d)
{
    const float *a = f, *b = f + half;
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < half; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
    double na = sqrt(aa), nb = sqrt(bb), c = ab / (na * nb);
    /* d cos / da = b / (|a||b|) - cos a / |a|^2, and symmetrically */
    for (size_t i = 0; i < half; i++) {
        d[i] = (float)-(b[i] / (na * nb) - c * a[i] / aa);
        d[half + i] = (float)-(a[i] / (na * nb) - c * b[i] / bb);
    }
    return 1 - c;
}

static float *get(glad_st *st, const char *key, size_t *n)
{
    glad_tensor t;
    if (glad_st_get_f32(st, key, &t)) return NULL;
    if (n) *n = glad_tensor_numel(&t);
    return t.data;
}

/* two 0: one forward of both records; 1: DDAD's two forwards of one record
 * each, on two tapes (reference keys prefixed "two.") */
static void pytorch_parity(int two)
{
    const char *pre = two ? "two." : "";
    char wp[512], cp[512];
    glad_st *st;
    fixture(wp, sizeof wp, "wide-resnet.weights.safetensors");
    snprintf(cp, sizeof cp, "tests/fixtures/resnet-bwd.case.safetensors");
    if (glad_st_open(&st, cp)) { CHECKF(0, "%s missing", cp); return; }
    glad_resnet_train *t;
    CHECKF(glad_resnet_train_load(&t, wp) == 0, "%s", glad_error_detail());
    size_t nx;
    char kl[32], kd[32];
    snprintf(kl, sizeof kl, "%sloss", pre);
    snprintf(kd, sizeof kd, "%sdx", pre);
    float *x = get(st, "x", &nx), *loss_ref = get(st, kl, NULL), *dx_ref = get(st, kd, NULL);
    int B = 2, H = 64, W = 64, layers[3] = {1, 2, 3};
    CHECK(x && nx == (size_t)B * 3 * H * W && loss_ref && dx_ref);
    if (!x || !loss_ref || !dx_ref) return;
    size_t sz[3];
    float *f[3], *d[3];
    for (int L = 0; L < 3; L++) {
        int C, h, w;
        glad_resnet_train_out_shape(t, L + 1, H, W, &C, &h, &w);
        sz[L] = (size_t)B * C * h * w;
        f[L] = malloc(sz[L] * 4);
        d[L] = malloc(sz[L] * 4);
    }
    if (two)
        for (int r = 0; r < 2; r++) {
            float *fr[3];
            for (int L = 0; L < 3; L++) fr[L] = f[L] + r * sz[L] / 2;
            CHECKF(glad_resnet_train_forward(t, r, x + r * nx / 2, 1, H, W, 3, layers, fr, 1) == 0, "%s", glad_error_detail());
        }
    else CHECKF(glad_resnet_train_forward(t, 0, x, B, H, W, 3, layers, f, 1) == 0, "%s", glad_error_detail());
    double loss = 0;
    for (int L = 0; L < 3; L++) loss += ddad_loss(f[L], sz[L] / 2, d[L]);
    CHECKF(fabs(loss - loss_ref[0]) <= 1e-4 * fabs(loss_ref[0]), "loss %.8g vs %.8g", loss, loss_ref[0]);
    float *dx = calloc(nx, 4);
    glad_resnet_train_zero_grad(t);
    if (two)
        for (int r = 1; r >= 0; r--) {
            const float *dr[3];
            for (int L = 0; L < 3; L++) dr[L] = d[L] + r * sz[L] / 2;
            CHECKF(glad_resnet_train_backward(t, r, 3, layers, dr, dx + r * nx / 2) == 0, "%s", glad_error_detail());
        }
    else CHECKF(glad_resnet_train_backward(t, 0, 3, layers, (const float *const *)d, dx) == 0, "%s", glad_error_detail());
    double worst = 0, ex = max_rel_(dx, dx_ref, nx);
    int missing = 0, compared = 0, stats_bad = 0;
    char wn[160] = "", key[160];
    for (int i = 0; i < glad_resnet_train_ntensors(t); i++) {
        glad_resnet_tensor q;
        glad_resnet_train_tensor(t, i, &q);
        size_t n;
        if (!q.grad) {   /* running statistics after the train() forward(s) */
            snprintf(key, sizeof key, "%s%s", pre, q.name);
            float *r = get(st, key, &n);
            if (!r || n != q.n) { missing++; free(r); continue; }
            double e = max_rel_(q.data, r, n);
            if (e > 1e-5) { stats_bad++; fprintf(stderr, "  %s: rel err %.3g\n", q.name, e); }
            free(r);
            continue;
        }
        double e = -1;
        snprintf(key, sizeof key, "%sgrad.%s", pre, q.name);
        float *r = get(st, key, &n);
        if (r && n == q.n) e = max_rel_(q.grad, r, n);
        else if (!r) {
            snprintf(key, sizeof key, "%sgsample.%s", pre, q.name);
            float *smp = get(st, key, &n);
            snprintf(key, sizeof key, "%sgproj.%s", pre, q.name);
            size_t np;
            float *pj = get(st, key, &np);
            if (smp && n == 512 && pj && np == 5) {
                float mine[512];
                for (size_t k = 0; k < 512; k++) mine[k] = q.grad[k * q.n / 512];
                e = max_rel_(mine, smp, 512);
                double p[5] = {0}, nrm = pj[4];
                for (size_t k = 0; k < q.n; k++) {
                    for (int j = 0; j < 4; j++) p[j] += q.grad[k] * (2 * glad_rng_uniform_at((uint64_t)j + 1, k) - 1);
                    p[4] += (double)q.grad[k] * q.grad[k];
                }
                p[4] = sqrt(p[4]);
                /* the projections' errors are about |g - ref| / sqrt(3): relative to the norm */
                for (int j = 0; j < 5; j++) e = fmax(e, fabs(p[j] - pj[j]) / nrm);
            }
            free(smp); free(pj);
        }
        free(r);
        if (e < 0) { missing++; fprintf(stderr, "  no reference for %s\n", q.name); continue; }
        compared++;
        if (e > worst) { worst = e; snprintf(wn, sizeof wn, "%s", q.name); }
    }
    CHECKF(missing == 0, "%d tensors without a reference", missing);
    CHECK(compared == 3 * 16);   /* 16 conv + BatchNorm units: weight, gamma, beta */
    CHECKF(worst < 1e-4, "worst parameter gradient rel err %.3g (%s)", worst, wn);
    CHECKF(ex < 1e-4, "input gradient rel err %.3g", ex);
    CHECKF(stats_bad == 0, "%d running statistics off", stats_bad);
    fprintf(stderr, "  pytorch (%s): loss %.8g (ref %.8g), worst param grad %.2g (%s), input grad %.2g\n",
            two ? "two forwards" : "one forward", loss, loss_ref[0], worst, wn, ex);
    if (two) goto done;

    /* the adapted file: glad_resnet_load reads it, running statistics and
     * num_batches_tracked (1 + the source's) included */
    char out[64];
    snprintf(out, sizeof out, "/tmp/glad-test-resnet-train-%d.safetensors", (int)getpid());
    CHECKF(glad_resnet_train_save(t, out) == 0, "%s", glad_error_detail());
    glad_st *sv;
    CHECK(glad_st_open(&sv, out) == 0);
    glad_tensor nbt;
    CHECK(glad_st_get(sv, "layer2.1.bn2.num_batches_tracked", &nbt) == 0 && nbt.dtype == GLAD_DT_I64);
    glad_st *src;
    glad_tensor nbt0;
    CHECK(glad_st_open(&src, wp) == 0 && glad_st_get(src, "layer2.1.bn2.num_batches_tracked", &nbt0) == 0);
    CHECK(((int64_t *)nbt.data)[0] == ((int64_t *)nbt0.data)[0] + 1);
    float *rv = get(sv, "layer3.0.downsample.1.running_var", &nx), *rvr = get(st, "layer3.0.downsample.1.running_var", NULL);
    CHECK(rv && rvr && max_rel_(rv, rvr, nx) < 1e-5);
    CHECK(glad_st_meta(sv, "config") && strcmp(glad_st_meta(sv, "config"), glad_st_meta(src, "config")) == 0);
    glad_tensor_free(&nbt); glad_tensor_free(&nbt0); free(rv); free(rvr);
    glad_st_close(sv);
    glad_st_close(src);
    glad_resnet *r;
    CHECKF(glad_resnet_load(&r, out) == 0, "%s", glad_error_detail());
    glad_resnet_free(r);
    unlink(out);
done:
    for (int L = 0; L < 3; L++) { free(f[L]); free(d[L]); }
    free(x); free(loss_ref); free(dx_ref); free(dx);
    glad_resnet_train_free(t);
    glad_st_close(st);
}

/* a file saved without training gives glad_resnet bit-identical features */
static void save_round_trip(void)
{
    char wp[512];
    fixture(wp, sizeof wp, "wide-resnet.weights.safetensors");
    char out[64];
    snprintf(out, sizeof out, "/tmp/glad-test-resnet-rt-%d.safetensors", (int)getpid());
    glad_resnet_train *t;
    CHECKF(glad_resnet_train_load(&t, wp) == 0, "%s", glad_error_detail());
    if (!t) return;
    CHECK(glad_resnet_train_nlayers(t) == 3);
    CHECKF(glad_resnet_train_save(t, out) == 0, "%s", glad_error_detail());
    glad_resnet *a, *b;
    CHECK(glad_resnet_load(&a, wp) == 0);
    CHECKF(glad_resnet_load(&b, out) == 0, "%s", glad_error_detail());
    int C, h, w, L3[1] = {3};
    glad_resnet_out_shape(a, 3, 32, 32, &C, &h, &w);
    size_t n = (size_t)2 * C * h * w, nx = 2 * 3 * 32 * 32;
    float *x = malloc(nx * 4), *ya = malloc(n * 4), *yb = malloc(n * 4);
    fill(x, nx, 400, 1);
    CHECK(glad_resnet_forward(a, x, 2, 32, 32, 1, L3, &ya) == 0 && glad_resnet_forward(b, x, 2, 32, 32, 1, L3, &yb) == 0);
    CHECK(memcmp(ya, yb, n * 4) == 0);
    /* and glad_resnet_train_load reads it back: the same tensors */
    glad_resnet_train *u;
    CHECKF(glad_resnet_train_load(&u, out) == 0, "%s", glad_error_detail());
    int same = u && glad_resnet_train_ntensors(u) == glad_resnet_train_ntensors(t);
    for (int i = 0; same && i < glad_resnet_train_ntensors(t); i++) {
        glad_resnet_tensor p, q;
        glad_resnet_train_tensor(t, i, &p);
        glad_resnet_train_tensor(u, i, &q);
        same = strcmp(p.name, q.name) == 0 && p.n == q.n && memcmp(p.data, q.data, p.n * 4) == 0 && !p.grad == !q.grad;
    }
    CHECK(same);
    /* the flat parameter array is the parameter tensors back to back */
    size_t np;
    float *g, *p = glad_resnet_train_params(t, &g, &np);
    glad_resnet_tensor first;
    glad_resnet_train_tensor(t, 0, &first);
    CHECK(p == first.data && g == first.grad && np > 900000 && np < 1000000);
    free(x); free(ya); free(yb);
    glad_resnet_free(a); glad_resnet_free(b);
    glad_resnet_train_free(t); glad_resnet_train_free(u);
    unlink(out);
}

/* Two tapes (DDAD: the reconstruction and the target, each forward with its
 * own batch statistics, one backward of the coupled loss): the same
 * gradients as each forward followed by its own backward; the inputs
 * differ in size, so the backward of tape 0 follows a forward of another size */
static void two_tapes(const char *tiny)
{
    glad_resnet_train *t;
    CHECKF(glad_resnet_train_load(&t, tiny) == 0, "%s", glad_error_detail());
    if (!t) return;
    int L[3] = {1, 2, 3}, S[2][2] = {{20, 19}, {24, 24}};
    float *x[2], *y[2][3], *dy[2][3], *dx[2][2];
    for (int i = 0; i < 2; i++) {
        size_t nx = (size_t)2 * 3 * S[i][0] * S[i][1];
        x[i] = malloc(nx * 4);
        fill(x[i], nx, 500 + i, 1);
        dx[i][0] = calloc(nx, 4); dx[i][1] = calloc(nx, 4);
        for (int l = 0; l < 3; l++) {
            int C, h, w;
            glad_resnet_train_out_shape(t, l + 1, S[i][0], S[i][1], &C, &h, &w);
            y[i][l] = malloc((size_t)2 * C * h * w * 4);
            dy[i][l] = malloc((size_t)2 * C * h * w * 4);
            fill(dy[i][l], (size_t)2 * C * h * w, 600 + 3 * i + l, 1);
        }
    }
    size_t np;
    float *g, *seq;
    glad_resnet_train_params(t, &g, &np);
    seq = malloc(np * 4);
    glad_resnet_train_zero_grad(t);
    for (int i = 0; i < 2; i++) {   /* one tape, forward then backward */
        CHECK(glad_resnet_train_forward(t, 0, x[i], 2, S[i][0], S[i][1], 3, L, y[i], 0) == 0);
        CHECK(glad_resnet_train_backward(t, 0, 3, L, (const float *const *)dy[i], dx[i][0]) == 0);
    }
    memcpy(seq, g, np * 4);
    glad_resnet_train_zero_grad(t);
    for (int i = 0; i < 2; i++) CHECK(glad_resnet_train_forward(t, i, x[i], 2, S[i][0], S[i][1], 3, L, y[i], 0) == 0);
    for (int i = 1; i >= 0; i--) CHECK(glad_resnet_train_backward(t, i, 3, L, (const float *const *)dy[i], dx[i][1]) == 0);
    double e = max_rel_(g, seq, np);
    CHECKF(e < 1e-5, "two tapes vs one: parameter gradients differ by %.3g", e);
    for (int i = 0; i < 2; i++) {
        size_t nx = (size_t)2 * 3 * S[i][0] * S[i][1];
        CHECK(memcmp(dx[i][0], dx[i][1], nx * 4) == 0);   /* each input's gradient comes from its tape alone */
        free(x[i]); free(dx[i][0]); free(dx[i][1]);
        for (int l = 0; l < 3; l++) { free(y[i][l]); free(dy[i][l]); }
    }
    CHECK(glad_resnet_train_backward(t, 2, 3, L, (const float *const *)dy[0], NULL) == GLAD_EINVAL);
    free(seq);
    glad_resnet_train_free(t);
}

static void errors(const char *tiny)
{
    glad_resnet_train *t;
    CHECK(glad_resnet_train_load(&t, "/nonexistent/x.safetensors") == GLAD_EIO);
    CHECK(glad_resnet_train_load(&t, tiny) == 0);
    int layers[1] = {3};
    const float *d[1] = {NULL};
    float x[2 * 3 * 20 * 19] = {0}, y[2 * 16 * 5 * 5];   /* the largest output asked: layer1 of 2 records */
    float *out[1] = {y};
    CHECK(glad_resnet_train_backward(t, 0, 1, layers, d, NULL) == GLAD_EINVAL);   /* no forward yet */
    CHECK(strstr(glad_error_detail(), "no forward") != NULL);
    /* one record at 20x19 leaves 2x2 at layer3: fine; a 4x4 input leaves 1 value */
    CHECK(glad_resnet_train_forward(t, 0, x, 1, 20, 19, 1, layers, out, 0) == 0);
    CHECK(glad_resnet_train_forward(t, 0, x, 1, 4, 4, 1, layers, out, 0) == GLAD_EINVAL);
    CHECK(strstr(glad_error_detail(), "one value per channel") != NULL);
    int bad[1] = {4};
    CHECK(glad_resnet_train_forward(t, 0, x, 1, 20, 19, 1, bad, out, 0) == GLAD_EINVAL);
    /* backward of a layer deeper than the forward computed */
    int l1[1] = {1};
    CHECK(glad_resnet_train_forward(t, 0, x, 2, 20, 19, 1, l1, out, 0) == 0);
    d[0] = y;
    CHECK(glad_resnet_train_backward(t, 0, 1, layers, d, NULL) == GLAD_EINVAL);
    glad_resnet_tensor q;
    CHECK(glad_resnet_train_find(t, "nope", &q) == GLAD_ENOTFOUND);
    glad_resnet_train_free(t);
}

int main(void)
{
    fd_conv(7, 2, 3);
    fd_conv(3, 2, 1);
    fd_conv(1, 2, 0);
    fd_batchnorm();
    fd_relu_pool();
    char tiny[64];
    snprintf(tiny, sizeof tiny, "/tmp/glad-test-resnet-tiny-%d.safetensors", (int)getpid());
    CHECKF(write_tiny(tiny) == 0, "%s", glad_error_detail());
    fd_net(tiny, 1);
    fd_net(tiny, 3);
    two_tapes(tiny);
    errors(tiny);
    unlink(tiny);
    pytorch_parity(0);
    pytorch_parity(1);
    save_round_trip();
    return check_done();
}
