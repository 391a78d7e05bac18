/* image.c - decode PNG (libpng), JPEG (libjpeg), TIFF (libtiff) and BMP
 * (by hand) into [C,H,W] tensors, bounded by a pixel budget checked from the
 * declared size before any pixel buffer exists; encode PNG and float32 TIFF.
 * Not resampling (imgproc/resize.c). Libraries' error paths become return
 * codes with the library's message in the detail: libpng/libjpeg longjmp
 * back, libtiff's handlers are per handle, so nothing is printed and nothing
 * exits. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <png.h>
#include <jpeglib.h>
#include <jerror.h>
#include <tiffio.h>
#include "io/image.h"
#include "io/outfile.h"

/* Declared size against the budget: the one check every decoder makes before
 * allocating pixels. */
static int check_dims(const char *kind, uint64_t w, uint64_t h, uint64_t max_pixels)
{
    if (w == 0 || h == 0) return glad_fail(GLAD_ERANGE, "%s declares an empty %llux%llu image", kind, (unsigned long long)w, (unsigned long long)h);
    if (w > GLAD_IMAGE_MAX_SIDE || h > GLAD_IMAGE_MAX_SIDE)
        return glad_fail(GLAD_ERANGE, "%llux%llu %s: a side over the limit of %d pixels", (unsigned long long)w,
                         (unsigned long long)h, kind, GLAD_IMAGE_MAX_SIDE);
    if (w * h > max_pixels)
        return glad_fail(GLAD_ERANGE, "%llux%llu %s (%llu pixels) over the limit of %llu pixels", (unsigned long long)w,
                         (unsigned long long)h, kind, (unsigned long long)(w * h), (unsigned long long)max_pixels);
    return 0;
}

/* What a library said when it gave up: out of memory, a limit, or corrupt data. */
static int lib_fail(const char *kind, const char *lib, const char *msg)
{
    if (!msg[0]) return glad_fail(GLAD_EFORMAT, "corrupt or truncated %s", kind);
    if (strcasestr(msg, "beyond the") || strcasestr(msg, "too large") || strcasestr(msg, "user limit") ||
        strcasestr(msg, "maximum supported image dimension") || strcasestr(msg, "backing store"))
        return glad_fail(GLAD_ERANGE, "%s over a size limit (%s: %s)", kind, lib, msg);
    if (strcasestr(msg, "memory") || strcasestr(msg, "no space for") || strcasestr(msg, "cannot allocate"))
        return glad_fail(GLAD_ENOMEM, "out of memory decoding the %s (%s: %s)", kind, lib, msg);
    return glad_fail(GLAD_EFORMAT, "corrupt or truncated %s (%s: %s)", kind, lib, msg);
}

/* ------------------------------------------------------------------ PNG */

typedef struct { const uint8_t *p; size_t n, pos; } membuf;
typedef struct { char msg[200]; } liberr;

static void png_read_mem(png_structp png, png_bytep out, png_size_t len)
{
    membuf *m = png_get_io_ptr(png);
    if (len > m->n - m->pos) png_error(png, "truncated");
    memcpy(out, m->p + m->pos, len);
    m->pos += len;
}

static void png_err(png_structp png, png_const_charp msg)
{
    liberr *e = png_get_error_ptr(png);
    if (e) snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}
