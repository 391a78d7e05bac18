/* test_resnet.c - the Bottleneck ResNet feature extractor against torchvision
 * (wide-resnet fixture: ResNet(Bottleneck,[1,2,1,1],width_per_group=16), x
 * [2,3,64,64] -> layer1..3 within 1e-4 of the max-abs reference; fixtures from
 * ../shared/fixtures, else the copies in tests/fixtures), an odd input size
 * against torchvision (tests/fixtures/wide-resnet-odd.case, made by
 * tests/ref/resnet_fixture.py, also holding a MaxPool2d(3,2,1) case), with
 * and without Winograd, subsets of layers, exact batch invariance, 1 and 3
 * threads, tiny inputs, a file without config metadata, and load errors
 * naming the bad key. */
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>
#include "check.h"
#include "models/resnet.h"
#include "nn/nn.h"
#include "io/safetensors.h"

static double rel_err(const float *a, const float *ref, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) { m = fmax(m, fabs((double)a[i] - ref[i])); r = fmax(r, fabs((double)ref[i])); }
    return r > 0 ? m / r : m;
}

/* ../shared/fixtures/NAME if ../shared exists, else tests/fixtures/NAME */
static const char *fixture(char *buf, size_t n, const char *name)
{
    const char *sh = check_shared();
    snprintf(buf, n, "%s/fixtures/%s", sh ? sh : "tests", name);
    if (access(buf, R_OK) != 0) snprintf(buf, n, "tests/fixtures/%s", name);
    return buf;
}

/* Runs layers[] on x (B records) into freshly allocated outputs. */
static int run(glad_resnet *r, const float *x, int B, int H, int W, int nl, const int *layers, float **out, size_t *n)
{
    for (int i = 0; i < nl; i++) {
        int C, h, w;
        out[i] = NULL;
        if (glad_resnet_out_shape(r, layers[i], H, W, &C, &h, &w)) return -1;
        n[i] = (size_t)B * C * h * w;
        out[i] = malloc(n[i] * sizeof(float));
    }
    return glad_resnet_forward(r, x, B, H, W, nl, layers, out);
}

/* Writes a copy of the weights file with one change: drop `drop`, or reshape
 * `reshape` to (a,b,c,d) (same element count), or set element 0 of `poke`
 * to poke_value, and the given config (NULL: no metadata). */
static int write_variant(const char *src, const char *dst, const char *drop, const char *reshape, const int64_t *shape,
                         const char *poke, float poke_value, const char *config)
{
    glad_st *st;
    if (glad_st_open(&st, src)) return -1;
    int n = glad_st_count(st), k = 0, rc;
    const char **names = calloc((size_t)n, sizeof *names);
    glad_tensor *ts = calloc((size_t)n, sizeof *ts);
    const glad_tensor **tp = calloc((size_t)n, sizeof *tp);
    for (int i = 0; i < n; i++) {
        const glad_st_entry *e = glad_st_entry_at(st, i);
        if (drop && strcmp(e->name, drop) == 0) continue;
        glad_st_get(st, e->name, &ts[k]);
        if (reshape && strcmp(e->name, reshape) == 0) { ts[k].ndim = 4; memcpy(ts[k].shape, shape, 4 * sizeof *shape); }
        if (poke && strcmp(e->name, poke) == 0) ((float *)ts[k].data)[0] = poke_value;
        names[k] = e->name;
        tp[k] = &ts[k];
        k++;
    }
    const char *mk[1] = {"config"}, *mv[1] = {config};
    rc = glad_st_save(dst, k, names, tp, config ? 1 : 0, mk, mv);
    for (int i = 0; i < k; i++) glad_tensor_free(&ts[i]);
    free(names); free(ts); free(tp);
    glad_st_close(st);
    return rc;
}

static const char *CFG = "{\"block\": \"bottleneck\", \"layers\": [1, 2, 1, 1], \"width_per_group\": 16}";

