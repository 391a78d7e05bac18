/* invres.c - MobileNetV2's inverted-residual block (1x1 expansion, depthwise
 * conv, linear 1x1 projection, optional residual) in one parallel region on
 * channels-last images, for AVX-512F CPUs, in fp32 or bf16 (nn/bf16.h). Each
 * thread owns a contiguous range of output rows and walks it in bands small
 * enough that the band's expanded rows stay in L2: it expands only the input
 * rows the band's depthwise taps read (rows shared with the previous band
 * are kept, not recomputed), runs the depthwise rows into a band buffer, and
 * projects them straight into the output. One barrier per block instead of
 * three and the expanded tensor never goes to memory. On small maps (few
 * rows a thread) the threads split the expanded channels instead, expand and
 * convolve whole images, and meet at one barrier before each projects its
 * own pixels (no rows recomputed). Same kernels as the unfused ops
 * (nhwc.h), so the numbers are those of running them one by one: in bf16
 * the two 1x1 GEMMs take bf16 operands with fp32 sums
 * (glad_gemm_nhwc_bf16, the weights packed once in the cache in use) and
 * the depthwise conv and every epilogue sum in fp32 (the depthwise conv
 * sums 9 taps per channel, no dot product over channels for vdpbf16ps to
 * pair up). With Ce even (every MobileNetV2 block) the rows between the
 * kernels are bf16: the expansion stores its rows rounded to bf16 after its
 * epilogue (glad_gemm_nhwc_bf16h), which the depthwise conv reads as they
 * are (glad_dw_row16b_avx512, half the bytes of fp32 rows, so a band holds
 * twice the rows; its weights packed to match once, in the bf16 cache in
 * use), and the depthwise rows are stored rounded to bf16, as
 * the projection would round them, which spares it a pass converting them
 * (glad_dw_row16_avx512 when there is no expansion). So in bf16 the
 * expanded activations are rounded once more than the ops one by one would
 * (at the depthwise conv's input, as a GEMM rounds its input): the unfused
 * equivalent is the bf16 expansion, its output rounded to bf16, the fp32
 * depthwise conv, the bf16 projection (tests/test_nhwc.c checks it bit for
 * bit). Odd Ce keeps fp32 expanded rows. A block without expansion can
 * also take the conv before it (the stem, MobileNetV2's first conv:
 * glad_invres_nhwc_forward_stem) in place of the expansion: each band
 * computes the stem's output rows it reads (glad_conv_rows_bf16h: im2col of
 * a few pixels in L1, the bf16 GEMM, rounded to bf16; in f32
 * glad_conv_rows_f32, the same in f32, the unfused conv's numbers), so that
 * output (8 MB in fp32 at 512x512) is never written to memory and read back
 * (it was 20 % of the bf16 time there, the depthwise conv on it
 * memory-bound).
 * glad_invres_nhwc_prepare / _run / _done split a call in two: the checks
 * and packing once, then each thread's part called from inside a caller's
 * region (mobilenet.c runs consecutive blocks in one region that way).
 * Not the unfused convolutions (conv_nhwc.c, depthwise.c), nor a portable
 * path: without AVX-512F it declines. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "core/glad.h"
#include "nn/bf16.h"
#include "nn/cpu.h"
#include "nn/nhwc.h"
#include "nn/nn.h"

/* output rows per band, and the expanded rows such a band reads at most: ~384 KB of them (twice the rows in bf16,
 * h16); returns the floats of a thread's band buffers (those rows, then the band's depthwise rows, both bf16 when
 * h16), a multiple of 16 */
static size_t band_of(int W, int Ce, int kh, int sh, int dh, int Wo, int h16, int *nb, int *er)
{
    int span = (kh - 1) * dh + 1, rows = (int)(393216L / (h16 ? 2 : 4) / ((long)W * Ce));
    *nb = rows > span ? (rows - span) / sh + 1 : 1;
    *er = (*nb - 1) * sh + span;
    size_t n = (size_t)*er * W * Ce + (size_t)*nb * Wo * Ce;
    return ((h16 ? (n + 1) / 2 : n) + 15) / 16 * 16;
}

