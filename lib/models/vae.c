/* vae.c - AutoencoderKL inference (vae.h). The model is a parameter table
 * laid out from the config (names, shapes, offsets in one flat array) and the
 * block indices into it; a file is checked against the table before the
 * weights are allocated. A forward runs image by image through a few
 * activation slots that grow to the largest tensor they hold and are kept
 * between calls (an activation is written to a free slot, which then
 * becomes slot 0, the running one). Kernels are lib/nn's: 3x3 convolutions (fused with the
 * GroupNorm+SiLU before them where the CPU allows), 1x1 convolutions, the
 * legacy-layout attention with one head, nearest x2 upsampling. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/json.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "models/vae.h"
#include "nn/nn.h"

#define VAE_EPS 1e-6f          /* every VAE GroupNorm (vae.py, unet_2d_blocks.py) */
#define VAE_MAX_CH 8192
#define VAE_MAX_LAYERS 16
#define VAE_MAX_SIDE 16384     /* image side limit (pixels) */

typedef struct {
    char *name, *alt;          /* alt: the pre-v0.20 attention name (or NULL) */
    int ndim, lin;             /* lin: a Linear [C,C] that may also come as a 1x1 conv [C,C,1,1] */
    int64_t shape[4];
    size_t n, off;
} vparam;

typedef struct { int in, out, n1, c1, n2, c2, sc; } vres;   /* param indices (weight; bias = index + 1) */
typedef struct { int C, norm, q, out; } vattn;              /* q: to_q.weight; k, v follow, then the 3 biases */

enum { NSLOT = 5 };

struct glad_vae {
    glad_vae_config cfg;
    vparam *p;
    int np, npcap, oom;
    size_t total;
    float *w;
    /* encoder */
    int e_in, e_nout, e_out, quant;
    vres *eres;                 /* [level][layer], layers_per_block per level */
    int edown[GLAD_VAE_MAX_LEVELS];
    vres emid[2];
    vattn eattn;
    /* decoder */
    int post, d_in, d_nout, d_out;
    vres *dres;                 /* [level][layer], layers_per_block + 1 per level */
    int dup[GLAD_VAE_MAX_LEVELS];
    vres dmid[2];
    vattn dattn;
    /* scratch */
    float *slot[NSLOT];
    size_t cap[NSLOT];
    float *ws;
    size_t ws_cap;
    float *mean, *rstd;         /* GroupNorm statistics of one image (groups each) */
};

/* ------------------------------------------------------------------ config */

static int cfg_int(const glad_json *v, int dflt, int *out)
{
    if (!v) { *out = dflt; return 0; }
    if (v->type != GLAD_JSON_NUM || !(v->num > -2147483649.0 && v->num < 2147483648.0) || v->num != floor(v->num)) return -1;
    *out = (int)v->num;
    return 0;
}

static int cfg_bool(const glad_json *v, int dflt, int *out)
{
    if (!v || v->type == GLAD_JSON_NULL) { *out = dflt; return 0; }
    if (v->type != GLAD_JSON_BOOL) return -1;
    *out = v->num != 0;
    return 0;
}

/* a list of block type names, each `want` */
static int cfg_types(const glad_json *a, const char *key, const char *want, int *n)
{
    if (!a) { *n = 1; return 0; }   /* the class default: one block */
    if (a->type != GLAD_JSON_ARR) return glad_fail(GLAD_EFORMAT, "VAE config: %s is not a list", key);
    for (int i = 0; i < a->n; i++) {
        const char *s = a->items[i].type == GLAD_JSON_STR ? a->items[i].str : NULL;
        if (!s) return glad_fail(GLAD_EFORMAT, "VAE config: %s[%d] is not a string", key, i);
        if (strcmp(s, want))
            return glad_fail(GLAD_EUNSUPPORTED, "VAE config: %s[%d] is %.64s; only %s is supported", key, i, s, want);
    }
    *n = a->n;
    return 0;
}

static int config_check(const glad_vae_config *c)
{
    if (c->nlevels < 1 || c->nlevels > GLAD_VAE_MAX_LEVELS)
        return glad_fail(GLAD_ERANGE, "VAE config: %d blocks; 1 to %d are supported", c->nlevels, GLAD_VAE_MAX_LEVELS);
    if (c->norm_groups < 1 || c->norm_groups > VAE_MAX_CH)
        return glad_fail(GLAD_ERANGE, "VAE config: norm_num_groups %d out of range", c->norm_groups);
    for (int i = 0; i < c->nlevels; i++)
        if (c->block_out[i] < 1 || c->block_out[i] > VAE_MAX_CH || c->block_out[i] % c->norm_groups)
            return glad_fail(GLAD_ERANGE, "VAE config: block_out_channels[%d] = %d must be in 1..%d and a multiple of norm_num_groups %d",
                             i, c->block_out[i], VAE_MAX_CH, c->norm_groups);
    if (c->in_channels < 1 || c->in_channels > 64 || c->out_channels < 1 || c->out_channels > 64)
        return glad_fail(GLAD_ERANGE, "VAE config: in_channels %d / out_channels %d: 1 to 64", c->in_channels, c->out_channels);
    if (c->latent_channels < 1 || c->latent_channels > 1024)
        return glad_fail(GLAD_ERANGE, "VAE config: latent_channels %d: 1 to 1024", c->latent_channels);
    if (c->layers_per_block < 1 || c->layers_per_block > VAE_MAX_LAYERS)
        return glad_fail(GLAD_ERANGE, "VAE config: layers_per_block %d: 1 to %d", c->layers_per_block, VAE_MAX_LAYERS);
    if (!(isfinite(c->scaling_factor) && c->scaling_factor > 0))
        return glad_fail(GLAD_ERANGE, "VAE config: scaling_factor %g must be positive", (double)c->scaling_factor);
    return 0;
}

