/* test_train.c - the library training step (lib/diffusion/train.h) on a tiny
 * UNet and small streams written here: a DDPM step's loss and Adam update
 * against a hand computation, the ATP target, clipping and EMA, resume equal
 * to an uninterrupted run (bit for bit), the checkpoint reconciliation, the
 * training set's errors, the output and log checks; and the splitmix64
 * sequence the UNet initialisation draws. */
#include <unistd.h>
#include "check.h"
#include "core/rng.h"
#include "diffusion/train.h"
#include "io/stream.h"
#include "nn/nn.h"

#define S 8
#define C 3
#define PER (C * S * S)

static char dir[64];

static uint8_t pix(int rec, int i, int salt) { return (uint8_t)((rec * 37 + i * 11 + salt * 101 + (i * i) % 7) & 255); }

/* n records of [C,S,S] u8 images; with anomalies when atp (record k's mask
 * empty when k == empty); drop names one field of record 1 to leave out */
static int write_stream(const char *path, int n, int atp, int empty, const char *drop)
{
    glad_writer *wr;
    if (glad_writer_open(&wr, path, 0) < 0) return -1;
    glad_record h;
    glad_header_init(&h);
    glad_writer_write(wr, &h);
    glad_record_free(&h);
    for (int k = 0; k < n; k++) {
        glad_record r;
        glad_record_init(&r);
        char id[32];
        snprintf(id, sizeof id, "r%d", k);
        glad_record_set_str(&r, "id", id);
        glad_tensor t;
        const char *keys[] = {"image", "anomalous", "synth_mask"};
        for (int f = 0; f < (atp ? 3 : 1); f++) {
            if (drop && k == 1 && !strcmp(drop, keys[f])) continue;
            glad_tensor_alloc4(&t, GLAD_DT_U8, f == 2 ? 1 : C, S, S, -1);
            uint8_t *p = t.data;
            for (int i = 0; i < (f == 2 ? 1 : C) * S * S; i++) p[i] = f == 2 ? (uint8_t)(k != empty && i % 3 == 0) : pix(k, i, f);
            glad_record_set_tensor(&r, keys[f], &t);
        }
        glad_writer_write(wr, &r);
        glad_record_free(&r);
    }
    return glad_writer_close(wr);
}

static char *tmp(const char *name)
{
    static char b[64][160];   /* a ring: each path outlives the 63 calls after it */
    static int k;
    char *p = b[k++ % 64];
    snprintf(p, 160, "%s/%s", dir, name);
    return p;
}

/* a tiny UNet: one level of 32 channels, one res block, no attention */
static void tiny(glad_train_config *c, const char *input)
{
    glad_train_config_default(c);
    c->input = input;
    c->base = 32; c->nmults = 1; c->mults[0] = 1; c->res_blocks = 1; c->heads = 1; c->nattn = 0;
}

static void perm_of(int *perm, int n, uint64_t seed, long epoch)
{
    glad_rng r;
    glad_rng_seed(&r, seed, 1, (uint64_t)epoch);
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) { int j = (int)glad_rng_below(&r, (uint64_t)i + 1), k = perm[i]; perm[i] = perm[j]; perm[j] = k; }
}

/* DDPM, step 0, by hand: x_t = √ᾱ x0 + √(1−ᾱ) ε, loss = mean_b Σ (ε_θ − ε)²,
 * then one Adam step (scalar double reference) */
