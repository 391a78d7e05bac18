/* roc.h - binary-classification ranking metrics exactly as scikit-learn
 * defines them: AUROC (roc_auc_score, ties count one half), AP
 * (average_precision_score: sum over distinct thresholds of dRecall *
 * Precision) and F1max (max over the thresholds of precision_recall_curve of
 * 2PR/(P+R), finite values only). Samples are sorted once by score
 * (descending) and equal scores form one threshold group.
 * The accumulator (glad_roc_acc) is fed those groups; it is shared by the
 * image-level metrics (glad_roc_binary) and the pixel-level sweep in pro.h.
 * Not a plotting or I/O module; curves are returned as point lists. */
#ifndef GLAD_METRICS_ROC_H
#define GLAD_METRICS_ROC_H

#include <stdint.h>
#include "core/glad.h"

/* A polyline (x[i], y[i]). With min_step > 0 a pushed point is kept only
 * when it moved by >= min_step in x or y from the last kept point (the last
 * point is always kept by glad_curve_finish), so a 100 M pixel sweep gives a
 * plottable curve. The metrics never use the decimated curve. */
typedef struct {
    double *x, *y;
    size_t n, cap;
    double min_step;
    double px, py;   /* last pushed point (kept or not) */
    int pending;     /* last pushed point was not kept */
} glad_curve;

void glad_curve_init(glad_curve *c, double min_step);
int glad_curve_push(glad_curve *c, double x, double y);
int glad_curve_finish(glad_curve *c);
void glad_curve_free(glad_curve *c);

/* Metrics; NAN when undefined (AUROC needs both classes, AP and F1max need
 * at least one positive). */
typedef struct {
    double auroc, ap, f1max;
    uint64_t npos, nneg;
} glad_roc_result;

typedef struct {
    uint64_t npos, nneg;  /* totals */
    uint64_t tp, fp;      /* running counts at the current threshold */
    double auc2;          /* sum over groups of dFP * (TP_prev + TP): 2 * area * P * N */
    double ap;            /* sum over groups of dTP * precision (divided by P at the end) */
    double f1max;
    glad_curve *roc, *pr; /* optional: (FPR,TPR) and (recall,precision) */
    int err;
} glad_roc_acc;

void glad_roc_acc_init(glad_roc_acc *a, uint64_t npos, uint64_t nneg, glad_curve *roc, glad_curve *pr);
/* One threshold group (all samples with one score value), in descending
 * score order: dtp positives and dfp negatives. */
static inline void glad_roc_acc_step(glad_roc_acc *a, uint64_t dtp, uint64_t dfp);
int glad_roc_acc_finish(glad_roc_acc *a, glad_roc_result *out);   /* 0 or GLAD_ENOMEM (curves) */

/* Image-level convenience: sorts a copy. labels are 0/1. NaN scores give
 * GLAD_ENAN. roc/pr may be NULL. */
int glad_roc_binary(const double *scores, const uint8_t *labels, size_t n, glad_roc_result *out,
                    glad_curve *roc, glad_curve *pr);

/* ---- inline step (hot loop of the pixel sweep) ---- */
int glad_roc_acc_points_(glad_roc_acc *a);
static inline void glad_roc_acc_step(glad_roc_acc *a, uint64_t dtp, uint64_t dfp)
{
    uint64_t tp0 = a->tp;
    a->tp += dtp;
    a->fp += dfp;
    /* trapezoid in count units: dFP * (TP_prev + TP) / 2, the /2 at the end.
     * Each term and the total are < 2 P N <= 2^53 for P + N <= 1.3e8, so exact. */
    if (dfp) a->auc2 += (double)dfp * (double)(tp0 + a->tp);
    if (dtp) {
        double prec = (double)a->tp / (double)(a->tp + a->fp);
        a->ap += (double)dtp * prec;
    }
    if (a->tp) {
        /* 2PR/(P+R) with P = tp/(tp+fp), R = tp/npos  =  2 tp / (tp + fp + npos) */
        double f1 = 2.0 * (double)a->tp / (double)(a->tp + a->fp + a->npos);
        if (f1 > a->f1max) a->f1max = f1;
    }
    if (a->roc || a->pr) a->err |= glad_roc_acc_points_(a);
}

#endif
