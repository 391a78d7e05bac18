/* stream.h - glad tensor streams: a concatenation of msgpack maps, the first
 * a header {"glad":1,"history":[...]}, then one map per record. Tensors are
 * encoded as msgpack-numpy ndarrays. zstd input is detected by magic.
 * See formats/glad-stream.md. Not an image or dataset reader (image.h,
 * dataset.h) and not a generic msgpack library.
 *
 * A record is an ordered list of fields. Values the tools understand are
 * decoded (tensor, string, int, float, bool, nil); anything else (arrays,
 * nested maps, bin) is kept as its raw msgpack bytes and written back
 * unchanged, so every tool passes through keys it does not use. */
#ifndef GLAD_STREAM_H
#define GLAD_STREAM_H

#include <stdio.h>
#include "tensor.h"

typedef enum {
    GLAD_VAL_NIL, GLAD_VAL_BOOL, GLAD_VAL_INT, GLAD_VAL_FLOAT, GLAD_VAL_STR,
    GLAD_VAL_TENSOR, GLAD_VAL_RAW
} glad_valkind;

typedef struct {
    char *key;            /* nul-terminated, owned */
    glad_valkind kind;
    int64_t i;            /* INT, BOOL */
    double f;             /* FLOAT */
    int f32;              /* FLOAT: was (and is written back as) float32 */
    char *s;              /* STR: nul-terminated copy, owned (len in n) */
    size_t n;             /* STR length, RAW length */
    uint8_t *raw;         /* RAW: msgpack bytes, owned */
    glad_tensor t;        /* TENSOR, owned */
} glad_field;

typedef struct {
    glad_field *f;
    int n, cap;
} glad_record;

void glad_record_init(glad_record *r);
void glad_record_free(glad_record *r);
int glad_record_copy(glad_record *dst, const glad_record *src);

glad_field *glad_record_find(const glad_record *r, const char *key);
int glad_record_remove(glad_record *r, const char *key);   /* 0 or GLAD_ENOTFOUND */

/* Getters: GLAD_ENOTFOUND when absent, GLAD_EDTYPE when of another kind.
 * get_str returns a pointer owned by the record. get_f64 accepts int/float/bool;
 * get_int accepts int/bool and integral floats. */
int glad_record_get_str(const glad_record *r, const char *key, const char **s);
int glad_record_get_int(const glad_record *r, const char *key, int64_t *v);
int glad_record_get_f64(const glad_record *r, const char *key, double *v);
int glad_record_get_tensor(const glad_record *r, const char *key, const glad_tensor **t);
/* The record id, or "?" when missing (for messages). */
const char *glad_record_id(const glad_record *r);

/* Setters replace an existing field of that key in place (keeping its
 * position) or append. set_tensor takes ownership of *t (left empty). */
int glad_record_set_str(glad_record *r, const char *key, const char *s);
int glad_record_set_int(glad_record *r, const char *key, int64_t v);
int glad_record_set_f64(glad_record *r, const char *key, double v);
int glad_record_set_bool(glad_record *r, const char *key, int v);
int glad_record_set_tensor(glad_record *r, const char *key, glad_tensor *t);
int glad_record_set_raw(glad_record *r, const char *key, const uint8_t *raw, size_t n);

/* ---- header ---- */
/* A header is a record with "glad": 1 and "history": [ {tool,version,args}... ].
 * glad_header_init makes an empty one; glad_header_append adds this tool's
 * invocation (args = argv[1..argc-1] joined as an array of strings). */
int glad_header_init(glad_record *h);
int glad_header_append(glad_record *h, const char *tool, const char *version, int argc, char **argv);
/* History as parallel arrays (tool, args joined by spaces); caller frees with
 * glad_history_free. */
typedef struct { int n; char **tool; char **version; char **args; } glad_history;
int glad_header_history(const glad_record *h, glad_history *out);
void glad_history_free(glad_history *h);

/* ---- reader ---- */
typedef struct glad_reader glad_reader;
/* Opens path ("-" or NULL = stdin). Reads the header if the stream starts
 * with one (a stream without a header is accepted; header() is then an
 * empty header). Headers of concatenated streams (shards) met later are
 * merged: their history is ignored if identical to the first, and records
 * continue. */
/* On a failure after the file was opened (e.g. a corrupt first object), *rd
 * is still set so glad_reader_error can be read; close it afterwards. */
int glad_reader_open(glad_reader **rd, const char *path);
int glad_reader_open_file(glad_reader **rd, FILE *f, int close_file);
const glad_record *glad_reader_header(const glad_reader *rd);
/* Next record into *rec (which is freed first). Returns 1 when a record was
 * read, 0 at clean end of stream, <0 on error (see glad_reader_error). */
int glad_reader_next(glad_reader *rd, glad_record *rec);
/* Description of the last error: "byte 1234, record 5: truncated ..." */
const char *glad_reader_error(const glad_reader *rd);
uint64_t glad_reader_offset(const glad_reader *rd);   /* bytes of (decompressed) stream consumed */
long glad_reader_index(const glad_reader *rd);         /* records returned so far */
void glad_reader_close(glad_reader *rd);

/* Maximum size of one encoded record (guards against absurd declared
 * lengths): 4 GiB by default. */
#define GLAD_MAX_RECORD_BYTES ((uint64_t)4 << 30)

/* ---- writer ---- */
typedef struct glad_writer glad_writer;
/* path "-" or NULL = stdout. zstd_level 0 = uncompressed. */
int glad_writer_open(glad_writer **wr, const char *path, int zstd_level);
int glad_writer_open_file(glad_writer **wr, FILE *f, int close_file, int zstd_level);
int glad_writer_write(glad_writer *wr, const glad_record *rec);  /* header or record */
int glad_writer_close(glad_writer *wr);   /* flushes; returns GLAD_EIO if any write failed */

/* Encode / decode one record to / from memory (used by tests and tools). */
int glad_record_encode(const glad_record *rec, uint8_t **buf, size_t *len);
int glad_record_decode(const uint8_t *buf, size_t len, glad_record *rec);

#endif
