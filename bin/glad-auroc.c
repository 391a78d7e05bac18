/* glad-auroc - image- and pixel-level anomaly-detection metrics of scored
 * streams: I-AUROC/AP/F1max, P-AUROC/AP/F1max, aupro and pro_compat per
 * class (or defect) and their mean, as a table, markdown, CSV or JSON, with
 * optional ROC/PR/PRO curves (CSV + PNG). The metrics live in lib/metrics;
 * this file reads records, groups them and formats. Every record read is
 * evaluated, whatever its split. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "io/image.h"
#include "core/json.h"
#include "io/plot.h"
#include "metrics/pro.h"
#include "metrics/roc.h"
#include "imgproc/resize.h"

static const char usage[] =
    "Usage: glad-auroc [OPTION]... [FILE]...\n"
    "Anomaly-detection metrics of scored glad streams (FILEs, or standard input;\n"
    "several FILEs, e.g. shards of one run, are merged). Records need 'label'\n"
    "(0/1) and 'score'; 'amap' ([1,H,W] or [H,W] float) and 'mask' (binary)\n"
    "add the pixel-level metrics. Every record read is evaluated, whatever its\n"
    "'split'.\n"
    "\n"
    "  -b, --by class|defect|none  rows: one per class (default), per class and\n"
    "                              defect (normals of the class + that defect),\n"
    "                              or one for everything\n"
    "  -f, --format table|markdown|csv|json\n"
    "                              tables in percent with one decimal; csv and\n"
    "                              json as fractions in full precision\n"
    "  -c, --curves DIR            write ROC, PR and PRO curves per row as CSV\n"
    "                              and PNG into DIR (created if needed)\n"
    "  -p, --pixel-size N          resample maps (bilinear) and masks (nearest)\n"
    "                              to NxN before the pixel metrics\n"
    "      --fpr-limit X           PRO integration limit (default 0.3)\n"
    "  -h, --help                  show this help\n"
    "  -V, --version               show the version\n"
    "\n"
    "Columns: I-AUROC, I-AP, I-F1max (image scores), P-AUROC, P-AP, P-F1max\n"
    "(all pixels of all images of the row), AUPRO (exact, to FPR 0.3,\n"
    "interpolated, /0.3) and PRO-compat (GLAD/DDAD/RD4AD compute_pro: 200\n"
    "thresholds, FPR < 0.3 rescaled). The mean row averages the rows (as papers\n"
    "average classes). Undefined metrics (e.g. a class without anomalies) are\n"
    "shown as n/a (null in JSON) with a warning.\n"
    "Exit status: 0 ok, 1 bad data (the message names the record), 2 usage.\n";

enum { M_IAUROC, M_IAP, M_IF1, M_PAUROC, M_PAP, M_PF1, M_AUPRO, M_PROC, NMET };
static const char *met_hdr[NMET] = {"I-AUROC", "I-AP", "I-F1max", "P-AUROC", "P-AP", "P-F1max", "AUPRO", "PRO-compat"};
static const char *met_key[NMET] = {"i_auroc", "i_ap", "i_f1max", "p_auroc", "p_ap", "p_f1max", "aupro", "pro_compat"};

typedef struct { char **s; int n, cap; } strtab;

static int strtab_id(strtab *t, const char *s)
{
    for (int i = 0; i < t->n; i++) if (strcmp(t->s[i], s) == 0) return i;
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char **q = realloc(t->s, cap * sizeof *q);
        if (!q) return -1;
        t->s = q; t->cap = cap;
    }
    if (!(t->s[t->n] = strdup(s))) return -1;
    return t->n++;
}

static void strtab_free(strtab *t)
{
    for (int i = 0; i < t->n; i++) free(t->s[i]);
    free(t->s);
}

typedef struct { int bucket, defect; uint8_t label; double score; int64_t img; } rec;

typedef struct {
    char name[512];
    int bucket, defect;   /* defect -1: every record of the bucket */
    long n, nanom;
    double m[NMET];
    glad_pix_metrics pm;
    int has_pix;
    int rc;                                  /* lib error of the computation */
    glad_curve iroc, ipr, proc, ppr, pro;    /* with --curves */
} group;

/* ---- duplicate ids (merged shards must not overlap) ---- */
typedef struct { char **slot; size_t cap, n; } idset;

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) { h ^= (uint8_t)*s; h *= 1099511628211ull; }
    return h;
}

