/* sdunet.c - diffusers v0.20 UNet2DConditionModel, inference (sdunet.h).
 * A config becomes a parameter table (diffusers names and shapes) and a
 * program of steps (conv_in, resnet, transformer, downsample, upsample, skip
 * push, output) in forward order; loading checks the file against the table
 * before allocating anything of the model's size, and the forward runs the
 * steps over a handful of activation buffers sized per (B, H, W, L).
 * Activations are NCHW; a Transformer2DModel keeps its tokens channel-major
 * (C, H W) per image (nn/tokens.h), so its projections are plain GEMMs and
 * its self-attention is glad_attention_forward's query-blocked kernel (the
 * score matrix is never whole: 4096 tokens x 8 heads at 64 x 64 latents). */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <cblas.h>
#include "core/json.h"
#include "core/rng.h"
#include "models/sdunet.h"
#include "nn/nn.h"
#include "nn/tokens.h"

enum { MAX_LAYERS = 16, MAX_TLAYERS = 32, MAX_CH = 8192, MAX_NAME = 128 };

typedef struct {
    char *name;
    int ndim;
    int64_t shape[4];
    size_t n;
    int kind;          /* init: 0 weight (N/sqrt fan_in), 1 bias, 2 norm gain, 3 norm shift */
    float *w;          /* the data (into the model's block or the file) */
} sparam;

/* parameter indices; a bias follows its weight (-1: absent) */
typedef struct { int n1, c1, te, n2, c2, sc, in, out; float scale; } resnet;
typedef struct { int n1, q1, k1, v1, o1, n2, q2, k2, v2, o2, n3, f1, f2, inner; } tblock;
typedef struct { int norm, pin, pout, C, heads, ntb, tb0; } xformer;

enum { ST_CONV_IN, ST_RES, ST_XF, ST_DOWN, ST_UP, ST_PUSH, ST_OUT };
typedef struct {
    int kind, idx;       /* resnet / xformer index, or conv weight param */
    int C, OC, lvl;      /* channels in / out, resolution level (H >> lvl) */
    int pop;             /* resnet: concatenate a popped skip of pop channels */
    char name[MAX_NAME]; /* diffusers module name (dumps) */
} step;

typedef struct { char *name; float *d; size_t n; } dumpent;

struct glad_sdunet {
    glad_sdunet_config cfg;
    sparam *p;
    int np, npcap;
    size_t total;
    float *block;        /* owned weights (NULL when they live in st) */
    glad_st *st;         /* the file whose data the weights point into, or NULL */
    int te1, te2, conv_in, norm_out, conv_out;
    resnet *res;
    int nres, rescap;
    xformer *xf;
    int nxf, xfcap;
    tblock *tb;
    int ntb, tbcap;
    step *st_;
    int nst, stcap;
    int oom;
    /* the plan */
    int pB, pH, pW, pL, pth, planned;
    float *mem;
    size_t mem_n;
    float *h, *o, *cat, *t1, *gn, *skip, *xs, *aws, *xws, *cws, *temb, *stemb, *emb, *mean, *rstd;
    size_t skip_n[64 * MAX_LAYERS];
    double flops;
    int dump;
    dumpent *dumps;
    int ndump, dumpcap;
};

/* ------------------------------------------------------------ layout */

static int add_param(glad_sdunet *n, int kind, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static int add_param(glad_sdunet *n, int kind, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fmt, ...)
{
    sparam *np = glad_grow(n->p, &n->npcap, n->np, sizeof *np, 256);
    if (!np) { n->oom = 1; return -1; }
    n->p = np;
    sparam *q = &n->p[n->np];
    memset(q, 0, sizeof *q);
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    q->name = strdup(buf);
    if (!q->name) { n->oom = 1; return -1; }
    q->ndim = ndim;
    q->kind = kind;
    int64_t s[4] = {d0, d1, d2, d3};
    q->n = 1;
    for (int i = 0; i < ndim; i++) { q->shape[i] = s[i]; q->n *= (size_t)s[i]; }
    n->total += q->n;
    return n->np++;
}

/* weight (+ bias) of a conv k x k (k 0: a linear layer [out, in]) */
static int add_lin(glad_sdunet *n, const char *pfx, int in, int out, int k, int bias)
{
    int i = k ? add_param(n, 0, 4, out, in, k, k, "%s.weight", pfx) : add_param(n, 0, 2, out, in, 0, 0, "%s.weight", pfx);
    if (bias) add_param(n, 1, 1, out, 0, 0, 0, "%s.bias", pfx);
    return i;
}

static int add_norm(glad_sdunet *n, const char *pfx, int ch)
{
    int i = add_param(n, 2, 1, ch, 0, 0, 0, "%s.weight", pfx);
    add_param(n, 3, 1, ch, 0, 0, 0, "%s.bias", pfx);
    return i;
}

static int add_step(glad_sdunet *n, int kind, int idx, int C, int OC, int lvl, int pop, const char *name)
{
    step *ns = glad_grow(n->st_, &n->stcap, n->nst, sizeof *ns, 64);
    if (!ns) { n->oom = 1; return -1; }
    n->st_ = ns;
    step *s = &n->st_[n->nst++];
    memset(s, 0, sizeof *s);
    s->kind = kind; s->idx = idx; s->C = C; s->OC = OC; s->lvl = lvl; s->pop = pop;
    snprintf(s->name, sizeof s->name, "%s", name);
    return 0;
}

/* a ResnetBlock2D of in (+ pop skip) -> out channels */
static int add_resnet(glad_sdunet *n, const char *pfx, int in, int out, int lvl, int pop, float scale)
{
    const glad_sdunet_config *c = &n->cfg;
    int G = c->norm_num_groups;
    if ((in + pop) % G || out % G)
        return glad_fail(GLAD_EINVAL, "%s: %d and %d channels are not multiples of the %d GroupNorm groups", pfx, in + pop, out, G);
    resnet *nr = glad_grow(n->res, &n->rescap, n->nres, sizeof *nr, 32);
    if (!nr) return GLAD_ENOMEM;
    n->res = nr;
    resnet *r = &n->res[n->nres];
    char b[MAX_NAME + 32];
    int ci = in + pop;
    r->in = ci; r->out = out; r->scale = scale;
    snprintf(b, sizeof b, "%s.norm1", pfx); r->n1 = add_norm(n, b, ci);
    snprintf(b, sizeof b, "%s.conv1", pfx); r->c1 = add_lin(n, b, ci, out, 3, 1);
    snprintf(b, sizeof b, "%s.time_emb_proj", pfx); r->te = add_lin(n, b, c->time_embed_dim, out, 0, 1);
    snprintf(b, sizeof b, "%s.norm2", pfx); r->n2 = add_norm(n, b, out);
    snprintf(b, sizeof b, "%s.conv2", pfx); r->c2 = add_lin(n, b, out, out, 3, 1);
    r->sc = -1;
    if (ci != out) { snprintf(b, sizeof b, "%s.conv_shortcut", pfx); r->sc = add_lin(n, b, ci, out, 1, 1); }
    add_step(n, ST_RES, n->nres++, in, out, lvl, pop, pfx);
    return 0;
}

static int add_xformer(glad_sdunet *n, const char *pfx, int C, int heads, int ntb, int lvl)
{
    const glad_sdunet_config *c = &n->cfg;
    if (C % c->norm_num_groups)
        return glad_fail(GLAD_EINVAL, "%s: %d channels are not a multiple of the %d GroupNorm groups", pfx, C, c->norm_num_groups);
    if (heads < 1 || C % heads)
        return glad_fail(GLAD_EINVAL, "%s: %d channels do not split into %d attention heads", pfx, C, heads);
    xformer *nx = glad_grow(n->xf, &n->xfcap, n->nxf, sizeof *nx, 16);
    if (!nx) return GLAD_ENOMEM;
    n->xf = nx;
    xformer *x = &n->xf[n->nxf];
    char b[MAX_NAME + 64];
    int lin = c->use_linear_projection ? 0 : 1;
    x->C = C; x->heads = heads; x->ntb = ntb; x->tb0 = n->ntb;
    snprintf(b, sizeof b, "%s.norm", pfx); x->norm = add_norm(n, b, C);
    snprintf(b, sizeof b, "%s.proj_in", pfx); x->pin = add_lin(n, b, C, C, lin, 1);
    for (int j = 0; j < ntb; j++) {
        tblock *nt = glad_grow(n->tb, &n->tbcap, n->ntb, sizeof *nt, 16);
        if (!nt) return GLAD_ENOMEM;
        n->tb = nt;
        tblock *t = &n->tb[n->ntb++];
        int X = c->cross_attention_dim, inner = 4 * C;
        t->inner = inner;
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.norm1", pfx, j); t->n1 = add_norm(n, b, C);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.attn1.to_q", pfx, j); t->q1 = add_lin(n, b, C, C, 0, 0);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.attn1.to_k", pfx, j); t->k1 = add_lin(n, b, C, C, 0, 0);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.attn1.to_v", pfx, j); t->v1 = add_lin(n, b, C, C, 0, 0);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.attn1.to_out.0", pfx, j); t->o1 = add_lin(n, b, C, C, 0, 1);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.norm2", pfx, j); t->n2 = add_norm(n, b, C);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.attn2.to_q", pfx, j); t->q2 = add_lin(n, b, C, C, 0, 0);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.attn2.to_k", pfx, j); t->k2 = add_lin(n, b, X, C, 0, 0);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.attn2.to_v", pfx, j); t->v2 = add_lin(n, b, X, C, 0, 0);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.attn2.to_out.0", pfx, j); t->o2 = add_lin(n, b, C, C, 0, 1);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.norm3", pfx, j); t->n3 = add_norm(n, b, C);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.ff.net.0.proj", pfx, j); t->f1 = add_lin(n, b, C, 2 * inner, 0, 1);
        snprintf(b, sizeof b, "%s.transformer_blocks.%d.ff.net.2", pfx, j); t->f2 = add_lin(n, b, inner, C, 0, 1);
    }
    snprintf(b, sizeof b, "%s.proj_out", pfx); x->pout = add_lin(n, b, C, C, lin, 1);
    add_step(n, ST_XF, n->nxf++, C, C, lvl, 0, pfx);
    return 0;
}