static void load_error(const char *wp, const char *tmp, const char *drop, const char *reshape, const int64_t *shape,
                       const char *poke, float poke_value, const char *config, int want_rc, const char *want_key)
{
    glad_resnet *r = NULL;
    CHECK(write_variant(wp, tmp, drop, reshape, shape, poke, poke_value, config) == 0);
    glad_error_clear();
    int rc = glad_resnet_load(&r, tmp);
    const char *err = glad_error_detail();
    CHECKF(rc == want_rc, "expected %d got %d (%s)", want_rc, rc, err);
    CHECKF(strstr(err, want_key) != NULL, "error '%s' should name '%s'", err, want_key);
    if (rc == 0) glad_resnet_free(r);
    unlink(tmp);
}

static void odd_case(glad_resnet *r)
{
    char cp[512];
    glad_st *st;
    if (glad_st_open(&st, fixture(cp, sizeof cp, "wide-resnet-odd.case.safetensors"))) { CHECKF(0, "odd-size fixture missing"); return; }
    glad_tensor x, mi, mo;
    CHECK(glad_st_get_f32(st, "x", &x) == 0 && x.ndim == 4);
    int B = (int)x.shape[0], H = (int)x.shape[2], W = (int)x.shape[3];
    CHECKF(H % 2 == 1 && W % 2 == 1, "the odd case has odd sizes (%dx%d)", H, W);
    int layers[3] = {1, 2, 3};
    float *out[3];
    size_t n[3];
    CHECK(run(r, x.data, B, H, W, 3, layers, out, n) == 0);
    for (int i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof key, "layer%d", i + 1);
        glad_tensor ref;
        CHECK(glad_st_get_f32(st, key, &ref) == 0);
        int C, h, w;
        glad_resnet_out_shape(r, i + 1, H, W, &C, &h, &w);
        CHECKF(ref.ndim == 4 && ref.shape[1] == C && ref.shape[2] == h && ref.shape[3] == w,
               "%s shape (%d,%d,%d) vs torch (%lld,%lld,%lld)", key, C, h, w, (long long)ref.shape[1], (long long)ref.shape[2],
               (long long)ref.shape[3]);
        if (glad_tensor_numel(&ref) == n[i]) {
            double e = rel_err(out[i], ref.data, n[i]);
            CHECKF(e < 1e-4, "odd %dx%d %s rel err %.3g", H, W, key, e);
            printf("odd %dx%d %s: rel err %.2e\n", H, W, key, e);
        }
        glad_tensor_free(&ref);
        free(out[i]);
    }
    /* max pooling alone, odd and even sizes, against torch's MaxPool2d(3,2,1) */
    CHECK(glad_st_get_f32(st, "maxpool.x", &mi) == 0 && glad_st_get_f32(st, "maxpool.out", &mo) == 0);
    if (mi.ndim == 4 && mo.ndim == 4) {
        int BC = (int)(mi.shape[0] * mi.shape[1]), h = (int)mi.shape[2], w = (int)mi.shape[3];
        size_t m = glad_tensor_numel(&mo);
        CHECK(mo.shape[2] == (h - 1) / 2 + 1 && mo.shape[3] == (w - 1) / 2 + 1);
        float *o = malloc(m * sizeof(float));
        glad_maxpool3s2_forward(o, mi.data, BC, h, w);
        CHECKF(memcmp(o, mo.data, m * sizeof(float)) == 0, "maxpool %dx%d differs from torch", h, w);
        free(o);
    }
    glad_tensor_free(&mi); glad_tensor_free(&mo); glad_tensor_free(&x);
    glad_st_close(st);
}