static void png_warn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static int read_png(const uint8_t *buf, size_t len, uint64_t max_pixels, glad_tensor *out)
{
    /* the size the IHDR (always the first chunk) declares, before libpng allocates anything */
    if (len >= 24 && memcmp(buf + 12, "IHDR", 4) == 0) GLAD_TRY(check_dims("PNG", be32(buf + 16), be32(buf + 20), max_pixels));
    liberr e = {""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &e, png_err, png_warn);
    if (!png) return glad_fail(GLAD_ENOMEM, "out of memory");
    png_infop info = png_create_info_struct(png);
    membuf m = {buf, len, 0};
    png_bytep *volatile rows = NULL;
    glad_tensor t;
    memset(&t, 0, sizeof t);
    volatile int rc = 0;
    uint8_t *volatile pix = NULL;
    if (!info) { png_destroy_read_struct(&png, NULL, NULL); return glad_fail(GLAD_ENOMEM, "out of memory"); }
    if (setjmp(png_jmpbuf(png))) { rc = lib_fail("PNG", "libpng", e.msg); goto out; }
    png_set_read_fn(png, &m, png_read_mem);
    /* libpng's own limits back up the check above: sides, and 8 MiB for an ancillary chunk (ICC, text) */
    uint32_t side = max_pixels < GLAD_IMAGE_MAX_SIDE ? (uint32_t)max_pixels : GLAD_IMAGE_MAX_SIDE;
    png_set_user_limits(png, side, side);
    png_set_chunk_malloc_max(png, (png_alloc_size_t)8 << 20);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
    if ((rc = check_dims("PNG", w, h, max_pixels))) goto out;
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    png_set_strip_alpha(png);
    if (depth == 16) png_set_swap(png);   /* little-endian u16 */
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info), d = png_get_bit_depth(png, info);
    if ((ch != 1 && ch != 3) || (d != 8 && d != 16)) { rc = glad_fail(GLAD_EFORMAT, "PNG with %d channels of %d bits after expansion", ch, d); goto out; }
    size_t bps = (size_t)d / 8, rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)w * ch * bps) { rc = glad_fail(GLAD_EFORMAT, "corrupt PNG (row size)"); goto out; }
    pix = malloc((size_t)h * rowbytes);
    rows = malloc(sizeof(png_bytep) * h);
    if (!pix || !rows) { rc = glad_fail(GLAD_ENOMEM, "out of memory for a %ux%u PNG", (unsigned)w, (unsigned)h); goto out; }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pix + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);   /* a file cut before IEND is truncated, too */
    if ((rc = glad_tensor_alloc4(&t, d == 16 ? GLAD_DT_U16 : GLAD_DT_U8, ch, h, w, -1))) goto out;
    /* interleaved HWC -> planar CHW */
    size_t hw = (size_t)w * h;
    if (d == 8) {
        uint8_t *o = t.data;
        for (size_t i = 0; i < hw; i++) for (int c = 0; c < ch; c++) o[c * hw + i] = pix[i * ch + c];
    } else {
        uint16_t *o = t.data, *s = (uint16_t *)pix;
        for (size_t i = 0; i < hw; i++) for (int c = 0; c < ch; c++) o[c * hw + i] = s[i * ch + c];
    }
    *out = t;
    memset(&t, 0, sizeof t);
out:
    glad_tensor_free(&t);
    free(pix);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return rc;
}

/* ------------------------------------------------------------------ JPEG */

typedef struct { struct jpeg_error_mgr pub; jmp_buf jb; char msg[JMSG_LENGTH_MAX]; } jerr;
static void jpeg_fail(j_common_ptr c)
{
    jerr *e = (jerr *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jb, 1);
}
/* keep libjpeg quiet but count warnings (a truncated file only warns) and keep the first */
static void jpeg_quiet(j_common_ptr c, int level)
{
    if (level >= 0) return;
    jerr *e = (jerr *)c->err;
    if (c->err->num_warnings++ == 0) (*c->err->format_message)(c, e->msg);
}

