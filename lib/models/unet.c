/* unet.c - the guided-diffusion UNet (unet.h). A call first records the
 * network as a graph of primitive ops (a tape: inputs, output, parameters,
 * saved statistics), cached per (batch, mode); a memory plan then gives every
 * tensor an offset in one buffer from its lifetime: activations the backward
 * does not read are freed after their last forward use, GroupNorm+SiLU
 * outputs are recomputed in backward instead of kept, gradients die with
 * their op. The forward pass runs the tape with the lib/nn kernels; the
 * backward pass replays it in reverse. The tape has no add ops: the
 * time-embedding and residual adds are made by the convs before them as
 * they write their outputs (glad_conv_epi), and their gradients by those
 * convs' backward. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/json.h"
#include "core/rng.h"
#include "models/unet.h"
#include "io/safetensors.h"
#include "nn/bf16.h"

/* a tensor of the graph; data at mem + off while alive, gradient at mem + goff */
typedef struct {
    size_t n, off, goff;
    int prod;        /* producing op */
    int last;        /* last forward consumer (-1: none) */
    int keep;        /* outlives the pass (output, encoder features) */
    int recompute;   /* GroupNorm+SiLU output: rebuilt in backward */
    int need;        /* consumers whose backward reads the data (planning counter) */
    int has_g, nograd;
    int uses;        /* ops that read it */
    int virt;        /* fused GroupNorm+SiLU output: never materialised in the forward */
} node;

enum { OP_INPUT, OP_TEMB, OP_CONV, OP_GN, OP_GNSILU, OP_SILU, OP_LINEAR, OP_AVGPOOL, OP_UPSAMPLE, OP_CONCAT, OP_ATTN, OP_DROPOUT };

typedef struct {
    int op;
    int a, b, y;             /* node indices (-1: none) */
    int pw, pb;              /* parameter indices (-1: none) */
    int B, C, H, W, OC, k, stride, pad, Cb, T, heads;
    float p;
    uint64_t seed;           /* dropout: added to the call's seed */
    size_t s1, ns1;          /* saved: GN mean then rstd (2 B 32), attention weights */
    size_t rtmp;             /* backward: offset of the recomputed input a */
    int rec, za, zb;         /* input a recomputed; this op creates (zeroes) a's / b's gradient */
    int ze, zr;              /* the same for e's / r's */
    int pre, x2;             /* conv of a fused GroupNorm+SiLU: that op, and its input (read instead of a) */
    int e, r;                /* conv with an output epilogue: its embedding (B,OC) and residual nodes, or -1 */
    int fused;               /* GroupNorm+SiLU whose conv applies it: the forward keeps the statistics only */
} tape_op;

/* the blocks of the down, middle and up paths (conv_in and out are not blocks) */
typedef enum { GLAD_UNET_BLOCK_RES = 1, GLAD_UNET_BLOCK_ATTN = 2 } glad_unet_block_kind;

/* parameters of one block, by index into the param table */
typedef struct {
    glad_unet_block_kind kind;
    int in, out, up, down, heads;
    int gn1, conv1, emb, gn2, conv2, skip;      /* res */
    int norm, qkv, proj;                        /* attn */
} block;

struct glad_unet {
    glad_unet_config cfg;
    int np, npcap;
    int oom;                 /* an allocation failed while building */
    glad_param *p;
    size_t total;
    float *w, *g;
    int t_emb1, t_emb2;
    block *blk;
    int nblk, nblkcap;
    int conv_in, out_gn, out_conv;
    int ndown, nmid, nup;    /* block index ranges: down [0,ndown), middle, up */
    tape_op *tape;
    int ntape, tapecap;
    node *nodes;
    int nnodes, nodecap;
    int gB, gtrain, gmode, gvalid;    /* the cached graph: batch, train flag, 0 forward / 1 encoder */
    int out_node, nfeat, feat[GLAD_UNET_MAX_LEVELS], fc[GLAD_UNET_MAX_LEVELS], fh[GLAD_UNET_MAX_LEVELS], fw[GLAD_UNET_MAX_LEVELS];
    int fwd_done;                     /* a training forward ran on this graph: backward may follow */
    uint64_t seed;                    /* the training forward's dropout seed */
    float *mem;                       /* the planned buffer */
    size_t mem_n, peak;               /* floats */
    float *ws;                        /* conv / attention scratch */
    size_t ws_n, ws_need;
    double *dws;                      /* GroupNorm+SiLU backward partial sums */
    size_t dws_n, dws_need;
    glad_bf16_cache *bc;              /* bf16 weights of inference passes (nn/bf16.h), cleared by glad_unet_weights */
    glad_bf16_cache *bt;              /* bf16 weights of one training step: made by its forward, cleared by the next */
    int prof_on;                      /* glad_unet_profile: time every forward and backward op */
    double *prof_s, *prof_bs;         /* forward and backward seconds per tape op (prof_n entries) */
    int *prof_calls, *prof_bcalls, prof_n;
};

/* ------------------------------------------------------------ construction */

static int add_param(glad_unet *u, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    glad_param *np = glad_grow(u->p, &u->npcap, u->np, sizeof *np, 128);
    if (!np) { u->oom = 1; return -1; }
    u->p = np;
    glad_param *q = &u->p[u->np];
    memset(q, 0, sizeof *q);
    q->name = strdup(name);
    q->ndim = ndim;
    int64_t s[4] = {d0, d1, d2, d3};
    q->n = 1;
    for (int i = 0; i < ndim; i++) { q->shape[i] = s[i]; q->n *= (size_t)s[i]; }
    q->off = u->total;
    u->total += q->n;
    if (!q->name) { u->oom = 1; return -1; }
    return u->np++;
}

/* weight index; the bias is always the next param */
static int add_conv(glad_unet *u, const char *pfx, int in, int out, int k, int conv1d)
{
    char n[256];
    snprintf(n, sizeof n, "%.200s.weight", pfx);
    int i = conv1d ? add_param(u, n, 3, out, in, 1, 0) : add_param(u, n, 4, out, in, k, k);
    snprintf(n, sizeof n, "%.200s.bias", pfx);
    add_param(u, n, 1, out, 0, 0, 0);
    return i;
}

static int add_norm(glad_unet *u, const char *pfx, int ch)
{
    char n[256];
    snprintf(n, sizeof n, "%.200s.weight", pfx);
    int i = add_param(u, n, 1, ch, 0, 0, 0);
    snprintf(n, sizeof n, "%.200s.bias", pfx);
    add_param(u, n, 1, ch, 0, 0, 0);
    return i;
}

static block *new_block(glad_unet *u)
{
    block *nb = glad_grow(u->blk, &u->nblkcap, u->nblk, sizeof *nb, 32);
    if (!nb) { u->oom = 1; return NULL; }
    u->blk = nb;
    block *b = &u->blk[u->nblk++];
    memset(b, 0, sizeof *b);
    b->skip = -1;
    return b;
}

static int res_block(glad_unet *u, const char *pfx, int in, int out, int up, int down)
{
    block *b = new_block(u);
    if (!b) return -1;
    char n[256];
    int emb = 4 * u->cfg.base;
    b->kind = GLAD_UNET_BLOCK_RES; b->in = in; b->out = out; b->up = up; b->down = down;
    snprintf(n, sizeof n, "%.200s.in_layers.0", pfx); b->gn1 = add_norm(u, n, in);
    snprintf(n, sizeof n, "%.200s.in_layers.2", pfx); b->conv1 = add_conv(u, n, in, out, 3, 0);
    snprintf(n, sizeof n, "%.200s.embed_layers.1.weight", pfx); b->emb = add_param(u, n, 2, out, emb, 0, 0);
    snprintf(n, sizeof n, "%.200s.embed_layers.1.bias", pfx); add_param(u, n, 1, out, 0, 0, 0);
    snprintf(n, sizeof n, "%.200s.out_layers.0", pfx); b->gn2 = add_norm(u, n, out);
    snprintf(n, sizeof n, "%.200s.out_layers.3", pfx); b->conv2 = add_conv(u, n, out, out, 3, 0);
    if (in != out) { snprintf(n, sizeof n, "%.200s.skip_connection", pfx); b->skip = add_conv(u, n, in, out, 1, 0); }
    return 0;
}

