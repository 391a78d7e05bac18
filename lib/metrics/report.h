/* report.h - the evaluation report of scored records, as glad-auroc prints
 * it: each record's label, score, class, defect and (optional) amap + mask
 * are checked and kept; the records are grouped into rows (one per class,
 * per class and defect, or one for everything), every row gets its image
 * metrics (roc.h) and pixel metrics (pro.h), the rows their mean, and the
 * report is written as an aligned table, markdown, CSV or JSON, with the
 * pipeline history of the input headers, and each row's ROC / PR / PRO
 * curves as CSV or a PNG plot.
 * Not a stream reader and not a file manager: the caller feeds headers and
 * records, and gives the FILE* or the path every writer writes to. Nothing
 * is printed: warnings (undefined metrics, partial means) are kept as
 * strings for the caller.
 * Errors: a negative GLAD_E* code with glad_error_detail() naming the
 * record and field as the programs print it, e.g.
 * "record 'bottle/003': 'label' missing".
 * Decisions at a calibrated threshold (opts.thr, or the records' 'decision'
 * and 'pred_mask') add precision, recall, F1 and accuracy per row. */
#ifndef GLAD_METRICS_REPORT_H
#define GLAD_METRICS_REPORT_H

#include <stdio.h>
#include "core/glad.h"
#include "io/record.h"
#include "metrics/calib.h"
#include "metrics/pro.h"

/* Rows: per class (records without 'class' are "unknown"), per class and
 * defect (the normal records of the class with the anomalous records of one
 * defect; a class without anomalies keeps a row of its own), or one row
 * named "all". */
typedef enum { GLAD_REPORT_BY_CLASS, GLAD_REPORT_BY_DEFECT, GLAD_REPORT_BY_NONE } glad_report_by;
extern const char *const glad_report_by_names[];      /* "class", "defect", "none", NULL */

/* Output formats; GLAD_REPORT_MD is another name of GLAD_REPORT_MARKDOWN. */
typedef enum { GLAD_REPORT_TABLE, GLAD_REPORT_MARKDOWN, GLAD_REPORT_CSV, GLAD_REPORT_JSON, GLAD_REPORT_MD } glad_report_format;
extern const char *const glad_report_format_names[];  /* "table", "markdown", "csv", "json", "md", NULL */

/* The metrics of a row, in column order. */
enum { GLAD_MET_I_AUROC, GLAD_MET_I_AP, GLAD_MET_I_F1MAX, GLAD_MET_P_AUROC, GLAD_MET_P_AP,
       GLAD_MET_P_F1MAX, GLAD_MET_AUPRO, GLAD_MET_PRO_COMPAT, GLAD_NMET };
extern const char *const glad_metric_headers[];   /* "I-AUROC", ... "PRO-compat" (table columns) */
extern const char *const glad_metric_keys[];      /* "i_auroc", ... "pro_compat" (CSV/JSON keys) */

/* Figures at a calibrated threshold (calib.h), in column order: image then
 * pixel precision, recall, F1 and accuracy from the summed confusion counts
 * of the row's records (pixels: of every image of the row). */
enum { GLAD_DEC_I_PREC, GLAD_DEC_I_REC, GLAD_DEC_I_F1, GLAD_DEC_I_ACC,
       GLAD_DEC_P_PREC, GLAD_DEC_P_REC, GLAD_DEC_P_F1, GLAD_DEC_P_ACC, GLAD_NDEC };
extern const char *const glad_dec_headers[];   /* "I-Prec", ... "P-Acc" */
extern const char *const glad_dec_keys[];      /* "i_precision", ... "p_accuracy" */

/* Curves of a row; the names are the file-name suffixes ("roc", "pr", "pro"). */
typedef enum { GLAD_REPORT_ROC, GLAD_REPORT_PR, GLAD_REPORT_PRO } glad_report_curve;
extern const char *const glad_report_curve_names[];   /* "roc", "pr", "pro", NULL */

typedef struct {
    glad_report_by by;
    int pixel_size;     /* 0: maps and masks as given (same shape); N: resample both to NxN */
    double fpr_limit;   /* PRO integration limit; 0 = 0.3 */
    int curves;         /* keep each row's curves (pixel curves thinned to steps of 1e-3) */
    /* Decisions: with thr, decision = score > thr->image and, when thr has a
     * pixel threshold, pred = amap > thr->pixel (after --pixel-size
     * resampling). Without thr, the records' own 'decision' (0/1) and
     * 'pred_mask' (nonzero = anomalous, the amap's shape) when every record
     * has them. Not owned; must outlive the report. */
    const glad_thresholds *thr;
} glad_report_opts;

