/* glad-encode - turn a dataset on disk (MVTec AD, MPDD, VisA, BTAD, MTD or
 * generic folders/paths) into a glad stream of records with image and mask. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "cli.h"
#include "io/dataset.h"
#include "io/image.h"
#include "imgproc/resize.h"

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
    "      --crop N        centre crop to NxN after resizing\n"
    "      --channels 1|3  convert to grey or RGB (default: as stored)\n"
    "      --float         store images as f32 in [-1,1] (default u8)\n"
    "      --shard K/N     only items with index %% N == K (outputs of all K concatenate)\n"
    "      --limit N       at most N records (after --seed shuffling, before sharding)\n"
    "      --seed S        shuffle the item order with seed S (default 0: sorted order)\n"
    "      --normal DIR, --anomalous DIR, --masks DIR   generic folders\n"
    "  -o, --output FILE   write to FILE (default stdout)\n"
    "      --zstd          compress the output with zstd\n"
    "  -h, --help, -V, --version\n"
    "\n"
    "Masks are resized with nearest neighbour and binarised (>= half of their maximum\n"
    "-> 1); normal images get an all-zero mask. Exit status: 0 ok, 1 a missing or\n"
    "corrupt file, 2 usage error.\n";

typedef struct {
    int h, w, crop, channels, as_float;
} prep_opts;

/* Decode one item into a record; on error fills msg. */
static int encode_item(const glad_item *x, const prep_opts *o, glad_record *r, char *msg, size_t msglen)
{
    glad_tensor img = {0}, tmp = {0}, mask = {0};
    int rc;
    glad_record_init(r);
    if ((rc = glad_image_read(x->path, &img))) { snprintf(msg, msglen, "%s: %s", x->path, glad_strerror(rc)); goto fail; }
    /* 16-bit and float images become f32 in [-1,1] (u8 would lose range) */
    if (img.dtype == GLAD_DT_U16 || img.dtype == GLAD_DT_F32 || (o->as_float && img.dtype == GLAD_DT_U8)) {
        if ((rc = glad_tensor_image_as_f32(&tmp, &img))) goto fail;
        glad_tensor_move(&img, &tmp);
    }
    if (o->channels && img.shape[0] != o->channels) {
        if ((rc = glad_image_channels(&tmp, &img, o->channels))) { snprintf(msg, msglen, "%s: channels: %s", x->path, glad_strerror(rc)); goto fail; }
        glad_tensor_move(&img, &tmp);
    }
    int H = (int)img.shape[1], W = (int)img.shape[2];
    if (o->h && (H != o->h || W != o->w)) {
        if ((rc = glad_image_resize(&tmp, &img, o->h, o->w, 0))) goto fail;
        glad_tensor_move(&img, &tmp);
    }
    if (o->crop) {
        if ((rc = glad_image_center_crop(&tmp, &img, o->crop, o->crop))) { snprintf(msg, msglen, "%s: crop %d larger than the image", x->path, o->crop); goto fail; }
        glad_tensor_move(&img, &tmp);
    }
    int oh = (int)img.shape[1], ow = (int)img.shape[2];
    /* mask: nearest to the pre-crop size, crop, binarise at half the max */
    if (x->mask) {
        if ((rc = glad_image_read(x->mask, &mask))) { snprintf(msg, msglen, "%s: %s", x->mask, glad_strerror(rc)); goto fail; }
        if (mask.shape[0] != 1) { if ((rc = glad_image_channels(&tmp, &mask, 1))) goto fail; glad_tensor_move(&mask, &tmp); }
        int mh = o->h ? o->h : H, mw = o->h ? o->w : W;
        if (mask.shape[1] != mh || mask.shape[2] != mw) {
            if (mask.dtype != GLAD_DT_U8) { if ((rc = glad_tensor_convert(&tmp, &mask, GLAD_DT_F32))) goto fail; glad_tensor_move(&mask, &tmp); }
            if ((rc = glad_image_resize(&tmp, &mask, mh, mw, 1))) goto fail;
            glad_tensor_move(&mask, &tmp);
        }
        if (o->crop) { if ((rc = glad_image_center_crop(&tmp, &mask, o->crop, o->crop))) goto fail; glad_tensor_move(&mask, &tmp); }
        size_t n = glad_tensor_numel(&mask);
        double *v = malloc(n * sizeof(double)), mx = 0;
        if (!v) { rc = GLAD_ENOMEM; goto fail; }
        glad_tensor_to_f64(&mask, v);
        for (size_t i = 0; i < n; i++) if (v[i] > mx) mx = v[i];
        if ((rc = glad_tensor_alloc4(&tmp, GLAD_DT_U8, 1, oh, ow, -1))) { free(v); goto fail; }
        for (size_t i = 0; i < n; i++) ((uint8_t *)tmp.data)[i] = mx > 0 && v[i] >= mx / 2;
        free(v);
        glad_tensor_move(&mask, &tmp);
    } else if (!x->label) {
        if ((rc = glad_tensor_alloc4(&mask, GLAD_DT_U8, 1, oh, ow, -1))) goto fail;
    }
    if ((rc = glad_record_set_str(r, "id", x->id)) || (rc = glad_record_set_str(r, "class", x->cls)) ||
        (rc = glad_record_set_str(r, "split", x->split)) || (rc = glad_record_set_int(r, "label", x->label)) ||
        (rc = glad_record_set_str(r, "defect", x->defect)) || (rc = glad_record_set_str(r, "source", x->path)) ||
        (rc = glad_record_set_tensor(r, "image", &img)))
        goto fail;
    if (mask.data && (rc = glad_record_set_tensor(r, "mask", &mask))) goto fail;
    return 0;
fail:
    if (!msg[0]) snprintf(msg, msglen, "%s: %s", x->path, glad_strerror(rc));
    glad_tensor_free(&img); glad_tensor_free(&tmp); glad_tensor_free(&mask);
    glad_record_free(r);
    return rc;
}

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

