/* calib.c - see calib.h: the two threshold rules, the validation
 * collector, the JSON threshold file, applying thresholds to a record and
 * the per-image CSV line. */
#include "metrics/calib.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"
#include "io/outfile.h"

const char *const glad_calib_method_names[] = {"target-fpr", "max-f1", NULL};
const char glad_per_image_header[] = "id,class,defect,label,score,decision,ads_step,score_global\n";

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : NAN; }

void glad_confusion_rates(glad_confusion *c)
{
    c->fpr = ratio(c->fp, c->fp + c->tn);
    c->tpr = ratio(c->tp, c->tp + c->fn);
    c->precision = ratio(c->tp, c->tp + c->fp);
    c->f1 = ratio(2 * c->tp, 2 * c->tp + c->fp + c->fn);   /* 2PR/(P+R) = 2TP/(2TP+FP+FN) */
    c->accuracy = ratio(c->tp + c->tn, c->tp + c->tn + c->fp + c->fn);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* #{v[i] > t} of an ascending array */
static size_t count_above(const double *v, size_t n, double t)
{
    size_t lo = 0, hi = n;   /* first index with v > t */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] > t) hi = mid; else lo = mid + 1;
    }
    return n - lo;
}

/* max-f1 over ascending neg and pos: walk the distinct values downwards */
static double max_f1_threshold(const double *neg, size_t nneg, const double *pos, size_t npos)
{
    size_t i = nneg, j = npos;      /* unvisited: neg[0..i), pos[0..j) */
    uint64_t tp = 0, fp = 0;
    double best = -1, thr = 0;
    while (i || j) {
        double v = !i ? pos[j - 1] : !j ? neg[i - 1] : fmax(neg[i - 1], pos[j - 1]);
        while (i && neg[i - 1] == v) { i--; fp++; }
        while (j && pos[j - 1] == v) { j--; tp++; }
        double f1 = 2.0 * (double)tp / (double)(tp + fp + npos);
        if (f1 > best) {
            best = f1;
            /* the next distinct value below v, so "> thr" flags exactly the values >= v */
            thr = !i && !j ? nextafter(v, -HUGE_VAL) : !i ? pos[j - 1] : !j ? neg[i - 1] : fmax(neg[i - 1], pos[j - 1]);
        }
    }
    return thr;
}

int glad_calib_choose(glad_calib_method m, double target_fpr, double *neg, size_t nneg,
                      double *pos, size_t npos, double *thr, glad_confusion *at)
{
    for (size_t i = 0; i < nneg; i++) if (isnan(neg[i])) return glad_fail(GLAD_ENAN, "calibration: a normal value is NaN");
    for (size_t i = 0; i < npos; i++) if (isnan(pos[i])) return glad_fail(GLAD_ENAN, "calibration: an anomalous value is NaN");
    if (m == GLAD_CALIB_TARGET_FPR) {
        if (!(target_fpr >= 0 && target_fpr < 1)) return glad_fail(GLAD_EINVAL, "calibration: target FPR %g not in [0,1)", target_fpr);
        if (!nneg) return glad_fail(GLAD_EINVAL, "calibration: no normal values (a target FPR needs normal samples)");
    } else if (m == GLAD_CALIB_MAX_F1) {
        if (!npos) return glad_fail(GLAD_EINVAL, "calibration: no anomalous values (max F1 needs anomalous samples)");
    } else return glad_fail(GLAD_EINVAL, "calibration: unknown method %d", (int)m);
    if (nneg) qsort(neg, nneg, sizeof *neg, cmp_dbl);
    if (npos) qsort(pos, npos, sizeof *pos, cmp_dbl);
    if (m == GLAD_CALIB_TARGET_FPR) {
        /* k false positives allowed; the 1e-9 keeps e.g. 0.07 * 100 = 7.000000000000001
         * and 0.29 * 100 = 28.999999999999996 at the count the user meant */
        size_t k = (size_t)floor(target_fpr * (double)nneg + 1e-9);
        if (k > nneg - 1) k = nneg - 1;
        *thr = neg[nneg - 1 - k];
    } else *thr = max_f1_threshold(neg, nneg, pos, npos);
    glad_confusion c = {0};
    c.fp = count_above(neg, nneg, *thr);
    c.tn = nneg - c.fp;
    c.tp = count_above(pos, npos, *thr);
    c.fn = npos - c.tp;
    glad_confusion_rates(&c);
    *at = c;
    return 0;
}

