/* test_sdunet.c - the Stable Diffusion UNet (models/sdunet.h) against the
 * diffusers v0.20.0 fixtures ../shared/fixtures/sd-unet.{weights,case}: eps
 * for both contexts (7 and 77 tokens) within 1e-4 of the max-abs reference,
 * and every act.* intermediate the case holds (to localise an error). Config,
 * inputs and timesteps all come from the files. Self-contained: the configs
 * and model files load refuses (missing tensor, wrong shape or dtype, absurd
 * or unsupported configs, non-finite weights, bad forward sizes), a random
 * model's batch independence, and the token kernels against naive loops.
 * Also the safetensors reader's two ways in (io/safetensors.h): a file
 * mapped, the same bytes from memory, and the variant model loaded in place
 * from the mapping. */
#include <stdlib.h>
#include <unistd.h>
#include <omp.h>
#include "check.h"
#include "core/glad.h"
#include "io/safetensors.h"
#include "models/sdunet.h"
#include "nn/tokens.h"

static double rel_err(const float *a, const float *ref, size_t n)
{
    double m = 0, r = 0;
    for (size_t i = 0; i < n; i++) { m = fmax(m, fabs((double)a[i] - ref[i])); r = fmax(r, fabs((double)ref[i])); }
    return r > 0 ? m / r : m;
}

/* eps of case prefix pfx ("" or "l77."); with dump, every act.* of the case */
static void run_case(glad_sdunet *u, const glad_st *st, const char *pfx, int acts)
{
    char k[64];
    glad_tensor x, t, ctx, eps;
    snprintf(k, sizeof k, "%sx", pfx); int rc = glad_st_get_f32(st, k, &x);
    snprintf(k, sizeof k, "%st", pfx); rc |= glad_st_get_f32(st, k, &t);
    snprintf(k, sizeof k, "%sctx", pfx); rc |= glad_st_get_f32(st, k, &ctx);
    snprintf(k, sizeof k, "%seps", pfx); rc |= glad_st_get_f32(st, k, &eps);
    CHECKF(rc == 0, "case tensors of '%s'", pfx);
    if (rc) return;
    int B = (int)x.shape[0], H = (int)x.shape[2], W = (int)x.shape[3], L = (int)ctx.shape[1];
    CHECK(x.shape[1] == glad_sdunet_in_channels(u) && ctx.shape[2] == glad_sdunet_ctx_dim(u));
    size_t n = glad_tensor_numel(&eps);
    float *out = malloc(n * sizeof(float));
    glad_sdunet_set_dump(u, acts);
    rc = glad_sdunet_forward(u, out, x.data, B, H, W, t.data, ctx.data, L);
    CHECKF(rc == 0, "%s", glad_error_detail());
    double e = rel_err(out, eps.data, n);
    CHECKF(e < 1e-4, "%seps rel err %.3g", pfx, e);
    printf("%s %seps (L=%d, t=%g,%g): rel err %.3g\n", glad_sdunet_cfg(u)->nblocks == 3 ? "sd-unet-variant" : "sd-unet", pfx, L, ((float *)t.data)[0], ((float *)t.data)[B - 1], e);
    if (acts) {
        int nact = 0, nref = 0;
        for (int i = 0; i < glad_st_count(st); i++) {
            const glad_st_entry *en = glad_st_entry_at(st, i);
            if (strncmp(en->name, "act.", 4)) continue;
            nref++;
            glad_tensor ref;
            if (glad_st_get_f32(st, en->name, &ref)) { CHECK(0); continue; }
            size_t m = 0;
            const float *d = glad_sdunet_dump(u, en->name + 4, &m);
            CHECKF(d && m == glad_tensor_numel(&ref), "%s not recorded (or %zu values)", en->name, m);
            if (d && m == glad_tensor_numel(&ref)) {
                double ea = rel_err(d, ref.data, m);
                CHECKF(ea < 1e-4, "%s rel err %.3g", en->name, ea);
                nact++;
            }
            glad_tensor_free(&ref);
        }
        CHECKF(nact == nref && nact >= 20, "%d of %d intermediates compared", nact, nref);
        printf("sd-unet: %d intermediates act.* within 1e-4\n", nact);
        glad_sdunet_set_dump(u, 0);
    }
    free(out);
    glad_tensor_free(&x); glad_tensor_free(&t); glad_tensor_free(&ctx); glad_tensor_free(&eps);
}

