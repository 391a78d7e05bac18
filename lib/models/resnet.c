/* resnet.c - torchvision Bottleneck ResNet inference (resnet.h): loading with
 * BatchNorm folded into the convolutions, and the forward pass up to a chosen
 * layer. Not a trainer: no backward, no tape.
 *
 * Folding (eval mode, eps 1e-5): bn(conv(x)) = s * (W x + bias - mean) + beta
 * with s = gamma / sqrt(var + eps), so W' = s W and b' = beta + s (bias - mean).
 *
 * A Bottleneck block is  out = relu(bn3(conv3(h)) + identity),
 * h = relu(bn2(conv2(relu(bn1(conv1(x)))))), conv1/conv3 1x1, conv2 3x3 with
 * the block's stride, identity = x or bn(downsample conv1x1 stride s (x)).
 * 1x1 convolutions are plain GEMMs (strided ones on a subsampled copy), 3x3
 * stride-1 ones Winograd F(2x2,3x3) (lib/nn/winograd.h), the 7x7 stem and
 * strided 3x3 ones im2col + GEMM; bias, ReLU and the residual add happen in
 * one pass after each GEMM; with a downsample the conv3 GEMM accumulates onto
 * the projection (beta = 1), the two biases pre-summed at load. Threading:
 * see the comment above the forward pass. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "models/resnet.h"
#include "nn/nn.h"
#include "nn/winograd.h"
#include "io/safetensors.h"

#define MAXL 4
#define MAXBLOCKS 1024
#define MAXCH (1 << 20)
#define BN_EPS 1e-5

typedef struct { float *w, *b, *U; int oc, ic, k, stride, pad; } conv;   /* w (oc,ic,k,k), b (oc), BN folded;
                                                                       * U: Winograd weights replacing w */
typedef struct { conv c1, c2, c3, ds; int has_ds; } block;            /* ds.b includes c3's bias */

struct glad_resnet {
    conv stem;
    int nlayers, nblocks[MAXL];
    block *blk[MAXL];
    float *scratch;     /* one record's buffers, reused across calls (see scratch()) */
    size_t nscratch;
};

typedef struct { const glad_st *st; const char *path; } loader;

static int conv_out(int n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }

/* A float tensor of rank nd; dims[i] < 0 accepts any size >= 1 and is filled in. */
static int get_tensor(const loader *ld, const char *key, int nd, int *dims, float **out)
{
    const glad_st_entry *e = glad_st_find(ld->st, key);
    if (!e) return glad_fail(GLAD_ENOTFOUND, "%s: tensor '%s' missing", ld->path, key);
    if (e->dtype != GLAD_DT_F32 && e->dtype != GLAD_DT_F16 && e->dtype != GLAD_DT_F64)
        return glad_fail(GLAD_EDTYPE, "%s: tensor '%s' is not a float tensor", ld->path, key);
    int ok = e->ndim == nd;
    for (int i = 0; ok && i < nd; i++)
        ok = dims[i] < 0 ? e->shape[i] >= 1 && e->shape[i] <= MAXCH : e->shape[i] == dims[i];
    if (!ok) {
        char got[160] = "", want[160] = "";
        size_t a = 0, b = 0;
        for (int i = 0; i < e->ndim && a < sizeof got; i++) a += (size_t)snprintf(got + a, sizeof got - a, "%s%lld", i ? "," : "", (long long)e->shape[i]);
        for (int i = 0; i < nd && b < sizeof want; i++) {
            if (dims[i] < 0) b += (size_t)snprintf(want + b, sizeof want - b, "%s*", i ? "," : "");
            else b += (size_t)snprintf(want + b, sizeof want - b, "%s%d", i ? "," : "", dims[i]);
        }
        return glad_fail(GLAD_ESHAPE, "%s: tensor '%s' has shape [%s], expected [%s]", ld->path, key, got, want);
    }
    for (int i = 0; i < nd; i++) dims[i] = (int)e->shape[i];
    glad_tensor t;
    int rc = glad_st_get_f32(ld->st, key, &t);
    if (rc) return glad_fail(rc, "%s: tensor '%s': %s", ld->path, key, glad_strerror(rc));
    float *v = t.data;
    size_t n = glad_tensor_numel(&t);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            glad_tensor_free(&t);
            return glad_fail(GLAD_ENAN, "%s: tensor '%s' has non-finite values", ld->path, key);
        }
    *out = v;   /* ownership of t.data moves to the caller */
    return 0;
}

