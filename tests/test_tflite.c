/* test_tflite.c - the TFLite reader and the MobileNetV2 runner.
 * Self-contained: a tiny FlatBuffer model (one CONV_2D) built here byte by
 * byte and read back (shapes, names, per-channel dequantisation, options,
 * both operator-code fields, an unsupported op), every truncation and
 * thousands of seeded byte flips of it; the NHWC conv / depthwise kernels on
 * hand-computed TF "SAME" cases (stride 2 on an even size pads at the bottom
 * and right only). With ../shared/weights: the ImageNet proof on
 * resized_cat.bmp for both MobileNetV2 files (top-1 286 "Egyptian cat" at
 * 0.67 / 0.78, then tabby 282 and tiger cat 283), feature shapes at 224 and
 * 256, and truncations / byte flips of the real file. */
#include <stdint.h>
#include <time.h>
#include "check.h"
#include "io/image.h"
#include "models/mobilenet.h"
#include "nn/nn.h"
#include "io/tflite.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- a minimal FlatBuffer writer, front to back: a parent is written
 * before its children so every offset points forward (FlatBuffers offsets
 * are unsigned); each table's vtable sits just before it; every scalar
 * field takes a 4-byte slot (a byte field reads the low byte). ---- */
typedef struct { uint8_t b[4096]; size_t n; } fbb;

static void put32(fbb *f, size_t at, uint32_t v) { for (int k = 0; k < 4; k++) f->b[at + k] = (uint8_t)(v >> 8 * k); }
static void put16(fbb *f, size_t at, unsigned v) { f->b[at] = (uint8_t)v; f->b[at + 1] = (uint8_t)(v >> 8); }
static void align4(fbb *f) { while (f->n % 4) f->b[f->n++] = 0; }
/* table with nf slots; bit i of mask = field i present; returns the table position */
static size_t table(fbb *f, int nf, unsigned mask)
{
    align4(f);
    size_t vt = f->n;
    put16(f, vt, 4 + 2 * nf);
    put16(f, vt + 2, 4 + 4 * nf);
    for (int i = 0; i < nf; i++) put16(f, vt + 4 + 2 * i, (mask >> i & 1) ? 4 + 4 * i : 0);
    f->n = vt + 4 + 2 * nf;
    align4(f);
    size_t t = f->n;
    memset(f->b + t, 0, 4 + 4 * (size_t)nf);
    put32(f, t, (uint32_t)(t - vt));
    f->n = t + 4 + 4 * nf;
    return t;
}
static size_t slot(size_t t, int i) { return t + 4 + 4 * (size_t)i; }
static void set(fbb *f, size_t t, int i, uint32_t v) { put32(f, slot(t, i), v); }
static void ref(fbb *f, size_t at, size_t target) { put32(f, at, (uint32_t)(target - at)); }
/* vector of len elements of es bytes (data may be NULL: zeros); returns its position */
static size_t vec(fbb *f, uint32_t len, size_t es, const void *data)
{
    align4(f);
    size_t v = f->n;
    put32(f, v, len);
    if (data) memcpy(f->b + v + 4, data, len * es);
    else memset(f->b + v + 4, 0, len * es);
    f->n = v + 4 + len * es;
    return v;
}
static size_t str(fbb *f, const char *s) { size_t v = vec(f, (uint32_t)strlen(s) + 1, 1, s); put32(f, v, (uint32_t)strlen(s)); return v; }

/* The model: input (1,5,4,2) f32 -> CONV_2D 3x3 stride 2 SAME RELU6 with int8
 * weights (3,3,3,2), one scale per output channel, int32 bias with scales ->
 * output (1,3,2,3) u8. dep / bc: the OperatorCode's deprecated_builtin_code
 * and builtin_code (bc < 0: field absent). */
static const float W_SCALE[3] = {0.5f, 0.25f, 0.125f}, B_SCALE[3] = {0.01f, 0.02f, 0.03f};
static const int32_t B_Q[3] = {100, -50, 7};
static int8_t wq(int i) { return (int8_t)((i * 7) % 11 - 5); }

