/* test_stream.c - tensors, records, the msgpack-numpy codec, zstd, headers,
 * the reader's defences against truncated and corrupt streams, and outputs
 * that are complete or untouched (outfile, writer commit/abort). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <zstd.h>
#include "check.h"
#include "io/outfile.h"
#include "io/stream.h"
#include "io/safetensors.h"
#include "core/json.h"

static void fill(glad_tensor *t)
{
    uint8_t *p = t->data;
    for (size_t i = 0; i < glad_tensor_nbytes(t); i++) p[i] = (uint8_t)(i * 37 + 11);
    if (t->dtype == GLAD_DT_BOOL) for (size_t i = 0; i < glad_tensor_nbytes(t); i++) p[i] &= 1;
}

static int write_stream(const char *path, int zstd, int nrec)
{
    glad_writer *wr;
    if (glad_writer_open(&wr, path, zstd) < 0) return -1;
    glad_record h;
    glad_header_init(&h);
    char *argv[] = {"prog", "--x", "1"};
    glad_header_append(&h, "test", "0", 3, argv);
    glad_writer_write(wr, &h);
    glad_record_free(&h);
    for (int k = 0; k < nrec; k++) {
        glad_record r;
        glad_record_init(&r);
        char id[32];
        snprintf(id, sizeof id, "c/test/good/%03d", k);
        glad_record_set_str(&r, "id", id);
        glad_record_set_int(&r, "label", k & 1);
        glad_record_set_f64(&r, "score", 0.25 * k);
        for (int d = 0; d < GLAD_DT_COUNT; d++) {
            glad_tensor t;
            glad_tensor_alloc4(&t, (glad_dtype)d, 2, 3, k + 1, -1);
            fill(&t);
            char key[32];
            snprintf(key, sizeof key, "t%d", d);
            glad_record_set_tensor(&r, key, &t);
        }
        uint8_t raw[] = {0x92, 0x01, 0xa1, 'x'};   /* [1, "x"]: an unknown value */
        glad_record_set_raw(&r, "extra", raw, sizeof raw);
        glad_writer_write(wr, &r);
        glad_record_free(&r);
    }
    return glad_writer_close(wr);
}

static int read_all(const char *path, long *n, char *err, size_t errlen)
{
    glad_reader *rd;
    int rc = glad_reader_open(&rd, path);
    if (rc < 0) { snprintf(err, errlen, "%s", glad_error_detail()); glad_reader_close(rd); return rc; }
    glad_record r;
    glad_record_init(&r);
    *n = 0;
    while ((rc = glad_reader_next(rd, &r)) == 1) (*n)++;
    if (rc < 0) snprintf(err, errlen, "%s", glad_reader_error(rd));
    glad_record_free(&r);
    glad_reader_close(rd);
    return rc;
}

