/* test_vae.c - the AutoencoderKL against the diffusers v0.20 fixture
 * (../shared/fixtures/sd-vae.{weights,case}): encoder moments, the posterior
 * (clamped logvar, std, a sample from the stored noise), the decoder, within
 * 1e-4 of the max-abs reference; a result that does not depend on the batch;
 * the pre-v0.20 attention names and 1x1-conv attention weights giving the
 * same numbers; float16 weights; and what the loader refuses (configs that
 * are not AutoencoderKL or absurd, a missing / misshapen / non-finite tensor,
 * a tensor the config does not imply, no config, a missing file, a
 * directory) and the image sizes encode refuses. Everything (config,
 * inputs, noise) comes from the fixture files; argv[1] may name another
 * weights file of the same network (convert.py's output). */
#include <stdlib.h>
#include <unistd.h>
#include "check.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "models/vae.h"

static double rel_err(const float *a, const float *ref, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) { m = fmax(m, fabs((double)a[i] - ref[i])); r = fmax(r, fabs((double)ref[i])); }
    return r > 0 ? m / r : m;
}

static float *getf(const glad_st *st, const char *name, glad_tensor *t)
{
    int rc = glad_st_get_f32(st, name, t);
    CHECKF(rc == 0, "fixture tensor %s missing", name);
    return rc ? NULL : t->data;
}

/* the model's outputs on the case: moments of x, decode of dec.z */
typedef struct { float *mom, *dec; } outs;

static int run(const char *wpath, const glad_st *cs, outs *o)
{
    glad_vae *v;
    int rc = glad_vae_load(&v, wpath);
    if (rc) return rc;
    glad_tensor x, z;
    if (!getf(cs, "x", &x) || !getf(cs, "dec.z", &z)) { glad_vae_free(v); return -1; }
    int B = (int)x.shape[0], H = (int)x.shape[2], W = (int)x.shape[3], f = glad_vae_down_factor(v);
    const glad_vae_config *c = glad_vae_cfg(v);
    o->mom = malloc(sizeof(float) * (size_t)B * 2 * c->latent_channels * (H / f) * (W / f));
    int zb = (int)z.shape[0], zh = (int)z.shape[2], zw = (int)z.shape[3];
    o->dec = malloc(sizeof(float) * (size_t)zb * c->out_channels * zh * f * zw * f);
    rc = glad_vae_encode(v, o->mom, x.data, B, H, W);
    if (!rc) rc = glad_vae_decode(v, o->dec, z.data, zb, zh, zw);
    glad_tensor_free(&x);
    glad_tensor_free(&z);
    glad_vae_free(v);
    return rc;
}

