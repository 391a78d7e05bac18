/* adapt.c - DDAD's domain adaptation and GLAD's DINO fine-tuning (adapt.h):
 * the cosine feature losses with their gradients, the two step functions,
 * the data, the epoch loop, and the feat{k} checkpoints. Not the networks'
 * forward/backward (resnet.c, vit.c) and not the sampler (denoise.c). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/rng.h"
#include "diffusion/denoise.h"
#include "diffusion/model.h"
#include "diffusion/unet_eps.h"
#include "imgproc/resize.h"
#include "io/record.h"
#include "io/safetensors.h"
#include "io/stream.h"
#include "models/adapt.h"
#include "nn/nn.h"

const char *const glad_adapt_methods[] = {"ddad-da", "dino-ft", NULL};

/* ------------------------------------------------------------------ losses */

double glad_adapt_cos_loss(const float *a, const float *b, int B, size_t per, double scale, float *da, float *db)
{
    const double eps = 1e-8;   /* torch.nn.CosineSimilarity: x·y / sqrt(max(|x|²|y|², eps²)) */
    double L = 0;
    for (int r = 0; r < B; r++) {
        const float *x = a + per * r, *y = b + per * r;
        double d = 0, nx = 0, ny = 0;
        // three dot products in double: the maps have up to millions of values
        #pragma omp parallel for reduction(+ : d, nx, ny) schedule(static) if (per > 65536)
        for (size_t i = 0; i < per; i++) { d += (double)x[i] * y[i]; nx += (double)x[i] * x[i]; ny += (double)y[i] * y[i]; }
        double p = nx * ny, clamped = p < eps * eps, N = clamped ? eps : sqrt(p), c = d / N;
        L += scale * (1.0 - c);
        /* d(1 − cos)/dx = −(y/N − cos x/|x|²) (no norm term when clamped) */
        float fx = (float)(-scale / N), gx = clamped ? 0.0f : (float)(scale * c / nx), gy = clamped ? 0.0f : (float)(scale * c / ny);
        float *ox = da ? da + per * r : NULL, *oy = db ? db + per * r : NULL;
        // elementwise
        #pragma omp parallel for schedule(static) if (per > 65536)
        for (size_t i = 0; i < per; i++) {
            if (ox) ox[i] += fx * y[i] + gx * x[i];
            if (oy) oy[i] += fx * x[i] + gy * y[i];
        }
    }
    return L;
}

#define NL 3   /* DDAD's feature extractor returns layer1..layer3 */
static const int ddad_layers[NL] = {1, 2, 3};

int glad_adapt_ddad_grad(glad_resnet_train *t, glad_resnet *frozen, const float *x0, const float *y, int B, int H, int W,
                         double lambda, double *loss)
{
    float *a[NL] = {0}, *b[NL] = {0}, *c[NL] = {0}, *d[NL] = {0}, *da[NL] = {0}, *db[NL] = {0};
    size_t per[NL];
    int rc = 0;
    for (int l = 0; l < NL; l++) {
        int C, h, w;
        GLAD_TRYG(rc, glad_resnet_train_out_shape(t, ddad_layers[l], H, W, &C, &h, &w), out);
        per[l] = (size_t)C * h * w;
        size_t n = per[l] * (size_t)B;
        a[l] = malloc(n * 4); b[l] = malloc(n * 4); c[l] = malloc(n * 4); d[l] = malloc(n * 4);
        da[l] = calloc(n, 4); db[l] = calloc(n, 4);
        if (!a[l] || !b[l] || !c[l] || !d[l] || !da[l] || !db[l]) { rc = glad_fail(GLAD_ENOMEM, "out of memory (features)"); goto out; }
    }
    glad_resnet_train_zero_grad(t);
    /* feature_extractor.py: reconst_fe = fe(x0); target_fe = fe(target); then the frozen net on both */
    GLAD_TRYG(rc, glad_resnet_train_forward(t, 0, x0, B, H, W, NL, ddad_layers, a, 1), out);
    GLAD_TRYG(rc, glad_resnet_train_forward(t, 1, y, B, H, W, NL, ddad_layers, b, 1), out);
    if (lambda != 0) {
        GLAD_TRYG(rc, glad_resnet_forward_batch(frozen, y, B, H, W, NL, ddad_layers, c), out);
        GLAD_TRYG(rc, glad_resnet_forward_batch(frozen, x0, B, H, W, NL, ddad_layers, d), out);
    }
    double L = 0;
    for (int l = 0; l < NL; l++) {
        L += glad_adapt_cos_loss(a[l], b[l], B, per[l], 1.0 / B, da[l], db[l]);
        if (lambda != 0) {
            L += glad_adapt_cos_loss(b[l], c[l], B, per[l], lambda / B, db[l], NULL);
            L += glad_adapt_cos_loss(a[l], d[l], B, per[l], lambda / B, da[l], NULL);
        }
    }
    if (!isfinite(L)) { rc = glad_fail(GLAD_ENAN, "the domain-adaptation loss is not finite"); goto out; }
    GLAD_TRYG(rc, glad_resnet_train_backward(t, 0, NL, ddad_layers, (const float *const *)da, NULL), out);
    GLAD_TRYG(rc, glad_resnet_train_backward(t, 1, NL, ddad_layers, (const float *const *)db, NULL), out);
    *loss = L;
out:
    for (int l = 0; l < NL; l++) { free(a[l]); free(b[l]); free(c[l]); free(d[l]); free(da[l]); free(db[l]); }
    return rc;
}

