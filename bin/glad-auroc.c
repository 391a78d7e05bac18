/* glad-auroc - image- and pixel-level anomaly-detection metrics of scored
 * streams: I-AUROC/AP/F1max, P-AUROC/AP/F1max, aupro and pro_compat per
 * class (or defect) and their mean, as a table, markdown, CSV or JSON, with
 * optional ROC/PR/PRO curves (CSV + PNG). Checking the records, the rows,
 * the metrics and the formats are lib/metrics/report.h; this file reads the
 * streams into a report and writes it to standard output and the curve
 * files. Every record read is evaluated, whatever its split. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
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
    "  -h, --help                  show this help\n"
    "  -V, --version               show the version\n"
    "\n"
    "Columns: I-AUROC, I-AP, I-F1max (image scores), P-AUROC, P-AP, P-F1max\n"
    "(all pixels of all images of the row), AUPRO (exact, to FPR 0.3,\n"
    "interpolated, /0.3) and PRO-compat (GLAD/DDAD/RD4AD compute_pro: 200\n"
    "thresholds, FPR < 0.3 rescaled). The mean row averages the rows (as papers\n"
    "average classes). Undefined metrics (e.g. a class without anomalies) are\n"
    "shown as n/a (null in JSON) with a warning.\n"
    "Exit status: 0 ok, 1 bad data (the message names the record), 2 usage.\n";

/* A library failure: its detail, else the code's text. */
static int lib_error(int rc)
{
    const char *d = glad_error_detail();
    return cli_error("%s", *d ? d : glad_strerror(rc));
}

static int read_file(glad_report *rep, const char *path, cli_progress *pg)
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
    if ((rc = glad_report_add_header(rep, glad_reader_header(rd))) < 0) ret = lib_error(rc);
    while (!ret && (rc = glad_reader_next(rd, &r)) != 0) {
        if (rc < 0) ret = cli_reader_error(rd, path);
        else if ((rc = glad_report_add(rep, &r)) < 0) ret = lib_error(rc);
        else cli_progress_step(pg, 1);
    }
    glad_record_free(&r);
    glad_reader_close(rd);
    return ret;
}

/* One curve file, written to PATH.tmp.PID and renamed over PATH when
 * complete (a local stand-in until lib/io/outfile lands). */
static int write_curve(const glad_report *rep, int row, int c, int png, const char *path)
{
    char *tmp = glad_strfmt("%s.tmp.%ld", path, (long)getpid());
    if (!tmp) return cli_error("out of memory");
    FILE *f = fopen(tmp, "w");
    if (!f) { int ret = cli_error("%s: cannot write: %s", path, strerror(errno)); free(tmp); return ret; }
    int rc = png ? glad_report_curve_png(rep, row, c, f) : glad_report_curve_csv(rep, row, c, f);
    if (fclose(f) != 0 && rc == 0) rc = GLAD_EIO;
    if (rc == 0 && rename(tmp, path) != 0) rc = GLAD_EIO;
    if (rc < 0) remove(tmp);
    free(tmp);
    return rc < 0 ? cli_error("%s: %s", path, rc == GLAD_EIO ? "write failed" : glad_strerror(rc)) : 0;
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

int main(int argc, char **argv)
{
    cli_init("glad-auroc");
    static const struct option opts[] = {
        {"by", required_argument, 0, 'b'}, {"format", required_argument, 0, 'f'},
        {"curves", required_argument, 0, 'c'}, {"pixel-size", required_argument, 0, 'p'},
        {"fpr-limit", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    glad_report_opts o = {GLAD_REPORT_BY_CLASS, 0, 0.3, 0};
    int by = GLAD_REPORT_BY_CLASS, fmt = GLAD_REPORT_TABLE, c;
    const char *curves = NULL;
    long v;
    while ((c = cli_getopt(argc, argv, "b:f:c:p:hV", opts)) != -1) {
        switch (c) {
        case 'b': if (cli_parse_choice("--by", optarg, glad_report_by_names, &by)) return CLI_USAGE; break;
        case 'f': if (cli_parse_choice("--format", optarg, glad_report_format_names, &fmt)) return CLI_USAGE; break;
        case 'c': curves = optarg; break;
        case 'p':
            if (cli_parse_int("--pixel-size", optarg, 1, 16384, &v)) return CLI_USAGE;
            o.pixel_size = (int)v;
            break;
        case 'L': if (cli_parse_double("--fpr-limit", optarg, 1e-6, 1.0, &o.fpr_limit)) return CLI_USAGE; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    o.by = (glad_report_by)by;
    o.curves = curves != NULL;
    if (curves && mkdir(curves, 0777) < 0 && errno != EEXIST)
        return cli_error("%s: cannot create directory: %s", curves, strerror(errno));
    glad_report *rep;
    int rc = glad_report_new(&rep, &o), ret = 0;
    if (rc < 0) return lib_error(rc);
    cli_progress pg;
    cli_progress_start(&pg, "records", 0);
    if (optind == argc) ret = read_file(rep, "-", &pg);
    for (int i = optind; i < argc && !ret; i++) ret = read_file(rep, argv[i], &pg);
    cli_progress_end(&pg);
    if (!ret) {
        glad_error_clear();
        rc = glad_report_eval(rep);
        for (int i = 0; i < glad_report_nwarnings(rep); i++) cli_warn("%s", glad_report_warning(rep, i));
        if (rc < 0) ret = lib_error(rc);
    }
    if (!ret && curves) ret = write_curves(rep, curves);
    if (!ret && (glad_report_write(rep, (glad_report_format)fmt, stdout) < 0 || fflush(stdout)))
        ret = cli_error("write error on standard output");
    glad_report_free(rep);
    return ret;
}
