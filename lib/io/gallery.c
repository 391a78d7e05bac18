/* gallery.c - see gallery.h: panel rendering on an interleaved RGB canvas
 * (then planar for the tensor), and the HTML index. */
#include "io/gallery.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "imgproc/resize.h"
#include "io/plot.h"

const char *const glad_gallery_norm_names[] = {"global", "record", NULL};

int glad_gallery_range(const glad_record *r, double *lo, double *hi)
{
    const glad_tensor *ta;
    if (glad_record_get_tensor(r, "amap", &ta)) return 0;
    size_t n = glad_tensor_numel(ta);
    float *f = malloc((n ? n : 1) * sizeof(float));
    if (!f) return GLAD_ENOMEM;
    if (glad_tensor_to_f32(ta, f) == 0)
        for (size_t i = 0; i < n; i++) if (isfinite(f[i])) { if (f[i] < *lo) *lo = f[i]; if (f[i] > *hi) *hi = f[i]; }
    free(f);
    return 0;
}

/* A (C,H,W) or (H,W) tensor as floats resampled (nearest) to n x n: *out
 * NULL when it cannot be drawn (other rank), GLAD_ENOMEM. Images in the
 * [-1,1] convention; an integer image other than u8/u16 keeps its values
 * (glad_tensor_image_to_f32 fills them and says EDTYPE: drawn as given). */
static int cell_f(const glad_tensor *t, int n, int image, float **out, int *C)
{
    int c, h, w;
    *out = NULL;
    if (!t || glad_tensor_chw(t, &c, &h, &w)) return 0;
    float *a = malloc(glad_tensor_numel(t) * sizeof(float)), *b = malloc((size_t)c * n * n * sizeof(float));
    if (!a || !b) { free(a); free(b); return GLAD_ENOMEM; }
    if (image) glad_tensor_image_to_f32(t, a); else glad_tensor_to_f32(t, a);
    glad_resize_nearest_f32(b, n, n, a, c, h, w);
    free(a);
    *C = c;
    *out = b;
    return 0;
}

static void put_rgb(uint8_t *px, int W, int x, int y, const uint8_t *rgb)
{
    uint8_t *p = px + ((size_t)y * W + x) * 3;
    p[0] = rgb[0]; p[1] = rgb[1]; p[2] = rgb[2];
}