#define NB 4   /* GLAD's 4 feature blocks */

int glad_adapt_dino_blocks(int depth, int *blocks)
{
    int n = 0;
    for (int q = 1; q <= 4; q++) {   /* as glad_backbone_default_layers: (d q + 2) / 4 */
        int b = (depth * q + 2) / 4;
        if (b >= 1 && (n == 0 || b > blocks[n - 1])) blocks[n++] = b;
    }
    return n;
}

int glad_adapt_dino_grad(glad_vit_tape *tp, glad_vit *frozen, const float *xi, const float *xr, int B, int H, int W, int nb,
                         const int *blocks, double lambda, double scale, double *loss)
{
    const glad_vit_config *vc = glad_vit_cfg(frozen);
    if (nb < 1 || nb > NB || H % vc->patch || W % vc->patch) return glad_fail(GLAD_EINVAL, "dino-ft: %d blocks at %dx%d", nb, H, W);
    size_t T = 1 + (size_t)(H / vc->patch) * (W / vc->patch), per = T * vc->dim, img = (size_t)3 * H * W;
    float *x = malloc(2 * img * 4), *tk[NB] = {0}, *fz[NB] = {0}, *dt[NB] = {0};
    int rc = 0;
    if (!x) return glad_fail(GLAD_ENOMEM, "out of memory");
    for (int l = 0; l < nb; l++) {
        tk[l] = malloc(2 * per * 4); fz[l] = malloc(2 * per * 4); dt[l] = malloc(2 * per * 4);
        if (!tk[l] || !fz[l] || !dt[l]) { rc = glad_fail(GLAD_ENOMEM, "out of memory (tokens)"); goto out; }
    }
    double L = 0;
    /* record by record: the image and its reconstruction as one batch of 2 (the ViT computes each image alone) */
    for (int r = 0; r < B; r++) {
        memcpy(x, xi + img * r, img * 4);
        memcpy(x + img, xr + img * r, img * 4);
        GLAD_TRYG(rc, glad_vit_train_forward(tp, x, 2, H, W, nb, blocks, tk), out);
        if (lambda != 0) GLAD_TRYG(rc, glad_vit_forward_tokens(frozen, x, 2, H, W, nb, blocks, fz, NULL), out);
        double Lr = 0;
        for (int l = 0; l < nb; l++) {
            memset(dt[l], 0, 2 * per * 4);
            Lr += glad_adapt_cos_loss(tk[l], tk[l] + per, 1, per, scale / B, dt[l], dt[l] + per);
            /* λ (1 − cos(T_i, T̄_i)) + λ (1 − cos(T_r, T̄_r)): the pair as 2 records */
            if (lambda != 0) Lr += glad_adapt_cos_loss(tk[l], fz[l], 2, per, lambda * scale / B, dt[l], NULL);
        }
        if (!isfinite(Lr)) { rc = glad_fail(GLAD_ENAN, "the DINO fine-tuning loss is not finite"); goto out; }
        GLAD_TRYG(rc, glad_vit_backward(tp, dt, NULL), out);
        L += Lr;
    }
    *loss = scale != 0 ? L / scale : 0;
out:
    free(x);
    for (int l = 0; l < NB; l++) { free(tk[l]); free(fz[l]); free(dt[l]); }
    return rc;
}

uint64_t glad_adapt_noise_seed(uint64_t seed, long epoch)
{
    uint64_t s = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1));
    return glad_rng_splitmix64(&s);
}

/* ------------------------------------------------------------------ data */

/* n records: img (and for dino-ft rec) n x 3 x S x S floats; ids their hashes */
typedef struct {
    int n, C, S;
    float *img, *rec;
    uint64_t *ids;
} adata;

static void adata_free(adata *d) { free(d->img); free(d->rec); free(d->ids); memset(d, 0, sizeof *d); }

/* (x+1)/2 then ImageNet mean/std, 3 channels of hw values, in place */
static void imagenet(float *x, size_t hw)
{
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < hw; i++) x[c * hw + i] = ((x[c * hw + i] + 1.0f) * 0.5f - mean[c]) / sd[c];
}

/* field of r as 3 x S x S floats in [-1,1] into dst (grey replicated), resized to S x S when size > 0
 * (bilinear, align_corners, as train_dino.py's interpolate), else S x S must be the record's */
