/* glad-synth - synthetic anomalies for GLAD's anomaly-oriented training
 * (adds 'anomalous' and 'synth_mask'), synthetic test sets (--as-test), and
 * the built-in demo dataset (--make-dataset). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "io/image.h"
#include "core/rng.h"
#include "synth/anomaly.h"
#include "synth/demo.h"

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
    "      --as-test        replace 'image', set 'mask', label 1 and defect 'synthetic' (a labelled\n"
    "                       synthetic test set; records left normal keep label 0)\n"
    "      --preview PNG    a grid of original | anomalous | mask for the first records\n"
    "      --preview-n N    rows in the preview (default 8)\n"
    "      --make-dataset DIR  write the built-in demo dataset (MVTec layout) and exit\n"
    "      --classes LIST   demo classes (default fabric,pill)\n"
    "      --size N, --train N, --test-good N, --test-defect N   demo sizes (64, 60, 20, 4 per defect type)\n"
    "  -o, --output FILE, --zstd, -h, --help, -V, --version\n";

typedef struct { glad_record r; int rc, made; char msg[300]; } slot;

static int synth_record(glad_record *r, const glad_synth_opts *base, int fg_auto, uint64_t seed, const glad_textures *tex,
                        int as_test, int *made, char *msg, size_t ml)
{
    const char *id = glad_record_id(r), *cls = NULL;
    const glad_tensor *t;
    int C, H, W;
    if (glad_record_get_tensor(r, "image", &t)) { snprintf(msg, ml, "'image' missing"); return GLAD_ENOTFOUND; }
    if (glad_tensor_chw(t, &C, &H, &W)) { snprintf(msg, ml, "'image' is not a [C,H,W] image"); return GLAD_ESHAPE; }
    size_t n = glad_tensor_numel(t), hw = (size_t)H * W;
    float *img = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
    uint8_t *m = malloc(hw);
    int rc = GLAD_ENOMEM;
    if (!img || !out || !m) goto done;
    if ((rc = glad_tensor_image_to_f32(t, img))) { snprintf(msg, ml, "'image' is not numeric"); goto done; }
    for (size_t i = 0; i < n; i++) if (!isfinite(img[i])) { snprintf(msg, ml, "'image' contains NaN or infinity"); rc = GLAD_ENAN; goto done; }
    glad_synth_opts o = *base;
    if (fg_auto) o.fg = glad_fg_mode_for_class(glad_record_get_str(r, "class", &cls) == 0 ? cls : NULL, 0);
    rc = glad_synth_anomaly(out, m, img, C, H, W, &o, seed, glad_rng_hash_str(id), tex);
    if (rc < 0) { snprintf(msg, ml, "synthesis failed: %s", glad_strerror(rc)); goto done; }
    *made = rc;
    glad_tensor ta, tm;
    int64_t ms[3] = {1, H, W};
    if ((rc = glad_tensor_image_from_f32(&ta, t->dtype, t->ndim, t->shape, out))) goto done;
    if ((rc = glad_tensor_alloc(&tm, GLAD_DT_U8, 3, ms))) { glad_tensor_free(&ta); goto done; }
    memcpy(tm.data, m, hw);
    if (as_test) {
        if (*made) {
            glad_record_set_tensor(r, "image", &ta);
            glad_record_set_tensor(r, "mask", &tm);
            glad_record_set_int(r, "label", 1);
            glad_record_set_str(r, "defect", "synthetic");
        } else {
            glad_record_set_tensor(r, "mask", &tm);
            glad_record_set_int(r, "label", 0);
            glad_record_set_str(r, "defect", "good");
            glad_tensor_free(&ta);
        }
        glad_record_set_str(r, "split", "test");
    } else {
        glad_record_set_tensor(r, "anomalous", &ta);
        glad_record_set_tensor(r, "synth_mask", &tm);
    }
    rc = 0;
done:
    free(img); free(out); free(m);
    return rc;
}

/* preview grid: rows of [original | anomalous | mask] as RGB */
static int preview(const char *path, glad_record *recs, int n, int as_test)
{
    int S = 0;
    for (int i = 0; i < n; i++) {
        const glad_tensor *t;
        int c, h, w;
        if (glad_record_get_tensor(&recs[i], "image", &t) == 0 && glad_tensor_chw(t, &c, &h, &w) == 0 && h > S) S = h > w ? h : w;
    }
    if (!S || n == 0) return GLAD_EINVAL;
    int pad = 2, Wd = 3 * S + 4 * pad, Hd = n * S + (n + 1) * pad;
    glad_tensor g;
    GLAD_TRY(glad_tensor_alloc4(&g, GLAD_DT_U8, 3, Hd, Wd, -1));
    memset(g.data, 40, (size_t)3 * Hd * Wd);
    uint8_t *o = g.data;
    size_t ghw = (size_t)Hd * Wd;
    for (int i = 0; i < n; i++) {
        const char *keys[3] = {as_test ? "source_image" : "image", as_test ? "image" : "anomalous", as_test ? "mask" : "synth_mask"};
        for (int k = 0; k < 3; k++) {
            const glad_tensor *t;
            int c, h, w;
            if (glad_record_get_tensor(&recs[i], keys[k], &t) || glad_tensor_chw(t, &c, &h, &w)) continue;
            float *f = malloc(glad_tensor_numel(t) * sizeof(float));
            if (!f) continue;
            glad_tensor_to_f32(t, f);
            int is_mask = k == 2;
            if (!is_mask && t->dtype != GLAD_DT_U8) { glad_tensor_image_to_f32(t, f); for (size_t j = 0; j < glad_tensor_numel(t); j++) f[j] = (f[j] + 1) * 127.5f; }
            size_t hw = (size_t)h * w;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int ch = 0; ch < 3; ch++) {
                        float v = f[(size_t)(c == 3 ? ch : 0) * hw + (size_t)y * w + x] * (is_mask ? 255.0f : 1.0f);
                        o[ch * ghw + (size_t)(pad + i * (S + pad) + y) * Wd + pad + k * (S + pad) + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                    }
            free(f);
        }
    }
    int rc = glad_image_write_png(path, &g);
    glad_tensor_free(&g);
    return rc;
}

