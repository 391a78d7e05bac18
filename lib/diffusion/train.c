/* train.c - see train.h: the training set, the step (noising through
 * glad_ddim_q_sample_f64, the DDPM and ATP targets, the loss, Adam, clipping,
 * EMA), checkpoints and their reconciliation with the config, the log. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/rng.h"
#include "diffusion/ddim.h"
#include "diffusion/train.h"
#include "io/safetensors.h"
#include "io/stream.h"
#include "nn/bf16.h"
#include "nn/nn.h"

const char *const glad_train_losses[] = {"ddpm", "atp", NULL};
const char *const glad_train_presets[] = {"ddad", "ddad-s", "tiny", NULL};
const char *const glad_train_optims[] = {"adam", "adamw", NULL};

#define U GLAD_TRAIN_UNSET

void glad_train_config_default(glad_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->preset = c->base = c->res_blocks = c->heads = c->nmults = c->nattn = U;
    c->loss = c->betas = c->T = c->batch = c->optim = U;
    c->dropout = c->lr = c->wd = c->ema = c->clip = U;
    c->seed = U;
    c->precision = U;
    c->steps = c->epochs = U;
}

/* the detail so far, prefixed: "<what>: <detail>" */
static int prefixed(int rc, const char *what)
{
    char d[1024];
    snprintf(d, sizeof d, "%s", glad_error_detail());
    return glad_fail(rc, "%s: %s", what, *d ? d : glad_strerror(rc));
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ data */

static int to_u8(uint8_t *dst, const glad_tensor *t)
{
    size_t n = glad_tensor_numel(t);
    if (t->dtype == GLAD_DT_U8) { memcpy(dst, t->data, n); return 0; }
    float *f = malloc(n * sizeof(float));
    if (!f) return GLAD_ENOMEM;
    int rc = glad_tensor_image_to_f32(t, f);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        float v = nearbyintf((f[i] + 1.0f) * 127.5f);
        dst[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    free(f);
    return rc;
}

/* *any = 1 when a mask value is not zero */
static int mask_any(const glad_tensor *m, int *any)
{
    size_t n = glad_tensor_numel(m);
    float *f = malloc((n ? n : 1) * sizeof(float));
    if (!f) return GLAD_ENOMEM;
    int rc = glad_tensor_to_f32(m, f);
    *any = 0;
    for (size_t i = 0; rc == 0 && i < n && !*any; i++) *any = f[i] != 0;
    free(f);
    return rc;
}

/* one record into slot d->n (room made by the caller) */
static int add_record(glad_train_data *d, const glad_record *r, int atp)
{
    const char *id = glad_record_id(r);
    const glad_tensor *im, *an = NULL, *sm = NULL;
    int c, h, w;
    if (glad_record_get_tensor(r, "image", &im)) return glad_fail(GLAD_ENOTFOUND, "record '%s': 'image' missing", id);
    if (glad_tensor_chw(im, &c, &h, &w) || h != w) return glad_fail(GLAD_ESHAPE, "record '%s': 'image' must be a square [C,H,W] image", id);
    if (glad_tensor_has_nonfinite(im)) return glad_fail(GLAD_ENAN, "record '%s': 'image' contains NaN or infinity", id);
    if (d->n > 0 && (c != d->C || h != d->S))
        return glad_fail(GLAD_ESHAPE, "record '%s': 'image' is [%d,%d,%d] but the first record's is [%d,%d,%d]", id, c, h, w, d->C, d->S,
                         d->S);
    if (atp) {
        int c2, h2, w2;
        if (glad_record_get_tensor(r, "anomalous", &an))
            return glad_fail(GLAD_ENOTFOUND, "record '%s': 'anomalous' missing (run glad-synth first, or use the ddpm loss)", id);
        if (glad_record_get_tensor(r, "synth_mask", &sm))
            return glad_fail(GLAD_ENOTFOUND, "record '%s': 'synth_mask' missing (run glad-synth first)", id);
        if (glad_tensor_chw(an, &c2, &h2, &w2) || c2 != c || h2 != h || w2 != w)
            return glad_fail(GLAD_ESHAPE, "record '%s': 'anomalous' shape differs from image", id);
        if (glad_tensor_has_nonfinite(an)) return glad_fail(GLAD_ENAN, "record '%s': 'anomalous' contains NaN or infinity", id);
    }
    size_t per = (size_t)c * h * w;
    if (to_u8(d->img + per * d->n, im)) return glad_fail(GLAD_EDTYPE, "record '%s': 'image' cannot be read as an image", id);
    d->has_anom[d->n] = 0;
    if (atp) {
        int any;
        if (to_u8(d->anom + per * d->n, an)) return glad_fail(GLAD_EDTYPE, "record '%s': 'anomalous' cannot be read as an image", id);
        if (mask_any(sm, &any)) return glad_fail(GLAD_EDTYPE, "record '%s': 'synth_mask' cannot be read as numbers", id);
        d->has_anom[d->n] = (uint8_t)any;
    }
    if (d->n == 0) { d->C = c; d->S = h; }
    d->n++;
    return 0;
}

/* room for one more record of per bytes an image */
static int grow(glad_train_data *d, int *cap, size_t per, int atp)
{
    if (d->n < *cap) return 0;
    int nc = *cap ? *cap * 2 : 64;
    size_t bytes;
    if (nc <= *cap || glad_mul_size((size_t)nc, per, &bytes) || bytes > GLAD_MAX_ALLOC)
        return glad_fail(GLAD_ERANGE, "the training set does not fit in memory (%d images of %zu bytes)", d->n, per);
    uint8_t *ni = realloc(d->img, bytes), *na = NULL, *nh;
    if (ni) d->img = ni;
    if (atp && (na = realloc(d->anom, bytes))) d->anom = na;
    if ((nh = realloc(d->has_anom, (size_t)nc))) d->has_anom = nh;
    if (!ni || (atp && !na) || !nh) return glad_fail(GLAD_ENOMEM, "out of memory holding the training set");
    *cap = nc;
    return 0;
}

typedef struct { glad_train_data *d; int cap, atp; } loader;

static int load_one(const glad_record *r, void *arg)
{
    loader *l = arg;
    glad_train_data *d = l->d;
    const glad_tensor *im;
    int c, h, w;
    /* room for the record's image before it is validated and copied */
    size_t per = glad_record_get_tensor(r, "image", &im) == 0 && glad_tensor_chw(im, &c, &h, &w) == 0 ? (size_t)c * h * w : 1;
    if (d->n > 0) per = (size_t)d->C * d->S * d->S;
    GLAD_TRY(grow(d, &l->cap, per, l->atp));
    return add_record(d, r, l->atp);
}

int glad_train_data_load(glad_train_data *d, const char *path, glad_train_loss loss)
{
    memset(d, 0, sizeof *d);
    loader l = {d, 0, loss == GLAD_TRAIN_ATP};
    int rc = glad_reader_each(path, load_one, &l);
    if (rc == 0 && d->n == 0) rc = glad_fail(GLAD_ENOTFOUND, "no training records in %s", !path || !strcmp(path, "-") ? "<stdin>" : path);
    if (rc < 0) glad_train_data_free(d);
    return rc == GLAD_EINVAL ? GLAD_EFORMAT : rc < 0 ? rc : 0;
}

void glad_train_data_free(glad_train_data *d)
{
    free(d->img); free(d->anom); free(d->has_anom);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------ config */

void glad_train_preset_config(glad_unet_config *u, int preset, int S, int C)
{
    glad_unet_config_default(u, S, C);
    if (preset == GLAD_TRAIN_PRESET_DDAD_S) { u->base = 32; u->heads = 2; u->dropout = 0.3f; }
    if (preset == GLAD_TRAIN_PRESET_TINY) {
        u->base = 32; u->heads = 2; u->num_res_blocks = 1; u->nmults = 3;
        u->mults[0] = 1; u->mults[1] = 2; u->mults[2] = 2; u->nattn = 1; u->attn_res[0] = 16;
    }
}

/* the UNet config asked for: the preset's (or, with no preset and a base,
 * the checkpoint's), then each field that is set */
static void unet_config(glad_unet_config *u, const glad_train_config *c, int S, int C, const glad_unet_config *base)
{
    if (base && c->preset == U) *u = *base;
    else glad_train_preset_config(u, c->preset, S, C);
    if (c->base != U) u->base = c->base;
    if (c->res_blocks != U) u->num_res_blocks = c->res_blocks;
    if (c->heads != U) u->heads = c->heads;
    if (c->dropout != U) u->dropout = (float)c->dropout;
    if (c->nmults != U) { u->nmults = c->nmults; memcpy(u->mults, c->mults, sizeof(float) * (size_t)c->nmults); }
    if (c->nattn != U) { u->nattn = c->nattn; memcpy(u->attn_res, c->attn_res, sizeof(int) * (size_t)c->nattn); }
}

/* a list as the model file's config JSON writes it ("%g") */
static void fmt_list(char *b, size_t n, const float *f, const int *d, int k)
{
    size_t o = 0;
    b[0] = 0;
    for (int i = 0; i < k && o < n; i++) o += (size_t)snprintf(b + o, n - o, "%s%g", i ? "," : "", f ? (double)f[i] : (double)d[i]);
}

/* 0, or GLAD_ERANGE naming the first field of the model config where want
 * differs from the checkpoint's (compared as the file writes them) */
static int unet_config_same(const glad_unet_config *want, const glad_unet_config *have, const char *path)
{
    char a[160], b[160];
    const char *field = NULL;
    if (want->base != have->base) { field = "base_channels"; snprintf(a, sizeof a, "%d", have->base); snprintf(b, sizeof b, "%d", want->base); }
    if (!field) {
        fmt_list(a, sizeof a, have->mults, NULL, have->nmults);
        fmt_list(b, sizeof b, want->mults, NULL, want->nmults);
        if (strcmp(a, b)) field = "channel_mults";
    }
    if (!field && want->num_res_blocks != have->num_res_blocks) {
        field = "num_res_blocks";
        snprintf(a, sizeof a, "%d", have->num_res_blocks);
        snprintf(b, sizeof b, "%d", want->num_res_blocks);
    }
    if (!field) {
        fmt_list(a, sizeof a, NULL, have->attn_res, have->nattn);
        fmt_list(b, sizeof b, NULL, want->attn_res, want->nattn);
        if (strcmp(a, b)) field = "attention_resolutions";
    }
    if (!field && want->heads != have->heads) { field = "n_heads"; snprintf(a, sizeof a, "%d", have->heads); snprintf(b, sizeof b, "%d", want->heads); }
    if (!field) {
        snprintf(a, sizeof a, "%g", (double)have->dropout);
        snprintf(b, sizeof b, "%g", (double)want->dropout);
        if (strcmp(a, b)) field = "dropout";
    }
    if (!field) return 0;
    return glad_fail(GLAD_ERANGE, "%s: the checkpoint's model has %s [%s], not [%s]", path, field, a, b);
}

/* the shortest decimal that reads back as v */
static void fmt_double(char *b, size_t n, double v)
{
    for (int p = 6; p <= 17; p++) {
        snprintf(b, n, "%.*g", p, v);
        if (strtod(b, NULL) == v) return;
    }
}

/* A set field (not U) must equal the checkpoint's metadata key; an unset one
 * takes it. A checkpoint without the key (written before it was recorded)
 * leaves the field as it is. */
static int reconcile_num(const glad_st *st, const char *key, const char *field, const char *path, double lo, double hi, double *v)
{
    const char *s = glad_st_meta(st, key);
    if (!s) return 0;
    char *end;
    errno = 0;
    double have = strtod(s, &end);
    if (end == s || *end || errno || !(have >= lo && have <= hi))
        return glad_fail(GLAD_EFORMAT, "%s: metadata '%s' is '%.40s' (a number in [%g, %g])", path, key, s, lo, hi);
    if (*v == U) { *v = have; return 0; }
    if (*v == have) return 0;
    char a[40], b[40];
    fmt_double(a, sizeof a, have);
    fmt_double(b, sizeof b, *v);
    return glad_fail(GLAD_ERANGE, "%s: the checkpoint's %s is %s, not %s", path, field, a, b);
}

static int reconcile_int(const glad_st *st, const char *key, const char *field, const char *path, int lo, int hi, int *v)
{
    double d = *v;
    GLAD_TRY(reconcile_num(st, key, field, path, lo, hi, &d));
    if (d != (int)d) return glad_fail(GLAD_EFORMAT, "%s: metadata '%s' is not an integer", path, key);
    *v = (int)d;
    return 0;
}

static int reconcile_i64(const glad_st *st, const char *key, const char *field, const char *path, int64_t *v)
{
    const char *s = glad_st_meta(st, key);
    if (!s) return 0;
    char *end;
    errno = 0;
    long long have = strtoll(s, &end, 10);
    if (end == s || *end || errno || have < 0) return glad_fail(GLAD_EFORMAT, "%s: metadata '%s' is '%.40s'", path, key, s);
    if (*v == U) *v = have;
    else if (*v != have) return glad_fail(GLAD_ERANGE, "%s: the checkpoint's %s is %lld, not %lld", path, field, have, (long long)*v);
    return 0;
}

static int reconcile_name(const glad_st *st, const char *key, const char *field, const char *path, const char *const *names, int *v)
{
    const char *s = glad_st_meta(st, key);
    if (!s) return 0;
    int k = -1;
    for (int i = 0; names[i]; i++) if (!strcmp(s, names[i])) k = i;
    if (k < 0) return glad_fail(GLAD_EFORMAT, "%s: metadata '%s' is '%.40s'", path, key, s);
    if (*v == U) *v = k;
    else if (*v != k) return glad_fail(GLAD_ERANGE, "%s: the checkpoint's %s is %s, not %s", path, field, names[k], names[*v]);
    return 0;
}

/* the precision: a checkpoint without 'train.precision' was trained in f32
 * (f32 runs do not write the key) */
static int reconcile_precision(const glad_st *st, const char *path, int *v)
{
    int have = GLAD_PREC_F32;
    if (glad_st_meta(st, "train.precision")) {
        have = U;
        GLAD_TRY(reconcile_name(st, "train.precision", "precision", path, glad_precision_names, &have));
    }
    if (*v == U) *v = have;
    else if (*v != have)
        return glad_fail(GLAD_ERANGE, "%s: the checkpoint's precision is %s, not %s (a run resumes bit-exactly in its own precision only)",
                         path, glad_precision_names[have], glad_precision_names[*v]);
    return 0;
}

/* a float tensor of n values, or NULL when absent or of another size */
static const float *st_floats(const glad_st *st, const char *name, size_t n)
{
    const glad_st_entry *e = glad_st_find(st, name);
    if (!e || e->dtype != GLAD_DT_F32 || e->end - e->begin != n * sizeof(float)) return NULL;
    return glad_st_data(st, e);
}

static int copy_finite(float *dst, const float *src, size_t n, const char *path, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(src[i])) return glad_fail(GLAD_ENAN, "%s: tensor '%s' has NaN or infinity (element %zu)", path, name, i);
    memcpy(dst, src, n * sizeof(float));
    return 0;
}

/* ------------------------------------------------------------------ files */

/* path can be written: a temporary file beside it (glad_st_save writes one
 * and renames it), or, for a device or pipe, the file itself */
static int check_output(const char *path)
{
    struct stat sb;
    int exists = stat(path, &sb) == 0;
    if (exists && S_ISDIR(sb.st_mode)) return glad_fail(GLAD_EIO, "%s: %s", path, strerror(EISDIR));
    if (exists && !S_ISREG(sb.st_mode)) {
        FILE *f = fopen(path, "ab");
        if (!f) return glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno));
        fclose(f);
        return 0;
    }
    char *tmp = glad_strfmt("%s.XXXXXX", path);
    if (!tmp) return glad_fail(GLAD_ENOMEM, "out of memory");
    int fd = mkstemp(tmp), rc = 0;
    if (fd < 0) rc = glad_fail(GLAD_EIO, "%s: cannot create a file there: %s", path, strerror(errno));
    else { close(fd); unlink(tmp); }
    free(tmp);
    return rc;
}