static int build_layout(glad_sdunet *n)
{
    const glad_sdunet_config *c = &n->cfg;
    int nb = c->nblocks, C0 = c->block_out_channels[0], TE = c->time_embed_dim;
    char b[MAX_NAME];
    n->conv_in = add_lin(n, "conv_in", c->in_channels, C0, 3, 1);
    n->te1 = add_lin(n, "time_embedding.linear_1", C0, TE, 0, 1);
    n->te2 = add_lin(n, "time_embedding.linear_2", TE, TE, 0, 1);
    add_step(n, ST_CONV_IN, n->conv_in, c->in_channels, C0, 0, 0, "conv_in");
    add_step(n, ST_PUSH, 0, C0, C0, 0, 0, "");
    /* the skip stack's channels, to check the up path against diffusers' construction */
    int stack[64 * MAX_LAYERS], ns = 0;
    stack[ns++] = C0;
    int ch = C0;
    for (int i = 0; i < nb; i++) {
        int out = c->block_out_channels[i];
        for (int j = 0; j < c->layers_per_block[i]; j++) {
            snprintf(b, sizeof b, "down_blocks.%d.resnets.%d", i, j);
            GLAD_TRY(add_resnet(n, b, ch, out, i, 0, 1.0f));
            ch = out;
            if (c->down_cross[i]) {
                snprintf(b, sizeof b, "down_blocks.%d.attentions.%d", i, j);
                GLAD_TRY(add_xformer(n, b, ch, c->heads[i], c->transformer_layers[i], i));
            }
            add_step(n, ST_PUSH, 0, ch, ch, i, 0, "");
            stack[ns++] = ch;
        }
        if (i < nb - 1) {
            snprintf(b, sizeof b, "down_blocks.%d.downsamplers.0.conv", i);
            int w = add_lin(n, b, ch, ch, 3, 1);
            snprintf(b, sizeof b, "down_blocks.%d.downsamplers.0", i);
            add_step(n, ST_DOWN, w, ch, ch, i, 0, b);
            add_step(n, ST_PUSH, 0, ch, ch, i + 1, 0, "");
            stack[ns++] = ch;
        }
    }
    if (c->mid_block) {
        int L = nb - 1;
        GLAD_TRY(add_resnet(n, "mid_block.resnets.0", ch, ch, L, 0, c->mid_block_scale_factor));
        GLAD_TRY(add_xformer(n, "mid_block.attentions.0", ch, c->heads[L], c->transformer_layers[L], L));
        GLAD_TRY(add_resnet(n, "mid_block.resnets.1", ch, ch, L, 0, c->mid_block_scale_factor));
    }
    /* up block i mirrors down block nb-1-i (diffusers: reversed lists) */
    for (int i = 0; i < nb; i++) {
        int r = nb - 1 - i, out = c->block_out_channels[r], lvl = r;
        int input = c->block_out_channels[r - 1 >= 0 ? r - 1 : 0], nl = c->layers_per_block[r] + 1;
        for (int j = 0; j < nl; j++) {
            int skip = j == nl - 1 ? input : out, rin = j == 0 ? ch : out;
            if (ns < 1 || stack[ns - 1] != skip)
                return glad_fail(GLAD_EINVAL, "up_blocks.%d.resnets.%d: diffusers builds it for a %d-channel skip, the down path gives %d",
                                 i, j, skip, ns ? stack[ns - 1] : 0);
            ns--;
            snprintf(b, sizeof b, "up_blocks.%d.resnets.%d", i, j);
            GLAD_TRY(add_resnet(n, b, rin, out, lvl, skip, 1.0f));
            ch = out;
            if (c->up_cross[i]) {
                snprintf(b, sizeof b, "up_blocks.%d.attentions.%d", i, j);
                GLAD_TRY(add_xformer(n, b, ch, c->heads[r], c->transformer_layers[r], lvl));
            }
        }
        if (i < nb - 1) {
            snprintf(b, sizeof b, "up_blocks.%d.upsamplers.0.conv", i);
            int w = add_lin(n, b, ch, ch, 3, 1);
            snprintf(b, sizeof b, "up_blocks.%d.upsamplers.0", i);
            add_step(n, ST_UP, w, ch, ch, lvl - 1, 0, b);
        }
    }
    if (ch % c->norm_num_groups)
        return glad_fail(GLAD_EINVAL, "conv_norm_out: %d channels are not a multiple of %d groups", ch, c->norm_num_groups);
    n->norm_out = add_norm(n, "conv_norm_out", ch);
    n->conv_out = add_lin(n, "conv_out", ch, c->out_channels, 3, 1);
    add_step(n, ST_OUT, n->conv_out, ch, c->out_channels, 0, 0, "conv_out");
    if (n->oom) return GLAD_ENOMEM;
    size_t bytes;
    if (glad_mul_size(n->total, sizeof(float), &bytes) || bytes > GLAD_MAX_ALLOC)
        return glad_fail(GLAD_ERANGE, "%zu parameters: more than this build holds (%zu bytes)", n->total, (size_t)GLAD_MAX_ALLOC);
    return 0;
}

