/* report.c - see report.h: record intake (checks, mask binarisation,
 * optional resampling into the per-class pixel sets), rows and their
 * metrics, the mean, and the table / curve writers. The metrics themselves
 * are roc.c and pro.c. */
#include "metrics/report.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "core/rng.h"
#include "imgproc/resize.h"
#include "io/plot.h"

const char *const glad_report_by_names[] = {"class", "defect", "none", NULL};
const char *const glad_report_format_names[] = {"table", "markdown", "csv", "json", "md", NULL};
const char *const glad_metric_headers[] = {"I-AUROC", "I-AP", "I-F1max", "P-AUROC", "P-AP", "P-F1max", "AUPRO", "PRO-compat", NULL};
const char *const glad_metric_keys[] = {"i_auroc", "i_ap", "i_f1max", "p_auroc", "p_ap", "p_f1max", "aupro", "pro_compat", NULL};
const char *const glad_report_curve_names[] = {"roc", "pr", "pro", NULL};
const char *const glad_dec_headers[] = {"I-Prec", "I-Rec", "I-F1", "I-Acc", "P-Prec", "P-Rec", "P-F1", "P-Acc", NULL};
const char *const glad_dec_keys[] = {"i_precision", "i_recall", "i_f1", "i_accuracy", "p_precision", "p_recall", "p_f1", "p_accuracy", NULL};

/* ---- interned names (classes, defects) ---- */
typedef struct { char **s; int n, cap; } strtab;

static int strtab_id(strtab *t, const char *s)
{
    for (int i = 0; i < t->n; i++) if (strcmp(t->s[i], s) == 0) return i;
    char **q = glad_grow(t->s, &t->cap, t->n, sizeof *q, 16);
    if (!q) return GLAD_ENOMEM;
    t->s = q;
    if (!(t->s[t->n] = strdup(s))) return GLAD_ENOMEM;
    return t->n++;
}

static void strtab_free(strtab *t)
{
    for (int i = 0; i < t->n; i++) free(t->s[i]);
    free(t->s);
}

/* ---- record ids seen (merged shards must not overlap): open addressing ---- */
typedef struct { char **slot; size_t cap, n; } idset;

