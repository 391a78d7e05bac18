/* glad-score - anomaly maps (amap) and image scores (score) from image,
 * recon and feat.* tensors: GLAD, DDAD and MDPS scoring and their parts. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "imgproc/foreground.h"
#include "io/image.h"
#include "score/score.h"
#include "imgproc/resize.h"

static const char usage[] =
    "Usage: glad-score [OPTION]... [FILE]\n"
    "Add an anomaly map 'amap' [1,H,W] and an image score 'score' to every record\n"
    "(FILE or standard input) from 'image', 'recon' and feat.image.L / feat.recon.L.\n"
    "\n"
    "  -p, --preset P         glad | ddad | mdps: the published choices (set first;\n"
    "                         later options override)\n"
    "      --feat-dist D      nn (GLAD: nearest over all recon positions) | same (DDAD:\n"
    "                         3x3 patch mean, same position) | none (pixel only)\n"
    "      --bidirectional M  on | off | auto (GLAD: on for transistor, pcb1, pcb4)\n"
    "      --layers LIST      feature layers to use (default: every feat.image.L with a feat.recon.L)\n"
    "      --pixel-space S    raw | imagenet: space of the pixel distance mean_c |recon - image|\n"
    "      --v V              fusion A = D_f + V (max D_f / max D_p) D_p (per record; 0 = features only)\n"
    "      --scale K          multiply the map by K (MDPS: 0.5)\n"
    "      --sigma S          Gaussian smoothing (kernel 2*floor(4S+0.5)+1, reflect); 0 = none\n"
    "      --fg M             object mask: none | auto (GLAD's test-time class list) | dark | bright\n"
    "      --crop N           centre crop map and mask to NxN (DDAD/MDPS: 224)\n"
    "      --size N           map resolution (default: the image's)\n"
    "      --image-score R    max | topk-mean:K | softmax-topk:K\n"
    "      --keep-parts       also store amap_pixel and amap_feat\n"
    "  -o, --output FILE      output (default stdout);  --zstd  compress\n"
    "  -h, --help, -V, --version\n"
    "\n"
    "Presets: glad = nn, bidirectional auto, v 0 (imagenet), sigma 6, fg auto, topk-mean:250;\n"
    "ddad = same, v 1 (raw), sigma 4, crop 224, max; mdps = same, v 7 (imagenet), sigma 4,\n"
    "scale 0.5, crop 224, softmax-topk:500. Without any feat.* tensors the map is the pixel\n"
    "distance. Maxima of the fusion are per record (the reference code uses the batch).\n";

typedef struct {
    int feat;          /* 0 none, 1 nn, 2 same */
    int bidir;         /* 0 off, 1 on, 2 auto */
    int imagenet;
    double v, scale, sigma;
    int fg;            /* -1 auto, else glad_fg_mode */
    int crop, size;
    int reducer;       /* 0 max, 1 topk-mean, 2 softmax-topk */
    long k;
    int keep;
    char **layers;
    int nlayers;
} opts;

static void preset(opts *o, const char *p)
{
    if (!strcmp(p, "glad")) { o->feat = 1; o->bidir = 2; o->imagenet = 1; o->v = 0; o->scale = 1; o->sigma = 6; o->fg = -1; o->crop = 0; o->reducer = 1; o->k = 250; }
    else if (!strcmp(p, "ddad")) { o->feat = 2; o->bidir = 0; o->imagenet = 0; o->v = 1; o->scale = 1; o->sigma = 4; o->fg = 0; o->crop = 224; o->reducer = 0; }
    else if (!strcmp(p, "mdps")) { o->feat = 2; o->bidir = 0; o->imagenet = 1; o->v = 7; o->scale = 0.5; o->sigma = 4; o->fg = 0; o->crop = 224; o->reducer = 2; o->k = 500; }
}

static int layer_wanted(const opts *o, const char *l)
{
    if (!o->nlayers) return 1;
    for (int i = 0; i < o->nlayers; i++) if (!strcmp(o->layers[i], l)) return 1;
    return 0;
}

