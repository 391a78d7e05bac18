/* tile.c - tile geometry, crop, blending and the record split and merge
 * (tile.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "imgproc/tile.h"

const char *const glad_tile_keys[] = {"tile_of", "tile_y", "tile_x", "tile_index", "tile_count", "tile_size", "tile_overlap",
                                      "tile_full_h", "tile_full_w", NULL};

/* glad_fail with fmt's text followed by the current detail (copied first:
 * the detail buffer cannot be both an argument and the destination) */
static int refail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refail(int rc, const char *fmt, ...)
{
    char pre[512], d[1024];
    snprintf(d, sizeof d, "%s", glad_error_detail());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    return glad_fail(rc, "%s%s", pre, d[0] ? d : glad_strerror(rc));
}

/* ---- geometry ---- */

static int axis_count(int len, int size, int overlap)
{
    if (len <= size) return 1;
    int s = size - overlap;
    return 1 + (len - size + s - 1) / s;
}

int glad_tile_grid_init(glad_tile_grid *g, int H, int W, int size, int overlap)
{
    memset(g, 0, sizeof *g);
    if (size < 1 || size > GLAD_TILE_MAX_SIDE) return glad_fail(GLAD_EINVAL, "tile size %d (want 1..%d)", size, GLAD_TILE_MAX_SIDE);
    if (overlap < 0 || overlap >= size) return glad_fail(GLAD_EINVAL, "overlap %d (want 0..%d, less than the tile size)", overlap, size - 1);
    if (H < 1 || W < 1 || H > GLAD_TILE_MAX_SIDE || W > GLAD_TILE_MAX_SIDE)
        return glad_fail(GLAD_EINVAL, "image %dx%d (want 1..%d a side)", H, W, GLAD_TILE_MAX_SIDE);
    g->H = H; g->W = W;
    g->size = size; g->overlap = overlap;
    g->ny = axis_count(H, size, overlap);
    g->nx = axis_count(W, size, overlap);
    return 0;
}

int glad_tile_axis_offset(int len, int size, int overlap, int i)
{
    if (len <= size) return 0;
    long o = (long)i * (size - overlap);
    return o < len - size ? (int)o : len - size;
}

int glad_tile_count(const glad_tile_grid *g) { return g->ny * g->nx; }

void glad_tile_origin(const glad_tile_grid *g, int k, int *y, int *x)
{
    *y = glad_tile_axis_offset(g->H, g->size, g->overlap, k / g->nx);
    *x = glad_tile_axis_offset(g->W, g->size, g->overlap, k % g->nx);
}

double glad_tile_ramp(int size, int overlap, int t)
{
    if (overlap <= 0) return 1.0;
    double a = (t + 0.5) / overlap, b = (size - t - 0.5) / overlap;
    return fmin(1.0, fmin(a, b));
}

/* numpy 'reflect' index for t >= 0 on an axis of length L, repeated */
static int reflect(int t, int L)
{
    if (t < L) return t;
    if (L == 1) return 0;
    int p = 2 * (L - 1);
    t %= p;
    return t < L ? t : p - t;
}

static void shape_str(char *buf, size_t len, const glad_tensor *t)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < t->ndim && k < len; i++) k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

/* product of the dims before the trailing two (checked) */
static int leading_planes(const glad_tensor *t, size_t *planes)
{
    size_t p = 1;
    for (int i = 0; i < t->ndim - 2; i++) {
        if (t->shape[i] < 1) return GLAD_ESHAPE;
        GLAD_TRY(glad_mul_size(p, (size_t)t->shape[i], &p));
    }
    *planes = p;
    return 0;
}

static int trailing_is(const glad_tensor *t, int h, int w)
{
    return t->ndim >= 2 && t->shape[t->ndim - 2] == h && t->shape[t->ndim - 1] == w;
}

