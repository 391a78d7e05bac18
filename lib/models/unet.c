/* unet.c - the guided-diffusion UNet (unet.h). The forward pass records each
 * primitive op on a tape (inputs, output, parameters, saved statistics); the
 * backward pass replays the tape in reverse with the lib/nn kernels. Tensor
 * data and gradients live in the model's arena. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"
#include "models/unet.h"
#include "safetensors.h"

typedef struct { float *d, *g; size_t n; } node;

enum { OP_CONV, OP_GN, OP_SILU, OP_LINEAR, OP_ADD, OP_ADDEMB, OP_AVGPOOL, OP_UPSAMPLE, OP_CONCAT, OP_ATTN, OP_DROPOUT };

typedef struct {
    int op;
    node *a, *b, *y;
    int pw, pb;              /* parameter indices (-1: none) */
    int B, C, H, W, OC, k, stride, pad, Cb, T, heads;
    float p;
    uint64_t seed;
    float *s1, *s2;          /* saved: GN mean/rstd, attention weights */
} tape_op;

/* parameters of one block, by index into the param table */
typedef struct {
    int kind;                /* 0 conv_in, 1 res, 2 attn, 3 out */
    int in, out, up, down, heads;
    int gn1, conv1, emb, gn2, conv2, skip;      /* res */
    int norm, qkv, proj;                        /* attn */
} block;

struct glad_unet {
    glad_unet_config cfg;
    int np, npcap;
    glad_param *p;
    size_t total;
    float *w, *g;
    int t_emb1, t_emb2;
    block *blk;
    int nblk, nblkcap;
    int conv_in, out_gn, out_conv;
    int ndown, nmid, nup;    /* block index ranges: down [0,ndown), middle, up */
    glad_arena arena;
    tape_op *tape;
    int ntape, tapecap;
    int training;
    float *ws;
    size_t ws_n;
    node *out_node;
    int Bcur;
};

/* ------------------------------------------------------------ construction */

static int add_param(glad_unet *u, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    if (u->np == u->npcap) {
        int cap = u->npcap ? u->npcap * 2 : 128;
        glad_param *np = realloc(u->p, sizeof *np * (size_t)cap);
        if (!np) return -1;
        u->p = np;
        u->npcap = cap;
    }
    glad_param *q = &u->p[u->np];
    memset(q, 0, sizeof *q);
    q->name = strdup(name);
    q->ndim = ndim;
    int64_t s[4] = {d0, d1, d2, d3};
    q->n = 1;
    for (int i = 0; i < ndim; i++) { q->shape[i] = s[i]; q->n *= (size_t)s[i]; }
    q->off = u->total;
    u->total += q->n;
    return q->name ? u->np++ : -1;
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
    if (u->nblk == u->nblkcap) {
        int cap = u->nblkcap ? u->nblkcap * 2 : 32;
        block *nb = realloc(u->blk, sizeof *nb * (size_t)cap);
        if (!nb) return NULL;
        u->blk = nb;
        u->nblkcap = cap;
    }
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
    b->kind = 1; b->in = in; b->out = out; b->up = up; b->down = down;
    snprintf(n, sizeof n, "%s.in_layers.0", pfx); b->gn1 = add_norm(u, n, in);
    snprintf(n, sizeof n, "%s.in_layers.2", pfx); b->conv1 = add_conv(u, n, in, out, 3, 0);
    snprintf(n, sizeof n, "%s.embed_layers.1.weight", pfx); b->emb = add_param(u, n, 2, out, emb, 0, 0);
    snprintf(n, sizeof n, "%s.embed_layers.1.bias", pfx); add_param(u, n, 1, out, 0, 0, 0);
    snprintf(n, sizeof n, "%s.out_layers.0", pfx); b->gn2 = add_norm(u, n, out);
    snprintf(n, sizeof n, "%s.out_layers.3", pfx); b->conv2 = add_conv(u, n, out, out, 3, 0);
    if (in != out) { snprintf(n, sizeof n, "%s.skip_connection", pfx); b->skip = add_conv(u, n, in, out, 1, 0); }
    return 0;
}