static int read_jpeg(const uint8_t *buf, size_t len, uint64_t max_pixels, glad_tensor *out)
{
    struct jpeg_decompress_struct ci;
    jerr je;
    glad_tensor t;
    memset(&t, 0, sizeof t);
    uint8_t *volatile row = NULL, *volatile pixels = NULL;
    volatile int rc = 0;
    je.msg[0] = 0;
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_fail;
    je.pub.emit_message = jpeg_quiet;
    if (setjmp(je.jb)) {
        if (!rc) rc = lib_fail("JPEG", "libjpeg", je.msg);
        jpeg_destroy_decompress(&ci);
        free(pixels);
        free(row);
        return rc;
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, buf, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    if ((rc = check_dims("JPEG", ci.image_width, ci.image_height, max_pixels))) longjmp(je.jb, 1);
    /* libjpeg's own bound on its large buffers: a progressive file keeps every DCT coefficient
     * (2 bytes a sample, at most 4 components), plus room for row buffers */
    uint64_t budget = max_pixels * 8 + ((uint64_t)64 << 20);
    ci.mem->max_memory_to_use = budget > (uint64_t)LONG_MAX ? LONG_MAX : (long)budget;
    if (ci.jpeg_color_space != JCS_GRAYSCALE) ci.out_color_space = JCS_RGB;
    jpeg_start_decompress(&ci);
    int ch = ci.output_components;
    unsigned w = ci.output_width, h = ci.output_height;
    if ((rc = check_dims("JPEG", w, h, max_pixels))) longjmp(je.jb, 1);
    if (ch != 1 && ch != 3) { rc = glad_fail(GLAD_EFORMAT, "JPEG with %d components", ch); longjmp(je.jb, 1); }
    if ((rc = glad_tensor_alloc4(&t, GLAD_DT_U8, ch, h, w, -1))) longjmp(je.jb, 1);
    pixels = t.data;   /* freed through this volatile copy when libjpeg longjmps */
    row = malloc((size_t)w * ch);
    if (!row) { rc = glad_fail(GLAD_ENOMEM, "out of memory"); longjmp(je.jb, 1); }
    size_t hw = (size_t)w * h;
    uint8_t *o = t.data;
    while (ci.output_scanline < h) {
        JSAMPROW r = row;
        size_t y = ci.output_scanline;
        if (jpeg_read_scanlines(&ci, &r, 1) != 1) { rc = glad_fail(GLAD_EFORMAT, "corrupt or truncated JPEG"); longjmp(je.jb, 1); }
        /* a warning means the data ran out (libjpeg pads with grey and goes on):
         * refuse it now, as after the loop, not after decoding every row of padding */
        if (je.pub.num_warnings > 0) { rc = lib_fail("JPEG", "libjpeg", je.msg); longjmp(je.jb, 1); }
        for (unsigned x = 0; x < w; x++) for (int c = 0; c < ch; c++) o[c * hw + y * w + x] = row[x * ch + c];
    }
    /* libjpeg pads a truncated file with an EOI and only warns: reject it */
    if (je.pub.num_warnings > 0) { rc = lib_fail("JPEG", "libjpeg", je.msg); longjmp(je.jb, 1); }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(row);
    *out = t;
    return 0;
}

/* ------------------------------------------------------------------ TIFF */

/* per-handle handlers (libtiff >= 4.5): the first error is kept, nothing printed */
static int tiff_keep(TIFF *tf, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tf; (void)module;
    liberr *e = user;
    if (e && !e->msg[0]) vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    return 1;
}
static int tiff_drop(TIFF *tf, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tf; (void)user; (void)module; (void)fmt; (void)ap;
    return 1;
}

typedef struct { const uint8_t *p; size_t n; toff_t pos; } tmem;
static tsize_t t_read(thandle_t h, tdata_t b, tsize_t n)
{
    tmem *m = (tmem *)h;
    if (n < 0 || m->pos > m->n) return 0;
    size_t k = (size_t)n < m->n - m->pos ? (size_t)n : m->n - m->pos;
    memcpy(b, m->p + m->pos, k);
    m->pos += k;
    return (tsize_t)k;
}
static tsize_t t_write(thandle_t h, tdata_t b, tsize_t n) { (void)h; (void)b; (void)n; return 0; }
static toff_t t_seek(thandle_t h, toff_t off, int whence)
{
    tmem *m = (tmem *)h;
    toff_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->n;
    m->pos = base + off;
    return m->pos;
}
static int t_close(thandle_t h) { (void)h; return 0; }
static toff_t t_size(thandle_t h) { return ((tmem *)h)->n; }
static int t_map(thandle_t h, tdata_t *b, toff_t *s) { (void)h; (void)b; (void)s; return 0; }
static void t_unmap(thandle_t h, tdata_t b, toff_t s) { (void)h; (void)b; (void)s; }

static int read_tiff(const uint8_t *buf, size_t len, uint64_t max_pixels, glad_tensor *out)
{
    liberr e = {""};
    TIFFOpenOptions *opt = TIFFOpenOptionsAlloc();
    if (!opt) return glad_fail(GLAD_ENOMEM, "out of memory");
    /* libtiff's own bound on any one buffer (tag arrays, a strip): a whole image of
     * 4 samples of 4 bytes in one strip, plus 1 MiB */
    TIFFOpenOptionsSetMaxSingleMemAlloc(opt, (tmsize_t)(max_pixels * 16 + ((uint64_t)1 << 20)));
    TIFFOpenOptionsSetErrorHandlerExtR(opt, tiff_keep, &e);
    TIFFOpenOptionsSetWarningHandlerExtR(opt, tiff_drop, NULL);
    tmem m = {buf, len, 0};
    TIFF *tf = TIFFClientOpenExt("TIFF", "rm", (thandle_t)&m, t_read, t_write, t_seek, t_close, t_size, t_map, t_unmap, opt);
    TIFFOpenOptionsFree(opt);
    if (!tf) return lib_fail("TIFF", "libtiff", e.msg);
    uint32_t w = 0, h = 0;
    uint16_t spp = 1, bps = 8, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
    int rc;
    glad_tensor t;
    memset(&t, 0, sizeof t);
    uint8_t *line = NULL;
    TIFFGetField(tf, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tf, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetFieldDefaulted(tf, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tf, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tf, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tf, TIFFTAG_PLANARCONFIG, &planar);
    if ((rc = check_dims("TIFF", w, h, max_pixels))) goto out;
    glad_dtype dt;
    if (bps == 8 && fmt == SAMPLEFORMAT_UINT) dt = GLAD_DT_U8;
    else if (bps == 16 && fmt == SAMPLEFORMAT_UINT) dt = GLAD_DT_U16;
    else if (bps == 32 && fmt == SAMPLEFORMAT_IEEEFP) dt = GLAD_DT_F32;
    else { rc = glad_fail(GLAD_EUNSUPPORTED, "TIFF with %u-bit samples of format %u", bps, fmt); goto out; }
    if (spp < 1 || spp > 4 || planar != PLANARCONFIG_CONTIG) {
        rc = glad_fail(GLAD_EUNSUPPORTED, "TIFF with %u samples per pixel%s", spp, planar != PLANARCONFIG_CONTIG ? " in separate planes" : "");
        goto out;
    }
    int ch = spp >= 3 ? 3 : 1;   /* drop alpha */
    size_t es = glad_dtype_size(dt), sl = (size_t)TIFFScanlineSize(tf);
    if (sl < (size_t)w * spp * es) { rc = lib_fail("TIFF", "libtiff", e.msg); goto out; }
    line = malloc(sl);
    if (!line) { rc = glad_fail(GLAD_ENOMEM, "out of memory"); goto out; }
    if ((rc = glad_tensor_alloc4(&t, dt, ch, h, w, -1))) goto out;
    size_t hw = (size_t)w * h;
    for (uint32_t y = 0; y < h; y++) {
        if (TIFFReadScanline(tf, line, y, 0) < 0) { rc = lib_fail("TIFF", "libtiff", e.msg); goto out; }
        for (uint32_t x = 0; x < w; x++)
            for (int c = 0; c < ch; c++)
                memcpy((uint8_t *)t.data + ((size_t)c * hw + (size_t)y * w + x) * es, line + ((size_t)x * spp + c) * es, es);
    }
    *out = t;
    memset(&t, 0, sizeof t);
out:
    glad_tensor_free(&t);
    free(line);
    TIFFClose(tf);
    return rc;
}

/* ------------------------------------------------------------------ BMP */

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Uncompressed BMP: 8-bit palette, 24-bit or 32-bit BGR(A), bottom-up or top-down. */
static int read_bmp(const uint8_t *b, size_t len, uint64_t max_pixels, glad_tensor *out)
{
    if (len < 54) return glad_fail(GLAD_EFORMAT, "truncated BMP header");
    uint32_t off = le32(b + 10), hs = le32(b + 14);
    if (hs < 40 || 14 + (uint64_t)hs > len) return glad_fail(GLAD_EFORMAT, "corrupt BMP header");
    int32_t w = (int32_t)le32(b + 18), hh = (int32_t)le32(b + 22);
    uint16_t bpp = le16(b + 28);
    uint32_t comp = le32(b + 30), ncol = le32(b + 46);
    int top_down = hh < 0;
    int64_t h = hh < 0 ? -(int64_t)hh : hh;
    if (w <= 0) return glad_fail(GLAD_EFORMAT, "corrupt BMP header (width %d)", (int)w);
    GLAD_TRY(check_dims("BMP", (uint64_t)w, (uint64_t)h, max_pixels));
    if (comp != 0 && !(comp == 3 && bpp == 32)) return glad_fail(GLAD_EUNSUPPORTED, "compressed BMP (method %u)", comp);
    if (bpp != 8 && bpp != 24 && bpp != 32) return glad_fail(GLAD_EUNSUPPORTED, "%u-bit BMP", bpp);
    uint64_t stride = (((uint64_t)w * bpp + 31) / 32) * 4;
    if (off > len || stride * (uint64_t)h > len - off) return glad_fail(GLAD_EFORMAT, "truncated BMP");
    const uint8_t *pal = b + 14 + hs;
    if (bpp == 8) {
        if (ncol == 0) ncol = 256;
        if (ncol > 256 || (uint64_t)(pal - b) + 4ull * ncol > off) return glad_fail(GLAD_EFORMAT, "corrupt BMP palette");
    }
    glad_tensor t;
    GLAD_TRY(glad_tensor_alloc4(&t, GLAD_DT_U8, 3, h, w, -1));
    uint8_t *o = t.data;
    size_t hw = (size_t)w * (size_t)h;
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *r = b + off + stride * (uint64_t)(top_down ? y : h - 1 - y);
        for (int32_t x = 0; x < w; x++) {
            const uint8_t *px;
            if (bpp == 8) {
                if (r[x] >= ncol) { glad_tensor_free(&t); return glad_fail(GLAD_EFORMAT, "corrupt BMP (palette index %u of %u)", r[x], ncol); }
                px = pal + 4 * r[x];
            } else px = r + (size_t)x * (bpp / 8);
            size_t i = (size_t)y * w + x;
            o[i] = px[2]; o[hw + i] = px[1]; o[2 * hw + i] = px[0];
        }
    }
    *out = t;
    return 0;
}

/* ------------------------------------------------------------------ dispatch */

int glad_image_read_mem_bounded(const uint8_t *buf, size_t len, uint64_t max_pixels, glad_tensor *out)
{
    memset(out, 0, sizeof *out);
    glad_error_clear();
    if (max_pixels == 0) max_pixels = GLAD_IMAGE_MAX_PIXELS;
    if (max_pixels > (uint64_t)GLAD_IMAGE_MAX_SIDE * GLAD_IMAGE_MAX_SIDE) max_pixels = (uint64_t)GLAD_IMAGE_MAX_SIDE * GLAD_IMAGE_MAX_SIDE;
    int rc;
    if (len >= 8 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0) rc = read_png(buf, len, max_pixels, out);
    else if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) rc = read_jpeg(buf, len, max_pixels, out);
    else if (len >= 4 && (memcmp(buf, "II*\0", 4) == 0 || memcmp(buf, "MM\0*", 4) == 0)) rc = read_tiff(buf, len, max_pixels, out);
    else if (len >= 2 && buf[0] == 'B' && buf[1] == 'M') rc = read_bmp(buf, len, max_pixels, out);
    else rc = glad_fail(GLAD_EFORMAT, "not a PNG, JPEG, TIFF or BMP image");
    if (rc < 0 && !glad_error_detail()[0]) glad_fail(rc, "%s", glad_strerror(rc));
    return rc;
}

