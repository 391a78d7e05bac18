/* roc.c - AUROC / AP / F1max exactly as scikit-learn (see roc.h), and the
 * decimating curve container. Not the pixel sweep (pro.c). */
#include "metrics/roc.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void glad_curve_init(glad_curve *c, double min_step)
{
    memset(c, 0, sizeof *c);
    c->min_step = min_step;
}

static int curve_append(glad_curve *c, double x, double y)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        double *nx = realloc(c->x, cap * sizeof *nx);
        if (!nx) return GLAD_ENOMEM;
        c->x = nx;
        double *ny = realloc(c->y, cap * sizeof *ny);
        if (!ny) return GLAD_ENOMEM;
        c->y = ny;
        c->cap = cap;
    }
    c->x[c->n] = x;
    c->y[c->n] = y;
    c->n++;
    return 0;
}

int glad_curve_push(glad_curve *c, double x, double y)
{
    c->px = x; c->py = y;
    if (c->n && c->min_step > 0 && fabs(x - c->x[c->n - 1]) < c->min_step && fabs(y - c->y[c->n - 1]) < c->min_step) {
        c->pending = 1;
        return 0;
    }
    c->pending = 0;
    return curve_append(c, x, y);
}

int glad_curve_finish(glad_curve *c)
{
    if (!c->pending) return 0;
    c->pending = 0;
    return curve_append(c, c->px, c->py);
}

void glad_curve_free(glad_curve *c)
{
    free(c->x);
    free(c->y);
    memset(c, 0, sizeof *c);
}

void glad_roc_acc_init(glad_roc_acc *a, uint64_t npos, uint64_t nneg, glad_curve *roc, glad_curve *pr)
{
    memset(a, 0, sizeof *a);
    a->npos = npos;
    a->nneg = nneg;
    a->roc = roc;
    a->pr = pr;
    if (roc) a->err |= glad_curve_push(roc, 0.0, 0.0);
}

int glad_roc_acc_points_(glad_roc_acc *a)
{
    int rc = 0;
    if (a->roc && a->npos && a->nneg)
        rc |= glad_curve_push(a->roc, (double)a->fp / (double)a->nneg, (double)a->tp / (double)a->npos);
    if (a->pr && a->npos && a->tp + a->fp)
        rc |= glad_curve_push(a->pr, (double)a->tp / (double)a->npos, (double)a->tp / (double)(a->tp + a->fp));
    return rc;
}

int glad_roc_acc_finish(glad_roc_acc *a, glad_roc_result *out)
{
    out->npos = a->npos;
    out->nneg = a->nneg;
    out->auroc = (a->npos && a->nneg) ? a->auc2 / (2.0 * (double)a->npos * (double)a->nneg) : NAN;
    out->ap = a->npos ? a->ap / (double)a->npos : NAN;
    out->f1max = a->npos ? a->f1max : NAN;
    if (a->roc) a->err |= glad_curve_finish(a->roc);
    if (a->pr) a->err |= glad_curve_finish(a->pr);
    return a->err ? GLAD_ENOMEM : 0;
}

typedef struct { double s; uint8_t l; } scored;

static int cmp_desc(const void *pa, const void *pb)
{
    double a = ((const scored *)pa)->s, b = ((const scored *)pb)->s;
    return (a < b) - (a > b);
}

int glad_roc_binary(const double *scores, const uint8_t *labels, size_t n, glad_roc_result *out,
                    glad_curve *roc, glad_curve *pr)
{
    size_t bytes;
    GLAD_TRY(glad_mul_size(n ? n : 1, sizeof(scored), &bytes));
    scored *v = malloc(bytes);
    if (!v) return GLAD_ENOMEM;
    uint64_t npos = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(scores[i])) { free(v); return GLAD_ENAN; }
        v[i].s = scores[i];
        v[i].l = labels[i] ? 1 : 0;
        npos += v[i].l;
    }
    qsort(v, n, sizeof *v, cmp_desc);
    glad_roc_acc a;
    glad_roc_acc_init(&a, npos, n - npos, roc, pr);
    for (size_t i = 0; i < n;) {
        uint64_t dtp = 0, dfp = 0;
        size_t j = i;
        /* one threshold = all samples with an equal score (== also merges -0 and +0) */
        for (; j < n && v[j].s == v[i].s; j++) { dtp += v[j].l; dfp += !v[j].l; }
        glad_roc_acc_step(&a, dtp, dfp);
        i = j;
    }
    free(v);
    return glad_roc_acc_finish(&a, out);
}
