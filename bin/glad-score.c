/* glad-score - anomaly maps (amap) and image scores (score) from image,
 * recon and feat.* tensors: GLAD, DDAD and MDPS scoring and their parts.
 * The pipeline and the presets are lib/score's (pipeline.h); this file is
 * options and records. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "imgproc/resize.h"
#include "imgproc/standardize.h"
#include "io/image.h"
#include "metrics/calib.h"
#include "score/pipeline.h"

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
    "      --layers LIST      feature layers to use (default: every feat.image.L with a feat.recon.L;\n"
    "                         L also takes L@N, layer L at input size N: glad-features --also-size,\n"
    "                         and L~T, L~T@N, its features under a further standardisation\n"
    "                         tail T: glad-features --standardize-tail clip,T). The layers of\n"
    "                         each tail make a map of their own, as a stream of that tail\n"
    "                         alone would; amap is their pixel-wise maximum and score its\n"
    "                         image score (--keep-parts: each tail's map as amap.<tail>)\n"
    "      --pixel-space S    raw | imagenet: space of the pixel distance mean_c |recon - image|\n"
    "      --v V              fusion A = D_f + V (max D_f / max D_p) D_p (per record; 0 = features only)\n"
    "      --scale K          multiply the map by K (MDPS: 0.5)\n"
    "      --sigma S          Gaussian smoothing (kernel 2*floor(4S+0.5)+1, reflect); 0 = none\n"
    "      --fg M             object mask: none | auto (GLAD's test-time class list) | dark | bright\n"
    "      --crop N           centre crop map and mask to NxN (DDAD/MDPS: 224)\n"
    "      --size N           map resolution (default: the image's)\n"
    "      --image-score R    max | topk-mean:K | softmax-topk:K\n"
    "      --map-norm M       none (default) | quantile:Q: subtract each map's own\n"
    "                         Q-quantile (nearest rank, Q in [0,1]; 0.5 the median)\n"
    "                         before the image score; amap is the normalised map\n"
    "      --bank FILE        a memory bank of normal features (glad-bank): its layers'\n"
    "                         feat.image.L are compared with the bank's nearest vector\n"
    "                         (1 - cosine), combined with the reconstruction's by --bank-mode\n"
    "      --bank-mode M      replace (bank only: 'recon' and feat.recon.L may be absent\n"
    "                         when --v is 0) | union (min of the bank's and the\n"
    "                         reconstruction's distance; default) | add (their sum)\n"
    "      --bank-norm M      none (default) | ratio | diff: each position's bank distance d\n"
    "                         read against the radius r of its nearest bank vector (its\n"
    "                         distance to the nearest vector of another training image;\n"
    "                         a bank made with glad-bank --radius): d / (r + median r)\n"
    "                         or d - r, so positions of kinds the training images vary\n"
    "                         much in score as low as the rest when they are normal\n"
    "      --global-weight W  with a bank holding whole-image Gaussians (glad-bank --global):\n"
    "                         score = the map's image score + W * score_global, where\n"
    "                         'score_global' (stored whenever the bank has them) is the\n"
    "                         mean over their layers of the image's Mahalanobis distance,\n"
    "                         about 1 for normal images (default 0: the map's score alone).\n"
    "                         With --rescore the records' own score_global is used\n"
    "      --keep-parts       also store amap_pixel and amap_feat\n"
    "      --rescore          records already scored: recompute only 'score' from their\n"
    "                         'amap' with --image-score (and --map-norm, which rewrites\n"
    "                         amap; and --threshold-file's fields);\n"
    "                         nothing else is read (an image-score ablation without\n"
    "                         recomputing the maps)\n"
    "      --threshold-file F add 'decision' (0/1: score > the image threshold) and,\n"
    "                         when F has a pixel threshold, 'pred_mask' (u8 [H,W]:\n"
    "                         amap > it), from thresholds written by\n"
    "                         glad-auroc --calibrate\n"
    "  -o, --output FILE      output (default stdout);  --zstd  compress\n"
    "  -h, --help, -V, --version\n"
    "\n"
    "Presets: glad = nn, bidirectional auto, v 0 (imagenet), sigma 6, fg auto, topk-mean:250;\n"
    "ddad = same, v 1 (raw), sigma 4, crop 224, max; mdps = same, v 7 (imagenet), sigma 4,\n"
    "scale 0.5, crop 224, softmax-topk:500. Without any feat.* tensors the map is the pixel\n"
    "distance. Maxima of the fusion are per record (the reference code uses the batch).\n";

typedef struct {
    glad_score_opts s;
    int keep;
    int rescore;            /* --rescore: score from the record's amap */
    const char *thr_file;   /* --threshold-file */
    const char *bank_file;  /* --bank */
    glad_bank bank;
    glad_bank_mode bank_mode;
    double global_w;        /* --global-weight */
    glad_thresholds thr;
    char *layers_buf;   /* --layers, split in place */
    char **layers;
    int nlayers;
} opts;