static int log_failed(const char *path) { return glad_fail(GLAD_EIO, "%s: cannot write the log: %s", path, strerror(errno ? errno : EIO)); }

/* Opens the log. On resume a regular file keeps its header and the lines up
 * to the checkpoint's step: the steps a killed run did after its last
 * checkpoint are run again and must not be logged twice. */
static int log_open(glad_train *tr, const char *path, int resume)
{
    errno = 0;
    FILE *f = fopen(path, resume ? "a+" : "w");
    if (!f) return glad_fail(GLAD_EIO, "%s: cannot write the log: %s", path, strerror(errno));
    tr->logf = f;
    setvbuf(f, NULL, _IOLBF, 0);
    struct stat sb;
    int header = !resume;
    if (resume && fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode)) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        off_t off = 0, cut = -1;
        rewind(f);
        while (cut < 0 && (len = getline(&line, &cap, f)) > 0) {
            if (isdigit((unsigned char)line[0]) && strtol(line, NULL, 10) > tr->step) cut = off;
            else off += len;
        }
        free(line);
        if (ferror(f) || (cut >= 0 && ftruncate(fileno(f), cut)) || fseek(f, 0, SEEK_END)) return log_failed(path);
        header = off == 0;
    }
    if (header && (fputs("step,loss,images_per_s\n", f) < 0 || fflush(f))) return log_failed(path);
    return 0;
}

