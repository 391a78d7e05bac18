/* test_nhwc.c - the channels-last kernels MobileNet runs (depthwise.c,
 * conv_nhwc.c) on odd shapes against a double-precision reference: channels
 * not a multiple of 16, stride 2, dilation, TF "SAME" padding at the edges,
 * depth multiplier 2, a fused residual, pixel counts not a multiple of the
 * GEMM tile. On an AVX-512F CPU the same cases also run in a child process
 * with GLAD_NO_AVX512=1 (the portable kernels and sgemm) and the two paths
 * are compared with each other; run.sh runs this test once more under
 * GLAD_NO_AVX512=1 so the portable path meets the reference itself. And
 * the fused inverted-residual block (invres.c) against its three
 * convolutions run one by one, in fp32 (bit for bit) and in bf16 (bit for
 * bit the bf16 ops one by one, and within a stated tolerance of fp32, on
 * both of its paths; its bf16-storing GEMM and bf16-input depthwise row bit
 * for bit against the kernels they replace; skipped visibly without
 * AVX512_BF16).
 *   test_nhwc [--dump]   (--dump: print every output, for the parent) */
#include <stdint.h>
#include "check.h"
#include "core/glad.h"
#include "nn/bf16.h"
#include "nn/cpu.h"
#include "nn/nhwc.h"
#include "nn/nn.h"
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct { int H, W, C, mult, k, s, d, same, bias, relu6; } dwcase;
typedef struct { int H, W, C, OC, k, s, same, res, relu6; } cvcase;

static const dwcase DW[] = {
    {13, 29, 37, 1, 3, 2, 1, 1, 1, 1}, {9, 17, 21, 1, 3, 1, 1, 1, 1, 0}, {8, 24, 16, 1, 3, 1, 1, 1, 0, 1},
    {10, 7, 5, 2, 3, 2, 1, 1, 1, 0},   {12, 31, 33, 1, 5, 1, 2, 1, 1, 0}, {7, 19, 19, 1, 3, 2, 1, 0, 1, 1},
    {6, 40, 144, 1, 3, 1, 1, 1, 1, 1}, {5, 22, 3, 1, 3, 2, 1, 1, 0, 0},  {11, 26, 50, 1, 3, 3, 1, 1, 1, 1},
};
static const cvcase CV[] = {
    {7, 13, 37, 150, 1, 1, 1, 0, 1}, {9, 11, 24, 144, 1, 1, 1, 1, 0}, {5, 5, 960, 40, 1, 1, 1, 1, 0},
    {17, 15, 3, 32, 3, 2, 1, 0, 1},  {6, 9, 20, 16, 3, 1, 1, 1, 1},   {4, 3, 17, 24, 1, 1, 1, 0, 0},
    {10, 12, 19, 70, 3, 2, 0, 0, 1},
};

static float val(uint32_t *s) { *s = *s * 1664525u + 1013904223u; return (float)(*s >> 8) / 16777216.0f * 2.0f - 1.0f; }
static float *rnd(size_t n, uint32_t seed)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = val(&seed);
    return p;
}
/* the OpenMP thread count (1 without OpenMP), and setting it: 0 when T threads cannot run (T > 1 without OpenMP) */
static int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int set_threads(int T)
{
#ifdef _OPENMP
    omp_set_num_threads(T);
    return 1;
#else
    return T == 1;
#endif
}

static void pad_of(int in, int k, int s, int d, int same, int *out, int *before)
{
    int eff = (k - 1) * d + 1;
    if (same) {
        *out = (in + s - 1) / s;
        int tot = (*out - 1) * s + eff - in;
        *before = tot > 0 ? tot / 2 : 0;
    } else {
        *out = (in - eff) / s + 1;
        *before = 0;
    }
}
static double clampd(double v, int relu6) { return relu6 ? (v < 0 ? 0 : v > 6 ? 6 : v) : v; }

/* out of one case and, in ref/mag, the reference and the sum of |terms| per output; returns the count */
static size_t run_dw(const dwcase *c, float **out, double **ref, double **mag)
{
    int Ho, Wo, pt, pl, OC = c->C * c->mult;
    pad_of(c->H, c->k, c->s, c->d, c->same, &Ho, &pt);
    pad_of(c->W, c->k, c->s, c->d, c->same, &Wo, &pl);
    float *x = rnd((size_t)c->H * c->W * c->C, 11), *w = rnd((size_t)c->k * c->k * OC, 12), *b = c->bias ? rnd(OC, 13) : NULL;
    for (size_t i = 0; i < (size_t)c->H * c->W * c->C; i++) x[i] *= 4.0f;   /* so RELU6 clamps some outputs */
    size_t n = (size_t)Ho * Wo * OC;
    *out = malloc(sizeof(float) * n);
    *ref = malloc(sizeof(double) * n);
    *mag = malloc(sizeof(double) * n);
    glad_depthwise_nhwc_forward(*out, x, w, b, c->H, c->W, c->C, c->mult, c->k, c->k, c->s, c->s, c->d, c->d, pt, pl, Ho,
                                Wo, c->relu6 ? 0.0f : -INFINITY, c->relu6 ? 6.0f : INFINITY);
    for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++)
            for (int q = 0; q < OC; q++) {
                double s = b ? b[q] : 0, a = b ? fabs(b[q]) : 0;
                for (int ky = 0; ky < c->k; ky++)
                    for (int kx = 0; kx < c->k; kx++) {
                        int y = i * c->s - pt + ky * c->d, xx = j * c->s - pl + kx * c->d;
                        if (y < 0 || y >= c->H || xx < 0 || xx >= c->W) continue;
                        double t = (double)x[((size_t)y * c->W + xx) * c->C + q / c->mult] * w[((size_t)ky * c->k + kx) * OC + q];
                        s += t; a += fabs(t);
                    }
                size_t o = ((size_t)i * Wo + j) * OC + q;
                (*ref)[o] = clampd(s, c->relu6);
                (*mag)[o] = a;
            }
    free(x); free(w); free(b);
    return n;
}