/* 1 = inserted, 0 = already present, <0 = no memory */
static int idset_add(idset *d, const char *s)
{
    if ((d->n + 1) * 2 > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        char **ns = calloc(cap, sizeof *ns);
        if (!ns) return GLAD_ENOMEM;
        for (size_t i = 0; i < d->cap; i++) {
            if (!d->slot[i]) continue;
            size_t j = fnv(d->slot[i]) & (cap - 1);
            while (ns[j]) j = (j + 1) & (cap - 1);
            ns[j] = d->slot[i];
        }
        free(d->slot);
        d->slot = ns; d->cap = cap;
    }
    size_t j = fnv(s) & (d->cap - 1);
    while (d->slot[j]) {
        if (strcmp(d->slot[j], s) == 0) return 0;
        j = (j + 1) & (d->cap - 1);
    }
    if (!(d->slot[j] = strdup(s))) return GLAD_ENOMEM;
    d->n++;
    return 1;
}

static void idset_free(idset *d)
{
    for (size_t i = 0; i < d->cap; i++) free(d->slot[i]);
    free(d->slot);
}

/* ---- state ---- */
typedef struct {
    int by;                 /* 0 class, 1 defect, 2 none */
    int pixel_size;
    double fpr_limit;
    strtab buckets, defects;
    glad_pixset *ps;        /* one per bucket */
    int nps;
    rec *r;
    size_t nr, rcap;
    long with_amap, without_amap, train_split;
    char first_without_amap[256];
    glad_history *hist;
    int nhist;
    idset ids;
} state;

static int ensure_ps(state *st, int b)
{
    if (b < st->nps) return 0;
    glad_pixset *q = realloc(st->ps, (b + 1) * sizeof *q);
    if (!q) return GLAD_ENOMEM;
    st->ps = q;
    for (int i = st->nps; i <= b; i++) glad_pixset_init(&st->ps[i]);
    st->nps = b + 1;
    return 0;
}

/* amap/mask tensor -> float plane h x w ([1,H,W] or [H,W]) */
static int plane_shape(const glad_tensor *t, int *h, int *w)
{
    if (t->ndim == 2) { *h = (int)t->shape[0]; *w = (int)t->shape[1]; }
    else if (t->ndim == 3 && t->shape[0] == 1) { *h = (int)t->shape[1]; *w = (int)t->shape[2]; }
    else return GLAD_ESHAPE;
    return (*h > 0 && *w > 0) ? 0 : GLAD_ESHAPE;
}

static int add_pixels(state *st, const glad_record *r, const char *id, int b, int label, int64_t *img)
{
    const glad_tensor *am, *mk = NULL;
    *img = -1;
    if (glad_record_get_tensor(r, "amap", &am) < 0) {
        if (glad_record_find(r, "amap")) return cli_rec_error(id, "amap", "is not a tensor");
        if (!st->without_amap++) snprintf(st->first_without_amap, sizeof st->first_without_amap, "%s", id);
        return 0;
    }
    st->with_amap++;
    int h, w, mh = 0, mw = 0;
    if (plane_shape(am, &h, &w) < 0) return cli_rec_error(id, "amap", "must have shape [1,H,W] or [H,W]");
    if (glad_record_get_tensor(r, "mask", &mk) < 0) {
        if (glad_record_find(r, "mask")) return cli_rec_error(id, "mask", "is not a tensor");
        if (label) return cli_rec_error(id, "mask", "missing (an anomalous record with an 'amap' needs its ground-truth mask)");
        mk = NULL;   /* a normal image without a mask: all background */
    }
    if (mk && plane_shape(mk, &mh, &mw) < 0) return cli_rec_error(id, "mask", "must have shape [1,H,W] or [H,W]");
    if (mk && (mh != h || mw != w) && !st->pixel_size)
        return cli_rec_error(id, "amap", "shape %dx%d differs from the mask's %dx%d (resample both with --pixel-size N)", h, w, mh, mw);
    size_t n = (size_t)h * w, mn = mk ? (size_t)mh * mw : 0;
    int rc = CLI_FAIL;
    float *map = malloc(n * sizeof *map), *mf = mk ? malloc(mn * sizeof *mf) : NULL;
    float *rmap = NULL;
    uint8_t *m8 = NULL, *rm8 = NULL;
    if (!map || (mk && !mf)) { cli_error("out of memory"); goto out; }
    if (glad_tensor_to_f32(am, map) < 0) { cli_rec_error(id, "amap", "has an unsupported dtype"); goto out; }
    int oh = h, ow = w;
    if (mk) {
        if (glad_tensor_to_f32(mk, mf) < 0) { cli_rec_error(id, "mask", "has an unsupported dtype"); goto out; }
        /* binarise at half of the mask's maximum (spec §5): 0/1 and 0/255 masks alike */
        float mx = 0;
        for (size_t i = 0; i < mn; i++) {
            if (isnan(mf[i])) { cli_rec_error(id, "mask", "contains NaN"); goto out; }
            if (mf[i] > mx) mx = mf[i];
        }
        m8 = malloc(mn);
        if (!m8) { cli_error("out of memory"); goto out; }
        for (size_t i = 0; i < mn; i++) m8[i] = mx > 0 && mf[i] * 2 >= mx;
    } else {
        m8 = calloc(n, 1);
        mh = h; mw = w;
        if (!m8) { cli_error("out of memory"); goto out; }
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(map[i])) { cli_rec_error(id, "amap", "contains NaN or infinity"); goto out; }
    if (st->pixel_size) {
        int N = st->pixel_size;
        size_t nn = (size_t)N * N;
        rmap = malloc(nn * sizeof *rmap);
        rm8 = malloc(nn);
        if (!rmap || !rm8 || glad_resize_bilinear(rmap, N, N, map, 1, h, w, 0) < 0 ||
            glad_resize_nearest_u8(rm8, N, N, m8, 1, mh, mw) < 0) { cli_error("out of memory"); goto out; }
        free(map); map = rmap; rmap = NULL;
        free(m8); m8 = rm8; rm8 = NULL;
        oh = ow = N;
    }
    if (ensure_ps(st, b) < 0) { cli_error("out of memory"); goto out; }
    uint32_t ix;
    int e = glad_pixset_add(&st->ps[b], map, m8, oh, ow, &ix);
    if (e == GLAD_ENAN) { cli_rec_error(id, "amap", "contains NaN or infinity"); goto out; }
    if (e < 0) { cli_rec_error(id, "amap", "%s", glad_strerror(e)); goto out; }
    *img = ix;
    rc = 0;
out:
    free(map); free(mf); free(rmap); free(m8); free(rm8);
    return rc;
}