int glad_tile_crop(glad_tensor *dst, const glad_tensor *src, const glad_tile_grid *g, int k)
{
    memset(dst, 0, sizeof *dst);
    char sh[96];
    if (!trailing_is(src, g->H, g->W)) {
        shape_str(sh, sizeof sh, src);
        return glad_fail(GLAD_ESHAPE, "tensor %s is not [...,%d,%d]", sh, g->H, g->W);
    }
    if (k < 0 || k >= glad_tile_count(g)) return glad_fail(GLAD_EINVAL, "tile %d of %d", k, glad_tile_count(g));
    size_t planes;
    GLAD_TRY(leading_planes(src, &planes));
    int64_t shape[GLAD_MAX_DIMS];
    memcpy(shape, src->shape, sizeof shape);
    int N = g->size, H = g->H, W = g->W, y0, x0;
    shape[src->ndim - 2] = shape[src->ndim - 1] = N;
    GLAD_TRY(glad_tensor_alloc(dst, src->dtype, src->ndim, shape));
    glad_tile_origin(g, k, &y0, &x0);
    size_t es = glad_dtype_size(src->dtype);
    const unsigned char *s = src->data;
    unsigned char *d = dst->data;
    for (size_t p = 0; p < planes; p++)
        for (int r = 0; r < N; r++) {
            int sy = H < N ? reflect(r, H) : y0 + r;
            const unsigned char *srow = s + ((p * H + (size_t)sy) * W) * es;
            unsigned char *drow = d + ((p * N + (size_t)r) * N) * es;
            if (W >= N) memcpy(drow, srow + (size_t)x0 * es, (size_t)N * es);
            else for (int c = 0; c < N; c++) memcpy(drow + (size_t)c * es, srow + (size_t)reflect(c, W) * es, es);
        }
    return 0;
}

/* ---- reassembly ---- */

void glad_tile_acc_free(glad_tile_acc *a)
{
    if (!a) return;
    glad_tensor_free(&a->out);
    free(a->sum);
    free(a->wsum);
    free(a->seen);
    memset(a, 0, sizeof *a);
}

int glad_tile_acc_init(glad_tile_acc *a, const glad_tile_grid *g, const glad_tensor *tile, int blend)
{
    memset(a, 0, sizeof *a);
    char sh[96];
    shape_str(sh, sizeof sh, tile);
    if (!trailing_is(tile, g->size, g->size)) return glad_fail(GLAD_ESHAPE, "is %s, not the tile size [...,%d,%d]", sh, g->size, g->size);
    a->g = *g;
    a->blend = blend;
    a->dtype = tile->dtype;
    a->ndim = tile->ndim;
    memcpy(a->shape, tile->shape, sizeof a->shape);
    a->shape[a->ndim - 2] = g->H;
    a->shape[a->ndim - 1] = g->W;
    size_t hw = (size_t)g->H * g->W, n;
    if (leading_planes(tile, &a->planes) || glad_mul_size(a->planes, hw, &n) || glad_mul_size(n, sizeof(double), &n) || n > GLAD_MAX_ALLOC)
        return glad_fail(GLAD_ERANGE, "is %s: the merged %dx%d tensor would be too large", sh, g->H, g->W);
    a->seen = calloc(hw, 1);
    int rc = GLAD_ENOMEM;
    if (!a->seen) goto fail;
    if (blend) {
        a->sum = calloc(a->planes * hw, sizeof(double));
        a->wsum = calloc(hw, sizeof(double));
        if (!a->sum || !a->wsum) goto fail;
    } else if ((rc = glad_tensor_alloc(&a->out, a->dtype, a->ndim, a->shape))) goto fail;
    return 0;
fail:
    glad_tile_acc_free(a);
    return glad_fail(rc, "is %s: no memory for the merged %dx%d tensor", sh, g->H, g->W);
}

