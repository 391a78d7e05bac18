/* test_bank.c - lib/score/bank: the nearest-neighbour query against a
 * brute-force double computation, subsample and coreset properties, the
 * file round trip and refusals, the pipeline's bank modes, and the radii
 * (glad_bank_radius, glad_bank_query_norm) against brute force. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "core/rng.h"
#include "imgproc/standardize.h"
#include "io/safetensors.h"
#include "score/bank.h"
#include "score/pipeline.h"
#include "score/score.h"

/* min over the maps' positions of 1 - cos in double */
static double brute(const float *q, size_t qhw, size_t p, int C, const float *const *maps, int nmaps, size_t hw)
{
    double best = 2, qn = 0;
    for (int c = 0; c < C; c++) qn += (double)q[c * qhw + p] * q[c * qhw + p];
    for (int k = 0; k < nmaps; k++)
        for (size_t j = 0; j < hw; j++) {
            double dot = 0, bn = 0;
            for (int c = 0; c < C; c++) { double v = maps[k][c * hw + j]; dot += v * q[c * qhw + p]; bn += v * v; }
            double d = 1 - dot / (fmax(sqrt(qn), 1e-12) * fmax(sqrt(bn), 1e-12));
            if (d < best) best = d;
        }
    return best;
}

static void randn(float *x, size_t n, uint64_t seed)
{
    glad_rng r;
    glad_rng_seed(&r, seed, 0, 0);
    glad_rng_normal_f32(&r, x, n);
}

/* max over all of b0 (n x C rows) of the distance to the nearest kept row */
static double covering_radius(const float *all, int64_t n, const float *kept, int64_t k, int C)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double best = INFINITY;
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int c = 0; c < C; c++) { double e = all[i * C + c] - kept[j * C + c]; s += e * e; }
            if (s < best) best = s;
        }
        if (best > worst) worst = best;
    }
    return sqrt(worst);
}

/* glad_bank_load of a one-layer bank file ("bank.a" of tp) whose metadata has
 * glad_bank 1, layers a and key = val; a failed save is -1000, no load code */
static int load_with_meta(glad_bank *b, const char *path, const char *const *tn, const glad_tensor *const *tp, const char *key, const char *val)
{
    const char *k[3] = {"glad_bank", "layers", key}, *v[3] = {"1", "a", val};
    if (glad_st_save(path, 1, tn, tp, 3, k, v)) return -1000;
    return glad_bank_load(b, path);
}

/* brute-force radius of row j of x (n x C unit rows, images src): min over the
 * rows k of another image, among those with use[k] (NULL: all), of 1 - <x_j, x_k> */
