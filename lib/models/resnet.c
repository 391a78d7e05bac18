/* resnet.c - torchvision Bottleneck ResNet (resnet.h): inference, loading
 * with BatchNorm folded into the convolutions and the forward pass up to a
 * chosen layer; and, at the end of the file and separate from it, the
 * training mode (glad_resnet_train: BatchNorm unfolded with batch
 * statistics, a tape, the backward). Not an optimiser or a training loop.
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

/* the forwards' arguments: a batch, layers 1..nlayers each with an output;
 * *maxL the deepest layer asked for */
static int forward_args(const glad_resnet *r, const float *x, int B, int nl, const int *layers, float *const *out, int *maxL)
{
    if (B < 1 || nl < 1 || !x || !layers || !out) return GLAD_EINVAL;
    *maxL = 0;
    for (int i = 0; i < nl; i++) {
        if (layers[i] < 1 || layers[i] > r->nlayers || !out[i]) return GLAD_EINVAL;
        if (layers[i] > *maxL) *maxL = layers[i];
    }
    return 0;
}

// x is (B,3,H,W); out[i] is (B,C_L,h_L,w_L) for L = layers[i]
int glad_resnet_forward(glad_resnet *r, const float *x, int B, int H, int W, int nl, const int *layers, float **out)
{
    int maxL;
    GLAD_TRY(forward_args(r, x, B, nl, layers, out, &maxL));
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

/* ---- the batch forward (glad_resnet_forward_batch): layer by layer over
 * the batch, every conv by glad_conv2d_forward, bias and ReLU epilogues
 * here. Buffers: the activation ping-pong A, Bf, the block temporaries t1,
 * t2, the projection's output t3, the conv workspace. */

/* y = relu(y + id) (id NULL: relu(y)) over n floats */
static void add_relu(float *y, const float *id, size_t n)
{
    // elementwise
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) { float v = y[i] + (id ? id[i] : 0.0f); y[i] = v > 0 ? v : 0.0f; }
}

static size_t conv_ws(const conv *c, int h, int w) { return glad_conv2d_workspace(c->ic, h, w, c->oc, c->k, c->k, c->stride, c->pad); }

int glad_resnet_forward_batch(glad_resnet *r, const float *x, int B, int H, int W, int nl, const int *layers, float **out)
{
    int maxL;
    GLAD_TRY(forward_args(r, x, B, nl, layers, out, &maxL));
    for (int L = 0; L < maxL; L++)
        for (int b = 0; b < r->nblocks[L]; b++)
            if (r->blk[L][b].c2.U) return glad_resnet_forward(r, x, B, H, W, nl, layers, out);
    plan p;
    GLAD_TRY(make_plan(r, maxL, H, W, &p));
    /* the record plan's act and tmp times B; workspace: the largest conv's (one image at a time) */
    int h1 = conv_out(H, 7, 2, 3), w1 = conv_out(W, 7, 2, 3), h = conv_out(h1, 3, 2, 1), w = conv_out(w1, 3, 2, 1);
    size_t ws = conv_ws(&r->stem, H, W), act, tmp, n;
    for (int L = 0, hh = h, ww = w; L < maxL; L++)
        for (int b = 0; b < r->nblocks[L]; b++) {
            const block *k = &r->blk[L][b];
            size_t a = conv_ws(&k->c1, hh, ww), c = conv_ws(&k->c2, hh, ww), d = k->has_ds ? conv_ws(&k->ds, hh, ww) : 0;
            hh = conv_out(hh, 3, k->c2.stride, 1); ww = conv_out(ww, 3, k->c2.stride, 1);
            size_t e = conv_ws(&k->c3, hh, ww);
            a = a > c ? a : c; d = d > e ? d : e; a = a > d ? a : d;
            if (a > ws) ws = a;
        }
    if (glad_mul_size(p.act, (size_t)B, &act) || glad_mul_size(p.tmp, (size_t)B, &tmp) || act > GLAD_MAX_ALLOC / sizeof(float) / 8 ||
        tmp > GLAD_MAX_ALLOC / sizeof(float) / 8 || ws > GLAD_MAX_ALLOC / sizeof(float) / 8)
        return glad_fail(GLAD_ERANGE, "resnet forward: a batch of %d at %dx%d is too large", B, W, H);
    n = 3 * act + 2 * tmp + ws + 16;
    if (n > r->nscratch) {
        float *m = malloc(n * sizeof(float));
        if (!m) return glad_fail(GLAD_ENOMEM, "resnet forward: out of memory");
        free(r->scratch);
        r->scratch = m;
        r->nscratch = n;
    }
    float *A = r->scratch, *Bf = A + act, *t3 = Bf + act, *t1 = t3 + act, *t2 = t1 + tmp, *wsp = t2 + tmp;
    int C = r->stem.oc;
    glad_conv2d_forward(A, x, r->stem.w, r->stem.b, B, 3, H, W, C, 7, 7, 2, 3, wsp);
    glad_relu_forward(A, A, (size_t)B * C * h1 * w1);
    glad_maxpool3s2_forward(Bf, A, B * C, h1, w1);
    float *cur = Bf, *nxt = A;
    for (int L = 0; L < maxL; L++) {
        for (int b = 0; b < r->nblocks[L]; b++) {
            const block *k = &r->blk[L][b];
            int wd = k->c1.oc, oc = k->c3.oc, s = k->c2.stride, ho = conv_out(h, 3, s, 1), wo = conv_out(w, 3, s, 1);
            size_t no = (size_t)B * oc * ho * wo;
            glad_conv2d_forward(t1, cur, k->c1.w, k->c1.b, B, C, h, w, wd, 1, 1, 1, 0, wsp);
            glad_relu_forward(t1, t1, (size_t)B * wd * h * w);
            glad_conv2d_forward(t2, t1, k->c2.w, k->c2.b, B, wd, h, w, wd, 3, 3, s, 1, wsp);
            glad_relu_forward(t2, t2, (size_t)B * wd * ho * wo);
            /* with a projection its bias ds.b already holds b_ds + b3 */
            glad_conv2d_forward(nxt, t2, k->c3.w, k->has_ds ? NULL : k->c3.b, B, wd, ho, wo, oc, 1, 1, 1, 0, wsp);
            if (k->has_ds) glad_conv2d_forward(t3, cur, k->ds.w, k->ds.b, B, C, h, w, oc, 1, 1, s, 0, wsp);
            add_relu(nxt, k->has_ds ? t3 : cur, no);
            float *tmpp = cur; cur = nxt; nxt = tmpp;
            C = oc; h = ho; w = wo;
        }
        for (int i = 0; i < nl; i++)
            if (layers[i] == L + 1) memcpy(out[i], cur, sizeof(float) * (size_t)B * C * h * w);
    }
    return 0;
}

