/* test_backbone.c - the backbone dispatch (lib/models/backbone.c) against
 * the official reference outputs: the fixtures' inputs are already
 * ImageNet-normalised, so the test turns them back into [-1,1] images and
 * expects glad_backbone_features (which normalises again) to reproduce the
 * reference block / layer outputs. Also: kind detection from file contents,
 * default layers, grey input, resize to --size, raw normalisation, errors.
 * Uses the fixtures copied into tests/fixtures/ (no ../shared needed), and
 * ../shared/weights for mobilenetv2 when present. */
#include <stdlib.h>
#include "check.h"
#include "models/backbone.h"
#include "io/safetensors.h"

static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};

/* image in [-1,1] whose ImageNet normalisation is x (3,H,W) */
static float *denormalise(const float *x, int H, int W)
{
    size_t n = (size_t)H * W;
    float *img = malloc(3 * n * sizeof(float));
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < n; i++) img[c * n + i] = (x[c * n + i] * stdv[c] + mean[c]) * 2.0f - 1.0f;
    return img;
}

static double max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* open weights w (kind NULL: detected, size 0: the default), check that the
 * file is detected as want and that the default layers are dl_want[0..nd) */
static glad_backbone *open_checked(const char *w, const char *kind, int size, const char *want, int nd, const int *dl_want)
{
    const char *det = glad_backbone_detect(w);
    CHECKF(det && !strcmp(det, want), "%s detected as %s", w, det ? det : "nothing");
    glad_backbone_opts o = {0};
    o.kind = kind;
    o.weights = w;
    o.size = size;
    glad_backbone *bb;
    int rc = glad_backbone_open(&bb, &o);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return NULL;
    CHECK(!strcmp(glad_backbone_kind(bb), want));
    int dl[GLAD_BACKBONE_MAX_LAYERS], n = glad_backbone_default_layers(bb, dl);
    CHECKF(n == nd && !memcmp(dl, dl_want, sizeof(int) * (size_t)nd), "%s default layers", want);
    return bb;
}