static int nthreads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* split by channels when a thread's output rows are so few that the
 * expanded rows its depthwise taps share with its neighbour (recomputed by
 * both) would add more than about a half to the expansion. Split by channels,
 * the projection reads every channel, half of them written by the other core,
 * which costs more than recomputing: on 2 threads rows won from 14x14 up
 * (MobileNetV2's 14x14 blocks at 224: bf16 -25..-40 %, f32 -10..-25 %; its
 * 16x16 ones at 512: bf16 -18 %, f32 the same), channels at 7x7 (rows there:
 * f32 +20..+40 %). Both paths give the same numbers. */
static int by_channels(int Ho, int kh, int sh, int dh, int T)
{
    return T > 1 && (long)Ho * sh < 2L * T * ((kh - 1) * dh + 1 - sh);
}

/* a 1x1 conv's weights as the GEMM of the precision reads them: fp32 w^T (K, OC), or bf16 pairs (q, rows ldq apart) */
typedef struct { const float *t; const uint16_t *q; size_t ldq; } gw;

#if defined(__x86_64__) && defined(__GNUC__)
/* o (n, OC) = clamp(a w[:, c0..c0+OC) + b, lo, hi) (+ res), w's columns from c0 (a multiple of 16) on; ldw: w's OC */
static void gemm(float *o, size_t ldo, const float *a, size_t lda, const gw *w, int c0, size_t ldw, const float *b,
                 const float *res, int n, int K, int OC, float lo, float hi)
{
    if (w->q) glad_gemm_nhwc_bf16(o, ldo, a, lda, w->q + (size_t)2 * c0, w->ldq, b, res, n, K, OC, lo, hi);
    else glad_gemm_nhwc_avx512(o, ldo, a, lda, w->t + c0, ldw, b, res, n, K, OC, lo, hi);
}

/* depthwise output row i (glad_dw_row_avx512's arguments) at element at of D: fp32, or when d16 bf16, rounded as the
 * projection's GEMM would round it (the same numbers), so that GEMM reads it as is (no pass converting D) */
static void dw_row(float *D, size_t at, int d16, const float *x, const uint16_t *x16, const float *w, const float *b, int H,
                   int W, int C, int nc, int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, int Wo, float lo,
                   float hi, int i)
{
    /* x16: the expansion in bf16, w and b packed by glad_dw_pack_eo */
    if (x16) glad_dw_row16b_avx512((uint16_t *)D + at, x16, w, b, H, W, C, nc, kh, kw, sh, sw, dh, dw, pt, pl, Wo, lo, hi, i);
    else if (d16) glad_dw_row16_avx512((uint16_t *)D + at, x, w, b, H, W, C, nc, kh, kw, sh, sw, dh, dw, pt, pl, Wo, lo, hi, i);
    else glad_dw_row_avx512(D + at, x, w, b, H, W, C, nc, kh, kw, sh, sw, dh, dw, pt, pl, Wo, lo, hi, i);
}

/* the expansion's rows n of E from element at (Ce apart) = clamp(a w[:, c0..c0+OC) + b): fp32, or when e16 bf16 (rounded
 * after the epilogue, for the bf16-input depthwise row) */
static void expand(float *E, size_t at, int e16, const float *a, size_t lda, const gw *w, int c0, int Ce, const float *b,
                   int n, int K, int OC, float lo, float hi)
{
    if (e16) glad_gemm_nhwc_bf16h((uint16_t *)E + at, (size_t)Ce, a, lda, w->q + (size_t)2 * c0, w->ldq, b, n, K, OC, lo, hi);
    else gemm(E + at, (size_t)Ce, a, lda, w, c0, (size_t)Ce, b, NULL, n, K, OC, lo, hi);
}

/* the projection y (n, Co) = D (n pixels from element at, Ce apart) wp^T + bp (+ res) */
static void project(float *y, const float *D, size_t at, int d16, const gw *w, const float *bp, const float *res, int n,
                    int Ce, int Co)
{
    if (d16) glad_gemm_nhwc_bf16a(y, (size_t)Co, (const uint16_t *)D + at, (size_t)Ce, w->q, w->ldq, bp, res, n, Ce, Co,
                                  -INFINITY, INFINITY);
    else gemm(y, (size_t)Co, D + at, (size_t)Ce, w, 0, (size_t)Co, bp, res, n, Ce, Co, -INFINITY, INFINITY);
}