int glad_vae_config_parse(glad_vae_config *c, const char *js)
{
    glad_json *j;
    if (!js || glad_json_parse(js, strlen(js), &j)) return glad_fail(GLAD_EFORMAT, "VAE config: not valid JSON");
    memset(c, 0, sizeof *c);
    int rc = GLAD_EFORMAT, nd = 0, nu = 0;
    const char *bad = NULL;
    if (j->type != GLAD_JSON_OBJ) { bad = "not an object"; goto out; }
    const glad_json *cls = glad_json_get(j, "_class_name");
    if (cls && (cls->type != GLAD_JSON_STR || strcmp(cls->str, "AutoencoderKL"))) {
        rc = glad_fail(GLAD_EUNSUPPORTED, "VAE config: _class_name %.64s; only AutoencoderKL is supported",
                       cls->type == GLAD_JSON_STR ? cls->str : "(not a string)");
        goto done;
    }
    const glad_json *act = glad_json_get(j, "act_fn");
    if (act && (act->type != GLAD_JSON_STR || strcmp(act->str, "silu"))) {
        rc = glad_fail(GLAD_EUNSUPPORTED, "VAE config: act_fn %.64s; only silu is supported",
                       act->type == GLAD_JSON_STR ? act->str : "(not a string)");
        goto done;
    }
    if ((rc = cfg_types(glad_json_get(j, "down_block_types"), "down_block_types", "DownEncoderBlock2D", &nd)) ||
        (rc = cfg_types(glad_json_get(j, "up_block_types"), "up_block_types", "UpDecoderBlock2D", &nu)))
        goto done;
    rc = GLAD_EFORMAT;
    if (cfg_int(glad_json_get(j, "in_channels"), 3, &c->in_channels)) { bad = "in_channels"; goto out; }
    if (cfg_int(glad_json_get(j, "out_channels"), 3, &c->out_channels)) { bad = "out_channels"; goto out; }
    if (cfg_int(glad_json_get(j, "latent_channels"), 4, &c->latent_channels)) { bad = "latent_channels"; goto out; }
    if (cfg_int(glad_json_get(j, "layers_per_block"), 1, &c->layers_per_block)) { bad = "layers_per_block"; goto out; }
    if (cfg_int(glad_json_get(j, "norm_num_groups"), 32, &c->norm_groups)) { bad = "norm_num_groups"; goto out; }
    if (cfg_bool(glad_json_get(j, "mid_block_add_attention"), 1, &c->mid_attention)) { bad = "mid_block_add_attention"; goto out; }
    if (cfg_bool(glad_json_get(j, "use_quant_conv"), 1, &c->quant_conv)) { bad = "use_quant_conv"; goto out; }
    if (cfg_bool(glad_json_get(j, "use_post_quant_conv"), 1, &c->post_quant_conv)) { bad = "use_post_quant_conv"; goto out; }
    const glad_json *sf = glad_json_get(j, "scaling_factor");
    if (sf && sf->type != GLAD_JSON_NUM) { bad = "scaling_factor"; goto out; }
    c->scaling_factor = sf ? (float)sf->num : 0.18215f;
    const glad_json *bo = glad_json_get(j, "block_out_channels");
    if (!bo) { c->nlevels = 1; c->block_out[0] = 64; }
    else {
        if (bo->type != GLAD_JSON_ARR) { bad = "block_out_channels"; goto out; }
        if (bo->n < 1 || bo->n > GLAD_VAE_MAX_LEVELS) {
            rc = glad_fail(GLAD_ERANGE, "VAE config: %d block_out_channels; 1 to %d are supported", bo->n, GLAD_VAE_MAX_LEVELS);
            goto done;
        }
        c->nlevels = bo->n;
        for (int i = 0; i < bo->n; i++)
            if (cfg_int(&bo->items[i], 0, &c->block_out[i])) { bad = "block_out_channels"; goto out; }
    }
    if (nd != c->nlevels || nu != c->nlevels) {
        rc = glad_fail(GLAD_EFORMAT, "VAE config: %d down and %d up block types for %d block_out_channels", nd, nu, c->nlevels);
        goto done;
    }
    rc = config_check(c);
    goto done;
out:
    rc = glad_fail(GLAD_EFORMAT, "VAE config: %s is not valid", bad);
done:
    glad_json_free(j);
    return rc;
}

