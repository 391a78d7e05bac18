/* cli.c - shared command-line glue for the glad programs: messages, option
 * parsing, terminal progress, opening and finishing the stream pipeline, and
 * what happens at exit (standard output checked, temporaries removed, also
 * on SIGINT/SIGTERM/SIGHUP). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "imgproc/pool.h"
#include "imgproc/standardize.h"
#include "score/pipeline.h"
#include "io/outfile.h"

const char *cli_prog = "glad";
static int reported;   /* an error message was printed */

/* At exit: remove any output temporary not committed (a run that returned
 * early), then flush and close stdout, so a write error on it (a full disk,
 * /dev/full) is an exit status 1 with a message, never a silent 0. */
static void at_exit(void)
{
    glad_outfile_remove_temps();
    errno = 0;
    int bad = fflush(stdout) != 0, e = errno;
    bad |= ferror(stdout) != 0;
    if (fclose(stdout) != 0 && !bad) { bad = 1; e = errno; }
    if (!bad) return;
    if (!reported) fprintf(stderr, "%s: error: standard output: %s\n", cli_prog, e ? strerror(e) : "write error");
    _exit(CLI_FAIL);
}

/* On a terminating signal: remove the temporaries (unlink only: async-
 * signal-safe), then die of the same signal (SA_RESETHAND restored the
 * default action; the re-raised signal is delivered when the handler returns). */
static void on_signal(int sig)
{
    glad_outfile_remove_temps();
    raise(sig);
}

void cli_init(const char *prog)
{
    cli_prog = prog;
    atexit(at_exit);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction old, sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(sigs[i], &sa, NULL);
    }
}