static void conv_free(conv *c) { free(c->w); free(c->b); free(c->U); c->w = c->b = c->U = NULL; }

/* conv `cn` (k x k, no bias in torchvision, an optional one accepted) followed
 * by BatchNorm `bn`, folded; oc < 0 infers the output channels. */
static int load_conv(const loader *ld, conv *c, const char *cn, const char *bn, int oc, int ic, int k, int stride, int pad)
{
    char key[256];
    int d[4] = {oc, ic, k, k}, rc;
    float *bias = NULL, *g = NULL, *be = NULL, *mu = NULL, *var = NULL;
    memset(c, 0, sizeof *c);
    snprintf(key, sizeof key, "%s.weight", cn);
    GLAD_TRY(get_tensor(ld, key, 4, d, &c->w));
    c->oc = d[0]; c->ic = ic; c->k = k; c->stride = stride; c->pad = pad;
    int n1[1] = {c->oc};
    snprintf(key, sizeof key, "%s.bias", cn);
    if (glad_st_find(ld->st, key)) GLAD_TRYG(rc, get_tensor(ld, key, 1, n1, &bias), out);
    static const char *part[4] = {"weight", "bias", "running_mean", "running_var"};
    float **dst[4] = {&g, &be, &mu, &var};
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "%s.%s", bn, part[i]);
        GLAD_TRYG(rc, get_tensor(ld, key, 1, n1, dst[i]), out);
    }
    if (!(c->b = malloc(sizeof(float) * (size_t)c->oc))) { rc = glad_fail(GLAD_ENOMEM, "%s: out of memory", ld->path); goto out; }
    size_t per = (size_t)ic * k * k;
    for (int o = 0; o < c->oc; o++) {
        if (var[o] < 0) {
            rc = glad_fail(GLAD_ERANGE, "%s: tensor '%s.running_var' is negative", ld->path, bn);
            goto out;
        }
        double s = g[o] / sqrt((double)var[o] + BN_EPS);
        float *w = c->w + o * per;
        for (size_t i = 0; i < per; i++) w[i] = (float)(w[i] * s);
        c->b[o] = (float)(be[o] + s * ((bias ? bias[o] : 0.0) - mu[o]));
    }
    rc = 0;
out:
    free(bias); free(g); free(be); free(mu); free(var);
    if (rc) conv_free(c);
    return rc;
}

/* __metadata__["config"]: fills layers (count in *nl) and width_per_group. */
static int parse_config(const loader *ld, const char *js, int *layers, int *nl, int *wpg)
{
    glad_json *j = NULL;
    if (glad_json_parse(js, strlen(js), &j) || j->type != GLAD_JSON_OBJ) {
        if (j) glad_json_free(j);
        return glad_fail(GLAD_EFORMAT, "%s: __metadata__ 'config' is not a JSON object", ld->path);
    }
    int rc = 0;
    const char *blk = glad_json_str(glad_json_get(j, "block"), "bottleneck");
    const glad_json *L = glad_json_get(j, "layers");
    double w = glad_json_num(glad_json_get(j, "width_per_group"), 64), g = glad_json_num(glad_json_get(j, "groups"), 1);
    if (strcmp(blk, "bottleneck") != 0) {
        rc = glad_fail(GLAD_EUNSUPPORTED, "%s: config 'block' is '%s' (only bottleneck is supported)", ld->path, blk);
    } else if (g != 1) {
        rc = glad_fail(GLAD_EUNSUPPORTED, "%s: config 'groups' must be 1", ld->path);
    } else if (!(w >= 1 && w <= 65536 && w == floor(w))) {
        rc = glad_fail(GLAD_ERANGE, "%s: config 'width_per_group' out of range", ld->path);
    } else if (!L || L->type != GLAD_JSON_ARR || L->n < 3 || L->n > MAXL) {
        rc = glad_fail(GLAD_EFORMAT, "%s: config 'layers' must list 3 or 4 block counts", ld->path);
    } else {
        *nl = L->n;
        *wpg = (int)w;
        for (int i = 0; i < L->n && !rc; i++) {
            double v = glad_json_num(glad_json_at(L, i), -1);
            if (!(v >= 1 && v <= MAXBLOCKS && v == floor(v))) rc = glad_fail(GLAD_ERANGE, "%s: config 'layers'[%d] out of range", ld->path, i);
            else layers[i] = (int)v;   /* only once in range: casting 1e300 is undefined */
        }
    }
    glad_json_free(j);
    return rc;
}

