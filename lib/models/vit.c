/* vit.c - the DINO Vision Transformer forward (vit.h): loading and validating
 * the weights, DINO's bicubic positional-embedding interpolation, and the
 * pre-norm blocks
 *   x += proj(attn(LN1(x)));  x += fc2(GELU(fc1(LN2(x))))
 * computed one image at a time with one sgemm per linear layer over all the
 * image's tokens (M = tokens), and attention per (head, tile of QT queries)
 *   S = head_dim^-1/2 Q_tile K^T (QT,T);  softmax rows;  A_tile = S V
 * so the scores never exceed QT x T per thread and stay in cache.
 * In bf16 (nn/bf16.h, inference only) the linear layers and both attention
 * products take bf16 operands with fp32 sums (glad_bf16_gemm); LayerNorm,
 * softmax, GELU and the residual sums stay fp32.
 * Training (the end of the file): the same forward copying what the
 * backward needs to a tape, and the backward through every block, the
 * positional resampling and the patch embedding. Not the loss, not the
 * optimiser, no gradient through the final norm (block outputs are taken
 * before it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <omp.h>
#include "core/json.h"
#include "models/vit.h"
#include "nn/bf16.h"
#include "nn/nn.h"
#include "io/safetensors.h"

typedef struct {
    const float *n1w, *n1b, *qkvw, *qkvb, *projw, *projb, *n2w, *n2b, *fc1w, *fc1b, *fc2w, *fc2b;
} vit_block;

struct glad_vit {
    glad_vit_config cfg;
    int qkv_bias;
    float *w;                       /* every parameter, one allocation */
    const float *cls, *pos, *pe_w, *pe_b, *norm_w, *norm_b;
    vit_block *blk;
    struct pdesc *par;              /* the parameter table: names, shapes, offsets in w */
    int npar;
    glad_bf16_cache *bc;            /* bf16 weights of inference passes (nn/bf16.h); cleared when the weights may change */
};

/* one expected tensor: name, exact shape, where its pointer goes */
typedef struct pdesc {
    char name[64];
    int ndim;
    int64_t shape[4];
    const float **dst;
    size_t n, off;
} pdesc;

/* ------------------------------------------------------------------ loading */

static int cfg_valid(const glad_vit_config *c)
{
    return c->patch >= 1 && c->patch <= 64 && c->dim >= 1 && c->dim <= 8192 && c->depth >= 1 && c->depth <= 256 &&
           c->heads >= 1 && c->dim % c->heads == 0 && c->mlp_hidden >= 1 && c->mlp_hidden <= 65536 && c->pos_grid >= 1 &&
           c->pos_grid <= 1024 && c->eps > 0 && c->eps < 1 && isfinite(c->eps);
}

/* a JSON number that must be an integer in [lo, hi], else -1 */
static int json_int(const glad_json *o, const char *key, int dflt, int lo, int hi)
{
    const glad_json *j = glad_json_get(o, key);
    if (!j) return dflt;
    if (j->type != GLAD_JSON_NUM || j->num != floor(j->num) || j->num < lo || j->num > hi) return -1;
    return (int)j->num;
}

static int parse_config(glad_vit_config *c, int *qkv_bias, const char *js)
{
    glad_json *j;
    GLAD_TRY(glad_json_parse(js, strlen(js), &j));
    int rc = GLAD_EFORMAT;
    if (j->type != GLAD_JSON_OBJ) goto out;
    c->patch = json_int(j, "patch_size", -1, 1, 64);
    c->dim = json_int(j, "embed_dim", -1, 1, 8192);
    c->depth = json_int(j, "depth", -1, 1, 256);
    c->heads = json_int(j, "num_heads", c->dim > 0 ? (c->dim / 64 > 0 ? c->dim / 64 : 1) : -1, 1, 8192);
    int ratio = json_int(j, "mlp_ratio", 4, 1, 64);
    c->mlp_hidden = c->dim > 0 && ratio > 0 ? ratio * c->dim : -1;
    c->pos_grid = json_int(j, "pos_grid", -1, 1, 1024);
    c->eps = (float)glad_json_num(glad_json_get(j, "layernorm_eps"), 1e-6);
    const glad_json *qb = glad_json_get(j, "qkv_bias");
    *qkv_bias = qb ? qb->type == GLAD_JSON_BOOL && qb->num != 0 : 1;
    if (cfg_valid(c)) rc = 0;
out:
    glad_json_free(j);
    return rc;
}

static const int64_t *shape_of(const glad_st *st, const char *name, int ndim)
{
    const glad_st_entry *e = glad_st_find(st, name);
    return e && e->ndim == ndim ? e->shape : NULL;
}

/* DINO defaults from the tensor shapes: patch and dim from the patch embedding,
 * depth = number of consecutive blocks, heads = dim/64, the grid from pos_embed */
static int infer_config(glad_vit_config *c, int *qkv_bias, const glad_st *st, const char *path)
{
    const int64_t *pe = shape_of(st, "patch_embed.proj.weight", 4), *pos = shape_of(st, "pos_embed", 3),
                  *fc1 = shape_of(st, "blocks.0.mlp.fc1.weight", 2);
    const char *bad = !pe ? "patch_embed.proj.weight" : !pos ? "pos_embed" : !fc1 ? "blocks.0.mlp.fc1.weight" : NULL;
    if (bad) return glad_fail(GLAD_ENOTFOUND, "%s: tensor '%s' missing or not of the expected rank (no config in __metadata__)", path, bad);
    if (pe[2] != pe[3] || pe[1] != 3 || pe[0] < 1 || pe[0] > 8192 || pe[2] < 1 || pe[2] > 64)
        return glad_fail(GLAD_ESHAPE, "%s: tensor 'patch_embed.proj.weight' has the wrong shape", path);
    c->dim = (int)pe[0];
    c->patch = (int)pe[2];
    c->heads = c->dim / 64;
    if (c->heads < 1 || c->dim % 64)
        return glad_fail(GLAD_EFORMAT, "%s: embed_dim %d is not a multiple of 64: heads cannot be inferred (add a config)", path, c->dim);
    int64_t n0 = pos[1] - 1, g = (int64_t)llround(sqrt((double)(n0 > 0 ? n0 : 0)));
    if (n0 < 1 || g * g != n0 || g > 1024) return glad_fail(GLAD_ESHAPE, "%s: tensor 'pos_embed' has no square patch grid", path);
    c->pos_grid = (int)g;
    c->mlp_hidden = fc1[0] >= 1 && fc1[0] <= 65536 ? (int)fc1[0] : -1;
    c->depth = 0;
    char n[64];
    for (;;) {
        snprintf(n, sizeof n, "blocks.%d.norm1.weight", c->depth);
        if (!glad_st_find(st, n) || c->depth == 256) break;
        c->depth++;
    }
    /* a gap in the block numbers would silently drop the blocks after it */
    for (int i = 0; i < glad_st_count(st); i++) {
        const char *nm = glad_st_entry_at(st, i)->name;
        int k;
        if (sscanf(nm, "blocks.%d.", &k) == 1 && k >= c->depth)
            return glad_fail(GLAD_ENOTFOUND, "%s: tensor '%.200s' beyond the %d consecutive blocks (blocks.%d.norm1.weight missing?)", path, nm,
                             c->depth, c->depth);
    }
    c->eps = 1e-6f;
    *qkv_bias = glad_st_find(st, "blocks.0.attn.qkv.bias") != NULL;
    if (!cfg_valid(c)) return glad_fail(GLAD_EFORMAT, "%s: inferred ViT config is out of range", path);
    return 0;
}