static void parity(const char *shared)
{
    char wp[512], cp[512];
    snprintf(wp, sizeof wp, "%s/fixtures/sd-unet.weights.safetensors", shared);
    snprintf(cp, sizeof cp, "%s/fixtures/sd-unet.case.safetensors", shared);
    glad_sdunet *u;
    int rc = glad_sdunet_load(wp, &u);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return;
    glad_st *st;
    if (glad_st_open(&st, cp)) { CHECK(0); glad_sdunet_free(u); return; }
    run_case(u, st, "", 1);
    run_case(u, st, "l77.", 0);
    run_case(u, st, "", 0);   /* again, after a replan for 77 tokens */
    /* the config accessor */
    const glad_sdunet_config *c = glad_sdunet_cfg(u);
    CHECK(c->nblocks == 2 && c->heads[0] == 8 && c->cross_attention_dim == 32 && glad_sdunet_out_channels(u) == 4);
    /* from an open file the caller keeps (the weights copied) */
    glad_st *ws;
    CHECK(glad_st_open(&ws, wp) == 0);
    glad_sdunet_free(u);
    u = NULL;
    CHECKF(glad_sdunet_load_st(ws, wp, &u) == 0, "%s", glad_error_detail());
    glad_st_close(ws);
    if (u) run_case(u, st, "l77.", 0);
    glad_st_close(st);
    glad_sdunet_free(u);
    /* the fixture's weights with one NaN: refused, the tensor named */
    glad_st *w;
    if (glad_st_open(&w, wp)) { CHECK(0); return; }
    int cnt = glad_st_count(w);
    const char **nm = malloc(sizeof(char *) * (size_t)cnt);
    glad_tensor *ts = calloc((size_t)cnt, sizeof *ts);
    const glad_tensor **tp = malloc(sizeof(glad_tensor *) * (size_t)cnt);
    for (int i = 0; i < cnt; i++) {
        nm[i] = glad_st_entry_at(w, i)->name;
        CHECK(glad_st_get(w, nm[i], &ts[i]) == 0);
        tp[i] = &ts[i];
        if (!strcmp(nm[i], "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight")) ((float *)ts[i].data)[5] = NAN;
    }
    const char *mk[] = {"config"}, *mv[] = {glad_st_meta(w, "config")};
    char path[128];
    snprintf(path, sizeof path, "/tmp/glad-test-sdunet-nan-%d.safetensors", (int)getpid());
    CHECK(glad_st_save(path, cnt, nm, tp, 1, mk, mv) == 0);
    CHECK(glad_sdunet_load(path, &u) == GLAD_ENAN);
    CHECKF(strstr(glad_error_detail(), "attn2.to_k.weight' has NaN") != NULL, "%s", glad_error_detail());
    remove(path);
    for (int i = 0; i < cnt; i++) glad_tensor_free(&ts[i]);
    free(nm); free(ts); free(tp);
    glad_st_close(w);
}

/* tests/fixtures/sd-unet-variant (tests/ref/sd_unet_variant.py, diffusers
 * v0.20.0): the config options the shared fixture leaves at SD's values */
static void variant(void)
{
    glad_sdunet *u;
    int rc = glad_sdunet_load("tests/fixtures/sd-unet-variant.weights.safetensors", &u);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return;
    const glad_sdunet_config *c = glad_sdunet_cfg(u);
    CHECK(c->nblocks == 3 && c->use_linear_projection && !c->flip_sin_to_cos && c->freq_shift == 1 && c->time_embed_dim == 40 &&
          c->transformer_layers[1] == 2 && c->heads[0] == 1 && c->mid_block_scale_factor == 2 && !c->down_cross[0] && c->up_cross[0]);
    glad_st *st;
    if (glad_st_open(&st, "tests/fixtures/sd-unet-variant.case.safetensors")) { CHECK(0); glad_sdunet_free(u); return; }
    run_case(u, st, "", 0);
    run_case(u, st, "l77.", 0);
    glad_st_close(st);
    glad_sdunet_free(u);
}

