/* stream.c - reading and writing glad streams. The reader frames each msgpack
 * object itself before decoding it, so a declared length is never trusted:
 * bytes are buffered only as they actually arrive, and a container's element
 * count must be covered by bytes present before msgpack-c allocates for it.
 * zstd input is recognised by its magic; output is compressed on request.
 * Every failure sets the thread's error detail (glad_fail), prefixed with
 * "byte N, record M: " by the reader. The writer goes through a glad_outfile
 * and writes the end marker only on a successful close. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <msgpack.h>
#include <zstd.h>
#include <zstd_errors.h>
#include "io/outfile.h"
#include "io/stream.h"

/* Read granularity: at least GLAD_STREAM_CHUNK free bytes per read into the
 * record buffer, and the compressed input in ZSTD_DStreamInSize() pieces. The
 * fuzz build (tests/fuzz) defines both small so records straddle reads. */
#ifndef GLAD_STREAM_CHUNK
#define GLAD_STREAM_CHUNK 65536
#endif
#ifndef GLAD_STREAM_ZCHUNK
#define GLAD_STREAM_ZCHUNK ZSTD_DStreamInSize()
#endif

/* ------------------------------------------------------------------ source */

typedef struct {
    FILE *f;
    int close_file, zstd, eof;
    size_t zpending;      /* nonzero while a zstd frame is unfinished */
    ZSTD_DStream *ds;
    uint8_t *in;          /* compressed (or pre-read plain) bytes */
    size_t in_len, in_pos, in_cap;
} source;

static int read_error(void) { return glad_fail(GLAD_EIO, "read error: %s", strerror(errno ? errno : EIO)); }

static int src_fill_in(source *s)
{
    if (s->in_pos < s->in_len) return 0;
    s->in_pos = 0;
    errno = 0;
    s->in_len = fread(s->in, 1, s->in_cap, s->f);
    if (s->in_len == 0) {
        if (ferror(s->f)) return read_error();
        s->eof = 1;
    }
    return 0;
}

/* zstd's default limit on a frame's window (ZSTD_WINDOWLOG_LIMIT_DEFAULT, in
 * its unstable API): 128 MiB. A larger window is a declared size the decoder
 * would allocate before any data arrives, so it is refused, not raised. */
#define ZSTD_WINDOW_LOG_DEFAULT 27

/* What a zstd error code means for the user: memory, a window this reader
 * refuses to allocate, or corrupt data. */
static int zstd_fail(size_t r)
{
    switch (ZSTD_getErrorCode(r)) {
    case ZSTD_error_memory_allocation: return glad_fail(GLAD_ENOMEM, "out of memory (zstd)");
    case ZSTD_error_frameParameter_windowTooLarge:
        return glad_fail(GLAD_ERANGE, "the zstd frame needs a decoding window over %d MiB, more than this reader allocates "
                         "(compressed with zstd --long?)", 1 << (ZSTD_WINDOW_LOG_DEFAULT - 20));
    default: return glad_fail(GLAD_EFORMAT, "corrupt zstd data (%s)", ZSTD_getErrorName(r));
    }
}

/* Read up to cap bytes; returns bytes read (0 at end) or a negative error
 * with the detail set. */
static long src_read(source *s, uint8_t *dst, size_t cap)
{
    if (!s->zstd) {
        if (s->in_pos < s->in_len) {
            size_t k = s->in_len - s->in_pos < cap ? s->in_len - s->in_pos : cap;
            memcpy(dst, s->in + s->in_pos, k);
            s->in_pos += k;
            return (long)k;
        }
        errno = 0;
        size_t k = fread(dst, 1, cap, s->f);
        if (k == 0 && ferror(s->f)) return read_error();
        return (long)k;
    }
    ZSTD_outBuffer out = {dst, cap, 0};
    while (out.pos == 0) {
        GLAD_TRY(src_fill_in(s));
        if (s->eof && s->in_pos >= s->in_len) {
            if (s->zpending) return glad_fail(GLAD_EFORMAT, "truncated zstd frame");
            break;
        }
        ZSTD_inBuffer in = {s->in, s->in_len, s->in_pos};
        size_t r = ZSTD_decompressStream(s->ds, &out, &in);
        s->in_pos = in.pos;
        if (ZSTD_isError(r)) return zstd_fail(r);
        s->zpending = r;
    }
    return (long)out.pos;
}

/* ------------------------------------------------------------------ reader */

struct glad_reader {
    source src;
    uint8_t *buf;
    size_t len, pos, cap;   /* valid bytes [pos, len) */
    uint64_t consumed;      /* stream bytes before buf[pos] */
    long index;
    int src_eof;
    glad_record header;
    glad_record pending;    /* first record when the stream had no header */
    int has_pending;
    int want_trailer;       /* the current header promised an end marker */
    long since_header;      /* records since that header */
    int trailer_seen;
};

