/* test_report.c - lib/metrics/report: record checks (errors name the record
 * and field), rows per class / defect / none sorted by name, metrics equal
 * to roc.h on the same subsets, the mean and its warnings, the four table
 * formats, history, curves, order independence. */
#include "check.h"
#include "core/glad.h"
#include "metrics/report.h"
#include "metrics/roc.h"

/* ---- record builders ---- */
static void rec_basic(glad_record *r, const char *id, const char *cls, const char *def, int label, double score)
{
    glad_record_init(r);
    if (id) glad_record_set_str(r, "id", id);
    if (cls) glad_record_set_str(r, "class", cls);
    if (def) glad_record_set_str(r, "defect", def);
    if (label >= 0) glad_record_set_int(r, "label", label);
    glad_record_set_f64(r, "score", score);
}

/* an h x w map [1,h,w] f32: 'hot' inside the square [2,5)x[2,5), 'cold' elsewhere,
 * plus a small per-pixel ramp so scores are distinct */
static void set_map(glad_record *r, int h, int w, float hot, float cold)
{
    glad_tensor t;
    glad_tensor_alloc4(&t, GLAD_DT_F32, 1, h, w, -1);
    float *p = t.data;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            p[y * w + x] = (y >= 2 && y < 5 && x >= 2 && x < 5 ? hot : cold) + 1e-3f * (float)(y * w + x);
    glad_record_set_tensor(r, "amap", &t);
}

static void set_mask(glad_record *r, int h, int w, int square, uint8_t on)
{
    glad_tensor t;
    glad_tensor_alloc4(&t, GLAD_DT_U8, 1, h, w, -1);
    uint8_t *p = t.data;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) p[y * w + x] = square && y >= 2 && y < 5 && x >= 2 && x < 5 ? on : 0;
    glad_record_set_tensor(r, "mask", &t);
}

static int add(glad_report *rep, glad_record *r)
{
    int rc = glad_report_add(rep, r);
    glad_record_free(r);
    return rc;
}

static glad_report *new_report(glad_report_by by, int pixel_size, int curves)
{
    glad_report_opts o = {by, pixel_size, 0, curves, NULL};
    glad_report *rep = NULL;
    CHECK(glad_report_new(&rep, &o) == 0 && rep);
    return rep;
}

/* the report written in one format into a malloc'd string */
static char *written(const glad_report *rep, glad_report_format fmt)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    CHECK(glad_report_write(rep, fmt, f) == 0);
    fclose(f);
    return buf;
}

/* ---- image-level rows: two classes, sorted, metrics = glad_roc_binary ---- */
static const double sb[6] = {0.1, 0.7, 0.4, 0.9, 0.6, 0.2};
static const uint8_t lbb[6] = {0, 1, 0, 1, 1, 0};
static const double sa[4] = {0.3, 0.25, 0.8, 0.1};
static const uint8_t lba[4] = {0, 1, 1, 0};

static glad_report *two_classes(glad_report_by by, int reverse)
{
    glad_report *rep = new_report(by, 0, 0);
    glad_record r;
    char id[32];
    for (int k = 0; k < 10; k++) {
        int i = reverse ? 9 - k : k;
        if (i < 6) { snprintf(id, sizeof id, "b/%d", i); rec_basic(&r, id, "b", lbb[i] ? "crack" : "good", lbb[i], sb[i]); }
        else { snprintf(id, sizeof id, "a/%d", i); rec_basic(&r, id, "a", lba[i - 6] ? (i == 7 ? "hole" : "crack") : "good", lba[i - 6], sa[i - 6]); }
        CHECK(add(rep, &r) == 0);
    }
    CHECK(glad_report_eval(rep) == 0);
    return rep;
}