static void test_roundtrip(int zstd)
{
    char path[] = "/tmp/glad-test-stream-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(write_stream(path, zstd, 3) == 0);
    glad_reader *rd;
    CHECK(glad_reader_open(&rd, path) == 0);
    glad_history hist;
    CHECK(glad_header_history(glad_reader_header(rd), &hist) == 0);
    CHECK(hist.n == 1 && strcmp(hist.tool[0], "test") == 0 && strcmp(hist.args[0], "--x 1") == 0);
    glad_history_free(&hist);
    glad_record r;
    glad_record_init(&r);
    int k = 0, rc;
    while ((rc = glad_reader_next(rd, &r)) == 1) {
        int64_t lab;
        double sc;
        CHECK(glad_record_get_int(&r, "label", &lab) == 0 && lab == (k & 1));
        CHECK(glad_record_get_f64(&r, "score", &sc) == 0 && sc == 0.25 * k);
        for (int d = 0; d < GLAD_DT_COUNT; d++) {
            char key[32];
            snprintf(key, sizeof key, "t%d", d);
            const glad_tensor *t;
            glad_tensor ref;
            glad_tensor_alloc4(&ref, (glad_dtype)d, 2, 3, k + 1, -1);
            fill(&ref);
            CHECKF(glad_record_get_tensor(&r, key, &t) == 0 && t->dtype == (glad_dtype)d && t->ndim == 3 &&
                   t->shape[2] == k + 1 && memcmp(t->data, ref.data, glad_tensor_nbytes(&ref)) == 0,
                   "dtype %s record %d", glad_dtype_str((glad_dtype)d), k);
            glad_tensor_free(&ref);
        }
        glad_field *f = glad_record_find(&r, "extra");
        CHECK(f && f->kind == GLAD_VAL_RAW && f->n == 4 && memcmp(f->raw, "\x92\x01\xa1x", 4) == 0);
        k++;
    }
    CHECK(rc == 0 && k == 3);
    glad_record_free(&r);
    glad_reader_close(rd);

    /* every truncation is an error, never a crash; the full file is fine */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)size);
    CHECK(fread(buf, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    char tpath[] = "/tmp/glad-test-trunc-XXXXXX";
    fd = mkstemp(tpath);
    close(fd);
    int bad_ok = 1, step = 1;   /* every byte offset */
    for (long cut = 1; cut < size; cut += step) {
        f = fopen(tpath, "wb");
        fwrite(buf, 1, (size_t)cut, f);
        fclose(f);
        long n;
        char err[600] = "";
        int r2 = read_all(tpath, &n, err, sizeof err);
        if (r2 >= 0) { bad_ok = 0; fprintf(stderr, "cut %ld accepted (%ld records)\n", cut, n); break; }
        if (!strstr(err, "byte ")) { bad_ok = 0; fprintf(stderr, "cut %ld: message without offset: %s\n", cut, err); break; }
    }
    CHECKF(bad_ok, "%s truncation", zstd ? "zstd" : "plain");
    remove(tpath);
    free(buf);
    remove(path);
}

/* A record whose tensor data length disagrees with its shape, and one whose
 * shape declares 2^40 elements: both rejected, without a big allocation. */
static void test_bad_tensors(void)
{
    const char *cases[] = {"short", "huge", "notmap", "nan-dtype"};
    for (int c = 0; c < 4; c++) {
        uint8_t b[256];
        size_t n = 0;
#define B(x) (b[n++] = (uint8_t)(x))
#define S(s) do { const char *s_ = (s); size_t l_ = strlen(s_); B(0xa0 | l_); memcpy(b + n, s_, l_); n += l_; } while (0)
#define BIN(s) do { const char *s_ = (s); size_t l_ = strlen(s_); B(0xc4); B(l_); memcpy(b + n, s_, l_); n += l_; } while (0)
        if (c == 2) { B(0x93); B(1); B(2); B(3); }
        else {
            B(0x82); S("id"); S("r0"); S("image");
            B(0x85); BIN("nd"); B(0xc3); BIN("type"); S(c == 3 ? "<x9" : "<f4"); BIN("kind"); B(0xc4); B(0);
            BIN("shape");
            if (c == 1) { B(0x92); B(0xcf); B(0); B(0); B(1); B(0); B(0); B(0); B(0); B(0); B(1); }  /* 2^40 x 1 */
            else { B(0x92); B(2); B(2); }
            BIN("data"); B(0xc4); B(8); for (int i = 0; i < 8; i++) B(0);   /* 8 bytes, 16 needed */
        }
        char path[] = "/tmp/glad-test-bad-XXXXXX";
        int fd = mkstemp(path);
        CHECK(write(fd, b, n) == (ssize_t)n);
        close(fd);
        long cnt;
        char err[600] = "";
        int rc = read_all(path, &cnt, err, sizeof err);
        CHECKF(rc < 0 && strstr(err, "byte ") != NULL, "%s: rc %d err '%s'", cases[c], rc, err);
        if (c < 2) CHECKF(strstr(err, "'r0'") != NULL && strstr(err, "'image'") != NULL, "%s: names record and field: %s", cases[c], err);
        remove(path);
    }
    /* a bin32 that declares 4 GiB in a 10-byte file */
    uint8_t b[] = {0x81, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xf0, 0, 0};
    char path[] = "/tmp/glad-test-big-XXXXXX";
    int fd = mkstemp(path);
    CHECK(write(fd, b, sizeof b) == (ssize_t)sizeof b);
    close(fd);
    long cnt;
    char err[600] = "";
    CHECK(read_all(path, &cnt, err, sizeof err) < 0);
    /* an array32 of 2^32-1 elements in a tiny file: must not allocate for them */
    uint8_t a[] = {0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, a, sizeof a) == (ssize_t)sizeof a);
    close(fd);
    CHECK(read_all(path, &cnt, err, sizeof err) < 0);
    CHECK(read_all("/nonexistent/glad/file", &cnt, err, sizeof err) == GLAD_EIO);
    remove(path);
}

