/* test_image.c - image decoders (PNG 8/16-bit, grey, RGBA, palette; JPEG grey
 * and colour; TIFF 8/16/float; BMP), writers, corrupt and truncated files,
 * and resampling against PyTorch's conventions. */
#include <png.h>
#include <jpeglib.h>
#include <tiffio.h>
#include <unistd.h>
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

int main(void)
{
    if (!mkdtemp(dir)) return 1;
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