static int layout(const glad_sdunet_config *c, glad_sdunet **out)
{
    GLAD_TRY(glad_sdunet_config_check(c));
    glad_sdunet *n = calloc(1, sizeof *n);
    if (!n) return GLAD_ENOMEM;
    n->cfg = *c;
    int rc = build_layout(n);
    if (rc) { glad_sdunet_free(n); return rc; }
    *out = n;
    return 0;
}

/* ------------------------------------------------------------ config */

static int jint(const glad_json *v, int *out)
{
    if (!v || v->type != GLAD_JSON_NUM || !(v->num >= -1e9 && v->num <= 1e9) || v->num != floor(v->num)) return -1;
    *out = (int)v->num;
    return 0;
}

/* an int or a list of nb ints into a[] */
static int jlist(const glad_json *j, const char *key, int nb, int *a, int dflt)
{
    const glad_json *v = glad_json_get(j, key);
    if (!v || v->type == GLAD_JSON_NULL) { for (int i = 0; i < nb; i++) a[i] = dflt; return 0; }
    if (v->type == GLAD_JSON_NUM) {
        int x;
        if (jint(v, &x)) return glad_fail(GLAD_EINVAL, "config: '%s' is not an integer", key);
        for (int i = 0; i < nb; i++) a[i] = x;
        return 0;
    }
    if (v->type != GLAD_JSON_ARR || v->n != nb) return glad_fail(GLAD_EINVAL, "config: '%s' must be an integer or a list of %d", key, nb);
    for (int i = 0; i < nb; i++)
        if (jint(&v->items[i], &a[i])) return glad_fail(GLAD_EINVAL, "config: '%s'[%d] is not an integer", key, i);
    return 0;
}

static int is_null_or(const glad_json *j, const char *key, const char *ok)
{
    const glad_json *v = glad_json_get(j, key);
    if (!v || v->type == GLAD_JSON_NULL) return 1;
    return ok && v->type == GLAD_JSON_STR && !strcmp(v->str, ok);
}

static int is_false(const glad_json *j, const char *key)
{
    const glad_json *v = glad_json_get(j, key);
    if (!v || v->type == GLAD_JSON_NULL) return 1;
    if (v->type == GLAD_JSON_BOOL) return v->num == 0;
    if (v->type == GLAD_JSON_ARR) {
        for (int i = 0; i < v->n; i++)
            if (v->items[i].type != GLAD_JSON_BOOL || v->items[i].num != 0) return 0;
        return 1;
    }
    return 0;
}