/* Prefix this thread's error detail with prefix (the detail is copied first:
 * glad_fail formats into it). An empty detail becomes the code's text. */
static int detail_prefix(int rc, const char *prefix)
{
    char d[1024];
    snprintf(d, sizeof d, "%s", glad_error_detail());
    return glad_fail(rc, "%s%s", prefix, d[0] ? d : glad_strerror(rc));
}

/* Where in the stream: "byte 1234, record 5: <detail>" */
static int rd_at(const glad_reader *rd, int rc, uint64_t at)
{
    char where[64];
    snprintf(where, sizeof where, "byte %llu, record %ld: ", (unsigned long long)at, rd->index);
    return detail_prefix(rc, where);
}
#define rd_fail(rd, rc, at, ...) (glad_fail((rc), __VA_ARGS__), rd_at((rd), (rc), (at)))

/* Make at least `need` bytes available from pos. Returns 1 if they are, 0 if
 * the stream ended first, <0 on error (detail set). Grows the buffer only as
 * data arrives, and never past what the largest record needs. */
static int rd_need(glad_reader *rd, size_t need)
{
    while (rd->len - rd->pos < need) {
        if (rd->src_eof) return 0;
        if (rd->pos > 0) {   /* compact */
            memmove(rd->buf, rd->buf + rd->pos, rd->len - rd->pos);
            rd->len -= rd->pos;
            rd->pos = 0;
        }
        if (rd->cap - rd->len < GLAD_STREAM_CHUNK) {
            const size_t top = (size_t)GLAD_MAX_RECORD_BYTES + 2 * (size_t)GLAD_STREAM_CHUNK;
            size_t ncap = rd->cap ? rd->cap * 2 : 2 * (size_t)GLAD_STREAM_CHUNK;
            if (ncap > top) ncap = top;   /* need <= the record limit, so len < top - 2 chunks */
            uint8_t *nb = realloc(rd->buf, ncap);
            if (!nb) return glad_fail(GLAD_ENOMEM, "out of memory (buffering a record of over %zu bytes)", rd->cap);
            rd->buf = nb;
            rd->cap = ncap;
        }
        long k = src_read(&rd->src, rd->buf + rd->len, rd->cap - rd->len);
        if (k < 0) return (int)k;
        if (k == 0) rd->src_eof = 1;
        rd->len += (size_t)k;
    }
    return 1;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* msgpack-c keeps nested containers on a fixed stack of this depth and fails
 * (as "out of memory") deeper; the framer refuses such nesting by name. */
#define MAX_NESTING 32

/* Length in bytes of the next msgpack object at pos (0 if clean end). */
static int rd_frame(glad_reader *rd, size_t *olen)
{
    uint64_t remaining = 1;           /* objects still to skip, all levels */
    uint64_t left[MAX_NESTING + 1];   /* objects still to skip per open container */
    int depth = 0;
    size_t off = 0;
    int r;
    left[0] = 1;
    while (remaining) {
        while (left[depth] == 0) depth--;
        r = rd_need(rd, off + 1);
        if (r < 0) return rd_at(rd, r, rd->consumed + off);
        if (r == 0) {
            if (off == 0) { *olen = 0; return 0; }
            return rd_fail(rd, GLAD_EFORMAT, rd->consumed + off, "truncated stream (record ends early)");
        }
        const uint8_t b = rd->buf[rd->pos + off];
        if (off == 0 && !((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf))
            return rd_fail(rd, GLAD_EFORMAT, rd->consumed, "not a msgpack map (first byte 0x%02x)", b);
        int hs = 1;               /* header bytes */
        int lenbytes = 0;         /* size of a length field after the type byte */
        uint64_t payload = 0, children = 0;
        int extra = 0;            /* ext type byte */
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) hs = 1;
        else if (b <= 0x8f) children = 2u * (b & 0x0f);
        else if (b <= 0x9f) children = b & 0x0f;
        else if (b <= 0xbf) payload = b & 0x1f;
        else switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break;
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; extra = 1; break;
            case 0xc8: lenbytes = 2; extra = 1; break;
            case 0xc9: lenbytes = 4; extra = 1; break;
            case 0xca: hs = 5; break;
            case 0xcb: hs = 9; break;
            case 0xcc: case 0xd0: hs = 2; break;
            case 0xcd: case 0xd1: hs = 3; break;
            case 0xce: case 0xd2: hs = 5; break;
            case 0xcf: case 0xd3: hs = 9; break;
            case 0xd4: hs = 2; payload = 1; break;
            case 0xd5: hs = 2; payload = 2; break;
            case 0xd6: hs = 2; payload = 4; break;
            case 0xd7: hs = 2; payload = 8; break;
            case 0xd8: hs = 2; payload = 16; break;
            case 0xdc: case 0xde: lenbytes = 2; break;
            case 0xdd: case 0xdf: lenbytes = 4; break;
            default: return rd_fail(rd, GLAD_EFORMAT, rd->consumed + off, "invalid msgpack byte 0x%02x", b);
        }
        if (lenbytes) {
            hs = 1 + lenbytes + extra;
            r = rd_need(rd, off + (size_t)hs);
            if (r < 0) return rd_at(rd, r, rd->consumed + off);
            if (r == 0) return rd_fail(rd, GLAD_EFORMAT, rd->consumed + off, "truncated stream (in a length field)");
            uint64_t n = be(rd->buf + rd->pos + off + 1, lenbytes);
            if (b == 0xdc || b == 0xdd) children = n;
            else if (b == 0xde || b == 0xdf) children = 2 * n;
            else payload = n;
        }
        uint64_t end = (uint64_t)off + (uint64_t)hs + payload;
        /* every pending object needs at least one more byte */
        if (end > GLAD_MAX_RECORD_BYTES || children > GLAD_MAX_RECORD_BYTES - end ||
            remaining - 1 + children > GLAD_MAX_RECORD_BYTES - end)
            return rd_fail(rd, GLAD_ERANGE, rd->consumed + off, "declared size %llu too large (a record may have at most %llu bytes)",
                           (unsigned long long)(payload + children), (unsigned long long)GLAD_MAX_RECORD_BYTES);
        int container = (b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf);
        if (container && depth == MAX_NESTING)   /* msgpack-c checks even empty ones */
            return rd_fail(rd, GLAD_EFORMAT, rd->consumed + off, "values nested deeper than %d levels", MAX_NESTING);
        left[depth]--;
        if (children) left[++depth] = children;
        r = rd_need(rd, (size_t)end);
        if (r < 0) return rd_at(rd, r, rd->consumed + off);
        if (r == 0)
            return rd_fail(rd, GLAD_EFORMAT, rd->consumed + off,
                           "truncated stream (a value declares %llu bytes, only %llu remain)",
                           (unsigned long long)payload, (unsigned long long)(rd->len - rd->pos - off - hs));
        off = (size_t)end;
        remaining = remaining - 1 + children;
    }
    *olen = off;
    return 1;
}

