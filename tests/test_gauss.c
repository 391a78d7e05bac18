/* test_gauss.c - lib/score/gauss: the Ledoit-Wolf fit against
 * scikit-learn's (tests/fixtures/gauss-lw.case.safetensors, written by
 * tests/ref/gauss_ref.py), pooling, the score's invariances, refusals, and
 * the whole-image Gaussians of a bank: gathered, fitted, saved, loaded,
 * scored alike, malformed files refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "score/bank.h"
#include "score/gauss.h"

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-300); }

/* one fixture case: location, precision, shrinkage, squared distances, scale */
static void fixture_case(glad_st *st, int k)
{
    char key[64];
    glad_tensor X = {0}, Y = {0}, loc = {0}, P = {0}, sh = {0}, q = {0}, sc = {0};
    glad_tensor *t[] = {&X, &Y, &loc, &P, &sh, &q, &sc};
    const char *names[] = {"X", "Y", "location", "precision", "shrinkage", "maha", "scale"};
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof key, "%d.%s", k, names[i]);
        int rc = i < 2 ? glad_st_get_f32(st, key, t[i]) : glad_st_get(st, key, t[i]);
        CHECKF(rc == 0, "fixture tensor %s", key);
        if (rc) goto out;
    }
    int n = (int)X.shape[0], C = (int)X.shape[1], m = (int)Y.shape[0];
    const double *el = loc.data, *eP = P.data, *eq = q.data;
    glad_gauss g;
    CHECK(glad_gauss_fit(&g, X.data, n, C) == 0);
    CHECK_NEAR(g.shrinkage, ((double *)sh.data)[0], 1e-9);
    double e = 0, pmax = 0;
    for (int c = 0; c < C; c++) e = fmax(e, fabs(g.mean[c] - el[c]));
    CHECKF(e < 1e-6, "case %d: location max error %g", k, e);
    e = 0;
    for (int i = 0; i < C * C; i++) { e = fmax(e, fabs(g.prec[i] - eP[i])); pmax = fmax(pmax, fabs(eP[i])); }
    CHECKF(e < 1e-8 * pmax, "case %d: precision max error %g of %g", k, e, pmax);
    CHECKF(rel(g.scale, ((double *)sc.data)[0]) < 1e-8, "case %d: scale %.12g vs %.12g", k, g.scale, ((double *)sc.data)[0]);
    for (int i = 0; i < m; i++) {
        double d;
        CHECK(glad_gauss_score(&g, (const float *)Y.data + (size_t)i * C, C, &d) == 0);
        CHECKF(rel(d * g.scale, eq[i]) < 1e-8, "case %d query %d: %.12g vs %.12g", k, i, d * g.scale, eq[i]);
    }
    glad_gauss_free(&g);
out:
    for (int i = 0; i < 7; i++) glad_tensor_free(t[i]);
}

static void randn(float *x, size_t n, uint64_t seed)
{
    glad_rng r;
    glad_rng_seed(&r, seed, 0, 0);
    glad_rng_normal_f32(&r, x, n);
}