static float poison_scale;   /* when non-zero: the weights' second scale (a corrupt file) */

static size_t build(fbb *f, int dep, int bc)
{
    memset(f, 0, sizeof *f);
    f->n = 8;
    memcpy(f->b + 4, "TFL3", 4);
    size_t model = table(f, 5, 1 | 2 | 4 | 16);         /* version, operator_codes, subgraphs, -, buffers */
    ref(f, 0, model);
    set(f, model, 0, 3);
    size_t oc_v = vec(f, 1, 4, NULL);
    ref(f, slot(model, 1), oc_v);
    size_t oc = table(f, 4, bc >= 0 ? (1 | 4 | 8) : (1 | 4));
    ref(f, oc_v + 4, oc);
    set(f, oc, 0, (uint32_t)dep);
    set(f, oc, 2, 1);
    if (bc >= 0) set(f, oc, 3, (uint32_t)bc);
    size_t sg_v = vec(f, 1, 4, NULL);
    ref(f, slot(model, 2), sg_v);
    size_t sg = table(f, 4, 15);
    ref(f, sg_v + 4, sg);
    /* tensors */
    static const int shapes[4][4] = {{1, 5, 4, 2}, {3, 3, 3, 2}, {3, -1, 0, 0}, {1, 3, 2, 3}};
    static const int types[4] = {GLAD_TFL_FLOAT32, GLAD_TFL_INT8, GLAD_TFL_INT32, GLAD_TFL_UINT8};
    static const char *names[4] = {"input", "conv/weights", "conv/bias", "output"};
    size_t tv = vec(f, 4, 4, NULL);
    ref(f, slot(sg, 0), tv);
    for (int t = 0; t < 4; t++) {
        size_t tt = table(f, 5, t == 0 ? 15 : 31);
        ref(f, tv + 4 + 4 * t, tt);
        int nd = shapes[t][1] < 0 ? 1 : 4;
        int32_t sh[4];
        for (int d = 0; d < nd; d++) sh[d] = shapes[t][d];
        ref(f, slot(tt, 0), vec(f, (uint32_t)nd, 4, sh));
        set(f, tt, 1, (uint32_t)types[t]);
        set(f, tt, 2, (uint32_t)(t + 1));               /* buffers 1..4; 0 is the empty sentinel */
        ref(f, slot(tt, 3), str(f, names[t]));
        if (t == 0) continue;
        size_t q = table(f, 7, 4 | 8 | 64);             /* scale, zero_point, quantized_dimension */
        ref(f, slot(tt, 4), q);
        float sc[3];
        int64_t zp[3] = {0, 0, 0};
        int ns = t == 3 ? 1 : 3;
        for (int k = 0; k < 3; k++) sc[k] = t == 1 ? W_SCALE[k] : t == 2 ? B_SCALE[k] : 0.1f;
        if (t == 1 && poison_scale != 0) sc[1] = poison_scale;
        if (t == 3) zp[0] = 3;
        ref(f, slot(q, 2), vec(f, (uint32_t)ns, 4, sc));
        ref(f, slot(q, 3), vec(f, (uint32_t)ns, 8, zp));
        set(f, q, 6, 0);
    }
    int32_t in0 = 0, out3 = 3, ins[3] = {0, 1, 2};
    ref(f, slot(sg, 1), vec(f, 1, 4, &in0));
    ref(f, slot(sg, 2), vec(f, 1, 4, &out3));
    size_t ov = vec(f, 1, 4, NULL);
    ref(f, slot(sg, 3), ov);
    size_t op = table(f, 5, 31);
    ref(f, ov + 4, op);
    set(f, op, 0, 0);
    ref(f, slot(op, 1), vec(f, 3, 4, ins));
    ref(f, slot(op, 2), vec(f, 1, 4, &out3));
    set(f, op, 3, 1);                                   /* BuiltinOptions: Conv2DOptions */
    size_t co = table(f, 4, 15);
    ref(f, slot(op, 4), co);
    set(f, co, 0, GLAD_TFL_PAD_SAME);
    set(f, co, 1, 2);
    set(f, co, 2, 2);
    set(f, co, 3, GLAD_TFL_ACT_RELU6);
    /* buffers: 0 and 1 and 4 empty, 2 weights, 3 bias; the data comes last */
    size_t bv = vec(f, 5, 4, NULL), bt[5];
    ref(f, slot(model, 4), bv);
    for (int k = 0; k < 5; k++) { bt[k] = table(f, 1, (k == 2 || k == 3) ? 1 : 0); ref(f, bv + 4 + 4 * k, bt[k]); }
    uint8_t bb[12];
    for (int k = 0; k < 3; k++) memcpy(bb + 4 * k, &B_Q[k], 4);
    ref(f, slot(bt[3], 0), vec(f, 12, 1, bb));
    int8_t w[54];
    for (int i = 0; i < 54; i++) w[i] = wq(i);
    ref(f, slot(bt[2], 0), vec(f, 54, 1, w));
    return f->n;
}