static int key_is(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    if (k->type == MSGPACK_OBJECT_STR) return k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
    if (k->type == MSGPACK_OBJECT_BIN) return k->via.bin.size == n && memcmp(k->via.bin.ptr, s, n) == 0;
    return 0;
}

static const msgpack_object *obj_get(const msgpack_object *m, const char *key)
{
    for (uint32_t i = 0; i < m->via.map.size; i++)
        if (key_is(&m->via.map.ptr[i].key, key)) return &m->via.map.ptr[i].val;
    return NULL;
}

/* Is this map a msgpack-numpy ndarray?  {nd: true, type, kind, shape, data} */
static int is_ndarray(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_MAP) return 0;
    const msgpack_object *nd = obj_get(o, "nd");
    return nd && nd->type == MSGPACK_OBJECT_BOOLEAN && nd->via.boolean && obj_get(o, "data");
}

/* The detail is set on every failure below (glad_fail). */
static int decode_tensor(const msgpack_object *o, glad_tensor *t)
{
    const msgpack_object *ty = obj_get(o, "type"), *kind = obj_get(o, "kind"), *sh = obj_get(o, "shape"),
                         *data = obj_get(o, "data");
    const char *tp = NULL, *dp = NULL;
    size_t tl = 0, dl = 0;
    if (ty && ty->type == MSGPACK_OBJECT_STR) { tp = ty->via.str.ptr; tl = ty->via.str.size; }
    else if (ty && ty->type == MSGPACK_OBJECT_BIN) { tp = ty->via.bin.ptr; tl = ty->via.bin.size; }
    if (!tp) return glad_fail(GLAD_EFORMAT, "ndarray without a dtype string");
    if (kind && ((kind->type == MSGPACK_OBJECT_BIN && kind->via.bin.size) || (kind->type == MSGPACK_OBJECT_STR && kind->via.str.size)))
        return glad_fail(GLAD_EUNSUPPORTED, "structured (void) ndarray not supported");
    glad_dtype dt;
    int rc = glad_dtype_parse(tp, tl, &dt);
    if (rc) return glad_fail(rc, "unsupported dtype '%.*s'", (int)(tl < 16 ? tl : 16), tp);
    if (!sh || sh->type != MSGPACK_OBJECT_ARRAY || sh->via.array.size > GLAD_MAX_DIMS)
        return glad_fail(GLAD_EFORMAT, "ndarray shape missing or with more than %d dims", GLAD_MAX_DIMS);
    int64_t shape[GLAD_MAX_DIMS];
    int nd = (int)sh->via.array.size;
    for (int i = 0; i < nd; i++) {
        const msgpack_object *d = &sh->via.array.ptr[i];
        if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 > (uint64_t)INT64_MAX)
            return glad_fail(GLAD_EFORMAT, "ndarray shape entry %d is not a non-negative integer", i);
        shape[i] = (int64_t)d->via.u64;
    }
    size_t numel;
    if (glad_tensor_numel_checked(nd, shape, dt, &numel)) return glad_fail(GLAD_ERANGE, "ndarray shape declares an absurd size");
    if (data->type == MSGPACK_OBJECT_BIN) { dp = data->via.bin.ptr; dl = data->via.bin.size; }
    else if (data->type == MSGPACK_OBJECT_STR) { dp = data->via.str.ptr; dl = data->via.str.size; }
    else return glad_fail(GLAD_EFORMAT, "ndarray data is not bytes");
    if (dl != numel * glad_dtype_size(dt))
        return glad_fail(GLAD_EFORMAT, "ndarray data has %zu bytes, shape and dtype %s need %zu", dl, glad_dtype_str(dt),
                         numel * glad_dtype_size(dt));
    if ((rc = glad_tensor_alloc(t, dt, nd, shape)) < 0) return glad_fail(rc, "%s", glad_strerror(rc));
    if (dl) memcpy(t->data, dp, dl);
    return 0;
}