/* ---- growing arrays of doubles ---- */
typedef struct { double *v; size_t n, cap; } dvec;

static int dvec_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        if (cap > GLAD_MAX_ALLOC / sizeof *d->v) return glad_fail(GLAD_ENOMEM, "calibration: too many values");
        double *q = realloc(d->v, cap * sizeof *q);
        if (!q) return glad_fail(GLAD_ENOMEM, "out of memory");
        d->v = q; d->cap = cap;
    }
    d->v[d->n++] = x;
    return 0;
}

/* ---- the collector ---- */
struct glad_calib {
    dvec ineg, ipos, pneg, ppos;
    long with_amap;
    glad_history *hist;
    int nhist, histcap;
};

int glad_calib_new(glad_calib **c)
{
    *c = calloc(1, sizeof **c);
    return *c ? 0 : glad_fail(GLAD_ENOMEM, "out of memory");
}

void glad_calib_free(glad_calib *c)
{
    if (!c) return;
    free(c->ineg.v); free(c->ipos.v); free(c->pneg.v); free(c->ppos.v);
    for (int k = 0; k < c->nhist; k++) glad_history_free(&c->hist[k]);
    free(c->hist);
    free(c);
}

int glad_calib_add_header(glad_calib *c, const glad_record *header)
{
    return glad_history_collect(&c->hist, &c->nhist, &c->histcap, header);
}

/* 'label' 0/1 and 'score' as the report reads them */
static int label_score(const glad_record *x, const char *id, int *label, double *score)
{
    int64_t l;
    int e = glad_record_get_int(x, "label", &l);
    if (e == GLAD_ENOTFOUND) return glad_fail(GLAD_ENOTFOUND, "record '%s': 'label' missing", id);
    if (e < 0 || (l != 0 && l != 1)) return glad_fail(GLAD_EFORMAT, "record '%s': 'label' must be 0 or 1", id);
    const glad_tensor *st;
    e = glad_record_get_f64(x, "score", score);
    if (e == GLAD_EDTYPE && glad_record_get_tensor(x, "score", &st) == 0 && glad_tensor_numel(st) == 1)
        e = glad_tensor_to_f64(st, score);
    if (e == GLAD_ENOTFOUND) return glad_fail(GLAD_ENOTFOUND, "record '%s': 'score' missing", id);
    if (e < 0) return glad_fail(GLAD_EFORMAT, "record '%s': 'score' must be a number", id);
    if (isnan(*score)) return glad_fail(GLAD_ENAN, "record '%s': 'score' is NaN", id);
    *label = (int)l;
    return 0;
}

/* [1,H,W] or [H,W] -> h, w */
static int plane(const glad_tensor *t, int *h, int *w)
{
    if (!(t->ndim == 2 || (t->ndim == 3 && t->shape[0] == 1))) return GLAD_ESHAPE;
    int k = t->ndim - 2;
    if (t->shape[k] <= 0 || t->shape[k + 1] <= 0 || t->shape[k] > INT32_MAX || t->shape[k + 1] > INT32_MAX) return GLAD_ESHAPE;
    *h = (int)t->shape[k]; *w = (int)t->shape[k + 1];
    return 0;
}

/* A plane tensor as floats (malloc'd), checked finite. */
static int plane_f32(const glad_tensor *t, const char *id, const char *key, float **out, int *h, int *w)
{
    *out = NULL;
    if (plane(t, h, w) < 0) return glad_fail(GLAD_ESHAPE, "record '%s': '%s' must have shape [1,H,W] or [H,W]", id, key);
    size_t n = (size_t)*h * (size_t)*w;
    float *v = malloc(n * sizeof *v);
    if (!v) return glad_fail(GLAD_ENOMEM, "out of memory");
    if (glad_tensor_to_f32(t, v) < 0) { free(v); return glad_fail(GLAD_EDTYPE, "record '%s': '%s' has an unsupported dtype", id, key); }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) { free(v); return glad_fail(GLAD_ENAN, "record '%s': '%s' contains NaN or infinity", id, key); }
    *out = v;
    return 0;
}