static void test_handmade(void)
{
    fbb f;
    const char *err = glad_error_detail();
    glad_tflite_model *m;
    /* older files: only deprecated_builtin_code; newer: both (max taken) */
    int variants[3][2] = {{3, -1}, {3, 3}, {0, 3}};
    for (int v = 0; v < 3; v++) {
        size_t n = build(&f, variants[v][0], variants[v][1]);
        int rc = glad_tflite_parse(&m, f.b, n);
        CHECKF(rc == 0, "variant %d: %s", v, err);
        if (rc) continue;
        CHECK(m->version == 3 && m->ntensors == 4 && m->nops == 1 && m->nin == 1 && m->nout == 1);
        CHECK(m->inputs[0] == 0 && m->outputs[0] == 3);
        const glad_tflite_op *op = &m->ops[0];
        CHECK(op->code == GLAD_TFL_CONV_2D);
        CHECK(op->nin == 3 && op->in[0] == 0 && op->in[1] == 1 && op->in[2] == 2 && op->nout == 1 && op->out[0] == 3);
        CHECK(op->padding == GLAD_TFL_PAD_SAME && op->stride_w == 2 && op->stride_h == 2 && op->act == GLAD_TFL_ACT_RELU6);
        CHECK(op->dilation_w == 1 && op->dilation_h == 1);
        const glad_tflite_tensor *w = &m->tensors[1], *b = &m->tensors[2], *o = &m->tensors[3], *x = &m->tensors[0];
        CHECK(strcmp(x->name, "input") == 0 && strcmp(w->name, "conv/weights") == 0 && strcmp(o->name, "output") == 0);
        CHECK(x->ndim == 4 && x->shape[1] == 5 && x->shape[2] == 4 && x->data == NULL && x->nscale == 0);
        CHECK(w->type == GLAD_TFL_INT8 && w->nscale == 3 && w->qdim == 0 && w->numel == 54 && w->data);
        CHECK(o->type == GLAD_TFL_UINT8 && o->nscale == 1 && o->zero_point[0] == 3 && o->data == NULL);
        if (w->data) {
            int bad = 0;
            for (int i = 0; i < 54; i++) bad += fabsf(w->data[i] - W_SCALE[i / 18] * wq(i)) > 1e-7f;
            CHECK(bad == 0);
        }
        CHECK(b->numel == 3 && b->data);
        if (b->data) for (int k = 0; k < 3; k++) CHECK_NEAR(b->data[k], B_SCALE[k] * B_Q[k], 1e-6);
        glad_tflite_free(m);
    }
    /* an operator outside the subset: MAX_POOL_2D (17) */
    size_t n = build(&f, 17, 17);
    CHECK(glad_tflite_parse(&m, f.b, n) == GLAD_EUNSUPPORTED);
    CHECKF(strstr(err, "MAX_POOL_2D") != NULL, "%s", err);
    /* a graph that is not a MobileNet (2-channel input, no inverted-residual block) */
    n = build(&f, 3, 3);
    FILE *fp = fopen("build/.test_tflite_tiny.tflite", "wb");
    if (fp) {
        fwrite(f.b, 1, n, fp);
        fclose(fp);
        glad_mobilenet *mn;
        CHECK(glad_mobilenet_load(&mn, "build/.test_tflite_tiny.tflite") == GLAD_EUNSUPPORTED);
        CHECKF(strstr(err, "build/.test_tflite_tiny.tflite: ") == err, "%s", err);
        remove("build/.test_tflite_tiny.tflite");
    }
    /* a corrupt copy whose weight scale is NaN or inf (so are the weights):
     * rejected at load, naming the tensor, before the graph is looked at */
    static const float poisons[2] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        poison_scale = poisons[k];
        n = build(&f, 3, 3);
        poison_scale = 0;
        fp = fopen("build/.test_tflite_nan.tflite", "wb");
        if (!fp) { CHECK(0); break; }
        fwrite(f.b, 1, n, fp);
        fclose(fp);
        glad_mobilenet *mn = NULL;
        glad_error_clear();
        CHECK(glad_mobilenet_load(&mn, "build/.test_tflite_nan.tflite") == GLAD_ENAN && mn == NULL);
        CHECKF(strstr(err, "conv/weights") && strstr(err, "non-finite") && strstr(err, "build/.test_tflite_nan.tflite"), "%s", err);
        remove("build/.test_tflite_nan.tflite");
    }
    n = build(&f, 3, 3);
    /* wrong magic */
    f.b[5] ^= 0x20;
    CHECK(glad_tflite_parse(&m, f.b, n) == GLAD_EFORMAT && strstr(err, "TFL3"));
    f.b[5] ^= 0x20;
    /* every truncation fails (the last bytes are referenced weight data) */
    int ok = 1;
    for (size_t len = 0; len < n; len++) {
        int rc = glad_tflite_parse(&m, f.b, len);
        if (rc == 0) { glad_tflite_free(m); ok = 0; }
        if (rc != GLAD_EFORMAT && rc != 0) ok = 0;
    }
    CHECK(ok);
    /* every byte replaced by 8 seeded values: an error code or a model, never a crash */
    uint64_t s = 12345;
    int cases = 0, errors = 0, weird = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 8; k++) {
            uint8_t keep = f.b[i];
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            f.b[i] = (uint8_t)(k == 0 ? 0xff : k == 1 ? 0 : k == 2 ? keep ^ 0x80 : (s >> 33));
            int rc = glad_tflite_parse(&m, f.b, n);
            cases++;
            if (rc == 0) glad_tflite_free(m);
            else errors++;
            if (rc > 0 || rc < GLAD_EUNSUPPORTED) weird++;
            f.b[i] = keep;
        }
    CHECKF(weird == 0 && errors > cases / 4, "%d cases, %d errors, %d odd codes", cases, errors, weird);
    printf("handmade model: %zu bytes, %d byte-flip cases, %d rejected\n", n, cases, errors);
}

