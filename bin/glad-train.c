/* glad-train - train the diffusion UNet on a stream of normal images: the
 * DDPM noise-prediction loss (DDAD/MDPS) or GLAD's anomaly-oriented training
 * paradigm (ATP) on glad-synth output. Options into a glad_train_config, then
 * the loop of lib/diffusion/train.h: the loss, noising, optimiser and
 * checkpoints are all there. Writes a model file (safetensors with the
 * official key names, config and schedule in the metadata) atomically. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "diffusion/train.h"
#include "nn/bf16.h"

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
    "      --base N  --mults LIST  --res-blocks N  --attn LIST|none  --heads N  --dropout P\n"
    "      --batch N          images per step (default 8)\n"
    "      --steps N | --epochs N   training length (default 1000 steps)\n"
    "      --lr LR            learning rate (default 3e-4)\n"
    "      --optim adam|adamw Adam with L2 weight decay (torch.optim.Adam) or AdamW\n"
    "      --wd WD            weight decay (default 0)\n"
    "      --ema DECAY        keep an exponential moving average of the weights and save it\n"
    "      --clip NORM        clip the global gradient norm\n"
    "      --seed S           (default 0)\n"
    "      --precision P      f32 (default) | bf16: mixed precision, the UNet's convolution and attention\n"
    "                         GEMMs on bf16 operands with fp32 sums, weights, gradients and Adam in\n"
    "                         fp32 (CPUs with AVX512_BF16); recorded in the checkpoint\n"
    "      --save-every N     checkpoint every N steps (atomically)\n"
    "      --resume FILE      continue a checkpoint bit-exactly (weights, optimiser, step); the\n"
    "                         loss, model, schedule, batch, lr, optim, wd, ema, clip, seed and\n"
    "                         precision are the checkpoint's: given options must agree with it\n"
    "      --log FILE         CSV: step,loss,images_per_s (on --resume, cut back to the\n"
    "                         checkpoint's step and continued)\n"
    "  -h, --help, -V, --version\n";

/* a comma-separated list of at most GLAD_UNET_MAX_LEVELS numbers (integers
 * when ints) into f or i; "none" is the empty list when none_ok */
static int parse_list(const char *opt, const char *s, float *f, int *i, int *n, int none_ok)
{
    *n = 0;
    if (none_ok && !strcmp(s, "none")) return CLI_OK;
    for (const char *p = s;; p++) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || (*end && *end != ',') || !(v > 0 && v <= 4096) || (i && v != (int)v) || *n == GLAD_UNET_MAX_LEVELS)
            return cli_usage_error("%s takes a list of at most %d positive %s like %s", opt, GLAD_UNET_MAX_LEVELS, i ? "integers" : "numbers",
                                   i ? "16,8 (or none)" : "1,2,2");
        if (f) f[*n] = (float)v;
        if (i) i[*n] = (int)v;
        (*n)++;
        if (!*end) return CLI_OK;
        p = end;
    }
}

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out)
{
    long v;
    if (cli_parse_int(opt, s, lo, hi, &v)) return CLI_USAGE;
    *out = (int)v;
    return CLI_OK;
}