int glad_image_read_mem(const uint8_t *buf, size_t len, glad_tensor *out)
{
    return glad_image_read_mem_bounded(buf, len, 0, out);
}

int glad_image_read_bounded(const char *path, uint64_t max_pixels, glad_tensor *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return glad_fail(errno == ENOMEM ? GLAD_ENOMEM : GLAD_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    FILE *f = NULL;
    uint8_t *buf = NULL;
    int rc = 0;
    if (fstat(fd, &st) != 0) rc = glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode)) rc = glad_fail(GLAD_EIO, "%s: %s", path, strerror(EISDIR));
    else if (!(f = fdopen(fd, "rb"))) rc = glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno));
    if (rc) { close(fd); return rc; }
    long n;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        rc = glad_fail(GLAD_EIO, "%s: %s", path, strerror(errno));
    else if ((uint64_t)n > GLAD_MAX_ALLOC) rc = glad_fail(GLAD_ERANGE, "%s: %ld bytes, over the %zu-byte limit", path, n, GLAD_MAX_ALLOC);
    else if (!(buf = malloc((size_t)n + 1))) rc = glad_fail(GLAD_ENOMEM, "%s: out of memory (%ld bytes)", path, n);
    else if (fread(buf, 1, (size_t)n, f) != (size_t)n) rc = glad_fail(GLAD_EIO, "%s: %s", path, ferror(f) ? strerror(errno) : "file shrank while read");
    else if ((rc = glad_image_read_mem_bounded(buf, (size_t)n, max_pixels, out)) < 0) {
        char why[1024];   /* the decoder's detail, now prefixed with the file */
        snprintf(why, sizeof why, "%s", glad_error_detail());
        glad_fail(rc, "%s: %s", path, why);
    }
    free(buf);
    fclose(f);
    return rc;
}

