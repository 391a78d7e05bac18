/* test_calib.c - lib/metrics/calib: the two threshold rules on constructed
 * cases whose answers are derived by hand in the comments (ties, all values
 * equal, one normal, target 0, tiny counts, max F1 with perfect separation,
 * equal F1, ties across the classes), the confusion figures, the validation
 * collector (pixels of normal images and unmasked pixels of anomalous ones),
 * the threshold file (round trip, malformed files naming the field),
 * applying thresholds to a record, and the per-image CSV line. */
#include <unistd.h>
#include "check.h"
#include "core/glad.h"
#include "metrics/calib.h"

static double fpr_thr(const double *v, size_t n, double target, glad_confusion *c)
{
    double *a = malloc(n * sizeof *a), thr = NAN;
    memcpy(a, v, n * sizeof *a);
    int rc = glad_calib_choose(GLAD_CALIB_TARGET_FPR, target, a, n, NULL, 0, &thr, c);
    free(a);
    return rc < 0 ? (double)rc * 1000 : thr;
}

static double f1_thr(const double *ng, size_t nn, const double *ps, size_t np, glad_confusion *c)
{
    double *a = malloc((nn ? nn : 1) * sizeof *a), *b = malloc((np ? np : 1) * sizeof *b), thr = NAN;
    if (nn) memcpy(a, ng, nn * sizeof *a);
    if (np) memcpy(b, ps, np * sizeof *b);
    int rc = glad_calib_choose(GLAD_CALIB_MAX_F1, 0, a, nn, b, np, &thr, c);
    free(a); free(b);
    return rc < 0 ? (double)rc * 1000 : thr;
}

static void test_target_fpr(void)
{
    glad_confusion c;
    double v[100];
    for (int i = 0; i < 100; i++) v[i] = 100 - i;   /* 100..1, unsorted order on purpose */
    /* n 100, target 0.01: k = 1 false positive allowed -> the 2nd largest, 99; only 100 > 99 */
    CHECK(fpr_thr(v, 100, 0.01, &c) == 99);
    CHECK(c.fp == 1 && c.tn == 99 && c.fpr == 0.01 && isnan(c.tpr) && c.f1 == 0);
    /* 0.07 * 100 = 7.000000000000001, 0.29 * 100 = 28.999999999999996: k = 7 and 29 */
    CHECK(fpr_thr(v, 100, 0.07, &c) == 93 && c.fp == 7);
    CHECK(fpr_thr(v, 100, 0.29, &c) == 71 && c.fp == 29);
    /* target 0: the largest normal value, no normal flagged */
    CHECK(fpr_thr(v, 100, 0, &c) == 100 && c.fp == 0);
    /* ties {1,2,3,3,3}: target 0.2 -> k 1 -> v[3] = 3, and no value > 3: FPR 0 (tie lowers it) */
    double t[5] = {3, 1, 3, 2, 3};
    CHECK(fpr_thr(t, 5, 0.2, &c) == 3 && c.fp == 0 && c.fpr == 0);
    CHECK(fpr_thr(t, 5, 0.4, &c) == 3 && c.fp == 0);            /* k 2 -> v[2] = 3 */
    CHECK(fpr_thr(t, 5, 0.6, &c) == 2 && c.fp == 3 && c.fpr == 0.6);   /* k 3 -> v[1] = 2 */
    /* all values equal: that value, FPR 0 whatever the target */
    double e[4] = {5, 5, 5, 5};
    CHECK(fpr_thr(e, 4, 0.5, &c) == 5 && c.fp == 0);
    CHECK(fpr_thr(e, 4, 0.99, &c) == 5 && c.fp == 0);
    /* one normal: its value (k = floor(0.5) = 0) */
    double one = 7;
    CHECK(fpr_thr(&one, 1, 0.01, &c) == 7 && c.fp == 0 && c.tn == 1);
    CHECK(fpr_thr(&one, 1, 0.5, &c) == 7);
    /* tiny counts: 10 normals at 1 %: k = 0 -> the maximum (achieved FPR 0, not 1 %) */
    CHECK(fpr_thr(v + 90, 10, 0.01, &c) == 10 && c.fp == 0);
    /* 10 normals at 10 %: k = 1 -> the 2nd largest */
    CHECK(fpr_thr(v + 90, 10, 0.1, &c) == 9 && c.fp == 1);
    /* errors */
    CHECK(fpr_thr(v, 0, 0.01, &c) == GLAD_EINVAL * 1000.0);
    CHECK(fpr_thr(v, 10, 1.0, &c) == GLAD_EINVAL * 1000.0);
    CHECK(fpr_thr(v, 10, -0.1, &c) == GLAD_EINVAL * 1000.0);
    double bad[2] = {1, NAN};
    CHECK(fpr_thr(bad, 2, 0.1, &c) == GLAD_ENAN * 1000.0);
    /* with anomalous values: the counts at the threshold */
    double ng[4] = {1, 2, 3, 4}, ps[3] = {2, 5, 6}, thr;
    CHECK(glad_calib_choose(GLAD_CALIB_TARGET_FPR, 0.25, ng, 4, ps, 3, &thr, &c) == 0);
    /* k 1 -> 3; flagged: normal 4, anomalous 5, 6 */
    CHECK(thr == 3 && c.fp == 1 && c.tn == 3 && c.tp == 2 && c.fn == 1);
    CHECK_NEAR(c.precision, 2.0 / 3, 1e-15);
    CHECK_NEAR(c.tpr, 2.0 / 3, 1e-15);
    CHECK_NEAR(c.f1, 2.0 / 3, 1e-15);   /* 2*2 / (4 + 1 + 1) */
    CHECK_NEAR(c.accuracy, 5.0 / 7, 1e-15);
}