static int log_step(glad_train *tr)
{
    if (!tr->logf) return 0;
    double el = now() - tr->t0;
    errno = 0;
    if (fprintf(tr->logf, "%ld,%.6g,%.2f\n", tr->step, tr->loss, el > 0 ? (double)(tr->step - tr->step0) * tr->B / el : 0) < 0 ||
        ferror(tr->logf))
        return log_failed(tr->cfg.log);
    return 0;
}

/* ------------------------------------------------------------------ open */

/* Model, optimiser state, step and the unset fields from the checkpoint. */
static int resume(glad_train *tr, glad_train_config *c)
{
    const char *path = c->resume;
    glad_st *st;
    GLAD_TRY(glad_unet_file_open(&st, path));
    int rc = glad_model_load_st(&tr->model, st, path);
    if (rc) goto out;
    glad_unet *u = tr->model.unet;
    const glad_unet_config *have = glad_unet_cfg(u);
    size_t P = glad_unet_nparams(u);
    const char *sv = glad_st_meta(st, "train.step");
    const float *m = st_floats(st, "train.adam_m", P), *v = st_floats(st, "train.adam_v", P);
    if (!sv || !m || !v) { rc = glad_fail(GLAD_EFORMAT, "%s: not a training checkpoint (no optimiser state)", path); goto out; }
    char *end;
    errno = 0;
    tr->step = strtol(sv, &end, 10);
    if (end == sv || *end || errno || tr->step < 0) { rc = glad_fail(GLAD_EFORMAT, "%s: metadata 'train.step' is '%.40s'", path, sv); goto out; }
    /* what the config sets must be what the checkpoint was trained with */
    glad_unet_config want;
    unet_config(&want, c, have->img_size, have->in_channels, have);
    int betas = tr->model.betas, T = tr->model.T;
    if ((rc = unet_config_same(&want, have, path)) ||
        (rc = reconcile_name(st, "train.loss", "loss", path, glad_train_losses, &c->loss)) ||
        (c->betas != U && c->betas != betas &&
         (rc = glad_fail(GLAD_ERANGE, "%s: the checkpoint's betas is %s, not %s", path, glad_betas_names[betas], glad_betas_names[c->betas]))) ||
        (c->T != U && c->T != T && (rc = glad_fail(GLAD_ERANGE, "%s: the checkpoint's T is %d, not %d", path, T, c->T))) ||
        (rc = reconcile_int(st, "train.batch", "batch", path, 1, 1 << 30, &c->batch)) ||
        (rc = reconcile_num(st, "train.lr", "lr", path, 0, 1e9, &c->lr)) ||
        (rc = reconcile_name(st, "train.optim", "optim", path, glad_train_optims, &c->optim)) ||
        (rc = reconcile_num(st, "train.wd", "wd", path, 0, 1e9, &c->wd)) ||
        (rc = reconcile_num(st, "train.ema_decay", "ema", path, 0, 0.999999999, &c->ema)) ||
        (rc = reconcile_num(st, "train.clip", "clip", path, 0, 1e300, &c->clip)) ||
        (rc = reconcile_i64(st, "train.seed", "seed", path, &c->seed)) || (rc = reconcile_precision(st, path, &c->precision)))
        goto out;
    c->betas = betas;
    c->T = T;
    /* the moments, the raw weights (the file's own are the EMA when there is
     * one), and the EMA (from the file's weights when the checkpoint has none) */
    tr->nparams = P;
    tr->adam_m = malloc(P * sizeof(float));
    tr->adam_v = malloc(P * sizeof(float));
    tr->ema = c->ema > 0 ? malloc(P * sizeof(float)) : NULL;
    if (!tr->adam_m || !tr->adam_v || (c->ema > 0 && !tr->ema)) { rc = glad_fail(GLAD_ENOMEM, "out of memory"); goto out; }
    if (tr->ema) memcpy(tr->ema, glad_unet_weights(u), P * sizeof(float));
    const float *w = st_floats(st, "train.weights", P), *e = st_floats(st, "train.ema", P);
    if ((rc = copy_finite(tr->adam_m, m, P, path, "train.adam_m")) || (rc = copy_finite(tr->adam_v, v, P, path, "train.adam_v")) ||
        (w && (rc = copy_finite(glad_unet_weights(u), w, P, path, "train.weights"))) ||
        (tr->ema && e && (rc = copy_finite(tr->ema, e, P, path, "train.ema"))))
        goto out;
out:
    glad_st_close(st);
    return rc;
}