int main(void)
{
    glad_st *st;
    if (glad_st_open(&st, "tests/fixtures/gauss-lw.case.safetensors")) CHECKF(0, "fixture missing");
    else {
        fixture_case(st, 0);   /* n > C */
        fixture_case(st, 1);   /* n < C: singular sample covariance, shrinkage > 0 */
        glad_st_close(st);
    }

    /* pooling: the mean over positions per channel */
    {
        float f[2 * 3 * 2] = {1, 2, 3, 4, 5, 6, -1, -1, -1, -1, -1, 5}, v[2];
        CHECK(glad_gauss_pool(v, f, 2, 3, 2) == 0);
        CHECK_NEAR(v[0], 3.5, 1e-6);
        CHECK_NEAR(v[1], 0.0, 1e-6);
        f[4] = NAN;
        CHECK(glad_gauss_pool(v, f, 2, 3, 2) == GLAD_ENAN);
    }

    /* invariances: the fitted mean scores 0; a copy of the data shifted and
     * scaled by one factor (shrinkage and Mahalanobis distance are both free
     * of that) scores its shifted and scaled queries alike. The channels are
     * correlated and of unequal spread, so the shrinkage is well below 1
     * (iid channels would be shrunk almost wholly to the identity, rightly) */
    {
        int n = 400, C = 5;
        float *X = malloc(sizeof(float) * n * C), *X2 = malloc(sizeof(float) * n * C), q[5], q2[5], mf[5];
        randn(X, (size_t)n * C, 7);
        for (int i = 0; i < n; i++)
            for (int c = C - 1; c >= 0; c--) X[i * C + c] = (float)(c + 1) * X[i * C + c] + 0.8f * X[i * C];
        for (int i = 0; i < n * C; i++) X2[i] = 3 * X[i] + 10;
        glad_gauss a, b;
        CHECK(glad_gauss_fit(&a, X, n, C) == 0 && glad_gauss_fit(&b, X2, n, C) == 0);
        CHECKF(a.shrinkage < 0.2, "shrinkage %g with 400 images of 5 correlated channels", a.shrinkage);
        CHECK_NEAR(a.shrinkage, b.shrinkage, 1e-9);
        for (int c = 0; c < C; c++) mf[c] = (float)a.mean[c];
        double d0 = 1, d1, d2;
        CHECK(glad_gauss_score(&a, mf, C, &d0) == 0);
        CHECK(d0 < 1e-9);
        randn(q, C, 8);
        for (int c = 0; c < C; c++) q2[c] = 3 * q[c] + 10;
        CHECK(glad_gauss_score(&a, q, C, &d1) == 0 && glad_gauss_score(&b, q2, C, &d2) == 0);
        CHECKF(rel(d1, d2) < 1e-5, "%g vs %g", d1, d2);
        /* images like the fitted ones score about 1 (the scale is the in-sample
         * median), a far one much more */
        double s = 0;
        for (int i = 0; i < 50; i++) {
            float z[5];
            randn(z, C, 100 + (uint64_t)i);
            for (int c = C - 1; c >= 0; c--) z[c] = (float)(c + 1) * z[c] + 0.8f * z[0];
            double d;
            glad_gauss_score(&a, z, C, &d);
            s += d;
        }
        CHECKF(s / 50 > 0.6 && s / 50 < 2, "mean score of normal queries %g", s / 50);
        for (int c = 0; c < C; c++) mf[c] = (float)a.mean[c] + (c == 2 ? 30.0f : 0.0f);
        CHECK(glad_gauss_score(&a, mf, C, &d1) == 0 && d1 > 5);
        /* refusals: wrong length, NaN, too few images, identical images */
        q[2] = NAN;
        CHECK(glad_gauss_score(&a, q, C, &d1) == GLAD_ENAN);
        CHECK(glad_gauss_score(&a, q, C - 1, &d1) == GLAD_ESHAPE);
        glad_gauss c;
        CHECK(glad_gauss_fit(&c, X, 1, C) == GLAD_EINVAL);
        for (int i = 0; i < n * C; i++) X2[i] = 1;
        CHECK(glad_gauss_fit(&c, X2, n, C) == GLAD_ERANGE);
        CHECK(c.mean == NULL && c.prec == NULL);
        X2[0] = NAN;
        CHECK(glad_gauss_fit(&c, X2, n, C) == GLAD_ENAN);
        /* glad_gauss_set: a copy, symmetric and finite checked */
        CHECK(glad_gauss_set(&c, C, a.mean, a.prec, a.scale) == 0);
        CHECK(glad_gauss_score(&c, q2, C, &d2) == 0 && glad_gauss_score(&a, q2, C, &d1) == 0 && d1 == d2);
        glad_gauss_free(&c);
        double *bad = malloc(sizeof(double) * C * C);
        memcpy(bad, a.prec, sizeof(double) * C * C);
        bad[1] += 1e-3;   /* not symmetric */
        CHECK(glad_gauss_set(&c, C, a.mean, bad, a.scale) == GLAD_EFORMAT);
        CHECK(glad_gauss_set(&c, C, a.mean, a.prec, 0) == GLAD_EFORMAT);
        free(bad);
        glad_gauss_free(&a);
        glad_gauss_free(&b);
        free(X);
        free(X2);
    }

    /* a bank's Gaussians: gathered per image, fitted, saved, loaded, scored alike */
    {
        const char *layers[] = {"12"}, *glob[] = {"16", "14"};
        glad_bank b, l;
        int C16 = 6, C14 = 4, h = 3, w = 2, n = 30;
        CHECK(glad_bank_init(&b, 1, layers) == 0);
        CHECK(glad_bank_init_global(&b, 2, glob) == 0);
        CHECK(glad_bank_init_global(&b, 2, glob) == GLAD_EINVAL);   /* once */
        float *f = malloc(sizeof(float) * C16 * h * w), *f2 = malloc(sizeof(float) * C14 * h * w), *f12 = malloc(sizeof(float) * 8 * h * w);
        for (int i = 0; i < n; i++) {
            randn(f, (size_t)C16 * h * w, 200 + (uint64_t)i);
            randn(f2, (size_t)C14 * h * w, 300 + (uint64_t)i);
            randn(f12, (size_t)8 * h * w, 400 + (uint64_t)i);
            CHECK(glad_bank_add(&b, 0, f12, 8, h, w, 1 << 20) == 0);
            CHECK(glad_bank_add_global(&b, 0, f, C16, h, w) == 0);
            CHECK(glad_bank_add_global(&b, 1, f2, C14, h, w) == 0);
        }
        CHECK(glad_bank_add_global(&b, 1, f, C16, h, w) == GLAD_ESHAPE);
        CHECK(glad_bank_fit_global(&b) == 0);
        CHECK(b.gauss[0].C == C16 && b.gauss[1].C == C14 && b.gx[0] == NULL);
        char path[] = "/tmp/glad-test-gauss-XXXXXX";
        int fd = mkstemp(path);
        if (fd >= 0) close(fd);
        CHECK(glad_bank_save(&b, path) == 0);
        CHECK(glad_bank_load(&l, path) == 0);
        CHECK(l.nglobal == 2 && !strcmp(l.glayer[0], "16") && !strcmp(l.glayer[1], "14"));
        randn(f, (size_t)C16 * h * w, 999);
        randn(f2, (size_t)C14 * h * w, 998);
        const float *fs[2] = {f, f2};
        int Cs[2] = {C16, C14}, hs[2] = {h, h}, ws[2] = {w, w};
        double d1 = -1, d2 = -2, da, db;
        CHECK(glad_bank_score_global(&b, fs, Cs, hs, ws, &d1) == 0);
        CHECK(glad_bank_score_global(&l, fs, Cs, hs, ws, &d2) == 0);
        CHECK(d1 == d2 && d1 > 0);
        /* the mean of the layers' own scores */
        float v[6];
        glad_gauss_pool(v, f, C16, h, w);
        glad_gauss_score(&b.gauss[0], v, C16, &da);
        glad_gauss_pool(v, f2, C14, h, w);
        glad_gauss_score(&b.gauss[1], v, C14, &db);
        CHECK_NEAR(d1, (da + db) / 2, 1e-12);
        int Cbad[2] = {C14, C14};
        CHECK(glad_bank_score_global(&l, fs, Cbad, hs, ws, &d2) == GLAD_ESHAPE);
        glad_bank_free(&l);

        /* malformed files: a missing part, a precision of the wrong shape */
        glad_st *s2;
        CHECK(glad_st_open(&s2, path) == 0);
        const char *keep[16];
        glad_tensor tt[16];
        const glad_tensor *tp[16];
        int nt = 0;
        for (int i = 0; i < glad_st_count(s2); i++) {
            const glad_st_entry *e = glad_st_entry_at(s2, i);
            if (!strcmp(e->name, "gauss.14.scale")) continue;
            keep[nt] = e->name;
            CHECK(glad_st_get(s2, e->name, &tt[nt]) == 0);
            tp[nt] = &tt[nt];
            nt++;
        }
        const char *mk[3] = {"glad_bank", "layers", "global"}, *mv[3] = {"1", "12", "16,14"};
        char p2[] = "/tmp/glad-test-gauss2-XXXXXX";
        fd = mkstemp(p2);
        if (fd >= 0) close(fd);
        CHECK(glad_st_save(p2, nt, keep, tp, 3, mk, mv) == 0);
        CHECK(glad_bank_load(&l, p2) == GLAD_EFORMAT);
        CHECK(strstr(glad_error_detail(), "gauss.14.scale") != NULL);
        mv[2] = "16";   /* only the complete one: loads */
        CHECK(glad_st_save(p2, nt, keep, tp, 3, mk, mv) == 0);
        CHECK(glad_bank_load(&l, p2) == 0 && l.nglobal == 1);
        glad_bank_free(&l);
        mv[2] = "16,16";
        CHECK(glad_st_save(p2, nt, keep, tp, 3, mk, mv) == 0);
        CHECK(glad_bank_load(&l, p2) == GLAD_EFORMAT);
        for (int i = 0; i < nt; i++) glad_tensor_free(&tt[i]);
        glad_st_close(s2);
        unlink(p2);
        unlink(path);
        glad_bank_free(&b);
        free(f); free(f2); free(f12);
    }
    return check_done();
}
