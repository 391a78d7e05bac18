/* glad-features - feature maps of a record's image and reconstruction,
 * stored as feat.<input>.<layer> [C,h,w] for glad-score. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "diffusion/model.h"
#include "imgproc/pool.h"
#include "imgproc/standardize.h"
#include "models/backbone.h"
#include "nn/bf16.h"

/* record tensors one run may take (--input); further input sizes (--also-size) */
#define MAX_INPUTS 8
#define MAX_ALSO 4

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
    "      --also-size LIST  the same layers again at each further input size N (not unet;\n"
    "                       as --size), stored as feat.<input>.<layer>@N: glad-bank banks\n"
    "                       them as layers of their own and glad-score --layers L takes\n"
    "                       L and every L@N (scores summed over input sizes; at most 4)\n"
    "      --norm N         imagenet (vit, resnet default: (x+1)/2 then ImageNet mean/std) | raw\n"
    "      --feature-t T    unet: timestep of the encoder pass (default 0)\n"
    "      --pool K         each position's vector replaced by the mean over its K x K\n"
    "                       neighbourhood in the map (PatchCore's local aggregation; K odd,\n"
    "                       default 1: none; the border's windows are clipped to the map;\n"
    "                       K > 1 is recorded as feat_pool, checked against a bank's K)\n"
    "      --standardize S  each input image first brought to mean 0 and standard deviation\n"
    "                       S on the [-1,1] intensity scale over all its pixels and channels,\n"
    "                       clipped to [-1,1] (0 < S <= 8; per-image contrast normalisation;\n"
    "                       recorded as feat_standardize, checked against a bank's S)\n"
    "      --standardize-tail T  beyond +-1 after --standardize: clip (default: clamped) |\n"
    "                       tanh (squashed into (-1,1), order kept) | open (left as they are);\n"
    "                       other than clip recorded as feat_standardize_tail, checked\n"
    "                       against a bank's. A list T,U,... computes the features under\n"
    "                       each tail: T's under the plain names, each further tail U's\n"
    "                       as feat.<input>.<layer>~U (and ~U@N); glad-bank banks them as\n"
    "                       layers of their own and glad-score takes the pixel-wise\n"
    "                       maximum of the tails' maps (each feature pass once per tail)\n"
    "      --f16            store features as float16 (half the stream size)\n"
    "      --shard K/N      only records with index %% N == K\n"
    "      --precision P    f32 (default) | bf16: convolutions, linear layers and attention\n"
    "                       products on bf16 operands with fp32 sums (CPUs with AVX512_BF16; features differ by ~1e-2)\n"
    "  -o, --output FILE, --zstd, -h, --help, -V, --version\n";

typedef struct {
    const char *kind, *model, *weights, *out, *in;
    double ft, stdz;   /* stdz: --standardize S, 0 = not given */
    int tail;          /* --standardize-tail (glad_std_tails_parse's code) */
    long size, pool, also[MAX_ALSO];
    int nalso;
    int f16, zstd, shard_k, shard_n, norm, prec;
    char *layers_s, *inputs_buf;
    const char *inputs[MAX_INPUTS];
    int ni;
} args;

/* "a,b,c" split in place into at most max names; an empty list or name is a
 * usage error */
static int split_list(const char *opt, char *s, const char **names, int max, int *n)
{
    const char *all = s;
    *n = 0;
    for (char *p = s, *e; ; p = e + 1) {
        e = strchr(p, ',');
        if (e) *e = 0;
        if (!*p) return cli_usage_error("%s: an empty name in '%s'", opt, all);
        if (*n == max) return cli_usage_error("%s: at most %d names", opt, max);
        names[(*n)++] = p;
        if (!e) return 0;
    }
}

/* --also-size "N,M": sizes 8..8192, none twice */
static int parse_also(args *a, const char *s)
{
    char buf[256];
    const char *names[MAX_ALSO];
    if (strlen(s) >= sizeof buf) return cli_usage_error("--also-size: '%.40s...' is too long", s);
    strcpy(buf, s);
    if (split_list("--also-size", buf, names, MAX_ALSO, &a->nalso)) return CLI_USAGE;
    for (int i = 0; i < a->nalso; i++) {
        if (cli_parse_int("--also-size", names[i], 8, 8192, &a->also[i])) return CLI_USAGE;
        for (int j = 0; j < i; j++) if (a->also[j] == a->also[i]) return cli_usage_error("--also-size: %ld twice", a->also[i]);
    }
    return 0;
}

