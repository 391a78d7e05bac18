/* glad-bank - a memory bank of normal patch features (lib/score/bank.h) from
 * the feat.<input>.L tensors of a stream of normal training records, for
 * glad-score --bank. This file is options and records. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "score/bank.h"

static const char usage[] =
    "Usage: glad-bank [OPTION]... -o BANK [FILE]\n"
    "Collect the feature vectors feat.<input>.L of every position of every record\n"
    "(FILE or standard input: normal training images after glad-features) into a\n"
    "memory bank for glad-score --bank (safetensors, one [M,C] matrix per layer of\n"
    "L2-normalised vectors).\n"
    "\n"
    "  -o, --output BANK    the bank file (written whole, then renamed into place)\n"
    "      --layers LIST    layers to keep (default: every feat.<input>.L of the first record, at most 48;\n"
    "                       L also keeps the first record's L@N, layer L at another input size:\n"
    "                       glad-features --also-size, and L~T, L~T@N, its features under a\n"
    "                       further standardisation tail T: glad-features --standardize-tail clip,T)\n"
    "      --input NAME     record tensor the features belong to (default image)\n"
    "      --coreset F      keep the fraction F in (0,1] of each layer's vectors by greedy\n"
    "                       k-center selection (PatchCore's coreset; default 1: all)\n"
    "      --subsample F    first keep the fraction F in (0,1] of each layer's vectors drawn\n"
    "                       at random (cheap; the coreset costs kept x all vectors)\n"
    "      --radius F       also store each vector's radius: its cosine distance to the nearest\n"
    "                       vector of another image among a seeded fraction F in (0,1] of the\n"
    "                       layer's vectors (after --subsample/--coreset), for glad-score\n"
    "                       --bank-norm (costs F x the square of the vectors)\n"
    "      --seed S         seed of the subsample, the coreset's start and projection and\n"
    "                       the radii's reference vectors (default 0)\n"
    "      --max-mb N       refuse a layer's bank above N MB before the coreset (default 4096)\n"
    "      --global LIST    also fit a whole-image Gaussian on each listed layer: every\n"
    "                       image's mean feature vector, a Ledoit-Wolf covariance, for\n"
    "                       glad-score --global-weight (the layers need not be kept)\n"
    "  -h, --help, -V, --version\n"
    "\n"
    "Records must be normal (label 0 or no label): a bank of anomalies would hide them.\n";

typedef struct {
    const char *out, *input;
    char *layers_buf, *global_buf;
    const char *layers[GLAD_BANK_MAX_LAYERS], *global[GLAD_BANK_MAX_LAYERS];
    int nlayers, nglobal;
    double coreset, subsample, radius;
    long seed, max_mb;
} opts;

enum { O_LAYERS = 256, O_INPUT, O_CORESET, O_SEED, O_MAXMB, O_SUB, O_GLOBAL, O_RADIUS };

/* "a,b" into names (in place in *buf) for --layers or --global */
static int parse_layers(const char *opt, const char *s, char **buf, const char **names, int *n)
{
    free(*buf);
    if (!(*buf = strdup(s))) return cli_error("out of memory");
    *n = 0;
    for (char *p = *buf, *e; ; p = e + 1) {
        e = strchr(p, ',');
        if (e) *e = 0;
        if (!*p) return cli_usage_error("%s '%s': empty layer name", opt, s);
        if (*n == GLAD_BANK_MAX_LAYERS) return cli_usage_error("%s '%s': more than %d layers", opt, s, GLAD_BANK_MAX_LAYERS);
        for (int j = 0; j < *n; j++)
            if (!strcmp(names[j], p)) return cli_usage_error("%s '%s': layer %s named twice", opt, s, p);
        names[(*n)++] = p;
        if (!e) return 0;
    }
}