static int attn_block(glad_unet *u, const char *pfx, int ch)
{
    block *b = new_block(u);
    if (!b) return -1;
    char n[256];
    b->kind = GLAD_UNET_BLOCK_ATTN; b->in = b->out = ch; b->heads = u->cfg.heads;
    snprintf(n, sizeof n, "%.200s.norm", pfx); b->norm = add_norm(u, n, ch);
    snprintf(n, sizeof n, "%.200s.to_qkv", pfx); b->qkv = add_conv(u, n, ch, 3 * ch, 1, 1);
    snprintf(n, sizeof n, "%.200s.proj_out", pfx); b->proj = add_conv(u, n, ch, ch, 1, 1);
    return 0;
}

static int is_attn(const glad_unet_config *c, int ds)
{
    for (int i = 0; i < c->nattn; i++) if (c->attn_res[i] * ds == c->img_size) return 1;
    return 0;
}

void glad_unet_config_default(glad_unet_config *c, int img_size, int in_channels)
{
    memset(c, 0, sizeof *c);
    c->img_size = img_size; c->base = 64; c->num_res_blocks = 2; c->heads = 4; c->in_channels = in_channels;
    static const float m512[] = {0.5f, 1, 1, 2, 2, 4, 4}, m256[] = {1, 1, 2, 2, 4, 4}, m128[] = {1, 1, 2, 3, 4}, m64[] = {1, 2, 3, 4};
    const float *m = img_size >= 512 ? m512 : img_size >= 256 ? m256 : img_size >= 128 ? m128 : m64;
    c->nmults = img_size >= 512 ? 7 : img_size >= 256 ? 6 : img_size >= 128 ? 5 : 4;
    memcpy(c->mults, m, sizeof(float) * (size_t)c->nmults);
    c->nattn = 3;
    c->attn_res[0] = 32; c->attn_res[1] = 16; c->attn_res[2] = 8;
}

/* A config number as an int, truncated as a C cast does; outside int's
 * range (1e300, 1e999) gives `bad` instead of undefined behaviour. */
static int cfg_int(const glad_json *v, double dflt, int bad)
{
    double x = glad_json_num(v, dflt);
    return x > -2147483649.0 && x < 2147483648.0 ? (int)x : bad;
}

int glad_unet_config_parse(glad_unet_config *c, const char *js)
{
    glad_json *j;
    GLAD_TRY(glad_json_parse(js, strlen(js), &j));
    memset(c, 0, sizeof *c);
    int rc = GLAD_EFORMAT;
    c->img_size = cfg_int(glad_json_get(j, "img_size"), 0, -1);
    c->base = cfg_int(glad_json_get(j, "base_channels"), 0, -1);
    c->num_res_blocks = cfg_int(glad_json_get(j, "num_res_blocks"), 2, -1);
    c->heads = cfg_int(glad_json_get(j, "n_heads"), 1, -1);
    c->in_channels = cfg_int(glad_json_get(j, "in_channels"), 3, -1);
    c->dropout = (float)glad_json_num(glad_json_get(j, "dropout"), 0);
    const glad_json *m = glad_json_get(j, "channel_mults");
    if (!m || m->type != GLAD_JSON_ARR || m->n < 1 || m->n > GLAD_UNET_MAX_LEVELS) goto out;
    c->nmults = m->n;
    for (int i = 0; i < m->n; i++) {
        c->mults[i] = (float)glad_json_num(&m->items[i], 0);
        if (!isfinite(c->mults[i])) goto out;   /* 1e999: no channel count, and no JSON to write back */
    }
    /* resolutions are image sizes (1..4096 like img_size): larger ones never
     * match a level, and is_attn's resolution x downsampling must not overflow */
    const glad_json *a = glad_json_get(j, "attention_resolutions");
    if (a && a->type == GLAD_JSON_STR) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", a->str);
        for (char *s = strtok(buf, ","); s && c->nattn < GLAD_UNET_MAX_LEVELS; s = strtok(NULL, ","))
            if (atoi(s) > 0 && atoi(s) <= 4096) c->attn_res[c->nattn++] = atoi(s);
    } else if (a && a->type == GLAD_JSON_ARR)
        for (int i = 0; i < a->n && c->nattn < GLAD_UNET_MAX_LEVELS; i++) {
            int r = cfg_int(&a->items[i], 0, 0);
            if (r > 0 && r <= 4096) c->attn_res[c->nattn++] = r;   /* as from the string form */
        }
    if (c->img_size < 8 || c->img_size > 4096 || c->base < 1 || c->base > 4096 || c->num_res_blocks < 1 || c->num_res_blocks > 16 ||
        c->heads < 1 || c->in_channels < 1 || c->in_channels > 64 || c->dropout < 0 || c->dropout >= 1)
        goto out;
    rc = 0;
out:
    glad_json_free(j);
    return rc;
}

int glad_unet_config_json(const glad_unet_config *c, char *buf, size_t len)
{
    char m[128] = "", a[128] = "";
    size_t k = 0;
    for (int i = 0; i < c->nmults; i++) k += (size_t)snprintf(m + k, sizeof m - k, "%s%g", i ? ", " : "", c->mults[i]);
    k = 0;
    for (int i = 0; i < c->nattn; i++) k += (size_t)snprintf(a + k, sizeof a - k, "%s%d", i ? "," : "", c->attn_res[i]);
    return snprintf(buf, len,
                    "{\"img_size\": %d, \"base_channels\": %d, \"channel_mults\": [%s], \"num_res_blocks\": %d, "
                    "\"attention_resolutions\": \"%s\", \"n_heads\": %d, \"in_channels\": %d, \"dropout\": %g}",
                    c->img_size, c->base, m, c->num_res_blocks, a, c->heads, c->in_channels, c->dropout);
}

int glad_unet_config_check(const glad_unet_config *c)
{
    if (c->nmults < 1 || c->nmults > GLAD_UNET_MAX_LEVELS)
        return glad_fail(GLAD_EINVAL, "%d levels (channel multipliers): 1 to %d", c->nmults, GLAD_UNET_MAX_LEVELS);
    if (c->nattn < 0 || c->nattn > GLAD_UNET_MAX_LEVELS)
        return glad_fail(GLAD_EINVAL, "%d attention resolutions: at most %d", c->nattn, GLAD_UNET_MAX_LEVELS);
    if (c->base < 1 || c->heads < 1 || c->in_channels < 1 || c->num_res_blocks < 1 || c->img_size < 1)
        return glad_fail(GLAD_EINVAL, "base %d, heads %d, in_channels %d, res blocks %d, image size %d: each must be positive",
                         c->base, c->heads, c->in_channels, c->num_res_blocks, c->img_size);
    if (!(c->dropout >= 0 && c->dropout < 1)) return glad_fail(GLAD_EINVAL, "dropout %g: must be in [0, 1)", c->dropout);
    /* every channel count must be a multiple of 32 (GroupNorm) and of heads */
    for (int i = 0; i < c->nmults; i++) {
        float chf = c->mults[i] * c->base;   /* as the builder computes it */
        int ch = chf >= 0 && chf <= 65536 ? (int)chf : -1;
        if (ch < 32 || ch % 32 || ch % c->heads)
            return glad_fail(GLAD_EINVAL, "level %d: %g channels (base %d x multiplier %g) must be a multiple of 32 and of the %d heads",
                             i + 1, (double)chf, c->base, (double)c->mults[i], c->heads);
    }
    if (c->img_size % (1 << (c->nmults - 1)))
        return glad_fail(GLAD_EINVAL, "image size %d is not divisible by 2^%d (%d levels)", c->img_size, c->nmults - 1, c->nmults);
    /* the skip connections: conv_in, every res block and every downsampling */
    int nskip = c->nmults * (c->num_res_blocks + 1);
    if (c->num_res_blocks > GLAD_UNET_MAX_SKIPS || nskip > GLAD_UNET_MAX_SKIPS)
        return glad_fail(GLAD_EINVAL, "%d levels x (%d res blocks + 1) = %d skip connections; the UNet holds at most %d",
                         c->nmults, c->num_res_blocks, nskip, GLAD_UNET_MAX_SKIPS);
    return 0;
}