static size_t run_cv(const cvcase *c, float **out, double **ref, double **mag)
{
    int Ho, Wo, pt, pl, K = c->k * c->k * c->C;
    pad_of(c->H, c->k, c->s, 1, c->same, &Ho, &pt);
    pad_of(c->W, c->k, c->s, 1, c->same, &Wo, &pl);
    float *x = rnd((size_t)c->H * c->W * c->C, 21), *w = rnd((size_t)c->OC * K, 22), *b = rnd(c->OC, 23);
    size_t n = (size_t)Ho * Wo * c->OC;
    float *res = c->res ? rnd(n, 24) : NULL, *wt = malloc(sizeof(float) * (size_t)K * c->OC);
    float *ws = malloc(sizeof(float) * (glad_conv2d_nhwc_workspace(c->C, c->k, c->k, Ho, Wo, 0) + 1));
    float *o2 = malloc(sizeof(float) * n);
    *out = malloc(sizeof(float) * n);
    *ref = malloc(sizeof(double) * n);
    *mag = malloc(sizeof(double) * n);
    float lo = c->relu6 ? 0.0f : -INFINITY, hi = c->relu6 ? 6.0f : INFINITY;
    glad_conv2d_nhwc_forward(*out, x, w, b, res, c->H, c->W, c->C, c->OC, c->k, c->k, c->s, c->s, 1, 1, pt, pl, Ho, Wo, lo,
                             hi, ws);
    /* with the caller's w^T: the same numbers, bit for bit */
    glad_conv2d_nhwc_wt(wt, w, c->OC, K);
    glad_conv2d_nhwc_forward_wt(o2, x, w, wt, b, res, c->H, c->W, c->C, c->OC, c->k, c->k, c->s, c->s, 1, 1, pt, pl, Ho, Wo,
                                lo, hi, ws);
    CHECKF(memcmp(o2, *out, sizeof(float) * n) == 0, "conv %dx%dx%d -> %d: w^T given and not given differ", c->H, c->W,
           c->C, c->OC);
    for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++)
            for (int q = 0; q < c->OC; q++) {
                double s = 0, a = fabs(b[q]);
                for (int ky = 0; ky < c->k; ky++)
                    for (int kx = 0; kx < c->k; kx++) {
                        int y = i * c->s - pt + ky, xx = j * c->s - pl + kx;
                        if (y < 0 || y >= c->H || xx < 0 || xx >= c->W) continue;
                        for (int ci = 0; ci < c->C; ci++) {
                            double t = (double)x[((size_t)y * c->W + xx) * c->C + ci] *
                                       w[(size_t)q * K + ((size_t)ky * c->k + kx) * c->C + ci];
                            s += t; a += fabs(t);
                        }
                    }
                size_t o = ((size_t)i * Wo + j) * c->OC + q;
                double r = clampd(s + b[q], c->relu6);
                if (res) { r += res[o]; a += fabs(res[o]); }
                (*ref)[o] = r;
                (*mag)[o] = a;
            }
    free(x); free(w); free(b); free(res); free(wt); free(ws); free(o2);
    return n;
}

/* the fused inverted-residual block against its three convolutions run one
 * by one: the same numbers, bit for bit (GLAD_EUNSUPPORTED without AVX-512F) */
typedef struct { int H, W, C, Ce, Co, s, expand, res; } ircase;
static const ircase IR[] = {
    {37, 300, 13, 40, 13, 1, 1, 1},   /* several bands per thread: rows kept from band to band */
    {29, 150, 24, 144, 32, 2, 1, 0},  {7, 7, 160, 960, 160, 1, 1, 1}, {21, 33, 32, 32, 16, 1, 0, 0},
    {12, 11, 16, 96, 24, 2, 1, 0},    {5, 9, 17, 51, 17, 1, 1, 1},
    {9, 13, 20, 72, 24, 1, 1, 1},     {14, 14, 40, 40, 24, 1, 0, 0},   /* small maps: by rows on 2 threads */
    {10, 20, 24, 144, 32, 2, 1, 0},   {10, 64, 48, 48, 32, 2, 0, 0},   /* and with stride 2 */
    {6, 12, 48, 48, 32, 1, 0, 0},     {7, 9, 20, 120, 20, 1, 1, 1},    /* smaller: split by channels */
    {2, 40, 64, 384, 64, 2, 1, 0},    /* and with stride 2 (one output row) */
};
#define NIR (sizeof IR / sizeof IR[0])
static void test_invres(void)
{
    int supported = 0;
    for (size_t t = 0; t < NIR; t++) {
        const ircase *c = &IR[t];
        int Ho, Wo, pt, pl, Ce = c->expand ? c->Ce : c->C;
        pad_of(c->H, 3, c->s, 1, 1, &Ho, &pt);
        pad_of(c->W, 3, c->s, 1, 1, &Wo, &pl);
        size_t ne = (size_t)c->H * c->W * Ce, nd = (size_t)Ho * Wo * Ce, ny = (size_t)Ho * Wo * c->Co;
        float *x = rnd((size_t)c->H * c->W * c->C, 31), *we = rnd((size_t)Ce * c->C, 32), *be = rnd(Ce, 33);
        float *wd = rnd((size_t)9 * Ce, 34), *bd = rnd(Ce, 35), *wp = rnd((size_t)c->Co * Ce, 36), *bp = rnd(c->Co, 37);
        float *res = c->res ? rnd(ny, 38) : NULL, *wet = malloc(sizeof(float) * (size_t)Ce * c->C);
        float *wpt = malloc(sizeof(float) * (size_t)Ce * c->Co), *e = malloc(sizeof(float) * ne), *d = malloc(sizeof(float) * nd);
        float *y1 = malloc(sizeof(float) * ny), *y2 = malloc(sizeof(float) * ny);
        float *ws = malloc(sizeof(float) * glad_invres_nhwc_workspace(c->H, c->W, Ce, 3, c->s, 1, Ho, Wo));
        glad_conv2d_nhwc_wt(wet, we, Ce, c->C);
        glad_conv2d_nhwc_wt(wpt, wp, c->Co, Ce);
        if (c->expand)
            glad_conv2d_nhwc_forward(e, x, we, be, NULL, c->H, c->W, c->C, Ce, 1, 1, 1, 1, 1, 1, 0, 0, c->H, c->W, 0.0f, 6.0f, NULL);
        glad_depthwise_nhwc_forward(d, c->expand ? e : x, wd, bd, c->H, c->W, Ce, 1, 3, 3, c->s, c->s, 1, 1, pt, pl, Ho, Wo,
                                    0.0f, 6.0f);
        glad_conv2d_nhwc_forward(y1, d, wp, bp, res, Ho, Wo, Ce, c->Co, 1, 1, 1, 1, 1, 1, 0, 0, Ho, Wo, -INFINITY, INFINITY, NULL);
        int rc = glad_invres_nhwc_forward(y2, x, c->expand ? we : NULL, c->expand ? wet : NULL, be, 0.0f, 6.0f, wd, bd, 3, 3,
                                          c->s, c->s, 1, 1, pt, pl, 0.0f, 6.0f, wp, wpt, bp, res, c->H, c->W, c->C, Ce, Ho, Wo,
                                          c->Co, ws);
        CHECKF(rc == 0 || rc == GLAD_EUNSUPPORTED, "invres case %zu: code %d", t, rc);
        if (rc == 0) {
            supported = 1;
            CHECKF(memcmp(y1, y2, sizeof(float) * ny) == 0, "invres case %zu (%dx%dx%d -> %d -> %d, stride %d): fused differs",
                   t, c->H, c->W, c->C, Ce, c->Co, c->s);
        }
        free(x); free(we); free(be); free(wd); free(bd); free(wp); free(bp); free(res); free(wet); free(wpt);
        free(e); free(d); free(y1); free(y2); free(ws);
    }
    if (!supported) SKIP("the fused inverted-residual block does not run here (no AVX-512F or GLAD_NO_AVX512)");
}