static void add(pdesc *p, int *np, const char *name, const float **dst, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    pdesc *q = &p[(*np)++];
    snprintf(q->name, sizeof q->name, "%s", name);
    q->ndim = ndim;
    q->shape[0] = d0; q->shape[1] = d1; q->shape[2] = d2; q->shape[3] = d3;
    q->dst = dst;
    q->n = 1;
    for (int i = 0; i < ndim; i++) q->n *= (size_t)q->shape[i];
}

static int build_table(glad_vit *v, pdesc *p)
{
    const glad_vit_config *c = &v->cfg;
    int64_t D = c->dim, Hm = c->mlp_hidden, P = c->patch, N0 = (int64_t)c->pos_grid * c->pos_grid;
    int np = 0;
    char n[64];
    add(p, &np, "cls_token", &v->cls, 3, 1, 1, D, 0);
    add(p, &np, "pos_embed", &v->pos, 3, 1, 1 + N0, D, 0);
    add(p, &np, "patch_embed.proj.weight", &v->pe_w, 4, D, 3, P, P);
    add(p, &np, "patch_embed.proj.bias", &v->pe_b, 1, D, 0, 0, 0);
    for (int i = 0; i < c->depth; i++) {
        vit_block *b = &v->blk[i];
#define P1(sfx, field, len) snprintf(n, sizeof n, "blocks.%d." sfx, i); add(p, &np, n, &b->field, 1, len, 0, 0, 0)
#define P2(sfx, field, o, in) snprintf(n, sizeof n, "blocks.%d." sfx, i); add(p, &np, n, &b->field, 2, o, in, 0, 0)
        P1("norm1.weight", n1w, D); P1("norm1.bias", n1b, D);
        P2("attn.qkv.weight", qkvw, 3 * D, D);
        if (v->qkv_bias) { P1("attn.qkv.bias", qkvb, 3 * D); }
        P2("attn.proj.weight", projw, D, D); P1("attn.proj.bias", projb, D);
        P1("norm2.weight", n2w, D); P1("norm2.bias", n2b, D);
        P2("mlp.fc1.weight", fc1w, Hm, D); P1("mlp.fc1.bias", fc1b, Hm);
        P2("mlp.fc2.weight", fc2w, D, Hm); P1("mlp.fc2.bias", fc2b, D);
#undef P1
#undef P2
    }
    add(p, &np, "norm.weight", &v->norm_w, 1, D, 0, 0, 0);
    add(p, &np, "norm.bias", &v->norm_b, 1, D, 0, 0, 0);
    return np;
}

static int load_weights(glad_vit *v, const glad_st *st, const char *path)
{
    int maxp = 6 + 12 * v->cfg.depth;
    pdesc *p = v->par = calloc((size_t)maxp, sizeof *p);
    v->blk = calloc((size_t)v->cfg.depth, sizeof *v->blk);
    if (!p || !v->blk) { free(p); return glad_fail(GLAD_ENOMEM, "%s: out of memory", path); }
    int np = v->npar = build_table(v, p), rc = 0;
    size_t total = 0;
    for (int i = 0; i < np; i++) {
        p[i].off = total;
        total += p[i].n;
        if (total > GLAD_MAX_ALLOC / sizeof(float)) { rc = glad_fail(GLAD_ERANGE, "%s: model too large", path); goto out; }
    }
    /* every tensor present with its shape before the weights are allocated, so
     * their size is backed by the file (a config alone asked for gigabytes) */
    for (int i = 0; i < np; i++) {
        const glad_st_entry *e = glad_st_find(st, p[i].name);
        if (!e) { rc = glad_fail(GLAD_ENOTFOUND, "%s: tensor '%s' missing", path, p[i].name); goto out; }
        int ok = e->ndim == p[i].ndim;
        for (int d = 0; ok && d < e->ndim; d++) ok = e->shape[d] == p[i].shape[d];
        if (!ok) {
            char want[96], got[96];
            size_t k = 0, l = 0;
            for (int d = 0; d < p[i].ndim; d++) k += (size_t)snprintf(want + k, sizeof want - k, "%s%lld", d ? "," : "", (long long)p[i].shape[d]);
            want[k] = 0;
            for (int d = 0; d < e->ndim && l < sizeof got - 24; d++) l += (size_t)snprintf(got + l, sizeof got - l, "%s%lld", d ? "," : "", (long long)e->shape[d]);
            got[l] = 0;
            rc = glad_fail(GLAD_ESHAPE, "%s: tensor '%s' has shape [%s], expected [%s]", path, p[i].name, got, want);
            goto out;
        }
    }
    v->w = malloc(total * sizeof(float));
    if (!v->w) { rc = glad_fail(GLAD_ENOMEM, "%s: out of memory for %zu weights", path, total); goto out; }
    for (int i = 0; i < np; i++) {
        glad_tensor t;
        if ((rc = glad_st_get_f32(st, p[i].name, &t))) { rc = glad_fail(rc, "%s: tensor '%s': %s", path, p[i].name, glad_strerror(rc)); goto out; }
        memcpy(v->w + p[i].off, t.data, p[i].n * sizeof(float));
        glad_tensor_free(&t);
        int fin = 1;
        for (size_t k = 0; k < p[i].n; k++) fin &= isfinite(v->w[p[i].off + k]) != 0;
        if (!fin) { rc = glad_fail(GLAD_ENAN, "%s: tensor '%s' has non-finite values", path, p[i].name); goto out; }
        *p[i].dst = v->w + p[i].off;
    }
out:
    return rc;   /* p stays as v->par (the names and offsets of the training API) */
}

int glad_vit_load(glad_vit **out, const char *path)
{
    *out = NULL;
    glad_st *st;
    glad_error_clear();
    int rc = glad_st_open(&st, path);
    /* the reader's own detail when it gave one */
    if (rc) return glad_error_detail()[0] ? rc : glad_fail(rc, "%s: %s", path, glad_strerror(rc));
    glad_vit *v = calloc(1, sizeof *v);
    if (!v) { glad_st_close(st); return glad_fail(GLAD_ENOMEM, "%s: out of memory", path); }
    const char *cj = glad_st_meta(st, "config");
    if (cj) {
        if ((rc = parse_config(&v->cfg, &v->qkv_bias, cj))) glad_fail(rc, "%s: invalid ViT config in __metadata__", path);
    } else
        rc = infer_config(&v->cfg, &v->qkv_bias, st, path);
    if (!rc) rc = load_weights(v, st, path);
    glad_st_close(st);
    if (rc) { glad_vit_free(v); return rc; }
    *out = v;
    return 0;
}

void glad_vit_free(glad_vit *v)
{
    if (!v) return;
    free(v->w);
    free(v->blk);
    free(v->par);
    glad_bf16_cache_free(v->bc);
    free(v);
}

const glad_vit_config *glad_vit_cfg(const glad_vit *v) { return &v->cfg; }

/* -------------------------------------------- positional-embedding resampling */

/* Keys' cubic convolution weights (A = -0.75, PyTorch's upsample_bicubic2d) */
static double cc1(double x, double A) { return ((A + 2) * x - (A + 3)) * x * x + 1; }
static double cc2(double x, double A) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; }

/* PyTorch's source index and weights for output index i with coordinate scale
 * 1/scale_factor (align_corners False, cubic: no clamping of the source
 * coordinate, guard_index_and_lambda, taps clamped to the border) */
static void cubic_taps(int i, double inv_scale, int in, int idx[4], double w[4])
{
    double real = inv_scale * (i + 0.5) - 0.5;
    long f = (long)floorf((float)real);
    if (f > in - 1) f = in - 1;
    double t = real - (double)f;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const double A = -0.75;
    w[0] = cc2(t + 1, A); w[1] = cc1(t, A); w[2] = cc1(1 - t, A); w[3] = cc2(2 - t, A);
    for (int k = 0; k < 4; k++) {
        long j = f - 1 + k;
        idx[k] = (int)(j < 0 ? 0 : j > in - 1 ? in - 1 : j);
    }
}