static double brute_radius(const float *x, const int32_t *src, const unsigned char *use, int64_t n, int C, int64_t j)
{
    double best = INFINITY;
    for (int64_t k = 0; k < n; k++) {
        if (src[k] == src[j] || (use && !use[k])) continue;
        double dot = 0;
        for (int c = 0; c < C; c++) dot += (double)x[j * C + c] * x[k * C + c];
        if (1 - dot < best) best = 1 - dot;
    }
    return best;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the radii: exact at fraction 1, bounded below by it otherwise, kept in
 * step by subsample and coreset, read by the query's norms, saved and
 * loaded, and refused where they cannot be right */
static void test_radius(void)
{
    enum { RC = 6, RH = 2, RW = 3, RHW = RH * RW, NI = 4, RN = NI * RHW };
    float maps[NI][RC * RHW], q[RC * RHW];
    for (int k = 0; k < NI; k++) randn(maps[k], RC * RHW, 40 + k);
    randn(q, RC * RHW, 50);
    const char *one[1] = {"a"};
    glad_bank b, b2;
    CHECK(glad_bank_init(&b, 1, one) == 0 && glad_bank_init(&b2, 1, one) == 0);
    for (int k = 0; k < NI; k++) CHECK(glad_bank_add(&b, 0, maps[k], RC, RH, RW, 1 << 20) == 0 && glad_bank_add(&b2, 0, maps[k], RC, RH, RW, 1 << 20) == 0);
    CHECK(b.nimg[0] == NI && b.src[0][0] == 0 && b.src[0][RN - 1] == NI - 1);
    /* a norm before the radii exist is refused, so is a fraction outside (0,1] */
    float D[RHW], Dn[RHW];
    CHECK(glad_bank_query_norm(D, &b, 0, GLAD_BANK_NORM_RATIO, q, RC, RH, RW) == GLAD_EINVAL);
    CHECK(glad_bank_radius(&b, 0, 0, 1) == GLAD_EINVAL && glad_bank_radius(&b, 0, 1.5, 1) == GLAD_EINVAL);
    /* fraction 1: every radius is the brute-force leave-one-image-out distance */
    CHECK(glad_bank_radius(&b, 0, 1, 7) == 0 && b.radius[0] && b.radius_frac == 1);
    double e = 0, rs[RN];
    for (int64_t j = 0; j < RN; j++) {
        rs[j] = brute_radius(b.x[0], b.src[0], NULL, RN, RC, j);
        e = fmax(e, fabs(b.radius[0][j] - rs[j]));
    }
    CHECKF(e < 1e-5, "radius vs brute force: %g", e);
    qsort(rs, RN, sizeof(double), cmp_double);
    CHECK_NEAR(b.rmed[0], rs[(RN - 1) / 2], 1e-5);
    /* a quarter of the vectors as the reference set: each radius the brute
     * force over that draw (never below the exact one), and the same draw for
     * the same seed */
    CHECK(glad_bank_radius(&b2, 0, 0.25, 3) == 0);
    int below = 0, same = 1;
    for (int64_t j = 0; j < RN; j++) below += b2.radius[0][j] < b.radius[0][j] - 1e-6f;
    CHECK(below == 0);
    {
        glad_bank b3;
        CHECK(glad_bank_init(&b3, 1, one) == 0);
        for (int k = 0; k < NI; k++) CHECK(glad_bank_add(&b3, 0, maps[k], RC, RH, RW, 1 << 20) == 0);
        CHECK(glad_bank_radius(&b3, 0, 0.25, 3) == 0);
        for (int64_t j = 0; j < RN; j++) same &= b3.radius[0][j] == b2.radius[0][j];
        CHECK(same);
        /* vectors after the radii would have none: refused */
        CHECK(glad_bank_add(&b3, 0, maps[0], RC, RH, RW, 1 << 20) == GLAD_EINVAL);
        glad_bank_free(&b3);
    }
    /* a layer's draw follows its index among the layers of its tail: in a bank
     * of "x" and "a~tanh" the second layer draws as "a" alone (the first of
     * its tail), in one of "x" and "a" it does not (the second) */
    {
        const char *two_tails[2] = {"x", "a~tanh"}, *two[2] = {"x", "a"};
        glad_bank bt, bp;
        CHECK(glad_bank_init(&bt, 2, two_tails) == 0 && glad_bank_init(&bp, 2, two) == 0);
        for (int l = 0; l < 2; l++)
            for (int k = 0; k < NI; k++) CHECK(glad_bank_add(&bt, l, maps[k], RC, RH, RW, 1 << 20) == 0 && glad_bank_add(&bp, l, maps[k], RC, RH, RW, 1 << 20) == 0);
        CHECK(glad_bank_radius(&bt, 1, 0.25, 3) == 0 && glad_bank_radius(&bp, 1, 0.25, 3) == 0);
        int same_t = 1, same_p = 1;
        for (int64_t j = 0; j < RN; j++) same_t &= bt.radius[1][j] == b2.radius[0][j], same_p &= bp.radius[1][j] == b2.radius[0][j];
        CHECK(same_t && !same_p);
        glad_bank_free(&bt);
        glad_bank_free(&bp);
    }
    /* the norms: ratio d / (r(b*) + median r), diff d - r(b*), b* the brute-force nearest */
    CHECK(glad_bank_query(D, &b, 0, q, RC, RH, RW) == 0);
    for (int nm = GLAD_BANK_NORM_RATIO; nm <= GLAD_BANK_NORM_DIFF; nm++) {
        CHECK(glad_bank_query_norm(Dn, &b, 0, (glad_bank_norm)nm, q, RC, RH, RW) == 0);
        double en = 0;
        for (int p = 0; p < RHW; p++) {
            double qn = 0, best = -2;
            int64_t arg = 0;
            for (int c = 0; c < RC; c++) qn += (double)q[c * RHW + p] * q[c * RHW + p];
            for (int64_t j = 0; j < RN; j++) {
                double dot = 0;
                for (int c = 0; c < RC; c++) dot += b.x[0][j * RC + c] * q[c * RHW + p] / sqrt(qn);
                if (dot > best) { best = dot; arg = j; }
            }
            double r = b.radius[0][arg], want = nm == GLAD_BANK_NORM_RATIO ? (1 - best) / (r + b.rmed[0]) : (1 - best) - r;
            en = fmax(en, fabs(Dn[p] - want));
        }
        CHECKF(en < 1e-5, "bank norm %s: %g", glad_bank_norms[nm], en);
    }
    /* the pipeline reads the bank through the option (replace, no smoothing) */
    {
        float img[RHW] = {0};
        glad_score_opts o = glad_score_presets[GLAD_SCORE_PRESET_GLAD];
        o.sigma = 0; o.fg = GLAD_SCORE_FG_NONE; o.bidir = GLAD_BIDIR_OFF; o.reducer = GLAD_REDUCE_MAX; o.bank_norm = GLAD_BANK_NORM_DIFF;
        glad_score_map m;
        glad_tensor am = {0};
        double sc;
        CHECK(glad_bank_query_norm(Dn, &b, 0, GLAD_BANK_NORM_DIFF, q, RC, RH, RW) == 0);
        CHECK(glad_score_map_begin(&m, &o, img, NULL, 1, RH, RW, NULL) == 0);
        CHECK(glad_score_map_add_bank_layer(&m, &b, 0, GLAD_BANK_REPLACE, q, NULL, RC, RH, RW) == 0);
        CHECK(glad_score_map_finish(&m, &am, &sc) == 0);
        double ep = 0;
        for (int p = 0; p < RHW; p++) ep = fmax(ep, fabs(((float *)am.data)[p] - Dn[p]));
        CHECKF(ep < 1e-6, "pipeline diff map: %g", ep);
        glad_tensor_free(&am);
        glad_score_map_free(&m);
    }
    /* save and load: the same radii, fraction and median, and the same norms */
    char path[] = "/tmp/glad-test-radius-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    CHECK(glad_bank_save(&b, path) == 0);
    glad_bank l;
    CHECK(glad_bank_load(&l, path) == 0);
    if (l.radius[0]) {
        int eq = l.n[0] == RN && l.radius_frac == 1 && l.rmed[0] == b.rmed[0];
        for (int64_t j = 0; eq && j < RN; j++) eq = l.radius[0][j] == b.radius[0][j];
        CHECK(eq);
        float Dl[RHW];
        CHECK(glad_bank_query_norm(Dl, &l, 0, GLAD_BANK_NORM_RATIO, q, RC, RH, RW) == 0 &&
              glad_bank_query_norm(Dn, &b, 0, GLAD_BANK_NORM_RATIO, q, RC, RH, RW) == 0 && !memcmp(Dl, Dn, sizeof Dl));
        /* a loaded bank does not know its vectors' images: no new radii */
        CHECK(!l.src[0] && glad_bank_radius(&l, 0, 1, 1) == GLAD_EINVAL);
    } else CHECK(!"radii lost in the round trip");
    glad_bank_free(&l);
    /* the fraction of the radii's reference set is kept too */
    CHECK(glad_bank_save(&b2, path) == 0 && glad_bank_load(&l, path) == 0 && l.radius[0] && l.radius_frac == 0.25);
    glad_bank_free(&l);
    /* refused files: radius metadata without the tensor, a tensor of the
     * wrong length, values outside [0, 2] or NaN, a fraction that is not one,
     * half the radii 0 (the ratio's median) */
    {
        float bx[3 * RC], rr[3] = {0.1f, 0.2f, 0.3f};
        for (int k = 0; k < 3 * RC; k++) bx[k] = k % RC == k / RC ? 1.0f : 0.0f;
        glad_tensor tb = {.dtype = GLAD_DT_F32, .ndim = 2, .shape = {3, RC}, .data = bx};
        glad_tensor tr = {.dtype = GLAD_DT_F32, .ndim = 1, .shape = {3}, .data = rr};
        glad_tensor tr2 = {.dtype = GLAD_DT_F32, .ndim = 1, .shape = {2}, .data = rr};
        const char *tn[2] = {"bank.a", "radius.a"};
        const glad_tensor *tp[2] = {&tb, &tr}, *tp2[2] = {&tb, &tr2};
        const char *k4[3] = {"glad_bank", "layers", "radius"}, *v4[3] = {"1", "a", "0.25"}, *vbad[3] = {"1", "a", "2"};
        CHECK(glad_st_save(path, 2, tn, tp, 3, k4, v4) == 0 && glad_bank_load(&l, path) == 0 && l.radius[0] && fabsf(l.rmed[0] - 0.2f) < 1e-7f);
        glad_bank_free(&l);
        CHECK(glad_st_save(path, 1, tn, tp, 3, k4, v4) == 0 && glad_bank_load(&l, path) == GLAD_EFORMAT);
        CHECK(glad_st_save(path, 2, tn, tp2, 3, k4, v4) == 0 && glad_bank_load(&l, path) == GLAD_EFORMAT);
        CHECK(glad_st_save(path, 2, tn, tp, 3, k4, vbad) == 0 && glad_bank_load(&l, path) == GLAD_EFORMAT);
        rr[1] = -0.1f;
        CHECK(glad_st_save(path, 2, tn, tp, 3, k4, v4) == 0 && glad_bank_load(&l, path) == GLAD_EFORMAT);
        rr[1] = NAN;
        CHECK(glad_st_save(path, 2, tn, tp, 3, k4, v4) == 0 && glad_bank_load(&l, path) == GLAD_EFORMAT);
        rr[0] = rr[1] = 0;
        CHECK(glad_st_save(path, 2, tn, tp, 3, k4, v4) == 0 && glad_bank_load(&l, path) == GLAD_EFORMAT);
    }
    unlink(path);
    /* subsample and coreset keep each vector's image and radius with it:
     * radii computed after a coreset are the brute force over the kept
     * vectors by their original images */
    {
        glad_bank bs, bc;
        CHECK(glad_bank_init(&bs, 1, one) == 0 && glad_bank_init(&bc, 1, one) == 0);
        for (int k = 0; k < NI; k++) CHECK(glad_bank_add(&bs, 0, maps[k], RC, RH, RW, 1 << 20) == 0 && glad_bank_add(&bc, 0, maps[k], RC, RH, RW, 1 << 20) == 0);
        CHECK(glad_bank_radius(&bs, 0, 1, 1) == 0 && glad_bank_subsample(&bs, 0, RN / 2, 9) == 0);
        CHECK(glad_bank_coreset(&bc, 0, RN / 2, 9) == 0 && glad_bank_radius(&bc, 0, 1, 1) == 0);
        int okr = 1, oks = 1;
        double ec = 0;
        for (int64_t j = 0; j < RN / 2; j++) {
            int64_t at = -1;   /* the vector's place in the full bank b */
            for (int64_t i = 0; i < RN && at < 0; i++) if (!memcmp(b.x[0] + i * RC, bs.x[0] + j * RC, sizeof(float) * RC)) at = i;
            okr &= at >= 0 && bs.radius[0][j] == b.radius[0][at] && bs.src[0][j] == b.src[0][at];
            at = -1;
            for (int64_t i = 0; i < RN && at < 0; i++) if (!memcmp(b.x[0] + i * RC, bc.x[0] + j * RC, sizeof(float) * RC)) at = i;
            oks &= at >= 0 && bc.src[0][j] == b.src[0][at];
            ec = fmax(ec, fabs(bc.radius[0][j] - brute_radius(bc.x[0], bc.src[0], NULL, RN / 2, RC, j)));
        }
        CHECK(okr && oks);
        CHECKF(ec < 1e-5, "radius after the coreset: %g", ec);
        glad_bank_free(&bs);
        glad_bank_free(&bc);
    }
    /* radii on one layer of two: the file would not say which, refused */
    {
        const char *two[2] = {"a", "b"};
        glad_bank bt;
        char tp2[] = "/tmp/glad-test-radius2-XXXXXX";
        int fd2 = mkstemp(tp2);
        if (fd2 >= 0) close(fd2);
        CHECK(glad_bank_init(&bt, 2, two) == 0);
        for (int k = 0; k < 2; k++) CHECK(glad_bank_add(&bt, 0, maps[k], RC, RH, RW, 1 << 20) == 0 && glad_bank_add(&bt, 1, maps[k], RC, RH, RW, 1 << 20) == 0);
        CHECK(glad_bank_radius(&bt, 0, 1, 1) == 0 && glad_bank_save(&bt, tp2) == GLAD_EINVAL);
        CHECK(glad_bank_radius(&bt, 1, 1, 1) == 0 && glad_bank_save(&bt, tp2) == 0);
        unlink(tp2);
        glad_bank_free(&bt);
    }
    /* one image: no vector of another image, refused */
    {
        glad_bank b1;
        CHECK(glad_bank_init(&b1, 1, one) == 0 && glad_bank_add(&b1, 0, maps[0], RC, RH, RW, 1 << 20) == 0);
        CHECK(glad_bank_radius(&b1, 0, 1, 1) == GLAD_EINVAL && !b1.radius[0]);
        glad_bank_free(&b1);
    }
    glad_bank_free(&b);
    glad_bank_free(&b2);
}

int main(void)
{
    enum { C = 12, H = 5, W = 6, HW = H * W };
    float m0[C * HW], m1[C * HW], q[C * HW], D[HW];
    randn(m0, C * HW, 1); randn(m1, C * HW, 2); randn(q, C * HW, 3);
    const char *names[2] = {"a", "b"};
    /* layer names: L answers for L and L@N (glad-features --also-size) only */
    CHECK(glad_bank_layer_match("12", "12") && glad_bank_layer_match("12", "12@192") && glad_bank_layer_match("12@192", "12@192"));
    CHECK(!glad_bank_layer_match("12", "120") && !glad_bank_layer_match("12", "1") && !glad_bank_layer_match("12@192", "12")
          && !glad_bank_layer_match("12@192", "12@1920") && !glad_bank_layer_match("12@19", "12@192") && !glad_bank_layer_match("1", "12@192"));
    /* and L~T, L~T@N (glad-features --standardize-tail clip,T): L takes every
     * tail and size, L@N every tail at N, L~T that tail at every size */
    CHECK(glad_bank_layer_match("12", "12~tanh") && glad_bank_layer_match("12", "12~tanh@192") && glad_bank_layer_match("12@192", "12~tanh@192")
          && glad_bank_layer_match("12~tanh", "12~tanh") && glad_bank_layer_match("12~tanh", "12~tanh@192") && glad_bank_layer_match("12~tanh@192", "12~tanh@192"));
    CHECK(!glad_bank_layer_match("12~tanh", "12") && !glad_bank_layer_match("12~tanh", "12@192") && !glad_bank_layer_match("12~tanh", "12~open")
          && !glad_bank_layer_match("12~tanh@192", "12@192") && !glad_bank_layer_match("12@192", "12~tanh@160") && !glad_bank_layer_match("1", "12~tanh")
          && !glad_bank_layer_match("12~tan", "12~tanh") && !glad_bank_layer_match("12", "120~tanh"));
    const char *tl;
    CHECK(glad_bank_layer_tail("12~tanh@192", &tl) == 4 && !strncmp(tl, "tanh", 4) && glad_bank_layer_tail("12~open", &tl) == 4 && !strncmp(tl, "open", 4));
    CHECK(glad_bank_layer_tail("12@192", &tl) == 0 && glad_bank_layer_tail("12", &tl) == 0);
    glad_bank b;
    CHECK(glad_bank_init(&b, 2, names) == 0);
    CHECK(glad_bank_add(&b, 0, m0, C, H, W, 1 << 20) == 0);
    CHECK(glad_bank_add(&b, 0, m1, C, H, W, 1 << 20) == 0);
    CHECK(b.n[0] == 2 * HW && b.C[0] == C);
    /* query = brute force over both maps' positions */
    CHECK(glad_bank_query(D, &b, 0, q, C, H, W) == 0);
    const float *maps[2] = {m0, m1};
    double err = 0;
    for (int p = 0; p < HW; p++) err = fmax(err, fabs(D[p] - brute(q, HW, p, C, maps, 2, HW)));
    CHECKF(err < 1e-5, "query vs brute force: %g", err);
    /* a large map against a bank of 600 vectors: the similarity matrix goes in
     * blocks of query rows (16384 at a time here) and column tiles (256, 256, 88);
     * every position still finds its nearest vector */
    {
        enum { C4 = 4, BH = 20, BW = 30, QH = 200, QW = 330 };
        size_t qn = (size_t)QH * QW;
        float *bm = malloc(sizeof(float) * C4 * BH * BW), *qm = malloc(sizeof(float) * C4 * qn), *Dq = malloc(sizeof(float) * qn);
        const char *one[1] = {"big"};
        glad_bank bb;
        randn(bm, (size_t)C4 * BH * BW, 11); randn(qm, (size_t)C4 * qn, 12);
        CHECK(glad_bank_init(&bb, 1, one) == 0 && glad_bank_add(&bb, 0, bm, C4, BH, BW, 1 << 20) == 0);
        CHECK(glad_bank_query(Dq, &bb, 0, qm, C4, QH, QW) == 0);
        const float *bmaps[1] = {bm};
        double e = 0;
        for (size_t p = 0; p < qn; p += 3) e = fmax(e, fabs(Dq[p] - brute(qm, qn, (int)p, C4, bmaps, 1, BH * BW)));
        e = fmax(e, fabs(Dq[qn - 1] - brute(qm, qn, (int)qn - 1, C4, bmaps, 1, BH * BW)));
        CHECKF(e < 1e-5, "blocked query (%zu positions) vs brute force: %g", qn, e);
        glad_bank_free(&bb);
        free(bm); free(qm); free(Dq);
    }
    /* a map's own positions are at distance ~0 */
    CHECK(glad_bank_query(D, &b, 0, m1, C, H, W) == 0);
    err = 0;
    for (int p = 0; p < HW; p++) err = fmax(err, fabs(D[p]));
    CHECKF(err < 1e-5, "own positions: %g", err);
    /* refusals */
    CHECK(glad_bank_add(&b, 0, m0, C - 1, H, W, 1 << 20) == GLAD_ESHAPE);
    CHECK(glad_bank_query(D, &b, 0, q, C - 1, H, W) == GLAD_ESHAPE);
    CHECK(glad_bank_query(D, &b, 1, q, C, H, W) == GLAD_EINVAL);   /* layer b is empty */
    CHECK(glad_bank_add(&b, 0, m0, C, H, W, 3 * HW * C * sizeof(float) - 1) == GLAD_ERANGE);
    float bad[C * HW];
    memcpy(bad, m0, sizeof bad);
    bad[17] = NAN;
    CHECK(glad_bank_add(&b, 1, bad, C, H, W, 1 << 20) == GLAD_ENAN);
    CHECK(b.n[0] == 2 * HW && b.n[1] == 0);   /* refusals leave the bank as it was */
    CHECK(glad_bank_find(&b, "b") == 1 && glad_bank_find(&b, "c") == -1);
    const char *dup[2] = {"x", "x"};
    glad_bank b2;
    CHECK(glad_bank_init(&b2, 2, dup) == GLAD_EINVAL && b2.nlayers == 0 && !b2.layer[0]);

    /* file round trip */
    CHECK(glad_bank_add(&b, 1, m1, C, H, W, 1 << 20) == 0);
    char path[] = "/tmp/test_bank_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(glad_bank_save(&b, path) == 0);
    CHECK(glad_bank_load(&b2, path) == 0);
    CHECK(b2.nlayers == 2 && !strcmp(b2.layer[0], "a") && !strcmp(b2.layer[1], "b"));
    CHECK(b2.n[0] == b.n[0] && b2.C[1] == C && !memcmp(b2.x[0], b.x[0], sizeof(float) * b.n[0] * C));
    glad_bank_free(&b2);
    /* a safetensors file without the bank's metadata; a non-finite bank */
    glad_tensor t = {.dtype = GLAD_DT_F32, .ndim = 2, .shape = {HW, C}, .data = bad};
    const glad_tensor *tp[1] = {&t};
    const char *tn[1] = {"bank.a"}, *mk[2] = {"glad_bank", "layers"}, *mv[2] = {"1", "a"};
    CHECK(glad_st_save(path, 1, tn, tp, 0, NULL, NULL) == 0);
    CHECK(glad_bank_load(&b2, path) == GLAD_EFORMAT);
    CHECK(glad_st_save(path, 1, tn, tp, 2, mk, mv) == 0);
    CHECK(glad_bank_load(&b2, path) == GLAD_ENAN);
    mv[1] = "a,b";
    t.data = m0;
    CHECK(glad_st_save(path, 1, tn, tp, 2, mk, mv) == 0);
    CHECK(glad_bank_load(&b2, path) == GLAD_EFORMAT);   /* layer b's tensor missing */
    /* the features' --pool K: kept through save/load, absent = 1; not an odd 1..63 refused */
    mv[1] = "a";
    CHECK(glad_st_save(path, 1, tn, tp, 2, mk, mv) == 0);
    CHECK(glad_bank_load(&b2, path) == 0 && b2.pool == 1);
    glad_bank_free(&b2);
    b.pool = 5;
    CHECK(glad_bank_save(&b, path) == 0);
    CHECK(glad_bank_load(&b2, path) == 0 && b2.pool == 5);
    glad_bank_free(&b2);
    b.pool = 0;
    {
        const char *bad_pools[] = {"4", "0", "65", "3x", "", "-3"};
        for (size_t k = 0; k < sizeof bad_pools / sizeof *bad_pools; k++)
            CHECK(load_with_meta(&b2, path, tn, tp, "pool", bad_pools[k]) == GLAD_EFORMAT);
        CHECK(load_with_meta(&b2, path, tn, tp, "pool", "63") == 0 && b2.pool == 63);
        glad_bank_free(&b2);
    }
    /* the images' --standardize S likewise: absent = 0, kept exactly through
     * save/load (%.17g), not a number in (0, 8] refused */
    CHECK(glad_bank_save(&b, path) == 0);
    CHECK(glad_bank_load(&b2, path) == 0 && b2.stdz == 0);
    glad_bank_free(&b2);
    b.stdz = 1.2;
    CHECK(glad_bank_save(&b, path) == 0);
    CHECK(glad_bank_load(&b2, path) == 0 && b2.stdz == 1.2);
    glad_bank_free(&b2);
    b.stdz = 0;
    {
        const char *bad[] = {"0", "-1", "8.5", "nan", "1.2x", "", "inf"};
        for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
            CHECK(load_with_meta(&b2, path, tn, tp, "standardize", bad[k]) == GLAD_EFORMAT);
        CHECK(load_with_meta(&b2, path, tn, tp, "standardize", "8") == 0 && b2.stdz == 8);
        glad_bank_free(&b2);
    }
    /* and its tail: absent = clip; tanh and open saved and loaded; a bad name,
     * or a tail without a standardize, refused */
    b.stdz = 1.2;
    for (int t = GLAD_STD_TAIL_CLIP; t <= GLAD_STD_TAIL_OPEN; t++) {
        b.stdz_tail = t;
        CHECK(glad_bank_save(&b, path) == 0);
        CHECK(glad_bank_load(&b2, path) == 0 && b2.stdz_tail == t && b2.stdz == 1.2);
        glad_bank_free(&b2);
    }
    b.stdz_tail = 7;
    CHECK(glad_bank_save(&b, path) == GLAD_EINVAL);
    b.stdz = 0;
    b.stdz_tail = 0;
    {
        const char *bad[] = {"soft", "", "TANH", "tanh "};
        for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
            CHECK(load_with_meta(&b2, path, tn, tp, "standardize_tail", bad[k]) == GLAD_EFORMAT);
        CHECK(load_with_meta(&b2, path, tn, tp, "standardize_tail", "tanh") == GLAD_EFORMAT);   /* no standardize beside it */
    }
    unlink(path);
    CHECK(glad_bank_load(&b2, path) == GLAD_EIO);

    /* subsample: the count, members of the original rows, seeded */
    {
        float *orig = malloc(sizeof(float) * b.n[0] * C);
        memcpy(orig, b.x[0], sizeof(float) * b.n[0] * C);
        int64_t n0 = b.n[0];
        CHECK(glad_bank_subsample(&b, 0, 10, 7) == 0 && b.n[0] == 10);
        int members = 1;
        for (int k = 0; k < 10; k++) {
            int found = 0;
            for (int64_t j = 0; j < n0 && !found; j++) found = !memcmp(b.x[0] + k * C, orig + j * C, sizeof(float) * C);
            members &= found;
        }
        CHECK(members);
        free(orig);
    }
    glad_bank_free(&b);

    /* coreset on clusters: 6 tight clusters of very different sizes (one of a
     * single vector); keeping 6 must cover every cluster (radius small), which a
     * random subsample of 6 does not */
    {
        enum { N = 400, K = 6, CC = 8 };
        static float pts[N * CC], tmp[CC * N];
        int sizes[K] = {300, 60, 25, 10, 4, 1}, at = 0;
        glad_rng r;
        glad_rng_seed(&r, 11, 0, 0);
        for (int k = 0; k < K; k++)
            for (int i = 0; i < sizes[k]; i++, at++)
                for (int c = 0; c < CC; c++) pts[at * CC + c] = (c == k ? 10.0f : 0.0f) + (c == 7 ? 1.0f : 0.0f) + 0.01f * (float)glad_rng_normal(&r);
        /* as a (CC, 1, N) map */
        for (int i = 0; i < N; i++) for (int c = 0; c < CC; c++) tmp[c * N + i] = pts[i * CC + c];
        const char *one[1] = {"x"};
        glad_bank bc, br;
        CHECK(glad_bank_init(&bc, 1, one) == 0 && glad_bank_init(&br, 1, one) == 0);
        CHECK(glad_bank_add(&bc, 0, tmp, CC, 1, N, 1 << 20) == 0 && glad_bank_add(&br, 0, tmp, CC, 1, N, 1 << 20) == 0);
        float *all = malloc(sizeof(float) * N * CC);
        memcpy(all, bc.x[0], sizeof(float) * N * CC);
        CHECK(glad_bank_coreset(&bc, 0, K, 5) == 0 && bc.n[0] == K);
        CHECK(glad_bank_subsample(&br, 0, K, 5) == 0 && br.n[0] == K);
        double rc = covering_radius(all, N, bc.x[0], K, CC), rr = covering_radius(all, N, br.x[0], K, CC);
        CHECKF(rc < 0.05 && rr > 0.5, "coreset radius %g, random %g", rc, rr);
        free(all);
        glad_bank_free(&bc);
        glad_bank_free(&br);
    }

    /* pipeline modes: replace = the bank's distance, union = min with the nn
     * distance, add = the sum (one layer, no smoothing, map at feature size) */
    {
        float img[3 * HW] = {0}, rec[3 * HW] = {0}, fr[C * HW];
        randn(fr, C * HW, 9);
        glad_bank bm;
        CHECK(glad_bank_init(&bm, 1, names) == 0 && glad_bank_add(&bm, 0, m0, C, H, W, 1 << 20) == 0);
        glad_score_opts o = glad_score_presets[GLAD_SCORE_PRESET_GLAD];
        o.sigma = 0; o.fg = GLAD_SCORE_FG_NONE; o.bidir = GLAD_BIDIR_OFF; o.reducer = GLAD_REDUCE_MAX;
        float nn[HW], bk[HW];
        CHECK(glad_score_nn_map(nn, q, HW, fr, HW, C) == 0);
        CHECK(glad_bank_query(bk, &bm, 0, q, C, H, W) == 0);
        double e[3] = {0, 0, 0};
        for (int mode = 0; mode < 3; mode++) {
            glad_score_map m;
            glad_tensor am = {0};
            double s;
            CHECK(glad_score_map_begin(&m, &o, img, mode ? rec : NULL, 3, H, W, NULL) == 0);
            CHECK(glad_score_map_add_bank_layer(&m, &bm, 0, (glad_bank_mode)mode, q, mode ? fr : NULL, C, H, W) == 0);
            CHECK(glad_score_map_finish(&m, &am, &s) == 0);
            const float *a = am.data;
            for (int p = 0; p < HW; p++) {
                double want = mode == GLAD_BANK_REPLACE ? bk[p] : mode == GLAD_BANK_UNION ? fmin(nn[p], bk[p]) : nn[p] + bk[p];
                e[mode] = fmax(e[mode], fabs(a[p] - want));
            }
            glad_tensor_free(&am);
            glad_score_map_free(&m);
        }
        CHECKF(e[0] < 1e-6 && e[1] < 1e-6 && e[2] < 1e-6, "modes: %g %g %g", e[0], e[1], e[2]);
        glad_score_map m;
        CHECK(glad_score_map_begin(&m, &o, img, rec, 3, H, W, NULL) == 0);
        CHECK(glad_score_map_add_bank_layer(&m, &bm, 0, GLAD_BANK_UNION, q, NULL, C, H, W) == GLAD_EINVAL);
        glad_score_map_free(&m);
        glad_bank_free(&bm);
    }
    test_radius();
    return check_done();
}