static int pack_raw(const msgpack_object *o, uint8_t **raw, size_t *n)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *o);
    if (!sb.data) return GLAD_ENOMEM;
    *raw = (uint8_t *)sb.data;   /* sbuffer memory is malloc'd; take it over */
    *n = sb.size;
    return 0;
}

/* Convert a decoded top-level map into a record; on failure the detail says
 * what is wrong ("'image': ndarray data has 8 bytes, ..."). */
static int object_to_record(const msgpack_object *m, glad_record *rec)
{
    glad_record_init(rec);
    glad_error_clear();
    int rc = 0;
    for (uint32_t i = 0; i < m->via.map.size && rc == 0; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        const char *kp;
        size_t kl;
        if (k->type == MSGPACK_OBJECT_STR) { kp = k->via.str.ptr; kl = k->via.str.size; }
        else if (k->type == MSGPACK_OBJECT_BIN) { kp = k->via.bin.ptr; kl = k->via.bin.size; }
        else { rc = glad_fail(GLAD_EFORMAT, "map key %u is not a string", i); break; }
        /* msgpack-c gives an empty string or bin a NULL pointer */
        if (kl > 4096 || (kl && memchr(kp, 0, kl))) { rc = glad_fail(GLAD_EFORMAT, "map key %u is not a valid name", i); break; }
        char key[4097];
        if (kl) memcpy(key, kp, kl);
        key[kl] = 0;
        if (glad_record_find(rec, key)) { rc = glad_fail(GLAD_EFORMAT, "duplicate key '%.100s'", key); break; }
        switch (v->type) {
        case MSGPACK_OBJECT_NIL: {
            glad_field *f;
            rc = glad_record_set_int(rec, key, 0);
            if (!rc) { f = glad_record_find(rec, key); f->kind = GLAD_VAL_NIL; }
            break;
        }
        case MSGPACK_OBJECT_BOOLEAN: rc = glad_record_set_bool(rec, key, v->via.boolean); break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: rc = glad_record_set_int(rec, key, v->via.i64); break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            if (v->via.u64 <= (uint64_t)INT64_MAX) { rc = glad_record_set_int(rec, key, (int64_t)v->via.u64); break; }
            goto raw;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            rc = glad_record_set_f64(rec, key, v->via.f64);
            if (!rc) glad_record_find(rec, key)->f32 = v->type == MSGPACK_OBJECT_FLOAT32;
            break;
        case MSGPACK_OBJECT_STR: {
            /* a string field is a C string; one with a NUL byte inside is
             * kept verbatim as raw msgpack (passed through, not readable) */
            if (v->via.str.size && memchr(v->via.str.ptr, 0, v->via.str.size)) goto raw;
            char *s = malloc(v->via.str.size + 1);
            if (!s) { rc = GLAD_ENOMEM; break; }
            if (v->via.str.size) memcpy(s, v->via.str.ptr, v->via.str.size);   /* "" may have a NULL pointer */
            s[v->via.str.size] = 0;
            rc = glad_record_set_str(rec, key, s);
            if (!rc) glad_record_find(rec, key)->n = v->via.str.size;
            free(s);
            break;
        }
        case MSGPACK_OBJECT_MAP:
            if (is_ndarray(v)) {
                glad_tensor t;
                char prefix[128];
                rc = decode_tensor(v, &t);
                snprintf(prefix, sizeof prefix, "'%.100s': ", key);
                if (rc) detail_prefix(rc, prefix);
                else rc = glad_record_set_tensor(rec, key, &t);
                break;
            }
            /* fall through - other maps (numpy scalars among them) stay raw */
        default:
        raw: {
            uint8_t *r;
            size_t n;
            rc = pack_raw(v, &r, &n);
            if (!rc) { rc = glad_record_set_raw(rec, key, r, n); free(r); }
        }
        }
    }
    if (rc) {
        if (!glad_error_detail()[0]) glad_fail(rc, "%s", glad_strerror(rc));
        glad_record_free(rec);
    }
    return rc;
}