/* out (gh*gw, D) from src (g*g, D): the bicubic resampling of pos_for_grid
 * (scale factors (gh+0.1)/g, (gw+0.1)/g) */
void glad_vit_pos_interp_forward(float *out, const float *src, int g, int D, int gh, int gw)
{
    double sh = (gh + 0.1) / g, sw = (gw + 0.1) / g;
    // output positions are independent
    #pragma omp parallel for schedule(static)
    for (int y = 0; y < gh; y++) {
        int iy[4], ix[4];
        double wy[4], wx[4];
        cubic_taps(y, 1.0 / sh, g, iy, wy);
        for (int x = 0; x < gw; x++) {
            cubic_taps(x, 1.0 / sw, g, ix, wx);
            float *o = out + (size_t)(y * gw + x) * D;
            for (int d = 0; d < D; d++) {
                double s = 0;
                for (int a = 0; a < 4; a++) {
                    double r = 0;
                    for (int b = 0; b < 4; b++) r += wx[b] * src[(size_t)(iy[a] * g + ix[b]) * D + d];
                    s += wy[a] * r;
                }
                o[d] = (float)s;
            }
        }
    }
}

/* dsrc (g*g, D) += the transpose of the resampling applied to dout (gh*gw, D);
 * GLAD_ENOMEM (dsrc untouched) when its scratch cannot be allocated */
int glad_vit_pos_interp_backward(float *dsrc, const float *dout, int g, int D, int gh, int gw)
{
    double sh = (gh + 0.1) / g, sw = (gw + 0.1) / g;
    int nthr = omp_get_max_threads();
    if (nthr > D) nthr = D;
    /* the forward's taps once; a g*g accumulator per thread */
    int *iy = malloc(sizeof(int) * 4 * (size_t)(gh + gw)), *ix = iy ? iy + 4 * (size_t)gh : NULL;
    double *wy = malloc(sizeof(double) * 4 * (size_t)(gh + gw)), *wx = wy ? wy + 4 * (size_t)gh : NULL;
    double *accs = malloc(sizeof(double) * (size_t)g * g * (size_t)nthr);
    if (!iy || !wy || !accs) { free(iy); free(wy); free(accs); return GLAD_ENOMEM; }
    for (int y = 0; y < gh; y++) cubic_taps(y, 1.0 / sh, g, iy + 4 * y, wy + 4 * y);
    for (int x = 0; x < gw; x++) cubic_taps(x, 1.0 / sw, g, ix + 4 * x, wx + 4 * x);
    // each channel d owns column d of dsrc (clamped taps repeat a source
    // position, so a split over output positions would race); sums in double
    #pragma omp parallel for schedule(static) num_threads(nthr)
    for (int d = 0; d < D; d++) {
        double *acc = accs + (size_t)omp_get_thread_num() * g * g;
        for (int i = 0; i < g * g; i++) acc[i] = 0;
        for (int y = 0; y < gh; y++)
            for (int x = 0; x < gw; x++) {
                double go = dout[(size_t)(y * gw + x) * D + d];
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++) acc[iy[4 * y + a] * g + ix[4 * x + b]] += wy[4 * y + a] * wx[4 * x + b] * go;
            }
        for (int i = 0; i < g * g; i++) dsrc[(size_t)i * D + d] += (float)acc[i];
    }
    free(iy);
    free(wy);
    free(accs);
    return 0;
}

/* pos (1+gh*gw, D) for a gh x gw grid. DINO's interpolate_pos_encoding returns
 * pos_embed unchanged when the token count matches and the image is square;
 * otherwise F.interpolate(grid, scale_factor=((gh+0.1)/g, (gw+0.1)/g),
 * mode='bicubic') with recompute_scale_factor unset, so the coordinates map
 * through the given scale factor (src = (dst+0.5)/s - 0.5), not through
 * out/in, and the output size is floor(g * s) (= gh, asserted by DINO). */
static int pos_for_grid(const glad_vit *v, float *pos, int gh, int gw, int H, int W)
{
    int g = v->cfg.pos_grid, D = v->cfg.dim;
    if ((long)gh * gw == (long)g * g && H == W) { memcpy(pos, v->pos, sizeof(float) * (size_t)(1 + g * g) * D); return 0; }
    double sh = (gh + 0.1) / g, sw = (gw + 0.1) / g;
    if ((int)floor(g * sh) != gh || (int)floor(g * sw) != gw) return GLAD_EUNSUPPORTED;
    memcpy(pos, v->pos, sizeof(float) * (size_t)D);
    glad_vit_pos_interp_forward(pos + D, v->pos + D, g, D, gh, gw);
    return 0;
}

/* ------------------------------------------------------------------ forward */

/* out (M,NO) (+)= x (M,NI) w^T + b: one sgemm over all M tokens of one image
 * (bf: the bf16 GEMM, its packed weights from the cache in use) */
static void linear_tokens(float *out, const float *x, const float *w, const float *b, int M, int NI, int NO, int accumulate, int bf)
{
    // rows are independent
    #pragma omp parallel for schedule(static) if ((long)M * NO > 65536)
    for (int m = 0; m < M; m++) {
        float *o = out + (size_t)m * NO;
        if (accumulate) { if (b) for (int j = 0; j < NO; j++) o[j] += b[j]; }
        else if (b) memcpy(o, b, sizeof(float) * (size_t)NO);
        else memset(o, 0, sizeof(float) * (size_t)NO);
    }
    /* without memory for the bf16 operands, fp32 */
    if (bf && glad_bf16_gemm(out, (size_t)NO, x, (size_t)NI, w, (size_t)NI, 1, glad_bf16_cached_bt(w, NI, NO), M, NO, NI, 1.0f, 1) == 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, NO, NI, 1.0f, x, NI, w, NI, 1.0f, out, NO);
}

/* queries per attention tile: a tile's scores (QT x T floats, 1 MB at T = 4097)
 * stay in a core's L2 between the two products and the softmax */
#define QT 64

/* e^x for x <= 0, 16 lanes (GCC/clang vector extensions, so it vectorises with
 * any -march): Cephes expf, x = n ln2 + r with |r| <= ln2/2 (ln2 split in two
 * for an exact reduction), degree-5 minimax polynomial, 2^n built from the
 * exponent bits; ~1 ulp. x below -87 is clamped (e^-87 ~ 1.6e-38 against a
 * softmax row sum >= 1) so 2^n stays a normal number. The clamp is a mask,
 * not a branch: a float compare in a scalar loop would not be if-converted. */
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
#define VL 16

/* in place through a pointer: a 64-byte vector passed by value would change the ABI without AVX-512 */
static inline void vexp_neg(v16f *px)
{
    v16f x = *px;
    const v16f lo = (v16f){0} - 87.0f, magic = (v16f){0} + 12582912.0f;   /* 1.5 * 2^23: adding it rounds to an integer */
    v16i m = x < lo;
    x = (v16f)((m & (v16i)lo) | (~m & (v16i)x));
    v16f n = (x * 1.44269504088896341f + magic) - magic;
    v16f r = x - n * 0.693359375f + n * 2.12194440e-4f;
    v16f p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* a NaN x makes p NaN; its n is taken as 0, as converting a NaN to an integer is undefined */
    v16i ok = n == n;
    v16i bits = (__builtin_convertvector((v16f)(ok & (v16i)n), v16i) + 127) << 23;
    *px = p * (v16f)bits;
}

