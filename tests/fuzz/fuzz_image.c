/* fuzz_image.c - harnesses for the image decoders glad-encode uses
 * (glad_image_read_mem, io/image.h), one per format so each keeps its own
 * corpus: the harness writes the format's magic over the first bytes, so
 * every mutation stays in that decoder (and PNG chunk CRCs are made right).
 * A decoded image must be a [C,H,W] tensor with C 1 or 3 and sides within
 * GLAD_IMAGE_MAX_SIDE. */
#include "fuzz.h"
#include "io/image.h"

/* PNG chunks carry a CRC-32 that libpng checks first: recompute them so
 * mutations reach the decoder instead of the checksum test */
static uint32_t image_crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c >> 1 ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void image_png_fix_crcs(uint8_t *b, size_t n)
{
    for (size_t pos = 8; n - pos >= 12;) {
        uint32_t len = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 | (uint32_t)b[pos + 2] << 8 | b[pos + 3];
        if (len > n - pos - 12) break;
        uint32_t c = image_crc32(b + pos + 4, 4 + (size_t)len);
        for (int k = 0; k < 4; k++) b[pos + 8 + len + k] = (uint8_t)(c >> (24 - 8 * k));
        pos += 12 + (size_t)len;
    }
}

static void image_run(const uint8_t *d, size_t n, const char *magic, size_t mlen)
{
    uint8_t *b = malloc(n > mlen ? n : mlen);
    if (!b) return;
    if (n) memcpy(b, d, n);
    memcpy(b, magic, mlen);
    if (mlen == 8) image_png_fix_crcs(b, n > mlen ? n : mlen);
    glad_tensor t;
    if (glad_image_read_mem(b, n > mlen ? n : mlen, &t) == 0) {
        FUZZ_ASSERT(t.ndim == 3 && (t.shape[0] == 1 || t.shape[0] == 3));
        FUZZ_ASSERT(t.shape[1] >= 1 && t.shape[1] <= GLAD_IMAGE_MAX_SIDE && t.shape[2] >= 1 && t.shape[2] <= GLAD_IMAGE_MAX_SIDE);
        glad_tensor_free(&t);
    }
    free(b);
}

int fuzz_image_png(const uint8_t *d, size_t n) { image_run(d, n, "\x89PNG\r\n\x1a\n", 8); return 0; }
int fuzz_image_jpeg(const uint8_t *d, size_t n) { image_run(d, n, "\xff\xd8\xff", 3); return 0; }
int fuzz_image_bmp(const uint8_t *d, size_t n) { image_run(d, n, "BM", 2); return 0; }
/* both byte orders: keep the input's if it is one, else little-endian */
int fuzz_image_tiff(const uint8_t *d, size_t n)
{
    image_run(d, n, n >= 4 && memcmp(d, "MM\0*", 4) == 0 ? "MM\0*" : "II*\0", 4);
    return 0;
}
