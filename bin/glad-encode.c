/* glad-encode - turn a dataset on disk (MVTec AD, MPDD, VisA, BTAD, MTD or
 * generic folders/paths) into a glad stream of records with image and mask.
 * Thin: options -> glad_dataset_list (io/dataset.h) -> glad_encode_item
 * (io/encode.h) on blocks of items in parallel -> the writer, in order. */
#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "io/dataset.h"
#include "io/encode.h"
#include "io/image.h"

static const char usage[] =
    "Usage: glad-encode [OPTION]... ROOT\n"
    "       glad-encode --format generic [--normal DIR] [--anomalous DIR [--masks DIR]] [PATH...|-]\n"
    "Read a dataset in its published layout and write a glad stream (one record\n"
    "per image: id, class, split, label, defect, source, image, mask).\n"
    "\n"
    "  -f, --format F      mvtec (default; also MPDD), mpdd, visa, btad, mtd, generic\n"
    "  -c, --class C       only this class (default: all classes found)\n"
    "  -s, --split S       train, test or all (default all)\n"
    "      --split-file F  MTD: train/test list (default: the list shipped in datasets/mtd/)\n"
    "      --size H[xW]    resize images (bilinear, PyTorch align_corners=False) and masks (nearest)\n"
    "      --scale F       resize images and masks by the factor F, the aspect ratio kept\n"
    "                      (round(H*F) x round(W*F); datasets of many sizes: one scale)\n"
    "      --crop N        centre crop to NxN after resizing\n"
    "      --channels 1|3  convert to grey or RGB (default: as stored)\n"
    "      --float         store images as f32 in [-1,1] (default u8)\n"
    "      --max-pixels N  refuse a file declaring more than N pixels, before decoding\n"
    "                      (default 67108864 = 8192x8192; at most 32768x32768)\n"
    "      --shard K/N     only items with index % N == K (outputs of all K concatenate)\n"
    "      --limit N       at most N records (after --seed shuffling, before sharding)\n"
    "      --seed S        shuffle the item order with seed S (default 0: sorted order)\n"
    "      --normal DIR, --anomalous DIR, --masks DIR   generic folders (with --masks\n"
    "                      each anomalous image needs NAME.png or NAME_mask.png there)\n"
    "  -o, --output FILE   write to FILE (default stdout)\n"
    "      --zstd          compress the output with zstd\n"
    "  -h, --help, -V, --version\n"
    "\n"
    "Masks are resized with nearest neighbour and binarised (>= half of their maximum\n"
    "-> 1); normal images get an all-zero mask. Exit status: 0 ok, 1 a missing,\n"
    "corrupt or oversized file or a missing mask, 2 usage error.\n";

typedef struct {
    glad_dataset_spec ds;
    glad_encode_opts enc;
    const char *out;
    int shard_k, shard_n, zstd, nargs;
    long limit, seed;
    char **args;           /* ROOT, or the generic PATHs */
    char split_file[PATH_MAX + 64];
} options;

enum { GO_ON = -1 };