/* The two kernels below are also compiled for AVX-512 and AVX2 (picked at
 * load time); the 16-lane code does the same operations in the same order on
 * every ISA (no FMA contraction in ISO C mode), so results do not depend on it.
 * Not under AddressSanitizer: ifunc resolvers run before its runtime is set up. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define VIT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VIT_CLONES
#endif

/* softmax of one row in place: e^(x - max) / sum. Lanes are reduced in a fixed
 * order, so the result does not depend on the thread count; the tail of the
 * row (n % 16 values) goes through the same vector code, padded. */
VIT_CLONES static void softmax_row(float *r, int n)
{
    int nv = n / VL * VL, tail = n - nv;
    float mx = r[0];
    for (int i = nv; i < n; i++) mx = r[i] > mx ? r[i] : mx;
    if (nv) {
        v16f vm, v;
        memcpy(&vm, r, sizeof vm);
        for (int i = VL; i < nv; i += VL) {
            memcpy(&v, r + i, sizeof v);
            v16i g = v > vm;
            vm = (v16f)((g & (v16i)v) | (~g & (v16i)vm));
        }
        for (int l = 0; l < VL; l++) mx = vm[l] > mx ? vm[l] : mx;
    }
    v16f acc = {0}, v, e;
    for (int i = 0; i < nv; i += VL) {
        memcpy(&v, r + i, sizeof v);
        e = v - mx;
        vexp_neg(&e);
        memcpy(r + i, &e, sizeof e);
        acc += e;
    }
    if (tail) {
        v16f t = (v16f){0} - 1e30f;   /* padding lanes: computed, then dropped */
        for (int l = 0; l < tail; l++) t[l] = r[nv + l];
        e = t - mx;
        vexp_neg(&e);
        for (int l = 0; l < tail; l++) { r[nv + l] = e[l]; acc[l] += e[l]; }
    }
    float s = 0.0f;
    for (int l = 0; l < VL; l++) s += acc[l];
    float inv = 1.0f / s;
    for (int i = 0; i < n; i++) r[i] *= inv;
}

/* GELU in place over n values, exact-erf form 0.5 x (1 + erf(x / sqrt 2)) with
 * erf from Abramowitz-Stegun 7.1.26 as PyTorch's vectorised CPU erf:
 * erf(z) = sign(z) (1 - t (p1 + t (p2 + t (p3 + t (p4 + t p5)))) e^(-z^2)),
 * t = 1 / (1 + 0.3275911 |z|), absolute error <= 1.5e-7 */
VIT_CLONES static void gelu_inplace(float *x, size_t n)
{
    size_t nv = n / VL * VL;
    for (size_t i = 0; i <= nv; i += VL) {
        int m = i < nv ? VL : (int)(n - nv);
        if (m == 0) break;
        v16f v = {0};
        if (m == VL) memcpy(&v, x + i, sizeof v);
        else for (int l = 0; l < m; l++) v[l] = x[i + l];
        v16f z = v * 0.70710678118654752f;
        v16i neg = z < 0.0f;
        v16f a = (v16f)((v16i)z & 0x7fffffff);   /* |z|: clear the sign bit */
        v16f t = 1.0f / (a * 0.3275911f + 1.0f);
        v16f poly = t * 1.061405429f - 1.453152027f;
        poly = poly * t + 1.421413741f;
        poly = poly * t - 0.284496736f;
        poly = poly * t + 0.254829592f;
        v16f e = (v16f){0} - a * a;
        vexp_neg(&e);
        v16f erfa = 1.0f - poly * t * e;
        v16f erfz = (v16f)((neg & (v16i)((v16f){0} - erfa)) | (~neg & (v16i)erfa));
        v16f y = 0.5f * v * (1.0f + erfz);
        if (m == VL) memcpy(x + i, &y, sizeof y);
        else for (int l = 0; l < m; l++) x[i + l] = y[l];
    }
}

/* A (T,D) = concat_heads softmax(scale Q K^T) V from qkv (T,3D) in the layout
 * [3][heads][head_dim]: head j's q, k, v are column blocks at j*hd, D + j*hd,
 * 2D + j*hd with row stride 3D; A likewise at j*hd. sbuf: nthr * QT * T floats. */
static void attention(float *A, const float *qkv, int T, int D, int heads, float *sbuf, int nthr)
{
    int hd = D / heads, D3 = 3 * D, ntile = (T + QT - 1) / QT;
    float scale = 1.0f / sqrtf((float)hd);
    // (head, query tile) items write disjoint blocks of A; each thread has its own
    // scores buffer, and sgemm runs single-threaded inside the region (same result
    // for any thread count)
    #pragma omp parallel for schedule(dynamic) num_threads(nthr)
    for (int it = 0; it < heads * ntile; it++) {
        int j = it / ntile, t0 = (it % ntile) * QT, m = T - t0 < QT ? T - t0 : QT;
        float *S = sbuf + (size_t)omp_get_thread_num() * QT * T;
        const float *q = qkv + (size_t)t0 * D3 + (size_t)j * hd, *k = qkv + D + (size_t)j * hd, *v = k + D;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, T, hd, scale, q, D3, k, D3, 0.0f, S, T);
        for (int r = 0; r < m; r++) softmax_row(S + (size_t)r * T, T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, T, 1.0f, S, T, v, D3, 0.0f,
                    A + (size_t)t0 * D + (size_t)j * hd, D);
    }
}

/* attention() in bf16: per head, K^T and V packed once (glad_bf16_pack_b),
 * per query tile Q and the softmax rows packed as the left operands; the
 * same tiles and softmax as attention(), so a result depends neither on the
 * thread count nor on T's tiling. GLAD_ENOMEM (A incomplete) when a head's
 * packed operands cannot be allocated: the caller runs attention() */
static int attention_bf16(float *A, const float *qkv, int T, int D, int heads, float *sbuf, int nthr)
{
    int hd = D / heads, D3 = 3 * D, fail = 0;
    float scale = 1.0f / sqrtf((float)hd);
    size_t nk = glad_bf16_pb_elems(hd, T), nv = glad_bf16_pb_elems(T, hd), nq = glad_bf16_pa_elems(QT, hd),
           ns = glad_bf16_pa_elems(QT, T);
    // heads write disjoint column blocks of A, each thread with its own scores
    // buffer and packed operands
    #pragma omp parallel for schedule(dynamic) num_threads(nthr)
    for (int j = 0; j < heads; j++) {
        uint16_t *kp = aligned_alloc(64, (2 * (nk + nv + nq + ns) + 63) / 64 * 64);
        if (!kp) {
            #pragma omp atomic write
            fail = 1;
            continue;
        }
        uint16_t *vp = kp + nk, *qa = vp + nv, *sa = qa + nq;
        float *S = sbuf + (size_t)omp_get_thread_num() * QT * T;
        const float *k = qkv + D + (size_t)j * hd, *v = k + D;
        glad_bf16_pack_b(kp, k, (size_t)D3, 1, hd, T);
        glad_bf16_pack_b(vp, v, (size_t)D3, 0, T, hd);
        for (int t0 = 0; t0 < T; t0 += QT) {
            int m = T - t0 < QT ? T - t0 : QT;
            glad_bf16_pack_a(qa, qkv + (size_t)t0 * D3 + (size_t)j * hd, (size_t)D3, m, hd);
            glad_bf16_gemm_packed(S, (size_t)T, qa, kp, m, T, hd, scale, 0);
            for (int r = 0; r < m; r++) softmax_row(S + (size_t)r * T, T);
            glad_bf16_pack_a(sa, S, (size_t)T, m, T);
            glad_bf16_gemm_packed(A + (size_t)t0 * D + (size_t)j * hd, (size_t)D, sa, vp, m, hd, T, 1.0f, 0);
        }
        free(kp);
    }
    return fail ? GLAD_ENOMEM : 0;
}