static void shuffle(glad_items *it, unsigned long long seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = it->n - 1; i > 0; i--) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        int j = (int)(s % (uint64_t)(i + 1));
        glad_item t = it->v[i]; it->v[i] = it->v[j]; it->v[j] = t;
    }
}

int main(int argc, char **argv)
{
    cli_init("glad-encode");
    enum { O_SPLITFILE = 256, O_SIZE, O_CROP, O_CHANNELS, O_FLOAT, O_SHARD, O_LIMIT, O_SEED, O_NORMAL, O_ANOM, O_MASKS, O_ZSTD };
    static const struct option opts[] = {
        {"format", required_argument, 0, 'f'}, {"class", required_argument, 0, 'c'}, {"split", required_argument, 0, 's'},
        {"split-file", required_argument, 0, O_SPLITFILE}, {"size", required_argument, 0, O_SIZE},
        {"crop", required_argument, 0, O_CROP}, {"channels", required_argument, 0, O_CHANNELS},
        {"float", no_argument, 0, O_FLOAT}, {"shard", required_argument, 0, O_SHARD}, {"limit", required_argument, 0, O_LIMIT},
        {"seed", required_argument, 0, O_SEED}, {"normal", required_argument, 0, O_NORMAL},
        {"anomalous", required_argument, 0, O_ANOM}, {"masks", required_argument, 0, O_MASKS},
        {"output", required_argument, 0, 'o'}, {"zstd", no_argument, 0, O_ZSTD},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    const char *format = "mvtec", *cls = NULL, *split = "all", *split_file = NULL, *out = "-";
    const char *normal = NULL, *anom = NULL, *masks = NULL;
    prep_opts po = {0};
    int shard_k = 0, shard_n = 1, zstd = 0, c;
    long limit = -1, seed = 0, v;
    while ((c = cli_getopt(argc, argv, "f:c:s:o:hV", opts)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'c': cls = optarg; break;
        case 's': split = optarg; break;
        case O_SPLITFILE: split_file = optarg; break;
        case O_SIZE: if (cli_parse_size(optarg, &po.h, &po.w)) return CLI_USAGE; break;
        case O_CROP: if (cli_parse_int("--crop", optarg, 1, 32768, &v)) return CLI_USAGE; po.crop = (int)v; break;
        case O_CHANNELS: if (cli_parse_int("--channels", optarg, 1, 3, &v) || v == 2) return cli_usage_error("--channels takes 1 or 3"); po.channels = (int)v; break;
        case O_FLOAT: po.as_float = 1; break;
        case O_SHARD: if (cli_parse_shard(optarg, &shard_k, &shard_n)) return CLI_USAGE; break;
        case O_LIMIT: if (cli_parse_int("--limit", optarg, 0, LONG_MAX, &limit)) return CLI_USAGE; break;
        case O_SEED: if (cli_parse_int("--seed", optarg, 0, LONG_MAX, &seed)) return CLI_USAGE; break;
        case O_NORMAL: normal = optarg; break;
        case O_ANOM: anom = optarg; break;
        case O_MASKS: masks = optarg; break;
        case 'o': out = optarg; break;
        case O_ZSTD: zstd = 3; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (strcmp(split, "train") && strcmp(split, "test") && strcmp(split, "all"))
        return cli_usage_error("--split takes train, test or all");
    glad_items it = {0};
    int rc = 0;
    int generic = strcmp(format, "generic") == 0;
    if (!generic && argc - optind != 1) return cli_usage_error("one dataset ROOT expected");
    const char *root = generic ? NULL : argv[optind];
    if (!strcasecmp(format, "mvtec") || !strcasecmp(format, "mpdd")) rc = glad_dataset_mvtec(&it, root, cls, split);
    else if (!strcasecmp(format, "visa")) rc = glad_dataset_visa(&it, root, cls, split);
    else if (!strcasecmp(format, "btad")) rc = glad_dataset_btad(&it, root, cls, split);
    else if (!strcasecmp(format, "mtd")) {
        char buf[PATH_MAX + 64];
        if (!split_file) split_file = default_split_file(buf, sizeof buf);
        if (!split_file)
            return cli_error("MTD needs its split list: --split-file FILE (the project ships datasets/mtd/split.txt)");
        rc = glad_dataset_mtd(&it, root, split_file, cls, split);
    } else if (generic) {
        const char *k = cls ? cls : "generic";
        if (normal || anom) rc = glad_dataset_generic(&it, normal, anom, masks, k, split);
        for (int i = optind; rc == 0 && i < argc; i++) {
            if (strcmp(argv[i], "-") == 0) {
                char line[PATH_MAX];
                while (rc == 0 && fgets(line, sizeof line, stdin)) {
                    line[strcspn(line, "\r\n")] = 0;
                    if (*line) rc = glad_dataset_add_path(&it, line, k, split, 0);
                }
            } else rc = glad_dataset_add_path(&it, argv[i], k, split, 0);
        }
        if (rc == 0 && it.n == 0) return cli_usage_error("generic: give --normal/--anomalous folders or image paths");
    } else return cli_usage_error("unknown --format '%s'", format);
    if (rc) { cli_error("%s", it.err[0] ? it.err : glad_strerror(rc)); glad_items_free(&it); return CLI_FAIL; }
    if (seed) shuffle(&it, (unsigned long long)seed);
    int n = it.n;
    if (limit >= 0 && limit < n) n = (int)limit;

    if (strcmp(out, "-") == 0 && isatty(1)) { glad_items_free(&it); return cli_usage_error("refusing to write a binary stream to a terminal; use -o FILE or a pipe"); }
    glad_record hdr;
    glad_writer *wr;
    if (glad_header_init(&hdr) || glad_header_append(&hdr, cli_prog, GLAD_VERSION, argc, argv)) return cli_error("out of memory");
    if (glad_writer_open(&wr, out, zstd)) { glad_record_free(&hdr); return cli_error("%s", glad_error_detail()); }
    glad_writer_write(wr, &hdr);
    glad_record_free(&hdr);
    /* my items: index % N == K; decode blocks in parallel, write in order */
    int *mine = malloc(sizeof(int) * (size_t)(n ? n : 1)), m = 0;
    for (int i = 0; i < n; i++) if (i % shard_n == shard_k) mine[m++] = i;
    enum { BLOCK = 32 };
    glad_record recs[BLOCK];
    char msgs[BLOCK][600];
    int rcs[BLOCK];
    cli_progress pg;
    cli_progress_start(&pg, "images", m);
    int status = CLI_OK;
    for (int b0 = 0; b0 < m && status == CLI_OK; b0 += BLOCK) {
        int nb = m - b0 < BLOCK ? m - b0 : BLOCK;
        // records are independent: decode a block in parallel, keep its order
        #pragma omp parallel for schedule(dynamic, 1)
        for (int j = 0; j < nb; j++) {
            msgs[j][0] = 0;
            rcs[j] = encode_item(&it.v[mine[b0 + j]], &po, &recs[j], msgs[j], sizeof msgs[j]);
        }
        for (int j = 0; j < nb; j++) {
            if (status == CLI_OK && rcs[j]) status = cli_error("%s", msgs[j]);
            if (status == CLI_OK && glad_writer_write(wr, &recs[j])) status = cli_error("%s", glad_error_detail());
            if (!rcs[j]) glad_record_free(&recs[j]);
        }
        cli_progress_step(&pg, nb);
    }
    cli_progress_end(&pg);
    status = cli_finish(status, NULL, wr);
    free(mine);
    glad_items_free(&it);
    return status;
}