/* ==== Training (issue #21, DDAD's domain adaptation; resnet.h). The same
 * network with its BatchNorm unfolded, run as torchvision's train() mode:
 * every BatchNorm normalises with the batch's statistics and moves its
 * running estimates (momentum 0.1). The inference code above is untouched:
 * a trained network goes back to it through a file (glad_resnet_train_save,
 * glad_resnet_load).
 *
 * Layers are conv (lib/nn glad_conv2d_*), BatchNorm (glad_batchnorm_*),
 * ReLU and the stem's max pool; a "unit" is conv + BatchNorm. A forward
 * records on one of GLAD_RESNET_TAPES tapes (its own arena) what the
 * backward needs (see tape below), so DDAD's two forwards per step (the
 * reconstruction and the target, each normalised with its own batch) can
 * both be differentiated. The backward walks the blocks in reverse
 * through a few activation-sized buffers; every kernel it calls parallelises
 * over disjoint outputs (channels, planes, GEMM blocks), no atomics. */

#define BN_MOMENTUM 0.1f

enum { T_PARAM, T_STAT };   /* a trained parameter, or a running statistic */

typedef struct {
    char *name;
    int kind, ndim;
    int64_t shape[4];
    size_t n, off;          /* floats; offset into t->p (and t->g) or t->buf */
    float *tmp;             /* the loaded values until packed */
} tent;

typedef struct {
    int oc, ic, k, stride, pad;
    int ew, eb, eg, ebe, erm, erv;      /* entries; eb < 0: no conv bias */
    int64_t nbt;                        /* num_batches_tracked (0 when the file has none) */
    float *w, *b, *gamma, *beta, *rm, *rv, *dw, *db, *dgamma, *dbeta;
    int ih, iw, ho, wo;                 /* input and output size of the last forward (tr_shapes) */
} tunit;

typedef struct {
    int c1, c2, c3, ds, layer;          /* unit indices, ds < 0: identity */
} tblock;

/* A forward's record for the backward. Per unit: its input (B,ic,h,w) (a
 * pointer into the tape), z = conv(x) (B,oc,ho,wo), the batch statistics;
 * per block: its input, the ReLU outputs a1, a2 and its output. */
typedef struct { const float *x; float *z, *mean, *rstd; } utape;
typedef struct { const float *x; float *a1, *a2, *out; } btape;
typedef struct {
    glad_arena ar;
    utape *u;
    btape *b;
    int B, H, W, maxL, taped;
    float *x0, *a0, *pool, *ws;         /* input copy, stem ReLU output, pooled, conv workspace */
    float *gbuf[5];                     /* the backward's buffers (NULL until the first backward) */
    size_t maxact;                      /* floats of the largest activation */
} tape;

struct glad_resnet_train {
    int nlayers, nunits, nblocks, nent, cent;
    int lastblk[MAXL];                  /* index of each layer's last block */
    tunit *u;
    tblock *bk;
    tent *ent;
    char *config;                       /* the source's __metadata__ config, or NULL */
    float *p, *g, *buf;
    size_t np, nbuf;
    tape tp[GLAD_RESNET_TAPES];
};