int main(int argc, char **argv)
{
    cli_init("glad-synth");
    enum { O_P = 256, O_SEED, O_FG, O_TEX, O_ASTEST, O_PREV, O_PREVN, O_MAKE, O_CLASSES, O_SIZE, O_TRAIN, O_TGOOD, O_TDEF, O_ZSTD };
    static const struct option lo[] = {
        {"p", required_argument, 0, O_P}, {"seed", required_argument, 0, O_SEED}, {"fg", required_argument, 0, O_FG},
        {"textures", required_argument, 0, O_TEX}, {"as-test", no_argument, 0, O_ASTEST}, {"preview", required_argument, 0, O_PREV},
        {"preview-n", required_argument, 0, O_PREVN}, {"make-dataset", required_argument, 0, O_MAKE}, {"classes", required_argument, 0, O_CLASSES},
        {"size", required_argument, 0, O_SIZE}, {"train", required_argument, 0, O_TRAIN}, {"test-good", required_argument, 0, O_TGOOD},
        {"test-defect", required_argument, 0, O_TDEF}, {"output", required_argument, 0, 'o'}, {"zstd", no_argument, 0, O_ZSTD},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    glad_synth_opts so;
    glad_synth_opts_default(&so);
    const char *out = "-", *tex_dir = NULL, *prev = NULL, *make = NULL, *classes = "fabric,pill";
    long seed = 0, prev_n = 8, size = 64, ntrain = 60, ngood = 20, ndef = 4;
    int fg_auto = 1, as_test = 0, zstd = 0, c;
    while ((c = cli_getopt(argc, argv, "o:hV", lo)) != -1) {
        switch (c) {
        case O_P: if (cli_parse_double("--p", optarg, 0, 1, &so.p)) return CLI_USAGE; break;
        case O_SEED: if (cli_parse_int("--seed", optarg, 0, 1L << 62, &seed)) return CLI_USAGE; break;
        case O_FG:
            fg_auto = 0;
            if (!strcmp(optarg, "auto")) fg_auto = 1; else if (!strcmp(optarg, "dark")) so.fg = GLAD_FG_DARK;
            else if (!strcmp(optarg, "bright")) so.fg = GLAD_FG_BRIGHT; else if (!strcmp(optarg, "none")) so.fg = GLAD_FG_NONE;
            else return cli_usage_error("--fg takes auto, dark, bright or none");
            break;
        case O_TEX: tex_dir = optarg; break;
        case O_ASTEST: as_test = 1; break;
        case O_PREV: prev = optarg; break;
        case O_PREVN: if (cli_parse_int("--preview-n", optarg, 1, 1000, &prev_n)) return CLI_USAGE; break;
        case O_MAKE: make = optarg; break;
        case O_CLASSES: classes = optarg; break;
        case O_SIZE: if (cli_parse_int("--size", optarg, 16, 4096, &size)) return CLI_USAGE; break;
        case O_TRAIN: if (cli_parse_int("--train", optarg, 0, 100000, &ntrain)) return CLI_USAGE; break;
        case O_TGOOD: if (cli_parse_int("--test-good", optarg, 0, 100000, &ngood)) return CLI_USAGE; break;
        case O_TDEF: if (cli_parse_int("--test-defect", optarg, 0, 100000, &ndef)) return CLI_USAGE; break;
        case 'o': out = optarg; break;
        case O_ZSTD: zstd = 3; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (make) {
        glad_demo_opts d = {(int)size, (int)ntrain, (int)ngood, (int)ndef, (uint64_t)seed};
        char buf[256], err[4200] = "";
        snprintf(buf, sizeof buf, "%s", classes);
        for (char *s = strtok(buf, ","); s; s = strtok(NULL, ",")) {
            int known = 0;
            for (int i = 0; i < GLAD_DEMO_NCLASSES; i++) known |= !strcmp(s, glad_demo_classes[i]);
            if (!known) return cli_usage_error("unknown demo class '%s' (fabric, pill)", s);
            int rc = glad_demo_make(make, s, &d, err, sizeof err);
            if (rc) return cli_error("%s", err[0] ? err : glad_strerror(rc));
        }
        return CLI_OK;
    }
    if (argc - optind > 1) return cli_usage_error("at most one input FILE");
    glad_textures *tex = NULL;
    if (tex_dir) {
        int rc = glad_textures_open(&tex, tex_dir);
        if (rc) return cli_error("--textures %s: %s", tex_dir, rc == GLAD_ENOTFOUND ? "no images found" : glad_strerror(rc));
    }
    const char *in = optind < argc ? argv[optind] : "-";
    glad_reader *rd;
    glad_writer *wr;
    if (cli_open_io(in, out, zstd, argc, argv, &rd, &wr)) { glad_textures_close(tex); return CLI_FAIL; }
    enum { BLOCK = 32 };
    slot *sl = calloc(BLOCK, sizeof *sl);
    glad_record *pv = prev ? calloc((size_t)prev_n, sizeof *pv) : NULL;
    int npv = 0, status = CLI_OK, rc = 1;
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    while (status == CLI_OK && rc == 1) {
        int nb = 0;
        while (nb < BLOCK && (rc = glad_reader_next(rd, &sl[nb].r)) == 1) nb++;
        // records are independent and their randomness depends on their id only
        #pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < nb; i++) {
            sl[i].msg[0] = 0;
            if (as_test && pv) {   /* keep the original for the preview */
                const glad_tensor *t;
                glad_tensor cp;
                if (glad_record_get_tensor(&sl[i].r, "image", &t) == 0 && glad_tensor_copy(&cp, t) == 0) glad_record_set_tensor(&sl[i].r, "source_image", &cp);
            }
            sl[i].rc = synth_record(&sl[i].r, &so, fg_auto, (uint64_t)seed, tex, as_test, &sl[i].made, sl[i].msg, sizeof sl[i].msg);
        }
        for (int i = 0; i < nb && status == CLI_OK; i++) {
            if (sl[i].rc) { status = cli_rec_error(glad_record_id(&sl[i].r), NULL, "%s", sl[i].msg); break; }
            if (pv && npv < prev_n) glad_record_copy(&pv[npv++], &sl[i].r);
            if (as_test && pv) glad_record_remove(&sl[i].r, "source_image");
            if (glad_writer_write(wr, &sl[i].r)) status = cli_error("%s", glad_error_detail());
        }
        cli_progress_step(&pg, nb);
    }
    cli_progress_end(&pg);
    if (status == CLI_OK && rc < 0) status = cli_reader_error(rd, in);
    if (status == CLI_OK && pv && npv && preview(prev, pv, npv, as_test)) status = cli_error("%s: cannot write the preview", prev);
    for (int i = 0; i < BLOCK; i++) glad_record_free(&sl[i].r);
    for (int i = 0; pv && i < npv; i++) glad_record_free(&pv[i]);
    free(sl);
    free(pv);
    status = cli_finish(status, rd, wr);
    glad_textures_close(tex);
    return status;
}
