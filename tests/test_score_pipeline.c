/* test_score_pipeline.c - the scoring pipeline and its presets
 * (score/pipeline.h) on tests/fixtures/scoring.case.safetensors: the glad
 * and ddad presets and the MDPS reducer give the official-code image scores
 * (1e-5); the preset table and name tables agree; a map that overflows float
 * is GLAD_ENAN, not a score; --map-norm's quantile baseline is taken off the
 * finished map (the map and the score shift by it). */
#include <stdlib.h>
#include "check.h"
#include "core/json.h"
#include "io/safetensors.h"
#include "score/pipeline.h"

static glad_tensor T(glad_st *st, const char *name)
{
    glad_tensor t = {0};
    if (glad_st_get_f32(st, name, &t)) fprintf(stderr, "missing %s\n", name);
    return t;
}

/* the record's map and score with o, all fixture layers */
static double run_map(glad_st *st, const glad_score_opts *o, const char *cls, int *h, int *w, glad_tensor *keep)
{
    glad_tensor img = T(st, "image"), rec = T(st, "recon"), am = {0};
    glad_score_map m;
    double score = NAN;
    CHECK(glad_score_map_begin(&m, o, img.data, rec.data, 3, 64, 64, cls) == 0);
    for (int l = 0; l < 2; l++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "feat.image.%d", l);
        snprintf(b, sizeof b, "feat.recon.%d", l);
        glad_tensor fa = T(st, a), fb = T(st, b);
        CHECK(glad_score_map_add_layer(&m, fa.data, fb.data, (int)fa.shape[0], (int)fa.shape[1], (int)fa.shape[2]) == 0);
        glad_tensor_free(&fa);
        glad_tensor_free(&fb);
    }
    CHECK(glad_score_map_finish(&m, &am, &score) == 0);
    *h = (int)am.shape[1];
    *w = (int)am.shape[2];
    if (keep) glad_tensor_move(keep, &am);
    glad_tensor_free(&am);
    glad_score_map_free(&m);
    glad_tensor_free(&img);
    glad_tensor_free(&rec);
    return score;
}

static double run(glad_st *st, const glad_score_opts *o, const char *cls, int *h, int *w)
{
    return run_map(st, o, cls, h, w, NULL);
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* the glad preset with --map-norm quantile:q against the plain run: the map
 * less the plain map's rank-floor(q (n-1)) value, the score (top-250 mean)
 * less the same value */
static void map_norm_case(glad_st *st, double q)
{
    glad_score_opts o = glad_score_presets[GLAD_SCORE_PRESET_GLAD], on = o;
    on.norm = GLAD_MAP_NORM_QUANTILE;
    on.norm_q = q;
    glad_tensor a = {0}, b = {0};
    int h, w;
    double s0 = run_map(st, &o, "fix", &h, &w, &a), s1 = run_map(st, &on, "fix", &h, &w, &b);
    size_t n = glad_tensor_numel(&a);
    float *srt = malloc(n * sizeof(float));
    memcpy(srt, a.data, n * sizeof(float));
    qsort(srt, n, sizeof(float), cmp_f);
    float base = srt[(size_t)floor(q * (double)(n - 1))];
    const float *pa = a.data, *pb = b.data;
    int same = n == glad_tensor_numel(&b);
    for (size_t i = 0; same && i < n; i++) if (pb[i] != pa[i] - base) same = 0;
    CHECKF(same, "q %g: map != plain map - %g", q, base);
    CHECK_NEAR(s1, s0 - base, 1e-5);
    CHECK(base > 0);   /* the fixture's map has a positive baseline, so the case tests something */
    free(srt);
    glad_tensor_free(&a);
    glad_tensor_free(&b);
}

int main(void)
{
    /* name tables and enums agree */
    CHECK(!strcmp(glad_score_preset_names[GLAD_SCORE_PRESET_DDAD], "ddad") && !glad_score_preset_names[3]);
    CHECK(!strcmp(glad_feat_dists[GLAD_FEAT_DIST_SAME], "same") && !strcmp(glad_bidir_modes[GLAD_BIDIR_AUTO], "auto"));
    CHECK(!strcmp(glad_score_fg_modes[GLAD_SCORE_FG_BRIGHT], "bright") && !strcmp(glad_score_reducers[GLAD_REDUCE_SOFTMAX_TOPK], "softmax-topk"));
    CHECK(glad_score_presets[GLAD_SCORE_PRESET_MDPS].k == 500 && glad_score_presets[GLAD_SCORE_PRESET_GLAD].sigma == 6);
    CHECK(glad_score_bidirectional_class("pcb4") && !glad_score_bidirectional_class("pcb2") && !glad_score_bidirectional_class(NULL));

    glad_st *st;
    if (glad_st_open(&st, "tests/fixtures/scoring.case.safetensors")) { CHECKF(0, "fixture missing"); return check_done(); }
    const char *meta = glad_st_meta(st, "scores");
    glad_json *sc;
    CHECK(meta && glad_json_parse(meta, strlen(meta), &sc) == 0);
    int h, w;
    double s = run(st, &glad_score_presets[GLAD_SCORE_PRESET_GLAD], "fix", &h, &w);
    CHECK_NEAR(s, glad_json_num(glad_json_get(sc, "glad_top250_mean_of_blur6_nn"), -1), 1e-5);
    CHECK(h == 64 && w == 64);
    map_norm_case(st, 0.1);
    map_norm_case(st, 0.5);
    s = run(st, &glad_score_presets[GLAD_SCORE_PRESET_DDAD], NULL, &h, &w);
    CHECK_NEAR(s, glad_json_num(glad_json_get(sc, "ddad_max_of_blur4_fused"), -1), 1e-5);
    glad_score_opts o = glad_score_presets[GLAD_SCORE_PRESET_DDAD];
    o.reducer = GLAD_REDUCE_SOFTMAX_TOPK;
    o.k = 500;
    s = run(st, &o, NULL, &h, &w);
    CHECK_NEAR(s, glad_json_num(glad_json_get(sc, "mdps_softmax_top500_sum_of_blur4_fused"), -1), 1e-5);
    /* the crop applies when the map is big enough */
    o.crop = 32;
    o.size = 48;
    run(st, &o, NULL, &h, &w);
    CHECK(h == 32 && w == 32);
    glad_json_free(sc);
    glad_st_close(st);

    /* finite inputs whose difference overflows float: GLAD_ENAN */
    static float a[3 * 8 * 8], b[3 * 8 * 8];
    for (int i = 0; i < 3 * 64; i++) { a[i] = 3e38f; b[i] = -3e38f; }
    glad_score_map m;
    glad_tensor am = {0};
    o = glad_score_presets[GLAD_SCORE_PRESET_DDAD];
    CHECK(glad_score_map_begin(&m, &o, a, b, 3, 8, 8, NULL) == 0);
    CHECK(glad_score_map_finish(&m, &am, &s) == GLAD_ENAN);
    CHECK(am.data == NULL);
    glad_score_map_free(&m);
    /* ImageNet pixels need 1 or 3 channels: an error, not garbage */
    o = glad_score_presets[GLAD_SCORE_PRESET_GLAD];
    CHECK(glad_score_map_begin(&m, &o, a, b, 2, 8, 8, NULL) == GLAD_ESHAPE);
    return check_done();
}