/* Blocks run in one parallel region (glad_invres_nhwc_prepare, then
 * glad_invres_nhwc_run by every thread with a barrier between blocks, as
 * mobilenet.c runs consecutive blocks) against the same blocks one call
 * each (glad_invres_nhwc_forward): the same numbers, bit for bit, in fp32
 * and (where it runs) bf16, on 1 to 3 threads. Each block reads the one
 * before it; the large chain has blocks split by rows, one split by
 * channels (with a residual) and one too small to share (run by the first
 * thread alone while the others wait at the barrier), the small chain only
 * the last kind. */
typedef struct { int H, W, C, Ce, Co, s, expand, res; } chblk;
static void test_invres_chain(void)
{
    if (!glad_nn_avx512()) { SKIP("the fused inverted-residual block does not run here (no AVX-512F or GLAD_NO_AVX512)"); return; }
    enum { NB = 5 };
    const chblk big[NB] = {{28, 28, 16, 96, 24, 1, 1, 0}, {28, 28, 24, 144, 24, 2, 1, 0}, {14, 14, 24, 144, 24, 2, 1, 0},
                           {7, 7, 24, 144, 24, 1, 1, 1},  {7, 7, 24, 24, 16, 1, 0, 0}};
    const chblk small[NB] = {{6, 5, 8, 16, 8, 1, 1, 0}, {6, 5, 8, 48, 8, 1, 1, 1}, {6, 5, 8, 48, 16, 2, 1, 0}};
    int T0 = max_threads();
    for (int sz = 0; sz < 2; sz++)
        for (int prec = 0; prec < 2; prec++) {
            if (prec && glad_precision_set(GLAD_PREC_BF16) != 0) { SKIP("no AVX512_BF16: the chained bf16 blocks not checked"); continue; }
            const chblk *b = sz ? small : big;
            int n = sz ? 3 : NB, Ho[NB], Wo[NB], pt[NB], pl[NB];
            float *w[NB][8], *y1[NB], *y2[NB];
            size_t ny[NB];
            for (int k = 0; k < n; k++) {
                int Ce = b[k].expand ? b[k].Ce : b[k].C;
                pad_of(b[k].H, 3, b[k].s, 1, 1, &Ho[k], &pt[k]);
                pad_of(b[k].W, 3, b[k].s, 1, 1, &Wo[k], &pl[k]);
                ny[k] = (size_t)Ho[k] * Wo[k] * b[k].Co;
                uint32_t sd = 100u * (uint32_t)k;
                w[k][0] = rnd((size_t)Ce * b[k].C, sd + 1), w[k][1] = rnd(Ce, sd + 2);
                w[k][2] = rnd((size_t)9 * Ce, sd + 3), w[k][3] = rnd(Ce, sd + 4);
                w[k][4] = rnd((size_t)b[k].Co * Ce, sd + 5), w[k][5] = rnd(b[k].Co, sd + 6);
                w[k][6] = malloc(sizeof(float) * (size_t)Ce * b[k].C), w[k][7] = malloc(sizeof(float) * (size_t)Ce * b[k].Co);
                glad_conv2d_nhwc_wt(w[k][6], w[k][0], Ce, b[k].C);
                glad_conv2d_nhwc_wt(w[k][7], w[k][4], b[k].Co, Ce);
                y1[k] = malloc(sizeof(float) * ny[k]);
                y2[k] = malloc(sizeof(float) * ny[k]);
            }
            float *x = rnd((size_t)b[0].H * b[0].W * b[0].C, 7);
            for (int T = 1; T <= 3; T++) {
                if (!set_threads(T)) continue;
                size_t nws = 0;   /* for T threads: set first */
                for (int k = 0; k < n; k++) {
                    size_t m = glad_invres_nhwc_workspace(b[k].H, b[k].W, b[k].expand ? b[k].Ce : b[k].C, 3, b[k].s, 1, Ho[k], Wo[k]);
                    nws = m > nws ? m : nws;
                }
                float *ws = malloc(sizeof(float) * nws);
#define BLOCK_ARGS(k, in) b[k].expand ? w[k][0] : NULL, b[k].expand ? w[k][6] : NULL, w[k][1], 0.0f, 6.0f, w[k][2], \
        w[k][3], 3, 3, b[k].s, b[k].s, 1, 1, pt[k], pl[k], 0.0f, 6.0f, w[k][4], w[k][7], w[k][5], b[k].res ? (in) : NULL, \
        b[k].H, b[k].W, b[k].C, b[k].expand ? b[k].Ce : b[k].C, Ho[k], Wo[k], b[k].Co, ws
                /* one call each */
                for (int k = 0; k < n; k++) {
                    const float *in = k ? y1[k - 1] : x;
                    CHECK(glad_invres_nhwc_forward(y1[k], in, BLOCK_ARGS(k, in)) == 0);
                }
                /* prepared, then run in one region */
                glad_invres_plan pb[NB];
                int ok = 1;
                for (int k = 0; k < n; k++) {
                    const float *in = k ? y2[k - 1] : x;
                    ok &= glad_invres_nhwc_prepare(&pb[k], y2[k], in, BLOCK_ARGS(k, in)) == 0;
                }
#undef BLOCK_ARGS
                CHECKF(ok, "chain %d %s: prepare failed", sz, prec ? "bf16" : "f32");
                if (ok) {
                    #pragma omp parallel
                    {
                        int t = 0, nt = 1;
#ifdef _OPENMP
                        t = omp_get_thread_num();
                        nt = omp_get_num_threads();
#endif
                        for (int k = 0; k < n; k++) {
                            if (k) {
                                #pragma omp barrier
                            }
                            glad_invres_nhwc_run(&pb[k], t, nt);
                        }
                    }
                    int chan = 0, alone = 0;
                    for (int k = 0; k < n; k++) {
                        chan += pb[k].chan;
                        alone += !pb[k].par;
                        glad_invres_nhwc_done(&pb[k]);
                    }
                    for (int k = 0; k < n; k++)
                        CHECKF(memcmp(y1[k], y2[k], sizeof(float) * ny[k]) == 0,
                               "chain %d %s, %d threads: block %d in one region differs from one call", sz, prec ? "bf16" : "f32", T,
                               k);
                    /* the paths taken: by rows, by channels, alone (large chain); alone (small) */
                    if (T > 1)
                        CHECKF(sz ? alone == n : alone == 1 && chan == 1, "chain %d, %d threads: %d by channels, %d alone", sz, T,
                               chan, alone);
                }
                free(ws);
            }
            set_threads(T0);
            glad_precision_set(GLAD_PREC_F32);
            for (int k = 0; k < n; k++) {
                for (int j = 0; j < 8; j++) free(w[k][j]);
                free(y1[k]);
                free(y2[k]);
            }
            free(x);
        }
}

