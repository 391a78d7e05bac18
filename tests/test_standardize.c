/* test_standardize.c - glad_standardize (imgproc/standardize.h): the formula
 * against a double reference, mean 0 and spread s when nothing is clamped,
 * the clamp, invariance to exposure and gain (a x + b, a > 0), a flat image,
 * and the refusals (which leave the image unchanged); the tails (tanh, open)
 * against the same reference, and what they are for: values the clamp makes
 * equal keep their order. */
#include "check.h"
#include "core/rng.h"
#include "imgproc/standardize.h"

static void test_formula(void)
{
    static const size_t ns[] = {1, 2, 7, 1000, 65536 + 3};
    static const double ss[] = {0.05, 0.2, 0.6, 1.0, 3.0};
    glad_rng rng;
    glad_rng_seed(&rng, 11, 0, 0);
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof ss / sizeof *ss; b++) {
            size_t n = ns[a];
            double s = ss[b];
            float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
            for (size_t i = 0; i < n; i++) x[i] = (float)(0.3 * glad_rng_normal(&rng) - 0.2);
            x[0] = 0.9f;   // one bright outlier, so that s = 3 clamps it
            memcpy(y, x, n * sizeof *x);
            CHECK(glad_standardize(y, n, s) == 0);
            double m = 0, v = 0, worst = 0, ym = 0, yv = 0;
            int clamped = 0;
            for (size_t i = 0; i < n; i++) m += x[i];
            m /= (double)n;
            for (size_t i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
            double sd = sqrt(v / (double)n);
            for (size_t i = 0; i < n; i++) {
                double r = sd < 2e-6 ? 0 : s * (x[i] - m) / sd;
                clamped |= fabs(r) > 1;
                r = r < -1 ? -1 : r > 1 ? 1 : r;
                double e = fabs(y[i] - r);
                if (e > worst) worst = e;
                ym += y[i];
            }
            CHECKF(worst < 2e-6, "n %zu s %g: max error %g", n, s, worst);
            ym /= (double)n;
            for (size_t i = 0; i < n; i++) yv += (y[i] - ym) * (y[i] - ym);
            if (n > 1 && !clamped) {   // the definition: mean 0, standard deviation s
                CHECK_NEAR(ym, 0, 1e-6);
                CHECK_NEAR(sqrt(yv / (double)n), s, 1e-5 * s);
            }
            if (n == 1) CHECK(y[0] == 0);   // one value is its own mean
            if (n > 2 && s == 3.0) CHECK(y[0] == 1.0f && clamped);   // the outlier is 3 sd's worth: clamped
            free(x);
            free(y);
        }
}

/* the point of it: the same scene at another exposure and gain gives the same input */
static void test_exposure_invariance(void)
{
    enum { N = 4096 };
    float x[N], y[N];
    glad_rng rng;
    glad_rng_seed(&rng, 3, 0, 0);
    for (int i = 0; i < N; i++) x[i] = (float)(0.2 * glad_rng_normal(&rng));
    for (int i = 0; i < N; i++) y[i] = 0.4f * x[i] - 0.5f;   // darker, flatter
    CHECK(glad_standardize(x, N, 0.8) == 0);
    CHECK(glad_standardize(y, N, 0.8) == 0);
    double worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(x[i] - y[i]));
    CHECKF(worst < 1e-5, "max difference %g", worst);
}

static void test_flat_and_refusals(void)
{
    float x[5] = {0.25f, 0.25f, 0.25f, 0.25f, 0.25f}, keep[5];
    CHECK(glad_standardize(x, 5, 0.5) == 0);
    int zero = 1;
    for (int i = 0; i < 5; i++) zero &= x[i] == 0;
    CHECK(zero);
    float y[3] = {0.1f, -0.2f, 0.3f};
    memcpy(keep, y, sizeof y);
    CHECK(glad_standardize(y, 3, 0) == GLAD_EINVAL);
    CHECK(glad_standardize(y, 3, -1) == GLAD_EINVAL);
    CHECK(glad_standardize(y, 3, NAN) == GLAD_EINVAL);
    CHECK(glad_standardize(y, 3, GLAD_STANDARDIZE_MAX * 1.01) == GLAD_EINVAL);
    CHECK(glad_standardize(y, 0, 0.5) == GLAD_EINVAL);
    CHECK(memcmp(y, keep, sizeof y) == 0);
    y[2] = NAN;
    CHECK(glad_standardize(y, 3, 0.5) == GLAD_EINVAL);
    CHECK(y[0] == keep[0] && y[1] == keep[1]);
    CHECK(glad_standardize(y, 2, GLAD_STANDARDIZE_MAX) == 0);   // the largest spread is allowed
}

/* glad_standardize_tail: clip is glad_standardize bit for bit; tanh and open
 * are tanh(v) and v of the same v; beyond +-1 the clamp flattens a darker spot
 * on a dark band into it, the other tails keep it darker */