static int get_image(const glad_record *r, const char *field, int S, int resize, float *dst, int *C0)
{
    const char *id = glad_record_id(r);
    const glad_tensor *t;
    int c, h, w;
    if (glad_record_get_tensor(r, field, &t)) return glad_fail(GLAD_EFORMAT, "record '%s': '%s' missing", id, field);
    if (glad_tensor_chw(t, &c, &h, &w) || (c != 1 && c != 3))
        return glad_fail(GLAD_ESHAPE, "record '%s': '%s' is not a [C,H,W] image with 1 or 3 channels", id, field);
    if (*C0 && c != *C0) return glad_fail(GLAD_ESHAPE, "record '%s': '%s' has %d channels, the first record %d", id, field, c, *C0);
    if (!resize && (h != S || w != S))
        return glad_fail(GLAD_ESHAPE, "record '%s': '%s' is %dx%d, the first record's %dx%d (images must be square and of one size)", id, field, h, w, S, S);
    *C0 = c;
    size_t m = (size_t)c * h * w;
    float *f = malloc(m * 4), *z = NULL;
    if (!f) return glad_fail(GLAD_ENOMEM, "out of memory");
    int rc = glad_tensor_image_to_f32(t, f);
    for (size_t i = 0; !rc && i < m; i++) if (!isfinite(f[i])) rc = glad_fail(GLAD_ENAN, "record '%s': '%s' contains NaN or infinity", id, field);
    size_t hw = (size_t)S * S;
    if (!rc && (h != S || w != S)) {
        if (!(z = malloc((size_t)c * hw * 4))) rc = glad_fail(GLAD_ENOMEM, "out of memory");
        else if ((rc = glad_resize_bilinear(z, S, S, f, c, h, w, 1))) rc = glad_fail(rc, "record '%s': '%s': cannot resize", id, field);
    }
    if (!rc) {
        const float *s = z ? z : f;
        for (int k = 0; k < 3; k++) memcpy(dst + hw * k, s + hw * (c == 3 ? k : 0), hw * 4);
    }
    free(f); free(z);
    return rc;
}

typedef struct { adata *d; int two, size, cap, c0, c1; const char *name; } loader;

/* one record's 'image' (and 'recon' when two) into slot d->n, growing the arrays */
static int load_one(const glad_record *r, void *arg)
{
    loader *l = arg;
    adata *d = l->d;
    if (d->n == 0) {
        const glad_tensor *t;
        int c, h, w;
        if (glad_record_get_tensor(r, "image", &t) == 0 && glad_tensor_chw(t, &c, &h, &w) == 0) d->S = l->size > 0 ? l->size : h;
        if (d->S <= 0 || d->S > GLAD_RESIZE_MAX_SIDE) d->S = 1;
    }
    size_t per = (size_t)3 * d->S * d->S;
    if (d->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 64;
        size_t bytes;
        if (glad_mul_size(per * 4, (size_t)nc, &bytes) || bytes > GLAD_MAX_ALLOC) return glad_fail(GLAD_ERANGE, "%s: too many images to hold", l->name);
        float *ni = realloc(d->img, bytes), *nr = l->two ? realloc(d->rec, bytes) : NULL;
        if (ni) d->img = ni;
        if (nr) d->rec = nr;
        uint64_t *nd = realloc(d->ids, sizeof(uint64_t) * (size_t)nc);
        if (nd) d->ids = nd;
        if (!ni || (l->two && !nr) || !nd) return glad_fail(GLAD_ENOMEM, "out of memory");
        l->cap = nc;
    }
    GLAD_TRY(get_image(r, "image", d->S, l->size > 0, d->img + per * d->n, &l->c0));
    if (l->two) GLAD_TRY(get_image(r, "recon", d->S, l->size > 0, d->rec + per * d->n, &l->c1));
    const char *id = glad_record_id(r);
    d->ids[d->n++] = glad_rng_hash_str(id ? id : "");
    return 0;
}