static int parse(glad_sdunet_config *c, const glad_json *j)
{
    memset(c, 0, sizeof *c);
    if (j->type != GLAD_JSON_OBJ) return glad_fail(GLAD_EFORMAT, "config: not a JSON object");
    if (!is_null_or(j, "_class_name", "UNet2DConditionModel"))
        return glad_fail(GLAD_EINVAL, "config: _class_name '%s' is not UNet2DConditionModel", glad_json_str(glad_json_get(j, "_class_name"), "?"));
    /* options of the class this implementation does not compute: refused, not ignored */
    static const char *const nulls[] = {"class_embed_type", "num_class_embeds", "addition_embed_type", "encoder_hid_dim",
                                        "encoder_hid_dim_type", "time_cond_proj_dim", "timestep_post_act",
                                        "time_embedding_act_fn", "cross_attention_norm", "num_attention_heads", NULL};
    for (int i = 0; nulls[i]; i++)
        if (!is_null_or(j, nulls[i], NULL)) return glad_fail(GLAD_EINVAL, "config: '%s' is set; only null is supported", nulls[i]);
    static const char *const falses[] = {"dual_cross_attention", "only_cross_attention", "mid_block_only_cross_attention",
                                         "class_embeddings_concat", "resnet_skip_time_act", "center_input_sample", NULL};
    for (int i = 0; falses[i]; i++)
        if (!is_false(j, falses[i])) return glad_fail(GLAD_EINVAL, "config: '%s' is set; only false is supported", falses[i]);
    static const char *const strs[][2] = {{"act_fn", "silu"}, {"attention_type", "default"}, {"resnet_time_scale_shift", "default"},
                                          {"time_embedding_type", "positional"}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (!is_null_or(j, strs[i][0], strs[i][1])) return glad_fail(GLAD_EINVAL, "config: '%s' must be \"%s\"", strs[i][0], strs[i][1]);
    static const struct { const char *k; double v; } nums[] = {{"conv_in_kernel", 3}, {"conv_out_kernel", 3}, {"downsample_padding", 1},
                                                                {"resnet_out_scale_factor", 1}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        const glad_json *v = glad_json_get(j, nums[i].k);
        if (v && v->type != GLAD_JSON_NULL && (v->type != GLAD_JSON_NUM || v->num != nums[i].v))
            return glad_fail(GLAD_EINVAL, "config: '%s' must be %g", nums[i].k, nums[i].v);
    }
    const glad_json *boc = glad_json_get(j, "block_out_channels");
    if (!boc || boc->type != GLAD_JSON_ARR || boc->n < 1 || boc->n > GLAD_SDUNET_MAX_BLOCKS)
        return glad_fail(GLAD_EINVAL, "config: 'block_out_channels' must be a list of 1 to %d integers", GLAD_SDUNET_MAX_BLOCKS);
    int nb = c->nblocks = boc->n;
    for (int i = 0; i < nb; i++)
        if (jint(&boc->items[i], &c->block_out_channels[i])) return glad_fail(GLAD_EINVAL, "config: block_out_channels[%d] is not an integer", i);
    const glad_json *dt = glad_json_get(j, "down_block_types"), *ut = glad_json_get(j, "up_block_types");
    if (!dt || dt->type != GLAD_JSON_ARR || dt->n != nb || !ut || ut->type != GLAD_JSON_ARR || ut->n != nb)
        return glad_fail(GLAD_EINVAL, "config: 'down_block_types' and 'up_block_types' must list %d block types", nb);
    for (int i = 0; i < nb; i++) {
        const char *d = glad_json_str(&dt->items[i], ""), *u = glad_json_str(&ut->items[i], "");
        if (!strcmp(d, "CrossAttnDownBlock2D")) c->down_cross[i] = 1;
        else if (strcmp(d, "DownBlock2D")) return glad_fail(GLAD_EINVAL, "config: down block type '%s' is not supported", d);
        if (!strcmp(u, "CrossAttnUpBlock2D")) c->up_cross[i] = 1;
        else if (strcmp(u, "UpBlock2D")) return glad_fail(GLAD_EINVAL, "config: up block type '%s' is not supported", u);
    }
    const glad_json *mt = glad_json_get(j, "mid_block_type");
    if (!mt) c->mid_block = 1;   /* the class default */
    else if (mt->type == GLAD_JSON_NULL) c->mid_block = 0;
    else if (mt->type == GLAD_JSON_STR && !strcmp(mt->str, "UNetMidBlock2DCrossAttn")) c->mid_block = 1;
    else return glad_fail(GLAD_EINVAL, "config: mid block type '%s' is not supported", glad_json_str(mt, "?"));
    GLAD_TRY(jlist(j, "layers_per_block", nb, c->layers_per_block, 2));
    GLAD_TRY(jlist(j, "attention_head_dim", nb, c->heads, 8));
    GLAD_TRY(jlist(j, "transformer_layers_per_block", nb, c->transformer_layers, 1));
    int xd[GLAD_SDUNET_MAX_BLOCKS];
    GLAD_TRY(jlist(j, "cross_attention_dim", nb, xd, 1280));
    for (int i = 1; i < nb; i++)
        if (xd[i] != xd[0]) return glad_fail(GLAD_EINVAL, "config: per-block cross_attention_dim values differ; one context dim is supported");
    c->cross_attention_dim = xd[0];
    int v;
    c->in_channels = 4; c->out_channels = 4; c->norm_num_groups = 32;
    const glad_json *x;
    if ((x = glad_json_get(j, "in_channels")) && jint(x, &c->in_channels)) return glad_fail(GLAD_EINVAL, "config: in_channels");
    if ((x = glad_json_get(j, "out_channels")) && jint(x, &c->out_channels)) return glad_fail(GLAD_EINVAL, "config: out_channels");
    if ((x = glad_json_get(j, "norm_num_groups")) && jint(x, &c->norm_num_groups))
        return glad_fail(GLAD_EINVAL, "config: norm_num_groups must be an integer (null is not supported)");
    if ((x = glad_json_get(j, "sample_size")) && x->type != GLAD_JSON_NULL && !jint(x, &v)) c->sample_size = v;
    c->norm_eps = (float)glad_json_num(glad_json_get(j, "norm_eps"), 1e-5);
    const glad_json *fs = glad_json_get(j, "flip_sin_to_cos");
    c->flip_sin_to_cos = fs && fs->type == GLAD_JSON_BOOL ? fs->num != 0 : 1;
    c->freq_shift = (float)glad_json_num(glad_json_get(j, "freq_shift"), 0);
    c->mid_block_scale_factor = (float)glad_json_num(glad_json_get(j, "mid_block_scale_factor"), 1);
    const glad_json *ul = glad_json_get(j, "use_linear_projection");
    c->use_linear_projection = ul && ul->type == GLAD_JSON_BOOL && ul->num != 0;
    c->time_embed_dim = 4 * c->block_out_channels[0];
    if ((x = glad_json_get(j, "time_embedding_dim")) && x->type != GLAD_JSON_NULL && jint(x, &c->time_embed_dim))
        return glad_fail(GLAD_EINVAL, "config: time_embedding_dim");
    return glad_sdunet_config_check(c);
}

int glad_sdunet_config_parse(glad_sdunet_config *c, const char *js)
{
    glad_json *j;
    if (glad_json_parse(js, strlen(js), &j)) return glad_fail(GLAD_EFORMAT, "config: not valid JSON");
    int rc = parse(c, j);
    glad_json_free(j);
    return rc;
}

int glad_sdunet_config_check(const glad_sdunet_config *c)
{
    if (c->nblocks < 1 || c->nblocks > GLAD_SDUNET_MAX_BLOCKS)
        return glad_fail(GLAD_EINVAL, "%d blocks: 1 to %d", c->nblocks, GLAD_SDUNET_MAX_BLOCKS);
    if (c->in_channels < 1 || c->in_channels > 64 || c->out_channels < 1 || c->out_channels > 64)
        return glad_fail(GLAD_EINVAL, "in/out channels %d/%d: 1 to 64", c->in_channels, c->out_channels);
    if (c->norm_num_groups < 1 || c->norm_num_groups > MAX_CH) return glad_fail(GLAD_EINVAL, "norm_num_groups %d", c->norm_num_groups);
    if (!(c->norm_eps > 0 && c->norm_eps < 1)) return glad_fail(GLAD_EINVAL, "norm_eps %g: must be in (0, 1)", c->norm_eps);
    if (c->cross_attention_dim < 1 || c->cross_attention_dim > MAX_CH)
        return glad_fail(GLAD_EINVAL, "cross_attention_dim %d: 1 to %d", c->cross_attention_dim, MAX_CH);
    if (c->time_embed_dim < 1 || c->time_embed_dim > 4 * MAX_CH) return glad_fail(GLAD_EINVAL, "time embedding dim %d", c->time_embed_dim);
    if (!isfinite(c->freq_shift) || !isfinite(c->mid_block_scale_factor) || c->mid_block_scale_factor == 0)
        return glad_fail(GLAD_EINVAL, "freq_shift %g / mid_block_scale_factor %g", c->freq_shift, c->mid_block_scale_factor);
    if ((float)(c->block_out_channels[0] / 2) - c->freq_shift == 0 && c->block_out_channels[0] >= 2)
        return glad_fail(GLAD_EINVAL, "freq_shift %g: the sinusoid's frequencies divide by half the channels minus it", c->freq_shift);
    for (int i = 0; i < c->nblocks; i++) {
        if (c->block_out_channels[i] < 1 || c->block_out_channels[i] > MAX_CH || c->block_out_channels[i] % c->norm_num_groups)
            return glad_fail(GLAD_EINVAL, "block_out_channels[%d] = %d: 1 to %d and a multiple of norm_num_groups %d", i,
                             c->block_out_channels[i], MAX_CH, c->norm_num_groups);
        if (c->layers_per_block[i] < 1 || c->layers_per_block[i] > MAX_LAYERS)
            return glad_fail(GLAD_EINVAL, "layers_per_block[%d] = %d: 1 to %d", i, c->layers_per_block[i], MAX_LAYERS);
        if (c->transformer_layers[i] < 1 || c->transformer_layers[i] > MAX_TLAYERS)
            return glad_fail(GLAD_EINVAL, "transformer_layers_per_block[%d] = %d: 1 to %d", i, c->transformer_layers[i], MAX_TLAYERS);
        if (c->heads[i] < 1 || c->heads[i] > MAX_CH) return glad_fail(GLAD_EINVAL, "attention_head_dim[%d] = %d", i, c->heads[i]);
    }
    return 0;
}

/* ------------------------------------------------------------ construction, files */

void glad_sdunet_free(glad_sdunet *n)
{
    if (!n) return;
    for (int i = 0; i < n->np; i++) free(n->p[i].name);
    for (int i = 0; i < n->ndump; i++) { free(n->dumps[i].name); free(n->dumps[i].d); }
    free(n->dumps);
    free(n->p); free(n->res); free(n->xf); free(n->tb); free(n->st_);
    free(n->block);
    free(n->mem);
    if (n->st) glad_st_close(n->st);
    free(n);
}

/* bytes (a multiple of 64) in 2 MB pages where the kernel offers them: the
 * weights (3.4 GB for SD-v1-4) and activations fault in 512 times less often */
static float *big_alloc(size_t bytes)
{
    enum { HUGE = 2 << 20 };
    if (bytes < HUGE) return aligned_alloc(64, (bytes + 63) / 64 * 64);
    size_t r = (bytes + HUGE - 1) / HUGE * HUGE;
    float *p = aligned_alloc(HUGE, r);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, r, MADV_HUGEPAGE);   /* advice only: failure changes nothing */
#endif
    return p;
}