int glad_tile_acc_add(glad_tile_acc *a, const glad_tensor *tile, int k)
{
    const glad_tile_grid *g = &a->g;
    int N = g->size, H = g->H, W = g->W, y0, x0;
    int same = tile->ndim == a->ndim && trailing_is(tile, N, N);
    for (int i = 0; same && i < a->ndim - 2; i++) same = tile->shape[i] == a->shape[i];
    if (!same) {
        char sh[96];
        shape_str(sh, sizeof sh, tile);
        return glad_fail(GLAD_ESHAPE, "is %s, not the shape of tile 0's", sh);
    }
    if (tile->dtype != a->dtype)
        return glad_fail(GLAD_EDTYPE, "is %s, tile 0's is %s", glad_dtype_str(tile->dtype), glad_dtype_str(a->dtype));
    if (k < 0 || k >= glad_tile_count(g)) return glad_fail(GLAD_EINVAL, "tile %d of %d", k, glad_tile_count(g));
    glad_tile_origin(g, k, &y0, &x0);
    int vh = H < N ? H : N, vw = W < N ? W : N;   /* the part inside the image (the rest is padding) */
    size_t hw = (size_t)H * W, nn = (size_t)N * N;
    for (int r = 0; r < vh; r++) memset(a->seen + (size_t)(y0 + r) * W + x0, 1, (size_t)vw);
    if (!a->blend) {
        size_t es = glad_dtype_size(a->dtype);
        for (size_t p = 0; p < a->planes; p++)
            for (int r = 0; r < vh; r++)
                memcpy((unsigned char *)a->out.data + (p * hw + (size_t)(y0 + r) * W + x0) * es,
                       (const unsigned char *)tile->data + (p * nn + (size_t)r * N) * es, (size_t)vw * es);
        return 0;
    }
    double *v = malloc(a->planes * nn * sizeof(double)), *wx = malloc((size_t)N * sizeof(double));
    int rc = GLAD_ENOMEM;
    if (!v || !wx) goto out;
    GLAD_TRYG(rc, glad_tensor_to_f64(tile, v), out);
    for (int c = 0; c < N; c++) wx[c] = glad_tile_ramp(N, g->overlap, c);
    for (int r = 0; r < vh; r++) {
        double wy = glad_tile_ramp(N, g->overlap, r);
        double *ws = a->wsum + (size_t)(y0 + r) * W + x0;
        for (int c = 0; c < vw; c++) ws[c] += wy * wx[c];
        for (size_t p = 0; p < a->planes; p++) {
            double *s = a->sum + p * hw + (size_t)(y0 + r) * W + x0;
            const double *t = v + p * nn + (size_t)r * N;
            for (int c = 0; c < vw; c++) s[c] += wy * wx[c] * t[c];
        }
    }
    rc = 0;
out:
    free(v);
    free(wx);
    return rc ? glad_fail(rc, "no memory to blend a tile") : 0;
}

int glad_tile_acc_finish(glad_tile_acc *a, glad_tensor *out)
{
    memset(out, 0, sizeof *out);
    const glad_tile_grid *g = &a->g;
    size_t hw = (size_t)g->H * g->W, n = a->planes * hw;
    for (size_t i = 0; i < hw; i++)
        if (!a->seen[i]) return glad_fail(GLAD_EINVAL, "pixel %zu,%zu is in no tile", i / (size_t)g->W, i % (size_t)g->W);
    if (!a->blend) {
        glad_tensor_move(out, &a->out);
        return 0;
    }
    if (a->dtype == GLAD_DT_F64) {
        GLAD_TRY(glad_tensor_alloc(out, a->dtype, a->ndim, a->shape));
        double *d = out->data;
        for (size_t i = 0; i < n; i++) d[i] = a->sum[i] / a->wsum[i % hw];
        return 0;
    }
    float *f = malloc(n * sizeof(float));
    if (!f) return glad_fail(GLAD_ENOMEM, "no memory for a merged tensor");
    for (size_t i = 0; i < n; i++) f[i] = (float)(a->sum[i] / a->wsum[i % hw]);
    int rc = glad_tensor_from_f32(out, a->dtype, a->ndim, a->shape, f);
    free(f);
    return rc ? glad_fail(rc, "merged tensor: %s", glad_strerror(rc)) : 0;
}

/* ---- split ---- */

void glad_tile_split_free(glad_tile_splitter *s)
{
    if (!s) return;
    glad_record_free(&s->base);
    free(s->parent_id);
    for (int i = 0; i < s->ntens; i++) glad_tensor_free(&s->tens[i]);
    free(s->tens);
    free(s->tens_field);
    memset(s, 0, sizeof *s);
}