/* -1: go on; else the exit status */
static int parse_args(opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"output", required_argument, 0, 'o'}, {"layers", required_argument, 0, O_LAYERS}, {"input", required_argument, 0, O_INPUT},
        {"coreset", required_argument, 0, O_CORESET}, {"seed", required_argument, 0, O_SEED}, {"max-mb", required_argument, 0, O_MAXMB},
        {"subsample", required_argument, 0, O_SUB}, {"global", required_argument, 0, O_GLOBAL},
        {"radius", required_argument, 0, O_RADIUS},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int c;
    o->input = "image";
    o->coreset = o->subsample = 1;
    o->max_mb = 4096;
    while ((c = cli_getopt(argc, argv, "o:hV", lo)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case O_LAYERS: if (parse_layers("--layers", optarg, &o->layers_buf, o->layers, &o->nlayers)) return CLI_USAGE; break;
        case O_GLOBAL: if (parse_layers("--global", optarg, &o->global_buf, o->global, &o->nglobal)) return CLI_USAGE; break;
        case O_INPUT: o->input = optarg; break;
        case O_CORESET: if (cli_parse_double("--coreset", optarg, 1e-6, 1, &o->coreset)) return CLI_USAGE; break;
        case O_RADIUS: if (cli_parse_double("--radius", optarg, 1e-6, 1, &o->radius)) return CLI_USAGE; break;
        case O_SUB: if (cli_parse_double("--subsample", optarg, 1e-6, 1, &o->subsample)) return CLI_USAGE; break;
        case O_SEED: if (cli_parse_int("--seed", optarg, 0, 0x7fffffffL, &o->seed)) return CLI_USAGE; break;
        case O_MAXMB: if (cli_parse_int("--max-mb", optarg, 1, 1L << 20, &o->max_mb)) return CLI_USAGE; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (!o->out) return cli_usage_error("-o BANK is required");
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    return -1;
}

/* the bank's layers from the first record's feat.<input>.L names: every one
 * without --layers; with it, each name given and its L@N (glad-features
 * --also-size), a name the record lacks kept so that add_record says so */
static int pick_layers(opts *o, const glad_record *r, const char **names, int *n)
{
    size_t pl = strlen(o->input) + 6;
    *n = 0;
    for (int w = 0; w < (o->nlayers ? o->nlayers : 1); w++) {
        int found = 0;
        for (int f = 0; f < r->n; f++) {
            const char *k = r->f[f].key;
            if (r->f[f].kind != GLAD_VAL_TENSOR || strncmp(k, "feat.", 5) || strncmp(k + 5, o->input, pl - 6) || k[pl - 1] != '.' || !k[pl]) continue;
            if (o->nlayers && !glad_bank_layer_match(o->layers[w], k + pl)) continue;
            int dup = 0;
            for (int i = 0; i < *n; i++) dup |= !strcmp(names[i], k + pl);
            /* an L@N that two names take is kept once; a name given twice is
             * kept twice, for glad_bank_init to refuse */
            if (dup && (!o->nlayers || strcmp(k + pl, o->layers[w]))) { found = 1; continue; }
            /* more layers than a bank holds: refused, not silently cut */
            if (*n == GLAD_BANK_MAX_LAYERS)
                return cli_rec_error(glad_record_id(r), "feat", "more than %d feat.%s.L layers: choose some with --layers", GLAD_BANK_MAX_LAYERS, o->input);
            names[(*n)++] = k + pl;   /* valid while the first record is: copied by glad_bank_init */
            found = 1;
        }
        if (o->nlayers && !found) {
            if (*n == GLAD_BANK_MAX_LAYERS) return cli_usage_error("--layers: more than %d layers", GLAD_BANK_MAX_LAYERS);
            names[(*n)++] = o->layers[w];
        }
    }
    return *n ? CLI_OK : cli_rec_error(glad_record_id(r), "feat", "no feat.%s.L tensor (run glad-features first)", o->input);
}

/* stdz: the first record's feat_standardize, -1 before it */
static int add_record(glad_bank *b, const glad_record *r, const opts *o, double *stdz, int *tail)
{
    const char *id = glad_record_id(r);
    int64_t label = 0;
    if (glad_record_get_int(r, "label", &label) == 0 && label != 0)
        return cli_rec_error(id, "label", "is %lld: a bank holds normal images only", (long long)label);
    /* one bank, one pooling: the first record's feat_pool (glad-features --pool) is the bank's */
    int pool;
    if (cli_feat_pool(r, &pool)) return CLI_FAIL;
    if (!b->pool) b->pool = pool;
    else if (pool != b->pool) return cli_rec_error(id, "feat_pool", "is %d, the first record's %d: the bank's features must be pooled alike (glad-features --pool)", pool, b->pool);
    /* and one standardisation (glad-features --standardize) */
    double s;
    if (cli_feat_standardize(r, &s)) return CLI_FAIL;
    if (*stdz < 0) *stdz = s;
    else if (cli_feat_standardize_same(r, s, *stdz, "the first record's")) return CLI_FAIL;
    /* and its tail (glad-features --standardize-tail) */
    int t;
    if (cli_feat_std_tail(r, &t)) return CLI_FAIL;
    if (*tail < 0) *tail = t;
    else if (cli_feat_std_tail_same(r, t, *tail, "the first record's")) return CLI_FAIL;
    /* the bank's layers (i < nlayers), then the Gaussians' (i - nlayers) */
    for (int i = 0; i < b->nlayers + b->nglobal; i++) {
        int g = i >= b->nlayers;
        const char *L = g ? b->glayer[i - b->nlayers] : b->layer[i];
        char key[300];
        const glad_tensor *t;
        snprintf(key, sizeof key, "feat.%s.%s", o->input, L);
        if (!g && cli_layer_tail_listed(r, L, *tail)) return CLI_FAIL;
        if (glad_record_get_tensor(r, key, &t)) return g ? cli_rec_error(id, key, "missing (--global %s: run glad-features with that layer)", L) : cli_rec_error(id, key, "missing");
        if (t->ndim != 3 || t->shape[0] < 1 || t->shape[1] < 1 || t->shape[2] < 1) return cli_rec_error(id, key, "is not [C,h,w]");
        int C = (int)t->shape[0], h = (int)t->shape[1], w = (int)t->shape[2], st = CLI_OK;
        float *f = malloc(glad_tensor_numel(t) * sizeof(float));
        if (!f || glad_tensor_to_f32(t, f)) st = cli_rec_error(id, key, "is not numeric");
        else if (g ? glad_bank_add_global(b, i - b->nlayers, f, C, h, w) : glad_bank_add(b, i, f, C, h, w, (size_t)o->max_mb << 20))
            st = cli_rec_error(id, key, "%s", glad_error_detail());
        free(f);
        if (st) return st;
    }
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli_init("glad-bank");
    opts o = {0};
    int status = parse_args(&o, argc, argv), rc = 0;
    if (status >= 0) { free(o.layers_buf); free(o.global_buf); return status; }
    const char *in = optind < argc ? argv[optind] : "-";
    glad_reader *rd = NULL;
    glad_bank b = {0};
    double stdz = -1;
    int tail = -1;
    const char *names[GLAD_BANK_MAX_LAYERS];
    int nnames = 0;
    glad_record r;
    glad_record_init(&r);
    status = cli_open_reader(in, &rd);
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    while (status == CLI_OK && (rc = glad_reader_next(rd, &r)) == 1) {
        if (!b.nlayers && ((status = pick_layers(&o, &r, names, &nnames)) ||
                           (glad_bank_init(&b, nnames, names) && (status = cli_usage_error("--layers: %s", glad_error_detail()))) ||
                           (o.nglobal && glad_bank_init_global(&b, o.nglobal, o.global) && (status = cli_usage_error("--global: %s", glad_error_detail())))))
            break;
        status = add_record(&b, &r, &o, &stdz, &tail);
        cli_progress_step(&pg, 1);
    }
    cli_progress_end(&pg);
    if (status == CLI_OK && rc < 0) status = cli_reader_error(rd, in);
    if (status == CLI_OK && !b.nlayers) status = cli_error("%s: no record: a bank needs at least one normal image", in);
    for (int i = 0; status == CLI_OK && i < b.nlayers; i++) {
        int64_t n = b.n[i], ks = (int64_t)(o.subsample * (double)n + 0.5), kc = (int64_t)(o.coreset * (double)n + 0.5);
        if ((o.subsample < 1 && glad_bank_subsample(&b, i, ks < 1 ? 1 : ks, (uint64_t)o.seed)) ||
            (o.coreset < 1 && glad_bank_coreset(&b, i, kc < 1 ? 1 : kc, (uint64_t)o.seed)) ||
            (o.radius > 0 && glad_bank_radius(&b, i, o.radius, (uint64_t)o.seed)))
            status = cli_error("%s", glad_error_detail());
    }
    /* the Gaussians: two images at least, a covariance that is not degenerate */
    if (status == CLI_OK && b.nglobal && glad_bank_fit_global(&b)) status = cli_error("%s: --global: %s", in, glad_error_detail());
    b.stdz = stdz > 0 ? stdz : 0;
    b.stdz_tail = tail > 0 ? tail : 0;
    if (status == CLI_OK && glad_bank_save(&b, o.out)) status = cli_error("%s", glad_error_detail());
    glad_record_free(&r);
    glad_reader_close(rd);
    glad_bank_free(&b);
    free(o.layers_buf);
    free(o.global_buf);
    return status;
}
