/* bank.c - memory bank of normal patch features (bank.h): build, coreset,
 * nearest-neighbour query, safetensors file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "core/rng.h"
#include "core/tensor.h"
#include "imgproc/pool.h"
#include "imgproc/standardize.h"
#include "io/safetensors.h"
#include "score/bank.h"
#include "score/score.h"

const char *const glad_bank_norms[] = {"none", "ratio", "diff", NULL};

/* Copy n layer names (1..GLAD_BANK_MAX_LAYERS, none empty, none twice) into
 * dst, *count of them; kind ("" or "global ") names them in the messages. A
 * refused list copies nothing (the names copied so far freed, *count 0). */
static int copy_names(char **dst, int *count, int n, const char *const *names, const char *kind)
{
    *count = 0;
    if (n < 1 || n > GLAD_BANK_MAX_LAYERS) return glad_fail(GLAD_EINVAL, "%d %slayers (1..%d)", n, kind, GLAD_BANK_MAX_LAYERS);
    for (int i = 0; i < n; i++) {
        int rc = 0;
        if (!names[i] || !*names[i]) rc = glad_fail(GLAD_EINVAL, "empty %slayer name", kind);
        for (int j = 0; !rc && j < i; j++)
            if (!strcmp(names[i], names[j])) rc = glad_fail(GLAD_EINVAL, "%slayer '%s' named twice", kind, names[i]);
        if (!rc && !(dst[i] = strdup(names[i]))) rc = GLAD_ENOMEM;
        if (rc) {
            for (int j = 0; j < *count; j++) { free(dst[j]); dst[j] = NULL; }
            *count = 0;
            return rc;
        }
        *count = i + 1;
    }
    return 0;
}

/* Split the comma list s in place into names: their count, or -1 beyond
 * GLAD_BANK_MAX_LAYERS */
static int split_names(char *s, const char **names)
{
    int n = 0;
    for (char *p = s, *e; ; p = e + 1) {
        e = strchr(p, ',');
        if (e) *e = 0;
        if (n == GLAD_BANK_MAX_LAYERS) return -1;
        names[n++] = p;
        if (!e) return n;
    }
}

int glad_bank_init(glad_bank *b, int nlayers, const char *const *layers)
{
    memset(b, 0, sizeof *b);
    return copy_names(b->layer, &b->nlayers, nlayers, layers, "");
}

void glad_bank_free(glad_bank *b)
{
    for (int i = 0; i < b->nlayers; i++) { free(b->layer[i]); free(b->x[i]); free(b->src[i]); free(b->radius[i]); }
    for (int i = 0; i < b->nglobal; i++) { free(b->glayer[i]); free(b->gx[i]); glad_gauss_free(&b->gauss[i]); }
    memset(b, 0, sizeof *b);
}

/* rc with the detail prefixed by the global layer's name */
static int global_fail(int rc, const glad_bank *b, int i)
{
    char where[300];
    snprintf(where, sizeof where, "global layer '%s'", b->glayer[i]);
    return glad_fail_in(rc, where);
}

int glad_bank_init_global(glad_bank *b, int n, const char *const *layers)
{
    if (b->nglobal) return glad_fail(GLAD_EINVAL, "the global layers are already named");
    return copy_names(b->glayer, &b->nglobal, n, layers, "global ");
}

int glad_bank_add_global(glad_bank *b, int i, const float *f, int C, int h, int w)
{
    if (i < 0 || i >= b->nglobal || C < 1 || C > 1 << 14) return glad_fail(GLAD_EINVAL, "global layer %d, %d channels", i, C);
    if (b->gC[i] && b->gC[i] != C) return glad_fail(GLAD_ESHAPE, "global layer '%s' has %d channels, the first image %d", b->glayer[i], C, b->gC[i]);
    if (b->gn[i] == b->gcap[i]) {
        int64_t cap = b->gcap[i] ? 2 * b->gcap[i] : 256;
        float *x = realloc(b->gx[i], (size_t)cap * C * sizeof(float));
        if (!x) return GLAD_ENOMEM;
        b->gx[i] = x;
        b->gcap[i] = cap;
    }
    b->gC[i] = C;
    GLAD_TRY(glad_gauss_pool(b->gx[i] + (size_t)b->gn[i] * C, f, C, h, w));
    b->gn[i]++;
    return 0;
}

int glad_bank_fit_global(glad_bank *b)
{
    for (int i = 0; i < b->nglobal; i++) {
        int rc = glad_gauss_fit(&b->gauss[i], b->gx[i], b->gn[i], b->gC[i]);
        if (rc) return global_fail(rc, b, i);
        free(b->gx[i]);
        b->gx[i] = NULL;
        b->gn[i] = b->gcap[i] = 0;
    }
    return 0;
}

