/* glad-auroc - image- and pixel-level anomaly-detection metrics of scored
 * streams: I-AUROC/AP/F1max, P-AUROC/AP/F1max, aupro and pro_compat per
 * class (or defect) and their mean, as a table, markdown, CSV or JSON, with
 * optional ROC/PR/PRO curves (CSV + PNG). Checking the records, the rows,
 * the metrics and the formats are lib/metrics/report.h; this file reads the
 * streams into a report and writes it to standard output and the curve
 * files. Every record read is evaluated, whatever its split.
 * Calibrated decisions (lib/metrics/calib.h): --calibrate writes the
 * thresholds chosen on a validation stream, --threshold-file reports the
 * figures at them, --per-image lists every record with its decision. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "io/outfile.h"
#include "metrics/calib.h"
#include "metrics/report.h"

static const char usage[] =
    "Usage: glad-auroc [OPTION]... [FILE]...\n"
    "Anomaly-detection metrics of scored glad streams (FILEs, or standard input;\n"
    "several FILEs, e.g. shards of one run, are merged). Records need 'label'\n"
    "(0/1) and 'score'; 'amap' ([1,H,W] or [H,W] float) and 'mask' (binary)\n"
    "add the pixel-level metrics. Every record read is evaluated, whatever its\n"
    "'split'.\n"
    "\n"
    "  -b, --by class|defect|none  rows: one per class (default), per class and\n"
    "                              defect (normals of the class + that defect),\n"
    "                              or one for everything\n"
    "  -f, --format table|markdown|csv|json\n"
    "                              tables in percent with one decimal; csv and\n"
    "                              json as fractions in full precision\n"
    "  -c, --curves DIR            write ROC, PR and PRO curves per row as CSV\n"
    "                              and PNG into DIR (created if needed)\n"
    "  -p, --pixel-size N          resample maps (bilinear) and masks (nearest)\n"
    "                              to NxN before the pixel metrics\n"
    "      --fpr-limit X           PRO integration limit (default 0.3)\n"
    "      --calibrate FILE        choose thresholds on these (validation) records\n"
    "                              and write them to FILE (JSON): the image score\n"
    "                              and, with maps, the pixel threshold\n"
    "      --target-fpr X          ... at this false-positive rate over the normal\n"
    "                              images / pixels (default 0.01)\n"
    "      --max-f1                ... at the maximum F1 instead (needs anomalous\n"
    "                              records, and masks for the pixel threshold)\n"
    "  -t, --threshold-file FILE   report precision, recall, F1 and accuracy at the\n"
    "                              thresholds of FILE (decision: score > threshold);\n"
    "                              without it, at the records' own 'decision' and\n"
    "                              'pred_mask' when every record has them\n"
    "      --per-image FILE.csv    one line per record, in stream order: id, class,\n"
    "                              defect, label, score, decision, ads_step,\n"
    "                              score_global\n"
    "  -h, --help                  show this help\n"
    "  -V, --version               show the version\n"
    "\n"
    "Columns: I-AUROC, I-AP, I-F1max (image scores), P-AUROC, P-AP, P-F1max\n"
    "(all pixels of all images of the row), AUPRO (exact, to FPR 0.3,\n"
    "interpolated, /0.3) and PRO-compat (GLAD/DDAD/RD4AD compute_pro: 200\n"
    "thresholds, FPR < 0.3 rescaled). The mean row averages the rows (as papers\n"
    "average classes). Undefined metrics (e.g. a class without anomalies) are\n"
    "shown as n/a (null in JSON) with a warning. With decisions, I-Prec, I-Rec,\n"
    "I-F1, I-Acc (and P-Prec ... P-Acc over pixels) follow, from the counts at\n"
    "the threshold summed over the row.\n"
    "Exit status: 0 ok, 1 bad data (the message names the record), 2 usage.\n";

/* A library failure: its detail, else the code's text. */
static int lib_error(int rc)
{
    const char *d = glad_error_detail();
    return cli_error("%s", *d ? d : glad_strerror(rc));
}

/* What the records feed besides the report. */
typedef struct {
    glad_calib *cal;              /* --calibrate */
    glad_outfile *per_image;      /* --per-image */
    const glad_thresholds *thr;   /* --threshold-file */
} sinks;

static int feed(glad_report *rep, const sinks *s, const glad_record *r)
{
    int rc = glad_report_add(rep, r);
    if (rc >= 0 && s->cal) rc = glad_calib_add(s->cal, r);
    if (rc >= 0 && s->per_image) {
        char *line = glad_per_image_line(r, s->thr);
        rc = line ? glad_outfile_write(s->per_image, line, strlen(line)) : glad_fail(GLAD_ENOMEM, "out of memory");
        free(line);
    }
    return rc < 0 ? lib_error(rc) : 0;
}

