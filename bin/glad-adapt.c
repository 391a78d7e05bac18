/* glad-adapt - adapt a feature backbone to a class: DDAD's domain
 * adaptation of the Wide ResNet (ddad-da) or GLAD's DINO fine-tuning
 * (dino-ft). Options into a glad_adapt_config, then the epoch loop of
 * lib/models/adapt.h: the losses, reconstructions, optimiser and the
 * feat{k} checkpoints are all there. */
#include <getopt.h>
#include <stdlib.h>
#include "cli.h"
#include "models/adapt.h"

static const char usage[] =
    "Usage: glad-adapt --method M --backbone WEIGHTS -o DIR [OPTION]... [FILE]\n"
    "Fine-tune a feature backbone on a class (FILE or stdin); write DIR/feat0.safetensors (the\n"
    "pretrained weights) and DIR/feat{k}.safetensors after each epoch k, loadable by\n"
    "glad-features and glad-denoise (--weights).\n"
    "\n"
    "  -m, --method M         ddad-da: DDAD's domain adaptation of a ResNet; FILE is the class's\n"
    "                         training stream ('image'), --model the DDAD diffusion model\n"
    "                         dino-ft: GLAD's DINO fine-tuning of a ViT; FILE is a glad-denoise\n"
    "                         stream ('image' and 'recon')\n"
    "  -b, --backbone FILE    the pretrained weights (resnet or vit safetensors)\n"
    "  -o, --output DIR       checkpoint directory (made if missing)\n"
    "      --model FILE       ddad-da: the diffusion model of the reconstructions\n"
    "      --epochs N         (ddad-da 4, dino-ft 15)\n"
    "      --batch N          images per step (16; ddad-da splits it: targets | inputs)\n"
    "      --accum N          batches per optimiser step (dino-ft 2, ddad-da 1)\n"
    "      --lr LR            (ddad-da 1e-4 AdamW, dino-ft 3e-4 Adam)\n"
    "      --wd WD            weight decay (ddad-da 0.01 decoupled, dino-ft 0)\n"
    "      --lambda L         weight of the frozen-copy terms (ddad-da 0.1: MVTec, 0.01: VisA;\n"
    "                         dino-ft 0.01)\n"
    "      --w-da W           ddad-da: conditioning of the reconstructions (3)\n"
    "      --steps T --skip S ddad-da: the reconstruction starts at T with skip S (250, 25)\n"
    "      --size N           dino-ft: the ViT's input side (256)\n"
    "      --seed S           batch order and reconstruction noise (0)\n"
    "      --resume           continue bit-exactly from the last DIR/feat{k}.state.safetensors;\n"
    "                         give the options of the first run (another --epochs is fine)\n"
    "  -h, --help, -V, --version\n";

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out)
{
    long v;
    if (cli_parse_int(opt, s, lo, hi, &v)) return CLI_USAGE;
    *out = (int)v;
    return CLI_OK;
}