/* ------------------------------------------------------------------ layout */

static int add_param(glad_vae *v, const char *name, const char *alt, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    vparam *np = glad_grow(v->p, &v->npcap, v->np, sizeof *np, 128);
    if (!np) { v->oom = 1; return -1; }
    v->p = np;
    vparam *q = &v->p[v->np];
    memset(q, 0, sizeof *q);
    q->name = strdup(name);
    q->alt = alt ? strdup(alt) : NULL;
    if (!q->name || (alt && !q->alt)) { free(q->name); free(q->alt); v->oom = 1; return -1; }
    int64_t s[4] = {d0, d1, d2, d3};
    q->ndim = ndim;
    q->n = 1;
    for (int i = 0; i < ndim; i++) { q->shape[i] = s[i]; q->n *= (size_t)s[i]; }
    q->off = v->total;
    v->total += q->n;
    return v->np++;
}

static int add_wb(glad_vae *v, const char *pfx, const char *what, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    char n[256];
    snprintf(n, sizeof n, "%.200s.%s.weight", pfx, what);
    int i = add_param(v, n, NULL, ndim, d0, d1, d2, d3);
    snprintf(n, sizeof n, "%.200s.%s.bias", pfx, what);
    add_param(v, n, NULL, 1, d0, 0, 0, 0);
    return i;
}

static int add_conv(glad_vae *v, const char *pfx, const char *what, int in, int out, int k)
{
    return add_wb(v, pfx, what, 4, out, in, k, k);
}

static int add_norm(glad_vae *v, const char *pfx, const char *what, int ch) { return add_wb(v, pfx, what, 1, ch, 0, 0, 0); }

static void add_res(glad_vae *v, vres *r, const char *pfx, int in, int out)
{
    r->in = in; r->out = out;
    r->n1 = add_norm(v, pfx, "norm1", in);
    r->c1 = add_conv(v, pfx, "conv1", in, out, 3);
    r->n2 = add_norm(v, pfx, "norm2", out);
    r->c2 = add_conv(v, pfx, "conv2", out, out, 3);
    r->sc = in != out ? add_conv(v, pfx, "conv_shortcut", in, out, 1) : -1;
}

/* to_q, to_k, to_v weights then their biases, so that they are one [3C, C]
 * 1x1 convolution with a [3C] bias in the flat array */
static void add_attn(glad_vae *v, vattn *a, const char *pfx, int C)
{
    static const char *nw[3] = {"to_q", "to_k", "to_v"}, *ow[3] = {"query", "key", "value"};
    char n[256], o[256];
    a->C = C;
    a->norm = add_norm(v, pfx, "group_norm", C);
    for (int i = 0; i < 3; i++) {
        snprintf(n, sizeof n, "%.200s.%s.weight", pfx, nw[i]);
        snprintf(o, sizeof o, "%.200s.%s.weight", pfx, ow[i]);
        int k = add_param(v, n, o, 2, C, C, 0, 0);
        if (i == 0) a->q = k;
        if (k >= 0) v->p[k].lin = 1;
    }
    for (int i = 0; i < 3; i++) {
        snprintf(n, sizeof n, "%.200s.%s.bias", pfx, nw[i]);
        snprintf(o, sizeof o, "%.200s.%s.bias", pfx, ow[i]);
        add_param(v, n, o, 1, C, 0, 0, 0);
    }
    snprintf(n, sizeof n, "%.200s.to_out.0.weight", pfx);
    snprintf(o, sizeof o, "%.200s.proj_attn.weight", pfx);
    a->out = add_param(v, n, o, 2, C, C, 0, 0);
    if (a->out >= 0) v->p[a->out].lin = 1;
    snprintf(n, sizeof n, "%.200s.to_out.0.bias", pfx);
    snprintf(o, sizeof o, "%.200s.proj_attn.bias", pfx);
    add_param(v, n, o, 1, C, 0, 0, 0);
}

static void add_mid(glad_vae *v, vres *r, vattn *a, const char *pfx, int C)
{
    char n[256];
    snprintf(n, sizeof n, "%s.mid_block.resnets.0", pfx);
    add_res(v, &r[0], n, C, C);
    a->C = 0;
    if (v->cfg.mid_attention) {
        snprintf(n, sizeof n, "%s.mid_block.attentions.0", pfx);
        add_attn(v, a, n, C);
    }
    snprintf(n, sizeof n, "%s.mid_block.resnets.1", pfx);
    add_res(v, &r[1], n, C, C);
}