static void test_rows_by_class(void)
{
    glad_report *rep = two_classes(GLAD_REPORT_BY_CLASS, 0);
    CHECK(glad_report_nrows(rep) == 2);
    const glad_report_row *a = glad_report_row_at(rep, 0), *b = glad_report_row_at(rep, 1);
    CHECK(a && b && !strcmp(a->name, "a") && !strcmp(b->name, "b"));   /* sorted although b came first */
    CHECK(glad_report_row_at(rep, 2) == NULL);
    glad_roc_result ra, rb;
    CHECK(glad_roc_binary(sa, lba, 4, &ra, NULL, NULL) == 0);
    CHECK(glad_roc_binary(sb, lbb, 6, &rb, NULL, NULL) == 0);
    CHECK(a->n == 4 && a->nanom == 2 && b->n == 6 && b->nanom == 3);
    CHECK(a->m[GLAD_MET_I_AUROC] == ra.auroc && a->m[GLAD_MET_I_AP] == ra.ap && a->m[GLAD_MET_I_F1MAX] == ra.f1max);
    CHECK(b->m[GLAD_MET_I_AUROC] == rb.auroc);
    CHECK_NEAR(a->m[GLAD_MET_I_AUROC], 0.75, 1e-15);   /* by hand: 3 of the 4 (anomalous, normal) pairs ordered */
    CHECK(!a->has_pix && isnan(a->m[GLAD_MET_P_AUROC]) && isnan(a->m[GLAD_MET_AUPRO]));
    const double *mean = glad_report_mean(rep);
    CHECK(mean[GLAD_MET_I_AUROC] == (ra.auroc + rb.auroc) / 2);
    CHECK(isnan(mean[GLAD_MET_P_AUROC]));
    CHECK(glad_report_nwarnings(rep) == 0);
    /* the same records in the other order: the same bytes */
    glad_report *rev = two_classes(GLAD_REPORT_BY_CLASS, 1);
    char *x = written(rep, GLAD_REPORT_CSV), *y = written(rev, GLAD_REPORT_CSV);
    CHECK(x && y && !strcmp(x, y));
    free(x); free(y);
    glad_report_free(rev);
    glad_report_free(rep);
}

static void test_rows_by_defect_and_none(void)
{
    glad_report *rep = two_classes(GLAD_REPORT_BY_DEFECT, 0);
    /* a: crack (a/8), hole (a/7); b: crack */
    CHECK(glad_report_nrows(rep) == 3);
    const glad_report_row *r0 = glad_report_row_at(rep, 0), *r1 = glad_report_row_at(rep, 1), *r2 = glad_report_row_at(rep, 2);
    CHECK(!strcmp(r0->name, "a/crack") && !strcmp(r1->name, "a/hole") && !strcmp(r2->name, "b/crack"));
    /* a row = the class's normals + that defect's anomalies */
    CHECK(r0->n == 3 && r0->nanom == 1 && r1->n == 3 && r1->nanom == 1 && r2->n == 6 && r2->nanom == 3);
    CHECK(r1->m[GLAD_MET_I_AUROC] == 0.5);   /* a/7 (0.25) between the normals (0.3, 0.1) */
    CHECK(r0->m[GLAD_MET_I_AUROC] == 1.0);   /* a/8 (0.8) above both */
    char *csv = written(rep, GLAD_REPORT_CSV);
    CHECK(csv && !strncmp(csv, "defect,n,n_anomalous,i_auroc,", 29));
    free(csv);
    glad_report_free(rep);

    rep = two_classes(GLAD_REPORT_BY_NONE, 0);
    CHECK(glad_report_nrows(rep) == 1 && !strcmp(glad_report_row_at(rep, 0)->name, "all"));
    CHECK(glad_report_row_at(rep, 0)->n == 10 && glad_report_row_at(rep, 0)->nanom == 5);
    char *t = written(rep, GLAD_REPORT_TABLE);
    CHECK(t && !strncmp(t, "set ", 4) && !strstr(t, "mean"));   /* one row: no mean row */
    free(t);
    glad_report_free(rep);
}