int glad_bank_score_global(const glad_bank *b, const float *const *f, const int *C, const int *h, const int *w, double *d)
{
    double sum = 0;
    for (int i = 0; i < b->nglobal; i++) {
        if (C[i] != b->gauss[i].C) return glad_fail(GLAD_ESHAPE, "global layer '%s' has %d channels, the bank's Gaussian %d", b->glayer[i], C[i], b->gauss[i].C);
        float *v = malloc((size_t)C[i] * sizeof(float));
        double di = 0;
        if (!v) return GLAD_ENOMEM;
        int rc = glad_gauss_pool(v, f[i], C[i], h[i], w[i]);
        if (!rc) rc = glad_gauss_score(&b->gauss[i], v, C[i], &di);
        free(v);
        if (rc) return global_fail(rc, b, i);
        sum += di;
    }
    *d = b->nglobal ? sum / b->nglobal : 0;
    return 0;
}

int glad_bank_find(const glad_bank *b, const char *layer)
{
    for (int i = 0; i < b->nlayers; i++) if (!strcmp(b->layer[i], layer)) return i;
    return -1;
}

/* a layer name "L[~T][@N]" into its parts (start and length; an absent part
 * is length 0) */
typedef struct { const char *p[3]; size_t n[3]; } layer_parts;

static layer_parts split_layer(const char *s)
{
    layer_parts q;
    size_t b = strcspn(s, "~@");
    q.p[0] = s, q.n[0] = b;
    q.p[1] = s + b, q.n[1] = 0;
    if (s[b] == '~') q.p[1] = s + b + 1, q.n[1] = strcspn(s + b + 1, "@"), b += 1 + q.n[1];
    q.p[2] = s + b, q.n[2] = 0;
    if (s[b] == '@') q.p[2] = s + b + 1, q.n[2] = strlen(s + b + 1);
    return q;
}

int glad_bank_layer_match(const char *want, const char *name)
{
    layer_parts w = split_layer(want), n = split_layer(name);
    // the base always; the tail and the size only when want names them
    for (int k = 0; k < 3; k++) {
        if (k && !w.n[k] && !(k == 1 && want[w.n[0]] == '~')) continue;
        if (w.n[k] != n.n[k] || strncmp(w.p[k], n.p[k], w.n[k])) return 0;
    }
    return 1;
}

size_t glad_bank_layer_tail(const char *name, const char **tail)
{
    layer_parts q = split_layer(name);
    *tail = q.p[1];
    return q.n[1];
}

/* The random stream of layer i's draws (subsample, coreset, radii): its index
 * among the layers of its tail (L~T, glad_bank_layer_tail), so that each
 * tail's layers are drawn as in a bank of that tail alone; in a bank of one
 * tail the index itself. */
static uint64_t tail_stream(const glad_bank *b, int i)
{
    const char *ti, *tj;
    size_t tn = glad_bank_layer_tail(b->layer[i], &ti);
    uint64_t stream = 0;
    for (int j = 0; j < i; j++) stream += glad_bank_layer_tail(b->layer[j], &tj) == tn && !strncmp(ti, tj, tn);
    return stream;
}

/* row p of the (C,h*w) map f, normalised as F.normalize (eps 1e-12), into t */
static void normalized_row(float *t, const float *f, size_t hw, size_t p, int C)
{
    double s = 0;
    for (int c = 0; c < C; c++) { double v = f[(size_t)c * hw + p]; s += v * v; }
    float inv = (float)(1.0 / fmax(sqrt(s), 1e-12));
    for (int c = 0; c < C; c++) t[c] = f[(size_t)c * hw + p] * inv;
}

