/* glad-features - feature maps of a record's image and reconstruction,
 * stored as feat.<input>.<layer> [C,h,w] for glad-score. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "models/backbone.h"

static const char usage[] =
    "Usage: glad-features [OPTION]... [FILE]\n"
    "Add feature maps feat.<input>.<layer> ([C,h,w]) of the named inputs of every record.\n"
    "\n"
    "  -b, --backbone B     unet | vit | resnet | mobilenetv2 (default: the kind of the\n"
    "                       --weights file; unet when only --model is given)\n"
    "      --weights FILE   vit, resnet: safetensors (datasets/weights/convert.py);\n"
    "                       mobilenetv2: a .tflite file; unet: a glad-train model\n"
    "      --model FILE     the glad-train model for the built-in unet backbone (no download)\n"
    "      --layers LIST    layer numbers (unet: resolution levels from 0 = full size, default\n"
    "                       the two deepest; vit: blocks from 1, default 3,6,9,12; resnet:\n"
    "                       layer1..3, default 2,3; mobilenetv2: blocks 0..16, default 5,12)\n"
    "      --input LIST     record tensors to run (default image,recon)\n"
    "      --size N         resize inputs to NxN first (vit: a multiple of the patch,\n"
    "                       mobilenetv2: of 32; default: the image's size; unet: the model's)\n"
    "      --norm N         imagenet (vit, resnet default: (x+1)/2 then ImageNet mean/std) | raw\n"
    "      --feature-t T    unet: timestep of the encoder pass (default 0)\n"
    "      --f16            store features as float16 (half the stream size)\n"
    "      --shard K/N      only records with index %% N == K\n"
    "  -o, --output FILE, --zstd, -h, --help, -V, --version\n";

int main(int argc, char **argv)
{
    cli_init("glad-features");
    enum { O_MODEL = 256, O_WEIGHTS, O_LAYERS, O_INPUT, O_FT, O_F16, O_SHARD, O_ZSTD, O_SIZE, O_NORM };
    static const struct option lo[] = {
        {"backbone", required_argument, 0, 'b'}, {"model", required_argument, 0, O_MODEL}, {"weights", required_argument, 0, O_WEIGHTS},
        {"layers", required_argument, 0, O_LAYERS}, {"input", required_argument, 0, O_INPUT}, {"feature-t", required_argument, 0, O_FT},
        {"f16", no_argument, 0, O_F16}, {"size", required_argument, 0, O_SIZE}, {"norm", required_argument, 0, O_NORM}, {"shard", required_argument, 0, O_SHARD}, {"output", required_argument, 0, 'o'},
        {"zstd", no_argument, 0, O_ZSTD}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    const char *kind = NULL, *model = NULL, *weights = NULL, *layers_s = NULL, *inputs_s = "image,recon", *out = "-";
    double ft = 0;
    long size = 0;
    int f16 = 0, zstd = 0, shard_k = 0, shard_n = 1, norm = 0, c;
    while ((c = cli_getopt(argc, argv, "b:o:hV", lo)) != -1) {
        switch (c) {
        case 'b': { int k; if (cli_parse_choice("--backbone", optarg, glad_backbone_kinds, &k)) return CLI_USAGE; kind = optarg; break; }
        case O_MODEL: model = optarg; break;
        case O_WEIGHTS: weights = optarg; break;
        case O_LAYERS: layers_s = optarg; break;
        case O_INPUT: inputs_s = optarg; break;
        case O_FT: if (cli_parse_double("--feature-t", optarg, 0, 999, &ft)) return CLI_USAGE; break;
        case O_F16: f16 = 1; break;
        case O_SIZE: if (cli_parse_int("--size", optarg, 8, 8192, &size)) return CLI_USAGE; break;
        case O_NORM: if (cli_parse_choice("--norm", optarg, glad_backbone_norms, &norm)) return CLI_USAGE; break;
        case O_SHARD: if (cli_parse_shard(optarg, &shard_k, &shard_n)) return CLI_USAGE; break;
        case 'o': out = optarg; break;
        case O_ZSTD: zstd = 3; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    if (model && weights) return cli_usage_error("--model and --weights name the same file; give one");
    if (model) weights = model;
    if (!weights && (!kind || !strcmp(kind, "unet"))) return cli_usage_error("the unet backbone needs --model MODEL (a glad-train model file)");
    if (!weights) return cli_usage_error("the %s backbone needs --weights FILE", kind);
    glad_backbone_opts bo = {kind, weights, (float)ft, (int)size, (glad_backbone_norm)norm};
    glad_backbone *bb;
    if (glad_backbone_open(&bb, &bo)) return cli_error("%s", glad_error_detail());
    int lmin, lmax, layers[GLAD_BACKBONE_MAX_LAYERS], nl = 0;
    glad_backbone_layer_range(bb, &lmin, &lmax);
    if (layers_s) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", layers_s);
        for (char *s = strtok(buf, ","); s; s = strtok(NULL, ",")) {
            char *end;
            long v = strtol(s, &end, 10);
            if (*end || v < lmin || v > lmax || nl == GLAD_BACKBONE_MAX_LAYERS) {
                cli_usage_error("--layers: '%s' is not a %s layer %d..%d (at most %d layers)", s, glad_backbone_kind(bb), lmin, lmax, GLAD_BACKBONE_MAX_LAYERS);
                glad_backbone_close(bb);
                return CLI_USAGE;
            }
            layers[nl++] = (int)v;
        }
    } else {
        nl = glad_backbone_default_layers(bb, layers);
    }
    char inbuf[256], *inputs[8];
    int ni = 0;
    snprintf(inbuf, sizeof inbuf, "%s", inputs_s);
    for (char *s = strtok(inbuf, ","); s && ni < 8; s = strtok(NULL, ",")) inputs[ni++] = s;
    const char *in = optind < argc ? argv[optind] : "-";
    glad_reader *rd;
    glad_writer *wr;
    if (cli_open_io(in, out, zstd, argc, argv, &rd, &wr)) { glad_backbone_close(bb); return CLI_FAIL; }
    glad_record r;
    glad_record_init(&r);
    int status = CLI_OK, rc;
    long index = 0;
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    while (status == CLI_OK && (rc = glad_reader_next(rd, &r)) == 1) {
        if (index++ % shard_n != shard_k) continue;
        const char *id = glad_record_id(&r);
        for (int k = 0; k < ni && status == CLI_OK; k++) {
            const glad_tensor *t;
            int C, H, W;
            if (glad_record_get_tensor(&r, inputs[k], &t)) { status = cli_rec_error(id, inputs[k], "missing"); break; }
            if (glad_tensor_chw(t, &C, &H, &W)) { status = cli_rec_error(id, inputs[k], "is not a [C,H,W] image"); break; }
            float *x = malloc(glad_tensor_numel(t) * sizeof(float));
            if (!x || glad_tensor_image_to_f32(t, x)) { free(x); status = cli_rec_error(id, inputs[k], "is not numeric"); break; }
            for (size_t i = 0; i < glad_tensor_numel(t); i++) if (!isfinite(x[i])) { status = cli_rec_error(id, inputs[k], "contains NaN or infinity"); break; }
            float *f[GLAD_BACKBONE_MAX_LAYERS] = {0};
            int fc[GLAD_BACKBONE_MAX_LAYERS], fh[GLAD_BACKBONE_MAX_LAYERS], fw[GLAD_BACKBONE_MAX_LAYERS];
            if (status == CLI_OK && (rc = glad_backbone_features(bb, x, C, H, W, nl, layers, f, fc, fh, fw))) status = cli_rec_error(id, inputs[k], "features: %s", glad_strerror(rc));
            free(x);
            for (int l = 0; l < nl && status == CLI_OK; l++) {
                char key[300];
                snprintf(key, sizeof key, "feat.%s.%d", inputs[k], layers[l]);
                int64_t shp[3] = {fc[l], fh[l], fw[l]};
                glad_tensor ft_;
                if (glad_tensor_from_f32(&ft_, f16 ? GLAD_DT_F16 : GLAD_DT_F32, 3, shp, f[l]) || glad_record_set_tensor(&r, key, &ft_)) status = cli_error("out of memory");
            }
            for (int l = 0; l < nl; l++) free(f[l]);
        }
        if (status == CLI_OK && glad_writer_write(wr, &r)) status = cli_error("%s", glad_error_detail());
        cli_progress_step(&pg, 1);
    }
    cli_progress_end(&pg);
    if (status == CLI_OK && rc < 0) status = cli_reader_error(rd, in);
    glad_record_free(&r);
    status = cli_finish(status, rd, wr);
    glad_backbone_close(bb);
    return status;
}