/* ---- n/a rows, warnings, the mean over the defined rows ---- */
static void test_undefined_and_warnings(void)
{
    glad_report *rep = new_report(GLAD_REPORT_BY_CLASS, 0, 0);
    glad_record r;
    rec_basic(&r, "a/0", "a", NULL, 0, 0.1); CHECK(add(rep, &r) == 0);
    rec_basic(&r, "a/1", "a", NULL, 1, 0.9); CHECK(add(rep, &r) == 0);
    rec_basic(&r, "n/0", "n", NULL, 0, 0.5); CHECK(add(rep, &r) == 0);   /* normals only */
    rec_basic(&r, "p/0", "p", NULL, 1, 0.5); glad_record_set_str(&r, "split", "train"); CHECK(add(rep, &r) == 0);
    CHECK(glad_report_eval(rep) == 0);
    CHECK(glad_report_eval(rep) < 0);   /* once */
    const glad_report_row *n = glad_report_row_at(rep, 1), *p = glad_report_row_at(rep, 2);
    CHECK(isnan(n->m[GLAD_MET_I_AUROC]) && isnan(n->m[GLAD_MET_I_AP]));
    CHECK(isnan(p->m[GLAD_MET_I_AUROC]) && p->m[GLAD_MET_I_AP] == 1.0);
    CHECK(glad_report_mean(rep)[GLAD_MET_I_AUROC] == 1.0);   /* over the one defined row */
    CHECK_NEAR(glad_report_mean(rep)[GLAD_MET_I_AP], 1.0, 0);
    const char *want[] = {
        "1 records have split 'train'; every record given is evaluated",
        "n: no anomalous records: image metrics undefined (n/a)",
        "p: no normal records: I-AUROC undefined (n/a)",
        "mean I-AUROC is over 1 of 3 rows (the others are n/a)",
        "mean I-AP is over 2 of 3 rows (the others are n/a)",
        "mean I-F1max is over 2 of 3 rows (the others are n/a)"};
    CHECKF(glad_report_nwarnings(rep) == 6, "%d warnings", glad_report_nwarnings(rep));
    for (int i = 0; i < 6 && i < glad_report_nwarnings(rep); i++)
        CHECKF(!strcmp(glad_report_warning(rep, i), want[i]), "warning %d: %s", i, glad_report_warning(rep, i));
    CHECK(glad_report_warning(rep, 6) == NULL);
    char *md = written(rep, GLAD_REPORT_MARKDOWN), *md2 = written(rep, GLAD_REPORT_MD);
    CHECK(md && md2 && !strcmp(md, md2));   /* "md" is another name of markdown */
    CHECK(md && strstr(md, "| n | 1 | 0 | n/a | n/a | n/a |\n"));
    CHECK(md && strstr(md, "| **mean** | | | 100.0 | 100.0 | 100.0 |\n"));
    CHECK(md && !strstr(md, "P-AUROC"));   /* no maps: no pixel columns */
    free(md); free(md2);
    char *js = written(rep, GLAD_REPORT_JSON);
    CHECK(js && strstr(js, "{\"name\":\"n\",\"n\":1,\"n_anomalous\":0,\"i_auroc\":null,"));
    CHECK(js && strstr(js, "\"fpr_limit\":0.29999999999999999,"));
    free(js);
    char *csv = written(rep, GLAD_REPORT_CSV);
    CHECK(csv && strstr(csv, "\nn,1,0,,,,,,,,\n"));
    free(csv);
    glad_report_free(rep);
}

/* ---- record errors: code and the detail naming record and field ---- */
static void expect_add_error(glad_record *r, int pixel_size, int code, const char *detail)
{
    glad_report *rep = new_report(GLAD_REPORT_BY_CLASS, pixel_size, 0);
    glad_error_clear();
    int rc = add(rep, r);
    CHECKF(rc == code, "rc %d, want %d (%s)", rc, code, detail);
    CHECKF(strstr(glad_error_detail(), detail) != NULL, "detail '%s', want '%s'", glad_error_detail(), detail);
    glad_report_free(rep);
}

