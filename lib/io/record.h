/* record.h - the in-memory record: an ordered list of typed fields (tensor,
 * string, int, float, bool, nil, or raw msgpack kept verbatim), its getters
 * and setters, and the stream header with its history. Not the encoder or
 * the reader/writer of streams (stream.h). */
#ifndef GLAD_RECORD_H
#define GLAD_RECORD_H

#include "core/tensor.h"

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
 * get_str returns a pointer owned by the record. get_f64 accepts int, float,
 * bool, a one-element tensor and a numpy scalar (msgpack-numpy's map for
 * np.float32(0.5), kept raw); get_int accepts int, bool, and integral floats
 * and numpy scalars. */
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
/* A header is a record with "glad": 1, "history": [ {tool,version,args}... ]
 * and "trailer": true, the promise that the stream ends with its end marker
 * {"glad_end": N} (written by glad_writer_close, see formats/glad-stream.md).
 * glad_header_init makes an empty one; glad_header_append adds this tool's
 * invocation (args = argv[1..argc-1] joined as an array of strings) and the
 * promise. */
int glad_header_init(glad_record *h);
int glad_header_append(glad_record *h, const char *tool, const char *version, int argc, char **argv);
/* History as parallel arrays (tool, args joined by spaces); caller frees with
 * glad_history_free. */
typedef struct { int n; char **tool; char **version; char **args; } glad_history;
int glad_header_history(const glad_record *h, glad_history *out);
void glad_history_free(glad_history *h);
/* Add a header's history to a list of distinct histories (*n of *cap; the
 * shards of one run carry the same one and are kept once). A header without a
 * usable history adds nothing. 0, or GLAD_ENOMEM. */
int glad_history_collect(glad_history **list, int *n, int *cap, const glad_record *header);

#endif