static const char *TINY =
    "{\"_class_name\": \"UNet2DConditionModel\", \"block_out_channels\": [32, 64], \"layers_per_block\": 1, "
    "\"down_block_types\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"], \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\"], "
    "\"attention_head_dim\": 4, \"cross_attention_dim\": 16, \"in_channels\": 4, \"out_channels\": 4, \"norm_num_groups\": 8}";

/* a config with one key's value replaced (text substitution) must be refused with rc */
static void refuse_cfg(const char *from, const char *to, int rc_want)
{
    char buf[2048];
    const char *p = strstr(TINY, from);
    if (!p) { CHECKF(0, "'%s' not in the tiny config", from); return; }
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - TINY), TINY, to, p + strlen(from));
    glad_sdunet_config c;
    int rc = glad_sdunet_config_parse(&c, buf);
    CHECKF(rc == rc_want, "%s -> %s: rc %d (%s)", from, to, rc, glad_error_detail());
    glad_error_clear();
}

static void configs(void)
{
    glad_sdunet_config c;
    char buf[2048];
    CHECKF(glad_sdunet_config_parse(&c, TINY) == 0, "%s", glad_error_detail());
    CHECK(c.nblocks == 2 && c.layers_per_block[1] == 1 && c.heads[1] == 4 && c.down_cross[0] && !c.down_cross[1] && !c.up_cross[0] &&
          c.up_cross[1] && c.mid_block && c.time_embed_dim == 128 && c.flip_sin_to_cos && c.norm_eps == 1e-5f);
    refuse_cfg("[32, 64]", "[32, 1e9]", GLAD_EINVAL);
    refuse_cfg("[32, 64]", "[32, 60]", GLAD_EINVAL);           /* not a multiple of the groups */
    refuse_cfg("[32, 64]", "[32, 64, 64, 64, 64, 64, 64, 64, 64]", GLAD_EINVAL);
    refuse_cfg("\"layers_per_block\": 1", "\"layers_per_block\": 100000", GLAD_EINVAL);
    refuse_cfg("\"layers_per_block\": 1", "\"layers_per_block\": [1, 2, 3]", GLAD_EINVAL);
    /* per-block layer counts: a model builds and runs at each of its sizes */
    snprintf(buf, sizeof buf, "{\"block_out_channels\": [32, 64, 64], \"layers_per_block\": [1, 3, 2], \"norm_num_groups\": 8, "
             "\"down_block_types\": [\"DownBlock2D\", \"CrossAttnDownBlock2D\", \"DownBlock2D\"], \"cross_attention_dim\": 8, "
             "\"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\", \"UpBlock2D\"], \"in_channels\": 2, \"out_channels\": 3}");
    CHECKF(glad_sdunet_config_parse(&c, buf) == 0, "%s", glad_error_detail());
    glad_sdunet *v = NULL;
    CHECKF(glad_sdunet_create_random(&c, 1, &v) == 0, "%s", glad_error_detail());
    if (v) {
        float x[2 * 4 * 4] = {0}, e[3 * 4 * 4], t = 10, ctx[8] = {1};
        CHECKF(glad_sdunet_forward(v, e, x, 1, 4, 4, &t, ctx, 1) == 0, "%s", glad_error_detail());
        CHECK(glad_sdunet_forward(v, e, x, 1, 2, 4, &t, ctx, 1) == GLAD_EINVAL);   /* 3 levels: multiples of 4 */
        glad_sdunet_free(v);
    }
    refuse_cfg("\"attention_head_dim\": 4", "\"attention_head_dim\": -4", GLAD_EINVAL);
    refuse_cfg("\"attention_head_dim\": 4", "\"attention_head_dim\": 4, \"num_attention_heads\": 4", GLAD_EINVAL);
    refuse_cfg("\"attention_head_dim\": 4", "\"attention_head_dim\": 4, \"class_embed_type\": \"timestep\"", GLAD_EINVAL);
    refuse_cfg("\"attention_head_dim\": 4", "\"attention_head_dim\": 4, \"resnet_time_scale_shift\": \"scale_shift\"", GLAD_EINVAL);
    refuse_cfg("\"attention_head_dim\": 4", "\"attention_head_dim\": 4, \"norm_eps\": -1", GLAD_EINVAL);
    refuse_cfg("\"DownBlock2D\"]", "\"AttnDownBlock2D\"]", GLAD_EINVAL);
    refuse_cfg("\"cross_attention_dim\": 16", "\"cross_attention_dim\": 0", GLAD_EINVAL);
    refuse_cfg("\"norm_num_groups\": 8", "\"norm_num_groups\": null", GLAD_EINVAL);
    refuse_cfg("\"_class_name\": \"UNet2DConditionModel\"", "\"_class_name\": \"UNet2DModel\"", GLAD_EINVAL);
    refuse_cfg("\"_class_name\"", "[\"_class_name\"", GLAD_EFORMAT);
    /* heads that do not divide the channels: refused when the layout is built */
    glad_sdunet *u = NULL;
    snprintf(buf, sizeof buf, "%s", TINY);
    char *p = strstr(buf, "\"attention_head_dim\": 4");
    p[22] = '5';
    CHECK(glad_sdunet_config_parse(&c, buf) == 0);
    CHECK(glad_sdunet_create_random(&c, 1, &u) == GLAD_EINVAL && u == NULL);
    CHECKF(strstr(glad_error_detail(), "heads") != NULL, "%s", glad_error_detail());
}