static void test_max_f1(void)
{
    glad_confusion c;
    /* perfect separation: the largest normal value, F1 1 */
    double n1[3] = {1, 2, 3}, p1[2] = {6, 5};
    CHECK(f1_thr(n1, 3, p1, 2, &c) == 3);
    CHECK(c.tp == 2 && c.fp == 0 && c.fn == 0 && c.tn == 3 && c.f1 == 1 && c.accuracy == 1 && c.precision == 1);
    /* overlap: neg {1,2,3,4}, pos {3.5,5}; cuts (TP,FP): 5 (1,0) F1 2/3; 4 (1,1) 1/2;
     * 3.5 (2,1) 4/5; 3 (2,2) 2/3; ... -> 3.5 wins, threshold the next value below: 3 */
    double n2[4] = {4, 1, 3, 2}, p2[2] = {5, 3.5};
    CHECK(f1_thr(n2, 4, p2, 2, &c) == 3);
    CHECK(c.tp == 2 && c.fp == 1 && c.fn == 0);
    CHECK_NEAR(c.f1, 0.8, 1e-15);
    /* every value flagged is best: the next double below the smallest value */
    double p3[2] = {1, 2};
    CHECK(f1_thr(NULL, 0, p3, 2, &c) == nextafter(1, -HUGE_VAL));
    CHECK(c.tp == 2 && c.fn == 0 && c.f1 == 1 && isnan(c.fpr));
    /* equal F1: neg {2,3}, pos {4,1}: cut 4 (1,0) 2/3 ... cut 1 (2,2) 4/6 = 2/3:
     * the higher threshold (3) wins */
    double n4[2] = {2, 3}, p4[2] = {4, 1};
    CHECK(f1_thr(n4, 2, p4, 2, &c) == 3 && c.tp == 1 && c.fp == 0);
    /* a tie across the classes is one cut: neg {2}, pos {2} -> flag both, F1 2/3 */
    double n5 = 2, p5 = 2;
    CHECK(f1_thr(&n5, 1, &p5, 1, &c) == nextafter(2, -HUGE_VAL) && c.tp == 1 && c.fp == 1);
    /* all values equal, both classes */
    double n6[3] = {1, 1, 1}, p6[1] = {1};
    CHECK(f1_thr(n6, 3, p6, 1, &c) == nextafter(1, -HUGE_VAL) && c.tp == 1 && c.fp == 3);
    CHECK_NEAR(c.f1, 0.4, 1e-15);
    /* no anomalous values */
    CHECK(f1_thr(n1, 3, NULL, 0, &c) == GLAD_EINVAL * 1000.0);
}

static void test_rates(void)
{
    glad_confusion c = {.tp = 2, .fp = 1, .tn = 3, .fn = 0};
    glad_confusion_rates(&c);
    CHECK(c.fpr == 0.25 && c.tpr == 1 && c.accuracy == 5.0 / 6);
    CHECK_NEAR(c.precision, 2.0 / 3, 1e-15);
    CHECK_NEAR(c.f1, 0.8, 1e-15);
    glad_confusion z = {0};
    glad_confusion_rates(&z);
    CHECK(isnan(z.fpr) && isnan(z.tpr) && isnan(z.precision) && isnan(z.f1) && isnan(z.accuracy));
    glad_confusion n = {.tn = 4};   /* only negatives, none flagged */
    glad_confusion_rates(&n);
    CHECK(n.fpr == 0 && isnan(n.tpr) && isnan(n.precision) && isnan(n.f1) && n.accuracy == 1);
}