int glad_bank_add(glad_bank *b, int i, const float *f, int C, int h, int w, size_t max_bytes)
{
    if (i < 0 || i >= b->nlayers || C < 1 || h < 1 || w < 1) return glad_fail(GLAD_EINVAL, "bank layer %d, map [%d,%d,%d]", i, C, h, w);
    if (b->C[i] && b->C[i] != C)
        return glad_fail(GLAD_ESHAPE, "layer '%s' has %d channels, the bank %d", b->layer[i], C, b->C[i]);
    if (b->radius[i] || b->nimg[i] == INT32_MAX) return glad_fail(GLAD_EINVAL, "layer '%s': a vector added after the radii, or too many images", b->layer[i]);
    size_t hw = (size_t)h * w, need, bytes;
    for (size_t k = 0; k < hw * (size_t)C; k++)
        if (!isfinite(f[k])) return glad_fail(GLAD_ENAN, "layer '%s' contains NaN or infinity", b->layer[i]);
    if (glad_mul_size((size_t)b->n[i] + hw, (size_t)C * sizeof(float), &bytes) || bytes > max_bytes)
        return glad_fail(GLAD_ERANGE, "layer '%s': the bank would exceed %zu MB (fewer images, a coreset, or a larger limit)",
                         b->layer[i], max_bytes >> 20);
    need = (size_t)b->n[i] + hw;
    if (need > (size_t)b->cap[i]) {
        size_t cap = b->cap[i] ? (size_t)b->cap[i] : 4096;
        while (cap < need) cap *= 2;
        if (cap * C * sizeof(float) > max_bytes) cap = need;
        float *x = realloc(b->x[i], cap * C * sizeof(float));
        if (x) b->x[i] = x;
        int32_t *src = x ? realloc(b->src[i], cap * sizeof(int32_t)) : NULL;
        if (!src) return glad_fail(GLAD_ENOMEM, "layer '%s': bank of %zu vectors", b->layer[i], cap);
        b->src[i] = src;
        b->cap[i] = (int64_t)cap;
    }
    b->C[i] = C;
    for (size_t p = 0; p < hw; p++) b->src[i][b->n[i] + (int64_t)p] = b->nimg[i];
    b->nimg[i]++;
    float *dst = b->x[i] + (size_t)b->n[i] * C;
    // positions are independent
    #pragma omp parallel for schedule(static) if (hw * C > 65536)
    for (size_t p = 0; p < hw; p++) normalized_row(dst + p * C, f, hw, p, C);
    b->n[i] += (int64_t)hw;
    return 0;
}

/* pick[j] = 1 for keep distinct j of 0..n-1 drawn uniformly (pick zeroed by
 * the caller): Floyd's algorithm, O(keep) draws */
static void draw_subset(unsigned char *pick, int64_t n, int64_t keep, glad_rng *r)
{
    for (int64_t j = n - keep; j < n; j++) {
        int64_t t = (int64_t)glad_rng_below(r, (uint64_t)j + 1);
        pick[pick[t] ? j : t] = 1;
    }
}

int glad_bank_subsample(glad_bank *b, int i, int64_t keep, uint64_t seed)
{
    if (i < 0 || i >= b->nlayers || keep < 1) return glad_fail(GLAD_EINVAL, "subsample of %lld vectors", (long long)keep);
    int64_t n = b->n[i];
    if (keep >= n) return 0;
    unsigned char *pick = calloc((size_t)n, 1);
    if (!pick) return glad_fail(GLAD_ENOMEM, "subsample of layer '%s'", b->layer[i]);
    glad_rng r;
    glad_rng_seed(&r, seed, 0x73756273u /* "subs" */, tail_stream(b, i));
    draw_subset(pick, n, keep, &r);
    int C = b->C[i];
    int64_t k = 0;
    for (int64_t p = 0; p < n; p++)
        if (pick[p]) {
            memmove(b->x[i] + (size_t)k * C, b->x[i] + (size_t)p * C, sizeof(float) * C);
            if (b->src[i]) b->src[i][k] = b->src[i][p];
            if (b->radius[i]) b->radius[i][k] = b->radius[i][p];
            k++;
        }
    free(pick);
    b->n[i] = keep;
    return 0;
}

int glad_bank_coreset(glad_bank *b, int i, int64_t keep, uint64_t seed)
{
    if (i < 0 || i >= b->nlayers || keep < 1) return glad_fail(GLAD_EINVAL, "coreset of %lld vectors", (long long)keep);
    int64_t n = b->n[i];
    if (keep >= n) return 0;
    int C = b->C[i], d = C < 64 ? C : 64;
    float *P = malloc(sizeof(float) * (size_t)C * d), *y = malloc(sizeof(float) * (size_t)n * d);
    float *mind = malloc(sizeof(float) * (size_t)n), *x = malloc(sizeof(float) * (size_t)keep * C);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)keep);
    int rc = GLAD_ENOMEM;
    if (!P || !y || !mind || !x || !idx) goto out;
    glad_rng r;
    glad_rng_seed(&r, seed, 0x62616e6bu /* "bank" */, tail_stream(b, i));
    if (d < C) {
        /* y = x P with P Gaussian / sqrt(d): inner products kept in expectation (Johnson-Lindenstrauss) */
        glad_rng_normal_f32(&r, P, (size_t)C * d);
        for (size_t k = 0; k < (size_t)C * d; k++) P[k] /= sqrtf((float)d);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, d, C, 1.0f, b->x[i], C, P, d, 0.0f, y, d);
    } else memcpy(y, b->x[i], sizeof(float) * (size_t)n * C);
    int64_t cur = (int64_t)glad_rng_below(&r, (uint64_t)n);
    for (int64_t p = 0; p < n; p++) mind[p] = INFINITY;
    for (int64_t k = 0; k < keep; k++) {
        memcpy(x + (size_t)k * C, b->x[i] + (size_t)cur * C, sizeof(float) * C);
        idx[k] = cur;
        const float *c0 = y + (size_t)cur * d;
        float best = -1;
        int64_t arg = 0;
        // positions are independent; each thread keeps its farthest and they are merged in index order
        #pragma omp parallel
        {
            float tb = -1;
            int64_t ta = 0;
            #pragma omp for schedule(static)
            for (int64_t p = 0; p < n; p++) {
                const float *yp = y + (size_t)p * d;
                float s = 0;
                for (int c = 0; c < d; c++) { float e = yp[c] - c0[c]; s += e * e; }
                if (s < mind[p]) mind[p] = s;
                if (mind[p] > tb) { tb = mind[p]; ta = p; }
            }
            #pragma omp critical
            if (tb > best || (tb == best && ta < arg)) { best = tb; arg = ta; }
        }
        cur = arg;
    }
    /* the images and radii of the kept vectors, in their new order (a
     * temporary of the old ones: idx is not increasing) */
    int32_t *s2 = b->src[i] ? malloc(sizeof(int32_t) * (size_t)keep) : NULL;
    float *r2 = b->radius[i] ? malloc(sizeof(float) * (size_t)keep) : NULL;
    if ((b->src[i] && !s2) || (b->radius[i] && !r2)) { free(s2); free(r2); goto out; }
    for (int64_t k = 0; k < keep; k++) {
        if (s2) s2[k] = b->src[i][idx[k]];
        if (r2) r2[k] = b->radius[i][idx[k]];
    }
    if (s2) { free(b->src[i]); b->src[i] = s2; }
    if (r2) { free(b->radius[i]); b->radius[i] = r2; }
    free(b->x[i]);
    b->x[i] = x;
    x = NULL;
    b->n[i] = b->cap[i] = keep;
    rc = 0;