static int tr_add(glad_resnet_train *t, const char *name, int kind, int nd, const int *dims, float *v)
{
    if (t->nent == t->cent) {
        int c = t->cent ? 2 * t->cent : 64;
        tent *e = realloc(t->ent, sizeof *e * (size_t)c);
        if (!e) { free(v); return GLAD_ENOMEM; }
        t->ent = e;
        t->cent = c;
    }
    tent *e = &t->ent[t->nent];
    memset(e, 0, sizeof *e);
    if (!(e->name = glad_strfmt("%s", name))) { free(v); return GLAD_ENOMEM; }
    e->kind = kind;
    e->ndim = nd;
    e->n = 1;
    for (int i = 0; i < nd; i++) { e->shape[i] = dims[i]; e->n *= (size_t)dims[i]; }
    e->tmp = v;
    return t->nent++;
}

/* one float tensor into the entry list; dims as get_tensor's */
static int tr_get(glad_resnet_train *t, const loader *ld, const char *key, int kind, int nd, int *dims)
{
    float *v;
    GLAD_TRY(get_tensor(ld, key, nd, dims, &v));
    int i = tr_add(t, key, kind, nd, dims, v);
    return i < 0 ? glad_fail(i, "%s: out of memory", ld->path) : i;
}

/* conv `cn` + BatchNorm `bn`, unfolded, as unit t->u[t->nunits] */
static int tr_unit(glad_resnet_train *t, const loader *ld, const char *cn, const char *bn, int oc, int ic, int k, int stride, int pad)
{
    char key[256];
    tunit *u = &t->u[t->nunits];
    memset(u, 0, sizeof *u);
    int d[4] = {oc, ic, k, k}, rc;
    snprintf(key, sizeof key, "%s.weight", cn);
    GLAD_TRY(rc = tr_get(t, ld, key, T_PARAM, 4, d));
    u->ew = rc;
    u->oc = d[0]; u->ic = ic; u->k = k; u->stride = stride; u->pad = pad; u->eb = -1;
    int n1[1] = {u->oc};
    snprintf(key, sizeof key, "%s.bias", cn);
    if (glad_st_find(ld->st, key)) { GLAD_TRY(rc = tr_get(t, ld, key, T_PARAM, 1, n1)); u->eb = rc; }
    static const char *part[4] = {"weight", "bias", "running_mean", "running_var"};
    int *dst[4] = {&u->eg, &u->ebe, &u->erm, &u->erv};
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "%s.%s", bn, part[i]);
        GLAD_TRY(rc = tr_get(t, ld, key, i < 2 ? T_PARAM : T_STAT, 1, n1));
        *dst[i] = rc;
    }
    const float *var = t->ent[u->erv].tmp;
    for (int o = 0; o < u->oc; o++)
        if (var[o] < 0) return glad_fail(GLAD_ERANGE, "%s: tensor '%s.running_var' is negative", ld->path, bn);
    snprintf(key, sizeof key, "%s.num_batches_tracked", bn);
    const glad_st_entry *e = glad_st_find(ld->st, key);
    if (e) {
        if (e->dtype != GLAD_DT_I64 || e->ndim > 1 || (e->ndim == 1 && e->shape[0] != 1))
            return glad_fail(GLAD_EFORMAT, "%s: tensor '%s' is not one int64", ld->path, key);
        memcpy(&u->nbt, glad_st_data(ld->st, e), sizeof u->nbt);
    }
    return t->nunits++;
}

void glad_resnet_train_free(glad_resnet_train *t)
{
    if (!t) return;
    for (int i = 0; i < t->nent; i++) { free(t->ent[i].name); free(t->ent[i].tmp); }
    free(t->ent); free(t->u); free(t->bk); free(t->config);
    free(t->p); free(t->g); free(t->buf);
    for (int i = 0; i < GLAD_RESNET_TAPES; i++) { free(t->tp[i].u); free(t->tp[i].b); glad_arena_free(&t->tp[i].ar); }
    free(t);
}

/* flat arrays: parameters (and their gradients) in file order, then the statistics */
static int tr_pack(glad_resnet_train *t)
{
    for (int i = 0; i < t->nent; i++) {
        tent *e = &t->ent[i];
        size_t *n = e->kind == T_PARAM ? &t->np : &t->nbuf;
        e->off = *n;
        *n += e->n;
    }
    if (!(t->p = malloc(sizeof(float) * (t->np ? t->np : 1))) || !(t->g = calloc(t->np ? t->np : 1, sizeof(float))) ||
        !(t->buf = malloc(sizeof(float) * (t->nbuf ? t->nbuf : 1))))
        return GLAD_ENOMEM;
    for (int i = 0; i < t->nent; i++) {
        tent *e = &t->ent[i];
        memcpy((e->kind == T_PARAM ? t->p : t->buf) + e->off, e->tmp, sizeof(float) * e->n);
        free(e->tmp);
        e->tmp = NULL;
    }
    for (int i = 0; i < t->nunits; i++) {
        tunit *u = &t->u[i];
        u->w = t->p + t->ent[u->ew].off; u->dw = t->g + t->ent[u->ew].off;
        if (u->eb >= 0) { u->b = t->p + t->ent[u->eb].off; u->db = t->g + t->ent[u->eb].off; }
        u->gamma = t->p + t->ent[u->eg].off; u->dgamma = t->g + t->ent[u->eg].off;
        u->beta = t->p + t->ent[u->ebe].off; u->dbeta = t->g + t->ent[u->ebe].off;
        u->rm = t->buf + t->ent[u->erm].off; u->rv = t->buf + t->ent[u->erv].off;
    }
    return 0;
}