/* The parameter list and block graph of a config, without the weights: a
 * model file is checked against it before anything of its size is allocated
 * (a 300-byte file must not be able to ask for gigabytes). */
static int unet_layout(glad_unet **out, const glad_unet_config *cfg)
{
    GLAD_TRY(glad_unet_config_check(cfg));
    glad_unet *u = calloc(1, sizeof *u);
    if (!u) return GLAD_ENOMEM;
    u->cfg = *cfg;
    const glad_unet_config *c = &u->cfg;
    int base = c->base, nres = c->num_res_blocks;
    char n[256];
    add_param(u, "time_embedding.1.weight", 2, 4 * base, base, 0, 0); u->t_emb1 = 0;
    add_param(u, "time_embedding.1.bias", 1, 4 * base, 0, 0, 0);
    u->t_emb2 = add_param(u, "time_embedding.3.weight", 2, 4 * base, 4 * base, 0, 0);
    add_param(u, "time_embedding.3.bias", 1, 4 * base, 0, 0, 0);
    int ch = (int)(c->mults[0] * base), ds = 1, k = 1;
    u->conv_in = add_conv(u, "down.0.0", c->in_channels, ch, 3, 0);
    int skips[GLAD_UNET_MAX_SKIPS], ns = 0;
    skips[ns++] = ch;
    for (int lv = 0; lv < c->nmults; lv++) {
        int oc = (int)(c->mults[lv] * base);
        for (int r = 0; r < nres; r++, k++) {
            snprintf(n, sizeof n, "down.%d.0", k); res_block(u, n, ch, oc, 0, 0);
            ch = oc;
            if (is_attn(c, ds)) { snprintf(n, sizeof n, "down.%d.1", k); attn_block(u, n, ch); }
            skips[ns++] = ch;
        }
        if (lv != c->nmults - 1) {
            snprintf(n, sizeof n, "down.%d.0", k++); res_block(u, n, ch, ch, 0, 1);
            ds *= 2;
            skips[ns++] = ch;
        }
    }
    u->ndown = u->nblk;
    res_block(u, "middle.0", ch, ch, 0, 0);
    attn_block(u, "middle.1", ch);
    res_block(u, "middle.2", ch, ch, 0, 0);
    u->nmid = u->nblk - u->ndown;
    k = 0;
    for (int lv = c->nmults - 1; lv >= 0; lv--) {
        int oc = (int)(c->mults[lv] * base);
        for (int j = 0; j <= nres; j++, k++) {
            int s = skips[--ns];
            int idx = 0;
            snprintf(n, sizeof n, "up.%d.%d", k, idx++); res_block(u, n, ch + s, oc, 0, 0);
            ch = oc;
            if (is_attn(c, ds)) { snprintf(n, sizeof n, "up.%d.%d", k, idx++); attn_block(u, n, ch); }
            if (lv > 0 && j == nres) {
                snprintf(n, sizeof n, "up.%d.%d", k, idx++); res_block(u, n, ch, ch, 1, 0);
                ds /= 2;
            }
        }
    }
    u->nup = u->nblk - u->ndown - u->nmid;
    u->out_gn = add_norm(u, "out.0", ch);
    u->out_conv = add_conv(u, "out.2", ch, c->in_channels, 3, 0);
    if (u->oom || u->np == 0) { glad_unet_free(u); return glad_fail(GLAD_ENOMEM, "out of memory building the UNet"); }
    *out = u;
    return 0;
}

static int unet_alloc(glad_unet *u)
{
    u->w = calloc(u->total, sizeof(float));
    u->g = calloc(u->total, sizeof(float));
    if (!u->w || !u->g) return glad_fail(GLAD_ENOMEM, "out of memory: %zu UNet parameters", u->total);
    return 0;
}

int glad_unet_create(glad_unet **out, const glad_unet_config *cfg)
{
    glad_unet *u;
    GLAD_TRY(unet_layout(&u, cfg));
    int rc = unet_alloc(u);
    if (rc) { glad_unet_free(u); return rc; }
    *out = u;
    return 0;
}

void glad_unet_free(glad_unet *u)
{
    if (!u) return;
    for (int i = 0; i < u->np; i++) free(u->p[i].name);
    free(u->p); free(u->w); free(u->g); free(u->blk); free(u->tape); free(u->nodes); free(u->ws); free(u->dws);
    free(u->prof_s); free(u->prof_calls); free(u->prof_bs); free(u->prof_bcalls);
    free(u->mem);
    glad_bf16_cache_free(u->bc);
    glad_bf16_cache_free(u->bt);
    free(u);
}

const glad_unet_config *glad_unet_cfg(const glad_unet *u) { return &u->cfg; }
size_t glad_unet_nparams(const glad_unet *u) { return u->total; }
/* the caller may change the weights through the pointer: the bf16 copies go */
float *glad_unet_weights(glad_unet *u)
{
    glad_bf16_cache_clear(u->bc);
    glad_bf16_cache_invalidate(u->bt);   /* an optimiser's every step: the memory stays */
    return u->w;
}
float *glad_unet_grads(glad_unet *u) { return u->g; }
int glad_unet_param_count(const glad_unet *u) { return u->np; }
const glad_param *glad_unet_param(const glad_unet *u, int i) { return i >= 0 && i < u->np ? &u->p[i] : NULL; }
size_t glad_unet_arena_peak(const glad_unet *u) { return u->peak * sizeof(float); }

/* multiply-adds x 2 of one forward op (direct convolution count) */
static double op_flops(const tape_op *t)
{
    if (t->op == OP_CONV) {
        int Ho = (t->H + 2 * t->pad - t->k) / t->stride + 1, Wo = (t->W + 2 * t->pad - t->k) / t->stride + 1;
        return 2.0 * t->B * t->OC * Ho * Wo * t->C * t->k * t->k;
    }
    if (t->op == OP_LINEAR) return 2.0 * t->B * t->C * t->OC;
    if (t->op == OP_ATTN) return 4.0 * t->B * t->C * (double)t->T * t->T;
    return 0;
}

double glad_unet_forward_flops(const glad_unet *u)
{
    double f = 0;
    for (int i = 0; i < u->ntape; i++) f += op_flops(&u->tape[i]);
    return f;
}

void glad_unet_init(glad_unet *u, uint64_t seed)
{
    glad_bf16_cache_clear(u->bc);
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 12345;
    for (int i = 0; i < u->np; i++) {
        glad_param *q = &u->p[i];
        float *w = u->w + q->off;
        const char *nm = q->name;
        size_t L = strlen(nm);
        int is_bias = L > 5 && !strcmp(nm + L - 5, ".bias");
        int zero = strstr(nm, "proj_out.") || strstr(nm, "out_layers.3.") || !strncmp(nm, "out.2.", 6);
        int norm = strstr(nm, "in_layers.0.") || strstr(nm, "out_layers.0.") || strstr(nm, ".norm.") || !strncmp(nm, "out.0.", 6);
        if (zero) { memset(w, 0, q->n * sizeof(float)); continue; }
        if (norm) { for (size_t k = 0; k < q->n; k++) w[k] = is_bias ? 0.0f : 1.0f; continue; }
        /* fan_in of the weight this tensor belongs to */
        const glad_param *wp = is_bias ? q - 1 : q;
        size_t fan_in = wp->n / (size_t)wp->shape[0];
        double bound = 1.0 / sqrt((double)fan_in);
        for (size_t k = 0; k < q->n; k++) w[k] = (float)((glad_rng_splitmix64_uniform(&s) * 2 - 1) * bound);
    }
}

/* ------------------------------------------------------------------ graph */