static void vmsg(const char *kind, const char *fmt, va_list ap)
{
    reported = 1;
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
    reported = 1;
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

/* getopt_long with its messages made ours: one line in the program's words
 * ("option '--model' requires an argument") plus "Try '<prog> --help'.", and
 * exit status 2. opterr = 0 and a leading ':' silence getopt's own line. */
static void option_error(int c, int argc, char **argv, const struct option *lo)
{
    /* getopt sets optopt to the option character for a short option, to the
     * option's val for a long one with an argument problem, to 0 for an
     * unknown or ambiguous long one */
    const char *a = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    int is_long = strncmp(a, "--", 2) == 0 && a[2];
    size_t n = is_long ? strcspn(a + 2, "=") : 0;
    const struct option *hit = NULL;
    int matches = 0;
    for (int i = 0; is_long && lo && lo[i].name; i++)
        if (!strncmp(lo[i].name, a + 2, n)) {
            matches++;
            if (!hit || strlen(lo[i].name) == n) hit = &lo[i];
        }
    if (optopt != 0 && !(is_long && hit && hit->val == optopt)) is_long = 0;   /* a short option's error */
    if (c == ':' && is_long && hit) cli_usage_error("option '--%s' requires an argument", hit->name);
    else if (c == ':') cli_usage_error("option requires an argument -- '%c'", optopt);
    else if (!is_long) cli_usage_error("invalid option -- '%c'", optopt);
    else if (optopt != 0) cli_usage_error("option '--%s' doesn't allow an argument", hit->name);
    else cli_usage_error(matches > 1 ? "option '%.*s' is ambiguous" : "unrecognized option '%.*s'", (int)(n + 2), a);
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    char os[128];
    snprintf(os, sizeof os, ":%s", shortopts);
    opterr = 0;
    int c = getopt_long(argc, argv, os, longopts, NULL);
    if (c == ':' || c == '?') {
        option_error(c, argc, argv, longopts);
        exit(CLI_USAGE);
    }
    return c;
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
    const char *m = glad_reader_error(rd);
    if (!path || strcmp(path, "-") == 0) path = "<stdin>";
    return cli_error("%s: %s", path, m && *m ? m : "invalid stream");
}

int cli_open_reader(const char *path, glad_reader **rd)
{
    if (glad_reader_open(rd, path) == 0) return 0;
    cli_reader_error(*rd, path);
    glad_reader_close(*rd);
    *rd = NULL;
    return CLI_FAIL;
}

/* The input and the output are the same regular file (by device and inode):
 * writing would destroy what is being read. */
int cli_same_file(const char *in, const char *out)
{
    struct stat a, b;
    int ra = !in || !strcmp(in, "-") ? fstat(0, &a) : stat(in, &a);
    int rb = !out || !strcmp(out, "-") ? fstat(1, &b) : stat(out, &b);
    return ra == 0 && rb == 0 && S_ISREG(a.st_mode) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int cli_open_io(const char *in_path, const char *out_path, int zstd_level,
                int argc, char **argv, glad_reader **rd, glad_writer **wr)
{
    *rd = NULL;
    *wr = NULL;
    if ((!out_path || strcmp(out_path, "-") == 0) && isatty(1))
        return cli_usage_error("refusing to write a binary stream to a terminal; use -o FILE or a pipe");
    if (cli_same_file(in_path, out_path))
        return cli_error("%s: the output is the input file (write to another file)", out_path && strcmp(out_path, "-") ? out_path : "<stdout>");
    if (cli_open_reader(in_path, rd)) return CLI_FAIL;
    glad_record hdr;
    if (glad_record_copy(&hdr, glad_reader_header(*rd)) < 0 ||
        glad_header_append(&hdr, cli_prog, GLAD_VERSION, argc, argv) < 0) {
        glad_reader_close(*rd);
        *rd = NULL;
        return cli_error("out of memory");
    }
    int rc = glad_writer_open(wr, out_path, zstd_level);
    if (rc == 0) rc = glad_writer_write(*wr, &hdr);
    glad_record_free(&hdr);
    if (rc < 0) {
        glad_reader_close(*rd);
        glad_writer_abort(*wr);
        *rd = NULL;
        *wr = NULL;
        return cli_error("%s", glad_error_detail());
    }
    return 0;
}

int cli_finish(int status, glad_reader *rd, glad_writer *wr)
{
    glad_reader_close(rd);
    if (status != CLI_OK) {
        glad_writer_abort(wr);
        return status;
    }
    if (glad_writer_close(wr) < 0) {
        const char *d = glad_error_detail();
        return cli_error("%s", *d ? d : "write failed");
    }
    return status;
}

/* feat_pool: glad-features --pool K (glad-bank, glad-score) */
int cli_feat_pool(const glad_record *r, int *k)
{
    int64_t v = 1;
    *k = 1;
    int rc = glad_record_get_int(r, "feat_pool", &v);
    if (rc && rc != GLAD_ENOTFOUND) return cli_rec_error(glad_record_id(r), "feat_pool", "is not an integer");
    if (v < 1 || v > GLAD_POOL_MAX_K || v % 2 == 0)
        return cli_rec_error(glad_record_id(r), "feat_pool", "is %lld: not an odd 1..%d (glad-features --pool)", (long long)v, GLAD_POOL_MAX_K);
    *k = (int)v;
    return CLI_OK;
}

/* feat_standardize: glad-features --standardize S (glad-bank, glad-score) */
int cli_feat_standardize(const glad_record *r, double *s)
{
    double v = 0;
    *s = 0;
    int rc = glad_record_get_f64(r, "feat_standardize", &v);
    if (rc == GLAD_ENOTFOUND) return CLI_OK;
    if (rc) return cli_rec_error(glad_record_id(r), "feat_standardize", "is not a number");
    if (!(v > 0 && v <= GLAD_STANDARDIZE_MAX))
        return cli_rec_error(glad_record_id(r), "feat_standardize", "is %g: not in (0, %g] (glad-features --standardize)", v, GLAD_STANDARDIZE_MAX);
    *s = v;
    return CLI_OK;
}

int cli_feat_standardize_same(const glad_record *r, double rec, double bank, const char *what)
{
    if (rec == bank) return CLI_OK;
    const char *id = glad_record_id(r);
    if (rec == 0) return cli_rec_error(id, "feat_standardize", "absent (images not standardised) but %s images were standardised with %g (glad-features --standardize: the same S for both)", what, bank);
    if (bank == 0) return cli_rec_error(id, "feat_standardize", "is %g but %s images were not standardised (glad-features --standardize: the same S for both)", rec, what);
    return cli_rec_error(id, "feat_standardize", "is %g but %s images were standardised with %g (glad-features --standardize: the same S for both)", rec, what, bank);
}

/* feat_standardize_tail: glad-features --standardize-tail T[,T...] (glad-bank, glad-score) */
int cli_feat_std_tail(const glad_record *r, int *tail)
{
    const char *v;
    *tail = GLAD_STD_TAIL_CLIP;
    int rc = glad_record_get_str(r, "feat_standardize_tail", &v);
    if (rc == GLAD_ENOTFOUND) return CLI_OK;
    if (rc) return cli_rec_error(glad_record_id(r), "feat_standardize_tail", "is not a string");
    int k = glad_std_tails_parse(v);
    if (k >= 0) { *tail = k; return CLI_OK; }
    return cli_rec_error(glad_record_id(r), "feat_standardize_tail", "is '%.40s': not clip, tanh or open, or a list of them without one twice (glad-features --standardize-tail)", v);
}

int cli_feat_std_tail_same(const glad_record *r, int rec, int bank, const char *what)
{
    if (rec == bank) return CLI_OK;
    char a[32] = "?", b[32] = "?";
    glad_std_tails_format(a, sizeof a, rec);
    glad_std_tails_format(b, sizeof b, bank);
    return cli_rec_error(glad_record_id(r), "feat_standardize_tail", "is %s but %s images' tail was %s (glad-features --standardize-tail: the same for both)",
                         a, what, b);
}

int cli_layer_tail_listed(const glad_record *r, const char *layer, int code)
{
    const char *t;
    size_t n = glad_bank_layer_tail(layer, &t);
    char name[16] = "";
    if (n && n < sizeof name) memcpy(name, t, n);
    int k = glad_std_tail_find(name);
    if (!n || (k >= 0 && GLAD_STD_TAILS_HAS(code, k))) return CLI_OK;
    return cli_rec_error(glad_record_id(r), "feat_standardize_tail", "does not list the tail of layer '%s' (glad-features --standardize-tail T,U names U's layers L~U)", layer);
}

/* --image-score: max | topk-mean:K | softmax-topk:K (glad-score, glad-tile) */
int cli_parse_image_score(const char *arg, int *reducer, long *k)
{
    char name[32];
    const char *colon = strchr(arg, ':');
    snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - arg) : (int)strlen(arg), arg);
    *reducer = GLAD_REDUCE_MAX;
    int r;
    if (cli_parse_choice("--image-score", name, glad_score_reducers, &r)) return CLI_USAGE;
    if ((r == GLAD_REDUCE_MAX) != !colon) return cli_usage_error("--image-score takes max, topk-mean:K or softmax-topk:K");
    *reducer = r;
    return colon ? cli_parse_int("--image-score K", colon + 1, 1, 1L << 40, k) : 0;
}