/* glad_dw_pack_eo as the cache's maker: the depthwise weights (or bias) as glad_dw_row16b_avx512 reads them */
static void pack_eo(void *d, const float *w, int taps, int C) { glad_dw_pack_eo(d, w, taps, C); }

/* bf16 pairs of w (OC, K) (glad_bf16_pack_b of w^T): the cache's, or packed into *own (freed by the caller) */
static const uint16_t *packed(const float *w, int K, int OC, uint16_t **own)
{
    const uint16_t *q = glad_bf16_cached_bt(w, K, OC);
    if (q) return q;
    size_t nb = (glad_bf16_pb_elems(K, OC) * sizeof(uint16_t) + 63) / 64 * 64;
    if ((*own = aligned_alloc(64, nb))) glad_bf16_pack_b(*own, w, (size_t)K, 1, K, OC);
    return *own;
}
#endif

size_t glad_invres_nhwc_workspace(int H, int W, int Ce, int kh, int sh, int dh, int Ho, int Wo)
{
    int nb, er, T = nthreads();
    /* either precision's band buffers (the caller may ask in the other one) */
    size_t per = band_of(W, Ce, kh, sh, dh, Wo, 0, &nb, &er), p16 = Ce % 2 ? 0 : band_of(W, Ce, kh, sh, dh, Wo, 1, &nb, &er);
    size_t bands = (per > p16 ? per : p16) * (size_t)T;
    size_t whole = (size_t)H * W * Ce + (size_t)Ho * Wo * Ce;
    return by_channels(Ho, kh, sh, dh, T) && whole > bands ? whole : bands;
}

/* glad_invres_nhwc_forward's checks and packing, or with st (x, we NULL, C = Ce) the stem computed in place of the
 * expansion: everything before its parallel region, kept in p for glad_invres_nhwc_run */
