/* test_metrics.c - lib/metrics against scikit-learn and the official PRO
 * code (tests/fixtures/metrics.case.safetensors, values read from its
 * __metadata__), hand-made edge cases, and property checks against a
 * brute-force O(n^2) AUROC. */
#include "check.h"
#include "core/glad.h"
#include "core/json.h"
#include "io/safetensors.h"
#include "metrics/roc.h"
#include "metrics/pro.h"

#define FIX "tests/fixtures/metrics.case.safetensors"

static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static const glad_json *meta_case(const glad_st *st, const char *name, glad_json **owned)
{
    const char *s = glad_st_meta(st, name);
    *owned = NULL;
    if (!s || glad_json_parse(s, strlen(s), owned) < 0) return NULL;
    return *owned;
}

static void image_case(const glad_st *st, const char *name)
{
    char key[128];
    glad_tensor lt = {0}, stt = {0};
    snprintf(key, sizeof key, "%s.labels", name);
    CHECK(glad_st_get(st, key, &lt) == 0);
    snprintf(key, sizeof key, "%s.scores", name);
    CHECK(glad_st_get_f32(st, key, &stt) == 0);
    size_t n = glad_tensor_numel(&lt);
    double *lab = malloc(n * sizeof *lab), *sc = malloc(n * sizeof *sc);
    uint8_t *l8 = malloc(n);
    CHECK(glad_tensor_to_f64(&lt, lab) == 0);
    for (size_t i = 0; i < n; i++) { l8[i] = lab[i] != 0; sc[i] = ((float *)stt.data)[i]; }
    glad_roc_result r;
    CHECK(glad_roc_binary(sc, l8, n, &r, NULL, NULL) == 0);
    glad_json *j;
    const glad_json *m = meta_case(st, name, &j);
    CHECKF(m != NULL, "metadata for %s", name);
    if (m) {
        CHECK_NEAR(r.auroc, glad_json_num(glad_json_get(m, "auroc"), NAN), 1e-6);
        CHECK_NEAR(r.ap, glad_json_num(glad_json_get(m, "ap"), NAN), 1e-6);
        CHECK_NEAR(r.f1max, glad_json_num(glad_json_get(m, "f1max"), NAN), 1e-6);
    }
    glad_json_free(j);
    free(lab); free(sc); free(l8);
    glad_tensor_free(&lt); glad_tensor_free(&stt);
}