void glad_resnet_free(glad_resnet *r)
{
    if (!r) return;
    free(r->scratch);
    conv_free(&r->stem);
    for (int L = 0; L < MAXL; L++) {
        if (!r->blk[L]) continue;
        for (int b = 0; b < r->nblocks[L]; b++) {
            block *k = &r->blk[L][b];
            conv_free(&k->c1); conv_free(&k->c2); conv_free(&k->c3); conv_free(&k->ds);
        }
        free(r->blk[L]);
    }
    free(r);
}

static int load_layer(const loader *ld, glad_resnet *r, int L, int nb, int width, int outc, int *inplanes, int wino)
{
    char cn[96], bn[96];
    int stride = L == 0 ? 1 : 2;
    if (!(r->blk[L] = calloc((size_t)nb, sizeof(block)))) return glad_fail(GLAD_ENOMEM, "%s: out of memory", ld->path);
    for (int b = 0; b < nb; b++) {
        block *k = &r->blk[L][b];
        int s = b == 0 ? stride : 1;
        r->nblocks[L] = b + 1;   /* so glad_resnet_free releases what is loaded */
        snprintf(cn, sizeof cn, "layer%d.%d.conv1", L + 1, b); snprintf(bn, sizeof bn, "layer%d.%d.bn1", L + 1, b);
        GLAD_TRY(load_conv(ld, &k->c1, cn, bn, width, *inplanes, 1, 1, 0));
        width = k->c1.oc;
        snprintf(cn, sizeof cn, "layer%d.%d.conv2", L + 1, b); snprintf(bn, sizeof bn, "layer%d.%d.bn2", L + 1, b);
        GLAD_TRY(load_conv(ld, &k->c2, cn, bn, width, width, 3, s, 1));
        /* Winograd: measured 1.4-1.9x faster than im2col + GEMM on one core for
         * 32..1024 channels on 8x8..64x64 maps */
        if (s == 1 && wino) {
            if (!(k->c2.U = malloc(sizeof(float) * 16 * (size_t)width * width))) return glad_fail(GLAD_ENOMEM, "%s: out of memory", ld->path);
            glad_winograd3x3_weights(k->c2.U, k->c2.w, width, width);
            free(k->c2.w);
            k->c2.w = NULL;
        }
        snprintf(cn, sizeof cn, "layer%d.%d.conv3", L + 1, b); snprintf(bn, sizeof bn, "layer%d.%d.bn3", L + 1, b);
        GLAD_TRY(load_conv(ld, &k->c3, cn, bn, outc, width, 1, 1, 0));
        outc = k->c3.oc;
        snprintf(cn, sizeof cn, "layer%d.%d.downsample.0", L + 1, b); snprintf(bn, sizeof bn, "layer%d.%d.downsample.1", L + 1, b);
        char key[128];
        snprintf(key, sizeof key, "%s.weight", cn);
        /* torchvision adds the projection exactly when the shape changes */
        if (s != 1 || *inplanes != outc || glad_st_find(ld->st, key)) {
            GLAD_TRY(load_conv(ld, &k->ds, cn, bn, outc, *inplanes, 1, s, 0));
            k->has_ds = 1;
            for (int o = 0; o < outc; o++) k->ds.b[o] += k->c3.b[o];
        }
        *inplanes = outc;
    }
    return 0;
}

