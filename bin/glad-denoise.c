/* glad-denoise - reconstruct each record's image with a trained diffusion
 * UNet: fixed-step DDIM, DDAD conditioning, GLAD's ADS + SAFF, or MDPS; or
 * with a Stable Diffusion latent model (GLAD as published: VAE + guided SD
 * UNet, a folder from convert.py sd / glad). Adds 'recon' (f32, same shape)
 * and what the strategy decided. The strategies, the noise and the model
 * adapters are lib/diffusion's; this file is options, batching and records. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/rng.h"
#include "diffusion/denoise.h"
#include "diffusion/latent.h"
#include "diffusion/model.h"
#include "diffusion/unet_eps.h"
#include "io/image.h"
#include "models/backbone.h"
#include "nn/bf16.h"

static const char usage[] =
    "Usage: glad-denoise --model MODEL [OPTION]... [FILE]\n"
    "Reconstruct every record's 'image' with a diffusion model trained on normal\n"
    "images; adds 'recon' (f32 [C,H,W]) and the strategy's decisions.\n"
    "\n"
    "Fixed step (default):\n"
    "      --steps T          noise the input to timestep T (default 250; below the model's T)\n"
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
    "Latent diffusion (GLAD as published), when --model is a convert.py sd / glad folder:\n"
    "                         VAE encode (a posterior sample), the strategies above on latents\n"
    "                         with the prompt's guided UNet, VAE decode; images H x W, each side a\n"
    "                         multiple of the model's (the first record's size; glad-encode --size HxW)\n"
    "      --guidance W       classifier-free guidance scale (default 9, GLAD's)\n"
    "      --noise-step T0    noise the input to timestep T0 instead of --steps, the model calls staying\n"
    "                         those of --steps (GLAD on VisA and PCB-Bank: --steps minus 1)\n"
    "      --ads-backbone vit --ads-weights DINO  ADS on the VAE-decoded estimates (--ads-norm raw\n"
    "                         as GLAD); no MDPS, no unet backbone\n"
    "General:\n"
    "      --model FILE       the glad-train model, or a latent model folder (required; its\n"
    "                         schedule and T are used)\n"
    "      --batch N          records through the UNet at once (results do not depend on it)\n"
    "      --seed S           noise seed (noise depends on the seed and the record id only)\n"
    "      --shard K/N        only records with index %% N == K\n"
    "      --precision P      f32 (default) | bf16: the networks' convolutions and attention on bf16 operands with\n"
    "                         fp32 sums (CPUs with AVX512_BF16; results differ from f32 by ~1e-2)\n"
    "  -o, --output FILE, --zstd, -h, --help, -V, --version\n";

/* Timestep options are checked against the model's T once it is loaded. */
#define T_MAX GLAD_MODEL_MAX_T

typedef struct {
    const char *model, *out, *in, *ads_w;
    long steps, skip, inf, batch, seed, min_step, samples, msteps, mskip, ads_layer, ads_size, nstep;
    double eta, condw, thr, saff_thr, mthr, guid, mguid, ft;
    int compat, ads, saff, saff_bin, mdps, mabs, keep, ads_kind, ads_norm, shard_k, shard_n, zstd, prec;
    int ads_kind_set, guid_set;
} args;