/* scratch of one image's forward (floats, laid out in one allocation) */
typedef struct { float *X, *h, *pos, *big; int nthr; } vit_ws;

static int ws_floats(const glad_vit_config *c, int H, int W, int nthr, size_t *total)
{
    size_t N = (size_t)(H / c->patch) * (size_t)(W / c->patch), T = N + 1, D = (size_t)c->dim, tt, a, b;
    GLAD_TRY(glad_mul_size((size_t)nthr * QT, T, &tt));
    a = tt + 3 * D * T;                              /* qkv + every thread's score tile */
    b = (size_t)c->mlp_hidden * T;                   /* MLP hidden */
    size_t cw = glad_conv2d_workspace(3, H, W, c->dim, c->patch, c->patch, c->patch, 0);
    size_t big = a > b ? a : b;
    big = big > cw ? big : cw;
    size_t n = 3 * T * D + big;
    if (n > GLAD_MAX_ALLOC / sizeof(float)) return GLAD_ERANGE;
    *total = n;
    return 0;
}

static int check_args(const glad_vit *v, const float *x, int B, int H, int W, int nb, const int *blocks, float **dst, int *last)
{
    if (!v || !x || B < 1 || nb < 0 || (nb > 0 && (!blocks || !dst))) return GLAD_EINVAL;
    const glad_vit_config *c = &v->cfg;
    if (H < c->patch || W < c->patch || H % c->patch || W % c->patch || H > 65536 || W > 65536) return GLAD_ESHAPE;
    if ((long)(H / c->patch) * (W / c->patch) > (1L << 22)) return GLAD_ERANGE;
    *last = 0;
    for (int i = 0; i < nb; i++) {
        if (blocks[i] < 1 || blocks[i] > c->depth || !dst[i]) return GLAD_EINVAL;
        if (blocks[i] > *last) *last = blocks[i];
    }
    return 0;
}

/* a training tape's floats per block and token: x_in (D), qkv (3D), A (D), x_mid (D), u (Hm) */
#define TAPE_PER_TOKEN(c) (6 * (size_t)(c)->dim + (size_t)(c)->mlp_hidden)

/* one image xb (3,H,W): the outputs of the requested blocks go to dst[i] (T,D)
 * for blocks[i]; the normed cls to cls (D) when not NULL; runs `last` blocks.
 * tape (training only, else NULL): block k's x_in, qkv, A, x_mid and the MLP's
 * pre-GELU u are copied to tape + (k-1) T TAPE_PER_TOKEN, so the training
 * forward computes the same numbers as inference by construction. */
static void image_forward(const glad_vit *v, const vit_ws *ws, const float *xb, int H, int W, int nb, const int *blocks,
                          float *const *dst, float *cls, int last, float *tape, int bf)
{
    const glad_vit_config *c = &v->cfg;
    int p = c->patch, gh = H / p, gw = W / p, N = gh * gw, T = N + 1, D = c->dim, Hm = c->mlp_hidden;
    int heads = c->heads, D3 = 3 * D;
    float *X = ws->X, *h = ws->h, *big = ws->big;
    /* patch embedding: conv p x p stride p -> (D, N) in h, then tokens = [cls ; conv^T] + pos */
    glad_conv2d_forward(h, xb, v->pe_w, v->pe_b, 1, 3, H, W, D, p, p, p, 0, big);
    for (int d = 0; d < D; d++) X[d] = v->cls[d] + ws->pos[d];
    // tokens are independent
    #pragma omp parallel for schedule(static) if ((long)N * D > 65536)
    for (int n = 0; n < N; n++)
        for (int d = 0; d < D; d++) X[(size_t)(n + 1) * D + d] = h[(size_t)d * N + n] + ws->pos[(size_t)(n + 1) * D + d];
    float *qkv = big, *mlp = big;
    for (int k = 1; k <= last; k++) {
        const vit_block *b = &v->blk[k - 1];
        size_t TD = (size_t)T * D;
        float *tp = tape ? tape + (size_t)(k - 1) * T * TAPE_PER_TOKEN(c) : NULL;
        if (tp) memcpy(tp, X, sizeof(float) * TD);
        glad_layernorm_forward(h, X, b->n1w, b->n1b, T, D, c->eps);
        linear_tokens(qkv, h, b->qkvw, b->qkvb, T, D, D3, 0, bf);
        if (tp) memcpy(tp + TD, qkv, sizeof(float) * 3 * TD);
        /* A into h (LN1 output no longer needed) */
        if (!bf || attention_bf16(h, qkv, T, D, heads, big + (size_t)D3 * T, ws->nthr))
            attention(h, qkv, T, D, heads, big + (size_t)D3 * T, ws->nthr);
        if (tp) memcpy(tp + 4 * TD, h, sizeof(float) * TD);
        linear_tokens(X, h, b->projw, b->projb, T, D, D, 1, bf);
        if (tp) memcpy(tp + 5 * TD, X, sizeof(float) * TD);
        glad_layernorm_forward(h, X, b->n2w, b->n2b, T, D, c->eps);
        linear_tokens(mlp, h, b->fc1w, b->fc1b, T, D, Hm, 0, bf);
        if (tp) memcpy(tp + 6 * TD, mlp, sizeof(float) * (size_t)T * Hm);
        // rows are independent
        #pragma omp parallel for schedule(static)
        for (int t = 0; t < T; t++) gelu_inplace(mlp + (size_t)t * Hm, (size_t)Hm);
        linear_tokens(X, mlp, b->fc2w, b->fc2b, T, Hm, D, 1, bf);
        for (int i = 0; i < nb; i++)
            if (blocks[i] == k) memcpy(dst[i], X, sizeof(float) * (size_t)T * D);
    }
    if (cls) glad_layernorm_forward(cls, X, v->norm_w, v->norm_b, 1, D, c->eps);
}

/* shared driver: per image, dst pointers from `place` (tokens or a scratch) */
static int run(glad_vit *v, const float *x, int B, int H, int W, int nb, const int *blocks, float **tokens, float *cls_norm,
               float **feat)
{
    int last, rc;
    GLAD_TRY(check_args(v, x, B, H, W, nb, blocks, tokens ? tokens : feat, &last));
    if (cls_norm) last = v->cfg.depth;
    if (last == 0) return 0;
    const glad_vit_config *c = &v->cfg;
    int p = c->patch, gh = H / p, gw = W / p, N = gh * gw, T = N + 1, D = c->dim;
    size_t nws, ntmp = 0;
    int nthr = omp_get_max_threads();   /* attention threads, each with its own score tile */
    if (nthr > 64) nthr = 64;
    GLAD_TRY(ws_floats(c, H, W, nthr, &nws));
    if (feat) {
        GLAD_TRY(glad_mul_size((size_t)nb, (size_t)T * D, &ntmp));
        if (ntmp > GLAD_MAX_ALLOC / sizeof(float) - nws) return GLAD_ERANGE;
    }
    float *mem = malloc((nws + ntmp) * sizeof(float));
    float **dst = malloc(sizeof(float *) * (size_t)(nb > 0 ? nb : 1));
    if (!mem || !dst) { free(mem); free(dst); return GLAD_ENOMEM; }
    vit_ws ws = {mem, mem + (size_t)T * D, mem + 2 * (size_t)T * D, mem + 3 * (size_t)T * D, nthr};
    float *tmp = mem + nws;
    GLAD_TRYG(rc, pos_for_grid(v, ws.pos, gh, gw, H, W), out);
    size_t per_img = (size_t)3 * H * W;
    /* bf16: the model's packed weights in use for this pass (fp32 weights
     * without a cache: converted at every layer) */
    int bf = glad_precision_get() == GLAD_PREC_BF16;
    if (bf && !v->bc) v->bc = glad_bf16_cache_new();
    glad_bf16_cache *prev = bf ? glad_bf16_cache_use(v->bc) : NULL;
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < nb; i++) dst[i] = feat ? tmp + (size_t)i * T * D : tokens[i] + (size_t)b * T * D;
        image_forward(v, &ws, x + (size_t)b * per_img, H, W, nb, blocks, dst, cls_norm ? cls_norm + (size_t)b * D : NULL, last,
                      NULL, bf);
        for (int i = 0; feat && i < nb; i++) {
            float *o = feat[i] + (size_t)b * D * N;
            const float *t = dst[i] + D;   /* drop cls */
            // channels are independent
            #pragma omp parallel for schedule(static) if ((long)N * D > 65536)
            for (int d = 0; d < D; d++)
                for (int n = 0; n < N; n++) o[(size_t)d * N + n] = t[(size_t)n * D + d];
        }
    }
    if (bf) glad_bf16_cache_use(prev);