static void test_record_errors(void)
{
    glad_record r;
    rec_basic(&r, "x/1", "x", NULL, -1, 0.5);
    expect_add_error(&r, 0, GLAD_ENOTFOUND, "record 'x/1': 'label' missing");
    rec_basic(&r, "x/1", "x", NULL, 2, 0.5);
    expect_add_error(&r, 0, GLAD_EFORMAT, "record 'x/1': 'label' must be 0 or 1");
    rec_basic(&r, "x/1", "x", NULL, 1, NAN);
    expect_add_error(&r, 0, GLAD_ENAN, "record 'x/1': 'score' is NaN");
    rec_basic(&r, "x/1", "x", NULL, 1, 0.5); glad_record_remove(&r, "score");
    expect_add_error(&r, 0, GLAD_ENOTFOUND, "record 'x/1': 'score' missing");
    rec_basic(&r, "x/1", "x", NULL, 1, 0.5); glad_record_set_str(&r, "score", "high");
    expect_add_error(&r, 0, GLAD_EFORMAT, "record 'x/1': 'score' must be a number");
    rec_basic(&r, "x/1", "x", NULL, 1, 0.5); set_map(&r, 8, 8, 1, 0);
    expect_add_error(&r, 0, GLAD_ENOTFOUND, "record 'x/1': 'mask' missing (an anomalous record");
    rec_basic(&r, "x/1", "x", NULL, 1, 0.5); set_map(&r, 8, 8, 1, 0); set_mask(&r, 8, 7, 1, 1);
    expect_add_error(&r, 0, GLAD_ESHAPE, "record 'x/1': 'amap' shape 8x8 differs from the mask's 8x7");
    rec_basic(&r, "x/1", "x", NULL, 0, 0.5); set_map(&r, 8, 8, NAN, 0);
    expect_add_error(&r, 0, GLAD_ENAN, "record 'x/1': 'amap' contains NaN or infinity");
    rec_basic(&r, "x/1", "x", NULL, 0, 0.5); glad_record_set_str(&r, "amap", "?");
    expect_add_error(&r, 0, GLAD_EDTYPE, "record 'x/1': 'amap' is not a tensor");
    {
        glad_tensor t;
        rec_basic(&r, "x/1", "x", NULL, 0, 0.5);
        glad_tensor_alloc4(&t, GLAD_DT_F32, 2, 4, 4, -1);
        glad_record_set_tensor(&r, "amap", &t);
        expect_add_error(&r, 0, GLAD_ESHAPE, "record 'x/1': 'amap' must have shape [1,H,W] or [H,W]");
    }
    /* a one-element score tensor is a score; a mask of another shape is fine with pixel_size */
    glad_report *rep = new_report(GLAD_REPORT_BY_CLASS, 4, 0);
    glad_tensor t;
    rec_basic(&r, "x/1", "x", NULL, 1, 0);
    glad_tensor_alloc4(&t, GLAD_DT_F64, 1, -1, -1, -1);
    ((double *)t.data)[0] = 0.75;
    glad_record_set_tensor(&r, "score", &t);
    set_map(&r, 8, 8, 1, 0); set_mask(&r, 16, 12, 1, 1);
    CHECK(add(rep, &r) == 0);
    /* a repeated id */
    rec_basic(&r, "x/1", "x", NULL, 0, 0.5);
    glad_error_clear();
    CHECK(add(rep, &r) == GLAD_EFORMAT);
    CHECK(strstr(glad_error_detail(), "record 'x/1': 'id' appears twice") != NULL);
    /* records without id are not checked for repeats */
    rec_basic(&r, NULL, "x", NULL, 0, 0.25); set_map(&r, 8, 8, 0, 0); CHECK(add(rep, &r) == 0);
    rec_basic(&r, NULL, "x", NULL, 0, 0.5); set_map(&r, 8, 8, 0, 0); CHECK(add(rep, &r) == 0);
    CHECK(glad_report_eval(rep) == 0);
    const glad_report_row *x = glad_report_row_at(rep, 0);
    CHECK(x->n == 3 && x->has_pix && x->pm.npix == 3 * 16 && x->pm.nimg == 3);   /* resampled to 4x4 */
    CHECK(x->m[GLAD_MET_I_AUROC] == 1.0);   /* 0.75 above 0.25 and 0.5 */
    glad_report_free(rep);
}

static void test_eval_errors(void)
{
    glad_report *rep = new_report(GLAD_REPORT_BY_CLASS, 0, 0);
    glad_error_clear();
    CHECK(glad_report_eval(rep) < 0 && !strcmp(glad_error_detail(), "no records to evaluate"));
    glad_report_free(rep);
    rep = new_report(GLAD_REPORT_BY_CLASS, 0, 0);
    glad_record r;
    rec_basic(&r, "m/0", "m", NULL, 0, 0.1); set_map(&r, 8, 8, 0, 0); CHECK(add(rep, &r) == 0);
    rec_basic(&r, "m/1", "m", NULL, 0, 0.2); CHECK(add(rep, &r) == 0);
    rec_basic(&r, "m/2", "m", NULL, 0, 0.3); CHECK(add(rep, &r) == 0);
    glad_error_clear();
    CHECK(glad_report_eval(rep) == GLAD_ENOTFOUND);
    CHECKF(!strcmp(glad_error_detail(), "record 'm/1': 'amap' missing (1 of 3 records have one; pixel metrics need all)"), "%s", glad_error_detail());
    glad_report_free(rep);
    glad_report_opts bad = {GLAD_REPORT_BY_NONE + 1, 0, 0, 0, NULL};
    CHECK(glad_report_new(&rep, &bad) == GLAD_EINVAL && rep == NULL);
}