/* Default MTD split list: beside the program (build tree or source tree), or the installed data dir. */
static const char *default_split_file(char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *s = strrchr(exe, '/');
        if (s) *s = 0;
        const char *rel[] = {"/../datasets/mtd/split.txt", "/../share/glad/mtd/split.txt"};
        for (int i = 0; i < 2; i++) {
            snprintf(buf, len, "%s%s", exe, rel[i]);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
    return NULL;
}

/* --format is case-insensitive (MVTec, MPDD) */
static int parse_format(const char *s, glad_dataset_format *f)
{
    char low[32];
    size_t i = 0;
    for (; s[i] && i + 1 < sizeof low; i++) low[i] = (char)tolower((unsigned char)s[i]);
    low[i] = 0;
    int k;
    if (cli_parse_choice("--format", s[i] ? s : low, glad_dataset_formats, &k)) return CLI_USAGE;
    *f = (glad_dataset_format)k;
    return 0;
}

/* argv -> options: GO_ON, or the exit status */
static int parse_args(int argc, char **argv, options *o)
{
    enum { O_SPLITFILE = 256, O_SIZE, O_SCALE, O_CROP, O_CHANNELS, O_FLOAT, O_MAXPX, O_SHARD, O_LIMIT, O_SEED, O_NORMAL, O_ANOM, O_MASKS, O_ZSTD };
    static const struct option opts[] = {
        {"format", required_argument, 0, 'f'}, {"class", required_argument, 0, 'c'}, {"split", required_argument, 0, 's'},
        {"split-file", required_argument, 0, O_SPLITFILE}, {"size", required_argument, 0, O_SIZE}, {"scale", required_argument, 0, O_SCALE},
        {"crop", required_argument, 0, O_CROP}, {"channels", required_argument, 0, O_CHANNELS},
        {"float", no_argument, 0, O_FLOAT}, {"max-pixels", required_argument, 0, O_MAXPX},
        {"shard", required_argument, 0, O_SHARD}, {"limit", required_argument, 0, O_LIMIT},
        {"seed", required_argument, 0, O_SEED}, {"normal", required_argument, 0, O_NORMAL},
        {"anomalous", required_argument, 0, O_ANOM}, {"masks", required_argument, 0, O_MASKS},
        {"output", required_argument, 0, 'o'}, {"zstd", no_argument, 0, O_ZSTD},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->ds.format = GLAD_DATASET_MVTEC;
    o->ds.split = "all";
    o->out = "-";
    o->shard_n = 1;
    o->limit = -1;
    int c, k;
    long v;
    while ((c = cli_getopt(argc, argv, "f:c:s:o:hV", opts)) != -1) {
        switch (c) {
        case 'f': if (parse_format(optarg, &o->ds.format)) return CLI_USAGE; break;
        case 'c': o->ds.cls = optarg; break;
        case 's': if (cli_parse_choice("--split", optarg, glad_dataset_splits, &k)) return CLI_USAGE; o->ds.split = glad_dataset_splits[k]; break;
        case O_SPLITFILE: o->ds.split_file = optarg; break;
        case O_SIZE: if (cli_parse_size(optarg, &o->enc.h, &o->enc.w)) return CLI_USAGE; break;
        case O_SCALE: if (cli_parse_double("--scale", optarg, 1e-3, 64, &o->enc.scale)) return CLI_USAGE; break;
        case O_CROP: if (cli_parse_int("--crop", optarg, 1, 32768, &v)) return CLI_USAGE; o->enc.crop = (int)v; break;
        case O_CHANNELS: if (cli_parse_int("--channels", optarg, 1, 3, &v) || v == 2) return cli_usage_error("--channels takes 1 or 3"); o->enc.channels = (int)v; break;
        case O_FLOAT: o->enc.as_float = 1; break;
        case O_MAXPX: if (cli_parse_int("--max-pixels", optarg, 1, (long)GLAD_IMAGE_MAX_SIDE * GLAD_IMAGE_MAX_SIDE, &v)) return CLI_USAGE; o->enc.max_pixels = (uint64_t)v; break;
        case O_SHARD: if (cli_parse_shard(optarg, &o->shard_k, &o->shard_n)) return CLI_USAGE; break;
        case O_LIMIT: if (cli_parse_int("--limit", optarg, 0, LONG_MAX, &o->limit)) return CLI_USAGE; break;
        case O_SEED: if (cli_parse_int("--seed", optarg, 0, LONG_MAX, &o->seed)) return CLI_USAGE; break;
        case O_NORMAL: o->ds.normal_dir = optarg; break;
        case O_ANOM: o->ds.anomalous_dir = optarg; break;
        case O_MASKS: o->ds.masks_dir = optarg; break;
        case 'o': o->out = optarg; break;
        case O_ZSTD: o->zstd = 3; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (o->enc.h && o->enc.scale > 0) return cli_usage_error("--size and --scale: give one");
    o->args = argv + optind;
    o->nargs = argc - optind;
    o->enc.mask_nonzero = o->ds.format == GLAD_DATASET_VISA;   /* region ids, as VisA's own code reads them */
    if (o->ds.format == GLAD_DATASET_GENERIC) return GO_ON;
    if (o->nargs != 1) return cli_usage_error("one dataset ROOT expected");
    o->ds.root = o->args[0];
    if (o->ds.format == GLAD_DATASET_MTD && !o->ds.split_file &&
        !(o->ds.split_file = default_split_file(o->split_file, sizeof o->split_file)))
        return cli_error("MTD needs its split list: --split-file FILE (the project ships datasets/mtd/split.txt)");
    return GO_ON;
}

/* The items: the layout's walk, then (generic) the PATH arguments, '-' reading one path a line. */
static int list_items(const options *o, glad_items *it)
{
    int generic = o->ds.format == GLAD_DATASET_GENERIC, rc = 0;
    const char *cls = o->ds.cls ? o->ds.cls : "generic";
    glad_error_clear();
    if (!generic || o->ds.normal_dir || o->ds.anomalous_dir || o->ds.masks_dir) rc = glad_dataset_list(it, &o->ds);
    for (int i = 0; generic && rc == 0 && i < o->nargs; i++) {
        if (strcmp(o->args[i], "-") != 0) { rc = glad_dataset_add_path(it, o->args[i], cls, o->ds.split, 0); continue; }
        char line[PATH_MAX];
        while (rc == 0 && fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\r\n")] = 0;
            if (*line) rc = glad_dataset_add_path(it, line, cls, o->ds.split, 0);
        }
    }
    if (rc) return cli_error("%s", glad_error_detail()[0] ? glad_error_detail() : glad_strerror(rc));
    if (generic && it->n == 0) return cli_usage_error("generic: give --normal/--anomalous folders or image paths");
    return CLI_OK;
}

/* The writer with the header (this invocation appended to an empty history). */
static int open_output(const options *o, int argc, char **argv, glad_writer **wr)
{
    if (strcmp(o->out, "-") == 0 && isatty(1)) return cli_usage_error("refusing to write a binary stream to a terminal; use -o FILE or a pipe");
    glad_record hdr;
    if (glad_header_init(&hdr) || glad_header_append(&hdr, cli_prog, GLAD_VERSION, argc, argv)) { glad_record_free(&hdr); return cli_error("out of memory"); }
    int rc = glad_writer_open(wr, o->out, o->zstd);
    if (rc) { glad_record_free(&hdr); return cli_error("%s", glad_error_detail()); }
    rc = glad_writer_write(*wr, &hdr);
    glad_record_free(&hdr);
    if (rc) { cli_error("%s", glad_error_detail()); return cli_finish(CLI_FAIL, NULL, *wr); }
    return CLI_OK;
}

/* My items (index % N == K among the first n): a block decoded in parallel, written in order. */
/* Every image allocates and frees buffers of a few MB whose sizes vary from
 * file to file (MTD alone has 704 sizes). glibc serves those with fresh
 * mmaps or trims them back to the system until its adaptive threshold
 * happens to settle, so the page faults per image depended on the order of
 * the sizes (25k vs 100k faults for the same 2016 images, 20% of the 1-thread
 * time). Fixed thresholds keep them in the heap and reused. */
static void keep_heap(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

static int encode_stream(const options *o, const glad_items *it, int n, glad_writer *wr)
{
    int *mine = malloc(sizeof(int) * (size_t)(n ? n : 1)), m = 0;
    if (!mine) return cli_error("out of memory");
    for (int i = 0; i < n; i++) if (i % o->shard_n == o->shard_k) mine[m++] = i;
    enum { BLOCK = 32 };
    glad_record recs[BLOCK];
    static char msgs[BLOCK][1100];
    int rcs[BLOCK], status = CLI_OK;
    cli_progress pg;
    keep_heap();
    cli_progress_start(&pg, "images", m);
    for (int b0 = 0; b0 < m && status == CLI_OK; b0 += BLOCK) {
        int nb = m - b0 < BLOCK ? m - b0 : BLOCK;
        // records are independent: decode a block in parallel, keep its order
        #pragma omp parallel for schedule(dynamic, 1)
        for (int j = 0; j < nb; j++) {
            rcs[j] = glad_encode_item(&it->v[mine[b0 + j]], &o->enc, &recs[j]);
            if (rcs[j]) snprintf(msgs[j], sizeof msgs[j], "%s", glad_error_detail());   /* this thread's detail */
        }
        for (int j = 0; j < nb; j++) {
            if (status == CLI_OK && rcs[j]) status = cli_error("%s", msgs[j][0] ? msgs[j] : glad_strerror(rcs[j]));
            if (status == CLI_OK && glad_writer_write(wr, &recs[j])) status = cli_error("%s", glad_error_detail());
            if (!rcs[j]) glad_record_free(&recs[j]);
        }
        cli_progress_step(&pg, nb);
    }
    cli_progress_end(&pg);
    free(mine);
    return status;
}

int main(int argc, char **argv)
{
    cli_init("glad-encode");
    options o;
    int status = parse_args(argc, argv, &o);
    if (status != GO_ON) return status;
    glad_items it = {0};
    status = list_items(&o, &it);
    if (status == CLI_OK && o.seed) glad_items_shuffle(&it, (uint64_t)o.seed);
    int n = o.limit >= 0 && o.limit < it.n ? (int)o.limit : it.n;
    glad_writer *wr = NULL;
    if (status == CLI_OK && (status = open_output(&o, argc, argv, &wr)) == CLI_OK) {
        status = encode_stream(&o, &it, n, wr);
        status = cli_finish(status, NULL, wr);
    }
    glad_items_free(&it);
    return status;
}