/* the same structure rules as glad_resnet_load_winograd / load_layer */
static int tr_load(glad_resnet_train *t, const loader *ld)
{
    const glad_st *st = ld->st;
    int cfg_layers[MAXL] = {0}, cfg_nl = 0, wpg = 64, nb[MAXL] = {0}, nl = 0;
    const char *cj = glad_st_meta(st, "config");
    if (cj) {
        GLAD_TRY(parse_config(ld, cj, cfg_layers, &cfg_nl, &wpg));
        if (!(t->config = glad_strfmt("%s", cj))) return glad_fail(GLAD_ENOMEM, "%s: out of memory", ld->path);
    }
    char key[128], cn[96], bn[96];
    for (int L = 0; L < MAXL; L++) {
        snprintf(key, sizeof key, "layer%d.0.conv1.weight", L + 1);
        if (L == 3 && (!glad_st_find(st, key) || (cj && cfg_nl < 4))) break;
        if (cj) nb[L] = cfg_layers[L];
        else
            for (; nb[L] < MAXBLOCKS; nb[L]++) {
                snprintf(key, sizeof key, "layer%d.%d.conv1.weight", L + 1, nb[L]);
                if (!glad_st_find(st, key)) break;
            }
        if (nb[L] == 0) nb[L] = 1;
        nl = L + 1;
    }
    int nblk = 0;
    for (int L = 0; L < nl; L++) nblk += nb[L];
    if (!(t->u = calloc((size_t)(1 + 4 * nblk), sizeof *t->u)) || !(t->bk = calloc((size_t)nblk, sizeof *t->bk)))
        return glad_fail(GLAD_ENOMEM, "%s: out of memory", ld->path);
    int rc;
    GLAD_TRY(rc = tr_unit(t, ld, "conv1", "bn1", -1, 3, 7, 2, 3));
    int inplanes = t->u[0].oc;
    for (int L = 0; L < nl; L++) {
        int planes = 64 << L, width = cj ? (int)((long)planes * wpg / 64) : -1, outc = cj ? 4 * planes : -1;
        for (int b = 0; b < nb[L]; b++) {
            tblock *k = &t->bk[t->nblocks];
            int s = b == 0 && L > 0 ? 2 : 1;
            k->layer = L;
            snprintf(cn, sizeof cn, "layer%d.%d.conv1", L + 1, b); snprintf(bn, sizeof bn, "layer%d.%d.bn1", L + 1, b);
            GLAD_TRY(k->c1 = tr_unit(t, ld, cn, bn, width, inplanes, 1, 1, 0));
            width = t->u[k->c1].oc;
            snprintf(cn, sizeof cn, "layer%d.%d.conv2", L + 1, b); snprintf(bn, sizeof bn, "layer%d.%d.bn2", L + 1, b);
            GLAD_TRY(k->c2 = tr_unit(t, ld, cn, bn, width, width, 3, s, 1));
            snprintf(cn, sizeof cn, "layer%d.%d.conv3", L + 1, b); snprintf(bn, sizeof bn, "layer%d.%d.bn3", L + 1, b);
            GLAD_TRY(k->c3 = tr_unit(t, ld, cn, bn, outc, width, 1, 1, 0));
            outc = t->u[k->c3].oc;
            snprintf(cn, sizeof cn, "layer%d.%d.downsample.0", L + 1, b); snprintf(bn, sizeof bn, "layer%d.%d.downsample.1", L + 1, b);
            snprintf(key, sizeof key, "%s.weight", cn);
            k->ds = -1;
            if (s != 1 || inplanes != outc || glad_st_find(st, key)) GLAD_TRY(k->ds = tr_unit(t, ld, cn, bn, outc, inplanes, 1, s, 0));
            inplanes = outc;
            t->lastblk[L] = t->nblocks++;
        }
        t->nlayers = L + 1;
    }
    return tr_pack(t) ? glad_fail(GLAD_ENOMEM, "%s: out of memory", ld->path) : 0;
}