int glad_record_decode(const uint8_t *buf, size_t len, glad_record *rec)
{
    /* framed first, as the reader does, so no declared count is trusted
     * before msgpack-c allocates for it: a reader over these bytes only */
    glad_reader fr;
    memset(&fr, 0, sizeof fr);
    fr.buf = (uint8_t *)buf;
    fr.len = len;
    fr.src_eof = 1;
    size_t n = 0;
    int rc = rd_frame(&fr, &n);
    if (rc <= 0) return rc < 0 ? rc : glad_fail(GLAD_EFORMAT, "truncated msgpack object");
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&up, (const char *)buf, n, &off);
    if (ur == MSGPACK_UNPACK_SUCCESS && up.data.type == MSGPACK_OBJECT_MAP) rc = object_to_record(&up.data, rec);
    else if (ur == MSGPACK_UNPACK_NOMEM_ERROR) rc = glad_fail(GLAD_ENOMEM, "out of memory (or values nested deeper than %d levels)", MAX_NESTING);
    else rc = glad_fail(GLAD_EFORMAT, "not a msgpack map");
    msgpack_unpacked_destroy(&up);
    return rc;
}

/* Read and decode the next map (header or record). 1 = got one, 0 = end. */
static int rd_object(glad_reader *rd, glad_record *rec)
{
    size_t n = 0;
    int r = rd_frame(rd, &n);
    if (r <= 0) return r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc;
    msgpack_unpack_return ur = msgpack_unpack_next(&up, (const char *)rd->buf + rd->pos, n, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR)   /* the framer refused deeper nesting already */
        rc = rd_fail(rd, GLAD_ENOMEM, rd->consumed, "out of memory");
    else if (ur != MSGPACK_UNPACK_SUCCESS || off != n || up.data.type != MSGPACK_OBJECT_MAP)
        rc = rd_fail(rd, GLAD_EFORMAT, rd->consumed, "malformed msgpack map");
    else {
        rc = object_to_record(&up.data, rec);
        if (rc) {
            char idbuf[128] = "";
            const msgpack_object *id = obj_get(&up.data, "id");
            if (id && id->type == MSGPACK_OBJECT_STR)
                snprintf(idbuf, sizeof idbuf, "record '%.*s': ", (int)(id->via.str.size < 100 ? id->via.str.size : 100), id->via.str.ptr);
            detail_prefix(rc, idbuf);
            rd_at(rd, rc, rd->consumed);
        }
    }
    msgpack_unpacked_destroy(&up);
    rd->pos += n;
    rd->consumed += n;
    return rc < 0 ? rc : 1;
}

static int is_header(const glad_record *r) { return glad_record_find(r, "glad") != NULL; }
static int is_trailer(const glad_record *r) { return glad_record_find(r, "glad_end") != NULL; }

static int header_wants_trailer(const glad_record *h)
{
    int64_t v;
    return glad_record_get_int(h, "trailer", &v) == 0 && v != 0;
}

/* A header or an end marker met while reading; 0 ok, <0 a broken stream */
static int rd_meta(glad_reader *rd, const glad_record *m)
{
    if (is_header(m)) {
        if (rd->want_trailer && !rd->trailer_seen)
            return rd_fail(rd, GLAD_EFORMAT, rd->consumed, "a new header before the previous stream's end marker (truncated shard)");
        rd->want_trailer = header_wants_trailer(m);
        rd->since_header = 0;
        rd->trailer_seen = 0;
        return 0;
    }
    int64_t n = -1;
    if (glad_record_get_int(m, "glad_end", &n) || n != rd->since_header)
        return rd_fail(rd, GLAD_EFORMAT, rd->consumed, "end marker counts %lld records, %ld were read (records lost)",
                       (long long)n, rd->since_header);
    rd->trailer_seen = 1;
    return 0;
}