int glad_tile_split_begin(glad_tile_splitter *s, glad_record *r, int size, int overlap)
{
    memset(s, 0, sizeof *s);
    const glad_tensor *im;
    const char *id;
    int rc, C, H, W;
    char sh[96];
    if (glad_record_get_str(r, "id", &id)) return glad_fail(GLAD_EFORMAT, "'id' missing or not a string (tiles are named after it)");
    for (int i = 0; glad_tile_keys[i]; i++)
        if (glad_record_find(r, glad_tile_keys[i]))
            return glad_fail(GLAD_EFORMAT, "'%s' present: already a tile (merge before splitting again)", glad_tile_keys[i]);
    if ((rc = glad_record_get_tensor(r, "image", &im))) return glad_fail(GLAD_EFORMAT, "'image' %s", rc == GLAD_ENOTFOUND ? "missing" : "is not a tensor");
    if (glad_tensor_chw(im, &C, &H, &W)) {
        shape_str(sh, sizeof sh, im);
        return glad_fail(GLAD_ESHAPE, "'image' is %s, not [C,H,W] or [H,W]", sh);
    }
    if ((rc = glad_tile_grid_init(&s->g, H, W, size, overlap))) return refail(rc, "'image': ");
    for (int i = 0; i < r->n; i++) {
        const glad_field *f = &r->f[i];
        if (f->kind != GLAD_VAL_TENSOR || trailing_is(&f->t, H, W)) continue;
        shape_str(sh, sizeof sh, &f->t);
        return glad_fail(GLAD_ESHAPE, "'%s' is %s, not image-sized [...,%d,%d]: only image-sized tensors are tiled (tile before glad-features)",
                         f->key, sh, H, W);
    }
    s->tens = calloc((size_t)r->n, sizeof *s->tens);
    s->tens_field = calloc((size_t)r->n, sizeof *s->tens_field);
    s->parent_id = strdup(id);
    if (!s->tens || !s->tens_field || !s->parent_id) { glad_tile_split_free(s); return glad_fail(GLAD_ENOMEM, "out of memory"); }
    /* move the image-sized tensors out; the fields stay as placeholders (nil)
     * so every tile keeps the parent's field order */
    for (int i = 0; i < r->n; i++) {
        glad_field *f = &r->f[i];
        if (f->kind != GLAD_VAL_TENSOR) continue;
        s->tens_field[s->ntens] = i;
        glad_tensor_move(&s->tens[s->ntens++], &f->t);
        f->kind = GLAD_VAL_NIL;
    }
    s->base = *r;
    glad_record_init(r);
    s->n = glad_tile_count(&s->g);
    return 0;
}

int glad_tile_split_next(glad_tile_splitter *s, glad_record *tile)
{
    if (s->k >= s->n) return 0;
    glad_record_free(tile);
    int k = s->k, y, x, rc;
    glad_tile_origin(&s->g, k, &y, &x);
    GLAD_TRYG(rc, glad_record_copy(tile, &s->base), fail);
    for (int i = 0; i < s->ntens; i++) {
        glad_tensor t;
        GLAD_TRYG(rc, glad_tile_crop(&t, &s->tens[i], &s->g, k), fail);
        if ((rc = glad_record_set_tensor(tile, s->base.f[s->tens_field[i]].key, &t))) { glad_tensor_free(&t); goto fail; }
    }
    char *tid = glad_strfmt("%s@%d,%d", s->parent_id, y, x);
    if (!tid) { rc = GLAD_ENOMEM; goto fail; }
    rc = glad_record_set_str(tile, "id", tid);
    free(tid);
    if (rc) goto fail;
    const int64_t v[] = {y, x, k, s->n, s->g.size, s->g.overlap, s->g.H, s->g.W};
    GLAD_TRYG(rc, glad_record_set_str(tile, glad_tile_keys[0], s->parent_id), fail);
    for (int i = 1; glad_tile_keys[i]; i++) GLAD_TRYG(rc, glad_record_set_int(tile, glad_tile_keys[i], v[i - 1]), fail);
    s->k++;
    return 1;
fail:
    glad_record_free(tile);
    return glad_fail(rc, "tile %d: %s", k, glad_strerror(rc));
}