static void ddpm_by_hand(void)
{
    const char *in = tmp("ddpm.msgpack");
    CHECK(write_stream(in, 5, 0, -1, NULL) == 0);
    glad_train_config c;
    tiny(&c, in);
    c.batch = 2; c.seed = 11; c.steps = 3; c.lr = 1e-3; c.dropout = 0.2;
    glad_train *tr;
    int rc = glad_train_open(&tr, &c);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return;
    CHECK(tr->cfg.batch == 2 && tr->cfg.loss == GLAD_TRAIN_DDPM && tr->model.T == 1000 && tr->total == 3);
    glad_unet *ref;
    CHECK(glad_unet_create(&ref, glad_unet_cfg(tr->model.unet)) == 0);
    size_t P = tr->nparams;
    memcpy(glad_unet_weights(ref), glad_unet_weights(tr->model.unet), P * sizeof(float));
    float *w0 = malloc(P * sizeof(float));
    memcpy(w0, glad_unet_weights(ref), P * sizeof(float));
    /* the batch */
    int perm[5], B = 2, T = 1000;
    perm_of(perm, 5, 11, 0);
    glad_rng r;
    glad_rng_seed(&r, 11, 2, 0);
    float x[2 * PER], e[2 * PER], eps[2 * PER], dl[2 * PER], t[2];
    for (int b = 0; b < B; b++) {
        int ti = (int)glad_rng_below(&r, T);
        double ab = 1;
        for (int s = 0; s <= ti; s++) ab *= 1 - (1e-4 + (0.02 - 1e-4) * s / (T - 1));
        t[b] = (float)ti;
        for (int i = 0; i < PER; i++) {
            e[b * PER + i] = (float)glad_rng_normal(&r);
            double x0 = pix(perm[b], i, 0) / 127.5 - 1;
            x[b * PER + i] = (float)(sqrt(ab) * x0 + sqrt(1 - ab) * e[b * PER + i]);
        }
    }
    glad_unet_zero_grad(ref);
    CHECK(glad_unet_forward(ref, eps, x, t, B, 1, 11 * 1000003u + 0) == 0);
    double loss = 0;
    for (int i = 0; i < B * PER; i++) { double d = (double)eps[i] - e[i]; loss += d * d; dl[i] = (float)(2 * d / B); }
    loss /= B;
    CHECK(glad_unet_backward(ref, dl, NULL) == 0);
    CHECK(glad_train_step(tr) == 0);
    CHECK(tr->step == 1);
    CHECK(memcmp(tr->x, x, sizeof x) == 0 && memcmp(tr->t, t, sizeof t) == 0);
    CHECKF(fabs(tr->loss - loss) <= 1e-6 * loss, "loss %.10g vs by hand %.10g", tr->loss, loss);
    /* Adam step 1: m = (1−β1) g, v = (1−β2) g², p −= lr m̂ / (√v̂ + ε) */
    const float *g = glad_unet_grads(ref), *w = glad_unet_weights(tr->model.unet);
    double worst = 0;
    for (size_t i = 0; i < P; i++) {
        double m = 0.1 * g[i], v = 0.001 * (double)g[i] * g[i], mh = m / (1 - 0.9), vh = v / (1 - 0.999);
        double want = w0[i] - 1e-3 * mh / (sqrt(vh) + 1e-8);
        worst = fmax(worst, fabs(want - w[i]) / 1e-3);
    }
    CHECKF(worst < 1e-3, "Adam step off the scalar reference by %.3g lr", worst);
    free(w0);
    glad_unet_free(ref);
    CHECK(glad_train_close(tr) == 0);
}

/* ATP: x_t = √ᾱ (a anomalous + (1−a) x0) + √(1−ᾱ) ε and x̂0 of the target is
 * the normal image; an empty mask gives the DDPM target */