/* argv into c; *done when --help or --version answered */
static int parse_args(int argc, char **argv, glad_train_config *c, long *save_every, int *done)
{
    enum { O_LOSS = 256, O_BETAS, O_PRESET, O_BASE, O_MULTS, O_RES, O_ATTN, O_HEADS, O_DROP, O_BATCH, O_STEPS, O_EPOCHS,
           O_LR, O_OPTIM, O_WD, O_EMA, O_CLIP, O_SEED, O_SAVE, O_RESUME, O_LOG, O_PREC };
    static const struct option lo[] = {
        {"output", required_argument, 0, 'o'}, {"loss", required_argument, 0, O_LOSS}, {"betas", required_argument, 0, O_BETAS},
        {"preset", required_argument, 0, O_PRESET}, {"base", required_argument, 0, O_BASE}, {"mults", required_argument, 0, O_MULTS},
        {"res-blocks", required_argument, 0, O_RES}, {"attn", required_argument, 0, O_ATTN}, {"heads", required_argument, 0, O_HEADS},
        {"dropout", required_argument, 0, O_DROP}, {"batch", required_argument, 0, O_BATCH}, {"steps", required_argument, 0, O_STEPS},
        {"epochs", required_argument, 0, O_EPOCHS}, {"lr", required_argument, 0, O_LR}, {"optim", required_argument, 0, O_OPTIM},
        {"wd", required_argument, 0, O_WD}, {"ema", required_argument, 0, O_EMA}, {"clip", required_argument, 0, O_CLIP},
        {"seed", required_argument, 0, O_SEED}, {"save-every", required_argument, 0, O_SAVE}, {"resume", required_argument, 0, O_RESUME},
        {"log", required_argument, 0, O_LOG}, {"precision", required_argument, 0, O_PREC}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int k, rc = CLI_OK;
    long seed;
    glad_train_config_default(c);
    *done = 0;
    while (rc == CLI_OK && (k = cli_getopt(argc, argv, "o:hV", lo)) != -1) {
        switch (k) {
        case 'o': c->output = optarg; break;
        case O_LOSS: rc = cli_parse_choice("--loss", optarg, glad_train_losses, &c->loss); break;
        case O_BETAS: rc = cli_parse_choice("--betas", optarg, glad_betas_names, &c->betas); break;
        case O_PRESET: rc = cli_parse_choice("--preset", optarg, glad_train_presets, &c->preset); break;
        case O_BASE: rc = parse_int("--base", optarg, 32, 1024, &c->base); break;
        case O_MULTS: rc = parse_list("--mults", optarg, c->mults, NULL, &c->nmults, 0); break;
        case O_RES: rc = parse_int("--res-blocks", optarg, 1, 8, &c->res_blocks); break;
        case O_ATTN: rc = parse_list("--attn", optarg, NULL, c->attn_res, &c->nattn, 1); break;
        case O_HEADS: rc = parse_int("--heads", optarg, 1, 64, &c->heads); break;
        case O_DROP: rc = cli_parse_double("--dropout", optarg, 0, 0.95, &c->dropout); break;
        case O_BATCH: rc = parse_int("--batch", optarg, 1, 4096, &c->batch); break;
        case O_STEPS: rc = cli_parse_int("--steps", optarg, 1, 100000000, &c->steps); break;
        case O_EPOCHS: rc = cli_parse_int("--epochs", optarg, 1, 1000000, &c->epochs); break;
        case O_LR: rc = cli_parse_double("--lr", optarg, 0, 10, &c->lr); break;
        case O_OPTIM: rc = cli_parse_choice("--optim", optarg, glad_train_optims, &c->optim); break;
        case O_WD: rc = cli_parse_double("--wd", optarg, 0, 10, &c->wd); break;
        case O_EMA: rc = cli_parse_double("--ema", optarg, 0, 0.999999, &c->ema); break;
        case O_CLIP: rc = cli_parse_double("--clip", optarg, 0, 1e9, &c->clip); break;
        case O_SEED: if (!(rc = cli_parse_int("--seed", optarg, 0, 1L << 62, &seed))) c->seed = seed; break;
        case O_SAVE: rc = cli_parse_int("--save-every", optarg, 0, 100000000, save_every); break;
        case O_RESUME: c->resume = optarg; break;
        case O_LOG: c->log = optarg; break;
        case O_PREC: rc = cli_parse_choice("--precision", optarg, glad_precision_names, &c->precision); break;
        case 'h': fputs(usage, stdout); *done = 1; return CLI_OK;
        case 'V': *done = 1; return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (rc != CLI_OK) return rc;
    if (!c->output) return cli_usage_error("-o MODEL is required");
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    c->input = optind < argc ? argv[optind] : "-";
    /* the model or the log written over the training stream would destroy it */
    if (cli_same_file(c->input, c->output)) return cli_error("%s: the output is the input file (write to another file)", c->output);
    if (c->log && cli_same_file(c->input, c->log)) return cli_error("%s: the log is the input file (write to another file)", c->log);
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli_init("glad-train");
    glad_train_config cfg;
    long save_every = 0;
    int done, rc = parse_args(argc, argv, &cfg, &save_every, &done);
    if (rc != CLI_OK || done) return rc;
    glad_train *tr;
    if ((rc = glad_train_open(&tr, &cfg)))
        return rc == GLAD_EINVAL ? cli_usage_error("%s", glad_error_detail()) : cli_error("%s", glad_error_detail());
    cli_progress pg;
    cli_progress_start(&pg, "steps", tr->total - tr->step);
    int status = CLI_OK;
    while (status == CLI_OK && tr->step < tr->total) {
        if (glad_train_step(tr)) { status = cli_error("%s", glad_error_detail()); break; }
        cli_progress_step(&pg, 1);
        if (pg.active && tr->step % 10 == 0) fprintf(stderr, " loss %.4g", tr->loss);
        /* a checkpoint every save_every steps, and the model at the end */
        if ((tr->step == tr->total || (save_every && tr->step % save_every == 0)) && glad_train_save(tr, cfg.output))
            status = cli_error("%s", glad_error_detail());
    }
    cli_progress_end(&pg);
    if (glad_train_close(tr) && status == CLI_OK) status = cli_error("%s", glad_error_detail());
    return status;
}