/* -1: go on; else the exit status */
static int parse_args(args *a, int argc, char **argv)
{
    enum { O_MODEL = 256, O_STEPS, O_SKIP, O_INF, O_ETA, O_COMPAT, O_CONDW, O_ADS, O_THR, O_MIN, O_SAFF, O_SAFFM, O_SAFFT, O_ADSBB,
           O_ADSL, O_ADSW, O_ADSS, O_ADSN, O_FT, O_MDPS, O_SAMPLES, O_MSTEPS, O_MSKIP, O_MTHR, O_MABS, O_GUID, O_MGUID, O_KEEP, O_BATCH, O_SEED, O_SHARD, O_ZSTD, O_PREC, O_NSTEP };
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
        {"precision", required_argument, 0, O_PREC}, {"noise-step", required_argument, 0, O_NSTEP},
        {"output", required_argument, 0, 'o'}, {"zstd", no_argument, 0, O_ZSTD}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    glad_denoise_opts d;
    glad_denoise_opts_default(&d);
    *a = (args){.out = "-", .steps = 250, .skip = 25, .batch = 4, .min_step = d.min_step, .samples = 3, .msteps = 200, .mskip = 20,
                .ads_layer = -1, .thr = d.threshold, .saff_thr = d.saff_threshold, .mthr = 0.15, .compat = GLAD_TS_CONSISTENT, .shard_n = 1, .nstep = -1};
    int c;
    while ((c = cli_getopt(argc, argv, "o:hV", lo)) != -1) {
        switch (c) {
        case O_MODEL: a->model = optarg; break;
        case O_STEPS: if (cli_parse_int("--steps", optarg, 1, T_MAX - 1, &a->steps)) return CLI_USAGE; break;
        case O_SKIP: if (cli_parse_int("--skip", optarg, 1, T_MAX - 1, &a->skip)) return CLI_USAGE; break;
        case O_NSTEP: if (cli_parse_int("--noise-step", optarg, 0, T_MAX - 1, &a->nstep)) return CLI_USAGE; break;
        case O_INF: if (cli_parse_int("--inference-steps", optarg, 1, T_MAX - 1, &a->inf)) return CLI_USAGE; break;
        case O_ETA: if (cli_parse_double("--eta", optarg, 0, 1, &a->eta)) return CLI_USAGE; break;
        case O_COMPAT: if (cli_parse_choice("--compat", optarg, glad_ts_modes, &a->compat)) return CLI_USAGE; break;
        case O_CONDW: if (cli_parse_double("--cond-w", optarg, -1000, 1000, &a->condw)) return CLI_USAGE; break;
        case O_ADS: a->ads = 1; break;
        case O_THR: if (cli_parse_double("--threshold", optarg, -10, 10, &a->thr)) return CLI_USAGE; break;
        case O_MIN: if (cli_parse_int("--min-step", optarg, 0, T_MAX, &a->min_step)) return CLI_USAGE; break;
        case O_SAFF: a->saff = 1; break;
        case O_SAFFM: if (cli_parse_choice("--saff-mask", optarg, glad_saff_masks, &a->saff_bin)) return CLI_USAGE; break;
        case O_SAFFT: if (cli_parse_double("--saff-threshold", optarg, -10, 10, &a->saff_thr)) return CLI_USAGE; break;
        case O_ADSBB: if (cli_parse_choice("--ads-backbone", optarg, glad_backbone_kinds, &a->ads_kind)) return CLI_USAGE; a->ads_kind_set = 1; break;
        case O_ADSL: if (cli_parse_int("--ads-layer", optarg, 0, 64, &a->ads_layer)) return CLI_USAGE; break;
        case O_ADSW: a->ads_w = optarg; break;
        case O_ADSS: if (cli_parse_int("--ads-size", optarg, 8, 8192, &a->ads_size)) return CLI_USAGE; break;
        case O_ADSN: if (cli_parse_choice("--ads-norm", optarg, glad_backbone_norms, &a->ads_norm)) return CLI_USAGE; break;
        case O_FT: if (cli_parse_double("--feature-t", optarg, 0, T_MAX - 1, &a->ft)) return CLI_USAGE; break;
        case O_MDPS: a->mdps = 1; break;
        case O_SAMPLES: if (cli_parse_int("--samples", optarg, 1, 1000, &a->samples)) return CLI_USAGE; break;
        case O_MSTEPS: if (cli_parse_int("--mask-steps", optarg, 0, T_MAX - 1, &a->msteps)) return CLI_USAGE; break;
        case O_MSKIP: if (cli_parse_int("--mask-skip", optarg, 1, T_MAX - 1, &a->mskip)) return CLI_USAGE; break;
        case O_MTHR: if (cli_parse_double("--mask-threshold", optarg, -1e9, 1e9, &a->mthr)) return CLI_USAGE; break;
        case O_MABS: a->mabs = 1; break;
        case O_GUID: if (cli_parse_double("--guidance", optarg, -1e6, 1e6, &a->guid)) return CLI_USAGE; a->guid_set = 1; break;
        case O_MGUID: if (cli_parse_double("--mask-guidance", optarg, -1e6, 1e6, &a->mguid)) return CLI_USAGE; break;
        case O_KEEP: a->keep = 1; break;
        case O_BATCH: if (cli_parse_int("--batch", optarg, 1, 1024, &a->batch)) return CLI_USAGE; break;
        case O_SEED: if (cli_parse_int("--seed", optarg, 0, 1L << 62, &a->seed)) return CLI_USAGE; break;
        case O_SHARD: if (cli_parse_shard(optarg, &a->shard_k, &a->shard_n)) return CLI_USAGE; break;
        case O_PREC: if (cli_parse_choice("--precision", optarg, glad_precision_names, &a->prec)) return CLI_USAGE; break;
        case 'o': a->out = optarg; break;
        case O_ZSTD: a->zstd = 3; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    /* glad_backbone_kinds[0] is unet, the one kind built from the model file */
    if (!a->model) return cli_usage_error("--model MODEL is required");
    if (a->saff && !a->ads) return cli_usage_error("--saff works with --ads");
    if (a->ads && a->ads_kind != 0 && !a->ads_w) return cli_usage_error("--ads-backbone %s needs --ads-weights FILE", glad_backbone_kinds[a->ads_kind]);
    if (a->ads && a->mdps) return cli_usage_error("--ads and --mdps are different strategies; choose one");
    if (a->inf) a->skip = a->steps / a->inf > 0 ? a->steps / a->inf : 1;
    if (a->skip > a->steps) return cli_usage_error("--skip must not exceed --steps");
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    a->in = optind < argc ? argv[optind] : "-";
    if (glad_precision_set((glad_precision)a->prec)) return cli_error("%s", glad_error_detail());
    return -1;
}

/* The model, the strategy and the batch buffers. */
typedef struct {
    glad_model m;
    glad_latent lat;            /* latent mode (H, W: the first record's size) */
    int latent;
    glad_unet_eps ue;
    glad_rng_noise nz;
    glad_backbone *bb;
    glad_ads_backbone ab;
    glad_denoise_opts o;
    glad_mdps_opts mo;
    int C, H, W, B, mdps, mask;
    long K;                     /* samples kept per record (0: none) */
    size_t per, hw;
    glad_record *recs;
    float *y, *rec, *smp, *M;
    uint64_t *ids;
    int *steps;
} job;

static void job_close(job *j)
{
    for (int b = 0; j->recs && b < j->B; b++) glad_record_free(&j->recs[b]);
    free(j->recs); free(j->y); free(j->rec); free(j->smp); free(j->M); free(j->ids); free(j->steps);
    glad_backbone_close(j->bb);
    glad_unet_eps_free(&j->ue);
    glad_model_free(&j->m);
    if (j->latent) glad_latent_free(&j->lat);
}

static int plan_error(const char *opt_t, const char *opt_s, long t, int T)
{
    if (t >= T) return cli_usage_error("%s %ld: the model has T = %d diffusion steps (use 1..%d)", opt_t, t, T, T - 1);
    const char *d = glad_error_detail();
    return cli_usage_error("invalid %s/%s%s%s", opt_t, opt_s, *d ? ": " : "", d);
}

/* The latent model, its plan and the ADS backbone (DINO on decoded images);
 * exit status (job closed on failure). */
static int latent_open(job *j, const args *a)
{
    if (a->mdps) return cli_usage_error("--mdps works with pixel-space models, not a latent model");
    if (a->ads && a->ads_kind_set && a->ads_kind == 0) return cli_usage_error("--ads-backbone unet: a latent model has no such backbone (use vit)");
    if (a->ads && !a->ads_w) return cli_usage_error("--ads with a latent model needs --ads-backbone vit --ads-weights FILE (DINO)");
    if (a->ads && cli_check_file(a->ads_w)) return CLI_FAIL;
    j->latent = 1;
    if (glad_latent_load(&j->lat, a->model)) { j->latent = 0; return cli_error("%s", glad_error_detail()); }
    if (a->guid_set) j->lat.guidance = a->guid;
    j->C = glad_vae_cfg(j->lat.vae)->in_channels; j->B = (int)a->batch;
    int st = CLI_FAIL;
    glad_denoise_opts *o = &j->o;
    glad_denoise_opts_default(o);
    o->eta = a->eta; o->cond_w = a->condw; o->ads = a->ads; o->threshold = a->thr; o->min_step = (int)a->min_step; o->saff = a->saff;
    o->saff_binary = a->saff_bin; o->saff_threshold = a->saff_thr;
    glad_error_clear();
    if (glad_ddim_plan_make(&o->plan, j->lat.alpha_bar, j->lat.T, (int)a->steps, (int)a->skip, (glad_ts_mode)a->compat)) { st = plan_error("--steps", "--skip", a->steps, j->lat.T); goto fail; }
    if (a->nstep >= 0 && glad_ddim_plan_noise_at(&o->plan, j->lat.alpha_bar, j->lat.T, (int)a->nstep)) { st = cli_usage_error("--noise-step %ld: the model has T = %d diffusion steps (use 0..%d)", a->nstep, j->lat.T, j->lat.T - 1); goto fail; }
    if (a->ads) {
        int kind = a->ads_kind_set ? a->ads_kind : 1;   /* glad_backbone_kinds[1]: vit, GLAD's DINO */
        glad_backbone_opts bo = {glad_backbone_kinds[kind], a->ads_w, 0, (int)a->ads_size, (glad_backbone_norm)a->ads_norm};
        if (glad_backbone_open(&j->bb, &bo)) { st = cli_error("--ads-backbone: %s", glad_error_detail()); goto fail; }
        if (glad_ads_backbone_init(&j->ab, j->bb, (int)a->ads_layer)) { st = cli_usage_error("--ads-layer: %s", glad_error_detail()); goto fail; }
    }
    return CLI_OK;
fail:
    job_close(j);
    return st;
}

/* Model, plans and the ADS backbone; exit status (job closed on failure). */
static int job_open(job *j, const args *a)
{
    memset(j, 0, sizeof *j);
    if (glad_latent_is_model(a->model)) return latent_open(j, a);
    if (a->nstep >= 0) return cli_usage_error("--noise-step works with a latent model (GLAD as published)");
    if (cli_check_file(a->model) || (a->ads && a->ads_w && cli_check_file(a->ads_w))) return CLI_FAIL;
    if (glad_model_load(&j->m, a->model)) return cli_error("%s", glad_error_detail());
    const glad_unet_config *cfg = glad_unet_cfg(j->m.unet);
    j->C = cfg->in_channels; j->H = j->W = cfg->img_size; j->B = (int)a->batch; j->mdps = a->mdps;
    int st = CLI_FAIL;
    if (glad_unet_eps_init(&j->ue, j->m.unet, j->C, j->H, j->W)) { st = cli_error("%s", glad_error_detail()); goto fail; }
    glad_denoise_opts *o = &j->o;
    glad_denoise_opts_default(o);
    o->eta = a->eta; o->cond_w = a->condw; o->ads = a->ads; o->threshold = a->thr; o->min_step = (int)a->min_step; o->saff = a->saff;
    o->saff_binary = a->saff_bin; o->saff_threshold = a->saff_thr;
    glad_error_clear();
    if (a->ft > j->m.T - 1) { st = cli_usage_error("--feature-t %g: the model has T = %d (use 0..%d)", a->ft, j->m.T, j->m.T - 1); goto fail; }
    if (glad_ddim_plan_make(&o->plan, j->m.alpha_bar, j->m.T, (int)a->steps, (int)a->skip, (glad_ts_mode)a->compat)) { st = plan_error("--steps", "--skip", a->steps, j->m.T); goto fail; }
    j->mo = (glad_mdps_opts){.plan = o->plan, .guidance = a->guid, .mask_guidance = a->mguid, .mask_threshold = a->mthr,
                             .threshold_absolute = a->mabs, .samples = (int)a->samples, .use_mask = a->msteps > 0};
    j->mask = a->mdps && j->mo.use_mask;
    if (j->mask && glad_ddim_plan_make(&j->mo.mask_plan, j->m.alpha_bar, j->m.T, (int)a->msteps, (int)(a->mskip < a->msteps ? a->mskip : a->msteps), (glad_ts_mode)a->compat)) {
        st = plan_error("--mask-steps", "--mask-skip", a->msteps, j->m.T);
        goto fail;
    }
    if (a->ads) {
        glad_backbone_opts bo = {glad_backbone_kinds[a->ads_kind], a->ads_w ? a->ads_w : a->model, (float)a->ft, (int)a->ads_size, (glad_backbone_norm)a->ads_norm};
        if (glad_backbone_open(&j->bb, &bo)) { st = cli_error("--ads-backbone: %s", glad_error_detail()); goto fail; }
        if (glad_ads_backbone_init(&j->ab, j->bb, (int)a->ads_layer)) { st = cli_usage_error("--ads-layer: %s", glad_error_detail()); goto fail; }
    }
    j->K = a->mdps && a->keep ? a->samples : 0;
    j->per = (size_t)j->C * j->H * j->W; j->hw = (size_t)j->H * j->W;
    return CLI_OK;
fail:
    job_close(j);
    return st;
}

/* the batch buffers; in latent mode the image buffers come once the first
 * record gives the size (a second call) */
static int job_alloc(job *j)
{
    size_t B = (size_t)j->B;
    if (!j->recs) {
        j->recs = calloc(B, sizeof *j->recs);
        j->ids = calloc(B, sizeof(uint64_t)); j->steps = calloc(B, sizeof(int));
        if (!j->recs || !j->ids || !j->steps) return cli_error("out of memory");
    }
    if (!j->H) return CLI_OK;
    j->y = malloc(j->per * B * sizeof(float)); j->rec = malloc(j->per * B * sizeof(float));
    j->smp = j->K ? malloc(j->per * B * (size_t)j->K * sizeof(float)) : NULL;
    j->M = j->mask ? malloc(j->hw * B * sizeof(float)) : NULL;
    if (!j->y || !j->rec || (j->mask && !j->M) || (j->K && !j->smp)) return cli_error("out of memory");
    return CLI_OK;
}

/* Fill up to B records from the shard; *nb read, *rrc the reader's last answer. */
static int read_batch(job *j, glad_reader *rd, const args *a, long *index, int *nb, int *rrc)
{
    *nb = 0;
    while (*nb < j->B && (*rrc = glad_reader_next(rd, &j->recs[*nb])) == 1) {
        if ((*index)++ % a->shard_n != a->shard_k) continue;
        glad_record *r = &j->recs[*nb];
        const char *id = glad_record_id(r);
        const glad_tensor *im;
        int ic, ih, iw, C = j->C;
        if (glad_record_get_tensor(r, "image", &im)) return cli_rec_error(id, "image", "missing");
        if (glad_tensor_chw(im, &ic, &ih, &iw)) return cli_rec_error(id, "image", "is not a [C,H,W] image");
        if (!j->H) {
            /* latent mode: the first record's size, each side a multiple of the model's */
            int mult = glad_latent_size_multiple(&j->lat);
            if (ih < mult || iw < mult || ih % mult || iw % mult || ih > 16384 || iw > 16384)
                return cli_rec_error(id, "image", "is [%d,%d,%d]; the latent model takes images whose sides are multiples of %d (glad-encode --size HxW)", ic, ih, iw, mult);
            j->H = ih; j->W = iw;
            j->per = (size_t)C * ih * iw; j->hw = (size_t)ih * iw;
            int st = job_alloc(j);
            if (st) return st;
        }
        if (ic != C || ih != j->H || iw != j->W) {
            if (j->H == j->W) return cli_rec_error(id, "image", "is [%d,%d,%d] but the model takes [%d,%d,%d] (glad-encode --size %d, --channels %d)", ic, ih, iw, C, j->H, j->W, j->H, C);
            return cli_rec_error(id, "image", "is [%d,%d,%d] but the model takes [%d,%d,%d] (glad-encode --size %dx%d, --channels %d)", ic, ih, iw, C, j->H, j->W, j->H, j->W, C);
        }
        if (glad_tensor_has_nonfinite(im)) return cli_rec_error(id, "image", "contains NaN or infinity");
        if (glad_tensor_image_to_f32(im, j->y + j->per * *nb)) return cli_rec_error(id, "image", "is not numeric");
        j->ids[*nb] = glad_rng_hash_str(id);
        (*nb)++;
    }
    return CLI_OK;
}

/* The strategy on records b0 .. b0+nb-1 of the batch. */
static int run(job *j, int b0, int nb)
{
    const glad_noise_fn *nf = glad_rng_noise_init(&j->nz, j->nz.seed, j->ids + b0);
    const float *y = j->y + j->per * b0;
    if (j->latent)
        return glad_latent_run(&j->lat, nf, j->o.ads ? glad_ads_backbone_fn(&j->ab) : NULL, &j->o, nb, y, j->H, j->W, j->rec + j->per * b0,
                               j->steps + b0);
    if (j->mdps)
        return glad_mdps_run(glad_unet_eps_fn(&j->ue), nf, j->mask ? &glad_mdps_pixel_dist : NULL, &j->mo, nb, y, j->rec + j->per * b0,
                             j->smp, j->mask ? j->M + j->hw * b0 : NULL);
    return glad_denoise_run(glad_unet_eps_fn(&j->ue), nf, j->o.ads ? glad_ads_backbone_fn(&j->ab) : NULL, &j->o, nb, y,
                            j->rec + j->per * b0, j->steps + b0);
}

/* A failed batch: results never depend on the batch, so the record that
 * fails alone is the one to name. */
static int run_batch(job *j, int nb)
{
    glad_error_clear();
    int rc = run(j, 0, nb), bad = 0;
    for (int b = 0; rc < 0 && nb > 1 && b < nb; b++) {
        glad_error_clear();
        if (run(j, b, 1) < 0) { bad = b; break; }
    }
    if (rc < 0) {
        const char *d = glad_error_detail();
        return cli_rec_error(glad_record_id(&j->recs[bad]), "recon", "failed: %s", *d ? d : glad_strerror(rc));
    }
    return CLI_OK;
}

/* New f32/u8 tensor field from floats; GLAD_ENAN when they are not finite. */
static int set_tensor(glad_record *r, const char *key, glad_dtype dt, int nd, const int64_t *shape, const float *src)
{
    glad_tensor t;
    GLAD_TRY(glad_tensor_from_f32(&t, dt, nd, shape, src));
    int rc = glad_tensor_has_nonfinite(&t) ? GLAD_ENAN : glad_record_set_tensor(r, key, &t);
    glad_tensor_free(&t);
    return rc;
}

static int write_batch(job *j, glad_writer *wr, const char *out, int nb)
{
    int64_t shp[3] = {j->C, j->H, j->W}, ms[3] = {1, j->H, j->W}, ks[4] = {j->K, j->C, j->H, j->W};
    float *tmp = j->K ? malloc(j->per * (size_t)j->K * sizeof(float)) : NULL;
    int status = j->K && !tmp ? cli_error("out of memory") : CLI_OK, rc;
    for (int b = 0; b < nb && status == CLI_OK; b++) {
        glad_record *r = &j->recs[b];
        const char *id = glad_record_id(r);
        if ((rc = set_tensor(r, "recon", GLAD_DT_F32, 3, shp, j->rec + j->per * b)))
            status = rc == GLAD_ENAN ? cli_rec_error(id, "recon", "contains NaN or infinity (is the model broken?)") : cli_error("out of memory");
        else if (j->o.ads && glad_record_set_int(r, "ads_step", j->steps[b])) status = cli_error("out of memory");
        else if (j->mask && set_tensor(r, "mdps_mask", GLAD_DT_U8, 3, ms, j->M + j->hw * b)) status = cli_error("out of memory");
        if (status == CLI_OK && tmp) {
            /* samples come as (K, batch, C, H, W); a record keeps its K */
            for (long k = 0; k < j->K; k++) memcpy(tmp + j->per * k, j->smp + (j->per * nb) * k + j->per * b, j->per * sizeof(float));
            if ((rc = set_tensor(r, "recon_samples", GLAD_DT_F32, 4, ks, tmp)))
                status = rc == GLAD_ENAN ? cli_rec_error(id, "recon_samples", "contains NaN or infinity") : cli_error("out of memory");
        }
        if (status == CLI_OK && glad_writer_write(wr, r)) status = cli_error("%s", glad_error_detail());
    }
    free(tmp);
    return status;
}

int main(int argc, char **argv)
{
    cli_init("glad-denoise");
    args a;
    int status = parse_args(&a, argc, argv), nb = 0, rrc = 1;
    if (status >= 0) return status;
    job j;
    if ((status = job_open(&j, &a))) return status;
    glad_reader *rd;
    glad_writer *wr;
    if (cli_open_io(a.in, a.out, a.zstd, argc, argv, &rd, &wr)) { job_close(&j); return CLI_FAIL; }
    status = job_alloc(&j);
    j.nz.seed = (uint64_t)a.seed;
    long index = 0;
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    while (status == CLI_OK) {
        status = read_batch(&j, rd, &a, &index, &nb, &rrc);
        if (status != CLI_OK || nb == 0) break;
        status = run_batch(&j, nb);
        if (status == CLI_OK) status = write_batch(&j, wr, a.out, nb);
        cli_progress_step(&pg, nb);
        if (rrc != 1) break;
    }
    cli_progress_end(&pg);
    if (status == CLI_OK && rrc < 0) status = cli_reader_error(rd, a.in);
    status = cli_finish(status, rd, wr);
    job_close(&j);
    return status;
}
