/* test_gallery.c - lib/io/gallery (glad-view's panels and index) and the
 * plot.h pieces they use: the jet colours, the stream-wide amap range, the
 * panel geometry and colours of each cell, per-record normalisation, the
 * index order and escaping; and the PNG plot written to a FILE* equals the
 * one written to a path. */
#include <unistd.h>
#include "check.h"
#include "core/glad.h"
#include "io/gallery.h"
#include "io/plot.h"

/* the panel's pixel (x, y) as r, g, b */
static const uint8_t *px(const glad_tensor *t, int x, int y, uint8_t rgb[3])
{
    int64_t H = t->shape[1], W = t->shape[2];
    for (int k = 0; k < 3; k++) rgb[k] = ((const uint8_t *)t->data)[(size_t)k * H * W + (size_t)y * W + x];
    return rgb;
}

static int is(const uint8_t *rgb, int r, int g, int b) { return rgb[0] == r && rgb[1] == g && rgb[2] == b; }

/* a record: 4x4 image of value v (u8), amap ramp 0..15 * scale, optional mask with pixel (0,0) set */
static void make(glad_record *r, const char *id, int label, double score, uint8_t v, float scale, int mask)
{
    glad_tensor t;
    glad_record_init(r);
    glad_record_set_str(r, "id", id);
    glad_record_set_int(r, "label", label);
    if (!isnan(score)) glad_record_set_f64(r, "score", score);
    glad_tensor_alloc4(&t, GLAD_DT_U8, 3, 4, 4, -1);
    memset(t.data, v, 48);
    glad_record_set_tensor(r, "image", &t);
    glad_tensor_alloc4(&t, GLAD_DT_F32, 1, 4, 4, -1);
    for (int i = 0; i < 16; i++) ((float *)t.data)[i] = (float)i * scale;
    glad_record_set_tensor(r, "amap", &t);
    if (mask) {
        glad_tensor_alloc4(&t, GLAD_DT_U8, 1, 4, 4, -1);
        ((uint8_t *)t.data)[0] = 1;
        glad_record_set_tensor(r, "mask", &t);
    }
}

static void test_jet(void)
{
    uint8_t c[3];
    glad_plot_jet(0, c); CHECK(is(c, 0, 0, 127));
    glad_plot_jet(1, c); CHECK(is(c, 127, 0, 0));
    glad_plot_jet(0.5, c); CHECK(is(c, 127, 255, 127));
    glad_plot_jet(-3, c); CHECK(is(c, 0, 0, 127));   /* clamped */
    glad_plot_jet(7, c); CHECK(is(c, 127, 0, 0));
}

static void test_range(void)
{
    glad_record r;
    double lo = INFINITY, hi = -INFINITY;
    make(&r, "a", 0, 0.5, 0, 2, 0);
    ((float *)glad_record_find(&r, "amap")->t.data)[3] = NAN;   /* ignored */
    CHECK(glad_gallery_range(&r, &lo, &hi) == 0 && lo == 0 && hi == 30);
    glad_record_remove(&r, "amap");
    CHECK(glad_gallery_range(&r, &lo, &hi) == 0 && lo == 0 && hi == 30);   /* no amap: unchanged */
    glad_record_free(&r);
}

static void test_panel(void)
{
    glad_record r;
    glad_tensor t, u;
    uint8_t c[3];
    const int n = 16, pad = 4, top = 22;
    make(&r, "p/1", 1, 0.25, 255, 1, 1);
    CHECK(glad_gallery_panel(&r, n, 0, 15, GLAD_GALLERY_NORM_GLOBAL, &t) == 0);
    CHECK(t.dtype == GLAD_DT_U8 && t.ndim == 3 && t.shape[0] == 3 && t.shape[1] == n + 26 && t.shape[2] == 4 * n + 20);
    CHECK(is(px(&t, 0, 0, c), 245, 245, 245));                  /* background */
    CHECK(is(px(&t, pad, top, c), 255, 255, 255));              /* input: u8 255 = white */
    CHECK(is(px(&t, 2 * pad + n, top, c), 200, 200, 200));      /* no recon: grey */
    /* heat map: amap 15 (bottom right) = hi = jet(1) = (127,0,0) at 55 % over white */
    CHECK(is(px(&t, 3 * pad + 3 * n - 1, top + n - 1, c), (uint8_t)(0.45 * 255 + 0.55 * 127), (uint8_t)(0.45 * 255), (uint8_t)(0.45 * 255)));
    /* mask pixel (0,0) red over the input, elsewhere the input */
    CHECK(is(px(&t, 4 * pad + 3 * n, top, c), (uint8_t)(0.4 * 255 + 153), (uint8_t)(0.4 * 255), (uint8_t)(0.4 * 255)));
    CHECK(is(px(&t, 4 * pad + 4 * n - 1, top + n - 1, c), 255, 255, 255));
    int dark = 0;   /* the caption is drawn in the top band */
    for (int x = 0; x < 4 * n + 20; x++) for (int y = 0; y < top; y++) dark += px(&t, x, y, c)[0] == 20;
    CHECK(dark > 50);
    /* per record: the same map over a wider global range looks the same as over its own */
    CHECK(glad_gallery_panel(&r, n, -100, 100, GLAD_GALLERY_NORM_RECORD, &u) == 0);
    CHECK(glad_tensor_nbytes(&t) == glad_tensor_nbytes(&u) && !memcmp(t.data, u.data, glad_tensor_nbytes(&t)));
    glad_tensor_free(&u);
    CHECK(glad_gallery_panel(&r, n, -100, 100, GLAD_GALLERY_NORM_GLOBAL, &u) == 0);
    CHECK(memcmp(t.data, u.data, glad_tensor_nbytes(&t)) != 0);
    glad_tensor_free(&u);
    CHECK(glad_gallery_panel(&r, 0, 0, 1, GLAD_GALLERY_NORM_GLOBAL, &u) == GLAD_EINVAL);
    glad_tensor_free(&t);
    /* no mask: a grey ground-truth cell */
    glad_record_remove(&r, "mask");
    CHECK(glad_gallery_panel(&r, n, 0, 15, GLAD_GALLERY_NORM_GLOBAL, &t) == 0);
    CHECK(is(px(&t, 4 * pad + 3 * n, top, c), 200, 200, 200));
    glad_tensor_free(&t);
    glad_record_free(&r);
}