int glad_resnet_load(glad_resnet **out, const char *path)
{
    return glad_resnet_load_winograd(out, path, 1);
}

int glad_resnet_load_winograd(glad_resnet **out, const char *path, int wino)
{
    glad_st *st;
    glad_error_clear();
    int rc = glad_st_open(&st, path);
    /* the reader's own detail when it gave one */
    if (rc) return glad_error_detail()[0] ? rc : glad_fail(rc, "%s: %s", path, glad_strerror(rc));
    loader ld = {st, path};
    int cfg_layers[MAXL] = {0}, cfg_nl = 0, wpg = 64;
    const char *cj = glad_st_meta(st, "config");
    glad_resnet *r = NULL;
    if (cj) GLAD_TRYG(rc, parse_config(&ld, cj, cfg_layers, &cfg_nl, &wpg), fail);
    if (!(r = calloc(1, sizeof *r))) { rc = glad_fail(GLAD_ENOMEM, "%s: out of memory", path); goto fail; }
    GLAD_TRYG(rc, load_conv(&ld, &r->stem, "conv1", "bn1", -1, 3, 7, 2, 3), fail);
    int inplanes = r->stem.oc;
    for (int L = 0; L < MAXL; L++) {
        char key[64];
        snprintf(key, sizeof key, "layer%d.0.conv1.weight", L + 1);
        /* layer4 is optional (feature extractors stop at layer3) */
        if (L == 3 && (!glad_st_find(st, key) || (cj && cfg_nl < 4))) break;
        int nb = 0;
        if (cj) nb = cfg_layers[L];
        else
            for (; nb < MAXBLOCKS; nb++) {
                snprintf(key, sizeof key, "layer%d.%d.conv1.weight", L + 1, nb);
                if (!glad_st_find(st, key)) break;
            }
        if (nb == 0) nb = 1;   /* let load_conv name the missing layer%d.0 key */
        /* bottleneck width = planes * width_per_group / 64, planes = 64 * 2^L, output 4 * planes */
        int planes = 64 << L;
        int width = cj ? (int)((long)planes * wpg / 64) : -1, outc = cj ? 4 * planes : -1;
        GLAD_TRYG(rc, load_layer(&ld, r, L, nb, width, outc, &inplanes, wino), fail);
        r->nlayers = L + 1;
    }
    glad_st_close(st);
    *out = r;
    return 0;
fail:
    glad_resnet_free(r);
    glad_st_close(st);
    return rc;
}

int glad_resnet_nlayers(const glad_resnet *r) { return r->nlayers; }

/* Walks the shapes of one record up to layer L, collecting the scratch sizes
 * (floats) and the FLOPs; GLAD_ERANGE when a size overflows. */
typedef struct { size_t act, tmp, ws, gat; double flops; int C, h, w; } plan;

static int grow(size_t *m, size_t a, size_t b, size_t c)
{
    size_t n;
    GLAD_TRY(glad_mul_size(a, b, &n));
    GLAD_TRY(glad_mul_size(n, c, &n));
    if (n > INT_MAX || n > GLAD_MAX_ALLOC / sizeof(float)) return GLAD_ERANGE;
    if (n > *m) *m = n;
    return 0;
}

static void conv_flops(plan *p, const conv *c, int ho, int wo) { p->flops += 2.0 * c->oc * c->ic * c->k * c->k * ho * wo; }