/* every record's 'image' (and 'recon' when two) */
static int adata_load(adata *d, const char *path, int two, int size)
{
    memset(d, 0, sizeof *d);
    loader l = {d, two, size, 0, 0, 0, !path || !strcmp(path, "-") ? "<stdin>" : path};
    int rc = glad_reader_each(path, load_one, &l);
    d->C = l.c0;
    if (rc == 0 && d->n == 0) rc = glad_fail(GLAD_ENOTFOUND, "no records in %s", l.name);
    if (rc < 0) adata_free(d);
    return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------ the loop */

typedef struct { size_t off, n; } range;

struct glad_adapt_priv {
    adata data;
    /* ddad-da */
    glad_resnet_train *rt;
    glad_resnet *rfrozen;
    glad_model model;
    glad_unet_eps ue;
    int have_ue;
    glad_denoise_opts dopts;
    /* dino-ft */
    glad_vit *vit, *vfrozen;
    glad_vit_tape *tape;
    int nb, blocks[NB];
    /* the optimiser over the trained ranges of the flat parameters */
    float *p, *g, *m, *v;
    range *rg;
    int nrg;
    size_t nopt;
    int *perm;
};

void glad_adapt_config_default(glad_adapt_config *c, int method)
{
    memset(c, 0, sizeof *c);
    c->method = method;
    c->epochs = c->batch = c->accum = c->t_start = c->skip = c->size = -1;
    c->lr = c->wd = c->lambda = c->w_da = -1;
    c->seed = -1;
}

static void resolve(glad_adapt_config *c)
{
    int dd = c->method == GLAD_ADAPT_DDAD_DA;
    if (c->epochs < 0) c->epochs = dd ? 4 : 15;
    if (c->batch < 0) c->batch = 16;
    if (c->accum < 0) c->accum = dd ? 1 : 2;
    if (c->lr < 0) c->lr = dd ? 1e-4 : 3e-4;
    if (c->wd < 0) c->wd = dd ? 0.01 : 0;
    if (c->lambda < 0) c->lambda = dd ? 0.1 : 0.01;
    if (c->w_da < 0) c->w_da = dd ? 3 : 0;
    if (c->t_start < 0) c->t_start = dd ? 250 : 0;
    if (c->skip < 0) c->skip = dd ? 25 : 0;
    if (c->size < 0) c->size = dd ? 0 : 256;
    if (c->seed < 0) c->seed = 0;
}

char *glad_adapt_feat_path(const char *outdir, long k) { return glad_strfmt("%s/feat%ld.safetensors", outdir, k); }
static char *state_path(const char *outdir, long k) { return glad_strfmt("%s/feat%ld.state.safetensors", outdir, k); }

static int save_weights(glad_adapt *a, const char *path)
{
    return a->cfg.method == GLAD_ADAPT_DDAD_DA ? glad_resnet_train_save(a->p->rt, path) : glad_vit_save(a->p->vit, path);
}

/* the settings a resumed run must share with its checkpoint, as text */
#define NSET 11
static void settings(const glad_adapt *a, char vals[NSET][40])
{
    const glad_adapt_config *c = &a->cfg;
    snprintf(vals[0], 40, "%s", glad_adapt_methods[c->method]);
    snprintf(vals[1], 40, "%d", c->batch);
    snprintf(vals[2], 40, "%d", c->accum);
    snprintf(vals[3], 40, "%.17g", c->lr);
    snprintf(vals[4], 40, "%.17g", c->wd);
    snprintf(vals[5], 40, "%.17g", c->lambda);
    snprintf(vals[6], 40, "%.17g", c->w_da);
    snprintf(vals[7], 40, "%d", c->t_start);
    snprintf(vals[8], 40, "%d", c->skip);
    snprintf(vals[9], 40, "%d", c->size);
    snprintf(vals[10], 40, "%lld", (long long)c->seed);
}
static const char *const set_keys[NSET] = {"method", "batch", "accum", "lr", "wd", "lambda", "w_da", "t_start", "skip", "size", "seed"};

static int save_state(glad_adapt *a, const char *path)
{
    glad_adapt_priv *p = a->p;
    char vals[NSET + 2][40];
    const char *keys[NSET + 2], *vp[NSET + 2];
    settings(a, vals);
    for (int i = 0; i < NSET; i++) keys[i] = set_keys[i];
    keys[NSET] = "epoch"; keys[NSET + 1] = "step";
    snprintf(vals[NSET], 40, "%ld", a->epoch);
    snprintf(vals[NSET + 1], 40, "%ld", a->step);
    for (int i = 0; i < NSET + 2; i++) vp[i] = vals[i];
    glad_tensor tm = {.dtype = GLAD_DT_F32, .ndim = 1, .shape = {(int64_t)p->nopt}, .data = p->m};
    glad_tensor tv = {.dtype = GLAD_DT_F32, .ndim = 1, .shape = {(int64_t)p->nopt}, .data = p->v};
    const char *names[2] = {"adam.m", "adam.v"};
    const glad_tensor *ts[2] = {&tm, &tv};
    return glad_st_save(path, 2, names, ts, NSET + 2, keys, vp);
}

/* the last epoch with a state file in dir, or -1 */
static long last_state(const char *dir)
{
    DIR *d = opendir(dir);
    long best = -1;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        long k;
        int len = 0;
        if (sscanf(e->d_name, "feat%ld.state.safetensors%n", &k, &len) == 1 && len > 0 && !e->d_name[len] && k > best) best = k;
    }
    closedir(d);
    return best;
}

/* a fresh start: the states of an earlier run in dir would be resumed from later */
static int remove_states(const char *dir)
{
    long k;
    while ((k = last_state(dir)) >= 0) {
        char *s = state_path(dir, k);
        if (!s) return glad_fail(GLAD_ENOMEM, "out of memory");
        int rc = remove(s) ? glad_fail(GLAD_EIO, "%s: %s", s, strerror(errno)) : 0;
        free(s);
        if (rc) return rc;
    }
    return 0;
}