/* A new model from the config, for the data's image size. */
static int start(glad_train *tr, glad_train_config *c)
{
    const glad_train_data *d = &tr->data;
    if (c->betas == U) c->betas = GLAD_BETAS_LINEAR;
    if (c->T == U) c->T = GLAD_MODEL_DEFAULT_T;
    if (c->seed == U) c->seed = 0;
    if (c->ema == U) c->ema = 0;
    glad_unet_config uc;
    unet_config(&uc, c, d->S, d->C, NULL);
    if (glad_unet_config_check(&uc)) {
        char what[96];
        snprintf(what, sizeof what, "this model configuration cannot be built for %dx%d images", d->S, d->S);
        return prefixed(GLAD_EINVAL, what);
    }
    GLAD_TRY(glad_unet_create(&tr->model.unet, &uc));
    glad_unet_init(tr->model.unet, (uint64_t)c->seed);
    GLAD_TRY(glad_model_schedule(&tr->model, (glad_betas)c->betas, c->T));
    size_t P = tr->nparams = glad_unet_nparams(tr->model.unet);
    tr->adam_m = calloc(P, sizeof(float));
    tr->adam_v = calloc(P, sizeof(float));
    tr->ema = c->ema > 0 ? malloc(P * sizeof(float)) : NULL;
    if (!tr->adam_m || !tr->adam_v || (c->ema > 0 && !tr->ema)) return glad_fail(GLAD_ENOMEM, "out of memory");
    if (tr->ema) memcpy(tr->ema, glad_unet_weights(tr->model.unet), P * sizeof(float));
    return 0;
}