static int alloc_block(glad_sdunet *n)
{
    n->block = big_alloc(n->total * sizeof(float));
    if (!n->block) return glad_fail(GLAD_ENOMEM, "%zu parameters: out of memory", n->total);
    size_t off = 0;
    for (int i = 0; i < n->np; i++) { n->p[i].w = n->block + off; off += n->p[i].n; }
    return 0;
}

int glad_sdunet_create_random(const glad_sdunet_config *c, uint64_t seed, glad_sdunet **out)
{
    glad_sdunet *n = NULL;
    GLAD_TRY(layout(c, &n));
    int rc = alloc_block(n);
    if (rc) { glad_sdunet_free(n); return rc; }
    /* the fixtures' scales with uniform draws of the same variance (as fast as
     * 860 M parameters want): weights 1/sqrt(fan_in), biases 0.1, norm gains
     * 1 + 0.2 u, shifts 0.1 u; element k of tensor i is
     * glad_rng_uniform_at(seed + i * 2^32, k), whatever the threads */
    for (int i = 0; i < n->np; i++) {
        sparam *q = &n->p[i];
        size_t fan = q->ndim >= 2 ? q->n / (size_t)q->shape[0] : 1;
        float a = (q->kind == 0 ? (float)(1.0 / sqrt((double)fan)) : q->kind == 2 ? 0.2f : 0.1f) * 1.7320508f, b = q->kind == 2 ? 1.0f : 0.0f;
        uint64_t s = seed + ((uint64_t)i << 32);
        float *w = q->w;
        // elements are independent counter-based draws
        #pragma omp parallel for schedule(static) if (q->n > 65536)
        for (size_t k = 0; k < q->n; k++) w[k] = (float)(2 * glad_rng_uniform_at(s, k) - 1) * a + b;
    }
    *out = n;
    return 0;
}

/* owned: st belongs to the model afterwards (its aligned data used in place) */
static int load_st(const glad_st *st, const char *path, glad_sdunet **out, glad_st *owned)
{
    const char *cj = glad_st_meta(st, "config");
    if (!cj) return glad_fail(GLAD_EFORMAT, "%s: no UNet2DConditionModel config in __metadata__", path);
    glad_sdunet_config c;
    int rc = glad_sdunet_config_parse(&c, cj);
    if (rc) return glad_fail_in(rc, path);
    glad_sdunet *n = NULL;
    rc = layout(&c, &n);
    if (rc) return glad_fail_in(rc, path);
    /* every tensor present, with its shape and dtype, before any allocation of the model's size */
    int aligned = owned != NULL;
    for (int i = 0; i < n->np && !rc; i++) {
        const sparam *q = &n->p[i];
        const glad_st_entry *e = glad_st_find(st, q->name);
        if (!e) { rc = glad_fail(GLAD_ENOTFOUND, "%s: tensor '%s' missing", path, q->name); break; }
        int same = e->ndim == q->ndim;
        for (int d = 0; same && d < q->ndim; d++) same = e->shape[d] == q->shape[d];
        if (!same || e->dtype != GLAD_DT_F32) {
            char want[96], got[96];
            int k = 0;
            for (int d = 0; d < q->ndim; d++) k += snprintf(want + k, sizeof want - (size_t)k, "%s%lld", d ? "," : "", (long long)q->shape[d]);
            k = 0;
            got[0] = 0;
            for (int d = 0; d < e->ndim && k < 80; d++) k += snprintf(got + k, sizeof got - (size_t)k, "%s%lld", d ? "," : "", (long long)e->shape[d]);
            rc = glad_fail(GLAD_ESHAPE, "%s: tensor '%s' is [%s]%s, the config needs [%s] F32", path, q->name, got,
                           e->dtype != GLAD_DT_F32 ? " (not F32)" : "", want);
            break;
        }
        if ((uintptr_t)glad_st_data(st, e) % sizeof(float)) aligned = 0;
    }
    if (!rc && !aligned) rc = alloc_block(n);
    for (int i = 0; i < n->np && !rc; i++) {
        sparam *q = &n->p[i];
        const float *src = glad_st_data(st, glad_st_find(st, q->name));
        if (aligned) q->w = (float *)src;   /* the model owns the file's buffer from here */
        else memcpy(q->w, src, q->n * sizeof(float));
        for (size_t k = 0; k < q->n; k++)
            if (!isfinite(q->w[k])) { rc = glad_fail(GLAD_ENAN, "%s: tensor '%s' has NaN or infinity (element %zu)", path, q->name, k); break; }
    }
    if (rc) { glad_sdunet_free(n); return rc; }
    if (aligned) n->st = owned;
    *out = n;
    return 0;
}

int glad_sdunet_load_st(const glad_st *st, const char *path, glad_sdunet **out) { return load_st(st, path, out, NULL); }

int glad_sdunet_load(const char *path, glad_sdunet **out)
{
    struct stat sb;
    if (stat(path, &sb)) return glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return glad_fail(GLAD_EIO, "%s: %s", path, strerror(EISDIR));
    glad_st *st;
    errno = 0;
    int rc = glad_st_open(&st, path);
    if (rc) return glad_fail(rc, "%s: %s", path, rc == GLAD_EIO && errno ? strerror(errno) : glad_strerror(rc));
    rc = load_st(st, path, out, st);
    if (rc || !(*out)->st) glad_st_close(st);
    return rc;
}

const glad_sdunet_config *glad_sdunet_cfg(const glad_sdunet *n) { return &n->cfg; }
int glad_sdunet_in_channels(const glad_sdunet *n) { return n->cfg.in_channels; }
int glad_sdunet_out_channels(const glad_sdunet *n) { return n->cfg.out_channels; }
int glad_sdunet_ctx_dim(const glad_sdunet *n) { return n->cfg.cross_attention_dim; }
int glad_sdunet_size_multiple(const glad_sdunet *n) { return 1 << (n->cfg.nblocks - 1); }
size_t glad_sdunet_nparams(const glad_sdunet *n) { return n->total; }
double glad_sdunet_forward_flops(const glad_sdunet *n) { return n->flops; }
size_t glad_sdunet_activation_bytes(const glad_sdunet *n) { return n->planned ? n->mem_n * sizeof(float) : 0; }

/* ------------------------------------------------------------ dumps */

void glad_sdunet_set_dump(glad_sdunet *n, int on) { n->dump = on; }

const float *glad_sdunet_dump(const glad_sdunet *n, const char *name, size_t *n_out)
{
    for (int i = 0; i < n->ndump; i++)
        if (!strcmp(n->dumps[i].name, name)) { if (n_out) *n_out = n->dumps[i].n; return n->dumps[i].d; }
    return NULL;
}

/* image b's part (len floats) of dump `name` (total floats for the batch);
 * tok: d is (C, T) channel-major, stored token-major (T, C) as diffusers' [B, T, C] */