out:
    free(P); free(y); free(mind); free(x); free(idx);
    return rc ? glad_fail(rc, "coreset of layer '%s': out of memory", b->layer[i]) : 0;
}

/* best[p] = max(best[p], max_j <Q_p, B_j>) over the nq rows of Q and nb of B
 * (unit rows of C floats), J[p] (when not NULL) the index of the maximum (the
 * first of equals, in B's order; kept when no j beats best[p]); with qsrc a
 * B_j of the row's own image (bsrc[j] == qsrc[p]) does not count. The
 * similarities go through S (rows x tile floats), one GEMM per block. */
static void nearest_rows(float *best, int64_t *J, const float *Q, size_t nq, const int32_t *qsrc, const float *B, int64_t nb,
                         const int32_t *bsrc, int C, size_t rows, int64_t tile, float *S)
{
    for (size_t p0 = 0; p0 < nq; p0 += rows) {
        size_t nr = nq - p0 < rows ? nq - p0 : rows;
        for (int64_t j0 = 0; j0 < nb; j0 += tile) {
            int m = (int)(nb - j0 < tile ? nb - j0 : tile);
            /* S (nr x m) = Q[p0:p0+nr] (nr x C) . B[j0:j0+m]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, m, C, 1.0f, Q + p0 * C, C, B + (size_t)j0 * C, C, 0.0f, S, m);
            // rows are independent
            #pragma omp parallel for schedule(static) if (nr * (size_t)m > 65536)
            for (size_t p = 0; p < nr; p++) {
                const float *r = S + p * m;
                float bb = best[p0 + p];
                int arg = -1;
                if (qsrc) {
                    const int32_t own = qsrc[p0 + p], *bs = bsrc + j0;
                    for (int j = 0; j < m; j++) if (r[j] > bb && bs[j] != own) { bb = r[j]; arg = j; }
                } else
                    for (int j = 0; j < m; j++) if (r[j] > bb) { bb = r[j]; arg = j; }
                best[p0 + p] = bb;
                if (J && arg >= 0) J[p0 + p] = j0 + arg;
            }
        }
    }
}

/* glad_bank_query with J[p] = the bank index of position p's nearest vector
 * (the first of equals, in bank order) when J is not NULL */
static int query_nn(float *D, int64_t *J, const glad_bank *b, int i, const float *f, int C, int h, int w)
{
    if (i < 0 || i >= b->nlayers || !b->n[i]) return glad_fail(GLAD_EINVAL, "bank layer %d is empty", i);
    if (C != b->C[i]) return glad_fail(GLAD_ESHAPE, "layer '%s' has %d channels, the bank %d", b->layer[i], C, b->C[i]);
    size_t hw = (size_t)h * w;
    int64_t nb = b->n[i];
    /* the similarity matrix in blocks of rows x tile floats, ~16 MB: columns
     * (bank vectors) in tiles of at least 256 for the GEMM's sake, and as many
     * query rows as then fit (a 512x512 map no longer takes 256 columns of all
     * its rows at once, 270 MB) */
    int64_t tile = (int64_t)((4u << 20) / hw);
    if (tile < 256) tile = 256;
    if (tile > nb) tile = nb;
    size_t rows = (size_t)((4u << 20) / tile);
    if (rows < 1) rows = 1;
    if (rows > hw) rows = hw;
    /* (calloc: every row is written below, but gcc cannot see it through nearest_rows) */
    float *q = calloc(hw * C, sizeof(float)), *S = malloc(sizeof(float) * rows * (size_t)tile);
    if (!q || !S) { free(q); free(S); return glad_fail(GLAD_ENOMEM, "bank query of [%d,%d,%d]", C, h, w); }
    for (size_t p = 0; p < hw; p++) { normalized_row(q + p * C, f, hw, p, C); D[p] = -INFINITY; if (J) J[p] = 0; }
    nearest_rows(D, J, q, hw, NULL, b->x[i], nb, NULL, C, rows, tile, S);
    for (size_t p = 0; p < hw; p++) D[p] = 1.0f - D[p];
    free(q); free(S);
    return 0;
}

int glad_bank_query(float *D, const glad_bank *b, int i, const float *f, int C, int h, int w)
{
    return query_nn(D, NULL, b, i, f, C, h, w);
}

int glad_bank_query_norm(float *D, const glad_bank *b, int i, glad_bank_norm norm, const float *f, int C, int h, int w)
{
    if (norm == GLAD_BANK_NORM_NONE) return query_nn(D, NULL, b, i, f, C, h, w);
    if (norm != GLAD_BANK_NORM_RATIO && norm != GLAD_BANK_NORM_DIFF) return glad_fail(GLAD_EINVAL, "bank norm %d", (int)norm);
    if (i < 0 || i >= b->nlayers || !b->radius[i])
        return glad_fail(GLAD_EINVAL, "bank layer '%s' has no radii for --bank-norm %s (glad-bank --radius F)", i >= 0 && i < b->nlayers ? b->layer[i] : "?",
                         glad_bank_norms[norm]);
    size_t hw = (size_t)h * w;
    int64_t *J = malloc(sizeof(int64_t) * (hw ? hw : 1));
    if (!J) return glad_fail(GLAD_ENOMEM, "bank query of [%d,%d,%d]", C, h, w);
    int rc = query_nn(D, J, b, i, f, C, h, w);
    /* ratio: d / (r(b*) + median r), about 1 where a normal patch is as far
     * from the bank as the bank's own vectors are from each other (the
     * median keeps a near-duplicate b*, r ~ 0, from blowing d up);
     * diff: d - r(b*), in the distance's own units (about 0 for normal) */
    for (size_t p = 0; !rc && p < hw; p++) {
        float r = b->radius[i][J[p]];
        D[p] = norm == GLAD_BANK_NORM_RATIO ? D[p] / (r + b->rmed[i]) : D[p] - r;
    }
    free(J);
    return rc;
}

/* b->rmed[i] = the median of layer i's radii (the lower middle one,
 * glad_score_quantile at 0.5), and it must be positive: a ratio by 0 + 0 is
 * undefined */
static int radius_median(glad_bank *b, int i)
{
    if (glad_score_quantile(b->radius[i], (size_t)b->n[i], 0.5, &b->rmed[i])) return glad_fail(GLAD_ENOMEM, "median radius of layer '%s'", b->layer[i]);
    if (!(b->rmed[i] > 0)) return glad_fail(GLAD_EINVAL, "layer '%s': the median radius is %g: half the vectors have an exact twin in another image", b->layer[i], b->rmed[i]);
    return 0;
}

int glad_bank_radius(glad_bank *b, int i, double frac, uint64_t seed)
{
    if (i < 0 || i >= b->nlayers || !b->n[i] || !(frac > 0 && frac <= 1)) return glad_fail(GLAD_EINVAL, "radius of bank layer %d with fraction %g", i, frac);
    if (!b->src[i]) return glad_fail(GLAD_EINVAL, "layer '%s': the images of its vectors are not known (a loaded bank): radii are made with the bank", b->layer[i]);
    int64_t n = b->n[i], m = (int64_t)(frac * (double)n + 0.5);
    int C = b->C[i], rc = GLAD_ENOMEM;
    if (m < 1) m = 1;
    if (m > n) m = n;
    unsigned char *pick = calloc((size_t)n, 1);
    float *R = malloc(sizeof(float) * (size_t)m * C), *best = malloc(sizeof(float) * (size_t)n), *S = NULL;
    int32_t *Rs = malloc(sizeof(int32_t) * (size_t)m);
    if (!pick || !R || !best || !Rs) goto out;
    /* the reference set: m distinct vectors (Floyd's draw), in bank order */
    glad_rng r;
    glad_rng_seed(&r, seed, 0x72616469u /* "radi" */, tail_stream(b, i));
    draw_subset(pick, n, m, &r);
    for (int64_t p = 0, k = 0; p < n; p++)
        if (pick[p]) { memcpy(R + (size_t)k * C, b->x[i] + (size_t)p * C, sizeof(float) * C); Rs[k++] = b->src[i][p]; }
    /* the similarities in blocks of rows x tile (16 MB), as glad_bank_query */
    int64_t tile = m < 4096 ? m : 4096, rows = (int64_t)((4u << 20) / tile);
    if (rows > n) rows = n;
    if (!(S = malloc(sizeof(float) * (size_t)rows * (size_t)tile))) goto out;
    for (int64_t j = 0; j < n; j++) best[j] = -INFINITY;
    /* a reference vector of the row's own image does not count */
    nearest_rows(best, NULL, b->x[i], (size_t)n, b->src[i], R, m, Rs, C, (size_t)rows, tile, S);
    for (int64_t j = 0; j < n; j++) {
        if (best[j] == -INFINITY) {
            rc = glad_fail(GLAD_EINVAL, "layer '%s': no reference vector of another image (radii need two images; a larger fraction)", b->layer[i]);
            goto out;
        }
        best[j] = fmaxf(1.0f - best[j], 0.0f);   /* 1 - cos of unit vectors, >= 0 up to rounding */
    }
    free(b->radius[i]);
    b->radius[i] = best;
    best = NULL;
    b->radius_frac = frac;
    rc = radius_median(b, i);
    if (rc) { free(b->radius[i]); b->radius[i] = NULL; }
out:
    free(pick); free(R); free(best); free(S); free(Rs);
    return rc == GLAD_ENOMEM ? glad_fail(rc, "radii of layer '%s': out of memory", b->layer[i]) : rc;
}

int glad_bank_save(const glad_bank *b, const char *path)
{
    enum { NT = 5 * GLAD_BANK_MAX_LAYERS };
    char names[NT][300], list[GLAD_BANK_MAX_LAYERS * 300] = "", glist[GLAD_BANK_MAX_LAYERS * 300] = "";
    const char *np[NT];
    glad_tensor t[NT];
    const glad_tensor *tp[NT];
    int nt = b->nlayers;
    for (int i = 0; i < b->nlayers; i++) {
        if (!b->n[i]) return glad_fail(GLAD_EINVAL, "layer '%s' of the bank is empty", b->layer[i]);
        snprintf(names[i], sizeof names[i], "bank.%s", b->layer[i]);
        np[i] = names[i];
        t[i] = (glad_tensor){.dtype = GLAD_DT_F32, .ndim = 2, .shape = {b->n[i], b->C[i]}, .data = b->x[i]};
        tp[i] = &t[i];
        if (i) strcat(list, ",");
        strncat(list, b->layer[i], 200);
    }
    /* the radii, when every layer has them (glad-bank --radius) */
    int radii = 0;
    for (int i = 0; i < b->nlayers; i++) radii += b->radius[i] != NULL;
    if (radii && radii != b->nlayers) return glad_fail(GLAD_EINVAL, "%d of the bank's %d layers have radii: all or none", radii, b->nlayers);
    for (int i = 0; radii && i < b->nlayers; i++, nt++) {
        snprintf(names[nt], sizeof names[nt], "radius.%s", b->layer[i]);
        np[nt] = names[nt];
        t[nt] = (glad_tensor){.dtype = GLAD_DT_F32, .ndim = 1, .shape = {b->n[i]}, .data = b->radius[i]};
        tp[nt] = &t[nt];
    }
    /* the Gaussians as F64: the precision matrix amplifies rounding */
    for (int i = 0; i < b->nglobal; i++) {
        const glad_gauss *g = &b->gauss[i];
        if (!g->C) return glad_fail(GLAD_EINVAL, "global layer '%s' is not fitted", b->glayer[i]);
        const char *part[3] = {"mean", "prec", "scale"};
        int64_t shp[3][2] = {{g->C, 0}, {g->C, g->C}, {1, 0}};
        const void *data[3] = {g->mean, g->prec, &g->scale};
        for (int k = 0; k < 3; k++, nt++) {
            snprintf(names[nt], sizeof names[nt], "gauss.%s.%s", b->glayer[i], part[k]);
            np[nt] = names[nt];
            t[nt] = (glad_tensor){.dtype = GLAD_DT_F64, .ndim = k == 1 ? 2 : 1, .shape = {shp[k][0], shp[k][1]}, .data = (void *)data[k]};
            tp[nt] = &t[nt];
        }
        if (i) strcat(glist, ",");
        strncat(glist, b->glayer[i], 200);
    }
    /* "pool" only when pooled, "standardize" only when standardised, "global"
     * only with Gaussians: other banks' files are as before; %.17g reads back
     * as the same double, so a record's feat_standardize compares exactly */
    char pool[16], stdz[32], rfrac[32];
    snprintf(pool, sizeof pool, "%d", b->pool);
    snprintf(stdz, sizeof stdz, "%.17g", b->stdz);
    const char *keys[7] = {"glad_bank", "layers", NULL, NULL, NULL, NULL, NULL}, *vals[7] = {"1", list, NULL, NULL, NULL, NULL, NULL};
    int nm = 2;
    char tails[32];
    if (glad_std_tails_format(tails, sizeof tails, b->stdz_tail)) return glad_fail(GLAD_EINVAL, "standardize tail %d", b->stdz_tail);
    if (b->pool > 1) { keys[nm] = "pool"; vals[nm++] = pool; }
    if (b->stdz > 0) { keys[nm] = "standardize"; vals[nm++] = stdz; }
    if (b->stdz_tail != GLAD_STD_TAIL_CLIP) { keys[nm] = "standardize_tail"; vals[nm++] = tails; }
    if (b->nglobal) { keys[nm] = "global"; vals[nm++] = glist; }
    snprintf(rfrac, sizeof rfrac, "%.17g", b->radius_frac);
    if (radii) { keys[nm] = "radius"; vals[nm++] = rfrac; }
    return glad_st_save(path, nt, np, tp, nm, keys, vals);
}

/* the Gaussian of global layer i from gauss.<layer>.{mean,prec,scale} */
static int load_gauss(glad_bank *b, int i, glad_st *st, const char *path)
{
    const char *part[3] = {"mean", "prec", "scale"};
    glad_tensor t[3] = {{0}};
    int rc = 0, C = 0;
    for (int k = 0; k < 3 && !rc; k++) {
        char key[300];
        snprintf(key, sizeof key, "gauss.%s.%s", b->glayer[i], part[k]);
        const glad_st_entry *e = glad_st_find(st, key);
        if (!e) { rc = glad_fail(GLAD_EFORMAT, "%s: tensor '%s' missing", path, key); break; }
        if (k == 0) C = e->ndim == 1 && e->shape[0] >= 1 && e->shape[0] <= 1 << 14 ? (int)e->shape[0] : 0;
        int ok = e->dtype == GLAD_DT_F64 && C &&
                 (k == 0 || (k == 1 && e->ndim == 2 && e->shape[0] == C && e->shape[1] == C) || (k == 2 && e->ndim == 1 && e->shape[0] == 1));
        if (!ok) { rc = glad_fail(GLAD_EFORMAT, "%s: tensor '%s' is not F64 %s", path, key, k == 0 ? "[C]" : k == 1 ? "[C, C] (C of the mean)" : "[1]"); break; }
        if ((rc = glad_st_get(st, key, &t[k]))) rc = glad_fail(GLAD_EFORMAT, "%s: tensor '%s': %s", path, key, glad_error_detail());
    }
    if (!rc && (rc = glad_gauss_set(&b->gauss[i], C, t[0].data, t[1].data, ((const double *)t[2].data)[0])))
        rc = glad_fail(GLAD_EFORMAT, "%s: global layer '%s': %s", path, b->glayer[i], glad_error_detail());
    for (int k = 0; k < 3; k++) glad_tensor_free(&t[k]);
    return rc;
}

/* layer i's radii from radius.<layer>: [M] of its bank, finite, in [0, 2] */
static int load_radius(glad_bank *b, int i, glad_st *st, const char *path)
{
    char key[300];
    glad_tensor t = {0};
    snprintf(key, sizeof key, "radius.%s", b->layer[i]);
    const glad_st_entry *e = glad_st_find(st, key);
    if (!e) return glad_fail(GLAD_EFORMAT, "%s: tensor '%s' missing (metadata radius says every layer has one)", path, key);
    if (e->ndim != 1 || e->shape[0] != b->n[i]) return glad_fail(GLAD_EFORMAT, "%s: tensor '%s' is not [%lld] (its layer's vectors)", path, key, (long long)b->n[i]);
    if (glad_st_get_f32(st, key, &t)) return glad_fail(GLAD_EFORMAT, "%s: tensor '%s': %s", path, key, glad_error_detail());
    const float *r = t.data;
    for (int64_t j = 0; j < b->n[i]; j++)
        if (!(r[j] >= 0 && r[j] <= 2)) {
            double v = r[j];
            glad_tensor_free(&t);
            return glad_fail(GLAD_EFORMAT, "%s: tensor '%s': radius %g at %lld is not in [0, 2]", path, key, v, (long long)j);
        }
    b->radius[i] = t.data;
    int rc = radius_median(b, i);
    return rc ? glad_fail(GLAD_EFORMAT, "%s: %s", path, glad_error_detail()) : 0;
}

int glad_bank_load(glad_bank *b, const char *path)
{
    glad_st *st;
    memset(b, 0, sizeof *b);
    GLAD_TRY(glad_st_open(&st, path));
    const char *ver = glad_st_meta(st, "glad_bank"), *ls = glad_st_meta(st, "layers");
    int rc = GLAD_EFORMAT, n = 0;
    char *list = ls ? strdup(ls) : NULL;
    const char *names[GLAD_BANK_MAX_LAYERS];
    if (!ver || strcmp(ver, "1") || !ls) { glad_fail(rc, "%s: not a glad-bank file (metadata glad_bank=1 and layers)", path); goto out; }
    if (!list) { rc = GLAD_ENOMEM; goto out; }
    if ((n = split_names(list, names)) < 0) { glad_fail(rc, "%s: more than %d layers", path, GLAD_BANK_MAX_LAYERS); goto out; }
    if ((rc = glad_bank_init(b, n, names))) { glad_fail(GLAD_EFORMAT, "%s: layers '%s': %s", path, ls, glad_error_detail()); rc = GLAD_EFORMAT; goto out; }
    const char *ps = glad_st_meta(st, "pool");
    b->pool = 1;
    if (ps) {
        char *end;
        long k = strtol(ps, &end, 10);
        rc = GLAD_EFORMAT;
        if (end == ps || *end || k < 1 || k > GLAD_POOL_MAX_K || k % 2 == 0) { glad_fail(rc, "%s: metadata pool '%s' is not an odd 1..%d", path, ps, GLAD_POOL_MAX_K); goto out; }
        b->pool = (int)k;
    }
    const char *ss = glad_st_meta(st, "standardize");
    if (ss) {
        char *end;
        double v = strtod(ss, &end);
        rc = GLAD_EFORMAT;
        if (end == ss || *end || !(v > 0 && v <= GLAD_STANDARDIZE_MAX)) { glad_fail(rc, "%s: metadata standardize '%s' is not a number in (0, %g]", path, ss, GLAD_STANDARDIZE_MAX); goto out; }
        b->stdz = v;
    }
    const char *ts = glad_st_meta(st, "standardize_tail");
    if (ts) {
        rc = GLAD_EFORMAT;
        b->stdz_tail = glad_std_tails_parse(ts);
        if (b->stdz_tail < 0 || !ss) { glad_fail(rc, "%s: metadata standardize_tail '%.40s' is not clip, tanh or open (or a list of them) beside a standardize", path, ts); goto out; }
    }
    for (int i = 0; i < n; i++) {
        char key[300];
        glad_tensor t = {0};
        snprintf(key, sizeof key, "bank.%s", names[i]);
        const glad_st_entry *e = glad_st_find(st, key);
        rc = GLAD_EFORMAT;
        if (!e) { glad_fail(rc, "%s: tensor '%s' missing", path, key); goto out; }
        if (e->ndim != 2 || e->shape[0] < 1 || e->shape[1] < 1 || e->shape[1] > 1 << 20) {
            glad_fail(rc, "%s: tensor '%s' is not [M, C]", path, key);
            goto out;
        }
        if ((rc = glad_st_get_f32(st, key, &t))) { glad_fail(rc, "%s: tensor '%s': %s", path, key, glad_error_detail()); goto out; }
        if (glad_tensor_has_nonfinite(&t)) { glad_tensor_free(&t); rc = glad_fail(GLAD_ENAN, "%s: tensor '%s' contains NaN or infinity", path, key); goto out; }
        b->x[i] = t.data;
        b->n[i] = b->cap[i] = t.shape[0];
        b->C[i] = (int)t.shape[1];
    }
    const char *rs = glad_st_meta(st, "radius");
    if (rs) {
        char *end;
        double v = strtod(rs, &end);
        rc = GLAD_EFORMAT;
        if (end == rs || *end || !(v > 0 && v <= 1)) { glad_fail(rc, "%s: metadata radius '%.40s' is not a fraction in (0, 1]", path, rs); goto out; }
        b->radius_frac = v;
        for (int i = 0; i < n; i++)
            if ((rc = load_radius(b, i, st, path))) goto out;
    }
    const char *gs = glad_st_meta(st, "global");
    if (gs) {
        free(list);
        list = strdup(gs);
        int ng;
        rc = GLAD_EFORMAT;
        if (!list) { rc = GLAD_ENOMEM; goto out; }
        if ((ng = split_names(list, names)) < 0) { glad_fail(rc, "%s: more than %d global layers", path, GLAD_BANK_MAX_LAYERS); goto out; }
        if (glad_bank_init_global(b, ng, names)) { glad_fail(rc, "%s: global '%s': %s", path, gs, glad_error_detail()); goto out; }
        for (int i = 0; i < ng; i++)
            if ((rc = load_gauss(b, i, st, path))) goto out;
    }
    rc = 0;
out:
    free(list);
    glad_st_close(st);
    if (rc) glad_bank_free(b);
    return rc;
}
