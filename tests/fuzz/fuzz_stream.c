/* fuzz_stream.c - harnesses for the stream reader (io/stream.h):
 *   stream       the bytes as a stream file (plain, or zstd when they start
 *                with its magic) read to the end through an in-memory FILE,
 *                and the same bytes through glad_record_decode;
 *   stream_zstd  the bytes compressed here into one or two zstd frames (the
 *                first byte picks the split), so the reader's zstd source
 *                sees valid frames around arbitrary content.
 * Every record read must survive encode -> decode -> encode byte for byte:
 * what a tool writes back from what it read is stable. */
#include <zstd.h>
#include "fuzz.h"
#include "io/stream.h"

/* encode(rec) == encode(decode(encode(rec))) */
static void stream_check_roundtrip(const glad_record *rec)
{
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (glad_record_encode(rec, &a, &na)) return;
    glad_record back;
    glad_record_init(&back);
    int rc = glad_record_decode(a, na, &back);
    FUZZ_ASSERT(rc == 0);
    if (rc == 0 && glad_record_encode(&back, &b, &nb) == 0) {
        FUZZ_ASSERT(na == nb && memcmp(a, b, na) == 0);
        free(b);
    }
    glad_record_free(&back);
    free(a);
}

static void stream_read_all(FILE *f)
{
    glad_reader *rd = NULL;
    int rc = glad_reader_open_file(&rd, f, 1);
    if (rc < 0) {
        if (rd) { (void)glad_reader_error(rd); glad_reader_close(rd); }
        return;
    }
    glad_history h;
    if (glad_header_history(glad_reader_header(rd), &h) == 0) glad_history_free(&h);
    glad_record rec;
    glad_record_init(&rec);
    while ((rc = glad_reader_next(rd, &rec)) == 1) {
        (void)glad_record_id(&rec);
        stream_check_roundtrip(&rec);
    }
    if (rc < 0) FUZZ_ASSERT(glad_reader_error(rd)[0] != 0);   /* every error says where */
    glad_record_free(&rec);
    glad_reader_close(rd);
}

int fuzz_stream(const uint8_t *d, size_t n)
{
    glad_record rec;
    glad_record_init(&rec);
    if (glad_record_decode(d, n, &rec) == 0) stream_check_roundtrip(&rec);
    glad_record_free(&rec);
    if (n == 0) return 0;
    FILE *f = fmemopen((void *)d, n, "rb");
    if (f) stream_read_all(f);
    return 0;
}

int fuzz_stream_zstd(const uint8_t *d, size_t n)
{
    if (n < 1) return 0;
    size_t split = 1 + (n > 1 ? d[0] % n : 0), cap = 2 * ZSTD_compressBound(n) + 64, z = 0;
    if (split > n) split = n;
    uint8_t *buf = malloc(cap);
    if (!buf) return 0;
    /* frame 1: d[1..split), frame 2: d[split..n) (empty frames are valid too) */
    size_t r = ZSTD_compress(buf, cap, d + 1, split - 1, 1);
    if (!ZSTD_isError(r)) {
        z = r;
        r = ZSTD_compress(buf + z, cap - z, d + split, n - split, 1);
        if (!ZSTD_isError(r)) z += r;
    }
    FILE *f = z ? fmemopen(buf, z, "rb") : NULL;
    if (f) stream_read_all(f);
    free(buf);
    return 0;
}