out:
    free(mem);
    free(dst);
    return rc;
}

int glad_vit_forward_tokens(glad_vit *v, const float *x, int B, int H, int W, int nb, const int *blocks, float **tokens,
                            float *cls_norm)
{
    return run(v, x, B, H, W, nb, blocks, tokens, cls_norm, NULL);
}

int glad_vit_features(glad_vit *v, const float *x, int B, int H, int W, int nb, const int *blocks, float **out)
{
    if (!out && nb > 0) return GLAD_EINVAL;
    return run(v, x, B, H, W, nb, blocks, NULL, NULL, out);
}

double glad_vit_flops(const glad_vit *v, int H, int W, int depth)
{
    const glad_vit_config *c = &v->cfg;
    double N = (double)(H / c->patch) * (W / c->patch), T = N + 1, D = c->dim, Hm = c->mlp_hidden;
    double embed = 2.0 * N * D * 3 * c->patch * c->patch;
    double block = 2.0 * T * D * (3 * D + D + 2 * Hm) + 4.0 * T * T * D;
    return embed + depth * block;
}

/* ------------------------------------------------------------------ training
 * (issue #21) The training forward is image_forward with a tape; the backward
 * walks the blocks from the last requested one down, per image:
 *   MLP:  dG = dY fc2w, dU = dG gelu'(u), dH2 = dU fc1w,
 *         dXm = dY + LN2^T(dH2)          (the residual adds)
 *   attn: dA = dXm projw, dQKV = mhsa^T(dA), dH1 = dQKV qkvw,
 *         dXin = dXm + LN1^T(dH1)
 * (weight gradients dW += dY^T X, db += colsum dY beside each), then the
 * embedding: dcls = dX[0], dpos = dX (through the bicubic resampling's
 * transpose when the grid differs), the patch convolution's backward.
 * LayerNorm and GELU inputs are recomputed from the tape (cheap), the
 * attention probabilities inside glad_mhsa_backward (T^2 per head). It stops
 * as soon as nothing below needs a gradient (frozen blocks below the lowest
 * trainable one are skipped). */

typedef struct { float *n1w, *n1b, *qkvw, *qkvb, *projw, *projb, *n2w, *n2b, *fc1w, *fc1b, *fc2w, *fc2b; } vit_gblock;

struct glad_vit_tape {
    glad_vit *v;
    float *g;                        /* gradients in the layout of v->w (zeros where frozen) */
    vit_gblock *gb;                  /* per block, NULL where frozen */
    float *gcls, *gpos, *gpe_w, *gpe_b;
    /* the last training forward */
    float *mem, *x, *pos, *tape;
    size_t cap;
    int B, H, W, last, nb, *blocks;
};

/* the gradient of the parameter at p (a pointer into v->w), NULL if frozen */
static float *gof(const glad_vit_tape *t, const unsigned char *on, const float *p)
{
    const glad_vit *v = t->v;
    if (!p) return NULL;
    for (int i = 0; i < v->npar; i++)
        if (v->w + v->par[i].off == p) return on[i] ? t->g + v->par[i].off : NULL;
    return NULL;
}

static size_t total_params(const glad_vit *v) { return v->par[v->npar - 1].off + v->par[v->npar - 1].n; }

int glad_vit_param_count(const glad_vit *v) { return v ? v->npar : 0; }

const char *glad_vit_param_name(const glad_vit *v, int i) { return v && i >= 0 && i < v->npar ? v->par[i].name : NULL; }

static const pdesc *find_param(const glad_vit *v, const char *name)
{
    for (int i = 0; v && name && i < v->npar; i++)
        if (!strcmp(v->par[i].name, name)) return &v->par[i];
    return NULL;
}

float *glad_vit_param(glad_vit *v, const char *name, size_t *n)
{
    const pdesc *p = find_param(v, name);
    if (n) *n = p ? p->n : 0;
    if (v) glad_bf16_cache_clear(v->bc);   /* the caller may change the weights: the bf16 copies go */
    return p ? v->w + p->off : NULL;
}

float *glad_vit_params(glad_vit *v, size_t *n)
{
    if (n) *n = v ? total_params(v) : 0;
    if (v) glad_bf16_cache_clear(v->bc);
    return v ? v->w : NULL;
}

int glad_vit_tape_new(glad_vit_tape **out, glad_vit *v, int ntrain, const char *const *train)
{
    *out = NULL;
    if (!v || ntrain < 0 || (ntrain > 0 && !train)) return glad_fail(GLAD_EINVAL, "glad_vit_tape_new: bad arguments");
    unsigned char *on = calloc((size_t)v->npar, 1);
    glad_vit_tape *t = calloc(1, sizeof *t);
    if (t) {
        t->v = v;
        t->g = calloc(total_params(v), sizeof(float));
        t->gb = calloc((size_t)v->cfg.depth, sizeof *t->gb);
    }
    if (!on || !t || !t->g || !t->gb) { free(on); glad_vit_tape_free(t); return glad_fail(GLAD_ENOMEM, "glad_vit_tape_new: out of memory"); }
    for (int i = 0; i < v->npar; i++) on[i] = ntrain == 0;
    for (int j = 0; j < ntrain; j++) {
        size_t l = train[j] ? strlen(train[j]) : 0;
        int hit = 0;
        for (int i = 0; l && i < v->npar; i++)
            if (!strncmp(v->par[i].name, train[j], l)) on[i] = 1, hit = 1;
        if (!hit) {
            free(on);
            glad_vit_tape_free(t);
            return glad_fail(GLAD_ENOTFOUND, "no ViT parameter name starts with '%s'", train[j] ? train[j] : "");
        }
    }
    t->gcls = gof(t, on, v->cls); t->gpos = gof(t, on, v->pos);
    t->gpe_w = gof(t, on, v->pe_w); t->gpe_b = gof(t, on, v->pe_b);
    for (int k = 0; k < v->cfg.depth; k++) {
        const vit_block *b = &v->blk[k];
        vit_gblock *g = &t->gb[k];
#define G(f) g->f = gof(t, on, b->f)
        G(n1w); G(n1b); G(qkvw); G(qkvb); G(projw); G(projb); G(n2w); G(n2b); G(fc1w); G(fc1b); G(fc2w); G(fc2b);
#undef G
    }
    free(on);
    *out = t;
    return 0;
}

void glad_vit_tape_free(glad_vit_tape *t)
{
    if (!t) return;
    free(t->g);
    free(t->gb);
    free(t->mem);
    free(t->blocks);
    free(t);
}

float *glad_vit_grad(glad_vit_tape *t, const char *name, size_t *n)
{
    const pdesc *p = t ? find_param(t->v, name) : NULL;
    if (n) *n = p ? p->n : 0;
    return p ? t->g + p->off : NULL;
}

