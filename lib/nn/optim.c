/* optim.c - Adam (L2 weight decay folded into the gradient, as
 * torch.optim.Adam) and AdamW (decoupled decay, as torch.optim.AdamW):
 *   g' = g + wd p (Adam) ;  p -= lr wd p (AdamW, before the update)
 *   m = b1 m + (1-b1) g' ; v = b2 v + (1-b2) g'^2
 *   p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * and the two things around it: global gradient-norm clipping and an
 * exponential moving average of the weights. Not the training loop
 * (diffusion/train.c). */
#include <immintrin.h>
#include <math.h>
#include "nn/cpu.h"
#include "nn/nn.h"

/* one parameter, scalar */
static void adam1(float *p, const float *g, float *m, float *v, const glad_adam_cfg *c, float step_size, float bc2s)
{
    float gi = *g;
    if (c->wd != 0.0f) {
        if (c->decoupled) *p *= 1.0f - c->lr * c->wd;
        else gi += c->wd * *p;
    }
    *m = c->beta1 * *m + (1.0f - c->beta1) * gi;
    *v = c->beta2 * *v + (1.0f - c->beta2) * gi * gi;
    *p -= step_size * *m / (sqrtf(*v) / bc2s + c->eps);
}

/* adam1 on 16 lanes (AVX-512F): the same operations in the same order, and
 * vector square root and division round as the scalar ones do, so the same
 * bits (the scalar loop, never vectorised because of sqrtf's errno, spent
 * 19 ms of the DDAD-S f32 training step at 128 on one thread) */
__attribute__((target("avx512f"))) static void adam16(float *p, const float *g, float *m, float *v, size_t n, const glad_adam_cfg *c,
                                                       float step_size, float bc2s)
{
    __m512 b1 = _mm512_set1_ps(c->beta1), a1 = _mm512_set1_ps(1.0f - c->beta1), b2 = _mm512_set1_ps(c->beta2);
    __m512 a2 = _mm512_set1_ps(1.0f - c->beta2), ss = _mm512_set1_ps(step_size), bc = _mm512_set1_ps(bc2s), eps = _mm512_set1_ps(c->eps);
    __m512 wd = _mm512_set1_ps(c->wd), dec = _mm512_set1_ps(1.0f - c->lr * c->wd);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m512 gi = _mm512_maskz_loadu_ps(k, g + i), pi = _mm512_maskz_loadu_ps(k, p + i);
        if (c->wd != 0.0f) {
            if (c->decoupled) pi = _mm512_mul_ps(pi, dec);
            else gi = _mm512_add_ps(gi, _mm512_mul_ps(wd, pi));
        }
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(k, m + i)), _mm512_mul_ps(a1, gi));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(k, v + i)), _mm512_mul_ps(_mm512_mul_ps(a2, gi), gi));
        __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc), eps);
        pi = _mm512_sub_ps(pi, _mm512_div_ps(_mm512_mul_ps(ss, mi), den));
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
        _mm512_mask_storeu_ps(p + i, k, pi);
    }
}

void glad_adam_step(float *p, const float *g, float *m, float *v, size_t n, const glad_adam_cfg *c, long step)
{
    double bc1 = 1.0 - pow(c->beta1, (double)step), bc2 = 1.0 - pow(c->beta2, (double)step);
    float step_size = (float)(c->lr / bc1), bc2s = (float)sqrt(bc2);
    enum { CH = 4096 };
    size_t nc = (n + CH - 1) / CH;
    int avx = glad_nn_avx512();
    // parameters are independent: chunks of CH
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t ch = 0; ch < nc; ch++) {
        size_t i0 = ch * CH, k = n - i0 < CH ? n - i0 : CH;
        if (avx) adam16(p + i0, g + i0, m + i0, v + i0, k, c, step_size, bc2s);
        else
            for (size_t i = i0; i < i0 + k; i++) adam1(p + i, g + i, m + i, v + i, c, step_size, bc2s);
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