/* ---- pixel metrics, curves, history ---- */
static glad_report *pixel_report(int curves, uint8_t on)
{
    glad_report *rep = new_report(GLAD_REPORT_BY_CLASS, 0, curves);
    glad_record r, h;
    char id[16];
    for (int i = 0; i < 6; i++) {
        int lab = i & 1;
        snprintf(id, sizeof id, "c,1/%d", i);
        rec_basic(&r, id, "c,1", NULL, lab, 0.1 * i);
        set_map(&r, 8, 8, lab ? 5.0f : 0.0f, 0.0f);   /* anomalous square hot: perfect pixel ranking */
        set_mask(&r, 8, 8, lab, on);
        CHECK(add(rep, &r) == 0);
    }
    /* the same history twice (shards) is kept once */
    char *argv[] = {"glad-score", "--preset", "glad"};
    glad_header_init(&h);
    glad_header_append(&h, "glad-score", "0.1.0", 3, argv);
    CHECK(glad_report_add_header(rep, &h) == 0);
    CHECK(glad_report_add_header(rep, &h) == 0);
    glad_record_free(&h);
    CHECK(glad_report_eval(rep) == 0);
    return rep;
}

static void test_pixels_curves_history(void)
{
    glad_report *rep = pixel_report(1, 1);
    const glad_report_row *c = glad_report_row_at(rep, 0);
    CHECK(c->has_pix && c->pm.npix == 6 * 64 && c->pm.npos == 3 * 9 && c->pm.nreg == 3);
    CHECK(c->m[GLAD_MET_P_AUROC] == 1.0 && c->m[GLAD_MET_P_AP] == 1.0 && c->m[GLAD_MET_AUPRO] == 1.0);
    CHECK_NEAR(c->m[GLAD_MET_I_AUROC], 6.0 / 9, 1e-15);   /* scores 0.1 i, odd i anomalous: 6 of 9 pairs ordered */
    /* 0/255 masks binarise like 0/1 masks */
    glad_report *r255 = pixel_report(1, 255);
    char *a = written(rep, GLAD_REPORT_JSON), *b = written(r255, GLAD_REPORT_JSON);
    CHECK(a && b && !strcmp(a, b));
    CHECK(a && strstr(a, "\"n_pixels\":384,\"n_anomalous_pixels\":27,\"n_regions\":3"));
    CHECK(a && strstr(a, "{\"name\":\"c,1\","));
    CHECK(a && strstr(a, "\"history\":[{\"tool\":\"glad-score\",\"version\":\"0.1.0\",\"args\":\"--preset glad\"}]}\n"));
    free(a); free(b);
    glad_report_free(r255);
    char *csv = written(rep, GLAD_REPORT_CSV);
    CHECK(csv && strstr(csv, "\n\"c,1\",6,3,"));   /* quoted name */
    free(csv);
    char *t = written(rep, GLAD_REPORT_TABLE);
    CHECK(t && strstr(t, "P-AUROC    P-AP P-F1max   AUPRO PRO-compat\n"));
    CHECK(t && strstr(t, "\npipeline:\n  1. glad-score --preset glad  (0.1.0)\n"));
    free(t);
    /* curves */
    for (int k = GLAD_REPORT_ROC; k <= GLAD_REPORT_PRO; k++) CHECK(glad_report_has_curve(rep, 0, k));
    CHECK(!glad_report_has_curve(rep, 1, GLAD_REPORT_ROC));
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    CHECK(glad_report_curve_csv(rep, 0, GLAD_REPORT_ROC, f) == 0);
    fclose(f);
    CHECK(buf && !strncmp(buf, "level,fpr,tpr\nimage,0,0\n", 24));
    CHECK(buf && strstr(buf, "image,1,1\npixel,"));
    CHECK(buf && n >= 10 && !strcmp(buf + n - 10, "pixel,1,1\n"));
    free(buf);
    f = open_memstream(&buf, &n);
    CHECK(glad_report_curve_csv(rep, 0, GLAD_REPORT_PRO, f) == 0);
    fclose(f);
    CHECK(buf && !strncmp(buf, "fpr,pro\n0,0\n", 12));
    free(buf);
    f = open_memstream(&buf, &n);
    CHECK(glad_report_curve_png(rep, 0, GLAD_REPORT_PR, f) == 0);
    fclose(f);
    CHECK(buf && n > 100 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8));
    free(buf);
    glad_report_free(rep);
    /* without opts.curves there are none */
    rep = pixel_report(0, 1);
    f = open_memstream(&buf, &n);
    CHECK(!glad_report_has_curve(rep, 0, GLAD_REPORT_ROC) && glad_report_curve_csv(rep, 0, GLAD_REPORT_ROC, f) == GLAD_EINVAL);
    fclose(f);
    free(buf);
    glad_report_free(rep);
    /* image-only rows have ROC and PR but no PRO */
    glad_report_opts o = {GLAD_REPORT_BY_CLASS, 0, 0, 1, NULL};
    glad_record r;
    CHECK(glad_report_new(&rep, &o) == 0);
    rec_basic(&r, "i/0", "i", NULL, 0, 0.1); CHECK(add(rep, &r) == 0);
    rec_basic(&r, "i/1", "i", NULL, 1, 0.2); CHECK(add(rep, &r) == 0);
    CHECK(glad_report_eval(rep) == 0);
    CHECK(glad_report_has_curve(rep, 0, GLAD_REPORT_PR) && !glad_report_has_curve(rep, 0, GLAD_REPORT_PRO));
    glad_report_free(rep);
}