int glad_resnet_train_load(glad_resnet_train **out, const char *path)
{
    glad_st *st;
    glad_error_clear();
    int rc = glad_st_open(&st, path);
    if (rc) return glad_error_detail()[0] ? rc : glad_fail(rc, "%s: %s", path, glad_strerror(rc));
    loader ld = {st, path};
    glad_resnet_train *t = calloc(1, sizeof *t);
    if (!t) rc = glad_fail(GLAD_ENOMEM, "%s: out of memory", path);
    else {
        /* tape blocks of 16 M floats: a few per batch at 256 x 256 */
        for (int i = 0; i < GLAD_RESNET_TAPES; i++) glad_arena_init(&t->tp[i].ar, (size_t)16 << 20);
        rc = tr_load(t, &ld);
        for (int i = 0; !rc && i < GLAD_RESNET_TAPES; i++)
            if (!(t->tp[i].u = calloc((size_t)t->nunits, sizeof(utape))) || !(t->tp[i].b = calloc((size_t)t->nblocks, sizeof(btape))))
                rc = glad_fail(GLAD_ENOMEM, "%s: out of memory", path);
    }
    glad_st_close(st);
    if (rc) { glad_resnet_train_free(t); return rc; }
    *out = t;
    return 0;
}

int glad_resnet_train_nlayers(const glad_resnet_train *t) { return t->nlayers; }

/* shapes of the units from an H x W input: fills u->ih..wo, returns 0 or GLAD_EINVAL */
static int tr_shapes(glad_resnet_train *t, int H, int W)
{
    if (H < 1 || W < 1 || H > 65536 || W > 65536) return GLAD_EINVAL;
    tunit *s = &t->u[0];
    s->ih = H; s->iw = W; s->ho = conv_out(H, 7, 2, 3); s->wo = conv_out(W, 7, 2, 3);
    int h = conv_out(s->ho, 3, 2, 1), w = conv_out(s->wo, 3, 2, 1);
    for (int b = 0; b < t->nblocks; b++) {
        tblock *k = &t->bk[b];
        tunit *c1 = &t->u[k->c1], *c2 = &t->u[k->c2], *c3 = &t->u[k->c3];
        int st = c2->stride, ho = conv_out(h, 3, st, 1), wo = conv_out(w, 3, st, 1);
        c1->ih = c1->ho = h; c1->iw = c1->wo = w;
        c2->ih = h; c2->iw = w; c2->ho = ho; c2->wo = wo;
        c3->ih = c3->ho = ho; c3->iw = c3->wo = wo;
        if (k->ds >= 0) { tunit *d = &t->u[k->ds]; d->ih = h; d->iw = w; d->ho = ho; d->wo = wo; }
        h = ho; w = wo;
    }
    return 0;
}

int glad_resnet_train_out_shape(glad_resnet_train *t, int L, int H, int W, int *C, int *h, int *w)
{
    if (L < 1 || L > t->nlayers) return GLAD_EINVAL;
    GLAD_TRY(tr_shapes(t, H, W));
    const tunit *u = &t->u[t->bk[t->lastblk[L - 1]].c3];
    if (u->ho < 1 || u->wo < 1) return GLAD_EINVAL;
    *C = u->oc; *h = u->ho; *w = u->wo;
    return 0;
}

/* B*C*h*w floats from the tape (zeroed when zero), NULL when too large or out of memory */
static float *tr_alloc(tape *p, int B, int C, int h, int w, int zero)
{
    size_t n;
    if (glad_mul_size((size_t)B * C, (size_t)h * w, &n) || n > GLAD_MAX_ALLOC / sizeof(float)) return NULL;
    return zero ? glad_arena_zalloc(&p->ar, n) : glad_arena_alloc(&p->ar, n);
}

/* ---- layer pairs. unit: y (B,oc,ho,wo) = relu?(bn(conv(x))), x (B,ic,h,w);
 * the backward takes dy, the gradient of bn's output (a ReLU's mask already
 * applied), and accumulates dx (NULL: none) and the unit's parameter
 * gradients; dz is scratch of y's size. */
static int unit_forward(glad_resnet_train *t, tape *p, tunit *u, float *y, const float *x, int B, int relu, int update)
{
    int N = u->ho * u->wo;
    utape *q = &p->u[u - t->u];
    q->x = x;
    if (!(q->z = tr_alloc(p, B, u->oc, u->ho, u->wo, 0)) || !(q->mean = tr_alloc(p, 1, 1, 1, u->oc, 0)) ||
        !(q->rstd = tr_alloc(p, 1, 1, 1, u->oc, 0)))
        return glad_fail(GLAD_ENOMEM, "resnet train forward: out of memory");
    glad_conv2d_forward(q->z, x, u->w, u->b, B, u->ic, u->ih, u->iw, u->oc, u->k, u->k, u->stride, u->pad, p->ws);
    glad_batchnorm_train_forward(y, q->mean, q->rstd, update ? u->rm : NULL, update ? u->rv : NULL, q->z, u->gamma, u->beta,
                                 B, u->oc, N, (float)BN_EPS, BN_MOMENTUM);
    if (relu) glad_relu_forward(y, y, (size_t)B * u->oc * N);
    if (update) u->nbt++;
    return 0;
}