/* glad_dw_row16_avx512 (the depthwise rows invres.c stores in bf16 for the
 * projection) rounds as glad_bf16_from_f32 (and so vcvtneps2bf16) does, bit
 * for bit, on exact ties (to even, both ways), the values beside them,
 * denormals (to signed zero), infinities and the largest floats, through
 * both of its column paths (four pixels at a time, and the edge ones) */
static void test_dw_row16(void)
{
    if (!glad_nn_avx512()) { SKIP("no AVX-512F (or GLAD_NO_AVX512 set): the bf16-storing depthwise row not checked"); return; }
    enum { W = 22, C = 24, N = W * C };
    static const uint32_t sp[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0xbf818000u, 0x3f807fffu, 0x3f808001u,
                                  0x00000001u, 0x807fffffu, 0x00400000u, 0x7f800000u, 0xff800000u, 0x7f7fffffu,
                                  0x7f7f8000u, 0x80000000u, 0x00000000u, 0x00800000u, 0x4049ffffu, 0xc07f8000u};
    float x[N], w[C], y[N];
    uint16_t y16[N];
    uint32_t seed = 5;
    for (int i = 0; i < N; i++) {
        int ns = (int)(sizeof sp / sizeof sp[0]);
        seed = seed * 1664525u + 1013904223u;
        uint32_t u = i < ns ? sp[i] : seed & 0xbfffffffu;     /* below 4 in magnitude */
        if (i >= ns && i % 3 == 0) u = (u & 0xffff0000u) | 0x8000u;   /* a third of them exact ties */
        memcpy(&x[i], &u, 4);
    }
    for (int c = 0; c < C; c++) w[c] = 1.0f;   /* a 1x1 kernel of ones: each output is its input */
    glad_dw_row_avx512(y, x, w, NULL, 1, W, C, C, 1, 1, 1, 1, 1, 1, 0, 0, W, -INFINITY, INFINITY, 0);
    glad_dw_row16_avx512(y16, x, w, NULL, 1, W, C, C, 1, 1, 1, 1, 1, 1, 0, 0, W, -INFINITY, INFINITY, 0);
    int bad = 0;
    for (int i = 0; i < N; i++)
        if (y16[i] != glad_bf16_from_f32(y[i])) {
            if (!bad++) fprintf(stderr, "dw row16: value %d (%a): %04x, glad_bf16_from_f32 %04x\n", i, (double)y[i], y16[i],
                                glad_bf16_from_f32(y[i]));
        }
    CHECKF(bad == 0, "glad_dw_row16_avx512 rounds %d of %d values unlike glad_bf16_from_f32", bad, N);
}

/* The bf16 fused block's expansion and depthwise kernels (glad_gemm_nhwc_bf16h, glad_dw_row16b_avx512) bit for bit
 * against the kernels they stand in for, on the same numbers: glad_gemm_nhwc_bf16 rounded by glad_bf16_from_f32, and
 * glad_dw_row16_avx512 on the bf16 input widened to fp32 (weights and bias unpacked). Channel counts below, at and
 * above 32 and not a multiple of it (the masked tail of a 32-channel vector, and the zero-padded weights), a slice of
 * channels starting at 32, strides 1 and 2, 3x3 and 5x5 with dilation 2, rows at the top, middle and bottom edge,
 * widths giving the eight-, four- and one-pixel paths, with and without bias, clamped and not (the rounding's special
 * values are test_dw_row16's: the same vcvtneps2bf16 rounding). Skipped without AVX512_BF16. */