/* the parameter table of a config, no weights */
static int vae_layout(glad_vae **out, const glad_vae_config *cfg)
{
    GLAD_TRY(config_check(cfg));
    glad_vae *v = calloc(1, sizeof *v);
    if (!v) return GLAD_ENOMEM;
    v->cfg = *cfg;
    const glad_vae_config *c = &v->cfg;
    int nl = c->nlevels, lpb = c->layers_per_block, L = c->latent_channels, top = c->block_out[nl - 1];
    v->eres = calloc((size_t)nl * lpb, sizeof *v->eres);
    v->dres = calloc((size_t)nl * (lpb + 1), sizeof *v->dres);
    if (!v->eres || !v->dres) { glad_vae_free(v); return GLAD_ENOMEM; }
    char n[256];
    /* encoder (vae.py Encoder; double_z: conv_out gives 2L channels) */
    v->e_in = add_conv(v, "encoder", "conv_in", c->in_channels, c->block_out[0], 3);
    int ch = c->block_out[0];
    for (int i = 0; i < nl; i++) {
        int oc = c->block_out[i];
        for (int j = 0; j < lpb; j++) {
            snprintf(n, sizeof n, "encoder.down_blocks.%d.resnets.%d", i, j);
            add_res(v, &v->eres[i * lpb + j], n, j ? oc : ch, oc);
        }
        ch = oc;
        v->edown[i] = -1;
        if (i < nl - 1) {
            snprintf(n, sizeof n, "encoder.down_blocks.%d.downsamplers.0", i);
            v->edown[i] = add_conv(v, n, "conv", oc, oc, 3);
        }
    }
    add_mid(v, v->emid, &v->eattn, "encoder", top);
    v->e_nout = add_norm(v, "encoder", "conv_norm_out", top);
    v->e_out = add_conv(v, "encoder", "conv_out", top, 2 * L, 3);
    v->quant = c->quant_conv ? add_wb(v, "", "quant_conv", 4, 2 * L, 2 * L, 1, 1) : -1;
    /* decoder (vae.py Decoder): block_out_channels reversed, layers_per_block + 1 ResNets per block */
    v->post = c->post_quant_conv ? add_wb(v, "", "post_quant_conv", 4, L, L, 1, 1) : -1;
    v->d_in = add_conv(v, "decoder", "conv_in", L, top, 3);
    add_mid(v, v->dmid, &v->dattn, "decoder", top);
    ch = top;
    for (int i = 0; i < nl; i++) {
        int oc = c->block_out[nl - 1 - i];
        for (int j = 0; j <= lpb; j++) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.resnets.%d", i, j);
            add_res(v, &v->dres[i * (lpb + 1) + j], n, j ? oc : ch, oc);
        }
        ch = oc;
        v->dup[i] = -1;
        if (i < nl - 1) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.upsamplers.0", i);
            v->dup[i] = add_conv(v, n, "conv", oc, oc, 3);
        }
    }
    v->d_nout = add_norm(v, "decoder", "conv_norm_out", ch);
    v->d_out = add_conv(v, "decoder", "conv_out", ch, c->out_channels, 3);
    if (v->oom) { glad_vae_free(v); return GLAD_ENOMEM; }
    if (v->total > GLAD_MAX_ALLOC / sizeof(float)) {
        glad_vae_free(v);
        return glad_fail(GLAD_ERANGE, "VAE config: %zu parameters exceed the allocation limit", v->total);
    }
    /* names in the file start with a '.' for quant_conv / post_quant_conv built with an empty prefix: strip it */
    for (int i = 0; i < v->np; i++)
        if (v->p[i].name[0] == '.') memmove(v->p[i].name, v->p[i].name + 1, strlen(v->p[i].name));
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ loading */

static int shape_ok(const vparam *q, const glad_st_entry *e)
{
    if (e->ndim == q->ndim) {
        for (int d = 0; d < q->ndim; d++)
            if (e->shape[d] != q->shape[d]) return 0;
        return 1;
    }
    /* an attention Linear stored as the 1x1 convolution it equals */
    return q->lin && e->ndim == 4 && e->shape[0] == q->shape[0] && e->shape[1] == q->shape[1] && e->shape[2] == 1 &&
           e->shape[3] == 1;
}

static const glad_st_entry *find(const glad_st *st, const vparam *q)
{
    const glad_st_entry *e = glad_st_find(st, q->name);
    return e || !q->alt ? e : glad_st_find(st, q->alt);
}

/* a tensor name of the networks this loader builds */
static int ours(const char *s)
{
    return !strncmp(s, "encoder.", 8) || !strncmp(s, "decoder.", 8) || !strncmp(s, "quant_conv.", 11) ||
           !strncmp(s, "post_quant_conv.", 16);
}