static int make_plan(const glad_resnet *r, int L, int H, int W, plan *p)
{
    memset(p, 0, sizeof *p);
    if (L < 1 || L > r->nlayers || H < 1 || W < 1 || H > 65536 || W > 65536) return GLAD_EINVAL;
    size_t dummy = 0;
    GLAD_TRY(grow(&dummy, 3, (size_t)H, (size_t)W));
    int h = conv_out(H, 7, 2, 3), w = conv_out(W, 7, 2, 3);
    GLAD_TRY(grow(&p->act, (size_t)r->stem.oc, (size_t)h, (size_t)w));
    GLAD_TRY(grow(&p->ws, 3 * 49, (size_t)h, (size_t)w));
    conv_flops(p, &r->stem, h, w);
    h = conv_out(h, 3, 2, 1); w = conv_out(w, 3, 2, 1);
    GLAD_TRY(grow(&p->act, (size_t)r->stem.oc, (size_t)h, (size_t)w));
    int C = r->stem.oc;
    for (int l = 0; l < L; l++)
        for (int b = 0; b < r->nblocks[l]; b++) {
            const block *k = &r->blk[l][b];
            int s = k->c2.stride, ho = conv_out(h, 3, s, 1), wo = conv_out(w, 3, s, 1), wd = k->c1.oc;
            GLAD_TRY(grow(&p->tmp, (size_t)wd, (size_t)h, (size_t)w));
            if (k->c2.U) GLAD_TRY(grow(&p->ws, 32, (size_t)wd, (size_t)glad_winograd3x3_tiles(h, w)));   /* V and M: 16 T (C + OC) */
            else GLAD_TRY(grow(&p->ws, (size_t)wd * 9, (size_t)ho, (size_t)wo));
            GLAD_TRY(grow(&p->act, (size_t)k->c3.oc, (size_t)ho, (size_t)wo));
            if (k->has_ds && s != 1) GLAD_TRY(grow(&p->gat, (size_t)C, (size_t)ho, (size_t)wo));
            conv_flops(p, &k->c1, h, w); conv_flops(p, &k->c2, ho, wo); conv_flops(p, &k->c3, ho, wo);
            if (k->has_ds) conv_flops(p, &k->ds, ho, wo);
            C = k->c3.oc; h = ho; w = wo;
        }
    p->C = C; p->h = h; p->w = w;
    return 0;
}

int glad_resnet_out_shape(const glad_resnet *r, int L, int H, int W, int *C, int *h, int *w)
{
    plan p;
    GLAD_TRY(make_plan(r, L, H, W, &p));
    *C = p.C; *h = p.h; *w = p.w;
    return 0;
}

double glad_resnet_flops(const glad_resnet *r, int L, int H, int W)
{
    plan p;
    return make_plan(r, L, H, W, &p) ? 0 : p.flops;
}

/* ---- forward. One OpenMP team runs a record through the whole network.
 * Every step is cut into pieces (GEMM output blocks, one per thread; channel
 * ranges) that the threads take dynamically; a piece is a single-threaded
 * BLAS call plus its epilogue, and barriers separate steps that read each
 * other's output. A few barriers per block replace the fork/join and
 * internal synchronisation of every multi-threaded GEMM call, which dominate
 * on a loaded machine. Each piece re-packs the GEMM operand it shares with
 * the others, so there are no more pieces than threads (measured: 4 pieces
 * on 1 thread cost 6%). */

enum { NPARTS = 16 };

/* An (M,N) GEMM output cut into at most one piece per thread: blocks of rows
 * when N < M (the weights are split), else 16-aligned blocks of columns; none
 * under 64 rows / 256 columns, so each stays an efficient GEMM. */
typedef struct { int M, N, rows, step, n; } cut;

static cut make_cut(int M, int N)
{
    cut c = {M, N, N < M, 0, 0};
    int len = c.rows ? M : N, n = len / (c.rows ? 64 : 256), nt = omp_get_num_threads();
    n = n < 1 ? 1 : n > nt ? nt : n;
    c.step = (len + n - 1) / n;
    if (!c.rows) c.step = (c.step + 15) / 16 * 16;
    c.n = (len + c.step - 1) / c.step;
    return c;
}

static void piece(const cut *c, int i, int *m0, int *m1, int *n0, int *n1)
{
    int len = c->rows ? c->M : c->N, a = i * c->step, b = a + c->step < len ? a + c->step : len;
    if (c->rows) { *m0 = a; *m1 = b; *n0 = 0; *n1 = c->N; }
    else { *m0 = 0; *m1 = c->M; *n0 = a; *n1 = b; }
}