static void atp_target(void)
{
    const char *in = tmp("atp.msgpack");
    CHECK(write_stream(in, 4, 1, 2, NULL) == 0);
    glad_train_config c;
    tiny(&c, in);
    c.loss = GLAD_TRAIN_ATP; c.batch = 4; c.seed = 3; c.steps = 4;
    glad_train *tr;
    int rc = glad_train_open(&tr, &c);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return;
    int perm[4];
    for (long s = 0; s < 3; s++) {
        perm_of(perm, 4, 3, s);   /* one step an epoch */
        tr->step = s;   /* the batches of the first steps, without training */
        CHECK(glad_train_batch(tr) == 0);
        double worst_x0 = 0, worst_xt = 0;
        int plain = 0;
        for (int b = 0; b < 4; b++) {
            int idx = perm[b], ti = (int)tr->t[b];
            double ab = tr->model.alpha_bar[ti], a = (double)ti / 1000, sa = sqrt(ab), sb = sqrt(1 - ab);
            const float *xt = tr->x + b * PER, *tg = tr->target + b * PER, *e = tr->eps + b * PER;
            if (idx == 2) { plain = memcmp(tg, e, PER * sizeof(float)) == 0; continue; }
            for (int i = 0; i < PER; i++) {
                double x0 = pix(idx, i, 0) / 127.5 - 1, an = pix(idx, i, 1) / 127.5 - 1;
                double want = sa * (a * an + (1 - a) * x0) + sb * e[i];
                worst_xt = fmax(worst_xt, fabs(want - xt[i]));
                worst_x0 = fmax(worst_x0, fabs((xt[i] - sb * tg[i]) / sa - x0) * sa);
            }
        }
        CHECKF(worst_xt < 1e-6, "x_t off by %.3g", worst_xt);
        CHECKF(worst_x0 < 2e-6, "x0 of the ATP target off the normal image by %.3g / sqrt(alpha_bar)", worst_x0);
        CHECKF(plain, "step %ld: the record with an empty mask has the DDPM target", s);
    }
    CHECK(glad_train_close(tr) == 0);
}

/* clipping scales the gradient to the norm; the EMA follows the weights */
static void clip_and_ema(void)
{
    const char *in = tmp("ddpm.msgpack");
    glad_train_config c;
    tiny(&c, in);
    c.batch = 3; c.ema = 0.9; c.clip = 0.01; c.steps = 2;
    glad_train *tr;
    int rc = glad_train_open(&tr, &c);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (rc) return;
    size_t P = tr->nparams;
    float *g = malloc(P * sizeof(float)), *e0 = malloc(P * sizeof(float));
    CHECK(memcmp(tr->ema, glad_unet_weights(tr->model.unet), P * sizeof(float)) == 0);
    memcpy(e0, tr->ema, P * sizeof(float));
    CHECK(glad_train_batch(tr) == 0 && glad_train_forward(tr) == 0 && glad_train_backward(tr) == 0);
    memcpy(g, glad_unet_grads(tr->model.unet), P * sizeof(float));
    double norm = sqrt(glad_sumsq(g, P));
    CHECKF(norm > 0.01, "gradient norm %g (the test wants it clipped)", norm);
    CHECK(glad_train_update(tr) == 0);
    float s = (float)(0.01 / (norm + 1e-6));
    const float *w = glad_unet_weights(tr->model.unet);
    int bad_m = 0, bad_e = 0;
    for (size_t i = 0; i < P; i++) {
        bad_m += tr->adam_m[i] != (1.0f - 0.9f) * (g[i] * s);
        bad_e += tr->ema[i] != 0.9f * e0[i] + (1 - 0.9f) * w[i];
    }
    CHECKF(bad_m == 0, "%d first moments are not of the clipped gradient", bad_m);
    CHECKF(bad_e == 0, "%d EMA values off", bad_e);
    CHECK_NEAR(sqrt(glad_sumsq(glad_unet_grads(tr->model.unet), P)), 0.01, 1e-6);
    free(g); free(e0);
    CHECK(glad_train_close(tr) == 0);
}

static int same_file(const char *a, const char *b)
{
    FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
    int same = f && g, x, y;
    while (same && ((x = getc(f)) != EOF) | ((y = getc(g)) != EOF)) same = x == y;
    if (f) fclose(f);
    if (g) fclose(g);
    return same;
}

static int train_to(const glad_train_config *c, const char *out)
{
    glad_train *tr;
    int rc = glad_train_open(&tr, c);
    while (rc == 0 && tr->step < tr->total) rc = glad_train_step(tr);
    if (tr && rc == 0) rc = glad_train_save(tr, out);
    if (tr) glad_train_close(tr);
    return rc;
}

/* 5 steps straight == 2 steps, then 3 resumed (crossing an epoch: 4 images,
 * batch 3), for DDPM and ATP with EMA, clipping and AdamW */