static void test_f16(void)
{
    float vals[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.1f, 1e6f};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        float back = glad_f16_to_f32(glad_f32_to_f16(vals[i]));
        if (vals[i] > 65504.0f) CHECK(back == INFINITY);
        else CHECK_NEAR(back, vals[i], fabs(vals[i]) * 1e-3 + 1e-9);
    }
    /* exhaustive: every finite half converts to float and back exactly */
    int ok = 1;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        if (glad_f32_to_f16(glad_f16_to_f32((uint16_t)h)) != h) { ok = 0; break; }
    }
    CHECK(ok);
}

static void test_safetensors_json(void)
{
    glad_tensor a, b;
    glad_tensor_alloc4(&a, GLAD_DT_F32, 2, 3, -1, -1);
    glad_tensor_alloc4(&b, GLAD_DT_I64, 4, -1, -1, -1);
    for (int i = 0; i < 6; i++) ((float *)a.data)[i] = (float)i * 0.5f;
    for (int i = 0; i < 4; i++) ((int64_t *)b.data)[i] = -i;
    const char *names[] = {"w.a", "w\"b"};
    const glad_tensor *ts[] = {&a, &b};
    const char *mk[] = {"config"}, *mv[] = {"{\"img_size\": 32, \"mults\": [1, 2]}"};
    CHECK(glad_st_save("/tmp/glad-test.safetensors", 2, names, ts, 1, mk, mv) == 0);
    glad_st *st;
    CHECK(glad_st_open(&st, "/tmp/glad-test.safetensors") == 0);
    glad_tensor o;
    CHECK(glad_st_get(st, "w\"b", &o) == 0 && memcmp(o.data, b.data, 32) == 0);
    glad_tensor_free(&o);
    CHECK(glad_st_get_f32(st, "w.a", &o) == 0 && ((float *)o.data)[5] == 2.5f);
    glad_tensor_free(&o);
    glad_json *j;
    CHECK(glad_json_parse(glad_st_meta(st, "config"), strlen(glad_st_meta(st, "config")), &j) == 0);
    CHECK(glad_json_num(glad_json_at(glad_json_get(j, "mults"), 1), 0) == 2);
    glad_json_free(j);
    glad_st_close(st);
    /* corrupt: every truncation fails cleanly */
    FILE *f = fopen("/tmp/glad-test.safetensors", "rb");
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int ok = 1;
    for (size_t cut = 0; cut < n; cut++) {
        f = fopen("/tmp/glad-test-cut.safetensors", "wb");
        fwrite(buf, 1, cut, f);
        fclose(f);
        if (glad_st_open(&st, "/tmp/glad-test-cut.safetensors") == 0) { ok = 0; glad_st_close(st); break; }
    }
    CHECK(ok);
    /* a key given twice is refused (a second __metadata__ once overran the
     * first's arrays at close: tests/fuzz/regress/safetensors/); once, the
     * same header opens */
    const char *hdr[] = {
        "{\"__metadata__\": {\"a\": \"1\"}, \"__metadata__\": {\"a\": \"1\", \"b\": \"2\", \"c\": \"3\"}}",
        "{\"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
        "\"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
        "{\"__metadata__\": {\"a\": \"1\"}, \"t\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}"};
    for (int k = 0; k < 3; k++) {
        size_t hl = strlen(hdr[k]);
        uint8_t m[512] = {0};
        for (int i = 0; i < 8; i++) m[i] = (uint8_t)(hl >> (8 * i));
        memcpy(m + 8, hdr[k], hl);
        int rc = glad_st_open_mem(&st, m, 8 + hl + 4, "twice");
        CHECKF(k < 2 ? rc == GLAD_EFORMAT : rc == 0, "header %d: rc %d", k, rc);
        if (rc == 0) glad_st_close(st);
    }
    /* the writer refuses what the reader would: a name or a metadata key
     * twice, or a tensor called __metadata__; nothing is left behind */
    {
        const glad_tensor *tt[2] = {&a, &a};
        const char *nm2[2] = {"w", "w"}, *nm1[2] = {"w", "__metadata__"}, *mk[2] = {"k", "k"}, *mv[2] = {"1", "2"};
        remove("/tmp/glad-test-dup.safetensors");
        CHECK(glad_st_save("/tmp/glad-test-dup.safetensors", 2, nm2, tt, 0, NULL, NULL) == GLAD_EINVAL);
        CHECK(glad_st_save("/tmp/glad-test-dup.safetensors", 2, nm1, tt, 1, mk, mv) == GLAD_EINVAL);
        CHECK(glad_st_save("/tmp/glad-test-dup.safetensors", 1, nm2, tt, 2, mk, mv) == GLAD_EINVAL);
        CHECK(access("/tmp/glad-test-dup.safetensors", F_OK) != 0);
        CHECK(glad_st_save("/tmp/glad-test-dup.safetensors", 1, nm2, tt, 1, mk, mv) == 0);
        st = NULL;
        int rd = glad_st_open(&st, "/tmp/glad-test-dup.safetensors");
        CHECK(rd == 0 && glad_st_meta(st, "k") && !strcmp(glad_st_meta(st, "k"), "1"));
        if (rd == 0) glad_st_close(st);
        remove("/tmp/glad-test-dup.safetensors");
    }
    remove("/tmp/glad-test-cut.safetensors");
    remove("/tmp/glad-test.safetensors");
    glad_tensor_free(&a);
    glad_tensor_free(&b);
    const char *bad[] = {"{", "[1,2", "{\"a\":}", "\"\\u12\"", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "tru", "1 2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECKF(glad_json_parse(bad[i], strlen(bad[i]), &j) == GLAD_EFORMAT, "%s", bad[i]);
    }
    /* an object giving a key twice is refused, at any size (pairwise up to 8
     * keys, sorted from 9), nested, and when only the escaping differs; the
     * same objects with distinct keys parse */
    char dup[512], uniq[512];
    for (int nk = 2; nk <= 20; nk++) {
        for (int at = 0; at < nk - 1; at += nk / 3 + 1) {
            size_t o = 0, q = 0;
            o += (size_t)snprintf(dup + o, sizeof dup - o, "{\"x\": {");
            q += (size_t)snprintf(uniq + q, sizeof uniq - q, "{\"x\": {");
            for (int k = 0; k < nk; k++) {
                /* key nk-1 repeats key `at` in dup; keys differ in uniq */
                int kk = k == nk - 1 ? at : k;
                o += (size_t)snprintf(dup + o, sizeof dup - o, "%s\"k%d\": %d", k ? ", " : "", kk, k);
                q += (size_t)snprintf(uniq + q, sizeof uniq - q, "%s\"k%d\": %d", k ? ", " : "", k, k);
            }
            snprintf(dup + o, sizeof dup - o, "}}");
            snprintf(uniq + q, sizeof uniq - q, "}}");
            CHECKF(glad_json_parse(dup, strlen(dup), &j) == GLAD_EFORMAT, "%s", dup);
            int ok2 = glad_json_parse(uniq, strlen(uniq), &j) == 0;
            CHECKF(ok2 && glad_json_get(j, "x") && glad_json_get(j, "x")->n == nk, "%s", uniq);
            if (ok2) glad_json_free(j);
        }
    }
    const char *esc2 = "{\"a\": 1, \"\\u0061\": 2}", *sep = "[{\"a\": 1}, {\"a\": 2}]";
    CHECK(glad_json_parse(esc2, strlen(esc2), &j) == GLAD_EFORMAT);
    CHECK(glad_json_parse(sep, strlen(sep), &j) == 0);
    glad_json_free(j);
    /* escaping always gives valid JSON: invalid UTF-8 bytes become \ufffd,
     * controls (C0, DEL, C1) \u00XX, valid multi-byte characters stay */
    char esc[128];
    glad_json_escape(esc, sizeof esc, "a\xff\xc3(\x01\x7f\xc2\x85\xe2\x82\xac\xed\xa0\x80\xf4\x90\x80\x80\xc3\xa9\"z");
    CHECKF(!strcmp(esc, "\"a\\ufffd\\ufffd(\\u0001\\u007f\\u0085\xe2\x82\xac\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\xc3\xa9\\\"z\""), "%s", esc);
    CHECK(glad_json_parse(esc, strlen(esc), &j) == 0 && j->type == GLAD_JSON_STR);
    glad_json_free(j);
    CHECK(glad_json_parse("{\"s\":\"a\\u00e9\\n\"}", 17, &j) == 0 && strcmp(glad_json_str(glad_json_get(j, "s"), ""), "a\xc3\xa9\n") == 0);
    glad_json_free(j);
}

