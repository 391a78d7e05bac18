/* fuzz_safetensors.c - harness for the safetensors reader (io/safetensors.h):
 * the bytes as a file (a memfd, since glad_st_open takes a path: mapped),
 * every entry copied out and converted to float32, every metadata pair read.
 * An opened file's entries must lie inside the file. The same bytes through
 * glad_st_open_mem (the copied-buffer path) must give the same outcome. */
#include "fuzz.h"
#include "io/safetensors.h"

int fuzz_safetensors(const uint8_t *d, size_t n)
{
    const char *path = fuzz_memfile(d, n);
    glad_st *st, *mem = NULL;
    int rm = glad_st_open_mem(&mem, d, n, "fuzz");
    if (!path) { glad_st_close(mem); return 0; }
    int rf = glad_st_open(&st, path);
    FUZZ_ASSERT(rf == rm);
    if (!rf) FUZZ_ASSERT(glad_st_count(st) == glad_st_count(mem) && glad_st_meta_count(st) == glad_st_meta_count(mem));
    glad_st_close(mem);
    if (rf) return 0;
    for (int i = 0; i < glad_st_count(st); i++) {
        const glad_st_entry *e = glad_st_entry_at(st, i);
        FUZZ_ASSERT(e && e->begin <= e->end && e->end <= n);
        FUZZ_ASSERT(glad_st_find(st, e->name) != NULL);
        glad_tensor t;
        if (glad_st_get_f32(st, e->name, &t) == 0) {
            FUZZ_ASSERT(t.dtype == GLAD_DT_F32);
            glad_tensor_free(&t);
        }
    }
    for (int i = 0; i < glad_st_meta_count(st); i++) {
        const char *k = glad_st_meta_key(st, i);
        FUZZ_ASSERT(k && glad_st_meta(st, k) != NULL);
    }
    glad_st_close(st);
    return 0;
}