static void test_vit(void)
{
    const char *w = "tests/fixtures/dino-vit.weights.safetensors";
    /* depth 4: every quarter of the depth = blocks 1,2,3,4 */
    static const int dl[] = {1, 2, 3, 4};
    glad_backbone *bb = open_checked(w, NULL, 0, "vit", 4, dl);
    if (!bb) return;
    int lo, hi, rc;
    glad_backbone_layer_range(bb, &lo, &hi);
    CHECK(lo == 1 && hi == 4);
    glad_backbone_opts o = {0};
    o.weights = w;
    glad_st *st;
    if (glad_st_open(&st, "tests/fixtures/dino-vit.case.safetensors")) { CHECKF(0, "vit case fixture missing"); glad_backbone_close(bb); return; }
    const char *cases[] = {"s32", "s64", "s48x40"};
    for (int k = 0; k < 3; k++) {
        char name[64];
        glad_tensor x, ref;
        snprintf(name, sizeof name, "%s.x", cases[k]);
        if (glad_st_get_f32(st, name, &x)) { CHECKF(0, "%s missing", name); continue; }
        int H = (int)x.shape[2], W = (int)x.shape[3], h = H / 8, wd = W / 8, D = 64;
        /* record 1 of the batch */
        float *img = denormalise((float *)x.data + (size_t)3 * H * W, H, W);
        int layers[2] = {2, 4};
        float *out[2];
        int c[2], hh[2], ww[2];
        rc = glad_backbone_features(bb, img, 3, H, W, 2, layers, out, c, hh, ww);
        CHECKF(rc == 0, "%s: %s", cases[k], glad_strerror(rc));
        if (rc) { free(img); glad_tensor_free(&x); continue; }
        for (int l = 0; l < 2; l++) {
            CHECK(c[l] == D && hh[l] == h && ww[l] == wd);
            snprintf(name, sizeof name, "%s.block%d", cases[k], layers[l]);
            if (glad_st_get_f32(st, name, &ref)) { CHECKF(0, "%s missing", name); continue; }
            /* ref (2, 1+N, D): token n+1 of record 1 is feature column n */
            const float *r1 = (float *)ref.data + (size_t)(1 + h * wd) * D;
            double e = 0;
            for (int n = 0; n < h * wd; n++)
                for (int d = 0; d < D; d++) e = fmax(e, fabs(out[l][(size_t)d * h * wd + n] - r1[(size_t)(1 + n) * D + d]));
            e /= max_abs(r1, (size_t)(1 + h * wd) * D);
            CHECKF(e < 1e-4, "%s through the backbone: rel err %.3g", name, e);
            glad_tensor_free(&ref);
            free(out[l]);
        }
        /* the grey version of a grey image equals its 3-channel copy */
        if (k == 0) {
            float *g = malloc((size_t)H * W * sizeof(float)), *g3 = malloc((size_t)3 * H * W * sizeof(float));
            for (int i = 0; i < H * W; i++) g[i] = g3[i] = g3[H * W + i] = g3[2 * H * W + i] = img[i];
            float *o1, *o3;
            int c1, h1, w1;
            CHECK(glad_backbone_features(bb, g, 1, H, W, 1, layers, &o1, &c1, &h1, &w1) == 0);
            CHECK(glad_backbone_features(bb, g3, 3, H, W, 1, layers, &o3, &c1, &h1, &w1) == 0);
            CHECK(o1 && o3 && !memcmp(o1, o3, (size_t)c1 * h1 * w1 * sizeof(float)));
            free(o1); free(o3); free(g); free(g3);
            /* a 2-channel image is refused, a layer out of range too */
            float *bad;
            int lay0 = 0, lay5 = 5;
            CHECK(glad_backbone_features(bb, img, 2, H, W, 1, layers, &bad, &c1, &h1, &w1) == GLAD_ESHAPE && bad == NULL);
            CHECK(glad_backbone_features(bb, img, 3, H, W, 1, &lay0, &bad, &c1, &h1, &w1) == GLAD_EINVAL);
            CHECK(glad_backbone_features(bb, img, 3, H, W, 1, &lay5, &bad, &c1, &h1, &w1) == GLAD_EINVAL);
            /* an odd size is rounded to the patch grid: 37 -> 40 */
            float *odd = calloc((size_t)3 * 37 * 37, sizeof(float));
            CHECK(glad_backbone_features(bb, odd, 3, 37, 37, 1, layers, &bad, &c1, &h1, &w1) == 0 && h1 == 5 && w1 == 5);
            free(bad); free(odd);
        }
        free(img);
        glad_tensor_free(&x);
    }
    glad_st_close(st);
    glad_backbone_close(bb);
    /* --size and --norm raw take effect: a different size gives another grid;
     * raw input gives other features than ImageNet-normalised input */
    o.size = 48;
    CHECK(glad_backbone_open(&bb, &o) == 0);
    float *img = calloc((size_t)3 * 32 * 32, sizeof(float)), *f1 = NULL, *f2 = NULL;
    for (int i = 0; i < 3 * 32 * 32; i++) img[i] = (float)((i * 37) % 200) / 100.0f - 1.0f;
    int one = 1, c, h, wd;
    CHECK(glad_backbone_features(bb, img, 3, 32, 32, 1, &one, &f1, &c, &h, &wd) == 0 && h == 6 && wd == 6);
    /* glad_backbone_set_size: the open backbone at another size gives what a
     * backbone opened at that size gives; a bad size is refused and changes nothing */
    {
        float *fs = NULL, *fo = NULL, *fb = NULL;
        int c2, h2, w2;
        glad_backbone *b64;
        glad_backbone_opts o64 = o;
        o64.size = 64;
        CHECK(glad_backbone_set_size(bb, 64) == 0);
        CHECK(glad_backbone_features(bb, img, 3, 32, 32, 1, &one, &fs, &c2, &h2, &w2) == 0 && h2 == 8 && w2 == 8);
        CHECK(glad_backbone_open(&b64, &o64) == 0);
        if (b64) {
            CHECK(glad_backbone_features(b64, img, 3, 32, 32, 1, &one, &fo, &c2, &h2, &w2) == 0);
            CHECK(fs && fo && !memcmp(fs, fo, (size_t)c2 * h2 * w2 * sizeof(float)));
            glad_backbone_close(b64);
        }
        CHECK(glad_backbone_set_size(bb, 60) == GLAD_EINVAL && glad_backbone_set_size(bb, -8) == GLAD_EINVAL && glad_backbone_set_size(bb, 8200) == GLAD_EINVAL);
        CHECK(glad_backbone_features(bb, img, 3, 32, 32, 1, &one, &fb, &c2, &h2, &w2) == 0 && h2 == 8 && w2 == 8);
        CHECK(glad_backbone_set_size(bb, 48) == 0);
        free(fs); free(fo); free(fb);
    }
    glad_backbone_close(bb);
    o.norm = GLAD_BB_NORM_RAW;
    CHECK(glad_backbone_open(&bb, &o) == 0);
    CHECK(glad_backbone_features(bb, img, 3, 32, 32, 1, &one, &f2, &c, &h, &wd) == 0);
    CHECK(f1 && f2 && memcmp(f1, f2, (size_t)c * h * wd * sizeof(float)) != 0);
    glad_backbone_close(bb);
    free(f1); free(f2); free(img);
    /* a size that is not a multiple of the patch is refused at open */
    o.size = 50;
    CHECK(glad_backbone_open(&bb, &o) == GLAD_EINVAL && bb == NULL && strstr(glad_error_detail(), "multiple of 8"));
}

