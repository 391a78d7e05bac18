/* glad-info - print a stream's header, history and one line per record;
 * validate it (exit 1 with the byte offset and record index of the first
 * problem). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "core/json.h"

static const char usage[] =
    "Usage: glad-info [OPTION]... [FILE]\n"
    "Print the header, the history and one line per record of a glad stream\n"
    "(FILE, or standard input), and check that the whole stream is valid.\n"
    "\n"
    "  -j, --json       one JSON object per line: the header, then each record\n"
    "  -q, --quiet      print nothing; only check (exit status)\n"
    "  -s, --summary    header, history and record count only\n"
    "  -h, --help       show this help\n"
    "  -V, --version    show the version\n"
    "\n"
    "Per record: id, class, split, label, then each tensor as name:dtype[shape]\n"
    "with min/mean/max. Exit status: 0 valid, 1 invalid stream (the message gives\n"
    "the byte offset and record index), 2 usage error.\n";

static void json_str(const char *s)
{
    char buf[1024];
    size_t n = glad_json_escape(NULL, 0, s);
    if (n < sizeof buf) { glad_json_escape(buf, sizeof buf, s); fputs(buf, stdout); return; }
    char *b = malloc(n + 1);
    if (!b) { fputs("\"\"", stdout); return; }
    glad_json_escape(b, n + 1, s);
    fputs(b, stdout);
    free(b);
}

static void tensor_stats(const glad_tensor *t, double *mn, double *mean, double *mx, int *nonfinite)
{
    size_t n = glad_tensor_numel(t);
    *mn = INFINITY; *mx = -INFINITY; *mean = 0; *nonfinite = 0;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v || glad_tensor_to_f64(t, v) < 0) { free(v); *mn = *mx = NAN; return; }
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) { (*nonfinite)++; continue; }
        if (v[i] < *mn) *mn = v[i];
        if (v[i] > *mx) *mx = v[i];
        s += v[i];
    }
    size_t k = n - (size_t)*nonfinite;
    *mean = k ? s / (double)k : NAN;
    if (!k) *mn = *mx = NAN;
    free(v);
}

static void print_shape(const glad_tensor *t)
{
    putchar('[');
    for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? "," : "", (long long)t->shape[d]);
    putchar(']');
}

/* A raw value the record getters read as a number (a numpy scalar). */
static int raw_number(const glad_record *r, const glad_field *f, double *x)
{
    return f->kind == GLAD_VAL_RAW && glad_record_get_f64(r, f->key, x) == 0;
}

static void print_value_json(const glad_record *r, const glad_field *f)
{
    double x;
    int64_t i;
    if (raw_number(r, f, &x)) {
        if (glad_record_get_int(r, f->key, &i) == 0) printf("%lld", (long long)i);
        else if (isfinite(x)) printf("%.17g", x);
        else fputs("null", stdout);
        return;
    }
    switch (f->kind) {
    case GLAD_VAL_NIL: fputs("null", stdout); break;
    case GLAD_VAL_BOOL: fputs(f->i ? "true" : "false", stdout); break;
    case GLAD_VAL_INT: printf("%lld", (long long)f->i); break;
    case GLAD_VAL_FLOAT: if (isfinite(f->f)) printf("%.17g", f->f); else fputs("null", stdout); break;
    case GLAD_VAL_STR: json_str(f->s); break;
    case GLAD_VAL_RAW: printf("{\"msgpack_bytes\":%zu}", f->n); break;
    case GLAD_VAL_TENSOR: {
        double mn, mean, mx;
        int nf;
        tensor_stats(&f->t, &mn, &mean, &mx, &nf);
        printf("{\"dtype\":\"%s\",\"shape\":", glad_dtype_str(f->t.dtype));
        print_shape(&f->t);
        if (isfinite(mn)) printf(",\"min\":%.9g,\"mean\":%.9g,\"max\":%.9g", mn, mean, mx);
        printf(",\"nonfinite\":%d}", nf);
        break;
    }
    }
}

static void print_history_json(const glad_record *h)
{
    glad_history hist;
    if (glad_header_history(h, &hist) < 0) { fputs("null", stdout); return; }
    putchar('[');
    for (int i = 0; i < hist.n; i++) {
        fputs(i ? ",{\"tool\":" : "{\"tool\":", stdout);
        json_str(hist.tool[i]);
        fputs(",\"version\":", stdout);
        json_str(hist.version[i]);
        fputs(",\"args\":", stdout);
        json_str(hist.args[i]);
        putchar('}');
    }
    putchar(']');
    glad_history_free(&hist);
}