int glad_vae_load_st(glad_vae **out, const glad_st *st, const char *path)
{
    const char *cj = glad_st_meta(st, "config");
    if (!cj) return glad_fail(GLAD_EFORMAT, "%s: no VAE config in __metadata__[\"config\"]", path);
    glad_vae_config c;
    int rc = glad_vae_config_parse(&c, cj);
    if (rc) return glad_fail_in(rc, path);
    glad_vae *v = NULL;
    rc = vae_layout(&v, &c);
    if (rc) {
        char why[512];
        snprintf(why, sizeof why, "%s", rc == GLAD_ENOMEM ? glad_strerror(rc) : glad_error_detail());
        return glad_fail(rc, "%s: %s", path, why);
    }
    /* every tensor present with its shape and a float dtype before the weights are allocated */
    for (int i = 0; i < v->np && !rc; i++) {
        const vparam *q = &v->p[i];
        const glad_st_entry *e = find(st, q);
        if (!e) { rc = glad_fail(GLAD_ENOTFOUND, "%s: tensor '%s' missing", path, q->name); break; }
        if (!shape_ok(q, e)) {
            char want[96], got[96];
            size_t k = 0, g = 0;
            for (int d = 0; d < q->ndim; d++) k += (size_t)snprintf(want + k, sizeof want - k, "%s%lld", d ? "," : "", (long long)q->shape[d]);
            for (int d = 0; d < e->ndim && d < 8 && g < sizeof got - 24; d++)
                g += (size_t)snprintf(got + g, sizeof got - g, "%s%lld", d ? "," : "", (long long)e->shape[d]);
            if (!q->ndim) want[0] = 0;
            if (!e->ndim) got[0] = 0;
            rc = glad_fail(GLAD_ESHAPE, "%s: tensor '%s' has shape [%s], the config implies [%s]", path, e->name, got, want);
            break;
        }
        if (e->dtype != GLAD_DT_F32 && e->dtype != GLAD_DT_F16) {
            rc = glad_fail(GLAD_EDTYPE, "%s: tensor '%s' is %s, not float32 or float16", path, e->name, glad_dtype_str(e->dtype));
            break;
        }
    }
    for (int i = 0; i < glad_st_count(st) && !rc; i++) {
        const glad_st_entry *e = glad_st_entry_at(st, i);
        if (!ours(e->name)) continue;
        int found = 0;
        for (int k = 0; k < v->np && !found; k++)
            found = !strcmp(e->name, v->p[k].name) || (v->p[k].alt && !strcmp(e->name, v->p[k].alt));
        if (!found)
            rc = glad_fail(GLAD_EFORMAT, "%s: tensor '%s' is not part of the network the config describes (config and weights differ)",
                           path, e->name);
    }
    if (!rc) {
        v->w = malloc(v->total * sizeof(float));
        v->mean = malloc(sizeof(float) * (size_t)c.norm_groups);
        v->rstd = malloc(sizeof(float) * (size_t)c.norm_groups);
        if (!v->w || !v->mean || !v->rstd) rc = glad_fail(GLAD_ENOMEM, "%s: out of memory for %zu VAE parameters", path, v->total);
    }
    for (int i = 0; i < v->np && !rc; i++) {
        const vparam *q = &v->p[i];
        const glad_st_entry *e = find(st, q);
        float *w = v->w + q->off;
        if (e->dtype == GLAD_DT_F32) memcpy(w, glad_st_data(st, e), q->n * sizeof(float));
        else {
            glad_tensor t = {.dtype = e->dtype, .ndim = 1, .shape = {(int64_t)q->n}, .data = (void *)glad_st_data(st, e)};
            rc = glad_tensor_to_f32(&t, w);
            if (rc) { rc = glad_fail(rc, "%s: tensor '%s': %s", path, e->name, glad_strerror(rc)); break; }
        }
        for (size_t k = 0; k < q->n; k++)
            if (!isfinite(w[k])) { rc = glad_fail(GLAD_ENAN, "%s: tensor '%s' has NaN or infinity (element %zu)", path, e->name, k); break; }
    }
    if (rc) { glad_vae_free(v); return rc; }
    *out = v;
    return 0;
}

int glad_vae_load(glad_vae **out, const char *path)
{
    struct stat sb;
    if (stat(path, &sb)) return glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return glad_fail(GLAD_EIO, "%s: %s", path, strerror(EISDIR));
    glad_st *st;
    errno = 0;
    glad_error_clear();
    int rc = glad_st_open(&st, path);
    if (rc) {
        if (*glad_error_detail()) return rc;
        return glad_fail(rc, "%s: %s", path, rc == GLAD_EIO && errno ? strerror(errno) : glad_strerror(rc));
    }
    rc = glad_vae_load_st(out, st, path);
    glad_st_close(st);
    return rc;
}

int glad_vae_create_random(glad_vae **out, const glad_vae_config *c, uint64_t seed)
{
    glad_vae *v = NULL;
    GLAD_TRY(vae_layout(&v, c));
    v->w = malloc(v->total * sizeof(float));
    v->mean = malloc(sizeof(float) * (size_t)c->norm_groups);
    v->rstd = malloc(sizeof(float) * (size_t)c->norm_groups);
    if (!v->w || !v->mean || !v->rstd) { glad_vae_free(v); return GLAD_ENOMEM; }
    glad_rng r;
    glad_rng_seed(&r, seed, 0x7661650000000000ull, 0);
    for (int i = 0; i < v->np; i++) {
        const vparam *q = &v->p[i];
        float *w = v->w + q->off;
        if (q->ndim == 1) {
            /* a norm's gamma (1) / beta (0) when the param before it is not a weight of this layer; biases random */
            int is_norm = strstr(q->name, "norm") != NULL;
            int gamma = is_norm && strstr(q->name, ".weight") != NULL;
            int fan = i > 0 && v->p[i - 1].ndim > 1 ? (int)(v->p[i - 1].n / (size_t)v->p[i - 1].shape[0]) : 1;
            for (size_t k = 0; k < q->n; k++)
                w[k] = is_norm ? (gamma ? 1.0f : 0.0f) : (float)((2 * glad_rng_uniform(&r) - 1) / sqrt((double)fan));
        } else {
            double bound = 1.0 / sqrt((double)(q->n / (size_t)q->shape[0]));
            for (size_t k = 0; k < q->n; k++) w[k] = (float)((2 * glad_rng_uniform(&r) - 1) * bound);
        }
    }
    *out = v;
    return 0;
}