static int new_node(glad_unet *u, size_t n)
{
    node *nn = glad_grow(u->nodes, &u->nodecap, u->nnodes, sizeof *nn, 256);
    if (!nn) return -1;
    u->nodes = nn;
    node *x = &u->nodes[u->nnodes];
    memset(x, 0, sizeof *x);
    x->n = n;
    x->prod = u->ntape;   /* the op pushed next */
    x->last = -1;
    return u->nnodes++;
}

/* records op with output y (a new node of n floats) and inputs a, b */
static tape_op *push(glad_unet *u, int op, size_t n, int a, int b)
{
    tape_op *nt = glad_grow(u->tape, &u->tapecap, u->ntape, sizeof *nt, 256);
    if (!nt) return NULL;
    u->tape = nt;
    int y = new_node(u, n);
    if (y < 0) return NULL;
    tape_op *t = &u->tape[u->ntape];
    memset(t, 0, sizeof *t);
    t->op = op;
    t->a = a; t->b = b; t->y = y;
    t->pw = t->pb = t->pre = t->x2 = t->e = t->r = -1;
    if (a >= 0) { u->nodes[a].last = u->ntape; u->nodes[a].uses++; }
    if (b >= 0) { u->nodes[b].last = u->ntape; u->nodes[b].uses++; }
    u->ntape++;
    return t;
}

#define P(i) (u->w + u->p[i].off)
#define G(i) (u->g + u->p[i].off)
#define ND(i) (&u->nodes[i])

static void need_ws(glad_unet *u, size_t n) { if (n > u->ws_need) u->ws_need = n; }

static int conv(glad_unet *u, int x, int pw, int B, int C, int H, int W, int OC, int k, int stride, int pad)
{
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    tape_op *t = push(u, OP_CONV, (size_t)B * OC * Ho * Wo, x, -1);
    if (!t) return -1;
    need_ws(u, glad_conv2d_workspace(C, H, W, OC, k, k, stride, pad));
    t->pw = pw; t->pb = pw + 1;
    t->B = B; t->C = C; t->H = H; t->W = W; t->OC = OC; t->k = k; t->stride = stride; t->pad = pad;
    return t->y;
}

/* gives the conv just pushed (whose output only the add it replaces would
 * read) the epilogue y = (conv + bias) + e[b,c] (e >= 0) or y = r + (conv +
 * bias) (r >= 0): glad_conv_epi, the same bits as an add op after it
 * without its pass over the tensor. Its backward passes dy on to r and
 * sums it over the pixels into e's gradient, as such an add's would. */
static void epilogue(glad_unet *u, int e, int r)
{
    tape_op *t = &u->tape[u->ntape - 1];
    t->e = e; t->r = r;
    int in[2] = {e, r};
    for (int k = 0; k < 2; k++)
        if (in[k] >= 0) { u->nodes[in[k]].last = u->ntape - 1; u->nodes[in[k]].uses++; }
}

/* GroupNorm (32 groups), fused with the SiLU that follows when silu */
static int gnorm(glad_unet *u, int x, int pw, int B, int C, int N, int silu)
{
    tape_op *t = push(u, silu ? OP_GNSILU : OP_GN, (size_t)B * C * N, x, -1);
    if (!t) return -1;
    t->pw = pw; t->pb = pw + 1; t->B = B; t->C = C; t->H = N; t->ns1 = (size_t)2 * B * 32;
    if (silu) ND(t->y)->recompute = 1;
    if ((size_t)2 * B * C > u->dws_need) u->dws_need = (size_t)2 * B * C;
    return t->y;
}

static int silu(glad_unet *u, int x)
{
    tape_op *t = push(u, OP_SILU, ND(x)->n, x, -1);
    return t ? t->y : -1;
}

static int linear(glad_unet *u, int x, int pw, int B, int I, int O)
{
    tape_op *t = push(u, OP_LINEAR, (size_t)B * O, x, -1);
    if (!t) return -1;
    t->pw = pw; t->pb = pw + 1; t->B = B; t->C = I; t->OC = O;
    return t->y;
}

static int resample(glad_unet *u, int x, int up, int BC, int H, int W)
{
    tape_op *t = push(u, up ? OP_UPSAMPLE : OP_AVGPOOL, up ? ND(x)->n * 4 : ND(x)->n / 4, x, -1);
    if (!t) return -1;
    t->C = BC; t->H = H; t->W = W;
    return t->y;
}

static int concat(glad_unet *u, int a, int b, int B, int Ca, int Cb, int N)
{
    tape_op *t = push(u, OP_CONCAT, ND(a)->n + ND(b)->n, a, b);
    if (!t) return -1;
    t->B = B; t->C = Ca; t->Cb = Cb; t->H = N;
    return t->y;
}

static int attention(glad_unet *u, int qkv, int B, int C, int T, int heads)
{
    tape_op *t = push(u, OP_ATTN, (size_t)B * C * T, qkv, -1);
    if (!t) return -1;
    t->B = B; t->C = C; t->T = T; t->heads = heads; t->ns1 = (size_t)B * heads * T * T;
    need_ws(u, (size_t)3 * T * T);   /* the backward's */
    return t->y;
}

static int dropout(glad_unet *u, int x, float p, uint64_t seed)
{
    if (u->gtrain != 1 || p <= 0) return x;   /* 2 = tape without dropout */
    tape_op *t = push(u, OP_DROPOUT, ND(x)->n, x, -1);
    if (!t) return -1;
    t->p = p; t->seed = seed;
    return t->y;
}

/* ------------------------------------------------------------------ blocks */

#define CHK(x) do { if ((x) < 0) return -1; } while (0)

static int res_forward(glad_unet *u, const block *bk, int x, int temb_silu, int B, int *H, int *W, uint64_t seed)
{
    int N = *H * *W;
    int h = gnorm(u, x, bk->gn1, B, bk->in, N, 1); CHK(h);
    int xs = x;
    if (bk->up || bk->down) {
        h = resample(u, h, bk->up, B * bk->in, *H, *W); CHK(h);
        xs = resample(u, x, bk->up, B * bk->in, *H, *W); CHK(xs);
        if (bk->up) { *H *= 2; *W *= 2; } else { *H /= 2; *W /= 2; }
        N = *H * *W;
    }
    /* the embedding add in conv1's epilogue (its input made first), the
     * residual add in the epilogue of the block's last conv */
    int e = linear(u, temb_silu, bk->emb, B, 4 * u->cfg.base, bk->out); CHK(e);
    h = conv(u, h, bk->conv1, B, bk->in, *H, *W, bk->out, 3, 1, 1); CHK(h);
    epilogue(u, e, -1);
    h = gnorm(u, h, bk->gn2, B, bk->out, N, 1); CHK(h);
    h = dropout(u, h, u->cfg.dropout, seed); CHK(h);
    h = conv(u, h, bk->conv2, B, bk->out, *H, *W, bk->out, 3, 1, 1); CHK(h);
    if (bk->skip < 0) { epilogue(u, -1, xs); return h; }
    xs = conv(u, xs, bk->skip, B, bk->in, *H, *W, bk->out, 1, 1, 0); CHK(xs);
    /* xs + h as h + xs: a float sum does not depend on the order of its two terms */
    epilogue(u, -1, h);
    return xs;
}

static int attn_forward(glad_unet *u, const block *bk, int x, int B, int H, int W)
{
    int T = H * W, C = bk->in;
    int h = gnorm(u, x, bk->norm, B, C, T, 0); CHK(h);
    int qkv = conv(u, h, bk->qkv, B, C, 1, T, 3 * C, 1, 1, 0); CHK(qkv);
    int a = attention(u, qkv, B, C, T, bk->heads); CHK(a);
    int p = conv(u, a, bk->proj, B, C, 1, T, C, 1, 1, 0); CHK(p);
    epilogue(u, -1, x);   /* x + p */
    return p;
}

/* Records the network for batch B (u->gB, u->gtrain set); encoder only when
 * u->gmode == 1, collecting the level ends in u->feat. Returns the output node. */