int glad_image_read(const char *path, glad_tensor *out) { return glad_image_read_bounded(path, 0, out); }

/* ------------------------------------------------------------------ writers */

/* The PNG encoding of t onto f; path names it in messages. */
static int png_write_file(FILE *f, const char *path, const glad_tensor *t)
{
    int c, h, w;
    GLAD_TRY(glad_tensor_chw(t, &c, &h, &w));
    if ((c != 1 && c != 3 && c != 4) || (t->dtype != GLAD_DT_U8 && t->dtype != GLAD_DT_U16)) return GLAD_EDTYPE;
    int d = t->dtype == GLAD_DT_U16 ? 16 : 8;
    size_t bps = (size_t)d / 8, hw = (size_t)w * h, rowb = (size_t)w * c * bps;
    uint8_t *row = malloc(rowb);
    if (!row) return GLAD_ENOMEM;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_err, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile int rc = GLAD_EIO;
    if (!png || !info) { rc = GLAD_ENOMEM; goto out; }
    if (setjmp(png_jmpbuf(png))) { rc = glad_fail(GLAD_EIO, "%s: libpng cannot write it", path); goto out; }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, d,
                 c == 1 ? PNG_COLOR_TYPE_GRAY : c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGBA,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                size_t src = (size_t)k * hw + (size_t)y * w + x, dst = ((size_t)x * c + k) * bps;
                if (d == 8) row[dst] = ((const uint8_t *)t->data)[src];
                else { uint16_t v = ((const uint16_t *)t->data)[src]; row[dst] = (uint8_t)(v >> 8); row[dst + 1] = (uint8_t)v; }
            }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    rc = 0;