int glad_reader_open_file(glad_reader **out, FILE *f, int close_file)
{
    *out = NULL;
    glad_reader *rd = calloc(1, sizeof *rd);
    if (!rd) return glad_fail(GLAD_ENOMEM, "out of memory");
    rd->src.f = f;
    rd->src.close_file = close_file;
    rd->src.in_cap = GLAD_STREAM_ZCHUNK;
    rd->src.in = malloc(rd->src.in_cap);
    int rc = GLAD_ENOMEM;
    if (!rd->src.in) goto fail;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) { rc = glad_fail(GLAD_EIO, "%s", strerror(EISDIR)); goto fail; }
    /* sniff the zstd magic 28 b5 2f fd */
    errno = 0;
    while (rd->src.in_len < 4) {
        size_t k = fread(rd->src.in + rd->src.in_len, 1, 4 - rd->src.in_len, f);
        if (k == 0) break;
        rd->src.in_len += k;
    }
    if (ferror(f)) { rc = read_error(); goto fail; }
    if (rd->src.in_len == 4 && memcmp(rd->src.in, "\x28\xb5\x2f\xfd", 4) == 0) {
        rd->src.zstd = 1;
        rd->src.zpending = 1;
        rd->src.ds = ZSTD_createDStream();
        if (!rd->src.ds) goto fail;
        ZSTD_initDStream(rd->src.ds);
    }
    if ((rc = glad_header_init(&rd->header)) < 0) goto fail;
    glad_record first;
    glad_record_init(&first);
    rc = rd_object(rd, &first);
    /* a failure after the file was opened leaves *out set (see stream.h) */
    if (rc == 0) rc = glad_fail(GLAD_EFORMAT, "empty input, not a glad stream");
    if (rc < 0) { *out = rd; return rc; }
    if (is_header(&first)) {
        rd_meta(rd, &first);
        glad_record_free(&rd->header);
        rd->header = first;
    } else {   /* no header: an empty one, promising no end marker */
        glad_record_remove(&rd->header, "trailer");
        rd->pending = first;
        rd->has_pending = 1;
        rd->since_header = 1;
    }
    *out = rd;
    return 0;
fail:
    if (rc == GLAD_ENOMEM) glad_fail(rc, "out of memory");
    glad_reader_close(rd);
    return rc;
}

int glad_reader_open(glad_reader **rd, const char *path)
{
    *rd = NULL;
    if (!path || strcmp(path, "-") == 0) return glad_reader_open_file(rd, stdin, 0);
    FILE *f = fopen(path, "rb");
    if (!f) return glad_fail(GLAD_EIO, "%s", strerror(errno));
    return glad_reader_open_file(rd, f, 1);
}

const glad_record *glad_reader_header(const glad_reader *rd) { return &rd->header; }

int glad_reader_next(glad_reader *rd, glad_record *rec)
{
    glad_record_free(rec);
    if (rd->has_pending) {   /* hand the first record over: the reader keeps no pointer to it */
        *rec = rd->pending;
        glad_record_init(&rd->pending);
        rd->has_pending = 0;
        rd->index++;
        return 1;
    }
    for (;;) {
        int r = rd_object(rd, rec);
        if (r < 0) return r;
        if (r == 0) {
            if (rd->want_trailer && !rd->trailer_seen)
                return rd_fail(rd, GLAD_EFORMAT, rd->consumed, "truncated stream (it ends without its end marker)");
            return 0;
        }
        if (is_header(rec) || is_trailer(rec)) {   /* a concatenated shard's header, or an end marker */
            int m = rd_meta(rd, rec);
            glad_record_free(rec);
            if (m < 0) return m;
            continue;
        }
        if (rd->trailer_seen) return rd_fail(rd, GLAD_EFORMAT, rd->consumed, "a record after the end marker");
        rd->since_header++;
        rd->index++;
        return 1;
    }
}

const char *glad_reader_error(const glad_reader *rd) { (void)rd; return glad_error_detail(); }
uint64_t glad_reader_offset(const glad_reader *rd) { return rd->consumed; }
long glad_reader_index(const glad_reader *rd) { return rd->index; }

void glad_reader_close(glad_reader *rd)
{
    if (!rd) return;
    if (rd->src.close_file && rd->src.f) fclose(rd->src.f);
    ZSTD_freeDStream(rd->src.ds);
    free(rd->src.in);
    free(rd->buf);
    glad_record_free(&rd->header);
    glad_record_free(&rd->pending);
    free(rd);
}

