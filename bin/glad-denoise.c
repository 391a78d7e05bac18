/* glad-denoise - reconstruct each record's image with a trained diffusion
 * UNet: fixed-step DDIM, DDAD conditioning, GLAD's ADS + SAFF, or MDPS.
 * Adds 'recon' (f32, same shape) and what the strategy decided. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "diffusion/denoise.h"
#include "diffusion/schedule.h"
#include "io/image.h"
#include "models/backbone.h"
#include "models/unet.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "score/score.h"

static const char usage[] =
    "Usage: glad-denoise --model MODEL [OPTION]... [FILE]\n"
    "Reconstruct every record's 'image' with a diffusion model trained on normal\n"
    "images; adds 'recon' (f32 [C,H,W]) and the strategy's decisions.\n"
    "\n"
    "Fixed step (default):\n"
    "      --steps T          noise the input to timestep T (default 250)\n"
    "      --skip S           DDIM stride (default 25), or --inference-steps N (S = T/N)\n"
    "      --eta E            0 deterministic DDIM (default), 1 as DDAD\n"
    "      --compat M         timestep bookkeeping: consistent (first model call at T, default),\n"
    "                         ddad (calls at T-S..0) or glad (ratio T//N, calls at k*ratio+1)\n"
    "DDAD conditioning:\n"
    "      --cond-w W         eps^ = eps - W sqrt(1-a)(y_t - x_t), y_t = sqrt(a) y + sqrt(1-a) eps\n"
    "GLAD adaptive denoising steps:\n"
    "      --ads              stop when the top-10 mean of A = min_j(1 - cos(f_true, f_pred)) > threshold;\n"
    "                         records 'ads_step'\n"
    "      --threshold TAU    (default 0.3)   --min-step M  forced stop below M (default 100)\n"
    "      --saff             fuse x0 := m x0 + (1-m) x0_true at the stop, m = sigmoid(A)\n"
    "      --saff-mask sigmoid|binary  --saff-threshold T   (ablation)\n"
    "      --ads-backbone B   unet (default: the model's encoder) | vit | resnet | mobilenetv2\n"
    "      --ads-weights FILE the backbone's weights (vit, resnet, mobilenetv2; see glad-features)\n"
    "      --ads-layer L      default: the last of the backbone's default layers (vit: block 12)\n"
    "      --ads-size N       backbone input size (default: the image's)\n"
    "      --ads-norm N       imagenet (default for vit, resnet) | raw (as GLAD's official ADS)\n"
    "      --feature-t T      unet backbone: timestep of the encoder pass (default 0)\n"
    "MDPS masked posterior sampling:\n"
    "      --mdps             two passes: a mask from a first reconstruction, then K masked,\n"
    "                         guided posterior samples, averaged; records 'mdps_mask'\n"
    "      --samples K (default 3)  --mask-steps TM (default 200, 0 = no mask)  --mask-skip S (20)\n"
    "      --mask-threshold TAU  relative to the record's own map min..max (default 0.15)\n"
    "      --mask-threshold-abs  TAU is an absolute distance instead\n"
    "      --guidance W (default 0)  --mask-guidance W (default 0)  --keep-samples\n"
    "General:\n"
    "      --model FILE       the glad-train model (required)\n"
    "      --batch N          records through the UNet at once (results do not depend on it)\n"
    "      --seed S           noise seed (noise depends on the seed and the record id only)\n"
    "      --shard K/N        only records with index %% N == K\n"
    "  -o, --output FILE, --zstd, -h, --help, -V, --version\n";

typedef struct {
    glad_unet *u;
    int B;
} model_ctx;

static int eps_fn(void *ctx, float *eps, const float *x, const float *t, int B)
{
    model_ctx *m = ctx;
    return glad_unet_forward(m->u, eps, x, t, B, 0, 0);
}

/* g = d/dx ||x0(x) - y||  with x0 = (x - sqrt(1-a) eps(x))/sqrt(a):
 * v = r/||r||, g = (v - sqrt(1-a) J^T v)/sqrt(a) (J^T v from the UNet backward) */