int glad_calib_add(glad_calib *c, const glad_record *x)
{
    const char *id = glad_record_id(x);
    int label = 0;
    double score = 0;
    GLAD_TRY(label_score(x, id, &label, &score));
    GLAD_TRY(dvec_push(label ? &c->ipos : &c->ineg, score));
    const glad_tensor *am, *mk;
    if (glad_record_get_tensor(x, "amap", &am) < 0) {
        if (glad_record_find(x, "amap")) return glad_fail(GLAD_EDTYPE, "record '%s': 'amap' is not a tensor", id);
        return 0;
    }
    c->with_amap++;
    int have_mask = glad_record_get_tensor(x, "mask", &mk) == 0;
    if (label && !have_mask) return 0;   /* which pixels are normal is unknown */
    float *map = NULL, *m = NULL;
    int h, w, mh, mw, rc;
    GLAD_TRYG(rc, plane_f32(am, id, "amap", &map, &h, &w), out);
    if (have_mask) {
        GLAD_TRYG(rc, plane_f32(mk, id, "mask", &m, &mh, &mw), out);
        if (mh != h || mw != w) { rc = glad_fail(GLAD_ESHAPE, "record '%s': 'mask' shape %dx%d differs from the amap's %dx%d", id, mh, mw, h, w); goto out; }
    }
    size_t n = (size_t)h * (size_t)w;
    float mx = 0;
    for (size_t i = 0; m && i < n; i++) if (m[i] > mx) mx = m[i];
    for (size_t i = 0; i < n; i++) {
        int pos = m && mx > 0 && m[i] * 2 >= mx;   /* binarised at half the maximum, as the report */
        GLAD_TRYG(rc, dvec_push(pos ? &c->ppos : &c->pneg, map[i]), out);
    }
    rc = 0;
out:
    free(map); free(m);
    return rc;
}

/* ---- a small string builder ---- */
typedef struct { char *s; size_t n, cap; int err; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->err) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->s, cap);
        if (!q) { b->err = 1; return; }
        b->s = q; b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

#define sb_lit(b, lit) sb_put((b), (lit), sizeof(lit) - 1)

/* takes a glad_strfmt result */
static void sb_own(sbuf *b, char *s)
{
    if (!s) { b->err = 1; return; }
    sb_put(b, s, strlen(s));
    free(s);
}

static void sb_json_str(sbuf *b, const char *s)
{
    size_t n = glad_json_escape(NULL, 0, s);
    char *q = malloc(n + 1);
    if (!q) { b->err = 1; return; }
    glad_json_escape(q, n + 1, s);
    sb_put(b, q, n);
    free(q);
}

static void sb_num(sbuf *b, double v)
{
    if (!isfinite(v)) sb_lit(b, "null");
    else sb_own(b, glad_strfmt("%.17g", v));
}

static char *history_json(const glad_calib *c)
{
    sbuf b = {0};
    sb_lit(&b, "[");
    int k2 = 0;
    for (int k = 0; k < c->nhist; k++)
        for (int i = 0; i < c->hist[k].n; i++) {
            if (k2++) sb_lit(&b, ",");
            sb_lit(&b, "{\"tool\":");
            sb_json_str(&b, c->hist[k].tool[i]);
            sb_lit(&b, ",\"version\":");
            sb_json_str(&b, c->hist[k].version[i] ? c->hist[k].version[i] : "");
            sb_lit(&b, ",\"args\":");
            sb_json_str(&b, c->hist[k].args[i] ? c->hist[k].args[i] : "");
            if (c->nhist > 1) sb_own(&b, glad_strfmt(",\"input\":%d", k + 1));
            sb_lit(&b, "}");
        }
    sb_lit(&b, "]");
    if (b.err) { free(b.s); return NULL; }
    return b.s;
}