static int prepare(glad_invres_plan *p, float *y, const float *x, const float *we, const float *wet, const float *be,
                   float elo, float ehi, const glad_invres_stem *st, const float *wd, const float *bd, int kh, int kw, int sh,
                   int sw, int dh, int dw, int pt, int pl, float dlo, float dhi, const float *wp, const float *wpt,
                   const float *bp, const float *res, int H, int W, int C, int Ce, int Ho, int Wo, int Co, float *ws)
{
    memset(p, 0, sizeof *p);
#if defined(__x86_64__) && defined(__GNUC__)
    int bf = glad_precision_get() == GLAD_PREC_BF16, sK = st ? st->C * st->kh * st->kw : 0;
    if (!glad_nn_avx512() || (!we && Ce != C) || !wp) return GLAD_EUNSUPPORTED;
    if (bf ? C > GLAD_GEMM_BF16_KMAX || Ce > GLAD_GEMM_BF16_KMAX : (we && !wet) || !wpt) return GLAD_EUNSUPPORTED;
    /* 12288: glad_conv_rows_bf16h's and glad_conv_rows_f32's limit */
    if (st && (we || sK > 12288 || (bf ? Ce % 2 : !st->wt))) return GLAD_EUNSUPPORTED;
    /* bf16: both GEMMs' weights as bf16 pairs, from the cache in use (made here, outside the parallel region) */
    const uint16_t *eq = NULL, *pq = NULL;
    if (bf) {
        eq = we ? packed(we, C, Ce, &p->eown) : st ? packed(st->w, sK, Ce, &p->eown) : NULL;
        pq = packed(wp, Ce, Co, &p->pown);
        if (((we || st) && !eq) || !pq) {
            glad_invres_nhwc_done(p);
            return GLAD_ENOMEM;
        }
    }
    /* bf16 with Ce even (MobileNetV2's): the depthwise rows stored in bf16 (half of D's room used), and with an
     * expansion its rows too (e16; half of E's room), read by glad_dw_row16b_avx512 with wd and bd packed for it */
    int d16 = bf && Ce % 2 == 0, e16 = d16 && (we || st);
    const float *wdu = wd, *bdu = bd;
    if (e16) {
        size_t Cp = (size_t)(Ce + 31) / 32 * 32, nw = sizeof(float) * Cp * (size_t)kh * kw;
        wdu = glad_bf16_cached_make(wd, kh * kw, Ce, nw, pack_eo);
        bdu = bd ? glad_bf16_cached_make(bd, 1, Ce, sizeof(float) * Cp, pack_eo) : NULL;
        if (!wdu || (bd && !bdu)) {   /* packed here: no cache in use */
            if (!(p->wdq = malloc(nw + sizeof(float) * Cp))) {
                glad_invres_nhwc_done(p);
                return GLAD_ENOMEM;
            }
            glad_dw_pack_eo(p->wdq, wd, kh * kw, Ce);
            wdu = p->wdq;
            if (bd) glad_dw_pack_eo(p->wdq + Cp * (size_t)kh * kw, bd, 1, Ce);
            bdu = bd ? p->wdq + Cp * (size_t)kh * kw : NULL;
        }
    }
    p->y = y, p->x = x, p->res = res, p->ws = ws;
    p->be = be, p->wd = wdu, p->bd = bdu, p->bp = bp;
    p->et = bf ? NULL : wet, p->ptw = bf ? NULL : wpt, p->eq = eq, p->pq = pq;
    p->eldq = (size_t)2 * ((Ce + 31) / 32 * 32), p->pldq = (size_t)2 * ((Co + 31) / 32 * 32);
    p->has_exp = we != NULL;
    if (st) p->st = *st, p->has_st = 1;
    p->elo = elo, p->ehi = ehi, p->dlo = dlo, p->dhi = dhi;
    p->kh = kh, p->kw = kw, p->sh = sh, p->sw = sw, p->dh = dh, p->dw = dw, p->pt = pt, p->pl = pl;
    p->H = H, p->W = W, p->C = C, p->Ce = Ce, p->Ho = Ho, p->Wo = Wo, p->Co = Co;
    p->d16 = d16, p->e16 = e16;
    p->per = band_of(W, Ce, kh, sh, dh, Wo, d16, &p->nb, &p->er);
    int T = nthreads();
    p->par = T > 1 && (long)Ho * Wo * Ce * (C + Co) > 200000;
    p->chan = p->par && !st && by_channels(Ho, kh, sh, dh, T);
    return 0;
#else
    (void)p, (void)y, (void)x, (void)we, (void)wet, (void)be, (void)elo, (void)ehi, (void)st, (void)wd, (void)bd, (void)kh;
    (void)kw, (void)sh, (void)sw, (void)dh, (void)dw, (void)pt, (void)pl, (void)dlo, (void)dhi, (void)wp, (void)wpt, (void)bp;
    (void)res, (void)H, (void)W, (void)C, (void)Ce, (void)Ho, (void)Wo, (void)Co, (void)ws;
    return GLAD_EUNSUPPORTED;
#endif
}

void glad_invres_nhwc_done(glad_invres_plan *p)
{
    free(p->eown);
    free(p->pown);
    free(p->wdq);
    p->eown = p->pown = NULL;
    p->wdq = NULL;
}