static int read_file(glad_report *rep, const sinks *s, const char *path, cli_progress *pg)
{
    glad_reader *rd = NULL;
    int rc = glad_reader_open(&rd, path), ret = 0;
    if (rc < 0) {
        if (!rd) return cli_reader_error(NULL, path);
        cli_reader_error(rd, path);
        glad_reader_close(rd);
        return CLI_FAIL;
    }
    glad_record r;
    glad_record_init(&r);
    glad_error_clear();
    if ((rc = glad_report_add_header(rep, glad_reader_header(rd))) < 0 ||
        (s->cal && (rc = glad_calib_add_header(s->cal, glad_reader_header(rd))) < 0)) ret = lib_error(rc);
    while (!ret && (rc = glad_reader_next(rd, &r)) != 0) {
        if (rc < 0) ret = cli_reader_error(rd, path);
        else if (!(ret = feed(rep, s, &r))) cli_progress_step(pg, 1);
    }
    glad_record_free(&r);
    glad_reader_close(rd);
    return ret;
}

/* One curve file, complete or not there (lib/io/outfile). */
static int write_curve(const glad_report *rep, int row, int c, int png, const char *path)
{
    glad_outfile *of;
    glad_error_clear();
    int rc = glad_outfile_open(&of, path, 0);
    if (rc == 0) {
        FILE *f = glad_outfile_file(of);
        rc = png ? glad_report_curve_png(rep, row, c, f) : glad_report_curve_csv(rep, row, c, f);
        if (rc < 0) glad_outfile_abort(of);
        else rc = glad_outfile_commit(of);
    }
    return rc < 0 ? (*glad_error_detail() ? cli_error("%s", glad_error_detail()) : cli_error("%s: %s", path, glad_strerror(rc))) : 0;
}

/* DIR/ROW.{roc,pr,pro}.csv, then the .png plots, row by row */
static int write_curves(const glad_report *rep, const char *dir)
{
    int ret = 0;
    for (int i = 0; i < glad_report_nrows(rep) && !ret; i++) {
        char *stem = glad_report_file_stem(glad_report_row_at(rep, i)->name);
        if (!stem) return cli_error("out of memory");
        for (int png = 0; png < 2 && !ret; png++)
            for (int c = GLAD_REPORT_ROC; c <= GLAD_REPORT_PRO && !ret; c++) {
                if (!glad_report_has_curve(rep, i, c)) continue;
                char *path = glad_strfmt("%s/%s.%s.%s", dir, stem, glad_report_curve_names[c], png ? "png" : "csv");
                ret = path ? write_curve(rep, i, c, png, path) : cli_error("out of memory");
                free(path);
            }
        free(stem);
    }
    return ret;
}

typedef struct {
    glad_report_opts o;
    int fmt, max_f1;
    double target_fpr;
    const char *curves, *calibrate, *thr_file, *per_image;
} args;

