/* test_ddim.c - DDIM plans and step arithmetic against the official-code
 * values in tests/fixtures/glad-ddim.case.safetensors (GLAD timestep lists,
 * one deterministic step, the ADS x0_true formula), and DDAD's plan. */
#include "check.h"
#include "diffusion/ddim.h"
#include "io/safetensors.h"

static double max_rel(const float *a, const double *ref, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - ref[i]);
        if (d > m) m = d;
        if (fabs(ref[i]) > r) r = fabs(ref[i]);
    }
    return m / (r > 0 ? r : 1);
}

int main(void)
{
    glad_st *st;
    if (glad_st_open(&st, "tests/fixtures/glad-ddim.case.safetensors") != 0) {
        CHECKF(0, "cannot open tests/fixtures/glad-ddim.case.safetensors");
        return check_done();
    }
    glad_tensor ab, ts, xt, eps, x0p, xprev, zin, eps0, x0t;
    CHECK(glad_st_get(st, "alpha_bar_scaled_linear", &ab) == 0 && ab.dtype == GLAD_DT_F64);
    const double *abv = ab.data;
    /* plans: (750,25) and (450,15) */
    int cases[2][2] = {{750, 25}, {450, 15}};
    const char *names[2] = {"timesteps_750_25", "timesteps_450_15"};
    for (int c = 0; c < 2; c++) {
        glad_ddim_plan p;
        CHECK(glad_st_get(st, names[c], &ts) == 0);
        int N = cases[c][1];
        CHECK(glad_ddim_plan_make(&p, abv, 1000, cases[c][0], cases[c][0] / N, GLAD_TS_GLAD) == 0);
        CHECK(p.n == (int)ts.shape[0]);
        int same = p.n == (int)ts.shape[0];
        for (int i = 0; same && i < p.n; i++) same = p.t[i] == ((int64_t *)ts.data)[i];
        CHECKF(same, "GLAD timesteps for (%d,%d)", cases[c][0], N);
        CHECK(p.t_noise == cases[c][0] && p.ab_next[p.n - 1] == abv[0]);
        glad_tensor_free(&ts);
    }
    /* one deterministic DDIM step at t = 691 -> 661 */
    CHECK(glad_st_get_f32(st, "step.x_t", &xt) == 0 && glad_st_get_f32(st, "step.eps", &eps) == 0);
    CHECK(glad_st_get(st, "step.x0_pred", &x0p) == 0 && glad_st_get(st, "step.x_prev", &xprev) == 0);
    size_t n = glad_tensor_numel(&xt);
    float x0[256], xn[256];
    CHECK(n == 256);
    glad_ddim_x0(x0, xt.data, eps.data, abv[691], n);
    CHECK(max_rel(x0, x0p.data, n) < 1e-6);
    glad_ddim_step(xn, x0, eps.data, NULL, abv[691], abv[661], 0.0, n);
    CHECK(max_rel(xn, xprev.data, n) < 1e-6);
    /* ADS x0_true */
    CHECK(glad_st_get_f32(st, "ads.z_in", &zin) == 0 && glad_st_get_f32(st, "ads.eps0", &eps0) == 0);
    CHECK(glad_st_get(st, "ads.x0_true", &x0t) == 0);
    float o[256];
    glad_ddim_x0_true(o, zin.data, eps0.data, eps.data, abv[691], n);
    CHECK(max_rel(o, x0t.data, n) < 1e-6);

    /* DDAD plan: T'=250, S=25 -> calls 225..0, noise at 250, last goes to clean */
    glad_ddim_plan p;
    CHECK(glad_ddim_plan_make(&p, abv, 1000, 250, 25, GLAD_TS_DDAD) == 0);
    CHECK(p.n == 10 && p.t[0] == 225 && p.t[9] == 0 && p.t_next[9] == -1 && p.ab_next[9] == 1.0 && p.t_noise == 250);
    /* consistent plan: first call at T' */
    CHECK(glad_ddim_plan_make(&p, abv, 1000, 250, 25, GLAD_TS_CONSISTENT) == 0);
    CHECK(p.n == 10 && p.t[0] == 250 && p.t[9] == 25 && p.ab_next[9] == 1.0 && p.ab[0] == p.ab_noise);
    CHECK(glad_ddim_plan_make(&p, abv, 1000, 0, 25, GLAD_TS_CONSISTENT) == GLAD_EINVAL);
    CHECK(glad_ddim_plan_make(&p, abv, 1000, 250, 0, GLAD_TS_CONSISTENT) == GLAD_EINVAL);
    /* eta = 1 at the last step (ᾱn = 1) returns x̂0 exactly */
    glad_ddim_step(xn, x0, eps.data, eps0.data, abv[100], 1.0, 1.0, n);
    CHECK(max_rel(xn, x0p.data, n) < 1e-6);
    /* DDAD conditioning with w = 0 leaves eps unchanged */
    float e2[256];
    memcpy(e2, eps.data, sizeof e2);
    glad_ddim_condition(e2, xt.data, zin.data, abv[500], 0.0, n);
    CHECK(memcmp(e2, eps.data, sizeof e2) == 0);
    glad_tensor *all[] = {&ab, &xt, &eps, &x0p, &xprev, &zin, &eps0, &x0t};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) glad_tensor_free(all[i]);
    glad_st_close(st);
    return check_done();
}
