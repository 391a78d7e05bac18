/* stream.h - glad tensor streams: a concatenation of msgpack maps, the first
 * a header {"glad":1,"history":[...]}, then one map per record. Tensors are
 * encoded as msgpack-numpy ndarrays. zstd input is detected by magic.
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
