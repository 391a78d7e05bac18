/* glad-synth - synthetic anomalies for GLAD's anomaly-oriented training
 * (adds 'anomalous' and 'synth_mask'), synthetic test sets (--as-test), and
 * the built-in demo dataset (--make-dataset). Thin: options ->
 * glad_synth_record (synth/records.h) on blocks of records in parallel ->
 * the writer, in order; glad_demo_make (synth/demo.h) for the demo set. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "synth/demo.h"
#include "synth/records.h"

static const char usage[] =
    "Usage: glad-synth [OPTION]... [FILE]\n"
    "       glad-synth --make-dataset DIR [--classes LIST] [--size N] [--train N] [--test-good N] [--test-defect N]\n"
    "Add a synthetic anomaly to every record's 'image' (GLAD/DRAEM: Perlin mask, texture or\n"
    "shuffled-tile source, 3 augmentations, blending): 'anomalous' (same dtype) and\n"
    "'synth_mask' (u8 [1,H,W]). Records without an anomaly get an empty mask.\n"
    "\n"
    "      --p P            probability of an anomaly per record (default 0.5)\n"
    "      --seed S         results depend on the seed and the record id only\n"
    "      --fg M           auto (GLAD's per-class table, datasets/foreground.tsv) | dark | bright | none\n"
    "      --textures DIR   texture images (e.g. DTD images/); default: built-in procedural textures\n"
    "      --family F       draem (default: GLAD/DRAEM's, above) | cutpaste | scar | cutpaste-mix: CutPaste's\n"
    "                       patch of the image itself, thin rotated scar, or either (1/2 each),\n"
    "                       colour-jittered, pasted elsewhere (a family the ATP training does not see)\n"
    "                       | crack | hole | stain | defect-mix: a drawn thin dark crack, small dark\n"
    "                       hole, or faint brighter/darker stain, or one of the three (1/3 each)\n"
    "                       | uneven: a stain 16 times the area (a broad faint change of the tile)\n"
    "                       | edge: a dark ragged chip out of the object's edge (broken or frayed)\n"
    "      --as-test        replace 'image', set 'mask', label 1 and defect 'synthetic' (a labelled\n"
    "                       synthetic test set; records left normal keep label 0)\n"
    "      --defect NAME    with --as-test: the defect name of the anomalous records instead of\n"
    "                       'synthetic' (letters, digits, '-', '_', '.'; e.g. the family, so that\n"
    "                       glad-auroc --by defect reports each family of a mixed set)\n"
    "      --preview PNG    a grid of original | anomalous | mask for the first records\n"
    "      --preview-n N    rows in the preview (default 8)\n"
    "      --make-dataset DIR  write the built-in demo dataset (MVTec layout) and exit\n"
    "      --classes LIST   demo classes (default fabric,pill)\n"
    "      --size N, --train N, --test-good N, --test-defect N   demo sizes (64, 60, 20, 4 per defect type)\n"
    "  -o, --output FILE, --zstd, -h, --help, -V, --version\n";

typedef struct {
    glad_synth_record_opts so;
    glad_demo_opts demo;
    const char *out, *in, *tex_dir, *preview, *make, *classes;
    long preview_n;
    int zstd;
} options;

enum { GO_ON = -1 };

/* argv -> options: GO_ON, or the exit status */
static int parse_args(int argc, char **argv, options *o)
{
    enum { O_P = 256, O_SEED, O_FG, O_TEX, O_ASTEST, O_PREV, O_PREVN, O_MAKE, O_CLASSES, O_SIZE, O_TRAIN, O_TGOOD, O_TDEF, O_ZSTD, O_FAMILY, O_DEFECT };
    static const struct option lo[] = {
        {"p", required_argument, 0, O_P}, {"seed", required_argument, 0, O_SEED}, {"fg", required_argument, 0, O_FG},
        {"textures", required_argument, 0, O_TEX}, {"as-test", no_argument, 0, O_ASTEST}, {"preview", required_argument, 0, O_PREV},
        {"preview-n", required_argument, 0, O_PREVN}, {"make-dataset", required_argument, 0, O_MAKE}, {"classes", required_argument, 0, O_CLASSES},
        {"size", required_argument, 0, O_SIZE}, {"train", required_argument, 0, O_TRAIN}, {"test-good", required_argument, 0, O_TGOOD},
        {"test-defect", required_argument, 0, O_TDEF}, {"output", required_argument, 0, 'o'}, {"zstd", no_argument, 0, O_ZSTD}, {"family", required_argument, 0, O_FAMILY}, {"defect", required_argument, 0, O_DEFECT},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    glad_synth_record_opts_default(&o->so);
    o->demo = (glad_demo_opts){64, 60, 20, 4, 0};
    o->out = "-";
    o->classes = "fabric,pill";
    o->preview_n = 8;
    long seed = 0, v;
    int c, k;
    while ((c = cli_getopt(argc, argv, "o:hV", lo)) != -1) {
        switch (c) {
        case O_P: if (cli_parse_double("--p", optarg, 0, 1, &o->so.anomaly.p)) return CLI_USAGE; break;
        case O_SEED: if (cli_parse_int("--seed", optarg, 0, 1L << 62, &seed)) return CLI_USAGE; break;
        case O_FG: if (cli_parse_choice("--fg", optarg, glad_synth_fg_names, &k)) return CLI_USAGE; o->so.fg = (glad_synth_fg)k; break;
        case O_TEX: o->tex_dir = optarg; break;
        case O_FAMILY:
            if (cli_parse_choice("--family", optarg, glad_synth_family_names, &k)) return CLI_USAGE;
            o->so.anomaly.family = (glad_synth_family)k;
            break;
        case O_ASTEST: o->so.as_test = 1; break;
        case O_DEFECT:
            if (!*optarg || strlen(optarg) > 64 || strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != strlen(optarg))
                return cli_usage_error("--defect: '%s' is not a name (1-64 letters, digits, '-', '_', '.')", optarg);
            o->so.defect = optarg;
            break;
        case O_PREV: o->preview = optarg; break;
        case O_PREVN: if (cli_parse_int("--preview-n", optarg, 1, 1000, &o->preview_n)) return CLI_USAGE; break;
        case O_MAKE: o->make = optarg; break;
        case O_CLASSES: o->classes = optarg; break;
        case O_SIZE: if (cli_parse_int("--size", optarg, 16, 4096, &v)) return CLI_USAGE; o->demo.size = (int)v; break;
        case O_TRAIN: if (cli_parse_int("--train", optarg, 0, 100000, &v)) return CLI_USAGE; o->demo.train = (int)v; break;
        case O_TGOOD: if (cli_parse_int("--test-good", optarg, 0, 100000, &v)) return CLI_USAGE; o->demo.test_good = (int)v; break;
        case O_TDEF: if (cli_parse_int("--test-defect", optarg, 0, 100000, &v)) return CLI_USAGE; o->demo.test_defect = (int)v; break;
        case 'o': o->out = optarg; break;
        case O_ZSTD: o->zstd = 3; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    o->so.seed = o->demo.seed = (uint64_t)seed;
    o->so.keep_source = o->so.as_test && o->preview;
    if (o->so.defect && !o->so.as_test) return cli_usage_error("--defect names the anomalies of --as-test; give --as-test too");
    if (!o->make && argc - optind > 1) return cli_usage_error("at most one input FILE");
    o->in = optind < argc ? argv[optind] : "-";
    return GO_ON;
}

/* --make-dataset: every class of --classes (checked first), then each written */
static int make_demo(const options *o)
{
    char buf[256];
    int idx[64], n = 0, k;
    snprintf(buf, sizeof buf, "%s", o->classes);
    for (char *s = strtok(buf, ","); s; s = strtok(NULL, ",")) {
        if (cli_parse_choice("--classes", s, glad_demo_classes, &k)) return CLI_USAGE;
        if (n == (int)(sizeof idx / sizeof *idx)) return cli_usage_error("--classes: more than %d names", n);
        idx[n++] = k;
    }
    for (int i = 0; i < n; i++) {
        glad_error_clear();
        int rc = glad_demo_make(o->make, glad_demo_classes[idx[i]], &o->demo);
        if (rc) return cli_error("%s", glad_error_detail()[0] ? glad_error_detail() : glad_strerror(rc));
    }
    return CLI_OK;
}

/* Blocks of records synthesised in parallel (their randomness depends on their id only), written in order. */
static int synth_stream(const options *o, const glad_textures *tex, glad_reader *rd, glad_writer *wr)
{
    enum { BLOCK = 32 };
    typedef struct { glad_record r; int rc; char msg[1100]; } slot;
    slot *sl = calloc(BLOCK, sizeof *sl);
    glad_record *pv = o->preview ? calloc((size_t)o->preview_n, sizeof *pv) : NULL;
    int npv = 0, status = CLI_OK, rc = 1;
    if (!sl || (o->preview && !pv)) status = cli_error("out of memory");
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    while (status == CLI_OK && rc == 1) {
        int nb = 0;
        while (nb < BLOCK && (rc = glad_reader_next(rd, &sl[nb].r)) == 1) nb++;
        #pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < nb; i++) {
            sl[i].rc = glad_synth_record(&sl[i].r, &o->so, tex);
            if (sl[i].rc < 0) snprintf(sl[i].msg, sizeof sl[i].msg, "%s", glad_error_detail());   /* this thread's detail */
        }
        for (int i = 0; i < nb && status == CLI_OK; i++) {
            if (sl[i].rc < 0) { status = cli_rec_error(glad_record_id(&sl[i].r), NULL, "%s", sl[i].msg); break; }
            if (pv && npv < o->preview_n && glad_record_copy(&pv[npv++], &sl[i].r)) status = cli_error("out of memory");
            if (o->so.keep_source) glad_record_remove(&sl[i].r, "source_image");
            if (status == CLI_OK && glad_writer_write(wr, &sl[i].r)) status = cli_error("%s", glad_error_detail());
        }
        cli_progress_step(&pg, nb);
    }
    cli_progress_end(&pg);
    if (status == CLI_OK && rc < 0) status = cli_reader_error(rd, o->in);
    if (status == CLI_OK && npv && glad_synth_preview(o->preview, pv, npv, o->so.as_test))
        status = cli_error("%s: cannot write the preview: %s", o->preview, glad_error_detail());
    for (int i = 0; sl && i < BLOCK; i++) glad_record_free(&sl[i].r);
    for (int i = 0; i < npv; i++) glad_record_free(&pv[i]);
    free(sl);
    free(pv);
    return status;
}

int main(int argc, char **argv)
{
    cli_init("glad-synth");
    options o;
    int status = parse_args(argc, argv, &o);
    if (status != GO_ON) return status;
    if (o.make) return make_demo(&o);
    glad_textures *tex = NULL;
    if (o.tex_dir && glad_textures_open(&tex, o.tex_dir)) return cli_error("--textures %s", glad_error_detail());
    glad_reader *rd;
    glad_writer *wr;
    if (cli_open_io(o.in, o.out, o.zstd, argc, argv, &rd, &wr)) { glad_textures_close(tex); return CLI_FAIL; }
    status = synth_stream(&o, tex, rd, wr);
    status = cli_finish(status, rd, wr);
    glad_textures_close(tex);
    return status;
}