static void pixel_case(const glad_st *st)
{
    glad_tensor mt = {0}, at = {0}, lt = {0};
    CHECK(glad_st_get(st, "pix.masks", &mt) == 0);
    CHECK(glad_st_get_f32(st, "pix.amaps", &at) == 0);
    CHECK(glad_st_get(st, "pix.labels", &lt) == 0);
    if (mt.ndim != 3 || at.ndim != 3) { CHECK(0); return; }
    int b = (int)at.shape[0], h = (int)at.shape[1], w = (int)at.shape[2];
    glad_pixset ps;
    glad_pixset_init(&ps);
    double *imgscore = malloc(b * sizeof *imgscore), *lab = malloc(b * sizeof *lab);
    uint8_t *l8 = malloc(b);
    CHECK(glad_tensor_to_f64(&lt, lab) == 0);
    for (int i = 0; i < b; i++) {
        const float *m = (const float *)at.data + (size_t)i * h * w;
        uint32_t id;
        CHECK(glad_pixset_add(&ps, m, (const uint8_t *)mt.data + (size_t)i * h * w, h, w, &id) == 0);
        CHECK(id == (uint32_t)i);
        imgscore[i] = m[0];
        for (int k = 1; k < h * w; k++) if (m[k] > imgscore[i]) imgscore[i] = m[k];
        l8[i] = lab[i] != 0;
    }
    CHECK(glad_pixset_sort(&ps) == 0);
    glad_pro_opts o = { 0.3, 200, 0 };
    glad_pix_metrics pm;
    CHECK(glad_pixset_eval(&ps, NULL, &o, &pm, NULL, NULL, NULL) == 0);
    glad_json *j;
    const glad_json *m = meta_case(st, "pix", &j);
    CHECK(m != NULL);
    if (m) {
        CHECK_NEAR(pm.auroc, glad_json_num(glad_json_get(m, "p_auroc"), NAN), 1e-6);
        CHECK_NEAR(pm.ap, glad_json_num(glad_json_get(m, "p_ap"), NAN), 1e-6);
        CHECK_NEAR(pm.f1max, glad_json_num(glad_json_get(m, "p_f1max"), NAN), 1e-6);
        CHECK_NEAR(pm.aupro, glad_json_num(glad_json_get(m, "aupro"), NAN), 1e-4);
        CHECK_NEAR(pm.pro_compat, glad_json_num(glad_json_get(m, "pro_compat"), NAN), 1e-4);
        glad_roc_result r;
        CHECK(glad_roc_binary(imgscore, l8, b, &r, NULL, NULL) == 0);
        CHECK_NEAR(r.auroc, glad_json_num(glad_json_get(m, "i_auroc_max"), NAN), 1e-6);
    }
    /* "the fixture has two regions in image 0": the labelling sees them */
    CHECK(ps.img_reg0[1] - ps.img_reg0[0] == 2);
    /* a group filter selecting every image gives the same numbers */
    uint8_t *all = malloc(b);
    memset(all, 1, b);
    glad_pix_metrics pm2;
    CHECK(glad_pixset_eval(&ps, all, &o, &pm2, NULL, NULL, NULL) == 0);
    CHECK_NEAR(pm2.auroc, pm.auroc, 1e-12);
    CHECK_NEAR(pm2.aupro, pm.aupro, 1e-12);
    CHECK_NEAR(pm2.pro_compat, pm.pro_compat, 1e-12);
    free(all);
    glad_json_free(j);
    glad_pixset_free(&ps);
    free(imgscore); free(lab); free(l8);
    glad_tensor_free(&mt); glad_tensor_free(&at); glad_tensor_free(&lt);
}

/* Mann-Whitney by definition: P(s+ > s-) + 1/2 P(s+ = s-) */
static double brute_auroc(const double *s, const uint8_t *l, size_t n)
{
    double num = 0, np = 0, nn = 0;
    for (size_t i = 0; i < n; i++) { np += l[i]; nn += !l[i]; }
    for (size_t i = 0; i < n; i++) {
        if (!l[i]) continue;
        for (size_t k = 0; k < n; k++) {
            if (l[k]) continue;
            num += s[i] > s[k] ? 1.0 : s[i] == s[k] ? 0.5 : 0.0;
        }
    }
    return num / (np * nn);
}

/* AP and F1max by definition: for every distinct threshold t, TP/FP of score >= t */
static void brute_ap_f1(const double *s, const uint8_t *l, size_t n, double *ap, double *f1)
{
    double np = 0;
    for (size_t i = 0; i < n; i++) np += l[i];
    /* visit thresholds in descending order by repeated max search (O(n^2)) */
    double prev_r = 0, t = INFINITY;
    *ap = 0; *f1 = 0;
    for (;;) {
        double nt = -INFINITY; int found = 0;
        for (size_t i = 0; i < n; i++) if (s[i] < t && (!found || s[i] > nt)) { nt = s[i]; found = 1; }
        if (!found) break;
        t = nt;
        double tp = 0, fp = 0;
        for (size_t i = 0; i < n; i++) if (s[i] >= t) { tp += l[i]; fp += !l[i]; }
        double p = tp / (tp + fp), r = tp / np;
        *ap += (r - prev_r) * p;
        prev_r = r;
        if (p + r > 0 && 2 * p * r / (p + r) > *f1) *f1 = 2 * p * r / (p + r);
    }
}