static int load_state(glad_adapt *a, const char *path)
{
    glad_st *st;
    GLAD_TRY(glad_st_open(&st, path));
    char vals[NSET][40];
    settings(a, vals);
    int rc = 0;
    for (int i = 0; i < NSET && !rc; i++) {
        const char *s = glad_st_meta(st, set_keys[i]);
        if (!s) rc = glad_fail(GLAD_EFORMAT, "%s: metadata '%s' missing", path, set_keys[i]);
        else if (strcmp(s, vals[i]))
            rc = glad_fail(GLAD_ERANGE, "%s: the checkpoint has %s %s, this run %s (give the checkpoint's settings to resume)", path, set_keys[i], s, vals[i]);
    }
    const char *se = glad_st_meta(st, "epoch"), *ss = glad_st_meta(st, "step");
    if (!rc && (!se || !ss || sscanf(se, "%ld", &a->epoch) != 1 || sscanf(ss, "%ld", &a->step) != 1 || a->epoch < 0 || a->step < 0))
        rc = glad_fail(GLAD_EFORMAT, "%s: metadata 'epoch' or 'step' missing or bad", path);
    const char *nm[2] = {"adam.m", "adam.v"};
    float *dst[2] = {a->p->m, a->p->v};
    for (int i = 0; i < 2 && !rc; i++) {
        const glad_st_entry *e = glad_st_find(st, nm[i]);
        if (!e) rc = glad_fail(GLAD_EFORMAT, "%s: tensor '%s' missing", path, nm[i]);
        else if (e->dtype != GLAD_DT_F32 || e->ndim != 1 || e->shape[0] != (int64_t)a->p->nopt)
            rc = glad_fail(GLAD_ESHAPE, "%s: tensor '%s' is not f32 [%zu] (another backbone?)", path, nm[i], a->p->nopt);
        else memcpy(dst[i], glad_st_data(st, e), a->p->nopt * 4);
    }
    glad_st_close(st);
    return rc;
}

/* the trained ranges: resnet tensors with a gradient in layer1..3 and the
 * stem (PyTorch's AdamW skips the parameters that get no gradient: layer4,
 * fc); vit: blocks.{b-1}.mlp. of the feature blocks */
static int add_range(glad_adapt_priv *p, size_t off, size_t n)
{
    range *r = realloc(p->rg, sizeof(range) * (size_t)(p->nrg + 1));
    if (!r) return glad_fail(GLAD_ENOMEM, "out of memory");
    p->rg = r;
    if (p->nrg && p->rg[p->nrg - 1].off + p->rg[p->nrg - 1].n == off) p->rg[p->nrg - 1].n += n;   /* merge neighbours */
    else p->rg[p->nrg++] = (range){off, n};
    p->nopt += n;
    return 0;
}

static int make_ranges(glad_adapt *a)
{
    glad_adapt_priv *p = a->p;
    size_t n;
    if (a->cfg.method == GLAD_ADAPT_DDAD_DA) {
        p->p = glad_resnet_train_params(p->rt, &p->g, &n);
        int nt = glad_resnet_train_ntensors(p->rt);
        for (int i = 0; i < nt; i++) {
            glad_resnet_tensor t;
            GLAD_TRY(glad_resnet_train_tensor(p->rt, i, &t));
            if (!t.grad || !strncmp(t.name, "layer4.", 7) || !strncmp(t.name, "fc.", 3)) continue;
            GLAD_TRY(add_range(p, (size_t)(t.data - p->p), t.n));
        }
    } else {
        p->p = glad_vit_params(p->vit, &n);
        p->g = glad_vit_grads(p->tape, &n);
        int np = glad_vit_param_count(p->vit);
        for (int i = 0; i < np; i++) {
            const char *nm = glad_vit_param_name(p->vit, i);
            for (int k = 0; k < p->nb; k++) {
                char pre[48];
                snprintf(pre, sizeof pre, "blocks.%d.mlp.", p->blocks[k] - 1);
                if (strncmp(nm, pre, strlen(pre))) continue;
                size_t cnt;
                float *d = glad_vit_param(p->vit, nm, &cnt);
                GLAD_TRY(add_range(p, (size_t)(d - p->p), cnt));
            }
        }
    }
    if (!(p->m = calloc(p->nopt ? p->nopt : 1, 4)) || !(p->v = calloc(p->nopt ? p->nopt : 1, 4))) return glad_fail(GLAD_ENOMEM, "out of memory");
    return 0;
}

void glad_adapt_adam_cfg(const glad_adapt_config *c, glad_adam_cfg *out)
{
    /* torch.optim.AdamW(lr 1e-4) (wd 0.01 default) / torch.optim.Adam(lr 3e-4): betas 0.9, 0.999, eps 1e-8 */
    *out = (glad_adam_cfg){.lr = (float)c->lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .wd = (float)c->wd,
                           .decoupled = c->method == GLAD_ADAPT_DDAD_DA};
}

