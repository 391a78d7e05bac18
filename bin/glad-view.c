/* glad-view - pictures of what the model did: one PNG panel per record
 * (input | reconstruction | anomaly map over the input | ground truth) and an
 * index.html gallery sorted by score, the worst false positives and false
 * negatives first. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "io/image.h"
#include "io/plot.h"
#include "imgproc/resize.h"

static const char usage[] =
    "Usage: glad-view --out DIR [OPTION]... [FILE]\n"
    "Write a PNG panel per record of a scored stream: input | reconstruction |\n"
    "anomaly map as a heat map over the input | ground truth (mask in red), with\n"
    "the id, label and score; and DIR/index.html, a gallery sorted by score with\n"
    "the worst false positives (normal records scored highest) and false\n"
    "negatives (anomalous records scored lowest) first.\n"
    "\n"
    "  -d, --out DIR        output folder (created)\n"
    "      --norm global|record  heat-map range: over the whole stream (default, panels\n"
    "                       comparable) or per record\n"
    "      --cell N         size of each picture in the panel (default 128)\n"
    "      --limit N        at most N panels (default all)\n"
    "      --worst N        records in each worst-of list (default 8)\n"
    "  -h, --help, -V, --version\n";

typedef struct { char *id, *file; double score; int label, has_score; } entry;

/* jet colour map of v in [0,1] */
static void jet(double v, uint8_t *rgb)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    double r = 1.5 - fabs(4 * v - 3), g = 1.5 - fabs(4 * v - 2), b = 1.5 - fabs(4 * v - 1);
    rgb[0] = (uint8_t)(255 * (r < 0 ? 0 : r > 1 ? 1 : r));
    rgb[1] = (uint8_t)(255 * (g < 0 ? 0 : g > 1 ? 1 : g));
    rgb[2] = (uint8_t)(255 * (b < 0 ? 0 : b > 1 ? 1 : b));
}

/* a (C,H,W) tensor as floats resampled (nearest) to n x n, values as given */
static float *cell_f(const glad_tensor *t, int n, int image, int *C)
{
    int c, h, w;
    if (glad_tensor_chw(t, &c, &h, &w)) return NULL;
    size_t k = glad_tensor_numel(t);
    float *a = malloc(k * sizeof(float)), *b = malloc((size_t)c * n * n * sizeof(float));
    if (!a || !b) { free(a); free(b); return NULL; }
    if (image) glad_tensor_image_to_f32(t, a); else glad_tensor_to_f32(t, a);
    glad_resize_nearest_f32(b, n, n, a, c, h, w);
    free(a);
    *C = c;
    return b;
}

static void put_rgb(uint8_t *px, int W, int x, int y, const uint8_t *rgb)
{
    uint8_t *p = px + ((size_t)y * W + x) * 3;
    p[0] = rgb[0]; p[1] = rgb[1]; p[2] = rgb[2];
}