static void test_bf16_kernels(void)
{
    if (!glad_nn_bf16()) { SKIP("no AVX512_BF16 (or GLAD_NO_BF16 / GLAD_NO_AVX512 set): the bf16-input depthwise row not checked"); return; }
    static const struct { int H, W, C, nc, c0, k, s, d, bias, relu6; } cs[] = {
        {5, 21, 24, 24, 0, 3, 1, 1, 1, 1},  {6, 30, 40, 40, 0, 3, 2, 1, 1, 0}, {4, 13, 96, 96, 0, 3, 1, 1, 0, 1},
        {7, 19, 72, 40, 32, 3, 2, 1, 1, 1}, {9, 17, 34, 34, 0, 5, 1, 2, 1, 0}, {3, 9, 2, 2, 0, 3, 1, 1, 1, 1},
        {8, 40, 144, 112, 32, 3, 1, 1, 1, 1},
    };
    int bad = 0, badg = 0, nv = 0;
    for (size_t t = 0; t < sizeof cs / sizeof cs[0]; t++) {
        int H = cs[t].H, W = cs[t].W, C = cs[t].C, nc = cs[t].nc, c0 = cs[t].c0, k = cs[t].k, s = cs[t].s, d = cs[t].d;
        int Ho, Wo, pt, pl, Cp = (C + 31) / 32 * 32;
        pad_of(H, (k - 1) * d + 1, s, 1, 1, &Ho, &pt);
        pad_of(W, (k - 1) * d + 1, s, 1, 1, &Wo, &pl);
        size_t nx = (size_t)H * W * C;
        float *xf = rnd(nx, 61 + (uint32_t)t), *w = rnd((size_t)k * k * C, 62), *b = rnd(C, 63);
        float *wq = malloc(sizeof(float) * (size_t)Cp * k * k), *bq = malloc(sizeof(float) * Cp);
        uint16_t *x16 = malloc(sizeof(uint16_t) * nx), *o16 = malloc(sizeof(uint16_t) * (size_t)Wo * C);
        uint16_t *r16 = malloc(sizeof(uint16_t) * (size_t)Wo * C);
        for (size_t q = 0; q < nx; q++) {
            x16[q] = glad_bf16_from_f32(xf[q] * 4.0f);
            xf[q] = glad_bf16_to_f32(x16[q]);
        }
        glad_dw_pack_eo(wq, w, k * k, C);
        glad_dw_pack_eo(bq, b, 1, C);
        float lo = cs[t].relu6 ? 0.0f : -INFINITY, hi = cs[t].relu6 ? 6.0f : INFINITY;
        for (int i = 0; i < Ho; i++) {
            memset(o16, 0, sizeof(uint16_t) * (size_t)Wo * C);
            memset(r16, 0, sizeof(uint16_t) * (size_t)Wo * C);
            glad_dw_row16b_avx512(o16 + c0, x16 + c0, wq + c0, cs[t].bias ? bq + c0 : NULL, H, W, C, nc, k, k, s, s, d, d, pt,
                                  pl, Wo, lo, hi, i);
            glad_dw_row16_avx512(r16 + c0, xf + c0, w + c0, cs[t].bias ? b + c0 : NULL, H, W, C, nc, k, k, s, s, d, d, pt, pl,
                                 Wo, lo, hi, i);
            for (int q = 0; q < Wo * C; q++, nv++)
                if (o16[q] != r16[q] && !bad++)
                    fprintf(stderr, "dw row16b case %zu row %d value %d: %04x, glad_dw_row16_avx512 %04x\n", t, i, q, o16[q],
                            r16[q]);
        }
        free(xf); free(w); free(b); free(wq); free(bq); free(x16); free(o16); free(r16);
    }
    /* the bf16-storing GEMM: n pixels (K, OC) with row tails, panels of 64 and a narrow one, a column slice */
    static const struct { int n, K, OC, c0; } gs[] = {{37, 24, 144, 0}, {13, 32, 40, 0}, {50, 16, 96, 32}, {7, 160, 960, 0}};
    for (size_t t = 0; t < sizeof gs / sizeof gs[0]; t++) {
        int n = gs[t].n, K = gs[t].K, OC = gs[t].OC, c0 = gs[t].c0, ldo = OC + c0;
        float *a = rnd((size_t)n * K, 71), *w = rnd((size_t)ldo * K, 72), *b = rnd(ldo, 73);
        float *o = malloc(sizeof(float) * (size_t)n * ldo);
        uint16_t *q = calloc((size_t)n * ldo, sizeof(uint16_t));
        uint16_t *wp = malloc(sizeof(uint16_t) * glad_bf16_pb_elems(K, ldo));
        glad_bf16_pack_b(wp, w, (size_t)K, 1, K, ldo);
        size_t ldq = (size_t)2 * ((ldo + 31) / 32 * 32);
        glad_gemm_nhwc_bf16(o, (size_t)ldo, a, (size_t)K, wp + 2 * c0, ldq, b + c0, NULL, n, K, OC, 0.0f, 6.0f);
        glad_gemm_nhwc_bf16h(q, (size_t)ldo, a, (size_t)K, wp + 2 * c0, ldq, b + c0, n, K, OC, 0.0f, 6.0f);
        for (int r = 0; r < n; r++)
            for (int c = 0; c < OC; c++, nv++)
                if (q[(size_t)r * ldo + c] != glad_bf16_from_f32(o[(size_t)r * ldo + c]) && !badg++)
                    fprintf(stderr, "gemm bf16h case %zu (%d, %d): %04x, rounded fp32 %04x\n", t, r, c, q[(size_t)r * ldo + c],
                            glad_bf16_from_f32(o[(size_t)r * ldo + c]));
        free(a); free(w); free(b); free(o); free(q); free(wp);
    }
    CHECKF(bad == 0, "glad_dw_row16b_avx512 differs from glad_dw_row16_avx512 on widened bf16 in %d values", bad);
    CHECKF(badg == 0, "glad_gemm_nhwc_bf16h differs from glad_gemm_nhwc_bf16 rounded in %d values", badg);
    printf("bf16-input depthwise row and bf16-storing GEMM: %d values checked\n", nv);
}

/* The bf16 fused block (invres.c's 1x1 GEMMs on bf16 operands with fp32
 * sums, glad_gemm_nhwc_bf16; depthwise sums fp32, on the expansion rounded
 * to bf16 when Ce is even) on every IR case with 1 and 2 threads, so both of
 * its paths run (bands of rows; split by channels, which needs 2 threads):
 * bit for bit its three convolutions run one by one in bf16 (conv_nhwc.c
 * takes the same GEMM) with the expansion's output rounded to bf16 (Ce even)
 * in between, and against the fp32 block within the stated bf16 tolerance
 *   |y bf16 - y f32| <= 2^-7 sum of |terms| through the block
 * (each GEMM product rounds two operands by 2^-9; the expansion's error
 * reaches y through the depthwise taps and the projection: 2^-8, + 2^-9 for
 * the expansion stored in bf16, + 2^-8 for the projection's operands),
 * where the sum of |terms| is |bp| + sum |wp| (|bd| + sum |wd| (|be| + sum
 * |we x|)) + |res|. Half the cases run with a bf16 weight cache in use (the
 * packed weights made once, then reused), half pack per call. Skipped
 * visibly without AVX512_BF16 (or with GLAD_NO_BF16 / GLAD_NO_AVX512). */