static void own_cases(void)
{
    glad_roc_result r;
    /* all ties: every threshold has everything -> AUROC 1/2, AP = prevalence */
    double s[10]; uint8_t l[10];
    for (int i = 0; i < 10; i++) { s[i] = 0.25; l[i] = i < 3; }
    CHECK(glad_roc_binary(s, l, 10, &r, NULL, NULL) == 0);
    CHECK_NEAR(r.auroc, 0.5, 1e-12);
    CHECK_NEAR(r.ap, 0.3, 1e-12);
    CHECK_NEAR(r.f1max, 2 * 0.3 / 1.3, 1e-12);
    /* perfect separation */
    for (int i = 0; i < 10; i++) s[i] = l[i] ? 5.0 + i : (double)i / 10;
    CHECK(glad_roc_binary(s, l, 10, &r, NULL, NULL) == 0);
    CHECK_NEAR(r.auroc, 1.0, 1e-12); CHECK_NEAR(r.ap, 1.0, 1e-12); CHECK_NEAR(r.f1max, 1.0, 1e-12);
    /* no anomalies: undefined, reported as NaN (not a crash) */
    for (int i = 0; i < 10; i++) l[i] = 0;
    CHECK(glad_roc_binary(s, l, 10, &r, NULL, NULL) == 0);
    CHECK(isnan(r.auroc) && isnan(r.ap) && isnan(r.f1max));
    /* no normals: AUROC undefined, AP/F1 = 1 */
    for (int i = 0; i < 10; i++) l[i] = 1;
    CHECK(glad_roc_binary(s, l, 10, &r, NULL, NULL) == 0);
    CHECK(isnan(r.auroc)); CHECK_NEAR(r.ap, 1.0, 1e-12);
    /* NaN is an error */
    s[3] = NAN;
    CHECK(glad_roc_binary(s, l, 10, &r, NULL, NULL) == GLAD_ENAN);
    /* empty */
    CHECK(glad_roc_binary(s, l, 0, &r, NULL, NULL) == 0);
    CHECK(isnan(r.auroc));

    /* pixel set with no anomalous pixel: PRO and P-AUROC n/a */
    glad_pixset ps; glad_pixset_init(&ps);
    float m[16]; uint8_t k[16] = {0}; uint32_t id;
    for (int i = 0; i < 16; i++) m[i] = (float)i;
    CHECK(glad_pixset_add(&ps, m, k, 4, 4, &id) == 0);
    CHECK(glad_pixset_sort(&ps) == 0);
    glad_pro_opts o = { 0.3, 200, 0 };
    glad_pix_metrics pm;
    CHECK(glad_pixset_eval(&ps, NULL, &o, &pm, NULL, NULL, NULL) == 0);
    CHECK(isnan(pm.auroc) && isnan(pm.aupro) && isnan(pm.pro_compat) && pm.nreg == 0);
    /* NaN in a map is refused */
    m[5] = NAN;
    CHECK(glad_pixset_add(&ps, m, k, 4, 4, &id) == GLAD_ENAN);
    glad_pixset_free(&ps);

    /* perfect pixel separation: a region scoring above every negative -> everything 1 */
    glad_pixset_init(&ps);
    for (int i = 0; i < 16; i++) { k[i] = (i % 4 == 0) || i == 15; m[i] = k[i] ? 2.0f + i : -(float)i; }
    CHECK(glad_pixset_add(&ps, m, k, 4, 4, &id) == 0);
    CHECK(glad_pixset_sort(&ps) == 0);
    CHECK(glad_pixset_eval(&ps, NULL, &o, &pm, NULL, NULL, NULL) == 0);
    CHECK(pm.nreg == 2);   /* the left column and the lone corner pixel */
    CHECK_NEAR(pm.auroc, 1, 1e-12); CHECK_NEAR(pm.ap, 1, 1e-12); CHECK_NEAR(pm.aupro, 1, 1e-12);
    glad_pixset_free(&ps);

    /* 8-connectivity: diagonal neighbours join, a gap separates */
    uint8_t mk[25] = { 1,0,0,0,1,
                       0,1,0,0,0,
                       0,0,1,0,0,
                       0,0,0,0,0,
                       1,1,0,0,1 };
    uint32_t lab[25], nr;
    CHECK(glad_label_regions(mk, 5, 5, lab, &nr) == 0);
    CHECK(nr == 4);
    CHECK(lab[0] == 1 && lab[6] == 1 && lab[12] == 1 && lab[4] == 2 && lab[20] == 3 && lab[21] == 3 && lab[24] == 4);
    /* a U shape merged late (union across provisional labels) */
    uint8_t u[12] = { 1,0,1,0, 1,0,1,0, 1,1,1,0 };
    CHECK(glad_label_regions(u, 3, 4, lab, &nr) == 0);
    CHECK(nr == 1);
}

