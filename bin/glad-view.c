/* glad-view - pictures of what the model did: one PNG panel per record
 * (input | reconstruction | anomaly map over the input | ground truth) and an
 * index.html gallery sorted by score, the worst false positives and false
 * negatives first. The panels and the index are drawn by lib/io/gallery.h;
 * this file reads the stream twice (the global heat-map range, then the
 * panels) and writes the files, each to PATH.tmp.PID renamed when complete.
 * --per-image copies glad-auroc's per-image CSV beside the index and links it. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "io/gallery.h"
#include "io/image.h"
#include "io/outfile.h"

static const char usage[] =
    "Usage: glad-view --out DIR [OPTION]... [FILE]\n"
    "Write a PNG panel per record of a scored stream: input | reconstruction |\n"
    "anomaly map as a heat map over the input | ground truth (mask in red), with\n"
    "the id, label and score; and DIR/index.html, a gallery sorted by score with\n"
    "the worst false positives (normal records scored highest) and false\n"
    "negatives (anomalous records scored lowest) first.\n"
    "\n"
    "  -d, --out DIR        output folder (created)\n"
    "      --norm global|record  heat-map range: over the whole stream (default, panels\n"
    "                       comparable) or per record\n"
    "      --cell N         size of each picture in the panel (default 128)\n"
    "      --limit N        at most N panels (default all)\n"
    "      --worst N        records in each worst-of list (default 8)\n"
    "      --per-image F    copy F (glad-auroc --per-image) to DIR/per-image.csv\n"
    "                       and link it from the index\n"
    "Captions show the record's 'decision' (glad-score --threshold-file) when\n"
    "present.\n"
    "  -h, --help, -V, --version\n";

typedef struct { const char *dir, *per_image; int norm; long cell, limit, worst; } options;

/* Standard input is read twice: copy it to path. */
static int copy_stdin(const char *path)
{
    FILE *o = fopen(path, "wb");
    if (!o) return cli_error("%s: cannot write", path);
    char buf[65536];
    size_t k;
    int bad = 0;
    while ((k = fread(buf, 1, sizeof buf, stdin)) > 0) bad |= fwrite(buf, 1, k, o) != k;
    bad |= ferror(stdin);
    return (fclose(o) | bad) ? cli_error("%s: cannot copy standard input", path) : 0;
}

static int open_input(glad_reader **rd, const char *in)
{
    if (glad_reader_open(rd, in) >= 0) return 0;
    int status = cli_reader_error(*rd, in);
    glad_reader_close(*rd);
    return status;
}

/* Pass 1: the range of every amap of the stream. */
static int amap_range(const char *in, double *lo, double *hi)
{
    glad_reader *rd;
    glad_record r;
    int rc = 0, status = open_input(&rd, in);
    if (status) return status;
    glad_record_init(&r);
    while (!status && (rc = glad_reader_next(rd, &r)) == 1)
        if (glad_gallery_range(&r, lo, hi) < 0) status = cli_error("out of memory");
    if (!status && rc < 0) status = cli_reader_error(rd, in);
    glad_record_free(&r);
    glad_reader_close(rd);
    return status;
}

static int write_panel(const char *path, const glad_record *r, const options *o, double lo, double hi)
{
    glad_tensor t;
    GLAD_TRY(glad_gallery_panel(r, (int)o->cell, lo, hi, (glad_gallery_norm)o->norm, &t));
    int rc = glad_image_write_png(path, &t);   /* complete or not there */
    glad_tensor_free(&t);
    return rc;
}

/* Pass 2: DIR/NNNNNN.png per record (at most --limit), each listed in g. */
static int write_panels(const char *in, const options *o, double lo, double hi, glad_gallery *g)
{
    glad_reader *rd;
    glad_record r;
    int rc = 0, status = open_input(&rd, in);
    if (status) return status;
    glad_record_init(&r);
    while (!status && (o->limit < 0 || g->n < o->limit) && (rc = glad_reader_next(rd, &r)) == 1) {
        const char *id = glad_record_id(&r);
        const glad_tensor *ti;
        if (glad_record_get_tensor(&r, "image", &ti)) { status = cli_rec_error(id, "image", "missing"); break; }
        char name[32];
        snprintf(name, sizeof name, "%06d.png", g->n);
        char *path = glad_strfmt("%s/%s", o->dir, name);
        if (!path || glad_gallery_add(g, &r, name) < 0) status = cli_error("out of memory");
        else if ((rc = write_panel(path, &r, o, lo, hi)) < 0) status = cli_rec_error(id, NULL, "cannot write %s: %s", path, glad_strerror(rc));
        free(path);
    }
    if (!status && rc < 0) status = cli_reader_error(rd, in);
    glad_record_free(&r);
    glad_reader_close(rd);
    return status;
}