/* ---- merge ---- */

void glad_tile_merge_init(glad_tile_merger *m, glad_score_reducer reducer, size_t k)
{
    memset(m, 0, sizeof *m);
    m->reducer = reducer;
    m->k = k;
}

static void merge_reset(glad_tile_merger *m)
{
    glad_record_free(&m->first);
    free(m->parent_id);
    for (int i = 0; i < m->nacc; i++) { free(m->acc_key[i]); glad_tile_acc_free(&m->acc[i]); }
    free(m->acc_key);
    free(m->acc);
    free(m->differs);
    glad_tile_merger z;
    glad_tile_merge_init(&z, m->reducer, m->k);
    *m = z;
}

void glad_tile_merge_free(glad_tile_merger *m) { if (m) merge_reset(m); }

int glad_tile_merge_end(glad_tile_merger *m)
{
    if (!m->active) return 0;
    int rc = glad_fail(GLAD_EFORMAT, "image '%s' ends after %d of its %d tiles (tiles missing or the stream cut short)", m->parent_id,
                       m->next, m->count);
    merge_reset(m);
    return rc;
}

/* the tile_* bookkeeping of one tile record */
typedef struct { const char *of; int64_t v[8]; } tile_info;   /* v in glad_tile_keys[1..] order */
enum { TI_Y, TI_X, TI_INDEX, TI_COUNT, TI_SIZE, TI_OVERLAP, TI_H, TI_W };

static int read_info(const glad_record *r, tile_info *t)
{
    if (glad_record_get_str(r, "tile_of", &t->of)) return glad_fail(GLAD_EFORMAT, "'tile_of' missing or not a string (not a glad-tile tile)");
    for (int i = 1; glad_tile_keys[i]; i++) {
        int rc = glad_record_get_int(r, glad_tile_keys[i], &t->v[i - 1]);
        if (rc) return glad_fail(GLAD_EFORMAT, "'%s' %s", glad_tile_keys[i], rc == GLAD_ENOTFOUND ? "missing" : "is not an integer");
        if (t->v[i - 1] < 0 || t->v[i - 1] > (int64_t)GLAD_TILE_MAX_SIDE * GLAD_TILE_MAX_SIDE)
            return glad_fail(GLAD_EFORMAT, "'%s' is %lld", glad_tile_keys[i], (long long)t->v[i - 1]);
    }
    return 0;
}

static int is_tile_key(const char *k)
{
    for (int i = 0; glad_tile_keys[i]; i++) if (!strcmp(k, glad_tile_keys[i])) return 1;
    return 0;
}

/* image and mask are copied; these four must be tile-sized */
static int is_copied(const char *k) { return !strcmp(k, "image") || !strcmp(k, "mask"); }
static int must_be_tile(const char *k) { return is_copied(k) || !strcmp(k, "recon") || !strcmp(k, "amap"); }

static int field_equal(const glad_field *a, const glad_field *b)
{
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case GLAD_VAL_NIL: return 1;
    case GLAD_VAL_BOOL: case GLAD_VAL_INT: return a->i == b->i;
    case GLAD_VAL_FLOAT: return a->f32 == b->f32 && !memcmp(&a->f, &b->f, sizeof a->f);
    case GLAD_VAL_STR: case GLAD_VAL_RAW: return a->n == b->n && !memcmp(a->kind == GLAD_VAL_STR ? (const void *)a->s : a->raw,
                                                                        b->kind == GLAD_VAL_STR ? (const void *)b->s : b->raw, a->n);
    default: return 0;
    }
}