/* thread t of nt: its part of the block (all nt threads of a team call it: the by-channels path holds a barrier) */
void glad_invres_nhwc_run(const glad_invres_plan *p, int t, int nt)
{
#if defined(__x86_64__) && defined(__GNUC__)
    const gw gE = {p->et, p->eq, p->eldq}, gP = {p->ptw, p->pq, p->pldq};
    const glad_invres_stem *st = p->has_st ? &p->st : NULL;
    const float *x = p->x, *be = p->be, *wdu = p->wd, *bdu = p->bd, *bp = p->bp, *res = p->res;
    float *y = p->y, *ws = p->ws, elo = p->elo, ehi = p->ehi, dlo = p->dlo, dhi = p->dhi;
    int kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw, dh = p->dh, dw = p->dw, pt = p->pt, pl = p->pl;
    int H = p->H, W = p->W, C = p->C, Ce = p->Ce, Ho = p->Ho, Wo = p->Wo, Co = p->Co, d16 = p->d16, e16 = p->e16;
    int nb = p->nb, er = p->er;
    size_t per = p->per, row = (size_t)W * Ce;
    if (p->chan) {
        float *E = ws, *D = ws + (size_t)H * W * Ce;
        // each thread expands and convolves its own slice of the Ce channels (whole images), then projects its own rows
        /* channel slices in whole vectors of 16 (of 32 bf16 for glad_dw_row16b_avx512) */
        int v = e16 ? 32 : 16, c0 = (int)((long)(Ce + v - 1) / v * t / nt) * v;
        int c1 = (int)((long)(Ce + v - 1) / v * (t + 1) / nt) * v;
        c1 = c1 > Ce ? Ce : c1;
        if (c1 > c0) {
            const float *Ep = x + c0;
            const uint16_t *E16 = e16 ? (const uint16_t *)E + c0 : NULL;
            if (p->has_exp) {
                expand(E, (size_t)c0, e16, x, (size_t)C, &gE, c0, Ce, be ? be + c0 : NULL, H * W, C, c1 - c0, elo, ehi);
                Ep = E + c0;
            }
            for (int i = 0; i < Ho; i++)
                dw_row(D, (size_t)i * Wo * Ce + c0, d16, Ep, E16, wdu + c0, bdu ? bdu + c0 : NULL, H, W, Ce, c1 - c0, kh, kw,
                       sh, sw, dh, dw, pt, pl, Wo, dlo, dhi, i);
        }
        /* the projection reads every channel of D */
        #pragma omp barrier
        int p0 = (int)((long)Ho * Wo * t / nt), p1 = (int)((long)Ho * Wo * (t + 1) / nt);
        project(y + (size_t)p0 * Co, D, (size_t)p0 * Ce, d16, &gP, bp, res ? res + (size_t)p0 * Co : NULL, p1 - p0, Ce, Co);
        return;
    }
    /* a block too small to share runs on the first thread alone */
    if (!p->par) {
        if (t) return;
        nt = 1;
    }
    // each thread computes its own output rows (and the expanded rows they read) into its own part of ws
    int i0 = (int)((long)Ho * t / nt), i1 = (int)((long)Ho * (t + 1) / nt);
    /* E's rows in bf16 when e16 (unused without expansion), D's when d16: row, Ce even */
    float *E = ws + per * (size_t)t, *D = E + (size_t)er * row / (d16 ? 2 : 1);
    int eb0 = 0, eb1 = 0;   /* expanded rows [eb0, eb1) held at E */
    for (int b0 = i0; b0 < i1; b0 += nb) {
        int b1 = b0 + nb < i1 ? b0 + nb : i1;
        int n0 = b0 * sh - pt, n1 = (b1 - 1) * sh - pt + (kh - 1) * dh + 1;
        n0 = n0 < 0 ? 0 : n0;
        n1 = n1 > H ? H : n1;
        const float *Ep = st ? NULL : x + (size_t)n0 * row;
        if (p->has_exp || st) {
            int s = n0;
            size_t rb = (e16 ? sizeof(uint16_t) : sizeof(float)) * row;   /* bytes of an expanded row */
            if (n0 >= eb0 && n0 < eb1) {   /* the previous band's last rows: moved, not recomputed */
                memmove(E, (char *)E + (size_t)(n0 - eb0) * rb, (size_t)(eb1 - n0) * rb);
                s = eb1;
            }
            if (n1 > s && st && gE.q)   /* the stem's output rows [s, n1) */
                glad_conv_rows_bf16h((uint16_t *)E + (size_t)(s - n0) * row, (size_t)Ce, st->x, st->H, st->W, st->C, st->kh,
                                     st->kw, st->sh, st->sw, st->dh, st->dw, st->pt, st->pl, W, s * W, (n1 - s) * W, gE.q,
                                     gE.ldq, st->b, Ce, st->lo, st->hi);
            else if (n1 > s && st)
                glad_conv_rows_f32(E + (size_t)(s - n0) * row, (size_t)Ce, st->x, st->H, st->W, st->C, st->kh, st->kw, st->sh,
                                   st->sw, st->dh, st->dw, st->pt, st->pl, W, s * W, (n1 - s) * W, st->wt, st->b, Ce, st->lo,
                                   st->hi);
            else if (n1 > s)
                expand(E, (size_t)(s - n0) * row, e16, x + (size_t)s * W * C, (size_t)C, &gE, 0, Ce, be, (n1 - s) * W, C, Ce,
                       elo, ehi);
            eb0 = n0;
            eb1 = n1 > s ? n1 : s;
            Ep = E;
        }
        for (int i = b0; i < b1; i++)
            dw_row(D, (size_t)(i - b0) * Wo * Ce, d16, Ep, e16 ? (const uint16_t *)E : NULL, wdu, bdu, n1 - n0, W, Ce, Ce, kh,
                   kw, sh, sw, dh, dw, pt + n0, pl, Wo, dlo, dhi, i);
        project(y + (size_t)b0 * Wo * Co, D, 0, d16, &gP, bp, res ? res + (size_t)b0 * Wo * Co : NULL, (b1 - b0) * Wo, Ce, Co);
    }
#else
    (void)p, (void)t, (void)nt;
#endif
}