int glad_calib_compute(glad_calib *c, glad_calib_method m, double target_fpr, glad_thresholds *out)
{
    memset(out, 0, sizeof *out);
    out->method = m;
    out->target_fpr = m == GLAD_CALIB_TARGET_FPR ? target_fpr : NAN;
    out->n_normal = c->ineg.n;
    out->n_anomalous = c->ipos.n;
    out->pixel = NAN;
    if (!c->ineg.n && !c->ipos.n) return glad_fail(GLAD_EINVAL, "calibration: no records");
    if (m == GLAD_CALIB_TARGET_FPR && !c->ineg.n) return glad_fail(GLAD_EINVAL, "calibration: no normal records (label 0): a target FPR needs them");
    if (m == GLAD_CALIB_MAX_F1 && !c->ipos.n)
        return glad_fail(GLAD_EINVAL, "calibration: no anomalous records (label 1): max F1 needs them (add synthetic anomalies, or use a target FPR)");
    GLAD_TRY(glad_calib_choose(m, target_fpr, c->ineg.v, c->ineg.n, c->ipos.v, c->ipos.n, &out->image, &out->img));
    if (c->with_amap) {
        if (m == GLAD_CALIB_TARGET_FPR && !c->pneg.n) return glad_fail(GLAD_EINVAL, "calibration: no normal pixels in the maps");
        if (m == GLAD_CALIB_MAX_F1 && !c->ppos.n)
            return glad_fail(GLAD_EINVAL, "calibration: no anomalous pixels in the masks: max F1 over pixels needs them");
        GLAD_TRY(glad_calib_choose(m, target_fpr, c->pneg.v, c->pneg.n, c->ppos.v, c->ppos.n, &out->pixel, &out->pix));
        out->has_pixel = 1;
        out->n_pixels = c->pneg.n + c->ppos.n;
    }
    if (!(out->history_json = history_json(c))) return glad_fail(GLAD_ENOMEM, "out of memory");
    return 0;
}

void glad_thresholds_free(glad_thresholds *t)
{
    if (!t) return;
    free(t->history_json);
    t->history_json = NULL;
}

/* key: the quoted key with its leading comma when not first */
static void sb_confusion(sbuf *b, const char *key, const glad_confusion *c)
{
    sb_own(b, glad_strfmt("%s:{\"tp\":%llu,\"fp\":%llu,\"tn\":%llu,\"fn\":%llu,\"fpr\":", key,
                          (unsigned long long)c->tp, (unsigned long long)c->fp, (unsigned long long)c->tn, (unsigned long long)c->fn));
    sb_num(b, c->fpr);
    sb_lit(b, ",\"tpr\":"); sb_num(b, c->tpr);
    sb_lit(b, ",\"precision\":"); sb_num(b, c->precision);
    sb_lit(b, ",\"f1\":"); sb_num(b, c->f1);
    sb_lit(b, ",\"accuracy\":"); sb_num(b, c->accuracy);
    sb_lit(b, "}");
}

int glad_thresholds_save(const glad_thresholds *t, const char *path)
{
    sbuf b = {0};
    sb_lit(&b, "{\"glad_thresholds\":1,\"method\":");
    sb_json_str(&b, glad_calib_method_names[t->method == GLAD_CALIB_MAX_F1]);
    sb_lit(&b, ",\n \"target_fpr\":"); sb_num(&b, t->target_fpr);
    sb_lit(&b, ",\n \"image_threshold\":"); sb_num(&b, t->image);
    sb_lit(&b, ",\n \"pixel_threshold\":"); sb_num(&b, t->has_pixel ? t->pixel : NAN);
    sb_own(&b, glad_strfmt(",\n \"counts\":{\"normal\":%llu,\"anomalous\":%llu,\"pixels\":%llu}",
                           (unsigned long long)t->n_normal, (unsigned long long)t->n_anomalous, (unsigned long long)t->n_pixels));
    sb_lit(&b, ",\n \"validation\":{");
    sb_confusion(&b, "\"image\"", &t->img);
    if (t->has_pixel) sb_confusion(&b, ",\"pixel\"", &t->pix);
    sb_lit(&b, "},\n \"history\":");
    if (t->history_json) sb_put(&b, t->history_json, strlen(t->history_json));
    else sb_lit(&b, "[]");
    sb_lit(&b, "}\n");
    if (b.err) { free(b.s); return glad_fail(GLAD_ENOMEM, "out of memory"); }
    glad_outfile *of;
    int rc = glad_outfile_open(&of, path, 0);
    if (rc == 0) {
        glad_outfile_write(of, b.s, b.n);
        rc = glad_outfile_commit(of);
    }
    free(b.s);
    return rc;
}

/* ---- reading a threshold file ---- */
#define THR_MAX_BYTES ((size_t)1 << 20)

