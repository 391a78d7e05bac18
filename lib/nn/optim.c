/* optim.c - Adam (L2 weight decay folded into the gradient, as
 * torch.optim.Adam) and AdamW (decoupled decay, as torch.optim.AdamW):
 *   g' = g + wd p (Adam) ;  p -= lr wd p (AdamW, before the update)
 *   m = b1 m + (1-b1) g' ; v = b2 v + (1-b2) g'^2
 *   p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * and the two things around it: global gradient-norm clipping and an
 * exponential moving average of the weights. Not the training loop
 * (diffusion/train.c). */
#include <math.h>
#include "nn/nn.h"

void glad_adam_step(float *p, const float *g, float *m, float *v, size_t n, const glad_adam_cfg *c, long step)
{
    double bc1 = 1.0 - pow(c->beta1, (double)step), bc2 = 1.0 - pow(c->beta2, (double)step);
    float step_size = (float)(c->lr / bc1), bc2s = (float)sqrt(bc2);
    // parameters are independent
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (c->wd != 0.0f) {
            if (c->decoupled) p[i] *= 1.0f - c->lr * c->wd;
            else gi += c->wd * p[i];
        }
        m[i] = c->beta1 * m[i] + (1.0f - c->beta1) * gi;
        v[i] = c->beta2 * v[i] + (1.0f - c->beta2) * gi * gi;
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2s + c->eps);
    }
}

double glad_sumsq(const float *g, size_t n)
{
    double s = 0;
    // a reduction: thread count changes only the rounding order
    #pragma omp parallel for reduction(+ : s) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

double glad_clip_grad_norm(float *g, size_t n, double max_norm)
{
    double norm = sqrt(glad_sumsq(g, n));
    if (norm > max_norm) {
        float s = (float)(max_norm / (norm + 1e-6));
        // elementwise
        #pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) g[i] *= s;
    }
    return norm;
}

void glad_ema_update(float *avg, const float *w, size_t n, float decay)
{
    // elementwise
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) avg[i] = decay * avg[i] + (1 - decay) * w[i];
}