/* C -> Python (msgpack_numpy) -> C: the bytes come back identical. */
static void test_python_interop(void)
{
    if (system("/usr/bin/python3 -c 'import msgpack_numpy' 2>/dev/null") != 0) {
        SKIP("python3-msgpack-numpy not installed: C -> Python -> C interop not tested");
        return;
    }
    const char *a = "/tmp/glad-test-interop-a.msgpack", *b = "/tmp/glad-test-interop-b.msgpack";
    CHECK(write_stream(a, 0, 4) == 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 formats/python/gladstream.py %s %s", a, b);
    CHECK(system(cmd) == 0);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    CHECKF(same, "stream rewritten by Python differs from the C original");
    long n;
    char err[600] = "";
    CHECK(read_all(b, &n, err, sizeof err) == 0 && n == 4);
    remove(a);
    remove(b);
}

static void put_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(p, 1, n, f) == n);
    if (f) fclose(f);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* A stream without a header map (plain msgpack writers): its first map is
 * the first record, handed over to the caller (the reader used to free it
 * again on close). */
static void test_headerless(void)
{
    const char *path = "/tmp/glad-test-noheader.msgpack";
    /* {"id":"a","label":0,"score":0.5} {"id":"b","label":1,"score":0.25} */
    const uint8_t b[] = {0x83, 0xa2, 'i', 'd', 0xa1, 'a', 0xa5, 'l', 'a', 'b', 'e', 'l', 0x00, 0xa5, 's', 'c', 'o', 'r', 'e', 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0,
                         0x83, 0xa2, 'i', 'd', 0xa1, 'b', 0xa5, 'l', 'a', 'b', 'e', 'l', 0x01, 0xa5, 's', 'c', 'o', 'r', 'e', 0xcb, 0x3f, 0xd0, 0, 0, 0, 0, 0, 0};
    put_file(path, b, sizeof b);
    for (int keep = 0; keep < 2; keep++) {   /* records freed by the caller before / after close */
        glad_reader *rd;
        CHECK(glad_reader_open(&rd, path) == 0);
        if (!rd) return;
        CHECK(glad_record_find(glad_reader_header(rd), "glad") && !glad_record_find(glad_reader_header(rd), "trailer"));
        glad_record r[2];
        glad_record_init(&r[0]);
        glad_record_init(&r[1]);
        double sc;
        CHECK(glad_reader_next(rd, &r[0]) == 1 && strcmp(glad_record_id(&r[0]), "a") == 0);
        CHECK(glad_reader_next(rd, &r[1]) == 1 && strcmp(glad_record_id(&r[1]), "b") == 0);
        CHECK(glad_record_get_f64(&r[1], "score", &sc) == 0 && sc == 0.25);
        glad_record last;
        glad_record_init(&last);
        CHECK(glad_reader_next(rd, &last) == 0);
        if (!keep) { glad_record_free(&r[0]); glad_record_free(&r[1]); }
        glad_reader_close(rd);
        CHECK(strcmp(glad_record_id(&r[0]), keep ? "a" : "?") == 0);   /* still the caller's after close */
        glad_record_free(&r[0]);
        glad_record_free(&r[1]);
    }
    /* a header-less stream of one record, closed without reading it */
    put_file(path, b, 28);
    glad_reader *rd;
    CHECK(glad_reader_open(&rd, path) == 0);
    glad_reader_close(rd);
    remove(path);
}