static void dump(glad_sdunet *n, const char *name, int b, const float *d, size_t len, size_t total, int tok, int C)
{
    if (!n->dump) return;
    dumpent *e = NULL;
    for (int i = 0; i < n->ndump && !e; i++)
        if (!strcmp(n->dumps[i].name, name)) e = &n->dumps[i];
    if (!e) {
        dumpent *nd = glad_grow(n->dumps, &n->dumpcap, n->ndump, sizeof *nd, 32);
        if (!nd) return;
        n->dumps = nd;
        e = &n->dumps[n->ndump];
        e->name = strdup(name);
        e->d = malloc(total * sizeof(float));
        e->n = total;
        if (!e->name || !e->d) { free(e->name); free(e->d); return; }
        n->ndump++;
    }
    if (e->n != total) return;
    float *o = e->d + (size_t)b * len;
    if (!tok) { memcpy(o, d, len * sizeof(float)); return; }
    size_t T = len / (size_t)C;
    for (int c = 0; c < C; c++)
        for (size_t t = 0; t < T; t++) o[t * C + c] = d[(size_t)c * T + t];
}

/* ------------------------------------------------------------ planning */

static size_t zmax(size_t a, size_t b) { return a > b ? a : b; }

/* buffer sizes for (B, H, W, L): one pass over the steps */
static int plan(glad_sdunet *n, int B, int H, int W, int L)
{
    const glad_sdunet_config *c = &n->cfg;
    if (n->planned && n->pB == B && n->pH == H && n->pW == W && n->pL == L && n->pth == omp_get_max_threads()) return 0;
    n->planned = 0;
    size_t act = 0, cat = 0, skip = 0, xs = 0, aws = 0, cws = 0, maxC = 0;
    int nth = omp_get_max_threads(), nsk = 0;
    for (int i = 0; i < n->nst; i++) {
        const step *s = &n->st_[i];
        size_t T = (size_t)(H >> s->lvl) * (size_t)(W >> s->lvl);
        int h = H >> s->lvl, w = W >> s->lvl;
        maxC = zmax(maxC, (size_t)(s->C + s->pop));
        act = zmax(act, (size_t)B * (size_t)(s->C > s->OC ? s->C : s->OC) * T);
        switch (s->kind) {
        case ST_CONV_IN: case ST_OUT: cws = zmax(cws, glad_conv2d_workspace(s->C, h, w, s->OC, 3, 3, 1, 1)); break;
        case ST_RES: {
            const resnet *r = &n->res[s->idx];
            cat = zmax(cat, (size_t)B * (size_t)r->in * T);
            cws = zmax(cws, glad_conv2d_workspace(r->in, h, w, r->out, 3, 3, 1, 1));
            cws = zmax(cws, glad_conv2d_workspace(r->out, h, w, r->out, 3, 3, 1, 1));
            cws = zmax(cws, glad_conv2d_workspace(r->in, h, w, r->out, 1, 1, 1, 0));
            break;
        }
        case ST_XF: {
            const xformer *x = &n->xf[s->idx];
            size_t CT = (size_t)x->C * T, ctx = (size_t)x->C * (size_t)L;
            xs = zmax(xs, 2 * CT + zmax(4 * CT, 8 * CT) + 2 * ctx);
            /* glad_attention_forward's scratch: a T x min(T, 32) block per
             * thread, at most T / that many threads (attention.c) */
            int ld = T < 32 ? (int)T : 32, slots = (int)T / ld, th = nth < slots ? nth : slots;
            aws = zmax(aws, (size_t)th * T * (size_t)ld);
            break;
        }
        case ST_DOWN: cws = zmax(cws, glad_conv2d_workspace(s->C, h, w, s->C, 3, 3, 2, 1)); break;
        case ST_UP:
            act = zmax(act, (size_t)B * (size_t)s->C * 4 * T);
            cws = zmax(cws, glad_conv2d_workspace(s->C, 2 * h, 2 * w, s->C, 3, 3, 1, 1));
            break;
        case ST_PUSH: n->skip_n[nsk++] = (size_t)B * (size_t)s->C * T; skip += (size_t)B * (size_t)s->C * T; break;
        }
    }
    cat = zmax(cat, act);
    size_t xws = (size_t)nth * glad_xattn_workspace(L);
    size_t TE = (size_t)c->time_embed_dim, C0 = (size_t)c->block_out_channels[0];
    size_t E = zmax(TE, maxC), small = (size_t)B * (C0 + TE + E) + 2 * (size_t)B * (size_t)c->norm_num_groups;
    /* h, o, t1 of act floats each; gn (a materialised GroupNorm+SiLU of a
     * resnet's input, without AVX-512F) and cat of cat; the skips;
     * transformer, attention, conv scratch; embeddings */
    size_t parts[] = {act, act, act, cat, cat, skip, xs, aws, xws, cws, small}, tot = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t r = (parts[i] + 15) / 16 * 16;
        if (r < parts[i] || tot + r < tot) return glad_fail(GLAD_ERANGE, "activation sizes overflow");
        tot += r;
    }
    size_t bytes;
    if (glad_mul_size(tot, sizeof(float), &bytes) || bytes > GLAD_MAX_ALLOC)
        return glad_fail(GLAD_ERANGE, "batch %d at %dx%d with %d context tokens needs %zu MB of activations: more than this build allows",
                         B, H, W, L, tot / 262144);
    free(n->mem);
    n->mem = big_alloc(bytes);
    n->mem_n = n->mem ? tot : 0;
    if (!n->mem) return glad_fail(GLAD_ENOMEM, "%zu MB of activations: out of memory", tot / 262144);
    float *p = n->mem;
    float **dst[] = {&n->h, &n->o, &n->t1, &n->gn, &n->cat, &n->skip, &n->xs, &n->aws, &n->xws, &n->cws, &n->temb};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) { *dst[i] = p; p += (parts[i] + 15) / 16 * 16; }
    n->stemb = n->temb + (size_t)B * C0;
    n->emb = n->stemb + (size_t)B * TE;
    n->mean = n->emb + (size_t)B * E;
    n->rstd = n->mean + (size_t)B * c->norm_num_groups;
    n->pB = B; n->pH = H; n->pW = W; n->pL = L; n->pth = nth;
    n->planned = 1;
    return 0;
}

/* ------------------------------------------------------------ forward pieces */

/* out (B, OC, N) = W (OC, K) x (B, K, N) + b (+ out when acc), one image at a time */
static void gemm_cm(float *out, const float *w, const float *b, const float *x, int OC, int K, size_t N, int acc)
{
    if (!acc)
        for (int o = 0; o < OC; o++) { float v = b ? b[o] : 0.0f; float *r = out + (size_t)o * N; for (size_t i = 0; i < N; i++) r[i] = v; }
    else if (b)
        for (int o = 0; o < OC; o++) { float v = b[o]; float *r = out + (size_t)o * N; for (size_t i = 0; i < N; i++) r[i] += v; }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, (int)N, K, 1.0f, w, K, x, (int)N, 1.0f, out, (int)N);
}

#define PW(i) (n->p[i].w)
#define PB(i) (n->p[(i) + 1].w)

/* out = conv3x3(silu(groupnorm(x))) with the norm's eps; fused where the engine can */
static void gnsilu_conv(glad_sdunet *n, float *out, const float *x, int gnorm, int conv, int B, int C, int H, int W, int OC)
{
    int G = n->cfg.norm_num_groups;
    size_t N = (size_t)H * W;
    if (glad_conv2d_gnsilu_ok(3, 3, 1, 1)) {
        glad_groupnorm_silu_forward(NULL, n->mean, n->rstd, x, PW(gnorm), PB(gnorm), B, C, (int)N, G, n->cfg.norm_eps);
        glad_gnsilu pre = {n->mean, n->rstd, PW(gnorm), PB(gnorm), G};
        glad_conv2d_forward_gnsilu(out, x, &pre, PW(conv), PB(conv), B, C, H, W, OC, n->cws);
    } else {
        glad_groupnorm_silu_forward(n->gn, n->mean, n->rstd, x, PW(gnorm), PB(gnorm), B, C, (int)N, G, n->cfg.norm_eps);
        glad_conv2d_forward(out, n->gn, PW(conv), PB(conv), B, C, H, W, OC, 3, 3, 1, 1, n->cws);
    }
    n->flops += 2.0 * B * OC * C * 9 * (double)N;
}

