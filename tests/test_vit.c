/* test_vit.c - the DINO ViT against the official DINO VisionTransformer
 * fixture (dino-vit.{weights,case}: s32 at the trained grid, s64 and s48x40
 * through the bicubic positional interpolation): every block's raw output and
 * the normed cls token within 1e-4 of the reference max-abs; feature maps equal
 * to the transposed tokens; exact batch invariance; config inference from
 * shapes; errors (missing key, wrong shape, bad sizes) reported, not crashed. */
#include <omp.h>
#include <unistd.h>
#include "check.h"
#include "models/vit.h"
#include "io/safetensors.h"

static char WP[512], CP[512];

/* ../shared/fixtures first, then the committed copies in tests/fixtures */
static int find_fixtures(void)
{
    const char *sh = check_shared();
    const char *dirs[2] = {NULL, "tests/fixtures"};
    char d0[512];
    if (sh) { snprintf(d0, sizeof d0, "%s/fixtures", sh); dirs[0] = d0; }
    for (int i = 0; i < 2; i++) {
        if (!dirs[i]) continue;
        snprintf(WP, sizeof WP, "%s/dino-vit.weights.safetensors", dirs[i]);
        snprintf(CP, sizeof CP, "%s/dino-vit.case.safetensors", dirs[i]);
        if (access(WP, R_OK) == 0 && access(CP, R_OK) == 0) return 1;
    }
    return 0;
}

static double rel_err(const float *a, const float *ref, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) { m = fmax(m, fabs((double)a[i] - ref[i])); r = fmax(r, fabs((double)ref[i])); }
    return r > 0 ? m / r : m;
}

static double worst_err;