/* ---- kernels on hand-computed TF "SAME" cases ---- */
static void test_kernels(void)
{
    /* x[y][x] = 10y + x on 4x4, 3x3 ones, stride 2 SAME: out 2x2, pad_total =
     * (2-1)*2 + 3 - 4 = 1 -> 0 rows before, 1 after. Output (0,0) sums rows
     * and cols 0..2: 3*(0+10+20) + 3*(0+1+2) = 99; (0,1): rows 0..2, cols 2..3:
     * 2*30 + 3*5 = 75; (1,0): rows 2..3, cols 0..2: 3*50 + 2*3 = 156; (1,1): 2*50 + 2*5 = 110. */
    float x[16], x2[32], w1[9], w2[18], out[8], ws[128], dwo[8];   /* ws: K*Ho*Wo = 18*4 */
    for (int i = 0; i < 16; i++) x[i] = (float)(10 * (i / 4) + i % 4);
    for (int k = 0; k < 9; k++) w1[k] = 1.0f;
    glad_conv2d_nhwc_forward(out, x, w1, NULL, NULL, 4, 4, 1, 1, 3, 3, 2, 2, 1, 1, 0, 0, 2, 2, -INFINITY, INFINITY, ws);
    CHECK_NEAR(out[0], 99, 1e-4); CHECK_NEAR(out[1], 75, 1e-4); CHECK_NEAR(out[2], 156, 1e-4); CHECK_NEAR(out[3], 110, 1e-4);
    /* two channels interleaved (H,W,C): channel 1 = 2x; conv weights (OC=1,3,3,C=2) = (1, 0.5): twice the sums */
    for (int i = 0; i < 16; i++) { x2[2 * i] = x[i]; x2[2 * i + 1] = 2 * x[i]; }
    for (int k = 0; k < 9; k++) { w2[2 * k] = 1.0f; w2[2 * k + 1] = 0.5f; }
    float bias = -100.0f;
    glad_conv2d_nhwc_forward(out, x2, w2, &bias, NULL, 4, 4, 2, 1, 3, 3, 2, 2, 1, 1, 0, 0, 2, 2, 0.0f, 6.0f, ws);
    CHECK_NEAR(out[0], 6, 1e-4);     /* 198 - 100 clamped to 6 */
    CHECK_NEAR(out[1], 6, 1e-4);     /* 150 - 100 */
    /* depthwise, 2 channels, weights (3,3,2) = 1 and 0.5: channel 1 gives the same sums as channel 0 */
    glad_depthwise_nhwc_forward(dwo, x2, w2, NULL, 4, 4, 2, 1, 3, 3, 2, 2, 1, 1, 0, 0, 2, 2, -INFINITY, INFINITY);
    const float want[4] = {99, 75, 156, 110};
    for (int p = 0; p < 4; p++) { CHECK_NEAR(dwo[2 * p], want[p], 1e-4); CHECK_NEAR(dwo[2 * p + 1], want[p], 1e-4); }
    /* stride 1 SAME 3x3 on 4x4: pad 1 each side; corner (0,0) sums rows/cols 0..1 = 2*10 + 2*1 = 22 */
    float o16[16];
    glad_depthwise_nhwc_forward(o16, x, w1, NULL, 4, 4, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 4, 4, -INFINITY, INFINITY);
    CHECK_NEAR(o16[0], 22, 1e-4);
    /* centre (1,1): rows/cols 0..2 = 99; with dilation 2 and pad 2, (0,0) sees rows/cols {0,2}: 0+20+2+22 = 44 */
    CHECK_NEAR(o16[5], 99, 1e-4);
    glad_depthwise_nhwc_forward(o16, x, w1, NULL, 4, 4, 1, 1, 3, 3, 1, 1, 2, 2, 2, 2, 4, 4, -INFINITY, INFINITY);
    CHECK_NEAR(o16[0], 44, 1e-4);
    /* a depth multiplier of 2: (3x3, C*2) weights 1 and -1 */
    float wm[18], om[8];
    for (int k = 0; k < 9; k++) { wm[2 * k] = 1.0f; wm[2 * k + 1] = -1.0f; }
    glad_depthwise_nhwc_forward(om, x, wm, NULL, 4, 4, 1, 2, 3, 3, 2, 2, 1, 1, 0, 0, 2, 2, -INFINITY, INFINITY);
    CHECK_NEAR(om[0], 99, 1e-4); CHECK_NEAR(om[1], -99, 1e-4); CHECK_NEAR(om[7], -110, 1e-4);
}