static int open_tr(glad_train *tr)
{
    glad_train_config *c = &tr->cfg;
    if (c->resume) GLAD_TRY(resume(tr, c));
    if (c->loss == U) c->loss = GLAD_TRAIN_DDPM;
    if (c->precision == U) c->precision = GLAD_PREC_F32;
    /* the precision runs here (glad_precision_set says why not), checked
     * before the data is read; the process's setting is left as it was */
    glad_precision prev = glad_precision_get();
    GLAD_TRY(glad_precision_set((glad_precision)c->precision));
    glad_precision_set(prev);
    GLAD_TRY(glad_train_data_load(&tr->data, c->input, (glad_train_loss)c->loss));
    const glad_train_data *d = &tr->data;
    if (!c->resume) GLAD_TRY(start(tr, c));
    const glad_unet_config *uc = glad_unet_cfg(tr->model.unet);
    if (uc->img_size != d->S || uc->in_channels != d->C)
        return glad_fail(GLAD_ESHAPE, "the model is for %dx%d images with %d channels, the stream has %dx%d with %d (resize with glad-encode --size)",
                         uc->img_size, uc->img_size, uc->in_channels, d->S, d->S, d->C);
    if (c->seed == U) c->seed = 0;
    if (c->batch == U) c->batch = 8;
    if (c->lr == U) c->lr = 3e-4;
    if (c->wd == U) c->wd = 0;
    if (c->optim == U) c->optim = GLAD_TRAIN_ADAM;
    if (c->ema == U) c->ema = 0;
    if (c->clip == U) c->clip = 0;
    if (c->batch < 1 || c->lr < 0 || c->wd < 0 || c->ema < 0 || c->ema >= 1 || c->clip < 0 || (unsigned)c->optim > GLAD_TRAIN_ADAMW)
        return glad_fail(GLAD_EINVAL, "batch %d, lr %g, wd %g, ema %g, clip %g, optim %d: out of range", c->batch, c->lr, c->wd, c->ema,
                         c->clip, c->optim);
    tr->B = c->batch;
    tr->steps_per_epoch = (d->n + (long)tr->B - 1) / tr->B;
    tr->total = c->steps > 0 ? c->steps : c->epochs > 0 ? c->epochs * tr->steps_per_epoch : 1000;
    tr->step0 = tr->step;
    if (tr->step >= tr->total)
        return glad_fail(GLAD_ERANGE, "%s: the checkpoint is at step %ld and training ends at step %ld: nothing to do (ask for more steps)",
                         c->resume, tr->step, tr->total);
    if (c->output) GLAD_TRY(check_output(c->output));
    if (c->log) GLAD_TRY(log_open(tr, c->log, c->resume != NULL));
    tr->per = (size_t)d->C * d->S * d->S;
    size_t n;
    if (glad_mul_size(tr->per, (size_t)tr->B, &n) || glad_mul_size(n, sizeof(float), &n) || n > GLAD_MAX_ALLOC)
        return glad_fail(GLAD_ERANGE, "a batch of %d images of %zu values is too large", tr->B, tr->per);
    tr->x = malloc(n); tr->target = malloc(n); tr->eps = malloc(n); tr->deps = malloc(n);
    tr->t = malloc((size_t)tr->B * sizeof(float));
    tr->perm = malloc((size_t)d->n * sizeof(int));
    tr->x0d = malloc(tr->per * sizeof(double)); tr->zd = malloc(tr->per * sizeof(double)); tr->xtd = malloc(tr->per * sizeof(double));
    if (!tr->x || !tr->target || !tr->eps || !tr->deps || !tr->t || !tr->perm || !tr->x0d || !tr->zd || !tr->xtd)
        return glad_fail(GLAD_ENOMEM, "out of memory");
    tr->perm_epoch = -1;
    tr->t0 = now();
    return 0;
}