static void parity_case(glad_vit *v, const glad_st *st, const char *name)
{
    char k[128];
    glad_tensor x, ref, cref;
    snprintf(k, sizeof k, "%s.x", name);
    if (glad_st_get_f32(st, k, &x)) { CHECKF(0, "%s missing", k); return; }
    int B = (int)x.shape[0], H = (int)x.shape[2], W = (int)x.shape[3], D = glad_vit_cfg(v)->dim, p = glad_vit_cfg(v)->patch;
    size_t T = 1 + (size_t)(H / p) * (W / p);
    int blocks[4] = {4, 1, 3, 2};   /* any order */
    float *tok[4], *cls = malloc(sizeof(float) * B * D);
    for (int i = 0; i < 4; i++) tok[i] = malloc(sizeof(float) * B * T * D);
    CHECK(glad_vit_forward_tokens(v, x.data, B, H, W, 4, blocks, tok, cls) == 0);
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof k, "%s.block%d", name, blocks[i]);
        if (glad_st_get_f32(st, k, &ref)) { CHECKF(0, "%s missing", k); continue; }
        CHECKF(ref.shape[0] == B && (size_t)ref.shape[1] == T && ref.shape[2] == D, "%s shape", k);
        double e = rel_err(tok[i], ref.data, (size_t)B * T * D);
        worst_err = fmax(worst_err, e);
        CHECKF(e < 1e-4, "%s rel err %.3g", k, e);
        printf("  %-18s rel err %.2e\n", k, e);
        glad_tensor_free(&ref);
    }
    snprintf(k, sizeof k, "%s.cls_after_norm", name);
    if (glad_st_get_f32(st, k, &cref) == 0) {
        double e = rel_err(cls, cref.data, (size_t)B * D);
        worst_err = fmax(worst_err, e);
        CHECKF(e < 1e-4, "%s rel err %.3g", k, e);
        printf("  %-18s rel err %.2e\n", k, e);
        glad_tensor_free(&cref);
    } else CHECKF(0, "%s missing", k);

    /* feature maps: the same blocks, cls dropped, (B, D, gh, gw); exactly the tokens transposed */
    int fb[2] = {2, 4}, gw = W / p;
    size_t N = T - 1;
    float *f[2];
    for (int i = 0; i < 2; i++) f[i] = malloc(sizeof(float) * B * D * N);
    CHECK(glad_vit_features(v, x.data, B, H, W, 2, fb, f) == 0);
    long bad = 0;
    for (int i = 0; i < 2; i++) {
        const float *t = tok[fb[i] == 2 ? 3 : 0];   /* blocks[3] = 2, blocks[0] = 4 */
        for (int b = 0; b < B; b++)
            for (int d = 0; d < D; d++)
                for (size_t n = 0; n < N; n++) {
                    int r = (int)(n / gw), c = (int)(n % gw);
                    float fv = f[i][(((size_t)b * D + d) * (H / p) + r) * gw + c];
                    if (fv != t[((size_t)b * T + 1 + n) * D + d]) bad++;
                }
    }
    CHECKF(bad == 0, "%s: %ld feature values differ from the tokens", name, bad);

    /* batch invariance: record 1 alone equals record 1 of the batch, bit for bit */
    if (B >= 2) {
        float *t1 = malloc(sizeof(float) * T * D), *c1 = malloc(sizeof(float) * D), *f1 = malloc(sizeof(float) * D * N);
        const float *x1 = (const float *)x.data + (size_t)3 * H * W;
        int b4 = 4, b2 = 2;
        CHECK(glad_vit_forward_tokens(v, x1, 1, H, W, 1, &b4, &t1, c1) == 0);
        CHECKF(memcmp(t1, tok[0] + T * D, sizeof(float) * T * D) == 0, "%s: tokens of record 1 depend on the batch", name);
        CHECKF(memcmp(c1, cls + D, sizeof(float) * D) == 0, "%s: cls of record 1 depends on the batch", name);
        CHECK(glad_vit_features(v, x1, 1, H, W, 1, &b2, &f1) == 0);
        CHECKF(memcmp(f1, f[0] + D * N, sizeof(float) * D * N) == 0, "%s: features of record 1 depend on the batch", name);
        free(t1); free(c1); free(f1);
    }
    /* thread count: one thread gives the same result (up to float rounding; in
     * practice bit for bit, since no reduction is split across threads) */
    {
        float *t1 = malloc(sizeof(float) * B * T * D);
        int b4 = 4, nthr = omp_get_max_threads();
        omp_set_num_threads(1);
        CHECK(glad_vit_forward_tokens(v, x.data, B, H, W, 1, &b4, &t1, NULL) == 0);
        omp_set_num_threads(nthr);
        double e = rel_err(t1, tok[0], (size_t)B * T * D);
        CHECKF(e <= 1e-6, "%s: 1 thread vs %d: rel diff %.3g", name, nthr, e);
        if (e > 0) printf("  %s: 1 thread vs %d threads differ by %.2e (rounding)\n", name, nthr, e);
        free(t1);
    }
    for (int i = 0; i < 4; i++) free(tok[i]);
    for (int i = 0; i < 2; i++) free(f[i]);
    free(cls);
    glad_tensor_free(&x);
}

/* write the fixture weights to path, dropping `drop`, giving `reshape` a wrong
 * shape, setting element 1 of `poke` to poke_value, and with/without the
 * config (cfg NULL: no metadata) */
static int rewrite_poke(const char *path, const char *drop, const char *reshape, const char *poke, float poke_value, const char *cfg)
{
    glad_st *st;
    if (glad_st_open(&st, WP)) return -1;
    int n = glad_st_count(st), m = 0;
    const char **names = malloc(sizeof(char *) * n);
    glad_tensor *ts = calloc((size_t)n, sizeof *ts);
    const glad_tensor **tp = malloc(sizeof(glad_tensor *) * n);
    for (int i = 0; i < n; i++) {
        const glad_st_entry *e = glad_st_entry_at(st, i);
        if (drop && !strcmp(e->name, drop)) continue;
        if (glad_st_get(st, e->name, &ts[m])) continue;
        if (reshape && !strcmp(e->name, reshape)) {   /* same element count, transposed shape */
            int64_t t0 = ts[m].shape[0];
            ts[m].shape[0] = ts[m].shape[1];
            ts[m].shape[1] = t0;
        }
        if (poke && !strcmp(e->name, poke)) ((float *)ts[m].data)[1] = poke_value;
        names[m] = e->name;
        tp[m] = &ts[m];
        m++;
    }
    const char *k = "config";
    int rc = glad_st_save(path, m, names, tp, cfg ? 1 : 0, cfg ? &k : NULL, cfg ? &cfg : NULL);
    for (int i = 0; i < m; i++) glad_tensor_free(&ts[i]);
    free(names); free(ts); free(tp);
    glad_st_close(st);
    return rc;
}