static void opt_step(glad_adapt *a)
{
    glad_adapt_priv *p = a->p;
    const glad_adapt_config *c = &a->cfg;
    glad_adam_cfg ac;
    glad_adapt_adam_cfg(c, &ac);
    a->step++;
    size_t o = 0;
    for (int i = 0; i < p->nrg; i++) {
        glad_adam_step(p->p + p->rg[i].off, p->g + p->rg[i].off, p->m + o, p->v + o, p->rg[i].n, &ac, a->step);
        o += p->rg[i].n;
    }
}

static int open_ddad(glad_adapt *a, const char *wpath)
{
    glad_adapt_priv *p = a->p;
    const glad_adapt_config *c = &a->cfg;
    if (!c->model) return glad_fail(GLAD_EINVAL, "ddad-da needs the diffusion model (--model)");
    if (c->batch < 2 || c->batch % 2) return glad_fail(GLAD_EINVAL, "ddad-da splits each batch in two halves: the batch must be even and >= 2 (is %d)", c->batch);
    if (c->accum != 1) return glad_fail(GLAD_EINVAL, "ddad-da has no gradient accumulation (--accum 1)");
    GLAD_TRY(glad_resnet_train_load(&p->rt, wpath));
    if (glad_resnet_train_nlayers(p->rt) < 3) return glad_fail(GLAD_EINVAL, "%s: DDAD's loss needs layer1..layer3", wpath);
    GLAD_TRY(glad_resnet_load_winograd(&p->rfrozen, c->backbone, 0));   /* plain weights: glad_resnet_forward_batch */
    GLAD_TRY(glad_model_load(&p->model, c->model));
    const glad_unet_config *uc = glad_unet_cfg(p->model.unet);
    if (uc->img_size != p->data.S || uc->in_channels != p->data.C)
        return glad_fail(GLAD_ESHAPE, "%s is for %dx%d images with %d channels, the stream has %dx%d with %d (resize with glad-encode --size)",
                         c->model, uc->img_size, uc->img_size, uc->in_channels, p->data.S, p->data.S, p->data.C);
    GLAD_TRY(glad_unet_eps_init(&p->ue, p->model.unet, p->data.C, p->data.S, p->data.S));
    p->have_ue = 1;
    glad_denoise_opts_default(&p->dopts);
    p->dopts.eta = 1;
    p->dopts.cond_w = c->w_da;
    if (c->t_start < 1 || c->t_start >= p->model.T || c->skip < 1 || c->skip > c->t_start)
        return glad_fail(GLAD_EINVAL, "the reconstruction starts at t %d with skip %d: needs 1 <= skip <= t < %d", c->t_start, c->skip, p->model.T);
    /* reconstruction.py: noise at T', calls at T'-S .. 0 */
    GLAD_TRY(glad_ddim_plan_make(&p->dopts.plan, p->model.alpha_bar, p->model.T, c->t_start, c->skip, GLAD_TS_DDAD));
    if (p->data.n < c->batch)
        return glad_fail(GLAD_EINVAL, "%d training records, fewer than one batch of %d (drop_last: no step; use a smaller --batch)", p->data.n, c->batch);
    return 0;
}

static int open_dino(glad_adapt *a, const char *wpath)
{
    glad_adapt_priv *p = a->p;
    const glad_adapt_config *c = &a->cfg;
    if (c->batch < 1 || c->accum < 1) return glad_fail(GLAD_EINVAL, "batch %d and accum %d must be >= 1", c->batch, c->accum);
    GLAD_TRY(glad_vit_load(&p->vit, wpath));
    GLAD_TRY(glad_vit_load(&p->vfrozen, c->backbone));
    const glad_vit_config *vc = glad_vit_cfg(p->vit), *fc = glad_vit_cfg(p->vfrozen);
    if (memcmp(vc, fc, sizeof *vc)) return glad_fail(GLAD_ESHAPE, "%s and %s are different ViTs", wpath, c->backbone);
    if (c->size % vc->patch) return glad_fail(GLAD_EINVAL, "--size %d is not a multiple of the patch %d", c->size, vc->patch);
    p->nb = glad_adapt_dino_blocks(vc->depth, p->blocks);
    char pre[NB][48];
    const char *pp[NB];
    for (int k = 0; k < p->nb; k++) { snprintf(pre[k], sizeof pre[k], "blocks.%d.mlp.", p->blocks[k] - 1); pp[k] = pre[k]; }
    GLAD_TRY(glad_vit_tape_new(&p->tape, p->vit, p->nb, pp));
    return 0;
}