static int build(glad_unet *u)
{
    const glad_unet_config *c = &u->cfg;
    int B = u->gB, base = c->base, H = c->img_size, W = c->img_size, enc = u->gmode == 1;
    tape_op *t0 = push(u, OP_INPUT, (size_t)B * c->in_channels * H * W, -1, -1);
    if (!t0) return -1;
    int xin = t0->y;
    tape_op *t1 = push(u, OP_TEMB, (size_t)B * base, -1, -1);
    if (!t1) return -1;
    t1->B = B; t1->C = base;
    int te = t1->y;
    ND(te)->nograd = 1;   /* nothing learnable before it */
    int e = linear(u, te, u->t_emb1, B, base, 4 * base); CHK(e);
    e = silu(u, e); CHK(e);
    e = linear(u, e, u->t_emb2, B, 4 * base, 4 * base); CHK(e);
    int es = silu(u, e); CHK(es);   /* every ResBlock's embed_layers start with SiLU */
    int skips[GLAD_UNET_MAX_SKIPS], skc[GLAD_UNET_MAX_SKIPS], ns = 0, ch = (int)(c->mults[0] * base);
    int h = conv(u, xin, u->conv_in, B, c->in_channels, H, W, ch, 3, 1, 1); CHK(h);
    skips[ns] = h; skc[ns++] = ch;
    int bi = 0, per_level = c->num_res_blocks;
    u->nfeat = 0;
    for (int lv = 0; lv < c->nmults; lv++) {
        for (int r = 0; r < per_level; r++) {
            const block *bk = &u->blk[bi++];
            h = res_forward(u, bk, h, es, B, &H, &W, (uint64_t)bi * 7919); CHK(h);
            ch = bk->out;
            if (bi < u->ndown && u->blk[bi].kind == GLAD_UNET_BLOCK_ATTN) { h = attn_forward(u, &u->blk[bi++], h, B, H, W); CHK(h); }
            skips[ns] = h; skc[ns++] = ch;
        }
        if (enc) {
            int l = u->nfeat++;
            u->feat[l] = h; u->fc[l] = ch; u->fh[l] = H; u->fw[l] = W;
            ND(h)->keep = 1;
        }
        if (lv != c->nmults - 1) {
            bi++;
            h = res_forward(u, &u->blk[bi - 1], h, es, B, &H, &W, (uint64_t)bi * 7919); CHK(h);
            skips[ns] = h; skc[ns++] = ch;
        }
    }
    if (enc) return h;
    for (int m = 0; m < u->nmid; m++) {
        const block *bk = &u->blk[bi++];
        h = bk->kind == GLAD_UNET_BLOCK_RES ? res_forward(u, bk, h, es, B, &H, &W, (uint64_t)bi * 7919) : attn_forward(u, bk, h, B, H, W);
        CHK(h);
    }
    while (bi < u->nblk) {
        const block *bk = &u->blk[bi++];
        if (bk->kind == GLAD_UNET_BLOCK_RES && !bk->up) {
            ns--;
            h = concat(u, h, skips[ns], B, bk->in - skc[ns], skc[ns], H * W); CHK(h);
            h = res_forward(u, bk, h, es, B, &H, &W, (uint64_t)bi * 7919); CHK(h);
        } else if (bk->kind == GLAD_UNET_BLOCK_RES) {
            h = res_forward(u, bk, h, es, B, &H, &W, (uint64_t)bi * 7919); CHK(h);
        } else {
            h = attn_forward(u, bk, h, B, H, W); CHK(h);
        }
        ch = bk->out;
    }
    h = gnorm(u, h, u->out_gn, B, ch, H * W, 1); CHK(h);
    h = conv(u, h, u->out_conv, B, ch, H, W, c->in_channels, 3, 1, 1); CHK(h);
    ND(h)->keep = 1;
    return h;
}

/* A GroupNorm+SiLU read by one conv alone is applied while that conv copies
 * its input: the normalised tensor is never written. Run on the finished
 * tape, when every node's readers are known. */
static void fuse(glad_unet *u)
{
    for (int i = 0; i < u->ntape; i++) {
        tape_op *t = &u->tape[i];
        if (t->op != OP_CONV || ND(t->a)->uses != 1 || ND(t->a)->keep || !glad_conv2d_gnsilu_ok(t->k, t->k, t->stride, t->pad))
            continue;
        tape_op *g = &u->tape[ND(t->a)->prod];
        if (g->op != OP_GNSILU) continue;
        g->fused = 1;
        t->pre = ND(t->a)->prod;
        t->x2 = g->a;
        ND(t->a)->virt = 1;
        if (ND(g->a)->last < i) ND(g->a)->last = i;   /* read here now */
    }
}

/* ------------------------------------------------------------------ memory plan */

/* the op's backward reads its input a's data */
static int reads_input(int op) { return op == OP_CONV || op == OP_GN || op == OP_GNSILU || op == OP_SILU || op == OP_LINEAR || op == OP_ATTN; }

/* Replays the allocations and frees of a forward (and, when training, the
 * backward that follows) and records every offset. Lifetimes:
 *  - forward: an op's output and saved statistics are allocated before it
 *    runs; an input dies after its last forward consumer unless a backward
 *    reads it (kept until its last backward reader) or it is a graph output;
 *    a GroupNorm+SiLU output is never kept: its readers recompute it.
 *  - backward of op i: recomputed input and missing input gradients are
 *    allocated first; afterwards the recomputed input, the output's
 *    gradient and the saved statistics die. */
/* the backward, walked from the end, meets input x's first gradient-writing
 * op: its gradient is allocated there and that op creates it (*z set) */
static int first_grad(glad_unet *u, glad_memplan *m, int x, int *z)
{
    if (x < 0 || !ND(x)->has_g || ND(x)->goff != (size_t)-1) return 0;
    *z = 1;
    return glad_memplan_alloc(m, ND(x)->n, &ND(x)->goff);
}

