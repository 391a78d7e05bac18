/* glad-tile - full-resolution tiling of a stream: split every image into
 * N x N tiles (one record per tile, with its offsets), or merge the tiles
 * back into one record per image (maps blended over the overlaps, one image
 * score per image). Thin: options -> glad_tile_split_* / glad_tile_merge_*
 * (imgproc/tile.h) -> the writer. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "imgproc/tile.h"

static const char usage[] =
    "Usage: glad-tile --tile N [--overlap P] [OPTION]... [FILE]\n"
    "       glad-tile --merge [--image-score R] [OPTION]... [FILE]\n"
    "Split every record's image (FILE or standard input) into N x N tiles at its native\n"
    "size, or merge such tiles back into one record per image.\n"
    "\n"
    "  -t, --tile N           tile side in pixels; tiles start every N-P pixels, the last\n"
    "                         row and column aligned to the border (none padded unless the\n"
    "                         image is smaller than N: then reflect-padded)\n"
    "  -p, --overlap P        overlap of neighbouring tiles (0..N-1, default 0)\n"
    "  -m, --merge            reassemble consecutive tiles of each image: image and mask\n"
    "                         copied, recon, amap and other tile-sized maps blended (linear\n"
    "                         cross-fade over the overlaps), other tensors (feat.*) dropped\n"
    "      --image-score R    merge: image score of the merged amap: max (default) |\n"
    "                         topk-mean:K | softmax-topk:K\n"
    "  -o, --output FILE      output (default stdout);  --zstd  compress\n"
    "  -h, --help, -V, --version\n"
    "\n"
    "A tile record keeps its image's fields, is named PARENT@Y,X and adds tile_of, tile_y,\n"
    "tile_x, tile_index, tile_count, tile_size, tile_overlap, tile_full_h, tile_full_w.\n"
    "Exit status: 0 ok, 1 a record that cannot be split or merged (missing, duplicated or\n"
    "out-of-order tiles, mismatched sizes), 2 usage error.\n";

typedef struct {
    long tile, overlap;
    int merge, zstd, tile_set, overlap_set, reducer_set;
    glad_score_reducer reducer;
    long k;
    const char *out, *in;
} options;

enum { GO_ON = -1 };

static int parse_reducer(options *o, const char *arg)
{
    int r, rc = cli_parse_image_score(arg, &r, &o->k);
    o->reducer = (glad_score_reducer)r;
    return rc;
}

/* argv -> options: GO_ON, or the exit status */
static int parse_args(int argc, char **argv, options *o)
{
    enum { O_RED = 256, O_ZSTD };
    static const struct option lo[] = {
        {"tile", required_argument, 0, 't'}, {"overlap", required_argument, 0, 'p'}, {"merge", no_argument, 0, 'm'},
        {"image-score", required_argument, 0, O_RED}, {"output", required_argument, 0, 'o'}, {"zstd", no_argument, 0, O_ZSTD},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->out = "-";
    o->reducer = GLAD_REDUCE_MAX;
    int c;
    while ((c = cli_getopt(argc, argv, "t:p:mo:hV", lo)) != -1) {
        switch (c) {
        case 't': if (cli_parse_int("--tile", optarg, 1, GLAD_TILE_MAX_SIDE, &o->tile)) return CLI_USAGE; o->tile_set = 1; break;
        case 'p': if (cli_parse_int("--overlap", optarg, 0, GLAD_TILE_MAX_SIDE - 1, &o->overlap)) return CLI_USAGE; o->overlap_set = 1; break;
        case 'm': o->merge = 1; break;
        case O_RED: if (parse_reducer(o, optarg)) return CLI_USAGE; o->reducer_set = 1; break;
        case 'o': o->out = optarg; break;
        case O_ZSTD: o->zstd = 3; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (o->merge && (o->tile_set || o->overlap_set)) return cli_usage_error("--merge takes the tile geometry from the records (no --tile or --overlap)");
    if (!o->merge && o->reducer_set) return cli_usage_error("--image-score applies to --merge only");
    if (!o->merge && !o->tile_set) return cli_usage_error("--tile N (split) or --merge is required");
    if (!o->merge && o->overlap >= o->tile) return cli_usage_error("--overlap %ld must be less than --tile %ld", o->overlap, o->tile);
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    o->in = optind < argc ? argv[optind] : "-";
    return GO_ON;
}

/* one image record -> its tiles, written */
static int split_record(glad_record *r, glad_writer *wr, const options *o)
{
    glad_tile_splitter s;
    glad_record t;
    glad_record_init(&t);
    if (glad_tile_split_begin(&s, r, (int)o->tile, (int)o->overlap)) return cli_rec_error(glad_record_id(r), NULL, "%s", glad_error_detail());
    int rc, status = CLI_OK;
    while (status == CLI_OK && (rc = glad_tile_split_next(&s, &t)) != 0) {
        if (rc < 0) status = cli_rec_error(s.parent_id, NULL, "%s", glad_error_detail());
        else if (glad_writer_write(wr, &t)) status = cli_error("%s", glad_error_detail());
    }
    glad_record_free(&t);
    glad_tile_split_free(&s);
    return status;
}

/* one tile into the merger; a completed image written */
static int merge_record(glad_record *r, glad_record *img, glad_tile_merger *m, glad_writer *wr)
{
    char *id = strdup(glad_record_id(r));
    if (!id) return cli_error("out of memory");
    int rc = glad_tile_merge_add(m, r, img), status = CLI_OK;
    if (rc < 0) status = cli_rec_error(id, NULL, "%s", glad_error_detail());
    else if (rc == 1 && glad_writer_write(wr, img)) status = cli_error("%s", glad_error_detail());
    free(id);
    return status;
}

int main(int argc, char **argv)
{
    cli_init("glad-tile");
    options o;
    int status = parse_args(argc, argv, &o), rc = 0;
    if (status != GO_ON) return status;
    glad_reader *rd;
    glad_writer *wr;
    status = cli_open_io(o.in, o.out, o.zstd, argc, argv, &rd, &wr);
    glad_record r, img;
    glad_record_init(&r);
    glad_record_init(&img);
    glad_tile_merger m;
    glad_tile_merge_init(&m, o.reducer, (size_t)o.k);
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    while (status == CLI_OK && (rc = glad_reader_next(rd, &r)) == 1) {
        status = o.merge ? merge_record(&r, &img, &m, wr) : split_record(&r, wr, &o);
        cli_progress_step(&pg, 1);
    }
    cli_progress_end(&pg);
    if (status == CLI_OK && rc < 0) status = cli_reader_error(rd, o.in);
    if (status == CLI_OK && o.merge && glad_tile_merge_end(&m)) status = cli_error("%s", glad_error_detail());
    glad_tile_merge_free(&m);
    glad_record_free(&r);
    glad_record_free(&img);
    return cli_finish(status, rd, wr);
}