/* [a,b): part i of n cut into NPARTS near-equal ranges (some empty when n < NPARTS) */
static void part(int n, int i, int *a, int *b) { *a = (int)((long)n * i / NPARTS); *b = (int)((long)n * (i + 1) / NPARTS); }

// C[m0:m1, n0:n1] = A[m0:m1, :] (M,K) B[:, n0:n1] (K,ldb) + beta C (ldc)
static void gemm_part(float *C, int ldc, const float *A, int K, const float *B, int ldb, int m0, int m1, int n0, int n1, float beta)
{
    if (m1 > m0 && n1 > n0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m1 - m0, n1 - n0, K, 1.0f, A + (size_t)m0 * K, K, B + n0, ldb,
                    beta, C + (size_t)m0 * ldc + n0, ldc);
}

// o (M,ldo) = relu(o + b[m] + res) on [m0:m1, n0:n1]; res (M,ldo) or NULL
static void bias_relu(float *o, int ldo, const float *b, const float *res, int m0, int m1, int n0, int n1)
{
    for (int m = m0; m < m1; m++) {
        float *r = o + (size_t)m * ldo, bv = b[m];
        const float *q = res ? res + (size_t)m * ldo : NULL;
        if (q) for (int i = n0; i < n1; i++) { float v = r[i] + bv + q[i]; r[i] = v < 0 ? 0.0f : v; }
        else for (int i = n0; i < n1; i++) { float v = r[i] + bv; r[i] = v < 0 ? 0.0f : v; }
    }
}

/* rows [r0,r1) of col (C*k*k, Ho*Wo) from x (C,H,W); zero padding */
static void im2col_rows(float *col, const float *x, int H, int W, int k, int s, int p, int Ho, int Wo, int r0, int r1)
{
    for (int r = r0; r < r1; r++) {
        int c = r / (k * k), ky = (r / k) % k, kx = r % k;
        float *o = col + (size_t)r * Ho * Wo;
        const float *xc = x + (size_t)c * H * W;
        for (int i = 0; i < Ho; i++) {
            int y = i * s - p + ky;
            float *orow = o + (size_t)i * Wo;
            if (y < 0 || y >= H) { memset(orow, 0, sizeof(float) * (size_t)Wo); continue; }
            const float *xr = xc + (size_t)y * W;
            for (int j = 0; j < Wo; j++) {
                int xx = j * s - p + kx;
                orow[j] = xx >= 0 && xx < W ? xr[xx] : 0.0f;
            }
        }
    }
}

/* x is (ic,h,w), y is (oc,ho,wo) = relu(conv(x) + b); ws: the im2col matrix
 * or Winograd's V and M. Called by every thread of the team; ends without a
 * barrier (the caller places one before y is read). */
static void conv_relu(float *y, const float *x, const conv *c, int h, int w, float *ws)
{
    int ho = conv_out(h, c->k, c->stride, c->pad), wo = conv_out(w, c->k, c->stride, c->pad);
    if (c->U) {   /* Winograd F(2x2,3x3), stride 1 */
        int T = glad_winograd3x3_tiles(h, w), C = c->ic;
        float *V = ws, *M = ws + (size_t)16 * C * T;
        // channel ranges are independent; the implicit barrier publishes V
        #pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < NPARTS; i++) {
            int a, b;
            part(C, i, &a, &b);
            glad_winograd3x3_input(V, x, C, h, w, a, b);
        }
        cut ct = make_cut(c->oc, T);
        // output pieces are disjoint
        #pragma omp for schedule(dynamic, 1) nowait
        for (int i = 0; i < ct.n; i++) {
            int m0, m1, n0, n1;
            piece(&ct, i, &m0, &m1, &n0, &n1);
            for (int e = 0; e < 16; e++)
                gemm_part(M + (size_t)e * c->oc * T, T, c->U + (size_t)e * c->oc * C, C, V + (size_t)e * C * T, T, m0, m1, n0, n1, 0.0f);
            glad_winograd3x3_output(y, M, c->b, c->oc, h, w, 1, m0, m1, n0, n1);
        }
        return;
    }
    int K = c->ic * c->k * c->k, N = ho * wo;
    const float *B = x;
    if (c->k != 1 || c->stride != 1) {
        // rows of the im2col matrix are independent; the implicit barrier publishes it
        #pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < NPARTS; i++) {
            int a, b;
            part(K, i, &a, &b);
            im2col_rows(ws, x, h, w, c->k, c->stride, c->pad, ho, wo, a, b);
        }
        B = ws;
    }
    cut ct = make_cut(c->oc, N);
    // output pieces are disjoint
    #pragma omp for schedule(dynamic, 1) nowait
    for (int i = 0; i < ct.n; i++) {
        int m0, m1, n0, n1;
        piece(&ct, i, &m0, &m1, &n0, &n1);
        gemm_part(y, N, c->w, K, B, N, m0, m1, n0, n1, 0.0f);
        bias_relu(y, N, c->b, NULL, m0, m1, n0, n1);
    }
}