typedef struct {
    char *name;               /* "bottle", "bottle/crack", "all" */
    long n, nanom;            /* records, anomalous records */
    double m[GLAD_NMET];      /* NAN = undefined */
    int has_pix;              /* pixel metrics computed (pm valid) */
    glad_pix_metrics pm;
    int has_dec, has_pdec;    /* image / pixel decisions: ic / pc and d valid */
    glad_confusion ic, pc;    /* confusion counts at the threshold */
    double d[GLAD_NDEC];      /* NAN = undefined or no decisions */
} glad_report_row;

typedef struct glad_report glad_report;

int glad_report_new(glad_report **rep, const glad_report_opts *o);
void glad_report_free(glad_report *rep);

/* The history of a stream header; each distinct history is kept once (the
 * shards of one run share theirs). A header without history adds nothing. */
int glad_report_add_header(glad_report *rep, const glad_record *header);

/* One record. Checks: a unique id (records with id "?" are not checked),
 * 'label' 0/1, 'score' a number or one-element tensor and not NaN, and when
 * 'amap' is present: shape [1,H,W] or [H,W], finite, and a 'mask' of the
 * same shape (or any shape with pixel_size) unless the record is normal; the
 * mask is binarised at half its maximum. GLAD_EFORMAT, GLAD_ENOTFOUND,
 * GLAD_ESHAPE, GLAD_EDTYPE or GLAD_ENAN with the detail naming the record. */
int glad_report_add(glad_report *rep, const glad_record *rec);

/* After the last record: the rows (sorted by name), their metrics (rows in
 * parallel), the mean row and the warnings. Fails when there is no record,
 * or when only some records have an 'amap'. Warnings made before a failure
 * are kept. Call once. */
int glad_report_eval(glad_report *rep);

int glad_report_nrows(const glad_report *rep);
const glad_report_row *glad_report_row_at(const glad_report *rep, int i);
/* Mean over the rows of each metric where it is defined (NAN where none is). */
const double *glad_report_mean(const glad_report *rep);
/* The same for the decision figures (GLAD_NDEC values). */
const double *glad_report_dec_mean(const glad_report *rep);
/* How many decision columns are shown: 0, 4 (image) or 8 (image and pixel). */
int glad_report_ndec(const glad_report *rep);
/* Warnings in the order they arose, e.g. "bottle: no anomalous records:
 * image metrics undefined (n/a)". */
int glad_report_nwarnings(const glad_report *rep);
const char *glad_report_warning(const glad_report *rep, int i);

/* The evaluated report in one format: table and markdown in percent with
 * one decimal and the pipeline history under them; CSV and JSON as
 * fractions in full precision (%.17g), undefined as empty / null. With
 * decisions, their columns follow the metrics (and the thresholds are
 * named under the table, as "image_threshold" / "pixel_threshold" in JSON).
 * 0 or GLAD_EIO when f has an error. */
int glad_report_write(const glad_report *rep, glad_report_format fmt, FILE *f);

/* Does row i have curve c (opts.curves set; PRO only with pixel metrics)? */
int glad_report_has_curve(const glad_report *rep, int i, glad_report_curve c);
/* Curve c of row i as CSV: "level,fpr,tpr" / "level,recall,precision"
 * (image then pixel points) or "fpr,pro"; %.9g. GLAD_EINVAL without it. */
int glad_report_curve_csv(const glad_report *rep, int i, glad_report_curve c, FILE *f);
/* Curve c of row i plotted (plot.h) as a 640x480 PNG written to f: ROC
 * and PR with the image curve solid and the pixel curve dashed, PRO with a
 * marker at the FPR limit; the legends give the metrics in percent. */
int glad_report_curve_png(const glad_report *rep, int i, glad_report_curve c, FILE *f);
/* A row name as a file-name stem: characters other than [A-Za-z0-9._-]
 * become '_' ("bottle/crack" -> "bottle_crack"). malloc'd; NULL: no memory. */
char *glad_report_file_stem(const char *name);

#endif