static void test_index(void)
{
    glad_gallery g;
    glad_record r;
    glad_gallery_init(&g);
    const double sc[5] = {0.9, 0.1, 0.2, 0.8, 0.5};
    const int lab[5] = {0, 0, 1, 1, 0};
    char id[32], file[32];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, i == 4 ? "x<&\"%d>" : "r%d", i);
        snprintf(file, sizeof file, "%06d.png", i);
        make(&r, id, lab[i], sc[i], 0, 1, 0);
        CHECK(glad_gallery_add(&g, &r, file) == 0);
        glad_record_free(&r);
    }
    CHECK(g.n == 5 && !strcmp(g.e[2].id, "r2") && g.e[2].label == 1 && g.e[2].score == 0.2 && g.e[2].has_score);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    CHECK(glad_gallery_write_html(&g, 1, f) == 0);
    fclose(f);
    const char *fp = strstr(buf, "id=\"fp\""), *fn = strstr(buf, "id=\"fn\""), *all = strstr(buf, "id=\"all\"");
    CHECK(fp && fn && all && fp < fn && fn < all);
    /* worst false positive: normal 0.9 (000000); worst false negative: anomalous 0.2 (000002); one each */
    CHECK(fp && strstr(fp, "000000.png") < fn && strstr(fp, "000001.png") > fn);
    CHECK(fn && strstr(fn, "000002.png") < all && strstr(fn, "000003.png") > all);
    const char *a = all ? strstr(all, "000000.png") : NULL, *b = all ? strstr(all, "000003.png") : NULL,
               *c = all ? strstr(all, "000004.png") : NULL, *d = all ? strstr(all, "000002.png") : NULL,
               *e = all ? strstr(all, "000001.png") : NULL;
    CHECK(a && b && c && d && e && a < b && b < c && c < d && d < e);   /* by score, highest first */
    CHECK(strstr(buf, "<figcaption>x&lt;&amp;&quot;4&gt;<br>label 0, score 0.5</figcaption>"));
    free(buf);
    glad_gallery_free(&g);
    CHECK(g.n == 0 && g.e == NULL);
    /* no score: NAN; no label: -1 */
    make(&r, "nos", 1, NAN, 0, 1, 0);
    glad_record_remove(&r, "label");
    CHECK(glad_gallery_add(&g, &r, "a.png") == 0 && isnan(g.e[0].score) && !g.e[0].has_score && g.e[0].label == -1);
    glad_record_free(&r);
    glad_gallery_free(&g);
}

static void test_plot_file(void)
{
    double x[3] = {0, 0.5, 1}, y[3] = {0, 0.8, 1};
    glad_plot_series s = {x, y, 3, "curve", 0};
    glad_plot_opts o = {0};
    o.xmax = 1; o.ymax = 1; o.vline = NAN; o.title = "t";
    char path[] = "/tmp/glad-test-plot.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(glad_plot_lines_png(path, &o, &s, 1) == 0);
    FILE *f = fopen(path, "rb");
    char a[65536], *buf = NULL;
    size_t na = f ? fread(a, 1, sizeof a, f) : 0, n = 0;
    if (f) fclose(f);
    unlink(path);
    f = open_memstream(&buf, &n);
    CHECK(glad_plot_lines_png_file(f, &o, &s, 1) == 0);
    fclose(f);
    CHECK(na > 8 && na < sizeof a && n == na && !memcmp(a, buf, n));
    free(buf);
}

int main(void)
{
    test_jet();
    test_range();
    test_panel();
    test_index();
    test_plot_file();
    return check_done();
}