static int read_small_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return glad_fail(GLAD_EIO, "%s: cannot read", path);
    char *buf = malloc(THR_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, THR_MAX_BYTES + 1, f) : 0;
    int bad = !buf ? GLAD_ENOMEM : ferror(f) ? GLAD_EIO : n > THR_MAX_BYTES ? GLAD_EFORMAT : 0;
    fclose(f);
    if (bad) {
        free(buf);
        return bad == GLAD_ENOMEM ? glad_fail(bad, "out of memory") : bad == GLAD_EIO ? glad_fail(bad, "%s: read error", path)
                                  : glad_fail(bad, "%s: larger than 1 MiB: not a threshold file", path);
    }
    buf[n] = 0;
    *out = buf; *len = n;
    return 0;
}

/* a finite number field: 0, 1 = absent or null (when allowed), or the error */
static int num_field(const glad_json *j, const char *path, const char *key, int optional, double *v)
{
    const glad_json *x = glad_json_get(j, key);
    if (!x || x->type == GLAD_JSON_NULL) {
        if (optional) return 1;
        return glad_fail(GLAD_EFORMAT, "%s: '%s' %s", path, key, x ? "is null" : "missing");
    }
    if (x->type != GLAD_JSON_NUM || !isfinite(x->num)) return glad_fail(GLAD_EFORMAT, "%s: '%s' must be a finite number", path, key);
    *v = x->num;
    return 0;
}

static int count_field(const glad_json *counts, const char *path, const char *key, uint64_t *v)
{
    const glad_json *x = counts ? glad_json_get(counts, key) : NULL;
    if (!x) return 0;
    if (x->type != GLAD_JSON_NUM || !(x->num >= 0 && x->num <= 9007199254740992.0) || x->num != floor(x->num))
        return glad_fail(GLAD_EFORMAT, "%s: 'counts.%s' must be a non-negative integer", path, key);
    *v = (uint64_t)x->num;
    return 0;
}

int glad_thresholds_load(glad_thresholds *t, const char *path)
{
    memset(t, 0, sizeof *t);
    t->target_fpr = t->pixel = NAN;
    char *buf = NULL;
    size_t len = 0;
    GLAD_TRY(read_small_file(path, &buf, &len));
    glad_json *j = NULL;
    int rc = glad_json_parse(buf, len, &j);
    free(buf);
    if (rc < 0 || j->type != GLAD_JSON_OBJ) {
        glad_json_free(j);
        return glad_fail(GLAD_EFORMAT, "%s: not a JSON object (a threshold file is written by glad-auroc --calibrate)", path);
    }
    const glad_json *x = glad_json_get(j, "glad_thresholds");
    const char *meth = glad_json_str(glad_json_get(j, "method"), NULL);
    const glad_json *counts = glad_json_get(j, "counts");
    double v = 0;
    int k;
    if (!x) { rc = glad_fail(GLAD_EFORMAT, "%s: 'glad_thresholds' missing (not a threshold file written by glad-auroc --calibrate)", path); goto out; }
    if (x->type != GLAD_JSON_NUM || x->num != 1) { rc = glad_fail(GLAD_EFORMAT, "%s: 'glad_thresholds' must be 1 (version of the format)", path); goto out; }
    if (!meth) { rc = glad_fail(GLAD_EFORMAT, "%s: 'method' %s", path, glad_json_get(j, "method") ? "must be a string" : "missing"); goto out; }
    for (k = 0; glad_calib_method_names[k] && strcmp(glad_calib_method_names[k], meth); k++) {}
    if (!glad_calib_method_names[k]) { rc = glad_fail(GLAD_EFORMAT, "%s: 'method' must be target-fpr or max-f1, not '%s'", path, meth); goto out; }
    t->method = (glad_calib_method)k;
    if ((rc = num_field(j, path, "target_fpr", t->method == GLAD_CALIB_MAX_F1, &v)) < 0) goto out;
    if (rc == 0) {
        if (!(v >= 0 && v < 1)) { rc = glad_fail(GLAD_EFORMAT, "%s: 'target_fpr' must be in [0,1)", path); goto out; }
        t->target_fpr = v;
    }
    if ((rc = num_field(j, path, "image_threshold", 0, &t->image)) < 0) goto out;
    if ((rc = num_field(j, path, "pixel_threshold", 1, &t->pixel)) < 0) goto out;
    t->has_pixel = rc == 0;
    if (counts && counts->type != GLAD_JSON_OBJ) { rc = glad_fail(GLAD_EFORMAT, "%s: 'counts' must be an object", path); goto out; }
    if ((rc = count_field(counts, path, "normal", &t->n_normal)) < 0 || (rc = count_field(counts, path, "anomalous", &t->n_anomalous)) < 0 ||
        (rc = count_field(counts, path, "pixels", &t->n_pixels)) < 0) goto out;
    rc = 0;
out:
    glad_json_free(j);
    return rc;
}

