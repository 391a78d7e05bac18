/* schedule.c - see schedule.h. */
#include <math.h>
#include <string.h>
#include "diffusion/schedule.h"

int glad_schedule_alpha_bar(double *ab, int T, glad_betas kind)
{
    if (T < 2) return GLAD_EINVAL;
    double prod = 1.0;
    for (int t = 0; t < T; t++) {
        double beta;
        if (kind == GLAD_BETAS_SCALED_LINEAR) {
            double a = sqrt(0.00085), b = sqrt(0.012), s = a + (b - a) * t / (T - 1);
            beta = s * s;
        } else beta = 1e-4 + (0.02 - 1e-4) * t / (T - 1);
        prod *= 1.0 - beta;
        ab[t] = prod;
    }
    return 0;
}

const char *const glad_betas_names[] = {"linear", "scaled_linear", NULL};

int glad_betas_parse(const char *s, glad_betas *out)
{
    for (int i = 0; glad_betas_names[i]; i++)
        if (!strcmp(s, glad_betas_names[i])) { *out = (glad_betas)i; return 0; }
    return GLAD_EINVAL;
}

const char *glad_betas_name(glad_betas b) { return glad_betas_names[b == GLAD_BETAS_SCALED_LINEAR]; }