static void property_checks(void)
{
    for (int trial = 0; trial < 40; trial++) {
        size_t n = 5 + (size_t)(urand() * 300);
        int levels = trial % 3 == 0 ? 4 : trial % 3 == 1 ? 50 : 0;   /* heavy ties, some ties, continuous */
        double *s = malloc(n * sizeof *s); uint8_t *l = malloc(n);
        for (size_t i = 0; i < n; i++) {
            l[i] = urand() < 0.3;
            double v = urand() + 0.3 * l[i];
            s[i] = levels ? floor(v * levels) / levels : v;
        }
        l[0] = 1; l[1] = 0;
        glad_roc_result r;
        CHECK(glad_roc_binary(s, l, n, &r, NULL, NULL) == 0);
        CHECK_NEAR(r.auroc, brute_auroc(s, l, n), 1e-12);
        double ap, f1;
        brute_ap_f1(s, l, n, &ap, &f1);
        CHECK_NEAR(r.ap, ap, 1e-12);
        CHECK_NEAR(r.f1max, f1, 1e-12);
        /* pixel path (f32 keys, radix sort) agrees with the image path on the same data */
        float *mf = malloc(n * sizeof *mf); double *sd = malloc(n * sizeof *sd);
        for (size_t i = 0; i < n; i++) { mf[i] = (float)s[i]; sd[i] = mf[i]; }
        glad_pixset ps; glad_pixset_init(&ps);
        uint32_t id;
        CHECK(glad_pixset_add(&ps, mf, l, 1, (int)n, &id) == 0);
        CHECK(glad_pixset_sort(&ps) == 0);
        for (size_t i = 1; i < ps.n; i++) CHECK((ps.px[i - 1] >> 32) <= (ps.px[i] >> 32));
        glad_pro_opts o = { 0.3, 200, 0 };
        glad_pix_metrics pm;
        CHECK(glad_pixset_eval(&ps, NULL, &o, &pm, NULL, NULL, NULL) == 0);
        glad_roc_result r2;
        CHECK(glad_roc_binary(sd, l, n, &r2, NULL, NULL) == 0);
        CHECK_NEAR(pm.auroc, r2.auroc, 1e-12);
        CHECK_NEAR(pm.ap, r2.ap, 1e-12);
        CHECK_NEAR(pm.f1max, r2.f1max, 1e-12);
        glad_pixset_free(&ps);
        free(mf); free(sd); free(s); free(l);
    }
    /* radix sort on a large set with negative, zero and -0 scores, parallel tasks */
    size_t n = 300000;
    float *m = malloc(n * sizeof *m); uint8_t *k = calloc(n, 1);
    for (size_t i = 0; i < n; i++) m[i] = (float)((urand() - 0.5) * (i % 7 == 0 ? 1e-30 : 10.0));
    m[0] = -0.0f; m[1] = 0.0f; k[0] = 1;
    glad_pixset ps; glad_pixset_init(&ps);
    uint32_t id;
    CHECK(glad_pixset_add(&ps, m, k, 1, (int)n, &id) == 0);
    CHECK(glad_pixset_sort(&ps) == 0);
    int ok = 1;
    for (size_t i = 1; i < ps.n; i++) if ((ps.px[i - 1] >> 32) > (ps.px[i] >> 32)) ok = 0;
    CHECK(ok);
    glad_pixset_free(&ps);
    free(m); free(k);
}