#define TOL_IR16 0x1p-7
static void test_invres_bf16(void)
{
    if (glad_precision_set(GLAD_PREC_BF16) != 0) {
        CHECK(glad_precision_get() == GLAD_PREC_F32);
        SKIP("no AVX512_BF16 (or GLAD_NO_BF16 / GLAD_NO_AVX512 set): the bf16 fused block not checked");
        return;
    }
    glad_precision_set(GLAD_PREC_F32);
    glad_bf16_cache *bc = glad_bf16_cache_new();
    int T0 = max_threads(), ran[2] = {0, 0};   /* cases run on the band path, on the by-channels path */
    double worst = 0, worstrel = 0;
    for (size_t t = 0; t < NIR; t++)
        for (int T = 1; T <= 2; T++) {
            if (!set_threads(T)) continue;
            const ircase *c = &IR[t];
            int Ho, Wo, pt, pl, Ce = c->expand ? c->Ce : c->C, C = c->C, Co = c->Co;
            pad_of(c->H, 3, c->s, 1, 1, &Ho, &pt);
            pad_of(c->W, 3, c->s, 1, 1, &Wo, &pl);
            size_t ne = (size_t)c->H * c->W * Ce, nd = (size_t)Ho * Wo * Ce, ny = (size_t)Ho * Wo * Co;
            float *x = rnd((size_t)c->H * c->W * C, 41), *we = rnd((size_t)Ce * C, 42), *be = rnd(Ce, 43);
            float *wd = rnd((size_t)9 * Ce, 44), *bd = rnd(Ce, 45), *wp = rnd((size_t)Co * Ce, 46), *bp = rnd(Co, 47);
            float *res = c->res ? rnd(ny, 48) : NULL, *wet = malloc(sizeof(float) * (size_t)Ce * C);
            float *wpt = malloc(sizeof(float) * (size_t)Ce * Co), *e = malloc(sizeof(float) * ne), *d = malloc(sizeof(float) * nd);
            float *y32 = malloc(sizeof(float) * ny), *y16 = malloc(sizeof(float) * ny), *yu = malloc(sizeof(float) * ny);
            float *ws = malloc(sizeof(float) * glad_invres_nhwc_workspace(c->H, c->W, Ce, 3, c->s, 1, Ho, Wo));
            double *me = malloc(sizeof(double) * ne), *md = malloc(sizeof(double) * nd);
            glad_conv2d_nhwc_wt(wet, we, Ce, C);
            glad_conv2d_nhwc_wt(wpt, wp, Co, Ce);
            const float *wex = c->expand ? we : NULL;
            int rc = glad_invres_nhwc_forward(y32, x, wex, c->expand ? wet : NULL, be, 0.0f, 6.0f, wd, bd, 3, 3, c->s, c->s, 1, 1,
                                              pt, pl, 0.0f, 6.0f, wp, wpt, bp, res, c->H, c->W, C, Ce, Ho, Wo, Co, ws);
            CHECKF(rc == 0, "invres case %zu f32: code %d", t, rc);
            /* bf16: the fused block (with or without the cache), then the three convolutions one by one */
            glad_bf16_cache *prev = glad_bf16_cache_use(t % 2 ? bc : NULL);
            CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
            rc = glad_invres_nhwc_forward(y16, x, wex, NULL, be, 0.0f, 6.0f, wd, bd, 3, 3, c->s, c->s, 1, 1, pt, pl, 0.0f, 6.0f,
                                          wp, NULL, bp, res, c->H, c->W, C, Ce, Ho, Wo, Co, ws);
            CHECKF(rc == 0, "invres case %zu bf16: code %d", t, rc);
            if (c->expand) {
                glad_conv2d_nhwc_forward(e, x, we, be, NULL, c->H, c->W, C, Ce, 1, 1, 1, 1, 1, 1, 0, 0, c->H, c->W, 0.0f, 6.0f, NULL);
                /* with Ce even the fused block stores its expansion in bf16 for the depthwise conv */
                if (Ce % 2 == 0)
                    for (size_t q = 0; q < ne; q++) e[q] = glad_bf16_round(e[q]);
            }
            glad_depthwise_nhwc_forward(d, c->expand ? e : x, wd, bd, c->H, c->W, Ce, 1, 3, 3, c->s, c->s, 1, 1, pt, pl, Ho, Wo,
                                        0.0f, 6.0f);
            glad_conv2d_nhwc_forward(yu, d, wp, bp, res, Ho, Wo, Ce, Co, 1, 1, 1, 1, 1, 1, 0, 0, Ho, Wo, -INFINITY, INFINITY, NULL);
            glad_precision_set(GLAD_PREC_F32);
            glad_bf16_cache_use(prev);
            CHECKF(memcmp(y16, yu, sizeof(float) * ny) == 0, "invres case %zu bf16 (%d threads): fused differs from one by one",
                   t, T);
            /* the sums of |terms|, in double */
            for (size_t q = 0; q < (size_t)c->H * c->W; q++)
                for (int k = 0; k < Ce; k++) {
                    double a = fabs(be[k]);
                    if (c->expand)
                        for (int i = 0; i < C; i++) a += fabs((double)x[q * C + i] * we[(size_t)k * C + i]);
                    else a = fabs(x[q * C + k]);
                    me[q * Ce + k] = a;
                }
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++)
                    for (int k = 0; k < Ce; k++) {
                        double a = fabs(bd[k]);
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int yy = i * c->s - pt + ky, xx = j * c->s - pl + kx;
                                if (yy >= 0 && yy < c->H && xx >= 0 && xx < c->W)
                                    a += fabs(wd[(ky * 3 + kx) * Ce + k]) * me[((size_t)yy * c->W + xx) * Ce + k];
                            }
                        md[((size_t)i * Wo + j) * Ce + k] = a;
                    }
            double ew = 0, emax = 0, ymax = 0;
            for (size_t q = 0; q < (size_t)Ho * Wo; q++)
                for (int o = 0; o < Co; o++) {
                    double a = fabs(bp[o]) + (res ? fabs(res[q * Co + o]) : 0);
                    for (int k = 0; k < Ce; k++) a += fabs(wp[(size_t)o * Ce + k]) * md[q * Ce + k];
                    double err = fabs((double)y16[q * Co + o] - y32[q * Co + o]);
                    ew = fmax(ew, err / (TOL_IR16 * a + 1e-30));
                    emax = fmax(emax, err);
                    ymax = fmax(ymax, fabs(y32[q * Co + o]));
                }
            CHECKF(ew <= 1 && emax > 0, "invres case %zu bf16 (%d threads): error %.3g of the tolerance (max |err| %.3g)", t, T,
                   ew, emax);
            worst = fmax(worst, ew);
            worstrel = fmax(worstrel, emax / ymax);
            /* invres.c's choice of path (by_channels and the size for threads) */
            ran[T > 1 && (long)Ho * c->s < 2L * T * (3 - c->s) && (long)Ho * Wo * Ce * (C + Co) > 200000]++;
            free(x); free(we); free(be); free(wd); free(bd); free(wp); free(bp); free(res); free(wet); free(wpt);
            free(e); free(d); free(y32); free(y16); free(yu); free(ws); free(me); free(md);
        }
    set_threads(T0);
    glad_bf16_cache_free(bc);
    printf("bf16 fused inverted-residual block: %d band-path and %d by-channels runs, worst %.3g of the tolerance "
           "(2^-7 sum |terms|), max |err| / max |f32| %.3g\n", ran[0], ran[1], worst, worstrel);
#ifdef _OPENMP
    CHECKF(ran[0] > 0 && ran[1] > 0, "bf16 fused block: band path %d runs, by channels %d", ran[0], ran[1]);