int glad_train_open(glad_train **out, const glad_train_config *cfg)
{
    *out = NULL;
    glad_train *tr = calloc(1, sizeof *tr);
    if (!tr) return glad_fail(GLAD_ENOMEM, "out of memory");
    tr->cfg = *cfg;
    int rc = open_tr(tr);
    if (rc) {
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", glad_error_detail());
        glad_train_close(tr);
        return glad_fail(rc, "%s", keep);
    }
    *out = tr;
    return 0;
}

int glad_train_close(glad_train *tr)
{
    if (!tr) return 0;
    int rc = 0;
    errno = 0;
    if (tr->logf && fclose(tr->logf)) rc = log_failed(tr->cfg.log);
    glad_model_free(&tr->model);
    glad_train_data_free(&tr->data);
    free(tr->adam_m); free(tr->adam_v); free(tr->ema);
    free(tr->x); free(tr->t); free(tr->target); free(tr->eps); free(tr->deps);
    free(tr->perm); free(tr->x0d); free(tr->zd); free(tr->xtd);
    free(tr);
    return rc;
}

/* ------------------------------------------------------------------ step */

/* ε* = (x_t − √ᾱ x0)/√(1−ᾱ): the noise whose x̂0 is the normal image */
static void atp_target(float *tgt, const double *xt, const double *x0, double ab, size_t n)
{
    double sa = sqrt(ab), sb = sqrt(1 - ab);
    for (size_t i = 0; i < n; i++) tgt[i] = (float)((xt[i] - sa * x0[i]) / sb);
}