static void parity(const char *wp, const glad_st *cs, outs *keep)
{
    glad_vae *v;
    int rc = glad_vae_load(&v, wp);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return;
    const glad_vae_config *c = glad_vae_cfg(v);
    glad_tensor x, mom, mean, logvar, std, noise, sample, z, dx, cm, cmean, clv, cstd;
    if (!getf(cs, "x", &x) || !getf(cs, "enc.moments", &mom) || !getf(cs, "enc.mean", &mean) || !getf(cs, "enc.logvar", &logvar) ||
        !getf(cs, "enc.std", &std) || !getf(cs, "enc.noise", &noise) || !getf(cs, "enc.sample", &sample) ||
        !getf(cs, "dec.z", &z) || !getf(cs, "dec.x", &dx) || !getf(cs, "clamp.moments", &cm) || !getf(cs, "clamp.mean", &cmean) ||
        !getf(cs, "clamp.logvar", &clv) || !getf(cs, "clamp.std", &cstd)) {
        glad_vae_free(v);
        return;
    }
    int B = (int)x.shape[0], H = (int)x.shape[2], W = (int)x.shape[3], f = glad_vae_down_factor(v), L = c->latent_channels;
    CHECK(c->in_channels == (int)x.shape[1] && mom.shape[1] == 2 * L && mom.shape[2] == H / f && mom.shape[3] == W / f);
    size_t N = (size_t)(H / f) * (W / f), nm = (size_t)B * 2 * L * N, nl = (size_t)B * L * N;
    float *m = malloc(nm * sizeof(float)), *a = malloc(nl * sizeof(float)), *b = malloc(nl * sizeof(float)),
          *s = malloc(nl * sizeof(float)), *zz = malloc(nl * sizeof(float));
    CHECK(glad_vae_encode(v, m, x.data, B, H, W) == 0);
    double e = rel_err(m, mom.data, nm);
    CHECKF(e < 1e-4, "moments rel err %.3g", e);
    glad_vae_posterior(a, b, s, m, B, L, N);
    double em = rel_err(a, mean.data, nl), el = rel_err(b, logvar.data, nl), es = rel_err(s, std.data, nl);
    CHECKF(em < 1e-4 && el < 1e-4 && es < 1e-4, "posterior rel err mean %.3g logvar %.3g std %.3g", em, el, es);
    glad_vae_sample(zz, m, noise.data, B, L, N);
    double ez = rel_err(zz, sample.data, nl);
    CHECKF(ez < 1e-4, "sample rel err %.3g", ez);
    glad_vae_sample(zz, m, NULL, B, L, N);
    CHECK(memcmp(zz, a, nl * sizeof(float)) == 0);   /* no noise: the mean */
    /* one image alone gives the same bits as inside the batch */
    if (B > 1) {
        size_t one = nm / (size_t)B;
        float *m1 = malloc(one * sizeof(float));
        CHECK(glad_vae_encode(v, m1, (float *)x.data + (size_t)c->in_channels * H * W, 1, H, W) == 0);
        CHECK(memcmp(m1, m + one, one * sizeof(float)) == 0);
        free(m1);
    }
    /* decoder */
    int zb = (int)z.shape[0], zh = (int)z.shape[2], zw = (int)z.shape[3];
    size_t nx = (size_t)zb * c->out_channels * zh * f * zw * f;
    CHECK(glad_tensor_numel(&dx) == nx);
    float *y = malloc(nx * sizeof(float));
    CHECK(glad_vae_decode(v, y, z.data, zb, zh, zw) == 0);
    double ed = rel_err(y, dx.data, nx);
    CHECKF(ed < 1e-4, "decode rel err %.3g", ed);
    /* the clamp: hand-made moments across [-30, 20] */
    int cl = (int)cm.shape[1] / 2;
    size_t cn = (size_t)cm.shape[2] * cm.shape[3], cnl = (size_t)cm.shape[0] * cl * cn;
    float *p = malloc(3 * cnl * sizeof(float));
    glad_vae_posterior(p, p + cnl, p + 2 * cnl, cm.data, (int)cm.shape[0], cl, cn);
    double c1 = rel_err(p, cmean.data, cnl), c2 = rel_err(p + cnl, clv.data, cnl), c3 = rel_err(p + 2 * cnl, cstd.data, cnl);
    CHECKF(c1 < 1e-6 && c2 < 1e-6 && c3 < 1e-5, "clamp rel err %.3g %.3g %.3g", c1, c2, c3);
    fprintf(stderr, "  sd-vae: moments %.2g, mean %.2g, logvar %.2g, std %.2g, sample %.2g, decode %.2g, clamp std %.2g\n", e, em, el,
            es, ez, ed, c3);
    keep->mom = m;
    keep->dec = y;
    free(a); free(b); free(s); free(zz); free(p);
    glad_tensor *all[] = {&x, &mom, &mean, &logvar, &std, &noise, &sample, &z, &dx, &cm, &cmean, &clv, &cstd};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) glad_tensor_free(all[i]);
    glad_vae_free(v);
}

/* ---- rewritten copies of the weights file ---- */

enum { KEEP, OLD_NAMES, OLD_CONV, F16, DROP, RESHAPE, NAN_W, EXTRA, NO_CONFIG };

/* writes src's tensors to dst changed by `how` (DROP / RESHAPE / NAN_W act
 * on the tensor named `which`), with config `cfg` (NULL: src's) */
