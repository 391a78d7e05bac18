/* test_image.c - image decoders (PNG 8/16-bit, grey, RGBA, palette; JPEG grey
 * and colour; TIFF 8/16/float; BMP), writers, corrupt and truncated files,
 * the pixel budget checked from declared sizes, failure details (missing,
 * directory, corrupt, out of memory), and resampling against PyTorch's
 * conventions. */
#include <png.h>
#include <jpeglib.h>
#include <tiffio.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <signal.h>
#include "check.h"
#include "io/image.h"
#include "imgproc/resize.h"

static char dir[] = "/tmp/glad-test-image-XXXXXX";
static char *path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_png_raw(const char *p, int w, int h, int ct, int depth, const uint8_t *rows, int palette)
{
    FILE *f = fopen(p, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, ct, 0, 0, 0);
    if (palette) {
        png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {10, 20, 30}};
        png_set_PLTE(png, info, pal, 4);
    }
    png_write_info(png, info);
    size_t rb = png_get_rowbytes(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_bytep)rows + y * rb);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static void write_jpeg(const char *p, int w, int h, int ch)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    FILE *f = fopen(p, "wb");
    jpeg_stdio_dest(&ci, f);
    ci.image_width = w; ci.image_height = h; ci.input_components = ch;
    ci.in_color_space = ch == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 95, TRUE);
    jpeg_start_compress(&ci, TRUE);
    uint8_t row[256 * 3];
    while (ci.next_scanline < (unsigned)h) {
        for (int x = 0; x < w * ch; x++) row[x] = (uint8_t)(x * 3 + ci.next_scanline * 2);
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
}