float *glad_vit_grads(glad_vit_tape *t, size_t *n)
{
    if (n) *n = t ? total_params(t->v) : 0;
    return t ? t->g : NULL;
}

void glad_vit_zero_grad(glad_vit_tape *t)
{
    if (t) memset(t->g, 0, sizeof(float) * total_params(t->v));
}

int glad_vit_train_forward(glad_vit_tape *t, const float *x, int B, int H, int W, int nb, const int *blocks, float **tokens)
{
    if (!t) return GLAD_EINVAL;
    glad_vit *v = t->v;
    int last;
    t->B = 0;   /* no valid tape until this forward succeeds */
    GLAD_TRY(check_args(v, x, B, H, W, nb, blocks, tokens, &last));
    if (last == 0) return GLAD_EINVAL;
    const glad_vit_config *c = &v->cfg;
    int p = c->patch, gh = H / p, gw = W / p, T = gh * gw + 1, D = c->dim;
    int nthr = omp_get_max_threads();
    if (nthr > 64) nthr = 64;
    size_t nws, per_img, blk, tp, xs, need;
    GLAD_TRY(ws_floats(c, H, W, nthr, &nws));
    /* tape: x (B,3,H,W), pos (T,D), per image `last` blocks of T TAPE_PER_TOKEN */
    GLAD_TRY(glad_mul_size((size_t)T * (size_t)last, TAPE_PER_TOKEN(c), &blk));
    GLAD_TRY(glad_mul_size((size_t)B, blk, &tp));
    GLAD_TRY(glad_mul_size((size_t)B * 3, (size_t)H * W, &xs));
    need = xs + (size_t)T * D;
    if (tp > GLAD_MAX_ALLOC / sizeof(float) - need) return GLAD_ERANGE;
    need += tp;
    if (need > t->cap) {
        free(t->mem);
        t->cap = 0;
        if (!(t->mem = malloc(need * sizeof(float)))) return glad_fail(GLAD_ENOMEM, "ViT training forward: out of memory for a %zu MB tape", need * 4 >> 20);
        t->cap = need;
    }
    int *bl = realloc(t->blocks, sizeof(int) * (size_t)(nb > 0 ? nb : 1));
    if (!bl) return GLAD_ENOMEM;
    t->blocks = bl;
    memcpy(bl, blocks, sizeof(int) * (size_t)nb);
    t->x = t->mem;
    t->pos = t->x + xs;
    t->tape = t->pos + (size_t)T * D;
    memcpy(t->x, x, sizeof(float) * xs);
    float *mem = malloc(nws * sizeof(float));
    float **dst = malloc(sizeof(float *) * (size_t)nb);
    int rc = 0;
    if (!mem || !dst) { rc = GLAD_ENOMEM; goto out; }
    vit_ws ws = {mem, mem + (size_t)T * D, t->pos, mem + 3 * (size_t)T * D, nthr};
    GLAD_TRYG(rc, pos_for_grid(v, t->pos, gh, gw, H, W), out);
    per_img = (size_t)3 * H * W;
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < nb; i++) dst[i] = tokens[i] + (size_t)b * T * D;
        image_forward(v, &ws, x + (size_t)b * per_img, H, W, nb, blocks, dst, NULL, last, t->tape + (size_t)b * blk, 0);
    }
    t->B = B; t->H = H; t->W = W; t->last = last; t->nb = nb;
out:
    free(mem);
    free(dst);
    return rc;
}

/* dW (NO,NI) += dY^T X, db += column sums of dY (either may be NULL: frozen) */
static void linear_wgrad(float *dw, float *db, const float *dy, const float *x, int M, int NI, int NO)
{
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, NO, NI, M, 1.0f, dy, NO, x, NI, 1.0f, dw, NI);
    if (!db) return;
    // each column's sum is its own, rows in order
    #pragma omp parallel for schedule(static) if ((long)M * NO > 65536)
    for (int o = 0; o < NO; o++) {
        double s = 0;
        for (int m = 0; m < M; m++) s += dy[(size_t)m * NO + o];
        db[o] += (float)s;
    }
}

/* scratch of one backward */
typedef struct { float *dXm, *h, *dh, *dA, *dqkv, *G, *dU, *att, *dpos, *dconv, *conv, *sink; } vit_bws;

/* block k's backward for one image: dX (T,D) is the gradient of its output;
 * returns 1 with dX replaced by the gradient of its input when below (blocks
 * under it or the embedding need it), else 0 after its own weight gradients */
static int block_backward(const glad_vit_tape *t, const vit_bws *w, float *dX, const float *tp, int k, int T, int below)
{
    const glad_vit *v = t->v;
    const glad_vit_config *c = &v->cfg;
    const vit_block *b = &v->blk[k - 1];
    const vit_gblock *g = &t->gb[k - 1];
    int D = c->dim, Hm = c->mlp_hidden;
    size_t TD = (size_t)T * D, THm = (size_t)T * Hm;
    const float *xin = tp, *qkv = tp + TD, *A = tp + 4 * TD, *xm = tp + 5 * TD, *u = tp + 6 * TD;
    int attn = below || g->n1w || g->n1b || g->qkvw || g->qkvb || g->projw || g->projb;
    int ln2 = attn || g->n2w || g->n2b, mlp = ln2 || g->fc1w || g->fc1b;
    /* fc2: its input is GELU(u), recomputed as the forward did */
    if (g->fc2w) {
        memcpy(w->G, u, sizeof(float) * THm);
        // rows are independent
        #pragma omp parallel for schedule(static)
        for (int r = 0; r < T; r++) gelu_inplace(w->G + (size_t)r * Hm, (size_t)Hm);
    }
    linear_wgrad(g->fc2w, g->fc2b, dX, w->G, T, Hm, D);
    if (!mlp) return 0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, Hm, D, 1.0f, dX, D, b->fc2w, Hm, 0.0f, w->G, Hm);   /* dG */
    memset(w->dU, 0, sizeof(float) * THm);
    glad_gelu_backward(w->dU, w->G, u, THm);
    if (g->fc1w) glad_layernorm_forward(w->h, xm, b->n2w, b->n2b, T, D, c->eps);
    linear_wgrad(g->fc1w, g->fc1b, w->dU, w->h, T, D, Hm);
    if (!ln2) return 0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, Hm, 1.0f, w->dU, Hm, b->fc1w, D, 0.0f, w->dh, D);   /* dH2 */
    if (attn) memcpy(w->dXm, dX, sizeof(float) * TD);
    glad_layernorm_backward(attn ? w->dXm : NULL, g->n2w ? g->n2w : w->sink, g->n2b ? g->n2b : w->sink + D, w->dh, xm, b->n2w,
                            T, D, c->eps);
    if (!attn) return 0;
    linear_wgrad(g->projw, g->projb, w->dXm, A, T, D, D);
    int ln1 = below || g->n1w || g->n1b, qkvin = ln1 || g->qkvw || g->qkvb;
    if (!qkvin) return 0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, D, 1.0f, w->dXm, D, b->projw, D, 0.0f, w->dA, D);   /* dA */
    memset(w->dqkv, 0, sizeof(float) * 3 * TD);
    glad_mhsa_backward(w->dqkv, w->dA, qkv, T, D, c->heads, w->att);
    if (g->qkvw) glad_layernorm_forward(w->h, xin, b->n1w, b->n1b, T, D, c->eps);
    linear_wgrad(g->qkvw, v->qkv_bias ? g->qkvb : NULL, w->dqkv, w->h, T, D, 3 * D);
    if (!ln1) return 0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, 3 * D, 1.0f, w->dqkv, 3 * D, b->qkvw, D, 0.0f, w->dh, D);   /* dH1 */
    if (below) memcpy(dX, w->dXm, sizeof(float) * TD);
    glad_layernorm_backward(below ? dX : NULL, g->n1w ? g->n1w : w->sink, g->n1b ? g->n1b : w->sink + D, w->dh, xin, b->n1w,
                            T, D, c->eps);
    return below;
}