/* ResnetBlock2D: x (B, r->in, H, W) -> out */
static void run_resnet(glad_sdunet *n, const resnet *r, float *out, const float *x, int B, int H, int W, const char *name)
{
    size_t N = (size_t)H * W;
    float *t1 = n->t1;
    gnsilu_conv(n, t1, x, r->n1, r->c1, B, r->in, H, W, r->out);
    /* + time_emb_proj(silu(temb))[:, :, None, None] */
    glad_linear_forward(n->emb, n->stemb, PW(r->te), PB(r->te), B, n->cfg.time_embed_dim, r->out);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < r->out; o++) {
            float v = n->emb[(size_t)b * r->out + o], *row = t1 + ((size_t)b * r->out + o) * N;
            for (size_t i = 0; i < N; i++) row[i] += v;
        }
    gnsilu_conv(n, out, t1, r->n2, r->c2, B, r->out, H, W, r->out);
    if (r->sc >= 0) {
        glad_conv2d_forward(t1, x, PW(r->sc), PB(r->sc), B, r->in, H, W, r->out, 1, 1, 1, 0, n->cws);
        n->flops += 2.0 * B * r->out * r->in * (double)N;
    }
    const float *s = r->sc >= 0 ? t1 : x;
    size_t tot = (size_t)B * r->out * N;
    float inv = 1.0f / r->scale;
    if (r->scale == 1.0f) for (size_t i = 0; i < tot; i++) out[i] += s[i];
    else for (size_t i = 0; i < tot; i++) out[i] = (out[i] + s[i]) * inv;
    for (int b = 0; b < B; b++) dump(n, name, b, out + (size_t)b * r->out * N, (size_t)r->out * N, tot, 0, 0);
}

/* one BasicTransformerBlock on tok (C, T) of image b, context ctx (L, X) */
static void run_tblock(glad_sdunet *n, const tblock *t, const xformer *x, float *tok, const float *ctx, int L, size_t T, int b,
                       int B, const char *pfx, int j)
{
    int C = x->C, X = n->cfg.cross_attention_dim, hd = C / x->heads;
    size_t CT = (size_t)C * T;
    float *ln = tok + CT, *big = ln + CT, *att = big + 3 * CT, *kx = big + 8 * CT, *vx = kx + (size_t)C * L;
    char nm[MAX_NAME + 64];
    /* self-attention: q, k, v of head h as rows h 3hd .. (glad_attention_forward's layout) */
    glad_layernorm_cols_forward(ln, tok, PW(t->n1), PB(t->n1), C, (int)T, 1e-5f);
    for (int h = 0; h < x->heads; h++) {
        const int qkv[3] = {t->q1, t->k1, t->v1};
        for (int k = 0; k < 3; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hd, (int)T, C, 1.0f, PW(qkv[k]) + (size_t)h * hd * C, C, ln,
                        (int)T, 0.0f, big + ((size_t)h * 3 * hd + (size_t)k * hd) * T, (int)T);
    }
    glad_attention_forward(att, NULL, big, 1, C, (int)T, x->heads, n->aws);
    gemm_cm(big, PW(t->o1), PB(t->o1), att, C, C, T, 0);
    snprintf(nm, sizeof nm, "%s.transformer_blocks.%d.attn1", pfx, j);
    dump(n, nm, b, big, CT, (size_t)B * CT, 1, C);
    for (size_t i = 0; i < CT; i++) tok[i] += big[i];
    /* cross-attention: keys and values from the context */
    glad_layernorm_cols_forward(ln, tok, PW(t->n2), PB(t->n2), C, (int)T, 1e-5f);
    gemm_cm(big, PW(t->q2), NULL, ln, C, C, T, 0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C, L, X, 1.0f, PW(t->k2), X, ctx, X, 0.0f, kx, L);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C, L, X, 1.0f, PW(t->v2), X, ctx, X, 0.0f, vx, L);
    glad_xattn_forward(att, big, kx, vx, C, (int)T, L, x->heads, n->xws);
    gemm_cm(big, PW(t->o2), PB(t->o2), att, C, C, T, 0);
    snprintf(nm, sizeof nm, "%s.transformer_blocks.%d.attn2", pfx, j);
    dump(n, nm, b, big, CT, (size_t)B * CT, 1, C);
    for (size_t i = 0; i < CT; i++) tok[i] += big[i];
    /* GEGLU feed-forward */
    glad_layernorm_cols_forward(ln, tok, PW(t->n3), PB(t->n3), C, (int)T, 1e-5f);
    gemm_cm(big, PW(t->f1), PB(t->f1), ln, 2 * t->inner, C, T, 0);
    glad_geglu_forward(big, big, t->inner, (int)T);
    gemm_cm(ln, PW(t->f2), PB(t->f2), big, C, t->inner, T, 0);
    snprintf(nm, sizeof nm, "%s.transformer_blocks.%d.ff", pfx, j);
    dump(n, nm, b, ln, CT, (size_t)B * CT, 1, C);
    for (size_t i = 0; i < CT; i++) tok[i] += ln[i];
    snprintf(nm, sizeof nm, "%s.transformer_blocks.%d", pfx, j);
    dump(n, nm, b, tok, CT, (size_t)B * CT, 1, C);
    n->flops += 2.0 * T * C * C * 4 + 4.0 * T * T * C + 2.0 * T * C * C * 2 + 2.0 * L * X * C * 2 + 4.0 * T * L * C +
                2.0 * T * C * 2 * t->inner + 2.0 * T * t->inner * C;
}

/* Transformer2DModel: x (B, C, H, W) -> out, per image */
static void run_xformer(glad_sdunet *n, const xformer *x, float *out, const float *in, const float *ctx, int L, int B, size_t T,
                        const char *name)
{
    int C = x->C, G = n->cfg.norm_num_groups, X = n->cfg.cross_attention_dim;
    size_t CT = (size_t)C * T;
    float *tok = n->xs, *ln = tok + CT;
    char nm[MAX_NAME + 32];
    for (int b = 0; b < B; b++) {
        const float *xi = in + (size_t)b * CT;
        glad_groupnorm_forward(ln, n->mean, n->rstd, xi, PW(x->norm), PB(x->norm), 1, C, (int)T, G, 1e-6f);
        snprintf(nm, sizeof nm, "%s.norm", name);
        dump(n, nm, b, ln, CT, (size_t)B * CT, 0, 0);
        gemm_cm(tok, PW(x->pin), PB(x->pin), ln, C, C, T, 0);
        snprintf(nm, sizeof nm, "%s.proj_in", name);
        dump(n, nm, b, tok, CT, (size_t)B * CT, 0, 0);
        for (int j = 0; j < x->ntb; j++)
            run_tblock(n, &n->tb[x->tb0 + j], x, tok, ctx + (size_t)b * L * X, L, T, b, B, name, j);
        float *o = out + (size_t)b * CT;
        gemm_cm(o, PW(x->pout), PB(x->pout), tok, C, C, T, 0);
        snprintf(nm, sizeof nm, "%s.proj_out", name);
        dump(n, nm, b, o, CT, (size_t)B * CT, 0, 0);
        for (size_t i = 0; i < CT; i++) o[i] += xi[i];
        dump(n, name, b, o, CT, (size_t)B * CT, 0, 0);
    }
    n->flops += 4.0 * B * T * C * C;
}

