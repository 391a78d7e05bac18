/* cli.c - shared command-line glue for the glad programs: messages, option
 * value parsing, terminal progress, and opening the stream pipeline. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"

const char *cli_prog = "glad";

void cli_init(const char *prog) { cli_prog = prog; }

static void vmsg(const char *kind, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: %s", cli_prog, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("error: ", fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_rec_error(const char *id, const char *field, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: error: record '%s': ", cli_prog, id ? id : "?");
    if (field) fprintf(stderr, "'%s' ", field);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", cli_prog);
    return CLI_USAGE;
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("warning: ", fmt, ap);
    va_end(ap);
}

int cli_version(void)
{
    printf("%s (glad) %s\n", cli_prog, GLAD_VERSION);
    return CLI_OK;
}

int cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return cli_usage_error("invalid value '%s' for %s (an integer from %ld to %ld)", s, opt, lo, hi);
    *out = v;
    return 0;
}

int cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return cli_usage_error("invalid value '%s' for %s (a number from %g to %g)", s, opt, lo, hi);
    *out = v;
    return 0;
}

int cli_parse_choice(const char *opt, const char *s, const char *const *names, int *out)
{
    char list[256] = "";
    size_t k = 0;
    for (int i = 0; names[i]; i++) {
        if (!strcmp(s, names[i])) { *out = i; return 0; }
        k += (size_t)snprintf(list + k, k < sizeof list ? sizeof list - k : 0, "%s%s", i ? ", " : "", names[i]);
        if (k >= sizeof list) k = sizeof list - 1;
    }
    return cli_usage_error("invalid value '%s' for %s (one of: %s)", s, opt, list);
}

int cli_parse_shard(const char *s, int *k, int *n)
{
    long a, b;
    char *end;
    errno = 0;
    a = strtol(s, &end, 10);
    if (errno || end == s || *end != '/') goto bad;
    const char *p = end + 1;
    b = strtol(p, &end, 10);
    if (errno || end == p || *end || b < 1 || b > 1000000 || a < 0 || a >= b) goto bad;
    *k = (int)a;
    *n = (int)b;
    return 0;
bad:
    return cli_usage_error("invalid shard '%s' (want K/N with 0 <= K < N)", s);
}

int cli_parse_size(const char *s, int *h, int *w)
{
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10), b = a;
    if (!errno && end != s && (*end == 'x' || *end == 'X')) {
        const char *p = end + 1;
        b = strtol(p, &end, 10);
        if (end == p) goto bad;
    }
    if (errno || end == s || *end || a < 1 || b < 1 || a > 32768 || b > 32768) goto bad;
    *h = (int)a;
    *w = (int)b;
    return 0;
bad:
    return cli_usage_error("invalid size '%s' (want N or HxW, 1..32768)", s);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, const char *what, long total)
{
    memset(p, 0, sizeof *p);
    p->what = what;
    p->total = total;
    p->t0 = p->last = cli_now();
    p->active = isatty(2);
}

void cli_progress_step(cli_progress *p, long n)
{
    p->done += n;
    if (!p->active) return;
    double now = cli_now();
    if (now - p->last < 0.2 && p->done != p->total) return;
    p->last = now;
    double el = now - p->t0, rate = el > 0 ? p->done / el : 0;
    if (p->total > 0) {
        double eta = rate > 0 ? (p->total - p->done) / rate : 0;
        fprintf(stderr, "\r%s: %s %ld/%ld (%.1f/s, ETA %.0fs)   ", cli_prog, p->what, p->done, p->total, rate, eta);
    } else
        fprintf(stderr, "\r%s: %s %ld (%.1f/s)   ", cli_prog, p->what, p->done, rate);
}

void cli_progress_end(cli_progress *p)
{
    if (p->active) fputc('\n', stderr);
    p->active = 0;
}

int cli_check_file(const char *path)
{
    struct stat sb;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return cli_error("%s: %s", path, strerror(errno));
    int e = fstat(fd, &sb) ? errno : S_ISDIR(sb.st_mode) ? EISDIR : 0;
    close(fd);
    return e ? cli_error("%s: %s", path, strerror(e)) : 0;
}

int cli_reader_error(glad_reader *rd, const char *path)
{
    const char *m = rd ? glad_reader_error(rd) : "";
    if (!path || strcmp(path, "-") == 0) path = "<stdin>";
    return cli_error("%s: %s", path, m && *m ? m : "invalid stream");
}

int cli_open_io(const char *in_path, const char *out_path, int zstd_level,
                int argc, char **argv, glad_reader **rd, glad_writer **wr)
{
    *rd = NULL;
    *wr = NULL;
    if ((!out_path || strcmp(out_path, "-") == 0) && isatty(1))
        return cli_usage_error("refusing to write a binary stream to a terminal; use -o FILE or a pipe");
    int rc = glad_reader_open(rd, in_path);
    if (rc < 0) {
        if (!*rd) return cli_error("%s: cannot open: %s", in_path ? in_path : "<stdin>", strerror(errno));
        cli_reader_error(*rd, in_path);
        glad_reader_close(*rd);
        *rd = NULL;
        return CLI_FAIL;
    }
    glad_record hdr;
    if (glad_record_copy(&hdr, glad_reader_header(*rd)) < 0 ||
        glad_header_append(&hdr, cli_prog, GLAD_VERSION, argc, argv) < 0) {
        glad_reader_close(*rd);
        *rd = NULL;
        return cli_error("out of memory");
    }
    rc = glad_writer_open(wr, out_path, zstd_level);
    if (rc == 0) rc = glad_writer_write(*wr, &hdr);
    glad_record_free(&hdr);
    if (rc < 0) {
        glad_reader_close(*rd);
        *rd = NULL;
        return cli_error("%s: cannot write: %s", out_path ? out_path : "<stdout>", glad_strerror(rc));
    }
    return 0;
}