/* Group filter: evaluating a subset of images equals a pixset built from that subset */
static void filter_check(void)
{
    glad_pixset all, sub;
    glad_pixset_init(&all); glad_pixset_init(&sub);
    int h = 12, w = 10;
    float m[120]; uint8_t k[120];
    uint8_t in[6];
    uint32_t id;
    for (int im = 0; im < 6; im++) {
        for (int i = 0; i < h * w; i++) {
            int y = i / w, x = i % w;
            k[i] = (im % 2) && ((y > 2 && y < 6 && x > im && x < im + 4) || (y == 9 && x == 2));
            m[i] = (float)(urand() + 0.6 * k[i]);
        }
        CHECK(glad_pixset_add(&all, m, k, h, w, &id) == 0);
        in[im] = im == 0 || im == 3 || im == 4 || im == 5;
        if (in[im]) CHECK(glad_pixset_add(&sub, m, k, h, w, &id) == 0);
    }
    CHECK(glad_pixset_sort(&all) == 0);
    CHECK(glad_pixset_sort(&sub) == 0);
    glad_pro_opts o = { 0.3, 200, 0 };
    glad_pix_metrics a, b;
    glad_curve c; glad_curve_init(&c, 0);
    CHECK(glad_pixset_eval(&all, in, &o, &a, NULL, NULL, &c) == 0);
    CHECK(glad_pixset_eval(&sub, NULL, &o, &b, NULL, NULL, NULL) == 0);
    CHECK(a.nreg == b.nreg && a.npix == b.npix && a.npos == b.npos);
    CHECK_NEAR(a.auroc, b.auroc, 1e-12); CHECK_NEAR(a.ap, b.ap, 1e-12); CHECK_NEAR(a.f1max, b.f1max, 1e-12);
    CHECK_NEAR(a.aupro, b.aupro, 1e-12); CHECK_NEAR(a.pro_compat, b.pro_compat, 1e-12);
    CHECKF(c.n > 2 && c.x[0] == 0 && c.x[c.n - 1] == 1.0 && fabs(c.y[c.n - 1] - 1.0) < 1e-12, "n %zu last %g %g", c.n, c.n ? c.x[c.n - 1] : -1, c.n ? c.y[c.n - 1] : -1);
    glad_curve_free(&c);
    glad_pixset_free(&all); glad_pixset_free(&sub);
}

/* PRO by definition on a few small maps: for every distinct threshold t
 * (descending), binary = score >= t, per-region TP counted by scanning the
 * labels; exact trapezoid to FPR lim with interpolation; and the compat
 * variant literally (score > th over the 200 numpy-1.x thresholds). */