/* Messages: 0 bytes, a missing file, a directory, nesting, zstd problems. */
static void test_reader_messages(void)
{
    const char *path = "/tmp/glad-test-msg.msgpack";
    long n;
    char err[600] = "";
    put_file(path, "", 0);
    CHECKF(read_all(path, &n, err, sizeof err) == GLAD_EFORMAT && strstr(err, "empty input, not a glad stream"), "%s", err);
    CHECKF(read_all("/nonexistent/glad/file", &n, err, sizeof err) == GLAD_EIO && !strcmp(err, "No such file or directory"), "%s", err);
    CHECKF(read_all("/tmp", &n, err, sizeof err) == GLAD_EIO && !strcmp(err, "Is a directory"), "%s", err);
    glad_st *st;
    CHECKF(glad_st_open(&st, "/nonexistent/x.safetensors") == GLAD_EIO &&
           !strcmp(glad_error_detail(), "/nonexistent/x.safetensors: No such file or directory"), "%s", glad_error_detail());
    CHECKF(glad_st_open(&st, "/tmp") == GLAD_EIO && strstr(glad_error_detail(), "Is a directory"), "%s", glad_error_detail());
    /* msgpack-c keeps 32 open containers: {"x": [[...[1]...]]} with 31 arrays
     * (32 containers) decodes, one more is refused by name, not "out of memory" */
    for (int depth = 31; depth <= 33; depth++) {
        uint8_t b[64];
        size_t k = 0;
        b[k++] = 0x81; b[k++] = 0xa1; b[k++] = 'x';
        for (int i = 0; i < depth; i++) b[k++] = 0x91;
        b[k++] = 0x01;
        put_file(path, b, k);
        int rc = read_all(path, &n, err, sizeof err);
        if (depth == 31) CHECKF(rc == 0 && n == 1, "%d arrays: %s", depth, err);
        else CHECKF(rc == GLAD_EFORMAT && strstr(err, "nested deeper than 32 levels"), "%d arrays: %s", depth, err);
    }
    /* an empty container at the limit counts too (msgpack-c refuses it) */
    {
        uint8_t b[64];
        size_t k = 0;
        b[k++] = 0x81; b[k++] = 0xa1; b[k++] = 'x';
        for (int i = 0; i < 31; i++) b[k++] = 0x91;
        b[k++] = 0x90;
        put_file(path, b, k);
        CHECKF(read_all(path, &n, err, sizeof err) == GLAD_EFORMAT && strstr(err, "nested deeper"), "%s", err);
        glad_record r;
        CHECK(glad_record_decode(b, k, &r) < 0);
    }
    /* zstd: corrupt data, and a frame declaring a window of 1 GiB */
    const uint8_t bad[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    put_file(path, bad, sizeof bad);
    CHECKF(read_all(path, &n, err, sizeof err) == GLAD_EFORMAT && strstr(err, "corrupt zstd data") && !strstr(err, "read error"), "%s", err);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 30);
    const char src[] = "\x81\xa4glad\x01";
    uint8_t out[256];
    ZSTD_inBuffer in = {src, sizeof src - 1, 0}, none = {NULL, 0, 0};
    ZSTD_outBuffer o = {out, sizeof out, 0};
    ZSTD_compressStream2(c, &o, &in, ZSTD_e_continue);   /* size unknown at the frame start: the window stays */
    CHECK(ZSTD_compressStream2(c, &o, &none, ZSTD_e_end) == 0);
    ZSTD_freeCCtx(c);
    put_file(path, out, o.pos);
    CHECKF(read_all(path, &n, err, sizeof err) == GLAD_ERANGE && strstr(err, "window over 128 MiB"), "%s", err);
    remove(path);
}