static int rewrite(const char *path, const char *drop, const char *reshape, const char *cfg)
{
    return rewrite_poke(path, drop, reshape, NULL, 0, cfg);
}

static void errors_and_inference(glad_vit *v)
{
    char path[256];
    const char *err = glad_error_detail();
    snprintf(path, sizeof path, "/tmp/test_vit_%d.safetensors", (int)getpid());
    glad_st *st;
    char cfgbuf[512] = "";
    if (glad_st_open(&st, WP) == 0) {
        const char *c = glad_st_meta(st, "config");
        if (c) snprintf(cfgbuf, sizeof cfgbuf, "%s", c);
        glad_st_close(st);
    }
    const char *cfg = cfgbuf;
    glad_vit *w = NULL;
    /* missing key */
    CHECK(rewrite(path, "blocks.2.mlp.fc1.weight", NULL, cfg) == 0);
    glad_error_clear();
    CHECK(glad_vit_load(&w, path) == GLAD_ENOTFOUND && w == NULL);
    CHECKF(strstr(err, "blocks.2.mlp.fc1.weight") != NULL && strstr(err, path), "error names the file and the key: %s", err);
    /* wrong shape */
    CHECK(rewrite(path, NULL, "blocks.1.attn.qkv.weight", cfg) == 0);
    glad_error_clear();
    CHECK(glad_vit_load(&w, path) == GLAD_ESHAPE && w == NULL);
    CHECKF(strstr(err, "blocks.1.attn.qkv.weight") != NULL, "error names the key: %s", err);
    /* non-finite weights: rejected at load, naming the tensor */
    static const char *const poisoned[3] = {"blocks.3.mlp.fc2.weight", "pos_embed", "norm.bias"};
    static const float poison[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        CHECK(rewrite_poke(path, NULL, NULL, poisoned[k], poison[k], cfg) == 0);
        glad_error_clear();
        CHECK(glad_vit_load(&w, path) == GLAD_ENAN && w == NULL);
        CHECKF(strstr(err, poisoned[k]) != NULL && strstr(err, "non-finite"), "error names the key: %s", err);
    }
    /* the same without a config (shapes inferred) */
    CHECK(rewrite_poke(path, NULL, NULL, "blocks.0.attn.qkv.bias", NAN, NULL) == 0);
    CHECK(glad_vit_load(&w, path) == GLAD_ENAN && w == NULL && strstr(err, "blocks.0.attn.qkv.bias"));
    /* a config whose dim disagrees with the tensors: the first key checked fails */
    CHECK(rewrite(path, NULL, NULL, "{\"patch_size\": 8, \"embed_dim\": 32, \"depth\": 4, \"num_heads\": 4, \"pos_grid\": 4}") == 0);
    CHECK(glad_vit_load(&w, path) == GLAD_ESHAPE && w == NULL);
    CHECK(rewrite(path, NULL, NULL, "{\"patch_size\": 8, \"embed_dim\": 64, \"depth\": 4, \"num_heads\": 5, \"pos_grid\": 4}") == 0);
    CHECK(glad_vit_load(&w, path) == GLAD_EFORMAT && w == NULL && strstr(err, "config"));
    CHECK(glad_vit_load(&w, "/nonexistent/vit.safetensors") < 0 && w == NULL && strstr(err, "/nonexistent/vit.safetensors"));

    /* no config and a block missing its first tensor: not silently a shallower model */
    CHECK(rewrite(path, "blocks.2.norm1.weight", NULL, NULL) == 0);
    glad_error_clear();
    CHECK(glad_vit_load(&w, path) == GLAD_ENOTFOUND && w == NULL);
    CHECKF(strstr(err, "blocks.2.norm1.weight") != NULL, "error names the key: %s", err);

    /* config inferred from the shapes (no metadata): DINO's heads = dim/64 = 1 here;
     * must equal the same weights with an explicit 1-head config, bit for bit */
    CHECK(rewrite(path, NULL, NULL, NULL) == 0);
    int rc = glad_vit_load(&w, path);
    CHECKF(rc == 0, "%s", err);
    glad_vit *e1 = NULL;
    CHECK(rewrite(path, NULL, NULL, "{\"patch_size\": 8, \"embed_dim\": 64, \"depth\": 4, \"num_heads\": 1, \"layernorm_eps\": 1e-6, \"pos_grid\": 4}") == 0);
    int rc2 = glad_vit_load(&e1, path);
    CHECKF(rc2 == 0, "%s", err);
    if (!rc && !rc2) {
        const glad_vit_config *c = glad_vit_cfg(w);
        CHECK(c->patch == 8 && c->dim == 64 && c->depth == 4 && c->heads == 1 && c->mlp_hidden == 256 && c->pos_grid == 4);
        CHECK(fabs(c->eps - 1e-6) < 1e-12);
        float x[3 * 40 * 48], t1[31 * 64], t2[31 * 64];
        for (int i = 0; i < 3 * 40 * 48; i++) x[i] = (float)sin(0.37 * i);
        float *p1 = t1, *p2 = t2;
        int b4 = 4;
        CHECK(glad_vit_forward_tokens(w, x, 1, 48, 40, 1, &b4, &p1, NULL) == 0);
        CHECK(glad_vit_forward_tokens(e1, x, 1, 48, 40, 1, &b4, &p2, NULL) == 0);
        CHECK(memcmp(t1, t2, sizeof t1) == 0);
    }
    glad_vit_free(w);
    glad_vit_free(e1);
    unlink(path);

    /* bad calls return errors */
    float x[3 * 36 * 32] = {0}, tok[64 * 64], *tp = tok;
    int b1 = 1, b0 = 0, b5 = 5;
    CHECK(glad_vit_forward_tokens(v, x, 1, 36, 32, 1, &b1, &tp, NULL) == GLAD_ESHAPE);   /* 36 not a multiple of 8 */
    CHECK(glad_vit_forward_tokens(v, x, 1, 32, 4, 1, &b1, &tp, NULL) == GLAD_ESHAPE);    /* smaller than a patch */
    CHECK(glad_vit_features(v, x, 1, 32, 30, 1, &b1, &tp) == GLAD_ESHAPE);
    CHECK(glad_vit_forward_tokens(v, x, 1, 32, 32, 1, &b0, &tp, NULL) == GLAD_EINVAL);
    CHECK(glad_vit_forward_tokens(v, x, 1, 32, 32, 1, &b5, &tp, NULL) == GLAD_EINVAL);
    CHECK(glad_vit_forward_tokens(v, x, 0, 32, 32, 1, &b1, &tp, NULL) == GLAD_EINVAL);
    CHECK(glad_vit_forward_tokens(v, NULL, 1, 32, 32, 1, &b1, &tp, NULL) == GLAD_EINVAL);
}

int main(void)
{
    if (!find_fixtures()) { SKIP("dino-vit fixtures not found in ../shared/fixtures or tests/fixtures"); return check_done(); }
    glad_vit *v;
    int rc = glad_vit_load(&v, WP);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return check_done();
    const glad_vit_config *c = glad_vit_cfg(v);
    CHECK(c->patch == 8 && c->dim == 64 && c->depth == 4 && c->heads == 4 && c->mlp_hidden == 256 && c->pos_grid == 4);
    glad_st *st;
    if (glad_st_open(&st, CP)) { CHECKF(0, "cannot open %s", CP); glad_vit_free(v); return check_done(); }
    parity_case(v, st, "s32");
    parity_case(v, st, "s64");
    parity_case(v, st, "s48x40");
    printf("  worst rel err %.2e (%s)\n", worst_err, WP);
    glad_st_close(st);
    errors_and_inference(v);
    glad_vit_free(v);
    return check_done();
}