/* dX += the requested gradients of block k's output for image b */
static void inject(const glad_vit_tape *t, float *dX, float *const *dtokens, int k, int b, size_t TD)
{
    for (int i = 0; i < t->nb; i++) {
        if (t->blocks[i] != k || !dtokens[i]) continue;
        const float *s = dtokens[i] + (size_t)b * TD;
        for (size_t j = 0; j < TD; j++) dX[j] += s[j];
    }
}

int glad_vit_backward(glad_vit_tape *t, float *const *dtokens, float *dx)
{
    if (!t || !t->B) return glad_fail(GLAD_EINVAL, "glad_vit_backward: no training forward to take the gradient of");
    if (!dtokens && t->nb > 0) return GLAD_EINVAL;
    const glad_vit *v = t->v;
    const glad_vit_config *c = &v->cfg;
    int p = c->patch, H = t->H, W = t->W, gh = H / p, gw = W / p, N = gh * gw, T = N + 1, D = c->dim, Hm = c->mlp_hidden;
    int last = t->last, g0 = c->pos_grid;
    size_t TD = (size_t)T * D, THm = (size_t)T * Hm, per_img = (size_t)3 * H * W, blk = (size_t)T * last * TAPE_PER_TOKEN(c);
    /* need[k] (k = 1..last): something at or below block k wants a gradient */
    int emb = t->gcls || t->gpos || t->gpe_w || t->gpe_b || dx;
    int need[257];
    need[0] = emb;
    for (int k = 1; k <= last; k++) {
        const vit_gblock *g = &t->gb[k - 1];
        need[k] = need[k - 1] || g->n1w || g->n1b || g->qkvw || g->qkvb || g->projw || g->projb || g->n2w || g->n2b ||
                  g->fc1w || g->fc1b || g->fc2w || g->fc2b;
    }
    if (!need[last]) return 0;
    size_t convw = glad_conv2d_workspace(3, H, W, D, p, p, p, 0), att = glad_mhsa_workspace(T, c->heads);
    size_t sink = 2 * (size_t)D + (size_t)D * 3 * p * p;
    size_t n = 8 * TD + 2 * THm + att + TD + (size_t)D * N + convw + sink;   /* dX, dXm, h, dh, dA, dqkv (3) | G, dU | att | dpos | ... */
    /* each term is below the forward's checked sizes but the attention scratch
     * (heads 2 QT T); none overflows, the sum may still be too large */
    if (n > GLAD_MAX_ALLOC / sizeof(float)) return glad_fail(GLAD_ERANGE, "ViT backward: %zu MB of scratch", n * 4 >> 20);
    float *m = malloc(n * sizeof(float));
    if (!m) return glad_fail(GLAD_ENOMEM, "ViT backward: out of memory");
    float *dX = m;
    vit_bws w;
    w.dXm = dX + TD; w.h = w.dXm + TD; w.dh = w.h + TD; w.dA = w.dh + TD; w.dqkv = w.dA + TD;
    w.G = w.dqkv + 3 * TD; w.dU = w.G + THm; w.att = w.dU + THm; w.dpos = w.att + att; w.dconv = w.dpos + TD;
    w.conv = w.dconv + (size_t)D * N; w.sink = w.conv + convw;
    memset(w.dpos, 0, sizeof(float) * TD);
    for (int b = 0; b < t->B; b++) {
        const float *tape = t->tape + (size_t)b * blk;
        memset(dX, 0, sizeof(float) * TD);
        inject(t, dX, dtokens, last, b, TD);
        int k = last;
        for (; k >= 1; k--) {
            if (!block_backward(t, &w, dX, tape + (size_t)(k - 1) * T * TAPE_PER_TOKEN(c), k, T, need[k - 1])) break;
            if (k > 1) inject(t, dX, dtokens, k - 1, b, TD);
        }
        if (k > 0) continue;   /* stopped above the embedding: nothing there wants a gradient */
        /* tokens = [cls ; conv^T] + pos */
        if (t->gcls) for (int d = 0; d < D; d++) t->gcls[d] += dX[d];
        if (t->gpos) for (size_t j = 0; j < TD; j++) w.dpos[j] += dX[j];
        if (t->gpe_w || t->gpe_b || dx) {
            // channels are independent
            #pragma omp parallel for schedule(static) if ((long)N * D > 65536)
            for (int d = 0; d < D; d++)
                for (int q = 0; q < N; q++) w.dconv[(size_t)d * N + q] = dX[(size_t)(q + 1) * D + d];
            glad_conv2d_backward(dx ? dx + (size_t)b * per_img : NULL, t->gpe_w ? t->gpe_w : w.sink + 2 * D, t->gpe_b, w.dconv,
                                 t->x + (size_t)b * per_img, v->pe_w, 1, 3, H, W, D, p, p, p, 0, w.conv, GLAD_DX_ADD);
        }
    }
    int rc = 0;
    if (t->gpos) {
        /* pos_for_grid: the stored grid itself, or cls + its bicubic resampling */
        if ((long)gh * gw == (long)g0 * g0 && H == W)
            for (size_t j = 0; j < TD; j++) t->gpos[j] += w.dpos[j];
        else {
            for (int d = 0; d < D; d++) t->gpos[d] += w.dpos[d];
            rc = glad_vit_pos_interp_backward(t->gpos + D, w.dpos + D, g0, D, gh, gw);
            if (rc) rc = glad_fail(rc, "ViT backward: out of memory");
        }
    }
    free(m);
    return rc;
}

int glad_vit_save(const glad_vit *v, const char *path)
{
    if (!v || !path) return GLAD_EINVAL;
    const glad_vit_config *c = &v->cfg;
    if (c->mlp_hidden % c->dim)
        return glad_fail(GLAD_EUNSUPPORTED, "%s: MLP width %d is not a multiple of embed_dim %d (no config can say it)", path, c->mlp_hidden, c->dim);
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"patch_size\": %d, \"embed_dim\": %d, \"depth\": %d, \"num_heads\": %d, \"mlp_ratio\": %d, \"qkv_bias\": %s, "
             "\"layernorm_eps\": %.9g, \"pos_grid\": %d}",
             c->patch, c->dim, c->depth, c->heads, c->mlp_hidden / c->dim, v->qkv_bias ? "true" : "false", (double)c->eps, c->pos_grid);
    const char **names = malloc(sizeof(char *) * (size_t)v->npar);
    glad_tensor *ts = calloc((size_t)v->npar, sizeof *ts);
    const glad_tensor **tp = malloc(sizeof(glad_tensor *) * (size_t)v->npar);
    int rc = GLAD_ENOMEM;
    if (names && ts && tp) {
        for (int i = 0; i < v->npar; i++) {
            const pdesc *q = &v->par[i];
            ts[i].dtype = GLAD_DT_F32;
            ts[i].ndim = q->ndim;
            for (int d = 0; d < q->ndim; d++) ts[i].shape[d] = q->shape[d];
            ts[i].data = v->w + q->off;
            names[i] = q->name;
            tp[i] = &ts[i];
        }
        const char *mk[1] = {"config"}, *mv[1] = {cfg};
        rc = glad_st_save(path, v->npar, names, tp, 1, mk, mv);
    } else
        rc = glad_fail(rc, "%s: out of memory", path);
    free(names);
    free(ts);
    free(tp);
    return rc;
}
