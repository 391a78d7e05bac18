/* cli.h - what every glad program shares: its name in messages, the error
 * message format, option parsing, --help/--version handling, progress on a
 * terminal, the read-records / write-records loop with the header history,
 * and losing nothing: outputs complete only on success, every write checked
 * (stdout included), temporaries removed on a signal. Only bin/ uses it;
 * lib/ never prints. */
#ifndef GLAD_CLI_H
#define GLAD_CLI_H

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include "core/glad.h"
#include "io/stream.h"

/* exit statuses */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

extern const char *cli_prog;   /* set by cli_init */

/* Names the program and sets up the exit checks: at exit stdout is flushed
 * and closed (a write error on it is exit status 1 with a message) and
 * output temporaries not committed are removed, as on SIGINT, SIGTERM,
 * SIGHUP and SIGPIPE (the program then dies of the signal). */
void cli_init(const char *prog);
/* getopt_long whose errors are one line in our format plus "Try '<prog>
 * --help'." ("option '--model' requires an argument", "unrecognized option
 * '--x'"); on such an error it exits with status 2. */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);
/* "<prog>: error: <msg>\n" ; returns CLI_FAIL */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "<prog>: error: record '<id>': '<field>' <msg>\n" ; returns CLI_FAIL. field may be NULL. */
int cli_rec_error(const char *id, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "<prog>: <msg>\nTry '<prog> --help'.\n" ; returns CLI_USAGE */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* prints "<prog> (glad) VERSION" and returns CLI_OK */
int cli_version(void);

/* Parse helpers for option values; return 0 or print a usage error and
 * return CLI_USAGE. */
int cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out);
/* s is one of the NULL-terminated names: *out = its index */
int cli_parse_choice(const char *opt, const char *s, const char *const *names, int *out);
/* "K/N" with 0 <= K < N */
int cli_parse_shard(const char *s, int *k, int *n);
/* "H" or "HxW" */
int cli_parse_size(const char *s, int *h, int *w);

/* Progress on stderr, only when stderr is a terminal. total may be 0 (unknown). */
typedef struct { long done, total; double t0, last; int active; const char *what; } cli_progress;
void cli_progress_start(cli_progress *p, const char *what, long total);
void cli_progress_step(cli_progress *p, long n);
void cli_progress_end(cli_progress *p);

double cli_now(void);   /* monotonic seconds */

/* Open a stream for reading; on error prints "<prog>: error: <path>: <why>"
 * ("No such file or directory", "byte 0, record 0: ...") and returns
 * CLI_FAIL with *rd NULL. */
int cli_open_reader(const char *path, glad_reader **rd);
/* --image-score max | topk-mean:K | softmax-topk:K into a glad_score_reducer
 * value and K (left as it was for max); usage errors printed, CLI_USAGE. */
int cli_parse_image_score(const char *arg, int *reducer, long *k);
/* The record's feat_pool (glad-features --pool K of its feat.* tensors;
 * absent: 1) into *k; a value that is not an odd 1..GLAD_POOL_MAX_K is printed as the
 * record's error, CLI_FAIL. */
int cli_feat_pool(const glad_record *r, int *k);
/* The record's feat_standardize (glad-features --standardize S; absent: 0)
 * into *s; a value that is not a number in (0, GLAD_STANDARDIZE_MAX] is
 * printed as the record's error, CLI_FAIL. */
int cli_feat_standardize(const glad_record *r, double *s);
/* Refuse (the record's error, CLI_FAIL) features standardised otherwise than
 * a bank's: rec and bank are the two S (0: none); what names the bank's side
 * in the message ("the first record's", "the bank's"). */
int cli_feat_standardize_same(const glad_record *r, double rec, double bank, const char *what);
/* The record's feat_standardize_tail (glad-features --standardize-tail;
 * absent: clip) into *tail (its glad_std_tails_parse code: a glad_std_tail
 * when one); another string is the record's error, CLI_FAIL. */
int cli_feat_std_tail(const glad_record *r, int *tail);
/* Refuse (the record's error, CLI_FAIL) a tail other than the bank's (what as above). */
int cli_feat_std_tail_same(const glad_record *r, int rec, int bank, const char *what);
/* Refuse (the record's error, CLI_FAIL) a layer name L~T (glad_bank_layer_tail)
 * whose T is not a further tail of code (the record's cli_feat_std_tail): a
 * stale tensor of an earlier glad-features run, not this record's features. */
int cli_layer_tail_listed(const glad_record *r, const char *layer, int code);
/* The two paths (NULL or "-" = stdin / stdout) are the same regular file. */
int cli_same_file(const char *in, const char *out);
/* Open input/output streams and pass the header through with this tool's
 * invocation appended. Refuses an output that is the input file. On error
 * prints the message and returns CLI_FAIL. */
int cli_open_io(const char *in_path, const char *out_path, int zstd_level,
                int argc, char **argv, glad_reader **rd, glad_writer **wr);
/* A file named by an option (a model, weights) must be a readable regular
 * file; else prints "<path>: No such file or directory" (or "Is a directory",
 * "Permission denied", ...) and returns CLI_FAIL. */
int cli_check_file(const char *path);
/* Print a reader error: "<prog>: error: <path>: <reader msg>" ; returns CLI_FAIL */
int cli_reader_error(glad_reader *rd, const char *path);
/* The end of every program that writes a stream: closes rd, and commits wr
 * when status is CLI_OK (end marker, flush, the output renamed into place;
 * a failure is printed and turns the status into CLI_FAIL) or aborts it
 * otherwise (no end marker: readers see a truncated stream; a temporary is
 * removed and a previous file left as it was). rd, wr may be NULL.
 * Returns the status. */
int cli_finish(int status, glad_reader *rd, glad_writer *wr);

#endif