static void resume_exact(void)
{
    const char *in = tmp("atp2.msgpack");
    CHECK(write_stream(in, 4, 1, 1, NULL) == 0);
    for (int atp = 0; atp < 2; atp++) {
        glad_train_config c;
        tiny(&c, in);
        c.loss = atp; c.batch = 3; c.seed = 5; c.ema = 0.8; c.clip = 1; c.optim = GLAD_TRAIN_ADAMW; c.wd = 0.01; c.dropout = 0.1;
        c.steps = 5;
        CHECKF(train_to(&c, tmp("straight.model")) == 0, "%s", glad_error_detail());
        c.steps = 2;
        CHECKF(train_to(&c, tmp("part.model")) == 0, "%s", glad_error_detail());
        /* resumed with nothing but the steps: the rest is the checkpoint's */
        glad_train_config r;
        glad_train_config_default(&r);
        r.input = in; r.resume = tmp("part.model"); r.steps = 5;
        CHECKF(train_to(&r, tmp("resumed.model")) == 0, "%s", glad_error_detail());
        CHECKF(same_file(tmp("straight.model"), tmp("resumed.model")), "%s: resumed != uninterrupted", atp ? "atp" : "ddpm");
    }
}

/* a set field that differs from the checkpoint's is refused by name */
static void reconcile(void)
{
    const char *in = tmp("atp2.msgpack"), *ck = tmp("part.model");   /* atp, batch 3, seed 5, ... at step 2 */
    const char *fields[] = {"loss", "batch", "lr", "seed", "base_channels", "optim", "ema", "betas", "num_res_blocks"};
    for (size_t k = 0; k < sizeof fields / sizeof *fields; k++) {
        glad_train_config c;
        glad_train_config_default(&c);
        c.input = in; c.resume = ck; c.steps = 5;
        switch (k) {
        case 0: c.loss = GLAD_TRAIN_DDPM; break;
        case 1: c.batch = 4; break;
        case 2: c.lr = 1e-3; break;
        case 3: c.seed = 6; break;
        case 4: c.base = 64; break;
        case 5: c.optim = GLAD_TRAIN_ADAM; break;
        case 6: c.ema = 0.9; break;
        case 7: c.betas = GLAD_BETAS_SCALED_LINEAR; break;
        case 8: c.res_blocks = 2; break;
        }
        glad_train *tr;
        int rc = glad_train_open(&tr, &c);
        CHECKF(rc == GLAD_ERANGE && strstr(glad_error_detail(), fields[k]), "%s: rc %d, '%s'", fields[k], rc, glad_error_detail());
        if (!rc) glad_train_close(tr);
    }
    /* the same values given are fine; unset ones come from the checkpoint */
    glad_train_config c;
    glad_train_config_default(&c);
    c.input = in; c.resume = ck; c.steps = 5; c.batch = 3; c.lr = 3e-4; c.preset = GLAD_TRAIN_PRESET_DDAD; c.base = 32; c.nmults = 1;
    c.mults[0] = 1; c.res_blocks = 1; c.heads = 1; c.nattn = 0; c.dropout = 0.1;
    glad_train *tr;
    int rc = glad_train_open(&tr, &c);
    CHECKF(rc == 0, "%s", glad_error_detail());
    if (!rc) {
        CHECK(tr->step == 2 && tr->cfg.loss == GLAD_TRAIN_ATP && tr->cfg.seed == 5 && tr->cfg.optim == GLAD_TRAIN_ADAMW && tr->cfg.ema == 0.8 &&
              tr->cfg.clip == 1 && tr->cfg.wd == 0.01 && tr->ema);
        glad_train_close(tr);
    }
    /* nothing to do */
    c.steps = 2;
    rc = glad_train_open(&tr, &c);
    CHECKF(rc == GLAD_ERANGE && strstr(glad_error_detail(), "at step 2"), "rc %d '%s'", rc, glad_error_detail());
    /* no such checkpoint, a directory */
    c.steps = 5; c.resume = tmp("nope.model");
    rc = glad_train_open(&tr, &c);
    CHECKF(rc < 0 && strstr(glad_error_detail(), "No such file or directory"), "'%s'", glad_error_detail());
    c.resume = dir;
    rc = glad_train_open(&tr, &c);
    CHECKF(rc < 0 && strstr(glad_error_detail(), "Is a directory"), "'%s'", glad_error_detail());
}