int glad_reader_each(const char *path, int (*each)(const glad_record *r, void *arg), void *arg)
{
    const char *name = !path || !strcmp(path, "-") ? "<stdin>" : path;
    glad_reader *rd = NULL;
    int rc = glad_reader_open(&rd, path);
    if (rc < 0) {   /* the reader's detail says why ("No such file or directory", "byte 0: ...") */
        char why[512];
        snprintf(why, sizeof why, "%s", glad_error_detail());
        if (rd) glad_reader_close(rd);
        return glad_fail(rc, "%s: %s", name, why[0] ? why : "invalid stream");
    }
    glad_record r;
    glad_record_init(&r);
    int stop = 0;
    while ((rc = glad_reader_next(rd, &r)) == 1)
        if ((stop = each(&r, arg)) != 0) break;
    if (stop) rc = stop < 0 ? stop : 0;
    else if (rc < 0) {   /* the reader's */
        const char *m = glad_reader_error(rd);
        rc = glad_fail(rc, "%s: %s", name, m && *m ? m : "invalid stream");
    }
    glad_record_free(&r);
    glad_reader_close(rd);
    return rc;
}

/* ------------------------------------------------------------------ writer */

struct glad_writer {
    glad_outfile *of;   /* opened by path: complete-or-untouched output */
    FILE *f;            /* or a caller's FILE (glad_writer_open_file) */
    int close_file, failed;
    int trailer;        /* write {"glad_end": count} at close */
    long count;
    ZSTD_CStream *cs;
    uint8_t *zout;
    size_t zout_cap;
};

static int wr_out(glad_writer *wr, const void *p, size_t n)
{
    if (wr->of) return glad_outfile_write(wr->of, p, n);
    errno = 0;
    if (n && fwrite(p, 1, n, wr->f) != n) return glad_fail(GLAD_EIO, "write error: %s", strerror(errno ? errno : EIO));
    return 0;
}

static int wr_bytes(void *data, const char *buf, size_t len)
{
    glad_writer *wr = data;
    if (wr->failed) return -1;
    if (!wr->cs) {
        if (wr_out(wr, buf, len)) { wr->failed = 1; return -1; }
        return 0;
    }
    ZSTD_inBuffer in = {buf, len, 0};
    while (in.pos < in.size) {
        ZSTD_outBuffer out = {wr->zout, wr->zout_cap, 0};
        size_t r = ZSTD_compressStream2(wr->cs, &out, &in, ZSTD_e_continue);
        if (ZSTD_isError(r)) { glad_fail(GLAD_EIO, "zstd: %s", ZSTD_getErrorName(r)); wr->failed = 1; return -1; }
        if (wr_out(wr, wr->zout, out.pos)) { wr->failed = 1; return -1; }
    }
    return 0;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

static void pack_tensor(msgpack_packer *pk, const glad_tensor *t)
{
    /* exactly msgpack-numpy's encoding: bin keys, in its order */
    msgpack_pack_map(pk, 5);
    pack_bin(pk, "nd", 2); msgpack_pack_true(pk);
    pack_bin(pk, "type", 4);
    const char *ds = glad_dtype_str(t->dtype);
    pack_str(pk, ds, strlen(ds));
    pack_bin(pk, "kind", 4); pack_bin(pk, "", 0);
    pack_bin(pk, "shape", 5);
    msgpack_pack_array(pk, (size_t)t->ndim);
    for (int i = 0; i < t->ndim; i++) msgpack_pack_uint64(pk, (uint64_t)t->shape[i]);
    pack_bin(pk, "data", 4);
    pack_bin(pk, t->data, glad_tensor_nbytes(t));
}

static int pack_record(msgpack_packer *pk, const glad_record *rec)
{
    msgpack_pack_map(pk, (size_t)rec->n);
    for (int i = 0; i < rec->n; i++) {
        const glad_field *f = &rec->f[i];
        pack_str(pk, f->key, strlen(f->key));
        switch (f->kind) {
        case GLAD_VAL_NIL: msgpack_pack_nil(pk); break;
        case GLAD_VAL_BOOL: if (f->i) msgpack_pack_true(pk); else msgpack_pack_false(pk); break;
        case GLAD_VAL_INT: msgpack_pack_int64(pk, f->i); break;
        case GLAD_VAL_FLOAT: if (f->f32) msgpack_pack_float(pk, (float)f->f); else msgpack_pack_double(pk, f->f); break;
        case GLAD_VAL_STR: pack_str(pk, f->s, f->n ? f->n : strlen(f->s)); break;
        case GLAD_VAL_TENSOR: pack_tensor(pk, &f->t); break;
        case GLAD_VAL_RAW: pk->callback(pk->data, (const char *)f->raw, f->n); break;
        }
    }
    return 0;
}

int glad_record_encode(const glad_record *rec, uint8_t **buf, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_record(&pk, rec);
    if (!sb.data) return GLAD_ENOMEM;
    *buf = (uint8_t *)sb.data;
    *len = sb.size;
    return 0;
}

static int writer_new(glad_writer **out, int zstd_level)
{
    glad_writer *wr = calloc(1, sizeof *wr);
    if (!wr) return glad_fail(GLAD_ENOMEM, "out of memory");
    if (zstd_level > 0) {
        wr->cs = ZSTD_createCStream();
        wr->zout_cap = ZSTD_CStreamOutSize();
        wr->zout = malloc(wr->zout_cap);
        if (!wr->cs || !wr->zout) {
            ZSTD_freeCStream(wr->cs);
            free(wr->zout);
            free(wr);
            return glad_fail(GLAD_ENOMEM, "out of memory");
        }
        ZSTD_CCtx_setParameter(wr->cs, ZSTD_c_compressionLevel, zstd_level);
    }
    *out = wr;
    return 0;
}

int glad_writer_open_file(glad_writer **out, FILE *f, int close_file, int zstd_level)
{
    GLAD_TRY(writer_new(out, zstd_level));
    (*out)->f = f;
    (*out)->close_file = close_file;
    return 0;
}

int glad_writer_open(glad_writer **out, const char *path, int zstd_level)
{
    glad_outfile *of;
    GLAD_TRY(glad_outfile_open(&of, path, 0));
    int rc = writer_new(out, zstd_level);
    if (rc) { glad_outfile_abort(of); return rc; }
    (*out)->of = of;
    return 0;
}

static void write_trailer(glad_writer *wr)
{
    glad_record t;
    glad_record_init(&t);
    if (glad_record_set_int(&t, "glad_end", wr->count) == 0) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, wr, wr_bytes);
        pack_record(&pk, &t);
    } else wr->failed = 1;
    glad_record_free(&t);
    wr->trailer = 0;
}