/* a file with the tiny config and conv_in's two tensors: `drop` left out,
 * `bad` reshaped (or made float64 when f64) */
static int write_model(const char *path, const char *cfg, const char *drop, const char *bad, int f64)
{
    static const char *const names[2] = {"conv_in.weight", "conv_in.bias"};
    const char *nm[2];
    glad_tensor ts[2];
    const glad_tensor *tp[2];
    float data[2][33 * 4 * 9 * 2];
    memset(data, 0, sizeof data);
    int k = 0;
    for (int i = 0; i < 2; i++) {
        if (drop && !strcmp(names[i], drop)) continue;
        glad_tensor *t = &ts[k];
        memset(t, 0, sizeof *t);
        t->dtype = GLAD_DT_F32;
        if (i == 0) { t->ndim = 4; t->shape[0] = 32; t->shape[1] = 4; t->shape[2] = 3; t->shape[3] = 3; }
        else { t->ndim = 1; t->shape[0] = 32; }
        if (bad && !strcmp(names[i], bad)) { if (f64) t->dtype = GLAD_DT_F64; else t->shape[0] += 1; }
        t->data = data[k];
        nm[k] = names[i];
        tp[k] = t;
        k++;
    }
    const char *mk[] = {"config"}, *mv[] = {cfg};
    return glad_st_save(path, k, nm, tp, 1, mk, mv);
}

static void refusals(void)
{
    char path[128], none[128];
    snprintf(path, sizeof path, "/tmp/glad-test-sdunet-%d.safetensors", (int)getpid());
    snprintf(none, sizeof none, "/tmp/glad-test-sdunet-none-%d.safetensors", (int)getpid());
    glad_sdunet *u = NULL;
    /* missing file, directory */
    CHECK(glad_sdunet_load(none, &u) == GLAD_EIO);
    CHECKF(strstr(glad_error_detail(), "No such file") != NULL, "%s", glad_error_detail());
    CHECK(glad_sdunet_load("/tmp", &u) == GLAD_EIO);
    CHECKF(strstr(glad_error_detail(), "Is a directory") != NULL, "%s", glad_error_detail());
    /* a file with only conv_in: the first tensor the config implies and lacks is named */
    CHECK(write_model(path, TINY, NULL, NULL, 0) == 0);
    CHECK(glad_sdunet_load(path, &u) == GLAD_ENOTFOUND && u == NULL);
    CHECKF(strstr(glad_error_detail(), "'time_embedding.linear_1.weight' missing") != NULL, "%s", glad_error_detail());
    CHECK(write_model(path, TINY, "conv_in.bias", NULL, 0) == 0);
    CHECK(glad_sdunet_load(path, &u) == GLAD_ENOTFOUND);
    CHECKF(strstr(glad_error_detail(), "'conv_in.bias' missing") != NULL, "%s", glad_error_detail());
    /* wrong shape, wrong dtype */
    CHECK(write_model(path, TINY, NULL, "conv_in.weight", 0) == 0);
    CHECK(glad_sdunet_load(path, &u) == GLAD_ESHAPE);
    CHECKF(strstr(glad_error_detail(), "'conv_in.weight' is [33,4,3,3]") != NULL, "%s", glad_error_detail());
    CHECK(write_model(path, TINY, NULL, "conv_in.weight", 1) == 0);
    CHECK(glad_sdunet_load(path, &u) == GLAD_ESHAPE);
    /* absurd config in a file: refused before any tensor is looked at */
    char big[2048];
    snprintf(big, sizeof big, "%.*s[32, 99999999]%s", (int)(strstr(TINY, "[32, 64]") - TINY), TINY, strstr(TINY, "[32, 64]") + 8);
    CHECK(write_model(path, big, NULL, NULL, 0) == 0);
    CHECK(glad_sdunet_load(path, &u) == GLAD_EINVAL);
    CHECKF(strstr(glad_error_detail(), "block_out_channels[1]") != NULL, "%s", glad_error_detail());
    CHECK(write_model(path, "{\"block_out_channels\": 3", NULL, NULL, 0) == 0);
    CHECK(glad_sdunet_load(path, &u) == GLAD_EFORMAT);
    remove(path);
}