static int add_history(state *st, const glad_reader *rd)
{
    glad_history h;
    if (glad_header_history(glad_reader_header(rd), &h) < 0) return 0;   /* no usable history: nothing to print */
    if (h.n == 0) { glad_history_free(&h); return 0; }
    for (int k = 0; k < st->nhist; k++) {
        const glad_history *o = &st->hist[k];
        int same = o->n == h.n;
        for (int i = 0; same && i < h.n; i++)
            same = strcmp(o->tool[i], h.tool[i]) == 0 && strcmp(o->args[i], h.args[i]) == 0;
        if (same) { glad_history_free(&h); return 0; }
    }
    glad_history *q = realloc(st->hist, (st->nhist + 1) * sizeof *q);
    if (!q) { glad_history_free(&h); return GLAD_ENOMEM; }
    st->hist = q;
    st->hist[st->nhist++] = h;
    return 0;
}

static int read_file(state *st, const char *path, cli_progress *pg)
{
    glad_reader *rd = NULL;
    int rc = glad_reader_open(&rd, path);
    if (rc < 0) {
        if (!rd) return cli_reader_error(NULL, path);
        cli_reader_error(rd, path);
        glad_reader_close(rd);
        return CLI_FAIL;
    }
    if (add_history(st, rd) < 0) { glad_reader_close(rd); return cli_error("out of memory"); }
    glad_record r;
    glad_record_init(&r);
    int ret = 0;
    for (;;) {
        rc = glad_reader_next(rd, &r);
        if (rc == 0) break;
        if (rc < 0) { ret = cli_reader_error(rd, path); break; }
        const char *id = glad_record_id(&r);
        if (strcmp(id, "?") != 0) {
            int d = idset_add(&st->ids, id);
            if (d < 0) { ret = cli_error("out of memory"); break; }
            if (d == 0) { ret = cli_rec_error(id, "id", "appears twice (overlapping shards or a repeated file?)"); break; }
        }
        int64_t label;
        int e = glad_record_get_int(&r, "label", &label);
        if (e == GLAD_ENOTFOUND) { ret = cli_rec_error(id, "label", "missing"); break; }
        if (e < 0 || (label != 0 && label != 1)) { ret = cli_rec_error(id, "label", "must be 0 or 1"); break; }
        double score;
        const glad_tensor *stt;
        e = glad_record_get_f64(&r, "score", &score);
        if (e == GLAD_EDTYPE && glad_record_get_tensor(&r, "score", &stt) == 0 && glad_tensor_numel(stt) == 1) {
            double v;
            e = glad_tensor_to_f64(stt, &v);
            score = v;
        }
        if (e == GLAD_ENOTFOUND) { ret = cli_rec_error(id, "score", "missing"); break; }
        if (e < 0) { ret = cli_rec_error(id, "score", "must be a number"); break; }
        if (isnan(score)) { ret = cli_rec_error(id, "score", "is NaN"); break; }
        const char *cls = "unknown", *def = label ? "anomalous" : "good", *split;
        glad_record_get_str(&r, "class", &cls);
        glad_record_get_str(&r, "defect", &def);
        if (glad_record_get_str(&r, "split", &split) == 0 && strcmp(split, "train") == 0) st->train_split++;
        int b = strtab_id(&st->buckets, st->by == 2 ? "all" : cls);
        int d = strtab_id(&st->defects, def);
        if (b < 0 || d < 0) { ret = cli_error("out of memory"); break; }
        if (st->nr == st->rcap) {
            size_t cap = st->rcap ? st->rcap * 2 : 1024;
            rec *q = realloc(st->r, cap * sizeof *q);
            if (!q) { ret = cli_error("out of memory"); break; }
            st->r = q; st->rcap = cap;
        }
        rec *x = &st->r[st->nr];
        x->bucket = b; x->defect = d; x->label = (uint8_t)label; x->score = score;
        if ((ret = add_pixels(st, &r, id, b, (int)label, &x->img)) != 0) break;
        st->nr++;
        cli_progress_step(pg, 1);
    }
    glad_record_free(&r);
    glad_reader_close(rd);
    return ret;
}