int glad_writer_write(glad_writer *wr, const glad_record *rec)
{
    if (is_header(rec)) {
        if (wr->trailer) write_trailer(wr);   /* a second stream in the same file */
        wr->trailer = header_wants_trailer(rec);
        wr->count = 0;
    } else if (is_trailer(rec)) return 0;   /* end markers are the writer's own */
    else wr->count++;
    msgpack_packer pk;
    msgpack_packer_init(&pk, wr, wr_bytes);
    pack_record(&pk, rec);
    return wr->failed ? GLAD_EIO : 0;
}

static void writer_free(glad_writer *wr)
{
    ZSTD_freeCStream(wr->cs);
    free(wr->zout);
    free(wr);
}

int glad_writer_close(glad_writer *wr)
{
    if (!wr) return 0;
    if (wr->trailer && !wr->failed) write_trailer(wr);
    if (wr->cs && !wr->failed) {
        ZSTD_inBuffer in = {NULL, 0, 0};
        size_t r;
        do {
            ZSTD_outBuffer out = {wr->zout, wr->zout_cap, 0};
            r = ZSTD_compressStream2(wr->cs, &out, &in, ZSTD_e_end);
            if (ZSTD_isError(r)) { glad_fail(GLAD_EIO, "zstd: %s", ZSTD_getErrorName(r)); wr->failed = 1; break; }
            if (wr_out(wr, wr->zout, out.pos)) { wr->failed = 1; break; }
        } while (r != 0);
    }
    int rc = 0;
    if (wr->of) {
        if (wr->failed) { glad_outfile_abort(wr->of); rc = GLAD_EIO; }   /* detail set by the failed write */
        else rc = glad_outfile_commit(wr->of);
    } else {
        errno = 0;
        if (!wr->failed && (fflush(wr->f) != 0 || ferror(wr->f))) { glad_fail(GLAD_EIO, "write error: %s", strerror(errno ? errno : EIO)); wr->failed = 1; }
        if (wr->close_file && fclose(wr->f) != 0 && !wr->failed) { glad_fail(GLAD_EIO, "write error: %s", strerror(errno)); wr->failed = 1; }
        if (wr->failed) rc = GLAD_EIO;
    }
    writer_free(wr);
    return rc;
}

void glad_writer_abort(glad_writer *wr)
{
    if (!wr) return;
    if (wr->of) glad_outfile_abort(wr->of);
    else if (wr->close_file) fclose(wr->f);
    writer_free(wr);
}