/* np.float32(0.5), np.int64(1), np.bool_(True) as msgpack-numpy writes them:
 * read as numbers, written back unchanged. */
static void test_numpy_scalars(void)
{
    static const char *hex[] = {
        "83c4026e64c2c40474797065a33c6634c40464617461c4040000003f",                  /* f4 0.5 */
        "83c4026e64c2c40474797065a33c6938c40464617461c4080100000000000000",          /* i8 1 */
        "83c4026e64c2c40474797065a37c6231c40464617461c40101",                        /* b1 true */
        "83c4026e64c2c40474797065a33c6632c40464617461c402003e",                      /* f2 1.5 */
        "84a26e64c2a474797065a33c6638a46b696e64a0a464617461a8000000000000f83f",      /* str keys, kind "", f8 1.5 */
        "83c4026e64c2c40474797065a33c6338c40464617461c408000000000000803f",          /* c8: not a number */
    };
    const double want[] = {0.5, 1, 1, 1.5, 1.5, 0};
    for (int i = 0; i < 6; i++) {
        uint8_t b[128], v[64];
        size_t k = 0, vn = strlen(hex[i]) / 2;
        for (size_t j = 0; j < vn; j++) sscanf(hex[i] + 2 * j, "%2hhx", &v[j]);
        b[k++] = 0x82; b[k++] = 0xa2; b[k++] = 'i'; b[k++] = 'd'; b[k++] = 0xa1; b[k++] = 'a';
        b[k++] = 0xa5; memcpy(b + k, "score", 5); k += 5;
        memcpy(b + k, v, vn); k += vn;
        glad_record r;
        CHECK(glad_record_decode(b, k, &r) == 0);
        double x = -1;
        int64_t iv = -1;
        int rc = glad_record_get_f64(&r, "score", &x);
        if (i < 5) CHECKF(rc == 0 && x == want[i], "scalar %d: rc %d x %g", i, rc, x);
        else CHECKF(rc == GLAD_EDTYPE, "complex scalar: rc %d", rc);
        rc = glad_record_get_int(&r, "score", &iv);
        if (i == 1 || i == 2) CHECKF(rc == 0 && iv == 1, "scalar %d as int: rc %d", i, rc);
        else CHECKF(rc == GLAD_EDTYPE, "scalar %d as int: rc %d", i, rc);
        uint8_t *e;
        size_t en;
        CHECK(glad_record_encode(&r, &e, &en) == 0 && en == k && memcmp(e, b, k) == 0);
        free(e);
        glad_record_free(&r);
    }
}

