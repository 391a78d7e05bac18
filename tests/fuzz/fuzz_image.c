/* fuzz_image.c - harnesses for the image decoders glad-encode uses
 * (glad_image_read_mem, io/image.h), one per format so each keeps its own
 * corpus: the harness writes the format's magic over the first bytes, so
 * every mutation stays in that decoder. A decoded image must be a [C,H,W]
 * tensor with C 1 or 3 and sides within GLAD_IMAGE_MAX_SIDE. */
#include "fuzz.h"
#include "io/image.h"

static void image_run(const uint8_t *d, size_t n, const char *magic, size_t mlen)
{
    uint8_t *b = malloc(n > mlen ? n : mlen);
    if (!b) return;
    if (n) memcpy(b, d, n);
    memcpy(b, magic, mlen);
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
