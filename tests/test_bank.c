/* test_bank.c - lib/score/bank: the nearest-neighbour query against a
 * brute-force double computation, subsample and coreset properties, the
 * file round trip and refusals, and the pipeline's bank modes. */
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
    return check_done();
}