/* naive references for the token kernels */
static void tokens(void)
{
    int C = 16, T = 37, L = 5, heads = 4, hd = C / heads;
    float *x = malloc(sizeof(float) * C * T), *g = malloc(sizeof(float) * C), *b = malloc(sizeof(float) * C), *o = malloc(sizeof(float) * C * T);
    for (int i = 0; i < C * T; i++) x[i] = sinf(0.37f * i) * 2 + 0.5f;
    for (int i = 0; i < C; i++) { g[i] = 1 + 0.1f * i; b[i] = 0.05f * i; }
    glad_layernorm_cols_forward(o, x, g, b, C, T, 1e-5f);
    double err = 0;
    for (int t = 0; t < T; t++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[c * T + t];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[c * T + t] - m) * (x[c * T + t] - m);
        v /= C;
        for (int c = 0; c < C; c++) err = fmax(err, fabs((x[c * T + t] - m) / sqrt(v + 1e-5) * g[c] + b[c] - o[c * T + t]));
    }
    CHECKF(err < 1e-5, "layernorm cols err %g", err);
    /* GEGLU in place */
    float *pr = malloc(sizeof(float) * 2 * C * T), *pc = malloc(sizeof(float) * 2 * C * T);
    for (int i = 0; i < 2 * C * T; i++) pr[i] = pc[i] = cosf(0.11f * i) * 3;
    glad_geglu_forward(pr, pr, C, T);
    err = 0;
    for (int i = 0; i < C * T; i++) {
        double gg = pc[C * T + i];
        err = fmax(err, fabs(pc[i] * 0.5 * gg * (1 + erf(gg / sqrt(2.0))) - pr[i]));
    }
    CHECKF(err < 1e-5, "geglu err %g", err);
    /* attention with a context of L tokens */
    float *q = malloc(sizeof(float) * C * T), *k = malloc(sizeof(float) * C * L), *v = malloc(sizeof(float) * C * L);
    float *ws = malloc(sizeof(float) * glad_xattn_workspace(L) * (size_t)omp_get_max_threads());
    for (int i = 0; i < C * T; i++) q[i] = sinf(0.7f * i);
    for (int i = 0; i < C * L; i++) { k[i] = cosf(0.3f * i); v[i] = sinf(0.21f * i + 1); }
    glad_xattn_forward(o, q, k, v, C, T, L, heads, ws);
    err = 0;
    for (int h = 0; h < heads; h++)
        for (int t = 0; t < T; t++) {
            double s[16], mx = -1e30, sum = 0;
            for (int j = 0; j < L; j++) {
                s[j] = 0;
                for (int d = 0; d < hd; d++) s[j] += q[(h * hd + d) * T + t] * k[(h * hd + d) * L + j];
                s[j] /= sqrt(hd);
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < L; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
            for (int d = 0; d < hd; d++) {
                double a = 0;
                for (int j = 0; j < L; j++) a += s[j] / sum * v[(h * hd + d) * L + j];
                err = fmax(err, fabs(a - o[(h * hd + d) * T + t]));
            }
        }
    CHECKF(err < 1e-5, "xattn err %g", err);
    free(x); free(g); free(b); free(o); free(pr); free(pc); free(q); free(k); free(v); free(ws);
}