/* x is (C,h,w) of one record, out is (c3.oc,ho,wo); t1, t2 hold (width,h,w),
 * g the subsampled x. Called by every thread; ends with a barrier. */
static void block_forward(float *out, const float *x, const block *k, int h, int w, float *t1, float *t2, float *ws, float *g)
{
    int C = k->c1.ic, oc = k->c3.oc, wd = k->c1.oc, s = k->c2.stride, ho = conv_out(h, 3, s, 1), wo = conv_out(w, 3, s, 1);
    int N = ho * wo;
    const float *xs = k->has_ds && s != 1 ? g : x;
    conv_relu(t1, x, &k->c1, h, w, ws);
    if (xs == g) {   /* x[:, ::s, ::s] for the projection */
        // channel ranges are independent
        #pragma omp for schedule(dynamic, 1) nowait
        for (int i = 0; i < NPARTS; i++) {
            int a, b;
            part(C, i, &a, &b);
            for (int c = a; c < b; c++)
                for (int y = 0; y < ho; y++) {
                    const float *src = x + ((size_t)c * h + (size_t)y * s) * w;
                    float *d = g + ((size_t)c * ho + y) * wo;
                    for (int j = 0; j < wo; j++) d[j] = src[(size_t)j * s];
                }
        }
    }
    #pragma omp barrier
    conv_relu(t2, t1, &k->c2, h, w, ws);
    #pragma omp barrier
    cut ct = make_cut(oc, N);
    // output pieces are disjoint; the implicit barrier ends the block
    #pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < ct.n; i++) {
        int m0, m1, n0, n1;
        piece(&ct, i, &m0, &m1, &n0, &n1);
        if (k->has_ds) {
            /* out = Wds x_s, then += W3 t2: the residual add happens inside
             * the GEMM; ds.b already holds b_ds + b3 */
            gemm_part(out, N, k->ds.w, C, xs, N, m0, m1, n0, n1, 0.0f);
            gemm_part(out, N, k->c3.w, wd, t2, N, m0, m1, n0, n1, 1.0f);
            bias_relu(out, N, k->ds.b, NULL, m0, m1, n0, n1);
        } else {
            gemm_part(out, N, k->c3.w, wd, t2, N, m0, m1, n0, n1, 0.0f);
            bias_relu(out, N, k->c3.b, x, m0, m1, n0, n1);
        }
    }
}

typedef struct { float *A, *Bf, *t1, *t2, *ws, *g; } bufs;

/* Scratch for one record kept in the model (two activations ping-pong, two
 * block temporaries, the im2col / Winograd workspace, the subsampled input of
 * strided projections), grown on demand. */