static void test_resnet(void)
{
    static const int dl[] = {2, 3};
    glad_backbone *bb = open_checked("tests/fixtures/wide-resnet.weights.safetensors", "resnet", 0, "resnet", 2, dl);
    if (!bb) return;
    int rc;
    glad_st *st;
    if (glad_st_open(&st, "tests/fixtures/wide-resnet.case.safetensors")) { CHECKF(0, "resnet case fixture missing"); glad_backbone_close(bb); return; }
    glad_tensor x;
    CHECK(glad_st_get_f32(st, "x", &x) == 0);
    int H = (int)x.shape[2], W = (int)x.shape[3];
    float *img = denormalise(x.data, H, W);
    int layers[3] = {1, 2, 3};
    float *out[3];
    int c[3], h[3], wd[3];
    rc = glad_backbone_features(bb, img, 3, H, W, 3, layers, out, c, h, wd);
    CHECKF(rc == 0, "%s", glad_strerror(rc));
    for (int l = 0; l < 3 && !rc; l++) {
        char name[32];
        glad_tensor ref;
        snprintf(name, sizeof name, "layer%d", layers[l]);
        if (glad_st_get_f32(st, name, &ref)) { CHECKF(0, "%s missing", name); continue; }
        size_t n = (size_t)c[l] * h[l] * wd[l];
        CHECK((int64_t)c[l] == ref.shape[1] && (int64_t)h[l] == ref.shape[2] && (int64_t)wd[l] == ref.shape[3]);
        double e = 0;
        for (size_t i = 0; i < n; i++) e = fmax(e, fabs(out[l][i] - ((float *)ref.data)[i]));
        e /= max_abs(ref.data, n);
        CHECKF(e < 1e-4, "%s through the backbone: rel err %.3g", name, e);
        glad_tensor_free(&ref);
        free(out[l]);
    }
    free(img);
    glad_tensor_free(&x);
    glad_st_close(st);
    glad_backbone_close(bb);
}

static void test_mobilenet(void)
{
    const char *sh = check_shared();
    char w[600];
    snprintf(w, sizeof w, "%s/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite", sh ? sh : "../shared");
    FILE *f = fopen(w, "rb");
    if (!f) { SKIP("mobilenetv2 backbone: %s absent", w); return; }
    fclose(f);
    static const int dl[] = {5, 12};
    glad_backbone *bb = open_checked(w, NULL, 64, "mobilenetv2", 2, dl);
    if (!bb) return;
    /* a 48x48 grey image resized to 64: stride 8 and 16 maps */
    float *img = malloc(48 * 48 * sizeof(float)), *out[2];
    for (int i = 0; i < 48 * 48; i++) img[i] = (float)((i * 13) % 100) / 50.0f - 1.0f;
    int c[2], h[2], wd[2];
    CHECK(glad_backbone_features(bb, img, 1, 48, 48, 2, dl, out, c, h, wd) == 0);
    CHECK(c[0] == 32 && h[0] == 8 && wd[0] == 8 && c[1] == 96 && h[1] == 4 && wd[1] == 4);
    int finite = 1;
    for (int i = 0; i < 32 * 64; i++) finite &= isfinite(out[0][i]);
    CHECK(finite && max_abs(out[0], 32 * 64) > 0);
    free(out[0]); free(out[1]); free(img);
    glad_backbone_close(bb);
    glad_backbone_opts o = {0};
    o.weights = w;
    o.size = 48;   /* not a multiple of 32 */
    CHECK(glad_backbone_open(&bb, &o) == GLAD_EINVAL);
}

int main(void)
{
    test_vit();
    test_resnet();
    test_mobilenet();
    /* detection and errors */
    const char *err = glad_error_detail();
    glad_backbone *bb;
    glad_backbone_opts o = {0};
    CHECK(glad_backbone_detect("tests/fixtures/does-not-exist") == NULL);
    CHECK(glad_backbone_detect("tests/fixtures/metrics.case.safetensors") == NULL);
    o.weights = "tests/fixtures/metrics.case.safetensors";
    CHECK(glad_backbone_open(&bb, &o) == GLAD_EFORMAT && strstr(err, "metrics.case"));
    o.kind = "alexnet";
    CHECK(glad_backbone_open(&bb, &o) == GLAD_EUNSUPPORTED && strstr(err, "alexnet"));
    o.kind = "vit";
    o.weights = "tests/fixtures/wide-resnet.weights.safetensors";   /* wrong kind: an error naming a key */
    glad_error_clear();
    CHECK(glad_backbone_open(&bb, &o) < 0 && strstr(err, "wide-resnet.weights") && strstr(err, "tensor"));
    return check_done();
}