static int plan(glad_unet *u)
{
    glad_memplan m;
    glad_memplan_init(&m);
    int train = u->gtrain != 0, rc = GLAD_ENOMEM;
    for (int i = 0; i < u->nnodes; i++) { u->nodes[i].need = 0; u->nodes[i].has_g = 0; }
    if (train) {
        u->nodes[u->out_node].has_g = 1;
        for (int i = u->ntape - 1; i >= 0; i--) {
            tape_op *t = &u->tape[i];
            if (!ND(t->y)->has_g) continue;
            int in[4] = {t->a, t->b, t->e, t->r};
            for (int k = 0; k < 4; k++)
                if (in[k] >= 0 && !ND(in[k])->nograd) ND(in[k])->has_g = 1;
            if (t->a >= 0 && reads_input(t->op) && !ND(t->a)->recompute) ND(t->a)->need++;
        }
    }
    for (int i = 0; i < u->ntape; i++) {
        tape_op *t = &u->tape[i];
        if (!ND(t->y)->virt && glad_memplan_alloc(&m, ND(t->y)->n, &ND(t->y)->off)) goto out;
        /* inference keeps no attention weights (the forward is given NULL) */
        size_t ns1 = !train && t->op == OP_ATTN ? 0 : t->ns1;
        if (ns1 && glad_memplan_alloc(&m, ns1, &t->s1)) goto out;
        if (!train && ns1 && !t->fused && glad_memplan_free(&m, t->s1, ns1)) goto out;
        /* a fused GroupNorm+SiLU's statistics are read by its conv */
        if (!train && t->pre >= 0 && glad_memplan_free(&m, u->tape[t->pre].s1, u->tape[t->pre].ns1)) goto out;
        int in[5] = {t->a, t->b, t->x2, t->e, t->r};
        for (int k = 0; k < 5; k++) {
            node *x = in[k] >= 0 ? ND(in[k]) : NULL;
            int dup = 0;   /* a node read twice dies once */
            for (int j = 0; j < k; j++) dup |= in[j] == in[k];
            if (!x || x->last != i || x->keep || x->need || x->virt || dup) continue;
            if (glad_memplan_free(&m, x->off, x->n)) goto out;
        }
        /* an output nobody reads (a dead branch) dies at once */
        if (ND(t->y)->last < 0 && !ND(t->y)->keep && !ND(t->y)->need && !ND(t->y)->virt &&
            glad_memplan_free(&m, ND(t->y)->off, ND(t->y)->n))
            goto out;
    }
    if (train) {
        for (int i = 0; i < u->nnodes; i++) u->nodes[i].goff = (size_t)-1;
        node *o = ND(u->out_node);
        if (glad_memplan_alloc(&m, o->n, &o->goff)) goto out;
        for (int i = u->ntape - 1; i >= 0; i--) {
            tape_op *t = &u->tape[i];
            node *y = ND(t->y);
            t->rec = t->za = t->zb = t->ze = t->zr = 0;
            if (!y->has_g) continue;
            /* (a conv of a fused GroupNorm+SiLU applies it again itself) */
            if (t->a >= 0 && reads_input(t->op) && ND(t->a)->recompute && t->pre < 0) {
                t->rec = 1;
                if (glad_memplan_alloc(&m, ND(t->a)->n, &t->rtmp)) goto out;
            }
            if (first_grad(u, &m, t->a, &t->za) || first_grad(u, &m, t->b, &t->zb) ||
                first_grad(u, &m, t->e, &t->ze) || first_grad(u, &m, t->r, &t->zr))
                goto out;
            if (t->rec && glad_memplan_free(&m, t->rtmp, ND(t->a)->n)) goto out;
            if (glad_memplan_free(&m, y->goff, y->n)) goto out;
            if (t->ns1 && glad_memplan_free(&m, t->s1, t->ns1)) goto out;
            if (t->a >= 0 && reads_input(t->op) && !ND(t->a)->recompute && --ND(t->a)->need == 0 && !ND(t->a)->keep &&
                glad_memplan_free(&m, ND(t->a)->off, ND(t->a)->n))
                goto out;
        }
    }
    if (m.top > u->mem_n) {
        size_t bytes;
        free(u->mem);
        u->mem = NULL;
        u->mem_n = 0;
        if (glad_mul_size(m.top, sizeof(float), &bytes) || bytes > GLAD_MAX_ALLOC) goto out;
        u->mem = aligned_alloc(64, bytes);
        u->mem_n = u->mem ? m.top : 0;
        if (!u->mem) goto out;
    }
    u->peak = m.top;
    if (u->ws_need > u->ws_n) {
        float *w = realloc(u->ws, u->ws_need * sizeof(float));
        if (!w) goto out;
        u->ws = w;
        u->ws_n = u->ws_need;
    }
    if (u->dws_need > u->dws_n) {
        double *w = realloc(u->dws, u->dws_need * sizeof(double));
        if (!w) goto out;
        u->dws = w;
        u->dws_n = u->dws_need;
    }
    rc = 0;
out:
    glad_memplan_release(&m);
    return rc;
}

/* the graph for (B, train, mode), rebuilt and replanned when any changes */
static int prepare(glad_unet *u, int B, int train, int mode)
{
    if (u->gvalid && u->gB == B && u->gtrain == train && u->gmode == mode) return 0;
    u->gvalid = 0;
    u->ntape = u->nnodes = 0;
    u->gB = B; u->gtrain = train; u->gmode = mode;
    u->out_node = build(u);
    if (u->out_node < 0) return GLAD_ENOMEM;
    fuse(u);
    GLAD_TRY(plan(u));
    u->gvalid = 1;
    return 0;
}

/* ------------------------------------------------------------------ execution */

#define D(i) (u->mem + u->nodes[i].off)
#define GR(i) (u->mem + u->nodes[i].goff)

/* the statistics and affine of conv t's fused GroupNorm+SiLU */
static glad_gnsilu fused_pre(glad_unet *u, const tape_op *t)
{
    const tape_op *g = &u->tape[t->pre];
    return (glad_gnsilu){u->mem + g->s1, u->mem + g->s1 + g->B * 32, P(g->pw), P(g->pb), 32};
}

/* full: a recomputation in the backward (a fused GroupNorm+SiLU writes its output) */
static void forward_op(glad_unet *u, const tape_op *t, float *y, const float *x, const float *tt, uint64_t seed, int full)
{
    const float *a = t->a >= 0 ? D(t->a) : NULL, *b = t->b >= 0 ? D(t->b) : NULL;
    float *s1 = u->mem + t->s1;
    size_t n = ND(t->y)->n;
    switch (t->op) {
    case OP_INPUT: memcpy(y, x, sizeof(float) * n); break;
    case OP_TEMB: glad_timestep_embedding(y, tt, t->B, t->C); break;
    case OP_CONV: {
        glad_conv_epi ep = {t->e >= 0 ? D(t->e) : NULL, t->r >= 0 ? D(t->r) : NULL};
        glad_gnsilu pre = t->pre >= 0 ? fused_pre(u, t) : (glad_gnsilu){0};
        glad_conv2d_forward_epi(y, t->pre >= 0 ? D(t->x2) : a, t->pre >= 0 ? &pre : NULL, t->e >= 0 || t->r >= 0 ? &ep : NULL, P(t->pw),
                                P(t->pb), t->B, t->C, t->H, t->W, t->OC, t->k, t->k, t->stride, t->pad, u->ws);
        break;
    }
    case OP_GN: glad_groupnorm_forward(y, s1, s1 + t->B * 32, a, P(t->pw), P(t->pb), t->B, t->C, t->H, 32, 1e-5f); break;
    case OP_GNSILU:
        glad_groupnorm_silu_forward(t->fused && !full ? NULL : y, s1, s1 + t->B * 32, a, P(t->pw), P(t->pb), t->B, t->C, t->H,
                                    32, 1e-5f);
        break;
    case OP_SILU: glad_silu_forward(y, a, n); break;
    case OP_LINEAR: glad_linear_forward(y, a, P(t->pw), P(t->pb), t->B, t->C, t->OC); break;
    case OP_AVGPOOL: glad_avgpool2_forward(y, a, t->C, t->H, t->W); break;
    case OP_UPSAMPLE: glad_upsample2_forward(y, a, t->C, t->H, t->W); break;
    case OP_CONCAT: glad_concat_forward(y, a, b, t->B, t->C, t->Cb, (size_t)t->H); break;
    case OP_ATTN: glad_attention_forward(y, u->gtrain ? s1 : NULL, a, t->B, t->C, t->T, t->heads, u->ws); break;
    case OP_DROPOUT: glad_dropout_forward(y, a, n, t->p, seed + t->seed); break;
    }
}

/* the bf16 weight cache of a pass in bf16, or NULL (f32, or no memory:
 * the kernels then convert at every use). Inference passes share u->bc
 * until glad_unet_weights clears it. A training pass (train 1 or 2) gets
 * u->bt invalidated: training weights change between steps through
 * pointers taken long before (an optimiser's), so a step's forward converts
 * every weight once and its backward reuses those (1x1: w and w^T;
 * Winograd: U and the input gradient's flipped U), and the next step's
 * forward converts again into the same memory (freeing and allocating it
 * every step cost more, in page faults, than the conversions saved); a
 * backward only follows its own forward (u->fwd_done). */
static glad_bf16_cache *pass_cache(glad_unet *u, int forward)
{
    if (u->gtrain && forward) glad_bf16_cache_invalidate(u->bt);   /* in f32 too: a bf16 backward may follow */
    if (glad_precision_get() != GLAD_PREC_BF16) return NULL;
    if (!u->gtrain) return u->bc || (u->bc = glad_bf16_cache_new()) ? u->bc : NULL;
    return u->bt || (u->bt = glad_bf16_cache_new()) ? u->bt : NULL;
}

