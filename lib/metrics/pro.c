/* pro.c - connected components, the packed pixel store, its in-place radix
 * sort, and the one sweep that yields P-AUROC/P-AP/P-F1max, aupro and
 * pro_compat (definitions and memory accounting in pro.h). */
#include "metrics/pro.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#define NEG_BIT 0x80000000u

/* PRO numerator S = sum over regions of TP_r/area_r, accumulated as a sum of
 * per-pixel terms 1/area_r in 2^-62 fixed point in 128 bits: integer sums
 * are exact and independent of the order of the pixels inside a tie group,
 * so merged shards (other image order, other region ids) give bit-identical
 * numbers. Per-term rounding <= 2^-62, i.e. < 1e-10 relative at 1e8 pixels. */
__extension__ typedef unsigned __int128 glad_u128;
static inline uint64_t inv_area_fixed(uint32_t area) { return (uint64_t)(0x1p62 / area); }
static inline double fixed_to_double(glad_u128 v) { return (double)v * 0x1p-62; }

/* ---------------- 8-connected labelling ---------------- */

static uint32_t uf_find(uint32_t *par, uint32_t x)
{
    while (par[x] != x) { par[x] = par[par[x]]; x = par[x]; }   /* path halving */
    return x;
}

static uint32_t uf_union(uint32_t *par, uint32_t a, uint32_t b)
{
    a = uf_find(par, a);
    b = uf_find(par, b);
    if (a < b) { par[b] = a; return a; }
    par[a] = b;
    return b;
}

int glad_label_regions(const uint8_t *mask, int h, int w, uint32_t *lab, uint32_t *nreg)
{
    size_t n;
    if (h <= 0 || w <= 0) return GLAD_ESHAPE;
    GLAD_TRY(glad_mul_size((size_t)h, (size_t)w, &n));
    size_t nfg = 0;
    for (size_t i = 0; i < n; i++) nfg += mask[i] != 0;
    *nreg = 0;
    if (!nfg) { memset(lab, 0, n * sizeof *lab); return 0; }
    if (nfg >= 0xffffffffu) return GLAD_ERANGE;
    uint32_t *par = malloc((nfg + 1) * sizeof *par);
    if (!par) return GLAD_ENOMEM;
    uint32_t next = 1;
    par[0] = 0;
    /* pass 1: provisional labels; the already-visited 8-neighbours are
     * W, NW, N, NE; merge their sets */
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            if (!mask[i]) { lab[i] = 0; continue; }
            uint32_t l = 0;
            uint32_t nb[4] = {
                x > 0 ? lab[i - 1] : 0,
                (y > 0 && x > 0) ? lab[i - w - 1] : 0,
                y > 0 ? lab[i - w] : 0,
                (y > 0 && x + 1 < w) ? lab[i - w + 1] : 0 };
            for (int k = 0; k < 4; k++) {
                if (!nb[k]) continue;
                l = l ? uf_union(par, l, nb[k]) : uf_find(par, nb[k]);
            }
            if (!l) { l = next; par[next] = next; next++; }
            lab[i] = l;
        }
    }
    /* pass 2: final labels 1..R in raster order of first appearance (skimage order) */
    uint32_t *fin = calloc(next, sizeof *fin);
    if (!fin) { free(par); return GLAD_ENOMEM; }
    uint32_t r = 0;
    for (size_t i = 0; i < n; i++) {
        if (!lab[i]) continue;
        uint32_t root = uf_find(par, lab[i]);
        if (!fin[root]) fin[root] = ++r;
        lab[i] = fin[root];
    }
    free(fin);
    free(par);
    *nreg = r;
    return 0;
}

/* ---------------- pixel store ---------------- */

/* f32 -> u32 whose unsigned order is the float order; inverted so that an
 * ascending sort gives descending scores. -0 is folded into +0 (equal floats
 * must share one threshold). */
