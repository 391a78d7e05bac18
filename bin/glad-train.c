/* glad-train - train the diffusion UNet on a stream of normal images: the
 * DDPM noise-prediction loss (DDAD/MDPS) or GLAD's anomaly-oriented training
 * paradigm (ATP) on glad-synth output. Writes a model file (safetensors with
 * the official key names, config and schedule in the metadata) atomically. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "diffusion/schedule.h"
#include "core/json.h"
#include "models/unet.h"
#include "core/rng.h"
#include "io/safetensors.h"

static const char usage[] =
    "Usage: glad-train [OPTION]... -o MODEL [FILE]\n"
    "Train the diffusion UNet on the 'image' tensors of a stream (FILE or stdin).\n"
    "\n"
    "  -o, --output MODEL     model file to write (safetensors; atomically)\n"
    "      --loss L           ddpm (predict the noise; DDAD) | atp (GLAD: needs 'anomalous'\n"
    "                         and 'synth_mask' from glad-synth)\n"
    "      --betas B          linear (1e-4..0.02, default) | scaled_linear (SD 0.00085..0.012)\n"
    "      --preset P         ddad (base 64, 4 heads) | ddad-s (base 32, 2 heads, dropout 0.3) |\n"
    "                         tiny (base 32, mults 1,2,2, 1 res block, attention at 16, 2 heads)\n"
    "      --base N  --mults LIST  --res-blocks N  --attn LIST  --heads N  --dropout P\n"
    "      --batch N          images per step (default 8)\n"
    "      --steps N | --epochs N   training length (default 1000 steps)\n"
    "      --lr LR            learning rate (default 3e-4)\n"
    "      --optim adam|adamw Adam with L2 weight decay (torch.optim.Adam) or AdamW\n"
    "      --wd WD            weight decay (default 0)\n"
    "      --ema DECAY        keep an exponential moving average of the weights and save it\n"
    "      --clip NORM        clip the global gradient norm\n"
    "      --seed S           (default 0)\n"
    "      --save-every N     checkpoint every N steps (atomically)\n"
    "      --resume FILE      continue a checkpoint bit-exactly (weights, optimiser, step)\n"
    "      --log FILE         CSV: step,loss,images_per_s\n"
    "  -h, --help, -V, --version\n";

typedef struct {
    int n, C, S;
    uint8_t *img, *anom;   /* n x C x S x S, u8 (f32 inputs are quantised) */
    uint8_t *has_anom;
} dataset;

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

static int load_data(const char *path, int atp, dataset *d, int argc, char **argv)
{
    (void)argc; (void)argv;
    glad_reader *rd;
    int rc;
    if (cli_open_reader(path, &rd)) return CLI_FAIL;
    glad_record r;
    glad_record_init(&r);
    size_t cap = 0;
    memset(d, 0, sizeof *d);
    int status = CLI_OK;
    while (status == CLI_OK && (rc = glad_reader_next(rd, &r)) == 1) {
        const char *id = glad_record_id(&r);
        const glad_tensor *im, *an = NULL, *sm = NULL;
        int c, h, w;
        if (glad_record_get_tensor(&r, "image", &im)) { status = cli_rec_error(id, "image", "missing"); break; }
        if (glad_tensor_chw(im, &c, &h, &w) || h != w) { status = cli_rec_error(id, "image", "must be a square [C,H,W] image"); break; }
        if (glad_tensor_has_nonfinite(im)) { status = cli_rec_error(id, "image", "contains NaN or infinity"); break; }
        if (d->n == 0) { d->C = c; d->S = h; }
        else if (c != d->C || h != d->S) { status = cli_rec_error(id, "image", "is [%d,%d,%d] but the first record's is [%d,%d,%d]", c, h, w, d->C, d->S, d->S); break; }
        if (atp) {
            if (glad_record_get_tensor(&r, "anomalous", &an)) { status = cli_rec_error(id, "anomalous", "missing (run glad-synth first, or use --loss ddpm)"); break; }
            if (glad_record_get_tensor(&r, "synth_mask", &sm)) { status = cli_rec_error(id, "synth_mask", "missing (run glad-synth first)"); break; }
            int c2, h2, w2;
            if (glad_tensor_chw(an, &c2, &h2, &w2) || c2 != c || h2 != h || w2 != w) { status = cli_rec_error(id, "anomalous", "shape differs from image"); break; }
        }
        size_t per = (size_t)c * h * w;
        if ((size_t)d->n == cap) {
            cap = cap ? cap * 2 : 64;
            uint8_t *ni = realloc(d->img, cap * per), *na = atp ? realloc(d->anom, cap * per) : d->anom, *nh = realloc(d->has_anom, cap);
            if (ni) d->img = ni;
            if (na) d->anom = na;
            if (nh) d->has_anom = nh;
            if (!ni || (atp && !na) || !nh) { status = cli_error("out of memory holding the training set"); break; }
        }
        to_u8(d->img + per * d->n, im);
        d->has_anom[d->n] = 0;
        if (atp) {
            to_u8(d->anom + per * d->n, an);
            size_t mn = glad_tensor_numel(sm);
            float *mf = malloc(mn * sizeof(float));
            if (mf && glad_tensor_to_f32(sm, mf) == 0)
                for (size_t i = 0; i < mn; i++) if (mf[i] != 0) { d->has_anom[d->n] = 1; break; }
            free(mf);
        }
        d->n++;
    }
    if (status == CLI_OK && rc < 0) status = cli_reader_error(rd, path);
    glad_record_free(&r);
    glad_reader_close(rd);
    if (status == CLI_OK && d->n == 0) status = cli_error("no training records in %s", path ? path : "<stdin>");
    return status;
}

