/* calib.h - calibrated decisions: an image-score threshold and an
 * anomaly-map (pixel) threshold chosen on a validation set before the test
 * set is seen, the small JSON file that stores them with how they were
 * chosen, and their application to a record ('decision', 'pred_mask').
 * Also the per-image results line (one CSV line per record).
 * Not the threshold-free metrics (roc.h, pro.h) and not the report
 * (report.h, which takes a glad_thresholds to report P/R/F1/accuracy).
 * Nothing is printed; errors are a negative GLAD_E* code with
 * glad_error_detail() naming the record or the file and field.
 *
 * The decision rule everywhere: anomalous  <=>  value > threshold.
 *
 * Target FPR (method "target-fpr", default target 0.01): over the n normal
 * values sorted ascending v[0] <= ... <= v[n-1], with k = floor(target * n)
 * the number of false positives allowed, the threshold is v[n-1-k]: the
 * smallest t with  #{normal > t} / n <= target  (any smaller t lets the
 * (k+1)-th largest normal value through). Ties: values equal to t are not
 * flagged, so a tie at v[n-1-k] only lowers the achieved FPR below the
 * target. Target 0 gives the largest normal value (no normal flagged).
 * Tiny counts: with n < 1/target, k = 0 and the threshold is the largest
 * normal value (achieved FPR 0): the validation set cannot resolve a rate
 * below 1/n; the achieved rate is stored beside the target. One normal: its
 * value. All values equal: that value (FPR 0).
 *
 * Max F1 (method "max-f1"): over every cut between distinct values, the
 * one whose flagged set (values >= a distinct value v) has the largest
 * F1 = 2 TP / (TP + FP + P); the threshold is the next distinct value below
 * v (so "> t" flags exactly that set), or the next double below v when v is
 * the smallest value. Equal F1: the higher threshold wins (fewer flags).
 * Perfect separation: the largest normal value. Needs anomalous samples. */
#ifndef GLAD_METRICS_CALIB_H
#define GLAD_METRICS_CALIB_H

#include <stdint.h>
#include "core/glad.h"
#include "io/record.h"

typedef enum { GLAD_CALIB_TARGET_FPR, GLAD_CALIB_MAX_F1 } glad_calib_method;
extern const char *const glad_calib_method_names[];   /* "target-fpr", "max-f1", NULL */

/* Confusion counts and the figures derived from them; NAN where undefined
 * (FPR without negatives, TPR/recall without positives, precision without
 * flags, F1 when TP + FP + FN = 0, accuracy without samples). */
typedef struct {
    uint64_t tp, fp, tn, fn;
    double fpr, tpr, precision, f1, accuracy;   /* recall = tpr */
} glad_confusion;
/* Fill the derived figures from the counts. */
void glad_confusion_rates(glad_confusion *c);

/* The threshold by method m over the normal (neg) and anomalous (pos)
 * values; both arrays are sorted ascending in place. target_fpr in [0,1)
 * (target-fpr only). *at: the counts and figures at the threshold.
 * GLAD_EINVAL (no normal values for target-fpr, no anomalous values for
 * max-f1, target out of range), GLAD_ENAN (a NaN value). */
int glad_calib_choose(glad_calib_method m, double target_fpr, double *neg, size_t nneg,
                      double *pos, size_t npos, double *thr, glad_confusion *at);

/* The thresholds of a run, as stored in the JSON threshold file. */
typedef struct {
    glad_calib_method method;
    double target_fpr;          /* NAN for max-f1 */
    double image;               /* image-score threshold */
    int has_pixel;              /* the pixel threshold is set */
    double pixel;               /* anomaly-map threshold */
    uint64_t n_normal, n_anomalous;   /* validation records */
    uint64_t n_pixels;          /* validation pixels used (normal + anomalous) */
    glad_confusion img, pix;    /* validation figures at the thresholds */
    char *history_json;         /* provenance: a JSON array of {tool,version,args[,input]}; may be NULL */
} glad_thresholds;

void glad_thresholds_free(glad_thresholds *t);
/* Write t as JSON to path through lib/io/outfile (temporary + rename). */
int glad_thresholds_save(const glad_thresholds *t, const char *path);
/* Read and check a threshold file: GLAD_EIO (cannot read), GLAD_EFORMAT
 * with a detail naming the file and the field ("t.json: 'image_threshold'
 * missing", "... must be a finite number"). Only the thresholds, method,
 * target and counts are read back (figures and history are for people). */
int glad_thresholds_load(glad_thresholds *t, const char *path);

/* Apply t to a scored record: 'decision' (int 0/1, score > image threshold)
 * and, when t has a pixel threshold and the record an 'amap' ([1,H,W] or
 * [H,W]), 'pred_mask' (u8 [H,W], amap > pixel threshold). */
int glad_thresholds_apply(const glad_thresholds *t, glad_record *rec);

/* ---- choosing thresholds from a validation stream ---- */
typedef struct glad_calib glad_calib;
int glad_calib_new(glad_calib **c);
void glad_calib_free(glad_calib *c);
/* The provenance: each distinct header history is kept once. */
int glad_calib_add_header(glad_calib *c, const glad_record *header);
/* One validation record: 'label' 0/1 and 'score' (number, not NaN)
 * required; with an 'amap' its pixels join the pixel sets: every pixel of
 * a normal record, and the pixels of an anomalous one by its 'mask'
 * (binarised at half its maximum, same shape as the amap; an anomalous
 * record without a mask adds no pixels). */
int glad_calib_add(glad_calib *c, const glad_record *rec);
/* Thresholds by method m (target_fpr for target-fpr). The pixel threshold
 * is chosen by the same method when records had maps (max-f1 needs
 * anomalous pixels). Memory: 8 bytes per record and per map pixel kept
 * (1 M validation pixels = 8 MB). */
int glad_calib_compute(glad_calib *c, glad_calib_method m, double target_fpr, glad_thresholds *out);

/* ---- per-image results ---- */
/* "id,class,defect,label,score,decision,ads_step\n" */
extern const char glad_per_image_header[];
/* One record's line (malloc'd, ending in "\n"; NULL: no memory): the
 * decision from t (score > image threshold) when t is not NULL, else the
 * record's 'decision', else empty; ads_step empty when absent. Fields are
 * CSV-quoted when they hold a comma, quote, CR or LF. */
char *glad_per_image_line(const glad_record *rec, const glad_thresholds *t);

#endif