/* ---- output ---- */
static void sanitize(char *dst, size_t n, const char *s)
{
    size_t i = 0;
    for (; *s && i + 1 < n; s++, i++) {
        char c = *s;
        dst[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_') ? c : '_';
    }
    dst[i] = 0;
}

static void pct(char *buf, size_t n, double v)
{
    if (isnan(v)) snprintf(buf, n, "n/a");
    else snprintf(buf, n, "%.1f", 100.0 * v);
}

static void json_str(FILE *f, const char *s)
{
    size_t n = glad_json_escape(NULL, 0, s);
    char *b = malloc(n + 1);
    if (!b) { fputs("\"\"", f); return; }
    glad_json_escape(b, n + 1, s);
    fputs(b, f);
    free(b);
}

static void json_num(FILE *f, double v)
{
    if (isnan(v)) fputs("null", f);
    else fprintf(f, "%.17g", v);
}

static void print_history_plain(const state *st, int markdown)
{
    if (!st->nhist) return;
    fputs(markdown ? "\nPipeline:\n\n" : "\npipeline:\n", stdout);
    for (int k = 0; k < st->nhist; k++) {
        const glad_history *h = &st->hist[k];
        if (st->nhist > 1) printf(markdown ? "- input stream %d:\n" : "  input stream %d:\n", k + 1);
        const char *ind = st->nhist > 1 ? "    " : (markdown ? "" : "  ");
        for (int i = 0; i < h->n; i++) {
            const char *a = h->args[i] ? h->args[i] : "", *v = h->version[i] ? h->version[i] : "?";
            if (markdown) printf("%s%d. `%s%s%s` (%s)\n", ind, i + 1, h->tool[i], *a ? " " : "", a, v);
            else printf("%s%d. %s%s%s  (%s)\n", ind, i + 1, h->tool[i], *a ? " " : "", a, v);
        }
    }
}

static int write_curves(const char *dir, const group *g, glad_curve *iroc, glad_curve *ipr,
                        glad_curve *proc, glad_curve *ppr, glad_curve *pro, double lim)
{
    char base[600], path[1300], nm[520];
    sanitize(nm, sizeof nm, g->name);
    snprintf(base, sizeof base, "%s/%s", dir, nm);
    FILE *f;
    /* ROC */
    snprintf(path, sizeof path, "%s.roc.csv", base);
    if (!(f = fopen(path, "w"))) return cli_error("%s: cannot write: %s", path, strerror(errno));
    fputs("level,fpr,tpr\n", f);
    for (size_t i = 0; i < iroc->n; i++) fprintf(f, "image,%.9g,%.9g\n", iroc->x[i], iroc->y[i]);
    for (size_t i = 0; i < proc->n; i++) fprintf(f, "pixel,%.9g,%.9g\n", proc->x[i], proc->y[i]);
    if (fclose(f)) return cli_error("%s: write failed", path);
    snprintf(path, sizeof path, "%s.pr.csv", base);
    if (!(f = fopen(path, "w"))) return cli_error("%s: cannot write: %s", path, strerror(errno));
    fputs("level,recall,precision\n", f);
    for (size_t i = 0; i < ipr->n; i++) fprintf(f, "image,%.9g,%.9g\n", ipr->x[i], ipr->y[i]);
    for (size_t i = 0; i < ppr->n; i++) fprintf(f, "pixel,%.9g,%.9g\n", ppr->x[i], ppr->y[i]);
    if (fclose(f)) return cli_error("%s: write failed", path);
    if (g->has_pix) {
        snprintf(path, sizeof path, "%s.pro.csv", base);
        if (!(f = fopen(path, "w"))) return cli_error("%s: cannot write: %s", path, strerror(errno));
        fputs("fpr,pro\n", f);
        for (size_t i = 0; i < pro->n; i++) fprintf(f, "%.9g,%.9g\n", pro->x[i], pro->y[i]);
        if (fclose(f)) return cli_error("%s: write failed", path);
    }
    /* PNGs */
    char title[600], l1[64], l2[64];
    glad_plot_opts o = {0};
    glad_plot_series s[2];
    int e;
    o.xmin = 0; o.xmax = 1; o.ymin = 0; o.ymax = 1; o.vline = NAN;
    snprintf(title, sizeof title, "ROC %s", g->name);
    o.title = title; o.xlabel = "false positive rate"; o.ylabel = "TPR"; o.diagonal = 1;
    int ns = 0;
    snprintf(l1, sizeof l1, "image (AUROC %.1f)", 100 * g->m[M_IAUROC]);
    snprintf(l2, sizeof l2, "pixel (AUROC %.1f)", 100 * g->m[M_PAUROC]);
    if (iroc->n) s[ns++] = (glad_plot_series){iroc->x, iroc->y, iroc->n, l1, 0};
    if (proc->n) s[ns++] = (glad_plot_series){proc->x, proc->y, proc->n, l2, 1};
    snprintf(path, sizeof path, "%s.roc.png", base);
    if ((e = glad_plot_lines_png(path, &o, s, ns)) < 0) return cli_error("%s: %s", path, glad_strerror(e));
    snprintf(title, sizeof title, "PR %s", g->name);
    o.xlabel = "recall"; o.ylabel = "precision"; o.diagonal = 0; o.legend_left = 1;
    ns = 0;
    snprintf(l1, sizeof l1, "image (AP %.1f)", 100 * g->m[M_IAP]);
    snprintf(l2, sizeof l2, "pixel (AP %.1f)", 100 * g->m[M_PAP]);
    if (ipr->n) s[ns++] = (glad_plot_series){ipr->x, ipr->y, ipr->n, l1, 0};
    if (ppr->n) s[ns++] = (glad_plot_series){ppr->x, ppr->y, ppr->n, l2, 1};
    snprintf(path, sizeof path, "%s.pr.png", base);
    if ((e = glad_plot_lines_png(path, &o, s, ns)) < 0) return cli_error("%s: %s", path, glad_strerror(e));
    if (g->has_pix) {
        snprintf(title, sizeof title, "PRO %s", g->name);
        o.xlabel = "false positive rate"; o.ylabel = "PRO"; o.vline = lim; o.legend_left = 0;
        snprintf(l1, sizeof l1, "PRO (AUPRO@%.2g %.1f)", lim, 100 * g->m[M_AUPRO]);
        s[0] = (glad_plot_series){pro->x, pro->y, pro->n, l1, 0};
        snprintf(path, sizeof path, "%s.pro.png", base);
        if ((e = glad_plot_lines_png(path, &o, s, 1)) < 0) return cli_error("%s: %s", path, glad_strerror(e));
    }
    return 0;
}

/* Metrics of one row; no output (rows are computed in parallel). */
static void evaluate(const state *st, group *g, int curves)
{
    size_t cnt = 0;
    for (size_t i = 0; i < st->nr; i++) {
        const rec *x = &st->r[i];
        if (x->bucket == g->bucket && (g->defect < 0 || !x->label || x->defect == g->defect)) cnt++;
    }
    double step = curves ? 1e-3 : 0;
    glad_curve_init(&g->iroc, 0); glad_curve_init(&g->ipr, 0);
    glad_curve_init(&g->proc, step); glad_curve_init(&g->ppr, step); glad_curve_init(&g->pro, step);
    for (int m = 0; m < NMET; m++) g->m[m] = NAN;
    double *sc = malloc((cnt ? cnt : 1) * sizeof *sc);
    uint8_t *lb = malloc(cnt ? cnt : 1);
    const glad_pixset *ps = g->bucket < st->nps ? &st->ps[g->bucket] : NULL;
    uint8_t *in = NULL;
    if (ps && ps->nimg) in = calloc(ps->nimg, 1);
    g->rc = GLAD_ENOMEM;
    if (!sc || !lb || (ps && ps->nimg && !in)) goto out;
    size_t k = 0;
    long nimg_pix = 0;
    for (size_t i = 0; i < st->nr; i++) {
        const rec *x = &st->r[i];
        if (!(x->bucket == g->bucket && (g->defect < 0 || !x->label || x->defect == g->defect))) continue;
        sc[k] = x->score; lb[k] = x->label; k++;
        if (x->img >= 0 && in) { in[x->img] = 1; nimg_pix++; }
    }
    g->n = (long)cnt;
    g->nanom = 0;
    for (size_t i = 0; i < cnt; i++) g->nanom += lb[i];
    glad_roc_result rr;
    if ((g->rc = glad_roc_binary(sc, lb, cnt, &rr, curves ? &g->iroc : NULL, curves ? &g->ipr : NULL)) < 0) goto out;
    g->m[M_IAUROC] = rr.auroc; g->m[M_IAP] = rr.ap; g->m[M_IF1] = rr.f1max;
    g->has_pix = nimg_pix > 0;
    if (g->has_pix) {
        glad_pro_opts o = { st->fpr_limit, 200, step };
        if ((g->rc = glad_pixset_eval(ps, (size_t)nimg_pix == ps->nimg ? NULL : in, &o, &g->pm,
                                      curves ? &g->proc : NULL, curves ? &g->ppr : NULL, curves ? &g->pro : NULL)) < 0)
            goto out;
        g->m[M_PAUROC] = g->pm.auroc; g->m[M_PAP] = g->pm.ap; g->m[M_PF1] = g->pm.f1max;
        g->m[M_AUPRO] = g->pm.aupro; g->m[M_PROC] = g->pm.pro_compat;
    }
    g->rc = 0;
out:
    free(sc); free(lb); free(in);
}

/* Warnings and curve files of one computed row. */
static int report(const state *st, group *g, const char *curves)
{
    if (g->rc < 0) return cli_error("%s: %s", g->name, glad_strerror(g->rc));
    if (!g->nanom) cli_warn("%s: no anomalous records: image metrics undefined (n/a)", g->name);
    else if (g->nanom == g->n) cli_warn("%s: no normal records: I-AUROC undefined (n/a)", g->name);
    if (g->has_pix && g->pm.nreg == 0) cli_warn("%s: no anomalous pixels in the masks: pixel metrics and PRO undefined (n/a)", g->name);
    else if (g->has_pix && g->pm.npos == g->pm.npix) cli_warn("%s: no normal pixels: P-AUROC and PRO undefined (n/a)", g->name);
    if (curves) return write_curves(curves, g, &g->iroc, &g->ipr, &g->proc, &g->ppr, &g->pro, st->fpr_limit);
    return 0;
}

static void group_free(group *g)
{
    glad_curve_free(&g->iroc); glad_curve_free(&g->ipr);
    glad_curve_free(&g->proc); glad_curve_free(&g->ppr); glad_curve_free(&g->pro);
}

static void output(const state *st, const group *g, int ng, int fmt, const char *byname)
{
    int pix = st->with_amap > 0;
    int first = 0, last = pix ? NMET : M_PAUROC;
    /* mean over rows of each defined metric */
    double mean[NMET];
    int cnt[NMET];
    for (int m = 0; m < NMET; m++) {
        double s = 0; cnt[m] = 0;
        for (int i = 0; i < ng; i++) if (!isnan(g[i].m[m])) { s += g[i].m[m]; cnt[m]++; }
        mean[m] = cnt[m] ? s / cnt[m] : NAN;
        if (ng > 1 && cnt[m] && cnt[m] < ng && m < last)
            cli_warn("mean %s is over %d of %d rows (the others are n/a)", met_hdr[m], cnt[m], ng);
    }
    int show_mean = ng > 1;
    char b[32];
    if (fmt == 0 || fmt == 1) {
        int w0 = (int)strlen(byname);
        for (int i = 0; i < ng; i++) if ((int)strlen(g[i].name) > w0) w0 = (int)strlen(g[i].name);
        if (w0 < 4) w0 = 4;
        if (fmt == 0) {
            printf("%-*s %6s %6s", w0, byname, "n", "anom");
            for (int m = first; m < last; m++) printf(" %*s", (int)strlen(met_hdr[m]) > 7 ? (int)strlen(met_hdr[m]) : 7, met_hdr[m]);
            putchar('\n');
            for (int i = 0; i <= ng; i++) {
                if (i == ng && !show_mean) break;
                if (i < ng) printf("%-*s %6ld %6ld", w0, g[i].name, g[i].n, g[i].nanom);
                else printf("%-*s %6s %6s", w0, "mean", "", "");
                for (int m = first; m < last; m++) {
                    pct(b, sizeof b, i < ng ? g[i].m[m] : mean[m]);
                    printf(" %*s", (int)strlen(met_hdr[m]) > 7 ? (int)strlen(met_hdr[m]) : 7, b);
                }
                putchar('\n');
            }
        } else {
            printf("| %s | n | anomalous |", byname);
            for (int m = first; m < last; m++) printf(" %s |", met_hdr[m]);
            printf("\n|:--|--:|--:|");
            for (int m = first; m < last; m++) printf("--:|");
            putchar('\n');
            for (int i = 0; i <= ng; i++) {
                if (i == ng && !show_mean) break;
                if (i < ng) printf("| %s | %ld | %ld |", g[i].name, g[i].n, g[i].nanom);
                else printf("| **mean** | | |");
                for (int m = first; m < last; m++) { pct(b, sizeof b, i < ng ? g[i].m[m] : mean[m]); printf(" %s |", b); }
                putchar('\n');
            }
        }
        print_history_plain(st, fmt == 1);
    } else if (fmt == 2) {
        printf("%s,n,n_anomalous", byname);
        for (int m = 0; m < NMET; m++) printf(",%s", met_key[m]);
        putchar('\n');
        for (int i = 0; i <= ng; i++) {
            if (i == ng && !show_mean) break;
            if (i < ng) {
                /* quote names containing CSV specials */
                if (strpbrk(g[i].name, ",\"\n")) {
                    putchar('"');
                    for (const char *p = g[i].name; *p; p++) { if (*p == '"') putchar('"'); putchar(*p); }
                    putchar('"');
                } else fputs(g[i].name, stdout);
                printf(",%ld,%ld", g[i].n, g[i].nanom);
            } else printf("mean,,");
            for (int m = 0; m < NMET; m++) {
                double v = i < ng ? g[i].m[m] : mean[m];
                if (isnan(v)) printf(",");
                else printf(",%.17g", v);
            }
            putchar('\n');
        }
    } else {
        printf("{\"by\":\"%s\",\"rows\":[", byname);
        for (int i = 0; i < ng; i++) {
            printf("%s{\"name\":", i ? "," : "");
            json_str(stdout, g[i].name);
            printf(",\"n\":%ld,\"n_anomalous\":%ld", g[i].n, g[i].nanom);
            if (g[i].has_pix)
                printf(",\"n_pixels\":%llu,\"n_anomalous_pixels\":%llu,\"n_regions\":%u",
                       (unsigned long long)g[i].pm.npix, (unsigned long long)g[i].pm.npos, g[i].pm.nreg);
            for (int m = 0; m < NMET; m++) { printf(",\"%s\":", met_key[m]); json_num(stdout, g[i].m[m]); }
            putchar('}');
        }
        printf("],\"mean\":{\"rows\":%d", ng);
        for (int m = 0; m < NMET; m++) { printf(",\"%s\":", met_key[m]); json_num(stdout, mean[m]); }
        printf("},\"fpr_limit\":%.17g,\"history\":[", st->fpr_limit);
        int c = 0;
        for (int k = 0; k < st->nhist; k++)
            for (int i = 0; i < st->hist[k].n; i++) {
                printf("%s{\"tool\":", c++ ? "," : "");
                json_str(stdout, st->hist[k].tool[i]);
                fputs(",\"version\":", stdout);
                json_str(stdout, st->hist[k].version[i] ? st->hist[k].version[i] : "");
                fputs(",\"args\":", stdout);
                json_str(stdout, st->hist[k].args[i]);
                if (st->nhist > 1) printf(",\"input\":%d", k + 1);
                putchar('}');
            }
        printf("]}\n");
    }
}

static int cmp_group(const void *a, const void *b)
{
    return strcmp(((const group *)a)->name, ((const group *)b)->name);
}

int main(int argc, char **argv)
{
    cli_init("glad-auroc");
    static const struct option opts[] = {
        {"by", required_argument, 0, 'b'}, {"format", required_argument, 0, 'f'},
        {"curves", required_argument, 0, 'c'}, {"pixel-size", required_argument, 0, 'p'},
        {"fpr-limit", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    state st;
    memset(&st, 0, sizeof st);
    st.fpr_limit = 0.3;
    int fmt = 0, c;
    const char *curves = NULL;
    long v;
    while ((c = cli_getopt(argc, argv, "b:f:c:p:hV", opts)) != -1) {
        switch (c) {
        case 'b':
            if (!strcmp(optarg, "class")) st.by = 0;
            else if (!strcmp(optarg, "defect")) st.by = 1;
            else if (!strcmp(optarg, "none")) st.by = 2;
            else return cli_usage_error("--by must be class, defect or none");
            break;
        case 'f':
            if (!strcmp(optarg, "table")) fmt = 0;
            else if (!strcmp(optarg, "markdown") || !strcmp(optarg, "md")) fmt = 1;
            else if (!strcmp(optarg, "csv")) fmt = 2;
            else if (!strcmp(optarg, "json")) fmt = 3;
            else return cli_usage_error("--format must be table, markdown, csv or json");
            break;
        case 'c': curves = optarg; break;
        case 'p':
            if (cli_parse_int("--pixel-size", optarg, 1, 16384, &v)) return CLI_USAGE;
            st.pixel_size = (int)v;
            break;
        case 'L':
            if (cli_parse_double("--fpr-limit", optarg, 1e-6, 1.0, &st.fpr_limit)) return CLI_USAGE;
            break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (curves && mkdir(curves, 0777) < 0 && errno != EEXIST)
        return cli_error("%s: cannot create directory: %s", curves, strerror(errno));
    int ret = 0;
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    if (optind == argc) ret = read_file(&st, "-", &pg);
    for (int i = optind; i < argc && !ret; i++) ret = read_file(&st, argv[i], &pg);
    cli_progress_end(&pg);
    group *g = NULL;
    int ng = 0;
    if (ret) goto done;
    if (!st.nr) { ret = cli_error("no records to evaluate"); goto done; }
    if (st.with_amap && st.without_amap) {
        ret = cli_rec_error(st.first_without_amap, "amap", "missing (%ld of %zu records have one; pixel metrics need all)",
                            st.with_amap, st.nr);
        goto done;
    }
    if (st.train_split)
        cli_warn("%ld records have split 'train'; every record given is evaluated", st.train_split);
    /* rows */
    int cap = st.buckets.n * (st.by == 1 ? st.defects.n : 1);
    g = calloc(cap ? cap : 1, sizeof *g);
    if (!g) { ret = cli_error("out of memory"); goto done; }
    for (int b = 0; b < st.buckets.n; b++) {
        if (st.by != 1) {
            g[ng].bucket = b; g[ng].defect = -1;
            snprintf(g[ng].name, sizeof g[ng].name, "%s", st.buckets.s[b]);
            ng++;
            continue;
        }
        int any = 0;
        for (int d = 0; d < st.defects.n; d++) {
            int has = 0;
            for (size_t i = 0; i < st.nr && !has; i++)
                has = st.r[i].bucket == b && st.r[i].label && st.r[i].defect == d;
            if (!has) continue;
            any = 1;
            g[ng].bucket = b; g[ng].defect = d;
            snprintf(g[ng].name, sizeof g[ng].name, "%s/%s", st.buckets.s[b], st.defects.s[d]);
            ng++;
        }
        if (!any) {   /* a class with no anomalies still gets its (n/a) row */
            g[ng].bucket = b; g[ng].defect = -1;
            snprintf(g[ng].name, sizeof g[ng].name, "%s", st.buckets.s[b]);
            ng++;
        }
    }
    /* rows sorted by name: the table does not depend on record or shard order */
    qsort(g, ng, sizeof *g, cmp_group);
    if (st.nps) {   /* sort every class's pixels in parallel, once */
        glad_pixset **pp = malloc(st.nps * sizeof *pp);
        if (!pp) { ret = cli_error("out of memory"); goto done; }
        for (int i = 0; i < st.nps; i++) pp[i] = &st.ps[i];
        glad_pixset_sort_many(pp, st.nps);
        free(pp);
    }
    /* rows are independent (the sorted pixel sets are only read): in parallel */
    #pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < ng; i++) evaluate(&st, &g[i], curves != NULL);
    for (int i = 0; i < ng && !ret; i++) ret = report(&st, &g[i], curves);
    if (!ret) output(&st, g, ng, fmt, st.by == 0 ? "class" : st.by == 1 ? "defect" : "set");
    if (!ret && fflush(stdout)) ret = cli_error("write error on standard output");
done:
    for (int i = 0; i < ng; i++) group_free(&g[i]);
    free(g);
    for (int i = 0; i < st.nps; i++) glad_pixset_free(&st.ps[i]);
    free(st.ps);
    free(st.r);
    strtab_free(&st.buckets);
    strtab_free(&st.defects);
    for (int k = 0; k < st.nhist; k++) glad_history_free(&st.hist[k]);
    free(st.hist);
    idset_free(&st.ids);
    return ret;
}