static int parse_list_f(const char *s, float *out, int max)
{
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *t = strtok(buf, ","); t && n < max; t = strtok(NULL, ",")) out[n++] = (float)atof(t);
    return n;
}

int main(int argc, char **argv)
{
    cli_init("glad-train");
    enum { O_LOSS = 256, O_BETAS, O_PRESET, O_BASE, O_MULTS, O_RES, O_ATTN, O_HEADS, O_DROP, O_BATCH, O_STEPS, O_EPOCHS,
           O_LR, O_OPTIM, O_WD, O_EMA, O_CLIP, O_SEED, O_SAVE, O_RESUME, O_LOG };
    static const struct option lo[] = {
        {"output", required_argument, 0, 'o'}, {"loss", required_argument, 0, O_LOSS}, {"betas", required_argument, 0, O_BETAS},
        {"preset", required_argument, 0, O_PRESET}, {"base", required_argument, 0, O_BASE}, {"mults", required_argument, 0, O_MULTS},
        {"res-blocks", required_argument, 0, O_RES}, {"attn", required_argument, 0, O_ATTN}, {"heads", required_argument, 0, O_HEADS},
        {"dropout", required_argument, 0, O_DROP}, {"batch", required_argument, 0, O_BATCH}, {"steps", required_argument, 0, O_STEPS},
        {"epochs", required_argument, 0, O_EPOCHS}, {"lr", required_argument, 0, O_LR}, {"optim", required_argument, 0, O_OPTIM},
        {"wd", required_argument, 0, O_WD}, {"ema", required_argument, 0, O_EMA}, {"clip", required_argument, 0, O_CLIP},
        {"seed", required_argument, 0, O_SEED}, {"save-every", required_argument, 0, O_SAVE}, {"resume", required_argument, 0, O_RESUME},
        {"log", required_argument, 0, O_LOG}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    const char *out = NULL, *resume = NULL, *logp = NULL, *preset = NULL;
    int atp = 0, c;
    glad_betas betas = GLAD_BETAS_LINEAR;
    long base = -1, res = -1, heads = -1, batch = 8, steps = -1, epochs = -1, seed = 0, save_every = 0;
    double dropout = -1, lr = 3e-4, wd = 0, ema = 0, clip = 0;
    int adamw = 0, nmults = 0, nattn = -1;
    float mults[GLAD_UNET_MAX_LEVELS], attn[GLAD_UNET_MAX_LEVELS];
    while ((c = cli_getopt(argc, argv, "o:hV", lo)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case O_LOSS: if (!strcmp(optarg, "ddpm")) atp = 0; else if (!strcmp(optarg, "atp")) atp = 1; else return cli_usage_error("--loss takes ddpm or atp"); break;
        case O_BETAS: if (glad_betas_parse(optarg, &betas)) return cli_usage_error("--betas takes linear or scaled_linear"); break;
        case O_PRESET: preset = optarg; if (strcmp(preset, "ddad") && strcmp(preset, "ddad-s") && strcmp(preset, "tiny")) return cli_usage_error("--preset takes ddad, ddad-s or tiny"); break;
        case O_BASE: if (cli_parse_int("--base", optarg, 32, 1024, &base)) return CLI_USAGE; break;
        case O_MULTS: nmults = parse_list_f(optarg, mults, GLAD_UNET_MAX_LEVELS); if (nmults < 1) return cli_usage_error("--mults takes a list like 1,2,2"); break;
        case O_RES: if (cli_parse_int("--res-blocks", optarg, 1, 8, &res)) return CLI_USAGE; break;
        case O_ATTN: nattn = strcmp(optarg, "none") ? parse_list_f(optarg, attn, GLAD_UNET_MAX_LEVELS) : 0; break;
        case O_HEADS: if (cli_parse_int("--heads", optarg, 1, 64, &heads)) return CLI_USAGE; break;
        case O_DROP: if (cli_parse_double("--dropout", optarg, 0, 0.95, &dropout)) return CLI_USAGE; break;
        case O_BATCH: if (cli_parse_int("--batch", optarg, 1, 4096, &batch)) return CLI_USAGE; break;
        case O_STEPS: if (cli_parse_int("--steps", optarg, 1, 100000000, &steps)) return CLI_USAGE; break;
        case O_EPOCHS: if (cli_parse_int("--epochs", optarg, 1, 1000000, &epochs)) return CLI_USAGE; break;
        case O_LR: if (cli_parse_double("--lr", optarg, 0, 10, &lr)) return CLI_USAGE; break;
        case O_OPTIM: if (!strcmp(optarg, "adam")) adamw = 0; else if (!strcmp(optarg, "adamw")) adamw = 1; else return cli_usage_error("--optim takes adam or adamw"); break;
        case O_WD: if (cli_parse_double("--wd", optarg, 0, 10, &wd)) return CLI_USAGE; break;
        case O_EMA: if (cli_parse_double("--ema", optarg, 0, 0.999999, &ema)) return CLI_USAGE; break;
        case O_CLIP: if (cli_parse_double("--clip", optarg, 0, 1e9, &clip)) return CLI_USAGE; break;
        case O_SEED: if (cli_parse_int("--seed", optarg, 0, 1L << 62, &seed)) return CLI_USAGE; break;
        case O_SAVE: if (cli_parse_int("--save-every", optarg, 0, 100000000, &save_every)) return CLI_USAGE; break;
        case O_RESUME: resume = optarg; break;
        case O_LOG: logp = optarg; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (!out) return cli_usage_error("-o MODEL is required");
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    const char *in = optind < argc ? argv[optind] : "-";
    dataset d;
    if (load_data(in, atp, &d, argc, argv)) return CLI_FAIL;

    glad_unet_config cfg;
    glad_unet_config_default(&cfg, d.S, d.C);
    if (preset && !strcmp(preset, "ddad-s")) { cfg.base = 32; cfg.heads = 2; cfg.dropout = 0.3f; }
    if (preset && !strcmp(preset, "tiny")) {
        cfg.base = 32; cfg.heads = 2; cfg.num_res_blocks = 1; cfg.nmults = 3;
        cfg.mults[0] = 1; cfg.mults[1] = 2; cfg.mults[2] = 2; cfg.nattn = 1; cfg.attn_res[0] = 16;
    }
    if (base > 0) cfg.base = (int)base;
    if (res > 0) cfg.num_res_blocks = (int)res;
    if (heads > 0) cfg.heads = (int)heads;
    if (dropout >= 0) cfg.dropout = (float)dropout;
    if (nmults) { cfg.nmults = nmults; memcpy(cfg.mults, mults, sizeof(float) * (size_t)nmults); }
    if (nattn >= 0) { cfg.nattn = nattn; for (int i = 0; i < nattn; i++) cfg.attn_res[i] = (int)attn[i]; }
    glad_unet *u;
    char err[512] = "";
    int rc;
    long step0 = 0;
    size_t P;
    float *m = NULL, *v = NULL, *ew = NULL;
    if (resume) {
        if ((rc = glad_unet_load(&u, resume, err, sizeof err))) { free(d.img); free(d.anom); free(d.has_anom); return cli_error("%s", err); }
        cfg = *glad_unet_cfg(u);
    } else if ((rc = glad_unet_create(&u, &cfg))) {
        free(d.img); free(d.anom); free(d.has_anom);
        return cli_usage_error("this model configuration cannot be built for %dx%d images (channels must be multiples of 32 and of --heads; the size divisible by 2^(levels-1))", d.S, d.S);
    } else glad_unet_init(u, (uint64_t)seed);
    if (cfg.img_size != d.S || cfg.in_channels != d.C) {
        glad_unet_free(u);
        return cli_error("the model is for %dx%d images with %d channels, the stream has %dx%d with %d (resize with glad-encode --size)", cfg.img_size, cfg.img_size, cfg.in_channels, d.S, d.S, d.C);
    }
    P = glad_unet_nparams(u);
    m = calloc(P, sizeof(float)); v = calloc(P, sizeof(float)); ew = ema > 0 ? malloc(P * sizeof(float)) : NULL;
    if (!m || !v || (ema > 0 && !ew)) return cli_error("out of memory");
    if (ew) memcpy(ew, glad_unet_weights(u), P * sizeof(float));
    if (resume) {
        glad_st *st;
        if (glad_st_open(&st, resume)) return cli_error("%s: cannot read", resume);
        const char *sv = glad_st_meta(st, "train.step");
        const glad_st_entry *em = glad_st_find(st, "train.adam_m"), *ev = glad_st_find(st, "train.adam_v"),
                            *ewt = glad_st_find(st, "train.weights"), *ee = glad_st_find(st, "train.ema");
        if (!sv || !em || !ev || em->end - em->begin != P * 4 || ev->end - ev->begin != P * 4) { glad_st_close(st); return cli_error("%s: not a training checkpoint (no optimiser state)", resume); }
        step0 = atol(sv);
        memcpy(m, glad_st_data(st, em), P * 4);
        memcpy(v, glad_st_data(st, ev), P * 4);
        if (ewt && ewt->end - ewt->begin == P * 4) memcpy(glad_unet_weights(u), glad_st_data(st, ewt), P * 4);
        if (ew && ee && ee->end - ee->begin == P * 4) memcpy(ew, glad_st_data(st, ee), P * 4);
        const char *bs = glad_st_meta(st, "betas");
        if (bs) glad_betas_parse(bs, &betas);
        glad_st_close(st);
    }
    long steps_per_epoch = (d.n + batch - 1) / batch;
    long total = steps > 0 ? steps : epochs > 0 ? epochs * steps_per_epoch : 1000;
    const int T = 1000;
    double ab[1000];
    glad_schedule_alpha_bar(ab, T, betas);
    int B = (int)batch, S = d.S, C = d.C;
    size_t per = (size_t)C * S * S, n = per * (size_t)B;
    float *x = malloc(n * sizeof(float)), *eps = malloc(n * sizeof(float)), *tgt = malloc(n * sizeof(float)), *dl = malloc(n * sizeof(float)), tt[4096];
    int *perm = malloc(sizeof(int) * (size_t)d.n);
    if (!x || !eps || !tgt || !dl || !perm || B > 4096) return cli_error("out of memory");
    FILE *logf = NULL;
    if (logp) {
        logf = fopen(logp, resume ? "a" : "w");
        if (!logf) return cli_error("%s: cannot write the log", logp);
        setvbuf(logf, NULL, _IOLBF, 0);
        if (!resume) fprintf(logf, "step,loss,images_per_s\n");
    }
    glad_adam_cfg oc = {(float)lr, 0.9f, 0.999f, 1e-8f, (float)wd, adamw};
    cli_progress pg;
    cli_progress_start(&pg, "steps", total - step0);
    double t0 = cli_now();
    int status = CLI_OK;
    char cfgbuf[1024], stepbuf[32], seedbuf[32];
    for (long step = step0; step < total && status == CLI_OK; step++) {
        /* the batch: a permutation per epoch, drawn from (seed, epoch) — so a resumed run draws the same */
        long epoch = step / steps_per_epoch, pos = (step % steps_per_epoch) * B;
        glad_rng r;
        glad_rng_seed(&r, (uint64_t)seed, 1, (uint64_t)epoch);
        for (int i = 0; i < d.n; i++) perm[i] = i;
        for (int i = d.n - 1; i > 0; i--) { int j = (int)glad_rng_below(&r, (uint64_t)i + 1); int k = perm[i]; perm[i] = perm[j]; perm[j] = k; }
        glad_rng_seed(&r, (uint64_t)seed, 2, (uint64_t)step);
        for (int b = 0; b < B; b++) {
            int idx = perm[(pos + b) % d.n];
            int ti = (int)glad_rng_below(&r, T);
            tt[b] = (float)ti;
            double sa = sqrt(ab[ti]), sb = sqrt(1 - ab[ti]), a = (double)ti / T;
            const uint8_t *im = d.img + per * idx, *an = atp ? d.anom + per * idx : NULL;
            int use_atp = atp && d.has_anom[idx];
            for (size_t i = 0; i < per; i++) {
                float e = (float)glad_rng_normal(&r);
                double x0 = im[i] / 127.5 - 1.0;
                double z = use_atp ? a * (an[i] / 127.5 - 1.0) + (1 - a) * x0 : x0;
                double xt = sa * z + sb * e;
                x[per * b + i] = (float)xt;
                /* ATP: ε* = (x_t − √ᾱ x_normal)/√(1−ᾱ), so x̂0 is the normal image */
                tgt[per * b + i] = use_atp ? (float)((xt - sa * x0) / sb) : e;
            }
        }
        glad_unet_zero_grad(u);
        if ((rc = glad_unet_forward(u, eps, x, tt, B, 1, (uint64_t)seed * 1000003u + (uint64_t)step))) { status = cli_error("forward: %s", glad_strerror(rc)); break; }
        double loss = 0;
        for (size_t i = 0; i < n; i++) { double e = eps[i] - tgt[i]; loss += e * e; dl[i] = (float)(2.0 * e / B); }
        loss /= B;
        if (!isfinite(loss)) { status = cli_error("step %ld: the loss is not finite (lower --lr?)", step); break; }
        if ((rc = glad_unet_backward(u, dl, NULL))) { status = cli_error("backward: %s", glad_strerror(rc)); break; }
        float *g = glad_unet_grads(u);
        if (clip > 0) {
            double norm = sqrt(glad_sumsq(g, P));
            if (norm > clip) { float s = (float)(clip / (norm + 1e-6)); for (size_t i = 0; i < P; i++) g[i] *= s; }
        }
        glad_adam_step(glad_unet_weights(u), g, m, v, P, &oc, step + 1);
        if (ew) { float k = (float)ema, *w = glad_unet_weights(u); for (size_t i = 0; i < P; i++) ew[i] = k * ew[i] + (1 - k) * w[i]; }
        double el = cli_now() - t0;
        if (logf) fprintf(logf, "%ld,%.6g,%.2f\n", step + 1, loss, el > 0 ? (double)(step + 1 - step0) * B / el : 0);
        cli_progress_step(&pg, 1);
        if (pg.active && (step + 1) % 10 == 0) fprintf(stderr, " loss %.4g", loss);
        int last = step + 1 == total;
        if (last || (save_every && (step + 1) % save_every == 0)) {
            glad_unet_config_json(&cfg, cfgbuf, sizeof cfgbuf);
            snprintf(stepbuf, sizeof stepbuf, "%ld", step + 1);
            snprintf(seedbuf, sizeof seedbuf, "%ld", seed);
            glad_tensor tm = {GLAD_DT_F32, 1, {(int64_t)P}, m}, tv = {GLAD_DT_F32, 1, {(int64_t)P}, v},
                        tw = {GLAD_DT_F32, 1, {(int64_t)P}, glad_unet_weights(u)}, te = {GLAD_DT_F32, 1, {(int64_t)P}, ew};
            const char *xn[] = {"train.adam_m", "train.adam_v", "train.weights", "train.ema"};
            const glad_tensor *xt[] = {&tm, &tv, &tw, &te};
            const char *mk[] = {"betas", "T", "train.step", "train.seed", "train.loss"}, *mv[5];
            char lossbuf[32];
            snprintf(lossbuf, sizeof lossbuf, "%s", atp ? "atp" : "ddpm");
            mv[0] = glad_betas_name(betas); mv[1] = "1000"; mv[2] = stepbuf; mv[3] = seedbuf; mv[4] = lossbuf;
            /* the model's own weights are the EMA ones when --ema is given */
            if ((rc = glad_unet_save(u, out, ew ? ew : NULL, ew ? 4 : 3, xn, xt, 5, mk, mv))) status = cli_error("%s: cannot write: %s", out, glad_strerror(rc));
        }
    }
    cli_progress_end(&pg);
    if (logf) fclose(logf);
    free(x); free(eps); free(tgt); free(dl); free(perm); free(m); free(v); free(ew);
    free(d.img); free(d.anom); free(d.has_anom);
    glad_unet_free(u);
    return status;
}