static long file_size(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* ---- pixel budget (#16): refused from the declared size, before decoding ---- */

static void put32be(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }
static void put32le(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static void put16le(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static uint8_t *slurp_file(const char *p, size_t *n)
{
    long k = file_size(p);
    FILE *f = fopen(p, "rb");
    uint8_t *b = malloc((size_t)k);
    if (!f || !b || fread(b, 1, (size_t)k, f) != (size_t)k) { if (f) fclose(f); free(b); return NULL; }
    fclose(f);
    *n = (size_t)k;
    return b;
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

/* a PNG declaring w x h grey pixels whose IDAT holds a few bytes: 60 bytes for any size */
static size_t tiny_png(uint8_t *b, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n = 0;
    memcpy(b, sig, 8); n = 8;
    const struct { const char *type; uint8_t data[13]; uint32_t len; } ch[3] = {
        {"IHDR", {0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0}, 13}, {"IDAT", {0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1}, 9}, {"IEND", {0}, 0}};
    for (int c = 0; c < 3; c++) {
        put32be(b + n, ch[c].len);
        memcpy(b + n + 4, ch[c].type, 4);
        memcpy(b + n + 8, ch[c].data, ch[c].len);
        if (c == 0) { put32be(b + n + 8, w); put32be(b + n + 12, h); }
        put32be(b + n + 8 + ch[c].len, crc32_png(b + n + 4, 4 + ch[c].len));
        n += 12 + ch[c].len;
    }
    return n;
}

/* an uncompressed grey TIFF whose tags declare w x h and one strip that is not there */
static size_t tiny_tiff(uint8_t *b, uint32_t w, uint32_t h)
{
    static const uint16_t tag[9] = {256, 257, 258, 259, 262, 273, 277, 278, 279}, type[9] = {4, 4, 3, 3, 3, 4, 3, 4, 4};
    uint32_t val[9] = {w, h, 8, 1, 1, 200, 1, h, w * h};
    memcpy(b, "II*\0", 4);
    put32le(b + 4, 8);
    put16le(b + 8, 9);
    for (int i = 0; i < 9; i++) {
        uint8_t *e = b + 10 + 12 * i;
        put16le(e, tag[i]); put16le(e + 2, type[i]); put32le(e + 4, 1); put32le(e + 8, 0);
        if (type[i] == 3) put16le(e + 8, (uint16_t)val[i]); else put32le(e + 8, val[i]);
    }
    put32le(b + 10 + 12 * 9, 0);
    memset(b + 200, 0, 56);
    return 256;
}

/* a 24-bit BMP header declaring w x h, with 64 bytes of pixels */
static size_t tiny_bmp(uint8_t *b, int32_t w, int32_t h)
{
    memset(b, 0, 54 + 64);
    b[0] = 'B'; b[1] = 'M';
    put32le(b + 2, 54 + 64); put32le(b + 10, 54); put32le(b + 14, 40);
    put32le(b + 18, (uint32_t)w); put32le(b + 22, (uint32_t)h); put16le(b + 26, 1); put16le(b + 28, 24);
    return 54 + 64;
}

/* the SOF0 frame header of a JPEG made by write_jpeg: height and width patched */
static int patch_jpeg_size(uint8_t *b, size_t n, uint16_t w, uint16_t h)
{
    for (size_t i = 2; i + 9 < n; i++)
        if (b[i] == 0xff && (b[i + 1] == 0xc0 || b[i + 1] == 0xc2)) {
            b[i + 5] = (uint8_t)(h >> 8); b[i + 6] = (uint8_t)h; b[i + 7] = (uint8_t)(w >> 8); b[i + 8] = (uint8_t)w;
            return 1;
        }
    return 0;
}

/* rc is GLAD_ERANGE and the detail names the declared size */
static int refused(int rc, const char *size)
{
    if (rc != GLAD_ERANGE || !strstr(glad_error_detail(), size)) {
        fprintf(stderr, "  rc %d, detail '%s' (want GLAD_ERANGE naming %s)\n", rc, glad_error_detail(), size);
        return 0;
    }
    return 1;
}

static void pixel_budget(void)
{
    uint8_t b[512];
    glad_tensor t;
    /* 16000 x 16000 declared in 60 bytes: refused by default, with the file and its size in the detail */
    size_t n = tiny_png(b, 16000, 16000);
    CHECK(refused(glad_image_read_mem(b, n, &t), "16000x16000 PNG (256000000 pixels)"));
    FILE *f = fopen(path("huge.png"), "wb");
    CHECK(f && fwrite(b, 1, n, f) == n && fclose(f) == 0);
    CHECK(refused(glad_image_read(path("huge.png"), &t), "16000x16000"));
    CHECKF(strncmp(glad_error_detail(), path("huge.png"), strlen(path("huge.png"))) == 0, "detail '%s'", glad_error_detail());
    CHECK(strstr(glad_error_detail(), "over the limit of 67108864 pixels") != NULL);
    /* the budget is a parameter: 5 x 4 = 20 pixels pass with 20, not with 19 */
    n = tiny_png(b, 5, 4);
    CHECK(refused(glad_image_read_mem_bounded(b, n, 19, &t), "5x4 PNG (20 pixels)"));
    CHECK(glad_image_read_mem_bounded(b, n, 20, &t) != GLAD_ERANGE);   /* (its IDAT is short: corrupt, not refused) */
    CHECK(refused(glad_image_read_mem(b, tiny_png(b, 40000, 1), &t), "40000x1"));   /* a side over 32768 */
    /* TIFF tags, BMP header */
    CHECK(refused(glad_image_read_mem(b, tiny_tiff(b, 16000, 16000), &t), "16000x16000 TIFF"));
    n = tiny_tiff(b, 7, 8);
    CHECK(refused(glad_image_read_mem_bounded(b, n, 55, &t), "7x8 TIFF"));
    CHECK(refused(glad_image_read_mem(b, tiny_bmp(b, 16000, -16000), &t), "16000x16000 BMP"));
    n = tiny_bmp(b, 4, 4);
    CHECK(refused(glad_image_read_mem_bounded(b, n, 15, &t), "4x4 BMP"));
    CHECK(glad_image_read_mem_bounded(b, n, 16, &t) == 0 && t.shape[1] == 4);
    glad_tensor_free(&t);
    /* JPEG frame header, before jpeg_start_decompress allocates */
    write_jpeg(path("small.jpg"), 40, 30, 3);
    uint8_t *j = slurp_file(path("small.jpg"), &n);
    CHECK(j && glad_image_read_mem_bounded(j, n, 1200, &t) == 0);
    glad_tensor_free(&t);
    CHECK(j && refused(glad_image_read_mem_bounded(j, n, 1199, &t), "40x30 JPEG (1200 pixels)"));
    CHECK(j && patch_jpeg_size(j, n, 16000, 16000) && refused(glad_image_read_mem(j, n, &t), "16000x16000 JPEG"));
    free(j);
}

/* ---- failure messages: missing file, directory, corrupt, out of memory ---- */

static void messages(void)
{
    glad_tensor t;
    CHECK(glad_image_read(path("nope.png"), &t) == GLAD_EIO && strstr(glad_error_detail(), "nope.png: No such file or directory"));
    CHECKF(glad_image_read(dir, &t) == GLAD_EIO && strstr(glad_error_detail(), ": Is a directory"), "detail '%s'", glad_error_detail());
    uint8_t b[256];
    size_t n = tiny_png(b, 5, 4);
    CHECKF(glad_image_read_mem(b, n, &t) == GLAD_EFORMAT && strstr(glad_error_detail(), "corrupt or truncated PNG (libpng:"),
           "detail '%s'", glad_error_detail());
    CHECK(glad_image_read_mem((const uint8_t *)"hello world", 11, &t) == GLAD_EFORMAT && strstr(glad_error_detail(), "not a PNG, JPEG"));
}

/* A 3000x3000 progressive JPEG keeps all its DCT coefficients from jpeg_start_decompress on
 * (2 bytes a sample: 18 MB of luma, 9 MB of 2x2-subsampled chroma); with the address space
 * capped 12 MB above what the process has, libjpeg runs out: that is "out of memory"
 * (GLAD_ENOMEM), not a corrupt file (the old code said corrupt). Run in a child (the cap stays there); not under
 * AddressSanitizer, which reserves terabytes of address space. */
static void out_of_memory(void)
{
#if defined(__SANITIZE_ADDRESS__)
    SKIP("out-of-memory case not run under AddressSanitizer");
#else
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    unsigned char *mem = NULL;
    unsigned long len = 0;
    int W = 3000, H = 3000;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &mem, &len);
    ci.image_width = W; ci.image_height = H; ci.input_components = 3; ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    uint8_t *row = malloc((size_t)W * 3);
    while (ci.next_scanline < (unsigned)H) {
        for (int x = 0; x < W * 3; x++) row[x] = (uint8_t)((x * 7 + ci.next_scanline * 3) ^ (x >> 4));
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f || fscanf(f, "%ld", &pages) != 1) _exit(3);
        fclose(f);
        struct rlimit rl = {(rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (12u << 20), RLIM_INFINITY};
        if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(3);
        glad_tensor t;
        int rc = glad_image_read_mem(mem, len, &t);
        if (rc == GLAD_ENOMEM && strstr(glad_error_detail(), "out of memory")) _exit(0);
        fprintf(stderr, "  progressive JPEG under a memory cap: rc %d, detail '%s'\n", rc, glad_error_detail());
        _exit(rc == 0 ? 2 : 1);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3) SKIP("cannot cap the address space");
    else CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "out of memory reported as something else (status %d)", st);
    free(mem);
#endif
}

/* every truncation and some byte flips must fail cleanly (or decode), never crash */
static void corrupt_cases(const char *p, const char *what)
{
    long n = file_size(p);
    FILE *f = fopen(p, "rb");
    uint8_t *b = malloc((size_t)n);
    CHECK(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    int ok = 1;
    for (long cut = 0; cut < n; cut += (n > 400 ? n / 97 : 1)) {
        glad_tensor t;
        int rc = glad_image_read_mem(b, (size_t)cut, &t);
        if (rc == 0) { glad_tensor_free(&t); ok = 0; fprintf(stderr, "%s cut at %ld accepted\n", what, cut); break; }
    }
    CHECKF(ok, "%s truncations", what);
    uint64_t s = 12345;
    for (int k = 0; k < 300; k++) {
        uint8_t *c = malloc((size_t)n);
        memcpy(c, b, (size_t)n);
        for (int j = 0; j < 4; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            c[8 + (s >> 33) % (uint64_t)(n - 8)] ^= (uint8_t)(s >> 20);
        }
        glad_tensor t;
        if (glad_image_read_mem(c, (size_t)n, &t) == 0) glad_tensor_free(&t);
        free(c);
    }
    free(b);
}

/* A PNG write that fails part way (the file-size limit stands in for a full
 * disk) leaves the previous file untouched and no temporary behind. */
static void png_write_is_atomic(void)
{
    const char *p = path("atomic.png");
    FILE *f = fopen(p, "w");
    fputs("previous", f);
    fclose(f);
    glad_tensor t;
    int64_t shape[3] = {3, 96, 96};
    CHECK(glad_tensor_alloc(&t, GLAD_DT_U8, 3, shape) == 0);
    uint32_t x = 12345;
    for (size_t i = 0; i < glad_tensor_numel(&t); i++) { x = x * 1664525u + 1013904223u; ((uint8_t *)t.data)[i] = (uint8_t)(x >> 24); }
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;   /* the noise image compresses to ~27 KB */
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    CHECK(glad_image_write_png(p, &t) < 0);
    glad_tensor tf;   /* the same for the float TIFF writer */
    CHECK(glad_tensor_alloc(&tf, GLAD_DT_F32, 3, shape) == 0);
    for (size_t i = 0; i < glad_tensor_numel(&tf); i++) ((float *)tf.data)[i] = (float)i;
    const char *pt = path("atomic.tif");
    f = fopen(pt, "w");
    fputs("previous", f);
    fclose(f);
    CHECK(glad_image_write_tiff_f32(pt, &tf) < 0);
    setrlimit(RLIMIT_FSIZE, &old);
    f = fopen(pt, "r");
    char bt[32] = {0};
    CHECK(f && fread(bt, 1, sizeof bt - 1, f) == 8 && strcmp(bt, "previous") == 0);
    if (f) fclose(f);
    CHECK(glad_image_write_tiff_f32(pt, &tf) == 0);
    glad_tensor t3;
    CHECK(glad_image_read(pt, &t3) == 0 && t3.dtype == GLAD_DT_F32 && memcmp(tf.data, t3.data, 4 * glad_tensor_numel(&tf)) == 0);
    glad_tensor_free(&t3);
    glad_tensor_free(&tf);
    char buf[32] = {0};
    f = fopen(p, "r");
    CHECK(f && fread(buf, 1, sizeof buf - 1, f) == 8 && strcmp(buf, "previous") == 0);
    if (f) fclose(f);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", dir);
    CHECK(system(cmd) != 0);   /* no temporary left */
    CHECK(glad_image_write_png(p, &t) == 0);   /* and the limit lifted, it is replaced */
    glad_tensor t2;
    CHECK(glad_image_read(p, &t2) == 0 && memcmp(t.data, t2.data, glad_tensor_numel(&t)) == 0);
    glad_tensor_free(&t2);
    glad_tensor_free(&t);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    png_write_is_atomic();
    /* 16-bit grey PNG */
    uint8_t rows16[4 * 6 * 2];
    for (int i = 0; i < 24; i++) { rows16[2 * i] = (uint8_t)(i * 10); rows16[2 * i + 1] = (uint8_t)i; }  /* big-endian */
    write_png_raw(path("g16.png"), 6, 4, PNG_COLOR_TYPE_GRAY, 16, rows16, 0);
    glad_tensor t;
    CHECK(glad_image_read(path("g16.png"), &t) == 0);
    CHECK(t.dtype == GLAD_DT_U16 && t.ndim == 3 && t.shape[0] == 1 && t.shape[1] == 4 && t.shape[2] == 6);
    CHECK(((uint16_t *)t.data)[5] == (50 << 8 | 5));
    glad_tensor_free(&t);
    /* palette PNG -> RGB */
    uint8_t prow[3 * 4];
    for (int i = 0; i < 12; i++) prow[i] = (uint8_t)(i % 4);
    write_png_raw(path("pal.png"), 4, 3, PNG_COLOR_TYPE_PALETTE, 8, prow, 1);
    CHECK(glad_image_read(path("pal.png"), &t) == 0);
    CHECK(t.dtype == GLAD_DT_U8 && t.shape[0] == 3);
    uint8_t *p8 = t.data;
    CHECK(p8[1] == 255 && p8[12 + 2] == 255 && p8[24 + 3] == 30);   /* R of idx1, G of idx2, B of idx3 */
    glad_tensor_free(&t);
    /* RGBA drops alpha; write/read round trip through our PNG writer */
    uint8_t rgba[2 * 2 * 4] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    write_png_raw(path("rgba.png"), 2, 2, PNG_COLOR_TYPE_RGBA, 8, rgba, 0);
    CHECK(glad_image_read(path("rgba.png"), &t) == 0 && t.shape[0] == 3 && ((uint8_t *)t.data)[4 + 3] == 14);
    CHECK(glad_image_write_png(path("rt.png"), &t) == 0);
    glad_tensor t2;
    CHECK(glad_image_read(path("rt.png"), &t2) == 0 && memcmp(t.data, t2.data, 12) == 0);
    glad_tensor_free(&t2);
    corrupt_cases(path("rt.png"), "png");
    glad_tensor_free(&t);
    /* JPEG grey and colour */
    write_jpeg(path("g.jpg"), 40, 30, 1);
    write_jpeg(path("c.jpg"), 40, 30, 3);
    CHECK(glad_image_read(path("g.jpg"), &t) == 0 && t.shape[0] == 1 && t.shape[1] == 30 && t.shape[2] == 40);
    CHECK(abs((int)((uint8_t *)t.data)[40 * 5 + 7] - (7 * 3 + 5 * 2)) <= 3);
    glad_tensor_free(&t);
    CHECK(glad_image_read(path("c.jpg"), &t) == 0 && t.shape[0] == 3);
    glad_tensor_free(&t);
    corrupt_cases(path("c.jpg"), "jpeg");
    /* float TIFF round trip, 16-bit TIFF */
    glad_tensor_alloc4(&t, GLAD_DT_F32, 1, 5, 7, -1);
    for (int i = 0; i < 35; i++) ((float *)t.data)[i] = (float)i * 0.25f - 3.0f;
    CHECK(glad_image_write_tiff_f32(path("f.tif"), &t) == 0);
    CHECK(glad_image_read(path("f.tif"), &t2) == 0 && t2.dtype == GLAD_DT_F32 && memcmp(t.data, t2.data, 35 * 4) == 0);
    glad_tensor_free(&t2);
    corrupt_cases(path("f.tif"), "tiff");
    glad_tensor_free(&t);
    TIFF *tf = TIFFOpen(path("u16.tif"), "w");
    uint16_t line[8];
    TIFFSetField(tf, TIFFTAG_IMAGEWIDTH, 8); TIFFSetField(tf, TIFFTAG_IMAGELENGTH, 2);
    TIFFSetField(tf, TIFFTAG_SAMPLESPERPIXEL, 1); TIFFSetField(tf, TIFFTAG_BITSPERSAMPLE, 16);
    TIFFSetField(tf, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    for (int y = 0; y < 2; y++) { for (int x = 0; x < 8; x++) line[x] = (uint16_t)(1000 * y + x); TIFFWriteScanline(tf, line, y, 0); }
    TIFFClose(tf);
    CHECK(glad_image_read(path("u16.tif"), &t) == 0 && t.dtype == GLAD_DT_U16 && ((uint16_t *)t.data)[9] == 1001);
    glad_tensor_free(&t);
    /* missing file, garbage */
    CHECK(glad_image_read(path("nope.png"), &t) == GLAD_EIO);
    CHECK(glad_image_read_mem((const uint8_t *)"hello world", 11, &t) == GLAD_EFORMAT);
    pixel_budget();
    messages();
    out_of_memory();
    /* real files beside the checkout */
    const char *sh = check_shared();
    if (sh) {
        char p[512];
        snprintf(p, sizeof p, "%s/weights/resized_cat.bmp", sh);
        CHECK(glad_image_read(p, &t) == 0 && t.shape[0] == 3 && t.shape[1] == 224 && t.shape[2] == 224);
        glad_tensor_free(&t);
        snprintf(p, sizeof p, "%s/datasets/mtd-mini/MT_Crack/Imgs/exp1_num_249594.jpg", sh);
        CHECK(glad_image_read(p, &t) == 0 && t.shape[0] == 1);
        glad_tensor_free(&t);
    } else SKIP("../shared absent: real BMP/JPEG files not read");
    /* bilinear, align_corners=False: 2x2 -> 4x4 matches torch.nn.functional.interpolate:
     * [[1,2],[3,4]] -> rows [1,1.25,1.75,2], [1.5,1.75,2.25,2.5], [2.5,2.75,3.25,3.5], [3,3.25,3.75,4] */
    float src[4] = {1, 2, 3, 4}, dst[16], want[16] = {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4};
    CHECK(glad_resize_bilinear(dst, 4, 4, src, 1, 2, 2, 0) == 0);
    int same = 1;
    for (int i = 0; i < 16; i++) same &= fabsf(dst[i] - want[i]) < 1e-6f;
    CHECK(same);
    /* align_corners=True: 2x2 -> 3x3 centre is the mean */
    CHECK(glad_resize_bilinear(dst, 3, 3, src, 1, 2, 2, 1) == 0 && fabsf(dst[4] - 2.5f) < 1e-6f && dst[8] == 4);
    /* nearest 4 -> 2 picks 0 and 2 (floor(i*4/2)) */
    float s4[4] = {10, 11, 12, 13}, d2[2];
    CHECK(glad_resize_nearest_f32(d2, 1, 2, s4, 1, 1, 4) == 0 && d2[0] == 10 && d2[1] == 12);
    /* centre crop 5 -> 3: offset 1 */
    glad_tensor_alloc4(&t, GLAD_DT_U8, 1, 5, 5, -1);
    for (int i = 0; i < 25; i++) ((uint8_t *)t.data)[i] = (uint8_t)i;
    CHECK(glad_image_center_crop(&t2, &t, 3, 3) == 0 && ((uint8_t *)t2.data)[0] == 6 && ((uint8_t *)t2.data)[8] == 18);
    glad_tensor_free(&t2);
    CHECK(glad_image_channels(&t2, &t, 3) == 0 && t2.shape[0] == 3 && ((uint8_t *)t2.data)[25 + 7] == 7);
    glad_tensor_free(&t2);
    glad_tensor_free(&t);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return check_done();
}