static inline uint32_t score_key(float f)
{
    uint32_t u;
    if (f == 0.0f) f = 0.0f;
    memcpy(&u, &f, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ~u;
}

static inline float key_score(uint32_t k)
{
    uint32_t u = ~k;
    u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void glad_pixset_init(glad_pixset *ps) { memset(ps, 0, sizeof *ps); }

void glad_pixset_free(glad_pixset *ps)
{
    free(ps->px);
    free(ps->area);
    free(ps->img_reg0);
    free(ps->img_npix);
    free(ps->img_npos);
    memset(ps, 0, sizeof *ps);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c += c / 2;
    size_t bytes;
    GLAD_TRY(glad_mul_size(c, elem, &bytes));
    void *q = realloc(*p, bytes);
    if (!q) return GLAD_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

int glad_pixset_add(glad_pixset *ps, const float *map, const uint8_t *mask, int h, int w, uint32_t *img)
{
    size_t n;
    if (h <= 0 || w <= 0) return GLAD_ESHAPE;
    GLAD_TRY(glad_mul_size((size_t)h, (size_t)w, &n));
    for (size_t i = 0; i < n; i++)
        if (!isfinite(map[i])) return GLAD_ENAN;
    if (ps->nimg >= 0x7fffffffu) return GLAD_ERANGE;
    uint32_t *lab = malloc(n * sizeof *lab);
    if (!lab) return GLAD_ENOMEM;
    uint32_t k;
    int rc = glad_label_regions(mask, h, w, lab, &k);
    if (rc < 0) goto out;
    rc = GLAD_ERANGE;
    if ((uint64_t)ps->nreg + k >= 0x7fffffffu) goto out;
    size_t cap, need = ps->n + n;
    if (need < ps->n) goto out;
    cap = ps->cap;
    if ((rc = grow((void **)&ps->px, &cap, need, sizeof *ps->px)) < 0) goto out;
#if 0 && defined(__linux__) && defined(MADV_HUGEPAGE)
    if (cap != ps->cap && cap * sizeof *ps->px >= ((size_t)8 << 20)) {
        /* fewer page faults while the store fills (a hint; failure is harmless) */
        uintptr_t a = ((uintptr_t)ps->px + 4095) & ~(uintptr_t)4095, e = ((uintptr_t)(ps->px + cap)) & ~(uintptr_t)4095;
        if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);
    }
#endif
    ps->cap = cap;
    cap = ps->regcap;
    if ((rc = grow((void **)&ps->area, &cap, (size_t)ps->nreg + k + 1, sizeof *ps->area)) < 0) goto out;
    ps->regcap = (uint32_t)cap;
    size_t ic = ps->imgcap, ic2 = ic, ic3 = ic;
    if ((rc = grow((void **)&ps->img_reg0, &ic, ps->nimg + 1, sizeof *ps->img_reg0)) < 0) goto out;
    if ((rc = grow((void **)&ps->img_npix, &ic2, ps->nimg + 1, sizeof *ps->img_npix)) < 0) goto out;
    if ((rc = grow((void **)&ps->img_npos, &ic3, ps->nimg + 1, sizeof *ps->img_npos)) < 0) goto out;
    ps->imgcap = (uint32_t)ic;
    uint32_t r0 = ps->nreg + 1, id = ps->nimg;   /* regions of this image: r0 .. r0+k-1 */
    for (uint32_t r = 0; r < k; r++) ps->area[r0 + r] = 0;
    uint64_t npos = 0;
    uint64_t *dst = ps->px + ps->n;
    for (size_t i = 0; i < n; i++) {
        uint32_t payload;
        if (lab[i]) { payload = r0 + lab[i] - 1; ps->area[payload]++; npos++; }
        else payload = NEG_BIT | id;
        dst[i] = (uint64_t)score_key(map[i]) << 32 | payload;
    }
    ps->img_reg0[id] = r0;
    ps->img_npix[id] = n;
    ps->img_npos[id] = npos;
    ps->nimg++;
    ps->nreg += k;
    ps->n += n;
    ps->sorted = 0;
    *img = id;
    rc = 0;
out:
    free(lab);
    return rc;
}

/* ---------------- in-place MSD radix sort on the key (high 32 bits) ---------------- */

static void insertion_sort(uint64_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

/* LSD radix sort of the key bits 0..hb (the only bits that differ in the
 * range) with a scratch buffer of n elements: sequential passes, much faster
 * than in-place permutation. tmp holds n elements. */
static int lsd_sort(uint64_t *a, size_t n, int hb, uint64_t *tmp)
{
    int npass = hb / 8 + 1;
    size_t cnt[4][256];
    memset(cnt, 0, sizeof cnt);
    for (size_t i = 0; i < n; i++) {
        uint32_t k = (uint32_t)(a[i] >> 32);
        for (int p = 0; p < npass; p++) cnt[p][(k >> (8 * p)) & 255]++;
    }
    uint64_t *src = a, *dst = tmp;
    for (int p = 0; p < npass; p++) {
        int sh = 32 + 8 * p;
        if (cnt[p][(a[0] >> sh) & 255] == n) continue;   /* this byte is constant */
        size_t pos[256], s = 0;
        for (int b = 0; b < 256; b++) { pos[b] = s; s += cnt[p][b]; }
        for (size_t i = 0; i < n; i++) dst[pos[(src[i] >> sh) & 255]++] = src[i];
        uint64_t *t = src; src = dst; dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
    return 0;
}

/* American flag sort: count the digit, then cycle every element into its
 * bucket by swaps (no scratch memory), then recurse per bucket on the next
 * digit. The 8-bit digit window starts at the highest key bit that differs
 * within the range (scores of one map set share sign and most exponent
 * bits, so a fixed top byte would cost a pass that splits nothing). Buckets
 * of at most `lsd` elements go to lsd_sort, whose scratch is then bounded by
 * lsd elements per running task. Payload order inside an equal key is
 * irrelevant (one threshold). */
static void afsort(uint64_t *a, size_t n, size_t lsd, uint64_t *scratch)
{
    if (n <= 48) { insertion_sort(a, n); return; }
    uint64_t diff = 0, k0 = a[0] >> 32;
    for (size_t i = 1; i < n; i++) diff |= (a[i] >> 32) ^ k0;
    if (!diff) return;                         /* all keys equal: one threshold */
    int hb = 63 - __builtin_clzll(diff);       /* highest differing key bit, 0..31 */
    /* the running thread's slice of the scratch: lsd_sort has no task
     * scheduling point, so no other task can use the slice meanwhile */
    if (n <= lsd && scratch) { lsd_sort(a, n, hb, scratch + (size_t)omp_get_thread_num() * lsd); return; }
    int shift = 32 + (hb >= 7 ? hb - 7 : 0);   /* digit = key bits [shift-32, shift-32+8) */
    size_t cnt[256] = {0}, head[256], tail[256];
    for (size_t i = 0; i < n; i++) cnt[(a[i] >> shift) & 255]++;
    size_t s = 0;
    for (int b = 0; b < 256; b++) { head[b] = s; s += cnt[b]; tail[b] = s; }
    for (int b = 0; b < 256; b++) {
        while (head[b] < tail[b]) {
            uint64_t v = a[head[b]];
            int d = (int)((v >> shift) & 255);
            while (d != b) {
                uint64_t t = a[head[d]];
                a[head[d]++] = v;
                v = t;
                d = (int)((v >> shift) & 255);
            }
            a[head[b]++] = v;
        }
    }
    if (shift == 32) return;   /* the lowest key byte was the digit: buckets hold equal keys */
    s = 0;
    for (int b = 0; b < 256; b++) {
        if (cnt[b] > 1) {
            uint64_t *sub = a + s;
            size_t m = cnt[b];
            /* big buckets become OpenMP tasks: score distributions put most
             * pixels in a few buckets */
            if (m > (1u << 16)) {
                #pragma omp task firstprivate(sub, m, lsd, scratch)
                afsort(sub, m, lsd, scratch);
            } else afsort(sub, m, lsd, scratch);
        }
        s += cnt[b];
    }
}

static void trim(glad_pixset *ps)
{
    if (ps->n && ps->n < ps->cap) {   /* drop the growth slack */
        uint64_t *q = realloc(ps->px, ps->n * sizeof *q);
        if (q) { ps->px = q; ps->cap = ps->n; }
    }
    ps->sorted = 1;
}

int glad_pixset_sort(glad_pixset *ps)
{
    return glad_pixset_sort_many(&ps, 1);
}

int glad_pixset_sort_many(glad_pixset **ps, int n)
{
    /* LSD scratch: one slice of lsd elements per thread, lsd = (largest set)
     * / (2 T), so T slices cost 4 B per pixel of that set at most. Without
     * it (allocation failed) everything is sorted in place. */
    size_t maxn = 0;
    for (int i = 0; i < n; i++) if (!ps[i]->sorted && ps[i]->n > maxn) maxn = ps[i]->n;
    size_t T = (size_t)omp_get_max_threads();
    size_t lsd = maxn / (2 * T);
    if (lsd < (1u << 16)) lsd = 1u << 16;
    uint64_t *scratch = maxn > 48 ? malloc(T * lsd * sizeof *scratch) : NULL;
    /* one task per set, and the recursion spawns one per large bucket; the
     * result is the same for any thread count (keys are totally ordered and
     * each bucket is sorted by one task) */
    #pragma omp parallel
    #pragma omp single
    for (int i = 0; i < n; i++) {
        if (ps[i]->sorted) continue;
        glad_pixset *p = ps[i];
        #pragma omp task firstprivate(p)
        afsort(p->px, p->n, lsd, scratch);
    }
    free(scratch);
    for (int i = 0; i < n; i++) if (!ps[i]->sorted) trim(ps[i]);
    return 0;
}

/* ---------------- the sweep ---------------- */

static uint32_t region_image(const glad_pixset *ps, uint32_t r)
{
    /* largest i with img_reg0[i] <= r (images without regions share reg0 with the next) */
    uint32_t lo = 0, hi = ps->nimg;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ps->img_reg0[mid] <= r) lo = mid; else hi = mid;
    }
    return lo;
}

static inline int member(const glad_pixset *ps, const uint8_t *in_group, uint64_t v)
{
    uint32_t p = (uint32_t)v;
    return in_group[(p & NEG_BIT) ? (p & ~NEG_BIT) : region_image(ps, p)] != 0;
}

int glad_pixset_eval(const glad_pixset *ps, const uint8_t *in_group, const glad_pro_opts *opt,
                     glad_pix_metrics *out, glad_curve *roc, glad_curve *pr, glad_curve *pro)
{
    if (!ps->sorted) return GLAD_EINVAL;
    const double lim = opt->fpr_limit;
    uint64_t npos = 0, nneg = 0;
    uint32_t nreg = 0, nimg = 0;
    for (uint32_t i = 0; i < ps->nimg; i++) {
        if (in_group && !in_group[i]) continue;
        uint32_t r1 = i + 1 < ps->nimg ? ps->img_reg0[i + 1] : ps->nreg + 1;
        npos += ps->img_npos[i];
        nneg += ps->img_npix[i] - ps->img_npos[i];
        nreg += r1 - ps->img_reg0[i];
        nimg++;
    }
    memset(out, 0, sizeof *out);
    out->npix = npos + nneg;
    out->npos = npos;
    out->nreg = nreg;
    out->nimg = nimg;
    out->aupro = out->pro_compat = NAN;

    /* pro_compat thresholds, exactly as numpy 1.x (the official code's era)
     * builds np.arange(mn, mx, (mx-mn)/K) from float32 map extremes: mx-mn is
     * a float32 subtraction, "/ K" promotes to float64, the length is
     * ceil(float32(mx-mn) / delta), the values start + i*(th[1]-th[0]) in
     * float64, and "amap > th" (float32 array, float64 scalar) compares in
     * float32 under numpy 1.x value-based casting: th is rounded to float32. */
    double *th = NULL;
    double *cfpr = NULL, *cpro = NULL;
    long nth = 0, j = -1;
    size_t first = 0, last = ps->n;
    if (in_group) {
        while (first < ps->n && !member(ps, in_group, ps->px[first])) first++;
        while (last > first && !member(ps, in_group, ps->px[last - 1])) last--;
    }
    if (last > first && nreg && nneg && opt->compat_thresholds > 0) {
        float mx = key_score((uint32_t)(ps->px[first] >> 32)), mn = key_score((uint32_t)(ps->px[last - 1] >> 32));
        volatile float range = mx - mn;          /* volatile: keep the float32 rounding */
        double delta = (double)range / opt->compat_thresholds;
        if (delta > 0) {
            nth = (long)ceil((double)range / delta);
            if (nth > 0 && nth < 1000000) {
                th = malloc(nth * sizeof *th);
                cfpr = malloc(nth * sizeof *cfpr);
                cpro = malloc(nth * sizeof *cpro);
                if (!th || !cfpr || !cpro) { free(th); free(cfpr); free(cpro); return GLAD_ENOMEM; }
                th[0] = mn;
                if (nth > 1) {
                    double d = ((double)mn + delta) - (double)mn;
                    th[1] = (double)mn + delta;
                    for (long i = 2; i < nth; i++) th[i] = (double)mn + (double)i * d;
                }
                for (long i = 0; i < nth; i++) th[i] = (float)th[i];
                j = nth - 1;
            } else nth = 0;
        }
    }

    glad_roc_acc acc;
    glad_roc_acc_init(&acc, npos, nneg, roc, pr);
    glad_u128 S = 0;              /* sum over regions of TP_r/area_r = sum over TP pixels of 1/area_r (fixed point) */
    double px_prev = 0.0, py_prev = 0.0, area = 0.0;
    int pro_done = !(nreg && nneg);
    int err = 0;
    if (pro && nreg && nneg) err |= glad_curve_push(pro, 0.0, 0.0);
    for (size_t i = first; i < last;) {
        uint32_t k = (uint32_t)(ps->px[i] >> 32);
        if (j >= 0) {
            float s = key_score(k);
            /* every pixel above th[j] is consumed: the binary map "score > th[j]" is complete */
            while (j >= 0 && !(s > (float)th[j])) {
                cfpr[j] = (double)acc.fp / (double)nneg;
                cpro[j] = fixed_to_double(S) / nreg;
                j--;
            }
        }
        uint64_t dtp = 0, dfp = 0;
        glad_u128 dS = 0;
        if (!in_group) {
            for (; i < last && (uint32_t)(ps->px[i] >> 32) == k; i++) {
                uint32_t p = (uint32_t)ps->px[i];
                if (p & NEG_BIT) dfp++;
                else { dtp++; dS += inv_area_fixed(ps->area[p]); }
            }
        } else {
            for (; i < last && (uint32_t)(ps->px[i] >> 32) == k; i++) {
                uint64_t v = ps->px[i];
                if (!member(ps, in_group, v)) continue;
                uint32_t p = (uint32_t)v;
                if (p & NEG_BIT) dfp++;
                else { dtp++; dS += inv_area_fixed(ps->area[p]); }
            }
        }
        if (!dtp && !dfp) continue;
        glad_roc_acc_step(&acc, dtp, dfp);
        S += dS;
        if (nreg && nneg) {
            double x = (double)acc.fp / (double)nneg, y = fixed_to_double(S) / nreg;
            if (!pro_done) {
                if (x >= lim) {
                    /* linear interpolation of the segment at FPR = lim */
                    double yl = x > px_prev ? py_prev + (y - py_prev) * (lim - px_prev) / (x - px_prev) : y;
                    area += (lim - px_prev) * (py_prev + yl) * 0.5;
                    pro_done = 1;
                } else area += (x - px_prev) * (py_prev + y) * 0.5;
            }
            px_prev = x; py_prev = y;
            if (pro) err |= glad_curve_push(pro, x, y);
        }
    }
    while (j >= 0) {   /* thresholds below every score: all pixels consumed */
        cfpr[j] = (double)acc.fp / (double)nneg;
        cpro[j] = fixed_to_double(S) / nreg;
        j--;
    }
    glad_roc_result rr;
    err |= glad_roc_acc_finish(&acc, &rr);
    if (pro) err |= glad_curve_finish(pro);
    out->auroc = rr.auroc;
    out->ap = rr.ap;
    out->f1max = rr.f1max;
    if (nreg && nneg && pro_done) out->aupro = area / lim;

    if (nth > 0) {
        /* df[df.fpr < lim]; fpr /= fpr.max(); sklearn auc over the kept rows in
         * ascending-threshold order (x non-increasing -> direction -1) */
        double m = -1.0;
        long kept = 0;
        for (long i = 0; i < nth; i++) if (cfpr[i] < lim) { kept++; if (cfpr[i] > m) m = cfpr[i]; }
        if (kept >= 2 && m > 0) {
            double a = 0.0, xp = 0.0, yp = 0.0;
            int have = 0, inc = 0, dec = 0;
            for (long i = 0; i < nth; i++) {
                if (!(cfpr[i] < lim)) continue;
                double x = cfpr[i] / m, y = cpro[i];
                if (have) {
                    if (x > xp) inc = 1;
                    if (x < xp) dec = 1;
                    a += (x - xp) * (y + yp) * 0.5;
                }
                xp = x; yp = y; have = 1;
            }
            if (!(inc && dec)) out->pro_compat = dec ? -a : a;
        }
    }
    free(th); free(cfpr); free(cpro);
    return err ? GLAD_ENOMEM : 0;
}