/* tile 0: the geometry, an accumulator per tile-sized tensor */
static int merge_start(glad_tile_merger *m, glad_record *r, const tile_info *t)
{
    int rc, y, x;
    if (t->v[TI_INDEX] != 0)
        return glad_fail(GLAD_EFORMAT, "'tile_index' is %lld: tile 0 of '%s' is missing (tiles must come in the order glad-tile wrote them)",
                         (long long)t->v[TI_INDEX], t->of);
    if ((rc = glad_tile_grid_init(&m->g, (int)t->v[TI_H], (int)t->v[TI_W], (int)t->v[TI_SIZE], (int)t->v[TI_OVERLAP])))
        return refail(GLAD_EFORMAT, "tile geometry: ");
    if (t->v[TI_COUNT] != glad_tile_count(&m->g))
        return glad_fail(GLAD_EFORMAT, "'tile_count' is %lld but a %lldx%lld image in %lld-pixel tiles overlapping by %lld has %d",
                         (long long)t->v[TI_COUNT], (long long)t->v[TI_H], (long long)t->v[TI_W], (long long)t->v[TI_SIZE],
                         (long long)t->v[TI_OVERLAP], glad_tile_count(&m->g));
    glad_tile_origin(&m->g, 0, &y, &x);
    if (t->v[TI_Y] != y || t->v[TI_X] != x) return glad_fail(GLAD_EFORMAT, "'tile_y' 'tile_x' are %lld,%lld, tile 0 is at 0,0", (long long)t->v[TI_Y], (long long)t->v[TI_X]);
    m->parent_id = strdup(t->of);
    m->acc = calloc((size_t)r->n + 1, sizeof *m->acc);
    m->acc_key = calloc((size_t)r->n + 1, sizeof *m->acc_key);
    m->differs = calloc((size_t)r->n + 1, 1);
    if (!m->parent_id || !m->acc || !m->acc_key || !m->differs) return glad_fail(GLAD_ENOMEM, "out of memory");
    for (int i = 0; i < r->n; i++) {
        glad_field *f = &r->f[i];
        if (f->kind != GLAD_VAL_TENSOR) continue;
        if (!trailing_is(&f->t, m->g.size, m->g.size)) {
            if (!must_be_tile(f->key)) { m->differs[i] = 1; continue; }   /* dropped */
            char sh[96];
            shape_str(sh, sizeof sh, &f->t);
            return glad_fail(GLAD_EFORMAT, "'%s' is %s, not the tile size [...,%d,%d] (score tiles without --crop or --size)", f->key, sh,
                             m->g.size, m->g.size);
        }
        glad_tile_acc *a = &m->acc[m->nacc];
        if (!(m->acc_key[m->nacc] = strdup(f->key))) return glad_fail(GLAD_ENOMEM, "out of memory");
        if ((rc = glad_tile_acc_init(a, &m->g, &f->t, !is_copied(f->key)))) return refail(rc, "'%s' ", f->key);
        m->nacc++;
        if ((rc = glad_tile_acc_add(a, &f->t, 0))) return refail(rc, "'%s' ", f->key);
        glad_tensor_free(&f->t);
        f->kind = GLAD_VAL_NIL;   /* a placeholder keeping the field's position */
    }
    m->first = *r;
    glad_record_init(r);
    m->count = (int)t->v[TI_COUNT];
    m->next = 1;
    m->active = 1;
    return 0;
}