int glad_adapt_open(glad_adapt **ap, const glad_adapt_config *cfg)
{
    *ap = NULL;
    if ((unsigned)cfg->method > GLAD_ADAPT_DINO_FT) return glad_fail(GLAD_EINVAL, "unknown adaptation method %d", cfg->method);
    if (!cfg->backbone || !cfg->outdir) return glad_fail(GLAD_EINVAL, "the backbone weights and the output directory are required");
    glad_adapt *a = calloc(1, sizeof *a);
    if (!a || !(a->p = calloc(1, sizeof *a->p))) { free(a); return glad_fail(GLAD_ENOMEM, "out of memory"); }
    a->cfg = *cfg;
    resolve(&a->cfg);
    const glad_adapt_config *c = &a->cfg;
    int dd = c->method == GLAD_ADAPT_DDAD_DA, rc = 0;
    char *wpath = NULL, *spath = NULL;
    if (c->epochs < 1 || c->lr < 0 || c->wd < 0 || c->lambda < 0 || (!dd && (c->size < 1 || c->size > 4096)))
        GLAD_TRYG(rc, glad_fail(GLAD_EINVAL, "epochs %d, lr %g, wd %g, lambda %g, size %d: out of range", c->epochs, c->lr, c->wd, c->lambda, c->size), fail);
    if (mkdir(c->outdir, 0777) && errno != EEXIST) GLAD_TRYG(rc, glad_fail(GLAD_EIO, "%s: %s", c->outdir, strerror(errno)), fail);
    long k = -1;
    if (c->resume) {
        if ((k = last_state(c->outdir)) < 0)
            GLAD_TRYG(rc, glad_fail(GLAD_ENOTFOUND, "%s: no feat{k}.state.safetensors to resume from", c->outdir), fail);
        if (k >= c->epochs)
            GLAD_TRYG(rc, glad_fail(GLAD_ERANGE, "%s: the checkpoint is at epoch %ld and training ends at epoch %d: nothing to do (ask for more epochs)",
                                    c->outdir, k, c->epochs), fail);
    }
    if (!(wpath = c->resume ? glad_adapt_feat_path(c->outdir, k) : strdup(c->backbone))) GLAD_TRYG(rc, GLAD_ENOMEM, fail);
    GLAD_TRYG(rc, adata_load(&a->p->data, c->input, !dd, dd ? 0 : c->size), fail);
    a->nrecords = a->p->data.n;
    GLAD_TRYG(rc, dd ? open_ddad(a, wpath) : open_dino(a, wpath), fail);
    GLAD_TRYG(rc, make_ranges(a), fail);
    if (!(a->p->perm = malloc(sizeof(int) * (size_t)a->p->data.n))) GLAD_TRYG(rc, glad_fail(GLAD_ENOMEM, "out of memory"), fail);
    a->epochs = c->epochs;
    if (c->resume) {
        if (!(spath = state_path(c->outdir, k))) GLAD_TRYG(rc, GLAD_ENOMEM, fail);
        GLAD_TRYG(rc, load_state(a, spath), fail);
        if (a->epoch != k) GLAD_TRYG(rc, glad_fail(GLAD_EFORMAT, "%s: says epoch %ld", spath, a->epoch), fail);
    } else {
        GLAD_TRYG(rc, remove_states(c->outdir), fail);
        char *f0 = glad_adapt_feat_path(c->outdir, 0);
        rc = f0 ? save_weights(a, f0) : GLAD_ENOMEM;   /* feat0: the pretrained weights */
        free(f0);
        if (rc) goto fail;
    }
    free(wpath); free(spath);
    *ap = a;
    return 0;
fail:
    free(wpath); free(spath);
    glad_adapt_close(a);
    return rc;
}

/* perm = a permutation of 0..n-1 drawn from glad_rng (seed, 1, epoch) (Fisher-Yates) */
static void permute(int *perm, int n, uint64_t seed, long epoch)
{
    glad_rng r;
    glad_rng_seed(&r, seed, 1, (uint64_t)epoch);
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)glad_rng_below(&r, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j]; perm[j] = t;
    }
}