static int rewrite(const char *src, const char *dst, int how, const char *which, const char *cfg)
{
    glad_st *st;
    if (glad_st_open(&st, src)) return -1;
    int n = glad_st_count(st), k = 0;
    glad_tensor *ts = calloc((size_t)n + 1, sizeof *ts);
    const glad_tensor **tp = calloc((size_t)n + 1, sizeof *tp);
    char **names = calloc((size_t)n + 1, sizeof *names);
    for (int i = 0; i < n; i++) {
        const glad_st_entry *e = glad_st_entry_at(st, i);
        if (how == DROP && !strcmp(e->name, which)) continue;
        glad_tensor t;
        glad_st_get_f32(st, e->name, &t);
        char nm[300];
        snprintf(nm, sizeof nm, "%s", e->name);
        if (how == OLD_NAMES || how == OLD_CONV) {
            static const char *from[] = {".to_q.", ".to_k.", ".to_v.", ".to_out.0."}, *to[] = {".query.", ".key.", ".value.", ".proj_attn."};
            for (int r = 0; r < 4; r++) {
                char *p = strstr(nm, from[r]);
                if (!p) continue;
                char tail[300];
                snprintf(tail, sizeof tail, "%s", p + strlen(from[r]));
                snprintf(p, sizeof nm - (size_t)(p - nm), "%s%s", to[r], tail);
                if (how == OLD_CONV && t.ndim == 2) { t.ndim = 4; t.shape[2] = t.shape[3] = 1; }
            }
        }
        if (how == F16) { glad_tensor h; glad_tensor_convert(&h, &t, GLAD_DT_F16); glad_tensor_free(&t); t = h; }
        if (how == RESHAPE && !strcmp(e->name, which)) { t.shape[0] = t.shape[0] / 2; }
        if (how == NAN_W && !strcmp(e->name, which)) ((float *)t.data)[1] = NAN;
        ts[k] = t;
        names[k] = strdup(nm);
        k++;
    }
    if (how == EXTRA) {
        glad_tensor_alloc4(&ts[k], GLAD_DT_F32, 4, -1, -1, -1);
        names[k++] = strdup(which);
    }
    for (int i = 0; i < k; i++) tp[i] = &ts[i];
    const char *mk[] = {"config"}, *mv[] = {cfg ? cfg : glad_st_meta(st, "config")};
    int rc = glad_st_save(dst, k, (const char *const *)names, tp, how == NO_CONFIG ? 0 : 1, mk, mv);
    for (int i = 0; i < k; i++) { glad_tensor_free(&ts[i]); free(names[i]); }
    free(ts); free(tp); free(names);
    glad_st_close(st);
    return rc;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void variants(const char *wp, const glad_st *cs, const outs *ref, size_t nm, size_t nx)
{
    char tmp[] = "/tmp/glad_test_vae_XXXXXX";
    if (!mkdtemp(tmp)) { CHECK(0); return; }
    char p[600];
    snprintf(p, sizeof p, "%s/w.safetensors", tmp);
    /* the older attention names, as Linear and as 1x1 convolutions: the same bits */
    for (int how = OLD_NAMES; how <= OLD_CONV; how++) {
        outs o = {0};
        CHECK(rewrite(wp, p, how, NULL, NULL) == 0);
        int rc = run(p, cs, &o);
        CHECKF(rc == 0, "%s", glad_error_detail());
        if (!rc) CHECK(memcmp(o.mom, ref->mom, nm * sizeof(float)) == 0 && memcmp(o.dec, ref->dec, nx * sizeof(float)) == 0);
        free(o.mom); free(o.dec);
    }
    /* float16 weights load (converted to float32) and stay close */
    {
        outs o = {0};
        CHECK(rewrite(wp, p, F16, NULL, NULL) == 0);
        int rc = run(p, cs, &o);
        CHECKF(rc == 0, "%s", glad_error_detail());
        if (!rc) {
            double e = rel_err(o.dec, ref->dec, nx);
            CHECKF(e > 0 && e < 2e-2, "float16 weights: decode rel err %.3g", e);
        }
        free(o.mom); free(o.dec);
    }
    glad_vae *v;
    /* refusals, each with a detail naming the tensor */
    struct { int how; const char *which, *cfg; int rc; const char *detail; } bad[] = {
        {DROP, "decoder.up_blocks.1.resnets.1.conv2.bias", NULL, GLAD_ENOTFOUND, "decoder.up_blocks.1.resnets.1.conv2.bias"},
        {DROP, "encoder.mid_block.attentions.0.to_v.weight", NULL, GLAD_ENOTFOUND, "to_v.weight"},
        {RESHAPE, "encoder.conv_in.weight", NULL, GLAD_ESHAPE, "encoder.conv_in.weight"},
        {NAN_W, "quant_conv.weight", NULL, GLAD_ENAN, "quant_conv.weight"},
        {EXTRA, "decoder.up_blocks.1.resnets.2.norm1.weight", NULL, GLAD_EFORMAT, "decoder.up_blocks.1.resnets.2.norm1.weight"},
        {NO_CONFIG, NULL, NULL, GLAD_EFORMAT, "config"},
        /* a config that does not match the weights: one more layer per block */
        {KEEP, NULL, "{\"block_out_channels\": [32, 64], \"layers_per_block\": 2, \"down_block_types\": [\"DownEncoderBlock2D\", "
                     "\"DownEncoderBlock2D\"], \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]}",
         GLAD_ENOTFOUND, "resnets.1"},
        {KEEP, NULL, "{\"_class_name\": \"AutoencoderTiny\"}", GLAD_EUNSUPPORTED, "AutoencoderTiny"},
        {KEEP, NULL, "{\"block_out_channels\": [32, 64], \"act_fn\": \"gelu\"}", GLAD_EUNSUPPORTED, "gelu"},
        {KEEP, NULL, "{\"block_out_channels\": [32, 48], \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"], "
                     "\"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]}",
         GLAD_ERANGE, "multiple of norm_num_groups"},
        {KEEP, NULL, "{\"block_out_channels\": [32, 64], \"down_block_types\": [\"DownEncoderBlock2D\", \"CrossAttnDownBlock2D\"]}",
         GLAD_EUNSUPPORTED, "CrossAttnDownBlock2D"},
        {KEEP, NULL, "{\"block_out_channels\": [32, 64]}", GLAD_EFORMAT, "down and"},
        {KEEP, NULL, "{\"block_out_channels\": [32, 32, 32, 32, 32, 32, 32, 32, 32]}", GLAD_ERANGE, "block_out_channels"},
        {KEEP, NULL, "{\"layers_per_block\": 1e300}", GLAD_EFORMAT, "layers_per_block"},
        {KEEP, NULL, "{\"layers_per_block\": 100000}", GLAD_ERANGE, "layers_per_block"},
        {KEEP, NULL, "{\"latent_channels\": -4}", GLAD_ERANGE, "latent_channels"},
        {KEEP, NULL, "{\"scaling_factor\": \"x\"}", GLAD_EFORMAT, "scaling_factor"},
        {KEEP, NULL, "[1, 2", GLAD_EFORMAT, "JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(rewrite(wp, p, bad[i].how, bad[i].which, bad[i].cfg) == 0);
        glad_error_clear();
        int rc = glad_vae_load(&v, p);
        CHECKF(rc == bad[i].rc && strstr(glad_error_detail(), bad[i].detail) && strstr(glad_error_detail(), p),
               "case %zu: rc %d, detail '%s'", i, rc, glad_error_detail());
        if (!rc) glad_vae_free(v);
    }
    unlink(p);
    CHECK(glad_vae_load(&v, p) == GLAD_EIO && strstr(glad_error_detail(), "No such file"));
    CHECK(glad_vae_load(&v, tmp) == GLAD_EIO && strstr(glad_error_detail(), "Is a directory"));
    rmdir(tmp);
}

/* sizes encode and decode refuse */
static void sizes(const char *wp)
{
    glad_vae *v;
    if (glad_vae_load(&v, wp)) { CHECK(0); return; }
    int f = glad_vae_down_factor(v);
    float buf[64] = {0};
    CHECK(glad_vae_encode(v, buf, buf, 1, f + 1, f) == GLAD_ESHAPE && strstr(glad_error_detail(), "multiples"));
    CHECK(glad_vae_encode(v, buf, buf, 0, f, f) == GLAD_ESHAPE);
    CHECK(glad_vae_encode(v, buf, buf, 1, 0, f) == GLAD_ESHAPE);
    CHECK(glad_vae_decode(v, buf, buf, 1, 0, 1) == GLAD_ESHAPE);
    CHECK(glad_vae_decode(v, buf, buf, 1, 1 << 20, 1) == GLAD_ESHAPE);
    glad_vae_free(v);
}

/* self-contained: the SD-v1-4 VAE config (spec §4: 83,653,863 parameters),
 * a small random model's shapes and batch independence */
static void random_models(void)
{
    static const char sd14[] = "{\"_class_name\": \"AutoencoderKL\", \"act_fn\": \"silu\", \"block_out_channels\": [128, 256, 512, 512], "
        "\"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\", \"DownEncoderBlock2D\"], "
        "\"in_channels\": 3, \"latent_channels\": 4, \"layers_per_block\": 2, \"norm_num_groups\": 32, \"out_channels\": 3, "
        "\"sample_size\": 512, \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\"]}";
    glad_vae_config c;
    CHECKF(glad_vae_config_parse(&c, sd14) == 0, "%s", glad_error_detail());
    CHECK(c.nlevels == 4 && c.layers_per_block == 2 && fabsf(c.scaling_factor - 0.18215f) < 1e-9f && c.mid_attention);
    glad_vae *v;
    if (glad_vae_create_random(&v, &c, 1) == 0) {
        CHECKF(glad_vae_nparams(v) == 83653863, "SD-v1-4 VAE: %zu parameters", glad_vae_nparams(v));
        CHECK(glad_vae_down_factor(v) == 8);
        glad_vae_free(v);
    } else CHECK(0);
    /* a small model: shapes, finite, a record alone == inside a batch */
    c.nlevels = 3; c.block_out[0] = 32; c.block_out[1] = 32; c.block_out[2] = 64; c.layers_per_block = 1; c.latent_channels = 3;
    CHECK(glad_vae_create_random(&v, &c, 2) == 0);
    int B = 2, H = 24, W = 16, f = glad_vae_down_factor(v);
    size_t nx = (size_t)B * 3 * H * W, nm = (size_t)B * 6 * (H / f) * (W / f);
    float *x = malloc(nx * sizeof(float)), *m = malloc(nm * sizeof(float)), *m1 = malloc(nm * sizeof(float)),
          *y = malloc(nx * sizeof(float)), *y1 = malloc(nx * sizeof(float)), *z = malloc(nm / 2 * sizeof(float));
    for (size_t i = 0; i < nx; i++) x[i] = sinf((float)i * 0.731f);
    CHECK(glad_vae_encode(v, m, x, B, H, W) == 0);
    CHECK(glad_vae_encode(v, m1, x + nx / 2, 1, H, W) == 0);
    CHECK(memcmp(m1, m + nm / 2, nm / 2 * sizeof(float)) == 0);
    glad_vae_sample(z, m, NULL, B, 3, (size_t)(H / f) * (W / f));
    CHECK(glad_vae_decode(v, y, z, B, H / f, W / f) == 0);
    CHECK(glad_vae_decode(v, y1, z + nm / 4, 1, H / f, W / f) == 0);
    CHECK(memcmp(y1, y + nx / 2, nx / 2 * sizeof(float)) == 0);
    int finite = 1;
    for (size_t i = 0; i < nx; i++) finite &= isfinite(y[i]) != 0;
    CHECK(finite);
    free(x); free(m); free(m1); free(y); free(y1); free(z);
    glad_vae_free(v);
}

/* argv[1], when given, replaces the fixture's weights file (the same
 * network in another file, e.g. made by convert.py sd: tests/cli/convert.sh) */
int main(int argc, char **argv)
{
    const char *sh = check_shared();
    char wp[512], cp[512];
    if (sh) {
        snprintf(wp, sizeof wp, "%s", argc > 1 ? argv[1] : "");
        if (argc < 2) snprintf(wp, sizeof wp, "%s/fixtures/sd-vae.weights.safetensors", sh);
        snprintf(cp, sizeof cp, "%s/fixtures/sd-vae.case.safetensors", sh);
    }
    glad_st *cs = NULL;
    if (argc < 2) random_models();
    if (!sh || access(wp, R_OK) || glad_st_open(&cs, cp)) {
        SKIP("sd-vae fixtures not found (GLAD_SHARED or ../shared/fixtures/sd-vae.*)");
    } else {
        outs ref = {0};
        parity(wp, cs, &ref);
        if (ref.mom) {
            glad_tensor a, b;
            size_t nm = getf(cs, "enc.moments", &a) ? glad_tensor_numel(&a) : 0, nx = getf(cs, "dec.x", &b) ? glad_tensor_numel(&b) : 0;
            variants(wp, cs, &ref, nm, nx);
            CHECK(max_diff(ref.mom, a.data, nm) > 0);   /* not a copy of the reference */
            glad_tensor_free(&a);
            glad_tensor_free(&b);
        }
        sizes(wp);
        free(ref.mom); free(ref.dec);
        glad_st_close(cs);
    }
    return check_done();
}