/* a later tile: same image, the next index, the same geometry and tensors */
static int merge_more(glad_tile_merger *m, const glad_record *r, const tile_info *t)
{
    tile_info t0;
    int rc, y, x;
    if (strcmp(t->of, m->parent_id))
        return glad_fail(GLAD_EFORMAT, "'tile_of' is '%s' but image '%s' has only %d of its %d tiles (tiles missing, or images interleaved)",
                         t->of, m->parent_id, m->next, m->count);
    if (t->v[TI_INDEX] != m->next)
        return glad_fail(GLAD_EFORMAT, "'tile_index' is %lld where %d was expected (%s)", (long long)t->v[TI_INDEX], m->next,
                         t->v[TI_INDEX] < m->next ? "a duplicated tile" : "tiles missing or out of order");
    GLAD_TRY(read_info(&m->first, &t0));
    for (int i = TI_COUNT; i <= TI_W; i++)
        if (t->v[i] != t0.v[i])
            return glad_fail(GLAD_EFORMAT, "'%s' is %lld, tile 0's is %lld", glad_tile_keys[i + 1], (long long)t->v[i], (long long)t0.v[i]);
    glad_tile_origin(&m->g, m->next, &y, &x);
    if (t->v[TI_Y] != y || t->v[TI_X] != x)
        return glad_fail(GLAD_EFORMAT, "'tile_y' 'tile_x' are %lld,%lld, tile %d is at %d,%d", (long long)t->v[TI_Y], (long long)t->v[TI_X],
                         m->next, y, x);
    for (int i = 0; i < m->nacc; i++) {
        const glad_field *f = glad_record_find(r, m->acc_key[i]);
        if (!f || f->kind != GLAD_VAL_TENSOR) return glad_fail(GLAD_EFORMAT, "'%s' missing or not a tensor (tile 0 has it)", m->acc_key[i]);
        if ((rc = glad_tile_acc_add(&m->acc[i], &f->t, m->next))) return refail(GLAD_EFORMAT, "'%s' ", f->key);
    }
    for (int i = 0; i < m->first.n; i++) {
        const glad_field *f0 = &m->first.f[i], *f;
        if (m->differs[i] || is_tile_key(f0->key) || !strcmp(f0->key, "id")) continue;
        int acc = 0;
        for (int a = 0; a < m->nacc && !acc; a++) acc = !strcmp(m->acc_key[a], f0->key);
        if (!acc && (!(f = glad_record_find(r, f0->key)) || !field_equal(f0, f))) m->differs[i] = 1;
    }
    m->next++;
    return 0;
}

/* the image's record from tile 0's fields and the accumulators */
static int merge_finish(glad_tile_merger *m, glad_record *out)
{
    glad_record *r = &m->first;
    int rc, has_amap = 0;
    double score = 0;
    for (int i = 0; i < m->nacc; i++) {
        glad_tensor t;
        if ((rc = glad_tile_acc_finish(&m->acc[i], &t))) return refail(rc, "'%s' ", m->acc_key[i]);
        if (!strcmp(m->acc_key[i], "amap")) {
            size_t n = glad_tensor_numel(&t);
            float *A = malloc(n * sizeof(float));
            if (!A || glad_tensor_to_f32(&t, A)) { free(A); glad_tensor_free(&t); return glad_fail(GLAD_EDTYPE, "'amap' is not numeric"); }
            if (glad_tensor_has_nonfinite(&t)) { free(A); glad_tensor_free(&t); return glad_fail(GLAD_ENAN, "'amap' contains NaN or infinity"); }
            score = glad_score_reduce(A, n, m->reducer, m->k);
            free(A);
            if (isnan(score)) { glad_tensor_free(&t); return glad_fail(GLAD_ENOMEM, "'score': out of memory"); }
            has_amap = 1;
        }
        if ((rc = glad_record_set_tensor(r, m->acc_key[i], &t))) { glad_tensor_free(&t); return glad_fail(rc, "out of memory"); }
    }
    /* drop what the tiles disagree on, the bookkeeping, and the per-tile score */
    for (int i = r->n - 1; i >= 0; i--)
        if (!strcmp(r->f[i].key, "score") ? !has_amap : m->differs[i] || is_tile_key(r->f[i].key)) glad_record_remove(r, r->f[i].key);
    if (glad_record_set_str(r, "id", m->parent_id) || (has_amap && glad_record_set_f64(r, "score", score))) return glad_fail(GLAD_ENOMEM, "out of memory");
    glad_record_free(out);
    *out = *r;
    glad_record_init(r);
    return 0;
}

int glad_tile_merge_add(glad_tile_merger *m, glad_record *r, glad_record *out)
{
    tile_info t;
    int rc = read_info(r, &t);
    if (!rc) rc = m->active ? merge_more(m, r, &t) : merge_start(m, r, &t);
    glad_record_free(r);
    if (!rc && m->next == m->count) {
        rc = merge_finish(m, out);
        merge_reset(m);
        return rc ? rc : 1;
    }
    if (rc) merge_reset(m);
    return rc;
}