enum { O_FEAT = 256, O_BIDIR, O_LAYERS, O_PIX, O_V, O_SCALE, O_SIGMA, O_FG, O_CROP, O_SIZE, O_RED, O_KEEP, O_ZSTD, O_THR, O_BANK, O_BANKMODE, O_RESCORE, O_NORM, O_GLOBALW, O_BANKNORM };

/* "a,b,c" into its names; an empty list or name is a usage error */
static int parse_layers(opts *o, const char *s)
{
    free(o->layers_buf);
    free(o->layers);
    o->layers_buf = strdup(s);
    o->layers = calloc(strlen(s) + 1, sizeof(char *));
    o->nlayers = 0;
    if (!o->layers_buf || !o->layers) return cli_error("out of memory");
    for (char *p = o->layers_buf, *e; ; p = e + 1) {
        e = strchr(p, ',');
        if (e) *e = 0;
        if (!*p) return cli_usage_error("--layers '%s': empty layer name (want a comma-separated list such as 1,2)", s);
        o->layers[o->nlayers++] = p;
        if (!e) return 0;
    }
}

static int parse_reducer(glad_score_opts *s, const char *arg)
{
    int r, rc = cli_parse_image_score(arg, &r, &s->k);
    s->reducer = (glad_score_reducer)r;
    return rc;
}

/* none | quantile:Q */
static int parse_norm(glad_score_opts *s, const char *arg)
{
    if (!strcmp(arg, "none")) { s->norm = GLAD_MAP_NORM_NONE; return 0; }
    if (strncmp(arg, "quantile:", 9)) return cli_usage_error("--map-norm takes none or quantile:Q (Q from 0 to 1), not '%s'", arg);
    s->norm = GLAD_MAP_NORM_QUANTILE;
    return cli_parse_double("--map-norm quantile:Q", arg + 9, 0, 1, &s->norm_q);
}

/* One option other than the preset onto o. */
static int apply_option(opts *o, int c, const char *arg)
{
    glad_score_opts *s = &o->s;
    long lv;
    int k;
    switch (c) {
    case O_FEAT: if (cli_parse_choice("--feat-dist", arg, glad_feat_dists, &k)) return CLI_USAGE; s->feat = (glad_feat_dist)k; return 0;
    case O_BIDIR: if (cli_parse_choice("--bidirectional", arg ? arg : "on", glad_bidir_modes, &k)) return CLI_USAGE; s->bidir = (glad_bidir)k; return 0;
    case O_LAYERS: return parse_layers(o, arg);
    case O_PIX: return cli_parse_choice("--pixel-space", arg, glad_pixel_spaces, &s->imagenet);
    case O_V: return cli_parse_double("--v", arg, 0, 1e6, &s->v);
    case O_SCALE: return cli_parse_double("--scale", arg, -1e6, 1e6, &s->scale);
    case O_SIGMA: return cli_parse_double("--sigma", arg, 0, 100, &s->sigma);
    case O_FG: if (cli_parse_choice("--fg", arg, glad_score_fg_modes, &k)) return CLI_USAGE; s->fg = (glad_score_fg)k; return 0;
    case O_CROP: if (cli_parse_int("--crop", arg, 0, 32768, &lv)) return CLI_USAGE; s->crop = (int)lv; return 0;
    case O_SIZE: if (cli_parse_int("--size", arg, 0, 32768, &lv)) return CLI_USAGE; s->size = (int)lv; return 0;
    case O_RED: return parse_reducer(s, arg);
    case O_NORM: return parse_norm(s, arg);
    case O_KEEP: o->keep = 1; return 0;
    case O_RESCORE: o->rescore = 1; return 0;
    case O_THR: o->thr_file = arg; return 0;
    case O_BANK: o->bank_file = arg; return 0;
    case O_GLOBALW: return cli_parse_double("--global-weight", arg, 0, 1e6, &o->global_w);
    case O_BANKNORM: if (cli_parse_choice("--bank-norm", arg, glad_bank_norms, &k)) return CLI_USAGE; o->s.bank_norm = (glad_bank_norm)k; return 0;
    case O_BANKMODE: if (cli_parse_choice("--bank-mode", arg, glad_bank_modes, &k)) return CLI_USAGE; o->bank_mode = (glad_bank_mode)k; return 0;
    default: return cli_usage_error("unknown option");
    }
}