static int run(glad_unet *u, const float *x, const float *t, uint64_t seed)
{
    glad_bf16_cache *c = pass_cache(u, 1), *prev = c ? glad_bf16_cache_use(c) : NULL;
    if (u->prof_on && u->prof_n != u->ntape) {
        /* a new graph: its own table (on failure the pass runs unprofiled) */
        free(u->prof_s); free(u->prof_calls); free(u->prof_bs); free(u->prof_bcalls);
        u->prof_s = calloc((size_t)u->ntape, sizeof(double));
        u->prof_calls = calloc((size_t)u->ntape, sizeof(int));
        u->prof_bs = calloc((size_t)u->ntape, sizeof(double));
        u->prof_bcalls = calloc((size_t)u->ntape, sizeof(int));
        u->prof_n = u->prof_s && u->prof_calls && u->prof_bs && u->prof_bcalls ? u->ntape : 0;
    }
    int prof = u->prof_on && u->prof_n == u->ntape;
    for (int i = 0; i < u->ntape; i++) {
        double t0 = prof ? omp_get_wtime() : 0;
        forward_op(u, &u->tape[i], D(u->tape[i].y), x, t, seed, 0);
        if (prof) { u->prof_s[i] += omp_get_wtime() - t0; u->prof_calls[i]++; }
    }
    if (c) glad_bf16_cache_use(prev);
    return 0;
}

void glad_unet_profile(glad_unet *u, int on)
{
    u->prof_on = on != 0;
    if (on && u->prof_n) {
        memset(u->prof_s, 0, sizeof(double) * (size_t)u->prof_n);
        memset(u->prof_calls, 0, sizeof(int) * (size_t)u->prof_n);
        memset(u->prof_bs, 0, sizeof(double) * (size_t)u->prof_n);
        memset(u->prof_bcalls, 0, sizeof(int) * (size_t)u->prof_n);
    }
}

int glad_unet_profile_rows(const glad_unet *u, glad_unet_prof *rows, int max)
{
    if (!u->gvalid || u->prof_n != u->ntape) return 0;
    int n = 0;
    for (int i = 0; i < u->ntape; i++) {
        const tape_op *t = &u->tape[i];
        if (!u->prof_calls[i] && !u->prof_bcalls[i]) continue;
        if (rows && n < max) {
            glad_unet_prof *r = &rows[n];
            static const char *const names[] = {"input", "time embedding", "conv", "groupnorm", "groupnorm+silu", "silu", "linear",
                                                "avgpool", "upsample", "concat", "attention", "dropout"};
            r->kind = names[t->op];
            /* a conv with an epilogue says which add it does */
            static const char *const convs[4][3] = {
                {"conv1x1", "conv1x1+emb", "conv1x1+add"},
                {"groupnorm+silu>conv3x3", "groupnorm+silu>conv3x3+emb", "groupnorm+silu>conv3x3+add"},
                {"conv3x3/2", "conv3x3/2+emb", "conv3x3/2+add"},
                {"conv3x3", "conv3x3+emb", "conv3x3+add"}};
            if (t->op == OP_CONV)
                r->kind = convs[t->k == 1 ? 0 : t->pre >= 0 ? 1 : t->stride == 2 ? 2 : 3][t->e >= 0 ? 1 : t->r >= 0 ? 2 : 0];
            if (t->op == OP_GNSILU && t->fused) r->kind = "groupnorm+silu (statistics)";
            r->B = t->B; r->C = t->C; r->OC = t->OC;
            /* the tape keeps H*W in H for GroupNorm, elementwise and embedding ops */
            r->H = t->H; r->W = t->W ? t->W : 1;
            if (t->op == OP_ATTN) { r->H = t->T; r->W = 1; }
            r->seconds = u->prof_s[i];
            r->flops = op_flops(t) * u->prof_calls[i];
            r->calls = u->prof_calls[i];
            r->back_seconds = u->prof_bs[i];
            r->back_calls = u->prof_bcalls[i];
        }
        n++;
    }
    return n;
}

int glad_unet_forward(glad_unet *u, float *eps, const float *x, const float *t, int B, int train, uint64_t seed)
{
    if (B < 1) return GLAD_EINVAL;
    u->fwd_done = 0;
    u->seed = seed;
    GLAD_TRY(prepare(u, B, train, 0));
    run(u, x, t, seed);
    memcpy(eps, D(u->out_node), sizeof(float) * ND(u->out_node)->n);
    u->fwd_done = train != 0;
    return 0;
}

int glad_unet_encode(glad_unet *u, const float *x, const float *t, int B, float **feats, int *C, int *H, int *W)
{
    if (B < 1) return GLAD_EINVAL;
    u->fwd_done = 0;
    GLAD_TRY(prepare(u, B, 0, 1));
    run(u, x, t, 0);
    for (int l = 0; l < u->nfeat; l++) { feats[l] = D(u->feat[l]); C[l] = u->fc[l]; H[l] = u->fh[l]; W[l] = u->fw[l]; }
    return u->nfeat;
}

/* p[0..n) = 0 by all threads (a serial memset leaves the others waiting) */
static void zero(float *p, size_t n)
{
    size_t nc = (n + 65535) / 65536;
    // chunks are disjoint
    #pragma omp parallel for schedule(static) if (nc > 1)
    for (size_t c = 0; c < nc; c++) memset(p + c * 65536, 0, sizeof(float) * (c + 1 < nc ? 65536 : n - c * 65536));
}

void glad_unet_zero_grad(glad_unet *u) { zero(u->g, u->total); }

static int backward(glad_unet *u, const float *deps, float *dx);

/* the backward with the bf16 weights its forward converted (pass_cache) */
int glad_unet_backward(glad_unet *u, const float *deps, float *dx)
{
    if (!u->fwd_done || !u->gvalid || !u->gtrain) return GLAD_EINVAL;
    glad_bf16_cache *c = pass_cache(u, 0), *prev = c ? glad_bf16_cache_use(c) : NULL;
    int rc = backward(u, deps, dx);
    if (c) glad_bf16_cache_use(prev);
    return rc;
}

/* the gradient of a conv epilogue's residual: gr = dy (set: this op creates it) or += dy */
static void epi_res_grad(float *gr, const float *gy, size_t n, int set)
{
    // elementwise
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t k = 0; k < n; k++) gr[k] = set ? gy[k] : gr[k] + gy[k];
}

/* of its embedding: ge[b,c] += the sum of dy's row (b,c) of N pixels (in double, in order) */
static void epi_emb_grad(float *ge, const float *gy, int B, int C, size_t N)
{
    // (batch, channel) rows are independent
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * C * N > 65536)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const float *r = gy + ((size_t)b * C + c) * N;
            double s = 0;
            for (size_t k = 0; k < N; k++) s += r[k];
            ge[(size_t)b * C + c] += (float)s;
        }
}