/* The writer: the end marker only on a successful close; abort leaves a
 * previous file untouched and no temporary behind; a device is written
 * through and its errors reported. */
static void test_writer_outcomes(void)
{
    const char *dir = "/tmp/glad-test-out";
    char path[256], cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/s.msgpack", dir);
    CHECK(write_stream(path, 0, 2) == 0);
    long size = file_size(path), n;
    char err[600] = "";
    CHECK(read_all(path, &n, err, sizeof err) == 0 && n == 2);
    for (int zstd = 0; zstd <= 3; zstd += 3) {
        glad_writer *wr;
        CHECK(glad_writer_open(&wr, path, zstd) == 0);
        glad_record h, r;
        glad_header_init(&h);
        glad_record_init(&r);
        glad_record_set_str(&r, "id", "x");
        CHECK(glad_writer_write(wr, &h) == 0 && glad_writer_write(wr, &r) == 0);
        glad_record_free(&h);
        glad_record_free(&r);
        CHECK(file_size(path) == size);   /* the old file, untouched while writing */
        glad_writer_abort(wr);
        CHECK(file_size(path) == size && read_all(path, &n, err, sizeof err) == 0 && n == 2);
    }
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) = 1", dir);
    CHECKF(system(cmd) == 0, "a temporary was left in %s", dir);
    /* written through to a FIFO-like target: abort leaves a stream without
     * its end marker, which readers reject */
    char via[256];
    snprintf(via, sizeof via, "%s/cut.msgpack", dir);
    FILE *f = fopen(via, "wb");
    glad_writer *wr;
    CHECK(f && glad_writer_open_file(&wr, f, 1, 0) == 0);
    glad_record h;
    glad_header_init(&h);
    char *argv[] = {"prog"};
    glad_header_append(&h, "t", "0", 1, argv);
    glad_writer_write(wr, &h);
    glad_record_free(&h);
    glad_writer_abort(wr);
    CHECKF(read_all(via, &n, err, sizeof err) == GLAD_EFORMAT && strstr(err, "without its end marker"), "%s", err);
    /* /dev/full through a symlink: written through (the link stays), the
     * error reported at close */
    char link[256];
    snprintf(link, sizeof link, "%s/full", dir);
    CHECK(symlink("/dev/full", link) == 0);
    CHECK(glad_writer_open(&wr, link, 0) == 0);
    glad_header_init(&h);
    glad_writer_write(wr, &h);
    glad_record_free(&h);
    CHECK(glad_writer_close(wr) == GLAD_EIO && strstr(glad_error_detail(), "No space left on device"));
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    /* a symlink to a regular file: the target is replaced, the link kept */
    char target[256], link2[256];
    snprintf(target, sizeof target, "%s/target.msgpack", dir);
    snprintf(link2, sizeof link2, "%s/link.msgpack", dir);
    CHECK(symlink("target.msgpack", link2) == 0);
    put_file(target, "old", 3);
    CHECK(write_stream(link2, 0, 1) == 0);
    CHECK(lstat(link2, &st) == 0 && S_ISLNK(st.st_mode) && file_size(target) > 3);
    CHECK(read_all(link2, &n, err, sizeof err) == 0 && n == 1);
    /* a missing directory: the path and the reason */
    snprintf(via, sizeof via, "%s/no/such/dir.msgpack", dir);
    CHECKF(glad_writer_open(&wr, via, 0) == GLAD_EIO && strstr(glad_error_detail(), "dir.msgpack: No such file or directory"), "%s", glad_error_detail());
    /* safetensors: a device is written through and fails; a previous file
     * survives a failed save; the signal-handler cleanup removes temporaries */
    glad_tensor a;
    glad_tensor_alloc4(&a, GLAD_DT_F32, 4, -1, -1, -1);
    const char *names[] = {"a"};
    const glad_tensor *ts[] = {&a};
    CHECK(glad_st_save(link, 1, names, ts, 0, NULL, NULL) == GLAD_EIO);
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    const char *bad_names[] = {"a"};
    glad_tensor b = a;
    b.dtype = GLAD_DT_COUNT;   /* no safetensors name: fails before writing */
    const glad_tensor *bts[] = {&b};
    CHECK(glad_st_save(target, 1, bad_names, bts, 0, NULL, NULL) < 0 && read_all(link2, &n, err, sizeof err) == 0);
    glad_outfile *of;
    CHECK(glad_outfile_open(&of, target, 0) == 0 && glad_outfile_write(of, "xy", 2) == 0);
    snprintf(cmd, sizeof cmd, "test $(ls %s | grep -c tmp) = 1", dir);
    CHECK(system(cmd) == 0);
    glad_outfile_remove_temps();
    snprintf(cmd, sizeof cmd, "test $(ls %s | grep -c tmp) = 0", dir);
    CHECK(system(cmd) == 0);
    CHECK(glad_outfile_commit(of) == GLAD_EIO);   /* its temporary is gone: the rename fails, the old file stays */
    CHECK(read_all(target, &n, err, sizeof err) == 0 && n == 1);
    glad_tensor_free(&a);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    test_python_interop();
    test_roundtrip(0);
    test_roundtrip(3);
    test_bad_tensors();
    test_headerless();
    test_reader_messages();
    test_numpy_scalars();
    test_writer_outcomes();
    test_f16();
    test_safetensors_json();
    return check_done();
}