/* -1: go on; else the exit status. The preset applies first wherever it
 * stands (the last one given wins); the other options then in their order. */
static int parse_args(opts *o, const char **out, int *zstd, int argc, char **argv)
{
    static const struct option lo[] = {
        {"preset", required_argument, 0, 'p'}, {"feat-dist", required_argument, 0, O_FEAT},
        {"bidirectional", optional_argument, 0, O_BIDIR}, {"layers", required_argument, 0, O_LAYERS},
        {"pixel-space", required_argument, 0, O_PIX}, {"v", required_argument, 0, O_V}, {"scale", required_argument, 0, O_SCALE},
        {"sigma", required_argument, 0, O_SIGMA}, {"fg", required_argument, 0, O_FG}, {"crop", required_argument, 0, O_CROP},
        {"size", required_argument, 0, O_SIZE}, {"image-score", required_argument, 0, O_RED}, {"keep-parts", no_argument, 0, O_KEEP},
        {"threshold-file", required_argument, 0, O_THR}, {"bank", required_argument, 0, O_BANK},
        {"bank-mode", required_argument, 0, O_BANKMODE}, {"rescore", no_argument, 0, O_RESCORE},
        {"bank-norm", required_argument, 0, O_BANKNORM},
        {"map-norm", required_argument, 0, O_NORM}, {"global-weight", required_argument, 0, O_GLOBALW},
        {"output", required_argument, 0, 'o'}, {"zstd", no_argument, 0, O_ZSTD},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int preset = GLAD_SCORE_PRESET_GLAD, c, n = 0, st = -1;
    struct { int c; const char *arg; } *later = calloc((size_t)argc + 1, sizeof *later);
    if (!later) return cli_error("out of memory");
    while (st < 0 && (c = cli_getopt(argc, argv, "p:o:hV", lo)) != -1) {
        switch (c) {
        case 'p': if (cli_parse_choice("--preset", optarg, glad_score_preset_names, &preset)) st = CLI_USAGE; break;
        case 'o': *out = optarg; break;
        case O_ZSTD: *zstd = 3; break;
        case 'h': fputs(usage, stdout); st = CLI_OK; break;
        case 'V': st = cli_version(); break;
        case '?': st = cli_usage_error("unknown option"); break;
        default: later[n].c = c; later[n++].arg = optarg; break;
        }
    }
    o->s = glad_score_presets[preset];
    o->bank_mode = GLAD_BANK_UNION;
    for (int i = 0; st < 0 && i < n; i++) if (apply_option(o, later[i].c, later[i].arg)) st = CLI_USAGE;
    free(later);
    if (st < 0 && argc - optind > 1) st = cli_usage_error("at most one input FILE");
    if (st < 0 && !o->bank_file && o->bank_mode != GLAD_BANK_UNION) st = cli_usage_error("--bank-mode needs --bank FILE");
    if (st < 0 && !o->bank_file && o->s.bank_norm != GLAD_BANK_NORM_NONE) st = cli_usage_error("--bank-norm needs --bank FILE (made with glad-bank --radius F)");
    if (st < 0 && o->global_w > 0 && !o->bank_file && !o->rescore) st = cli_usage_error("--global-weight needs --bank FILE (fitted with glad-bank --global) or --rescore");
    if (st < 0 && o->rescore && (o->bank_file || o->keep)) st = cli_usage_error("--rescore reads the records' amap: %s does not apply", o->bank_file ? "--bank" : "--keep-parts");
    return st;
}

#define MAX_TAILS 3   /* glad_std_tails: clip, tanh, open */

/* A tail group: the layers of one --standardize-tail of glad-features (the
 * plain names L, L@N: n = 0; or L~T, L~T@N: T at t, n long) */
typedef struct { const char *t; size_t n; } tail_group;

static int layer_wanted(const opts *o, const char *l)
{
    if (!o->nlayers) return 1;
    for (int i = 0; i < o->nlayers; i++) if (glad_bank_layer_match(o->layers[i], l)) return 1;
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

/* 1 when layer name l is of tail group g (g->n 0: the plain names) */
static int of_tail(const tail_group *g, const char *l)
{
    const char *t;
    size_t n = glad_bank_layer_tail(l, &t);
    return n == g->n && !strncmp(t, g->t, n);
}

/* every feat.image.L (wanted, of tail group g) with its feat.recon.L into the map */
static int add_layers(glad_score_map *m, glad_record *r, const opts *o, const tail_group *g)
{
    const char *id = glad_record_id(r);
    for (int f = 0; f < r->n; f++) {
        const glad_field *fi = &r->f[f];
        if (fi->kind != GLAD_VAL_TENSOR || strncmp(fi->key, "feat.image.", 11) != 0 || !layer_wanted(o, fi->key + 11) || !of_tail(g, fi->key + 11)) continue;
        const char *L = fi->key + 11;
        char key[300];
        snprintf(key, sizeof key, "feat.recon.%s", L);
        const glad_tensor *t1 = &fi->t, *t2;
        if (glad_record_get_tensor(r, key, &t2)) return cli_rec_error(id, key, "missing (feat.image.%s has no partner)", L);
        if (t1->ndim != 3 || t2->ndim != 3 || memcmp(t1->shape, t2->shape, 3 * sizeof(int64_t))) return cli_rec_error(id, key, "shape differs from feat.image.%s or is not [C,h,w]", L);
        if (glad_tensor_has_nonfinite(t1) || glad_tensor_has_nonfinite(t2)) return cli_rec_error(id, glad_tensor_has_nonfinite(t1) ? fi->key : key, "contains NaN or infinity");
        size_t fn = glad_tensor_numel(t1);
        float *fa = malloc(fn * sizeof(float)), *fb = malloc(fn * sizeof(float));
        int st = CLI_OK;
        if (!fa || !fb || glad_tensor_to_f32(t1, fa) || glad_tensor_to_f32(t2, fb)) st = cli_rec_error(id, key, "is not numeric");
        else if (glad_score_map_add_layer(m, fa, fb, (int)t1->shape[0], (int)t1->shape[1], (int)t1->shape[2])) st = cli_rec_error(id, key, "%s", glad_error_detail());
        free(fa);
        free(fb);
        if (st) return st;
    }
    return CLI_OK;
}

/* The record's features made as the bank's were (tail: its cli_feat_std_tail) */
static int bank_alike(const glad_record *r, const opts *o, int tail)
{
    const char *id = glad_record_id(r);
    /* pooled features against an unpooled bank (or the reverse) would give
     * distances that look like scores: refused (glad-features --pool) */
    int pool, bank_pool = o->bank.pool;   /* 1 when the bank was not pooled (glad_bank_load) */
    if (cli_feat_pool(r, &pool)) return CLI_FAIL;
    if (pool != bank_pool) {
        if (pool == 1) return cli_rec_error(id, "feat_pool", "absent (features not pooled) but the bank's were pooled with %d (glad-features --pool: the same K for both)", bank_pool);
        if (bank_pool == 1) return cli_rec_error(id, "feat_pool", "is %d but the bank's features were not pooled (glad-features --pool: the same K for both)", pool);
        return cli_rec_error(id, "feat_pool", "is %d but the bank's features were pooled with %d (glad-features --pool: the same K for both)", pool, bank_pool);
    }
    /* likewise standardised images against a bank of others (glad-features --standardize) */
    double stdz;
    if (cli_feat_standardize(r, &stdz) || cli_feat_standardize_same(r, stdz, o->bank.stdz, "the bank's")) return CLI_FAIL;
    return cli_feat_std_tail_same(r, tail, o->bank.stdz_tail, "the bank's");
}

/* every bank layer (wanted, of tail group g): feat.image.L against the bank, with feat.recon.L
 * unless the bank replaces the reconstruction */
static int add_bank_layers(glad_score_map *m, glad_record *r, const opts *o, const tail_group *g)
{
    const char *id = glad_record_id(r);
    int used = 0, need_recon = o->bank_mode != GLAD_BANK_REPLACE;
    for (int i = 0; i < o->bank.nlayers; i++) {
        const char *L = o->bank.layer[i];
        if (!layer_wanted(o, L) || !of_tail(g, L)) continue;
        char ka[300], kb[300];
        snprintf(ka, sizeof ka, "feat.image.%s", L);
        snprintf(kb, sizeof kb, "feat.recon.%s", L);
        const glad_tensor *t1, *t2 = NULL;
        if (glad_record_get_tensor(r, ka, &t1)) return cli_rec_error(id, ka, "missing (the bank has layer %s: run glad-features with it)", L);
        if (t1->ndim != 3) return cli_rec_error(id, ka, "is not [C,h,w]");
        if (need_recon) {
            if (glad_record_get_tensor(r, kb, &t2)) return cli_rec_error(id, kb, "missing (--bank-mode %s compares the reconstruction too)", glad_bank_modes[o->bank_mode]);
            if (t2->ndim != 3 || memcmp(t1->shape, t2->shape, 3 * sizeof(int64_t))) return cli_rec_error(id, kb, "shape differs from %s or is not [C,h,w]", ka);
        }
        if (glad_tensor_has_nonfinite(t1) || (t2 && glad_tensor_has_nonfinite(t2))) return cli_rec_error(id, glad_tensor_has_nonfinite(t1) ? ka : kb, "contains NaN or infinity");
        size_t fn = glad_tensor_numel(t1);
        float *fa = malloc(fn * sizeof(float)), *fb = t2 ? malloc(fn * sizeof(float)) : NULL;
        int st = CLI_OK;
        if (!fa || (t2 && !fb) || glad_tensor_to_f32(t1, fa) || (t2 && glad_tensor_to_f32(t2, fb))) st = cli_rec_error(id, ka, "is not numeric");
        else if (glad_score_map_add_bank_layer(m, &o->bank, i, o->bank_mode, fa, fb, (int)t1->shape[0], (int)t1->shape[1], (int)t1->shape[2]))
            st = cli_rec_error(id, ka, "%s", glad_error_detail());
        free(fa);
        free(fb);
        if (st) return st;
        used++;
    }
    return used ? CLI_OK : cli_rec_error(id, "feat.image", "none of the bank's layers is among --layers");
}

/* score_global: the bank's whole-image Gaussians on the record's
 * feat.image.L of their layers (whatever --layers says: they are the bank's) */
static int global_score(glad_record *r, const opts *o, double *g)
{
    const char *id = glad_record_id(r);
    const glad_bank *b = &o->bank;
    float *f[GLAD_BANK_MAX_LAYERS] = {0};
    int C[GLAD_BANK_MAX_LAYERS], h[GLAD_BANK_MAX_LAYERS], w[GLAD_BANK_MAX_LAYERS], st = CLI_OK;
    char key[300];
    for (int i = 0; st == CLI_OK && i < b->nglobal; i++) {
        const glad_tensor *t;
        snprintf(key, sizeof key, "feat.image.%s", b->glayer[i]);
        if (glad_record_get_tensor(r, key, &t)) st = cli_rec_error(id, key, "missing (the bank's whole-image Gaussian is on layer %s: run glad-features with it)", b->glayer[i]);
        else if (t->ndim != 3 || t->shape[0] < 1 || t->shape[1] < 1 || t->shape[2] < 1) st = cli_rec_error(id, key, "is not [C,h,w]");
        else if (!(f[i] = malloc(glad_tensor_numel(t) * sizeof(float)))) st = cli_error("out of memory");
        else if (glad_tensor_to_f32(t, f[i])) st = cli_rec_error(id, key, "is not numeric");
        else C[i] = (int)t->shape[0], h[i] = (int)t->shape[1], w[i] = (int)t->shape[2];
    }
    if (st == CLI_OK && glad_bank_score_global(b, (const float *const *)f, C, h, w, g)) st = cli_rec_error(id, "feat.image", "%s", glad_error_detail());
    for (int i = 0; i < b->nglobal; i++) free(f[i]);
    return st;
}

/* The ground truth follows the map: nearest to the map size, the same crop. */
static int follow_mask(glad_record *r, const glad_score_map *m)
{
    const glad_tensor *mk;
    int mc, mh, mw;
    if (glad_record_get_tensor(r, "mask", &mk) || glad_tensor_chw(mk, &mc, &mh, &mw) || (mh == m->oh && mw == m->ow && !m->crop)) return 0;
    glad_tensor m2 = {0}, m3 = {0};
    int rc = mh != m->oh || mw != m->ow ? glad_image_resize(&m2, mk, m->oh, m->ow, 1) : glad_tensor_copy(&m2, mk);
    if (!rc && m->crop && !(rc = glad_image_center_crop(&m3, &m2, m->crop, m->crop))) glad_tensor_move(&m2, &m3);
    if (!rc) rc = glad_record_set_tensor(r, "mask", &m2);
    glad_tensor_free(&m2);
    return rc;
}

/* amap_pixel and amap_feat, before scaling and smoothing */
static int keep_parts(glad_record *r, const glad_score_map *m)
{
    int64_t shp[3] = {1, m->oh, m->ow};
    glad_tensor t = {0};
    int rc = glad_tensor_from_f32(&t, GLAD_DT_F32, 3, shp, m->pixel);
    if (!rc) rc = glad_record_set_tensor(r, "amap_pixel", &t);
    if (!rc && m->feat && !(rc = glad_tensor_from_f32(&t, GLAD_DT_F32, 3, shp, m->feat))) rc = glad_record_set_tensor(r, "amap_feat", &t);
    glad_tensor_free(&t);
    return rc;
}

/* --rescore: score = the reducer of the record's amap, as glad_score_map_finish
 * computes it (the amap is the map it reduced, after fg mask and crop); with
 * --map-norm the amap is normalised first and stored (a second normalisation
 * with the same Q changes nothing) */
static int rescore_record(glad_record *r, const opts *o)
{
    const char *id = glad_record_id(r);
    const glad_tensor *ta;
    int rc = glad_record_get_tensor(r, "amap", &ta);
    if (rc) return cli_rec_error(id, "amap", rc == GLAD_ENOTFOUND ? "missing (--rescore needs a scored stream: run glad-score first)" : "is not a tensor");
    size_t n = glad_tensor_numel(ta);
    if (ta->ndim != 3 || ta->shape[0] != 1 || n == 0) return cli_rec_error(id, "amap", "must be [1,H,W]");
    if (glad_tensor_has_nonfinite(ta)) return cli_rec_error(id, "amap", "contains NaN or infinity");
    float *a = malloc(n * sizeof(float));
    if (!a) return cli_error("out of memory");
    if (glad_tensor_to_f32(ta, a)) { free(a); return cli_rec_error(id, "amap", "is not numeric"); }
    if (o->s.norm != GLAD_MAP_NORM_NONE) {
        glad_tensor t = {0};
        int64_t shp[3];
        memcpy(shp, ta->shape, sizeof shp);
        if (glad_score_map_norm(a, n, &o->s) || glad_tensor_from_f32(&t, GLAD_DT_F32, 3, shp, a) || glad_record_set_tensor(r, "amap", &t)) {
            glad_tensor_free(&t);
            free(a);
            return cli_error("out of memory");
        }
        glad_tensor_free(&t);
    }
    double score = glad_score_reduce(a, n, o->s.reducer, (size_t)o->s.k), g;
    free(a);
    if (o->global_w > 0) {
        if ((rc = glad_record_get_f64(r, "score_global", &g)))
            return cli_rec_error(id, "score_global", rc == GLAD_ENOTFOUND ? "missing (--global-weight with --rescore: score with a bank fitted with glad-bank --global first)" : "is not a number");
        if (!isfinite(g)) return cli_rec_error(id, "score_global", "is not finite");
        score += o->global_w * g;
    }
    if (isnan(score) || glad_record_set_f64(r, "score", score)) return cli_error("out of memory");
    if (o->thr_file && glad_thresholds_apply(&o->thr, r)) return cli_error("%s", glad_error_detail());
    return CLI_OK;
}

/* The tail groups of the wanted layers (the bank's, else the record's
 * feat.image.L): the plain names first, then each L~T's tail T, which the
 * record's feat_standardize_tail (code: its cli_feat_std_tail) must list
 * (glad-features made them so) */
static int tail_groups(const glad_record *r, const opts *o, int code, tail_group *g, int *ng)
{
    const char *id = glad_record_id(r);
    int nl = o->bank_file ? o->bank.nlayers : r->n;
    *ng = 0;
    for (int i = 0; i < nl; i++) {
        const char *l = o->bank_file ? o->bank.layer[i] : r->f[i].key + 11;
        if (!o->bank_file && (r->f[i].kind != GLAD_VAL_TENSOR || strncmp(r->f[i].key, "feat.image.", 11))) continue;
        if (!layer_wanted(o, l)) continue;
        int k = 0;
        while (k < *ng && !of_tail(&g[k], l)) k++;
        if (k < *ng) continue;
        tail_group t;
        t.n = glad_bank_layer_tail(l, &t.t);
        if (cli_layer_tail_listed(r, l, code)) return CLI_FAIL;
        if (*ng == MAX_TAILS) return cli_rec_error(id, "feat.image", "layers of more than %d tails", MAX_TAILS);
        g[(*ng)++] = t;
        // the plain names' group first: its parts are --keep-parts' amap_pixel and amap_feat
        if (!t.n) { g[*ng - 1] = g[0]; g[0] = t; }
    }
    if (!*ng) g[(*ng)++] = (tail_group){"", 0};   // no feature layer: the pixel map (or add_*'s error)
    return CLI_OK;
}

/* The tails' maps am[0..ng) into their pixel-wise maximum *mx (each tail's
 * map scores an anomaly its standardisation shows: tanh keeps the order of
 * the values the clamp flattens at a tile's dark edge, the clamp the contrast
 * of broad faint areas that tanh squashes) and the image score of it */
static int max_tails(glad_tensor *mx, const glad_tensor *am, int ng, const glad_score_opts *s, double *score)
{
    GLAD_TRY(glad_tensor_copy(mx, &am[0]));
    size_t n = glad_tensor_numel(mx);
    float *a = mx->data;
    for (int k = 1; k < ng; k++) {
        if (am[k].dtype != GLAD_DT_F32 || glad_tensor_numel(&am[k]) != n || mx->dtype != GLAD_DT_F32) return glad_fail(GLAD_ESHAPE, "the tails' maps differ in shape");
        const float *b = am[k].data;
        for (size_t i = 0; i < n; i++) a[i] = b[i] > a[i] ? b[i] : a[i];
    }
    *score = glad_score_reduce(a, n, s->reducer, (size_t)s->k);
    return 0;
}

/* --keep-parts with several tails: each tail's map as amap.<tail> (am[k] moved
 * into the record; code: the record's cli_feat_std_tail, for the first tail's name) */
static int keep_tails(glad_record *r, int code, const tail_group *g, glad_tensor *am, int ng)
{
    for (int k = 0; k < ng; k++) {
        char key[64];
        if (g[k].n) snprintf(key, sizeof key, "amap.%.*s", (int)g[k].n, g[k].t);
        else snprintf(key, sizeof key, "amap.%s", glad_std_tails[GLAD_STD_TAILS_FIRST(code)]);
        if (glad_record_set_tensor(r, key, &am[k])) return cli_error("out of memory");
    }
    return CLI_OK;
}

static int score_record(glad_record *r, const opts *o)
{
    if (o->rescore) return rescore_record(r, o);
    const char *id = glad_record_id(r), *cls;
    const glad_tensor *ti, *tr;
    int rc, C, H, W, C2, H2, W2, status = CLI_FAIL, ng = 0, code;
    if ((rc = glad_record_get_tensor(r, "image", &ti))) return cli_rec_error(id, "image", rc == GLAD_ENOTFOUND ? "missing" : "is not a tensor");
    int bank_only = o->bank_file && o->bank_mode == GLAD_BANK_REPLACE;
    if ((rc = glad_record_get_tensor(r, "recon", &tr))) {
        if (rc != GLAD_ENOTFOUND || !bank_only || o->s.v != 0) return cli_rec_error(id, "recon", rc == GLAD_ENOTFOUND ? "missing (run glad-denoise first)" : "is not a tensor");
        tr = NULL;
    }
    float *img = NULL, *rec = NULL;
    tail_group g[MAX_TAILS];
    glad_score_map m[MAX_TAILS] = {0};
    glad_tensor am[MAX_TAILS] = {0}, mx = {0};
    double score = 0;
    if (image_f32(ti, &img, &C, &H, &W)) { cli_rec_error(id, "image", "must be [C,H,W] or [H,W] numbers"); goto out; }
    if (tr && image_f32(tr, &rec, &C2, &H2, &W2)) { cli_rec_error(id, "recon", "must be [C,H,W] or [H,W] numbers"); goto out; }
    if (tr && (C != C2 || H != H2 || W != W2)) { cli_rec_error(id, "recon", "shape [%d,%d,%d] differs from image [%d,%d,%d]", C2, H2, W2, C, H, W); goto out; }
    if (glad_tensor_has_nonfinite(ti) || (tr && glad_tensor_has_nonfinite(tr))) { cli_rec_error(id, glad_tensor_has_nonfinite(ti) ? "image" : "recon", "contains NaN or infinity"); goto out; }
    if (cli_feat_std_tail(r, &code) || tail_groups(r, o, code, g, &ng) || (o->bank_file && bank_alike(r, o, code))) goto out;
    // one map per tail group (glad-features --standardize-tail T,U), as a stream of that tail alone would give
    for (int k = 0; k < ng; k++) {
        double sk;
        if (glad_score_map_begin(&m[k], &o->s, img, rec, C, H, W, glad_record_get_str(r, "class", &cls) == 0 ? cls : NULL)) { cli_rec_error(id, "image", "%s", glad_error_detail()); goto out; }
        if (o->bank_file ? add_bank_layers(&m[k], r, o, &g[k]) : o->s.feat != GLAD_FEAT_DIST_NONE && add_layers(&m[k], r, o, &g[k])) goto out;
        if ((rc = glad_score_map_finish(&m[k], &am[k], &sk))) { cli_rec_error(id, "amap", "%s", glad_error_detail()); goto out; }
        if (k == 0) score = sk;
    }
    if (ng > 1 && max_tails(&mx, am, ng, &o->s, &score)) { cli_rec_error(id, "amap", "%s", glad_error_detail()); goto out; }
    if ((rc = follow_mask(r, &m[0]))) { cli_rec_error(id, "mask", "could not follow the map: %s", glad_strerror(rc)); goto out; }
    if (o->bank.nglobal) {
        double gs;
        if (global_score(r, o, &gs)) goto out;
        if (glad_record_set_f64(r, "score_global", gs)) { cli_error("out of memory"); goto out; }
        score += o->global_w * gs;
    }
    if (o->keep && ng > 1 && keep_tails(r, code, g, am, ng)) goto out;
    if ((o->keep && keep_parts(r, &m[0])) || glad_record_set_tensor(r, "amap", ng > 1 ? &mx : &am[0]) || glad_record_set_f64(r, "score", score)) { cli_error("out of memory"); goto out; }
    if (o->thr_file && glad_thresholds_apply(&o->thr, r)) { cli_error("%s", glad_error_detail()); goto out; }
    status = CLI_OK;
out:
    free(img); free(rec);
    for (int k = 0; k < MAX_TAILS; k++) {
        glad_tensor_free(&am[k]);
        glad_score_map_free(&m[k]);
    }
    glad_tensor_free(&mx);
    return status;
}

int main(int argc, char **argv)
{
    cli_init("glad-score");
    opts o = {0};
    const char *out = "-";
    int zstd = 0, status = parse_args(&o, &out, &zstd, argc, argv), rc = 0;
    if (status >= 0) { free(o.layers_buf); free(o.layers); return status; }
    glad_error_clear();
    if (o.thr_file && glad_thresholds_load(&o.thr, o.thr_file) < 0) {
        free(o.layers_buf); free(o.layers);
        return cli_error("%s", glad_error_detail());
    }
    if (o.bank_file && glad_bank_load(&o.bank, o.bank_file) < 0) {
        free(o.layers_buf); free(o.layers); glad_thresholds_free(&o.thr);
        return cli_error("%s", glad_error_detail());
    }
    if (o.s.bank_norm != GLAD_BANK_NORM_NONE && o.bank_file && !o.bank.radius_frac) {
        free(o.layers_buf); free(o.layers); glad_thresholds_free(&o.thr); glad_bank_free(&o.bank);
        return cli_usage_error("--bank-norm %s: the bank %s has no radii (glad-bank --radius F)", glad_bank_norms[o.s.bank_norm], o.bank_file);
    }
    if (o.global_w > 0 && o.bank_file && !o.bank.nglobal) {
        free(o.layers_buf); free(o.layers); glad_thresholds_free(&o.thr); glad_bank_free(&o.bank);
        return cli_usage_error("--global-weight: the bank %s has no whole-image Gaussian (glad-bank --global LAYERS)", o.bank_file);
    }
    const char *in = optind < argc ? argv[optind] : "-";
    glad_reader *rd;
    glad_writer *wr;
    status = cli_open_io(in, out, zstd, argc, argv, &rd, &wr);
    glad_record r;
    glad_record_init(&r);
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
    free(o.layers_buf);
    free(o.layers);
    glad_thresholds_free(&o.thr);
    glad_bank_free(&o.bank);
    return status;
}