#endif
}

/* The stem fused into the bf16 block after it (glad_invres_nhwc_forward_stem: MobileNetV2's first conv, 3x3 stride 2
 * from 3 channels, run band by band as the block's expansion) with 1 and 2 threads: bit for bit the bf16 conv
 * (glad_conv2d_nhwc_forward), its output rounded to bf16, the depthwise conv and the bf16 projection one by one; and
 * against the same in fp32 within the bf16 tolerance of test_invres_bf16 (the stem's K = 27 terms in place of the
 * expansion's). The same fused in f32: bit for bit the three f32 convolutions one by one (odd Ce too). Cases: several
 * bands per thread (a wide image), odd sizes, stride 2, Ce with a tail of a vector of 32, a residual; odd Ce in bf16,
 * and f32 without the transposed weights, decline (GLAD_EUNSUPPORTED). */
typedef struct { int H0, W0, Ce, Co, s, res; } stemcase;
static void test_invres_stem(void)
{
    if (glad_precision_set(GLAD_PREC_BF16) != 0) { SKIP("no AVX512_BF16: the stem fused into the bf16 block not checked"); return; }
    glad_precision_set(GLAD_PREC_F32);
    static const stemcase SC[] = {{60, 600, 32, 16, 1, 0}, {23, 17, 24, 24, 2, 0}, {31, 45, 40, 40, 1, 1}, {16, 16, 17, 8, 1, 0}};
    int T0 = max_threads();
    double worst = 0;
    int runs = 0, runs32 = 0;
    for (size_t t = 0; t < sizeof SC / sizeof SC[0]; t++)
        for (int T = 1; T <= 2; T++) {
            if (!set_threads(T)) continue;
            const stemcase *c = &SC[t];
            int H, W, st0, sl0, Ho, Wo, pt, pl, Ce = c->Ce, Co = c->Co;
            pad_of(c->H0, 3, 2, 1, 1, &H, &st0);
            pad_of(c->W0, 3, 2, 1, 1, &W, &sl0);
            pad_of(H, 3, c->s, 1, 1, &Ho, &pt);
            pad_of(W, 3, c->s, 1, 1, &Wo, &pl);
            size_t ne = (size_t)H * W * Ce, ny = (size_t)Ho * Wo * Co;
            float *x = rnd((size_t)c->H0 * c->W0 * 3, 81), *w0 = rnd((size_t)Ce * 27, 82), *b0 = rnd(Ce, 83);
            float *wd = rnd((size_t)9 * Ce, 84), *bd = rnd(Ce, 85), *wp = rnd((size_t)Co * Ce, 86), *bp = rnd(Co, 87);
            float *res = c->res ? rnd(ny, 88) : NULL, *wpt = malloc(sizeof(float) * (size_t)Ce * Co);
            float *e = malloc(sizeof(float) * ne), *d = malloc(sizeof(float) * (size_t)Ho * Wo * Ce);
            float *y32 = malloc(sizeof(float) * ny), *y16 = malloc(sizeof(float) * ny), *yu = malloc(sizeof(float) * ny);
            float *ws = malloc(sizeof(float) * glad_invres_nhwc_workspace(H, W, Ce, 3, c->s, 1, Ho, Wo));
            float *cw = malloc(sizeof(float) * glad_conv2d_nhwc_workspace(3, 3, 3, H, W, 0));   /* the stem's im2col */
            float *w0t = malloc(sizeof(float) * (size_t)Ce * 27);
            glad_invres_stem st = {x, w0, b0, c->H0, c->W0, 3, 3, 3, 2, 2, 1, 1, st0, sl0, 0.0f, 6.0f, NULL};
            glad_conv2d_nhwc_wt(wpt, wp, Co, Ce);
            glad_conv2d_nhwc_wt(w0t, w0, Ce, 27);
            /* f32: the stem alone, then the block; fused, bit for bit that (declined without the transposed weights) */
            CHECK(glad_invres_nhwc_forward_stem(y16, &st, wd, bd, 3, 3, c->s, c->s, 1, 1, pt, pl, 0.0f, 6.0f, wp, wpt, bp, res, H,
                                                W, Ce, Ho, Wo, Co, ws) == GLAD_EUNSUPPORTED);
            glad_conv2d_nhwc_forward(e, x, w0, b0, NULL, c->H0, c->W0, 3, Ce, 3, 3, 2, 2, 1, 1, st0, sl0, H, W, 0.0f, 6.0f, cw);
            glad_depthwise_nhwc_forward(d, e, wd, bd, H, W, Ce, 1, 3, 3, c->s, c->s, 1, 1, pt, pl, Ho, Wo, 0.0f, 6.0f);
            glad_conv2d_nhwc_forward(y32, d, wp, bp, res, Ho, Wo, Ce, Co, 1, 1, 1, 1, 1, 1, 0, 0, Ho, Wo, -INFINITY, INFINITY, NULL);
            st.wt = w0t;
            memset(y16, 0, sizeof(float) * ny);
            CHECK(glad_invres_nhwc_forward_stem(y16, &st, wd, bd, 3, 3, c->s, c->s, 1, 1, pt, pl, 0.0f, 6.0f, wp, NULL, bp, res, H,
                                                W, Ce, Ho, Wo, Co, ws) == GLAD_EUNSUPPORTED);
            int rc = glad_invres_nhwc_forward_stem(y16, &st, wd, bd, 3, 3, c->s, c->s, 1, 1, pt, pl, 0.0f, 6.0f, wp, wpt, bp, res,
                                                   H, W, Ce, Ho, Wo, Co, ws);
            CHECKF(rc == 0, "stem case %zu f32: code %d", t, rc);
            CHECKF(memcmp(y16, y32, sizeof(float) * ny) == 0, "stem case %zu f32 (%d threads): fused differs from one by one",
                   t, T);
            runs32++;
            st.wt = NULL;
            CHECK(glad_precision_set(GLAD_PREC_BF16) == 0);
            rc = glad_invres_nhwc_forward_stem(y16, &st, wd, bd, 3, 3, c->s, c->s, 1, 1, pt, pl, 0.0f, 6.0f, wp, NULL, bp, res, H,
                                               W, Ce, Ho, Wo, Co, ws);
            if (Ce % 2) {
                CHECKF(rc == GLAD_EUNSUPPORTED, "stem case %zu (odd Ce): code %d", t, rc);
                glad_precision_set(GLAD_PREC_F32);
                goto next;
            }
            CHECKF(rc == 0, "stem case %zu bf16: code %d", t, rc);
            glad_conv2d_nhwc_forward(e, x, w0, b0, NULL, c->H0, c->W0, 3, Ce, 3, 3, 2, 2, 1, 1, st0, sl0, H, W, 0.0f, 6.0f, cw);
            for (size_t q = 0; q < ne; q++) e[q] = glad_bf16_round(e[q]);
            glad_depthwise_nhwc_forward(d, e, wd, bd, H, W, Ce, 1, 3, 3, c->s, c->s, 1, 1, pt, pl, Ho, Wo, 0.0f, 6.0f);
            glad_conv2d_nhwc_forward(yu, d, wp, bp, res, Ho, Wo, Ce, Co, 1, 1, 1, 1, 1, 1, 0, 0, Ho, Wo, -INFINITY, INFINITY, NULL);
            glad_precision_set(GLAD_PREC_F32);
            CHECKF(memcmp(y16, yu, sizeof(float) * ny) == 0, "stem case %zu bf16 (%d threads): fused differs from one by one",
                   t, T);
            {
                /* the sums of |terms|, in double: the stem's, the depthwise conv's, the projection's */
                double *me = malloc(sizeof(double) * ne), ew = 0;
                for (int i = 0; i < H; i++)
                    for (int j = 0; j < W; j++)
                        for (int k = 0; k < Ce; k++) {
                            double a = fabs(b0[k]);
                            for (int ky = 0; ky < 3; ky++)
                                for (int kx = 0; kx < 3; kx++) {
                                    int yy = 2 * i - st0 + ky, xx = 2 * j - sl0 + kx;
                                    if (yy >= 0 && yy < c->H0 && xx >= 0 && xx < c->W0)
                                        for (int ci = 0; ci < 3; ci++)
                                            a += fabs((double)w0[(size_t)k * 27 + (ky * 3 + kx) * 3 + ci] *
                                                      x[((size_t)yy * c->W0 + xx) * 3 + ci]);
                                }
                            me[((size_t)i * W + j) * Ce + k] = a;
                        }
                for (int i = 0; i < Ho; i++)
                    for (int j = 0; j < Wo; j++)
                        for (int o = 0; o < Co; o++) {
                            double a = fabs(bp[o]) + (res ? fabs(res[((size_t)i * Wo + j) * Co + o]) : 0);
                            for (int k = 0; k < Ce; k++) {
                                double m = fabs(bd[k]);
                                for (int ky = 0; ky < 3; ky++)
                                    for (int kx = 0; kx < 3; kx++) {
                                        int yy = i * c->s - pt + ky, xx = j * c->s - pl + kx;
                                        if (yy >= 0 && yy < H && xx >= 0 && xx < W)
                                            m += fabs(wd[(ky * 3 + kx) * Ce + k]) * me[((size_t)yy * W + xx) * Ce + k];
                                    }
                                a += fabs(wp[(size_t)o * Ce + k]) * m;
                            }
                            size_t q = ((size_t)i * Wo + j) * Co + o;
                            ew = fmax(ew, fabs((double)y16[q] - y32[q]) / (TOL_IR16 * a + 1e-30));
                        }
                CHECKF(ew <= 1, "stem case %zu bf16 (%d threads): error %.3g of the tolerance", t, T, ew);
                worst = fmax(worst, ew);
                free(me);
                runs++;
            }
        next:
            free(x); free(w0); free(b0); free(wd); free(bd); free(wp); free(bp); free(res); free(wpt); free(e); free(d);
            free(y32); free(y16); free(yu); free(ws); free(cw); free(w0t);
        }
    set_threads(T0);
    printf("stem fused into the bf16 block: %d runs, worst %.3g of the tolerance (2^-7 sum |terms|); into the f32 block: %d "
           "runs, bit for bit\n", runs, worst, runs32);
}