static void img_rgb(const float *f, int C, int n, int x, int y, uint8_t *rgb)
{
    size_t hw = (size_t)n * n, i = (size_t)y * n + x;
    for (int k = 0; k < 3; k++) {
        float v = (f[(C == 3 ? k : 0) * hw + i] + 1) * 127.5f;
        rgb[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

static int panel(const char *path, const glad_record *r, int n, double lo, double hi, int per_record)
{
    const int pad = 4, top = 22, W = 4 * n + 5 * pad, H = n + top + pad;
    uint8_t *px = calloc((size_t)W * H * 3, 1);
    if (!px) return GLAD_ENOMEM;
    memset(px, 245, (size_t)W * H * 3);
    const glad_tensor *ti = NULL, *tr = NULL, *ta = NULL, *tm = NULL;
    glad_record_get_tensor(r, "image", &ti);
    glad_record_get_tensor(r, "recon", &tr);
    glad_record_get_tensor(r, "amap", &ta);
    glad_record_get_tensor(r, "mask", &tm);
    int ci = 0, cr = 0, ca = 0, cm = 0;
    float *fi = ti ? cell_f(ti, n, 1, &ci) : NULL, *fr = tr ? cell_f(tr, n, 1, &cr) : NULL, *fa = ta ? cell_f(ta, n, 0, &ca) : NULL,
          *fm = tm ? cell_f(tm, n, 0, &cm) : NULL;
    if (fa && per_record) {
        lo = hi = fa[0];
        for (int i = 1; i < n * n; i++) { if (fa[i] < lo) lo = fa[i]; if (fa[i] > hi) hi = fa[i]; }
    }
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            uint8_t a[3] = {200, 200, 200}, b[3] = {200, 200, 200}, c[3] = {200, 200, 200}, d[3] = {0, 0, 0};
            if (fi) { img_rgb(fi, ci, n, x, y, a); memcpy(c, a, 3); memcpy(d, a, 3); }
            if (fr) img_rgb(fr, cr, n, x, y, b);
            if (fa) {   /* heat map blended half over the input */
                uint8_t h[3];
                jet(hi > lo ? (fa[(size_t)y * n + x] - lo) / (hi - lo) : 0, h);
                for (int k = 0; k < 3; k++) c[k] = (uint8_t)(0.45 * c[k] + 0.55 * h[k]);
            }
            if (fm && fm[(size_t)y * n + x] > 0.5) { d[0] = (uint8_t)(0.4 * d[0] + 153); d[1] = (uint8_t)(0.4 * d[1]); d[2] = (uint8_t)(0.4 * d[2]); }
            else if (!fm) memset(d, 200, 3);
            int Y = top + y;
            put_rgb(px, W, pad + x, Y, a);
            put_rgb(px, W, 2 * pad + n + x, Y, b);
            put_rgb(px, W, 3 * pad + 2 * n + x, Y, c);
            put_rgb(px, W, 4 * pad + 3 * n + x, Y, d);
        }
    char line[512];
    double sc;
    int64_t lab = -1;
    glad_record_get_int(r, "label", &lab);
    int has = glad_record_get_f64(r, "score", &sc) == 0;
    snprintf(line, sizeof line, "%.60s  label %lld  score %s", glad_record_id(r), (long long)lab, "");
    if (has) snprintf(line + strlen(line), sizeof line - strlen(line), "%.4g", sc);
    int64_t st;
    if (glad_record_get_int(r, "ads_step", &st) == 0) snprintf(line + strlen(line), sizeof line - strlen(line), "  ads_step %lld", (long long)st);
    static const uint8_t black[3] = {20, 20, 20};
    glad_plot_text(px, W, H, pad, 4, line, 1, black);
    glad_tensor t;
    int rc = glad_tensor_alloc4(&t, GLAD_DT_U8, 3, H, W, -1);
    if (rc == 0) {
        for (int k = 0; k < 3; k++)
            for (size_t i = 0; i < (size_t)W * H; i++) ((uint8_t *)t.data)[k * (size_t)W * H + i] = px[i * 3 + k];
        rc = glad_image_write_png(path, &t);
        glad_tensor_free(&t);
    }
    free(fi); free(fr); free(fa); free(fm); free(px);
    return rc;
}

static int cmp_score_desc(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return (x->score < y->score) - (x->score > y->score);
}

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f); else if (*s == '>') fputs("&gt;", f); else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f); else fputc(*s, f);
    }
}

static void html_item(FILE *f, const entry *e)
{
    fputs("<figure><img src=\"", f);
    html_escape(f, e->file);
    fputs("\" loading=\"lazy\"><figcaption>", f);
    html_escape(f, e->id);
    fprintf(f, "<br>label %d, score %.4g</figcaption></figure>\n", e->label, e->score);
}

