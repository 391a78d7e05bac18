/* perlin.c - see perlin.h. Pixel (i,j) lies in lattice cell (i / d0, j / d1)
 * with local coordinates g = frac(i res0/h), frac(j res1/w):
 *   n00 = g . G[c0,c1], n10 = (g - (1,0)) . G[c0+1,c1], n01 = (g - (0,1)) . G[c0,c1+1],
 *   n11 = (g - (1,1)) . G[c0+1,c1+1];  noise = sqrt2 lerp(lerp(n00,n10,f(gx)), lerp(n01,n11,f(gx)), f(gy)) */
#include <math.h>
#include <stdlib.h>
#include "core/glad.h"
#include "synth/perlin.h"

static double fade(double t) { return ((6 * t - 15) * t + 10) * t * t * t; }

int glad_perlin_from_u(double *noise, int h, int w, int res0, int res1, const double *u)
{
    if (res0 < 1 || res1 < 1 || h % res0 || w % res1) return GLAD_EINVAL;
    int d0 = h / res0, d1 = w / res1;
    double delta0 = (double)res0 / h, delta1 = (double)res1 / w;
    for (int i = 0; i < h; i++) {
        double gx = fmod(i * delta0, 1.0);
        int c0 = i / d0;
        for (int j = 0; j < w; j++) {
            double gy = fmod(j * delta1, 1.0);
            int c1 = j / d1;
            double a00 = 2 * M_PI * u[c0 * (res1 + 1) + c1], a10 = 2 * M_PI * u[(c0 + 1) * (res1 + 1) + c1],
                   a01 = 2 * M_PI * u[c0 * (res1 + 1) + c1 + 1], a11 = 2 * M_PI * u[(c0 + 1) * (res1 + 1) + c1 + 1];
            double n00 = gx * cos(a00) + gy * sin(a00);
            double n10 = (gx - 1) * cos(a10) + gy * sin(a10);
            double n01 = gx * cos(a01) + (gy - 1) * sin(a01);
            double n11 = (gx - 1) * cos(a11) + (gy - 1) * sin(a11);
            double tx = fade(gx), ty = fade(gy);
            double a = n00 + (n10 - n00) * tx, b = n01 + (n11 - n01) * tx;
            noise[(size_t)i * w + j] = sqrt(2.0) * (a + (b - a) * ty);
        }
    }
    return 0;
}

int glad_perlin(double *noise, int h, int w, int res0, int res1, glad_rng *r)
{
    double *u = malloc(sizeof(double) * (size_t)(res0 + 1) * (res1 + 1));
    if (!u) return GLAD_ENOMEM;
    for (int i = 0; i < (res0 + 1) * (res1 + 1); i++) u[i] = glad_rng_uniform(r);
    int rc = glad_perlin_from_u(noise, h, w, res0, res1, u);
    free(u);
    return rc;
}