void glad_vae_free(glad_vae *v)
{
    if (!v) return;
    for (int i = 0; i < v->np; i++) { free(v->p[i].name); free(v->p[i].alt); }
    free(v->p);
    free(v->w);
    free(v->eres);
    free(v->dres);
    for (int i = 0; i < NSLOT; i++) free(v->slot[i]);
    free(v->ws);
    free(v->mean);
    free(v->rstd);
    free(v);
}

const glad_vae_config *glad_vae_cfg(const glad_vae *v) { return &v->cfg; }
int glad_vae_down_factor(const glad_vae *v) { return 1 << (v->cfg.nlevels - 1); }
size_t glad_vae_nparams(const glad_vae *v) { return v->total; }

/* ------------------------------------------------------------------ forward */

#define PW(i) (v->w + v->p[i].off)
#define PB(i) (v->w + v->p[(i) + 1].off)

/* slot s with room for n floats (contents kept only when it need not grow) */
static float *slot(glad_vae *v, int s, size_t n)
{
    if (n > v->cap[s]) {
        if (n > GLAD_MAX_ALLOC / sizeof(float)) return NULL;
        free(v->slot[s]);
        v->slot[s] = malloc(n * sizeof(float));
        v->cap[s] = v->slot[s] ? n : 0;
    }
    return v->slot[s];
}

static void swap_slots(glad_vae *v, int a, int b)
{
    float *p = v->slot[a]; v->slot[a] = v->slot[b]; v->slot[b] = p;
    size_t c = v->cap[a]; v->cap[a] = v->cap[b]; v->cap[b] = c;
}

static int ws_need(glad_vae *v, size_t n)
{
    if (n <= v->ws_cap) return 0;
    if (n > GLAD_MAX_ALLOC / sizeof(float)) return GLAD_ENOMEM;
    free(v->ws);
    v->ws = malloc(n * sizeof(float));
    v->ws_cap = v->ws ? n : 0;
    return v->ws ? 0 : GLAD_ENOMEM;
}

/* out (OC,H,W) = conv3x3(silu(groupnorm(x))) for one image; tmp: C H W floats
 * when the fused kernel is not available */
static int gnsilu_conv(glad_vae *v, float *out, const float *x, int norm, int conv, int C, int H, int W, int OC, float *tmp)
{
    int G = v->cfg.norm_groups;
    size_t N = (size_t)H * W;
    GLAD_TRY(ws_need(v, glad_conv2d_forward_workspace(C, H, W, OC, 3, 3, 1, 1)));
    if (glad_conv2d_gnsilu_ok(3, 3, 1, 1)) {
        glad_groupnorm_silu_forward(NULL, v->mean, v->rstd, x, PW(norm), PB(norm), 1, C, (int)N, G, VAE_EPS);
        glad_gnsilu pre = {v->mean, v->rstd, PW(norm), PB(norm), G};
        glad_conv2d_forward_gnsilu(out, x, &pre, PW(conv), PB(conv), 1, C, H, W, OC, v->ws);
    } else {
        glad_groupnorm_silu_forward(tmp, v->mean, v->rstd, x, PW(norm), PB(norm), 1, C, (int)N, G, VAE_EPS);
        glad_conv2d_forward(out, tmp, PW(conv), PB(conv), 1, C, H, W, OC, 3, 3, 1, 1, v->ws);
    }
    return 0;
}

static int conv(glad_vae *v, float *out, const float *x, int c, int C, int H, int W, int OC, int k, int stride, int pad)
{
    GLAD_TRY(ws_need(v, glad_conv2d_forward_workspace(C, H, W, OC, k, k, stride, pad)));
    glad_conv2d_forward(out, x, PW(c), PB(c), 1, C, H, W, OC, k, k, stride, pad, v->ws);
    return 0;
}