/* the sinusoid as diffusers' get_timestep_embedding forms it in float32 */
static void time_proj(float *out, const float *t, int B, int dim, int flip, float shift)
{
    int half = dim / 2;
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * dim;
        for (int i = 0; i < half; i++) {
            float e = (float)-9.210340371976184 * (float)i;   /* -ln(10000) i */
            float f = expf(e / ((float)half - shift)), a = t[b] * f;
            o[flip ? half + i : i] = sinf(a);
            o[flip ? i : half + i] = cosf(a);
        }
        if (dim % 2) o[dim - 1] = 0;
    }
}

int glad_sdunet_forward(glad_sdunet *n, float *eps, const float *x, int B, int H, int W, const float *t, const float *ctx, int L)
{
    const glad_sdunet_config *c = &n->cfg;
    int m = glad_sdunet_size_multiple(n);
    if (B < 1 || B > 4096) return glad_fail(GLAD_EINVAL, "batch %d: 1 to 4096", B);
    if (H < 1 || W < 1 || H > 16384 || W > 16384 || H % m || W % m)
        return glad_fail(GLAD_EINVAL, "latent %dx%d: sides must be positive multiples of %d (%d resolution levels)", H, W, m, c->nblocks);
    if (L < 1 || L > 65536) return glad_fail(GLAD_EINVAL, "%d context tokens: 1 to 65536", L);
    for (int b = 0; b < B; b++)
        if (!isfinite(t[b])) return glad_fail(GLAD_EINVAL, "timestep %d is not finite", b);
    GLAD_TRY(plan(n, B, H, W, L));
    for (int i = 0; i < n->ndump; i++) { free(n->dumps[i].name); free(n->dumps[i].d); }
    n->ndump = 0;
    n->flops = 0;
    int C0 = c->block_out_channels[0], TE = c->time_embed_dim;
    /* time embedding: temb = linear_2(silu(linear_1(sinusoid))); the resnets take silu(temb) */
    time_proj(n->temb, t, B, C0, c->flip_sin_to_cos, c->freq_shift);
    for (int b = 0; b < B; b++) dump(n, "time_proj", b, n->temb + (size_t)b * C0, (size_t)C0, (size_t)B * C0, 0, 0);
    glad_linear_forward(n->emb, n->temb, PW(n->te1), PB(n->te1), B, C0, TE);
    glad_silu_forward(n->emb, n->emb, (size_t)B * TE);
    glad_linear_forward(n->stemb, n->emb, PW(n->te2), PB(n->te2), B, TE, TE);
    for (int b = 0; b < B; b++) dump(n, "time_embedding", b, n->stemb + (size_t)b * TE, (size_t)TE, (size_t)B * TE, 0, 0);
    glad_silu_forward(n->stemb, n->stemb, (size_t)B * TE);
    float *h = n->h, *o = n->o;
    int ch = 0, nsk = 0;
    float *sk[64 * MAX_LAYERS];
    size_t skoff = 0;
    for (int i = 0; i < n->nst; i++) {
        const step *s = &n->st_[i];
        int hh = H >> s->lvl, ww = W >> s->lvl;
        size_t N = (size_t)hh * ww;
        switch (s->kind) {
        case ST_CONV_IN:
            glad_conv2d_forward(h, x, PW(s->idx), PB(s->idx), B, s->C, H, W, s->OC, 3, 3, 1, 1, n->cws);
            n->flops += 2.0 * B * s->OC * s->C * 9 * (double)N;
            ch = s->OC;
            for (int b = 0; b < B; b++) dump(n, "conv_in", b, h + (size_t)b * ch * N, (size_t)ch * N, (size_t)B * ch * N, 0, 0);
            break;
        case ST_PUSH:
            sk[nsk] = n->skip + skoff;
            memcpy(sk[nsk], h, n->skip_n[nsk] * sizeof(float));
            skoff += n->skip_n[nsk];
            nsk++;
            break;
        case ST_RES: {
            const resnet *r = &n->res[s->idx];
            const float *in = h;
            if (s->pop) {   /* cat([h, skip], channels) */
                nsk--;
                glad_concat_forward(n->cat, h, sk[nsk], B, s->C, s->pop, N);
                skoff -= n->skip_n[nsk];
                in = n->cat;
            }
            run_resnet(n, r, o, in, B, hh, ww, s->name);
            float *tmp = h; h = o; o = tmp;
            ch = r->out;
            break;
        }
        case ST_XF:
            run_xformer(n, &n->xf[s->idx], o, h, ctx, L, B, N, s->name);
            { float *tmp = h; h = o; o = tmp; }
            break;
        case ST_DOWN: {
            int h2 = hh / 2, w2 = ww / 2;
            glad_conv2d_forward(o, h, PW(s->idx), PB(s->idx), B, s->C, hh, ww, s->C, 3, 3, 2, 1, n->cws);
            n->flops += 2.0 * B * s->C * s->C * 9 * (double)h2 * w2;
            for (int b = 0; b < B; b++)
                dump(n, s->name, b, o + (size_t)b * s->C * h2 * w2, (size_t)s->C * h2 * w2, (size_t)B * s->C * h2 * w2, 0, 0);
            float *tmp = h; h = o; o = tmp;
            break;
        }
        case ST_UP: {
            /* s->lvl is the output level */
            int h2 = hh, w2 = ww;
            glad_upsample2_forward(n->t1, h, B * s->C, h2 / 2, w2 / 2);
            glad_conv2d_forward(o, n->t1, PW(s->idx), PB(s->idx), B, s->C, h2, w2, s->C, 3, 3, 1, 1, n->cws);
            n->flops += 2.0 * B * s->C * s->C * 9 * (double)N;
            for (int b = 0; b < B; b++) dump(n, s->name, b, o + (size_t)b * s->C * N, (size_t)s->C * N, (size_t)B * s->C * N, 0, 0);
            float *tmp = h; h = o; o = tmp;
            break;
        }
        case ST_OUT:
            if (n->dump) {
                glad_groupnorm_forward(n->gn, n->mean, n->rstd, h, PW(n->norm_out), PB(n->norm_out), B, ch, (int)N, c->norm_num_groups,
                                       c->norm_eps);
                for (int b = 0; b < B; b++)
                    dump(n, "conv_norm_out", b, n->gn + (size_t)b * ch * N, (size_t)ch * N, (size_t)B * ch * N, 0, 0);
            }
            gnsilu_conv(n, o, h, n->norm_out, s->idx, B, ch, H, W, s->OC);
            memcpy(eps, o, sizeof(float) * (size_t)B * s->OC * N);
            break;
        }
        if (n->dump && c->mid_block && !strcmp(s->name, "mid_block.resnets.1"))
            for (int b = 0; b < B; b++) dump(n, "mid_block", b, h + (size_t)b * ch * N, (size_t)ch * N, (size_t)B * ch * N, 0, 0);
    }
    return 0;
}