static int attn_block(glad_unet *u, const char *pfx, int ch)
{
    block *b = new_block(u);
    if (!b) return -1;
    char n[256];
    b->kind = 2; b->in = b->out = ch; b->heads = u->cfg.heads;
    snprintf(n, sizeof n, "%s.norm", pfx); b->norm = add_norm(u, n, ch);
    snprintf(n, sizeof n, "%s.to_qkv", pfx); b->qkv = add_conv(u, n, ch, 3 * ch, 1, 1);
    snprintf(n, sizeof n, "%s.proj_out", pfx); b->proj = add_conv(u, n, ch, ch, 1, 1);
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

int glad_unet_config_parse(glad_unet_config *c, const char *js)
{
    glad_json *j;
    GLAD_TRY(glad_json_parse(js, strlen(js), &j));
    memset(c, 0, sizeof *c);
    int rc = GLAD_EFORMAT;
    c->img_size = (int)glad_json_num(glad_json_get(j, "img_size"), 0);
    c->base = (int)glad_json_num(glad_json_get(j, "base_channels"), 0);
    c->num_res_blocks = (int)glad_json_num(glad_json_get(j, "num_res_blocks"), 2);
    c->heads = (int)glad_json_num(glad_json_get(j, "n_heads"), 1);
    c->in_channels = (int)glad_json_num(glad_json_get(j, "in_channels"), 3);
    c->dropout = (float)glad_json_num(glad_json_get(j, "dropout"), 0);
    const glad_json *m = glad_json_get(j, "channel_mults");
    if (!m || m->type != GLAD_JSON_ARR || m->n < 1 || m->n > GLAD_UNET_MAX_LEVELS) goto out;
    c->nmults = m->n;
    for (int i = 0; i < m->n; i++) c->mults[i] = (float)glad_json_num(&m->items[i], 0);
    const glad_json *a = glad_json_get(j, "attention_resolutions");
    if (a && a->type == GLAD_JSON_STR) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", a->str);
        for (char *s = strtok(buf, ","); s && c->nattn < GLAD_UNET_MAX_LEVELS; s = strtok(NULL, ","))
            if (atoi(s) > 0) c->attn_res[c->nattn++] = atoi(s);
    } else if (a && a->type == GLAD_JSON_ARR)
        for (int i = 0; i < a->n && c->nattn < GLAD_UNET_MAX_LEVELS; i++) c->attn_res[c->nattn++] = (int)glad_json_num(&a->items[i], 0);
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

int glad_unet_create(glad_unet **out, const glad_unet_config *cfg)
{
    glad_unet *u = calloc(1, sizeof *u);
    if (!u) return GLAD_ENOMEM;
    u->cfg = *cfg;
    const glad_unet_config *c = &u->cfg;
    int base = c->base, nres = c->num_res_blocks;
    /* every channel count must be a multiple of 32 (GroupNorm) and of heads */
    for (int i = 0; i < c->nmults; i++) {
        int ch = (int)(c->mults[i] * base);
        if (ch < 32 || ch % 32 || ch % c->heads) { free(u); return GLAD_EINVAL; }
    }
    if (c->img_size % (1 << (c->nmults - 1))) { free(u); return GLAD_EINVAL; }
    char n[256];
    add_param(u, "time_embedding.1.weight", 2, 4 * base, base, 0, 0); u->t_emb1 = 0;
    add_param(u, "time_embedding.1.bias", 1, 4 * base, 0, 0, 0);
    u->t_emb2 = add_param(u, "time_embedding.3.weight", 2, 4 * base, 4 * base, 0, 0);
    add_param(u, "time_embedding.3.bias", 1, 4 * base, 0, 0, 0);
    int ch = (int)(c->mults[0] * base), ds = 1, k = 1;
    u->conv_in = add_conv(u, "down.0.0", c->in_channels, ch, 3, 0);
    int skips[64], ns = 0;
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
    u->w = calloc(u->total, sizeof(float));
    u->g = calloc(u->total, sizeof(float));
    if (!u->w || !u->g || u->np == 0) { glad_unet_free(u); return GLAD_ENOMEM; }
    for (int i = 0; i < u->np; i++)
        if (!u->p[i].name) { glad_unet_free(u); return GLAD_ENOMEM; }
    glad_arena_init(&u->arena, 0);
    *out = u;
    return 0;
}

void glad_unet_free(glad_unet *u)
{
    if (!u) return;
    for (int i = 0; i < u->np; i++) free(u->p[i].name);
    free(u->p); free(u->w); free(u->g); free(u->blk); free(u->tape); free(u->ws);
    glad_arena_free(&u->arena);
    free(u);
}

const glad_unet_config *glad_unet_cfg(const glad_unet *u) { return &u->cfg; }
size_t glad_unet_nparams(const glad_unet *u) { return u->total; }
float *glad_unet_weights(glad_unet *u) { return u->w; }
float *glad_unet_grads(glad_unet *u) { return u->g; }
int glad_unet_param_count(const glad_unet *u) { return u->np; }
const glad_param *glad_unet_param(const glad_unet *u, int i) { return i >= 0 && i < u->np ? &u->p[i] : NULL; }
size_t glad_unet_arena_peak(const glad_unet *u) { return u->arena.peak_bytes; }

double glad_unet_forward_flops(const glad_unet *u)
{
    double f = 0;
    for (int i = 0; i < u->ntape; i++) {
        const tape_op *t = &u->tape[i];
        if (t->op == OP_CONV) {
            int Ho = (t->H + 2 * t->pad - t->k) / t->stride + 1, Wo = (t->W + 2 * t->pad - t->k) / t->stride + 1;
            f += 2.0 * t->B * t->OC * Ho * Wo * t->C * t->k * t->k;
        } else if (t->op == OP_LINEAR) f += 2.0 * t->B * t->C * t->OC;
        else if (t->op == OP_ATTN) f += 4.0 * t->B * t->C * (double)t->T * t->T;
    }
    return f;
}
void glad_unet_zero_grad(glad_unet *u) { memset(u->g, 0, sizeof(float) * u->total); }

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void glad_unet_init(glad_unet *u, uint64_t seed)
{
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
        for (size_t k = 0; k < q->n; k++) w[k] = (float)((((splitmix(&s) >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1) * bound);
    }
}

/* ------------------------------------------------------------------ tape */

static node *new_node(glad_unet *u, size_t n)
{
    node *x = (node *)glad_arena_alloc(&u->arena, (sizeof(node) + sizeof(float) - 1) / sizeof(float));
    if (!x) return NULL;
    x->d = glad_arena_alloc(&u->arena, n);
    x->g = NULL;
    x->n = n;
    return x->d ? x : NULL;
}

static tape_op *push(glad_unet *u, int op)
{
    if (!u->training) {
        static __thread tape_op scratch;   /* inference: nothing is recorded */
        memset(&scratch, 0, sizeof scratch);
        scratch.op = op;
        return &scratch;
    }
    if (u->ntape == u->tapecap) {
        int cap = u->tapecap ? u->tapecap * 2 : 256;
        tape_op *nt = realloc(u->tape, sizeof *nt * (size_t)cap);
        if (!nt) return NULL;
        u->tape = nt;
        u->tapecap = cap;
    }
    tape_op *t = &u->tape[u->ntape++];
    memset(t, 0, sizeof *t);
    t->op = op;
    t->pw = t->pb = -1;
    return t;
}

#define P(i) (u->w + u->p[i].off)
#define G(i) (u->g + u->p[i].off)

static int ensure_ws(glad_unet *u, size_t n)
{
    if (n <= u->ws_n) return 0;
    float *w = realloc(u->ws, n * sizeof(float));
    if (!w) return GLAD_ENOMEM;
    u->ws = w;
    u->ws_n = n;
    return 0;
}

static node *conv(glad_unet *u, node *x, int pw, int B, int C, int H, int W, int OC, int k, int stride, int pad)
{
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    node *y = new_node(u, (size_t)B * OC * Ho * Wo);
    tape_op *t = push(u, OP_CONV);
    if (!y || !t || ensure_ws(u, glad_conv2d_workspace(C, H, W, k, k, stride, pad))) return NULL;
    glad_conv2d_forward(y->d, x->d, P(pw), P(pw + 1), B, C, H, W, OC, k, k, stride, pad, u->ws);
    t->a = x; t->y = y; t->pw = pw; t->pb = pw + 1;
    t->B = B; t->C = C; t->H = H; t->W = W; t->OC = OC; t->k = k; t->stride = stride; t->pad = pad;
    return y;
}

static node *gnorm(glad_unet *u, node *x, int pw, int B, int C, int N)
{
    node *y = new_node(u, (size_t)B * C * N);
    tape_op *t = push(u, OP_GN);
    float *st = glad_arena_alloc(&u->arena, (size_t)2 * B * 32);
    if (!y || !t || !st) return NULL;
    glad_groupnorm_forward(y->d, st, st + B * 32, x->d, P(pw), P(pw + 1), B, C, N, 32, 1e-5f);
    t->a = x; t->y = y; t->pw = pw; t->pb = pw + 1; t->B = B; t->C = C; t->H = N; t->s1 = st; t->s2 = st + B * 32;
    return y;
}

static node *silu(glad_unet *u, node *x)
{
    node *y = new_node(u, x->n);
    tape_op *t = push(u, OP_SILU);
    if (!y || !t) return NULL;
    glad_silu_forward(y->d, x->d, x->n);
    t->a = x; t->y = y;
    return y;
}

static node *linear(glad_unet *u, node *x, int pw, int B, int I, int O)
{
    node *y = new_node(u, (size_t)B * O);
    tape_op *t = push(u, OP_LINEAR);
    if (!y || !t) return NULL;
    glad_linear_forward(y->d, x->d, P(pw), P(pw + 1), B, I, O);
    t->a = x; t->y = y; t->pw = pw; t->pb = pw + 1; t->B = B; t->C = I; t->OC = O;
    return y;
}

static node *add(glad_unet *u, node *a, node *b)
{
    node *y = new_node(u, a->n);
    tape_op *t = push(u, OP_ADD);
    if (!y || !t) return NULL;
    for (size_t i = 0; i < a->n; i++) y->d[i] = a->d[i] + b->d[i];
    t->a = a; t->b = b; t->y = y;
    return y;
}

/* y = h + e[b,c] broadcast over N */
static node *addemb(glad_unet *u, node *h, node *e, int B, int C, int N)
{
    node *y = new_node(u, h->n);
    tape_op *t = push(u, OP_ADDEMB);
    if (!y || !t) return NULL;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float v = e->d[(size_t)b * C + c];
            const float *hi = h->d + ((size_t)b * C + c) * N;
            float *o = y->d + ((size_t)b * C + c) * N;
            for (int i = 0; i < N; i++) o[i] = hi[i] + v;
        }
    t->a = h; t->b = e; t->y = y; t->B = B; t->C = C; t->H = N;
    return y;
}

static node *resample(glad_unet *u, node *x, int up, int BC, int H, int W)
{
    node *y = new_node(u, up ? x->n * 4 : x->n / 4);
    tape_op *t = push(u, up ? OP_UPSAMPLE : OP_AVGPOOL);
    if (!y || !t) return NULL;
    if (up) glad_upsample2_forward(y->d, x->d, BC, H, W);
    else glad_avgpool2_forward(y->d, x->d, BC, H, W);
    t->a = x; t->y = y; t->C = BC; t->H = H; t->W = W;
    return y;
}

static node *concat(glad_unet *u, node *a, node *b, int B, int Ca, int Cb, int N)
{
    node *y = new_node(u, a->n + b->n);
    tape_op *t = push(u, OP_CONCAT);
    if (!y || !t) return NULL;
    glad_concat_forward(y->d, a->d, b->d, B, Ca, Cb, (size_t)N);
    t->a = a; t->b = b; t->y = y; t->B = B; t->C = Ca; t->Cb = Cb; t->H = N;
    return y;
}

static node *attention(glad_unet *u, node *qkv, int B, int C, int T, int heads)
{
    node *y = new_node(u, (size_t)B * C * T);
    tape_op *t = push(u, OP_ATTN);
    float *att = glad_arena_alloc(&u->arena, (size_t)B * heads * T * T);
    if (!y || !t || !att) return NULL;
    glad_attention_forward(y->d, att, qkv->d, B, C, T, heads);
    t->a = qkv; t->y = y; t->B = B; t->C = C; t->T = T; t->heads = heads; t->s1 = att;
    return y;
}

static node *dropout(glad_unet *u, node *x, float p, uint64_t seed)
{
    if (u->training != 1 || p <= 0) return x;   /* 2 = tape without dropout */
    node *y = new_node(u, x->n);
    tape_op *t = push(u, OP_DROPOUT);
    if (!y || !t) return NULL;
    glad_dropout_forward(y->d, x->d, x->n, p, seed);
    t->a = x; t->y = y; t->p = p; t->seed = seed;
    return y;
}

/* ------------------------------------------------------------------ blocks */

#define CHK(x) do { if (!(x)) return NULL; } while (0)

static node *res_forward(glad_unet *u, const block *bk, node *x, node *temb_silu, int B, int *H, int *W, uint64_t seed)
{
    int N = *H * *W;
    node *h = gnorm(u, x, bk->gn1, B, bk->in, N); CHK(h);
    h = silu(u, h); CHK(h);
    node *xs = x;
    if (bk->up || bk->down) {
        h = resample(u, h, bk->up, B * bk->in, *H, *W); CHK(h);
        xs = resample(u, x, bk->up, B * bk->in, *H, *W); CHK(xs);
        if (bk->up) { *H *= 2; *W *= 2; } else { *H /= 2; *W /= 2; }
        N = *H * *W;
    }
    h = conv(u, h, bk->conv1, B, bk->in, *H, *W, bk->out, 3, 1, 1); CHK(h);
    node *e = linear(u, temb_silu, bk->emb, B, 4 * u->cfg.base, bk->out); CHK(e);
    h = addemb(u, h, e, B, bk->out, N); CHK(h);
    h = gnorm(u, h, bk->gn2, B, bk->out, N); CHK(h);
    h = silu(u, h); CHK(h);
    h = dropout(u, h, u->cfg.dropout, seed); CHK(h);
    h = conv(u, h, bk->conv2, B, bk->out, *H, *W, bk->out, 3, 1, 1); CHK(h);
    if (bk->skip >= 0) { xs = conv(u, xs, bk->skip, B, bk->in, *H, *W, bk->out, 1, 1, 0); CHK(xs); }
    return add(u, xs, h);
}

static node *attn_forward(glad_unet *u, const block *bk, node *x, int B, int H, int W)
{
    int T = H * W, C = bk->in;
    node *h = gnorm(u, x, bk->norm, B, C, T); CHK(h);
    node *qkv = conv(u, h, bk->qkv, B, C, 1, T, 3 * C, 1, 1, 0); CHK(qkv);
    node *a = attention(u, qkv, B, C, T, bk->heads); CHK(a);
    node *p = conv(u, a, bk->proj, B, C, 1, T, C, 1, 1, 0); CHK(p);
    return add(u, x, p);
}

/* Runs the network. stop_levels: only the encoder, collecting the level ends. */
static node *run(glad_unet *u, const float *x, const float *t, int B, uint64_t seed, float **feats, int *fc, int *fh, int *fw,
                 int *nfeat)
{
    const glad_unet_config *c = &u->cfg;
    int base = c->base, H = c->img_size, W = c->img_size;
    node *xin = new_node(u, (size_t)B * c->in_channels * H * W); CHK(xin);
    memcpy(xin->d, x, sizeof(float) * xin->n);
    node *te = new_node(u, (size_t)B * base); CHK(te);
    glad_timestep_embedding(te->d, t, B, base);
    node *e = linear(u, te, u->t_emb1, B, base, 4 * base); CHK(e);
    e = silu(u, e); CHK(e);
    e = linear(u, e, u->t_emb2, B, 4 * base, 4 * base); CHK(e);
    node *es = silu(u, e); CHK(es);   /* every ResBlock's embed_layers start with SiLU */
    node *skips[64];
    int skc[64], ns = 0, ch = (int)(c->mults[0] * base);
    node *h = conv(u, xin, u->conv_in, B, c->in_channels, H, W, ch, 3, 1, 1); CHK(h);
    skips[ns] = h; skc[ns++] = ch;
    int bi = 0, lvl = 0, per_level = c->num_res_blocks;
    for (int lv = 0; lv < c->nmults; lv++) {
        for (int r = 0; r < per_level; r++) {
            const block *bk = &u->blk[bi++];
            h = res_forward(u, bk, h, es, B, &H, &W, seed + (uint64_t)bi * 7919); CHK(h);
            ch = bk->out;
            if (bi < u->ndown && u->blk[bi].kind == 2) { h = attn_forward(u, &u->blk[bi++], h, B, H, W); CHK(h); }
            skips[ns] = h; skc[ns++] = ch;
        }
        if (feats) { feats[lvl] = h->d; fc[lvl] = ch; fh[lvl] = H; fw[lvl] = W; lvl++; }
        if (lv != c->nmults - 1) {
            bi++;
            h = res_forward(u, &u->blk[bi - 1], h, es, B, &H, &W, seed + (uint64_t)bi * 7919); CHK(h);
            skips[ns] = h; skc[ns++] = ch;
        }
    }
    if (feats) { *nfeat = lvl; return h; }
    for (int m = 0; m < u->nmid; m++) {
        const block *bk = &u->blk[bi++];
        h = bk->kind == 1 ? res_forward(u, bk, h, es, B, &H, &W, seed + (uint64_t)bi * 7919) : attn_forward(u, bk, h, B, H, W);
        CHK(h);
    }
    while (bi < u->nblk) {
        const block *bk = &u->blk[bi++];
        if (bk->kind == 1 && !bk->up) {
            ns--;
            h = concat(u, h, skips[ns], B, bk->in - skc[ns], skc[ns], H * W); CHK(h);
            h = res_forward(u, bk, h, es, B, &H, &W, seed + (uint64_t)bi * 7919); CHK(h);
        } else if (bk->kind == 1) {
            h = res_forward(u, bk, h, es, B, &H, &W, seed + (uint64_t)bi * 7919); CHK(h);
        } else {
            h = attn_forward(u, bk, h, B, H, W); CHK(h);
        }
        ch = bk->out;
    }
    h = gnorm(u, h, u->out_gn, B, ch, H * W); CHK(h);
    h = silu(u, h); CHK(h);
    return conv(u, h, u->out_conv, B, ch, H, W, c->in_channels, 3, 1, 1);
}

int glad_unet_forward(glad_unet *u, float *eps, const float *x, const float *t, int B, int train, uint64_t seed)
{
    glad_arena_reset(&u->arena);
    u->ntape = 0;
    u->training = train;
    u->Bcur = B;
    node *y = run(u, x, t, B, seed, NULL, NULL, NULL, NULL, NULL);
    if (!y) return GLAD_ENOMEM;
    memcpy(eps, y->d, sizeof(float) * y->n);
    u->out_node = y;
    return 0;
}

int glad_unet_encode(glad_unet *u, const float *x, const float *t, int B, float **feats, int *C, int *H, int *W)
{
    glad_arena_reset(&u->arena);
    u->ntape = 0;
    u->training = 0;
    int n = 0;
    if (!run(u, x, t, B, 0, feats, C, H, W, &n)) return GLAD_ENOMEM;
    return n;
}

static float *grad_of(glad_unet *u, node *x)
{
    if (!x->g) x->g = glad_arena_zalloc(&u->arena, x->n);
    return x->g;
}

int glad_unet_backward(glad_unet *u, const float *deps, float *dx)
{
    if (!u->training || !u->out_node || u->ntape == 0) return GLAD_EINVAL;
    float *g = grad_of(u, u->out_node);
    if (!g) return GLAD_ENOMEM;
    memcpy(g, deps, sizeof(float) * u->out_node->n);
    for (int i = u->ntape - 1; i >= 0; i--) {
        tape_op *t = &u->tape[i];
        if (!t->y->g) continue;   /* nothing flows back through this op */
        float *ga = grad_of(u, t->a), *gb = t->b ? grad_of(u, t->b) : NULL;
        if (!ga || (t->b && !gb)) return GLAD_ENOMEM;
        const float *gy = t->y->g;
        switch (t->op) {
        case OP_CONV:
            if (ensure_ws(u, glad_conv2d_workspace(t->C, t->H, t->W, t->k, t->k, t->stride, t->pad))) return GLAD_ENOMEM;
            glad_conv2d_backward(ga, G(t->pw), G(t->pb), gy, t->a->d, P(t->pw), t->B, t->C, t->H, t->W, t->OC, t->k, t->k,
                                 t->stride, t->pad, u->ws);
            break;
        case OP_GN:
            glad_groupnorm_backward(ga, G(t->pw), G(t->pb), gy, t->a->d, t->s1, t->s2, P(t->pw), t->B, t->C, t->H, 32);
            break;
        case OP_SILU: glad_silu_backward(ga, gy, t->a->d, t->a->n); break;
        case OP_LINEAR: glad_linear_backward(ga, G(t->pw), G(t->pb), gy, t->a->d, P(t->pw), t->B, t->C, t->OC); break;
        case OP_ADD:
            for (size_t k = 0; k < t->y->n; k++) { ga[k] += gy[k]; gb[k] += gy[k]; }
            break;
        case OP_ADDEMB:
            for (int b = 0; b < t->B; b++)
                for (int c = 0; c < t->C; c++) {
                    const float *r = gy + ((size_t)b * t->C + c) * t->H;
                    float *o = ga + ((size_t)b * t->C + c) * t->H;
                    double s = 0;
                    for (int k = 0; k < t->H; k++) { o[k] += r[k]; s += r[k]; }
                    gb[(size_t)b * t->C + c] += (float)s;
                }
            break;
        case OP_AVGPOOL: glad_avgpool2_backward(ga, gy, t->C, t->H, t->W); break;
        case OP_UPSAMPLE: glad_upsample2_backward(ga, gy, t->C, t->H, t->W); break;
        case OP_CONCAT: glad_concat_backward(ga, gb, gy, t->B, t->C, t->Cb, (size_t)t->H); break;
        case OP_ATTN:
            if (ensure_ws(u, (size_t)t->T * t->T)) return GLAD_ENOMEM;
            glad_attention_backward(ga, gy, t->a->d, t->s1, t->B, t->C, t->T, t->heads, u->ws);
            break;
        case OP_DROPOUT: glad_dropout_backward(ga, gy, t->a->n, t->p, t->seed); break;
        }
    }
    /* the input is the first conv's input (down.0.0) */
    if (dx) {
        for (int i = 0; i < u->ntape; i++)
            if (u->tape[i].op == OP_CONV && u->tape[i].pw == u->conv_in) {
                node *xi = u->tape[i].a;
                if (xi->g) for (size_t k = 0; k < xi->n; k++) dx[k] += xi->g[k];
                break;
            }
    }
    return 0;
}

/* ------------------------------------------------------------------ files */

int glad_unet_load(glad_unet **out, const char *path, char *err, size_t errlen)
{
    glad_st *st;
    int rc = glad_st_open(&st, path);
    if (rc) { snprintf(err, errlen, "%s: %s", path, glad_strerror(rc)); return rc; }
    const char *cj = glad_st_meta(st, "config");
    glad_unet_config c;
    if (!cj || glad_unet_config_parse(&c, cj)) {
        snprintf(err, errlen, "%s: no valid UNet config in __metadata__", path);
        glad_st_close(st);
        return GLAD_EFORMAT;
    }
    glad_unet *u;
    if ((rc = glad_unet_create(&u, &c))) { snprintf(err, errlen, "%s: config not buildable", path); glad_st_close(st); return rc; }
    for (int i = 0; i < u->np; i++) {
        const glad_param *q = &u->p[i];
        const glad_st_entry *e = glad_st_find(st, q->name);
        if (!e) { snprintf(err, errlen, "%s: tensor '%s' missing", path, q->name); rc = GLAD_ENOTFOUND; break; }
        size_t n = 1;
        for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
        if (n != q->n || e->dtype != GLAD_DT_F32) { snprintf(err, errlen, "%s: tensor '%s' has the wrong shape or dtype", path, q->name); rc = GLAD_ESHAPE; break; }
        memcpy(u->w + q->off, glad_st_data(st, e), n * sizeof(float));
    }
    glad_st_close(st);
    if (rc) { glad_unet_free(u); return rc; }
    *out = u;
    return 0;
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