/* a random model: deterministic, and each image's eps independent of its batch */
static void random_model(void)
{
    glad_sdunet_config c;
    if (glad_sdunet_config_parse(&c, TINY)) { CHECK(0); return; }
    glad_sdunet *u;
    if (glad_sdunet_create_random(&c, 7, &u)) { CHECKF(0, "%s", glad_error_detail()); return; }
    int H = 8, W = 16, L = 3, X = 16;
    size_t per = (size_t)4 * H * W;
    float x[2 * 4 * 8 * 16], e2[2 * 4 * 8 * 16], e1[4 * 8 * 16], ctx[2 * 3 * 16], t[2] = {5, 900};
    for (size_t i = 0; i < 2 * per; i++) x[i] = sinf(0.13f * (float)i);
    for (int i = 0; i < 2 * L * X; i++) ctx[i] = cosf(0.29f * (float)i);
    CHECKF(glad_sdunet_forward(u, e2, x, 2, H, W, t, ctx, L) == 0, "%s", glad_error_detail());
    CHECK(glad_sdunet_forward(u, e1, x + per, 1, H, W, t + 1, ctx + L * X, L) == 0);
    double e = rel_err(e1, e2 + per, per), m = 0;
    for (size_t i = 0; i < per; i++) m = fmax(m, fabs(e1[i]));
    CHECKF(e < 1e-6 && m > 0, "batch independence %g (max %g)", e, m);
    CHECK(glad_sdunet_activation_bytes(u) > 0 && glad_sdunet_forward_flops(u) > 0 && glad_sdunet_nparams(u) > 100000);
    /* sizes the model cannot take */
    CHECK(glad_sdunet_forward(u, e1, x, 1, 7, 8, t, ctx, L) == GLAD_EINVAL);
    CHECKF(strstr(glad_error_detail(), "multiples of 2") != NULL, "%s", glad_error_detail());
    CHECK(glad_sdunet_forward(u, e1, x, 0, 8, 8, t, ctx, L) == GLAD_EINVAL);
    CHECK(glad_sdunet_forward(u, e1, x, 1, 8, 8, t, ctx, 0) == GLAD_EINVAL);
    float tn[1] = {NAN};
    CHECK(glad_sdunet_forward(u, e1, x, 1, 8, 8, tn, ctx, L) == GLAD_EINVAL);
    CHECK(glad_sdunet_forward(u, e1, x, 1, 1 << 20, 1 << 20, t, ctx, L) == GLAD_EINVAL);
    float *tb = calloc(4000, sizeof(float));   /* only the checks before any work read the inputs */
    int rc = glad_sdunet_forward(u, e1, x, 4000, 16384, 16384, tb, ctx, L);
    free(tb);
    CHECKF(rc == GLAD_ERANGE, "rc %d: %s", rc, glad_error_detail());
    glad_sdunet_free(u);
}

/* glad_st_open maps a regular file; glad_st_open_mem copies bytes; both give
 * the same entries, data and metadata; the bounds checks hold on both; the
 * SD UNet uses the mapped weights in place (4-byte-aligned data) */