static void brute_pro(const float *m, const uint8_t *k, int nimg, int h, int w, double lim, double *aupro, double *compat)
{
    size_t P = (size_t)nimg * h * w;
    uint32_t *lab = malloc(P * sizeof *lab), nreg = 0;
    for (int i = 0; i < nimg; i++) {
        uint32_t r;
        glad_label_regions(k + (size_t)i * h * w, h, w, lab + (size_t)i * h * w, &r);
        for (size_t q = 0; q < (size_t)h * w; q++) if (lab[(size_t)i * h * w + q]) lab[(size_t)i * h * w + q] += nreg;
        nreg += r;
    }
    double *area = calloc(nreg + 1, sizeof *area), *tp = malloc((nreg + 1) * sizeof *tp);
    double nneg = 0;
    for (size_t q = 0; q < P; q++) { if (lab[q]) area[lab[q]]++; else nneg++; }
    /* exact */
    double xp = 0, yp = 0, a = 0, t = INFINITY;
    int done = 0;
    for (;;) {
        double nt = -INFINITY; int found = 0;
        for (size_t q = 0; q < P; q++) if (m[q] < t && (!found || m[q] > nt)) { nt = m[q]; found = 1; }
        if (!found || done) break;
        t = nt;
        double fp = 0, pro = 0;
        for (uint32_t r = 0; r <= nreg; r++) tp[r] = 0;
        for (size_t q = 0; q < P; q++) if (m[q] >= t) { if (lab[q]) tp[lab[q]]++; else fp++; }
        for (uint32_t r = 1; r <= nreg; r++) pro += tp[r] / area[r];
        double x = fp / nneg, y = pro / nreg;
        if (x >= lim) { double yl = yp + (y - yp) * (lim - xp) / (x - xp); a += (lim - xp) * (yp + yl) / 2; done = 1; }
        else a += (x - xp) * (yp + y) / 2;
        xp = x; yp = y;
    }
    *aupro = a / lim;
    /* compat */
    float mn = INFINITY, mx = -INFINITY;
    for (size_t q = 0; q < P; q++) { if (m[q] < mn) mn = m[q]; if (m[q] > mx) mx = m[q]; }
    float range = mx - mn;
    double delta = (double)range / 200;
    long nth = (long)ceil((double)range / delta);
    double *fx = malloc(nth * sizeof *fx), *fy = malloc(nth * sizeof *fy);
    double d = ((double)mn + delta) - (double)mn;
    for (long i = 0; i < nth; i++) {
        double th = i == 0 ? mn : i == 1 ? (double)mn + delta : (double)mn + i * d;
        float thf = (float)th;
        double fp = 0, pro = 0;
        for (uint32_t r = 0; r <= nreg; r++) tp[r] = 0;
        for (size_t q = 0; q < P; q++) if (m[q] > thf) { if (lab[q]) tp[lab[q]]++; else fp++; }
        for (uint32_t r = 1; r <= nreg; r++) pro += tp[r] / area[r];
        fx[i] = fp / nneg; fy[i] = pro / nreg;
    }
    double mxk = 0; long kept = 0;
    for (long i = 0; i < nth; i++) if (fx[i] < lim) { kept++; if (fx[i] > mxk) mxk = fx[i]; }
    double c = 0; int have = 0; double px = 0, py = 0;
    for (long i = 0; i < nth; i++) {
        if (!(fx[i] < lim)) continue;
        double x = fx[i] / mxk;
        if (have) c += (px - x) * (py + fy[i]) / 2;
        px = x; py = fy[i]; have = 1;
    }
    *compat = kept >= 2 ? c : NAN;
    free(fx); free(fy); free(lab); free(area); free(tp);
}

static void pro_vs_brute(void)
{
    for (int trial = 0; trial < 6; trial++) {
        int nimg = 3, h = 14, w = 11;
        size_t P = (size_t)nimg * h * w;
        float *m = malloc(P * sizeof *m); uint8_t *k = calloc(P, 1);
        for (int i = 0; i < nimg; i++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    size_t q = ((size_t)i * h + y) * w + x;
                    k[q] = i != 1 && ((y > 2 + trial % 3 && y < 7 && x > 1 && x < 5 + i) || (y == 11 && x > 6) || (y == 12 && x == 3));
                    double v = urand() + 0.5 * k[q];
                    m[q] = (float)(trial % 2 ? floor(v * 16) / 16 : v);   /* ties in odd trials */
                }
        glad_pixset ps; glad_pixset_init(&ps);
        uint32_t id;
        for (int i = 0; i < nimg; i++) CHECK(glad_pixset_add(&ps, m + (size_t)i * h * w, k + (size_t)i * h * w, h, w, &id) == 0);
        CHECK(glad_pixset_sort(&ps) == 0);
        glad_pro_opts o = { 0.3, 200, 0 };
        glad_pix_metrics pm;
        CHECK(glad_pixset_eval(&ps, NULL, &o, &pm, NULL, NULL, NULL) == 0);
        double a, c;
        brute_pro(m, k, nimg, h, w, 0.3, &a, &c);
        CHECK_NEAR(pm.aupro, a, 1e-12);
        CHECK_NEAR(pm.pro_compat, c, 1e-12);
        glad_pixset_free(&ps);
        free(m); free(k);
    }
}

int main(void)
{
    glad_st *st = NULL;
    if (glad_st_open(&st, FIX) == 0) {
        image_case(st, "img_ties");
        image_case(st, "img_perfect");
        image_case(st, "img_inverted");
        image_case(st, "img_float");
        pixel_case(st);
        glad_st_close(st);
    } else {
        CHECKF(0, "cannot open %s", FIX);
    }
    own_cases();
    property_checks();
    filter_check();
    pro_vs_brute();
    return check_done();
}