/* the training set's errors name the record and the field; files are
 * checked before the first step */
static void errors(void)
{
    glad_train_data d;
    CHECK(write_stream(tmp("noimg.msgpack"), 3, 0, -1, "image") == 0);
    int rc = glad_train_data_load(&d, tmp("noimg.msgpack"), GLAD_TRAIN_DDPM);
    CHECKF(rc == GLAD_ENOTFOUND && !strcmp(glad_error_detail(), "record 'r1': 'image' missing"), "'%s'", glad_error_detail());
    CHECK(d.n == 0 && !d.img);
    CHECK(write_stream(tmp("noanom.msgpack"), 3, 1, -1, "anomalous") == 0);
    CHECK(glad_train_data_load(&d, tmp("noanom.msgpack"), GLAD_TRAIN_DDPM) == 0 && d.n == 3 && !d.anom);
    glad_train_data_free(&d);
    rc = glad_train_data_load(&d, tmp("noanom.msgpack"), GLAD_TRAIN_ATP);
    CHECKF(rc < 0 && strstr(glad_error_detail(), "record 'r1': 'anomalous' missing"), "'%s'", glad_error_detail());
    rc = glad_train_data_load(&d, tmp("absent.msgpack"), GLAD_TRAIN_DDPM);
    CHECKF(rc < 0 && strstr(glad_error_detail(), "No such file or directory"), "'%s'", glad_error_detail());
    /* an output that cannot be written and a log that cannot be written fail in open */
    glad_train_config c;
    tiny(&c, tmp("ddpm.msgpack"));
    c.output = tmp("no/such/dir/m.model");
    glad_train *tr;
    rc = glad_train_open(&tr, &c);
    CHECKF(rc == GLAD_EIO && strstr(glad_error_detail(), "No such file or directory"), "'%s'", glad_error_detail());
    c.output = dir;
    rc = glad_train_open(&tr, &c);
    CHECKF(rc == GLAD_EIO && strstr(glad_error_detail(), "Is a directory"), "'%s'", glad_error_detail());
    c.output = NULL; c.log = "/dev/full";
    rc = glad_train_open(&tr, &c);
    CHECKF(rc == GLAD_EIO && strstr(glad_error_detail(), "/dev/full"), "'%s'", glad_error_detail());
    /* a configuration that cannot be built is a usage error (GLAD_EINVAL) */
    c.log = NULL; c.base = 40;
    rc = glad_train_open(&tr, &c);
    CHECKF(rc == GLAD_EINVAL && strstr(glad_error_detail(), "multiple of 32"), "'%s'", glad_error_detail());
    c.base = 32; c.nmults = 4; c.res_blocks = 16;   /* 4 x 17 skips, and 8 is divisible by 2^3 */
    c.mults[1] = c.mults[2] = c.mults[3] = 1;
    rc = glad_train_open(&tr, &c);
    CHECKF(rc == GLAD_EINVAL && strstr(glad_error_detail(), "skip connections"), "'%s'", glad_error_detail());
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/glad-test-train.XXXXXX");
    if (!mkdtemp(dir)) { fprintf(stderr, "mkdtemp failed\n"); return 1; }
    /* splitmix64 from state 0: the reference sequence (Steele, Lea, Flood 2014) */
    uint64_t st = 0;
    CHECK(glad_rng_splitmix64(&st) == 0xE220A8397B1DCDAFull && glad_rng_splitmix64(&st) == 0x6E789E6AA1B965F4ull);
    ddpm_by_hand();
    atp_target();
    clip_and_ema();
    resume_exact();
    reconcile();
    errors();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}