/* -1: go on; else the exit status */
static int parse_args(args *a, int argc, char **argv)
{
    enum { O_MODEL = 256, O_WEIGHTS, O_LAYERS, O_INPUT, O_FT, O_F16, O_SHARD, O_ZSTD, O_SIZE, O_NORM, O_PREC, O_POOL, O_STDZ, O_ALSO, O_TAIL };
    static const struct option lo[] = {
        {"backbone", required_argument, 0, 'b'}, {"model", required_argument, 0, O_MODEL}, {"weights", required_argument, 0, O_WEIGHTS},
        {"layers", required_argument, 0, O_LAYERS}, {"input", required_argument, 0, O_INPUT}, {"feature-t", required_argument, 0, O_FT},
        {"f16", no_argument, 0, O_F16}, {"size", required_argument, 0, O_SIZE}, {"norm", required_argument, 0, O_NORM}, {"precision", required_argument, 0, O_PREC}, {"pool", required_argument, 0, O_POOL}, {"standardize", required_argument, 0, O_STDZ}, {"standardize-tail", required_argument, 0, O_TAIL}, {"also-size", required_argument, 0, O_ALSO}, {"shard", required_argument, 0, O_SHARD}, {"output", required_argument, 0, 'o'},
        {"zstd", no_argument, 0, O_ZSTD}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    const char *inputs_s = "image,recon";
    int c, k;
    while ((c = cli_getopt(argc, argv, "b:o:hV", lo)) != -1) {
        switch (c) {
        case 'b': if (cli_parse_choice("--backbone", optarg, glad_backbone_kinds, &k)) return CLI_USAGE; a->kind = glad_backbone_kinds[k]; break;
        case O_MODEL: a->model = optarg; break;
        case O_WEIGHTS: a->weights = optarg; break;
        case O_LAYERS: a->layers_s = optarg; break;
        case O_INPUT: inputs_s = optarg; break;
        case O_FT: if (cli_parse_double("--feature-t", optarg, 0, GLAD_MODEL_MAX_T - 1, &a->ft)) return CLI_USAGE; break;
        case O_F16: a->f16 = 1; break;
        case O_SIZE: if (cli_parse_int("--size", optarg, 8, 8192, &a->size)) return CLI_USAGE; break;
        case O_POOL:
            if (cli_parse_int("--pool", optarg, 1, GLAD_POOL_MAX_K, &a->pool)) return CLI_USAGE;
            if (a->pool % 2 == 0) return cli_usage_error("--pool: %ld is even (the window is centred: 1, 3, 5, ...)", a->pool);
            break;
        case O_ALSO: if (parse_also(a, optarg)) return CLI_USAGE; break;
        case O_STDZ: if (cli_parse_double("--standardize", optarg, 1e-3, GLAD_STANDARDIZE_MAX, &a->stdz)) return CLI_USAGE; break;
        case O_TAIL:
            if ((a->tail = glad_std_tails_parse(optarg)) < 0) return cli_usage_error("--standardize-tail: '%s' is not clip, tanh or open, or a list of them without one twice", optarg);
            break;
        case O_NORM: if (cli_parse_choice("--norm", optarg, glad_backbone_norms, &a->norm)) return CLI_USAGE; break;
        case O_PREC: if (cli_parse_choice("--precision", optarg, glad_precision_names, &a->prec)) return CLI_USAGE; break;
        case O_SHARD: if (cli_parse_shard(optarg, &a->shard_k, &a->shard_n)) return CLI_USAGE; break;
        case 'o': a->out = optarg; break;
        case O_ZSTD: a->zstd = 3; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    /* glad_backbone_kinds[0] is unet, the one kind built from a model file */
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    if (a->model && a->weights) return cli_usage_error("--model and --weights name the same file; give one");
    if (a->model) a->weights = a->model;
    if (!a->weights && (!a->kind || a->kind == glad_backbone_kinds[0])) return cli_usage_error("the unet backbone needs --model MODEL (a glad-train model file)");
    if (!a->weights) return cli_usage_error("the %s backbone needs --weights FILE", a->kind);
    for (int i = 0; i < a->nalso; i++)
        if (a->also[i] == a->size) return cli_usage_error("--also-size: %ld is --size already", a->size);
    if (a->tail != GLAD_STD_TAIL_CLIP && a->stdz == 0) return cli_usage_error("--standardize-tail needs --standardize S");
    if (a->nalso && !a->size) return cli_usage_error("--also-size needs --size N (the features at the first size keep their plain names)");
    if (a->layers_s && !*a->layers_s) return cli_usage_error("--layers: an empty list (give layer numbers such as 1,2)");
    if (!(a->inputs_buf = strdup(inputs_s))) return cli_error("out of memory");
    if (split_list("--input", a->inputs_buf, a->inputs, MAX_INPUTS, &a->ni)) return CLI_USAGE;
    a->in = optind < argc ? argv[optind] : "-";
    if (glad_precision_set((glad_precision)a->prec)) return cli_error("%s", glad_error_detail());
    return -1;
}

/* --layers checked against the backbone, or its default layers */
static int pick_layers(glad_backbone *bb, const char *s, int *layers, int *nl)
{
    int lmin, lmax;
    glad_backbone_layer_range(bb, &lmin, &lmax);
    if (!s) { *nl = glad_backbone_default_layers(bb, layers); return 0; }
    char *buf = strdup(s);
    const char *names[GLAD_BACKBONE_MAX_LAYERS];
    int st = buf ? split_list("--layers", buf, names, GLAD_BACKBONE_MAX_LAYERS, nl) : cli_error("out of memory");
    for (int i = 0; st == 0 && i < *nl; i++) {
        char *end;
        long v = strtol(names[i], &end, 10);
        if (*end || v < lmin || v > lmax) st = cli_usage_error("--layers: '%s' is not a %s layer %d..%d (at most %d layers)", names[i], glad_backbone_kind(bb), lmin, lmax, GLAD_BACKBONE_MAX_LAYERS);
        layers[i] = (int)v;
    }
    free(buf);
    return st;
}

/* feat.<input>.<layer><suffix> of one prepared image x at the backbone's current size */
static int size_features(glad_record *r, glad_backbone *bb, const args *a, const char *input, const float *x, int C, int H, int W,
                         const int *layers, int nl, const char *suffix)
{
    const char *id = glad_record_id(r);
    int status = CLI_OK, rc;
    float *f[GLAD_BACKBONE_MAX_LAYERS] = {0};
    int fc[GLAD_BACKBONE_MAX_LAYERS], fh[GLAD_BACKBONE_MAX_LAYERS], fw[GLAD_BACKBONE_MAX_LAYERS];
    if ((rc = glad_backbone_features(bb, x, C, H, W, nl, layers, f, fc, fh, fw))) return cli_rec_error(id, input, "features: %s", glad_strerror(rc));
    // --pool: the local mean replaces each layer's map (PatchCore's aggregation)
    for (int l = 0; l < nl && status == CLI_OK && a->pool > 1; l++) {
        float *p = malloc((size_t)fc[l] * fh[l] * fw[l] * sizeof *p);
        if (!p) { status = cli_error("out of memory"); break; }
        if ((rc = glad_pool_avg(p, f[l], fc[l], fh[l], fw[l], (int)a->pool))) { free(p); status = cli_rec_error(id, input, "--pool: %s", glad_error_detail()); break; }
        free(f[l]);
        f[l] = p;
    }
    for (int l = 0; l < nl && status == CLI_OK; l++) {
        char key[300];
        snprintf(key, sizeof key, "feat.%s.%d%s", input, layers[l], suffix);
        int64_t shp[3] = {fc[l], fh[l], fw[l]};
        glad_tensor t32 = {0}, ft = {0};
        if (glad_tensor_from_f32(&t32, GLAD_DT_F32, 3, shp, f[l]) || glad_tensor_from_f32(&ft, a->f16 ? GLAD_DT_F16 : GLAD_DT_F32, 3, shp, f[l])) status = cli_error("out of memory");
        else if (glad_tensor_has_nonfinite(&t32)) status = cli_rec_error(id, key, "contains NaN or infinity (the backbone's output of finite input: broken weights?)");
        else if (glad_tensor_has_nonfinite(&ft)) status = cli_rec_error(id, key, "exceeds the float16 range (drop --f16)");
        else if (glad_record_set_tensor(r, key, &ft)) status = cli_error("out of memory");
        glad_tensor_free(&t32);
        glad_tensor_free(&ft);
    }
    for (int l = 0; l < nl; l++) free(f[l]);
    return status;
}

/* feat.<input>.<layer> of every input of one record (and feat.<input>.<layer>@N
 * for every --also-size N: the same standardised image, resized to N instead) */
static int record_features(glad_record *r, glad_backbone *bb, const args *a, const int *layers, int nl)
{
    const char *id = glad_record_id(r);
    int status = CLI_OK;
    for (int k = 0; k < a->ni && status == CLI_OK; k++) {
        const glad_tensor *t;
        int C, H, W, rc;
        if (glad_record_get_tensor(r, a->inputs[k], &t)) return cli_rec_error(id, a->inputs[k], "missing");
        if (glad_tensor_chw(t, &C, &H, &W)) return cli_rec_error(id, a->inputs[k], "is not a [C,H,W] image");
        if (glad_tensor_has_nonfinite(t)) return cli_rec_error(id, a->inputs[k], "contains NaN or infinity");
        size_t n = glad_tensor_numel(t);
        float *x0 = malloc(n * sizeof(float)), *x = malloc(n * sizeof(float));
        if (!x0 || !x || glad_tensor_image_to_f32(t, x0)) { free(x0); free(x); return cli_rec_error(id, a->inputs[k], "is not numeric"); }
        /* tail -1: the first tail (plain names), then each further one (L~T) */
        for (int tail = -1; tail < GLAD_STD_TAIL_OPEN + 1 && status == CLI_OK; tail++) {
            if (tail >= 0 && !GLAD_STD_TAILS_HAS(a->tail, tail)) continue;
            memcpy(x, x0, n * sizeof(float));
            glad_std_tail tt = tail < 0 ? GLAD_STD_TAILS_FIRST(a->tail) : (glad_std_tail)tail;
            if (a->stdz > 0 && (rc = glad_standardize_tail(x, n, a->stdz, tt))) { status = cli_rec_error(id, a->inputs[k], "--standardize: %s", glad_error_detail()); break; }
            for (int s = 0; s <= a->nalso && status == CLI_OK; s++) {
                char suffix[32] = "";
                /* sizes were checked against the backbone before the first record */
                if (a->nalso && glad_backbone_set_size(bb, (int)(s ? a->also[s - 1] : a->size))) status = cli_error("%s", glad_error_detail());
                else {
                    snprintf(suffix, sizeof suffix, "%s%s", tail < 0 ? "" : "~", tail < 0 ? "" : glad_std_tails[tail]);
                    if (s) snprintf(suffix + strlen(suffix), sizeof suffix - strlen(suffix), "@%ld", a->also[s - 1]);
                    status = size_features(r, bb, a, a->inputs[k], x, C, H, W, layers, nl, suffix);
                }
            }
        }
        free(x0);
        free(x);
    }
    /* feat_pool says how the feat.* tensors were pooled (absent: not), so that
     * glad-score refuses a bank pooled otherwise (glad-bank stores its K) */
    if (status == CLI_OK && a->pool > 1 && glad_record_set_int(r, "feat_pool", a->pool)) status = cli_error("out of memory");
    if (status == CLI_OK && a->pool == 1) glad_record_remove(r, "feat_pool");
    /* feat_standardize likewise: features of standardised images against a bank
     * of unstandardised ones (or another S) would be distances of two inputs */
    if (status == CLI_OK && a->stdz > 0 && glad_record_set_f64(r, "feat_standardize", a->stdz)) status = cli_error("out of memory");
    if (status == CLI_OK && a->stdz == 0) glad_record_remove(r, "feat_standardize");
    /* and its tail when not the clamp (records of the clamp as before) */
    char tails[32];
    if (status == CLI_OK && a->tail != GLAD_STD_TAIL_CLIP && (glad_std_tails_format(tails, sizeof tails, a->tail) || glad_record_set_str(r, "feat_standardize_tail", tails))) status = cli_error("out of memory");
    if (status == CLI_OK && a->tail == GLAD_STD_TAIL_CLIP) glad_record_remove(r, "feat_standardize_tail");
    return status;
}

int main(int argc, char **argv)
{
    cli_init("glad-features");
    args a = {.out = "-", .shard_n = 1, .pool = 1};
    int status = parse_args(&a, argc, argv), rc = 0, layers[GLAD_BACKBONE_MAX_LAYERS], nl = 0;
    if (status >= 0 || cli_check_file(a.weights)) { free(a.inputs_buf); return status >= 0 ? status : CLI_FAIL; }
    glad_backbone_opts bo = {a.kind, a.weights, (float)a.ft, (int)a.size, (glad_backbone_norm)a.norm};
    glad_backbone *bb;
    if (glad_backbone_open(&bb, &bo)) { free(a.inputs_buf); return cli_error("%s", glad_error_detail()); }
    glad_reader *rd = NULL;
    glad_writer *wr = NULL;
    /* every --also-size must suit the backbone before a record is read */
    for (int i = 0; i < a.nalso && status < 0; i++)
        if (glad_backbone_set_size(bb, (int)a.also[i])) status = cli_usage_error("--also-size: %s", glad_error_detail());
    if (status < 0 && a.nalso && glad_backbone_set_size(bb, (int)a.size)) status = cli_error("%s", glad_error_detail());
    if (status < 0 && (status = pick_layers(bb, a.layers_s, layers, &nl)) == CLI_OK) status = cli_open_io(a.in, a.out, a.zstd, argc, argv, &rd, &wr);
    glad_record r;
    glad_record_init(&r);
    long index = 0;
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    while (status == CLI_OK && (rc = glad_reader_next(rd, &r)) == 1) {
        if (index++ % a.shard_n != a.shard_k) continue;
        status = record_features(&r, bb, &a, layers, nl);
        if (status == CLI_OK && glad_writer_write(wr, &r)) status = cli_error("%s", glad_error_detail());
        cli_progress_step(&pg, 1);
    }
    cli_progress_end(&pg);
    if (status == CLI_OK && rc < 0) status = cli_reader_error(rd, a.in);
    glad_record_free(&r);
    status = cli_finish(status, rd, wr);
    glad_backbone_close(bb);
    free(a.inputs_buf);
    return status;
}