static int backward(glad_unet *u, const float *deps, float *dx)
{
    u->fwd_done = 0;   /* gradients overwrite the forward's memory */
    memcpy(GR(u->out_node), deps, sizeof(float) * ND(u->out_node)->n);
    int prof = u->prof_on && u->prof_n == u->ntape;
    for (int i = u->ntape - 1; i >= 0; i--) {
        tape_op *t = &u->tape[i];
        if (!ND(t->y)->has_g) continue;
        double t0 = prof ? omp_get_wtime() : 0;
        /* a gradient this op creates starts at zero, unless the op writes it
         * whole: a conv's or a GroupNorm+SiLU's input gradient (GLAD_DX_SET),
         * a conv epilogue's residual gradient (a copy) */
        float *cga = t->op == OP_CONV && t->a >= 0 && ND(t->a)->has_g && !(t->a == u->tape[0].y && !dx) ? GR(t->a) : NULL;
        int wset = cga || (t->op == OP_GNSILU && ND(t->a)->has_g);
        if (t->za && !wset) zero(GR(t->a), ND(t->a)->n);
        if (t->zb) zero(GR(t->b), ND(t->b)->n);
        if (t->ze) zero(GR(t->e), ND(t->e)->n);
        if (t->r >= 0 && ND(t->r)->has_g) epi_res_grad(GR(t->r), GR(t->y), ND(t->y)->n, t->zr);
        if (t->e >= 0 && ND(t->e)->has_g) epi_emb_grad(GR(t->e), GR(t->y), t->B, t->OC, ND(t->y)->n / ((size_t)t->B * t->OC));
        const float *a = t->a >= 0 ? D(t->a) : NULL;
        if (t->rec) {
            /* rebuild the GroupNorm+SiLU output from its input (alive: its own backward comes later) */
            float *r = u->mem + t->rtmp;
            const tape_op *pt = &u->tape[ND(t->a)->prod];
            forward_op(u, pt, r, NULL, NULL, 0, 1);
            a = r;
        }
        float *ga = t->a >= 0 && ND(t->a)->has_g ? GR(t->a) : NULL, *gb = t->b >= 0 && ND(t->b)->has_g ? GR(t->b) : NULL;
        const float *gy = GR(t->y);
        float *s1 = u->mem + t->s1;
        size_t n = ND(t->y)->n;
        switch (t->op) {
        case OP_INPUT:
            if (dx) for (size_t k = 0; k < n; k++) dx[k] += gy[k];
            break;
        case OP_TEMB: break;
        case OP_CONV:
            if (t->pre >= 0) {   /* the fused GroupNorm+SiLU is applied again as the conv copies its input */
                glad_gnsilu pre = fused_pre(u, t);
                glad_conv2d_backward_gnsilu(cga, G(t->pw), G(t->pb), gy, D(t->x2), &pre, P(t->pw), t->B, t->C, t->H, t->W, t->OC,
                                            u->ws, t->za ? GLAD_DX_SET : GLAD_DX_ADD);
            } else
                glad_conv2d_backward(cga, G(t->pw), G(t->pb), gy, a, P(t->pw), t->B, t->C, t->H, t->W, t->OC, t->k, t->k, t->stride,
                                     t->pad, u->ws, t->za ? GLAD_DX_SET : GLAD_DX_ADD);
            break;
        case OP_GN:
            glad_groupnorm_backward(ga, G(t->pw), G(t->pb), gy, a, s1, s1 + t->B * 32, P(t->pw), t->B, t->C, t->H, 32);
            break;
        case OP_GNSILU:
            glad_groupnorm_silu_backward(ga, G(t->pw), G(t->pb), gy, a, s1, s1 + t->B * 32, P(t->pw), P(t->pb), t->B, t->C,
                                         t->H, 32, u->dws, t->za ? GLAD_DX_SET : GLAD_DX_ADD);
            break;
        case OP_SILU: glad_silu_backward(ga, gy, a, n); break;
        case OP_LINEAR: glad_linear_backward(ga, G(t->pw), G(t->pb), gy, a, P(t->pw), t->B, t->C, t->OC); break;
        case OP_AVGPOOL: glad_avgpool2_backward(ga, gy, t->C, t->H, t->W); break;
        case OP_UPSAMPLE: glad_upsample2_backward(ga, gy, t->C, t->H, t->W); break;
        case OP_CONCAT: glad_concat_backward(ga, gb, gy, t->B, t->C, t->Cb, (size_t)t->H); break;
        case OP_ATTN: glad_attention_backward(ga, gy, a, s1, t->B, t->C, t->T, t->heads, u->ws); break;
        case OP_DROPOUT: glad_dropout_backward(ga, gy, n, t->p, u->seed + t->seed); break;
        }
        if (prof) { u->prof_bs[i] += omp_get_wtime() - t0; u->prof_bcalls[i]++; }
    }
    return 0;
}

/* ------------------------------------------------------------------ files */

int glad_unet_load_st(glad_unet **out, const glad_st *st, const char *path)
{
    const char *cj = glad_st_meta(st, "config");
    glad_unet_config c;
    if (!cj || glad_unet_config_parse(&c, cj)) return glad_fail(GLAD_EFORMAT, "%s: no valid UNet config in __metadata__", path);
    if (glad_unet_config_check(&c)) {
        char why[512];
        snprintf(why, sizeof why, "%s", glad_error_detail());
        return glad_fail(GLAD_EFORMAT, "%s: config not buildable: %s", path, why);
    }
    glad_unet *u;
    int rc = unet_layout(&u, &c);
    if (rc) return glad_fail(rc, "%s: %s", path, glad_strerror(rc));
    /* every tensor present with its shape before the weights are allocated:
     * the file then holds (and has been mapped with) all the bytes asked for */
    for (int i = 0; i < u->np && !rc; i++) {
        const glad_param *q = &u->p[i];
        const glad_st_entry *e = glad_st_find(st, q->name);
        if (!e) { rc = glad_fail(GLAD_ENOTFOUND, "%s: tensor '%s' missing", path, q->name); break; }
        size_t n = 1;
        for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
        if (n != q->n || e->dtype != GLAD_DT_F32) { rc = glad_fail(GLAD_ESHAPE, "%s: tensor '%s' has the wrong shape or dtype", path, q->name); break; }
    }
    if (!rc) rc = unet_alloc(u);
    for (int i = 0; i < u->np && !rc; i++) {
        const glad_param *q = &u->p[i];
        const glad_st_entry *e = glad_st_find(st, q->name);
        size_t n = q->n;
        float *w = u->w + q->off;
        memcpy(w, glad_st_data(st, e), n * sizeof(float));
        for (size_t k = 0; k < n; k++)
            if (!isfinite(w[k])) { rc = glad_fail(GLAD_ENAN, "%s: tensor '%s' has NaN or infinity (element %zu)", path, q->name, k); break; }
    }
    if (rc) { glad_unet_free(u); return rc; }
    *out = u;
    return 0;
}

int glad_unet_file_open(glad_st **st, const char *path)
{
    struct stat sb;
    if (stat(path, &sb)) return glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return glad_fail(GLAD_EIO, "%s: %s", path, strerror(EISDIR));
    errno = 0;
    int rc = glad_st_open(st, path);
    if (rc) return glad_fail(rc, "%s: %s", path, rc == GLAD_EIO && errno ? strerror(errno) : glad_strerror(rc));
    return 0;
}

int glad_unet_load(glad_unet **out, const char *path)
{
    glad_st *st;
    GLAD_TRY(glad_unet_file_open(&st, path));
    int rc = glad_unet_load_st(out, st, path);
    glad_st_close(st);
    return rc;
}

int glad_unet_save(const glad_unet *u, const char *path, const float *weights, int nextra, const char *const *extra_names,
                   const glad_tensor *const *extra, int nmeta, const char *const *mk, const char *const *mv)
{
    int n = u->np + nextra;
    const char **names = malloc(sizeof(char *) * (size_t)n);
    glad_tensor *ts = calloc((size_t)u->np, sizeof *ts);
    const glad_tensor **tp = malloc(sizeof(glad_tensor *) * (size_t)n);
    const char **k = malloc(sizeof(char *) * (size_t)(nmeta + 1)), **v = malloc(sizeof(char *) * (size_t)(nmeta + 1));
    char cfg[1024];
    int rc = GLAD_ENOMEM;
    if (!names || !ts || !tp || !k || !v) goto out;
    for (int i = 0; i < u->np; i++) {
        const glad_param *q = &u->p[i];
        ts[i].dtype = GLAD_DT_F32;
        ts[i].ndim = q->ndim;
        memcpy(ts[i].shape, q->shape, sizeof q->shape);
        ts[i].data = (void *)(weights ? weights : u->w) + 0;
        ts[i].data = (float *)ts[i].data + q->off;
        names[i] = q->name;
        tp[i] = &ts[i];
    }
    for (int i = 0; i < nextra; i++) { names[u->np + i] = extra_names[i]; tp[u->np + i] = extra[i]; }
    glad_unet_config_json(&u->cfg, cfg, sizeof cfg);
    k[0] = "config"; v[0] = cfg;
    for (int i = 0; i < nmeta; i++) { k[i + 1] = mk[i]; v[i + 1] = mv[i]; }
    rc = glad_st_save(path, n, names, tp, nmeta + 1, k, v);
out:
    free(names); free(ts); free(tp); free(k); free(v);
    return rc;
}