/* pixel (x,y) of a [-1,1] picture of C channels (1: grey) as RGB */
static void img_rgb(const float *f, int C, int n, int x, int y, uint8_t *rgb)
{
    size_t hw = (size_t)n * n, i = (size_t)y * n + x;
    for (int k = 0; k < 3; k++) {
        float v = (f[(C == 3 ? k : 0) * hw + i] + 1) * 127.5f;
        rgb[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* the caption: id (at most 60 characters), label, score, ads_step */
static void caption(const glad_record *r, char *line, size_t size)
{
    double sc;
    int64_t lab = -1, st;
    glad_record_get_int(r, "label", &lab);
    int has = glad_record_get_f64(r, "score", &sc) == 0;
    snprintf(line, size, "%.60s  label %lld  score %s", glad_record_id(r), (long long)lab, "");
    if (has) snprintf(line + strlen(line), size - strlen(line), "%.4g", sc);
    if (glad_record_get_int(r, "ads_step", &st) == 0) snprintf(line + strlen(line), size - strlen(line), "  ads_step %lld", (long long)st);
}

int glad_gallery_panel(const glad_record *r, int n, double lo, double hi, glad_gallery_norm norm, glad_tensor *out)
{
    if (n < 1 || n > 16384) return glad_fail(GLAD_EINVAL, "gallery: cell size %d out of range", n);
    const int pad = 4, top = 22, W = 4 * n + 5 * pad, H = n + top + pad;
    const glad_tensor *ti = NULL, *tr = NULL, *ta = NULL, *tm = NULL;
    glad_record_get_tensor(r, "image", &ti);
    glad_record_get_tensor(r, "recon", &tr);
    glad_record_get_tensor(r, "amap", &ta);
    glad_record_get_tensor(r, "mask", &tm);
    int ci = 0, cr = 0, ca = 0, cm = 0, rc = 0;
    float *fi = NULL, *fr = NULL, *fa = NULL, *fm = NULL;
    uint8_t *px = malloc((size_t)W * H * 3);
    if (!px || cell_f(ti, n, 1, &fi, &ci) || cell_f(tr, n, 1, &fr, &cr) || cell_f(ta, n, 0, &fa, &ca) || cell_f(tm, n, 0, &fm, &cm)) {
        rc = glad_fail(GLAD_ENOMEM, "out of memory");
        goto out;
    }
    memset(px, 245, (size_t)W * H * 3);
    if (fa && norm == GLAD_GALLERY_NORM_RECORD) {   /* the first plane's own range */
        lo = hi = fa[0];
        for (int i = 1; i < n * n; i++) { if (fa[i] < lo) lo = fa[i]; if (fa[i] > hi) hi = fa[i]; }
    }
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            uint8_t a[3] = {200, 200, 200}, b[3] = {200, 200, 200}, c[3] = {200, 200, 200}, d[3] = {0, 0, 0};
            if (fi) { img_rgb(fi, ci, n, x, y, a); memcpy(c, a, 3); memcpy(d, a, 3); }
            if (fr) img_rgb(fr, cr, n, x, y, b);
            if (fa) {   /* heat map blended 55 % over the input */
                uint8_t h[3];
                glad_plot_jet(hi > lo ? (fa[(size_t)y * n + x] - lo) / (hi - lo) : 0, h);
                for (int k = 0; k < 3; k++) c[k] = (uint8_t)(0.45 * c[k] + 0.55 * h[k]);
            }
            /* mask: red at 60 % over the input; no mask: a grey cell */
            if (fm && fm[(size_t)y * n + x] > 0.5) { d[0] = (uint8_t)(0.4 * d[0] + 153); d[1] = (uint8_t)(0.4 * d[1]); d[2] = (uint8_t)(0.4 * d[2]); }
            else if (!fm) memset(d, 200, 3);
            int Y = top + y;
            put_rgb(px, W, pad + x, Y, a);
            put_rgb(px, W, 2 * pad + n + x, Y, b);
            put_rgb(px, W, 3 * pad + 2 * n + x, Y, c);
            put_rgb(px, W, 4 * pad + 3 * n + x, Y, d);
        }
    char line[512];
    caption(r, line, sizeof line);
    static const uint8_t black[3] = {20, 20, 20};
    glad_plot_text(px, W, H, pad, 4, line, 1, black);
    if ((rc = glad_tensor_alloc4(out, GLAD_DT_U8, 3, H, W, -1)) < 0) { rc = glad_fail(rc, "out of memory"); goto out; }
    for (int k = 0; k < 3; k++)   /* interleaved RGB -> planar */
        for (size_t i = 0; i < (size_t)W * H; i++) ((uint8_t *)out->data)[k * (size_t)W * H + i] = px[i * 3 + k];
out:
    free(fi); free(fr); free(fa); free(fm); free(px);
    return rc;
}

void glad_gallery_init(glad_gallery *g) { memset(g, 0, sizeof *g); }

void glad_gallery_free(glad_gallery *g)
{
    for (int i = 0; i < g->n; i++) { free(g->e[i].id); free(g->e[i].file); }
    free(g->e);
    glad_gallery_init(g);
}

int glad_gallery_add(glad_gallery *g, const glad_record *r, const char *file)
{
    glad_gallery_entry *q = glad_grow(g->e, &g->cap, g->n, sizeof *q, 64);
    if (!q) return glad_fail(GLAD_ENOMEM, "out of memory");
    g->e = q;
    glad_gallery_entry *e = &g->e[g->n];
    memset(e, 0, sizeof *e);
    int64_t lab = -1;
    glad_record_get_int(r, "label", &lab);
    e->label = (int)lab;
    e->has_score = glad_record_get_f64(r, "score", &e->score) == 0;
    int64_t dec = -1;
    e->decision = glad_record_get_int(r, "decision", &dec) == 0 && (dec == 0 || dec == 1) ? (int)dec : -1;
    if (!e->has_score) e->score = NAN;
    e->id = strdup(glad_record_id(r));
    e->file = strdup(file);
    if (!e->id || !e->file) { free(e->id); free(e->file); return glad_fail(GLAD_ENOMEM, "out of memory"); }
    g->n++;
    return 0;
}

static int cmp_score_desc(const void *a, const void *b)
{
    const glad_gallery_entry *x = a, *y = b;
    return (x->score < y->score) - (x->score > y->score);
}

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f); else if (*s == '>') fputs("&gt;", f); else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f); else fputc(*s, f);
    }
}

static void html_item(FILE *f, const glad_gallery_entry *e)
{
    fputs("<figure><img src=\"", f);
    html_escape(f, e->file);
    fputs("\" loading=\"lazy\"><figcaption>", f);
    html_escape(f, e->id);
    fprintf(f, "<br>label %d, score %.4g", e->label, e->score);
    if (e->decision >= 0) fprintf(f, ", decision %d%s", e->decision, e->decision != e->label && e->label >= 0 ? " (wrong)" : "");
    fputs("</figcaption></figure>\n", f);
}

int glad_gallery_write_html(glad_gallery *g, int worst, FILE *f)
{
    glad_gallery_entry *es = g->e;
    const int ne = g->n;
    if (ne) qsort(es, (size_t)ne, sizeof *es, cmp_score_desc);
    fputs("<!doctype html><meta charset=\"utf-8\"><title>glad-view</title>\n<style>body{font-family:sans-serif;margin:1em}"
          "figure{display:inline-block;margin:4px}img{max-width:100%}figcaption{font-size:12px}</style>\n"
          "<h1>Reconstructions and anomaly maps</h1>\n<p>input | reconstruction | anomaly map | ground truth</p>\n", f);
    if (g->per_image) {
        fputs("<p><a href=\"", f);
        html_escape(f, g->per_image);
        fputs("\">Per-image results (CSV)</a>: id, class, defect, label, score, decision, ads_step</p>\n", f);
    }
    fputs("<h2 id=\"fp\">Worst false positives (normal, highest scores)</h2>\n", f);
    for (int i = 0, k = 0; i < ne && k < worst; i++) if (es[i].label == 0) { html_item(f, &es[i]); k++; }
    fputs("<h2 id=\"fn\">Worst false negatives (anomalous, lowest scores)</h2>\n", f);
    for (int i = ne - 1, k = 0; i >= 0 && k < worst; i--) if (es[i].label == 1) { html_item(f, &es[i]); k++; }
    fputs("<h2 id=\"all\">All records by score</h2>\n", f);
    for (int i = 0; i < ne; i++) html_item(f, &es[i]);
    return ferror(f) ? glad_fail(GLAD_EIO, "write error") : 0;
}