/* ---- applying thresholds ---- */
int glad_thresholds_apply(const glad_thresholds *t, glad_record *x)
{
    const char *id = glad_record_id(x);
    double score;
    const glad_tensor *st, *am;
    int e = glad_record_get_f64(x, "score", &score);
    if (e == GLAD_EDTYPE && glad_record_get_tensor(x, "score", &st) == 0 && glad_tensor_numel(st) == 1)
        e = glad_tensor_to_f64(st, &score);
    if (e == GLAD_ENOTFOUND) return glad_fail(GLAD_ENOTFOUND, "record '%s': 'score' missing", id);
    if (e < 0) return glad_fail(GLAD_EFORMAT, "record '%s': 'score' must be a number", id);
    if (isnan(score)) return glad_fail(GLAD_ENAN, "record '%s': 'score' is NaN", id);
    if (glad_record_set_int(x, "decision", score > t->image) < 0) return glad_fail(GLAD_ENOMEM, "out of memory");
    if (!t->has_pixel || glad_record_get_tensor(x, "amap", &am) < 0) return 0;
    float *map;
    int h, w;
    GLAD_TRY(plane_f32(am, id, "amap", &map, &h, &w));
    glad_tensor pm = {0};
    int64_t shp[2] = {h, w};
    int rc = glad_tensor_alloc(&pm, GLAD_DT_U8, 2, shp);
    if (rc == 0) {
        uint8_t *p = pm.data;
        for (size_t i = 0, n = (size_t)h * (size_t)w; i < n; i++) p[i] = map[i] > t->pixel;
        rc = glad_record_set_tensor(x, "pred_mask", &pm);
    }
    glad_tensor_free(&pm);
    free(map);
    return rc < 0 ? glad_fail(rc, "record '%s': 'pred_mask': %s", id, glad_strerror(rc)) : 0;
}

/* ---- per-image line ---- */
static void sb_csv(sbuf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) { sb_put(b, s, strlen(s)); return; }
    sb_lit(b, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"') sb_lit(b, "\"");
        sb_put(b, p, 1);
    }
    sb_lit(b, "\"");
}

char *glad_per_image_line(const glad_record *x, const glad_thresholds *t)
{
    sbuf b = {0};
    const char *s;
    int64_t v;
    double score = NAN;
    const glad_tensor *st;
    sb_csv(&b, glad_record_id(x));
    sb_lit(&b, ",");
    sb_csv(&b, glad_record_get_str(x, "class", &s) == 0 ? s : "");
    sb_lit(&b, ",");
    sb_csv(&b, glad_record_get_str(x, "defect", &s) == 0 ? s : "");
    sb_lit(&b, ",");
    if (glad_record_get_int(x, "label", &v) == 0) sb_own(&b, glad_strfmt("%lld", (long long)v));
    sb_lit(&b, ",");
    int e = glad_record_get_f64(x, "score", &score);
    if (e == GLAD_EDTYPE && glad_record_get_tensor(x, "score", &st) == 0 && glad_tensor_numel(st) == 1)
        e = glad_tensor_to_f64(st, &score);
    if (e == 0 && !isnan(score)) sb_own(&b, glad_strfmt("%.17g", score));
    sb_lit(&b, ",");
    if (t && e == 0 && !isnan(score)) sb_put(&b, score > t->image ? "1" : "0", 1);
    else if (!t && glad_record_get_int(x, "decision", &v) == 0) sb_own(&b, glad_strfmt("%lld", (long long)v));
    sb_lit(&b, ",");
    if (glad_record_get_int(x, "ads_step", &v) == 0) sb_own(&b, glad_strfmt("%lld", (long long)v));
    sb_lit(&b, ",");
    double g;   /* glad-score --bank with whole-image Gaussians (bank.h) */
    if (glad_record_get_f64(x, "score_global", &g) == 0 && isfinite(g)) sb_own(&b, glad_strfmt("%.17g", g));
    sb_lit(&b, "\n");
    if (b.err) { free(b.s); return NULL; }
    return b.s;
}