int glad_invres_nhwc_prepare(glad_invres_plan *p, float *y, const float *x, const float *we, const float *wet,
                             const float *be, float elo, float ehi, const float *wd, const float *bd, int kh, int kw, int sh,
                             int sw, int dh, int dw, int pt, int pl, float dlo, float dhi, const float *wp, const float *wpt,
                             const float *bp, const float *res, int H, int W, int C, int Ce, int Ho, int Wo, int Co, float *ws)
{
    return prepare(p, y, x, we, wet, be, elo, ehi, NULL, wd, bd, kh, kw, sh, sw, dh, dw, pt, pl, dlo, dhi, wp, wpt, bp, res, H,
                   W, C, Ce, Ho, Wo, Co, ws);
}

int glad_invres_nhwc_prepare_stem(glad_invres_plan *p, float *y, const glad_invres_stem *st, const float *wd, const float *bd,
                                  int kh, int kw, int sh, int sw, int dh, int dw, int pt, int pl, float dlo, float dhi,
                                  const float *wp, const float *wpt, const float *bp, const float *res, int H, int W, int Ce,
                                  int Ho, int Wo, int Co, float *ws)
{
    return prepare(p, y, NULL, NULL, NULL, NULL, 0.0f, 0.0f, st, wd, bd, kh, kw, sh, sw, dh, dw, pt, pl, dlo, dhi, wp, wpt, bp,
                   res, H, W, Ce, Ce, Ho, Wo, Co, ws);
}

/* a prepared block in a parallel region of its own */
static int run_alone(glad_invres_plan *p)
{
    // each thread runs its own part (its rows, or its channels then its pixels); a small block one thread alone
    #pragma omp parallel num_threads(nthreads()) if (p->par)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        glad_invres_nhwc_run(p, t, nt);
    }
    glad_invres_nhwc_done(p);
    return 0;
}

int glad_invres_nhwc_forward(float *y, const float *x, const float *we, const float *wet, const float *be, float elo,
                             float ehi, const float *wd, const float *bd, int kh, int kw, int sh, int sw, int dh, int dw,
                             int pt, int pl, float dlo, float dhi, const float *wp, const float *wpt, const float *bp,
                             const float *res, int H, int W, int C, int Ce, int Ho, int Wo, int Co, float *ws)
{
    glad_invres_plan p;
    GLAD_TRY(glad_invres_nhwc_prepare(&p, y, x, we, wet, be, elo, ehi, wd, bd, kh, kw, sh, sw, dh, dw, pt, pl, dlo, dhi, wp, wpt,
                                      bp, res, H, W, C, Ce, Ho, Wo, Co, ws));
    return run_alone(&p);
}

int glad_invres_nhwc_forward_stem(float *y, const glad_invres_stem *st, const float *wd, const float *bd, int kh, int kw,
                                  int sh, int sw, int dh, int dw, int pt, int pl, float dlo, float dhi, const float *wp,
                                  const float *wpt, const float *bp, const float *res, int H, int W, int Ce, int Ho, int Wo,
                                  int Co, float *ws)
{
    glad_invres_plan p;
    GLAD_TRY(glad_invres_nhwc_prepare_stem(&p, y, st, wd, bd, kh, kw, sh, sw, dh, dw, pt, pl, dlo, dhi, wp, wpt, bp, res, H, W,
                                           Ce, Ho, Wo, Co, ws));
    return run_alone(&p);
}