int main(int argc, char **argv)
{
    cli_init("glad-view");
    enum { O_NORM = 256, O_CELL, O_LIMIT, O_WORST };
    static const struct option lo[] = {
        {"out", required_argument, 0, 'd'}, {"norm", required_argument, 0, O_NORM}, {"cell", required_argument, 0, O_CELL},
        {"limit", required_argument, 0, O_LIMIT}, {"worst", required_argument, 0, O_WORST},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    const char *dir = NULL;
    int per_record = 0, c;
    long cell = 128, limit = -1, worst = 8;
    while ((c = cli_getopt(argc, argv, "d:hV", lo)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case O_NORM: if (!strcmp(optarg, "record")) per_record = 1; else if (!strcmp(optarg, "global")) per_record = 0; else return cli_usage_error("--norm takes global or record"); break;
        case O_CELL: if (cli_parse_int("--cell", optarg, 16, 2048, &cell)) return CLI_USAGE; break;
        case O_LIMIT: if (cli_parse_int("--limit", optarg, 0, 100000000, &limit)) return CLI_USAGE; break;
        case O_WORST: if (cli_parse_int("--worst", optarg, 0, 100000, &worst)) return CLI_USAGE; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (!dir) return cli_usage_error("--out DIR is required");
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    const char *in = optind < argc ? argv[optind] : "-";
    if (mkdir(dir, 0755) && errno != EEXIST) return cli_error("%s: cannot create: %s", dir, strerror(errno));
    /* standard input is read twice (global map range, then panels): keep a copy */
    char tmp[4200] = "";
    if (!strcmp(in, "-")) {
        snprintf(tmp, sizeof tmp, "%.4000s/.stdin.msgpack", dir);
        FILE *o = fopen(tmp, "wb");
        if (!o) return cli_error("%s: cannot write", tmp);
        char buf[65536];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, k, o);
        if (fclose(o)) return cli_error("%s: cannot write", tmp);
        in = tmp;
    }
    glad_reader *rd;
    glad_record r;
    glad_record_init(&r);
    int rc, status = CLI_OK;
    double lo_ = INFINITY, hi_ = -INFINITY;
    if ((rc = glad_reader_open(&rd, in)) < 0) { status = cli_reader_error(rd, in); glad_reader_close(rd); goto done; }
    while ((rc = glad_reader_next(rd, &r)) == 1) {
        const glad_tensor *ta;
        if (glad_record_get_tensor(&r, "amap", &ta)) continue;
        size_t n = glad_tensor_numel(ta);
        float *f = malloc(n * sizeof(float));
        if (f && glad_tensor_to_f32(ta, f) == 0)
            for (size_t i = 0; i < n; i++) if (isfinite(f[i])) { if (f[i] < lo_) lo_ = f[i]; if (f[i] > hi_) hi_ = f[i]; }
        free(f);
    }
    if (rc < 0) status = cli_reader_error(rd, in);
    glad_reader_close(rd);
    if (status) goto done;
    entry *es = NULL;
    int ne = 0, cap = 0;
    if ((rc = glad_reader_open(&rd, in)) < 0) { status = cli_reader_error(rd, in); glad_reader_close(rd); goto done; }
    while (status == CLI_OK && (limit < 0 || ne < limit) && (rc = glad_reader_next(rd, &r)) == 1) {
        const char *id = glad_record_id(&r);
        const glad_tensor *ti;
        if (glad_record_get_tensor(&r, "image", &ti)) { status = cli_rec_error(id, "image", "missing"); break; }
        if (ne == cap) { cap = cap ? cap * 2 : 64; entry *ne_ = realloc(es, sizeof *es * (size_t)cap); if (!ne_) { status = cli_error("out of memory"); break; } es = ne_; }
        entry *e = &es[ne];
        memset(e, 0, sizeof *e);
        char name[320], path[4600];
        snprintf(name, sizeof name, "%06d.png", ne);
        snprintf(path, sizeof path, "%.4000s/%s", dir, name);
        int64_t lab = -1;
        glad_record_get_int(&r, "label", &lab);
        e->label = (int)lab;
        e->has_score = glad_record_get_f64(&r, "score", &e->score) == 0;
        if (!e->has_score) e->score = NAN;
        e->id = strdup(id);
        e->file = strdup(name);
        ne++;
        if ((rc = panel(path, &r, (int)cell, lo_, hi_, per_record))) status = cli_rec_error(id, NULL, "cannot write %s: %s", path, glad_strerror(rc));
    }
    if (status == CLI_OK && rc < 0) status = cli_reader_error(rd, in);
    glad_reader_close(rd);
    if (status == CLI_OK) {
        qsort(es, (size_t)ne, sizeof *es, cmp_score_desc);
        char path[4200];
        snprintf(path, sizeof path, "%.4000s/index.html", dir);
        FILE *f = fopen(path, "w");
        if (!f) status = cli_error("%s: cannot write", path);
        else {
            fputs("<!doctype html><meta charset=\"utf-8\"><title>glad-view</title>\n<style>body{font-family:sans-serif;margin:1em}"
                  "figure{display:inline-block;margin:4px}img{max-width:100%}figcaption{font-size:12px}</style>\n"
                  "<h1>Reconstructions and anomaly maps</h1>\n<p>input | reconstruction | anomaly map | ground truth</p>\n", f);
            fputs("<h2 id=\"fp\">Worst false positives (normal, highest scores)</h2>\n", f);
            for (int i = 0, k = 0; i < ne && k < worst; i++) if (es[i].label == 0) { html_item(f, &es[i]); k++; }
            fputs("<h2 id=\"fn\">Worst false negatives (anomalous, lowest scores)</h2>\n", f);
            for (int i = ne - 1, k = 0; i >= 0 && k < worst; i--) if (es[i].label == 1) { html_item(f, &es[i]); k++; }
            fputs("<h2 id=\"all\">All records by score</h2>\n", f);
            for (int i = 0; i < ne; i++) html_item(f, &es[i]);
            if (fclose(f)) status = cli_error("%s: write failed", path);
        }
    }
    for (int i = 0; i < ne; i++) { free(es[i].id); free(es[i].file); }
    free(es);
done:
    glad_record_free(&r);
    if (tmp[0]) unlink(tmp);
    return status;
}