static void st_mapped(void)
{
    const char *path = "/tmp/glad-test-sdunet-map.safetensors";
    glad_tensor a, b;
    int64_t sa[2] = {3, 5}, sb[1] = {7};
    CHECK(glad_tensor_alloc(&a, GLAD_DT_F32, 2, sa) == 0 && glad_tensor_alloc(&b, GLAD_DT_F64, 1, sb) == 0);
    for (int i = 0; i < 15; i++) ((float *)a.data)[i] = (float)i * 0.5f - 3;
    for (int i = 0; i < 7; i++) ((double *)b.data)[i] = i * 1.25;
    const char *names[] = {"w.a", "w.b"}, *mk[] = {"config"}, *mv[] = {"{\"k\": 1}"};
    const glad_tensor *ts[] = {&a, &b};
    CHECK(glad_st_save(path, 2, names, ts, 1, mk, mv) == 0);
    FILE *f = fopen(path, "rb");
    static unsigned char bytes[4096];
    size_t n = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    glad_st *m = NULL, *c = NULL;
    CHECKF(glad_st_open(&m, path) == 0, "%s", glad_error_detail());
    CHECKF(n > 8 && glad_st_open_mem(&c, bytes, n, "bytes") == 0, "%s", glad_error_detail());
    if (!m || !c) { glad_st_close(m); glad_st_close(c); return; }
    CHECK(glad_st_is_mapped(m) == 1 && glad_st_is_mapped(c) == 0);
    CHECK(glad_st_count(m) == 2 && glad_st_count(c) == 2);
    for (int i = 0; i < 2; i++) {
        const glad_st_entry *em = glad_st_find(m, names[i]), *ec = glad_st_find(c, names[i]);
        CHECK(em && ec && em->dtype == ec->dtype && em->begin == ec->begin && em->end == ec->end &&
              !memcmp(glad_st_data(m, em), glad_st_data(c, ec), em->end - em->begin) &&
              !memcmp(glad_st_data(m, em), ts[i]->data, em->end - em->begin));
    }
    CHECK(!strcmp(glad_st_meta(m, "config"), mv[0]) && !strcmp(glad_st_meta(c, "config"), mv[0]));
    glad_st_close(m);
    glad_st_close(c);
    /* every cut of the file is refused from memory, as test_stream checks from files */
    int ok = 1;
    for (size_t k = 0; k < n && ok; k++)
        if (glad_st_open_mem(&c, bytes, k, "cut") == 0) { ok = 0; glad_st_close(c); }
    CHECK(ok);
    CHECK(glad_st_open_mem(&c, bytes, 0, "empty") == GLAD_EFORMAT && strstr(glad_error_detail(), "empty"));
    remove(path);
    glad_tensor_free(&a);
    glad_tensor_free(&b);
    /* the variant model loads from the mapping and uses its weights in place: the
     * same eps as from a copy of the file's bytes (glad_sdunet_load_st) */
    const char *wp = "tests/fixtures/sd-unet-variant.weights.safetensors";
    glad_sdunet *u1 = NULL, *u2 = NULL;
    glad_st *w = NULL;
    CHECKF(glad_sdunet_load(wp, &u1) == 0, "%s", glad_error_detail());
    CHECK(glad_st_open(&w, wp) == 0 && glad_st_is_mapped(w));
    CHECKF(w && glad_sdunet_load_st(w, wp, &u2) == 0, "%s", glad_error_detail());
    if (u1 && u2) {
        const glad_sdunet_config *cf = glad_sdunet_cfg(u1);
        int B = 1, S = 8, L = 3, X = cf->cross_attention_dim, C = cf->in_channels, O = cf->out_channels;
        float *x = malloc(sizeof(float) * C * S * S), *ctx = malloc(sizeof(float) * L * X),
              *e1 = malloc(sizeof(float) * O * S * S), *e2 = malloc(sizeof(float) * O * S * S), t = 301;
        if (x && ctx && e1 && e2) {
            for (int i = 0; i < C * S * S; i++) x[i] = (float)((i * 37) % 200) / 100.0f - 1;
            for (int i = 0; i < L * X; i++) ctx[i] = (float)((i * 53) % 200) / 100.0f - 1;
            CHECK(glad_sdunet_forward(u1, e1, x, B, S, S, &t, ctx, L) == 0 &&
                  glad_sdunet_forward(u2, e2, x, B, S, S, &t, ctx, L) == 0 &&
                  !memcmp(e1, e2, sizeof(float) * O * S * S));
        }
        free(x); free(ctx); free(e1); free(e2);
    }
    glad_sdunet_free(u1);
    glad_sdunet_free(u2);
    glad_st_close(w);
}

int main(void)
{
    st_mapped();
    configs();
    refusals();
    tokens();
    random_model();
    variant();
    const char *shared = check_shared();
    if (!shared) SKIP("../shared missing (GLAD_SHARED): no sd-unet fixture parity");
    else parity(shared);
    return check_done();
}