static void add_to(float *y, const float *x, size_t n)
{
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* slot 0 = ResnetBlock2D(slot 0) at H x W (no temb, output_scale_factor 1):
 * h = conv1(silu(norm1 x)); out = conv2(silu(norm2 h)) + (conv_shortcut(x) or x) */
static int resnet(glad_vae *v, const vres *r, int H, int W)
{
    size_t N = (size_t)H * W, big = (size_t)(r->in > r->out ? r->in : r->out) * N;
    float *x = v->slot[0], *h = slot(v, 1, (size_t)r->out * N), *o = slot(v, 2, (size_t)r->out * N), *t = slot(v, 3, big);
    if (!h || !o || !t) return GLAD_ENOMEM;
    GLAD_TRY(gnsilu_conv(v, h, x, r->n1, r->c1, r->in, H, W, r->out, t));
    GLAD_TRY(gnsilu_conv(v, o, h, r->n2, r->c2, r->out, H, W, r->out, t));
    if (r->sc >= 0) {
        GLAD_TRY(conv(v, t, x, r->sc, r->in, H, W, r->out, 1, 1, 0));
        add_to(o, t, (size_t)r->out * N);
    } else
        add_to(o, x, (size_t)r->out * N);
    swap_slots(v, 0, 2);
    return 0;
}

/* slot 0 += to_out(attention(q, k, v of groupnorm(slot 0))), one head of C
 * channels over the H W tokens (Attention with residual_connection) */
static int attention(glad_vae *v, const vattn *a, int H, int W)
{
    int C = a->C, T = H * W;
    size_t n = (size_t)C * T, tt;
    if (glad_mul_size((size_t)T, (size_t)T, &tt)) return GLAD_ENOMEM;
    float *x = v->slot[0], *g = slot(v, 1, n), *qkv = slot(v, 2, 3 * n), *o = slot(v, 3, n);
    if (!g || !qkv || !o) return GLAD_ENOMEM;
    GLAD_TRY(ws_need(v, tt));
    glad_groupnorm_forward(g, v->mean, v->rstd, x, PW(a->norm), PB(a->norm), 1, C, T, v->cfg.norm_groups, VAE_EPS);
    /* q, k, v as one [3C, C] 1x1 convolution: legacy layout (3C, T) with one head */
    glad_conv2d_forward(qkv, g, PW(a->q), PW(a->q + 3), 1, C, H, W, 3 * C, 1, 1, 1, 0, NULL);
    glad_attention_forward(o, NULL, qkv, 1, C, T, 1, v->ws);
    glad_conv2d_forward(g, o, PW(a->out), PB(a->out), 1, C, H, W, C, 1, 1, 1, 0, NULL);
    add_to(x, g, n);
    return 0;
}

static int mid(glad_vae *v, const vres *r, const vattn *a, int H, int W)
{
    GLAD_TRY(resnet(v, &r[0], H, W));
    if (a->C) GLAD_TRY(attention(v, a, H, W));
    return resnet(v, &r[1], H, W);
}

static int encode_one(glad_vae *v, float *moments, const float *x, int H, int W)
{
    const glad_vae_config *c = &v->cfg;
    int nl = c->nlevels, lpb = c->layers_per_block, top = c->block_out[nl - 1], L2 = 2 * c->latent_channels;
    float *s0 = slot(v, 0, (size_t)c->block_out[0] * H * W);
    if (!s0) return GLAD_ENOMEM;
    GLAD_TRY(conv(v, s0, x, v->e_in, c->in_channels, H, W, c->block_out[0], 3, 1, 1));
    int ch = c->block_out[0];
    for (int i = 0; i < nl; i++) {
        for (int j = 0; j < lpb; j++) {
            GLAD_TRY(resnet(v, &v->eres[i * lpb + j], H, W));
        }
        ch = c->block_out[i];
        if (v->edown[i] >= 0) {
            /* F.pad(x, (0, 1, 0, 1)), then conv 3x3 stride 2 padding 0 (resnet.py Downsample2D, padding 0) */
            int Hp = H + 1, Wp = W + 1;
            float *pad = slot(v, 1, (size_t)ch * Hp * Wp), *o = slot(v, 2, (size_t)ch * (H / 2) * (W / 2));
            if (!pad || !o) return GLAD_ENOMEM;
            const float *s = v->slot[0];
            for (int k = 0; k < ch; k++) {
                float *pk = pad + (size_t)k * Hp * Wp;
                for (int y = 0; y < H; y++) {
                    memcpy(pk + (size_t)y * Wp, s + ((size_t)k * H + y) * W, sizeof(float) * (size_t)W);
                    pk[(size_t)y * Wp + W] = 0.0f;
                }
                memset(pk + (size_t)H * Wp, 0, sizeof(float) * (size_t)Wp);
            }
            GLAD_TRY(conv(v, o, pad, v->edown[i], ch, Hp, Wp, ch, 3, 2, 0));
            H /= 2; W /= 2;
            swap_slots(v, 0, 2);
        }
    }
    GLAD_TRY(mid(v, v->emid, &v->eattn, H, W));
    float *o = slot(v, 1, (size_t)L2 * H * W), *t = slot(v, 3, (size_t)top * H * W);
    if (!o || !t) return GLAD_ENOMEM;
    GLAD_TRY(gnsilu_conv(v, v->quant >= 0 ? o : moments, v->slot[0], v->e_nout, v->e_out, top, H, W, L2, t));
    if (v->quant >= 0) GLAD_TRY(conv(v, moments, o, v->quant, L2, H, W, L2, 1, 1, 0));
    return 0;
}

static int decode_one(glad_vae *v, float *x, const float *z, int h, int w)
{
    const glad_vae_config *c = &v->cfg;
    int nl = c->nlevels, lpb = c->layers_per_block, top = c->block_out[nl - 1], L = c->latent_channels;
    const float *zi = z;
    if (v->post >= 0) {
        float *pz = slot(v, 4, (size_t)L * h * w);
        if (!pz) return GLAD_ENOMEM;
        GLAD_TRY(conv(v, pz, z, v->post, L, h, w, L, 1, 1, 0));
        zi = pz;
    }
    if (!slot(v, 0, (size_t)top * h * w)) return GLAD_ENOMEM;
    GLAD_TRY(conv(v, v->slot[0], zi, v->d_in, L, h, w, top, 3, 1, 1));
    GLAD_TRY(mid(v, v->dmid, &v->dattn, h, w));
    int ch = top;
    for (int i = 0; i < nl; i++) {
        for (int j = 0; j <= lpb; j++) GLAD_TRY(resnet(v, &v->dres[i * (lpb + 1) + j], h, w));
        ch = c->block_out[nl - 1 - i];
        if (v->dup[i] >= 0) {
            /* nearest x2 then conv 3x3 padding 1 (Upsample2D) */
            float *u = slot(v, 1, (size_t)ch * 4 * h * w), *o = slot(v, 2, (size_t)ch * 4 * h * w);
            if (!u || !o) return GLAD_ENOMEM;
            glad_upsample2_forward(u, v->slot[0], ch, h, w);
            h *= 2; w *= 2;
            GLAD_TRY(conv(v, o, u, v->dup[i], ch, h, w, ch, 3, 1, 1));
            swap_slots(v, 0, 2);
        }
    }
    float *t = slot(v, 3, (size_t)ch * h * w);
    if (!t) return GLAD_ENOMEM;
    return gnsilu_conv(v, x, v->slot[0], v->d_nout, v->d_out, ch, h, w, c->out_channels, t);
}

int glad_vae_encode(glad_vae *v, float *moments, const float *x, int B, int H, int W)
{
    int f = glad_vae_down_factor(v);
    if (B < 1 || H < f || W < f || H % f || W % f || H > VAE_MAX_SIDE || W > VAE_MAX_SIDE)
        return glad_fail(GLAD_ESHAPE, "VAE encode: %dx%d images (batch %d); sides must be positive multiples of %d up to %d", H, W, B, f,
                         VAE_MAX_SIDE);
    size_t in = (size_t)v->cfg.in_channels * H * W, out = (size_t)2 * v->cfg.latent_channels * (H / f) * (W / f);
    for (int b = 0; b < B; b++) {
        int rc = encode_one(v, moments + b * out, x + b * in, H, W);
        if (rc) return rc == GLAD_ENOMEM ? glad_fail(rc, "VAE encode of %dx%d images: out of memory", H, W) : rc;
    }
    return 0;
}

int glad_vae_decode(glad_vae *v, float *x, const float *z, int B, int h, int w)
{
    int f = glad_vae_down_factor(v);
    if (B < 1 || h < 1 || w < 1 || h > VAE_MAX_SIDE / f || w > VAE_MAX_SIDE / f)
        return glad_fail(GLAD_ESHAPE, "VAE decode: %dx%d latents (batch %d); sides 1 to %d", h, w, B, VAE_MAX_SIDE / f);
    size_t in = (size_t)v->cfg.latent_channels * h * w, out = (size_t)v->cfg.out_channels * (h * f) * (w * f);
    for (int b = 0; b < B; b++) {
        int rc = decode_one(v, x + b * out, z + b * in, h, w);
        if (rc) return rc == GLAD_ENOMEM ? glad_fail(rc, "VAE decode of %dx%d latents: out of memory", h, w) : rc;
    }
    return 0;
}

/* DiagonalGaussianDistribution (vae.py): mean, logvar = chunk(moments, 2, dim 1);
 * logvar = clamp(logvar, -30, 20); std = exp(0.5 logvar) */
void glad_vae_posterior(float *mean, float *logvar, float *std, const float *moments, int B, int L, size_t N)
{
    size_t ln = (size_t)L * N;
    for (int b = 0; b < B; b++) {
        const float *m = moments + (size_t)b * 2 * ln, *lv = m + ln;
        for (size_t i = 0; i < ln; i++) {
            float l = lv[i] < -30.0f ? -30.0f : lv[i] > 20.0f ? 20.0f : lv[i];
            if (mean) mean[(size_t)b * ln + i] = m[i];
            if (logvar) logvar[(size_t)b * ln + i] = l;
            if (std) std[(size_t)b * ln + i] = expf(0.5f * l);
        }
    }
}

void glad_vae_sample(float *z, const float *moments, const float *noise, int B, int L, size_t N)
{
    size_t ln = (size_t)L * N;
    for (int b = 0; b < B; b++) {
        const float *m = moments + (size_t)b * 2 * ln, *lv = m + ln;
        for (size_t i = 0; i < ln; i++) {
            float l = lv[i] < -30.0f ? -30.0f : lv[i] > 20.0f ? 20.0f : lv[i];
            z[(size_t)b * ln + i] = noise ? m[i] + expf(0.5f * l) * noise[(size_t)b * ln + i] : m[i];
        }
    }
}