/* 1 = inserted, 0 = already present, GLAD_ENOMEM */
static int idset_add(idset *d, const char *s)
{
    if ((d->n + 1) * 2 > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        char **ns = calloc(cap, sizeof *ns);
        if (!ns) return GLAD_ENOMEM;
        for (size_t i = 0; i < d->cap; i++) {
            if (!d->slot[i]) continue;
            size_t j = glad_rng_hash_str(d->slot[i]) & (cap - 1);
            while (ns[j]) j = (j + 1) & (cap - 1);
            ns[j] = d->slot[i];
        }
        free(d->slot);
        d->slot = ns; d->cap = cap;
    }
    size_t j = glad_rng_hash_str(s) & (d->cap - 1);
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

/* ---- the report ---- */
typedef struct {
    int bucket, defect;
    uint8_t label;
    int8_t dec, pdec;           /* decision 0/1 (-1: none); pdec: pixel counts below are set */
    double score;
    int64_t img;
    uint64_t ptp, pfp, ptn, pfn;   /* pixel confusion counts at the threshold */
} rec;

typedef struct {
    glad_report_row row;
    int bucket, defect;                      /* defect -1: every record of the bucket */
    int rc;                                  /* error of the row's computation */
    glad_curve iroc, ipr, proc, ppr, pro;    /* with opts.curves */
} group;

struct glad_report {
    glad_report_opts o;
    strtab buckets, defects;
    glad_pixset *ps;        /* one per bucket */
    int nps;
    rec *r;
    size_t nr, rcap;
    long with_amap, without_amap, train_split;
    char *first_without_amap;
    long with_dec, with_pdec;
    char *first_without_dec, *first_without_pdec;
    double dmean[GLAD_NDEC];
    glad_history *hist;
    int nhist, histcap;
    idset ids;
    group *g;
    int ng;
    double mean[GLAD_NMET];
    char **warn;
    int nwarn, warncap;
    int evaluated;
};

int glad_report_new(glad_report **rep, const glad_report_opts *o)
{
    *rep = NULL;
    if (o->by < GLAD_REPORT_BY_CLASS || o->by > GLAD_REPORT_BY_NONE || o->pixel_size < 0 || o->fpr_limit < 0 || o->fpr_limit > 1)
        return glad_fail(GLAD_EINVAL, "report: invalid options");
    glad_report *r = calloc(1, sizeof *r);
    if (!r) return glad_fail(GLAD_ENOMEM, "out of memory");
    r->o = *o;
    if (r->o.fpr_limit == 0) r->o.fpr_limit = 0.3;
    for (int m = 0; m < GLAD_NMET; m++) r->mean[m] = NAN;
    for (int m = 0; m < GLAD_NDEC; m++) r->dmean[m] = NAN;
    *rep = r;
    return 0;
}

static void group_free(group *g)
{
    free(g->row.name);
    glad_curve_free(&g->iroc); glad_curve_free(&g->ipr);
    glad_curve_free(&g->proc); glad_curve_free(&g->ppr); glad_curve_free(&g->pro);
}

void glad_report_free(glad_report *r)
{
    if (!r) return;
    for (int i = 0; i < r->ng; i++) group_free(&r->g[i]);
    free(r->g);
    for (int i = 0; i < r->nps; i++) glad_pixset_free(&r->ps[i]);
    free(r->ps);
    free(r->r);
    strtab_free(&r->buckets);
    strtab_free(&r->defects);
    free(r->first_without_amap);
    free(r->first_without_dec);
    free(r->first_without_pdec);
    for (int k = 0; k < r->nhist; k++) glad_history_free(&r->hist[k]);
    free(r->hist);
    idset_free(&r->ids);
    for (int i = 0; i < r->nwarn; i++) free(r->warn[i]);
    free(r->warn);
    free(r);
}

/* Keep a warning (a malloc'd string from glad_strfmt; NULL = no memory). */
static int warn(glad_report *r, char *msg)
{
    char **q = msg ? glad_grow(r->warn, &r->warncap, r->nwarn, sizeof *q, 8) : NULL;
    if (!q) { free(msg); return glad_fail(GLAD_ENOMEM, "out of memory"); }
    r->warn = q;
    r->warn[r->nwarn++] = msg;
    return 0;
}

int glad_report_add_header(glad_report *r, const glad_record *header)
{
    return glad_history_collect(&r->hist, &r->nhist, &r->histcap, header);
}

static int ensure_ps(glad_report *r, int b)
{
    if (b < r->nps) return 0;
    glad_pixset *q = realloc(r->ps, (b + 1) * sizeof *q);
    if (!q) return GLAD_ENOMEM;
    r->ps = q;
    for (int i = r->nps; i <= b; i++) glad_pixset_init(&r->ps[i]);
    r->nps = b + 1;
    return 0;
}

/* amap/mask tensor -> plane h x w ([1,H,W] or [H,W]) */
static int plane_shape(const glad_tensor *t, int *h, int *w)
{
    int k = t->ndim - 2;
    if (!(t->ndim == 2 || (t->ndim == 3 && t->shape[0] == 1))) return GLAD_ESHAPE;
    if (t->shape[k] <= 0 || t->shape[k + 1] <= 0 || t->shape[k] > INT32_MAX || t->shape[k + 1] > INT32_MAX) return GLAD_ESHAPE;
    *h = (int)t->shape[k];
    *w = (int)t->shape[k + 1];
    return 0;
}

/* The record's amap and mask into the pixel set of bucket b; *img = its
 * image index there, or -1 when the record has no amap. */
/* The predicted mask at the final resolution (n pixels): amap > the pixel
 * threshold, or the record's 'pred_mask' (the amap's h x w, resampled
 * nearest like the mask); counted against m8 into y. No prediction: pdec 0. */
static int add_pred(glad_report *r, const glad_record *x, const char *id, rec *y, const float *map, const uint8_t *m8,
                    int h, int w, size_t n)
{
    const glad_tensor *pt;
    y->pdec = 0;
    if (r->o.thr) {
        if (!r->o.thr->has_pixel) return 0;
        for (size_t i = 0; i < n; i++) {
            int p = map[i] > r->o.thr->pixel;
            if (m8[i]) { y->ptp += p; y->pfn += !p; } else { y->pfp += p; y->ptn += !p; }
        }
        y->pdec = 1;
        return 0;
    }
    if (glad_record_get_tensor(x, "pred_mask", &pt) < 0) {
        if (glad_record_find(x, "pred_mask")) return glad_fail(GLAD_EDTYPE, "record '%s': 'pred_mask' is not a tensor", id);
        return 0;
    }
    int ph, pw;
    if (plane_shape(pt, &ph, &pw) < 0 || ph != h || pw != w)
        return glad_fail(GLAD_ESHAPE, "record '%s': 'pred_mask' must have the amap's shape %dx%d", id, h, w);
    size_t pn = (size_t)ph * pw;
    float *pf = malloc(pn * sizeof *pf);
    uint8_t *p8 = malloc(pn), *rp8 = NULL;
    int rc = glad_fail(GLAD_ENOMEM, "out of memory");
    if (!pf || !p8) goto out;
    if (glad_tensor_to_f32(pt, pf) < 0) { rc = glad_fail(GLAD_EDTYPE, "record '%s': 'pred_mask' has an unsupported dtype", id); goto out; }
    for (size_t i = 0; i < pn; i++) {
        if (isnan(pf[i])) { rc = glad_fail(GLAD_ENAN, "record '%s': 'pred_mask' contains NaN", id); goto out; }
        p8[i] = pf[i] != 0;
    }
    if (r->o.pixel_size) {
        int N = r->o.pixel_size;
        if (!(rp8 = malloc((size_t)N * N)) || glad_resize_nearest_u8(rp8, N, N, p8, 1, ph, pw) < 0) goto out;
        free(p8); p8 = rp8; rp8 = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int p = p8[i];
        if (m8[i]) { y->ptp += p; y->pfn += !p; } else { y->pfp += p; y->ptn += !p; }
    }
    y->pdec = 1;
    rc = 0;
out:
    free(pf); free(p8); free(rp8);
    return rc;
}

static int add_pixels(glad_report *r, const glad_record *rc_, const char *id, int b, int label, rec *y)
{
    const glad_tensor *am, *mk = NULL;
    int64_t *img = &y->img;
    *img = -1;
    if (glad_record_get_tensor(rc_, "amap", &am) < 0) {
        if (glad_record_find(rc_, "amap")) return glad_fail(GLAD_EDTYPE, "record '%s': 'amap' is not a tensor", id);
        if (!r->without_amap++ && !(r->first_without_amap = strdup(id))) return glad_fail(GLAD_ENOMEM, "out of memory");
        return 0;
    }
    r->with_amap++;
    int h, w, mh = 0, mw = 0;
    if (plane_shape(am, &h, &w) < 0) return glad_fail(GLAD_ESHAPE, "record '%s': 'amap' must have shape [1,H,W] or [H,W]", id);
    if (glad_record_get_tensor(rc_, "mask", &mk) < 0) {
        if (glad_record_find(rc_, "mask")) return glad_fail(GLAD_EDTYPE, "record '%s': 'mask' is not a tensor", id);
        if (label) return glad_fail(GLAD_ENOTFOUND, "record '%s': 'mask' missing (an anomalous record with an 'amap' needs its ground-truth mask)", id);
        mk = NULL;   /* a normal image without a mask: all background */
    }
    if (mk && plane_shape(mk, &mh, &mw) < 0) return glad_fail(GLAD_ESHAPE, "record '%s': 'mask' must have shape [1,H,W] or [H,W]", id);
    if (mk && (mh != h || mw != w) && !r->o.pixel_size)
        return glad_fail(GLAD_ESHAPE, "record '%s': 'amap' shape %dx%d differs from the mask's %dx%d (resample both with --pixel-size N)",
                         id, h, w, mh, mw);
    size_t n = (size_t)h * w, mn = mk ? (size_t)mh * mw : 0;
    int rc = glad_fail(GLAD_ENOMEM, "out of memory");
    float *map = malloc(n * sizeof *map), *mf = mk ? malloc(mn * sizeof *mf) : NULL;
    float *rmap = NULL;
    uint8_t *m8 = NULL, *rm8 = NULL;
    if (!map || (mk && !mf)) goto out;
    if (glad_tensor_to_f32(am, map) < 0) { rc = glad_fail(GLAD_EDTYPE, "record '%s': 'amap' has an unsupported dtype", id); goto out; }
    int oh = h, ow = w;
    if (mk) {
        if (glad_tensor_to_f32(mk, mf) < 0) { rc = glad_fail(GLAD_EDTYPE, "record '%s': 'mask' has an unsupported dtype", id); goto out; }
        /* binarise at half of the mask's maximum (spec §5): 0/1 and 0/255 masks alike */
        float mx = 0;
        for (size_t i = 0; i < mn; i++) {
            if (isnan(mf[i])) { rc = glad_fail(GLAD_ENAN, "record '%s': 'mask' contains NaN", id); goto out; }
            if (mf[i] > mx) mx = mf[i];
        }
        if (!(m8 = malloc(mn))) goto out;
        for (size_t i = 0; i < mn; i++) m8[i] = mx > 0 && mf[i] * 2 >= mx;
    } else {
        if (!(m8 = calloc(n, 1))) goto out;
        mh = h; mw = w;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(map[i])) { rc = glad_fail(GLAD_ENAN, "record '%s': 'amap' contains NaN or infinity", id); goto out; }
    if (r->o.pixel_size) {
        int N = r->o.pixel_size;
        size_t nn = (size_t)N * N;
        rmap = malloc(nn * sizeof *rmap);
        rm8 = malloc(nn);
        if (!rmap || !rm8 || glad_resize_bilinear(rmap, N, N, map, 1, h, w, 0) < 0 ||
            glad_resize_nearest_u8(rm8, N, N, m8, 1, mh, mw) < 0) goto out;
        free(map); map = rmap; rmap = NULL;
        free(m8); m8 = rm8; rm8 = NULL;
        oh = ow = N;
    }
    if ((rc = add_pred(r, rc_, id, y, map, m8, h, w, (size_t)oh * ow)) < 0) goto out;
    rc = glad_fail(GLAD_ENOMEM, "out of memory");
    if (ensure_ps(r, b) < 0) goto out;
    uint32_t ix;
    int e = glad_pixset_add(&r->ps[b], map, m8, oh, ow, &ix);
    if (e == GLAD_ENAN) { rc = glad_fail(GLAD_ENAN, "record '%s': 'amap' contains NaN or infinity", id); goto out; }
    if (e < 0) { rc = glad_fail(e, "record '%s': 'amap' %s", id, glad_strerror(e)); goto out; }
    *img = ix;
    rc = 0;
out:
    free(map); free(mf); free(rmap); free(m8); free(rm8);
    return rc;
}

int glad_report_add(glad_report *r, const glad_record *x)
{
    if (r->evaluated) return glad_fail(GLAD_EINVAL, "report: record added after evaluation");
    const char *id = glad_record_id(x);
    if (strcmp(id, "?") != 0) {
        int d = idset_add(&r->ids, id);
        if (d < 0) return glad_fail(GLAD_ENOMEM, "out of memory");
        if (d == 0) return glad_fail(GLAD_EFORMAT, "record '%s': 'id' appears twice (overlapping shards or a repeated file?)", id);
    }
    int64_t label;
    int e = glad_record_get_int(x, "label", &label);
    if (e == GLAD_ENOTFOUND) return glad_fail(GLAD_ENOTFOUND, "record '%s': 'label' missing", id);
    if (e < 0 || (label != 0 && label != 1)) return glad_fail(GLAD_EFORMAT, "record '%s': 'label' must be 0 or 1", id);
    double score;
    const glad_tensor *st;
    e = glad_record_get_f64(x, "score", &score);
    if (e == GLAD_EDTYPE && glad_record_get_tensor(x, "score", &st) == 0 && glad_tensor_numel(st) == 1)
        e = glad_tensor_to_f64(st, &score);
    if (e == GLAD_ENOTFOUND) return glad_fail(GLAD_ENOTFOUND, "record '%s': 'score' missing", id);
    if (e < 0) return glad_fail(GLAD_EFORMAT, "record '%s': 'score' must be a number", id);
    if (isnan(score)) return glad_fail(GLAD_ENAN, "record '%s': 'score' is NaN", id);
    const char *cls = "unknown", *def = label ? "anomalous" : "good", *split;
    glad_record_get_str(x, "class", &cls);
    glad_record_get_str(x, "defect", &def);
    if (glad_record_get_str(x, "split", &split) == 0 && strcmp(split, "train") == 0) r->train_split++;
    int b = strtab_id(&r->buckets, r->o.by == GLAD_REPORT_BY_NONE ? "all" : cls);
    int d = strtab_id(&r->defects, def);
    if (b < 0 || d < 0) return glad_fail(GLAD_ENOMEM, "out of memory");
    if (r->nr == r->rcap) {
        size_t cap = r->rcap ? r->rcap * 2 : 1024;
        rec *q = realloc(r->r, cap * sizeof *q);
        if (!q) return glad_fail(GLAD_ENOMEM, "out of memory");
        r->r = q; r->rcap = cap;
    }
    rec *y = &r->r[r->nr];
    memset(y, 0, sizeof *y);
    y->bucket = b; y->defect = d; y->label = (uint8_t)label; y->score = score;
    y->dec = -1;
    int64_t dv;
    if (r->o.thr) y->dec = score > r->o.thr->image;
    else if ((e = glad_record_get_int(x, "decision", &dv)) == 0) {
        if (dv != 0 && dv != 1) return glad_fail(GLAD_EFORMAT, "record '%s': 'decision' must be 0 or 1", id);
        y->dec = (int8_t)dv;
    } else if (e != GLAD_ENOTFOUND) return glad_fail(GLAD_EFORMAT, "record '%s': 'decision' must be 0 or 1", id);
    GLAD_TRY(add_pixels(r, x, id, b, (int)label, y));
    if (y->dec >= 0) r->with_dec++;
    else if (!r->first_without_dec && !(r->first_without_dec = strdup(id))) return glad_fail(GLAD_ENOMEM, "out of memory");
    if (y->pdec) r->with_pdec++;
    else if (y->img >= 0 && !r->first_without_pdec && !(r->first_without_pdec = strdup(id))) return glad_fail(GLAD_ENOMEM, "out of memory");
    r->nr++;
    return 0;
}

/* ---- rows ---- */
static int in_row(const group *g, const rec *x)
{
    return x->bucket == g->bucket && (g->defect < 0 || !x->label || x->defect == g->defect);
}

/* Metrics of one row; no shared state written (rows are computed in parallel). */
static void evaluate(const glad_report *r, group *g)
{
    const int curves = r->o.curves;
    size_t cnt = 0;
    for (size_t i = 0; i < r->nr; i++) cnt += in_row(g, &r->r[i]);
    double step = curves ? 1e-3 : 0;
    glad_curve_init(&g->iroc, 0); glad_curve_init(&g->ipr, 0);
    glad_curve_init(&g->proc, step); glad_curve_init(&g->ppr, step); glad_curve_init(&g->pro, step);
    for (int m = 0; m < GLAD_NMET; m++) g->row.m[m] = NAN;
    double *sc = malloc((cnt ? cnt : 1) * sizeof *sc);
    uint8_t *lb = malloc(cnt ? cnt : 1);
    const glad_pixset *ps = g->bucket < r->nps ? &r->ps[g->bucket] : NULL;
    uint8_t *in = NULL;
    if (ps && ps->nimg) in = calloc(ps->nimg, 1);
    g->rc = GLAD_ENOMEM;
    if (!sc || !lb || (ps && ps->nimg && !in)) goto out;
    size_t k = 0;
    long nimg_pix = 0;
    for (size_t i = 0; i < r->nr; i++) {
        const rec *x = &r->r[i];
        if (!in_row(g, x)) continue;
        sc[k] = x->score; lb[k] = x->label; k++;
        if (x->img >= 0 && in) { in[x->img] = 1; nimg_pix++; }
    }
    g->row.n = (long)cnt;
    g->row.nanom = 0;
    for (size_t i = 0; i < cnt; i++) g->row.nanom += lb[i];
    glad_roc_result rr;
    if ((g->rc = glad_roc_binary(sc, lb, cnt, &rr, curves ? &g->iroc : NULL, curves ? &g->ipr : NULL)) < 0) goto out;
    g->row.m[GLAD_MET_I_AUROC] = rr.auroc; g->row.m[GLAD_MET_I_AP] = rr.ap; g->row.m[GLAD_MET_I_F1MAX] = rr.f1max;
    g->row.has_pix = nimg_pix > 0;
    if (g->row.has_pix) {
        glad_pro_opts o = { r->o.fpr_limit, 200, step };
        glad_pix_metrics *pm = &g->row.pm;
        if ((g->rc = glad_pixset_eval(ps, (size_t)nimg_pix == ps->nimg ? NULL : in, &o, pm,
                                      curves ? &g->proc : NULL, curves ? &g->ppr : NULL, curves ? &g->pro : NULL)) < 0)
            goto out;
        g->row.m[GLAD_MET_P_AUROC] = pm->auroc; g->row.m[GLAD_MET_P_AP] = pm->ap; g->row.m[GLAD_MET_P_F1MAX] = pm->f1max;
        g->row.m[GLAD_MET_AUPRO] = pm->aupro; g->row.m[GLAD_MET_PRO_COMPAT] = pm->pro_compat;
    }
    for (int m = 0; m < GLAD_NDEC; m++) g->row.d[m] = NAN;
    g->row.has_dec = r->with_dec > 0;
    g->row.has_pdec = r->with_pdec > 0 && g->row.has_pix;
    glad_confusion ic = {0}, pc = {0};
    for (size_t i = 0; i < r->nr; i++) {
        const rec *x = &r->r[i];
        if (!in_row(g, x)) continue;
        if (x->dec >= 0) {
            if (x->label) { ic.tp += x->dec; ic.fn += !x->dec; } else { ic.fp += x->dec; ic.tn += !x->dec; }
        }
        pc.tp += x->ptp; pc.fp += x->pfp; pc.tn += x->ptn; pc.fn += x->pfn;
    }
    glad_confusion_rates(&ic);
    glad_confusion_rates(&pc);
    g->row.ic = ic; g->row.pc = pc;
    if (g->row.has_dec) {
        g->row.d[GLAD_DEC_I_PREC] = ic.precision; g->row.d[GLAD_DEC_I_REC] = ic.tpr;
        g->row.d[GLAD_DEC_I_F1] = ic.f1; g->row.d[GLAD_DEC_I_ACC] = ic.accuracy;
    }
    if (g->row.has_pdec) {
        g->row.d[GLAD_DEC_P_PREC] = pc.precision; g->row.d[GLAD_DEC_P_REC] = pc.tpr;
        g->row.d[GLAD_DEC_P_F1] = pc.f1; g->row.d[GLAD_DEC_P_ACC] = pc.accuracy;
    }
    g->rc = 0;
out:
    free(sc); free(lb); free(in);
}

static int add_row(glad_report *r, int b, int d)
{
    group *g = &r->g[r->ng];
    g->bucket = b; g->defect = d;
    g->row.name = d < 0 ? strdup(r->buckets.s[b]) : glad_strfmt("%s/%s", r->buckets.s[b], r->defects.s[d]);
    if (!g->row.name) return glad_fail(GLAD_ENOMEM, "out of memory");
    r->ng++;
    return 0;
}

/* One row per bucket, or per bucket and defect with anomalies of that defect
 * (a bucket without anomalies still gets its n/a row). */
static int make_rows(glad_report *r)
{
    const int by_defect = r->o.by == GLAD_REPORT_BY_DEFECT;
    size_t cap = (size_t)r->buckets.n * (by_defect ? (size_t)r->defects.n : 1), nd = (size_t)r->defects.n;
    uint8_t *has = by_defect ? calloc(cap ? cap : 1, 1) : NULL;
    r->g = calloc(cap ? cap : 1, sizeof *r->g);
    if (!r->g || (by_defect && !has)) { free(has); return glad_fail(GLAD_ENOMEM, "out of memory"); }
    if (by_defect)
        for (size_t i = 0; i < r->nr; i++)
            if (r->r[i].label) has[(size_t)r->r[i].bucket * nd + (size_t)r->r[i].defect] = 1;
    int rc = 0;
    for (int b = 0; b < r->buckets.n && rc == 0; b++) {
        int any = 0;
        for (int d = 0; by_defect && d < r->defects.n && rc == 0; d++)
            if (has[(size_t)b * nd + (size_t)d]) { any = 1; rc = add_row(r, b, d); }
        if (!any && rc == 0) rc = add_row(r, b, -1);
    }
    free(has);
    return rc;
}

static int cmp_group(const void *a, const void *b)
{
    return strcmp(((const group *)a)->row.name, ((const group *)b)->row.name);
}

/* Warnings of one computed row. */
static int row_warnings(glad_report *r, const group *g)
{
    const char *nm = g->row.name;
    if (!g->row.nanom) GLAD_TRY(warn(r, glad_strfmt("%s: no anomalous records: image metrics undefined (n/a)", nm)));
    else if (g->row.nanom == g->row.n) GLAD_TRY(warn(r, glad_strfmt("%s: no normal records: I-AUROC undefined (n/a)", nm)));
    if (g->row.has_pix && g->row.pm.nreg == 0)
        GLAD_TRY(warn(r, glad_strfmt("%s: no anomalous pixels in the masks: pixel metrics and PRO undefined (n/a)", nm)));
    else if (g->row.has_pix && g->row.pm.npos == g->row.pm.npix)
        GLAD_TRY(warn(r, glad_strfmt("%s: no normal pixels: P-AUROC and PRO undefined (n/a)", nm)));
    return 0;
}

/* Metrics shown: the pixel ones only when the records have maps. */
static int shown_metrics(const glad_report *r) { return r->with_amap > 0 ? GLAD_NMET : GLAD_MET_P_AUROC; }

int glad_report_eval(glad_report *r)
{
    if (r->evaluated) return glad_fail(GLAD_EINVAL, "report: evaluated twice");
    r->evaluated = 1;
    if (!r->nr) return glad_fail(GLAD_EINVAL, "no records to evaluate");
    if (r->with_amap && r->without_amap)
        return glad_fail(GLAD_ENOTFOUND, "record '%s': 'amap' missing (%ld of %zu records have one; pixel metrics need all)",
                         r->first_without_amap, r->with_amap, r->nr);
    if (r->with_dec && r->with_dec < (long)r->nr)
        return glad_fail(GLAD_ENOTFOUND, "record '%s': 'decision' missing (%ld of %zu records have one; the figures at a threshold need all, or give --threshold-file)",
                         r->first_without_dec, r->with_dec, r->nr);
    if (r->with_pdec && r->with_pdec < r->with_amap)
        return glad_fail(GLAD_ENOTFOUND, "record '%s': 'pred_mask' missing (%ld of %ld records with an amap have one)",
                         r->first_without_pdec, r->with_pdec, r->with_amap);
    if (r->train_split)
        GLAD_TRY(warn(r, glad_strfmt("%ld records have split 'train'; every record given is evaluated", r->train_split)));
    GLAD_TRY(make_rows(r));
    /* rows sorted by name: the table does not depend on record or shard order */
    qsort(r->g, r->ng, sizeof *r->g, cmp_group);
    if (r->nps) {   /* sort every class's pixels in parallel, once */
        glad_pixset **pp = malloc(r->nps * sizeof *pp);
        if (!pp) return glad_fail(GLAD_ENOMEM, "out of memory");
        for (int i = 0; i < r->nps; i++) pp[i] = &r->ps[i];
        int rc = glad_pixset_sort_many(pp, r->nps);
        free(pp);
        if (rc < 0) return glad_fail(rc, "sorting the pixels: %s", glad_strerror(rc));
    }
    /* rows are independent (the sorted pixel sets are only read): in parallel */
    #pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < r->ng; i++) evaluate(r, &r->g[i]);
    for (int i = 0; i < r->ng; i++) {
        if (r->g[i].rc < 0) return glad_fail(r->g[i].rc, "%s: %s", r->g[i].row.name, glad_strerror(r->g[i].rc));
        GLAD_TRY(row_warnings(r, &r->g[i]));
    }
    /* mean over rows of each defined metric */
    const int last = shown_metrics(r), ng = r->ng;
    for (int m = 0; m < GLAD_NMET; m++) {
        double s = 0;
        int cnt = 0;
        for (int i = 0; i < ng; i++) if (!isnan(r->g[i].row.m[m])) { s += r->g[i].row.m[m]; cnt++; }
        r->mean[m] = cnt ? s / cnt : NAN;
        if (ng > 1 && cnt && cnt < ng && m < last)
            GLAD_TRY(warn(r, glad_strfmt("mean %s is over %d of %d rows (the others are n/a)", glad_metric_headers[m], cnt, ng)));
    }
    for (int m = 0; m < glad_report_ndec(r); m++) {
        double s = 0;
        int cnt = 0;
        for (int i = 0; i < ng; i++) if (!isnan(r->g[i].row.d[m])) { s += r->g[i].row.d[m]; cnt++; }
        r->dmean[m] = cnt ? s / cnt : NAN;
        if (ng > 1 && cnt && cnt < ng)
            GLAD_TRY(warn(r, glad_strfmt("mean %s is over %d of %d rows (the others are n/a)", glad_dec_headers[m], cnt, ng)));
    }
    return 0;
}

int glad_report_nrows(const glad_report *r) { return r->ng; }
const glad_report_row *glad_report_row_at(const glad_report *r, int i) { return i >= 0 && i < r->ng ? &r->g[i].row : NULL; }
const double *glad_report_mean(const glad_report *r) { return r->mean; }
const double *glad_report_dec_mean(const glad_report *r) { return r->dmean; }
int glad_report_ndec(const glad_report *r) { return !r->with_dec ? 0 : r->with_pdec && r->with_amap ? GLAD_NDEC : GLAD_DEC_P_PREC; }
int glad_report_nwarnings(const glad_report *r) { return r->nwarn; }
const char *glad_report_warning(const glad_report *r, int i) { return i >= 0 && i < r->nwarn ? r->warn[i] : NULL; }

/* ---- the table ---- */
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

static void write_history(const glad_report *r, int markdown, FILE *f)
{
    if (!r->nhist) return;
    fputs(markdown ? "\nPipeline:\n\n" : "\npipeline:\n", f);
    for (int k = 0; k < r->nhist; k++) {
        const glad_history *h = &r->hist[k];
        if (r->nhist > 1) fprintf(f, markdown ? "- input stream %d:\n" : "  input stream %d:\n", k + 1);
        const char *ind = r->nhist > 1 ? "    " : (markdown ? "" : "  ");
        for (int i = 0; i < h->n; i++) {
            const char *a = h->args[i] ? h->args[i] : "", *v = h->version[i] ? h->version[i] : "?";
            if (markdown) fprintf(f, "%s%d. `%s%s%s` (%s)\n", ind, i + 1, h->tool[i], *a ? " " : "", a, v);
            else fprintf(f, "%s%d. %s%s%s  (%s)\n", ind, i + 1, h->tool[i], *a ? " " : "", a, v);
        }
    }
}

/* How the decisions were made, under the table. */
static void write_decisions(const glad_report *r, int markdown, FILE *f)
{
    const int nd = glad_report_ndec(r);
    if (!nd) return;
    const glad_thresholds *t = r->o.thr;
    fputs(markdown ? "\nDecisions: " : "\ndecisions: ", f);
    if (!t) {
        fprintf(f, "the records' 'decision'%s\n", nd > GLAD_DEC_P_PREC ? " and 'pred_mask'" : "");
        return;
    }
    fprintf(f, "image score > %.9g", t->image);
    if (nd > GLAD_DEC_P_PREC) fprintf(f, ", pixel amap > %.9g", t->pixel);
    if (t->method == GLAD_CALIB_TARGET_FPR) fprintf(f, " (calibrated at target FPR %g)\n", t->target_fpr);
    else fputs(" (calibrated at the maximum validation F1)\n", f);
}

/* the first column's header */
static const char *by_title(const glad_report *r)
{
    return r->o.by == GLAD_REPORT_BY_CLASS ? "class" : r->o.by == GLAD_REPORT_BY_DEFECT ? "defect" : "set";
}

/* metric m of row i, or of the mean row when i == ng */
static double cell(const glad_report *r, int i, int m) { return i < r->ng ? r->g[i].row.m[m] : r->mean[m]; }
/* decision figure m of row i, or of the mean row */
static double dcell(const glad_report *r, int i, int m) { return i < r->ng ? r->g[i].row.d[m] : r->dmean[m]; }

static void write_text(const glad_report *r, FILE *f)
{
    const char *byname = by_title(r);
    const int last = shown_metrics(r), rows = r->ng + (r->ng > 1), nd = glad_report_ndec(r);   /* + the mean row */
    int w0 = (int)strlen(byname);
    char b[32];
    for (int i = 0; i < r->ng; i++) if ((int)strlen(r->g[i].row.name) > w0) w0 = (int)strlen(r->g[i].row.name);
    if (w0 < 4) w0 = 4;
    fprintf(f, "%-*s %6s %6s", w0, byname, "n", "anom");
    for (int m = 0; m < last; m++) {
        int wm = (int)strlen(glad_metric_headers[m]) > 7 ? (int)strlen(glad_metric_headers[m]) : 7;
        fprintf(f, " %*s", wm, glad_metric_headers[m]);
    }
    for (int m = 0; m < nd; m++) fprintf(f, " %7s", glad_dec_headers[m]);
    fputc('\n', f);
    for (int i = 0; i < rows; i++) {
        if (i < r->ng) fprintf(f, "%-*s %6ld %6ld", w0, r->g[i].row.name, r->g[i].row.n, r->g[i].row.nanom);
        else fprintf(f, "%-*s %6s %6s", w0, "mean", "", "");
        for (int m = 0; m < last; m++) {
            int wm = (int)strlen(glad_metric_headers[m]) > 7 ? (int)strlen(glad_metric_headers[m]) : 7;
            pct(b, sizeof b, cell(r, i, m));
            fprintf(f, " %*s", wm, b);
        }
        for (int m = 0; m < nd; m++) { pct(b, sizeof b, dcell(r, i, m)); fprintf(f, " %7s", b); }
        fputc('\n', f);
    }
    write_decisions(r, 0, f);
    write_history(r, 0, f);
}

static void write_markdown(const glad_report *r, FILE *f)
{
    const int last = shown_metrics(r), rows = r->ng + (r->ng > 1), nd = glad_report_ndec(r);
    char b[32];
    fprintf(f, "| %s | n | anomalous |", by_title(r));
    for (int m = 0; m < last; m++) fprintf(f, " %s |", glad_metric_headers[m]);
    for (int m = 0; m < nd; m++) fprintf(f, " %s |", glad_dec_headers[m]);
    fputs("\n|:--|--:|--:|", f);
    for (int m = 0; m < last + nd; m++) fputs("--:|", f);
    fputc('\n', f);
    for (int i = 0; i < rows; i++) {
        if (i < r->ng) fprintf(f, "| %s | %ld | %ld |", r->g[i].row.name, r->g[i].row.n, r->g[i].row.nanom);
        else fputs("| **mean** | | |", f);
        for (int m = 0; m < last; m++) { pct(b, sizeof b, cell(r, i, m)); fprintf(f, " %s |", b); }
        for (int m = 0; m < nd; m++) { pct(b, sizeof b, dcell(r, i, m)); fprintf(f, " %s |", b); }
        fputc('\n', f);
    }
    write_decisions(r, 1, f);
    write_history(r, 1, f);
}

static void write_csv(const glad_report *r, FILE *f)
{
    const int rows = r->ng + (r->ng > 1), nd = glad_report_ndec(r);
    fputs(by_title(r), f);
    fputs(",n,n_anomalous", f);
    for (int m = 0; m < GLAD_NMET; m++) fprintf(f, ",%s", glad_metric_keys[m]);
    for (int m = 0; m < nd; m++) fprintf(f, ",%s", glad_dec_keys[m]);
    fputc('\n', f);
    for (int i = 0; i < rows; i++) {
        if (i < r->ng) {
            const char *nm = r->g[i].row.name;
            if (strpbrk(nm, ",\"\n")) {   /* quote names containing CSV specials */
                fputc('"', f);
                for (const char *p = nm; *p; p++) { if (*p == '"') fputc('"', f); fputc(*p, f); }
                fputc('"', f);
            } else fputs(nm, f);
            fprintf(f, ",%ld,%ld", r->g[i].row.n, r->g[i].row.nanom);
        } else fputs("mean,,", f);
        for (int m = 0; m < GLAD_NMET + nd; m++) {
            double v = m < GLAD_NMET ? cell(r, i, m) : dcell(r, i, m - GLAD_NMET);
            if (isnan(v)) fputc(',', f);
            else fprintf(f, ",%.17g", v);
        }
        fputc('\n', f);
    }
}

static void write_json(const glad_report *r, FILE *f)
{
    const int nd = glad_report_ndec(r);
    fprintf(f, "{\"by\":\"%s\",\"rows\":[", by_title(r));
    for (int i = 0; i < r->ng; i++) {
        const glad_report_row *w = &r->g[i].row;
        fprintf(f, "%s{\"name\":", i ? "," : "");
        json_str(f, w->name);
        fprintf(f, ",\"n\":%ld,\"n_anomalous\":%ld", w->n, w->nanom);
        if (w->has_pix)
            fprintf(f, ",\"n_pixels\":%llu,\"n_anomalous_pixels\":%llu,\"n_regions\":%u",
                    (unsigned long long)w->pm.npix, (unsigned long long)w->pm.npos, w->pm.nreg);
        for (int m = 0; m < GLAD_NMET; m++) { fprintf(f, ",\"%s\":", glad_metric_keys[m]); json_num(f, w->m[m]); }
        if (nd) fprintf(f, ",\"tp\":%llu,\"fp\":%llu,\"tn\":%llu,\"fn\":%llu", (unsigned long long)w->ic.tp,
                        (unsigned long long)w->ic.fp, (unsigned long long)w->ic.tn, (unsigned long long)w->ic.fn);
        if (nd > GLAD_DEC_P_PREC) fprintf(f, ",\"p_tp\":%llu,\"p_fp\":%llu,\"p_tn\":%llu,\"p_fn\":%llu", (unsigned long long)w->pc.tp,
                                          (unsigned long long)w->pc.fp, (unsigned long long)w->pc.tn, (unsigned long long)w->pc.fn);
        for (int m = 0; m < nd; m++) { fprintf(f, ",\"%s\":", glad_dec_keys[m]); json_num(f, w->d[m]); }
        fputc('}', f);
    }
    fprintf(f, "],\"mean\":{\"rows\":%d", r->ng);
    for (int m = 0; m < GLAD_NMET; m++) { fprintf(f, ",\"%s\":", glad_metric_keys[m]); json_num(f, r->mean[m]); }
    for (int m = 0; m < nd; m++) { fprintf(f, ",\"%s\":", glad_dec_keys[m]); json_num(f, r->dmean[m]); }
    fprintf(f, "},\"fpr_limit\":%.17g,", r->o.fpr_limit);
    if (nd) {
        const glad_thresholds *t = r->o.thr;
        fprintf(f, "\"decisions\":\"%s\",", t ? "threshold-file" : "records");
        if (t) {
            fprintf(f, "\"image_threshold\":%.17g,\"pixel_threshold\":", t->image);
            json_num(f, nd > GLAD_DEC_P_PREC ? t->pixel : NAN);
            fprintf(f, ",\"method\":\"%s\",\"target_fpr\":", glad_calib_method_names[t->method == GLAD_CALIB_MAX_F1]);
            json_num(f, t->target_fpr);
            fputc(',', f);
        }
    }
    fputs("\"history\":[", f);
    int c = 0;
    for (int k = 0; k < r->nhist; k++)
        for (int i = 0; i < r->hist[k].n; i++) {
            fprintf(f, "%s{\"tool\":", c++ ? "," : "");
            json_str(f, r->hist[k].tool[i]);
            fputs(",\"version\":", f);
            json_str(f, r->hist[k].version[i] ? r->hist[k].version[i] : "");
            fputs(",\"args\":", f);
            json_str(f, r->hist[k].args[i]);
            if (r->nhist > 1) fprintf(f, ",\"input\":%d", k + 1);
            fputc('}', f);
        }
    fputs("]}\n", f);
}

int glad_report_write(const glad_report *r, glad_report_format fmt, FILE *f)
{
    if (!r->evaluated || r->ng == 0) return glad_fail(GLAD_EINVAL, "report: not evaluated");
    switch (fmt) {
    case GLAD_REPORT_TABLE: write_text(r, f); break;
    case GLAD_REPORT_MARKDOWN: case GLAD_REPORT_MD: write_markdown(r, f); break;
    case GLAD_REPORT_CSV: write_csv(r, f); break;
    case GLAD_REPORT_JSON: write_json(r, f); break;
    default: return glad_fail(GLAD_EINVAL, "report: unknown format %d", (int)fmt);
    }
    return ferror(f) ? glad_fail(GLAD_EIO, "write error") : 0;
}

/* ---- curves ---- */
int glad_report_has_curve(const glad_report *r, int i, glad_report_curve c)
{
    if (!r->o.curves || !r->evaluated || i < 0 || i >= r->ng || c < GLAD_REPORT_ROC || c > GLAD_REPORT_PRO) return 0;
    return c != GLAD_REPORT_PRO || r->g[i].row.has_pix;
}

int glad_report_curve_csv(const glad_report *r, int i, glad_report_curve c, FILE *f)
{
    if (!glad_report_has_curve(r, i, c)) return glad_fail(GLAD_EINVAL, "report: row %d has no %s curve", i, c >= 0 && c <= 2 ? glad_report_curve_names[c] : "such");
    const group *g = &r->g[i];
    if (c == GLAD_REPORT_PRO) {
        fputs("fpr,pro\n", f);
        for (size_t k = 0; k < g->pro.n; k++) fprintf(f, "%.9g,%.9g\n", g->pro.x[k], g->pro.y[k]);
    } else {
        const glad_curve *im = c == GLAD_REPORT_ROC ? &g->iroc : &g->ipr, *px = c == GLAD_REPORT_ROC ? &g->proc : &g->ppr;
        fputs(c == GLAD_REPORT_ROC ? "level,fpr,tpr\n" : "level,recall,precision\n", f);
        for (size_t k = 0; k < im->n; k++) fprintf(f, "image,%.9g,%.9g\n", im->x[k], im->y[k]);
        for (size_t k = 0; k < px->n; k++) fprintf(f, "pixel,%.9g,%.9g\n", px->x[k], px->y[k]);
    }
    return ferror(f) ? glad_fail(GLAD_EIO, "write error") : 0;
}

int glad_report_curve_png(const glad_report *r, int i, glad_report_curve c, FILE *f)
{
    if (!glad_report_has_curve(r, i, c)) return glad_fail(GLAD_EINVAL, "report: row %d has no %s curve", i, c >= 0 && c <= 2 ? glad_report_curve_names[c] : "such");
    const group *g = &r->g[i];
    const double *m = g->row.m;
    static const char *const kind[] = {"ROC", "PR", "PRO"};
    char l1[64], l2[64];
    glad_plot_opts o = {0};
    glad_plot_series s[2];
    int ns = 0;
    o.xmin = 0; o.xmax = 1; o.ymin = 0; o.ymax = 1; o.vline = NAN;
    o.xlabel = "false positive rate";
    if (c == GLAD_REPORT_ROC) {
        o.ylabel = "TPR"; o.diagonal = 1;
        snprintf(l1, sizeof l1, "image (AUROC %.1f)", 100 * m[GLAD_MET_I_AUROC]);
        snprintf(l2, sizeof l2, "pixel (AUROC %.1f)", 100 * m[GLAD_MET_P_AUROC]);
        if (g->iroc.n) s[ns++] = (glad_plot_series){g->iroc.x, g->iroc.y, g->iroc.n, l1, 0};
        if (g->proc.n) s[ns++] = (glad_plot_series){g->proc.x, g->proc.y, g->proc.n, l2, 1};
    } else if (c == GLAD_REPORT_PR) {
        o.xlabel = "recall"; o.ylabel = "precision"; o.legend_left = 1;
        snprintf(l1, sizeof l1, "image (AP %.1f)", 100 * m[GLAD_MET_I_AP]);
        snprintf(l2, sizeof l2, "pixel (AP %.1f)", 100 * m[GLAD_MET_P_AP]);
        if (g->ipr.n) s[ns++] = (glad_plot_series){g->ipr.x, g->ipr.y, g->ipr.n, l1, 0};
        if (g->ppr.n) s[ns++] = (glad_plot_series){g->ppr.x, g->ppr.y, g->ppr.n, l2, 1};
    } else {
        o.ylabel = "PRO"; o.vline = r->o.fpr_limit;
        snprintf(l1, sizeof l1, "PRO (AUPRO@%.2g %.1f)", r->o.fpr_limit, 100 * m[GLAD_MET_AUPRO]);
        s[ns++] = (glad_plot_series){g->pro.x, g->pro.y, g->pro.n, l1, 0};
    }
    char *title = glad_strfmt("%s %s", kind[c], g->row.name);
    if (!title) return glad_fail(GLAD_ENOMEM, "out of memory");
    o.title = title;
    int rc = glad_plot_lines_png_file(f, &o, s, ns);
    free(title);
    return rc < 0 ? glad_fail(rc, "plot: %s", glad_strerror(rc)) : 0;
}

char *glad_report_file_stem(const char *name)
{
    char *s = strdup(name);
    if (!s) return NULL;
    for (char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')) *p = '_';
    }
    return s;
}