/* ---- the real networks ---- */
static int read_all(const char *path, uint8_t **buf, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)sz);
    *n = *buf && fread(*buf, 1, (size_t)sz, f) == (size_t)sz ? (size_t)sz : 0;
    fclose(f);
    return *n ? 0 : -1;
}

static void top3(const float *p, int n, int *t)
{
    for (int r = 0; r < 3; r++) {
        int best = -1;
        for (int k = 0; k < n; k++) {
            if ((r > 0 && k == t[0]) || (r > 1 && k == t[1])) continue;
            if (best < 0 || p[k] > p[best]) best = k;
        }
        t[r] = best;
    }
}

static void test_network(const char *dir, const char *file, double p_want, const float *img)
{
    char path[512];
    snprintf(path, sizeof path, "%s/weights/%s", dir, file);
    glad_mobilenet *m;
    int rc = glad_mobilenet_load(&m, path);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return;
    CHECK(glad_mobilenet_nblocks(m) == 17);
    int blk[2];
    CHECK(glad_mobilenet_default_blocks(m, blk) == 2 && blk[0] == 5 && blk[1] == 12);
    CHECK(glad_mobilenet_nclasses(m) == 1001);
    float probs[1001];
    int t[3];
    rc = glad_mobilenet_classify(m, img, 224, 224, probs);
    CHECK(rc == 0);
    top3(probs, 1001, t);
    double sum = 0;
    for (int k = 0; k < 1001; k++) sum += probs[k];
    CHECK_NEAR(sum, 1.0, 1e-4);
    CHECKF(t[0] == 286, "%s: top-1 %d", file, t[0]);
    CHECK_NEAR(probs[286], p_want, 0.02);
    CHECKF((t[1] == 282 && t[2] == 283) || (t[1] == 283 && t[2] == 282), "%s: top-2/3 %d %d", file, t[1], t[2]);
    printf("%s: top-3 %d (%.4f) %d (%.4f) %d (%.4f)\n", file, t[0], probs[t[0]], t[1], probs[t[1]], t[2], probs[t[2]]);
    /* feature shapes: block 5 -> 32 x H/8 x W/8, block 12 -> 96 x H/16 x W/16 */
    const int sizes[2][2] = {{224, 224}, {256, 320}};
    for (int s = 0; s < 2; s++) {
        int H = sizes[s][0], W = sizes[s][1], C, h, w, C2, h2, w2;
        CHECK(glad_mobilenet_out_shape(m, 5, H, W, &C, &h, &w) == 0 && C == 32 && h == H / 8 && w == W / 8);
        CHECK(glad_mobilenet_out_shape(m, 12, H, W, &C2, &h2, &w2) == 0 && C2 == 96 && h2 == H / 16 && w2 == W / 16);
        float *x = malloc(sizeof(float) * 3 * H * W), *f5 = malloc(sizeof(float) * C * h * w), *f12 = malloc(sizeof(float) * C2 * h2 * w2);
        float *g5 = malloc(sizeof(float) * C * h * w);
        /* the cat tiled to H x W */
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) x[((size_t)c * H + y) * W + xx] = img[((size_t)c * 224 + y % 224) * 224 + xx % 224];
        float *outs[2] = {f5, f12};
        CHECK(glad_mobilenet_features(m, x, H, W, 2, blk, outs) == 0);
        /* asking for block 5 alone stops early and gives the same numbers */
        CHECK(glad_mobilenet_features(m, x, H, W, 1, blk, &g5) == 0);
        int finite = 1, same = 1;
        double mx = 0;
        for (size_t i = 0; i < (size_t)C * h * w; i++) { finite &= isfinite(f5[i]); same &= f5[i] == g5[i]; mx = fmax(mx, fabs(f5[i])); }
        for (size_t i = 0; i < (size_t)C2 * h2 * w2; i++) finite &= isfinite(f12[i]);
        CHECK(finite && same && mx > 0.1);
#ifdef _OPENMP
        /* one thread gives the same features up to float rounding */
        int nth = omp_get_max_threads();
        omp_set_num_threads(1);
        CHECK(glad_mobilenet_features(m, x, H, W, 1, blk, &g5) == 0);
        omp_set_num_threads(nth);
        double d = 0;
        for (size_t i = 0; i < (size_t)C * h * w; i++) d = fmax(d, fabs(f5[i] - g5[i]));
        CHECKF(d <= 1e-5 * mx, "1 vs %d threads: max diff %g", nth, d);
#endif
        free(x); free(f5); free(f12); free(g5);
    }
    CHECK(glad_mobilenet_out_shape(m, 17, 224, 224, blk, blk, blk) == GLAD_EINVAL);
    /* the classifier at another size: runs (global MEAN) or says the shape is wrong (7x7 pool + reshape) */
    float *x2 = calloc((size_t)3 * 256 * 256, sizeof(float));
    rc = glad_mobilenet_classify(m, x2, 256, 256, probs);
    CHECK(rc == 0 || rc == GLAD_ESHAPE);
    free(x2);
    glad_mobilenet_free(m);
}

