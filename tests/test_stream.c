/* test_stream.c - tensors, records, the msgpack-numpy codec, zstd, headers,
 * and the reader's defences against truncated and corrupt streams. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include "check.h"
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
    if (rc < 0) { if (rd) { snprintf(err, errlen, "%s", glad_reader_error(rd)); glad_reader_close(rd); } return rc; }
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
    remove("/tmp/glad-test-cut.safetensors");
    remove("/tmp/glad-test.safetensors");
    glad_tensor_free(&a);
    glad_tensor_free(&b);
    const char *bad[] = {"{", "[1,2", "{\"a\":}", "\"\\u12\"", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "tru", "1 2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECKF(glad_json_parse(bad[i], strlen(bad[i]), &j) == GLAD_EFORMAT, "%s", bad[i]);
    }
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

int main(void)
{
    test_python_interop();
    test_roundtrip(0);
    test_roundtrip(3);
    test_bad_tensors();
    test_f16();
    test_safetensors_json();
    return check_done();
}