static int eps_grad_fn(void *ctx, float *eps, float *g, const float *x, const float *t, const float *y, const double *ab, int B)
{
    model_ctx *m = ctx;
    const glad_unet_config *c = glad_unet_cfg(m->u);
    size_t per = (size_t)c->in_channels * c->img_size * c->img_size, n = per * (size_t)B;
    GLAD_TRY(glad_unet_forward(m->u, eps, x, t, B, 2, 0));
    float *v = malloc(n * sizeof(float)), *jt = calloc(n, sizeof(float));
    if (!v || !jt) { free(v); free(jt); return GLAD_ENOMEM; }
    double sa = sqrt(*ab), sb = sqrt(1 - *ab);
    for (int b = 0; b < B; b++) {
        double nr = 0;
        for (size_t i = 0; i < per; i++) {
            size_t k = per * b + i;
            double r = (x[k] - sb * eps[k]) / sa - y[k];
            v[k] = (float)r;
            nr += r * r;
        }
        nr = sqrt(nr) + 1e-12;
        for (size_t i = 0; i < per; i++) v[per * b + i] = (float)(v[per * b + i] / nr);
    }
    int rc = glad_unet_backward(m->u, v, jt);
    for (size_t k = 0; rc == 0 && k < n; k++) g[k] = (float)((v[k] - sb * jt[k]) / sa);
    free(v);
    free(jt);
    return rc;
}

typedef struct { uint64_t seed, *ids; } noise_ctx;

static void noise_fn(void *ctx, int b, int k, float *out, size_t n)
{
    noise_ctx *z = ctx;
    glad_rng r;
    glad_rng_seed(&r, z->seed, z->ids[b], (uint64_t)k);
    glad_rng_normal_f32(&r, out, n);
}

typedef struct { glad_backbone *bb; int layer; } ads_ctx;

static int ads_fn(void *ctx, float *A, int *h, int *w, const float *x0t, const float *x0p, int C, int H, int W)
{
    ads_ctx *a = ctx;
    float *ft, *fp;
    int c1, h1, w1, c2, h2, w2;
    GLAD_TRY(glad_backbone_features(a->bb, x0t, C, H, W, 1, &a->layer, &ft, &c1, &h1, &w1));
    int rc = glad_backbone_features(a->bb, x0p, C, H, W, 1, &a->layer, &fp, &c2, &h2, &w2);
    if (rc) { free(ft); return rc; }
    if ((long)h1 * w1 > GLAD_ADS_MAX_GRID) rc = GLAD_ESHAPE;
    else rc = glad_score_nn_map(A, ft, h1 * w1, fp, h2 * w2, c1);
    *h = h1;
    *w = w1;
    free(ft);
    free(fp);
    return rc;
}

/* MDPS mask map: pixel distance, smoothed (sigma 4) as MDPS smooths its maps */
static int dist_fn(void *ctx, float *D, const float *recon, const float *y, int C, int H, int W)
{
    (void)ctx;
    GLAD_TRY(glad_score_pixel_map(D, recon, y, C, H, W, 0));
    return glad_score_gaussian_blur(D, H, W, 4.0);
}