static int epoch_ddad(glad_adapt *a)
{
    glad_adapt_priv *p = a->p;
    const adata *d = &p->data;
    int h = a->cfg.batch / 2, rc = 0, S = d->S, C = d->C;
    size_t per = (size_t)C * S * S, hw = (size_t)S * S, p3 = 3 * hw;
    float *y = malloc(per * h * 4), *xin = malloc(per * h * 4), *x0 = malloc(per * h * 4), *x0n = malloc(p3 * h * 4), *yn = malloc(p3 * h * 4);
    uint64_t *ids = malloc(sizeof(uint64_t) * (size_t)h);
    if (!y || !xin || !x0 || !x0n || !yn || !ids) { rc = glad_fail(GLAD_ENOMEM, "out of memory"); goto out; }
    glad_rng_noise nz;
    const glad_noise_fn *nf = glad_rng_noise_init(&nz, glad_adapt_noise_seed((uint64_t)a->cfg.seed, a->epoch), ids);
    long steps = d->n / a->cfg.batch;   /* drop_last */
    double sum = 0;
    for (long s = 0; s < steps; s++) {
        const int *idx = p->perm + s * a->cfg.batch;
        /* target = the first half, input = the second (feature_extractor.py:80-82); stored images have 3
         * channels (grey replicated), the diffusion model C */
        for (int b = 0; b < h; b++) {
            for (int k = 0; k < C; k++) {
                memcpy(y + per * b + hw * k, d->img + p3 * idx[b] + hw * k, hw * 4);
                memcpy(xin + per * b + hw * k, d->img + p3 * idx[h + b] + hw * k, hw * 4);
            }
            ids[b] = d->ids[idx[h + b]];
        }
        GLAD_TRYG(rc, glad_denoise_run_cond(glad_unet_eps_fn(&p->ue), nf, &p->dopts, h, xin, y, x0), out);
        for (int b = 0; b < h; b++)
            for (int k = 0; k < 3; k++) {
                memcpy(x0n + p3 * b + hw * k, x0 + per * b + hw * (C == 3 ? k : 0), hw * 4);
                memcpy(yn + p3 * b + hw * k, y + per * b + hw * (C == 3 ? k : 0), hw * 4);
            }
        for (int b = 0; b < h; b++) { imagenet(x0n + p3 * b, hw); imagenet(yn + p3 * b, hw); }
        GLAD_TRYG(rc, glad_adapt_ddad_grad(p->rt, p->rfrozen, x0n, yn, h, S, S, a->cfg.lambda, &a->loss), out);
        opt_step(a);
        sum += a->loss;
    }
    a->epoch_loss = sum / (double)steps;
out:
    free(y); free(xin); free(x0); free(x0n); free(yn); free(ids);
    return rc;
}

static int epoch_dino(glad_adapt *a)
{
    glad_adapt_priv *p = a->p;
    const adata *d = &p->data;
    const glad_adapt_config *c = &a->cfg;
    size_t hw = (size_t)d->S * d->S, p3 = 3 * hw;
    float *xi = malloc(p3 * (size_t)c->batch * 4), *xr = malloc(p3 * (size_t)c->batch * 4);
    int rc = 0;
    if (!xi || !xr) { rc = glad_fail(GLAD_ENOMEM, "out of memory"); goto out; }
    long nbatch = (d->n + c->batch - 1) / c->batch;   /* the last batch short (no drop_last) */
    double sum = 0;
    glad_vit_zero_grad(p->tape);
    for (long j = 0; j < nbatch; j++) {
        int B = (int)(j + 1 < nbatch ? c->batch : d->n - j * c->batch);
        for (int b = 0; b < B; b++) {
            int r = p->perm[j * c->batch + b];
            memcpy(xi + p3 * b, d->img + p3 * r, p3 * 4);
            memcpy(xr + p3 * b, d->rec + p3 * r, p3 * 4);
            imagenet(xi + p3 * b, hw);
            imagenet(xr + p3 * b, hw);
        }
        /* accelerate: each loss / accum, a step every accum batches and at the end of the epoch */
        GLAD_TRYG(rc, glad_adapt_dino_grad(p->tape, p->vfrozen, xi, xr, B, d->S, d->S, p->nb, p->blocks, c->lambda, 1.0 / c->accum, &a->loss), out);
        sum += a->loss;
        if ((j + 1) % c->accum == 0 || j + 1 == nbatch) {
            opt_step(a);
            glad_vit_zero_grad(p->tape);
        }
    }
    a->epoch_loss = sum / (double)nbatch;
out:
    free(xi); free(xr);
    return rc;
}

int glad_adapt_epoch(glad_adapt *a)
{
    if (a->epoch >= a->epochs) return glad_fail(GLAD_ERANGE, "training ended at epoch %ld", a->epochs);
    permute(a->p->perm, a->p->data.n, (uint64_t)a->cfg.seed, a->epoch);
    GLAD_TRY(a->cfg.method == GLAD_ADAPT_DDAD_DA ? epoch_ddad(a) : epoch_dino(a));
    a->epoch++;
    /* the weights, then the state that marks the epoch complete; the previous state goes (one state is enough to resume) */
    char *w = glad_adapt_feat_path(a->cfg.outdir, a->epoch), *s = state_path(a->cfg.outdir, a->epoch),
         *old = state_path(a->cfg.outdir, a->epoch - 1);
    int rc = !w || !s || !old ? glad_fail(GLAD_ENOMEM, "out of memory") : 0;
    if (!rc) rc = save_weights(a, w);
    if (!rc) rc = save_state(a, s);
    if (!rc) remove(old);
    free(w); free(s); free(old);
    return rc;
}

void glad_adapt_close(glad_adapt *a)
{
    if (!a) return;
    glad_adapt_priv *p = a->p;
    if (p) {
        adata_free(&p->data);
        glad_resnet_train_free(p->rt);
        glad_resnet_free(p->rfrozen);
        if (p->have_ue) glad_unet_eps_free(&p->ue);
        if (p->model.unet) glad_model_free(&p->model);
        glad_vit_tape_free(p->tape);
        glad_vit_free(p->vit);
        glad_vit_free(p->vfrozen);
        free(p->m); free(p->v); free(p->rg); free(p->perm);
        free(p);
    }
    free(a);
}