int glad_train_batch(glad_train *tr)
{
    const glad_train_data *d = &tr->data;
    const glad_train_config *c = &tr->cfg;
    long epoch = tr->step / tr->steps_per_epoch, pos = (tr->step % tr->steps_per_epoch) * tr->B;
    glad_rng r;
    if (epoch != tr->perm_epoch) {   /* Fisher-Yates from (seed, 1, epoch) */
        glad_rng_seed(&r, (uint64_t)c->seed, 1, (uint64_t)epoch);
        for (int i = 0; i < d->n; i++) tr->perm[i] = i;
        for (int i = d->n - 1; i > 0; i--) {
            int j = (int)glad_rng_below(&r, (uint64_t)i + 1), k = tr->perm[i];
            tr->perm[i] = tr->perm[j];
            tr->perm[j] = k;
        }
        tr->perm_epoch = epoch;
    }
    glad_rng_seed(&r, (uint64_t)c->seed, 2, (uint64_t)tr->step);
    size_t per = tr->per;
    int T = tr->model.T;
    for (int b = 0; b < tr->B; b++) {
        int idx = tr->perm[(pos + b) % d->n];
        int ti = (int)glad_rng_below(&r, (uint64_t)T);
        double ab = tr->model.alpha_bar[ti], a = (double)ti / T;
        float *e = tr->eps + per * b;   /* the noise, until the forward */
        tr->t[b] = (float)ti;
        glad_rng_normal_f32(&r, e, per);
        const uint8_t *im = d->img + per * idx;
        for (size_t i = 0; i < per; i++) tr->x0d[i] = im[i] / 127.5 - 1.0;
        int atp = c->loss == GLAD_TRAIN_ATP && d->has_anom[idx];
        if (atp) {   /* z = a anomalous + (1 − a) x0: the anomaly grows with t */
            const uint8_t *an = d->anom + per * idx;
            for (size_t i = 0; i < per; i++) tr->zd[i] = a * (an[i] / 127.5 - 1.0) + (1 - a) * tr->x0d[i];
        }
        glad_ddim_q_sample_f64(tr->xtd, atp ? tr->zd : tr->x0d, e, ab, per);
        for (size_t i = 0; i < per; i++) tr->x[per * b + i] = (float)tr->xtd[i];
        if (atp) atp_target(tr->target + per * b, tr->xtd, tr->x0d, ab, per);
        else memcpy(tr->target + per * b, e, per * sizeof(float));
    }
    return 0;
}

/* the UNet's pass in the run's precision; the process's is restored */
static int in_precision(glad_train *tr, int backward)
{
    glad_unet *u = tr->model.unet;
    glad_precision prev = glad_precision_get();
    GLAD_TRY(glad_precision_set((glad_precision)tr->cfg.precision));
    int rc = backward ? glad_unet_backward(u, tr->deps, NULL)
                      : glad_unet_forward(u, tr->eps, tr->x, tr->t, tr->B, 1, (uint64_t)tr->cfg.seed * 1000003u + (uint64_t)tr->step);
    glad_precision_set(prev);
    return rc;
}