/* a parsed (possibly mutated) model through the MobileNet loader and, when it
 * loads, a 64x64 feature pass of its last block: returns 1 on an odd code */
static int run_graph(glad_tflite_model *g, const float *x, float *f, int *runs)
{
    glad_mobilenet *mn;
    int rc = glad_mobilenet_from_model(&mn, g, NULL);
    if (rc) return rc < GLAD_EUNSUPPORTED;
    int last = glad_mobilenet_nblocks(mn) - 1, C, h, w;
    if (glad_mobilenet_out_shape(mn, last, 64, 64, &C, &h, &w) == 0 && (size_t)C * h * w <= 320 * 2 * 2 * 64) {
        rc = glad_mobilenet_features(mn, x, 64, 64, 1, &last, &f);
        (*runs)++;
    }
    glad_mobilenet_free(mn);
    return rc > 0 || rc < GLAD_EUNSUPPORTED;
}

static void test_corrupt_real(const char *dir, const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/weights/%s", dir, file);
    uint8_t *b;
    size_t n;
    if (read_all(path, &b, &n)) { CHECK(0); return; }
    glad_tflite_model *m;
    clock_t t0 = clock();
    /* truncations: every 1/64 of the file and the first 64 bytes one by one */
    int ok = 1, cases = 0;
    for (int k = 0; k < 64 + 64; k++) {
        size_t len = k < 64 ? (size_t)k : n / 64 * (size_t)(k - 64);
        int rc = glad_tflite_parse(&m, b, len);
        cases++;
        if (rc == 0) { glad_tflite_free(m); ok = 0; }
        else if (rc != GLAD_EFORMAT) ok = 0;
    }
    CHECKF(ok, "a truncation was accepted or gave another code");
    /* seeded byte flips outside the constants' data (header, tables, vectors, strings) */
    if (glad_tflite_parse(&m, b, n)) { CHECKF(0, "%s", glad_error_detail()); free(b); return; }
    uint8_t *isdata = calloc(n, 1);
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensors[i].raw_len) memset(isdata + m->tensors[i].raw_offset, 1, m->tensors[i].raw_len);
    glad_tflite_free(m);
    /* the real graph with one NaN weight: rejected at load, naming the tensor */
    if (glad_tflite_parse(&m, b, n) == 0) {
        int t = -1;
        for (int i = 0; i < m->ntensors && t < 0; i++) if (m->tensors[i].numel > 1000) t = i;
        char name[256] = "";
        if (t >= 0) { snprintf(name, sizeof name, "'%s'", m->tensors[t].name); m->tensors[t].data[777] = NAN; }
        glad_mobilenet *mn = NULL;
        CHECK(t >= 0 && glad_mobilenet_from_model(&mn, m, file) == GLAD_ENAN && mn == NULL);   /* m is freed */
        CHECKF(strstr(glad_error_detail(), name) && strstr(glad_error_detail(), file), "%s", glad_error_detail());
        glad_mobilenet_free(mn);
    }
    uint64_t s = 2024;
    int errors = 0, weird = 0, flips = 0, runs = 0;