/* argv into c; *done when --help or --version answered */
static int parse_args(int argc, char **argv, glad_adapt_config *c, int *done)
{
    enum { O_MODEL = 256, O_EPOCHS, O_BATCH, O_ACCUM, O_LR, O_WD, O_LAMBDA, O_WDA, O_STEPS, O_SKIP, O_SIZE, O_SEED, O_RESUME };
    static const struct option lo[] = {
        {"method", required_argument, 0, 'm'}, {"backbone", required_argument, 0, 'b'}, {"output", required_argument, 0, 'o'},
        {"model", required_argument, 0, O_MODEL}, {"epochs", required_argument, 0, O_EPOCHS}, {"batch", required_argument, 0, O_BATCH},
        {"accum", required_argument, 0, O_ACCUM}, {"lr", required_argument, 0, O_LR}, {"wd", required_argument, 0, O_WD},
        {"lambda", required_argument, 0, O_LAMBDA}, {"w-da", required_argument, 0, O_WDA}, {"steps", required_argument, 0, O_STEPS},
        {"skip", required_argument, 0, O_SKIP}, {"size", required_argument, 0, O_SIZE}, {"seed", required_argument, 0, O_SEED},
        {"resume", no_argument, 0, O_RESUME}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int k, rc = CLI_OK, method = -1;
    long seed;
    glad_adapt_config_default(c, 0);
    *done = 0;
    while (rc == CLI_OK && (k = cli_getopt(argc, argv, "m:b:o:hV", lo)) != -1) {
        switch (k) {
        case 'm': rc = cli_parse_choice("--method", optarg, glad_adapt_methods, &method); break;
        case 'b': c->backbone = optarg; break;
        case 'o': c->outdir = optarg; break;
        case O_MODEL: c->model = optarg; break;
        case O_EPOCHS: rc = parse_int("--epochs", optarg, 1, 100000, &c->epochs); break;
        case O_BATCH: rc = parse_int("--batch", optarg, 1, 4096, &c->batch); break;
        case O_ACCUM: rc = parse_int("--accum", optarg, 1, 4096, &c->accum); break;
        case O_LR: rc = cli_parse_double("--lr", optarg, 0, 10, &c->lr); break;
        case O_WD: rc = cli_parse_double("--wd", optarg, 0, 10, &c->wd); break;
        case O_LAMBDA: rc = cli_parse_double("--lambda", optarg, 0, 1e6, &c->lambda); break;
        case O_WDA: rc = cli_parse_double("--w-da", optarg, 0, 1e3, &c->w_da); break;
        case O_STEPS: rc = parse_int("--steps", optarg, 1, 100000, &c->t_start); break;
        case O_SKIP: rc = parse_int("--skip", optarg, 1, 100000, &c->skip); break;
        case O_SIZE: rc = parse_int("--size", optarg, 8, 4096, &c->size); break;
        case O_SEED: if (!(rc = cli_parse_int("--seed", optarg, 0, 1L << 62, &seed))) c->seed = seed; break;
        case O_RESUME: c->resume = 1; break;
        case 'h': fputs(usage, stdout); *done = 1; return CLI_OK;
        case 'V': *done = 1; return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (rc != CLI_OK) return rc;
    if (method < 0) return cli_usage_error("--method ddad-da|dino-ft is required");
    c->method = method;
    if (!c->backbone) return cli_usage_error("--backbone WEIGHTS is required");
    if (!c->outdir) return cli_usage_error("-o DIR is required");
    if (c->method == GLAD_ADAPT_DDAD_DA && !c->model) return cli_usage_error("ddad-da needs --model (the DDAD diffusion model)");
    if (c->method == GLAD_ADAPT_DINO_FT && c->model) return cli_usage_error("dino-ft takes its reconstructions from the stream, not --model");
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    c->input = optind < argc ? argv[optind] : "-";
    if (cli_check_file(c->backbone) || (c->model && cli_check_file(c->model))) return CLI_FAIL;
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli_init("glad-adapt");
    glad_adapt_config cfg;
    int done, rc = parse_args(argc, argv, &cfg, &done);
    if (rc != CLI_OK || done) return rc;
    glad_adapt *a;
    if ((rc = glad_adapt_open(&a, &cfg)))
        return rc == GLAD_EINVAL ? cli_usage_error("%s", glad_error_detail()) : cli_error("%s", glad_error_detail());
    cli_progress pg;
    cli_progress_start(&pg, "epochs", a->epochs - a->epoch);
    int status = CLI_OK;
    while (status == CLI_OK && a->epoch < a->epochs) {
        if (glad_adapt_epoch(a)) { status = cli_error("%s", glad_error_detail()); break; }
        cli_progress_step(&pg, 1);
        if (pg.active) fprintf(stderr, " loss %.4g", a->epoch_loss);
    }
    cli_progress_end(&pg);
    glad_adapt_close(a);
    return status;
}