static int scratch(glad_resnet *r, const plan *p, bufs *q)
{
    size_t n = 2 * p->act + 2 * p->tmp + p->ws + p->gat;   /* each term < GLAD_MAX_ALLOC / 4: no overflow */
    if (n > GLAD_MAX_ALLOC / sizeof(float)) return GLAD_ERANGE;
    if (n > r->nscratch) {
        float *m = malloc(n * sizeof(float));
        if (!m) return GLAD_ENOMEM;
        free(r->scratch);
        r->scratch = m;
        r->nscratch = n;
    }
    q->A = r->scratch; q->Bf = q->A + p->act; q->t1 = q->Bf + p->act; q->t2 = q->t1 + p->tmp; q->ws = q->t2 + p->tmp;
    q->g = q->ws + p->ws;
    return 0;
}

/* x is (3,H,W) of one record; out[i] + n * lsz[layers[i]] receives that
 * layer. Called by every thread of the team. */
static void record_forward(const glad_resnet *r, const float *x, int H, int W, int maxL, int nl, const int *layers, float **out,
                           const size_t *lsz, int n, const bufs *q)
{
    int h1 = conv_out(H, 7, 2, 3), w1 = conv_out(W, 7, 2, 3), C = r->stem.oc;
    conv_relu(q->A, x, &r->stem, H, W, q->ws);
    #pragma omp barrier
    int h = conv_out(h1, 3, 2, 1), w = conv_out(w1, 3, 2, 1);
    // channel ranges are independent; the implicit barrier publishes the pooled map
    #pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < NPARTS; i++) {
        int a, b;
        part(C, i, &a, &b);
        if (b > a) glad_maxpool3s2_forward(q->Bf + (size_t)a * h * w, q->A + (size_t)a * h1 * w1, b - a, h1, w1);
    }
    float *cur = q->Bf, *nxt = q->A;
    for (int L = 0; L < maxL; L++) {
        for (int k = 0; k < r->nblocks[L]; k++) {
            const block *bk = &r->blk[L][k];
            block_forward(nxt, cur, bk, h, w, q->t1, q->t2, q->ws, q->g);
            float *tmp = cur; cur = nxt; nxt = tmp;
            C = bk->c3.oc; h = conv_out(h, 3, bk->c2.stride, 1); w = conv_out(w, 3, bk->c2.stride, 1);
        }
        size_t pl = (size_t)h * w;
        for (int i = 0; i < nl; i++) {
            if (layers[i] != L + 1) continue;
            float *dst = out[i] + (size_t)n * lsz[L + 1];
            // channel ranges are independent; cur is next overwritten two blocks on, after barriers
            #pragma omp for schedule(dynamic, 1) nowait
            for (int p = 0; p < NPARTS; p++) {
                int a, b;
                part(C, p, &a, &b);
                if (b > a) memcpy(dst + a * pl, cur + a * pl, sizeof(float) * (size_t)(b - a) * pl);
            }
        }
    }
    #pragma omp barrier
}

// x is (B,3,H,W); out[i] is (B,C_L,h_L,w_L) for L = layers[i]
int glad_resnet_forward(glad_resnet *r, const float *x, int B, int H, int W, int nl, const int *layers, float **out)
{
    if (B < 1 || nl < 1 || !x || !layers || !out) return GLAD_EINVAL;
    int maxL = 0;
    for (int i = 0; i < nl; i++) {
        if (layers[i] < 1 || layers[i] > r->nlayers || !out[i]) return GLAD_EINVAL;
        if (layers[i] > maxL) maxL = layers[i];
    }
    plan p;
    GLAD_TRY(make_plan(r, maxL, H, W, &p));
    size_t lsz[MAXL + 1] = {0};
    for (int L = 1; L <= maxL; L++) {
        plan q;
        GLAD_TRY(make_plan(r, L, H, W, &q));
        lsz[L] = (size_t)q.C * q.h * q.w;
    }
    /* one record at a time: the buffers hold a single record, so memory does
     * not grow with B and a record's result does not depend on its batch */
    bufs q;
    GLAD_TRY(scratch(r, &p, &q));
    size_t in = (size_t)3 * H * W;
    // every thread runs the same sequence of steps, sharing each one's pieces; steps meet at barriers
    #pragma omp parallel
    for (int n = 0; n < B; n++) record_forward(r, x + (size_t)n * in, H, W, maxL, nl, layers, out, lsz, n, &q);
    return 0;
}