#ifdef _OPENMP
    /* hundreds of tiny graphs: OpenMP barriers would only add waiting on a loaded machine */
    int nth = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    float *x64 = calloc(3 * 64 * 64, sizeof(float)), *f64 = malloc(sizeof(float) * 320 * 2 * 2 * 64);
    for (int c = 0; c < 600; c++) {
        size_t at;
        do {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            /* half the cases in the first 4 KiB (root, vtables, operator codes) */
            at = (c & 1) ? (size_t)(s >> 33) % (n < 4096 ? n : 4096) : (size_t)(s >> 20) % n;
        } while (isdata[at]);
        uint8_t keep = b[at];
        b[at] = (uint8_t)((c % 3 == 0) ? 0xff : keep ^ (uint8_t)(1u << (s >> 61)));
        int rc = glad_tflite_parse(&m, b, n);
        flips++;
        if (rc == 0) weird += run_graph(m, x64, f64, &runs);
        else errors++;
        if (rc > 0 || rc < GLAD_EUNSUPPORTED) weird++;
        b[at] = keep;
    }
    /* graph mutations the parser cannot see: an operator's input, stride,
     * padding, activation or code changed in the parsed model */
    static const int codes[] = {GLAD_TFL_ADD, GLAD_TFL_AVERAGE_POOL_2D, GLAD_TFL_CONV_2D, GLAD_TFL_DEPTHWISE_CONV_2D,
                                GLAD_TFL_RESHAPE, GLAD_TFL_SOFTMAX, GLAD_TFL_PAD, GLAD_TFL_MEAN, GLAD_TFL_QUANTIZE,
                                GLAD_TFL_FULLY_CONNECTED};
    for (int c = 0; c < 80; c++) {
        if (glad_tflite_parse(&m, b, n)) { CHECK(0); break; }
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        glad_tflite_op *op = &m->ops[(s >> 33) % (uint64_t)m->nops];
        int v = (int)((s >> 13) % 1000);
        switch (c % 5) {
        case 0: op->in[v % (op->nin ? op->nin : 1)] = v % (m->ntensors + 1) - 1; break;
        case 1: op->stride_h = op->stride_w = v % 4; break;
        case 2: op->padding = v % 2; op->filter_h = op->filter_w = v % 9; break;
        case 3: op->code = codes[v % 10]; break;
        default: op->out[0] = v % m->ntensors; break;
        }
        weird += run_graph(m, x64, f64, &runs);
    }