/* -1: go on; else the exit status */
static int parse_args(args *a, int argc, char **argv)
{
    enum { O_FPR = 256, O_CAL, O_TFPR, O_MAXF1, O_PERIMG };
    static const struct option opts[] = {
        {"by", required_argument, 0, 'b'}, {"format", required_argument, 0, 'f'},
        {"curves", required_argument, 0, 'c'}, {"pixel-size", required_argument, 0, 'p'},
        {"fpr-limit", required_argument, 0, O_FPR}, {"calibrate", required_argument, 0, O_CAL},
        {"target-fpr", required_argument, 0, O_TFPR}, {"max-f1", no_argument, 0, O_MAXF1},
        {"threshold-file", required_argument, 0, 't'}, {"per-image", required_argument, 0, O_PERIMG},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int by = GLAD_REPORT_BY_CLASS, c, fpr_given = 0;
    long v;
    while ((c = cli_getopt(argc, argv, "b:f:c:p:t:hV", opts)) != -1) {
        switch (c) {
        case 'b': if (cli_parse_choice("--by", optarg, glad_report_by_names, &by)) return CLI_USAGE; break;
        case 'f': if (cli_parse_choice("--format", optarg, glad_report_format_names, &a->fmt)) return CLI_USAGE; break;
        case 'c': a->curves = optarg; break;
        case 'p':
            if (cli_parse_int("--pixel-size", optarg, 1, 16384, &v)) return CLI_USAGE;
            a->o.pixel_size = (int)v;
            break;
        case O_FPR: if (cli_parse_double("--fpr-limit", optarg, 1e-6, 1.0, &a->o.fpr_limit)) return CLI_USAGE; break;
        case O_CAL: a->calibrate = optarg; break;
        case O_TFPR:
            if (cli_parse_double("--target-fpr", optarg, 0, 0.999999, &a->target_fpr)) return CLI_USAGE;
            fpr_given = 1;
            break;
        case O_MAXF1: a->max_f1 = 1; break;
        case 't': a->thr_file = optarg; break;
        case O_PERIMG: a->per_image = optarg; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    a->o.by = (glad_report_by)by;
    a->o.curves = a->curves != NULL;
    if ((fpr_given || a->max_f1) && !a->calibrate) return cli_usage_error("--%s needs --calibrate FILE", a->max_f1 ? "max-f1" : "target-fpr");
    if (fpr_given && a->max_f1) return cli_usage_error("--target-fpr and --max-f1 exclude each other");
    if (a->calibrate && a->thr_file) return cli_usage_error("--calibrate and --threshold-file exclude each other (calibrate on validation records, apply to test records)");
    for (int i = optind; i < argc; i++)
        if ((a->calibrate && cli_same_file(argv[i], a->calibrate)) || (a->per_image && cli_same_file(argv[i], a->per_image)))
            return cli_error("%s: is an input; refusing to overwrite it", argv[i]);
    return -1;
}

/* The thresholds chosen on the records read, into the --calibrate file. */
static int calibrate(glad_calib *cal, const args *a)
{
    glad_thresholds t;
    glad_error_clear();
    int rc = glad_calib_compute(cal, a->max_f1 ? GLAD_CALIB_MAX_F1 : GLAD_CALIB_TARGET_FPR, a->target_fpr, &t);
    if (rc == 0) rc = glad_thresholds_save(&t, a->calibrate);
    glad_thresholds_free(&t);
    return rc < 0 ? lib_error(rc) : 0;
}

/* Outputs and inputs named by options, before any record is read. */
static int open_sinks(sinks *s, glad_thresholds *thr, const args *a)
{
    glad_error_clear();
    if (a->thr_file && glad_thresholds_load(thr, a->thr_file) < 0) return lib_error(GLAD_EFORMAT);
    if (a->thr_file) s->thr = thr;
    if (a->calibrate && glad_calib_new(&s->cal) < 0) return lib_error(GLAD_ENOMEM);
    if (a->per_image && (glad_outfile_open(&s->per_image, a->per_image, 0) < 0 ||
                         glad_outfile_write(s->per_image, glad_per_image_header, strlen(glad_per_image_header)) < 0))
        return lib_error(GLAD_EIO);
    if (a->curves && mkdir(a->curves, 0777) < 0 && errno != EEXIST)
        return cli_error("%s: cannot create directory: %s", a->curves, strerror(errno));
    return 0;
}

int main(int argc, char **argv)
{
    cli_init("glad-auroc");
    args a = {{GLAD_REPORT_BY_CLASS, 0, 0.3, 0, NULL}, GLAD_REPORT_TABLE, 0, 0.01, NULL, NULL, NULL, NULL};
    int ret = parse_args(&a, argc, argv), rc;
    if (ret >= 0) return ret;
    sinks s = {0};
    glad_thresholds thr = {0};
    glad_report *rep = NULL;
    ret = open_sinks(&s, &thr, &a);
    a.o.thr = s.thr;
    if (!ret && (rc = glad_report_new(&rep, &a.o)) < 0) ret = lib_error(rc);
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    if (!ret && optind == argc) ret = read_file(rep, &s, "-", &pg);
    for (int i = optind; i < argc && !ret; i++) ret = read_file(rep, &s, argv[i], &pg);
    cli_progress_end(&pg);
    if (!ret) {
        glad_error_clear();
        rc = glad_report_eval(rep);
        for (int i = 0; i < glad_report_nwarnings(rep); i++) cli_warn("%s", glad_report_warning(rep, i));
        if (rc < 0) ret = lib_error(rc);
    }
    if (!ret && s.cal) ret = calibrate(s.cal, &a);
    if (!ret && s.per_image) {
        glad_error_clear();
        rc = glad_outfile_commit(s.per_image);
        s.per_image = NULL;
        if (rc < 0) ret = lib_error(rc);
    }
    if (!ret && a.curves) ret = write_curves(rep, a.curves);
    if (!ret && (glad_report_write(rep, (glad_report_format)a.fmt, stdout) < 0 || fflush(stdout)))
        ret = cli_error("write error on standard output");
    glad_outfile_abort(s.per_image);
    glad_calib_free(s.cal);
    glad_thresholds_free(&thr);
    glad_report_free(rep);
    return ret;
}