int main(void)
{
    char wp[512], cp[512], tmp[256];
    if (!check_shared()) SKIP("../shared absent: using the copies in tests/fixtures");
    fixture(wp, sizeof wp, "wide-resnet.weights.safetensors");
    fixture(cp, sizeof cp, "wide-resnet.case.safetensors");
    glad_resnet *r;
    int rc = glad_resnet_load(&r, wp);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return check_done();
    CHECK(glad_resnet_nlayers(r) == 3);
    glad_st *st;
    if (glad_st_open(&st, cp)) { CHECKF(0, "cannot open %s", cp); glad_resnet_free(r); return check_done(); }
    glad_tensor x, ref[3];
    CHECK(glad_st_get_f32(st, "x", &x) == 0);
    CHECK(glad_st_get_f32(st, "layer1", &ref[0]) == 0 && glad_st_get_f32(st, "layer2", &ref[1]) == 0 &&
          glad_st_get_f32(st, "layer3", &ref[2]) == 0);
    glad_st_close(st);
    int B = (int)x.shape[0], H = (int)x.shape[2], W = (int)x.shape[3];

    /* parity, all three layers in one pass */
    int all[3] = {1, 2, 3};
    float *out[3];
    size_t n[3];
    CHECK(run(r, x.data, B, H, W, 3, all, out, n) == 0);
    for (int i = 0; i < 3; i++) {
        int C, h, w;
        CHECK(glad_resnet_out_shape(r, i + 1, H, W, &C, &h, &w) == 0);
        CHECK(ref[i].shape[0] == B && ref[i].shape[1] == C && ref[i].shape[2] == h && ref[i].shape[3] == w);
        CHECK(glad_tensor_numel(&ref[i]) == n[i]);
        double e = rel_err(out[i], ref[i].data, n[i]);
        CHECKF(e < 1e-4, "layer%d rel err %.3g", i + 1, e);
        printf("layer%d: rel err %.2e\n", i + 1, e);
    }

    /* a subset, out of order, stops early and gives the same values */
    int sub[2] = {3, 1}, one[1] = {2};
    float *so[2], *oo[1];
    size_t sn[2], on[1];
    CHECK(run(r, x.data, B, H, W, 2, sub, so, sn) == 0);
    CHECK(sn[0] == n[2] && memcmp(so[0], out[2], n[2] * sizeof(float)) == 0);
    CHECK(sn[1] == n[0] && memcmp(so[1], out[0], n[0] * sizeof(float)) == 0);
    CHECK(run(r, x.data, B, H, W, 1, one, oo, on) == 0);
    CHECK(on[0] == n[1] && memcmp(oo[0], out[1], n[1] * sizeof(float)) == 0);
    free(so[0]); free(so[1]); free(oo[0]);

    /* batch invariance: record 1 alone is bit-identical to record 1 in the batch of 2 */
    float *bo[3];
    size_t bn[3];
    CHECK(run(r, (const float *)x.data + (size_t)3 * H * W, 1, H, W, 3, all, bo, bn) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(bn[i] * 2 == n[i] && memcmp(bo[i], out[i] + bn[i], bn[i] * sizeof(float)) == 0);
        free(bo[i]);
    }

    /* odd input size: torch's shapes and values */
    odd_case(r);

    /* im2col + GEMM instead of Winograd: the same reference */
    glad_resnet *r0;
    rc = glad_resnet_load_winograd(&r0, wp, 0);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc == 0) {
        float *o0[3];
        size_t n0[3];
        CHECK(run(r0, x.data, B, H, W, 3, all, o0, n0) == 0);
        for (int i = 0; i < 3; i++) {
            double e = rel_err(o0[i], ref[i].data, n0[i]);
            CHECKF(e < 1e-4, "no-Winograd layer%d rel err %.3g", i + 1, e);
            printf("layer%d without Winograd: rel err %.2e\n", i + 1, e);
            free(o0[i]);
        }
        odd_case(r0);
        /* the batch forward (lib/nn's kernels, the whole batch a layer at a
         * time): the reference, the record path up to rounding, each record
         * alone bit-identical to it in the batch */
        float *ob[3], *o1[3];
        for (int i = 0; i < 3; i++) { ob[i] = malloc(n[i] * sizeof(float)); o1[i] = malloc(n[i] / B * sizeof(float)); }
        CHECKF(glad_resnet_forward_batch(r0, x.data, B, H, W, 3, all, ob) == 0, "%s", glad_error_detail());
        CHECK(glad_resnet_forward_batch(r0, (const float *)x.data + (size_t)3 * H * W, 1, H, W, 3, all, o1) == 0);
        for (int i = 0; i < 3; i++) {
            double e = rel_err(ob[i], ref[i].data, n[i]), e0 = rel_err(ob[i], out[i], n[i]);
            CHECKF(e < 1e-4 && e0 < 1e-5, "batch forward layer%d rel err %.3g (%.3g against glad_resnet_forward)", i + 1, e, e0);
            CHECK(memcmp(o1[i], ob[i] + n[i] / B, n[i] / B * sizeof(float)) == 0);
            printf("layer%d batch forward: rel err %.2e (%.2e against the record path)\n", i + 1, e, e0);
        }
        /* a model with Winograd weights: the record path, bit for bit */
        CHECK(glad_resnet_forward_batch(r, x.data, B, H, W, 3, all, ob) == 0);
        for (int i = 0; i < 3; i++) CHECK(memcmp(ob[i], out[i], n[i] * sizeof(float)) == 0);
        CHECK(glad_resnet_forward_batch(r0, x.data, B, H, W, 1, (int[1]){4}, ob) == GLAD_EINVAL);
        for (int i = 0; i < 3; i++) { free(ob[i]); free(o1[i]); }
        glad_resnet_free(r0);
    }

    /* thread count: 1 and 3 threads (uneven pieces) agree up to rounding */
    int nthr = omp_get_max_threads();
    const int sizes[4][2] = {{64, 64}, {65, 63}, {1, 1}, {3, 2}};
    for (int si = 0; si < 4; si++) {
        int sh = sizes[si][0], sw = sizes[si][1];
        float *xi = malloc(sizeof(float) * 3 * sh * sw), *o1[3], *o3[3];
        size_t n1[3], n3[3];
        for (int i = 0; i < 3 * sh * sw; i++) xi[i] = ((const float *)x.data)[i % (3 * H * W)];
        omp_set_num_threads(1);
        CHECK(run(r, xi, 1, sh, sw, 3, all, o1, n1) == 0);
        omp_set_num_threads(3);
        CHECK(run(r, xi, 1, sh, sw, 3, all, o3, n3) == 0);
        omp_set_num_threads(nthr);
        for (int i = 0; i < 3; i++) {
            double e = rel_err(o3[i], o1[i], n1[i]);
            int fin = 1;
            for (size_t k = 0; k < n1[i]; k++) fin &= isfinite(o1[i][k]) && o1[i][k] >= 0;
            CHECKF(e < 1e-5 && fin, "%dx%d layer%d: 3 vs 1 threads rel err %.3g, finite and >= 0: %d", sh, sw, i + 1, e, fin);
            free(o1[i]); free(o3[i]);
        }
        free(xi);
    }

    /* bad calls fail cleanly */
    int bad[1] = {4}, zero[1] = {0};
    int C, h, w;
    CHECK(glad_resnet_forward(r, x.data, B, H, W, 1, bad, out) == GLAD_EINVAL);
    CHECK(glad_resnet_forward(r, x.data, B, H, W, 1, zero, out) == GLAD_EINVAL);
    CHECK(glad_resnet_forward(r, x.data, B, 0, W, 3, all, out) == GLAD_EINVAL);
    CHECK(glad_resnet_out_shape(r, 4, H, W, &C, &h, &w) == GLAD_EINVAL);
    CHECK(glad_resnet_out_shape(r, 1, -3, W, &C, &h, &w) == GLAD_EINVAL);
    /* tiny inputs still run: 1x1 gives 1x1 maps everywhere */
    CHECK(glad_resnet_out_shape(r, 3, 1, 1, &C, &h, &w) == 0 && C == 1024 && h == 1 && w == 1);
    for (int i = 0; i < 3; i++) free(out[i]);

    /* no config metadata: blocks and widths inferred from the keys give the same result */
    snprintf(tmp, sizeof tmp, "/tmp/test_resnet.%d.safetensors", (int)getpid());
    CHECK(write_variant(wp, tmp, NULL, NULL, NULL, NULL, 0, NULL) == 0);
    glad_resnet *r2;
    rc = glad_resnet_load(&r2, tmp);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc == 0) {
        float *o2[3];
        size_t n2[3];
        CHECK(glad_resnet_nlayers(r2) == 3);
        CHECK(run(r2, x.data, B, H, W, 3, all, o2, n2) == 0);
        for (int i = 0; i < 3; i++) {
            CHECK(rel_err(o2[i], ref[i].data, n2[i]) < 1e-4);
            free(o2[i]);
        }
        glad_resnet_free(r2);
    }
    unlink(tmp);

    /* load errors name the key */
    const int64_t flat[4] = {64, 64, 9, 1}, c3[4] = {1024, 32, 2, 1};
    load_error(wp, tmp, "layer2.1.bn2.running_var", NULL, NULL, NULL, 0, CFG, GLAD_ENOTFOUND, "layer2.1.bn2.running_var");
    load_error(wp, tmp, "layer3.0.downsample.0.weight", NULL, NULL, NULL, 0, CFG, GLAD_ENOTFOUND, "layer3.0.downsample.0.weight");
    load_error(wp, tmp, "conv1.weight", NULL, NULL, NULL, 0, CFG, GLAD_ENOTFOUND, "conv1.weight");
    load_error(wp, tmp, "layer3.0.conv1.weight", NULL, NULL, NULL, 0, NULL, GLAD_ENOTFOUND, "layer3.0.conv1.weight");
    load_error(wp, tmp, NULL, "layer3.0.conv2.weight", flat, NULL, 0, CFG, GLAD_ESHAPE, "layer3.0.conv2.weight");
    load_error(wp, tmp, NULL, "layer3.0.conv2.weight", flat, NULL, 0, NULL, GLAD_ESHAPE, "layer3.0.conv2.weight");
    load_error(wp, tmp, NULL, "layer3.0.conv3.weight", c3, NULL, 0, CFG, GLAD_ESHAPE, "layer3.0.conv3.weight");
    load_error(wp, tmp, NULL, NULL, NULL, "layer1.0.bn3.running_var", -1.0f, CFG, GLAD_ERANGE, "layer1.0.bn3.running_var");
    /* non-finite weights are rejected at load, naming the tensor */
    load_error(wp, tmp, NULL, NULL, NULL, "layer2.1.conv2.weight", NAN, CFG, GLAD_ENAN, "layer2.1.conv2.weight");
    load_error(wp, tmp, NULL, NULL, NULL, "layer1.0.bn1.running_mean", INFINITY, CFG, GLAD_ENAN, "layer1.0.bn1.running_mean");
    load_error(wp, tmp, NULL, NULL, NULL, "conv1.weight", -INFINITY, NULL, GLAD_ENAN, "conv1.weight");
    /* a config that disagrees with the shapes: width_per_group 32 wants layer1.0.conv1 (32,64,1,1) */
    load_error(wp, tmp, NULL, NULL, NULL, NULL, 0, "{\"block\":\"bottleneck\",\"layers\":[1,2,1,1],\"width_per_group\":32}", GLAD_ESHAPE,
               "layer1.0.conv1.weight");
    /* config says layer2 has 3 blocks */
    load_error(wp, tmp, NULL, NULL, NULL, NULL, 0, "{\"block\":\"bottleneck\",\"layers\":[1,3,1,1],\"width_per_group\":16}", GLAD_ENOTFOUND,
               "layer2.2.conv1.weight");
    load_error(wp, tmp, NULL, NULL, NULL, NULL, 0, "{\"block\":\"basic\",\"layers\":[2,2,2,2]}", GLAD_EUNSUPPORTED, "block");
    load_error(wp, tmp, NULL, NULL, NULL, NULL, 0, "{\"layers\":[1,2]}", GLAD_EFORMAT, "layers");
    load_error(wp, tmp, NULL, NULL, NULL, NULL, 0, "not json", GLAD_EFORMAT, "config");
    CHECK(glad_resnet_load(&r2, "/nonexistent/resnet.safetensors") != 0 && strstr(glad_error_detail(), "/nonexistent") != NULL);

    for (int i = 0; i < 3; i++) glad_tensor_free(&ref[i]);
    glad_tensor_free(&x);
    glad_resnet_free(r);
    return check_done();
}
