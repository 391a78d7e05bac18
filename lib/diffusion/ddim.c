/* ddim.c - timestep plans and elementwise DDIM arithmetic (see ddim.h). */
#include <math.h>
#include <string.h>
#include "ddim.h"

const char *const glad_ts_modes[] = {"consistent", "ddad", "glad", NULL};

int glad_ddim_plan_make(glad_ddim_plan *p, const double *ab, int T, int t_start, int skip, glad_ts_mode mode)
{
    memset(p, 0, sizeof *p);
    if (T < 2 || t_start < 1 || t_start >= T || skip < 1 || skip > t_start) return GLAD_EINVAL;
    /* model calls: ceil(T'/S) (consistent), floor((T'-1)/S) + 1 (ddad), T'/S (glad) */
    int calls = mode == GLAD_TS_CONSISTENT ? (t_start + skip - 1) / skip : mode == GLAD_TS_DDAD ? (t_start - 1) / skip + 1 : t_start / skip;
    if (calls > GLAD_DDIM_MAX_STEPS)
        return glad_fail(GLAD_ERANGE, "%d model calls (T' = %d, skip %d): at most %d", calls, t_start, skip, GLAD_DDIM_MAX_STEPS);
    p->t_noise = t_start;
    p->ab_noise = ab[t_start];
    int n = 0;
    switch (mode) {
    case GLAD_TS_CONSISTENT:
        for (int t = t_start; t > 0 && n < GLAD_DDIM_MAX_STEPS; t -= skip, n++) {
            p->t[n] = t;
            p->t_next[n] = t - skip > 0 ? t - skip : -1;
        }
        break;
    case GLAD_TS_DDAD:
        /* seq = range(0, T', S) reversed; next of 0 is -1 */
        for (int t = ((t_start - 1) / skip) * skip; t >= 0 && n < GLAD_DDIM_MAX_STEPS; t -= skip, n++) {
            p->t[n] = t;
            p->t_next[n] = t - skip;
            if (p->t_next[n] < 0) p->t_next[n] = -1;
        }
        break;
    case GLAD_TS_GLAD: {
        /* diffusers "leading" spacing with num_train_timesteps overridden to T':
         * ratio = T' // N, t_k = k ratio + 1 (steps_offset 1), prev = t - ratio */
        int N = t_start / skip, ratio = t_start / N;
        for (int k = N - 1; k >= 0; k--, n++) {
            p->t[n] = k * ratio + 1;
            p->t_next[n] = p->t[n] - ratio;
        }
        break;
    }
    default: return GLAD_EINVAL;
    }
    p->n = n;
    for (int i = 0; i < n; i++) {
        p->ab[i] = ab[p->t[i]];
        if (p->t_next[i] >= 0) p->ab_next[i] = ab[p->t_next[i]];
        else p->ab_next[i] = mode == GLAD_TS_GLAD ? ab[0] : 1.0;   /* set_alpha_to_one=False in GLAD */
    }
    return n > 0 ? 0 : GLAD_EINVAL;
}

int glad_ddim_plan_noise_at(glad_ddim_plan *p, const double *ab, int T, int t)
{
    if (t < 0 || t >= T) return glad_fail(GLAD_ERANGE, "noise timestep %d: the schedule has T = %d (use 0..%d)", t, T, T - 1);
    p->t_noise = t;
    p->ab_noise = ab[t];
    return 0;
}

void glad_ddim_q_sample(float *xt, const float *x0, const float *eps, double ab, size_t n)
{
    float a = (float)sqrt(ab), b = (float)sqrt(1.0 - ab);
    for (size_t i = 0; i < n; i++) xt[i] = a * x0[i] + b * eps[i];
}

void glad_ddim_q_sample_f64(double *xt, const double *x0, const float *eps, double ab, size_t n)
{
    double a = sqrt(ab), b = sqrt(1.0 - ab);
    for (size_t i = 0; i < n; i++) xt[i] = a * x0[i] + b * eps[i];
}

void glad_ddim_x0(float *x0, const float *xt, const float *eps, double ab, size_t n)
{
    double a = sqrt(ab), b = sqrt(1.0 - ab);
    for (size_t i = 0; i < n; i++) x0[i] = (float)((xt[i] - b * eps[i]) / a);
}

void glad_ddim_condition(float *eps, const float *xt, const float *y, double ab, double w, size_t n)
{
    double a = sqrt(ab), b = sqrt(1.0 - ab);
    for (size_t i = 0; i < n; i++) {
        double yt = a * y[i] + b * eps[i];
        eps[i] = (float)(eps[i] - w * b * (yt - xt[i]));
    }
}

void glad_ddim_step(float *xnext, const float *x0, const float *eps, const float *z, double ab, double ab_next,
                    double eta, size_t n)
{
    double c1 = 0.0;
    if (eta != 0.0 && ab_next < 1.0) {
        double v = (1.0 - ab / ab_next) * (1.0 - ab_next) / (1.0 - ab);
        c1 = eta * sqrt(v > 0 ? v : 0);
    }
    double r = 1.0 - ab_next - c1 * c1;
    double c2 = sqrt(r > 0 ? r : 0), a = sqrt(ab_next);
    for (size_t i = 0; i < n; i++) {
        double v = a * x0[i] + c2 * eps[i];
        if (z && c1 != 0.0) v += c1 * z[i];
        xnext[i] = (float)v;
    }
}

void glad_ddim_x0_true(float *x0t, const float *y, const float *eps0, const float *eps, double ab, size_t n)
{
    double k = sqrt((1.0 - ab) / ab);
    for (size_t i = 0; i < n; i++) x0t[i] = (float)(y[i] + k * (eps0[i] - eps[i]));
}

void glad_ddim_saff(float *x0, const float *x0_true, const float *m, int c, size_t hw)
{
    for (int k = 0; k < c; k++) {
        float *a = x0 + (size_t)k * hw;
        const float *b = x0_true + (size_t)k * hw;
        for (size_t i = 0; i < hw; i++) a[i] = m[i] * a[i] + (1.0f - m[i]) * b[i];
    }
}