static void print_record_json(const glad_record *r)
{
    putchar('{');
    for (int i = 0; i < r->n; i++) {
        if (i) putchar(',');
        json_str(r->f[i].key);
        putchar(':');
        if (r->f[i].kind == GLAD_VAL_RAW && strcmp(r->f[i].key, "history") == 0 && glad_record_find(r, "glad"))
            print_history_json(r);
        else
            print_value_json(r, &r->f[i]);
    }
    puts("}");
}

static void print_record_line(const glad_record *r)
{
    const char *s;
    int64_t v;
    printf("%s", glad_record_id(r));
    printf("\tclass=%s", glad_record_get_str(r, "class", &s) == 0 ? s : "-");
    printf("\tsplit=%s", glad_record_get_str(r, "split", &s) == 0 ? s : "-");
    if (glad_record_get_int(r, "label", &v) == 0) printf("\tlabel=%lld", (long long)v);
    else fputs("\tlabel=-", stdout);
    for (int i = 0; i < r->n; i++) {
        const glad_field *f = &r->f[i];
        if (f->kind == GLAD_VAL_TENSOR) {
            double mn, mean, mx;
            int nf;
            tensor_stats(&f->t, &mn, &mean, &mx, &nf);
            printf("\t%s:%s", f->key, glad_dtype_str(f->t.dtype));
            print_shape(&f->t);
            printf(" %.4g/%.4g/%.4g", mn, mean, mx);
            if (nf) printf(" nonfinite=%d", nf);
        } else if (strcmp(f->key, "label") != 0) {
            double x;
            if (f->kind == GLAD_VAL_FLOAT) printf("\t%s=%.6g", f->key, f->f);
            else if (raw_number(r, f, &x)) printf("\t%s=%.6g", f->key, x);
        }
    }
    putchar('\n');
}

static void print_header(const glad_record *h, int json)
{
    glad_history hist;
    if (json) print_record_json(h);
    else if (glad_header_history(h, &hist) == 0) {
        int64_t ver = 0;
        glad_record_get_int(h, "glad", &ver);
        printf("# glad stream, format %lld\n", (long long)ver);
        for (int i = 0; i < hist.n; i++) printf("# history %d: %s %s %s\n", i + 1, hist.tool[i], hist.version[i], hist.args[i]);
        glad_history_free(&hist);
    }
}

enum { SHOW_ALL, SHOW_SUMMARY, SHOW_NOTHING };

/* Print (per show) and validate the stream at path; the exit status. */
static int info(const char *path, int json, int show)
{
    glad_reader *rd;
    if (cli_open_reader(path, &rd)) return CLI_FAIL;
    if (show != SHOW_NOTHING) print_header(glad_reader_header(rd), json);
    glad_record rec;
    glad_record_init(&rec);
    long n = 0;
    int rc;
    while ((rc = glad_reader_next(rd, &rec)) == 1) {
        n++;
        if (show != SHOW_ALL) continue;
        if (json) print_record_json(&rec);
        else print_record_line(&rec);
    }
    glad_record_free(&rec);
    int status = rc < 0 ? cli_reader_error(rd, path) : CLI_OK;
    if (status == CLI_OK && show != SHOW_NOTHING && !json) printf("# %ld records\n", n);
    glad_reader_close(rd);
    return status;
}

int main(int argc, char **argv)
{
    cli_init("glad-info");
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"quiet", no_argument, 0, 'q'}, {"summary", no_argument, 0, 's'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int json = 0, quiet = 0, summary = 0, c;
    while ((c = cli_getopt(argc, argv, "jqshV", opts)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 's': summary = 1; break;
        case 'h': fputs(usage, stdout); return CLI_OK;
        case 'V': return cli_version();
        default: return cli_usage_error("unknown option");
        }
    }
    if (argc - optind > 1) return cli_usage_error("at most one FILE");
    return info(optind < argc ? argv[optind] : "-", json, quiet ? SHOW_NOTHING : summary ? SHOW_SUMMARY : SHOW_ALL);
}