/* per defect the pixel metrics cover the class's normal images and that
 * defect's anomalous ones only */
static void test_pixels_by_defect(void)
{
    glad_report *rep = new_report(GLAD_REPORT_BY_DEFECT, 0, 0);
    glad_record r;
    char id[16];
    for (int i = 0; i < 5; i++) {   /* 0, 1 normal; 2, 3 "hot" (found); 4 "cold" (missed) */
        snprintf(id, sizeof id, "k/%d", i);
        rec_basic(&r, id, "k", i < 2 ? "good" : i < 4 ? "hot" : "cold", i >= 2, 0.1 * i);
        set_map(&r, 8, 8, i == 2 || i == 3 ? 5.0f : 0.0f, 0.0f);
        set_mask(&r, 8, 8, i >= 2, 1);
        CHECK(add(rep, &r) == 0);
    }
    CHECK(glad_report_eval(rep) == 0);
    const glad_report_row *cold = glad_report_row_at(rep, 0), *hot = glad_report_row_at(rep, 1);
    CHECK(!strcmp(cold->name, "k/cold") && !strcmp(hot->name, "k/hot"));
    CHECK(cold->pm.nimg == 3 && cold->pm.npix == 3 * 64 && cold->pm.nreg == 1);
    CHECK(hot->pm.nimg == 4 && hot->pm.nreg == 2);
    CHECK(hot->m[GLAD_MET_P_AUROC] == 1.0 && cold->m[GLAD_MET_P_AUROC] < 0.9);
    glad_report_free(rep);
}

static void test_names(void)
{
    CHECK(!strcmp(glad_report_by_names[GLAD_REPORT_BY_DEFECT], "defect") && glad_report_by_names[3] == NULL);
    CHECK(!strcmp(glad_report_format_names[GLAD_REPORT_JSON], "json") && !strcmp(glad_report_format_names[GLAD_REPORT_MD], "md"));
    CHECK(glad_report_format_names[5] == NULL);
    CHECK(!strcmp(glad_metric_keys[GLAD_MET_PRO_COMPAT], "pro_compat") && !strcmp(glad_metric_headers[GLAD_MET_I_F1MAX], "I-F1max"));
    CHECK(!strcmp(glad_report_curve_names[GLAD_REPORT_PRO], "pro"));
    char *s = glad_report_file_stem("a/b c,d.e-f_g\xc3\xa9");
    CHECK(s && !strcmp(s, "a_b_c_d.e-f_g__"));
    free(s);
}