static void unit_backward(glad_resnet_train *t, tape *p, tunit *u, float *dx, const float *dy, float *dz, int B)
{
    int N = u->ho * u->wo;
    const utape *q = &p->u[u - t->u];
    memset(dz, 0, sizeof(float) * (size_t)B * u->oc * N);
    glad_batchnorm_train_backward(dz, u->dgamma, u->dbeta, dy, q->z, q->mean, q->rstd, u->gamma, B, u->oc, N);
    glad_conv2d_backward(dx, u->dw, u->db, dz, q->x, u->w, B, u->ic, u->ih, u->iw, u->oc, u->k, u->k, u->stride, u->pad, p->ws,
                         GLAD_DX_ADD);
}

/* d = 0 where y <= 0: a ReLU's backward in place (y its output) */
static void relu_mask(float *d, const float *y, size_t n)
{
    // elementwise
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) d[i] = y[i] > 0 ? d[i] : 0.0f;
}

/* Bottleneck: out (B,oc,ho,wo) = relu(bn3(conv3(a2)) + id), a2 = relu(bn2(conv2(a1))),
 * a1 = relu(bn1(conv1(x))), id = x or bnd(convd(x)); x (B,ic,h,w) */
static int block_train_forward(glad_resnet_train *t, tape *p, tblock *k, const float *x, int B, int update)
{
    tunit *c1 = &t->u[k->c1], *c2 = &t->u[k->c2], *c3 = &t->u[k->c3];
    size_t n = (size_t)B * c3->oc * c3->ho * c3->wo;
    btape *q = &p->b[k - t->bk];
    q->x = x;
    if (!(q->a1 = tr_alloc(p, B, c1->oc, c1->ho, c1->wo, 0)) || !(q->a2 = tr_alloc(p, B, c2->oc, c2->ho, c2->wo, 0)) ||
        !(q->out = tr_alloc(p, B, c3->oc, c3->ho, c3->wo, 0)))
        return glad_fail(GLAD_ENOMEM, "resnet train forward: out of memory");
    GLAD_TRY(unit_forward(t, p, c1, q->a1, x, B, 1, update));
    GLAD_TRY(unit_forward(t, p, c2, q->a2, q->a1, B, 1, update));
    GLAD_TRY(unit_forward(t, p, c3, q->out, q->a2, B, 0, update));
    const float *id = x;
    if (k->ds >= 0) {
        float *yd = tr_alloc(p, B, c3->oc, c3->ho, c3->wo, 0);
        if (!yd) return glad_fail(GLAD_ENOMEM, "resnet train forward: out of memory");
        GLAD_TRY(unit_forward(t, p, &t->u[k->ds], yd, x, B, 0, update));
        id = yd;
    }
    float *o = q->out;
    // elementwise: the residual add and the ReLU
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) { float v = o[i] + id[i]; o[i] = v > 0 ? v : 0.0f; }
    return 0;
}

/* dx (B,ic,h,w) = the gradient of the block input given dout of its output
 * (overwritten); d1, d2, d3: scratch of the largest activation */
static void block_train_backward(glad_resnet_train *t, tape *p, tblock *k, float *dx, float *dout, float *d1, float *d2, float *d3,
                                 int B)
{
    tunit *c1 = &t->u[k->c1], *c2 = &t->u[k->c2], *c3 = &t->u[k->c3];
    const btape *q = &p->b[k - t->bk];
    size_t n = (size_t)B * c3->oc * c3->ho * c3->wo, nx = (size_t)B * c1->ic * c1->ih * c1->iw;
    size_t n1 = (size_t)B * c1->oc * c1->ho * c1->wo, n2 = (size_t)B * c2->oc * c2->ho * c2->wo;
    relu_mask(dout, q->out, n);   /* now the gradient of bn3's output and of the identity branch */
    if (k->ds >= 0) {
        memset(dx, 0, sizeof(float) * nx);
        unit_backward(t, p, &t->u[k->ds], dx, dout, d2, B);
    } else memcpy(dx, dout, sizeof(float) * nx);
    memset(d1, 0, sizeof(float) * n2);
    unit_backward(t, p, c3, d1, dout, d2, B);
    relu_mask(d1, q->a2, n2);
    memset(d3, 0, sizeof(float) * n1);
    unit_backward(t, p, c2, d3, d1, d2, B);
    relu_mask(d3, q->a1, n1);
    unit_backward(t, p, c1, dx, d3, d2, B);
}