int glad_train_forward(glad_train *tr)
{
    glad_unet *u = tr->model.unet;
    int rc;
    glad_unet_zero_grad(u);
    if ((rc = in_precision(tr, 0))) return prefixed(rc, "forward");
    /* mean over the batch of the sum over pixels (DDAD's loss.py) */
    size_t n = tr->per * (size_t)tr->B;
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        double e = tr->eps[i] - tr->target[i];
        loss += e * e;
        tr->deps[i] = (float)(2.0 * e / tr->B);
    }
    tr->loss = loss / tr->B;
    if (!isfinite(tr->loss)) return glad_fail(GLAD_ENAN, "step %ld: the loss is not finite (lower the learning rate?)", tr->step);
    return 0;
}

int glad_train_backward(glad_train *tr)
{
    int rc = in_precision(tr, 1);
    return rc ? prefixed(rc, "backward") : 0;
}

int glad_train_update(glad_train *tr)
{
    const glad_train_config *c = &tr->cfg;
    glad_unet *u = tr->model.unet;
    float *g = glad_unet_grads(u), *w = glad_unet_weights(u);
    if (c->clip > 0) glad_clip_grad_norm(g, tr->nparams, c->clip);
    glad_adam_cfg oc = {(float)c->lr, 0.9f, 0.999f, 1e-8f, (float)c->wd, c->optim == GLAD_TRAIN_ADAMW};
    glad_adam_step(w, g, tr->adam_m, tr->adam_v, tr->nparams, &oc, tr->step + 1);
    if (tr->ema) glad_ema_update(tr->ema, w, tr->nparams, (float)c->ema);
    tr->step++;
    return 0;
}

int glad_train_step(glad_train *tr)
{
    if (tr->step >= tr->total) return glad_fail(GLAD_ERANGE, "training ended at step %ld", tr->total);
    GLAD_TRY(glad_train_batch(tr));
    GLAD_TRY(glad_train_forward(tr));
    GLAD_TRY(glad_train_backward(tr));
    GLAD_TRY(glad_train_update(tr));
    return log_step(tr);
}

int glad_train_save(glad_train *tr, const char *path)
{
    const glad_train_config *c = &tr->cfg;
    size_t P = tr->nparams;
    char T[24], step[24], seed[24], batch[24], lr[40], wd[40], ema[40], clip[40];
    snprintf(T, sizeof T, "%d", tr->model.T);
    snprintf(step, sizeof step, "%ld", tr->step);
    snprintf(seed, sizeof seed, "%lld", (long long)c->seed);
    snprintf(batch, sizeof batch, "%d", c->batch);
    fmt_double(lr, sizeof lr, c->lr);
    fmt_double(wd, sizeof wd, c->wd);
    fmt_double(ema, sizeof ema, c->ema);
    fmt_double(clip, sizeof clip, c->clip);
    glad_tensor tm = {GLAD_DT_F32, 1, {(int64_t)P}, tr->adam_m}, tv = {GLAD_DT_F32, 1, {(int64_t)P}, tr->adam_v},
                tw = {GLAD_DT_F32, 1, {(int64_t)P}, glad_unet_weights(tr->model.unet)}, te = {GLAD_DT_F32, 1, {(int64_t)P}, tr->ema};
    const char *xn[] = {"train.adam_m", "train.adam_v", "train.weights", "train.ema"};
    const glad_tensor *xt[] = {&tm, &tv, &tw, &te};
    /* the first five as before these were recorded; then what a resume checks */
    const char *mk[] = {"betas", "T", "train.step", "train.seed", "train.loss", "train.batch",
                        "train.lr", "train.optim", "train.wd", "train.ema_decay", "train.clip", "train.precision"};
    const char *mv[] = {glad_betas_name((glad_betas)tr->model.betas), T, step, seed, glad_train_losses[c->loss], batch,
                        lr, glad_train_optims[c->optim], wd, ema, clip, glad_precision_names[c->precision]};
    /* train.precision only when not f32 (an f32 file as before it was recorded) */
    int nmeta = (int)(sizeof mk / sizeof *mk) - (c->precision == GLAD_PREC_F32);
    glad_error_clear();
    /* the model's own weights are the EMA ones when there is an EMA */
    int rc = glad_unet_save(tr->model.unet, path, tr->ema, tr->ema ? 4 : 3, xn, xt, nmeta, mk, mv);
    if (rc) return *glad_error_detail() ? rc : glad_fail(rc, "%s: cannot write: %s", path, glad_strerror(rc));
    return 0;
}