/* ---- decisions at a calibrated threshold (counts by hand) ---- */
static void set_pred(glad_record *r, int h, int w)
{
    glad_tensor t;
    glad_tensor_alloc4(&t, GLAD_DT_U8, h, w, -1, -1);
    uint8_t *p = t.data;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) p[y * w + x] = y >= 2 && y < 5 && x >= 2 && x < 5;
    glad_record_set_tensor(r, "pred_mask", &t);
}

static void test_decisions(void)
{
    /* image: b flags 0.7, 0.9, 0.6 (all anomalous): TP 3, TN 3 -> P R F1 Acc 1;
     * a flags 0.8 only: TP 1, FN 1 (0.25), TN 2 -> P 1, R 1/2, F1 2/3, Acc 3/4 */
    glad_thresholds t = {.method = GLAD_CALIB_TARGET_FPR, .target_fpr = 0.01, .image = 0.5};
    glad_report_opts o = {GLAD_REPORT_BY_CLASS, 0, 0, 0, &t};
    glad_report *rep = NULL;
    CHECK(glad_report_new(&rep, &o) == 0);
    glad_record r;
    char id[32];
    for (int i = 0; i < 10; i++) {
        if (i < 6) { snprintf(id, sizeof id, "b/%d", i); rec_basic(&r, id, "b", "x", lbb[i], sb[i]); }
        else { snprintf(id, sizeof id, "a/%d", i); rec_basic(&r, id, "a", "x", lba[i - 6], sa[i - 6]); }
        CHECK(add(rep, &r) == 0);
    }
    CHECK(glad_report_eval(rep) == 0);
    CHECK(glad_report_ndec(rep) == GLAD_DEC_P_PREC);   /* image columns only: no maps */
    const glad_report_row *a = glad_report_row_at(rep, 0), *b = glad_report_row_at(rep, 1);
    CHECK(a->has_dec && a->ic.tp == 1 && a->ic.fn == 1 && a->ic.tn == 2 && a->ic.fp == 0);
    CHECK(a->d[GLAD_DEC_I_PREC] == 1 && a->d[GLAD_DEC_I_REC] == 0.5 && a->d[GLAD_DEC_I_ACC] == 0.75);
    CHECK_NEAR(a->d[GLAD_DEC_I_F1], 2.0 / 3, 1e-15);
    CHECK(b->d[GLAD_DEC_I_PREC] == 1 && b->d[GLAD_DEC_I_REC] == 1 && b->d[GLAD_DEC_I_F1] == 1 && b->d[GLAD_DEC_I_ACC] == 1);
    CHECK(isnan(a->d[GLAD_DEC_P_F1]));
    const double *dm = glad_report_dec_mean(rep);
    CHECK(dm[GLAD_DEC_I_REC] == 0.75 && dm[GLAD_DEC_I_ACC] == 0.875);
    CHECK_NEAR(dm[GLAD_DEC_I_F1], 5.0 / 6, 1e-15);
    char *txt = written(rep, GLAD_REPORT_TABLE);
    CHECK(txt && strstr(txt, "PRO-compat") == NULL && strstr(txt, "I-F1max  I-Prec   I-Rec    I-F1   I-Acc\n"));
    CHECK(txt && strstr(txt, "\ndecisions: image score > 0.5 (calibrated at target FPR 0.01)\n"));
    free(txt);
    char *csv = written(rep, GLAD_REPORT_CSV);
    CHECK(csv && strstr(csv, ",pro_compat,i_precision,i_recall,i_f1,i_accuracy\n") && strstr(csv, "\nmean,,,"));
    free(csv);
    glad_report_free(rep);

    /* pixels: amap > 1 flags the 3x3 square of every 8x8 map; anomalous record (mask =
     * the square): TP 9, TN 55; normal record: FP 9, TN 55 -> P 1/2, R 1, F1 2/3, Acc 119/128.
     * The same from the records' own decision and pred_mask. */
    for (int own = 0; own < 2; own++) {
        glad_thresholds tp = {.method = GLAD_CALIB_MAX_F1, .target_fpr = NAN, .image = 0.5, .has_pixel = 1, .pixel = 1.0};
        glad_report_opts op = {GLAD_REPORT_BY_CLASS, 0, 0, 0, own ? NULL : &tp};
        CHECK(glad_report_new(&rep, &op) == 0);
        rec_basic(&r, "c/0", "c", "x", 1, 0.9); set_map(&r, 8, 8, 2, 0); set_mask(&r, 8, 8, 1, 255);
        if (own) { glad_record_set_int(&r, "decision", 1); set_pred(&r, 8, 8); }
        CHECK(add(rep, &r) == 0);
        rec_basic(&r, "c/1", "c", "x", 0, 0.1); set_map(&r, 8, 8, 2, 0);
        if (own) { glad_record_set_int(&r, "decision", 0); set_pred(&r, 8, 8); }
        CHECK(add(rep, &r) == 0);
        CHECK(glad_report_eval(rep) == 0);
        CHECK(glad_report_ndec(rep) == GLAD_NDEC);
        const glad_report_row *c = glad_report_row_at(rep, 0);
        CHECK(c->has_pdec && c->pc.tp == 9 && c->pc.fp == 9 && c->pc.tn == 110 && c->pc.fn == 0);
        CHECK(c->d[GLAD_DEC_P_PREC] == 0.5 && c->d[GLAD_DEC_P_REC] == 1 && c->d[GLAD_DEC_P_ACC] == 119.0 / 128);
        CHECK_NEAR(c->d[GLAD_DEC_P_F1], 2.0 / 3, 1e-15);
        CHECK(c->d[GLAD_DEC_I_F1] == 1);
        txt = written(rep, GLAD_REPORT_MARKDOWN);
        CHECK(txt && strstr(txt, own ? "\nDecisions: the records' 'decision' and 'pred_mask'\n"
                                     : "\nDecisions: image score > 0.5, pixel amap > 1 (calibrated at the maximum validation F1)\n"));
        free(txt);
        char *js = written(rep, GLAD_REPORT_JSON);
        CHECK(js && strstr(js, "\"p_tp\":9,\"p_fp\":9,\"p_tn\":110,\"p_fn\":0") && strstr(js, own ? "\"decisions\":\"records\"" : "\"pixel_threshold\":1,"));
        free(js);
        glad_report_free(rep);
    }

    /* the records' decisions: all or none; 0/1 only; pred_mask of the amap's shape */
    CHECK(glad_report_new(&rep, &(glad_report_opts){GLAD_REPORT_BY_CLASS, 0, 0, 0, NULL}) == 0);
    rec_basic(&r, "d/0", "d", "x", 1, 0.9); glad_record_set_int(&r, "decision", 1); CHECK(add(rep, &r) == 0);
    rec_basic(&r, "d/1", "d", "x", 0, 0.1); CHECK(add(rep, &r) == 0);
    glad_error_clear();
    CHECK(glad_report_eval(rep) == GLAD_ENOTFOUND && strstr(glad_error_detail(), "record 'd/1': 'decision' missing (1 of 2"));
    glad_report_free(rep);
    CHECK(glad_report_new(&rep, &(glad_report_opts){GLAD_REPORT_BY_CLASS, 0, 0, 0, NULL}) == 0);
    rec_basic(&r, "e/0", "e", "x", 1, 0.9); glad_record_set_int(&r, "decision", 3);
    CHECK(glad_report_add(rep, &r) == GLAD_EFORMAT && strstr(glad_error_detail(), "record 'e/0': 'decision' must be 0 or 1"));
    glad_record_free(&r);
    rec_basic(&r, "e/1", "e", "x", 0, 0.1); set_map(&r, 8, 8, 2, 0); set_pred(&r, 8, 7);
    CHECK(glad_report_add(rep, &r) == GLAD_ESHAPE && strstr(glad_error_detail(), "record 'e/1': 'pred_mask' must have the amap's shape 8x8"));
    glad_record_free(&r);
    glad_report_free(rep);
}

int main(void)
{
    test_names();
    test_rows_by_class();
    test_rows_by_defect_and_none();
    test_undefined_and_warnings();
    test_record_errors();
    test_eval_errors();
    test_pixels_curves_history();
    test_pixels_by_defect();
    test_decisions();
    return check_done();
}
