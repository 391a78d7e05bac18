/* stream.h - glad tensor streams: a concatenation of msgpack maps, usually
 * first a header {"glad":1,"history":[...],"trailer":true}, then one map per
 * record, then the end marker {"glad_end":N}. Tensors are encoded as
 * msgpack-numpy ndarrays. zstd input is detected by magic.
 * See formats/glad-stream.md. Not an image or dataset reader (image.h,
 * dataset.h) and not a generic msgpack library.
 * The record itself (fields, getters, setters, the header) is record.h.
 *
 * A record is an ordered list of fields. Values the tools understand are
 * decoded (tensor, string, int, float, bool, nil); anything else (arrays,
 * nested maps, bin) is kept as its raw msgpack bytes and written back
 * unchanged, so every tool passes through keys it does not use. */
#ifndef GLAD_STREAM_H
#define GLAD_STREAM_H

#include <stdio.h>
#include "io/record.h"

/* ---- reader ---- */
typedef struct glad_reader glad_reader;
/* Opens path ("-" or NULL = stdin) and reads the first object. A stream
 * that starts with a header has it as header(); one without (plain
 * msgpack-numpy writers) gets an empty header and its first map is the
 * first record. Headers of concatenated streams (shards) met later are
 * merged: records continue. An empty input (0 bytes) is an error, not an
 * empty stream. On failure the detail (glad_error_detail) says why:
 * "No such file or directory", "Is a directory", "byte 0, record 0: ...".
 * A failure after the file was opened (a corrupt first object, an empty
 * input) still sets *rd; close it. */
int glad_reader_open(glad_reader **rd, const char *path);
int glad_reader_open_file(glad_reader **rd, FILE *f, int close_file);
const glad_record *glad_reader_header(const glad_reader *rd);
/* Next record into *rec (which is freed first). Returns 1 when a record was
 * read, 0 at clean end of stream, <0 on error with the detail
 * "byte 1234, record 5: truncated ...". The caller owns every record. */
int glad_reader_next(glad_reader *rd, glad_record *rec);
/* The detail of the reader's last failure: glad_error_detail(), kept so
 * callers can name the reader; read it before the next library call. */
const char *glad_reader_error(const glad_reader *rd);
uint64_t glad_reader_offset(const glad_reader *rd);   /* bytes of (decompressed) stream consumed */
long glad_reader_index(const glad_reader *rd);         /* records returned so far */
void glad_reader_close(glad_reader *rd);
/* Every record of path ("-" or NULL = stdin) through each(r, arg), in
 * order, until it returns nonzero: < 0 stops with that code (and its
 * detail), > 0 stops with 0. A stream that cannot be opened or read fails
 * with the reader's code and the detail "PATH: why" ("<stdin>: ..."); 0 at
 * its clean end. The loop the training-set loaders share. */
int glad_reader_each(const char *path, int (*each)(const glad_record *r, void *arg), void *arg);

/* Maximum size of one encoded record (guards against absurd declared
 * lengths): 4 GiB by default. */
#define GLAD_MAX_RECORD_BYTES ((uint64_t)4 << 30)

/* ---- writer ---- */
typedef struct glad_writer glad_writer;
/* path "-" or NULL = stdout. zstd_level 0 = uncompressed. A path is written
 * as a glad_outfile (outfile.h): a regular file appears, complete, only
 * when glad_writer_close succeeds; a device or FIFO is written through. */
int glad_writer_open(glad_writer **wr, const char *path, int zstd_level);
int glad_writer_open_file(glad_writer **wr, FILE *f, int close_file, int zstd_level);
int glad_writer_write(glad_writer *wr, const glad_record *rec);  /* header or record */
/* Commit: write the end marker the header promised, finish the zstd frame,
 * flush and check every write, rename the output into place. GLAD_EIO (and
 * the detail) if anything failed; the output is then left without its end
 * marker, so readers reject it. Frees wr. */
int glad_writer_close(glad_writer *wr);
/* Give up (the run failed): no end marker, no zstd end, a temporary output
 * removed (the previous file stays). Frees wr; NULL is a no-op. */
void glad_writer_abort(glad_writer *wr);

/* Encode / decode one record to / from memory (used by tests and tools). */
int glad_record_encode(const glad_record *rec, uint8_t **buf, size_t *len);
int glad_record_decode(const uint8_t *buf, size_t len, glad_record *rec);

#endif