/* float copy of an image-like tensor as (C,H,W) in [-1,1] */
static int image_f32(const glad_tensor *t, float **out, int *c, int *h, int *w)
{
    GLAD_TRY(glad_tensor_chw(t, c, h, w));
    *out = malloc(sizeof(float) * glad_tensor_numel(t));
    if (!*out) return GLAD_ENOMEM;
    int rc = glad_tensor_image_to_f32(t, *out);
    if (rc) { free(*out); *out = NULL; }
    return rc;
}

static int score_record(glad_record *r, const opts *o)
{
    const char *id = glad_record_id(r);
    const glad_tensor *ti, *tr;
    int rc;
    if ((rc = glad_record_get_tensor(r, "image", &ti))) return cli_rec_error(id, "image", rc == GLAD_ENOTFOUND ? "missing" : "is not a tensor");
    if ((rc = glad_record_get_tensor(r, "recon", &tr))) return cli_rec_error(id, "recon", rc == GLAD_ENOTFOUND ? "missing (run glad-denoise first)" : "is not a tensor");
    int C, H, W, C2, H2, W2;
    float *img = NULL, *rec = NULL, *A = NULL, *P = NULL, *F = NULL, *tmp = NULL, *lay = NULL, *fa = NULL, *fb = NULL;
    int status = CLI_FAIL;
    if (image_f32(ti, &img, &C, &H, &W)) { cli_rec_error(id, "image", "must be [C,H,W] or [H,W] numbers"); goto out; }
    if (image_f32(tr, &rec, &C2, &H2, &W2)) { cli_rec_error(id, "recon", "must be [C,H,W] or [H,W] numbers"); goto out; }
    if (C != C2 || H != H2 || W != W2) { cli_rec_error(id, "recon", "shape [%d,%d,%d] differs from image [%d,%d,%d]", C2, H2, W2, C, H, W); goto out; }
    size_t n = (size_t)C * H * W;
    for (size_t i = 0; i < n; i++) if (!isfinite(img[i]) || !isfinite(rec[i])) { cli_rec_error(id, isfinite(img[i]) ? "recon" : "image", "contains NaN or infinity"); goto out; }
    int oh = o->size ? o->size : H, ow = o->size ? o->size : W;
    size_t on = (size_t)oh * ow;
    A = calloc(on, sizeof(float)); P = malloc(on * sizeof(float)); tmp = malloc((size_t)H * W * sizeof(float));
    if (!A || !P || !tmp) { cli_error("out of memory"); goto out; }
    /* pixel distance at the image resolution, then to the map resolution */
    glad_score_pixel_map(tmp, img, rec, C, H, W, o->imagenet);
    glad_resize_bilinear(P, oh, ow, tmp, 1, H, W, 1);
    /* feature distances, summed over layers */
    int nfeat = 0;
    int bidir = o->bidir == 2 ? 0 : o->bidir;
    const char *cls;
    if (o->bidir == 2 && glad_record_get_str(r, "class", &cls) == 0)
        bidir = !strcmp(cls, "transistor") || !strcmp(cls, "pcb1") || !strcmp(cls, "pcb4");
    for (int f = 0; o->feat && f < r->n; f++) {
        const glad_field *fi = &r->f[f];
        if (fi->kind != GLAD_VAL_TENSOR || strncmp(fi->key, "feat.image.", 11) != 0) continue;
        const char *L = fi->key + 11;
        if (!layer_wanted(o, L)) continue;
        char key[300];
        snprintf(key, sizeof key, "feat.recon.%s", L);
        const glad_tensor *t2;
        if (glad_record_get_tensor(r, key, &t2)) { cli_rec_error(id, key, "missing (feat.image.%s has no partner)", L); goto out; }
        const glad_tensor *t1 = &fi->t;
        if (t1->ndim != 3 || t2->ndim != 3 || memcmp(t1->shape, t2->shape, 3 * sizeof(int64_t))) { cli_rec_error(id, key, "shape differs from feat.image.%s or is not [C,h,w]", L); goto out; }
        int fc = (int)t1->shape[0], fh = (int)t1->shape[1], fw = (int)t1->shape[2];
        size_t fn = (size_t)fc * fh * fw;
        free(fa); free(fb); free(lay);
        fa = malloc(fn * sizeof(float)); fb = malloc(fn * sizeof(float)); lay = malloc(2 * (size_t)fh * fw * sizeof(float));
        if (!fa || !fb || !lay || glad_tensor_to_f32(t1, fa) || glad_tensor_to_f32(t2, fb)) { cli_rec_error(id, key, "is not numeric"); goto out; }
        for (size_t i = 0; i < fn; i++) if (!isfinite(fa[i]) || !isfinite(fb[i])) { cli_rec_error(id, key, "contains NaN or infinity"); goto out; }
        size_t hw = (size_t)fh * fw;
        if (o->feat == 1) {
            if ((rc = glad_score_nn_map(lay, fa, (int)hw, fb, (int)hw, fc))) { cli_rec_error(id, key, "%s", glad_strerror(rc)); goto out; }
            if (bidir) {
                glad_score_nn_map(lay + hw, fb, (int)hw, fa, (int)hw, fc);
                for (size_t i = 0; i < hw; i++) lay[i] += lay[hw + i];
            }
        } else if ((rc = glad_score_same_map(lay, fa, fb, fc, fh, fw))) { cli_rec_error(id, key, "%s", glad_strerror(rc)); goto out; }
        if (!F && !(F = calloc(on, sizeof(float)))) { cli_error("out of memory"); goto out; }
        float *up = malloc(on * sizeof(float));
        if (!up) { cli_error("out of memory"); goto out; }
        glad_resize_bilinear(up, oh, ow, lay, 1, fh, fw, 1);
        for (size_t i = 0; i < on; i++) F[i] += up[i];
        free(up);
        nfeat++;
    }
    if (nfeat) {
        memcpy(A, F, on * sizeof(float));
        glad_score_fuse(A, P, on, o->v);
    } else memcpy(A, P, on * sizeof(float));
    if (o->scale != 1.0) for (size_t i = 0; i < on; i++) A[i] = (float)(A[i] * o->scale);
    glad_score_gaussian_blur(A, oh, ow, o->sigma);
    /* object mask from the input image at the map resolution */
    int fg = o->fg;
    if (fg == -1) fg = glad_fg_mode_for_class(glad_record_get_str(r, "class", &cls) == 0 ? cls : NULL, 1);
    if (fg != GLAD_FG_NONE) {
        float *ir = malloc((size_t)C * on * sizeof(float)), *obj = malloc(on * sizeof(float));
        if (!ir || !obj) { free(ir); free(obj); cli_error("out of memory"); goto out; }
        glad_resize_bilinear(ir, oh, ow, img, C, H, W, 1);
        glad_object_mask(obj, ir, C, oh, ow, (glad_fg_mode)fg);
        for (size_t i = 0; i < on; i++) A[i] *= obj[i];
        free(ir);
        free(obj);
    }
    glad_tensor am = {0}, tp = {0};
    int64_t shp[3] = {1, oh, ow};
    if (glad_tensor_from_f32(&am, GLAD_DT_F32, 3, shp, A)) { cli_error("out of memory"); goto out; }
    int crop = o->crop && o->crop <= oh && o->crop <= ow ? o->crop : 0;
    if (crop) { glad_image_center_crop(&tp, &am, crop, crop); glad_tensor_move(&am, &tp); }
    size_t fin = glad_tensor_numel(&am);
    const float *fm = am.data;
    double score = o->reducer == 0 ? glad_score_max(fm, fin) : o->reducer == 1 ? glad_score_topk_mean(fm, fin, (size_t)o->k)
                                                                               : glad_score_softmax_topk(fm, fin, (size_t)o->k);
    /* the ground truth follows the map: nearest to the map size, same crop */
    const glad_tensor *mk;
    if (glad_record_get_tensor(r, "mask", &mk) == 0) {
        int mc, mh, mw;
        if (glad_tensor_chw(mk, &mc, &mh, &mw) == 0 && (mh != oh || mw != ow || crop)) {
            glad_tensor m2 = {0}, m3 = {0};
            if (mh != oh || mw != ow) glad_image_resize(&m2, mk, oh, ow, 1); else glad_tensor_copy(&m2, mk);
            if (crop) { glad_image_center_crop(&m3, &m2, crop, crop); glad_tensor_move(&m2, &m3); }
            if (m2.data) glad_record_set_tensor(r, "mask", &m2);
        }
    }
    if (o->keep) {
        glad_tensor tpix = {0}, tfeat = {0};
        if (glad_tensor_from_f32(&tpix, GLAD_DT_F32, 3, shp, P) == 0) glad_record_set_tensor(r, "amap_pixel", &tpix);
        if (F && glad_tensor_from_f32(&tfeat, GLAD_DT_F32, 3, shp, F) == 0) glad_record_set_tensor(r, "amap_feat", &tfeat);
    }
    if (glad_record_set_tensor(r, "amap", &am) || glad_record_set_f64(r, "score", score)) { glad_tensor_free(&am); cli_error("out of memory"); goto out; }
    status = CLI_OK;
out:
    free(img); free(rec); free(A); free(P); free(F); free(tmp); free(lay); free(fa); free(fb);
    return status;
}