// x is (B,3,H,W); out[i] is (B,C_L,h_L,w_L) for L = layers[i]
int glad_resnet_train_forward(glad_resnet_train *t, int tp, const float *x, int B, int H, int W, int nl, const int *layers,
                              float **out, int update_stats)
{
    if (tp < 0 || tp >= GLAD_RESNET_TAPES || B < 1 || nl < 0 || !x || (nl > 0 && (!layers || !out)))
        return glad_fail(GLAD_EINVAL, "resnet train forward: bad arguments");
    tape *p = &t->tp[tp];
    int maxL = 1;
    for (int i = 0; i < nl; i++) {
        if (layers[i] < 1 || layers[i] > t->nlayers || !out[i])
            return glad_fail(GLAD_EINVAL, "resnet train forward: layer %d not in 1..%d", layers[i], t->nlayers);
        if (layers[i] > maxL) maxL = layers[i];
    }
    if (tr_shapes(t, H, W)) return glad_fail(GLAD_EINVAL, "resnet train forward: input size %dx%d out of range", W, H);
    int nunits = t->bk[t->lastblk[maxL - 1]].c3 + 1;
    if (t->bk[t->lastblk[maxL - 1]].ds > nunits - 1) nunits = t->bk[t->lastblk[maxL - 1]].ds + 1;
    size_t maxact = 0, nws = 1;
    for (int i = 0; i < nunits; i++) {
        const tunit *u = &t->u[i];
        size_t a, b;
        /* PyTorch refuses a single value per channel too (its variance is undefined) */
        if ((long)B * u->ho * u->wo < 2)
            return glad_fail(GLAD_EINVAL, "resnet train forward: a batch of %d at %dx%d leaves one value per channel in a BatchNorm", B, W, H);
        if (glad_mul_size((size_t)B * u->oc, (size_t)u->ho * u->wo, &a) || glad_mul_size((size_t)B * u->ic, (size_t)u->ih * u->iw, &b) ||
            a > GLAD_MAX_ALLOC / sizeof(float) || b > GLAD_MAX_ALLOC / sizeof(float))
            return glad_fail(GLAD_ERANGE, "resnet train forward: a batch of %d at %dx%d is too large", B, W, H);
        if (a > maxact) maxact = a;
        if (b > maxact) maxact = b;
        size_t w = glad_conv2d_workspace(u->ic, u->ih, u->iw, u->oc, u->k, u->k, u->stride, u->pad);
        if (w > nws) nws = w;
    }
    glad_arena_reset(&p->ar);
    p->taped = 0;
    p->gbuf[0] = NULL;
    tunit *s = &t->u[0];
    int C = s->oc, h = conv_out(s->ho, 3, 2, 1), w = conv_out(s->wo, 3, 2, 1);
    if (!(p->ws = glad_arena_alloc(&p->ar, nws)) || !(p->x0 = tr_alloc(p, B, 3, H, W, 0)) || !(p->a0 = tr_alloc(p, B, C, s->ho, s->wo, 0)) ||
        !(p->pool = tr_alloc(p, B, C, h, w, 0)))
        return glad_fail(GLAD_ENOMEM, "resnet train forward: out of memory");
    memcpy(p->x0, x, sizeof(float) * (size_t)B * 3 * H * W);   /* the stem's weight gradient reads it */
    GLAD_TRY(unit_forward(t, p, s, p->a0, p->x0, B, 1, update_stats));
    glad_maxpool3s2_forward(p->pool, p->a0, B * C, s->ho, s->wo);
    const float *cur = p->pool;
    for (int b = 0; b <= t->lastblk[maxL - 1]; b++) {
        tblock *k = &t->bk[b];
        GLAD_TRY(block_train_forward(t, p, k, cur, B, update_stats));
        cur = p->b[b].out;
        if (b != t->lastblk[k->layer]) continue;
        const tunit *u = &t->u[k->c3];
        for (int i = 0; i < nl; i++)
            if (layers[i] == k->layer + 1) memcpy(out[i], cur, sizeof(float) * (size_t)B * u->oc * u->ho * u->wo);
    }
    p->B = B; p->H = H; p->W = W; p->maxL = maxL; p->maxact = maxact;
    p->taped = 1;
    return 0;
}