#ifdef _OPENMP
    omp_set_num_threads(nth);
#endif
    free(x64);
    free(f64);
    CHECKF(weird == 0, "%d odd return codes", weird);
    printf("%s: %d truncations rejected, %d byte flips (%d rejected), 80 graph mutations, %d graphs run, %.1f s\n", file,
           cases, flips, errors, runs, (double)(clock() - t0) / CLOCKS_PER_SEC);
    free(isdata);
    free(b);
}

int main(void)
{
    test_handmade();
    test_kernels();
    const char *sh = check_shared();
    char path[512];
    glad_tensor img = {0};
    if (sh) snprintf(path, sizeof path, "%s/weights/resized_cat.bmp", sh);
    if (!sh || glad_image_read(path, &img) != 0) {
        SKIP("../shared/weights absent: MobileNetV2 ImageNet proof, feature shapes and real-file corruption cases not run");
        return check_done();
    }
    CHECK(img.ndim == 3 && img.shape[0] == 3 && img.shape[1] == 224 && img.shape[2] == 224);
    /* the label of class 286 */
    snprintf(path, sizeof path, "%s/weights/imagenet_labels.txt", sh);
    FILE *lf = fopen(path, "r");
    char line[256] = "";
    for (int k = 0; lf && k <= 286 && fgets(line, sizeof line, lf); k++) {}
    if (lf) fclose(lf);
    line[strcspn(line, "\r\n")] = 0;
    CHECKF(strcmp(line, "Egyptian cat") == 0, "label 286 is '%s'", line);
    float *x = malloc(sizeof(float) * 3 * 224 * 224);
    CHECK(glad_tensor_image_to_f32(&img, x) == 0);      /* x/127.5 - 1, RGB */
    test_network(sh, "tf2_mobilenet_v2_1.0_224_ptq.tflite", 0.67, x);
    test_network(sh, "mobilenet_v2_1.0_224_quant.tflite", 0.78, x);
    test_corrupt_real(sh, "tf2_mobilenet_v2_1.0_224_ptq.tflite");
    test_corrupt_real(sh, "mobilenet_v2_1.0_224_quant.tflite");
    free(x);
    glad_tensor_free(&img);
    return check_done();
}