int main(int argc, char **argv)
{
    cli_init("glad-denoise");
    enum { O_MODEL = 256, O_STEPS, O_SKIP, O_INF, O_ETA, O_COMPAT, O_CONDW, O_ADS, O_THR, O_MIN, O_SAFF, O_SAFFM, O_SAFFT, O_ADSBB,
           O_ADSL, O_ADSW, O_ADSS, O_ADSN, O_FT, O_MDPS, O_SAMPLES, O_MSTEPS, O_MSKIP, O_MTHR, O_MABS, O_GUID, O_MGUID, O_KEEP, O_BATCH, O_SEED, O_SHARD, O_ZSTD };
    static const struct option lo[] = {
        {"model", required_argument, 0, O_MODEL}, {"steps", required_argument, 0, O_STEPS}, {"skip", required_argument, 0, O_SKIP},
        {"inference-steps", required_argument, 0, O_INF}, {"eta", required_argument, 0, O_ETA}, {"compat", required_argument, 0, O_COMPAT},
        {"cond-w", required_argument, 0, O_CONDW}, {"ads", no_argument, 0, O_ADS}, {"threshold", required_argument, 0, O_THR},
        {"min-step", required_argument, 0, O_MIN}, {"saff", no_argument, 0, O_SAFF}, {"saff-mask", required_argument, 0, O_SAFFM},
        {"saff-threshold", required_argument, 0, O_SAFFT}, {"ads-backbone", required_argument, 0, O_ADSBB},
        {"ads-layer", required_argument, 0, O_ADSL}, {"ads-weights", required_argument, 0, O_ADSW},
        {"ads-size", required_argument, 0, O_ADSS}, {"ads-norm", required_argument, 0, O_ADSN}, {"feature-t", required_argument, 0, O_FT}, {"mdps", no_argument, 0, O_MDPS},
        {"samples", required_argument, 0, O_SAMPLES}, {"mask-steps", required_argument, 0, O_MSTEPS}, {"mask-skip", required_argument, 0, O_MSKIP},
        {"mask-threshold", required_argument, 0, O_MTHR}, {"mask-threshold-abs", no_argument, 0, O_MABS},
        {"guidance", required_argument, 0, O_GUID}, {"mask-guidance", required_argument, 0, O_MGUID}, {"keep-samples", no_argument, 0, O_KEEP},
        {"batch", required_argument, 0, O_BATCH}, {"seed", required_argument, 0, O_SEED}, {"shard", required_argument, 0, O_SHARD},
        {"output", required_argument, 0, 'o'}, {"zstd", no_argument, 0, O_ZSTD}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    const char *model = NULL, *out = "-", *ads_bb = "unet", *ads_w = NULL;
    long steps = 250, skip = 25, inf = 0, batch = 4, seed = 0, min_step = 100, samples = 3, msteps = 200, mskip = 20, ads_layer = -1, ads_size = 0;
    double eta = 0, condw = 0, thr = 0.3, saff_thr = 0.5, mthr = 0.15, guid = 0, mguid = 0, ft = 0;
    int compat = GLAD_TS_CONSISTENT, ads = 0, saff = 0, saff_bin = 0, mdps = 0, mabs = 0, keep = 0, ads_norm = 0, shard_k = 0, shard_n = 1, zstd = 0, c;
    while ((c = cli_getopt(argc, argv, "o:hV", lo)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_STEPS: if (cli_parse_int("--steps", optarg, 1, 999, &steps)) return CLI_USAGE; break;
        case O_SKIP: if (cli_parse_int("--skip", optarg, 1, 999, &skip)) return CLI_USAGE; break;
        case O_INF: if (cli_parse_int("--inference-steps", optarg, 1, 999, &inf)) return CLI_USAGE; break;
        case O_ETA: if (cli_parse_double("--eta", optarg, 0, 1, &eta)) return CLI_USAGE; break;
        case O_COMPAT:
            if (!strcmp(optarg, "consistent")) compat = GLAD_TS_CONSISTENT; else if (!strcmp(optarg, "ddad")) compat = GLAD_TS_DDAD;
            else if (!strcmp(optarg, "glad")) compat = GLAD_TS_GLAD; else return cli_usage_error("--compat takes consistent, ddad or glad");
            break;
        case O_CONDW: if (cli_parse_double("--cond-w", optarg, -1000, 1000, &condw)) return CLI_USAGE; break;
        case O_ADS: ads = 1; break;
        case O_THR: if (cli_parse_double("--threshold", optarg, -10, 10, &thr)) return CLI_USAGE; break;
        case O_MIN: if (cli_parse_int("--min-step", optarg, 0, 1000, &min_step)) return CLI_USAGE; break;
        case O_SAFF: saff = 1; break;
        case O_SAFFM: if (!strcmp(optarg, "sigmoid")) saff_bin = 0; else if (!strcmp(optarg, "binary")) saff_bin = 1; else return cli_usage_error("--saff-mask takes sigmoid or binary"); break;
        case O_SAFFT: if (cli_parse_double("--saff-threshold", optarg, -10, 10, &saff_thr)) return CLI_USAGE; break;
        case O_ADSBB: { int k; if (cli_parse_choice("--ads-backbone", optarg, glad_backbone_kinds, &k)) return CLI_USAGE; ads_bb = optarg; break; }
        case O_ADSL: if (cli_parse_int("--ads-layer", optarg, 0, 64, &ads_layer)) return CLI_USAGE; break;
        case O_ADSW: ads_w = optarg; break;
        case O_ADSS: if (cli_parse_int("--ads-size", optarg, 8, 8192, &ads_size)) return CLI_USAGE; break;
        case O_ADSN: if (cli_parse_choice("--ads-norm", optarg, glad_backbone_norms, &ads_norm)) return CLI_USAGE; break;
        case O_FT: if (cli_parse_double("--feature-t", optarg, 0, 999, &ft)) return CLI_USAGE; break;
        case O_MDPS: mdps = 1; break;
        case O_SAMPLES: if (cli_parse_int("--samples", optarg, 1, 1000, &samples)) return CLI_USAGE; break;
        case O_MSTEPS: if (cli_parse_int("--mask-steps", optarg, 0, 999, &msteps)) return CLI_USAGE; break;
        case O_MSKIP: if (cli_parse_int("--mask-skip", optarg, 1, 999, &mskip)) return CLI_USAGE; break;
        case O_MTHR: if (cli_parse_double("--mask-threshold", optarg, -1e9, 1e9, &mthr)) return CLI_USAGE; break;
        case O_MABS: mabs = 1; break;
        case O_GUID: if (cli_parse_double("--guidance", optarg, -1e6, 1e6, &guid)) return CLI_USAGE; break;
        case O_MGUID: if (cli_parse_double("--mask-guidance", optarg, -1e6, 1e6, &mguid)) return CLI_USAGE; break;
        case O_KEEP: keep = 1; break;
        case O_BATCH: if (cli_parse_int("--batch", optarg, 1, 1024, &batch)) return CLI_USAGE; break;
        case O_SEED: if (cli_parse_int("--seed", optarg, 0, 1L << 62, &seed)) return CLI_USAGE; break;
        case O_SHARD: if (cli_parse_shard(optarg, &shard_k, &shard_n)) return CLI_USAGE; break;
        case 'o': out = optarg; break;
        case O_ZSTD: zstd = 3; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (!model) return cli_usage_error("--model MODEL is required");
    if (saff && !ads) return cli_usage_error("--saff works with --ads");
    if (ads && strcmp(ads_bb, "unet") && !ads_w) return cli_usage_error("--ads-backbone %s needs --ads-weights FILE", ads_bb);
    if (ads && mdps) return cli_usage_error("--ads and --mdps are different strategies; choose one");
    if (inf) skip = steps / inf > 0 ? steps / inf : 1;
    if (skip > steps) return cli_usage_error("--skip must not exceed --steps");
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    const char *in = optind < argc ? argv[optind] : "-";

    glad_unet *u;
    if (glad_unet_load(&u, model)) return cli_error("%s", glad_error_detail());
    const glad_unet_config *cfg = glad_unet_cfg(u);
    /* the schedule the model was trained with */
    glad_betas betas = GLAD_BETAS_LINEAR;
    glad_st *st;
    if (glad_st_open(&st, model) == 0) {
        const char *b = glad_st_meta(st, "betas");
        if (b) glad_betas_parse(b, &betas);
        glad_st_close(st);
    }
    double ab[1000];
    glad_schedule_alpha_bar(ab, 1000, betas);
    glad_denoise_opts o;
    glad_denoise_opts_default(&o);
    o.eta = eta; o.cond_w = condw; o.ads = ads; o.threshold = thr; o.min_step = (int)min_step; o.saff = saff;
    o.saff_binary = saff_bin; o.saff_threshold = saff_thr;
    if (glad_ddim_plan_make(&o.plan, ab, 1000, (int)steps, (int)skip, (glad_ts_mode)compat)) { glad_unet_free(u); return cli_usage_error("invalid --steps/--skip"); }
    glad_mdps_opts mo;
    memset(&mo, 0, sizeof mo);
    if (mdps) {
        mo.samples = (int)samples; mo.guidance = guid; mo.mask_guidance = mguid; mo.mask_threshold = mthr; mo.threshold_absolute = mabs;
        mo.use_mask = msteps > 0;
        mo.plan = o.plan;
        if (mo.use_mask && glad_ddim_plan_make(&mo.mask_plan, ab, 1000, (int)msteps, (int)(mskip < msteps ? mskip : msteps), (glad_ts_mode)compat)) { glad_unet_free(u); return cli_usage_error("invalid --mask-steps/--mask-skip"); }
    }
    glad_backbone *bb = NULL;
    ads_ctx ac = {0};
    if (ads) {
        glad_backbone_opts bo = {ads_bb, ads_w ? ads_w : model, (float)ft, (int)ads_size, (glad_backbone_norm)ads_norm};
        if (glad_backbone_open(&bb, &bo)) { glad_unet_free(u); return cli_error("--ads-backbone: %s", glad_error_detail()); }
        ac.bb = bb;
        int lmin, lmax, dl[GLAD_BACKBONE_MAX_LAYERS], nd = glad_backbone_default_layers(bb, dl);
        glad_backbone_layer_range(bb, &lmin, &lmax);
        ac.layer = ads_layer >= 0 ? (int)ads_layer : dl[nd - 1];
        if (ac.layer < lmin || ac.layer > lmax) {
            glad_backbone_close(bb);
            glad_unet_free(u);
            return cli_usage_error("--ads-layer: the %s backbone has layers %d..%d", ads_bb, lmin, lmax);
        }
    }
    glad_reader *rd;
    glad_writer *wr;
    if (cli_open_io(in, out, zstd, argc, argv, &rd, &wr)) { glad_backbone_close(bb); glad_unet_free(u); return CLI_FAIL; }
    int C = cfg->in_channels, S = cfg->img_size, B = (int)batch;
    size_t per = (size_t)C * S * S;
    glad_record *recs = calloc((size_t)B, sizeof *recs);
    float *y = malloc(per * B * sizeof(float)), *rec = malloc(per * B * sizeof(float));
    float *smp = mdps && keep ? malloc(per * B * samples * sizeof(float)) : NULL, *mask = mdps ? malloc((size_t)S * S * B * sizeof(float)) : NULL;
    uint64_t *ids = calloc((size_t)B, sizeof(uint64_t));
    int *steps_out = calloc((size_t)B, sizeof(int));
    if (!recs || !y || !rec || !ids || !steps_out || (mdps && !mask) || (mdps && keep && !smp)) return cli_error("out of memory");
    model_ctx mc = {u, B};
    glad_model_fn mf = {eps_fn, eps_grad_fn, &mc, C, S, S};
    noise_ctx nc = {(uint64_t)seed, ids};
    glad_noise_fn nf = {noise_fn, &nc};
    glad_ads_fn af = {ads_fn, &ac};
    glad_dist_fn df = {dist_fn, NULL};
    int status = CLI_OK, rc = 0, rrc = 1, nb = 0;
    long index = 0;
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    while (status == CLI_OK) {
        /* fill a batch */
        nb = 0;
        while (nb < B && (rrc = glad_reader_next(rd, &recs[nb])) == 1) {
            if (index++ % shard_n != shard_k) continue;
            glad_record *r = &recs[nb];
            const char *id = glad_record_id(r);
            const glad_tensor *im;
            int ic, ih, iw;
            if (glad_record_get_tensor(r, "image", &im)) { status = cli_rec_error(id, "image", "missing"); break; }
            if (glad_tensor_chw(im, &ic, &ih, &iw)) { status = cli_rec_error(id, "image", "is not a [C,H,W] image"); break; }
            if (ic != C || ih != S || iw != S) { status = cli_rec_error(id, "image", "is [%d,%d,%d] but the model takes [%d,%d,%d] (glad-encode --size %d, --channels %d)", ic, ih, iw, C, S, S, S, C); break; }
            if (glad_tensor_image_to_f32(im, y + per * nb)) { status = cli_rec_error(id, "image", "is not numeric"); break; }
            for (size_t i = 0; i < per; i++) if (!isfinite(y[per * nb + i])) { status = cli_rec_error(id, "image", "contains NaN or infinity"); break; }
            if (status != CLI_OK) break;
            ids[nb] = glad_rng_hash_str(id);
            nb++;
        }
        if (status != CLI_OK || nb == 0) break;
        if (mdps) rc = glad_mdps_run(&mf, &nf, mo.use_mask ? &df : NULL, &mo, nb, y, rec, smp, mo.use_mask ? mask : NULL);
        else rc = glad_denoise_run(&mf, &nf, ads ? &af : NULL, &o, nb, y, rec, steps_out);
        if (rc < 0) { status = cli_rec_error(glad_record_id(&recs[0]), NULL, "reconstruction failed: %s", glad_strerror(rc)); break; }
        for (int b = 0; b < nb && status == CLI_OK; b++) {
            glad_tensor t;
            int64_t shp[3] = {C, S, S};
            if (glad_tensor_from_f32(&t, GLAD_DT_F32, 3, shp, rec + per * b) || glad_record_set_tensor(&recs[b], "recon", &t)) { status = cli_error("out of memory"); break; }
            if (ads) glad_record_set_int(&recs[b], "ads_step", steps_out[b]);
            if (mdps && mo.use_mask) {
                int64_t ms[3] = {1, S, S};
                if (glad_tensor_from_f32(&t, GLAD_DT_U8, 3, ms, mask + (size_t)S * S * b) == 0) glad_record_set_tensor(&recs[b], "mdps_mask", &t);
            }
            if (smp) {
                int64_t ks[4] = {samples, C, S, S};
                float *tmp = malloc(per * samples * sizeof(float));
                for (long k = 0; tmp && k < samples; k++) memcpy(tmp + per * k, smp + (per * nb) * k + per * b, per * sizeof(float));
                if (tmp && glad_tensor_from_f32(&t, GLAD_DT_F32, 4, ks, tmp) == 0) glad_record_set_tensor(&recs[b], "recon_samples", &t);
                free(tmp);
            }
            if (glad_writer_write(wr, &recs[b])) status = cli_error("%s", glad_error_detail());
        }
        cli_progress_step(&pg, nb);
        if (rrc != 1) break;
    }
    cli_progress_end(&pg);
    if (status == CLI_OK && rrc < 0) status = cli_reader_error(rd, in);
    for (int b = 0; b < B; b++) glad_record_free(&recs[b]);
    status = cli_finish(status, rd, wr);
    free(recs); free(y); free(rec); free(smp); free(mask); free(ids); free(steps_out);
    glad_backbone_close(bb);
    glad_unet_free(u);
    return status;
}