#define NDW (int)(sizeof DW / sizeof DW[0])
#define NCV (int)(sizeof CV / sizeof CV[0])

/* every case's outputs in order, for the parent to compare */
static int dump(void)
{
    for (int t = 0; t < NDW + NCV; t++) {
        float *o;
        double *r, *m;
        size_t n = t < NDW ? run_dw(&DW[t], &o, &r, &m) : run_cv(&CV[t - NDW], &o, &r, &m);
        for (size_t i = 0; i < n; i++) printf("%a\n", o[i]);
        free(o); free(r); free(m);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--dump") == 0) return dump();
    /* the other path: the portable kernels in a child, when this process runs the AVX-512 ones */
    FILE *child = NULL;
    char cmd[4096];
    if (!getenv("GLAD_NO_AVX512") && __builtin_cpu_supports("avx512f") &&
        snprintf(cmd, sizeof cmd, "GLAD_NO_AVX512=1 '%s' --dump", argv[0]) < (int)sizeof cmd && !strchr(argv[0], '\''))
        child = popen(cmd, "r");
    if (!child) SKIP("no AVX-512F (or GLAD_NO_AVX512 set): the AVX-512 kernels not compared with the portable ones");
    for (int t = 0; t < NDW + NCV; t++) {
        float *o;
        double *r, *m;
        size_t n = t < NDW ? run_dw(&DW[t], &o, &r, &m) : run_cv(&CV[t - NDW], &o, &r, &m);
        double worst = 0, worstp = 0;
        int readfail = 0;
        for (size_t i = 0; i < n; i++) {
            /* float sums of up to K terms: a few ulps of the sum of |terms| */
            double tol = 4e-7 * (m[i] + 1.0) * 8;
            double e = fabs(o[i] - r[i]) / tol;
            if (e > worst) worst = e;
            float p;
            if (child) {
                if (fscanf(child, "%a", &p) != 1) readfail = 1;
                else if ((e = fabs((double)o[i] - p) / tol) > worstp) worstp = e;
            }
        }
        const char *what = t < NDW ? "depthwise" : "conv";
        int k = t < NDW ? t : t - NDW;
        CHECKF(worst <= 1, "%s case %d: error %.3g of the tolerance against the double reference", what, k, worst);
        if (child) CHECKF(!readfail && worstp <= 1, "%s case %d: AVX-512 vs portable %.3g of the tolerance%s", what, k, worstp,
                          readfail ? " (child output short)" : "");
        free(o); free(r); free(m);
    }
    if (child) CHECKF(pclose(child) == 0, "the GLAD_NO_AVX512=1 child failed");
    test_invres();
    test_invres_chain();
    test_dw_row16();
    test_bf16_kernels();
    test_invres_bf16();
    test_invres_stem();
    return check_done();
}