int glad_resnet_train_backward(glad_resnet_train *t, int tp, int nl, const int *layers, const float *const *dout, float *dx)
{
    if (tp < 0 || tp >= GLAD_RESNET_TAPES || nl < 1 || !layers || !dout) return glad_fail(GLAD_EINVAL, "resnet train backward: bad arguments");
    tape *p = &t->tp[tp];
    if (!p->taped) return glad_fail(GLAD_EINVAL, "resnet train backward: no forward to differentiate on tape %d", tp);
    int dL = 0, B = p->B;
    for (int i = 0; i < nl; i++) {
        if (layers[i] < 1 || layers[i] > p->maxL || !dout[i])
            return glad_fail(GLAD_EINVAL, "resnet train backward: layer %d not computed by the forward (1..%d)", layers[i], p->maxL);
        if (layers[i] > dL) dL = layers[i];
    }
    tr_shapes(t, p->H, p->W);   /* another tape's forward may have had another size */
    if (!p->gbuf[0])   /* kept until the next forward, so repeated backwards allocate nothing */
        for (int i = 0; i < 5; i++)
            if (!(p->gbuf[i] = glad_arena_alloc(&p->ar, p->maxact))) {
                p->gbuf[0] = NULL;
                return glad_fail(GLAD_ENOMEM, "resnet train backward: out of memory");
            }
    float *g0 = p->gbuf[0], *g1 = p->gbuf[1], *d1 = p->gbuf[2], *d2 = p->gbuf[3], *d3 = p->gbuf[4];
    const tunit *last = &t->u[t->bk[t->lastblk[dL - 1]].c3];
    memset(g0, 0, sizeof(float) * (size_t)B * last->oc * last->ho * last->wo);
    for (int b = t->lastblk[dL - 1]; b >= 0; b--) {
        tblock *k = &t->bk[b];
        if (b == t->lastblk[k->layer]) {
            const tunit *u = &t->u[k->c3];
            size_t n = (size_t)B * u->oc * u->ho * u->wo;
            for (int i = 0; i < nl; i++) {
                if (layers[i] != k->layer + 1) continue;
                const float *d = dout[i];
                // elementwise
                #pragma omp parallel for simd schedule(static) if (n > 65536)
                for (size_t j = 0; j < n; j++) g0[j] += d[j];
            }
        }
        block_train_backward(t, p, k, g1, g0, d1, d2, d3, B);
        float *tmp = g0; g0 = g1; g1 = tmp;
    }
    tunit *s = &t->u[0];
    size_t n0 = (size_t)B * s->oc * s->ho * s->wo;
    memset(d1, 0, sizeof(float) * n0);
    glad_maxpool3s2_backward(d1, g0, p->a0, B * s->oc, s->ho, s->wo);
    relu_mask(d1, p->a0, n0);
    unit_backward(t, p, s, dx, d1, d2, B);
    return 0;
}

void glad_resnet_train_zero_grad(glad_resnet_train *t) { memset(t->g, 0, sizeof(float) * t->np); }

int glad_resnet_train_ntensors(const glad_resnet_train *t) { return t->nent; }

int glad_resnet_train_tensor(glad_resnet_train *t, int i, glad_resnet_tensor *o)
{
    if (i < 0 || i >= t->nent) return GLAD_EINVAL;
    const tent *e = &t->ent[i];
    o->name = e->name;
    o->data = (e->kind == T_PARAM ? t->p : t->buf) + e->off;
    o->grad = e->kind == T_PARAM ? t->g + e->off : NULL;
    o->n = e->n;
    o->ndim = e->ndim;
    memcpy(o->shape, e->shape, sizeof o->shape);
    return 0;
}

int glad_resnet_train_find(glad_resnet_train *t, const char *name, glad_resnet_tensor *o)
{
    for (int i = 0; i < t->nent; i++)
        if (strcmp(t->ent[i].name, name) == 0) return glad_resnet_train_tensor(t, i, o);
    return GLAD_ENOTFOUND;
}

float *glad_resnet_train_params(glad_resnet_train *t, float **grads, size_t *n)
{
    if (grads) *grads = t->g;
    if (n) *n = t->np;
    return t->p;
}

int glad_resnet_train_save(const glad_resnet_train *t, const char *path)
{
    int n = t->nent + t->nunits, k = 0, rc;
    const char **names = calloc((size_t)n, sizeof *names);
    glad_tensor *ts = calloc((size_t)n, sizeof *ts);
    const glad_tensor **tp = calloc((size_t)n, sizeof *tp);
    char **own = calloc((size_t)n, sizeof *own);
    if (!names || !ts || !tp || !own) { rc = glad_fail(GLAD_ENOMEM, "%s: out of memory", path); goto out; }
    for (int i = 0; i < t->nent; i++) {
        const tent *e = &t->ent[i];
        glad_tensor *v = &ts[k];
        v->dtype = GLAD_DT_F32;
        v->ndim = e->ndim;
        memcpy(v->shape, e->shape, sizeof e->shape);
        v->data = (e->kind == T_PARAM ? t->p : t->buf) + e->off;   /* a view: not freed */
        names[k] = e->name;
        tp[k] = v;
        k++;
        if (e->kind != T_STAT || !strstr(e->name, ".running_var")) continue;
        for (int j = 0; j < t->nunits; j++) {   /* torchvision's num_batches_tracked after each running_var */
            if (t->u[j].erv != i) continue;
            size_t len = strlen(e->name) - strlen("running_var");
            if (!(own[k] = glad_strfmt("%.*snum_batches_tracked", (int)len, e->name))) { rc = glad_fail(GLAD_ENOMEM, "%s: out of memory", path); goto out; }
            ts[k].dtype = GLAD_DT_I64;
            ts[k].ndim = 0;
            ts[k].data = (void *)&t->u[j].nbt;
            names[k] = own[k];
            tp[k] = &ts[k];
            k++;
        }
    }
    const char *mk[2] = {"source", "config"}, *mv[2] = {"glad_resnet_train_save (torchvision key names, BatchNorm unfolded)", t->config};
    rc = glad_st_save(path, k, names, tp, t->config ? 2 : 1, mk, mv);
out:
    for (int i = 0; own && i < n; i++) free(own[i]);
    free(own); free(names); free(ts); free(tp);
    return rc;
}