/* DIR/per-image.csv: a copy of --per-image, linked from the index */
static int copy_per_image(const options *o, glad_gallery *g)
{
    char *path = glad_strfmt("%s/per-image.csv", o->dir);
    FILE *in = fopen(o->per_image, "rb");
    glad_outfile *of = NULL;
    int status = !path ? cli_error("out of memory") : !in ? cli_error("%s: cannot read: %s", o->per_image, strerror(errno)) : 0;
    glad_error_clear();
    if (!status && glad_outfile_open(&of, path, 0) < 0) status = cli_error("%s", glad_error_detail());
    char buf[65536];
    size_t k;
    while (!status && (k = fread(buf, 1, sizeof buf, in)) > 0) glad_outfile_write(of, buf, k);
    if (!status && ferror(in)) status = cli_error("%s: read error", o->per_image);
    if (of && status) glad_outfile_abort(of);
    else if (of && glad_outfile_commit(of) < 0) status = cli_error("%s", glad_error_detail());
    if (in) fclose(in);
    free(path);
    if (!status) g->per_image = "per-image.csv";
    return status;
}

/* DIR/index.html, complete or not there */
static int write_index(const options *o, glad_gallery *g)
{
    char *path = glad_strfmt("%s/index.html", o->dir);
    glad_outfile *of = NULL;
    glad_error_clear();
    int rc = !path ? GLAD_ENOMEM : glad_outfile_open(&of, path, 0);
    if (rc == 0) {
        rc = glad_gallery_write_html(g, (int)o->worst, glad_outfile_file(of));
        if (rc < 0) glad_outfile_abort(of);
        else rc = glad_outfile_commit(of);
    }
    int status = rc < 0 ? (*glad_error_detail() ? cli_error("%s", glad_error_detail()) : cli_error("%s: %s", path, glad_strerror(rc))) : 0;
    free(path);
    return status;
}

int main(int argc, char **argv)
{
    cli_init("glad-view");
    enum { O_NORM = 256, O_CELL, O_LIMIT, O_WORST, O_PERIMG };
    static const struct option lo[] = {
        {"out", required_argument, 0, 'd'}, {"norm", required_argument, 0, O_NORM}, {"cell", required_argument, 0, O_CELL},
        {"limit", required_argument, 0, O_LIMIT}, {"worst", required_argument, 0, O_WORST},
        {"per-image", required_argument, 0, O_PERIMG},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    options o = {NULL, NULL, GLAD_GALLERY_NORM_GLOBAL, 128, -1, 8};
    int c;
    while ((c = cli_getopt(argc, argv, "d:hV", lo)) != -1) {
        switch (c) {
        case 'd': o.dir = optarg; break;
        case O_NORM: if (cli_parse_choice("--norm", optarg, glad_gallery_norm_names, &o.norm)) return CLI_USAGE; break;
        case O_CELL: if (cli_parse_int("--cell", optarg, 16, 2048, &o.cell)) return CLI_USAGE; break;
        case O_LIMIT: if (cli_parse_int("--limit", optarg, 0, 100000000, &o.limit)) return CLI_USAGE; break;
        case O_WORST: if (cli_parse_int("--worst", optarg, 0, 100000, &o.worst)) return CLI_USAGE; break;
        case O_PERIMG: o.per_image = optarg; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (!o.dir) return cli_usage_error("--out DIR is required");
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    const char *in = optind < argc ? argv[optind] : "-";
    if (mkdir(o.dir, 0755) && errno != EEXIST) return cli_error("%s: cannot create: %s", o.dir, strerror(errno));
    char *copy = NULL;   /* standard input, kept for the two passes */
    int status = 0;
    if (!strcmp(in, "-")) {
        if (!(copy = glad_strfmt("%s/.stdin.msgpack", o.dir))) return cli_error("out of memory");
        status = copy_stdin(copy);
        in = copy;
    }
    double lo_ = INFINITY, hi_ = -INFINITY;
    glad_gallery g;
    glad_gallery_init(&g);
    if (!status) status = amap_range(in, &lo_, &hi_);
    if (!status) status = write_panels(in, &o, lo_, hi_, &g);
    if (!status && o.per_image) status = copy_per_image(&o, &g);
    if (!status) status = write_index(&o, &g);
    glad_gallery_free(&g);
    if (copy) unlink(copy);
    free(copy);
    return status;
}