/* a scored record with an optional 2x2 map and mask */
static void rec(glad_record *r, const char *id, int label, double score, const float *map, const float *mask)
{
    glad_record_init(r);
    glad_record_set_str(r, "id", id);
    glad_record_set_str(r, "class", "c");
    glad_record_set_int(r, "label", label);
    glad_record_set_f64(r, "score", score);
    glad_tensor t;
    if (map) { int64_t s[3] = {1, 2, 2}; glad_tensor_from_f32(&t, GLAD_DT_F32, 3, s, map); glad_record_set_tensor(r, "amap", &t); glad_tensor_free(&t); }
    if (mask) { int64_t s[3] = {1, 2, 2}; glad_tensor_from_f32(&t, GLAD_DT_F32, 3, s, mask); glad_record_set_tensor(r, "mask", &t); glad_tensor_free(&t); }
}

static void test_collector_and_file(void)
{
    glad_calib *c;
    glad_record r;
    CHECK(glad_calib_new(&c) == 0);
    /* normals: scores 1..4, maps with pixels 0..15 (all normal) */
    for (int i = 0; i < 4; i++) {
        float m[4] = {4.0f * i, 4.0f * i + 1, 4.0f * i + 2, 4.0f * i + 3};
        char id[16];
        snprintf(id, sizeof id, "n%d", i);
        rec(&r, id, 0, i + 1, m, NULL);
        CHECK(glad_calib_add(c, &r) == 0);
        glad_record_free(&r);
    }
    /* one anomaly: score 10; pixels 100 (masked, 255) and 20, 21, 22 (unmasked: normal) */
    float am[4] = {100, 20, 21, 22}, mk[4] = {255, 0, 0, 0};
    rec(&r, "a0", 1, 10, am, mk);
    CHECK(glad_calib_add(c, &r) == 0);
    glad_record_free(&r);
    glad_thresholds t;
    /* image: normals {1,2,3,4} at 0.25 -> k 1 -> 3; pixels: 19 normal (0..15, 20..22) at
     * 0.25 -> k = floor(4.75) = 4 -> the 5th largest normal pixel: 22,21,20,15,[14] */
    CHECK(glad_calib_compute(c, GLAD_CALIB_TARGET_FPR, 0.25, &t) == 0);
    CHECK(t.image == 3 && t.has_pixel && t.pixel == 14 && t.n_normal == 4 && t.n_anomalous == 1 && t.n_pixels == 20);
    CHECK(t.img.tp == 1 && t.img.fp == 1 && t.pix.fp == 4 && t.pix.tp == 1);
    char path[] = "/tmp/test_calib_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(glad_thresholds_save(&t, path) == 0);
    glad_thresholds u;
    CHECK(glad_thresholds_load(&u, path) == 0);
    CHECK(u.method == GLAD_CALIB_TARGET_FPR && u.target_fpr == 0.25 && u.image == 3 && u.has_pixel && u.pixel == 14);
    CHECK(u.n_normal == 4 && u.n_anomalous == 1 && u.n_pixels == 20);
    glad_thresholds_free(&u);
    /* max F1: image perfect separation -> 4; pixels: 100 alone above everything -> 22 */
    glad_thresholds_free(&t);
    CHECK(glad_calib_compute(c, GLAD_CALIB_MAX_F1, 0.01, &t) == 0);
    CHECK(t.image == 4 && t.pixel == 22 && t.img.f1 == 1 && t.pix.f1 == 1 && isnan(t.target_fpr));
    CHECK(glad_thresholds_save(&t, path) == 0);
    CHECK(glad_thresholds_load(&u, path) == 0 && u.method == GLAD_CALIB_MAX_F1 && isnan(u.target_fpr) && u.image == 4);
    glad_thresholds_free(&u);

    /* apply: decision and pred_mask */
    float am2[4] = {22, 22.5f, 0, 30};
    rec(&r, "x", 1, 4, am2, NULL);
    CHECK(glad_thresholds_apply(&t, &r) == 0);
    int64_t d = -1;
    const glad_tensor *pm;
    CHECK(glad_record_get_int(&r, "decision", &d) == 0 && d == 0);   /* 4 > 4 is false */
    CHECK(glad_record_get_tensor(&r, "pred_mask", &pm) == 0 && pm->dtype == GLAD_DT_U8 && pm->ndim == 2 && pm->shape[0] == 2 && pm->shape[1] == 2);
    if (pm) { const uint8_t *p = pm->data; CHECK(p[0] == 0 && p[1] == 1 && p[2] == 0 && p[3] == 1); }
    glad_record_set_f64(&r, "score", 4.5);
    CHECK(glad_thresholds_apply(&t, &r) == 0 && glad_record_get_int(&r, "decision", &d) == 0 && d == 1);
    glad_record_free(&r);
    glad_thresholds_free(&t);
    glad_calib_free(c);

    /* malformed files name the field */
    static const struct { const char *json, *detail; } bad[] = {
        {"[1]", "not a JSON object"},
        {"{\"method\":\"target-fpr\",\"image_threshold\":1}", "'glad_thresholds' missing"},
        {"{\"glad_thresholds\":2,\"method\":\"max-f1\",\"image_threshold\":1}", "'glad_thresholds' must be 1"},
        {"{\"glad_thresholds\":1,\"image_threshold\":1}", "'method' missing"},
        {"{\"glad_thresholds\":1,\"method\":\"best\",\"image_threshold\":1}", "'method' must be target-fpr or max-f1"},
        {"{\"glad_thresholds\":1,\"method\":\"max-f1\"}", "'image_threshold' missing"},
        {"{\"glad_thresholds\":1,\"method\":\"max-f1\",\"image_threshold\":\"1\"}", "'image_threshold' must be a finite number"},
        {"{\"glad_thresholds\":1,\"method\":\"max-f1\",\"image_threshold\":null}", "'image_threshold' is null"},
        {"{\"glad_thresholds\":1,\"method\":\"max-f1\",\"image_threshold\":1,\"pixel_threshold\":[]}", "'pixel_threshold' must be a finite number"},
        {"{\"glad_thresholds\":1,\"method\":\"target-fpr\",\"image_threshold\":1}", "'target_fpr' missing"},
        {"{\"glad_thresholds\":1,\"method\":\"target-fpr\",\"target_fpr\":1,\"image_threshold\":1}", "'target_fpr' must be in [0,1)"},
        {"{\"glad_thresholds\":1,\"method\":\"max-f1\",\"image_threshold\":1e999}", "'image_threshold' must be a finite number"},
        {"{\"glad_thresholds\":1,\"method\":\"max-f1\",\"image_threshold\":1,\"counts\":{\"normal\":-1}}", "'counts.normal' must be a non-negative integer"},
        {"{\"glad_thresholds\":1,", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(path, "w");
        fputs(bad[i].json, f);
        fclose(f);
        glad_error_clear();
        int rc = glad_thresholds_load(&u, path);
        CHECKF(rc == GLAD_EFORMAT && strstr(glad_error_detail(), bad[i].detail) && strstr(glad_error_detail(), path),
               "case %zu: rc %d detail '%s'", i, rc, glad_error_detail());
        glad_thresholds_free(&u);
    }
    /* a minimal valid file: no pixel threshold */
    FILE *f = fopen(path, "w");
    fputs("{\"glad_thresholds\":1,\"method\":\"max-f1\",\"image_threshold\":0.5,\"pixel_threshold\":null}", f);
    fclose(f);
    CHECK(glad_thresholds_load(&u, path) == 0 && u.image == 0.5 && !u.has_pixel);
    remove(path);
    CHECK(glad_thresholds_load(&u, path) == GLAD_EIO);
}

static void test_per_image(void)
{
    glad_record r;
    rec(&r, "c/test/a,b\"1", 1, 0.5, NULL, NULL);
    glad_record_set_str(&r, "defect", "crack");
    char *s = glad_per_image_line(&r, NULL);
    CHECKF(s && !strcmp(s, "\"c/test/a,b\"\"1\",c,crack,1,0.5,,,\n"), "%s", s);
    free(s);
    glad_record_set_int(&r, "decision", 1);
    glad_record_set_int(&r, "ads_step", 250);
    s = glad_per_image_line(&r, NULL);
    CHECKF(s && !strcmp(s, "\"c/test/a,b\"\"1\",c,crack,1,0.5,1,250,\n"), "%s", s);
    free(s);
    glad_thresholds t = {.image = 0.5};   /* the file's threshold wins over the record's decision */
    s = glad_per_image_line(&r, &t);
    CHECKF(s && !strcmp(s, "\"c/test/a,b\"\"1\",c,crack,1,0.5,0,250,\n"), "%s", s);
    free(s);
    glad_record_set_f64(&r, "score_global", 1.25);
    s = glad_per_image_line(&r, &t);
    CHECKF(s && !strcmp(s, "\"c/test/a,b\"\"1\",c,crack,1,0.5,0,250,1.25\n"), "%s", s);
    free(s);
    glad_record_free(&r);
    CHECK(!strcmp(glad_per_image_header, "id,class,defect,label,score,decision,ads_step,score_global\n"));
}

int main(void)
{
    test_target_fpr();
    test_max_f1();
    test_rates();
    test_collector_and_file();
    test_per_image();
    return check_done();
}