int main(int argc, char **argv)
{
    cli_init("glad-score");
    enum { O_FEAT = 256, O_BIDIR, O_LAYERS, O_PIX, O_V, O_SCALE, O_SIGMA, O_FG, O_CROP, O_SIZE, O_RED, O_KEEP, O_ZSTD };
    static const struct option lo[] = {
        {"preset", required_argument, 0, 'p'}, {"feat-dist", required_argument, 0, O_FEAT},
        {"bidirectional", optional_argument, 0, O_BIDIR}, {"layers", required_argument, 0, O_LAYERS},
        {"pixel-space", required_argument, 0, O_PIX}, {"v", required_argument, 0, O_V}, {"scale", required_argument, 0, O_SCALE},
        {"sigma", required_argument, 0, O_SIGMA}, {"fg", required_argument, 0, O_FG}, {"crop", required_argument, 0, O_CROP},
        {"size", required_argument, 0, O_SIZE}, {"image-score", required_argument, 0, O_RED}, {"keep-parts", no_argument, 0, O_KEEP},
        {"output", required_argument, 0, 'o'}, {"zstd", no_argument, 0, O_ZSTD},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    opts o = {.feat = 1, .bidir = 0, .imagenet = 0, .v = 0, .scale = 1, .sigma = 0, .fg = 0, .reducer = 0, .k = 1};
    preset(&o, "glad");
    /* the preset first, whatever its position */
    for (int i = 1; i < argc; i++) {
        const char *p = NULL;
        if ((!strcmp(argv[i], "--preset") || !strcmp(argv[i], "-p")) && i + 1 < argc) p = argv[i + 1];
        else if (!strncmp(argv[i], "--preset=", 9)) p = argv[i] + 9;
        if (p && strcmp(p, "glad") && strcmp(p, "ddad") && strcmp(p, "mdps")) return cli_usage_error("unknown preset '%s' (glad, ddad, mdps)", p);
        if (p) preset(&o, p);
    }
    const char *out = "-";
    int zstd = 0, c;
    long lv;
    char *layers_copy = NULL;
    while ((c = cli_getopt(argc, argv, "p:o:hV", lo)) != -1) {
        switch (c) {
        case 'p': break;
        case O_FEAT:
            if (!strcmp(optarg, "nn")) o.feat = 1; else if (!strcmp(optarg, "same")) o.feat = 2; else if (!strcmp(optarg, "none")) o.feat = 0;
            else return cli_usage_error("--feat-dist takes nn, same or none");
            break;
        case O_BIDIR:
            if (!optarg || !strcmp(optarg, "on")) o.bidir = 1; else if (!strcmp(optarg, "off")) o.bidir = 0; else if (!strcmp(optarg, "auto")) o.bidir = 2;
            else return cli_usage_error("--bidirectional takes on, off or auto");
            break;
        case O_LAYERS: {
            free(layers_copy);
            layers_copy = strdup(optarg);
            free(o.layers);
            o.layers = calloc(strlen(optarg) + 1, sizeof(char *));
            o.nlayers = 0;
            for (char *s = strtok(layers_copy, ","); s; s = strtok(NULL, ",")) o.layers[o.nlayers++] = s;
            break;
        }
        case O_PIX:
            if (!strcmp(optarg, "raw")) o.imagenet = 0; else if (!strcmp(optarg, "imagenet")) o.imagenet = 1;
            else return cli_usage_error("--pixel-space takes raw or imagenet");
            break;
        case O_V: if (cli_parse_double("--v", optarg, 0, 1e6, &o.v)) return CLI_USAGE; break;
        case O_SCALE: if (cli_parse_double("--scale", optarg, -1e6, 1e6, &o.scale)) return CLI_USAGE; break;
        case O_SIGMA: if (cli_parse_double("--sigma", optarg, 0, 100, &o.sigma)) return CLI_USAGE; break;
        case O_FG:
            if (!strcmp(optarg, "none")) o.fg = 0; else if (!strcmp(optarg, "auto")) o.fg = -1;
            else if (!strcmp(optarg, "dark")) o.fg = GLAD_FG_DARK; else if (!strcmp(optarg, "bright")) o.fg = GLAD_FG_BRIGHT;
            else return cli_usage_error("--fg takes none, auto, dark or bright");
            break;
        case O_CROP: if (cli_parse_int("--crop", optarg, 0, 32768, &lv)) return CLI_USAGE; o.crop = (int)lv; break;
        case O_SIZE: if (cli_parse_int("--size", optarg, 0, 32768, &lv)) return CLI_USAGE; o.size = (int)lv; break;
        case O_RED:
            if (!strcmp(optarg, "max")) o.reducer = 0;
            else if (!strncmp(optarg, "topk-mean:", 10)) { o.reducer = 1; if (cli_parse_int("--image-score topk-mean:K", optarg + 10, 1, 1L << 40, &o.k)) return CLI_USAGE; }
            else if (!strncmp(optarg, "softmax-topk:", 13)) { o.reducer = 2; if (cli_parse_int("--image-score softmax-topk:K", optarg + 13, 1, 1L << 40, &o.k)) return CLI_USAGE; }
            else return cli_usage_error("--image-score takes max, topk-mean:K or softmax-topk:K");
            break;
        case O_KEEP: o.keep = 1; break;
        case 'o': out = optarg; break;
        case O_ZSTD: zstd = 3; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    const char *in = optind < argc ? argv[optind] : "-";
    glad_reader *rd;
    glad_writer *wr;
    if (cli_open_io(in, out, zstd, argc, argv, &rd, &wr)) return CLI_FAIL;
    glad_record r;
    glad_record_init(&r);
    int status = CLI_OK, rc;
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    while (status == CLI_OK && (rc = glad_reader_next(rd, &r)) == 1) {
        status = score_record(&r, &o);
        if (status == CLI_OK && glad_writer_write(wr, &r)) status = cli_error("%s", glad_error_detail());
        cli_progress_step(&pg, 1);
    }
    cli_progress_end(&pg);
    if (status == CLI_OK && rc < 0) status = cli_reader_error(rd, in);
    glad_record_free(&r);
    status = cli_finish(status, rd, wr);
    free(o.layers);
    free(layers_copy);
    return status;
}