static void test_tails(void)
{
    enum { N = 3001 };
    static float x[N], y[N], z[N];
    glad_rng rng;
    glad_rng_seed(&rng, 5, 0, 0);
    for (int i = 0; i < N; i++) x[i] = (float)(0.25 * glad_rng_normal(&rng));
    x[0] = -0.9f; x[1] = -0.99f;   // a dark band and a darker spot in it: both several sd below the mean
    double m = 0, v = 0;
    for (int i = 0; i < N; i++) m += x[i];
    m /= N;
    for (int i = 0; i < N; i++) v += (x[i] - m) * (x[i] - m);
    double sd = sqrt(v / N);
    memcpy(y, x, sizeof x); memcpy(z, x, sizeof x);
    CHECK(glad_standardize(y, N, 1.2) == 0 && glad_standardize_tail(z, N, 1.2, GLAD_STD_TAIL_CLIP) == 0);
    CHECK(!memcmp(y, z, sizeof y));
    CHECK(y[0] == -1.0f && y[1] == -1.0f);   // the clamp: band and spot alike
    for (int t = GLAD_STD_TAIL_TANH; t <= GLAD_STD_TAIL_OPEN; t++) {
        memcpy(z, x, sizeof x);
        CHECK(glad_standardize_tail(z, N, 1.2, (glad_std_tail)t) == 0);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double r = 1.2 * (x[i] - m) / sd;
            worst = fmax(worst, fabs(z[i] - (t == GLAD_STD_TAIL_TANH ? tanh(r) : r)));
        }
        CHECKF(worst < 4e-6, "tail %s: max error %g", glad_std_tails[t], worst);
        CHECKF(z[1] < z[0] && z[0] < -0.99f * (t == GLAD_STD_TAIL_TANH ? 1 : 2), "tail %s: spot %g below band %g", glad_std_tails[t], z[1], z[0]);
    }
    CHECK(glad_standardize_tail(z, N, 1.2, (glad_std_tail)3) == GLAD_EINVAL && glad_standardize_tail(z, N, 1.2, (glad_std_tail)-1) == GLAD_EINVAL);
    for (int t = GLAD_STD_TAIL_CLIP; t <= GLAD_STD_TAIL_OPEN; t++) CHECK(glad_std_tail_find(glad_std_tails[t]) == t);
    CHECK(glad_std_tail_find("soft") == -1 && glad_std_tail_find("") == -1 && glad_std_tail_find("TANH") == -1 && glad_std_tail_find("tanh ") == -1);
    CHECK(!strcmp(glad_std_tails[GLAD_STD_TAIL_CLIP], "clip") && !strcmp(glad_std_tails[GLAD_STD_TAIL_TANH], "tanh") && !strcmp(glad_std_tails[GLAD_STD_TAIL_OPEN], "open") && !glad_std_tails[3]);
}

/* lists of tails: a code per list, its first tail and further ones, one
 * spelling back; a single tail's code is the tail */
static void test_tail_lists(void)
{
    char buf[32];
    for (int t = GLAD_STD_TAIL_CLIP; t <= GLAD_STD_TAIL_OPEN; t++) CHECK(glad_std_tails_parse(glad_std_tails[t]) == t);
    int c = glad_std_tails_parse("clip,tanh");
    CHECK(c > 0 && GLAD_STD_TAILS_FIRST(c) == GLAD_STD_TAIL_CLIP && GLAD_STD_TAILS_HAS(c, GLAD_STD_TAIL_TANH) && !GLAD_STD_TAILS_HAS(c, GLAD_STD_TAIL_OPEN));
    CHECK(glad_std_tails_format(buf, sizeof buf, c) == 0 && !strcmp(buf, "clip,tanh"));
    int d = glad_std_tails_parse("tanh,clip");
    CHECK(d != c && GLAD_STD_TAILS_FIRST(d) == GLAD_STD_TAIL_TANH && GLAD_STD_TAILS_HAS(d, GLAD_STD_TAIL_CLIP));
    /* further tails in any order: one code, spelt in glad_std_tails' order */
    CHECK(glad_std_tails_parse("tanh,open,clip") == glad_std_tails_parse("tanh,clip,open"));
    CHECK(glad_std_tails_format(buf, sizeof buf, glad_std_tails_parse("tanh,open,clip")) == 0 && !strcmp(buf, "tanh,clip,open"));
    const char *bad[] = {"", ",", "clip,", ",tanh", "clip,clip", "tanh,clip,tanh", "clip;tanh", "clip, tanh", "soft", "clip,tanhh", "clip,tanh,open,clip"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) CHECKF(glad_std_tails_parse(bad[k]) == -1, "'%s' parsed", bad[k]);
    /* codes that are no list, and a buffer too small */
    CHECK(glad_std_tails_format(buf, sizeof buf, -1) == GLAD_EINVAL && glad_std_tails_format(buf, sizeof buf, 3) == GLAD_EINVAL);
    CHECK(glad_std_tails_format(buf, sizeof buf, 1 << 5) == GLAD_EINVAL && glad_std_tails_format(buf, sizeof buf, 1 | (1 << (GLAD_STD_TAILS_SHIFT + 1))) == GLAD_EINVAL);
    CHECK(glad_std_tails_format(buf, 6, c) == GLAD_EINVAL);
}

int main(void)
{
    test_formula();
    test_exposure_invariance();
    test_flat_and_refusals();
    test_tails();
    test_tail_lists();
    return check_done();
}