out:
    png_destroy_write_struct(&png, &info);
    free(row);
    return rc;
}

/* Through lib/io/outfile: a failed or interrupted write leaves the previous
 * file (or none) in place, never a cut PNG. */
int glad_image_write_png(const char *path, const glad_tensor *t)
{
    glad_outfile *of;
    GLAD_TRY(glad_outfile_open(&of, path, 0));
    int rc = png_write_file(glad_outfile_file(of), path, t);
    if (rc < 0) { glad_outfile_abort(of); return rc; }
    return glad_outfile_commit(of);
}

/* Through lib/io/outfile like the PNG writer: libtiff writes (and seeks) on a
 * duplicate of the temporary's descriptor, closed by TIFFClose; the stdio
 * stream of the outfile is never written, so its buffer stays empty. */
int glad_image_write_tiff_f32(const char *path, const glad_tensor *t)
{
    int c, h, w;
    GLAD_TRY(glad_tensor_chw(t, &c, &h, &w));
    if (t->dtype != GLAD_DT_F32) return GLAD_EDTYPE;
    glad_outfile *of;
    GLAD_TRY(glad_outfile_open(&of, path, 0));
    liberr e = {""};
    TIFFOpenOptions *opt = TIFFOpenOptionsAlloc();
    if (!opt) { glad_outfile_abort(of); return glad_fail(GLAD_ENOMEM, "out of memory"); }
    TIFFOpenOptionsSetErrorHandlerExtR(opt, tiff_keep, &e);
    TIFFOpenOptionsSetWarningHandlerExtR(opt, tiff_drop, NULL);
    int fd = dup(fileno(glad_outfile_file(of)));
    TIFF *tf = fd < 0 ? NULL : TIFFFdOpenExt(fd, path, "w", opt);
    TIFFOpenOptionsFree(opt);
    if (!tf) {
        if (fd >= 0) close(fd);
        glad_outfile_abort(of);
        return glad_fail(GLAD_EIO, "%s: cannot create (libtiff: %s)", path, fd < 0 ? strerror(errno) : e.msg);
    }
    float *line = malloc(sizeof(float) * (size_t)w * c);
    int rc = GLAD_ENOMEM;
    if (!line) goto out;
    TIFFSetField(tf, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
    TIFFSetField(tf, TIFFTAG_IMAGELENGTH, (uint32_t)h);
    TIFFSetField(tf, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)c);
    TIFFSetField(tf, TIFFTAG_BITSPERSAMPLE, (uint16_t)32);
    TIFFSetField(tf, TIFFTAG_SAMPLEFORMAT, (uint16_t)SAMPLEFORMAT_IEEEFP);
    TIFFSetField(tf, TIFFTAG_PLANARCONFIG, (uint16_t)PLANARCONFIG_CONTIG);
    TIFFSetField(tf, TIFFTAG_PHOTOMETRIC, (uint16_t)(c >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK));
    TIFFSetField(tf, TIFFTAG_ROWSPERSTRIP, (uint32_t)1);
    size_t hw = (size_t)w * h;
    rc = GLAD_EIO;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) line[(size_t)x * c + k] = ((const float *)t->data)[(size_t)k * hw + (size_t)y * w + x];
        if (TIFFWriteScanline(tf, line, (uint32_t)y, 0) < 0) goto out;
    }
    rc = TIFFFlush(tf) == 1 ? 0 : GLAD_EIO;   /* writes the directory; TIFFClose cannot report */
out:
    free(line);
    TIFFClose(tf);
    if (rc < 0) {
        glad_outfile_abort(of);
        return rc == GLAD_EIO ? glad_fail(rc, "%s: cannot write (libtiff: %s)", path, e.msg) : rc;
    }
    return glad_outfile_commit(of);
}
